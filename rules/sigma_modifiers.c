/*
 * sigma_modifiers.c - Sigma values and their modifier chains to final
 * patterns (struct cf_sigma_value in sigma.h).
 *
 * Called by sigma_rule.c for every `field|mod|mod: values` entry of a
 * detection.  The semantics follow pySigma, the reference implementation
 * SigmaHQ rules are tested with: string escapes as SigmaString, windash
 * only on `-`/`/` that start a word (pySigma's \B[-/]\b), base64offset
 * trimmed as SigmaBase64OffsetModifier.  Keywords (no field) get an
 * implicit contains, since the matchers full-match every glob.  Numeric
 * modifiers also accept numeric text ('10'), because yaml_json keeps some
 * plain numbers (0.5) as strings.  Load time only; no shared state.
 */
#include "sigma_modifiers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "buf.h"
#include "event.h"
#include "yaml_json.h"

/* A glob under construction: literal bytes with a parallel wildcard
 * mask, as in struct cf_sigma_pattern.  Both buffers always hold the
 * same number of bytes (or one has failed, and the glob is dropped). */
struct wstr {
    struct cf_buf b; /* the bytes */
    struct cf_buf w; /* per byte: 0 literal, '*' or '?' wildcard */
};

#define WSTR_INIT                                                              \
    { CF_BUF_INIT, CF_BUF_INIT }

struct alts {
    struct wstr *v;
    size_t n, cap;
};

enum mod_id {
    MOD_CONTAINS,
    MOD_STARTSWITH,
    MOD_ENDSWITH,
    MOD_ALL,
    MOD_EXISTS,
    MOD_CASED,
    MOD_NEQ,
    MOD_WINDASH,
    MOD_RE,
    MOD_RE_I,
    MOD_RE_M,
    MOD_RE_S,
    MOD_BASE64,
    MOD_BASE64OFFSET,
    MOD_UTF16LE,
    MOD_UTF16BE,
    MOD_UTF16,
    MOD_LT,
    MOD_LTE,
    MOD_GT,
    MOD_GTE,
    MOD_CIDR,
    MOD_EXPAND,
    MOD_FIELDREF,
    MOD_MINUTE,
    MOD_HOUR,
    MOD_DAY,
    MOD_WEEK,
    MOD_MONTH,
    MOD_YEAR
};

static const struct {
    const char *name;
    enum mod_id id;
} mod_names[] = {
    {"contains", MOD_CONTAINS},
    {"startswith", MOD_STARTSWITH},
    {"endswith", MOD_ENDSWITH},
    {"all", MOD_ALL},
    {"exists", MOD_EXISTS},
    {"cased", MOD_CASED},
    {"neq", MOD_NEQ},
    {"windash", MOD_WINDASH},
    {"re", MOD_RE},
    {"i", MOD_RE_I},
    {"m", MOD_RE_M},
    {"s", MOD_RE_S},
    {"base64", MOD_BASE64},
    {"base64offset", MOD_BASE64OFFSET},
    {"utf16le", MOD_UTF16LE},
    {"wide", MOD_UTF16LE},
    {"utf16be", MOD_UTF16BE},
    {"utf16", MOD_UTF16},
    {"lt", MOD_LT},
    {"lte", MOD_LTE},
    {"gt", MOD_GT},
    {"gte", MOD_GTE},
    {"cidr", MOD_CIDR},
    {"expand", MOD_EXPAND},
    {"fieldref", MOD_FIELDREF},
    {"minute", MOD_MINUTE},
    {"hour", MOD_HOUR},
    {"day", MOD_DAY},
    {"week", MOD_WEEK},
    {"month", MOD_MONTH},
    {"year", MOD_YEAR},
};

#define MAX_MODS 16

/* Everything the chain says, gathered before any value is built. */
struct chain {
    const char *field; /* for messages */
    enum mod_id mods[MAX_MODS];
    const char *names[MAX_MODS];
    size_t n;
    unsigned seen; /* bit per enum mod_id */
};

#define HAS(c, m) (((c)->seen >> (m)) & 1u)

/* ---- growable glob strings ---------------------------------------- */

static size_t wstr_len(const struct wstr *s) {
    return s->b.len;
}

static unsigned char wstr_byte(const struct wstr *s, size_t i) {
    return (unsigned char)s->b.data[i];
}

static unsigned char wstr_wild(const struct wstr *s, size_t i) {
    return (unsigned char)s->w.data[i];
}

static int wstr_status(const struct wstr *s) {
    return s->b.failed || s->w.failed ? -1 : 0;
}

static void wstr_free(struct wstr *s) {
    cf_buf_free(&s->b);
    cf_buf_free(&s->w);
}

static int wstr_push(struct wstr *s, unsigned char byte, unsigned char wild) {
    cf_buf_putc(&s->b, (char)byte);
    cf_buf_putc(&s->w, (char)wild);
    return wstr_status(s);
}

