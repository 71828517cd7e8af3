/*
 * webhook_receiver.c - a Standard Webhooks receiver for the tests, on
 * libmicrohttpd, that can be told to misbehave.
 *
 *   webhook_receiver --port-file FILE --log FILE [--secrets "whsec_.. .."]
 *                    [--cert CERT.pem --key KEY.pem]
 *
 * With --cert and --key it speaks HTTPS only.
 * Listens on a free loopback port (written to FILE once listening) until
 * SIGTERM or SIGINT.  Every POST is verified with its own code path
 * (OpenSSL EVP_MAC and EVP_EncodeBlock, not the sender's HMAC() and
 * base64): some `v1,` signature of webhook-signature must match
 * HMAC-SHA256(key, webhook-id "." webhook-timestamp "." body) for one of
 * the secrets, and the timestamp must be within 5 minutes.  A request
 * that does not verify is answered 401.  Each request is logged as one
 * JSON line: {"n", "at_ms" (arrival, unix ms), "webhook_id", "timestamp",
 * "verified", "matched" (indices of the secrets that verified), "content_type",
 * "answered", "stalled_ms", "id", "version", "kind", "body"}.
 *
 * POST /_control with a plan, one step per line, replaces the plan:
 *   500 N          answer 500 to the next N requests (any status works)
 *   429:S N        answer 429 with Retry-After: S to the next N
 *   stall:MS N     wait MS milliseconds, then answer 200, N times
 *   reject ID      answer 422 to every record whose "id" is ID, always
 * after which requests are answered 200.  GET /_control answers the
 * number of requests answered 2xx so far.
 *
 * Test tool only: the secrets are test secrets.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SECRETS 8
#define MAX_STEPS 32
#define MAX_REJECT 64
#define MAX_BODY (4 << 20)

struct step {
    int status;      /* 0: stall then 200 */
    int retry_after; /* seconds, for 429 */
    int stall_ms;
    int count;
};

struct receiver {
    pthread_mutex_t lock;
    FILE *log;
    unsigned char keys[MAX_SECRETS][64];
    int key_len[MAX_SECRETS], n_keys;
    struct step plan[MAX_STEPS];
    int n_steps, at;
    char *reject[MAX_REJECT];
    int n_reject;
    long n, accepted;
};

struct upload {
    char *data;
    size_t len;
    bool too_big;
};

static bool decode_secret(const char *s, unsigned char *key, int *len) {
    size_t n;
    unsigned char tmp[128];
    if (strncmp(s, "whsec_", 6) != 0) return false;
    s += 6;
    n = strlen(s);
    if (n == 0 || n % 4 || n > 88) return false;
    int out = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
    if (out < 0) return false;
    /* EVP_DecodeBlock counts the padding as zero bytes */
    if (s[n - 1] == '=') out--;
    if (s[n - 2] == '=') out--;
    memcpy(key, tmp, (size_t)out);
    *len = out;
    return true;
}

/* base64(HMAC-SHA256(key, id.ts.body)) into out (45 bytes). */
static bool expected_signature(const unsigned char *key, int key_len,
                               const char *id, const char *ts, const char *body,
                               size_t len, char out[64]) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    unsigned char md[64];
    size_t md_len = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    bool ok = ctx && EVP_MAC_init(ctx, key, (size_t)key_len, params) &&
              EVP_MAC_update(ctx, (const unsigned char *)id, strlen(id)) &&
              EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
              EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) &&
              EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
              EVP_MAC_update(ctx, (const unsigned char *)body, len) &&
              EVP_MAC_final(ctx, md, &md_len, sizeof md);
    if (ok) EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok;
}

/* Which secrets some signature of `header` verifies with, as a bit set. */
static unsigned verify(const struct receiver *r, const char *id, const char *ts,
                       const char *header, const char *body, size_t len) {
    unsigned matched = 0;
    char expect[64];
    if (!id || !ts || !header || strchr(id, '.')) return 0;
    long long t = atoll(ts), now = (long long)time(NULL);
    if (t < now - 300 || t > now + 300) return 0;
    for (int k = 0; k < r->n_keys; k++) {
        if (!expected_signature(r->keys[k], r->key_len[k], id, ts, body, len,
                                expect))
            continue;
        size_t el = strlen(expect);
        const char *p = header;
        while (*p) {
            while (*p == ' ') p++;
            const char *end = strchr(p, ' ');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            if (n == el + 3 && strncmp(p, "v1,", 3) == 0 &&
                CRYPTO_memcmp(p + 3, expect, el) == 0)
                matched |= 1u << k;
            p += n;
        }
    }
    return matched;
}

