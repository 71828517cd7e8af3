/*
 * oracle.c - the reference evaluator (see oracle.h).  Used only by tests
 * and bench_detect; one oracle per thread.
 *
 * Every check that decides whether an event value satisfies a pattern is
 * written here from the Sigma specification (../shared/data/
 * sigma-specification/specification, v2.1: sigma-rules-specification.md
 * and sigma-appendix-modifiers.md), as a reader of that text would write
 * it, and not from rules/: the point of the differential test is that the
 * two implementations cannot share a mistake.  Where the specification
 * leaves a question open, the comment at the check says which reading was
 * taken and why, so a difference the test finds can be settled against
 * the text rather than against either implementation.
 *
 * What is shared with the engine, on purpose: the rule AST (the parser
 * applies modifiers and leaves final patterns), the decoder, logsource
 * routing and the field map.
 */
#include "oracle.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "fieldmap.h"
#include "logsource.h"

/* A regex pattern of the rulebook and its compiled form; the table is
 * sorted by pattern address so a pattern finds its code by bsearch. */
struct compiled_regex {
    const struct cf_sigma_pattern *pattern;
    pcre2_code *code;
};

struct cf_oracle {
    const struct cf_rulebook *rb;
    struct cf_fieldmap *fmap;
    struct cf_router *router;
    struct cf_route_cache *route_cache;
    uint32_t *route_of; /* per rule: its route id */
    /* per rule: the route of a source serving its logsource that lacks a
     * field it names (cf_fieldmap_excluded), else UINT32_MAX */
    uint32_t *exclude_of;
    const struct cf_sigma_rule *rule; /* the rule being evaluated */
    bool *unusable;                   /* per rule: a regex PCRE2 rejects */
    size_t n_unusable;
    struct compiled_regex *regexes;
    size_t n_regexes;
    pcre2_match_data *match_data;
    bool out_of_memory; /* a match ran out of memory: its answer is void */
};

/* ---- walking the rule AST ----------------------------------------------- */

/* Calls fn on every pattern of a rule; stops at the first non-zero. */
static int each_pattern(const struct cf_sigma_rule *rule,
                        int (*fn)(const struct cf_sigma_pattern *, void *),
                        void *opaque) {
    for (size_t s = 0; s < rule->n_searches; s++) {
        const struct cf_sigma_search *search = &rule->searches[s];
        for (size_t a = 0; a < search->n_alts; a++) {
            const struct cf_sigma_conjunction *conj = &search->alts[a];
            for (size_t c = 0; c < conj->n_conds; c++) {
                const struct cf_sigma_field_cond *fc = &conj->conds[c];
                for (size_t v = 0; v < fc->n_values; v++)
                    for (size_t k = 0; k < fc->values[v].n_alts; k++) {
                        int rc = fn(&fc->values[v].alts[k], opaque);
                        if (rc) return rc;
                    }
            }
        }
    }
    return 0;
}

struct regex_build {
    struct cf_oracle *o;
    size_t cap;
    bool rule_unusable;
    bool nomem;
};

/* "re: Value is handled as a regular expression ... PCRE", matched
 * case-sensitively unless `i`; `m` makes ^/$ match at line ends; `s` lets
 * the dot match a newline. */
static int compile_one(const struct cf_sigma_pattern *p, void *opaque) {
    struct regex_build *b = opaque;
    if (p->kind != CF_PATTERN_REGEX) return 0;
    uint32_t options = 0;
    if (p->flags & CF_PAT_RE_I) options |= PCRE2_CASELESS;
    if (p->flags & CF_PAT_RE_M) options |= PCRE2_MULTILINE;
    if (p->flags & CF_PAT_RE_S) options |= PCRE2_DOTALL;
    int error;
    PCRE2_SIZE offset;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)p->text, PCRE2_ZERO_TERMINATED,
                                     options, &error, &offset, NULL);
    if (!code) {
        b->rule_unusable = true;
        return 0;
    }
    if (b->o->n_regexes == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct compiled_regex *grown =
            cf_realloc(b->o->regexes, cap * sizeof *grown);
        if (!grown) {
            pcre2_code_free(code);
            b->nomem = true;
            return 1;
        }
        b->o->regexes = grown;
        b->cap = cap;
    }
    b->o->regexes[b->o->n_regexes].pattern = p;
    b->o->regexes[b->o->n_regexes].code = code;
    b->o->n_regexes++;
    return 0;
}

