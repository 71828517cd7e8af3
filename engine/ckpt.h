/*
 * ckpt.h - the checkpoint format: a binary encoding of the engine's
 * state (pipeline counters and input positions, fusion, correlation),
 * written whole as one file (temporary file, fsync, rename, fsync of
 * the directory) and read back whole.
 *
 * File: a 32-byte header - magic "CFSTATE\0", format version (u32),
 * header size (u32), payload size (u64), CRC-32 of the payload (u32),
 * 4 bytes reserved - then the payload.  Numbers are little-endian
 * fixed width; a string is its length (u32) and its bytes plus a NUL, so
 * a string read in place is a C string for as long as the file is in
 * memory.  Each owner writes and reads its own part (cf_fusion_save,
 * cf_correlator_save, the pipeline's counters and positions) in a fixed
 * order; CF_CKPT_VERSION changes whenever any part changes shape.  A
 * file of another version, or whose CRC does not match, is refused
 * before anything is restored.
 *
 * Binary rather than JSON: 100,000 open incidents must checkpoint in
 * well under 100 ms (bench/bench_checkpoint.c).
 *
 * Writers and readers are plain values used by one thread.
 */
#ifndef CF_CKPT_H
#define CF_CKPT_H

#include <string.h>

#include "alert.h"
#include "buf.h"
#include "common.h"
#include "incident.h"
#include "sigma.h"

/* Bump when any save function writes something new or in another
 * order (also when core/hash.h's function changes: fusion's duplicate
 * keys are its digests). */
#define CF_CKPT_VERSION 1u

/* ---- writing ------------------------------------------------------- */

struct cf_ckpt_sym_slot {
    const char *s;
    uint32_t idx;
};

struct cf_ckpt_w {
    struct cf_buf b; /* header space first, then the payload */
    /* strings written once and then referred to by number (rule ids
     * and titles, tactics, sources), found by address */
    struct cf_ckpt_sym_slot *syms;
    size_t sym_cap;
    uint32_t n_syms;
};

/* Appends without a call while the buffer has room (most of the time:
 * a checkpoint is millions of small fields). */
static inline void cf_ckpt_put(struct cf_ckpt_w *w, const void *p, size_t n) {
    if (w->b.len + n < w->b.cap) {
        memcpy(w->b.data + w->b.len, p, n);
        w->b.len += n;
    } else {
        cf_buf_append(&w->b, p, n);
    }
}
static inline void cf_ckpt_u8(struct cf_ckpt_w *w, uint8_t v) {
    cf_ckpt_put(w, &v, 1);
}
static inline void cf_ckpt_u32(struct cf_ckpt_w *w, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    cf_ckpt_put(w, b, 4);
}
static inline void cf_ckpt_u64(struct cf_ckpt_w *w, uint64_t v) {
    cf_ckpt_u32(w, (uint32_t)v);
    cf_ckpt_u32(w, (uint32_t)(v >> 32));
}
static inline void cf_ckpt_i64(struct cf_ckpt_w *w, int64_t v) {
    cf_ckpt_u64(w, (uint64_t)v);
}
/* NULL is written as length UINT32_MAX and read back as NULL. */
static inline void cf_ckpt_strn(struct cf_ckpt_w *w, const char *s, size_t n) {
    if (!s) {
        cf_ckpt_u32(w, UINT32_MAX);
        return;
    }
    cf_ckpt_u32(w, (uint32_t)n);
    cf_ckpt_put(w, s, n);
    cf_ckpt_u8(w, 0);
}
static inline void cf_ckpt_str(struct cf_ckpt_w *w, const char *s) {
    cf_ckpt_strn(w, s, s ? strlen(s) : 0);
}
/* A string that recurs (the same address many times): written the
 * first time, then as its number.  Read with cf_ckpt_get_sym. */
void cf_ckpt_sym(struct cf_ckpt_w *w, const char *s);
/* A 32-hex-digit id (alerts, incidents) as 16 bytes; anything else as
 * a string.  Read with cf_ckpt_get_id. */
