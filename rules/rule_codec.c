/*
 * rule_codec.c - parsed rules and correlations as bytes and back (see
 * rule_codec.h).  Used by the rule loader (rulebook.c) on one thread.
 *
 * Layout: integers as LEB128 varints (signed ones zigzag), doubles as
 * their 8 native bytes; a string is its length plus one (0 for NULL) and
 * its bytes; an array is its count plus one (0 for a NULL array) and its
 * elements.  The fields of each struct follow the order of sigma.h and
 * sigma_correlation.h.
 */
#include "rule_codec.h"

#include <string.h>
#include <sys/mman.h>

#include "sigma_modifiers.h"

/* Deeper condition or expression trees than any parser produces mean the
 * bytes are damaged. */
#define MAX_DEPTH 4096

void cf_codec_put_u32(struct cf_buf *b, uint32_t v) {
    cf_codec_put_u64(b, v);
}

/* LEB128: most values are small counts and lengths, one byte each, which
 * keeps the cache file (read and checksummed every start) small. */
void cf_codec_put_u64(struct cf_buf *b, uint64_t v) {
    unsigned char out[10];
    size_t n = 0;
    do {
        out[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) out[n] |= 0x80;
        n++;
    } while (v);
    cf_buf_append(b, out, n);
}

/* Signed, zigzag-encoded. */
static void put_int(struct cf_buf *b, int v) {
    int64_t x = v;
    cf_codec_put_u64(b, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63));
}

static void put_u8(struct cf_buf *b, unsigned v) {
    cf_buf_putc(b, (char)(unsigned char)v);
}

static void put_f64(struct cf_buf *b, double v) {
    cf_buf_append(b, &v, sizeof v);
}

void cf_codec_put_str(struct cf_buf *b, const char *s) {
    size_t n = s ? strlen(s) : 0;
    cf_codec_put_u64(b, s ? n + 1 : 0);
    if (s) cf_buf_append(b, s, n);
}

/* The count of an array plus one, or 0 when it is NULL. */
static void put_count(struct cf_buf *b, const void *arr, size_t n) {
    cf_codec_put_u64(b, arr ? (uint64_t)n + 1 : 0);
}

static void put_strv(struct cf_buf *b, char *const *v, size_t n) {
    put_count(b, v, n);
    if (v)
        for (size_t i = 0; i < n; i++) cf_codec_put_str(b, v[i]);
}

/* ---- reading ----------------------------------------------------------- */

#define PACK_ALIGN _Alignof(max_align_t)
/* A block's first word links it to the next; its data starts here. */
#define PACK_HEAD ((sizeof(void *) + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN)
/* A block's data is one transparent huge page, 2 MB aligned inside an
 * allocation 2 MB larger, and asked for as such (MADV_HUGEPAGE: the
 * system's setting is commonly "madvise").  SigmaHQ's rules take 8 MB:
 * in 4 KB pages, 2,000 page faults (each a trap, a cleared page and a
 * memory-cgroup charge), 40% of a warm start's faults and some 3 ms of
 * its CPU; in huge pages, four.  The data is written as it is decoded,
 * so only the unused end of the last block is memory spent for nothing,
 * and without huge pages (another setting, none free) it is as before. */
#define PACK_HUGE ((size_t)2 << 20)
#define PACK_BLOCK PACK_HUGE

void cf_codec_pack_free(struct cf_codec_pack *pk) {
    for (void *blk = pk->blocks; blk;) {
        void *next = *(void **)blk;
        cf_free(blk);
        blk = next;
    }
    memset(pk, 0, sizeof *pk);
}

/* A new block with room for n bytes, the pack's newest; its data's
 * address, or NULL (rd->nomem).  Apart from pack_alloc, which is inlined
 * into the decoder's every string and array. */
