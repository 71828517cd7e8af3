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
 * Immutable after construction; thread safe.
 */
#ifndef CF_FIELDMAP_H
#define CF_FIELDMAP_H

#include "common.h"

struct json_t;
struct cf_fieldmap;

struct cf_fieldmap *cf_fieldmap_new(const struct json_t *section,
                                    char *errstr, size_t errstr_size);
void cf_fieldmap_destroy(struct cf_fieldmap *map);

/* The event names for `sigma_field` (at least the field itself).  The
 * array and strings are owned by the map. */
const char *const *cf_fieldmap_lookup(const struct cf_fieldmap *map,
                                      const char *sigma_field, size_t *n);

#endif