/* Marks the bytes appended to s->b since the mask was last in step as
 * literal. */
static int wstr_literal_tail(struct wstr *s) {
    while (s->w.len < s->b.len && !s->w.failed) cf_buf_putc(&s->w, 0);
    return wstr_status(s);
}

static int wstr_push_literal(struct wstr *s, const void *bytes, size_t n) {
    cf_buf_append(&s->b, bytes, n);
    return wstr_literal_tail(s);
}

static int wstr_prepend_star(struct wstr *s) {
    if (wstr_push(s, '*', '*') != 0) return -1;
    size_t n = wstr_len(s) - 1;
    memmove(s->b.data + 1, s->b.data, n);
    memmove(s->w.data + 1, s->w.data, n);
    s->b.data[0] = '*';
    s->w.data[0] = '*';
    return 0;
}

/* Appends src (bytes and mask) to dst. */
static int wstr_append(struct wstr *dst, const struct wstr *src) {
    cf_buf_append(&dst->b, src->b.data, wstr_len(src));
    cf_buf_append(&dst->w, src->w.data, wstr_len(src));
    return wstr_status(dst);
}

static bool wstr_has_wild(const struct wstr *s) {
    for (size_t i = 0; i < wstr_len(s); i++)
        if (wstr_wild(s, i)) return true;
    return false;
}

/* SigmaString escapes: `\` before `*`, `?` or `\` makes that character
 * literal; any other backslash is itself a literal. */
static int glob_parse_into(const char *s, size_t len, struct wstr *out) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' && i + 1 < len &&
            (s[i + 1] == '*' || s[i + 1] == '?' || s[i + 1] == '\\')) {
            if (wstr_push(out, (unsigned char)s[++i], 0) != 0) return -1;
        } else if (c == '*' || c == '?') {
            if (wstr_push(out, c, c) != 0) return -1;
        } else if (wstr_push(out, c, 0) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- alternative lists -------------------------------------------- */

static void alts_free(struct alts *a) {
    for (size_t i = 0; i < a->n; i++) wstr_free(&a->v[i]);
    cf_free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* Takes ownership of *s (and empties it). */
static int alts_take(struct alts *a, struct wstr *s) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4;
        struct wstr *v = cf_realloc(a->v, cap * sizeof(*v));
        if (!v) return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = *s;
    memset(s, 0, sizeof(*s));
    return 0;
}

/* ---- encodings ---------------------------------------------------- */

/* Standard base64 with padding of in[0..n), appended to out as literal
 * bytes. */
static int b64_encode(const unsigned char *in, size_t n, struct wstr *out) {
    cf_buf_base64(&out->b, in, n);
    return wstr_literal_tail(out);
}

/* Decodes one UTF-8 sequence at s[*i]; invalid bytes decode as
 * themselves (Latin-1) so odd rule text still encodes deterministically. */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *i) {
    unsigned char c = s[*i];
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (c < 0x80 || c >= 0xF8 || *i + (size_t)extra >= len) {
        (*i)++;
        return c;
    }
    uint32_t cp = c & (0x3F >> extra);
    for (int k = 1; k <= extra; k++) {
        if ((s[*i + k] & 0xC0) != 0x80) {
            (*i)++;
            return c;
        }
        cp = (cp << 6) | (s[*i + k] & 0x3F);
    }
    *i += (size_t)extra + 1;
    return cp;
}

static int push_unit(struct wstr *out, uint32_t u, bool big_endian) {
    unsigned char lo = (unsigned char)(u & 0xFF), hi = (unsigned char)(u >> 8);
    if (big_endian) return wstr_push(out, hi, 0) || wstr_push(out, lo, 0);
    return wstr_push(out, lo, 0) || wstr_push(out, hi, 0);
}

/* Re-encodes the literal runs of s as UTF-16; wildcards stay wildcards. */
static int utf16_transform(struct wstr *s, bool big_endian, bool bom) {
    struct wstr out = WSTR_INIT;
    int rc = -1;
    if (bom && (wstr_push(&out, 0xFF, 0) || wstr_push(&out, 0xFE, 0)))
        goto cleanup;
    for (size_t i = 0; i < wstr_len(s);) {
        if (wstr_wild(s, i)) {
            if (wstr_push(&out, wstr_byte(s, i), wstr_wild(s, i)) != 0)
                goto cleanup;
            i++;
            continue;
        }
        size_t end = i;
        while (end < wstr_len(s) && !wstr_wild(s, end)) end++;
        while (i < end) {
            uint32_t cp = utf8_next((const unsigned char *)s->b.data, end, &i);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                if (push_unit(&out, 0xD800 | (cp >> 10), big_endian) ||
                    push_unit(&out, 0xDC00 | (cp & 0x3FF), big_endian))
                    goto cleanup;
            } else if (push_unit(&out, cp, big_endian) != 0) {
                goto cleanup;
            }
        }
    }
    wstr_free(s);
    *s = out;
    out = (struct wstr)WSTR_INIT;
    rc = 0;
