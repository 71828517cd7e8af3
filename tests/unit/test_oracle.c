/*
 * test_oracle.c - the test oracle (tests/oracle) held to independent
 * truth, so that the differential test compares the matcher with
 * something known to be right:
 *
 *   - every golden case (tests/golden: rules, events and the alerts
 *     expected, written by hand from the Sigma specification);
 *   - the typed checks (numbers, CIDR, time parts, fieldref) on values
 *     chosen at the edges of the specification's wording.  Each probe's
 *     expectation comes from the specification text quoted beside it.
 *
 * The matcher is held to the same probes: where it answers differently
 * from the expectation, the probe is printed as a NOTE and the test
 * fails.  Needs no shared data.
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
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "oracle.h"
#include "ruleset.h"
#include "sigma.h"
#include "yaml_json.h"

/* ---- probes of the typed checks ---------------------------------------- */

struct probe {
    const char *field_line; /* one selection entry, e.g. "Count|gt: 10" */
    const char *event;      /* one JSON event */
    bool want;
};

/* Numeric modifiers: "lt: Field is less than the value" etc.  Numbers
 * arrive as JSON numbers or as strings holding one number. */
static const struct probe numbers[] = {
    {"Count|gt: 10", "{\"Count\": 11}", true},
    {"Count|gt: 10", "{\"Count\": \"11\"}", true},
    {"Count|gt: 10", "{\"Count\": 10}", false},
    {"Count|gt: 10", "{\"Count\": \"1e2\"}", true},
    {"Count|gt: 10", "{\"Count\": \"eleven\"}", false},
    {"Count|gt: 10", "{\"Count\": \"11 apples\"}", false},
    {"Count|gt: 10", "{\"Count\": \"0x20\"}", false}, /* not decimal */
    {"Count|gt: 10", "{\"Count\": \" 11\"}", false},
    {"Count|gt: 10", "{\"Count\": null}", false},
    {"Count|gt: 10", "{\"Count\": true}", false},
    {"Count|gt: 10", "{\"Other\": 11}", false},
    {"Count|gt: 10", "{\"Count\": [3, 12]}", true}, /* any element */
    {"Count|lte: 1.5", "{\"Count\": \"1.50\"}", true},
    {"Count|lte: 1.5", "{\"Count\": 1.5000001}", false},
    {"Count|lt: 0", "{\"Count\": \"-0.5\"}", true},
    {"Count|gte: -3", "{\"Count\": -3}", true},
    {"Count|gte: -3", "{\"Count\": \"-4\"}", false},
};

/* "cidr: The value is handled as a CIDR network range specification ...
 * Supports both IPv4 and IPv6 notations." */
static const struct probe cidrs[] = {
    {"Ip|cidr: 10.0.0.0/8", "{\"Ip\": \"10.255.1.2\"}", true},
    {"Ip|cidr: 10.0.0.0/8", "{\"Ip\": \"11.0.0.1\"}", false},
    {"Ip|cidr: 10.0.0.0/8", "{\"Ip\": \"10.0.0\"}", false},
    {"Ip|cidr: 10.0.0.0/8", "{\"Ip\": \"10.0.0.256\"}", false},
    {"Ip|cidr: 10.0.0.0/8", "{\"Ip\": \"10.0.0.1 \"}", false},
    {"Ip|cidr: 10.0.0.0/8", "{\"Ip\": \"10.0.0.1:445\"}", false},
    {"Ip|cidr: 10.0.0.0/8", "{\"Ip\": \"::ffff:10.0.0.1\"}", false},
    {"Ip|cidr: 192.168.1.0/24", "{\"Ip\": \"192.168.1.255\"}", true},
    {"Ip|cidr: 192.168.1.0/24", "{\"Ip\": \"192.168.2.0\"}", false},
    {"Ip|cidr: 172.16.0.0/12", "{\"Ip\": \"172.31.255.255\"}", true},
    {"Ip|cidr: 172.16.0.0/12", "{\"Ip\": \"172.32.0.0\"}", false},
    {"Ip|cidr: 0.0.0.0/0", "{\"Ip\": \"8.8.8.8\"}", true},
    {"Ip|cidr: 0.0.0.0/0", "{\"Ip\": \"fe80::1\"}", false},
    {"Ip|cidr: fe80::/10", "{\"Ip\": \"fe80::1\"}", true},
    {"Ip|cidr: fe80::/10", "{\"Ip\": \"FEBF:0:0:0:0:0:0:1\"}", true},
    {"Ip|cidr: fe80::/10", "{\"Ip\": \"fec0::1\"}", false},
    {"Ip|cidr: fe80::/10", "{\"Ip\": \"fe80::1::2\"}", false},
    {"Ip|cidr: fe80::/10", "{\"Ip\": \"fe80:0:0:0:0:0:1.2.3.4\"}", true},
    {"Ip|cidr: fe80::/10", "{\"Ip\": \"fe80:0:0:0:0:0:0:0:1\"}", false},
    {"Ip|cidr: fe80::/10", "{\"Ip\": \"10.0.0.1\"}", false},
    {"Ip|cidr: '::/0'", "{\"Ip\": \"::\"}", true},
    {"Ip|cidr: 2001:db8::/32", "{\"Ip\": \"2001:db8:ffff::\"}", true},
    {"Ip|cidr: 2001:db8::/32", "{\"Ip\": \"2001:db9::\"}", false},
    {"Ip|cidr: 2001:db8::1/128", "{\"Ip\": \"2001:DB8:0::1\"}", true},
};

