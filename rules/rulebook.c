/*
 * rulebook.c - loads Sigma rule files and directories into a cf_rulebook
 * (sigma.h): walks directories in sorted order, splits files into YAML
 * documents, dispatches each document (detection rule, correlation,
 * filter), records the documents that cannot load, and applies filters
 * in cf_rulebook_finish().
 *
 * Called by the command line (app/chainfuse.c, once per run) and tests
 * before the ruleset is compiled; there is no reload.  A rulebook is
 * built by one thread.  After cf_rulebook_finish() only
 * cf_ruleset_compile() still changes it (it records the rules it
 * rejects); then it is read-only and shared (see sigma.h).
 */
#include "buf.h"
#include "config.h"
#include "hash.h"
#include "rule_codec.h"
#include "rulebook_cache.h"
#include "sigma_condition.h"
#include "sigma_correlation.h"
#include "sigma_legacy.h"
#include "sigma_modifiers.h"
#include "yaml_json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_DIR_DEPTH 32

/* A filter document kept until finish(), when every rule is loaded. */
struct pending_filter {
    json_t *doc;          /* the filter document */
    json_t *placeholders; /* config placeholders at load time, or NULL */
    char *path;
};

/* A rule file already read, by identity rather than by name, so that
 * overlapping paths (rules/ and rules/x.yml, a symlink) cannot load the
 * same rules twice. */
struct file_id {
    dev_t dev;
    ino_t ino;
    char *path; /* directories only: as first reached, for a warning */
};

/* A rule file read, in the open-addressing set book.seen. */
struct seen_slot {
    dev_t dev;
    ino_t ino;
    bool used;
};

/* The public rulebook plus loader-private state; callers only ever see
 * &book->rb. */
struct book {
    struct cf_rulebook rb; /* first: cf_rulebook * casts back to book */
    struct pending_filter *filters;
    size_t n_filters;
    /* every rule file read, by identity: a set, since the SigmaHQ set's
     * 3,000 files each looked up in a list made 4.5 million compares */
    struct seen_slot *seen;
    size_t n_seen, cap_seen; /* cap_seen: 0 or a power of two */
    char twice[600]; /* the first file reached twice; load() reports it */
    struct cf_rbcache *cache;  /* during load(): parsed files, or NULL */
    struct cf_codec_pack pack; /* rules read from the cache lie in it */
    /* An allocation failed: load() and finish() then fail as a whole,
     * rather than leave a rule out, or unfiltered, with a "rejection"
     * that is no fault of the rule. */
    bool nomem;
};

/* Frees the strings of records r[from..to). */
static void clear_records(struct cf_rule_rejection *r, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) {
        cf_free(r[i].path);
        cf_free(r[i].id);
        cf_free(r[i].reason);
    }
}

static void free_records(struct cf_rule_rejection *r, size_t n) {
    clear_records(r, 0, n);
    cf_free(r);
}

static void clear_filter(struct pending_filter *pf) {
    json_decref(pf->doc);
    json_decref(pf->placeholders);
    cf_free(pf->path);
}

static struct book *book_of(struct cf_rulebook *rb) {
    return (struct book *)rb;
}

struct cf_rulebook *cf_rulebook_new(void) {
    struct book *b = cf_calloc(1, sizeof(*b));
    return b ? &b->rb : NULL;
}

void cf_rulebook_destroy(struct cf_rulebook *rb) {
    if (!rb) return;
    struct book *b = book_of(rb);
    for (size_t i = 0; i < rb->n_rules; i++)
        cf_sigma_rule_destroy(rb->rules[i]);
    cf_free(rb->rules);
    for (size_t i = 0; i < rb->n_correlations; i++)
        cf_correlation_destroy(rb->correlations[i]);
    cf_free(rb->correlations);
    free_records(rb->rejected, rb->n_rejected);
    free_records(rb->converted, rb->n_converted);
    for (size_t i = 0; i < b->n_filters; i++) clear_filter(&b->filters[i]);
    cf_free(b->filters);
    cf_free(b->seen);
    cf_codec_pack_free(&b->pack); /* after the rules that lie in it */
    cf_free(b);
}

/* Makes room for element n of *arr (element size `size`).  Capacity is
 * implied by n (16, then powers of two) rather than stored, so arrays in a
 * rulebook another module built or trimmed (resolve_correlations moves
 * correlations to rejected) stay safe to append to. */
static int grow(void **arr, size_t n, size_t size) {
    if (n != 0 && (n < 16 || (n & (n - 1)) != 0)) return 0;
    size_t cap = n == 0 ? 16 : n * 2;
    void *p = cf_realloc(*arr, cap * size);
    if (!p) return -1;
    *arr = p;
    return 0;
}

/* Appends {path, id, text} to a list of rejections or conversions; out
 * of memory leaves *n as it was, which tells the caller. */
static void record(struct cf_rule_rejection **arr, size_t *n, const char *path,
                   const char *id, const char *text) {
    if (grow((void **)arr, *n, sizeof(**arr)) != 0) return;
    struct cf_rule_rejection *r = &(*arr)[*n];
    r->path = path ? cf_strdup(path) : NULL;
    r->id = id ? cf_strdup(id) : NULL;
    r->reason = cf_strdup(text ? text : "unknown reason");
    if ((path && !r->path) || (id && !r->id) || !r->reason) {
        cf_free(r->path);
        cf_free(r->id);
        cf_free(r->reason);
        return;
    }
    (*n)++;
}

void cf_rulebook_reject(struct cf_rulebook *rb, const char *path,
                        const char *id, const char *reason) {
    record(&rb->rejected, &rb->n_rejected, path, id, reason);
}

/* The loaders below (cf_read_file, cf_yaml_to_json, cf_sigma_rule_parse,
 * cf_correlation_parse, cf_sigma_detection_parse) report an allocation
 * failure with a reason that starts so, and no other reason does. */
static bool is_nomem(const char *reason) {
    return reason && strncmp(reason, "out of memory", 13) == 0;
}

/* Records a rejection; running out of memory, for the document or for
 * the record itself, marks the whole load failed instead. */
static void reject(struct book *b, const char *path, const char *id,
                   const char *reason) {
    size_t n = b->rb.n_rejected;
    if (is_nomem(reason)) {
        b->nomem = true;
        return;
    }
    cf_rulebook_reject(&b->rb, path, id, reason);
    if (b->rb.n_rejected == n) b->nomem = true;
}

