/*
 * config_map.h - configuration keys described once, as data.
 *
 * Each section of the configuration file with scalar settings is a table
 * of keys (name, type, default, range, help, and where the value lives
 * in the struct the table describes).  One table drives parsing, range
 * checking, the defaults, and the reference printed by `chainfuse config
 * --reference` that the README carries, so a key cannot be documented in
 * one place and parsed differently in another (librdkafka's property
 * table and Fluent Bit's config_map work the same way).
 *
 * Sections whose content is free-form data (logsource tables, field
 * mappings, suppressions) have no key table: they are listed with their
 * help and expected shape, and parsed by their owners.
 *
 * The tables themselves are in config.c.  Pure functions over constant
 * tables: thread safe.
 */
#ifndef CF_CONFIG_MAP_H
#define CF_CONFIG_MAP_H

#include <jansson.h>

#include "buf.h"
#include "common.h"

/* A list of strings.  Owns the array and every string. */
struct cf_strlist {
    char **v;
    size_t n;
};

/* A mapping of strings to strings, in the order written: key[i] ->
 * value[i].  Owns the arrays and every string. */
struct cf_strmap {
    char **key, **value;
    size_t n;
};

/* Clock offsets by host (`time.clock_offsets`): the word `auto` (every
 * host learns its offset), or a mapping of host name to a signed
 * duration or `auto`.  Owns the array and every name. */
struct cf_clock_offset {
    char *host;
    int64_t ms; /* the host clock minus UTC; 0 when learn */
    bool learn; /* `auto` */
};

struct cf_clock_offsets {
    struct cf_clock_offset *v;
    size_t n;
    bool learn_all; /* the whole value was `auto` */
};

enum cf_config_type {
    CF_CONFIG_BOOL,     /* bool: true or false */
    CF_CONFIG_INT,      /* int32_t or int64_t (by the field's size) */
    CF_CONFIG_SIZE,     /* size_t bytes: an integer or "64KiB", "1MiB" */
    CF_CONFIG_DURATION, /* int64_t milliseconds: "500ms", "30s", "15m",
                           "24h", "7d", decimals allowed ("1.5h"); a bare
                           number is seconds */
    CF_CONFIG_STRING,   /* char *, owned; NULL when unset */
    CF_CONFIG_STRLIST,  /* struct cf_strlist of strings */
    CF_CONFIG_STRMAP,   /* struct cf_strmap: a mapping of string to string */
    CF_CONFIG_OFFSETS,  /* struct cf_clock_offsets; min and max bound each
                           duration, which may be negative */
};

struct cf_config_key {
    const char *name;
    enum cf_config_type type;
    /* The default, written as a user would write it in the file and
     * parsed by the same code; NULL leaves the field zero (a STRING
     * NULL, an empty STRLIST). */
    const char *def;
    /* Inclusive bounds for INT, SIZE (bytes) and DURATION (ms). */
    int64_t min, max;
    /* Where the value lives, from the start of the struct the table
     * describes, and its width (checked against the type by a test). */
    size_t offset, size;
    const char *help;
    /* Reference text for a default computed at run time (cache.dir);
     * NULL to print `def`. */
    const char *def_doc;
};

enum cf_config_shape { CF_CONFIG_MAPPING, CF_CONFIG_LIST };

struct cf_config_section_def {
    const char *name;
    const char *help;
    const struct cf_config_key *keys; /* NULL: free-form, see owner */
    size_t n_keys;
    enum cf_config_shape shape; /* free-form: what it must be */
    const char *owner;          /* free-form: the file that parses
                                   it, where its format is told */
};

/* Sets every key of `sec` in `base` to its default, releasing what was
 * there (so call it on zeroed memory first).  CF_ERR_NOMEM, or CF_ERR
 * with a message when a table's default does not parse (a bug a unit
 * test catches). */
cf_err_t cf_config_map_defaults(const struct cf_config_section_def *sec,
                                void *base, char *errstr, size_t errstr_size);

/*
 * Sets the keys of `sec` present in `obj` (a mapping; JSON null reads as
 * an empty section) in `base`; absent keys keep their value.  Unknown
 * keys, wrong types, values out of range (negative sizes, durations past
 * the maximum, including ones that would overflow int64 ms) are refused
 * with "ORIGIN: section.key: reason" in errstr.  On error some keys may
 * have been set; the caller discards `base`.
 */
cf_err_t cf_config_map_parse(const struct cf_config_section_def *sec,
                             const json_t *obj, void *base, const char *origin,
                             char *errstr, size_t errstr_size);

/* Splits the mapping `obj` into the keys `sec` knows (*known) and the
 * others (*rest): the options a connector takes beside the engine's keys
 * (both new references, never NULL on success).  An other key within a
 * typo of a known one is refused ("ORIGIN: WHERE.key: unknown key (did
 * you mean ...)"), as cf_config_map_parse would; `where` names the
 * mapping in messages. */
cf_err_t cf_config_map_split(const struct cf_config_section_def *sec,
                             const json_t *obj, const char *origin,
                             const char *where, json_t **known, json_t **rest,
                             char *errstr, size_t errstr_size);

/* Releases the strings and lists `sec` owns in `base` and zeroes them. */
void cf_config_map_release(const struct cf_config_section_def *sec, void *base);

/* The reference for `secs` in Markdown: for each section with keys a
 * heading, its help and a table (key, type, default, range, help); then
 * one table of the free-form sections.  Appends to `out`. */
void cf_config_map_reference(const struct cf_config_section_def *secs, size_t n,
                             struct cf_buf *out);

/* The candidate closest to `word` by edit distance, if close enough to
 * be a likely typo (at most 2 edits, and fewer than half its letters);
 * else NULL.  `names` is NULL-terminated. */
const char *cf_config_map_nearest(const char *word, const char *const *names);

#endif
