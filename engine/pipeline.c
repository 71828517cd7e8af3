/*
 * pipeline.c - the run loop (see pipeline.h).
 *
 * Delivery to outputs (filters, retry with backoff, backpressure) is
 * engine/fanout.c's: a record an output refuses for good goes to the
 * dead-letter output with the reason.  Only when the dead-letter output
 * fails too does the run stop with an error: nothing is dropped
 * silently.  While an output retries with its backlog full, the input is
 * told to wait (it keeps its session and pauses, engine/connector.h).
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "alert.h"
#include "ckpt.h"
#include "clocks.h"
#include "dead_letter.h"
#include "detect.h"
#include "entity_norm.h"
#include "event.h"
#include "fusion.h"
#include "timeutil.h"
#include "workers.h"

/* Dead-letter reasons are counted under a fixed set of names, so the set
 * of counters cannot grow with what inputs say and none is left out; the
 * record itself keeps the reason's own words. */
enum dl_reason {
    DL_INVALID_JSON,
    DL_TRUNCATED_JSON,
    DL_LINE_TOO_LONG,
    DL_TOO_DEEP,
    DL_INVALID_UTF8,
    DL_NOT_AN_OBJECT,
    DL_INVALID_XML,
    DL_XML_DTD,
    DL_XML_NOT_EVENT,
    DL_INVALID_EMBEDDED_JSON,
    DL_TRUNCATED_INPUT,     /* a read error cut the record */
    DL_OUT_OF_MEMORY,       /* an input line that could not be decoded */
    DL_ALERT_OUT_OF_MEMORY, /* an event whose alert could not be built */
    DL_OUTPUT_FAILED,
    DL_OTHER, /* a reason an input gave that is none of the above */
    DL_REASONS
};

static const char *const dl_names[DL_REASONS] = {
    [DL_INVALID_JSON] = "invalid_json",
    [DL_TRUNCATED_JSON] = "truncated_json",
    [DL_LINE_TOO_LONG] = "line_too_long",
    [DL_TOO_DEEP] = "too_deep",
    [DL_INVALID_UTF8] = "invalid_utf8",
    [DL_NOT_AN_OBJECT] = "not_an_object",
    [DL_INVALID_XML] = "invalid_xml",
    [DL_XML_DTD] = "xml_dtd",
    [DL_XML_NOT_EVENT] = "xml_not_event",
    [DL_INVALID_EMBEDDED_JSON] = "invalid_embedded_json",
    [DL_TRUNCATED_INPUT] = "truncated_input",
    [DL_OUT_OF_MEMORY] = "out_of_memory",
    [DL_ALERT_OUT_OF_MEMORY] = "alert_out_of_memory",
    [DL_OUTPUT_FAILED] = "output_failed",
    [DL_OTHER] = "other",
};

/* The one vocabulary of record defects (core/event.h). */
static const struct {
    const char *text;
    enum dl_reason reason;
} dl_texts[] = {
    {CF_DEFECT_INVALID_JSON, DL_INVALID_JSON},
    {CF_DEFECT_TRUNCATED_JSON, DL_TRUNCATED_JSON},
    {CF_DEFECT_LINE_TOO_LONG, DL_LINE_TOO_LONG},
    {CF_DEFECT_TOO_DEEP, DL_TOO_DEEP},
    {CF_DEFECT_INVALID_UTF8, DL_INVALID_UTF8},
    {CF_DEFECT_NOT_AN_OBJECT, DL_NOT_AN_OBJECT},
    {CF_DEFECT_INVALID_XML, DL_INVALID_XML},
    {CF_DEFECT_XML_DTD, DL_XML_DTD},
    {CF_DEFECT_XML_NOT_EVENT, DL_XML_NOT_EVENT},
    {CF_DEFECT_INVALID_EMBEDDED_JSON, DL_INVALID_EMBEDDED_JSON},
    {CF_DEFECT_TRUNCATED_INPUT, DL_TRUNCATED_INPUT},
    {CF_DEFECT_OUT_OF_MEMORY, DL_OUT_OF_MEMORY},
};

static enum dl_reason classify(const char *text) {
    for (size_t i = 0; i < CF_ARRAY_LEN(dl_texts); i++)
        if (strcmp(text, dl_texts[i].text) == 0) return dl_texts[i].reason;
    return DL_OTHER;
}

/* The newest record read of one (source, partition). */
struct read_pos {
    struct cf_position pos;
    uint32_t digest;  /* of that record (see record_digest) */
    bool uncommitted; /* read since the last commit */
    /* restored: records up to pos are in the checkpoint and skipped;
     * `reached` once the record at pos was read again and matched */
    bool resume, reached;
};

/* Stage CPU, --stats cpu_seconds.  A thread CPU clock read is a system
 * call through the scheduler's lock (0.5-0.6 us here; no vDSO call), and
 * timing single records with it overstated them: the call disturbs the
 * record it times, and under load it is where the thread gets preempted,
 * so the timed record runs on cold caches.  Stages added up to 1.2-1.4
 * times the process on a quiet machine and to 2.8 times on a loaded one.
 *
 * One thread: records are timed in blocks of STAGE_BLOCK consecutive
 * ones, one block in about STAGE_GAP records.  The thread CPU clock is
 * read at a block's two ends only; inside it, the monotonic clock (a
 * vDSO read, some 25 ns, no system call) splits the block's time among
 * the stages, and the block's CPU is shared out in those proportions.  A
 * block during which the thread was switched out (it waited on an input
 * or an output, or was preempted) says little about where CPU went and
 * is not counted.
 *
 * With threads: the workers time every batch they detect, the reading
 * thread every batch it fuses (exact: a batch is a hundred records), and
 * one read in STAGE_SAMPLE, which a read's cost leaves no cheaper way to
 * time apart from the hand-over around it. */
#define STAGE_BLOCK 64
#define STAGE_GAP 1024
#define STAGE_SAMPLE 256

enum { STAGE_READ, STAGE_DETECT, STAGE_FUSE, STAGES };

/* The block of records being timed (one thread). */
struct stage_block {
    unsigned gap;   /* records to go before the next block opens */
    unsigned left;  /* records still to time in the open block; 0: none */
    unsigned n;     /* records timed in the open block */
    int64_t cpu0;   /* thread CPU when it opened */
    long switches0; /* the thread's context switches then */
    int64_t mark;   /* monotonic ns at the last stage boundary */
    int64_t wall[STAGES];
};

