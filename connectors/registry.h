/*
 * registry.h - the one place that maps a URL to the connector that opens
 * it: `kafka://`, `redis://`, `http://` / `https://` (webhook), and for
 * anything else (a path, `file://PATH`, `-`) the file connector.
 *
 * A connector NAME lives in connectors/NAME/, is built when CMake
 * defines CF_HAVE_NAME for this file, and provides
 *   struct cf_input *cf_NAME_input_open(const char *url, const json_t *opts,
 *                                       char *errstr, size_t n);
 *   struct cf_output *cf_NAME_output_open(const char *url,
 *                                         const json_t *opts, char *errstr,
 *                                         size_t n);
 * (opts: the connector's own keys from the YAML item, or NULL).  A
 * connector that is not in the build answers "chainfuse was built
 * without NAME" rather than pretending.
 *
 * Pure functions over constant tables: thread safe.
 */
#ifndef CF_REGISTRY_H
#define CF_REGISTRY_H

#include <jansson.h>

#include "connector.h"

/* What the file connector needs beyond the URL. */
struct cf_connector_args {
    size_t max_line_bytes; /* file input; 0: 1 MiB */
    unsigned file_flags;   /* file output: CF_FILE_OUTPUT_* */
};

/* NULL with errstr ("kafka://...: ...") when it cannot be opened. */
struct cf_input *cf_registry_open_input(const char *url, const json_t *opts,
                                        const struct cf_connector_args *args,
                                        char *errstr, size_t errstr_size);
struct cf_output *cf_registry_open_output(const char *url, const json_t *opts,
                                          const struct cf_connector_args *args,
                                          char *errstr, size_t errstr_size);

/* Whether `url` names a file (or `-`) rather than a service. */
bool cf_registry_is_file(const char *url);

/* The file path of a file URL (`file://` stripped), borrowed from url. */
const char *cf_registry_file_path(const char *url);

/* `url` as it may be shown in messages and stats: a password
 * (`USER:PASS@`) and query values named like secrets (password, secret,
 * token, key) masked as `***`.  New string (cf_free); NULL out of
 * memory. */
char *cf_registry_display_url(const char *url);

#endif
