/*
 * alert.c - building alerts from matched events: entity extraction, the
 * stable alert id, and the "kind":"alert" JSON record.  Called by the
 * pipeline for every rule that fires; thread safe (no shared state; an
 * entity map is read-only once built).
 */
#include "alert.h"

/* SHA256_Init and friends are deprecated in OpenSSL 3 in favour of EVP,
 * whose context allocation and provider lookup cost more per alert than
 * hashing a 3 KB event does; they are still there, and the same digest. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sigma_correlation.h"
#include "timeutil.h"

static const char *const entity_names[CF_ENTITY_COUNT] = {
    "host",      "user",           "src_ip",        "dst_ip",
    "process",   "parent_process", "process_guid",  "logon_id",
    "file_hash", "cloud_account",  "cloud_resource"};

const char *cf_entity_kind_name(enum cf_entity_kind kind) {
    return (unsigned)kind < CF_ENTITY_COUNT ? entity_names[kind] : "unknown";
}

/*
 * Default event fields per entity, most specific first.  A field written
 * "A+B" takes A's value prefixed by B's ("B\A"), so Security events give
 * DOMAIN\user like Sysmon's User field does.  Target accounts come before
 * subject accounts: in a logon event the subject is usually the machine
 * account doing the work, the target the person logging on.
 */
static const char *const default_fields[CF_ENTITY_COUNT][16] = {
    [CF_ENTITY_HOST] = {"Hostname", "Computer", "host.name", "hostname",
                        "ComputerName", "DeviceName", "host", NULL},
    [CF_ENTITY_USER] = {"User", "TargetUserName+TargetDomainName",
                        "SubjectUserName+SubjectDomainName", "AccountName",
                        "UserName", "userIdentity.userName", "userIdentity.arn",
                        "user.name", "UserPrincipalName", "UserId", "user",
                        "AUID", NULL},
    [CF_ENTITY_SRC_IP] = {"SourceIp", "IpAddress", "sourceIPAddress",
                          "SourceAddress", "ClientIP", "callerIpAddress",
                          "source.ip", "src_ip", "src", NULL},
    [CF_ENTITY_DST_IP] = {"DestinationIp", "DestAddress", "destination.ip",
                          "DestinationAddress", "dst_ip", "dst", NULL},
    [CF_ENTITY_PROCESS] = {"Image", "NewProcessName", "ProcessName",
                           "SourceImage", "process.executable", "exe", NULL},
    [CF_ENTITY_PARENT_PROCESS] = {"ParentImage", "ParentProcessName",
                                  "process.parent.executable", NULL},
    [CF_ENTITY_PROCESS_GUID] = {"ProcessGuid", "SourceProcessGuid",
                                "process.entity_id", NULL},
    [CF_ENTITY_LOGON_ID] = {"LogonId", "TargetLogonId", "SubjectLogonId", NULL},
    [CF_ENTITY_FILE_HASH] = {"Hashes", "Hash", "sha256", "file.hash.sha256",
                             NULL},
    [CF_ENTITY_CLOUD_ACCOUNT] = {"userIdentity.accountId", "recipientAccountId",
                                 "AccountId", "TenantId", "tenantId",
                                 "subscriptionId", NULL},
    [CF_ENTITY_CLOUD_RESOURCE] =
        {"resources.ARN", "requestParameters.bucketName",
         "requestParameters.instanceId",
         "requestParameters.instancesSet.items.instanceId", "resourceId",
         "ResourceId", "TargetResources.id", NULL},
};

/* A field name of the map, found by its hash (cf_hash_name of the part
 * before any '+'): which entity it feeds, at which rank. */
struct name_slot {
    uint32_t hash;
    uint32_t len; /* of the name part */
    uint8_t kind, rank;
    bool used;
};

struct cf_entity_map {
    /* fields[k] is a NULL-terminated list of owned strings. */
    char **fields[CF_ENTITY_COUNT];
    /* every name, so one pass over an event's fields finds them all
     * (fusion reads every event's entities: lookups by name were most
     * of that cost) */
    struct name_slot *index;
    size_t index_mask;
    /* part[k][rank]: the length of fields[k][rank] before any '+' (where
     * the domain field's name starts, past the '+', when there is one):
     * measured once, not for every event */
    size_t *part[CF_ENTITY_COUNT];
    /* names found beside the entities (cf_entity_map_also); borrowed */
    const char *const *also;
    size_t n_also;
};

/* The kind of a name_slot of cf_entity_map_also's names; its rank is
 * the name's place in their list. */
#define ALSO_KIND 255

static size_t name_part(const char *f) {
    const char *plus = strchr(f, '+');
    return plus ? (size_t)(plus - f) : strlen(f);
}

/* The index of every name: the map's own (kinds below ALSO_KIND) and
 * the names found beside them (cf_entity_map_also, kind ALSO_KIND). */
