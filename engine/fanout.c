/*
 * fanout.c - several outputs, each with its filter and its own retry
 * backlog (see fanout.h).
 */
#include "fanout.h"

#include <string.h>

#include "sigma.h"
#include "timeutil.h"

#define DEFAULT_MAX_BUFFERED 10000
#define BACKOFF_FIRST_MS 10
#define BACKOFF_MAX_MS 5000

/* An owned copy of a record an output has not taken yet. */
struct held {
    char *json;
    size_t len;
    char *kind, *id, *status;
    struct cf_position pos; /* source borrowed from the input */
    bool has_pos;
    uint32_t version;
    int severity, score;
    char **tactics;
    size_t n_tactics;
};

struct fan_out {
    struct cf_fanout *fo; /* back pointer: out->engine points here */
    struct cf_output *out;
    const char *name;
    struct cf_output_filter f;
    struct held *q; /* ring */
    size_t head, n, cap;
    int64_t retry_since, next_try; /* monotonic ms */
    long backoff;
    bool gave_up; /* retry_for passed: refusals go to dead letters */
    uint64_t written, filtered, retries, failed, dead_lettered;
};

struct cf_fanout {
    struct fan_out *outs;
    size_t n;
    size_t backlogged; /* outputs with a non-empty backlog */
    cf_fanout_dead_fn dead;
    cf_fanout_wait_fn wait;
    void *opaque;
};

static int64_t now_ms(void) {
    return cf_monotonic_ns() / 1000000;
}

/* ---- filters ------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} kind_names[] = {{"alert", CF_KIND_ALERT},
                  {"incident", CF_KIND_INCIDENT},
                  {"dead-letter", CF_KIND_DEAD_LETTER}};

static unsigned kind_bit(const char *kind) {
    for (size_t i = 0; i < CF_ARRAY_LEN(kind_names); i++)
        if (strcmp(kind, kind_names[i].name) == 0) return kind_names[i].bit;
    return 0;
}

void cf_output_filter_clear(struct cf_output_filter *f) {
    for (size_t i = 0; i < f->n_tactics; i++) cf_free(f->tactics[i]);
    cf_free(f->tactics);
    memset(f, 0, sizeof *f);
    f->min_severity = -1;
}

cf_err_t cf_output_filter_from_item(const struct cf_output_item *it,
                                    const char *where,
                                    struct cf_output_filter *f, char *errstr,
                                    size_t errstr_size) {
    cf_output_filter_clear(f);
    for (size_t i = 0; i < it->kinds.n; i++) {
        unsigned bit = kind_bit(it->kinds.v[i]);
        if (!bit)
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "%s.kinds: '%s' is not a record kind (alert, "
                             "incident, dead-letter)",
                             where, it->kinds.v[i]);
        f->kinds |= bit;
    }
    if (it->min_severity) {
        enum cf_level lvl;
        if (cf_level_parse(it->min_severity, &lvl) != 0)
            return cf_seterr(errstr, errstr_size, CF_ERR,
                             "%s.min_severity: '%s' is not one of "
                             "informational, low, medium, high, critical",
                             where, it->min_severity);
        f->min_severity = (int)lvl;
    }
    if (it->tactics.n) {
        if (!(f->tactics = cf_calloc(it->tactics.n, sizeof *f->tactics)))
            return CF_ERR_NOMEM;
        for (size_t i = 0; i < it->tactics.n; i++) {
            if (!(f->tactics[i] = cf_strdup(it->tactics.v[i])))
                return CF_ERR_NOMEM;
            f->n_tactics++;
        }
    }
    f->max_buffered = (size_t)it->max_buffered;
    f->retry_for_ms = it->retry_for;
    return CF_OK;
}

/* Severity and tactics select alerts and incidents; a dead letter has
 * neither and passes them when its kind is selected. */
