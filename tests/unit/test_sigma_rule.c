/*
 * test_sigma_rule.c - the Sigma rule loader on hand-written documents:
 * value escapes, every modifier (checking the produced bytes, wildcard
 * masks and alternatives exactly), search shapes, metadata and tags, the
 * digest, multi-document files, filters, and the rejections with their
 * reasons.  Goes through the public API (cf_rulebook_load on a temporary
 * file).
 */
/* cmocka needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sigma.h"
#include "yaml_json.h"

static char tmp_path[64];

static struct cf_rulebook *load_yaml(const char *yaml,
                                     const struct cf_config *cfg) {
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/cf_sigma_rule_XXXXXX");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    size_t len = strlen(yaml);
    assert_int_equal(write(fd, yaml, len), (ssize_t)len);
    close(fd);
    struct cf_rulebook *rb = cf_rulebook_new();
    char err[512];
    assert_non_null(rb);
    assert_int_equal(cf_rulebook_load(rb, tmp_path, cfg, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_rulebook_finish(rb, err, sizeof(err)), CF_OK);
    unlink(tmp_path);
    return rb;
}

/* A rule whose only search `sel` is `key: value` (value in YAML). */
static struct cf_rulebook *one_field(const char *key, const char *value,
                                     const struct cf_config *cfg) {
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "title: t\nid: r1\nlogsource: {product: windows}\n"
             "detection:\n  sel:\n    %s: %s\n  condition: sel\n",
             key, value);
    return load_yaml(yaml, cfg);
}

static const struct cf_sigma_field_cond *only_cond(struct cf_rulebook *rb) {
    if (rb->n_rules != 1)
        fail_msg("rule rejected: %s",
                 rb->n_rejected ? rb->rejected[0].reason : "?");
    const struct cf_sigma_rule *r = rb->rules[0];
    assert_int_equal(r->n_searches, 1);
    assert_int_equal(r->searches[0].n_alts, 1);
    assert_int_equal(r->searches[0].alts[0].n_conds, 1);
    return &r->searches[0].alts[0].conds[0];
}

/* A glob with exactly these bytes; `mask` has '.' for literal bytes and
 * '*'/'?' for wildcards, one character per byte. */
static void expect_glob(const struct cf_sigma_pattern *p, const char *bytes,
                        size_t len, const char *mask) {
    assert_int_equal(p->kind, CF_PATTERN_GLOB);
    if (p->len != len || memcmp(p->text, bytes, len) != 0)
        fail_msg("pattern text '%.*s' (%zu bytes), want '%.*s' (%zu)",
                 (int)p->len, p->text, p->len, (int)len, bytes, len);
    assert_int_equal(strlen(mask), len);
    for (size_t i = 0; i < len; i++) {
        unsigned char want = mask[i] == '.' ? 0 : (unsigned char)mask[i];
        if (p->wild[i] != want)
            fail_msg("wild[%zu] = %d, want %d (pattern '%.*s')", i, p->wild[i],
                     want, (int)len, p->text);
    }
}

#define GLOB(p, s, mask) expect_glob((p), (s), sizeof(s) - 1, (mask))

/* The rule must be rejected with a reason containing `want`. */
static void expect_reject(struct cf_rulebook *rb, const char *want) {
    assert_int_equal(rb->n_rules, 0);
    assert_int_equal(rb->n_rejected, 1);
    if (!strstr(rb->rejected[0].reason, want))
        fail_msg("reason '%s' does not contain '%s'", rb->rejected[0].reason,
                 want);
    cf_rulebook_destroy(rb);
}

static void test_escapes_and_wildcards(void **state) {
    (void)state;
    struct cf_rulebook *rb = one_field(
        "Image",
        "['C:\\Windows\\*', 'a\\\\*', 'a\\\\\\*', '\\\\\\\\srv', 'a?b', "
        "'\\?', 'x*y', 'end\\']",
        NULL);
    const struct cf_sigma_field_cond *fc = only_cond(rb);
    assert_string_equal(fc->field, "Image");
    assert_int_equal(fc->n_values, 8);
    /* \W stays a backslash, \* is a literal star */
    GLOB(&fc->values[0].alts[0], "C:\\Windows*", "...........");
    /* \\ is one backslash, then a wildcard */
    GLOB(&fc->values[1].alts[0], "a\\*", "..*");
    /* \\\* : backslash, literal star */
    GLOB(&fc->values[2].alts[0], "a\\*", "...");
    /* \\\\ : two backslashes */
    GLOB(&fc->values[3].alts[0], "\\\\srv", ".....");
    GLOB(&fc->values[4].alts[0], "a?b", ".?.");
    GLOB(&fc->values[5].alts[0], "?", ".");
    GLOB(&fc->values[6].alts[0], "x*y", ".*.");
    GLOB(&fc->values[7].alts[0], "end\\", "....");
    for (size_t i = 0; i < fc->n_values; i++) {
        assert_int_equal(fc->values[i].n_alts, 1);
        assert_int_equal(fc->values[i].alts[0].flags, 0); /* caseless */
    }
    assert_false(fc->all);
    assert_false(fc->negate);
    cf_rulebook_destroy(rb);
}

