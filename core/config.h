/*
 * config.h - chainfuse's configuration file (YAML).
 *
 * The engine-wide settings are parsed here into typed fields.  Each
 * subsystem reads its own section itself (logsource mappings in
 * rules/logsource.c, fusion in engine/fusion.c, ...) through
 * cf_config_section(), so adding a subsystem does not touch this file.
 *
 * Ownership: cf_config_load() returns a config the caller frees with
 * cf_config_destroy(); sections are borrowed from it.  Read-only after
 * load, so threads may share it.
 */
#ifndef CF_CONFIG_H
#define CF_CONFIG_H

#include "common.h"
#include "event.h"

struct json_t;

struct cf_config {
    struct cf_decode_limits limits;  /* input.max_line_bytes, max_depth */
    char *dead_letter_path;          /* dead_letter.path */
    char *cache_dir;                 /* cache.dir; "" disables the cache */
    bool emit_alerts;                /* output.alerts (default true) */
    bool emit_incidents;             /* output.incidents (default true) */
    struct json_t *root;             /* the whole document (an object) */
};

/* Defaults only (no file). */
struct cf_config *cf_config_default(void);

/* Reads `path` (YAML).  Unknown top-level keys are an error naming the
 * key, so a typo does not silently fall back to a default.  NULL with a
 * message in errstr on failure. */
struct cf_config *cf_config_load(const char *path, char *errstr,
                                 size_t errstr_size);

void cf_config_destroy(struct cf_config *cfg); /* NULL is a no-op */

/* The object under top-level key `name`, or NULL when absent. */
const struct json_t *cf_config_section(const struct cf_config *cfg,
                                       const char *name);

#endif