static int by_pattern(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const struct compiled_regex *)a)->pattern;
    uintptr_t y = (uintptr_t)((const struct compiled_regex *)b)->pattern;
    return (x > y) - (x < y);
}

static pcre2_code *regex_of(const struct cf_oracle *o,
                            const struct cf_sigma_pattern *p) {
    struct compiled_regex key = {.pattern = p};
    if (o->n_regexes == 0) return NULL;
    const struct compiled_regex *hit =
        bsearch(&key, o->regexes, o->n_regexes, sizeof *o->regexes, by_pattern);
    return hit ? hit->code : NULL;
}

struct cf_oracle *cf_oracle_new(const struct cf_rulebook *rb,
                                const struct cf_config *cfg, char *errstr,
                                size_t n) {
    struct cf_oracle *o = cf_calloc(1, sizeof *o);
    if (!o) goto nomem;
    o->rb = rb;
    o->fmap = cf_fieldmap_new(
        cfg ? cf_config_section(cfg, "field_mappings") : NULL, errstr, n);
    if (!o->fmap) goto fail;
    o->router = cf_router_new(cfg ? cf_config_section(cfg, "logsources") : NULL,
                              errstr, n);
    if (!o->router) goto fail;
    o->route_of = cf_calloc(rb->n_rules + 1, sizeof *o->route_of);
    o->unusable = cf_calloc(rb->n_rules + 1, sizeof *o->unusable);
    o->exclude_of = cf_calloc(rb->n_rules + 1, sizeof *o->exclude_of);
    if (!o->route_of || !o->unusable || !o->exclude_of) goto nomem;
    for (size_t r = 0; r < rb->n_rules; r++) {
        const struct cf_sigma_rule *rule = rb->rules[r];
        const char *lacking,
            *svc = cf_fieldmap_excluded(o->fmap, rule, &lacking);
        o->route_of[r] = cf_router_add(o->router, rule->product, rule->category,
                                       rule->service);
        if (o->route_of[r] == UINT32_MAX) goto nomem;
        o->exclude_of[r] = UINT32_MAX;
        if (svc && (o->exclude_of[r] = cf_router_add(o->router, rule->product,
                                                     rule->category, svc)) ==
                       UINT32_MAX)
            goto nomem;
    }
    if (cf_router_seal(o->router, errstr, n) != CF_OK) goto fail;
    if (!(o->route_cache = cf_route_cache_new(o->router))) goto nomem;
    struct regex_build build = {.o = o};
    for (size_t r = 0; r < rb->n_rules; r++) {
        build.rule_unusable = false;
        each_pattern(rb->rules[r], compile_one, &build);
        if (build.nomem) goto nomem;
        if (build.rule_unusable) {
            o->unusable[r] = true;
            o->n_unusable++;
        }
    }
    if (o->n_regexes)
        qsort(o->regexes, o->n_regexes, sizeof *o->regexes, by_pattern);
    if (!(o->match_data = pcre2_match_data_create(1, NULL))) goto nomem;
    return o;
nomem:
    cf_seterr(errstr, n, CF_ERR_NOMEM, "oracle: out of memory");
fail:
    cf_oracle_destroy(o);
    return NULL;
}

void cf_oracle_destroy(struct cf_oracle *o) {
    if (!o) return;
    for (size_t i = 0; i < o->n_regexes; i++)
        pcre2_code_free(o->regexes[i].code);
    cf_free(o->regexes);
    pcre2_match_data_free(o->match_data);
    cf_route_cache_destroy(o->route_cache);
    cf_free(o->exclude_of);
    cf_router_destroy(o->router);
    cf_fieldmap_destroy(o->fmap);
    cf_free(o->route_of);
    cf_free(o->unusable);
    cf_free(o);
}

size_t cf_oracle_skipped(const struct cf_oracle *o) {
    return o->n_unusable;
}

/* ---- text helpers ------------------------------------------------------- */

