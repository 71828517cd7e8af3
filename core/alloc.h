/*
 * alloc.h - every heap allocation chainfuse makes goes through these, so
 * that a test can make the Nth one fail and check that the code around
 * it ends in a clean error or a dead letter, never a crash or a leak
 * (SQLite's fault-injection tests, test/malloc*.test, do the same).
 *
 * They behave exactly as malloc, calloc, realloc, strdup, strndup and
 * free; memory from one may be freed with free() and vice versa.
 *
 * Threading: the fault counter is process-wide and atomic; tests set it
 * from the thread that then runs the code under test.
 */
#ifndef CF_ALLOC_H
#define CF_ALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" { /* json_decode.cpp allocates through these too */
#endif

void *cf_malloc(size_t n);
void *cf_calloc(size_t count, size_t size);
void *cf_realloc(void *p, size_t n);
char *cf_strdup(const char *s);
char *cf_strndup(const char *s, size_t n);
void cf_free(void *p);

/*
 * Fault injection, for tests only.  After cf_alloc_fail_after(n), the
 * next n allocations succeed and every later one fails (returns NULL)
 * until cf_alloc_fail_after(-1) turns injection off.  jansson's
 * allocations are routed through the same counter while it is on.
 * cf_alloc_failures() is how many allocations were refused so far, so
 * a sweep knows when N has passed the last allocation of the code under
 * test.
 */
void cf_alloc_fail_after(long n);
unsigned long cf_alloc_failures(void);

/* As cf_alloc_fail_after(n), but only the (n+1)th allocation fails and
 * later ones succeed again (SQLite's "transient" fault): shows that the
 * code recovers from a failure, not only that it stops cleanly.
 * cf_alloc_fail_after(-1) still ends injection. */
void cf_alloc_fail_once(long n);

#ifdef __cplusplus
}
#endif

#endif
