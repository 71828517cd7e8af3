/*
 * webhook.c - Standard Webhooks over libcurl multi (see
 * webhook.h).
 *
 * Records taken and not yet acknowledged are items.  Items with the same
 * record id form a chain in arrival order and only the head of a chain
 * is ever sent, so versions of one incident cannot overtake each other
 * however many requests run at once; records without an id (dead
 * letters, stats) are chains of one.  Transfers progress only while the
 * engine calls write() or flush(): libcurl multi is driven, never a
 * thread.
 */
#include "webhook.h"

#include <stddef.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "hash.h"
#include "timeutil.h"

#define MAX_SECRETS 8
#define KEY_MIN 24 /* bytes: the specification's minimum */
#define KEY_MAX 64
#define SECRET_FILE_MAX 65536
/* How long write() may drive transfers waiting for room, and flush()
 * for acknowledgements, before answering RETRY to the engine. */
#define WRITE_WAIT_MS 100
#define FLUSH_WAIT_MS 1000

/* ---- libcurl, opened when a webhook is ------------------------------- */

/* libcurl is loaded with dlopen when a webhook opens, not linked: linked,
 * every chainfuse process loaded it and the thirty libraries it pulls in
 * (TLS, LDAP, Kerberos, SSH...), 3 ms of CPU per start (a program linking
 * chainfuse's libraries: 6.3 ms with libcurl, 3.1 ms without), for an
 * output few runs use.  libcurl.so.4 is the name of libcurl's ABI since
 * 7.16 (2006); the headers compiled against give each function's type. */
#define CURL_SONAME "libcurl.so.4"
#define CURL_FUNCTIONS(X)                                                      \
    X(global_init)                                                             \
    X(global_cleanup)                                                          \
    X(easy_init)                                                               \
    X(easy_setopt)                                                             \
    X(easy_getinfo)                                                            \
    X(easy_cleanup)                                                            \
    X(easy_strerror)                                                           \
    X(slist_append)                                                            \
    X(slist_free_all)                                                          \
    X(multi_init)                                                              \
    X(multi_setopt)                                                            \
    X(multi_add_handle)                                                        \
    X(multi_remove_handle)                                                     \
    X(multi_perform)                                                           \
    X(multi_poll)                                                              \
    X(multi_info_read)                                                         \
    X(multi_cleanup)                                                           \
    X(url)                                                                     \
    X(url_set)                                                                 \
    X(url_get)                                                                 \
    X(url_cleanup)                                                             \
    X(free)

/* The functions used, each as curl_<name>; lib is NULL when not loaded. */
struct curl_api {
    void *lib;
#define CURL_FIELD(name) __typeof__(&curl_##name) name;
    CURL_FUNCTIONS(CURL_FIELD)
#undef CURL_FIELD
};

/* Loads libcurl into *c (RTLD_NODELETE: it stays mapped once loaded, so
 * nothing it set up is pulled from under it, and a second load only
 * counts).  False with errstr when it or one of its functions is
 * missing. */
static bool curl_api_load(struct curl_api *c, char *errstr, size_t n) {
    static const struct {
        const char *sym;
        size_t at;
    } fns[] = {
#define CURL_ENTRY(name) {"curl_" #name, offsetof(struct curl_api, name)},
        CURL_FUNCTIONS(CURL_ENTRY)
#undef CURL_ENTRY
    };
    memset(c, 0, sizeof *c);
    c->lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!c->lib) {
        cf_seterr(errstr, n, CF_ERR,
                  "webhook: cannot load %s (%s); webhooks need libcurl: "
                  "apt-get install libcurl4 (deploy/bootstrap.sh does)",
                  CURL_SONAME, dlerror());
        return false;
    }
    for (size_t i = 0; i < CF_ARRAY_LEN(fns); i++) {
        void *f = dlsym(c->lib, fns[i].sym);
        if (!f) {
            cf_seterr(errstr, n, CF_ERR, "webhook: %s has no %s", CURL_SONAME,
                      fns[i].sym);
            dlclose(c->lib);
            c->lib = NULL;
            return false;
        }
        /* POSIX: a function's address and void * have one size */
        memcpy((char *)c + fns[i].at, &f, sizeof f);
    }
    return true;
}

static void curl_api_unload(struct curl_api *c) {
    if (c->lib) dlclose(c->lib);
    c->lib = NULL;
}

struct wh_opts {
    char *secret_env;
    char *secret_file;
    int64_t timeout_ms;
    int32_t max_attempts;
    int64_t max_age_ms;
    int64_t backoff_ms;
    int64_t max_backoff_ms;
    int32_t concurrency;
    int32_t max_pending;
    bool tls_verify;
    char *ca_file;
    struct cf_strlist headers;
};