static uintptr_t pack_block(struct cf_codec_rd *rd, size_t n) {
    struct cf_codec_pack *pk = rd->pack;
    size_t want = n > PACK_BLOCK ? n : PACK_BLOCK;
    want = (want + PACK_HUGE - 1) / PACK_HUGE * PACK_HUGE;
    if (want < n || want > SIZE_MAX - PACK_HEAD - PACK_HUGE) {
        rd->nomem = true;
        return 0;
    }
    unsigned char *blk = cf_malloc(PACK_HEAD + PACK_HUGE + want);
    if (!blk) {
        rd->nomem = true;
        return 0;
    }
    *(void **)(void *)blk = pk->blocks;
    pk->blocks = blk;
    uintptr_t at = ((uintptr_t)(blk + PACK_HEAD) + PACK_HUGE - 1) &
                   ~(uintptr_t)(PACK_HUGE - 1);
    pk->end = (unsigned char *)at + want;
    /* Advice: refused (no THP in this kernel) it changes nothing. */
    madvise((void *)at, want, MADV_HUGEPAGE);
    return at;
}

/* n bytes from the pack, aligned for anything when `align`; NULL
 * (rd->nomem) when out of memory.  What is left of a block too small for
 * n stays unused. */
static inline void *pack_alloc(struct cf_codec_rd *rd, size_t n, bool align) {
    struct cf_codec_pack *pk = rd->pack;
    uintptr_t at = (uintptr_t)pk->at;
    if (align) at = (at + PACK_ALIGN - 1) & ~(uintptr_t)(PACK_ALIGN - 1);
    if (!pk->at || at > (uintptr_t)pk->end || n > (uintptr_t)pk->end - at) {
        if (!(at = pack_block(rd, n))) return NULL;
    }
    pk->at = (unsigned char *)(at + n);
    return (void *)at;
}

/* n bytes for what is being decoded: from the pack while rd->pack is
 * set, else an allocation of their own (cf_free). */
static inline void *rd_alloc(struct cf_codec_rd *rd, size_t n, bool align) {
    if (rd->pack) return pack_alloc(rd, n, align);
    void *p = cf_malloc(n ? n : 1);
    if (!p) rd->nomem = true;
    return p;
}

static bool ok(const struct cf_codec_rd *rd) {
    return !rd->bad && !rd->nomem;
}

static bool take(struct cf_codec_rd *rd, void *out, size_t n) {
    if (rd->bad || rd->nomem || (size_t)(rd->end - rd->p) < n) {
        rd->bad = rd->bad || !rd->nomem;
        memset(out, 0, n);
        return false;
    }
    memcpy(out, rd->p, n);
    rd->p += n;
    return true;
}

/* The varint at rd->p, the long way (any length, and failures). */
static uint64_t get_varint(struct cf_codec_rd *rd) {
    uint64_t v = 0;
    for (unsigned shift = 0; ok(rd); shift += 7) {
        if (rd->p == rd->end || shift > 63) {
            rd->bad = true;
            return 0;
        }
        unsigned char c = *rd->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return v;
    }
    return 0;
}

/* Most varints are one byte (counts, lengths, enums, flags: 30 a rule
 * pattern): those inline, without the loop. */
static inline uint64_t get_u64(struct cf_codec_rd *rd) {
    if (rd->p != rd->end && *rd->p < 0x80 && !rd->bad && !rd->nomem)
        return *rd->p++;
    return get_varint(rd);
}

uint64_t cf_codec_get_u64(struct cf_codec_rd *rd) {
    return get_u64(rd);
}

static inline uint32_t get_u32(struct cf_codec_rd *rd) {
    uint64_t v = get_u64(rd);
    if (v > UINT32_MAX) rd->bad = true;
    return (uint32_t)v;
}

uint32_t cf_codec_get_u32(struct cf_codec_rd *rd) {
    return get_u32(rd);
}

static int get_int(struct cf_codec_rd *rd) {
    uint64_t z = get_u64(rd);
    int64_t v = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    if (v < INT32_MIN || v > INT32_MAX) rd->bad = true;
    return (int)v;
}

