/*
 * common.h - definitions every chainfuse module shares: the error type,
 * the input position every alert and incident traces back to, and a few
 * small helpers.  Header only; no state.
 */
#ifndef CF_COMMON_H
#define CF_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "alloc.h"

/* 0 is success; every failure is negative.  Functions that build an object
 * return NULL instead and describe the failure in (errstr, errstr_size). */
typedef int cf_err_t;
#define CF_OK 0
#define CF_ERR -1       /* generic failure, see errstr */
#define CF_ERR_NOMEM -2 /* allocation failed */
#define CF_ERR_IO -3    /* read/write failure */
#define CF_ERR_PARSE -4 /* malformed input */
#define CF_ERR_LIMIT -5 /* a configured limit was exceeded */

#define CF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CF_UNUSED(x) ((void)(x))

/*
 * Where a record came from.  For files `source` is the file name and
 * `offset` the 1-based line number; for Kafka it is the topic, partition
 * and message offset.  Carried from the input through every alert and
 * incident so that any output can be traced to the exact input record,
 * and so that inputs can commit only what outputs have acknowledged.
 */
struct cf_position {
    const char *source; /* borrowed; lives as long as the input */
    int32_t partition;  /* -1 where the input has no partitions */
    int64_t offset;     /* line number (files) or message offset */
};

/* snprintf into errstr if it is non-NULL; returns `rc` so callers can
 * write `return cf_seterr(errstr, size, CF_ERR, "...", ...)`. */
#include <stdarg.h>
#include <stdio.h>
static inline int cf_seterr(char *errstr, size_t errstr_size, int rc,
                            const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int cf_seterr(char *errstr, size_t errstr_size, int rc,
                            const char *fmt, ...) {
    if (errstr && errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

#endif
