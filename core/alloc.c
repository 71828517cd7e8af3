/*
 * alloc.c - allocation wrappers with fault injection (core/alloc.h).
 *
 * The countdown is the only process-wide mutable state in chainfuse and
 * exists for tests: production code never calls cf_alloc_fail_after(),
 * so `countdown` stays -1 and each wrapper costs one relaxed load.
 */
#include "alloc.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* -1: off.  n >= 0: n more succeed, then every one fails
 * (cf_alloc_fail_after).  -2 - n: n more succeed, one fails, then off
 * (cf_alloc_fail_once) - one variable, so there is no other state. */
static atomic_long countdown = -1;
static atomic_ulong refused;

/* True when this allocation must fail. */
static int fault(void) {
    long n = atomic_load_explicit(&countdown, memory_order_relaxed);
    if (n == -1) return 0;
    if (n == 0 || n == -2) {
        atomic_fetch_add(&refused, 1);
        if (n == -2) atomic_store(&countdown, -1);
        return 1;
    }
    if (n > 0)
        atomic_fetch_sub(&countdown, 1);
    else
        atomic_fetch_add(&countdown, 1);
    return 0;
}

void *cf_malloc(size_t n) {
    return fault() ? NULL : malloc(n);
}

void *cf_calloc(size_t count, size_t size) {
    return fault() ? NULL : calloc(count, size);
}

void *cf_realloc(void *p, size_t n) {
    return fault() ? NULL : realloc(p, n);
}

char *cf_strdup(const char *s) {
    return fault() ? NULL : strdup(s);
}

char *cf_strndup(const char *s, size_t n) {
    return fault() ? NULL : strndup(s, n);
}

void cf_free(void *p) {
    free(p);
}

void cf_alloc_fail_after(long n) {
    atomic_store(&refused, 0);
    atomic_store(&countdown, n < 0 ? -1 : n);
    /* jansson builds every config, rule and alert document; without it
     * in the sweep most allocations would never be tested. */
    if (n < 0)
        json_set_alloc_funcs(malloc, free);
    else
        json_set_alloc_funcs(cf_malloc, cf_free);
}

unsigned long cf_alloc_failures(void) {
    return atomic_load(&refused);
}

void cf_alloc_fail_once(long n) {
    cf_alloc_fail_after(n);
    if (n >= 0) atomic_store(&countdown, -2 - n);
}
