/*
 * detect.c - decode, route and match one record (see detect.h).
 */
#include "detect.h"

#include "alloc.h"

struct cf_detector {
    struct cf_decoder *dec;
    struct cf_matcher *matcher;
    const struct cf_decode_limits *limits;
    uint64_t scan_errors, route_failures; /* the matcher's, last seen */
};

struct collect {
    struct cf_detect_list *list;
    bool lost;
};

static void collect_match(const struct cf_sigma_rule *rule, void *opaque) {
    struct collect *c = opaque;
    struct cf_detect_list *l = c->list;
    if (c->lost) return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        const struct cf_sigma_rule **nv = cf_realloc(l->v, nc * sizeof *nv);
        if (!nv) {
            c->lost = true;
            return;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = rule;
}

static bool is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

struct cf_detector *cf_detector_new(const struct cf_ruleset *rs,
                                    const struct cf_time_names *times,
                                    const struct cf_decode_limits *limits) {
    struct cf_detector *d = cf_calloc(1, sizeof *d);
    if (!d) return NULL;
    d->limits = limits;
    if (!(d->dec = cf_decoder_new()) || !(d->matcher = cf_matcher_new(rs))) {
        cf_detector_destroy(d);
        return NULL;
    }
    if (times) cf_decoder_set_time_names(d->dec, times);
    return d;
}

void cf_detector_destroy(struct cf_detector *d) {
    if (!d) return;
    cf_matcher_destroy(d->matcher);
    cf_decoder_destroy(d->dec);
    cf_free(d);
}

void cf_detect(struct cf_detector *d, const struct cf_record *rec,
               struct cf_event *ev, struct cf_detect_list *list,
               struct cf_detected *out) {
    *out = (struct cf_detected){.kind = CF_DETECT_EVENT};
    if (rec->defect) {
        out->kind = CF_DETECT_DEFECT;
        out->reason = rec->defect;
        return;
    }
    if (is_blank(rec->data, rec->len)) {
        out->kind = CF_DETECT_BLANK;
        return;
    }
    const char *reason = NULL;
    if (cf_event_decode(d->dec, ev, rec->data, rec->len, d->limits, &reason) !=
        CF_OK) {
        out->kind = CF_DETECT_UNDECODED;
        out->reason = reason ? reason : CF_DEFECT_INVALID_JSON;
        return;
    }
    ev->pos = rec->pos;
    struct collect c = {list, false};
    size_t first = list->n;
    cf_matcher_match(d->matcher, ev, collect_match, &c);
    if (c.lost) {
        list->n = first;
        out->matches_lost = true;
    }
    out->first_match = first;
    out->n_matches = list->n - first;
    const char *why;
    uint64_t se = cf_matcher_scan_errors(d->matcher, &why);
    uint64_t rf = cf_matcher_route_failures(d->matcher);
    out->scan_errors = (uint32_t)(se - d->scan_errors);
    out->route_failures = (uint32_t)(rf - d->route_failures);
    if (out->scan_errors) out->scan_error = why;
    d->scan_errors = se;
    d->route_failures = rf;
}

void cf_detect_list_free(struct cf_detect_list *l) {
    cf_free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}
