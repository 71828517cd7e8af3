/*
 * dead_letter.c - builds dead-letter records (engine/dead_letter.h).
 */
#include "dead_letter.h"

#include <string.h>

#include "buf.h"
#include "sigma.h"

/* {"kind":"dead-letter","reason":.. */
static void begin(struct cf_buf *b, const char *reason) {
    cf_buf_puts(b, "{\"kind\":\"dead-letter\",\"reason\":");
    reason = reason ? reason : "unknown";
    cf_buf_json_text(b, reason, strlen(reason));
}

/* ,"source":..,"partition":..,"offset":..,"truncated":..,"line":..} and
 * the write. */
static cf_err_t finish(struct cf_buf *b, struct cf_output *out,
                       const struct cf_position *pos, const char *line,
                       size_t len, bool truncated) {
    cf_err_t rc = CF_OK;
    if (!line) len = 0;
    if (pos && pos->source) {
        cf_buf_puts(b, ",\"source\":");
        /* a file name need not be UTF-8; the record must stay JSON */
        cf_buf_json_text(b, pos->source, strlen(pos->source));
    }
    if (pos) {
        if (pos->partition >= 0)
            cf_buf_printf(b, ",\"partition\":%d", (int)pos->partition);
        cf_buf_printf(b, ",\"offset\":%lld", (long long)pos->offset);
    }
    if (truncated) cf_buf_puts(b, ",\"truncated\":true");
    if (cf_utf8_valid(line, len)) {
        cf_buf_puts(b, ",\"line\":");
        cf_buf_json_string(b, line ? line : "", len);
    } else {
        cf_buf_puts(b, ",\"line_base64\":\"");
        cf_buf_base64(b, (const unsigned char *)line, len);
        cf_buf_putc(b, '"');
    }
    cf_buf_putc(b, '}');
    if (b->failed) {
        rc = CF_ERR_NOMEM;
        goto done;
    }
    struct cf_out_record rec =
        cf_out_record_plain("dead-letter", b->data, b->len, pos);
    if (out->ops->write(out, &rec) != CF_IO_OK) rc = CF_ERR_IO;
done:
    cf_buf_free(b);
    return rc;
}

cf_err_t cf_dead_letter_write(struct cf_output *out, const char *reason,
                              const struct cf_position *pos, const char *line,
                              size_t len, bool truncated) {
    struct cf_buf b = CF_BUF_INIT;
    begin(&b, reason);
    return finish(&b, out, pos, line, len, truncated);
}

cf_err_t cf_dead_letter_write_record(struct cf_output *out, const char *reason,
                                     const char *output,
                                     const struct cf_out_record *rec) {
    struct cf_buf b = CF_BUF_INIT;
    begin(&b, reason);
    cf_buf_puts(&b, ",\"output\":");
    cf_buf_json_text(&b, output, strlen(output));
    if (rec->kind) {
        cf_buf_puts(&b, ",\"record_kind\":");
        cf_buf_json_text(&b, rec->kind, strlen(rec->kind));
    }
    if (rec->id) {
        cf_buf_puts(&b, ",\"id\":");
        cf_buf_json_text(&b, rec->id, strlen(rec->id));
    }
    if (rec->version) cf_buf_printf(&b, ",\"version\":%u", rec->version);
    return finish(&b, out, rec->pos, rec->json, rec->len, false);
}

static const char *string_of(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

bool cf_out_record_from_json(const json_t *obj, const char *json, size_t len,
                             struct cf_out_record_json *out) {
    const char *kind = string_of(obj, "kind");
    const char *sev = string_of(obj, "severity");
    const json_t *version = json_object_get(obj, "version");
    const json_t *tactics = json_object_get(obj, "tactics");
    enum cf_level level;
    if (!json_is_object(obj) || !kind) return false;
    memset(out, 0, sizeof *out);
    out->rec = cf_out_record_plain(kind, json, len, NULL);
    out->rec.id = string_of(obj, "id");
    if (json_is_integer(version) && json_integer_value(version) > 0)
        out->rec.version = (uint32_t)json_integer_value(version);
    else if (strcmp(kind, "alert") == 0)
        out->rec.version = 1;
    out->rec.status = string_of(obj, "status");
    if (sev && cf_level_parse(sev, &level) == 0) out->rec.severity = (int)level;
    out->rec.score = (int)json_integer_value(json_object_get(obj, "score"));
    for (size_t i = 0; i < json_array_size(tactics) &&
                       out->n_tactics < CF_ARRAY_LEN(out->tactics);
         i++) {
        const char *t = json_string_value(json_array_get(tactics, i));
        if (t) out->tactics[out->n_tactics++] = t;
    }
    out->rec.tactics = out->tactics;
    out->rec.n_tactics = out->n_tactics;
    return true;
}
