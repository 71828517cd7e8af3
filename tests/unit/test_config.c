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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