static void test_scalar_types(void **state) {
    (void)state;
    struct cf_rulebook *rb = one_field(
        "EventID", "[4688, true, 1.5, null, '', '0x10', -3, 10.0]", NULL);
    const struct cf_sigma_field_cond *fc = only_cond(rb);
    assert_int_equal(fc->n_values, 8);
    GLOB(&fc->values[0].alts[0], "4688", "....");
    GLOB(&fc->values[1].alts[0], "true", "....");
    GLOB(&fc->values[2].alts[0], "1.5", "...");
    assert_int_equal(fc->values[3].alts[0].kind, CF_PATTERN_NULL);
    GLOB(&fc->values[4].alts[0], "", "");
    GLOB(&fc->values[5].alts[0], "0x10", "....");
    GLOB(&fc->values[6].alts[0], "-3", "..");
    GLOB(&fc->values[7].alts[0], "10.0", "...."); /* as pySigma prints */
    cf_rulebook_destroy(rb);
}

static void test_contains_startswith_endswith(void **state) {
    (void)state;
    struct cf_rulebook *rb =
        one_field("CommandLine|contains", "['foo', '*bar', 'baz*', '']", NULL);
    const struct cf_sigma_field_cond *fc = only_cond(rb);
    GLOB(&fc->values[0].alts[0], "*foo*", "*...*");
    GLOB(&fc->values[1].alts[0], "*bar*", "*...*"); /* no double star */
    GLOB(&fc->values[2].alts[0], "*baz*", "*...*");
    GLOB(&fc->values[3].alts[0], "*", "*"); /* '' contains: one star */
    cf_rulebook_destroy(rb);

    rb = one_field("Image|endswith", "'\\cmd.exe'", NULL);
    GLOB(&only_cond(rb)->values[0].alts[0], "*\\cmd.exe", "*........");
    cf_rulebook_destroy(rb);
    rb = one_field("Image|startswith", "'C:\\Users\\'", NULL);
    GLOB(&only_cond(rb)->values[0].alts[0], "C:\\Users\\*", ".........*");
    cf_rulebook_destroy(rb);
}

static void test_all_cased_neq_exists(void **state) {
    (void)state;
    struct cf_rulebook *rb =
        one_field("CommandLine|contains|all", "['a', 'b']", NULL);
    const struct cf_sigma_field_cond *fc = only_cond(rb);
    assert_true(fc->all);
    assert_int_equal(fc->n_values, 2);
    GLOB(&fc->values[1].alts[0], "*b*", "*.*");
    cf_rulebook_destroy(rb);

    rb = one_field("Image|cased|endswith", "'\\Evil.exe'", NULL);
    fc = only_cond(rb);
    GLOB(&fc->values[0].alts[0], "*\\Evil.exe", "*.........");
    assert_int_equal(fc->values[0].alts[0].flags, CF_PAT_CASED);
    cf_rulebook_destroy(rb);

    rb = one_field("User|neq", "'SYSTEM'", NULL);
    fc = only_cond(rb);
    assert_true(fc->negate);
    GLOB(&fc->values[0].alts[0], "SYSTEM", "......");
    cf_rulebook_destroy(rb);

    rb = one_field("ParentImage|exists", "false", NULL);
    fc = only_cond(rb);
    assert_int_equal(fc->values[0].alts[0].kind, CF_PATTERN_EXISTS);
    assert_false(fc->values[0].alts[0].exists);
    cf_rulebook_destroy(rb);
    rb = one_field("ParentImage|exists", "true", NULL);
    assert_true(only_cond(rb)->values[0].alts[0].exists);
    cf_rulebook_destroy(rb);
    expect_reject(one_field("ParentImage|exists", "'yes'", NULL),
                  "|exists needs true or false");
    expect_reject(one_field("ParentImage|exists|contains", "true", NULL),
                  "modifier 'contains' cannot be combined with 'exists'");
}

