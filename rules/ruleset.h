/*
 * ruleset.h - loaded Sigma rules compiled for matching.
 *
 * Every glob and regex pattern of every rule is grouped by event field and
 * compiled into one Hyperscan database per field, so each field value of
 * an event is scanned once whatever the number of rules.  A hit marks the
 * pattern's item; only rules with a marked item (plus those whose
 * condition can hold with nothing marked) have their condition evaluated.
 * Patterns Hyperscan cannot express are checked directly.  Compiled
 * databases are cached on disk keyed by the rules' content.
 *
 * Logsource routing decides which rules see an event (rules/logsource.h).
 *
 * Ownership: a ruleset borrows the rulebook, which must outlive it.  A
 * ruleset is immutable once compiled and may be shared by threads; each
 * thread matches with its own cf_matcher (Hyperscan scratch and marks).
 */
#ifndef CF_RULESET_H
#define CF_RULESET_H

#include "common.h"
#include "config.h"
#include "event.h"
#include "sigma.h"

struct cf_ruleset;
struct cf_matcher;

struct cf_ruleset_stats {
    size_t rules;            /* rules compiled */
    size_t fields;           /* distinct event fields with a database */
    size_t patterns;         /* patterns compiled into Hyperscan */
    size_t direct_patterns;  /* patterns checked directly */
    bool cache_hit;          /* databases came from the disk cache */
    double compile_seconds;
};

/* Compiles every rule of `rb`.  A rule that cannot compile (a regex
 * neither Hyperscan nor PCRE2 accepts, ...) is moved to rb->rejected with
 * its reason and the others go on.  NULL with errstr only if nothing can
 * be built at all. */
struct cf_ruleset *cf_ruleset_compile(struct cf_rulebook *rb,
                                      const struct cf_config *cfg,
                                      char *errstr, size_t errstr_size);
void cf_ruleset_destroy(struct cf_ruleset *rs); /* NULL is a no-op */
void cf_ruleset_get_stats(const struct cf_ruleset *rs,
                          struct cf_ruleset_stats *stats);

struct cf_matcher *cf_matcher_new(const struct cf_ruleset *rs);
void cf_matcher_destroy(struct cf_matcher *m); /* NULL is a no-op */

typedef void (*cf_match_fn)(const struct cf_sigma_rule *rule, void *opaque);

/* Calls fn once per rule that matches `ev`, in rule order.  Returns the
 * number of matching rules.  A scan that fails does not stop the others;
 * the event is counted in cf_matcher_scan_errors. */
int cf_matcher_match(struct cf_matcher *m, const struct cf_event *ev,
                     cf_match_fn fn, void *opaque);

/* How many events since cf_matcher_new had a scan fail (an hs_scan
 * error, a PCRE2 error other than "no match", a keyword literal scan
 * that could not run): rules may have missed them.  *first_error, when
 * first_error is not NULL, is set to a description of the first failure
 * ("" when none), owned by the matcher. */
uint64_t cf_matcher_scan_errors(const struct cf_matcher *m,
                                const char **first_error);

#endif
