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
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "clocks.h"
#include "dead_letter.h"
#include "event.h"
#include "fusion.h"

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
    bool uncommitted; /* read since the last commit */
};

struct cf_pipeline {
    struct cf_pipeline_setup setup;
    struct cf_decoder *dec;
    struct cf_time_names *times; /* time.fields; NULL: built-in */
    struct cf_clocks *clocks;
    struct cf_event ev;
    struct cf_matcher *matcher;
    struct cf_entity_map *entities;
    struct cf_fusion *fusion;
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
    uint64_t scan_errors_seen; /* to say the first one on stderr */
};

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
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
    struct cf_alert alert;
    if (cf_alert_from_event(&alert, rule, &p->ev, p->entities) != CF_OK) {
        dead_letter(p, DL_ALERT_OUT_OF_MEMORY, "out of memory building alert",
                    &p->ev.pos, p->ev.raw, p->ev.raw_len, false);
        cf_alert_clear(&alert);
        return;
    }
    p->alerts++;
    /* Fusion first: a configured suppression hides the alert from every
     * output, not only from incidents (fusion counts it). */
    if (cf_fusion_push(p->fusion, &alert, &p->ev)) {
        /* suppressed */
    } else if (alert.ungenerated) {
        p->ungenerated++; /* correlations and fusion have it; not written */
    } else if (p->setup.cfg->emit_alerts) {
        cf_buf_reset(&p->rec);
        if (cf_alert_write(&alert, &p->rec) != CF_OK)
            dead_letter(p, DL_ALERT_OUT_OF_MEMORY,
                        "out of memory building alert", &p->ev.pos, p->ev.raw,
                        p->ev.raw_len, false);
        else {
            struct cf_out_record r = cf_alert_out_record(&alert, &p->rec);
            deliver(p, &r);
        }
    }
    cf_alert_clear(&alert);
}

struct cf_pipeline *cf_pipeline_new(const struct cf_pipeline_setup *setup,
                                    char *errstr, size_t errstr_size) {
    struct cf_pipeline *p = cf_calloc(1, sizeof *p);
    if (!p) goto nomem;
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
    if (!(p->dec = cf_decoder_new())) goto nomem;
    const struct cf_time_settings *ts = &setup->cfg->time;
    if (ts->fields.n || !ts->builtin_fields) {
        p->times = cf_time_names_new((const char *const *)ts->fields.v,
                                     ts->fields.n, ts->builtin_fields);
        if (!p->times) goto nomem;
        cf_decoder_set_time_names(p->dec, p->times);
    }
    if (!(p->matcher = cf_matcher_new(setup->rs))) goto nomem;
    p->entities = cf_entity_map_new(cf_config_section(setup->cfg, "entities"),
                                    errstr, errstr_size);
    if (!p->entities) goto fail;
    p->clocks = cf_clocks_new(ts, p->entities, errstr, errstr_size);
    if (!p->clocks) goto fail;
    p->fusion = cf_fusion_new(setup->cfg, setup->rb, emit_from_fusion, p,
                              errstr, errstr_size);
    if (!p->fusion) goto fail;
    return p;
nomem:
    cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
fail:
    cf_pipeline_destroy(p);
    return NULL;
}

void cf_pipeline_destroy(struct cf_pipeline *p) {
    if (!p) return;
    cf_fanout_destroy(p->fanout);
    cf_free(p->read);
    cf_fusion_destroy(p->fusion);
    cf_clocks_destroy(p->clocks);
    cf_entity_map_destroy(p->entities);
    cf_matcher_destroy(p->matcher);
    cf_decoder_destroy(p->dec);
    cf_time_names_destroy(p->times);
    cf_event_free(&p->ev);
    cf_buf_free(&p->rec);
    cf_free(p);
}

/* A failed scan may mean a missed detection: counted (dropped.scan_error)
 * and, the first time, said on stderr with where it happened. */
static void note_scan_errors(struct cf_pipeline *p,
                             const struct cf_position *pos) {
    const char *why;
    uint64_t n = cf_matcher_scan_errors(p->matcher, &why);
    if (n == p->scan_errors_seen) return;
    if (p->scan_errors_seen == 0)
        fprintf(stderr,
                "chainfuse: %s, at %s:%lld; rules may have missed the event "
                "(this and later ones are counted in dropped.scan_error)\n",
                why, pos->source ? pos->source : "input",
                (long long)pos->offset);
    p->scan_errors_seen = n;
}

/* Remembers the newest position read of each (source, partition): what
 * commit() is told once it is checkpointed. */
