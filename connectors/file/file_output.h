/*
 * file_output.h - JSON-lines output to a file or stdout, and the
 * dead-letter record writer.
 *
 * Used by the command line and the pipeline (alerts, incidents and the
 * dead-letter file).  Threading: one engine thread per output.
 */
#ifndef CF_FILE_OUTPUT_H
#define CF_FILE_OUTPUT_H

#include "connector.h"

/*
 * Opens `path` ("-" = stdout) for writing, truncating an existing file.
 * write() appends json + '\n' through a buffer; flush() pushes it to the
 * file; a failing write or flush answers CF_IO_FAIL.  Returns NULL and
 * fills errstr when the file cannot be created.  The caller owns the
 * output and frees it with cf_output_close() (which flushes; stdout
 * itself is flushed but not closed).
 */
struct cf_output *cf_file_output_open(const char *path, char *errstr,
                                      size_t errstr_size);

/*
 * Writes one dead-letter record to `out` (any output, not only a file):
 * {"kind":"dead-letter","reason":..,"source":..,"offset":..,"line":..}
 * where "line" is the record as a JSON string when it is valid UTF-8,
 * else "line_base64" holds it base64-encoded.  `pos` may be NULL (then
 * source and offset are left out).  Nothing is borrowed past the call.
 * Returns CF_OK, CF_ERR_NOMEM, or CF_ERR_IO when the output did not
 * accept the record (FAIL or RETRY: the caller may try again).
 */
cf_err_t cf_dead_letter_write(struct cf_output *out, const char *reason,
                              const struct cf_position *pos, const char *line,
                              size_t len);

#endif
