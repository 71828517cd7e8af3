/*
 * test_fanout.c - several outputs at once (engine/fanout.c): a retrying
 * output does not hold the others back, keeps its records in order in
 * its own backlog, and pauses the input (the wait callback) only when
 * that backlog is full; retry_for gives up to the dead-letter callback;
 * FAIL and an asynchronous output's late failure are dead-lettered;
 * filters select by kind, severity and tactic; and URLs shown in
 * messages and stats have their secrets masked (connectors/registry.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "fanout.h"
#include "registry.h"

/* An output that answers RETRY while `retry` is set (and counts tries),
 * FAIL when `fail` is set, else keeps the record's JSON. */
struct test_out {
    struct cf_output out;
    bool retry, fail;
    int tries;
    char got[64][16];
    int n_got;
};

static cf_io_status t_write(struct cf_output *out,
                            const struct cf_out_record *rec) {
    struct test_out *t = out->ctx;
    t->tries++;
    if (t->fail) return CF_IO_FAIL;
    if (t->retry) return CF_IO_RETRY;
    snprintf(t->got[t->n_got++], sizeof t->got[0], "%.*s", (int)rec->len,
             rec->json);
    return CF_IO_OK;
}

static cf_io_status t_flush(struct cf_output *out) {
    struct test_out *t = out->ctx;
    return t->retry ? CF_IO_RETRY : CF_IO_OK;
}

static const struct cf_output_ops t_ops = {"test", t_write, t_flush, NULL};

static void t_init(struct test_out *t) {
    memset(t, 0, sizeof *t);
    t->out.ops = &t_ops;
    t->out.ctx = t;
}

/* What the callbacks saw. */
struct seen {
    int waits, dead;
    char reason[256];
    struct test_out *heal; /* stops retrying after `heal_after` waits */
    int heal_after;
};

static void on_dead(void *opaque, const struct cf_out_record *rec,
                    const char *reason) {
    struct seen *s = opaque;
    (void)rec;
    s->dead++;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
}

static void on_wait(void *opaque, long ms) {
    struct seen *s = opaque;
    struct timespec ts = {0, (ms > 20 ? 20 : ms) * 1000000L};
    s->waits++;
    if (s->heal && s->waits >= s->heal_after) s->heal->retry = false;
    nanosleep(&ts, NULL);
}

static struct cf_out_record rec_n(int i, char *buf, size_t size) {
    snprintf(buf, size, "r%d", i);
    struct cf_out_record r =
        cf_out_record_plain("alert", buf, strlen(buf), NULL);
    r.severity = 2;
    return r;
}

static void test_retrying_output_does_not_hold_others_back(void **state) {
    (void)state;
    struct test_out a, b;
    struct seen s = {0};
    t_init(&a);
    t_init(&b);
    a.retry = true;
    struct cf_pipeline_output outs[2] = {{&a.out, "a", {0}},
                                         {&b.out, "b", {0}}};
    outs[0].filter.min_severity = outs[1].filter.min_severity = -1;
    struct cf_fanout *fo = cf_fanout_new(outs, 2, on_dead, on_wait, &s);
    assert_non_null(fo);
    char buf[16];
    for (int i = 0; i < 5; i++) {
        struct cf_out_record r = rec_n(i, buf, sizeof buf);
        cf_fanout_deliver(fo, &r);
    }
    /* b has everything at once; a has nothing yet and no wait happened */
    assert_int_equal(b.n_got, 5);
    assert_int_equal(a.n_got, 0);
    assert_int_equal(s.waits, 0);
    assert_true(cf_fanout_backlogged(fo));
    a.retry = false;
    char err[128];
    assert_int_equal(cf_fanout_drain(fo, NULL, err, sizeof err), CF_OK);
    assert_int_equal(a.n_got, 5);
    for (int i = 0; i < 5; i++) {
        snprintf(buf, sizeof buf, "r%d", i);
        assert_string_equal(a.got[i], buf); /* in order, once each */
    }
    assert_int_equal(s.dead, 0);
    json_t *st = cf_fanout_stats(fo);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(st, 0), "written")),
        5);
    assert_true(json_integer_value(
                    json_object_get(json_array_get(st, 0), "retries")) >= 1);
    json_decref(st);
    cf_fanout_destroy(fo);
}