static int build_index(struct cf_entity_map *map) {
    size_t n = map->n_also, size = 64;
    for (int k = 0; k < CF_ENTITY_COUNT; k++)
        for (char **f = map->fields[k]; f && *f; f++) n++;
    while (size < 4 * n) size *= 2;
    struct name_slot *index = cf_calloc(size, sizeof *index);
    if (!index) return CF_ERR_NOMEM;
    cf_free(map->index);
    map->index = index;
    map->index_mask = size - 1;
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        int rank = 0;
        for (char **f = map->fields[k]; f && *f && rank < 255; f++, rank++) {
            uint32_t h = cf_hash_name(*f, name_part(*f));
            size_t i = h & map->index_mask;
            while (map->index[i].used) i = (i + 1) & map->index_mask;
            map->index[i] = (struct name_slot){h, (uint32_t)map->part[k][rank],
                                               (uint8_t)k, (uint8_t)rank, true};
        }
    }
    for (size_t j = 0; j < map->n_also; j++) {
        size_t len = strlen(map->also[j]);
        uint32_t h = cf_hash_name(map->also[j], len);
        size_t i = h & map->index_mask;
        while (map->index[i].used) i = (i + 1) & map->index_mask;
        map->index[i] =
            (struct name_slot){h, (uint32_t)len, ALSO_KIND, (uint8_t)j, true};
    }
    return CF_OK;
}

static int measure_parts(struct cf_entity_map *map) {
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        size_t nk = 0;
        for (char **f = map->fields[k]; f && *f; f++) nk++;
        if (!(map->part[k] = cf_calloc(nk + 1, sizeof *map->part[k])))
            return CF_ERR_NOMEM;
        for (size_t r = 0; r < nk; r++)
            map->part[k][r] = name_part(map->fields[k][r]);
    }
    return CF_OK;
}

cf_err_t cf_entity_map_also(struct cf_entity_map *map, const char *const *names,
                            size_t n) {
    if (n > CF_ENTITY_ALSO_MAX) return CF_ERR;
    map->also = names;
    map->n_also = n;
    return build_index(map);
}

static int list_append(char ***list, size_t *n, const char *s) {
    char **nl = cf_realloc(*list, (*n + 2) * sizeof *nl);
    if (!nl) return CF_ERR_NOMEM;
    *list = nl;
    if (!(nl[*n] = cf_strdup(s))) return CF_ERR_NOMEM;
    nl[++*n] = NULL;
    return CF_OK;
}

struct cf_entity_map *cf_entity_map_new(const json_t *section, char *errstr,
                                        size_t errstr_size) {
    struct cf_entity_map *map = cf_calloc(1, sizeof *map);
    if (!map) goto nomem;
    if (section && !json_is_object(section)) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "config: entities must be a mapping of entity kind to a "
                  "list of event field names");
        goto fail;
    }
    if (section) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)section, key, val) {
            int kind = -1;
            for (int k = 0; k < CF_ENTITY_COUNT; k++)
                if (strcmp(key, entity_names[k]) == 0) kind = k;
            if (kind < 0) {
                cf_seterr(errstr, errstr_size, CF_ERR,
                          "config: entities: unknown entity kind '%s' (known: "
                          "host, user, src_ip, dst_ip, process, "
                          "parent_process, process_guid, logon_id, file_hash, "
                          "cloud_account, cloud_resource)",
                          key);
                goto fail;
            }
            if (!json_is_array(val)) {
                cf_seterr(errstr, errstr_size, CF_ERR,
                          "config: entities: %s must be a list of field names",
                          key);
                goto fail;
            }
            size_t n = 0, i;
            json_t *f;
            while (map->fields[kind] && map->fields[kind][n]) n++;
            json_array_foreach(val, i, f) {
                if (!json_is_string(f)) {
                    cf_seterr(errstr, errstr_size, CF_ERR,
                              "config: entities: %s must list strings", key);
                    goto fail;
                }
                if (list_append(&map->fields[kind], &n, json_string_value(f)))
                    goto nomem;
            }
        }
    }
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        size_t n = 0;
        while (map->fields[k] && map->fields[k][n]) n++;
        for (const char *const *f = default_fields[k]; *f; f++)
            if (list_append(&map->fields[k], &n, *f)) goto nomem;
    }
    if (measure_parts(map) || build_index(map)) goto nomem;
    return map;
nomem:
    cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
fail:
    cf_entity_map_destroy(map);
    return NULL;
}

void cf_entity_map_destroy(struct cf_entity_map *map) {
    if (!map) return;
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        for (char **f = map->fields[k]; f && *f; f++) cf_free(*f);
        cf_free(map->fields[k]);
        cf_free(map->part[k]);
    }
    cf_free(map->index);
    cf_free(map);
}

/* Values that name nobody: an entity slot stays empty rather than hold
 * them, so they cannot link unrelated alerts. */
static bool is_placeholder_value(const char *v, size_t len) {
    return len == 0 || (len == 1 && v[0] == '-');
}

/* A value that names someone: not null, not a placeholder. */
static inline bool usable(const struct cf_event_field *f) {
    return f->type != CF_VALUE_NULL &&
           !is_placeholder_value(f->value, f->value_len);
}

/* For an entity found at a composed name "A+B" (kind, rank): B's first
 * occurrence when it is usable, else -1; -1 for a name that does not
 * compose. */
