/*
 * kafka_input.c - the Kafka consumer-group input (kafka.h).
 *
 * Offsets: librdkafka never commits or stores on its own here
 * (enable.auto.commit and enable.auto.offset.store are off).  commit()
 * only notes what is owed per partition; the next read() or wait()
 * sends everything owed in one asynchronous commit, and the result
 * (offset_commit_cb, served by the consumer poll) either settles it or
 * leaves it owed, to be sent again a second later.  A rebalance that
 * revokes partitions first asks the engine for a checkpoint, then
 * commits what is owed for them synchronously, while they are still
 * ours.  close() commits what is still owed, synchronously.
 *
 * Backpressure: wait() pauses the assignment.  Pausing bumps librdkafka's
 * fetch version, which discards what was already fetched, and resuming
 * fetches again from the offset after the last message handed out, so
 * nothing is skipped; a message that still arrives while paused is held
 * and handed out first.
 */
#include <librdkafka/rdkafka.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "kafka/kafka.h"
#include "kafka/kafka_common.h"

#define POLL_MS 100
#define COMMIT_RETRY_MS 1000
#define CLOSE_SETTLE_MS 10000

struct part {
    const char *topic; /* one of url.topics */
    int32_t partition;
    int64_t want;  /* offset to commit (last checkpointed + 1), -1 none */
    int64_t acked; /* last offset the coordinator confirmed, -1 none */
    int64_t sent;  /* offset of the commit in flight, -1 none */
    int64_t next;  /* offset after the last message handed out, -1 none */
    bool assigned, eof;
};

struct kafka_input {
    struct kafka_said said; /* first: the callbacks' opaque is this */
    struct cf_input in;
    rd_kafka_t *rk;
    struct kafka_url url;
    struct part *parts;
    size_t n_parts, cap_parts, last_part;
    rd_kafka_message_t *cur; /* handed out; freed at the next read() */
    rd_kafka_message_t **held;
    size_t n_held, cap_held, next_held;
    bool paused, closing, ever_assigned, failed;
    int64_t commit_retry_at; /* monotonic ms; 0: now */
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *known_topic(const struct kafka_input *ki, const char *t) {
    for (size_t i = 0; i < ki->url.n_topics; i++)
        if (strcmp(ki->url.topics[i], t) == 0) return ki->url.topics[i];
    return NULL;
}

/* The entry of (topic, partition); created when `create`.  NULL when the
 * topic is not one of ours or memory runs out. */
static struct part *find_part(struct kafka_input *ki, const char *topic,
                              int32_t partition, bool create) {
    if (ki->last_part < ki->n_parts) {
        struct part *p = &ki->parts[ki->last_part];
        if (p->partition == partition && strcmp(p->topic, topic) == 0) return p;
    }
    for (size_t i = 0; i < ki->n_parts; i++) {
        struct part *p = &ki->parts[i];
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            ki->last_part = i;
            return p;
        }
    }
    const char *t = known_topic(ki, topic);
    if (!create || !t) return NULL;
    if (ki->n_parts == ki->cap_parts) {
        size_t cap = ki->cap_parts ? 2 * ki->cap_parts : 16;
        struct part *np = cf_realloc(ki->parts, cap * sizeof *np);
        if (!np) return NULL;
        ki->parts = np;
        ki->cap_parts = cap;
    }
    struct part *p = &ki->parts[ki->n_parts];
    *p = (struct part){t, partition, -1, -1, -1, -1, false, false};
    ki->last_part = ki->n_parts++;
    return p;
}

/* Sends what is owed for the assigned partitions (those in `only`, when
 * given).  Asynchronously: only what is not already in flight, settled
 * by on_commit.  Synchronously: everything owed, settled here. */
