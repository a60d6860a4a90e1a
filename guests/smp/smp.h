/* The smp guest's layout, shared by main.c and secondary.S. */
#ifndef WEBKVM_GUEST_SMP_H
#define WEBKVM_GUEST_SMP_H

#define SMP_MAX_HARTS    8
#define SMP_STACK_SIZE   4096            /* per secondary hart, in the BSS */

#endif
