/*
 * ruleset.c - the Sigma rule compiler and matcher (see ruleset.h).
 *
 * Compilation: every value of every field condition gets an "item" id.
 * Each glob or regex alternative of the value becomes one Hyperscan
 * expression of each event field name the Sigma field maps to
 * (fieldmap.h), or of the keywords for field-less conditions.  Identical
 * expressions of one field are compiled once and report all their items.
 * Each field's expressions make a database of plain literals, compiled
 * with Hyperscan's literal API (enum expr_kind), and one of the rest
 * (build_groups; fields with the same patterns share them), compiled on
 * all cores (compile_all_dbs).
 * Expressions Hyperscan rejects are checked directly with PCRE2 (regexes) or a
 * small glob matcher; other pattern kinds (numbers, CIDR, field references,
 * exists, null, date parts) are always direct.
 *
 * Matching: the event is routed, each leaf value whose field has a
 * database serving one of the event's routes is scanned, hits mark items,
 * and only the routed rules with a marked item in each selection one
 * branch of their condition needs (build_alts), plus those whose
 * condition can hold with nothing marked ("always evaluate"), have
 * their condition evaluated.  A scan that fails (any hs_scan error, a PCRE2
 * error other than "no match", a keyword literal scan that cannot run) does not
 * stop matching: the event is counted in the matcher's scan_errors, since rules
 * may have missed it.
 *
 * Semantics shared with the test oracle (tests/oracle): a glob `?` is
 * one byte and case folding is ASCII; a field present several times
 * (array) matches if any of its values does, and `|all` needs each value
 * matched by some leaf; neq needs the field present; keywords search
 * every leaf value separately.  Keyword `*literal*` patterns are searched
 * in all the event's values at once, keeping only hits inside one leaf;
 * a value scanned with its field's databases is searched alone instead,
 * and the scan memo keeps that search's hits with the field's.
 *
 * Called by the pipeline (one cf_matcher per thread), the CLI and the
 * benchmark.  A compiled ruleset is read-only and shared; a matcher is
 * used by one thread at a time.
 */
#include "ruleset.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <hs/hs.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "buf.h"
#include "fieldmap.h"
#include "hash.h"
#include "logsource.h"
#include "ruleset_cache.h"
#include "timeutil.h"

#define NO_ITEM UINT32_MAX
#define NO_ROUTE UINT32_MAX
#define NO_REQ UINT32_MAX
#define KEYWORD_DB 0     /* dbs[0]: keyword patterns, scanned per leaf */
#define KEYWORD_LIT_DB 1 /* dbs[1]: keyword literals, one scan per event */
#define N_KEYWORD_DBS 2

/* The scan memo's bounds (struct cf_matcher): per matcher, so per
 * thread.  A value reporting more ids than MEMO_MAX_IDS, or more items
 * than MEMO_MAX_ITEMS, is not kept. */
#define MEMO_SLOTS (1u << 15)
#define MEMO_MAX_VALUE 1024
#define MEMO_MAX_IDS 64
#define MEMO_MAX_ITEMS 256
#define MEMO_MAX_BYTES ((size_t)8 << 20)
/* Values scan_fields hashes, and whose slots it prefetches, before
 * looking the first of them up. */
#define MEMO_BATCH 16u
/* The route-set cache's slots (struct route_set), per matcher; cleared
 * when 3/4 full. */
#define RSET_SLOTS 256u
/* The fields an event can have before its name hits need a larger
 * array (struct cf_matcher.route_hits, db_hits). */
#define HITS_START 128u
/* How an expression is compiled and what its matches must satisfy.
 * Plain literals (a glob without `?` or inner `*`, a value a target
 * source writes otherwise) go through Hyperscan's literal API, which has
 * no anchors: the matcher checks that a startswith hit ends at the
 * literal's length and an endswith hit at the value's end
 * (on_field_literal).  Compiled as `lit\z` regexes, SigmaHQ's 6,600
 * endswith values took more than half of a cold start; with the literal
 * API all 33,700 of its literals (of 34,600 patterns) take less than the
 * 1,000 regexes left. */
enum expr_kind {
    EXPR_REGEX = 0,     /* hs_compile_multi */
    EXPR_LIT = 1,       /* a literal; alone, contains: any hit counts */
    EXPR_LIT_START = 2, /* flag: the hit must start at 0 */
    EXPR_LIT_END = 4    /* flag: the hit must end at the value's end */
};

/* Fallback decisions per candidate expression, stored in the cache. */
enum expr_status { EXPR_HS = 0, EXPR_HS_ALLOWEMPTY = 1, EXPR_DIRECT = 2 };

/* An event field name as stored in the tables (hash precomputed). */
struct name_ref {
    const char *name;
    uint32_t len;
    uint32_t hash;
};

/* A pattern checked directly at condition time. */
struct direct_alt {
    const struct cf_sigma_pattern *pat;
    pcre2_code *re;        /* REGEX only */
    struct name_ref *refs; /* FIELDREF: the other field's event names */
    size_t n_refs;
};

struct cvalue {
    uint32_t item; /* NO_ITEM when no alternative went to Hyperscan */
    struct direct_alt *direct;
    size_t n_direct;
};

struct ccond {
    const struct cf_sigma_field_cond *fc;
    bool lacking; /* unknown on the rule's exclude_route (fieldmap.h) */
    struct name_ref *names; /* NULL for keywords: every leaf */
    size_t n_names;
    struct cvalue *values;
    /* When no value has a direct check and the values' items are
     * item_lo..item_hi with none of another condition's in between (as
     * build_cond numbers them), "some value matches" is one test over the
     * marks instead of a loop over the values (lists of a hundred). */
    bool ranged;
    uint32_t item_lo, item_hi; /* item_lo > item_hi: no items */
};

struct cconj {
    struct ccond *conds;
    size_t n_conds;
};

struct csearch {
    struct cconj *conjs;
    size_t n_conjs;
};

struct item_range {
    uint32_t lo, hi;
};

struct crule {
    const struct cf_sigma_rule *rule;
    struct csearch *searches;
    uint32_t route;
    /* NO_ROUTE, or the route of a source that serves the rule's logsource
     * but lacks a field the rule names (Security 4688 for a
     * process_creation rule on User): on its events the conditions on
     * that field are unknown, and the rule fires only when it holds
     * whatever they would say (tri_tree). */
    uint32_t exclude_route;
    bool rejected;
    bool always;
};

/* The compiled database of an event field, with the routes of the rules
 * that have patterns on it: an event routed to none of them leaves the
 * field unscanned.  (A field has one part; the list allows more.) */
struct db_part {
    hs_database_t *db; /* borrowed from rs->hsdbs; NULL: all direct */
    uint32_t index;    /* into rs->hsdbs */
    bool literal;      /* compiled with the literal API (enum expr_kind) */
    uint64_t *routes;  /* the routes it serves (route_words) */
    /* A keyword part holding the unconditional route's keywords alone:
     * scanned only when the event is on no other part's route, whose
     * databases hold them too (keyword_classes). */
    bool fallback;
};

struct field_db {
    char *name; /* owned */
    uint32_t len, hash;
    struct db_part *parts;
    uint32_t n_parts;
};

/* A block of the compiled rules' tree (struct arena_block). */
struct arena_block {
    struct arena_block *next;
    size_t used, size; /* bytes of data[] */
    max_align_t data[];
};

struct cf_ruleset {
    struct cf_rulebook *rb;
    /* The rules' searches, conjunctions, conditions, values and name
     * lists, zeroed, from a few large blocks freed together (arena_calloc):
     * 35,000 small allocations per start, and as many frees at exit,
     * with SigmaHQ. */
    struct arena_block *arena;
    struct cf_router *router;
    struct cf_fieldmap *fmap;
    uint32_t route_words;

    struct crule *rules;
    size_t n_rules;
    uint32_t *always; /* rule indexes, ascending */
    size_t n_always;
    /* rule index -> its route, or NO_ROUTE when it is never evaluated
     * (rejected, no condition): what add_candidate needs, packed. */
    uint32_t *cand_route;
    /* rule index -> item ranges (req[req_off[ri]..req_off[ri+1])) of
     * which each must have a marked item for the rule to match: the
     * ranged conditions the condition ANDs (see collect_required).  A
     * rule hit on one item but lacking another is dropped without
     * walking its condition (an LSASS access event hits the TargetImage
     * item of a dozen rules whose GrantedAccess or CallTrace items it
     * misses).  Tested by add_candidate, for the rules build_alts leaves
     * unconstrained; the others are counted. */
    uint32_t *req_off;
    struct item_range *req;
    /* What the matcher counts instead of testing ranges (build_alts):
     * a rule's condition can only hold when each range of one of its
     * alternatives has a marked item (`a or b` has those of a and those
     * of b).  Per item, the range it is in (NO_REQ: none); per range,
     * the alternatives it is in (range_alts[range_alt_off[r]..]); per
     * alternative its rule and how many distinct ranges it needs.
     * rule_constrained[ri]: the rule has alternatives; one that does
     * not is a candidate on any marked item of its own. */
    uint32_t *item_req;
    uint32_t *range_alt_off, *range_alts;
    uint32_t n_ranges;
    uint32_t *alt_rule, *alt_need;
    uint32_t n_alts;
    bool *rule_constrained;

    uint32_t n_items;
    uint32_t *item_rule;
    /* expression id -> items it reports (CSR) */
    uint32_t n_exprs;
    uint32_t *expr_item_off;
    uint32_t *expr_items;
    /* Bytes of the literal of KEYWORD_LIT_DB and literal expressions. */
    uint32_t *expr_lit_len;
    uint8_t *expr_kind; /* enum expr_kind bits */

    struct field_db *dbs; /* the keyword pseudo-fields, then event fields */
    size_t n_dbs;
    /* Distinct compiled databases; parts sharing the same patterns (a
     * field mapped under two names, routes with the same patterns) share
     * one. */
    hs_database_t **hsdbs;
    size_t n_hsdbs;
    uint32_t *slots; /* open addressing over dbs: index + 1, 0 empty */
    uint32_t slot_mask;

    hs_scratch_t *scratch; /* prototype, cloned per matcher */
    /* Set when the databases came from the cache: then rs->hsdbs[d]
     * point into lazy->mem, fixed from the start, and each is
     * deserialized there the first time a matcher fills a route set
     * that scans it (ruleset_ready). */
    struct lazy_dbs *lazy;
    struct cf_ruleset_stats stats;
};

/* Databases loaded when first needed: a warm start with SigmaHQ would
 * otherwise deserialize all ~400 (12 MB copied, zeroed and checksummed
 * inside Hyperscan: a fifth of the start), while an input has the few
 * logsources it has (a Windows stream never needs the Linux, cloud or
 * Zeek ones).  Shared by the matchers of every thread: a database is
 * loaded once, under `mu`, and `state` says so (release) before any
 * other thread may scan it (acquire, ruleset_ready).  The pointers
 * never change, so route sets may hold them before the load. */
enum { DB_UNLOADED, DB_LOADED, DB_FAILED };
struct lazy_dbs {
    struct cf_hs_lazy *file;
    void *mem; /* every database's place, 64-aligned (cf_malloc) */
    pthread_mutex_t mu;
    _Atomic unsigned char *state; /* per rs->hsdbs entry */
    _Atomic size_t loaded, failed;
};

/* What the scans of one event field reported for one value, for the
 * events of one route set: the memo's entry.  The key is the field's
 * struct field_db (all its databases serving the set: a literal one and
 * a regex one are one lookup), or, for the keywords, the database.
 * `blob` holds the items the scans' expressions report whose rules the
 * route set evaluates (route_set.rule_on; the
 * others' marks are never read, and were most of them: 33 of 54 per
 * LSASS event), expanded when stored so a hit marks them without going
 * through expr_items; then the value's len bytes. */
struct memo_entry {
    const void *key; /* NULL: empty */
    uint64_t hash;
    uint64_t gen; /* route_set.gen */
    uint32_t len, n_items;
    uint32_t *blob;
    uint32_t cap; /* bytes allocated at blob, reused by the next value */
    bool used;    /* answered a lookup since it was stored */
};

/* A database part an event field is scanned with on a route set. */
struct set_scan {
    const hs_database_t *db;
    const char *what; /* the field's name, for a failed scan's message */
    bool literal;     /* db_part.literal */
};

/* What matching an event needs that depends only on its route set,
 * worked out once per distinct set (events of one source share one):
 * which database parts scan which fields, which rules it evaluates. */
struct route_set {
    uint64_t hash;
    uint64_t *routes;  /* route_words; NULL: empty slot.  The one block */
    uint64_t *rule_on; /* bit ri: rule ri is evaluated on the set */
    /* The scans of field database d on the set (those of its parts
     * serving the set) are scans[db_scan[d]..db_scan[d + 1]). */
    struct set_scan *scans;
    uint32_t *db_scan;
    /* The keyword databases serving the set: patterns scanned per leaf
     * (n_kw), then literals scanned over all leaves at once (n_kl). */
    const hs_database_t **kw;
    uint32_t n_kw, n_kl;
    bool any;     /* some route */
    uint64_t gen; /* unique per filling, never 0: keys the scan memo */
};

/* An event field name the matcher looks for: a routing field's
 * (cf_router_field), a field database's, or both. */
struct name_entry {
    const char *name;
    uint32_t len;
    uint32_t route_field; /* NO_ROUTE: none */
    uint32_t db;          /* index into rs->dbs; 0: none (a keyword db) */
};

/* A slot of the matcher's name table: the name hash beside the entry,
 * so a probe for a name it does not look for (most of an event's) reads
 * one slot. */
struct name_slot {
    uint32_t hash;
    uint32_t entry; /* name_entry index + 1; 0: empty */
};

struct cf_matcher {
    const struct cf_ruleset *rs;
    hs_scratch_t *scratch;
    uint64_t *sized; /* databases loaded lazily: ruleset_ready's bitmap */
    /* The scan memo: a field value scanned before on the route set (with
     * all of its field's databases there, its keyword literal hits
     * included), or with a keyword database, is not scanned again; the
     * expressions it reported are marked from the memo.  Event
     * streams repeat their values (an estate's Sysmon events name the
     * same images, access masks and call traces over and over), and one
     * hs_scan costs far more than hashing and comparing the value.
     * Direct-mapped: a colliding value replaces the entry.  Bounded in
     * entries and bytes; values longer than MEMO_MAX_VALUE are always
     * scanned. */
    struct memo_entry *memo;
    size_t memo_bytes;
    uint64_t memo_hits, memo_misses;
    uint32_t *found; /* the ids the scan in progress reported */
    uint32_t n_found, found_cap;
    bool recording;
    struct cf_route_cache *route_cache;
    const uint64_t *routes; /* of the event being matched */
    /* What matching needs of the event's route set, per distinct set
     * (struct route_set); `rset` is the event's. */
    struct route_set *rsets;
    uint32_t rsets_used;
    struct route_set *rset_spare; /* used when a slot cannot be filled */
    uint64_t rset_gen;            /* the last route_set.gen given */
    const struct route_set *rset;
    /* What route_set_fill gathers before sizing the set's block: at most
     * one entry per part, one offset per field database. */
    uint32_t *tmp_db_scan;
    struct set_scan *tmp_scans;
    uint32_t n_parts; /* of all field databases */
    /* The names of routing fields and field databases, by name hash
     * (open addressing, at most a quarter full), looked up once per
     * event field; what an event has of them, per event: routing hits
     * for the router, and database hits {db, leaf} in leaf order. */
    struct name_entry *names;
    struct name_slot *name_slots;
    uint32_t name_mask;
    struct cf_route_hit *route_hits, *db_hits;
    uint32_t hits_cap;
    uint64_t *marks;
    uint32_t *touched;
    uint32_t n_touched;
    uint64_t *rule_bits;
    uint32_t *cand;
    /* The event's ranges (build_alts) with a marked item (bits and
     * list) and, per alternative, how many of its ranges: a rule with an
     * alternative whose count reaches rs->alt_need is a candidate. */
    uint64_t *req_hit;
    uint32_t *req_list;
    uint32_t n_req_hit;
    uint32_t *alt_cnt;
    pcre2_match_data *md;
    /* All leaf values of the event back to back, for the keyword literal
     * scan; leaf_end[i] is where leaf i ends.  Grown, never shrunk. */
    struct cf_buf concat;
    uint32_t *leaf_end;
    uint32_t n_leaves, leaf_cap;
    /* The event's leaves by name, built when a direct check first needs
     * them: slots hold the latest leaf of a name (+1), next_leaf chains
     * the others.  Grown, never shrunk. */
    bool indexed;
    uint32_t *slots;
    uint32_t slot_mask;
    uint32_t *next_leaf;
    uint32_t next_cap;
    /* Events with a failed scan, and what the first failure was. */
    uint64_t scan_errors;
    uint64_t route_failures; /* events not routed for lack of memory */
    bool event_failed;
    char first_error[160];
};

/* ---------------------------------------------------------------- */
/* Small helpers                                                     */

static bool bit_test(const uint64_t *bits, uint32_t i) {
    return (bits[i >> 6] >> (i & 63)) & 1;
}

static void bit_set(uint64_t *bits, uint32_t i) {
    bits[i >> 6] |= (uint64_t)1 << (i & 63);
}

/* Any bit of lo..hi (inclusive) set. */
static bool bits_any(const uint64_t *bits, uint32_t lo, uint32_t hi) {
    uint32_t wl = lo >> 6, wh = hi >> 6;
    uint64_t ml = ~(uint64_t)0 << (lo & 63);
    uint64_t mh = ~(uint64_t)0 >> (63 - (hi & 63));
    if (wl == wh) return (bits[wl] & ml & mh) != 0;
    if (bits[wl] & ml) return true;
    for (uint32_t w = wl + 1; w < wh; w++)
        if (bits[w]) return true;
    return (bits[wh] & mh) != 0;
}

