/*
 * out_record.h - output records as dead letters and back: what an output
 * that could not deliver a record writes, and what `chainfuse deadletter
 * replay` reads to send it again.
 *
 * Pure functions; thread safe.
 */
#ifndef CF_OUT_RECORD_H
#define CF_OUT_RECORD_H

#include <jansson.h>

#include "connector.h"

/*
 * Writes the dead letter of an output record that `output` (the output's
 * name, "webhook") took and could not deliver: the dead-letter record of
 * cf_dead_letter_write with "line" the record itself, plus "output",
 * "record_kind", and the record's "id" and "version" when it has them.
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
