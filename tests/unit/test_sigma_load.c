/*
 * test_sigma_load.c - loads the SigmaHQ rule set from the shared data
 * (CF_SHARED_DIR) and checks that at least 99% of its rule documents load,
 * printing the figures, the load time and every rejection reason grouped.
 * Also checks directory-walk behaviour on a small temporary tree.
 * Skipped (exit 77) when the shared data is absent.
 */
/* cmocka needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "shared_data.h"
#include "sigma.h"

static char rules_dir[4096], hunting_dir[4096], placeholder_dir[4096];
static char emerging_dir[4096];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct group {
    char key[160];
    size_t count;
    char example[1200];
};

static int cmp_group(const void *a, const void *b) {
    const struct group *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return strcmp(x->key, y->key);
}

/* Groups reasons by their text up to the first quote (the variable part). */
/* "placeholder %name% ..." -> "name".  Copies byte by byte: GCC 12's
 * -Wstringop-overread misjudges strchr on a pointer past strstr's hit. */
static void placeholder_name(const char *text, char *name, size_t size) {
    size_t skip = sizeof("placeholder %") - 1, n = 0;
    for (const char *c = text + skip; *c && *c != '%' && n + 1 < size; c++)
        name[n++] = *c;
    name[n] = '\0';
}

static void print_rejections(const struct cf_rulebook *rb) {
    struct group *g = calloc(rb->n_rejected + 1, sizeof(*g));
    size_t ng = 0;
    assert_non_null(g);
    for (size_t i = 0; i < rb->n_rejected; i++) {
        const char *reason = rb->rejected[i].reason;
        char key[160];
        size_t k = strcspn(reason, "'");
        if (k >= sizeof(key)) k = sizeof(key) - 1;
        memcpy(key, reason, k);
        key[k] = '\0';
        size_t j;
        for (j = 0; j < ng; j++)
            if (strcmp(g[j].key, key) == 0) break;
        if (j == ng) {
            snprintf(g[j].key, sizeof(g[j].key), "%s", key);
            snprintf(g[j].example, sizeof(g[j].example), "%s: %s",
                     rb->rejected[i].path, reason);
            ng++;
        }
        g[j].count++;
    }
    qsort(g, ng, sizeof(*g), cmp_group);
    for (size_t j = 0; j < ng; j++)
        printf("  %4zu x %s\n         e.g. %s\n", g[j].count, g[j].key,
               g[j].example);
    free(g);
}

