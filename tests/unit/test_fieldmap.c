/*
 * test_fieldmap.c - built-in aliases and the `field_mappings` section.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "fieldmap.h"

static bool has(const char *const *names, size_t n, const char *want) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], want) == 0) return true;
    return false;
}

static void test_defaults(void **state) {
    (void)state;
    char err[128];
    struct cf_fieldmap *m = cf_fieldmap_new(NULL, err, sizeof err);
    assert_non_null(m);
    size_t n;
    const char *const *names = cf_fieldmap_lookup(m, "Computer", &n);
    assert_true(n >= 2);
    assert_string_equal(names[0], "Computer");
    assert_true(has(names, n, "Hostname"));
    names = cf_fieldmap_lookup(m, "Provider_Name", &n);
    assert_string_equal(names[0], "Provider_Name");
    assert_true(has(names, n, "SourceName"));
    cf_fieldmap_destroy(m);
    cf_fieldmap_destroy(NULL);
}

/* A field without an entry maps to itself only, and the map says so
 * without handing out storage of its own: no per-thread scratch that
 * the next lookup overwrites. */
static void test_unmapped(void **state) {
    (void)state;
    char err[128];
    struct cf_fieldmap *m = cf_fieldmap_new(NULL, err, sizeof err);
    assert_non_null(m);
    size_t n = 99;
    const char *const *names = cf_fieldmap_lookup(m, "CommandLine", &n);
    assert_null(names);
    assert_int_equal(n, 0);
    /* A mapped answer points into the map and survives other lookups. */
    size_t n_host;
    const char *const *host = cf_fieldmap_lookup(m, "Computer", &n_host);
    assert_non_null(host);
    assert_null(cf_fieldmap_lookup(m, "Image", &n));
    assert_null(cf_fieldmap_lookup(m, "ParentImage", &n));
    assert_string_equal(host[0], "Computer");
    assert_string_equal(host[1], "Hostname");
    cf_fieldmap_destroy(m);
}

static void test_config(void **state) {
    (void)state;
    char err[128];
    json_error_t je;
    json_t *s = json_loads("{\"Image\": [\"process.executable\", \"Image\"],"
                           " \"Computer\": \"host.name\"}",
                           0, &je);
    struct cf_fieldmap *m = cf_fieldmap_new(s, err, sizeof err);
    assert_non_null(m);
    size_t n;
    const char *const *names = cf_fieldmap_lookup(m, "Image", &n);
    assert_int_equal(n, 2); /* duplicate Image dropped */
    assert_string_equal(names[0], "Image");
    assert_string_equal(names[1], "process.executable");
    names = cf_fieldmap_lookup(m, "Computer", &n);
    assert_int_equal(n, 3); /* adds, replaces nothing */
    assert_string_equal(names[2], "host.name");
    cf_fieldmap_destroy(m);
    json_decref(s);
    s = json_loads("{\"Image\": [1]}", 0, &je);
    assert_null(cf_fieldmap_new(s, err, sizeof err));
    assert_non_null(strstr(err, "Image"));
    json_decref(s);
}

/* Security 4688 serves process_creation rules under its own names
 * (pySigma's Windows audit pipeline); other rules are not affected. */
static void test_audit_4688(void **state) {
    (void)state;
    char err[128];
    json_error_t je;
    json_t *s = json_loads("{\"Image\": \"process.executable\"}", 0, &je);
    struct cf_fieldmap *m = cf_fieldmap_new(s, err, sizeof err);
    assert_non_null(m);
    size_t n;
    const char *const *names =
        cf_fieldmap_lookup_for(m, "windows", "process_creation", "Image", &n);
    assert_int_equal(n, 3); /* itself, the configured name, 4688's */
    assert_string_equal(names[0], "Image");
    assert_string_equal(names[1], "process.executable");
    assert_string_equal(names[2], "NewProcessName");
    names = cf_fieldmap_lookup_for(m, "Windows", "Process_Creation",
                                   "ParentImage", &n);
    assert_true(has(names, n, "ParentProcessName"));
    names = cf_fieldmap_lookup_for(m, "windows", "image_load", "Image", &n);
    assert_int_equal(n, 2);
    assert_false(has(names, n, "NewProcessName"));
    assert_null(
        cf_fieldmap_lookup_for(m, NULL, "process_creation", "ParentImage", &n));
    assert_string_equal(
        cf_fieldmap_target_value(m, "MandatoryLabel", "high", 4),
        "S-1-16-12288");
    assert_null(cf_fieldmap_target_value(m, "MandatoryLabel", "Highest", 7));
    assert_null(cf_fieldmap_target_value(m, "IntegrityLevel", "High", 4));
    cf_fieldmap_destroy(m);
    json_decref(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_unmapped),
        cmocka_unit_test(test_audit_4688),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