cleanup:
    wstr_free(&out);
    return rc;
}

/* ---- windash ------------------------------------------------------ */

static bool is_word_byte(unsigned char c) {
    return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static const char *const dashes[] = {"-", "/", "\xE2\x80\x93", "\xE2\x80\x94",
                                     "\xE2\x80\x95"};

/* All permutations of pySigma's windash positions: a `-` or `/` not
 * preceded by a word character (or at a wildcard/start) and followed by a
 * literal word character, i.e. the start of a command-line flag. */
static int windash_expand(const struct wstr *s, struct alts *out,
                          size_t *n_total) {
    size_t pos[16], n_pos = 0;
    size_t len = wstr_len(s);
    for (size_t i = 0; i < len; i++) {
        if (wstr_wild(s, i) ||
            (wstr_byte(s, i) != '-' && wstr_byte(s, i) != '/'))
            continue;
        bool before_ok =
            i == 0 || wstr_wild(s, i - 1) || !is_word_byte(wstr_byte(s, i - 1));
        bool after_ok = i + 1 < len && !wstr_wild(s, i + 1) &&
                        is_word_byte(wstr_byte(s, i + 1));
        if (before_ok && after_ok) {
            if (n_pos == CF_ARRAY_LEN(pos)) return -2;
            pos[n_pos++] = i;
        }
    }
    size_t combos = 1;
    for (size_t k = 0; k < n_pos; k++) {
        combos *= CF_ARRAY_LEN(dashes);
        if (*n_total + combos > CF_SIGMA_MAX_ALTS) return -2;
    }
    *n_total += combos;
    for (size_t c = 0; c < combos; c++) {
        struct wstr v = WSTR_INIT;
        size_t sel = c, next = 0;
        unsigned char choice[16];
        for (size_t k = 0; k < n_pos; k++) {
            choice[k] = (unsigned char)(sel % CF_ARRAY_LEN(dashes));
            sel /= CF_ARRAY_LEN(dashes);
        }
        for (size_t i = 0; i < len; i++) {
            if (next < n_pos && pos[next] == i) {
                const char *d = dashes[choice[next]];
                if (wstr_push_literal(&v, d, strlen(d)) != 0) goto fail;
                next++;
            } else if (wstr_push(&v, wstr_byte(s, i), wstr_wild(s, i)) != 0) {
                goto fail;
            }
        }
        if (alts_take(out, &v) != 0) goto fail;
        continue;
    fail:
        wstr_free(&v);
        return -1;
    }
    return 0;
}

/* ---- scalars ------------------------------------------------------ */

static int pattern_from_wstr(struct cf_sigma_pattern *p, const struct wstr *s,
                             unsigned flags) {
    memset(p, 0, sizeof(*p));
    p->kind = CF_PATTERN_GLOB;
    p->flags = flags;
    size_t len = wstr_len(s);
    p->text = cf_malloc(len + 1);
    p->wild = cf_malloc(len + 1);
    if (!p->text || !p->wild) {
        cf_sigma_pattern_clear(p);
        return -1;
    }
    if (len) {
        memcpy(p->text, s->b.data, len);
        memcpy(p->wild, s->w.data, len);
    }
    p->text[len] = '\0';
    p->wild[len] = 0;
    p->len = len;
    return 0;
}

cf_err_t cf_sigma_glob_parse(const char *s, size_t len,
                             struct cf_sigma_pattern *out) {
    struct wstr w = WSTR_INIT;
    cf_err_t rc = CF_ERR_NOMEM;
    if (glob_parse_into(s, len, &w) != 0) goto cleanup;
    if (pattern_from_wstr(out, &w, 0) != 0) goto cleanup;
    rc = CF_OK;
cleanup:
    wstr_free(&w);
    return rc;
}

void cf_sigma_pattern_clear(struct cf_sigma_pattern *p) {
    if (!p) return;
    cf_free(p->text);
    cf_free(p->wild);
    p->text = p->wild = NULL;
    p->len = 0;
}

void cf_sigma_field_cond_clear(struct cf_sigma_field_cond *fc) {
    if (!fc) return;
    for (size_t i = 0; i < fc->n_values; i++) {
        for (size_t j = 0; j < fc->values[i].n_alts; j++)
            cf_sigma_pattern_clear(&fc->values[i].alts[j]);
        cf_free(fc->values[i].alts);
    }
    cf_free(fc->values);
    cf_free(fc->field);
    memset(fc, 0, sizeof(*fc));
}

/* ---- |expand ------------------------------------------------------ */

/* Substitutes every %name% in text with each configured value (cartesian
 * product) and glob-parses each result into out. */
static cf_err_t expand_placeholders(const char *text, size_t len,
                                    const json_t *placeholders,
                                    struct alts *out, const char *field,
                                    char *errstr, size_t errstr_size) {
    /* Find the first placeholder; recurse on the rest for each value. */
    const char *open = memchr(text, '%', len);
    const char *close =
        open ? memchr(open + 1, '%', len - (size_t)(open + 1 - text)) : NULL;
    if (!open || !close || close == open + 1) {
        struct wstr w = WSTR_INIT;
        if (glob_parse_into(text, len, &w) != 0 || alts_take(out, &w) != 0) {
            wstr_free(&w);
            return CF_ERR_NOMEM;
        }
        if (out->n > CF_SIGMA_MAX_ALTS)
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "field '%s': |expand produces more than %d "
                             "alternatives; reduce the placeholder values",
                             field, CF_SIGMA_MAX_ALTS);
        return CF_OK;
    }
    size_t name_len = (size_t)(close - open - 1);
    char name[256];
    if (name_len >= sizeof(name))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "field '%s': placeholder name too long", field);
    memcpy(name, open + 1, name_len);
    name[name_len] = '\0';
    const json_t *vals =
        placeholders ? json_object_get(placeholders, name) : NULL;
    if (!vals || !(json_is_string(vals) || json_is_array(vals)) ||
        (json_is_array(vals) && json_array_size(vals) == 0))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "placeholder %%%s%% is not configured; define it "
                         "under `placeholders:` in the config",
                         name);
    size_t n = json_is_array(vals) ? json_array_size(vals) : 1;
    size_t head = (size_t)(open - text);
    size_t tail_len = len - (size_t)(close + 1 - text);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_is_array(vals) ? json_array_get(vals, i) : vals;
        char buf[64];
        size_t vlen;
        const char *vs = cf_scalar_text(v, buf, sizeof(buf), &vlen);
        if (!vs)
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "placeholder %%%s%%: values must be strings",
                             name);
        size_t total = head + vlen + tail_len;
        char *joined = cf_malloc(total + 1);
        if (!joined) return CF_ERR_NOMEM;
        memcpy(joined, text, head);
        memcpy(joined + head, vs, vlen);
        memcpy(joined + head + vlen, close + 1, tail_len);
        joined[total] = '\0';
        /* Substituted values are not re-scanned for placeholders past
         * their own end: recurse on the part after them only. */
        struct alts sub = {0};
        cf_err_t rc = expand_placeholders(close + 1, tail_len, placeholders,
                                          &sub, field, errstr, errstr_size);
        if (rc == CF_OK) {
            struct wstr prefix = WSTR_INIT;
            if (glob_parse_into(joined, head + vlen, &prefix) != 0)
                rc = CF_ERR_NOMEM;
            for (size_t k = 0; rc == CF_OK && k < sub.n; k++) {
                struct wstr w = WSTR_INIT;
                if (wstr_append(&w, &prefix) != 0 ||
                    wstr_append(&w, &sub.v[k]) != 0 || alts_take(out, &w) != 0)
                    rc = CF_ERR_NOMEM;
                wstr_free(&w);
            }
            wstr_free(&prefix);
        }
        alts_free(&sub);
        cf_free(joined);
        if (rc != CF_OK) return rc;
        if (out->n > CF_SIGMA_MAX_ALTS)
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "field '%s': |expand produces more than %d "
                             "alternatives; reduce the placeholder values",
                             field, CF_SIGMA_MAX_ALTS);
    }
    return CF_OK;
}

