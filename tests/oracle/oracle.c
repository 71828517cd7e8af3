/*
 * oracle.c - the simple reference evaluator (see oracle.h).  Used only by
 * tests; one oracle per thread.
 */
#include "oracle.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fieldmap.h"
#include "logsource.h"
#include "timeutil.h"

/* Compiled regex per pattern, found by pattern address. */
struct re_slot {
    const struct cf_sigma_pattern *pat;
    pcre2_code *code;
};

struct cf_oracle {
    const struct cf_rulebook *rb;
    struct cf_router *router;
    struct cf_route_cache *cache;
    struct cf_fieldmap *fmap;
    uint32_t *route_of; /* per rule */
    bool *broken;       /* per rule: a regex did not compile */
    size_t skipped;
    struct re_slot *re;
    size_t re_mask;
    pcre2_match_data *md;
};

static size_t ptr_hash(const void *p) {
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ULL;
    return (size_t)(x >> 7);
}

static pcre2_code *re_get(const struct cf_oracle *o,
                          const struct cf_sigma_pattern *p) {
    for (size_t s = ptr_hash(p) & o->re_mask; o->re[s].pat;
         s = (s + 1) & o->re_mask)
        if (o->re[s].pat == p) return o->re[s].code;
    return NULL;
}

static size_t count_regex(const struct cf_rulebook *rb) {
    size_t n = 0;
    for (size_t r = 0; r < rb->n_rules; r++) {
        const struct cf_sigma_rule *rule = rb->rules[r];
        for (size_t s = 0; s < rule->n_searches; s++)
            for (size_t a = 0; a < rule->searches[s].n_alts; a++) {
                const struct cf_sigma_conjunction *c = &rule->searches[s].alts[a];
                for (size_t f = 0; f < c->n_conds; f++)
                    for (size_t v = 0; v < c->conds[f].n_values; v++)
                        for (size_t k = 0; k < c->conds[f].values[v].n_alts; k++)
                            if (c->conds[f].values[v].alts[k].kind ==
                                CF_PATTERN_REGEX)
                                n++;
            }
    }
    return n;
}

static int compile_rule_regexes(struct cf_oracle *o, size_t r) {
    const struct cf_sigma_rule *rule = o->rb->rules[r];
    for (size_t s = 0; s < rule->n_searches; s++)
        for (size_t a = 0; a < rule->searches[s].n_alts; a++) {
            const struct cf_sigma_conjunction *c = &rule->searches[s].alts[a];
            for (size_t f = 0; f < c->n_conds; f++)
                for (size_t v = 0; v < c->conds[f].n_values; v++)
                    for (size_t k = 0; k < c->conds[f].values[v].n_alts; k++) {
                        const struct cf_sigma_pattern *p =
                            &c->conds[f].values[v].alts[k];
                        if (p->kind != CF_PATTERN_REGEX) continue;
                        uint32_t opts = 0;
                        int err;
                        PCRE2_SIZE off;
                        if (p->flags & CF_PAT_RE_I) opts |= PCRE2_CASELESS;
                        if (p->flags & CF_PAT_RE_M) opts |= PCRE2_MULTILINE;
                        if (p->flags & CF_PAT_RE_S) opts |= PCRE2_DOTALL;
                        pcre2_code *code = pcre2_compile(
                            (PCRE2_SPTR)p->text, PCRE2_ZERO_TERMINATED, opts,
                            &err, &off, NULL);
                        if (!code) {
                            o->broken[r] = true;
                            continue;
                        }
                        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
                        size_t slot = ptr_hash(p) & o->re_mask;
                        while (o->re[slot].pat) slot = (slot + 1) & o->re_mask;
                        o->re[slot].pat = p;
                        o->re[slot].code = code;
                    }
        }
    return 0;
}

