/*
 * test_killchain.c - ATT&CK tactic -> kill-chain stage mapping
 * (engine/killchain.c).  Checked against the shared ATT&CK tactic order
 * when ../shared is present.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "killchain.h"
#include "shared_data.h"

static void test_order(void **state) {
    (void)state;
    assert_int_equal(cf_killchain_stage("reconnaissance", NULL), 1);
    assert_int_equal(cf_killchain_stage("execution", NULL), 4);
    assert_int_equal(cf_killchain_stage("credential-access", NULL), 8);
    assert_int_equal(cf_killchain_stage("impact", NULL), 14);
    assert_true(cf_killchain_stage("execution", NULL) <
                cf_killchain_stage("discovery", NULL));
    assert_string_equal(cf_killchain_name(7), "defense-evasion");
    assert_string_equal(cf_killchain_title(12), "Command and Control");
    assert_null(cf_killchain_name(0));
    assert_null(cf_killchain_name(15));
}

static void test_v19_names(void **state) {
    const char *display;
    (void)state;
    assert_int_equal(cf_killchain_stage("stealth", &display), 7);
    assert_string_equal(display, "stealth");
    assert_int_equal(cf_killchain_stage("defense-impairment", &display), 7);
    assert_string_equal(display, "defense-impairment");
    assert_int_equal(cf_killchain_stage("defense-evasion", &display), 7);
    assert_string_equal(display, "defense-evasion");
}

static void test_spellings(void **state) {
    const char *display;
    (void)state;
    assert_int_equal(cf_killchain_stage("attack.credential_access", &display),
                     8);
    assert_string_equal(display, "credential-access");
    assert_int_equal(cf_killchain_stage("Lateral Movement", NULL), 10);
    assert_int_equal(cf_killchain_stage("t1059.001", &display), 0);
    assert_null(display);
    assert_int_equal(cf_killchain_stage("", NULL), 0);
    assert_int_equal(cf_killchain_stage(NULL, NULL), 0);
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(cf_killchain_stage(longname, NULL), 0);
}

/* The compiled-in table must agree with the shared ATT&CK order. */
static void test_matches_shared_attack(void **state) {
    (void)state;
    const char *shared = getenv("CF_SHARED_DIR");
    char path[4096];
    if (!shared) {
        if (cf_test_shared_missing("ATT&CK tactics") == 77) skip();
        fail();
    }
    snprintf(path, sizeof path,
             "%s/data/attack/enterprise_tactics_ordered.json", shared);
    json_error_t err;
    json_t *arr = json_load_file(path, 0, &err);
    if (!arr) {
        if (cf_test_shared_missing(path) == 77) skip();
        fail();
    }
    size_t i;
    json_t *t;
    assert_int_equal(json_array_size(arr), CF_KILLCHAIN_STAGES);
    json_array_foreach(arr, i, t) {
        const char *name = json_string_value(json_object_get(t, "shortname"));
        int order = (int)json_integer_value(json_object_get(t, "order"));
        assert_non_null(name);
        assert_int_equal(cf_killchain_stage(name, NULL), order);
        assert_string_equal(cf_killchain_name(order), name);
    }
    json_decref(arr);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_v19_names),
        cmocka_unit_test(test_spellings),
        cmocka_unit_test(test_matches_shared_attack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
