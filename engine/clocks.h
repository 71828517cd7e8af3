/*
 * clocks.h - host clocks that are off: detected, reported, corrected.
 *
 * Many collectors write an event's TimeCreated / @timestamp in the
 * host's local time labelled as UTC, while Sysmon's UtcTime in the same
 * event is the sensor's true UTC.  Such a host's Security, PowerShell or
 * System events (which have no UtcTime) then sit hours away from its
 * Sysmon events, and an incident's first stage can appear hours before
 * the attack.
 *
 * For every event carrying both readings (core/event.h: utc_ms,
 * stamp_ms) the difference is compared per host.  A host whose
 * differences agree, event after event, on one whole number of quarter
 * hours (every time zone is one) other than zero has a mislabelled
 * clock: it is said once on stderr, with the offset, and listed in
 * --stats.  Jitter, drift and skews that are no whole quarter hour are
 * not time zones and are never taken for one.
 *
 * What is done about it is configured (`time.clock_offsets`): nothing
 * by default; a fixed offset per host; or `auto`, which applies the
 * offset learned so far.  A correction moves only times read from a
 * host-clock stamp (TimeCreated, TimeCreated_SystemTime, @timestamp),
 * never UtcTime.
 *
 * Ownership: borrows the settings and entity map, which must outlive
 * it.  Threading: one per pipeline (per thread).
 */
#ifndef CF_CLOCKS_H
#define CF_CLOCKS_H

#include <jansson.h>

#include "alert.h"
#include "config.h"
#include "event.h"

struct cf_clocks;

/* NULL on out of memory (errstr says so). */
struct cf_clocks *cf_clocks_new(const struct cf_time_settings *ts,
                                const struct cf_entity_map *map, char *errstr,
                                size_t errstr_size);
void cf_clocks_destroy(struct cf_clocks *c); /* NULL is a no-op */

/* Learns from `ev` and corrects its time_ms where configured.  Called
 * for every decoded event, before its time is used. */
void cf_clocks_event(struct cf_clocks *c, struct cf_event *ev);

/* The same, given the event's host field (cf_entity_field of the map
 * the clocks were made with, or cf_entity_locate's; NULL when none), for
 * a caller that has located it already. */
void cf_clocks_event_at(struct cf_clocks *c, struct cf_event *ev,
                        const struct cf_event_field *host);

/* Where warnings go (stderr by default; tests pass their own). */
void cf_clocks_set_warnings(struct cf_clocks *c, FILE *f);

/* The `clocks` object of --stats (README "Counters").  New reference,
 * NULL when out of memory. */
json_t *cf_clocks_stats(const struct cf_clocks *c);

struct cf_ckpt_w;
struct cf_ckpt_r;

/* Every host's vote and counters in a checkpoint (engine/ckpt.h);
 * cf_clocks_load restores them into new clocks (a configured host keeps
 * this run's setting).  Failure is r->bad or r->nomem. */
void cf_clocks_save(const struct cf_clocks *c, struct cf_ckpt_w *w);
void cf_clocks_load(struct cf_clocks *c, struct cf_ckpt_r *r);

#endif
