/*
 * config.c - loads chainfuse's YAML configuration (see config.h and the
 * README's "Configuration" section, which documents every key).
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_json.h"

/* Every top-level section chainfuse understands.  A key not listed here
 * is reported, so a misspelt section is an error, not a silent default. */
static const char *const known_sections[] = {
    "input",   "dead_letter", "cache",       "output",  "placeholders",
    "logsources", "field_mappings", "entities", "correlation", "fusion",
    "suppressions", NULL};

static char *default_cache_dir(void) {
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char buf[4096];
    if (xdg && *xdg)
        snprintf(buf, sizeof buf, "%s/chainfuse", xdg);
    else if (home && *home)
        snprintf(buf, sizeof buf, "%s/.cache/chainfuse", home);
    else
        snprintf(buf, sizeof buf, "/tmp/chainfuse-cache");
    return cf_strdup(buf);
}

struct cf_config *cf_config_default(void) {
    struct cf_config *cfg = cf_calloc(1, sizeof *cfg);
    if (!cfg) return NULL;
    cfg->limits.max_line_bytes = 1024 * 1024;
    cfg->limits.max_depth = 64;
    cfg->dead_letter_path = cf_strdup("chainfuse-deadletter.jsonl");
    const char *env_cache = getenv("CHAINFUSE_CACHE_DIR");
    cfg->cache_dir = env_cache ? cf_strdup(env_cache) : default_cache_dir();
    cfg->emit_alerts = true;
    cfg->emit_incidents = true;
    cfg->root = json_object();
    if (!cfg->dead_letter_path || !cfg->cache_dir || !cfg->root) {
        cf_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

static int get_size(const json_t *sec, const char *key, size_t *out,
                    char *errstr, size_t errstr_size) {
    const json_t *v = json_object_get(sec, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return cf_seterr(errstr, errstr_size, CF_ERR,
                         "config: %s must be a positive integer", key);
    *out = (size_t)json_integer_value(v);
    return 0;
}

static int get_string(const json_t *sec, const char *key, char **out,
                      char *errstr, size_t errstr_size) {
    const json_t *v = json_object_get(sec, key);
    if (!v) return 0;
    if (!json_is_string(v))
        return cf_seterr(errstr, errstr_size, CF_ERR,
                         "config: %s must be a string", key);
    cf_free(*out);
    *out = cf_strdup(json_string_value(v));
    return *out ? 0 : CF_ERR_NOMEM;
}

static int get_bool(const json_t *sec, const char *key, bool *out,
                    char *errstr, size_t errstr_size) {
    const json_t *v = json_object_get(sec, key);
    if (!v) return 0;
    if (!json_is_boolean(v))
        return cf_seterr(errstr, errstr_size, CF_ERR,
                         "config: %s must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

struct cf_config *cf_config_load(const char *path, char *errstr,
                                 size_t errstr_size) {
    struct cf_config *cfg = cf_config_default();
    char *text = NULL;
    json_t *docs = NULL;
    size_t len = 0;
    if (!cfg) {
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    text = cf_read_file(path, &len, errstr, errstr_size);
    if (!text) goto fail;
    char yerr[256];
    docs = cf_yaml_to_json(text, len, yerr, sizeof yerr);
    if (!docs) {
        cf_seterr(errstr, errstr_size, CF_ERR, "%s: %s", path, yerr);
        goto fail;
    }
    if (json_array_size(docs) == 0) goto done; /* empty file: defaults */
    json_t *root = json_array_get(docs, 0);
    if (json_array_size(docs) != 1 || !json_is_object(root)) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "%s: the configuration must be one YAML mapping", path);
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        bool known = false;
        for (const char *const *k = known_sections; *k; k++)
            if (strcmp(*k, key) == 0) known = true;
        if (!known) {
            cf_seterr(errstr, errstr_size, CF_ERR,
                      "%s: unknown section '%s' (known: input, dead_letter, "
                      "cache, output, placeholders, logsources, "
                      "field_mappings, entities, correlation, fusion, "
                      "suppressions)",
                      path, key);
            goto fail;
        }
    }
    json_decref(cfg->root);
    cfg->root = json_incref(root);

    char sub[256];
    const json_t *sec;
#define SECTION_ERR()                                                        \
    do {                                                                     \
        cf_seterr(errstr, errstr_size, CF_ERR, "%s: %s", path, sub);         \
        goto fail;                                                           \
    } while (0)
    if ((sec = json_object_get(root, "input"))) {
        size_t depth = cfg->limits.max_depth;
        if (get_size(sec, "max_line_bytes", &cfg->limits.max_line_bytes, sub,
                     sizeof sub) ||
            get_size(sec, "max_depth", &depth, sub, sizeof sub))
            SECTION_ERR();
        cfg->limits.max_depth = (unsigned)depth;
    }
    if ((sec = json_object_get(root, "dead_letter")) &&
        get_string(sec, "path", &cfg->dead_letter_path, sub, sizeof sub))
        SECTION_ERR();
    if ((sec = json_object_get(root, "cache")) &&
        get_string(sec, "dir", &cfg->cache_dir, sub, sizeof sub))
        SECTION_ERR();
    if ((sec = json_object_get(root, "output")) &&
        (get_bool(sec, "alerts", &cfg->emit_alerts, sub, sizeof sub) ||
         get_bool(sec, "incidents", &cfg->emit_incidents, sub, sizeof sub)))
        SECTION_ERR();
#undef SECTION_ERR
done:
    json_decref(docs);
    cf_free(text);
    return cfg;
fail:
    json_decref(docs);
    cf_free(text);
    cf_config_destroy(cfg);
    return NULL;
}

void cf_config_destroy(struct cf_config *cfg) {
    if (!cfg) return;
    cf_free(cfg->dead_letter_path);
    cf_free(cfg->cache_dir);
    json_decref(cfg->root);
    cf_free(cfg);
}

const json_t *cf_config_section(const struct cf_config *cfg,
                                const char *name) {
    if (!cfg || !cfg->root) return NULL;
    return json_object_get(cfg->root, name);
}
