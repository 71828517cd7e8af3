/*
 * test_correlation.c - Sigma correlation rules: parsing, reference
 * resolution and event-time evaluation (engine/correlate.c).
 *
 * Rules are written as multi-document YAML to a temporary file and loaded
 * through cf_rulebook_load/cf_rulebook_finish, the way the CLI does; the
 * alerts are constructed here with realistic event JSON.  Every example
 * correlation of the specification is exercised.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "correlate.h"
#include "shared_data.h"
#include "sigma_correlation.h"
#include "yaml_json.h"

/* ---- helpers ------------------------------------------------------------ */

struct sink {
    struct cf_alert *a;
    size_t n, cap;
};

static void collect(const struct cf_alert *alert, void *opaque) {
    struct sink *s = opaque;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->a = realloc(s->a, s->cap * sizeof(*s->a));
        assert_non_null(s->a);
    }
    assert_int_equal(cf_alert_copy(&s->a[s->n], alert), CF_OK);
    s->n++;
}

static void sink_clear(struct sink *s) {
    for (size_t i = 0; i < s->n; i++) cf_alert_clear(&s->a[i]);
    free(s->a);
    memset(s, 0, sizeof(*s));
}

static struct cf_rulebook *load_yaml(const char *yaml) {
    char path[] = "/tmp/cf_test_corr_XXXXXX.yml";
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    size_t len = strlen(yaml);
    assert_int_equal(write(fd, yaml, len), (ssize_t)len);
    close(fd);
    struct cf_rulebook *rb = cf_rulebook_new();
    char err[512];
    assert_int_equal(cf_rulebook_load(rb, path, NULL, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_rulebook_finish(rb, err, sizeof(err)), CF_OK);
    unlink(path);
    return rb;
}

static const struct cf_sigma_rule *rule_by(const struct cf_rulebook *rb,
                                           const char *ref) {
    for (size_t i = 0; i < rb->n_rules; i++)
        if ((rb->rules[i]->id && !strcmp(rb->rules[i]->id, ref)) ||
            (rb->rules[i]->name && !strcmp(rb->rules[i]->name, ref)))
            return rb->rules[i];
    fail_msg("rule %s not loaded", ref);
    return NULL;
}

/* An alert of rule `ref` at `t_ms` on the event `json`; the id is derived
 * from (rule, seq) like the pipeline derives it from (rule, event). */
static void mk_alert(struct cf_alert *a, const struct cf_rulebook *rb,
                     const char *ref, int64_t t_ms, int seq, const char *json) {
    const struct cf_sigma_rule *r = rule_by(rb, ref);
    char seed[128];
    memset(a, 0, sizeof(*a));
    int n = snprintf(seed, sizeof(seed), "%s/%d", r->id ? r->id : r->name, seq);
    cf_digest_hex128(seed, (size_t)n, a->id);
    a->time_ms = t_ms;
    a->rule_id = r->id ? r->id : r->name;
    a->rule_title = r->title;
    a->rule_path = r->path;
    a->rule_name = r->name;
    a->level = r->level;
    a->tactics = r->tactics;
    a->n_tactics = r->n_tactics;
    a->techniques = r->techniques;
    a->n_techniques = r->n_techniques;
    a->event_json = strdup(json);
    a->event_len = strlen(json);
    a->pos.source = "test.jsonl";
    a->pos.partition = -1;
    a->pos.offset = seq;
}

/* `section` is the JSON text of the `correlation` config section, or
 * NULL for the defaults. */
static struct cf_correlator *mk_co(const struct cf_rulebook *rb,
                                   const char *section, struct sink *s) {
    char err[256];
    struct cf_config *cfg = NULL;
    if (section) {
        json_t *root =
            json_pack("{s:o}", "correlation", json_loads(section, 0, NULL));
        cfg = cf_config_from_json(root, "test", err, sizeof(err));
        json_decref(root);
        if (!cfg) fail_msg("%s", err);
    }
    struct cf_correlator *co = cf_correlator_new(
        rb, cfg ? &cfg->correlation : NULL, NULL, collect, s, err, sizeof(err));
    cf_config_destroy(cfg);
    assert_non_null(co);
    return co;
}

static void push(struct cf_correlator *co, const struct cf_rulebook *rb,
                 const char *ref, int64_t t, int seq, const char *json) {
    struct cf_alert a;
    mk_alert(&a, rb, ref, t, seq, json);
    cf_correlator_push(co, &a);
    cf_alert_clear(&a);
}

static size_t count_rule(const struct sink *s, const char *title) {
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += strcmp(s->a[i].rule_title, title) == 0;
    return n;
}

/* What correlation skipped is in the dropped family. */
static uint64_t dropped(struct cf_correlator *co, enum cf_drop_reason r) {
    struct cf_drops d;
    memset(&d, 0, sizeof d);
    cf_correlator_drops(co, &d);
    return d.n[r];
}

static json_int_t stat(struct cf_correlator *co, const char *key) {
    json_t *st = cf_correlator_stats(co);
    json_int_t v = json_integer_value(json_object_get(st, key));
    json_decref(st);
    return v;
}

#define RULE(id, name, extra)                                                  \
    "title: Rule " name "\nid: " id "\nname: " name "\n" extra                 \
    "logsource:\n    product: windows\n    service: security\n"                \
    "detection:\n    selection:\n        EventID: 4625\n"                      \
    "    condition: selection\nlevel: low\n"

static const int64_t T0 = 1692161671000; /* 2023-08-16T04:54:31Z */

/* ---- spec examples --------------------------------------------------------
 */

static void test_spec_event_count(void **state) {
    (void)state;
    struct cf_rulebook *rb = load_yaml(
        RULE("5638f7c0-ac70-491d-8465-2a65075e0d86", "failed_logon",
             "tags:\n    - attack.credential-access\n    - "
             "attack.t1110\n") "---\n"
                               "title: Many failed logins\n"
                               "id: "
                               "0e95725d-7320-415d-80f7-004da920fc11\n"
                               "correlation:\n"
                               "    type: event_count\n"
                               "    rules:\n"
                               "        - "
                               "5638f7c0-ac70-491d-8465-2a65075e0d86\n"
                               "    group-by:\n"
                               "        - ComputerName\n"
                               "    timespan: 1h\n"
                               "    condition:\n"
                               "        gte: 100\n");
    assert_int_equal(rb->n_correlations, 1);
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    char ev[256];
    for (int i = 0; i < 99; i++) {
        snprintf(ev, sizeof(ev),
                 "{\"EventID\":4625,\"ComputerName\":\"DC01.corp.local\","
                 "\"TargetUserName\":\"u%d\"}",
                 i);
        push(co, rb, "failed_logon", T0 + i * 30000, i, ev);
        push(co, rb, "failed_logon", T0 + i * 30000, 1000 + i,
             "{\"EventID\":4625,\"ComputerName\":\"WS02\"}");
    }
    cf_correlator_advance(co, T0 + 99 * 30000);
    assert_int_equal(s.n, 0);
    push(co, rb, "failed_logon", T0 + 99 * 30000 + 1, 99,
         "{\"EventID\":4625,\"ComputerName\":\"DC01.corp.local\"}");
    cf_correlator_finish(co);
    assert_int_equal(s.n, 1);
    struct cf_alert *a = &s.a[0];
    assert_true(a->is_correlation);
    assert_string_equal(a->rule_id, "0e95725d-7320-415d-80f7-004da920fc11");
    assert_string_equal(a->rule_title, "Many failed logins");
    assert_int_equal(a->time_ms, T0 + 99 * 30000 + 1);
    assert_int_equal(a->pos.offset, 99);
    assert_int_equal(strlen(a->id), 32);
    assert_null(a->event_json);
    /* tactics inherited from the referenced rule */
    assert_int_equal(a->n_tactics, 1);
    assert_string_equal(a->tactics[0], "credential-access");
    assert_string_equal(a->techniques[0], "T1110");
    json_t *x = a->extra;
    assert_string_equal(json_string_value(json_object_get(x, "type")),
                        "event_count");
    assert_int_equal(json_integer_value(json_object_get(x, "count")), 100);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(x, "group"), "ComputerName")),
                        "DC01.corp.local");
    assert_int_equal(json_array_size(json_object_get(x, "alert_ids")), 100);
    assert_string_equal(json_string_value(json_object_get(x, "timespan")),
                        "1h");
    /* the record the CLI writes carries it under "correlation" */
    struct cf_buf out = CF_BUF_INIT;
    assert_int_equal(cf_alert_write(a, &out), CF_OK);
    json_t *rec = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(rec);
    assert_non_null(json_object_get(rec, "correlation"));
    assert_null(json_object_get(rec, "event"));
    json_decref(rec);
    cf_buf_free(&out);
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

