// SPDX-License-Identifier: MIT
// A test-only allocation counter. In a plain build this file defines malloc and its relatives in
// the test executable, which the dynamic linker then prefers to libc's for every caller (Swift's
// runtime included); each forwards to glibc's own entry point (__libc_malloc and friends). Under
// AddressSanitizer or ThreadSanitizer the sanitizer owns malloc, so the counter uses the
// sanitizer's allocation hooks instead. Counting is per thread, so tests running in parallel on
// other threads do not disturb a measurement.
#include "CAllocationCounter.h"

#include <errno.h>
#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VPND_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VPND_SANITIZED 1
#endif

static __thread int counting;
static __thread uint64_t counted;

static inline void note_allocation(void) {
    if (counting) counted++;
}

#ifndef VPND_SANITIZED

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

void *malloc(size_t size) {
    note_allocation();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    note_allocation();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    note_allocation();
    return __libc_realloc(pointer, size);
}

void free(void *pointer) { __libc_free(pointer); }

void *memalign(size_t alignment, size_t size) {
    note_allocation();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    note_allocation();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    note_allocation();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

int vpnd_allocations_countable(void) { return 1; }

#else

#include <sanitizer/allocator_interface.h>

static void on_malloc(const volatile void *pointer, size_t size) {
    (void)pointer;
    (void)size;
    note_allocation();
}

static void on_free(const volatile void *pointer) { (void)pointer; }

int vpnd_allocations_countable(void) {
    static int installed;
    if (!installed) installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
    return installed;
}

#endif

void vpnd_allocations_begin(void) {
    counted = 0;
    counting = 1;
}

uint64_t vpnd_allocations_end(void) {
    counting = 0;
    return counted;
}

#include <malloc.h>

uint64_t vpnd_heap_bytes_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return (uint64_t)(info.uordblks + info.hblkhd);
}
