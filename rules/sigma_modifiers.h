/*
 * sigma_modifiers.h - private header of the Sigma rule loader (rulebook.c,
 * sigma_rule.c, sigma_modifiers.c).  Not part of the module contract:
 * other modules use sigma.h only.
 *
 * Everything here runs at load time on one thread; no shared state.
 */
#ifndef CF_SIGMA_MODIFIERS_H
#define CF_SIGMA_MODIFIERS_H

#include <jansson.h>

#include "sigma.h"

/* Upper bound on the alternatives one value may expand to (windash,
 * base64offset, expand multiply); a rule beyond it is rejected rather than
 * producing a pattern set that would bloat the Hyperscan databases. */
#define CF_SIGMA_MAX_ALTS 1024

/*
 * Builds one field condition from a detection map entry.  `key` is the
 * map key as written ("CommandLine|contains|all"), or NULL for a keyword
 * list.  `values` is a scalar or an array of scalars.  `placeholders` is
 * the config's `placeholders` object (or NULL) for |expand; *used_expand
 * is set to true when it was consulted.  On success *out owns everything
 * (free with cf_sigma_field_cond_clear()).  On failure returns CF_ERR_PARSE
 * with the reason in errstr and *out is left empty.
 */
cf_err_t cf_sigma_field_cond_build(const char *key, const json_t *values,
                                   const json_t *placeholders,
                                   struct cf_sigma_field_cond *out,
                                   bool *used_expand, char *errstr,
                                   size_t errstr_size);

/* Frees what a field condition / pattern owns (not the struct itself). */
void cf_sigma_field_cond_clear(struct cf_sigma_field_cond *fc);
void cf_sigma_pattern_clear(struct cf_sigma_pattern *p);

/*
 * Parses a Sigma string value (escapes and wildcards, see
 * sigma-rules-specification "Escape Character") into a GLOB pattern.
 * The pattern owns malloc'd text/wild; clear with cf_sigma_pattern_clear().
 */
cf_err_t cf_sigma_glob_parse(const char *s, size_t len,
                             struct cf_sigma_pattern *out);

/* Frees searches[0..n) and the array. */
void cf_sigma_searches_free(struct cf_sigma_search *searches, size_t n);

/*
 * Parses a detection section: every key except `condition`, `timeframe`
 * and those in skip_keys (NULL-terminated, may be NULL) is a search.
 * Search names are prefixed with name_prefix (may be NULL).  On success
 * the caller owns *searches (cf_sigma_searches_free) and *cond
 * (cf_sigma_cond_destroy).  Returns CF_ERR_PARSE with a reason naming the
 * search/field/modifier on failure.
 */
cf_err_t
cf_sigma_detection_parse(const json_t *detection, const char *const *skip_keys,
                         const char *name_prefix, const json_t *placeholders,
                         struct cf_sigma_search **searches, size_t *n_searches,
                         struct cf_sigma_cond **cond, bool *used_expand,
                         char *errstr, size_t errstr_size);

/*
 * One detection-rule document to a rule.  Returns NULL with a reason in
 * errstr when the rule cannot be loaded.  The caller owns the result
 * (cf_sigma_rule_destroy).  `placeholders` as above.
 */
struct cf_sigma_rule *cf_sigma_rule_parse(const json_t *doc, const char *path,
                                          const json_t *placeholders,
                                          char *errstr, size_t errstr_size);
void cf_sigma_rule_destroy(struct cf_sigma_rule *rule); /* NULL: no-op */

/* SHA-256 of data as 64 lowercase hex digits plus NUL into hex[65].
 * CF_ERR_NOMEM when OpenSSL fails (it only can for lack of memory). */
cf_err_t cf_sigma_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
