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
 * to itself only.  Targets (fieldmap.h) add, for the rules of one
 * logsource, the names another source gives a field (Security 4688 for
 * process_creation), the values it writes otherwise, and the fields it
 * lacks.  Immutable after cf_fieldmap_new(); thread safe: a
 * lookup writes nothing.
 */
#include "fieldmap.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hash.h"
#include "sigma.h"

struct fm_entry {
    char **names; /* names[0] is the Sigma name itself */
    size_t n_names;
    uint32_t hash;
};

/* One source serving the rules of a logsource (see fieldmap.h), as
 * pySigma's windows_audit_pipeline has it for process_creation:
 * AddCondition EventID 4688 + ChangeLogsource service security, the
 * field mappings of windows_audit_fieldmappings and
 * windows_audit_process_creation_fieldmappings, the IntegrityLevel values
 * of windows_audit_process_creation_integrity_level_values, and the
 * fields of windows_audit_process_creation_unsupported_fields. */
struct fm_value {
    const char *from, *to;
};

struct fm_alias {
    const char *field, *name;
    const struct fm_value *values; /* NULL-terminated; NULL: as written */
};

struct fm_target {
    const char *product, *category, *service;
    const struct fm_alias *aliases; /* NULL-terminated */
    const char *const *unavailable; /* NULL-terminated */
};

static const struct fm_value fm_integrity_sids[] = {
    {"Untrusted", "S-1-16-0"},  {"Low", "S-1-16-4096"},
    {"Medium", "S-1-16-8192"},  {"High", "S-1-16-12288"},
    {"System", "S-1-16-16384"}, {NULL, NULL},
};

static const struct fm_alias fm_audit_4688[] = {
    {"Image", "NewProcessName", NULL},
    {"ParentImage", "ParentProcessName", NULL},
    {"LogonId", "SubjectLogonId", NULL},
    {"IntegrityLevel", "MandatoryLabel", fm_integrity_sids},
    {NULL, NULL, NULL},
};

/* 4688 logs the creator's account (SubjectUserName), not the new
 * process's (Sysmon's User); its ProcessId is the creator's, in hex. */
static const char *const fm_audit_4688_unavailable[] = {
    "OriginalFileName",
    "Description",
    "Product",
    "Company",
    "FileVersion",
    "Hashes",
    "md5",
    "sha1",
    "sha256",
    "Imphash",
    "CurrentDirectory",
    "ParentCommandLine",
    "User",
    "ParentUser",
    "ProcessId",
    "ParentProcessId",
    "ProcessGuid",
    "ParentProcessGuid",
    "LogonGuid",
    "TerminalSessionId",
    NULL,
};

static const struct fm_target fm_targets[] = {
    {"windows", "process_creation", "security", fm_audit_4688,
     fm_audit_4688_unavailable},
};

/* The names of one target alias: the field's own names, then the
 * target's. */
struct fm_scoped {
    const struct fm_target *target;
    const struct fm_alias *alias;
    char **names;
    size_t n_names;
};

