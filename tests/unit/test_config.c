/*
 * test_config.c - the configuration file: defaults, typed settings,
 * sections, and errors that name the problem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "killchain.h"
#include "timeutil.h"
#include "yaml_json.h"

static char *write_temp(const char *text) {
    char *path = strdup("/tmp/cf_test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **state) {
    (void)state;
    struct cf_config *cfg = cf_config_default();
    assert_non_null(cfg);
    assert_int_equal(cfg->limits.max_line_bytes, 1024 * 1024);
    assert_int_equal(cfg->limits.max_depth, 64);
    assert_string_equal(cfg->dead_letter_path, "chainfuse-deadletter.jsonl");
    assert_true(cfg->emit_alerts);
    assert_null(cf_config_section(cfg, "fusion"));
    cf_config_destroy(cfg);
    cf_config_destroy(NULL);
}

static void test_load_values_and_sections(void **state) {
    (void)state;
    char *path = write_temp("input:\n  max_line_bytes: 4096\n  max_depth: 8\n"
                            "dead_letter:\n  path: /tmp/dl.jsonl\n"
                            "output:\n  alerts: false\n"
                            "placeholders:\n  admins: [alice, bob]\n"
                            "fusion:\n  window: 24h\n");
    char err[256];
    struct cf_config *cfg = cf_config_load(path, err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cfg->limits.max_line_bytes, 4096);
    assert_int_equal(cfg->limits.max_depth, 8);
    assert_string_equal(cfg->dead_letter_path, "/tmp/dl.jsonl");
    assert_false(cfg->emit_alerts);
    const json_t *ph = cf_config_section(cfg, "placeholders");
    assert_int_equal(json_array_size(json_object_get(ph, "admins")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            cf_config_section(cfg, "fusion"), "window")),
                        "24h");
    cf_config_destroy(cfg);
    unlink(path);
    free(path);
}

static void test_errors_name_the_problem(void **state) {
    (void)state;
    char err[512];
    char *path = write_temp("fuson:\n  window: 1h\n");
    assert_null(cf_config_load(path, err, sizeof err));
    assert_non_null(strstr(err, "unknown section 'fuson'"));
    assert_non_null(strstr(err, "did you mean 'fusion'"));
    unlink(path);
    free(path);

    path = write_temp("input:\n  max_line_bytes: lots\n");
    assert_null(cf_config_load(path, err, sizeof err));
    assert_non_null(strstr(err, "input.max_line_bytes: must be a size"));
    unlink(path);
    free(path);

    path = write_temp("input: [\n");
    assert_null(cf_config_load(path, err, sizeof err));
    assert_non_null(strstr(err, "line"));
    unlink(path);
    free(path);

    assert_null(cf_config_load("/nonexistent/chainfuse.yml", err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
}

/* Loads `text` as a config file and expects it refused with a message
 * containing every one of the NULL-terminated `needles`. */
static void expect_refused(const char *text, ...) {
    char err[512] = "";
    char *path = write_temp(text);
    struct cf_config *cfg = cf_config_load(path, err, sizeof err);
    if (cfg) fail_msg("accepted: %s", text);
    /* every config error names the file it is about */
    if (!strstr(err, path)) fail_msg("'%s' does not name %s", err, path);
    va_list ap;
    va_start(ap, text);
    for (const char *n; (n = va_arg(ap, const char *));)
        if (!strstr(err, n)) fail_msg("'%s' does not mention '%s'", err, n);
    va_end(ap);
    unlink(path);
    free(path);
}

/* YAML allows a key once per mapping; a second one used to replace the
 * first silently, so a section written twice lost half its settings. */
static void test_duplicate_keys_are_errors(void **state) {
    (void)state;
    expect_refused("fusion:\n  window: 1h\ninput:\n  max_depth: 8\n"
                   "fusion:\n  lateness: 5m\n",
                   "duplicate key 'fusion'", "line 5", "first at line 1", NULL);
    expect_refused("fusion:\n  window: 1h\n  lateness: 5m\n  window: 2h\n",
                   "duplicate key 'fusion.window'", "line 4", NULL);
    expect_refused("logsources:\n  category:\n    process_creation:\n"
                   "      product: windows\n      product: linux\n",
                   "'logsources.category.process_creation.product'", "line 5",
                   NULL);
    /* inside a list, at any depth, for every YAML document */
    const char *text = "a:\n  - x: 1\n    y: 2\n  - x: 1\n    x: 2\n";
    char err[256] = "";
    assert_null(cf_yaml_to_json(text, strlen(text), err, sizeof err));
    assert_non_null(strstr(err, "duplicate key 'a[1].x'"));
    assert_non_null(strstr(err, "line 5"));
    /* the same key in different mappings is fine */
    text = "a: {x: 1}\nb: {x: 1}\nc: [{x: 1}, {x: 2}]\n";
    json_t *docs = cf_yaml_to_json(text, strlen(text), err, sizeof err);
    assert_non_null(docs);
    json_decref(docs);
}

