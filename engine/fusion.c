/*
 * fusion.c - event-time kill-chain fusion (see fusion.h).
 *
 * Alerts wait in a heap until the watermark (highest event time seen
 * minus the allowed lateness) passes them, then are processed strictly in
 * (event time, alert id) order: handed to the Sigma correlator, checked
 * against suppressions and duplicates, and linked into incidents through
 * the entities they share.  Every decision (linking window, closing,
 * when to emit a new version) is taken on the clock of the alert being
 * processed, never on arrival, so any arrival order within the lateness
 * gives the same incidents and the same sequence of emitted records.
 * Alerts arriving behind the watermark are processed at once and counted
 * as late.
 *
 * Event time is only believed up to the wall clock plus
 * `max_future_skew` (default 1 hour): one event stamped in 2100 would
 * otherwise move the watermark there, make every later alert late and
 * hold every incident back until the end of input.  Such an event does
 * not move the watermark (counted as future_events); its alerts are
 * fused at once on their own time (future_alerts), so they link only to
 * alerts near that time, while incidents close on the clock as for late
 * alerts.  They are not handed to Sigma correlation, whose windows would
 * have to wait for 2100 (nor checked for duplicates, whose index expires
 * on the clock): both would keep them in memory for ever.
 *
 * Versions: changes are collected per `update_interval` of event time
 * and each changed, raised incident is emitted once at the end of that
 * interval; an incident closes after `close_after` (by default the
 * linking window) of event time without new alerts (for an incident fed
 * by late alerts, counted from the clock when the last one came).
 * Incidents are emitted only once raised: `min_stages` kill-chain stages
 * or a high/critical alert.
 *
 * Settings: config section `fusion`, whose keys, defaults and ranges
 * are the table in core/config.c (`chainfuse config --reference`).
 * Section `suppressions`, parsed here: [{rule, entity: {kind: value},
 * field: {Name: value}, reason, expires}], expiry compared with event
 * time.
 *
 * Called by the pipeline (engine/pipeline.c).  One instance per pipeline
 * thread; not thread safe.
 */
#include "fusion.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ckpt.h"
#include "correlate.h"
#include "entity_norm.h"
#include "hash.h"
#include "heap.h"
#include "incident.h"
#include "prevalence.h"
#include "sigma_correlation.h"
#include "timeutil.h"
#include "yaml_json.h"

#define MS_SECOND 1000LL
#define MS_MINUTE (60 * MS_SECOND)

/* ---- a small chained hash map with byte keys ---------------------- */

struct node {
    struct node *next;
    uint64_t hash;
    int64_t last_ms;
    union {
        uint64_t serial;
        struct cf_incident *inc;
    } u;
    /* entities only: a second (incident, time) slot, so an entity whose
     * alerts arrive on two timelines (a log replayed late beside live
     * ones) links each to its contemporaries */
    uint64_t serial2;
    int64_t last2;
    /* entities only: host and organisation (cf_prevalence_id) of the
     * alert that set each slot, to tell a link on the same host from one
     * across hosts or organisations */
    uint32_t host1, host2, org1, org2;
    uint32_t count;
    uint16_t klen;
    uint16_t xlen;
    unsigned char data[]; /* key bytes, then xlen extra bytes */
};

struct map {
    struct node **buckets;
    size_t n_buckets, n;
};

static struct node *map_get(const struct map *m, const void *key, size_t klen) {
    if (!m->n_buckets) return NULL;
    uint64_t h = cf_hash_bytes(key, klen);
    for (struct node *n = m->buckets[h & (m->n_buckets - 1)]; n; n = n->next)
        if (n->hash == h && n->klen == klen && memcmp(n->data, key, klen) == 0)
            return n;
    return NULL;
}

static int map_grow(struct map *m) {
    size_t nb = m->n_buckets ? m->n_buckets * 2 : 1024;
    struct node **b = cf_calloc(nb, sizeof *b);
    if (!b) return CF_ERR_NOMEM;
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct node *n = m->buckets[i], *next;
        for (; n; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    cf_free(m->buckets);
    m->buckets = b;
    m->n_buckets = nb;
    return CF_OK;
}

/* A new zeroed node for key (which must not be present yet). */
static struct node *map_put(struct map *m, const void *key, size_t klen,
                            size_t xlen) {
    if (klen > UINT16_MAX || xlen > UINT16_MAX) return NULL;
    if (m->n >= m->n_buckets && map_grow(m)) return NULL;
    struct node *n = cf_calloc(1, sizeof *n + klen + xlen);
    if (!n) return NULL;
    n->hash = cf_hash_bytes(key, klen);
    n->klen = (uint16_t)klen;
    n->xlen = (uint16_t)xlen;
    memcpy(n->data, key, klen);
    size_t b = n->hash & (m->n_buckets - 1);
    n->next = m->buckets[b];
    m->buckets[b] = n;
    m->n++;
    return n;
}

static void map_del(struct map *m, const void *key, size_t klen) {
    if (!m->n_buckets) return;
    uint64_t h = cf_hash_bytes(key, klen);
    struct node **pp = &m->buckets[h & (m->n_buckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        struct node *n = *pp;
        if (n->hash == h && n->klen == klen &&
            memcmp(n->data, key, klen) == 0) {
            *pp = n->next;
            cf_free(n);
            m->n--;
            return;
        }
    }
}

/* Drops every node last seen before `cutoff`; returns how many. */
static size_t map_expire(struct map *m, int64_t cutoff) {
    size_t dropped = 0;
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct node **pp = &m->buckets[i];
        while (*pp) {
            struct node *n = *pp;
            if (n->last_ms < cutoff && n->last2 < cutoff) {
                *pp = n->next;
                cf_free(n);
                m->n--;
                dropped++;
            } else {
                pp = &n->next;
            }
        }
    }
    return dropped;
}

static void map_free(struct map *m) {
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct node *n = m->buckets[i], *next;
        for (; n; n = next) {
            next = n->next;
            cf_free(n);
        }
    }
    cf_free(m->buckets);
    memset(m, 0, sizeof *m);
}

/* ---- configuration ------------------------------------------------- */

/* Two incidents on different hosts that share a rare value: merged when
 * the value is still rare at `due` (fuse, confirm_bridges). */
struct bridge {
    uint64_t a, b;     /* incident serials (merged ones resolve) */
    char alert_id[33]; /* the alert that found the link */
    int kind;
    uint64_t key; /* prevalence key of the value */
    char *value;  /* normalised; owned */
};

struct suppression {
    char *rule;                    /* id, name or title; NULL = any */
    char *entity[CF_ENTITY_COUNT]; /* normalised; NULL = any */
    json_t *fields;                /* {EventField: value}; NULL = any */
    char *reason;
    int64_t expires_ms; /* event time; INT64_MAX = never */
    uint64_t hits;
};

struct never_list {
    char **values; /* normalised per kind */
    size_t n;
};

/* What cf_fusion_sight made of a raw entity text: every event is
 * sighted, and events repeat their host, account and hashes, whose
 * normalising, hashing and (for hosts) organisation gave the same answer
 * the time before.  An entry answers only for the same kind and bytes,
 * compared in full; an account's answer also depends on the host text it
 * was normalised beside and on the domains known then (their generation,
 * engine/entity_norm.h).  A file hash's entry is keyed by its field's
 * whole text ("SHA1=..,MD5=..,SHA256=.."), which the entry spares picking
 * the hash from.  Entries are found by a signature of their text in
 * SIGHT_SETS sets of two: an estate loads hundreds of distinct DLLs, whose
 * hashes then each normalise once rather than at every load.  Each entry
 * keeps where its value's last sighting went (engine/prevalence.h), and a
 * host's entry where the host is in the estate. */
#define SIGHT_SETS 256
struct sight_memo {
    bool used, has_ctx, whole;
    uint8_t kind;
    uint16_t raw_len, ctx_len, norm_len;
    uint64_t gen;
    uint64_t key;     /* value_key of the normalised value (0: none) */
    uint32_t id, org; /* hosts and accounts: cf_prevalence_id of it;
                         hosts: org_id of the raw text */
    struct cf_prevalence_hint seen, estate;
    char raw[CF_ENTITY_TEXT_MAX];
    char ctx[CF_ENTITY_TEXT_MAX]; /* accounts: the host text */
    char norm[CF_ENTITY_NORM_MAX];
};

struct sight_memos {
    struct sight_memo *way;     /* 2 * SIGHT_SETS; NULL: out of memory */
    uint8_t recent[SIGHT_SETS]; /* per set: the way used last */
    /* without `way` (out of memory), or with both ways of a set pinned:
     * one for hosts, one for accounts, one for the other kinds */
    struct sight_memo spare[3];
    /* the event's host and account entries, read until its sighting is
     * done: never replaced by its other kinds' */
    const struct sight_memo *pin[2];
    /* per spare's kinds (host, account, other): the entry found or made
     * last, tried first for hosts and accounts; NULL: none yet */
    struct sight_memo *last[3];
};

struct cf_fusion {
    /* settings */
    int64_t lateness, max_future_skew, window, close_after, dup_window,
        update_interval, entity_ttl;
    unsigned min_stages;
    size_t max_open, max_pending, max_index, weak_threshold;
    uint32_t rare_hosts, common_percent, noise_alerts;
    int64_t noise_span, confirm_after;
    struct cf_incident_limits limits;
    struct never_list never[CF_ENTITY_COUNT];
    struct suppression *supp;
    size_t n_supp;

    cf_fusion_emit_fn emit;
    void *opaque;
    struct cf_correlator *co;

    /* event time */
    int64_t max_seen, watermark, clock, bucket_end, close_hint, last_sweep;

    /* wall clock: event time past future_limit (the clock's last reading
     * plus max_future_skew; INT64_MIN before the first) is not believed */
    cf_wall_clock_fn wall_clock;
    void *wall_opaque;
    int64_t future_limit;

    /* alerts waiting for the watermark, in (time, id) order: owned
     * copies (struct cf_alert *) */
    struct cf_heap pending;

    /* correlation alerts raised during a correlator call */
    struct cf_alert *cq;
    size_t n_cq, cap_cq;
    bool draining;

    struct cf_incident **open;
    size_t n_open, cap_open;
    bool any_dirty;
    uint64_t next_serial;

    struct map entities;  /* kind+value -> last_ms, incident serial, count */
    struct map dups;      /* 64-bit digest -> first_ms, serial, alert id */
    struct map serials;   /* serial (incl. merged) -> open incident */
    struct map noise;     /* rule id + host -> run of alerts (see fuse) */
    struct map sessions;  /* host + logon id -> the machine it came from */
    struct map host_orgs; /* host id -> organisation, from full names */
    /* host_org's last answer: events repeat their host.  Forgotten
     * whenever host_orgs may lose nodes (sweep, a restore). */
    struct node *org_node;
    uint32_t org_host;
    /* cross-host links waiting for confirmation (struct bridge *, by the
     * time they are due), and the incident pairs they join */
    struct cf_heap bridges;
    struct map bridged;
    struct cf_prevalence *pv;

    struct cf_domains *domains; /* NetBIOS <-> DNS domain names known */
    struct cf_norm_entities ne; /* scratch, reused for every alert */
    struct sight_memos memo;    /* cf_fusion_sight's */
    struct cf_buf rec;          /* the record being emitted */

    /* counters */
    uint64_t alerts_in, alerts_processed, late_alerts, no_time_alerts,
        future_events, future_alerts, future_uncorrelated, correlation_alerts,
        suppressed, duplicates, weak_skips, context_unfused, never_link_skips,
        incidents_opened, incidents_raised, incidents_emitted, records_emitted,
        incidents_closed, incidents_evicted, incidents_merged,
        incidents_dropped_unraised, entities_expired, pending_forced,
        alloc_failures, ungenerated;
    /* linking decisions (README "How alerts become incidents") */
    uint64_t strong_links, weak_links, refused_prevalence, bridges_pending,
        bridges_confirmed, refused_organisation, refused_weak, noise_rules,
        noise_folded, noise_unfused, events_sighted;
    /* records lost for lack of memory (dropped, see cf_fusion_drops) */
    uint64_t correlation_unwritten, incident_unwritten;

    /* strings of restored state that outlive the checkpoint file (rule
     * titles of incidents, input sources) */
    struct cf_strpool pool;
};

/* Copies the checked `fusion` settings (core/config.c) and normalises
 * never_link once per entity kind. */
