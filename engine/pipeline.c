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
#include "event.h"
#include "fusion.h"
#include "dead_letter.h"

#define MAX_REASONS 16

struct cf_pipeline {
    struct cf_pipeline_setup setup;
    struct cf_decoder *dec;
    struct cf_event ev;
    struct cf_matcher *matcher;
    struct cf_entity_map *entities;
    struct cf_fusion *fusion;
    struct cf_output *dead_letter;
    char *buf; /* reusable serialization buffer */
    size_t buf_cap;
    cf_err_t deliver_error; /* first unrecoverable delivery failure */
    char deliver_errstr[256];

    uint64_t records, events, dead_lettered, alerts, suppressed, correlation_alerts,
        incidents, retries, output_failures, no_time;
    struct {
        const char *reason;
        uint64_t count;
    } reasons[MAX_REASONS];
};

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void count_reason(struct cf_pipeline *p, const char *reason) {
    for (int i = 0; i < MAX_REASONS; i++) {
        if (!p->reasons[i].reason || strcmp(p->reasons[i].reason, reason) == 0) {
            p->reasons[i].reason = reason;
            p->reasons[i].count++;
            return;
        }
    }
}

static void dead_letter(struct cf_pipeline *p, const char *reason,
                        const struct cf_position *pos, const char *data,
                        size_t len) {
    struct cf_output *dl = p->dead_letter;
    p->dead_lettered++;
    count_reason(p, reason);
    if (cf_dead_letter_write(dl, reason, pos, data, len, false) != CF_OK) {
        if (p->deliver_error == CF_OK) {
            p->deliver_error = CF_ERR_IO;
            snprintf(p->deliver_errstr, sizeof p->deliver_errstr,
                     "cannot write to the dead-letter output (%s); stopping "
                     "rather than losing records",
                     dl->ops->name);
        }
    }
}

