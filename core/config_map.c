/*
 * config_map.c - parsing, defaults and the Markdown reference from the
 * key tables (see config_map.h; the tables are in config.c).
 */
#include "config_map.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

#define MS_SECOND 1000LL
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)

static const struct {
    const char *name;
    int64_t ms;
} duration_units[] = {{"ms", 1},        {"s", MS_SECOND},   {"", MS_SECOND},
                      {"m", MS_MINUTE}, {"min", MS_MINUTE}, {"h", MS_HOUR},
                      {"d", MS_DAY}};

static const struct {
    const char *name;
    int64_t bytes;
} size_units[] = {{"", 1},
                  {"B", 1},
                  {"KiB", 1LL << 10},
                  {"MiB", 1LL << 20},
                  {"GiB", 1LL << 30}};

static void release_strmap(struct cf_strmap *m) {
    for (size_t j = 0; j < m->n; j++) {
        cf_free(m->key[j]);
        cf_free(m->value[j]);
    }
    cf_free(m->key);
    cf_free(m->value);
    memset(m, 0, sizeof *m);
}

/* What a value of each type looks like, for "must be ..." messages. */
static const char *type_wanted(enum cf_config_type t) {
    switch (t) {
    case CF_CONFIG_BOOL: return "true or false";
    case CF_CONFIG_INT: return "an integer";
    case CF_CONFIG_SIZE:
        return "a size in bytes (an integer, or \"64KiB\", \"1MiB\", "
               "\"1GiB\")";
    case CF_CONFIG_DURATION:
        return "a duration such as \"30s\", \"15m\", \"24h\" or \"7d\" (a "
               "bare number is seconds)";
    case CF_CONFIG_STRING: return "a string";
    case CF_CONFIG_STRLIST: return "a list of strings";
    case CF_CONFIG_STRMAP: return "a mapping of names to strings";
    case CF_CONFIG_OFFSETS:
        return "`auto`, or a mapping of host name to an offset such as "
               "\"-7h\" or \"5.5h\", or `auto`";
    }
    return "?";
}

/* The type's name in the reference. */
static const char *type_name(enum cf_config_type t) {
    switch (t) {
    case CF_CONFIG_BOOL: return "bool";
    case CF_CONFIG_INT: return "integer";
    case CF_CONFIG_SIZE: return "size";
    case CF_CONFIG_DURATION: return "duration";
    case CF_CONFIG_STRING: return "string";
    case CF_CONFIG_STRLIST: return "list of strings";
    case CF_CONFIG_STRMAP: return "mapping of strings";
    case CF_CONFIG_OFFSETS: return "`auto` or mapping of host to duration";
    }
    return "?";
}

/* A short rendering of what was found instead, for messages. */
static void describe(const json_t *v, char *buf, size_t size) {
    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(buf, size, "\"%.40s\"", json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL: snprintf(buf, size, "%g", json_real_value(v)); break;
    case JSON_TRUE: snprintf(buf, size, "true"); break;
    case JSON_FALSE: snprintf(buf, size, "false"); break;
    case JSON_NULL: snprintf(buf, size, "empty"); break;
    case JSON_ARRAY: snprintf(buf, size, "a list"); break;
    case JSON_OBJECT: snprintf(buf, size, "a mapping"); break;
    }
}

static void format_size(int64_t bytes, char buf[32]) {
    for (size_t i = CF_ARRAY_LEN(size_units); i-- > 2;)
        if (bytes != 0 && bytes % size_units[i].bytes == 0) {
            snprintf(buf, 32, "%lld%s",
                     (long long)(bytes / size_units[i].bytes),
                     size_units[i].name);
            return;
        }
    snprintf(buf, 32, "%lld", (long long)bytes);
}

static void format_value(enum cf_config_type t, int64_t v, char buf[32]) {
    if (t == CF_CONFIG_DURATION || t == CF_CONFIG_OFFSETS)
        cf_duration_format(v, buf);
    else if (t == CF_CONFIG_SIZE)
        format_size(v, buf);
    else
        snprintf(buf, 32, "%lld", (long long)v);
}

