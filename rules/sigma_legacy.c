/*
 * sigma_legacy.c - Sigma 1.x aggregations to correlations (see
 * sigma_legacy.h).  Called by the rule loader for every detection rule;
 * the documents it builds go through the ordinary rule and correlation
 * parsers, so a converted rule is checked exactly as a written one.
 */
#include "sigma_legacy.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

enum agg_kind { AGG_COUNT, AGG_SUM, AGG_AVG, AGG_NEAR };

/* The parsed right-hand side of `expr | ...`. */
struct agg {
    enum agg_kind kind;
    char func[8];
    char field[256];    /* count(F), sum(F), avg(F); "" for count() */
    char group_by[256]; /* "" without `by` */
    const char *op;     /* correlation operator: gt, gte, ... */
    double value;
    const char *near; /* near: the expression after `near` */
};

static const char *skip_space(const char *p) {
    while (isspace((unsigned char)*p)) p++;
    return p;
}

/* A field name: anything up to a space, parenthesis or comparison. */
static size_t name_len(const char *p) {
    size_t n = 0;
    while (p[n] && !isspace((unsigned char)p[n]) && !strchr("()<>=!", p[n]))
        n++;
    return n;
}

static bool take_word(const char **p, const char *word) {
    const char *s = skip_space(*p);
    size_t n = strlen(word);
    if (strncasecmp(s, word, n) != 0 || isalnum((unsigned char)s[n]) ||
        s[n] == '_')
        return false;
    *p = s + n;
    return true;
}

static bool copy_name(const char **p, char *out, size_t size) {
    const char *s = skip_space(*p);
    size_t n = name_len(s);
    if (n == 0 || n >= size) return false;
    memcpy(out, s, n);
    out[n] = '\0';
    *p = s + n;
    return true;
}

static cf_err_t parse_agg(const char *text, const char *agg_text, struct agg *a,
                          char *errstr, size_t errstr_size) {
    static const struct {
        const char *text, *op;
    } ops[] = {{">=", "gte"}, {"<=", "lte"}, {"==", "eq"}, {"!=", "neq"},
               {">", "gt"},   {"<", "lt"},   {"=", "eq"}};
    const char *p = agg_text;
    size_t n;

    memset(a, 0, sizeof *a);
    if (take_word(&p, "near")) {
        a->kind = AGG_NEAR;
        a->near = skip_space(p);
        if (!*a->near)
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "condition '%s': `near` names no search", text);
        return CF_OK;
    }
    p = skip_space(p);
    for (n = 0; isalpha((unsigned char)p[n]) && n + 1 < sizeof a->func; n++)
        a->func[n] = (char)tolower((unsigned char)p[n]);
    a->func[n] = '\0';
    if (isalpha((unsigned char)p[n]) || skip_space(p + n)[0] != '(')
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "condition '%s': '%s' is not an aggregation "
                         "(count(), sum(), avg() or near)",
                         text, agg_text);
    if (strcmp(a->func, "min") == 0 || strcmp(a->func, "max") == 0)
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "condition '%s': %s() has no Sigma correlation "
                         "equivalent (correlations count events or distinct "
                         "values, or sum or average a field; none takes a "
                         "minimum or maximum)",
                         text, a->func);
    if (strcmp(a->func, "count") == 0)
        a->kind = AGG_COUNT;
    else if (strcmp(a->func, "sum") == 0)
        a->kind = AGG_SUM;
    else if (strcmp(a->func, "avg") == 0)
        a->kind = AGG_AVG;
    else
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "condition '%s': unknown aggregation %s() (count, "
                         "sum and avg have a correlation equivalent)",
                         text, a->func);
    p = skip_space(p + n) + 1; /* past '(' */
    if (*skip_space(p) != ')' && !copy_name(&p, a->field, sizeof a->field))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "condition '%s': bad field in %s()", text, a->func);
    p = skip_space(p);
    if (*p != ')')
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "condition '%s': %s( takes one field and a ')'", text,
                         a->func);
    p++;
    if (a->kind != AGG_COUNT && !a->field[0])
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "condition '%s': %s() needs the field it %s", text,
                         a->func, a->kind == AGG_SUM ? "sums" : "averages");
    if (take_word(&p, "by") && !copy_name(&p, a->group_by, sizeof a->group_by))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "condition '%s': `by` names no field", text);
    p = skip_space(p);
    for (n = 0; n < CF_ARRAY_LEN(ops); n++)
        if (strncmp(p, ops[n].text, strlen(ops[n].text)) == 0) break;
    if (n == CF_ARRAY_LEN(ops))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "condition '%s': the aggregation needs a comparison "
                         "such as '> 10' (one of > >= < <= = !=)",
                         text);
    a->op = ops[n].op;
    p = skip_space(p + strlen(ops[n].text));
    char *end = NULL;
    a->value = strtod(p, &end);
    if (end == p || *skip_space(end))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "condition '%s': the comparison needs a number, "
                         "got '%s'",
                         text, p);
    return CF_OK;
}

