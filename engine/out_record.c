/*
 * out_record.c - output records as dead letters and back (out_record.h).
 */
#include "out_record.h"

#include <string.h>

#include "buf.h"
#include "dead_letter.h"
#include "sigma.h"

cf_err_t cf_dead_letter_write_record(struct cf_output *out, const char *reason,
                                     const char *output,
                                     const struct cf_out_record *rec) {
    struct cf_buf b = CF_BUF_INIT;
    cf_err_t rc =
        cf_dead_letter_build(&b, reason, rec->pos, rec->json, rec->len, false);
    if (rc != CF_OK) goto done;
    /* the same record with the output's fields before its closing brace */
    cf_buf_truncate(&b, b.len - 1);
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
    cf_buf_putc(&b, '}');
    if (b.failed) {
        rc = CF_ERR_NOMEM;
        goto done;
    }
    struct cf_out_record dl =
        cf_out_record_plain("dead-letter", b.data, b.len, rec->pos);
    if (out->ops->write(out, &dl) != CF_IO_OK) rc = CF_ERR_IO;
done:
    cf_buf_free(&b);
    return rc;
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
