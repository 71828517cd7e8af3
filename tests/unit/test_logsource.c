/*
 * test_logsource.c - routing of hand-built events through the built-in
 * table and the `logsources` config section, and the route cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "logsource.h"

/* Builds an event from name/value pairs (NULL-terminated). */
static void make_event(struct cf_event *ev, struct cf_event_field *f,
                       const char *const *kv) {
    size_t n = 0;
    for (; kv[2 * n]; n++) {
        f[n].name = kv[2 * n];
        f[n].name_len = (uint32_t)strlen(kv[2 * n]);
        f[n].name_hash = cf_hash_name(f[n].name, f[n].name_len);
        f[n].value = kv[2 * n + 1];
        f[n].value_len = (uint32_t)strlen(kv[2 * n + 1]);
        f[n].type = CF_VALUE_STRING;
    }
    memset(ev, 0, sizeof *ev);
    ev->fields = f;
    ev->n_fields = (uint32_t)n;
}

static bool routed(const uint64_t *bits, uint32_t id) {
    return bits[id / 64] >> (id % 64) & 1;
}

static void test_defaults(void **state) {
    (void)state;
    char err[256];
    struct cf_router *r = cf_router_new(NULL, err, sizeof err);
    assert_non_null(r);
    uint32_t pc = cf_router_add(r, "windows", "process_creation", NULL);
    uint32_t sec = cf_router_add(r, "windows", NULL, "security");
    uint32_t win = cf_router_add(r, "windows", NULL, NULL);
    uint32_t lpc = cf_router_add(r, "linux", "process_creation", NULL);
    uint32_t aws = cf_router_add(r, "aws", NULL, "cloudtrail");
    uint32_t unk = cf_router_add(r, "windows", "no_such_category", NULL);
    uint32_t web = cf_router_add(r, NULL, "webserver", NULL);
    uint32_t reg = cf_router_add(r, "windows", "registry_event", NULL);
    uint32_t psm = cf_router_add(r, "windows", "ps_script", NULL);
    uint32_t lin = cf_router_add(r, "linux", NULL, NULL);
    assert_int_equal(cf_router_add(r, "windows", "process_creation", NULL), pc);
    assert_int_equal(cf_router_seal(r, err, sizeof err), CF_OK);
    struct cf_route_cache *c = cf_route_cache_new(r);
    assert_non_null(c);
    struct cf_event ev;
    struct cf_event_field f[8];

    static const char *const sysmon1[] = {
        "Channel", "Microsoft-Windows-Sysmon/Operational",
        "EventID", "1",
        "Image",   "C:\\x.exe",
        NULL};
    make_event(&ev, f, sysmon1);
    const uint64_t *b = cf_router_route(r, c, &ev);
    assert_true(routed(b, pc));
    assert_false(routed(b, sec));
    assert_true(routed(b, win));
    assert_false(routed(b, lpc));
    assert_false(routed(b, aws));
    assert_true(routed(b, unk));
    assert_true(routed(b, web)); /* unknown parts impose nothing */
    assert_false(routed(b, reg));
    assert_false(routed(b, lin)); /* Windows events are not Linux logs */

    /* OTRF spells the channel in lower case; 4688 is process creation. */
    static const char *const sec4688[] = {"Channel", "security", "EventID",
                                          "4688", NULL};
    make_event(&ev, f, sec4688);
    b = cf_router_route(r, c, &ev);
    assert_true(routed(b, pc));
    assert_true(routed(b, sec));
    static const char *const sec4624[] = {"Channel", "Security", "EventID",
                                          "4624", NULL};
    make_event(&ev, f, sec4624);
    b = cf_router_route(r, c, &ev);
    assert_false(routed(b, pc));
    assert_true(routed(b, sec));

    /* Provider instead of channel (SourceName as OTRF writes it). */
    static const char *const sysmon13[] = {
        "SourceName", "Microsoft-Windows-Sysmon", "EventID", "13", NULL};
    make_event(&ev, f, sysmon13);
    b = cf_router_route(r, c, &ev);
    assert_true(routed(b, reg));
    assert_false(routed(b, pc));
    static const char *const ps[] = {"Channel",
                                     "Microsoft-Windows-PowerShell/Operational",
                                     "EventID", "4104", NULL};
    make_event(&ev, f, ps);
    assert_true(routed(cf_router_route(r, c, &ev), psm));

    static const char *const lsys[] = {"Channel", "Linux-Sysmon/Operational",
                                       "EventID", "1", NULL};
    make_event(&ev, f, lsys);
    b = cf_router_route(r, c, &ev);
    assert_true(routed(b, lpc));
    assert_true(routed(b, lin));
    assert_false(routed(b, pc));

    static const char *const ct[] = {"eventSource", "s3.amazonaws.com",
                                     "eventName", "GetObject", NULL};
    make_event(&ev, f, ct);
    b = cf_router_route(r, c, &ev);
    assert_true(routed(b, aws));
    assert_false(routed(b, win)); /* not Windows-looking */
    assert_false(routed(b, pc));

    char *d = cf_router_describe(r, pc);
    assert_non_null(d);
    assert_non_null(strstr(d, "4688"));
    free(d);
    d = cf_router_describe(r, web);
    assert_string_equal(d, "every event");
    free(d);

    cf_route_cache_destroy(c);
    cf_router_destroy(r);
    cf_router_destroy(NULL);
    cf_route_cache_destroy(NULL);
}

