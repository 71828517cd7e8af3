/*
 * test_timeutil.c - cf_time_parse over the timestamp shapes seen in
 * logs, its refusals, and cf_time_format round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "timeutil.h"

/* 2023-08-16T04:54:31.123Z */
#define REF 1692161671123LL

static int64_t parse(const char *s) {
    int64_t ms = 0;
    cf_err_t rc = cf_time_parse(s, strlen(s), &ms);
    if (rc != CF_OK) fail_msg("cannot parse \"%s\"", s);
    return ms;
}

static void refuse(const char *s) {
    int64_t ms = 42;
    if (cf_time_parse(s, strlen(s), &ms) == CF_OK)
        fail_msg("accepted \"%s\" as %lld", s, (long long)ms);
}

static void test_shapes(void **state) {
    (void)state;
    assert_int_equal(parse("2023-08-16 04:54:31.123"), REF);     /* Sysmon */
    assert_int_equal(parse("2023-08-16T04:54:31.123Z"), REF);    /* ISO */
    assert_int_equal(parse("2023-08-16t04:54:31.123z"), REF);
    assert_int_equal(parse("2023-08-16T04:54:31.1234567Z"), REF); /* .NET */
    assert_int_equal(parse("2023-08-16T04:54:31.123456Z"), REF);  /* evtx */
    assert_int_equal(parse("2023-08-16T04:54:31Z"), REF - 123); /* CloudTrail */
    assert_int_equal(parse("2023-08-16T04:54:31.1Z"), REF - 23);
    assert_int_equal(parse("2023-08-16T06:54:31.123+02:00"), REF);
    assert_int_equal(parse("2023-08-16T06:54:31.123+0200"), REF);
    assert_int_equal(parse("2023-08-16T00:24:31.123-04:30"), REF);
    assert_int_equal(parse("2023-08-16 04:54:31.123 UTC"), REF);
    assert_int_equal(parse(" 2023-08-16T04:54:31,123Z "), REF);
    assert_int_equal(parse("2023-08-16T04:54Z"), REF - 31123);
    assert_int_equal(parse("1692161671"), REF - 123);              /* epoch s */
    assert_int_equal(parse("1692161671.123"), REF);
    assert_int_equal(parse("1692161671123"), REF); /* epoch ms */
    assert_int_equal(parse("1692161671123456"), REF);              /* us */
    assert_int_equal(parse("1692161671123456789"), REF);           /* ns */
    assert_int_equal(parse("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse("1969-12-31T23:59:59.999Z"), -1);
    assert_int_equal(parse("2024-02-29T00:00:00Z"), 1709164800000LL);
    assert_int_equal(parse("2000-03-01T00:00:00Z"), 951868800000LL);
    /* The length bounds the parse: the rest of the buffer is ignored. */
    int64_t ms;
    assert_int_equal(cf_time_parse("2023-08-16T04:54:31.123Zjunk", 24, &ms),
                     CF_OK);
    assert_int_equal(ms, REF);
}

static void test_refusals(void **state) {
    (void)state;
    refuse("");
    refuse("   ");
    refuse("garbage");
    refuse("2023-13-01T00:00:00Z");
    refuse("2023-02-29T00:00:00Z");
    refuse("2023-04-31T00:00:00Z");
    refuse("2023-01-01T24:00:00Z");
    refuse("2023-01-01T00:60:00Z");
    refuse("2023-01-01T00:00:00.Z");
    refuse("2023-01-01T00:00:00+25:00");
    refuse("2023-01-01X00:00:00Z");
    refuse("2023-01-01");
    refuse("2023-1-01T00:00:00Z");
    refuse("2023-01-01T00:00:00Zx");
    refuse("12ab");
    refuse("-5");
    refuse("99999999999999999999999");
    assert_int_equal(cf_time_parse(NULL, 0, &(int64_t){0}), CF_ERR_PARSE);
}

static void test_format(void **state) {
    (void)state;
    char buf[32];
    cf_time_format(REF, buf);
    assert_string_equal(buf, "2023-08-16T04:54:31.123Z");
    assert_int_equal(strlen(buf), 24);
    cf_time_format(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    cf_time_format(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    cf_time_format(1709164800000LL, buf);
    assert_string_equal(buf, "2024-02-29T00:00:00.000Z");
    /* Round trip across four centuries, in steps that hit every
     * month and leap day. */
    for (int64_t t = -2208988800000LL; t < 32503680000000LL;
         t += 86400000LL * 37 + 3723004) {
        cf_time_format(t, buf);
        assert_int_equal(parse(buf), t);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
