/*
 * sigma_correlation.c - parses Sigma correlation rules (specification
 * v2.1: event_count, value_count, temporal, temporal_ordered, value_sum,
 * value_avg, value_percentile; plus the v2.2 string condition of temporal
 * rules), one document at a time.
 *
 * Called by the rule loader (rules/rulebook.c): cf_correlation_parse() per
 * document with a `correlation` key; the loader resolves references once
 * every file is read.  Evaluation lives in engine/correlate.c.
 *
 * Thread-safety: parsing runs single-threaded at load time;
 * the result is immutable afterwards.
 */
#include "sigma_correlation.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    "event_count", "value_count", "temporal",        "temporal_ordered",
    "value_sum",   "value_avg",   "value_percentile"};

const char *cf_correlation_type_name(enum cf_correlation_type type) {
    if ((size_t)type < CF_ARRAY_LEN(type_names)) return type_names[type];
    return "unknown";
}

static char *dup_str(const char *s) {
    return s ? cf_strdup(s) : NULL;
}

static void free_strv(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) cf_free(v[i]);
    cf_free(v);
}

static void expr_free(struct cf_corr_expr *e) {
    if (!e) return;
    expr_free(e->a);
    expr_free(e->b);
    cf_free(e);
}

void cf_correlation_destroy(struct cf_sigma_correlation *corr) {
    if (!corr) return;
    cf_free(corr->id);
    cf_free(corr->name);
    cf_free(corr->title);
    cf_free(corr->path);
    cf_free(corr->key);
    for (size_t i = 0; i < corr->n_refs; i++) cf_free(corr->refs[i].ref);
    cf_free(corr->refs);
    free_strv(corr->group_by, corr->n_group_by);
    free_strv(corr->group_fields, corr->n_group_by * corr->n_refs);
    free_strv(corr->fields, corr->n_fields);
    free_strv(corr->value_fields, corr->n_fields * corr->n_refs);
    cf_free(corr->criteria);
    expr_free(corr->expr);
    free_strv(corr->tags, corr->n_tags);
    free_strv(corr->tactics, corr->n_tactics);
    free_strv(corr->techniques, corr->n_techniques);
    cf_free(corr);
}

bool cf_correlation_criteria_hold(const struct cf_sigma_correlation *corr,
                                  double v) {
    for (size_t i = 0; i < corr->n_criteria; i++) {
        double t = corr->criteria[i].value;
        bool ok = false;
        switch (corr->criteria[i].op) {
        case CF_CMP_GT: ok = v > t; break;
        case CF_CMP_GTE: ok = v >= t; break;
        case CF_CMP_LT: ok = v < t; break;
        case CF_CMP_LTE: ok = v <= t; break;
        case CF_CMP_EQ: ok = v == t; break;
        case CF_CMP_NEQ: ok = v != t; break;
        }
        if (!ok) return false;
    }
    return true;
}

bool cf_corr_expr_eval(const struct cf_corr_expr *e,
                       const unsigned char *present) {
    switch (e->op) {
    case CF_CEXPR_REF: return present[e->ref] != 0;
    case CF_CEXPR_AND:
        return cf_corr_expr_eval(e->a, present) &&
               cf_corr_expr_eval(e->b, present);
    case CF_CEXPR_OR:
        return cf_corr_expr_eval(e->a, present) ||
               cf_corr_expr_eval(e->b, present);
    case CF_CEXPR_NOT: return !cf_corr_expr_eval(e->a, present);
    }
    return false;
}

/* ---- level and tags ---------------------------------------------------- */

/* Kept local so that parsing does not depend on the rule parser's
 * helpers. */
static int parse_level(const char *s, enum cf_level *level) {
    static const char *const names[] = {"informational", "low", "medium",
                                        "high", "critical"};
    for (size_t i = 0; i < CF_ARRAY_LEN(names); i++) {
        if (strcmp(s, names[i]) == 0) {
            *level = (enum cf_level)i;
            return 0;
        }
    }
    return -1;
}

static int push_str(char ***v, size_t *n, const char *s) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], s) == 0) return 0; /* keep first occurrence */
    char **nv = cf_realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv) return -1;
    *v = nv;
    if (!(nv[*n] = cf_strdup(s))) return -1;
    (*n)++;
    return 0;
}

/* attack.t1059.003 -> technique "T1059.003"; attack.g0001 / s0001 are
 * groups and software; any other attack.<word> is a tactic. */
