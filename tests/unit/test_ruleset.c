/*
 * test_ruleset.c - unit tests of the rule compiler and matcher
 * (rules/ruleset.c): every pattern kind, keywords, rules evaluated with no
 * Hyperscan hit, regexes Hyperscan refuses, rejected rules, the disk cache
 * and multi-valued fields.
 *
 * Rules and events are built by hand so each test states exactly the
 * Sigma semantics it checks, independent of the YAML parser and the JSON
 * decoder.  Everything a test allocates goes through tmalloc() and is freed
 * at the end of the test (the rulebook is not handed to
 * cf_rulebook_destroy because its layout is the parser's business).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "alloc.h"
#include "ruleset.h"
#include "ruleset_cache.h"
#include "shared_data.h"
#include "sigma.h"

/* ---- allocation tracking ---- */

static void **allocs;
static size_t n_allocs, cap_allocs;

static void *tmalloc(size_t size) {
    void *p = calloc(1, size ? size : 1);
    assert_non_null(p);
    if (n_allocs == cap_allocs) {
        cap_allocs = cap_allocs ? cap_allocs * 2 : 256;
        allocs = realloc(allocs, cap_allocs * sizeof *allocs);
        assert_non_null(allocs);
    }
    allocs[n_allocs++] = p;
    return p;
}

static char *tstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = tmalloc(n);
    memcpy(p, s, n);
    return p;
}

static void free_all(void) {
    for (size_t i = 0; i < n_allocs; i++) free(allocs[i]);
    free(allocs);
    allocs = NULL;
    n_allocs = cap_allocs = 0;
}

/* ---- patterns ---- */

/* A glob from text where every '*' and '?' is a wildcard. */
static struct cf_sigma_pattern glob_flags(const char *s, unsigned flags) {
    struct cf_sigma_pattern p;
    memset(&p, 0, sizeof p);
    p.kind = CF_PATTERN_GLOB;
    p.flags = flags;
    p.len = strlen(s);
    p.text = tmalloc(p.len + 1);
    p.wild = tmalloc(p.len + 1);
    for (size_t i = 0; i < p.len; i++) {
        p.text[i] = (unsigned char)s[i];
        if (s[i] == '*' || s[i] == '?') p.wild[i] = (unsigned char)s[i];
    }
    return p;
}

static struct cf_sigma_pattern glob(const char *s) {
    return glob_flags(s, 0);
}

static struct cf_sigma_pattern regex(const char *s, unsigned flags) {
    struct cf_sigma_pattern p;
    memset(&p, 0, sizeof p);
    p.kind = CF_PATTERN_REGEX;
    p.flags = flags;
    p.text = (unsigned char *)tstrdup(s);
    p.len = strlen(s);
    return p;
}

static struct cf_sigma_pattern number(enum cf_compare op, double x) {
    struct cf_sigma_pattern p;
    memset(&p, 0, sizeof p);
    p.kind = CF_PATTERN_NUMBER;
    p.op = op;
    p.number = x;
    return p;
}

static struct cf_sigma_pattern cidr4(uint8_t a, uint8_t b, uint8_t c, uint8_t d,
                                     int prefix) {
    struct cf_sigma_pattern p;
    memset(&p, 0, sizeof p);
    p.kind = CF_PATTERN_CIDR;
    p.family = 4;
    p.addr[0] = a;
    p.addr[1] = b;
    p.addr[2] = c;
    p.addr[3] = d;
    p.prefix = prefix;
    return p;
}

static struct cf_sigma_pattern exists(bool e) {
    struct cf_sigma_pattern p;
    memset(&p, 0, sizeof p);
    p.kind = CF_PATTERN_EXISTS;
    p.exists = e;
    return p;
}

static struct cf_sigma_pattern null_pattern(void) {
    struct cf_sigma_pattern p;
    memset(&p, 0, sizeof p);
    p.kind = CF_PATTERN_NULL;
    return p;
}

static struct cf_sigma_pattern fieldref(const char *other, unsigned flags) {
    struct cf_sigma_pattern p;
    memset(&p, 0, sizeof p);
    p.kind = CF_PATTERN_FIELDREF;
    p.flags = flags;
    p.text = (unsigned char *)tstrdup(other);
    p.len = strlen(other);
    return p;
}

static struct cf_sigma_pattern timepart(enum cf_time_part part,
                                        enum cf_compare op, double x) {
    struct cf_sigma_pattern p;
    memset(&p, 0, sizeof p);
    p.kind = CF_PATTERN_TIMEPART;
    p.time_part = part;
    p.op = op;
    p.number = x;
    return p;
}

/* ---- conditions and rules ---- */

/* A field condition whose values each have one alternative. */
static struct cf_sigma_field_cond fcond(const char *field, bool all,
                                        bool negate, size_t n,
                                        const struct cf_sigma_pattern *pats) {
    struct cf_sigma_field_cond fc;
    memset(&fc, 0, sizeof fc);
    fc.field = field ? tstrdup(field) : NULL;
    fc.all = all;
    fc.negate = negate;
    fc.n_values = n;
    fc.values = tmalloc(n * sizeof *fc.values);
    for (size_t i = 0; i < n; i++) {
        fc.values[i].n_alts = 1;
        fc.values[i].alts = tmalloc(sizeof *fc.values[i].alts);
        fc.values[i].alts[0] = pats[i];
    }
    return fc;
}

/* A search of one conjunction. */
static struct cf_sigma_search search(const char *name, size_t n,
                                     const struct cf_sigma_field_cond *conds) {
    struct cf_sigma_search s;
    memset(&s, 0, sizeof s);
    s.name = tstrdup(name);
    s.n_alts = 1;
    s.alts = tmalloc(sizeof *s.alts);
    s.alts[0].n_conds = n;
    s.alts[0].conds = tmalloc(n * sizeof *s.alts[0].conds);
    memcpy(s.alts[0].conds, conds, n * sizeof *conds);
    return s;
}

static struct cf_sigma_cond *c_search(uint32_t i) {
    struct cf_sigma_cond *c = tmalloc(sizeof *c);
    c->op = CF_COND_SEARCH;
    c->search = i;
    return c;
}

static struct cf_sigma_cond *c_op(enum cf_cond_op op, struct cf_sigma_cond *a,
                                  struct cf_sigma_cond *b) {
    struct cf_sigma_cond *c = tmalloc(sizeof *c);
    c->op = op;
    c->n_kids = b ? 2 : 1;
    c->kids = tmalloc(c->n_kids * sizeof *c->kids);
    c->kids[0] = *a;
    if (b) c->kids[1] = *b;
    return c;
}

struct test_book {
    struct cf_rulebook rb;
    struct cf_sigma_rule *rules[32];
};

static struct cf_sigma_rule *add_rule(struct test_book *tb, const char *title,
                                      size_t n_searches,
                                      const struct cf_sigma_search *searches,
                                      struct cf_sigma_cond *cond) {
    struct cf_sigma_rule *r = tmalloc(sizeof *r);
    char digest[65];
    r->title = tstrdup(title);
    r->id = tstrdup(title);
    r->path = tstrdup("test.yml");
    r->n_searches = n_searches;
    r->searches = tmalloc(n_searches * sizeof *r->searches);
    memcpy(r->searches, searches, n_searches * sizeof *searches);
    r->condition = cond ? cond : c_search(0);
    /* Any stable string works as a digest for these tests. */
    snprintf(digest, sizeof digest, "%064zu",
             strlen(title) * 7919 + tb->rb.n_rules);
    memcpy(r->digest, digest, 65);
    r->index = (uint32_t)tb->rb.n_rules;
    tb->rules[tb->rb.n_rules] = r;
    tb->rb.rules = tb->rules;
    tb->rb.n_rules++;
    return r;
}

/* One-condition rule: `field: patterns`. */
static struct cf_sigma_rule *simple_rule(struct test_book *tb,
                                         const char *title, const char *field,
                                         bool all, bool negate, size_t n,
                                         const struct cf_sigma_pattern *pats) {
    struct cf_sigma_field_cond fc = fcond(field, all, negate, n, pats);
    struct cf_sigma_search s = search("selection", 1, &fc);
    return add_rule(tb, title, 1, &s, NULL);
}

static void free_rejections(struct cf_rulebook *rb) {
    for (size_t i = 0; i < rb->n_rejected; i++) {
        free(rb->rejected[i].path);
        free(rb->rejected[i].id);
        free(rb->rejected[i].reason);
    }
    free(rb->rejected);
    rb->rejected = NULL;
    rb->n_rejected = 0;
}

/* ---- events ---- */

struct test_event {
    struct cf_event ev;
    struct cf_event_field fields[32];
};

/* Pairs name, value; a NULL value makes a JSON null leaf. */
static void make_event(struct test_event *te, size_t n, const char *const *kv) {
    memset(te, 0, sizeof *te);
    for (size_t i = 0; i < n; i++) {
        struct cf_event_field *f = &te->fields[i];
        f->name = kv[2 * i];
        f->name_len = (uint32_t)strlen(f->name);
        f->name_hash = cf_hash_name(f->name, f->name_len);
        f->value = kv[2 * i + 1] ? kv[2 * i + 1] : "";
        f->value_len = (uint32_t)strlen(f->value);
        f->type = kv[2 * i + 1] ? CF_VALUE_STRING : CF_VALUE_NULL;
    }
    te->ev.fields = te->fields;
    te->ev.n_fields = (uint32_t)n;
    te->ev.time_ms = CF_TIME_UNKNOWN;
}

struct hits {
    const char *titles[32];
    int n;
};

static void collect(const struct cf_sigma_rule *rule, void *opaque) {
    struct hits *h = opaque;
    if (h->n < 32) h->titles[h->n++] = rule->title;
}