static inline unsigned get_u8(struct cf_codec_rd *rd) {
    if (rd->p != rd->end && !rd->bad && !rd->nomem) return *rd->p++;
    unsigned char v;
    take(rd, &v, 1); /* fails as it should */
    return v;
}

static double get_f64(struct cf_codec_rd *rd) {
    double v;
    take(rd, &v, sizeof v);
    return v;
}

const char *cf_codec_view_str(struct cf_codec_rd *rd, size_t *len) {
    uint64_t n = get_u64(rd);
    *len = 0;
    if (n == 0 || rd->bad || rd->nomem) return NULL;
    if (n - 1 > (uint64_t)(rd->end - rd->p)) {
        rd->bad = true;
        return NULL;
    }
    const char *s = (const char *)rd->p;
    rd->p += n - 1;
    *len = (size_t)(n - 1);
    return s;
}

char *cf_codec_get_str(struct cf_codec_rd *rd) {
    size_t n;
    const char *s = cf_codec_view_str(rd, &n);
    if (!s) return NULL;
    /* Unlike strndup, keeps bytes past a NUL: an encoded string has none
     * (put_str wrote strlen bytes). */
    char *copy = rd_alloc(rd, n + 1, false);
    if (!copy) return NULL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    return copy;
}

/* A new zeroed array of an encoded count: *arr NULL and *n 0 for a NULL
 * array; false when damaged or out of memory.  Every element takes at
 * least one byte, which bounds the count by the bytes left. */
static bool get_array(struct cf_codec_rd *rd, void **arr, size_t *n,
                      size_t size) {
    uint64_t c = get_u64(rd);
    *arr = NULL;
    *n = 0;
    if (rd->bad || rd->nomem) return false;
    if (c-- == 0) return true;
    if (c > (uint64_t)(rd->end - rd->p)) {
        rd->bad = true;
        return false;
    }
    if (rd->pack) {
        /* c is bounded by the bytes left, size is a struct's */
        if (!(*arr = pack_alloc(rd, (c ? (size_t)c : 1) * size, true)))
            return false;
        memset(*arr, 0, (c ? (size_t)c : 1) * size);
    } else if (!(*arr = cf_calloc(c ? (size_t)c : 1, size))) {
        rd->nomem = true;
        return false;
    }
    *n = (size_t)c;
    return true;
}

/* Fills *v and *n; on failure they hold what was read, for the owner's
 * destroy function. */
static bool get_strv(struct cf_codec_rd *rd, char ***v, size_t *n) {
    size_t c;
    if (!get_array(rd, (void **)v, &c, sizeof **v)) return false;
    *n = c;
    for (size_t i = 0; i < c && ok(rd); i++) (*v)[i] = cf_codec_get_str(rd);
    return ok(rd);
}

/* The same for arrays whose count is implied by other fields
 * (group_fields: n_group_by * n_refs). */
static bool get_strv_n(struct cf_codec_rd *rd, char ***v, size_t want) {
    size_t c;
    if (!get_array(rd, (void **)v, &c, sizeof **v)) return false;
    if (*v && c != want) {
        /* nothing read into it yet; the owner frees a NULL array as none */
        cf_free(*v);
        *v = NULL;
        rd->bad = true;
        return false;
    }
    for (size_t i = 0; i < c && ok(rd); i++) (*v)[i] = cf_codec_get_str(rd);
    return ok(rd);
}

/* ---- rules --------------------------------------------------------------- */

/* Which optional parts of a pattern follow. */
#define PAT_TEXT 1
#define PAT_WILD 2
#define PAT_NUMBER 4
#define PAT_ADDR 8
#define PAT_EXISTS 16

static bool all_zero(const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i]) return false;
    return true;
}

