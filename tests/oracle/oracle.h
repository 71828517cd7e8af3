/*
 * oracle.h - a deliberately simple Sigma evaluator that checks the
 * Hyperscan matcher (tests/unit/test_differential.c).
 *
 * For every rule whose logsource routes the event, the condition tree is
 * evaluated directly, pattern by pattern: wildcards by a small
 * backtracking matcher, regexes with PCRE2, numbers, CIDR, time parts and
 * field references by checks written from the Sigma specification, not
 * from rules/ (oracle.c says which reading of the specification each
 * takes).  It shares with production code only the rule AST, the decoder,
 * routing and the field map.  Slow on purpose; never use it on the hot
 * path.
 *
 * Ownership: the oracle borrows the rulebook, which must outlive it.
 * Threading: one oracle per thread.
 */
#ifndef CF_ORACLE_H
#define CF_ORACLE_H

#include "common.h"
#include "config.h"
#include "event.h"
#include "sigma.h"

struct cf_oracle;

/* NULL with errstr on failure.  Rules whose regex PCRE2 rejects are
 * counted (cf_oracle_skipped) and never match. */
struct cf_oracle *cf_oracle_new(const struct cf_rulebook *rb,
                                const struct cf_config *cfg, char *errstr,
                                size_t n);
void cf_oracle_destroy(struct cf_oracle *o); /* NULL is a no-op */
size_t cf_oracle_skipped(const struct cf_oracle *o);

/* Calls fn for each matching rule in rule order; returns the count, or
 * -1 when it ran out of memory (the rules reported so far stand, the
 * answer as a whole does not). */
int cf_oracle_match(struct cf_oracle *o, const struct cf_event *ev,
                    void (*fn)(const struct cf_sigma_rule *, void *),
                    void *opaque);

#endif