static int dom_field(const struct cf_entity_map *map, const struct cf_event *ev,
                     int kind, int rank) {
    const char *name = map->fields[kind][rank];
    size_t part = map->part[kind][rank];
    if (name[part] != '+') return -1;
    const char *d = name + part + 1;
    int i = cf_event_find(ev, d, strlen(d), 0);
    return i >= 0 && usable(&ev->fields[i]) ? i : -1;
}

/* "SHA1=..,MD5=..,SHA256=..,IMPHASH=.." -> the SHA256 value, else the
 * first hash; a bare hash is itself.  Sets *len to the part's length. */
static const char *pick_hash(const char *v, size_t *len) {
    const char *sha = NULL;
    /* the '=' first: a Sysmon Hashes value is a few hundred bytes, and
     * comparing at every one of them was most of reading its entities */
    const char *stop = v + *len;
    for (const char *eq = *len >= 7 ? v + 6 : stop; eq < stop; eq++) {
        if (!(eq = memchr(eq, '=', (size_t)(stop - eq)))) break;
        if (strncasecmp(eq - 6, "SHA256", 6) == 0) sha = eq + 1;
    }
    if (!sha) {
        const char *eq = memchr(v, '=', *len);
        if (!eq) return v;
        sha = eq + 1;
    }
    size_t rest = *len - (size_t)(sha - v);
    const char *end = memchr(sha, ',', rest);
    *len = end ? (size_t)(end - sha) : rest;
    return sha;
}

/* What locate() found so far. */
struct locating {
    unsigned want;
    int *best, *rank, *also;
    uint64_t seen[CF_ENTITY_COUNT];
};

/* Field i, whose name's hash is that of slot n: if it is that name. */
static void locate_slot(const struct cf_entity_map *map,
                        const struct cf_event *ev, uint32_t i,
                        const struct name_slot *n, struct locating *l) {
    const struct cf_event_field *f = &ev->fields[i];
    if (n->kind == ALSO_KIND) {
        if (l->also && l->also[n->rank] < 0 && n->len == f->name_len &&
            memcmp(map->also[n->rank], f->name, f->name_len) == 0)
            l->also[n->rank] = (int)i;
        return;
    }
    if (!(l->want & (1u << n->kind)) || n->rank >= l->rank[n->kind]) return;
    const char *name = map->fields[n->kind][n->rank];
    if (n->len != f->name_len || memcmp(name, f->name, f->name_len) != 0)
        return;
    uint64_t bit = n->rank < 64 ? UINT64_C(1) << n->rank : 0;
    if (l->seen[n->kind] & bit) return; /* not its first occurrence */
    l->seen[n->kind] |= bit;
    if (f->type == CF_VALUE_NULL ||
        is_placeholder_value(f->value, f->value_len))
        return;
    l->best[n->kind] = (int)i;
    l->rank[n->kind] = n->rank;
}

/* One pass over ev's fields: for each kind in `want` (a bit per kind),
 * the field (index into ev->fields, -1 when none) of the best-ranked
 * name whose first occurrence has a value (usable); with
 * `also`, also[j] is the first field named map->also[j] (-1: none).
 * Most fields' names have no slot: the loop over them only compares
 * hashes (locate_slot does the rest, for the few that agree). */
static void locate(const struct cf_entity_map *map, const struct cf_event *ev,
                   unsigned want, int best[CF_ENTITY_COUNT],
                   int rank[CF_ENTITY_COUNT], int *also) {
    struct locating l = {want, best, rank, also, {0}};
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        best[k] = -1;
        rank[k] = INT32_MAX;
    }
    for (size_t j = 0; also && j < map->n_also; j++) also[j] = -1;
    const struct cf_event_field *fields = ev->fields;
    const struct name_slot *index = map->index;
    const size_t mask = map->index_mask;
    for (uint32_t i = 0, n = ev->n_fields; i < n; i++) {
        uint32_t h = fields[i].name_hash;
        for (size_t s = h & mask; index[s].used; s = (s + 1) & mask)
            if (index[s].hash == h) locate_slot(map, ev, i, &index[s], &l);
    }
}

/* The entity of `kind` found at field `at` as up to two parts: a domain
 * to put before a backslash (dom, NULL when none; from field `dom_at`,
 * dom_field's) and the value itself. */
static inline void entity_parts(const struct cf_event *ev, int kind, int at,
                                int dom_at, const char **dom, size_t *dom_len,
                                const char **val, size_t *val_len) {
    const struct cf_event_field *v = &ev->fields[at];
    *dom = NULL;
    *dom_len = 0;
    *val_len = v->value_len;
    if (kind == CF_ENTITY_FILE_HASH) {
        *val = pick_hash(v->value, val_len);
        return;
    }
    *val = v->value;
    if (dom_at >= 0 && !memchr(v->value, '\\', v->value_len)) {
        *dom = ev->fields[dom_at].value;
        *dom_len = ev->fields[dom_at].value_len;
    }
}