static int apply_settings(struct cf_fusion *fu,
                          const struct cf_fusion_settings *set) {
    fu->lateness = set->lateness;
    fu->max_future_skew = set->max_future_skew;
    fu->window = set->window;
    fu->close_after = set->close_after;
    fu->dup_window = set->suppression_window;
    fu->update_interval = set->update_interval < 1 ? 1 : set->update_interval;
    fu->entity_ttl = set->entity_ttl;
    fu->min_stages = (unsigned)set->min_stages;
    fu->max_open = (size_t)set->max_open_incidents;
    fu->max_pending = (size_t)set->max_pending_alerts;
    fu->max_index = (size_t)set->max_tracked_entities;
    fu->weak_threshold = (size_t)set->weak_threshold;
    fu->rare_hosts = (uint32_t)set->rare_hosts;
    fu->common_percent = (uint32_t)set->common_percent;
    fu->noise_alerts = (uint32_t)set->noise_alerts;
    fu->noise_span = set->noise_span;
    fu->confirm_after = set->confirm_after;
    fu->pv = cf_prevalence_new((size_t)set->max_prevalence_values,
                               set->prevalence_horizon);
    if (!fu->pv) return CF_ERR_NOMEM;
    /* without it every text is normalised each time: slower, never wrong */
    fu->memo.way = cf_calloc(2 * SIGHT_SETS, sizeof *fu->memo.way);
    fu->limits.max_alerts = (size_t)set->max_alerts;
    fu->limits.max_entities = (size_t)set->max_entities_per_incident;
    fu->limits.max_rules = (size_t)set->max_rules_per_incident;
    for (size_t i = 0; i < set->never_link.n; i++) {
        /* Normalised once per kind, so "COLLECTOR.corp.local" also stops
         * the short host name "collector". */
        for (int k = 0; k < CF_ENTITY_COUNT; k++) {
            char buf[CF_ENTITY_NORM_MAX];
            struct never_list *nl = &fu->never[k];
            if (!cf_entity_normalize(k, set->never_link.v[i], buf, sizeof buf))
                continue;
            char **nv = cf_realloc(nl->values, (nl->n + 1) * sizeof *nv);
            if (!nv) return CF_ERR_NOMEM;
            nl->values = nv;
            if (!(nv[nl->n] = cf_strdup(buf))) return CF_ERR_NOMEM;
            nl->n++;
        }
    }
    return CF_OK;
}

/* The suppression's `field` mapping with every value as the text an
 * event would carry (YAML reads EventID: 4688 as a number, and a log
 * may write it either way): strings as they are, numbers and booleans
 * as written.  A list or a mapping as a value is refused. */
static cf_err_t field_texts(const json_t *field, json_t **out, size_t i,
                            char *errstr, size_t errstr_size) {
    const char *name;
    json_t *v;
    json_t *texts = json_object();
    if (!texts) return CF_ERR_NOMEM;
    json_object_foreach((json_t *)field, name, v) {
        char buf[64];
        size_t len;
        const char *text = cf_scalar_text(v, buf, sizeof buf, &len);
        if (!text) {
            json_decref(texts);
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "config: suppressions[%zu].field.%s must be one "
                             "value (text or number), not a list, mapping "
                             "or null",
                             i, name);
        }
        if (json_object_set_new(texts, name, json_stringn(text, len))) {
            json_decref(texts);
            return CF_ERR_NOMEM;
        }
    }
    *out = texts;
    return CF_OK;
}

static int parse_suppressions(struct cf_fusion *fu, const json_t *sec,
                              char *errstr, size_t errstr_size) {
    size_t i;
    json_t *item;
    if (!sec) return CF_OK;
    if (!json_is_array(sec))
        return cf_seterr(errstr, errstr_size, CF_ERR,
                         "config: suppressions must be a list of {rule, "
                         "entity, field, reason, expires}");
    fu->supp = cf_calloc(json_array_size(sec) + 1, sizeof *fu->supp);
    if (!fu->supp) return CF_ERR_NOMEM;
    json_array_foreach(sec, i, item) {
        struct suppression *s = &fu->supp[fu->n_supp++];
        const char *key;
        json_t *v;
        s->expires_ms = INT64_MAX;
        if (!json_is_object(item))
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "config: suppressions[%zu] must be a mapping", i);
        json_object_foreach(item, key, v) {
            if (strcmp(key, "rule") == 0 && json_is_string(v)) {
                if (!(s->rule = cf_strdup(json_string_value(v))))
                    return CF_ERR_NOMEM;
            } else if (strcmp(key, "reason") == 0 && json_is_string(v)) {
                if (!(s->reason = cf_strdup(json_string_value(v))))
                    return CF_ERR_NOMEM;
            } else if (strcmp(key, "expires") == 0 && json_is_string(v)) {
                const char *t = json_string_value(v);
                if (cf_time_parse(t, strlen(t), &s->expires_ms) != CF_OK)
                    return cf_seterr(errstr, errstr_size, CF_ERR,
                                     "config: suppressions[%zu].expires: '%s' "
                                     "is not an RFC 3339 time (e.g. "
                                     "2026-12-31T00:00:00Z)",
                                     i, t);
            } else if (strcmp(key, "field") == 0 && json_is_object(v)) {
                cf_err_t rc =
                    field_texts(v, &s->fields, i, errstr, errstr_size);
                if (rc != CF_OK) return rc;
            } else if (strcmp(key, "entity") == 0 && json_is_object(v)) {
                const char *ek;
                json_t *ev;
                json_object_foreach(v, ek, ev) {
                    int kind = -1;
                    char buf[CF_ENTITY_NORM_MAX];
                    for (int k = 0; k < CF_ENTITY_COUNT; k++)
                        if (strcmp(ek, cf_entity_kind_name(k)) == 0) kind = k;
                    if (kind < 0 || !json_is_string(ev))
                        return cf_seterr(errstr, errstr_size, CF_ERR,
                                         "config: suppressions[%zu].entity: "
                                         "'%s' must be an entity kind (host, "
                                         "user, src_ip, ...) with a string "
                                         "value",
                                         i, ek);
                    /* A shared account normalises to nothing; compare it
                     * lowercased instead so it can still be suppressed. */
                    if (!cf_entity_normalize(kind, json_string_value(ev), buf,
                                             sizeof buf))
                        snprintf(buf, sizeof buf, "%s", json_string_value(ev));
                    for (char *c = buf; *c; c++)
                        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
                    if (!(s->entity[kind] = cf_strdup(buf)))
                        return CF_ERR_NOMEM;
                }
            } else {
                return cf_seterr(errstr, errstr_size, CF_ERR,
                                 "config: suppressions[%zu]: '%s' is unknown "
                                 "or of the wrong type (rule: string, "
                                 "entity: {kind: value}, field: {name: "
                                 "value}, reason: string, expires: RFC 3339)",
                                 i, key);
            }
        }
        bool any = s->rule || s->fields;
        for (int k = 0; k < CF_ENTITY_COUNT; k++) any = any || s->entity[k];
        if (!any)
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "config: suppressions[%zu] matches everything; "
                             "give at least one of rule, entity, field",
                             i);
    }
    return CF_OK;
}

/* ---- lifecycle ----------------------------------------------------- */

static int64_t system_clock(void *opaque) {
    struct timespec ts;
    (void)opaque;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return INT64_MAX;
    return (int64_t)ts.tv_sec * MS_SECOND + ts.tv_nsec / 1000000;
}

static void on_correlation(const struct cf_alert *alert, void *opaque);

static bool names_it(const char *want, const char *id, const char *name,
                     const char *title) {
    return (id && strcasecmp(want, id) == 0) ||
           (name && strcasecmp(want, name) == 0) ||
           (title && strcasecmp(want, title) == 0);
}

/* A suppression naming a rule that is not loaded never applies.  That is
 * not an error (one config may serve several rule sets) but a typo must
 * not pass unseen, so it is said once, at start. */
static void warn_unknown_suppressed_rules(const struct cf_fusion *fu,
                                          const struct cf_rulebook *rb) {
    for (size_t i = 0; i < fu->n_supp; i++) {
        const char *want = fu->supp[i].rule;
        bool found = false;
        if (!want) continue;
        for (size_t r = 0; r < rb->n_rules && !found; r++)
            found = names_it(want, rb->rules[r]->id, rb->rules[r]->name,
                             rb->rules[r]->title);
        for (size_t c = 0; c < rb->n_correlations && !found; c++)
            found =
                names_it(want, rb->correlations[c]->id,
                         rb->correlations[c]->name, rb->correlations[c]->title);
        if (!found)
            fprintf(stderr,
                    "chainfuse: warning: suppressions[%zu]: rule '%s' is "
                    "not the id, name or title of any loaded rule; it will "
                    "never apply\n",
                    i, want);
    }
}

struct cf_fusion *cf_fusion_new(const struct cf_config *cfg,
                                const struct cf_rulebook *rb,
                                cf_fusion_emit_fn emit, void *opaque,
                                char *errstr, size_t errstr_size) {
    struct cf_fusion *fu = cf_calloc(1, sizeof *fu);
    if (!fu) goto nomem;
    fu->emit = emit;
    fu->opaque = opaque;
    fu->max_seen = fu->watermark = fu->clock = INT64_MIN;
    fu->bucket_end = fu->close_hint = INT64_MAX;
    fu->last_sweep = INT64_MIN;
    fu->future_limit = INT64_MIN;
    fu->wall_clock = system_clock;
    fu->next_serial = 1;
    cf_alert_queue_init(&fu->pending);
    if (!(fu->domains = cf_domains_new(cfg, errstr, errstr_size))) goto fail;
    fu->bridges = (struct cf_heap)CF_HEAP_INIT(NULL);
    if (apply_settings(fu, &cfg->fusion) != CF_OK) goto nomem;
    int rc = parse_suppressions(fu, cf_config_section(cfg, "suppressions"),
                                errstr, errstr_size);
    if (rc == CF_ERR_NOMEM) goto nomem;
    if (rc) goto fail;
    if (rb) warn_unknown_suppressed_rules(fu, rb);
    if (rb) {
        fu->co = cf_correlator_new(rb, &cfg->correlation, &cfg->limits,
                                   on_correlation, fu, errstr, errstr_size);
        if (!fu->co) goto fail;
    }
    return fu;
nomem:
    cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
fail:
    cf_fusion_destroy(fu);
    return NULL;
}

void cf_fusion_destroy(struct cf_fusion *fu) {
    if (!fu) return;
    cf_correlator_destroy(fu->co);
    cf_domains_destroy(fu->domains);
    cf_alert_queue_free(&fu->pending);
    for (size_t i = 0; i < fu->bridges.n; i++) {
        struct bridge *b = fu->bridges.entries[i].item;
        cf_free(b->value);
        cf_free(b);
    }
    cf_heap_free(&fu->bridges);
    map_free(&fu->bridged);
    for (size_t i = 0; i < fu->n_cq; i++) cf_alert_clear(&fu->cq[i]);
    for (size_t i = 0; i < fu->n_open; i++) cf_incident_destroy(fu->open[i]);
    cf_free(fu->cq);
    cf_free(fu->open);
    map_free(&fu->entities);
    map_free(&fu->dups);
    map_free(&fu->serials);
    map_free(&fu->noise);
    map_free(&fu->sessions);
    map_free(&fu->host_orgs);
    cf_prevalence_destroy(fu->pv);
    cf_free(fu->memo.way);
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        for (size_t i = 0; i < fu->never[k].n; i++)
            cf_free(fu->never[k].values[i]);
        cf_free(fu->never[k].values);
    }
    for (size_t i = 0; i < fu->n_supp; i++) {
        cf_free(fu->supp[i].rule);
        cf_free(fu->supp[i].reason);
        json_decref(fu->supp[i].fields);
        for (int k = 0; k < CF_ENTITY_COUNT; k++)
            cf_free(fu->supp[i].entity[k]);
    }
    cf_free(fu->supp);
    cf_buf_free(&fu->rec);
    cf_strpool_free(&fu->pool);
    cf_free(fu);
}

/* ---- emitting ------------------------------------------------------ */

static void emit_incident(struct cf_fusion *fu, struct cf_incident *inc,
                          const char *status, const char *merged_into) {
    inc->version++;
    inc->dirty = false;
    json_t *rec = cf_incident_to_json(inc, status, merged_into);
    cf_buf_reset(&fu->rec);
    if (rec && !cf_json_write_compact(&fu->rec, rec))
        cf_buf_json(&fu->rec, rec, JSON_COMPACT);
    if (!rec || fu->rec.failed) {
        json_decref(rec);
        fu->incident_unwritten++;
        return;
    }
    json_decref(rec);
    fu->records_emitted++;
    if (inc->version == 1) fu->incidents_emitted++;
    if (fu->emit) {
        const char *tactics[CF_KILLCHAIN_STAGES];
        size_t n = 0;
        for (size_t i = 0; i < inc->n_stages && n < CF_ARRAY_LEN(tactics); i++)
            tactics[n++] = inc->stages[i].tactic;
        struct cf_out_record r = cf_out_record_plain(
            "incident", fu->rec.data, fu->rec.len, &inc->last_pos);
        r.id = inc->id;
        r.version = inc->version;
        r.status = status;
        r.severity = (int)cf_incident_severity(inc);
        r.score = cf_incident_score(inc);
        r.tactics = tactics;
        r.n_tactics = n;
        fu->emit(&r, fu->opaque);
    }
}