struct cf_pipeline {
    struct cf_pipeline_setup setup;
    struct cf_detector *det;     /* this thread's (engine/detect.h) */
    struct cf_time_names *times; /* time.fields; NULL: built-in */
    struct cf_clocks *clocks;
    struct cf_event ev;            /* decoded by det */
    struct cf_detect_list matches; /* found by det */
    const struct cf_event *cur;    /* the event being processed */
    struct cf_workers *workers;    /* with setup.threads > 1, in run */
    bool consuming;                /* processing a worker's batch */
    struct cf_entity_map *entities;
    struct cf_entity_shapes *shapes; /* this thread's locate memo */
    struct cf_fusion *fusion;
    unsigned locate_kinds; /* the entities process() finds in each event */
    struct cf_output *dead_letter;
    struct cf_fanout *fanout;
    struct cf_pipeline_output single; /* setup.out, when n_outs is 0 */
    struct cf_input *in;              /* being read, for wait() */
    struct read_pos *read;            /* per (source, partition) */
    size_t n_read, cap_read;
    struct cf_buf rec;      /* the alert being written */
    cf_err_t deliver_error; /* first unrecoverable delivery failure */
    char deliver_errstr[256];

    /* Counted here and only here; fusion's (suppressed, correlation
     * alerts, incidents) and the dropped family are counted by their
     * owners and added up in cf_pipeline_stats. */
    uint64_t records, blank_lines, events, no_time, cut_short, alerts,
        ungenerated;
    uint64_t dead_letter_reasons[DL_REASONS];
    uint64_t positions_unkept; /* a new source's position found no room */
    /* summed over every detector's matcher, in input order */
    uint64_t scan_errors, route_failures;

    /* checkpoints (setup.state_dir) */
    int64_t next_checkpoint; /* monotonic ms */
    unsigned since_clock;    /* records since the clock was read */
    /* CPU per stage, --stats cpu_seconds (see STAGE_BLOCK): start-up is
     * the process's CPU when the pipeline was made. */
    int64_t start_up_ns, read_ns, detect_ns, fuse_ns;
    uint64_t read_calls, sampled_reads; /* threads: reads, one in 256 */
    uint64_t sampled_records;           /* one thread: in counted blocks */
    bool stages_exact; /* threads: detect_ns, fuse_ns timed on every batch */
    struct stage_block block;
    uint64_t sample_state;
    int64_t clock_cost; /* ns a cf_thread_cpu_ns() call costs */
    bool checkpointing; /* re-entry guard (an input's hook) */
    bool restored;
    uint64_t checkpoints, checkpoint_failures, resume_skipped;
    uint64_t checkpoints_background; /* of checkpoints: by a child */
    uint64_t restored_dropped_alerts, restored_dropped_windows;
    struct cf_strpool pool; /* restored source names */
    /* the checkpoint being written; its buffer is kept between
     * checkpoints (about the size of the state's checkpoint), which
     * spares the page faults and copies of growing it each time */
    struct cf_ckpt_w ckw;
    /* a checkpoint a child process is writing (state_background): the
     * positions it covers, committed once it is on disk */
    pid_t bg_child;
    struct cf_position *bg_pos;
    size_t n_bg_pos, cap_bg_pos;
};

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Says, once, why the run must stop: a dead letter could not be saved. */
static void dead_letter_failed(struct cf_pipeline *p, cf_err_t rc,
                               const char *reason) {
    if (p->deliver_error != CF_OK) return;
    p->deliver_error = rc == CF_ERR_NOMEM ? CF_ERR_NOMEM : CF_ERR_IO;
    if (rc == CF_ERR_NOMEM) /* not the output's fault */
        snprintf(p->deliver_errstr, sizeof p->deliver_errstr,
                 "out of memory building a dead-letter record (%s); "
                 "stopping rather than losing records",
                 reason);
    else
        snprintf(p->deliver_errstr, sizeof p->deliver_errstr,
                 "cannot write to the dead-letter output (%s); stopping "
                 "rather than losing records",
                 p->dead_letter->ops->name);
}

/* `why` is counted, `reason` is what the record says.  The record goes
 * to the dead-letter output, and to every output that selects kind
 * dead-letter. */
static void dead_letter_to(struct cf_pipeline *p, enum dl_reason why,
                           const char *reason, const struct cf_position *pos,
                           const char *data, size_t len, bool truncated,
                           bool fan) {
    struct cf_output *dl = p->dead_letter;
    struct cf_buf b = CF_BUF_INIT;
    p->dead_letter_reasons[why]++;
    cf_err_t rc = cf_dead_letter_build(&b, reason, pos, data, len, truncated);
    if (rc == CF_OK) {
        struct cf_out_record r =
            cf_out_record_plain("dead-letter", b.data, b.len, pos);
        if (dl->ops->write(dl, &r) != CF_IO_OK) rc = CF_ERR_IO;
        if (fan && p->fanout) cf_fanout_deliver(p->fanout, &r);
    }
    if (rc != CF_OK) dead_letter_failed(p, rc, reason);
    cf_buf_free(&b);
}

static void dead_letter(struct cf_pipeline *p, enum dl_reason why,
                        const char *reason, const struct cf_position *pos,
                        const char *data, size_t len, bool truncated) {
    dead_letter_to(p, why, reason, pos, data, len, truncated, true);
}

/* The fan-out's dead-letter callback: an output refused `rec` for good. */
static void output_refused(void *opaque, const struct cf_out_record *rec,
                           const char *reason) {
    /* A dead letter an output refused goes to the dead-letter output
     * only: fanned out again it could come back here for ever. */
    dead_letter_to(opaque, DL_OUTPUT_FAILED, reason, rec->pos, rec->json,
                   rec->len, false, strcmp(rec->kind, "dead-letter") != 0);
}

static void sleep_or_wait(void *opaque, long ms) {
    struct cf_pipeline *p = opaque;
    if (p->in && p->in->ops->wait)
        p->in->ops->wait(p->in, ms);
    else
        sleep_ms(ms);
}

static void deliver(struct cf_pipeline *p, const struct cf_out_record *rec) {
    cf_fanout_deliver(p->fanout, rec);
}

/* Fusion counts what it emits (incidents, incident records, correlation
 * alerts); output.incidents / output.alerts only decide what is written. */
static void emit_from_fusion(const struct cf_out_record *rec, void *opaque) {
    struct cf_pipeline *p = opaque;
    if (strcmp(rec->kind, "incident") == 0) {
        if (!p->setup.cfg->emit_incidents) return;
    } else if (strcmp(rec->kind, "alert") == 0) {
        if (!p->setup.cfg->emit_alerts) return;
    }
    deliver(p, rec);
}

static void on_match(const struct cf_sigma_rule *rule, void *opaque) {
    struct cf_pipeline *p = opaque;
    const struct cf_event *ev = p->cur;
    struct cf_alert alert;
    if (cf_alert_from_event(&alert, rule, ev, p->entities) != CF_OK) {
        dead_letter(p, DL_ALERT_OUT_OF_MEMORY, "out of memory building alert",
                    &ev->pos, ev->raw, ev->raw_len, false);
        cf_alert_clear(&alert);
        return;
    }
    p->alerts++;
    /* Fusion first: a configured suppression hides the alert from every
     * output, not only from incidents (fusion counts it). */
    if (cf_fusion_push(p->fusion, &alert, ev)) {
        /* suppressed */
    } else if (alert.ungenerated) {
        p->ungenerated++; /* correlations and fusion have it; not written */
    } else if (p->setup.cfg->emit_alerts) {
        cf_buf_reset(&p->rec);
        if (cf_alert_write(&alert, &p->rec) != CF_OK)
            dead_letter(p, DL_ALERT_OUT_OF_MEMORY,
                        "out of memory building alert", &ev->pos, ev->raw,
                        ev->raw_len, false);
        else {
            struct cf_out_record r = cf_alert_out_record(&alert, &p->rec);
            deliver(p, &r);
        }
    }
    cf_alert_clear(&alert);
}

