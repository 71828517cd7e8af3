/*
 * clocks.c - per-host clock offsets (engine/clocks.h).
 *
 * Detection is a vote per host with a bounded score, so memory is a few
 * words per host and a passing disturbance does not flip the verdict:
 * each event carrying both readings gives its difference, stamp minus
 * UtcTime, rounded to a quarter hour.  A difference within TOLERANCE of
 * that quarter hour is a vote for it; any other sample (another quarter
 * hour, or none) costs the current candidate DISAGREE_COST points, so a
 * candidate only gains ground when it wins about nine samples in ten.
 * At DETECT_SCORE the candidate is the host's offset.  A host whose
 * offset changes (daylight saving time, a reset clock) gets the new one
 * once the new candidate has won as much ground; it is said again.
 *
 * Sysmon's UtcTime and the event's own record time differ by
 * milliseconds (the event is written after it is observed); some Sysmon
 * events (network connections, DNS) carry a UtcTime from minutes or
 * days before: those lose their vote, they do not spoil the verdict.
 */
#include "clocks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "entity_norm.h"
#include "hash.h"
#include "timeutil.h"

#define QUARTER_MS (15 * 60 * 1000LL)
/* A sample this close to a whole quarter hour votes for it. */
#define TOLERANCE_MS (60 * 1000LL)
#define SCORE_CAP 64
#define DETECT_SCORE 32
#define DISAGREE_COST 8
/* Hosts remembered; the events of more are counted (events_untracked)
 * and neither checked nor corrected. */
#define MAX_HOSTS 100000
/* Warning lines on stderr; past it, --stats alone lists them. */
#define MAX_WARNINGS 20

enum mode { MODE_REPORT, MODE_FIXED, MODE_LEARN };

struct host {
    char *key;  /* normalised host name (entity_norm.h); owned */
    char *name; /* first spelling seen, or as configured; owned */
    uint64_t hash;
    enum mode mode;
    int64_t fixed_ms; /* MODE_FIXED */
    /* the vote */
    int32_t cand; /* quarter hours */
    int32_t score;
    bool has_cand;
    bool found;      /* a steady offset was found... */
    int32_t found_q; /* ...this one, in quarter hours */
    uint64_t compared, agreeing, corrected, uncorrected, changes;
};

struct cf_clocks {
    const struct cf_entity_map *map;
    enum mode default_mode;
    bool may_correct; /* some host has MODE_FIXED or MODE_LEARN */
    struct host **slots;
    size_t n_slots, n_hosts;
    uint64_t events_untracked, events_compared, events_corrected;
    unsigned warnings;
    FILE *warn;
    /* The host of the last event, as written: consecutive events of one
     * host skip normalisation and lookup. */
    char last_raw[CF_ENTITY_NORM_MAX];
    size_t last_raw_len;
    struct host *last;
};

static struct host *find(const struct cf_clocks *c, const char *key,
                         uint64_t h) {
    if (!c->n_slots) return NULL;
    for (size_t i = h & (c->n_slots - 1);; i = (i + 1) & (c->n_slots - 1)) {
        struct host *e = c->slots[i];
        if (!e) return NULL;
        if (e->hash == h && strcmp(e->key, key) == 0) return e;
    }
}

static bool grow(struct cf_clocks *c) {
    size_t n = c->n_slots ? c->n_slots * 2 : 64;
    struct host **s = cf_calloc(n, sizeof *s);
    if (!s) return false;
    for (size_t i = 0; i < c->n_slots; i++) {
        struct host *e = c->slots[i];
        if (!e) continue;
        size_t j = e->hash & (n - 1);
        while (s[j]) j = (j + 1) & (n - 1);
        s[j] = e;
    }
    cf_free(c->slots);
    c->slots = s;
    c->n_slots = n;
    return true;
}

/* A new host under `key`; NULL when out of memory or past MAX_HOSTS. */
static struct host *add(struct cf_clocks *c, const char *key, uint64_t h,
                        const char *name, size_t name_len) {
    if (c->n_hosts >= MAX_HOSTS) return NULL;
    if ((c->n_hosts + 1) * 2 > c->n_slots && !grow(c)) return NULL;
    struct host *e = cf_calloc(1, sizeof *e);
    if (!e) return NULL;
    e->key = cf_strdup(key);
    e->name = cf_strndup(name, name_len);
    if (!e->key || !e->name) {
        cf_free(e->key);
        cf_free(e->name);
        cf_free(e);
        return NULL;
    }
    e->hash = h;
    e->mode = c->default_mode;
    size_t j = h & (c->n_slots - 1);
    while (c->slots[j]) j = (j + 1) & (c->n_slots - 1);
    c->slots[j] = e;
    c->n_hosts++;
    return e;
}

