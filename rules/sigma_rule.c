/*
 * sigma_rule.c - one Sigma detection-rule document (already converted to
 * jansson by yaml_json.c) to a struct cf_sigma_rule: metadata, tags,
 * ATT&CK tactics/techniques, level, logsource, searches and condition.
 *
 * Called by rulebook.c (rules and filters) at load time; no shared state.
 */
#include "buf.h"
#include "sigma_condition.h"
#include "sigma_modifiers.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static const char *const level_names[] = {"informational", "low", "medium",
                                          "high", "critical"};

const char *cf_level_name(enum cf_level level) {
    if ((unsigned)level >= CF_ARRAY_LEN(level_names)) return "unknown";
    return level_names[level];
}

int cf_level_parse(const char *name, enum cf_level *level) {
    if (!name) return -1;
    for (size_t i = 0; i < CF_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *level = (enum cf_level)i;
            return 0;
        }
    }
    return -1;
}

cf_err_t cf_sigma_sha256_hex(const void *data, size_t len, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) ||
        md_len != 32) {
        /* SHA-256 over bytes in memory only fails for lack of memory:
         * no rule is rejected for that (see cf_rulebook_load) */
        hex[0] = '\0';
        return CF_ERR_NOMEM;
    }
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < md_len; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return CF_OK;
}

/* Frees searches[from..n) and the array. */
static void free_searches_from(struct cf_sigma_search *searches, size_t from,
                               size_t n) {
    if (!searches) return;
    for (size_t i = from; i < n; i++) {
        struct cf_sigma_search *s = &searches[i];
        for (size_t j = 0; j < s->n_alts; j++) {
            for (size_t k = 0; k < s->alts[j].n_conds; k++)
                cf_sigma_field_cond_clear(&s->alts[j].conds[k]);
            cf_free(s->alts[j].conds);
        }
        cf_free(s->alts);
        cf_free(s->name);
    }
    cf_free(searches);
}

void cf_sigma_searches_free(struct cf_sigma_search *searches, size_t n) {
    free_searches_from(searches, 0, n);
}

/* One selection map to a conjunction. */
static cf_err_t build_conjunction(const char *search, const json_t *map,
                                  const json_t *placeholders,
                                  struct cf_sigma_conjunction *out,
                                  bool *used_expand, char *errstr,
                                  size_t errstr_size) {
    char reason[512] = "out of memory";
    cf_err_t rc = CF_OK;
    size_t n = json_object_size(map);
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "search '%s' is an empty map", search);
    out->conds = cf_calloc(n, sizeof(*out->conds));
    if (!out->conds) return CF_ERR_NOMEM;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)map, key, val) {
        rc = cf_sigma_field_cond_build(key, val, placeholders,
                                       &out->conds[out->n_conds], used_expand,
                                       reason, sizeof(reason));
        if (rc != CF_OK) {
            /* The placeholder message is already complete and is what
             * operators grep for; everything else gets the search name. */
            if (strncmp(reason, "placeholder %", 13) == 0)
                cf_seterr(errstr, errstr_size, rc, "%s", reason);
            else
                cf_seterr(errstr, errstr_size, rc, "search '%s': %s", search,
                          rc == CF_ERR_NOMEM ? "out of memory" : reason);
            break;
        }
        out->n_conds++;
    }
    return rc;
}

/* A keyword search (one value or a list): one conjunction holding one
 * field-less condition. */
static cf_err_t build_keywords(const char *name, const json_t *def,
                               const json_t *placeholders,
                               struct cf_sigma_search *out, bool *used_expand,
                               char *errstr, size_t errstr_size) {
    char reason[512] = "out of memory";
    out->alts = cf_calloc(1, sizeof(*out->alts));
    if (!out->alts) return CF_ERR_NOMEM;
    out->n_alts = 1;
    out->alts[0].conds = cf_calloc(1, sizeof(*out->alts[0].conds));
    if (!out->alts[0].conds) return CF_ERR_NOMEM;
    cf_err_t rc = cf_sigma_field_cond_build(NULL, def, placeholders,
                                            &out->alts[0].conds[0], used_expand,
                                            reason, sizeof(reason));
    if (rc == CF_OK)
        out->alts[0].n_conds = 1;
    else
        cf_seterr(errstr, errstr_size, rc, "search '%s': %s", name, reason);
    return rc;
}

/* A search: a map (AND), a list of maps (OR), or a list of plain values
 * (keywords). */
