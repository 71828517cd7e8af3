/*
 * incident.c - incident state, scoring, summary and JSON record (see
 * incident.h).  Called by fusion only; no shared state.
 */
#include "incident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "timeutil.h"

struct cf_incident *cf_incident_new(uint64_t serial,
                                    const struct cf_alert *first) {
    struct cf_incident *inc = cf_calloc(1, sizeof *inc);
    if (!inc) return NULL;
    inc->serial = serial;
    /* The id digests the opening alert's id, which itself digests rule and
     * event: the same input gives the same incident ids on every replay. */
    if (!cf_digest_hex128(first->id, strlen(first->id), inc->id)) {
        cf_free(inc);
        return NULL;
    }
    inc->first_ms = INT64_MAX;
    inc->last_ms = INT64_MIN;
    inc->first_rule_title = first->rule_title;
    return inc;
}

void cf_incident_destroy(struct cf_incident *inc) {
    if (!inc) return;
    for (size_t i = 0; i < inc->n_links; i++) cf_free(inc->links[i].value);
    for (size_t i = 0; i < inc->n_rules; i++) cf_free(inc->rules[i].host_raw);
    for (size_t i = 0; i < inc->n_entities; i++) {
        cf_free(inc->entities[i].value);
        cf_free(inc->entities[i].raw);
    }
    cf_free(inc->links);
    cf_free(inc->entities);
    cf_free(inc->rules);
    cf_free(inc->aliases);
    cf_free(inc);
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return CF_OK;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) ncap *= 2;
    void *n = cf_realloc(*arr, ncap * elem);
    if (!n) return CF_ERR_NOMEM;
    *arr = n;
    *cap = ncap;
    return CF_OK;
}

/* Stages, one per tactic, stay sorted by first appearance; ties (one
 * alert tagging several tactics) in kill-chain order, then by name, so
 * the list never depends on the order tags were written in. */
static bool stage_before(int64_t t, int stage, const char *tactic,
                         const struct cf_incident_stage *o) {
    if (t != o->first_ms) return t < o->first_ms;
    if (stage != o->stage) return stage < o->stage;
    return strcmp(tactic, o->tactic) < 0;
}

static void add_stage(struct cf_incident *inc, int stage, const char *tactic,
                      int64_t t, uint32_t count) {
    size_t i;
    for (i = 0; i < inc->n_stages; i++) {
        if (strcmp(inc->stages[i].tactic, tactic) != 0) continue;
        inc->stages[i].alert_count += count;
        if (t >= inc->stages[i].first_ms) return;
        /* earlier sighting (merge): move it to its new place */
        struct cf_incident_stage s = inc->stages[i];
        memmove(&inc->stages[i], &inc->stages[i + 1],
                (inc->n_stages - i - 1) * sizeof s);
        inc->n_stages--;
        count = s.alert_count;
        break;
    }
    if (inc->n_stages >= CF_KILLCHAIN_TACTICS) return;
    struct cf_incident_stage ns = {stage, tactic, t, count};
    for (i = 0; i < inc->n_stages; i++)
        if (stage_before(t, stage, tactic, &inc->stages[i])) break;
    memmove(&inc->stages[i + 1], &inc->stages[i],
            (inc->n_stages - i) * sizeof ns);
    inc->stages[i] = ns;
    inc->n_stages++;
}

static cf_err_t add_entity(struct cf_incident *inc, int kind, const char *value,
                           const char *raw,
                           const struct cf_incident_limits *lim) {
    for (size_t i = 0; i < inc->n_entities; i++)
        if (inc->entities[i].kind == kind &&
            strcmp(inc->entities[i].value, value) == 0)
            return CF_OK;
    if (inc->n_entities >= lim->max_entities) {
        inc->truncated = true;
        return CF_OK;
    }
    if (grow((void **)&inc->entities, &inc->cap_entities, inc->n_entities + 1,
             sizeof *inc->entities))
        return CF_ERR_NOMEM;
    struct cf_incident_entity *e = &inc->entities[inc->n_entities];
    e->kind = kind;
    e->value = cf_strdup(value);
    e->raw = cf_strdup(raw);
    if (!e->value || !e->raw) {
        cf_free(e->value);
        cf_free(e->raw);
        return CF_ERR_NOMEM;
    }
    inc->n_entities++;
    return CF_OK;
}