static bool bits_intersect(const uint64_t *a, const uint64_t *b,
                           uint32_t words) {
    for (uint32_t i = 0; i < words; i++)
        if (a[i] & b[i]) return true;
    return false;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool is_plain(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

/* Writes the two bytes of `two` at o; returns where the next goes. */
static char *put2(char *o, const char *two) {
    o[0] = two[0];
    o[1] = two[1];
    return o + 2;
}

/* Writes byte c at o, escaped, and returns where the next goes (at most
 * four bytes).  Not a cf_buf call per byte: every start builds the text
 * of tens of thousands of patterns, and per-byte appends (a printf each
 * at first, then cf_buf_putc) showed in the start-up profile. */
static char *escape_byte(char *o, unsigned char c) {
    static const char hex[] = "0123456789abcdef";
    if (is_plain(c)) {
        *o++ = (char)c;
    } else {
        *o++ = '\\';
        *o++ = 'x';
        *o++ = hex[c >> 4];
        *o++ = hex[c & 15];
    }
    return o;
}

/* Appends s[0..n) escaped, optionally between `\A` and `\z`. */
static void escape_bytes(struct cf_buf *sb, const unsigned char *s, size_t n,
                         bool anchored) {
    if (n > SIZE_MAX / 4 - 4 || !cf_buf_reserve(sb, 4 * n + 4)) {
        sb->failed = true;
        return;
    }
    char *o = sb->data + sb->len;
    if (anchored) o = put2(o, "\\A");
    for (size_t i = 0; i < n; i++) o = escape_byte(o, s[i]);
    if (anchored) o = put2(o, "\\z");
    sb->len = (size_t)(o - sb->data);
    *o = '\0';
}

/* `*literal*`: the usual keyword, which can be searched for in all the
 * event's values at once. */
static bool keyword_literal(const struct cf_sigma_pattern *p) {
    if (p->kind != CF_PATTERN_GLOB || p->len < 3 || p->wild[0] != '*' ||
        p->wild[p->len - 1] != '*')
        return false;
    for (size_t i = 1; i + 1 < p->len; i++)
        if (p->wild[i]) return false;
    return true;
}

/* A glob as an anchored Hyperscan expression.  Leading and trailing `*`
 * drop the anchor instead of becoming `.*`, which lets Hyperscan treat
 * `contains` as a plain literal search and report at the first hit.
 * `?` is one byte (HS_FLAG_UTF8 is never set), as in the oracle.  Sets
 * *empty when the glob can match the empty value (needs ALLOWEMPTY). */
static void glob_to_expr(const struct cf_sigma_pattern *p, struct cf_buf *sb,
                         bool *empty) {
    size_t start = 0, end = p->len;
    while (start < end && p->wild[start] == '*') start++;
    while (end > start && p->wild[end - 1] == '*') end--;
    *empty = true;
    /* four bytes a byte at most, and the two anchors */
    if (p->len > SIZE_MAX / 4 - 4 || !cf_buf_reserve(sb, 4 * p->len + 4)) {
        sb->failed = true;
        return;
    }
    char *o = sb->data + sb->len, *first = o;
    if (start == 0) o = put2(o, "\\A");
    for (size_t i = start; i < end; i++) {
        if (p->wild[i] == '*') {
            if (p->wild[i - 1] != '*') o = put2(o, ".*");
        } else if (p->wild[i] == '?') {
            *o++ = '.';
            *empty = false;
        } else {
            o = escape_byte(o, p->text[i]);
            *empty = false;
        }
    }
    if (end == p->len) o = put2(o, "\\z");
    /* A glob of only stars matches everything; `\A` alone says so. */
    if (o == first) o = put2(o, "\\A");
    sb->len = (size_t)(o - sb->data);
    *o = '\0';
}

/* Whether glob `p` is a plain literal with optional leading and trailing
 * `*` (contains, startswith, endswith, equals), and which bytes
 * (text[*lo..*hi)) are the literal: EXPR_REGEX when not (a `?`, an inner
 * `*`, nothing left but stars). */
static uint8_t glob_literal(const struct cf_sigma_pattern *p, size_t *lo,
                            size_t *hi) {
    size_t start = 0, end = p->len;
    if (p->kind != CF_PATTERN_GLOB) return EXPR_REGEX;
    while (start < end && p->wild[start] == '*') start++;
    while (end > start && p->wild[end - 1] == '*') end--;
    if (start == end || end - start > UINT32_MAX) return EXPR_REGEX;
    for (size_t i = start; i < end; i++)
        if (p->wild[i]) return EXPR_REGEX;
    *lo = start;
    *hi = end;
    return (uint8_t)(EXPR_LIT | (start == 0 ? EXPR_LIT_START : 0) |
                     (end == p->len ? EXPR_LIT_END : 0));
}

static unsigned char fold(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Direct glob matching, only used for a glob Hyperscan refused
 * (iterative with one backtrack point: linear in practice). */
static bool glob_match(const struct cf_sigma_pattern *p, const char *s,
                       size_t n) {
    bool cased = p->flags & CF_PAT_CASED;
    size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0;
    while (si < n) {
        if (pi < p->len && p->wild[pi] == '*') {
            star_p = ++pi;
            star_s = si;
        } else if (pi < p->len && (p->wild[pi] == '?' ||
                                   (cased ? p->text[pi] == (unsigned char)s[si]
                                          : fold(p->text[pi]) ==
                                                fold((unsigned char)s[si])))) {
            pi++;
            si++;
        } else if (star_p != SIZE_MAX) {
            pi = star_p;
            si = ++star_s;
        } else {
            return false;
        }
    }
    while (pi < p->len && p->wild[pi] == '*') pi++;
    return pi == p->len;
}

/* ---------------------------------------------------------------- */
/* Builder                                                           */

struct cand_expr {
    /* The expression, at builder.texts.data + text_off (NUL-terminated);
     * for a literal (kind), its bytes, which it is compiled from (`lit`)
     * and which with kind and flags name it. */
    size_t text_off;
    uint32_t text_len;
    uint32_t text_hash; /* of the text alone (group_hash) */
    unsigned flags;
    uint32_t db;
    bool regex;
    uint8_t kind; /* enum expr_kind */
    /* EXPR_LIT*: the literal's bytes, borrowed from the rule's pattern or
     * the field map's value table, both of which outlive the builder. */
    const char *lit;
    uint32_t lit_len; /* KEYWORD_LIT_DB and EXPR_LIT*: bytes of the literal */
};

struct expr_use {
    uint32_t expr;
    uint32_t item;
    const struct cf_sigma_pattern *alt;
};

struct expr_slot {
    uint32_t hash;
    uint32_t expr; /* index + 1; 0: empty */
};

/* What the expression layer of the last compile with the same inputs
 * came to (plan_key), read back from the cache so that a warm start
 * skips building, naming and grouping 34,600 expressions (SigmaHQ): each
 * expression's kind and literal length, the expression of each use in
 * the order build_cond makes them, the key of the databases, and each
 * field's parts.  The arrays point into the loaded bytes (unaligned). */
struct plan {
    uint8_t hs_key[CF_HS_CACHE_KEY_LEN];
    uint64_t n_exprs, n_uses, n_items, n_dbs, n_hsdbs, route_words;
    const unsigned char *kinds;    /* n_exprs u8 */
    const unsigned char *lit_lens; /* n_exprs u32 */
    const unsigned char *uses;     /* n_uses u32 */
    /* per field: u32 n_parts; per part: u32 index, u8 literal, u8
     * fallback, route_words u64 */
    const unsigned char *parts, *end;
};

struct builder {
    struct cf_ruleset *rs;
    struct cf_rulebook *rb;
    char *errstr;
    size_t errstr_size;
    struct cand_expr *exprs;
    size_t n_exprs, cap_exprs;
    /* Every expression's text back to back, each with its NUL, in
     * expression order: one allocation instead of one per expression,
     * and what cache_key hashes in one piece. */
    struct cf_buf texts;
    /* Open addressing over exprs, the hash beside the index: a probe
     * that passes an other expression's slot then costs one cache miss,
     * not two (the lookups are random over 34,600 expressions, and the
     * misses were most of add_expr's time). */
    struct expr_slot *expr_slots;
    size_t expr_slot_cap;
    struct expr_use *uses;
    size_t n_uses, cap_uses;
    struct cvalue **item_value;
    uint32_t *item_rule;
    size_t n_items, cap_items;
    size_t cap_dbs;
    uint8_t *status; /* enum expr_status; atomic while compiling */
    /* Expressions per distinct database (CSR, build_groups), and the
     * field each database is for (error messages). */
    uint32_t *db_member_off;
    uint32_t *db_members;
    uint32_t *db_field;
    bool *db_literal; /* compiled with the literal API */
    /* build_cond's scratch: expression texts, and a condition's
     * databases (one per event name). */
    struct cf_buf sb, tb;
    uint32_t *db_ids;
    size_t cap_db_ids;
    bool oom;
    /* A warm start's compile plan (struct plan), or NULL; plan_bad: the
     * rules did not come out as it says. */
    const struct plan *plan;
    bool plan_bad;
    /* map_names' answers for conditions (open addressing, a power of two
     * slots; `hash` 0: free). */
    struct names_memo *memo;
    size_t memo_cap, memo_used;
    /* Per rule: a value of it has a direct check (note_direct), for
     * compile_direct_regexes, which then visits only those rules. */
    bool *has_direct;
};

/* The event names of a Sigma field for rules of one logsource, and their
 * databases: SigmaHQ's 11,800 field conditions name far fewer distinct
 * (product, category, field) triples, and each answer took a walk of
 * the field mapping's logsource-scoped aliases (case-insensitive
 * compares), a hash of each name and a database lookup per name. */
struct names_memo {
    uint64_t hash;                          /* of the triple; 0: free slot */
    const char *product, *category, *field; /* the first rule's (borrowed) */
    struct name_ref *refs;                  /* in the ruleset's arena, shared */
    size_t n;
    uint32_t *dbs; /* fill_db_ids' answer once asked (cf_free), or NULL */
};

static const char *expr_text(const struct builder *b,
                             const struct cand_expr *e) {
    return b->texts.data + e->text_off;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem, bool *oom) {
    if (need <= *cap) return p;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need) cap2 *= 2;
    void *q = cf_realloc(p, cap2 * elem);
    if (!q) {
        *oom = true;
        return NULL;
    }
    *cap = cap2;
    return q;
}

/* n zeroed elements of `size` from the ruleset's arena; NULL when out of
 * memory.  Freed only with the ruleset. */
static void *arena_calloc(struct cf_ruleset *rs, size_t n, size_t size) {
    const size_t align = sizeof(max_align_t), block = (size_t)64 << 10;
    if (n == 0) n = 1;
    if (size && n > (SIZE_MAX - align) / size) return NULL;
    size_t bytes = (n * size + align - 1) / align * align;
    struct arena_block *a = rs->arena;
    if (!a || a->size - a->used < bytes) {
        size_t data = bytes > block ? bytes : block;
        if (!(a = cf_calloc(1, sizeof *a + data))) return NULL;
        a->size = data;
        a->next = rs->arena;
        rs->arena = a;
    }
    void *p = (char *)a->data + a->used;
    a->used += bytes;
    return p;
}

#define GROW(b, arr, n, cap)                                                   \
    do {                                                                       \
        void *q_ = grow((arr), &(cap), (n) + 1, sizeof(*(arr)), &(b)->oom);    \
        if (!q_) return -1;                                                    \
        (arr) = q_;                                                            \
    } while (0)

static void table_insert(uint32_t *slots, uint32_t mask, uint32_t hash,
                         uint32_t value) {
    uint32_t i = hash & mask;
    while (slots[i]) i = (i + 1) & mask;
    slots[i] = value + 1;
}

/* Returns the database index for an event field name, creating it. */
static int db_for_name(struct builder *b, const char *name, uint32_t *out) {
    struct cf_ruleset *rs = b->rs;
    size_t len = strlen(name);
    uint32_t hash = cf_hash_name(name, len);
    if (rs->slots) {
        for (uint32_t i = hash & rs->slot_mask; rs->slots[i];
             i = (i + 1) & rs->slot_mask) {
            struct field_db *d = &rs->dbs[rs->slots[i] - 1];
            if (d->hash == hash && d->len == len &&
                memcmp(d->name, name, len) == 0) {
                *out = rs->slots[i] - 1;
                return 0;
            }
        }
    }
    /* Keep the table under half full; rebuild on growth. */
    if (!rs->slots || (rs->n_dbs + 1) * 2 > rs->slot_mask + 1) {
        uint32_t size = rs->slots ? (rs->slot_mask + 1) * 2 : 256;
        uint32_t *slots = cf_calloc(size, sizeof *slots);
        if (!slots) return -1;
        cf_free(rs->slots);
        rs->slots = slots;
        rs->slot_mask = size - 1;
        /* The keyword databases are never looked up by name. */
        for (size_t i = N_KEYWORD_DBS; i < rs->n_dbs; i++)
            table_insert(rs->slots, rs->slot_mask, rs->dbs[i].hash,
                         (uint32_t)i);
    }
    GROW(b, rs->dbs, rs->n_dbs, b->cap_dbs);
    struct field_db *d = &rs->dbs[rs->n_dbs];
    memset(d, 0, sizeof *d);
    if (!(d->name = cf_strdup(name))) return -1;
    d->len = (uint32_t)len;
    d->hash = hash;
    if (rs->n_dbs >= N_KEYWORD_DBS)
        table_insert(rs->slots, rs->slot_mask, hash, (uint32_t)rs->n_dbs);
    *out = (uint32_t)rs->n_dbs++;
    return 0;
}

/* Adds (or finds) the expression in database `db` and records that it
 * reports `item`. */
static int add_expr(struct builder *b, uint32_t db, const char *text,
                    size_t text_len, unsigned flags, bool regex, uint8_t kind,
                    const char *lit, uint32_t lit_len, uint32_t item,
                    const struct cf_sigma_pattern *alt) {
    if (text_len >= UINT32_MAX) return -1;
    uint32_t text_hash = cf_hash_name(text, text_len);
    uint32_t hash = text_hash ^ (flags * 2654435761u) ^ (db * 40503u);
    uint32_t idx = UINT32_MAX;
    if ((b->n_exprs + 1) * 4 > b->expr_slot_cap * 3) {
        size_t cap = b->expr_slot_cap ? b->expr_slot_cap * 2 : 4096;
        struct expr_slot *slots = cf_calloc(cap, sizeof *slots);
        if (!slots) return -1;
        for (size_t i = 0; i < b->expr_slot_cap; i++) {
            struct expr_slot o = b->expr_slots[i];
            if (!o.expr) continue;
            size_t j = o.hash & (cap - 1);
            while (slots[j].expr) j = (j + 1) & (cap - 1);
            slots[j] = o;
        }
        cf_free(b->expr_slots);
        b->expr_slots = slots;
        b->expr_slot_cap = cap;
    }
    uint32_t mask = (uint32_t)b->expr_slot_cap - 1, at = hash & mask;
    for (; b->expr_slots[at].expr; at = (at + 1) & mask) {
        if (b->expr_slots[at].hash != hash) continue;
        struct cand_expr *e = &b->exprs[b->expr_slots[at].expr - 1];
        if (e->db == db && e->flags == flags && e->kind == kind &&
            e->text_len == text_len &&
            memcmp(expr_text(b, e), text, text_len) == 0) {
            idx = b->expr_slots[at].expr - 1;
            break;
        }
    }
    if (idx == UINT32_MAX) {
        GROW(b, b->exprs, b->n_exprs, b->cap_exprs);
        struct cand_expr *e = &b->exprs[b->n_exprs];
        memset(e, 0, sizeof *e);
        e->text_off = b->texts.len;
        cf_buf_append(&b->texts, text, text_len + 1); /* with its NUL */
        if (b->texts.failed) return -1;
        e->text_len = (uint32_t)text_len;
        e->text_hash = text_hash;
        if (kind != EXPR_REGEX) e->lit = lit;
        e->flags = flags;
        e->db = db;
        e->regex = regex;
        e->kind = kind;
        e->lit_len = lit_len;
        idx = (uint32_t)b->n_exprs++;
        b->expr_slots[at] = (struct expr_slot){hash, idx + 1};
    }
    GROW(b, b->uses, b->n_uses, b->cap_uses);
    b->uses[b->n_uses++] = (struct expr_use){idx, item, alt};
    return 0;
}

/* Sizes the expression table and arrays for the patterns the rules
 * hold (an expression per pattern and event name, fewer once shared), so
 * they are allocated once instead of grown and rehashed through six
 * sizes (SigmaHQ: 49,000 uses of 34,600 expressions).  Only a guess:
 * add_expr still grows them past it. */
static int reserve_exprs(struct builder *b) {
    size_t n = 0;
    for (size_t i = 0; i < b->rs->n_rules; i++) {
        const struct cf_sigma_rule *r = b->rs->rules[i].rule;
        for (size_t s = 0; s < r->n_searches; s++)
            for (size_t c = 0; c < r->searches[s].n_alts; c++) {
                const struct cf_sigma_conjunction *cj = &r->searches[s].alts[c];
                for (size_t k = 0; k < cj->n_conds; k++)
                    for (size_t v = 0; v < cj->conds[k].n_values; v++)
                        n += cj->conds[k].values[v].n_alts;
            }
    }
    size_t cap = 4096;
    while (3 * cap < 4 * (n + 1)) cap *= 2;
    if (!(b->expr_slots = cf_calloc(cap, sizeof *b->expr_slots))) return -1;
    b->expr_slot_cap = cap;
    if (!(b->exprs = grow(b->exprs, &b->cap_exprs, n + 1, sizeof *b->exprs,
                          &b->oom)) ||
        !(b->uses = grow(b->uses, &b->cap_uses, n + n / 4 + 1, sizeof *b->uses,
                         &b->oom)))
        return -1;
    return 0;
}

static int add_direct(struct cvalue *v, const struct cf_sigma_pattern *alt) {
    for (size_t i = 0; i < v->n_direct; i++)
        if (v->direct[i].pat == alt) return 0;
    struct direct_alt *d = cf_realloc(v->direct, (v->n_direct + 1) * sizeof *d);
    if (!d) return -1;
    v->direct = d;
    memset(&d[v->n_direct], 0, sizeof *d);
    d[v->n_direct++].pat = alt;
    return 0;
}

/* add_direct for a value of rule ri, noted for compile_direct_regexes. */
static int note_direct(struct builder *b, uint32_t ri, struct cvalue *v,
                       const struct cf_sigma_pattern *alt) {
    b->has_direct[ri] = true;
    return add_direct(v, alt);
}

/* The event names of `field` for rule r, from the arena (the condition's
 * own names) or the heap (a field reference's, freed with its direct
 * check). */
static int lookup_names(struct builder *b, const struct cf_sigma_rule *r,
                        const char *field, bool in_arena, struct name_ref **out,
                        size_t *n_out) {
    size_t n = 0;
    const char *const *names =
        cf_fieldmap_lookup_for(b->rs->fmap, r->product, r->category, field, &n);
    const char *self[1] = {field};
    if (!names || n == 0) {
        names = self;
        n = 1;
    }
    struct name_ref *refs = in_arena ? arena_calloc(b->rs, n, sizeof *refs)
                                     : cf_calloc(n, sizeof *refs);
    if (!refs) return -1;
    for (size_t i = 0; i < n; i++) {
        refs[i].name = names[i];
        refs[i].len = (uint32_t)strlen(names[i]);
        refs[i].hash = cf_hash_name(names[i], refs[i].len);
    }
    *out = refs;
    *n_out = n;
    return 0;
}

static bool same_str(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Hashes a string or NULL (told apart from ""). */
static uint64_t hash_part(uint64_t h, const char *s) {
    return s ? cf_hash_continue(h, s, strlen(s) + 1)
             : cf_hash_continue(h, "", 0);
}

/* The memo slot of (product, category, field): the one holding it, or
 * the free one where it belongs (memo_cap > 0). */
static struct names_memo *memo_slot(struct builder *b, uint64_t h,
                                    const char *product, const char *category,
                                    const char *field) {
    size_t mask = b->memo_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct names_memo *m = &b->memo[i];
        if (!m->hash ||
            (m->hash == h && strcmp(m->field, field) == 0 &&
             same_str(m->product, product) && same_str(m->category, category)))
            return m;
    }
}

/* A condition's names (lookup_names, in the arena), shared by every
 * condition of the same field and logsource; *memo_at: their memo
 * slot's index, for fill_db_ids.  -1 when out of memory. */
static int map_names(struct builder *b, const struct cf_sigma_rule *r,
                     const char *field, struct name_ref **out, size_t *n_out,
                     size_t *memo_at) {
    uint64_t h =
        hash_part(hash_part(cf_hash_str(field), r->product), r->category);
    h = h ? h : 1;                              /* 0 marks a free slot */
    if (2 * (b->memo_used + 1) > b->memo_cap) { /* at most half full */
        size_t cap = b->memo_cap ? 2 * b->memo_cap : 1024;
        struct names_memo *old = b->memo;
        size_t old_cap = b->memo_cap;
        if (!(b->memo = cf_calloc(cap, sizeof *b->memo))) {
            b->memo = old;
            return -1;
        }
        b->memo_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].hash)
                *memo_slot(b, old[i].hash, old[i].product, old[i].category,
                           old[i].field) = old[i];
        cf_free(old);
    }
    struct names_memo *m = memo_slot(b, h, r->product, r->category, field);
    if (!m->hash) {
        if (lookup_names(b, r, field, true, &m->refs, &m->n)) return -1;
        m->hash = h;
        m->product = r->product;
        m->category = r->category;
        m->field = field;
        b->memo_used++;
    }
    *out = m->refs;
    *n_out = m->n;
    *memo_at = (size_t)(m - b->memo);
    return 0;
}

/* The text a target source writes for literal value `p` of a field it
 * reads under the other name `name` (IntegrityLevel High is
 * MandatoryLabel S-1-16-12288 in 4688), or NULL: as written. */
static const char *target_value(const struct builder *b,
                                const struct cf_sigma_field_cond *fc,
                                const struct name_ref *name,
                                const struct cf_sigma_pattern *p) {
    if (p->kind != CF_PATTERN_GLOB || strcmp(name->name, fc->field) == 0)
        return NULL;
    for (size_t i = 0; i < p->len; i++)
        if (p->wild[i]) return NULL;
    return cf_fieldmap_target_value(b->rs->fmap, name->name,
                                    (const char *)p->text, p->len);
}

/* The value of a `keywords|all` list that the keyword literal scan
 * looks for, or SIZE_MAX: the longest of its plain `*literal*` values.
 * The others are then checked directly, only in events where that one
 * is found, as Suricata scans for one "fast pattern" per signature and
 * verifies the rest after a hit.  A list such as
 * ['POST', 200, '/ecp/DDI/DDIService.svc/SetObject', '$'] otherwise had
 * every Windows event's values scanned for '200' and '$', which hit in
 * most of them and made the scan a third dearer (the literal database
 * serving Windows events holds the keywords of logsources the mapping
 * does not know, category: webserver among them). */
static size_t fast_keyword(const struct cf_sigma_field_cond *fc) {
    size_t fast = SIZE_MAX, best = 0;
    if (fc->field || !fc->all || fc->negate || fc->n_values < 2)
        return SIZE_MAX;
    for (size_t v = 0; v < fc->n_values; v++) {
        const struct cf_sigma_value *sv = &fc->values[v];
        if (sv->n_alts == 1 && keyword_literal(&sv->alts[0]) &&
            sv->alts[0].len > best) {
            fast = v;
            best = sv->alts[0].len;
        }
    }
    return fast;
}

/* The databases of a condition's values: the keywords', or one per
 * event name the field maps to (its names are memo slot memo_at's,
 * which keeps the answer: the same names, the same databases). */
static int fill_db_ids(struct builder *b, const struct cf_sigma_field_cond *fc,
                       const struct ccond *cc, size_t memo_at, uint32_t *db_ids,
                       size_t *n_db) {
    if (!fc->field) {
        db_ids[(*n_db)++] = KEYWORD_DB;
        return 0;
    }
    struct names_memo *m = &b->memo[memo_at];
    if (!m->dbs) {
        uint32_t *dbs =
            cf_malloc((cc->n_names ? cc->n_names : 1) * sizeof *dbs);
        if (!dbs) return -1;
        for (size_t i = 0; i < cc->n_names; i++)
            if (db_for_name(b, cc->names[i].name, &dbs[i])) {
                cf_free(dbs);
                return -1;
            }
        m->dbs = dbs;
    }
    memcpy(db_ids + *n_db, m->dbs, cc->n_names * sizeof *db_ids);
    *n_db += cc->n_names;
    return 0;
}

/* A use whose expression the plan names (where add_expr would have
 * found or made it); one it cannot name marks the plan bad. */
static int plan_use(struct builder *b, uint32_t item,
                    const struct cf_sigma_pattern *alt) {
    uint32_t e = UINT32_MAX;
    if (b->n_uses < b->plan->n_uses)
        memcpy(&e, b->plan->uses + 4 * b->n_uses, 4);
    if (e >= b->plan->n_exprs) {
        b->plan_bad = true;
        e = 0;
    }
    GROW(b, b->uses, b->n_uses, b->cap_uses);
    b->uses[b->n_uses++] = (struct expr_use){e, item, alt};
    return 0;
}

