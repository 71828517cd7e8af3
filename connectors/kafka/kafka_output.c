/*
 * kafka_output.c - the Kafka producer output (kafka.h).
 *
 * librdkafka copies each record (RD_KAFKA_MSG_F_COPY) and delivers it in
 * the background; what the engine would need to dead-letter a record
 * that later fails (its kind, id, version, position) rides along with
 * it as the message's opaque, and the JSON is the message's own payload,
 * so nothing is kept twice.  The producer is idempotent: librdkafka's
 * retries neither duplicate nor reorder records within a partition.
 */
#include <librdkafka/rdkafka.h>
#include <string.h>

#include "alloc.h"
#include "kafka/kafka.h"
#include "kafka/kafka_common.h"

#define FLUSH_POLL_MS 100

struct kafka_output {
    struct kafka_said said; /* first: the callbacks' opaque is this */
    struct cf_output out;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    struct kafka_url url;
    size_t pending; /* written, delivery report not yet in */
    size_t undelivered_at_close;
    bool closing, fatal;
};

/* What a record's dead letter needs besides the payload. */
struct in_flight {
    uint32_t version;
    int severity, score;
    bool has_pos;
    int32_t partition;
    int64_t offset;
    const char *kind, *id, *status, *source; /* into text[] or NULL */
    char text[];
};

static char *copy_into(char **at, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *dst = *at;
    memcpy(dst, s, n);
    *at += n;
    return dst;
}

static struct in_flight *in_flight_new(const struct cf_out_record *rec) {
    const char *src = rec->pos ? rec->pos->source : NULL;
    size_t n = strlen(rec->kind) + 1;
    n += rec->id ? strlen(rec->id) + 1 : 0;
    n += rec->status ? strlen(rec->status) + 1 : 0;
    n += src ? strlen(src) + 1 : 0;
    struct in_flight *f = cf_malloc(sizeof *f + n);
    if (!f) return NULL;
    char *at = f->text;
    f->version = rec->version;
    f->severity = rec->severity;
    f->score = rec->score;
    f->has_pos = rec->pos != NULL;
    f->partition = rec->pos ? rec->pos->partition : -1;
    f->offset = rec->pos ? rec->pos->offset : 0;
    f->kind = copy_into(&at, rec->kind);
    f->id = copy_into(&at, rec->id);
    f->status = copy_into(&at, rec->status);
    f->source = copy_into(&at, src);
    return f;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
    struct kafka_output *ko = opaque;
    struct in_flight *f = m->_private;
    (void)rk;
    ko->pending--;
    if (!m->err) {
        kafka_said_recovered(&ko->said);
    } else if (ko->closing) {
        ko->undelivered_at_close++;
    } else {
        struct cf_position pos = {f->source, f->partition, f->offset};
        struct cf_out_record r = {
            f->kind,  m->payload, m->len,    f->has_pos ? &pos : NULL,
            f->id,    f->version, f->status, f->severity,
            f->score, NULL,       0};
        char why[160];
        snprintf(why, sizeof why, "kafka delivery failed: %s",
                 rd_kafka_err2str(m->err));
        cf_output_dead_letter(&ko->out, &r, why);
    }
    cf_free(f);
}

static void add_header(rd_kafka_headers_t *h, const char *name,
                       const char *value) {
    rd_kafka_header_add(h, name, -1, value, -1);
}

/* The headers of a record: its kind and version; for a dead letter also
 * why and where it came from, so a dead-letter topic can be triaged and
 * replayed without parsing every value. */
static rd_kafka_headers_t *headers_for(const struct cf_out_record *rec) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    char num[32];
    add_header(h, "chainfuse.kind", rec->kind);
    if (rec->version > 0) {
        snprintf(num, sizeof num, "%u", (unsigned)rec->version);
        add_header(h, "chainfuse.version", num);
    }
    if (strcmp(rec->kind, "dead-letter") != 0) return h;
    json_t *doc = json_loadb(rec->json, rec->len, 0, NULL);
    const char *reason = json_string_value(json_object_get(doc, "reason"));
    add_header(h, "chainfuse.reason", reason ? reason : "unknown");
    json_decref(doc);
    if (rec->pos) {
        if (rec->pos->source)
            add_header(h, "chainfuse.source", rec->pos->source);
        if (rec->pos->partition >= 0) {
            snprintf(num, sizeof num, "%d", (int)rec->pos->partition);
            add_header(h, "chainfuse.partition", num);
        }
        snprintf(num, sizeof num, "%lld", (long long)rec->pos->offset);
        add_header(h, "chainfuse.offset", num);
    }
    return h;
}