static int cmp_incident_first(const void *a, const void *b) {
    const struct cf_incident *x = *(struct cf_incident *const *)a;
    const struct cf_incident *y = *(struct cf_incident *const *)b;
    if (x->first_ms != y->first_ms) return x->first_ms < y->first_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Emits every changed, raised incident, oldest first. */
static void flush_dirty(struct cf_fusion *fu) {
    struct cf_incident **list;
    size_t n = 0;
    fu->any_dirty = false;
    if (!fu->n_open) return;
    list = cf_malloc(fu->n_open * sizeof *list);
    if (!list) {
        fu->alloc_failures++;
        return;
    }
    for (size_t i = 0; i < fu->n_open; i++)
        if (fu->open[i]->dirty) list[n++] = fu->open[i];
    if (n) qsort(list, n, sizeof *list, cmp_incident_first);
    for (size_t i = 0; i < n; i++) {
        struct cf_incident *inc = list[i];
        if (!cf_incident_raised(inc, fu->min_stages)) {
            inc->dirty = false;
            continue;
        }
        if (inc->version == 0) fu->incidents_raised++;
        emit_incident(fu, inc, inc->version == 0 ? "new" : "updated", NULL);
    }
    cf_free(list);
}

static void forget_serials(struct cf_fusion *fu, struct cf_incident *inc) {
    map_del(&fu->serials, &inc->serial, sizeof inc->serial);
    for (size_t i = 0; i < inc->n_aliases; i++)
        map_del(&fu->serials, &inc->aliases[i], sizeof inc->aliases[i]);
}

static void remove_open(struct cf_fusion *fu, struct cf_incident *inc) {
    size_t i = inc->open_index;
    fu->open[i] = fu->open[--fu->n_open];
    fu->open[i]->open_index = i;
    forget_serials(fu, inc);
}

/* Closes inc: emits its final state if it was ever worth raising. */
static void close_incident(struct cf_fusion *fu, struct cf_incident *inc) {
    remove_open(fu, inc);
    if (inc->version > 0 || cf_incident_raised(inc, fu->min_stages)) {
        if (inc->version == 0) fu->incidents_raised++;
        emit_incident(fu, inc, "closed", NULL);
    } else {
        fu->incidents_dropped_unraised++;
    }
    fu->incidents_closed++;
    cf_incident_destroy(inc);
}

static int cmp_incident_deadline(const void *a, const void *b) {
    const struct cf_incident *x = *(struct cf_incident *const *)a;
    const struct cf_incident *y = *(struct cf_incident *const *)b;
    if (x->active_ms != y->active_ms)
        return x->active_ms < y->active_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Closes, in deadline order, every incident quiet since limit -
 * close_after; keeps close_hint a lower bound of the next deadline. */
static void close_due(struct cf_fusion *fu, int64_t limit) {
    struct cf_incident **list;
    size_t n = 0;
    int64_t next = INT64_MAX;
    if (fu->close_hint > limit || !fu->n_open) return;
    list = cf_malloc(fu->n_open * sizeof *list);
    if (!list) {
        fu->alloc_failures++;
        return;
    }
    for (size_t i = 0; i < fu->n_open; i++) {
        struct cf_incident *inc = fu->open[i];
        int64_t deadline = inc->active_ms + fu->close_after;
        if (deadline <= limit)
            list[n++] = inc;
        else if (deadline < next)
            next = deadline;
    }
    if (n) qsort(list, n, sizeof *list, cmp_incident_deadline);
    for (size_t i = 0; i < n; i++) close_incident(fu, list[i]);
    fu->close_hint = next;
    cf_free(list);
}

static void sweep(struct cf_fusion *fu) {
    fu->last_sweep = fu->clock;
    fu->org_node = NULL; /* host_orgs may drop it */
    if (fu->clock == INT64_MIN) return;
    fu->entities_expired +=
        map_expire(&fu->entities, fu->clock - fu->entity_ttl);
    map_expire(&fu->dups, fu->clock - fu->dup_window);
    map_expire(&fu->noise, fu->clock - fu->window);
    map_expire(&fu->sessions, fu->clock - fu->entity_ttl);
    map_expire(&fu->host_orgs, fu->clock - fu->entity_ttl);
    for (int64_t keep = fu->entity_ttl / 2;
         fu->sessions.n > fu->max_index && keep > 0; keep /= 2)
        map_expire(&fu->sessions, fu->clock - keep);
    /* Over the cap: forget the least recently seen entities first. */
    for (int64_t keep = fu->entity_ttl / 2;
         fu->entities.n > fu->max_index && keep > 0; keep /= 2)
        fu->entities_expired += map_expire(&fu->entities, fu->clock - keep);
    if (fu->entities.n > fu->max_index)
        fu->entities_expired += map_expire(&fu->entities, INT64_MAX);
}

static void confirm_bridges(struct cf_fusion *fu, int64_t due);

/* Moves the event-time clock to T: closes quiet incidents and emits the
 * versions of update intervals that ended, in time order.  Cross-host
 * links due on the way are decided with the clock at their due time, as
 * an alert at that time would be, so arrival order cannot matter. */
static void step_clock(struct cf_fusion *fu, int64_t T);

static void advance_clock(struct cf_fusion *fu, int64_t T) {
    int64_t due;
    while (cf_heap_peek(&fu->bridges, &due) && due <= T) {
        step_clock(fu, due);
        confirm_bridges(fu, due);
    }
    step_clock(fu, T);
}

static void step_clock(struct cf_fusion *fu, int64_t T) {
    if (T == INT64_MIN || (fu->clock != INT64_MIN && T <= fu->clock)) return;
    for (;;) {
        bool flush_due = fu->any_dirty && fu->bucket_end <= T;
        /* A close at the same instant as an interval end comes after the
         * flush, whatever steps the clock took to get here. */
        close_due(fu, flush_due ? fu->bucket_end - 1 : T);
        if (!flush_due) break;
        flush_dirty(fu);
    }
    fu->clock = T;
    int64_t b = T / fu->update_interval;
    if (T < 0 && T % fu->update_interval) b--;
    fu->bucket_end = (b + 1) * fu->update_interval;
    if (fu->last_sweep == INT64_MIN ||
        fu->clock - fu->last_sweep >=
            (fu->dup_window < 10 * MS_MINUTE ? fu->dup_window : 10 * MS_MINUTE))
        sweep(fu);
}

/* ---- fusing one alert ---------------------------------------------- */

/* Entity kinds in the order their link is reported: the most specific
 * evidence first. */
static const int link_order[] = {
    CF_ENTITY_PROCESS_GUID, CF_ENTITY_LOGON_ID,       CF_ENTITY_FILE_HASH,
    CF_ENTITY_USER,         CF_ENTITY_HOST,           CF_ENTITY_SRC_IP,
    CF_ENTITY_DST_IP,       CF_ENTITY_CLOUD_RESOURCE, CF_ENTITY_CLOUD_ACCOUNT};

static bool never_links(const struct cf_fusion *fu, int kind, const char *v) {
    for (size_t i = 0; i < fu->never[kind].n; i++)
        if (cf_entity_matches(fu->domains, kind, fu->never[kind].values[i], v))
            return true;
    return false;
}

/* Index key: kind byte, then (for logon ids, which are only unique per
 * machine) the host, then the value. */
static size_t entity_key(const struct cf_norm_entities *ne, int kind,
                         unsigned char *key, size_t size) {
    size_t n = 0;
    key[n++] = (unsigned char)kind;
    if (kind == CF_ENTITY_LOGON_ID) {
        size_t hl = ne->len[CF_ENTITY_HOST];
        if (hl + 2 < size) {
            memcpy(key + n, ne->value[CF_ENTITY_HOST], hl);
            n += hl;
            key[n++] = '|';
        }
    }
    size_t vl = ne->len[kind];
    if (n + vl > size) vl = size - n;
    memcpy(key + n, ne->value[kind], vl);
    return n + vl;
}

static struct cf_incident *resolve(const struct cf_fusion *fu,
                                   uint64_t serial) {
    const struct node *n = map_get(&fu->serials, &serial, sizeof serial);
    return n ? n->u.inc : NULL;
}

static int add_alias(struct cf_fusion *fu, struct cf_incident *dst,
                     uint64_t serial) {
    uint64_t *a = cf_realloc(dst->aliases, (dst->n_aliases + 1) * sizeof *a);
    if (!a) return CF_ERR_NOMEM;
    dst->aliases = a;
    a[dst->n_aliases++] = serial;
    struct node *n = map_get(&fu->serials, &serial, sizeof serial);
    if (!n && !(n = map_put(&fu->serials, &serial, sizeof serial, 0)))
        return CF_ERR_NOMEM;
    n->u.inc = dst;
    return CF_OK;
}

/* src joins dst through a shared entity: src's record (if it was ever
 * emitted) closes pointing at dst, and its history moves over. */
static void merge_into(struct cf_fusion *fu, struct cf_incident *dst,
                       struct cf_incident *src) {
    if (src->version > 0) emit_incident(fu, src, "closed", dst->id);
    remove_open(fu, src);
    if (src->active_ms > dst->active_ms) dst->active_ms = src->active_ms;
    if (cf_incident_merge(dst, src, &fu->limits) ||
        add_alias(fu, dst, src->serial))
        fu->alloc_failures++;
    for (size_t i = 0; i < src->n_aliases; i++)
        if (add_alias(fu, dst, src->aliases[i])) fu->alloc_failures++;
    fu->incidents_merged++;
    cf_incident_destroy(src);
}

/* Room for one more open incident. */
static bool open_room(struct cf_fusion *fu) {
    if (fu->n_open < fu->cap_open) return true;
    size_t nc = fu->cap_open ? fu->cap_open * 2 : 64;
    struct cf_incident **no = cf_realloc(fu->open, nc * sizeof *no);
    if (!no) return false;
    fu->open = no;
    fu->cap_open = nc;
    return true;
}

/* `active` is the clock from which the new incident's quiet time is
 * counted (see fuse). */
static struct cf_incident *open_incident(struct cf_fusion *fu,
                                         const struct cf_alert *alert,
                                         int64_t active) {
    if (fu->n_open >= fu->max_open) {
        /* Full: the incident quiet for longest goes, as if it timed out. */
        struct cf_incident *oldest = NULL;
        for (size_t i = 0; i < fu->n_open; i++) {
            struct cf_incident *c = fu->open[i];
            if (!oldest || c->last_ms < oldest->last_ms ||
                (c->last_ms == oldest->last_ms &&
                 strcmp(c->id, oldest->id) < 0))
                oldest = c;
        }
        if (oldest) {
            fu->incidents_evicted++;
            close_incident(fu, oldest);
        }
    }
    if (!open_room(fu)) return NULL;
    struct cf_incident *inc = cf_incident_new(fu->next_serial++, alert);
    if (!inc) return NULL;
    struct node *n = map_put(&fu->serials, &inc->serial, sizeof inc->serial, 0);
    if (!n) {
        cf_incident_destroy(inc);
        return NULL;
    }
    n->u.inc = inc;
    inc->open_index = fu->n_open;
    fu->open[fu->n_open++] = inc;
    fu->incidents_opened++;
    inc->active_ms = active;
    if (active + fu->close_after < fu->close_hint)
        fu->close_hint = active + fu->close_after;
    return inc;
}

static void normalize_alert(struct cf_fusion *fu, const struct cf_alert *a) {
    struct cf_norm_entities *ne = &fu->ne;
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        ne->raw[k] = a->entities.value[k];
        ne->len[k] = cf_entity_normalize_in(fu->domains, k, ne->raw[k],
                                            a->entities.value[CF_ENTITY_HOST],
                                            ne->value[k], sizeof ne->value[k]);
        if (ne->len[k] && never_links(fu, k, ne->value[k])) {
            ne->len[k] = 0;
            ne->value[k][0] = '\0';
        }
        if (ne->raw[k] && !ne->len[k]) fu->never_link_skips++;
    }
}

/* Same rule, same normalised entities. */
static uint64_t dup_digest(const struct cf_fusion *fu,
                           const struct cf_alert *a) {
    const char *rid = a->rule_id ? a->rule_id : "";
    uint64_t h = cf_hash_bytes(rid, strlen(rid) + 1);
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        unsigned char kb = (unsigned char)k;
        h = cf_hash_continue(h, &kb, 1);
        h = cf_hash_continue(h, fu->ne.value[k], fu->ne.len[k] + 1);
    }
    return h;
}

static bool fuse_duplicate(struct cf_fusion *fu, uint64_t digest, int64_t t) {
    struct node *n = map_get(&fu->dups, &digest, sizeof digest);
    if (!n || llabs(t - n->last_ms) >= fu->dup_window) return false;
    struct cf_incident *inc = resolve(fu, n->u.serial);
    if (!inc) return false;
    cf_incident_count_duplicate(inc, (const char *)n->data + sizeof digest);
    fu->any_dirty = true;
    fu->duplicates++;
    return true;
}

static void remember_duplicate_key(struct cf_fusion *fu, uint64_t digest,
                                   const struct cf_alert *a, int64_t t,
                                   const struct cf_incident *inc) {
    struct node *n = map_get(&fu->dups, &digest, sizeof digest);
    if (!n && !(n = map_put(&fu->dups, &digest, sizeof digest, 33))) {
        fu->alloc_failures++;
        return;
    }
    n->last_ms = t;
    n->u.serial = inc->serial;
    memcpy(n->data + sizeof digest, a->id, 33);
}

/* ---- prevalence and link strength ---------------------------------- */

/* Prevalence key of a normalised value: its kind and its text. */
static uint64_t value_key(int kind, const char *v, size_t len) {
    unsigned char kb = (unsigned char)kind;
    return cf_hash_continue(cf_hash_bytes(&kb, 1), v, len);
}

/* The organisation a host belongs to: the last two labels of its DNS
 * name ("ws03.sales.acme.local" -> "acme.local", so child domains of one
 * forest are one organisation); 0 when the name has no domain or is an
 * address. */