/* Turns one field condition into items, expressions and direct checks. */
static int build_cond(struct builder *b, uint32_t rule_index,
                      const struct cf_sigma_field_cond *fc, struct ccond *cc) {
    const struct cf_sigma_rule *rule = b->rs->rules[rule_index].rule;
    /* The builder's, reused from condition to condition. */
    struct cf_buf *sb = &b->sb, *tb = &b->tb;
    uint32_t *db_ids; /* one database per name the field maps to */
    size_t n_db = 0, memo_at = 0;

    cc->fc = fc;
    /* Only a rule with an exclude route has a lacking condition
     * (cf_fieldmap_excluded found none otherwise; every target has a
     * service): most rules skip the target's list of names. */
    cc->lacking = b->rs->rules[rule_index].exclude_route != NO_ROUTE &&
                  cf_fieldmap_cond_lacks(b->rs->fmap, rule, fc);
    if (fc->field) {
        if (map_names(b, rule, fc->field, &cc->names, &cc->n_names, &memo_at))
            return -1;
    }
    if (!(db_ids = grow(b->db_ids, &b->cap_db_ids, cc->n_names + 1,
                        sizeof *db_ids, &b->oom)))
        return -1;
    b->db_ids = db_ids;
    if (!(cc->values = arena_calloc(b->rs, fc->n_values, sizeof *cc->values)))
        return -1;
    size_t fast = fast_keyword(fc);
    for (size_t v = 0; v < fc->n_values; v++) {
        struct cvalue *cv = &cc->values[v];
        const struct cf_sigma_value *sv = &fc->values[v];
        cv->item = NO_ITEM;
        if (fast != SIZE_MAX && v != fast && sv->n_alts == 1 &&
            keyword_literal(&sv->alts[0])) {
            if (note_direct(b, rule_index, cv, &sv->alts[0])) return -1;
            continue;
        }
        for (size_t a = 0; a < sv->n_alts; a++) {
            const struct cf_sigma_pattern *p = &sv->alts[a];
            if (p->kind != CF_PATTERN_GLOB && p->kind != CF_PATTERN_REGEX) {
                if (note_direct(b, rule_index, cv, p)) return -1;
                if (p->kind == CF_PATTERN_FIELDREF) {
                    struct direct_alt *d = &cv->direct[cv->n_direct - 1];
                    if (!d->refs && lookup_names(b, rule, (const char *)p->text,
                                                 false, &d->refs, &d->n_refs))
                        return -1;
                }
                continue;
            }
            if (cv->item == NO_ITEM) {
                /* not GROW: item_value grows in step (below) */
                size_t old_cap = b->cap_items;
                void *ir = grow(b->item_rule, &b->cap_items, b->n_items + 1,
                                sizeof *b->item_rule, &b->oom);
                if (!ir) return -1;
                b->item_rule = ir;
                /* item_value grows in step with item_rule (a realloc
                 * per item, to the same size, was 40,000 calls). */
                if (b->cap_items != old_cap || !b->item_value) {
                    struct cvalue **iv = cf_realloc(
                        b->item_value, b->cap_items * sizeof *b->item_value);
                    if (!iv) return -1;
                    b->item_value = iv;
                }
                b->item_rule[b->n_items] = rule_index;
                b->item_value[b->n_items] = cv;
                cv->item = (uint32_t)b->n_items++;
            }
            if (b->plan) { /* the same uses, their expressions planned */
                size_t n_use = 1;
                if (fc->field || !keyword_literal(p)) {
                    if (n_db == 0 &&
                        fill_db_ids(b, fc, cc, memo_at, db_ids, &n_db))
                        return -1;
                    n_use = n_db;
                }
                for (size_t i = 0; i < n_use; i++)
                    if (plan_use(b, cv->item, p)) return -1;
                continue;
            }
            unsigned flags = HS_FLAG_SINGLEMATCH;
            uint32_t lit_len = 0;
            cf_buf_reset(sb);
            if (!fc->field && keyword_literal(p)) {
                /* Every occurrence is reported (no SINGLEMATCH) so the
                 * matcher can keep those inside one leaf. */
                escape_bytes(sb, p->text + 1, p->len - 2, false);
                flags = (p->flags & CF_PAT_CASED) ? 0 : HS_FLAG_CASELESS;
                lit_len = (uint32_t)(p->len - 2);
                /* One byte cannot straddle two leaves, so its first hit
                 * is enough (SigmaHQ has keywords like '0' and ':'). */
                if (lit_len == 1) flags |= HS_FLAG_SINGLEMATCH;
                if (sb->failed) return -1;
                if (add_expr(b, KEYWORD_LIT_DB, sb->data, sb->len, flags, false,
                             EXPR_REGEX, NULL, lit_len, cv->item, p))
                    return -1;
                continue;
            }
            size_t lit_lo = 0, lit_hi = 0;
            uint8_t kind =
                fc->field ? glob_literal(p, &lit_lo, &lit_hi) : EXPR_REGEX;
            if (kind != EXPR_REGEX) {
                /* A literal is compiled from its bytes (compile_db), so
                 * its text is those bytes too: with the kind and flags
                 * they name it (add_expr) and key the cache as the
                 * escaped, anchored regex did, for less than a tenth of
                 * the work (33,700 of SigmaHQ's 34,600 expressions). */
                cf_buf_append(sb, p->text + lit_lo, lit_hi - lit_lo);
                flags |= HS_FLAG_DOTALL;
                if (!(p->flags & CF_PAT_CASED)) flags |= HS_FLAG_CASELESS;
            } else if (p->kind == CF_PATTERN_GLOB) {
                bool empty;
                glob_to_expr(p, sb, &empty);
                flags |= HS_FLAG_DOTALL;
                if (!(p->flags & CF_PAT_CASED)) flags |= HS_FLAG_CASELESS;
                if (empty) flags |= HS_FLAG_ALLOWEMPTY;
            } else {
                cf_buf_puts(sb, (const char *)p->text);
                if (p->flags & CF_PAT_RE_I) flags |= HS_FLAG_CASELESS;
                if (p->flags & CF_PAT_RE_M) flags |= HS_FLAG_MULTILINE;
                if (p->flags & CF_PAT_RE_S) flags |= HS_FLAG_DOTALL;
            }
            if (sb->failed) return -1;
            if (n_db == 0 && fill_db_ids(b, fc, cc, memo_at, db_ids, &n_db))
                return -1;
            for (size_t i = 0; i < n_db; i++) {
                const char *text = sb->data ? sb->data : "";
                size_t text_len = sb->len;
                const char *lit = (const char *)p->text + lit_lo;
                uint32_t n_lit = (uint32_t)(lit_hi - lit_lo);
                uint8_t k = kind;
                const char *to =
                    fc->field ? target_value(b, fc, &cc->names[i], p) : NULL;
                if (to) { /* the source writes this value otherwise */
                    n_lit = (uint32_t)strlen(to);
                    if (n_lit) { /* a literal: its bytes, as above */
                        text = to;
                        text_len = n_lit;
                    } else {
                        cf_buf_reset(tb);
                        escape_bytes(tb, (const unsigned char *)to, 0, true);
                        if (tb->failed) return -1;
                        text = tb->data;
                        text_len = tb->len;
                    }
                    lit = to;
                    k = n_lit ? EXPR_LIT | EXPR_LIT_START | EXPR_LIT_END
                              : EXPR_REGEX;
                }
                if (add_expr(b, db_ids[i], text, text_len, flags,
                             p->kind == CF_PATTERN_REGEX, k, lit,
                             k == EXPR_REGEX ? 0 : n_lit, cv->item, p))
                    return -1;
            }
        }
    }
    return 0;
}

static int build_rule(struct builder *b, uint32_t ri) {
    struct crule *cr = &b->rs->rules[ri];
    const struct cf_sigma_rule *r = cr->rule;

    if (!(cr->searches =
              arena_calloc(b->rs, r->n_searches, sizeof *cr->searches)))
        return -1;
    for (size_t s = 0; s < r->n_searches; s++) {
        const struct cf_sigma_search *ss = &r->searches[s];
        struct csearch *cs = &cr->searches[s];
        if (!(cs->conjs = arena_calloc(b->rs, ss->n_alts, sizeof *cs->conjs)))
            return -1;
        cs->n_conjs = ss->n_alts;
        for (size_t c = 0; c < ss->n_alts; c++) {
            const struct cf_sigma_conjunction *sc = &ss->alts[c];
            struct cconj *cj = &cs->conjs[c];
            if (!(cj->conds =
                      arena_calloc(b->rs, sc->n_conds, sizeof *cj->conds)))
                return -1;
            cj->n_conds = sc->n_conds;
            for (size_t k = 0; k < sc->n_conds; k++)
                if (build_cond(b, ri, &sc->conds[k], &cj->conds[k])) return -1;
        }
    }
    return 0;
}

static void set_ranged(struct ccond *cc) {
    uint32_t lo = UINT32_MAX, hi = 0, n = 0;
    cc->ranged = false;
    for (size_t v = 0; v < cc->fc->n_values; v++) {
        const struct cvalue *cv = &cc->values[v];
        if (cv->n_direct) return;
        if (cv->item == NO_ITEM) continue;
        lo = cv->item < lo ? cv->item : lo;
        hi = cv->item > hi ? cv->item : hi;
        n++;
    }
    if (n && hi - lo + 1 != n) return; /* not one run: loop instead */
    cc->item_lo = n ? lo : 1;
    cc->item_hi = n ? hi : 0;
    cc->ranged = true;
}

struct req_list {
    struct item_range *r;
    size_t n, cap;
};

/* Adds the item ranges that must each have a mark for `c` to hold:
 * under AND, those of every operand; for a search of one conjunction,
 * its ranged conditions that need a matching value (not neq).  OR and
 * NOT add nothing (no one range is necessary).  Sound under Kleene's
 * logic too (tri_tree): a necessary condition left unknown leaves the
 * rule short of TRUE. */
static int collect_required(const struct crule *cr,
                            const struct cf_sigma_cond *c,
                            struct req_list *out) {
    if (c->op == CF_COND_AND) {
        for (uint32_t i = 0; i < c->n_kids; i++)
            if (collect_required(cr, &c->kids[i], out)) return -1;
        return 0;
    }
    if (c->op != CF_COND_SEARCH || c->search >= cr->rule->n_searches ||
        cr->searches[c->search].n_conjs != 1)
        return 0;
    const struct cconj *cj = &cr->searches[c->search].conjs[0];
    for (size_t k = 0; k < cj->n_conds; k++) {
        const struct ccond *cc = &cj->conds[k];
        if (!cc->ranged || cc->fc->negate || cc->item_lo > cc->item_hi)
            continue;
        bool oom = false;
        void *q = grow(out->r, &out->cap, out->n + 1, sizeof *out->r, &oom);
        if (!q) return -1;
        out->r = q;
        out->r[out->n++] = (struct item_range){cc->item_lo, cc->item_hi};
    }
    return 0;
}

/* A rule condition's alternatives (build_alts): each a list of item
 * ranges that must all have a marked item; the condition can hold only
 * when one alternative's do.  Bounded: past MAX_ALTS alternatives the
 * condition counts as unconstrained, past MAX_ALT_RANGES ranges an
 * alternative keeps the first (fewer necessary ranges are still
 * necessary); either way only evaluations are lost. */
#define MAX_ALTS 8
#define MAX_ALT_RANGES 16
struct alt_list {
    int n; /* -1: unconstrained (can hold with nothing marked) */
    struct {
        uint32_t n;
        struct item_range r[MAX_ALT_RANGES];
    } a[MAX_ALTS];
};

static void alt_add_range(struct alt_list *l, int a, uint32_t lo, uint32_t hi) {
    for (uint32_t k = 0; k < l->a[a].n; k++)
        if (l->a[a].r[k].lo == lo && l->a[a].r[k].hi == hi) return;
    if (l->a[a].n < MAX_ALT_RANGES)
        l->a[a].r[l->a[a].n++] = (struct item_range){lo, hi};
}

/* The ranges a conjunction needs: its ranged conditions that need a
 * matching value (not neq), and the item of each value of an `|all` one
 * checked by its item alone.  0 ranges: it needs none. */
static void conj_alt(const struct cconj *cj, struct alt_list *l, int a) {
    l->a[a].n = 0;
    for (size_t k = 0; k < cj->n_conds; k++) {
        const struct ccond *cc = &cj->conds[k];
        if (cc->fc->negate) continue;
        if (cc->fc->all) {
            /* each value checked by its item alone needs it marked (of a
             * fast_keyword list: the one literal scanned) */
            for (size_t v = 0; v < cc->fc->n_values; v++)
                if (!cc->values[v].n_direct && cc->values[v].item != NO_ITEM)
                    alt_add_range(l, a, cc->values[v].item, cc->values[v].item);
        } else if (cc->ranged && cc->item_lo <= cc->item_hi) {
            alt_add_range(l, a, cc->item_lo, cc->item_hi);
        }
    }
}

static void cond_alts(const struct crule *cr, const struct cf_sigma_cond *c,
                      struct alt_list *out) {
    out->n = -1;
    switch (c->op) {
    case CF_COND_SEARCH: {
        if (c->search >= cr->rule->n_searches) return;
        const struct csearch *cs = &cr->searches[c->search];
        if (cs->n_conjs == 0 || cs->n_conjs > MAX_ALTS) return;
        for (size_t k = 0; k < cs->n_conjs; k++) {
            conj_alt(&cs->conjs[k], out, (int)k);
            if (out->a[k].n == 0) {
                out->n = -1;
                return;
            }
        }
        out->n = (int)cs->n_conjs;
        return;
    }
    case CF_COND_OR: {
        struct alt_list kid;
        int n = 0;
        for (uint32_t i = 0; i < c->n_kids; i++) {
            cond_alts(cr, &c->kids[i], &kid);
            if (kid.n < 0 || n + kid.n > MAX_ALTS) return;
            for (int k = 0; k < kid.n; k++) out->a[n++] = kid.a[k];
        }
        out->n = n > 0 ? n : -1;
        return;
    }
    case CF_COND_AND: {
        /* every pairing of the operands' alternatives; an operand that
         * would make too many is left out (its ranges are not needed) */
        struct alt_list kid, prod;
        out->n = 1;
        out->a[0].n = 0;
        for (uint32_t i = 0; i < c->n_kids; i++) {
            cond_alts(cr, &c->kids[i], &kid);
            if (kid.n < 0 || out->n * kid.n > MAX_ALTS) continue;
            prod.n = 0;
            for (int x = 0; x < out->n; x++)
                for (int y = 0; y < kid.n; y++) {
                    prod.a[prod.n] = out->a[x];
                    for (uint32_t k = 0; k < kid.a[y].n; k++)
                        alt_add_range(&prod, prod.n, kid.a[y].r[k].lo,
                                      kid.a[y].r[k].hi);
                    prod.n++;
                }
            *out = prod;
        }
        if (out->n == 1 && out->a[0].n == 0) out->n = -1;
        return;
    }
    default: return; /* NOT, TRUE, FALSE: no range is necessary */
    }
}

/* rs->item_req, the ranges' and alternatives' tables and
 * rs->rule_constrained, from each rule's cond_alts.  A rule whose
 * ranges overlap without being the same (none in SigmaHQ) is left
 * unconstrained. */
static int build_alts(struct cf_ruleset *rs) {
    struct alt_list *l = cf_malloc(sizeof *l);
    struct item_range *rr = NULL; /* the rule's distinct ranges */
    uint32_t *rr_index = NULL, *link_range = NULL, *link_alt = NULL;
    size_t cap_rule = 0, cap_need = 0, cap_lr = 0, cap_la = 0, n_links = 0;
    bool oom = false;
    int rc = -1;
    rs->item_req = cf_malloc((rs->n_items + 1) * sizeof *rs->item_req);
    rs->rule_constrained =
        cf_calloc(rs->n_rules + 1, sizeof *rs->rule_constrained);
    rr = cf_malloc(MAX_ALTS * MAX_ALT_RANGES * sizeof *rr);
    rr_index = cf_malloc(MAX_ALTS * MAX_ALT_RANGES * sizeof *rr_index);
    if (!l || !rs->item_req || !rs->rule_constrained || !rr || !rr_index)
        goto done;
    for (uint32_t i = 0; i < rs->n_items; i++) rs->item_req[i] = NO_REQ;
    for (size_t ri = 0; ri < rs->n_rules; ri++) {
        const struct crule *cr = &rs->rules[ri];
        if (cr->rejected || !cr->rule->condition) continue;
        cond_alts(cr, cr->rule->condition, l);
        if (l->n < 0) continue;
        uint32_t n_rr = 0;
        bool clash = false;
        for (int a = 0; a < l->n; a++)
            for (uint32_t k = 0; k < l->a[a].n; k++) {
                struct item_range r = l->a[a].r[k];
                uint32_t j = 0;
                while (j < n_rr && !(rr[j].lo == r.lo && rr[j].hi == r.hi)) j++;
                if (j < n_rr) continue;
                for (uint32_t o = 0; o < n_rr; o++)
                    if (r.lo <= rr[o].hi && rr[o].lo <= r.hi) clash = true;
                rr[n_rr++] = r;
            }
        if (clash) continue;
        void *q;
        size_t n_alts = rs->n_alts + (size_t)l->n;
        if (!(q = grow(rs->alt_rule, &cap_rule, n_alts, sizeof *rs->alt_rule,
                       &oom)))
            goto done;
        rs->alt_rule = q;
        if (!(q = grow(rs->alt_need, &cap_need, n_alts, sizeof *rs->alt_need,
                       &oom)))
            goto done;
        rs->alt_need = q;
        for (uint32_t j = 0; j < n_rr; j++) {
            rr_index[j] = rs->n_ranges++;
            for (uint32_t i = rr[j].lo; i <= rr[j].hi; i++)
                rs->item_req[i] = rr_index[j];
        }
        for (int a = 0; a < l->n; a++) {
            uint32_t alt = rs->n_alts++;
            rs->alt_rule[alt] = (uint32_t)ri;
            rs->alt_need[alt] = l->a[a].n;
            for (uint32_t k = 0; k < l->a[a].n; k++) {
                uint32_t j = 0;
                while (rr[j].lo != l->a[a].r[k].lo ||
                       rr[j].hi != l->a[a].r[k].hi)
                    j++;
                if (!(q = grow(link_range, &cap_lr, n_links + 1,
                               sizeof *link_range, &oom)))
                    goto done;
                link_range = q;
                if (!(q = grow(link_alt, &cap_la, n_links + 1, sizeof *link_alt,
                               &oom)))
                    goto done;
                link_alt = q;
                link_range[n_links] = rr_index[j];
                link_alt[n_links++] = alt;
            }
        }
        rs->rule_constrained[ri] = true;
    }
    /* range -> alternatives, from the links (in range order already:
     * ranges are numbered rule by rule, links made rule by rule) */
    rs->range_alt_off = cf_calloc(rs->n_ranges + 2, sizeof *rs->range_alt_off);
    rs->range_alts = cf_malloc((n_links + 1) * sizeof *rs->range_alts);
    if (!rs->range_alt_off || !rs->range_alts) goto done;
    for (size_t k = 0; k < n_links; k++) rs->range_alt_off[link_range[k] + 1]++;
    for (uint32_t r = 0; r < rs->n_ranges; r++)
        rs->range_alt_off[r + 1] += rs->range_alt_off[r];
    {
        uint32_t *fill = cf_malloc((rs->n_ranges + 1) * sizeof *fill);
        if (!fill) goto done;
        memcpy(fill, rs->range_alt_off, (rs->n_ranges + 1) * sizeof *fill);
        for (size_t k = 0; k < n_links; k++)
            rs->range_alts[fill[link_range[k]]++] = link_alt[k];
        cf_free(fill);
    }
    rc = 0;
done:
    cf_free(l);
    cf_free(rr);
    cf_free(rr_index);
    cf_free(link_range);
    cf_free(link_alt);
    return rc;
}

static int build_required(struct cf_ruleset *rs) {
    struct req_list all = {0};
    int rc = -1;
    if (!(rs->req_off = cf_calloc(rs->n_rules + 1, sizeof *rs->req_off)))
        return -1;
    for (size_t i = 0; i < rs->n_rules; i++) {
        const struct crule *cr = &rs->rules[i];
        if (!cr->rejected && cr->rule->condition &&
            collect_required(cr, cr->rule->condition, &all))
            goto done;
        rs->req_off[i + 1] = (uint32_t)all.n;
    }
    rs->req = all.r;
    all.r = NULL;
    rc = build_alts(rs);
done:
    cf_free(all.r);
    return rc;
}

/* Whether the condition can be true / false with none of the rule's
 * items marked.  Over-approximating only costs evaluations. */
struct maybe {
    bool can_true, can_false;
};

static struct maybe cond_nomark(const struct ccond *cc) {
    const struct cf_sigma_field_cond *fc = cc->fc;
    struct maybe m = {false, true};
    if (fc->negate) {
        m.can_true = true;
    } else if (fc->all) {
        m.can_true = true;
        for (size_t v = 0; v < fc->n_values; v++)
            if (cc->values[v].n_direct == 0) m.can_true = false;
    } else {
        for (size_t v = 0; v < fc->n_values; v++)
            if (cc->values[v].n_direct) m.can_true = true;
    }
    return m;
}

static struct maybe search_nomark(const struct csearch *cs) {
    struct maybe m = {false, true};
    for (size_t c = 0; c < cs->n_conjs; c++) {
        struct maybe cm = {true, false};
        for (size_t k = 0; k < cs->conjs[c].n_conds; k++) {
            struct maybe km = cond_nomark(&cs->conjs[c].conds[k]);
            cm.can_true = cm.can_true && km.can_true;
            cm.can_false = cm.can_false || km.can_false;
        }
        m.can_true = m.can_true || cm.can_true;
        m.can_false = m.can_false && cm.can_false;
    }
    return m;
}

static struct maybe tree_nomark(const struct crule *cr,
                                const struct cf_sigma_cond *c) {
    struct maybe m = {false, true};
    switch (c->op) {
    case CF_COND_TRUE: return (struct maybe){true, false};
    case CF_COND_FALSE: return (struct maybe){false, true};
    case CF_COND_SEARCH:
        if (c->search >= cr->rule->n_searches) return m;
        return search_nomark(&cr->searches[c->search]);
    case CF_COND_NOT: {
        if (c->n_kids < 1) return m;
        struct maybe k = tree_nomark(cr, &c->kids[0]);
        return (struct maybe){k.can_false, k.can_true};
    }
    case CF_COND_AND:
        m = (struct maybe){true, false};
        for (uint32_t i = 0; i < c->n_kids; i++) {
            struct maybe k = tree_nomark(cr, &c->kids[i]);
            m.can_true = m.can_true && k.can_true;
            m.can_false = m.can_false || k.can_false;
        }
        return m;
    case CF_COND_OR:
        m = (struct maybe){false, true};
        for (uint32_t i = 0; i < c->n_kids; i++) {
            struct maybe k = tree_nomark(cr, &c->kids[i]);
            m.can_true = m.can_true || k.can_true;
            m.can_false = m.can_false && k.can_false;
        }
        return m;
    }
    return m;
}

/* False when the rejection could not be recorded (out of memory): the
 * rule would then be left out in silence. */
static bool reject_rule(struct builder *b, struct crule *cr,
                        const char *reason) {
    const char *path = cr->rule->path ? cr->rule->path : "";
    if (cr->rejected) return true;
    cr->rejected = true;
    /* Compiling the same rulebook again must not list a rule twice. */
    for (size_t i = 0; i < b->rb->n_rejected; i++)
        if (b->rb->rejected[i].path &&
            strcmp(b->rb->rejected[i].path, path) == 0 &&
            b->rb->rejected[i].reason &&
            strcmp(b->rb->rejected[i].reason, reason) == 0)
            return true;
    size_t n = b->rb->n_rejected;
    cf_rulebook_reject(b->rb, cr->rule->path ? cr->rule->path : "",
                       cr->rule->id, reason);
    return b->rb->n_rejected > n;
}

/* Compiles the PCRE2 fallbacks of the rules' direct regexes.  A regex
 * PCRE2 refuses too rejects its rule. */
