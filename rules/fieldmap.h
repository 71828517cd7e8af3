/*
 * fieldmap.h - Sigma field names to event field names.
 *
 * Sigma rules name fields the Sigma way (Image, CommandLine, Computer);
 * events may name them otherwise (OTRF's Hostname and SourceName, ECS's
 * process.executable).  The map gives, for a Sigma field, the event field
 * names to look up, in order: the Sigma name itself first, then built-in
 * aliases, then names from the `field_mappings` config section
 * ({Image: [process.executable], ...}; a list replaces nothing, it adds).
 *
 * Ownership: the map owns every name it returns; the caller frees the
 * map with cf_fieldmap_destroy().  Immutable after cf_fieldmap_new(), so
 * threads may share it and look up concurrently.
 */
#ifndef CF_FIELDMAP_H
#define CF_FIELDMAP_H

#include "common.h"

struct json_t;
struct cf_fieldmap;

/* NULL with errstr when the section is malformed or memory runs out. */
struct cf_fieldmap *cf_fieldmap_new(const struct json_t *section, char *errstr,
                                    size_t errstr_size);
void cf_fieldmap_destroy(struct cf_fieldmap *map); /* NULL is a no-op */

/* The event names for `sigma_field`, the field itself first, in *n.
 * The array and strings belong to the map and live as long as it.  A
 * field the map has no entry for maps to itself only: the answer is
 * then NULL with *n = 0, and the caller uses sigma_field. */
const char *const *cf_fieldmap_lookup(const struct cf_fieldmap *map,
                                      const char *sigma_field, size_t *n);

#endif