/* A failed scan may mean a missed detection: counted (dropped.scan_error)
 * and, the first time, said on stderr with where it happened. */
static void note_scan_errors(struct cf_pipeline *p, const struct cf_detected *d,
                             const struct cf_position *pos) {
    p->route_failures += d->route_failures;
    if (!d->scan_errors) return;
    if (p->scan_errors == 0)
        fprintf(stderr,
                "chainfuse: %s, at %s:%lld; rules may have missed the event "
                "(this and later ones are counted in dropped.scan_error)\n",
                d->scan_error, pos->source ? pos->source : "input",
                (long long)pos->offset);
    p->scan_errors += d->scan_errors;
}

/* Remembers the newest position read of each (source, partition): what
 * commit() is told once it is checkpointed. */
static struct read_pos *find_read(struct cf_pipeline *p,
                                  const struct cf_position *pos) {
    struct read_pos *r = p->read;
    for (size_t i = 0; i < p->n_read; i++, r++)
        if (r->pos.partition == pos->partition &&
            (r->pos.source == pos->source ||
             (r->pos.source && pos->source &&
              strcmp(r->pos.source, pos->source) == 0)))
            return r;
    return NULL;
}

/* What identifies the record at a checkpointed position, to notice an
 * input that changed under the checkpoint: CRC-32 of its length and
 * first 256 bytes (cheap on every record; a file rewritten from the
 * checkpointed line on is caught, one edited further back is not). */
static uint32_t record_digest(const struct cf_record *rec) {
    uint64_t len = rec->len;
    uLong c = crc32(0L, (const Bytef *)&len, sizeof len);
    return (uint32_t)crc32(c, (const Bytef *)rec->data,
                           (uInt)(rec->len < 256 ? rec->len : 256));
}

static void note_position(struct cf_pipeline *p, const struct cf_record *rec) {
    const struct cf_position *pos = &rec->pos;
    struct read_pos *r = find_read(p, pos);
    if (r) {
        r->pos.offset = pos->offset;
        r->uncommitted = true;
        if (p->setup.state_dir) r->digest = record_digest(rec);
        return;
    }
    if (p->n_read == p->cap_read) {
        size_t nc = p->cap_read ? p->cap_read * 2 : 8;
        struct read_pos *nr = cf_realloc(p->read, nc * sizeof *nr);
        if (!nr) {
            p->positions_unkept++; /* that source is not committed */
            return;
        }
        p->read = nr;
        p->cap_read = nc;
    }
    p->read[p->n_read++] = (struct read_pos){
        *pos, p->setup.state_dir ? record_digest(rec) : 0, true, false, false};
}

/* Everything read so far is processed and every output acknowledged
 * it: tell the input, once per (source, partition) read since the last
 * time. */
static void commit_read(struct cf_pipeline *p) {
    struct cf_input *in = p->in;
    for (size_t i = 0; i < p->n_read; i++) {
        if (!p->read[i].uncommitted) continue;
        p->read[i].uncommitted = false;
        if (in && in->ops->commit) in->ops->commit(in, &p->read[i].pos);
    }
}

/* Every output, then the dead-letter output, has acknowledged all it
 * took.  Both are flushed even when the first fails, so a full disk
 * under the records does not also lose the dead letters unsaid. */
static cf_err_t flush_all(struct cf_pipeline *p, char *errstr,
                          size_t errstr_size) {
    char why[256] = "";
    cf_err_t rc = cf_fanout_drain(p->fanout, p->setup.stop, why, sizeof why);
    struct cf_output *dl = p->dead_letter;
    cf_io_status st = CF_IO_OK;
    long backoff = 10;
    if (dl->ops->flush)
        while ((st = dl->ops->flush(dl)) == CF_IO_RETRY) {
            sleep_or_wait(p, backoff);
            if (backoff < 5000) backoff *= 2;
        }
    if (rc != CF_OK)
        return cf_seterr(errstr, errstr_size, rc, "%s%s", why,
                         st != CF_IO_OK ? " (and the dead-letter output "
                                          "failed to flush too)"
                                        : "");
    if (st != CF_IO_OK)
        return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                         "dead-letter output %s failed to flush",
                         dl->ops->name);
    return CF_OK;
}

/* Everything done with a record after detection (engine/detect.h), in
 * input order whatever the number of threads: its position, dead
 * letters, clocks, fusion's view of every event, then each rule that
 * matched in rule order, as an alert. */
static void process(struct cf_pipeline *p, const struct cf_record *rec,
                    struct cf_event *ev, const struct cf_detected *d,
                    const struct cf_sigma_rule *const *rules) {
    p->records++;
    note_position(p, rec);
    switch (d->kind) {
    case CF_DETECT_DEFECT:
    case CF_DETECT_UNDECODED:
        dead_letter(p, classify(d->reason), d->reason, &rec->pos, rec->data,
                    rec->len, rec->truncated);
        return;
    case CF_DETECT_BLANK: p->blank_lines++; return;
    case CF_DETECT_EVENT: break;
    }
    p->events++;
    /* one pass finds the host for the clocks, what fusion sights and
     * what the domain learning reads */
    struct cf_entity_at at;
    cf_entity_locate_memo(p->entities, p->shapes, ev, p->locate_kinds, &at);
    cf_clocks_event_at(p->clocks, ev,
                       at.field[CF_ENTITY_HOST] >= 0
                           ? &ev->fields[at.field[CF_ENTITY_HOST]]
                           : NULL);
    if (ev->cut_short) p->cut_short++;
    if (ev->time_ms == CF_TIME_UNKNOWN)
        p->no_time++;
    else
        cf_fusion_observe(p->fusion, ev->time_ms);
    cf_fusion_learn_found(p->fusion, ev, at.also);
    cf_fusion_sight_at(p->fusion, ev, &at);
    p->cur = ev;
    for (size_t i = 0; i < d->n_matches; i++)
        on_match(rules[d->first_match + i], p);
    if (d->matches_lost)
        dead_letter(p, DL_ALERT_OUT_OF_MEMORY, "out of memory building alert",
                    &ev->pos, ev->raw, ev->raw_len, false);
    p->cur = NULL;
    note_scan_errors(p, d, &rec->pos);
}

/* ---- checkpoints --------------------------------------------------- */

static int64_t monotonic_ms(void) {
    return cf_monotonic_ns() / 1000000;
}