static void test_windash(void **state) {
    (void)state;
    struct cf_rulebook *rb =
        one_field("CommandLine|windash|contains", "' -enc '", NULL);
    const struct cf_sigma_field_cond *fc = only_cond(rb);
    assert_int_equal(fc->n_values, 1);
    assert_int_equal(fc->values[0].n_alts, 5);
    GLOB(&fc->values[0].alts[0], "* -enc *", "*......*");
    GLOB(&fc->values[0].alts[1], "* /enc *", "*......*");
    GLOB(&fc->values[0].alts[2],
         "* \xE2\x80\x93"
         "enc *",
         "*........*");
    GLOB(&fc->values[0].alts[3],
         "* \xE2\x80\x94"
         "enc *",
         "*........*");
    GLOB(&fc->values[0].alts[4],
         "* \xE2\x80\x95"
         "enc *",
         "*........*");
    cf_rulebook_destroy(rb);

    /* two flags: 25 permutations, each position independent */
    rb = one_field("CommandLine|windash", "'-a /b'", NULL);
    fc = only_cond(rb);
    assert_int_equal(fc->values[0].n_alts, 25);
    GLOB(&fc->values[0].alts[0], "-a -b", ".....");
    GLOB(&fc->values[0].alts[1], "/a -b", ".....");
    GLOB(&fc->values[0].alts[5], "-a /b", ".....");
    GLOB(&fc->values[0].alts[6], "/a /b", ".....");
    cf_rulebook_destroy(rb);

    /* pySigma's \B[-/]\b: a dash inside a word or before a space is not a
     * flag, and is left alone */
    rb = one_field("CommandLine|windash", "'foo-bar - x'", NULL);
    fc = only_cond(rb);
    assert_int_equal(fc->values[0].n_alts, 1);
    GLOB(&fc->values[0].alts[0], "foo-bar - x", "...........");
    cf_rulebook_destroy(rb);

    /* too many flags: rejected rather than thousands of patterns */
    expect_reject(one_field("CommandLine|windash", "'-a -b -c -d -e'", NULL),
                  "alternatives");
}

static void test_regex(void **state) {
    (void)state;
    struct cf_rulebook *rb = one_field(
        "CommandLine|re", "'\\s-e(nc)?\\s+[A-Za-z0-9+/=]{20,}'", NULL);
    const struct cf_sigma_field_cond *fc = only_cond(rb);
    const struct cf_sigma_pattern *p = &fc->values[0].alts[0];
    assert_int_equal(p->kind, CF_PATTERN_REGEX);
    /* no glob processing: backslashes and stars reach the regex as is */
    assert_string_equal((char *)p->text, "\\s-e(nc)?\\s+[A-Za-z0-9+/=]{20,}");
    assert_int_equal(p->flags, 0);
    cf_rulebook_destroy(rb);

    rb = one_field("CommandLine|re|i|m|s", "'^a.*b$'", NULL);
    p = &only_cond(rb)->values[0].alts[0];
    assert_int_equal(p->flags, CF_PAT_RE_I | CF_PAT_RE_M | CF_PAT_RE_S);
    cf_rulebook_destroy(rb);

    expect_reject(one_field("CommandLine|re", "'a(b'", NULL),
                  "invalid regular expression");
    expect_reject(one_field("CommandLine|i", "'a'", NULL),
                  "need 're' before them");
    expect_reject(one_field("CommandLine|re|base64", "'a'", NULL),
                  "modifier 'base64' cannot be combined with 're'");
}

static void test_base64(void **state) {
    (void)state;
    struct cf_rulebook *rb = one_field("Data|base64", "'abc'", NULL);
    GLOB(&only_cond(rb)->values[0].alts[0], "YWJj", "....");
    cf_rulebook_destroy(rb);
    rb = one_field("Data|base64|contains", "'ab'", NULL);
    GLOB(&only_cond(rb)->values[0].alts[0], "*YWI=*", "*....*");
    cf_rulebook_destroy(rb);

    /* pySigma's test vector for base64offset */
    rb = one_field("CommandLine|base64offset|contains", "'/bin/bash'", NULL);
    const struct cf_sigma_field_cond *fc = only_cond(rb);
    assert_int_equal(fc->values[0].n_alts, 3);
    GLOB(&fc->values[0].alts[0], "*L2Jpbi9iYXNo*", "*............*");
    GLOB(&fc->values[0].alts[1], "*9iaW4vYmFza*", "*...........*");
    GLOB(&fc->values[0].alts[2], "*vYmluL2Jhc2*", "*...........*");
    cf_rulebook_destroy(rb);

    expect_reject(one_field("CommandLine|contains|base64", "'abc'", NULL),
                  "cannot encode wildcards");
}

