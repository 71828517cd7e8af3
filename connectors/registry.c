/*
 * registry.c - URL scheme to connector (see registry.h).
 *
 * Which connectors are in the build is known from CMake (CF_HAVE_*): a
 * connector that is not built (its folder or its library is missing)
 * leaves its scheme answering "built without".
 */
#include "registry.h"

#include <string.h>
#include <strings.h>

#include "buf.h"
#include "file/file_input.h"
#include "file/file_output.h"

/* CMakeLists.txt defines CF_HAVE_<NAME> for each connector folder it
 * builds; the open functions have the shape registry.h describes. */
#ifdef CF_HAVE_KAFKA
struct cf_input *cf_kafka_input_open(const char *url, const json_t *opts,
                                     char *errstr, size_t n);
struct cf_output *cf_kafka_output_open(const char *url, const json_t *opts,
                                       char *errstr, size_t n);
#define HAVE_KAFKA 1
#endif
#ifdef CF_HAVE_REDIS
struct cf_output *cf_redis_output_open(const char *url, const json_t *opts,
                                       char *errstr, size_t n);
#define HAVE_REDIS 1
#endif
#ifdef CF_HAVE_WEBHOOK
struct cf_output *cf_webhook_output_open(const char *url, const json_t *opts,
                                         char *errstr, size_t n);
#define HAVE_WEBHOOK 1
#endif

typedef struct cf_input *(*input_open_fn)(const char *url, const json_t *opts,
                                          char *errstr, size_t n);
typedef struct cf_output *(*output_open_fn)(const char *url, const json_t *opts,
                                            char *errstr, size_t n);

struct scheme {
    const char *prefix; /* "kafka://" */
    const char *what;   /* for "built without" */
    input_open_fn input;
    output_open_fn output;
    bool built; /* the connector is in this build */
};

static const struct scheme schemes[] = {
#ifdef HAVE_KAFKA
    {"kafka://", "Kafka (librdkafka)", cf_kafka_input_open,
     cf_kafka_output_open, true},
#else
    {"kafka://", "Kafka (librdkafka)", NULL, NULL, false},
#endif
#ifdef HAVE_REDIS
    {"redis://", "Redis (hiredis)", NULL, cf_redis_output_open, true},
    {"rediss://", "Redis (hiredis)", NULL, cf_redis_output_open, true},
#else
    {"redis://", "Redis (hiredis)", NULL, NULL, false},
    {"rediss://", "Redis (hiredis)", NULL, NULL, false},
#endif
#ifdef HAVE_WEBHOOK
    {"http://", "webhooks (libcurl)", NULL, cf_webhook_output_open, true},
    {"https://", "webhooks (libcurl)", NULL, cf_webhook_output_open, true},
#else
    {"http://", "webhooks (libcurl)", NULL, NULL, false},
    {"https://", "webhooks (libcurl)", NULL, NULL, false},
#endif
};

static const struct scheme *find_scheme(const char *url) {
    for (size_t i = 0; i < CF_ARRAY_LEN(schemes); i++)
        if (strncasecmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
            return &schemes[i];
    return NULL;
}

/* A scheme we do not know ("s3://x") is a mistake, not a file name. */
static bool unknown_scheme(const char *url) {
    const char *sep = strstr(url, "://");
    if (!sep || sep == url) return false;
    for (const char *c = url; c < sep; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '+' || *c == '-' || *c == '.'))
            return false;
    return strncasecmp(url, "file://", 7) != 0;
}

bool cf_registry_is_file(const char *url) {
    return !find_scheme(url) && !unknown_scheme(url);
}

const char *cf_registry_file_path(const char *url) {
    return strncasecmp(url, "file://", 7) == 0 ? url + 7 : url;
}

/* The file connector takes no options: a key there is a mistake. */
static bool no_file_options(const char *url, const json_t *opts, char *errstr,
                            size_t errstr_size) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)opts, key, v) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "%s: unknown option '%s' (a file takes none)", url, key);
        return false;
    }
    return true;
}