/* Adds `count` alerts of rule entry `r` (rule on one host; its strings
 * are copied) to the incident's entry for the same rule and host. */
static cf_err_t add_rule(struct cf_incident *inc,
                         const struct cf_incident_rule *r, uint32_t count,
                         const struct cf_incident_limits *lim) {
    for (size_t i = 0; i < inc->n_rules; i++) {
        struct cf_incident_rule *o = &inc->rules[i];
        if (o->host != r->host ||
            !((o->id == r->id) ||
              (o->id && r->id && strcmp(o->id, r->id) == 0)))
            continue;
        o->alert_count += count;
        o->folded += r->folded;
        o->noisy = o->noisy || r->noisy;
        if (r->first_ms < o->first_ms) o->first_ms = r->first_ms;
        if (r->last_ms > o->last_ms) o->last_ms = r->last_ms;
        return CF_OK;
    }
    if (inc->n_rules >= lim->max_rules) {
        inc->truncated = true;
        return CF_OK;
    }
    if (grow((void **)&inc->rules, &inc->cap_rules, inc->n_rules + 1,
             sizeof *inc->rules))
        return CF_ERR_NOMEM;
    struct cf_incident_rule *n = &inc->rules[inc->n_rules];
    *n = *r;
    n->alert_count = count;
    n->host_raw = NULL;
    if (r->host_raw && !(n->host_raw = cf_strdup(r->host_raw)))
        return CF_ERR_NOMEM;
    inc->n_rules++;
    return CF_OK;
}

static cf_err_t add_link(struct cf_incident *inc, const char *alert_id,
                         const struct cf_incident_link *from,
                         const struct cf_incident_limits *lim) {
    if (inc->n_links >= lim->max_alerts) {
        inc->truncated = true;
        return CF_OK;
    }
    if (grow((void **)&inc->links, &inc->cap_links, inc->n_links + 1,
             sizeof *inc->links))
        return CF_ERR_NOMEM;
    struct cf_incident_link *l = &inc->links[inc->n_links];
    *l = *from;
    memcpy(l->alert_id, alert_id, 33);
    l->alert_id[32] = '\0';
    l->value = NULL;
    if (from->kind >= 0 && from->value && !(l->value = cf_strdup(from->value)))
        return CF_ERR_NOMEM;
    inc->n_links++;
    return CF_OK;
}

/* Adds one alert's tactics to the stages.  One alert counts once per
 * tactic even if tagged twice ("attack.defense_evasion" and
 * "attack.defense-evasion"); a second tactic at the same position is a
 * stage of its own. */
static void add_tactics(struct cf_incident *inc, char *const *tactics, size_t n,
                        int64_t t, uint32_t count) {
    for (size_t i = 0; i < n; i++) {
        const char *name;
        int stage = cf_killchain_stage(tactics[i], &name);
        if (!stage) continue;
        bool seen = false;
        for (size_t j = 0; j < i; j++) {
            const char *other;
            cf_killchain_stage(tactics[j], &other);
            if (other == name) seen = true;
        }
        if (!seen) add_stage(inc, stage, name, t, count);
    }
}

cf_err_t cf_incident_add(struct cf_incident *inc, const struct cf_alert *alert,
                         int64_t time_ms, const struct cf_norm_entities *ne,
                         uint32_t host, const struct cf_incident_why *why,
                         bool context, const struct cf_incident_limits *lim) {
    cf_err_t rc = CF_OK;
    /* Context sets no bound: an hour of hunting-rule hits around an
     * intrusion must not make it look an hour longer. */
    if (!context && inc->noise_bounds) {
        inc->first_ms = INT64_MAX;
        inc->last_ms = INT64_MIN;
        inc->noise_bounds = false;
    }
    if (!context || inc->first_ms == INT64_MAX) {
        if (time_ms < inc->first_ms) inc->first_ms = time_ms;
        if (time_ms >= inc->last_ms) {
            inc->last_ms = time_ms;
            inc->last_pos = alert->pos;
        }
    }
    inc->alert_count++;
    if ((unsigned)alert->level < 5) inc->level_count[alert->level]++;
    if (alert->is_correlation) inc->correlation_alerts++;
    inc->dirty = true;
    if (!context)
        add_tactics(inc, alert->tactics, alert->n_tactics, time_ms, 1);
    struct cf_incident_rule r = {
        .id = alert->rule_id,
        .title = alert->rule_title,
        .level = alert->level,
        .host = host,
        .host_raw = host ? (char *)ne->raw[CF_ENTITY_HOST] : NULL,
        .tactics = alert->tactics,
        .n_tactics = alert->n_tactics,
        .first_ms = context ? INT64_MAX : time_ms,
        .last_ms = context ? INT64_MIN : time_ms,
    };
    if ((rc = add_rule(inc, &r, 1, lim))) goto done;
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        if (context && k == CF_ENTITY_USER) continue;
        if (ne->raw[k] && ne->len[k] &&
            (rc = add_entity(inc, k, ne->value[k], ne->raw[k], lim)))
            goto done;
    }
    struct cf_incident_link l = {
        .kind = why->kind,
        .value = (char *)why->value,
        .strong = why->strong,
        .hosts = why->hosts,
        .accounts = why->accounts,
        .saturated = why->saturated,
    };
    rc = add_link(inc, alert->id, &l, lim);