struct cf_clocks *cf_clocks_new(const struct cf_time_settings *ts,
                                const struct cf_entity_map *map, char *errstr,
                                size_t errstr_size) {
    struct cf_clocks *c = cf_calloc(1, sizeof *c);
    if (!c) goto nomem;
    c->map = map;
    c->warn = stderr;
    const struct cf_clock_offsets *o = &ts->clock_offsets;
    c->default_mode = o->learn_all ? MODE_LEARN : MODE_REPORT;
    c->may_correct = o->learn_all;
    for (size_t i = 0; i < o->n; i++) {
        char key[CF_ENTITY_NORM_MAX];
        if (!cf_entity_normalize(CF_ENTITY_HOST, o->v[i].host, key,
                                 sizeof key)) {
            cf_seterr(errstr, errstr_size, CF_ERR,
                      "config: time.clock_offsets: '%s' is no host name "
                      "(it never names one machine)",
                      o->v[i].host);
            goto fail;
        }
        uint64_t h = cf_hash_str(key);
        if (find(c, key, h)) {
            cf_seterr(errstr, errstr_size, CF_ERR,
                      "config: time.clock_offsets: '%s' names a host already "
                      "listed (host names are compared without their domain "
                      "and case)",
                      o->v[i].host);
            goto fail;
        }
        struct host *e = add(c, key, h, o->v[i].host, strlen(o->v[i].host));
        if (!e) goto nomem;
        e->mode = o->v[i].learn ? MODE_LEARN : MODE_FIXED;
        e->fixed_ms = o->v[i].ms;
        c->may_correct = true;
    }
    return c;
nomem:
    cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
fail:
    cf_clocks_destroy(c);
    return NULL;
}

void cf_clocks_destroy(struct cf_clocks *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_slots; i++) {
        if (!c->slots[i]) continue;
        cf_free(c->slots[i]->key);
        cf_free(c->slots[i]->name);
        cf_free(c->slots[i]);
    }
    cf_free(c->slots);
    cf_free(c);
}

void cf_clocks_set_warnings(struct cf_clocks *c, FILE *f) {
    c->warn = f;
}

/* The host named by field f (NULL: none), created on first sight; NULL
 * when it cannot be tracked. */
static struct host *host_of(struct cf_clocks *c,
                            const struct cf_event_field *f) {
    if (!f) return NULL;
    if (c->last && f->value_len == c->last_raw_len &&
        cf_bytes_equal(f->value, c->last_raw, f->value_len))
        return c->last;
    char key[CF_ENTITY_NORM_MAX];
    if (!cf_entity_normalize(CF_ENTITY_HOST, f->value, key, sizeof key))
        return NULL;
    uint64_t h = cf_hash_str(key);
    struct host *e = find(c, key, h);
    if (!e && !(e = add(c, key, h, f->value, f->value_len))) {
        c->events_untracked++;
        return NULL;
    }
    if (f->value_len < sizeof c->last_raw) {
        memcpy(c->last_raw, f->value, f->value_len);
        c->last_raw_len = f->value_len;
        c->last = e;
    }
    return e;
}

static void offset_text(int64_t quarters, char buf[32]) {
    cf_duration_format(quarters * QUARTER_MS, buf);
}

/* Said once per host and offset found, up to MAX_WARNINGS lines. */
static void say(struct cf_clocks *c, const struct host *e, bool changed,
                int32_t old_q) {
    char now[32], before[32], fixed[32];
    if (!c->warn || c->warnings > MAX_WARNINGS) return;
    if (c->warnings++ == MAX_WARNINGS) {
        fprintf(c->warn, "chainfuse: warning: more hosts with clocks off; "
                         "--stats lists them all (clocks.hosts)\n");
        return;
    }
    offset_text(e->found_q, now);
    offset_text(old_q, before);
    cf_duration_format(e->fixed_ms, fixed);
    if (changed)
        fprintf(c->warn,
                "chainfuse: warning: host %s: its event-log clock is now %s "
                "from UTC (was %s): a daylight-saving change or a reset "
                "clock%s\n",
                e->name, e->found_q ? now : "0", old_q ? before : "0",
                e->mode == MODE_LEARN ? "; time.clock_offsets: auto follows it"
                : e->mode == MODE_FIXED ? "; the configured offset is kept"
                                        : "");
    else if (e->mode == MODE_FIXED)
        fprintf(c->warn,
                "chainfuse: warning: host %s: its TimeCreated/@timestamp are "
                "%s from Sysmon's UtcTime in the same events, but "
                "time.clock_offsets gives %s; the configured offset is "
                "applied\n",
                e->name, now, fixed);
    else if (e->mode == MODE_LEARN)
        fprintf(c->warn,
                "chainfuse: warning: host %s: its TimeCreated/@timestamp are "
                "%s from Sysmon's UtcTime in the same events (local time "
                "labelled UTC, or a clock set wrong); correcting its later "
                "events timed by those stamps (time.clock_offsets: auto; "
                "--stats counts those left uncorrected)\n",
                e->name, now);
    else
        fprintf(c->warn,
                "chainfuse: warning: host %s: its TimeCreated/@timestamp are "
                "%s from Sysmon's UtcTime in the same events (local time "
                "labelled UTC, or a clock set wrong); events timed by those "
                "stamps are left as they are: `time: {clock_offsets: {%s: "
                "%s}}` in the config corrects them\n",
                e->name, now, e->name, now);
}

