/*
 * test_event.c - cf_event_decode: flattening of the three event shapes
 * (flat OTRF, flat with Computer/Provider_Name, nested XML-as-JSON),
 * arrays, numbers kept as written, every reject reason, event time, the
 * SigmaHQ regression events and OTRF lines from the shared data, and a
 * mutation fuzz compared against jansson.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "event.h"
#include "event_fixture.h"
#include "shared_data.h"
#include "timeutil.h"

static void assert_leaf(const char *name, const char *value, int type) {
    const struct cf_event_field *f = leaf(name, 0);
    assert_string_equal(f->value, value);
    assert_int_equal(f->value_len, strlen(value));
    assert_int_equal(f->type, type);
    assert_int_equal(f->name_len, strlen(name));
    assert_int_equal(f->name_hash, cf_hash_name(name, strlen(name)));
}

static int64_t t(const char *s) {
    int64_t ms;
    assert_int_equal(cf_time_parse(s, strlen(s), &ms), CF_OK);
    return ms;
}

/* Every leaf of a fresh event carries its name's hash (the first key
 * sits at offset 0 of the buffers, where a stale cache would hide). */
static void test_fresh_event_hashes(void **state) {
    (void)state;
    struct cf_event fresh;
    const char *reason;
    const char line[] = "{\"SourceName\":\"x\",\"b\":[1,2],\"c\":{\"d\":1}}";
    cf_event_init(&fresh);
    assert_int_equal(
        cf_event_decode(dec, &fresh, line, sizeof line - 1, &limits, &reason),
        CF_OK);
    assert_int_equal(fresh.n_fields, 4);
    for (uint32_t i = 0; i < fresh.n_fields; i++)
        assert_int_equal(
            fresh.fields[i].name_hash,
            cf_hash_name(fresh.fields[i].name, fresh.fields[i].name_len));
    assert_int_equal(cf_event_find(&fresh, "SourceName", 10, 0), 0);
    assert_int_equal(cf_event_find(&fresh, "c.d", 3, 0), 3);
    cf_event_free(&fresh);
    cf_event_free(&fresh); /* freeing twice is harmless */
}

static void test_flat_otrf(void **state) {
    (void)state;
    decode_ok("{\"SourceName\":\"Microsoft-Windows-Sysmon\",\"Level\":\"4\","
              "\"Hostname\":\"MKT01.pandalab.com\","
              "\"TimeCreated\":\"2023-08-15T09:53:46.119Z\","
              "\"@timestamp\":\"2023-08-15T09:53:46.119Z\",\"EventID\":10,"
              "\"Message\":\"Process accessed:\\r\\nRuleName: -\","
              "\"UtcTime\":\"2023-08-16 04:53:46.060\","
              "\"SourceImage\":"
              "\"C:\\\\Windows\\\\System32\\\\VBoxService.exe\","
              "\"GrantedAccess\":\"0x1400\"}");
    assert_leaf("EventID", "10", CF_VALUE_NUMBER);
    assert_leaf("Hostname", "MKT01.pandalab.com", CF_VALUE_STRING);
    assert_leaf("SourceImage", "C:\\Windows\\System32\\VBoxService.exe",
                CF_VALUE_STRING);
    assert_leaf("Message", "Process accessed:\r\nRuleName: -", CF_VALUE_STRING);
    assert_leaf("GrantedAccess", "0x1400", CF_VALUE_STRING);
    assert_int_equal(ev.n_fields, 10);
    /* UtcTime wins over the (shifted) TimeCreated and @timestamp. */
    assert_int_equal(ev.time_ms, t("2023-08-16T04:53:46.060Z"));
    assert_int_equal(cf_event_find(&ev, "Nope", 4, 0), -1);
}

static void test_flat_computer_provider(void **state) {
    (void)state;
    decode_ok("{\"EventID\":4688,\"Provider_Name\":"
              "\"Microsoft-Windows-Security-Auditing\",\"Computer\":\"DC01\","
              "\"Channel\":\"Security\",\"NewProcessName\":\"C:\\\\x.exe\","
              "\"TimeCreated\":\"2023-01-02T03:04:05.678901Z\"}");
    assert_leaf("EventID", "4688", CF_VALUE_NUMBER);
    assert_leaf("Provider_Name", "Microsoft-Windows-Security-Auditing",
                CF_VALUE_STRING);
    assert_leaf("Computer", "DC01", CF_VALUE_STRING);
    assert_leaf("NewProcessName", "C:\\x.exe", CF_VALUE_STRING);
    assert_int_equal(ev.time_ms, t("2023-01-02T03:04:05.678Z"));
}

