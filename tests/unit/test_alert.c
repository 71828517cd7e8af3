/*
 * test_alert.c - alerts: entity extraction from the three event shapes,
 * stable ids, the alert record's JSON shape, and the event embedded in it
 * exactly as it came in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "alert.h"
#include "event.h"

static struct cf_event_field field(const char *name, const char *value) {
    struct cf_event_field f = {0};
    f.name = name;
    f.name_len = (uint32_t)strlen(name);
    f.name_hash = cf_hash_name(name, f.name_len);
    f.value = value;
    f.value_len = (uint32_t)strlen(value);
    f.type = CF_VALUE_STRING;
    return f;
}

static void make_event(struct cf_event *ev, struct cf_event_field *fields,
                       uint32_t n, const char *raw) {
    memset(ev, 0, sizeof *ev);
    ev->fields = fields;
    ev->n_fields = n;
    ev->cap_fields = n;
    ev->raw = raw;
    ev->raw_len = strlen(raw);
    ev->time_ms = 1692161671123; /* 2023-08-16T04:54:31.123Z */
    ev->pos.source = "events.jsonl";
    ev->pos.partition = -1;
    ev->pos.offset = 7;
}

static struct cf_sigma_rule test_rule(void) {
    static char *tactics[] = {"credential-access"};
    static char *techniques[] = {"T1003.001"};
    struct cf_sigma_rule r = {0};
    r.id = "0d894093-71bc-43c3-8c4d-ecfc28dcf5d9";
    r.title = "LSASS access";
    r.path = "rules/x.yml";
    r.level = CF_LEVEL_HIGH;
    r.tactics = tactics;
    r.n_tactics = 1;
    r.techniques = techniques;
    r.n_techniques = 1;
    return r;
}

static void test_sysmon_entities(void **state) {
    (void)state;
    struct cf_event_field f[] = {
        field("Hostname", "MKT01.pandalab.com"),
        field("User", "PANDALAB\\pedro.gustavo"),
        field("Image", "C:\\Windows\\System32\\cmd.exe"),
        field("ParentImage", "C:\\Users\\x\\payload.exe"),
        field("ProcessGuid", "{7ad6e8b5-0001}"),
        field("LogonId", "0x3e7"),
        field("Hashes", "SHA1=AA,MD5=BB,SHA256=CCDD,IMPHASH=EE"),
        field("SourceIp", "10.0.0.5"),
        field("DestinationIp", "10.0.0.9"),
    };
    struct cf_event ev;
    make_event(&ev, f, CF_ARRAY_LEN(f), "{}");
    struct cf_entity_map *map = cf_entity_map_new(NULL, NULL, 0);
    assert_non_null(map);
    struct cf_entities e;
    cf_entities_extract(map, &ev, &e);
    assert_string_equal(e.value[CF_ENTITY_HOST], "MKT01.pandalab.com");
    assert_string_equal(e.value[CF_ENTITY_USER], "PANDALAB\\pedro.gustavo");
    assert_string_equal(e.value[CF_ENTITY_PROCESS],
                        "C:\\Windows\\System32\\cmd.exe");
    assert_string_equal(e.value[CF_ENTITY_PARENT_PROCESS],
                        "C:\\Users\\x\\payload.exe");
    assert_string_equal(e.value[CF_ENTITY_PROCESS_GUID], "{7ad6e8b5-0001}");
    assert_string_equal(e.value[CF_ENTITY_LOGON_ID], "0x3e7");
    assert_string_equal(e.value[CF_ENTITY_FILE_HASH], "CCDD");
    assert_string_equal(e.value[CF_ENTITY_SRC_IP], "10.0.0.5");
    assert_string_equal(e.value[CF_ENTITY_DST_IP], "10.0.0.9");
    assert_null(e.value[CF_ENTITY_CLOUD_ACCOUNT]);
    cf_entities_clear(&e);
    cf_entity_map_destroy(map);
}

