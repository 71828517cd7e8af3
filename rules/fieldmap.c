/*
 * fieldmap.c - Sigma field names to the event field names to look up.
 *
 * Built once by the rule compiler (ruleset.c) and the test oracle from
 * the built-in aliases plus the `field_mappings` config section:
 *
 *   field_mappings:
 *     Image: [process.executable]     # list or a single string
 *     CommandLine: process.command_line
 *
 * Each Sigma field maps to itself first, then the built-in aliases, then
 * the configured names (duplicates dropped).  A field with no entry maps
 * to itself only.  Immutable after cf_fieldmap_new(); thread safe: a
 * lookup writes nothing.
 */
#include "fieldmap.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

struct fm_entry {
    char **names; /* names[0] is the Sigma name itself */
    size_t n_names;
    uint32_t hash;
};

struct cf_fieldmap {
    struct fm_entry *entries;
    size_t n_entries, cap_entries;
    uint32_t *slots; /* entry index + 1; open addressing, rebuilt on growth */
    uint32_t mask;
};

/* Aliases the shipped data needs: OTRF's flat Windows events name the
 * host Hostname and the provider SourceName; Azure Sentinel exports name
 * them Computer and Provider / EventSourceName. */
static const char *const fm_defaults[][4] = {
    {"Computer", "Hostname", NULL, NULL},
    {"Hostname", "Computer", NULL, NULL},
    {"ComputerName", "Computer", "Hostname", NULL},
    {"Provider_Name", "SourceName", "Provider", "EventSourceName"},
};

static int rebuild_slots(struct cf_fieldmap *m) {
    uint32_t size = 16;
    while (size < m->n_entries * 2 + 1) size *= 2;
    uint32_t *slots = cf_calloc(size, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < m->n_entries; i++) {
        uint32_t s = m->entries[i].hash & (size - 1);
        while (slots[s]) s = (s + 1) & (size - 1);
        slots[s] = (uint32_t)i + 1;
    }
    cf_free(m->slots);
    m->slots = slots;
    m->mask = size - 1;
    return 0;
}

static struct fm_entry *find(const struct cf_fieldmap *m, const char *name,
                             uint32_t h) {
    if (!m->slots) return NULL;
    for (uint32_t s = h & m->mask, idx; (idx = m->slots[s]) != 0;
         s = (s + 1) & m->mask) {
        struct fm_entry *e = &m->entries[idx - 1];
        if (e->hash == h && strcmp(e->names[0], name) == 0) return e;
    }
    return NULL;
}

static int add_name(struct fm_entry *e, const char *name) {
    for (size_t i = 0; i < e->n_names; i++)
        if (strcmp(e->names[i], name) == 0) return 0;
    char **n = cf_realloc(e->names, (e->n_names + 1) * sizeof *n);
    if (!n) return -1;
    e->names = n;
    if (!(n[e->n_names] = cf_strdup(name))) return -1;
    e->n_names++;
    return 0;
}

static int add_alias(struct cf_fieldmap *m, const char *field,
                     const char *alias) {
    uint32_t h = cf_hash_name(field, strlen(field));
    struct fm_entry *e = find(m, field, h);
    if (!e) {
        if (m->n_entries == m->cap_entries) {
            size_t cap = m->cap_entries ? m->cap_entries * 2 : 16;
            struct fm_entry *n = cf_realloc(m->entries, cap * sizeof *n);
            if (!n) return -1;
            m->entries = n;
            m->cap_entries = cap;
        }
        e = &m->entries[m->n_entries];
        memset(e, 0, sizeof *e);
        e->hash = h;
        if (add_name(e, field)) {
            cf_free(e->names);
            return -1;
        }
        m->n_entries++;
        if (rebuild_slots(m)) return -1;
        e = &m->entries[m->n_entries - 1];
    }
    return add_name(e, alias);
}

struct cf_fieldmap *cf_fieldmap_new(const struct json_t *section, char *errstr,
                                    size_t errstr_size) {
    bool nomem = false;
    struct cf_fieldmap *m = cf_calloc(1, sizeof *m);
    if (!m) {
        nomem = true;
        goto fail;
    }
    for (size_t i = 0; i < CF_ARRAY_LEN(fm_defaults); i++)
        for (size_t j = 1; j < 4 && fm_defaults[i][j]; j++)
            if (add_alias(m, fm_defaults[i][0], fm_defaults[i][j])) {
                nomem = true;
                goto fail;
            }
    if (section) {
        if (!json_is_object(section)) {
            cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                      "field_mappings: expected a map of Sigma field: event "
                      "field name (or list of names)");
            goto fail;
        }
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)section, key, v) {
            size_t n = json_is_array(v) ? json_array_size(v) : 1;
            for (size_t i = 0; i < n; i++) {
                const json_t *one = json_is_array(v) ? json_array_get(v, i) : v;
                if (!json_is_string(one) || json_string_length(one) == 0) {
                    cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                              "field_mappings: %s: names must be non-empty "
                              "strings, e.g. %s: [process.executable]",
                              key, key);
                    goto fail;
                }
                if (add_alias(m, key, json_string_value(one))) {
                    nomem = true;
                    goto fail;
                }
            }
        }
    }
    return m;
fail:
    if (nomem) cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    cf_fieldmap_destroy(m);
    return NULL;
}

void cf_fieldmap_destroy(struct cf_fieldmap *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_entries; i++) {
        for (size_t j = 0; j < m->entries[i].n_names; j++)
            cf_free(m->entries[i].names[j]);
        cf_free(m->entries[i].names);
    }
    cf_free(m->entries);
    cf_free(m->slots);
    cf_free(m);
}

const char *const *cf_fieldmap_lookup(const struct cf_fieldmap *m,
                                      const char *sigma_field, size_t *n) {
    const struct fm_entry *e =
        find(m, sigma_field, cf_hash_name(sigma_field, strlen(sigma_field)));
    if (!e) {
        /* No entry: the field maps to itself, which the caller has.  The
         * map is immutable and shared, so it has nowhere of its own to
         * put a one-element answer. */
        *n = 0;
        return NULL;
    }
    *n = e->n_names;
    return (const char *const *)e->names;
}