static const char nested[] =
    "{\n  \"Event\": {\n    \"#attributes\": {\n      \"xmlns\": "
    "\"http://schemas.microsoft.com/win/2004/08/events/event\"\n    },\n"
    "    \"System\": {\n      \"Provider\": {\n        \"#attributes\": {\n"
    "          \"Name\": \"Microsoft-Windows-Sysmon\",\n          \"Guid\": "
    "\"5770385F-C22A-43E0-BF4C-06F5698FFBD9\"\n        }\n      },\n"
    "      \"EventID\": 11,\n      \"Version\": 2,\n      \"Keywords\": "
    "\"0x8000000000000000\",\n      \"TimeCreated\": {\n        "
    "\"#attributes\": {\n          \"SystemTime\": "
    "\"2026-04-17T05:24:53.092051Z\"\n        }\n      },\n"
    "      \"Correlation\": null,\n      \"Execution\": {\n        "
    "\"#attributes\": {\n          \"ProcessID\": 3208,\n          "
    "\"ThreadID\": 1724\n        }\n      },\n      \"Channel\": "
    "\"Microsoft-Windows-Sysmon/Operational\",\n      \"Computer\": "
    "\"swachchhanda\",\n      \"Security\": {\n        \"#attributes\": {\n"
    "          \"UserID\": \"S-1-5-18\"\n        }\n      }\n    },\n"
    "    \"EventData\": {\n      \"RuleName\": \"EXE\",\n      \"UtcTime\": "
    "\"2026-04-17 05:24:53.079\",\n      \"ProcessId\": 15596,\n"
    "      \"Image\": \"C:\\\\Users\\\\xodih\\\\Downloads\\\\RedSun.exe\"\n"
    "    }\n  }\n}\n";

static void test_nested_regression_shape(void **state) {
    (void)state;
    decode_ok(nested);
    assert_leaf("EventID", "11", CF_VALUE_NUMBER);
    assert_leaf("Provider_Name", "Microsoft-Windows-Sysmon", CF_VALUE_STRING);
    assert_leaf("Provider_Guid", "5770385F-C22A-43E0-BF4C-06F5698FFBD9",
                CF_VALUE_STRING);
    assert_leaf("TimeCreated_SystemTime", "2026-04-17T05:24:53.092051Z",
                CF_VALUE_STRING);
    assert_leaf("Execution_ProcessID", "3208", CF_VALUE_NUMBER);
    assert_leaf("Security_UserID", "S-1-5-18", CF_VALUE_STRING);
    assert_leaf("Correlation", "", CF_VALUE_NULL);
    assert_leaf("Computer", "swachchhanda", CF_VALUE_STRING);
    assert_leaf("Channel", "Microsoft-Windows-Sysmon/Operational",
                CF_VALUE_STRING);
    assert_leaf("Image", "C:\\Users\\xodih\\Downloads\\RedSun.exe",
                CF_VALUE_STRING);
    assert_leaf("ProcessId", "15596", CF_VALUE_NUMBER);
    for (uint32_t i = 0; i < ev.n_fields; i++) {
        assert_null(strstr(ev.fields[i].name, "Event."));
        assert_null(strstr(ev.fields[i].name, "#"));
        assert_null(strstr(ev.fields[i].name, "xmlns"));
    }
    assert_int_equal(ev.time_ms, t("2026-04-17 05:24:53.079"));
}

static void test_eventdata_data_array(void **state) {
    (void)state;
    decode_ok("{\"Event\":{\"System\":{\"EventID\":{\"#text\":\"4624\","
              "\"#attributes\":{\"Qualifiers\":\"0\"}},\"TimeCreated\":"
              "{\"@SystemTime\":\"2024-05-01T10:00:00.000Z\"}},"
              "\"EventData\":{\"Data\":["
              "{\"@Name\":\"TargetUserName\",\"#text\":\"alice\"},"
              "{\"#text\":\"10\",\"#attributes\":{\"Name\":\"LogonType\"}},"
              "{\"@Name\":\"Empty\"},"
              "\"loose\"]}}}");
    assert_leaf("EventID", "4624", CF_VALUE_STRING);
    assert_leaf("EventID_Qualifiers", "0", CF_VALUE_STRING);
    assert_leaf("TimeCreated_SystemTime", "2024-05-01T10:00:00.000Z",
                CF_VALUE_STRING);
    assert_leaf("TargetUserName", "alice", CF_VALUE_STRING);
    assert_leaf("LogonType", "10", CF_VALUE_STRING);
    assert_leaf("Empty", "", CF_VALUE_STRING);
    assert_leaf("Data", "loose", CF_VALUE_STRING);
    assert_int_equal(ev.time_ms, t("2024-05-01T10:00:00Z"));
    /* An "Event" key that is not an XML rendering is just a name. */
    decode_ok("{\"Event\":{\"kind\":\"x\"},\"n\":1}");
    assert_leaf("Event.kind", "x", CF_VALUE_STRING);
}

