/*
 * test_json_flat.c - the one-pass JSON scanner
 * (core/json_decode.cpp, parse_flat) against simdjson.
 *
 * The scanner may decline any text; what it accepts, simdjson must
 * accept too, with the same nodes and the same strings at the same
 * offsets.  Its two string loops (AVX-512 where the CPU has it, SSE2)
 * must agree with each other on every text, accepted or not.  Checked on
 * hand-written edge cases, on every line of every shared OTRF recording, and on
 * those lines mutated byte by byte (deterministic pseudo-random edits that aim
 * at the grammar: quotes, backslashes, brackets, control and non-ASCII bytes,
 * cuts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_decode.h"
#include "shared_data.h"

static struct cf_json_parser *flat_p, *narrow_p, *simd_p;
static char *flat_s, *narrow_s, *simd_s;
static size_t strings_cap;

struct tally {
    long both_ok;      /* accepted by both, identical */
    long declined;     /* left to simdjson */
    long simd_refused; /* refused by simdjson (and declined) */
    long mismatches;   /* anything else: a bug */
    long loops_differ; /* the two string loops disagree: a bug */
};

static int setup(void **state) {
    (void)state;
    flat_p = cf_json_parser_new();
    narrow_p = cf_json_parser_new();
    simd_p = cf_json_parser_new();
    return flat_p && narrow_p && simd_p ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    cf_json_parser_destroy(flat_p);
    cf_json_parser_destroy(narrow_p);
    cf_json_parser_destroy(simd_p);
    free(flat_s);
    free(narrow_s);
    free(simd_s);
    return 0;
}

static void reserve(size_t len) {
    size_t need = cf_json_strings_size(len);
    if (need <= strings_cap) return;
    flat_s = realloc(flat_s, need);
    narrow_s = realloc(narrow_s, need);
    simd_s = realloc(simd_s, need);
    assert_non_null(flat_s);
    assert_non_null(narrow_s);
    assert_non_null(simd_s);
    strings_cap = need;
}

static bool same_doc(const struct cf_json_doc *a, const struct cf_json_doc *b) {
    if (a->n_nodes != b->n_nodes) return false;
    for (uint32_t i = 0; i < a->n_nodes; i++) {
        const struct cf_json_node *x = &a->nodes[i], *y = &b->nodes[i];
        if (x->type != y->type || x->end != y->end ||
            x->key_off != y->key_off || x->key_len != y->key_len ||
            x->text_off != y->text_off || x->text_len != y->text_len)
            return false;
        if (x->key_off != CF_JSON_NO_KEY &&
            memcmp(a->strings + x->key_off, b->strings + y->key_off,
                   x->key_len + 1) != 0)
            return false;
        if (x->type >= CF_JSON_STRING &&
            memcmp(a->strings + x->text_off, b->strings + y->text_off,
                   x->text_len + 1) != 0)
            return false;
    }
    return true;
}

/* Parses `text` with both readers and tallies the outcome; prints the
 * first few texts where they disagree. */
static void compare(const char *line, size_t len, struct tally *t) {
    struct cf_json_doc fd, sd;
    /* An exact-size copy, so that a read past the end is an error under
     * the sanitizers (the scanner, unlike simdjson, reads in place). */
    char *text = malloc(len ? len : 1);
    assert_non_null(text);
    memcpy(text, line, len);
    reserve(len);
    enum cf_json_status fs = cf_json_parse_with(flat_p, text, len, 64, flat_s,
                                                &fd, CF_JSON_ENGINE_FLAT);
    enum cf_json_status ss = cf_json_parse_with(simd_p, text, len, 64, simd_s,
                                                &sd, CF_JSON_ENGINE_SIMDJSON);
    struct cf_json_doc nd;
    enum cf_json_status ns = cf_json_parse_with(
        narrow_p, text, len, 64, narrow_s, &nd, CF_JSON_ENGINE_FLAT_NARROW);
    if (ns != fs || (fs == CF_JSON_OK && !same_doc(&fd, &nd))) {
        if (t->loops_differ++ < 5)
            fprintf(stderr, "string loops differ (%d, %d): %.*s\n", (int)fs,
                    (int)ns, (int)(len > 300 ? 300 : len), text);
    }
    if (fs == CF_JSON_DECLINED) {
        t->declined++;
        if (ss != CF_JSON_OK) t->simd_refused++;
    } else if (fs == CF_JSON_OK && ss == CF_JSON_OK && same_doc(&fd, &sd)) {
        t->both_ok++;
    } else if (t->mismatches++ < 5) {
        fprintf(stderr, "flat %d, simdjson %d: %.*s\n", (int)fs, (int)ss,
                (int)(len > 300 ? 300 : len), text);
    }
    free(text);
}

