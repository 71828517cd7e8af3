/*
 * ckpt.c - the checkpoint file and the encoding of alerts, incidents and
 * positions (see ckpt.h).
 */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc.h"
#include "hash.h"
#include "killchain.h"
#include "sigma_correlation.h"
#include "yaml_json.h"

#define MAGIC "CFSTATE"
#define HEADER_BYTES 32u
#define FILE_NAME "checkpoint"
#define TMP_NAME "checkpoint.tmp" /* + ".PID": writers never share one */

char *cf_ckpt_dup(struct cf_ckpt_r *r, const char *s) {
    char *d;
    if (!s) return NULL;
    if (!(d = cf_strdup(s))) r->nomem = true;
    return d;
}

/* ---- recurring strings and ids -------------------------------------- */

static size_t ptr_hash(const char *s, size_t cap) {
    uint64_t h = (uint64_t)(uintptr_t)s * UINT64_C(0x9e3779b97f4a7c15);
    return (size_t)(h >> 20) & (cap - 1);
}

static bool syms_grow(struct cf_ckpt_w *w) {
    size_t nc = w->sym_cap ? w->sym_cap * 2 : 256;
    struct cf_ckpt_sym_slot *ns = cf_calloc(nc, sizeof *ns);
    if (!ns) return false;
    for (size_t i = 0; i < w->sym_cap; i++) {
        if (!w->syms[i].s) continue;
        size_t j = ptr_hash(w->syms[i].s, nc);
        while (ns[j].s) j = (j + 1) & (nc - 1);
        ns[j] = w->syms[i];
    }
    cf_free(w->syms);
    w->syms = ns;
    w->sym_cap = nc;
    return true;
}

/* u32 tag: UINT32_MAX NULL; (number << 1) | 1 a string written before;
 * (length << 1) then its bytes and a NUL, a new one (the next number). */
void cf_ckpt_sym(struct cf_ckpt_w *w, const char *s) {
    if (!s) {
        cf_ckpt_u32(w, UINT32_MAX);
        return;
    }
    if ((w->n_syms + 1) * 2 > w->sym_cap && !syms_grow(w)) {
        w->b.failed = true;
        return;
    }
    size_t j = ptr_hash(s, w->sym_cap);
    for (; w->syms[j].s; j = (j + 1) & (w->sym_cap - 1))
        if (w->syms[j].s == s) {
            cf_ckpt_u32(w, w->syms[j].idx << 1 | 1);
            return;
        }
    size_t n = strlen(s);
    w->syms[j].s = s;
    w->syms[j].idx = w->n_syms++;
    cf_ckpt_u32(w, (uint32_t)n << 1);
    cf_ckpt_put(w, s, n);
    cf_ckpt_u8(w, 0);
}

