/*
 * pipeline.h - the engine's run loop: input records are decoded, routed
 * and matched; alerts are built, written, and fed to correlation and
 * fusion; incidents are written.  Bad records go to the dead-letter
 * output with their reason.  Output delivery, retry with backoff and
 * dead-lettering are done here once for every connector.
 *
 * Ownership: the pipeline borrows everything in cf_pipeline_setup, which
 * must outlive it.  Threading: one pipeline per thread (which, with
 * setup.threads > 1, runs detection threads of its own during
 * cf_pipeline_run).
 */
#ifndef CF_PIPELINE_H
#define CF_PIPELINE_H

#include <jansson.h>
#include <signal.h>

#include "config.h"
#include "connector.h"
#include "drops.h"
#include "fanout.h"
#include "ruleset.h"

struct cf_pipeline_setup {
    const struct cf_config *cfg;
    const struct cf_rulebook *rb;
    const struct cf_ruleset *rs;
    /* Where alerts and incidents go, each output with its filter
     * (engine/fanout.h); or, when n_outs is 0, `out` alone with the
     * default filter (alerts and incidents). */
    const struct cf_pipeline_output *outs;
    size_t n_outs;
    struct cf_output *out;
    struct cf_output *dead_letter; /* where bad records go; required */
    /* Set (by a signal handler) to stop reading: cf_pipeline_run returns
     * at the next record.  May be NULL. */
    const volatile sig_atomic_t *stop;
    /* Checkpoints (engine/ckpt.h): NULL for none.  A checkpoint found
     * there is restored by cf_pipeline_new; one is written every
     * state_interval_ms while running and by cf_pipeline_finish. */
    const char *state_dir;
    int64_t state_interval_ms;
    /* Periodic checkpoints written by a forked child from its copy of
     * memory (the engine pauses for the flush and the fork only);
     * positions are committed when it has finished.  Checkpoints at
     * shutdown and on an input's request are written in-process. */
    bool state_background;
    /* Detection threads (engine/workers.h): 0 or 1 detects on the
     * calling thread; N > 1 starts N workers for the run, while the
     * calling thread reads and does everything order-dependent, so the
     * output is the same as with one. */
    unsigned threads;
};

struct cf_pipeline;

/* With a state_dir holding a checkpoint, restores it (refused whole,
 * NULL with errstr, when it is of another format version, damaged, or
 * cannot be read). */
struct cf_pipeline *cf_pipeline_new(const struct cf_pipeline_setup *setup,
                                    char *errstr, size_t errstr_size);
void cf_pipeline_destroy(struct cf_pipeline *p); /* NULL is a no-op */

/* Processes `in` to its end, or until *setup.stop is set.  Returns
 * CF_OK, or an error when an output failed for good and even the
 * dead-letter output could not take the record (the only case where
 * continuing would lose data). */
cf_err_t cf_pipeline_run(struct cf_pipeline *p, struct cf_input *in,
                         char *errstr, size_t errstr_size);

/* Whether `dir` holds a checkpoint that cf_pipeline_new would restore
 * (a resumed run appends to its output files rather than starting them
 * afresh). */
bool cf_pipeline_state_exists(const char *dir);

/* After cf_pipeline_run.  At the end of input (or when stopped
 * without a state_dir): fires pending correlations, closes incidents,
 * flushes every output.  When stopped (*setup.stop) with a state_dir:
 * keeps what waits for the watermark and every open incident as it is.
 * Then, in both cases, the state is checkpointed (with a state_dir) and
 * inputs told to commit what it covers.  A second stop signal while an
 * output still retries gives up the flush: no checkpoint, no commit, an
 * error saying which output; the last checkpoint stays. */
cf_err_t cf_pipeline_finish(struct cf_pipeline *p, char *errstr,
                            size_t errstr_size);

/* Flushes every output until all is acknowledged, writes a checkpoint
 * (with a state_dir) and commits input positions: what a
 * state.interval does; for tests and benchmarks.  Between records. */
cf_err_t cf_pipeline_checkpoint(struct cf_pipeline *p, char *errstr,
                                size_t errstr_size);

/* Every counter, as `--stats` writes it (README "Counters"): records,
 * blank_lines, events, dead letters by reason (a fixed set), alerts,
 * incidents, incident_records, written, the dropped family (every reason,
 * 0 included) and fusion's own counters.  New reference, NULL when out of
 * memory.  Each counter has one owner: connectors count nothing, the
 * pipeline counts records and deliveries, fusion what it emits, and
 * each dropped reason the component that skips. */
json_t *cf_pipeline_stats(const struct cf_pipeline *p);

/* The dropped family of this pipeline: the matcher's scan errors, and
 * what correlation and fusion dropped (engine/drops.h). */
void cf_pipeline_dropped(const struct cf_pipeline *p, struct cf_drops *out);

#endif
