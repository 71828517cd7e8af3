/*
 * sigma_correlation.h - Sigma correlation rules as data (correlation
 * specification v2.1 plus the v2.2 string condition of temporal rules):
 * the parsed form that engine/correlate.c evaluates.
 *
 * Produced by cf_correlation_parse() (called by the rule loader for every
 * document with a `correlation` key); references to other rules are
 * resolved afterwards by the rule loader (rulebook.c).
 *
 * Ownership: a correlation owns every string and array below it; the
 * rulebook owns the correlation.  Resolved references (`refs[i].rule`,
 * `refs[i].corr`) are borrowed from the same rulebook.  Immutable after
 * resolution, so threads may share it.
 */
#ifndef CF_SIGMA_CORRELATION_H
#define CF_SIGMA_CORRELATION_H

#include "sigma.h"

enum cf_correlation_type {
    CF_CORR_EVENT_COUNT,
    CF_CORR_VALUE_COUNT,
    CF_CORR_TEMPORAL,
    CF_CORR_TEMPORAL_ORDERED,
    CF_CORR_VALUE_SUM,
    CF_CORR_VALUE_AVG,
    CF_CORR_VALUE_PERCENTILE
};

/* "event_count", ... as in the rule. */
const char *cf_correlation_type_name(enum cf_correlation_type type);

/* One `rules:` entry.  `ref` is the text in the rule (id or name); after
 * resolution exactly one of rule / corr is set. */
struct cf_correlation_ref {
    char *ref;
    const struct cf_sigma_rule *rule;        /* borrowed */
    const struct cf_sigma_correlation *corr; /* borrowed (chaining) */
};

/* One `condition:` criterion; several are ANDed. */
struct cf_correlation_criterion {
    enum cf_compare op;
    double value;
};

/* The v2.2 string condition of temporal rules ("a and (b or not c)"),
 * over the referenced rules; `ref` indexes refs[]. */
enum cf_corr_expr_op { CF_CEXPR_REF, CF_CEXPR_AND, CF_CEXPR_OR, CF_CEXPR_NOT };
struct cf_corr_expr {
    enum cf_corr_expr_op op;
    uint32_t ref;               /* CF_CEXPR_REF */
    struct cf_corr_expr *a, *b; /* AND/OR: a, b; NOT: a */
};

struct cf_sigma_correlation {
    char *id;   /* may be NULL */
    char *name; /* may be NULL */
    char *title;
    char *path;
    char *key; /* id, else name, else title: what alerts carry as rule_id */
    enum cf_level level; /* medium where the rule says nothing */
    enum cf_correlation_type type;

    struct cf_correlation_ref *refs;
    size_t n_refs;

    char **group_by; /* as written (may name aliases) */
    size_t n_group_by;
    /* group_fields[g * n_refs + r]: the event field that gives group-by
     * value g for alerts of refs[r] (aliases applied). */
    char **group_fields;

    /* value_*: the `field` (several for value_count: a tuple), per ref
     * like group_fields: value_fields[f * n_refs + r]. */
    char **fields;
    size_t n_fields;
    char **value_fields;

    int64_t timespan_ms;
    struct cf_correlation_criterion *criteria; /* ANDed; may be empty for
                                                  temporal types */
    size_t n_criteria;
    struct cf_corr_expr *expr; /* temporal string condition, or NULL */

    bool generate; /* referenced rules also written stand-alone (their
                      `correlated`/`generated`, set by the rule loader) */
    /* As for a detection rule (sigma.h), when another correlation
     * refers to this one (chaining). */
    bool correlated, generated;

    char **tags;
    size_t n_tags;
    /* Own attack.* tags, else the union of the referenced rules' (filled
     * by the rule loader). */
    char **tactics;
    size_t n_tactics;
    char **techniques;
    size_t n_techniques;

    uint32_t index; /* position in rulebook->correlations */
};

/* True when every criterion holds for `v` (no criteria: true). */
bool cf_correlation_criteria_hold(const struct cf_sigma_correlation *corr,
                                  double v);

/* Evaluates the string condition given which refs are present
 * (present[r] != 0). */
bool cf_corr_expr_eval(const struct cf_corr_expr *e,
                       const unsigned char *present);

/* Adds tactics and techniques (deduplicated) to `c`; used by the rule
 * loader when a correlation inherits the tags of the rules it refers
 * to.  CF_ERR_NOMEM leaves `c` with a subset. */
cf_err_t cf_correlation_inherit_tags(struct cf_sigma_correlation *c,
                                     char *const *tactics, size_t n_tactics,
                                     char *const *techniques,
                                     size_t n_techniques);

#endif