/* Time modifiers "can only be applied to date values" and are "not
 * designed to handle timezone or format conversions": the parts are read
 * as the date is written.  week is the ISO 8601 week. */
static const struct probe times[] = {
    {"T|hour: 23", "{\"T\": \"2024-03-05T23:30:00+02:00\"}", true},
    {"T|hour: 21", "{\"T\": \"2024-03-05T23:30:00+02:00\"}", false},
    {"T|hour: 23", "{\"T\": \"2024-03-05 23:59:59.9999999\"}", true},
    {"T|hour: 0", "{\"T\": \"2024-03-05\"}", false}, /* no time given */
    {"T|hour: 0", "{\"T\": 1709596800}", false},     /* epoch: no date */
    {"T|hour: 0", "{\"T\": \"not a date\"}", false},
    {"T|minute|gte: 30", "{\"T\": \"2024-03-05T10:30:00Z\"}", true},
    {"T|minute|gte: 30", "{\"T\": \"2024-03-05T10:29:59Z\"}", false},
    {"T|day: 29", "{\"T\": \"2024-02-29T00:00:00Z\"}", true},
    {"T|day: 29", "{\"T\": \"2023-02-29T00:00:00Z\"}", false},
    {"T|month: 12", "{\"T\": \"2024-12-31T23:00:00-05:00\"}", true},
    {"T|year: 2024", "{\"T\": \"2024-12-31T23:00:00-05:00\"}", true},
    {"T|week: 53", "{\"T\": \"2021-01-03T00:00:00Z\"}", true},
    {"T|week: 1", "{\"T\": \"2024-12-30T12:00:00Z\"}", true},
    {"T|week: 1", "{\"T\": \"2024-01-01\"}", true},
    {"T|week: 52", "{\"T\": \"2023-12-31\"}", true},
    {"T|week: 10", "{\"T\": \"2024-03-05\"}", true},
};

/* "fieldref: ... compare fields of matched events directly", and "cased:
 * Values are applied case sensitively. Default Sigma behavior is
 * case-insensitive matching." */
static const struct probe fieldrefs[] = {
    {"Image|fieldref: ParentImage",
     "{\"Image\": \"C:\\\\Windows\\\\cmd.exe\", "
     "\"ParentImage\": \"C:\\\\Windows\\\\cmd.exe\"}",
     true},
    {"Image|fieldref: ParentImage",
     "{\"Image\": \"C:\\\\Windows\\\\cmd.exe\", "
     "\"ParentImage\": \"c:\\\\windows\\\\CMD.EXE\"}",
     true},
    {"Image|fieldref|cased: ParentImage",
     "{\"Image\": \"C:\\\\Windows\\\\cmd.exe\", "
     "\"ParentImage\": \"c:\\\\windows\\\\CMD.EXE\"}",
     false},
    {"Image|fieldref|cased: ParentImage",
     "{\"Image\": \"C:\\\\Windows\\\\cmd.exe\", "
     "\"ParentImage\": \"C:\\\\Windows\\\\cmd.exe\"}",
     true},
    {"Image|fieldref: ParentImage",
     "{\"Image\": \"a.exe\", \"ParentImage\": \"b.exe\"}", false},
    {"Image|fieldref: ParentImage", "{\"Image\": \"a.exe\"}", false},
    {"Image|fieldref: ParentImage", "{\"Image\": null, \"ParentImage\": null}",
     false},
    {"Image|fieldref: ParentImage",
     "{\"Image\": \"b.exe\", \"ParentImage\": [\"a.exe\", \"B.EXE\"]}", true},
    {"CommandLine|fieldref|contains: Image",
     "{\"CommandLine\": \"x /c CMD.EXE y\", \"Image\": \"cmd.exe\"}", true},
    {"CommandLine|fieldref|startswith: Image",
     "{\"CommandLine\": \"CMD.EXE /c y\", \"Image\": \"cmd.exe\"}", true},
    {"CommandLine|fieldref|startswith: Image",
     "{\"CommandLine\": \"x CMD.EXE\", \"Image\": \"cmd.exe\"}", false},
    {"CommandLine|fieldref|endswith: Image",
     "{\"CommandLine\": \"x CMD.EXE\", \"Image\": \"cmd.exe\"}", true},
    {"CommandLine|fieldref|endswith|cased: Image",
     "{\"CommandLine\": \"x CMD.EXE\", \"Image\": \"cmd.exe\"}", false},
    {"User|fieldref|neq: ParentUser",
     "{\"User\": \"CORP\\\\Alice\", \"ParentUser\": \"corp\\\\alice\"}", false},
    {"User|fieldref|neq: ParentUser",
     "{\"User\": \"CORP\\\\Alice\", \"ParentUser\": \"CORP\\\\Bob\"}", true},
};

