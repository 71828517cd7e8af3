/*
 * drops.h - the dropped{reason} counter family.
 *
 * Every place the engine skips or loses something it was given (an
 * event it could not fully match, an alert a correlation could not
 * count, a record it could not write) counts it under one reason of a
 * fixed set, so `--stats` (and a metrics endpoint) always shows every
 * reason, 0 included, under the same stable snake_case names.  What is
 * dead-lettered is not dropped: it is kept, and counted as a dead letter.
 *
 * Each reason has exactly one owner, the component that skips: the
 * matcher (rules/ruleset.h, cf_matcher_scan_errors), the correlator and
 * fusion.  Each owner reports into a caller's struct cf_drops with its
 * own *_drops() function; the pipeline adds them up per pipeline.
 */
#ifndef CF_DROPS_H
#define CF_DROPS_H

#include <jansson.h>

#include "common.h"

enum cf_drop_reason {
    /* an event whose Hyperscan scan or PCRE2 match failed: rules may
     * have missed it (owner: the matcher) */
    CF_DROP_SCAN_ERROR,
    /* an event matched against no rule because routing it ran out of
     * memory (owner: the matcher) */
    CF_DROP_ROUTE_OUT_OF_MEMORY,
    /* an alert a correlation rule refers to that has no event time */
    CF_DROP_CORRELATION_NO_TIME,
    /* an alert without the correlation's group-by field (one per
     * alert and correlation) */
    CF_DROP_CORRELATION_NO_GROUP_BY,
    /* an alert without the value a value_* correlation needs */
    CF_DROP_CORRELATION_NO_VALUE,
    /* an alert too late for the only window that could hold it */
    CF_DROP_CORRELATION_TOO_LATE,
    /* an alert stamped past the wall clock + fusion.max_future_skew, of
     * a rule some correlation counts: written and fused at once, but
     * the correlation never sees it (its window would wait for its
     * time) (owner: fusion) */
    CF_DROP_CORRELATION_FUTURE_TIME,
    /* a window forgotten at correlation.max_open_windows */
    CF_DROP_CORRELATION_WINDOW_EVICTED,
    /* an alert a correlation skipped, or a condition not evaluated, for
     * lack of memory */
    CF_DROP_CORRELATION_OUT_OF_MEMORY,
    /* a correlation alert raised but not written (out of memory) */
    CF_DROP_CORRELATION_ALERT_UNWRITTEN,
    /* an incident version not written (out of memory) */
    CF_DROP_INCIDENT_RECORD_UNWRITTEN,
    /* fusion skipped linking, indexing or closing for lack of memory */
    CF_DROP_FUSION_OUT_OF_MEMORY,
    /* an alert without an event time: written as an alert, kept out of
     * incidents, whose links and bounds are all event time (owner:
     * fusion) */
    CF_DROP_FUSION_NO_TIME,
    CF_DROP_REASONS
};

struct cf_drops {
    uint64_t n[CF_DROP_REASONS];
};

/* {"scan_error": n, ...} with every reason.  New reference, NULL when
 * out of memory. */
json_t *cf_drops_to_json(const struct cf_drops *d);

#endif
