/*
 * connector.h - the one interface every input and output implements.
 *
 * An input hands the engine records (one JSON document each) with their
 * position; the engine tells it which positions are safely processed
 * (commit) so a consumer group can resume after a crash without loss.
 *
 * An output accepts serialized records.  It answers OK, RETRY ("not yet:
 * the receiver is down or full, give it to me again later") or FAIL
 * (permanent, the record goes to the dead-letter output).  Retry,
 * backoff, dead-lettering and backpressure are owned by the engine, once,
 * not by each connector.
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

/* One input record.  `data` is borrowed from the input and stays valid
 * until the next read() on the same input.  An input hands over every
 * record it reads, blank ones included: the engine counts them. */
struct cf_record {
    const char *data;
    size_t len;
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
    /* Every record up to and including `pos` is fully processed and its
     * outputs acknowledged.  May be NULL. */
    void (*commit)(struct cf_input *in, const struct cf_position *pos);
    /* Frees the input.  NULL-safe at the call site (cf_input_close). */
    void (*close)(struct cf_input *in);
};

/* Connectors keep no counters of their own: the engine counts records
 * read, written and dead-lettered, once (cf_pipeline_stats). */
struct cf_input {
    const struct cf_input_ops *ops;
    void *ctx; /* connector private state */
};

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
};

static inline void cf_input_close(struct cf_input *in) {
    if (in && in->ops && in->ops->close) in->ops->close(in);
}
static inline void cf_output_close(struct cf_output *out) {
    if (out && out->ops && out->ops->close) out->ops->close(out);
}

#endif
