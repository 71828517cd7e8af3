/*
 * test_time.c - event time in the open: which field names it
 * (core/event_time.c, `time.fields`), host clocks that are off
 * (engine/clocks.c, `time.clock_offsets`), and alerts without a time,
 * which never date an incident (engine/fusion.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alert.h"
#include "clocks.h"
#include "config.h"
#include "event.h"
#include "fusion.h"
#include "timeutil.h"

#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)
/* 2023-08-16T04:54:31Z */
#define T0 1692161671000LL

static struct cf_config *config(const char *json) {
    char err[256] = "";
    json_t *root = json ? json_loads(json, 0, NULL) : NULL;
    assert_true(!json || root);
    struct cf_config *cfg = cf_config_from_json(root, "test", err, sizeof err);
    json_decref(root);
    if (!cfg) fail_msg("config: %s", err);
    return cfg;
}

/* The config error for `json`, "" when it loads. */
static void config_error(const char *json, char *err, size_t size) {
    json_t *root = json_loads(json, 0, NULL);
    assert_non_null(root);
    err[0] = '\0';
    struct cf_config *cfg = cf_config_from_json(root, "test", err, size);
    json_decref(root);
    if (cfg) err[0] = '\0';
    cf_config_destroy(cfg);
}

/* ---- alerts without a time ------------------------------------------ */

struct incidents {
    json_t *records; /* every incident record emitted */
};

static void on_emit(const struct cf_out_record *rec, void *opaque) {
    struct incidents *c = opaque;
    if (strcmp(rec->kind, "incident") != 0) return;
    json_t *r = json_loadb(rec->json, rec->len, 0, NULL);
    assert_non_null(r);
    json_array_append_new(c->records, r);
}

static char *tactic_execution[] = {"execution"};
static char *tactic_credential[] = {"credential-access"};

static void push(struct cf_fusion *fu, const char *seed, int64_t t,
                 char **tactic, enum cf_level level) {
    struct cf_alert a;
    memset(&a, 0, sizeof a);
    cf_digest_hex128(seed, strlen(seed), a.id);
    a.time_ms = t;
    a.rule_id = a.rule_title = seed;
    a.level = level;
    a.tactics = tactic;
    a.n_tactics = 1;
    a.entities.value[CF_ENTITY_HOST] = strdup("ws01");
    a.entities.value[CF_ENTITY_USER] = strdup("ACME\\bob");
    a.pos.source = "test";
    a.pos.partition = -1;
    if (t != CF_TIME_UNKNOWN) cf_fusion_observe(fu, t);
    cf_fusion_push(fu, &a, NULL);
    cf_alert_clear(&a);
}

/* No incident time may be missing or before the first timed alert:
 * first_seen, last_seen and every stage's first_seen. */
static void assert_times_from(const json_t *records, const char *earliest) {
    size_t i, j;
    json_t *r, *st;
    assert_true(json_array_size(records) > 0);
    json_array_foreach(records, i, r) {
        const char *first = json_string_value(json_object_get(r, "first_seen"));
        const char *last = json_string_value(json_object_get(r, "last_seen"));
        assert_non_null(first);
        assert_non_null(last);
        if (strcmp(first, earliest) < 0)
            fail_msg("incident dated %s, before its first timed alert %s",
                     first, earliest);
        json_array_foreach(json_object_get(r, "stages"), j, st) {
            const char *s =
                json_string_value(json_object_get(st, "first_seen"));
            assert_non_null(s);
            if (strcmp(s, earliest) < 0)
                fail_msg("stage %s dated %s",
                         json_string_value(json_object_get(st, "tactic")), s);
        }
    }
}

static json_int_t dropped(const struct cf_fusion *fu, int reason) {
    struct cf_drops d;
    memset(&d, 0, sizeof d);
    cf_fusion_drops(fu, &d);
    return (json_int_t)d.n[reason];
}

/* An alert without a time, first in the stream (no clock yet) and in
 * the middle of an incident: it never dates an incident (1970, or the
 * fusion clock passed off as its time) and is counted. */