static bool hit(const struct hits *h, const char *title) {
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->titles[i], title) == 0) return true;
    return false;
}

/* Matches one event given as name/value pairs. */
static struct hits match_kv(struct cf_matcher *m, size_t n,
                            const char *const *kv) {
    struct test_event te;
    struct hits h;
    memset(&h, 0, sizeof h);
    make_event(&te, n, kv);
    int rc = cf_matcher_match(m, &te.ev, collect, &h);
    assert_int_equal(rc, h.n);
    return h;
}

#define MATCH(m, ...)                                                          \
    match_kv((m),                                                              \
             sizeof((const char *const[]){__VA_ARGS__}) /                      \
                 (2 * sizeof(const char *)),                                   \
             (const char *const[]){__VA_ARGS__})

static struct cf_config *no_cache_config(void) {
    struct cf_config *cfg = cf_config_default();
    assert_non_null(cfg);
    free(cfg->cache_dir);
    cfg->cache_dir = strdup("");
    return cfg;
}

struct compiled {
    struct cf_config *cfg;
    struct cf_ruleset *rs;
    struct cf_matcher *m;
};

static struct compiled compile(struct test_book *tb) {
    struct compiled c;
    char err[512] = "";
    c.cfg = no_cache_config();
    c.rs = cf_ruleset_compile(&tb->rb, c.cfg, err, sizeof err);
    if (!c.rs) fail_msg("compile failed: %s", err);
    c.m = cf_matcher_new(c.rs);
    assert_non_null(c.m);
    return c;
}

static void release(struct compiled *c, struct test_book *tb) {
    cf_matcher_destroy(c->m);
    cf_ruleset_destroy(c->rs);
    cf_config_destroy(c->cfg);
    free_rejections(&tb->rb);
    free_all();
}

/* ---- tests ---- */

static void test_globs(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern contains = glob("*mimikatz*");
    struct cf_sigma_pattern ends = glob("*\\cmd.exe");
    struct cf_sigma_pattern starts = glob("C:\\Windows\\*");
    struct cf_sigma_pattern exact = glob("whoami /all");
    struct cf_sigma_pattern one = glob("a?c");
    struct cf_sigma_pattern cased = glob_flags("*Invoke-Mimi*", CF_PAT_CASED);
    struct cf_sigma_pattern empty = glob("");
    struct cf_sigma_pattern star = glob("*");
    struct cf_sigma_pattern mid = glob("net*user*/add");
    struct cf_sigma_pattern special = glob("*(x86)[1]+.$^|{}*");
    simple_rule(&tb, "contains", "CommandLine", false, false, 1, &contains);
    simple_rule(&tb, "ends", "Image", false, false, 1, &ends);
    simple_rule(&tb, "starts", "Image", false, false, 1, &starts);
    simple_rule(&tb, "exact", "CommandLine", false, false, 1, &exact);
    simple_rule(&tb, "one", "Code", false, false, 1, &one);
    simple_rule(&tb, "cased", "CommandLine", false, false, 1, &cased);
    simple_rule(&tb, "empty", "Note", false, false, 1, &empty);
    simple_rule(&tb, "star", "Star", false, false, 1, &star);
    simple_rule(&tb, "mid", "CommandLine", false, false, 1, &mid);
    simple_rule(&tb, "special", "Path", false, false, 1, &special);
    struct compiled c = compile(&tb);
    struct cf_ruleset_stats st;
    cf_ruleset_get_stats(c.rs, &st);
    assert_int_equal(st.rules, 10);
    assert_int_equal(st.patterns, 10);
    assert_int_equal(st.direct_patterns, 0);
    assert_false(st.cache_hit);

    struct hits h = MATCH(c.m, "CommandLine", "run MimiKatz.exe now");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "contains"));
    h = MATCH(c.m, "CommandLine", "Invoke-Mimi");
    assert_true(hit(&h, "cased"));
    h = MATCH(c.m, "CommandLine", "invoke-mimi");
    assert_false(hit(&h, "cased"));
    h = MATCH(c.m, "CommandLine", "WHOAMI /ALL");
    assert_true(hit(&h, "exact"));
    h = MATCH(c.m, "CommandLine", "whoami /all2");
    assert_false(hit(&h, "exact"));
    h = MATCH(c.m, "CommandLine", "xwhoami /all");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "Image", "C:\\Windows\\System32\\CMD.EXE");
    assert_int_equal(h.n, 2);
    assert_string_equal(h.titles[0], "ends"); /* rule order */
    assert_string_equal(h.titles[1], "starts");
    h = MATCH(c.m, "Image", "D:\\Windows\\cmd.exe2");
    assert_int_equal(h.n, 0);
    /* `?` is exactly one byte: a two-byte UTF-8 char does not fit. */
    h = MATCH(c.m, "Code", "abc");
    assert_true(hit(&h, "one"));
    h = MATCH(c.m, "Code", "ac");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "Code",
              "a\xc3\xa9"
              "c");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "Code", "abbc");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "Note", "");
    assert_true(hit(&h, "empty"));
    h = MATCH(c.m, "Note", "x");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "Star", "");
    assert_true(hit(&h, "star"));
    h = MATCH(c.m, "Star", "anything");
    assert_true(hit(&h, "star"));
    h = MATCH(c.m, "Other", "anything");
    assert_int_equal(h.n, 0); /* missing field is false */
    h = MATCH(c.m, "CommandLine", "NET user bob pw /ADD");
    assert_true(hit(&h, "mid"));
    h = MATCH(c.m, "CommandLine", "net user bob pw /add x");
    assert_false(hit(&h, "mid"));
    h = MATCH(c.m, "Path", "C:\\Program Files (X86)[1]+.$^|{}\\a");
    assert_true(hit(&h, "special"));
    h = MATCH(c.m, "Path", "C:\\Program Files (x86)[1]+.$^|{\\a");
    assert_int_equal(h.n, 0);
    release(&c, &tb);
}

/* Plain literals are compiled with Hyperscan's literal API, which has no
 * anchors: startswith, endswith and equals are checked on each hit's
 * offsets, so a literal that also occurs elsewhere in the value must
 * neither match at the wrong place nor hide the hit at the right one. */
static void test_literal_databases(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    static const struct {
        const char *title, *field, *text;
        bool regex;
        unsigned flags;
    } rules[] = {
        {"ends", "Image", "*\\cmd.exe", false, 0},
        {"starts", "Image", "C:\\Windows\\*", false, 0},
        {"exact", "Image", "abc", false, 0},
        {"ends_aa", "Code", "*aa", false, 0},
        {"starts_aa", "Code", "aa*", false, 0},
        {"exact_aa", "Code", "aa", false, 0},
        {"cased", "Image", "*Abc*", false, CF_PAT_CASED},
        /* not literals: a database beside the literals' on the field */
        {"re", "Image", "^x+y$", true, 0},
        {"wild", "Image", "net*user", false, 0},
    };
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
        struct cf_sigma_pattern p =
            rules[i].regex ? regex(rules[i].text, rules[i].flags)
                           : glob_flags(rules[i].text, rules[i].flags);
        simple_rule(&tb, rules[i].title, rules[i].field, false, false, 1, &p);
    }
    struct compiled c = compile(&tb);
    struct cf_ruleset_stats st;
    cf_ruleset_get_stats(c.rs, &st);
    assert_int_equal(st.patterns, 9);
    assert_int_equal(st.literal_patterns, 7);
    /* Image: the literals, the regex and glob; Code: its literals */
    assert_int_equal(st.databases, 3);

    /* the last occurrence ends the value, the first does not */
    static const struct {
        const char *field, *value;
        const char *hits[3]; /* the rules that match, all of them */
    } events[] = {
        /* the last occurrence ends the value, the first does not */
        {"Image", "C:\\cmd.exe\\x\\CMD.EXE", {"ends"}},
        {"Image", "C:\\cmd.exe\\x", {NULL}},
        /* the first occurrence starts the value, a later one does not */
        {"Image", "c:\\windows\\x C:\\Windows\\", {"starts"}},
        {"Image", "D:\\C:\\Windows\\x", {NULL}},
        {"Image", "ABC", {"exact"}},
        {"Image", "abcabc", {NULL}},
        {"Image", "xabc", {NULL}},
        /* overlapping occurrences: "aa" ends at 2 and at 3 in "aaa" */
        {"Code", "aaa", {"ends_aa", "starts_aa"}},
        {"Code", "aa", {"ends_aa", "starts_aa", "exact_aa"}},
        {"Code", "baab", {NULL}},
        {"Image", "xxabc-Abc", {"cased"}},
        {"Image", "xxabc-ABC", {NULL}},
        /* the field's other database is scanned too */
        {"Image", "xxxy", {"re"}},
        {"Image", "NET localgroup USER", {"wild"}},
    };
    for (size_t i = 0; i < sizeof events / sizeof *events; i++) {
        struct hits h = MATCH(c.m, events[i].field, events[i].value);
        size_t n = 0;
        while (n < 3 && events[i].hits[n]) {
            assert_true(hit(&h, events[i].hits[n]));
            n++;
        }
        assert_int_equal(h.n, n);
    }
    release(&c, &tb);
}