static const char *doc_id(const json_t *doc) {
    const json_t *id = json_object_get(doc, "id");
    return json_is_string(id) ? json_string_value(id) : NULL;
}

/* A legacy aggregation converted (sigma_legacy.h): its base rules and
 * correlation are parsed like any others and all added, or none, with
 * the first reason against the rule as written. */
static void load_converted(struct book *b, const json_t *doc,
                           const json_t *docs, const char *path,
                           json_t *placeholders, const char *note) {
    struct cf_rulebook *rb = &b->rb;
    size_t n = json_array_size(docs), n_rules = 0, nc = rb->n_converted;
    struct cf_sigma_rule **rules = cf_calloc(n, sizeof(*rules));
    struct cf_sigma_correlation *c = NULL;
    char reason[1024], why[900];
    bool ok = false;

    snprintf(reason, sizeof(reason), "out of memory");
    if (!rules) goto done;
    for (; n_rules + 1 < n; n_rules++) {
        rules[n_rules] =
            cf_sigma_rule_parse(json_array_get(docs, n_rules), path,
                                placeholders, why, sizeof(why));
        if (!rules[n_rules]) {
            if (!is_nomem(why))
                snprintf(reason, sizeof(reason),
                         "legacy aggregation, as its base rule: %s", why);
            goto done;
        }
    }
    if (!(c = cf_correlation_parse(json_array_get(docs, n - 1), path, why,
                                   sizeof(why)))) {
        if (!is_nomem(why))
            snprintf(reason, sizeof(reason),
                     "legacy aggregation, as a correlation: %s", why);
        goto done;
    }
    if (grow((void **)&rb->correlations, rb->n_correlations,
             sizeof(*rb->correlations)) != 0)
        goto done;
    for (size_t i = 0; i < n_rules; i++)
        if (grow((void **)&rb->rules, rb->n_rules + i, sizeof(*rb->rules)) != 0)
            goto done;
    record(&rb->converted, &rb->n_converted, path, doc_id(doc), note);
    if (rb->n_converted == nc) goto done;
    for (size_t i = 0; i < n_rules; i++) {
        rules[i]->index = (uint32_t)rb->n_rules;
        rb->rules[rb->n_rules++] = rules[i];
    }
    rb->correlations[rb->n_correlations++] = c;
    ok = true;
done:
    if (!ok) {
        for (size_t i = 0; i < n_rules; i++) cf_sigma_rule_destroy(rules[i]);
        cf_correlation_destroy(c);
        reject(b, path, doc_id(doc), reason);
    }
    cf_free(rules);
}

static void load_document(struct book *b, const json_t *doc, const char *path,
                          size_t index, size_t n_docs, json_t *placeholders) {
    struct cf_rulebook *rb = &b->rb;
    char reason[1024];
    if (!json_is_object(doc)) {
        snprintf(reason, sizeof(reason),
                 "YAML document %zu is not a map; a Sigma rule is a map "
                 "with title, logsource and detection",
                 index + 1);
        reject(b, path, NULL, reason);
        return;
    }
    bool is_rule = json_object_get(doc, "detection") != NULL;
    bool is_corr = json_object_get(doc, "correlation") != NULL;
    bool is_filter = json_object_get(doc, "filter") != NULL;
    if (is_rule + is_corr + is_filter != 1) {
        snprintf(reason, sizeof(reason),
                 is_rule + is_corr + is_filter == 0
                     ? "document %zu of %zu has none of detection, "
                       "correlation or filter"
                     : "document %zu of %zu has more than one of "
                       "detection, correlation and filter",
                 index + 1, n_docs);
        reject(b, path, doc_id(doc), reason);
        return;
    }
    rb->n_documents++;
    if (is_rule) {
        json_t *converted = NULL;
        char note[600];
        cf_err_t rc = cf_legacy_aggregation_convert(
            doc, &converted, note, sizeof(note), reason, sizeof(reason));
        if (rc != CF_OK) {
            reject(b, path, doc_id(doc), reason);
            return;
        }
        if (converted) {
            load_converted(b, doc, converted, path, placeholders, note);
            json_decref(converted);
            return;
        }
        struct cf_sigma_rule *r = cf_sigma_rule_parse(doc, path, placeholders,
                                                      reason, sizeof(reason));
        if (!r ||
            grow((void **)&rb->rules, rb->n_rules, sizeof(*rb->rules)) != 0) {
            if (r) snprintf(reason, sizeof(reason), "out of memory");
            cf_sigma_rule_destroy(r);
            reject(b, path, doc_id(doc), reason);
            return;
        }
        r->index = (uint32_t)rb->n_rules;
        rb->rules[rb->n_rules++] = r;
    } else if (is_corr) {
        struct cf_sigma_correlation *c =
            cf_correlation_parse(doc, path, reason, sizeof(reason));
        if (!c || grow((void **)&rb->correlations, rb->n_correlations,
                       sizeof(*rb->correlations)) != 0) {
            if (c) snprintf(reason, sizeof(reason), "out of memory");
            cf_correlation_destroy(c);
            reject(b, path, doc_id(doc), reason);
            return;
        }
        rb->correlations[rb->n_correlations++] = c;
    } else {
        /* Validate now so a broken filter is reported against its own
         * file; it is applied in finish(). */
        const json_t *f = json_object_get(doc, "filter");
        const json_t *rules = json_object_get(f, "rules");
        static const char *const skip[] = {"rules", NULL};
        struct cf_sigma_search *ss = NULL;
        size_t n = 0;
        struct cf_sigma_cond *cond = NULL;
        bool used = false;
        char why[900];
        if (!json_is_object(f)) {
            reject(b, path, doc_id(doc),
                   "filter must be a map with rules, searches "
                   "and a condition");
            return;
        }
        if (!(json_is_string(rules) ||
              (json_is_array(rules) && json_array_size(rules) > 0))) {
            reject(b, path, doc_id(doc),
                   "filter.rules must list the ids or names of "
                   "the rules to filter");
            return;
        }
        cf_err_t rc =
            cf_sigma_detection_parse(f, skip, NULL, placeholders, &ss, &n,
                                     &cond, &used, why, sizeof(why));
        if (rc != CF_OK) {
            snprintf(reason, sizeof(reason), "filter: %s", why);
            reject(b, path, doc_id(doc),
                   rc == CF_ERR_NOMEM ? "out of memory" : reason);
            return;
        }
        cf_sigma_searches_free(ss, n);
        cf_sigma_cond_destroy(cond);
        char *fpath = cf_strdup(path);
        if (!fpath || grow((void **)&b->filters, b->n_filters,
                           sizeof(*b->filters)) != 0) {
            cf_free(fpath);
            b->nomem = true;
            return;
        }
        struct pending_filter *pf = &b->filters[b->n_filters++];
        pf->doc = json_incref((json_t *)doc);
        pf->placeholders = placeholders ? json_incref(placeholders) : NULL;
        pf->path = fpath;
    }
}

