/*
 * fusion.h - event-time correlation and kill-chain fusion.
 *
 * The pipeline feeds every alert in, plus the event time of every event
 * (alerts or not) so the watermark advances.  Sigma correlation rules
 * raise correlation alerts, which are emitted and fused like any other;
 * fusion links alerts sharing entities into incidents and emits
 * "kind":"incident" records as they are opened, updated and closed.
 *
 * Ownership: fusion borrows the rulebook, which must outlive it; the
 * config is read during cf_fusion_new() only.  Fusion keeps its own
 * copies of alerts and owns its incidents.
 * Threading: one instance per pipeline thread.
 */
#ifndef CF_FUSION_H
#define CF_FUSION_H

#include <jansson.h>

#include "alert.h"
#include "config.h"
#include "drops.h"

struct cf_fusion;

/* Called for every record fusion produces: kind "alert" (correlation
 * alerts) or "incident", serialized as one line of compact JSON
 * (NUL-terminated), with its id, version, severity, score and tactics;
 * everything is borrowed for the call.  rec->pos is the input position of
 * the newest alert that contributed. */
typedef void (*cf_fusion_emit_fn)(const struct cf_out_record *rec,
                                  void *opaque);

/* Takes the `fusion` and `correlation` settings from cfg (required,
 * borrowed for the call) and parses its `suppressions` section;
 * correlations come from rb (resolved by cf_rulebook_finish).  NULL with
 * errstr on a bad suppression. */
struct cf_fusion *cf_fusion_new(const struct cf_config *cfg,
                                const struct cf_rulebook *rb,
                                cf_fusion_emit_fn emit, void *opaque,
                                char *errstr, size_t errstr_size);
void cf_fusion_destroy(struct cf_fusion *fu); /* NULL is a no-op */

/* The wall clock, in ms since the epoch; assumed not to go backwards. */
typedef int64_t (*cf_wall_clock_fn)(void *opaque);

/* Replaces the system clock that bounds event time (see
 * cf_fusion_observe), so that tests and benchmarks do not depend on
 * today's date; NULL restores the system clock. */
void cf_fusion_set_wall_clock(struct cf_fusion *fu, cf_wall_clock_fn now,
                              void *opaque);

/* An event was seen at time_ms (advances the watermark, unless time_ms
 * lies past the wall clock plus fusion.max_future_skew: then it is only
 * counted). */
void cf_fusion_observe(struct cf_fusion *fu, int64_t time_ms);

/* Every decoded event with a time, before its alerts: its entity values
 * (found through `map`) are counted into their prevalence - on how many
 * hosts and accounts each was seen (engine/prevalence.h) - which decides
 * whether a value shared by alerts on two hosts may link them.  Borrowed
 * for the call; costs a few field lookups and table probes. */
void cf_fusion_sight(struct cf_fusion *fu, const struct cf_entity_map *map,
                     const struct cf_event *ev);

/* The same, with the event's entities located already: `at` is
 * cf_entity_locate(map, ev, kinds) for kinds including
 * cf_fusion_sight_kinds(). */
unsigned cf_fusion_sight_kinds(void);
void cf_fusion_sight_at(struct cf_fusion *fu, const struct cf_event *ev,
                        const struct cf_entity_at *at);

/* An alert was raised from the decoded event `ev` (borrowed for the call;
 * field suppressions read it; NULL when there is none).  Fusion copies
 * what it keeps.  Returns true when a configured suppression hides the
 * alert: it is counted, not fused, and the caller must not output it
 * either.  An alert stamped past the wall clock plus the skew is fused at
 * once, without correlation. */
bool cf_fusion_push(struct cf_fusion *fu, const struct cf_alert *alert,
                    const struct cf_event *ev);

/* Every decoded event, alerts or not: what it says about the estate's
 * domains (NetBIOS and DNS names of one domain, entity_norm.h), so that
 * its accounts are one identity however written. */
void cf_fusion_learn(struct cf_fusion *fu, const struct cf_event *ev);

/* The same, the fields it reads found already: first[j] is the first
 * field named cf_domains_learn_names()[j], -1 when none (the `also` of
 * cf_entity_locate, the map told those names with cf_entity_map_also). */
void cf_fusion_learn_found(struct cf_fusion *fu, const struct cf_event *ev,
                           const int *first);

/* End of input: fire what is pending and close every incident. */
void cf_fusion_finish(struct cf_fusion *fu);

/* Fusion's own counters (late alerts, duplicates, incidents opened,
 * evicted, merged, ...), as a JSON object.  New reference.  The counts
 * below and the dropped family are not repeated in it. */
json_t *cf_fusion_stats(const struct cf_fusion *fu);

/* The fusion counters the pipeline shows at top level, each counted
 * once, here. */
struct cf_fusion_counts {
    uint64_t suppressed;         /* alerts hidden by a suppression */
    uint64_t correlation_alerts; /* raised by correlation rules */
    uint64_t ungenerated;        /* correlation alerts not written: another
                                    correlation uses them, without generate */
    uint64_t incidents;          /* distinct incidents emitted */
    uint64_t incident_records;   /* incident versions emitted, all */
};
void cf_fusion_counts(const struct cf_fusion *fu, struct cf_fusion_counts *c);

/* Adds what fusion and its correlator dropped to `sum`: correlation
 * alerts and incident versions not written, and what lack of memory
 * made fusion skip (cf_correlator_drops for the correlator's part). */
void cf_fusion_drops(const struct cf_fusion *fu, struct cf_drops *sum);

/* From now on sights every entity text without the memo of texts
 * (each one normalised each time, as when memory for it ran short):
 * what tests compare the memo with. */
void cf_fusion_sight_plain(struct cf_fusion *fu);

struct cf_ckpt_w;
struct cf_ckpt_r;

/* Appends fusion's whole state to a checkpoint (engine/ckpt.h): clocks,
 * counters, alerts waiting for the watermark, open incidents, the
 * entity and duplicate indexes, suppression hits, and the correlator's
 * windows.  Call between records (nothing is half-processed then). */
void cf_fusion_save(const struct cf_fusion *fu, struct cf_ckpt_w *w);

/* Restores what cf_fusion_save wrote into a fusion just made with
 * cf_fusion_new (the same config and rules, or changed ones: state of
 * rules no longer loaded is dropped and counted in r).  CF_ERR on a bad
 * file, CF_ERR_NOMEM: either way the caller destroys fu, which holds
 * part of it. */
cf_err_t cf_fusion_load(struct cf_fusion *fu, struct cf_ckpt_r *r);

#endif
