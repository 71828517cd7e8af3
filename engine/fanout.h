/*
 * fanout.h - delivery of output records to several outputs at once, each
 * with its own filter, and retry, backoff, backpressure and
 * dead-lettering done once here for every connector.
 *
 * Each output gets the records its filter passes (kinds, lowest
 * severity, tactics), in the order they were produced.  An output that
 * answers RETRY keeps its records in a backlog of its own (owned copies,
 * at most `max_buffered`) and is offered the oldest again after a
 * backoff (10 ms doubling to 5 s); the other outputs go on receiving
 * records meanwhile, so one slow receiver does not hold the others back
 * until its backlog is full.  Then nothing more can be taken without
 * dropping, so the caller's wait function runs (the input keeps its
 * session and pauses, engine/connector.h) until the backlog has room:
 * every output then waits, and nothing is lost.  An output that has
 * been retrying longer than its `retry_for` (0: for ever) gives up: its
 * backlog, and what it refuses after, goes to the dead-letter callback
 * with the reason, and it is tried again on the next record.
 *
 * FAIL, and a late failure an asynchronous output reports through
 * cf_output_dead_letter(), go to the dead-letter callback too.
 *
 * Ownership: outputs are borrowed; the fan-out sets their dead_letter
 * and engine hooks.  Threading: used by one pipeline thread.
 */
#ifndef CF_FANOUT_H
#define CF_FANOUT_H

#include <jansson.h>
#include <signal.h>

#include "config.h"
#include "connector.h"

/* Record kinds an output can select. */
#define CF_KIND_ALERT 1u
#define CF_KIND_INCIDENT 2u
#define CF_KIND_DEAD_LETTER 4u

struct cf_output_filter {
    unsigned kinds;   /* CF_KIND_* bits; 0 means alert | incident */
    int min_severity; /* enum cf_level; -1: any, dead letters too */
    char **tactics;   /* owned; NULL: any.  A record passes when it
                         carries one of them */
    size_t n_tactics;
    size_t max_buffered;  /* backlog while retrying; 0 means 10,000 */
    int64_t retry_for_ms; /* give up after retrying this long; 0: never */
};

/* The filter of one `outputs:` item as core/config.c read it; checks
 * the kind and severity names.  `where` names the item in messages
 * ("outputs[1]").  CF_ERR with errstr on a bad value. */
cf_err_t cf_output_filter_from_item(const struct cf_output_item *it,
                                    const char *where,
                                    struct cf_output_filter *f, char *errstr,
                                    size_t errstr_size);
void cf_output_filter_clear(struct cf_output_filter *f);

/* One output of a pipeline: the connector, the name it is shown under
 * (its URL with any password masked), its filter.  Borrowed. */
struct cf_pipeline_output {
    struct cf_output *out;
    const char *name;
    struct cf_output_filter filter;
};

/* Where records go that no output takes for good: `rec` with `reason`
 * (engine-made words naming the output).  Returns false when even that
 * failed. */
typedef void (*cf_fanout_dead_fn)(void *opaque, const struct cf_out_record *rec,
                                  const char *reason);
/* Waits about `ms` milliseconds while outputs cannot take more (the
 * pipeline calls the input's wait(), or sleeps). */
typedef void (*cf_fanout_wait_fn)(void *opaque, long ms);

struct cf_fanout;

struct cf_fanout *cf_fanout_new(const struct cf_pipeline_output *outs, size_t n,
                                cf_fanout_dead_fn dead, cf_fanout_wait_fn wait,
                                void *opaque);
void cf_fanout_destroy(struct cf_fanout *fo); /* NULL is a no-op */

/* Hands `rec` to every output whose filter passes it (copying it into
 * the backlog of those retrying).  Waits, as above, while a backlog is
 * full.  CF_ERR_NOMEM when a copy could not be made: the record went to
 * the dead-letter callback for that output instead. */
void cf_fanout_deliver(struct cf_fanout *fo, const struct cf_out_record *rec);

/* Offers backlogs whose backoff has passed once more; cheap when no
 * output is retrying.  Called between input records. */
void cf_fanout_pump(struct cf_fanout *fo);

/* Empties every backlog and flushes every output until each has
 * acknowledged everything it took, waiting as long as needed (an
 * output's retry_for still applies).  `stop` (may be NULL: the count
 * of stop signals) is polled while waiting: at 2 (a second signal) the
 * drain gives up and returns CF_ERR with errstr naming the output still
 * waiting.  CF_ERR_IO
 * when an output's flush failed for good (errstr names it). */
cf_err_t cf_fanout_drain(struct cf_fanout *fo,
                         const volatile sig_atomic_t *stop, char *errstr,
                         size_t errstr_size);

/* Whether some output holds records it has not taken yet. */
bool cf_fanout_backlogged(const struct cf_fanout *fo);

/* Per output: {name, written, filtered, retries, failed, dead_lettered,
 * buffered}, in the order given.  New reference; NULL out of memory. */
json_t *cf_fanout_stats(const struct cf_fanout *fo);

/* Totals over every output (the top-level counters of --stats). */
void cf_fanout_totals(const struct cf_fanout *fo, uint64_t *written,
                      uint64_t *retries, uint64_t *failures);

#endif