/* The next planned behaviour (consumed), or 200. */
static struct step next_step(struct receiver *r) {
    struct step s = {200, 0, 0, 0};
    while (r->at < r->n_steps && r->plan[r->at].count <= 0) r->at++;
    if (r->at < r->n_steps) {
        s = r->plan[r->at];
        r->plan[r->at].count--;
    }
    return s;
}

static void set_plan(struct receiver *r, const char *text) {
    char line[256];
    r->n_steps = r->at = 0;
    while (*text) {
        size_t n = strcspn(text, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(n < 255 ? n : 255), text);
        text += n + (text[n] == '\n');
        char what[200];
        int count = 0;
        if (sscanf(line, "%199s %d", what, &count) < 1) continue;
        if (strcmp(what, "reject") == 0) {
            char id[200];
            if (sscanf(line, "reject %199s", id) == 1 &&
                r->n_reject < MAX_REJECT)
                r->reject[r->n_reject++] = strdup(id);
            continue;
        }
        if (r->n_steps == MAX_STEPS) continue;
        struct step *s = &r->plan[r->n_steps++];
        memset(s, 0, sizeof *s);
        s->count = count;
        if (strncmp(what, "stall:", 6) == 0) {
            s->status = 0;
            s->stall_ms = atoi(what + 6);
        } else {
            s->status = atoi(what);
            const char *colon = strchr(what, ':');
            if (colon) s->retry_after = atoi(colon + 1);
        }
    }
}

