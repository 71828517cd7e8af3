/*
 * correlate.c - evaluates Sigma correlation rules on event time.
 *
 * Called by fusion (engine/fusion.c): cf_correlator_push() for every
 * alert, cf_correlator_advance() when the watermark moves.  Alerts wait in
 * a small heap until the watermark passes them and are then evaluated in
 * (event time, alert id) order, so any arrival order within the allowed
 * lateness gives the same correlation alerts.  Alerts older than the
 * watermark are evaluated at once (their window may still be open) and
 * counted as late.
 *
 * Group-by and field values come from the alert's event, decoded with
 * the engine's reusable decoder (core/event.h: nested objects appear as
 * dotted names, Windows XML-as-JSON as flat names), or for a correlation
 * alert (chaining) from its "group" object.
 *
 * Window state is one fixed 96-byte slot per (correlation, group-by
 * values) in a slab, found through an open-addressing table of 32-bit slot
 * indices; the first contributing alert lives inside the slot, so a
 * million single-alert windows cost about 100 MB with nothing else
 * allocated.  Each correlation keeps its windows in a list ordered by last
 * touch, which with in-order evaluation is event-time order: expiry and
 * eviction take from the head, so per-alert cost does not depend on how
 * many windows are open.
 *
 * Semantics chosen where the specification leaves room (documented in
 * the report and tests):
 *  - windows slide: an alert at t sees the alerts of its group in
 *    [t - timespan, t]; when the condition holds the correlation fires
 *    (time and position of that alert) and the window is cleared, so one
 *    burst raises one alert;
 *  - counts with an upper bound (lt, lte, eq, neq) cannot be decided while
 *    the window grows; they are decided when the span that starts at the
 *    window's first alert has passed (tumbling from the first alert);
 *  - value_percentile: the value is the share (percent) of alerts in the
 *    window whose field has the same value as the new alert's (a rarity
 *    measure, as in the specification's "rare process" example);
 *  - alerts without a group-by field are not counted (as `by` in SIEMs);
 *  - merged entities are the first value per kind among the alerts that
 *    joined the window since it was created or last fired.
 *
 * Threading: one instance per pipeline thread; not thread-safe.
 */
#include "correlate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ckpt.h"
#include "hash.h"
#include "heap.h"
#include "sigma_correlation.h"
#include "timeutil.h"
#include "yaml_json.h"

#define NIL UINT32_MAX
#define KEY_INLINE 16
#define MAX_ALERT_IDS 100

/* One contributing alert: 40 bytes. */
struct cev {
    int64_t t;
    uint8_t id[16];
    union {
        double d;   /* value_sum / value_avg */
        uint64_t h; /* value_count / value_percentile: hash of the value */
    } val;
    uint32_t ref;    /* index into corr->refs */
    uint32_t offset; /* input offset (low 32 bits), for spans decided late */
};

/* One open window: 96 bytes. */
struct win {
    uint64_t hash;
    uint32_t prev, next; /* per-correlation touch list; free list: next */
    uint32_t corr;
    uint32_t n_ev; /* 0 marks a free slot */
    uint32_t key_len;
    uint32_t cap_ev; /* capacity of ev.many when n_ev > 1 */
    union {
        char in[KEY_INLINE];
        char *ptr;
    } key;
    char *ents; /* packed (kind byte, value, NUL)...; NULL when none */
    union {
        struct cev one;
        struct cev *many;
    } ev;
};

_Static_assert(sizeof(struct cev) == 40, "contributing alert stays 40 bytes");
_Static_assert(sizeof(struct win) == 96, "window slot stays 96 bytes");

struct lookup {
    const char *key;
    uint32_t corr, ref;
};

struct cf_correlator {
    const struct cf_rulebook *rb;
    cf_correlation_emit_fn emit;
    void *opaque;
    uint32_t max_open;

    struct lookup *lk;
    size_t n_lk;

    struct win *wins;
    uint32_t n_slots, cap_slots, free_head, n_open;
    uint32_t *table; /* slot index + 1; 0 = empty */
    size_t table_cap;
    uint32_t *head, *tail; /* per correlation */

    struct cf_heap pending; /* owned copies of alerts (struct cf_alert *)
                               waiting for the watermark */
    int64_t watermark;

    /* scratch reused across alerts */
    struct cf_buf key; /* group-by values of the alert being applied */
    uint64_t *hbuf;
    size_t hbuf_cap;
    char numbuf[64];
    struct cf_decoder *dec; /* reused event decoder (simdjson) */
    /* the limits the pipeline accepted events under (else defaults) */
    struct cf_decode_limits limits;
    bool has_limits;
    const char *last_source; /* borrowed from the input, which outlives us */
    struct cf_event ev;
    /* correlation alerts raised but not yet fed to correlations over
     * correlations: chaining runs after the firing window is released */
    struct cf_alert *chainq;
    size_t n_chainq, cap_chainq;

    size_t extra_bytes; /* heap owned by windows beyond their slot */
    uint64_t alerts_seen, alerts_used, late, late_outside, no_group, no_value,
        no_time, fired, evicted, expired, repushed;
    uint64_t oom; /* skipped for lack of memory: dropped, never silent */
};

/* ---- small helpers ----------------------------------------------------- */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
}