/* "12.5" followed by a unit: the number and where the unit starts.  A
 * strict grammar (no sign, exponent, hex, inf or nan, which strtod would
 * take) so that what is accepted is what the reference describes. */
static bool split_number(const char *s, double *n, const char **unit) {
    const char *p = s;
    size_t digits = strspn(p, "0123456789");
    if (!digits) return false;
    p += digits;
    if (*p == '.') {
        size_t frac = strspn(p + 1, "0123456789");
        if (!frac) return false;
        p += 1 + frac;
    }
    char *end;
    errno = 0;
    *n = strtod(s, &end);
    if (end != p) return false;
    *unit = p;
    return true; /* huge values come back as HUGE_VAL: out of range */
}

/* The value of one key as an int64 in the type's unit, or a message. */
static bool parse_number(const struct cf_config_key *k, const json_t *v,
                         int64_t *out, char *why, size_t why_size) {
    char found[64];
    describe(v, found, sizeof found);
    if (k->type == CF_CONFIG_INT) {
        if (!json_is_integer(v)) {
            snprintf(why, why_size, "must be %s, not %s", type_wanted(k->type),
                     found);
            return false;
        }
        *out = json_integer_value(v);
        return true;
    }
    double n, unit = 0;
    const char *u = NULL;
    bool negative = false;
    if (json_is_integer(v)) {
        negative = json_integer_value(v) < 0;
        n = (double)json_integer_value(v);
        u = "";
    } else if (json_is_real(v) && k->type == CF_CONFIG_DURATION &&
               isfinite(json_real_value(v))) {
        negative = json_real_value(v) < 0;
        n = json_real_value(v);
        u = "";
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        negative = s[0] == '-';
        /* a size is whole bytes */
        if (!split_number(s + negative, &n, &u) ||
            (k->type == CF_CONFIG_SIZE && strchr(s, '.')))
            u = NULL;
    }
    if (u) {
        if (k->type == CF_CONFIG_DURATION) {
            for (size_t i = 0; i < CF_ARRAY_LEN(duration_units); i++)
                if (strcmp(u, duration_units[i].name) == 0)
                    unit = (double)duration_units[i].ms;
        } else {
            for (size_t i = 0; i < CF_ARRAY_LEN(size_units); i++)
                if (strcmp(u, size_units[i].name) == 0)
                    unit = (double)size_units[i].bytes;
        }
    }
    if (!u || unit == 0) {
        snprintf(why, why_size, "must be %s, not %s", type_wanted(k->type),
                 found);
        return false;
    }
    if (negative && k->min >= 0) {
        snprintf(why, why_size, "must not be negative (%s)", found);
        return false;
    }
    if (negative && json_is_string(v)) n = -n; /* numbers carry their sign */
    /* Compared as a double before converting, so that a value past
     * int64 (9223372036854775 s, "99999999999999999999d") is reported
     * as out of range rather than wrapping. */
    double total = n * unit;
    if (!(total <= (double)k->max) || total >= 9.2e18 || total <= -9.2e18) {
        char max[32];
        format_value(k->type, k->max, max);
        snprintf(why, why_size, "must be at most %s, not %s", max, found);
        return false;
    }
    *out = (int64_t)llround(total);
    return true;
}

static void offsets_free(struct cf_clock_offsets *o) {
    for (size_t i = 0; i < o->n; i++) cf_free(o->v[i].host);
    cf_free(o->v);
    memset(o, 0, sizeof *o);
}

static bool is_auto(const json_t *v) {
    return json_is_string(v) && strcmp(json_string_value(v), "auto") == 0;
}

/* `auto`, or {host: duration or auto}: each duration read as one of
 * type DURATION within the key's bounds. */