static void test_utf16(void **state) {
    (void)state;
    struct cf_rulebook *rb = one_field("Data|utf16le", "'cmd'", NULL);
    expect_glob(&only_cond(rb)->values[0].alts[0], "c\0m\0d\0", 6, "......");
    cf_rulebook_destroy(rb);
    rb = one_field("Data|wide", "'cmd'", NULL);
    expect_glob(&only_cond(rb)->values[0].alts[0], "c\0m\0d\0", 6, "......");
    cf_rulebook_destroy(rb);
    rb = one_field("Data|utf16be", "'cmd'", NULL);
    expect_glob(&only_cond(rb)->values[0].alts[0], "\0c\0m\0d", 6, "......");
    cf_rulebook_destroy(rb);
    rb = one_field("Data|utf16", "'cmd'", NULL);
    expect_glob(&only_cond(rb)->values[0].alts[0],
                "\xFF\xFE"
                "c\0m\0d\0",
                8, "........");
    cf_rulebook_destroy(rb);
    /* non-ASCII: U+00E9 is E9 00 in UTF-16LE */
    rb = one_field("Data|utf16le", "'\xC3\xA9'", NULL);
    expect_glob(&only_cond(rb)->values[0].alts[0], "\xE9\0", 2, "..");
    cf_rulebook_destroy(rb);
    /* wildcards survive the transform */
    rb = one_field("Data|utf16le|contains", "'a'", NULL);
    expect_glob(&only_cond(rb)->values[0].alts[0], "*a\0*", 4, "*..*");
    cf_rulebook_destroy(rb);

    /* the usual SigmaHQ chain: wide|base64offset|contains */
    rb = one_field("CommandLine|wide|base64offset|contains", "'ping'", NULL);
    const struct cf_sigma_field_cond *fc = only_cond(rb);
    assert_int_equal(fc->values[0].n_alts, 3);
    GLOB(&fc->values[0].alts[0], "*cABpAG4AZw*", "*..........*");
    GLOB(&fc->values[0].alts[1], "*AAaQBuAGcA*", "*..........*");
    GLOB(&fc->values[0].alts[2], "*wAGkAbgBnA*", "*..........*");
    cf_rulebook_destroy(rb);
}

static void test_numeric_and_time(void **state) {
    (void)state;
    struct cf_rulebook *rb = one_field("Size|gte", "1024", NULL);
    const struct cf_sigma_pattern *p = &only_cond(rb)->values[0].alts[0];
    assert_int_equal(p->kind, CF_PATTERN_NUMBER);
    assert_int_equal(p->op, CF_CMP_GTE);
    assert_true(p->number == 1024.0);
    cf_rulebook_destroy(rb);
    rb = one_field("Size|lt", "0.5", NULL);
    p = &only_cond(rb)->values[0].alts[0];
    assert_int_equal(p->op, CF_CMP_LT);
    assert_true(p->number == 0.5);
    cf_rulebook_destroy(rb);
    rb = one_field("Size|lte", "[1, 2]", NULL);
    assert_int_equal(only_cond(rb)->values[1].alts[0].op, CF_CMP_LTE);
    cf_rulebook_destroy(rb);
    rb = one_field("Size|gt", "-1", NULL);
    assert_int_equal(only_cond(rb)->values[0].alts[0].op, CF_CMP_GT);
    cf_rulebook_destroy(rb);
    expect_reject(one_field("Size|gt", "'abc'", NULL),
                  "lt/lte/gt/gte need a number");
    /* numeric text is a number (yaml_json keeps e.g. 0.5 as text) */
    rb = one_field("Size|gt", "'10'", NULL);
    assert_true(only_cond(rb)->values[0].alts[0].number == 10.0);
    cf_rulebook_destroy(rb);
    expect_reject(one_field("Size|gt", "'10x'", NULL),
                  "lt/lte/gt/gte need a number");

    rb = one_field("UtcTime|hour", "3", NULL);
    p = &only_cond(rb)->values[0].alts[0];
    assert_int_equal(p->kind, CF_PATTERN_TIMEPART);
    assert_int_equal(p->time_part, CF_TIMEPART_HOUR);
    assert_int_equal(p->op, CF_CMP_EQ);
    assert_true(p->number == 3.0);
    cf_rulebook_destroy(rb);
    rb = one_field("UtcTime|month|gte", "10", NULL);
    p = &only_cond(rb)->values[0].alts[0];
    assert_int_equal(p->time_part, CF_TIMEPART_MONTH);
    assert_int_equal(p->op, CF_CMP_GTE);
    cf_rulebook_destroy(rb);
    static const char *const parts[] = {"minute", "hour",  "day",
                                        "week",   "month", "year"};
    for (size_t i = 0; i < 6; i++) {
        char key[32];
        snprintf(key, sizeof(key), "T|%s", parts[i]);
        rb = one_field(key, "1", NULL);
        assert_int_equal(only_cond(rb)->values[0].alts[0].time_part, i);
        cf_rulebook_destroy(rb);
    }
    expect_reject(one_field("T|hour|minute", "1", NULL), "one time modifier");
}