static void test_sigmahq_rules_load(void **state) {
    (void)state;
    struct cf_rulebook *rb = cf_rulebook_new();
    char err[512];
    assert_non_null(rb);
    double t0 = now_s();
    assert_int_equal(cf_rulebook_load(rb, rules_dir, NULL, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_rulebook_load(rb, hunting_dir, NULL, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_rulebook_finish(rb, err, sizeof(err)), CF_OK);
    double t1 = now_s();
    size_t total = rb->n_rules + rb->n_rejected;
    printf("SigmaHQ rules + rules-threat-hunting: %zu of %zu documents "
           "loaded (%.2f%%), %zu rejected, %zu rule documents seen, "
           "load time %.3f s (%.0f rules/s)\n",
           rb->n_rules, total, 100.0 * (double)rb->n_rules / (double)total,
           rb->n_rejected, rb->n_documents, t1 - t0,
           (double)rb->n_rules / (t1 - t0));
    print_rejections(rb);
    assert_true(total > 2500);
    assert_true((double)rb->n_rules >= 0.99 * (double)total);

    /* Every loaded rule is complete: a condition, searches, a digest, its
     * index, and tactic/technique tags mapped where the rule has any. */
    size_t with_tactic = 0, with_technique = 0;
    for (size_t i = 0; i < rb->n_rules; i++) {
        const struct cf_sigma_rule *r = rb->rules[i];
        assert_non_null(r->condition);
        assert_true(r->n_searches > 0);
        assert_int_equal(strlen(r->digest), 64);
        assert_int_equal(r->index, i);
        assert_non_null(r->title);
        with_tactic += r->n_tactics > 0;
        with_technique += r->n_techniques > 0;
    }
    printf("rules with an ATT&CK tactic: %zu, with a technique: %zu\n",
           with_tactic, with_technique);
    assert_true(with_tactic > rb->n_rules / 2);
    assert_true(with_technique > rb->n_rules / 2);

    /* Loading is deterministic: same order and digests on a second run. */
    struct cf_rulebook *again = cf_rulebook_new();
    assert_int_equal(cf_rulebook_load(again, rules_dir, NULL, err, sizeof(err)),
                     CF_OK);
    assert_true(again->n_rules > 0);
    for (size_t i = 0; i < again->n_rules && i < rb->n_rules; i++)
        assert_string_equal(again->rules[i]->digest, rb->rules[i]->digest);
    cf_rulebook_destroy(again);
    cf_rulebook_destroy(rb);
}

/* rules-emerging-threats: the only acceptable rejections are rules that
 * need a placeholder value from the config. */
static void test_emerging_threats(void **state) {
    (void)state;
    struct stat st;
    if (stat(emerging_dir, &st) != 0) {
        if (cf_test_shared_missing(emerging_dir) == 77) skip();
        fail();
    }
    char err[512];
    struct cf_rulebook *rb = cf_rulebook_new();
    assert_int_equal(cf_rulebook_load(rb, emerging_dir, NULL, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_rulebook_finish(rb, err, sizeof(err)), CF_OK);
    size_t total = rb->n_rules + rb->n_rejected;
    printf("rules-emerging-threats: %zu of %zu loaded\n", rb->n_rules, total);
    print_rejections(rb);
    for (size_t i = 0; i < rb->n_rejected; i++)
        if (!strstr(rb->rejected[i].reason, "is not configured"))
            fail_msg("%s: %s", rb->rejected[i].path, rb->rejected[i].reason);
    assert_true((double)rb->n_rules >= 0.99 * (double)total);
    cf_rulebook_destroy(rb);
}

/* rules-placeholder: without a config every rule is rejected naming its
 * placeholder; with each named placeholder configured, all load and the
 * values appear as alternatives. */
static void test_placeholder_rules(void **state) {
    (void)state;
    struct stat st;
    if (stat(placeholder_dir, &st) != 0) {
        if (cf_test_shared_missing(placeholder_dir) == 77) skip();
        fail();
    }
    char err[512];
    struct cf_rulebook *rb = cf_rulebook_new();
    assert_int_equal(
        cf_rulebook_load(rb, placeholder_dir, NULL, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_rulebook_finish(rb, err, sizeof(err)), CF_OK);
    size_t n_docs = rb->n_documents;
    assert_true(n_docs > 0);
    assert_int_equal(rb->n_rules, 0);
    struct cf_config *cfg = cf_config_default();
    assert_non_null(cfg);
    json_t *ph = json_object();
    for (size_t i = 0; i < rb->n_rejected; i++) {
        const char *reason = rb->rejected[i].reason;
        const char *p = strstr(reason, "placeholder %");
        if (!p) fail_msg("unexpected rejection: %s", reason);
        char name[128];
        placeholder_name(p, name, sizeof name);
        json_object_set_new(ph, name, json_pack("[s,s]", "one", "two"));
    }
    json_object_set_new(cfg->root, "placeholders", ph);
    cf_rulebook_destroy(rb);

    /* Placeholders can be nested in several searches of one rule, so
     * repeat until nothing new is named. */
    for (int round = 0; round < 5; round++) {
        rb = cf_rulebook_new();
        assert_int_equal(
            cf_rulebook_load(rb, placeholder_dir, cfg, err, sizeof(err)),
            CF_OK);
        if (rb->n_rejected == 0) break;
        for (size_t i = 0; i < rb->n_rejected; i++) {
            const char *p = strstr(rb->rejected[i].reason, "placeholder %");
            if (!p) fail_msg("unexpected: %s", rb->rejected[i].reason);
            char name[128];
            placeholder_name(p, name, sizeof name);
            json_object_set_new(ph, name, json_pack("[s,s]", "one", "two"));
        }
        cf_rulebook_destroy(rb);
        rb = NULL;
    }
    assert_non_null(rb);
    printf("rules-placeholder: %zu of %zu load once their %zu placeholders "
           "are configured\n",
           rb->n_rules, n_docs, json_object_size(ph));
    assert_int_equal(rb->n_rules, n_docs);
    cf_rulebook_destroy(rb);
    cf_config_destroy(cfg);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_directory_walk(void **state) {
    (void)state;
    char dir[] = "/tmp/cf_sigma_load_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[4400], sub[4200];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    static const char rule_fmt[] =
        "title: %s\nid: %s\nlogsource: {product: windows}\n"
        "detection:\n  sel: {EventID: 1}\n  condition: sel\n";
    char text[512];
    snprintf(text, sizeof(text), rule_fmt, "B", "id-b");
    snprintf(p, sizeof(p), "%s/b.yml", dir);
    write_file(p, text);
    snprintf(text, sizeof(text), rule_fmt, "A", "id-a");
    snprintf(p, sizeof(p), "%s/a.yaml", dir);
    write_file(p, text);
    snprintf(text, sizeof(text), rule_fmt, "C", "id-c");
    snprintf(p, sizeof(p), "%s/c.yml", sub);
    write_file(p, text);
    snprintf(p, sizeof(p), "%s/notes.txt", dir);
    write_file(p, "not a rule");
    snprintf(p, sizeof(p), "%s/broken.yml", dir);
    write_file(p, "title: x\ndetection: [unclosed\n");

    struct cf_rulebook *rb = cf_rulebook_new();
    char err[512];
    assert_int_equal(cf_rulebook_load(rb, dir, NULL, err, sizeof(err)), CF_OK);
    assert_int_equal(rb->n_rules, 3);
    /* sorted: a.yaml, b.yml, broken.yml, sub/c.yml */
    assert_string_equal(rb->rules[0]->title, "A");
    assert_string_equal(rb->rules[1]->title, "B");
    assert_string_equal(rb->rules[2]->title, "C");
    assert_int_equal(rb->n_rejected, 1);
    assert_non_null(strstr(rb->rejected[0].path, "broken.yml"));
    assert_non_null(strstr(rb->rejected[0].reason, "line"));
    assert_non_null(strstr(rb->rejected[0].reason, "column"));

    /* An unreadable path is an error, not a rejection. */
    snprintf(p, sizeof(p), "%s/missing", dir);
    assert_int_not_equal(cf_rulebook_load(rb, p, NULL, err, sizeof(err)),
                         CF_OK);
    assert_non_null(strstr(err, "missing"));
    cf_rulebook_destroy(rb);
    cf_rulebook_destroy(NULL);

    snprintf(p, sizeof(p), "rm -rf '%s'", dir);
    assert_int_equal(system(p), 0);
}

/* Ids and names must be unique across rules: the error names the first
 * repeat in load order, the smaller string when one rule repeats two
 * (here x1 and z9, both first used by earlier rules), and counts the
 * others. */
static void test_unique_report(void **state) {
    (void)state;
    char dir[] = "/tmp/cf_sigma_unique_XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const char *const files[][2] = {
        {"a.yml", "id: x1\n"},
        {"b.yml", "id: z9\n"},
        {"c.yml", "id: z9\nname: x1\n"},
        {"d.yml", "id: y5\n"},
    };
    char p[4400], text[512];
    for (size_t i = 0; i < 4; i++) {
        snprintf(text, sizeof(text),
                 "title: T%zu\n%slogsource: {product: windows}\n"
                 "detection:\n  sel: {EventID: 1}\n  condition: sel\n",
                 i, files[i][1]);
        snprintf(p, sizeof(p), "%s/%s", dir, files[i][0]);
        write_file(p, text);
    }
    struct cf_rulebook *rb = cf_rulebook_new();
    char err[1024], want[2048];
    assert_int_equal(cf_rulebook_load(rb, dir, NULL, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_rulebook_finish(rb, err, sizeof(err)), CF_ERR_PARSE);
    snprintf(want, sizeof(want),
             "x1 is used twice: as the rule id in %s/a.yml and as the rule "
             "name in %s/c.yml; ",
             dir, dir);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "(and 1 more)"));
    cf_rulebook_destroy(rb);
    snprintf(p, sizeof(p), "rm -rf '%s'", dir);
    assert_int_equal(system(p), 0);
}

int main(void) {
    const char *shared = getenv("CF_SHARED_DIR");
    if (!shared) return cf_test_shared_missing("SigmaHQ rules");
    snprintf(rules_dir, sizeof(rules_dir), "%s/data/sigma/rules", shared);
    snprintf(hunting_dir, sizeof(hunting_dir),
             "%s/data/sigma/rules-threat-hunting", shared);
    snprintf(emerging_dir, sizeof(emerging_dir),
             "%s/data/sigma/rules-emerging-threats", shared);
    snprintf(placeholder_dir, sizeof(placeholder_dir),
             "%s/data/sigma/rules-placeholder", shared);
    struct stat st;
    if (stat(rules_dir, &st) != 0) return cf_test_shared_missing(rules_dir);
    if (stat(hunting_dir, &st) != 0) return cf_test_shared_missing(hunting_dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directory_walk),
        cmocka_unit_test(test_unique_report),
        cmocka_unit_test(test_sigmahq_rules_load),
        cmocka_unit_test(test_emerging_threats),
        cmocka_unit_test(test_placeholder_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