static void put_pattern(struct cf_buf *b, const struct cf_sigma_pattern *p) {
    unsigned parts = (p->text ? PAT_TEXT : 0) | (p->wild ? PAT_WILD : 0) |
                     (all_zero(&p->number, sizeof p->number) ? 0 : PAT_NUMBER) |
                     (all_zero(p->addr, sizeof p->addr) ? 0 : PAT_ADDR) |
                     (p->exists ? PAT_EXISTS : 0);
    cf_codec_put_u32(b, (uint32_t)p->kind);
    cf_codec_put_u32(b, p->flags);
    cf_codec_put_u64(b, p->len);
    put_u8(b, parts);
    if (p->text) cf_buf_append(b, p->text, p->len);
    if (p->wild) {
        /* Wildcards are few: their positions (each after the last) and
         * bytes. */
        size_t n = 0, last = 0;
        for (size_t i = 0; i < p->len; i++) n += p->wild[i] != 0;
        cf_codec_put_u64(b, n);
        for (size_t i = 0; i < p->len; i++)
            if (p->wild[i]) {
                cf_codec_put_u64(b, i - last);
                put_u8(b, p->wild[i]);
                last = i;
            }
    }
    cf_codec_put_u32(b, (uint32_t)p->op);
    if (parts & PAT_NUMBER) put_f64(b, p->number);
    cf_codec_put_u32(b, (uint32_t)p->time_part);
    put_int(b, p->family);
    if (parts & PAT_ADDR) cf_buf_append(b, p->addr, sizeof p->addr);
    put_int(b, p->prefix);
}

/* len bytes plus a NUL, as the parser allocates them. */
static unsigned char *get_bytes(struct cf_codec_rd *rd, size_t len) {
    if (!ok(rd)) return NULL;
    if (len > (size_t)(rd->end - rd->p)) {
        rd->bad = true;
        return NULL;
    }
    unsigned char *s = rd_alloc(rd, len + 1, false);
    if (!s) return NULL;
    memcpy(s, rd->p, len);
    s[len] = 0;
    rd->p += len;
    return s;
}

static void get_pattern(struct cf_codec_rd *rd, struct cf_sigma_pattern *p) {
    p->kind = (enum cf_pattern_kind)get_u32(rd);
    p->flags = get_u32(rd);
    uint64_t len = get_u64(rd);
    unsigned parts = get_u8(rd);
    if (len > (uint64_t)(rd->end - rd->p)) rd->bad = true;
    if (!ok(rd)) return;
    p->len = (size_t)len;
    if (parts & PAT_TEXT) p->text = get_bytes(rd, p->len);
    if ((parts & PAT_WILD) && ok(rd)) {
        uint64_t n = get_u64(rd);
        size_t at = 0;
        if (n > p->len) rd->bad = true;
        if (ok(rd) && (p->wild = rd_alloc(rd, p->len + 1, false)))
            memset(p->wild, 0, p->len + 1);
        for (uint64_t i = 0; i < n && ok(rd); i++) {
            uint64_t step = get_u64(rd);
            unsigned c = get_u8(rd);
            if (!ok(rd) || (i && step == 0) || step >= p->len - at || c == 0) {
                rd->bad = rd->bad || !rd->nomem;
                break;
            }
            at += (size_t)step;
            p->wild[at] = (unsigned char)c;
        }
    }
    p->op = (enum cf_compare)get_u32(rd);
    if (parts & PAT_NUMBER) p->number = get_f64(rd);
    p->time_part = (enum cf_time_part)get_u32(rd);
    p->family = get_int(rd);
    if (parts & PAT_ADDR) take(rd, p->addr, sizeof p->addr);
    p->prefix = get_int(rd);
    p->exists = (parts & PAT_EXISTS) != 0;
}

static void put_field_cond(struct cf_buf *b,
                           const struct cf_sigma_field_cond *fc) {
    cf_codec_put_str(b, fc->field);
    put_u8(b, fc->all);
    put_u8(b, fc->negate);
    put_count(b, fc->values, fc->n_values);
    for (size_t i = 0; fc->values && i < fc->n_values; i++) {
        const struct cf_sigma_value *v = &fc->values[i];
        put_count(b, v->alts, v->n_alts);
        for (size_t j = 0; v->alts && j < v->n_alts; j++)
            put_pattern(b, &v->alts[j]);
    }
}