#define OKEY(name, type, def, min, max, field, help)                           \
    {                                                                          \
        name, type, def, min, max, offsetof(struct wh_opts, field),            \
            sizeof(((struct wh_opts *)0)->field), help, NULL                   \
    }
#define HOUR_MS (3600LL * 1000)

static const struct cf_config_key wh_keys[] = {
    OKEY("secret_env", CF_CONFIG_STRING, NULL, 0, 0, secret_env,
         "environment variable holding the signing secret(s), each `whsec_` "
         "+ base64 of 24 to 64 random bytes, separated by spaces (several "
         "while rotating: one signature each); with neither this nor "
         "secret_file, `$CHAINFUSE_WEBHOOK_SECRET`"),
    OKEY("secret_file", CF_CONFIG_STRING, NULL, 0, 0, secret_file,
         "file holding the signing secret(s), one per line (or "
         "space-separated); used with or instead of secret_env"),
    OKEY("timeout", CF_CONFIG_DURATION, "15s", 1, HOUR_MS, timeout_ms,
         "longest one request may take, connection included"),
    OKEY("max_attempts", CF_CONFIG_INT, "8", 1, 1000, max_attempts,
         "attempts per record before it is dead-lettered"),
    OKEY("max_age", CF_CONFIG_DURATION, "1h", 1, 30 * 24 * HOUR_MS, max_age_ms,
         "longest a record is retried, from when the output took it, before "
         "it is dead-lettered"),
    OKEY("backoff", CF_CONFIG_DURATION, "1s", 1, HOUR_MS, backoff_ms,
         "delay before the first retry, doubled at each attempt, with "
         "jitter; a longer Retry-After is honoured"),
    OKEY("max_backoff", CF_CONFIG_DURATION, "5m", 1, 24 * HOUR_MS,
         max_backoff_ms, "longest delay between two attempts"),
    OKEY("concurrency", CF_CONFIG_INT, "8", 1, 256, concurrency,
         "requests in flight at once (never two for the same id)"),
    OKEY("max_pending", CF_CONFIG_INT, "1000", 1, 1000000, max_pending,
         "records taken and not yet acknowledged before the engine is made "
         "to wait"),
    OKEY("tls_verify", CF_CONFIG_BOOL, "true", 0, 0, tls_verify,
         "verify the server's certificate and name (https); false is for "
         "tests only"),
    OKEY("ca_file", CF_CONFIG_STRING, NULL, 0, 0, ca_file,
         "CA bundle to verify the server with, instead of the system's"),
    OKEY("headers", CF_CONFIG_STRLIST, NULL, 0, 0, headers,
         "extra request headers, each \"Name: value\""),
};

static const struct cf_config_section_def wh_section = {
    "webhook",
    "Options of an `http(s)://` item of `outputs` (Standard Webhooks "
    "signed POSTs), beside `url` and the filter keys.",
    wh_keys,
    CF_ARRAY_LEN(wh_keys),
    CF_CONFIG_MAPPING,
    NULL};

const struct cf_config_section_def *cf_webhook_options(void) {
    return &wh_section;
}

/* Keys of an output's YAML item that the engine reads, not the
 * connector (ignored here should the engine pass them on). */
static const char *const engine_keys[] = {
    "url",     "name",         "kinds",    "min_severity",
    "tactics", "max_buffered", "retry_for"};

struct wh_key;

/* One record taken and not yet acknowledged or dead-lettered. */
struct wh_item {
    struct wh_item *next; /* the next record of the same id */
    struct wh_key *key;
    char *json;
    size_t len;
    char *kind, *id, *status, *source, **tactics;
    size_t n_tactics;
    uint32_t version;
    int severity, score;
    struct cf_position pos;
    bool has_pos;
    char *msg_id; /* webhook-id */
    int attempts;
    int64_t taken_ms, due_ms;
    CURL *easy; /* non-NULL while a request is in flight */
    struct curl_slist *hdrs;
    char last[160]; /* why the last attempt failed */
    char errbuf[CURL_ERROR_SIZE];
};

/* The chain of items of one id (or of one id-less item). */
struct wh_key {
    char *id; /* NULL: not in the table */
    struct wh_item *head, *tail;
    struct wh_key *next_bucket;
    struct wh_key *prev, *next; /* every chain, oldest first */
};