static bool has_yaml_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcmp(dot, ".yml") == 0 || strcmp(dot, ".yaml") == 0);
}

/* The index in ids[0..n) of the file `st` describes, or -1. */
static long find_id(const struct file_id *ids, size_t n,
                    const struct stat *st) {
    for (size_t i = 0; i < n; i++)
        if (ids[i].dev == st->st_dev && ids[i].ino == st->st_ino)
            return (long)i;
    return -1;
}

/* Appends st's identity (and a copy of `path` when not NULL); false when
 * out of memory. */
static bool add_id(struct file_id **ids, size_t *n, const struct stat *st,
                   const char *path) {
    char *copy = path ? cf_strdup(path) : NULL;
    if ((path && !copy) || grow((void **)ids, *n, sizeof(**ids)) != 0) {
        cf_free(copy);
        return false;
    }
    (*ids)[*n] = (struct file_id){st->st_dev, st->st_ino, copy};
    (*n)++;
    return true;
}

static size_t seen_hash(dev_t dev, ino_t ino) {
    uint64_t k[2] = {(uint64_t)dev, (uint64_t)ino};
    return (size_t)cf_hash_words(0, k, sizeof k);
}

/* Finds the slot of (dev, ino) in b->seen (cap_seen > 0): the one
 * holding it, or the free one where it belongs. */
static struct seen_slot *seen_slot(struct book *b, dev_t dev, ino_t ino) {
    size_t mask = b->cap_seen - 1;
    for (size_t i = seen_hash(dev, ino) & mask;; i = (i + 1) & mask) {
        struct seen_slot *s = &b->seen[i];
        if (!s->used || (s->dev == dev && s->ino == ino)) return s;
    }
}

/* Doubles b->seen (at least 64 slots); false when out of memory. */
static bool seen_grow(struct book *b) {
    struct seen_slot *old = b->seen;
    size_t old_cap = b->cap_seen;
    size_t cap = old_cap ? 2 * old_cap : 64;
    struct seen_slot *slots = cf_calloc(cap, sizeof *slots);
    if (!slots) return false;
    b->seen = slots;
    b->cap_seen = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].used) *seen_slot(b, old[i].dev, old[i].ino) = old[i];
    cf_free(old);
    return true;
}

/* True when the file `st` describes was read before; otherwise remembers
 * it.  Out of memory fails the load (b->nomem), as everywhere else: a
 * file not remembered could be loaded twice. */
static bool read_before(struct book *b, const struct stat *st) {
    /* at most half full, so that probes stay short and one is free */
    if (2 * (b->n_seen + 1) > b->cap_seen && !seen_grow(b)) {
        b->nomem = true;
        return false;
    }
    struct seen_slot *s = seen_slot(b, st->st_dev, st->st_ino);
    if (s->used) return true;
    *s = (struct seen_slot){st->st_dev, st->st_ino, true};
    b->n_seen++;
    return false;
}

/* Parses one file's text into the book. */
static void parse_text(struct book *b, const char *path, const char *text,
                       size_t len, json_t *placeholders) {
    char err[512];
    json_t *docs = cf_yaml_to_json(text, len, err, sizeof(err));
    if (!docs) {
        reject(b, path, NULL, err);
        return;
    }
    size_t n = json_array_size(docs);
    /* Sigma 1.0 collections spread one rule over several documents, so
     * none of them means anything alone: reject the file once. */
    for (size_t i = 0; i < n; i++) {
        const json_t *action =
            json_object_get(json_array_get(docs, i), "action");
        if (json_is_string(action)) {
            snprintf(err, sizeof(err),
                     "'action: %s' multi-document rules (Sigma 1.0 "
                     "collections) are not supported; merge the documents "
                     "into standalone rules",
                     json_string_value(action));
            reject(b, path, NULL, err);
            n = 0;
        }
    }
    for (size_t i = 0; i < n && !b->nomem; i++) {
        const json_t *doc = json_array_get(docs, i);
        if (json_is_null(doc)) continue; /* empty document, e.g. "---" */
        load_document(b, doc, path, i, n, placeholders);
    }
    json_decref(docs);
}

/* ---- the rule file cache: one file's outcome as bytes ------------------ */

/* How far the book's lists reached before a file was loaded; what lies
 * past it is that file's outcome. */
struct mark {
    size_t rules, corrs, rejected, converted, filters, documents;
};

static struct mark mark_of(const struct book *b) {
    const struct cf_rulebook *rb = &b->rb;
    struct mark m = {rb->n_rules,     rb->n_correlations, rb->n_rejected,
                     rb->n_converted, b->n_filters,       rb->n_documents};
    return m;
}

static void put_records(struct cf_buf *out, const struct cf_rule_rejection *r,
                        size_t from, size_t to) {
    cf_codec_put_u64(out, to - from);
    for (size_t i = from; i < to; i++) {
        cf_codec_put_str(out, r[i].path);
        cf_codec_put_str(out, r[i].id);
        cf_codec_put_str(out, r[i].reason);
    }
}

