/*
 * prevalence.c - entity value prevalence over a sliding event-time
 * horizon, in bounded memory (see prevalence.h).
 */
#include "prevalence.h"

#include <string.h>

#include "alloc.h"
#include "ckpt.h"
#include "hash.h"

/* Slots probed for a value before the least recently seen one in them is
 * replaced: short, so a full table costs a few cache lines per event. */
#define PROBE 8

/* Hosts the estate table holds; past it new hosts are not counted (the
 * estate only grows the share a value needs to be common). */
#define ESTATE_MAX 65536

/* Times in whole seconds, to keep a value small: first rounded up and
 * last down, so a sighting never counts before it happened (within the
 * same second an alert may not see it; every arrival order agrees). */
struct sighting {
    uint32_t id;
    uint32_t first, last; /* seconds since the epoch */
};

struct value {
    uint64_t key; /* 0 = empty */
    int64_t last; /* newest sighting, for replacement */
    uint8_t n_hosts, n_accounts, n_orgs;
    bool saturated;
    struct sighting hosts[CF_PREVALENCE_HOSTS];
    struct sighting accounts[CF_PREVALENCE_ACCOUNTS];
    struct sighting orgs[CF_PREVALENCE_ORGS];
};

struct cf_prevalence {
    struct value *v;
    size_t mask, used;
    int64_t horizon;
    uint64_t evicted;
    /* the estate: every host seen, dense, with an index by id */
    struct sighting *estate;
    uint32_t *estate_index; /* 1-based positions; 0 = empty */
    size_t n_estate, estate_mask;
    /* changes whenever a value leaves its slot (replaced, or the table
     * restored), so a hint taken before no longer applies; from 1, so a
     * zeroed hint never does */
    uint64_t gen;
};

uint32_t cf_prevalence_id(const char *s, size_t len) {
    if (!len) return 0;
    uint64_t h = cf_hash_bytes(s, len);
    uint32_t id = (uint32_t)(h ^ (h >> 32));
    return id ? id : 1;
}

struct cf_prevalence *cf_prevalence_new(size_t max_values, int64_t horizon) {
    struct cf_prevalence *pv = cf_calloc(1, sizeof *pv);
    size_t n = 64;
    if (!pv) return NULL;
    while (n < max_values && n < ((size_t)1 << 40)) n *= 2;
    pv->v = cf_calloc(n, sizeof *pv->v);
    pv->estate = cf_calloc(ESTATE_MAX, sizeof *pv->estate);
    pv->estate_index = cf_calloc(2 * ESTATE_MAX, sizeof *pv->estate_index);
    if (!pv->v || !pv->estate || !pv->estate_index) {
        cf_prevalence_destroy(pv);
        return NULL;
    }
    pv->mask = n - 1;
    pv->estate_mask = 2 * ESTATE_MAX - 1;
    pv->horizon = horizon;
    pv->gen = 1;
    return pv;
}

void cf_prevalence_destroy(struct cf_prevalence *pv) {
    if (!pv) return;
    cf_free(pv->v);
    cf_free(pv->estate);
    cf_free(pv->estate_index);
    cf_free(pv);
}

/* Whether a sighting counts at time t (see the header: first at or
 * before t, last within the horizon before t). */