static void test_untimed_alerts_stay_out_of_incidents(void **state) {
    (void)state;
    char when[32];
    struct incidents c = {json_array()};
    struct cf_config *cfg = config(NULL);
    char err[256];
    struct cf_fusion *fu =
        cf_fusion_new(cfg, NULL, on_emit, &c, err, sizeof err);
    assert_non_null(fu);
    push(fu, "untimed-first", CF_TIME_UNKNOWN, tactic_credential,
         CF_LEVEL_HIGH);
    push(fu, "timed-1", T0, tactic_execution, CF_LEVEL_HIGH);
    push(fu, "timed-2", T0 + 2 * HOUR, tactic_execution, CF_LEVEL_HIGH);
    push(fu, "untimed-middle", CF_TIME_UNKNOWN, tactic_credential,
         CF_LEVEL_CRITICAL);
    cf_fusion_finish(fu);
    cf_time_format(T0, when);
    assert_times_from(c.records, when);
    /* The untimed alerts are in no incident: the credential-access
     * stage they alone carry never appears. */
    size_t i;
    json_t *r;
    json_array_foreach(c.records, i, r) {
        assert_int_equal(json_array_size(json_object_get(r, "stages")), 1);
        assert_string_equal(json_string_value(json_object_get(r, "id")),
                            json_string_value(json_object_get(
                                json_array_get(c.records, 0), "id")));
    }
    r = json_array_get(c.records, json_array_size(c.records) - 1);
    assert_int_equal(json_integer_value(json_object_get(r, "alert_count")), 2);
    assert_int_equal(dropped(fu, CF_DROP_FUSION_NO_TIME), 2);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    json_decref(c.records);
}

/* ---- which field names the time ------------------------------------ */

static struct cf_event ev;

static void decode(struct cf_decoder *dec, const char *line) {
    const char *why = NULL;
    if (cf_event_decode(dec, &ev, line, strlen(line), NULL, &why) != CF_OK)
        fail_msg("decode %s: %s", line, why ? why : "?");
}

static int64_t at(const char *text) {
    int64_t ms;
    assert_int_equal(cf_time_parse(text, strlen(text), &ms), CF_OK);
    return ms;
}