static bool say_fatal(struct kafka_output *ko) {
    char why[256];
    if (ko->fatal) return true;
    if (rd_kafka_fatal_error(ko->rk, why, sizeof why) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    ko->fatal = true;
    fprintf(stderr, "chainfuse: kafka output: fatal: %s\n", why);
    return true;
}

static cf_io_status kafka_write(struct cf_output *out,
                                const struct cf_out_record *rec) {
    struct kafka_output *ko = out->ctx;
    rd_kafka_poll(ko->rk, 0); /* delivery reports */
    if (say_fatal(ko)) return CF_IO_FAIL;
    struct in_flight *f = in_flight_new(rec);
    if (!f) return CF_IO_RETRY;
    rd_kafka_headers_t *h = headers_for(rec);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        ko->rk, RD_KAFKA_V_RKT(ko->rkt),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE((void *)rec->json, rec->len),
        RD_KAFKA_V_KEY(rec->id, rec->id ? strlen(rec->id) : 0),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(f), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ko->pending++;
        return CF_IO_OK;
    }
    rd_kafka_headers_destroy(h);
    cf_free(f);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        /* the engine backs off; meanwhile reports drain the queue */
        rd_kafka_poll(ko->rk, 10);
        return CF_IO_RETRY;
    }
    if (say_fatal(ko)) return CF_IO_FAIL;
    /* permanent for this record (too large, ...): the engine
     * dead-letters it */
    kafka_say(&ko->said, err, rd_kafka_err2str(err));
    return CF_IO_FAIL;
}

static cf_io_status kafka_flush(struct cf_output *out) {
    struct kafka_output *ko = out->ctx;
    if (ko->pending) rd_kafka_flush(ko->rk, FLUSH_POLL_MS);
    rd_kafka_poll(ko->rk, 0);
    if (ko->pending == 0) return CF_IO_OK;
    return say_fatal(ko) ? CF_IO_FAIL : CF_IO_RETRY;
}

static void kafka_output_close(struct cf_output *out) {
    struct kafka_output *ko = out->ctx;
    if (ko->rk) {
        /* The engine flushed before closing; what is left now could
         * only be waited for, and the engine is going away. */
        ko->closing = true;
        if (ko->pending) {
            rd_kafka_purge(ko->rk,
                           RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(ko->rk, 1000);
        }
        if (ko->undelivered_at_close || ko->pending)
            fprintf(stderr,
                    "chainfuse: kafka output: %zu records not delivered at "
                    "close (close without a successful flush)\n",
                    ko->undelivered_at_close + ko->pending);
        if (ko->rkt) rd_kafka_topic_destroy(ko->rkt);
        rd_kafka_destroy(ko->rk);
    }
    kafka_url_free(&ko->url);
    cf_free(ko);
}

static const struct cf_output_ops kafka_output_ops = {
    "kafka", kafka_write, kafka_flush, kafka_output_close};

struct cf_output *cf_kafka_output_open(const char *url,
                                       const struct json_t *opts, char *errstr,
                                       size_t errstr_size) {
    static const char *const reserved[] = {"bootstrap.servers",
                                           "metadata.broker.list",
                                           "enable.idempotence", NULL};
    struct kafka_output *ko = cf_calloc(1, sizeof *ko);
    rd_kafka_conf_t *conf = NULL;
    char e[512];
    if (!ko) {
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ko->said.who = "output";
    ko->out = (struct cf_output){&kafka_output_ops, ko, NULL, NULL};
    if (!(conf = kafka_conf_open(url, false, &ko->url, ko, opts, NULL, reserved,
                                 errstr, errstr_size)) ||
        kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size))
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    if (!(ko->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e))) {
        cf_seterr(errstr, errstr_size, CF_ERR, "kafka output: %s", e);
        goto fail;
    }
    conf = NULL; /* the handle owns it */
    if (!(ko->rkt = rd_kafka_topic_new(ko->rk, ko->url.topics[0], NULL))) {
        cf_seterr(errstr, errstr_size, CF_ERR, "kafka output: topic %s: %s",
                  ko->url.topics[0], rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    return &ko->out;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    kafka_output_close(&ko->out);
    return NULL;
}