static uint32_t sec_up(int64_t t) {
    if (t <= 0) return 0;
    int64_t s = (t + 999) / 1000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

static uint32_t sec_down(int64_t t) {
    if (t <= 0) return 0;
    int64_t s = t / 1000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

static bool live(const struct sighting *s, int64_t t, int64_t horizon) {
    return (int64_t)s->first * 1000 <= t &&
           (int64_t)s->last * 1000 >= t - horizon - 999;
}

/* The event times that give t's sec_up and sec_down: t alone on a whole
 * second, else the rest of its second. */
static void same_second(int64_t t, int64_t *lo, int64_t *hi) {
    if (t <= 0) { /* sec_up and sec_down are 0 */
        *lo = INT64_MIN + 1;
        *hi = 0;
        return;
    }
    int64_t s = t / 1000 * 1000;
    *lo = t == s ? t : s + 1;
    *hi = t == s ? t : s + 999;
}

/* Records id at t in a capped list.  When the list is full, a sighting
 * that has aged out makes room; else the value is saturated.  True when
 * id is in the list afterwards (or is 0, which is never recorded): the
 * same id at a time of the same second then changes nothing. */
static bool note(struct cf_prevalence *pv, struct sighting *list, uint8_t *n,
                 uint8_t cap, bool *saturated, uint32_t id, int64_t t) {
    uint32_t up = sec_up(t), down = sec_down(t);
    if (!id) return true;
    for (uint8_t i = 0; i < *n; i++) {
        if (list[i].id != id) continue;
        if (up < list[i].first) list[i].first = up;
        if (down > list[i].last) list[i].last = down;
        return true;
    }
    if (*n < cap) {
        list[(*n)++] = (struct sighting){id, up, down};
        return true;
    }
    for (uint8_t i = 0; i < *n; i++) {
        if ((int64_t)list[i].last * 1000 < t - pv->horizon) {
            list[i] = (struct sighting){id, up, down};
            pv->gen++; /* a hint may have counted on the one replaced */
            return true;
        }
    }
    *saturated = true;
    return false;
}

/* The estate's sighting of host, made when new (NULL: no room). */
static struct sighting *estate_of(struct cf_prevalence *pv, uint32_t host,
                                  int64_t t) {
    size_t i = host & pv->estate_mask;
    for (;; i = (i + 1) & pv->estate_mask) {
        uint32_t pos = pv->estate_index[i];
        if (!pos) break;
        struct sighting *s = &pv->estate[pos - 1];
        if (s->id != host) continue;
        if (sec_up(t) < s->first) s->first = sec_up(t);
        if (sec_down(t) > s->last) s->last = sec_down(t);
        return s;
    }
    if (pv->n_estate >= ESTATE_MAX) return NULL;
    pv->estate[pv->n_estate] = (struct sighting){host, sec_up(t), sec_down(t)};
    pv->estate_index[i] = (uint32_t)++pv->n_estate;
    return &pv->estate[pv->n_estate - 1];
}

void cf_prevalence_see_host(struct cf_prevalence *pv, uint32_t host,
                            int64_t t) {
    if (!pv || !host) return;
    estate_of(pv, host, t);
}

/* The estate keeps its sightings in place, so a hint's slot stays the
 * host's until the table is restored. */
void cf_prevalence_see_host_hinted(struct cf_prevalence *pv,
                                   struct cf_prevalence_hint *hint,
                                   uint32_t host, int64_t t) {
    if (!pv || !host) return;
    if (hint->slot && hint->gen == pv->gen && hint->host == host &&
        t >= hint->lo && t <= hint->hi)
        return; /* first and last already cover t's second */
    hint->slot = estate_of(pv, host, t);
    hint->gen = pv->gen;
    hint->host = host;
    same_second(t, &hint->lo, &hint->hi);
}

/* The slot of `key`: its own, an empty one, or the least recently seen
 * of the PROBE slots it may live in (to be replaced). */
static struct value *slot_for(struct cf_prevalence *pv, uint64_t key) {
    struct value *victim = NULL;
    size_t i = key & pv->mask;
    for (int p = 0; p < PROBE; p++, i = (i + 1) & pv->mask) {
        struct value *v = &pv->v[i];
        if (v->key == key || !v->key) return v;
        if (!victim || v->last < victim->last) victim = v;
    }
    return victim;
}

/* Counts what putting `key` in `slot` does: a new value, or one evicted. */
static void claim(struct cf_prevalence *pv, const struct value *slot,
                  uint64_t key) {
    if (slot->key == key) return;
    if (slot->key) {
        pv->evicted++;
        pv->gen++; /* hints to the value it held no longer apply */
    } else {
        pv->used++;
    }
}

/* cf_prevalence_see of key (not 0); true when host, account and org
 * are all in the value's lists afterwards.  *at: its slot. */
static bool see(struct cf_prevalence *pv, uint64_t key, uint32_t host,
                uint32_t org, uint32_t account, int64_t t, struct value **at) {
    struct value *victim = slot_for(pv, key);
    if (victim->key != key) {
        claim(pv, victim, key);
        memset(victim, 0, sizeof *victim);
        victim->key = key;
        victim->last = t;
    }
    if (t > victim->last) victim->last = t;
    *at = victim;
    bool kept = note(pv, victim->hosts, &victim->n_hosts, CF_PREVALENCE_HOSTS,
                     &victim->saturated, host, t);
    kept &= note(pv, victim->accounts, &victim->n_accounts,
                 CF_PREVALENCE_ACCOUNTS, &victim->saturated, account, t);
    /* past the slots, "several organisations" is all that matters */
    bool many_orgs = false;
    kept &= note(pv, victim->orgs, &victim->n_orgs, CF_PREVALENCE_ORGS,
                 &many_orgs, org, t);
    return kept;
}

void cf_prevalence_see(struct cf_prevalence *pv, uint64_t key, uint32_t host,
                       uint32_t org, uint32_t account, int64_t t) {
    struct value *at;
    if (pv) see(pv, key ? key : 1, host, org, account, t, &at);
}

void cf_prevalence_see_hinted(struct cf_prevalence *pv,
                              struct cf_prevalence_hint *hint, uint64_t key,
                              uint32_t host, uint32_t org, uint32_t account,
                              int64_t t) {
    if (!pv) return;
    if (!key) key = 1;
    struct value *v = hint->slot;
    if (v && hint->gen == pv->gen && hint->key == key && v->key == key &&
        hint->host == host && hint->org == org && hint->account == account &&
        t >= hint->lo && t <= hint->hi) {
        /* every list holds its id with t's second covered: as see() */
        if (t > v->last) v->last = t;
        return;
    }
    bool kept = see(pv, key, host, org, account, t, &v);
    *hint = (struct cf_prevalence_hint){
        kept ? v : NULL, pv->gen, key, host, org, account, 0, 0};
    same_second(t, &hint->lo, &hint->hi);
}

struct cf_prevalence_count cf_prevalence_get(const struct cf_prevalence *pv,
                                             uint64_t key, int64_t t) {
    struct cf_prevalence_count c = {0, 0, 0, false};
    if (!pv) return c;
    if (!key) key = 1;
    size_t i = key & pv->mask;
    for (int p = 0; p < PROBE; p++, i = (i + 1) & pv->mask) {
        const struct value *v = &pv->v[i];
        if (!v->key) break;
        if (v->key != key) continue;
        for (uint8_t j = 0; j < v->n_hosts; j++)
            c.hosts += live(&v->hosts[j], t, pv->horizon);
        for (uint8_t j = 0; j < v->n_accounts; j++)
            c.accounts += live(&v->accounts[j], t, pv->horizon);
        for (uint8_t j = 0; j < v->n_orgs; j++)
            c.orgs += live(&v->orgs[j], t, pv->horizon);
        c.saturated = v->saturated;
        break;
    }
    return c;
}

uint32_t cf_prevalence_estate(struct cf_prevalence *pv, int64_t t) {
    uint32_t n = 0;
    if (!pv) return 0;
    for (size_t i = 0; i < pv->n_estate; i++)
        n += live(&pv->estate[i], t, pv->horizon);
    return n;
}

size_t cf_prevalence_bytes(const struct cf_prevalence *pv) {
    if (!pv) return 0;
    return sizeof *pv + (pv->mask + 1) * sizeof *pv->v +
           ESTATE_MAX * sizeof *pv->estate +
           2 * ESTATE_MAX * sizeof *pv->estate_index;
}

size_t cf_prevalence_values(const struct cf_prevalence *pv) {
    return pv ? pv->used : 0;
}

uint64_t cf_prevalence_evicted(const struct cf_prevalence *pv) {
    return pv ? pv->evicted : 0;
}

/* ---- checkpoints --------------------------------------------------- */

static void put_sightings(struct cf_ckpt_w *w, const struct sighting *s,
                          uint8_t n) {
    cf_ckpt_u8(w, n);
    for (uint8_t i = 0; i < n; i++) {
        cf_ckpt_u32(w, s[i].id);
        cf_ckpt_u32(w, s[i].first);
        cf_ckpt_u32(w, s[i].last);
    }
}

static void get_sightings(struct cf_ckpt_r *r, struct sighting *s, uint8_t *n,
                          uint8_t cap) {
    *n = cf_ckpt_get_u8(r);
    if (*n > cap) {
        r->bad = true;
        *n = 0;
        return;
    }
    for (uint8_t i = 0; i < *n; i++) {
        s[i].id = cf_ckpt_get_u32(r);
        s[i].first = cf_ckpt_get_u32(r);
        s[i].last = cf_ckpt_get_u32(r);
    }
}

void cf_prevalence_save(const struct cf_prevalence *pv, struct cf_ckpt_w *w) {
    cf_ckpt_u8(w, pv != NULL);
    if (!pv) return;
    cf_ckpt_u64(w, pv->mask);
    cf_ckpt_u64(w, pv->evicted);
    cf_ckpt_u64(w, pv->used);
    for (size_t i = 0; i <= pv->mask; i++) {
        const struct value *v = &pv->v[i];
        if (!v->key) continue;
        cf_ckpt_u64(w, i);
        cf_ckpt_u64(w, v->key);
        cf_ckpt_i64(w, v->last);
        cf_ckpt_u8(w, v->saturated);
        put_sightings(w, v->hosts, v->n_hosts);
        put_sightings(w, v->accounts, v->n_accounts);
        put_sightings(w, v->orgs, v->n_orgs);
    }
    cf_ckpt_u64(w, pv->n_estate);
    for (size_t i = 0; i < pv->n_estate; i++) {
        cf_ckpt_u32(w, pv->estate[i].id);
        cf_ckpt_u32(w, pv->estate[i].first);
        cf_ckpt_u32(w, pv->estate[i].last);
    }
}

void cf_prevalence_load(struct cf_prevalence *pv, struct cf_ckpt_r *r) {
    if (!cf_ckpt_get_u8(r)) return; /* saved without a table */
    if (!pv) {
        r->bad = true;
        return;
    }
    pv->gen++; /* every slot may hold another value now */
    uint64_t mask = cf_ckpt_get_u64(r);
    pv->evicted = cf_ckpt_get_u64(r);
    uint64_t used = cf_ckpt_get_u64(r);
    bool same = mask == pv->mask;
    if (used > mask + 1) r->bad = true;
    pv->used = 0;
    for (uint64_t k = 0; k < used && !r->bad; k++) {
        uint64_t at = cf_ckpt_get_u64(r);
        struct value v;
        memset(&v, 0, sizeof v);
        v.key = cf_ckpt_get_u64(r);
        v.last = cf_ckpt_get_i64(r);
        v.saturated = cf_ckpt_get_u8(r) != 0;
        get_sightings(r, v.hosts, &v.n_hosts, CF_PREVALENCE_HOSTS);
        get_sightings(r, v.accounts, &v.n_accounts, CF_PREVALENCE_ACCOUNTS);
        get_sightings(r, v.orgs, &v.n_orgs, CF_PREVALENCE_ORGS);
        if (r->bad || !v.key || at > mask) {
            r->bad = true;
            break;
        }
        /* the same slot in a table of the same size, else where
         * cf_prevalence_see would put it */
        struct value *slot = same ? &pv->v[at] : slot_for(pv, v.key);
        claim(pv, slot, v.key);
        *slot = v;
    }
    uint64_t n = cf_ckpt_get_count(r, 12);
    if (n > ESTATE_MAX) r->bad = true;
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        uint32_t id = cf_ckpt_get_u32(r);
        uint32_t first = cf_ckpt_get_u32(r), last = cf_ckpt_get_u32(r);
        cf_prevalence_see_host(pv, id, (int64_t)first * 1000);
        cf_prevalence_see_host(pv, id, (int64_t)last * 1000);
    }
}