static void send_owed(struct kafka_input *ki,
                      const rd_kafka_topic_partition_list_t *only, bool sync) {
    rd_kafka_topic_partition_list_t *list = NULL;
    for (size_t i = 0; i < ki->n_parts; i++) {
        struct part *p = &ki->parts[i];
        if (!p->assigned || p->want <= p->acked) continue;
        if (!sync && p->sent == p->want) continue;
        if (only &&
            !rd_kafka_topic_partition_list_find(only, p->topic, p->partition))
            continue;
        if (!list && !(list = rd_kafka_topic_partition_list_new(8))) return;
        rd_kafka_topic_partition_list_add(list, p->topic, p->partition)
            ->offset = p->want;
        p->sent = p->want;
    }
    if (!list) return;
    rd_kafka_resp_err_t err = rd_kafka_commit(ki->rk, list, sync ? 0 : 1);
    if (sync) {
        for (int i = 0; i < list->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &list->elems[i];
            struct part *p = find_part(ki, e->topic, e->partition, false);
            if (!p) continue;
            if (p->sent == e->offset) p->sent = -1;
            if (!err && !e->err && e->offset > p->acked) p->acked = e->offset;
        }
    }
    for (int i = 0; sync && !err && i < list->cnt; i++)
        err = list->elems[i].err;
    if (err) {
        /* the async call itself failed: nothing is in flight */
        if (!sync)
            for (int i = 0; i < list->cnt; i++) {
                struct part *p = find_part(ki, list->elems[i].topic,
                                           list->elems[i].partition, false);
                if (p) p->sent = -1;
            }
        kafka_say(&ki->said, err, rd_kafka_err2str(err));
        ki->commit_retry_at = now_ms() + COMMIT_RETRY_MS;
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    struct kafka_input *ki = opaque;
    (void)rk;
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *e = &offsets->elems[i];
        struct part *p = find_part(ki, e->topic, e->partition, false);
        if (!p) continue;
        if (p->sent == e->offset) p->sent = -1;
        if (e->err) err = e->err;
        /* a request-level error leaves the partitions' own errors unset */
        if (!err && e->offset > p->acked) p->acked = e->offset;
    }
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        char why[160];
        snprintf(why, sizeof why, "offset commit failed: %s (sent again)",
                 rd_kafka_err2str(err));
        kafka_say(&ki->said, err, why);
        ki->commit_retry_at = now_ms() + COMMIT_RETRY_MS;
    }
}

/* Drops held messages of partitions no longer ours. */
static void drop_held(struct kafka_input *ki,
                      const rd_kafka_topic_partition_list_t *revoked) {
    size_t kept = 0;
    for (size_t i = ki->next_held; i < ki->n_held; i++) {
        rd_kafka_message_t *m = ki->held[i];
        if (rd_kafka_topic_partition_list_find(
                revoked, rd_kafka_topic_name(m->rkt), m->partition))
            rd_kafka_message_destroy(m);
        else
            ki->held[kept++] = m;
    }
    ki->n_held = kept;
    ki->next_held = 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct kafka_input *ki = opaque;
    bool cooperative =
        strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            struct part *p = find_part(ki, parts->elems[i].topic,
                                       parts->elems[i].partition, true);
            if (!p) continue;
            p->assigned = true;
            p->eof = false;
            p->sent = -1;
            /* A partition this input read before (a rebalance took it
             * and gave it back; the session ended in an outage): the
             * engine holds everything handed out, in its state or its
             * checkpoint, so reading resumes after that, not at the
             * group's committed offset, which may be older (a commit
             * refused while rebalancing; nothing is lost either way,
             * this only spares repeating records).  A commit still owed
             * is sent again. */
            if (p->next >= 0) parts->elems[i].offset = p->next;
        }
        if (cooperative)
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
        ki->ever_assigned = true;
        if (ki->paused) rd_kafka_pause_partitions(rk, parts);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* The engine checkpoints and commits what it owns while the
         * partitions are still ours; at close it already has. */
        if (!ki->closing) cf_input_checkpoint(&ki->in);
        if (!rd_kafka_assignment_lost(rk)) send_owed(ki, parts, true);
        for (int i = 0; i < parts->cnt; i++) {
            struct part *p = find_part(ki, parts->elems[i].topic,
                                       parts->elems[i].partition, false);
            if (p) p->assigned = false;
        }
        drop_held(ki, parts);
        if (cooperative)
            rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
        else
            rd_kafka_assign(rk, NULL);
        return;
    }
    kafka_say(&ki->said, err, rd_kafka_err2str(err));
    rd_kafka_assign(rk, NULL);
}

static bool all_at_end(const struct kafka_input *ki) {
    size_t assigned = 0;
    for (size_t i = 0; i < ki->n_parts; i++) {
        if (!ki->parts[i].assigned) continue;
        if (!ki->parts[i].eof) return false;
        assigned++;
    }
    return ki->ever_assigned && assigned > 0;
}