/* Windows Defender names fields in words ("Source Name"); SigmaHQ rules
 * run the words together (SourceName).  Both names reach the value,
 * flat or nested, for every element of an array, and a name without a
 * space gains no second leaf. */
static void test_spaced_names(void **state) {
    (void)state;
    decode_ok("{\"EventID\":1116,\"Source Name\":\"AMSI\","
              "\"Threat Name\":\"Trojan:Win32/X\",\" \":\"blank\","
              "\"a b\":[\"1\",\"2\"],\"Process Name\":\"C:\\\\p.exe\"}");
    assert_leaf("Source Name", "AMSI", CF_VALUE_STRING);
    assert_leaf("SourceName", "AMSI", CF_VALUE_STRING);
    assert_leaf("ThreatName", "Trojan:Win32/X", CF_VALUE_STRING);
    assert_leaf("ProcessName", "C:\\p.exe", CF_VALUE_STRING);
    assert_leaf(" ", "blank", CF_VALUE_STRING);
    assert_string_equal(leaf("ab", 0)->value, "1");
    assert_string_equal(leaf("ab", 1)->value, "2");
    /* 6 leaves as written, 5 run together (not the all-blank name) */
    assert_int_equal(ev.n_fields, 12);
    decode_ok("{\"Event\":{\"System\":{\"EventID\":1116},"
              "\"EventData\":{\"Data\":["
              "{\"@Name\":\"Source Name\",\"#text\":\"AMSI\"},"
              "{\"@Name\":\"Detection User\",\"#text\":\"CORP\\\\alice\"}]}}}");
    assert_leaf("SourceName", "AMSI", CF_VALUE_STRING);
    assert_leaf("DetectionUser", "CORP\\alice", CF_VALUE_STRING);
    decode_ok("{\"EventID\":1,\"Image\":\"x\",\"ParentCommandLine\":\"y\","
              "\"TargetFilename_1\":\"z\",\"Details\\u0020\":\"w\"}");
    assert_int_equal(ev.n_fields, 6); /* only the last has a space */
    assert_leaf("Details", "w", CF_VALUE_STRING);
}

/* Every leaf's hash is its name's, whatever event came before: the
 * decoder reuses the last flat event's name hashes by position
 * (event.c, emit_member), so each event below follows one whose names
 * differ at a position in one byte, in length, in a space, or not at
 * all, in the 4..8, 8..16 and 16..32-byte compares and past them. */
static void assert_hashes(const char *line) {
    decode_ok(line);
    for (uint32_t i = 0; i < ev.n_fields; i++)
        if (ev.fields[i].name_hash !=
            cf_hash_name(ev.fields[i].name, ev.fields[i].name_len))
            fail_msg("stale hash of %s after: %.200s", ev.fields[i].name, line);
}

static void test_name_memo(void **state) {
    (void)state;
    static const char *seq[] = {
        "{\"Image\":\"a\",\"TargetFilename\":\"b\",\"Ab\":1,"
        "\"SourceProcessGuidX1234567890123\":2,\"Source Name\":\"x\"}",
        "{\"Image\":\"a\",\"TargetFilename\":\"b\",\"Ab\":1,"
        "\"SourceProcessGuidX1234567890123\":2,\"Source Name\":\"x\"}",
        "{\"Imagf\":\"a\",\"TargetFilenamf\":\"b\",\"Ac\":1,"
        "\"SourceProcessGuidX1234567890124\":2,\"Source_Name\":\"x\"}",
        "{\"Image\":\"a\",\"TargetFilename\":\"b\",\"Ab\":1,"
        "\"SourceProcessGuidX1234567890123\":2,\"Source Name\":\"x\"}",
        "{\"Imag\":\"a\",\"TargetFilenam\":\"b\",\"A\":1,"
        "\"SourceProcessGuidX123456789012\":2,\"SourceName\":\"x\"}",
        "{\"Image \":\"a\",\"TargetFilename1\":\"b\",\"Abc\":1,"
        "\"SourceProcessGuidX12345678901234567\":2,\"Source  Name\":1}",
        "{\"Image \":\"a\",\"TargetFilename1\":\"b\",\"Abc\":1,"
        "\"SourceProcessGuidX12345678901234567\":2,\"Source  Name\":1}",
        "{\"Image \":\"a\",\"TargetFilename1\":\"b\",\"Abc\":1,"
        "\"SourceProcessGuidX12345678901234568\":2,\"Source  Name\":1}",
    };
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++) assert_hashes(seq[i]);
    /* the spaced name, remembered as such, still gets its unspaced leaf */
    assert_leaf("SourceName", "1", CF_VALUE_NUMBER);
    assert_leaf("Image", "a", CF_VALUE_STRING);
    assert_int_equal(ev.n_fields, 7);
    /* a name with spaces after the same name without: none added */
    assert_hashes("{\"Image\":\"a\"}");
    assert_int_equal(ev.n_fields, 1);
}