/* Every key of every section is checked where the file is read, and the
 * message names the file and the full key. */
static void test_values_are_validated_at_load(void **state) {
    (void)state;
    /* unknown keys inside a section, with a suggestion */
    expect_refused("input:\n  max_line_byte: 5\n", "input.max_line_byte",
                   "unknown key", "did you mean 'max_line_bytes'", NULL);
    expect_refused("fusion:\n  latenes: 15m\n", "fusion.latenes",
                   "did you mean 'lateness'", NULL);
    expect_refused("correlation:\n  max_open_window: 5\n",
                   "correlation.max_open_window", NULL);
    /* wrong types */
    expect_refused("input:\n  max_line_bytes: lots\n", "input.max_line_bytes",
                   NULL);
    expect_refused("output:\n  alerts: maybe\n", "output.alerts",
                   "true or false", NULL);
    expect_refused("fusion:\n  min_stages: two\n", "fusion.min_stages", NULL);
    expect_refused("fusion:\n  never_link: collector01\n", "fusion.never_link",
                   "list", NULL);
    expect_refused("dead_letter:\n  path: [a, b]\n", "dead_letter.path", NULL);
    expect_refused("fusion: [lateness]\n", "fusion", "mapping", NULL);
    /* negative sizes and counts */
    expect_refused("input:\n  max_line_bytes: -5\n", "input.max_line_bytes",
                   "negative", NULL);
    expect_refused("fusion:\n  max_alerts: -1\n", "fusion.max_alerts", NULL);
    expect_refused("fusion:\n  max_alerts: 0\n", "fusion.max_alerts",
                   "at least 1", NULL);
    /* durations: malformed, negative, and too large for int64 ms */
    expect_refused("fusion:\n  lateness: soon\n", "fusion.lateness", "duration",
                   NULL);
    expect_refused("fusion:\n  lateness: -5m\n", "fusion.lateness", NULL);
    expect_refused("fusion:\n  window: 99999999999999999999d\n",
                   "fusion.window", NULL);
    expect_refused("fusion:\n  window: 9223372036854775\n", "fusion.window",
                   NULL);
    expect_refused("fusion:\n  entity_ttl: 1e400h\n", "fusion.entity_ttl",
                   NULL);
    expect_refused("correlation:\n  max_open_windows: 99999999999\n",
                   "correlation.max_open_windows", NULL);
    /* free-form sections still have a shape */
    expect_refused("placeholders: [a, b]\n", "placeholders", "mapping", NULL);
    expect_refused("suppressions: {rule: x}\n", "suppressions", "list", NULL);
}