const char *cf_ckpt_get_sym(struct cf_ckpt_r *r) {
    uint32_t tag = cf_ckpt_get_u32(r);
    if (tag == UINT32_MAX || r->bad) return NULL;
    if (tag & 1) {
        if ((tag >> 1) >= r->n_syms) r->bad = true;
        return r->bad ? NULL : r->syms[tag >> 1];
    }
    size_t n = tag >> 1;
    if (!cf_ckpt_need(r, n + 1) || r->p[n] != 0) {
        r->bad = true;
        return NULL;
    }
    if (r->n_syms == r->cap_syms) {
        size_t nc = r->cap_syms ? r->cap_syms * 2 : 256;
        const char **ns = cf_realloc(r->syms, nc * sizeof *ns);
        if (!ns) {
            r->nomem = true;
            return NULL;
        }
        r->syms = ns;
        r->cap_syms = nc;
    }
    const char *s = (const char *)r->p;
    r->p += n + 1;
    r->syms[r->n_syms++] = s;
    return s;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

void cf_ckpt_id(struct cf_ckpt_w *w, const char *id) {
    unsigned char bin[17];
    bool hex = strlen(id) == 32;
    for (int i = 0; i < 16 && hex; i++) {
        int a = hexval(id[2 * i]), b = hexval(id[2 * i + 1]);
        hex = a >= 0 && b >= 0;
        bin[i + 1] = (unsigned char)(a << 4 | b);
    }
    if (hex) {
        bin[0] = 1;
        cf_ckpt_put(w, bin, 17);
    } else {
        cf_ckpt_u8(w, 0);
        cf_ckpt_str(w, id);
    }
}

void cf_ckpt_get_id(struct cf_ckpt_r *r, char out[33]) {
    static const char digits[] = "0123456789abcdef";
    out[0] = '\0';
    if (cf_ckpt_get_u8(r)) {
        unsigned char bin[16];
        cf_ckpt_get(r, bin, 16);
        for (int i = 0; i < 16; i++) {
            out[2 * i] = digits[bin[i] >> 4];
            out[2 * i + 1] = digits[bin[i] & 15];
        }
        out[32] = '\0';
        return;
    }
    size_t n;
    const char *s = cf_ckpt_get_str(r, &n);
    if (!s || n > 32) {
        r->bad = true;
        return;
    }
    memcpy(out, s, n + 1);
}

/* ---- string pool --------------------------------------------------- */

static bool pool_grow(struct cf_strpool *pool) {
    size_t nc = pool->cap ? pool->cap * 2 : 64;
    char **ns = cf_calloc(nc, sizeof *ns);
    if (!ns) return false;
    for (size_t i = 0; i < pool->cap; i++) {
        if (!pool->slots[i]) continue;
        size_t j = cf_hash_str(pool->slots[i]) & (nc - 1);
        while (ns[j]) j = (j + 1) & (nc - 1);
        ns[j] = pool->slots[i];
    }
    cf_free(pool->slots);
    pool->slots = ns;
    pool->cap = nc;
    return true;
}

const char *cf_ckpt_intern(struct cf_ckpt_r *r, const char *s) {
    struct cf_strpool *pool = r->pool;
    if (!s) return NULL;
    if ((pool->n + 1) * 2 > pool->cap && !pool_grow(pool)) {
        r->nomem = true;
        return NULL;
    }
    size_t j = cf_hash_str(s) & (pool->cap - 1);
    for (; pool->slots[j]; j = (j + 1) & (pool->cap - 1))
        if (strcmp(pool->slots[j], s) == 0) return pool->slots[j];
    if (!(pool->slots[j] = cf_strdup(s))) {
        r->nomem = true;
        return NULL;
    }
    pool->n++;
    return pool->slots[j];
}

void cf_strpool_free(struct cf_strpool *pool) {
    for (size_t i = 0; i < pool->cap; i++) cf_free(pool->slots[i]);
    cf_free(pool->slots);
    memset(pool, 0, sizeof *pool);
}

/* ---- rules by the id alerts carry ---------------------------------- */

struct rule_slot {
    const char *key;
    const struct cf_sigma_rule *rule;        /* or */
    const struct cf_sigma_correlation *corr; /* (correlation alerts) */
};

struct cf_ckpt_rule_index {
    struct rule_slot *slots;
    size_t cap;
};

static void index_put(struct cf_ckpt_rule_index *ix, struct rule_slot s) {
    size_t j = cf_hash_str(s.key) & (ix->cap - 1);
    while (ix->slots[j].key) {
        if (strcmp(ix->slots[j].key, s.key) == 0 &&
            !ix->slots[j].corr == !s.corr)
            return; /* ids are unique per kind (the loader checks) */
        j = (j + 1) & (ix->cap - 1);
    }
    ix->slots[j] = s;
}

static bool build_index(struct cf_ckpt_r *r) {
    const struct cf_rulebook *rb = r->rb;
    size_t n = rb ? rb->n_rules + rb->n_correlations : 0, cap = 16;
    while (cap < 2 * n + 2) cap *= 2;
    struct cf_ckpt_rule_index *ix = cf_calloc(1, sizeof *ix);
    if (!ix || !(ix->slots = cf_calloc(cap, sizeof *ix->slots))) {
        cf_free(ix);
        r->nomem = true;
        return false;
    }
    ix->cap = cap;
    for (size_t i = 0; rb && i < rb->n_rules; i++) {
        const struct cf_sigma_rule *ru = rb->rules[i];
        const char *key = ru->id ? ru->id : ru->title;
        if (key) index_put(ix, (struct rule_slot){key, ru, NULL});
    }
    for (size_t i = 0; rb && i < rb->n_correlations; i++) {
        const struct cf_sigma_correlation *c = rb->correlations[i];
        if (c->key) index_put(ix, (struct rule_slot){c->key, NULL, c});
    }
    r->index = ix;
    return true;
}

static const struct rule_slot *find_rule(struct cf_ckpt_r *r, const char *key,
                                         bool corr) {
    if (!key || (!r->index && !build_index(r))) return NULL;
    struct cf_ckpt_rule_index *ix = r->index;
    for (size_t j = cf_hash_str(key) & (ix->cap - 1); ix->slots[j].key;
         j = (j + 1) & (ix->cap - 1))
        if (strcmp(ix->slots[j].key, key) == 0 && !ix->slots[j].corr == !corr)
            return &ix->slots[j];
    return NULL;
}

void cf_ckpt_reader_done(struct cf_ckpt_r *r) {
    cf_free(r->syms);
    r->syms = NULL;
    r->n_syms = r->cap_syms = 0;
    if (r->index) cf_free(r->index->slots);
    cf_free(r->index);
    r->index = NULL;
}

/* ---- positions, alerts --------------------------------------------- */

void cf_ckpt_put_pos(struct cf_ckpt_w *w, const struct cf_position *pos) {
    cf_ckpt_sym(w, pos->source);
    cf_ckpt_u32(w, (uint32_t)pos->partition);
    cf_ckpt_i64(w, pos->offset);
}

void cf_ckpt_get_pos(struct cf_ckpt_r *r, struct cf_position *pos) {
    pos->source = cf_ckpt_intern(r, cf_ckpt_get_sym(r));
    pos->partition = (int32_t)cf_ckpt_get_u32(r);
    pos->offset = cf_ckpt_get_i64(r);
}

void cf_ckpt_put_alert(struct cf_ckpt_w *w, const struct cf_alert *a) {
    cf_ckpt_id(w, a->id);
    cf_ckpt_i64(w, a->time_ms);
    cf_ckpt_i64(w, a->clock_offset_ms);
    cf_ckpt_sym(w, a->rule_id);
    cf_ckpt_u8(w, (uint8_t)(a->is_correlation | a->ungenerated << 1));
    for (int k = 0; k < CF_ENTITY_COUNT; k++)
        cf_ckpt_str(w, a->entities.value[k]);
    cf_ckpt_strn(w, a->event_json, a->event_len);
    cf_ckpt_put_pos(w, &a->pos);
    if (a->extra) {
        char *text = json_dumps(a->extra, JSON_COMPACT);
        if (!text) w->b.failed = true;
        cf_ckpt_str(w, text);
        free(text); /* jansson's own allocation */
    } else {
        cf_ckpt_str(w, NULL);
    }
}

bool cf_ckpt_get_alert(struct cf_ckpt_r *r, struct cf_alert *a) {
    memset(a, 0, sizeof *a);
    cf_ckpt_get_id(r, a->id);
    a->time_ms = cf_ckpt_get_i64(r);
    a->clock_offset_ms = cf_ckpt_get_i64(r);
    const char *rule_id = cf_ckpt_get_sym(r);
    uint8_t aflags = cf_ckpt_get_u8(r);
    a->is_correlation = aflags & 1;
    a->ungenerated = (aflags & 2) != 0;
    for (int k = 0; k < CF_ENTITY_COUNT; k++)
        a->entities.value[k] = cf_ckpt_dup(r, cf_ckpt_get_str(r, NULL));
    size_t ev_len;
    const char *ev = cf_ckpt_get_str(r, &ev_len);
    if (ev && (a->event_json = cf_malloc(ev_len + 1))) {
        memcpy(a->event_json, ev, ev_len + 1);
        a->event_len = ev_len;
    } else if (ev) {
        r->nomem = true;
    }
    cf_ckpt_get_pos(r, &a->pos);
    const char *extra = cf_ckpt_get_str(r, NULL);
    if (extra && !(a->extra = json_loads(extra, 0, NULL))) r->bad = true;
    const struct rule_slot *rs =
        r->bad || r->nomem ? NULL : find_rule(r, rule_id, a->is_correlation);
    if (rs && rs->rule)
        cf_alert_set_rule(a, rs->rule);
    else if (rs)
        cf_alert_set_correlation(a, rs->corr);
    if (!rs || r->bad || r->nomem) {
        if (!r->bad && !r->nomem) r->dropped_alerts++;
        cf_alert_clear(a);
        memset(a, 0, sizeof *a);
        return false;
    }
    return true;
}

static int by_seq(const void *a, const void *b) {
    const struct cf_heap_entry *x = *(const struct cf_heap_entry *const *)a;
    const struct cf_heap_entry *y = *(const struct cf_heap_entry *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

const struct cf_heap_entry **cf_ckpt_heap_order(struct cf_ckpt_w *w,
                                                const struct cf_heap *q) {
    const struct cf_heap_entry **order =
        q->n ? cf_malloc(q->n * sizeof *order) : NULL;
    if (q->n && !order) {
        w->b.failed = true;
        return NULL;
    }
    for (size_t i = 0; i < q->n; i++) order[i] = &q->entries[i];
    if (q->n) qsort(order, q->n, sizeof *order, by_seq);
    return order;
}

void cf_ckpt_put_alert_queue(struct cf_ckpt_w *w, const struct cf_heap *q) {
    const struct cf_heap_entry **order = cf_ckpt_heap_order(w, q);
    if (q->n && !order) return;
    cf_ckpt_u64(w, q->n);
    for (size_t i = 0; i < q->n; i++) cf_ckpt_put_alert(w, order[i]->item);
    cf_free(order);
}

bool cf_ckpt_get_alert_queue(struct cf_ckpt_r *r, struct cf_heap *q) {
    size_t n = cf_ckpt_get_count(r, 17 + 8 + 8 + 4 + 1);
    for (size_t i = 0; i < n && !r->bad && !r->nomem; i++) {
        struct cf_alert a;
        if (!cf_ckpt_get_alert(r, &a)) continue;
        if (cf_alert_queue_push(q, &a) != CF_OK) r->nomem = true;
        cf_alert_clear(&a);
    }
    return !r->bad && !r->nomem;
}

/* ---- incidents ----------------------------------------------------- */

void cf_ckpt_put_incident(struct cf_ckpt_w *w, const struct cf_incident *inc) {
    cf_ckpt_u64(w, inc->serial);
    cf_ckpt_id(w, inc->id);
    cf_ckpt_u32(w, inc->version);
    cf_ckpt_u8(w, (uint8_t)(inc->dirty | inc->truncated << 1 | inc->noisy << 2 |
                            inc->noise_bounds << 3));
    cf_ckpt_i64(w, inc->first_ms);
    cf_ckpt_i64(w, inc->last_ms);
    cf_ckpt_put_pos(w, &inc->last_pos);
    cf_ckpt_u32(w, (uint32_t)inc->n_stages);
    for (size_t i = 0; i < inc->n_stages; i++) {
        const struct cf_incident_stage *s = &inc->stages[i];
        cf_ckpt_u8(w, (uint8_t)s->stage);
        cf_ckpt_sym(w, s->tactic);
        cf_ckpt_i64(w, s->first_ms);
        cf_ckpt_u32(w, s->alert_count);
    }
    cf_ckpt_u64(w, inc->alert_count);
    cf_ckpt_u64(w, inc->duplicates);
    for (int i = 0; i < 5; i++) cf_ckpt_u64(w, inc->level_count[i]);
    cf_ckpt_u64(w, inc->correlation_alerts);
    cf_ckpt_u64(w, inc->n_links);
    for (size_t i = 0; i < inc->n_links; i++) {
        const struct cf_incident_link *l = &inc->links[i];
        cf_ckpt_id(w, l->alert_id);
        cf_ckpt_u32(w, (uint32_t)l->kind);
        cf_ckpt_str(w, l->value);
        cf_ckpt_u32(w, l->duplicates);
        cf_ckpt_u8(w, (uint8_t)(l->strong | l->saturated << 1));
        cf_ckpt_u32(w, (uint32_t)l->hosts);
        cf_ckpt_u32(w, (uint32_t)l->accounts);
    }
    cf_ckpt_u64(w, inc->n_entities);
    for (size_t i = 0; i < inc->n_entities; i++) {
        cf_ckpt_u32(w, (uint32_t)inc->entities[i].kind);
        cf_ckpt_str(w, inc->entities[i].value);
        cf_ckpt_str(w, inc->entities[i].raw);
    }
    cf_ckpt_u64(w, inc->n_rules);
    for (size_t i = 0; i < inc->n_rules; i++) {
        cf_ckpt_sym(w, inc->rules[i].id);
        cf_ckpt_sym(w, inc->rules[i].title);
        cf_ckpt_u8(w,
                   (uint8_t)(inc->rules[i].level | inc->rules[i].noisy << 4));
        cf_ckpt_u32(w, inc->rules[i].alert_count);
        cf_ckpt_u32(w, inc->rules[i].host);
        cf_ckpt_str(w, inc->rules[i].host_raw);
        cf_ckpt_i64(w, inc->rules[i].first_ms);
        cf_ckpt_i64(w, inc->rules[i].last_ms);
        cf_ckpt_u64(w, inc->rules[i].folded);
    }
    cf_ckpt_sym(w, inc->first_rule_title);
    cf_ckpt_i64(w, inc->active_ms);
    cf_ckpt_u64(w, inc->n_aliases);
    for (size_t i = 0; i < inc->n_aliases; i++) cf_ckpt_u64(w, inc->aliases[i]);
}

struct cf_incident *cf_ckpt_get_incident(struct cf_ckpt_r *r) {
    struct cf_incident *inc = cf_calloc(1, sizeof *inc);
    size_t n;
    if (!inc) {
        r->nomem = true;
        return NULL;
    }
    inc->serial = cf_ckpt_get_u64(r);
    cf_ckpt_get_id(r, inc->id);
    inc->version = cf_ckpt_get_u32(r);
    uint8_t flags = cf_ckpt_get_u8(r);
    inc->dirty = flags & 1;
    inc->truncated = (flags & 2) != 0;
    inc->noisy = (flags & 4) != 0;
    inc->noise_bounds = (flags & 8) != 0;
    inc->first_ms = cf_ckpt_get_i64(r);
    inc->last_ms = cf_ckpt_get_i64(r);
    cf_ckpt_get_pos(r, &inc->last_pos);
    inc->n_stages = cf_ckpt_get_u32(r);
    if (inc->n_stages > CF_ARRAY_LEN(inc->stages)) r->bad = true;
    for (size_t i = 0; i < inc->n_stages && !r->bad; i++) {
        struct cf_incident_stage *s = &inc->stages[i];
        s->stage = cf_ckpt_get_u8(r);
        const char *tactic = cf_ckpt_get_sym(r);
        /* back to the static name the killchain table keeps */
        if (!tactic || cf_killchain_stage(tactic, &s->tactic) != s->stage ||
            !s->tactic)
            r->bad = true;
        s->first_ms = cf_ckpt_get_i64(r);
        s->alert_count = cf_ckpt_get_u32(r);
    }
    inc->alert_count = cf_ckpt_get_u64(r);
    inc->duplicates = cf_ckpt_get_u64(r);
    for (int i = 0; i < 5; i++) inc->level_count[i] = cf_ckpt_get_u64(r);
    inc->correlation_alerts = cf_ckpt_get_u64(r);
    n = cf_ckpt_get_count(r, 17 + 4 + 4 + 4);
    if (n && !r->bad && !(inc->links = cf_calloc(n, sizeof *inc->links)))
        r->nomem = true;
    for (size_t i = 0; i < n && !r->bad && !r->nomem; i++) {
        struct cf_incident_link *l = &inc->links[i];
        cf_ckpt_get_id(r, l->alert_id);
        l->kind = (int)cf_ckpt_get_u32(r);
        l->value = cf_ckpt_dup(r, cf_ckpt_get_str(r, NULL));
        l->duplicates = cf_ckpt_get_u32(r);
        uint8_t lflags = cf_ckpt_get_u8(r);
        l->strong = lflags & 1;
        l->saturated = (lflags & 2) != 0;
        l->hosts = (int32_t)cf_ckpt_get_u32(r);
        l->accounts = (int32_t)cf_ckpt_get_u32(r);
        inc->n_links = inc->cap_links = i + 1;
    }
    n = cf_ckpt_get_count(r, 4 + 4 + 4);
    if (n && !r->bad && !r->nomem &&
        !(inc->entities = cf_calloc(n, sizeof *inc->entities)))
        r->nomem = true;
    for (size_t i = 0; i < n && !r->bad && !r->nomem; i++) {
        struct cf_incident_entity *e = &inc->entities[i];
        e->kind = (int)cf_ckpt_get_u32(r);
        e->value = cf_ckpt_dup(r, cf_ckpt_get_str(r, NULL));
        e->raw = cf_ckpt_dup(r, cf_ckpt_get_str(r, NULL));
        inc->n_entities = inc->cap_entities = i + 1;
    }
    n = cf_ckpt_get_count(r, 4 + 4 + 1 + 4);
    if (n && !r->bad && !r->nomem &&
        !(inc->rules = cf_calloc(n, sizeof *inc->rules)))
        r->nomem = true;
    for (size_t i = 0; i < n && !r->bad && !r->nomem; i++) {
        struct cf_incident_rule *ru = &inc->rules[i];
        ru->id = cf_ckpt_intern(r, cf_ckpt_get_sym(r));
        ru->title = cf_ckpt_intern(r, cf_ckpt_get_sym(r));
        uint8_t level = cf_ckpt_get_u8(r);
        ru->level = (enum cf_level)(level & 15);
        ru->noisy = (level & 16) != 0;
        ru->alert_count = cf_ckpt_get_u32(r);
        ru->host = cf_ckpt_get_u32(r);
        ru->host_raw = cf_ckpt_dup(r, cf_ckpt_get_str(r, NULL));
        ru->first_ms = cf_ckpt_get_i64(r);
        ru->last_ms = cf_ckpt_get_i64(r);
        ru->folded = cf_ckpt_get_u64(r);
        /* the tactics are the rule's own, borrowed from the rules now
         * loaded (none for a rule no longer loaded: its stages stay) */
        const struct rule_slot *rs = NULL;
        if (!r->bad && !r->nomem && !(rs = find_rule(r, ru->id, false)))
            rs = find_rule(r, ru->id, true);
        if (rs && rs->rule) {
            ru->tactics = rs->rule->tactics;
            ru->n_tactics = rs->rule->n_tactics;
        } else if (rs) {
            ru->tactics = rs->corr->tactics;
            ru->n_tactics = rs->corr->n_tactics;
        }
        inc->n_rules = inc->cap_rules = i + 1;
    }
    inc->first_rule_title = cf_ckpt_intern(r, cf_ckpt_get_sym(r));
    inc->active_ms = cf_ckpt_get_i64(r);
    n = cf_ckpt_get_count(r, 8);
    if (n && !r->bad && !r->nomem &&
        !(inc->aliases = cf_calloc(n, sizeof *inc->aliases)))
        r->nomem = true;
    for (size_t i = 0; i < n && !r->bad && !r->nomem; i++) {
        inc->aliases[i] = cf_ckpt_get_u64(r);
        inc->n_aliases = i + 1;
    }
    if (r->bad || r->nomem) {
        cf_incident_destroy(inc);
        return NULL;
    }
    return inc;
}

/* ---- the file ------------------------------------------------------ */

void cf_ckpt_begin(struct cf_ckpt_w *w) {
    static const unsigned char zero[HEADER_BYTES] = {0};
    struct cf_buf keep = w->b;
    cf_free(w->syms);
    memset(w, 0, sizeof *w);
    w->b = keep;
    w->b.failed = false;
    cf_buf_reset(&w->b);
    cf_buf_reserve(&w->b, (size_t)1 << 20);
    cf_buf_append(&w->b, zero, HEADER_BYTES);
}

void cf_ckpt_discard(struct cf_ckpt_w *w) {
    cf_buf_free(&w->b);
    cf_free(w->syms);
    w->syms = NULL;
}

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static cf_err_t write_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return CF_ERR_IO;
        p += k;
        n -= (size_t)k;
    }
    return CF_OK;
}

cf_err_t cf_ckpt_commit(struct cf_ckpt_w *w, const char *dir, char *errstr,
                        size_t errstr_size) {
    struct cf_buf path = CF_BUF_INIT, tmp = CF_BUF_INIT;
    cf_err_t rc = CF_OK;
    int fd = -1;
    if (w->b.failed) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                       "out of memory writing a checkpoint");
        goto done;
    }
    unsigned char *h = (unsigned char *)w->b.data;
    size_t payload = w->b.len - HEADER_BYTES;
    memcpy(h, MAGIC, 8);
    put32(h + 8, CF_CKPT_VERSION);
    put32(h + 12, HEADER_BYTES);
    put32(h + 16, (uint32_t)payload);
    put32(h + 20, (uint32_t)((uint64_t)payload >> 32));
    put32(h + 24, cf_crc32(h + HEADER_BYTES, payload));
    cf_buf_printf(&path, "%s/" FILE_NAME, dir);
    cf_buf_printf(&tmp, "%s/" TMP_NAME ".%ld", dir, (long)getpid());
    if (path.failed || tmp.failed) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                       "out of memory writing a checkpoint");
        goto done;
    }
    /* The new file is complete and on disk before it replaces the old
     * one, and the rename is on disk before inputs are told to commit:
     * a crash at any point leaves one whole checkpoint. */
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, h, w->b.len) != CF_OK || fsync(fd) != 0 ||
        close(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        fd = -1;
        rc = cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot write %s: %s",
                       tmp.data, strerror(e));
        unlink(tmp.data);
        goto done;
    }
    fd = -1;
    if (rename(tmp.data, path.data) != 0) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_IO,
                       "cannot rename %s to %s: %s", tmp.data, path.data,
                       strerror(errno));
        goto done;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot sync %s: %s",
                       dir, strerror(errno));
    }
    if (dfd >= 0) close(dfd);