static void test_regex_and_rejection(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern plain = regex("[a-z]+\\.ps1$", 0);
    struct cf_sigma_pattern ci = regex("^invoke-[a-z]+", CF_PAT_RE_I);
    struct cf_sigma_pattern ml = regex("^second$", CF_PAT_RE_M);
    struct cf_sigma_pattern dots = regex("a.b", CF_PAT_RE_S);
    /* Backreferences: Hyperscan refuses, PCRE2 checks it. */
    struct cf_sigma_pattern backref = regex("(ab)\\1", 0);
    struct cf_sigma_pattern broken = regex("(unclosed", 0);
    struct cf_sigma_pattern fine = glob("*ok*");
    simple_rule(&tb, "plain", "ScriptName", false, false, 1, &plain);
    simple_rule(&tb, "ci", "CommandLine", false, false, 1, &ci);
    simple_rule(&tb, "ml", "Text", false, false, 1, &ml);
    simple_rule(&tb, "dots", "Text", false, false, 1, &dots);
    simple_rule(&tb, "backref", "Text", false, false, 1, &backref);
    /* A rule with a bad regex and a good glob: rejected as a whole. */
    struct cf_sigma_field_cond fc[2] = {fcond("Text", false, false, 1, &broken),
                                        fcond("Other", false, false, 1, &fine)};
    struct cf_sigma_search s = search("selection", 2, fc);
    add_rule(&tb, "broken", 1, &s, NULL);
    simple_rule(&tb, "after", "Other", false, false, 1, &fine);

    struct compiled c = compile(&tb);
    struct cf_ruleset_stats st;
    cf_ruleset_get_stats(c.rs, &st);
    assert_int_equal(st.rules, 6);
    assert_int_equal(st.direct_patterns, 1); /* the backreference */
    assert_int_equal(tb.rb.n_rejected, 1);
    assert_string_equal(tb.rb.rejected[0].id, "broken");
    assert_non_null(strstr(tb.rb.rejected[0].reason, "(unclosed"));

    struct hits h = MATCH(c.m, "ScriptName", "C:\\x\\evil.ps1");
    assert_true(hit(&h, "plain"));
    h = MATCH(c.m, "ScriptName", "C:\\x\\EVIL.PS1");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "CommandLine", "INVOKE-Thing");
    assert_true(hit(&h, "ci"));
    h = MATCH(c.m, "CommandLine", "x invoke-thing");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "Text", "first\nsecond\nthird");
    assert_true(hit(&h, "ml"));
    assert_false(hit(&h, "dots"));
    h = MATCH(c.m, "Text", "a\nb");
    assert_true(hit(&h, "dots"));
    h = MATCH(c.m, "Text", "xxababyy");
    assert_true(hit(&h, "backref"));
    assert_int_equal(h.n, 1);
    h = MATCH(c.m, "Text", "xxabaxyy");
    assert_int_equal(h.n, 0);
    /* The rejected rule never matches; its neighbour still does. */
    h = MATCH(c.m, "Text", "(unclosed", "Other", "ok");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "after"));
    release(&c, &tb);
}

static void test_keywords(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern kw[2] = {glob("*sekurlsa*"), glob("*lsadump::*")};
    simple_rule(&tb, "keywords", NULL, false, false, 2, kw);
    /* Not plain `*literal*`: scanned leaf by leaf. */
    struct cf_sigma_pattern shaped[2] = {glob("evil*"), glob("*a?b*")};
    simple_rule(&tb, "shaped", NULL, false, false, 2, shaped);
    struct cf_sigma_pattern cased = glob_flags("*CaSe*", CF_PAT_CASED);
    simple_rule(&tb, "cased_kw", NULL, false, false, 1, &cased);
    struct compiled c = compile(&tb);
    struct hits h =
        MATCH(c.m, "Image", "x.exe", "CommandLine", "run SEKURLSA::x");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "keywords"));
    h = MATCH(c.m, "Image", "x.exe", "Payload", "lsadump::sam");
    assert_true(hit(&h, "keywords"));
    h = MATCH(c.m, "Image", "sekurls.exe");
    assert_int_equal(h.n, 0);
    /* Values are matched one by one: no hit across two leaves. */
    h = MATCH(c.m, "A", "xxseku", "B", "rlsayy", "C", "lsadu", "D", "mp::");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "A", "sekurlsa", "B", "");
    assert_int_equal(h.n, 1);
    h = MATCH(c.m, "A", "", "B", "zz", "C", "sekurlsa");
    assert_int_equal(h.n, 1);
    h = MATCH(c.m, "A", "not evil", "B", "EVIL.exe");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "shaped"));
    h = MATCH(c.m, "A", "not evil", "B", "xa", "C", "b");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "A", "xaXby");
    assert_true(hit(&h, "shaped"));
    h = MATCH(c.m, "A", "a case");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "A", "a CaSe");
    assert_true(hit(&h, "cased_kw"));
    release(&c, &tb);
}

/* `keywords|all`: only the longest literal is scanned for, the others
 * checked directly where it is found (fast_keyword); the answers must be
 * those of checking every value, under OR and NOT too. */
static void test_keywords_all(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern all[4] = {glob("*POST*"), glob("*200*"),
                                      glob("*/ecp/DDI/SetObject*"),
                                      glob("*$*")};
    simple_rule(&tb, "kw_all", NULL, true, false, 4, all);
    /* sel or kw: a candidate through `sel` with the fast literal absent */
    struct cf_sigma_pattern image = glob("*\\x.exe");
    struct cf_sigma_pattern pair[2] = {glob("*POST*"), glob("*/ecp/ddi/*")};
    struct cf_sigma_field_cond sel_fc = fcond("Image", false, false, 1, &image);
    struct cf_sigma_field_cond kw_fc = fcond(NULL, true, false, 2, pair);
    struct cf_sigma_search or_s[2] = {search("sel", 1, &sel_fc),
                                      search("kw", 1, &kw_fc)};
    add_rule(&tb, "sel_or_kw", 2, or_s,
             c_op(CF_COND_OR, c_search(0), c_search(1)));
    /* sel and not kw */
    struct cf_sigma_pattern owa[2] = {glob("*200*"), glob("*/owa/auth*")};
    struct cf_sigma_field_cond sel2_fc =
        fcond("Image", false, false, 1, &image);
    struct cf_sigma_field_cond kw2_fc = fcond(NULL, true, false, 2, owa);
    struct cf_sigma_search not_s[2] = {search("sel", 1, &sel2_fc),
                                       search("kw", 1, &kw2_fc)};
    add_rule(
        &tb, "sel_not_kw", 2, not_s,
        c_op(CF_COND_AND, c_search(0), c_op(CF_COND_NOT, c_search(1), NULL)));
    struct compiled c = compile(&tb);

    struct hits h = MATCH(c.m, "Req", "POST /ecp/DDI/SetObject", "Status",
                          "200", "User", "HOST$");
    assert_int_equal(h.n, 2);
    assert_true(hit(&h, "kw_all"));
    assert_true(hit(&h, "sel_or_kw"));
    /* each value may be in another leaf, in any case */
    h = MATCH(c.m, "A", "post", "B", "x/ECP/ddi/setobject", "C", "1200", "D",
              "a$b");
    assert_true(hit(&h, "kw_all"));
    assert_true(hit(&h, "sel_or_kw"));
    h = MATCH(c.m, "Req", "POST /ecp/DDI/SetObject", "Status", "200");
    assert_int_equal(h.n, 1); /* no '$' anywhere; sel_or_kw's pair is in */
    assert_true(hit(&h, "sel_or_kw"));
    /* the short ones everywhere, the long one nowhere */
    h = MATCH(c.m, "A", "POST 200 $", "B", "/ecp/DDI/SetObjec");
    assert_false(hit(&h, "kw_all"));
    assert_true(hit(&h, "sel_or_kw"));
    /* a checked value does not straddle two leaves */
    h = MATCH(c.m, "A", "PO", "B", "ST /ecp/DDI/SetObject 200 $");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "A", "PO", "B", "ST /ecp/DDI/SetObject 200", "C", "$");
    assert_int_equal(h.n, 0);

    h = MATCH(c.m, "Image", "C:\\x.exe", "Status", "200");
    assert_int_equal(h.n, 2);
    assert_true(hit(&h, "sel_or_kw"));
    assert_true(hit(&h, "sel_not_kw"));
    h = MATCH(c.m, "Image", "C:\\x.exe", "Status", "200", "Url", "/OWA/auth/x");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "sel_or_kw"));
    h = MATCH(c.m, "Image", "C:\\x.exe", "Url", "/owa/auth/x");
    assert_true(hit(&h, "sel_not_kw"));
    release(&c, &tb);
}

/* The scan memo (a value scanned before is not scanned again) must give
 * what a scan gives: through evictions (more distinct values than the
 * memo has entries), values too long to keep, values over its byte
 * budget, and entries that cannot be allocated; the keyword literals'
 * hits in a field's values too (kept in the same entries). */
static void test_scan_memo(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern ends = glob("*\\whoami.exe");
    simple_rule(&tb, "whoami", "Image", false, false, 1, &ends);
    struct cf_sigma_pattern has = glob("*-enc*");
    simple_rule(&tb, "encoded", "CommandLine", false, false, 1, &has);
    struct cf_sigma_pattern kw = glob("*mimi*");
    simple_rule(&tb, "keyword", NULL, false, false, 1, &kw);
    struct compiled c = compile(&tb);
    char image[64], cmd[2048];
    for (int i = 0; i < 50000; i++) {
        /* Cycles of distinct values, each seen a few times over. */
        int v = (i * 7919) % 45000, len = 20 + v % 1500;
        bool who = v % 3 == 0, enc = v % 5 == 0, mimi = v % 7 == 0;
        snprintf(image, sizeof image, "C:\\x%d%s\\%s", v, mimi ? "mimi" : "mim",
                 who ? "whoami.exe" : "whoami.ex");
        memset(cmd, 'a' + v % 26, (size_t)len);
        if (enc) memcpy(cmd + len / 2, "-enc", 4);
        cmd[len] = '\0';
        if (i >= 20000 && i < 21000) cf_alloc_fail_after(0);
        struct hits h = MATCH(c.m, "Image", image, "CommandLine", cmd);
        cf_alloc_fail_after(-1);
        if (h.n != (int)who + (int)enc + (int)mimi ||
            hit(&h, "whoami") != who || hit(&h, "encoded") != enc ||
            hit(&h, "keyword") != mimi)
            fail_msg("event %d (value %d): %d rules", i, v, h.n);
    }
    release(&c, &tb);
}

