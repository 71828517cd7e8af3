/*
 * dead_letter.c - builds dead-letter records (engine/dead_letter.h).
 */
#include "dead_letter.h"

#include <string.h>

#include "buf.h"

cf_err_t cf_dead_letter_build(struct cf_buf *out, const char *reason,
                              const struct cf_position *pos, const char *line,
                              size_t len, bool truncated) {
    struct cf_buf b = *out;
    if (!line) len = 0;
    cf_buf_puts(&b, "{\"kind\":\"dead-letter\",\"reason\":");
    reason = reason ? reason : "unknown";
    cf_buf_json_text(&b, reason, strlen(reason));
    if (pos && pos->source) {
        cf_buf_puts(&b, ",\"source\":");
        /* a file name need not be UTF-8; the record must stay JSON */
        cf_buf_json_text(&b, pos->source, strlen(pos->source));
    }
    if (pos) {
        if (pos->partition >= 0)
            cf_buf_printf(&b, ",\"partition\":%d", (int)pos->partition);
        cf_buf_printf(&b, ",\"offset\":%lld", (long long)pos->offset);
    }
    if (truncated) cf_buf_puts(&b, ",\"truncated\":true");
    if (cf_utf8_valid(line, len)) {
        cf_buf_puts(&b, ",\"line\":");
        cf_buf_json_string(&b, line ? line : "", len);
    } else {
        cf_buf_puts(&b, ",\"line_base64\":\"");
        cf_buf_base64(&b, (const unsigned char *)line, len);
        cf_buf_putc(&b, '"');
    }
    cf_buf_putc(&b, '}');
    *out = b;
    return b.failed ? CF_ERR_NOMEM : CF_OK;
}

cf_err_t cf_dead_letter_write(struct cf_output *out, const char *reason,
                              const struct cf_position *pos, const char *line,
                              size_t len, bool truncated) {
    struct cf_buf b = CF_BUF_INIT;
    cf_err_t rc = cf_dead_letter_build(&b, reason, pos, line, len, truncated);
    if (rc != CF_OK) goto done;
    struct cf_out_record rec =
        cf_out_record_plain("dead-letter", b.data, b.len, pos);
    if (out->ops->write(out, &rec) != CF_IO_OK) rc = CF_ERR_IO;
done:
    cf_buf_free(&b);
    return rc;
}
