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
    assert_int_equal(parse("2023-08-16 04:54:31.123"), REF);  /* Sysmon */
    assert_int_equal(parse("2023-08-16T04:54:31.123Z"), REF); /* ISO */
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
    assert_int_equal(parse("1692161671"), REF - 123); /* epoch s */
    assert_int_equal(parse("1692161671.123"), REF);
    assert_int_equal(parse("1692161671123"), REF);       /* epoch ms */
    assert_int_equal(parse("1692161671123456"), REF);    /* us */
    assert_int_equal(parse("1692161671123456789"), REF); /* ns */
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

/* Time parts are read as written: the zone is checked, not applied. */
static void test_fields_as_written(void **state) {
    struct cf_time_fields tf;
    (void)state;
    assert_int_equal(cf_time_fields_parse("2024-03-05T23:30:00+02:00", 25, &tf),
                     CF_OK);
    assert_true(tf.has_time);
    assert_int_equal(tf.year, 2024);
    assert_int_equal(tf.month, 3);
    assert_int_equal(tf.day, 5);
    assert_int_equal(tf.hour, 23);
    assert_int_equal(tf.minute, 30);
    assert_int_equal(
        cf_time_fields_parse("2024-12-31 23:00:00.5-05:00", 27, &tf), CF_OK);
    assert_int_equal(tf.year, 2024);
    assert_int_equal(tf.month, 12);
    assert_int_equal(cf_time_fields_parse(" 2024-02-29 ", 12, &tf), CF_OK);
    assert_false(tf.has_time);
    assert_int_equal(tf.day, 29);
    /* not dates */
    assert_int_equal(cf_time_fields_parse("1709596800", 10, &tf), CF_ERR_PARSE);
    assert_int_equal(cf_time_fields_parse("2023-02-29", 10, &tf), CF_ERR_PARSE);
    assert_int_equal(cf_time_fields_parse("2024-03-05T24:00", 16, &tf),
                     CF_ERR_PARSE);
    assert_int_equal(cf_time_fields_parse("2024-03-05T10:00+25:00", 22, &tf),
                     CF_ERR_PARSE);
    /* an event time still needs a time of day */
    int64_t ms;
    assert_int_equal(cf_time_parse("2024-03-05", 10, &ms), CF_ERR_PARSE);
}

static unsigned week_of(const char *date) {
    struct cf_time_fields tf;
    assert_int_equal(cf_time_fields_parse(date, strlen(date), &tf), CF_OK);
    return cf_time_iso_week(&tf);
}

/* ISO 8601 weeks at year boundaries (checked against `date +%V`). */
static void test_iso_week(void **state) {
    (void)state;
    assert_int_equal(week_of("2024-01-01"), 1);  /* a Monday */
    assert_int_equal(week_of("2023-01-01"), 52); /* Sunday: last week of 2022 */
    assert_int_equal(week_of("2020-12-31"), 53); /* 2020 has 53 weeks */
    assert_int_equal(week_of("2021-01-03"), 53);
    assert_int_equal(week_of("2021-01-04"), 1);
    assert_int_equal(week_of("2019-12-30"), 1); /* Monday of 2020's week 1 */
    assert_int_equal(week_of("2024-03-05"), 10);
    assert_int_equal(week_of("2024-12-30"), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_fields_as_written),
        cmocka_unit_test(test_iso_week),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