static char tmpdir[] = "/tmp/cf_test_oracle_XXXXXX";

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* 1 when the matcher's answer differs from the expectation. */
static int run_probe(const struct probe *pr, size_t i, const char *group) {
    char rule[1024], path[256], err[512] = "";
    snprintf(rule, sizeof rule,
             "title: probe\nid: 0a0a0a0a-0000-4000-8000-%012zu\n"
             "logsource:\n    category: oracle_probe\n"
             "detection:\n    sel:\n        %s\n    condition: sel\n",
             i, pr->field_line);
    snprintf(path, sizeof path, "%s/probe.yml", tmpdir);
    write_text(path, rule);
    struct cf_rulebook *rb = cf_rulebook_new();
    assert_non_null(rb);
    assert_int_equal(cf_rulebook_load(rb, path, NULL, err, sizeof err), CF_OK);
    assert_int_equal(cf_rulebook_finish(rb, err, sizeof err), CF_OK);
    if (rb->n_rules != 1)
        fail_msg("%s: '%s' was not loaded: %s", group, pr->field_line,
                 rb->n_rejected ? rb->rejected[0].reason : "?");
    struct cf_oracle *o = cf_oracle_new(rb, NULL, err, sizeof err);
    assert_non_null(o);
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_event ev;
    struct cf_decode_limits lim = {1u << 20, 64};
    const char *reason = NULL;
    cf_event_init(&ev);
    assert_int_equal(
        cf_event_decode(dec, &ev, pr->event, strlen(pr->event), &lim, &reason),
        CF_OK);
    int got = cf_oracle_match(o, &ev, NULL, NULL);
    if (got != (pr->want ? 1 : 0))
        fail_msg("%s: oracle says %s for '%s' on %s, the specification %s",
                 group, got ? "match" : "no match", pr->field_line, pr->event,
                 pr->want ? "a match" : "no match");

    /* The matcher on the same probe. */
    int differs = 0;
    struct cf_ruleset *rs = cf_ruleset_compile(rb, NULL, err, sizeof err);
    if (rs) {
        struct cf_matcher *m = cf_matcher_new(rs);
        assert_non_null(m);
        int engine = cf_matcher_match(m, &ev, NULL, NULL);
        if ((engine > 0) != pr->want) {
            printf("NOTE %s: the matcher says %s for '%s' on %s\n", group,
                   engine > 0 ? "match" : "no match", pr->field_line,
                   pr->event);
            differs = 1;
        }
        cf_matcher_destroy(m);
        cf_ruleset_destroy(rs);
    }
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
    cf_oracle_destroy(o);
    cf_rulebook_destroy(rb);
    return differs;
}

static void run_probes(const struct probe *probes, size_t n,
                       const char *group) {
    int differs = 0;
    for (size_t i = 0; i < n; i++) differs += run_probe(&probes[i], i, group);
    printf("%s: %zu probes; the matcher differs from the specification on "
           "%d\n",
           group, n, differs);
    /* The matcher is held to the same reading of the specification. */
    assert_int_equal(differs, 0);
}

static void test_numbers(void **state) {
    (void)state;
    run_probes(numbers, CF_ARRAY_LEN(numbers), "numbers");
}

static void test_cidr(void **state) {
    (void)state;
    run_probes(cidrs, CF_ARRAY_LEN(cidrs), "cidr");
}

static void test_time_parts(void **state) {
    (void)state;
    run_probes(times, CF_ARRAY_LEN(times), "time parts");
}

static void test_fieldref(void **state) {
    (void)state;
    run_probes(fieldrefs, CF_ARRAY_LEN(fieldrefs), "fieldref");
}

/* ---- the golden cases ---------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct pairs {
    char **v;
    size_t n;
};

static void pairs_add(struct pairs *p, const char *id, long line) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s %ld", id ? id : "?", line);
    p->v = realloc(p->v, (p->n + 1) * sizeof *p->v);
    assert_non_null(p->v);
    assert_non_null(p->v[p->n++] = strdup(buf));
}

static void pairs_free(struct pairs *p) {
    for (size_t i = 0; i < p->n; i++) free(p->v[i]);
    free(p->v);
}

struct line_ctx {
    struct pairs *got;
    long line;
};

static void collect(const struct cf_sigma_rule *r, void *opaque) {
    struct line_ctx *c = opaque;
    pairs_add(c->got, r->id, c->line);
}

/* Runs one case; returns true when the oracle gives exactly the expected
 * (rule, line) pairs. */
