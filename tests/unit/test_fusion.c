/*
 * test_fusion.c - kill-chain fusion (engine/fusion.c, incident.c,
 * entity_norm.c) with alerts built by hand: linking, normalisation, weak
 * and never-link entities, caps, eviction, lifecycle and versions,
 * duplicates, suppression, shuffled input within the lateness, and
 * severity/score ordering.  No rulebook: correlation is not involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ckpt.h"
#include "config.h"
#include "entity_norm.h"
#include "fusion.h"
#include "incident.h"
#include "prevalence.h"
#include "timeutil.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
/* 2023-08-16T04:54:31Z */
#define T0 1692161671000LL

/* ---- helpers ------------------------------------------------------- */

struct capture {
    char **lines;
    json_t **records;
    size_t n;
};

/* What an output is told beside the JSON must be what the JSON says. */
static void check_record_meta(const struct cf_out_record *r, json_t *rec) {
    static const char *const levels[] = {"informational", "low", "medium",
                                         "high", "critical"};
    assert_non_null(r->id);
    assert_string_equal(r->id, json_string_value(json_object_get(rec, "id")));
    assert_int_equal(r->version,
                     json_integer_value(json_object_get(rec, "version")));
    assert_string_equal(r->status,
                        json_string_value(json_object_get(rec, "status")));
    assert_in_range(r->severity, 0, 4);
    assert_string_equal(levels[r->severity],
                        json_string_value(json_object_get(rec, "severity")));
    assert_int_equal(r->score,
                     json_integer_value(json_object_get(rec, "score")));
    json_t *stages = json_object_get(rec, "stages");
    assert_int_equal(r->n_tactics, json_array_size(stages));
    for (size_t i = 0; i < r->n_tactics; i++)
        assert_string_equal(r->tactics[i],
                            json_string_value(json_object_get(
                                json_array_get(stages, i), "tactic")));
}

static void on_emit(const struct cf_out_record *r, void *opaque) {
    struct capture *c = opaque;
    const char *record = r->json;
    size_t len = r->len;
    if (strcmp(r->kind, "incident") != 0) return;
    assert_int_equal(strlen(record), len);
    c->lines = realloc(c->lines, (c->n + 1) * sizeof *c->lines);
    c->records = realloc(c->records, (c->n + 1) * sizeof *c->records);
    assert_non_null(c->lines);
    assert_non_null(c->records);
    c->lines[c->n] = strdup(record);
    c->records[c->n] = json_loadb(record, len, 0, NULL);
    assert_non_null(c->records[c->n]);
    check_record_meta(r, c->records[c->n]);
    c->n++;
}

static void capture_free(struct capture *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->lines[i]);
        json_decref(c->records[i]);
    }
    free(c->lines);
    free(c->records);
    memset(c, 0, sizeof *c);
}

static char *tactic_execution[] = {"execution"};
static char *tactic_discovery[] = {"discovery"};
static char *tactic_privesc[] = {"privilege-escalation"};
static char *tactic_stealth[] = {"stealth"};
static char *tactic_credential[] = {"credential-access"};
static char *tactic_lateral[] = {"lateral-movement"};

struct spec {
    const char *id_seed;
    int64_t t;
    const char *rule;
    enum cf_level level;
    char **tactics;
    const char *host, *user, *src_ip, *logon_id;
};

static void make_alert(struct cf_alert *a, const struct spec *s) {
    memset(a, 0, sizeof *a);
    cf_digest_hex128(s->id_seed, strlen(s->id_seed), a->id);
    a->time_ms = s->t;
    a->rule_id = s->rule;
    a->rule_title = s->rule;
    a->level = s->level;
    a->tactics = s->tactics;
    a->n_tactics = s->tactics ? 1 : 0;
    if (s->host) a->entities.value[CF_ENTITY_HOST] = strdup(s->host);
    if (s->user) a->entities.value[CF_ENTITY_USER] = strdup(s->user);
    if (s->src_ip) a->entities.value[CF_ENTITY_SRC_IP] = strdup(s->src_ip);
    if (s->logon_id)
        a->entities.value[CF_ENTITY_LOGON_ID] = strdup(s->logon_id);
    a->pos.source = "test";
    a->pos.partition = -1;
    a->pos.offset = 1;
}

static void push(struct cf_fusion *fu, const struct spec *s) {
    struct cf_alert a;
    make_alert(&a, s);
    cf_fusion_observe(fu, s->t);
    cf_fusion_push(fu, &a, NULL);
    cf_alert_clear(&a);
}

/* A fusion instance with `yaml_fusion` as its config (JSON text of the
 * whole config root, or NULL for defaults). */
static struct cf_fusion *new_fusion(const char *root_json, struct capture *c,
                                    struct cf_config **cfg_out) {
    char err[256] = "";
    json_t *root = root_json ? json_loads(root_json, 0, NULL) : NULL;
    assert_true(!root_json || root);
    struct cf_config *cfg = cf_config_from_json(root, "test", err, sizeof err);
    json_decref(root);
    if (!cfg) fail_msg("config: %s", err);
    struct cf_fusion *fu =
        cf_fusion_new(cfg, NULL, on_emit, c, err, sizeof err);
    if (!fu) fail_msg("cf_fusion_new: %s", err);
    *cfg_out = cfg;
    return fu;
}

static json_int_t stat(const struct cf_fusion *fu, const char *name) {
    json_t *s = cf_fusion_stats(fu);
    json_int_t v = json_integer_value(json_object_get(s, name));
    json_decref(s);
    return v;
}

/* The last record whose alert_ids contain the alert made from seed. */
static json_t *incident_of(const struct capture *c, const char *seed) {
    char id[33];
    json_t *found = NULL;
    cf_digest_hex128(seed, strlen(seed), id);
    for (size_t i = 0; i < c->n; i++) {
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(c->records[i], "alert_ids"), j,
                           v) if (strcmp(json_string_value(v), id) == 0) found =
            c->records[i];
    }
    return found;
}

static const char *sval(json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static size_t distinct_ids(const struct capture *c) {
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || strcmp(sval(c->records[i], "id"),
                                  sval(c->records[j], "id")) == 0;
        if (!seen) n++;
    }
    return n;
}

/* ---- normalisation ------------------------------------------------- */

static void test_normalize(void **state) {
    char a[CF_ENTITY_NORM_MAX], b[CF_ENTITY_NORM_MAX];
    (void)state;
    /* an account keeps its domain; on a host of pandalab.com, PANDALAB
     * is that domain (more in test_identity.c) */
    cf_entity_normalize(CF_ENTITY_USER, "PANDALAB\\Pedro.Gustavo", a, sizeof a);
    assert_string_equal(a, "pandalab\\pedro.gustavo");
    cf_entity_normalize_in(NULL, CF_ENTITY_USER, "PANDALAB\\Pedro.Gustavo",
                           "MKT01.pandalab.com", a, sizeof a);
    cf_entity_normalize(CF_ENTITY_USER, "pedro.gustavo@pandalab.com", b,
                        sizeof b);
    assert_string_equal(a, "pedro.gustavo@pandalab.com");
    assert_string_equal(a, b);
    cf_entity_normalize(CF_ENTITY_HOST, "MKT01.pandalab.com", a, sizeof a);
    cf_entity_normalize(CF_ENTITY_HOST, "mkt01", b, sizeof b);
    assert_string_equal(a, "mkt01");
    assert_string_equal(a, b);
    /* IP addresses as host names keep their dots */
    cf_entity_normalize(CF_ENTITY_HOST, "10.0.0.5", a, sizeof a);
    assert_string_equal(a, "10.0.0.5");
    cf_entity_normalize(CF_ENTITY_SRC_IP, "::ffff:10.0.0.5", a, sizeof a);
    assert_string_equal(a, "10.0.0.5");
    cf_entity_normalize(CF_ENTITY_PROCESS_GUID,
                        "{9A4E1F2B-0000-0000-0000-000000000001}", a, sizeof a);
    assert_string_equal(a, "9a4e1f2b-0000-0000-0000-000000000001");

    /* never link */
    assert_int_equal(cf_entity_normalize(CF_ENTITY_USER, "NT AUTHORITY\\SYSTEM",
                                         a, sizeof a),
                     0);
    assert_string_equal(a, "");
    assert_int_equal(cf_entity_normalize(CF_ENTITY_USER, "SYSTEM", a, sizeof a),
                     0);
    assert_int_equal(
        cf_entity_normalize(CF_ENTITY_USER, "LOCAL SERVICE", a, sizeof a), 0);
    assert_int_equal(cf_entity_normalize(CF_ENTITY_USER,
                                         "NT AUTHORITY\\NETWORK SERVICE", a,
                                         sizeof a),
                     0);
    assert_int_equal(cf_entity_normalize(CF_ENTITY_USER, "-", a, sizeof a), 0);
    assert_int_equal(cf_entity_normalize(CF_ENTITY_USER, "", a, sizeof a), 0);
    assert_int_equal(
        cf_entity_normalize(CF_ENTITY_SRC_IP, "127.0.0.1", a, sizeof a), 0);
    assert_int_equal(
        cf_entity_normalize(CF_ENTITY_DST_IP, "127.45.3.2", a, sizeof a), 0);
    assert_int_equal(cf_entity_normalize(CF_ENTITY_DST_IP, "::1", a, sizeof a),
                     0);
    assert_int_equal(
        cf_entity_normalize(CF_ENTITY_HOST, "localhost", a, sizeof a), 0);
    assert_int_equal(
        cf_entity_normalize(CF_ENTITY_LOGON_ID, "0x3E7", a, sizeof a), 0);
    /* but a real address in 128/8 is not loopback */
    assert_int_not_equal(
        cf_entity_normalize(CF_ENTITY_SRC_IP, "128.0.0.1", a, sizeof a), 0);
    assert_false(cf_entity_kind_links(CF_ENTITY_PROCESS));
    assert_true(cf_entity_kind_links(CF_ENTITY_HOST));
}