static void test_time_fields(void **state) {
    (void)state;
    struct cf_decoder *dec = cf_decoder_new();
    assert_non_null(dec);
    cf_event_init(&ev);
    /* Built-in: UtcTime first; the host-clock stamp is noted beside it. */
    decode(dec, "{\"UtcTime\":\"2023-08-16 04:53:46.060\","
                "\"TimeCreated\":\"2023-08-15T09:53:46.119Z\"}");
    assert_int_equal(ev.time_ms, at("2023-08-16T04:53:46.060Z"));
    assert_int_equal(ev.time_role, CF_TIME_ROLE_SENSOR);
    assert_int_equal(ev.utc_ms, ev.time_ms);
    assert_int_equal(ev.stamp_ms, at("2023-08-15T09:53:46.119Z"));
    decode(dec, "{\"@timestamp\":\"2023-08-15T09:53:46Z\"}");
    assert_int_equal(ev.time_role, CF_TIME_ROLE_STAMP);
    assert_int_equal(ev.utc_ms, CF_TIME_UNKNOWN);
    decode(dec, "{\"ts\":\"2024-05-01T10:00:00Z\"}");
    assert_int_equal(ev.time_ms, CF_TIME_UNKNOWN);
    /* Sentinel's and Defender XDR's names. */
    decode(dec, "{\"TimeGenerated\":\"2022-05-13T08:54:09.087Z\"}");
    assert_int_equal(ev.time_ms, at("2022-05-13T08:54:09.087Z"));
    decode(dec, "{\"Timestamp\":\"2021-08-02T13:15:30.513652Z\"}");
    assert_int_equal(ev.time_ms, at("2021-08-02T13:15:30.513Z"));
    /* Zero values are no time: 0, year 1, FILETIME's zero. */
    decode(dec, "{\"time\":0,\"timestamp\":\"0001-01-01T00:00:00Z\","
                "\"eventTime\":\"1601-01-01T00:00:00Z\"}");
    assert_int_equal(ev.time_ms, CF_TIME_UNKNOWN);
    assert_int_equal(ev.time_role, CF_TIME_ROLE_NONE);
    decode(dec, "{\"time\":0,\"_time\":\"2024-05-01T10:00:00Z\"}");
    assert_int_equal(ev.time_ms, at("2024-05-01T10:00:00Z"));

    /* Configured fields come first, the built-in list after them. */
    const char *mine[] = {"ts", "Event.When", "TimeCreated"};
    struct cf_time_names *tn = cf_time_names_new(mine, 3, true);
    assert_non_null(tn);
    cf_decoder_set_time_names(dec, tn);
    decode(dec, "{\"UtcTime\":\"2023-01-01 00:00:00\","
                "\"ts\":\"2024-05-01T10:00:00Z\"}");
    assert_int_equal(ev.time_ms, at("2024-05-01T10:00:00Z"));
    assert_int_equal(ev.time_role, CF_TIME_ROLE_OTHER);
    decode(dec, "{\"Event\":{\"When\":\"2024-05-01 11:00:00\"}}");
    assert_int_equal(ev.time_ms, at("2024-05-01T11:00:00Z"));
    decode(dec, "{\"eventTime\":\"2024-05-01T12:00:00Z\"}");
    assert_int_equal(ev.time_ms, at("2024-05-01T12:00:00Z"));
    /* A configured TimeCreated stays a host-clock stamp, and the
     * UtcTime after it is still read for the clock check. */
    decode(dec, "{\"UtcTime\":\"2023-01-01 04:00:00\","
                "\"TimeCreated\":\"2023-01-01T00:00:00Z\"}");
    assert_int_equal(ev.time_role, CF_TIME_ROLE_STAMP);
    assert_int_equal(ev.utc_ms, at("2023-01-01T04:00:00Z"));
    cf_time_names_destroy(tn);

    /* builtin_fields: false - the configured fields alone. */
    tn = cf_time_names_new(mine, 2, false);
    assert_non_null(tn);
    cf_decoder_set_time_names(dec, tn);
    decode(dec, "{\"eventTime\":\"2024-05-01T12:00:00Z\"}");
    assert_int_equal(ev.time_ms, CF_TIME_UNKNOWN);
    decode(dec, "{\"ts\":1714557600}");
    assert_int_equal(ev.time_ms, at("2024-05-01T10:00:00Z"));
    cf_time_names_destroy(tn);
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
}

/* ---- host clocks ---------------------------------------------------- */

struct clock_rig {
    struct cf_config *cfg;
    struct cf_entity_map *map;
    struct cf_clocks *clocks;
    struct cf_decoder *dec;
    FILE *warn;
};

static void rig_open(struct clock_rig *r, const char *config_json) {
    char err[256];
    r->cfg = config(config_json);
    r->map = cf_entity_map_new(NULL, err, sizeof err);
    assert_non_null(r->map);
    r->clocks = cf_clocks_new(&r->cfg->time, r->map, err, sizeof err);
    if (!r->clocks) fail_msg("cf_clocks_new: %s", err);
    r->warn = tmpfile();
    assert_non_null(r->warn);
    cf_clocks_set_warnings(r->clocks, r->warn);
    r->dec = cf_decoder_new();
    assert_non_null(r->dec);
    cf_event_init(&ev);
}

static void rig_close(struct clock_rig *r) {
    cf_event_free(&ev);
    cf_decoder_destroy(r->dec);
    cf_clocks_destroy(r->clocks);
    cf_entity_map_destroy(r->map);
    cf_config_destroy(r->cfg);
    fclose(r->warn);
}

/* One event of `host`: a Sysmon one with UtcTime `utc` and the host's
 * stamp `stamp`, or (utc unknown) one with the stamp alone.  Returns the
 * event time after the clock check. */