static int compile_direct_regexes(struct builder *b) {
    struct cf_ruleset *rs = b->rs;
    for (size_t ri = 0; ri < rs->n_rules; ri++) {
        struct crule *cr = &rs->rules[ri];
        const struct cf_sigma_rule *r = cr->rule;
        /* The others have no direct check: not walked (every value of
         * 11,800 conditions, in rules read once long before). */
        if (!b->has_direct[ri]) continue;
        for (size_t s = 0; s < r->n_searches; s++)
            for (size_t c = 0; c < cr->searches[s].n_conjs; c++) {
                struct cconj *cj = &cr->searches[s].conjs[c];
                for (size_t k = 0; k < cj->n_conds; k++)
                    for (size_t v = 0; v < cj->conds[k].fc->n_values; v++) {
                        struct cvalue *cv = &cj->conds[k].values[v];
                        for (size_t d = 0; d < cv->n_direct; d++) {
                            const struct cf_sigma_pattern *p =
                                cv->direct[d].pat;
                            if (p->kind != CF_PATTERN_REGEX || cv->direct[d].re)
                                continue;
                            uint32_t opts = 0;
                            int err;
                            PCRE2_SIZE off;
                            if (p->flags & CF_PAT_RE_I) opts |= PCRE2_CASELESS;
                            if (p->flags & CF_PAT_RE_M) opts |= PCRE2_MULTILINE;
                            if (p->flags & CF_PAT_RE_S) opts |= PCRE2_DOTALL;
                            pcre2_code *re = pcre2_compile(
                                (PCRE2_SPTR)p->text, PCRE2_ZERO_TERMINATED,
                                opts, &err, &off, NULL);
                            /* out of memory is no fault of the rule */
                            if (!re && err == PCRE2_ERROR_HEAP_FAILED)
                                return -1;
                            if (!re) {
                                char msg[256], reason[512];
                                pcre2_get_error_message(err, (PCRE2_UCHAR *)msg,
                                                        sizeof msg);
                                snprintf(reason, sizeof reason,
                                         "regular expression '%s' does not "
                                         "compile (%s at offset %zu); fix the "
                                         "|re value",
                                         (const char *)p->text, msg,
                                         (size_t)off);
                                if (!reject_rule(b, cr, reason)) return -1;
                                continue;
                            }
                            pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
                            cv->direct[d].re = re;
                            rs->stats.direct_patterns++;
                        }
                        for (size_t d = 0; d < cv->n_direct; d++)
                            if (cv->direct[d].pat->kind != CF_PATTERN_REGEX)
                                rs->stats.direct_patterns++;
                    }
            }
    }
    return 0;
}

/* The cache key: every input of the Hyperscan compile and of the
 * decisions stored beside it.  False when OpenSSL failed (out of
 * memory): then there is no key, and the cache is not used - a key of
 * zeros would be every rule set's. */
static bool cache_key(const struct builder *b,
                      uint8_t key[CF_HS_CACHE_KEY_LEN]) {
    const struct cf_ruleset *rs = b->rs;
    hs_platform_info_t plat;
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok;
    memset(key, 0, CF_HS_CACHE_KEY_LEN);
    if (!ctx) return false;
    memset(&plat, 0, sizeof plat);
    hs_populate_platform(&plat);
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    /* 6: the file layout with a checksum (CFHSDB02), under a key of its
     * own so builds before it keep their files in a shared directory. */
    static const char tag[] = "chainfuse " CF_VERSION " ruleset-cache 6";
    ok = ok && EVP_DigestUpdate(ctx, tag, sizeof tag);
    ok = ok && EVP_DigestUpdate(ctx, hs_version(), strlen(hs_version()) + 1);
    ok = ok && EVP_DigestUpdate(ctx, &plat, sizeof plat);
    /* Each piece in one update where it is one array (145,000 updates
     * took a fifth of a warm start's instructions); the rules' digests
     * are still one update each, 3,474 for SigmaHQ. */
    size_t n_words = rs->n_rules > b->n_exprs ? rs->n_rules : b->n_exprs;
    uint32_t *words = cf_malloc((n_words ? n_words : 1) * 4 * sizeof *words);
    struct cf_buf names = CF_BUF_INIT;
    ok = ok && words;
    for (size_t i = 0; ok && i < rs->n_rules; i++)
        words[i] = rs->rules[i].route;
    ok = ok && EVP_DigestUpdate(ctx, words, rs->n_rules * sizeof *words);
    for (size_t i = 0; ok && i < rs->n_rules; i++)
        ok = EVP_DigestUpdate(ctx, rs->rules[i].rule->digest, 65);
    /* The split into databases: their members, in order. */
    ok = ok && EVP_DigestUpdate(ctx, b->db_member_off,
                                (rs->n_hsdbs + 1) * sizeof(uint32_t));
    ok = ok &&
         EVP_DigestUpdate(ctx, b->db_members,
                          b->db_member_off[rs->n_hsdbs] * sizeof(uint32_t));
    for (size_t i = 0; i < rs->n_dbs; i++)
        cf_buf_append(&names, rs->dbs[i].name, strlen(rs->dbs[i].name) + 1);
    ok = ok && !names.failed && EVP_DigestUpdate(ctx, names.data, names.len);
    /* The texts (each with its NUL), then per expression its flags, kind
     * (which API: the text stands for the literal), database and text
     * length: a literal's text is its bytes, NULs included (|wide), so
     * the NULs alone do not tell where one text ends. */
    ok = ok && EVP_DigestUpdate(ctx, b->texts.data, b->texts.len);
    for (size_t i = 0; ok && i < b->n_exprs; i++) {
        const struct cand_expr *e = &b->exprs[i];
        words[4 * i] = e->flags;
        words[4 * i + 1] = e->kind;
        words[4 * i + 2] = e->db;
        words[4 * i + 3] = e->text_len;
    }
    ok = ok && EVP_DigestUpdate(ctx, words, 4 * b->n_exprs * sizeof *words);
    cf_free(words);
    cf_buf_free(&names);
    ok = ok && EVP_DigestFinal_ex(ctx, key, &len);
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* First pass over regexes: Hyperscan's own parser says which it cannot
 * do, without paying for a full compile per expression. */
static void check_regexes(struct builder *b) {
    for (size_t i = 0; i < b->n_exprs; i++) {
        const struct cand_expr *e = &b->exprs[i];
        if (!e->regex) continue;
        hs_expr_info_t *info = NULL;
        hs_compile_error_t *err = NULL;
        if (hs_expression_info(expr_text(b, e), e->flags, &info, &err) !=
            HS_SUCCESS) {
            hs_free_compile_error(err);
            b->status[i] = EXPR_DIRECT;
            continue;
        }
        b->status[i] = info->min_width == 0 ? EXPR_HS_ALLOWEMPTY : EXPR_HS;
        cf_free(info);
    }
}

static uint8_t status_of(const struct builder *b, uint32_t e) {
    return __atomic_load_n(&b->status[e], __ATOMIC_RELAXED);
}

/* Compiles distinct database `u`.  An expression Hyperscan refuses is
 * switched to direct checking and the compile retried.  Called from
 * several threads at once: status is read and written atomically (an
 * expression in two databases is refused by both, the same way), and
 * errors go to the caller's errstr.  CF_ERR_NOMEM, or CF_ERR with errstr
 * set. */
static int compile_db(struct builder *b, uint32_t u, hs_database_t **out,
                      char *errstr, size_t errstr_size) {
    const uint32_t *members = b->db_members + b->db_member_off[u];
    size_t n_members = b->db_member_off[u + 1] - b->db_member_off[u];
    const char **texts = cf_calloc(n_members ? n_members : 1, sizeof *texts);
    unsigned *flags = cf_calloc(n_members ? n_members : 1, sizeof *flags);
    unsigned *ids = cf_calloc(n_members ? n_members : 1, sizeof *ids);
    size_t *lens = cf_calloc(n_members ? n_members : 1, sizeof *lens);
    bool literal = b->db_literal[u];
    int rc = CF_ERR_NOMEM;
    *out = NULL;
    if (!texts || !flags || !ids || !lens) goto done;
    rc = CF_ERR;
    for (;;) {
        size_t n = 0;
        for (size_t i = 0; i < n_members; i++) {
            uint32_t e = members[i];
            uint8_t st = status_of(b, e);
            if (st == EXPR_DIRECT) continue;
            if (literal) {
                /* An anchored literal needs every hit: the first may be
                 * the wrong one (on_field_literal). */
                const struct cand_expr *ce = &b->exprs[e];
                texts[n] = ce->lit;
                lens[n] = ce->lit_len;
                flags[n] = (ce->flags & HS_FLAG_CASELESS) |
                           (ce->kind == EXPR_LIT ? HS_FLAG_SINGLEMATCH : 0);
            } else {
                texts[n] = expr_text(b, &b->exprs[e]);
                flags[n] = b->exprs[e].flags |
                           (st == EXPR_HS_ALLOWEMPTY ? HS_FLAG_ALLOWEMPTY : 0);
            }
            ids[n] = e;
            n++;
        }
        if (n == 0) {
            rc = 0;
            goto done;
        }
        hs_compile_error_t *err = NULL;
        hs_error_t hrc =
            literal ? hs_compile_lit_multi(texts, flags, ids, lens, (unsigned)n,
                                           HS_MODE_BLOCK, NULL, out, &err)
                    : hs_compile_multi(texts, flags, ids, (unsigned)n,
                                       HS_MODE_BLOCK, NULL, out, &err);
        if (hrc == HS_SUCCESS) {
            rc = 0;
            goto done;
        }
        if (hrc == HS_NOMEM) {
            hs_free_compile_error(err);
            rc = CF_ERR_NOMEM;
            goto done;
        }
        if (!err || err->expression < 0 || (size_t)err->expression >= n) {
            cf_seterr(errstr, errstr_size, CF_ERR,
                      "Hyperscan cannot compile the patterns of field %s: %s",
                      b->rs->dbs[b->db_field[u]].name,
                      err ? err->message : "unknown error");
            hs_free_compile_error(err);
            goto done;
        }
        __atomic_store_n(&b->status[ids[err->expression]], EXPR_DIRECT,
                         __ATOMIC_RELAXED);
        hs_free_compile_error(err);
    }
done:
    cf_free(texts);
    cf_free(flags);
    cf_free(ids);
    cf_free(lens);
    return rc;
}

/* The databases to compile, shared by the compiling threads: each takes
 * the next one (costliest first, so no thread is left with a big one at
 * the end) until all are done or one fails. */
struct compile_queue {
    struct builder *b;
    const uint32_t *order;
    size_t n;
    size_t next; /* atomic */
    int rc;      /* first failure; under lock */
    bool stop;   /* atomic */
    pthread_mutex_t lock;
    char errstr[512];
};

static void *compile_worker(void *arg) {
    struct compile_queue *q = arg;
    char err[512];
    for (;;) {
        if (__atomic_load_n(&q->stop, __ATOMIC_RELAXED)) break;
        size_t i = __atomic_fetch_add(&q->next, 1, __ATOMIC_RELAXED);
        if (i >= q->n) break;
        uint32_t u = q->order[i];
        err[0] = '\0';
        int rc = compile_db(q->b, u, &q->b->rs->hsdbs[u], err, sizeof err);
        if (rc) {
            pthread_mutex_lock(&q->lock);
            if (!q->rc) {
                q->rc = rc;
                snprintf(q->errstr, sizeof q->errstr, "%s", err);
            }
            pthread_mutex_unlock(&q->lock);
            __atomic_store_n(&q->stop, true, __ATOMIC_RELAXED);
            break;
        }
    }
    return NULL;
}

/* A guess at what compiling database `u` costs, for the order: on the
 * SigmaHQ set a regex costs Hyperscan about fifty times what a literal
 * does (CommandLine's 162 regexes take as long as its 11,569 literals). */
static size_t compile_cost(const struct builder *b, uint32_t u) {
    size_t n = b->db_member_off[u + 1] - b->db_member_off[u];
    return b->db_literal[u] ? n : n * 64;
}

static size_t compile_threads(size_t n_dbs, size_t n_exprs) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    /* A small rule set compiles in milliseconds: threads would only add
     * their start-up. */
    if (cores <= 1 || n_dbs < 4 || n_exprs < 2000) return 1;
    return cores > 8 ? 8 : (size_t)cores;
}

/* Compiles every distinct database, on as many threads as there are
 * cores (Hyperscan compiles are independent and thread-safe).  CF_OK,
 * CF_ERR_NOMEM, or CF_ERR with errstr set. */