static void id_to_bin(const char *hex, uint8_t out[16]) {
    for (int i = 0; i < 16; i++)
        out[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
}

static void id_to_hex(const uint8_t in[16], char out[33]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[32] = '\0';
}

static int cev_cmp(const struct cev *a, const struct cev *b) {
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    return memcmp(a->id, b->id, 16);
}

static struct cev *win_events(struct win *w) {
    return w->n_ev > 1 ? w->ev.many : &w->ev.one;
}

static const char *win_key(const struct win *w) {
    return w->key_len <= KEY_INLINE ? w->key.in : w->key.ptr;
}

static int64_t win_last(struct win *w) {
    return win_events(w)[w->n_ev - 1].t;
}

static bool is_count_type(enum cf_correlation_type t) {
    return t == CF_CORR_EVENT_COUNT || t == CF_CORR_VALUE_COUNT ||
           t == CF_CORR_VALUE_SUM || t == CF_CORR_TEMPORAL ||
           t == CF_CORR_TEMPORAL_ORDERED;
}

/* Counts that only grow are decided as alerts arrive; an upper bound
 * (or eq/neq) can only be decided once the span has passed. */
static bool decided_at_close(const struct cf_sigma_correlation *c) {
    if (!is_count_type(c->type) || c->expr) return false;
    for (size_t i = 0; i < c->n_criteria; i++)
        if (c->criteria[i].op != CF_CMP_GT && c->criteria[i].op != CF_CMP_GTE)
            return true;
    return false;
}

/* ---- lookup: rule key -> (correlation, ref) ----------------------------- */

static int lk_cmp(const void *a, const void *b) {
    return strcmp(((const struct lookup *)a)->key,
                  ((const struct lookup *)b)->key);
}

static size_t lk_find(const struct cf_correlator *co, const char *key) {
    size_t lo = 0, hi = co->n_lk;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(co->lk[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool lk_has(const struct cf_correlator *co, const char *key) {
    size_t i = key ? lk_find(co, key) : co->n_lk;
    return i < co->n_lk && strcmp(co->lk[i].key, key) == 0;
}

bool cf_correlator_refers_to(const struct cf_correlator *co,
                             const struct cf_alert *alert) {
    return co && (lk_has(co, alert->rule_id) || lk_has(co, alert->rule_name));
}

static bool own_correlation(const struct cf_correlator *co, const char *key) {
    if (!key) return false;
    for (size_t i = 0; i < co->rb->n_correlations; i++)
        if (strcmp(co->rb->correlations[i]->key, key) == 0) return true;
    return false;
}

/* ---- window table ------------------------------------------------------- */

static bool key_eq(const struct win *w, uint64_t h, uint32_t corr,
                   const char *key, size_t len) {
    return w->hash == h && w->corr == corr && w->key_len == len &&
           memcmp(win_key(w), key, len) == 0;
}

static int table_grow(struct cf_correlator *co) {
    size_t cap = co->table_cap ? co->table_cap * 2 : 1024;
    uint32_t *t = cf_calloc(cap, sizeof(*t));
    if (!t) return CF_ERR_NOMEM;
    for (size_t i = 0; i < co->table_cap; i++) {
        if (!co->table[i]) continue;
        size_t j = co->wins[co->table[i] - 1].hash & (cap - 1);
        while (t[j]) j = (j + 1) & (cap - 1);
        t[j] = co->table[i];
    }
    cf_free(co->table);
    co->table = t;
    co->table_cap = cap;
    return CF_OK;
}

static size_t table_find(const struct cf_correlator *co, uint64_t h,
                         uint32_t corr, const char *key, size_t len,
                         bool *found) {
    size_t j = h & (co->table_cap - 1);
    while (co->table[j]) {
        if (key_eq(&co->wins[co->table[j] - 1], h, corr, key, len)) {
            *found = true;
            return j;
        }
        j = (j + 1) & (co->table_cap - 1);
    }
    *found = false;
    return j;
}

/* Backward-shift deletion keeps linear probing correct without
 * tombstones. */
static void table_remove(struct cf_correlator *co, uint32_t slot) {
    size_t mask = co->table_cap - 1;
    size_t j = co->wins[slot].hash & mask;
    while (co->table[j] != slot + 1) j = (j + 1) & mask;
    size_t i = j;
    for (;;) {
        co->table[i] = 0;
        size_t k = i;
        for (;;) {
            k = (k + 1) & mask;
            if (!co->table[k]) return;
            size_t home = co->wins[co->table[k] - 1].hash & mask;
            /* movable if home is cyclically outside (i, k] */
            if (i <= k ? (home <= i || home > k) : (home <= i && home > k))
                break;
        }
        co->table[i] = co->table[k];
        i = k;
    }
}

static void list_unlink(struct cf_correlator *co, uint32_t s) {
    struct win *w = &co->wins[s];
    if (w->prev != NIL)
        co->wins[w->prev].next = w->next;
    else
        co->head[w->corr] = w->next;
    if (w->next != NIL)
        co->wins[w->next].prev = w->prev;
    else
        co->tail[w->corr] = w->prev;
    w->prev = w->next = NIL;
}

static void list_append(struct cf_correlator *co, uint32_t s) {
    struct win *w = &co->wins[s];
    w->prev = co->tail[w->corr];
    w->next = NIL;
    if (w->prev != NIL)
        co->wins[w->prev].next = s;
    else
        co->head[w->corr] = s;
    co->tail[w->corr] = s;
}

static void win_free_slot(struct cf_correlator *co, uint32_t s) {
    struct win *w = &co->wins[s];
    table_remove(co, s);
    list_unlink(co, s);
    if (w->key_len > KEY_INLINE) {
        cf_free(w->key.ptr);
        co->extra_bytes -= w->key_len;
    }
    if (w->n_ev > 1) {
        cf_free(w->ev.many);
        co->extra_bytes -= w->cap_ev * sizeof(struct cev);
    }
    if (w->ents) {
        size_t n = 0;
        while (w->ents[n]) n += 1 + strlen(w->ents + n + 1) + 1;
        co->extra_bytes -= n + 1;
        cf_free(w->ents);
    }
    memset(w, 0, sizeof(*w));
    w->prev = NIL;
    w->next = co->free_head;
    co->free_head = s;
    co->n_open--;
}

static void evict_oldest(struct cf_correlator *co) {
    uint32_t best = NIL;
    int64_t best_t = INT64_MAX;
    for (size_t c = 0; c < co->rb->n_correlations; c++) {
        uint32_t s = co->head[c];
        if (s != NIL && win_last(&co->wins[s]) < best_t) {
            best = s;
            best_t = win_last(&co->wins[s]);
        }
    }
    if (best != NIL) {
        win_free_slot(co, best);
        co->evicted++;
    }
}

/* Finds or creates the window; NIL if memory ran out. */
static uint32_t win_get(struct cf_correlator *co, uint32_t corr,
                        const char *key, size_t len, bool *created) {
    uint64_t h = cf_hash_continue(cf_hash_bytes(&corr, sizeof(corr)), key, len);
    bool found;
    *created = false;
    if (!co->table_cap && table_grow(co)) return NIL;
    size_t j = table_find(co, h, corr, key, len, &found);
    if (found) return co->table[j] - 1;
    if (co->n_open >= co->max_open) {
        evict_oldest(co);
        j = table_find(co, h, corr, key, len, &found);
    }
    if ((co->n_open + 1) * 2 > co->table_cap) {
        if (table_grow(co)) return NIL;
        j = table_find(co, h, corr, key, len, &found);
    }
    uint32_t s;
    if (co->free_head != NIL) {
        s = co->free_head;
        co->free_head = co->wins[s].next;
    } else {
        if (co->n_slots == co->cap_slots) {
            uint32_t cap = co->cap_slots ? co->cap_slots * 2 : 1024;
            struct win *nw = cf_realloc(co->wins, (size_t)cap * sizeof(*nw));
            if (!nw) return NIL;
            co->wins = nw;
            co->cap_slots = cap;
        }
        s = co->n_slots++;
    }
    struct win *w = &co->wins[s];
    memset(w, 0, sizeof(*w));
    if (len > KEY_INLINE) {
        if (!(w->key.ptr = cf_malloc(len))) {
            w->next = co->free_head;
            co->free_head = s;
            return NIL;
        }
        memcpy(w->key.ptr, key, len);
        co->extra_bytes += len;
    } else {
        memcpy(w->key.in, key, len);
    }
    w->hash = h;
    w->corr = corr;
    w->key_len = (uint32_t)len;
    w->prev = w->next = NIL;
    co->table[j] = s + 1;
    co->n_open++;
    *created = true;
    return s;
}

/* Inserts in (time, id) order; mostly an append. */
static int win_insert(struct cf_correlator *co, struct win *w,
                      const struct cev *e) {
    if (w->n_ev == 0) {
        w->ev.one = *e;
        w->n_ev = 1;
        return CF_OK;
    }
    if (w->n_ev == 1) {
        struct cev *m = cf_malloc(4 * sizeof(*m));
        if (!m) return CF_ERR_NOMEM;
        m[0] = w->ev.one;
        w->ev.many = m;
        w->cap_ev = 4;
        co->extra_bytes += 4 * sizeof(*m);
    } else if (w->n_ev == w->cap_ev) {
        struct cev *m = cf_realloc(w->ev.many, 2 * w->cap_ev * sizeof(*m));
        if (!m) return CF_ERR_NOMEM;
        co->extra_bytes += w->cap_ev * sizeof(*m);
        w->ev.many = m;
        w->cap_ev *= 2;
    }
    struct cev *ev = w->ev.many;
    uint32_t i = w->n_ev;
    while (i > 0 && cev_cmp(&ev[i - 1], e) > 0) {
        ev[i] = ev[i - 1];
        i--;
    }
    ev[i] = *e;
    w->n_ev++;
    return CF_OK;
}

/* Drops the first `n` events (n < w->n_ev). */
static void win_drop_front(struct cf_correlator *co, struct win *w,
                           uint32_t n) {
    if (n == 0) return;
    struct cev *ev = w->ev.many;
    uint32_t left = w->n_ev - n;
    if (left == 1) {
        struct cev keep = ev[n];
        cf_free(ev);
        co->extra_bytes -= w->cap_ev * sizeof(*ev);
        w->cap_ev = 0;
        w->ev.one = keep;
    } else {
        memmove(ev, ev + n, left * sizeof(*ev));
    }
    w->n_ev = left;
}

static void win_add_entities(struct cf_correlator *co, struct win *w,
                             const struct cf_entities *ents) {
    bool have[CF_ENTITY_COUNT] = {false};
    size_t used = 0, add = 0;
    if (w->ents) {
        while (w->ents[used]) {
            have[(unsigned char)w->ents[used] - 1] = true;
            used += 1 + strlen(w->ents + used + 1) + 1;
        }
    }
    for (int k = 0; k < CF_ENTITY_COUNT; k++)
        if (!have[k] && ents->value[k]) add += 2 + strlen(ents->value[k]);
    if (!add) return;
    char *n = cf_realloc(w->ents, used + add + 1);
    if (!n) { /* entities are best effort under memory pressure */
        co->oom++;
        return;
    }
    w->ents = n;
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        if (have[k] || !ents->value[k]) continue;
        size_t l = strlen(ents->value[k]);
        n[used] = (char)(k + 1);
        memcpy(n + used + 1, ents->value[k], l + 1);
        used += l + 2;
    }
    n[used] = '\0';
    co->extra_bytes += add + (used == add ? 1 : 0);
}

/* ---- field values -------------------------------------------------------- */

/* Text of field `name` in the alert's decoded event (co->ev, when
 * has_ev) or, for a correlation alert, its group; NULL when absent or
 * null.  Points into co->ev, the JSON or co->numbuf. */
static const char *field_text(struct cf_correlator *co, bool has_ev,
                              const json_t *group, const char *name,
                              size_t *len) {
    if (has_ev) {
        /* a plain scan: alert events are few and small, and it does not
         * depend on how the decoder hashes names */
        size_t nl = strlen(name);
        for (uint32_t i = 0; i < co->ev.n_fields; i++) {
            const struct cf_event_field *f = &co->ev.fields[i];
            if (f->name_len != nl || memcmp(f->name, name, nl) != 0) continue;
            if (f->type == CF_VALUE_NULL) return NULL;
            *len = f->value_len;
            return f->value;
        }
    }
    const json_t *v = group ? json_object_get(group, name) : NULL;
    /* NULL for null, objects and arrays: they cannot group */
    return v ? cf_scalar_text(v, co->numbuf, sizeof co->numbuf, len) : NULL;
}

/* ---- evaluation ---------------------------------------------------------- */

static void process_alert(struct cf_correlator *co, const struct cf_alert *a);

static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Metric of the first `n` events of `w` and whether the condition holds.
 * `last` is the event just added (value_percentile compares with it). */
static bool evaluate(struct cf_correlator *co,
                     const struct cf_sigma_correlation *c, struct cev *ev,
                     uint32_t n, const struct cev *last, double *metric) {
    switch (c->type) {
    case CF_CORR_EVENT_COUNT: *metric = n; break;
    case CF_CORR_VALUE_COUNT: {
        if (co->hbuf_cap < n) {
            uint64_t *hb = cf_realloc(co->hbuf, n * 2 * sizeof(*hb));
            if (!hb) {
                co->oom++;
                return false;
            }
            co->hbuf = hb;
            co->hbuf_cap = n * 2;
        }
        /* sort a copy: O(n log n) even for wide value_count windows */
        for (uint32_t i = 0; i < n; i++) co->hbuf[i] = ev[i].val.h;
        if (n) qsort(co->hbuf, n, sizeof(*co->hbuf), u64_cmp);
        size_t distinct = n ? 1 : 0;
        for (uint32_t i = 1; i < n; i++)
            distinct += co->hbuf[i] != co->hbuf[i - 1];
        *metric = (double)distinct;
        break;
    }
    case CF_CORR_VALUE_SUM:
    case CF_CORR_VALUE_AVG: {
        double s = 0;
        for (uint32_t i = 0; i < n; i++) s += ev[i].val.d;
        *metric = c->type == CF_CORR_VALUE_SUM ? s : s / n;
        break;
    }
    case CF_CORR_VALUE_PERCENTILE: {
        uint32_t same = 0;
        for (uint32_t i = 0; i < n; i++) same += ev[i].val.h == last->val.h;
        *metric = 100.0 * same / n;
        break;
    }
    case CF_CORR_TEMPORAL:
    case CF_CORR_TEMPORAL_ORDERED: {
        unsigned char present[256] = {0};
        size_t nr = c->n_refs < 256 ? c->n_refs : 256;
        if (c->type == CF_CORR_TEMPORAL) {
            for (uint32_t i = 0; i < n; i++)
                if (ev[i].ref < nr) present[ev[i].ref] = 1;
        } else {
            /* present = the rules that occur in the listed order */
            uint32_t pos = 0;
            for (size_t r = 0; r < nr; r++) {
                for (uint32_t i = pos; i < n; i++) {
                    if (ev[i].ref == r) {
                        present[r] = 1;
                        pos = i + 1;
                        break;
                    }
                }
            }
        }
        size_t cnt = 0;
        for (size_t r = 0; r < nr; r++) cnt += present[r];
        *metric = (double)cnt;
        if (c->expr) return cf_corr_expr_eval(c->expr, present);
        if (c->n_criteria) break;
        if (c->type == CF_CORR_TEMPORAL) return cnt == c->n_refs;
        /* ordered: all rules, each after the previous one */
        return cnt == c->n_refs;
    }
    }
    return cf_correlation_criteria_hold(c, *metric);
}

/* Raises the correlation alert for the first `n` events of slot `s`,
 * completed by event `done` at position `pos`. */
static void fire(struct cf_correlator *co, uint32_t s, uint32_t n,
                 const struct cev *done, const struct cf_position *pos,
                 double metric) {
    struct win *w = &co->wins[s];
    const struct cf_sigma_correlation *c = co->rb->correlations[w->corr];
    struct cev *ev = win_events(w);
    struct cf_alert out;
    char buf[64], hex[33];
    memset(&out, 0, sizeof(out));
    /* Every part must be there: an alert short of a member, its id or an
     * entity is not raised at all (counted), rather than raised wrong.
     * json_object_set_new and json_array_append_new take the value's
     * reference even when they fail, so there is nothing else to free. */
    bool ok = true;

    json_t *group = json_object();
    const char *k = win_key(w);
    for (size_t g = 0; g < c->n_group_by && group; g++) {
        const char *sep =
            memchr(k, '\x1f', w->key_len - (size_t)(k - win_key(w)));
        size_t l = sep ? (size_t)(sep - k) : 0;
        ok &=
            json_object_set_new(group, c->group_by[g], json_stringn(k, l)) == 0;
        k += l + 1;
    }
    json_t *ids = json_array();
    for (uint32_t i = 0; i < n && i < MAX_ALERT_IDS && ids; i++) {
        id_to_hex(ev[i].id, hex);
        ok &= json_array_append_new(ids, json_string(hex)) == 0;
    }
    json_t *extra = json_object();
    ok &= group && ids && extra;
    ok &= json_object_set_new(extra, "type",
                              json_string(cf_correlation_type_name(c->type))) ==
          0;
    ok &= json_object_set_new(extra, "group", group) == 0;
    if (c->type == CF_CORR_VALUE_SUM || c->type == CF_CORR_VALUE_AVG ||
        c->type == CF_CORR_VALUE_PERCENTILE) {
        ok &= json_object_set_new(extra, "value", json_real(metric)) == 0;
        ok &=
            json_object_set_new(extra, "field", json_string(c->fields[0])) == 0;
    } else {
        ok &= json_object_set_new(extra, "count",
                                  json_integer((json_int_t)metric)) == 0;
    }
    ok &= json_object_set_new(extra, "alert_count", json_integer(n)) == 0;
    cf_duration_format(c->timespan_ms, buf);
    ok &= json_object_set_new(extra, "timespan", json_string(buf)) == 0;
    ok &= json_object_set_new(extra, "alert_ids", ids) == 0;

    /* id: correlation + group values + window start */
    struct cf_buf dig = CF_BUF_INIT;
    cf_buf_append(&dig, c->key, strlen(c->key) + 1);
    cf_buf_append(&dig, win_key(w), w->key_len);
    cf_buf_putc(&dig, '\0');
    cf_buf_printf(&dig, "%lld", (long long)ev[0].t);
    ok &= !dig.failed && cf_digest_hex128(dig.data, dig.len, out.id);
    cf_buf_free(&dig);
    out.time_ms = done->t;
    cf_alert_set_correlation(&out, c);
    if (w->ents) {
        for (size_t u = 0; w->ents[u];) {
            int kind = (unsigned char)w->ents[u] - 1;
            out.entities.value[kind] = cf_strdup(w->ents + u + 1);
            ok &= out.entities.value[kind] != NULL;
            u += 1 + strlen(w->ents + u + 1) + 1;
        }
    }
    out.pos = *pos;
    out.is_correlation = true;
    out.ungenerated = c->correlated && !c->generated;
    out.extra = extra;
    if (!ok) {
        co->oom++;
        cf_alert_clear(&out);
        return;
    }
    co->fired++;
    if (co->emit) co->emit(&out, co->opaque);
    if (lk_has(co, c->key)) {
        if (co->n_chainq == co->cap_chainq) {
            size_t cap = co->cap_chainq ? co->cap_chainq * 2 : 16;
            struct cf_alert *q = cf_realloc(co->chainq, cap * sizeof(*q));
            if (!q) {
                co->oom++; /* emitted, but not chained */
                cf_alert_clear(&out);
                return;
            }
            co->chainq = q;
            co->cap_chainq = cap;
        }
        co->chainq[co->n_chainq++] = out;
        return;
    }
    cf_alert_clear(&out);
}

/* Chaining: correlations over correlations see each correlation alert at
 * its own time.  Terminates because reference cycles are rejected. */
static void drain_chain(struct cf_correlator *co) {
    while (co->n_chainq) {
        struct cf_alert a = co->chainq[0];
        memmove(co->chainq, co->chainq + 1,
                --co->n_chainq * sizeof(*co->chainq));
        process_alert(co, &a);
        cf_alert_clear(&a);
    }
}

/* Decides an upper-bounded window's spans that ended before `now`. */
static bool close_spans(struct cf_correlator *co, uint32_t s, int64_t now,
                        const struct cf_position *pos) {
    for (;;) {
        struct win *w = &co->wins[s];
        const struct cf_sigma_correlation *c = co->rb->correlations[w->corr];
        struct cev *ev = win_events(w);
        int64_t end = ev[0].t + c->timespan_ms;
        if (end >= now) return false;
        uint32_t n = 0;
        while (n < w->n_ev && ev[n].t <= end) n++;
        double metric;
        if (evaluate(co, c, ev, n, &ev[n - 1], &metric)) {
            struct cev done = ev[n - 1];
            struct cf_position p = *pos;
            if (!p.source) {
                /* decided by the watermark: point at the completing alert */
                p.source = co->last_source;
                p.offset = done.offset;
            }
            fire(co, s, n, &done, &p, metric);
            w = &co->wins[s];
        }
        if (n >= w->n_ev) {
            win_free_slot(co, s);
            return true;
        }
        win_drop_front(co, w, n);
    }
}

static void apply(struct cf_correlator *co, const struct cf_alert *a, bool evj,
                  const json_t *group, uint32_t ci, uint32_t r) {
    const struct cf_sigma_correlation *c = co->rb->correlations[ci];
    size_t len = 0;
    struct cf_buf *key = &co->key;
    cf_buf_reset(key);
    for (size_t g = 0; g < c->n_group_by; g++) {
        const char *v = field_text(co, evj, group,
                                   c->group_fields[g * c->n_refs + r], &len);
        if (!v) {
            co->no_group++;
            return;
        }
        cf_buf_append(key, v, len);
        cf_buf_putc(key, '\x1f'); /* unit separator between values */
    }
    if (key->failed) {
        co->oom++;
        return;
    }
    const char *kd = key->data ? key->data : "";
    struct cev e;
    memset(&e, 0, sizeof(e));
    e.t = a->time_ms;
    id_to_bin(a->id, e.id);
    e.ref = r;
    e.offset = (uint32_t)a->pos.offset;
    if (a->pos.source) co->last_source = a->pos.source;
    if (c->n_fields) {
        if (c->type == CF_CORR_VALUE_SUM || c->type == CF_CORR_VALUE_AVG) {
            const char *v =
                field_text(co, evj, group, c->value_fields[r], &len);
            char *end = NULL;
            e.val.d = v ? strtod(v, &end) : 0;
            if (!v || end == v || !isfinite(e.val.d)) {
                co->no_value++;
                return;
            }
        } else {
            uint64_t h = CF_HASH_INIT;
            for (size_t f = 0; f < c->n_fields; f++) {
                const char *v = field_text(
                    co, evj, group, c->value_fields[f * c->n_refs + r], &len);
                if (!v) {
                    co->no_value++;
                    return;
                }
                h = cf_hash_continue(cf_hash_continue(h, v, len), "\x1f", 1);
            }
            e.val.h = h;
        }
    }
    bool created;
    uint32_t s = win_get(co, ci, kd, key->len, &created);
    if (s == NIL) {
        co->oom++;
        return;
    }
    co->alerts_used++;
    struct win *w = &co->wins[s];
    if (!created) {
        if (decided_at_close(c)) {
            struct cf_position none = {NULL, -1, 0};
            if (close_spans(co, s, e.t, &none)) {
                s = win_get(co, ci, kd, key->len, &created);
                if (s == NIL) {
                    co->oom++;
                    co->alerts_used--;
                    return;
                }
            }
        } else {
            int64_t newest = win_last(w) > e.t ? win_last(w) : e.t;
            int64_t from = newest - c->timespan_ms;
            if (e.t < from) {
                /* too late for the only window that could hold it */
                co->late_outside++;
                co->alerts_used--;
                return;
            }
            struct cev *ev = win_events(w);
            uint32_t drop = 0;
            while (drop < w->n_ev && ev[drop].t < from) drop++;
            if (drop == w->n_ev) {
                if (w->n_ev > 1) {
                    cf_free(w->ev.many);
                    co->extra_bytes -= w->cap_ev * sizeof(struct cev);
                    w->cap_ev = 0;
                }
                w->n_ev = 0;
            } else {
                win_drop_front(co, w, drop);
            }
        }
        w = &co->wins[s];
        list_unlink(co, s);
    }
    if (win_insert(co, w, &e)) {
        /* out of memory: keep the window as it was, drop this alert */
        list_append(co, s);
        co->alerts_used--;
        co->oom++;
        return;
    }
    list_append(co, s);
    win_add_entities(co, w, &a->entities);
    if (decided_at_close(c)) return;
    double metric;
    if (evaluate(co, c, win_events(w), w->n_ev, &e, &metric)) {
        fire(co, s, w->n_ev, &e, &a->pos, metric);
        win_free_slot(co, s);
    }
}

static void process_alert(struct cf_correlator *co, const struct cf_alert *a) {
    const char *key = a->rule_id;
    if (!lk_has(co, key)) key = a->rule_name;
    if (!lk_has(co, key)) return;
    bool evj = false;
    const json_t *group = NULL;
    const char *reason = NULL;
    if (a->event_json) {
        cf_err_t rc =
            cf_event_decode(co->dec, &co->ev, a->event_json, a->event_len,
                            co->has_limits ? &co->limits : NULL, &reason);
        if (rc == CF_ERR_NOMEM) { /* not "missing group-by": a drop */
            co->oom++;
            return;
        }
        evj = rc == CF_OK;
    }
    if (a->is_correlation && a->extra)
        group = json_object_get(a->extra, "group");
    for (size_t i = lk_find(co, key);
         i < co->n_lk && strcmp(co->lk[i].key, key) == 0; i++)
        apply(co, a, evj, group, co->lk[i].corr, co->lk[i].ref);
}

/* ---- pending alerts, in (time, id) order -------------------------------- */

/* Evaluates and frees one alert popped from the pending heap. */
static void process_pending(struct cf_correlator *co, struct cf_alert *p) {
    process_alert(co, p);
    cf_alert_clear(p);
    cf_free(p);
    drain_chain(co);
}

/* ---- public API ---------------------------------------------------------- */

struct cf_correlator *
cf_correlator_new(const struct cf_rulebook *rb,
                  const struct cf_correlation_settings *settings,
                  const struct cf_decode_limits *limits,
                  cf_correlation_emit_fn emit, void *opaque, char *errstr,
                  size_t errstr_size) {
    struct cf_correlator *co = cf_calloc(1, sizeof(*co));
    if (!co) goto nomem;
    co->rb = rb;
    co->emit = emit;
    co->opaque = opaque;
    co->free_head = NIL;
    co->watermark = INT64_MIN;
    cf_alert_queue_init(&co->pending);
    cf_event_init(&co->ev);
    if (limits) {
        co->limits = *limits;
        co->has_limits = true;
    }
    if (!(co->dec = cf_decoder_new())) goto nomem;
    if (settings) {
        co->max_open = (uint32_t)settings->max_open_windows;
    } else {
        /* the defaults live in one place: the table in core/config.c */
        struct cf_config *defaults = cf_config_default();
        if (!defaults) goto nomem;
        co->max_open = (uint32_t)defaults->correlation.max_open_windows;
        cf_config_destroy(defaults);
    }
    size_t nc = rb ? rb->n_correlations : 0, nlk = 0;
    for (size_t i = 0; i < nc; i++) nlk += rb->correlations[i]->n_refs;
    co->lk = cf_calloc(nlk + 1, sizeof(*co->lk));
    co->head = cf_malloc((nc + 1) * sizeof(*co->head));
    co->tail = cf_malloc((nc + 1) * sizeof(*co->tail));
    if (!co->lk || !co->head || !co->tail) goto nomem;
    for (size_t i = 0; i < nc; i++) {
        const struct cf_sigma_correlation *c = rb->correlations[i];
        co->head[i] = co->tail[i] = NIL;
        for (size_t r = 0; r < c->n_refs; r++) {
            const char *key =
                c->refs[r].rule   ? (c->refs[r].rule->id ? c->refs[r].rule->id
                                                         : c->refs[r].rule->name)
                : c->refs[r].corr ? c->refs[r].corr->key
                                  : NULL;
            if (!key)
                continue; /* unresolved: cf_correlations_resolve not run */
            co->lk[co->n_lk].key = key;
            co->lk[co->n_lk].corr = (uint32_t)i;
            co->lk[co->n_lk].ref = (uint32_t)r;
            co->n_lk++;
        }
    }
    if (co->n_lk) qsort(co->lk, co->n_lk, sizeof(*co->lk), lk_cmp);
    return co;
nomem:
    cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    cf_correlator_destroy(co);
    return NULL;
}

void cf_correlator_destroy(struct cf_correlator *co) {
    if (!co) return;
    for (uint32_t s = 0; s < co->n_slots; s++) {
        struct win *w = &co->wins[s];
        if (!w->n_ev) continue;
        if (w->key_len > KEY_INLINE) cf_free(w->key.ptr);
        if (w->n_ev > 1) cf_free(w->ev.many);
        cf_free(w->ents);
    }
    cf_alert_queue_free(&co->pending);
    for (size_t i = 0; i < co->n_chainq; i++) cf_alert_clear(&co->chainq[i]);
    cf_free(co->chainq);
    cf_free(co->wins);
    cf_free(co->table);
    cf_free(co->head);
    cf_free(co->tail);
    cf_free(co->lk);
    cf_buf_free(&co->key);
    cf_free(co->hbuf);
    cf_event_free(&co->ev);
    cf_decoder_destroy(co->dec);
    cf_free(co);
}

void cf_correlator_push(struct cf_correlator *co, const struct cf_alert *a) {
    if (!co || !a) return;
    co->alerts_seen++;
    /* our own correlation alerts were already chained inside fire() */
    if (a->is_correlation && own_correlation(co, a->rule_id)) {
        co->repushed++;
        return;
    }
    if (!lk_has(co, a->rule_id) && !lk_has(co, a->rule_name)) return;
    if (a->time_ms == CF_TIME_UNKNOWN) {
        co->no_time++;
        return;
    }
    if (a->time_ms < co->watermark) {
        co->late++;
        process_alert(co, a);
        drain_chain(co);
        return;
    }
    if (cf_alert_queue_push(&co->pending, a) != CF_OK) co->oom++;
}

static void expire(struct cf_correlator *co, int64_t wm) {
    for (size_t c = 0; c < co->rb->n_correlations; c++) {
        const struct cf_sigma_correlation *corr = co->rb->correlations[c];
        bool at_close = decided_at_close(corr);
        while (co->head[c] != NIL) {
            uint32_t s = co->head[c];
            struct win *w = &co->wins[s];
            if (win_last(w) + corr->timespan_ms >= wm) break;
            if (at_close) {
                struct cf_position pos = {NULL, -1, 0};
                if (close_spans(co, s, wm, &pos)) {
                    co->expired++;
                    continue;
                }
            }
            win_free_slot(co, s);
            co->expired++;
        }
    }
}

void cf_correlator_advance(struct cf_correlator *co, int64_t watermark_ms) {
    /* equal watermarks still release alerts stamped exactly at it */
    int64_t t;
    if (!co || watermark_ms < co->watermark) return;
    while (cf_heap_peek(&co->pending, &t) && t <= watermark_ms)
        process_pending(co, cf_heap_pop(&co->pending, NULL));
    co->watermark = watermark_ms;
    expire(co, watermark_ms);
    drain_chain(co);
}

void cf_correlator_finish(struct cf_correlator *co) {
    struct cf_alert *p;
    if (!co) return;
    while ((p = cf_heap_pop(&co->pending, NULL))) process_pending(co, p);
    /* end of input: every upper-bounded span is complete now */
    for (size_t c = 0; c < co->rb->n_correlations; c++) {
        if (!decided_at_close(co->rb->correlations[c])) continue;
        while (co->head[c] != NIL) {
            struct cf_position pos = {NULL, -1, 0};
            uint32_t s = co->head[c];
            if (!close_spans(co, s, INT64_MAX, &pos)) win_free_slot(co, s);
            drain_chain(co);
        }
    }
    drain_chain(co);
}

json_t *cf_correlator_stats(const struct cf_correlator *co) {
    if (!co) return json_object();
    size_t bytes = (size_t)co->cap_slots * sizeof(struct win) +
                   co->table_cap * sizeof(uint32_t) + co->extra_bytes;
    /* What correlation skipped is reported in the dropped family
     * (cf_correlator_drops), not here. */
    return json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "alerts_seen",
        (json_int_t)co->alerts_seen, "alerts_counted",
        (json_int_t)co->alerts_used, "own_alerts_repushed",
        (json_int_t)co->repushed, "late_alerts", (json_int_t)co->late, "fired",
        (json_int_t)co->fired, "windows_open", (json_int_t)co->n_open,
        "windows_expired", (json_int_t)co->expired, "pending",
        (json_int_t)co->pending.n, "state_bytes", (json_int_t)bytes,
        "max_open_windows", (json_int_t)co->max_open);
}

void cf_correlator_drops(const struct cf_correlator *co, struct cf_drops *sum) {
    if (!co) return;
    sum->n[CF_DROP_CORRELATION_NO_TIME] += co->no_time;
    sum->n[CF_DROP_CORRELATION_NO_GROUP_BY] += co->no_group;
    sum->n[CF_DROP_CORRELATION_NO_VALUE] += co->no_value;
    sum->n[CF_DROP_CORRELATION_TOO_LATE] += co->late_outside;
    sum->n[CF_DROP_CORRELATION_WINDOW_EVICTED] += co->evicted;
    sum->n[CF_DROP_CORRELATION_OUT_OF_MEMORY] += co->oom;
}

/* ---- checkpoints ---------------------------------------------------- */

#define CO_COUNTERS(co)                                                        \
    &(co)->alerts_seen, &(co)->alerts_used, &(co)->late, &(co)->late_outside,  \
        &(co)->no_group, &(co)->no_value, &(co)->no_time, &(co)->fired,        \
        &(co)->evicted, &(co)->expired, &(co)->repushed, &(co)->oom

static size_t ents_size(const char *ents) {
    size_t n = 0;
    if (!ents) return 0;
    while (ents[n]) n += 1 + strlen(ents + n + 1) + 1;
    return n + 1;
}

void cf_correlator_save(const struct cf_correlator *co, struct cf_ckpt_w *w) {
    const uint64_t *counters[] = {CO_COUNTERS(co)};
    cf_ckpt_i64(w, co->watermark);
    cf_ckpt_sym(w, co->last_source);
    cf_ckpt_u32(w, (uint32_t)CF_ARRAY_LEN(counters));
    for (size_t i = 0; i < CF_ARRAY_LEN(counters); i++)
        cf_ckpt_u64(w, *counters[i]);
    cf_ckpt_put_alert_queue(w, &co->pending);
    cf_ckpt_u64(w, co->n_open);
    for (size_t c = 0; c < co->rb->n_correlations; c++) {
        for (uint32_t s = co->head[c]; s != NIL; s = co->wins[s].next) {
            struct win *win = &co->wins[s];
            const struct cev *ev = win_events(win);
            cf_ckpt_sym(w, co->rb->correlations[c]->key);
            cf_ckpt_strn(w, win_key(win), win->key_len);
            size_t en = ents_size(win->ents);
            cf_ckpt_u32(w, (uint32_t)en);
            if (en) cf_ckpt_put(w, win->ents, en);
            cf_ckpt_u32(w, win->n_ev);
            for (uint32_t i = 0; i < win->n_ev; i++) {
                cf_ckpt_i64(w, ev[i].t);
                cf_ckpt_put(w, ev[i].id, 16);
                cf_ckpt_u64(w, ev[i].val.h);
                cf_ckpt_u32(w, ev[i].ref);
                cf_ckpt_u32(w, ev[i].offset);
            }
        }
    }
}

static uint32_t corr_index(const struct cf_correlator *co, const char *key) {
    for (size_t c = 0; key && c < co->rb->n_correlations; c++)
        if (strcmp(co->rb->correlations[c]->key, key) == 0) return (uint32_t)c;
    return NIL;
}

/* One window as saved; false when the file is bad or memory ran out. */
static bool load_window(struct cf_correlator *co, struct cf_ckpt_r *r) {
    size_t key_len, en;
    const char *ckey = cf_ckpt_get_sym(r);
    const char *key = cf_ckpt_get_str(r, &key_len);
    en = cf_ckpt_get_u32(r);
    if (!key || (en && !cf_ckpt_need(r, en))) {
        r->bad = true;
        return false;
    }
    const char *ents = en ? (const char *)r->p : NULL;
    r->p += en;
    if (ents && (ents[en - 1] != 0 || ents_size(ents) != en)) {
        r->bad = true;
        return false;
    }
    uint32_t n_ev = cf_ckpt_get_u32(r);
    if (n_ev == 0 || !cf_ckpt_need(r, (size_t)n_ev * 36)) {
        r->bad = true;
        return false;
    }
    uint32_t corr = corr_index(co, ckey);
    struct cev *evs = cf_malloc(n_ev * sizeof *evs);
    if (!evs) {
        r->nomem = true;
        return false;
    }
    for (uint32_t i = 0; i < n_ev; i++) {
        evs[i].t = cf_ckpt_get_i64(r);
        cf_ckpt_get(r, evs[i].id, 16);
        evs[i].val.h = cf_ckpt_get_u64(r);
        evs[i].ref = cf_ckpt_get_u32(r);
        evs[i].offset = cf_ckpt_get_u32(r);
        if (corr != NIL && evs[i].ref >= co->rb->correlations[corr]->n_refs)
            corr = NIL; /* the rule changed shape: its state is gone */
    }
    bool created = false;
    uint32_t s = NIL;
    if (corr == NIL) {
        r->dropped_windows++;
    } else if ((s = win_get(co, corr, key, key_len, &created)) == NIL ||
               !created) {
        if (s == NIL)
            r->nomem = true;
        else
            r->bad = true; /* the same window twice */
        s = NIL;
    }
    if (s != NIL) {
        struct win *w = &co->wins[s];
        if (ents && !(w->ents = cf_malloc(en))) {
            r->nomem = true;
        } else if (ents) {
            memcpy(w->ents, ents, en);
            co->extra_bytes += en;
        }
        if (n_ev == 1) {
            w->ev.one = evs[0];
        } else {
            w->ev.many = evs;
            w->cap_ev = n_ev;
            co->extra_bytes += n_ev * sizeof *evs;
            evs = NULL;
        }
        w->n_ev = n_ev;
        list_append(co, s);
    }
    cf_free(evs);
    return !r->bad && !r->nomem;
}

void cf_correlator_load(struct cf_correlator *co, struct cf_ckpt_r *r) {
    uint64_t *counters[] = {CO_COUNTERS(co)};
    co->watermark = cf_ckpt_get_i64(r);
    /* the source of spans decided late (fire()); interned by the caller */
    co->last_source = cf_ckpt_intern(r, cf_ckpt_get_sym(r));
    if (cf_ckpt_get_u32(r) != CF_ARRAY_LEN(counters)) r->bad = true;
    for (size_t i = 0; i < CF_ARRAY_LEN(counters) && !r->bad; i++)
        *counters[i] = cf_ckpt_get_u64(r);
    if (!cf_ckpt_get_alert_queue(r, &co->pending)) return;
    size_t n = cf_ckpt_get_count(r, 4 + 4 + 4 + 4 + 36);
    for (size_t i = 0; i < n && load_window(co, r); i++) {
    }
}