static void test_spec_value_count(void **state) {
    (void)state;
    struct cf_rulebook *rb =
        load_yaml(RULE("5638f7c0-ac70-491d-8465-2a65075e0d86", "failed_logon",
                       "") "---\n"
                           "title: Failed login\n"
                           "id: 0e95725d-7320-415d-80f7-004da920fc12\n"
                           "correlation:\n"
                           "    type: value_count\n"
                           "    rules:\n"
                           "        - 5638f7c0-ac70-491d-8465-2a65075e0d86\n"
                           "    group-by:\n"
                           "        - ComputerName\n"
                           "        - WorkstationName\n"
                           "    timespan: 1d\n"
                           "    condition:\n"
                           "        field: User\n"
                           "        gte: 100\n");
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    char ev[256];
    /* 150 failures of the same user: one value, no hit */
    for (int i = 0; i < 150; i++)
        push(co, rb, "failed_logon", T0 + i * 1000, i,
             "{\"ComputerName\":\"DC01\",\"WorkstationName\":\"KALI\","
             "\"User\":\"admin\"}");
    cf_correlator_advance(co, T0 + 200000);
    assert_int_equal(s.n, 0);
    /* 99 more distinct users from another workstation: 99 values */
    for (int i = 0; i < 99; i++) {
        snprintf(ev, sizeof(ev),
                 "{\"ComputerName\":\"DC01\",\"WorkstationName\":\"WS7\","
                 "\"User\":\"user%03d\"}",
                 i);
        push(co, rb, "failed_logon", T0 + 300000 + i * 1000, 200 + i, ev);
    }
    cf_correlator_advance(co, T0 + 500000);
    assert_int_equal(s.n, 0);
    /* 99 distinct users on the first workstation + admin = 100 */
    for (int i = 0; i < 99; i++) {
        snprintf(ev, sizeof(ev),
                 "{\"ComputerName\":\"DC01\",\"WorkstationName\":\"KALI\","
                 "\"User\":\"user%03d\"}",
                 i);
        push(co, rb, "failed_logon", T0 + 600000 + i * 1000, 400 + i, ev);
    }
    cf_correlator_finish(co);
    assert_int_equal(s.n, 1);
    assert_int_equal(json_integer_value(json_object_get(s.a[0].extra, "count")),
                     100);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(s.a[0].extra, "group"), "WorkstationName")),
        "KALI");
    assert_int_equal(s.a[0].time_ms, T0 + 600000 + 98 * 1000);
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