static bool passes(const struct cf_output_filter *f,
                   const struct cf_out_record *rec) {
    unsigned kinds = f->kinds ? f->kinds : CF_KIND_ALERT | CF_KIND_INCIDENT;
    unsigned bit = kind_bit(rec->kind);
    if (!(kinds & bit)) return false;
    if (bit == CF_KIND_DEAD_LETTER) return true;
    if (f->min_severity >= 0 && rec->severity < f->min_severity) return false;
    if (f->n_tactics) {
        for (size_t i = 0; i < f->n_tactics; i++)
            for (size_t j = 0; j < rec->n_tactics; j++)
                if (strcmp(f->tactics[i], rec->tactics[j]) == 0) return true;
        return false;
    }
    return true;
}

/* ---- backlog ------------------------------------------------------- */

static void held_clear(struct held *h) {
    cf_free(h->json);
    cf_free(h->kind);
    cf_free(h->id);
    cf_free(h->status);
    for (size_t i = 0; i < h->n_tactics; i++) cf_free(h->tactics[i]);
    cf_free(h->tactics);
    memset(h, 0, sizeof *h);
}

static char *dup_or_null(const char *s, bool *ok) {
    char *d;
    if (!s) return NULL;
    if (!(d = cf_strdup(s))) *ok = false;
    return d;
}

static bool held_copy(struct held *h, const struct cf_out_record *rec) {
    bool ok = true;
    memset(h, 0, sizeof *h);
    if ((h->json = cf_malloc(rec->len + 1))) {
        memcpy(h->json, rec->json, rec->len);
        h->json[rec->len] = '\0';
    } else {
        ok = false;
    }
    h->len = rec->len;
    h->kind = dup_or_null(rec->kind, &ok);
    h->id = dup_or_null(rec->id, &ok);
    h->status = dup_or_null(rec->status, &ok);
    if (rec->pos) {
        h->pos = *rec->pos;
        h->has_pos = true;
    }
    h->version = rec->version;
    h->severity = rec->severity;
    h->score = rec->score;
    if (rec->n_tactics &&
        (h->tactics = cf_calloc(rec->n_tactics, sizeof *h->tactics))) {
        for (size_t i = 0; i < rec->n_tactics; i++)
            if ((h->tactics[i] = dup_or_null(rec->tactics[i], &ok)))
                h->n_tactics = i + 1;
    } else if (rec->n_tactics) {
        ok = false;
    }
    if (!ok) held_clear(h);
    return ok;
}

static struct cf_out_record held_record(const struct held *h) {
    struct cf_out_record r = cf_out_record_plain(h->kind, h->json, h->len,
                                                 h->has_pos ? &h->pos : NULL);
    r.id = h->id;
    r.version = h->version;
    r.status = h->status;
    r.severity = h->severity;
    r.score = h->score;
    r.tactics = (const char *const *)h->tactics;
    r.n_tactics = h->n_tactics;
    return r;
}

static size_t max_buffered(const struct fan_out *o) {
    return o->f.max_buffered ? o->f.max_buffered : DEFAULT_MAX_BUFFERED;
}

/* ---- delivery ------------------------------------------------------ */

static void to_dead(struct fan_out *o, const struct cf_out_record *rec,
                    const char *why) {
    char reason[256];
    snprintf(reason, sizeof reason, "output %s: %s", o->name, why);
    o->dead_lettered++;
    o->fo->dead(o->fo->opaque, rec, reason);
}

/* The hook an asynchronous output calls for a record it had taken. */
static void late_failure(void *engine, const struct cf_out_record *rec,
                         const char *reason) {
    struct fan_out *o = engine;
    o->failed++;
    o->written--; /* it was counted when taken */
    to_dead(o, rec, reason ? reason : "delivery failed");
}

struct cf_fanout *cf_fanout_new(const struct cf_pipeline_output *outs, size_t n,
                                cf_fanout_dead_fn dead, cf_fanout_wait_fn wait,
                                void *opaque) {
    struct cf_fanout *fo = cf_calloc(1, sizeof *fo);
    if (!fo || (n && !(fo->outs = cf_calloc(n, sizeof *fo->outs)))) {
        cf_free(fo);
        return NULL;
    }
    fo->n = n;
    fo->dead = dead;
    fo->wait = wait;
    fo->opaque = opaque;
    for (size_t i = 0; i < n; i++) {
        struct fan_out *o = &fo->outs[i];
        o->fo = fo;
        o->out = outs[i].out;
        o->name = outs[i].name ? outs[i].name : outs[i].out->ops->name;
        o->f = outs[i].filter; /* tactics borrowed from the caller */
        o->out->dead_letter = late_failure;
        o->out->engine = o;
    }
    return fo;
}