/* The pipeline's own part: counters, then every position read. */
static void save_pipeline(const struct cf_pipeline *p, struct cf_ckpt_w *w) {
    const uint64_t counters[] = {p->records, p->blank_lines,
                                 p->events,  p->no_time,
                                 p->alerts,  p->positions_unkept};
    cf_ckpt_u32(w, (uint32_t)CF_ARRAY_LEN(counters));
    for (size_t i = 0; i < CF_ARRAY_LEN(counters); i++)
        cf_ckpt_u64(w, counters[i]);
    cf_ckpt_u32(w, DL_REASONS);
    for (int i = 0; i < DL_REASONS; i++)
        cf_ckpt_u64(w, p->dead_letter_reasons[i]);
    cf_ckpt_u64(w, p->n_read);
    for (size_t i = 0; i < p->n_read; i++) {
        cf_ckpt_put_pos(w, &p->read[i].pos);
        cf_ckpt_u32(w, p->read[i].digest);
    }
}

static void load_pipeline(struct cf_pipeline *p, struct cf_ckpt_r *r) {
    uint64_t *counters[] = {&p->records, &p->blank_lines, &p->events,
                            &p->no_time, &p->alerts,      &p->positions_unkept};
    if (cf_ckpt_get_u32(r) != CF_ARRAY_LEN(counters)) r->bad = true;
    for (size_t i = 0; i < CF_ARRAY_LEN(counters) && !r->bad; i++)
        *counters[i] = cf_ckpt_get_u64(r);
    if (cf_ckpt_get_u32(r) != DL_REASONS) r->bad = true;
    for (int i = 0; i < DL_REASONS && !r->bad; i++)
        p->dead_letter_reasons[i] = cf_ckpt_get_u64(r);
    size_t n = cf_ckpt_get_count(r, 4 + 4 + 8 + 4);
    if (n && !r->bad && !(p->read = cf_calloc(n, sizeof *p->read)))
        r->nomem = true;
    for (size_t i = 0; i < n && !r->bad && !r->nomem; i++) {
        struct read_pos *rp = &p->read[i];
        cf_ckpt_get_pos(r, &rp->pos);
        rp->digest = cf_ckpt_get_u32(r);
        rp->resume = true;
        p->n_read = p->cap_read = i + 1;
    }
}

/* Restores DIR/checkpoint, if there is one, into this new pipeline.
 * Refused whole (CF_ERR with errstr) when it cannot be used. */
static cf_err_t restore(struct cf_pipeline *p, char *errstr,
                        size_t errstr_size) {
    unsigned char *data = NULL;
    struct cf_ckpt_r r;
    const char *dir = p->setup.state_dir;
    cf_err_t rc = cf_ckpt_load(dir, &data, &r, errstr, errstr_size);
    if (rc == CF_ERR_IO) return CF_OK; /* none yet: a first start */
    if (rc != CF_OK) goto refused;
    r.rb = p->setup.rb;
    r.pool = &p->pool;
    load_pipeline(p, &r);
    if (!r.bad && !r.nomem) cf_clocks_load(p->clocks, &r);
    if (!r.bad && !r.nomem) {
        rc = cf_fusion_load(p->fusion, &r);
        if (rc == CF_OK && r.p != r.end) r.bad = true; /* trailing bytes */
    }
    p->restored_dropped_alerts = r.dropped_alerts;
    p->restored_dropped_windows = r.dropped_windows;
    cf_ckpt_reader_done(&r);
    cf_free(data);
    if (r.nomem)
        return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                         "out of memory restoring %s/checkpoint", dir);
    if (r.bad) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "%s/checkpoint is damaged: its content does not parse "
                  "though its checksum matches",
                  dir);
        goto refused;
    }
    p->restored = true;
    if (r.dropped_alerts || r.dropped_windows)
        fprintf(stderr,
                "chainfuse: %s/checkpoint: dropped the state of rules no "
                "longer loaded (%llu waiting alerts, %llu correlation "
                "windows); the rest is restored\n",
                dir, (unsigned long long)r.dropped_alerts,
                (unsigned long long)r.dropped_windows);
    return CF_OK;
refused:
    /* the message is the reader's; say what to do about it */
    if (errstr && errstr_size) {
        size_t n = strlen(errstr);
        snprintf(errstr + n, errstr_size - n,
                 "; refusing to start from it (nothing was restored).  Move "
                 "it aside to start afresh: inputs are then read from their "
                 "beginning, or for Kafka from the group's committed "
                 "offsets");
    }
    return CF_ERR;
}

/* After a restore: 1 when `rec` is at or before the position its
 * (source, partition) was checkpointed at (its effects are in the
 * restored state), 0 to process it, -1 when the input is not the one
 * checkpointed (errstr says how it differs). */
static int resume_skip(struct cf_pipeline *p, const struct cf_record *rec,
                       char *errstr, size_t errstr_size) {
    struct read_pos *r = find_read(p, &rec->pos);
    if (!r || !r->resume || r->reached) return 0;
    if (rec->pos.offset > r->pos.offset) {
        r->reached = true; /* a consumer group resumes after it */
        return 0;
    }
    p->resume_skipped++;
    if (rec->pos.offset < r->pos.offset) return 1;
    r->reached = true;
    if (record_digest(rec) == r->digest) return 1;
    cf_seterr(errstr, errstr_size, CF_ERR,
              "input %s%s changed since the checkpoint in %s: record %lld "
              "is not the one checkpointed; move %s/checkpoint aside to "
              "start afresh",
              rec->pos.source ? rec->pos.source : "", "", p->setup.state_dir,
              (long long)rec->pos.offset, p->setup.state_dir);
    return -1;
}

/* End of input after a restore: a file that ends before its
 * checkpointed line is not the file that was checkpointed. */
static cf_err_t resume_check_end(struct cf_pipeline *p, char *errstr,
                                 size_t errstr_size) {
    for (size_t i = 0; i < p->n_read; i++) {
        struct read_pos *r = &p->read[i];
        if (!r->resume || r->reached || r->pos.partition >= 0) continue;
        if (r->pos.offset == 0) continue;
        if (!p->in || p->resume_skipped == 0) {
            fprintf(stderr,
                    "chainfuse: warning: the checkpoint covers input %s "
                    "up to record %lld, which this run did not read\n",
                    r->pos.source ? r->pos.source : "-",
                    (long long)r->pos.offset);
            continue;
        }
        return cf_seterr(errstr, errstr_size, CF_ERR,
                         "input %s ends before record %lld, where the "
                         "checkpoint in %s left it: it changed (or was cut) "
                         "since; move %s/checkpoint aside to start afresh",
                         r->pos.source ? r->pos.source : "-",
                         (long long)r->pos.offset, p->setup.state_dir,
                         p->setup.state_dir);
    }
    return CF_OK;
}

/* Outputs acknowledged everything, then the state is written, then
 * inputs are told what it covers.  Without a state dir, only the flush
 * and the commit. */