done:
    return rc;
}

/* Stages, levels and time bounds again from the rule entries that are
 * not noise (after one became noise). */
static void recount(struct cf_incident *inc) {
    int64_t first = INT64_MAX, last = INT64_MIN;
    inc->n_stages = 0;
    for (size_t i = 0; i < inc->n_rules; i++) {
        const struct cf_incident_rule *r = &inc->rules[i];
        if (r->noisy || r->first_ms == INT64_MAX) continue;
        add_tactics(inc, r->tactics, r->n_tactics, r->first_ms, r->alert_count);
        if (r->first_ms < first) first = r->first_ms;
        if (r->last_ms > last) last = r->last_ms;
    }
    /* An incident of noise only keeps the bounds it had, until an alert
     * that counts comes. */
    inc->noise_bounds = first == INT64_MAX;
    if (first != INT64_MAX) {
        inc->first_ms = first;
        inc->last_ms = last;
    }
}

static struct cf_incident_rule *find_rule(struct cf_incident *inc,
                                          const char *rule_id, uint32_t host) {
    for (size_t i = 0; i < inc->n_rules; i++) {
        struct cf_incident_rule *r = &inc->rules[i];
        if (r->host == host &&
            (r->id == rule_id ||
             (r->id && rule_id && strcmp(r->id, rule_id) == 0)))
            return r;
    }
    return NULL;
}

bool cf_incident_mark_noisy(struct cf_incident *inc, const char *rule_id,
                            uint32_t host) {
    struct cf_incident_rule *r = find_rule(inc, rule_id, host);
    if (!r) return false;
    if (r->noisy) return true;
    r->noisy = true;
    if ((unsigned)r->level < 5) {
        uint64_t n = r->alert_count;
        inc->level_count[r->level] -=
            n < inc->level_count[r->level] ? n : inc->level_count[r->level];
    }
    inc->noisy = true;
    inc->dirty = true;
    recount(inc);
    return true;
}

void cf_incident_fold(struct cf_incident *inc, const char *rule_id,
                      uint32_t host) {
    struct cf_incident_rule *r = find_rule(inc, rule_id, host);
    if (r) r->folded++;
    inc->duplicates++;
    inc->noisy = true;
    inc->dirty = true;
}

void cf_incident_count_duplicate(struct cf_incident *inc,
                                 const char *alert_id) {
    inc->duplicates++;
    inc->dirty = true;
    for (size_t i = inc->n_links; i-- > 0;) {
        if (memcmp(inc->links[i].alert_id, alert_id, 32) == 0) {
            inc->links[i].duplicates++;
            break;
        }
    }
}

