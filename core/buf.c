/*
 * buf.c - the growable byte buffer (core/buf.h).
 */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"

bool cf_buf_reserve(struct cf_buf *b, size_t extra) {
    size_t need, cap;
    char *p;
    if (b->failed) return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return false;
    }
    need = b->len + extra + 1;
    if (need <= b->cap) return true;
    cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (!(p = cf_realloc(b->data, cap))) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void cf_buf_append(struct cf_buf *b, const void *s, size_t n) {
    if (!cf_buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cf_buf_puts(struct cf_buf *b, const char *s) {
    cf_buf_append(b, s, strlen(s));
}

void cf_buf_putc(struct cf_buf *b, char c) {
    cf_buf_append(b, &c, 1);
}

void cf_buf_printf(struct cf_buf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    if (b->failed) return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!cf_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cf_buf_json_string(struct cf_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    cf_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t esc_len = 2;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        cf_buf_append(b, s + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        }
        cf_buf_append(b, esc, esc_len);
    }
    cf_buf_append(b, s + run, n - run);
    cf_buf_putc(b, '"');
}

void cf_buf_json_text(struct cf_buf *b, const char *s, size_t n) {
    if (cf_utf8_valid(s, n)) {
        cf_buf_json_string(b, s, n);
        return;
    }
    struct cf_buf clean = CF_BUF_INIT;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80       ? 1
                   : c >> 5 == 6  ? 2
                   : c >> 4 == 14 ? 3
                   : c >> 3 == 30 ? 4
                                  : 0;
        if (k && i + k <= n && cf_utf8_valid(s + i, k)) {
            cf_buf_append(&clean, s + i, k);
            i += k;
        } else {
            cf_buf_append(&clean, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    if (clean.failed)
        b->failed = true;
    else
        cf_buf_json_string(b, clean.data ? clean.data : "", clean.len);
    cf_buf_free(&clean);
}

void cf_buf_base64(struct cf_buf *b, const unsigned char *s, size_t n) {
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        char out[4];
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n) v |= s[i + 2];
        out[0] = tbl[(v >> 18) & 63];
        out[1] = tbl[(v >> 12) & 63];
        out[2] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[3] = i + 2 < n ? tbl[v & 63] : '=';
        cf_buf_append(b, out, 4);
    }
}

void cf_buf_reset(struct cf_buf *b) {
    b->len = 0;
    b->failed = false;
    if (b->data) b->data[0] = '\0';
}

void cf_buf_truncate(struct cf_buf *b, size_t len) {
    if (len >= b->len) return;
    b->len = len;
    b->data[len] = '\0';
}

void cf_buf_free(struct cf_buf *b) {
    cf_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

static int json_append(const char *text, size_t n, void *data) {
    struct cf_buf *b = data;
    cf_buf_append(b, text, n);
    return b->failed ? -1 : 0;
}

/* One pass of json_dump_callback straight into the buffer: json_dumpb
 * wants a sizing pass first, and dumping each rule twice (with sorted
 * keys, for its digest) was a sixth of the start-up.  On failure (jansson
 * out of memory, or the buffer) the buffer is failed and the text written
 * so far cut off. */
void cf_buf_json(struct cf_buf *b, const json_t *v, size_t flags) {
    size_t start = b->len;
    if (b->failed) return;
    /* b->failed too: jansson ignores a failed append after an object
     * key, but the buffer stays failed once an append failed. */
    if (json_dump_callback(v, json_append, b, flags) != 0 || b->failed) {
        b->failed = true;
        if (b->data) {
            b->len = start;
            b->data[start] = '\0';
        }
    }
}

char *cf_buf_steal(struct cf_buf *b) {
    char *s = b->failed ? NULL : b->data;
    if (b->failed) cf_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
    return s;
}

bool cf_utf8_valid(const void *data, size_t n) {
    const unsigned char *s = data;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k) return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}