static void test_config(void **state) {
    (void)state;
    char err[256];
    json_error_t je;
    json_t *sec = json_loads(
        "{\"category\": {\"process_creation\": {\"product\": \"windows\","
        " \"conditions\": [{\"Channel\": \"MyEDR\", \"EventID\": [7, 8]}]}},"
        " \"service\": {\"myapp\": {\"conditions\": [{\"program\": true,"
        " \"Channel\": false}]}}}",
        0, &je);
    assert_non_null(sec);
    struct cf_router *r = cf_router_new(sec, err, sizeof err);
    assert_non_null(r);
    uint32_t pc = cf_router_add(r, "windows", "process_creation", NULL);
    uint32_t app = cf_router_add(r, "linux", NULL, "myapp");
    assert_int_equal(cf_router_seal(r, err, sizeof err), CF_OK);
    struct cf_route_cache *c = cf_route_cache_new(r);
    struct cf_event ev;
    struct cf_event_field f[4];
    static const char *const edr[] = {"Channel", "myedr", "EventID", "8", NULL};
    make_event(&ev, f, edr);
    assert_true(routed(cf_router_route(r, c, &ev), pc));
    static const char *const s1[] = {"Channel",
                                     "Microsoft-Windows-Sysmon/Operational",
                                     "EventID", "1", NULL};
    make_event(&ev, f, s1); /* replaced, so Sysmon 1 no longer routes */
    assert_false(routed(cf_router_route(r, c, &ev), pc));
    static const char *const prog[] = {"program", "myapp", NULL};
    make_event(&ev, f, prog);
    assert_true(routed(cf_router_route(r, c, &ev), app));
    static const char *const prog2[] = {"program", "x", "Channel", "y", NULL};
    make_event(&ev, f, prog2);
    assert_false(routed(cf_router_route(r, c, &ev), app));
    cf_route_cache_destroy(c);
    cf_router_destroy(r);
    json_decref(sec);

    /* Malformed sections are rejected with a message naming the place. */
    json_t *bad =
        json_loads("{\"category\": {\"x\": {\"conditions\": 5}}}", 0, &je);
    assert_null(cf_router_new(bad, err, sizeof err));
    assert_non_null(strstr(err, "category x"));
    json_decref(bad);
    bad = json_loads("{\"categories\": {}}", 0, &je);
    assert_null(cf_router_new(bad, err, sizeof err));
    assert_non_null(strstr(err, "categories"));
    json_decref(bad);
}

/* Many distinct routing tuples: the cache must clear and stay correct. */
static void test_cache_churn(void **state) {
    (void)state;
    char err[256];
    struct cf_router *r = cf_router_new(NULL, err, sizeof err);
    uint32_t sec = cf_router_add(r, "windows", NULL, "security");
    assert_int_equal(cf_router_seal(r, err, sizeof err), CF_OK);
    struct cf_route_cache *c = cf_route_cache_new(r);
    struct cf_event ev;
    struct cf_event_field f[4];
    for (int i = 0; i < 5000; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        const char *kv[] = {"Channel", (i % 2) ? "Security" : "System",
                            "EventID", id, NULL};
        make_event(&ev, f, kv);
        assert_int_equal(routed(cf_router_route(r, c, &ev), sec), i % 2);
    }
    cf_route_cache_destroy(c);
    cf_router_destroy(r);
}

/* cf_router_add gives a logsource the route it gave before, comparing
 * without ASCII case (which the lookup's hash must fold too, or the
 * second add misses), and a new one otherwise, part by part: a missing
 * part is not an empty one, and ab|c is not a|bc.  Enough routes that
 * the lookup table grows several times. */