/* Writes the checkpoint file from this process; CF_OK or errstr. */
static cf_err_t write_state(struct cf_pipeline *p, char *errstr,
                            size_t errstr_size) {
    cf_ckpt_begin(&p->ckw);
    save_pipeline(p, &p->ckw);
    cf_clocks_save(p->clocks, &p->ckw);
    cf_fusion_save(p->fusion, &p->ckw);
    return cf_ckpt_commit(&p->ckw, p->setup.state_dir, errstr, errstr_size);
}

/* The positions read since the last commit, noted for a background
 * checkpoint (and no longer pending: put back if it fails). */
static bool snapshot_positions(struct cf_pipeline *p) {
    p->n_bg_pos = 0;
    for (size_t i = 0; i < p->n_read; i++) {
        if (!p->read[i].uncommitted) continue;
        if (p->n_bg_pos == p->cap_bg_pos) {
            size_t nc = p->cap_bg_pos ? p->cap_bg_pos * 2 : 8;
            struct cf_position *np = cf_realloc(p->bg_pos, nc * sizeof *np);
            if (!np) return false;
            p->bg_pos = np;
            p->cap_bg_pos = nc;
        }
        p->bg_pos[p->n_bg_pos++] = p->read[i].pos;
    }
    for (size_t i = 0; i < p->n_read; i++) p->read[i].uncommitted = false;
    return true;
}

/* Collects the background checkpoint, if it ended (or waits for it,
 * with `block`): on success its positions are committed. */
static void reap_background(struct cf_pipeline *p, bool block) {
    int status;
    if (!p->bg_child) return;
    pid_t r = waitpid(p->bg_child, &status, block ? 0 : WNOHANG);
    if (r == 0) return; /* still writing */
    p->bg_child = 0;
    bool ok = r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) {
        p->checkpoints++;
        p->checkpoints_background++;
        for (size_t i = 0; i < p->n_bg_pos; i++)
            if (p->in && p->in->ops->commit)
                p->in->ops->commit(p->in, &p->bg_pos[i]);
    } else {
        p->checkpoint_failures++;
        fprintf(stderr, "chainfuse: checkpoint (written in the background) "
                        "failed; input positions not committed\n");
        for (size_t i = 0; i < p->n_bg_pos; i++) {
            struct read_pos *rp = find_read(p, &p->bg_pos[i]);
            if (rp) rp->uncommitted = true;
        }
    }
    p->n_bg_pos = 0;
}

/* Forks a child that writes the checkpoint from its copy of memory, so
 * the engine pauses for the fork only.  False when it could not fork
 * (the caller writes it itself). */
static bool fork_checkpoint(struct cf_pipeline *p) {
    if (!snapshot_positions(p)) return false;
    fflush(NULL); /* the child must not inherit half-written stdio */
    pid_t pid = fork();
    if (pid == 0) {
        char err[512];
        cf_err_t rc = write_state(p, err, sizeof err);
        if (rc != CF_OK) fprintf(stderr, "chainfuse: %s\n", err);
        _exit(rc == CF_OK ? 0 : 1); /* no atexit, no stdio flush */
    }
    if (pid < 0) {
        for (size_t i = 0; i < p->n_bg_pos; i++) {
            struct read_pos *rp = find_read(p, &p->bg_pos[i]);
            if (rp) rp->uncommitted = true;
        }
        p->n_bg_pos = 0;
        return false;
    }
    p->bg_child = pid;
    return true;
}

/* Outputs acknowledged everything, then the state is written, then
 * inputs are told what it covers.  Without a state dir, only the flush
 * and the commit.  `sync`: written here and now (shutdown, a
 * rebalance), after any background one finished; otherwise, with
 * state_background, by a child process, skipped while the previous
 * one still writes. */
static cf_err_t checkpoint(struct cf_pipeline *p, bool sync, char *errstr,
                           size_t errstr_size) {
    cf_err_t rc;
    if (p->checkpointing) return CF_OK;
    reap_background(p, sync);
    if (p->bg_child) { /* the last one is still being written */
        p->next_checkpoint = monotonic_ms() + 50;
        return CF_OK;
    }
    p->checkpointing = true;
    rc = flush_all(p, errstr, errstr_size);
    if (rc == CF_OK && p->deliver_error != CF_OK)
        rc = cf_seterr(errstr, errstr_size, p->deliver_error, "%s",
                       p->deliver_errstr);
    bool forked = false;
    if (rc == CF_OK && p->setup.state_dir) {
        forked = !sync && p->setup.state_background && fork_checkpoint(p);
        if (!forked) {
            rc = write_state(p, errstr, errstr_size);
            if (rc == CF_OK) p->checkpoints++;
        }
    }
    if (rc != CF_OK)
        p->checkpoint_failures++;
    else if (!forked)
        commit_read(p);
    p->next_checkpoint = monotonic_ms() + p->setup.state_interval_ms;
    p->checkpointing = false;
    return rc;
}

/* A periodic checkpoint that fails is said and tried again at the next
 * interval; nothing is committed meanwhile. */
static void due_checkpoint(struct cf_pipeline *p) {
    char err[512];
    p->since_clock = 0;
    if (p->bg_child) reap_background(p, false);
    if (monotonic_ms() < p->next_checkpoint) return;
    if (checkpoint(p, false, err, sizeof err) != CF_OK)
        fprintf(stderr,
                "chainfuse: checkpoint failed, input positions not "
                "committed: %s\n",
                err);
}

static cf_err_t drain(struct cf_pipeline *p, char *errstr, size_t errstr_size);

/* in->checkpoint: an input about to give sources up (a rebalance). */
static void input_checkpoint_hook(void *engine) {
    struct cf_pipeline *p = engine;
    char err[512];
    /* Between batches, what was read is processed first, so the
     * checkpoint covers it (while one is processed, as with one thread,
     * it covers what was processed so far). */
    if (p->workers && !p->consuming && !p->checkpointing &&
        drain(p, err, sizeof err) != CF_OK) {
        fprintf(stderr, "chainfuse: checkpoint not written: %s\n", err);
        return;
    }
    if (checkpoint(p, true, err, sizeof err) != CF_OK)
        fprintf(stderr,
                "chainfuse: checkpoint failed, input positions not "
                "committed: %s\n",
                err);
}

bool cf_pipeline_state_exists(const char *dir) {
    return dir && cf_ckpt_exists(dir);
}

cf_err_t cf_pipeline_checkpoint(struct cf_pipeline *p, char *errstr,
                                size_t errstr_size) {
    return checkpoint(p, true, errstr, errstr_size);
}

/* The sampling's pseudo-random numbers (xorshift64). */
static uint64_t next_random(struct cf_pipeline *p) {
    uint64_t x = p->sample_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return p->sample_state = x;
}

/* Records before the next block opens: some way off, at random (an
 * input reads a chunk every so many records, and a fixed stride would
 * beat against it). */
static unsigned block_gap(struct cf_pipeline *p) {
    return STAGE_GAP / 2 + (unsigned)(next_random(p) % STAGE_GAP);
}

/* What a clock read costs (it is a system call), measured once: a
 * sampled interval of a microsecond must not be charged for it. */