/* What the reference promises is what the parser accepts. */
static void test_typed_values(void **state) {
    (void)state;
    char err[512] = "";
    char *path = write_temp(
        "input:\n  max_line_bytes: 64KiB\n"
        "output:\n  incidents: no\n"
        "correlation:\n  max_open_windows: 5\n"
        "fusion:\n  lateness: 30\n  window: 1.5h\n  close_after: 500ms\n"
        "  suppression_window: 2d\n  update_interval: 90min\n"
        "  entity_ttl: \"10\"\n  min_stages: 14\n  max_alerts: 7\n"
        "  never_link: [collector01, COLLECTOR02]\n"
        "cache:\n  dir: \"\"\n"
        "placeholders:\n" /* every key commented out: empty */
        "suppressions:\n");
    struct cf_config *cfg = cf_config_load(path, err, sizeof err);
    if (!cfg) fail_msg("%s", err);
    assert_int_equal(cfg->limits.max_line_bytes, 65536);
    assert_int_equal(cfg->limits.max_depth, 64); /* untouched default */
    assert_true(cfg->emit_alerts);
    assert_false(cfg->emit_incidents);
    assert_string_equal(cfg->cache_dir, "");
    assert_int_equal(cfg->correlation.max_open_windows, 5);
    assert_int_equal(cfg->fusion.lateness, 30000);
    assert_int_equal(cfg->fusion.window, 5400000);
    assert_int_equal(cfg->fusion.close_after, 500);
    assert_int_equal(cfg->fusion.suppression_window, 2LL * 86400000);
    assert_int_equal(cfg->fusion.update_interval, 90LL * 60000);
    assert_int_equal(cfg->fusion.entity_ttl, 10000);
    assert_int_equal(cfg->fusion.min_stages, 14);
    assert_int_equal(cfg->fusion.max_alerts, 7);
    assert_int_equal(cfg->fusion.max_open_incidents, 10000);
    assert_int_equal(cfg->fusion.never_link.n, 2);
    assert_string_equal(cfg->fusion.never_link.v[1], "COLLECTOR02");
    assert_null(cf_config_section(cfg, "placeholders"));
    cf_config_destroy(cfg);
    unlink(path);
    free(path);

    /* defaults, and an empty file is all defaults */
    path = write_temp("# nothing set\n");
    cfg = cf_config_load(path, err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cfg->fusion.lateness, 15 * 60000);
    assert_int_equal(cfg->fusion.window, 24LL * 3600000);
    assert_int_equal(cfg->fusion.min_stages, 2);
    assert_int_equal(cfg->fusion.never_link.n, 0);
    assert_int_equal(cfg->correlation.max_open_windows, 1000000);
    assert_true(cfg->emit_incidents);
    cf_config_destroy(cfg);
    unlink(path);
    free(path);
}

/* The tables themselves: each key's field is as wide as its type says,
 * bounds fit the field, defaults parse and lie in range, names are
 * unique, and every key is in the reference. */
static void test_tables_are_consistent(void **state) {
    (void)state;
    size_t n;
    const struct cf_config_section_def *secs = cf_config_sections(&n);
    struct cf_buf ref = CF_BUF_INIT;
    cf_config_reference(&ref);
    assert_false(ref.failed);
    for (size_t s = 0; s < n; s++) {
        char want[80];
        snprintf(want, sizeof want, "`%s`", secs[s].name);
        if (!strstr(ref.data, want)) fail_msg("reference lacks %s", want);
        assert_true(strlen(secs[s].help) > 10);
        for (size_t t = 0; t < s; t++)
            assert_string_not_equal(secs[s].name, secs[t].name);
        if (!secs[s].keys) {
            assert_non_null(secs[s].owner);
            continue;
        }
        for (size_t i = 0; i < secs[s].n_keys; i++) {
            const struct cf_config_key *k = &secs[s].keys[i];
            snprintf(want, sizeof want, "| `%s` |", k->name);
            if (!strstr(ref.data, want)) fail_msg("reference lacks %s", want);
            assert_true(strlen(k->help) > 10);
            for (size_t j = 0; j < i; j++)
                assert_string_not_equal(k->name, secs[s].keys[j].name);
            switch (k->type) {
            case CF_CONFIG_BOOL: assert_int_equal(k->size, sizeof(bool)); break;
            case CF_CONFIG_INT:
                assert_true(k->size == 4 || k->size == 8);
                if (k->size == 4) assert_true(k->max <= INT32_MAX);
                assert_true(k->min <= k->max);
                break;
            case CF_CONFIG_SIZE:
                assert_int_equal(k->size, sizeof(size_t));
                break;
            case CF_CONFIG_DURATION:
                assert_int_equal(k->size, sizeof(int64_t));
                assert_true(k->min >= 0 && k->min <= k->max);
                break;
            case CF_CONFIG_STRING:
                assert_int_equal(k->size, sizeof(char *));
                break;
            case CF_CONFIG_STRLIST:
                assert_int_equal(k->size, sizeof(struct cf_strlist));
                break;
            case CF_CONFIG_STRMAP:
                assert_int_equal(k->size, sizeof(struct cf_strmap));
                break;
            case CF_CONFIG_OFFSETS:
                assert_int_equal(k->size, sizeof(struct cf_clock_offsets));
                assert_true(k->min < 0 && k->min <= k->max);
                break;
            }
        }
    }
    /* Every default parses and is in range (cf_config_default applies
     * them through the same checks). */
    struct cf_config *cfg = cf_config_default();
    assert_non_null(cfg);
    cf_config_destroy(cfg);
    /* min_stages' bound is the number of kill-chain stages */
    for (size_t s = 0; s < n; s++)
        for (size_t i = 0; i < secs[s].n_keys; i++)
            if (strcmp(secs[s].keys[i].name, "min_stages") == 0)
                assert_int_equal(secs[s].keys[i].max, CF_KILLCHAIN_STAGES);
    cf_buf_free(&ref);

    char buf[32];
    cf_duration_format(36500LL * 86400000, buf);
    assert_string_equal(buf, "36500d");
    cf_duration_format(90 * 60000, buf);
    assert_string_equal(buf, "90m");
    cf_duration_format(1500, buf);
    assert_string_equal(buf, "1500ms");
    const char *names[] = {"lateness", "window", "max_alerts", NULL};
    assert_string_equal(cf_config_map_nearest("latenes", names), "lateness");
    assert_string_equal(cf_config_map_nearest("max_alert", names),
                        "max_alerts");
    assert_null(cf_config_map_nearest("colour", names));
    assert_null(cf_config_map_nearest("wx", names));
}

