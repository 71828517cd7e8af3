/*
 * alert.h - an alert: one rule (or correlation) that fired on one event,
 * with the entities it concerns.  Built by the pipeline, serialized to a
 * "kind":"alert" record, and handed to correlation and fusion.
 *
 * The record's "event" is the input event's own bytes, never re-parsed:
 * a JSON library would turn a 30-digit integer into a float or refuse
 * it, 1.50 into 1.5 and 1e3 into 1000, and reorder or merge keys.
 *
 * Ownership: a cf_alert owns its entity strings and its copy of the event
 * JSON (cf_alert_clear frees them); rule metadata is borrowed from the
 * rulebook, which outlives every alert.
 */
#ifndef CF_ALERT_H
#define CF_ALERT_H

#include <jansson.h>
#include <string.h>

#include "buf.h"
#include "common.h"
#include "connector.h"
#include "event.h"
#include "hash.h"
#include "heap.h"
#include "sigma.h"

enum cf_entity_kind {
    CF_ENTITY_HOST,
    CF_ENTITY_USER,
    CF_ENTITY_SRC_IP,
    CF_ENTITY_DST_IP,
    CF_ENTITY_PROCESS,
    CF_ENTITY_PARENT_PROCESS,
    CF_ENTITY_PROCESS_GUID,
    CF_ENTITY_LOGON_ID,
    CF_ENTITY_FILE_HASH,
    CF_ENTITY_CLOUD_ACCOUNT,
    CF_ENTITY_CLOUD_RESOURCE,
    CF_ENTITY_COUNT
};

/* "host", "user", "src_ip", ... as in the alert JSON. */
const char *cf_entity_kind_name(enum cf_entity_kind kind);

/* The entities of one event; value[k] is NULL where the event has none.
 * Values are as found in the event (normalisation for linking is fusion's
 * job).  Owned strings. */
struct cf_entities {
    char *value[CF_ENTITY_COUNT];
};

struct cf_entity_map; /* which event fields feed which entity */

/* Default field lists (Sysmon, Security, CloudTrail, Azure, Linux), plus
 * the `entities` config section: {host: [FieldA, FieldB], ...} put in
 * front of the defaults.  NULL with errstr on a bad section. */
struct cf_entity_map *cf_entity_map_new(const struct json_t *section,
                                        char *errstr, size_t errstr_size);
void cf_entity_map_destroy(struct cf_entity_map *map);

/* CF_ERR_NOMEM leaves `out` empty (never a lesser field's value in
 * place of the one that could not be copied). */
cf_err_t cf_entities_extract(const struct cf_entity_map *map,
                             const struct cf_event *ev,
                             struct cf_entities *out);
void cf_entities_clear(struct cf_entities *ents);

/* The event field that gives entity `kind`, as cf_entities_extract would
 * pick it, without copying (the "User+Domain" composition aside, which
 * only user fields use); NULL when the event has none.  For the clock
 * check (engine/clocks.c), which wants the host of every event. */
const struct cf_event_field *cf_entity_field(const struct cf_entity_map *map,
                                             const struct cf_event *ev,
                                             enum cf_entity_kind kind);

/* Where the entities of the kinds in `kinds` (a bit per cf_entity_kind)
 * are in an event, as cf_entities_extract would pick them: field[kind]
 * indexes ev->fields (-1 when none, and for kinds not asked), rank[kind]
 * is its name's place in the map's list.  One pass over the event's
 * fields, so the readers of every event (the clock check, fusion's
 * sighting) share it. */
#define CF_ENTITY_ALSO_MAX 16
struct cf_entity_at {
    int field[CF_ENTITY_COUNT];
    int rank[CF_ENTITY_COUNT];
    /* also[j]: the first field named j-th of cf_entity_map_also's names
     * (-1: none) */
    int also[CF_ENTITY_ALSO_MAX];
    /* dom[kind]: for a field[kind] whose name composes ("A+B"), B's
     * first occurrence when its value is usable, else -1 (and -1 for
     * names that do not compose) */
    int dom[CF_ENTITY_COUNT];
};
void cf_entity_locate(const struct cf_entity_map *map,
                      const struct cf_event *ev, unsigned kinds,
                      struct cf_entity_at *at);

