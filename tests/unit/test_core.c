/*
 * test_core.c - the shared building blocks of core/: the growable buffer
 * (buf.h), the hash (hash.h) and the event-time heap (heap.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "hash.h"
#include "heap.h"

#include <jansson.h>

/* ---- buf ------------------------------------------------------------ */

static void test_buf_append(void **state) {
    (void)state;
    struct cf_buf b = CF_BUF_INIT;
    assert_null(b.data);
    cf_buf_append(&b, "ab", 2);
    cf_buf_puts(&b, "cd");
    cf_buf_putc(&b, 'e');
    cf_buf_append(&b, "", 0);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "abcde");
    /* Embedded NULs are content, and the text stays terminated after. */
    cf_buf_append(&b, "x\0y", 3);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data + 5, "x\0y", 4);
    /* Past the first allocation: every byte kept. */
    for (int i = 0; i < 1000; i++) cf_buf_putc(&b, (char)('a' + i % 26));
    assert_int_equal(b.len, 1008);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[1007], 'a' + 999 % 26);
    assert_int_equal(b.data[1008], '\0');
    assert_false(b.failed);
    cf_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    cf_buf_free(&b); /* twice is fine */
}

static void test_buf_printf(void **state) {
    (void)state;
    struct cf_buf b = CF_BUF_INIT;
    cf_buf_printf(&b, "%s=%d", "n", 42);
    cf_buf_printf(&b, ",%05.1f", 2.25);
    assert_string_equal(b.data, "n=42,002.2");
    /* Longer than the buffer has room for: grown, not cut. */
    char big[3000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cf_buf_printf(&b, "[%s]", big);
    assert_int_equal(b.len, 10 + 2 + sizeof big - 1);
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    cf_buf_free(&b);
}

static void test_buf_reset_truncate(void **state) {
    (void)state;
    struct cf_buf b = CF_BUF_INIT;
    cf_buf_reset(&b); /* on an empty buffer */
    cf_buf_truncate(&b, 0);
    cf_buf_puts(&b, "Event.System.EventID");
    size_t cap = b.cap;
    cf_buf_truncate(&b, 12);
    assert_string_equal(b.data, "Event.System");
    cf_buf_truncate(&b, 50); /* longer than the content: no change */
    assert_string_equal(b.data, "Event.System");
    cf_buf_puts(&b, ".Provider");
    assert_string_equal(b.data, "Event.System.Provider");
    cf_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(b.cap, cap); /* allocation kept */
    cf_buf_free(&b);
}

static void test_buf_json_string(void **state) {
    (void)state;
    struct cf_buf b = CF_BUF_INIT;
    static const char in[] = "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk/\xc3\xa9";
    cf_buf_json_string(&b, in, sizeof in - 1);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i"
                                "\\u001fj\x7fk/\xc3\xa9\"");
    cf_buf_reset(&b);
    cf_buf_json_string(&b, "", 0);
    assert_string_equal(b.data, "\"\"");
    cf_buf_reset(&b);
    cf_buf_json_string(&b, "x\0y", 3); /* NUL is a control character */
    assert_string_equal(b.data, "\"x\\u0000y\"");
    cf_buf_free(&b);
}

static void test_buf_base64(void **state) {
    (void)state;
    /* RFC 4648, section 10. */
    static const char *const vectors[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < CF_ARRAY_LEN(vectors); i++) {
        struct cf_buf b = CF_BUF_INIT;
        cf_buf_puts(&b, "<");
        cf_buf_base64(&b, (const unsigned char *)vectors[i][0],
                      strlen(vectors[i][0]));
        cf_buf_puts(&b, ">");
        char want[32];
        snprintf(want, sizeof want, "<%s>", vectors[i][1]);
        assert_string_equal(b.data, want);
        cf_buf_free(&b);
    }
    struct cf_buf b = CF_BUF_INIT;
    static const unsigned char bytes[] = {0x00, 0xff, 0xfe, 0x80};
    cf_buf_base64(&b, bytes, sizeof bytes);
    assert_string_equal(b.data, "AP/+gA==");
    cf_buf_free(&b);
}