/* The decoded event's time is what reading its fields afresh gives (the
 * decoder remembers the last text parsed per time field name, see
 * core/event_time.h). */
static void assert_time_afresh(void) {
    struct cf_event copy = ev;
    cf_event_read_time(&copy, NULL);
    assert_true(copy.time_ms == ev.time_ms);
    assert_true(copy.utc_ms == ev.utc_ms);
    assert_true(copy.stamp_ms == ev.stamp_ms);
    assert_int_equal(copy.time_role, ev.time_role);
}

/* Each event follows one whose time texts are the same, one byte off,
 * shorter, unusable, unparseable, too long to remember, or in another
 * field. */
static void test_time_memo(void **state) {
    (void)state;
    static const char *seq[] = {
        "{\"UtcTime\":\"2023-08-16 04:54:11.360\"}",
        "{\"UtcTime\":\"2023-08-16 04:54:11.360\"}",
        "{\"UtcTime\":\"2023-08-16 04:54:11.361\"}",
        "{\"UtcTime\":\"2023-08-16 04:54:11.36\"}",
        "{\"UtcTime\":\"2023-08-16 04:54:11.369\"}",
        "{\"UtcTime\":\"2023-08-16 04:54:11.36\"}",
        "{\"UtcTime\":\"2023-08-16 04:54:11.36 \"}",
        "{\"UtcTime\":\"1601-01-01 00:00:00.000\","
        "\"TimeCreated\":\"2023-08-15T09:54:11.556Z\"}",
        "{\"UtcTime\":\"1601-01-01 00:00:00.000\","
        "\"TimeCreated\":\"2023-08-15T09:54:11.556Z\"}",
        "{\"UtcTime\":\"x\",\"TimeCreated\":\"2023-08-15T09:54:11.556Z\"}",
        "{\"UtcTime\":\"x\"}",
        "{\"TimeCreated\":\"2023-08-16 04:54:11.360\","
        "\"UtcTime\":\"2023-08-15T09:54:11.556Z\"}",
        "{\"UtcTime\":\"2023-08-16T04:54:11.36012345678901234567Z\"}",
        "{\"UtcTime\":\"2023-08-16T04:54:11.36012345678901234567Z\"}",
        "{\"UtcTime\":\"2023-08-16T04:54:11.36012345678901234568Z\"}",
        "{\"UtcTime\":[\"x\",\"2023-08-16 04:54:11.360\"]}",
        "{\"UtcTime\":\"2023-08-16 04:54:11.360\",\"UtcTime\":\"x\"}",
        "{\"@timestamp\":\"2023-08-16T04:54:11.360+02:00\"}",
        "{\"@timestamp\":\"2023-08-16T04:54:11.360+02:00\"}",
        "{\"@timestamp\":\"2023-08-16T04:54:11.360+03:00\"}",
        /* an empty text, after nothing was kept for the slot (a text
         * too long to keep): no time, the next name is read */
        "{\"UtcTime\":\"\",\"@timestamp\":\"2024-05-01T10:00:00Z\"}",
        "{\"UtcTime\":\"2024-01-01 00:00:00.000\"}",
        "{\"UtcTime\":\"2023-08-16T04:54:11.36012345678901234567Z\"}",
        "{\"UtcTime\":\"\",\"@timestamp\":\"2024-05-01T10:00:00Z\"}",
        "{\"UtcTime\":\"\",\"@timestamp\":\"2024-05-01T10:00:00Z\"}",
        "{\"@timestamp\":\"2023-08-16T04:54:11.360+03:00\"}",
    };
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++) {
        decode_ok(seq[i]);
        assert_time_afresh();
    }
    assert_true(ev.time_ms == t("2023-08-16T01:54:11.360Z"));
}