static int add_attack_tag(struct cf_sigma_correlation *c, const char *tag) {
    if (strncmp(tag, "attack.", 7) != 0) return 0;
    const char *t = tag + 7;
    if ((t[0] == 't' || t[0] == 'T') && isdigit((unsigned char)t[1])) {
        char buf[32];
        size_t n = strlen(t);
        if (n >= sizeof(buf)) return 0;
        for (size_t i = 0; i <= n; i++)
            buf[i] = (char)toupper((unsigned char)t[i]);
        return push_str(&c->techniques, &c->n_techniques, buf);
    }
    if ((t[0] == 'g' || t[0] == 's') && isdigit((unsigned char)t[1])) return 0;
    if (!t[0]) return 0;
    return push_str(&c->tactics, &c->n_tactics, t);
}

/* ---- timespan and condition -------------------------------------------- */

static int parse_timespan(const char *s, int64_t *ms) {
    char *end = NULL;
    if (!isdigit((unsigned char)s[0])) return -1;
    long long n = strtoll(s, &end, 10);
    if (n <= 0 || !end || end[0] == '\0' || end[1] != '\0') return -1;
    int64_t unit;
    switch (end[0]) {
    case 's': unit = 1000; break;
    case 'm': unit = 60 * 1000; break;
    case 'h': unit = 3600 * 1000; break;
    case 'd': unit = 86400 * 1000; break;
    default: return -1;
    }
    if (n > INT64_MAX / unit) return -1;
    *ms = (int64_t)n * unit;
    return 0;
}

static int ref_index(const struct cf_sigma_correlation *c, const char *s,
                     size_t len) {
    for (size_t i = 0; i < c->n_refs; i++)
        if (strlen(c->refs[i].ref) == len &&
            memcmp(c->refs[i].ref, s, len) == 0)
            return (int)i;
    return -1;
}

/* Recursive descent over: or_expr := and_expr ("or" and_expr)*;
 * and_expr := unary ("and" unary)*; unary := "not" unary | "(" or ")" |
 * rule reference. */
struct expr_parser {
    const struct cf_sigma_correlation *c;
    const char *p;
    char *err;
    size_t err_size;
    bool failed;
};

static void skip_ws(struct expr_parser *ep) {
    while (isspace((unsigned char)*ep->p)) ep->p++;
}

static size_t word_len(const char *p) {
    size_t n = 0;
    while (p[n] && !isspace((unsigned char)p[n]) && p[n] != '(' && p[n] != ')')
        n++;
    return n;
}

static bool take_kw(struct expr_parser *ep, const char *kw) {
    skip_ws(ep);
    size_t n = word_len(ep->p), k = strlen(kw);
    if (n == k && strncasecmp(ep->p, kw, k) == 0) {
        ep->p += n;
        return true;
    }
    return false;
}