static int64_t clock_cost_ns(void) {
    int64_t least = INT64_MAX;
    for (int i = 0; i < 16; i++) {
        int64_t a = cf_thread_cpu_ns(), b = cf_thread_cpu_ns();
        if (b - a < least) least = b - a;
    }
    return least;
}

static int64_t timed_ns(const struct cf_pipeline *p, int64_t from, int64_t to) {
    int64_t d = to - from - p->clock_cost;
    return d > 0 ? d : 0;
}

struct cf_pipeline *cf_pipeline_new(const struct cf_pipeline_setup *setup,
                                    char *errstr, size_t errstr_size) {
    struct cf_pipeline *p = cf_calloc(1, sizeof *p);
    if (!p) goto nomem;
    p->start_up_ns = cf_process_cpu_ns(); /* rules loaded and compiled */
    p->sample_state = UINT64_C(0x9e3779b97f4a7c15);
    /* the first block past the first records, which load databases */
    p->block.gap = block_gap(p);
    p->clock_cost = clock_cost_ns();
    p->setup = *setup;
    p->dead_letter = setup->dead_letter;
    if ((!setup->out && !setup->n_outs) || !setup->dead_letter) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "pipeline needs an output and a dead-letter output");
        goto fail;
    }
    if (!setup->n_outs) {
        p->single.out = setup->out;
        p->single.filter.min_severity = -1;
        p->setup.outs = &p->single;
        p->setup.n_outs = 1;
    }
    if (!(p->fanout = cf_fanout_new(p->setup.outs, p->setup.n_outs,
                                    output_refused, sleep_or_wait, p)))
        goto nomem;
    cf_event_init(&p->ev);
    const struct cf_time_settings *ts = &setup->cfg->time;
    if (ts->fields.n || !ts->builtin_fields) {
        p->times = cf_time_names_new((const char *const *)ts->fields.v,
                                     ts->fields.n, ts->builtin_fields);
        if (!p->times) goto nomem;
    }
    if (!(p->det = cf_detector_new(setup->rs, p->times, &setup->cfg->limits)))
        goto nomem;
    p->entities = cf_entity_map_new(cf_config_section(setup->cfg, "entities"),
                                    errstr, errstr_size);
    if (!p->entities) goto fail;
    /* The fields domain learning reads, found in the entities' pass;
     * not looked for when it is off.  They fit CF_ENTITY_ALSO_MAX: only
     * memory can fail. */
    if (setup->cfg->identity.learn_domains) {
        size_t n_learn;
        const char *const *learn = cf_domains_learn_names(&n_learn);
        if (cf_entity_map_also(p->entities, learn, n_learn) != CF_OK)
            goto nomem;
    }
    /* after the also names: the memo is of the finished map */
    if (!(p->shapes = cf_entity_shapes_new(p->entities))) goto nomem;
    p->clocks = cf_clocks_new(ts, p->entities, errstr, errstr_size);
    if (!p->clocks) goto fail;
    p->fusion = cf_fusion_new(setup->cfg, setup->rb, emit_from_fusion, p,
                              errstr, errstr_size);
    if (!p->fusion) goto fail;
    /* the host for the clocks, and what fusion sights */
    p->locate_kinds = 1u << CF_ENTITY_HOST | cf_fusion_sight_kinds();
    if (setup->state_dir) {
        if (p->setup.state_interval_ms <= 0) p->setup.state_interval_ms = 10000;
        p->next_checkpoint = monotonic_ms() + p->setup.state_interval_ms;
        if (restore(p, errstr, errstr_size) != CF_OK) goto fail;
    }
    return p;
nomem:
    cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
fail:
    cf_pipeline_destroy(p);
    return NULL;
}

void cf_pipeline_destroy(struct cf_pipeline *p) {
    if (!p) return;
    reap_background(p, true); /* no orphan writing after we are gone */
    cf_free(p->bg_pos);
    cf_fanout_destroy(p->fanout);
    cf_free(p->read);
    cf_strpool_free(&p->pool);
    cf_ckpt_discard(&p->ckw);
    cf_fusion_destroy(p->fusion);
    cf_clocks_destroy(p->clocks);
    cf_entity_shapes_destroy(p->shapes);
    cf_entity_map_destroy(p->entities);
    cf_detector_destroy(p->det);
    cf_detect_list_free(&p->matches);
    cf_time_names_destroy(p->times);
    cf_event_free(&p->ev);
    cf_buf_free(&p->rec);
    cf_free(p);
}

/* Charges the time since the last stage boundary of a timed record to
 * `stage`. */
static void stage_end(struct cf_pipeline *p, int stage) {
    int64_t now = cf_monotonic_ns();
    p->block.wall[stage] += now - p->block.mark;
    p->block.mark = now;
}

/* This thread's CPU, and how often it was switched out, waiting or
 * preempted (getrusage's CPU figures move by scheduler ticks: the
 * thread CPU clock is read for those). */
static void thread_usage(int64_t *cpu_ns, long *switches) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    *switches = ru.ru_nvcsw + ru.ru_nivcsw;
    *cpu_ns = cf_thread_cpu_ns();
}

/* Whether the record about to be read is timed: opens a block when one
 * is due. */
static bool block_record(struct cf_pipeline *p) {
    struct stage_block *b = &p->block;
    if (!b->left) {
        if (b->gap) {
            b->gap--;
            return false;
        }
        *b = (struct stage_block){.left = STAGE_BLOCK};
        thread_usage(&b->cpu0, &b->switches0);
    }
    b->mark = cf_monotonic_ns();
    return true;
}

/* Closes the open block: its CPU shared among the stages in proportion
 * to their time in it, unless the thread was switched out meanwhile
 * (then its time says nothing of its CPU). */
static void block_close(struct cf_pipeline *p) {
    struct stage_block *b = &p->block;
    int64_t cpu, staged = 0;
    long switches;
    thread_usage(&cpu, &switches);
    cpu -= b->cpu0;
    for (int s = 0; s < STAGES; s++) staged += b->wall[s];
    if (switches == b->switches0 && b->n && staged > 0) {
        int64_t *to[STAGES] = {&p->read_ns, &p->detect_ns, &p->fuse_ns};
        for (int s = 0; s < STAGES; s++)
            *to[s] +=
                (int64_t)((double)cpu * (double)b->wall[s] / (double)staged);
        p->sampled_records += b->n;
    }
    b->left = 0;
    b->gap = block_gap(p);
}

/* Drops the open block uncounted: a record read but not processed here
 * (skipped after a restore; the input asked to wait) would charge its
 * read to the block's records. */
static void block_drop(struct cf_pipeline *p) {
    if (!p->block.left) return;
    p->block.left = 0;
    p->block.gap = block_gap(p);
}

/* A timed record is through: the block closes after its last. */
static void block_next(struct cf_pipeline *p) {
    p->block.n++;
    if (--p->block.left == 0) block_close(p);
}

/* Detects and processes `rec` on this thread; `timed`: a record of the
 * open block, whose stages are timed. */
