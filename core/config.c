/*
 * config.c - chainfuse's configuration: every section and key, described
 * once in the tables below, and the loader that checks a file against
 * them (see config.h; the README's reference is generated from here).
 */
#include "config.h"

#include <stddef.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_json.h"

/* One key stored in struct cf_config at `field` (a member path such as
 * fusion.window). */
#define KEY(name, type, def, min, max, field, help)                            \
    {                                                                          \
        name, type, def, min, max, offsetof(struct cf_config, field),          \
            sizeof(((struct cf_config *)0)->field), help, NULL                 \
    }

#define GIB (1LL << 30)
/* Longest duration: a century of milliseconds, far from int64 overflow
 * when added to any event time. */
#define MAX_DURATION (36500LL * 24 * 3600 * 1000)

static const struct cf_config_key input_keys[] = {
    KEY("url", CF_CONFIG_STRING, NULL, 0, 0, input_url,
        "where events come from: a file path, `-` for standard input, or "
        "`kafka://BROKERS/TOPIC[,TOPIC...]?group=NAME[&stop_at_end=true]` "
        "(`--input` overrides it); keys not listed here are the "
        "connector's own options, passed to it"),
    KEY("max_line_bytes", CF_CONFIG_SIZE, "1MiB", 1, GIB, limits.max_line_bytes,
        "longest event line read; a longer line is dead-lettered"),
    /* simdjson's parser refuses deeper documents anyway */
    KEY("max_depth", CF_CONFIG_INT, "64", 1, 1024, limits.max_depth,
        "deepest JSON nesting accepted (the event object is level 1); a "
        "deeper event is dead-lettered"),
};

static const struct cf_config_key dead_letter_keys[] = {
    KEY("path", CF_CONFIG_STRING, "chainfuse-deadletter.jsonl", 0, 0,
        dead_letter_path,
        "where lines that cannot be processed go, one JSON record each with "
        "the reason (`--dead-letter` overrides it)"),
};

static const struct cf_config_key cache_keys[] = {
    {"dir", CF_CONFIG_STRING, NULL, 0, 0, offsetof(struct cf_config, cache_dir),
     sizeof(char *),
     "parsed rule files and compiled rule databases, reused while the "
     "rules, placeholders and mappings are unchanged; \"\" disables the "
     "cache",
     "`$CHAINFUSE_CACHE_DIR`, else `$XDG_CACHE_HOME/chainfuse`, else "
     "`~/.cache/chainfuse`"},
};

static const struct cf_config_key output_keys[] = {
    KEY("alerts", CF_CONFIG_BOOL, "true", 0, 0, emit_alerts,
        "write alert records (`--no-alerts` turns them off)"),
    KEY("incidents", CF_CONFIG_BOOL, "true", 0, 0, emit_incidents,
        "write incident records"),
};

#define ITEM_KEY(name, type, def, min, max, field, help)                       \
    {                                                                          \
        name, type, def, min, max, offsetof(struct cf_output_item, field),     \
            sizeof(((struct cf_output_item *)0)->field), help, NULL            \
    }

static const struct cf_config_key output_item_keys[] = {
    ITEM_KEY("url", CF_CONFIG_STRING, NULL, 0, 0, url,
             "required: a file path or `-`, `redis://[USER:PASS@]HOST:PORT"
             "[/DB][?prefix=P]`, `http(s)://...` (webhook), "
             "`kafka://BROKERS/TOPIC`"),
    ITEM_KEY("kinds", CF_CONFIG_STRLIST, "[\"alert\", \"incident\"]", 0, 0,
             kinds, "record kinds written: `alert`, `incident`, `dead-letter`"),
    ITEM_KEY("min_severity", CF_CONFIG_STRING, NULL, 0, 0, min_severity,
             "lowest severity of alerts and incidents written "
             "(informational, low, medium, high, critical); none: all"),
    ITEM_KEY("tactics", CF_CONFIG_STRLIST, NULL, 0, 0, tactics,
             "only alerts and incidents carrying one of these ATT&CK "
             "tactics (credential-access, ...); none: all"),
    ITEM_KEY("max_buffered", CF_CONFIG_INT, "10000", 1, INT32_MAX, max_buffered,
             "records held for this output while it retries; when full, "
             "input pauses (nothing is dropped)"),
    ITEM_KEY("retry_for", CF_CONFIG_DURATION, "0", 0, MAX_DURATION, retry_for,
             "after retrying this long the output's records go to the "
             "dead-letter output instead; 0 retries for ever"),
};