static int compile_all_dbs(struct builder *b) {
    struct cf_ruleset *rs = b->rs;
    size_t n = rs->n_hsdbs;
    uint32_t *order = cf_malloc((n ? n : 1) * sizeof *order);
    pthread_t threads[8];
    size_t n_threads = compile_threads(n, b->n_exprs), started = 0;
    struct compile_queue q = {.b = b, .order = order, .n = n};
    if (!order) return CF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    /* Costliest first (insertion sort: a few thousand at most). */
    for (size_t i = 1; i < n; i++) {
        uint32_t x = order[i];
        size_t j = i, cost = compile_cost(b, x);
        while (j > 0 && compile_cost(b, order[j - 1]) < cost) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    pthread_mutex_init(&q.lock, NULL);
    for (size_t t = 1; t < n_threads; t++) {
        if (pthread_create(&threads[t - 1], NULL, compile_worker, &q) != 0)
            break; /* fewer threads: slower, not wrong */
        started++;
    }
    compile_worker(&q);
    for (size_t t = 0; t < started; t++) pthread_join(threads[t], NULL);
    pthread_mutex_destroy(&q.lock);
    cf_free(order);
    if (q.rc == CF_ERR)
        cf_seterr(b->errstr, b->errstr_size, CF_ERR, "%s", q.errstr);
    return q.rc;
}

static uint32_t get_u32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* expression id -> the items it reports (CSR), and the literal lengths. */
static int build_expr_items(struct builder *b) {
    struct cf_ruleset *rs = b->rs;
    rs->n_exprs = (uint32_t)b->n_exprs;
    rs->expr_item_off = cf_calloc(b->n_exprs + 1, sizeof *rs->expr_item_off);
    rs->expr_items =
        cf_malloc((b->n_uses ? b->n_uses : 1) * sizeof *rs->expr_items);
    rs->expr_lit_len = cf_calloc(b->n_exprs + 1, sizeof *rs->expr_lit_len);
    rs->expr_kind = cf_calloc(b->n_exprs + 1, sizeof *rs->expr_kind);
    if (!rs->expr_item_off || !rs->expr_items || !rs->expr_lit_len ||
        !rs->expr_kind)
        return -1;
    for (size_t e = 0; e < b->n_exprs; e++) {
        if (b->plan) { /* plan_apply: no table of expressions */
            rs->expr_lit_len[e] = get_u32(b->plan->lit_lens + 4 * e);
            rs->expr_kind[e] = b->plan->kinds[e];
        } else {
            rs->expr_lit_len[e] = b->exprs[e].lit_len;
            rs->expr_kind[e] = b->exprs[e].kind;
        }
    }
    for (size_t u = 0; u < b->n_uses; u++)
        rs->expr_item_off[b->uses[u].expr + 1]++;
    for (size_t e = 0; e < b->n_exprs; e++)
        rs->expr_item_off[e + 1] += rs->expr_item_off[e];
    uint32_t *fill = cf_calloc(b->n_exprs ? b->n_exprs : 1, sizeof *fill);
    if (!fill) return -1;
    for (size_t u = 0; u < b->n_uses; u++) {
        uint32_t e = b->uses[u].expr;
        rs->expr_items[rs->expr_item_off[e] + fill[e]++] = b->uses[u].item;
    }
    cf_free(fill);
    return 0;
}

struct gpair {
    uint32_t field, route, expr;
    bool literal; /* for the literal API */
};

/* The keyword pseudo-fields get a database per route (see build_groups);
 * an event field, one for all its routes. */
static bool grouped_by_route(uint32_t field) {
    return field < N_KEYWORD_DBS;
}

/* A field's literals make one database, its other expressions another. */
static bool same_group(const struct gpair *a, const struct gpair *b) {
    return a->field == b->field && a->literal == b->literal &&
           (!grouped_by_route(a->field) || a->route == b->route);
}

static int gpair_cmp(const void *pa, const void *pb) {
    const struct gpair *a = pa, *b = pb;
    if (a->field != b->field) return a->field < b->field ? -1 : 1;
    if (a->literal != b->literal) return a->literal ? 1 : -1;
    if (grouped_by_route(a->field) && a->route != b->route)
        return a->route < b->route ? -1 : 1;
    if (a->expr != b->expr) return a->expr < b->expr ? -1 : 1;
    if (a->route != b->route) return a->route < b->route ? -1 : 1;
    return 0;
}

/* Two expressions that compile the same and mark the same items. */
static bool same_expr(const struct builder *b, uint32_t x, uint32_t y) {
    const struct cf_ruleset *rs = b->rs;
    const struct cand_expr *ex = &b->exprs[x], *ey = &b->exprs[y];
    uint32_t nx = rs->expr_item_off[x + 1] - rs->expr_item_off[x];
    uint32_t ny = rs->expr_item_off[y + 1] - rs->expr_item_off[y];
    if (x == y) return true;
    return ex->flags == ey->flags && ex->regex == ey->regex &&
           ex->kind == ey->kind && ex->lit_len == ey->lit_len && nx == ny &&
           ex->text_len == ey->text_len &&
           memcmp(expr_text(b, ex), expr_text(b, ey), ex->text_len) == 0 &&
           memcmp(rs->expr_items + rs->expr_item_off[x],
                  rs->expr_items + rs->expr_item_off[y],
                  nx * sizeof *rs->expr_items) == 0;
}

static uint32_t group_hash(const struct builder *b, const uint32_t *members,
                           size_t n) {
    uint32_t h = (uint32_t)n * 2654435761u;
    for (size_t i = 0; i < n; i++) {
        const struct cand_expr *e = &b->exprs[members[i]];
        h = (h ^ e->text_hash ^ e->flags ^ ((uint32_t)e->kind << 24)) *
            16777619u;
    }
    return h;
}

/* Adds route `route` to the part of field `field` served by distinct
 * database `u`, creating the part. */
static int add_part(struct cf_ruleset *rs, uint32_t field, uint32_t u,
                    bool literal, uint32_t route) {
    struct field_db *d = &rs->dbs[field];
    uint32_t i = 0;
    while (i < d->n_parts && d->parts[i].index != u) i++;
    if (i == d->n_parts) {
        struct db_part *p =
            cf_realloc(d->parts, (d->n_parts + 1) * sizeof *d->parts);
        if (!p) return -1;
        d->parts = p;
        memset(&p[i], 0, sizeof *p);
        p[i].index = u;
        p[i].literal = literal;
        if (!(p[i].routes = cf_calloc(rs->route_words ? rs->route_words : 1,
                                      sizeof(uint64_t))))
            return -1;
        d->n_parts++;
    }
    bit_set(d->parts[i].routes, route);
    if (grouped_by_route(field) && cf_router_every_event(rs->router, route))
        d->parts[i].fallback = true;
    return 0;
}

/* Puts the keyword pairs of routes with the same conditions on one route
 * (cf_router_twin), and adds the pairs of the route every event is on to
 * each other route's keywords: an event then scans one keyword database
 * per route it is on, the unconditional route's keywords included, and
 * the unconditional route's own database only when it is on no other
 * (the part is marked `fallback`, see add_part).  `pairs` holds only
 * keyword pairs (a few hundred with SigmaHQ, of 50,000); they leave
 * sorted by gpair_cmp. */
static int keyword_classes(struct builder *b, struct gpair **pairs,
                           size_t *n_pairs) {
    const struct cf_router *router = b->rs->router;
    size_t n = *n_pairs, m = n, cap = n;
    uint32_t every = NO_ROUTE;
    for (size_t i = 0; i < n; i++) {
        struct gpair *p = &(*pairs)[i];
        p->route = cf_router_twin(router, p->route);
        if (cf_router_every_event(router, p->route)) every = p->route;
    }
    if (n) qsort(*pairs, n, sizeof **pairs, gpair_cmp);
    if (every == NO_ROUTE) return 0;
    /* Sorted, each keyword field's pairs come route by route. */
    for (size_t i = 0; i < n; i++) {
        const struct gpair *first = &(*pairs)[i];
        if (first->route == every ||
            (i > 0 && same_group(first, &(*pairs)[i - 1])))
            continue;
        /* `first` opens another route's keywords: add the field's
         * unconditional ones. */
        uint32_t field = first->field, route = first->route;
        for (size_t j = 0; j < n; j++) {
            if ((*pairs)[j].field != field || (*pairs)[j].route != every)
                continue;
            if (m == cap) {
                cap = cap * 2 + 16;
                struct gpair *np = cf_realloc(*pairs, cap * sizeof *np);
                if (!np) return -1;
                *pairs = np;
            }
            (*pairs)[m++] = (struct gpair){field, route, (*pairs)[j].expr,
                                           (*pairs)[j].literal};
        }
    }
    if (m > n) qsort(*pairs, m, sizeof **pairs, gpair_cmp);
    *n_pairs = m;
    return 0;
}

/* The (field, expression, route) pairs of every use, in gpair_cmp's
 * order but for the route order within one field's expression, which
 * build_groups does not depend on: the keyword pairs as keyword_classes
 * leaves them, then the event fields' by a counting sort on (field,
 * literal).  Generated expression by expression, each bucket is already
 * in expression order; qsort over the 50,000 pairs of SigmaHQ was a
 * tenth of a warm start's instructions.  NULL when out of memory. */
static struct gpair *sorted_pairs(struct builder *b, size_t *n_out) {
    struct cf_ruleset *rs = b->rs;
    size_t total = rs->expr_item_off[b->n_exprs], n_kw = 0, n_buckets;
    size_t n_fields = rs->n_dbs;
    struct gpair *pairs = NULL, *kw = NULL;
    size_t *start = NULL;
    n_buckets = 2 * n_fields + 1;
    kw = cf_malloc((total ? total : 1) * sizeof *kw);
    start = cf_calloc(n_buckets, sizeof *start);
    if (!kw || !start) goto fail;
    for (uint32_t e = 0; e < b->n_exprs; e++) {
        const struct cand_expr *ce = &b->exprs[e];
        bool literal = ce->kind != EXPR_REGEX;
        uint32_t off = rs->expr_item_off[e], end = rs->expr_item_off[e + 1];
        if (grouped_by_route(ce->db)) {
            for (uint32_t k = off; k < end; k++)
                kw[n_kw++] = (struct gpair){
                    ce->db, rs->rules[b->item_rule[rs->expr_items[k]]].route, e,
                    literal};
        } else {
            start[2 * ce->db + literal + 1] += end - off;
        }
    }
    if (keyword_classes(b, &kw, &n_kw)) goto fail;
    for (size_t i = 1; i < n_buckets; i++) start[i] += start[i - 1];
    size_t n_field_pairs = start[n_buckets - 1];
    if (!(pairs = cf_malloc((n_kw + n_field_pairs ? n_kw + n_field_pairs : 1) *
                            sizeof *pairs)))
        goto fail;
    memcpy(pairs, kw, n_kw * sizeof *pairs);
    for (uint32_t e = 0; e < b->n_exprs; e++) {
        const struct cand_expr *ce = &b->exprs[e];
        if (grouped_by_route(ce->db)) continue;
        bool literal = ce->kind != EXPR_REGEX;
        size_t *at = &start[2 * ce->db + literal];
        for (uint32_t k = rs->expr_item_off[e]; k < rs->expr_item_off[e + 1];
             k++)
            pairs[n_kw + (*at)++] = (struct gpair){
                ce->db, rs->rules[b->item_rule[rs->expr_items[k]]].route, e,
                literal};
    }
    cf_free(kw);
    cf_free(start);
    *n_out = n_kw + n_field_pairs;
    return pairs;
fail:
    cf_free(kw);
    cf_free(start);
    cf_free(pairs);
    return NULL;
}

/* One database per field, its parts knowing the routes of the rules with
 * patterns there (a field only other logsources use is not scanned);
 * fields with the same patterns marking the same items share one.
 *
 * The keywords are the exception: one database per route (see
 * keyword_classes).  Keyword literals are scanned over all of an event's
 * values and report every occurrence, and one database for every route
 * (456 literals with SigmaHQ) had a Windows event searched for the Linux
 * rules' short words ('-s', 'grep', 'touch', 'halt') too, where the
 * routes of a Sysmon event hold Mimikatz's twenty keywords and those of
 * the logsources every event is on.  Switching the keyword scan off took
 * route+match on LSASS_campaign_01 from 3.6-3.8 to 1.6-2.1 us an event
 * with the one database (bench_detect, whole SigmaHQ set).
 *
 * One database per (field, route) instead, as Suricata groups
 * signatures, was tried and measured (bench_detect, all shared OTRF
 * recordings, whole SigmaHQ set): route+match 6% slower, because an
 * event belongs to several routes (process_creation and the Security
 * service, and product-wide rules on every Windows event) and so had a
 * field scanned once per route, and cold compiles took 35% more CPU for
 * 545 databases instead of 356. */
static int build_groups(struct builder *b) {
    struct cf_ruleset *rs = b->rs;
    size_t n_pairs = 0, n_groups = 0, n_unique = 0, n_members = 0;
    struct gpair *pairs = sorted_pairs(b, &n_pairs);
    uint32_t *hashes = NULL, *slots = NULL, mask = 0;
    int rc = -1;
    if (!pairs) goto done;
    for (size_t i = 0; i < n_pairs; i++)
        if (i == 0 || !same_group(&pairs[i], &pairs[i - 1])) n_groups++;
    mask = 16;
    while (mask < 2 * n_groups) mask *= 2;
    mask--;
    b->db_member_off = cf_calloc(n_groups + 1, sizeof *b->db_member_off);
    b->db_members = cf_malloc((n_pairs ? n_pairs : 1) * sizeof *b->db_members);
    b->db_field = cf_calloc(n_groups ? n_groups : 1, sizeof *b->db_field);
    b->db_literal = cf_calloc(n_groups ? n_groups : 1, sizeof *b->db_literal);
    hashes = cf_calloc(n_groups ? n_groups : 1, sizeof *hashes);
    slots = cf_calloc((size_t)mask + 1, sizeof *slots);
    if (!b->db_member_off || !b->db_members || !b->db_field || !b->db_literal ||
        !hashes || !slots)
        goto done;
    for (size_t i = 0, j; i < n_pairs; i = j) {
        /* The field's distinct expressions, appended as a candidate
         * database; dropped again when an identical one exists. */
        uint32_t *mine = b->db_members + n_members, u = UINT32_MAX, s;
        size_t n = 0;
        for (j = i; j < n_pairs && same_group(&pairs[j], &pairs[i]); j++)
            if (n == 0 || mine[n - 1] != pairs[j].expr)
                mine[n++] = pairs[j].expr;
        uint32_t h = group_hash(b, mine, n);
        for (s = h & mask; slots[s]; s = (s + 1) & mask) {
            uint32_t c = slots[s] - 1;
            const uint32_t *cm = b->db_members + b->db_member_off[c];
            size_t k = 0;
            if (hashes[c] != h ||
                b->db_member_off[c + 1] - b->db_member_off[c] != n)
                continue;
            while (k < n && same_expr(b, cm[k], mine[k])) k++;
            if (k == n) {
                u = c;
                break;
            }
        }
        if (u == UINT32_MAX) {
            u = (uint32_t)n_unique++;
            hashes[u] = h;
            b->db_field[u] = pairs[i].field;
            b->db_literal[u] = pairs[i].literal;
            n_members += n;
            b->db_member_off[u + 1] = (uint32_t)n_members;
            slots[s] = u + 1;
        }
        for (size_t k = i; k < j; k++)
            if (add_part(rs, pairs[k].field, u, pairs[k].literal,
                         pairs[k].route))
                goto done;
    }
    /* n_hsdbs only once the array exists: cf_ruleset_destroy walks it. */
    if (!(rs->hsdbs = cf_calloc(n_unique ? n_unique : 1, sizeof *rs->hsdbs)))
        goto done;
    rs->n_hsdbs = n_unique;
    rc = 0;
done:
    cf_free(pairs);
    cf_free(hashes);
    cf_free(slots);
    return rc;
}

/* After compiling: the alternatives of refused expressions become direct
 * checks, and the parts learn their databases. */
static int build_tables(struct builder *b) {
    struct cf_ruleset *rs = b->rs;
    for (size_t u = 0; u < b->n_uses; u++) {
        const struct expr_use *use = &b->uses[u];
        if (b->status[use->expr] == EXPR_DIRECT &&
            note_direct(b, b->item_rule[use->item], b->item_value[use->item],
                        use->alt))
            return -1;
    }
    rs->n_items = (uint32_t)b->n_items;
    rs->item_rule = b->item_rule;
    b->item_rule = NULL;
    for (size_t e = 0; e < b->n_exprs; e++)
        if (b->status[e] != EXPR_DIRECT) {
            rs->stats.patterns++;
            if (rs->expr_kind[e] != EXPR_REGEX) rs->stats.literal_patterns++;
        }
    for (size_t d = 0; d < rs->n_dbs; d++)
        for (uint32_t i = 0; i < rs->dbs[d].n_parts; i++)
            rs->dbs[d].parts[i].db = rs->hsdbs[rs->dbs[d].parts[i].index];
    return 0;
}

/* Lazy loading (struct lazy_dbs): gives every database of the opened
 * cache file its place, loading none.  -1 when out of memory. */
static int lazy_setup(struct cf_ruleset *rs, struct cf_hs_lazy *file) {
    struct lazy_dbs *lz = cf_calloc(1, sizeof *lz);
    size_t total = 64;
    if (!lz) {
        cf_hs_lazy_close(file);
        return -1;
    }
    lz->file = file;
    pthread_mutex_init(&lz->mu, NULL);
    rs->lazy = lz;
    for (size_t d = 0; d < rs->n_hsdbs; d++)
        total += (cf_hs_lazy_size(file, d) + 63) & ~(size_t)63;
    /* Untouched until a database is loaded there: a large allocation is
     * mapped, so the places of databases never loaded cost no page. */
    lz->mem = cf_malloc(total);
    lz->state = cf_calloc(rs->n_hsdbs ? rs->n_hsdbs : 1, sizeof *lz->state);
    if (!lz->mem || !lz->state) return -1;
    char *at = (char *)(((uintptr_t)lz->mem + 63) & ~(uintptr_t)63);
    for (size_t d = 0; d < rs->n_hsdbs; d++) {
        size_t size = cf_hs_lazy_size(file, d);
        if (!size) continue;
        rs->hsdbs[d] = (hs_database_t *)(void *)at;
        at += (size + 63) & ~(size_t)63;
    }
    return 0;
}

/* Loads rs->hsdbs[d] unless it was; its state.  The file was whole
 * when opened (its checksum), so a failure is Hyperscan refusing the
 * database: it is said once on stderr and its header cleared, so that
 * every scan with it fails (HS_INVALID) and the events are counted as
 * scan errors (cf_matcher_scan_errors) rather than silently missed. */
static unsigned char lazy_load(const struct cf_ruleset *rs, size_t d) {
    struct lazy_dbs *lz = rs->lazy;
    unsigned char st =
        atomic_load_explicit(&lz->state[d], memory_order_acquire);
    if (st != DB_UNLOADED) return st;
    pthread_mutex_lock(&lz->mu);
    st = atomic_load_explicit(&lz->state[d], memory_order_relaxed);
    if (st == DB_UNLOADED) {
        if (cf_hs_lazy_load(lz->file, d, rs->hsdbs[d])) {
            st = DB_LOADED;
            atomic_fetch_add(&lz->loaded, 1);
        } else {
            size_t size = cf_hs_lazy_size(lz->file, d);
            memset(rs->hsdbs[d], 0, size < 64 ? size : 64);
            st = DB_FAILED;
            atomic_fetch_add(&lz->failed, 1);
            fprintf(stderr,
                    "chainfuse: warning: Hyperscan refused database %zu of "
                    "the rule cache; the events whose fields it serves are "
                    "counted as scan errors (remove the cache directory's "
                    ".hsdb files to compile again)\n",
                    d);
        }
        atomic_store_explicit(&lz->state[d], st, memory_order_release);
    }
    pthread_mutex_unlock(&lz->mu);
    return st;
}

/* Loads the smallest database, for the prototype scratch (a scratch
 * needs a database); false when Hyperscan refuses it, and so most
 * likely the whole file. */
static bool lazy_proto(struct cf_ruleset *rs) {
    size_t proto = SIZE_MAX;
    for (size_t d = 0; d < rs->n_hsdbs; d++)
        if (rs->hsdbs[d] &&
            (proto == SIZE_MAX || cf_hs_lazy_size(rs->lazy->file, d) <
                                      cf_hs_lazy_size(rs->lazy->file, proto)))
            proto = d;
    if (proto == SIZE_MAX) return true; /* no database */
    if (cf_hs_lazy_load(rs->lazy->file, proto, rs->hsdbs[proto])) {
        atomic_store(&rs->lazy->state[proto], (unsigned char)DB_LOADED);
        atomic_store(&rs->lazy->loaded, 1);
        return true;
    }
    return false;
}

/* Undoes lazy_setup (cf_ruleset_destroy, or a file Hyperscan refuses). */
static void lazy_drop(struct cf_ruleset *rs) {
    if (!rs->lazy) return;
    pthread_mutex_destroy(&rs->lazy->mu);
    cf_hs_lazy_close(rs->lazy->file);
    cf_free(rs->lazy->mem);
    cf_free((void *)rs->lazy->state);
    cf_free(rs->lazy);
    rs->lazy = NULL;
    for (size_t d = 0; d < rs->n_hsdbs; d++) rs->hsdbs[d] = NULL;
}

/* For the matcher, before it fills a route set (route_set_of): loads
 * every database `routes` can scan (the parts on those routes: a
 * superset of what route_set_fill picks) and grows *scratch, the
 * matcher's own, for those its bitmap `sized` (a bit per rs->hsdbs
 * entry) does not cover yet.  So each thread's scratch fits every
 * database it scans, and a database is loaded by the first thread
 * needing it.  When the scratch cannot grow (Hyperscan does not
 * check that a scratch fits a database, only its state size), the
 * scratch is then freed for good and every later scan of this matcher
 * fails (HS_INVALID, a NULL scratch) and is counted, rather than
 * scanning with one too small. */
static void ruleset_ready(const struct cf_ruleset *rs, const uint64_t *routes,
                          hs_scratch_t **scratch, uint64_t *sized) {
    if (!*scratch) return;
    for (size_t i = 0; i < rs->n_dbs; i++)
        for (uint32_t p = 0; p < rs->dbs[i].n_parts; p++) {
            const struct db_part *part = &rs->dbs[i].parts[p];
            if (!part->db || bit_test(sized, part->index) ||
                !bits_intersect(part->routes, routes, rs->route_words))
                continue;
            if (lazy_load(rs, part->index) != DB_LOADED) continue;
            if (hs_alloc_scratch(part->db, scratch) != HS_SUCCESS) {
                hs_free_scratch(*scratch);
                *scratch = NULL;
                return;
            }
            bit_set(sized, part->index);
        }
}

size_t cf_ruleset_databases_loaded(const struct cf_ruleset *rs) {
    return rs->lazy ? atomic_load(&rs->lazy->loaded) : rs->stats.databases;
}

/* The key of the compile plan: every input of the expression layer.
 * The rules are their digests (what the parse, placeholders and filters
 * made of them) and routes in order; the field mappings and logsources
 * are the configuration's; the code that turns them into expressions is
 * the build's (cf_cache_put_build: any other build misses).  False when
 * there is no key (no build identity, out of memory). */
static bool plan_key(const struct builder *b, const struct cf_config *cfg,
                     uint8_t key[CF_HS_CACHE_KEY_LEN]) {
    static const char tag[] = "chainfuse " CF_VERSION " compile-plan 1";
    const struct cf_ruleset *rs = b->rs;
    struct cf_buf in = CF_BUF_INIT;
    cf_buf_append(&in, tag, sizeof tag);
    /* What the databases' key holds of the machine: the plan names one
     * database file, and a cache directory shared by hosts with another
     * libhs or other CPU features must give each host its own plan. */
    hs_platform_info_t plat;
    memset(&plat, 0, sizeof plat);
    hs_populate_platform(&plat);
    cf_buf_append(&in, hs_version(), strlen(hs_version()) + 1);
    cf_buf_append(&in, &plat, sizeof plat);
    if (!cf_cache_put_build(&in)) {
        cf_buf_free(&in);
        return false;
    }
    static const char *const sections[] = {"field_mappings", "logsources"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = cfg ? cf_config_section(cfg, sections[i]) : NULL;
        cf_buf_putc(&in, '\0');
        if (v) cf_buf_json(&in, v, JSON_SORT_KEYS | JSON_COMPACT);
    }
    cf_buf_putc(&in, '\0');
    uint64_t n = rs->n_rules;
    cf_buf_append(&in, &n, sizeof n);
    for (size_t i = 0; i < rs->n_rules; i++) {
        uint32_t routes[2] = {rs->rules[i].route, rs->rules[i].exclude_route};
        cf_buf_append(&in, rs->rules[i].rule->digest, 65);
        cf_buf_append(&in, routes, sizeof routes);
    }
    bool ok = !in.failed && cf_cache_sha256(in.data, in.len, key);
    cf_buf_free(&in);
    return ok;
}

static void put_u32(struct cf_buf *out, uint32_t v) {
    cf_buf_append(out, &v, sizeof v);
}

/* The plan of a full compile whose databases are under `hs_key`. */
static void plan_encode(const struct builder *b,
                        const uint8_t hs_key[CF_HS_CACHE_KEY_LEN],
                        struct cf_buf *out) {
    const struct cf_ruleset *rs = b->rs;
    uint64_t head[6] = {b->n_exprs, b->n_uses,   b->n_items,
                        rs->n_dbs,  rs->n_hsdbs, rs->route_words};
    cf_buf_append(out, hs_key, CF_HS_CACHE_KEY_LEN);
    cf_buf_append(out, head, sizeof head);
    for (size_t e = 0; e < b->n_exprs; e++)
        cf_buf_putc(out, (char)b->exprs[e].kind);
    for (size_t e = 0; e < b->n_exprs; e++) put_u32(out, b->exprs[e].lit_len);
    for (size_t u = 0; u < b->n_uses; u++) put_u32(out, b->uses[u].expr);
    for (size_t d = 0; d < rs->n_dbs; d++) {
        const struct field_db *f = &rs->dbs[d];
        put_u32(out, f->n_parts);
        for (uint32_t i = 0; i < f->n_parts; i++) {
            put_u32(out, f->parts[i].index);
            cf_buf_putc(out, (char)f->parts[i].literal);
            cf_buf_putc(out, (char)f->parts[i].fallback);
            cf_buf_append(out, f->parts[i].routes,
                          rs->route_words * sizeof(uint64_t));
        }
    }
}

/* Reads a plan's header and arrays; false when it does not fit. */
static bool plan_parse(const unsigned char *bytes, size_t len,
                       struct plan *pl) {
    const unsigned char *p = bytes, *end = bytes + len, *at;
    uint64_t head[6];
    if (!(at = cf_cache_take(&p, end, CF_HS_CACHE_KEY_LEN))) return false;
    memcpy(pl->hs_key, at, CF_HS_CACHE_KEY_LEN);
    if (!(at = cf_cache_take(&p, end, sizeof head))) return false;
    memcpy(head, at, sizeof head);
    pl->n_exprs = head[0];
    pl->n_uses = head[1];
    pl->n_items = head[2];
    pl->n_dbs = head[3];
    pl->n_hsdbs = head[4];
    pl->route_words = head[5];
    if (pl->n_exprs >= UINT32_MAX || pl->n_uses > len ||
        pl->n_hsdbs > UINT32_MAX || pl->route_words > len)
        return false;
    return (pl->kinds = cf_cache_take(&p, end, pl->n_exprs)) &&
           (pl->lit_lens = cf_cache_take(&p, end, 4 * pl->n_exprs)) &&
           (pl->uses = cf_cache_take(&p, end, 4 * pl->n_uses)) &&
           (pl->parts = p, pl->end = end, true);
}

/* After build_rule in plan mode: the expressions as the plan has them,
 * and the fields' parts and distinct databases build_groups made.  -1
 * out of memory; 1 when the rules did not come out as planned. */
static int plan_apply(struct builder *b) {
    struct cf_ruleset *rs = b->rs;
    const struct plan *pl = b->plan;
    if (b->plan_bad || b->n_uses != pl->n_uses || b->n_items != pl->n_items ||
        rs->n_dbs != pl->n_dbs || rs->route_words != pl->route_words)
        return 1;
    /* Only the count: what the ruleset keeps of each expression (its
     * kind and literal length) build_expr_items takes from the plan, so
     * the builder's table of 34,600 expressions is not made (1.7 MB
     * zeroed and faulted in, for two fields of each). */
    b->n_exprs = (size_t)pl->n_exprs;
    const unsigned char *p = pl->parts;
    size_t part_len = 4 + 2 + pl->route_words * sizeof(uint64_t);
    for (size_t d = 0; d < rs->n_dbs; d++) {
        if (pl->end - p < 4) return 1;
        uint32_t n = get_u32(p);
        p += 4;
        if (n > (size_t)(pl->end - p) / part_len) return 1;
        if (n && !(rs->dbs[d].parts = cf_calloc(n, sizeof *rs->dbs[d].parts)))
            return -1;
        for (uint32_t i = 0; i < n; i++, p += part_len) {
            struct db_part *part = &rs->dbs[d].parts[i];
            if (!(part->routes = cf_calloc(
                      rs->route_words ? rs->route_words : 1, sizeof(uint64_t))))
                return -1;
            rs->dbs[d].n_parts = i + 1;
            part->index = get_u32(p);
            part->literal = p[4] != 0;
            part->fallback = p[5] != 0;
            memcpy(part->routes, p + 6, rs->route_words * sizeof(uint64_t));
            if (part->index >= pl->n_hsdbs) return 1;
        }
    }
    if (p != pl->end) return 1;
    if (!(rs->hsdbs =
              cf_calloc(pl->n_hsdbs ? pl->n_hsdbs : 1, sizeof *rs->hsdbs)))
        return -1;
    rs->n_hsdbs = (size_t)pl->n_hsdbs;
    return 0;
}

static void free_builder(struct builder *b) {
    cf_buf_free(&b->texts);
    cf_buf_free(&b->sb);
    cf_buf_free(&b->tb);
    cf_free(b->db_ids);
    cf_free(b->exprs);
    cf_free(b->expr_slots);
    cf_free(b->uses);
    cf_free(b->item_value);
    cf_free(b->item_rule);
    cf_free(b->status);
    cf_free(b->db_member_off);
    cf_free(b->db_members);
    cf_free(b->db_field);
    cf_free(b->db_literal);
    for (size_t i = 0; i < b->memo_cap; i++) cf_free(b->memo[i].dbs);
    cf_free(b->memo);
    cf_free(b->has_direct);
}

/* cf_ruleset_compile, with the compile plan when `use_plan` and one is
 * cached: NULL with *replan set when it turned out not to fit (a damaged
 * file, or the database file gone), and nothing else was changed; the
 * caller compiles again without. */
static struct cf_ruleset *compile(struct cf_rulebook *rb,
                                  const struct cf_config *cfg, char *errstr,
                                  size_t errstr_size, bool use_plan,
                                  bool *replan) {
    struct builder b;
    struct cf_ruleset *rs = NULL;
    double t0 = now_seconds();
    uint8_t key[CF_HS_CACHE_KEY_LEN], pkey[CF_HS_CACHE_KEY_LEN];
    const char *cache_dir = cfg && cfg->cache_dir ? cfg->cache_dir : "";
    uint32_t kw_db = 0;
    bool ok = false, out_of_memory = false, have_pkey = false;
    bool hs_cached = false;
    struct cf_plan_file plan_file = {NULL, 0, NULL, 0};
    struct plan plan;

    memset(&b, 0, sizeof b);
    memset(&plan, 0, sizeof plan);
    b.rb = rb;
    b.errstr = errstr;
    b.errstr_size = errstr_size;
    if (!rb) {
        cf_seterr(errstr, errstr_size, CF_ERR, "no rulebook given");
        return NULL;
    }
    if (!(rs = cf_calloc(1, sizeof *rs))) {
        out_of_memory = true;
        goto done;
    }
    b.rs = rs;
    rs->rb = rb;
    if (!(rs->fmap = cf_fieldmap_new(
              cfg ? cf_config_section(cfg, "field_mappings") : NULL, errstr,
              errstr_size)))
        goto done;
    if (!(rs->router =
              cf_router_new(cfg ? cf_config_section(cfg, "logsources") : NULL,
                            errstr, errstr_size)))
        goto done;
    rs->n_rules = rb->n_rules;
    if (!(rs->rules =
              cf_calloc(rs->n_rules ? rs->n_rules : 1, sizeof *rs->rules)) ||
        !(b.has_direct = cf_calloc(rs->n_rules ? rs->n_rules : 1, 1))) {
        out_of_memory = true;
        goto done;
    }
    for (size_t i = 0; i < rs->n_rules; i++) {
        const struct cf_sigma_rule *r = rb->rules[i];
        rs->rules[i].rule = r;
        rs->rules[i].route =
            cf_router_add(rs->router, r->product, r->category, r->service);
        if (rs->rules[i].route == UINT32_MAX) { /* not a route: a crash */
            out_of_memory = true;
            goto done;
        }
        const char *lacking, *svc = cf_fieldmap_excluded(rs->fmap, r, &lacking);
        rs->rules[i].exclude_route =
            svc ? cf_router_add(rs->router, r->product, r->category, svc)
                : NO_ROUTE;
        if (svc && rs->rules[i].exclude_route == UINT32_MAX) {
            out_of_memory = true;
            goto done;
        }
    }
    if (cf_router_seal(rs->router, errstr, errstr_size) != CF_OK) goto done;
    rs->route_words = (cf_router_count(rs->router) + 63) / 64;

    /* The keyword database comes first (KEYWORD_DB) and stays out of the
     * name table, so no event field can be taken for it. */
    if (db_for_name(&b, "(keywords)", &kw_db) ||
        db_for_name(&b, "(keyword literals)", &kw_db)) {
        out_of_memory = true;
        goto done;
    }
    if (*cache_dir) have_pkey = plan_key(&b, cfg, pkey);
    if (use_plan && have_pkey) {
        cf_err_t prc = cf_plan_cache_load(cache_dir, pkey, &plan_file);
        if (prc == CF_OK && plan_parse(plan_file.bytes, plan_file.len, &plan))
            b.plan = &plan;
        else if (prc == CF_ERR_PARSE || prc == CF_OK)
            fprintf(stderr,
                    "chainfuse: warning: compile plan in %s is not usable; "
                    "building the expressions again\n",
                    cache_dir);
    }
    if (b.plan ? !(b.uses = grow(b.uses, &b.cap_uses, plan.n_uses + 1,
                                 sizeof *b.uses, &b.oom))
               : reserve_exprs(&b) != 0) {
        out_of_memory = true;
        goto done;
    }
    for (size_t i = 0; i < rs->n_rules; i++)
        if (build_rule(&b, (uint32_t)i)) {
            out_of_memory = true;
            goto done;
        }
    if (b.plan) {
        int prc = plan_apply(&b);
        if (prc) {
            out_of_memory = prc < 0;
            *replan = prc > 0;
            if (prc > 0)
                fprintf(stderr,
                        "chainfuse: warning: compile plan in %s does not fit "
                        "these rules; building the expressions again\n",
                        cache_dir);
            goto done;
        }
    }

    if (build_expr_items(&b) || (!b.plan && build_groups(&b))) {
        out_of_memory = true;
        goto done;
    }
    if (!(b.status = cf_calloc(b.n_exprs ? b.n_exprs : 1, 1))) {
        out_of_memory = true;
        goto done;
    }
    if (b.plan)
        memcpy(key, plan.hs_key, sizeof key);
    else if (*cache_dir && !cache_key(&b, key))
        cache_dir = "";
    struct cf_hs_lazy *lazy_file = NULL;
    if (*cache_dir && cf_hs_cache_open(cache_dir, key, b.status, b.n_exprs,
                                       rs->n_hsdbs, &lazy_file) == CF_OK) {
        if (lazy_setup(rs, lazy_file)) {
            out_of_memory = true;
            goto done;
        }
        if (lazy_proto(rs)) {
            rs->stats.cache_hit = hs_cached = true;
        } else { /* Hyperscan refuses the file: compiled as a miss */
            lazy_drop(rs);
        }
    }
    if (b.plan && !hs_cached) { /* the plan's databases are gone */
        fprintf(stderr,
                "chainfuse: warning: databases that the compile plan in %s "
                "names are missing or refused; compiling the rules again\n",
                cache_dir);
        *replan = true;
        goto done;
    }
    rs->stats.plan_hit = b.plan != NULL;
    if (!rs->stats.cache_hit) {
        check_regexes(&b);
        int crc = compile_all_dbs(&b);
        if (crc) {
            out_of_memory = crc == CF_ERR_NOMEM;
            goto done;
        }
        if (*cache_dir) {
            char err[512];
            if (cf_hs_cache_store(cache_dir, key, b.status, b.n_exprs,
                                  rs->hsdbs, rs->n_hsdbs, err,
                                  sizeof err) != CF_OK)
                fprintf(stderr,
                        "chainfuse: warning: rule cache not written (%s); "
                        "the next start compiles again\n",
                        err);
            else
                hs_cached = true;
        }
    }
    /* A plan is only worth keeping for databases in the cache. */
    if (!b.plan && have_pkey && hs_cached) {
        struct cf_buf out = CF_BUF_INIT;
        char err[512] = "out of memory";
        plan_encode(&b, key, &out);
        if (out.failed ||
            cf_plan_cache_store(cache_dir, pkey, out.data, out.len, err,
                                sizeof err) != CF_OK)
            fprintf(stderr,
                    "chainfuse: warning: compile plan not written (%s); the "
                    "next start builds the expressions again\n",
                    err);
        cf_buf_free(&out);
    }
    if (build_tables(&b)) {
        out_of_memory = true;
        goto done;
    }
    if (compile_direct_regexes(&b)) {
        out_of_memory = true;
        goto done;
    }

    /* Rules that can match with no Hyperscan hit are evaluated on every
     * event they are routed to. */
    {
        size_t n = 0;
        if (!(rs->always = cf_calloc(rs->n_rules ? rs->n_rules : 1,
                                     sizeof *rs->always))) {
            out_of_memory = true;
            goto done;
        }
        for (size_t i = 0; i < rs->n_rules; i++) {
            struct crule *cr = &rs->rules[i];
            if (cr->rejected || !cr->rule->condition) continue;
            cr->always = tree_nomark(cr, cr->rule->condition).can_true;
            if (cr->always) rs->always[n++] = (uint32_t)i;
        }
        rs->n_always = n;
        for (size_t i = 0; i < rs->n_rules; i++)
            if (!rs->rules[i].rejected) rs->stats.rules++;
    }
    if (!(rs->cand_route = cf_calloc(rs->n_rules ? rs->n_rules : 1,
                                     sizeof *rs->cand_route))) {
        out_of_memory = true;
        goto done;
    }
    for (size_t i = 0; i < rs->n_rules; i++) {
        const struct crule *cr = &rs->rules[i];
        rs->cand_route[i] =
            cr->rejected || !cr->rule->condition ? NO_ROUTE : cr->route;
        for (size_t si = 0; si < cr->rule->n_searches; si++)
            for (size_t c = 0; c < cr->searches[si].n_conjs; c++)
                for (size_t k = 0; k < cr->searches[si].conjs[c].n_conds; k++)
                    set_ranged(&cr->searches[si].conjs[c].conds[k]);
    }
    if (build_required(rs)) {
        out_of_memory = true;
        goto done;
    }
    for (size_t d = N_KEYWORD_DBS; d < rs->n_dbs; d++)
        for (uint32_t i = 0; i < rs->dbs[d].n_parts; i++)
            if (rs->dbs[d].parts[i].db) {
                rs->stats.fields++;
                break;
            }
    for (size_t d = 0; d < rs->n_hsdbs; d++) {
        if (!rs->hsdbs[d]) continue;
        rs->stats.databases++;
        /* Loaded lazily: the one loaded so far (lazy_proto) makes the
         * prototype; each matcher grows its clone (ruleset_ready). */
        if (rs->lazy &&
            atomic_load(&rs->lazy->state[d]) != (unsigned char)DB_LOADED)
            continue;
        if (hs_alloc_scratch(rs->hsdbs[d], &rs->scratch) != HS_SUCCESS) {
            cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                      "out of memory for Hyperscan scratch space");
            goto done;
        }
    }
    rs->stats.compile_seconds = now_seconds() - t0;
    ok = true;
    goto done;
done:
    if (out_of_memory)
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                  "out of memory while compiling rules");
    free_builder(&b);
    cf_plan_cache_close(&plan_file);
    if (!ok) {
        cf_ruleset_destroy(rs);
        rs = NULL;
    }
    return rs;
}

