/*
 * yaml_json.h - YAML documents to jansson values.
 *
 * Sigma rules, correlation rules, filters and chainfuse's own config are
 * YAML; every consumer works on the jansson tree this produces, so only
 * this file knows libyaml.  Plain scalars are typed the YAML 1.1 way
 * Sigma authors expect (null/~, true/false, integers, floats); quoted
 * scalars stay strings.  Anchors and aliases are resolved.
 */
#ifndef CF_YAML_JSON_H
#define CF_YAML_JSON_H

#include <jansson.h>
#include "common.h"

/* Parses every document in text[0..len).  On success returns a JSON array
 * of documents (new reference).  On a syntax error returns NULL and
 * writes "line L, column C: problem" into errstr. */
json_t *cf_yaml_to_json(const char *text, size_t len, char *errstr,
                        size_t errstr_size);

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
char *cf_read_file(const char *path, size_t *len, char *errstr,
                   size_t errstr_size);

#endif
