/*
 * connector.h - the one interface every input and output implements.
 *
 * An input hands the engine records (one document each) with their
 * position; the engine tells it which positions are safely processed
 * (commit) so a consumer group can resume after a crash without loss.
 * "Safely processed" means covered by a durable checkpoint of the
 * engine's state with every output flushed up to it, so the engine
 * commits at checkpoints, once per source and partition it has read.
 *
 * An output accepts serialized records.  It answers OK, RETRY ("not yet:
 * the receiver is down or full, give it to me again later") or FAIL
 * (permanent, the record goes to the dead-letter output).  Retry,
 * backoff, dead-lettering and backpressure are owned by the engine, once,
 * not by each connector.  An output that sends asynchronously (a
 * webhook with requests in flight) answers OK when it has taken the
 * record, holds it until the receiver acknowledges it, makes flush()
 * answer RETRY until every record taken is acknowledged, and reports a
 * record that later fails for good through cf_output_dead_letter().
 *
 * Threading: a connector instance is used by one engine thread.
 */
#ifndef CF_CONNECTOR_H
#define CF_CONNECTOR_H

#include "common.h"

typedef enum cf_io_status {
    CF_IO_OK = 0,
    CF_IO_RETRY = 1, /* transient: try the same record again later */
    CF_IO_EOF = 2,   /* input only: nothing more will come */
    CF_IO_FAIL = -1  /* permanent for this record or this connector */
} cf_io_status;

/* A reference count on memory an input lends (struct cf_record.hold).
 * Both calls are made on the engine's thread; every retain is matched by
 * a release before the input is closed. */
struct cf_hold {
    void (*retain)(struct cf_hold *h);
    void (*release)(struct cf_hold *h);
};

/* One input record.  `data` is borrowed from the input and stays valid
 * until the next read() on the same input, or, when `hold` is set, for
 * as long as the engine retains the hold (the detection threads keep a
 * batch of records that way instead of copying them).  An input hands
 * over every record it reads, blank ones included: the engine counts
 * them. */
struct cf_record {
    const char *data;
    size_t len;
    /* NULL (the engine clears it before each read): data as above */
    struct cf_hold *hold;
    struct cf_position pos;
    /* Set by the input when the record was already found bad before it
     * reached the engine (line longer than the configured limit, ...):
     * the engine dead-letters it with this reason instead of decoding. */
    const char *defect;
    /* `data` is only the first part of the record (cut at the input's
     * size limit); the dead-letter record says so. */
    bool truncated;
};

struct cf_input;
struct cf_output;

struct cf_input_ops {
    const char *name; /* "file", "kafka", ... */
    /* Next record; CF_IO_RETRY means "nothing now, ask again". */
    cf_io_status (*read)(struct cf_input *in, struct cf_record *rec);
    /* Every record of pos->source and pos->partition up to and including
     * `pos` is fully processed, checkpointed and its outputs acknowledged
     * (called at each checkpoint, once per source and partition read
     * since the last).  May be NULL. */
    void (*commit)(struct cf_input *in, const struct cf_position *pos);
    /* The engine cannot take records for about `ms` milliseconds (an
     * output is retrying).  The input keeps its session alive (group
     * heartbeats, rebalances) without handing out records, and pauses
     * its sources so nothing piles up; the next read() resumes them.
     * May be NULL: the engine then just sleeps. */
    void (*wait)(struct cf_input *in, long ms);
    /* Frees the input.  NULL-safe at the call site (cf_input_close). */
    void (*close)(struct cf_input *in);
};

/* Connectors keep no counters of their own: the engine counts records
 * read, written and dead-lettered, once (cf_pipeline_stats). */
struct cf_input {
    const struct cf_input_ops *ops;
    void *ctx; /* connector private state */
    /* Set by the engine before the first read(): an input that is about
     * to give up sources it owns (a consumer-group rebalance revoking
     * partitions) calls cf_input_checkpoint() first, from inside read()
     * or wait(), so the engine checkpoints and commits what it owns. */
    void (*checkpoint)(void *engine);
    void *engine;
};

static inline void cf_input_checkpoint(struct cf_input *in) {
    if (in->checkpoint) in->checkpoint(in->engine);
}

/* One record handed to an output: the serialized JSON plus what an
 * output needs to route, key, order or filter it without parsing the
 * JSON (a Redis queue scores by severity, a conditional write compares
 * versions, a Kafka output keys by id, a filter picks kinds, severities
 * and tactics).  Everything is borrowed for the write() call: an output
 * that buffers copies. */
struct cf_out_record {
    const char *kind; /* "alert", "incident", "dead-letter", "stats" */
    const char *json; /* one complete JSON document, no trailing newline */
    size_t len;
    const struct cf_position *pos; /* newest input record behind it;
                                      may be NULL */
    const char *id;     /* alert or incident id; NULL when it has none */
    uint32_t version;   /* incident record version (1, 2, ...); alerts 1;
                           0 when it has none */
    const char *status; /* incidents: "new", "updated", "closed"; else NULL */
    int severity;       /* enum cf_level (0 informational .. 4 critical);
                           -1 when it has none (dead letters, stats) */
    int score;          /* incidents: 0..100; else 0 */
    const char *const *tactics; /* ATT&CK tactic names it carries */
    size_t n_tactics;
};

/* A record of `kind` with nothing but its JSON: no id, no version, no
 * severity. */
static inline struct cf_out_record
cf_out_record_plain(const char *kind, const char *json, size_t len,
                    const struct cf_position *pos) {
    struct cf_out_record r = {kind, json, len, pos,  NULL, 0,
                              NULL, -1,   0,   NULL, 0};
    return r;
}

struct cf_output_ops {
    const char *name;
    cf_io_status (*write)(struct cf_output *out,
                          const struct cf_out_record *rec);
    /* Push buffered data to the receiver; RETRY if it cannot yet. */
    cf_io_status (*flush)(struct cf_output *out);
    void (*close)(struct cf_output *out);
};

struct cf_output {
    const struct cf_output_ops *ops;
    void *ctx;
    /* Set by the engine before the first write(): where an asynchronous
     * output reports a record it had taken (answered OK) that then failed
     * for good (a webhook answering 4xx, attempts or age exhausted), with
     * the reason; the engine dead-letters and counts it. */
    void (*dead_letter)(void *engine, const struct cf_out_record *rec,
                        const char *reason);
    void *engine;
};

static inline void cf_output_dead_letter(struct cf_output *out,
                                         const struct cf_out_record *rec,
                                         const char *reason) {
    if (out->dead_letter) out->dead_letter(out->engine, rec, reason);
}

static inline void cf_input_close(struct cf_input *in) {
    if (in && in->ops && in->ops->close) in->ops->close(in);
}
static inline void cf_output_close(struct cf_output *out) {
    if (out && out->ops && out->ops->close) out->ops->close(out);
}

#endif