static uint32_t org_id(const char *raw) {
    char buf[CF_ENTITY_NORM_MAX];
    size_t n = 0, dots = 0;
    if (!raw) return 0;
    const char *dot = strchr(raw, '.');
    if (!dot || strchr(raw, ':')) return 0;
    bool digits = true;
    for (const char *c = raw; *c; c++)
        if (*c != '.' && (*c < '0' || *c > '9')) digits = false;
    if (digits) return 0;
    for (const char *c = dot + 1; *c && n + 1 < sizeof buf; c++)
        buf[n++] = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    buf[n] = '\0';
    /* keep the last two labels */
    size_t start = 0;
    for (size_t i = n; i-- > 0;)
        if (buf[i] == '.' && ++dots == 2) {
            start = i + 1;
            break;
        }
    return cf_prevalence_id(buf + start, n - start);
}

/* The organisation of host `host`: `org` when its name carried a domain
 * (remembered, when seen at time t), else what a full name of the same
 * host said before (logs that write "WS01" beside ones that write
 * "WS01.corp.com"), else 0.  Inline: every event's host asks. */
static inline uint32_t host_org(struct cf_fusion *fu, uint32_t host,
                                uint32_t org, int64_t t) {
    if (!host) return org;
    struct node *n = fu->org_node && fu->org_host == host
                         ? fu->org_node
                         : map_get(&fu->host_orgs, &host, sizeof host);
    if (org) {
        if (t == CF_TIME_UNKNOWN) return org;
        if (!n && !(n = map_put(&fu->host_orgs, &host, sizeof host, 0))) {
            fu->alloc_failures++;
            return org;
        }
        n->u.serial = org;
        if (t > n->last_ms) n->last_ms = t;
    }
    if (!n) return 0;
    fu->org_node = n;
    fu->org_host = host;
    return org ? org : (uint32_t)n->u.serial;
}

/* Every event's entity values are sighted (not only those of alerts): a
 * binary every machine runs shows up as common long before a rule fires
 * on it.  Kinds that identify one process or session (GUID, logon id)
 * are unique by construction and not tracked. */
static const int sighted_kinds[] = {
    CF_ENTITY_USER, /* first: cf_fusion_sight_at counts on it */
    CF_ENTITY_FILE_HASH,     CF_ENTITY_SRC_IP,        CF_ENTITY_DST_IP,
    CF_ENTITY_CLOUD_ACCOUNT, CF_ENTITY_CLOUD_RESOURCE};

/* Prevalence kind of a movement: an account logging on from one machine
 * to others (its value is "account from machine"). */
#define MOVEMENT_KIND 0x40

/* Session key: the host's id, then the normalised logon id. */
static size_t session_key(uint32_t host, const char *logon, size_t len,
                          unsigned char *key) {
    memcpy(key, &host, sizeof host);
    memcpy(key + sizeof host, logon, len);
    return sizeof host + len;
}

/* A logon on `host` (session `logon`) by `account` from machine `src`:
 * remembered, so alerts in that session can name where it came from,
 * and counted as a movement of the account from src (its prevalence:
 * how many machines the account reached from there). */
static void sight_logon(struct cf_fusion *fu, uint32_t host, const char *hostn,
                        const char *logon, size_t llen, const char *account,
                        uint32_t account_id, const char *src, int64_t t) {
    unsigned char key[sizeof(uint32_t) + CF_ENTITY_NORM_MAX];
    char what[2 * CF_ENTITY_NORM_MAX + 8];
    if (strcmp(src, hostn) == 0) return; /* a local logon */
    int wl = snprintf(what, sizeof what, "%s from %s", account, src);
    if (wl < 0) return;
    uint64_t mkey = value_key(MOVEMENT_KIND, what, (size_t)wl);
    cf_prevalence_see(fu->pv, mkey, host, 0, account_id, t);
    size_t klen = session_key(host, logon, llen, key);
    struct node *n = map_get(&fu->sessions, key, klen);
    if (n) {
        if (t > n->last_ms) n->last_ms = t;
        return;
    }
    size_t sl = strlen(src), xl = sl + 1 + (size_t)wl + 1;
    if (!(n = map_put(&fu->sessions, key, klen, xl))) {
        fu->alloc_failures++;
        return;
    }
    n->last_ms = t;
    n->u.serial = mkey;
    memcpy(n->data + klen, src, sl + 1);
    memcpy(n->data + klen + sl + 1, what, (size_t)wl + 1);
}

/* Makes e the memo entry of kind k for `raw` (len bytes, below
 * CF_ENTITY_TEXT_MAX; with `whole`, a file hash field's whole text, the
 * hash `text` picked from it) beside `ctx` (ctx_len bytes; NULL: none),
 * by normalising the text now. */
static void sight_new(struct cf_fusion *fu, struct sight_memo *e, int k,
                      const char *raw, size_t len, bool whole, const char *text,
                      size_t text_len, const char *ctx, size_t ctx_len,
                      uint64_t gen) {
    bool user = k == CF_ENTITY_USER;
    memset(e, 0, offsetof(struct sight_memo, raw));
    e->used = true;
    e->kind = (uint8_t)k;
    e->whole = whole;
    e->has_ctx = ctx != NULL;
    e->raw_len = (uint16_t)len;
    e->ctx_len = (uint16_t)ctx_len;
    e->gen = gen;
    /* the texts are the event's own bytes: NUL-terminated here */
    memcpy(e->raw, raw, len);
    e->raw[len] = '\0';
    if (ctx_len) memcpy(e->ctx, ctx, ctx_len);
    e->ctx[ctx_len] = '\0';
    char picked[CF_ENTITY_TEXT_MAX];
    const char *t = e->raw;
    if (whole) {
        memcpy(picked, text, text_len);
        picked[text_len] = '\0';
        t = picked;
    }
    /* as fusion keys the accounts of alerts (engine/entity_norm.h) */
    size_t n = cf_entity_normalize_in(
        user ? fu->domains : NULL, (enum cf_entity_kind)k, t,
        ctx ? e->ctx : NULL, e->norm, sizeof e->norm);
    e->norm_len = (uint16_t)n;
    /* ids name hosts and accounts; every kind's value has a key */
    e->id = user || k == CF_ENTITY_HOST ? cf_prevalence_id(e->norm, n) : 0;
    e->key = n ? value_key(k, e->norm, n) : 0;
    e->org = k == CF_ENTITY_HOST ? org_id(e->raw) : 0;
}

/* A signature of a text: its length and three words of it (a hash's
 * hex digits, a host or account name's ends), mixed. */
static inline uint32_t sight_sig(int k, const char *s, size_t len,
                                 size_t ctx_len) {
    uint64_t a = 0, b = 0, c = 0;
    if (len >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + len - 8, 8);
        memcpy(&c, s + len / 2 - 4, 8);
    } else {
        memcpy(&a, s, len);
    }
    uint64_t h =
        (a ^ ((uint64_t)len << 40 | (uint64_t)ctx_len << 20 | (uint64_t)k)) *
            UINT64_C(0x9E3779B97F4A7C15) ^
        b * UINT64_C(0xC2B2AE3D27D4EB4F) ^ c * UINT64_C(0x165667B19E3779F9);
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

/* Whether memo entry e is kind k's for `raw` (len bytes; `whole` as
 * sight_new takes it) beside `ctx` (ctx_len bytes; NULL: none), made
 * under domain generation `gen`. */
static inline bool sight_is(const struct sight_memo *e, int k, const char *raw,
                            size_t len, bool whole, uint64_t gen,
                            const char *ctx, size_t ctx_len) {
    return e->used && e->kind == k && e->raw_len == len && e->whole == whole &&
           e->gen == gen && e->has_ctx == (ctx != NULL) &&
           e->ctx_len == ctx_len && cf_bytes_equal(e->raw, raw, len) &&
           (!ctx_len || cf_bytes_equal(e->ctx, ctx, ctx_len));
}

/* The memo entry of kind k for raw text `raw` (len bytes, below
 * CF_ENTITY_TEXT_MAX; `whole` as sight_new takes it) beside `ctx`
 * (ctx_len bytes; NULL when none) under domain generation `gen`, in
 * spare slot `slot`'s kinds, found by its signature or made now (the
 * entity's text read from ev at `at` then). */
static struct sight_memo *sight_find(struct cf_fusion *fu, int k, int slot,
                                     const char *raw, size_t len, bool whole,
                                     const char *ctx, size_t ctx_len,
                                     uint64_t gen, const struct cf_event *ev,
                                     const struct cf_entity_at *at) {
    struct sight_memos *m = &fu->memo;
    struct sight_memo *spare = &m->spare[slot], *e = spare;
    if (m->way) {
        size_t set = sight_sig(k, raw, len, ctx_len) & (SIGHT_SETS - 1);
        for (int w = 0; w < 2; w++) {
            e = &m->way[2 * set + (size_t)w];
            if (sight_is(e, k, raw, len, whole, gen, ctx, ctx_len)) {
                m->recent[set] = (uint8_t)w;
                m->last[slot] = e;
                return e;
            }
        }
        /* in place of the way used less recently, unless pinned */
        int w = !m->recent[set];
        for (int tries = 0; tries < 2; tries++, w = !w) {
            e = &m->way[2 * set + (size_t)w];
            if (e != m->pin[0] && e != m->pin[1]) break;
        }
        if (e == m->pin[0] || e == m->pin[1])
            e = spare;
        else
            m->recent[set] = (uint8_t)w;
        m->last[slot] = e;
    }
    char buf[CF_ENTITY_TEXT_MAX];
    size_t tl = 0;
    const char *t = whole ? cf_entity_text(ev, at, k, buf, &tl) : NULL;
    sight_new(fu, e, k, raw, len, whole, t, tl, ctx, ctx_len, gen);
    return e;
}

/* sight_find's entry for kind k's raw text beside an account's `host`
 * text (NULL when none).  Inline: every event sights its host, most
 * their account, and the same ones again, which the host's or
 * account's last entry answers (an entry holds its text and context,
 * so one reused since is simply not it). */
static inline struct sight_memo *
sighted(struct cf_fusion *fu, int k, const char *raw, size_t len, bool whole,
        const char *host, size_t host_len, const struct cf_event *ev,
        const struct cf_entity_at *at) {
    struct sight_memos *m = &fu->memo;
    bool user = k == CF_ENTITY_USER;
    const char *ctx = user ? host : NULL;
    size_t ctx_len = ctx ? host_len : 0;
    uint64_t gen = user ? cf_domains_generation(fu->domains) : 0;
    int slot = k == CF_ENTITY_HOST ? 0 : user ? 1 : 2;
    struct sight_memo *e = m->last[slot];
    if (m->way && slot < 2 && e &&
        sight_is(e, k, raw, len, whole, gen, ctx, ctx_len))
        return e;
    return sight_find(fu, k, slot, raw, len, whole, ctx, ctx_len, gen, ev, at);
}

void cf_fusion_sight_plain(struct cf_fusion *fu) {
    cf_free(fu->memo.way);
    fu->memo.way = NULL;
    memset(fu->memo.last, 0, sizeof fu->memo.last);
}

unsigned cf_fusion_sight_kinds(void) {
    unsigned kinds = 1u << CF_ENTITY_HOST | 1u << CF_ENTITY_LOGON_ID;
    for (size_t i = 0; i < CF_ARRAY_LEN(sighted_kinds); i++)
        kinds |= 1u << sighted_kinds[i];
    return kinds;
}

void cf_fusion_sight(struct cf_fusion *fu, const struct cf_entity_map *map,
                     const struct cf_event *ev) {
    struct cf_entity_at at;
    if (!fu || !map || !ev || ev->time_ms == CF_TIME_UNKNOWN) return;
    cf_entity_locate(map, ev, cf_fusion_sight_kinds(), &at);
    cf_fusion_sight_at(fu, ev, &at);
}