static bool golden_case(const char *dir, const char *name) {
    char path[4600], err[512] = "";
    struct stat st;
    struct cf_config *cfg = NULL;
    snprintf(path, sizeof path, "%s/config.yml", dir);
    if (stat(path, &st) == 0) {
        cfg = cf_config_load(path, err, sizeof err);
        if (!cfg) fail_msg("%s: %s", path, err);
    }
    struct cf_rulebook *rb = cf_rulebook_new();
    assert_non_null(rb);
    snprintf(path, sizeof path, "%s/rules", dir);
    if (stat(path, &st) != 0) snprintf(path, sizeof path, "%s/rules.yml", dir);
    assert_int_equal(cf_rulebook_load(rb, path, cfg, err, sizeof err), CF_OK);
    assert_int_equal(cf_rulebook_finish(rb, err, sizeof err), CF_OK);
    struct cf_oracle *o = cf_oracle_new(rb, cfg, err, sizeof err);
    if (!o) fail_msg("%s: oracle: %s", name, err);

    struct pairs got = {0}, want = {0};
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_event ev;
    struct cf_decode_limits lim = {1u << 20, 64};
    cf_event_init(&ev);
    snprintf(path, sizeof path, "%s/events.jsonl", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    struct line_ctx ctx = {&got, 0};
    while ((len = getline(&line, &cap, f)) >= 0) {
        const char *reason;
        ctx.line++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || cf_event_decode(dec, &ev, line, (size_t)len, &lim,
                                        &reason) != CF_OK)
            continue;
        assert_true(cf_oracle_match(o, &ev, collect, &ctx) >= 0);
    }
    fclose(f);

    snprintf(path, sizeof path, "%s/expected.jsonl", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    while ((len = getline(&line, &cap, f)) >= 0) {
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)len, 0, &jerr);
        if (!j) continue; /* blank line */
        pairs_add(&want, json_string_value(json_object_get(j, "rule")),
                  (long)json_integer_value(json_object_get(j, "offset")));
        json_decref(j);
    }
    fclose(f);
    free(line);

    if (got.n) qsort(got.v, got.n, sizeof *got.v, cmp_str);
    if (want.n) qsort(want.v, want.n, sizeof *want.v, cmp_str);
    bool same = got.n == want.n;
    for (size_t i = 0; same && i < got.n; i++)
        same = strcmp(got.v[i], want.v[i]) == 0;
    if (!same) {
        printf("FAIL golden %s: expected %zu alerts, the oracle gives %zu\n",
               name, want.n, got.n);
        for (size_t i = 0; i < want.n; i++) printf("    want %s\n", want.v[i]);
        for (size_t i = 0; i < got.n; i++) printf("    got  %s\n", got.v[i]);
    } else {
        printf("ok: golden %s (%zu alerts)\n", name, want.n);
    }
    pairs_free(&got);
    pairs_free(&want);
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
    cf_oracle_destroy(o);
    cf_rulebook_destroy(rb);
    cf_config_destroy(cfg);
    return same;
}

static void test_golden(void **state) {
    (void)state;
    const char *src = getenv("CF_SOURCE_DIR");
    char root[4096];
    snprintf(root, sizeof root, "%s/tests/golden", src ? src : CF_SOURCE_DIR);
    DIR *d = opendir(root);
    assert_non_null(d);
    struct dirent *e;
    struct pairs names = {0};
    while ((e = readdir(d))) {
        char p[4400];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s/events.jsonl", root, e->d_name);
        if (e->d_name[0] != '.' && stat(p, &st) == 0)
            pairs_add(&names, e->d_name, 0);
    }
    closedir(d);
    assert_true(names.n > 0);
    qsort(names.v, names.n, sizeof *names.v, cmp_str);
    size_t failed = 0;
    for (size_t i = 0; i < names.n; i++) {
        char dir[4400];
        *strchr(names.v[i], ' ') = '\0';
        snprintf(dir, sizeof dir, "%s/%s", root, names.v[i]);
        failed += !golden_case(dir, names.v[i]);
    }
    printf("golden: %zu cases, %zu where the oracle disagrees\n", names.n,
           failed);
    pairs_free(&names);
    assert_int_equal(failed, 0);
}

static int setup(void **state) {
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    char path[256];
    (void)state;
    snprintf(path, sizeof path, "%s/probe.yml", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),    cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_time_parts), cmocka_unit_test(test_fieldref),
        cmocka_unit_test(test_golden),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
