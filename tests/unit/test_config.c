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
    unlink(path);
    free(path);

    path = write_temp("input:\n  max_line_bytes: lots\n");
    assert_null(cf_config_load(path, err, sizeof err));
    assert_non_null(strstr(err, "max_line_bytes must be a positive integer"));
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
                   "duplicate key 'fusion'", "line 5", "first at line 1",
                   NULL);
    expect_refused("fusion:\n  window: 1h\n  lateness: 5m\n  window: 2h\n",
                   "duplicate key 'fusion.window'", "line 4", NULL);
    expect_refused("logsources:\n  category:\n    process_creation:\n"
                   "      product: windows\n      product: linux\n",
                   "'logsources.category.process_creation.product'",
                   "line 5", NULL);
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
    expect_refused("fusion:\n  lateness: soon\n", "fusion.lateness",
                   "duration", NULL);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