void cf_fusion_sight_at(struct cf_fusion *fu, const struct cf_event *ev,
                        const struct cf_entity_at *at) {
    char hbuf[CF_ENTITY_TEXT_MAX], ubuf[CF_ENTITY_TEXT_MAX],
        kbuf[CF_ENTITY_TEXT_MAX];
    char norm[CF_ENTITY_NORM_MAX];
    const char *hostn = "", *usern = "";
    if (!fu || !ev || ev->time_ms == CF_TIME_UNKNOWN) return;
    size_t htl, utl;
    const char *ht = cf_entity_text(ev, at, CF_ENTITY_HOST, hbuf, &htl);
    const char *ut = cf_entity_text(ev, at, CF_ENTITY_USER, ubuf, &utl);
    uint32_t host = 0, account = 0, org = 0;
    size_t hl = 0, ul = 0;
    struct sight_memo *um = NULL;
    fu->memo.pin[0] = fu->memo.pin[1] = NULL;
    if (htl) {
        struct sight_memo *hm =
            sighted(fu, CF_ENTITY_HOST, ht, htl, false, NULL, 0, ev, at);
        fu->memo.pin[0] = hm;
        hostn = hm->norm;
        hl = hm->norm_len;
        host = hm->id;
        org = host_org(fu, host, hm->org, ev->time_ms);
        cf_prevalence_see_host_hinted(fu->pv, &hm->estate, host, ev->time_ms);
    }
    if (utl) {
        um = sighted(fu, CF_ENTITY_USER, ut, utl, false, htl ? ht : NULL, htl,
                     ev, at);
        fu->memo.pin[1] = um;
        usern = um->norm;
        ul = um->norm_len;
        account = um->id;
    }
    fu->events_sighted++;
    /* the account first; most events have none of the other kinds, and
     * one test (negative fields and-ed) spares them the loop */
    int none = -1;
    for (size_t i = 1; i < CF_ARRAY_LEN(sighted_kinds); i++)
        none &= at->field[sighted_kinds[i]];
    size_t n_kinds = none < 0 ? 1 : CF_ARRAY_LEN(sighted_kinds);
    for (size_t i = 0; i < n_kinds; i++) {
        int k = sighted_kinds[i];
        struct sight_memo *e = um;
        if (k != CF_ENTITY_USER) {
            size_t tl;
            const char *t;
            bool whole = false;
            if (at->field[k] < 0) continue; /* most events: spare the call */
            const struct cf_event_field *f = &ev->fields[at->field[k]];
            if (k == CF_ENTITY_FILE_HASH && f->value_len < CF_ENTITY_TEXT_MAX) {
                t = f->value; /* the hash is picked once, for the memo */
                tl = f->value_len;
                whole = true;
            } else {
                t = cf_entity_text(ev, at, k, kbuf, &tl);
            }
            if (!tl) continue;
            e = sighted(fu, k, t, tl, whole, NULL, 0, ev, at);
        } else if (!utl) {
            continue;
        }
        if (!e->norm_len) continue;
        cf_prevalence_see_hinted(fu->pv, &e->seen, e->key, host, org,
                                 k == CF_ENTITY_USER ? 0 : account,
                                 ev->time_ms);
    }
    /* Windows logon events (4624, 4648, ...) name the machine a logon
     * came from in WorkstationName. */
    if (!hl || !ul || at->field[CF_ENTITY_LOGON_ID] < 0) return;
    size_t ltl;
    const char *lt = cf_entity_text(ev, at, CF_ENTITY_LOGON_ID, kbuf, &ltl);
    if (!ltl) return;
    int w = cf_event_find(ev, "WorkstationName", 15, 0);
    if (w < 0 || ev->fields[w].type == CF_VALUE_NULL) return;
    char logon[CF_ENTITY_TEXT_MAX];
    memcpy(logon, lt, ltl);
    logon[ltl] = '\0';
    size_t ll =
        cf_entity_normalize(CF_ENTITY_LOGON_ID, logon, norm, sizeof norm);
    if (!ll) return;
    char src[CF_ENTITY_NORM_MAX], wraw[CF_ENTITY_NORM_MAX];
    size_t wl = ev->fields[w].value_len < sizeof wraw - 1
                    ? ev->fields[w].value_len
                    : sizeof wraw - 1;
    memcpy(wraw, ev->fields[w].value, wl);
    wraw[wl] = '\0';
    if (!cf_entity_normalize(CF_ENTITY_HOST, wraw, src, sizeof src)) return;
    sight_logon(fu, host, hostn, norm, ll, usern, account, src, ev->time_ms);
}

/* A value is rare when few machines carry it: at most rare_hosts (one
 * machine, the one it moved to and the domain controller that saw the
 * account authenticate), or at most common_percent of the
 * machines seen in the horizon (in a large estate a tool pushed to a
 * dozen machines is still rare; a binary every machine runs is not),
 * and all of them in one organisation. */
static bool is_rare(struct cf_fusion *fu, const struct cf_prevalence_count *p,
                    int64_t t) {
    /* Seen in two organisations, a value belongs to neither intrusion:
     * the same tool or binary in unrelated networks. */
    if (p->saturated || p->orgs > 1) return false;
    if (p->hosts <= fu->rare_hosts) return true;
    uint64_t estate = cf_prevalence_estate(fu->pv, t);
    return (uint64_t)p->hosts * 100 <= estate * fu->common_percent;
}

/* A candidate incident for the alert being fused, with the evidence
 * that ties it. */
struct cand {
    struct cf_incident *inc;
    bool strong;                /* some strong link */
    bool local;                 /* some link on the alert's own host */
    unsigned weak_kinds;        /* kinds that agree weakly (bit per kind) */
    int64_t near;               /* closest in time of the local links */
    struct cf_incident_why why; /* the link reported: strong first */
};

/* Kind, value and prevalence of the link of kind k; prevalence -1 when
 * not measured. */
static struct cf_incident_why why_of(const struct cf_fusion *fu, int k,
                                     bool strong,
                                     const struct cf_prevalence_count *p) {
    struct cf_incident_why w = {k, fu->ne.value[k], strong, -1, -1, false};
    if (p) {
        w.hosts = (int32_t)p->hosts;
        w.accounts = (int32_t)p->accounts;
        w.saturated = p->saturated;
    }
    return w;
}

static struct cand *cand_for(struct cand *c, size_t *n,
                             struct cf_incident *inc) {
    for (size_t j = 0; j < *n; j++)
        if (c[j].inc == inc) return &c[j];
    c[*n] = (struct cand){.inc = inc, .near = INT64_MAX};
    c[*n].why.kind = -1;
    return &c[(*n)++];
}