static int64_t feed(struct clock_rig *r, const char *host, int64_t utc,
                    int64_t stamp) {
    char line[256], u[32], st[32];
    cf_time_format(stamp, st);
    if (utc != CF_TIME_UNKNOWN) {
        cf_time_format(utc, u);
        u[10] = ' '; /* Sysmon writes "2023-08-16 04:53:46.060" */
        u[23] = '\0';
        snprintf(line, sizeof line,
                 "{\"Hostname\":\"%s\",\"EventID\":1,\"UtcTime\":\"%s\","
                 "\"TimeCreated\":\"%s\"}",
                 host, u, st);
    } else {
        snprintf(line, sizeof line,
                 "{\"Hostname\":\"%s\",\"EventID\":4688,\"@timestamp\":"
                 "\"%s\"}",
                 host, st);
    }
    decode(r->dec, line);
    cf_clocks_event(r->clocks, &ev);
    return ev.time_ms;
}

/* Everything written to the warnings so far. */
static char *warnings(struct clock_rig *r) {
    static char buf[4096]; /* test-only scratch */
    fflush(r->warn);
    rewind(r->warn);
    size_t n = fread(buf, 1, sizeof buf - 1, r->warn);
    buf[n] = '\0';
    return buf;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* clocks.hosts[] entry for `host`, or NULL; `stats` keeps it. */
static json_t *host_stats(struct clock_rig *r, json_t **stats,
                          const char *host) {
    size_t i;
    json_t *h;
    *stats = cf_clocks_stats(r->clocks);
    assert_non_null(*stats);
    json_array_foreach(json_object_get(*stats, "hosts"), i, h) {
        if (strcmp(json_string_value(json_object_get(h, "host")), host) == 0)
            return h;
    }
    return NULL;
}

/* Pseudo-random numbers for jitter, the same on every run. */
static uint64_t next_rand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* A steady -4h (local time of UTC-4 labelled UTC) with the few ms
 * between sensor and record, and a few Sysmon events whose UtcTime is
 * days old (network connections do this): found, said once, listed;
 * by default no time is changed. */
static void test_clock_steady_offset(void **state) {
    (void)state;
    struct clock_rig r;
    json_t *stats;
    rig_open(&r, NULL);
    for (int i = 0; i < 400; i++) {
        int64_t utc = T0 + i * 1000LL;
        if (i % 50 == 7) /* a stale UtcTime: 4 days 19 min before */
            feed(&r, "WS01.acme.local", utc - 4 * 24 * HOUR - 19 * MIN,
                 utc - 4 * HOUR + 20000);
        else
            feed(&r, "WS01.acme.local", utc, utc - 4 * HOUR + 1 + i % 7);
    }
    assert_int_equal(feed(&r, "ws01", CF_TIME_UNKNOWN, T0 - 4 * HOUR),
                     T0 - 4 * HOUR);
    const char *w = warnings(&r);
    assert_int_equal(count_lines(w), 1);
    assert_non_null(strstr(w, "host WS01.acme.local"));
    assert_non_null(strstr(w, "-4h from Sysmon's UtcTime"));
    assert_non_null(strstr(w, "{WS01.acme.local: -4h}"));
    json_t *h = host_stats(&r, &stats, "WS01.acme.local");
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "offset")), "-4h");
    assert_string_equal(json_string_value(json_object_get(h, "correction")),
                        "none");
    assert_int_equal(json_integer_value(json_object_get(h, "events_compared")),
                     400);
    assert_int_equal(json_integer_value(json_object_get(stats, "hosts_off")),
                     1);
    json_decref(stats);
    rig_close(&r);
}

/* Hostile: clocks that are merely bad are no time zone.  A host whose
 * stamps jitter by minutes to hours around UtcTime, one off by a steady
 * 4h07m (no zone is that), one that agrees, and one off by 3 minutes
 * at most: none is reported. */