static void get_field_cond(struct cf_codec_rd *rd,
                           struct cf_sigma_field_cond *fc) {
    fc->field = cf_codec_get_str(rd);
    fc->all = get_u8(rd) != 0;
    fc->negate = get_u8(rd) != 0;
    if (!get_array(rd, (void **)&fc->values, &fc->n_values, sizeof *fc->values))
        return;
    for (size_t i = 0; i < fc->n_values && ok(rd); i++) {
        struct cf_sigma_value *v = &fc->values[i];
        if (!get_array(rd, (void **)&v->alts, &v->n_alts, sizeof *v->alts))
            return;
        for (size_t j = 0; j < v->n_alts && ok(rd); j++)
            get_pattern(rd, &v->alts[j]);
    }
}

static void put_searches(struct cf_buf *b, const struct cf_sigma_search *ss,
                         size_t n) {
    put_count(b, ss, n);
    for (size_t i = 0; ss && i < n; i++) {
        const struct cf_sigma_search *s = &ss[i];
        cf_codec_put_str(b, s->name);
        put_count(b, s->alts, s->n_alts);
        for (size_t j = 0; s->alts && j < s->n_alts; j++) {
            const struct cf_sigma_conjunction *c = &s->alts[j];
            put_count(b, c->conds, c->n_conds);
            for (size_t k = 0; c->conds && k < c->n_conds; k++)
                put_field_cond(b, &c->conds[k]);
        }
    }
}

/* The searches array as a parsed rule's (a filter grows it), their
 * contents packed. */
static void get_searches(struct cf_codec_rd *rd, struct cf_sigma_rule *r) {
    struct cf_codec_pack *pack = rd->pack;
    rd->pack = NULL;
    bool got = get_array(rd, (void **)&r->searches, &r->n_searches,
                         sizeof *r->searches);
    rd->pack = pack;
    if (!got) return;
    r->n_packed = r->n_searches;
    for (size_t i = 0; i < r->n_searches && ok(rd); i++) {
        struct cf_sigma_search *s = &r->searches[i];
        s->name = cf_codec_get_str(rd);
        if (!get_array(rd, (void **)&s->alts, &s->n_alts, sizeof *s->alts))
            return;
        for (size_t j = 0; j < s->n_alts && ok(rd); j++) {
            struct cf_sigma_conjunction *c = &s->alts[j];
            if (!get_array(rd, (void **)&c->conds, &c->n_conds,
                           sizeof *c->conds))
                return;
            for (size_t k = 0; k < c->n_conds && ok(rd); k++)
                get_field_cond(rd, &c->conds[k]);
        }
    }
}

static void put_cond(struct cf_buf *b, const struct cf_sigma_cond *c) {
    cf_codec_put_u32(b, (uint32_t)c->op);
    cf_codec_put_u32(b, c->search);
    put_count(b, c->kids, c->n_kids);
    for (uint32_t i = 0; c->kids && i < c->n_kids; i++)
        put_cond(b, &c->kids[i]);
}

/* The kids array is kept only for the operators cf_sigma_cond_clear()
 * frees it for, so a damaged tree cannot leak. */
static void get_cond(struct cf_codec_rd *rd, struct cf_sigma_cond *c,
                     int depth) {
    c->op = (enum cf_cond_op)get_u32(rd);
    c->search = get_u32(rd);
    size_t n;
    struct cf_sigma_cond *kids;
    if (!get_array(rd, (void **)&kids, &n, sizeof *kids)) return;
    bool owner =
        c->op == CF_COND_AND || c->op == CF_COND_OR || c->op == CF_COND_NOT;
    if ((kids && !owner) || n > UINT32_MAX || depth > MAX_DEPTH) {
        cf_free(kids);
        rd->bad = true;
        return;
    }
    c->kids = kids;
    c->n_kids = (uint32_t)n;
    for (size_t i = 0; i < n && ok(rd); i++)
        get_cond(rd, &c->kids[i], depth + 1);
}

