/*
 * timeutil.h - event-time parsing and formatting, and the CPU clocks the
 * engine accounts its stages by.  Thread safe.  Event times are
 * milliseconds since the Unix epoch, UTC.
 */
#ifndef CF_TIMEUTIL_H
#define CF_TIMEUTIL_H

#include "common.h"

/* Parses the timestamp shapes found in logs: RFC 3339 / ISO 8601 with
 * 'T' or ' ' separator, optional fraction (any digits), optional 'Z' or
 * +hh:mm offset (none means UTC); and epoch seconds or milliseconds as
 * digits.  Returns CF_OK and fills *ms, or CF_ERR_PARSE. */
cf_err_t cf_time_parse(const char *s, size_t len, int64_t *ms);

/* A date and time as written in the text, with no time-zone conversion:
 * what Sigma's time-part modifiers (minute, hour, day, week, month,
 * year) read, since the specification says they are "not designed to
 * handle timezone or format conversions". */
struct cf_time_fields {
    int year;
    unsigned month, day, hour, minute, second;
    bool has_time; /* false for a date alone ("2024-03-05") */
};

/* Parses an ISO 8601 date, optionally with a time and zone, into the
 * fields as written (the zone is checked but not applied).  Epoch numbers
 * are not dates here.  CF_ERR_PARSE when the text is not a date. */
cf_err_t cf_time_fields_parse(const char *s, size_t len,
                              struct cf_time_fields *tf);

/* The ISO 8601 week number (1..53) of the date in tf. */
unsigned cf_time_iso_week(const struct cf_time_fields *tf);

/* A duration in milliseconds as the shortest exact text: "90m",
 * "36500d", "1500ms", "0" (config defaults, correlation timespans). */
void cf_duration_format(int64_t ms, char buf[32]);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 chars + NUL) into buf. */
void cf_time_format(int64_t ms, char buf[32]);

/* CPU time consumed so far, in nanoseconds, by the calling thread and by
 * the whole process (user + system).  A system call each: for sampling,
 * not for every record. */
int64_t cf_thread_cpu_ns(void);
int64_t cf_process_cpu_ns(void);

/* CLOCK_MONOTONIC in nanoseconds: a vDSO read, no system call. */
int64_t cf_monotonic_ns(void);

#endif