struct webhook {
    struct cf_output out;
    struct wh_opts o;
    char *url;
    struct cf_buf shown; /* the URL as it may be printed */
    unsigned char keys[MAX_SECRETS][KEY_MAX];
    size_t key_len[MAX_SECRETS], n_keys;
    struct curl_api curl; /* loaded first, unloaded last */
    CURLM *multi;
    struct curl_slist *extra; /* extra headers, copied into each request */
    struct wh_key **buckets;
    size_t n_buckets;
    struct wh_key *first, *last; /* chains, oldest first */
    size_t pending, in_flight;
    uint64_t rng;
    char err[256];
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: jitter only, no security. */
static uint64_t next_random(struct webhook *w) {
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * UINT64_C(2685821657736338717);
}

/* ---- signing ---------------------------------------------------------- */

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

cf_err_t cf_webhook_secret_decode(const char *secret, unsigned char key[64],
                                  size_t *n) {
    static const char prefix[] = "whsec_";
    size_t len, out = 0;
    uint32_t acc = 0;
    int bits = 0;
    *n = 0;
    if (strncmp(secret, prefix, sizeof prefix - 1) != 0) return CF_ERR;
    secret += sizeof prefix - 1;
    len = strlen(secret);
    while (len > 0 && secret[len - 1] == '=') len--; /* padding */
    if (len == 0 || strlen(secret) - len > 2) return CF_ERR;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)secret[i]);
        if (v < 0) return CF_ERR;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out == KEY_MAX) return CF_ERR;
            key[out++] = (unsigned char)(acc >> bits);
        }
    }
    if (out < KEY_MIN) return CF_ERR;
    *n = out;
    return CF_OK;
}

void cf_webhook_sign(struct cf_buf *sig, const unsigned char *key,
                     size_t key_len, const char *id, long long timestamp,
                     const char *body, size_t body_len) {
    struct cf_buf content = CF_BUF_INIT;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    cf_buf_printf(&content, "%s.%lld.", id, timestamp);
    cf_buf_append(&content, body, body_len);
    if (content.failed || !HMAC(EVP_sha256(), key, (int)key_len,
                                (const unsigned char *)content.data,
                                content.len, mac, &mac_len)) {
        sig->failed = true;
    } else {
        cf_buf_puts(sig, "v1,");
        cf_buf_base64(sig, mac, mac_len);
    }
    OPENSSL_cleanse(mac, sizeof mac);
    cf_buf_free(&content);
}

static void safe_url(const struct curl_api *c, struct cf_buf *out,
                     const char *url) {
    CURLU *u = c->url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    char *user = NULL, *query = NULL;
    if (!u || c->url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        c->url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        c->url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        cf_buf_puts(out, "(a URL that does not parse)");
        goto done;
    }
    c->url_get(u, CURLUPART_PORT, &port, 0);
    c->url_get(u, CURLUPART_PATH, &path, 0);
    c->url_get(u, CURLUPART_USER, &user, 0);
    c->url_get(u, CURLUPART_QUERY, &query, 0);
    cf_buf_printf(out, "%s://%s%s%s%s%s%s", scheme, user ? "***@" : "", host,
                  port ? ":" : "", port ? port : "", path ? path : "/",
                  query ? "?***" : "");
done:
    c->free(scheme);
    c->free(host);
    c->free(port);
    c->free(path);
    c->free(user);
    c->free(query);
    c->url_cleanup(u);
}

void cf_webhook_safe_url(struct cf_buf *out, const char *url) {
    struct curl_api c;
    char err[256];
    if (!curl_api_load(&c, err, sizeof err)) {
        cf_buf_puts(out, "(a URL not shown: libcurl cannot be loaded)");
        return;
    }
    safe_url(&c, out, url);
    curl_api_unload(&c);
}

/* ---- chains ----------------------------------------------------------- */

static struct wh_key **bucket_of(struct webhook *w, const char *id) {
    return &w->buckets[cf_hash_str(id) & (w->n_buckets - 1)];
}

static void item_free(struct wh_item *it) {
    if (!it) return;
    cf_free(it->json);
    cf_free(it->kind);
    cf_free(it->id);
    cf_free(it->status);
    cf_free(it->source);
    for (size_t i = 0; i < it->n_tactics; i++) cf_free(it->tactics[i]);
    cf_free(it->tactics);
    cf_free(it->msg_id);
    cf_free(it);
}

/* Removes the head of its chain (acknowledged or dead-lettered); an
 * empty chain goes too. */