cf_err_t cf_entities_extract(const struct cf_entity_map *map,
                             const struct cf_event *ev,
                             struct cf_entities *out) {
    int best[CF_ENTITY_COUNT], rank[CF_ENTITY_COUNT];
    memset(out, 0, sizeof *out);
    locate(map, ev, (1u << CF_ENTITY_COUNT) - 1, best, rank, NULL);
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        const char *dom, *val;
        size_t dl, vl;
        if (best[k] < 0) continue;
        entity_parts(ev, k, best[k], dom_field(map, ev, k, rank[k]), &dom, &dl,
                     &val, &vl);
        struct cf_buf b = CF_BUF_INIT;
        if (dom) {
            cf_buf_append(&b, dom, dl);
            cf_buf_append(&b, "\\", 1);
        }
        cf_buf_append(&b, val, vl);
        /* an empty part ("SHA256=") is an empty value, as written */
        out->value[k] = b.failed ? NULL
                        : b.data ? cf_buf_steal(&b)
                                 : cf_strdup("");
        if (!out->value[k]) {
            cf_buf_free(&b);
            cf_entities_clear(out);
            return CF_ERR_NOMEM;
        }
    }
    return CF_OK;
}

const struct cf_event_field *cf_entity_field(const struct cf_entity_map *map,
                                             const struct cf_event *ev,
                                             enum cf_entity_kind kind) {
    int best[CF_ENTITY_COUNT], rank[CF_ENTITY_COUNT];
    locate(map, ev, 1u << kind, best, rank, NULL);
    return best[kind] >= 0 ? &ev->fields[best[kind]] : NULL;
}

void cf_entity_locate(const struct cf_entity_map *map,
                      const struct cf_event *ev, unsigned kinds,
                      struct cf_entity_at *at) {
    locate(map, ev, kinds, at->field, at->rank, at->also);
    for (int k = 0; k < CF_ENTITY_COUNT; k++)
        at->dom[k] =
            at->field[k] >= 0 ? dom_field(map, ev, k, at->rank[k]) : -1;
}

/* ---- the memo of name sequences (cf_entity_locate_memo) ------------ */

#define SHAPES 64       /* sequences remembered: 32 sets of 2 */
#define SHAPE_FIELDS 96 /* events with more fields are located plainly */
#define SHAPE_CHECKS 32 /* named fields of one sequence */
#define SHAPE_CANDS 8   /* names of one kind in one sequence */

/* A field whose name must be `name` for the sequence to apply. */
struct shape_check {
    uint32_t field, len;
    const char *name;
};

/* A name of some kind at its first occurrence, with where its domain
 * part (dom_field's) would be read: -1 none. */
struct shape_cand {
    int16_t field, dom;
    uint8_t rank;
};

/* One sequence of name hashes, and what locate() makes of it: `base`,
 * the result when no candidate has a usable value (the also names'
 * first fields in it); for each kind in kinds[], the first occurrences
 * of its names by rank (locate picks the best-ranked whose value is
 * usable). */
struct shape {
    bool used;
    bool plain; /* a sequence shape_build refused: located plainly */
    unsigned want;
    uint32_t n_fields, n_checks;
    uint32_t hash[SHAPE_FIELDS];
    struct shape_check check[SHAPE_CHECKS];
    uint8_t n_kinds, kinds[CF_ENTITY_COUNT];
    uint8_t n_cand[CF_ENTITY_COUNT];
    struct shape_cand cand[CF_ENTITY_COUNT][SHAPE_CANDS];
    struct cf_entity_at base;
};

struct cf_entity_shapes {
    const struct cf_entity_map *map;
    struct shape way[SHAPES];
    uint8_t recent[SHAPES / 2]; /* per set: the way used last */
};

struct cf_entity_shapes *cf_entity_shapes_new(const struct cf_entity_map *map) {
    struct cf_entity_shapes *s = cf_calloc(1, sizeof *s);
    if (s) s->map = map;
    return s;
}

void cf_entity_shapes_destroy(struct cf_entity_shapes *s) {
    cf_free(s);
}

static bool shape_add_check(struct shape *sh, uint32_t field, const char *name,
                            size_t len) {
    if (sh->n_checks && sh->check[sh->n_checks - 1].field == field)
        return true; /* the same field under another kind: the same name */
    if (sh->n_checks == SHAPE_CHECKS) return false;
    sh->check[sh->n_checks++] =
        (struct shape_check){field, (uint32_t)len, name};
    return true;
}

/* The domain part of candidate `c` of kind k: the first field whose hash
 * is its name's, which must be that name (else false: not memoised). */
static bool shape_dom(const struct cf_entity_map *map, struct shape *sh,
                      const struct cf_event *ev, int k, struct shape_cand *c) {
    const char *name = map->fields[k][c->rank];
    size_t part = map->part[k][c->rank];
    c->dom = -1;
    if (name[part] != '+') return true;
    const char *d = name + part + 1;
    size_t dl = strlen(d);
    uint32_t h = cf_hash_name(d, dl);
    for (uint32_t i = 0; i < ev->n_fields; i++) {
        const struct cf_event_field *f = &ev->fields[i];
        if (f->name_hash != h) continue;
        if (f->name_len != dl || memcmp(f->name, d, dl) != 0) return false;
        c->dom = (int16_t)i;
        return shape_add_check(sh, i, d, dl);
    }
    return true;
}

/* Makes sh the memo of ev's sequence for kinds `want`; false (sh
 * unused) when it cannot be one: a name whose hash is a wanted name's
 * but is not that name, too many names, ranks past 63. */