static void test_buf_failure(void **state) {
    (void)state;
    struct cf_buf b = CF_BUF_INIT;
    cf_alloc_fail_after(0);
    cf_buf_puts(&b, "lost");
    cf_alloc_fail_after(-1);
    assert_true(b.failed);
    /* Later appends are no-ops even though memory is back... */
    cf_buf_puts(&b, "also lost");
    cf_buf_printf(&b, "%d", 1);
    cf_buf_json_string(&b, "x", 1);
    assert_true(b.failed);
    assert_int_equal(b.len, 0);
    assert_false(cf_buf_reserve(&b, 1));
    /* ...and steal says the content is incomplete. */
    assert_null(cf_buf_steal(&b));
    assert_false(b.failed);
    assert_null(b.data);

    /* A failure in the middle keeps what was there, and flags it. */
    cf_buf_puts(&b, "kept");
    cf_alloc_fail_after(0);
    char big[1024];
    memset(big, 'q', sizeof big);
    cf_buf_append(&b, big, sizeof big);
    cf_alloc_fail_after(-1);
    assert_true(b.failed);
    assert_string_equal(b.data, "kept");
    cf_buf_reset(&b); /* reset clears the flag */
    assert_false(b.failed);
    cf_buf_puts(&b, "again");
    assert_string_equal(b.data, "again");
    assert_false(cf_buf_reserve(&b, SIZE_MAX)); /* size overflow */
    assert_true(b.failed);
    cf_buf_free(&b);
    assert_false(b.failed);
}

static void test_buf_steal(void **state) {
    (void)state;
    struct cf_buf b = CF_BUF_INIT;
    assert_null(cf_buf_steal(&b)); /* nothing appended */
    cf_buf_printf(&b, "%s", "mine now");
    char *s = cf_buf_steal(&b);
    assert_string_equal(s, "mine now");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    cf_buf_puts(&b, "fresh"); /* the buffer is reusable */
    assert_string_equal(b.data, "fresh");
    cf_free(s);
    cf_buf_free(&b);
}