static void test_arrays_and_nesting(void **state) {
    (void)state;
    decode_ok("{\"tags\":[\"a\",\"b\",3,true,null],\"empty\":[],\"eo\":{},"
              "\"userIdentity\":{\"arn\":\"arn:aws:iam::1:user/x\","
              "\"sessionContext\":{\"mfa\":false}},"
              "\"res\":[{\"id\":\"r1\",\"k\":[1,2]},{\"id\":\"r2\"}],"
              "\"mat\":[[1,2],[3]]}");
    assert_int_equal(count("tags"), 5);
    assert_string_equal(leaf("tags", 0)->value, "a");
    assert_string_equal(leaf("tags", 1)->value, "b");
    assert_int_equal(leaf("tags", 2)->type, CF_VALUE_NUMBER);
    assert_string_equal(leaf("tags", 3)->value, "true");
    assert_int_equal(leaf("tags", 3)->type, CF_VALUE_BOOL);
    assert_int_equal(leaf("tags", 4)->type, CF_VALUE_NULL);
    assert_int_equal(leaf("tags", 4)->value_len, 0);
    assert_int_equal(count("empty"), 0);
    assert_int_equal(count("eo"), 0);
    assert_leaf("userIdentity.arn", "arn:aws:iam::1:user/x", CF_VALUE_STRING);
    assert_leaf("userIdentity.sessionContext.mfa", "false", CF_VALUE_BOOL);
    assert_int_equal(count("res.id"), 2);
    assert_string_equal(leaf("res.id", 1)->value, "r2");
    assert_int_equal(count("res.k"), 2);
    assert_int_equal(count("mat"), 3);
    assert_string_equal(leaf("mat", 2)->value, "3");
    /* Leaves of one array are adjacent and share the name storage. */
    int i = cf_event_find(&ev, "tags", 4, 0);
    assert_ptr_equal(ev.fields[i].name, ev.fields[i + 1].name);
}

static void test_numbers_as_written(void **state) {
    (void)state;
    decode_ok("{\"a\":4688,\"b\":1.50,\"c\":1e3,\"d\":-0,\"e\":"
              "123456789012345678901234567890,\"f\":2.5E-10 ,\"g\":0.0}");
    assert_leaf("a", "4688", CF_VALUE_NUMBER);
    assert_leaf("b", "1.50", CF_VALUE_NUMBER);
    assert_leaf("c", "1e3", CF_VALUE_NUMBER);
    assert_leaf("d", "-0", CF_VALUE_NUMBER);
    assert_leaf("e", "123456789012345678901234567890", CF_VALUE_NUMBER);
    assert_leaf("f", "2.5E-10", CF_VALUE_NUMBER);
    assert_leaf("g", "0.0", CF_VALUE_NUMBER);
}

static void test_string_escapes(void **state) {
    (void)state;
    decode_ok("{\"k\\u00e9y\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\/\","
              "\"nul\":\"a\\u0000b\",\"raw\":\"\xc3\xa9\xe2\x82\xac\"}");
    assert_leaf("k\xc3\xa9y", "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" /",
                CF_VALUE_STRING);
    const struct cf_event_field *f = leaf("nul", 0);
    assert_int_equal(f->value_len, 3);
    assert_memory_equal(f->value, "a\0b", 4);
    assert_leaf("raw", "\xc3\xa9\xe2\x82\xac", CF_VALUE_STRING);
}

static void expect_reject(const char *line, size_t len,
                          const struct cf_decode_limits *lim,
                          const char *want) {
    const char *reason = NULL;
    cf_err_t rc = cf_event_decode(dec, &ev, line, len, lim, &reason);
    if (rc == CF_OK) fail_msg("accepted: %.100s", line);
    assert_true(rc < 0);
    assert_non_null(reason);
    if (strcmp(reason, want) != 0)
        fail_msg("%.100s: got \"%s\", want \"%s\"", line, reason, want);
    assert_int_equal(ev.n_fields, 0);
}

#define REJECT(lit, why) expect_reject(lit, sizeof(lit) - 1, &limits, why)