static struct cf_corr_expr *expr_node(struct expr_parser *ep,
                                      enum cf_corr_expr_op op,
                                      struct cf_corr_expr *a,
                                      struct cf_corr_expr *b) {
    struct cf_corr_expr *e = cf_calloc(1, sizeof(*e));
    if (!e) {
        expr_free(a);
        expr_free(b);
        ep->failed = true;
        cf_seterr(ep->err, ep->err_size, CF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    e->op = op;
    e->a = a;
    e->b = b;
    return e;
}

static struct cf_corr_expr *parse_or(struct expr_parser *ep);

static struct cf_corr_expr *parse_unary(struct expr_parser *ep) {
    if (ep->failed) return NULL;
    if (take_kw(ep, "not")) {
        struct cf_corr_expr *a = parse_unary(ep);
        return a ? expr_node(ep, CF_CEXPR_NOT, a, NULL) : NULL;
    }
    skip_ws(ep);
    if (*ep->p == '(') {
        ep->p++;
        struct cf_corr_expr *a = parse_or(ep);
        if (!a) return NULL;
        skip_ws(ep);
        if (*ep->p != ')') {
            expr_free(a);
            ep->failed = true;
            cf_seterr(ep->err, ep->err_size, CF_ERR_PARSE,
                      "condition: missing ')'");
            return NULL;
        }
        ep->p++;
        return a;
    }
    size_t n = word_len(ep->p);
    if (n == 0) {
        ep->failed = true;
        cf_seterr(ep->err, ep->err_size, CF_ERR_PARSE,
                  "condition: expected a rule name at '%s'", ep->p);
        return NULL;
    }
    int r = ref_index(ep->c, ep->p, n);
    if (r < 0) {
        ep->failed = true;
        cf_seterr(ep->err, ep->err_size, CF_ERR_PARSE,
                  "condition names '%.*s', which is not in `rules`; list it "
                  "there or fix the name",
                  (int)n, ep->p);
        return NULL;
    }
    ep->p += n;
    struct cf_corr_expr *e = expr_node(ep, CF_CEXPR_REF, NULL, NULL);
    if (e) e->ref = (uint32_t)r;
    return e;
}

static struct cf_corr_expr *parse_and(struct expr_parser *ep) {
    struct cf_corr_expr *a = parse_unary(ep);
    while (a && take_kw(ep, "and")) {
        struct cf_corr_expr *b = parse_unary(ep);
        if (!b) {
            expr_free(a);
            return NULL;
        }
        a = expr_node(ep, CF_CEXPR_AND, a, b);
    }
    return a;
}

static struct cf_corr_expr *parse_or(struct expr_parser *ep) {
    struct cf_corr_expr *a = parse_and(ep);
    while (a && take_kw(ep, "or")) {
        struct cf_corr_expr *b = parse_and(ep);
        if (!b) {
            expr_free(a);
            return NULL;
        }
        a = expr_node(ep, CF_CEXPR_OR, a, b);
    }
    return a;
}

static int parse_condition_object(struct cf_sigma_correlation *c,
                                  const json_t *cond, char *errstr,
                                  size_t errstr_size) {
    static const struct {
        const char *name;
        enum cf_compare op;
    } ops[] = {{"gt", CF_CMP_GT},   {"gte", CF_CMP_GTE}, {"lt", CF_CMP_LT},
               {"lte", CF_CMP_LTE}, {"eq", CF_CMP_EQ},   {"neq", CF_CMP_NEQ}};
    const char *key;
    const json_t *val;
    size_t n = json_object_size(cond);
    c->criteria = cf_calloc(n ? n : 1, sizeof(*c->criteria));
    if (!c->criteria) return CF_ERR_NOMEM;
    json_object_foreach((json_t *)cond, key, val) {
        if (strcmp(key, "field") == 0) {
            if (json_is_string(val)) {
                if (push_str(&c->fields, &c->n_fields, json_string_value(val)))
                    return CF_ERR_NOMEM;
            } else if (json_is_array(val) && json_array_size(val) > 0) {
                size_t i;
                const json_t *f;
                json_array_foreach(val, i, f) {
                    if (!json_is_string(f))
                        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                                         "condition.field must list field "
                                         "names (strings)");
                    if (push_str(&c->fields, &c->n_fields,
                                 json_string_value(f)))
                        return CF_ERR_NOMEM;
                }
            } else {
                return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                                 "condition.field must be a field name or a "
                                 "list of field names");
            }
            continue;
        }
        size_t k;
        for (k = 0; k < CF_ARRAY_LEN(ops); k++)
            if (strcmp(key, ops[k].name) == 0) break;
        if (k == CF_ARRAY_LEN(ops))
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "unknown condition operator '%s' (use gt, gte, "
                             "lt, lte, eq, neq or field)",
                             key);
        double v;
        if (json_is_number(val)) {
            v = json_number_value(val);
        } else if (json_is_string(val)) {
            /* YAML-to-JSON may keep quoted numbers as strings */
            char *end = NULL;
            v = strtod(json_string_value(val), &end);
            if (!end || *end || end == json_string_value(val))
                return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                                 "condition.%s must be a number", key);
        } else {
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "condition.%s must be a number", key);
        }
        c->criteria[c->n_criteria].op = ops[k].op;
        c->criteria[c->n_criteria].value = v;
        c->n_criteria++;
    }
    return CF_OK;
}

/* The field of refs[r] for group-by/field name `name`: an alias entry
 * for that rule's reference if there is one, else the name itself. */
static char *alias_field(const json_t *aliases, const char *name,
                         const char *ref) {
    const json_t *al = aliases ? json_object_get(aliases, name) : NULL;
    const json_t *f = al ? json_object_get(al, ref) : NULL;
    return cf_strdup(json_is_string(f) ? json_string_value(f) : name);
}

static int fill_fields(char **names, size_t n_names,
                       const struct cf_sigma_correlation *c,
                       const json_t *aliases, char ***out) {
    *out = cf_calloc(n_names * c->n_refs + 1, sizeof(**out));
    if (!*out) return CF_ERR_NOMEM;
    for (size_t g = 0; g < n_names; g++)
        for (size_t r = 0; r < c->n_refs; r++)
            if (!((*out)[g * c->n_refs + r] =
                      alias_field(aliases, names[g], c->refs[r].ref)))
                return CF_ERR_NOMEM;
    return CF_OK;
}

static bool is_value_type(enum cf_correlation_type t) {
    return t == CF_CORR_VALUE_COUNT || t == CF_CORR_VALUE_SUM ||
           t == CF_CORR_VALUE_AVG || t == CF_CORR_VALUE_PERCENTILE;
}