static bool shape_build(const struct cf_entity_map *map, struct shape *sh,
                        const struct cf_event *ev, unsigned want) {
    uint64_t seen[CF_ENTITY_COUNT] = {0};
    const struct name_slot *index = map->index;
    const size_t mask = map->index_mask;
    struct cf_entity_at *base = &sh->base;
    sh->used = false;
    sh->plain = false;
    sh->n_checks = 0;
    sh->n_kinds = 0;
    memset(sh->n_cand, 0, sizeof sh->n_cand);
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        base->field[k] = base->dom[k] = -1;
        base->rank[k] = INT32_MAX;
    }
    for (size_t j = 0; j < CF_ENTITY_ALSO_MAX; j++) base->also[j] = -1;
    for (uint32_t i = 0; i < ev->n_fields; i++) {
        const struct cf_event_field *f = &ev->fields[i];
        uint32_t h = sh->hash[i] = f->name_hash;
        for (size_t s = h & mask; index[s].used; s = (s + 1) & mask) {
            const struct name_slot *n = &index[s];
            bool also = n->kind == ALSO_KIND;
            if (n->hash != h || (!also && !(want & (1u << n->kind)))) continue;
            const char *name =
                also ? map->also[n->rank] : map->fields[n->kind][n->rank];
            if (n->len != f->name_len || memcmp(name, f->name, n->len) != 0 ||
                !shape_add_check(sh, i, name, n->len))
                return false;
            if (also) {
                if (base->also[n->rank] < 0) base->also[n->rank] = (int)i;
                continue;
            }
            if (n->rank >= 64) return false;
            uint64_t bit = UINT64_C(1) << n->rank;
            if (seen[n->kind] & bit) continue; /* not its first occurrence */
            seen[n->kind] |= bit;
            if (sh->n_cand[n->kind] == SHAPE_CANDS) return false;
            if (!sh->n_cand[n->kind]) sh->kinds[sh->n_kinds++] = n->kind;
            /* in rank order */
            struct shape_cand *c = sh->cand[n->kind];
            int at = sh->n_cand[n->kind]++;
            while (at > 0 && c[at - 1].rank > n->rank) {
                c[at] = c[at - 1];
                at--;
            }
            c[at] = (struct shape_cand){(int16_t)i, -1, n->rank};
        }
    }
    for (int j = 0; j < sh->n_kinds; j++) {
        int k = sh->kinds[j];
        for (int c = 0; c < sh->n_cand[k]; c++)
            if (!shape_dom(map, sh, ev, k, &sh->cand[k][c])) return false;
    }
    sh->want = want;
    sh->n_fields = ev->n_fields;
    sh->used = true;
    return true;
}

/* What locate() finds in ev, whose name hashes are sh's: false when a
 * field's name is not the one the sequence had (a hash collision). */
static bool shape_replay(const struct shape *sh, const struct cf_event *ev,
                         struct cf_entity_at *at) {
    const struct cf_event_field *fields = ev->fields;
    for (uint32_t c = 0; c < sh->n_checks; c++) {
        const struct shape_check *x = &sh->check[c];
        const struct cf_event_field *f = &fields[x->field];
        if (f->name_len != x->len || !cf_bytes_equal(f->name, x->name, x->len))
            return false;
    }
    *at = sh->base;
    for (int j = 0; j < sh->n_kinds; j++) {
        int k = sh->kinds[j];
        for (int c = 0; c < sh->n_cand[k]; c++) {
            const struct shape_cand *x = &sh->cand[k][c];
            if (!usable(&fields[x->field])) continue;
            at->field[k] = x->field;
            at->rank[k] = x->rank;
            if (x->dom >= 0 && usable(&fields[x->dom])) at->dom[k] = x->dom;
            break;
        }
    }
    return true;
}

/* Whether ev's name hashes are sh's (as many): no branch per field. */
static bool same_hashes(const struct shape *sh, const struct cf_event *ev) {
    const struct cf_event_field *f = ev->fields;
    const uint32_t *h = sh->hash;
    uint32_t n = ev->n_fields, i = 0, diff = 0;
    for (; i + 4 <= n; i += 4)
        diff |= (f[i].name_hash ^ h[i]) | (f[i + 1].name_hash ^ h[i + 1]) |
                (f[i + 2].name_hash ^ h[i + 2]) |
                (f[i + 3].name_hash ^ h[i + 3]);
    for (; i < n; i++) diff |= f[i].name_hash ^ h[i];
    return diff == 0;
}

