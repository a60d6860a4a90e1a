/* Where hart 0 starts the dirtier guest's other harts (SBI HSM hart_start):
 * a0 = hart id, satp = 0. Each gets its own stack (dirtier_stacks[hartid])
 * and runs dirtier_secondary_main, which never returns. */
#include "dirtier.h"
#include "../common/secondary.h"

    .file   "secondary.S"
    SECONDARY_ENTRY dirtier_secondary_entry, DIRTIER_MAX_HARTS, dirtier_stacks, dirtier_secondary_main