static void test_reject_reasons(void **state) {
    (void)state;
    REJECT("{\"a\":1,}", "invalid JSON");
    REJECT("{\"a\" 1}", "invalid JSON");
    REJECT("{\"a\":tru}", "invalid JSON");
    REJECT("{\"a\":nul}", "invalid JSON");
    REJECT("{\"a\":01}", "invalid JSON");
    REJECT("{\"a\":1.}", "invalid JSON");
    REJECT("{\"a\":--1}", "invalid JSON");
    REJECT("{\"a\":\"\\x\"}", "invalid JSON");
    REJECT("{\"a\":\"\\ud800\"}", "invalid JSON");
    REJECT("{\"a\":1} x", "invalid JSON");
    REJECT("{\"a\":1}{\"b\":2}", "invalid JSON");
    REJECT("{\"a\":1}}", "invalid JSON");
    REJECT("{a:1}", "invalid JSON");
    REJECT("{\"a\":1:2}", "invalid JSON");
    REJECT("{\"a\":1 2}", "invalid JSON");
    REJECT("{\"a\":\"b\":\"c\"}", "invalid JSON");
    REJECT("{\"a\":true:1}", "invalid JSON");
    REJECT("{\"a\":null \"x\"}", "invalid JSON");
    REJECT("{\"a\":[1:2]}", "invalid JSON");
    REJECT("{\"a\":1e400:2}", "invalid JSON");
    REJECT("", "invalid JSON");
    REJECT("   ", "invalid JSON");
    REJECT("{\"a\":\"x\ty\"}", "invalid JSON");
    REJECT("{\"a\":[1,2}", "invalid JSON");
    REJECT("{\"a\":1", "truncated JSON");
    REJECT("{\"a\":{\"b\":[1,2", "truncated JSON");
    REJECT("{\"a\":\"abc", "truncated JSON");
    REJECT("{\"a\":", "truncated JSON");
    REJECT("{", "truncated JSON");
    REJECT("{\"a\":\"\xff\"}", "invalid UTF-8");
    REJECT("{\"a\":\"\xc3\x28\"}", "invalid UTF-8");
    REJECT("{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8");
    REJECT("[1,2]", "not a JSON object");
    REJECT("\"s\"", "not a JSON object");
    REJECT("42", "not a JSON object");
    REJECT("null", "not a JSON object");

    struct cf_decode_limits small = {16, 3};
    expect_reject("{\"aaaaaaaa\":\"bbbbbbbbbbbbb\"}", 27, &small,
                  "line exceeds max_line_bytes");
    small.max_line_bytes = 1000;
    expect_reject("{\"a\":{\"b\":{\"c\":{}}}}", 20, &small,
                  "nesting exceeds max_depth");
    expect_reject("{\"a\":[[[1]]]}", 13, &small, "nesting exceeds max_depth");
    {
        const char *reason;
        assert_int_equal(
            cf_event_decode(dec, &ev, "{\"a\":{\"b\":1}}", 13, &small, &reason),
            CF_OK);
    }
    /* Deep nesting with the default limit: rejected, not a crash. */
    char deep[4000];
    size_t n = 0;
    deep[n++] = '{';
    deep[n++] = '"';
    deep[n++] = 'a';
    deep[n++] = '"';
    deep[n++] = ':';
    for (int i = 0; i < 1500; i++) deep[n++] = '[';
    for (int i = 0; i < 1500; i++) deep[n++] = ']';
    deep[n++] = '}';
    expect_reject(deep, n, &limits, "nesting exceeds max_depth");
    /* The event is usable again after a reject. */
    decode_ok("{\"ok\":1}");
    assert_leaf("ok", "1", CF_VALUE_NUMBER);
}

static void test_time_fields(void **state) {
    (void)state;
    decode_ok("{\"eventTime\":\"2021-03-04T05:06:07Z\",\"eventName\":"
              "\"ConsoleLogin\"}");
    assert_int_equal(ev.time_ms, t("2021-03-04T05:06:07Z"));
    decode_ok("{\"@timestamp\":\"2021-03-04T05:06:07.5+02:00\","
              "\"TimeCreated\":\"garbage\"}");
    assert_int_equal(ev.time_ms, t("2021-03-04T03:06:07.500Z"));
    decode_ok("{\"time\":1692161671}");
    assert_int_equal(ev.time_ms, 1692161671000LL);
    decode_ok("{\"_time\":\"1692161671123\"}");
    assert_int_equal(ev.time_ms, 1692161671123LL);
    decode_ok("{\"EventTime\":\"2020-01-01 00:00:00\"}");
    assert_int_equal(ev.time_ms, t("2020-01-01T00:00:00Z"));
    decode_ok("{\"x\":\"2020-01-01 00:00:00\",\"time\":null}");
    assert_int_equal(ev.time_ms, CF_TIME_UNKNOWN);
    assert_int_equal(cf_event_extract_time(&ev), CF_TIME_UNKNOWN);
}

/* Pointers must survive the event's buffers growing mid-decode. */
static void test_buffers_grow(void **state) {
    (void)state;
    size_t cap = 600000;
    char *big = malloc(cap);
    size_t n = 0;
    assert_non_null(big);
    n += (size_t)snprintf(big + n, cap - n, "{\"first\":\"v\",\"arr\":[");
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s\"value-%d\"", i ? "," : "",
                              i);
    n += (size_t)snprintf(big + n, cap - n, "],\"last\":\"z\"}");
    const char *reason;
    assert_int_equal(cf_event_decode(dec, &ev, big, n, &limits, &reason),
                     CF_OK);
    assert_int_equal(ev.n_fields, 20002);
    assert_leaf("first", "v", CF_VALUE_STRING);
    assert_leaf("last", "z", CF_VALUE_STRING);
    assert_string_equal(leaf("arr", 19999)->value, "value-19999");
    assert_ptr_equal(ev.raw, big);
    free(big);
    decode_ok("{\"small\":true}");
    assert_int_equal(ev.n_fields, 1);
}