static void vote(struct cf_clocks *c, struct host *e, int64_t diff) {
    int64_t q = (diff + (diff < 0 ? -QUARTER_MS : QUARTER_MS) / 2) / QUARTER_MS;
    int64_t r = diff - q * QUARTER_MS;
    bool aligned = llabs(r) <= TOLERANCE_MS && q >= INT32_MIN && q <= INT32_MAX;
    c->events_compared++;
    e->compared++;
    if (aligned && e->has_cand && q == e->cand) {
        if (e->score < SCORE_CAP) e->score++;
    } else if ((e->score -= DISAGREE_COST) <= 0) {
        e->has_cand = aligned;
        e->cand = aligned ? (int32_t)q : 0;
        e->score = aligned ? 1 : 0;
    }
    if (e->has_cand && e->score >= DETECT_SCORE &&
        (!e->found || e->cand != e->found_q)) {
        bool changed = e->found;
        int32_t old = e->found_q;
        e->found = true;
        e->found_q = e->cand;
        if (changed) e->changes++;
        int64_t want = (int64_t)e->found_q * QUARTER_MS;
        bool quiet =
            !changed &&
            (e->found_q == 0 || (e->mode == MODE_FIXED && e->fixed_ms == want));
        if (!quiet) say(c, e, changed, old);
    }
    if (e->found && aligned && q == e->found_q) e->agreeing++;
}

/* Whether ev's host matters: it can vote, or be corrected. */
static bool wants_host(const struct cf_clocks *c, const struct cf_event *ev) {
    bool both =
        ev->utc_ms != CF_TIME_UNKNOWN && ev->stamp_ms != CF_TIME_UNKNOWN;
    return both || (ev->time_role == CF_TIME_ROLE_STAMP && c->may_correct);
}

void cf_clocks_event(struct cf_clocks *c, struct cf_event *ev) {
    if (wants_host(c, ev))
        cf_clocks_event_at(c, ev, cf_entity_field(c->map, ev, CF_ENTITY_HOST));
}

void cf_clocks_event_at(struct cf_clocks *c, struct cf_event *ev,
                        const struct cf_event_field *host) {
    bool both =
        ev->utc_ms != CF_TIME_UNKNOWN && ev->stamp_ms != CF_TIME_UNKNOWN;
    if (!wants_host(c, ev)) return;
    struct host *e = host_of(c, host);
    if (!e) return;
    if (both) vote(c, e, ev->stamp_ms - ev->utc_ms);
    if (ev->time_role != CF_TIME_ROLE_STAMP) return;
    int64_t off;
    if (e->mode == MODE_FIXED) {
        off = e->fixed_ms;
    } else if (e->mode == MODE_LEARN) {
        if (!e->found) {
            e->uncorrected++;
            return;
        }
        off = (int64_t)e->found_q * QUARTER_MS;
    } else {
        return;
    }
    if (!off) return;
    ev->time_ms -= off;
    ev->clock_offset_ms = off;
    e->corrected++;
    c->events_corrected++;
}

static int cmp_name(const void *a, const void *b) {
    const struct host *x = *(const struct host *const *)a;
    const struct host *y = *(const struct host *const *)b;
    return strcmp(x->name, y->name);
}

/* One host of clocks.hosts. */
static json_t *host_json(const struct host *e) {
    char found[32], fixed[32];
    json_t *h = json_object();
    if (!h) return NULL;
    offset_text(e->found_q, found);
    cf_duration_format(e->fixed_ms, fixed);
    json_object_set_new(h, "host", json_string(e->name));
    json_object_set_new(h, "offset",
                        !e->found ? json_null()
                                  : json_string(e->found_q ? found : "0"));
    json_object_set_new(h, "correction",
                        json_string(e->mode == MODE_LEARN ? "auto"
                                    : e->mode == MODE_REPORT
                                        ? "none"
                                        : (e->fixed_ms ? fixed : "0")));
#define NUM(name, v) json_object_set_new(h, name, json_integer((json_int_t)(v)))
    NUM("events_compared", e->compared);
    NUM("events_agreeing", e->agreeing);
    NUM("events_corrected", e->corrected);
    NUM("events_uncorrected", e->uncorrected);
    NUM("changes", e->changes);
#undef NUM
    return h;
}