/* Serializes `rec` and hands it to the output until it is accepted. */
static void deliver(struct cf_pipeline *p, const char *kind, json_t *rec,
                    const struct cf_position *pos) {
    struct cf_output *out = p->setup.out;
    size_t need = json_dumpb(rec, NULL, 0, JSON_COMPACT);
    if (need + 1 > p->buf_cap) {
        size_t cap = need + 1 > 2 * p->buf_cap ? need + 1 : 2 * p->buf_cap;
        char *nb = cf_realloc(p->buf, cap);
        if (!nb) {
            dead_letter(p, "out of memory serializing record", pos, "", 0);
            return;
        }
        p->buf = nb;
        p->buf_cap = cap;
    }
    size_t len = json_dumpb(rec, p->buf, p->buf_cap, JSON_COMPACT);
    long backoff = 10;
    for (;;) {
        cf_io_status st = out->ops->write(out, kind, p->buf, len, pos);
        if (st == CF_IO_OK) {
            out->written++;
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
    dead_letter(p, "output failed", pos, p->buf, len);
}

static void emit_from_fusion(const char *kind, json_t *record,
                             const struct cf_position *pos, void *opaque) {
    struct cf_pipeline *p = opaque;
    if (strcmp(kind, "incident") == 0) {
        p->incidents++;
        if (!p->setup.cfg->emit_incidents) return;
    } else if (strcmp(kind, "alert") == 0) {
        p->correlation_alerts++;
        if (!p->setup.cfg->emit_alerts) return;
    }
    deliver(p, kind, record, pos);
}

static void on_match(const struct cf_sigma_rule *rule, void *opaque) {
    struct cf_pipeline *p = opaque;
    struct cf_alert alert;
    if (cf_alert_from_event(&alert, rule, &p->ev, p->entities) != CF_OK) {
        dead_letter(p, "out of memory building alert", &p->ev.pos, p->ev.raw,
                    p->ev.raw_len);
        cf_alert_clear(&alert);
        return;
    }
    p->alerts++;
    /* Fusion first: a configured suppression hides the alert from every
     * output, not only from incidents (it is counted in fusion's stats). */
    if (cf_fusion_push(p->fusion, &alert)) {
        p->suppressed++;
    } else if (p->setup.cfg->emit_alerts) {
        json_t *rec = cf_alert_to_json(&alert);
        deliver(p, "alert", rec, &alert.pos);
        json_decref(rec);
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
    if (!(p->matcher = cf_matcher_new(setup->rs))) goto nomem;
    p->entities = cf_entity_map_new(cf_config_section(setup->cfg, "entities"),
                                    errstr, errstr_size);
    if (!p->entities) goto fail;
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
    cf_entity_map_destroy(p->entities);
    cf_matcher_destroy(p->matcher);
    cf_decoder_destroy(p->dec);
    cf_event_free(&p->ev);
    cf_free(p->buf);
    cf_free(p);
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
            return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                             "input %s failed", in->ops->name);
        backoff = 10;
        p->records++;
        in->records++;
        if (rec.defect) {
            dead_letter(p, rec.defect, &rec.pos, rec.data, rec.len);
        } else {
            const char *reason = NULL;
            if (cf_event_decode(p->dec, &p->ev, rec.data, rec.len,
                                &p->setup.cfg->limits, &reason) != CF_OK) {
                dead_letter(p, reason ? reason : "invalid JSON", &rec.pos,
                            rec.data, rec.len);
            } else {
                p->events++;
                p->ev.pos = rec.pos;
                if (p->ev.time_ms == CF_TIME_UNKNOWN)
                    p->no_time++;
                else
                    cf_fusion_observe(p->fusion, p->ev.time_ms);
                cf_matcher_match(p->matcher, &p->ev, on_match, p);
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
    struct cf_output *outs[2] = {p->setup.out, p->dead_letter};
    for (int i = 0; i < 2; i++) {
        struct cf_output *o = outs[i];
        if (!o || !o->ops->flush) continue;
        long backoff = 10;
        cf_io_status st;
        while ((st = o->ops->flush(o)) == CF_IO_RETRY) {
            sleep_ms(backoff);
            if (backoff < 5000) backoff *= 2;
        }
        if (st != CF_IO_OK)
            return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                             "output %s failed to flush", o->ops->name);
    }
    if (p->deliver_error != CF_OK)
        return cf_seterr(errstr, errstr_size, p->deliver_error, "%s",
                         p->deliver_errstr);
    return CF_OK;
}

json_t *cf_pipeline_stats(const struct cf_pipeline *p) {
    json_t *s = json_object();
    json_t *reasons = json_object();
    json_object_set_new(s, "records", json_integer((json_int_t)p->records));
    json_object_set_new(s, "events", json_integer((json_int_t)p->events));
    json_object_set_new(s, "events_without_time",
                        json_integer((json_int_t)p->no_time));
    json_object_set_new(s, "dead_lettered",
                        json_integer((json_int_t)p->dead_lettered));
    for (int i = 0; i < MAX_REASONS && p->reasons[i].reason; i++)
        json_object_set_new(reasons, p->reasons[i].reason,
                            json_integer((json_int_t)p->reasons[i].count));
    json_object_set_new(s, "dead_letter_reasons", reasons);
    json_object_set_new(s, "alerts", json_integer((json_int_t)p->alerts));
    json_object_set_new(s, "suppressed_alerts",
                        json_integer((json_int_t)p->suppressed));
    json_object_set_new(s, "correlation_alerts",
                        json_integer((json_int_t)p->correlation_alerts));
    json_object_set_new(s, "incidents", json_integer((json_int_t)p->incidents));
    json_object_set_new(s, "output_retries", json_integer((json_int_t)p->retries));
    json_object_set_new(s, "output_failures",
                        json_integer((json_int_t)p->output_failures));
    json_object_set_new(s, "fusion", cf_fusion_stats(p->fusion));
    return s;
}