static void encode_outcome(const struct book *b, const struct mark *m,
                           struct cf_buf *out) {
    const struct cf_rulebook *rb = &b->rb;
    cf_codec_put_u64(out, rb->n_documents - m->documents);
    cf_codec_put_u64(out, rb->n_rules - m->rules);
    for (size_t i = m->rules; i < rb->n_rules; i++)
        cf_codec_put_rule(out, rb->rules[i]);
    cf_codec_put_u64(out, rb->n_correlations - m->corrs);
    for (size_t i = m->corrs; i < rb->n_correlations; i++)
        cf_codec_put_correlation(out, rb->correlations[i]);
    put_records(out, rb->rejected, m->rejected, rb->n_rejected);
    put_records(out, rb->converted, m->converted, rb->n_converted);
    cf_codec_put_u64(out, b->n_filters - m->filters);
    for (size_t i = m->filters; i < b->n_filters; i++) {
        /* In key order as written: the filter's searches follow it. */
        struct cf_buf doc = CF_BUF_INIT;
        cf_buf_json(&doc, b->filters[i].doc, JSON_COMPACT);
        if (doc.failed) out->failed = true;
        cf_codec_put_str(out, doc.data ? doc.data : "");
        cf_buf_free(&doc);
        cf_codec_put_u32(out, b->filters[i].placeholders != NULL);
        cf_codec_put_str(out, b->filters[i].path);
    }
}

/* Undoes everything past `m` (an outcome that did not decode). */
static void rollback(struct book *b, const struct mark *m) {
    struct cf_rulebook *rb = &b->rb;
    for (size_t i = m->rules; i < rb->n_rules; i++)
        cf_sigma_rule_destroy(rb->rules[i]);
    for (size_t i = m->corrs; i < rb->n_correlations; i++)
        cf_correlation_destroy(rb->correlations[i]);
    clear_records(rb->rejected, m->rejected, rb->n_rejected);
    clear_records(rb->converted, m->converted, rb->n_converted);
    for (size_t i = m->filters; i < b->n_filters; i++)
        clear_filter(&b->filters[i]);
    rb->n_rules = m->rules;
    rb->n_correlations = m->corrs;
    rb->n_rejected = m->rejected;
    rb->n_converted = m->converted;
    b->n_filters = m->filters;
    rb->n_documents = m->documents;
}

static bool get_records(struct cf_codec_rd *rd, struct cf_rule_rejection **arr,
                        size_t *n) {
    uint64_t count = cf_codec_get_u64(rd);
    if (count > (uint64_t)(rd->end - rd->p)) rd->bad = true;
    for (uint64_t i = 0; i < count && !rd->bad && !rd->nomem; i++) {
        char *path = cf_codec_get_str(rd), *id = cf_codec_get_str(rd);
        char *reason = cf_codec_get_str(rd);
        size_t before = *n;
        if (!rd->bad && !rd->nomem) {
            record(arr, n, path, id, reason);
            if (*n == before) rd->nomem = true;
        }
        cf_free(path);
        cf_free(id);
        cf_free(reason);
    }
    return !rd->bad && !rd->nomem;
}

/* A filter document from its stored text.  jansson's parser drops bytes
 * when an allocation fails while it buffers a token (lex_save ignores
 * the failure), so the document is dumped again and compared with the
 * text: one that differs is not used (rd->bad: the file is parsed
 * instead). */
static json_t *load_filter_doc(const char *text, size_t len,
                               struct cf_codec_rd *rd) {
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
    if (!doc) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            rd->nomem = true;
        else
            rd->bad = true;
        return NULL;
    }
    struct cf_buf again = CF_BUF_INIT;
    cf_buf_json(&again, doc, JSON_COMPACT);
    if (again.failed)
        rd->nomem = true;
    else if (again.len != len || memcmp(again.data, text, len) != 0)
        rd->bad = true;
    cf_buf_free(&again);
    if (rd->bad || rd->nomem) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* Adds a stored outcome to the book as if the file had been parsed.
 * False when it does not decode or memory ran out (b->nomem); the book
 * is as before then. */
static bool replay_outcome(struct book *b, const void *blob, size_t len,
                           json_t *placeholders) {
    struct cf_rulebook *rb = &b->rb;
    struct cf_codec_rd rd = {blob, (const unsigned char *)blob + len, false,
                             false, NULL};
    struct mark m = mark_of(b);
    uint64_t docs = cf_codec_get_u64(&rd);
    uint64_t n = cf_codec_get_u64(&rd);
    if (n > len) rd.bad = true;
    for (uint64_t i = 0; i < n && !rd.bad && !rd.nomem; i++) {
        struct cf_sigma_rule *r = cf_codec_get_rule(&rd, &b->pack);
        if (r && grow((void **)&rb->rules, rb->n_rules, sizeof(*rb->rules))) {
            cf_sigma_rule_destroy(r);
            rd.nomem = true;
        } else if (r) {
            r->index = (uint32_t)rb->n_rules;
            rb->rules[rb->n_rules++] = r;
        }
    }
    n = cf_codec_get_u64(&rd);
    if (n > len) rd.bad = true;
    for (uint64_t i = 0; i < n && !rd.bad && !rd.nomem; i++) {
        struct cf_sigma_correlation *c = cf_codec_get_correlation(&rd);
        if (c && grow((void **)&rb->correlations, rb->n_correlations,
                      sizeof(*rb->correlations))) {
            cf_correlation_destroy(c);
            rd.nomem = true;
        } else if (c) {
            rb->correlations[rb->n_correlations++] = c;
        }
    }
    if (get_records(&rd, &rb->rejected, &rb->n_rejected) &&
        get_records(&rd, &rb->converted, &rb->n_converted)) {
        n = cf_codec_get_u64(&rd);
        if (n > len) rd.bad = true;
        for (uint64_t i = 0; i < n && !rd.bad && !rd.nomem; i++) {
            size_t tlen;
            const char *text = cf_codec_view_str(&rd, &tlen);
            bool with_ph = cf_codec_get_u32(&rd) != 0;
            char *path = cf_codec_get_str(&rd);
            json_t *doc = text && !rd.bad && !rd.nomem
                              ? load_filter_doc(text, tlen, &rd)
                              : NULL;
            if (!rd.bad && !rd.nomem && (!doc || !path)) rd.bad = true;
            if (!rd.bad && !rd.nomem &&
                grow((void **)&b->filters, b->n_filters, sizeof(*b->filters)))
                rd.nomem = true;
            if (rd.bad || rd.nomem) {
                json_decref(doc);
                cf_free(path);
                break;
            }
            struct pending_filter *pf = &b->filters[b->n_filters++];
            pf->doc = doc;
            pf->placeholders =
                with_ph && placeholders ? json_incref(placeholders) : NULL;
            pf->path = path;
        }
    }
    if (!rd.bad && !rd.nomem && rd.p != rd.end) rd.bad = true;
    if (rd.bad || rd.nomem) {
        rollback(b, &m);
        if (rd.nomem) b->nomem = true;
        return false;
    }
    rb->n_documents += (size_t)docs;
    return true;
}

