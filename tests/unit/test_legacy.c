/*
 * test_legacy.c - Sigma 1.x aggregations (`selection | count() by X > 5`,
 * `| near ...`) converted to Sigma correlations (rules/sigma_legacy.h):
 * the documents built for each form and comparison operator, the
 * conditions with no equivalent and their reasons, and loading through
 * the rulebook (base rules and correlation all or nothing, the note for
 * `chainfuse check`).  Needs no shared data.
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sigma.h"
#include "sigma_correlation.h"
#include "sigma_legacy.h"
#include "yaml_json.h"

/* A rule document whose detection has `condition` and, unless NULL,
 * `timeframe`. */
static json_t *rule_doc(const char *condition, const char *timeframe) {
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "title: Legacy rule\n"
             "id: 0a000001-0000-4000-8000-000000000001\n"
             "name: legacy_rule\n"
             "level: high\n"
             "tags: [attack.credential-access]\n"
             "logsource: {product: windows, service: security}\n"
             "detection:\n"
             "  selection: {EventID: 4625}\n"
             "  sel_b: {EventID: 4624}\n"
             "  sel_c: {EventID: 4672}\n"
             "  filter: {TargetUserName: admin}\n"
             "%s%s%s"
             "  condition: \"%s\"\n",
             timeframe ? "  timeframe: " : "", timeframe ? timeframe : "",
             timeframe ? "\n" : "", condition);
    char err[256];
    json_t *docs = cf_yaml_to_json(yaml, strlen(yaml), err, sizeof err);
    if (!docs) fail_msg("YAML: %s", err);
    json_t *doc = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return doc;
}

/* Converts; fails the test unless it succeeds with documents. */
static json_t *convert(const char *condition, const char *timeframe, char *note,
                       size_t note_size) {
    json_t *doc = rule_doc(condition, timeframe), *out = NULL;
    char err[512];
    cf_err_t rc = cf_legacy_aggregation_convert(doc, &out, note, note_size, err,
                                                sizeof err);
    json_decref(doc);
    if (rc != CF_OK) fail_msg("convert '%s': %s", condition, err);
    assert_non_null(out);
    return out;
}

/* Converts; the reason, which must contain `want`. */
static void convert_fails(const char *condition, const char *timeframe,
                          const char *want) {
    json_t *doc = rule_doc(condition, timeframe), *out = NULL;
    char err[512] = "", note[256];
    cf_err_t rc = cf_legacy_aggregation_convert(doc, &out, note, sizeof note,
                                                err, sizeof err);
    json_decref(doc);
    assert_int_equal(rc, CF_ERR_PARSE);
    assert_null(out);
    if (!strstr(err, want))
        fail_msg("'%s': reason '%s' lacks '%s'", condition, err, want);
}

static const json_t *corr_of(const json_t *docs) {
    return json_object_get(json_array_get(docs, json_array_size(docs) - 1),
                           "correlation");
}

static const char *str(const json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s) fail_msg("no string %s", key);
    return s;
}

static void test_no_aggregation(void **state) {
    (void)state;
    json_t *doc = rule_doc("selection and not filter", NULL), *out = NULL;
    char err[256], note[256];
    assert_int_equal(cf_legacy_aggregation_convert(doc, &out, note, sizeof note,
                                                   err, sizeof err),
                     CF_OK);
    assert_null(out);
    json_decref(doc);
}

/* count() by X > N: an event_count correlation of one base rule, which
 * is the rule with the expression as its condition. */
static void test_count_by(void **state) {
    (void)state;
    char note[512];
    json_t *docs =
        convert("selection and not filter | count() by IpAddress > 5", "5m",
                note, sizeof note);
    assert_int_equal(json_array_size(docs), 2);
    const json_t *base = json_array_get(docs, 0);
    assert_string_equal(str(base, "id"),
                        "0a000001-0000-4000-8000-000000000001/base");
    assert_null(json_object_get(base, "name"));
    const json_t *det = json_object_get(base, "detection");
    assert_string_equal(str(det, "condition"), "selection and not filter");
    assert_null(json_object_get(det, "timeframe"));
    assert_non_null(json_object_get(det, "filter"));
    const json_t *corr_doc = json_array_get(docs, 1);
    assert_string_equal(str(corr_doc, "id"),
                        "0a000001-0000-4000-8000-000000000001");
    assert_string_equal(str(corr_doc, "name"), "legacy_rule");
    assert_string_equal(str(corr_doc, "title"), "Legacy rule");
    assert_string_equal(str(corr_doc, "level"), "high");
    assert_non_null(json_object_get(corr_doc, "tags"));
    assert_null(json_object_get(corr_doc, "detection"));
    assert_null(json_object_get(corr_doc, "generate"));
    const json_t *c = corr_of(docs);
    assert_string_equal(str(c, "type"), "event_count");
    assert_string_equal(str(c, "timespan"), "5m");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(c, "rules"), 0)),
        "0a000001-0000-4000-8000-000000000001/base");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(c, "group-by"), 0)),
        "IpAddress");
    const json_t *cond = json_object_get(c, "condition");
    assert_int_equal(json_object_size(cond), 1);
    assert_true(json_number_value(json_object_get(cond, "gt")) == 5);
    assert_non_null(strstr(note, "event_count"));
    assert_non_null(strstr(note, "count() by IpAddress > 5"));
    /* and the correlation parser takes what was built */
    char err[256];
    struct cf_sigma_correlation *parsed =
        cf_correlation_parse(corr_doc, "x.yml", err, sizeof err);
    if (!parsed) fail_msg("correlation: %s", err);
    assert_int_equal(parsed->type, CF_CORR_EVENT_COUNT);
    assert_int_equal(parsed->timespan_ms, 5 * 60 * 1000);
    assert_int_equal(parsed->n_group_by, 1);
    assert_int_equal(parsed->criteria[0].op, CF_CMP_GT);
    assert_false(parsed->generate);
    cf_correlation_destroy(parsed);
    json_decref(docs);
}