struct cf_ruleset *cf_ruleset_compile(struct cf_rulebook *rb,
                                      const struct cf_config *cfg, char *errstr,
                                      size_t errstr_size) {
    bool replan = false;
    struct cf_ruleset *rs =
        compile(rb, cfg, errstr, errstr_size, true, &replan);
    if (!rs && replan)
        rs = compile(rb, cfg, errstr, errstr_size, false, &replan);
    return rs;
}

void cf_ruleset_destroy(struct cf_ruleset *rs) {
    if (!rs) return;
    for (size_t i = 0; rs->rules && i < rs->n_rules; i++) {
        struct crule *cr = &rs->rules[i];
        if (!cr->searches) continue;
        for (size_t s = 0; s < cr->rule->n_searches; s++) {
            struct csearch *cs = &cr->searches[s];
            for (size_t c = 0; cs->conjs && c < cs->n_conjs; c++) {
                struct cconj *cj = &cs->conjs[c];
                for (size_t k = 0; cj->conds && k < cj->n_conds; k++) {
                    struct ccond *cc = &cj->conds[k];
                    for (size_t v = 0;
                         cc->values && cc->fc && v < cc->fc->n_values; v++) {
                        struct cvalue *cv = &cc->values[v];
                        for (size_t d = 0; d < cv->n_direct; d++) {
                            pcre2_code_free(cv->direct[d].re);
                            cf_free(cv->direct[d].refs);
                        }
                        cf_free(cv->direct);
                    }
                }
            }
        }
    }
    while (rs->arena) {
        struct arena_block *next = rs->arena->next;
        cf_free(rs->arena);
        rs->arena = next;
    }
    cf_free(rs->rules);
    cf_free(rs->always);
    cf_free(rs->cand_route);
    cf_free(rs->req_off);
    cf_free(rs->req);
    cf_free(rs->item_req);
    cf_free(rs->range_alt_off);
    cf_free(rs->range_alts);
    cf_free(rs->alt_rule);
    cf_free(rs->alt_need);
    cf_free(rs->rule_constrained);
    cf_free(rs->item_rule);
    cf_free(rs->expr_item_off);
    cf_free(rs->expr_items);
    cf_free(rs->expr_lit_len);
    cf_free(rs->expr_kind);
    for (size_t d = 0; d < rs->n_dbs; d++) {
        cf_free(rs->dbs[d].name);
        for (uint32_t i = 0; i < rs->dbs[d].n_parts; i++)
            cf_free(rs->dbs[d].parts[i].routes);
        cf_free(rs->dbs[d].parts);
    }
    cf_free(rs->dbs);
    if (rs->lazy) { /* the databases live in lazy->mem */
        lazy_drop(rs);
    } else {
        for (size_t d = 0; d < rs->n_hsdbs; d++) hs_free_database(rs->hsdbs[d]);
    }
    cf_free(rs->hsdbs);
    cf_free(rs->slots);
    hs_free_scratch(rs->scratch);
    if (rs->router) cf_router_destroy(rs->router);
    if (rs->fmap) cf_fieldmap_destroy(rs->fmap);
    cf_free(rs);
}

void cf_ruleset_get_stats(const struct cf_ruleset *rs,
                          struct cf_ruleset_stats *stats) {
    if (!rs) {
        memset(stats, 0, sizeof *stats);
        return;
    }
    *stats = rs->stats;
}

/* ---------------------------------------------------------------- */
/* Matching                                                          */

/* Gives `e` its one block for a set of n_scans scans: routes, rule_on,
 * the scans, the keyword database pointers, then db_scan. */
static bool route_set_alloc(const struct cf_matcher *m, struct route_set *e,
                            uint32_t n_scans) {
    const struct cf_ruleset *rs = m->rs;
    size_t rw = rs->route_words, uw = (rs->n_rules + 63) / 64 + 1;
    size_t n_kw = (size_t)rs->dbs[KEYWORD_DB].n_parts +
                  rs->dbs[KEYWORD_LIT_DB].n_parts + 1;
    uint64_t *b =
        cf_malloc((rw + uw) * sizeof *b + n_scans * sizeof *e->scans +
                  n_kw * sizeof *e->kw + (rs->n_dbs + 1) * sizeof *e->db_scan);
    if (!b) return false;
    e->routes = b;
    e->rule_on = b + rw;
    e->scans = (struct set_scan *)(b + rw + uw);
    e->kw = (const hs_database_t **)(e->scans + n_scans);
    e->db_scan = (uint32_t *)(e->kw + n_kw);
    return true;
}

static void route_sets_clear(struct cf_matcher *m) {
    for (uint32_t i = 0; i < RSET_SLOTS; i++) {
        cf_free(m->rsets[i].routes);
        m->rsets[i].routes = NULL;
    }
    m->rsets_used = 0;
}

/* The databases of keyword pseudo-field `d` that `routes` ask for, into
 * out[]: the parts on its routes, or, when it is on none but the
 * unconditional route, that route's own (fallback) part. */
static uint32_t keyword_dbs(const struct cf_ruleset *rs,
                            const struct field_db *d, const uint64_t *routes,
                            const hs_database_t **out) {
    uint32_t n = 0;
    for (int fallback = 0; fallback < 2 && n == 0; fallback++)
        for (uint32_t i = 0; i < d->n_parts; i++)
            if (d->parts[i].db && d->parts[i].fallback == fallback &&
                bits_intersect(d->parts[i].routes, routes, rs->route_words))
                out[n++] = d->parts[i].db;
    return n;
}

/* The scans `routes` ask for, into m->tmp_scans, and their offsets
 * per field database into m->tmp_db_scan; returns the number of scans. */
static uint32_t set_scans_gather(struct cf_matcher *m, const uint64_t *routes) {
    const struct cf_ruleset *rs = m->rs;
    uint32_t ns = 0;
    /* The keyword pseudo-fields are scanned through kw. */
    for (size_t i = 0; i < rs->n_dbs; i++) {
        const struct field_db *d = &rs->dbs[i];
        m->tmp_db_scan[i] = ns;
        if (i < N_KEYWORD_DBS) continue;
        for (uint32_t p = 0; p < d->n_parts; p++)
            if (d->parts[p].db &&
                bits_intersect(d->parts[p].routes, routes, rs->route_words))
                m->tmp_scans[ns++] = (struct set_scan){d->parts[p].db, d->name,
                                                       d->parts[p].literal};
    }
    m->tmp_db_scan[rs->n_dbs] = ns;
    return ns;
}

/* Fills `e` (allocated for at least n_scans) from what set_scans_gather
 * left in m's tmp arrays. */
static void route_set_fill(struct cf_matcher *m, struct route_set *e,
                           const uint64_t *routes, uint64_t hash,
                           uint32_t n_scans) {
    const struct cf_ruleset *rs = m->rs;
    size_t uw = (rs->n_rules + 63) / 64 + 1;
    e->hash = hash;
    e->gen = ++m->rset_gen;
    memcpy(e->routes, routes, rs->route_words * sizeof *routes);
    e->any = false;
    for (uint32_t i = 0; i < rs->route_words; i++)
        if (routes[i]) e->any = true;
    memset(e->rule_on, 0, uw * sizeof *e->rule_on);
    memcpy(e->scans, m->tmp_scans, n_scans * sizeof *e->scans);
    memcpy(e->db_scan, m->tmp_db_scan, (rs->n_dbs + 1) * sizeof *e->db_scan);
    for (size_t ri = 0; ri < rs->n_rules; ri++)
        if (rs->cand_route[ri] != NO_ROUTE &&
            bit_test(routes, rs->cand_route[ri]))
            bit_set(e->rule_on, (uint32_t)ri);
    e->n_kw = 0;
    e->n_kl = 0;
    if (!rs->scratch) return;
    e->n_kw = keyword_dbs(rs, &rs->dbs[KEYWORD_DB], routes, e->kw);
    e->n_kl =
        keyword_dbs(rs, &rs->dbs[KEYWORD_LIT_DB], routes, e->kw + e->n_kw);
}

/* The event's route set, from the cache or worked out (into the spare
 * entry, sized for every part, when a slot cannot be allocated: slower,
 * never wrong). */
static const struct route_set *route_set_of(struct cf_matcher *m,
                                            const uint64_t *routes) {
    size_t bytes = m->rs->route_words * sizeof *routes;
    uint64_t h = cf_hash_words(0, routes, bytes);
    uint32_t s = (uint32_t)h & (RSET_SLOTS - 1);
    for (; m->rsets[s].routes; s = (s + 1) & (RSET_SLOTS - 1))
        if (m->rsets[s].hash == h &&
            memcmp(m->rsets[s].routes, routes, bytes) == 0)
            return &m->rsets[s];
    if (m->rsets_used >= RSET_SLOTS / 4 * 3) {
        /* Many distinct sets: start over, the ones in use refill. */
        route_sets_clear(m);
        s = (uint32_t)h & (RSET_SLOTS - 1);
    }
    uint32_t n_scans = set_scans_gather(m, routes);
    struct route_set *e = &m->rsets[s];
    if (!route_set_alloc(m, e, n_scans)) {
        e->routes = NULL;
        e = m->rset_spare;
    } else {
        m->rsets_used++;
    }
    /* Databases loaded lazily: those of the set, before it scans. */
    if (m->sized) ruleset_ready(m->rs, routes, &m->scratch, m->sized);
    route_set_fill(m, e, routes, h, n_scans);
    return e;
}

/* The name entry for `name` (len, hash), added when absent; NULL when
 * out of room (never: sized for every name). */
static struct name_entry *name_put(struct cf_matcher *m, uint32_t *n,
                                   const char *name, uint32_t len,
                                   uint32_t hash) {
    uint32_t s = hash & m->name_mask;
    for (; m->name_slots[s].entry; s = (s + 1) & m->name_mask) {
        struct name_entry *e = &m->names[m->name_slots[s].entry - 1];
        if (m->name_slots[s].hash == hash && e->len == len &&
            memcmp(e->name, name, len) == 0)
            return e;
    }
    m->names[*n] = (struct name_entry){name, len, NO_ROUTE, 0};
    m->name_slots[s] = (struct name_slot){hash, ++*n};
    return &m->names[*n - 1];
}

/* The name table: every field database with a compiled part, and every
 * field the router reads. */
static int names_build(struct cf_matcher *m) {
    const struct cf_ruleset *rs = m->rs;
    uint32_t n_route = cf_router_field_count(rs->router), n = 0, size = 16;
    size_t most = rs->n_dbs + n_route;
    while (size < 4 * most) size *= 2;
    m->names = cf_malloc((most + 1) * sizeof *m->names);
    m->name_slots = cf_calloc(size, sizeof *m->name_slots);
    if (!m->names || !m->name_slots) return -1;
    m->name_mask = size - 1;
    for (size_t i = N_KEYWORD_DBS; i < rs->n_dbs; i++) {
        const struct field_db *d = &rs->dbs[i];
        bool compiled = false;
        for (uint32_t p = 0; p < d->n_parts; p++)
            if (d->parts[p].db) compiled = true;
        if (compiled)
            name_put(m, &n, d->name, d->len, d->hash)->db = (uint32_t)i;
    }
    for (uint32_t i = 0; i < n_route; i++) {
        uint32_t len, hash;
        const char *name = cf_router_field(rs->router, i, &len, &hash);
        if (name) name_put(m, &n, name, len, hash)->route_field = i;
    }
    return 0;
}

struct cf_matcher *cf_matcher_new(const struct cf_ruleset *rs) {
    struct cf_matcher *m = cf_calloc(1, sizeof *m);
    size_t item_words = (rs->n_items + 63) / 64 + 1;
    size_t rule_words = (rs->n_rules + 63) / 64 + 1;
    if (!m) return NULL;
    m->rs = rs;
    m->marks = cf_calloc(item_words, sizeof *m->marks);
    m->touched = cf_malloc((rs->n_items + 1) * sizeof *m->touched);
    m->rule_bits = cf_calloc(rule_words, sizeof *m->rule_bits);
    m->cand = cf_malloc((rs->n_rules + 1) * sizeof *m->cand);
    m->req_hit = cf_calloc((rs->n_ranges + 63) / 64 + 1, sizeof *m->req_hit);
    m->req_list = cf_malloc((rs->n_ranges + 1) * sizeof *m->req_list);
    m->alt_cnt = cf_calloc(rs->n_alts + 1, sizeof *m->alt_cnt);
    m->md = pcre2_match_data_create(1, NULL);
    m->route_cache = cf_route_cache_new(rs->router);
    for (size_t i = 0; i < rs->n_dbs; i++) m->n_parts += rs->dbs[i].n_parts;
    m->tmp_db_scan = cf_malloc((rs->n_dbs + 1) * sizeof *m->tmp_db_scan);
    m->tmp_scans = cf_malloc((m->n_parts + 1) * sizeof *m->tmp_scans);
    m->rsets = cf_calloc(RSET_SLOTS, sizeof *m->rsets);
    m->rset_spare = cf_calloc(1, sizeof *m->rset_spare);
    m->memo = cf_calloc(MEMO_SLOTS, sizeof *m->memo);
    m->found = cf_malloc(MEMO_MAX_IDS * sizeof *m->found);
    m->found_cap = MEMO_MAX_IDS;
    if (!m->marks || !m->touched || !m->rule_bits || !m->cand || !m->req_hit ||
        !m->req_list || !m->alt_cnt || !m->md || !m->route_cache ||
        !m->tmp_db_scan || !m->tmp_scans || !m->rsets || !m->rset_spare ||
        !m->memo || !m->found)
        goto fail;
    if (!route_set_alloc(m, m->rset_spare, m->n_parts) || names_build(m))
        goto fail;
    /* Room for the hits of events of up to HITS_START fields from the
     * start: an event's matching needs no allocation unless it has more
     * fields than any before. */
    m->route_hits = cf_malloc(HITS_START * sizeof *m->route_hits);
    m->db_hits = cf_malloc(HITS_START * sizeof *m->db_hits);
    if (!m->route_hits || !m->db_hits) goto fail;
    m->hits_cap = HITS_START;
    if (rs->lazy &&
        !(m->sized = cf_calloc((rs->n_hsdbs + 63) / 64 + 1, sizeof *m->sized)))
        goto fail;
    if (rs->scratch && hs_clone_scratch(rs->scratch, &m->scratch) != HS_SUCCESS)
        goto fail;
    return m;
fail:
    cf_matcher_destroy(m);
    return NULL;
}