cf_err_t cf_incident_merge(struct cf_incident *dst, struct cf_incident *src,
                           const struct cf_incident_limits *lim) {
    cf_err_t rc = CF_OK;
    if (dst->noise_bounds && !src->noise_bounds) {
        dst->first_ms = src->first_ms;
        dst->last_ms = src->last_ms;
        dst->noise_bounds = false;
    } else if (src->noise_bounds && !dst->noise_bounds) {
        src->first_ms = dst->first_ms; /* noise sets no bound */
        src->last_ms = dst->last_ms;
    }
    if (src->first_ms < dst->first_ms) {
        dst->first_ms = src->first_ms;
        dst->first_rule_title = src->first_rule_title;
    }
    if (src->last_ms > dst->last_ms) {
        dst->last_ms = src->last_ms;
        dst->last_pos = src->last_pos;
    }
    dst->alert_count += src->alert_count;
    dst->duplicates += src->duplicates;
    dst->correlation_alerts += src->correlation_alerts;
    for (int l = 0; l < 5; l++) dst->level_count[l] += src->level_count[l];
    dst->truncated = dst->truncated || src->truncated;
    dst->noisy = dst->noisy || src->noisy;
    dst->dirty = true;
    for (size_t i = 0; i < src->n_stages; i++)
        add_stage(dst, src->stages[i].stage, src->stages[i].tactic,
                  src->stages[i].first_ms, src->stages[i].alert_count);
    for (size_t i = 0; i < src->n_rules; i++)
        if ((rc =
                 add_rule(dst, &src->rules[i], src->rules[i].alert_count, lim)))
            goto done;
    for (size_t i = 0; i < src->n_entities; i++)
        if ((rc = add_entity(dst, src->entities[i].kind, src->entities[i].value,
                             src->entities[i].raw, lim)))
            goto done;
    for (size_t i = 0; i < src->n_links; i++)
        if ((rc = add_link(dst, src->links[i].alert_id, &src->links[i], lim)))
            goto done;
    /* A rule that is noise in one half is noise in the whole. */
    if (dst->noisy && !dst->truncated) {
        memset(dst->level_count, 0, sizeof dst->level_count);
        for (size_t i = 0; i < dst->n_rules; i++)
            if (!dst->rules[i].noisy && (unsigned)dst->rules[i].level < 5)
                dst->level_count[dst->rules[i].level] +=
                    dst->rules[i].alert_count;
        recount(dst);
    }
done:
    return rc;
}

/* Distinct rules (an entry is a rule on one host), noise included. */
static size_t distinct_rules(const struct cf_incident *inc) {
    size_t n = 0;
    for (size_t i = 0; i < inc->n_rules; i++) {
        bool again = false;
        for (size_t j = 0; j < i && !again; j++)
            again = inc->rules[j].id == inc->rules[i].id ||
                    (inc->rules[j].id && inc->rules[i].id &&
                     strcmp(inc->rules[j].id, inc->rules[i].id) == 0);
        if (!again) n++;
    }
    return n;
}

enum cf_level cf_incident_max_level(const struct cf_incident *inc) {
    for (int l = 4; l > 0; l--)
        if (inc->level_count[l]) return (enum cf_level)l;
    return CF_LEVEL_INFORMATIONAL;
}

size_t cf_incident_positions(const struct cf_incident *inc) {
    bool seen[CF_KILLCHAIN_STAGES + 1] = {false};
    size_t n = 0;
    for (size_t i = 0; i < inc->n_stages; i++) {
        int p = inc->stages[i].stage;
        if (p < 1 || p > CF_KILLCHAIN_STAGES || seen[p]) continue;
        seen[p] = true;
        n++;
    }
    return n;
}

bool cf_incident_raised(const struct cf_incident *inc, unsigned min_stages) {
    return cf_incident_positions(inc) >= min_stages ||
           cf_incident_max_level(inc) >= CF_LEVEL_HIGH;
}

static size_t count_kind(const struct cf_incident *inc, int kind) {
    size_t n = 0;
    for (size_t i = 0; i < inc->n_entities; i++)
        if (inc->entities[i].kind == kind) n++;
    return n;
}

static int furthest_stage(const struct cf_incident *inc) {
    int f = 0;
    for (size_t i = 0; i < inc->n_stages; i++)
        if (inc->stages[i].stage > f) f = inc->stages[i].stage;
    return f;
}

/* The tactic named at the furthest position, as the alerts tagged it
 * (the first seen there), so an incident of "stealth" alerts does not
 * report reaching "defense-evasion". */
static const char *furthest_tactic(const struct cf_incident *inc) {
    int f = furthest_stage(inc);
    for (size_t i = 0; i < inc->n_stages; i++)
        if (inc->stages[i].stage == f) return inc->stages[i].tactic;
    return NULL;
}