static const char *recon_yaml = RULE(
    "11111111-0000-4000-8000-00000000000a", "recon_cmd_a",
    "tags:\n    - attack.discovery\n") "---\n" RULE("11111111-0000-4000-8000-"
                                                    "00000000000b",
                                                    "recon_cmd_b",
                                                    "") "---\n" RULE("11111111-"
                                                                     "0000-"
                                                                     "4000-"
                                                                     "8000-"
                                                                     "000000000"
                                                                     "00c",
                                                                     "recon_"
                                                                     "cmd_c",
                                                                     "") "---\n"
                                                                         "title"
                                                                         ": "
                                                                         "Recon"
                                                                         " burs"
                                                                         "t\n"
                                                                         "id: "
                                                                         "22222"
                                                                         "222-"
                                                                         "0000-"
                                                                         "4000-"
                                                                         "8000-"
                                                                         "00000"
                                                                         "00000"
                                                                         "01\n"
                                                                         "level"
                                                                         ": "
                                                                         "high"
                                                                         "\n"
                                                                         "corre"
                                                                         "latio"
                                                                         "n:\n"
                                                                         "    "
                                                                         "type:"
                                                                         " temp"
                                                                         "oral"
                                                                         "\n"
                                                                         "    "
                                                                         "rules"
                                                                         ":\n"
                                                                         "     "
                                                                         "   - "
                                                                         "recon"
                                                                         "_cmd_"
                                                                         "a\n"
                                                                         "     "
                                                                         "   - "
                                                                         "recon"
                                                                         "_cmd_"
                                                                         "b\n"
                                                                         "     "
                                                                         "   - "
                                                                         "recon"
                                                                         "_cmd_"
                                                                         "c\n"
                                                                         "    "
                                                                         "group"
                                                                         "-by:"
                                                                         "\n"
                                                                         "     "
                                                                         "   - "
                                                                         "Compu"
                                                                         "terNa"
                                                                         "me\n"
                                                                         "     "
                                                                         "   - "
                                                                         "User"
                                                                         "\n"
                                                                         "    "
                                                                         "times"
                                                                         "pan: "
                                                                         "5m\n";

#define RECON_EV(host, user)                                                   \
    "{\"ComputerName\":\"" host "\",\"User\":\"" user "\","                    \
    "\"CommandLine\":\"whoami /all\"}"

static void test_spec_temporal(void **state) {
    (void)state;
    struct cf_rulebook *rb = load_yaml(recon_yaml);
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    /* c, a, b in arbitrary order within 5 minutes on one host/user */
    push(co, rb, "recon_cmd_c", T0, 1, RECON_EV("WS1", "CORP\\bob"));
    push(co, rb, "recon_cmd_a", T0 + 60000, 2, RECON_EV("WS1", "CORP\\bob"));
    /* same rule on another user: different group */
    push(co, rb, "recon_cmd_b", T0 + 90000, 3, RECON_EV("WS1", "CORP\\eve"));
    cf_correlator_advance(co, T0 + 100000);
    assert_int_equal(s.n, 0);
    push(co, rb, "recon_cmd_b", T0 + 120000, 4, RECON_EV("WS1", "CORP\\bob"));
    /* another group: a at 0, b at +1m, c at +6m: too far apart */
    push(co, rb, "recon_cmd_a", T0, 5, RECON_EV("WS2", "CORP\\ann"));
    push(co, rb, "recon_cmd_b", T0 + 60000, 6, RECON_EV("WS2", "CORP\\ann"));
    push(co, rb, "recon_cmd_c", T0 + 360001, 7, RECON_EV("WS2", "CORP\\ann"));
    cf_correlator_finish(co);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.a[0].level, CF_LEVEL_HIGH);
    assert_int_equal(s.a[0].time_ms, T0 + 120000);
    assert_int_equal(json_integer_value(json_object_get(s.a[0].extra, "count")),
                     3);
    assert_string_equal(s.a[0].tactics[0], "discovery");
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

/* The specification's complete example: multi-document file, names,
 * chaining (temporal_ordered over an event_count). */
static const char *brute_yaml =
    "title: Correlation - Multiple Failed Logins Followed by Successful Login\n"
    "id: b180ead8-d58f-40b2-ae54-c8940995b9b6\n"
    "status: experimental\n"
    "description: Detects multiple failed logins by a single user followed by "
    "a successful login of that user\n"
    "references:\n"
    "    - https://reference.com\n"
    "author: Florian Roth (Nextron Systems)\n"
    "date: 2023-06-16\n"
    "correlation:\n"
    "    type: temporal_ordered\n"
    "    rules:\n"
    "        - multiple_failed_login\n"
    "        - successful_login\n"
    "    group-by:\n"
    "        - User\n"
    "    timespan: 10m\n"
    "falsepositives:\n"
    "    - Unlikely\n"
    "level: high\n"
    "---\n"
    "title: Multiple failed logons\n"
    "id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41\n"
    "description: Detects multiple failed logins within a certain amount of "
    "time\n"
    "name: multiple_failed_login\n"
    "correlation:\n"
    "    type: event_count\n"
    "    rules:\n"
    "        - failed_login\n"
    "    group-by:\n"
    "        - User\n"
    "    timespan: 10m\n"
    "    condition:\n"
    "        gte: 10\n"
    "---\n"
    "title: Single failed login\n"
    "id: 53ba33fd-3a50-4468-a5ef-c583635cfa92\n"
    "name: failed_login\n"
    "logsource:\n"
    "    product: windows\n"
    "    service: security\n"
    "detection:\n"
    "    selection:\n"
    "        EventID:\n"
    "            - 529\n"
    "            - 4625\n"
    "    condition: selection\n"
    "---\n"
    "title: Successful login\n"
    "id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8\n"
    "description: Detects a successful login\n"
    "name: successful_login\n"
    "logsource:\n"
    "    product: windows\n"
    "    service: security\n"
    "detection:\n"
    "    selection:\n"
    "        EventID:\n"
    "            - 528\n"
    "            - 4624\n"
    "    condition: selection\n";