static void test_full_backlog_waits_and_loses_nothing(void **state) {
    (void)state;
    struct test_out a;
    struct seen s = {0};
    t_init(&a);
    a.retry = true;
    s.heal = &a;
    s.heal_after = 3;
    struct cf_pipeline_output out = {&a.out, "a", {0}};
    out.filter.min_severity = -1;
    out.filter.max_buffered = 2;
    struct cf_fanout *fo = cf_fanout_new(&out, 1, on_dead, on_wait, &s);
    char buf[16];
    for (int i = 0; i < 6; i++) {
        struct cf_out_record r = rec_n(i, buf, sizeof buf);
        cf_fanout_deliver(fo, &r);
    }
    assert_true(s.waits >= 3); /* the input was told to wait */
    char err[128];
    assert_int_equal(cf_fanout_drain(fo, NULL, err, sizeof err), CF_OK);
    assert_int_equal(a.n_got, 6);
    for (int i = 0; i < 6; i++) {
        snprintf(buf, sizeof buf, "r%d", i);
        assert_string_equal(a.got[i], buf);
    }
    assert_int_equal(s.dead, 0);
    cf_fanout_destroy(fo);
}

static void test_retry_for_gives_up_to_dead_letters(void **state) {
    (void)state;
    struct test_out a;
    struct seen s = {0};
    t_init(&a);
    a.retry = true;
    struct cf_pipeline_output out = {&a.out, "a", {0}};
    out.filter.min_severity = -1;
    out.filter.retry_for_ms = 1;
    struct cf_fanout *fo = cf_fanout_new(&out, 1, on_dead, on_wait, &s);
    char buf[16];
    struct cf_out_record r = rec_n(0, buf, sizeof buf);
    cf_fanout_deliver(fo, &r);
    struct timespec ts = {0, 30 * 1000000L};
    nanosleep(&ts, NULL);
    r = rec_n(1, buf, sizeof buf);
    cf_fanout_deliver(fo, &r);
    cf_fanout_pump(fo);
    nanosleep(&ts, NULL);
    cf_fanout_pump(fo);
    assert_int_equal(s.dead, 2);
    assert_non_null(strstr(s.reason, "retry_for"));
    assert_false(cf_fanout_backlogged(fo));
    cf_fanout_destroy(fo);
}

/* Refused for good, or failed late after being taken. */
static void test_failures_are_dead_lettered(void **state) {
    (void)state;
    struct test_out a;
    struct seen s = {0};
    t_init(&a);
    a.fail = true;
    struct cf_pipeline_output out = {&a.out, "a", {0}};
    out.filter.min_severity = -1;
    struct cf_fanout *fo = cf_fanout_new(&out, 1, on_dead, on_wait, &s);
    char buf[16];
    struct cf_out_record r = rec_n(0, buf, sizeof buf);
    cf_fanout_deliver(fo, &r);
    assert_int_equal(s.dead, 1);
    assert_non_null(strstr(s.reason, "output a"));
    a.fail = false;
    cf_fanout_deliver(fo, &r);
    assert_int_equal(a.n_got, 1);
    cf_output_dead_letter(&a.out, &r, "HTTP 410");
    assert_int_equal(s.dead, 2);
    assert_non_null(strstr(s.reason, "HTTP 410"));
    json_t *st = cf_fanout_stats(fo);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(st, 0), "written")),
        0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(st, 0),
                                                        "dead_lettered")),
                     2);
    json_decref(st);
    cf_fanout_destroy(fo);
}

