/*
 * file_input.h - JSON-lines input from a file, a gzip file or stdin.
 *
 * Used by the command line (app/chainfuse.c) and tests.  Each line is
 * one record; position = (source = the path, partition -1, offset = the
 * 1-based line number).  Threading: one engine thread per input.
 */
#ifndef CF_FILE_INPUT_H
#define CF_FILE_INPUT_H

#include "connector.h"

/*
 * Opens `path` ("-" = stdin) for reading JSON lines.  Plain and gzip
 * files are both accepted (zlib detects which).  Every line is a record,
 * blank ones included (the engine counts those); CRLF is accepted, a
 * last line without newline is still a record.  A line longer than
 * max_line_bytes (0 = 1 MiB) is returned as a record with rec->defect =
 * "line exceeds max_line_bytes", rec->truncated set and data holding its
 * first max_line_bytes bytes; the rest of it is skipped without being
 * buffered.  A UTF-8 byte order mark at the very start of the input is
 * skipped (anywhere else it is data).  A file named *.gz that is not
 * gzip data is read as plain text with one warning on stderr.  On a
 * read error (a corrupt or truncated gzip file) the partly read line,
 * if any, is returned first as a record with rec->defect = "truncated
 * input" and rec->truncated set; then read() answers CF_IO_FAIL, and
 * keeps doing so, and cf_file_input_error() says why.
 *
 * Returns NULL and fills errstr when the file cannot be opened or is a
 * directory.  The
 * caller owns the input and frees it with cf_input_close().
 */
struct cf_input *cf_file_input_open(const char *path, size_t max_line_bytes,
                                    char *errstr, size_t errstr_size);

/* The reason of the last CF_IO_FAIL, naming the file and the last line
 * read ("cannot read x.gz after line 9: unexpected end of file (...)"),
 * or "" (borrowed from the input). */
const char *cf_file_input_error(const struct cf_input *in);

#endif