/* compare() on each text in turn, with one parser of each kind, which
 * keeps what it remembers from one text to the next; the two readers
 * and the two string loops must agree on all. */
static struct tally compare_all(const char *const *texts, size_t n) {
    struct tally t = {0};
    for (size_t i = 0; i < n; i++) compare(texts[i], strlen(texts[i]), &t);
    assert_int_equal(t.mismatches, 0);
    assert_int_equal(t.loops_differ, 0);
    return t;
}

static void test_edge_cases(void **state) {
    (void)state;
    static const char *accepted[] = {
        /* nested objects and arrays, with the walker's nodes: the
         * container, its members, an array's elements without keys */
        "{\"a\":{\"b\":[1,\"x\"]},\"c\":2}",
        "{\"tags\":[\"mordorDataset\"],\"EventID\":4688}",
        "{\"a\":[],\"b\":{},\"c\":[[],[{}]],\"d\":[true,false,null,-1.5e3]}",
        "{ \"winlog\" : { \"event_data\" : { \"Image\" : \"C:\\\\x.exe\" } } }",
        "{\"a\":[1 , 2 ,\"\\u00e9\"] ,\"b\":{\"c\":{\"d\":{\"e\":0}}}}",
        "{}",
        " \t{ } \r\n",
        "{\"a\":1}",
        "{\"\":\"\"}",
        "{\"a\":\"b\",\"a\":\"c\"}",
        "{\"n\":-0.5e+10,\"m\":0,\"k\":123456789012345678901234567890}",
        "{\"t\":true,\"f\":false,\"z\":null}",
        "{ \"a\" : \"x\" , \"b\" : 2 }",
        "{\"e\":\"\\\"\\\\\\/"
        "\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"}",
        "{\"k\\u0020ey\":\"C:\\\\Windows\\\\System32\\\\lsass.exe\"}",
        "{\"nul\":\"a\\u0000b\"}",
        "{\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
        "{\"long\":\"0123456789abcdef0123456789abcdef0123456789abcdef\\\"x\"}",
        "{\"a\":1.0E-2,\"b\":-1,\"c\":1e5}",
    };
    static const char *refused[] = {
        "",
        "{",
        "}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,\"a\":1}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":-}",
        "{\"a\":1e}",
        "{\"a\":+1}",
        "{\"a\":tru}",
        "{\"a\":truex}",
        "{\"a\":nul}",
        "{\"a\":\"b}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"nl\nhere\"}",
        "{\"a\":1}x",
        "{\"a\":1}{}",
        "{\"a\":\"\xc3\"}",
        "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}",
        "{\"a\":\"\xe0\x80\xaf\"}",
        "{\"a\":\"\xff\"}",
        "{\"a\" \"b\"}",
        "{'a':1}",
        "{a:1}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":1}\x00",
        "[1,2]",
        "\"s\"",
    };
    struct tally t = compare_all(accepted, sizeof accepted / sizeof *accepted);
    /* The scanner must really take these, or the speed is gone. */
    assert_int_equal(t.both_ok, (long)(sizeof accepted / sizeof *accepted));
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        size_t len = strlen(refused[i]);
        if (strcmp(refused[i], "{\"a\":1}") == 0) len++; /* the NUL case */
        compare(refused[i], len, &t);
    }
    assert_int_equal(t.mismatches, 0);
    assert_int_equal(t.both_ok, 0);
    assert_int_equal(t.simd_refused, (long)(sizeof refused / sizeof *refused));
    /* Past the nesting bound the scanner declines, and simdjson's walk
     * reports it (as it words every error). */
    const char *deep = "{\"a\":{\"b\":{\"c\":[1]}}}";
    struct cf_json_doc d;
    reserve(strlen(deep));
    assert_int_equal(cf_json_parse_with(flat_p, deep, strlen(deep), 3, flat_s,
                                        &d, CF_JSON_ENGINE_FLAT),
                     CF_JSON_DECLINED);
    assert_int_equal(cf_json_parse(flat_p, deep, strlen(deep), 3, flat_s, &d),
                     CF_JSON_TOO_DEEP);
    assert_int_equal(cf_json_parse_with(flat_p, deep, strlen(deep), 4, flat_s,
                                        &d, CF_JSON_ENGINE_FLAT),
                     CF_JSON_OK);
    assert_int_equal(d.n_nodes, 5);
}