static const struct cf_config_key state_keys[] = {
    KEY("dir", CF_CONFIG_STRING, NULL, 0, 0, state_dir,
        "where checkpoints are kept (`--state` overrides it); none: no "
        "checkpoints, a restart starts afresh"),
    KEY("interval", CF_CONFIG_DURATION, "10s", 100, MAX_DURATION,
        state_interval,
        "how often a checkpoint is written (and input positions "
        "committed); one is also written at shutdown"),
    KEY("background", CF_CONFIG_BOOL, "true", 0, 0, state_background,
        "periodic checkpoints are written by a forked child from a copy of "
        "memory, so the engine pauses only for the flush and the fork; "
        "false writes them in-process"),
};

static const struct cf_config_key engine_keys[] = {
    {"threads", CF_CONFIG_INT, NULL, 1, CF_MAX_THREADS,
     offsetof(struct cf_config, threads), sizeof(int64_t),
     "detection threads (decode, route, match); the reading thread feeds "
     "them batches and does correlation, fusion and output in input "
     "order, so the output is the same with any number; 1 runs all on "
     "one thread (`--threads` overrides it)",
     "the number of online CPUs, at most 64"},
};

static const struct cf_config_key correlation_keys[] = {
    /* window slots are indexed by uint32 with a table twice as large */
    KEY("max_open_windows", CF_CONFIG_INT, "1000000", 1, INT32_MAX,
        correlation.max_open_windows,
        "open correlation windows kept; past it the oldest (by event "
        "time) is evicted and counted"),
};

