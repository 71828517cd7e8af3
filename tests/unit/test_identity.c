/*
 * test_identity.c - one identity per account (engine/entity_norm.c):
 * NetBIOS and DNS domain names paired from events shaped as the shared
 * OTRF recordings write them (a machine account on its own host, a domain
 * SID seen under both names, the naming convention) or configured
 * (identity.domains); accounts keyed user@dns.domain; and the hostile
 * cases: two estates with one NetBIOS name, machine and local accounts,
 * built-in domains, a bare name two domains share.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "entity_norm.h"
#include "event.h"

struct fixture {
    struct cf_config *cfg;
    struct cf_domains *dom;
    /* learns the same events as the pipeline does, the fields found by
     * cf_entity_locate's pass (cf_entity_map_also): must agree with dom */
    struct cf_domains *twin;
    struct cf_entity_map *map;
    struct cf_decoder *dec;
    struct cf_event ev;
};

/* Domains from the configuration `json` (NULL: defaults). */
static void setup_with(struct fixture *f, const char *json) {
    char err[256] = "";
    json_t *root = json ? json_loads(json, 0, NULL) : NULL;
    assert_true(!json || root);
    f->cfg = cf_config_from_json(root, "test", err, sizeof err);
    json_decref(root);
    if (!f->cfg) fail_msg("config: %s", err);
    f->dom = cf_domains_new(f->cfg, err, sizeof err);
    if (!f->dom) fail_msg("domains: %s", err);
    f->twin = cf_domains_new(f->cfg, err, sizeof err);
    if (!f->twin) fail_msg("domains: %s", err);
    f->map = cf_entity_map_new(NULL, err, sizeof err);
    if (!f->map) fail_msg("entities: %s", err);
    size_t n;
    const char *const *names = cf_domains_learn_names(&n);
    assert_int_equal(cf_entity_map_also(f->map, names, n), CF_OK);
    f->dec = cf_decoder_new();
    assert_non_null(f->dec);
    cf_event_init(&f->ev);
}

static void teardown_with(struct fixture *f) {
    cf_event_free(&f->ev);
    cf_decoder_destroy(f->dec);
    cf_domains_destroy(f->dom);
    cf_domains_destroy(f->twin);
    cf_entity_map_destroy(f->map);
    cf_config_destroy(f->cfg);
}

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    setup_with(f, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    teardown_with(*state);
    free(*state);
    return 0;
}

static void learn(struct fixture *f, const char *line) {
    const char *reason = NULL;
    struct cf_decode_limits lim = {1 << 20, 64};
    assert_int_equal(
        cf_event_decode(f->dec, &f->ev, line, strlen(line), &lim, &reason),
        CF_OK);
    cf_domains_learn_event(f->dom, &f->ev);
    struct cf_entity_at at;
    cf_entity_locate(f->map, &f->ev, 1u << CF_ENTITY_HOST, &at);
    cf_domains_learn_found(f->twin, &f->ev, at.also);
}

/* The account key of `user` on `host` (either may be NULL). */
static const char *key(struct fixture *f, const char *user, const char *host) {
    static char out[CF_ENTITY_NORM_MAX];
    char twin[CF_ENTITY_NORM_MAX];
    cf_entity_normalize_in(f->dom, CF_ENTITY_USER, user, host, out, sizeof out);
    cf_entity_normalize_in(f->twin, CF_ENTITY_USER, user, host, twin,
                           sizeof twin);
    assert_string_equal(twin, out);
    return out;
}

static json_int_t stat(const struct fixture *f, const char *name) {
    json_t *o = json_object(), *t = json_object();
    cf_domains_stats(f->dom, o);
    cf_domains_stats(f->twin, t);
    assert_true(json_equal(o, t));
    json_int_t v = json_integer_value(json_object_get(o, name));
    json_decref(o);
    json_decref(t);
    return v;
}

/* Security 4672 as in the LSASS recording: the machine account of
 * MKT01.pandalab.com is PANDALAB\MKT01$. */