static cf_err_t set_offsets(const struct cf_config_key *k, const json_t *v,
                            void *base, char *why, size_t why_size) {
    struct cf_clock_offsets o = {0};
    struct cf_config_key dk = *k;
    const char *host;
    const json_t *item;
    char found[64];
    dk.type = CF_CONFIG_DURATION;
    if (is_auto(v)) {
        o.learn_all = true;
    } else if (json_is_object(v)) {
        o.v = cf_calloc(json_object_size(v) + 1, sizeof *o.v);
        if (!o.v) return CF_ERR_NOMEM;
        json_object_foreach((json_t *)v, host, item) {
            struct cf_clock_offset *e = &o.v[o.n];
            if (is_auto(item)) {
                e->learn = true;
            } else {
                char sub[200];
                if (!parse_number(&dk, item, &e->ms, sub, sizeof sub) ||
                    e->ms < k->min || e->ms > k->max) {
                    char lo[32], hi[32];
                    cf_duration_format(k->min, lo);
                    cf_duration_format(k->max, hi);
                    describe(item, found, sizeof found);
                    snprintf(why, why_size,
                             "%s: must be `auto` or an offset from %s to %s "
                             "such as \"-7h\", not %s",
                             host, lo, hi, found);
                    offsets_free(&o);
                    return CF_ERR;
                }
            }
            if (!(e->host = cf_strdup(host))) {
                offsets_free(&o);
                return CF_ERR_NOMEM;
            }
            o.n++;
        }
    } else {
        describe(v, found, sizeof found);
        snprintf(why, why_size, "must be %s, not %s", type_wanted(k->type),
                 found);
        return CF_ERR;
    }
    struct cf_clock_offsets *slot =
        (struct cf_clock_offsets *)(void *)((char *)base + k->offset);
    offsets_free(slot);
    *slot = o;
    return CF_OK;
}

static void store(void *base, const struct cf_config_key *k, const void *v,
                  size_t n) {
    memcpy((char *)base + k->offset, v, n);
}

