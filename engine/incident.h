/*
 * incident.h - one incident: the alerts fusion linked together, the
 * kill-chain stages they cover, the entities they touch, and the
 * "kind":"incident" record built from them.
 *
 * Fusion (engine/fusion.c) decides which alerts belong together and when
 * an incident is emitted or closed; this module keeps the state, computes
 * severity and score, and writes the record.  Everything here is a pure
 * function of the alerts added, in the order they were added, so a replay
 * of the same input gives byte-identical records.
 *
 * Ownership: an incident owns its arrays and strings; rule ids and titles
 * are borrowed from the rulebook, which outlives every incident.
 * Threading: an incident belongs to the fusion instance that made it.
 */
#ifndef CF_INCIDENT_H
#define CF_INCIDENT_H

#include <jansson.h>

#include "alert.h"
#include "entity_norm.h"
#include "killchain.h"

/* Entity values of one alert, normalised for linking (entity_norm.h). */
struct cf_norm_entities {
    const char *raw[CF_ENTITY_COUNT]; /* borrowed from the alert; may be NULL */
    char value[CF_ENTITY_COUNT][CF_ENTITY_NORM_MAX]; /* "" = never links */
    size_t len[CF_ENTITY_COUNT];
};

/* Why an alert joined (fusion.c decides): the entity it shared with
 * the incident, whether that link is strong (process GUID, logon id on a
 * host, a rare value shared across hosts) or weak (the same host, a value
 * common on it), and the value's prevalence when the link was made. */
struct cf_incident_why {
    int kind;          /* entity kind; -1: the alert opened the incident */
    const char *value; /* normalised; borrowed; NULL when kind < 0 */
    bool strong;
    int32_t hosts; /* prevalence at the time; -1 when not measured */
    int32_t accounts;
    bool saturated; /* more than prevalence.h counts */
};

struct cf_incident_link {
    char alert_id[33];
    int kind;
    char *value;         /* normalised value; owned; NULL when kind < 0 */
    uint32_t duplicates; /* later copies counted on this alert */
    bool strong;
    int32_t hosts, accounts;
    bool saturated;
};

/* One per tactic the alerts carry: "stealth" and "defense-impairment"
 * are two stages at one kill-chain position. */
struct cf_incident_stage {
    int stage;          /* kill-chain position 1..14 */
    const char *tactic; /* static name as tagged ("stealth"); the key */
    int64_t first_ms;
    uint32_t alert_count;
};

struct cf_incident_entity {
    int kind;
    char *value; /* normalised; owned */
    char *raw;   /* first spelling seen; owned */
};

/* One rule on one host: the unit noise is judged on (fusion.c).  A noisy
 * one is the host's baseline: its alerts count, but it adds no stage,
 * severity or time bounds. */
struct cf_incident_rule {
    const char *id; /* borrowed */
    const char *title;
    enum cf_level level;
    uint32_t alert_count;
    uint32_t host;        /* cf_prevalence_id of the host; 0 = none */
    char *host_raw;       /* owned; NULL when none */
    char *const *tactics; /* borrowed from the rulebook */
    size_t n_tactics;
    int64_t first_ms, last_ms; /* of alerts that set time bounds */
    bool noisy;
    uint64_t folded; /* alerts counted once noisy */
};

/* Caps that keep one incident's memory bounded. */
struct cf_incident_limits {
    size_t max_alerts;   /* alert ids and links kept */
    size_t max_entities; /* entity values kept per incident */
    size_t max_rules;    /* distinct rules kept */
};

struct cf_incident {
    uint64_t serial;  /* fusion's handle; never reused */
    char id[33];      /* digest of the first alert's id: stable on replay */
    uint32_t version; /* of the last emitted record; 0 = never emitted */
    bool dirty;       /* changed since the last emitted record */
    bool truncated;   /* a cap was hit; the record says so */
    int64_t first_ms, last_ms;
    struct cf_position last_pos; /* newest contributing input record */

