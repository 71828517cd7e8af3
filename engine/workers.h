/*
 * workers.h - detection on N threads, results handed back in input order.
 *
 * The engine's thread reads records and adds them to the batch being
 * filled: kept by the input's hold on their memory when it lends one
 * (the file input's read buffers), otherwise copied, since an input's
 * record is only valid until its next read;
 * a full batch (a few hundred records) is handed to the workers, each of
 * which detects a whole batch with its own decoder and matcher
 * (engine/detect.h): per record the decoded event, the rules matched in
 * rule order, or why it is no event.  The engine takes batches back
 * strictly in the order they were filled (cf_workers_next), does the
 * order-dependent work on them and releases them for reuse.
 *
 * The batches form a ring of fixed size (twice the workers, plus two),
 * so memory stays flat whatever the input size: when every batch is in
 * use the engine must take one back before it can add a record
 * (cf_workers_room).  Each batch keeps its buffers (record bytes,
 * events, matches) between uses, grown to the largest seen, and
 * releases the holds it took when it is given back.
 *
 * Ownership: the workers borrow the ruleset, time names and limits,
 * which must outlive them; a batch returned by cf_workers_next and its
 * records, events and rules are the engine's until cf_workers_release.
 * Threading: every function here is called by the one engine thread;
 * the workers touch a batch only between its hand-out and its return.
 */
#ifndef CF_WORKERS_H
#define CF_WORKERS_H

#include "detect.h"

struct cf_workers;
struct cf_work_batch;

/* Most records and bytes of record data a batch holds. */
#define CF_WORK_BATCH_RECORDS 128
#define CF_WORK_BATCH_BYTES (256u * 1024)

/* Starts `n` (>= 1) worker threads.  NULL with errstr when memory or a
 * thread cannot be had. */
struct cf_workers *cf_workers_new(unsigned n, const struct cf_ruleset *rs,
                                  const struct cf_time_names *times,
                                  const struct cf_decode_limits *limits,
                                  char *errstr, size_t errstr_size);
/* Stops the workers (a batch being detected is finished, those not yet
 * started are abandoned) and frees everything, releasing the holds the
 * batches kept: before the input that lent them is closed.  NULL is a
 * no-op. */
void cf_workers_destroy(struct cf_workers *w);

/* Whether cf_workers_add can take a record now (the batch being filled
 * has room, or a free batch can start). */
bool cf_workers_room(const struct cf_workers *w);

/* Adds `rec` to the batch being filled (cf_workers_room must be true),
 * retaining rec->hold or copying its data, and hands the batch out once
 * it is full.  CF_ERR_NOMEM when a copy could not be made (nothing was
 * added). */
cf_err_t cf_workers_add(struct cf_workers *w, const struct cf_record *rec);

/* Hands out the batch being filled, if it holds any record. */
void cf_workers_submit(struct cf_workers *w);

/* Batches handed out and not yet released. */
size_t cf_workers_pending(const struct cf_workers *w);

/* The oldest batch handed out, once its detection is done (with
 * `wait`, waits for it); NULL when none is handed out, or without
 * `wait` when it is not done yet. */
struct cf_work_batch *cf_workers_next(struct cf_workers *w, bool wait);

/* Thread CPU time the workers spent detecting, in nanoseconds, so far
 * (exact: measured around every batch). */
int64_t cf_workers_detect_ns(const struct cf_workers *w);

/* Gives back the batch cf_workers_next returned (must be the oldest). */
void cf_workers_release(struct cf_workers *w, struct cf_work_batch *b);

/* A batch's records, in input order.  *rec's data is the batch's copy;
 * *ev is valid when det->kind is CF_DETECT_EVENT; the matched rules are
 * rules[det->first_match ..]. */
size_t cf_work_batch_len(const struct cf_work_batch *b);
void cf_work_batch_get(struct cf_work_batch *b, size_t i,
                       const struct cf_record **rec, struct cf_event **ev,
                       const struct cf_detected **det,
                       const struct cf_sigma_rule *const **rules);

#endif