static void test_utf8(void **state) {
    (void)state;
    assert_true(cf_utf8_valid("", 0));
    static const char ok[] = "plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    assert_true(cf_utf8_valid(ok, sizeof ok - 1));
    assert_false(cf_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(cf_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(cf_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(cf_utf8_valid("\xe2\x82", 2));         /* cut short */
}

/* ---- hash ----------------------------------------------------------- */

static void test_hash_vectors(void **state) {
    (void)state;
    /* FNV-1a 64 reference values (isthe.com/chongo/tech/comp/fnv). */
    assert_true(cf_hash_bytes("", 0) == UINT64_C(0xcbf29ce484222325));
    assert_true(cf_hash_bytes("a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
    assert_true(cf_hash_bytes("foobar", 6) == UINT64_C(0x85944171f73967e8));
    assert_true(cf_hash_str("foobar") == UINT64_C(0x85944171f73967e8));
    assert_true(cf_hash_str("") == CF_HASH_INIT);
    /* Continuing over parts is hashing the whole. */
    uint64_t h = cf_hash_continue(CF_HASH_INIT, "foo", 3);
    assert_true(cf_hash_continue(h, "bar", 3) == cf_hash_bytes("foobar", 6));
    assert_true(cf_hash_continue(h, "", 0) == h);
    /* A different seed gives a different hash. */
    assert_true(cf_hash_continue(1, "foobar", 6) != cf_hash_bytes("foobar", 6));
    /* Bytes past a NUL count. */
    assert_true(cf_hash_bytes("a\0b", 3) != cf_hash_bytes("a\0c", 3));
    /* The word hash: every byte counts, tails and lengths included. */
    assert_true(cf_hash_words(0, "foobar", 6) != cf_hash_words(0, "foobaz", 6));
    assert_true(cf_hash_words(0, "a\0", 2) != cf_hash_words(0, "a", 1));
    assert_true(cf_hash_words(0, "0123456789abcdef", 16) !=
                cf_hash_words(0, "0123456789abcdeg", 16));
    assert_true(cf_hash_words(1, "foobar", 6) != cf_hash_words(0, "foobar", 6));
    assert_int_equal(cf_hash_name("foobar", 6),
                     (uint32_t)cf_hash_words(0, "foobar", 6));
}

/* Names that differ only in the high bits of a byte must not all land
 * in one slot of a small table, which indexes by the low bits: FNV's low
 * bits see only the low bits of each byte, so the raw hash would put
 * all of these in the same slot of a 16-slot table. */
static void test_hash_name_low_bits(void **state) {
    (void)state;
    static const char last[] = "!1AQaq"; /* all end in the nibble 1 */
    unsigned raw = 0, mixed = 0;
    for (size_t i = 0; i < sizeof last - 1; i++) {
        char name[] = {'F', 'i', 'e', 'l', 'd', last[i]};
        raw |= 1u << (cf_hash_bytes(name, sizeof name) & 15);
        mixed |= 1u << (cf_hash_name(name, sizeof name) & 15);
    }
    assert_int_equal(__builtin_popcount(raw), 1);
    assert_true(__builtin_popcount(mixed) > 1);
}

/* ---- heap ----------------------------------------------------------- */

struct item {
    int64_t time;
    int tie;   /* the owner's tie-break key */
    int order; /* insertion number */
};

static int tie_cmp(const void *a, const void *b) {
    const struct item *x = a, *y = b;
    return (x->tie > y->tie) - (x->tie < y->tie);
}

static void test_heap_order(void **state) {
    (void)state;
    struct cf_heap h = CF_HEAP_INIT(NULL);
    int64_t t;
    assert_null(cf_heap_peek(&h, &t));
    assert_null(cf_heap_pop(&h, &t));
    struct item it[] = {{30, 0, 0}, {10, 0, 1},        {20, 0, 2},
                        {-5, 0, 3}, {INT64_MAX, 0, 4}, {INT64_MIN, 0, 5}};
    for (size_t i = 0; i < CF_ARRAY_LEN(it); i++)
        assert_int_equal(cf_heap_push(&h, it[i].time, &it[i]), CF_OK);
    assert_int_equal(h.n, CF_ARRAY_LEN(it));
    assert_ptr_equal(cf_heap_peek(&h, &t), &it[5]);
    assert_true(t == INT64_MIN);
    assert_ptr_equal(cf_heap_peek(&h, NULL), &it[5]); /* peek keeps it */
    static const int want[] = {5, 3, 1, 2, 0, 4};
    for (size_t i = 0; i < CF_ARRAY_LEN(want); i++) {
        struct item *x = cf_heap_pop(&h, &t);
        assert_non_null(x);
        assert_int_equal(x->order, want[i]);
        assert_true(t == x->time);
    }
    assert_null(cf_heap_pop(&h, NULL));
    cf_heap_free(&h);
    cf_heap_free(&h);
}

static void test_heap_ties(void **state) {
    (void)state;
    /* Without a tie-break: equal times come out in insertion order. */
    struct cf_heap h = CF_HEAP_INIT(NULL);
    struct item it[40];
    for (int i = 0; i < 40; i++) {
        it[i] = (struct item){i % 2 ? 7 : 3, 0, i};
        assert_int_equal(cf_heap_push(&h, it[i].time, &it[i]), CF_OK);
    }
    for (int i = 0; i < 40; i++) {
        struct item *x = cf_heap_pop(&h, NULL);
        int want = i < 20 ? 2 * i : 2 * (i - 20) + 1;
        assert_int_equal(x->order, want);
    }
    cf_heap_free(&h);

    /* With one: it decides first, insertion order only between items it
     * calls equal. */
    struct cf_heap g = CF_HEAP_INIT(tie_cmp);
    static const int ties[] = {5, 1, 5, 3, 1, 5};
    for (int i = 0; i < 6; i++) {
        it[i] = (struct item){100, ties[i], i};
        assert_int_equal(cf_heap_push(&g, 100, &it[i]), CF_OK);
    }
    it[6] = (struct item){99, 9, 6};
    assert_int_equal(cf_heap_push(&g, 99, &it[6]), CF_OK);
    static const int want[] = {6, 1, 4, 3, 0, 2, 5};
    for (int i = 0; i < 7; i++) {
        struct item *x = cf_heap_pop(&g, NULL);
        assert_int_equal(x->order, want[i]);
    }
    cf_heap_free(&g);
}

static int item_cmp(const void *a, const void *b) {
    const struct item *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

static bool item_before(const struct item *x, const struct item *y) {
    return item_cmp(x, y) < 0;
}

/* Many random items, pushes and pops interleaved, against a plain list
 * searched for its minimum and against qsort. */
static void test_heap_random(void **state) {
    (void)state;
    enum { N = 20000 };
    struct item *it = calloc(N, sizeof *it);
    struct item *sorted = calloc(N, sizeof *sorted);
    struct item **model = calloc(N, sizeof *model);
    assert_non_null(it);
    assert_non_null(sorted);
    assert_non_null(model);
    uint64_t rng = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        /* few distinct times, so ties are common */
        it[i] = (struct item){(int64_t)(rng % 500) - 250, 0, i};
    }
    struct cf_heap h = CF_HEAP_INIT(NULL);
    size_t n_model = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(cf_heap_push(&h, it[i].time, &it[i]), CF_OK);
        model[n_model++] = &it[i];
        if (i % 3 != 2) continue;
        /* Every pop is the least of what is in: (time, insertion). */
        size_t m = 0;
        for (size_t k = 1; k < n_model; k++)
            if (item_before(model[k], model[m])) m = k;
        int64_t t;
        struct item *x = cf_heap_pop(&h, &t);
        assert_ptr_equal(x, model[m]);
        assert_true(t == x->time);
        model[m] = model[--n_model];
    }
    assert_int_equal(h.n, n_model);
    cf_heap_free(&h);

    /* Push all, pop all: exactly qsort's order on (time, insertion). */
    for (int i = 0; i < N; i++)
        assert_int_equal(cf_heap_push(&h, it[i].time, &it[i]), CF_OK);
    memcpy(sorted, it, N * sizeof *sorted);
    qsort(sorted, N, sizeof *sorted, item_cmp);
    for (int i = 0; i < N; i++) {
        struct item *x = cf_heap_pop(&h, NULL);
        assert_int_equal(x->order, sorted[i].order);
    }
    assert_null(cf_heap_pop(&h, NULL));
    cf_heap_free(&h);
    free(it);
    free(sorted);
    free(model);
}

static void test_heap_nomem(void **state) {
    (void)state;
    struct cf_heap h = CF_HEAP_INIT(NULL);
    struct item a = {1, 0, 0}, b = {0, 0, 1};
    cf_alloc_fail_after(0);
    assert_int_equal(cf_heap_push(&h, a.time, &a), CF_ERR_NOMEM);
    cf_alloc_fail_after(-1);
    assert_int_equal(h.n, 0);
    /* Full array, growth refused: the heap is unchanged. */
    struct item many[256];
    for (int i = 0; i < 256; i++) {
        many[i] = (struct item){1000 - i, 0, i};
        assert_int_equal(cf_heap_push(&h, many[i].time, &many[i]), CF_OK);
    }
    assert_int_equal(h.n, h.cap);
    cf_alloc_fail_after(0);
    assert_int_equal(cf_heap_push(&h, b.time, &b), CF_ERR_NOMEM);
    cf_alloc_fail_after(-1);
    assert_int_equal(h.n, 256);
    for (int i = 255; i >= 0; i--) {
        struct item *x = cf_heap_pop(&h, NULL);
        assert_int_equal(x->order, i);
    }
    cf_heap_free(&h);
}

/* cf_buf_json under every allocation failure: the text is whole or the
 * buffer failed, never a text missing a piece (jansson ignores a failed
 * write after an object key). */
static void test_buf_json_nomem(void **state) {
    (void)state;
    json_t *v = json_pack("{s:s, s:[i, s], s:{s:b}}", "key", "value", "list", 1,
                          "two", "nested", "flag", 1);
    assert_non_null(v);
    struct cf_buf whole = CF_BUF_INIT;
    cf_buf_puts(&whole, "x");
    cf_buf_json(&whole, v, JSON_SORT_KEYS | JSON_COMPACT);
    assert_false(whole.failed);
    assert_string_equal(
        whole.data,
        "x{\"key\":\"value\",\"list\":[1,\"two\"],\"nested\":{\"flag\":true}}");
    long n = 0;
    for (;; n++) {
        struct cf_buf b = CF_BUF_INIT;
        cf_buf_puts(&b, "x");
        cf_alloc_fail_once(n); /* also zeroes cf_alloc_failures() */
        cf_buf_json(&b, v, JSON_SORT_KEYS | JSON_COMPACT);
        bool refused = cf_alloc_failures() > 0;
        cf_alloc_fail_after(-1);
        if (!b.failed) assert_string_equal(b.data, whole.data);
        cf_buf_free(&b);
        if (!refused) break;
    }
    assert_true(n > 3); /* the sweep went through jansson's allocations */
    cf_buf_free(&whole);
    json_decref(v);
}

/* cf_bytes_equal answers as memcmp does at every length it reads with
 * words (up to 32) and around them, whichever byte differs. */
static void test_bytes_equal(void **state) {
    (void)state;
    unsigned char a[48], b[48];
    for (size_t i = 0; i < sizeof a; i++) a[i] = (unsigned char)(i * 7 + 1);
    for (size_t n = 0; n <= 40; n++) {
        memcpy(b, a, sizeof b);
        assert_true(cf_bytes_equal(a, b, n));
        for (size_t at = 0; at < n; at++) {
            b[at] ^= 0x20;
            assert_false(cf_bytes_equal(a, b, n));
            b[at] ^= 0x20;
        }
        /* bytes past n are not compared */
        b[n] ^= 0x20;
        assert_true(cf_bytes_equal(a, b, n));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append),
        cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_buf_reset_truncate),
        cmocka_unit_test(test_buf_json_string),
        cmocka_unit_test(test_buf_base64),
        cmocka_unit_test(test_buf_failure),
        cmocka_unit_test(test_buf_steal),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_hash_name_low_bits),
        cmocka_unit_test(test_bytes_equal),
        cmocka_unit_test(test_heap_order),
        cmocka_unit_test(test_heap_ties),
        cmocka_unit_test(test_heap_random),
        cmocka_unit_test(test_heap_nomem),
        cmocka_unit_test(test_buf_json_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