void cf_codec_put_rule(struct cf_buf *b, const struct cf_sigma_rule *r) {
    cf_codec_put_str(b, r->id);
    cf_codec_put_str(b, r->name);
    cf_codec_put_str(b, r->title);
    cf_codec_put_str(b, r->path);
    cf_codec_put_str(b, r->description);
    cf_codec_put_str(b, r->status);
    cf_codec_put_u32(b, (uint32_t)r->level);
    put_strv(b, r->tags, r->n_tags);
    put_strv(b, r->tactics, r->n_tactics);
    put_strv(b, r->techniques, r->n_techniques);
    cf_codec_put_str(b, r->product);
    cf_codec_put_str(b, r->category);
    cf_codec_put_str(b, r->service);
    put_searches(b, r->searches, r->n_searches);
    put_u8(b, r->condition != NULL);
    if (r->condition) put_cond(b, r->condition);
    cf_buf_append(b, r->digest, sizeof r->digest);
    cf_codec_put_u32(b, r->index);
    put_u8(b, r->correlated);
    put_u8(b, r->generated);
}

struct cf_sigma_rule *cf_codec_get_rule(struct cf_codec_rd *rd,
                                        struct cf_codec_pack *pack) {
    struct cf_sigma_rule *r = cf_calloc(1, sizeof *r);
    if (!r) {
        rd->nomem = true;
        return NULL;
    }
    r->packed = pack != NULL;
    rd->pack = pack;
    r->id = cf_codec_get_str(rd);
    r->name = cf_codec_get_str(rd);
    r->title = cf_codec_get_str(rd);
    r->path = cf_codec_get_str(rd);
    r->description = cf_codec_get_str(rd);
    r->status = cf_codec_get_str(rd);
    r->level = (enum cf_level)get_u32(rd);
    if (get_strv(rd, &r->tags, &r->n_tags) &&
        get_strv(rd, &r->tactics, &r->n_tactics) &&
        get_strv(rd, &r->techniques, &r->n_techniques)) {
        r->product = cf_codec_get_str(rd);
        r->category = cf_codec_get_str(rd);
        r->service = cf_codec_get_str(rd);
        get_searches(rd, r);
        rd->pack = NULL; /* the condition tree: see sigma.h */
        if (get_u8(rd) && ok(rd)) {
            if ((r->condition = cf_calloc(1, sizeof *r->condition)))
                get_cond(rd, r->condition, 0);
            else
                rd->nomem = true;
        }
        take(rd, r->digest, sizeof r->digest);
        r->digest[sizeof r->digest - 1] = '\0';
        r->index = get_u32(rd);
        r->correlated = get_u8(rd) != 0;
        r->generated = get_u8(rd) != 0;
    }
    rd->pack = NULL;
    if (!ok(rd)) {
        cf_sigma_rule_destroy(r);
        return NULL;
    }
    return r;
}

/* ---- correlations ------------------------------------------------------ */

static void put_expr(struct cf_buf *b, const struct cf_corr_expr *e) {
    put_u8(b, e != NULL);
    if (!e) return;
    cf_codec_put_u32(b, (uint32_t)e->op);
    cf_codec_put_u32(b, e->ref);
    put_expr(b, e->a);
    put_expr(b, e->b);
}

static struct cf_corr_expr *get_expr(struct cf_codec_rd *rd, int depth) {
    if (!get_u8(rd) || !ok(rd)) return NULL;
    if (depth > MAX_DEPTH) {
        rd->bad = true;
        return NULL;
    }
    struct cf_corr_expr *e = cf_calloc(1, sizeof *e);
    if (!e) {
        rd->nomem = true;
        return NULL;
    }
    e->op = (enum cf_corr_expr_op)get_u32(rd);
    e->ref = get_u32(rd);
    e->a = get_expr(rd, depth + 1);
    e->b = get_expr(rd, depth + 1);
    return e;
}