static void test_security_user_gets_domain_and_skips_dash(void **state) {
    (void)state;
    struct cf_event_field f[] = {
        field("Computer", "DC01"),
        field("TargetUserName", "-"),
        field("SubjectUserName", "wardog"),
        field("SubjectDomainName", "WORKSTATION5"),
    };
    struct cf_event ev;
    make_event(&ev, f, CF_ARRAY_LEN(f), "{}");
    struct cf_entity_map *map = cf_entity_map_new(NULL, NULL, 0);
    struct cf_entities e;
    cf_entities_extract(map, &ev, &e);
    assert_string_equal(e.value[CF_ENTITY_HOST], "DC01");
    assert_string_equal(e.value[CF_ENTITY_USER], "WORKSTATION5\\wardog");
    cf_entities_clear(&e);
    cf_entity_map_destroy(map);
}

static void test_config_entities_come_first(void **state) {
    (void)state;
    json_t *sec = json_pack("{s:[s]}", "host", "collector.host");
    struct cf_entity_map *map = cf_entity_map_new(sec, NULL, 0);
    assert_non_null(map);
    struct cf_event_field f[] = {field("Hostname", "A"),
                                 field("collector.host", "B")};
    struct cf_event ev;
    make_event(&ev, f, CF_ARRAY_LEN(f), "{}");
    struct cf_entities e;
    cf_entities_extract(map, &ev, &e);
    assert_string_equal(e.value[CF_ENTITY_HOST], "B");
    cf_entities_clear(&e);
    cf_entity_map_destroy(map);
    json_decref(sec);

    char err[256] = "";
    sec = json_pack("{s:[s]}", "hostname", "x");
    assert_null(cf_entity_map_new(sec, err, sizeof err));
    assert_non_null(strstr(err, "unknown entity kind 'hostname'"));
    json_decref(sec);
}

static void test_alert_id_stable_and_record_shape(void **state) {
    (void)state;
    struct cf_event_field f[] = {field("Hostname", "MKT01")};
    const char *raw = "{\"Hostname\":\"MKT01\",\"EventID\":10}";
    struct cf_event ev;
    make_event(&ev, f, CF_ARRAY_LEN(f), raw);
    struct cf_entity_map *map = cf_entity_map_new(NULL, NULL, 0);
    struct cf_sigma_rule rule = test_rule();
    struct cf_alert a, b;
    assert_int_equal(cf_alert_from_event(&a, &rule, &ev, map), CF_OK);
    assert_int_equal(cf_alert_from_event(&b, &rule, &ev, map), CF_OK);
    assert_int_equal(strlen(a.id), 32);
    assert_string_equal(a.id, b.id);
    /* The id is part of the output contract: the first half of the
     * SHA-256 of the rule id, a NUL and the raw line, as
     *   printf 'ID\0RAW' | sha256sum | cut -c1-32
     * gives it, whichever OpenSSL interface computes it. */
    assert_string_equal(a.id, "09ecc6d3f63d91eb77d3e7f88919d10e");
    cf_alert_clear(&b);

    /* A different event gives a different id. */
    struct cf_event ev2;
    make_event(&ev2, f, CF_ARRAY_LEN(f), "{\"Hostname\":\"MKT02\"}");
    assert_int_equal(cf_alert_from_event(&b, &rule, &ev2, map), CF_OK);
    assert_string_not_equal(a.id, b.id);
    cf_alert_clear(&b);

    struct cf_buf out = CF_BUF_INIT;
    assert_int_equal(cf_alert_write(&a, &out), CF_OK);
    assert_int_equal(strlen(out.data), out.len);
    json_t *rec = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "kind")),
                        "alert");
    assert_string_equal(json_string_value(json_object_get(rec, "time")),
                        "2023-08-16T04:54:31.123Z");
    json_t *r = json_object_get(rec, "rule");
    assert_string_equal(json_string_value(json_object_get(r, "id")), rule.id);
    assert_string_equal(json_string_value(json_object_get(r, "level")), "high");
    assert_string_equal(json_string_value(json_object_get(rec, "severity")),
                        "high");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(rec, "tactics"), 0)),
        "credential-access");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(rec, "techniques"), 0)),
                        "T1003.001");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(rec, "entities"), "host")),
                        "MKT01");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(rec, "input"), "offset")),
                     7);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(rec, "event"), "EventID")),
                     10);

    /* a partitioned input's position, and an offset past 32 bits */
    struct cf_position kept = a.pos;
    a.pos.partition = 12;
    a.pos.offset = INT64_C(9876543210123);
    cf_buf_reset(&out);
    assert_int_equal(cf_alert_write(&a, &out), CF_OK);
    assert_non_null(
        strstr(out.data, ",\"partition\":12,\"offset\":9876543210123},"));
    a.pos.partition = 0;
    a.pos.offset = 0;
    cf_buf_reset(&out);
    assert_int_equal(cf_alert_write(&a, &out), CF_OK);
    assert_non_null(strstr(out.data, ",\"partition\":0,\"offset\":0},"));
    a.pos = kept;

    struct cf_alert c;
    assert_int_equal(cf_alert_copy(&c, &a), CF_OK);
    assert_string_equal(c.id, a.id);
    assert_ptr_not_equal(c.event_json, a.event_json);
    assert_string_equal(c.entities.value[CF_ENTITY_HOST], "MKT01");
    cf_alert_clear(&c);
    json_decref(rec);
    cf_buf_free(&out);
    cf_alert_clear(&a);
    cf_entity_map_destroy(map);
}