static const struct cf_config_key fusion_keys[] = {
    KEY("lateness", CF_CONFIG_DURATION, "15m", 0, MAX_DURATION, fusion.lateness,
        "how late an alert may arrive and still be fused in event-time "
        "order: the watermark is the newest event time minus this"),
    KEY("max_future_skew", CF_CONFIG_DURATION, "1h", 0, MAX_DURATION,
        fusion.max_future_skew,
        "an event stamped later than the wall clock plus this is kept and "
        "counted (future_events) but never moves the watermark, so one "
        "bad clock cannot hold every incident back"),
    KEY("window", CF_CONFIG_DURATION, "24h", 0, MAX_DURATION, fusion.window,
        "alerts sharing an entity within this much event time link into "
        "one incident"),
    KEY("close_after", CF_CONFIG_DURATION, "24h", 0, MAX_DURATION,
        fusion.close_after,
        "event time without new alerts before an incident closes"),
    KEY("suppression_window", CF_CONFIG_DURATION, "1h", 0, MAX_DURATION,
        fusion.suppression_window,
        "the same rule on the same entities again within this is counted "
        "as a duplicate of the first alert"),
    KEY("update_interval", CF_CONFIG_DURATION, "1m", 0, MAX_DURATION,
        fusion.update_interval,
        "a changed incident is emitted at most once per this much event "
        "time (0 means 1ms)"),
    KEY("entity_ttl", CF_CONFIG_DURATION, "7d", 0, MAX_DURATION,
        fusion.entity_ttl, "an entity not seen for this long is forgotten"),
    /* ATT&CK enterprise has 14 kill-chain positions (engine/killchain.h) */
    KEY("min_stages", CF_CONFIG_INT, "2", 1, 14, fusion.min_stages,
        "kill-chain stages an incident needs before it is raised (emitted); "
        "a high or critical alert raises it at once"),
    KEY("max_open_incidents", CF_CONFIG_INT, "10000", 1, INT32_MAX,
        fusion.max_open_incidents,
        "open incidents kept; past it the one quiet for longest is closed "
        "early and counted"),
    KEY("max_alerts", CF_CONFIG_INT, "1000", 1, INT32_MAX, fusion.max_alerts,
        "alert ids listed per incident (counts stay exact)"),
    KEY("max_entities_per_incident", CF_CONFIG_INT, "256", 1, INT32_MAX,
        fusion.max_entities_per_incident, "entity values kept per incident"),
    KEY("max_rules_per_incident", CF_CONFIG_INT, "256", 1, INT32_MAX,
        fusion.max_rules_per_incident, "distinct rules kept per incident"),
    KEY("max_pending_alerts", CF_CONFIG_INT, "1000000", 1, INT32_MAX,
        fusion.max_pending_alerts,
        "alerts waiting for the watermark; past it the oldest is processed "
        "early and counted"),
    KEY("max_tracked_entities", CF_CONFIG_INT, "1000000", 1, INT32_MAX,
        fusion.max_tracked_entities,
        "entities remembered for linking; past it the least recently seen "
        "are forgotten first"),
    KEY("weak_threshold", CF_CONFIG_INT, "10", 1, INT32_MAX,
        fusion.weak_threshold,
        "an entity already in more distinct incidents than this stops "
        "linking (a shared server, a scanner)"),
    /* Prevalence (engine/prevalence.h): the thresholds are relative to
     * the estate, as an analyst reads "rare": a value carried by one
     * machine, the one it moved to and the domain controller that
     * authenticated the move (which sees every account) is rare
     * anywhere; one carried by a quarter of the machines is how that
     * estate works. */
    KEY("prevalence_horizon", CF_CONFIG_DURATION, "7d", 1, MAX_DURATION,
        fusion.prevalence_horizon,
        "how long a sighting of an entity value (in any event) counts "
        "towards its prevalence"),
    KEY("rare_hosts", CF_CONFIG_INT, "3", 1, 12, fusion.rare_hosts,
        "an entity value seen on at most this many hosts is rare: it links "
        "alerts on different hosts"),
    KEY("common_percent", CF_CONFIG_INT, "25", 1, 100, fusion.common_percent,
        "an entity value seen on more than rare_hosts hosts and more than "
        "this share of the estate's hosts is common: it never links "
        "alerts on different hosts (refused links are counted)"),
    KEY("confirm_after", CF_CONFIG_DURATION, "1h", 0, MAX_DURATION,
        fusion.confirm_after,
        "two incidents on different hosts that share a rare value are "
        "merged only if the value is still rare this much event time "
        "later: a binary being rolled out looks rare on its first two "
        "machines"),
    KEY("max_prevalence_values", CF_CONFIG_INT, "32768", 64, INT32_MAX,
        fusion.max_prevalence_values,
        "entity values whose prevalence is tracked (about 250 bytes each); "
        "past it the least recently seen are forgotten"),
    KEY("noise_alerts", CF_CONFIG_INT, "10", 2, INT32_MAX, fusion.noise_alerts,
        "a rule firing this many times on one host, spread over at least "
        "noise_span, is that host's baseline: folded into its incident as "
        "duplicates, flagged noisy, without stages, severity or time bounds"),
    KEY("noise_span", CF_CONFIG_DURATION, "1h", 0, MAX_DURATION,
        fusion.noise_span,
        "how long a rule must keep firing on a host before it counts as "
        "noise; a burst shorter than this is activity, not baseline"),
    KEY("never_link", CF_CONFIG_STRLIST, NULL, 0, 0, fusion.never_link,
        "entity values that never link (a collector's host name), beside "
        "the built-in SYSTEM, -, loopback addresses..."),
};

static const struct cf_config_key identity_keys[] = {
    KEY("domains", CF_CONFIG_STRMAP, NULL, 0, 0, identity.domains,
        "NetBIOS domain name to DNS domain name (`ACME: acme.local`): "
        "`ACME\\bchen`, `ACME.LOCAL\\bchen` and `bchen@acme.local` are "
        "then one account; beside the pairs learned from events, and "
        "preferred to them"),
    KEY("learn_domains", CF_CONFIG_BOOL, "true", 0, 0, identity.learn_domains,
        "learn NetBIOS-DNS domain pairs from Windows events that carry both "
        "(a machine account on its own host, a domain SID seen with both "
        "names)"),
};

/* A host clock a week off is no time zone: beyond it, the stamps are
 * not worth correcting. */
#define MAX_CLOCK_OFFSET (7LL * 24 * 3600 * 1000)