static void test_route_dedup(void **state) {
    (void)state;
    char err[256], cat[32];
    struct cf_router *r = cf_router_new(NULL, err, sizeof err);
    assert_non_null(r);
    uint32_t pc = cf_router_add(r, "windows", "process_creation", NULL);
    assert_int_equal(cf_router_add(r, "Windows", "Process_Creation", NULL), pc);
    uint32_t none = cf_router_add(r, "windows", NULL, NULL);
    uint32_t empty = cf_router_add(r, "windows", "", NULL);
    assert_int_not_equal(none, empty);
    assert_int_not_equal(none, pc);
    uint32_t ab = cf_router_add(r, "ab", "c", NULL);
    uint32_t a_bc = cf_router_add(r, "a", "bc", NULL);
    assert_int_not_equal(ab, a_bc);
    uint32_t svc = cf_router_add(r, "windows", NULL, "process_creation");
    assert_int_not_equal(svc, pc);
    uint32_t first = cf_router_count(r);
    for (int i = 0; i < 300; i++) {
        snprintf(cat, sizeof cat, "category_%d", i);
        assert_int_equal(cf_router_add(r, "linux", cat, NULL), first + i);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(cat, sizeof cat, "CATEGORY_%d", i);
        assert_int_equal(cf_router_add(r, "LINUX", cat, NULL), first + i);
    }
    assert_int_equal(cf_router_count(r), first + 300);
    assert_int_equal(cf_router_add(r, "WINDOWS", "", NULL), empty);
    assert_int_equal(cf_router_add(r, "windows", NULL, NULL), none);
    cf_router_destroy(r);
}

/* The leaves of `ev` whose names cf_router_field gives, in event order:
 * what a caller of cf_router_route_hits finds on its pass. */
static size_t find_hits(const struct cf_router *r, const struct cf_event *ev,
                        struct cf_route_hit *hits) {
    size_t n = 0;
    for (uint32_t i = 0; i < ev->n_fields; i++)
        for (uint32_t k = 0; k < cf_router_field_count(r); k++) {
            uint32_t len, hash;
            const char *name = cf_router_field(r, k, &len, &hash);
            if (name && len == ev->fields[i].name_len &&
                hash == ev->fields[i].name_hash &&
                memcmp(name, ev->fields[i].name, len) == 0)
                hits[n++] = (struct cf_route_hit){k, i};
        }
    return n;
}

/* cf_router_route_hits, given the leaves of routing fields in the
 * event's order (routing fields late, in any order, one twice), routes
 * as cf_router_route does, from its own cache and from a warm one. */
static void test_route_hits(void **state) {
    (void)state;
    char err[256];
    struct cf_router *r = cf_router_new(NULL, err, sizeof err);
    assert_non_null(r);
    cf_router_add(r, "windows", "process_creation", NULL);
    cf_router_add(r, "windows", NULL, "security");
    cf_router_add(r, "windows", "registry_event", NULL);
    cf_router_add(r, "windows", "ps_script", NULL);
    cf_router_add(r, "linux", "process_creation", NULL);
    cf_router_add(r, "aws", NULL, "cloudtrail");
    cf_router_add(r, NULL, "webserver", NULL);
    assert_int_equal(cf_router_seal(r, err, sizeof err), CF_OK);
    assert_null(cf_router_field(r, cf_router_field_count(r), &(uint32_t){0},
                                &(uint32_t){0}));
    struct cf_route_cache *c = cf_route_cache_new(r),
                          *ch = cf_route_cache_new(r);
    assert_non_null(c);
    assert_non_null(ch);
    size_t words = (cf_router_count(r) + 63) / 64;
    static const char *const events[][11] = {
        {"Image", "C:\\x.exe", "EventID", "1", "Channel",
         "Microsoft-Windows-Sysmon/Operational", NULL},
        {"EventID", "4688", "User", "x", "Channel", "security", NULL},
        {"SourceName", "Microsoft-Windows-Sysmon", "EventID", "13", NULL},
        {"Channel", "Linux-Sysmon/Operational", "EventID", "1", "EventID",
         "4104", NULL},
        {"eventName", "GetObject", "eventSource", "s3.amazonaws.com", NULL},
        {"Channel", "Microsoft-Windows-PowerShell/Operational", "Task", "2",
         "EventID", "4104", NULL},
        {"cs-method", "GET", NULL},
    };
    for (int pass = 0; pass < 2; pass++)
        for (size_t e = 0; e < sizeof events / sizeof events[0]; e++) {
            struct cf_event ev;
            struct cf_event_field f[8];
            struct cf_route_hit hits[8];
            make_event(&ev, f, events[e]);
            size_t n = find_hits(r, &ev, hits);
            const uint64_t *want = cf_router_route(r, c, &ev);
            assert_non_null(want);
            uint64_t copy[8];
            assert_true(words <= 8);
            memcpy(copy, want, words * sizeof *copy);
            const uint64_t *got = cf_router_route_hits(r, ch, &ev, hits, n);
            assert_non_null(got);
            assert_memory_equal(got, copy, words * sizeof *copy);
        }
    cf_route_cache_destroy(c);
    cf_route_cache_destroy(ch);
    cf_router_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),    cmocka_unit_test(test_config),
        cmocka_unit_test(test_cache_churn), cmocka_unit_test(test_route_dedup),
        cmocka_unit_test(test_route_hits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