/* What cf_entity_locate finds depends on the event's field names, in
 * order, and on which of the named fields have usable values.  Windows
 * logs repeat a few dozen such name sequences (one per provider and
 * event id) over and over, so a memo of them, keyed by the sequence of
 * name hashes, spares most of the pass: an event of a known sequence
 * has its candidate fields' names checked (so a hash collision can never
 * make it wrong) and their values looked at.  One per reader thread;
 * made for one map, which must outlive it.  NULL when out of memory
 * (cf_entity_locate_memo takes a NULL memo and locates plainly; the
 * pipeline refuses to start without one rather than run slower). */
struct cf_entity_shapes;
struct cf_entity_shapes *cf_entity_shapes_new(const struct cf_entity_map *map);
void cf_entity_shapes_destroy(struct cf_entity_shapes *s);
/* cf_entity_locate, through the memo: the same result, always. */
void cf_entity_locate_memo(const struct cf_entity_map *map,
                           struct cf_entity_shapes *s,
                           const struct cf_event *ev, unsigned kinds,
                           struct cf_entity_at *at);

/* Names (up to CF_ENTITY_ALSO_MAX; borrowed, they must outlive the map)
 * that cf_entity_locate finds too, in the same pass: another reader of
 * every event (the domain learning, engine/entity_norm.h) spares a pass
 * of its own over the event's fields, which cost as much as locating
 * the entities.  Replaces any names given before; CF_ERR when there are
 * too many, CF_ERR_NOMEM. */
cf_err_t cf_entity_map_also(struct cf_entity_map *map, const char *const *names,
                            size_t n);

/* The entity of `kind` located in `at` (cf_entity_locate of this
 * event), as cf_entities_extract would give it, cut at
 * CF_ENTITY_TEXT_MAX - 1 bytes: *len bytes, not NUL-terminated, of the
 * event's own value, or of `buf` when it is composed (a user with a
 * domain field beside it); *len 0 when there is none.  Without
 * allocating or copying: fusion reads every event's entities this way. */
#define CF_ENTITY_TEXT_MAX 256
const char *cf_entity_text_of(const struct cf_event *ev,
                              const struct cf_entity_at *at,
                              enum cf_entity_kind kind,
                              char buf[CF_ENTITY_TEXT_MAX], size_t *len);
/* Inline for what most entities are, a field's value as it is; the rest
 * (composed, file hashes) is cf_entity_text_of's. */
static inline const char *cf_entity_text(const struct cf_event *ev,
                                         const struct cf_entity_at *at,
                                         enum cf_entity_kind kind,
                                         char buf[CF_ENTITY_TEXT_MAX],
                                         size_t *len) {
    int i = at->field[kind];
    if (i < 0) {
        *len = 0;
        return "";
    }
    if (at->dom[kind] >= 0 || kind == CF_ENTITY_FILE_HASH)
        return cf_entity_text_of(ev, at, kind, buf, len);
    size_t vl = ev->fields[i].value_len;
    *len = vl < CF_ENTITY_TEXT_MAX - 1 ? vl : CF_ENTITY_TEXT_MAX - 1;
    return ev->fields[i].value;
}

/* Appends json_dumps(v, JSON_COMPACT) to b, byte for byte, for a tree
 * of objects, arrays, strings (valid UTF-8, as json_string makes them),
 * integers, booleans and null: incident records are written this way,
 * several times cheaper than jansson's writer, which decodes the UTF-8
 * of every string it writes.  False, with b as it was, for a tree that
 * holds anything else (a real): cf_buf_json writes those. */