static const struct cf_config_key time_keys[] = {
    KEY("fields", CF_CONFIG_STRLIST, NULL, 0, 0, time.fields,
        "event fields naming the event time, tried in this order before the "
        "built-in list (UtcTime, TimeCreated, TimeCreated_SystemTime, "
        "@timestamp, TimeGenerated, Timestamp, timestamp, eventTime, time, "
        "EventTime, _time); the first usable one wins"),
    KEY("builtin_fields", CF_CONFIG_BOOL, "true", 0, 0, time.builtin_fields,
        "after `fields`, try the built-in list; false reads the time from "
        "`fields` alone"),
    KEY("clock_offsets", CF_CONFIG_OFFSETS, NULL, -MAX_CLOCK_OFFSET,
        MAX_CLOCK_OFFSET, time.clock_offsets,
        "how far each host's event-log clock (TimeCreated, @timestamp) is "
        "from UTC, subtracted from those stamps: `{HOST: -7h}` for stamps "
        "in local time UTC-7 labelled UTC; `auto` (for every host, or per "
        "host) learns it from events that carry Sysmon's UtcTime too. "
        "Unset, a steady offset is detected, reported and left as it is"),
};

#define SECTION(name, keys, help)                                              \
    { name, help, keys, CF_ARRAY_LEN(keys), CF_CONFIG_MAPPING, NULL }
/* A list of mappings, each checked against `keys`; parsed here. */
#define LIST_SECTION(name, keys, help)                                         \
    { name, help, keys, CF_ARRAY_LEN(keys), CF_CONFIG_LIST, NULL }
#define FREE_FORM(name, shape, owner, help)                                    \
    { name, help, NULL, 0, shape, owner }

/* Every top-level section, in reference order.  A key not listed here is
 * reported, so a misspelt section is an error, not a silent default. */
static const struct cf_config_section_def sections[] = {
    SECTION("input", input_keys, "How events are read."),
    SECTION("dead_letter", dead_letter_keys,
            "Where input that cannot be processed goes."),
    SECTION("cache", cache_keys,
            "The rule cache (parsed rule files, compiled databases; see The "
            "rule cache)."),
    SECTION("output", output_keys, "Which records are written."),
    LIST_SECTION("outputs", output_item_keys,
                 "Where records go: a list, one item per output, each with "
                 "these keys plus the connector's own options (`rdkafka:`, "
                 "`secret_env:`, ...).  `--output` replaces the list.  "
                 "Without it records go to standard output."),
    SECTION("state", state_keys,
            "Checkpoints of the engine's state and input positions."),
    SECTION("engine", engine_keys, "How the engine uses the machine."),
    SECTION("correlation", correlation_keys,
            "Sigma correlation rules (their windows come from the rules; "
            "lateness is set under `fusion`)."),
    SECTION("fusion", fusion_keys,
            "Kill-chain fusion of alerts into incidents, on event time."),
    SECTION("identity", identity_keys,
            "Which account names are one account (engine/entity_norm.c)."),
    SECTION("time", time_keys,
            "Where event time is read, and host clocks that are off "
            "(see [Event time](#event-time))."),
    FREE_FORM("placeholders", CF_CONFIG_MAPPING, "rules/rulebook.c",
              "values for `%name%` in rules using `|expand`: name to list "
              "of values"),
    FREE_FORM("logsources", CF_CONFIG_MAPPING, "rules/logsource.c",
              "logsource routing entries added to or replacing the "
              "built-in ones, by product, category and service"),
    FREE_FORM("field_mappings", CF_CONFIG_MAPPING, "rules/fieldmap.c",
              "Sigma field to extra event field names to look in"),
    FREE_FORM("entities", CF_CONFIG_MAPPING, "engine/alert.c",
              "entity kind (host, user, src_ip, ...) to extra event fields, "
              "tried first"),
    FREE_FORM("suppressions", CF_CONFIG_LIST, "engine/fusion.c",
              "alerts hidden on purpose, each counted: `{rule, entity: "
              "{kind: value}, field: {Name: value}, reason, expires}`"),
};

const struct cf_config_section_def *cf_config_sections(size_t *n) {
    *n = CF_ARRAY_LEN(sections);
    return sections;
}

void cf_config_reference(struct cf_buf *out) {
    cf_config_map_reference(sections, CF_ARRAY_LEN(sections), out);
}