static void test_clock_no_false_offsets(void **state) {
    (void)state;
    struct clock_rig r;
    json_t *stats;
    uint64_t seed = 42;
    rig_open(&r, "{\"time\": {\"clock_offsets\": \"auto\"}}");
    for (int i = 0; i < 2000; i++) {
        int64_t utc = T0 + i * 1000LL;
        int64_t jitter = (int64_t)(next_rand(&seed) % (6 * HOUR)) - 3 * HOUR;
        feed(&r, "jittery", utc, utc + jitter);
        feed(&r, "skewed", utc, utc + 4 * HOUR + 7 * MIN);
        feed(&r, "right", utc, utc + 3);
        feed(&r, "drifting", utc,
             utc + (int64_t)(next_rand(&seed) % (3 * MIN)));
    }
    assert_int_equal(feed(&r, "jittery", CF_TIME_UNKNOWN, T0), T0);
    assert_int_equal(feed(&r, "skewed", CF_TIME_UNKNOWN, T0), T0);
    assert_string_equal(warnings(&r), "");
    stats = cf_clocks_stats(r.clocks);
    assert_int_equal(json_integer_value(json_object_get(stats, "hosts_off")),
                     0);
    assert_int_equal(json_array_size(json_object_get(stats, "hosts")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(stats, "events_compared")), 8000);
    assert_int_equal(
        json_integer_value(json_object_get(stats, "events_corrected")), 0);
    json_decref(stats);
    rig_close(&r);
}

/* `auto` learns the offset, corrects the stamp-timed events that follow
 * (counting those before it), and follows a host whose offset changes
 * (daylight saving time ends: -4h becomes -5h), saying so. */
static void test_clock_auto_follows_change(void **state) {
    (void)state;
    struct clock_rig r;
    json_t *stats;
    rig_open(&r, "{\"time\": {\"clock_offsets\": \"auto\"}}");
    /* Before anything is learned: left as it is, counted. */
    assert_int_equal(feed(&r, "ws01", CF_TIME_UNKNOWN, T0 - 4 * HOUR),
                     T0 - 4 * HOUR);
    for (int i = 0; i < 100; i++)
        feed(&r, "ws01", T0 + i * 1000LL, T0 + i * 1000LL - 4 * HOUR);
    assert_int_equal(feed(&r, "ws01", CF_TIME_UNKNOWN, T0 - 4 * HOUR), T0);
    /* UtcTime itself is never moved. */
    assert_int_equal(feed(&r, "ws01", T0, T0 - 4 * HOUR), T0);
    for (int i = 0; i < 100; i++)
        feed(&r, "ws01", T0 + HOUR + i * 1000LL,
             T0 + HOUR + i * 1000LL - 5 * HOUR);
    assert_int_equal(feed(&r, "ws01", CF_TIME_UNKNOWN, T0 - 3 * HOUR),
                     T0 + 2 * HOUR);
    const char *w = warnings(&r);
    assert_int_equal(count_lines(w), 2);
    assert_non_null(strstr(w, "correcting its later events"));
    assert_non_null(strstr(w, "now -5h from UTC (was -4h)"));
    json_t *h = host_stats(&r, &stats, "ws01");
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "offset")), "-5h");
    assert_string_equal(json_string_value(json_object_get(h, "correction")),
                        "auto");
    assert_int_equal(json_integer_value(json_object_get(h, "changes")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(h, "events_uncorrected")), 1);
    assert_int_equal(json_integer_value(json_object_get(h, "events_corrected")),
                     2);
    json_decref(stats);
    rig_close(&r);
}

/* A configured offset applies from the first event, to every spelling
 * of the host, and only to host-clock stamps; a detected offset that
 * disagrees with it is said. */