static void finish_head(struct webhook *w, struct wh_item *it) {
    struct wh_key *k = it->key;
    if (it->easy) {
        w->curl.multi_remove_handle(w->multi, it->easy);
        w->curl.easy_cleanup(it->easy);
        it->easy = NULL;
        w->in_flight--;
    }
    w->curl.slist_free_all(it->hdrs);
    it->hdrs = NULL;
    k->head = it->next;
    if (!k->head) {
        k->tail = NULL;
        if (k->id) {
            struct wh_key **b = bucket_of(w, k->id);
            while (*b != k) b = &(*b)->next_bucket;
            *b = k->next_bucket;
        }
        if (k->prev)
            k->prev->next = k->next;
        else
            w->first = k->next;
        if (k->next)
            k->next->prev = k->prev;
        else
            w->last = k->prev;
        cf_free(k->id);
        cf_free(k);
    }
    item_free(it);
    w->pending--;
}

static void dead_letter(struct webhook *w, struct wh_item *it,
                        const char *fmt_reason) {
    struct cf_out_record r = {it->kind,     it->json,
                              it->len,      it->has_pos ? &it->pos : NULL,
                              it->id,       it->version,
                              it->status,   it->severity,
                              it->score,    (const char *const *)it->tactics,
                              it->n_tactics};
    cf_output_dead_letter(&w->out, &r, fmt_reason);
    finish_head(w, it);
}

static char *dup_or_null(const char *s, bool *failed) {
    char *d;
    if (!s) return NULL;
    if (!(d = cf_strdup(s))) *failed = true;
    return d;
}

/* A copy of `rec` as an item, with its webhook-id. */
static struct wh_item *item_new(const struct cf_out_record *rec) {
    struct wh_item *it = cf_calloc(1, sizeof *it);
    bool failed = false;
    struct cf_buf id = CF_BUF_INIT;
    if (!it) return NULL;
    it->json = cf_malloc(rec->len + 1);
    if (!it->json) goto fail;
    memcpy(it->json, rec->json, rec->len);
    it->json[rec->len] = '\0';
    it->len = rec->len;
    it->kind = dup_or_null(rec->kind ? rec->kind : "record", &failed);
    it->id = dup_or_null(rec->id, &failed);
    it->status = dup_or_null(rec->status, &failed);
    it->version = rec->version;
    it->severity = rec->severity;
    it->score = rec->score;
    if (rec->pos) {
        it->has_pos = true;
        it->pos = *rec->pos;
        it->source = dup_or_null(rec->pos->source, &failed);
        it->pos.source = it->source;
    }
    if (rec->n_tactics) {
        it->tactics = cf_calloc(rec->n_tactics, sizeof *it->tactics);
        if (!it->tactics) goto fail;
        it->n_tactics = rec->n_tactics;
        for (size_t i = 0; i < rec->n_tactics; i++)
            it->tactics[i] = dup_or_null(rec->tactics[i], &failed);
    }
    /* The spec asks for an id without full stops (it is followed by one
     * in the signed content); record ids are hex. */
    if (rec->id) {
        cf_buf_printf(&id, "%s_v%u", rec->id, (unsigned)rec->version);
    } else {
        /* No id: the body's hash, so a replay keeps the same one. */
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)rec->json, rec->len, md);
        cf_buf_printf(&id, "%s_", it->kind);
        for (size_t i = 0; i < 16; i++) cf_buf_printf(&id, "%02x", md[i]);
    }
    for (size_t i = 0; i < id.len; i++)
        if (id.data[i] == '.') id.data[i] = '_';
    if (id.failed || failed) goto fail;
    it->msg_id = cf_buf_steal(&id);
    return it;
fail:
    cf_buf_free(&id);
    item_free(it);
    return NULL;
}

/* Appends `it` to the chain of its id, made when there is none. */
static bool enqueue(struct webhook *w, struct wh_item *it) {
    struct wh_key *k = NULL;
    if (it->id) {
        for (k = *bucket_of(w, it->id); k; k = k->next_bucket)
            if (strcmp(k->id, it->id) == 0) break;
    }
    if (!k) {
        if (!(k = cf_calloc(1, sizeof *k))) return false;
        if (it->id) {
            if (!(k->id = cf_strdup(it->id))) {
                cf_free(k);
                return false;
            }
            struct wh_key **b = bucket_of(w, k->id);
            k->next_bucket = *b;
            *b = k;
        }
        k->prev = w->last;
        if (w->last)
            w->last->next = k;
        else
            w->first = k;
        w->last = k;
    }
    it->key = k;
    if (k->tail)
        k->tail->next = it;
    else
        k->head = it;
    k->tail = it;
    w->pending++;
    return true;
}

/* ---- transfers -------------------------------------------------------- */