static void detect_here(struct cf_pipeline *p, const struct cf_record *rec,
                        bool timed) {
    struct cf_detected d;
    cf_detect_list_reset(&p->matches);
    cf_detect(p->det, rec, &p->ev, &p->matches, &d);
    if (timed) stage_end(p, STAGE_DETECT);
    process(p, rec, &p->ev, &d, p->matches.v);
    if (timed) {
        stage_end(p, STAGE_FUSE);
        block_next(p);
    }
}

/* Reads the next record (with threads: timing one read in
 * STAGE_SAMPLE, chosen at random). */
static cf_io_status read_record(struct cf_pipeline *p, struct cf_input *in,
                                struct cf_record *rec) {
    rec->hold = NULL; /* an input that lends no memory leaves it so */
    p->read_calls++;
    if (!p->workers) return in->ops->read(in, rec);
    if (next_random(p) & (STAGE_SAMPLE - 1)) return in->ops->read(in, rec);
    int64_t t0 = cf_thread_cpu_ns();
    cf_io_status st = in->ops->read(in, rec);
    p->read_ns += timed_ns(p, t0, cf_thread_cpu_ns());
    p->sampled_reads++;
    return st;
}

/* One thread: each record is detected and processed before the next
 * is read. */
static cf_err_t run_single(struct cf_pipeline *p, struct cf_input *in,
                           char *errstr, size_t errstr_size) {
    struct cf_record rec;
    long backoff = 10;
    for (;;) {
        if (p->setup.stop && *p->setup.stop) break;
        cf_fanout_pump(p->fanout);
        bool timed = block_record(p);
        cf_io_status st = read_record(p, in, &rec);
        if (timed) stage_end(p, STAGE_READ);
        if (st == CF_IO_EOF) break;
        if (st == CF_IO_RETRY) {
            block_drop(p);
            if (p->setup.state_dir) due_checkpoint(p);
            sleep_ms(backoff);
            if (backoff < 1000) backoff *= 2;
            continue;
        }
        if (st != CF_IO_OK)
            return cf_seterr(errstr, errstr_size, CF_ERR_IO, "input %s failed",
                             in->ops->name);
        backoff = 10;
        if (p->restored) {
            int skip = resume_skip(p, &rec, errstr, errstr_size);
            if (skip < 0) return CF_ERR;
            if (skip) {
                block_drop(p);
                continue;
            }
        }
        detect_here(p, &rec, timed);
        if (p->deliver_error != CF_OK)
            return cf_seterr(errstr, errstr_size, p->deliver_error, "%s",
                             p->deliver_errstr);
        if (p->setup.state_dir && ++p->since_clock >= 64) due_checkpoint(p);
    }
    if (p->block.left) block_close(p); /* the input ended inside it */
    return CF_OK;
}

/* Processes a batch the workers detected, then gives it back. */
static cf_err_t consume(struct cf_pipeline *p, struct cf_work_batch *b,
                        char *errstr, size_t errstr_size) {
    const struct cf_record *rec;
    struct cf_event *ev;
    const struct cf_detected *d;
    const struct cf_sigma_rule *const *rules;
    size_t n = cf_work_batch_len(b);
    int64_t t0 = cf_thread_cpu_ns();
    p->consuming = true;
    for (size_t i = 0; i < n && p->deliver_error == CF_OK; i++) {
        cf_work_batch_get(b, i, &rec, &ev, &d, &rules);
        process(p, rec, ev, d, rules);
    }
    p->consuming = false;
    p->fuse_ns += cf_thread_cpu_ns() - t0;
    cf_workers_release(p->workers, b);
    if (p->deliver_error != CF_OK)
        return cf_seterr(errstr, errstr_size, p->deliver_error, "%s",
                         p->deliver_errstr);
    return CF_OK;
}

/* Hands out the batch being filled and processes every batch handed
 * out: afterwards every record read is processed, as with one thread. */
static cf_err_t drain(struct cf_pipeline *p, char *errstr, size_t errstr_size) {
    struct cf_work_batch *b;
    cf_workers_submit(p->workers);
    while ((b = cf_workers_next(p->workers, true))) {
        cf_err_t rc = consume(p, b, errstr, errstr_size);
        if (rc != CF_OK) return rc;
    }
    return CF_OK;
}

/* A periodic checkpoint covers every record read, so the workers are
 * drained first, and only when one is due.  Asked once every 64 turns
 * of the loop, as run_single does: the clock read and the reap are
 * system calls. */
static cf_err_t checkpoint_when_due(struct cf_pipeline *p, char *errstr,
                                    size_t errstr_size) {
    if (!p->setup.state_dir || ++p->since_clock < 64) return CF_OK;
    p->since_clock = 0;
    if (p->bg_child) reap_background(p, false);
    if (p->bg_child || monotonic_ms() < p->next_checkpoint) return CF_OK;
    cf_err_t rc = drain(p, errstr, errstr_size);
    if (rc == CF_OK) due_checkpoint(p);
    return rc;
}

/* setup.threads workers detect; this thread reads, hands out batches
 * and processes what comes back in input order.  Stopping, the end of
 * input, an input failure and a checkpoint all drain first, so that
 * what is processed, checkpointed and committed is exactly what one
 * thread would have: every record read. */
static cf_err_t run_threaded(struct cf_pipeline *p, struct cf_input *in,
                             char *errstr, size_t errstr_size) {
    struct cf_workers *w = p->workers;
    struct cf_work_batch *b;
    struct cf_record rec;
    long backoff = 10;
    cf_err_t rc = CF_OK;
    for (;;) {
        /* what the workers have finished, without waiting */
        while (rc == CF_OK && (b = cf_workers_next(w, false)))
            rc = consume(p, b, errstr, errstr_size);
        if (rc == CF_OK) rc = checkpoint_when_due(p, errstr, errstr_size);
        if (rc == CF_OK && p->deliver_error != CF_OK) /* in an input hook */
            rc = cf_seterr(errstr, errstr_size, p->deliver_error, "%s",
                           p->deliver_errstr);
        if (rc != CF_OK) return rc;
        if (p->setup.stop && *p->setup.stop) break;
        if (!cf_workers_room(w)) { /* every batch in use: the oldest back */
            if ((rc = consume(p, cf_workers_next(w, true), errstr,
                              errstr_size)) != CF_OK)
                return rc;
            continue;
        }
        cf_fanout_pump(p->fanout);
        cf_io_status st = read_record(p, in, &rec);
        if (st == CF_IO_EOF) break;
        if (st == CF_IO_RETRY) {
            /* nothing to read: what was read is detected now rather than
             * when a batch fills */
            cf_workers_submit(w);
            if (cf_workers_pending(w)) {
                if ((rc = consume(p, cf_workers_next(w, true), errstr,
                                  errstr_size)) != CF_OK)
                    return rc;
                continue;
            }
            if (p->setup.state_dir) due_checkpoint(p);
            sleep_ms(backoff);
            if (backoff < 1000) backoff *= 2;
            continue;
        }
        if (st != CF_IO_OK) {
            if ((rc = drain(p, errstr, errstr_size)) != CF_OK) return rc;
            return cf_seterr(errstr, errstr_size, CF_ERR_IO, "input %s failed",
                             in->ops->name);
        }
        backoff = 10;
        if (p->restored) {
            int skip = resume_skip(p, &rec, errstr, errstr_size);
            if (skip < 0) {
                drain(p, NULL, 0);
                return CF_ERR;
            }
            if (skip) continue;
        }
        if (cf_workers_add(w, &rec) != CF_OK) {
            /* no memory for its copy: processed here, after the others
             * (its data is the input's until the next read) */
            if ((rc = drain(p, errstr, errstr_size)) != CF_OK) return rc;
            detect_here(p, &rec, false);
        }
    }
    return drain(p, errstr, errstr_size);
}