/* Parses `v` into the field of `k`; a reason in `why` on failure. */
static cf_err_t set_value(const struct cf_config_key *k, const json_t *v,
                          void *base, char *why, size_t why_size) {
    char found[64];
    describe(v, found, sizeof found);
    switch (k->type) {
    case CF_CONFIG_BOOL: {
        if (!json_is_boolean(v)) {
            snprintf(why, why_size, "must be true or false, not %s", found);
            return CF_ERR;
        }
        bool b = json_is_true(v);
        store(base, k, &b, sizeof b);
        return CF_OK;
    }
    case CF_CONFIG_INT:
    case CF_CONFIG_SIZE:
    case CF_CONFIG_DURATION: {
        int64_t n;
        if (!parse_number(k, v, &n, why, why_size)) return CF_ERR;
        char bound[32];
        if (n < k->min) {
            format_value(k->type, k->min, bound);
            snprintf(why, why_size, "must be at least %s, not %s", bound,
                     found);
            return CF_ERR;
        }
        if (n > k->max) {
            format_value(k->type, k->max, bound);
            snprintf(why, why_size, "must be at most %s, not %s", bound, found);
            return CF_ERR;
        }
        if (k->type == CF_CONFIG_SIZE) {
            size_t z = (size_t)n;
            store(base, k, &z, sizeof z);
        } else if (k->size == sizeof(int32_t)) {
            int32_t i = (int32_t)n; /* the table's range keeps it in int32 */
            store(base, k, &i, sizeof i);
        } else {
            store(base, k, &n, sizeof n);
        }
        return CF_OK;
    }
    case CF_CONFIG_STRING: {
        if (!json_is_string(v)) {
            snprintf(why, why_size, "must be a string, not %s", found);
            return CF_ERR;
        }
        char *s = cf_strdup(json_string_value(v));
        if (!s) return CF_ERR_NOMEM;
        char **slot = (char **)(void *)((char *)base + k->offset);
        cf_free(*slot);
        *slot = s;
        return CF_OK;
    }
    case CF_CONFIG_STRLIST: {
        size_t i;
        const json_t *item;
        if (!json_is_array(v)) {
            snprintf(why, why_size,
                     "must be a list of strings such as [a, "
                     "b], not %s",
                     found);
            return CF_ERR;
        }
        json_array_foreach(v, i, item) {
            if (!json_is_string(item)) {
                describe(item, found, sizeof found);
                snprintf(why, why_size, "must list strings; item %zu is %s", i,
                         found);
                return CF_ERR;
            }
        }
        struct cf_strlist l = {
            cf_calloc(json_array_size(v) + 1, sizeof(char *)), 0};
        if (!l.v) return CF_ERR_NOMEM;
        json_array_foreach(v, i, item) {
            if (!(l.v[l.n] = cf_strdup(json_string_value(item)))) break;
            l.n++;
        }
        struct cf_strlist *slot =
            (struct cf_strlist *)(void *)((char *)base + k->offset);
        if (l.n != json_array_size(v)) {
            for (size_t j = 0; j < l.n; j++) cf_free(l.v[j]);
            cf_free(l.v);
            return CF_ERR_NOMEM;
        }
        for (size_t j = 0; j < slot->n; j++) cf_free(slot->v[j]);
        cf_free(slot->v);
        *slot = l;
        return CF_OK;
    }
    case CF_CONFIG_STRMAP: {
        const char *name;
        const json_t *item;
        if (!json_is_object(v)) {
            snprintf(why, why_size, "must be a mapping such as {A: b}, not %s",
                     found);
            return CF_ERR;
        }
        json_object_foreach((json_t *)v, name, item) {
            if (!json_is_string(item)) {
                describe(item, found, sizeof found);
                snprintf(why, why_size, "%.80s must be a string, not %s", name,
                         found);
                return CF_ERR;
            }
        }
        size_t n = json_object_size(v);
        struct cf_strmap m = {cf_calloc(n + 1, sizeof(char *)),
                              cf_calloc(n + 1, sizeof(char *)), 0};
        cf_err_t rc = m.key && m.value ? CF_OK : CF_ERR_NOMEM;
        json_object_foreach((json_t *)v, name, item) {
            if (rc != CF_OK) break;
            m.key[m.n] = cf_strdup(name);
            m.value[m.n] = cf_strdup(json_string_value(item));
            m.n++;
            if (!m.key[m.n - 1] || !m.value[m.n - 1]) rc = CF_ERR_NOMEM;
        }
        struct cf_strmap *slot =
            (struct cf_strmap *)(void *)((char *)base + k->offset);
        if (rc == CF_OK)
            release_strmap(slot);
        else
            release_strmap(&m);
        if (rc == CF_OK) *slot = m;
        return rc;
    }
    case CF_CONFIG_OFFSETS: return set_offsets(k, v, base, why, why_size);
    }
    return CF_ERR;
}

cf_err_t cf_config_map_defaults(const struct cf_config_section_def *sec,
                                void *base, char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < sec->n_keys; i++) {
        const struct cf_config_key *k = &sec->keys[i];
        char why[256];
        json_t *v = NULL;
        if (!k->def) continue;
        switch (k->type) {
        case CF_CONFIG_BOOL:
            v = strcmp(k->def, "true") == 0 ? json_true() : json_false();
            break;
        case CF_CONFIG_INT: v = json_integer(strtoll(k->def, NULL, 10)); break;
        case CF_CONFIG_STRLIST:
        case CF_CONFIG_STRMAP: v = json_loads(k->def, 0, NULL); break;
        default: v = json_string(k->def); break;
        }
        if (!v)
            return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                             "out of memory");
        cf_err_t rc = set_value(k, v, base, why, sizeof why);
        json_decref(v);
        if (rc == CF_ERR_NOMEM)
            return cf_seterr(errstr, errstr_size, rc, "out of memory");
        if (rc)
            return cf_seterr(errstr, errstr_size, rc,
                             "built-in default of %s.%s: %s", sec->name,
                             k->name, why);
    }
    return CF_OK;
}