static char *default_cache_dir(void) {
    const char *env = getenv("CHAINFUSE_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    struct cf_buf b = CF_BUF_INIT;
    if (env)
        cf_buf_puts(&b, env);
    else if (xdg && *xdg)
        cf_buf_printf(&b, "%s/chainfuse", xdg);
    else if (home && *home)
        cf_buf_printf(&b, "%s/.cache/chainfuse", home);
    else
        cf_buf_puts(&b, "/tmp/chainfuse-cache");
    if (!b.data && !b.failed) return cf_strdup(""); /* CHAINFUSE_CACHE_DIR= */
    return cf_buf_steal(&b);
}

struct cf_config *cf_config_default(void) {
    struct cf_config *cfg = cf_calloc(1, sizeof *cfg);
    if (!cfg) return NULL;
    for (size_t i = 0; i < CF_ARRAY_LEN(sections); i++)
        if (sections[i].keys && sections[i].shape == CF_CONFIG_MAPPING &&
            cf_config_map_defaults(&sections[i], cfg, NULL, 0) != CF_OK)
            goto fail;
    if (!cfg->cache_dir && !(cfg->cache_dir = default_cache_dir())) goto fail;
    if (!(cfg->root = json_object())) goto fail;
    return cfg;
fail:
    cf_config_destroy(cfg);
    return NULL;
}

static const struct cf_config_section_def *find_section(const char *name) {
    for (size_t i = 0; i < CF_ARRAY_LEN(sections); i++)
        if (strcmp(sections[i].name, name) == 0) return &sections[i];
    return NULL;
}

/* "ORIGIN: unknown section 'x'" with a suggestion or the list. */
static void unknown_section(const char *origin, const char *key, char *errstr,
                            size_t errstr_size) {
    const char *names[CF_ARRAY_LEN(sections) + 1];
    struct cf_buf known = CF_BUF_INIT;
    for (size_t i = 0; i < CF_ARRAY_LEN(sections); i++) {
        names[i] = sections[i].name;
        cf_buf_printf(&known, "%s%s", i ? ", " : "", names[i]);
    }
    names[CF_ARRAY_LEN(sections)] = NULL;
    const char *near = cf_config_map_nearest(key, names);
    if (near)
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "%s: unknown section '%s' (did you mean '%s'?)", origin, key,
                  near);
    else
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "%s: unknown section '%s' (known: %s)", origin, key,
                  known.data ? known.data : "");
    cf_buf_free(&known);
}

/* `input`: the engine's keys, and the rest for the input connector. */
static cf_err_t parse_input(struct cf_config *cfg,
                            const struct cf_config_section_def *sec,
                            const json_t *val, const char *origin, char *errstr,
                            size_t errstr_size) {
    json_t *known = NULL, *rest = NULL;
    if (!json_is_object(val))
        return cf_config_map_parse(sec, val, cfg, origin, errstr, errstr_size);
    cf_err_t rc = cf_config_map_split(sec, val, origin, sec->name, &known,
                                      &rest, errstr, errstr_size);
    if (rc == CF_OK)
        rc = cf_config_map_parse(sec, known, cfg, origin, errstr, errstr_size);
    json_decref(known);
    if (rc == CF_OK && json_object_size(rest)) {
        cfg->input_options = rest;
        rest = NULL;
    }
    json_decref(rest);
    return rc;
}

/* `outputs`: a list of mappings, each with a url. */
static cf_err_t parse_outputs(struct cf_config *cfg,
                              const struct cf_config_section_def *sec,
                              const json_t *val, const char *origin,
                              char *errstr, size_t errstr_size) {
    size_t i;
    json_t *item;
    if (json_is_null(val)) return CF_OK;
    if (!json_is_array(val))
        return cf_seterr(errstr, errstr_size, CF_ERR,
                         "%s: outputs: must be a list of {url: ..., kinds: "
                         "[...], ...}",
                         origin);
    cfg->outputs = cf_calloc(json_array_size(val) + 1, sizeof *cfg->outputs);
    if (!cfg->outputs)
        return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    json_array_foreach(val, i, item) {
        struct cf_output_item *it = &cfg->outputs[cfg->n_outputs++];
        char where[32];
        json_t *known = NULL, *rest = NULL;
        snprintf(where, sizeof where, "outputs[%zu]", i);
        struct cf_config_section_def one = *sec;
        one.name = where;
        cf_err_t rc = cf_config_map_defaults(sec, it, errstr, errstr_size);
        if (rc != CF_OK) return rc;
        if (!json_is_object(item))
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "%s: %s: must be a mapping such as {url: "
                             "out.jsonl, kinds: [incident]}",
                             origin, where);
        rc = cf_config_map_split(sec, item, origin, where, &known, &rest,
                                 errstr, errstr_size);
        if (rc == CF_OK)
            rc = cf_config_map_parse(&one, known, it, origin, errstr,
                                     errstr_size);
        json_decref(known);
        if (rc == CF_OK && json_object_size(rest)) {
            it->options = rest;
            rest = NULL;
        }
        json_decref(rest);
        if (rc != CF_OK) return rc;
        if (!it->url || !*it->url)
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "%s: %s.url: is required (a file, -, redis://, "
                             "http(s)://, kafka://)",
                             origin, where);
    }
    return CF_OK;
}