void cf_ckpt_id(struct cf_ckpt_w *w, const char *id);

/* ---- reading ------------------------------------------------------- */

struct cf_strpool;
struct cf_ckpt_rule_index;

struct cf_ckpt_r {
    const unsigned char *p, *end;
    bool bad;   /* read past the end or found nonsense: refuse the file */
    bool nomem; /* out of memory restoring: refuse too */
    /* Set by the caller: the rules now loaded, and where strings that
     * must outlive the file go (each owner sets its own pool before
     * reading its part). */
    const struct cf_rulebook *rb;
    struct cf_strpool *pool;
    struct cf_ckpt_rule_index *index; /* built on first use */
    /* State restored for rules no longer loaded: dropped and counted. */
    uint64_t dropped_alerts, dropped_windows;
    const char **syms; /* cf_ckpt_sym's strings, in the file */
    size_t n_syms, cap_syms;
};

/* Frees what reading built (the rule index). */
void cf_ckpt_reader_done(struct cf_ckpt_r *r);

static inline bool cf_ckpt_need(struct cf_ckpt_r *r, size_t n) {
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}
static inline uint8_t cf_ckpt_get_u8(struct cf_ckpt_r *r) {
    return cf_ckpt_need(r, 1) ? *r->p++ : 0;
}
static inline uint32_t cf_ckpt_get_u32(struct cf_ckpt_r *r) {
    if (!cf_ckpt_need(r, 4)) return 0;
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 |
                 (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return v;
}
static inline uint64_t cf_ckpt_get_u64(struct cf_ckpt_r *r) {
    uint64_t lo = cf_ckpt_get_u32(r);
    return lo | (uint64_t)cf_ckpt_get_u32(r) << 32;
}
static inline int64_t cf_ckpt_get_i64(struct cf_ckpt_r *r) {
    return (int64_t)cf_ckpt_get_u64(r);
}
static inline void cf_ckpt_get(struct cf_ckpt_r *r, void *out, size_t n) {
    if (cf_ckpt_need(r, n)) {
        memcpy(out, r->p, n);
        r->p += n;
    } else {
        memset(out, 0, n);
    }
}
/* In place, NUL-terminated (valid while the file is in memory); NULL
 * for a NULL written, or when the file is bad (then r->bad). */
static inline const char *cf_ckpt_get_str(struct cf_ckpt_r *r, size_t *len) {
    uint32_t n = cf_ckpt_get_u32(r);
    if (len) *len = 0;
    if (n == UINT32_MAX || r->bad) return NULL;
    if (!cf_ckpt_need(r, (size_t)n + 1) || r->p[n] != 0) {
        r->bad = true;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += (size_t)n + 1;
    if (len) *len = n;
    return s;
}
/* As cf_ckpt_get_str, for what cf_ckpt_sym wrote. */
const char *cf_ckpt_get_sym(struct cf_ckpt_r *r);
/* What cf_ckpt_id wrote, into out (32 characters and a NUL). */
void cf_ckpt_get_id(struct cf_ckpt_r *r, char out[33]);
/* A count of items each at least `min_bytes` long: refuses counts the
 * rest of the file cannot hold (a damaged count must not allocate). */
static inline size_t cf_ckpt_get_count(struct cf_ckpt_r *r, size_t min_bytes) {
    uint64_t n = cf_ckpt_get_u64(r);
    if (min_bytes && n > (uint64_t)(r->end - r->p) / min_bytes) {
        r->bad = true;
        return 0;
    }
    return (size_t)n;
}
/* A copy of a string read (cf_strdup; NULL stays NULL); r->nomem set
 * when memory ran out. */
char *cf_ckpt_dup(struct cf_ckpt_r *r, const char *s);

/* ---- strings the state keeps after the file is gone ----------------- */

/* Interned strings (rule titles of rules since removed, input source
 * names): one owned copy of each.  Owned by whoever restored state. */
struct cf_strpool {
    char **slots; /* open addressing, power of two */
    size_t cap, n;
};
/* The pool's copy of s (NULL for NULL, or out of memory: r->nomem). */
const char *cf_ckpt_intern(struct cf_ckpt_r *r, const char *s);
void cf_strpool_free(struct cf_strpool *pool);

/* ---- alerts and incidents ------------------------------------------ */

void cf_ckpt_put_alert(struct cf_ckpt_w *w, const struct cf_alert *a);
/* Fills `a` (owned parts allocated); its rule is looked up in r->rb by
 * the id the alert carries.  True when restored; false with `a` empty
 * when its rule is no longer loaded (counted in r->dropped_alerts) or
 * the file is bad or memory ran out (r->bad, r->nomem). */
bool cf_ckpt_get_alert(struct cf_ckpt_r *r, struct cf_alert *a);

/* A queue of alerts waiting for the watermark (cf_alert_queue_*),
 * written in the order it was filled so that ties come out as before;
 * read into an empty queue.  Alerts of rules no longer loaded are
 * dropped (r->dropped_alerts).  False on a bad file or out of memory. */
/* The entries of `q` in the order they were pushed (the heap's last
 * tie-break), so a queue rebuilt by pushing them in this order pops as
 * the saved one would.  The caller frees the array with cf_free; NULL
 * (and w->b.failed) when memory runs out, NULL too for an empty heap. */
const struct cf_heap_entry **cf_ckpt_heap_order(struct cf_ckpt_w *w,
                                                const struct cf_heap *q);

void cf_ckpt_put_alert_queue(struct cf_ckpt_w *w, const struct cf_heap *q);
bool cf_ckpt_get_alert_queue(struct cf_ckpt_r *r, struct cf_heap *q);

void cf_ckpt_put_incident(struct cf_ckpt_w *w, const struct cf_incident *inc);
/* A new incident, its borrowed strings (rule ids and titles, the input
 * source) interned in r->pool; NULL when the file is bad or memory ran
 * out.  Incidents are kept when their rules are gone: they are the
 * product, and their record names the rules as they were. */
struct cf_incident *cf_ckpt_get_incident(struct cf_ckpt_r *r);

void cf_ckpt_put_pos(struct cf_ckpt_w *w, const struct cf_position *pos);
void cf_ckpt_get_pos(struct cf_ckpt_r *r, struct cf_position *pos);

/* ---- files --------------------------------------------------------- */

/* Starts a checkpoint: header space reserved.  A writer used before
 * keeps its buffer (the next checkpoint is about as large: no page
 * faults, no copies while it grows); a new one is zeroed first. */
void cf_ckpt_begin(struct cf_ckpt_w *w);
/* Frees a writer's memory. */
void cf_ckpt_discard(struct cf_ckpt_w *w);
/* Fills the header and writes DIR/checkpoint atomically (DIR/
 * checkpoint.tmp, fsync, rename, fsync of DIR).  The writer keeps its
 * buffer for the next cf_ckpt_begin (cf_ckpt_discard frees it).
 * CF_ERR_NOMEM or CF_ERR_IO with errstr. */
cf_err_t cf_ckpt_commit(struct cf_ckpt_w *w, const char *dir, char *errstr,
                        size_t errstr_size);

/* Whether DIR/checkpoint exists. */
bool cf_ckpt_exists(const char *dir);

/* Reads DIR/checkpoint whole and checks it.  CF_OK with *data (cf_free)
 * and a reader over its payload; CF_ERR_IO with errstr "" when there is
 * none (a first start); CF_ERR with errstr when it is refused (another
 * format version, damaged, unreadable). */
cf_err_t cf_ckpt_load(const char *dir, unsigned char **data,
                      struct cf_ckpt_r *r, char *errstr, size_t errstr_size);

#endif