/* The record's "event" is the input's bytes: no JSON library in between
 * to turn a 30-digit integer into a float, 1.50 into 1.5, 1e3 into 1000,
 * unescape \u00e9 or reorder and merge keys. */
static void test_event_embedded_as_it_came(void **state) {
    (void)state;
    static const char obj[] =
        "{\"z\":1,\"Hostname\":\"WS1\","
        "\"Big\":123456789012345678901234567890,\"F\":1.50,\"E\":1e3,"
        "\"N\":-0.0,\"U\":\"caf\\u00e9 \\ud83d\\ude00 \\/ \xc3\xa9\","
        "\"A\":[1.0, 2E-2 ,{\"b\":null,\"a\":true}],\"z\":2}";
    char line[512];
    snprintf(line, sizeof line, " \t%s  ", obj); /* blanks around it */
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_event ev;
    const char *why = NULL;
    cf_event_init(&ev);
    assert_int_equal(cf_event_decode(dec, &ev, line, strlen(line), NULL, &why),
                     CF_OK);
    struct cf_entity_map *map = cf_entity_map_new(NULL, NULL, 0);
    struct cf_sigma_rule rule = test_rule();
    struct cf_alert a;
    assert_int_equal(cf_alert_from_event(&a, &rule, &ev, map), CF_OK);
    assert_string_equal(a.event_json, obj);
    struct cf_buf out = CF_BUF_INIT;
    assert_int_equal(cf_alert_write(&a, &out), CF_OK);
    /* last member, byte for byte */
    char want[600];
    snprintf(want, sizeof want, ",\"event\":%s}", obj);
    assert_true(out.len > strlen(want));
    assert_string_equal(out.data + out.len - strlen(want), want);
    /* and the record as a whole is JSON (read with integers as reals:
     * jansson refuses a 30-digit integer otherwise) */
    json_t *whole =
        json_loadb(out.data, out.len, JSON_DECODE_INT_AS_REAL, NULL);
    assert_non_null(whole);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(whole, "event"), "U")),
                        "caf\xc3\xa9 \xf0\x9f\x98\x80 / \xc3\xa9");
    json_decref(whole);
    cf_alert_clear(&a);

    /* An event spread over lines (a future input could deliver one) is
     * kept on one line: the breaks lie between tokens. */
    static const char multi[] = "{\"Hostname\":\"WS1\",\r\n  \"F\": 1.50\n}\n";
    assert_int_equal(
        cf_event_decode(dec, &ev, multi, strlen(multi), NULL, &why), CF_OK);
    assert_int_equal(cf_alert_from_event(&a, &rule, &ev, map), CF_OK);
    assert_string_equal(a.event_json,
                        "{\"Hostname\":\"WS1\",    \"F\": 1.50 }");
    cf_buf_reset(&out);
    assert_int_equal(cf_alert_write(&a, &out), CF_OK);
    assert_null(strpbrk(out.data, "\r\n"));
    json_t *rec = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(rec, "event"), "Hostname")),
                        "WS1");
    json_decref(rec);
    cf_alert_clear(&a);

    cf_buf_free(&out);
    cf_entity_map_destroy(map);
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
}