static void test_cidr(void **state) {
    (void)state;
    struct cf_rulebook *rb = one_field("DestinationIp|cidr",
                                       "['10.0.0.0/8', '192.168.1.77/24', "
                                       "'fe80::1/10', '127.0.0.1']",
                                       NULL);
    const struct cf_sigma_field_cond *fc = only_cond(rb);
    const struct cf_sigma_pattern *p = &fc->values[0].alts[0];
    static const uint8_t ten[4] = {10, 0, 0, 0};
    static const uint8_t lan[4] = {192, 168, 1, 0}; /* host bits cleared */
    static const uint8_t lo[4] = {127, 0, 0, 1};
    static const uint8_t fe80[16] = {0xfe, 0x80};
    assert_int_equal(p->kind, CF_PATTERN_CIDR);
    assert_int_equal(p->family, 4);
    assert_int_equal(p->prefix, 8);
    assert_memory_equal(p->addr, ten, 4);
    p = &fc->values[1].alts[0];
    assert_int_equal(p->prefix, 24);
    assert_memory_equal(p->addr, lan, 4);
    p = &fc->values[2].alts[0];
    assert_int_equal(p->family, 6);
    assert_int_equal(p->prefix, 10);
    assert_memory_equal(p->addr, fe80, 16);
    p = &fc->values[3].alts[0];
    assert_int_equal(p->prefix, 32);
    assert_memory_equal(p->addr, lo, 4);
    cf_rulebook_destroy(rb);
    expect_reject(one_field("DestinationIp|cidr", "'10.0.0.0/33'", NULL),
                  "not a valid CIDR");
    expect_reject(one_field("DestinationIp|cidr", "'10.0.0/8'", NULL),
                  "not a valid CIDR");
    expect_reject(one_field("DestinationIp|cidr", "'fe80::/129'", NULL),
                  "not a valid CIDR");
}

static void test_expand(void **state) {
    (void)state;
    struct cf_config *cfg = cf_config_default();
    assert_non_null(cfg);
    json_object_set_new(
        cfg->root, "placeholders",
        json_pack("{s:[s,s],s:s}", "admins", "alice", "bob*", "dc", "DC01"));
    struct cf_rulebook *rb = one_field("User|expand", "'%admins%'", cfg);
    const struct cf_sigma_field_cond *fc = only_cond(rb);
    assert_int_equal(fc->values[0].n_alts, 2);
    GLOB(&fc->values[0].alts[0], "alice", ".....");
    GLOB(&fc->values[0].alts[1], "bob*", "...*"); /* values are globs */
    char digest_with_cfg[65];
    memcpy(digest_with_cfg, rb->rules[0]->digest, 65);
    cf_rulebook_destroy(rb);

    rb = one_field("Computer|contains|expand", "'%dc%\\%admins%'", cfg);
    fc = only_cond(rb);
    assert_int_equal(fc->values[0].n_alts, 2);
    GLOB(&fc->values[0].alts[0], "*DC01\\alice*", "*..........*");
    GLOB(&fc->values[0].alts[1], "*DC01\\bob*", "*........*");
    cf_rulebook_destroy(rb);

    /* without |expand a %name% is literal text */
    rb = one_field("User", "'%admins%'", cfg);
    GLOB(&only_cond(rb)->values[0].alts[0], "%admins%", "........");
    cf_rulebook_destroy(rb);

    /* other placeholder values change the digest (compile cache key) */
    json_object_set_new(cfg->root, "placeholders",
                        json_pack("{s:[s]}", "admins", "carol"));
    rb = one_field("User|expand", "'%admins%'", cfg);
    assert_string_not_equal(rb->rules[0]->digest, digest_with_cfg);
    cf_rulebook_destroy(rb);

    rb = one_field("User|expand", "'%nobody%'", cfg);
    assert_int_equal(rb->n_rules, 0);
    assert_string_equal(rb->rejected[0].reason,
                        "placeholder %nobody% is not configured; define it "
                        "under `placeholders:` in the config");
    cf_rulebook_destroy(rb);
    expect_reject(one_field("User|expand", "'%admins%'", NULL),
                  "placeholder %admins% is not configured");
    cf_config_destroy(cfg);
}

static void test_fieldref(void **state) {
    (void)state;
    struct cf_rulebook *rb =
        one_field("TargetUser|fieldref", "SubjectUser", NULL);
    const struct cf_sigma_pattern *p = &only_cond(rb)->values[0].alts[0];
    assert_int_equal(p->kind, CF_PATTERN_FIELDREF);
    assert_string_equal((char *)p->text, "SubjectUser");
    assert_int_equal(p->flags, 0);
    cf_rulebook_destroy(rb);
    rb = one_field("A|fieldref|startswith", "B", NULL);
    assert_int_equal(only_cond(rb)->values[0].alts[0].flags, CF_PAT_REF_START);
    cf_rulebook_destroy(rb);
    rb = one_field("A|fieldref|endswith", "B", NULL);
    assert_int_equal(only_cond(rb)->values[0].alts[0].flags, CF_PAT_REF_END);
    cf_rulebook_destroy(rb);
    rb = one_field("A|fieldref|contains", "B", NULL);
    assert_int_equal(only_cond(rb)->values[0].alts[0].flags,
                     CF_PAT_REF_CONTAINS);
    cf_rulebook_destroy(rb);
    rb = one_field("A|fieldref|neq", "B", NULL);
    assert_true(only_cond(rb)->negate);
    cf_rulebook_destroy(rb);
}

