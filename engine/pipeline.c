/*
 * pipeline.c - the run loop (see pipeline.h).
 *
 * Delivery contract with outputs: a record is handed to an output until it
 * answers OK.  RETRY means the receiver is not ready: the pipeline waits
 * (exponential backoff, 10 ms doubling to 5 s) and offers the same record
 * again, so a slow or absent receiver slows the input down instead of
 * losing records.  FAIL sends the record to the dead-letter output with
 * the reason.  Only when the dead-letter output fails too does the run
 * stop with an error: nothing is dropped silently.
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
    struct cf_buf rec;      /* the alert being written */
    cf_err_t deliver_error; /* first unrecoverable delivery failure */
    char deliver_errstr[256];

    /* Counted here and only here; fusion's (suppressed, correlation
     * alerts, incidents) and the dropped family are counted by their
     * owners and added up in cf_pipeline_stats. */
    uint64_t records, blank_lines, events, no_time, cut_short, alerts,
        ungenerated, written, retries, output_failures;
    uint64_t dead_letter_reasons[DL_REASONS];
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

/* `why` is counted, `reason` is what the record says. */
static void dead_letter(struct cf_pipeline *p, enum dl_reason why,
                        const char *reason, const struct cf_position *pos,
                        const char *data, size_t len, bool truncated) {
    struct cf_output *dl = p->dead_letter;
    p->dead_letter_reasons[why]++;
    cf_err_t rc = cf_dead_letter_write(dl, reason, pos, data, len, truncated);
    if (rc != CF_OK && p->deliver_error == CF_OK) {
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
                     dl->ops->name);
    }
}

/* Hands the serialized record to the output until it is accepted. */
static void deliver(struct cf_pipeline *p, const struct cf_out_record *rec) {
    struct cf_output *out = p->setup.out;
    long backoff = 10;
    for (;;) {
        cf_io_status st = out->ops->write(out, rec);
        if (st == CF_IO_OK) {
            p->written++;
            return;
        }
        if (st != CF_IO_RETRY) break;
        if (p->retries++ == 0)
            fprintf(stderr, "chainfuse: output %s not ready, retrying\n",
                    out->ops->name);
        sleep_ms(backoff);
        if (backoff < 5000) backoff *= 2;
    }
    p->output_failures++;
    dead_letter(p, DL_OUTPUT_FAILED, "output failed", rec->pos, rec->json,
                rec->len, false);
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
    if (!setup->out || !setup->dead_letter) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "pipeline needs an output and a dead-letter output");
        goto fail;
    }
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

cf_err_t cf_pipeline_run(struct cf_pipeline *p, struct cf_input *in,
                         char *errstr, size_t errstr_size) {
    struct cf_record rec;
    long backoff = 10;
    for (;;) {
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
        if (in->ops->commit) in->ops->commit(in, &rec.pos);
    }
    return CF_OK;
}

cf_err_t cf_pipeline_finish(struct cf_pipeline *p, char *errstr,
                            size_t errstr_size) {
    cf_fusion_finish(p->fusion);
    /* Both outputs are flushed even when the first fails, so a full disk
     * under the records does not also lose the dead letters unsaid. */
    struct cf_output *outs[2] = {p->setup.out, p->dead_letter};
    const char *what[2] = {"output", "dead-letter output"};
    bool failed[2] = {false, false};
    for (int i = 0; i < 2; i++) {
        struct cf_output *o = outs[i];
        if (!o || !o->ops->flush) continue;
        long backoff = 10;
        cf_io_status st;
        while ((st = o->ops->flush(o)) == CF_IO_RETRY) {
            sleep_ms(backoff);
            if (backoff < 5000) backoff *= 2;
        }
        failed[i] = st != CF_IO_OK;
    }
    if (failed[0] || failed[1]) {
        int first = failed[0] ? 0 : 1;
        return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                         "%s %s failed to flush%s%s%s", what[first],
                         outs[first]->ops->name,
                         failed[0] && failed[1] ? " (and the " : "",
                         failed[0] && failed[1] ? what[1] : "",
                         failed[0] && failed[1] ? " too)" : "");
    }
    if (p->deliver_error != CF_OK)
        return cf_seterr(errstr, errstr_size, p->deliver_error, "%s",
                         p->deliver_errstr);
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
    STAT(s, "written", p->written);
    STAT(s, "output_retries", p->retries);
    STAT(s, "output_failures", p->output_failures);
#undef STAT
    json_object_set_new(s, "dropped", cf_drops_to_json(&drops));
    json_object_set_new(s, "fusion", cf_fusion_stats(p->fusion));
    json_object_set_new(s, "clocks", cf_clocks_stats(p->clocks));
    return s;
}
