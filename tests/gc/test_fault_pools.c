/* test_fault_pools.c: test_fault.c's chaos loop with objects served by the pools, whose
 * arenas come from the fault-injecting hooks (test_alloc.c fails the arenas themselves). */
#define FAULT_POOLS 1
#include "test_fault.c"