/* Pauses (wait) or resumes (read) the whole assignment. */
static void set_paused(struct kafka_input *ki, bool pause) {
    rd_kafka_topic_partition_list_t *list = NULL;
    if (rd_kafka_assignment(ki->rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (pause)
            rd_kafka_pause_partitions(ki->rk, list);
        else
            rd_kafka_resume_partitions(ki->rk, list);
        rd_kafka_topic_partition_list_destroy(list);
    }
    ki->paused = pause;
}

static void maybe_send_owed(struct kafka_input *ki) {
    if (ki->commit_retry_at && now_ms() < ki->commit_retry_at) return;
    ki->commit_retry_at = 0;
    send_owed(ki, NULL, false);
}

/* A consumer event that is not a message: end of a partition, or an
 * error.  Returns false on a fatal error. */
static bool consumer_event(struct kafka_input *ki, rd_kafka_message_t *m) {
    bool ok = true;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        struct part *p = m->rkt ? find_part(ki, rd_kafka_topic_name(m->rkt),
                                            m->partition, false)
                                : NULL;
        if (p) p->eof = true;
    } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_fatal_error(ki->rk, why, sizeof why);
        fprintf(stderr, "chainfuse: kafka input: fatal: %s\n", why);
        ok = false;
    } else {
        kafka_say(&ki->said, m->err, rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
    return ok;
}

static cf_io_status kafka_read(struct cf_input *in, struct cf_record *rec) {
    struct kafka_input *ki = in->ctx;
    if (ki->cur) rd_kafka_message_destroy(ki->cur);
    ki->cur = NULL;
    if (ki->failed) return CF_IO_FAIL;
    if (ki->paused) set_paused(ki, false);
    maybe_send_owed(ki);
    int64_t deadline = now_ms() + POLL_MS;
    for (;;) {
        rd_kafka_message_t *m = NULL;
        if (ki->next_held < ki->n_held) {
            m = ki->held[ki->next_held++];
            if (ki->next_held == ki->n_held) ki->next_held = ki->n_held = 0;
        } else {
            int64_t left = deadline - now_ms();
            m = rd_kafka_consumer_poll(ki->rk, left > 0 ? (int)left : 0);
        }
        if (!m) break;
        if (m->err) {
            if (!consumer_event(ki, m)) {
                ki->failed = true;
                return CF_IO_FAIL;
            }
            if (ki->url.stop_at_end && all_at_end(ki)) return CF_IO_EOF;
            if (now_ms() >= deadline) break;
            continue;
        }
        const char *topic = rd_kafka_topic_name(m->rkt);
        struct part *p = find_part(ki, topic, m->partition, true);
        if (!p) { /* out of memory: the message comes again after a seek */
            rd_kafka_seek(m->rkt, m->partition, m->offset, 0);
            rd_kafka_message_destroy(m);
            return CF_IO_RETRY;
        }
        p->eof = false;
        p->next = m->offset + 1;
        kafka_said_recovered(&ki->said);
        ki->cur = m;
        *rec = (struct cf_record){0};
        rec->data = m->payload ? m->payload : "";
        rec->len = m->payload ? m->len : 0;
        rec->pos = (struct cf_position){p->topic, m->partition, m->offset};
        return CF_IO_OK;
    }
    if (ki->url.stop_at_end && all_at_end(ki)) return CF_IO_EOF;
    return CF_IO_RETRY;
}

static void kafka_commit(struct cf_input *in, const struct cf_position *pos) {
    struct kafka_input *ki = in->ctx;
    struct part *p =
        pos->source ? find_part(ki, pos->source, pos->partition, false) : NULL;
    /* Noted even for a partition given up since (its session lost): it
     * is sent only once the partition is ours again. */
    if (p && pos->offset + 1 > p->want) p->want = pos->offset + 1;
}

static void kafka_wait(struct cf_input *in, long ms) {
    struct kafka_input *ki = in->ctx;
    if (ki->failed) return;
    if (!ki->paused) set_paused(ki, true);
    maybe_send_owed(ki);
    int64_t deadline = now_ms() + (ms > 0 ? ms : 0);
    for (;;) {
        int64_t left = deadline - now_ms();
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(ki->rk, left > 0 ? (int)left : 0);
        if (m && m->err) {
            if (!consumer_event(ki, m)) ki->failed = true;
        } else if (m) {
            if (ki->n_held == ki->cap_held) {
                size_t cap = ki->cap_held ? 2 * ki->cap_held : 16;
                rd_kafka_message_t **h = cf_realloc(ki->held, cap * sizeof *h);
                if (!h) { /* fetched again after the seek */
                    rd_kafka_seek(m->rkt, m->partition, m->offset, 0);
                    rd_kafka_message_destroy(m);
                    continue;
                }
                ki->held = h;
                ki->cap_held = cap;
            }
            ki->held[ki->n_held++] = m;
        }
        if (now_ms() >= deadline || ki->failed) break;
    }
}

static size_t count_owed(const struct kafka_input *ki) {
    size_t n = 0;
    for (size_t i = 0; i < ki->n_parts; i++)
        n += ki->parts[i].want > ki->parts[i].acked;
    return n;
}

/* At close, commits the group refused (this member's session ended
 * during an outage, a rebalance was under way) are worth a few seconds:
 * serving the group lets it rejoin, get its partitions back and commit.
 * Messages fetched meanwhile are dropped unread; they are not committed,
 * so the next run reads them. */
static void settle_owed(struct kafka_input *ki) {
    int64_t deadline = now_ms() + CLOSE_SETTLE_MS;
    while (count_owed(ki) && now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ki->rk, POLL_MS);
        if (m) rd_kafka_message_destroy(m);
        maybe_send_owed(ki);
    }
    size_t n = count_owed(ki);
    if (n)
        fprintf(stderr,
                "chainfuse: kafka input: the commits of %zu partitions were "
                "refused until close; the next run reads again from the "
                "last commit (records repeated, none lost)\n",
                n);
}