/* count() without `by`: no group-by; count(F): value_count of F. */
static void test_count_forms(void **state) {
    (void)state;
    char note[512];
    json_t *docs = convert("selection | count() > 10", "1h", note, sizeof note);
    const json_t *c = corr_of(docs);
    assert_string_equal(str(c, "type"), "event_count");
    assert_null(json_object_get(c, "group-by"));
    assert_null(json_object_get(json_object_get(c, "condition"), "field"));
    json_decref(docs);

    docs = convert("selection | count(TargetUserName) by IpAddress >= 3", "1d",
                   note, sizeof note);
    c = corr_of(docs);
    assert_string_equal(str(c, "type"), "value_count");
    assert_string_equal(str(json_object_get(c, "condition"), "field"),
                        "TargetUserName");
    assert_true(json_number_value(json_object_get(
                    json_object_get(c, "condition"), "gte")) == 3);
    json_decref(docs);

    docs = convert("selection | count( TargetUserName ) > 2", "30s", note,
                   sizeof note);
    c = corr_of(docs);
    assert_string_equal(str(c, "type"), "value_count");
    assert_null(json_object_get(c, "group-by"));
    json_decref(docs);

    docs = convert("selection | sum(Bytes) by Host > 100", "5m", note,
                   sizeof note);
    assert_string_equal(str(corr_of(docs), "type"), "value_sum");
    json_decref(docs);
    docs = convert("selection | avg(Bytes) > 1.5", "5m", note, sizeof note);
    assert_string_equal(str(corr_of(docs), "type"), "value_avg");
    assert_true(json_number_value(json_object_get(
                    json_object_get(corr_of(docs), "condition"), "gt")) == 1.5);
    json_decref(docs);
}

static void test_operators(void **state) {
    (void)state;
    static const struct {
        const char *op, *key;
    } ops[] = {{">", "gt"}, {">=", "gte"}, {"<", "lt"},  {"<=", "lte"},
               {"=", "eq"}, {"==", "eq"},  {"!=", "neq"}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        char cond[128], note[512];
        snprintf(cond, sizeof cond, "selection | count() by IpAddress %s 7",
                 ops[i].op);
        json_t *docs = convert(cond, "5m", note, sizeof note);
        const json_t *c = json_object_get(corr_of(docs), "condition");
        if (json_object_size(c) != 1 ||
            json_number_value(json_object_get(c, ops[i].key)) != 7)
            fail_msg("'%s' is not {%s: 7}", ops[i].op, ops[i].key);
        json_decref(docs);
    }
}

/* near: a temporal correlation of the expression and each search named,
 * with the condition "expression and (...)". */
static void test_near(void **state) {
    (void)state;
    char note[512];
    json_t *docs = convert("selection | near sel_b and not sel_c", "10m", note,
                           sizeof note);
    assert_int_equal(json_array_size(docs), 4);
    const json_t *c = corr_of(docs);
    assert_string_equal(str(c, "type"), "temporal");
    assert_string_equal(str(c, "timespan"), "10m");
    const char *k = "0a000001-0000-4000-8000-000000000001";
    char want[512];
    snprintf(want, sizeof want, "%s/near and (%s/sel_b and not %s/sel_c)", k, k,
             k);
    assert_string_equal(str(c, "condition"), want);
    assert_int_equal(json_array_size(json_object_get(c, "rules")), 3);
    assert_string_equal(
        str(json_object_get(json_array_get(docs, 1), "detection"), "condition"),
        "sel_b");
    struct cf_sigma_correlation *parsed;
    char err[256];
    parsed =
        cf_correlation_parse(json_array_get(docs, 3), "x.yml", err, sizeof err);
    if (!parsed) fail_msg("correlation: %s", err);
    assert_non_null(parsed->expr);
    cf_correlation_destroy(parsed);
    json_decref(docs);

    docs =
        convert("selection | near (sel_b or sel_c)", "1h", note, sizeof note);
    snprintf(want, sizeof want, "%s/near and ((%s/sel_b or %s/sel_c))", k, k,
             k);
    assert_string_equal(str(corr_of(docs), "condition"), want);
    json_decref(docs);
    /* a search named twice has one base rule */
    docs = convert("selection | near sel_b or (sel_b and sel_c)", "1h", note,
                   sizeof note);
    assert_int_equal(json_array_size(docs), 4);
    json_decref(docs);
}