/* The correlation's timespan, as the correlation parser reads it: a
 * whole number and one of s, m, h, d. */
static bool timeframe_ok(const char *s) {
    size_t n = 0;
    while (isdigit((unsigned char)s[n])) n++;
    return n > 0 && strtoll(s, NULL, 10) > 0 && s[n] && strchr("smhd", s[n]) &&
           s[n + 1] == '\0';
}

/* A base rule: the document with `condition` as its condition, no
 * timeframe, and its own id. */
static json_t *base_doc(const json_t *doc, const char *id, const char *title,
                        const char *condition) {
    json_t *d = json_deep_copy(doc);
    json_t *det = d ? json_object_get(d, "detection") : NULL;
    if (!det || json_object_set_new(d, "id", json_string(id)) ||
        json_object_set_new(d, "title", json_string(title)) ||
        json_object_set_new(det, "condition", json_string(condition))) {
        json_decref(d);
        return NULL;
    }
    json_object_del(d, "name"); /* the correlation answers to it */
    json_object_del(det, "timeframe");
    return d;
}

/* One blank between words of the expression being built. */
static void separate(struct cf_buf *out) {
    if (out->len && out->data[out->len - 1] != '(' &&
        out->data[out->len - 1] != ' ')
        cf_buf_putc(out, ' ');
}

/* Appends to `out` the near expression with each search name replaced by
 * its base rule id, and adds one base rule per distinct search. */
static cf_err_t near_refs(const json_t *doc, const char *text, const char *key,
                          const char *title, const char *near, json_t *docs,
                          json_t *refs, struct cf_buf *out, char *errstr,
                          size_t errstr_size) {
    const json_t *det = json_object_get(doc, "detection");
    const char *p = near;
    struct cf_buf id = CF_BUF_INIT, t = CF_BUF_INIT;
    cf_err_t rc = CF_OK;

    while (*(p = skip_space(p)) && rc == CF_OK) {
        size_t n = name_len(p);
        if (*p == '(' || *p == ')') {
            if (*p == '(') separate(out);
            cf_buf_putc(out, *p++);
            continue;
        }
        if (n == 0) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                           "condition '%s': unexpected '%c' after near", text,
                           *p);
            break;
        }
        if ((n == 3 && (strncasecmp(p, "and", 3) == 0 ||
                        strncasecmp(p, "not", 3) == 0)) ||
            (n == 2 && strncasecmp(p, "or", 2) == 0)) {
            separate(out);
            cf_buf_printf(out, "%.*s", (int)n, p);
            p += n;
            continue;
        }
        cf_buf_reset(&id);
        cf_buf_printf(&id, "%s/%.*s", key, (int)n, p);
        cf_buf_reset(&t);
        cf_buf_printf(&t, "%s (near: %.*s)", title, (int)n, p);
        if (id.failed || t.failed) {
            rc = CF_ERR_NOMEM;
            break;
        }
        char *search = id.data + strlen(key) + 1;
        if (strcmp(search, "condition") == 0 ||
            strcmp(search, "timeframe") == 0 || !json_object_get(det, search)) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                           "condition '%s': near names '%s', which is not a "
                           "search of this detection",
                           text, search);
            break;
        }
        bool seen = false;
        for (size_t i = 0; i < json_array_size(refs); i++)
            if (strcmp(json_string_value(json_array_get(refs, i)), id.data) ==
                0)
                seen = true;
        if (!seen) {
            json_t *b = base_doc(doc, id.data, t.data, search);
            if (!b || json_array_append_new(docs, b) ||
                json_array_append_new(refs, json_string(id.data)))
                rc = CF_ERR_NOMEM;
        }
        separate(out);
        cf_buf_puts(out, id.data);
        p += n;
    }
    cf_buf_free(&id);
    cf_buf_free(&t);
    if (rc == CF_ERR_NOMEM)
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    return rc;
}