/* A source name that is not UTF-8 (file names are bytes) still gives a
 * valid record. */
static void test_record_valid_with_odd_source(void **state) {
    (void)state;
    struct cf_event_field f[] = {field("Hostname", "MKT01")};
    struct cf_event ev;
    make_event(&ev, f, CF_ARRAY_LEN(f), "{\"Hostname\":\"MKT01\"}");
    ev.pos.source = "caf\xe9\xff.jsonl";
    struct cf_entity_map *map = cf_entity_map_new(NULL, NULL, 0);
    struct cf_sigma_rule rule = test_rule();
    struct cf_alert a;
    assert_int_equal(cf_alert_from_event(&a, &rule, &ev, map), CF_OK);
    struct cf_buf out = CF_BUF_INIT;
    assert_int_equal(cf_alert_write(&a, &out), CF_OK);
    json_t *rec = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(rec, "input"), "source")),
                        "caf\xef\xbf\xbd\xef\xbf\xbd.jsonl");
    json_decref(rec);
    cf_buf_free(&out);
    cf_alert_clear(&a);
    cf_entity_map_destroy(map);
}

/* Names found beside the entities (cf_entity_map_also) are each the
 * first field so named, whatever its value, as cf_event_find gives it;
 * names that are entity fields too ("Computer") and parts of a composed
 * one ("TargetUserName") are found both ways, and the entities do not
 * change for them. */
static void test_locate_also_names(void **state) {
    (void)state;
    struct cf_event_field f[] = {
        field("TargetUserName", "-"),
        field("Computer", "WS01.acme.local"),
        field("SubjectUserSid", ""),
        field("TargetUserName", "pedro"),
        field("Computer", "WS02.acme.local"),
        field("TargetDomainName", "ACME"),
        field("User", "ACME\\ana"),
    };
    f[2].type = CF_VALUE_NULL;
    static const char *const names[] = {"Computer",       "Nowhere",
                                        "TargetUserName", "SubjectUserSid",
                                        "User",           "TargetDomainName"};
    struct cf_event ev;
    make_event(&ev, f, CF_ARRAY_LEN(f), "{}");
    struct cf_entity_map *map = cf_entity_map_new(NULL, NULL, 0);
    assert_non_null(map);
    struct cf_entity_at plain, at;
    unsigned all = (1u << CF_ENTITY_COUNT) - 1;
    cf_entity_locate(map, &ev, all, &plain);
    assert_int_equal(cf_entity_map_also(map, names, CF_ARRAY_LEN(names)),
                     CF_OK);
    cf_entity_locate(map, &ev, all, &at);
    for (size_t j = 0; j < CF_ARRAY_LEN(names); j++)
        assert_int_equal(at.also[j],
                         cf_event_find(&ev, names[j], strlen(names[j]), 0));
    assert_int_equal(at.also[0], 1);
    assert_int_equal(at.also[1], -1);
    assert_int_equal(at.also[2], 0);
    assert_memory_equal(at.field, plain.field, sizeof at.field);
    assert_memory_equal(at.rank, plain.rank, sizeof at.rank);
    /* more than it keeps room for are refused */
    const char *many[CF_ENTITY_ALSO_MAX + 1];
    for (size_t j = 0; j < CF_ARRAY_LEN(many); j++) many[j] = "Computer";
    assert_int_equal(cf_entity_map_also(map, many, CF_ARRAY_LEN(many)), CF_ERR);
    cf_entity_map_destroy(map);
}