struct cf_fieldmap {
    struct fm_scoped *scoped;
    size_t n_scoped;
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

/* After the global aliases (config included) are in: each target alias
 * gets the field's global names plus its own. */
static int build_scoped(struct cf_fieldmap *m) {
    size_t n = 0;
    for (size_t t = 0; t < CF_ARRAY_LEN(fm_targets); t++)
        for (const struct fm_alias *a = fm_targets[t].aliases; a->field; a++)
            n++;
    if (!(m->scoped = cf_calloc(n, sizeof *m->scoped))) return -1;
    for (size_t t = 0; t < CF_ARRAY_LEN(fm_targets); t++)
        for (const struct fm_alias *a = fm_targets[t].aliases; a->field; a++) {
            struct fm_scoped *sc = &m->scoped[m->n_scoped++];
            struct fm_entry e = {NULL, 0, 0};
            size_t k = 0;
            const char *const *g = cf_fieldmap_lookup(m, a->field, &k);
            int rc = add_name(&e, a->field);
            for (size_t i = 0; i < k && !rc; i++) rc = add_name(&e, g[i]);
            if (!rc) rc = add_name(&e, a->name);
            sc->target = &fm_targets[t];
            sc->alias = a;
            sc->names = e.names; /* freed by cf_fieldmap_destroy */
            sc->n_names = e.n_names;
            if (rc) return -1;
        }
    return 0;
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
    if (build_scoped(m)) {
        nomem = true;
        goto fail;
    }
    return m;
fail:
    if (nomem) cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    cf_fieldmap_destroy(m);
    return NULL;
}

void cf_fieldmap_destroy(struct cf_fieldmap *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_scoped; i++) {
        for (size_t j = 0; j < m->scoped[i].n_names; j++)
            cf_free(m->scoped[i].names[j]);
        cf_free(m->scoped[i].names);
    }
    cf_free(m->scoped);
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

/* Logsource parts compare as the router compares them: case ignored. */
static bool same_part(const char *rule_part, const char *target_part) {
    return rule_part && strcasecmp(rule_part, target_part) == 0;
}

const char *const *cf_fieldmap_lookup_for(const struct cf_fieldmap *m,
                                          const char *product,
                                          const char *category,
                                          const char *sigma_field, size_t *n) {
    for (size_t i = 0; i < m->n_scoped; i++) {
        const struct fm_scoped *sc = &m->scoped[i];
        if (same_part(product, sc->target->product) &&
            same_part(category, sc->target->category) &&
            strcmp(sigma_field, sc->alias->field) == 0) {
            *n = sc->n_names;
            return (const char *const *)sc->names;
        }
    }
    return cf_fieldmap_lookup(m, sigma_field, n);
}

const char *cf_fieldmap_target_value(const struct cf_fieldmap *m,
                                     const char *event_name, const char *v,
                                     size_t len) {
    for (size_t i = 0; i < m->n_scoped; i++) {
        const struct fm_alias *a = m->scoped[i].alias;
        if (!a->values || strcmp(a->name, event_name) != 0) continue;
        for (const struct fm_value *x = a->values; x->from; x++)
            if (strlen(x->from) == len && strncasecmp(x->from, v, len) == 0)
                return x->to;
    }
    return NULL;
}

static const char *unavailable_in(const struct fm_target *t,
                                  const char *field) {
    for (const char *const *u = t->unavailable; *u; u++)
        if (strcmp(*u, field) == 0) return *u;
    return NULL;
}

/* The target serving the rule's logsource, if any. */
static const struct fm_target *target_of(const struct cf_sigma_rule *rule) {
    for (size_t t = 0; t < CF_ARRAY_LEN(fm_targets); t++)
        if (same_part(rule->product, fm_targets[t].product) &&
            same_part(rule->category, fm_targets[t].category))
            return &fm_targets[t];
    return NULL;
}

/* The field of `fc`, or one a value of it refers to (|fieldref), that
 * the target lacks; NULL when none. */
static const char *cond_lacking(const struct fm_target *tg,
                                const struct cf_sigma_field_cond *fc) {
    const char *u = fc->field ? unavailable_in(tg, fc->field) : NULL;
    for (size_t v = 0; !u && v < fc->n_values; v++)
        for (size_t k = 0; !u && k < fc->values[v].n_alts; k++) {
            const struct cf_sigma_pattern *p = &fc->values[v].alts[k];
            if (p->kind == CF_PATTERN_FIELDREF)
                u = unavailable_in(tg, (const char *)p->text);
        }
    return u;
}

bool cf_fieldmap_cond_lacks(const struct cf_fieldmap *m,
                            const struct cf_sigma_rule *rule,
                            const struct cf_sigma_field_cond *fc) {
    const struct fm_target *tg = target_of(rule);
    (void)m; /* the targets are built in; the map is where they belong */
    return tg && cond_lacking(tg, fc);
}

const char *cf_fieldmap_excluded(const struct cf_fieldmap *m,
                                 const struct cf_sigma_rule *rule,
                                 const char **field) {
    const struct fm_target *tg = target_of(rule);
    (void)m;
    for (size_t s = 0; tg && s < rule->n_searches; s++)
        for (size_t a = 0; a < rule->searches[s].n_alts; a++) {
            const struct cf_sigma_conjunction *cj = &rule->searches[s].alts[a];
            for (size_t c = 0; c < cj->n_conds; c++)
                if ((*field = cond_lacking(tg, &cj->conds[c])))
                    return tg->service;
        }
    return NULL;
}
