/* Where SBI HSM hart_start sends the smp guest's secondary harts: a0 = hart
 * id, a1 = opaque, satp = 0. Each gets its own stack (smp_stacks[hartid])
 * and runs smp_secondary_main, which ends with hart_stop. */
#include "smp.h"
#include "../common/secondary.h"

    .file   "secondary.S"
    SECONDARY_ENTRY smp_secondary_entry, SMP_MAX_HARTS, smp_stacks, smp_secondary_main