static const char *const machine_4672 =
    "{\"Hostname\":\"MKT01.pandalab.com\",\"Channel\":\"Security\","
    "\"EventID\":4672,\"SubjectUserSid\":\"S-1-5-18\","
    "\"SubjectUserName\":\"MKT01$\",\"SubjectDomainName\":\"PANDALAB\"}";

/* The forms one account takes, folded once the pair is known. */
static void test_forms_fold(void **state) {
    struct fixture *f = *state;
    /* before: the NetBIOS form stays apart, the DNS forms agree */
    assert_string_equal(key(f, "PANDALAB\\pedro", NULL), "pandalab\\pedro");
    assert_string_equal(key(f, "pedro@PANDALAB.COM", NULL),
                        "pedro@pandalab.com");
    assert_string_equal(key(f, "PANDALAB.COM\\pedro", NULL),
                        "pedro@pandalab.com");
    assert_string_equal(key(f, "PANDALAB.COM\\pedro@PANDALAB.COM", NULL),
                        "pedro@pandalab.com");
    learn(f, machine_4672);
    assert_int_equal(stat(f, "domains_learned"), 1);
    assert_string_equal(key(f, "PANDALAB\\Pedro", NULL), "pedro@pandalab.com");
    assert_string_equal(key(f, "PANDALAB\\pedro", "MKT01"),
                        "pedro@pandalab.com");
    assert_string_equal(key(f, "PANDALAB\\pedro", "FS02.pandalab.com"),
                        "pedro@pandalab.com");
    /* a user of that domain on a host of another is not guessed */
    assert_string_equal(key(f, "PANDALAB\\pedro", "web.partner.org"),
                        "pandalab\\pedro");
    /* ... but one in a child domain is its parent's */
    assert_string_equal(key(f, "PANDALAB\\pedro", "ws9.eu.pandalab.com"),
                        "pedro@pandalab.com");
}

/* A domain SID seen with a NetBIOS name (4662) and a DNS name (a
 * Kerberos 4624), as in the GoldenSAML recording, pairs names that share
 * nothing else. */
static void test_sid_pairs(void **state) {
    struct fixture *f = *state;
    learn(f, "{\"Computer\":\"DC01.simulandlabs.com\",\"EventID\":4662,"
             "\"SubjectUserName\":\"wardog\",\"SubjectDomainName\":\"CORP\","
             "\"SubjectUserSid\":\"S-1-5-21-2490359158-13971675-3780420524-"
             "500\"}");
    assert_int_equal(stat(f, "domains_learned"), 0);
    learn(f, "{\"Computer\":\"DC01.simulandlabs.com\",\"EventID\":4624,"
             "\"TargetUserName\":\"cjones\",\"TargetDomainName\":"
             "\"EXAMPLE.ORG\",\"TargetUserSid\":\"S-1-5-21-2490359158-"
             "13971675-3780420524-1106\"}");
    assert_int_equal(stat(f, "domains_learned"), 1);
    assert_string_equal(key(f, "CORP\\wardog", NULL), "wardog@example.org");
    /* well-known SIDs teach nothing */
    learn(f, "{\"Computer\":\"x.elsewhere.net\",\"SubjectUserName\":\"SYSTEM\","
             "\"SubjectDomainName\":\"OTHER\",\"SubjectUserSid\":\"S-1-5-18\","
             "\"TargetUserName\":\"y\",\"TargetDomainName\":\"OTHER.NET\","
             "\"TargetUserSid\":\"S-1-5-18\"}");
    assert_int_equal(stat(f, "domains_learned"), 1);
}

/* Two estates both called ACME: acme.local and acme.corp.  Each account
 * resolves to its own host's domain; without a host it is not guessed. */