/* Out of memory anywhere while loading ends in NULL with a message,
 * never a crash or a leak (run under ASan): every allocation is failed
 * in turn, as SQLite's malloc tests do. */
static void test_load_out_of_memory(void **state) {
    (void)state;
    char *path = write_temp("input:\n  max_line_bytes: 64KiB\n"
                            "dead_letter:\n  path: /tmp/dl.jsonl\n"
                            "fusion:\n  window: 2h\n"
                            /* past jansson's first array block of 8 */
                            "  never_link: [a, b, c, d, e, f, g, h, i, j]\n"
                            "placeholders:\n  admins: [alice, bob]\n");
    bool completed = false;
    for (long n = 0; n < 10000 && !completed; n++) {
        char err[256] = "";
        cf_alloc_fail_after(n);
        struct cf_config *cfg = cf_config_load(path, err, sizeof err);
        unsigned long refused = cf_alloc_failures();
        cf_alloc_fail_after(-1);
        if (cfg) {
            /* nothing silently left out */
            assert_int_equal(cfg->fusion.never_link.n, 10);
            completed = refused == 0;
        } else {
            assert_true(refused > 0);
            assert_true(strlen(err) > 0);
        }
        cf_config_destroy(cfg);
    }
    assert_true(completed);
    unlink(path);
    free(path);
}

/* The YAML scalars Sigma authors write resolve as they expect. */
static void test_yaml_scalar_types(void **state) {
    (void)state;
    const char *text = "a: 4688\nb: 0.5\nc: '4688'\nd: 0777\ne: 0x1010\n"
                       "f: null\ng: true\nh: -12\ni: 1.5e3\nj: ''\n";
    json_t *docs = cf_yaml_to_json(text, strlen(text), NULL, 0);
    assert_non_null(docs);
    json_t *d = json_array_get(docs, 0);
    assert_true(json_is_integer(json_object_get(d, "a")));
    assert_true(json_is_real(json_object_get(d, "b")));
    assert_true(json_real_value(json_object_get(d, "b")) == 0.5);
    assert_string_equal(json_string_value(json_object_get(d, "c")), "4688");
    assert_string_equal(json_string_value(json_object_get(d, "d")), "0777");
    assert_string_equal(json_string_value(json_object_get(d, "e")), "0x1010");
    assert_true(json_is_null(json_object_get(d, "f")));
    assert_true(json_is_true(json_object_get(d, "g")));
    assert_int_equal(json_integer_value(json_object_get(d, "h")), -12);
    assert_true(json_is_real(json_object_get(d, "i")));
    assert_string_equal(json_string_value(json_object_get(d, "j")), "");
    json_decref(docs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_values_and_sections),
        cmocka_unit_test(test_errors_name_the_problem),
        cmocka_unit_test(test_yaml_scalar_types),
        cmocka_unit_test(test_duplicate_keys_are_errors),
        cmocka_unit_test(test_values_are_validated_at_load),
        cmocka_unit_test(test_typed_values),
        cmocka_unit_test(test_tables_are_consistent),
        cmocka_unit_test(test_load_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