cf_err_t cf_config_map_parse(const struct cf_config_section_def *sec,
                             const json_t *obj, void *base, const char *origin,
                             char *errstr, size_t errstr_size) {
    const char *key;
    const json_t *v;
    char why[320];
    if (!obj || json_is_null(obj)) return CF_OK; /* every key commented out */
    if (!json_is_object(obj)) {
        describe(obj, why, sizeof why);
        return cf_seterr(errstr, errstr_size, CF_ERR,
                         "%s: %s: must be a mapping of keys (see `chainfuse "
                         "config --reference`), not %s",
                         origin, sec->name, why);
    }
    json_object_foreach((json_t *)obj, key, v) {
        const struct cf_config_key *k = NULL;
        for (size_t i = 0; i < sec->n_keys && !k; i++)
            if (strcmp(sec->keys[i].name, key) == 0) k = &sec->keys[i];
        if (!k) {
            const char *names[64];
            size_t n = 0;
            for (size_t i = 0; i < sec->n_keys && n + 1 < CF_ARRAY_LEN(names);
                 i++)
                names[n++] = sec->keys[i].name;
            names[n] = NULL;
            const char *near = cf_config_map_nearest(key, names);
            /* a typo must not silently fall back to a default */
            if (near)
                return cf_seterr(errstr, errstr_size, CF_ERR,
                                 "%s: %s.%s: unknown key (did you mean '%s'?)",
                                 origin, sec->name, key, near);
            struct cf_buf known = CF_BUF_INIT;
            for (size_t i = 0; names[i]; i++)
                cf_buf_printf(&known, "%s%s", i ? ", " : "", names[i]);
            cf_seterr(errstr, errstr_size, CF_ERR,
                      "%s: %s.%s: unknown key (known: %s)", origin, sec->name,
                      key, known.data ? known.data : "none");
            cf_buf_free(&known);
            return CF_ERR;
        }
        cf_err_t rc = set_value(k, v, base, why, sizeof why);
        if (rc == CF_ERR_NOMEM)
            return cf_seterr(errstr, errstr_size, rc, "out of memory");
        if (rc)
            return cf_seterr(errstr, errstr_size, rc, "%s: %s.%s: %s", origin,
                             sec->name, key, why);
    }
    return CF_OK;
}

cf_err_t cf_config_map_split(const struct cf_config_section_def *sec,
                             const json_t *obj, const char *origin,
                             const char *where, json_t **known, json_t **rest,
                             char *errstr, size_t errstr_size) {
    const char *key;
    json_t *v;
    const char *names[64];
    size_t n = 0;
    cf_err_t rc = CF_ERR;
    *known = json_object();
    *rest = json_object();
    if (!*known || !*rest) goto nomem;
    for (size_t i = 0; i < sec->n_keys && n + 1 < CF_ARRAY_LEN(names); i++)
        names[n++] = sec->keys[i].name;
    names[n] = NULL;
    json_object_foreach((json_t *)obj, key, v) {
        bool is_known = false;
        for (size_t i = 0; names[i] && !is_known; i++)
            is_known = strcmp(names[i], key) == 0;
        const char *near = is_known ? NULL : cf_config_map_nearest(key, names);
        if (near) {
            cf_seterr(errstr, errstr_size, CF_ERR,
                      "%s: %s.%s: unknown key (did you mean '%s'?)", origin,
                      where, key, near);
            goto fail;
        }
        if (json_object_set(is_known ? *known : *rest, key, v)) goto nomem;
    }
    return CF_OK;
nomem:
    rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
fail:
    json_decref(*known);
    json_decref(*rest);
    *known = *rest = NULL;
    return rc;
}

void cf_config_map_release(const struct cf_config_section_def *sec,
                           void *base) {
    for (size_t i = 0; i < sec->n_keys; i++) {
        const struct cf_config_key *k = &sec->keys[i];
        void *slot = (char *)base + k->offset;
        if (k->type == CF_CONFIG_STRING) {
            char **s = slot;
            cf_free(*s);
            *s = NULL;
        } else if (k->type == CF_CONFIG_STRLIST) {
            struct cf_strlist *l = slot;
            for (size_t j = 0; j < l->n; j++) cf_free(l->v[j]);
            cf_free(l->v);
            l->v = NULL;
            l->n = 0;
        } else if (k->type == CF_CONFIG_STRMAP) {
            release_strmap(slot);
        } else if (k->type == CF_CONFIG_OFFSETS) {
            offsets_free(slot);
        }
    }
}