static size_t discard_body(char *p, size_t size, size_t n, void *opaque) {
    (void)p;
    (void)opaque;
    return size * n;
}

static struct curl_slist *add_header(const struct curl_api *c,
                                     struct curl_slist *l, const char *h,
                                     bool *failed) {
    struct curl_slist *n = c->slist_append(l, h);
    if (!n) *failed = true;
    return n ? n : l;
}

/* Builds the signed headers of one attempt. */
static struct curl_slist *attempt_headers(struct webhook *w,
                                          struct wh_item *it) {
    struct cf_buf h = CF_BUF_INIT;
    struct curl_slist *l = NULL;
    bool failed = false;
    long long ts = (long long)time(NULL);
    l = add_header(&w->curl, l, "Content-Type: application/json", &failed);
    cf_buf_printf(&h, "webhook-id: %s", it->msg_id);
    l = add_header(&w->curl, l, h.failed ? "" : h.data, &failed);
    cf_buf_reset(&h);
    cf_buf_printf(&h, "webhook-timestamp: %lld", ts);
    l = add_header(&w->curl, l, h.failed ? "" : h.data, &failed);
    cf_buf_reset(&h);
    cf_buf_puts(&h, "webhook-signature: ");
    for (size_t i = 0; i < w->n_keys; i++) {
        if (i) cf_buf_putc(&h, ' ');
        cf_webhook_sign(&h, w->keys[i], w->key_len[i], it->msg_id, ts, it->json,
                        it->len);
    }
    l = add_header(&w->curl, l, h.failed ? "" : h.data, &failed);
    for (struct curl_slist *e = w->extra; e; e = e->next)
        l = add_header(&w->curl, l, e->data, &failed);
    if (h.data) OPENSSL_cleanse(h.data, h.len);
    cf_buf_free(&h);
    if (failed || h.failed) {
        w->curl.slist_free_all(l);
        return NULL;
    }
    return l;
}

static bool start(struct webhook *w, struct wh_item *it) {
    CURL *e = w->curl.easy_init();
    it->attempts++;
    it->errbuf[0] = '\0';
    if (!e || !(it->hdrs = attempt_headers(w, it))) {
        w->curl.easy_cleanup(e);
        snprintf(it->last, sizeof it->last, "out of memory");
        return false;
    }
    w->curl.easy_setopt(e, CURLOPT_URL, w->url);
    w->curl.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    w->curl.easy_setopt(e, CURLOPT_POST, 1L);
    w->curl.easy_setopt(e, CURLOPT_POSTFIELDS, it->json);
    w->curl.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
    w->curl.easy_setopt(e, CURLOPT_HTTPHEADER, it->hdrs);
    w->curl.easy_setopt(e, CURLOPT_USERAGENT, "chainfuse/" CF_VERSION);
    w->curl.easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)w->o.timeout_ms);
    w->curl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    w->curl.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    w->curl.easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
    w->curl.easy_setopt(e, CURLOPT_ERRORBUFFER, it->errbuf);
    w->curl.easy_setopt(e, CURLOPT_PRIVATE, it);
    w->curl.easy_setopt(e, CURLOPT_SSL_VERIFYPEER, w->o.tls_verify ? 1L : 0L);
    w->curl.easy_setopt(e, CURLOPT_SSL_VERIFYHOST, w->o.tls_verify ? 2L : 0L);
    if (w->o.ca_file) w->curl.easy_setopt(e, CURLOPT_CAINFO, w->o.ca_file);
    if (w->curl.multi_add_handle(w->multi, e) != CURLM_OK) {
        w->curl.easy_cleanup(e);
        w->curl.slist_free_all(it->hdrs);
        it->hdrs = NULL;
        snprintf(it->last, sizeof it->last, "cannot start a request");
        return false;
    }
    it->easy = e;
    w->in_flight++;
    return true;
}

/* The last attempt of `it` failed with a transient error: schedule the
 * next one, or dead-letter it when attempts or age are spent. */