/* "All values are treated as case-insensitive strings": ASCII letters
 * fold, as Sigma backends do for Windows logs; other bytes compare as
 * they are. */
static unsigned char fold(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool same_bytes(const char *a, const char *b, size_t n, bool cased) {
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (cased ? x != y : fold(x) != fold(y)) return false;
    }
    return true;
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Reads a run of decimal digits at s[*i] (at least min, at most max);
 * false when there are fewer than min. */
static bool read_digits(const char *s, size_t n, size_t *i, size_t min,
                        size_t max, unsigned long *out) {
    size_t start = *i;
    unsigned long v = 0;
    while (*i < n && *i - start < max && is_digit(s[*i]))
        v = v * 10 + (unsigned long)(s[(*i)++] - '0');
    *out = v;
    return *i - start >= min;
}

/* ---- wildcards ---------------------------------------------------------- */

/* "*" stands for any run of characters (none included), "?" for exactly
 * one; anything else is itself, without regard to case unless `cased`.
 * The parser has already resolved backslash escapes into wild[] (0 for a
 * literal byte).  Plain backtracking: the oracle is slow on purpose. */
static bool wildcard_from(const struct cf_sigma_pattern *p, size_t pi,
                          const char *s, size_t n, size_t si) {
    bool cased = p->flags & CF_PAT_CASED;
    for (; pi < p->len; pi++, si++) {
        if (p->wild[pi] == '*') {
            while (pi + 1 < p->len && p->wild[pi + 1] == '*') pi++;
            for (size_t k = si; k <= n; k++)
                if (wildcard_from(p, pi + 1, s, n, k)) return true;
            return false;
        }
        if (si == n) return false;
        if (p->wild[pi] == '?') continue;
        if (!same_bytes((const char *)p->text + pi, s + si, 1, cased))
            return false;
    }
    return si == n;
}

/* ---- numbers: lt, lte, gt, gte ------------------------------------------ */

/*
 * "lt: Field is less than the value" and so on: the field's value read as
 * a number.  Recordings carry numbers as JSON numbers or as strings
 * ("4688"), so both count, when the whole text is one decimal number:
 * an optional sign, digits, an optional fraction, an optional exponent.
 * Text with anything else (spaces, hex "0x10", "NaN", a unit) is not a
 * number and compares with nothing.
 */
static bool read_number(const struct cf_event_field *f, double *out) {
    const char *s = f->value;
    size_t n = f->value_len, i = 0;
    unsigned long ignored;
    if (f->type == CF_VALUE_NULL || f->type == CF_VALUE_BOOL) return false;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    if (!read_digits(s, n, &i, 1, SIZE_MAX, &ignored)) return false;
    if (i < n && s[i] == '.') {
        i++;
        if (!read_digits(s, n, &i, 1, SIZE_MAX, &ignored)) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (!read_digits(s, n, &i, 1, SIZE_MAX, &ignored)) return false;
    }
    if (i != n || n > 400) return false;
    /* The grammar is checked above; strtod only does the rounding. */
    char text[401];
    memcpy(text, s, n);
    text[n] = '\0';
    *out = strtod(text, NULL);
    return !isnan(*out);
}

static bool holds(double field, enum cf_compare op, double value) {
    switch (op) {
    case CF_CMP_EQ: return field == value;
    case CF_CMP_NEQ: return field != value;
    case CF_CMP_LT: return field < value;
    case CF_CMP_LTE: return field <= value;
    case CF_CMP_GT: return field > value;
    case CF_CMP_GTE: return field >= value;
    }
    return false;
}

/* ---- cidr --------------------------------------------------------------- */

/* Dotted-quad IPv4: four decimal numbers 0-255. */
static bool read_ipv4(const char *s, size_t n, uint8_t out[4]) {
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        unsigned long v;
        if (part > 0 && (i >= n || s[i++] != '.')) return false;
        if (!read_digits(s, n, &i, 1, 3, &v) || v > 255) return false;
        out[part] = (uint8_t)v;
    }
    return i == n;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*
 * IPv6 in the text forms of RFC 4291 section 2.2: eight groups of one to
 * four hex digits separated by ':', at most one "::" standing for one or
 * more groups of zeros, and optionally a dotted-quad IPv4 address as the
 * last 32 bits.  A zone ("%eth0") or brackets make it not an address.
 */
static bool read_ipv6(const char *s, size_t n, uint8_t out[16]) {
    uint8_t before[16], after[16];
    size_t n_before = 0, n_after = 0, i = 0;
    bool gap = false;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = true;
        i = 2;
    }
    while (i < n) {
        uint8_t *bytes = gap ? after : before;
        size_t *count = gap ? &n_after : &n_before;
        size_t end = i;
        while (end < n && s[end] != ':') end++;
        if (memchr(s + i, '.', end - i)) {
            /* The IPv4 tail must end the address. */
            if (end != n || *count + 4 > 16 ||
                !read_ipv4(s + i, n - i, bytes + *count))
                return false;
            *count += 4;
            i = n;
            break;
        }
        if (end - i < 1 || end - i > 4 || *count + 2 > 16) return false;
        unsigned group = 0;
        for (size_t k = i; k < end; k++) {
            int h = hex_value(s[k]);
            if (h < 0) return false;
            group = group * 16 + (unsigned)h;
        }
        bytes[(*count)++] = (uint8_t)(group >> 8);
        bytes[(*count)++] = (uint8_t)group;
        i = end;
        if (i == n) break;
        i++; /* the ':' */
        if (i < n && s[i] == ':') {
            if (gap) return false;
            gap = true;
            i++;
        } else if (i == n) {
            return false; /* a single trailing ':' */
        }
    }
    size_t total = n_before + n_after;
    if (gap ? total > 14 : total != 16) return false;
    memset(out, 0, 16);
    memcpy(out, before, n_before);
    memcpy(out + 16 - n_after, after, n_after);
    return true;
}

