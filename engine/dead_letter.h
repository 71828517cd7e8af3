/*
 * dead_letter.h - the dead-letter record: what the engine writes, to
 * whatever output it was given, for an input record it could not process
 * or an output record no output would take.
 *
 * Called by the pipeline; any connector can be the dead-letter output.
 */
#ifndef CF_DEAD_LETTER_H
#define CF_DEAD_LETTER_H

#include <jansson.h>

#include "connector.h"

/*
 * Writes one dead-letter record to `out`:
 * {"kind":"dead-letter","reason":..,"source":..,"partition":..,
 *  "offset":..,"truncated":true?,"line":..}
 * where "line" is the record as a JSON string when it is valid UTF-8,
 * else "line_base64" holds it base64-encoded.  `truncated` says the
 * record was cut at the input's size limit and `line` is its first part.
 * `pos` may be NULL (then source and offset are left out).  Nothing is
 * borrowed past the call.  Returns CF_OK, CF_ERR_NOMEM, or CF_ERR_IO
 * when the output did not accept the record (FAIL or RETRY: the caller
 * may try again).
 */
cf_err_t cf_dead_letter_write(struct cf_output *out, const char *reason,
                              const struct cf_position *pos, const char *line,
                              size_t len, bool truncated);

/*
 * Writes the dead letter of an output record that `output` (the output's
 * name, "webhook") took and could not deliver:
 * {"kind":"dead-letter","reason":..,"output":..,"record_kind":..,"id":..,
 *  "version":..,"source":..,"partition":..,"offset":..,"line":<record>}.
 * "output" is what tells `chainfuse deadletter replay` that "line" is a
 * record it can send again.  Returns as cf_dead_letter_write.
 */
cf_err_t cf_dead_letter_write_record(struct cf_output *out, const char *reason,
                                     const char *output,
                                     const struct cf_out_record *rec);

/* An output record rebuilt from its JSON text and parsed object (a
 * record chainfuse wrote): kind, id, version (alerts 1), status,
 * severity, score, tactics (the first 64).  Borrows from `obj` and
 * `json`.  False when `obj` is not an object with a string "kind". */
struct cf_out_record_json {
    struct cf_out_record rec;
    const char *tactics[64];
    size_t n_tactics;
};
bool cf_out_record_from_json(const json_t *obj, const char *json, size_t len,
                             struct cf_out_record_json *out);

#endif