static void load_file(struct book *b, const char *path, const struct stat *st,
                      json_t *placeholders) {
    char err[512];
    char *text = NULL;
    size_t len = 0;
    if (read_before(b, st)) {
        if (!b->twice[0])
            snprintf(b->twice, sizeof(b->twice),
                     "rule file %s is loaded twice (two of the rule paths "
                     "given overlap); load each file once",
                     path);
        return;
    }
    b->rb.n_files++;
    /* Only regular files: a named pipe or a device given as the rule
     * path is read every time (its stat says nothing of what it holds). */
    bool cacheable = b->cache && S_ISREG(st->st_mode);
    if (cacheable) {
        size_t blob_len;
        const void *blob =
            cf_rbcache_lookup(b->cache, path, st, &blob_len, &text, &len);
        if (blob) {
            if (replay_outcome(b, blob, blob_len, placeholders)) {
                b->rb.n_cached++;
                return;
            }
            if (b->nomem) return;
            cf_rbcache_reject_last(b->cache, path);
        }
    }
    if (!text && !(text = cf_read_file(path, &len, err, sizeof(err)))) {
        reject(b, path, NULL, err);
        return;
    }
    struct mark m = mark_of(b);
    parse_text(b, path, text, len, placeholders);
    if (cacheable && !b->nomem) {
        struct cf_buf out = CF_BUF_INIT;
        encode_outcome(b, &m, &out);
        if (!out.failed)
            cf_rbcache_put(b->cache, path, st, text, len, out.data, out.len);
        cf_buf_free(&out);
    }
    cf_free(text);
}

/* The directories one cf_rulebook_load() walk has entered, by identity,
 * so a symlink back up the tree (rules/self -> ../rules) is read once
 * rather than followed until MAX_DIR_DEPTH, which would reach every file
 * again and fail the load as "loaded twice".  Per walk: two --rules
 * paths that overlap are still reported as such. */
struct walk {
    struct file_id *dirs;
    size_t n;
};

/* True when the directory `st` describes was entered before in this
 * walk (and says so on stderr); otherwise remembers it.  Out of memory
 * sets b->nomem, as read_before() does. */
static bool walked_before(struct book *b, struct walk *w, const char *path,
                          const struct stat *st) {
    long i = find_id(w->dirs, w->n, st);
    if (i >= 0) {
        fprintf(stderr,
                "chainfuse: warning: skipping %s: it leads back to %s, "
                "already read\n",
                path, w->dirs[i].path);
        return true;
    }
    if (!add_id(&w->dirs, &w->n, st, path)) b->nomem = true;
    return false;
}

static void walk_free(struct walk *w) {
    for (size_t i = 0; i < w->n; i++) cf_free(w->dirs[i].path);
    cf_free(w->dirs);
}

/* A record of getdents64 (the kernel's struct linux_dirent64). */
struct kernel_dirent {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the directory open as `fd` (`dir`), but for hidden ones
 * (., .., .git), sorted so that rule order (and so every output) is the
 * same on every file system, each NUL-terminated, into `out`. */
static cf_err_t list_dir(int fd, const char *dir, struct cf_buf *out,
                         char *errstr, size_t errstr_size) {
    cf_err_t rc = CF_OK;
    char **names = NULL;
    size_t n = 0;
    for (;;) {
        /* 8-aligned, as the kernel lays its records out */
        uint64_t buf[4096];
        long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (got < 0) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_IO,
                           "cannot read rule directory %s: %s", dir,
                           strerror(errno));
            goto cleanup;
        }
        if (got == 0) break;
        for (long at = 0; at < got;) {
            const struct kernel_dirent *e =
                (const struct kernel_dirent *)(const void *)((char *)buf + at);
            at += e->d_reclen;
            if (e->d_name[0] == '.') continue; /* ., .., hidden (.git) */
            if (grow((void **)&names, n, sizeof(*names)) != 0 ||
                !(names[n] = cf_strdup(e->d_name))) {
                rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                               "out of memory");
                goto cleanup;
            }
            n++;
        }
    }
    if (n) qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++)
        cf_buf_append(out, names[i], strlen(names[i]) + 1);
    if (out->failed)
        rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
cleanup:
    for (size_t i = 0; i < n; i++) cf_free(names[i]);
    cf_free(names);
    return rc;
}

static cf_err_t load_dir(struct book *b, struct walk *w, const char *dir,
                         int depth, json_t *placeholders, char *errstr,
                         size_t errstr_size) {
    cf_err_t rc = CF_OK;
    struct cf_buf fresh = CF_BUF_INIT;
    /* open + getdents64 rather than opendir/readdir: opendir also
     * fstat()s the directory, one system call more for each of SigmaHQ's
     * 484 folders, to size a buffer this loop does not need. */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                         "cannot open rule directory %s: %s", dir,
                         strerror(errno));
    /* The listing the cache holds when the directory it has is the one
     * open here (its fstat, not the stat of the path before the open). */
    struct stat dst;
    bool cacheable = b->cache && fstat(fd, &dst) == 0;
    size_t list_len = 0;
    const char *list =
        cacheable ? cf_rbcache_dir_lookup(b->cache, dir, &dst, &list_len)
                  : NULL;
    if (!list) {
        if ((rc = list_dir(fd, dir, &fresh, errstr, errstr_size)) != CF_OK)
            goto cleanup;
        if (cacheable)
            cf_rbcache_dir_put(b->cache, dir, &dst, fresh.data, fresh.len);
        list = fresh.data ? fresh.data : ""; /* no names: no data */
        list_len = fresh.len;
    }
    size_t dlen = strlen(dir);
    for (const char *name = list, *end = list + list_len;
         name < end && !b->nomem;) {
        size_t nlen = strlen(name);
        /* dir/name, copied rather than formatted: snprintf's parsing took
         * a thousand instructions a file */
        char *path = cf_malloc(dlen + nlen + 2);
        if (!path) {
            rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
            goto cleanup;
        }
        memcpy(path, dir, dlen);
        path[dlen] = '/';
        memcpy(path + dlen + 1, name, nlen + 1);
        struct stat st;
        /* Relative to the open directory: the kernel looks up one name,
         * not the whole path again, for each of thousands of files. */
        if (fstatat(fd, name, &st, 0) != 0) {
            /* a dangling link inside a rule tree is not fatal */
        } else if (S_ISDIR(st.st_mode)) {
            if (walked_before(b, w, path, &st)) {
                /* skipped, with a warning */
            } else if (b->nomem) {
                /* reported after the loop */
            } else if (depth >= MAX_DIR_DEPTH) {
                reject(b, path, NULL,
                       "directory nested too deep (more than the loader "
                       "follows); not "
                       "loaded");
            } else {
                char sub[512];
                if (load_dir(b, w, path, depth + 1, placeholders, sub,
                             sizeof(sub)) != CF_OK)
                    reject(b, path, NULL, sub);
            }
        } else if (S_ISREG(st.st_mode) && has_yaml_ext(name)) {
            load_file(b, path, &st, placeholders);
        }
        cf_free(path);
        name += nlen + 1;
    }