void cf_matcher_destroy(struct cf_matcher *m) {
    if (!m) return;
    hs_free_scratch(m->scratch);
    cf_free(m->sized);
    if (m->route_cache) cf_route_cache_destroy(m->route_cache);
    cf_free(m->marks);
    cf_free(m->touched);
    if (m->rsets) route_sets_clear(m);
    cf_free(m->rsets);
    if (m->rset_spare) cf_free(m->rset_spare->routes);
    cf_free(m->rset_spare);
    cf_free(m->tmp_db_scan);
    cf_free(m->tmp_scans);
    cf_free(m->names);
    cf_free(m->name_slots);
    cf_free(m->route_hits);
    cf_free(m->db_hits);
    /* memo_bytes only grows: 0 means no blob, and then the 1.5 MB of
     * slots, untouched since calloc, need not be read in (380 page
     * faults at the end of every run that scanned nothing). */
    if (m->memo && m->memo_bytes)
        for (uint32_t i = 0; i < MEMO_SLOTS; i++) cf_free(m->memo[i].blob);
    cf_free(m->memo);
    cf_free(m->found);
    cf_free(m->rule_bits);
    cf_free(m->cand);
    cf_free(m->req_hit);
    cf_free(m->req_list);
    cf_free(m->alt_cnt);
    pcre2_match_data_free(m->md);
    cf_buf_free(&m->concat);
    cf_free(m->leaf_end);
    cf_free(m->slots);
    cf_free(m->next_leaf);
    cf_free(m);
}

static const char *hs_error_name(hs_error_t e) {
    switch (e) {
    case HS_INVALID: return "HS_INVALID";
    case HS_NOMEM: return "HS_NOMEM";
    case HS_SCAN_TERMINATED: return "HS_SCAN_TERMINATED";
    case HS_SCRATCH_IN_USE: return "HS_SCRATCH_IN_USE";
    case HS_BAD_ALIGN: return "HS_BAD_ALIGN";
    case HS_BAD_ALLOC: return "HS_BAD_ALLOC";
    case HS_ARCH_ERROR: return "HS_ARCH_ERROR";
    case HS_INSUFFICIENT_SPACE: return "HS_INSUFFICIENT_SPACE";
    default: return "HS_UNKNOWN_ERROR";
    }
}

/* The event being matched had a scan fail: counted once per event, the
 * first failure's description kept for the operator. */
static void scan_failed(struct cf_matcher *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void scan_failed(struct cf_matcher *m, const char *fmt, ...) {
    m->event_failed = true;
    if (m->first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->first_error, sizeof m->first_error, fmt, ap);
    va_end(ap);
}

static void check_hs(struct cf_matcher *m, hs_error_t rc, const char *db) {
    if (rc != HS_SUCCESS)
        scan_failed(m, "Hyperscan scan of %s failed: %s (%d)", db,
                    hs_error_name(rc), (int)rc);
}

uint64_t cf_matcher_scan_errors(const struct cf_matcher *m,
                                const char **first_error) {
    if (first_error) *first_error = m->first_error;
    return m->scan_errors;
}

uint64_t cf_matcher_route_failures(const struct cf_matcher *m) {
    return m->route_failures;
}

void cf_matcher_memo_counts(const struct cf_matcher *m, uint64_t *hits,
                            uint64_t *misses) {
    *hits = m->memo_hits;
    *misses = m->memo_misses;
}

static inline void mark_item(struct cf_matcher *m, uint32_t item) {
    if (!bit_test(m->marks, item)) {
        bit_set(m->marks, item);
        m->touched[m->n_touched++] = item;
    }
}

static void mark_expr(struct cf_matcher *m, unsigned int id) {
    const struct cf_ruleset *rs = m->rs;
    for (uint32_t k = rs->expr_item_off[id]; k < rs->expr_item_off[id + 1]; k++)
        mark_item(m, rs->expr_items[k]);
}

static int on_hs_match(unsigned int id, unsigned long long from,
                       unsigned long long to, unsigned int flags, void *ctx) {
    CF_UNUSED(from);
    CF_UNUSED(to);
    CF_UNUSED(flags);
    struct cf_matcher *m = ctx;
    mark_expr(m, id);
    if (m->recording) {
        uint32_t i = 0;
        while (i < m->n_found && m->found[i] != id) i++;
        if (i == m->n_found) {
            if (m->n_found == m->found_cap)
                m->recording = false; /* too many to keep: scanned again */
            else
                m->found[m->n_found++] = id;
        }
    }
    return 0;
}

/* A scan of one value with a literal database (db_part.literal). */
struct literal_scan {
    struct cf_matcher *m;
    unsigned long long value_len;
};

/* The literal API has no anchors: a startswith hit must end at the
 * literal's length, an endswith hit at the value's end.  The rest is
 * on_hs_match's. */
static int on_field_literal(unsigned int id, unsigned long long from,
                            unsigned long long to, unsigned int flags,
                            void *ctx) {
    const struct literal_scan *ls = ctx;
    uint8_t kind = ls->m->rs->expr_kind[id];
    if ((kind & EXPR_LIT_START) && to != ls->m->rs->expr_lit_len[id]) return 0;
    if ((kind & EXPR_LIT_END) && to != ls->value_len) return 0;
    return on_hs_match(id, from, to, flags, ls->m);
}

/* The scan memo's hash of a value: cf_hash_words' step on four
 * independent lanes, 32 bytes a round, then cf_hash_words over the tail
 * from the folded lanes.  Long values (Sysmon call traces, 500 bytes)
 * are hashed in a quarter of the dependent multiplies; a collision only
 * costs a scan, as entries are compared in full. */
static inline uint64_t memo_hash(const char *v, uint32_t len) {
    const uint64_t k = UINT64_C(0x517cc1b727220a95);
    const unsigned char *p = (const unsigned char *)v;
    size_t n = len;
    if (n < 32) return cf_hash_words(0, v, n);
    uint64_t a = n, b = ~(uint64_t)n, c = k, d = 0, w[4];
#define MEMO_LANE(h, x) ((((h) << 5) | ((h) >> 59)) ^ (x)) * k
    for (; n >= 32; p += 32, n -= 32) {
        memcpy(w, p, 32);
        a = MEMO_LANE(a, w[0]);
        b = MEMO_LANE(b, w[1]);
        c = MEMO_LANE(c, w[2]);
        d = MEMO_LANE(d, w[3]);
    }
#undef MEMO_LANE
    uint64_t h = a ^ ((b << 16) | (b >> 48)) ^ ((c << 32) | (c >> 32)) ^
                 ((d << 48) | (d >> 16));
    return cf_hash_words(h, p, n);
}

/* An event value being scanned, with its memo hash (of the bytes
 * alone, computed at most once however many databases scan it). */
struct value_ref {
    const char *v;
    uint32_t len;
    bool hashed;
    uint64_t hash;
};

/* The hash of a memo entry's key: the value's hash, the key's address
 * spread over the low bits that pick the slot (an address's own low
 * bits are alignment zeros), the route set's gen. */
static inline uint64_t memo_key_hash(uint64_t value_hash, const void *key,
                                     uint64_t gen) {
    return value_hash ^
           (((uint64_t)(uintptr_t)key * UINT64_C(0x9e3779b97f4a7c15)) >> 32) ^
           (gen * UINT64_C(0xc2b2ae3d27d4eb4f));
}

/* Scans `v` with sc[0..n), and with the route set's keyword literal
 * databases when `kl` (see scan_fields): what scan_value does when the
 * memo cannot answer.  `e` is the value's memo slot (NULL: not kept),
 * `h` its key hash.  Out of line, so the hit path inlined in
 * scan_fields stays small. */
static __attribute__((noinline)) void
scan_miss(struct cf_matcher *m, const void *key, const struct set_scan *sc,
          uint32_t n, bool kl, const struct value_ref *ref,
          struct memo_entry *e, uint64_t h) {
    const struct cf_ruleset *rs = m->rs;
    const char *v = ref->v;
    uint32_t len = ref->len;
    bool failed = false;
    if (e) {
        m->memo_misses++;
        /* Second chance: an entry that answered since it was stored
         * stays for one more colliding value, so a stream of values
         * seen once (times, ids) does not push out the ones that
         * repeat. */
        if (e->key && e->used) {
            e->used = false;
            e = NULL;
        }
    }
    m->n_found = 0;
    m->recording = e != NULL;
    for (uint32_t i = 0; i < n; i++) {
        struct literal_scan ls = {m, len};
        hs_error_t rc = sc[i].literal ? hs_scan(sc[i].db, v, len, 0, m->scratch,
                                                on_field_literal, &ls)
                                      : hs_scan(sc[i].db, v, len, 0, m->scratch,
                                                on_hs_match, m);
        check_hs(m, rc, sc[i].what);
        if (rc != HS_SUCCESS) failed = true;
    }
    /* The value alone is one leaf: every keyword literal hit in it
     * counts (on_literal_match's test always holds). */
    const struct route_set *rset = m->rset;
    for (uint32_t i = 0; kl && i < rset->n_kl; i++) {
        hs_error_t rc = hs_scan(rset->kw[rset->n_kw + i], v, len, 0, m->scratch,
                                on_hs_match, m);
        check_hs(m, rc, "the keyword literals");
        if (rc != HS_SUCCESS) failed = true;
    }
    if (!m->recording || failed) return;
    m->recording = false;
    const uint64_t *rule_on = rset->rule_on;
    uint32_t n_items = 0;
    for (uint32_t i = 0; i < m->n_found; i++)
        for (uint32_t k = rs->expr_item_off[m->found[i]];
             k < rs->expr_item_off[m->found[i] + 1]; k++)
            if (bit_test(rule_on, rs->item_rule[rs->expr_items[k]])) n_items++;
    if (n_items > MEMO_MAX_ITEMS) return;
    size_t need = n_items * sizeof *e->blob + len;
    if (need == 0) need = 1; /* an entry always has its blob */
    if (need > e->cap) {
        /* grown in place of the old entry's bytes, within the budget */
        if (m->memo_bytes - e->cap + need > MEMO_MAX_BYTES) return;
        uint32_t *blob = cf_realloc(e->blob, need);
        if (!blob) return; /* the old entry stays; this value is not kept */
        m->memo_bytes += need - e->cap;
        e->blob = blob;
        e->cap = (uint32_t)need;
    }
    uint32_t *at = e->blob;
    for (uint32_t i = 0; i < m->n_found; i++)
        for (uint32_t k = rs->expr_item_off[m->found[i]];
             k < rs->expr_item_off[m->found[i] + 1]; k++)
            if (bit_test(rule_on, rs->item_rule[rs->expr_items[k]]))
                *at++ = rs->expr_items[k];
    memcpy(at, v, len);
    e->key = key;
    e->hash = h;
    e->gen = rset->gen;
    e->len = len;
    e->n_items = n_items;
    e->used = false;
}

/* Scans `v` with sc[0..n) (the databases of one field, or one keyword
 * database) and, when `kl`, the set's keyword literal databases, or
 * marks what the memo, under `key`, says those scans report.  Whether a
 * key's entries hold the keyword literals' hits depends only on the key
 * and the route set (scan_fields), both part of the entry's key. */
static inline void scan_value(struct cf_matcher *m, const void *key,
                              const struct set_scan *sc, uint32_t n, bool kl,
                              struct value_ref *ref) {
    const char *v = ref->v;
    uint32_t len = ref->len;
    struct memo_entry *e = NULL;
    uint64_t h = 0;
    if (len <= MEMO_MAX_VALUE) { /* m->memo: cf_matcher_new fails without */
        if (!ref->hashed) {
            ref->hash = memo_hash(v, len);
            ref->hashed = true;
        }
        uint64_t gen = m->rset->gen;
        h = memo_key_hash(ref->hash, key, gen);
        e = &m->memo[h & (MEMO_SLOTS - 1)];
        const char *kept = (const char *)(e->blob + e->n_items);
        if (e->hash == h && e->key == key && e->gen == gen && e->len == len &&
            cf_bytes_equal(kept, v, len)) {
            /* marks and touched through locals: stores to touched[]
             * could alias m's members, reloaded per item otherwise */
            uint64_t *marks = m->marks;
            uint32_t *touched = m->touched, nt = m->n_touched;
            const uint32_t *items = e->blob;
            for (uint32_t i = 0, n_items = e->n_items; i < n_items; i++) {
                uint32_t item = items[i];
                uint64_t bit = (uint64_t)1 << (item & 63);
                if (!(marks[item >> 6] & bit)) {
                    marks[item >> 6] |= bit;
                    touched[nt++] = item;
                }
            }
            m->n_touched = nt;
            e->used = true;
            m->memo_hits++;
            return;
        }
    }
    scan_miss(m, key, sc, n, kl, ref, e, h);
}

/* Whether leaf `f`, named as field database `db`, is scanned with that
 * field's databases on `rset` (scan_fields).  Such a leaf is scanned
 * with the set's keyword literal databases too, alone, and left out of
 * the one literal scan over the other leaves (scan_literals): its
 * memo entry then answers for the literals as well.  96% of LSASS's
 * lookups are answered, and these leaves are a quarter of the bytes the
 * literal scan read (the rest is mostly the rendered Message, a new
 * value every event, which no database names). */
static inline bool leaf_scanned(const struct route_set *rset,
                                const struct cf_event_field *f, uint32_t db) {
    /* JSON null is no value: it matches `field: null` (checked
     * directly), never a string pattern, not even ''. */
    return f->type != CF_VALUE_NULL &&
           rset->db_scan[db + 1] > rset->db_scan[db];
}

/* Scans each of the event's values with the databases its field has on
 * the event's route set (db_hits), and with the set's keyword
 * databases; with the keyword literal ones, those leaf_scanned.  Keeps
 * the db_hits of the leaves scanned first in m->db_hits, in leaf order,
 * and returns their number (for scan_literals). */
static __attribute__((noinline)) uint32_t
scan_fields(struct cf_matcher *m, const struct cf_event *ev,
            const struct route_set *rset, uint32_t n_db_hits) {
    /* Locals: scan_value could, for all the compiler knows, change what
     * rset points to, and reloading them per field showed. */
    const struct set_scan *scans = rset->scans;
    const uint32_t *db_scan = rset->db_scan;
    struct cf_route_hit *dh = m->db_hits;
    const hs_database_t *const *kw = rset->kw;
    uint32_t n_kw = rset->n_kw, d = 0, n_scanned = 0;
    bool kl = rset->n_kl > 0;
    if (n_kw == 0) {
        /* The memo's slots (1.5 MB) are mostly out of the core's 1 MB
         * L2, and each lookup waited on its entry (perf put 45% of this
         * function's samples on that load): the values are hashed
         * first, a batch at a time, and their slots fetched together
         * before the first lookup reads one.  Prefetching the entries'
         * blobs as well measured no better. */
        struct value_ref refs[MEMO_BATCH];
        uint32_t dbs[MEMO_BATCH];
        while (d < n_db_hits) {
            uint32_t n = 0;
            for (; d < n_db_hits && n < MEMO_BATCH; d++) {
                uint32_t db = dh[d].field;
                const struct cf_event_field *f = &ev->fields[dh[d].leaf];
                /* (no scans: a field of other sources' rules) */
                if (!leaf_scanned(rset, f, db)) continue;
                dh[n_scanned++] = dh[d]; /* n_scanned <= d */
                struct value_ref *ref = &refs[n];
                *ref = (struct value_ref){f->value, f->value_len, false, 0};
                dbs[n++] = db;
                if (f->value_len > MEMO_MAX_VALUE) continue;
                ref->hash = memo_hash(f->value, f->value_len);
                ref->hashed = true;
                uint64_t h =
                    memo_key_hash(ref->hash, &m->rs->dbs[db], rset->gen);
                const struct memo_entry *e = &m->memo[h & (MEMO_SLOTS - 1)];
                /* 48 bytes: the entry may span two lines */
                __builtin_prefetch(e);
                __builtin_prefetch((const char *)(e + 1) - 1);
            }
            for (uint32_t i = 0; i < n; i++)
                scan_value(m, &m->rs->dbs[dbs[i]], scans + db_scan[dbs[i]],
                           db_scan[dbs[i] + 1] - db_scan[dbs[i]], kl, &refs[i]);
        }
        return n_scanned;
    }
    /* Every leaf, walking db_hits (in leaf order, one per leaf at most)
     * alongside, so a value is hashed once for both kinds of scan. */
    for (uint32_t i = 0; i < ev->n_fields; i++) {
        const struct cf_event_field *f = &ev->fields[i];
        bool has_db = d < n_db_hits && dh[d].leaf == i;
        uint32_t db = has_db ? dh[d++].field : 0;
        if (f->type == CF_VALUE_NULL) continue;
        struct value_ref ref = {f->value, f->value_len, false, 0};
        if (has_db && leaf_scanned(rset, f, db)) {
            dh[n_scanned++] = (struct cf_route_hit){db, i};
            scan_value(m, &m->rs->dbs[db], scans + db_scan[db],
                       db_scan[db + 1] - db_scan[db], kl, &ref);
        }
        for (uint32_t k = 0; k < n_kw; k++) {
            struct set_scan ks = {kw[k], "the keywords", false};
            scan_value(m, kw[k], &ks, 1, false, &ref);
        }
    }
    return n_scanned;
}

/* The leaves of `ev` with names in m's name table: those of routing
 * fields into m->route_hits (their number in *n_route), those of field
 * databases into m->db_hits (returned).  One probe per leaf serves both
 * routing and scanning. */
static __attribute__((noinline)) uint32_t
find_names(struct cf_matcher *m, const struct cf_event *ev, uint32_t *n_route) {
    const struct name_slot *slots = m->name_slots;
    const struct name_entry *names = m->names;
    struct cf_route_hit *rh = m->route_hits, *dh = m->db_hits;
    uint32_t mask = m->name_mask, nr = 0, nd = 0;
    for (uint32_t i = 0; i < ev->n_fields; i++) {
        const struct cf_event_field *f = &ev->fields[i];
        for (uint32_t s = f->name_hash & mask; slots[s].entry;
             s = (s + 1) & mask) {
            if (slots[s].hash != f->name_hash) continue;
            const struct name_entry *e = &names[slots[s].entry - 1];
            if (e->len != f->name_len ||
                !cf_bytes_equal(e->name, f->name, f->name_len))
                continue;
            if (e->route_field != NO_ROUTE)
                rh[nr++] = (struct cf_route_hit){e->route_field, i};
            if (e->db) dh[nd++] = (struct cf_route_hit){e->db, i};
            break;
        }
    }
    *n_route = nr;
    return nd;
}

/* A keyword literal hit in the concatenated values counts only when it
 * lies inside one leaf. */
static int on_literal_match(unsigned int id, unsigned long long from,
                            unsigned long long to, unsigned int flags,
                            void *ctx) {
    struct cf_matcher *m = ctx;
    uint32_t len = m->rs->expr_lit_len[id];
    uint32_t lo = 0, hi = m->n_leaves;
    CF_UNUSED(from);
    CF_UNUSED(flags);
    if (to < len) return 0;
    /* Frequent literals hit many times: skip once their items are in. */
    const struct cf_ruleset *rs = m->rs;
    uint32_t k = rs->expr_item_off[id];
    while (k < rs->expr_item_off[id + 1] &&
           bit_test(m->marks, rs->expr_items[k]))
        k++;
    if (k == rs->expr_item_off[id + 1]) return 0;
    unsigned long long start = to - len;
    /* First leaf ending after `start`. */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->leaf_end[mid] <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < m->n_leaves && to <= m->leaf_end[lo]) mark_expr(m, id);
    return 0;
}

/* Scans the event's values at once with each of the route set's keyword
 * literal databases, but those of the n_scanned leaves scan_fields left
 * first in m->db_hits: it looked for the literals in them (and ran
 * first, so on_literal_match's skip sees their marks). */
static cf_err_t scan_literals(struct cf_matcher *m, const struct cf_event *ev,
                              const struct route_set *rset,
                              uint32_t n_scanned) {
    const struct cf_route_hit *dh = m->db_hits;
    size_t total = 0;
    for (uint32_t i = 0; i < ev->n_fields; i++)
        total += ev->fields[i].value_len;
    if (total > UINT32_MAX) return CF_ERR_LIMIT;
    cf_buf_reset(&m->concat);
    if (!cf_buf_reserve(&m->concat, total)) return CF_ERR_NOMEM;
    if (ev->n_fields + 1 > m->leaf_cap) {
        uint32_t *e = cf_realloc(m->leaf_end, (ev->n_fields + 1) * sizeof *e);
        if (!e) return CF_ERR_NOMEM;
        m->leaf_end = e;
        m->leaf_cap = ev->n_fields + 1;
    }
    /* Reserved above: copied without cf_buf_append's checks per leaf. */
    char *at = m->concat.data;
    uint32_t n = 0, i = 0;
    /* the leaves up to the next one scanned, which is skipped */
    for (uint32_t s = 0; s <= n_scanned; s++, i++) {
        uint32_t stop = s < n_scanned ? dh[s].leaf : ev->n_fields;
        for (; i < stop; i++) {
            memcpy(at, ev->fields[i].value, ev->fields[i].value_len);
            at += ev->fields[i].value_len;
            m->leaf_end[n++] = (uint32_t)(at - m->concat.data);
        }
    }
    m->concat.len = (size_t)(at - m->concat.data);
    *at = '\0'; /* the buffer's own NUL, as cf_buf keeps it */
    m->n_leaves = n;
    /* Nothing left to scan: a literal has at least one byte. */
    for (uint32_t k = 0; k < rset->n_kl && m->concat.len; k++)
        check_hs(m,
                 hs_scan(rset->kw[rset->n_kw + k], m->concat.data,
                         (unsigned)m->concat.len, 0, m->scratch,
                         on_literal_match, m),
                 "the keyword literals");
    return CF_OK;
}

static bool name_is(const struct cf_event_field *f, const struct name_ref *n) {
    return f->name_hash == n->hash && f->name_len == n->len &&
           memcmp(f->name, n->name, n->len) == 0;
}