/* ---- the chain ---------------------------------------------------- */

static cf_err_t parse_chain(const char *key, struct chain *c, char **field,
                            char *errstr, size_t errstr_size) {
    memset(c, 0, sizeof(*c));
    *field = NULL;
    if (!key) {
        c->field = "(keywords)";
        return CF_OK;
    }
    const char *bar = strchr(key, '|');
    size_t flen = bar ? (size_t)(bar - key) : strlen(key);
    *field = cf_strndup(key, flen);
    if (!*field) return CF_ERR_NOMEM;
    c->field = *field;
    if (flen == 0) {
        /* `'|all': [...]` etc.: modifiers on keywords */
        cf_free(*field);
        *field = NULL;
        c->field = "(keywords)";
    }
    while (bar) {
        const char *m = bar + 1;
        bar = strchr(m, '|');
        size_t mlen = bar ? (size_t)(bar - m) : strlen(m);
        size_t k;
        for (k = 0; k < CF_ARRAY_LEN(mod_names); k++)
            if (strlen(mod_names[k].name) == mlen &&
                strncmp(mod_names[k].name, m, mlen) == 0)
                break;
        if (k == CF_ARRAY_LEN(mod_names)) {
            cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                      "unknown modifier '%.*s' on field '%s'", (int)mlen, m,
                      c->field);
            goto fail;
        }
        if (c->n == MAX_MODS) {
            cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                      "too many modifiers on field '%s'", c->field);
            goto fail;
        }
        c->mods[c->n] = mod_names[k].id;
        c->names[c->n] = mod_names[k].name;
        c->n++;
        c->seen |= 1u << mod_names[k].id;
    }
    return CF_OK;
