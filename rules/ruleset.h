/*
 * ruleset.h - loaded Sigma rules compiled for matching.
 *
 * Every glob and regex pattern of every rule is grouped by event field and
 * compiled into one Hyperscan database per field (fields with the same
 * patterns share one), so each field value of an event is scanned once
 * whatever the number of rules, and only when one of the event's routes
 * has patterns on that field; a value the matcher scanned before in the
 * same field (with the same databases) is not scanned again (its scan
 * memo).  A hit marks the
 * pattern's item; only rules with a marked item (plus those whose
 * condition can hold with nothing marked) have their condition evaluated.
 * Patterns Hyperscan cannot express are checked directly.  Compiled
 * databases are cached on disk (config `cache.dir`), keyed by a SHA-256
 * of everything that changes compilation: the rules, the expressions
 * and flags, the Hyperscan version and the CPU platform.
 *
 * Logsource routing decides which rules see an event (rules/logsource.h).
 *
 * Ownership: a ruleset borrows the rulebook (and the rules it hands to
 * match callbacks), which must outlive it; it owns its databases, field
 * map and router.  A matcher borrows its ruleset, which must outlive it.
 *
 * Threading: compiling writes to the rulebook (rejections), so compile
 * before sharing either.  A compiled ruleset is immutable and may be
 * shared by threads; each thread matches with its own cf_matcher
 * (Hyperscan scratch, marks and route cache).
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
    size_t databases;        /* distinct Hyperscan databases (fields with
                                the same patterns share one) */
    size_t patterns;         /* patterns compiled into Hyperscan */
    size_t literal_patterns; /* of which with its literal API */
    size_t direct_patterns;  /* patterns checked directly */
    bool cache_hit;          /* databases came from the disk cache */
    bool plan_hit; /* and the expressions from the compile plan there */
    double compile_seconds;
};

/* Compiles every rule of `rb`.  A rule that cannot compile (a regex
 * neither Hyperscan nor PCRE2 accepts, ...) stays in rb->rules but is
 * never matched, and is recorded in rb->rejected with its reason; the
 * others go on.  `cfg` (may be NULL) is read during the call only.  NULL
 * with errstr when the ruleset as a whole cannot be built: a malformed
 * `field_mappings` or `logsources` section, a Hyperscan failure that is
 * not one expression's fault, or memory running out. */
struct cf_ruleset *cf_ruleset_compile(struct cf_rulebook *rb,
                                      const struct cf_config *cfg, char *errstr,
                                      size_t errstr_size);
void cf_ruleset_destroy(struct cf_ruleset *rs); /* NULL is a no-op */
void cf_ruleset_get_stats(const struct cf_ruleset *rs,
                          struct cf_ruleset_stats *stats);

/* How many Hyperscan databases are loaded: all of them once compiled,
 * but when they came from the cache, each is loaded the first time a
 * matcher meets events that are routed to it.  Thread-safe. */
size_t cf_ruleset_databases_loaded(const struct cf_ruleset *rs);

/* NULL when memory runs out. */
struct cf_matcher *cf_matcher_new(const struct cf_ruleset *rs);
void cf_matcher_destroy(struct cf_matcher *m); /* NULL is a no-op */

/* `rule` is borrowed from the rulebook. */
typedef void (*cf_match_fn)(const struct cf_sigma_rule *rule, void *opaque);

/* Calls fn once per rule that matches `ev`, in rule order.  Returns the
 * number of matching rules.  A scan that fails does not stop the others;
 * the event is counted in cf_matcher_scan_errors; an event that could
 * not be routed for lack of memory, in cf_matcher_route_failures. */
int cf_matcher_match(struct cf_matcher *m, const struct cf_event *ev,
                     cf_match_fn fn, void *opaque);

/* How many events since cf_matcher_new had a scan fail (an hs_scan
 * error, a PCRE2 error other than "no match", a keyword literal scan
 * that could not run): rules may have missed them.  *first_error, when
 * first_error is not NULL, is set to a description of the first failure
 * ("" when none), owned by the matcher. */
uint64_t cf_matcher_scan_errors(const struct cf_matcher *m,
                                const char **first_error);

/* How many events were matched against no rule because routing them ran
 * out of memory. */
uint64_t cf_matcher_route_failures(const struct cf_matcher *m);

/* The scan memo since cf_matcher_new: lookups (one per field value, or
 * per value and keyword database) answered without a scan (*hits) and
 * values scanned and offered to it (*misses).  Values too long to keep
 * are scanned without a lookup. */
void cf_matcher_memo_counts(const struct cf_matcher *m, uint64_t *hits,
                            uint64_t *misses);

#endif
