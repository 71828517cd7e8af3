/*
 * workers.c - a bounded ring of record batches detected by worker
 * threads and taken back in order (see workers.h).
 *
 * Batch i of the run lives in ring[i % n_ring].  Three counters, all
 * only growing, say where each batch is: below `released` the engine
 * has given it back; below `filled` it was handed out; below `taken` a
 * worker has started it.  The batch at `filled` (when the ring has
 * room) is the one being filled.  One mutex guards the counters a
 * worker reads (filled, taken); each batch's `done` is written under it
 * and polled without it.  Everything else in a batch belongs to whoever
 * the counters say holds it, and the mutex hand-over (for `done`, its
 * release store) orders their accesses.  A batch is a few hundred
 * records, so two lock round trips per batch cost nothing measurable.
 */
#include "workers.h"

#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "timeutil.h"

/* Distinct holds a batch keeps (an input's read buffers: a batch spans
 * one or two); a record of a further one is copied. */
#define MAX_HOLDS 8
#define NOT_COPIED SIZE_MAX

struct cf_work_batch {
    size_t n;
    /* detected: set by the worker under the mutex (for the condition
     * variable), read without it by the engine's polling (release /
     * acquire order the batch's contents) */
    atomic_bool done;
    struct cf_buf bytes; /* the data of records lent without a hold */
    /* each record's data in bytes, or NOT_COPIED: it is the input's,
     * kept by one of holds */
    size_t off[CF_WORK_BATCH_RECORDS];
    struct cf_hold *holds[MAX_HOLDS]; /* retained, distinct */
    size_t n_holds;
    size_t data_len; /* bytes of record data, copied or held */
    struct cf_record rec[CF_WORK_BATCH_RECORDS];
    struct cf_detected det[CF_WORK_BATCH_RECORDS];
    struct cf_event ev[CF_WORK_BATCH_RECORDS];
    struct cf_detect_list rules;
};

struct worker {
    struct cf_workers *w;
    struct cf_detector *det;
    pthread_t thread;
    _Atomic int64_t detect_ns; /* thread CPU spent detecting batches */
};

struct cf_workers {
    pthread_mutex_t lock;
    pthread_cond_t work_cv; /* a batch was handed out, or quit */
    pthread_cond_t done_cv; /* a batch was detected */
    struct cf_work_batch **ring;
    size_t n_ring;
    uint64_t filled, taken, released;
    bool quit;
    struct worker *workers;
    unsigned n_workers, started;
};

static void detect_batch(struct cf_detector *det, struct cf_work_batch *b) {
    cf_detect_list_reset(&b->rules);
    for (size_t i = 0; i < b->n; i++)
        cf_detect(det, &b->rec[i], &b->ev[i], &b->rules, &b->det[i]);
}

static void *work(void *arg) {
    struct worker *wk = arg;
    struct cf_workers *w = wk->w;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->quit && w->taken == w->filled)
            pthread_cond_wait(&w->work_cv, &w->lock);
        if (w->quit) break;
        struct cf_work_batch *b = w->ring[w->taken++ % w->n_ring];
        pthread_mutex_unlock(&w->lock);
        int64_t t0 = cf_thread_cpu_ns();
        detect_batch(wk->det, b);
        atomic_fetch_add_explicit(&wk->detect_ns, cf_thread_cpu_ns() - t0,
                                  memory_order_relaxed);
        pthread_mutex_lock(&w->lock);
        atomic_store_explicit(&b->done, true, memory_order_release);
        pthread_cond_signal(&w->done_cv); /* only the engine waits on it */
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int64_t cf_workers_detect_ns(const struct cf_workers *w) {
    int64_t ns = 0;
    for (unsigned i = 0; i < w->started; i++)
        ns += atomic_load_explicit(&w->workers[i].detect_ns,
                                   memory_order_relaxed);
    return ns;
}

/* Gives back what the batch kept of the input's memory. */
static void release_holds(struct cf_work_batch *b) {
    for (size_t i = 0; i < b->n_holds; i++) b->holds[i]->release(b->holds[i]);
    b->n_holds = 0;
}

static void batch_free(struct cf_work_batch *b) {
    if (!b) return;
    release_holds(b);
    for (size_t i = 0; i < CF_WORK_BATCH_RECORDS; i++) cf_event_free(&b->ev[i]);
    cf_buf_free(&b->bytes);
    cf_detect_list_free(&b->rules);
    cf_free(b);
}

