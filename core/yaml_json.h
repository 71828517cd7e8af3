/*
 * yaml_json.h - YAML documents to jansson values.
 *
 * Sigma rules, correlation rules, filters and chainfuse's own config are
 * YAML; every consumer works on the jansson tree this produces, so only
 * this file knows libyaml.  Plain scalars are typed the YAML 1.1 way
 * Sigma authors expect (null/~, true/false, integers, floats); quoted
 * scalars stay strings.  Anchors and aliases are resolved.  A key
 * written twice in one mapping is an error (YAML forbids it, and keeping
 * either copy silently loses the other), at any depth.
 *
 * Threading: no shared state; any thread may call these.
 */
#ifndef CF_YAML_JSON_H
#define CF_YAML_JSON_H

#include <jansson.h>
#include "common.h"

/* Parses every document in text[0..len).  On success returns a JSON array
 * of documents (new reference).  On an error returns NULL and writes
 * into errstr what and where: "YAML syntax error at line L, column C:
 * problem", or "duplicate key 'fusion.window' at line L, column C (first
 * at line F)" naming the full key path (list items as "a[1].x"); out of
 * memory, "out of memory" (never a partial document). */
json_t *cf_yaml_to_json(const char *text, size_t len, char *errstr,
                        size_t errstr_size);

/* The text a YAML scalar is matched as, whatever type it was read as
 * (EventID: 4688 is a number, CommandLine a string): strings as they are,
 * integers in decimal, reals as Python (pySigma) prints them (10.0 stays
 * "10.0", else the shortest text that reads back the same), booleans as
 * true / false.  NULL for null, lists and mappings.  The text is either
 * v's own string or written into buf; *len is its length. */
const char *cf_scalar_text(const json_t *v, char *buf, size_t size,
                           size_t *len);

/* The versions of the YAML and JSON libraries this process runs with
 * ("libyaml 0.2.5, jansson 2.14"): what they parse can change with them,
 * so caches of parsed rules are keyed by it. */
const char *cf_yaml_json_versions(char *buf, size_t size);

/* Reads a whole file into a NUL-terminated buffer the caller frees with
 * cf_free(); *len (when len is non-NULL) is its length without the NUL.
 * NULL with errstr when the file cannot be opened or read, or memory
 * runs out (then errstr starts with "out of memory"). */
char *cf_read_file(const char *path, size_t *len, char *errstr,
                   size_t errstr_size);

#endif
