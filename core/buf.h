/*
 * buf.h - the one growable byte buffer every chainfuse module uses to
 * build records, keys and messages.
 *
 * Appends never fail loudly: the first allocation failure sets `failed`,
 * later appends are no-ops, and the owner checks `failed` once when the
 * record is complete (as SQLite's StrAccum does).  The content is always
 * NUL-terminated once anything has been appended.
 *
 * Ownership: the buffer owns `data`; cf_buf_free() releases it and
 * leaves an empty buffer.  Threading: a buffer belongs to one thread.
 */
#ifndef CF_BUF_H
#define CF_BUF_H

#include "common.h"

struct cf_buf {
    char *data;  /* NULL until the first append */
    size_t len;  /* bytes in use, not counting the NUL */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed; the content is incomplete */
};

#define CF_BUF_INIT                                                            \
    { NULL, 0, 0, false }

/* Makes room for `extra` more bytes (plus the NUL).  Returns false and
 * sets `failed` when memory runs out. */
bool cf_buf_reserve(struct cf_buf *b, size_t extra);

void cf_buf_append(struct cf_buf *b, const void *s, size_t n);
void cf_buf_puts(struct cf_buf *b, const char *s);
void cf_buf_putc(struct cf_buf *b, char c);
void cf_buf_printf(struct cf_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends s[0..n) as a JSON string, quotes included.  `s` must be valid
 * UTF-8 (see cf_utf8_valid); control characters, '"' and '\\' are
 * escaped. */
void cf_buf_json_string(struct cf_buf *b, const char *s, size_t n);

/* Appends the JSON text of `v` (json_dumpb flags).  Use this, not
 * json_dumps: jansson 2.14 ignores a failed append after an object key
 * and returns text without that key's closing quote, while this appends
 * to a buffer that stays failed once an append failed. */
struct json_t;
void cf_buf_json(struct cf_buf *b, const struct json_t *v, size_t flags);

/* As cf_buf_json_string, for text that may not be valid UTF-8 (a file
 * name, a value from the outside): each byte that does not start a valid
 * sequence becomes U+FFFD, so the result is always valid JSON. */
void cf_buf_json_text(struct cf_buf *b, const char *s, size_t n);

/* Appends s[0..n) base64-encoded (RFC 4648, padded), without quotes. */
void cf_buf_base64(struct cf_buf *b, const unsigned char *s, size_t n);

/* Forgets the content but keeps the allocation (and clears `failed`). */
void cf_buf_reset(struct cf_buf *b);

/* Cuts the content to its first `len` bytes (no-op when it is not
 * longer), keeping the NUL; for text built as a stack, such as a dotted
 * name that drops its last segment. */
void cf_buf_truncate(struct cf_buf *b, size_t len);

/* Frees the allocation; the buffer is empty and reusable afterwards. */
void cf_buf_free(struct cf_buf *b);

/* Hands the content to the caller, who frees it with cf_free(), and
 * empties the buffer.  NULL when nothing was appended or an append
 * failed (the content is freed then). */
char *cf_buf_steal(struct cf_buf *b);

/* Strict UTF-8: no overlong forms, surrogates or code points past
 * U+10FFFF. */
bool cf_utf8_valid(const void *s, size_t n);

#endif