void cf_fanout_destroy(struct cf_fanout *fo) {
    if (!fo) return;
    for (size_t i = 0; i < fo->n; i++) {
        struct fan_out *o = &fo->outs[i];
        for (size_t k = 0; k < o->n; k++)
            held_clear(&o->q[(o->head + k) % o->cap]);
        cf_free(o->q);
        o->out->dead_letter = NULL;
        o->out->engine = NULL;
    }
    cf_free(fo->outs);
    cf_free(fo);
}

static void note_retry(struct fan_out *o, int64_t now) {
    o->retries++;
    if (o->retry_since == 0) {
        o->retry_since = now;
        o->backoff = BACKOFF_FIRST_MS;
        fprintf(stderr, "chainfuse: output %s not ready, retrying\n", o->name);
    } else if (o->backoff < BACKOFF_MAX_MS) {
        o->backoff *= 2;
        if (o->backoff > BACKOFF_MAX_MS) o->backoff = BACKOFF_MAX_MS;
    }
    o->next_try = now + o->backoff;
    if (o->f.retry_for_ms > 0 && now - o->retry_since >= o->f.retry_for_ms &&
        !o->gave_up) {
        o->gave_up = true;
        fprintf(stderr,
                "chainfuse: output %s has not taken records for %lld ms "
                "(retry_for); its records go to the dead-letter output until "
                "it does\n",
                o->name, (long long)(now - o->retry_since));
    }
}

static void recovered(struct fan_out *o) {
    if (o->retry_since)
        fprintf(stderr, "chainfuse: output %s is taking records again\n",
                o->name);
    o->retry_since = 0;
    o->gave_up = false;
}

/* One write; OK, RETRY (not taken), or FAIL (dead-lettered). */
static cf_io_status write_one(struct fan_out *o,
                              const struct cf_out_record *rec) {
    cf_io_status st = o->out->ops->write(o->out, rec);
    if (st == CF_IO_OK) {
        o->written++;
        recovered(o);
    } else if (st != CF_IO_RETRY) {
        o->failed++;
        to_dead(o, rec, "refused the record");
        st = CF_IO_FAIL;
    }
    return st;
}

static void pop_head(struct cf_fanout *fo, struct fan_out *o) {
    held_clear(&o->q[o->head]);
    o->head = (o->head + 1) % o->cap;
    if (--o->n == 0) fo->backlogged--;
}

/* Offers the backlog of o, oldest first, when its backoff has passed. */
static void pump_one(struct cf_fanout *fo, struct fan_out *o, int64_t now) {
    while (o->n && now >= o->next_try) {
        struct held *h = &o->q[o->head];
        struct cf_out_record r = held_record(h);
        cf_io_status st = write_one(o, &r);
        if (st == CF_IO_RETRY) {
            note_retry(o, now);
            if (!o->gave_up) return;
            to_dead(o, &r, "not taken within retry_for");
        }
        pop_head(fo, o);
    }
}

void cf_fanout_pump(struct cf_fanout *fo) {
    if (!fo || !fo->backlogged) return;
    int64_t now = now_ms();
    for (size_t i = 0; i < fo->n; i++) pump_one(fo, &fo->outs[i], now);
}

/* Milliseconds until the earliest backlog may be offered again. */
static long next_wait(const struct cf_fanout *fo, int64_t now) {
    int64_t best = BACKOFF_MAX_MS;
    for (size_t i = 0; i < fo->n; i++) {
        const struct fan_out *o = &fo->outs[i];
        if (o->n && o->next_try - now < best) best = o->next_try - now;
    }
    return best < 1 ? 1 : (long)best;
}