/* Pairs of consecutive stages (by first appearance) that move forward
 * along the chain, and those that move back; two tactics at one position
 * (stealth, defense-impairment) side by side are neither. */
static size_t forward_steps(const struct cf_incident *inc) {
    size_t n = 0;
    for (size_t i = 1; i < inc->n_stages; i++)
        if (inc->stages[i].stage > inc->stages[i - 1].stage) n++;
    return n;
}

static size_t backward_steps(const struct cf_incident *inc) {
    size_t n = 0;
    for (size_t i = 1; i < inc->n_stages; i++)
        if (inc->stages[i].stage < inc->stages[i - 1].stage) n++;
    return n;
}

int cf_incident_score(const struct cf_incident *inc) {
    /* Weights chosen so that one high alert alone lands in "high" only
     * through its level floor, while several stages moving forward along
     * the chain, on several machines or accounts, push towards critical. */
    static const int level_weight[5] = {2, 6, 14, 26, 36};
    int score = level_weight[cf_incident_max_level(inc)];
    size_t serious = 0;
    for (size_t i = 0; i < inc->n_rules; i++) {
        const struct cf_incident_rule *r = &inc->rules[i];
        if (r->noisy || r->level < CF_LEVEL_MEDIUM) continue;
        bool again = false; /* the same rule on another host */
        for (size_t j = 0; j < i && !again; j++)
            again = !inc->rules[j].noisy && inc->rules[j].id && r->id &&
                    strcmp(inc->rules[j].id, r->id) == 0;
        if (!again) serious++;
    }
    score += serious > 6 ? 6 : (int)serious;
    size_t positions = cf_incident_positions(inc);
    if (positions >= 2) {
        size_t extra = positions - 1, fwd = forward_steps(inc),
               steps = fwd + backward_steps(inc);
        score += extra > 4 ? 28 : (int)extra * 7;
        if (steps) score += (int)(8 * fwd / steps);
    }
    score += furthest_stage(inc) * 8 / CF_KILLCHAIN_STAGES;
    size_t hosts = count_kind(inc, CF_ENTITY_HOST);
    size_t users = count_kind(inc, CF_ENTITY_USER);
    if (hosts > 1) score += hosts > 3 ? 8 : (int)(hosts - 1) * 4;
    if (users > 1) score += users > 4 ? 6 : (int)(users - 1) * 2;
    return score > 100 ? 100 : score;
}

enum cf_level cf_incident_severity(const struct cf_incident *inc) {
    int score = cf_incident_score(inc);
    enum cf_level sev = score >= 75   ? CF_LEVEL_CRITICAL
                        : score >= 55 ? CF_LEVEL_HIGH
                        : score >= 35 ? CF_LEVEL_MEDIUM
                        : score >= 15 ? CF_LEVEL_LOW
                                      : CF_LEVEL_INFORMATIONAL;
    enum cf_level floor = cf_incident_max_level(inc);
    return sev > floor ? sev : floor;
}

/* "a, b and c" for up to `max` entities of a kind, "+ N more" beyond. */
static void text_entities(struct cf_buf *t, const struct cf_incident *inc,
                          int kind, size_t max) {
    size_t total = count_kind(inc, kind), shown = 0;
    for (size_t i = 0; i < inc->n_entities && shown < max; i++) {
        if (inc->entities[i].kind != kind) continue;
        const char *sep =
            shown == 0                                                 ? ""
            : (shown + 1 == total || shown + 1 == max) && total <= max ? " and "
                                                                       : ", ";
        cf_buf_printf(t, "%s%s", sep, inc->entities[i].raw);
        shown++;
    }
    if (total > shown) cf_buf_printf(t, " and %zu more", total - shown);
}

static const char *first_raw(const struct cf_incident *inc, int kind) {
    for (size_t i = 0; i < inc->n_entities; i++)
        if (inc->entities[i].kind == kind) return inc->entities[i].raw;
    return NULL;
}