/* A value scanned with its field's databases is scanned for the keyword
 * literals alone, its memo entry answers for them too, and it is left
 * out of the literal scan over the other leaves: the answers must stay
 * those of one scan of every leaf, whether the memo answers (later
 * rounds) or not, on each route set, with case and `keywords|all`, and
 * never for a literal across two leaves, also when the leaf between
 * them was left out. */
static void test_keyword_memo(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern img = glob("*\\x.exe");
    simple_rule(&tb, "image", "Image", false, false, 1, &img);
    struct cf_sigma_pattern kw[2] = {glob("*sekurlsa*"), glob("*lsadump::*")};
    simple_rule(&tb, "keywords", NULL, false, false, 2, kw);
    struct cf_sigma_pattern cased = glob_flags("*CaSe*", CF_PAT_CASED);
    simple_rule(&tb, "cased_kw", NULL, false, false, 1, &cased);
    struct cf_sigma_pattern sec = glob("*secword*");
    struct cf_sigma_rule *r =
        simple_rule(&tb, "security", NULL, false, false, 1, &sec);
    r->product = tstrdup("windows");
    r->service = tstrdup("security");
    struct cf_sigma_pattern all[2] = {glob("*POST*"),
                                      glob("*/ecp/DDI/SetObject*")};
    simple_rule(&tb, "kw_all", NULL, true, false, 2, all);
    struct compiled c = compile(&tb);
    /* an event (name/value pairs, NULL value: JSON null), the rules it
     * raises (none: NULL) */
    static const struct {
        const char *kv[6];
        const char *rules[2];
    } cases[] = {
        {{"Image", "C:\\sekurlsa\\x.exe", "A", "1"}, {"image", "keywords"}},
        {{"Image", "C:\\SEKURLSA\\y.exe"}, {"keywords"}},
        {{"Image", "C:\\case\\y.exe"}, {NULL}},
        {{"Image", "C:\\CaSe\\y.exe"}, {"cased_kw"}},
        /* Image's leaf out of the scan: its neighbours stay apart */
        {{"A", "xxseku", "Image", "C:\\x.exe", "B", "rlsa"}, {"image"}},
        {{"Image", "C:\\lsadu", "B", "mp::x"}, {NULL}},
        {{"Image", "C:\\x.exe", "B", "sekurlsa"}, {"image", "keywords"}},
        {{"A", "lsadu", "Image", "mp::x.exe"}, {NULL}},
        {{"Image", NULL, "B", "sekurlsa"}, {"keywords"}},
        /* the security literal on Security events only */
        {{"Image", "C:\\secword.exe"}, {NULL}},
        {{"Channel", "Security", "Image", "C:\\secword.exe"}, {"security"}},
        /* keywords|all: each value in its own leaf, either kind */
        {{"Image", "/ecp/DDI/SetObject", "Req", "POST"}, {"kw_all"}},
        {{"Req", "/ecp/DDI/SetObject", "Image", "POST"}, {"kw_all"}},
        {{"Image", "/ecp/DDI/SetObject"}, {NULL}},
    };
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            size_t n = 0, want = 0;
            while (n < 3 && cases[i].kv[2 * n]) n++;
            struct hits h = match_kv(c.m, n, cases[i].kv);
            while (want < 2 && cases[i].rules[want]) {
                if (!hit(&h, cases[i].rules[want]))
                    fail_msg("round %d, case %zu: no %s", round, i,
                             cases[i].rules[want]);
                want++;
            }
            if ((size_t)h.n != want)
                fail_msg("round %d, case %zu: %d rules", round, i, h.n);
        }
    /* More values than scan_fields hashes in one batch (MEMO_BATCH):
     * the hits in each batch, answered or scanned. */
    const char *kv[2 * 30];
    char values[30][16];
    for (int round = 0; round < 3; round++)
        for (int at = 0; at < 30; at += 7) {
            for (int i = 0; i < 30; i++) {
                snprintf(values[i], sizeof values[i], "%s%d",
                         i == at        ? "C:\\x.exe"
                         : i == 29 - at ? "sekurlsa"
                                        : "v",
                         i);
                if (i == at) values[i][8] = '\0'; /* the exact image */
                kv[2 * i] = "Image";
                kv[2 * i + 1] = values[i];
            }
            struct hits h = match_kv(c.m, 30, kv);
            if (h.n != 2 || !hit(&h, "image") || !hit(&h, "keywords"))
                fail_msg("round %d, at %d: %d rules", round, at, h.n);
        }
    uint64_t hits, misses;
    cf_matcher_memo_counts(c.m, &hits, &misses);
    /* the first round missed, the later rounds were answered */
    assert_true(misses > 0 && hits >= 2 * misses);
    release(&c, &tb);
}

/* The matcher works out what an event's route set needs once per
 * distinct set and keys the scan memo by it: a value scanned on one set
 * must not answer for another, through more distinct sets than the
 * matcher keeps (its cache starts over), and when a set's entry cannot
 * be allocated.  Nine services, each present when its own field is,
 * give 512 route sets; every rule has the same pattern on Target, so
 * one database serves all and only the memo's key tells the sets
 * apart. */
static void test_route_sets(void **state) {
    (void)state;
    enum { N_SVC = 9 };
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    json_t *svcs = json_object();
    char names[N_SVC][2][16];
    for (int i = 0; i < N_SVC; i++) {
        snprintf(names[i][0], sizeof names[i][0], "svc%d", i);
        snprintf(names[i][1], sizeof names[i][1], "F%d", i);
        json_object_set_new(
            svcs, names[i][0],
            json_pack("{s:[{s:b}]}", "conditions", names[i][1], 1));
        struct cf_sigma_pattern p = glob("*evil*");
        struct cf_sigma_rule *r =
            simple_rule(&tb, names[i][0], "Target", false, false, 1, &p);
        r->service = tstrdup(names[i][0]);
    }
    json_t *root = json_pack("{s:{s:o}}", "logsources", "service", svcs);
    char err[512] = "";
    struct compiled c;
    c.cfg = cf_config_from_json(root, "test", err, sizeof err);
    json_decref(root);
    if (!c.cfg) fail_msg("config: %s", err);
    free(c.cfg->cache_dir);
    c.cfg->cache_dir = strdup("");
    c.rs = cf_ruleset_compile(&tb.rb, c.cfg, err, sizeof err);
    if (!c.rs) fail_msg("compile failed: %s", err);
    c.m = cf_matcher_new(c.rs);
    assert_non_null(c.m);
    for (int pass = 0; pass < 3; pass++)
        for (int set = 0; set < 1 << N_SVC; set++) {
            /* Pass 1 cannot allocate a new set's entry for part of it. */
            if (pass == 1 && set >= 100 && set < 300) cf_alloc_fail_after(0);
            struct test_event te;
            const char *kv[2 * (N_SVC + 1)];
            size_t n = 0;
            kv[2 * n] = "Target";
            kv[2 * n++ + 1] = "an evil value";
            for (int i = 0; i < N_SVC; i++)
                if (set & (1 << i)) {
                    kv[2 * n] = names[i][1];
                    kv[2 * n++ + 1] = "x";
                }
            make_event(&te, n, kv);
            struct hits h;
            memset(&h, 0, sizeof h);
            int rc = cf_matcher_match(c.m, &te.ev, collect, &h);
            cf_alloc_fail_after(-1);
            assert_int_equal(rc, h.n);
            assert_int_equal(h.n, __builtin_popcount((unsigned)set));
            for (int i = 0; i < N_SVC; i++)
                if (hit(&h, names[i][0]) != ((set >> i) & 1))
                    fail_msg("pass %d, set %d: rule %s", pass, set,
                             names[i][0]);
        }
    release(&c, &tb);
}

/* Keyword databases are split by logsource; an event scans those of the
 * logsources it is on, and a logsource that imposes no condition (one
 * the mapping table does not know) reaches every event. */
static void test_keyword_logsources(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern sec = glob("*secword*");
    struct cf_sigma_rule *r =
        simple_rule(&tb, "security", NULL, false, false, 1, &sec);
    r->product = tstrdup("windows");
    r->service = tstrdup("security");
    struct cf_sigma_pattern sys = glob("*sysword*");
    r = simple_rule(&tb, "system", NULL, false, false, 1, &sys);
    r->product = tstrdup("windows");
    r->service = tstrdup("system");
    struct cf_sigma_pattern any = glob("*anyword*");
    r = simple_rule(&tb, "anywhere", NULL, false, false, 1, &any);
    r->product = tstrdup("no_such_product");
    struct cf_sigma_pattern any2 = glob("*otherword*");
    r = simple_rule(&tb, "anywhere2", NULL, false, false, 1, &any2);
    r->category = tstrdup("no_such_category");
    struct compiled c = compile(&tb);
    struct hits h = MATCH(c.m, "Channel", "Security", "EventID", "4624", "Data",
                          "secword anyword otherword sysword");
    assert_int_equal(h.n, 3);
    assert_true(hit(&h, "security") && hit(&h, "anywhere") &&
                hit(&h, "anywhere2"));
    h = MATCH(c.m, "Channel", "System", "EventID", "7045", "Data",
              "secword sysword otherword");
    assert_int_equal(h.n, 2);
    assert_true(hit(&h, "system") && hit(&h, "anywhere2"));
    /* On no keyword logsource but the unconditional ones. */
    h = MATCH(c.m, "Channel", "Application", "Data", "secword sysword anyword");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "anywhere"));
    h = MATCH(c.m, "message", "otherword");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "anywhere2"));
    release(&c, &tb);
}