static void run_brute(struct sink *s, bool success_first) {
    struct cf_rulebook *rb = load_yaml(brute_yaml);
    assert_int_equal(rb->n_rules, 2);
    assert_int_equal(rb->n_correlations, 2);
    assert_int_equal(rb->n_rejected, 0);
    struct cf_correlator *co = mk_co(rb, NULL, s);
    int64_t t = T0;
    if (success_first)
        push(co, rb, "successful_login", t - 1000, 100,
             "{\"EventID\":4624,\"User\":\"pedro\",\"Computer\":\"MKT01\"}");
    for (int i = 0; i < 10; i++)
        push(co, rb, "failed_login", t + i * 5000, i,
             "{\"EventID\":4625,\"User\":\"pedro\",\"Computer\":\"MKT01\","
             "\"IpAddress\":\"10.0.0.66\"}");
    if (!success_first)
        push(co, rb, "successful_login", t + 60000, 100,
             "{\"EventID\":4624,\"User\":\"pedro\",\"Computer\":\"MKT01\"}");
    cf_correlator_finish(co);
    cf_correlator_destroy(co);
    /* alerts keep borrowed titles: copy before the rulebook goes */
    for (size_t i = 0; i < s->n; i++)
        s->a[i].rule_title =
            strcmp(s->a[i].rule_title, "Multiple failed logons") == 0 ? "inner"
                                                                      : "outer";
    cf_rulebook_destroy(rb);
}

static void test_spec_temporal_ordered_chain(void **state) {
    (void)state;
    struct sink s = {0};
    run_brute(&s, false);
    assert_int_equal(count_rule(&s, "inner"), 1);
    assert_int_equal(count_rule(&s, "outer"), 1);
    assert_int_equal(s.a[1].time_ms, T0 + 60000);
    assert_int_equal(s.a[1].level, CF_LEVEL_HIGH);
    sink_clear(&s);
    /* success before the failures: not in order, only the inner fires */
    run_brute(&s, true);
    assert_int_equal(count_rule(&s, "inner"), 1);
    assert_int_equal(count_rule(&s, "outer"), 0);
    sink_clear(&s);
}