/* NULL and errstr when `url` has no usable connector for `dir`. */
static const struct scheme *usable(const char *url, bool input, char *errstr,
                                   size_t errstr_size) {
    const struct scheme *s = find_scheme(url);
    if (!s) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "%s: unknown scheme (known: kafka://, redis://, http://, "
                  "https://, file://, or a path)",
                  url);
        return NULL;
    }
    if (!s->built) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "%s: chainfuse was built without %s; install its "
                  "development package (deploy/bootstrap.sh) and rebuild",
                  url, s->what);
        return NULL;
    }
    if (input ? !s->input : !s->output) {
        cf_seterr(errstr, errstr_size, CF_ERR, "%s: %s can only be an %s", url,
                  s->what, input ? "output" : "input");
        return NULL;
    }
    return s;
}

struct cf_input *cf_registry_open_input(const char *url, const json_t *opts,
                                        const struct cf_connector_args *args,
                                        char *errstr, size_t errstr_size) {
    if (cf_registry_is_file(url)) {
        if (!no_file_options(url, opts, errstr, errstr_size)) return NULL;
        return cf_file_input_open(cf_registry_file_path(url),
                                  args ? args->max_line_bytes : 0, errstr,
                                  errstr_size);
    }
    const struct scheme *s = usable(url, true, errstr, errstr_size);
    return s ? s->input(url, opts, errstr, errstr_size) : NULL;
}

struct cf_output *cf_registry_open_output(const char *url, const json_t *opts,
                                          const struct cf_connector_args *args,
                                          char *errstr, size_t errstr_size) {
    if (cf_registry_is_file(url)) {
        if (!no_file_options(url, opts, errstr, errstr_size)) return NULL;
        return cf_file_output_open(cf_registry_file_path(url),
                                   args ? args->file_flags : 0, errstr,
                                   errstr_size);
    }
    const struct scheme *s = usable(url, false, errstr, errstr_size);
    return s ? s->output(url, opts, errstr, errstr_size) : NULL;
}

static bool secret_name(const char *name, size_t n) {
    static const char *const words[] = {"pass", "secret", "token", "key",
                                        "auth"};
    for (size_t w = 0; w < CF_ARRAY_LEN(words); w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= n; i++)
            if (strncasecmp(name + i, words[w], wl) == 0) return true;
    }
    return false;
}

char *cf_registry_display_url(const char *url) {
    struct cf_buf b = CF_BUF_INIT;
    const char *sep = strstr(url, "://");
    if (!sep || cf_registry_is_file(url)) return cf_strdup(url);
    const char *auth = sep + 3;
    const char *hostend = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *c = auth; c < hostend; c++)
        if (*c == '@') at = c;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
        cf_buf_append(&b, url, (size_t)(colon - url) + 1);
        cf_buf_puts(&b, "***");
        cf_buf_append(&b, at, (size_t)(hostend - at));
    } else {
        cf_buf_append(&b, url, (size_t)(hostend - url));
    }
    /* path, then query parameters with secret-looking values masked */
    const char *q = strchr(hostend, '?');
    if (!q) {
        cf_buf_puts(&b, hostend);
        return cf_buf_steal(&b);
    }
    cf_buf_append(&b, hostend, (size_t)(q - hostend));
    for (const char *p = q; *p;) {
        size_t len = strcspn(p + 1, "&#") + 1;
        const char *eq = memchr(p, '=', len);
        if (eq && secret_name(p + 1, (size_t)(eq - p - 1))) {
            cf_buf_append(&b, p, (size_t)(eq - p) + 1);
            cf_buf_puts(&b, "***");
        } else {
            cf_buf_append(&b, p, len);
        }
        p += len;
        if (*p == '#') {
            cf_buf_puts(&b, p);
            break;
        }
    }
    return cf_buf_steal(&b);
}