static void test_always_evaluate(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    /* condition: not filter */
    struct cf_sigma_pattern sys = glob("*\\system32\\*");
    struct cf_sigma_field_cond ffc = fcond("Image", false, false, 1, &sys);
    struct cf_sigma_search fs = search("filter", 1, &ffc);
    add_rule(&tb, "not_filter", 1, &fs, c_op(CF_COND_NOT, c_search(0), NULL));
    /* selection and not filter: needs the selection hit */
    struct cf_sigma_pattern sel = glob("*.exe");
    struct cf_sigma_field_cond sfc[1] = {fcond("Image", false, false, 1, &sel)};
    struct cf_sigma_search ss[2] = {search("selection", 1, sfc),
                                    search("filter", 1, &ffc)};
    add_rule(
        &tb, "sel_not_filter", 2, ss,
        c_op(CF_COND_AND, c_search(0), c_op(CF_COND_NOT, c_search(1), NULL)));
    /* neq: field present and no value matches */
    struct cf_sigma_pattern users[2] = {glob("SYSTEM"), glob("LOCAL SERVICE")};
    simple_rule(&tb, "neq", "User", false, true, 2, users);
    /* null / exists */
    struct cf_sigma_pattern np = null_pattern();
    simple_rule(&tb, "null", "ParentImage", false, false, 1, &np);
    struct cf_sigma_pattern ex = exists(false);
    simple_rule(&tb, "absent", "Hashes", false, false, 1, &ex);
    struct cf_sigma_pattern ey = exists(true);
    simple_rule(&tb, "present", "Hashes", false, false, 1, &ey);

    struct compiled c = compile(&tb);
    struct hits h = MATCH(c.m, "Image", "C:\\Windows\\System32\\a.exe", "User",
                          "system", "Hashes", "x", "ParentImage", "p");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "present"));
    h = MATCH(c.m, "Image", "C:\\tmp\\a.exe", "User", "bob");
    assert_int_equal(h.n, 5);
    assert_true(hit(&h, "not_filter"));
    assert_true(hit(&h, "sel_not_filter"));
    assert_true(hit(&h, "neq"));
    assert_true(hit(&h, "null"));
    assert_true(hit(&h, "absent"));
    /* neq on a missing field is false; null holds for a JSON null. */
    h = MATCH(c.m, "Other", "1", "ParentImage", NULL);
    assert_int_equal(h.n, 3);
    assert_true(hit(&h, "not_filter"));
    assert_true(hit(&h, "null"));
    assert_true(hit(&h, "absent"));
    release(&c, &tb);
}

static void test_direct_kinds(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern gt = number(CF_CMP_GT, 1000);
    struct cf_sigma_pattern net = cidr4(10, 1, 0, 0, 16);
    struct cf_sigma_pattern ref = fieldref("TargetUser", 0);
    struct cf_sigma_pattern refs = fieldref("TargetUser", CF_PAT_REF_START);
    struct cf_sigma_pattern hour = timepart(CF_TIMEPART_HOUR, CF_CMP_EQ, 23);
    simple_rule(&tb, "number", "Size", false, false, 1, &gt);
    simple_rule(&tb, "cidr", "DestinationIp", false, false, 1, &net);
    simple_rule(&tb, "ref", "SubjectUser", false, false, 1, &ref);
    simple_rule(&tb, "refstart", "SubjectUser", false, false, 1, &refs);
    simple_rule(&tb, "hour", "When", false, false, 1, &hour);
    struct compiled c = compile(&tb);
    struct cf_ruleset_stats st;
    cf_ruleset_get_stats(c.rs, &st);
    assert_int_equal(st.direct_patterns, 5);
    assert_int_equal(st.patterns, 0);

    struct hits h = MATCH(c.m, "Size", "1001", "DestinationIp", "10.1.200.3");
    assert_int_equal(h.n, 2);
    h = MATCH(c.m, "Size", "1000", "DestinationIp", "10.2.0.1");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "Size", "12kb", "DestinationIp", "not an ip");
    assert_int_equal(h.n, 0);
    h = MATCH(c.m, "SubjectUser", "alice", "TargetUser", "alice");
    assert_int_equal(h.n, 2);
    h = MATCH(c.m, "SubjectUser", "alice2", "TargetUser", "alice");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "refstart"));
    h = MATCH(c.m, "When", "2024-03-01T23:15:00");
    assert_true(hit(&h, "hour"));
    h = MATCH(c.m, "When", "2024-03-01T22:15:00");
    assert_int_equal(h.n, 0);
    release(&c, &tb);
}

static void test_multi_valued(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern both[2] = {glob("*-enc*"), glob("*hidden*")};
    simple_rule(&tb, "all", "CommandLine", true, false, 2, both);
    struct cf_sigma_pattern tag = glob("admin");
    simple_rule(&tb, "any_elem", "Groups", false, false, 1, &tag);
    simple_rule(&tb, "neq_elem", "Groups", false, true, 1, &tag);
    /* A rule on an aliased field: Computer is also looked up as Hostname
     * when the field map says so (the default map does for OTRF). */
    struct cf_sigma_pattern host = glob("mkt01*");
    simple_rule(&tb, "alias", "Computer", false, false, 1, &host);
    struct compiled c = compile(&tb);

    struct hits h = MATCH(c.m, "CommandLine", "powershell -enc AAA -w hidden");
    assert_true(hit(&h, "all"));
    h = MATCH(c.m, "CommandLine", "powershell -enc AAA");
    assert_false(hit(&h, "all"));
    /* Array leaves: the element that matches makes the field match. */
    h = MATCH(c.m, "Groups", "users", "Groups", "ADMIN", "Groups", "guests");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "any_elem"));
    h = MATCH(c.m, "Groups", "users", "Groups", "guests");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "neq_elem"));
    h = MATCH(c.m, "Hostname", "MKT01.corp");
    assert_true(hit(&h, "alias"));
    release(&c, &tb);
}

/* Counts regular files in dir. */
static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    if (!d) return;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void corrupt_files(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    assert_non_null(d);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r+b");
        assert_non_null(f);
        /* Keep the header, garble the first database. */
        fseek(f, 8 + 32 + 8 + 16, SEEK_SET);
        for (int i = 0; i < 64; i++) fputc(0x5a, f);
        fclose(f);
    }
    closedir(d);
}

/* Cuts every file in dir to `keep` bytes (0: half its size). */
static void truncate_files(const char *dir, off_t keep) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    struct stat st;
    assert_non_null(d);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(truncate(path, keep ? keep : st.st_size / 2), 0);
    }
    closedir(d);
}

/* Rule r0 with patterns p[0..3) on `field`, and r1 with the keyword
 * `*secret*`; a default config caching in `dir`. */
static struct cf_config *cache_book(struct test_book *tb, const char *field,
                                    struct cf_sigma_pattern p[3],
                                    const char *dir) {
    simple_rule(tb, "r0", field, false, false, 3, p);
    struct cf_sigma_pattern kw = glob("*secret*");
    simple_rule(tb, "r1", NULL, false, false, 1, &kw);
    struct cf_config *cfg = cf_config_default();
    assert_non_null(cfg);
    free(cfg->cache_dir);
    cfg->cache_dir = strdup(dir);
    return cfg;
}

/* Compiles with cfg's cache directory and checks where the databases
 * and the expressions came from, the pattern count and the files the
 * directory holds then. */
static struct cf_ruleset *compile_cached(struct test_book *tb,
                                         const struct cf_config *cfg,
                                         bool cache_hit, bool plan_hit,
                                         size_t patterns, int files) {
    char err[512] = "";
    struct cf_ruleset_stats st;
    struct cf_ruleset *rs = cf_ruleset_compile(&tb->rb, cfg, err, sizeof err);
    if (!rs) fail_msg("compile failed: %s", err);
    cf_ruleset_get_stats(rs, &st);
    assert_int_equal(st.cache_hit, cache_hit);
    assert_int_equal(st.plan_hit, plan_hit);
    assert_int_equal(st.patterns, patterns);
    assert_int_equal(count_files(cfg->cache_dir), files);
    return rs;
}

/* Cuts one file to half its size. */
static void truncate_files_one(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
}

/* The path of the one file in dir whose name ends in `ext`. */
static void file_with_ext(const char *dir, const char *ext, char *out,
                          size_t size) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name), elen = strlen(ext);
        if (len > elen && strcmp(e->d_name + len - elen, ext) == 0) {
            snprintf(out, size, "%s/%s", dir, e->d_name);
            n++;
        }
    }
    closedir(d);
    assert_int_equal(n, 1);
}

/* Rewrites use `u` of a plan file to name expression `expr`, with a
 * checksum that fits, as a plan of other rules would look (layout:
 * ruleset_cache.c and struct plan in ruleset.c). */
static void replan_use(const char *path, uint32_t u, uint32_t expr) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 1 << 16, f);
    const size_t head = 8 + 32 + 8 + 8;
    assert_true(n > head + 32 + 48);
    unsigned char *body = buf + head;
    uint64_t counts[6];
    memcpy(counts, body + 32, sizeof counts);
    assert_true(u < counts[1]);
    size_t at = 32 + 48 + 5 * counts[0] + 4 * (size_t)u;
    memcpy(body + at, &expr, sizeof expr);
    uint64_t crc = cf_cache_sum(body, n - head);
    memcpy(buf + 8 + 32 + 8, &crc, sizeof crc);
    rewind(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    free(buf);
}

/* What a warm start reads back instead of building the expressions
 * (the compile plan) is used only when it fits: a damaged plan, one
 * whose uses do not fit the rules, one whose databases are gone, and
 * other field mappings each build the expressions again, with the same
 * result. */
