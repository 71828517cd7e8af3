/*
 * test_regression.c - SigmaHQ's regression cases: each event under
 * regression_data must raise the rule its info.yml names, with the whole
 * rule set loaded and compiled.  For a failure the oracle's answer is
 * printed too, to tell a matcher bug from a parser/routing one.
 * Skips (77) when CF_SHARED_DIR is missing; fails under
 * CF_REQUIRE_SHARED=1 (shared_data.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "event.h"
#include "oracle.h"
#include "ruleset.h"
#include "shared_data.h"
#include "sigma.h"
#include "yaml_json.h"

static char shared[4096];

struct want {
    const char *id;
    bool seen;
};

static void check(const struct cf_sigma_rule *r, void *opaque) {
    struct want *w = opaque;
    if (r->id && strcmp(r->id, w->id) == 0) w->seen = true;
}

struct ctx {
    struct cf_rulebook *rb;
    struct cf_matcher *m;
    struct cf_oracle *o;
    struct cf_decoder *dec;
    struct cf_event ev;
    size_t cases, passed;
};

static void run_case(struct ctx *c, const char *dir) {
    char p[4200], err[256] = "";
    const char *why = NULL;
    size_t len;
    snprintf(p, sizeof p, "%s/info.yml", dir);
    char *text = cf_read_file(p, &len, err, sizeof err);
    json_t *docs = text ? cf_yaml_to_json(text, len, err, sizeof err) : NULL;
    free(text);
    const char *id = json_string_value(json_object_get(
        json_array_get(
            json_object_get(json_array_get(docs, 0), "rule_metadata"), 0),
        "id"));
    char *line = NULL;
    c->cases++;
    if (!id) {
        why = "info.yml names no rule_metadata id";
        goto done;
    }
    /* The event file is <rule id>.json beside info.yml: one or more
     * pretty-printed events one after the other; the case passes when
     * any of them raises the rule. */
    snprintf(p, sizeof p, "%s/%s.json", dir, id);
    char *body = cf_read_file(p, &len, err, sizeof err);
    if (!body) {
        why = "event .json missing or unreadable";
        goto done;
    }
    bool loaded = false;
    for (size_t i = 0; i < c->rb->n_rules && !loaded; i++)
        loaded = c->rb->rules[i]->id && strcmp(c->rb->rules[i]->id, id) == 0;
    if (!loaded) {
        free(body);
        why = "rule not loaded (rejected by parser or compiler, see below)";
        for (size_t i = 0; i < c->rb->n_rejected; i++)
            if (c->rb->rejected[i].id && strcmp(c->rb->rejected[i].id, id) == 0)
                printf("    rejected: %s\n", c->rb->rejected[i].reason);
        goto done;
    }
    struct want w = {id, false}, wo = {id, false};
    size_t off = 0, n_events = 0;
    while (off < len) {
        json_error_t jerr;
        while (off < len && strchr(" \t\r\n", body[off])) off++;
        if (off >= len) break;
        json_t *evj =
            json_loadb(body + off, len - off, JSON_DISABLE_EOF_CHECK, &jerr);
        if (!evj) {
            why = "event .json is not valid JSON";
            break;
        }
        off += jerr.position;
        free(line);
        line = json_dumps(evj, JSON_COMPACT);
        json_decref(evj);
        struct cf_decode_limits lim = {1u << 24, 256};
        const char *reason = NULL;
        if (cf_event_decode(c->dec, &c->ev, line, strlen(line), &lim,
                            &reason) != CF_OK) {
            why = reason ? reason : "decode failed";
            break;
        }
        n_events++;
        cf_matcher_match(c->m, &c->ev, check, &w);
        cf_oracle_match(c->o, &c->ev, check, &wo);
    }
    free(body);
    if (why) goto done;
    if (w.seen) {
        c->passed++;
        if (!wo.seen) printf("  NOTE oracle misses %s (%s)\n", id, dir);
    } else {
        why = wo.seen ? "matcher misses it, oracle matches (matcher bug)"
                      : "neither matcher nor oracle match (rule AST, decoder "
                        "or routing)";
    }
done:
    if (why) printf("  FAIL %s (%s): %s\n", id ? id : "?", dir, why);
    free(line);
    json_decref(docs);
}

static void walk(struct ctx *c, const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    bool has_info = false;
    if (!d) return;
    while ((e = readdir(d))) {
        char p[4200];
        struct stat st;
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st)) continue;
        if (S_ISDIR(st.st_mode))
            walk(c, p);
        else if (strcmp(e->d_name, "info.yml") == 0)
            has_info = true;
    }
    closedir(d);
    if (has_info) run_case(c, dir);
}

static void test_regression(void **state) {
    (void)state;
    static const char *const dirs[] = {"rules", "rules-threat-hunting",
                                       "rules-emerging-threats"};
    char err[512] = "";
    struct ctx c = {0};
    assert_non_null(c.rb = cf_rulebook_new());
    for (size_t i = 0; i < 3; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/data/sigma/%s", shared, dirs[i]);
        assert_int_equal(cf_rulebook_load(c.rb, p, NULL, err, sizeof err),
                         CF_OK);
    }
    assert_int_equal(cf_rulebook_finish(c.rb, err, sizeof err), CF_OK);
    struct cf_ruleset *rs = cf_ruleset_compile(c.rb, NULL, err, sizeof err);
    if (!rs) fprintf(stderr, "compile: %s\n", err);
    assert_non_null(rs);
    assert_non_null(c.o = cf_oracle_new(c.rb, NULL, err, sizeof err));
    assert_non_null(c.m = cf_matcher_new(rs));
    assert_non_null(c.dec = cf_decoder_new());
    cf_event_init(&c.ev);
    char root[4200];
    snprintf(root, sizeof root, "%s/data/sigma/regression_data", shared);
    walk(&c, root);
    printf("regression: %zu of %zu cases pass\n", c.passed, c.cases);
    cf_event_free(&c.ev);
    cf_decoder_destroy(c.dec);
    cf_matcher_destroy(c.m);
    cf_oracle_destroy(c.o);
    cf_ruleset_destroy(rs);
    cf_rulebook_destroy(c.rb);
    assert_true(c.cases > 0);
    assert_int_equal(c.passed, c.cases);
}

int main(void) {
    const char *s = getenv("CF_SHARED_DIR");
    struct stat st;
    if (!s) s = "";
    snprintf(shared, sizeof shared, "%s", s);
    char p[4200];
    snprintf(p, sizeof p, "%s/data/sigma/regression_data", shared);
    if (!*s || stat(p, &st) != 0) return cf_test_shared_missing(p);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_regression)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
