// SPDX-License-Identifier: MIT
// Counts heap allocations made by the calling thread, for the steady-state test of the data path.
#ifndef VPND_ALLOCATION_COUNTER_H
#define VPND_ALLOCATION_COUNTER_H

#include <stdint.h>

/// Starts counting this thread's allocations (malloc, calloc, realloc, the aligned variants) from 0.
void vpnd_allocations_begin(void);
/// Stops counting and returns how many allocations this thread made since the begin.
uint64_t vpnd_allocations_end(void);
/// 1 when allocations are really counted in this build (interposed malloc, or sanitizer hooks).
int vpnd_allocations_countable(void);
/// Bytes the heap has handed out and not taken back, all threads (glibc's mallinfo2 uordblks +
/// hblkhd): a leak test compares two readings.
uint64_t vpnd_heap_bytes_in_use(void);

#endif