fail:
    cf_free(*field);
    *field = NULL;
    return CF_ERR_PARSE;
}

/* Rejects any modifier of the chain not in `allowed` (bit set). */
static cf_err_t only(const struct chain *c, unsigned allowed, const char *what,
                     char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < c->n; i++)
        if (!((allowed >> c->mods[i]) & 1u))
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "modifier '%s' cannot be combined with %s on "
                             "field '%s'",
                             c->names[i], what, c->field);
    return CF_OK;
}

#define BIT(m) (1u << (m))
#define CMP_BITS (BIT(MOD_LT) | BIT(MOD_LTE) | BIT(MOD_GT) | BIT(MOD_GTE))
#define TIME_BITS                                                              \
    (BIT(MOD_MINUTE) | BIT(MOD_HOUR) | BIT(MOD_DAY) | BIT(MOD_WEEK) |          \
     BIT(MOD_MONTH) | BIT(MOD_YEAR))

static enum cf_compare chain_compare(const struct chain *c) {
    for (size_t i = 0; i < c->n; i++) {
        switch (c->mods[i]) {
        case MOD_LT: return CF_CMP_LT;
        case MOD_LTE: return CF_CMP_LTE;
        case MOD_GT: return CF_CMP_GT;
        case MOD_GTE: return CF_CMP_GTE;
        default: break;
        }
    }
    return CF_CMP_EQ;
}

static cf_err_t parse_cidr(const char *s, struct cf_sigma_pattern *p,
                           const char *field, char *errstr,
                           size_t errstr_size) {
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(addr)) goto bad;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, p->addr) == 1) {
        p->family = 4;
    } else if (inet_pton(AF_INET6, addr, p->addr) == 1) {
        p->family = 6;
    } else {
        goto bad;
    }
    int max = p->family == 4 ? 32 : 128;
    p->prefix = max;
    if (slash) {
        char *end;
        errno = 0;
        long v = strtol(slash + 1, &end, 10);
        if (errno || end == slash + 1 || *end || v < 0 || v > max) goto bad;
        p->prefix = (int)v;
    }
    /* Clear host bits so matchers compare masked addresses directly. */
    for (int bit = p->prefix; bit < max; bit++)
        p->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    p->kind = CF_PATTERN_CIDR;
    return CF_OK;
bad:
    return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                     "field '%s': '%s' is not a valid CIDR network "
                     "(expected e.g. 10.0.0.0/8 or fe80::/10)",
                     field, s);
}

/* A number, or a string that is entirely a decimal number (yaml_json
 * keeps some plain numbers such as 0.5 as text). */
static bool numeric_value(const json_t *v, double *out) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    return json_is_string(v) &&
           cf_decimal_parse(json_string_value(v), json_string_length(v), out);
}

/* Typed (non-glob) patterns: exists, re, cidr, numbers, time parts,
 * fieldref.  Returns 1 when the chain is not one of those. */