static void test_modifier_rejections(void **state) {
    (void)state;
    expect_reject(one_field("Image|foo", "'x'", NULL),
                  "unknown modifier 'foo' on field 'Image'");
    expect_reject(one_field("Image|contains|", "'x'", NULL),
                  "unknown modifier '' on field 'Image'");
    expect_reject(one_field("Image", "[]", NULL), "empty list of values");
    expect_reject(one_field("Image", "[[a, b]]", NULL), "nested lists");
    expect_reject(one_field("'|cidr'", "'10.0.0.0/8'", NULL),
                  "cannot be combined with keywords");
}

static void test_search_shapes(void **state) {
    (void)state;
    struct cf_rulebook *rb =
        load_yaml("title: shapes\nlogsource: {category: x}\n"
                  "detection:\n"
                  "  map: {A: 1, B|contains: x}\n"
                  "  maps:\n    - A: 1\n    - B: 2\n      C: 3\n"
                  "  keywords: ['mimikatz', 'sekurlsa::*']\n"
                  "  keyword_mods:\n    '|all': [a, b]\n"
                  "  condition: map or maps or keywords or keyword_mods\n",
                  NULL);
    assert_int_equal(rb->n_rules, 1);
    const struct cf_sigma_rule *r = rb->rules[0];
    assert_int_equal(r->n_searches, 4);
    assert_string_equal(r->searches[0].name, "map");
    assert_int_equal(r->searches[0].n_alts, 1);
    assert_int_equal(r->searches[0].alts[0].n_conds, 2);
    assert_string_equal(r->searches[0].alts[0].conds[1].field, "B");
    assert_string_equal(r->searches[1].name, "maps");
    assert_int_equal(r->searches[1].n_alts, 2);
    assert_int_equal(r->searches[1].alts[1].n_conds, 2);
    assert_string_equal(r->searches[2].name, "keywords");
    assert_int_equal(r->searches[2].n_alts, 1);
    assert_int_equal(r->searches[2].alts[0].n_conds, 1);
    const struct cf_sigma_field_cond *kw = &r->searches[2].alts[0].conds[0];
    assert_null(kw->field);
    assert_int_equal(kw->n_values, 2);
    /* keywords are searched anywhere: implicit contains */
    GLOB(&kw->values[0].alts[0], "*mimikatz*", "*........*");
    GLOB(&kw->values[1].alts[0], "*sekurlsa::*", "*..........*");
    const struct cf_sigma_field_cond *km = &r->searches[3].alts[0].conds[0];
    assert_null(km->field);
    assert_true(km->all);
    assert_int_equal(r->condition->op, CF_COND_OR);
    assert_int_equal(r->condition->n_kids, 4);
    cf_rulebook_destroy(rb);

    rb = load_yaml("title: mixed\ndetection:\n  s: [a, {B: 1}]\n"
                   "  condition: s\n",
                   NULL);
    expect_reject(rb, "mixes maps and plain keywords");
    /* a list of conditions is their OR */
    rb = load_yaml("title: list\ndetection:\n  a: {X: 1}\n  b: {Y: 2}\n"
                   "  condition: [a, b and a]\n",
                   NULL);
    assert_int_equal(rb->n_rules, 1);
    assert_int_equal(rb->rules[0]->condition->op, CF_COND_OR);
    assert_int_equal(rb->rules[0]->condition->n_kids, 2);
    assert_int_equal(rb->rules[0]->condition->kids[1].op, CF_COND_AND);
    cf_rulebook_destroy(rb);
}