/* The memo of name sequences gives what the plain pass gives, whatever
 * the values (null, placeholders, composed domains), repeats and
 * sequence: random events over a few dozen sequences, and a name that
 * has a wanted name's hash without being it (a collision, made by hand). */
static uint32_t next_rand(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (uint32_t)(*x >> 11);
}

static void assert_same_at(const struct cf_entity_at *a,
                           const struct cf_entity_at *b, size_t n_also) {
    assert_memory_equal(a->field, b->field, sizeof a->field);
    assert_memory_equal(a->rank, b->rank, sizeof a->rank);
    assert_memory_equal(a->dom, b->dom, sizeof a->dom);
    assert_memory_equal(a->also, b->also, n_also * sizeof a->also[0]);
}

static void test_locate_memo_agrees(void **state) {
    (void)state;
    static const char *const names[] = {
        "Computer",          "Hostname",         "User",
        "TargetUserName",    "TargetDomainName", "SubjectUserName",
        "SubjectDomainName", "Hashes",           "SourceIp",
        "IpAddress",         "LogonId",          "TargetLogonId",
        "EventID",           "Channel",          "CommandLine",
        "WorkstationName",   "AccountName",      "TenantId"};
    static const char *const values[] = {
        "x", "-", "", "ACME", "ACME\\ana", "SHA1=AB,SHA256=CD"};
    static const char *const also[] = {"SubjectDomainName", "Computer",
                                       "WorkstationName"};
    struct cf_entity_map *map = cf_entity_map_new(NULL, NULL, 0);
    assert_non_null(map);
    assert_int_equal(cf_entity_map_also(map, also, CF_ARRAY_LEN(also)), CF_OK);
    struct cf_entity_shapes *shapes = cf_entity_shapes_new(map);
    assert_non_null(shapes);
    unsigned kinds[] = {(1u << CF_ENTITY_COUNT) - 1,
                        1u << CF_ENTITY_HOST | 1u << CF_ENTITY_USER};
    uint64_t x = 88172645463325252ull;
    enum { SEQS = 40, MAXN = 12 };
    size_t seq_len[SEQS];
    const char *seq[SEQS][MAXN];
    for (int s = 0; s < SEQS; s++) {
        seq_len[s] = 1 + next_rand(&x) % MAXN;
        for (size_t i = 0; i < seq_len[s]; i++)
            seq[s][i] = names[next_rand(&x) % CF_ARRAY_LEN(names)];
    }
    for (int round = 0; round < 20000; round++) {
        int s = (int)(next_rand(&x) % SEQS);
        struct cf_event_field f[MAXN];
        for (size_t i = 0; i < seq_len[s]; i++) {
            f[i] =
                field(seq[s][i], values[next_rand(&x) % CF_ARRAY_LEN(values)]);
            if (next_rand(&x) % 8 == 0) f[i].type = CF_VALUE_NULL;
        }
        struct cf_event ev;
        make_event(&ev, f, (uint32_t)seq_len[s], "{}");
        unsigned want = kinds[next_rand(&x) % CF_ARRAY_LEN(kinds)];
        struct cf_entity_at plain, memo;
        cf_entity_locate(map, &ev, want, &plain);
        cf_entity_locate_memo(map, shapes, &ev, want, &memo);
        assert_same_at(&plain, &memo, CF_ARRAY_LEN(also));
    }
    /* "Komputer" with the hash of "Computer", after the real sequence:
     * not taken for the host, as the plain pass would not */
    struct cf_event_field real[] = {field("EventID", "1"),
                                    field("Computer", "WS01")};
    struct cf_event_field fake[] = {field("EventID", "1"),
                                    field("Komputer", "WS02")};
    fake[1].name_hash = real[1].name_hash;
    struct cf_event ev;
    struct cf_entity_at plain, memo;
    for (int i = 0; i < 2; i++) {
        make_event(&ev, real, 2, "{}");
        cf_entity_locate_memo(map, shapes, &ev, kinds[0], &memo);
        assert_int_equal(memo.field[CF_ENTITY_HOST], 1);
        assert_int_equal(memo.also[1], 1);
        make_event(&ev, fake, 2, "{}");
        cf_entity_locate(map, &ev, kinds[0], &plain);
        cf_entity_locate_memo(map, shapes, &ev, kinds[0], &memo);
        assert_same_at(&plain, &memo, CF_ARRAY_LEN(also));
        assert_int_equal(memo.field[CF_ENTITY_HOST], -1);
        assert_int_equal(memo.also[1], -1);
    }
    /* a NULL memo locates plainly */
    make_event(&ev, real, 2, "{}");
    cf_entity_locate_memo(map, NULL, &ev, kinds[0], &memo);
    assert_int_equal(memo.field[CF_ENTITY_HOST], 1);
    cf_entity_shapes_destroy(shapes);
    cf_entity_map_destroy(map);
}