/* ---- linking ------------------------------------------------------- */

static void test_linking(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    push(fu,
         &(struct spec){"A", T0, "r-exec", CF_LEVEL_MEDIUM, tactic_execution,
                        "MKT01.pandalab.com", "PANDALAB\\pedro", NULL, NULL});
    push(fu, &(struct spec){"B", T0 + 10 * SEC, "r-disc", CF_LEVEL_LOW,
                            tactic_discovery, "MKT01", "NT AUTHORITY\\SYSTEM",
                            NULL, NULL});
    push(fu, &(struct spec){"C", T0 + 20 * SEC, "r-cred", CF_LEVEL_MEDIUM,
                            tactic_credential, "FS02.pandalab.com",
                            "pedro@pandalab.com", NULL, NULL});
    push(fu, &(struct spec){"D", T0 + 30 * SEC, "r-exec", CF_LEVEL_MEDIUM,
                            tactic_execution, "OTHER", "alice", NULL, NULL});
    cf_fusion_finish(fu);

    json_t *inc = incident_of(&c, "A");
    assert_non_null(inc);
    assert_ptr_equal(incident_of(&c, "B"), inc);
    assert_ptr_equal(incident_of(&c, "C"), inc);
    assert_null(incident_of(&c, "D")); /* one stage, medium: not raised */
    assert_int_equal(json_integer_value(json_object_get(inc, "alert_count")),
                     3);
    assert_string_equal(sval(inc, "status"), "closed");

    /* which entity linked each alert */
    json_t *links = json_object_get(inc, "links");
    assert_int_equal(json_array_size(links), 3);
    assert_true(
        json_is_null(json_object_get(json_array_get(links, 0), "entity_kind")));
    assert_string_equal(sval(json_array_get(links, 1), "entity_kind"), "host");
    assert_string_equal(sval(json_array_get(links, 1), "entity_value"),
                        "mkt01");
    assert_string_equal(sval(json_array_get(links, 2), "entity_kind"), "user");
    assert_string_equal(sval(json_array_get(links, 2), "entity_value"),
                        "pedro@pandalab.com");

    /* stages in order of first appearance, with progression */
    json_t *stages = json_object_get(inc, "stages");
    assert_int_equal(json_array_size(stages), 3);
    assert_string_equal(sval(json_array_get(stages, 0), "tactic"), "execution");
    assert_string_equal(sval(json_array_get(stages, 1), "tactic"), "discovery");
    assert_string_equal(sval(json_array_get(stages, 2), "tactic"),
                        "credential-access");
    assert_string_equal(sval(json_array_get(stages, 0), "first_seen"),
                        "2023-08-16T04:54:31.000Z");
    json_t *prog = json_object_get(inc, "progression");
    assert_int_equal(
        json_integer_value(json_object_get(prog, "distinct_stages")), 3);
    assert_string_equal(sval(prog, "furthest_stage"), "discovery");

    /* FQDN and short name are one host; SYSTEM is not an account */
    json_t *hosts = json_object_get(json_object_get(inc, "entities"), "hosts");
    assert_int_equal(json_array_size(hosts), 2);
    assert_string_equal(json_string_value(json_array_get(hosts, 0)),
                        "MKT01.pandalab.com");
    json_t *users = json_object_get(json_object_get(inc, "entities"), "users");
    assert_int_equal(json_array_size(users), 1);
    assert_non_null(strstr(sval(inc, "summary"), "MKT01.pandalab.com"));
    assert_non_null(strstr(sval(inc, "summary"), "execution"));
    assert_int_equal(stat(fu, "incidents_below_threshold"), 1);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

/* Two incidents that turn out to share a rare entity across hosts become
 * one once the link is confirmed; an alert tied to an incident only by
 * its host (one weak link) does not bring that incident along. */
static void test_merge(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    push(fu, &(struct spec){"A", T0, "r1", CF_LEVEL_HIGH, tactic_execution,
                            "H1", "u1", NULL, NULL});
    push(fu, &(struct spec){"B", T0 + MIN, "r2", CF_LEVEL_HIGH,
                            tactic_discovery, "H2", "u2", NULL, NULL});
    push(fu, &(struct spec){"C", T0 + 2 * MIN, "r3", CF_LEVEL_HIGH,
                            tactic_lateral, "H2", "u1", NULL, NULL});
    cf_fusion_finish(fu);
    json_t *inc = incident_of(&c, "C");
    assert_non_null(inc);
    assert_ptr_equal(inc, incident_of(&c, "A"));
    assert_ptr_not_equal(inc, incident_of(&c, "B"));
    assert_int_equal(json_integer_value(json_object_get(inc, "alert_count")),
                     2);
    assert_int_equal(json_array_size(json_object_get(inc, "stages")), 2);
    assert_int_equal(stat(fu, "incidents_merged"), 1);
    assert_int_equal(stat(fu, "cross_host_links_confirmed"), 1);
    /* the absorbed incident was announced, so it closes pointing here */
    bool merged_seen = false;
    for (size_t i = 0; i < c.n; i++)
        if (json_object_get(c.records[i], "merged_into")) {
            merged_seen = true;
            assert_string_equal(sval(c.records[i], "merged_into"),
                                sval(inc, "id"));
        }
    assert_true(merged_seen);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

static void test_never_link(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu = new_fusion(
        "{\"fusion\": {\"never_link\": [\"COLLECTOR.corp.local\"]}}", &c, &cfg);
    push(fu, &(struct spec){"A", T0, "r1", CF_LEVEL_HIGH, tactic_execution,
                            "collector", "NT AUTHORITY\\SYSTEM", "127.0.0.1",
                            "0x3e7"});
    push(fu, &(struct spec){"B", T0 + SEC, "r2", CF_LEVEL_HIGH,
                            tactic_credential, "COLLECTOR.corp.local", "SYSTEM",
                            "127.0.0.1", "0x3e7"});
    push(fu, &(struct spec){"C", T0 + 2 * SEC, "r3", CF_LEVEL_HIGH,
                            tactic_discovery, "localhost", "LOCAL SERVICE",
                            "::1", NULL});
    cf_fusion_finish(fu);
    assert_int_equal(distinct_ids(&c), 3);
    assert_ptr_not_equal(incident_of(&c, "A"), incident_of(&c, "B"));
    assert_true(stat(fu, "never_link_values") >= 8);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

/* bob shows up in 3 separate incidents (each closes after a minute), so
 * later alerts are no longer linked through bob. */
static void run_weak(int threshold, struct capture *c, json_int_t *skips) {
    struct cf_config *cfg;
    char conf[256];
    snprintf(conf, sizeof conf,
             "{\"fusion\": {\"close_after\": \"1m\", \"weak_threshold\": %d}}",
             threshold);
    struct cf_fusion *fu = new_fusion(conf, c, &cfg);
    push(fu, &(struct spec){"A", T0, "r1", CF_LEVEL_HIGH, tactic_execution,
                            "H0", "bob", NULL, NULL});
    push(fu, &(struct spec){"B", T0 + 10 * MIN, "r1", CF_LEVEL_HIGH,
                            tactic_execution, "H0b", "bob", NULL, NULL});
    push(fu, &(struct spec){"C", T0 + 20 * MIN, "r1", CF_LEVEL_HIGH,
                            tactic_execution, "H0c", "bob", NULL, NULL});
    push(fu, &(struct spec){"D", T0 + 30 * MIN, "r2", CF_LEVEL_HIGH,
                            tactic_execution, "H1", "bob", NULL, NULL});
    push(fu, &(struct spec){"E", T0 + 30 * MIN + SEC, "r3", CF_LEVEL_HIGH,
                            tactic_discovery, "H2", "bob", NULL, NULL});
    cf_fusion_finish(fu);
    *skips = stat(fu, "weak_entity_skips");
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
}

static void test_weak_entities(void **state) {
    struct capture weak = {0}, strong = {0};
    json_int_t skips;
    (void)state;
    run_weak(2, &weak, &skips);
    assert_true(skips >= 1);
    assert_ptr_not_equal(incident_of(&weak, "D"), incident_of(&weak, "E"));
    run_weak(10, &strong, &skips);
    assert_int_equal(skips, 0);
    assert_ptr_equal(incident_of(&strong, "D"), incident_of(&strong, "E"));
    capture_free(&weak);
    capture_free(&strong);
}

static void test_size_cap(void **state) {
    static const char *rule_names[] = {"r1", "r2", "r3", "r4", "r5"};
    struct capture c = {0};
    struct cf_config *cfg;
    char seed[16];
    (void)state;
    struct cf_fusion *fu =
        new_fusion("{\"fusion\": {\"max_alerts\": 3}}", &c, &cfg);
    for (int i = 0; i < 5; i++) {
        snprintf(seed, sizeof seed, "S%d", i);
        push(fu,
             &(struct spec){seed, T0 + i * SEC, rule_names[i], CF_LEVEL_HIGH,
                            i % 2 ? tactic_execution : tactic_discovery, "H1",
                            NULL, NULL, NULL});
    }
    cf_fusion_finish(fu);
    json_t *inc = incident_of(&c, "S0");
    assert_non_null(inc);
    assert_int_equal(json_integer_value(json_object_get(inc, "alert_count")),
                     5);
    assert_int_equal(json_array_size(json_object_get(inc, "alert_ids")), 3);
    assert_true(json_is_true(json_object_get(inc, "truncated")));
    assert_non_null(strstr(sval(inc, "summary"), "size cap"));
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

static void test_eviction(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    char seed[16], host[16];
    (void)state;
    struct cf_fusion *fu =
        new_fusion("{\"fusion\": {\"max_open_incidents\": 2}}", &c, &cfg);
    for (int i = 0; i < 5; i++) {
        snprintf(seed, sizeof seed, "E%d", i);
        snprintf(host, sizeof host, "H%d", i);
        push(fu, &(struct spec){seed, T0 + i * SEC, "r1", CF_LEVEL_HIGH,
                                tactic_execution, host, NULL, NULL, NULL});
        assert_true(stat(fu, "incidents_open") <= 2);
    }
    cf_fusion_finish(fu);
    assert_int_equal(stat(fu, "incidents_evicted"), 3);
    assert_int_equal(distinct_ids(&c), 5); /* evicted ones still reported */
    /* the first closed is the oldest */
    json_t *first_closed = NULL;
    for (size_t i = 0; i < c.n && !first_closed; i++)
        if (strcmp(sval(c.records[i], "status"), "closed") == 0)
            first_closed = c.records[i];
    assert_ptr_equal(first_closed, incident_of(&c, "E0"));
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

static void test_lifecycle(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu =
        new_fusion("{\"fusion\":{\"close_after\":\"1h\"}}", &c, &cfg);
    push(fu, &(struct spec){"L1", T0, "r1", CF_LEVEL_MEDIUM, tactic_execution,
                            "H1", "u1", NULL, NULL});
    push(fu, &(struct spec){"L2", T0 + 2 * MIN, "r2", CF_LEVEL_MEDIUM,
                            tactic_discovery, "H1", "u1", NULL, NULL});
    /* nothing emitted while the watermark has not passed the alerts */
    assert_int_equal(c.n, 0);
    cf_fusion_observe(fu, T0 + 20 * MIN);
    assert_int_equal(c.n, 1);
    assert_string_equal(sval(c.records[0], "status"), "new");
    assert_int_equal(
        json_integer_value(json_object_get(c.records[0], "version")), 1);
    push(fu, &(struct spec){"L3", T0 + 20 * MIN, "r3", CF_LEVEL_HIGH,
                            tactic_credential, "H1", NULL, NULL, NULL});
    cf_fusion_observe(fu, T0 + 40 * MIN);
    assert_int_equal(c.n, 2);
    assert_string_equal(sval(c.records[1], "status"), "updated");
    assert_int_equal(
        json_integer_value(json_object_get(c.records[1], "version")), 2);
    assert_int_equal(
        json_integer_value(json_object_get(c.records[1], "alert_count")), 3);
    /* an hour of event time without alerts closes it (+15 min lateness) */
    cf_fusion_observe(fu, T0 + 20 * MIN + HOUR + 14 * MIN);
    assert_int_equal(c.n, 2);
    cf_fusion_observe(fu, T0 + 20 * MIN + HOUR + 16 * MIN);
    assert_int_equal(c.n, 3);
    assert_string_equal(sval(c.records[2], "status"), "closed");
    assert_int_equal(
        json_integer_value(json_object_get(c.records[2], "version")), 3);
    /* one id throughout, digest of the first alert's id */
    char first[33], expect[33];
    cf_digest_hex128("L1", 2, first);
    cf_digest_hex128(first, 32, expect);
    for (size_t i = 0; i < c.n; i++)
        assert_string_equal(sval(c.records[i], "id"), expect);
    cf_fusion_finish(fu);
    assert_int_equal(c.n, 3);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

static void test_duplicates(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    push(fu,
         &(struct spec){"D1", T0, "r1", CF_LEVEL_HIGH, tactic_execution,
                        "MKT01.pandalab.com", "PANDALAB\\pedro", NULL, NULL});
    /* same rule, same entities once normalised */
    push(fu, &(struct spec){"D2", T0 + 5 * MIN, "r1", CF_LEVEL_HIGH,
                            tactic_execution, "MKT01", "PANDALAB\\PEDRO", NULL,
                            NULL});
    push(fu, &(struct spec){"D3", T0 + 50 * MIN, "r1", CF_LEVEL_HIGH,
                            tactic_execution, "mkt01", "pedro@pandalab.com",
                            NULL, NULL});
    /* other rule: not a duplicate */
    push(fu, &(struct spec){"D4", T0 + 51 * MIN, "r2", CF_LEVEL_HIGH,
                            tactic_execution, "mkt01", "pedro", NULL, NULL});
    cf_fusion_finish(fu);
    json_t *inc = incident_of(&c, "D1");
    assert_non_null(inc);
    assert_int_equal(json_integer_value(json_object_get(inc, "alert_count")),
                     2);
    assert_int_equal(json_integer_value(json_object_get(inc, "duplicates")), 2);
    json_t *l0 = json_array_get(json_object_get(inc, "links"), 0);
    assert_int_equal(json_integer_value(json_object_get(l0, "duplicates")), 2);
    assert_null(incident_of(&c, "D2"));
    assert_int_equal(stat(fu, "duplicates"), 2);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

static void test_suppression(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu =
        new_fusion("{\"suppressions\": ["
                   " {\"rule\": \"r-noisy\", \"entity\": {\"user\": \"pedro\"},"
                   "  \"reason\": \"admin script\"},"
                   " {\"rule\": \"r-old\", \"reason\": \"expired\","
                   "  \"expires\": \"2020-01-01T00:00:00Z\"}]}",
                   &c, &cfg);
    push(fu,
         &(struct spec){"S1", T0, "r-noisy", CF_LEVEL_HIGH, tactic_execution,
                        "H1", "PANDALAB\\Pedro", NULL, NULL});
    push(fu, &(struct spec){"S2", T0 + SEC, "r-noisy", CF_LEVEL_HIGH,
                            tactic_execution, "H2", "alice", NULL, NULL});
    push(fu, &(struct spec){"S3", T0 + 2 * SEC, "r-old", CF_LEVEL_HIGH,
                            tactic_execution, "H3", "carol", NULL, NULL});
    cf_fusion_finish(fu);
    assert_null(incident_of(&c, "S1"));
    assert_non_null(incident_of(&c, "S2"));
    assert_non_null(incident_of(&c, "S3"));
    struct cf_fusion_counts counts;
    cf_fusion_counts(fu, &counts);
    assert_int_equal(counts.suppressed, 1);
    json_t *s = cf_fusion_stats(fu);
    json_t *by = json_object_get(s, "suppressions");
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(by, 0), "hits")), 1);
    assert_string_equal(sval(json_array_get(by, 0), "reason"), "admin script");
    json_decref(s);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

/* A field suppression reads the event as detection does: nested
 * Windows XML-as-JSON folded to flat names, numbers as written, and an
 * integer too large for jansson in the event changes nothing. */
static void push_with_event(struct cf_fusion *fu, const struct spec *s,
                            const char *event) {
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_event ev;
    struct cf_alert a;
    const char *why = NULL;
    assert_non_null(dec);
    cf_event_init(&ev);
    assert_int_equal(
        cf_event_decode(dec, &ev, event, strlen(event), NULL, &why), CF_OK);
    make_alert(&a, s);
    cf_fusion_observe(fu, s->t);
    cf_fusion_push(fu, &a, &ev);
    cf_alert_clear(&a);
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
}

static void test_field_suppression(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu = new_fusion(
        "{\"suppressions\": ["
        " {\"field\": {\"CommandLine\": \"WHOAMI /all\", \"EventID\": 1,"
        "            \"Score\": 0.1},"
        "  \"reason\": \"inventory script\"}]}",
        &c, &cfg);
    /* nested shape: CommandLine lives under Event.EventData */
    push_with_event(fu,
                    &(struct spec){"F1", T0, "r1", CF_LEVEL_HIGH,
                                   tactic_execution, "H1", NULL, NULL, NULL},
                    "{\"Event\":{\"System\":{\"EventID\":1},"
                    "\"EventData\":{\"CommandLine\":\"whoami /all\","
                    "\"Score\":0.1}}}");
    /* flat, with an integer jansson cannot hold */
    push_with_event(
        fu,
        &(struct spec){"F2", T0 + SEC, "r1", CF_LEVEL_HIGH, tactic_execution,
                       "H2", NULL, NULL, NULL},
        "{\"EventID\":1,\"CommandLine\":\"whoami /all\","
        "\"Score\":\"0.1\",\"Big\":123456789012345678901234567890}");
    /* another command: kept */
    push_with_event(
        fu,
        &(struct spec){"F3", T0 + 2 * SEC, "r1", CF_LEVEL_HIGH,
                       tactic_execution, "H3", NULL, NULL, NULL},
        "{\"EventID\":1,\"CommandLine\":\"whoami /priv\",\"Score\":0.1}");
    cf_fusion_finish(fu);
    struct cf_fusion_counts counts;
    cf_fusion_counts(fu, &counts);
    assert_int_equal(counts.suppressed, 2);
    assert_null(incident_of(&c, "F1"));
    assert_null(incident_of(&c, "F2"));
    assert_non_null(incident_of(&c, "F3"));
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

static void test_bad_config(void **state) {
    char err[256] = "";
    (void)state;
    const char *bad[] = {
        "{\"fusion\": {\"lateness\": \"soon\"}}",
        "{\"fusion\": {\"latenes\": \"15m\"}}",
        "{\"fusion\": {\"max_alerts\": 0}}",
        "{\"suppressions\": [{\"reason\": \"all\"}]}",
        "{\"suppressions\": [{\"rule\": \"x\", \"expires\": \"tomorrow\"}]}",
        "{\"suppressions\": [{\"field\": {\"EventID\": [1, 2]}}]}",
        "{\"suppressions\": [{\"field\": {\"EventID\": null}}]}",
    };
    /* fusion's own keys are refused where the config is read; the
     * suppressions it parses itself, when it is built */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *root = json_loads(bad[i], 0, NULL);
        err[0] = '\0';
        struct cf_config *cfg =
            cf_config_from_json(root, "test", err, sizeof err);
        json_decref(root);
        if (cfg) {
            assert_null(strstr(bad[i], "\"fusion\""));
            struct cf_fusion *fu =
                cf_fusion_new(cfg, NULL, on_emit, NULL, err, sizeof err);
            assert_null(fu);
        }
        assert_true(strlen(err) > 10);
        cf_config_destroy(cfg);
    }
    cf_fusion_destroy(NULL);
}

/* ---- event time bounded by the wall clock -------------------------- */

/* A wall clock that says what the test wants: results do not depend on
 * today's date. */
static int64_t fixed_clock(void *opaque) {
    return *(const int64_t *)opaque;
}

#define Y2100 4102444800000LL /* 2100-01-01T00:00:00Z */

static void test_future_event_does_not_hold_back_incidents(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    int64_t now = T0 + HOUR;
    cf_fusion_set_wall_clock(fu, fixed_clock, &now);
    /* One event stamped in 2100 comes first, with a high alert of its
     * own; then two stages of real activity on WS1 and a quiet event 20
     * minutes later, past the 15-minute lateness. */
    push(fu, &(struct spec){"F1", Y2100, "r-future", CF_LEVEL_HIGH,
                            tactic_execution, "FUTURE", NULL, NULL, NULL});
    push(fu, &(struct spec){"W1", T0, "r1", CF_LEVEL_MEDIUM, tactic_execution,
                            "WS1", NULL, NULL, NULL});
    push(fu, &(struct spec){"W2", T0 + MIN, "r2", CF_LEVEL_MEDIUM,
                            tactic_discovery, "WS1", NULL, NULL, NULL});
    cf_fusion_observe(fu, T0 + 20 * MIN);
    /* WS1's incident is out before the end of input ... */
    json_t *inc = incident_of(&c, "W1");
    assert_non_null(inc);
    assert_string_equal(sval(inc, "status"), "new");
    assert_int_equal(json_integer_value(json_object_get(inc, "alert_count")),
                     2);
    /* ... and so is the outlier's, kept on its own time, linked to
     * nothing real. */
    json_t *fut = incident_of(&c, "F1");
    assert_non_null(fut);
    assert_string_equal(sval(fut, "first_seen"), "2100-01-01T00:00:00.000Z");
    assert_int_equal(json_integer_value(json_object_get(fut, "alert_count")),
                     1);
    assert_int_equal(stat(fu, "future_events"), 1);
    assert_int_equal(stat(fu, "future_alerts"), 1);
    /* no correlation counts its rule: nothing was dropped */
    struct cf_drops drops = {{0}};
    cf_fusion_drops(fu, &drops);
    assert_int_equal(drops.n[CF_DROP_CORRELATION_FUTURE_TIME], 0);
    assert_int_equal(stat(fu, "late_alerts"), 0);
    json_t *s = cf_fusion_stats(fu);
    assert_string_equal(sval(s, "watermark"), "2023-08-16T04:59:31.000Z");
    json_decref(s);

    /* Within the skew (1 h by default) time still moves the watermark;
     * past it, it does not. */
    cf_fusion_observe(fu, now + 59 * MIN);
    assert_int_equal(stat(fu, "future_events"), 1);
    cf_fusion_observe(fu, now + HOUR + 1);
    assert_int_equal(stat(fu, "future_events"), 2);
    s = cf_fusion_stats(fu);
    assert_string_equal(sval(s, "watermark"), "2023-08-16T06:38:31.000Z");
    json_decref(s);
    /* The wall clock moving on moves the bound with it. */
    now += 2 * HOUR;
    cf_fusion_observe(fu, T0 + 3 * HOUR + 30 * MIN);
    assert_int_equal(stat(fu, "future_events"), 2);
    cf_fusion_finish(fu);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

static void test_future_skew_setting(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu =
        new_fusion("{\"fusion\":{\"max_future_skew\":\"10m\"}}", &c, &cfg);
    int64_t now = T0;
    cf_fusion_set_wall_clock(fu, fixed_clock, &now);
    cf_fusion_observe(fu, T0 + 10 * MIN);
    assert_int_equal(stat(fu, "future_events"), 0);
    cf_fusion_observe(fu, T0 + 10 * MIN + 1);
    assert_int_equal(stat(fu, "future_events"), 1);
    /* the outlier's alert waits for nothing and holds nothing back */
    push(fu, &(struct spec){"X1", T0 + HOUR, "r1", CF_LEVEL_HIGH,
                            tactic_execution, "H1", NULL, NULL, NULL});
    assert_int_equal(stat(fu, "alerts_pending"), 0);
    assert_int_equal(stat(fu, "future_alerts"), 1);
    cf_fusion_finish(fu);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);

    /* A bad value is refused when the configuration is loaded. */
    char err[256] = "";
    json_t *root =
        json_loads("{\"fusion\":{\"max_future_skew\":\"soon\"}}", 0, NULL);
    assert_null(cf_config_from_json(root, "test", err, sizeof err));
    assert_non_null(strstr(err, "fusion.max_future_skew"));
    json_decref(root);
}

/* ---- order independence -------------------------------------------- */

struct gen {
    struct spec s;
    char seed[16];
    int64_t arrival;
};

static uint32_t rng_state;
static uint32_t rnd(void) {
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) & 0xffffff;
}

static int by_arrival(const void *a, const void *b) {
    const struct gen *x = a, *y = b;
    if (x->arrival != y->arrival) return x->arrival < y->arrival ? -1 : 1;
    return strcmp(x->seed, y->seed);
}

static int by_time_line(const void *a, const void *b) {
    const struct gen *x = a, *y = b;
    if (x->s.t != y->s.t) return x->s.t < y->s.t ? -1 : 1;
    return strcmp(x->seed, y->seed);
}

static void run_stream(struct gen *g, size_t n, struct capture *c,
                       json_int_t *late) {
    struct cf_config *cfg;
    struct cf_fusion *fu = new_fusion(NULL, c, &cfg);
    for (size_t i = 0; i < n; i++) {
        g[i].s.id_seed = g[i].seed; /* qsort moved the structs */
        push(fu, &g[i].s);
    }
    cf_fusion_finish(fu);
    *late = stat(fu, "late_alerts");
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
}

static void test_shuffle_within_lateness(void **state) {
    enum { N = 400 };
    static char *const *tactics[] = {tactic_execution,  tactic_discovery,
                                     tactic_privesc,    tactic_stealth,
                                     tactic_credential, tactic_lateral};
    static const char *hosts[] = {"WS1.corp.local", "ws2", "DC1", "ws3",
                                  "WS4.corp.local", "srv5"};
    static const char *users[] = {
        "CORP\\ann", "bob@corp.local", "SYSTEM", "carl", "-", NULL};
    static const char *rules[] = {"r1", "r2", "r3", "r4", "r5", "r6", "r7"};
    struct gen *g = calloc(N, sizeof *g);
    struct capture ordered = {0}, shuffled = {0};
    json_int_t late;
    (void)state;
    assert_non_null(g);
    rng_state = 42;
    for (size_t i = 0; i < N; i++) {
        snprintf(g[i].seed, sizeof g[i].seed, "G%zu", i);
        g[i].s.id_seed = g[i].seed;
        /* clustered in bursts over ~4 hours, with gaps that close
         * incidents, so every code path (new, updated, merged, closed)
         * runs */
        g[i].s.t =
            T0 + (int64_t)(i / 40) * 25 * MIN + (int64_t)(rnd() % (8 * MIN));
        g[i].s.rule = rules[rnd() % 7];
        g[i].s.level = (enum cf_level)(rnd() % 5);
        g[i].s.tactics = (char **)tactics[rnd() % 6];
        g[i].s.host = hosts[rnd() % 6];
        g[i].s.user = users[rnd() % 6];
    }
    /* reference: event-time order */
    qsort(g, N, sizeof *g, by_time_line);
    run_stream(g, N, &ordered, &late);
    assert_int_equal(late, 0);
    assert_true(ordered.n > 5);
    size_t statuses[3] = {0, 0, 0};
    for (size_t i = 0; i < ordered.n; i++) {
        const char *st = sval(ordered.records[i], "status");
        statuses[strcmp(st, "new") == 0       ? 0
                 : strcmp(st, "updated") == 0 ? 1
                                              : 2]++;
    }
    /* the stream exercises every status */
    assert_true(statuses[0] > 0 && statuses[1] > 0 && statuses[2] > 0);
    /* arrival = event time + up to 15 minutes: no alert ever arrives after
     * one more than 15 minutes younger, i.e. within the lateness bound */
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < N; i++)
            g[i].arrival = g[i].s.t + (int64_t)(rnd() % (15 * MIN - 1));
        qsort(g, N, sizeof *g, by_arrival);
        run_stream(g, N, &shuffled, &late);
        assert_int_equal(late, 0);
        assert_int_equal(shuffled.n, ordered.n);
        for (size_t i = 0; i < ordered.n; i++) {
            if (strcmp(shuffled.lines[i], ordered.lines[i]) != 0)
                fprintf(stderr, "record %zu differs:\n%s\n%s\n", i,
                        ordered.lines[i], shuffled.lines[i]);
            assert_string_equal(shuffled.lines[i], ordered.lines[i]);
        }
        capture_free(&shuffled);
    }
    /* beyond the bound the alert is late, counted, and still fused */
    struct cf_config *cfg;
    struct capture c = {0};
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    push(fu, &(struct spec){"X1", T0 + HOUR, "r1", CF_LEVEL_HIGH,
                            tactic_execution, "H1", NULL, NULL, NULL});
    push(fu, &(struct spec){"X2", T0, "r2", CF_LEVEL_HIGH, tactic_discovery,
                            "H1", NULL, NULL, NULL});
    cf_fusion_finish(fu);
    assert_int_equal(stat(fu, "late_alerts"), 1);
    assert_non_null(incident_of(&c, "X2"));
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
    capture_free(&ordered);
    free(g);
}

/* ---- severity and score -------------------------------------------- */

static struct cf_incident *build(const struct spec *specs, size_t n) {
    static const struct cf_incident_limits lim = {1000, 256, 256};
    struct cf_alert a;
    struct cf_norm_entities ne;
    make_alert(&a, &specs[0]);
    struct cf_incident *inc = cf_incident_new(1, &a);
    cf_alert_clear(&a);
    for (size_t i = 0; i < n; i++) {
        make_alert(&a, &specs[i]);
        memset(&ne, 0, sizeof ne);
        for (int k = 0; k < CF_ENTITY_COUNT; k++) {
            ne.raw[k] = a.entities.value[k];
            ne.len[k] = cf_entity_normalize(k, ne.raw[k], ne.value[k],
                                            sizeof ne.value[k]);
        }
        struct cf_incident_why why = {
            i ? CF_ENTITY_HOST : -1, i ? "h" : NULL, false, -1, -1, false};
        assert_int_equal(
            cf_incident_add(inc, &a, specs[i].t, &ne, 1, &why, false, &lim),
            CF_OK);
        cf_alert_clear(&a);
    }
    return inc;
}

static void test_severity_order(void **state) {
    (void)state;
    const struct spec one_low[] = {
        {"a", T0, "r1", CF_LEVEL_LOW, tactic_discovery, "H1", "u", NULL, NULL}};
    const struct spec two_medium[] = {{"a", T0, "r1", CF_LEVEL_MEDIUM,
                                       tactic_execution, "H1", "u", NULL, NULL},
                                      {"b", T0 + 1, "r2", CF_LEVEL_MEDIUM,
                                       tactic_discovery, "H1", "u", NULL,
                                       NULL}};
    const struct spec one_high[] = {{"a", T0, "r1", CF_LEVEL_HIGH,
                                     tactic_execution, "H1", "u", NULL, NULL}};
    const struct spec campaign[] = {{"a", T0, "r1", CF_LEVEL_MEDIUM,
                                     tactic_execution, "H1", "u", NULL, NULL},
                                    {"b", T0 + 1, "r2", CF_LEVEL_MEDIUM,
                                     tactic_privesc, "H1", "u", NULL, NULL},
                                    {"c", T0 + 2, "r3", CF_LEVEL_HIGH,
                                     tactic_stealth, "H1", "u", NULL, NULL},
                                    {"d", T0 + 3, "r4", CF_LEVEL_HIGH,
                                     tactic_credential, "H1", "v", NULL, NULL},
                                    {"e", T0 + 4, "r5", CF_LEVEL_HIGH,
                                     tactic_lateral, "H2", "v", NULL, NULL}};
    /* the same stages seen backwards along the chain score lower */
    const struct spec backwards[] = {
        {"a", T0, "r5", CF_LEVEL_HIGH, tactic_lateral, "H1", "u", NULL, NULL},
        {"b", T0 + 1, "r4", CF_LEVEL_HIGH, tactic_credential, "H1", "u", NULL,
         NULL},
        {"c", T0 + 2, "r3", CF_LEVEL_HIGH, tactic_stealth, "H1", "u", NULL,
         NULL},
        {"d", T0 + 3, "r2", CF_LEVEL_MEDIUM, tactic_privesc, "H1", "v", NULL,
         NULL},
        {"e", T0 + 4, "r1", CF_LEVEL_MEDIUM, tactic_execution, "H2", "v", NULL,
         NULL}};
    struct cf_incident *a = build(one_low, 1), *b = build(two_medium, 2),
                       *h = build(one_high, 1), *c = build(campaign, 5),
                       *r = build(backwards, 5);
    assert_true(cf_incident_score(a) < cf_incident_score(b));
    assert_true(cf_incident_score(b) < cf_incident_score(c));
    assert_true(cf_incident_score(h) < cf_incident_score(c));
    assert_true(cf_incident_score(r) < cf_incident_score(c));
    assert_true(cf_incident_severity(a) <= CF_LEVEL_LOW);
    assert_int_equal(cf_incident_severity(h), CF_LEVEL_HIGH); /* level floor */
    assert_int_equal(cf_incident_severity(c), CF_LEVEL_CRITICAL);
    assert_false(cf_incident_raised(a, 2));
    assert_true(cf_incident_raised(b, 2));
    assert_false(cf_incident_raised(b, 3));
    assert_true(cf_incident_raised(h, 5));
    json_t *rec = cf_incident_to_json(c, "new", NULL);
    assert_non_null(rec);
    json_t *stages = json_object_get(rec, "stages");
    assert_int_equal(json_array_size(stages), 5);
    assert_string_equal(sval(json_array_get(stages, 2), "tactic"), "stealth");
    assert_true(json_is_true(
        json_object_get(json_object_get(rec, "progression"), "in_order")));
    assert_string_equal(sval(rec, "severity"), "critical");
    json_decref(rec);
    cf_incident_destroy(a);
    cf_incident_destroy(b);
    cf_incident_destroy(h);
    cf_incident_destroy(c);
    cf_incident_destroy(r);
    cf_incident_destroy(NULL);
}

/* ---- prevalence, link strength, noise --------------------------------- */

/* Feeds one event to fusion's prevalence, as the pipeline does for every
 * event (fields as a Sysmon/Security event names them); `learn`: its
 * domains are learned first, as the pipeline does too. */
static void sight_learn(struct cf_fusion *fu, int64_t t, const char *fields,
                        bool learn) {
    char json[512], err[128], when[32];
    struct cf_entity_map *map = cf_entity_map_new(NULL, err, sizeof err);
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_event ev;
    const char *why = NULL;
    assert_non_null(map);
    assert_non_null(dec);
    cf_time_format(t, when);
    snprintf(json, sizeof json, "{\"UtcTime\":\"%s\",%s}", when, fields);
    cf_event_init(&ev);
    assert_int_equal(cf_event_decode(dec, &ev, json, strlen(json), NULL, &why),
                     CF_OK);
    cf_fusion_observe(fu, ev.time_ms);
    if (learn) cf_fusion_learn(fu, &ev);
    cf_fusion_sight(fu, map, &ev);
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
    cf_entity_map_destroy(map);
}

static void sight(struct cf_fusion *fu, int64_t t, const char *fields) {
    sight_learn(fu, t, fields, false);
}

/* Sighting remembers what the last texts of each kind normalised to;
 * an account's answer must not outlive the domains it was made under:
 * "ACME\bchen" is "acme\bchen" until an event teaches that ACME is
 * acme.local, and "bchen@acme.local", another value, from then on. */
static void test_sight_follows_domains(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    const char *bchen = "\"Hostname\":\"WS03\",\"User\":\"ACME\\\\bchen\"";
    (void)state;
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    sight(fu, T0, bchen);
    sight(fu, T0 + SEC, bchen);
    assert_int_equal(stat(fu, "prevalence_values"), 1);
    /* the machine's own account on its host: ACME is acme.local (and
     * "ws04$@acme.local" a value of its own) */
    sight_learn(fu, T0 + 2 * SEC,
                "\"Hostname\":\"WS04.acme.local\",\"SubjectUserName\":"
                "\"WS04$\",\"SubjectDomainName\":\"ACME\"",
                true);
    assert_int_equal(stat(fu, "domains_learned"), 1);
    assert_int_equal(stat(fu, "prevalence_values"), 2);
    sight(fu, T0 + 3 * SEC, bchen);
    assert_int_equal(stat(fu, "prevalence_values"), 3);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

/* A service account on every machine does not link alerts on two of
 * them; an account seen on two machines does, once it is still rare an
 * hour later, and the link says so with its prevalence. */
static void test_prevalence(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    char f[128];
    (void)state;
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    for (int h = 1; h <= 8; h++) {
        snprintf(f, sizeof f,
                 "\"Hostname\":\"H%d.corp.local\",\"User\":\"CORP\\\\svc\"", h);
        sight(fu, T0 - MIN + h, f);
    }
    sight(fu, T0 - MIN,
          "\"Hostname\":\"H7.corp.local\",\"User\":\"CORP\\\\bob\"");
    sight(fu, T0 - MIN,
          "\"Hostname\":\"H8.corp.local\",\"User\":\"CORP\\\\bob\"");
    push(fu, &(struct spec){"A", T0, "r1", CF_LEVEL_HIGH, tactic_execution,
                            "H1.corp.local", "CORP\\svc", NULL, NULL});
    push(fu,
         &(struct spec){"B", T0 + MIN, "r2", CF_LEVEL_HIGH, tactic_discovery,
                        "H2.corp.local", "CORP\\svc", NULL, NULL});
    push(fu, &(struct spec){"C", T0 + 2 * MIN, "r3", CF_LEVEL_HIGH,
                            tactic_execution, "H7.corp.local", "CORP\\bob",
                            NULL, NULL});
    push(fu,
         &(struct spec){"D", T0 + 3 * MIN, "r4", CF_LEVEL_HIGH, tactic_lateral,
                        "H8.corp.local", "CORP\\bob", NULL, NULL});
    cf_fusion_finish(fu);
    assert_ptr_not_equal(incident_of(&c, "A"), incident_of(&c, "B"));
    assert_true(stat(fu, "links_refused_prevalence") >= 1);
    json_t *inc = incident_of(&c, "D");
    assert_ptr_equal(inc, incident_of(&c, "C"));
    assert_int_equal(stat(fu, "cross_host_links_confirmed"), 1);
    bool named = false;
    json_t *l;
    size_t i;
    json_array_foreach(json_object_get(inc, "links"), i, l) {
        if (strcmp(sval(l, "entity_kind") ? sval(l, "entity_kind") : "",
                   "user") != 0)
            continue;
        assert_string_equal(sval(l, "entity_value"), "bob@corp.local");
        assert_string_equal(sval(l, "strength"), "strong");
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(l, "prevalence"), "hosts")),
                         2);
        named = true;
    }
    assert_true(named);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

/* A sighting through a hint (fusion's memo keeps one per entity text)
 * leaves the table as a plain one does: random sightings of more values
 * than the table holds, more hosts than a value keeps, times that go
 * back and jump past the horizon (aged sightings replaced), compared by
 * what the table answers at many times. */
static uint32_t xorshift(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (uint32_t)(*x >> 11);
}

/* Both tables, one sighting: plain and through hint h. */
struct pv_pair {
    struct cf_prevalence *plain, *hinted;
};

static void see_both(struct pv_pair *p, struct cf_prevalence_hint *h,
                     uint64_t key, uint32_t host, uint32_t org,
                     uint32_t account, int64_t t) {
    cf_prevalence_see(p->plain, key, host, org, account, t);
    cf_prevalence_see_hinted(p->hinted, h, key, host, org, account, t);
}

static void assert_same_tables(struct pv_pair *p, uint64_t keys, int64_t from,
                               int64_t to) {
    for (int64_t at = from; at <= to; at += 250) {
        for (uint64_t key = 1; key <= keys; key++) {
            struct cf_prevalence_count a = cf_prevalence_get(p->plain, key, at),
                                       b = cf_prevalence_get(p->hinted, key,
                                                             at);
            assert_int_equal(a.hosts, b.hosts);
            assert_int_equal(a.accounts, b.accounts);
            assert_int_equal(a.orgs, b.orgs);
            assert_int_equal(a.saturated, b.saturated);
        }
        assert_int_equal(cf_prevalence_estate(p->plain, at),
                         cf_prevalence_estate(p->hinted, at));
    }
    assert_int_equal(cf_prevalence_values(p->plain),
                     cf_prevalence_values(p->hinted));
    assert_int_equal(cf_prevalence_evicted(p->plain),
                     cf_prevalence_evicted(p->hinted));
}

static void test_prevalence_hints(void **state) {
    (void)state;
    enum { KEYS = 200, HOSTS = 20 };
    /* not whole seconds, so a sighting can age out within a second */
    const int64_t horizon = 10300, s0 = INT64_C(1692161671000);
    struct pv_pair p = {cf_prevalence_new(64, horizon),
                        cf_prevalence_new(64, horizon)};
    assert_non_null(p.plain);
    assert_non_null(p.hinted);
    static struct cf_prevalence_hint hint[KEYS + 1], estate[HOSTS + 1];
    struct cf_prevalence_hint other = {0};
    /* a value's hosts all kept (12), then another: the value is
     * saturated, which seeing it again in that second may undo once the
     * oldest ages out (300 ms past the whole seconds) */
    for (uint32_t h = 1; h <= CF_PREVALENCE_HOSTS; h++)
        see_both(&p, &other, 1, h, 0, 0, s0);
    see_both(&p, &hint[1], 1, 13, 0, 0, s0 + 10000 + 100);
    see_both(&p, &hint[1], 1, 13, 0, 0, s0 + 10000 + 500);
    assert_same_tables(&p, 1, s0, s0 + 20000);
    /* a host's sighting replaced when aged out, then that host again in
     * its own second (out of order) */
    for (uint32_t h = 1; h <= CF_PREVALENCE_HOSTS; h++)
        see_both(&p, h == 1 ? &hint[2] : &other, 2, h, 0, 0, s0 + 50);
    see_both(&p, &other, 2, 13, 0, 0, s0 + 30000);
    see_both(&p, &hint[2], 2, 1, 0, 0, s0 + 150);
    assert_same_tables(&p, 2, s0, s0 + 40000);
    /* random sightings: repeats (as of one host's process), many hosts,
     * times out of order and past the horizon, values evicted */
    uint64_t x = 0x2545F4914F6CDD1Dull;
    int64_t t = s0 + 100000;
    uint32_t last[KEYS + 1][3] = {{0}};
    for (int i = 0; i < 60000; i++) {
        switch (xorshift(&x) % 16) {
        case 0: t -= xorshift(&x) % 3000; break;
        case 1: t += horizon + xorshift(&x) % 5000; break;
        default: t += xorshift(&x) % 300;
        }
        uint32_t k = 1 + xorshift(&x) % (i % 7 == 0 ? KEYS : 12);
        if (xorshift(&x) % 4 == 0) {
            last[k][0] = xorshift(&x) % (HOSTS + 1);
            last[k][1] = xorshift(&x) % 6;
            last[k][2] = xorshift(&x) % 12;
        }
        uint32_t host = last[k][0];
        see_both(&p, &hint[k], k, host, last[k][1], last[k][2], t);
        cf_prevalence_see_host(p.plain, host, t);
        cf_prevalence_see_host_hinted(p.hinted, &estate[host], host, t);
        if (i % 1000 == 0) assert_same_tables(&p, KEYS, t - 12000, t + 1000);
    }
    assert_true(cf_prevalence_evicted(p.plain) > 0);
    cf_prevalence_destroy(p.plain);
    cf_prevalence_destroy(p.hinted);
}

/* Sighting through the memo of texts leaves fusion's state (prevalence,
 * organisations, sessions, learned domains: its checkpoint) as sighting
 * every text anew does: random events over hosts whose texts share a
 * signature (one set of two ways), more texts than the memo holds,
 * accounts bare, with domains and built-in, the same host or account
 * again and again, domain learning changing their answers. */
static void test_sight_memo_agrees(void **state) {
    (void)state;
    struct capture c = {0};
    struct cf_config *cfg[2];
    struct cf_fusion *fu[2] = {new_fusion(NULL, &c, &cfg[0]),
                               new_fusion(NULL, &c, &cfg[1])};
    cf_fusion_sight_plain(fu[1]);
    char err[128], json[1024], when[32], host[64], user[64], extra[256];
    struct cf_entity_map *map = cf_entity_map_new(NULL, err, sizeof err);
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_event ev;
    struct cf_ckpt_w w[2];
    memset(w, 0, sizeof w);
    assert_non_null(map);
    assert_non_null(dec);
    cf_event_init(&ev);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int64_t t = T0;
    int h = 0, u = 0;
    for (int i = 0; i < 6000; i++) {
        uint32_t r = xorshift(&x);
        t += xorshift(&x) % 700;
        if (r % 4 == 0) h = (int)(xorshift(&x) % 24);          /* a few hosts */
        if (r % 97 == 0) h = 100 + (int)(xorshift(&x) % 1500); /* many */
        if (r % 3 == 0) u = (int)(xorshift(&x) % 12);
        if (r % 89 == 0) u = 100 + (int)(xorshift(&x) % 1500);
        /* 40 bytes differing only in bytes 8-12: one signature */
        if (h % 3 == 0)
            snprintf(host, sizeof host,
                     "ws-host-%05d-same-middle-part.alpha.loc", h);
        else if (h % 3 == 1)
            snprintf(host, sizeof host, "WS%d.acme.local", h);
        else
            snprintf(host, sizeof host, "ws%d", h);
        if (u % 4 == 0)
            snprintf(user, sizeof user, "NT AUTHORITY\\\\SYSTEM");
        else if (u % 4 == 1)
            snprintf(user, sizeof user, "ACME\\\\user%d", u);
        else
            snprintf(user, sizeof user, "user%d", u);
        extra[0] = '\0';
        switch (xorshift(&x) % 8) {
        case 0: /* teaches ACME's users (often the event's own) and the
                   ACME-acme.local pair */
            snprintf(extra, sizeof extra,
                     ",\"SubjectDomainName\":\"ACME\",\"SubjectUserName\":"
                     "\"user%d\",\"TargetLogonId\":\"0x%x\","
                     "\"WorkstationName\":\"ws%d\"",
                     r % 2 ? u : (int)(xorshift(&x) % 40), xorshift(&x) % 64,
                     (int)(xorshift(&x) % 30));
            break;
        case 1:
            snprintf(extra, sizeof extra,
                     ",\"Hashes\":\"SHA1=AB,SHA256=%064x\",\"SourceIp\":"
                     "\"10.0.0.%d\"",
                     xorshift(&x) % 300, (int)(xorshift(&x) % 250));
            break;
        default: break;
        }
        if (i < 2) {
            /* an account, then the same one in the event that teaches
             * its domain's DNS name (another value from then on) */
            snprintf(host, sizeof host, "WS03.acme.local");
            snprintf(user, sizeof user, "ACME\\\\bchen");
            r = 1;
            extra[0] = '\0';
            if (i == 1)
                snprintf(extra, sizeof extra,
                         ",\"SubjectDomainName\":\"ACME\","
                         "\"SubjectUserName\":\"WS03$\"");
        }
        cf_time_format(t, when);
        snprintf(json, sizeof json,
                 "{\"UtcTime\":\"%s\",\"Hostname\":\"%s\"%s%s%s%s}", when, host,
                 r % 5 ? ",\"User\":\"" : "", r % 5 ? user : "",
                 r % 5 ? "\"" : "", extra);
        const char *why = NULL;
        assert_int_equal(
            cf_event_decode(dec, &ev, json, strlen(json), NULL, &why), CF_OK);
        for (int j = 0; j < 2; j++) {
            cf_fusion_observe(fu[j], ev.time_ms);
            cf_fusion_learn(fu[j], &ev);
            cf_fusion_sight(fu[j], map, &ev);
        }
        if (i % 500 == 499) {
            for (int j = 0; j < 2; j++) {
                cf_ckpt_begin(&w[j]);
                cf_fusion_save(fu[j], &w[j]);
            }
            assert_int_equal(w[0].b.len, w[1].b.len);
            assert_memory_equal(w[0].b.data, w[1].b.data, w[0].b.len);
        }
    }
    assert_int_equal(stat(fu[0], "events_sighted"), 6000);
    for (int j = 0; j < 2; j++) {
        cf_ckpt_discard(&w[j]);
        cf_fusion_destroy(fu[j]);
        cf_config_destroy(cfg[j]);
    }
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
    cf_entity_map_destroy(map);
    capture_free(&c);
}

/* A host's organisation, learned from its full name, is forgotten with
 * the host (entity_ttl).  Sighting keeps its last answer for the host
 * it saw last: the sweep that drops the host must drop that too (under
 * the sanitizer or valgrind, a stale one is a read of freed memory). */
static void test_host_org_forgotten(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu =
        new_fusion("{\"fusion\":{\"entity_ttl\":\"1h\"}}", &c, &cfg);
    sight(fu, T0, "\"Hostname\":\"WS1.alpha.local\"");
    cf_fusion_observe(fu, T0 + 3 * HOUR); /* a sweep drops WS1 */
    sight(fu, T0 + 3 * HOUR + SEC, "\"Hostname\":\"WS1\"");
    sight(fu, T0 + 3 * HOUR + 2 * SEC, "\"Hostname\":\"WS1.alpha.local\"");
    assert_int_equal(stat(fu, "events_sighted"), 3);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

/* A rare account shared by machines of two organisations links nothing. */
static void test_organisations(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    (void)state;
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    push(fu, &(struct spec){"A", T0, "r1", CF_LEVEL_HIGH, tactic_execution,
                            "WS1.alpha.local", "administrator", NULL, NULL});
    push(fu,
         &(struct spec){"B", T0 + MIN, "r2", CF_LEVEL_HIGH, tactic_discovery,
                        "WS1.beta.local", "administrator", NULL, NULL});
    push(fu,
         &(struct spec){"C", T0 + 2 * MIN, "r3", CF_LEVEL_HIGH,
                        tactic_discovery, "WS9", "administrator", NULL, NULL});
    cf_fusion_finish(fu);
    assert_int_equal(distinct_ids(&c), 3);
    assert_true(stat(fu, "links_refused_organisation") >= 2);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

/* A rule firing all day on one host is its baseline: counted, listed as
 * noise, without stage, severity or time bounds; a short burst is not. */
static void test_noise(void **state) {
    static char *persistence[] = {"persistence"};
    struct capture c = {0};
    struct cf_config *cfg;
    char seed[16], user[16];
    (void)state;
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    for (int i = 0; i < 30; i++) {
        snprintf(seed, sizeof seed, "N%d", i);
        snprintf(user, sizeof user, "u%d", i); /* no repeats: all counted */
        push(fu,
             &(struct spec){seed, T0 + i * 8 * MIN, "runkey", CF_LEVEL_MEDIUM,
                            persistence, "H1", user, NULL, NULL});
    }
    int64_t t_attack = T0 + 2 * 60 * MIN;
    push(fu, &(struct spec){"X", t_attack, "attack", CF_LEVEL_HIGH,
                            tactic_credential, "H1", "u0", NULL, NULL});
    for (int i = 0; i < 30; i++) { /* a burst: thirty in a minute */
        snprintf(seed, sizeof seed, "B%d", i);
        push(fu,
             &(struct spec){seed, t_attack + i * SEC, "burst", CF_LEVEL_MEDIUM,
                            tactic_discovery, "H1", "u0", NULL, NULL});
    }
    cf_fusion_finish(fu);
    json_t *inc = incident_of(&c, "X");
    assert_non_null(inc);
    assert_true(json_is_true(json_object_get(inc, "noisy")));
    json_t *noise = json_object_get(inc, "noise");
    assert_int_equal(json_array_size(noise), 1);
    assert_string_equal(sval(json_array_get(noise, 0), "rule"), "runkey");
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(noise, 0), "alerts")),
        30);
    /* the baseline sets no stage and no bound; the burst stays */
    json_t *st;
    size_t i;
    json_array_foreach(json_object_get(inc, "stages"), i, st)
        assert_string_not_equal(sval(st, "tactic"), "persistence");
    assert_int_equal(json_array_size(json_object_get(inc, "stages")), 2);
    char when[32];
    cf_time_format(t_attack, when);
    assert_string_equal(sval(inc, "first_seen"), when);
    assert_true(stat(fu, "noise_folded") >= 10);
    assert_int_equal(stat(fu, "noise_rules"), 1);
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

/* An informational alert tied only by its host is context: it neither
 * moves last_seen nor adds an account. */
static void test_informational_context(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    char when[32];
    (void)state;
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    push(fu, &(struct spec){"A", T0, "r1", CF_LEVEL_HIGH, tactic_execution,
                            "H1", "alice", NULL, NULL});
    push(fu, &(struct spec){"I", T0 + 30 * MIN, "hunt", CF_LEVEL_INFORMATIONAL,
                            tactic_discovery, "H1", "bob", NULL, NULL});
    cf_fusion_finish(fu);
    json_t *inc = incident_of(&c, "I");
    assert_ptr_equal(inc, incident_of(&c, "A"));
    cf_time_format(T0, when);
    assert_string_equal(sval(inc, "last_seen"), when);
    json_t *users = json_object_get(json_object_get(inc, "entities"), "users");
    assert_int_equal(json_array_size(users), 1);
    assert_string_equal(json_string_value(json_array_get(users, 0)), "alice");
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

/* An administrator's account on every machine links nothing, but its
 * session on H2 came from H1 (a logon event says so, and no other
 * machine was reached from H1 that way): H2's alert joins H1's incident. */
static void test_session_movement(void **state) {
    struct capture c = {0};
    struct cf_config *cfg;
    char f[256];
    (void)state;
    struct cf_fusion *fu = new_fusion(NULL, &c, &cfg);
    for (int h = 1; h <= 8; h++) {
        snprintf(f, sizeof f,
                 "\"Hostname\":\"H%d.corp.local\",\"User\":\"CORP\\\\adm\"", h);
        sight(fu, T0 - MIN + h, f);
    }
    push(fu, &(struct spec){"A", T0, "r1", CF_LEVEL_HIGH, tactic_credential,
                            "H1.corp.local", "CORP\\victim", NULL, NULL});
    sight(fu, T0 + MIN,
          "\"Hostname\":\"H2.corp.local\",\"EventID\":4624,"
          "\"TargetUserName\":\"adm\",\"TargetDomainName\":\"CORP\","
          "\"TargetLogonId\":\"0x99\",\"WorkstationName\":\"H1\"");
    push(fu, &(struct spec){"B", T0 + 2 * MIN, "r2", CF_LEVEL_HIGH,
                            tactic_discovery, "H2.corp.local", "CORP\\adm",
                            NULL, "0x99"});
    cf_fusion_finish(fu);
    json_t *inc = incident_of(&c, "B");
    assert_ptr_equal(inc, incident_of(&c, "A"));
    json_t *l = json_array_get(json_object_get(inc, "links"), 1);
    assert_string_equal(sval(l, "entity_value"), "adm@corp.local from h1");
    cf_fusion_destroy(fu);
    cf_config_destroy(cfg);
    capture_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_linking),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_never_link),
        cmocka_unit_test(test_weak_entities),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_suppression),
        cmocka_unit_test(test_field_suppression),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_future_event_does_not_hold_back_incidents),
        cmocka_unit_test(test_future_skew_setting),
        cmocka_unit_test(test_shuffle_within_lateness),
        cmocka_unit_test(test_severity_order),
        cmocka_unit_test(test_prevalence),
        cmocka_unit_test(test_prevalence_hints),
        cmocka_unit_test(test_sight_follows_domains),
        cmocka_unit_test(test_sight_memo_agrees),
        cmocka_unit_test(test_organisations),
        cmocka_unit_test(test_host_org_forgotten),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_informational_context),
        cmocka_unit_test(test_session_movement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