static unsigned popcount(unsigned x) {
    unsigned n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

/* The run of alerts of one rule on one host: key rule id, NUL, host. */
static size_t noise_key(const struct cf_alert *a, uint32_t host,
                        unsigned char *key, size_t size) {
    const char *rid = a->rule_id ? a->rule_id : "";
    size_t n = strlen(rid);
    if (n + 1 + sizeof host > size) n = size - 1 - sizeof host;
    memcpy(key, rid, n);
    key[n++] = '\0';
    memcpy(key + n, &host, sizeof host);
    return n + sizeof host;
}

/*
 * Counts the alert into its rule's run on its host and says whether that
 * run is the host's baseline: noise_alerts alerts or more, spread over at
 * least noise_span, with no gap longer than the fusion window.  An
 * attack step is minutes of activity with a handful of alerts per rule; a
 * rule that keeps firing on one machine for more than an hour is how
 * that machine works.  A short burst (a ransom note in every folder) is
 * not noise, however many alerts it makes.
 */
static struct node *noise_run(struct cf_fusion *fu, const struct cf_alert *a,
                              uint32_t host, int64_t t, bool *noisy) {
    unsigned char key[512];
    *noisy = false;
    if (!host || a->is_correlation) return NULL;
    size_t klen = noise_key(a, host, key, sizeof key);
    struct node *n = map_get(&fu->noise, key, klen);
    if (!n) {
        if (!(n = map_put(&fu->noise, key, klen, 0))) {
            fu->alloc_failures++;
            return NULL;
        }
        n->last_ms = n->last2 = t;
    }
    if (t - n->last_ms > fu->window) { /* a new run */
        n->count = 0;
        n->last2 = t;
        n->host1 = 0;
    }
    if (n->count < UINT32_MAX) n->count++;
    if (t > n->last_ms) n->last_ms = t;
    if (t < n->last2) n->last2 = t;
    *noisy =
        n->count >= fu->noise_alerts && n->last_ms - n->last2 >= fu->noise_span;
    return n;
}

/* Keeps an incident open at least until `due`, so that a link waiting to
 * be confirmed finds both its incidents whatever the arrival order. */
static void hold_open(struct cf_fusion *fu, struct cf_incident *inc,
                      int64_t due) {
    int64_t want = due - fu->close_after + 1; /* closes after, not at, due */
    if (inc->active_ms < want) inc->active_ms = want;
}

/*
 * A rare value links alert `a` (in incident `mine`) to `other` on another
 * host.  Rare at first sight is not enough: a binary being rolled out, or
 * anything at the start of a recording, is on two machines before it is
 * on all of them.  The two incidents are merged if the value is still
 * rare confirm_after later (confirm_bridges); they stay apart until then.
 * One proposal per pair of incidents.
 */
static void propose_bridge(struct cf_fusion *fu, const struct cf_alert *a,
                           int64_t t, struct cf_incident *mine,
                           struct cf_incident *other, int kind, uint64_t key,
                           const char *value) {
    uint64_t pair[2] = {
        mine->serial < other->serial ? mine->serial : other->serial,
        mine->serial < other->serial ? other->serial : mine->serial};
    if (mine == other || map_get(&fu->bridged, pair, sizeof pair)) return;
    struct bridge *b = cf_calloc(1, sizeof *b);
    if (!b || !(b->value = cf_strdup(value))) goto nomem;
    b->a = mine->serial;
    b->b = other->serial;
    memcpy(b->alert_id, a->id, sizeof b->alert_id);
    b->kind = kind;
    b->key = key;
    int64_t due =
        t > INT64_MAX - fu->confirm_after ? INT64_MAX : t + fu->confirm_after;
    struct node *n = map_put(&fu->bridged, pair, sizeof pair, 0);
    if (!n) goto nomem;
    if (cf_heap_push(&fu->bridges, due, b) != CF_OK) {
        map_del(&fu->bridged, pair, sizeof pair);
        goto nomem;
    }
    hold_open(fu, mine, due);
    hold_open(fu, other, due);
    if (due < fu->close_hint) fu->close_hint = due;
    fu->bridges_pending++;
    return;
nomem:
    if (b) cf_free(b->value);
    cf_free(b);
    fu->alloc_failures++;
}

/* Decides every proposed link due by `due`, each on the prevalence of
 * its value at its own due time. */
static void confirm_bridges(struct cf_fusion *fu, int64_t due) {
    int64_t at;
    while (cf_heap_peek(&fu->bridges, &at) && at <= due) {
        struct bridge *b = cf_heap_pop(&fu->bridges, NULL);
        uint64_t pair[2] = {b->a < b->b ? b->a : b->b,
                            b->a < b->b ? b->b : b->a};
        map_del(&fu->bridged, pair, sizeof pair);
        struct cf_incident *x = resolve(fu, b->a), *y = resolve(fu, b->b);
        if (x && y && x != y) {
            struct cf_prevalence_count p =
                cf_prevalence_get(fu->pv, b->key, at);
            if (!is_rare(fu, &p, at)) {
                fu->refused_prevalence++;
            } else {
                struct cf_incident *dst = x, *src = y;
                if (cmp_incident_first(&y, &x) < 0) {
                    dst = y;
                    src = x;
                }
                merge_into(fu, dst, src);
                /* The alert that found the link now says so. */
                for (size_t i = dst->n_links; i-- > 0;) {
                    struct cf_incident_link *l = &dst->links[i];
                    if (memcmp(l->alert_id, b->alert_id, 32) != 0) continue;
                    char *v = cf_strdup(b->value);
                    if (!v) {
                        fu->alloc_failures++;
                        break;
                    }
                    cf_free(l->value);
                    l->value = v;
                    l->kind = b->kind;
                    l->strong = true;
                    l->hosts = (int32_t)p.hosts;
                    l->accounts = (int32_t)p.accounts;
                    l->saturated = p.saturated;
                    break;
                }
                dst->dirty = true;
                fu->any_dirty = true;
                fu->bridges_confirmed++;
                fu->strong_links++;
            }
        }
        cf_free(b->value);
        cf_free(b);
    }
}

/* Fuses `a` at event time t.  `future`: t lies past the wall clock (see
 * the top of the file). */
static void fuse(struct cf_fusion *fu, const struct cf_alert *a, int64_t t,
                 bool future) {
    struct cand cand[2 * CF_ARRAY_LEN(link_order)];
    size_t n_cand = 0, n_defer = 0;
    struct {
        uint64_t serial; /* resolved after merges, which free incidents */
        int kind;
        uint64_t key;      /* prevalence key */
        const char *value; /* as the link will name it */
    } defer[2 * CF_ARRAY_LEN(link_order) + 2];
    unsigned char key[2 * CF_ENTITY_NORM_MAX + 2];

    fu->alerts_processed++;
    normalize_alert(fu, a);
    uint32_t host = cf_prevalence_id(fu->ne.value[CF_ENTITY_HOST],
                                     fu->ne.len[CF_ENTITY_HOST]);
    uint32_t org = fu->ne.len[CF_ENTITY_HOST]
                       ? host_org(fu, host, org_id(fu->ne.raw[CF_ENTITY_HOST]),
                                  CF_TIME_UNKNOWN)
                       : 0;
    bool noisy = false;
    struct node *run = future ? NULL : noise_run(fu, a, host, t, &noisy);
    uint64_t digest = dup_digest(fu, a);
    if (!future && fuse_duplicate(fu, digest, t)) return;

    if (noisy) {
        /* The first time: the run's earlier alerts stop counting in the
         * incident that holds them (host1 marks the run as announced). */
        struct cf_incident *held = resolve(fu, run->u.serial);
        if (!run->host1) {
            run->host1 = 1;
            fu->noise_rules++;
            if (held) cf_incident_mark_noisy(held, a->rule_id, host);
        }
        if (held) {
            cf_incident_fold(held, a->rule_id, host);
            fu->noise_folded++;
            fu->any_dirty = true;
            return;
        }
    }

    /* Informational alerts are context (SigmaHQ gives that level to
     * hunting rules that fire on ordinary administration), and so is
     * noise: they join an incident through a strong link (their process
     * or session) or as context on their own host, never open one, never
     * bridge two and never index their entities; otherwise routine
     * activity would chain the estate into one incident.  So are the
     * alerts of rules that only feed correlations (no `generate: true`):
     * their author asked for the correlation alone to be reported. */
    bool context_only =
        noisy || (a->level == CF_LEVEL_INFORMATIONAL && !a->is_correlation) ||
        a->ungenerated;
    for (size_t i = 0; i < CF_ARRAY_LEN(link_order); i++) {
        int k = link_order[i];
        if (!cf_entity_kind_links(k) || !fu->ne.len[k]) continue;
        bool strong_kind =
            k == CF_ENTITY_PROCESS_GUID || k == CF_ENTITY_LOGON_ID;
        if (context_only && !strong_kind && k != CF_ENTITY_HOST) continue;
        size_t klen = entity_key(&fu->ne, k, key, sizeof key);
        const struct node *n = map_get(&fu->entities, key, klen);
        if (!n) continue;
        if (n->count > fu->weak_threshold) {
            fu->weak_skips++;
            continue;
        }
        bool measured = false;
        struct cf_prevalence_count p = {0, 0, 0, false};
        for (int slot = 0; slot < 2; slot++) {
            uint64_t serial = slot ? n->serial2 : n->u.serial;
            int64_t last = slot ? n->last2 : n->last_ms;
            uint32_t shost = slot ? n->host2 : n->host1;
            uint32_t sorg = slot ? n->org2 : n->org1;
            if (!serial || llabs(t - last) > fu->window) continue;
            struct cf_incident *inc = resolve(fu, serial);
            if (!inc) continue;
            /* Nothing links across organisations ("dc01" of one is not
             * "dc01" of another, nor is its logon 0x3e7a). */
            if (org && sorg && org != sorg) {
                fu->refused_organisation++;
                continue;
            }
            bool same_host = k == CF_ENTITY_HOST || (host && shost == host);
            /* One process lives on one machine: a GUID on two hosts is a
             * placeholder or a collision, not the same process. */
            if (k == CF_ENTITY_PROCESS_GUID && host && shost && !same_host) {
                fu->refused_weak++;
                continue;
            }
            bool strong = strong_kind;
            bool measure = !strong && !same_host && (host || shost);
            if (measure && !measured) {
                p = cf_prevalence_get(
                    fu->pv, value_key(k, fu->ne.value[k], fu->ne.len[k]), t);
                measured = true;
            }
            if (measure) {
                /* Across hosts a shared value is evidence only when it
                 * is rare, and never across organisations. */
                if (!is_rare(fu, &p, t)) {
                    fu->refused_prevalence++;
                    continue;
                }
                /* Hosts of two organisations are unrelated; so are a
                 * host of a known organisation and one whose logs never
                 * named its domain (another network's workgroup). */
                if (org != sorg) {
                    fu->refused_organisation++;
                    continue;
                }
                if (fu->confirm_after > 0) {
                    /* decided later (confirm_bridges) */
                    if (n_defer < CF_ARRAY_LEN(defer)) {
                        defer[n_defer].serial = inc->serial;
                        defer[n_defer].key =
                            value_key(k, fu->ne.value[k], fu->ne.len[k]);
                        defer[n_defer].value = fu->ne.value[k];
                        defer[n_defer++].kind = k;
                    }
                    continue;
                }
                strong = true;
            } else if (!strong && !same_host) {
                /* neither side knows its host (cloud logs): the value is
                 * all there is, as before prevalence */
                strong = true;
            }
            struct cand *c = cand_for(cand, &n_cand, inc);
            if (strong) {
                if (!c->strong)
                    c->why = why_of(fu, k, true, measured ? &p : NULL);
                c->strong = true;
            } else {
                c->weak_kinds |= 1u << k;
                c->local = true;
                if (llabs(t - last) < c->near) c->near = llabs(t - last);
                if (!c->strong && c->why.kind < 0)
                    c->why = why_of(fu, k, false, NULL);
            }
        }
    }

    /* The alert's session came from another machine: the account moved
     * here from there.  Evidence when that movement is rare (the
     * account reached few machines from there; an administrator's jump
     * host reaches all of them), confirmed like a shared value. */
    if (!context_only && host && fu->ne.len[CF_ENTITY_LOGON_ID] &&
        fu->confirm_after > 0) {
        unsigned char sk[sizeof(uint32_t) + CF_ENTITY_NORM_MAX];
        size_t sl = session_key(host, fu->ne.value[CF_ENTITY_LOGON_ID],
                                fu->ne.len[CF_ENTITY_LOGON_ID], sk);
        struct node *sn = map_get(&fu->sessions, sk, sl);
        /* Once per session: its first alert is the one nearest the
         * logon, when the machine it came from is best known. */
        if (sn && !sn->serial2) {
            sn->serial2 = 1;
            const char *src = (const char *)sn->data + sn->klen;
            const char *what = src + strlen(src) + 1;
            struct cf_prevalence_count p =
                cf_prevalence_get(fu->pv, sn->u.serial, t);
            /* The incident where the account was active on the machine
             * it came from, else the one closest in time there - not
             * that machine's other activity. */
            uint32_t src_id = cf_prevalence_id(src, strlen(src));
            uint64_t from = 0;
            int64_t from_near = INT64_MAX;
            const struct node *un = NULL, *hn;
            if (fu->ne.len[CF_ENTITY_USER]) {
                size_t ul =
                    entity_key(&fu->ne, CF_ENTITY_USER, key, sizeof key);
                un = map_get(&fu->entities, key, ul);
            }
            for (int slot = 0; un && slot < 2; slot++) {
                uint64_t serial = slot ? un->serial2 : un->u.serial;
                int64_t d = llabs(t - (slot ? un->last2 : un->last_ms));
                uint32_t shost = slot ? un->host2 : un->host1;
                if (serial && shost == src_id && d <= fu->window &&
                    d < from_near && resolve(fu, serial)) {
                    from = serial;
                    from_near = d;
                }
            }
            key[0] = (unsigned char)CF_ENTITY_HOST;
            size_t hl =
                strlen(src) < sizeof key - 1 ? strlen(src) : sizeof key - 1;
            memcpy(key + 1, src, hl);
            hn = from ? NULL : map_get(&fu->entities, key, hl + 1);
            for (int slot = 0; hn && slot < 2; slot++) {
                uint64_t serial = slot ? hn->serial2 : hn->u.serial;
                int64_t d = llabs(t - (slot ? hn->last2 : hn->last_ms));
                if (serial && d <= fu->window && d < from_near &&
                    resolve(fu, serial)) {
                    from = serial;
                    from_near = d;
                }
            }
            if (from && !is_rare(fu, &p, t)) {
                fu->refused_prevalence++;
            } else if (from && n_defer < CF_ARRAY_LEN(defer)) {
                defer[n_defer].serial = from;
                defer[n_defer].kind = CF_ENTITY_USER;
                defer[n_defer].key = sn->u.serial;
                defer[n_defer++].value = what;
            }
        }
    }

    /* The incident joined: the one with the most evidence - a strong
     * link (the earliest such incident), else several weak links that
     * agree (the same host and a value it shares there), else the same
     * host alone - and among equals the closest in time on this host.
     * An alert tied here only by its host, but by rare evidence to an
     * incident elsewhere, starts its own incident and waits for that
     * evidence: joining would carry the host's unrelated activity along
     * when the evidence is confirmed. */
    struct cand *best = NULL;
    int best_class = 0;
    for (size_t j = 0; j < n_cand; j++) {
        struct cand *c = &cand[j];
        int cls = c->strong ? 3 : popcount(c->weak_kinds) >= 2 ? 2 : 1;
        bool better =
            !best || cls > best_class ||
            (cls == best_class &&
             (cls == 3 ? cmp_incident_first(&c->inc, &best->inc) < 0
                       : (c->near < best->near ||
                          (c->near == best->near &&
                           cmp_incident_first(&c->inc, &best->inc) < 0))));
        if (better) {
            best = c;
            best_class = cls;
        }
    }
    if (best && best_class == 1 && n_defer > 0 && !context_only) {
        fu->refused_weak++;
        best = NULL;
    }
    struct cf_incident *target = best ? best->inc : NULL;
    if (context_only && !target) {
        if (noisy)
            fu->noise_unfused++;
        else
            fu->context_unfused++;
        return;
    }
    if (best) {
        if (best->strong)
            fu->strong_links++;
        else
            fu->weak_links++;
    }
    /* An incident fed by late alerts stays open for close_after of the
     * clock from now, not from its (old) event times: otherwise every
     * late alert would open and at once close an incident of its own.
     * For alerts within the lateness the clock equals t here.  An alert
     * from the future counts from the clock too (or, before any event
     * time was believed, from the wall clock), not from 2100. */
    int64_t now = fu->clock > t ? fu->clock : t;
    if (future)
        now = fu->clock != INT64_MIN ? fu->clock
                                     : fu->future_limit - fu->max_future_skew;
    /* Two incidents become one only on a strong link, or on two weak
     * ones that agree (the same host and a value it shares): a single
     * weak link (the same host within the window) lets an alert join,
     * never bridges two stories. */
    for (size_t j = 0; j < n_cand && !context_only; j++) {
        if (cand[j].inc == target) continue;
        if (cand[j].strong || popcount(cand[j].weak_kinds) >= 2)
            merge_into(fu, target, cand[j].inc);
        else
            fu->refused_weak++;
    }
    if (!target && !(target = open_incident(fu, a, now))) {
        fu->alloc_failures++;
        return;
    }
    struct cf_incident_why why = {-1, NULL, false, -1, -1, false};
    if (best) why = best->why;
    bool context = context_only && !(best && best->strong);
    if (cf_incident_add(target, a, t, &fu->ne, host, &why, context,
                        &fu->limits))
        fu->alloc_failures++;
    if (noisy) cf_incident_mark_noisy(target, a->rule_id, host);
    for (size_t j = 0; j < n_defer; j++) {
        struct cf_incident *other = resolve(fu, defer[j].serial);
        if (other)
            propose_bridge(fu, a, t, target, other, defer[j].kind, defer[j].key,
                           defer[j].value);
    }
    if (run) run->u.serial = target->serial;
    if (now > target->active_ms) target->active_ms = now;
    fu->any_dirty = true;
    if (!future) remember_duplicate_key(fu, digest, a, t, target);

    /* Index the alert's entities under the incident; an entity that
     * moves to another incident counts towards becoming weak. */
    for (int k = 0; k < CF_ENTITY_COUNT && !context_only; k++) {
        if (!cf_entity_kind_links(k) || !fu->ne.len[k]) continue;
        size_t klen = entity_key(&fu->ne, k, key, sizeof key);
        struct node *n = map_get(&fu->entities, key, klen);
        if (!n) {
            if (!(n = map_put(&fu->entities, key, klen, 0))) {
                fu->alloc_failures++;
                continue;
            }
            n->count = 1;
            n->u.serial = target->serial;
            n->last_ms = t;
            n->host1 = host;
            n->org1 = org;
        } else if (resolve(fu, n->u.serial) == target) {
            if (t > n->last_ms) n->last_ms = t;
            n->host1 = host;
            n->org1 = org;
        } else if (n->serial2 && resolve(fu, n->serial2) == target) {
            if (t > n->last2) n->last2 = t;
            n->host2 = host;
            n->org2 = org;
        } else {
            /* The entity joins another incident.  Only incidents in one
             * unbroken run of sightings (each within the fusion window of
             * the previous) count towards weakness: a host quiet for a
             * day, or an old log replayed late, starts afresh. */
            int64_t near = llabs(t - n->last_ms);
            if (n->serial2 && llabs(t - n->last2) < near)
                near = llabs(t - n->last2);
            if (near > fu->window) n->count = 0;
            n->count++;
            /* Replace the slot whose incident is gone, else the older. */
            bool first_gone = !resolve(fu, n->u.serial);
            bool second_gone = !n->serial2 || !resolve(fu, n->serial2);
            if (first_gone || (!second_gone && n->last_ms <= n->last2)) {
                n->u.serial = target->serial;
                n->last_ms = t;
                n->host1 = host;
                n->org1 = org;
            } else {
                n->serial2 = target->serial;
                n->last2 = t;
                n->host2 = host;
                n->org2 = org;
            }
        }
    }
    if (fu->entities.n > fu->max_index) sweep(fu);
}

/* ---- correlation --------------------------------------------------- */

static void on_correlation(const struct cf_alert *alert, void *opaque) {
    struct cf_fusion *fu = opaque;
    /* Counted when raised, so raised = written + correlation_unwritten. */
    fu->correlation_alerts++;
    if (fu->n_cq >= fu->cap_cq) {
        size_t nc = fu->cap_cq ? fu->cap_cq * 2 : 16;
        struct cf_alert *nq = cf_realloc(fu->cq, nc * sizeof *nq);
        if (!nq) {
            fu->correlation_unwritten++; /* neither written nor fused */
            return;
        }
        fu->cq = nq;
        fu->cap_cq = nc;
    }
    if (cf_alert_copy(&fu->cq[fu->n_cq], alert) != CF_OK) {
        fu->correlation_unwritten++;
        return;
    }
    fu->cq[fu->n_cq].is_correlation = true;
    fu->n_cq++;
}

/* Correlation alerts raised by the last correlator call, in the order
 * it raised them: emitted as alerts and fused.  The correlator chains
 * correlations over correlations itself, so they are not pushed back. */
static const struct suppression *suppressed_by(struct cf_fusion *fu,
                                               const struct cf_alert *a,
                                               const struct cf_event *ev);

static void drain(struct cf_fusion *fu) {
    size_t done = 0;
    if (fu->draining) return;
    fu->draining = true;
    while (done < fu->n_cq) {
        struct cf_alert a = fu->cq[done++];
        /* A suppression names a rule by id, name or title; correlation
         * rules have them too, so their alerts are hidden the same way. */
        if (fu->n_supp && suppressed_by(fu, &a, NULL)) {
            fu->suppressed++;
            cf_alert_clear(&a);
            continue;
        }
        cf_buf_reset(&fu->rec);
        if (a.ungenerated) /* chained into another correlation only */
            fu->ungenerated++;
        else if (cf_alert_write(&a, &fu->rec) != CF_OK)
            fu->correlation_unwritten++; /* still fused below */
        else if (fu->emit) {
            struct cf_out_record r = cf_alert_out_record(&a, &fu->rec);
            fu->emit(&r, fu->opaque);
        }
        /* A correlation alert's time is one of its alerts' times, never
         * unknown; were it, it would be kept out like any other. */
        if (a.time_ms == CF_TIME_UNKNOWN)
            fu->no_time_alerts++;
        else
            fuse(fu, &a, a.time_ms, false);
        cf_alert_clear(&a);
    }
    fu->n_cq = 0;
    fu->draining = false;
}

/* ---- ordering ------------------------------------------------------ */

/*
 * One alert, in event-time order.  The correlator is driven by the same
 * sorted sequence: it is advanced to the alert's time (so windows that
 * ended before it fire, and their alerts are fused, first) and then given
 * the alert.  It is never advanced to the watermark itself, whose steps
 * depend on arrival order; so correlation alerts, and the incidents they
 * join, do not depend on arrival order either.  The cost is latency: a
 * window is decided when the next alert (or the end of input) comes.
 */
static void process(struct cf_fusion *fu, const struct cf_alert *a) {
    int64_t t = a->time_ms; /* known: see cf_fusion_push */
    advance_clock(fu, t);
    if (fu->co) {
        cf_correlator_advance(fu->co, t);
        drain(fu);
    }
    fuse(fu, a, t, false);
    if (fu->co) {
        cf_correlator_push(fu->co, a);
        drain(fu);
    }
}

/* Processes and frees the first held alert. */
static void process_next(struct cf_fusion *fu) {
    struct cf_alert *a = cf_heap_pop(&fu->pending, NULL);
    process(fu, a);
    cf_alert_clear(a);
    cf_free(a);
}

static void release(struct cf_fusion *fu, int64_t upto) {
    int64_t t;
    while (cf_heap_peek(&fu->pending, &t) && t < upto) process_next(fu);
}

static void set_watermark(struct cf_fusion *fu, int64_t w) {
    if (w <= fu->watermark) return;
    fu->watermark = w;
    release(fu, w);
    advance_clock(fu, w);
}

void cf_fusion_set_wall_clock(struct cf_fusion *fu, cf_wall_clock_fn now,
                              void *opaque) {
    if (!fu) return;
    fu->wall_clock = now ? now : system_clock;
    fu->wall_opaque = now ? opaque : NULL;
    fu->future_limit = INT64_MIN;
}

/* Whether event time t lies past the wall clock plus max_future_skew.
 * The clock is read only when t passes the bound of its last reading:
 * about once per max_future_skew in a live stream, never in a replay of
 * old input once read. */
static bool from_the_future(struct cf_fusion *fu, int64_t t) {
    if (t <= fu->future_limit) return false;
    int64_t now = fu->wall_clock(fu->wall_opaque);
    fu->future_limit = now > INT64_MAX - fu->max_future_skew
                           ? INT64_MAX
                           : now + fu->max_future_skew;
    return t > fu->future_limit;
}

void cf_fusion_observe(struct cf_fusion *fu, int64_t time_ms) {
    if (!fu || time_ms == CF_TIME_UNKNOWN || time_ms <= fu->max_seen) return;
    if (from_the_future(fu, time_ms)) {
        fu->future_events++;
        return;
    }
    fu->max_seen = time_ms;
    set_watermark(fu, time_ms - fu->lateness);
}

/* ---- suppression --------------------------------------------------- */

/* Whether some leaf of the decoded event named `name` has the value
 * `want` (text as written, ASCII case ignored).  The event is decoded by
 * the detection decoder, so names are the ones rules use (nested Windows
 * events folded flat) and any valid JSON number is readable. */
static bool field_matches(const struct cf_event *ev, const char *name,
                          const json_t *want) {
    size_t name_len = strlen(name), want_len;
    const char *w;
    if (!json_is_string(want)) return false;
    w = json_string_value(want);
    want_len = json_string_length(want);
    for (int i = cf_event_find(ev, name, name_len, 0); i >= 0;
         i = cf_event_find(ev, name, name_len, (uint32_t)i + 1)) {
        const struct cf_event_field *f = &ev->fields[i];
        if (f->type != CF_VALUE_NULL && f->value_len == want_len &&
            strncasecmp(f->value, w, want_len) == 0)
            return true;
    }
    return false;
}

/* `ev` is the alert's decoded event, NULL for a correlation alert (which
 * has none, so no field suppression applies to it). */
static const struct suppression *suppressed_by(struct cf_fusion *fu,
                                               const struct cf_alert *a,
                                               const struct cf_event *ev) {
    const struct suppression *hit = NULL;
    int64_t t = a->time_ms;
    for (size_t i = 0; i < fu->n_supp && !hit; i++) {
        struct suppression *s = &fu->supp[i];
        /* Expiry is compared with event time so a replay of old input
         * behaves as it did live. */
        if (t != CF_TIME_UNKNOWN && t >= s->expires_ms) continue;
        if (s->rule &&
            !names_it(s->rule, a->rule_id, a->rule_name, a->rule_title))
            continue;
        bool ok = true;
        for (int k = 0; k < CF_ENTITY_COUNT && ok; k++) {
            char buf[CF_ENTITY_NORM_MAX];
            if (!s->entity[k]) continue;
            if (!a->entities.value[k]) {
                ok = false;
                continue;
            }
            if (!cf_entity_normalize_in(fu->domains, k, a->entities.value[k],
                                        a->entities.value[CF_ENTITY_HOST], buf,
                                        sizeof buf))
                snprintf(buf, sizeof buf, "%s", a->entities.value[k]);
            for (char *c = buf; *c; c++)
                if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
            ok = cf_entity_matches(fu->domains, k, s->entity[k], buf);
        }
        if (ok && s->fields) {
            const char *name;
            json_t *want;
            json_object_foreach(s->fields, name, want) {
                if (!ev || !field_matches(ev, name, want)) ok = false;
            }
        }
        if (ok) {
            s->hits++;
            hit = s;
        }
    }
    return hit;
}

void cf_fusion_learn(struct cf_fusion *fu, const struct cf_event *ev) {
    if (fu) cf_domains_learn_event(fu->domains, ev);
}

void cf_fusion_learn_found(struct cf_fusion *fu, const struct cf_event *ev,
                           const int *first) {
    if (fu) cf_domains_learn_found(fu->domains, ev, first);
}

bool cf_fusion_push(struct cf_fusion *fu, const struct cf_alert *alert,
                    const struct cf_event *ev) {
    if (!fu || !alert) return false;
    fu->alerts_in++;
    /* entity fields the configuration adds teach too */
    cf_domains_learn_account(fu->domains, alert->entities.value[CF_ENTITY_USER],
                             alert->entities.value[CF_ENTITY_HOST]);
    if (fu->n_supp && suppressed_by(fu, alert, ev)) {
        fu->suppressed++;
        return true;
    }
    /* An alert without a time stays out of incidents (counted: dropped
     * fusion_no_time; the alert itself is written).  Every link is a
     * window of event time and every bound an event time: without one,
     * placing it by input order would date incidents from whatever the
     * clock says (1970 before any time was seen) and let one alert of a
     * log replayed days later bridge unrelated incidents.  The cure is
     * upstream: time.fields names the field the events carry. */
    if (alert->time_ms == CF_TIME_UNKNOWN) {
        fu->no_time_alerts++;
        /* Correlations count it too, if one refers to its rule
         * (dropped correlation_no_time). */
        if (fu->co) cf_correlator_push(fu->co, alert);
        return false;
    }
    if (from_the_future(fu, alert->time_ms)) {
        /* Waiting for the watermark would mean waiting for 2100. */
        fu->future_alerts++;
        if (cf_correlator_refers_to(fu->co, alert)) fu->future_uncorrelated++;
        fuse(fu, alert, alert->time_ms, true);
        return false;
    }
    if (fu->watermark != INT64_MIN && alert->time_ms < fu->watermark) {
        fu->late_alerts++;
        process(fu, alert);
        return false;
    }
    if (fu->pending.n >= fu->max_pending) {
        /* Memory before order: the oldest waiting alert goes now. */
        fu->pending_forced++;
        process_next(fu);
    }
    /* The waiting copy keeps the event only when a correlation will read
     * its fields (correlate.c decodes it for group-by); fusion reads the
     * entities, time and tactics.  An alert waits up to the lateness (15
     * minutes by default), and the event was most of a copy's memory:
     * RSS 83 MB -> 56 MB on an alert-heavy Mordor recording replayed
     * (every alert waits there: the replays repeat its times). */
    struct cf_alert lean;
    const struct cf_alert *kept = alert;
    if (alert->event_json && !cf_correlator_refers_to(fu->co, alert)) {
        lean = *alert;
        lean.event_json = NULL;
        lean.event_len = 0;
        kept = &lean;
    }
    if (cf_alert_queue_push(&fu->pending, kept) != CF_OK) {
        fu->alloc_failures++;
        process(fu, alert);
    }
    return false;
}

void cf_fusion_finish(struct cf_fusion *fu) {
    if (!fu) return;
    release(fu, INT64_MAX);
    if (fu->co) {
        cf_correlator_finish(fu->co);
        drain(fu);
    }
    /* Links still waiting are decided at their due time, on what the
     * input showed up to then. */
    int64_t due;
    while (cf_heap_peek(&fu->bridges, &due)) {
        step_clock(fu, due);
        confirm_bridges(fu, due);
    }
    flush_dirty(fu);
    if (fu->n_open) {
        struct cf_incident **list = cf_malloc(fu->n_open * sizeof *list);
        if (!list) {
            fu->alloc_failures++;
            return;
        }
        size_t n = fu->n_open;
        if (n) memcpy(list, fu->open, n * sizeof *list);
        if (n) qsort(list, n, sizeof *list, cmp_incident_first);
        for (size_t i = 0; i < n; i++) close_incident(fu, list[i]);
        cf_free(list);
    }
}

json_t *cf_fusion_stats(const struct cf_fusion *fu) {
    json_t *s = json_object();
    if (!fu || !s) return s;
#define STAT(name, v)                                                          \
    json_object_set_new(s, name, json_integer((json_int_t)(v)))
    STAT("alerts_in", fu->alerts_in);
    STAT("alerts_fused", fu->alerts_processed);
    STAT("late_alerts", fu->late_alerts);
    STAT("future_events", fu->future_events);
    STAT("future_alerts", fu->future_alerts);
    STAT("duplicates", fu->duplicates);
    STAT("weak_entity_skips", fu->weak_skips);
    STAT("informational_not_fused", fu->context_unfused);
    cf_domains_stats(fu->domains, s);
    STAT("never_link_values", fu->never_link_skips);
    STAT("strong_links", fu->strong_links);
    STAT("weak_links", fu->weak_links);
    STAT("links_refused_prevalence", fu->refused_prevalence);
    STAT("cross_host_links_proposed", fu->bridges_pending);
    STAT("cross_host_links_confirmed", fu->bridges_confirmed);
    STAT("cross_host_links_waiting", fu->bridges.n);
    STAT("links_refused_organisation", fu->refused_organisation);
    STAT("links_refused_weak", fu->refused_weak);
    STAT("noise_rules", fu->noise_rules);
    STAT("noise_folded", fu->noise_folded);
    STAT("noise_not_fused", fu->noise_unfused);
    STAT("events_sighted", fu->events_sighted);
    STAT("prevalence_values", cf_prevalence_values(fu->pv));
    STAT("prevalence_evicted", cf_prevalence_evicted(fu->pv));
    STAT("prevalence_bytes", cf_prevalence_bytes(fu->pv));
    STAT("incidents_opened", fu->incidents_opened);
    STAT("incidents_raised", fu->incidents_raised);
    STAT("incidents_closed", fu->incidents_closed);
    STAT("incidents_evicted", fu->incidents_evicted);
    STAT("incidents_merged", fu->incidents_merged);
    STAT("incidents_below_threshold", fu->incidents_dropped_unraised);
    STAT("incidents_open", fu->n_open);
    STAT("alerts_pending", fu->pending.n);
    STAT("pending_forced", fu->pending_forced);
    STAT("entities_tracked", fu->entities.n);
    STAT("entities_expired", fu->entities_expired);
#undef STAT
    if (fu->n_supp) {
        json_t *by = json_array();
        for (size_t i = 0; i < fu->n_supp; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "rule",
                                fu->supp[i].rule ? json_string(fu->supp[i].rule)
                                                 : json_null());
            json_object_set_new(o, "reason",
                                fu->supp[i].reason
                                    ? json_string(fu->supp[i].reason)
                                    : json_null());
            json_object_set_new(o, "hits",
                                json_integer((json_int_t)fu->supp[i].hits));
            json_array_append_new(by, o);
        }
        json_object_set_new(s, "suppressions", by);
    }
    if (fu->watermark != INT64_MIN) {
        char buf[32];
        cf_time_format(fu->watermark, buf);
        json_object_set_new(s, "watermark", json_string(buf));
    }
    if (fu->co)
        json_object_set_new(s, "correlation", cf_correlator_stats(fu->co));
    return s;
}