static void test_compile_plan(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    char dir[] = "/tmp/cf_test_plan_XXXXXX";
    char plan[4096], hsdb[4096], err[512];
    assert_non_null(mkdtemp(dir));
    struct cf_sigma_pattern p[3] = {glob("*mimikatz*"), glob("lsass.exe"),
                                    regex("^x+$", 0)};
    struct cf_config *cfg = cache_book(&tb, "Image", p, dir);
    /* step: what is done to the cache before the compile; then whether
     * the databases and the plan come from it */
    static const struct {
        int step;
        bool cache_hit, plan_hit;
    } steps[] = {{0, false, false}, {0, true, true},  {1, true, false},
                 {0, true, true},   {2, true, false}, {0, true, true},
                 {3, false, false}, {0, true, true}};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        if (steps[i].step) file_with_ext(dir, ".plan", plan, sizeof plan);
        if (steps[i].step == 1) truncate_files_one(plan);
        if (steps[i].step == 2) replan_use(plan, 0, 0xfffffff0u);
        if (steps[i].step == 3) {
            file_with_ext(dir, ".hsdb", hsdb, sizeof hsdb);
            assert_int_equal(unlink(hsdb), 0);
        }
        struct cf_ruleset *rs = compile_cached(&tb, cfg, steps[i].cache_hit,
                                               steps[i].plan_hit, 4, 2);
        /* event (two fields), the rule that matches ("": none) */
        static const char *const cases[][5] = {
            {"Image", "C:\\Mimikatz.exe", "Other", "", "r0"},
            {"Image", "LSASS.EXE", "Other", "", "r0"},
            {"Image", "alsass.exe", "Other", "a secret", "r1"},
            {"process.executable", "lsass.exe", "Other", "", ""}};
        struct cf_matcher *m = cf_matcher_new(rs);
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            struct hits h = match_kv(m, 2, cases[c]);
            assert_int_equal(h.n, cases[c][4][0] != '\0');
            if (h.n) assert_string_equal(h.titles[0], cases[c][4]);
        }
        cf_matcher_destroy(m);
        cf_ruleset_destroy(rs);
    }
    /* Other field mappings: another plan, and the rule follows them
     * (process.executable besides Image: three more patterns). */
    cf_config_destroy(cfg);
    json_error_t je;
    json_t *root = json_loads(
        "{\"field_mappings\": {\"Image\": [\"process.executable\"]}}", 0, &je);
    assert_non_null(root);
    cfg = cf_config_from_json(root, "test", err, sizeof err);
    json_decref(root);
    assert_non_null(cfg);
    free(cfg->cache_dir);
    cfg->cache_dir = strdup(dir);
    for (int round = 0; round < 2; round++) {
        struct cf_ruleset *rs =
            compile_cached(&tb, cfg, round == 1, round == 1, 7, 4);
        struct cf_matcher *m = cf_matcher_new(rs);
        struct hits h = MATCH(m, "process.executable", "lsass.exe");
        assert_int_equal(h.n, 1);
        cf_matcher_destroy(m);
        cf_ruleset_destroy(rs);
    }
    cf_config_destroy(cfg);
    remove_dir(dir);
    free_rejections(&tb.rb);
    free_all();
}

/* Garbles the middle of the largest database of the .hsdb
 * file in dir (every database: all) and rewrites the file's checksum to fit,
 * as a file Hyperscan refuses would look (layout: ruleset_cache.c). */
static void garble_hsdb(const char *dir, bool all) {
    char path[4096];
    file_with_ext(dir, ".hsdb", path, sizeof path);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    assert_true(n > 8 + 32 + 8 + 8 + 8 && n < sizeof buf);
    uint64_t v;
    size_t at = 8 + 32;
    memcpy(&v, buf + at, 8);
    at += 8 + (size_t)v;
    uint64_t n_dbs;
    memcpy(&n_dbs, buf + at, 8);
    at += 8;
    size_t first = at, largest = 0, most = 0;
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t i = 0, a = first; i < n_dbs; i++) {
            memcpy(&v, buf + a, 8);
            a += 8;
            if (pass == 0 && v > most) most = v, largest = a;
            if (pass == 1 && v && (all || a == largest))
                memset(buf + a + v / 2, 0x5a, 4); /* past its header */
            a += (size_t)v;
            at = a;
        }
    assert_int_equal(at + 8, n);
    v = cf_cache_sum(buf, at);
    memcpy(buf + at, &v, 8);
    rewind(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* From the cache, a database is loaded when a matcher first meets an
 * event routed to it: a warm start loads one (the prototype scratch
 * needs one) of the Security and System rules' two, and each matcher's
 * scratch grows for what it loads.  A database Hyperscan refuses later
 * is counted as scan errors, never silently missed; one refused at the
 * start makes the whole file a miss. */
static void test_lazy_databases(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    char dir[] = "/tmp/cf_test_lazy_XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct cf_sigma_pattern sec = glob("*secword*");
    struct cf_sigma_rule *r =
        simple_rule(&tb, "security", "CommandLine", false, false, 1, &sec);
    r->product = tstrdup("windows");
    r->service = tstrdup("security");
    struct cf_sigma_pattern sys[2] = {glob("*sysword*"), regex("^x+y$", 0)};
    r = simple_rule(&tb, "system", "ImagePath", false, false, 2, sys);
    r->product = tstrdup("windows");
    r->service = tstrdup("system");
    struct cf_config *cfg = cf_config_default();
    assert_non_null(cfg);
    free(cfg->cache_dir);
    cfg->cache_dir = strdup(dir);
    /* 0 cold, 1 warm; 2: the largest database refused (not the one
     * loaded at the start, the smallest); 3 cold again; 4: every one
     * refused, so compiled and written again; 5 warm */
    for (int round = 0; round < 6; round++) {
        bool warm = round == 1 || round == 2 || round == 5;
        if (round == 2) garble_hsdb(dir, false);
        if (round == 4) garble_hsdb(dir, true);
        struct cf_ruleset_stats st;
        char err[512] = "";
        struct cf_ruleset *rs =
            cf_ruleset_compile(&tb.rb, cfg, err, sizeof err);
        if (!rs) fail_msg("compile failed: %s", err);
        cf_ruleset_get_stats(rs, &st);
        assert_int_equal(st.databases, 3);
        assert_int_equal(st.cache_hit, warm);
        size_t first = warm ? 1 : 3;
        assert_int_equal(cf_ruleset_databases_loaded(rs), first);
        struct cf_matcher *m = cf_matcher_new(rs);
        struct hits h = MATCH(m, "Channel", "Application", "CommandLine",
                              "secword", "ImagePath", "sysword");
        assert_int_equal(h.n, 0);
        assert_int_equal(cf_ruleset_databases_loaded(rs), first);
        h = MATCH(m, "Channel", "Security", "EventID", "4688", "CommandLine",
                  "a secword");
        int hits = h.n;
        if (round != 2) assert_int_equal(h.n, 1);
        /* a second matcher, as another thread's, sized for its own */
        struct cf_matcher *m2 = cf_matcher_new(rs);
        h = MATCH(m2, "Channel", "System", "EventID", "7045", "ImagePath",
                  "xxy");
        hits += h.n;
        if (round != 2) assert_int_equal(h.n, 1);
        h = MATCH(m2, "Channel", "System", "EventID", "7045", "ImagePath",
                  "sysword");
        hits += h.n;
        h = MATCH(m, "Channel", "Security", "EventID", "4688", "CommandLine",
                  "secword");
        hits += h.n;
        uint64_t errors =
            cf_matcher_scan_errors(m, NULL) + cf_matcher_scan_errors(m2, NULL);
        if (round == 2) {
            /* one refused: its events count, the others match */
            assert_int_equal(cf_ruleset_databases_loaded(rs), 2);
            assert_true(errors >= 1 && hits >= 2);
            assert_true(hits + (int)errors >= 4); /* a miss is an error */
        } else {
            assert_int_equal(hits, 4);
            assert_int_equal(errors, 0);
            assert_int_equal(cf_ruleset_databases_loaded(rs), 3);
        }
        cf_matcher_destroy(m2);
        cf_matcher_destroy(m);
        cf_ruleset_destroy(rs);
        /* round 2 leaves the refused file: compile it again */
        if (round == 2) remove_dir(dir), assert_int_equal(mkdir(dir, 0700), 0);
    }
    cf_config_destroy(cfg);
    remove_dir(dir);
    free_rejections(&tb.rb);
    free_all();
}

static void test_cache(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    char dir[] = "/tmp/cf_test_ruleset_XXXXXX";
    char cache[sizeof dir + 16];
    char err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(cache, sizeof cache, "%s/a/b", dir); /* created on demand */
    struct cf_sigma_pattern p[3] = {glob("*mimikatz*"), regex("(ab)\\1", 0),
                                    regex("^x+$", 0)};
    struct cf_config *cfg = cache_book(&tb, "CommandLine", p, cache);
    struct cf_ruleset_stats st;
    for (int round = 0; round < 8; round++) {
        if (round == 2) corrupt_files(cache);
        if (round == 4) truncate_files(cache, 0);
        if (round == 6) truncate_files(cache, 8 + 32 + 4); /* inside a u64 */
        /* cold, warm, then a corrupt, a truncated and a cut header file
         * each recompiled (and rewritten), warm after each; the compile
         * plan beside the databases goes the same way */
        struct cf_ruleset *rs =
            compile_cached(&tb, cfg, round % 2 == 1, round % 2 == 1, 3, 2);
        cf_ruleset_get_stats(rs, &st);
        assert_int_equal(st.direct_patterns, 1);
        struct cf_matcher *m = cf_matcher_new(rs);
        struct hits h = MATCH(m, "CommandLine", "Mimikatz");
        assert_int_equal(h.n, 1);
        h = MATCH(m, "CommandLine", "abab");
        assert_int_equal(h.n, 1);
        h = MATCH(m, "CommandLine", "xxx");
        assert_int_equal(h.n, 1);
        h = MATCH(m, "CommandLine", "xxy", "Other", "a secret");
        assert_int_equal(h.n, 1);
        assert_string_equal(h.titles[0], "r1");
        cf_matcher_destroy(m);
        cf_ruleset_destroy(rs);
    }
    /* Different rules: a different key, a second pair of files. */
    tb.rules[1]->digest[0] = 'f';
    struct cf_ruleset *rs = cf_ruleset_compile(&tb.rb, cfg, err, sizeof err);
    assert_non_null(rs);
    cf_ruleset_get_stats(rs, &st);
    assert_false(st.cache_hit);
    assert_int_equal(count_files(cache), 4);
    cf_ruleset_destroy(rs);

    /* An unusable cache directory is not fatal. */
    free(cfg->cache_dir);
    cfg->cache_dir = strdup("/proc/no/such/dir");
    rs = cf_ruleset_compile(&tb.rb, cfg, err, sizeof err);
    assert_non_null(rs);
    cf_ruleset_destroy(rs);

    cf_config_destroy(cfg);
    remove_dir(cache);
    snprintf(cache, sizeof cache, "%s/a", dir);
    rmdir(cache);
    rmdir(dir);
    free_rejections(&tb.rb);
    free_all();
}

/* One database per field holds the patterns of every route's rules;
 * fields with the same patterns share one; an event still matches only
 * the rules of its own routes. */
static void test_field_databases(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    static const struct {
        const char *title, *category, *glob;
    } rules[] = {
        {"pc", "process_creation", "*\\evil.exe"},
        {"pc2", "process_creation", "*\\other.exe"},
        {"il", "image_load", "*\\bad.dll"},
        {"il_same", "image_load", "*\\evil.exe"},
        {"fe", "file_event", "*\\evil.exe"},
        {"nc", "network_connection", "*\\evil.exe"},
    };
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
        struct cf_sigma_pattern p = glob(rules[i].glob);
        struct cf_sigma_rule *r =
            simple_rule(&tb, rules[i].title, "Target", false, false, 1, &p);
        /* (Target: a field no mapping renames) */
        r->product = tstrdup("windows");
        r->category = tstrdup(rules[i].category);
    }
    /* Image is also NewProcessName (Security 4688): two fields, the same
     * patterns marking the same items */
    struct cf_sigma_pattern img = glob("*\\evil.exe");
    struct cf_sigma_rule *ir =
        simple_rule(&tb, "image", "Image", false, false, 1, &img);
    ir->product = tstrdup("windows");
    ir->category = tstrdup("process_creation");
    struct compiled c = compile(&tb);
    struct cf_ruleset_stats st;
    cf_ruleset_get_stats(c.rs, &st);
    /* Target; Image and NewProcessName sharing one */
    assert_int_equal(st.databases, 2);
    assert_int_equal(st.fields, 3);
    const char *sysmon = "Microsoft-Windows-Sysmon/Operational";
    static const struct {
        const char *event_id, *target, *only; /* NULL: no rule matches */
    } events[] = {
        {"1", "C:\\x\\evil.exe", "pc"}, /* Target, not Image */
        {"1", "C:\\x\\bad.dll", NULL},  /* image_load's pattern */
        {"7", "C:\\x\\bad.dll", "il"},   {"7", "C:\\x\\evil.exe", "il_same"},
        {"11", "C:\\x\\evil.exe", "fe"}, {"3", "C:\\x\\evil.exe", "nc"},
    };
    for (size_t i = 0; i < sizeof events / sizeof *events; i++) {
        struct hits h = MATCH(c.m, "Channel", sysmon, "EventID",
                              events[i].event_id, "Target", events[i].target);
        assert_int_equal(h.n, events[i].only ? 1 : 0);
        if (events[i].only) assert_true(hit(&h, events[i].only));
    }
    release(&c, &tb);
}