static cf_err_t typed_pattern(const struct chain *c, const json_t *v,
                              struct cf_sigma_pattern *p, char *errstr,
                              size_t errstr_size) {
    cf_err_t rc;
    memset(p, 0, sizeof(*p));
    char buf[64];
    size_t len;
    if (HAS(c, MOD_EXISTS)) {
        if ((rc = only(c, BIT(MOD_EXISTS), "'exists'", errstr, errstr_size)) !=
            CF_OK)
            return rc;
        if (!json_is_boolean(v))
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "field '%s': |exists needs true or false",
                             c->field);
        p->kind = CF_PATTERN_EXISTS;
        p->exists = json_is_true(v);
        return CF_OK;
    }
    if (HAS(c, MOD_RE)) {
        unsigned ok = BIT(MOD_RE) | BIT(MOD_RE_I) | BIT(MOD_RE_M) |
                      BIT(MOD_RE_S) | BIT(MOD_ALL) | BIT(MOD_NEQ) |
                      BIT(MOD_CONTAINS) | BIT(MOD_STARTSWITH) |
                      BIT(MOD_ENDSWITH);
        if ((rc = only(c, ok, "'re'", errstr, errstr_size)) != CF_OK) return rc;
        const char *s = cf_scalar_text(v, buf, sizeof(buf), &len);
        if (!s || json_is_boolean(v))
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "field '%s': |re needs a string value", c->field);
        /* The pattern is searched unanchored, so contains changes
         * nothing; startswith/endswith anchor it. */
        bool start = HAS(c, MOD_STARTSWITH), end = HAS(c, MOD_ENDSWITH);
        size_t cap = len + 16;
        p->text = cf_malloc(cap);
        if (!p->text) return CF_ERR_NOMEM;
        if (start || end)
            snprintf((char *)p->text, cap, "%s(?:%.*s)%s", start ? "^" : "",
                     (int)len, s, end ? "$" : "");
        else
            snprintf((char *)p->text, cap, "%.*s", (int)len, s);
        p->len = strlen((char *)p->text);
        p->kind = CF_PATTERN_REGEX;
        if (HAS(c, MOD_RE_I)) p->flags |= CF_PAT_RE_I;
        if (HAS(c, MOD_RE_M)) p->flags |= CF_PAT_RE_M;
        if (HAS(c, MOD_RE_S)) p->flags |= CF_PAT_RE_S;
        int err;
        PCRE2_SIZE off;
        pcre2_code *code =
            pcre2_compile((PCRE2_SPTR)p->text, p->len, 0, &err, &off, NULL);
        if (!code) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof(msg));
            cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                      "field '%s': invalid regular expression '%s' at "
                      "offset %zu: %s",
                      c->field, (char *)p->text, (size_t)off, (char *)msg);
            cf_sigma_pattern_clear(p);
            return CF_ERR_PARSE;
        }
        pcre2_code_free(code);
        return CF_OK;
    }
    if (HAS(c, MOD_RE_I) || HAS(c, MOD_RE_M) || HAS(c, MOD_RE_S))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "field '%s': modifiers i, m and s need 're' before "
                         "them",
                         c->field);
    if (HAS(c, MOD_CIDR)) {
        if ((rc = only(c, BIT(MOD_CIDR) | BIT(MOD_ALL) | BIT(MOD_NEQ), "'cidr'",
                       errstr, errstr_size)) != CF_OK)
            return rc;
        if (!json_is_string(v))
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "field '%s': |cidr needs a string such as "
                             "'10.0.0.0/8'",
                             c->field);
        return parse_cidr(json_string_value(v), p, c->field, errstr,
                          errstr_size);
    }
    if (c->seen & TIME_BITS) {
        if ((rc = only(c, TIME_BITS | CMP_BITS | BIT(MOD_ALL) | BIT(MOD_NEQ),
                       "a time modifier", errstr, errstr_size)) != CF_OK)
            return rc;
        if (!numeric_value(v, &p->number))
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "field '%s': time modifiers need a number",
                             c->field);
        int n_parts = 0;
        for (size_t i = 0; i < c->n; i++) {
            if (!((TIME_BITS >> c->mods[i]) & 1u)) continue;
            n_parts++;
            p->time_part = (enum cf_time_part)(c->mods[i] - MOD_MINUTE);
        }
        if (n_parts > 1)
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "field '%s': use one time modifier per field",
                             c->field);
        p->kind = CF_PATTERN_TIMEPART;
        p->op = chain_compare(c);
        return CF_OK;
    }
    if (c->seen & CMP_BITS) {
        if ((rc = only(c, CMP_BITS | BIT(MOD_ALL), "a numeric comparison",
                       errstr, errstr_size)) != CF_OK)
            return rc;
        if (!numeric_value(v, &p->number))
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "field '%s': lt/lte/gt/gte need a number "
                             "value",
                             c->field);
        int n_cmp = 0;
        for (size_t i = 0; i < c->n; i++)
            n_cmp += (CMP_BITS >> c->mods[i]) & 1u;
        if (n_cmp > 1)
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "field '%s': use one of lt/lte/gt/gte per field",
                             c->field);
        p->kind = CF_PATTERN_NUMBER;
        p->op = chain_compare(c);
        return CF_OK;
    }
    if (HAS(c, MOD_FIELDREF)) {
        unsigned ok = BIT(MOD_FIELDREF) | BIT(MOD_CONTAINS) |
                      BIT(MOD_STARTSWITH) | BIT(MOD_ENDSWITH) | BIT(MOD_ALL) |
                      BIT(MOD_NEQ) | BIT(MOD_CASED);
        if ((rc = only(c, ok, "'fieldref'", errstr, errstr_size)) != CF_OK)
            return rc;
        if (!json_is_string(v))
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "field '%s': |fieldref needs a field name",
                             c->field);
        p->kind = CF_PATTERN_FIELDREF;
        p->text = (unsigned char *)cf_strdup(json_string_value(v));
        if (!p->text) return CF_ERR_NOMEM;
        p->len = strlen((char *)p->text);
        if (HAS(c, MOD_CONTAINS)) p->flags |= CF_PAT_REF_CONTAINS;
        if (HAS(c, MOD_STARTSWITH)) p->flags |= CF_PAT_REF_START;
        if (HAS(c, MOD_ENDSWITH)) p->flags |= CF_PAT_REF_END;
        if (HAS(c, MOD_CASED)) p->flags |= CF_PAT_CASED;
        return CF_OK;
    }
    return 1;
}