void cf_fusion_counts(const struct cf_fusion *fu, struct cf_fusion_counts *c) {
    memset(c, 0, sizeof *c);
    if (!fu) return;
    c->suppressed = fu->suppressed;
    c->correlation_alerts = fu->correlation_alerts;
    c->ungenerated = fu->ungenerated;
    c->incidents = fu->incidents_emitted;
    c->incident_records = fu->records_emitted;
}

void cf_fusion_drops(const struct cf_fusion *fu, struct cf_drops *sum) {
    if (!fu) return;
    sum->n[CF_DROP_CORRELATION_ALERT_UNWRITTEN] += fu->correlation_unwritten;
    sum->n[CF_DROP_INCIDENT_RECORD_UNWRITTEN] += fu->incident_unwritten;
    sum->n[CF_DROP_FUSION_OUT_OF_MEMORY] += fu->alloc_failures;
    sum->n[CF_DROP_FUSION_NO_TIME] += fu->no_time_alerts;
    sum->n[CF_DROP_CORRELATION_FUTURE_TIME] += fu->future_uncorrelated;
    cf_correlator_drops(fu->co, sum);
}

/* ---- checkpoints --------------------------------------------------- */

/* Every counter, in the order the checkpoint keeps them. */
#define COUNTERS(fu)                                                           \
    &(fu)->alerts_in, &(fu)->alerts_processed, &(fu)->late_alerts,             \
        &(fu)->no_time_alerts, &(fu)->future_events, &(fu)->future_alerts,     \
        &(fu)->future_uncorrelated, &(fu)->correlation_alerts,                 \
        &(fu)->suppressed, &(fu)->duplicates, &(fu)->weak_skips,               \
        &(fu)->context_unfused, &(fu)->never_link_skips,                       \
        &(fu)->incidents_opened, &(fu)->incidents_raised,                      \
        &(fu)->incidents_emitted, &(fu)->records_emitted,                      \
        &(fu)->incidents_closed, &(fu)->incidents_evicted,                     \
        &(fu)->incidents_merged, &(fu)->incidents_dropped_unraised,            \
        &(fu)->entities_expired, &(fu)->pending_forced, &(fu)->alloc_failures, \
        &(fu)->correlation_unwritten, &(fu)->incident_unwritten,               \
        &(fu)->ungenerated, &(fu)->strong_links, &(fu)->weak_links,            \
        &(fu)->refused_prevalence, &(fu)->bridges_pending,                     \
        &(fu)->bridges_confirmed, &(fu)->refused_organisation,                 \
        &(fu)->refused_weak, &(fu)->noise_rules, &(fu)->noise_folded,          \
        &(fu)->noise_unfused, &(fu)->events_sighted