void cf_entity_locate_memo(const struct cf_entity_map *map,
                           struct cf_entity_shapes *s,
                           const struct cf_event *ev, unsigned kinds,
                           struct cf_entity_at *at) {
    uint32_t n = ev->n_fields;
    if (!s || s->map != map || n == 0 || n > SHAPE_FIELDS) {
        cf_entity_locate(map, ev, kinds, at);
        return;
    }
    const struct cf_event_field *f = ev->fields;
    uint32_t sig = (f[0].name_hash ^ (f[n / 2].name_hash * 0x9e3779b1u) ^
                    (f[n - 1].name_hash * 0x85ebca6bu)) +
                   n;
    size_t set = (sig ^ (sig >> 16)) & (SHAPES / 2 - 1);
    for (int w = 0; w < 2; w++) {
        struct shape *sh = &s->way[2 * set + (size_t)w];
        if (sh->used && sh->n_fields == n && sh->want == kinds &&
            same_hashes(sh, ev)) {
            s->recent[set] = (uint8_t)w;
            if (!sh->plain && shape_replay(sh, ev, at)) return;
            cf_entity_locate(map, ev, kinds, at);
            return;
        }
    }
    /* a new sequence: in place of the way used less recently */
    int w = !s->recent[set];
    struct shape *sh = &s->way[2 * set + (size_t)w];
    s->recent[set] = (uint8_t)w;
    if (!shape_build(map, sh, ev, kinds)) {
        /* Kept as refused, so that the sequence's next events go the
         * plain way at once, rather than each evicting the set's other
         * way and building again. */
        for (uint32_t i = 0; i < n; i++) sh->hash[i] = f[i].name_hash;
        sh->n_fields = n;
        sh->want = kinds;
        sh->used = sh->plain = true;
        cf_entity_locate(map, ev, kinds, at);
        return;
    }
    if (!shape_replay(sh, ev, at)) cf_entity_locate(map, ev, kinds, at);
}

const char *cf_entity_text_of(const struct cf_event *ev,
                              const struct cf_entity_at *at,
                              enum cf_entity_kind kind,
                              char buf[CF_ENTITY_TEXT_MAX], size_t *len) {
    const char *dom, *val;
    size_t dl, vl, n = 0;
    *len = 0;
    if (at->field[kind] < 0) return "";
    entity_parts(ev, kind, at->field[kind], at->dom[kind], &dom, &dl, &val,
                 &vl);
    if (!dom) {
        *len = vl < CF_ENTITY_TEXT_MAX - 1 ? vl : CF_ENTITY_TEXT_MAX - 1;
        return val;
    }
    if (dl > CF_ENTITY_TEXT_MAX - 2) dl = CF_ENTITY_TEXT_MAX - 2;
    memcpy(buf, dom, dl);
    n = dl;
    buf[n++] = '\\';
    if (vl > CF_ENTITY_TEXT_MAX - 1 - n) vl = CF_ENTITY_TEXT_MAX - 1 - n;
    memcpy(buf + n, val, vl);
    *len = n + vl;
    return buf;
}

/* A string as jansson writes it: '"', '\\' and control characters
 * escaped, the short forms where JSON has them, else \\u00XX with
 * capital hex digits; everything else (UTF-8 included) as it is. */
static void compact_string(struct cf_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    static const char short_form[0x20] = {
        ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    size_t run = 0;
    cf_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        cf_buf_append(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', (char)c, '0', '0', hex[c >> 4], hex[c & 15]};
        if (c < 0x20 && short_form[c]) esc[1] = short_form[c];
        bool u = c < 0x20 && !short_form[c];
        if (u) esc[1] = 'u';
        cf_buf_append(b, esc, u ? 6 : 2);
    }
    cf_buf_append(b, s + run, n - run);
    cf_buf_putc(b, '"');
}

/* An integer in decimal, as "%lld" prints it. */
static void compact_integer(struct cf_buf *b, json_int_t v) {
    char digits[24];
    size_t n = sizeof digits;
    /* negated as unsigned: INT64_MIN has no positive counterpart */
    unsigned long long u =
        v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) digits[--n] = '-';
    cf_buf_append(b, digits + n, sizeof digits - n);
}

static bool compact_value(struct cf_buf *b, const json_t *v) {
    const char *key;
    json_t *item;
    size_t i;
    bool ok = true, first = true;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        cf_buf_putc(b, '{');
        json_object_foreach((json_t *)v, key, item) {
            if (!first) cf_buf_putc(b, ',');
            first = false;
            compact_string(b, key, strlen(key));
            cf_buf_putc(b, ':');
            ok = ok && compact_value(b, item);
        }
        cf_buf_putc(b, '}');
        return ok;
    case JSON_ARRAY:
        cf_buf_putc(b, '[');
        json_array_foreach(v, i, item) {
            if (i) cf_buf_putc(b, ',');
            ok = ok && compact_value(b, item);
        }
        cf_buf_putc(b, ']');
        return ok;
    case JSON_STRING:
        compact_string(b, json_string_value(v), json_string_length(v));
        return true;
    case JSON_INTEGER: compact_integer(b, json_integer_value(v)); return true;
    case JSON_TRUE: cf_buf_puts(b, "true"); return true;
    case JSON_FALSE: cf_buf_puts(b, "false"); return true;
    case JSON_NULL: cf_buf_puts(b, "null"); return true;
    default: return false; /* a real: jansson's own format */
    }
}

bool cf_json_write_compact(struct cf_buf *b, const json_t *v) {
    size_t start = b->len;
    if (!v || compact_value(b, v)) return v != NULL;
    cf_buf_truncate(b, start);
    return false;
}

void cf_entities_clear(struct cf_entities *ents) {
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        cf_free(ents->value[k]);
        ents->value[k] = NULL;
    }
}