/* Applies the glob modifiers in chain order to the alternatives. */
static cf_err_t apply_glob_mods(const struct chain *c, struct alts *a,
                                char *errstr, size_t errstr_size) {
    for (size_t m = 0; m < c->n; m++) {
        enum mod_id id = c->mods[m];
        struct alts next = {0};
        size_t total = 0;
        for (size_t i = 0; i < a->n; i++) {
            struct wstr *s = &a->v[i];
            int r = 0;
            switch (id) {
            case MOD_CONTAINS:
                if (!(wstr_len(s) && wstr_wild(s, 0) == '*'))
                    r = wstr_prepend_star(s);
                if (!r &&
                    !(wstr_len(s) && wstr_wild(s, wstr_len(s) - 1) == '*'))
                    r = wstr_push(s, '*', '*');
                break;
            case MOD_STARTSWITH:
                if (!(wstr_len(s) && wstr_wild(s, wstr_len(s) - 1) == '*'))
                    r = wstr_push(s, '*', '*');
                break;
            case MOD_ENDSWITH:
                if (!(wstr_len(s) && wstr_wild(s, 0) == '*'))
                    r = wstr_prepend_star(s);
                break;
            case MOD_WINDASH:
                r = windash_expand(s, &next, &total);
                if (r == -2) {
                    alts_free(&next);
                    return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                                     "field '%s': |windash produces more "
                                     "than %d alternatives; split the value",
                                     c->field, CF_SIGMA_MAX_ALTS);
                }
                break;
            case MOD_BASE64:
            case MOD_BASE64OFFSET: {
                if (wstr_has_wild(s)) {
                    alts_free(&next);
                    return cf_seterr(
                        errstr, errstr_size, CF_ERR_PARSE,
                        "field '%s': |%s cannot encode wildcards; put "
                        "contains/startswith/endswith after it",
                        c->field, c->names[m]);
                }
                if (id == MOD_BASE64) {
                    struct wstr e = WSTR_INIT;
                    r = b64_encode((const unsigned char *)s->b.data,
                                   wstr_len(s), &e);
                    if (!r) {
                        wstr_free(s);
                        *s = e;
                    } else {
                        wstr_free(&e);
                    }
                    break;
                }
                /* SigmaBase64OffsetModifier: encode with 0, 1, 2 bytes of
                 * padding in front, drop the characters that depend on
                 * the unknown neighbouring bytes. */
                static const size_t start_off[3] = {0, 2, 3};
                static const int end_off[3] = {0, -3, -2};
                for (size_t shift = 0; shift < 3 && !r; shift++) {
                    size_t n = shift + wstr_len(s);
                    unsigned char *tmp = cf_malloc(n ? n : 1);
                    struct wstr e = WSTR_INIT, t = WSTR_INIT;
                    if (!tmp) {
                        r = -1;
                        break;
                    }
                    memset(tmp, ' ', shift);
                    if (wstr_len(s))
                        memcpy(tmp + shift, s->b.data, wstr_len(s));
                    r = b64_encode(tmp, n, &e);
                    cf_free(tmp);
                    int eo = end_off[(wstr_len(s) + shift) % 3];
                    size_t from = start_off[shift];
                    size_t to = wstr_len(&e);
                    if (eo < 0) to = to >= (size_t)-eo ? to - (size_t)-eo : 0;
                    if (!r && from < to)
                        r = wstr_push_literal(&t, e.b.data + from, to - from);
                    if (!r) r = alts_take(&next, &t);
                    wstr_free(&e);
                    wstr_free(&t);
                }
                break;
            }
            case MOD_UTF16LE: r = utf16_transform(s, false, false); break;
            case MOD_UTF16BE: r = utf16_transform(s, true, false); break;
            case MOD_UTF16: r = utf16_transform(s, false, true); break;
            default: /* flags (all, cased, neq, expand) */ break;
            }
            if (r) {
                alts_free(&next);
                return CF_ERR_NOMEM;
            }
        }
        if (id == MOD_WINDASH || id == MOD_BASE64OFFSET) {
            if (next.n > CF_SIGMA_MAX_ALTS) {
                alts_free(&next);
                return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                                 "field '%s': modifiers produce more than "
                                 "%d alternatives",
                                 c->field, CF_SIGMA_MAX_ALTS);
            }
            alts_free(a);
            *a = next;
        }
    }
    return CF_OK;
}