static cf_err_t build_search(const char *name, const json_t *def,
                             const json_t *placeholders,
                             struct cf_sigma_search *out, bool *used_expand,
                             char *errstr, size_t errstr_size) {
    cf_err_t rc = CF_OK;
    if (json_is_object(def)) {
        out->alts = cf_calloc(1, sizeof(*out->alts));
        if (!out->alts) return CF_ERR_NOMEM;
        rc = build_conjunction(name, def, placeholders, &out->alts[0],
                               used_expand, errstr, errstr_size);
        out->n_alts = 1;
        return rc;
    }
    if (!json_is_array(def)) {
        if (json_is_string(def) || json_is_number(def)) /* one keyword */
            return build_keywords(name, def, placeholders, out, used_expand,
                                  errstr, errstr_size);
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "search '%s' must be a map, a list of maps or a "
                         "list of keywords",
                         name);
    }
    size_t n = json_array_size(def), n_maps = 0;
    if (n == 0)
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "search '%s' is an empty list", name);
    for (size_t i = 0; i < n; i++)
        if (json_is_object(json_array_get(def, i))) n_maps++;
    if (n_maps != 0 && n_maps != n)
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "search '%s' mixes maps and plain keywords in one "
                         "list; split it into two searches",
                         name);
    if (n_maps == 0)
        return build_keywords(name, def, placeholders, out, used_expand, errstr,
                              errstr_size);
    out->alts = cf_calloc(n, sizeof(*out->alts));
    if (!out->alts) return CF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        out->n_alts++;
        rc = build_conjunction(name, json_array_get(def, i), placeholders,
                               &out->alts[i], used_expand, errstr, errstr_size);
        if (rc != CF_OK) break;
    }
    return rc;
}

static bool in_list(const char *key, const char *const *list) {
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0) return true;
    return false;
}

/* Why cf_sigma_condition_parse returned NULL. */
static cf_err_t condition_error(const char *errstr) {
    return errstr && strcmp(errstr, "out of memory") == 0 ? CF_ERR_NOMEM
                                                          : CF_ERR_PARSE;
}

cf_err_t
cf_sigma_detection_parse(const json_t *detection, const char *const *skip_keys,
                         const char *name_prefix, const json_t *placeholders,
                         struct cf_sigma_search **searches, size_t *n_searches,
                         struct cf_sigma_cond **cond, bool *used_expand,
                         char *errstr, size_t errstr_size) {
    cf_err_t rc = CF_ERR_PARSE;
    struct cf_sigma_search *ss = NULL;
    size_t n = 0;
    const char **names = NULL;
    struct cf_sigma_cond *root = NULL;
    *searches = NULL;
    *n_searches = 0;
    *cond = NULL;
    if (!json_is_object(detection)) {
        cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                  "detection must be a map of searches and a condition");
        goto cleanup;
    }
    const json_t *condition = json_object_get(detection, "condition");
    if (!condition) {
        cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                  "detection has no condition");
        goto cleanup;
    }
    size_t cap = json_object_size(detection);
    ss = cf_calloc(cap ? cap : 1, sizeof(*ss));
    names = cf_calloc(cap ? cap : 1, sizeof(*names));
    if (!ss || !names) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)detection, key, val) {
        if (strcmp(key, "condition") == 0 || strcmp(key, "timeframe") == 0 ||
            in_list(key, skip_keys))
            continue;
        struct cf_sigma_search *s = &ss[n];
        names[n] = key;
        n++;
        if (name_prefix) {
            size_t len = strlen(name_prefix) + strlen(key) + 1;
            s->name = cf_malloc(len);
            if (s->name) snprintf(s->name, len, "%s%s", name_prefix, key);
        } else {
            s->name = cf_strdup(key);
        }
        if (!s->name) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
        rc = build_search(key, val, placeholders, s, used_expand, errstr,
                          errstr_size);
        if (rc != CF_OK) goto cleanup;
    }
    if (json_is_string(condition)) {
        root = cf_sigma_condition_parse(json_string_value(condition), names, n,
                                        errstr, errstr_size);
    } else if (json_is_array(condition) && json_array_size(condition) > 0) {
        /* A list of conditions is their OR. */
        root = cf_calloc(1, sizeof(*root));
        size_t nc = json_array_size(condition);
        if (root) {
            root->op = CF_COND_OR;
            root->kids = cf_calloc(nc, sizeof(*root->kids));
        }
        if (!root || !root->kids) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
        for (size_t i = 0; i < nc; i++) {
            const json_t *c = json_array_get(condition, i);
            if (!json_is_string(c)) {
                rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                               "condition list item %zu is not a string", i);
                goto cleanup;
            }
            struct cf_sigma_cond *one = cf_sigma_condition_parse(
                json_string_value(c), names, n, errstr, errstr_size);
            if (!one) {
                rc = condition_error(errstr);
                goto cleanup;
            }
            root->kids[root->n_kids++] = *one;
            cf_free(one);
        }
        if (root->n_kids == 1) {
            struct cf_sigma_cond *only = root->kids;
            cf_free(root);
            root = only;
        }
    } else {
        cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                  "condition must be a string or a list of strings");
        goto cleanup;
    }
    if (!root) {
        rc = condition_error(errstr);
        goto cleanup;
    }
    *searches = ss;
    *n_searches = n;
    *cond = root;
    ss = NULL;
    root = NULL;
    rc = CF_OK;