/* The maps a checkpoint keeps, in its order: one list, so save and load
 * cannot drift apart. */
#define CHECKPOINTED_MAPS(fu)                                                  \
    &(fu)->entities, &(fu)->dups, &(fu)->noise, &(fu)->sessions,               \
        &(fu)->host_orgs, &(fu)->bridged

/* Every field of every node, whatever the map uses it for (entities,
 * duplicates, noise runs, sessions, host organisations, bridged pairs). */
static void save_map(struct cf_ckpt_w *w, const struct map *m) {
    cf_ckpt_u64(w, m->n);
    for (size_t i = 0; i < m->n_buckets; i++)
        for (const struct node *n = m->buckets[i]; n; n = n->next) {
            cf_ckpt_u32(w, n->klen);
            cf_ckpt_u32(w, n->xlen);
            cf_ckpt_put(w, n->data, (size_t)n->klen + n->xlen);
            cf_ckpt_i64(w, n->last_ms);
            cf_ckpt_u64(w, n->u.serial);
            cf_ckpt_u64(w, n->serial2);
            cf_ckpt_i64(w, n->last2);
            cf_ckpt_u32(w, n->host1);
            cf_ckpt_u32(w, n->host2);
            cf_ckpt_u32(w, n->org1);
            cf_ckpt_u32(w, n->org2);
            cf_ckpt_u32(w, n->count);
        }
}

static void load_map(struct cf_ckpt_r *r, struct map *m) {
    size_t n = cf_ckpt_get_count(r, 4 + 4 + 8 + 8 + 8 + 8 + 5 * 4);
    for (size_t i = 0; i < n && !r->bad && !r->nomem; i++) {
        uint32_t klen = cf_ckpt_get_u32(r), xlen = cf_ckpt_get_u32(r);
        if (klen > UINT16_MAX || xlen > UINT16_MAX ||
            !cf_ckpt_need(r, (size_t)klen + xlen)) {
            r->bad = true;
            return;
        }
        const unsigned char *data = r->p;
        r->p += (size_t)klen + xlen;
        struct node *nd = map_get(m, data, klen);
        if (nd) { /* the same key twice: a damaged file */
            r->bad = true;
            return;
        }
        if (!(nd = map_put(m, data, klen, xlen))) {
            r->nomem = true;
            return;
        }
        memcpy(nd->data + klen, data + klen, xlen);
        nd->last_ms = cf_ckpt_get_i64(r);
        nd->u.serial = cf_ckpt_get_u64(r);
        nd->serial2 = cf_ckpt_get_u64(r);
        nd->last2 = cf_ckpt_get_i64(r);
        nd->host1 = cf_ckpt_get_u32(r);
        nd->host2 = cf_ckpt_get_u32(r);
        nd->org1 = cf_ckpt_get_u32(r);
        nd->org2 = cf_ckpt_get_u32(r);
        nd->count = cf_ckpt_get_u32(r);
    }
}

/* Cross-host links waiting for confirmation, in the order they were
 * proposed (the heap's tie-break). */
static void save_bridges(struct cf_ckpt_w *w, const struct cf_heap *h) {
    const struct cf_heap_entry **order = cf_ckpt_heap_order(w, h);
    if (h->n && !order) return;
    cf_ckpt_u64(w, h->n);
    for (size_t i = 0; i < h->n; i++) {
        const struct bridge *b = order[i]->item;
        cf_ckpt_i64(w, order[i]->time);
        cf_ckpt_u64(w, b->a);
        cf_ckpt_u64(w, b->b);
        cf_ckpt_id(w, b->alert_id);
        cf_ckpt_u32(w, (uint32_t)b->kind);
        cf_ckpt_u64(w, b->key);
        cf_ckpt_str(w, b->value);
    }
    cf_free(order);
}

static void load_bridges(struct cf_ckpt_r *r, struct cf_heap *h) {
    size_t n = cf_ckpt_get_count(r, 8 + 8 + 8 + 4 + 8 + 4);
    for (size_t i = 0; i < n && !r->bad && !r->nomem; i++) {
        int64_t due = cf_ckpt_get_i64(r);
        struct bridge *b = cf_calloc(1, sizeof *b);
        if (!b) {
            r->nomem = true;
            return;
        }
        b->a = cf_ckpt_get_u64(r);
        b->b = cf_ckpt_get_u64(r);
        cf_ckpt_get_id(r, b->alert_id);
        b->kind = (int)cf_ckpt_get_u32(r);
        b->key = cf_ckpt_get_u64(r);
        b->value = cf_ckpt_dup(r, cf_ckpt_get_str(r, NULL));
        if (r->bad || r->nomem || !b->value ||
            cf_heap_push(h, due, b) != CF_OK) {
            if (!r->bad && b->value) r->nomem = true;
            if (!b->value) r->bad = true;
            cf_free(b->value);
            cf_free(b);
            return;
        }
    }
}

void cf_fusion_save(const struct cf_fusion *fu, struct cf_ckpt_w *w) {
    const uint64_t *counters[] = {COUNTERS(fu)};
    int64_t clocks[] = {fu->max_seen,   fu->watermark,  fu->clock,
                        fu->bucket_end, fu->close_hint, fu->last_sweep};
    for (size_t i = 0; i < CF_ARRAY_LEN(clocks); i++) cf_ckpt_i64(w, clocks[i]);
    cf_ckpt_u64(w, fu->next_serial);
    cf_ckpt_u8(w, fu->any_dirty);
    cf_ckpt_u32(w, (uint32_t)CF_ARRAY_LEN(counters));
    for (size_t i = 0; i < CF_ARRAY_LEN(counters); i++)
        cf_ckpt_u64(w, *counters[i]);
    cf_ckpt_u64(w, fu->n_supp);
    for (size_t i = 0; i < fu->n_supp; i++) cf_ckpt_u64(w, fu->supp[i].hits);
    cf_ckpt_put_alert_queue(w, &fu->pending);
    cf_ckpt_u64(w, fu->n_open);
    for (size_t i = 0; i < fu->n_open; i++)
        cf_ckpt_put_incident(w, fu->open[i]);
    const struct map *maps[] = {CHECKPOINTED_MAPS(fu)};
    for (size_t i = 0; i < CF_ARRAY_LEN(maps); i++) save_map(w, maps[i]);
    save_bridges(w, &fu->bridges);
    cf_prevalence_save(fu->pv, w);
    cf_domains_save(fu->domains, w);
    cf_ckpt_u8(w, fu->co != NULL);
    if (fu->co) cf_correlator_save(fu->co, w);
}

/* Registers a restored incident as open, under its serial and aliases. */
static bool adopt_incident(struct cf_fusion *fu, struct cf_incident *inc) {
    if (!open_room(fu)) return false;
    for (size_t i = 0; i <= inc->n_aliases; i++) {
        uint64_t serial = i == 0 ? inc->serial : inc->aliases[i - 1];
        struct node *n = map_get(&fu->serials, &serial, sizeof serial);
        if (!n && !(n = map_put(&fu->serials, &serial, sizeof serial, 0)))
            return false;
        n->u.inc = inc;
    }
    inc->open_index = fu->n_open;
    fu->open[fu->n_open++] = inc;
    return true;
}

cf_err_t cf_fusion_load(struct cf_fusion *fu, struct cf_ckpt_r *r) {
    uint64_t *counters[] = {COUNTERS(fu)};
    int64_t *clocks[] = {&fu->max_seen,   &fu->watermark,  &fu->clock,
                         &fu->bucket_end, &fu->close_hint, &fu->last_sweep};
    struct cf_strpool *outer = r->pool;
    r->pool = &fu->pool;
    fu->org_node = NULL; /* host_orgs is replaced */
    for (size_t i = 0; i < CF_ARRAY_LEN(clocks); i++)
        *clocks[i] = cf_ckpt_get_i64(r);
    fu->next_serial = cf_ckpt_get_u64(r);
    fu->any_dirty = cf_ckpt_get_u8(r) != 0;
    if (cf_ckpt_get_u32(r) != CF_ARRAY_LEN(counters)) r->bad = true;
    for (size_t i = 0; i < CF_ARRAY_LEN(counters) && !r->bad; i++)
        *counters[i] = cf_ckpt_get_u64(r);
    size_t n_supp = cf_ckpt_get_count(r, 8);
    for (size_t i = 0; i < n_supp && !r->bad; i++) {
        uint64_t hits = cf_ckpt_get_u64(r);
        /* the same suppressions as then: their hit counts go on */
        if (n_supp == fu->n_supp) fu->supp[i].hits = hits;
    }
    cf_ckpt_get_alert_queue(r, &fu->pending);
    size_t n_open = cf_ckpt_get_count(r, 64);
    for (size_t i = 0; i < n_open && !r->bad && !r->nomem; i++) {
        struct cf_incident *inc = cf_ckpt_get_incident(r);
        if (inc && !adopt_incident(fu, inc)) {
            cf_incident_destroy(inc);
            r->nomem = true;
        }
    }
    struct map *maps[] = {CHECKPOINTED_MAPS(fu)};
    for (size_t i = 0; i < CF_ARRAY_LEN(maps); i++) load_map(r, maps[i]);
    load_bridges(r, &fu->bridges);
    cf_prevalence_load(fu->pv, r);
    cf_domains_load(fu->domains, r);
    bool had_co = cf_ckpt_get_u8(r) != 0;
    if (had_co && fu->co)
        cf_correlator_load(fu->co, r);
    else if (had_co)
        r->bad = true; /* fusion without rules cannot take it */
    r->pool = outer;
    if (r->nomem) return CF_ERR_NOMEM;
    return r->bad ? CF_ERR : CF_OK;
}
