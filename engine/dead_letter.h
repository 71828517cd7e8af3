/*
 * dead_letter.h - the dead-letter record: what the engine writes, to
 * whatever output it was given, for an input record it could not process
 * or an output record no output would take.
 *
 * Called by the pipeline; any connector can be the dead-letter output.
 */
#ifndef CF_DEAD_LETTER_H
#define CF_DEAD_LETTER_H

#include "buf.h"
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
/* The same record appended to `b` (CF_ERR_NOMEM when it ran out). */
cf_err_t cf_dead_letter_build(struct cf_buf *b, const char *reason,
                              const struct cf_position *pos, const char *line,
                              size_t len, bool truncated);

cf_err_t cf_dead_letter_write(struct cf_output *out, const char *reason,
                              const struct cf_position *pos, const char *line,
                              size_t len, bool truncated);

#endif
