/*
 * file_output.c - the JSON-lines file output and the dead-letter record
 * writer (connectors/file/file_output.h).
 *
 * Writes go through a stdio buffer (records are small, so one write(2)
 * per record would dominate); flush() and close() push it out.  The
 * dead-letter writer only builds the record and hands it to any output.
 *
 * Threading: an output belongs to one engine thread.
 */
#include "file/file_output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define OUT_BUFFER_BYTES ((size_t)256 * 1024)

struct file_output {
    struct cf_output out; /* first: the cf_output handed out is this */
    FILE *fp;
    bool is_stdout;
    char *buffer; /* stdio buffer; must outlive fp */
};

static cf_io_status file_write(struct cf_output *out, const char *kind,
                               const char *json, size_t len,
                               const struct cf_position *pos) {
    struct file_output *fo = out->ctx;
    CF_UNUSED(kind);
    CF_UNUSED(pos);
    if (fwrite(json, 1, len, fo->fp) != len || putc('\n', fo->fp) == EOF ||
        ferror(fo->fp))
        return CF_IO_FAIL;
    out->written++;
    return CF_IO_OK;
}

static cf_io_status file_flush(struct cf_output *out) {
    struct file_output *fo = out->ctx;
    return fflush(fo->fp) == 0 && !ferror(fo->fp) ? CF_IO_OK : CF_IO_FAIL;
}

static void file_close(struct cf_output *out) {
    struct file_output *fo;
    if (!out) return;
    fo = out->ctx;
    if (fo->fp) {
        if (fo->is_stdout) fflush(fo->fp);
        else fclose(fo->fp);
    }
    free(fo->buffer);
    free(fo);
}

static const struct cf_output_ops file_output_ops = {
    .name = "file",
    .write = file_write,
    .flush = file_flush,
    .close = file_close,
};

struct cf_output *cf_file_output_open(const char *path, char *errstr,
                                      size_t errstr_size) {
    struct file_output *fo = NULL;

    if (!path || !*path) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "no output path given (use \"-\" for stdout)");
        goto fail;
    }
    if (!(fo = calloc(1, sizeof *fo))) {
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                  "out of memory opening output %s", path);
        goto fail;
    }
    fo->out.ops = &file_output_ops;
    fo->out.ctx = fo;
    if (strcmp(path, "-") == 0) {
        fo->fp = stdout;
        fo->is_stdout = true;
        return &fo->out;
    }
    if (!(fo->fp = fopen(path, "w"))) {
        cf_seterr(errstr, errstr_size, CF_ERR_IO,
                  "cannot create output %s: %s (check that the directory "
                  "exists and is writable)",
                  path, strerror(errno));
        goto fail;
    }
    /* Without a buffer of our own stdio would still work, only with
     * 4 KiB writes; failing to get one is not worth failing the open. */
    if ((fo->buffer = malloc(OUT_BUFFER_BYTES)))
        setvbuf(fo->fp, fo->buffer, _IOFBF, OUT_BUFFER_BYTES);
    return &fo->out;
fail:
    if (fo) file_close(&fo->out);
    return NULL;
}

/* ---- dead-letter records ------------------------------------------ */

struct strbuf {
    char *s;
    size_t len;
    size_t cap;
    bool failed;
};

static void sb_add(struct strbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1) cap *= 2;
        if (!(p = realloc(b->s, cap))) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(struct strbuf *b, const char *s) {
    sb_add(b, s, strlen(s));
}

/* Appends s as a JSON string (quotes included); s must be UTF-8. */
static void sb_json_string(struct strbuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t esc_len = 2;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        sb_add(b, s + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        }
        sb_add(b, esc, esc_len);
    }
    sb_add(b, s + run, n - run);
    sb_add(b, "\"", 1);
}

static void sb_base64(struct strbuf *b, const unsigned char *s, size_t n) {
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        char out[4];
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n) v |= s[i + 2];
        out[0] = tbl[(v >> 18) & 63];
        out[1] = tbl[(v >> 12) & 63];
        out[2] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[3] = i + 2 < n ? tbl[v & 63] : '=';
        sb_add(b, out, 4);
    }
    sb_add(b, "\"", 1);
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF), so whatever is written as "line" is valid JSON text. */
static bool valid_utf8(const unsigned char *s, size_t n) {
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

cf_err_t cf_dead_letter_write(struct cf_output *out, const char *reason,
                              const struct cf_position *pos, const char *line,
                              size_t len) {
    struct strbuf b = {0};
    cf_err_t rc = CF_OK;
    char num[32];
    cf_io_status st;

    if (!line) len = 0;
    sb_str(&b, "{\"kind\":\"dead-letter\",\"reason\":");
    reason = reason ? reason : "unknown";
    sb_json_string(&b, reason, strlen(reason));
    if (pos && pos->source) {
        sb_str(&b, ",\"source\":");
        sb_json_string(&b, pos->source, strlen(pos->source));
    }
    if (pos) {
        if (pos->partition >= 0) {
            snprintf(num, sizeof num, ",\"partition\":%d", (int)pos->partition);
            sb_str(&b, num);
        }
        snprintf(num, sizeof num, ",\"offset\":%lld", (long long)pos->offset);
        sb_str(&b, num);
    }
    if (valid_utf8((const unsigned char *)line, len)) {
        sb_str(&b, ",\"line\":");
        sb_json_string(&b, line ? line : "", len);
    } else {
        sb_str(&b, ",\"line_base64\":");
        sb_base64(&b, (const unsigned char *)line, len);
    }
    sb_add(&b, "}", 1);
    if (b.failed) {
        rc = CF_ERR_NOMEM;
        goto done;
    }
    st = out->ops->write(out, "dead-letter", b.s, b.len, pos);
    if (st != CF_IO_OK) rc = CF_ERR_IO;
done:
    free(b.s);
    return rc;
}
