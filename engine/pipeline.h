/*
 * pipeline.h - the engine's run loop: input records are decoded, routed
 * and matched; alerts are built, written, and fed to correlation and
 * fusion; incidents are written.  Bad records go to the dead-letter
 * output with their reason.  Output delivery, retry with backoff and
 * dead-lettering are done here once for every connector.
 *
 * Ownership: the pipeline borrows everything in cf_pipeline_setup, which
 * must outlive it.  Threading: one pipeline per thread.
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
};

struct cf_pipeline;

struct cf_pipeline *cf_pipeline_new(const struct cf_pipeline_setup *setup,
                                    char *errstr, size_t errstr_size);
void cf_pipeline_destroy(struct cf_pipeline *p); /* NULL is a no-op */

/* Processes `in` to its end, or until *setup.stop is set.  Returns
 * CF_OK, or an error when an output failed for good and even the
 * dead-letter output could not take the record (the only case where
 * continuing would lose data). */
cf_err_t cf_pipeline_run(struct cf_pipeline *p, struct cf_input *in,
                         char *errstr, size_t errstr_size);

/* End of all input: fires pending correlations, closes incidents, flushes
 * outputs. */
cf_err_t cf_pipeline_finish(struct cf_pipeline *p, char *errstr,
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
