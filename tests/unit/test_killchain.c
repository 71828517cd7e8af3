/*
 * test_killchain.c - ATT&CK tactic -> kill-chain stage mapping
 * (engine/killchain.c), and the stages an incident shows for them
 * (engine/incident.c): one per tactic, ordered and scored by position.
 * Checked against the shared ATT&CK tactic order when ../shared is
 * present.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "incident.h"
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

/* ---- incident stages ---------------------------------------------- */

#define T0 1692161671000LL /* 2023-08-16T04:54:31Z */

/* Adds an alert (seed names its id) tagged with `tactics` at T0 + sec. */
static void add_tagged(struct cf_incident *inc, const char *seed, int sec,
                       char *const *tactics, size_t n) {
    static const struct cf_incident_limits lim = {100, 100, 100};
    struct cf_alert a = {0};
    struct cf_norm_entities ne = {0};
    cf_digest_hex128(seed, strlen(seed), a.id);
    a.time_ms = T0 + sec * 1000LL;
    a.rule_id = seed;
    a.rule_title = seed;
    a.level = CF_LEVEL_MEDIUM;
    a.tactics = tactics;
    a.n_tactics = n;
    static const struct cf_incident_why opened = {-1, NULL, false,
                                                  -1, -1,   false};
    assert_int_equal(
        cf_incident_add(inc, &a, a.time_ms, &ne, 0, &opened, false, &lim),
        CF_OK);
}

static json_t *record_of(const struct cf_incident *inc) {
    json_t *rec = cf_incident_to_json(inc, "new", NULL);
    assert_non_null(rec);
    return rec;
}

static const char *stage_tactic(const json_t *rec, size_t i) {
    return json_string_value(json_object_get(
        json_array_get(json_object_get(rec, "stages"), i), "tactic"));
}

static json_int_t prog_int(const json_t *rec, const char *key) {
    return json_integer_value(
        json_object_get(json_object_get(rec, "progression"), key));
}

/* ATT&CK v18 splits defense evasion in two: an incident holding both
 * shows both, each with its own count, at one kill-chain position. */
static void test_incident_shows_each_tactic(void **state) {
    (void)state;
    static char *const exec[] = {"attack.execution"};
    static char *const stealth[] = {"attack.stealth"};
    static char *const impair[] = {"attack.defense-impairment"};
    static char *const both[] = {"attack.defense_impairment", "attack.stealth",
                                 "attack.defense-impairment"};
    static char *const cred[] = {"attack.credential-access"};
    struct cf_alert first = {.rule_title = "x"};
    cf_digest_hex128("s1", 2, first.id);
    struct cf_incident *inc = cf_incident_new(1, &first);
    assert_non_null(inc);
    add_tagged(inc, "s1", 0, exec, 1);
    add_tagged(inc, "s2", 10, stealth, 1);
    add_tagged(inc, "s3", 20, impair, 1);
    add_tagged(inc, "s4", 30, both, 3);
    add_tagged(inc, "s5", 40, cred, 1);
    json_t *rec = record_of(inc);
    json_t *stages = json_object_get(rec, "stages");
    assert_int_equal(json_array_size(stages), 4);
    assert_string_equal(stage_tactic(rec, 0), "execution");
    assert_string_equal(stage_tactic(rec, 1), "stealth");
    assert_string_equal(stage_tactic(rec, 2), "defense-impairment");
    assert_string_equal(stage_tactic(rec, 3), "credential-access");
    /* s4 counts once under each of its two tactics, not twice under one */
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(stages, 1), "alert_count")),
                     2);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(stages, 2), "alert_count")),
                     2);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(stages, 2), "position")),
                     7);
    /* three positions, four tactics; side by side at 7 is no step back */
    assert_int_equal(prog_int(rec, "distinct_stages"), 3);
    assert_int_equal(prog_int(rec, "distinct_tactics"), 4);
    assert_int_equal(prog_int(rec, "forward_steps"), 2);
    assert_true(json_is_true(
        json_object_get(json_object_get(rec, "progression"), "in_order")));
    assert_non_null(strstr(json_string_value(json_object_get(rec, "title")),
                           "3-stage activity"));
    assert_non_null(strstr(json_string_value(json_object_get(rec, "summary")),
                           "3 kill-chain stages (4 tactics) in this order: "
                           "execution, stealth, defense-impairment then "
                           "credential-access"));
    assert_int_equal(cf_incident_positions(inc), 3);
    assert_true(cf_incident_raised(inc, 3));
    assert_false(cf_incident_raised(inc, 4));
    json_decref(rec);
    cf_incident_destroy(inc);
}

/* Two tactics at one position are one kill-chain stage for raising and
 * scoring: a pair of them scores as one stage, not as a progression. */
static void test_split_tactics_score_as_one_stage(void **state) {
    (void)state;
    static char *const stealth[] = {"stealth"};
    static char *const impair[] = {"defense-impairment"};
    static char *const evasion[] = {"defense-evasion"};
    struct cf_alert first = {.rule_title = "x"};
    cf_digest_hex128("a", 1, first.id);
    struct cf_incident *one = cf_incident_new(1, &first);
    struct cf_incident *split = cf_incident_new(2, &first);
    assert_non_null(one);
    assert_non_null(split);
    add_tagged(one, "a", 0, evasion, 1);
    add_tagged(one, "b", 10, evasion, 1);
    add_tagged(split, "a", 0, stealth, 1);
    add_tagged(split, "b", 10, impair, 1);
    assert_int_equal(cf_incident_positions(split), 1);
    assert_false(cf_incident_raised(split, 2));
    assert_int_equal(cf_incident_score(split), cf_incident_score(one));
    json_t *rec = record_of(split);
    assert_int_equal(json_array_size(json_object_get(rec, "stages")), 2);
    /* the furthest stage is named as tagged, not as defense-evasion */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "progression"),
                                          "furthest_stage")),
        "stealth");
    json_decref(rec);
    /* merged, each tactic keeps its own stage and earliest sighting */
    struct cf_incident *late = cf_incident_new(3, &first);
    assert_non_null(late);
    static const struct cf_incident_limits lim = {100, 100, 100};
    add_tagged(late, "c", -5, impair, 1);
    assert_int_equal(cf_incident_merge(split, late, &lim), CF_OK);
    rec = record_of(split);
    assert_int_equal(json_array_size(json_object_get(rec, "stages")), 2);
    assert_string_equal(stage_tactic(rec, 0), "defense-impairment");
    assert_string_equal(stage_tactic(rec, 1), "stealth");
    json_decref(rec);
    cf_incident_destroy(late);
    cf_incident_destroy(one);
    cf_incident_destroy(split);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_v19_names),
        cmocka_unit_test(test_spellings),
        cmocka_unit_test(test_matches_shared_attack),
        cmocka_unit_test(test_incident_shows_each_tactic),
        cmocka_unit_test(test_split_tactics_score_as_one_stage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