cleanup:
    cf_sigma_searches_free(ss, n);
    cf_sigma_cond_destroy(root);
    cf_free(names);
    return rc;
}

/* NULL when the key is absent, or with *nomem set when the copy
 * failed (a rule must not load without the id or logsource it has). */
static char *dup_string(const json_t *doc, const char *key, bool *nomem) {
    const json_t *v = json_object_get(doc, key);
    char *s = NULL;
    if (json_is_string(v)) {
        s = cf_strdup(json_string_value(v));
    } else if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        s = cf_strdup(buf);
    } else {
        return NULL;
    }
    if (!s) *nomem = true;
    return s;
}

static char *dup_lower(const json_t *obj, const char *key, bool *nomem) {
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) return NULL;
    char *s = cf_strdup(json_string_value(v));
    if (!s) *nomem = true;
    for (char *p = s; p && *p; p++) *p = (char)tolower((unsigned char)*p);
    return s;
}

static const char *const tactic_names[] = {
    "reconnaissance",  "resource-development",
    "initial-access",  "execution",
    "persistence",     "privilege-escalation",
    "defense-evasion", "credential-access",
    "discovery",       "lateral-movement",
    "collection",      "command-and-control",
    "exfiltration",    "impact",
    "stealth",         "defense-impairment"};

/* "attack.t1003.001" -> "T1003.001"; NULL if not a technique tag. */
static bool technique_of(const char *tag, char *out, size_t size) {
    const char *t = tag + 7; /* after "attack." */
    if ((t[0] != 't' && t[0] != 'T')) return false;
    size_t i = 1;
    while (i < 5 && isdigit((unsigned char)t[i])) i++;
    if (i != 5) return false;
    if (t[5] == '.') {
        if (!(isdigit((unsigned char)t[6]) && isdigit((unsigned char)t[7]) &&
              isdigit((unsigned char)t[8]) && t[9] == '\0'))
            return false;
    } else if (t[5] != '\0') {
        return false;
    }
    snprintf(out, size, "T%s", t + 1);
    return true;
}

static int push_str(char ***arr, size_t *n, const char *s) {
    char **a = cf_realloc(*arr, (*n + 1) * sizeof(*a));
    if (!a) return -1;
    *arr = a;
    a[*n] = cf_strdup(s);
    if (!a[*n]) return -1;
    (*n)++;
    return 0;
}

static cf_err_t parse_tags(struct cf_sigma_rule *r, const json_t *tags,
                           char *errstr, size_t errstr_size) {
    if (!tags) return CF_OK;
    if (!json_is_array(tags))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "tags must be a list of strings");
    size_t i;
    const json_t *t;
    json_array_foreach(tags, i, t) {
        if (!json_is_string(t)) continue; /* tolerated: not ours to police */
        const char *tag = json_string_value(t);
        if (push_str(&r->tags, &r->n_tags, tag) != 0) return CF_ERR_NOMEM;
        if (strncasecmp(tag, "attack.", 7) != 0) continue;
        char tech[32];
        if (technique_of(tag, tech, sizeof(tech))) {
            if (push_str(&r->techniques, &r->n_techniques, tech) != 0)
                return CF_ERR_NOMEM;
            continue;
        }
        for (size_t k = 0; k < CF_ARRAY_LEN(tactic_names); k++) {
            if (strcasecmp(tag + 7, tactic_names[k]) == 0) {
                if (push_str(&r->tactics, &r->n_tactics, tactic_names[k]) != 0)
                    return CF_ERR_NOMEM;
                break;
            }
        }
    }
    return CF_OK;
}

static void free_strv(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) cf_free(v[i]);
    cf_free(v);
}