static char *make_title(const struct cf_incident *inc) {
    struct cf_buf t = CF_BUF_INIT;
    const char *host = first_raw(inc, CF_ENTITY_HOST);
    const char *user = first_raw(inc, CF_ENTITY_USER);
    const char *where = host ? host : user ? user : "unknown host";
    if (cf_incident_positions(inc) >= 2) {
        cf_buf_printf(&t, "%zu-stage activity on %s: %s to %s",
                      cf_incident_positions(inc), where, inc->stages[0].tactic,
                      inc->stages[inc->n_stages - 1].tactic);
    } else {
        const char *rule =
            inc->first_rule_title ? inc->first_rule_title : "alert";
        enum cf_level top = cf_incident_max_level(inc);
        for (size_t i = 0; i < inc->n_rules; i++)
            if (!inc->rules[i].noisy && inc->rules[i].level == top &&
                inc->rules[i].title) {
                rule = inc->rules[i].title;
                break;
            }
        cf_buf_printf(&t, "%s on %s", rule, where);
    }
    return cf_buf_steal(&t);
}

static char *make_summary(const struct cf_incident *inc) {
    struct cf_buf t = CF_BUF_INIT;
    char when[32], until[32];
    cf_time_format(inc->first_ms, when);
    cf_time_format(inc->last_ms, until);
    const char *host = first_raw(inc, CF_ENTITY_HOST);
    const char *user = first_raw(inc, CF_ENTITY_USER);
    cf_buf_printf(&t, "Started at %s", when);
    if (host) cf_buf_printf(&t, " on host %s", host);
    if (user) cf_buf_printf(&t, " under account %s", user);
    if (inc->first_rule_title)
        cf_buf_printf(&t, " with \"%s\"", inc->first_rule_title);
    cf_buf_printf(&t, ".");
    if (inc->n_stages == 1) {
        cf_buf_printf(&t, " It covers one kill-chain stage: %s.",
                      inc->stages[0].tactic);
    } else if (inc->n_stages) {
        size_t positions = cf_incident_positions(inc);
        cf_buf_printf(&t, " It went through %zu kill-chain stage%s", positions,
                      positions == 1 ? "" : "s");
        if (positions != inc->n_stages)
            cf_buf_printf(&t, " (%zu tactics)", inc->n_stages);
        cf_buf_printf(&t, " in this order: ");
        for (size_t i = 0; i < inc->n_stages; i++)
            cf_buf_printf(&t, "%s%s",
                          i == 0                   ? ""
                          : i + 1 == inc->n_stages ? " then "
                                                   : ", ",
                          inc->stages[i].tactic);
        cf_buf_printf(&t, ", reaching %s.", furthest_tactic(inc));
    } else {
        cf_buf_printf(&t, " Its alerts carry no ATT&CK tactic.");
    }
    cf_buf_printf(&t, " %llu alert%s from %zu rule%s until %s",
                  (unsigned long long)inc->alert_count,
                  inc->alert_count == 1 ? "" : "s", distinct_rules(inc),
                  distinct_rules(inc) == 1 ? "" : "s", until);
    if (inc->duplicates)
        cf_buf_printf(&t, " (plus %llu duplicate%s)",
                      (unsigned long long)inc->duplicates,
                      inc->duplicates == 1 ? "" : "s");
    cf_buf_printf(&t, ".");
    if (count_kind(inc, CF_ENTITY_HOST)) {
        cf_buf_printf(&t, " Hosts: ");
        text_entities(&t, inc, CF_ENTITY_HOST, 5);
        cf_buf_printf(&t, ".");
    }
    if (count_kind(inc, CF_ENTITY_USER)) {
        cf_buf_printf(&t, " Accounts: ");
        text_entities(&t, inc, CF_ENTITY_USER, 5);
        cf_buf_printf(&t, ".");
    }
    if (inc->noisy)
        cf_buf_printf(&t,
                      " Some rules fire here all the time (see noise): their "
                      "alerts are counted as duplicates and set no stage, "
                      "severity or time.");
    if (inc->truncated)
        cf_buf_printf(&t,
                      " The incident hit a size cap: its lists are cut, its "
                      "counts are complete.");
    return cf_buf_steal(&t);
}

static json_t *time_json(int64_t ms) {
    char buf[32];
    if (ms == INT64_MAX || ms == INT64_MIN || ms == CF_TIME_UNKNOWN)
        return json_null();
    cf_time_format(ms, buf);
    return json_string(buf);
}