/* One value of a field to its alternatives. */
static cf_err_t build_value(const struct chain *c, const json_t *v,
                            const json_t *placeholders,
                            struct cf_sigma_value *out, bool *used_expand,
                            char *errstr, size_t errstr_size) {
    struct alts a = {0};
    cf_err_t rc;
    memset(out, 0, sizeof(*out));
    if (json_is_array(v) || json_is_object(v)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "field '%s': a value is a %s; values must be "
                       "scalars (use a list of values, not nested lists)",
                       c->field, json_is_array(v) ? "list" : "map");
        goto cleanup;
    }
    out->alts = cf_calloc(1, sizeof(*out->alts));
    if (!out->alts) {
        rc = CF_ERR_NOMEM;
        goto cleanup;
    }
    rc = typed_pattern(c, v, &out->alts[0], errstr, errstr_size);
    if (rc != 1) {
        if (rc == CF_OK) out->n_alts = 1;
        goto cleanup;
    }
    if (json_is_null(v)) {
        unsigned ok = BIT(MOD_ALL) | BIT(MOD_NEQ) | BIT(MOD_CASED);
        if ((rc = only(c, ok, "a null value", errstr, errstr_size)) != CF_OK)
            goto cleanup;
        out->alts[0].kind = CF_PATTERN_NULL;
        out->n_alts = 1;
        rc = CF_OK;
        goto cleanup;
    }
    char buf[64];
    size_t len;
    const char *text = cf_scalar_text(v, buf, sizeof(buf), &len);
    if (!text) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "field '%s': unsupported value type", c->field);
        goto cleanup;
    }
    if (HAS(c, MOD_EXPAND)) {
        *used_expand = true;
        rc = expand_placeholders(text, len, placeholders, &a, c->field, errstr,
                                 errstr_size);
        if (rc != CF_OK) goto cleanup;
    } else {
        struct wstr w = WSTR_INIT;
        if (glob_parse_into(text, len, &w) != 0 || alts_take(&a, &w) != 0) {
            wstr_free(&w);
            rc = CF_ERR_NOMEM;
            goto cleanup;
        }
    }
    rc = apply_glob_mods(c, &a, errstr, errstr_size);
    if (rc != CF_OK) goto cleanup;
    cf_free(out->alts);
    out->alts = cf_calloc(a.n ? a.n : 1, sizeof(*out->alts));
    if (!out->alts) {
        rc = CF_ERR_NOMEM;
        goto cleanup;
    }
    unsigned flags = HAS(c, MOD_CASED) ? CF_PAT_CASED : 0;
    for (size_t i = 0; i < a.n; i++) {
        if (pattern_from_wstr(&out->alts[i], &a.v[i], flags) != 0) {
            rc = CF_ERR_NOMEM;
            goto cleanup;
        }
        out->n_alts++;
    }
    rc = CF_OK;
cleanup:
    alts_free(&a);
    if (rc != CF_OK) {
        for (size_t i = 0; i < out->n_alts; i++)
            cf_sigma_pattern_clear(&out->alts[i]);
        cf_free(out->alts);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

cf_err_t cf_sigma_field_cond_build(const char *key, const json_t *values,
                                   const json_t *placeholders,
                                   struct cf_sigma_field_cond *out,
                                   bool *used_expand, char *errstr,
                                   size_t errstr_size) {
    struct chain c;
    cf_err_t rc;
    memset(out, 0, sizeof(*out));
    rc = parse_chain(key, &c, &out->field, errstr, errstr_size);
    if (rc != CF_OK) goto cleanup;
    if (!out->field && c.n > 0) {
        /* Keywords: only modifiers that keep "any field value matches"
         * meaningful. */
        unsigned ok = BIT(MOD_ALL) | BIT(MOD_CONTAINS) | BIT(MOD_STARTSWITH) |
                      BIT(MOD_ENDSWITH) | BIT(MOD_CASED) | BIT(MOD_WINDASH) |
                      BIT(MOD_BASE64) | BIT(MOD_BASE64OFFSET) |
                      BIT(MOD_UTF16LE) | BIT(MOD_UTF16BE) | BIT(MOD_UTF16) |
                      BIT(MOD_RE) | BIT(MOD_RE_I) | BIT(MOD_RE_M) |
                      BIT(MOD_RE_S);
        if ((rc = only(&c, ok, "keywords (no field name)", errstr,
                       errstr_size)) != CF_OK)
            goto cleanup;
    }
    /* Keywords are free text searched anywhere in the event (as Sigma's
     * full-text backends and the SigmaHQ keyword rules expect: 'REPLACE'
     * must hit a longer log line), so they get an implicit contains
     * unless the author placed wildcards with a modifier. */
    if (!out->field && !HAS(&c, MOD_RE) && !HAS(&c, MOD_CONTAINS) &&
        !HAS(&c, MOD_STARTSWITH) && !HAS(&c, MOD_ENDSWITH) && c.n < MAX_MODS) {
        c.mods[c.n] = MOD_CONTAINS;
        c.names[c.n] = "contains";
        c.n++;
        c.seen |= 1u << MOD_CONTAINS;
    }
    out->all = HAS(&c, MOD_ALL);
    out->negate = HAS(&c, MOD_NEQ);
    size_t n = json_is_array(values) ? json_array_size(values) : 1;
    if (n == 0) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "field '%s' has an empty list of values", c.field);
        goto cleanup;
    }
    out->values = cf_calloc(n, sizeof(*out->values));
    if (!out->values) {
        rc = CF_ERR_NOMEM;
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v =
            json_is_array(values) ? json_array_get(values, i) : values;
        rc = build_value(&c, v, placeholders, &out->values[i], used_expand,
                         errstr, errstr_size);
        if (rc != CF_OK) goto cleanup;
        out->n_values++;
    }
    rc = CF_OK;
cleanup:
    if (rc != CF_OK) cf_sigma_field_cond_clear(out);
    return rc;
}