static void test_two_estates_one_netbios_name(void **state) {
    struct fixture *f = *state;
    learn(f, "{\"Hostname\":\"WS03.acme.local\",\"SubjectUserName\":"
             "\"WS03$\",\"SubjectDomainName\":\"ACME\"}");
    learn(f, "{\"Hostname\":\"WS03.acme.corp\",\"SubjectUserName\":"
             "\"WS03$\",\"SubjectDomainName\":\"ACME\"}");
    assert_int_equal(stat(f, "domains_learned"), 2);
    assert_int_equal(stat(f, "domains_ambiguous"), 1);
    assert_string_equal(key(f, "ACME\\bchen", "WS03.acme.local"),
                        "bchen@acme.local");
    assert_string_equal(key(f, "ACME\\bchen", "WS03.acme.corp"),
                        "bchen@acme.corp");
    assert_string_equal(key(f, "ACME\\bchen", "WS03"), "acme\\bchen");
    assert_string_equal(key(f, "bchen@ACME.CORP", NULL), "bchen@acme.corp");
    /* a bare name both estates have: each host's own, else what the
     * NetBIOS name alone says */
    learn(f, "{\"Hostname\":\"WS03.acme.local\",\"User\":\"ACME\\\\bchen\"}");
    learn(f, "{\"Hostname\":\"WS03.acme.corp\",\"User\":\"ACME\\\\bchen\"}");
    assert_string_equal(key(f, "bchen", "WS03.acme.corp"), "bchen@acme.corp");
    assert_string_equal(key(f, "bchen", "WS03.acme.local"), "bchen@acme.local");
    assert_string_equal(key(f, "bchen", NULL), "acme\\bchen");
    assert_string_equal(key(f, "bchen", "WS03"), "acme\\bchen");
}

/* Machine accounts, local accounts and built-in domains stay what they
 * are, and local accounts teach no pair. */
static void test_machine_local_builtin(void **state) {
    struct fixture *f = *state;
    learn(f, machine_4672);
    /* 4798 in the LSASS recording: MKT01\Administrator is local */
    learn(f, "{\"Hostname\":\"MKT01.pandalab.com\",\"EventID\":4798,"
             "\"TargetUserName\":\"Administrator\",\"TargetDomainName\":"
             "\"MKT01\",\"SubjectUserName\":\"MKT01$\","
             "\"SubjectDomainName\":\"PANDALAB\"}");
    assert_int_equal(stat(f, "domains_learned"), 1);
    assert_string_equal(key(f, "PANDALAB\\MKT01$", NULL),
                        "mkt01$@pandalab.com");
    assert_string_equal(key(f, "PANDALAB\\mkt01", NULL), "mkt01@pandalab.com");
    assert_string_equal(key(f, "MKT01\\Administrator", "MKT01.pandalab.com"),
                        "mkt01\\administrator");
    assert_string_equal(key(f, "PANDALAB\\Administrator", NULL),
                        "administrator@pandalab.com");
    /* a bare name that is a local account of the host is not guessed */
    learn(f, "{\"Hostname\":\"MKT01.pandalab.com\",\"User\":"
             "\"PANDALAB\\\\Administrator\"}");
    assert_string_equal(key(f, "Administrator", "MKT01.pandalab.com"),
                        "administrator");
    assert_int_equal(cf_entity_normalize_in(f->dom, CF_ENTITY_USER,
                                            "NT AUTHORITY\\SYSTEM", NULL, NULL,
                                            0),
                     0);
    char out[CF_ENTITY_NORM_MAX];
    assert_int_equal(cf_entity_normalize_in(f->dom, CF_ENTITY_USER,
                                            "NT AUTHORITY\\NETWORK SERVICE",
                                            "MKT01.pandalab.com", out,
                                            sizeof out),
                     0);
    assert_string_equal(key(f, "NT SERVICE\\MSSQLSERVER", "MKT01.pandalab.com"),
                        "nt service\\mssqlserver");
    learn(f, "{\"Hostname\":\"MKT01.pandalab.com\",\"User\":"
             "\"NT AUTHORITY\\\\LOCAL SERVICE\",\"SubjectDomainName\":"
             "\"NT AUTHORITY\",\"SubjectUserName\":\"MKT01$\"}");
    assert_int_equal(stat(f, "domains_learned"), 1);
}

/* A configured pair needs no event and wins over a learned one; a bad
 * one is refused; learning can be turned off. */