cf_err_t cf_pipeline_run(struct cf_pipeline *p, struct cf_input *in,
                         char *errstr, size_t errstr_size) {
    cf_err_t rc;
    p->in = in;
    /* a consumer group about to lose partitions checkpoints first */
    in->checkpoint = p->setup.state_dir ? input_checkpoint_hook : NULL;
    in->engine = p;
    if (p->setup.threads > 1) {
        p->workers = cf_workers_new(p->setup.threads, p->setup.rs, p->times,
                                    &p->setup.cfg->limits, errstr, errstr_size);
        if (!p->workers) return CF_ERR;
        p->stages_exact = true;
        rc = run_threaded(p, in, errstr, errstr_size);
        p->detect_ns += cf_workers_detect_ns(p->workers);
        cf_workers_destroy(p->workers);
        p->workers = NULL;
    } else {
        rc = run_single(p, in, errstr, errstr_size);
    }
    if (rc != CF_OK) return rc;
    if (p->restored && !(p->setup.stop && *p->setup.stop))
        return resume_check_end(p, errstr, errstr_size);
    return CF_OK;
}

cf_err_t cf_pipeline_finish(struct cf_pipeline *p, char *errstr,
                            size_t errstr_size) {
    /* Stopped by a signal with checkpoints on: what waits for the
     * watermark stays waiting, in the checkpoint, and the next run goes
     * on from there.  Otherwise (end of input, or a signal without
     * --state, where memory is all there is) everything is fused and
     * emitted, as at the end of a file. */
    bool keep = p->setup.state_dir && p->setup.stop && *p->setup.stop;
    if (!keep) cf_fusion_finish(p->fusion);
    return checkpoint(p, true, errstr, errstr_size);
}

void cf_pipeline_dropped(const struct cf_pipeline *p, struct cf_drops *out) {
    memset(out, 0, sizeof *out);
    out->n[CF_DROP_SCAN_ERROR] = p->scan_errors;
    out->n[CF_DROP_ROUTE_OUT_OF_MEMORY] = p->route_failures;
    cf_fusion_drops(p->fusion, out);
}

/* A sampled stage's CPU scaled to every record: sum * all / sampled. */
static double scaled(int64_t ns, uint64_t all, uint64_t sampled) {
    return sampled ? (double)ns / 1e9 * (double)all / (double)sampled : 0.0;
}

/* --stats cpu_seconds: where the process's CPU went, stage by stage, each
 * measured as itself (never one figure less another). */
static json_t *stage_stats(const struct cf_pipeline *p) {
    double read, detect, fuse;
    if (p->stages_exact) {
        read = scaled(p->read_ns, p->read_calls, p->sampled_reads);
        detect = (double)p->detect_ns / 1e9;
        fuse = (double)p->fuse_ns / 1e9;
    } else {
        read = scaled(p->read_ns, p->records, p->sampled_records);
        detect = scaled(p->detect_ns, p->records, p->sampled_records);
        fuse = scaled(p->fuse_ns, p->records, p->sampled_records);
    }
    return json_pack("{s:f, s:f, s:f, s:f, s:f}", "start_up",
                     (double)p->start_up_ns / 1e9, "read", read, "detect",
                     detect, "fuse", fuse, "process",
                     (double)cf_process_cpu_ns() / 1e9);
}

json_t *cf_pipeline_stats(const struct cf_pipeline *p) {
    struct cf_fusion_counts fc;
    struct cf_drops drops;
    json_t *s = json_object();
    json_t *reasons = json_object();
    if (!s || !reasons) {
        json_decref(s);
        json_decref(reasons);
        return NULL;
    }
    cf_fusion_counts(p->fusion, &fc);
    cf_pipeline_dropped(p, &drops);
#define STAT(o, name, v)                                                       \
    json_object_set_new(o, name, json_integer((json_int_t)(v)))
    STAT(s, "records", p->records);
    STAT(s, "blank_lines", p->blank_lines);
    STAT(s, "events", p->events);
    STAT(s, "events_without_time", p->no_time);
    STAT(s, "events_cut_short", p->cut_short);
    uint64_t dead_lettered = 0; /* the sum of its reasons, by definition */
    for (int i = 0; i < DL_REASONS; i++) {
        STAT(reasons, dl_names[i], p->dead_letter_reasons[i]);
        dead_lettered += p->dead_letter_reasons[i];
    }
    STAT(s, "dead_lettered", dead_lettered);
    json_object_set_new(s, "dead_letter_reasons", reasons);
    STAT(s, "alerts", p->alerts);
    STAT(s, "suppressed_alerts", fc.suppressed);
    STAT(s, "correlation_alerts", fc.correlation_alerts);
    STAT(s, "ungenerated_alerts", p->ungenerated + fc.ungenerated);
    STAT(s, "incidents", fc.incidents);
    STAT(s, "incident_records", fc.incident_records);
    uint64_t written, retries, failures;
    cf_fanout_totals(p->fanout, &written, &retries, &failures);
    STAT(s, "written", written);
    STAT(s, "output_retries", retries);
    STAT(s, "output_failures", failures);
    json_object_set_new(s, "dropped", cf_drops_to_json(&drops));
    json_object_set_new(s, "fusion", cf_fusion_stats(p->fusion));
    json_object_set_new(s, "clocks", cf_clocks_stats(p->clocks));
    json_object_set_new(s, "cpu_seconds", stage_stats(p));
    json_object_set_new(s, "outputs", cf_fanout_stats(p->fanout));
    json_t *ck = json_object();
    if (ck) {
        STAT(ck, "written", p->checkpoints);
        STAT(ck, "written_in_background", p->checkpoints_background);
        STAT(ck, "failed", p->checkpoint_failures);
        json_object_set_new(ck, "restored", json_boolean(p->restored));
        STAT(ck, "records_skipped_on_resume", p->resume_skipped);
        STAT(ck, "restored_alerts_dropped", p->restored_dropped_alerts);
        STAT(ck, "restored_windows_dropped", p->restored_dropped_windows);
        json_object_set_new(s, "checkpoints", ck);
    }
#undef STAT
    return s;
}
