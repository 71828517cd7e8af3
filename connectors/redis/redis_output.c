/*
 * redis_output.c - Redis incident queues (see redis_output.h).
 *
 * hiredis's blocking context: a batch is appended to its output buffer
 * (redisAppendCommandArgv, one round trip for all of it) and its replies
 * read in order.  A connection that breaks mid-batch keeps every record
 * whose reply did not come: they are sent again after reconnecting, which
 * is harmless for incidents (the script compares versions) and may
 * repeat an alert.
 */
#include "redis/redis_output.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"
#include "config_map.h"
#include "connector.h"
#include "sigma.h"

/* KEYS: hash, queue, stream.  ARGV: id, version, status, severity,
 * score, json, maxlen, retention (s), queue score.  Returns 1 when the
 * version was newer and written, 0 when it changed nothing. */
static const char incident_script[] =
    "local cur = redis.call('HGET', KEYS[1], 'version')\n"
    "if cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'version', ARGV[2], 'status', ARGV[3],\n"
    "           'severity', ARGV[4], 'score', ARGV[5], 'json', ARGV[6])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[8])\n"
    "if ARGV[3] == 'closed' then\n"
    "  redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "elseif not cur then\n"
    "  redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])\n"
    "else\n"
    "  redis.call('ZADD', KEYS[2], 'XX', ARGV[9], ARGV[1])\n"
    "end\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'json', "
    "ARGV[6])\n"
    "return 1\n";

/* The YAML item's keys, read by the config key tables' code so that
 * types, ranges and "did you mean" work as for every other key. */
struct redis_opts {
    char *user;
    char *password_env;
    char *password_file;
    int64_t maxlen;
    int64_t retention; /* ms */
    int64_t queue;
    int64_t batch;
    int64_t timeout; /* ms */
};

#define OPT(name, type, def, min, max, field, help)                            \
    {                                                                          \
        name, type, def, min, max, offsetof(struct redis_opts, field),         \
            sizeof(((struct redis_opts *)0)->field), help, NULL                \
    }

static const struct cf_config_key opt_keys[] = {
    OPT("user", CF_CONFIG_STRING, NULL, 0, 0, user,
        "ACL user to AUTH as (or USER@ in the URL)"),
    OPT("password_env", CF_CONFIG_STRING, NULL, 0, 0, password_env,
        "environment variable holding the password"),
    OPT("password_file", CF_CONFIG_STRING, NULL, 0, 0, password_file,
        "file holding the password (one line)"),
    OPT("maxlen", CF_CONFIG_INT, "1000000", 1, INT64_C(1) << 40, maxlen,
        "streams keep about this many entries (XADD MAXLEN ~)"),
    OPT("retention", CF_CONFIG_DURATION, "30d", 1000,
        INT64_C(3650) * 86400 * 1000, retention,
        "incident hashes expire this long after their last change"),
    OPT("queue", CF_CONFIG_INT, "10000", 1, 10000000, queue,
        "records held while Redis is away before the input pauses"),
    OPT("batch", CF_CONFIG_INT, "512", 1, 100000, batch,
        "records sent per round trip"),
    OPT("timeout", CF_CONFIG_DURATION, "5s", 1, 600000, timeout,
        "connect and reply timeout"),
};

static const struct cf_config_section_def opt_section = {
    "redis",           "Redis output options",
    opt_keys,          CF_ARRAY_LEN(opt_keys),
    CF_CONFIG_MAPPING, NULL};

/* One record held until Redis acknowledges it.  `text` holds kind, id,
 * status and json, each NUL-terminated. */
struct pend {
    const char *kind, *id, *status, *json;
    size_t len;
    uint32_t version;
    int severity, score;
    bool eval; /* Redis said NOSCRIPT: send the script itself */
    char text[];
};

/* Longest a record waits in write()'s buffer while records keep coming. */
#define LINGER_MS 5