struct cf_oracle *cf_oracle_new(const struct cf_rulebook *rb,
                                const struct cf_config *cfg, char *errstr,
                                size_t n) {
    bool nomem = false;
    struct cf_oracle *o = calloc(1, sizeof *o);
    if (!o) { nomem = true; goto fail; }
    o->rb = rb;
    if (!(o->fmap = cf_fieldmap_new(
              cfg ? cf_config_section(cfg, "field_mappings") : NULL, errstr, n)))
        goto fail;
    if (!(o->router = cf_router_new(
              cfg ? cf_config_section(cfg, "logsources") : NULL, errstr, n)))
        goto fail;
    o->route_of = calloc(rb->n_rules + 1, sizeof *o->route_of);
    o->broken = calloc(rb->n_rules + 1, sizeof *o->broken);
    if (!o->route_of || !o->broken) { nomem = true; goto fail; }
    for (size_t r = 0; r < rb->n_rules; r++) {
        const struct cf_sigma_rule *rule = rb->rules[r];
        o->route_of[r] =
            cf_router_add(o->router, rule->product, rule->category, rule->service);
        if (o->route_of[r] == UINT32_MAX) { nomem = true; goto fail; }
    }
    if (cf_router_seal(o->router, errstr, n) != CF_OK) goto fail;
    if (!(o->cache = cf_route_cache_new(o->router))) { nomem = true; goto fail; }
    size_t size = 16;
    while (size < count_regex(rb) * 2 + 1) size *= 2;
    if (!(o->re = calloc(size, sizeof *o->re))) { nomem = true; goto fail; }
    o->re_mask = size - 1;
    for (size_t r = 0; r < rb->n_rules; r++) {
        compile_rule_regexes(o, r);
        if (o->broken[r]) o->skipped++;
    }
    if (!(o->md = pcre2_match_data_create(1, NULL))) { nomem = true; goto fail; }
    return o;
fail:
    if (nomem) cf_seterr(errstr, n, CF_ERR_NOMEM, "out of memory");
    cf_oracle_destroy(o);
    return NULL;
}

void cf_oracle_destroy(struct cf_oracle *o) {
    if (!o) return;
    if (o->re)
        for (size_t i = 0; i <= o->re_mask; i++) pcre2_code_free(o->re[i].code);
    free(o->re);
    pcre2_match_data_free(o->md);
    cf_route_cache_destroy(o->cache);
    cf_router_destroy(o->router);
    cf_fieldmap_destroy(o->fmap);
    free(o->route_of);
    free(o->broken);
    free(o);
}

size_t cf_oracle_skipped(const struct cf_oracle *o) {
    return o->skipped;
}

/* ---- patterns ---------------------------------------------------------- */

static int fold(int c, bool cased) {
    return cased ? c : tolower(c);
}

/* Backtracking glob: '*' any run, '?' one byte, else literal. */
static bool glob_at(const struct cf_sigma_pattern *p, size_t pi,
                    const unsigned char *s, size_t n, size_t si) {
    bool cased = p->flags & CF_PAT_CASED;
    while (pi < p->len) {
        unsigned char w = p->wild[pi];
        if (w == '*') {
            while (pi < p->len && p->wild[pi] == '*') pi++;
            if (pi == p->len) return true;
            for (size_t k = si; k <= n; k++)
                if (glob_at(p, pi, s, n, k)) return true;
            return false;
        }
        if (si >= n) return false;
        if (w != '?' && fold(p->text[pi], cased) != fold(s[si], cased))
            return false;
        pi++;
        si++;
    }
    return si == n;
}

static bool strict_number(const struct cf_event_field *f, double *out) {
    char *end;
    if (f->type == CF_VALUE_NULL || f->value_len == 0) return false;
    *out = strtod(f->value, &end);
    return end == f->value + f->value_len && isfinite(*out);
}

static bool cmp(double a, enum cf_compare op, double b) {
    switch (op) {
    case CF_CMP_EQ: return a == b;
    case CF_CMP_NEQ: return a != b;
    case CF_CMP_LT: return a < b;
    case CF_CMP_LTE: return a <= b;
    case CF_CMP_GT: return a > b;
    case CF_CMP_GTE: return a >= b;
    }
    return false;
}

static bool in_cidr(const struct cf_sigma_pattern *p,
                    const struct cf_event_field *f) {
    char buf[64];
    uint8_t a[16];
    if (f->value_len == 0 || f->value_len >= sizeof buf) return false;
    memcpy(buf, f->value, f->value_len);
    buf[f->value_len] = '\0';
    if (inet_pton(p->family == 6 ? AF_INET6 : AF_INET, buf, a) != 1)
        return false;
    for (int bit = 0; bit < p->prefix; bit++) {
        int m = 0x80 >> (bit % 8);
        if ((a[bit / 8] & m) != (p->addr[bit / 8] & m)) return false;
    }
    return true;
}