static bool is_temporal(enum cf_correlation_type t) {
    return t == CF_CORR_TEMPORAL || t == CF_CORR_TEMPORAL_ORDERED;
}

struct cf_sigma_correlation *cf_correlation_parse(const json_t *doc,
                                                  const char *path,
                                                  char *errstr,
                                                  size_t errstr_size) {
    struct cf_sigma_correlation *c = cf_calloc(1, sizeof(*c));
    int rc = CF_OK;
    const json_t *v;
    if (!c) {
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->level = CF_LEVEL_MEDIUM;
    if (!json_is_object(doc)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "a correlation document must be a YAML mapping");
        goto done;
    }
    if (!(c->path = dup_str(path ? path : ""))) goto nomem;
    v = json_object_get(doc, "title");
    if (!json_is_string(v) || !json_string_length(v)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "correlation has no `title` (mandatory)");
        goto done;
    }
    if (!(c->title = cf_strdup(json_string_value(v)))) goto nomem;
    if (json_is_string(v = json_object_get(doc, "id")) &&
        !(c->id = cf_strdup(json_string_value(v))))
        goto nomem;
    if (json_is_string(v = json_object_get(doc, "name")) &&
        !(c->name = cf_strdup(json_string_value(v))))
        goto nomem;
    if (!(c->key = cf_strdup(c->id ? c->id : c->name ? c->name : c->title)))
        goto nomem;
    if ((v = json_object_get(doc, "level")) && !json_is_null(v)) {
        if (!json_is_string(v) ||
            parse_level(json_string_value(v), &c->level)) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                           "unknown level (use informational, low, medium, "
                           "high or critical)");
            goto done;
        }
    }
    if ((v = json_object_get(doc, "tags")) && json_is_array(v)) {
        size_t i;
        const json_t *t;
        json_array_foreach(v, i, t) {
            if (!json_is_string(t)) continue;
            if (push_str(&c->tags, &c->n_tags, json_string_value(t)) ||
                add_attack_tag(c, json_string_value(t)))
                goto nomem;
        }
    }
    if ((v = json_object_get(doc, "generate")) && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                           "`generate` must be true or false");
            goto done;
        }
        c->generate = json_is_true(v);
    }

    const json_t *corr = json_object_get(doc, "correlation");
    if (!json_is_object(corr)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "`correlation` must be a mapping with type, rules, "
                       "group-by, timespan and condition");
        goto done;
    }
    v = json_object_get(corr, "type");
    size_t t;
    for (t = 0; json_is_string(v) && t < CF_ARRAY_LEN(type_names); t++)
        if (strcmp(json_string_value(v), type_names[t]) == 0) break;
    if (!json_is_string(v) || t == CF_ARRAY_LEN(type_names)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "correlation.type must be one of event_count, "
                       "value_count, temporal, temporal_ordered, value_sum, "
                       "value_avg, value_percentile");
        goto done;
    }
    c->type = (enum cf_correlation_type)t;

    v = json_object_get(corr, "rules");
    if (json_is_string(v)) {
        c->refs = cf_calloc(1, sizeof(*c->refs));
        if (!c->refs || !(c->refs[0].ref = cf_strdup(json_string_value(v))))
            goto nomem;
        c->n_refs = 1;
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        c->refs = cf_calloc(json_array_size(v), sizeof(*c->refs));
        if (!c->refs) goto nomem;
        size_t i;
        const json_t *r;
        json_array_foreach(v, i, r) {
            if (!json_is_string(r) || !json_string_length(r)) {
                rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                               "correlation.rules[%zu] must be a rule id or "
                               "name",
                               i);
                goto done;
            }
            if (ref_index(c, json_string_value(r), json_string_length(r)) >=
                0) {
                rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                               "correlation.rules lists '%s' twice",
                               json_string_value(r));
                goto done;
            }
            if (!(c->refs[c->n_refs].ref = cf_strdup(json_string_value(r))))
                goto nomem;
            c->n_refs++;
        }
    } else {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "correlation.rules is mandatory: list the ids or "
                       "names of the rules to correlate");
        goto done;
    }

    v = json_object_get(corr, "timespan");
    if (!json_is_string(v) ||
        parse_timespan(json_string_value(v), &c->timespan_ms)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "correlation.timespan must be a number and a unit "
                       "s, m, h or d (e.g. 90m), got '%s'",
                       json_is_string(v) ? json_string_value(v) : "(missing)");
        goto done;
    }

    const json_t *aliases = json_object_get(corr, "aliases");
    if (aliases && !json_is_null(aliases)) {
        const char *an;
        const json_t *av;
        if (!json_is_object(aliases)) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                           "correlation.aliases must map alias -> {rule "
                           "name: field}");
            goto done;
        }
        json_object_foreach((json_t *)aliases, an, av) {
            const char *rn;
            const json_t *fv;
            if (!json_is_object(av)) {
                rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                               "alias '%s' must map rule names to fields", an);
                goto done;
            }
            json_object_foreach((json_t *)av, rn, fv) {
                if (ref_index(c, rn, strlen(rn)) < 0 || !json_is_string(fv)) {
                    rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                                   "alias '%s' names rule '%s', which is not "
                                   "in correlation.rules (or its field is "
                                   "not a string)",
                                   an, rn);
                    goto done;
                }
            }
        }
    } else {
        aliases = NULL;
    }

    v = json_object_get(corr, "group-by");
    if (json_is_string(v)) {
        if (push_str(&c->group_by, &c->n_group_by, json_string_value(v)))
            goto nomem;
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *g;
        json_array_foreach(v, i, g) {
            if (!json_is_string(g)) {
                rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                               "correlation.group-by must list field names");
                goto done;
            }
            if (push_str(&c->group_by, &c->n_group_by, json_string_value(g)))
                goto nomem;
        }
    } else if (v && !json_is_null(v)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "correlation.group-by must list field names");
        goto done;
    }

    v = json_object_get(corr, "condition");
    if (json_is_object(v)) {
        if ((rc = parse_condition_object(c, v, errstr, errstr_size)))
            goto nomem_or_done; /* NOMEM comes without a message */
    } else if (json_is_string(v)) {
        if (!is_temporal(c->type)) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                           "a string condition is only allowed for temporal "
                           "and temporal_ordered; %s needs e.g. "
                           "`condition: {gte: 10}`",
                           type_names[c->type]);
            goto done;
        }
        struct expr_parser ep = {c, json_string_value(v), errstr, errstr_size,
                                 false};
        c->expr = parse_or(&ep);
        if (!c->expr) {
            rc = CF_ERR_PARSE;
            goto done;
        }
        skip_ws(&ep);
        if (*ep.p) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                           "condition: unexpected '%s' (join rule names with "
                           "and / or / not)",
                           ep.p);
            goto done;
        }
    } else if (v && !json_is_null(v)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "correlation.condition must be a mapping such as "
                       "{gte: 10} (or a rule expression for temporal)");
        goto done;
    } else if (!is_temporal(c->type)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "correlation.condition is mandatory for %s: add e.g. "
                       "`condition: {gte: 10}`",
                       type_names[c->type]);
        goto done;
    }
    /* Older rules put `field` beside the condition. */
    if (!c->n_fields && json_is_string(v = json_object_get(corr, "field")) &&
        push_str(&c->fields, &c->n_fields, json_string_value(v)))
        goto nomem;
    if (is_value_type(c->type)) {
        if (!c->n_fields) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                           "%s needs `field` in its condition (the field "
                           "whose values are aggregated)",
                           type_names[c->type]);
            goto done;
        }
        if (c->type != CF_CORR_VALUE_COUNT && c->n_fields != 1) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                           "%s aggregates exactly one field",
                           type_names[c->type]);
            goto done;
        }
    } else if (c->n_fields) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "condition.field is only meaningful for value_* "
                       "correlations, not %s",
                       type_names[c->type]);
        goto done;
    }
    if (!is_temporal(c->type) && c->n_criteria == 0) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "the condition of %s needs a comparison (gt, gte, lt, "
                       "lte, eq or neq)",
                       type_names[c->type]);
        goto done;
    }
    if (fill_fields(c->group_by, c->n_group_by, c, aliases, &c->group_fields) ||
        fill_fields(c->fields, c->n_fields, c, aliases, &c->value_fields))
        goto nomem;
    goto done;
nomem_or_done:
    if (rc != CF_ERR_NOMEM) goto done;
nomem:
    rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
done:
    if (rc != CF_OK) {
        cf_correlation_destroy(c);
        return NULL;
    }
    return c;
}

/* ---- tags inherited at resolution --------------------------------------- */

cf_err_t cf_correlation_inherit_tags(struct cf_sigma_correlation *c,
                                     char *const *tactics, size_t n_tactics,
                                     char *const *techniques,
                                     size_t n_techniques) {
    for (size_t k = 0; k < n_tactics; k++)
        if (push_str(&c->tactics, &c->n_tactics, tactics[k]))
            return CF_ERR_NOMEM;
    for (size_t k = 0; k < n_techniques; k++)
        if (push_str(&c->techniques, &c->n_techniques, techniques[k]))
            return CF_ERR_NOMEM;
    return CF_OK;
}