struct redis_out {
    char *display; /* the URL as shown: password masked */
    char *host;
    int port;
    long db;
    char *user, *password; /* password: never printed */
    char *prefix;
    struct redis_opts o;
    char *key_queue, *key_incidents;
    char sha[41];
    redisContext *c;
    int64_t next_try; /* monotonic ms: no reconnect before */
    long backoff;     /* ms */
    bool said_down;   /* the outage was said once */
    int64_t since;    /* monotonic ms: the queue has waited since */
    struct pend **q;  /* FIFO: q[head .. head+n) */
    size_t head, n, cap;
    struct cf_buf key; /* scratch: one record's key */
    struct cf_output out;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* s[0..n) %-decoded (a password may hold '@' or ':'); NULL on a bad
 * escape or out of memory. */
static char *pct_decode(const char *s, size_t n) {
    struct cf_buf b = CF_BUF_INIT;
    cf_buf_reserve(&b, n);
    for (size_t i = 0; i < n; i++) {
        int hi = 0, lo = 0;
        if (s[i] == '%' && (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 ||
                            (lo = hexval(s[i + 2])) < 0)) {
            cf_buf_free(&b);
            return NULL;
        }
        if (s[i] == '%') {
            cf_buf_putc(&b, (char)(hi * 16 + lo));
            i += 2;
        } else {
            cf_buf_putc(&b, s[i]);
        }
    }
    if (b.failed) {
        cf_buf_free(&b);
        return NULL;
    }
    return b.data ? cf_buf_steal(&b) : cf_strdup("");
}

/* Parses the URL into r (host, port, db, user, password, prefix). */
static cf_err_t parse_url(struct redis_out *r, const char *url, char *errstr,
                          size_t n) {
    const char *d = r->display;
    if (strncasecmp(url, "rediss://", 9) == 0)
        return cf_seterr(errstr, n, CF_ERR,
                         "%s: TLS (rediss://) is not available: this build "
                         "uses hiredis 0.14 (Debian bookworm), which has no "
                         "TLS; use redis:// on a trusted network or through "
                         "a TLS tunnel (stunnel, spiped)",
                         d);
    if (strncasecmp(url, "redis://", 8) != 0)
        return cf_seterr(errstr, n, CF_ERR, "%s: not a redis:// URL", d);
    const char *auth = url + 8;
    const char *end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *c = auth; c < end; c++)
        if (*c == '@') at = c;
    const char *host = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        const char *uend = colon ? colon : at;
        if (uend > auth && !(r->user = pct_decode(auth, (size_t)(uend - auth))))
            goto bad_escape;
        if (colon &&
            !(r->password = pct_decode(colon + 1, (size_t)(at - colon - 1))))
            goto bad_escape;
        host = at + 1;
    }
    const char *port = NULL, *hend = end;
    if (*host == '[') { /* [IPv6] */
        const char *rb = memchr(host, ']', (size_t)(end - host));
        if (!rb) return cf_seterr(errstr, n, CF_ERR, "%s: unclosed '['", d);
        r->host = cf_strndup(host + 1, (size_t)(rb - host - 1));
        if (rb + 1 < end && rb[1] == ':') port = rb + 2;
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));
        if (colon) port = colon + 1, hend = colon;
        r->host = cf_strndup(host, (size_t)(hend - host));
    }
    if (!r->host) return CF_ERR_NOMEM;
    if (!*r->host)
        return cf_seterr(errstr, n, CF_ERR, "%s: no host (redis://HOST:PORT)",
                         d);
    r->port = 6379;
    if (port) {
        char *e;
        long v = strtol(port, &e, 10);
        if (e != end || port == end || v < 1 || v > 65535)
            return cf_seterr(errstr, n, CF_ERR,
                             "%s: the port must be a number from 1 to 65535",
                             d);
        r->port = (int)v;
    }
    const char *p = end;
    if (*p == '/' && p[1] && p[1] != '?' && p[1] != '#') {
        char *e;
        errno = 0;
        r->db = strtol(p + 1, &e, 10);
        if (errno || e == p + 1 || (*e && *e != '?' && *e != '#') || r->db < 0)
            return cf_seterr(errstr, n, CF_ERR,
                             "%s: the database after '/' must be a number "
                             "(redis://HOST:PORT/0)",
                             d);
        p = e;
    } else if (*p == '/') {
        p++;
    }
    if (*p == '?') {
        for (p++; *p && *p != '#';) {
            size_t len = strcspn(p, "&#");
            if (len > 7 && strncmp(p, "prefix=", 7) == 0) {
                cf_free(r->prefix);
                if (!(r->prefix = pct_decode(p + 7, len - 7))) goto bad_escape;
            } else if (len) {
                return cf_seterr(errstr, n, CF_ERR,
                                 "%s: unknown parameter '%.*s' (known: "
                                 "prefix)",
                                 d, (int)strcspn(p, "=&#"), p);
            }
            p += len;
            if (*p == '&') p++;
        }
    }
    if (!r->prefix && !(r->prefix = cf_strdup("chainfuse")))
        return CF_ERR_NOMEM;
    return CF_OK;