static void retry_later(struct webhook *w, struct wh_item *it,
                        int64_t retry_after_ms) {
    int64_t now = now_ms(), delay = w->o.backoff_ms;
    char reason[320];
    for (int i = 1; i < it->attempts && delay < w->o.max_backoff_ms; i++)
        delay *= 2;
    if (delay > w->o.max_backoff_ms) delay = w->o.max_backoff_ms;
    /* Equal jitter: half fixed, half random, so retries of many records
     * after one outage spread out instead of arriving together. */
    delay = delay / 2 + (int64_t)(next_random(w) % (uint64_t)(delay / 2 + 1));
    if (retry_after_ms > delay) delay = retry_after_ms;
    if (it->attempts >= w->o.max_attempts) {
        snprintf(reason, sizeof reason, "gave up after %d attempts (last: %s)",
                 it->attempts, it->last);
    } else if (now + delay - it->taken_ms > w->o.max_age_ms) {
        char age[32];
        cf_duration_format(w->o.max_age_ms, age);
        snprintf(reason, sizeof reason,
                 "gave up after %d attempts, the next would be "
                 "past max_age %s (last: %s)",
                 it->attempts, age, it->last);
    } else {
        it->due_ms = now + delay;
        return;
    }
    dead_letter(w, it, reason);
}

static bool retryable_status(long code) {
    return code == 408 || code == 429 || code >= 500;
}

/* Collects finished transfers. */
static void reap(struct webhook *w) {
    CURLMsg *m;
    int left;
    while ((m = w->curl.multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        struct wh_item *it = NULL;
        long code = 0;
        curl_off_t retry_after = 0;
        CURLcode rc = m->data.result;
        CURL *e = m->easy_handle;
        w->curl.easy_getinfo(e, CURLINFO_PRIVATE, (char **)&it);
        w->curl.easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        w->curl.easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after);
        w->curl.multi_remove_handle(w->multi, e);
        w->curl.easy_cleanup(e);
        it->easy = NULL;
        w->in_flight--;
        w->curl.slist_free_all(it->hdrs);
        it->hdrs = NULL;
        if (rc == CURLE_OK && code >= 200 && code < 300) {
            finish_head(w, it);
        } else if (rc != CURLE_OK) {
            snprintf(it->last, sizeof it->last, "%.150s",
                     it->errbuf[0] ? it->errbuf : w->curl.easy_strerror(rc));
            retry_later(w, it, 0);
        } else if (retryable_status(code)) {
            snprintf(it->last, sizeof it->last, "HTTP %ld", code);
            retry_later(w, it, (int64_t)retry_after * 1000);
        } else {
            char reason[320];
            snprintf(reason, sizeof reason, "HTTP %ld, not retried%s", code,
                     code < 300 || code >= 400
                         ? ""
                         : " (redirects are not followed: give the final "
                           "URL)");
            dead_letter(w, it, reason);
        }
    }
}

/* Starts the due heads, oldest chain first, while the concurrency
 * allows; returns the milliseconds until the next head is due, or -1
 * when none is waiting or the concurrency is reached (then a transfer
 * ending wakes the poll, and scanning further would find nothing to
 * start). */
static long start_due(struct webhook *w) {
    int64_t now = now_ms(), next = -1;
    for (struct wh_key *k = w->first, *following; k; k = following) {
        following = k->next; /* k may go */
        struct wh_item *it = k->head;
        if (w->in_flight >= (size_t)w->o.concurrency) return -1;
        if (it->easy) continue;
        if (it->due_ms > now) {
            if (next < 0 || it->due_ms - now < next) next = it->due_ms - now;
            continue;
        }
        if (!start(w, it)) retry_later(w, it, 0);
    }
    return (long)next;
}

/* Drives transfers for up to `budget_ms` (0: one pass, no waiting),
 * returning early once fewer than `want_below` records are pending (room
 * for write(), 1: all acknowledged for flush()) or nothing is in flight
 * or due. */
static void drive(struct webhook *w, long budget_ms, size_t want_below) {
    int64_t end = now_ms() + budget_ms;
    for (;;) {
        int running;
        w->curl.multi_perform(w->multi, &running);
        reap(w);
        long next = start_due(w);
        w->curl.multi_perform(w->multi, &running);
        reap(w);
        int64_t left = end - now_ms();
        if (w->pending < want_below || left <= 0) return;
        if (w->in_flight == 0 && next < 0) return; /* nothing to wait for */
        long wait = (long)left;
        if (next >= 0 && next < wait) wait = next;
        w->curl.multi_poll(w->multi, NULL, 0, wait > 0 ? (int)wait : 1, NULL);
    }
}

/* ---- the output ------------------------------------------------------- */

static cf_io_status wh_write(struct cf_output *out,
                             const struct cf_out_record *rec) {
    struct webhook *w = out->ctx;
    size_t limit = (size_t)w->o.max_pending;
    drive(w, 0, limit);
    if (w->pending >= limit) drive(w, WRITE_WAIT_MS, limit);
    if (w->pending >= limit) return CF_IO_RETRY;
    struct wh_item *it = item_new(rec);
    if (!it) return CF_IO_RETRY; /* out of memory: maybe later */
    it->taken_ms = it->due_ms = now_ms();
    if (!enqueue(w, it)) {
        item_free(it);
        return CF_IO_RETRY;
    }
    drive(w, 0, limit);
    return CF_IO_OK;
}

