/*
 * detect.h - the part of processing one input record that depends on
 * nothing before it: telling a defect or a blank line from an event,
 * decoding it, routing and matching it.  What it finds is kept (the
 * decoded event, the rules that matched in rule order, what went wrong)
 * so that the order-dependent rest - clocks, fusion, alerts, outputs,
 * positions - can be done afterwards, in input order, by the pipeline
 * (engine/pipeline.c).  That split is what lets detection run on worker
 * threads (engine/workers.h) with output identical to one thread.
 *
 * Matching reads neither the event's time nor its position, so the
 * clock correction (engine/clocks.h) may come after it.
 *
 * Ownership: a detector owns its decoder and matcher and borrows the
 * ruleset, the time names and the limits, which must outlive it.
 * Threading: one detector per thread; the ruleset and time names they
 * borrow are shared read-only.
 */
#ifndef CF_DETECT_H
#define CF_DETECT_H

#include "connector.h"
#include "event.h"
#include "ruleset.h"

enum cf_detect_kind {
    CF_DETECT_DEFECT,    /* the input found the record bad (rec->defect) */
    CF_DETECT_BLANK,     /* whitespace only */
    CF_DETECT_UNDECODED, /* the decoder refused it (reason) */
    CF_DETECT_EVENT      /* decoded and matched */
};

/* The rules that matched, appended in rule order; reused between
 * records (cf_detect_list_reset keeps the allocation). */
struct cf_detect_list {
    const struct cf_sigma_rule **v;
    size_t n, cap;
};

/* What detection found out about one record. */
struct cf_detected {
    enum cf_detect_kind kind;
    const char *reason; /* DEFECT, UNDECODED: a static CF_DEFECT_* text (or
                           the input's own words for a defect) */
    /* EVENT: the rules that matched are list->v[first .. first + n) */
    size_t first_match, n_matches;
    bool matches_lost; /* out of memory keeping them: none are listed */
    /* this record's scan errors and routing failures (0 or 1 each), and
     * the matcher's description of its first scan error, owned by the
     * matcher (written once, before its first count) */
    uint32_t scan_errors, route_failures;
    const char *scan_error;
};

struct cf_detector;

/* `times`: the time fields (NULL: built-in).  NULL when out of memory. */
struct cf_detector *cf_detector_new(const struct cf_ruleset *rs,
                                    const struct cf_time_names *times,
                                    const struct cf_decode_limits *limits);
void cf_detector_destroy(struct cf_detector *d); /* NULL is a no-op */

/* Detects `rec` into `out`: decodes it into `ev` (its position set)
 * when it is an event and appends the rules it matches to `list`. */
void cf_detect(struct cf_detector *d, const struct cf_record *rec,
               struct cf_event *ev, struct cf_detect_list *list,
               struct cf_detected *out);

static inline void cf_detect_list_reset(struct cf_detect_list *l) {
    l->n = 0;
}
void cf_detect_list_free(struct cf_detect_list *l);

#endif
