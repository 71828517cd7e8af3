/*
 * kafka_common.c - URL, configuration and error reporting shared by the
 * Kafka input and output (kafka_common.h).
 */
#include "kafka/kafka_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "alloc.h"
#include "buf.h"

#define SECRET_FILE_MAX (64 * 1024)

void kafka_url_free(struct kafka_url *u) {
    cf_free(u->brokers);
    for (size_t i = 0; i < u->n_topics; i++) cf_free(u->topics[i]);
    cf_free(u->topics);
    cf_free(u->group);
    memset(u, 0, sizeof *u);
}

static cf_err_t add_topic(struct kafka_url *u, const char *s, size_t n,
                          char *errstr, size_t errstr_size) {
    if (n == 0)
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "kafka URL: empty topic name");
    char **t = cf_realloc(u->topics, (u->n_topics + 1) * sizeof *t);
    if (!t) goto nomem;
    u->topics = t;
    if (!(t[u->n_topics] = cf_strndup(s, n))) goto nomem;
    u->n_topics++;
    return CF_OK;
nomem:
    return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
}

/* One key=value of the query string. */
static cf_err_t query_param(struct kafka_url *u, bool input, const char *s,
                            size_t n, char *errstr, size_t errstr_size) {
    const char *eq = memchr(s, '=', n);
    size_t klen = eq ? (size_t)(eq - s) : n;
    const char *v = eq ? eq + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    if (input && klen == 5 && memcmp(s, "group", 5) == 0 && vlen > 0) {
        cf_free(u->group);
        if (!(u->group = cf_strndup(v, vlen)))
            return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                             "out of memory");
        return CF_OK;
    }
    if (input && klen == 11 && memcmp(s, "stop_at_end", 11) == 0) {
        if (vlen == 4 && memcmp(v, "true", 4) == 0)
            u->stop_at_end = true;
        else if (vlen == 5 && memcmp(v, "false", 5) == 0)
            u->stop_at_end = false;
        else
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "kafka URL: stop_at_end takes true or false");
        return CF_OK;
    }
    return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                     "kafka URL: unknown parameter '%.*s' (%s)", (int)klen, s,
                     input ? "an input takes group= and stop_at_end="
                           : "an output takes none");
}

cf_err_t kafka_url_parse(const char *url, bool input, struct kafka_url *u,
                         char *errstr, size_t errstr_size) {
    static const char scheme[] = "kafka://";
    cf_err_t rc;
    memset(u, 0, sizeof *u);
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "not a kafka:// URL");
    const char *p = url + sizeof scheme - 1;
    const char *slash = strchr(p, '/');
    const char *query = strchr(p, '?');
    if (!slash || slash == p || (query && query < slash))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "kafka URL: expected kafka://BROKERS/TOPIC%s",
                         input ? "[,TOPIC...]?group=NAME" : "");
    /* Credentials do not belong in the URL, where logs would show them. */
    if (memchr(p, '@', (size_t)(slash - p)))
        return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                         "kafka URL: no user or password in the URL; use "
                         "rdkafka: sasl.username and sasl.password_env or "
                         "sasl.password_file");
    if (!(u->brokers = cf_strndup(p, (size_t)(slash - p)))) goto nomem;
    const char *t = slash + 1, *end = query ? query : t + strlen(t);
    for (;;) {
        const char *comma = memchr(t, ',', (size_t)(end - t));
        const char *stop = comma ? comma : end;
        if ((rc = add_topic(u, t, (size_t)(stop - t), errstr, errstr_size)))
            goto fail;
        if (!comma) break;
        t = comma + 1;
    }
    if (!input && u->n_topics != 1) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "kafka URL: an output writes to exactly one topic");
        goto fail;
    }
    for (const char *q = query ? query + 1 : NULL; q && *q;) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        if (n && (rc = query_param(u, input, q, n, errstr, errstr_size)))
            goto fail;
        q = amp ? amp + 1 : NULL;
    }
    if (input && !u->group) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "kafka URL: an input needs ?group=NAME (its consumer "
                       "group: where committed offsets are kept)");
        goto fail;
    }
    return CF_OK;