static void test_metadata_and_tags(void **state) {
    (void)state;
    static const char yaml[] =
        "title: Dump LSASS\nid: 0d894093-71bc-43c3-8c4d-ecfa28dcd6a3\n"
        "name: lsass_dump\nstatus: test\ndescription: Detects it\n"
        "level: high\n"
        "logsource: {product: Windows, category: Process_Creation, "
        "service: Sysmon}\n"
        "tags:\n  - attack.credential-access\n  - attack.t1003.001\n"
        "  - attack.stealth\n  - attack.defense-impairment\n"
        "  - attack.T1059\n  - attack.g0007\n  - attack.s0002\n"
        "  - cve.2021-44228\n  - attack.execution\n  - attack.t12\n"
        "detection:\n  sel: {Image|endswith: '\\lsass.exe'}\n"
        "  condition: sel\n";
    struct cf_rulebook *rb = load_yaml(yaml, NULL);
    assert_int_equal(rb->n_rules, 1);
    const struct cf_sigma_rule *r = rb->rules[0];
    assert_string_equal(r->id, "0d894093-71bc-43c3-8c4d-ecfa28dcd6a3");
    assert_string_equal(r->name, "lsass_dump");
    assert_string_equal(r->title, "Dump LSASS");
    assert_string_equal(r->status, "test");
    assert_string_equal(r->description, "Detects it");
    assert_string_equal(r->path, tmp_path);
    assert_int_equal(r->level, CF_LEVEL_HIGH);
    assert_string_equal(r->product, "windows");
    assert_string_equal(r->category, "process_creation");
    assert_string_equal(r->service, "sysmon");
    assert_int_equal(r->n_tags, 10);
    assert_int_equal(r->n_tactics, 4);
    assert_string_equal(r->tactics[0], "credential-access");
    assert_string_equal(r->tactics[1], "stealth");
    assert_string_equal(r->tactics[2], "defense-impairment");
    assert_string_equal(r->tactics[3], "execution");
    assert_int_equal(r->n_techniques, 2);
    assert_string_equal(r->techniques[0], "T1003.001");
    assert_string_equal(r->techniques[1], "T1059");
    assert_int_equal(r->index, 0);

    /* digest = SHA-256 of the canonical JSON of the document */
    char err[256];
    json_t *docs = cf_yaml_to_json(yaml, strlen(yaml), err, sizeof(err));
    assert_non_null(docs);
    char *canon =
        json_dumps(json_array_get(docs, 0), JSON_SORT_KEYS | JSON_COMPACT);
    unsigned char md[32];
    unsigned int md_len;
    assert_true(
        EVP_Digest(canon, strlen(canon), md, &md_len, EVP_sha256(), NULL));
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(r->digest, hex);
    free(canon);
    json_decref(docs);
    cf_rulebook_destroy(rb);

    /* level defaults to medium; levels and names round-trip */
    rb = load_yaml("title: t\ndetection: {s: {A: 1}, condition: s}\n", NULL);
    assert_int_equal(rb->rules[0]->level, CF_LEVEL_MEDIUM);
    assert_null(rb->rules[0]->id);
    assert_null(rb->rules[0]->product);
    cf_rulebook_destroy(rb);
    for (int l = CF_LEVEL_INFORMATIONAL; l <= CF_LEVEL_CRITICAL; l++) {
        enum cf_level back;
        assert_int_equal(cf_level_parse(cf_level_name((enum cf_level)l), &back),
                         0);
        assert_int_equal(back, l);
    }
    enum cf_level lv;
    assert_int_equal(cf_level_parse("severe", &lv), -1);
    expect_reject(load_yaml("title: t\nlevel: severe\n"
                            "detection: {s: {A: 1}, condition: s}\n",
                            NULL),
                  "unknown level 'severe'");
}

static void test_documents(void **state) {
    (void)state;
    /* several documents, one broken: the others still load */
    struct cf_rulebook *rb =
        load_yaml("title: one\nid: a\ndetection: {s: {A: 1}, condition: s}\n"
                  "---\n"
                  "title: two\nid: b\ndetection: {s: {A: 1}, condition: nope}\n"
                  "---\n"
                  "title: three\nid: c\ndetection: {s: {A: 1}, condition: s}\n",
                  NULL);
    assert_int_equal(rb->n_rules, 2);
    assert_int_equal(rb->n_documents, 3);
    assert_int_equal(rb->n_rejected, 1);
    assert_string_equal(rb->rejected[0].id, "b");
    assert_non_null(
        strstr(rb->rejected[0].reason, "unknown search identifier 'nope'"));
    assert_int_equal(rb->rules[1]->index, 1);
    assert_string_equal(rb->rules[1]->title, "three");
    cf_rulebook_destroy(rb);

    expect_reject(load_yaml("title: x\nlogsource: {product: windows}\n", NULL),
                  "none of detection, correlation or filter");
    expect_reject(load_yaml("action: global\ntitle: x\n"
                            "detection: {condition: s}\n---\n",
                            NULL),
                  "'action: global' multi-document rules");
    expect_reject(load_yaml("- a\n- b\n", NULL), "is not a map");
    expect_reject(load_yaml("title: x\ndetection: {s: {A: 1}}\n", NULL),
                  "detection has no condition");
    /* a legacy aggregation loads as a correlation (test_legacy.c), but
     * not without the timeframe it counts within */
    expect_reject(load_yaml("title: x\ndetection:\n  s: {A: 1}\n"
                            "  condition: s | count() > 3\n",
                            NULL),
                  "no `timeframe`");
    expect_reject(load_yaml("title: x\ndetection: {s: {A: 1}, "
                            "condition: 1 of f*}\n",
                            NULL),
                  "pattern 'f*' matches no search identifier");
    expect_reject(load_yaml("title: x\ndetection:\n  s: {A: 1}\n"
                            "  t: {B: [a, \"unclosed\"}\n  condition: s\n",
                            NULL),
                  "line");

    /* a correlation document is handed to the correlation parser and
     * counted, whatever that parser decides */
    rb = load_yaml("title: c\ncorrelation: {type: event_count, rules: [a], "
                   "timespan: 1h, condition: {gte: 2}}\n",
                   NULL);
    assert_int_equal(rb->n_documents, 1);
    assert_int_equal(rb->n_rules, 0);
    assert_int_equal(rb->n_correlations + rb->n_rejected, 1);
    cf_rulebook_destroy(rb);
}