cleanup:
    cf_buf_free(&fresh);
    close(fd);
    if (rc == CF_OK && b->nomem)
        rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    return rc;
}

cf_err_t cf_rulebook_load(struct cf_rulebook *rb, const char *path,
                          const struct cf_config *cfg, char *errstr,
                          size_t errstr_size) {
    struct book *b = book_of(rb);
    json_t *placeholders = NULL;
    if (cfg) {
        const json_t *ph = cf_config_section(cfg, "placeholders");
        if (ph && !json_is_object(ph))
            return cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                             "config: placeholders must be a map of name "
                             "to list of values");
        placeholders = (json_t *)ph;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                         "cannot read rules at %s: %s", path, strerror(errno));
    /* Opened after the stat above: the cache's clock must not be later
     * than any read of a rule file (see rulebook_cache.h). */
    b->cache = cf_rbcache_open(cfg ? cfg->cache_dir : NULL, path, placeholders);
    if (S_ISDIR(st.st_mode)) {
        struct walk w = {NULL, 0};
        cf_err_t rc = CF_OK;
        if (!walked_before(b, &w, path, &st) && !b->nomem)
            rc = load_dir(b, &w, path, 0, placeholders, errstr, errstr_size);
        walk_free(&w);
        if (rc != CF_OK) {
            cf_rbcache_close(b->cache, false);
            b->cache = NULL;
            return rc;
        }
    } else {
        /* A single file is read whatever its extension: the user named
         * it. */
        FILE *f = fopen(path, "rb");
        if (!f) {
            cf_rbcache_close(b->cache, false);
            b->cache = NULL;
            return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                             "cannot read rule file %s: %s", path,
                             strerror(errno));
        }
        fclose(f);
        load_file(b, path, &st, placeholders);
    }
    cf_rbcache_close(b->cache, !b->nomem);
    b->cache = NULL;
    if (b->nomem)
        return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    if (b->twice[0]) {
        cf_seterr(errstr, errstr_size, CF_ERR, "%s", b->twice);
        b->twice[0] = '\0';
        return CF_ERR;
    }
    return CF_OK;
}

/* filter.logsource must cover the rule's: each field the filter names
 * must equal the rule's (pySigma: rule.logsource in filter.logsource). */
static bool logsource_covers(const json_t *doc, const struct cf_sigma_rule *r) {
    const json_t *ls = json_object_get(doc, "logsource");
    if (!json_is_object(ls)) return true;
    const char *keys[] = {"product", "category", "service"};
    const char *vals[] = {r->product, r->category, r->service};
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = json_object_get(ls, keys[i]);
        if (!json_is_string(v)) continue;
        if (!vals[i] || strcasecmp(vals[i], json_string_value(v)) != 0)
            return false;
    }
    return true;
}

static bool names_rule(const json_t *rules, const struct cf_sigma_rule *r) {
    size_t n = json_is_array(rules) ? json_array_size(rules) : 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *v =
            json_is_array(rules) ? json_array_get(rules, i) : rules;
        if (!json_is_string(v)) continue;
        const char *s = json_string_value(v);
        if ((r->id && strcmp(s, r->id) == 0) ||
            (r->name && strcmp(s, r->name) == 0))
            return true;
    }
    return false;
}

/* Appends the filter's searches to the rule and makes its condition
 * (original) AND (filter condition). */
static cf_err_t apply_filter(struct cf_sigma_rule *r,
                             const struct pending_filter *pf, size_t k,
                             char *errstr, size_t errstr_size) {
    static const char *const skip[] = {"rules", NULL};
    const json_t *f = json_object_get(pf->doc, "filter");
    struct cf_sigma_search *ss = NULL;
    size_t n = 0;
    struct cf_sigma_cond *cond = NULL, *root = NULL;
    bool used = false;
    char *canon = NULL;
    /* '.' never appears in a Sigma search identifier, so the new names
     * cannot clash with the rule's own. */
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "filter%zu.", k);
    cf_err_t rc =
        cf_sigma_detection_parse(f, skip, prefix, pf->placeholders, &ss, &n,
                                 &cond, &used, errstr, errstr_size);
    if (rc != CF_OK) goto cleanup;
    struct cf_sigma_search *grown =
        cf_realloc(r->searches, (r->n_searches + n) * sizeof(*grown));
    root = cf_calloc(1, sizeof(*root));
    if (root) root->kids = cf_calloc(2, sizeof(*root->kids));
    /* not json_dumps: see cf_buf_json */
    struct cf_buf cb = CF_BUF_INIT;
    cf_buf_json(&cb, pf->doc, JSON_SORT_KEYS | JSON_COMPACT);
    canon = cf_buf_steal(&cb);
    if (grown) r->searches = grown;
    if (!grown || !root || !root->kids || !canon) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    cf_sigma_cond_offset(cond, (uint32_t)r->n_searches);
    memcpy(r->searches + r->n_searches, ss, n * sizeof(*ss));
    r->n_searches += n;
    cf_free(ss);
    ss = NULL;
    n = 0;
    root->op = CF_COND_AND;
    root->n_kids = 2;
    root->kids[0] = *r->condition;
    root->kids[1] = *cond;
    cf_free(r->condition);
    cf_free(cond);
    cond = NULL;
    r->condition = root;
    root = NULL;
    /* The filter changes what the rule matches, so it changes the key of
     * the compile cache too. */
    size_t clen = strlen(canon);
    char *mix = cf_malloc(64 + 1 + clen + 1);
    if (!mix) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    memcpy(mix, r->digest, 64);
    mix[64] = '\n';
    memcpy(mix + 65, canon, clen + 1);
    rc = cf_sigma_sha256_hex(mix, 65 + clen, r->digest);
    cf_free(mix);
