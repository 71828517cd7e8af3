/*
 * timeutil.c - event-time parsing and formatting (core/timeutil.h).
 *
 * Called for every event (cf_event_extract_time) and when alerts and
 * incidents are written, so it avoids libc's locale- and TZ-dependent
 * functions (strptime, timegm, gmtime) and does the calendar arithmetic
 * itself.  Pure functions; thread safe.
 */
#include "timeutil.h"

#include <time.h>

#include <string.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    int64_t era;
    unsigned yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    int64_t era;
    unsigned doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Reads exactly n digits at s[*i]. */
static bool digits(const char *s, size_t len, size_t *i, unsigned n,
                   unsigned *out) {
    unsigned v = 0;
    if (*i + n > len) return false;
    for (unsigned k = 0; k < n; k++) {
        char c = s[*i + k];
        if (!is_digit(c)) return false;
        v = v * 10 + (unsigned)(c - '0');
    }
    *i += n;
    *out = v;
    return true;
}

static unsigned days_in_month(unsigned y, unsigned m) {
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return dim[m - 1];
}

/* Epoch seconds, or milli/micro/nanoseconds told apart by magnitude:
 * anything from 1973 on in ms is >= 1e11, which as seconds would be the
 * year 5138. */
static cf_err_t parse_epoch(const char *s, size_t len, int64_t *ms) {
    uint64_t v = 0;
    size_t i = 0;
    unsigned frac_ms = 0, frac_digits = 0;
    for (; i < len && is_digit(s[i]); i++) {
        if (v > (UINT64_MAX - 9) / 10) return CF_ERR_PARSE;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0) return CF_ERR_PARSE;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        for (; i < len && is_digit(s[i]); i++) {
            if (frac_digits < 3) {
                frac_ms = frac_ms * 10 + (unsigned)(s[i] - '0');
                frac_digits++;
            }
        }
        if (i == start) return CF_ERR_PARSE;
        while (frac_digits < 3) {
            frac_ms *= 10;
            frac_digits++;
        }
    }
    if (i != len) return CF_ERR_PARSE;
    if (v >= 100000000000000000ull) {
        *ms = (int64_t)(v / 1000000);
    } else if (v >= 100000000000000ull) {
        *ms = (int64_t)(v / 1000);
    } else if (v >= 100000000000ull) {
        *ms = (int64_t)v;
    } else {
        *ms = (int64_t)v * 1000 + frac_ms;
    }
    return CF_OK;
}

/* Reads "YYYY-MM-DD[(T| )hh:mm[:ss[.fff]][Z|±hh[:]mm| UTC]]" as written.
 * A date alone is accepted only when `date_only_ok`. */
static cf_err_t parse_written(const char *s, size_t len, bool date_only_ok,
                              struct cf_time_fields *tf, unsigned *frac_ms,
                              int64_t *offset_min) {
    size_t i = 0;
    unsigned year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;

    memset(tf, 0, sizeof *tf);
    *frac_ms = 0;
    *offset_min = 0;
    if (!digits(s, len, &i, 4, &year) || i >= len || s[i++] != '-' ||
        !digits(s, len, &i, 2, &mon) || i >= len || s[i++] != '-' ||
        !digits(s, len, &i, 2, &day))
        return CF_ERR_PARSE;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
        return CF_ERR_PARSE;
    tf->year = (int)year;
    tf->month = mon;
    tf->day = day;
    if (i == len && date_only_ok) return CF_OK;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return CF_ERR_PARSE;
    i++;
    if (!digits(s, len, &i, 2, &hour) || i >= len || s[i++] != ':' ||
        !digits(s, len, &i, 2, &min))
        return CF_ERR_PARSE;
    if (i < len && s[i] == ':') {
        i++;
        if (!digits(s, len, &i, 2, &sec)) return CF_ERR_PARSE;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
            unsigned n = 0;
            size_t start = ++i;
            for (; i < len && is_digit(s[i]); i++) {
                if (n < 3) {
                    *frac_ms = *frac_ms * 10 + (unsigned)(s[i] - '0');
                    n++;
                }
            }
            if (i == start) return CF_ERR_PARSE;
            for (; n < 3; n++) *frac_ms *= 10;
        }
    }
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        unsigned oh, om = 0;
        i++;
        if (!digits(s, len, &i, 2, &oh)) return CF_ERR_PARSE;
        if (i < len && s[i] == ':') i++;
        if (i < len && !digits(s, len, &i, 2, &om)) return CF_ERR_PARSE;
        if (oh > 23 || om > 59) return CF_ERR_PARSE;
        *offset_min = sign * (int64_t)(oh * 60 + om);
    } else if (len - i == 4 && memcmp(s + i, " UTC", 4) == 0) {
        i += 4;
    }
    if (i != len || hour > 23 || min > 59 || sec > 60) return CF_ERR_PARSE;
    tf->hour = hour;
    tf->minute = min;
    tf->second = sec;
    tf->has_time = true;
    return CF_OK;
}