/* Random and mutated lines: never crash (run under ASan/UBSan), and
 * accept exactly what jansson accepts, apart from number range (jansson
 * refuses integers beyond 64 bits, which events may well carry). */
static void test_fuzz_against_jansson(void **state) {
    (void)state;
    static const char *seeds[] = {
        "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\\u00e9\\n\"}}",
        "{\"Event\":{\"System\":{\"EventID\":1,\"Provider\":{\"#attributes\":"
        "{\"Name\":\"P\"}}},\"EventData\":{\"Data\":[{\"@Name\":\"X\","
        "\"#text\":\"y\"}]}}}",
        "{\"k\":-1.5e+3,\"s\":\"\\ud83d\\ude00\",\"z\":[[],{},[{}]]}",
    };
    static const char alphabet[] = "{}[]\":,\\ntrufalse0123456789.-+eE \t"
                                   "\x80\xc3\xa9\xff\x00u";
    unsigned seed = 12345;
    char buf[256];
    int accepted = 0, mismatches = 0;
    for (int iter = 0; iter < 30000; iter++) {
        const char *s = seeds[iter % CF_ARRAY_LEN(seeds)];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int muts = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 4;
        for (int m = 0; m < muts; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % (n ? n : 1);
            char c = alphabet[(seed >> 20) % (sizeof alphabet - 1)];
            switch ((seed >> 4) % 3) {
            case 0: buf[pos] = c; break;
            case 1:
                if (n < sizeof buf - 1) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = c;
                    n++;
                }
                break;
            default:
                if (n > 1) {
                    memmove(buf + pos, buf + pos + 1, n - pos - 1);
                    n--;
                }
            }
        }
        const char *reason = NULL;
        cf_err_t rc = cf_event_decode(dec, &ev, buf, n, &limits, &reason);
        /* jansson takes a raw NUL outside strings for the end of the
         * text; it is not JSON, so only lines without one compare. */
        bool has_nul = memchr(buf, '\0', n) != NULL;
        json_error_t jerr;
        json_t *j = json_loadb(buf, n, JSON_ALLOW_NUL, &jerr);
        bool jok = j && json_is_object(j);
        bool range = !j && (strstr(jerr.text, "too big") ||
                            strstr(jerr.text, "overflow"));
        json_decref(j);
        if (rc == CF_OK) {
            accepted++;
            for (uint32_t i = 0; i < ev.n_fields; i++) {
                assert_int_equal(
                    ev.fields[i].name_hash,
                    cf_hash_name(ev.fields[i].name, ev.fields[i].name_len));
                assert_int_equal(ev.fields[i].name[ev.fields[i].name_len], 0);
                assert_int_equal(ev.fields[i].value[ev.fields[i].value_len], 0);
            }
        } else {
            assert_non_null(reason);
        }
        if ((rc == CF_OK) != jok && !range && !has_nul) {
            if (mismatches++ < 5) {
                fprintf(stderr, "mismatch: ours %s, jansson %s (%s): ",
                        rc == CF_OK ? "ok" : reason, jok ? "ok" : "error",
                        j ? "" : jerr.text);
                for (size_t k = 0; k < n; k++)
                    fprintf(stderr,
                            (unsigned char)buf[k] < 0x20 ||
                                    (unsigned char)buf[k] > 0x7e
                                ? "\\x%02x"
                                : "%c",
                            (unsigned char)buf[k]);
                fputc('\n', stderr);
            }
        }
    }
    fprintf(stderr, "fuzz: 30000 lines, %d accepted, %d mismatches\n", accepted,
            mismatches);
    assert_true(accepted > 100);
    assert_int_equal(mismatches, 0);
}