/* A field's event names depend on the rule's logsource (the compiler
 * keeps them per product, category and field): Image in a
 * process_creation rule is also Security 4688's NewProcessName, in an
 * image_load rule compiled before it only Image. */
static void test_names_per_logsource(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    static const struct {
        const char *title, *category;
    } rules[] = {{"il", "image_load"}, {"pc", "process_creation"}};
    for (size_t i = 0; i < 2; i++) {
        struct cf_sigma_pattern p = glob("*\\evil.exe");
        struct cf_sigma_rule *r =
            simple_rule(&tb, rules[i].title, "Image", false, false, 1, &p);
        r->product = tstrdup("windows");
        r->category = tstrdup(rules[i].category);
    }
    struct compiled c = compile(&tb);
    struct hits h = MATCH(c.m, "Channel", "Security", "EventID", "4688",
                          "NewProcessName", "C:\\x\\evil.exe");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "pc"));
    h = MATCH(c.m, "Channel", "Microsoft-Windows-Sysmon/Operational", "EventID",
              "7", "Image", "C:\\x\\evil.exe");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "il"));
    release(&c, &tb);
}

/* A condition on a field Security 4688 lacks is unknown there (the
 * compiler marks it only for a rule with an exclude route): "selection
 * and not filter" on OriginalFileName is no hit on a 4688 event, a hit on
 * Sysmon's, where the field is merely absent; a rule whose fields 4688
 * all has is unaffected. */
static void test_lacking_per_rule(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern exe = glob("*\\evil.exe");
    struct cf_sigma_pattern ofn = glob("good.exe");
    struct cf_sigma_field_cond img = fcond("Image", false, false, 1, &exe);
    struct cf_sigma_field_cond flt =
        fcond("OriginalFileName", false, false, 1, &ofn);
    struct cf_sigma_search sf[2] = {search("selection", 1, &img),
                                    search("filter", 1, &flt)};
    struct cf_sigma_rule *r = add_rule(
        &tb, "lacks", 2, sf,
        c_op(CF_COND_AND, c_search(0), c_op(CF_COND_NOT, c_search(1), NULL)));
    r->product = tstrdup("windows");
    r->category = tstrdup("process_creation");
    r = simple_rule(&tb, "has", "Image", false, false, 1, &exe);
    r->product = tstrdup("windows");
    r->category = tstrdup("process_creation");
    struct compiled c = compile(&tb);
    struct hits h = MATCH(c.m, "Channel", "Security", "EventID", "4688",
                          "NewProcessName", "C:\\x\\evil.exe");
    assert_int_equal(h.n, 1);
    assert_true(hit(&h, "has"));
    h = MATCH(c.m, "Channel", "Microsoft-Windows-Sysmon/Operational", "EventID",
              "1", "Image", "C:\\x\\evil.exe");
    assert_int_equal(h.n, 2);
    assert_true(hit(&h, "lacks") && hit(&h, "has"));
    release(&c, &tb);
}

/* A rule is evaluated only when each condition its condition ANDs has a
 * marked item; conditions that are not necessary (OR, NOT, a list of
 * maps, neq) must not hold a rule back. */
static void test_required_items(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern exe = glob("*\\a.exe");
    struct cf_sigma_pattern users[2] = {glob("alice"), glob("bob")};
    struct cf_sigma_pattern cmd = glob("*-x*");
    struct cf_sigma_field_cond two[2] = {fcond("Image", false, false, 1, &exe),
                                         fcond("User", false, false, 2, users)};
    struct cf_sigma_search both = search("selection", 2, two);
    add_rule(&tb, "both", 1, &both, NULL);
    /* selection and not filter: the filter is not necessary */
    struct cf_sigma_field_cond img = fcond("Image", false, false, 1, &exe);
    struct cf_sigma_field_cond flt =
        fcond("CommandLine", false, false, 1, &cmd);
    struct cf_sigma_search sf[2] = {search("selection", 1, &img),
                                    search("filter", 1, &flt)};
    add_rule(
        &tb, "not_filter", 2, sf,
        c_op(CF_COND_AND, c_search(0), c_op(CF_COND_NOT, c_search(1), NULL)));
    /* selection and (a or b): neither a nor b alone is necessary */
    struct cf_sigma_field_cond usr = fcond("User", false, false, 2, users);
    struct cf_sigma_search sab[3] = {search("selection", 1, &img),
                                     search("a", 1, &usr),
                                     search("b", 1, &flt)};
    add_rule(&tb, "and_or", 3, sab,
             c_op(CF_COND_AND, c_search(0),
                  c_op(CF_COND_OR, c_search(1), c_search(2))));
    /* User neq alice/bob and Image: only Image is necessary */
    struct cf_sigma_field_cond nq[2] = {fcond("Image", false, false, 1, &exe),
                                        fcond("User", false, true, 2, users)};
    struct cf_sigma_search sn = search("selection", 2, nq);
    add_rule(&tb, "neq", 1, &sn, NULL);

    struct compiled c = compile(&tb);
    struct hits h = MATCH(c.m, "Image", "C:\\a.exe", "User", "bob");
    assert_int_equal(h.n, 3);
    assert_true(hit(&h, "both"));
    assert_true(hit(&h, "not_filter"));
    assert_true(hit(&h, "and_or"));
    h = MATCH(c.m, "Image", "C:\\a.exe", "User", "carol", "CommandLine",
              "run -x");
    assert_int_equal(h.n, 2);
    assert_true(hit(&h, "and_or"));
    assert_true(hit(&h, "neq"));
    h = MATCH(c.m, "Image", "C:\\b.exe", "User", "bob");
    assert_int_equal(h.n, 0);
    release(&c, &tb);
}