static void test_clock_fixed_offset(void **state) {
    (void)state;
    struct clock_rig r;
    json_t *stats;
    rig_open(&r, "{\"time\": {\"clock_offsets\": {\"WS01\": \"-7h\", "
                 "\"ws02\": \"-5h\"}}}");
    assert_int_equal(
        feed(&r, "ws01.acme.local", CF_TIME_UNKNOWN, T0 - 7 * HOUR), T0);
    assert_int_equal(feed(&r, "WS01", CF_TIME_UNKNOWN, T0 - 7 * HOUR), T0);
    assert_int_equal(feed(&r, "ws03", CF_TIME_UNKNOWN, T0 - 7 * HOUR),
                     T0 - 7 * HOUR);
    for (int i = 0; i < 100; i++) {
        feed(&r, "ws01", T0 + i * 1000LL, T0 + i * 1000LL - 7 * HOUR);
        feed(&r, "ws02", T0 + i * 1000LL, T0 + i * 1000LL - 4 * HOUR);
    }
    const char *w = warnings(&r);
    assert_int_equal(count_lines(w), 1);
    assert_non_null(strstr(w, "host ws02: its TimeCreated/@timestamp are -4h"));
    assert_non_null(strstr(w, "gives -5h"));
    json_t *h = host_stats(&r, &stats, "WS01");
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "correction")),
                        "-7h");
    assert_int_equal(json_integer_value(json_object_get(h, "events_corrected")),
                     2);
    json_decref(stats);
    rig_close(&r);
}

/* ---- configuration ------------------------------------------------- */

static void test_time_config(void **state) {
    (void)state;
    char err[512];
    struct cf_config *cfg =
        config("{\"time\": {\"fields\": [\"ts\", \"Event.When\"], "
               "\"builtin_fields\": false, \"clock_offsets\": {\"WS01\": "
               "\"-7h\", \"ws02.acme.local\": \"5.5h\", \"dc01\": \"auto\", "
               "\"ws03\": -3600}}}");
    assert_int_equal(cfg->time.fields.n, 2);
    assert_string_equal(cfg->time.fields.v[1], "Event.When");
    assert_false(cfg->time.builtin_fields);
    const struct cf_clock_offsets *o = &cfg->time.clock_offsets;
    assert_false(o->learn_all);
    assert_int_equal(o->n, 4);
    assert_string_equal(o->v[0].host, "WS01");
    assert_int_equal(o->v[0].ms, -7 * HOUR);
    assert_int_equal(o->v[1].ms, 5 * HOUR + 30 * MIN);
    assert_true(o->v[2].learn);
    assert_int_equal(o->v[3].ms, -HOUR);
    cf_config_destroy(cfg);

    cfg = config("{\"time\": {\"clock_offsets\": \"auto\"}}");
    assert_true(cfg->time.clock_offsets.learn_all);
    assert_true(cfg->time.builtin_fields);
    cf_config_destroy(cfg);

    /* Mistakes are found when the file is read, named by key and host. */
    config_error("{\"time\": {\"clock_offsets\": {\"ws01\": \"-9d\"}}}", err,
                 sizeof err);
    assert_non_null(strstr(err, "time.clock_offsets: ws01: must be"));
    config_error("{\"time\": {\"clock_offsets\": {\"ws01\": \"later\"}}}", err,
                 sizeof err);
    assert_non_null(strstr(err, "ws01"));
    config_error("{\"time\": {\"clock_offsets\": \"sometimes\"}}", err,
                 sizeof err);
    assert_non_null(strstr(err, "time.clock_offsets"));
    config_error("{\"time\": {\"clock_offsets\": [\"-7h\"]}}", err, sizeof err);
    assert_non_null(strstr(err, "not a list"));
    config_error("{\"time\": {\"builtin_fields\": false}}", err, sizeof err);
    assert_non_null(strstr(err, "no event would have a time"));
    config_error("{\"time\": {\"feilds\": [\"ts\"]}}", err, sizeof err);
    assert_non_null(strstr(err, "did you mean 'fields'"));
    /* Other durations stay non-negative. */
    config_error("{\"fusion\": {\"window\": \"-1h\"}}", err, sizeof err);
    assert_non_null(strstr(err, "must not be negative"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_fields),
        cmocka_unit_test(test_time_config),
        cmocka_unit_test(test_clock_steady_offset),
        cmocka_unit_test(test_clock_no_false_offsets),
        cmocka_unit_test(test_clock_auto_follows_change),
        cmocka_unit_test(test_clock_fixed_offset),
        cmocka_unit_test(test_untimed_alerts_stay_out_of_incidents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