bool cf_json_write_compact(struct cf_buf *b, const json_t *v);

struct cf_alert {
    char id[33];             /* 128-bit hex; same rule + same event = same id */
    int64_t time_ms;         /* event time; CF_TIME_UNKNOWN if none */
    int64_t clock_offset_ms; /* taken off the event's stamp for time_ms
                                (engine/clocks.h); 0 when none */
    const char *rule_id;     /* borrowed from the rulebook */
    const char *rule_title;
    const char *rule_path;
    const char *rule_name; /* may be NULL */
    enum cf_level level;
    char *const *tactics; /* borrowed */
    size_t n_tactics;
    char *const *techniques; /* borrowed */
    size_t n_techniques;
    struct cf_entities entities;
    char *event_json; /* owned copy of the matched event's JSON object,
                         as it came in (see cf_alert_from_event);
                         NULL for correlation alerts */
    size_t event_len;
    struct cf_position pos; /* the input record it came from */
    bool is_correlation;    /* raised by a correlation rule */
    /* Its rule is referenced by correlations, none with `generate: true`
     * (rules/sigma.h): it feeds them and fusion (as context) but is not
     * written as an alert record. */
    bool ungenerated;
    json_t *extra; /* correlation details; owned, may be NULL */
};

/* The rule's metadata into `alert` (id, title, path, name, level,
 * tactics, techniques; all borrowed), for a detection rule or for a
 * Sigma correlation; nothing else is touched. */
void cf_alert_set_rule(struct cf_alert *alert,
                       const struct cf_sigma_rule *rule);
struct cf_sigma_correlation;
void cf_alert_set_correlation(struct cf_alert *alert,
                              const struct cf_sigma_correlation *c);

/* Fills `alert` for `rule` firing on `ev`, which cf_event_decode
 * accepted.  The event is copied byte for byte (cf_event_json), except
 * that line breaks - only possible between tokens of a valid object -
 * become spaces so the record stays one line. */
cf_err_t cf_alert_from_event(struct cf_alert *alert,
                             const struct cf_sigma_rule *rule,
                             const struct cf_event *ev,
                             const struct cf_entity_map *map);
void cf_alert_clear(struct cf_alert *alert);

/* Deep copy (entities, event, extra); borrowed pointers stay borrowed. */
cf_err_t cf_alert_copy(struct cf_alert *dst, const struct cf_alert *src);

/*
 * Alerts waiting for the watermark (fusion, correlation): a core/heap of
 * owned copies, by event time, then by id, so that same-millisecond
 * alerts come out in the same order however they arrived.
 * cf_alert_queue_push copies `a` (CF_ERR_NOMEM leaves the queue as it
 * was); cf_heap_pop hands back a copy the caller clears and frees;
 * cf_alert_queue_free frees what is left.
 */
void cf_alert_queue_init(struct cf_heap *q);
cf_err_t cf_alert_queue_push(struct cf_heap *q, const struct cf_alert *a);
void cf_alert_queue_free(struct cf_heap *q);

/* Appends the "kind":"alert" record to `out`, one line of compact JSON
 * with the event's bytes embedded as its last member.  CF_ERR_NOMEM (and
 * out->failed) when memory ran out. */
cf_err_t cf_alert_write(const struct cf_alert *alert, struct cf_buf *out);

/* The output record of `alert` whose JSON cf_alert_write put in `json`:
 * id, version 1, severity from the rule level, tactics; borrows both. */
struct cf_out_record cf_alert_out_record(const struct cf_alert *alert,
                                         const struct cf_buf *json);

/* Stable 128-bit id of a byte string, as 32 hex chars + NUL: the first
 * half of its SHA-256.  False when OpenSSL refused (`out` is then no
 * id); it allocates nothing for this, so callers' checks are defence. */
bool cf_digest_hex128(const void *data, size_t len, char out[33]);

#endif
