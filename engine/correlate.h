/*
 * correlate.h - Sigma correlation rules evaluated on event time.
 *
 * Fed every alert (detection alerts and, for chaining, correlation
 * alerts) and the watermark; keeps sliding windows per (correlation,
 * group-by values); raises a correlation alert when a condition holds.
 * Used by fusion (engine/fusion.c), which owns the watermark.
 *
 * Ownership: a correlator borrows the rulebook, which must outlive it;
 * it keeps its own copies of the alerts it holds.
 * Threading: one instance per pipeline thread.
 */
#ifndef CF_CORRELATE_H
#define CF_CORRELATE_H

#include <jansson.h>

#include "alert.h"
#include "config.h"
#include "drops.h"

struct cf_correlator;

/* `alert` is borrowed for the call (copy what you keep). */
typedef void (*cf_correlation_emit_fn)(const struct cf_alert *alert,
                                       void *opaque);

/* `settings` are the checked `correlation` config settings and `limits`
 * the input limits the events were accepted under, so that an alert's
 * event decodes again under the same ones (both borrowed for the call;
 * NULL for the defaults).  `emit` is called with `opaque` for every
 * correlation alert raised.  NULL with errstr when out of memory. */
struct cf_correlator *
cf_correlator_new(const struct cf_rulebook *rb,
                  const struct cf_correlation_settings *settings,
                  const struct cf_decode_limits *limits,
                  cf_correlation_emit_fn emit, void *opaque, char *errstr,
                  size_t errstr_size);
void cf_correlator_destroy(struct cf_correlator *co);

/* Whether some correlation rule counts alerts of `alert`'s rule. */
bool cf_correlator_refers_to(const struct cf_correlator *co,
                             const struct cf_alert *alert);

/* An alert happened (detection or correlation, for chaining).  `alert`
 * is borrowed for the call; what must wait for the watermark is copied. */
void cf_correlator_push(struct cf_correlator *co, const struct cf_alert *alert);

/* Event time up to which input is complete (highest seen minus the
 * allowed lateness): windows that ended before it may be expired. */
void cf_correlator_advance(struct cf_correlator *co, int64_t watermark_ms);

void cf_correlator_finish(struct cf_correlator *co);

/* Counters (windows open, fired, late alerts).  New reference. */
json_t *cf_correlator_stats(const struct cf_correlator *co);

/* Adds what correlation skipped to `sum`: alerts without event time,
 * group-by field or value, too late for their window, windows evicted at
 * max_open_windows, and what lack of memory made it skip. */
void cf_correlator_drops(const struct cf_correlator *co, struct cf_drops *sum);

struct cf_ckpt_w;
struct cf_ckpt_r;

/* The correlator's state in a checkpoint (engine/ckpt.h): watermark,
 * counters, pending alerts and every open window, per correlation in
 * its touch order.  cf_correlator_load restores it into a new
 * correlator; windows of correlations no longer loaded are dropped and
 * counted (r->dropped_windows).  Failure is r->bad or r->nomem. */
void cf_correlator_save(const struct cf_correlator *co, struct cf_ckpt_w *w);
void cf_correlator_load(struct cf_correlator *co, struct cf_ckpt_r *r);

#endif