/* The first 128 bits of a SHA-256 over the parts, as hex: the one place
 * chainfuse makes its stable ids.  The context is on the stack (no
 * allocation, no provider fetch: this runs for every alert over the
 * whole raw event).  False when OpenSSL refused: the zeros then in `out`
 * are no id. */
static bool digest_parts_hex128(const void *const *parts, const size_t *lens,
                                int n, char out[33]) {
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH] = {0};
    SHA256_CTX ctx;
    bool ok = SHA256_Init(&ctx) == 1;
    for (int i = 0; ok && i < n; i++)
        ok = SHA256_Update(&ctx, parts[i], lens[i]) == 1;
    ok = ok && SHA256_Final(md, &ctx) == 1;
    if (!ok) memset(md, 0, sizeof md);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[32] = '\0';
    return ok;
}

bool cf_digest_hex128(const void *data, size_t len, char out[33]) {
    return digest_parts_hex128(&data, &len, 1, out);
}

void cf_alert_set_rule(struct cf_alert *alert,
                       const struct cf_sigma_rule *rule) {
    alert->rule_id = rule->id ? rule->id : rule->title;
    alert->rule_title = rule->title;
    alert->rule_path = rule->path;
    alert->rule_name = rule->name;
    alert->ungenerated = rule->correlated && !rule->generated;
    alert->level = rule->level;
    alert->tactics = rule->tactics;
    alert->n_tactics = rule->n_tactics;
    alert->techniques = rule->techniques;
    alert->n_techniques = rule->n_techniques;
}

void cf_alert_set_correlation(struct cf_alert *alert,
                              const struct cf_sigma_correlation *c) {
    alert->rule_id = c->key;
    alert->rule_title = c->title;
    alert->rule_path = c->path;
    alert->rule_name = c->name;
    alert->level = c->level;
    alert->tactics = c->tactics;
    alert->n_tactics = c->n_tactics;
    alert->techniques = c->techniques;
    alert->n_techniques = c->n_techniques;
}

cf_err_t cf_alert_from_event(struct cf_alert *alert,
                             const struct cf_sigma_rule *rule,
                             const struct cf_event *ev,
                             const struct cf_entity_map *map) {
    memset(alert, 0, sizeof *alert);
    alert->time_ms = ev->time_ms;
    alert->clock_offset_ms = ev->clock_offset_ms;
    cf_alert_set_rule(alert, rule);
    alert->pos = ev->pos;
    size_t len;
    const char *json = cf_event_json(ev, &len);
    alert->event_json = cf_malloc(len + 1);
    if (!alert->event_json) return CF_ERR_NOMEM;
    memcpy(alert->event_json, json, len);
    alert->event_json[len] = '\0';
    alert->event_len = len;
    /* The decoder refuses raw control characters inside strings, so a
     * line break here lies between tokens, where a space means the same.
     * One memchr pass per byte value: strpbrk's per-byte set test cost a
     * sixth as much as the alert id's SHA-256 on 3 KB events. */
    static const char breaks[] = "\r\n";
    for (int i = 0; i < 2; i++)
        for (char *c = alert->event_json;
             (c = memchr(c, breaks[i], len - (size_t)(c - alert->event_json)));
             c++)
            *c = ' ';
    if (cf_entities_extract(map, ev, &alert->entities) != CF_OK)
        return CF_ERR_NOMEM;

    /* The id digests the rule's identity and the event bytes, so a replay
     * of the same input gives the same ids. */
    const char *rid = alert->rule_id ? alert->rule_id : "";
    const void *parts[2] = {rid, ev->raw};
    size_t lens[2] = {strlen(rid) + 1, ev->raw_len};
    if (!digest_parts_hex128(parts, lens, 2, alert->id)) return CF_ERR_NOMEM;
    return CF_OK;
}

void cf_alert_clear(struct cf_alert *alert) {
    if (!alert) return;
    cf_entities_clear(&alert->entities);
    cf_free(alert->event_json);
    json_decref(alert->extra);
    memset(alert, 0, sizeof *alert);
}

cf_err_t cf_alert_copy(struct cf_alert *dst, const struct cf_alert *src) {
    *dst = *src;
    memset(&dst->entities, 0, sizeof dst->entities);
    dst->event_json = NULL;
    dst->extra = NULL;
    for (int k = 0; k < CF_ENTITY_COUNT; k++)
        if (src->entities.value[k] &&
            !(dst->entities.value[k] = cf_strdup(src->entities.value[k])))
            goto nomem;
    if (src->event_json) {
        if (!(dst->event_json = cf_malloc(src->event_len + 1))) goto nomem;
        memcpy(dst->event_json, src->event_json, src->event_len);
        dst->event_json[src->event_len] = '\0';
    }
    if (src->extra && !(dst->extra = json_deep_copy(src->extra))) goto nomem;
    return CF_OK;
nomem:
    cf_alert_clear(dst);
    return CF_ERR_NOMEM;
}

/* Appends s as a JSON string.  Bytes that are not UTF-8 (a file name may
 * hold any) become U+FFFD rather than make the record invalid. */
static void put_string(struct cf_buf *b, const char *s) {
    cf_buf_json_text(b, s, strlen(s));
}

/* ,"name": - member names are plain ASCII; formatted with puts, not
 * printf, which cost more than the rest of an alert's record. */