json_t *cf_incident_to_json(const struct cf_incident *inc, const char *status,
                            const char *merged_into) {
    json_t *rec = json_object();
    json_t *stages = json_array(), *ents = json_object(), *ids = json_array(),
           *rules = json_array(), *links = json_array(), *prog = json_object();
    char *title = make_title(inc), *summary = make_summary(inc);
    int furthest = furthest_stage(inc);
    /* Every set and append below fails (releasing the value) when memory
     * runs out; a record short of a member is not returned at all. */
    bool ok = true;
    if (!rec || !stages || !ents || !ids || !rules || !links || !prog ||
        !title || !summary)
        goto fail;

    ok &= !json_object_set_new(rec, "kind", json_string("incident"));
    ok &= !json_object_set_new(rec, "id", json_string(inc->id));
    ok &= !json_object_set_new(rec, "version", json_integer(inc->version));
    ok &= !json_object_set_new(rec, "status", json_string(status));
    ok &= !json_object_set_new(
        rec, "severity", json_string(cf_level_name(cf_incident_severity(inc))));
    ok &= !json_object_set_new(rec, "score",
                               json_integer(cf_incident_score(inc)));
    ok &= !json_object_set_new(rec, "title", json_string(title));
    ok &= !json_object_set_new(rec, "summary", json_string(summary));
    ok &= !json_object_set_new(rec, "first_seen", time_json(inc->first_ms));
    ok &= !json_object_set_new(rec, "last_seen", time_json(inc->last_ms));

    for (size_t i = 0; i < inc->n_stages; i++) {
        json_t *s = json_object();
        ok &= !json_object_set_new(s, "tactic",
                                   json_string(inc->stages[i].tactic));
        ok &= !json_object_set_new(s, "position",
                                   json_integer(inc->stages[i].stage));
        ok &= !json_object_set_new(s, "first_seen",
                                   time_json(inc->stages[i].first_ms));
        ok &= !json_object_set_new(s, "alert_count",
                                   json_integer(inc->stages[i].alert_count));
        ok &= !json_array_append_new(stages, s);
    }
    ok &= !json_object_set_new(rec, "stages", stages);
    stages = NULL;

    ok &= !json_object_set_new(
        prog, "distinct_stages",
        json_integer((json_int_t)cf_incident_positions(inc)));
    ok &= !json_object_set_new(prog, "distinct_tactics",
                               json_integer((json_int_t)inc->n_stages));
    ok &= !json_object_set_new(prog, "furthest_stage",
                               furthest ? json_string(furthest_tactic(inc))
                                        : json_null());
    ok &=
        !json_object_set_new(prog, "furthest_position", json_integer(furthest));
    ok &= !json_object_set_new(prog, "chain_length",
                               json_integer(CF_KILLCHAIN_STAGES));
    ok &= !json_object_set_new(prog, "forward_steps",
                               json_integer((json_int_t)forward_steps(inc)));
    ok &= !json_object_set_new(
        prog, "in_order",
        json_boolean(inc->n_stages > 0 && backward_steps(inc) == 0));
    ok &= !json_object_set_new(rec, "progression", prog);
    prog = NULL;

    /* Always the three lists people look for first, then the others
     * present. */
    ok &= !json_object_set_new(ents, "hosts", json_array());
    ok &= !json_object_set_new(ents, "users", json_array());
    ok &= !json_object_set_new(ents, "ips", json_array());
    for (size_t i = 0; i < inc->n_entities; i++) {
        const char *key = cf_entity_kind_plural(inc->entities[i].kind);
        json_t *list = json_object_get(ents, key);
        if (!list) {
            list = json_array();
            /* on failure the set has released list: stop here */
            if (!list || json_object_set_new(ents, key, list)) goto fail;
        }
        ok &= !json_array_append_new(list, json_string(inc->entities[i].raw));
    }
    ok &= !json_object_set_new(rec, "entities", ents);
    ents = NULL;

    ok &= !json_object_set_new(rec, "alert_count",
                               json_integer((json_int_t)inc->alert_count));
    for (size_t i = 0; i < inc->n_links; i++)
        ok &= !json_array_append_new(ids, json_string(inc->links[i].alert_id));
    ok &= !json_object_set_new(rec, "alert_ids", ids);
    ids = NULL;
    ok &= !json_object_set_new(rec, "duplicates",
                               json_integer((json_int_t)inc->duplicates));
    /* One entry per rule (entries are per rule and host), noise apart. */
    for (size_t i = 0; i < inc->n_rules; i++) {
        const struct cf_incident_rule *ri = &inc->rules[i];
        bool again = false;
        uint64_t count = 0;
        for (size_t j = 0; j < i && !again; j++)
            again = !inc->rules[j].noisy && !ri->noisy &&
                    (inc->rules[j].id == ri->id ||
                     (inc->rules[j].id && ri->id &&
                      strcmp(inc->rules[j].id, ri->id) == 0));
        if (ri->noisy || again) continue;
        for (size_t j = i; j < inc->n_rules; j++)
            if (!inc->rules[j].noisy &&
                (inc->rules[j].id == ri->id ||
                 (inc->rules[j].id && ri->id &&
                  strcmp(inc->rules[j].id, ri->id) == 0)))
                count += inc->rules[j].alert_count;
        json_t *r = json_object();
        ok &= !json_object_set_new(r, "id",
                                   ri->id ? json_string(ri->id) : json_null());
        ok &= !json_object_set_new(r, "title",
                                   json_string(ri->title ? ri->title : ""));
        ok &= !json_object_set_new(r, "level",
                                   json_string(cf_level_name(ri->level)));
        ok &= !json_object_set_new(r, "alert_count",
                                   json_integer((json_int_t)count));
        ok &= !json_array_append_new(rules, r);
    }
    ok &= !json_object_set_new(rec, "rules", rules);
    rules = NULL;
    ok &= !json_object_set_new(rec, "noisy", json_boolean(inc->noisy));
    json_t *noise = json_array();
    for (size_t i = 0; noise && i < inc->n_rules; i++) {
        const struct cf_incident_rule *ri = &inc->rules[i];
        if (!ri->noisy) continue;
        json_t *o = json_object();
        ok &= !json_object_set_new(o, "rule",
                                   ri->id ? json_string(ri->id) : json_null());
        ok &= !json_object_set_new(o, "title",
                                   json_string(ri->title ? ri->title : ""));
        ok &= !json_object_set_new(
            o, "host", ri->host_raw ? json_string(ri->host_raw) : json_null());
        ok &= !json_object_set_new(
            o, "alerts",
            json_integer((json_int_t)(ri->alert_count + ri->folded)));
        ok &= !json_array_append_new(noise, o);
    }
    ok &= noise && !json_object_set_new(rec, "noise", noise);
    for (size_t i = 0; i < inc->n_links; i++) {
        const struct cf_incident_link *l = &inc->links[i];
        json_t *o = json_object();
        ok &= !json_object_set_new(o, "alert_id", json_string(l->alert_id));
        ok &= !json_object_set_new(
            o, "entity_kind",
            l->kind >= 0
                ? json_string(cf_entity_kind_name((enum cf_entity_kind)l->kind))
                : json_null());
        ok &= !json_object_set_new(
            o, "entity_value", l->value ? json_string(l->value) : json_null());
        if (l->kind >= 0)
            ok &= !json_object_set_new(
                o, "strength", json_string(l->strong ? "strong" : "weak"));
        if (l->kind >= 0 && l->hosts >= 0) {
            json_t *p = json_object();
            ok &= !json_object_set_new(p, "hosts", json_integer(l->hosts));
            ok &=
                !json_object_set_new(p, "accounts", json_integer(l->accounts));
            if (l->saturated)
                ok &= !json_object_set_new(p, "at_least", json_true());
            ok &= !json_object_set_new(o, "prevalence", p);
        }
        if (l->duplicates)
            ok &= !json_object_set_new(o, "duplicates",
                                       json_integer(l->duplicates));
        ok &= !json_array_append_new(links, o);
    }
    ok &= !json_object_set_new(rec, "links", links);
    links = NULL;
    ok &= !json_object_set_new(rec, "truncated", json_boolean(inc->truncated));
    if (merged_into)
        ok &=
            !json_object_set_new(rec, "merged_into", json_string(merged_into));
    if (!ok) goto fail;
    cf_free(title);
    cf_free(summary);
    return rec;
fail:
    json_decref(rec);
    json_decref(stages);
    json_decref(ents);
    json_decref(ids);
    json_decref(rules);
    json_decref(links);
    json_decref(prog);
    cf_free(title);
    cf_free(summary);
    return NULL;
}