static bool timepart(const struct cf_sigma_pattern *p,
                     const struct cf_event_field *f) {
    int64_t ms;
    struct tm tm;
    if (f->type == CF_VALUE_NULL || cf_time_parse(f->value, f->value_len, &ms))
        return false;
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    if (!gmtime_r(&t, &tm)) return false;
    int v;
    switch (p->time_part) {
    case CF_TIMEPART_MINUTE: v = tm.tm_min; break;
    case CF_TIMEPART_HOUR: v = tm.tm_hour; break;
    case CF_TIMEPART_DAY: v = tm.tm_mday; break;
    case CF_TIMEPART_WEEK: {
        char wk[8];
        strftime(wk, sizeof wk, "%V", &tm);
        v = atoi(wk);
        break;
    }
    case CF_TIMEPART_MONTH: v = tm.tm_mon + 1; break;
    case CF_TIMEPART_YEAR: v = tm.tm_year + 1900; break;
    default: return false;
    }
    return cmp(v, p->op, p->number);
}

static bool name_in(const struct cf_event_field *f, const char *const *names,
                    size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == f->name_len &&
            memcmp(names[i], f->name, f->name_len) == 0)
            return true;
    return false;
}

static bool fieldref(const struct cf_oracle *o, const struct cf_event *ev,
                     const struct cf_sigma_pattern *p,
                     const struct cf_event_field *f) {
    size_t n;
    const char *const *names =
        cf_fieldmap_lookup(o->fmap, (const char *)p->text, &n);
    const char *self = (const char *)p->text;
    if (!names || !n) {
        names = &self;
        n = 1;
    }
    /* Copy: the lookup answer for unmapped fields is per-thread scratch. */
    const char *copy[16];
    size_t k = n < 16 ? n : 16;
    memcpy(copy, names, k * sizeof *copy);
    for (uint32_t i = 0; i < ev->n_fields; i++) {
        const struct cf_event_field *r = &ev->fields[i];
        if (!name_in(r, copy, k)) continue;
        const char *a = f->value, *b = r->value;
        size_t na = f->value_len, nb = r->value_len;
        if (p->flags & CF_PAT_REF_START) {
            if (nb <= na && memcmp(a, b, nb) == 0) return true;
        } else if (p->flags & CF_PAT_REF_END) {
            if (nb <= na && memcmp(a + na - nb, b, nb) == 0) return true;
        } else if (p->flags & CF_PAT_REF_CONTAINS) {
            if (nb == 0) return true;
            for (size_t j = 0; j + nb <= na; j++)
                if (memcmp(a + j, b, nb) == 0) return true;
        } else if (na == nb && memcmp(a, b, na) == 0) {
            return true;
        }
    }
    return false;
}

/* One value-level pattern against one leaf. */
static bool pattern_leaf(struct cf_oracle *o, const struct cf_event *ev,
                         const struct cf_sigma_pattern *p,
                         const struct cf_event_field *f) {
    double d;
    /* JSON null is no value: only `field: null` matches it. */
    if (f->type == CF_VALUE_NULL &&
        (p->kind == CF_PATTERN_GLOB || p->kind == CF_PATTERN_REGEX))
        return false;
    switch (p->kind) {
    case CF_PATTERN_GLOB:
        return glob_at(p, 0, (const unsigned char *)f->value, f->value_len, 0);
    case CF_PATTERN_REGEX: {
        pcre2_code *code = re_get(o, p);
        if (!code) return false;
        return pcre2_match(code, (PCRE2_SPTR)f->value, f->value_len, 0, 0,
                           o->md, NULL) >= 0;
    }
    case CF_PATTERN_NUMBER:
        return strict_number(f, &d) && cmp(d, p->op, p->number);
    case CF_PATTERN_CIDR: return in_cidr(p, f);
    case CF_PATTERN_FIELDREF: return fieldref(o, ev, p, f);
    case CF_PATTERN_TIMEPART: return timepart(p, f);
    default: return false;
    }
}

/* The leaves a condition looks at: the mapped names, or every leaf for a
 * keyword condition. */
struct leaves {
    const char *names[16];
    size_t n_names;
    bool keyword;
};

static bool leaf_sel(const struct leaves *l, const struct cf_event_field *f) {
    return l->keyword || name_in(f, l->names, l->n_names);
}