done:
    cf_buf_free(&path);
    cf_buf_free(&tmp);
    cf_free(w->syms);
    w->syms = NULL;
    w->sym_cap = w->n_syms = 0;
    return rc;
}

bool cf_ckpt_exists(const char *dir) {
    struct cf_buf path = CF_BUF_INIT;
    cf_buf_printf(&path, "%s/" FILE_NAME, dir);
    bool yes = !path.failed && access(path.data, F_OK) == 0;
    cf_buf_free(&path);
    return yes;
}

cf_err_t cf_ckpt_load(const char *dir, unsigned char **data,
                      struct cf_ckpt_r *r, char *errstr, size_t errstr_size) {
    struct cf_buf path = CF_BUF_INIT;
    cf_err_t rc = CF_OK;
    char err[256];
    size_t len = 0;
    *data = NULL;
    memset(r, 0, sizeof *r);
    cf_buf_printf(&path, "%s/" FILE_NAME, dir);
    if (path.failed)
        return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    if (access(path.data, F_OK) != 0 && errno == ENOENT) {
        cf_buf_free(&path);
        if (errstr && errstr_size) errstr[0] = '\0';
        return CF_ERR_IO;
    }
    unsigned char *d =
        (unsigned char *)cf_read_file(path.data, &len, err, sizeof err);
    if (!d) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR, "%s", err);
        goto done;
    }
    if (len < HEADER_BYTES || memcmp(d, MAGIC, 8) != 0) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR,
                       "%s is not a chainfuse checkpoint (or its header is "
                       "damaged)",
                       path.data);
        goto done;
    }
    uint32_t version = get32(d + 8), hbytes = get32(d + 12);
    if (version != CF_CKPT_VERSION) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR,
                       "%s has checkpoint format %u; this chainfuse reads "
                       "format %u only",
                       path.data, version, CF_CKPT_VERSION);
        goto done;
    }
    uint64_t payload = (uint64_t)get32(d + 16) | (uint64_t)get32(d + 20) << 32;
    if (hbytes != HEADER_BYTES || payload != len - HEADER_BYTES) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR,
                       "%s is damaged: %zu bytes where its header says %llu",
                       path.data, len,
                       (unsigned long long)(payload + HEADER_BYTES));
        goto done;
    }
    if (cf_crc32(d + HEADER_BYTES, (size_t)payload) != get32(d + 24)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR,
                       "%s is damaged: its checksum does not match", path.data);
        goto done;
    }
    r->p = d + HEADER_BYTES;
    r->end = d + len;
    *data = d;
    d = NULL;
done:
    cf_free(d);
    cf_buf_free(&path);
    return rc;
}