static cf_io_status wh_flush(struct cf_output *out) {
    struct webhook *w = out->ctx;
    drive(w, FLUSH_WAIT_MS, 1);
    return w->pending ? CF_IO_RETRY : CF_IO_OK;
}

static void wh_destroy(struct webhook *w) {
    if (!w) return;
    struct curl_api curl = w->curl;
    /* without libcurl nothing of it was made */
    if (curl.lib) {
        while (w->first) finish_head(w, w->first->head);
        if (w->multi) curl.multi_cleanup(w->multi);
        curl.slist_free_all(w->extra);
    }
    cf_config_map_release(&wh_section, &w->o);
    OPENSSL_cleanse(w->keys, sizeof w->keys);
    cf_free(w->buckets);
    cf_free(w->url);
    cf_buf_free(&w->shown);
    cf_free(w);
    if (curl.lib) curl.global_cleanup();
    curl_api_unload(&curl);
}

static void wh_close(struct cf_output *out) {
    struct webhook *w = out->ctx;
    if (w->pending)
        fprintf(stderr,
                "chainfuse: webhook %s: %zu record%s taken but not "
                "acknowledged at close\n",
                w->shown.data, w->pending, w->pending == 1 ? "" : "s");
    wh_destroy(w);
}

static const struct cf_output_ops webhook_ops = {
    .name = "webhook",
    .write = wh_write,
    .flush = wh_flush,
    .close = wh_close,
};

/* Adds the whitespace-separated secrets of `text` (from `what`, named in
 * errors by place, never by value). */
static cf_err_t add_secrets(struct webhook *w, char *text, const char *what,
                            char *errstr, size_t n) {
    size_t found = 0;
    char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) break;
        char *end = p;
        while (*end && *end != ' ' && *end != '\t' && *end != '\r' &&
               *end != '\n')
            end++;
        char saved = *end;
        *end = '\0';
        found++;
        if (w->n_keys == MAX_SECRETS)
            return cf_seterr(errstr, n, CF_ERR, "%s: more than %d secrets",
                             what, MAX_SECRETS);
        if (cf_webhook_secret_decode(p, w->keys[w->n_keys],
                                     &w->key_len[w->n_keys]) != CF_OK)
            return cf_seterr(errstr, n, CF_ERR,
                             "%s: secret %zu is not `whsec_` followed by "
                             "base64 of %d to %d bytes",
                             what, found, KEY_MIN, KEY_MAX);
        w->n_keys++;
        *end = saved;
        p = end;
    }
    if (!found) return cf_seterr(errstr, n, CF_ERR, "%s holds no secret", what);
    return CF_OK;
}

static cf_err_t secret_from_env(struct webhook *w, const char *var,
                                const char *what, char *errstr, size_t n) {
    const char *v = getenv(var);
    char *copy;
    cf_err_t rc;
    char place[160];
    if (!v || !*v)
        return cf_seterr(errstr, n, CF_ERR, "%s: $%s is not set", what, var);
    if (!(copy = cf_strdup(v)))
        return cf_seterr(errstr, n, CF_ERR_NOMEM, "out of memory");
    snprintf(place, sizeof place, "%s: $%s", what, var);
    rc = add_secrets(w, copy, place, errstr, n);
    OPENSSL_cleanse(copy, strlen(copy));
    cf_free(copy);
    return rc;
}

