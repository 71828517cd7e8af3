/*
 * file_output.h - JSON-lines output to a file or stdout.
 *
 * Used by the command line for alerts, incidents and dead letters.  Threading:
 * one engine thread per output.
 */
#ifndef CF_FILE_OUTPUT_H
#define CF_FILE_OUTPUT_H

#include "connector.h"

/* The file is created at the first write, so a run that writes nothing
 * (a dead-letter file on a clean run) leaves no new empty file behind.
 * The open still checks that the file can be created, and empties a file
 * that exists, so that an earlier run's records do not pass for this
 * one's. */
#define CF_FILE_OUTPUT_DEFERRED 1u
/* Resuming from a checkpoint: an existing file is kept and appended to
 * (a partial last line, left by a run that was killed, is cut off:
 * the resumed run writes that record again). */
#define CF_FILE_OUTPUT_APPEND 2u

/*
 * Opens `path` ("-" = stdout) for writing, truncating an existing file.
 * write() appends json + '\n' through a buffer; flush() pushes it to the
 * file; a failing write or flush answers CF_IO_FAIL.  `flags` is 0 or
 * CF_FILE_OUTPUT_DEFERRED and/or CF_FILE_OUTPUT_APPEND.  Returns NULL and fills
 * errstr when the file cannot be created.  The caller owns the output and frees
 * it with cf_output_close() (which flushes; stdout itself is flushed but not
 * closed).
 */
struct cf_output *cf_file_output_open(const char *path, unsigned flags,
                                      char *errstr, size_t errstr_size);

/* Why the last write or flush answered CF_IO_FAIL, naming the file and
 * the errno text ("cannot write out.jsonl: No space left on device"), or
 * "" (borrowed from the output). */
const char *cf_file_output_error(const struct cf_output *out);

#endif