static void test_filters(void **state) {
    (void)state;
    static const char yaml[] =
        "title: rar\nid: 6f3e2987-db24-4c78-a860-b4f4095a7095\n"
        "logsource: {category: process_creation, product: windows}\n"
        "detection:\n  selection: {Image|endswith: '\\rar.exe'}\n"
        "  filter: {User: x}\n"
        "  condition: selection and not filter\n"
        "---\n"
        "title: other\nid: other-rule\nname: other_rule\n"
        "logsource: {category: process_creation, product: windows}\n"
        "detection:\n  selection: {Image: a}\n  condition: selection\n"
        "---\n"
        "title: Filter Administrator account\n"
        "logsource: {category: process_creation, product: windows}\n"
        "filter:\n  rules:\n    - 6f3e2987-db24-4c78-a860-b4f4095a7095\n"
        "    - unknown-rule\n"
        "  selection: {User|startswith: 'adm_'}\n"
        "  condition: not selection\n"
        "---\n"
        "title: Filter by name\nlogsource: {product: windows}\n"
        "filter: {rules: other_rule, selection: {A: 1}, "
        "condition: not selection}\n"
        "---\n"
        "title: Filter naming nothing loaded\nlogsource: {product: windows}\n"
        "filter: {rules: [nope], selection: {A: 1}, condition: selection}\n"
        "---\n"
        "title: Filter for another logsource\nlogsource: {product: linux}\n"
        "filter: {rules: [other-rule], sel: {A: 1}, condition: sel}\n";
    struct cf_rulebook *before =
        load_yaml("title: rar\nid: 6f3e2987-db24-4c78-a860-b4f4095a7095\n"
                  "logsource: {category: process_creation, product: windows}\n"
                  "detection:\n  selection: {Image|endswith: '\\rar.exe'}\n"
                  "  filter: {User: x}\n"
                  "  condition: selection and not filter\n",
                  NULL);
    struct cf_rulebook *rb = load_yaml(yaml, NULL);
    assert_int_equal(rb->n_rejected, 0);
    assert_int_equal(rb->n_rules, 2);
    assert_int_equal(rb->n_documents, 6);
    assert_int_equal(rb->n_filters, 2);
    const struct cf_sigma_rule *r = rb->rules[0];
    assert_int_equal(r->n_searches, 3);
    assert_string_equal(r->searches[0].name, "selection");
    assert_string_equal(r->searches[1].name, "filter");
    /* renamed so it cannot clash with the rule's own "selection" */
    assert_string_equal(r->searches[2].name, "filter0.selection");
    GLOB(&r->searches[2].alts[0].conds[0].values[0].alts[0], "adm_*", "....*");
    /* (selection and not filter) and (not filter0.selection) */
    const struct cf_sigma_cond *c = r->condition;
    assert_int_equal(c->op, CF_COND_AND);
    assert_int_equal(c->n_kids, 2);
    assert_int_equal(c->kids[0].op, CF_COND_AND);
    assert_int_equal(c->kids[0].kids[0].search, 0);
    assert_int_equal(c->kids[0].kids[1].op, CF_COND_NOT);
    assert_int_equal(c->kids[0].kids[1].kids[0].search, 1);
    assert_int_equal(c->kids[1].op, CF_COND_NOT);
    assert_int_equal(c->kids[1].kids[0].op, CF_COND_SEARCH);
    assert_int_equal(c->kids[1].kids[0].search, 2);
    /* a filtered rule compiles differently: new cache key */
    assert_string_not_equal(r->digest, before->rules[0]->digest);

    /* by name; the linux filter does not cover a windows rule */
    r = rb->rules[1];
    assert_int_equal(r->n_searches, 2);
    assert_string_equal(r->searches[1].name, "filter1.selection");
    assert_int_equal(r->condition->op, CF_COND_AND);
    assert_int_equal(r->condition->kids[1].op, CF_COND_NOT);
    assert_int_equal(r->condition->kids[1].kids[0].search, 1);
    cf_rulebook_destroy(rb);
    cf_rulebook_destroy(before);

    expect_reject(load_yaml("title: f\nfilter: {rules: [x], sel: {A: 1}, "
                            "condition: nope}\n",
                            NULL),
                  "unknown search identifier 'nope'");
    expect_reject(load_yaml("title: f\nfilter: {sel: {A: 1}, "
                            "condition: sel}\n",
                            NULL),
                  "filter.rules must list");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes_and_wildcards),
        cmocka_unit_test(test_scalar_types),
        cmocka_unit_test(test_contains_startswith_endswith),
        cmocka_unit_test(test_all_cased_neq_exists),
        cmocka_unit_test(test_windash),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_utf16),
        cmocka_unit_test(test_numeric_and_time),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_fieldref),
        cmocka_unit_test(test_modifier_rejections),
        cmocka_unit_test(test_search_shapes),
        cmocka_unit_test(test_metadata_and_tags),
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