static char *read_whole(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static int walk_regression(const char *dir, int *files, int *with_time) {
    DIR *d = opendir(dir);
    struct dirent *de;
    int failures = 0;
    if (!d) return 0;
    while ((de = readdir(d))) {
        char path[4096];
        struct stat stbuf;
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &stbuf) != 0) continue;
        if (S_ISDIR(stbuf.st_mode)) {
            failures += walk_regression(path, files, with_time);
            continue;
        }
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 5, ".json") != 0) continue;
        size_t n;
        char *text = read_whole(path, &n);
        const char *reason = NULL;
        if (!text) continue;
        /* Some files hold several pretty-printed events one after the
         * other: each starts with '{' at the start of a line. */
        for (size_t start = 0, end; start < n; start = end) {
            for (end = start + 1; end < n; end++)
                if (text[end] == '{' && text[end - 1] == '\n') break;
            (*files)++;
            if (cf_event_decode(dec, &ev, text + start, end - start, &limits,
                                &reason) != CF_OK) {
                fprintf(stderr, "%s: %s\n", path, reason);
                failures++;
            } else {
                if (cf_event_find(&ev, "EventID", 7, 0) < 0 &&
                    cf_event_find(&ev, "eventName", 9, 0) < 0) {
                    fprintf(stderr, "%s: no EventID after folding\n", path);
                    failures++;
                }
                for (uint32_t i = 0; i < ev.n_fields; i++)
                    if (strncmp(ev.fields[i].name, "Event.", 6) == 0) {
                        fprintf(stderr, "%s: unfolded %s\n", path,
                                ev.fields[i].name);
                        failures++;
                        break;
                    }
                if (ev.time_ms != CF_TIME_UNKNOWN) (*with_time)++;
            }
        }
        free(text);
    }
    closedir(d);
    return failures;
}

static void test_sigma_regression_events(void **state) {
    (void)state;
    const char *shared = getenv("CF_SHARED_DIR");
    char dir[4096];
    int files = 0, with_time = 0;
    if (!shared) {
        if (cf_test_shared_missing("SigmaHQ regression events") == 77) skip();
        fail();
    }
    snprintf(dir, sizeof dir, "%s/data/sigma/regression_data", shared);
    int failures = walk_regression(dir, &files, &with_time);
    if (files == 0) {
        if (cf_test_shared_missing(dir) == 77) skip();
        fail();
    }
    fprintf(stderr, "regression events: %d events, %d with time, %d failures\n",
            files, with_time, failures);
    assert_int_equal(failures, 0);
    assert_int_equal(with_time, files);
}

static void test_otrf_lines(void **state) {
    (void)state;
    const char *shared = getenv("CF_SHARED_DIR");
    char cmd[4200];
    if (!shared) {
        if (cf_test_shared_missing("OTRF LSASS dataset") == 77) skip();
        fail();
    }
    snprintf(cmd, sizeof cmd,
             "unzip -p '%s/data/otrf/datasets/compound/LSASS_campaign_01/"
             "metasploit_logonpasswords_lsass_memory_dump.zip' 2>/dev/null",
             shared);
    FILE *p = popen(cmd, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lines = 0, ok = 0, timed = 0, sysmon = 0, utc_wins = 0;
    assert_non_null(p);
    while (lines < 5000 && (n = getline(&line, &cap, p)) > 0) {
        const char *reason;
        lines++;
        if (cf_event_decode(dec, &ev, line, (size_t)n, &limits, &reason) !=
            CF_OK) {
            fprintf(stderr, "line %d: %s\n", lines, reason);
            continue;
        }
        ok++;
        for (uint32_t i = 0; i < ev.n_fields; i++)
            assert_int_equal(
                ev.fields[i].name_hash,
                cf_hash_name(ev.fields[i].name, ev.fields[i].name_len));
        assert_time_afresh();
        if (ev.time_ms != CF_TIME_UNKNOWN) timed++;
        int u = cf_event_find(&ev, "UtcTime", 7, 0);
        if (u >= 0) {
            int64_t ms;
            sysmon++;
            if (cf_time_parse(ev.fields[u].value, ev.fields[u].value_len,
                              &ms) == CF_OK &&
                ms == ev.time_ms)
                utc_wins++;
        }
    }
    free(line);
    pclose(p);
    if (lines == 0) {
        if (cf_test_shared_missing("OTRF LSASS dataset") == 77) skip();
        fail();
    }
    fprintf(stderr, "OTRF: %d lines, %d decoded, %d with time, %d sysmon\n",
            lines, ok, timed, sysmon);
    assert_int_equal(ok, lines);
    assert_int_equal(timed, lines);
    assert_true(sysmon > 0);
    assert_int_equal(utc_wins, sysmon);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_event_hashes),
        cmocka_unit_test(test_flat_otrf),
        cmocka_unit_test(test_flat_computer_provider),
        cmocka_unit_test(test_nested_regression_shape),
        cmocka_unit_test(test_eventdata_data_array),
        cmocka_unit_test(test_spaced_names),
        cmocka_unit_test(test_name_memo),
        cmocka_unit_test(test_time_memo),
        cmocka_unit_test(test_arrays_and_nesting),
        cmocka_unit_test(test_numbers_as_written),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_reject_reasons),
        cmocka_unit_test(test_time_fields),
        cmocka_unit_test(test_buffers_grow),
        cmocka_unit_test(test_fuzz_against_jansson),
        cmocka_unit_test(test_sigma_regression_events),
        cmocka_unit_test(test_otrf_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
