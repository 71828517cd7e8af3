/*
 * heap.c - the event-time min-heap (core/heap.h).  Called for every
 * alert fusion and the correlator hold back; one thread per heap.
 */
#include "heap.h"

static bool before(const struct cf_heap *h, const struct cf_heap_entry *a,
                   const struct cf_heap_entry *b) {
    if (a->time != b->time) return a->time < b->time;
    if (h->tie) {
        int c = h->tie(a->item, b->item);
        if (c) return c < 0;
    }
    return a->seq < b->seq;
}

cf_err_t cf_heap_push(struct cf_heap *h, int64_t time, void *item) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        struct cf_heap_entry *e;
        if (cap > SIZE_MAX / sizeof *e) return CF_ERR_NOMEM;
        if (!(e = cf_realloc(h->entries, cap * sizeof *e))) return CF_ERR_NOMEM;
        h->entries = e;
        h->cap = cap;
    }
    struct cf_heap_entry x = {time, h->next_seq++, item};
    size_t i = h->n++;
    /* Sift up: move parents down until x's place is found. */
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(h, &x, &h->entries[parent])) break;
        h->entries[i] = h->entries[parent];
        i = parent;
    }
    h->entries[i] = x;
    return CF_OK;
}

void *cf_heap_peek(const struct cf_heap *h, int64_t *time) {
    if (!h->n) return NULL;
    if (time) *time = h->entries[0].time;
    return h->entries[0].item;
}

void *cf_heap_pop(struct cf_heap *h, int64_t *time) {
    if (!h->n) return NULL;
    struct cf_heap_entry top = h->entries[0];
    struct cf_heap_entry x = h->entries[--h->n];
    size_t i = 0;
    /* Sift the last entry down from the root. */
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n) break;
        if (child + 1 < h->n &&
            before(h, &h->entries[child + 1], &h->entries[child]))
            child++;
        if (!before(h, &h->entries[child], &x)) break;
        h->entries[i] = h->entries[child];
        i = child;
    }
    if (h->n) h->entries[i] = x;
    if (time) *time = top.time;
    return top.item;
}

void cf_heap_free(struct cf_heap *h) {
    cf_free(h->entries);
    h->entries = NULL;
    h->n = h->cap = 0;
    h->next_seq = 0;
}