static void test_spec_value_sum_avg(void **state) {
    (void)state;
    struct cf_rulebook *rb =
        load_yaml(RULE("33333333-0000-4000-8000-000000000001", "website_access",
                       "") "---\n"
                           "title: Possible Exfiltration to Website\n"
                           "correlation:\n"
                           "    type: value_sum\n"
                           "    rules:\n"
                           "        - website_access\n"
                           "    group-by:\n"
                           "        - SourceIP\n"
                           "        - User\n"
                           "    timespan: 1h\n"
                           "    condition:\n"
                           "        field: bytes_sent\n"
                           "        gt: 1000000\n"
                           "---\n"
                           "title: Suspicious average network traffic\n"
                           "correlation:\n"
                           "    type: value_avg\n"
                           "    rules: \n"
                           "        - website_access\n"
                           "    group-by:\n"
                           "        - SourceIP\n"
                           "        - User\n"
                           "    timespan: 24h\n"
                           "    condition:\n"
                           "        field: BytesOut\n"
                           "        gt: 500\n");
    assert_int_equal(rb->n_correlations, 2);
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    /* 4 x 300000 bytes: the sum passes 1e6 on the 4th; BytesOut avg 400 */
    for (int i = 0; i < 4; i++)
        push(co, rb, "website_access", T0 + i * 60000, i,
             "{\"SourceIP\":\"10.1.1.5\",\"User\":\"alice\","
             "\"bytes_sent\":300000,\"BytesOut\":\"400\"}");
    cf_correlator_advance(co, T0 + 3600000);
    assert_int_equal(count_rule(&s, "Possible Exfiltration to Website"), 1);
    assert_int_equal(count_rule(&s, "Suspicious average network traffic"), 0);
    assert_true(json_real_value(json_object_get(s.a[0].extra, "value")) ==
                1200000.0);
    assert_int_equal(s.a[0].time_ms, T0 + 3 * 60000);
    /* one big transfer lifts the average above 500: (4*400+1000)/5 = 520 */
    push(co, rb, "website_access", T0 + 3600001, 9,
         "{\"SourceIP\":\"10.1.1.5\",\"User\":\"alice\",\"bytes_sent\":1,"
         "\"BytesOut\":1000}");
    /* a non-numeric value is not counted */
    push(co, rb, "website_access", T0 + 3600002, 10,
         "{\"SourceIP\":\"10.1.1.5\",\"User\":\"alice\",\"bytes_sent\":1,"
         "\"BytesOut\":\"n/a\"}");
    cf_correlator_finish(co);
    assert_int_equal(count_rule(&s, "Suspicious average network traffic"), 1);
    assert_int_equal(dropped(co, CF_DROP_CORRELATION_NO_VALUE), 1);
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

static void test_spec_value_percentile(void **state) {
    (void)state;
    struct cf_rulebook *rb = load_yaml(
        RULE("44444444-0000-4000-8000-000000000001", "process_creation",
             "") "---\n"
                 "title: A computer spawned a processes name in the last 24h "
                 "than 1% of all the processes.\n"
                 "correlation:\n"
                 "    type: value_percentile\n"
                 "    rules: \n"
                 "        - process_creation\n"
                 "    group-by:\n"
                 "        - ComputerName\n"
                 "    timespan: 24h\n"
                 "    condition:\n"
                 "        field: image\n"
                 "        lte: 1\n");
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    for (int i = 0; i < 150; i++)
        push(co, rb, "process_creation", T0 + i * 1000, i,
             i % 2 ? "{\"ComputerName\":\"WS1\",\"image\":\"C:"
                     "\\\\Windows\\\\System32\\\\svchost.exe\"}"
                   : "{\"ComputerName\":\"WS1\",\"image\":\"C:"
                     "\\\\Windows\\\\explorer.exe\"}");
    cf_correlator_advance(co, T0 + 200000);
    assert_int_equal(s.n, 0);
    push(co, rb, "process_creation", T0 + 300000, 500,
         "{\"ComputerName\":\"WS1\",\"image\":\"C:\\\\Users\\\\Public\\\\x."
         "exe\"}");
    cf_correlator_finish(co);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.a[0].pos.offset, 500);
    double v = json_real_value(json_object_get(s.a[0].extra, "value"));
    assert_true(v > 0.6 && v < 0.7); /* 1 of 151 */
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

static void test_spec_aliases(void **state) {
    (void)state;
    struct cf_rulebook *rb =
        load_yaml("title: Internal error\n"
                  "id: 55555555-0000-4000-8000-000000000001\n"
                  "name: internal_error\n"
                  "logsource:\n    category: webserver\n"
                  "detection:\n"
                  "    selection:\n"
                  "        http.response.status_code: 500\n"
                  "    condition: selection\n"
                  "---\n"
                  "title: New network connection\n"
                  "id: 55555555-0000-4000-8000-000000000002\n"
                  "name: new_network_connection\n"
                  "logsource:\n    category: network_connection\n"
                  "detection:\n"
                  "    selection:\n"
                  "        event.category: network\n"
                  "        event.type: connection\n"
                  "        event.outcome: success\n"
                  "    condition: selection\n"
                  "---\n"
                  "title: —\n"
                  "id: —\n"
                  "correlation:\n"
                  "    type: temporal\n"
                  "    rules:\n"
                  "        - internal_error\n"
                  "        - new_network_connection\n"
                  "    group-by:\n"
                  "        - internal_ip\n"
                  "        - remote_ip\n"
                  "    timespan: 10s\n"
                  "    aliases:\n"
                  "        internal_ip:\n"
                  "            internal_error: destination.ip\n"
                  "            new_network_connection: source.ip\n"
                  "        remote_ip:\n"
                  "            internal_error: source.ip\n"
                  "            new_network_connection: destination.ip\n");
    assert_int_equal(rb->n_correlations, 1);
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    /* nested ECS objects for one rule, dotted keys for the other */
    push(co, rb, "internal_error", T0, 1,
         "{\"http\":{\"response\":{\"status_code\":500}},"
         "\"source\":{\"ip\":\"203.0.113.9\"},"
         "\"destination\":{\"ip\":\"10.0.0.5\"}}");
    /* same addresses the same way round: no match */
    push(co, rb, "new_network_connection", T0 + 2000, 2,
         "{\"event.category\":\"network\",\"source.ip\":\"203.0.113.9\","
         "\"destination.ip\":\"10.0.0.5\"}");
    cf_correlator_advance(co, T0 + 5000);
    assert_int_equal(s.n, 0);
    /* reversed: the internal host connects back out */
    push(co, rb, "new_network_connection", T0 + 8000, 3,
         "{\"event.category\":\"network\",\"source.ip\":\"10.0.0.5\","
         "\"destination.ip\":\"203.0.113.9\"}");
    cf_correlator_finish(co);
    assert_int_equal(s.n, 1);
    json_t *g = json_object_get(s.a[0].extra, "group");
    assert_string_equal(json_string_value(json_object_get(g, "internal_ip")),
                        "10.0.0.5");
    assert_string_equal(json_string_value(json_object_get(g, "remote_ip")),
                        "203.0.113.9");
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

/* ---- semantics ---------------------------------------------------------- */

static const char *count3_yaml =
    RULE("66666666-0000-4000-8000-000000000001", "r1",
         "") "---\n"
             "title: Three in ten seconds\n"
             "id: 66666666-0000-4000-8000-0000000000c1\n"
             "correlation:\n"
             "    type: event_count\n"
             "    rules: [r1]\n"
             "    group-by: [Computer]\n"
             "    timespan: 10s\n"
             "    condition: {gte: 3}\n";

static void test_sliding_window(void **state) {
    (void)state;
    struct cf_rulebook *rb = load_yaml(count3_yaml);
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    const char *ev = "{\"Computer\":\"H1\"}";
    /* 0, 6, 12: never three within 10 s (a fixed hourly bucket would not
     * matter, a sliding window must drop 0 when 12 arrives) */
    push(co, rb, "r1", T0, 1, ev);
    push(co, rb, "r1", T0 + 6000, 2, ev);
    push(co, rb, "r1", T0 + 12000, 3, ev);
    cf_correlator_advance(co, T0 + 12000);
    assert_int_equal(s.n, 0);
    /* 16: 6, 12, 16 within [6, 16] (boundary inclusive) */
    push(co, rb, "r1", T0 + 16000, 4, ev);
    cf_correlator_advance(co, T0 + 16000);
    assert_int_equal(s.n, 1);
    /* fired windows restart: 17, 18 alone do not fire again */
    push(co, rb, "r1", T0 + 17000, 5, ev);
    push(co, rb, "r1", T0 + 18000, 6, ev);
    /* no group-by field: not counted */
    push(co, rb, "r1", T0 + 18500, 7, "{\"Other\":1}");
    cf_correlator_advance(co, T0 + 40000);
    assert_int_equal(s.n, 1);
    assert_int_equal(dropped(co, CF_DROP_CORRELATION_NO_GROUP_BY), 1);
    /* the idle window expired with the watermark */
    assert_int_equal(stat(co, "windows_open"), 0);
    assert_true(stat(co, "windows_expired") >= 1);
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

static void test_upper_bound_decided_at_close(void **state) {
    (void)state;
    struct cf_rulebook *rb =
        load_yaml(RULE("77777777-0000-4000-8000-000000000001", "beacon",
                       "") "---\n"
                           "title: Between two and three\n"
                           "correlation:\n"
                           "    type: event_count\n"
                           "    rules: [beacon]\n"
                           "    group-by: [Computer]\n"
                           "    timespan: 1m\n"
                           "    condition:\n"
                           "        gt: 1\n"
                           "        lte: 3\n");
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    /* H1: 2 in the minute -> fires when the minute is over */
    push(co, rb, "beacon", T0, 1, "{\"Computer\":\"H1\"}");
    push(co, rb, "beacon", T0 + 30000, 2, "{\"Computer\":\"H1\"}");
    /* H2: 5 in the minute -> never (count 4 or 5 is above 3) */
    for (int i = 0; i < 5; i++)
        push(co, rb, "beacon", T0 + i * 1000, 10 + i, "{\"Computer\":\"H2\"}");
    cf_correlator_advance(co, T0 + 45000);
    assert_int_equal(s.n, 0); /* not decided while the span is open */
    cf_correlator_advance(co, T0 + 120000);
    assert_int_equal(s.n, 1);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(s.a[0].extra, "group"), "Computer")),
        "H1");
    assert_int_equal(json_integer_value(json_object_get(s.a[0].extra, "count")),
                     2);
    /* time and input position of the alert that completed the span */
    assert_int_equal(s.a[0].time_ms, T0 + 30000);
    assert_int_equal(s.a[0].pos.offset, 2);
    assert_string_equal(s.a[0].pos.source, "test.jsonl");
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

static void test_string_condition(void **state) {
    (void)state;
    struct cf_rulebook *rb = load_yaml(
        RULE("88888888-0000-4000-8000-00000000000a", "rule_a", "") "---\n" RULE(
            "88888888-0000-4000-8000-00000000000b", "rule_b",
            "") "---\n" RULE("88888888-0000-4000-8000-00000000000c", "rule_c",
                             "") "---\n"
                                 "title: A or B, then C\n"
                                 "correlation:\n"
                                 "    type: temporal\n"
                                 "    rules: [rule_a, rule_b, rule_c]\n"
                                 "    group-by: [Computer]\n"
                                 "    timespan: 5m\n"
                                 "    condition: (rule_a or rule_b) and "
                                 "rule_c\n");
    assert_int_equal(rb->n_correlations, 1);
    assert_non_null(rb->correlations[0]->expr);
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    push(co, rb, "rule_c", T0, 1, "{\"Computer\":\"H1\"}");
    push(co, rb, "rule_a", T0, 2, "{\"Computer\":\"H2\"}");
    cf_correlator_advance(co, T0 + 1000);
    assert_int_equal(s.n, 0);
    push(co, rb, "rule_b", T0 + 2000, 3, "{\"Computer\":\"H1\"}");
    cf_correlator_finish(co);
    assert_int_equal(s.n, 1);
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

/* Same alerts, shuffled within the lateness, with the watermark trailing
 * the highest time seen: identical correlation alerts. */
static void run_order(const struct cf_rulebook *rb, const int *order, int n,
                      struct sink *s) {
    struct cf_correlator *co = mk_co(rb, NULL, s);
    const int64_t lateness = 60000;
    int64_t maxt = INT64_MIN;
    for (int k = 0; k < n; k++) {
        int i = order[k];
        int64_t t = T0 + (int64_t)i * 1000; /* 1 s apart */
        char ev[96];
        snprintf(ev, sizeof(ev), "{\"Computer\":\"H%d\"}", i % 3);
        push(co, rb, "r1", t, i, ev);
        if (t > maxt) maxt = t;
        cf_correlator_advance(co, maxt - lateness);
    }
    cf_correlator_finish(co);
    assert_int_equal(stat(co, "late_alerts"), 0);
    cf_correlator_destroy(co);
}

static void test_out_of_order_deterministic(void **state) {
    (void)state;
    struct cf_rulebook *rb = load_yaml(count3_yaml);
    enum { N = 200 };
    int order[N];
    struct sink a = {0}, b = {0};
    for (int i = 0; i < N; i++) order[i] = i;
    run_order(rb, order, N, &a);
    /* shuffle inside blocks of 25 (25 s < 60 s lateness) */
    srand(7);
    for (int blk = 0; blk < N; blk += 25)
        for (int i = blk + 24; i > blk; i--) {
            int j = blk + rand() % (i - blk + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    run_order(rb, order, N, &b);
    assert_true(a.n > 10);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        assert_string_equal(a.a[i].id, b.a[i].id);
        assert_int_equal(a.a[i].time_ms, b.a[i].time_ms);
        char *ja = json_dumps(a.a[i].extra, JSON_SORT_KEYS);
        char *jb = json_dumps(b.a[i].extra, JSON_SORT_KEYS);
        assert_string_equal(ja, jb);
        free(ja);
        free(jb);
    }
    sink_clear(&a);
    sink_clear(&b);
    cf_rulebook_destroy(rb);
}

static void test_entities_merged(void **state) {
    (void)state;
    struct cf_rulebook *rb = load_yaml(recon_yaml);
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    const char *refs[] = {"recon_cmd_a", "recon_cmd_b", "recon_cmd_c"};
    for (int i = 0; i < 3; i++) {
        struct cf_alert a;
        mk_alert(&a, rb, refs[i], T0 + i * 1000, i, RECON_EV("WS1", "bob"));
        a.entities.value[CF_ENTITY_HOST] = strdup(i ? "other" : "WS1.corp");
        if (i == 1) a.entities.value[CF_ENTITY_USER] = strdup("CORP\\bob");
        if (i == 2) a.entities.value[CF_ENTITY_SRC_IP] = strdup("10.0.0.9");
        cf_correlator_push(co, &a);
        cf_alert_clear(&a);
    }
    cf_correlator_finish(co);
    assert_int_equal(s.n, 1);
    /* first value per kind among the contributing alerts */
    assert_string_equal(s.a[0].entities.value[CF_ENTITY_HOST], "WS1.corp");
    assert_string_equal(s.a[0].entities.value[CF_ENTITY_USER], "CORP\\bob");
    assert_string_equal(s.a[0].entities.value[CF_ENTITY_SRC_IP], "10.0.0.9");
    assert_null(s.a[0].entities.value[CF_ENTITY_DST_IP]);
    assert_int_equal(
        json_array_size(json_object_get(s.a[0].extra, "alert_ids")), 3);
    /* the same correlation alert pushed back (fusion does) is not counted
     * twice: chaining already happened inside the correlator */
    cf_correlator_push(co, &s.a[0]);
    assert_int_equal(stat(co, "alerts_counted"), 3);
    /* ids are stable: a second run gives the same id */
    struct sink s2 = {0};
    struct cf_correlator *co2 = mk_co(rb, NULL, &s2);
    for (int i = 0; i < 3; i++)
        push(co2, rb, refs[i], T0 + i * 1000, i, RECON_EV("WS1", "bob"));
    cf_correlator_finish(co2);
    assert_int_equal(s2.n, 1);
    assert_string_equal(s.a[0].id, s2.a[0].id);
    cf_correlator_destroy(co2);
    sink_clear(&s2);
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

static void test_late_alert_counted(void **state) {
    (void)state;
    struct cf_rulebook *rb = load_yaml(count3_yaml);
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, NULL, &s);
    const char *ev = "{\"Computer\":\"H1\"}";
    push(co, rb, "r1", T0 + 5000, 1, ev);
    push(co, rb, "r1", T0 + 8000, 2, ev);
    cf_correlator_advance(co, T0 + 9000);
    /* older than the watermark but its window is still open */
    push(co, rb, "r1", T0 + 4000, 3, ev);
    assert_int_equal(stat(co, "late_alerts"), 1);
    assert_int_equal(s.n, 1);
    cf_correlator_finish(co);
    cf_correlator_destroy(co);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

static void test_eviction(void **state) {
    (void)state;
    struct cf_rulebook *rb = load_yaml(count3_yaml);
    struct sink s = {0};
    struct cf_correlator *co = mk_co(rb, "{\"max_open_windows\": 10}", &s);
    char ev[64];
    for (int i = 0; i < 25; i++) {
        snprintf(ev, sizeof(ev), "{\"Computer\":\"host-%02d\"}", i);
        push(co, rb, "r1", T0 + i, i, ev);
    }
    cf_correlator_finish(co);
    assert_int_equal(stat(co, "windows_open"), 10);
    assert_int_equal(dropped(co, CF_DROP_CORRELATION_WINDOW_EVICTED), 15);
    /* the oldest went: host-00 is gone, so two more do not fire it */
    push(co, rb, "r1", T0 + 100, 100, "{\"Computer\":\"host-24\"}");
    push(co, rb, "r1", T0 + 101, 101, "{\"Computer\":\"host-24\"}");
    push(co, rb, "r1", T0 + 100, 102, "{\"Computer\":\"host-00\"}");
    push(co, rb, "r1", T0 + 101, 103, "{\"Computer\":\"host-00\"}");
    cf_correlator_finish(co);
    assert_int_equal(s.n, 1);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(s.a[0].extra, "group"), "Computer")),
        "host-24");
    cf_correlator_destroy(co);
    /* a bad section is refused with a reason, where the config is read */
    char err[256] = "";
    json_t *bad =
        json_loads("{\"correlation\": {\"max_open_windows\": -1}}", 0, NULL);
    assert_null(cf_config_from_json(bad, "test.yml", err, sizeof(err)));
    assert_non_null(strstr(err, "test.yml: correlation.max_open_windows"));
    json_decref(bad);
    bad = json_loads("{\"correlation\": {\"max_open_window\": 5}}", 0, NULL);
    assert_null(cf_config_from_json(bad, "test.yml", err, sizeof(err)));
    assert_non_null(strstr(err, "correlation.max_open_window: unknown key"));
    json_decref(bad);
    sink_clear(&s);
    cf_rulebook_destroy(rb);
}

static const char *find_reason(const struct cf_rulebook *rb, const char *id) {
    for (size_t i = 0; i < rb->n_rejected; i++)
        if (rb->rejected[i].id && strcmp(rb->rejected[i].id, id) == 0)
            return rb->rejected[i].reason;
    return NULL;
}

static void test_rejections(void **state) {
    (void)state;
    struct cf_rulebook *rb = load_yaml(RULE(
        "99999999-0000-4000-8000-000000000001", "ok_rule",
        "") "---\n"
            "title: unknown ref\nid: bad-unknown\n"
            "correlation: {type: event_count, rules: [no_such_rule], "
            "group-by: [User], timespan: 1h, condition: {gte: 2}}\n"
            "---\n"
            "title: cycle a\nid: bad-cycle-a\nname: cyc_a\n"
            "correlation: {type: event_count, rules: [cyc_b], "
            "group-by: [User], timespan: 1h, condition: {gte: 2}}\n"
            "---\n"
            "title: cycle b\nid: bad-cycle-b\nname: cyc_b\n"
            "correlation: {type: event_count, rules: [cyc_a], "
            "group-by: [User], timespan: 1h, condition: {gte: 2}}\n"
            "---\n"
            "title: over a rejected one\nid: bad-chain\n"
            "correlation: {type: temporal, rules: [cyc_a, ok_rule], "
            "group-by: [User], timespan: 1h}\n"
            "---\n"
            "title: bad timespan\nid: bad-timespan\n"
            "correlation: {type: event_count, rules: [ok_rule], "
            "group-by: [User], timespan: 1 hour, condition: {gte: 2}}\n"
            "---\n"
            "title: no condition\nid: bad-nocond\n"
            "correlation: {type: event_count, rules: [ok_rule], "
            "group-by: [User], timespan: 1h}\n"
            "---\n"
            "title: value without field\nid: bad-nofield\n"
            "correlation: {type: value_count, rules: [ok_rule], "
            "group-by: [User], timespan: 1h, condition: {gte: 2}}\n"
            "---\n"
            "title: bad op\nid: bad-op\n"
            "correlation: {type: event_count, rules: [ok_rule], "
            "group-by: [User], timespan: 1h, condition: {more: 2}}\n"
            "---\n"
            "title: bad type\nid: bad-type\n"
            "correlation: {type: event_sum, rules: [ok_rule], "
            "group-by: [User], timespan: 1h, condition: {gte: 2}}\n"
            "---\n"
            "title: bad expr\nid: bad-expr\n"
            "correlation: {type: temporal, rules: [ok_rule], "
            "group-by: [User], timespan: 1h, condition: ok_rule and other}\n"
            "---\n"
            "title: good one\nid: good\n"
            "correlation: {type: event_count, rules: [ok_rule], "
            "group-by: [User], timespan: 1h, condition: {gte: 2}}\n");
    assert_int_equal(rb->n_correlations, 1);
    assert_string_equal(rb->correlations[0]->id, "good");
    const char *r;
    assert_non_null(r = find_reason(rb, "bad-unknown"));
    assert_non_null(strstr(r, "no_such_rule"));
    assert_non_null(r = find_reason(rb, "bad-cycle-a"));
    assert_non_null(strstr(r, "cycle"));
    assert_non_null(r = find_reason(rb, "bad-cycle-b"));
    assert_non_null(r = find_reason(rb, "bad-chain"));
    assert_non_null(strstr(r, "rejected"));
    assert_non_null(r = find_reason(rb, "bad-timespan"));
    assert_non_null(strstr(r, "timespan"));
    assert_non_null(r = find_reason(rb, "bad-nocond"));
    assert_non_null(strstr(r, "condition"));
    assert_non_null(r = find_reason(rb, "bad-nofield"));
    assert_non_null(strstr(r, "field"));
    assert_non_null(r = find_reason(rb, "bad-op"));
    assert_non_null(strstr(r, "more"));
    assert_non_null(r = find_reason(rb, "bad-type"));
    assert_non_null(strstr(r, "type"));
    assert_non_null(r = find_reason(rb, "bad-expr"));
    assert_non_null(strstr(r, "other"));
    /* the valid correlation and the rule survive */
    assert_int_equal(rb->n_rules, 1);
    cf_rulebook_destroy(rb);
}

static void test_parse_fields(void **state) {
    (void)state;
    char err[256];
    json_t *doc = json_loads(
        "{\"title\":\"t\",\"name\":\"n\",\"level\":\"critical\","
        "\"tags\":[\"attack.lateral-movement\",\"attack.t1021.002\","
        "\"attack.g0016\"],\"generate\":true,"
        "\"correlation\":{\"type\":\"value_count\",\"rules\":[\"a\",\"b\"],"
        "\"group-by\":[\"host\"],\"timespan\":\"90m\","
        "\"aliases\":{\"host\":{\"a\":\"Computer\",\"b\":\"hostname\"}},"
        "\"condition\":{\"field\":[\"User\",\"Domain\"],\"gt\":3,\"lt\":9}}}",
        0, NULL);
    struct cf_sigma_correlation *c =
        cf_correlation_parse(doc, "x.yml", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->type, CF_CORR_VALUE_COUNT);
    assert_int_equal(c->timespan_ms, 90 * 60000);
    assert_int_equal(c->level, CF_LEVEL_CRITICAL);
    assert_true(c->generate);
    assert_string_equal(c->key, "n");
    assert_string_equal(c->group_fields[0], "Computer");
    assert_string_equal(c->group_fields[1], "hostname");
    assert_int_equal(c->n_fields, 2);
    assert_int_equal(c->n_criteria, 2);
    assert_true(cf_correlation_criteria_hold(c, 5));
    assert_false(cf_correlation_criteria_hold(c, 9));
    assert_false(cf_correlation_criteria_hold(c, 3));
    assert_int_equal(c->n_tactics, 1);
    assert_string_equal(c->tactics[0], "lateral-movement");
    assert_string_equal(c->techniques[0], "T1021.002");
    cf_correlation_destroy(c);
    cf_correlation_destroy(NULL);
    json_decref(doc);
}

/* The specification's own correlation test files (shared data): every
 * document parses.  Skipped when the shared data is absent. */
static void test_spec_schema_files(void **state) {
    (void)state;
    static const char *files[] = {
        "event_count.yml",      "event_count_ecs.yml", "temporal.yml",
        "temporal_ordered.yml", "value_avg.yml",       "value_count.yml",
        "value_percentile.yml", "value_sum.yml"};
    const char *shared = getenv("CF_SHARED_DIR");
    char path[1024], err[512];
    if (!shared || !*shared) {
        if (cf_test_shared_missing("the spec's schema files") == 77) skip();
        fail();
    }
    snprintf(path, sizeof(path),
             "%s/data/sigma-specification/tests/schema/correlation/%s", shared,
             files[0]);
    if (access(path, R_OK) != 0) {
        if (cf_test_shared_missing(path) == 77) skip();
        fail();
    }
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t len;
        snprintf(path, sizeof(path),
                 "%s/data/sigma-specification/tests/schema/correlation/%s",
                 shared, files[i]);
        char *text = cf_read_file(path, &len, err, sizeof(err));
        assert_non_null(text);
        json_t *docs = cf_yaml_to_json(text, len, err, sizeof(err));
        assert_non_null(docs);
        size_t k, parsed = 0;
        json_t *doc;
        json_array_foreach(docs, k, doc) {
            if (!json_object_get(doc, "correlation")) continue;
            struct cf_sigma_correlation *c =
                cf_correlation_parse(doc, path, err, sizeof(err));
            if (!c) fail_msg("%s: %s", files[i], err);
            assert_true(c->timespan_ms > 0);
            cf_correlation_destroy(c);
            parsed++;
        }
        assert_true(parsed >= 1);
        json_decref(docs);
        free(text);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_spec_event_count),
        cmocka_unit_test(test_spec_value_count),
        cmocka_unit_test(test_spec_temporal),
        cmocka_unit_test(test_spec_temporal_ordered_chain),
        cmocka_unit_test(test_spec_value_sum_avg),
        cmocka_unit_test(test_spec_value_percentile),
        cmocka_unit_test(test_spec_aliases),
        cmocka_unit_test(test_sliding_window),
        cmocka_unit_test(test_upper_bound_decided_at_close),
        cmocka_unit_test(test_string_condition),
        cmocka_unit_test(test_out_of_order_deterministic),
        cmocka_unit_test(test_entities_merged),
        cmocka_unit_test(test_late_alert_counted),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_spec_schema_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
