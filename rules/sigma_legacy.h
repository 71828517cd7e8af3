/*
 * sigma_legacy.h - private to the rule loader (rulebook.c): Sigma 1.x
 * aggregations in a rule's condition, converted to the Sigma correlation
 * that means the same.
 *
 * Older rule repositories write `condition: selection | count() by X > 5`
 * with a `timeframe` beside it; the Sigma 2 specification moved this into
 * correlation rules.  A rule with such a condition becomes its base rule
 * (or rules) plus a correlation over its timeframe:
 *
 *   expr | count() [by G] OP N       event_count, group-by G
 *   expr | count(F) [by G] OP N      value_count of F
 *   expr | sum(F) / avg(F) [by G] OP N   value_sum / value_avg of F
 *   expr | near s1 [and|or [not] s2 ...]   temporal over expr, s1, s2...
 *                                          (condition "expr and (s1 ...)")
 *
 * OP is one of > >= < <= = == !=.  The correlation keeps the rule's id,
 * name, title, level and tags, and sets no `generate`; each base rule is
 * the rule's document with the expression (or one search) as its
 * condition, no timeframe, and the id "<rule id>/base" (near:
 * "<rule id>/near" for the expression and "<rule id>/<search>" for each
 * search).  What has no equivalent is an error saying why: min() and
 * max(), a missing or malformed timeframe, a condition list holding an
 * aggregation, an unknown function or search.
 *
 * Pure functions of the document; load time only.
 */
#ifndef CF_SIGMA_LEGACY_H
#define CF_SIGMA_LEGACY_H

#include "common.h"

struct json_t;

/*
 * For a detection rule document `doc`: when its condition has no
 * aggregation, CF_OK with *docs = NULL.  Otherwise CF_OK with *docs a new
 * JSON array (the caller decrefs it) of the base rule documents followed
 * by the correlation document, and a one-line account of the conversion
 * in `note` (for `chainfuse check`); or CF_ERR_PARSE with the reason in
 * errstr, or CF_ERR_NOMEM ("out of memory").
 */
cf_err_t cf_legacy_aggregation_convert(const struct json_t *doc,
                                       struct json_t **docs, char *note,
                                       size_t note_size, char *errstr,
                                       size_t errstr_size);

#endif