bad_escape:
    return cf_seterr(errstr, n, CF_ERR, "%s: a bad %%-escape in the URL", d);
}

/* Reads the password from password_env / password_file; exactly one
 * source may give it (the URL counts).  Messages never hold it. */
static cf_err_t read_password(struct redis_out *r, char *errstr, size_t n) {
    const char *d = r->display;
    int sources = !!r->password + !!r->o.password_env + !!r->o.password_file;
    if (sources > 1)
        return cf_seterr(errstr, n, CF_ERR,
                         "%s: the password is given more than once (URL, "
                         "password_env, password_file): give it once",
                         d);
    if (r->o.password_env) {
        const char *v = getenv(r->o.password_env);
        if (!v || !*v)
            return cf_seterr(errstr, n, CF_ERR,
                             "%s: password_env: environment variable %s is "
                             "not set",
                             d, r->o.password_env);
        if (!(r->password = cf_strdup(v))) return CF_ERR_NOMEM;
    }
    if (r->o.password_file) {
        FILE *f = fopen(r->o.password_file, "r");
        if (!f)
            return cf_seterr(errstr, n, CF_ERR, "%s: password_file: %s: %s", d,
                             r->o.password_file, strerror(errno));
        struct cf_buf b = CF_BUF_INIT;
        char chunk[256];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
            cf_buf_append(&b, chunk, got);
        fclose(f);
        while (b.len &&
               (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
            b.data[--b.len] = '\0';
        if (!b.len || b.failed) {
            cf_buf_free(&b);
            return cf_seterr(errstr, n, CF_ERR,
                             "%s: password_file: %s is empty", d,
                             r->o.password_file);
        }
        r->password = cf_buf_steal(&b);
    }
    if (r->o.user) {
        if (r->user)
            return cf_seterr(errstr, n, CF_ERR,
                             "%s: the user is given twice (URL and user:)", d);
        if (!(r->user = cf_strdup(r->o.user))) return CF_ERR_NOMEM;
    }
    if (r->user && !r->password)
        return cf_seterr(errstr, n, CF_ERR,
                         "%s: user %s has no password (URL, password_env or "
                         "password_file)",
                         d, r->user);
    return CF_OK;
}

/* One command, waited for.  NULL (connection broken) or the reply. */
static redisReply *command(redisContext *c, int argc, const char **argv,
                           const size_t *lens) {
    return redisCommandArgv(c, argc, argv, lens);
}

static void disconnect(struct redis_out *r) {
    if (r->c) redisFree(r->c);
    r->c = NULL;
}

/* A reply error that says the server is busy or not ready rather than
 * that the record is wrong: the record waits and is sent again. */
static bool transient_error(const char *msg) {
    static const char *const words[] = {"LOADING",     "BUSY",  "TRYAGAIN",
                                        "MASTERDOWN",  "OOM",   "READONLY",
                                        "CLUSTERDOWN", "NOAUTH"};
    for (size_t i = 0; i < CF_ARRAY_LEN(words); i++)
        if (strncmp(msg, words[i], strlen(words[i])) == 0) return true;
    return false;
}

/* Connects, authenticates, selects the database and loads the script.
 * false with errstr; *fatal when retrying cannot help (credentials,
 * database), which open() reports and write()/flush() say. */
static bool connect_redis(struct redis_out *r, bool *fatal, char *errstr,
                          size_t n) {
    const char *d = r->display;
    struct timeval tv = {(time_t)(r->o.timeout / 1000),
                         (suseconds_t)(r->o.timeout % 1000 * 1000)};
    *fatal = false;
    disconnect(r);
    r->c = redisConnectWithTimeout(r->host, r->port, tv);
    if (!r->c || r->c->err) {
        cf_seterr(errstr, n, CF_ERR, "%s: cannot connect: %s", d,
                  r->c ? r->c->errstr : "out of memory");
        disconnect(r);
        return false;
    }
    redisSetTimeout(r->c, tv);
    redisEnableKeepAlive(r->c);
    redisReply *rep = NULL;
    if (r->password) {
        const char *argv[3] = {"AUTH", r->user ? r->user : r->password,
                               r->password};
        rep = command(r->c, r->user ? 3 : 2, argv, NULL);
        if (!rep) goto broken;
        if (rep->type == REDIS_REPLY_ERROR) {
            /* Redis's words name no secret ("WRONGPASS invalid
             * username-password pair ..."). */
            cf_seterr(errstr, n, CF_ERR,
                      "%s: Redis refused the credentials%s%s: %s", d,
                      r->user ? " of user " : "", r->user ? r->user : "",
                      rep->str);
            goto fatal;
        }
        freeReplyObject(rep);
    }
    if (r->db) {
        char db[24];
        snprintf(db, sizeof db, "%ld", r->db);
        const char *argv[2] = {"SELECT", db};
        rep = command(r->c, 2, argv, NULL);
        if (!rep) goto broken;
        if (rep->type == REDIS_REPLY_ERROR) {
            cf_seterr(errstr, n, CF_ERR, "%s: database %ld: %s", d, r->db,
                      rep->str);
            goto fatal;
        }
        freeReplyObject(rep);
    }
    const char *argv[3] = {"SCRIPT", "LOAD", incident_script};
    rep = command(r->c, 3, argv, NULL);
    if (!rep) goto broken;
    if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
        bool noauth = rep->type == REDIS_REPLY_ERROR &&
                      strncmp(rep->str, "NOAUTH", 6) == 0;
        cf_seterr(errstr, n, CF_ERR, "%s: %s%s", d,
                  noauth ? "Redis wants a password (password_env, "
                           "password_file or USER:PASS@ in the URL): "
                         : "loading the incident script failed: ",
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
        goto fatal;
    }
    memcpy(r->sha, rep->str, 40);
    r->sha[40] = '\0';
    freeReplyObject(rep);
    return true;
broken:
    cf_seterr(errstr, n, CF_ERR, "%s: connection lost while connecting: %s", d,
              r->c->errstr);
    disconnect(r);
    return false;
fatal:
    *fatal = true;
    freeReplyObject(rep);
    disconnect(r);
    return false;
}

/* Connected, or trying now if the backoff allows; says an outage and a
 * recovery once each on stderr. */
static bool ensure_connected(struct redis_out *r) {
    if (r->c) return true;
    int64_t now = now_ms();
    if (now < r->next_try) return false;
    char err[512];
    bool fatal;
    if (connect_redis(r, &fatal, err, sizeof err)) {
        if (r->said_down)
            fprintf(stderr, "chainfuse: %s: connected again\n", r->display);
        r->said_down = false;
        r->backoff = 0;
        return true;
    }
    if (!r->said_down || fatal)
        fprintf(stderr, "chainfuse: %s; records wait, retrying\n", err);
    r->said_down = true;
    r->backoff =
        r->backoff ? (r->backoff * 2 > 2000 ? 2000 : r->backoff * 2) : 50;
    r->next_try = now + r->backoff;
    return false;
}

static void lost(struct redis_out *r, const char *why) {
    if (!r->said_down)
        fprintf(stderr,
                "chainfuse: %s: connection lost (%s); records wait, "
                "retrying\n",
                r->display, why);
    r->said_down = true;
    disconnect(r);
    r->backoff = 50;
    r->next_try = now_ms() + r->backoff;
}

static struct cf_out_record as_record(const struct pend *p) {
    struct cf_out_record rec = {p->kind,  p->json,    p->len,    NULL,
                                p->id,    p->version, p->status, p->severity,
                                p->score, NULL,       0};
    return rec;
}

/* Appends the command for `p` to hiredis's output buffer. */
static bool append_command(struct redis_out *r, const struct pend *p) {
    struct cf_buf *k = &r->key;
    cf_buf_reset(k);
    if (strcmp(p->kind, "incident") == 0 && p->id) {
        char version[16], score[16], qscore[24], maxlen[24], ttl[24];
        int sev = p->severity < 0 ? 0 : p->severity;
        snprintf(version, sizeof version, "%u", p->version);
        snprintf(score, sizeof score, "%d", p->score);
        snprintf(qscore, sizeof qscore, "%d", sev * 1000 + p->score);
        snprintf(maxlen, sizeof maxlen, "%lld", (long long)r->o.maxlen);
        snprintf(ttl, sizeof ttl, "%lld",
                 (long long)((r->o.retention + 999) / 1000));
        cf_buf_printf(k, "%s:incident:%s", r->prefix, p->id);
        if (k->failed) return false;
        const char *argv[] = {p->eval ? "EVAL" : "EVALSHA",
                              p->eval ? incident_script : r->sha,
                              "3",
                              k->data,
                              r->key_queue,
                              r->key_incidents,
                              p->id,
                              version,
                              p->status ? p->status : "",
                              cf_level_name((enum cf_level)sev),
                              score,
                              p->json,
                              maxlen,
                              ttl,
                              qscore};
        size_t lens[CF_ARRAY_LEN(argv)];
        for (size_t i = 0; i < CF_ARRAY_LEN(argv); i++)
            lens[i] = argv[i] == p->json ? p->len : strlen(argv[i]);
        return redisAppendCommandArgv(r->c, (int)CF_ARRAY_LEN(argv), argv,
                                      lens) == REDIS_OK;
    }
    /* alerts, dead letters, stats: one stream per kind */
    char maxlen[24];
    snprintf(maxlen, sizeof maxlen, "%lld", (long long)r->o.maxlen);
    size_t kl = strlen(p->kind);
    cf_buf_printf(k, "%s:%s%s", r->prefix, p->kind,
                  kl && p->kind[kl - 1] == 's' ? "" : "s");
    if (k->failed) return false;
    const char *argv[] = {"XADD", k->data, "MAXLEN", "~",
                          maxlen, "*",     "json",   p->json};
    size_t lens[CF_ARRAY_LEN(argv)];
    for (size_t i = 0; i < CF_ARRAY_LEN(argv); i++)
        lens[i] = argv[i] == p->json ? p->len : strlen(argv[i]);
    return redisAppendCommandArgv(r->c, (int)CF_ARRAY_LEN(argv), argv, lens) ==
           REDIS_OK;
}

static void drop_head(struct redis_out *r) {
    cf_free(r->q[r->head]);
    r->q[r->head] = NULL;
    r->head++;
    r->n--;
    if (!r->n) r->head = 0;
}

/*
 * Sends up to one batch from the head of the queue and reads its
 * replies.  Acknowledged records leave the queue; one Redis refuses for
 * good is dead-lettered; one refused for now (NOSCRIPT, LOADING, OOM...)
 * stays at the head.  OK unless Redis is away or refused a record for
 * now (records kept after NOSCRIPT go again at once).
 */
static cf_io_status send_batch(struct redis_out *r) {
    if (!ensure_connected(r)) return CF_IO_RETRY;
    size_t k = r->n < (size_t)r->o.batch ? r->n : (size_t)r->o.batch;
    for (size_t i = 0; i < k; i++)
        if (!append_command(r, r->q[r->head + i])) {
            lost(r, "out of memory");
            return CF_IO_RETRY;
        }
    /* Replies come in order: the i-th is the head's while records before
     * it leave; those kept for another try move up behind one another. */
    size_t kept = 0;
    bool busy = false; /* Redis refused something for now */
    for (size_t i = 0; i < k; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(r->c, (void **)&rep) != REDIS_OK || !rep) {
            lost(r, r->c->errstr[0] ? r->c->errstr : "no reply");
            return CF_IO_RETRY; /* records kept and unanswered stay */
        }
        struct pend *p = r->q[r->head + kept];
        if (rep->type == REDIS_REPLY_ERROR &&
            (strncmp(rep->str, "NOSCRIPT", 8) == 0 ||
             transient_error(rep->str))) {
            /* Redis lost the script (SCRIPT FLUSH, a failover): the
             * script itself goes next time, and is cached again. */
            if (strncmp(rep->str, "NOSCRIPT", 8) == 0) {
                p->eval = true;
            } else {
                busy = true;
                if (!r->said_down)
                    fprintf(stderr,
                            "chainfuse: %s: Redis answers %s; records "
                            "wait, retrying\n",
                            r->display, rep->str);
                r->said_down = true;
            }
            freeReplyObject(rep);
            kept++;
            continue;
        }
        if (rep->type == REDIS_REPLY_ERROR) {
            char reason[600];
            snprintf(reason, sizeof reason, "Redis refused it: %s", rep->str);
            struct cf_out_record rec = as_record(p);
            cf_output_dead_letter(&r->out, &rec, reason);
        }
        freeReplyObject(rep);
        /* p leaves: the kept ones before it move up one place */
        memmove(&r->q[r->head + 1], &r->q[r->head], kept * sizeof *r->q);
        r->q[r->head] = p;
        drop_head(r);
    }
    if (busy) return CF_IO_RETRY;
    if (r->said_down) {
        fprintf(stderr, "chainfuse: %s: Redis takes records again\n",
                r->display);
        r->said_down = false;
    }
    /* Records kept after NOSCRIPT lead the next batch, sent at once with
     * the script itself. */
    return CF_IO_OK;
}

/* Sends everything queued, batch by batch. */
static cf_io_status send_all(struct redis_out *r) {
    /* A pass that acknowledged nothing twice running (a NOSCRIPT answered
     * even to EVAL) waits for the next call rather than spinning. */
    int idle = 0;
    while (r->n) {
        size_t before = r->n;
        if (send_batch(r) != CF_IO_OK) return CF_IO_RETRY;
        if (r->n == before && ++idle > 1) return CF_IO_RETRY;
    }
    return CF_IO_OK;
}

static bool enqueue(struct redis_out *r, const struct cf_out_record *rec) {
    if (r->head + r->n == r->cap) {
        if (r->head) {
            memmove(r->q, r->q + r->head, r->n * sizeof *r->q);
            r->head = 0;
        } else {
            size_t cap = r->cap ? r->cap * 2 : 64;
            struct pend **q = cf_realloc(r->q, cap * sizeof *q);
            if (!q) return false;
            r->q = q;
            r->cap = cap;
        }
    }
    size_t lk = strlen(rec->kind) + 1, li = rec->id ? strlen(rec->id) + 1 : 0;
    size_t ls = rec->status ? strlen(rec->status) + 1 : 0;
    struct pend *p = cf_malloc(sizeof *p + lk + li + ls + rec->len + 1);
    if (!p) return false;
    char *t = p->text;
    p->kind = memcpy(t, rec->kind, lk);
    t += lk;
    p->id = li ? memcpy(t, rec->id, li) : NULL;
    t += li;
    p->status = ls ? memcpy(t, rec->status, ls) : NULL;
    t += ls;
    memcpy(t, rec->json, rec->len);
    t[rec->len] = '\0';
    p->json = t;
    p->len = rec->len;
    p->version = rec->version;
    p->severity = rec->severity;
    p->score = rec->score;
    p->eval = false;
    r->q[r->head + r->n++] = p;
    return true;
}

static cf_io_status redis_write(struct cf_output *out,
                                const struct cf_out_record *rec) {
    struct redis_out *r = out->ctx;
    if (r->n >= (size_t)r->o.queue) {
        send_all(r);
        if (r->n >= (size_t)r->o.queue) return CF_IO_RETRY;
    }
    if (r->n == 0) r->since = now_ms();
    if (!enqueue(r, rec)) return CF_IO_RETRY;
    /* The engine flushes only at checkpoints and at the end, so write()
     * decides when to send: a full batch, an incident (what a SOC waits
     * for, with the alerts before it), or records waiting LINGER_MS.  A
     * failed send leaves them queued; the answer is still OK. */
    int64_t now = 0;
    if (r->n >= (size_t)r->o.batch || strcmp(rec->kind, "incident") == 0 ||
        (now = now_ms()) - r->since >= LINGER_MS) {
        send_all(r);
        r->since = now ? now : now_ms();
    }
    return CF_IO_OK;
}

static cf_io_status redis_flush(struct cf_output *out) {
    return send_all(out->ctx);
}

static void redis_close(struct cf_output *out) {
    struct redis_out *r = out->ctx;
    if (!r) return;
    disconnect(r);
    while (r->n) drop_head(r);
    cf_free(r->q);
    cf_buf_free(&r->key);
    cf_config_map_release(&opt_section, &r->o);
    if (r->password) {
        /* not left in freed memory */
        volatile char *v = r->password;
        while (*v) *v++ = '\0';
    }
    cf_free(r->password);
    cf_free(r->user);
    cf_free(r->host);
    cf_free(r->prefix);
    cf_free(r->key_queue);
    cf_free(r->key_incidents);
    cf_free(r->display);
    cf_free(r);
}

static const struct cf_output_ops redis_ops = {"redis", redis_write,
                                               redis_flush, redis_close};

/* The URL with a password masked, as messages show it. */
static char *display_url(const char *url) {
    const char *auth = strstr(url, "://");
    if (!auth) return cf_strdup(url);
    auth += 3;
    const char *end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *c = auth; c < end; c++)
        if (*c == '@') at = c;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) return cf_strdup(url);
    struct cf_buf b = CF_BUF_INIT;
    cf_buf_append(&b, url, (size_t)(colon + 1 - url));
    cf_buf_puts(&b, "***");
    cf_buf_puts(&b, at);
    if (b.failed) {
        cf_buf_free(&b);
        return NULL;
    }
    return cf_buf_steal(&b);
}