cleanup:
    cf_free(canon);
    cf_sigma_searches_free(ss, n);
    cf_sigma_cond_destroy(cond);
    if (root) cf_free(root->kids);
    cf_free(root);
    return rc;
}

/* ---- unique ids and names ---------------------------------------------- */

/* One id or name a rule or correlation answers to. */
struct rule_key {
    const char *key;
    const char *what; /* "rule id", "correlation name", ... */
    const char *path;
    size_t seq; /* load order of its rule or correlation */
};

static void add_key(struct rule_key *k, size_t *n, const char *key,
                    const char *what, const char *path, size_t seq) {
    if (!key) return;
    k[*n] = (struct rule_key){key, what, path, seq};
    (*n)++;
}

/* Rules and correlations share one namespace: a correlation's `rules:`
 * names either, and alerts carry the id.  Two that answer to the same
 * string would emit alerts with the same ids (the same rule loaded
 * twice) or make a reference ambiguous, so that is an error naming both
 * files, the first such pair in load order. */
static cf_err_t check_unique(const struct cf_rulebook *rb, char *errstr,
                             size_t errstr_size) {
    size_t cap = 2 * (rb->n_rules + rb->n_correlations), n = 0;
    if (cap == 0) return CF_OK;
    struct rule_key *k = cf_malloc(cap * sizeof(*k));
    if (!k)
        return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rb->n_rules; i++) {
        const struct cf_sigma_rule *r = rb->rules[i];
        add_key(k, &n, r->id, "rule id", r->path, i);
        if (!r->id || !r->name || strcmp(r->id, r->name) != 0)
            add_key(k, &n, r->name, "rule name", r->path, i);
    }
    for (size_t i = 0; i < rb->n_correlations; i++) {
        const struct cf_sigma_correlation *c = rb->correlations[i];
        add_key(k, &n, c->id, "correlation id", c->path, rb->n_rules + i);
        if (!c->id || !c->name || strcmp(c->id, c->name) != 0)
            add_key(k, &n, c->name, "correlation name", c->path,
                    rb->n_rules + i);
    }
    /* The keys are in load order (seq), so each key's first use is the
     * one in the set when it comes again; the pair to report is the
     * first repeat, the smaller key when one rule repeats two.  A set,
     * not a sort by key: 7,000 keys sorted were 3% of a warm start. */
    size_t cap_slots = 16;
    while (cap_slots < 2 * n) cap_slots *= 2;
    uint32_t *slots = cf_calloc(cap_slots, sizeof *slots);
    if (!slots) {
        cf_free(k);
        return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    }
    const struct rule_key *first[2] = {NULL, NULL};
    size_t more = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(k[i].key), mask = cap_slots - 1;
        size_t at = cf_hash_name(k[i].key, len) & mask;
        while (slots[at] && strcmp(k[slots[at] - 1].key, k[i].key) != 0)
            at = (at + 1) & mask;
        if (!slots[at]) {
            slots[at] = (uint32_t)i + 1;
            continue;
        }
        more++;
        if (!first[0] || (k[i].seq == first[1]->seq &&
                          strcmp(k[i].key, first[1]->key) < 0)) {
            first[0] = &k[slots[at] - 1];
            first[1] = &k[i];
        }
    }
    cf_free(slots);
    cf_err_t rc = CF_OK;
    if (first[0]) {
        char where[900];
        if (strcmp(first[0]->what, first[1]->what) == 0)
            snprintf(where, sizeof(where),
                     "%s %s is used twice: in %s and in %s", first[0]->what,
                     first[0]->key, first[0]->path, first[1]->path);
        else
            snprintf(where, sizeof(where),
                     "%s is used twice: as the %s in %s and as the %s in %s",
                     first[0]->key, first[0]->what, first[0]->path,
                     first[1]->what, first[1]->path);
        char others[64] = "";
        if (--more) snprintf(others, sizeof(others), " (and %zu more)", more);
        rc = cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                       "%s; rule and correlation ids and names must be unique "
                       "(alerts carry them, correlations refer to rules by "
                       "them)%s",
                       where, others);
    }
    cf_free(k);
    return rc;
}

/* ---- correlation references
 * --------------------------------------------------------- */

static const struct cf_sigma_rule *find_rule(const struct cf_rulebook *rb,
                                             const char *ref) {
    for (size_t i = 0; i < rb->n_rules; i++) {
        const struct cf_sigma_rule *r = rb->rules[i];
        if ((r->id && strcmp(r->id, ref) == 0) ||
            (r->name && strcmp(r->name, ref) == 0))
            return r;
    }
    return NULL;
}

static const struct cf_sigma_correlation *
find_corr(const struct cf_rulebook *rb, const char *ref) {
    for (size_t i = 0; i < rb->n_correlations; i++) {
        const struct cf_sigma_correlation *c = rb->correlations[i];
        if ((c->id && strcmp(c->id, ref) == 0) ||
            (c->name && strcmp(c->name, ref) == 0))
            return c;
    }
    return NULL;
}

enum { MARK_NEW = 0, MARK_ACTIVE, MARK_OK, MARK_BAD };

/* Depth-first over correlation references; a correlation reached again
 * while still active closes a cycle.  reasons[i] is set for rejects. */