/* The rules `h` hit are exactly names[] (NULL-terminated). */
static void expect_only(struct hits h, const char *const *names) {
    size_t n = 0;
    for (; names[n]; n++) assert_true(hit(&h, names[n]));
    assert_int_equal(h.n, n);
}

#define EXPECT_ONLY(h, ...)                                                    \
    expect_only((h), (const char *const[]){__VA_ARGS__, NULL})

/* A rule whose condition is an OR (of selections, or of the maps of a
 * list) is evaluated when every necessary selection of one branch has a
 * marked item, whichever branch; an `|all` needs each of its values.
 * Each event below matches through a different branch, or through
 * none. */
static void test_required_alternatives(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct cf_sigma_pattern exe = glob("*\\a.exe"), zexe = glob("*\\z.exe");
    struct cf_sigma_pattern users[2] = {glob("alice"), glob("bob")};
    struct cf_sigma_pattern x = glob("*-x*"),
                            xy[2] = {glob("*-x*"), glob("*-y*")};
    struct cf_sigma_pattern y = glob("*-y*");
    /* sel_a or sel_b */
    struct cf_sigma_field_cond a2[2] = {fcond("Image", false, false, 1, &exe),
                                        fcond("User", false, false, 2, users)};
    struct cf_sigma_field_cond cx = fcond("CommandLine", false, false, 1, &x);
    struct cf_sigma_search sor[2] = {search("sel_a", 2, a2),
                                     search("sel_b", 1, &cx)};
    add_rule(&tb, "or_sel", 2, sor, c_op(CF_COND_OR, c_search(0), c_search(1)));
    /* (a or b) and c */
    struct cf_sigma_field_cond usr = fcond("User", false, false, 2, users);
    struct cf_sigma_field_cond img = fcond("Image", false, false, 1, &exe);
    struct cf_sigma_search sabc[3] = {search("a", 1, &usr), search("b", 1, &cx),
                                      search("c", 1, &img)};
    add_rule(&tb, "and_of_or", 3, sabc,
             c_op(CF_COND_AND, c_op(CF_COND_OR, c_search(0), c_search(1)),
                  c_search(2)));
    /* CommandLine|all: [-x, -y], or Image z.exe */
    struct cf_sigma_field_cond all = fcond("CommandLine", true, false, 2, xy);
    struct cf_sigma_field_cond zimg = fcond("Image", false, false, 1, &zexe);
    struct cf_sigma_search sall[2] = {search("sel", 1, &all),
                                      search("img", 1, &zimg)};
    add_rule(&tb, "all_vals", 2, sall,
             c_op(CF_COND_OR, c_search(0), c_search(1)));
    /* a list of two maps: {Image, User} or {CommandLine -y} */
    struct cf_sigma_field_cond cy = fcond("CommandLine", false, false, 1, &y);
    struct cf_sigma_search maps = search("maps", 2, a2);
    struct cf_sigma_conjunction *first = maps.alts;
    maps.n_alts = 2;
    maps.alts = tmalloc(2 * sizeof *maps.alts);
    maps.alts[0] = *first;
    maps.alts[1].n_conds = 1;
    maps.alts[1].conds = tmalloc(sizeof *maps.alts[1].conds);
    maps.alts[1].conds[0] = cy;
    add_rule(&tb, "maps", 1, &maps, NULL);

    struct compiled c = compile(&tb);
    EXPECT_ONLY(MATCH(c.m, "Image", "C:\\a.exe", "User", "carol", "CommandLine",
                      "run -x"),
                "or_sel", "and_of_or");
    EXPECT_ONLY(MATCH(c.m, "Image", "C:\\a.exe", "User", "bob"), "or_sel",
                "and_of_or", "maps");
    EXPECT_ONLY(MATCH(c.m, "CommandLine", "run -x -y"), "or_sel", "all_vals",
                "maps");
    assert_int_equal(MATCH(c.m, "Image", "C:\\a.exe").n, 0);
    EXPECT_ONLY(MATCH(c.m, "User", "alice", "CommandLine", "-x"), "or_sel");
    EXPECT_ONLY(MATCH(c.m, "Image", "C:\\z.exe", "CommandLine", "-y"),
                "all_vals", "maps");
    release(&c, &tb);
}

static void test_empty_rulebook(void **state) {
    (void)state;
    struct test_book tb;
    memset(&tb, 0, sizeof tb);
    struct compiled c = compile(&tb);
    struct hits h = MATCH(c.m, "Image", "x");
    assert_int_equal(h.n, 0);
    release(&c, &tb);
    cf_ruleset_destroy(NULL);
    cf_matcher_destroy(NULL);
}

/* ---- SigmaHQ regression cases (whole chain: parser, decoder, router,
 * field map, compiler, matcher) ---- */

struct regression {
    struct cf_rulebook *rb;
    struct cf_ruleset *rs;
    struct cf_matcher *m;
    struct cf_decoder *dec;
    struct cf_event ev;
    const struct cf_config *cfg;
    int cases, passed;
    const char *want;
    bool found;
};

static void find_rule(const struct cf_sigma_rule *rule, void *opaque) {
    struct regression *r = opaque;
    if (rule->id && strcmp(rule->id, r->want) == 0) r->found = true;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    if (!f) return NULL;
    do {
        if (n + 4096 > cap) {
            cap = (cap + 4096) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void regression_dir(struct regression *r, const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) return;
    while ((e = readdir(d))) {
        char path[4096];
        struct stat st;
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            regression_dir(r, path);
            continue;
        }
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        /* The event's file is named after the rule it must raise. */
        char id[256];
        snprintf(id, sizeof id, "%.*s", (int)(n - 5), e->d_name);
        size_t len = 0;
        char *text = read_all(path, &len);
        assert_non_null(text);
        r->cases++;
        r->want = id;
        r->found = false;
        /* Some files hold several pretty-printed events back to back,
         * each opening with `{` in column 0; any of them may raise the
         * rule.  Each is folded to one line, as chainfuse reads lines. */
        size_t start = 0;
        bool decoded = true;
        while (start < len) {
            size_t end = start + 1;
            while (end < len && !(text[end] == '{' && text[end - 1] == '\n'))
                end++;
            for (size_t i = start; i < end; i++)
                if (text[i] == '\n' || text[i] == '\r') text[i] = ' ';
            const char *reason = NULL;
            if (cf_event_decode(r->dec, &r->ev, text + start, end - start,
                                &r->cfg->limits, &reason) != CF_OK) {
                printf("regression %s: cannot decode (%s)\n", path, reason);
                decoded = false;
            } else {
                cf_matcher_match(r->m, &r->ev, find_rule, r);
            }
            start = end;
        }
        if (r->found)
            r->passed++;
        else if (decoded)
            printf("regression %s: rule %s did not match\n", path, id);
        free(text);
    }
    closedir(d);
}

static void test_sigmahq_regression(void **state) {
    (void)state;
    const char *shared = getenv("CF_SHARED_DIR");
    char path[4096], err[1024];
    struct regression r;
    memset(&r, 0, sizeof r);
    if (!shared) {
        if (cf_test_shared_missing("SigmaHQ regression cases") == 77) skip();
        fail();
    }
    snprintf(path, sizeof path, "%s/data/sigma/regression_data", shared);
    if (access(path, R_OK) != 0) {
        if (cf_test_shared_missing(path) == 77) skip();
        fail();
    }
    struct cf_config *cfg = no_cache_config();
    r.cfg = cfg;
    r.rb = cf_rulebook_new();
    assert_non_null(r.rb);
    const char *subs[3] = {"rules", "rules-threat-hunting",
                           "rules-emerging-threats"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/data/sigma/%s", shared, subs[i]);
        assert_int_equal(cf_rulebook_load(r.rb, path, cfg, err, sizeof err),
                         CF_OK);
    }
    assert_int_equal(cf_rulebook_finish(r.rb, err, sizeof err), CF_OK);
    r.rs = cf_ruleset_compile(r.rb, cfg, err, sizeof err);
    if (!r.rs) fail_msg("compile failed: %s", err);
    r.m = cf_matcher_new(r.rs);
    r.dec = cf_decoder_new();
    assert_non_null(r.m);
    assert_non_null(r.dec);
    cf_event_init(&r.ev);
    snprintf(path, sizeof path, "%s/data/sigma/regression_data", shared);
    regression_dir(&r, path);
    printf("SigmaHQ regression cases: %d of %d raise their rule\n", r.passed,
           r.cases);
    assert_true(r.cases >= 100);
    assert_int_equal(r.passed, r.cases);
    cf_event_free(&r.ev);
    cf_decoder_destroy(r.dec);
    cf_matcher_destroy(r.m);
    cf_ruleset_destroy(r.rs);
    cf_rulebook_destroy(r.rb);
    cf_config_destroy(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_globs),
        cmocka_unit_test(test_scan_memo),
        cmocka_unit_test(test_keyword_memo),
        cmocka_unit_test(test_keyword_logsources),
        cmocka_unit_test(test_route_sets),
        cmocka_unit_test(test_literal_databases),
        cmocka_unit_test(test_regex_and_rejection),
        cmocka_unit_test(test_keywords),
        cmocka_unit_test(test_keywords_all),
        cmocka_unit_test(test_always_evaluate),
        cmocka_unit_test(test_direct_kinds),
        cmocka_unit_test(test_multi_valued),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_compile_plan),
        cmocka_unit_test(test_lazy_databases),
        cmocka_unit_test(test_field_databases),
        cmocka_unit_test(test_names_per_logsource),
        cmocka_unit_test(test_lacking_per_rule),
        cmocka_unit_test(test_required_items),
        cmocka_unit_test(test_required_alternatives),
        cmocka_unit_test(test_empty_rulebook),
        cmocka_unit_test(test_sigmahq_regression),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