nomem:
    rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
fail:
    kafka_url_free(u);
    return rc;
}

void kafka_say(struct kafka_said *s, rd_kafka_resp_err_t err,
               const char *reason) {
    if (s->trouble) {
        s->more++;
        return;
    }
    s->trouble = true;
    (void)err;
    fprintf(stderr,
            "chainfuse: kafka %s: %s (librdkafka retries; further errors are "
            "counted until it recovers)\n",
            s->who, reason);
}

void kafka_said_recovered(struct kafka_said *s) {
    if (!s->trouble) return;
    fprintf(stderr,
            "chainfuse: kafka %s: recovered (%zu more errors meanwhile)\n",
            s->who, s->more);
    s->trouble = false;
    s->more = 0;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
    (void)rk;
    kafka_say(opaque, (rd_kafka_resp_err_t)err, reason);
}

/* librdkafka's own log lines repeat on every reconnection attempt; what
 * matters reaches on_error.  Only the gravest lines pass. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
    (void)rk;
    if (level <= LOG_CRIT)
        fprintf(stderr, "chainfuse: kafka: %s: %s\n", fac, buf);
}

/* Property names whose values may be secrets: librdkafka's message about
 * a refused value quotes it, so for these it is not shown. */
static bool looks_secret(const char *key) {
    static const char *const words[] = {"password", "secret",      "key",
                                        "token",    "oauthbearer", "jaas"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strstr(key, words[i])) return true;
    return false;
}

static bool ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n > k && memcmp(s + n - k, suffix, k) == 0;
}

/* Reads a secret file; one trailing newline (LF or CRLF) is dropped. */
static cf_err_t read_secret_file(const char *key, const char *path,
                                 struct cf_buf *out, char *errstr,
                                 size_t errstr_size) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                         "rdkafka.%s: cannot read %s: %s", key, path,
                         strerror(errno));
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        cf_buf_append(out, chunk, got);
        if (out->len > SECRET_FILE_MAX) break;
    }
    bool bad = ferror(fp) || out->len > SECRET_FILE_MAX;
    fclose(fp);
    if (bad)
        return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                         "rdkafka.%s: cannot read %s (error, or larger than "
                         "%d bytes)",
                         key, path, SECRET_FILE_MAX);
    if (out->len && out->data[out->len - 1] == '\n') out->len--;
    if (out->len && out->data[out->len - 1] == '\r') out->len--;
    cf_buf_putc(out, '\0');
    out->len--;
    return out->failed
               ? cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory")
               : CF_OK;
}

cf_err_t kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                        const char *value, char *errstr, size_t errstr_size) {
    char e[512];
    if (rd_kafka_conf_set(conf, key, value, e, sizeof e) == RD_KAFKA_CONF_OK)
        return CF_OK;
    return cf_seterr(errstr, errstr_size, CF_ERR, "librdkafka: %s", e);
}