struct cf_config *cf_config_from_json(const json_t *root, const char *origin,
                                      char *errstr, size_t errstr_size) {
    struct cf_config *cfg = cf_config_default();
    const char *key;
    json_t *val;
    if (!cfg) goto nomem;
    if (!root) return cfg;
    if (!json_is_object(root)) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "%s: the configuration must be one YAML mapping of "
                  "sections",
                  origin);
        goto fail;
    }
    json_object_foreach((json_t *)root, key, val) {
        const struct cf_config_section_def *sec = find_section(key);
        if (!sec) {
            unknown_section(origin, key, errstr, errstr_size);
            goto fail;
        }
        if (sec->keys) {
            cf_err_t rc;
            if (sec->shape == CF_CONFIG_LIST)
                rc = parse_outputs(cfg, sec, val, origin, errstr, errstr_size);
            else if (strcmp(sec->name, "input") == 0)
                rc = parse_input(cfg, sec, val, origin, errstr, errstr_size);
            else
                rc = cf_config_map_parse(sec, val, cfg, origin, errstr,
                                         errstr_size);
            if (rc != CF_OK) goto fail;
            continue;
        }
        /* Free-form: its owner parses the content; the shape is checked
         * here so every section is refused at the same place. */
        bool list = sec->shape == CF_CONFIG_LIST;
        if (!json_is_null(val) &&
            (list ? !json_is_array(val) : !json_is_object(val))) {
            cf_seterr(errstr, errstr_size, CF_ERR,
                      "%s: %s: must be a %s, not %s (%s; parsed in %s)", origin,
                      sec->name, list ? "list" : "mapping",
                      json_is_array(val)    ? "a list"
                      : json_is_object(val) ? "a mapping"
                                            : "a single value",
                      sec->help, sec->owner);
            goto fail;
        }
    }
    if (!cfg->time.builtin_fields && !cfg->time.fields.n) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "%s: time.builtin_fields is false and time.fields lists "
                  "nothing: no event would have a time",
                  origin);
        goto fail;
    }
    json_decref(cfg->root);
    cfg->root = json_incref((json_t *)root);
    return cfg;
nomem:
    cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
fail:
    cf_config_destroy(cfg);
    return NULL;
}

struct cf_config *cf_config_load(const char *path, char *errstr,
                                 size_t errstr_size) {
    struct cf_config *cfg = NULL;
    json_t *docs = NULL;
    size_t len = 0;
    char yerr[384];
    char *text = cf_read_file(path, &len, errstr, errstr_size);
    if (!text) goto done;
    docs = cf_yaml_to_json(text, len, yerr, sizeof yerr);
    if (!docs) {
        cf_seterr(errstr, errstr_size, CF_ERR, "%s: %s", path, yerr);
        goto done;
    }
    if (json_array_size(docs) > 1) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "%s: the configuration must be one YAML document", path);
        goto done;
    }
    /* an empty file (or only comments) means defaults */
    cfg =
        cf_config_from_json(json_array_get(docs, 0), path, errstr, errstr_size);
done:
    json_decref(docs);
    cf_free(text);
    return cfg;
}

void cf_config_destroy(struct cf_config *cfg) {
    if (!cfg) return;
    for (size_t i = 0; i < CF_ARRAY_LEN(sections); i++)
        if (sections[i].keys && sections[i].shape == CF_CONFIG_MAPPING)
            cf_config_map_release(&sections[i], cfg);
    const struct cf_config_section_def *items = find_section("outputs");
    for (size_t i = 0; i < cfg->n_outputs; i++) {
        cf_config_map_release(items, &cfg->outputs[i]);
        json_decref(cfg->outputs[i].options);
    }
    cf_free(cfg->outputs);
    json_decref(cfg->input_options);
    json_decref(cfg->root);
    cf_free(cfg);
}

const json_t *cf_config_section(const struct cf_config *cfg, const char *name) {
    const json_t *v =
        cfg && cfg->root ? json_object_get(cfg->root, name) : NULL;
    return json_is_null(v) ? NULL : v;
}