static const char *type_of(enum agg_kind kind, const struct agg *a) {
    switch (kind) {
    case AGG_COUNT: return a->field[0] ? "value_count" : "event_count";
    case AGG_SUM: return "value_sum";
    case AGG_AVG: return "value_avg";
    case AGG_NEAR: return "temporal";
    }
    return "event_count";
}

cf_err_t cf_legacy_aggregation_convert(const json_t *doc, json_t **docs_out,
                                       char *note, size_t note_size,
                                       char *errstr, size_t errstr_size) {
    const json_t *det = json_object_get(doc, "detection");
    const json_t *cond = json_object_get(det, "condition");
    const json_t *tf = json_object_get(det, "timeframe");
    struct cf_buf key = CF_BUF_INIT, expr = CF_BUF_INIT, left = CF_BUF_INIT,
                  t = CF_BUF_INIT;
    json_t *docs = NULL, *refs = NULL, *corr = NULL, *body = NULL, *c = NULL;
    struct agg a;
    cf_err_t rc = CF_ERR_NOMEM;

    *docs_out = NULL;
    if (json_is_array(cond)) {
        size_t i;
        const json_t *one;
        json_array_foreach(cond, i, one) {
            if (json_is_string(one) && strchr(json_string_value(one), '|'))
                return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                                 "condition list item '%s' has an "
                                 "aggregation: a list of conditions has no "
                                 "single correlation equivalent; write the "
                                 "aggregation as the only condition",
                                 json_string_value(one));
        }
        return CF_OK;
    }
    if (!json_is_string(cond) || !strchr(json_string_value(cond), '|'))
        return CF_OK;
    const char *text = json_string_value(cond), *bar = strchr(text, '|');
    if (strchr(bar + 1, '|'))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "condition '%s': more than one '|' aggregation has "
                         "no correlation equivalent",
                         text);
    cf_buf_append(&left, text, (size_t)(bar - text));
    while (left.len && isspace((unsigned char)left.data[left.len - 1]))
        left.data[--left.len] = '\0';
    if (left.failed) goto done;
    if (!left.len || !*skip_space(left.data)) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "condition '%s': nothing before the '|' to aggregate",
                       text);
        goto done;
    }
    if ((rc = parse_agg(text, skip_space(bar + 1), &a, errstr, errstr_size)))
        goto done;
    if (!json_is_string(tf) || !timeframe_ok(json_string_value(tf))) {
        rc = cf_seterr(
            errstr, errstr_size, CF_ERR_PARSE,
            tf ? "condition '%s': the aggregation's timeframe must be a "
                 "number and a unit s, m, h or d (e.g. 15m), got '%s'"
               : "condition '%s': the aggregation has no `timeframe` in the "
                 "detection; the correlation it becomes counts within one "
                 "(add e.g. timeframe: 5m)%s",
            text, json_is_string(tf) ? json_string_value(tf) : "");
        goto done;
    }
    rc = CF_ERR_NOMEM;
    /* What the base rules' ids start with: the rule's id, else its name,
     * else its title with blanks made '_' (the correlation's condition
     * refers to them by word). */
    const char *who = json_string_value(json_object_get(doc, "id"));
    if (!who) who = json_string_value(json_object_get(doc, "name"));
    if (!who) who = json_string_value(json_object_get(doc, "title"));
    cf_buf_puts(&key, who ? who : "legacy-aggregation");
    for (size_t i = 0; i < key.len; i++)
        if (isspace((unsigned char)key.data[i]) || key.data[i] == '(' ||
            key.data[i] == ')')
            key.data[i] = '_';
    const char *title = json_string_value(json_object_get(doc, "title"));
    if (!title) title = key.data ? key.data : "";
    if (!(docs = json_array()) || !(refs = json_array()) || key.failed)
        goto done;

    cf_buf_printf(&t, "%s/%s", key.data, a.kind == AGG_NEAR ? "near" : "base");
    cf_buf_printf(&expr, "%s (base events)", title);
    if (t.failed || expr.failed) goto done;
    json_t *b = base_doc(doc, t.data, expr.data, skip_space(left.data));
    if (!b || json_array_append_new(docs, b) ||
        json_array_append_new(refs, json_string(t.data)))
        goto done;
    if (a.kind == AGG_NEAR) {
        cf_buf_reset(&expr);
        cf_buf_printf(&expr, "%s and (", t.data);
        if ((rc = near_refs(doc, text, key.data, title, a.near, docs, refs,
                            &expr, errstr, errstr_size)))
            goto done;
        rc = CF_ERR_NOMEM;
        cf_buf_putc(&expr, ')');
        if (expr.failed) goto done;
    }

    if (!(corr = json_deep_copy(doc)) || !(body = json_object())) goto done;
    json_object_del(corr, "detection");
    json_object_del(corr, "logsource");
    json_object_del(corr, "fields");
    json_object_del(corr, "generate"); /* unset: as any correlation's default */
    if (json_object_set_new(body, "type", json_string(type_of(a.kind, &a))) ||
        json_object_set(body, "rules", refs) ||
        json_object_set(body, "timespan", (json_t *)tf))
        goto done;
    if (a.group_by[0] &&
        json_object_set_new(body, "group-by", json_pack("[s]", a.group_by)))
        goto done;
    if (a.kind == AGG_NEAR) {
        if (json_object_set_new(body, "condition", json_string(expr.data)))
            goto done;
    } else {
        if (!(c = json_object()) ||
            json_object_set_new(c, a.op, json_real(a.value)) ||
            (a.field[0] &&
             json_object_set_new(c, "field", json_string(a.field))) ||
            json_object_set(body, "condition", c))
            goto done;
    }
    if (json_object_set(corr, "correlation", body) ||
        json_array_append(docs, corr))
        goto done;
    cf_buf_reset(&t);
    for (size_t i = 0; i < json_array_size(refs); i++)
        cf_buf_printf(&t, "%s%s", i ? ", " : "",
                      json_string_value(json_array_get(refs, i)));
    if (t.failed) goto done;
    snprintf(note, note_size,
             "legacy aggregation '%s' loaded as a correlation (%s over "
             "timeframe %s) of base rule%s %s",
             skip_space(bar + 1), type_of(a.kind, &a), json_string_value(tf),
             json_array_size(refs) > 1 ? "s" : "", t.data);
    *docs_out = docs;
    docs = NULL;
    rc = CF_OK;
done:
    if (rc == CF_ERR_NOMEM)
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    json_decref(docs);
    json_decref(refs);
    json_decref(corr);
    json_decref(body);
    json_decref(c);
    cf_buf_free(&key);
    cf_buf_free(&expr);
    cf_buf_free(&left);
    cf_buf_free(&t);
    return rc;
}