/*
 * "cidr: The value is handled as a CIDR network range specification ...
 * both IPv4 and IPv6": the field holds an address inside the network when
 * its first `prefix` bits are the network's.  An address of the other
 * family is in no network of this one (the specification says nothing of
 * IPv4-mapped IPv6, so "::ffff:10.0.0.1" is not in 10.0.0.0/8).
 */
static bool in_network(const struct cf_sigma_pattern *p,
                       const struct cf_event_field *f) {
    uint8_t addr[16];
    if (f->type != CF_VALUE_STRING) return false;
    bool ok = p->family == 4 ? read_ipv4(f->value, f->value_len, addr)
                             : read_ipv6(f->value, f->value_len, addr);
    if (!ok) return false;
    for (int bit = 0; bit < p->prefix; bit++) {
        unsigned mask = 0x80u >> (bit % 8);
        if ((addr[bit / 8] & mask) != (p->addr[bit / 8] & mask)) return false;
    }
    return true;
}

/* ---- time parts: minute, hour, day, week, month, year ------------------- */

struct date_parts {
    long year;
    unsigned month, day, hour, minute;
    bool has_time;
};

static bool leap(long y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(long y, unsigned m) {
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

/*
 * The time modifiers "can only be applied to date values" and are "not
 * designed to handle timezone or format conversions".  So: the value must
 * be an ISO 8601 date as logs write it, YYYY-MM-DD, optionally followed by
 * 'T' or ' ' and hh:mm, optional :ss and fraction, and an optional zone
 * (Z, +hh:mm, +hhmm, +hh); the parts are read as written, with no
 * conversion to UTC.  Epoch numbers are not dates.  A date without a time
 * has no hour or minute.
 */
static bool read_date(const char *s, size_t n, struct date_parts *d) {
    size_t i = 0;
    unsigned long y, mo, da, h, mi, sec, ignored;
    memset(d, 0, sizeof *d);
    if (!read_digits(s, n, &i, 4, 4, &y) || i >= n || s[i++] != '-' ||
        !read_digits(s, n, &i, 2, 2, &mo) || i >= n || s[i++] != '-' ||
        !read_digits(s, n, &i, 2, 2, &da))
        return false;
    if (mo < 1 || mo > 12 || da < 1 || da > month_days((long)y, (unsigned)mo))
        return false;
    d->year = (long)y;
    d->month = (unsigned)mo;
    d->day = (unsigned)da;
    if (i == n) return true;
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return false;
    i++;
    if (!read_digits(s, n, &i, 2, 2, &h) || i >= n || s[i++] != ':' ||
        !read_digits(s, n, &i, 2, 2, &mi) || h > 23 || mi > 59)
        return false;
    if (i < n && s[i] == ':') {
        i++;
        if (!read_digits(s, n, &i, 2, 2, &sec) || sec > 60) return false;
        if (i < n && (s[i] == '.' || s[i] == ',')) {
            i++;
            if (!read_digits(s, n, &i, 1, SIZE_MAX, &ignored)) return false;
        }
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        unsigned long zh, zm = 0;
        i++;
        if (!read_digits(s, n, &i, 2, 2, &zh) || zh > 23) return false;
        if (i < n && s[i] == ':') i++;
        if (i < n && (!read_digits(s, n, &i, 2, 2, &zm) || zm > 59))
            return false;
    }
    if (i != n) return false;
    d->hour = (unsigned)h;
    d->minute = (unsigned)mi;
    d->has_time = true;
    return true;
}

/* Day of the week, 1 = Monday ... 7 = Sunday (Sakamoto's method). */
static unsigned iso_weekday(long y, unsigned m, unsigned d) {
    static const int t[12] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (m < 3) y--;
    long w = (y + y / 4 - y / 100 + y / 400 + t[m - 1] + (long)d) % 7;
    return w == 0 ? 7 : (unsigned)w; /* Sakamoto gives 0 = Sunday */
}

static unsigned day_of_year(long y, unsigned m, unsigned d) {
    unsigned n = d;
    for (unsigned k = 1; k < m; k++) n += month_days(y, k);
    return n;
}

/* A year has 53 ISO weeks when it starts on a Thursday, or on a
 * Wednesday in a leap year. */
static unsigned iso_weeks_in(long y) {
    unsigned jan1 = iso_weekday(y, 1, 1);
    return jan1 == 4 || (jan1 == 3 && leap(y)) ? 53 : 52;
}

/*
 * "week: number between 1 and 52": the week of the year.  Read as the
 * ISO 8601 week number (weeks start on Monday; week 1 holds the year's
 * first Thursday), the standard meaning of a week number in a date; it
 * is 53 in some years and the first days of January may belong to the
 * last week of the year before.
 */
static unsigned iso_week(const struct date_parts *d) {
    unsigned doy = day_of_year(d->year, d->month, d->day);
    unsigned wd = iso_weekday(d->year, d->month, d->day);
    int week = ((int)doy - (int)wd + 10) / 7;
    if (week < 1) return iso_weeks_in(d->year - 1);
    if ((unsigned)week > iso_weeks_in(d->year)) return 1;
    return (unsigned)week;
}

static bool time_part_holds(const struct cf_sigma_pattern *p,
                            const struct cf_event_field *f) {
    struct date_parts d;
    double part;
    if (f->type != CF_VALUE_STRING || !read_date(f->value, f->value_len, &d))
        return false;
    switch (p->time_part) {
    case CF_TIMEPART_MINUTE:
        if (!d.has_time) return false;
        part = d.minute;
        break;
    case CF_TIMEPART_HOUR:
        if (!d.has_time) return false;
        part = d.hour;
        break;
    case CF_TIMEPART_DAY: part = d.day; break;
    case CF_TIMEPART_WEEK: part = iso_week(&d); break;
    case CF_TIMEPART_MONTH: part = d.month; break;
    case CF_TIMEPART_YEAR: part = (double)d.year; break;
    default: return false;
    }
    return holds(part, p->op, p->number);
}

/* ---- which leaves a field name means ------------------------------------ */

/* The event names a Sigma field is looked up under (the field map). */
struct names {
    const char **v;
    size_t n;
    const char *inline_v[32];
};

/* False (and o->out_of_memory set) when out of memory. */
static bool names_of(struct cf_oracle *o, const char *field,
                     struct names *out) {
    size_t n = 0;
    const char *const *mapped = cf_fieldmap_lookup_for(
        o->fmap, o->rule->product, o->rule->category, field, &n);
    out->v = out->inline_v;
    if (!mapped || n <= 1) {
        /* The field itself (the map answers NULL for a field it has
         * no entry for). */
        out->v[0] = field;
        out->n = 1;
        return true;
    }
    if (n > CF_ARRAY_LEN(out->inline_v) &&
        !(out->v = cf_malloc(n * sizeof *out->v))) {
        o->out_of_memory = true;
        return false;
    }
    memcpy(out->v, mapped, n * sizeof *out->v);
    out->n = n;
    return true;
}

static void names_free(struct names *names) {
    if (names->v != names->inline_v) cf_free(names->v);
}

static bool named(const struct names *names, const struct cf_event_field *f) {
    for (size_t i = 0; i < names->n; i++)
        if (strlen(names->v[i]) == f->name_len &&
            memcmp(names->v[i], f->name, f->name_len) == 0)
            return true;
    return false;
}

/* ---- fieldref ----------------------------------------------------------- */

/*
 * "fieldref: Modifies a plain string into a field reference ... to compare
 * fields of matched events directly": the field's value is compared with
 * the referenced field's value as a plain value would be - equal, or with
 * startswith / endswith / contains the same way round - and, as every
 * Sigma comparison, case-insensitively unless `cased` ("Default Sigma
 * behavior is case-insensitive matching").  A referenced field that is
 * absent, or either side being null (no value), compares with nothing.
 * Where either side repeats (an array), any pair will do.
 */
static bool ref_holds(unsigned flags, const struct cf_event_field *f,
                      const struct cf_event_field *ref) {
    bool cased = flags & CF_PAT_CASED;
    const char *a = f->value, *b = ref->value;
    size_t na = f->value_len, nb = ref->value_len;
    bool start = flags & CF_PAT_REF_START, end = flags & CF_PAT_REF_END;
    if (f->type == CF_VALUE_NULL || ref->type == CF_VALUE_NULL) return false;
    if (start || end)
        return nb <= na && (!start || same_bytes(a, b, nb, cased)) &&
               (!end || same_bytes(a + na - nb, b, nb, cased));
    if (flags & CF_PAT_REF_CONTAINS) {
        for (size_t at = 0; at + nb <= na; at++)
            if (same_bytes(a + at, b, nb, cased)) return true;
        return false;
    }
    return na == nb && same_bytes(a, b, na, cased);
}

static bool ref_matches(struct cf_oracle *o, const struct cf_event *ev,
                        const struct cf_sigma_pattern *p,
                        const struct cf_event_field *f) {
    struct names ref;
    bool hit = false;
    if (!names_of(o, (const char *)p->text, &ref)) return false;
    for (uint32_t i = 0; i < ev->n_fields && !hit; i++)
        hit = named(&ref, &ev->fields[i]) &&
              ref_holds(p->flags, f, &ev->fields[i]);
    names_free(&ref);
    return hit;
}

/* ---- one pattern against one leaf --------------------------------------- */

static bool leaf_matches(struct cf_oracle *o, const struct cf_event *ev,
                         const struct cf_sigma_pattern *p,
                         const struct cf_event_field *f) {
    double x;
    switch (p->kind) {
    case CF_PATTERN_GLOB:
        /* JSON null is no value: a string pattern does not match it
         * (only `field: null` does). */
        return f->type != CF_VALUE_NULL &&
               wildcard_from(p, 0, f->value, f->value_len, 0);
    case CF_PATTERN_REGEX: {
        pcre2_code *code = regex_of(o, p);
        return f->type != CF_VALUE_NULL && code &&
               pcre2_match(code, (PCRE2_SPTR)f->value, f->value_len, 0, 0,
                           o->match_data, NULL) >= 0;
    }
    case CF_PATTERN_NUMBER:
        return read_number(f, &x) && holds(x, p->op, p->number);
    case CF_PATTERN_CIDR: return in_network(p, f);
    case CF_PATTERN_TIMEPART: return time_part_holds(p, f);
    case CF_PATTERN_FIELDREF: return ref_matches(o, ev, p, f);
    case CF_PATTERN_EXISTS:
    case CF_PATTERN_NULL: break; /* whole-field checks, see value_holds */
    }
    return false;
}

/* ---- conditions --------------------------------------------------------- */

/* The leaves one field condition looks at: those the field names, or
 * every leaf for a keyword (field-less) condition. */
struct scope {
    const char *field; /* as the rule writes it; NULL for keywords */
    struct names names;
    bool every_leaf;
};

/* A leaf reached under another name the source serving the rule's
 * logsource gives the field, where that source writes the literal value
 * otherwise (IntegrityLevel High is MandatoryLabel S-1-16-12288 in
 * 4688): the value it writes, compared as the rule compares; -1 when the
 * value is not one the source writes otherwise. */
static int target_value_holds(struct cf_oracle *o, const struct scope *sc,
                              const struct cf_sigma_pattern *p,
                              const struct cf_event_field *f) {
    const char *to;
    if (sc->every_leaf || p->kind != CF_PATTERN_GLOB ||
        strcmp(f->name, sc->field) == 0)
        return -1;
    for (size_t i = 0; i < p->len; i++)
        if (p->wild[i]) return -1;
    to = cf_fieldmap_target_value(o->fmap, f->name, (const char *)p->text,
                                  p->len);
    if (!to) return -1;
    return f->type != CF_VALUE_NULL && strlen(to) == f->value_len &&
           same_bytes(to, f->value, f->value_len, p->flags & CF_PAT_CASED);
}

static bool in_scope(const struct scope *sc, const struct cf_event_field *f) {
    return sc->every_leaf || named(&sc->names, f);
}

/* One value of a field's list: any of its alternatives. */
static bool value_holds(struct cf_oracle *o, const struct cf_event *ev,
                        const struct scope *sc, bool present,
                        const struct cf_sigma_value *v) {
    for (size_t a = 0; a < v->n_alts; a++) {
        const struct cf_sigma_pattern *p = &v->alts[a];
        /* "exists: ... only verifies the presence of a field, not its
         * value, be it empty or null." */
        if (p->kind == CF_PATTERN_EXISTS) {
            if (present == p->exists) return true;
            continue;
        }
        /* `field: null`: the field has no value - absent or JSON null. */
        if (p->kind == CF_PATTERN_NULL && !present) return true;
        for (uint32_t i = 0; i < ev->n_fields; i++) {
            const struct cf_event_field *f = &ev->fields[i];
            if (!in_scope(sc, f)) continue;
            int mapped = target_value_holds(o, sc, p, f);
            if (mapped >= 0) {
                if (mapped) return true;
                continue;
            }
            if (p->kind == CF_PATTERN_NULL ? f->type == CF_VALUE_NULL
                                           : leaf_matches(o, ev, p, f))
                return true;
        }
    }
    return false;
}

/* A map entry `field|modifiers: values`: values are ORed, or ANDed with
 * `all`; `neq` is "the field is different from the specified values", so
 * the field must be there and match none of them. */
static bool field_cond_holds(struct cf_oracle *o, const struct cf_event *ev,
                             const struct cf_sigma_field_cond *fc) {
    struct scope sc = {.field = fc->field, .every_leaf = fc->field == NULL};
    bool present = false, result;
    if (fc->field && !names_of(o, fc->field, &sc.names)) return false;
    for (uint32_t i = 0; i < ev->n_fields && !present; i++)
        present = in_scope(&sc, &ev->fields[i]);
    if (fc->negate) {
        result = present;
        for (size_t v = 0; v < fc->n_values && result; v++)
            result = !value_holds(o, ev, &sc, present, &fc->values[v]);
    } else if (fc->all) {
        result = true;
        for (size_t v = 0; v < fc->n_values && result; v++)
            result = value_holds(o, ev, &sc, present, &fc->values[v]);
    } else {
        result = false;
        for (size_t v = 0; v < fc->n_values && !result; v++)
            result = value_holds(o, ev, &sc, present, &fc->values[v]);
    }
    if (fc->field) names_free(&sc.names);
    return result;
}

/* "All elements of a map are joined with a logical AND"; a list of maps
 * is an OR. */
static bool search_holds(struct cf_oracle *o, const struct cf_event *ev,
                         const struct cf_sigma_search *s) {
    for (size_t a = 0; a < s->n_alts; a++) {
        bool all = true;
        for (size_t c = 0; c < s->alts[a].n_conds && all; c++)
            all = field_cond_holds(o, ev, &s->alts[a].conds[c]);
        if (all) return true;
    }
    return false;
}

static bool condition_holds(struct cf_oracle *o, const struct cf_event *ev,
                            const struct cf_sigma_rule *r,
                            const struct cf_sigma_cond *c) {
    switch (c->op) {
    case CF_COND_TRUE: return true;
    case CF_COND_FALSE: return false;
    case CF_COND_SEARCH:
        return c->search < r->n_searches &&
               search_holds(o, ev, &r->searches[c->search]);
    case CF_COND_NOT:
        return c->n_kids == 1 && !condition_holds(o, ev, r, &c->kids[0]);
    case CF_COND_AND:
        for (uint32_t k = 0; k < c->n_kids; k++)
            if (!condition_holds(o, ev, r, &c->kids[k])) return false;
        return true;
    case CF_COND_OR:
        for (uint32_t k = 0; k < c->n_kids; k++)
            if (condition_holds(o, ev, r, &c->kids[k])) return true;
        return false;
    }
    return false;
}

/* On the events of a source that lacks some of a rule's fields (4688
 * for a process_creation rule naming User, see fieldmap.h) a condition
 * on such a field is neither true nor false: Kleene's strong
 * three-valued logic, 0 false, 1 true, 2 unknown. */
static int known_search(struct cf_oracle *o, const struct cf_event *ev,
                        const struct cf_sigma_search *s) {
    int result = 0;
    for (size_t a = 0; a < s->n_alts; a++) {
        int all = 1;
        for (size_t c = 0; c < s->alts[a].n_conds; c++) {
            const struct cf_sigma_field_cond *fc = &s->alts[a].conds[c];
            int v = cf_fieldmap_cond_lacks(o->fmap, o->rule, fc)
                        ? 2
                        : field_cond_holds(o, ev, fc);
            if (v == 0) all = 0;
            if (v == 2 && all == 1) all = 2;
        }
        if (all == 1) return 1;
        if (all == 2) result = 2;
    }
    return result;
}

static int known_condition(struct cf_oracle *o, const struct cf_event *ev,
                           const struct cf_sigma_cond *c) {
    int v, k;
    switch (c->op) {
    case CF_COND_TRUE: return 1;
    case CF_COND_FALSE: return 0;
    case CF_COND_SEARCH:
        return c->search < o->rule->n_searches
                   ? known_search(o, ev, &o->rule->searches[c->search])
                   : 0;
    case CF_COND_NOT:
        if (c->n_kids != 1) return 0;
        v = known_condition(o, ev, &c->kids[0]);
        return v == 2 ? 2 : !v;
    case CF_COND_AND:
        v = 1;
        for (uint32_t i = 0; i < c->n_kids; i++) {
            k = known_condition(o, ev, &c->kids[i]);
            if (k == 0) return 0;
            if (k == 2) v = 2;
        }
        return v;
    case CF_COND_OR:
        v = 0;
        for (uint32_t i = 0; i < c->n_kids; i++) {
            k = known_condition(o, ev, &c->kids[i]);
            if (k == 1) return 1;
            if (k == 2) v = 2;
        }
        return v;
    }
    return 0;
}

int cf_oracle_match(struct cf_oracle *o, const struct cf_event *ev,
                    void (*fn)(const struct cf_sigma_rule *, void *),
                    void *opaque) {
    const uint64_t *routes = cf_router_route(o->router, o->route_cache, ev);
    int count = 0;
    o->out_of_memory = false;
    for (size_t r = 0; r < o->rb->n_rules; r++) {
        uint32_t route = o->route_of[r], ex = o->exclude_of[r];
        const struct cf_sigma_rule *rule = o->rb->rules[r];
        o->rule = rule;
        if (!(routes[route / 64] >> (route % 64) & 1) || o->unusable[r] ||
            !rule->condition)
            continue;
        if (ex != UINT32_MAX && (routes[ex / 64] >> (ex % 64) & 1)
                ? known_condition(o, ev, rule->condition) != 1
                : !condition_holds(o, ev, rule, rule->condition))
            continue;
        if (o->out_of_memory) return -1;
        count++;
        if (fn) fn(rule, opaque);
    }
    return o->out_of_memory ? -1 : count;
}