/* A random tree of what incident records hold (objects, arrays,
 * strings with every kind of character, integers, booleans, null). */
static json_t *random_tree(uint64_t *x, int depth) {
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "\"",
                                         "\\",
                                         "/",
                                         "\b",
                                         "\f",
                                         "\n",
                                         "\r",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         " ",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "k"};
    static const json_int_t ints[] = {0,        1,         -1,       42,
                                      -1234567, INT64_MAX, INT64_MIN};
    unsigned pick = next_rand(x) % (depth > 3 ? 6 : 8);
    switch (pick) {
    case 0:
    case 1: {
        char s[64];
        size_t n = next_rand(x) % 6, len = 0;
        for (size_t i = 0; i < n; i++) {
            const char *piece = pieces[next_rand(x) % CF_ARRAY_LEN(pieces)];
            size_t k = strlen(piece);
            assert_true(len + k < sizeof s);
            memcpy(s + len, piece, k);
            len += k;
        }
        s[len] = '\0';
        return json_string(s);
    }
    case 2: {
        json_int_t v = next_rand(x) % 2
                           ? ints[next_rand(x) % CF_ARRAY_LEN(ints)]
                           : (json_int_t)next_rand(x) - (1 << 20);
        return json_integer(v);
    }
    case 3: return json_true();
    case 4: return json_false();
    case 5: return json_null();
    case 6: {
        json_t *a = json_array();
        for (unsigned n = next_rand(x) % 4; n; n--)
            json_array_append_new(a, random_tree(x, depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        char key[16];
        for (unsigned n = next_rand(x) % 4; n; n--) {
            snprintf(key, sizeof key, "k%u\"\t", next_rand(x) % 100);
            json_object_set_new(o, key, random_tree(x, depth + 1));
        }
        return o;
    }
    }
}

/* Incident records' writer writes what jansson's compact dump does. */
static void test_json_write_compact(void **state) {
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int round = 0; round < 3000; round++) {
        json_t *v = random_tree(&x, 0);
        char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        struct cf_buf b = CF_BUF_INIT;
        cf_buf_puts(&b, "x");
        assert_true(cf_json_write_compact(&b, v));
        assert_string_equal(b.data + 1, want);
        free(want);
        cf_buf_free(&b);
        json_decref(v);
    }
    /* a real is jansson's to write: refused, the buffer as it was */
    json_t *r = json_pack("{s:[i,f]}", "a", 1, 0.5);
    struct cf_buf b = CF_BUF_INIT;
    cf_buf_puts(&b, "x");
    assert_false(cf_json_write_compact(&b, r));
    assert_string_equal(b.data, "x");
    cf_buf_free(&b);
    json_decref(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sysmon_entities),
        cmocka_unit_test(test_locate_memo_agrees),
        cmocka_unit_test(test_json_write_compact),
        cmocka_unit_test(test_security_user_gets_domain_and_skips_dash),
        cmocka_unit_test(test_config_entities_come_first),
        cmocka_unit_test(test_alert_id_stable_and_record_shape),
        cmocka_unit_test(test_event_embedded_as_it_came),
        cmocka_unit_test(test_record_valid_with_odd_source),
        cmocka_unit_test(test_locate_also_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