const char *cf_config_map_nearest(const char *word, const char *const *names) {
    size_t wl = strlen(word), best = SIZE_MAX;
    const char *found = NULL;
    if (wl >= 64) return NULL;
    for (; *names; names++) {
        size_t nl = strlen(*names), prev[65], cur[65];
        if (nl >= 64) continue;
        /* Levenshtein distance, two rows */
        for (size_t j = 0; j <= nl; j++) prev[j] = j;
        for (size_t i = 1; i <= wl; i++) {
            cur[0] = i;
            for (size_t j = 1; j <= nl; j++) {
                size_t sub = prev[j - 1] + (word[i - 1] != (*names)[j - 1]);
                size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
                cur[j] = sub < del ? (sub < ins ? sub : ins)
                                   : (del < ins ? del : ins);
            }
            memcpy(prev, cur, (nl + 1) * sizeof *prev);
        }
        if (prev[nl] < best) {
            best = prev[nl];
            found = *names;
        }
    }
    return found && best <= 2 && best * 2 < wl ? found : NULL;
}

/* Appends `s` for a Markdown table cell ('|' would end the cell). */
static void cell(struct cf_buf *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|') cf_buf_putc(out, '\\');
        cf_buf_putc(out, *s);
    }
}

static void key_range(const struct cf_config_key *k, struct cf_buf *out) {
    char lo[32], hi[32];
    if (k->type != CF_CONFIG_INT && k->type != CF_CONFIG_SIZE &&
        k->type != CF_CONFIG_DURATION && k->type != CF_CONFIG_OFFSETS)
        return;
    format_value(k->type, k->min, lo);
    format_value(k->type, k->max, hi);
    if (k->max == INT64_MAX)
        cf_buf_printf(out, ">= %s", lo);
    else
        cf_buf_printf(out, "%s .. %s", lo, hi);
}

void cf_config_map_reference(const struct cf_config_section_def *secs, size_t n,
                             struct cf_buf *out) {
    bool any_free = false;
    for (size_t s = 0; s < n; s++) {
        const struct cf_config_section_def *sec = &secs[s];
        if (!sec->keys) {
            any_free = true;
            continue;
        }
        cf_buf_printf(out, "#### `%s`\n\n%s\n\n", sec->name, sec->help);
        cf_buf_puts(out, "| key | type | default | range | description |\n"
                         "| --- | --- | --- | --- | --- |\n");
        for (size_t i = 0; i < sec->n_keys; i++) {
            const struct cf_config_key *k = &sec->keys[i];
            cf_buf_printf(out, "| `%s` | %s | ", k->name, type_name(k->type));
            if (k->def_doc)
                cell(out, k->def_doc);
            else if (k->def)
                cf_buf_printf(out, "`%s`", k->def);
            else
                cf_buf_puts(out, "none");
            cf_buf_puts(out, " | ");
            key_range(k, out);
            cf_buf_puts(out, " | ");
            cell(out, k->help);
            cf_buf_puts(out, " |\n");
        }
        cf_buf_putc(out, '\n');
    }
    if (!any_free) return;
    cf_buf_puts(out, "#### Sections with their own format\n\n"
                     "| section | shape | description | parsed in |\n"
                     "| --- | --- | --- | --- |\n");
    for (size_t s = 0; s < n; s++) {
        const struct cf_config_section_def *sec = &secs[s];
        if (sec->keys) continue;
        cf_buf_printf(out, "| `%s` | %s | ", sec->name,
                      sec->shape == CF_CONFIG_LIST ? "list" : "mapping");
        cell(out, sec->help);
        cf_buf_printf(out, " | `%s` |\n", sec->owner ? sec->owner : "");
    }
}