static enum MHD_Result answer(struct MHD_Connection *c, int status,
                              const char *text, int retry_after) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    struct receiver *r = cls;
    struct upload *u = *con_cls;
    (void)version;
    if (!u) {
        if (!(u = calloc(1, sizeof *u))) return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*upload_size) {
        if (u->len + *upload_size > MAX_BODY) {
            u->too_big = true;
        } else {
            char *d = realloc(u->data, u->len + *upload_size + 1);
            if (!d) return MHD_NO;
            memcpy(d + u->len, upload, *upload_size);
            u->data = d;
            u->len += *upload_size;
            u->data[u->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    const char *body = u->data ? u->data : "";
    if (strcmp(url, "/_control") == 0) {
        char text[32];
        pthread_mutex_lock(&r->lock);
        if (strcmp(method, "POST") == 0) set_plan(r, body);
        snprintf(text, sizeof text, "%ld\n", r->accepted);
        pthread_mutex_unlock(&r->lock);
        return answer(c, 200, text, 0);
    }
    if (strcmp(method, "POST") != 0) return answer(c, 405, "POST only\n", 0);
    if (u->too_big) return answer(c, 413, "too large\n", 0);

    const char *id =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
    const char *ts =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
    const char *sig =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
    const char *ctype =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "content-type");
    json_t *doc = json_loadb(body, u->len, 0, NULL);
    const char *rec_id = json_string_value(json_object_get(doc, "id"));
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    json_int_t rec_version =
        json_integer_value(json_object_get(doc, "version"));

    struct timespec arrived;
    clock_gettime(CLOCK_REALTIME, &arrived);
    json_int_t at_ms =
        (json_int_t)arrived.tv_sec * 1000 + arrived.tv_nsec / 1000000;
    pthread_mutex_lock(&r->lock);
    unsigned matched = verify(r, id, ts, sig, body, u->len);
    struct step s = {401, 0, 0, 0};
    bool rejected = false;
    for (int i = 0; rec_id && i < r->n_reject; i++)
        if (strcmp(rec_id, r->reject[i]) == 0) rejected = true;
    if (matched) s = rejected ? (struct step){422, 0, 0, 0} : next_step(r);
    long n = ++r->n;
    pthread_mutex_unlock(&r->lock);

    if (s.status == 0) { /* stall, then answer to a client long gone */
        struct timespec t = {s.stall_ms / 1000, (s.stall_ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
        s.status = 200;
    }
    json_t *line = json_pack(
        "{s:I, s:I, s:s?, s:s?, s:b, s:[], s:s?, s:i, s:i, s:s?, s:I, s:s?, "
        "s:s%}",
        "n", (json_int_t)n, "at_ms", at_ms, "webhook_id", id, "timestamp", ts,
        "verified", matched != 0, "matched", "content_type", ctype, "answered",
        s.status, "stalled_ms", s.stall_ms, "id", rec_id, "version",
        rec_version, "kind", kind, "body", body, u->len);
    for (int k = 0; line && k < r->n_keys; k++)
        if (matched & (1u << k))
            json_array_append_new(json_object_get(line, "matched"),
                                  json_integer(k));
    pthread_mutex_lock(&r->lock);
    if (s.status >= 200 && s.status < 300) r->accepted++;
    if (line) {
        json_dumpf(line, r->log, JSON_COMPACT);
        fputc('\n', r->log);
        fflush(r->log);
    }
    pthread_mutex_unlock(&r->lock);
    json_decref(line);
    json_decref(doc);
    return answer(c, s.status, s.status < 300 ? "ok\n" : "no\n", s.retry_after);
}

/* The whole of a small file, NUL-terminated (PEM for MHD). */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    char *buf = f ? calloc(1, 1 << 16) : NULL;
    if (buf && fread(buf, 1, (1 << 16) - 1, f) == 0) {
        free(buf);
        buf = NULL;
    }
    if (f) fclose(f);
    return buf;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    struct upload *u = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (u) {
        free(u->data);
        free(u);
        *con_cls = NULL;
    }
}

int main(int argc, char **argv) {
    struct receiver r;
    const char *port_file = NULL, *log_path = NULL, *secrets = "";
    const char *cert_path = NULL, *key_path = NULL;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.lock, NULL);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
        else if (strcmp(argv[i], "--log") == 0)
            log_path = argv[i + 1];
        else if (strcmp(argv[i], "--secrets") == 0)
            secrets = argv[i + 1];
        else if (strcmp(argv[i], "--cert") == 0)
            cert_path = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            key_path = argv[i + 1];
    }
    if (!port_file || !log_path) {
        fprintf(stderr, "usage: webhook_receiver --port-file FILE --log FILE "
                        "[--secrets \"whsec_...\"]\n");
        return 2;
    }
    char *copy = strdup(secrets), *save = NULL;
    for (char *t = strtok_r(copy, " \n", &save); t && r.n_keys < MAX_SECRETS;
         t = strtok_r(NULL, " \n", &save)) {
        if (!decode_secret(t, r.keys[r.n_keys], &r.key_len[r.n_keys])) {
            fprintf(stderr, "webhook_receiver: a secret does not decode\n");
            return 2;
        }
        r.n_keys++;
    }
    free(copy);
    if (!(r.log = fopen(log_path, "a"))) {
        perror(log_path);
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD's threads inherit it */
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char *cert = cert_path ? read_file(cert_path) : NULL;
    char *key = key_path ? read_file(key_path) : NULL;
    if ((cert_path || key_path) && (!cert || !key)) {
        fprintf(stderr, "webhook_receiver: --cert and --key go together\n");
        return 2;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d =
        cert ? MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, handle, &r,
                                MHD_OPTION_SOCK_ADDR, &addr,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                                MHD_OPTION_HTTPS_MEM_CERT, cert,
                                MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END)
             : MHD_start_daemon(
                   flags, 0, NULL, NULL, handle, &r, MHD_OPTION_SOCK_ADDR,
                   &addr, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                   MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "webhook_receiver: cannot start\n");
        return 1;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *pf = fopen(tmp, "w");
    if (!pf || fprintf(pf, "%u\n", (unsigned)info->port) < 0 || fclose(pf) ||
        rename(tmp, port_file)) {
        perror(port_file);
        return 1;
    }
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    free(cert);
    free(key);
    fclose(r.log);
    for (int i = 0; i < r.n_reject; i++) free(r.reject[i]);
    OPENSSL_cleanse(r.keys, sizeof r.keys);
    return 0;
}