struct cf_workers *cf_workers_new(unsigned n, const struct cf_ruleset *rs,
                                  const struct cf_time_names *times,
                                  const struct cf_decode_limits *limits,
                                  char *errstr, size_t errstr_size) {
    struct cf_workers *w = cf_calloc(1, sizeof *w);
    if (!w) goto nomem;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->work_cv, NULL);
    pthread_cond_init(&w->done_cv, NULL);
    /* each worker busy, one more batch ready for each, one filling and
     * one being consumed */
    w->n_ring = 2 * (size_t)n + 2;
    if (!(w->ring = cf_calloc(w->n_ring, sizeof *w->ring))) goto nomem;
    for (size_t i = 0; i < w->n_ring; i++) {
        struct cf_work_batch *b = cf_calloc(1, sizeof *b);
        if (!(w->ring[i] = b)) goto nomem;
        for (size_t j = 0; j < CF_WORK_BATCH_RECORDS; j++)
            cf_event_init(&b->ev[j]);
    }
    if (!(w->workers = cf_calloc(n, sizeof *w->workers))) goto nomem;
    w->n_workers = n;
    for (unsigned i = 0; i < n; i++) {
        w->workers[i].w = w;
        if (!(w->workers[i].det = cf_detector_new(rs, times, limits)))
            goto nomem;
    }
    /* Signals (a stop) go to the engine's thread, whose sleeps and
     * waits they should cut short, never to a worker: the workers start
     * with every signal blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned i = 0; i < n; i++) {
        int e =
            pthread_create(&w->workers[i].thread, NULL, work, &w->workers[i]);
        if (e != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            cf_seterr(errstr, errstr_size, CF_ERR,
                      "cannot start detection thread %u of %u: %s", i + 1, n,
                      strerror(e));
            cf_workers_destroy(w);
            return NULL;
        }
        w->started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return w;
nomem:
    cf_workers_destroy(w);
    cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
              "out of memory starting %u detection threads", n);
    return NULL;
}

void cf_workers_destroy(struct cf_workers *w) {
    if (!w) return;
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_broadcast(&w->work_cv);
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < w->started; i++)
        pthread_join(w->workers[i].thread, NULL);
    for (unsigned i = 0; w->workers && i < w->n_workers; i++)
        cf_detector_destroy(w->workers[i].det);
    cf_free(w->workers);
    for (size_t i = 0; w->ring && i < w->n_ring; i++) batch_free(w->ring[i]);
    cf_free(w->ring);
    pthread_cond_destroy(&w->done_cv);
    pthread_cond_destroy(&w->work_cv);
    pthread_mutex_destroy(&w->lock);
    cf_free(w);
}

bool cf_workers_room(const struct cf_workers *w) {
    return w->filled - w->released < w->n_ring;
}

void cf_workers_submit(struct cf_workers *w) {
    if (!cf_workers_room(w)) return;
    struct cf_work_batch *b = w->ring[w->filled % w->n_ring];
    if (!b->n) return;
    /* the copies stopped moving: point the records at them */
    for (size_t i = 0; i < b->n; i++)
        if (b->off[i] != NOT_COPIED) b->rec[i].data = b->bytes.data + b->off[i];
    pthread_mutex_lock(&w->lock);
    atomic_store_explicit(&b->done, false, memory_order_relaxed);
    w->filled++;
    pthread_cond_signal(&w->work_cv);
    pthread_mutex_unlock(&w->lock);
}

/* Keeps rec's data by its hold rather than a copy, when it has one and
 * the batch has it already or room for it. */
static bool keep_held(struct cf_work_batch *b, const struct cf_record *rec) {
    struct cf_hold *h = rec->hold;
    if (!h) return false;
    if (b->n_holds && b->holds[b->n_holds - 1] == h) return true;
    for (size_t i = 0; i + 1 < b->n_holds; i++)
        if (b->holds[i] == h) return true;
    if (b->n_holds == MAX_HOLDS) return false;
    h->retain(h);
    b->holds[b->n_holds++] = h;
    return true;
}

cf_err_t cf_workers_add(struct cf_workers *w, const struct cf_record *rec) {
    struct cf_work_batch *b = w->ring[w->filled % w->n_ring];
    if (keep_held(b, rec)) {
        /* the input's read buffer, kept for the batch: no copy */
        b->off[b->n] = NOT_COPIED;
    } else if (!cf_buf_reserve(&b->bytes, rec->len)) {
        b->bytes.failed = false; /* what it holds is whole */
        return CF_ERR_NOMEM;
    } else {
        b->off[b->n] = b->bytes.len;
        cf_buf_append(&b->bytes, rec->data, rec->len);
    }
    b->rec[b->n++] = *rec;
    b->data_len += rec->len;
    if (b->n == CF_WORK_BATCH_RECORDS || b->data_len >= CF_WORK_BATCH_BYTES)
        cf_workers_submit(w);
    return CF_OK;
}

size_t cf_workers_pending(const struct cf_workers *w) {
    return (size_t)(w->filled - w->released);
}

struct cf_work_batch *cf_workers_next(struct cf_workers *w, bool wait) {
    if (w->released == w->filled) return NULL;
    struct cf_work_batch *b = w->ring[w->released % w->n_ring];
    /* polled once per record read: no lock unless it must wait */
    if (atomic_load_explicit(&b->done, memory_order_acquire)) return b;
    if (!wait) return NULL;
    pthread_mutex_lock(&w->lock);
    while (!atomic_load_explicit(&b->done, memory_order_acquire))
        pthread_cond_wait(&w->done_cv, &w->lock);
    pthread_mutex_unlock(&w->lock);
    return b;
}

void cf_workers_release(struct cf_workers *w, struct cf_work_batch *b) {
    b->n = 0;
    b->data_len = 0;
    release_holds(b);
    cf_buf_reset(&b->bytes);
    w->released++;
}

size_t cf_work_batch_len(const struct cf_work_batch *b) {
    return b->n;
}

void cf_work_batch_get(struct cf_work_batch *b, size_t i,
                       const struct cf_record **rec, struct cf_event **ev,
                       const struct cf_detected **det,
                       const struct cf_sigma_rule *const **rules) {
    *rec = &b->rec[i];
    *ev = &b->ev[i];
    *det = &b->det[i];
    *rules = b->rules.v;
}