static void visit(struct cf_rulebook *rb, size_t i, unsigned char *mark,
                  char **reasons) {
    struct cf_sigma_correlation *c = rb->correlations[i];
    char buf[512];
    mark[i] = MARK_ACTIVE;
    for (size_t r = 0; r < c->n_refs; r++) {
        if (!c->refs[r].corr) continue;
        size_t j = c->refs[r].corr->index;
        if (mark[j] == MARK_NEW) visit(rb, j, mark, reasons);
        if (mark[j] == MARK_ACTIVE) {
            snprintf(buf, sizeof(buf),
                     "correlation reference cycle through '%s': a "
                     "correlation cannot depend on itself",
                     c->refs[r].ref);
            if (!(reasons[i] = cf_strdup(buf))) book_of(rb)->nomem = true;
            mark[i] = MARK_BAD;
            return;
        }
        if (mark[j] == MARK_BAD) {
            snprintf(buf, sizeof(buf),
                     "refers to correlation '%s', which was rejected (%s)",
                     c->refs[r].ref, reasons[j] ? reasons[j] : "?");
            if (!(reasons[i] = cf_strdup(buf))) book_of(rb)->nomem = true;
            mark[i] = MARK_BAD;
            return;
        }
    }
    /* Inherit attack tags from the referenced rules when it has none. */
    if (c->n_tactics == 0 && c->n_techniques == 0) {
        for (size_t r = 0; r < c->n_refs; r++) {
            const struct cf_sigma_rule *rule = c->refs[r].rule;
            const struct cf_sigma_correlation *corr = c->refs[r].corr;
            cf_err_t rc = rule ? cf_correlation_inherit_tags(
                                     c, rule->tactics, rule->n_tactics,
                                     rule->techniques, rule->n_techniques)
                               : cf_correlation_inherit_tags(
                                     c, corr->tactics, corr->n_tactics,
                                     corr->techniques, corr->n_techniques);
            if (rc != CF_OK) { /* only allocation can fail */
                book_of(rb)->nomem = true;
                mark[i] = MARK_BAD;
                return;
            }
        }
    }
    mark[i] = MARK_OK;
}

/* Which rules the kept correlations refer to, and whether any of those
 * correlations asks for them stand-alone (`generate: true`).  The
 * specification's default is that only the correlation is generated; a
 * rule two correlations share is written alone when either asks, since
 * the author of that one wants its hits seen. */
static void mark_generated(struct cf_rulebook *rb) {
    for (size_t i = 0; i < rb->n_correlations; i++) {
        const struct cf_sigma_correlation *c = rb->correlations[i];
        for (size_t r = 0; r < c->n_refs; r++) {
            /* the references are borrowed const; the book owns both */
            const struct cf_sigma_rule *rr = c->refs[r].rule;
            struct cf_sigma_rule *rule = rr ? rb->rules[rr->index] : NULL;
            struct cf_sigma_correlation *corr =
                rr ? NULL : rb->correlations[c->refs[r].corr->index];
            bool *correlated = rule ? &rule->correlated : &corr->correlated;
            bool *generated = rule ? &rule->generated : &corr->generated;
            *correlated = true;
            *generated = *generated || c->generate;
        }
    }
}

/* Resolves every correlation's references to loaded rules and
 * correlations, rejects correlations whose references are missing,
 * rejected or cyclic, and numbers the survivors. */
static void resolve_correlations(struct cf_rulebook *rb) {
    size_t n = rb->n_correlations;
    if (n == 0) return;
    unsigned char *mark = cf_calloc(n, 1);
    char **reasons = cf_calloc(n, sizeof(*reasons));
    char buf[512];
    if (!mark || !reasons) {
        book_of(rb)->nomem = true;
        goto done;
    }
    for (size_t i = 0; i < n; i++) rb->correlations[i]->index = (uint32_t)i;
    for (size_t i = 0; i < n; i++) {
        struct cf_sigma_correlation *c = rb->correlations[i];
        for (size_t r = 0; r < c->n_refs; r++) {
            c->refs[r].rule = find_rule(rb, c->refs[r].ref);
            c->refs[r].corr =
                c->refs[r].rule ? NULL : find_corr(rb, c->refs[r].ref);
            if (!c->refs[r].rule && !c->refs[r].corr && !reasons[i]) {
                snprintf(buf, sizeof(buf),
                         "refers to rule '%s', which is not loaded (no rule "
                         "or correlation has that id or name; load it with "
                         "--rules or fix the reference)",
                         c->refs[r].ref);
                if (!(reasons[i] = cf_strdup(buf))) book_of(rb)->nomem = true;
                mark[i] = MARK_BAD;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (mark[i] == MARK_NEW) visit(rb, i, mark, reasons);
    /* Out of memory: no correlation is rejected for it (finish fails and
     * the caller destroys the rulebook). */
    if (book_of(rb)->nomem) goto done;

    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        struct cf_sigma_correlation *c = rb->correlations[i];
        if (mark[i] == MARK_BAD) {
            reject(book_of(rb), c->path, c->id,
                   reasons[i] ? reasons[i] : "correlation rejected");
            cf_correlation_destroy(c);
        } else {
            rb->correlations[kept++] = c;
        }
    }
    rb->n_correlations = kept;
    for (size_t i = 0; i < kept; i++) rb->correlations[i]->index = (uint32_t)i;
    mark_generated(rb);
done:
    if (reasons)
        for (size_t i = 0; i < n; i++) cf_free(reasons[i]);
    cf_free(reasons);
    cf_free(mark);
}

cf_err_t cf_rulebook_finish(struct cf_rulebook *rb, char *errstr,
                            size_t errstr_size) {
    struct book *b = book_of(rb);
    char why[900], reason[1024];
    cf_err_t rc = check_unique(rb, errstr, errstr_size);
    if (rc != CF_OK) return rc;
    for (size_t k = 0; k < b->n_filters; k++) {
        const struct pending_filter *pf = &b->filters[k];
        const json_t *rules =
            json_object_get(json_object_get(pf->doc, "filter"), "rules");
        bool applied = false;
        for (size_t i = 0; i < rb->n_rules; i++) {
            struct cf_sigma_rule *r = rb->rules[i];
            if (!names_rule(rules, r) || !logsource_covers(pf->doc, r))
                continue;
            cf_err_t frc = apply_filter(r, pf, k, why, sizeof(why));
            if (frc != CF_OK) {
                snprintf(reason, sizeof(reason),
                         "filter could not be applied to rule %s: %s",
                         r->id      ? r->id
                         : r->title ? r->title
                                    : "?",
                         why);
                reject(b, pf->path, doc_id(pf->doc),
                       frc == CF_ERR_NOMEM ? "out of memory" : reason);
                continue;
            }
            applied = true;
        }
        if (applied) rb->n_filters++;
        clear_filter(&b->filters[k]);
    }
    b->n_filters = 0;
    resolve_correlations(rb);
    if (b->nomem)
        return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    return CF_OK;
}