    struct cf_incident_stage stages[CF_KILLCHAIN_TACTICS]; /* by first_ms */
    size_t n_stages;

    uint64_t alert_count;    /* every alert, also beyond max_alerts */
    uint64_t duplicates;     /* copies counted, not stored */
    uint64_t level_count[5]; /* alerts per cf_level */
    uint64_t correlation_alerts;

    struct cf_incident_link *links; /* in order of arrival */
    size_t n_links, cap_links;
    struct cf_incident_entity *entities;
    size_t n_entities, cap_entities;
    struct cf_incident_rule *rules;
    size_t n_rules, cap_rules;

    const char *first_rule_title; /* borrowed: the alert that opened it */
    bool noisy;                   /* some rule here is a host's baseline */
    bool noise_bounds; /* first/last_ms come from noise only: the next
                        * alert that counts replaces them */

    /* fusion's bookkeeping */
    int64_t active_ms; /* event-time clock at the last change (>= last_ms
                        * only when alerts arrived late) */
    size_t open_index;
    uint64_t *aliases; /* serials of incidents merged into this one */
    size_t n_aliases;
};

/* A new, empty incident that `first` (the earliest alert) opens; the
 * caller then adds `first` with cf_incident_add.  NULL on out of memory. */
struct cf_incident *cf_incident_new(uint64_t serial,
                                    const struct cf_alert *first);
void cf_incident_destroy(struct cf_incident *inc); /* NULL is a no-op */

/* Adds `alert` (event time time_ms, on host `host`, a cf_prevalence_id)
 * with its normalised entities; `why` says how it joined.  `context`: an
 * informational alert tied only by a weak link: it is listed and counted
 * but sets no time bound and adds no account.  Marks the incident dirty. */
cf_err_t cf_incident_add(struct cf_incident *inc, const struct cf_alert *alert,
                         int64_t time_ms, const struct cf_norm_entities *ne,
                         uint32_t host, const struct cf_incident_why *why,
                         bool context, const struct cf_incident_limits *lim);

/* The rule of `alert` on host `host` became noise: its alerts so far stop
 * counting towards stages, severity and time bounds, and the incident is
 * flagged noisy.  False when the incident holds no such rule entry. */
bool cf_incident_mark_noisy(struct cf_incident *inc, const char *rule_id,
                            uint32_t host);

/* One more alert of a noisy rule on `host`: counted as a duplicate. */
void cf_incident_fold(struct cf_incident *inc, const char *rule_id,
                      uint32_t host);

/* Counts a duplicate of alert `alert_id` (an earlier alert of this
 * incident).  Marks the incident dirty. */
void cf_incident_count_duplicate(struct cf_incident *inc, const char *alert_id);

/* Moves everything of src into dst (dst keeps its id); src is left empty
 * for the caller to destroy. */
cf_err_t cf_incident_merge(struct cf_incident *dst, struct cf_incident *src,
                           const struct cf_incident_limits *lim);

/* Highest alert level present. */
enum cf_level cf_incident_max_level(const struct cf_incident *inc);

/* Distinct kill-chain positions its stages cover (stealth and
 * defense-impairment count once): what scoring and min_stages count. */
size_t cf_incident_positions(const struct cf_incident *inc);

/* Raised (worth telling a person) when it spans min_stages kill-chain
 * positions or holds a high or critical alert. */
bool cf_incident_raised(const struct cf_incident *inc, unsigned min_stages);

/* 0..100, from the alerts' levels, the stages covered, whether they came
 * in kill-chain order, how far along the chain they reach, and the number
 * of hosts and accounts. */
int cf_incident_score(const struct cf_incident *inc);

/* From the score, never below the highest alert level. */
enum cf_level cf_incident_severity(const struct cf_incident *inc);

/* The "kind":"incident" record for `status` ("new", "updated",
 * "closed").  merged_into (may be NULL) names the incident this one was
 * merged into.  New reference; NULL on out of memory. */
json_t *cf_incident_to_json(const struct cf_incident *inc, const char *status,
                            const char *merged_into);

#endif