static void kafka_close(struct cf_input *in) {
    struct kafka_input *ki = in->ctx;
    ki->closing = true;
    if (ki->rk) {
        if (ki->cur) rd_kafka_message_destroy(ki->cur);
        for (size_t i = ki->next_held; i < ki->n_held; i++)
            rd_kafka_message_destroy(ki->held[i]);
        send_owed(ki, NULL, true);
        settle_owed(ki);
        rd_kafka_consumer_close(ki->rk);
        rd_kafka_destroy(ki->rk);
    }
    cf_free(ki->held);
    cf_free(ki->parts);
    kafka_url_free(&ki->url);
    cf_free(ki);
}

static const struct cf_input_ops kafka_input_ops = {
    "kafka", kafka_read, kafka_commit, kafka_wait, kafka_close};

struct cf_input *cf_kafka_input_open(const char *url, const struct json_t *opts,
                                     char *errstr, size_t errstr_size) {
    static const char *const reserved[] = {"bootstrap.servers",
                                           "metadata.broker.list",
                                           "group.id",
                                           "enable.auto.commit",
                                           "enable.auto.offset.store",
                                           "enable.partition.eof",
                                           NULL};
    /* A new group reads what the topic holds, not only what comes after
     * it joined (rdkafka: auto.offset.reset: latest says otherwise). */
    static const char *const defaults[] = {"auto.offset.reset", "earliest",
                                           NULL};
    struct kafka_input *ki = cf_calloc(1, sizeof *ki);
    rd_kafka_conf_t *conf = NULL;
    char e[512];
    if (!ki) {
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ki->said.who = "input";
    ki->in = (struct cf_input){&kafka_input_ops, ki, NULL, NULL};
    if (!(conf = kafka_conf_open(url, true, &ki->url, ki, opts, defaults,
                                 reserved, errstr, errstr_size)))
        goto fail;
    if (kafka_conf_set(conf, "group.id", ki->url.group, errstr, errstr_size) ||
        kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                       errstr_size) ||
        kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr,
                       errstr_size) ||
        kafka_conf_set(conf, "enable.partition.eof",
                       ki->url.stop_at_end ? "true" : "false", errstr,
                       errstr_size))
        goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    if (!(ki->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e))) {
        cf_seterr(errstr, errstr_size, CF_ERR, "kafka input: %s", e);
        goto fail;
    }
    conf = NULL; /* the handle owns it */
    rd_kafka_poll_set_consumer(ki->rk);
    rd_kafka_topic_partition_list_t *subs =
        rd_kafka_topic_partition_list_new((int)ki->url.n_topics);
    for (size_t i = 0; i < ki->url.n_topics; i++)
        rd_kafka_topic_partition_list_add(subs, ki->url.topics[i],
                                          RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(ki->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err) {
        cf_seterr(errstr, errstr_size, CF_ERR, "kafka input: subscribe: %s",
                  rd_kafka_err2str(err));
        goto fail;
    }
    return &ki->in;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    kafka_close(&ki->in);
    return NULL;
}