static void note_position(struct cf_pipeline *p,
                          const struct cf_position *pos) {
    struct read_pos *r = p->read;
    for (size_t i = 0; i < p->n_read; i++, r++)
        if (r->pos.partition == pos->partition &&
            (r->pos.source == pos->source ||
             (r->pos.source && pos->source &&
              strcmp(r->pos.source, pos->source) == 0))) {
            r->pos.offset = pos->offset;
            r->uncommitted = true;
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
    p->read[p->n_read++] = (struct read_pos){*pos, true};
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

cf_err_t cf_pipeline_run(struct cf_pipeline *p, struct cf_input *in,
                         char *errstr, size_t errstr_size) {
    struct cf_record rec;
    long backoff = 10;
    p->in = in;
    for (;;) {
        if (p->setup.stop && *p->setup.stop) break;
        cf_fanout_pump(p->fanout);
        cf_io_status st = in->ops->read(in, &rec);
        if (st == CF_IO_EOF) break;
        if (st == CF_IO_RETRY) {
            sleep_ms(backoff);
            if (backoff < 1000) backoff *= 2;
            continue;
        }
        if (st != CF_IO_OK)
            return cf_seterr(errstr, errstr_size, CF_ERR_IO, "input %s failed",
                             in->ops->name);
        backoff = 10;
        p->records++;
        note_position(p, &rec.pos);
        if (rec.defect) {
            dead_letter(p, classify(rec.defect), rec.defect, &rec.pos, rec.data,
                        rec.len, rec.truncated);
        } else if (is_blank(rec.data, rec.len)) {
            p->blank_lines++;
        } else {
            const char *reason = NULL;
            if (cf_event_decode(p->dec, &p->ev, rec.data, rec.len,
                                &p->setup.cfg->limits, &reason) != CF_OK) {
                reason = reason ? reason : CF_DEFECT_INVALID_JSON;
                dead_letter(p, classify(reason), reason, &rec.pos, rec.data,
                            rec.len, rec.truncated);
            } else {
                p->events++;
                p->ev.pos = rec.pos;
                cf_clocks_event(p->clocks, &p->ev);
                if (p->ev.cut_short) p->cut_short++;
                if (p->ev.time_ms == CF_TIME_UNKNOWN)
                    p->no_time++;
                else
                    cf_fusion_observe(p->fusion, p->ev.time_ms);
                cf_fusion_learn(p->fusion, &p->ev);
                cf_fusion_sight(p->fusion, p->entities, &p->ev);
                cf_matcher_match(p->matcher, &p->ev, on_match, p);
                note_scan_errors(p, &rec.pos);
            }
        }
        if (p->deliver_error != CF_OK)
            return cf_seterr(errstr, errstr_size, p->deliver_error, "%s",
                             p->deliver_errstr);
    }
    return CF_OK;
}

/* Every output, then the dead-letter output, has acknowledged all it
 * took.  Both are flushed even when the first fails, so a full disk
 * under the records does not also lose the dead letters unsaid. */
static cf_err_t flush_all(struct cf_pipeline *p, char *errstr,
                          size_t errstr_size) {
    char why[256] = "";
    cf_err_t rc = cf_fanout_drain(p->fanout, NULL, why, sizeof why);
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

cf_err_t cf_pipeline_finish(struct cf_pipeline *p, char *errstr,
                            size_t errstr_size) {
    cf_fusion_finish(p->fusion);
    cf_err_t rc = flush_all(p, errstr, errstr_size);
    if (rc != CF_OK) return rc;
    if (p->deliver_error != CF_OK)
        return cf_seterr(errstr, errstr_size, p->deliver_error, "%s",
                         p->deliver_errstr);
    /* Nothing is held any more: every position read is done with. */
    commit_read(p);
    return CF_OK;
}

void cf_pipeline_dropped(const struct cf_pipeline *p, struct cf_drops *out) {
    memset(out, 0, sizeof *out);
    out->n[CF_DROP_SCAN_ERROR] = cf_matcher_scan_errors(p->matcher, NULL);
    out->n[CF_DROP_ROUTE_OUT_OF_MEMORY] = cf_matcher_route_failures(p->matcher);
    cf_fusion_drops(p->fusion, out);
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
#undef STAT
    json_object_set_new(s, "dropped", cf_drops_to_json(&drops));
    json_object_set_new(s, "fusion", cf_fusion_stats(p->fusion));
    json_object_set_new(s, "clocks", cf_clocks_stats(p->clocks));
    json_object_set_new(s, "outputs", cf_fanout_stats(p->fanout));
    return s;
}