static bool value_match(struct cf_oracle *o, const struct cf_event *ev,
                        const struct leaves *l, bool present,
                        const struct cf_sigma_value *v) {
    for (size_t a = 0; a < v->n_alts; a++) {
        const struct cf_sigma_pattern *p = &v->alts[a];
        if (p->kind == CF_PATTERN_EXISTS) {
            if (p->exists == present) return true;
            continue;
        }
        if (p->kind == CF_PATTERN_NULL) {
            if (!present) return true;
            for (uint32_t i = 0; i < ev->n_fields; i++)
                if (leaf_sel(l, &ev->fields[i]) &&
                    ev->fields[i].type == CF_VALUE_NULL)
                    return true;
            continue;
        }
        for (uint32_t i = 0; i < ev->n_fields; i++)
            if (leaf_sel(l, &ev->fields[i]) &&
                pattern_leaf(o, ev, p, &ev->fields[i]))
                return true;
    }
    return false;
}

static bool cond_match(struct cf_oracle *o, const struct cf_event *ev,
                       const struct cf_sigma_field_cond *fc) {
    struct leaves l = {.keyword = fc->field == NULL};
    if (fc->field) {
        size_t n;
        const char *const *names = cf_fieldmap_lookup(o->fmap, fc->field, &n);
        if (!names || !n) {
            l.names[0] = fc->field;
            l.n_names = 1;
        } else {
            l.n_names = n < 16 ? n : 16;
            memcpy(l.names, names, l.n_names * sizeof *l.names);
        }
    }
    bool present = false;
    for (uint32_t i = 0; i < ev->n_fields && !present; i++)
        present = leaf_sel(&l, &ev->fields[i]);
    if (fc->negate) {
        if (!present) return false;
        for (size_t v = 0; v < fc->n_values; v++)
            if (value_match(o, ev, &l, present, &fc->values[v])) return false;
        return true;
    }
    if (fc->all) {
        for (size_t v = 0; v < fc->n_values; v++)
            if (!value_match(o, ev, &l, present, &fc->values[v])) return false;
        return true;
    }
    for (size_t v = 0; v < fc->n_values; v++)
        if (value_match(o, ev, &l, present, &fc->values[v])) return true;
    return false;
}

static bool search_match(struct cf_oracle *o, const struct cf_event *ev,
                         const struct cf_sigma_search *s) {
    for (size_t a = 0; a < s->n_alts; a++) {
        bool all = true;
        for (size_t c = 0; c < s->alts[a].n_conds && all; c++)
            all = cond_match(o, ev, &s->alts[a].conds[c]);
        if (all) return true;
    }
    return false;
}

static bool eval(struct cf_oracle *o, const struct cf_event *ev,
                 const struct cf_sigma_rule *r, const struct cf_sigma_cond *c) {
    switch (c->op) {
    case CF_COND_TRUE: return true;
    case CF_COND_FALSE: return false;
    case CF_COND_SEARCH:
        return c->search < r->n_searches &&
               search_match(o, ev, &r->searches[c->search]);
    case CF_COND_NOT: return c->n_kids >= 1 && !eval(o, ev, r, &c->kids[0]);
    case CF_COND_AND:
        for (uint32_t k = 0; k < c->n_kids; k++)
            if (!eval(o, ev, r, &c->kids[k])) return false;
        return true;
    case CF_COND_OR:
        for (uint32_t k = 0; k < c->n_kids; k++)
            if (eval(o, ev, r, &c->kids[k])) return true;
        return false;
    }
    return false;
}

int cf_oracle_match(struct cf_oracle *o, const struct cf_event *ev,
                    void (*fn)(const struct cf_sigma_rule *, void *),
                    void *opaque) {
    const uint64_t *routes = cf_router_route(o->router, o->cache, ev);
    int count = 0;
    for (size_t r = 0; r < o->rb->n_rules; r++) {
        uint32_t id = o->route_of[r];
        if (!(routes[id / 64] >> (id % 64) & 1) || o->broken[r]) continue;
        const struct cf_sigma_rule *rule = o->rb->rules[r];
        if (!rule->condition || !eval(o, ev, rule, rule->condition)) continue;
        count++;
        if (fn) fn(rule, opaque);
    }
    return count;
}
