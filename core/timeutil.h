/*
 * timeutil.h - event-time parsing and formatting.  Pure functions, thread
 * safe.  All times are milliseconds since the Unix epoch, UTC.
 */
#ifndef CF_TIMEUTIL_H
#define CF_TIMEUTIL_H

#include "common.h"

/* Parses the timestamp shapes found in logs: RFC 3339 / ISO 8601 with
 * 'T' or ' ' separator, optional fraction (any digits), optional 'Z' or
 * +hh:mm offset (none means UTC); and epoch seconds or milliseconds as
 * digits.  Returns CF_OK and fills *ms, or CF_ERR_PARSE. */
cf_err_t cf_time_parse(const char *s, size_t len, int64_t *ms);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 chars + NUL) into buf. */
void cf_time_format(int64_t ms, char buf[32]);

#endif