static bool enqueue(struct cf_fanout *fo, struct fan_out *o,
                    const struct cf_out_record *rec) {
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 64;
        if (nc > max_buffered(o)) nc = max_buffered(o);
        if (nc <= o->cap) return false;
        struct held *nq = cf_calloc(nc, sizeof *nq);
        if (!nq) return false;
        for (size_t k = 0; k < o->n; k++) nq[k] = o->q[(o->head + k) % o->cap];
        cf_free(o->q);
        o->q = nq;
        o->cap = nc;
        o->head = 0;
    }
    if (!held_copy(&o->q[(o->head + o->n) % o->cap], rec)) return false;
    if (o->n++ == 0) fo->backlogged++;
    return true;
}

void cf_fanout_deliver(struct cf_fanout *fo, const struct cf_out_record *rec) {
    for (size_t i = 0; i < fo->n; i++) {
        struct fan_out *o = &fo->outs[i];
        if (!passes(&o->f, rec)) {
            o->filtered++;
            continue;
        }
        if (o->n == 0) {
            cf_io_status st = write_one(o, rec);
            if (st != CF_IO_RETRY) continue;
            note_retry(o, now_ms());
            if (o->gave_up) {
                to_dead(o, rec, "not taken within retry_for");
                continue;
            }
        }
        /* Behind a backlog, or just refused: keep order, wait for room. */
        while (o->n >= max_buffered(o)) {
            int64_t now = now_ms();
            pump_one(fo, o, now);
            if (o->n < max_buffered(o)) break;
            fo->wait(fo->opaque, next_wait(fo, now));
        }
        if (!enqueue(fo, o, rec)) to_dead(o, rec, "out of memory holding it");
    }
}

bool cf_fanout_backlogged(const struct cf_fanout *fo) {
    return fo && fo->backlogged > 0;
}

cf_err_t cf_fanout_drain(struct cf_fanout *fo,
                         const volatile sig_atomic_t *stop, char *errstr,
                         size_t errstr_size) {
    for (size_t i = 0; i < fo->n; i++) {
        struct fan_out *o = &fo->outs[i];
        for (;;) {
            int64_t now = now_ms();
            pump_one(fo, o, now);
            if (!o->n) {
                cf_io_status st =
                    o->out->ops->flush ? o->out->ops->flush(o->out) : CF_IO_OK;
                if (st == CF_IO_OK) {
                    recovered(o);
                    break;
                }
                if (st != CF_IO_RETRY)
                    return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                                     "output %s failed to flush", o->name);
                note_retry(o, now);
                o->retries--; /* a flush is not a record offered again */
            }
            if (stop && *stop > 1) /* a second stop signal */
                return cf_seterr(errstr, errstr_size, CF_ERR,
                                 "output %s has not acknowledged every "
                                 "record",
                                 o->name);
            fo->wait(fo->opaque, next_wait(fo, now_ms()) < o->backoff
                                     ? next_wait(fo, now_ms())
                                     : (o->backoff ? o->backoff : 1));
        }
    }
    return CF_OK;
}

json_t *cf_fanout_stats(const struct cf_fanout *fo) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < fo->n; i++) {
        const struct fan_out *o = &fo->outs[i];
        json_t *s = json_object();
        if (!s) break;
        json_object_set_new(s, "name", json_string(o->name));
#define STAT(name, v)                                                          \
    json_object_set_new(s, name, json_integer((json_int_t)(v)))
        STAT("written", o->written);
        STAT("filtered", o->filtered);
        STAT("retries", o->retries);
        STAT("failed", o->failed);
        STAT("dead_lettered", o->dead_lettered);
        STAT("buffered", o->n);
#undef STAT
        json_array_append_new(a, s);
    }
    return a;
}

void cf_fanout_totals(const struct cf_fanout *fo, uint64_t *written,
                      uint64_t *retries, uint64_t *failures) {
    *written = *retries = *failures = 0;
    for (size_t i = 0; fo && i < fo->n; i++) {
        *written += fo->outs[i].written;
        *retries += fo->outs[i].retries;
        *failures += fo->outs[i].dead_lettered;
    }
}