/* One rdkafka: entry; `key` may end in _env or _file. */
static cf_err_t apply_property(rd_kafka_conf_t *conf, const char *key,
                               const json_t *v, const char *const *reserved,
                               char *errstr, size_t errstr_size) {
    size_t n = strlen(key);
    bool from_env = ends_with(key, n, "_env");
    bool from_file = !from_env && ends_with(key, n, "_file");
    /* ssl.*.location and the like end in other words, so _file and _env
     * never collide with a real librdkafka property. */
    size_t real_len = from_env ? n - 4 : from_file ? n - 5 : n;
    char real[256], text[64], e[512];
    struct cf_buf secret = CF_BUF_INIT;
    const char *value = NULL;
    cf_err_t rc = CF_OK;

    if (real_len >= sizeof real)
        return cf_seterr(errstr, errstr_size, CF_ERR,
                         "rdkafka: property name too long: %.40s...", key);
    memcpy(real, key, real_len);
    real[real_len] = '\0';
    for (const char *const *r = reserved; *r; r++)
        if (strcmp(real, *r) == 0)
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "rdkafka.%s is set by chainfuse and cannot be "
                             "changed (the URL or the connector's "
                             "guarantees depend on it)",
                             real);
    if (json_is_string(v))
        value = json_string_value(v);
    else if (json_is_integer(v)) {
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
        value = text;
    } else if (json_is_real(v)) {
        snprintf(text, sizeof text, "%.17g", json_real_value(v));
        value = text;
    } else if (json_is_boolean(v))
        value = json_is_true(v) ? "true" : "false";
    else
        return cf_seterr(errstr, errstr_size, CF_ERR,
                         "rdkafka.%s: expected a string, number or boolean",
                         key);
    if (from_env) {
        const char *name = value;
        if (!(value = getenv(name)))
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "rdkafka.%s: environment variable %s is not set",
                             key, name);
    } else if (from_file) {
        if ((rc = read_secret_file(key, value, &secret, errstr, errstr_size)))
            goto done;
        value = secret.data;
    }
    if (rd_kafka_conf_set(conf, real, value, e, sizeof e) != RD_KAFKA_CONF_OK) {
        if (from_env || from_file || looks_secret(real))
            rc = cf_seterr(errstr, errstr_size, CF_ERR,
                           "librdkafka refuses the value of %s (from "
                           "rdkafka.%s; not shown: it may be a secret)",
                           real, key);
        else
            rc = cf_seterr(errstr, errstr_size, CF_ERR, "rdkafka.%s: %s", key,
                           e);
    }
done:
    /* the secret does not outlive its use */
    if (secret.data) memset(secret.data, 0, secret.len);
    cf_buf_free(&secret);
    return rc;
}

static cf_err_t conf_build(rd_kafka_conf_t *conf, const char *brokers,
                           const json_t *opts, const char *const *defaults,
                           const char *const *reserved, char *errstr,
                           size_t errstr_size) {
    static const char *const engine_keys[] = {"url", "kinds", "min_severity",
                                              "tactics", "name"};
    cf_err_t rc;
    if ((rc = kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
                             errstr_size)))
        return rc;
    for (const char *const *d = defaults; d && *d; d += 2)
        if ((rc = kafka_conf_set(conf, d[0], d[1], errstr, errstr_size)))
            return rc;
    rd_kafka_conf_set_error_cb(conf, on_error);
    /* Asked for librdkafka's debug contexts: its own logger shows them. */
    const json_t *rdk = opts ? json_object_get(opts, "rdkafka") : NULL;
    if (!json_object_get(rdk, "debug")) rd_kafka_conf_set_log_cb(conf, on_log);
    if (!opts) return CF_OK;
    if (!json_is_object(opts))
        return cf_seterr(errstr, errstr_size, CF_ERR,
                         "kafka options: expected a mapping");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)opts, key, v) {
        bool engine_owned = false;
        for (size_t i = 0; i < sizeof engine_keys / sizeof *engine_keys; i++)
            engine_owned |= strcmp(key, engine_keys[i]) == 0;
        if (engine_owned) continue;
        if (strcmp(key, "rdkafka") != 0)
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "kafka: unknown option '%s' (librdkafka "
                             "properties go under rdkafka:)",
                             key);
        if (!json_is_object(v))
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "kafka: rdkafka: expected a mapping of "
                             "librdkafka properties");
        const char *pk;
        const json_t *pv;
        json_object_foreach((json_t *)v, pk, pv) {
            if ((rc = apply_property(conf, pk, pv, reserved, errstr,
                                     errstr_size)))
                return rc;
        }
    }
    return CF_OK;
}

rd_kafka_conf_t *
kafka_conf_open(const char *url, bool input, struct kafka_url *u, void *opaque,
                const json_t *opts, const char *const *defaults,
                const char *const *reserved, char *errstr, size_t errstr_size) {
    if (kafka_url_parse(url, input, u, errstr, errstr_size)) return NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rd_kafka_conf_set_opaque(conf, opaque);
    if (conf_build(conf, u->brokers, opts, defaults, reserved, errstr,
                   errstr_size) == CF_OK)
        return conf;
    rd_kafka_conf_destroy(conf);
fail:
    kafka_url_free(u);
    return NULL;
}