void cf_codec_put_correlation(struct cf_buf *b,
                              const struct cf_sigma_correlation *c) {
    cf_codec_put_str(b, c->id);
    cf_codec_put_str(b, c->name);
    cf_codec_put_str(b, c->title);
    cf_codec_put_str(b, c->path);
    cf_codec_put_str(b, c->key);
    cf_codec_put_u32(b, (uint32_t)c->level);
    cf_codec_put_u32(b, (uint32_t)c->type);
    /* Only the text of a reference: the loader resolves them after the
     * last file (cf_rulebook_finish), so they are unset here. */
    put_count(b, c->refs, c->n_refs);
    for (size_t i = 0; c->refs && i < c->n_refs; i++)
        cf_codec_put_str(b, c->refs[i].ref);
    put_strv(b, c->group_by, c->n_group_by);
    put_strv(b, c->group_fields, c->n_group_by * c->n_refs);
    put_strv(b, c->fields, c->n_fields);
    put_strv(b, c->value_fields, c->n_fields * c->n_refs);
    cf_codec_put_u64(b, (uint64_t)c->timespan_ms);
    put_count(b, c->criteria, c->n_criteria);
    for (size_t i = 0; c->criteria && i < c->n_criteria; i++) {
        cf_codec_put_u32(b, (uint32_t)c->criteria[i].op);
        put_f64(b, c->criteria[i].value);
    }
    put_expr(b, c->expr);
    put_u8(b, c->generate);
    put_u8(b, c->correlated);
    put_u8(b, c->generated);
    put_strv(b, c->tags, c->n_tags);
    put_strv(b, c->tactics, c->n_tactics);
    put_strv(b, c->techniques, c->n_techniques);
    cf_codec_put_u32(b, c->index);
}

struct cf_sigma_correlation *cf_codec_get_correlation(struct cf_codec_rd *rd) {
    struct cf_sigma_correlation *c = cf_calloc(1, sizeof *c);
    if (!c) {
        rd->nomem = true;
        return NULL;
    }
    c->id = cf_codec_get_str(rd);
    c->name = cf_codec_get_str(rd);
    c->title = cf_codec_get_str(rd);
    c->path = cf_codec_get_str(rd);
    c->key = cf_codec_get_str(rd);
    c->level = (enum cf_level)get_u32(rd);
    c->type = (enum cf_correlation_type)get_u32(rd);
    if (!get_array(rd, (void **)&c->refs, &c->n_refs, sizeof *c->refs))
        goto done;
    for (size_t i = 0; i < c->n_refs && ok(rd); i++)
        c->refs[i].ref = cf_codec_get_str(rd);
    if (!ok(rd) || !get_strv(rd, &c->group_by, &c->n_group_by) ||
        !get_strv_n(rd, &c->group_fields, c->n_group_by * c->n_refs) ||
        !get_strv(rd, &c->fields, &c->n_fields) ||
        !get_strv_n(rd, &c->value_fields, c->n_fields * c->n_refs))
        goto done;
    c->timespan_ms = (int64_t)get_u64(rd);
    if (!get_array(rd, (void **)&c->criteria, &c->n_criteria,
                   sizeof *c->criteria))
        goto done;
    for (size_t i = 0; i < c->n_criteria && ok(rd); i++) {
        c->criteria[i].op = (enum cf_compare)get_u32(rd);
        c->criteria[i].value = get_f64(rd);
    }
    c->expr = get_expr(rd, 0);
    c->generate = get_u8(rd) != 0;
    c->correlated = get_u8(rd) != 0;
    c->generated = get_u8(rd) != 0;
    if (get_strv(rd, &c->tags, &c->n_tags) &&
        get_strv(rd, &c->tactics, &c->n_tactics) &&
        get_strv(rd, &c->techniques, &c->n_techniques))
        c->index = get_u32(rd);
done:
    if (!ok(rd)) {
        cf_correlation_destroy(c);
        return NULL;
    }
    return c;
}