static cf_err_t secret_from_file(struct webhook *w, const char *path,
                                 char *errstr, size_t n) {
    char text[SECRET_FILE_MAX + 1], place[300];
    FILE *f = fopen(path, "r");
    size_t got;
    cf_err_t rc;
    if (!f)
        return cf_seterr(errstr, n, CF_ERR, "secret_file %s: cannot open it",
                         path);
    got = fread(text, 1, SECRET_FILE_MAX + 1, f);
    fclose(f);
    if (got > SECRET_FILE_MAX)
        return cf_seterr(errstr, n, CF_ERR,
                         "secret_file %s: larger than %d bytes", path,
                         SECRET_FILE_MAX);
    text[got] = '\0';
    snprintf(place, sizeof place, "secret_file %s", path);
    rc = add_secrets(w, text, place, errstr, n);
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

static bool is_signing_header(const char *h) {
    static const char *const names[] = {"webhook-id:", "webhook-timestamp:",
                                        "webhook-signature:", "content-type:"};
    for (size_t i = 0; i < CF_ARRAY_LEN(names); i++)
        if (strncasecmp(h, names[i], strlen(names[i])) == 0) return true;
    return false;
}

struct cf_output *cf_webhook_output_open(const char *url, const json_t *opts,
                                         char *errstr, size_t n) {
    struct webhook *w = cf_calloc(1, sizeof *w);
    json_t *mine = NULL;
    char origin[300];
    if (!w) goto nomem;
    w->out.ops = &webhook_ops;
    w->out.ctx = w;
    w->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
             (uint64_t)(uintptr_t)w;
    if (!w->rng) w->rng = 1;
    if (!curl_api_load(&w->curl, errstr, n)) goto fail;
    w->curl.global_init(CURL_GLOBAL_DEFAULT);
    safe_url(&w->curl, &w->shown, url ? url : "");
    if (w->shown.failed || !(w->url = cf_strdup(url ? url : ""))) goto nomem;
    if (strncmp(w->url, "http://", 7) != 0 &&
        strncmp(w->url, "https://", 8) != 0) {
        cf_seterr(errstr, n, CF_ERR,
                  "webhook %s: not an http:// or https:// URL", w->shown.data);
        goto fail;
    }
    if (strncmp(w->shown.data, "(", 1) == 0) {
        cf_seterr(errstr, n, CF_ERR, "webhook: the URL does not parse");
        goto fail;
    }
    snprintf(origin, sizeof origin, "output %s", w->shown.data);
    if (cf_config_map_defaults(&wh_section, &w->o, errstr, n) != CF_OK)
        goto fail;
    if (opts) {
        if (!json_is_object(opts)) {
            cf_seterr(errstr, n, CF_ERR, "%s: options must be a mapping",
                      origin);
            goto fail;
        }
        if (!(mine = json_copy((json_t *)opts))) goto nomem;
        for (size_t i = 0; i < CF_ARRAY_LEN(engine_keys); i++)
            json_object_del(mine, engine_keys[i]);
        if (cf_config_map_parse(&wh_section, mine, &w->o, origin, errstr, n) !=
            CF_OK)
            goto fail;
    }
    /* Without secret_env or secret_file (a webhook named on the command
     * line, or an item that names none): $CHAINFUSE_WEBHOOK_SECRET. */
    if (!w->o.secret_env && !w->o.secret_file) {
        const char *v = getenv(CF_WEBHOOK_SECRET_ENV);
        if (!v || !*v) {
            cf_seterr(errstr, n, CF_ERR,
                      "%s: a webhook needs a signing secret: set $%s, or "
                      "secret_env or secret_file in its item of outputs",
                      origin, CF_WEBHOOK_SECRET_ENV);
            goto fail;
        }
        if (secret_from_env(w, CF_WEBHOOK_SECRET_ENV, origin, errstr, n) !=
            CF_OK)
            goto fail;
    }
    if (w->o.secret_env &&
        secret_from_env(w, w->o.secret_env, origin, errstr, n) != CF_OK)
        goto fail;
    if (w->o.secret_file &&
        secret_from_file(w, w->o.secret_file, errstr, n) != CF_OK)
        goto fail;
    for (size_t i = 0; i < w->o.headers.n; i++) {
        const char *h = w->o.headers.v[i];
        const char *colon = strchr(h, ':');
        if (!colon || colon == h || strpbrk(h, "\r\n")) {
            cf_seterr(errstr, n, CF_ERR,
                      "%s: webhook.headers: \"%s\" is not \"Name: value\"",
                      origin, h);
            goto fail;
        }
        if (is_signing_header(h)) {
            cf_seterr(errstr, n, CF_ERR,
                      "%s: webhook.headers: %.*s is set by the output itself",
                      origin, (int)(colon - h), h);
            goto fail;
        }
        struct curl_slist *l = w->curl.slist_append(w->extra, h);
        if (!l) goto nomem;
        w->extra = l;
    }
    for (w->n_buckets = 16; w->n_buckets < 2 * (size_t)w->o.max_pending;)
        w->n_buckets *= 2;
    if (!(w->buckets = cf_calloc(w->n_buckets, sizeof *w->buckets))) goto nomem;
    if (!(w->multi = w->curl.multi_init())) goto nomem;
    w->curl.multi_setopt(w->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                         (long)w->o.concurrency);
    json_decref(mine);
    return &w->out;
nomem:
    cf_seterr(errstr, n, CF_ERR_NOMEM, "out of memory opening a webhook");
fail:
    json_decref(mine);
    wh_destroy(w);
    return NULL;
}