/* Trims blanks around s[0..*len). */
static const char *trim(const char *s, size_t *len) {
    while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t')) (*len)--;
    while (*len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        (*len)--;
    }
    return s;
}

cf_err_t cf_time_parse(const char *s, size_t len, int64_t *ms) {
    struct cf_time_fields tf;
    unsigned frac_ms;
    int64_t offset_min, days;

    if (!s) return CF_ERR_PARSE;
    s = trim(s, &len);
    if (len == 0) return CF_ERR_PARSE;
    if (len < 5 || s[4] != '-') return parse_epoch(s, len, ms);
    if (parse_written(s, len, false, &tf, &frac_ms, &offset_min) != CF_OK)
        return CF_ERR_PARSE;
    days = days_from_civil(tf.year, tf.month, tf.day);
    *ms = ((days * 86400 + tf.hour * 3600 + tf.minute * 60 + tf.second) -
           offset_min * 60) *
              1000 +
          frac_ms;
    return CF_OK;
}

cf_err_t cf_time_fields_parse(const char *s, size_t len,
                              struct cf_time_fields *tf) {
    unsigned frac_ms;
    int64_t offset_min;
    if (!s) return CF_ERR_PARSE;
    s = trim(s, &len);
    return parse_written(s, len, true, tf, &frac_ms, &offset_min);
}

unsigned cf_time_iso_week(const struct cf_time_fields *tf) {
    /* ISO 8601: weeks start on Monday and week 1 holds the year's first
     * Thursday, so a date's week is that of the Thursday of its week. */
    int64_t days = days_from_civil(tf->year, tf->month, tf->day);
    int64_t weekday =
        ((days % 7) + 7 + 3) % 7; /* 1970-01-01: Thursday; 0 = Monday */
    int64_t thursday = days - weekday + 3;
    int64_t y;
    unsigned m, d;
    civil_from_days(thursday, &y, &m, &d);
    int64_t jan1 = days_from_civil(y, 1, 1);
    return (unsigned)((thursday - jan1) / 7 + 1);
}

void cf_time_format(int64_t ms, char buf[32]) {
    int64_t secs, days, y;
    unsigned m, d, sod, milli;
    /* Floor division so times before 1970 still format correctly. */
    secs = ms / 1000;
    if (ms % 1000 < 0) secs--;
    milli = (unsigned)(ms - secs * 1000);
    days = secs / 86400;
    if (secs % 86400 < 0) days--;
    sod = (unsigned)(secs - days * 86400);
    civil_from_days(days, &y, &m, &d);
    /* Formatted in a scratch buffer wide enough for any int64 year, so
     * the compiler can see nothing is cut; real years fit in 24 chars. */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ",
             (long long)y, m, d, sod / 3600, sod / 60 % 60, sod % 60, milli);
    memcpy(buf, tmp, 31);
    buf[31] = '\0';
}

void cf_duration_format(int64_t ms, char buf[32]) {
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, 32, "%lld%s", (long long)(ms / units[i].ms),
                     units[i].name);
            return;
        }
    snprintf(buf, 32, "%lld%s", (long long)ms, ms ? "ms" : "");
}

static int64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cf_thread_cpu_ns(void) {
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

int64_t cf_process_cpu_ns(void) {
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

int64_t cf_monotonic_ns(void) {
    return clock_ns(CLOCK_MONOTONIC);
}