#define LEAF_END UINT32_MAX

static void index_event(struct cf_matcher *m, const struct cf_event *ev) {
    uint32_t size = 16;
    while (size < 2 * ev->n_fields) size *= 2;
    if (size > m->slot_mask + 1 || !m->slots) {
        uint32_t *slots = cf_realloc(m->slots, size * sizeof *slots);
        if (!slots) return; /* lookups fall back to scanning */
        m->slots = slots;
        m->slot_mask = size - 1;
    }
    if (ev->n_fields > m->next_cap) {
        uint32_t *next = cf_realloc(m->next_leaf, ev->n_fields * sizeof *next);
        if (!next) return;
        m->next_leaf = next;
        m->next_cap = ev->n_fields;
    }
    memset(m->slots, 0, (m->slot_mask + 1) * sizeof *m->slots);
    for (uint32_t i = 0; i < ev->n_fields; i++) {
        const struct cf_event_field *f = &ev->fields[i];
        uint32_t s = f->name_hash & m->slot_mask;
        m->next_leaf[i] = LEAF_END;
        for (; m->slots[s]; s = (s + 1) & m->slot_mask) {
            const struct cf_event_field *g = &ev->fields[m->slots[s] - 1];
            if (g->name_hash == f->name_hash && g->name_len == f->name_len &&
                memcmp(g->name, f->name, f->name_len) == 0) {
                m->next_leaf[i] = m->slots[s] - 1;
                break;
            }
        }
        m->slots[s] = i + 1;
    }
    m->indexed = true;
}

/* Leaves named `n`: first, then next after i; LEAF_END when done. */
static uint32_t leaf_first(struct cf_matcher *m, const struct cf_event *ev,
                           const struct name_ref *n) {
    if (!m->indexed) index_event(m, ev);
    if (!m->indexed) {
        for (uint32_t i = 0; i < ev->n_fields; i++)
            if (name_is(&ev->fields[i], n)) return i;
        return LEAF_END;
    }
    for (uint32_t s = n->hash & m->slot_mask; m->slots[s];
         s = (s + 1) & m->slot_mask)
        if (name_is(&ev->fields[m->slots[s] - 1], n)) return m->slots[s] - 1;
    return LEAF_END;
}

static uint32_t leaf_next(struct cf_matcher *m, const struct cf_event *ev,
                          const struct name_ref *n, uint32_t i) {
    if (m->indexed) return m->next_leaf[i];
    for (i++; i < ev->n_fields; i++)
        if (name_is(&ev->fields[i], n)) return i;
    return LEAF_END;
}

static bool field_present(struct cf_matcher *m, const struct cf_event *ev,
                          const struct ccond *cc) {
    if (!cc->fc->field) return ev->n_fields > 0;
    for (size_t k = 0; k < cc->n_names; k++)
        if (leaf_first(m, ev, &cc->names[k]) != LEAF_END) return true;
    return false;
}

/* A field's value as a number: a JSON number as written (the decoder
 * checked its grammar), or text that is wholly a decimal number. */
static bool parse_number(const struct cf_event_field *f, double *out) {
    if (f->type == CF_VALUE_NUMBER) {
        *out = strtod(f->value, NULL); /* NUL-terminated by the decoder */
        return isfinite(*out);
    }
    return f->type == CF_VALUE_STRING &&
           cf_decimal_parse(f->value, f->value_len, out);
}

static bool compare(double a, enum cf_compare op, double b) {
    switch (op) {
    case CF_CMP_EQ: return a == b;
    case CF_CMP_NEQ: return a != b;
    case CF_CMP_LT: return a < b;
    case CF_CMP_LTE: return a <= b;
    case CF_CMP_GT: return a > b;
    case CF_CMP_GTE: return a >= b;
    }
    return false;
}

static bool cidr_match(const struct cf_sigma_pattern *p,
                       const struct cf_event_field *f) {
    uint8_t addr[16];
    char buf[64];
    if (f->value_len == 0 || f->value_len >= sizeof buf) return false;
    memcpy(buf, f->value, f->value_len);
    buf[f->value_len] = '\0';
    if (inet_pton(p->family == 6 ? AF_INET6 : AF_INET, buf, addr) != 1)
        return false;
    int bits = p->prefix;
    for (int i = 0; bits > 0; i++, bits -= 8) {
        uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
        if ((addr[i] & mask) != (p->addr[i] & mask)) return false;
    }
    return true;
}

/* The parts are read as the date is written: Sigma's time modifiers are
 * "not designed to handle timezone or format conversions", so
 * 23:30+02:00 is hour 23, an epoch number is not a date, and a date
 * without a time has a day, week, month and year but no hour or minute. */
static bool timepart_match(const struct cf_sigma_pattern *p,
                           const struct cf_event_field *f) {
    struct cf_time_fields tf;
    int part;
    if (f->type != CF_VALUE_STRING ||
        cf_time_fields_parse(f->value, f->value_len, &tf) != CF_OK)
        return false;
    switch (p->time_part) {
    case CF_TIMEPART_MINUTE:
        if (!tf.has_time) return false;
        part = (int)tf.minute;
        break;
    case CF_TIMEPART_HOUR:
        if (!tf.has_time) return false;
        part = (int)tf.hour;
        break;
    case CF_TIMEPART_DAY: part = (int)tf.day; break;
    case CF_TIMEPART_WEEK: part = (int)cf_time_iso_week(&tf); break;
    case CF_TIMEPART_MONTH: part = (int)tf.month; break;
    case CF_TIMEPART_YEAR: part = tf.year; break;
    default: return false;
    }
    return compare(part, p->op, p->number);
}

static bool contains(const char *hay, size_t n, const char *needle, size_t k) {
    if (k == 0) return true;
    for (size_t i = 0; i + k <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, k) == 0) return true;
    return false;
}

/* n bytes equal, ASCII case folded unless `cased` (as for globs). */
static bool same_bytes(const char *a, const char *b, size_t n, bool cased) {
    if (cased) return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (fold((unsigned char)a[i]) != fold((unsigned char)b[i]))
            return false;
    return true;
}

/* The other field's value is a Sigma value like any other: compared
 * case-insensitively unless the rule says |cased. */
static bool fieldref_pair(unsigned flags, const struct cf_event_field *f,
                          const struct cf_event_field *o) {
    bool cased = flags & CF_PAT_CASED;
    size_t n = f->value_len, k = o->value_len;
    /* null is no value: it equals nothing, not even another null */
    if (f->type == CF_VALUE_NULL || o->type == CF_VALUE_NULL) return false;
    if (flags & CF_PAT_REF_START)
        return k <= n && same_bytes(f->value, o->value, k, cased);
    if (flags & CF_PAT_REF_END)
        return k <= n && same_bytes(f->value + n - k, o->value, k, cased);
    if (flags & CF_PAT_REF_CONTAINS) {
        if (cased) return contains(f->value, n, o->value, k);
        for (size_t i = 0; i + k <= n; i++)
            if (same_bytes(f->value + i, o->value, k, false)) return true;
        return k == 0;
    }
    return k == n && same_bytes(f->value, o->value, k, cased);
}

static bool fieldref_match(struct cf_matcher *m, const struct cf_event *ev,
                           const struct direct_alt *d,
                           const struct cf_event_field *f) {
    for (size_t k = 0; k < d->n_refs; k++)
        for (uint32_t i = leaf_first(m, ev, &d->refs[k]); i != LEAF_END;
             i = leaf_next(m, ev, &d->refs[k], i))
            if (fieldref_pair(d->pat->flags, f, &ev->fields[i])) return true;
    return false;
}

static bool leaf_match(struct cf_matcher *m, const struct cf_event *ev,
                       const struct direct_alt *d,
                       const struct cf_event_field *f) {
    const struct cf_sigma_pattern *p = d->pat;
    double x;
    switch (p->kind) {
    case CF_PATTERN_GLOB: return glob_match(p, f->value, f->value_len);
    case CF_PATTERN_REGEX: {
        if (!d->re) return false;
        int rc = pcre2_match(d->re, (PCRE2_SPTR)f->value, f->value_len, 0, 0,
                             m->md, NULL);
        if (rc >= 0) return true;
        if (rc != PCRE2_ERROR_NOMATCH) {
            /* e.g. the match limit on catastrophic backtracking: not a
             * "no", an unknown */
            PCRE2_UCHAR msg[96];
            if (pcre2_get_error_message(rc, msg, sizeof msg) < 0) msg[0] = 0;
            scan_failed(m, "PCRE2 match of /%s/ on field %s failed: %s (%d)",
                        (const char *)p->text, f->name, (const char *)msg, rc);
        }
        return false;
    }
    case CF_PATTERN_NUMBER:
        return parse_number(f, &x) && compare(x, p->op, p->number);
    case CF_PATTERN_CIDR: return cidr_match(p, f);
    case CF_PATTERN_FIELDREF: return fieldref_match(m, ev, d, f);
    case CF_PATTERN_TIMEPART: return timepart_match(p, f);
    case CF_PATTERN_EXISTS:
    case CF_PATTERN_NULL: break;
    }
    return false;
}

static bool direct_match(struct cf_matcher *m, const struct cf_event *ev,
                         const struct ccond *cc, const struct direct_alt *d) {
    enum cf_pattern_kind kind = d->pat->kind;
    bool present = false;
    if (kind == CF_PATTERN_EXISTS)
        return field_present(m, ev, cc) == d->pat->exists;
    if (!cc->fc->field) {
        for (uint32_t i = 0; i < ev->n_fields; i++) {
            const struct cf_event_field *f = &ev->fields[i];
            if (kind == CF_PATTERN_NULL ? f->type == CF_VALUE_NULL
                                        : leaf_match(m, ev, d, f))
                return true;
        }
        return kind == CF_PATTERN_NULL && ev->n_fields == 0;
    }
    for (size_t k = 0; k < cc->n_names; k++)
        for (uint32_t i = leaf_first(m, ev, &cc->names[k]); i != LEAF_END;
             i = leaf_next(m, ev, &cc->names[k], i)) {
            const struct cf_event_field *f = &ev->fields[i];
            present = true;
            if (kind == CF_PATTERN_NULL ? f->type == CF_VALUE_NULL
                                        : leaf_match(m, ev, d, f))
                return true;
        }
    /* null also holds for a field that is absent. */
    return kind == CF_PATTERN_NULL && !present;
}

static bool value_match(struct cf_matcher *m, const struct cf_event *ev,
                        const struct ccond *cc, const struct cvalue *cv) {
    if (cv->item != NO_ITEM && bit_test(m->marks, cv->item)) return true;
    for (size_t d = 0; d < cv->n_direct; d++)
        if (direct_match(m, ev, cc, &cv->direct[d])) return true;
    return false;
}

static bool cond_match(struct cf_matcher *m, const struct cf_event *ev,
                       const struct ccond *cc) {
    const struct cf_sigma_field_cond *fc = cc->fc;
    if (cc->ranged && !fc->all) {
        bool any = cc->item_lo <= cc->item_hi &&
                   bits_any(m->marks, cc->item_lo, cc->item_hi);
        /* a marked item means a hit in the field: it is present */
        return fc->negate ? !any && field_present(m, ev, cc) : any;
    }
    if (fc->negate) {
        if (!field_present(m, ev, cc)) return false;
        for (size_t v = 0; v < fc->n_values; v++)
            if (value_match(m, ev, cc, &cc->values[v])) return false;
        return true;
    }
    if (fc->all) {
        /* Marks first: a direct check may search the whole event (the
         * keywords fast_keyword left out of the scan). */
        for (size_t v = 0; v < fc->n_values; v++)
            if (!cc->values[v].n_direct &&
                !value_match(m, ev, cc, &cc->values[v]))
                return false;
        for (size_t v = 0; v < fc->n_values; v++)
            if (cc->values[v].n_direct &&
                !value_match(m, ev, cc, &cc->values[v]))
                return false;
        return fc->n_values > 0;
    }
    for (size_t v = 0; v < fc->n_values; v++)
        if (value_match(m, ev, cc, &cc->values[v])) return true;
    return false;
}

/* cond_match, with its commonest case inline: a ranged condition
 * (one test over the marks), which is most of those evaluated. */
static inline bool cond_holds(struct cf_matcher *m, const struct cf_event *ev,
                              const struct ccond *cc) {
    if (cc->ranged && !cc->fc->all && !cc->fc->negate)
        return cc->item_lo <= cc->item_hi &&
               bits_any(m->marks, cc->item_lo, cc->item_hi);
    return cond_match(m, ev, cc);
}

static inline bool search_match(struct cf_matcher *m, const struct cf_event *ev,
                                const struct crule *cr, uint32_t search) {
    if (search >= cr->rule->n_searches) return false;
    const struct csearch *cs = &cr->searches[search];
    for (size_t c = 0; c < cs->n_conjs; c++) {
        const struct cconj *cj = &cs->conjs[c];
        size_t k = 0;
        while (k < cj->n_conds && cond_holds(m, ev, &cj->conds[k])) k++;
        if (k == cj->n_conds) return true;
    }
    return false;
}

static bool tree_match(struct cf_matcher *m, const struct cf_event *ev,
                       const struct crule *cr, const struct cf_sigma_cond *c);

/* An operand of AND, OR or NOT: a search (most are) without the call. */
static inline bool kid_match(struct cf_matcher *m, const struct cf_event *ev,
                             const struct crule *cr,
                             const struct cf_sigma_cond *k) {
    return k->op == CF_COND_SEARCH ? search_match(m, ev, cr, k->search)
                                   : tree_match(m, ev, cr, k);
}

static bool tree_match(struct cf_matcher *m, const struct cf_event *ev,
                       const struct crule *cr, const struct cf_sigma_cond *c) {
    switch (c->op) {
    case CF_COND_TRUE: return true;
    case CF_COND_FALSE: return false;
    case CF_COND_SEARCH: return search_match(m, ev, cr, c->search);
    case CF_COND_NOT:
        return c->n_kids >= 1 && !kid_match(m, ev, cr, &c->kids[0]);
    case CF_COND_AND:
        for (uint32_t i = 0; i < c->n_kids; i++)
            if (!kid_match(m, ev, cr, &c->kids[i])) return false;
        return true;
    case CF_COND_OR:
        for (uint32_t i = 0; i < c->n_kids; i++)
            if (kid_match(m, ev, cr, &c->kids[i])) return true;
        return false;
    }
    return false;
}

/* Kleene's three-valued logic, for a rule on the events of a source
 * lacking some of its fields: a condition on such a field is unknown. */
enum tri { TRI_FALSE, TRI_TRUE, TRI_UNKNOWN };

static enum tri tri_search(struct cf_matcher *m, const struct cf_event *ev,
                           const struct csearch *cs) {
    enum tri any = TRI_FALSE;
    for (size_t c = 0; c < cs->n_conjs; c++) {
        const struct cconj *cj = &cs->conjs[c];
        enum tri all = TRI_TRUE;
        for (size_t k = 0; k < cj->n_conds && all != TRI_FALSE; k++) {
            const struct ccond *cc = &cj->conds[k];
            if (cc->lacking)
                all = TRI_UNKNOWN;
            else if (!cond_match(m, ev, cc))
                all = TRI_FALSE;
        }
        if (all == TRI_TRUE) return TRI_TRUE;
        if (all == TRI_UNKNOWN) any = TRI_UNKNOWN;
    }
    return any;
}

static enum tri tri_tree(struct cf_matcher *m, const struct cf_event *ev,
                         const struct crule *cr,
                         const struct cf_sigma_cond *c) {
    enum tri r;
    switch (c->op) {
    case CF_COND_TRUE: return TRI_TRUE;
    case CF_COND_FALSE: return TRI_FALSE;
    case CF_COND_SEARCH:
        return c->search < cr->rule->n_searches
                   ? tri_search(m, ev, &cr->searches[c->search])
                   : TRI_FALSE;
    case CF_COND_NOT:
        if (c->n_kids < 1) return TRI_FALSE;
        r = tri_tree(m, ev, cr, &c->kids[0]);
        return r == TRI_UNKNOWN ? r : r == TRI_TRUE ? TRI_FALSE : TRI_TRUE;
    case CF_COND_AND:
        r = TRI_TRUE;
        for (uint32_t i = 0; i < c->n_kids && r != TRI_FALSE; i++) {
            enum tri k = tri_tree(m, ev, cr, &c->kids[i]);
            if (k != TRI_TRUE) r = k;
        }
        return r;
    case CF_COND_OR:
        r = TRI_FALSE;
        for (uint32_t i = 0; i < c->n_kids && r != TRI_TRUE; i++) {
            enum tri k = tri_tree(m, ev, cr, &c->kids[i]);
            if (k != TRI_FALSE) r = k;
        }
        return r;
    }
    return TRI_FALSE;
}

static inline void add_candidate(struct cf_matcher *m, uint32_t *n,
                                 uint32_t ri) {
    const struct cf_ruleset *rs = m->rs;
    if (bit_test(m->rule_bits, ri) || !bit_test(m->rset->rule_on, ri)) return;
    for (uint32_t k = rs->req_off[ri]; k < rs->req_off[ri + 1]; k++)
        if (!bits_any(m->marks, rs->req[k].lo, rs->req[k].hi)) return;
    bit_set(m->rule_bits, ri);
    m->cand[(*n)++] = ri;
}

/* Candidates are few (tens) and mostly in order already: insertion sort
 * beats qsort's call overhead. */
static void sort_u32(uint32_t *a, uint32_t n) {
    for (uint32_t i = 1; i < n; i++) {
        uint32_t x = a[i], j = i;
        while (j > 0 && a[j - 1] > x) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

int cf_matcher_match(struct cf_matcher *m, const struct cf_event *ev,
                     cf_match_fn fn, void *opaque) {
    const struct cf_ruleset *rs = m->rs;
    uint32_t n_cand = 0;
    int matched = 0;

    m->indexed = false;
    m->event_failed = false;
    if (ev->n_fields > m->hits_cap) {
        struct cf_route_hit *rh =
            cf_realloc(m->route_hits, ev->n_fields * sizeof *m->route_hits);
        if (rh) m->route_hits = rh;
        struct cf_route_hit *dh =
            cf_realloc(m->db_hits, ev->n_fields * sizeof *m->db_hits);
        if (dh) m->db_hits = dh;
        if (rh && dh) m->hits_cap = ev->n_fields;
    }
    uint32_t n_route = 0, n_db_hits = 0;
    if (ev->n_fields <= m->hits_cap) {
        n_db_hits = find_names(m, ev, &n_route);
        m->routes = cf_router_route_hits(rs->router, m->route_cache, ev,
                                         m->route_hits, n_route);
    } else {
        m->routes = NULL; /* no room for the event's hits */
    }
    if (!m->routes) { /* unroutable is not "routed nowhere": counted */
        m->route_failures++;
        return 0;
    }
    const struct route_set *rset = m->rset = route_set_of(m, m->routes);
    if (!rset->any) return 0;

    if (rs->scratch) {
        uint32_t n_scanned = scan_fields(m, ev, rset, n_db_hits);
        /* On failure to grow the buffer the literals go unscanned for
         * this event rather than stopping the engine, and it is counted. */
        if (rset->n_kl > 0) {
            cf_err_t rc = scan_literals(m, ev, rset, n_scanned);
            if (rc != CF_OK)
                scan_failed(m, "keyword literal scan skipped: %s",
                            rc == CF_ERR_NOMEM ? "out of memory"
                                               : "event values over 4 GiB");
        }
    }

    /* Locals: each store to the arrays could alias m's members. */
    const uint32_t *touched = m->touched, *item_req = rs->item_req,
                   *item_rule = rs->item_rule, *alt_off = rs->range_alt_off,
                   *alts = rs->range_alts, *alt_need = rs->alt_need;
    uint64_t *req_hit = m->req_hit, *rule_bits = m->rule_bits;
    uint32_t *req_list = m->req_list, *alt_cnt = m->alt_cnt, *cand = m->cand;
    uint32_t n_touched = m->n_touched, n_req_hit = 0;
    for (uint32_t t = 0; t < n_touched; t++) {
        uint32_t item = touched[t], r = item_req[item];
        if (r == NO_REQ) {
            /* a rule with alternatives waits for their ranges' items */
            uint32_t ri = item_rule[item];
            if (!rs->rule_constrained[ri]) add_candidate(m, &n_cand, ri);
            continue;
        }
        uint64_t bit = (uint64_t)1 << (r & 63);
        if (req_hit[r >> 6] & bit) continue;
        req_hit[r >> 6] |= bit;
        req_list[n_req_hit++] = r;
        for (uint32_t k = alt_off[r]; k < alt_off[r + 1]; k++) {
            uint32_t a = alts[k], ri;
            if (++alt_cnt[a] != alt_need[a]) continue;
            ri = rs->alt_rule[a];
            if (!bit_test(rule_bits, ri) && bit_test(rset->rule_on, ri)) {
                bit_set(rule_bits, ri);
                cand[n_cand++] = ri;
            }
        }
    }
    m->n_req_hit = n_req_hit;
    for (size_t a = 0; a < rs->n_always; a++)
        add_candidate(m, &n_cand, rs->always[a]);
    sort_u32(m->cand, n_cand);

    for (uint32_t c = 0; c < n_cand; c++) {
        const struct crule *cr = &rs->rules[m->cand[c]];
        bool lacks = cr->exclude_route != NO_ROUTE &&
                     bit_test(m->routes, cr->exclude_route);
        if (lacks ? tri_tree(m, ev, cr, cr->rule->condition) == TRI_TRUE
                  : tree_match(m, ev, cr, cr->rule->condition)) {
            matched++;
            if (fn) fn(cr->rule, opaque);
        }
    }

    /* Every bit set in these is listed: its whole word is cleared. */
    for (uint32_t c = 0; c < n_cand; c++) m->rule_bits[m->cand[c] >> 6] = 0;
    for (uint32_t t = 0; t < m->n_touched; t++)
        m->marks[m->touched[t] >> 6] = 0;
    m->n_touched = 0;
    for (uint32_t k = 0; k < m->n_req_hit; k++) {
        uint32_t r = m->req_list[k];
        m->req_hit[r >> 6] = 0;
        for (uint32_t j = rs->range_alt_off[r]; j < rs->range_alt_off[r + 1];
             j++)
            m->alt_cnt[rs->range_alts[j]] = 0;
    }
    m->n_req_hit = 0;
    if (m->event_failed) m->scan_errors++;
    return matched;
}
