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

/*
 * Targets: another source that serves the rules of one logsource under
 * its own field names.  Built in, after pySigma's Windows audit pipeline
 * (SigmaHQ/pySigma-pipeline-windows, windows_audit_pipeline): Security
 * event 4688 serves `process_creation` rules, with Image read from
 * NewProcessName, ParentImage from ParentProcessName, LogonId from
 * SubjectLogonId and IntegrityLevel from MandatoryLabel (whose values are
 * the SIDs of the levels).  Fields 4688 has no counterpart for (User,
 * ParentCommandLine, Hashes, OriginalFileName, ProcessId, ...; the
 * pipeline fails a rule naming them) are unknown there, never read: on a
 * 4688 event a rule fires only when its condition holds whatever those
 * fields would have said (Kleene's three-valued logic), so `Image: x or
 * OriginalFileName: y` still fires on the Image, while `x and not
 * filter(User)` cannot fire by the filter's field being absent.
 */

/* As cf_fieldmap_lookup, for a field of a rule of logsource (product,
 * category): also the names the targets serving that logsource give the
 * field (Image in a process_creation rule: NewProcessName too).  NULL
 * with *n = 0 when the field maps to itself only. */
const char *const *cf_fieldmap_lookup_for(const struct cf_fieldmap *map,
                                          const char *product,
                                          const char *category,
                                          const char *sigma_field, size_t *n);

/* For an event name a target gives a field (MandatoryLabel): the text the
 * target writes for the value v[0..len) as rules write it, compared
 * case-insensitively ("High" -> "S-1-16-12288"), else NULL (the value is
 * looked for as written).  The string belongs to the map. */
const char *cf_fieldmap_target_value(const struct cf_fieldmap *map,
                                     const char *event_name, const char *v,
                                     size_t len);

struct cf_sigma_rule;
struct cf_sigma_field_cond;

/* Whether `fc`, a condition of `rule`, names a field (or refers to one
 * with |fieldref) that a target serving the rule's logsource lacks: its
 * value is unknown on that target's events. */
bool cf_fieldmap_cond_lacks(const struct cf_fieldmap *map,
                            const struct cf_sigma_rule *rule,
                            const struct cf_sigma_field_cond *fc);

/* Whether `rule` names a field a target serving its logsource lacks.
 * Then returns the service that, with the rule's product and category,
 * routes to the target's events (for 4688: "security"), and sets *field
 * to the first such field; else NULL. */
const char *cf_fieldmap_excluded(const struct cf_fieldmap *map,
                                 const struct cf_sigma_rule *rule,
                                 const char **field);

#endif