static void test_configured(void **state) {
    struct fixture f;
    char err[256];
    (void)state;
    setup_with(&f, "{\"identity\": {\"domains\": {\"CORP\": "
                   "\"corp.example.com\"}, \"learn_domains\": false}}");
    assert_string_equal(key(&f, "CORP\\ann", "ws1.elsewhere.net"),
                        "ann@corp.example.com");
    learn(&f, "{\"Hostname\":\"WS03.acme.local\",\"SubjectUserName\":"
              "\"WS03$\",\"SubjectDomainName\":\"ACME\"}");
    assert_int_equal(stat(&f, "domains_learned"), 0);
    assert_int_equal(stat(&f, "domains_configured"), 1);
    /* the convention still reads the host */
    assert_string_equal(key(&f, "ACME\\bchen", "WS03.acme.local"),
                        "bchen@acme.local");
    teardown_with(&f);

    json_t *root = json_loads("{\"identity\": {\"domains\": {\"ACME.LOCAL\": "
                              "\"acme\"}}}",
                              0, NULL);
    struct cf_config *cfg = cf_config_from_json(root, "test", err, sizeof err);
    json_decref(root);
    assert_non_null(cfg);
    assert_null(cf_domains_new(cfg, err, sizeof err));
    assert_non_null(strstr(err, "identity.domains"));
    cf_config_destroy(cfg);
    /* the key table checks the shape: a mapping of strings */
    root = json_loads("{\"identity\": {\"domains\": [\"ACME\"]}}", 0, NULL);
    assert_null(cf_config_from_json(root, "test", err, sizeof err));
    assert_non_null(strstr(err, "identity.domains: must be a mapping"));
    json_decref(root);
    root = json_loads("{\"identity\": {\"domains\": {\"ACME\": 1}}}", 0, NULL);
    assert_null(cf_config_from_json(root, "test", err, sizeof err));
    assert_non_null(strstr(err, "ACME must be a string"));
    json_decref(root);
}

/* never_link and suppression values match accounts in any spelling. */
static void test_configured_values_match(void **state) {
    struct fixture *f = *state;
    learn(f, machine_4672);
    assert_true(cf_entity_matches(f->dom, CF_ENTITY_USER, "pedro",
                                  "pedro@pandalab.com"));
    assert_true(cf_entity_matches(f->dom, CF_ENTITY_USER, "pandalab\\pedro",
                                  "pedro@pandalab.com"));
    assert_false(cf_entity_matches(f->dom, CF_ENTITY_USER, "acme\\pedro",
                                   "pedro@pandalab.com"));
    assert_false(cf_entity_matches(f->dom, CF_ENTITY_USER, "pedro",
                                   "pedro2@pandalab.com"));
    assert_false(cf_entity_matches(f->dom, CF_ENTITY_HOST, "mkt01", "mkt02"));
}

/* A text with a NUL in it teaches nothing, and a host name with one
 * gives way to the next host field, though events are first read
 * without looking for NULs (only remembered texts, which have none,
 * are recognised that way): each event twice, so the second meets the
 * memo. */
static void test_nul_texts(void **state) {
    struct fixture *f = *state;
    static const char *const events[] = {
        "{\"Hostname\":\"MKT01.pandalab.com\",\"Channel\":\"Security\","
        "\"EventID\":4672,\"SubjectUserSid\":\"S-1-5-18\","
        "\"SubjectUserName\":\"MKT01$\","
        "\"SubjectDomainName\":\"PAND\\u0000ALAB\"}",
        machine_4672,
        "{\"Hostname\":\"WS02.corp\\u0000.com\",\"Computer\":"
        "\"WS02.corp.com\",\"Channel\":\"Security\",\"EventID\":4672,"
        "\"SubjectUserName\":\"WS02$\",\"SubjectDomainName\":\"CORP\"}"};
    static const int learned[] = {0, 1, 2};
    for (size_t e = 0; e < CF_ARRAY_LEN(events); e++) {
        learn(f, events[e]);
        learn(f, events[e]);
        assert_int_equal(stat(f, "domains_learned"), learned[e]);
    }
    assert_string_equal(key(f, "CORP\\ana", NULL), "ana@corp.com");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forms_fold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sid_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_texts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_estates_one_netbios_name,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_machine_local_builtin, setup,
                                        teardown),
        cmocka_unit_test(test_configured),
        cmocka_unit_test_setup_teardown(test_configured_values_match, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