struct cf_output *cf_redis_output_open(const char *url, const json_t *opts,
                                       char *errstr, size_t n) {
    struct redis_out *r = cf_calloc(1, sizeof *r);
    if (!r || !(r->display = display_url(url))) {
        cf_free(r);
        cf_seterr(errstr, n, CF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    r->key = (struct cf_buf)CF_BUF_INIT;
    r->out.ops = &redis_ops;
    r->out.ctx = r;
    cf_err_t rc = cf_config_map_defaults(&opt_section, &r->o, errstr, n);
    if (rc == CF_OK && opts)
        rc = cf_config_map_parse(&opt_section, opts, &r->o, r->display, errstr,
                                 n);
    if (rc == CF_OK) rc = parse_url(r, url, errstr, n);
    if (rc == CF_OK) rc = read_password(r, errstr, n);
    if (rc == CF_OK) {
        struct cf_buf b = CF_BUF_INIT;
        cf_buf_printf(&b, "%s:queue", r->prefix);
        r->key_queue = cf_buf_steal(&b);
        cf_buf_printf(&b, "%s:incidents", r->prefix);
        r->key_incidents = cf_buf_steal(&b);
        if (!r->key_queue || !r->key_incidents) rc = CF_ERR_NOMEM;
    }
    if (rc == CF_ERR_NOMEM) cf_seterr(errstr, n, rc, "out of memory");
    bool fatal = false;
    char err[512];
    if (rc == CF_OK && !connect_redis(r, &fatal, err, sizeof err)) {
        if (fatal) {
            rc = cf_seterr(errstr, n, CF_ERR, "%s", err);
        } else {
            /* Not there yet: records wait for it, the engine pauses. */
            fprintf(stderr, "chainfuse: %s; records wait, retrying\n", err);
            r->said_down = true;
            r->backoff = 50;
            r->next_try = now_ms() + r->backoff;
        }
    }
    if (rc != CF_OK) {
        redis_close(&r->out);
        return NULL;
    }
    return &r->out;
}