static void test_no_equivalent(void **state) {
    (void)state;
    convert_fails("selection | count() by IpAddress > 5", NULL,
                  "no `timeframe`");
    convert_fails("selection | count() > 5", "1M",
                  "must be a number and a unit");
    convert_fails("selection | count() > 5", "5 minutes",
                  "must be a number and a unit");
    convert_fails("selection | max(LogonType) by IpAddress > 3", "5m",
                  "max() has no Sigma correlation equivalent");
    convert_fails("selection | min(LogonType) > 3", "5m",
                  "min() has no Sigma correlation equivalent");
    convert_fails("selection | median(X) > 3", "5m", "unknown aggregation");
    convert_fails("selection | count() by IpAddress", "5m",
                  "needs a comparison");
    convert_fails("selection | count() > many", "5m", "needs a number");
    convert_fails("selection | sum() > 3", "5m", "needs the field it sums");
    convert_fails("selection | near nosuch", "5m",
                  "near names 'nosuch', which is not a search");
    convert_fails("selection | near", "5m", "names no search");
    convert_fails(" | count() > 3", "5m", "nothing before the '|'");
    convert_fails("selection | count() > 3 | count() > 1", "5m",
                  "more than one '|'");
}

/* A condition list holding an aggregation has no single equivalent. */
static void test_condition_list(void **state) {
    (void)state;
    const char *yaml = "title: t\nlogsource: {product: windows}\n"
                       "detection:\n  selection: {EventID: 1}\n"
                       "  timeframe: 5m\n"
                       "  condition: [selection, 'selection | count() > 3']\n";
    char err[512], note[256];
    json_t *docs = cf_yaml_to_json(yaml, strlen(yaml), err, sizeof err), *out;
    assert_int_equal(cf_legacy_aggregation_convert(json_array_get(docs, 0),
                                                   &out, note, sizeof note, err,
                                                   sizeof err),
                     CF_ERR_PARSE);
    assert_non_null(strstr(err, "list of conditions"));
    json_decref(docs);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Through the loader: base rules and correlation are added together and
 * resolve; the note is kept for `check`; a base rule that does not parse
 * rejects the rule as written, adding nothing. */
static void test_rulebook(void **state) {
    (void)state;
    char dir[] = "/tmp/cf_legacy_XXXXXX", path[4200], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/count.yml", dir);
    write_file(path, "title: Legacy count\n"
                     "id: 0a000001-0000-4000-8000-000000000002\n"
                     "logsource: {product: windows, service: security}\n"
                     "detection:\n  selection: {EventID: 4625}\n"
                     "  timeframe: 5m\n"
                     "  condition: selection | count() by IpAddress > 2\n");
    snprintf(path, sizeof path, "%s/broken.yml", dir);
    write_file(path, "title: Legacy broken\n"
                     "id: 0a000001-0000-4000-8000-000000000003\n"
                     "logsource: {product: windows, service: security}\n"
                     "detection:\n  selection: {EventID: 4625}\n"
                     "  timeframe: 5m\n"
                     "  condition: nosuch | count() > 2\n");
    struct cf_rulebook *rb = cf_rulebook_new();
    assert_non_null(rb);
    assert_int_equal(cf_rulebook_load(rb, dir, NULL, err, sizeof err), CF_OK);
    assert_int_equal(cf_rulebook_finish(rb, err, sizeof err), CF_OK);
    assert_int_equal(rb->n_rules, 1);
    assert_int_equal(rb->n_correlations, 1);
    assert_string_equal(rb->rules[0]->id,
                        "0a000001-0000-4000-8000-000000000002/base");
    assert_ptr_equal(rb->correlations[0]->refs[0].rule, rb->rules[0]);
    assert_string_equal(rb->correlations[0]->key,
                        "0a000001-0000-4000-8000-000000000002");
    assert_int_equal(rb->n_converted, 1);
    assert_string_equal(rb->converted[0].id,
                        "0a000001-0000-4000-8000-000000000002");
    assert_non_null(strstr(rb->converted[0].reason, "loaded as a correlation"));
    assert_int_equal(rb->n_rejected, 1);
    assert_string_equal(rb->rejected[0].id,
                        "0a000001-0000-4000-8000-000000000003");
    assert_non_null(
        strstr(rb->rejected[0].reason, "legacy aggregation, as its base rule"));
    cf_rulebook_destroy(rb);
    snprintf(path, sizeof path, "%s/count.yml", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/broken.yml", dir);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_aggregation),
        cmocka_unit_test(test_count_by),
        cmocka_unit_test(test_count_forms),
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_near),
        cmocka_unit_test(test_no_equivalent),
        cmocka_unit_test(test_condition_list),
        cmocka_unit_test(test_rulebook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