void cf_sigma_rule_destroy(struct cf_sigma_rule *r) {
    if (!r) return;
    if (r->packed) {
        /* The rest lies in the rulebook's blocks (sigma.h). */
        free_searches_from(r->searches, r->n_packed, r->n_searches);
        cf_sigma_cond_destroy(r->condition);
        cf_free(r);
        return;
    }
    cf_free(r->id);
    cf_free(r->name);
    cf_free(r->title);
    cf_free(r->path);
    cf_free(r->description);
    cf_free(r->status);
    free_strv(r->tags, r->n_tags);
    free_strv(r->tactics, r->n_tactics);
    free_strv(r->techniques, r->n_techniques);
    cf_free(r->product);
    cf_free(r->category);
    cf_free(r->service);
    cf_sigma_searches_free(r->searches, r->n_searches);
    cf_sigma_cond_destroy(r->condition);
    cf_free(r);
}

/* Sorted, compact JSON text (cf_buf_json, not json_dumps, which can
 * return a corrupt text when an allocation fails); NULL out of memory. */
static char *dump_canonical(const json_t *v) {
    struct cf_buf b = CF_BUF_INIT;
    cf_buf_json(&b, v, JSON_SORT_KEYS | JSON_COMPACT);
    return cf_buf_steal(&b);
}

struct cf_sigma_rule *cf_sigma_rule_parse(const json_t *doc, const char *path,
                                          const json_t *placeholders,
                                          char *errstr, size_t errstr_size) {
    struct cf_sigma_rule *r = cf_calloc(1, sizeof(*r));
    char *canon = NULL;
    cf_err_t rc = CF_ERR_NOMEM;
    bool used_expand = false, nomem = false;
    if (!r) goto cleanup;
    r->id = dup_string(doc, "id", &nomem);
    r->name = dup_string(doc, "name", &nomem);
    r->title = dup_string(doc, "title", &nomem);
    r->description = dup_string(doc, "description", &nomem);
    r->status = dup_string(doc, "status", &nomem);
    r->path = path ? cf_strdup(path) : NULL;
    if (nomem || (path && !r->path)) goto cleanup;
    r->level = CF_LEVEL_MEDIUM;
    const json_t *level = json_object_get(doc, "level");
    if (level && !json_is_null(level) &&
        (!json_is_string(level) ||
         cf_level_parse(json_string_value(level), &r->level) != 0)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "unknown level '%s'; use informational, low, medium, "
                       "high or critical",
                       json_is_string(level) ? json_string_value(level)
                                             : "(not a string)");
        goto cleanup;
    }
    const json_t *ls = json_object_get(doc, "logsource");
    if (ls && !json_is_object(ls)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "logsource must be a map (product/category/service)");
        goto cleanup;
    }
    if (ls) {
        r->product = dup_lower(ls, "product", &nomem);
        r->category = dup_lower(ls, "category", &nomem);
        r->service = dup_lower(ls, "service", &nomem);
        if (nomem) goto cleanup; /* rc is still CF_ERR_NOMEM */
    }
    rc = parse_tags(r, json_object_get(doc, "tags"), errstr, errstr_size);
    if (rc != CF_OK) goto cleanup;
    rc = cf_sigma_detection_parse(json_object_get(doc, "detection"), NULL, NULL,
                                  placeholders, &r->searches, &r->n_searches,
                                  &r->condition, &used_expand, errstr,
                                  errstr_size);
    if (rc != CF_OK) goto cleanup;
    /* The digest keys the compile cache, so it covers everything the
     * patterns depend on: the document and, for |expand, the configured
     * placeholder values. */
    canon = dump_canonical(doc);
    if (!canon) {
        rc = CF_ERR_NOMEM;
        goto cleanup;
    }
    if (used_expand && placeholders) {
        char *ph = dump_canonical(placeholders);
        size_t a = strlen(canon), b = ph ? strlen(ph) : 0;
        char *both = ph ? cf_malloc(a + b + 2) : NULL;
        if (both) {
            memcpy(both, canon, a);
            both[a] = '\n';
            memcpy(both + a + 1, ph, b + 1);
        }
        cf_free(ph);
        if (!both) {
            rc = CF_ERR_NOMEM;
            goto cleanup;
        }
        cf_free(canon);
        canon = both;
    }
    rc = cf_sigma_sha256_hex(canon, strlen(canon), r->digest);
    if (rc != CF_OK)
        cf_seterr(errstr, errstr_size, rc, "cannot compute SHA-256 digest");
cleanup:
    cf_free(canon);
    if (rc != CF_OK) {
        if (rc == CF_ERR_NOMEM)
            cf_seterr(errstr, errstr_size, rc, "out of memory");
        cf_sigma_rule_destroy(r);
        r = NULL;
    }
    return r;
}
