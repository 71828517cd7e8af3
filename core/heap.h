/*
 * heap.h - the one event-time priority queue: a binary min-heap of items
 * keyed by event time (ms), used for the alerts that wait for the
 * watermark (engine/fusion.c, engine/correlate.c).
 *
 * Order is total, so what comes out never depends on the heap's layout:
 * by time, then by the owner's tie-break function when it has one (both
 * users compare alert ids, so any arrival order of same-millisecond
 * alerts gives the same sequence), then by insertion (first pushed, first
 * popped).
 *
 * Ownership: the heap stores the item pointers, never what they point
 * to; cf_heap_free() frees the heap's own array only, so the owner pops
 * (or walks `entries`) and frees its items first.  Threading: a heap
 * belongs to one thread.
 */
#ifndef CF_HEAP_H
#define CF_HEAP_H

#include "common.h"

/* <0, 0 or >0 as item a goes before, ties with, or goes after item b;
 * only called for items of equal time. */
typedef int (*cf_heap_tie_fn)(const void *a, const void *b);

struct cf_heap_entry {
    int64_t time;
    uint64_t seq; /* insertion number: the last tie-break */
    void *item;
};

struct cf_heap {
    struct cf_heap_entry *entries; /* entries[0] is the first out */
    size_t n, cap;
    uint64_t next_seq;
    cf_heap_tie_fn tie; /* may be NULL: insertion order breaks ties */
};

#define CF_HEAP_INIT(tie)                                                      \
    { NULL, 0, 0, 0, (tie) }

/* Adds `item` at `time`.  CF_ERR_NOMEM leaves the heap as it was (the
 * item is not stored; the caller still owns it). */
cf_err_t cf_heap_push(struct cf_heap *h, int64_t time, void *item);

/* The first item (its time in *time when time is non-NULL), or NULL when
 * the heap is empty.  Peek leaves it in; pop removes it. */
void *cf_heap_peek(const struct cf_heap *h, int64_t *time);
void *cf_heap_pop(struct cf_heap *h, int64_t *time);

/* Frees the array (not the items) and leaves an empty, reusable heap
 * with the same tie-break. */
void cf_heap_free(struct cf_heap *h);

#endif