static void test_filters(void **state) {
    (void)state;
    struct test_out a;
    struct seen s = {0};
    t_init(&a);
    char *tactics[] = {"credential-access"};
    struct cf_pipeline_output out = {&a.out, "a", {0}};
    out.filter.kinds = CF_KIND_INCIDENT | CF_KIND_DEAD_LETTER;
    out.filter.min_severity = 3;
    out.filter.tactics = tactics;
    out.filter.n_tactics = 1;
    struct cf_fanout *fo = cf_fanout_new(&out, 1, on_dead, on_wait, &s);
    const char *cred[] = {"discovery", "credential-access"};
    const char *disc[] = {"discovery"};
    struct {
        const char *kind;
        int severity;
        const char *const *tactics;
        size_t n;
        bool pass;
    } cases[] = {
        {"incident", 4, cred, 2, true},     {"incident", 2, cred, 2, false},
        {"incident", 4, disc, 1, false},    {"alert", 4, cred, 2, false},
        {"dead-letter", -1, NULL, 0, true},
    };
    for (size_t i = 0; i < CF_ARRAY_LEN(cases); i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "c%zu", i);
        struct cf_out_record r =
            cf_out_record_plain(cases[i].kind, buf, strlen(buf), NULL);
        r.severity = cases[i].severity;
        r.tactics = cases[i].tactics;
        r.n_tactics = cases[i].n;
        int before = a.n_got;
        cf_fanout_deliver(fo, &r);
        assert_int_equal(a.n_got - before, cases[i].pass ? 1 : 0);
    }
    cf_fanout_destroy(fo);
}

/* The first stop signal still drains (a shutdown flushes everything);
 * only a second one gives up on an output that keeps retrying. */
static void test_drain_gives_up_at_the_second_signal(void **state) {
    (void)state;
    struct test_out a;
    struct seen s = {0};
    t_init(&a);
    a.retry = true;
    s.heal = &a;
    s.heal_after = 2;
    struct cf_pipeline_output out = {&a.out, "a", {0}};
    out.filter.min_severity = -1;
    struct cf_fanout *fo = cf_fanout_new(&out, 1, on_dead, on_wait, &s);
    char buf[16], err[128];
    struct cf_out_record r = rec_n(0, buf, sizeof buf);
    cf_fanout_deliver(fo, &r);
    volatile sig_atomic_t signals = 1;
    assert_int_equal(cf_fanout_drain(fo, &signals, err, sizeof err), CF_OK);
    assert_int_equal(a.n_got, 1);
    a.retry = true;
    s.heal = NULL;
    cf_fanout_deliver(fo, &r);
    signals = 2;
    assert_int_equal(cf_fanout_drain(fo, &signals, err, sizeof err), CF_ERR);
    assert_non_null(strstr(err, "output a"));
    assert_true(cf_fanout_backlogged(fo)); /* kept, not dropped */
    cf_fanout_destroy(fo);
}

static void test_display_url_masks_secrets(void **state) {
    (void)state;
    struct {
        const char *url, *shown;
    } cases[] = {
        {"redis://soc:hunter2@cache:6379/2?prefix=cf",
         "redis://soc:***@cache:6379/2?prefix=cf"},
        {"https://hooks.example/x?token=abc&team=red",
         "https://hooks.example/x?token=***&team=red"},
        {"kafka://b1:9092,b2:9092/alerts", "kafka://b1:9092,b2:9092/alerts"},
        {"out/x:y@z.jsonl", "out/x:y@z.jsonl"},
    };
    for (size_t i = 0; i < CF_ARRAY_LEN(cases); i++) {
        char *s = cf_registry_display_url(cases[i].url);
        assert_string_equal(s, cases[i].shown);
        cf_free(s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retrying_output_does_not_hold_others_back),
        cmocka_unit_test(test_full_backlog_waits_and_loses_nothing),
        cmocka_unit_test(test_retry_for_gives_up_to_dead_letters),
        cmocka_unit_test(test_failures_are_dead_lettered),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_drain_gives_up_at_the_second_signal),
        cmocka_unit_test(test_display_url_masks_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
