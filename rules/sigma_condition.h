/*
 * sigma_condition.h - private to the Sigma rule loader: a detection's
 * `condition` string to a struct cf_sigma_cond tree (sigma.h).
 * Load time only, no shared state.
 */
#ifndef CF_SIGMA_CONDITION_H
#define CF_SIGMA_CONDITION_H

#include "sigma.h"

/*
 * Parses one condition expression.  `names` are the rule's search
 * identifiers in definition order; CF_COND_SEARCH nodes index them.
 * Quantifiers (`1 of x*`, `all of them`, ...) are expanded here; a search
 * that is unknown, or a pattern that matches none, is an error.
 * Returns a tree the caller owns (cf_sigma_cond_destroy), or NULL with a
 * reason in errstr (exactly "out of memory" when that was the cause).
 */
struct cf_sigma_cond *cf_sigma_condition_parse(const char *text,
                                               const char *const *names,
                                               size_t n_names, char *errstr,
                                               size_t errstr_size);

/* Frees a tree returned above (root included).  NULL is a no-op. */
void cf_sigma_cond_destroy(struct cf_sigma_cond *cond);

/* Frees what a node owns below it (its kids), not the node itself. */
void cf_sigma_cond_clear(struct cf_sigma_cond *cond);

/* Adds `delta` to every CF_COND_SEARCH index (filters appending their
 * searches after a rule's own). */
void cf_sigma_cond_offset(struct cf_sigma_cond *cond, uint32_t delta);

#endif
