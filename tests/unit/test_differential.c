/*
 * test_differential.c - the Hyperscan matcher against the simple oracle on
 * every OTRF recording, with the whole SigmaHQ rule set loaded.
 *
 * Asserts that the set of (event line, rule id) pairs is the same for
 * both.  CF_DIFFERENTIAL_MAX_EVENTS caps the events read per dataset
 * (default 20000; 0 = all) so the ASan CI run stays reasonable.
 * Skips (77) when CF_SHARED_DIR is missing; fails under
 * CF_REQUIRE_SHARED=1 (shared_data.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "event.h"
#include "oracle.h"
#include "ruleset.h"
#include "shared_data.h"
#include "sigma.h"

static char shared[4096];

struct hits {
    uint32_t *idx;
    size_t n, cap;
};

static void collect(const struct cf_sigma_rule *r, void *opaque) {
    struct hits *h = opaque;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->idx = realloc(h->idx, h->cap * sizeof *h->idx);
        assert_non_null(h->idx);
    }
    h->idx[h->n++] = r->index;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void find_zips(const char *dir, char ***out, size_t *n) {
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) return;
    while ((e = readdir(d))) {
        char p[8300];
        struct stat st;
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            find_zips(p, out, n);
        } else {
            size_t l = strlen(p);
            if (l > 4 && strcasecmp(p + l - 4, ".zip") == 0) {
                *out = realloc(*out, (*n + 1) * sizeof **out);
                (*out)[(*n)++] = strdup(p);
            }
        }
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_differential(void **state) {
    (void)state;
    static const char *const dirs[] = {"rules", "rules-threat-hunting",
                                       "rules-emerging-threats"};
    char err[512] = "";
    struct cf_rulebook *rb = cf_rulebook_new();
    assert_non_null(rb);
    for (size_t i = 0; i < 3; i++) {
        char p[8300];
        snprintf(p, sizeof p, "%s/data/sigma/%s", shared, dirs[i]);
        assert_int_equal(cf_rulebook_load(rb, p, NULL, err, sizeof err), CF_OK);
    }
    assert_int_equal(cf_rulebook_finish(rb, err, sizeof err), CF_OK);
    struct cf_ruleset *rs = cf_ruleset_compile(rb, NULL, err, sizeof err);
    if (!rs) fprintf(stderr, "compile: %s\n", err);
    assert_non_null(rs);
    struct cf_oracle *o = cf_oracle_new(rb, NULL, err, sizeof err);
    if (!o) fprintf(stderr, "oracle: %s\n", err);
    assert_non_null(o);
    printf("rules: %zu loaded, %zu rejected, %zu skipped by the oracle\n",
           rb->n_rules, rb->n_rejected, cf_oracle_skipped(o));
    struct cf_matcher *m = cf_matcher_new(rs);
    assert_non_null(m);
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_event ev;
    cf_event_init(&ev);
    struct cf_decode_limits lim = {1u << 24, 256};

    long max_events = 20000;
    const char *env = getenv("CF_DIFFERENTIAL_MAX_EVENTS");
    if (env) max_events = strtol(env, NULL, 10);

    char **zips = NULL;
    size_t n_zips = 0;
    char root[4200];
    snprintf(root, sizeof root, "%s/data/otrf/datasets", shared);
    find_zips(root, &zips, &n_zips);
    assert_true(n_zips > 0);
    qsort(zips, n_zips, sizeof *zips, cmp_str);

    size_t total_diff = 0, total_events = 0, total_alerts = 0;
    struct hits a = {0}, b = {0};
    char *line = NULL;
    size_t cap = 0;
    for (size_t z = 0; z < n_zips; z++) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "unzip -p '%s' 2>/dev/null", zips[z]);
        FILE *f = popen(cmd, "r");
        assert_non_null(f);
        ssize_t len;
        long lineno = 0, events = 0, alerts = 0, diffs = 0, bad = 0;
        while ((len = getline(&line, &cap, f)) > 0) {
            lineno++;
            if (max_events > 0 && events >= max_events) continue;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            if (len == 0 || line[0] != '{') {
                bad++;
                continue;
            }
            const char *reason = NULL;
            if (cf_event_decode(dec, &ev, line, (size_t)len, &lim, &reason) !=
                CF_OK) {
                bad++;
                continue;
            }
            events++;
            a.n = b.n = 0;
            cf_matcher_match(m, &ev, collect, &a);
            cf_oracle_match(o, &ev, collect, &b);
            /* qsort's array may not be NULL even when empty (UBSan). */
            if (a.n) qsort(a.idx, a.n, sizeof *a.idx, cmp_u32);
            if (b.n) qsort(b.idx, b.n, sizeof *b.idx, cmp_u32);
            alerts += (long)b.n;
            size_t i = 0, j = 0;
            while (i < a.n || j < b.n) {
                uint32_t r;
                const char *who;
                if (j >= b.n || (i < a.n && a.idx[i] < b.idx[j])) {
                    r = a.idx[i++];
                    who = "matcher only";
                } else if (i >= a.n || b.idx[j] < a.idx[i]) {
                    r = b.idx[j++];
                    who = "oracle only";
                } else {
                    i++;
                    j++;
                    continue;
                }
                diffs++;
                if (total_diff + (size_t)diffs <= 10) {
                    const struct cf_sigma_rule *rule = rb->rules[r];
                    printf("  DIFF %s: %s line %ld rule %s (%s)\n    event: "
                           "%.400s\n",
                           who, zips[z] + strlen(root) + 1, lineno,
                           rule->id ? rule->id : "?", rule->title, line);
                }
            }
        }
        pclose(f);
        printf("%-90s events %6ld (non-JSON %ld) alerts %6ld diffs %ld\n",
               zips[z] + strlen(root) + 1, events, bad, alerts, diffs);
        fflush(stdout);
        total_diff += (size_t)diffs;
        total_events += (size_t)events;
        total_alerts += (size_t)alerts;
        free(zips[z]);
    }
    printf("TOTAL events %zu alerts %zu differences %zu (max %ld events per "
           "dataset)\n",
           total_events, total_alerts, total_diff, max_events);
    free(zips);
    free(line);
    free(a.idx);
    free(b.idx);
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
    cf_matcher_destroy(m);
    cf_oracle_destroy(o);
    cf_ruleset_destroy(rs);
    cf_rulebook_destroy(rb);
    assert_true(total_events > 0);
    assert_true(total_alerts > 0); /* a silent pair would prove nothing */
    assert_int_equal(total_diff, 0);
}

int main(void) {
    const char *s = getenv("CF_SHARED_DIR");
    struct stat st;
    if (!s) s = "";
    snprintf(shared, sizeof shared, "%s", s);
    char p[4200];
    snprintf(p, sizeof p, "%s/data/otrf/datasets", shared);
    if (!*s || stat(p, &st) != 0) return cf_test_shared_missing(p);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_differential)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