json_t *cf_clocks_stats(const struct cf_clocks *c) {
    json_t *s = json_object(), *hosts = json_array();
    const struct host **list = cf_malloc((c->n_hosts + 1) * sizeof *list);
    size_t n = 0, off_hosts = 0;
    if (!s || !hosts || !list) goto nomem;
    /* Listed: hosts found off, and those configured. */
    for (size_t i = 0; i < c->n_slots; i++) {
        const struct host *e = c->slots[i];
        if (!e) continue;
        bool off = e->found && e->found_q;
        off_hosts += off;
        if (off || e->mode == MODE_FIXED) list[n++] = e;
    }
    qsort(list, n, sizeof *list, cmp_name); /* stable output */
    for (size_t i = 0; i < n; i++) {
        json_t *h = host_json(list[i]);
        if (!h || json_array_append_new(hosts, h)) goto nomem;
    }
#define NUM(name, v) json_object_set_new(s, name, json_integer((json_int_t)(v)))
    NUM("events_compared", c->events_compared);
    NUM("events_corrected", c->events_corrected);
    NUM("hosts_tracked", c->n_hosts);
    NUM("events_untracked", c->events_untracked);
    NUM("hosts_off", off_hosts);
#undef NUM
    json_object_set_new(s, "hosts", hosts);
    cf_free(list);
    return s;
nomem:
    cf_free(list);
    json_decref(s);
    json_decref(hosts);
    return NULL;
}

/* ---- checkpoints ---------------------------------------------------- */

void cf_clocks_save(const struct cf_clocks *c, struct cf_ckpt_w *w) {
    cf_ckpt_u64(w, c->n_hosts);
    for (size_t i = 0; i < c->n_slots; i++) {
        const struct host *e = c->slots[i];
        if (!e) continue;
        cf_ckpt_str(w, e->key);
        cf_ckpt_str(w, e->name);
        cf_ckpt_u32(w, (uint32_t)e->cand);
        cf_ckpt_u32(w, (uint32_t)e->score);
        cf_ckpt_u8(w, (uint8_t)(e->has_cand | e->found << 1));
        cf_ckpt_u32(w, (uint32_t)e->found_q);
        const uint64_t n[] = {e->compared, e->agreeing, e->corrected,
                              e->uncorrected, e->changes};
        for (size_t k = 0; k < CF_ARRAY_LEN(n); k++) cf_ckpt_u64(w, n[k]);
    }
    cf_ckpt_u64(w, c->events_untracked);
    cf_ckpt_u64(w, c->events_compared);
    cf_ckpt_u64(w, c->events_corrected);
    cf_ckpt_u32(w, c->warnings);
}

void cf_clocks_load(struct cf_clocks *c, struct cf_ckpt_r *r) {
    size_t n = cf_ckpt_get_count(r, 4 + 4 + 4 + 4 + 1 + 4 + 5 * 8);
    for (size_t i = 0; i < n && !r->bad && !r->nomem; i++) {
        size_t name_len;
        const char *key = cf_ckpt_get_str(r, NULL);
        const char *name = cf_ckpt_get_str(r, &name_len);
        if (!key || !name) {
            r->bad = true;
            return;
        }
        uint64_t h = cf_hash_str(key);
        /* a configured host keeps this run's mode and offset */
        struct host *e = find(c, key, h);
        if (!e && !(e = add(c, key, h, name, name_len))) {
            r->nomem = true;
            return;
        }
        e->cand = (int32_t)cf_ckpt_get_u32(r);
        e->score = (int32_t)cf_ckpt_get_u32(r);
        uint8_t flags = cf_ckpt_get_u8(r);
        e->has_cand = flags & 1;
        e->found = (flags & 2) != 0;
        e->found_q = (int32_t)cf_ckpt_get_u32(r);
        uint64_t *cnt[] = {&e->compared, &e->agreeing, &e->corrected,
                           &e->uncorrected, &e->changes};
        for (size_t k = 0; k < CF_ARRAY_LEN(cnt); k++)
            *cnt[k] = cf_ckpt_get_u64(r);
    }
    c->events_untracked = cf_ckpt_get_u64(r);
    c->events_compared = cf_ckpt_get_u64(r);
    c->events_corrected = cf_ckpt_get_u64(r);
    c->warnings = cf_ckpt_get_u32(r);
}