/* xorshift64: a fixed sequence, so a failure reproduces. */
static uint64_t next_random(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One edit of line[0..len) into out; returns the new length. */
static size_t mutate(const char *line, size_t len, char *out, uint64_t *rnd) {
    static const char bytes[] = {
        '"', '\\', '{',  '}',        '[',        ']',        ',',        ':',
        ' ', '\0', 0x1f, (char)0x80, (char)0xc3, (char)0xed, (char)0xf4, 'u',
        'e', '-',  '.',  '0',        't',        'n',        '\n',       '/'};
    size_t at = len ? next_random(rnd) % len : 0;
    char b = bytes[next_random(rnd) % sizeof bytes];
    memcpy(out, line, len);
    switch (next_random(rnd) % 4) {
    case 0: /* replace */
        if (len) out[at] = b;
        return len;
    case 1: /* delete */
        if (!len) return 0;
        memmove(out + at, out + at + 1, len - at - 1);
        return len - 1;
    case 2: /* insert */
        memmove(out + at + 1, out + at, len - at);
        out[at] = b;
        return len + 1;
    default: /* cut */ return at;
    }
}

static void test_otrf_recordings(void **state) {
    (void)state;
    const char *shared = getenv("CF_SHARED_DIR");
    char cmd[4400];
    if (!shared) {
        if (cf_test_shared_missing("OTRF recordings") == 77) skip();
        fail();
    }
    snprintf(cmd, sizeof cmd,
             "find '%s/data/otrf/datasets' -name '*.zip' -print0 | sort -z | "
             "xargs -0 -n1 unzip -p 2>/dev/null",
             shared);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *line = NULL, *edit = NULL;
    size_t cap = 0, edit_cap = 0;
    ssize_t n;
    long lines = 0;
    uint64_t rnd = 0x9e3779b97f4a7c15u;
    struct tally t = {0}, m = {0};
    while ((n = getline(&line, &cap, p)) > 0) {
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        lines++;
        compare(line, len, &t);
        if (lines % 7 != 0) continue;
        if (edit_cap < len + 2) {
            edit_cap = len + 2;
            edit = realloc(edit, edit_cap);
            assert_non_null(edit);
        }
        for (int k = 0; k < 3; k++) {
            size_t elen = mutate(line, len, edit, &rnd);
            compare(edit, elen, &m);
        }
    }
    free(line);
    free(edit);
    pclose(p);
    if (lines == 0) {
        if (cf_test_shared_missing("OTRF recordings") == 77) skip();
        fail();
    }
    fprintf(stderr,
            "OTRF: %ld lines: %ld read by the scanner, %ld left to simdjson; "
            "mutated: %ld read, %ld left (%ld of them refused)\n",
            lines, t.both_ok, t.declined, m.both_ok, m.declined,
            m.simd_refused);
    assert_int_equal(t.mismatches, 0);
    assert_int_equal(m.mismatches, 0);
    assert_int_equal(t.loops_differ, 0);
    assert_int_equal(m.loops_differ, 0);
    /* Every recorded event is the scanner's: flat objects (LSASS_campaign_01
     * alone is 53,698 lines) and the nested ones (the other recordings'
     * "tags" array).  What it leaves is what simdjson refuses too (the
     * zips also hold pcaps and Zeek's text logs). */
    assert_int_equal(t.declined, t.simd_refused);
    assert_true(t.both_ok > 70000);
    /* The mutations must reach both sides of the scanner's decisions. */
    assert_true(m.both_ok > 1000);
    assert_true(m.simd_refused > 1000);
}

/* Texts pieced together from fragments that sit on the scanner's
 * decisions (escapes, surrogates, UTF-8 edges, numbers, literals, cuts):
 * mostly refused, some accepted, and for each the two readers must agree
 * as above.  A fixed seed, so a failure reproduces. */
static void test_fragments(void **state) {
    (void)state;
    static const char *frags[] = {"{",
                                  "}",
                                  "\"",
                                  "\\",
                                  "\"a\"",
                                  ":",
                                  ",",
                                  "1",
                                  "-",
                                  "0",
                                  ".",
                                  "e",
                                  "E",
                                  "+",
                                  "true",
                                  "false",
                                  "null",
                                  " ",
                                  "\t",
                                  "\n",
                                  "\r",
                                  "\\u",
                                  "00",
                                  "d8",
                                  "dc",
                                  "41",
                                  "\\\"",
                                  "\\\\",
                                  "\\n",
                                  "\\/",
                                  "\xc3\xa9",
                                  "\xc3",
                                  "\xe2\x82\xac",
                                  "\xed\xa0\x80",
                                  "\xf0\x9f\x98\x80",
                                  "\xf4\x90",
                                  "\x80",
                                  "\xff",
                                  "\x01",
                                  "\x1f",
                                  "\x7f",
                                  "x",
                                  "[",
                                  "]",
                                  "\"k\":\"v\"",
                                  "\"n\":12",
                                  "\\ud83d\\ude00",
                                  "\\ud800",
                                  "\\u0000"};
    uint64_t rnd = 0x2545f4914f6cdd1du;
    char text[512];
    struct tally t = {0};
    for (int it = 0; it < 200000; it++) {
        size_t n = 0;
        if (next_random(&rnd) % 2) {
            memcpy(text, "{\"a\":\"", 6);
            n = 6;
        }
        int parts = 1 + (int)(next_random(&rnd) % 12);
        for (int k = 0; k < parts; k++) {
            const char *f =
                frags[next_random(&rnd) % (sizeof frags / sizeof *frags)];
            size_t l = strlen(f);
            memcpy(text + n, f, l);
            n += l;
        }
        if (next_random(&rnd) % 2) {
            memcpy(text + n, "\"}", 2);
            n += 2;
        }
        compare(text, n, &t);
    }
    fprintf(stderr, "fragments: %ld read by the scanner, %ld left\n", t.both_ok,
            t.declined);
    assert_int_equal(t.mismatches, 0);
    assert_int_equal(t.loops_differ, 0);
    assert_true(t.both_ok > 1000);
}

/* Each of the string loops' stops (escapes, \u, UTF-8, errors) at every
 * offset of the first three 64-byte steps, in a key and in a value, the
 * string closed or cut short: an escape split by a step's end is where a
 * wide loop goes wrong. */
static void test_step_edges(void **state) {
    (void)state;
    static const char *pieces[] = {"\\\\",
                                   "\\\\\\\\",
                                   "\\\\\\\\\\\\",
                                   "\\n",
                                   "\\r\\n",
                                   "\\\"",
                                   "\\/",
                                   "\\u0041",
                                   "\\u00e9",
                                   "\\ud83d\\ude00",
                                   "\\ud800",
                                   "\\x",
                                   "\\",
                                   "\\u12",
                                   "\\\\\\",
                                   "\\\\\\\"",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80",
                                   "\xc3",
                                   "\xff",
                                   "\x01",
                                   "\x1f",
                                   "\x7f",
                                   "\""};
    char text[512];
    struct tally t = {0};
    for (size_t p = 0; p < sizeof pieces / sizeof *pieces; p++)
        for (size_t fill = 0; fill < 192; fill++)
            for (int where = 0; where < 4; where++) {
                /* where: 0/1 the value closed/cut, 2/3 the key */
                bool key = where >= 2, cut = where % 2;
                size_t n = 0, l = strlen(pieces[p]);
                n += (size_t)snprintf(text, sizeof text, "%s",
                                      key ? "{\"" : "{\"k\":\"");
                memset(text + n, 'x', fill);
                n += fill;
                memcpy(text + n, pieces[p], l);
                n += l;
                memset(text + n, 'y', fill % 7);
                n += fill % 7;
                if (!cut) {
                    const char *end = key ? "\":1}" : "\"}";
                    memcpy(text + n, end, strlen(end));
                    n += strlen(end);
                }
                compare(text, n, &t);
            }
    fprintf(stderr, "step edges: %ld read by the scanner, %ld left\n",
            t.both_ok, t.declined);
    assert_int_equal(t.mismatches, 0);
    assert_int_equal(t.loops_differ, 0);
    assert_true(t.both_ok > 5000);
    assert_true(t.declined > 5000);
}

/* The scanner takes a key byte-identical to the last object's key at the
 * same position by one compare (parse_flat's key memo): each text below
 * follows one that left a key there, and differs from it just where a
 * stale or wrongly kept key would show (one byte, a prefix, a longer
 * key, blanks, an escape, a cut, the slot's size, the end of the text,
 * keys that were escaped or not ASCII). */
static void test_key_memo(void **state) {
    (void)state;
    static const char *seq[] = {
        "{\"Image\":\"a\",\"User\":\"b\"}",
        "{\"Image\":\"a\",\"User\":\"b\"}",
        "{\"Imagf\":\"a\",\"Usea\":\"b\"}",
        "{\"Image\":\"a\",\"User\":\"b\"}",
        "{\"Imag\":\"a\",\"Use\":\"b\"}",
        "{\"Image\":1,\"User\":2}",
        "{\"Imagee\":1,\"Userr\":2}",
        "{\"Image\":1,\"User\":2}",
        "{\"Image\" :1,\"User\"\t:2}",
        "{\"Image\" :1,\"User\"\t:2}",
        "{\"Image\":1,\"User\":2}",
        "{\"Image\":1,\"User\"}",
        "{\"Image\":1,\"User\":2}",
        "{\"Image\":1,\"User\":",
        "{\"Image\":1,\"User\":2}",
        "{\"Image\":1,\"User",
        "{\"Image\":1,\"User\":2}",
        "{\"Imag\\u0065\":1,\"Us\\u0065r\":2}",
        "{\"Image\":1,\"User\":2}",
        "{\"Image\":1,\"User\":2,\"Extra\":3}",
        "{\"Image\":1}",
        "{\"Image\":1,\"User\":2,\"Extra\":3}",
        /* escaped keys are read again, never taken as written */
        "{\"a\\\\b\":1,\"q\\\"\":2,\"\\u00e9\":3}",
        "{\"a\\\\b\":1,\"q\\\"\":2,\"\\u00e9\":3}",
        "{\"a\\\\c\":1,\"q\\\"\":2,\"\\u00e8\":3}",
        /* UTF-8 keys, and a byte of one changed to a bad sequence */
        "{\"caf\xc3\xa9\":1,\"\xe2\x82\xac\":2}",
        "{\"caf\xc3\xa9\":1,\"\xe2\x82\xac\":2}",
        "{\"caf\xc3\xa8\":1,\"\xe2\x82\":2}",
        "{\"caf\xc3\xa9\":1,\"\xe2\x82\xac\":2}",
        /* 30 bytes: the slot's largest (with quote and colon) */
        "{\"abcdefghijklmnopqrstuvwxyz0123\":\"a long enough value to "
        "read in place\"}",
        "{\"abcdefghijklmnopqrstuvwxyz0123\":\"a long enough value to "
        "read in place\"}",
        "{\"abcdefghijklmnopqrstuvwxyz0124\":\"a long enough value to "
        "read in place\"}",
        "{\"abcdefghijklmnopqrstuvwxyz012\":\"a long enough value to "
        "read in place\"}",
        /* 31 bytes: not remembered */
        "{\"abcdefghijklmnopqrstuvwxyz01234\":1}",
        "{\"abcdefghijklmnopqrstuvwxyz01234\":1}",
        "{\"abcdefghijklmnopqrstuvwxyz01235\":1}",
        /* near the end of the text, with fewer than 32 bytes left */
        "{\"k\":1,\"last\":2}",
        "{\"k\":1,\"last\":2}",
        "{\"k\":1,\"lass\":2}",
        "{\"k\":1,\"last\"",
        "{\"k\":1,\"last\"}",
        "{\"k\":1,\"last\":2}",
        "{\"k\":1,\"last\":2}x",
        "{\"\":1,\"\":2}",
        "{\"\":1,\"\":2}",
        /* keys are counted in document order, nested ones too */
        "{\"winlog\":{\"event_data\":{\"Image\":\"a\"}},\"tags\":[\"x\"]}",
        "{\"winlog\":{\"event_data\":{\"Image\":\"a\"}},\"tags\":[\"x\"]}",
        "{\"winlog\":{\"event_data\":{\"Imagf\":\"a\"}},\"tags\":[\"x\"]}",
        "{\"winlog\":{\"x\":[{\"event_data\":1}],\"Image\":{\"tags\":2}}}",
        "{\"winlog\":{\"event_data\":{\"Image\":\"a\"}},\"tags\":[\"x\"]}",
    };
    struct tally t = compare_all(seq, sizeof seq / sizeof *seq);
    fprintf(stderr, "key memo: %ld read by the scanner, %ld left\n", t.both_ok,
            t.declined);
    /* all valid ones are the scanner's; the 7 broken ones simdjson's */
    assert_int_equal(t.both_ok, 43);
    assert_int_equal(t.declined, 7);
    assert_int_equal(t.simd_refused, 7);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_otrf_recordings),
        cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_step_edges),
        cmocka_unit_test(test_key_memo),
    };
    /* Without AVX-512 both string loops are the SSE2 one: say so, since
     * the loops_differ checks then compare it with itself. */
    fprintf(stderr, "string loops compared: %s\n",
            cf_json_wide_strings()
                ? "AVX-512 against SSE2"
                : "SSE2 only (this CPU lacks AVX-512 VBMI2)");
    return cmocka_run_group_tests(tests, setup, teardown);
}
