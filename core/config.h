/*
 * config.h - chainfuse's configuration file (YAML).
 *
 * Every section with scalar settings is described once, as a table of
 * keys in config.c (name, type, default, range, help): the file is
 * parsed and checked against those tables here, into the typed fields
 * below, and the same tables print the reference (`chainfuse config
 * --reference`, pasted in the README).  A mistake anywhere in the file
 * is found when it is read, named by file and full key.
 *
 * Sections that are free-form data (placeholders, logsources,
 * field_mappings, entities, suppressions) are listed in the same table
 * with their help and shape, so a misspelt section is still an error,
 * and are parsed by their owners through cf_config_section().
 *
 * Ownership: cf_config_load() and cf_config_from_json() return a config
 * the caller frees with cf_config_destroy(); its strings, lists and
 * sections are borrowed from it.  Read-only after load, so threads may
 * share it.
 */
#ifndef CF_CONFIG_H
#define CF_CONFIG_H

#include "common.h"
#include "config_map.h"
#include "event.h"

/* Section `correlation` (engine/correlate.c). */
struct cf_correlation_settings {
    int64_t max_open_windows;
};

/* Section `fusion` (engine/fusion.c).  Durations in milliseconds. */
struct cf_fusion_settings {
    int64_t lateness, max_future_skew, window, close_after, suppression_window,
        update_interval, entity_ttl;
    int64_t min_stages, max_open_incidents, max_alerts,
        max_entities_per_incident, max_rules_per_incident, max_pending_alerts,
        max_tracked_entities, weak_threshold;
    int64_t prevalence_horizon, noise_span, confirm_after; /* ms */
    int64_t rare_hosts, common_percent, max_prevalence_values, noise_alerts;
    struct cf_strlist never_link; /* as written; fusion normalises them */
};

/* Section `identity` (engine/entity_norm.c): which account names are
 * one account. */
struct cf_identity_settings {
    struct cf_strmap domains; /* NetBIOS domain -> DNS domain, as written */
    bool learn_domains;       /* learn more pairs from events */
};

/* Section `time` (core/event_time.c, engine/clocks.c). */
struct cf_time_settings {
    struct cf_strlist fields; /* tried first, in order */
    bool builtin_fields;      /* then the built-in list */
    struct cf_clock_offsets clock_offsets;
};

/* One item of the `outputs` list: where records go and which.  The
 * engine's keys are typed here (engine/fanout.h checks the kind and
 * severity names); `options` holds the item's other keys, the
 * connector's own options, passed to it unchanged. */
struct cf_output_item {
    char *url;
    struct cf_strlist kinds;
    char *min_severity;
    struct cf_strlist tactics;
    int64_t max_buffered;
    int64_t retry_for;      /* ms; 0 retries for ever */
    struct json_t *options; /* owned; NULL when none */
};

/* engine.threads and --threads: more detection threads than this is a
 * typing error, not a machine; unset, one per online CPU up to
 * CF_AUTO_THREADS. */
#define CF_MAX_THREADS 256
#define CF_AUTO_THREADS 64

struct cf_config {
    struct cf_decode_limits limits; /* input.max_line_bytes, max_depth */
    char *dead_letter_path;         /* dead_letter.path */
    char *cache_dir;                /* cache.dir; "" disables the cache */
    char *input_url;                /* input.url; NULL: standard input */
    struct json_t *input_options;   /* input's other keys, for the
                                       connector; owned, NULL when none */
    struct cf_output_item *outputs; /* outputs; n_outputs == 0: stdout */
    size_t n_outputs;
    char *state_dir;        /* state.dir; NULL: no checkpoints */
    int64_t state_interval; /* state.interval, ms */
    bool state_background;  /* state.background */
    int64_t threads;        /* engine.threads; 0: one per online CPU */
    bool emit_alerts;       /* output.alerts */
    bool emit_incidents;    /* output.incidents */
    struct cf_correlation_settings correlation;
    struct cf_fusion_settings fusion;
    struct cf_identity_settings identity;
    struct cf_time_settings time;
    struct json_t *root; /* the whole document (an object) */
};

/* Defaults only (no file).  NULL when out of memory. */
struct cf_config *cf_config_default(void);

/* Reads `path` (YAML) and checks it whole: unknown sections and keys
 * (with a suggestion), wrong types, values out of range, keys written
 * twice, and the shape of free-form sections.  NULL with "PATH: ..." in
 * errstr on failure, naming the full key ("PATH: fusion.window: ..."). */
struct cf_config *cf_config_load(const char *path, char *errstr,
                                 size_t errstr_size);

/* The same from a parsed document `root` (a mapping; NULL for
 * defaults), borrowed; `origin` names it in messages. */
struct cf_config *cf_config_from_json(const struct json_t *root,
                                      const char *origin, char *errstr,
                                      size_t errstr_size);

void cf_config_destroy(struct cf_config *cfg); /* NULL is a no-op */

/* The value under top-level key `name`, or NULL when absent or empty.
 * For the free-form sections; scalar sections are read from the typed
 * fields above. */
const struct json_t *cf_config_section(const struct cf_config *cfg,
                                       const char *name);

/* Every section chainfuse understands, in reference order. */
const struct cf_config_section_def *cf_config_sections(size_t *n);

/* Appends the Markdown reference of every section to `out`. */
void cf_config_reference(struct cf_buf *out);

#endif