static void put_name(struct cf_buf *b, const char *name) {
    cf_buf_puts(b, ",\"");
    cf_buf_puts(b, name);
    cf_buf_puts(b, "\":");
}

static void put_member(struct cf_buf *b, const char *name, const char *s) {
    put_name(b, name);
    if (s)
        put_string(b, s);
    else
        cf_buf_puts(b, "null");
}

static void put_strings(struct cf_buf *b, const char *name, char *const *items,
                        size_t n) {
    put_name(b, name);
    cf_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) cf_buf_putc(b, ',');
        put_string(b, items[i]);
    }
    cf_buf_putc(b, ']');
}

cf_err_t cf_alert_write(const struct cf_alert *alert, struct cf_buf *out) {
    char when[32];
    cf_buf_puts(out, "{\"kind\":\"alert\"");
    put_member(out, "id", alert->id);
    if (alert->time_ms != CF_TIME_UNKNOWN) cf_time_format(alert->time_ms, when);
    put_member(out, "time", alert->time_ms != CF_TIME_UNKNOWN ? when : NULL);
    if (alert->clock_offset_ms) {
        /* Says why `time` differs from the stamp in `event`. */
        cf_duration_format(alert->clock_offset_ms, when);
        put_member(out, "clock_offset", when);
    }
    cf_buf_puts(out, ",\"rule\":{\"id\":");
    if (alert->rule_id)
        put_string(out, alert->rule_id);
    else
        cf_buf_puts(out, "null");
    put_member(out, "title", alert->rule_title ? alert->rule_title : "");
    put_member(out, "level", cf_level_name(alert->level));
    if (alert->rule_path) put_member(out, "path", alert->rule_path);
    if (alert->rule_name) put_member(out, "name", alert->rule_name);
    cf_buf_putc(out, '}');
    put_member(out, "severity", cf_level_name(alert->level));
    put_strings(out, "tactics", alert->tactics, alert->n_tactics);
    put_strings(out, "techniques", alert->techniques, alert->n_techniques);
    cf_buf_puts(out, ",\"entities\":{");
    bool first = true;
    for (int k = 0; k < CF_ENTITY_COUNT; k++) {
        if (!alert->entities.value[k]) continue;
        cf_buf_puts(out, first ? "\"" : ",\"");
        cf_buf_puts(out, entity_names[k]);
        cf_buf_puts(out, "\":");
        put_string(out, alert->entities.value[k]);
        first = false;
    }
    cf_buf_puts(out, "},\"input\":{\"source\":");
    put_string(out, alert->pos.source ? alert->pos.source : "");
    /* the integers without printf, which cost a tenth of the record */
    if (alert->pos.partition >= 0) {
        cf_buf_puts(out, ",\"partition\":");
        compact_integer(out, (json_int_t)alert->pos.partition);
    }
    cf_buf_puts(out, ",\"offset\":");
    compact_integer(out, (json_int_t)alert->pos.offset);
    cf_buf_putc(out, '}');
    if (alert->is_correlation && alert->extra) {
        cf_buf_puts(out, ",\"correlation\":");
        if (!cf_json_write_compact(out, alert->extra))
            cf_buf_json(out, alert->extra, JSON_COMPACT);
    }
    if (alert->event_json) {
        cf_buf_puts(out, ",\"event\":");
        cf_buf_append(out, alert->event_json, alert->event_len);
    }
    cf_buf_putc(out, '}');
    return out->failed ? CF_ERR_NOMEM : CF_OK;
}

/* Same-millisecond alerts by id, so their arrival order does not matter. */
static int alert_id_cmp(const void *a, const void *b) {
    return strcmp(((const struct cf_alert *)a)->id,
                  ((const struct cf_alert *)b)->id);
}

void cf_alert_queue_init(struct cf_heap *q) {
    *q = (struct cf_heap)CF_HEAP_INIT(alert_id_cmp);
}

cf_err_t cf_alert_queue_push(struct cf_heap *q, const struct cf_alert *a) {
    struct cf_alert *copy = cf_malloc(sizeof *copy);
    if (!copy) return CF_ERR_NOMEM;
    if (cf_alert_copy(copy, a) != CF_OK) {
        cf_free(copy);
        return CF_ERR_NOMEM;
    }
    if (cf_heap_push(q, copy->time_ms, copy) != CF_OK) {
        cf_alert_clear(copy);
        cf_free(copy);
        return CF_ERR_NOMEM;
    }
    return CF_OK;
}

void cf_alert_queue_free(struct cf_heap *q) {
    for (size_t i = 0; i < q->n; i++) {
        cf_alert_clear(q->entries[i].item);
        cf_free(q->entries[i].item);
    }
    cf_heap_free(q);
}

struct cf_out_record cf_alert_out_record(const struct cf_alert *alert,
                                         const struct cf_buf *json) {
    struct cf_out_record r =
        cf_out_record_plain("alert", json->data, json->len, &alert->pos);
    r.id = alert->id;
    r.version = 1;
    r.severity = (int)alert->level;
    r.tactics = (const char *const *)alert->tactics;
    r.n_tactics = alert->n_tactics;
    return r;
}
