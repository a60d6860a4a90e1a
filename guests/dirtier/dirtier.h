/* The dirtier guest's fixed layout, shared by main.c and secondary.S
 * (guests/README.md gives the same contract; dirtier/reference.mjs too). */
#ifndef WEBKVM_GUEST_DIRTIER_H
#define WEBKVM_GUEST_DIRTIER_H

#define DIRTIER_MAX_HARTS    16
#define DIRTIER_STACK_SIZE   4096             /* per secondary hart, in the BSS */

/* The control page: config (host-written) at +0, status at +0x40, per-hart
 * status at +0x100 + 0x80 * hartid. The page checksum table follows it. */
#define DIRTIER_CONTROL      0x80200000UL
#define DIRTIER_STATUS       (DIRTIER_CONTROL + 0x40)
#define DIRTIER_HARTS        (DIRTIER_CONTROL + 0x100)
#define DIRTIER_HART_STRIDE  0x80
#define DIRTIER_TABLE        (DIRTIER_CONTROL + 0x1000)

#define DIRTIER_MAGIC        0x3152454954524944UL   /* "DIRTIER1", little-endian */

/* config.flags */
#define DIRTIER_FLAG_PAGE    1UL                     /* each dirtying rewrites a whole page */
#define DIRTIER_FLAG_FILL    2UL                     /* first rewrite every page once, in order */

/* status.mailbox: what the host asks; the guest clears it when done. */
#define DIRTIER_VERIFY       1UL                     /* any nonzero value but 2 */
#define DIRTIER_VERIFY_EXIT  2UL

/* status.state */
#define DIRTIER_STATE_RUNNING   1UL
#define DIRTIER_STATE_VERIFYING 2UL

/* verify result bits (0 = ok) */
#define DIRTIER_BAD_PAGES    1UL   /* some page's contents disagree with its table entry */
#define DIRTIER_BAD_TABLE    2UL   /* the table's sum disagrees with the running checksum */
#define DIRTIER_BAD_MEMORY   4UL   /* the pages' sum disagrees with the running checksum */

#endif
