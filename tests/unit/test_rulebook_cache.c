/*
 * test_rulebook_cache.c - the rule file cache (rules/rulebook_cache.h):
 * a rulebook loaded from the cache equals, field by field, the one the
 * parser builds (the whole SigmaHQ set from CF_SHARED_DIR, and a small
 * tree with correlations, a filter, a legacy aggregation, placeholders
 * and rejections), and the cache never serves a stale outcome: an edit
 * that keeps size and mtime (right after the cache was written, and
 * long after), added, removed and renamed files (in directories whose
 * listing the cache holds), a changed placeholder value, a damaged or
 * truncated cache file and an unwritable cache directory.
 *
 * The comparison below is written from sigma.h and sigma_correlation.h,
 * not from the encoder, so a field the encoder forgets shows here.
 */
/* cmocka needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "ruleset_cache.h"
#include "shared_data.h"
#include "sigma.h"
#include "sigma_correlation.h"

/* ---- field-by-field equality ------------------------------------------- */

static char where[600];

#define SAME(cond, what)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            print_message("differs: %s (%s)\n", what, where);                  \
            return false;                                                      \
        }                                                                      \
    } while (0)

static bool str_same(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool strv_same(char *const *a, char *const *b, size_t n) {
    if (!a || !b) return !a && !b;
    for (size_t i = 0; i < n; i++)
        if (!str_same(a[i], b[i])) return false;
    return true;
}

static bool bytes_same(const void *a, const void *b, size_t n) {
    if (!a || !b) return !a && !b;
    return memcmp(a, b, n) == 0;
}

static bool pattern_same(const struct cf_sigma_pattern *a,
                         const struct cf_sigma_pattern *b) {
    SAME(a->kind == b->kind && a->flags == b->flags, "pattern kind/flags");
    SAME(a->len == b->len, "pattern length");
    SAME(bytes_same(a->text, b->text, a->len), "pattern text");
    SAME(!a->text || a->text[a->len] == '\0', "pattern text NUL");
    SAME(!b->text || b->text[b->len] == '\0', "pattern text NUL");
    SAME(bytes_same(a->wild, b->wild, a->len), "pattern wildcards");
    SAME(a->op == b->op &&
             memcmp(&a->number, &b->number, sizeof a->number) == 0,
         "pattern comparison");
    SAME(a->time_part == b->time_part, "pattern time part");
    SAME(a->family == b->family && a->prefix == b->prefix &&
             memcmp(a->addr, b->addr, sizeof a->addr) == 0,
         "pattern CIDR");
    SAME(a->exists == b->exists, "pattern exists");
    return true;
}

static bool cond_same(const struct cf_sigma_cond *a,
                      const struct cf_sigma_cond *b) {
    if (!a || !b) return !a && !b;
    SAME(a->op == b->op && a->search == b->search && a->n_kids == b->n_kids,
         "condition node");
    SAME(!a->kids == !b->kids, "condition kids");
    for (uint32_t i = 0; a->kids && i < a->n_kids; i++)
        if (!cond_same(&a->kids[i], &b->kids[i])) return false;
    return true;
}

static bool searches_same(const struct cf_sigma_rule *a,
                          const struct cf_sigma_rule *b) {
    SAME(a->n_searches == b->n_searches && !a->searches == !b->searches,
         "searches");
    for (size_t i = 0; a->searches && i < a->n_searches; i++) {
        const struct cf_sigma_search *x = &a->searches[i], *y = &b->searches[i];
        SAME(str_same(x->name, y->name), "search name");
        SAME(x->n_alts == y->n_alts && !x->alts == !y->alts, "search maps");
        for (size_t j = 0; x->alts && j < x->n_alts; j++) {
            const struct cf_sigma_conjunction *p = &x->alts[j],
                                              *q = &y->alts[j];
            SAME(p->n_conds == q->n_conds && !p->conds == !q->conds,
                 "conjunction");
            for (size_t k = 0; p->conds && k < p->n_conds; k++) {
                const struct cf_sigma_field_cond *f = &p->conds[k],
                                                 *g = &q->conds[k];
                SAME(str_same(f->field, g->field), "field name");
                SAME(f->all == g->all && f->negate == g->negate,
                     "field modifiers");
                SAME(f->n_values == g->n_values && !f->values == !g->values,
                     "field values");
                for (size_t v = 0; f->values && v < f->n_values; v++) {
                    SAME(f->values[v].n_alts == g->values[v].n_alts &&
                             !f->values[v].alts == !g->values[v].alts,
                         "value alternatives");
                    for (size_t t = 0; t < f->values[v].n_alts; t++)
                        if (!pattern_same(&f->values[v].alts[t],
                                          &g->values[v].alts[t]))
                            return false;
                }
            }
        }
    }
    return true;
}

static bool rule_same(const struct cf_sigma_rule *a,
                      const struct cf_sigma_rule *b) {
    snprintf(where, sizeof where, "rule %s in %s", a->id ? a->id : "?",
             a->path ? a->path : "?");
    SAME(str_same(a->id, b->id) && str_same(a->name, b->name), "id, name");
    SAME(str_same(a->title, b->title) && str_same(a->path, b->path),
         "title, path");
    SAME(str_same(a->description, b->description) &&
             str_same(a->status, b->status),
         "description, status");
    SAME(a->level == b->level, "level");
    SAME(a->n_tags == b->n_tags && strv_same(a->tags, b->tags, a->n_tags),
         "tags");
    SAME(a->n_tactics == b->n_tactics &&
             strv_same(a->tactics, b->tactics, a->n_tactics),
         "tactics");
    SAME(a->n_techniques == b->n_techniques &&
             strv_same(a->techniques, b->techniques, a->n_techniques),
         "techniques");
    SAME(str_same(a->product, b->product) &&
             str_same(a->category, b->category) &&
             str_same(a->service, b->service),
         "logsource");
    if (!searches_same(a, b) || !cond_same(a->condition, b->condition))
        return false;
    SAME(strcmp(a->digest, b->digest) == 0, "digest");
    SAME(a->index == b->index, "index");
    SAME(a->correlated == b->correlated && a->generated == b->generated,
         "correlated, generated");
    return true;
}

static bool expr_same(const struct cf_corr_expr *a,
                      const struct cf_corr_expr *b) {
    if (!a || !b) return !a && !b;
    SAME(a->op == b->op && a->ref == b->ref, "expression node");
    return expr_same(a->a, b->a) && expr_same(a->b, b->b);
}

static bool corr_same(const struct cf_sigma_correlation *a,
                      const struct cf_sigma_correlation *b) {
    snprintf(where, sizeof where, "correlation %s in %s", a->key ? a->key : "?",
             a->path ? a->path : "?");
    SAME(str_same(a->id, b->id) && str_same(a->name, b->name) &&
             str_same(a->title, b->title) && str_same(a->path, b->path) &&
             str_same(a->key, b->key),
         "names");
    SAME(a->level == b->level && a->type == b->type, "level, type");
    SAME(a->n_refs == b->n_refs && !a->refs == !b->refs, "refs");
    for (size_t i = 0; a->refs && i < a->n_refs; i++) {
        SAME(str_same(a->refs[i].ref, b->refs[i].ref), "ref text");
        SAME(!a->refs[i].rule == !b->refs[i].rule &&
                 (!a->refs[i].rule ||
                  a->refs[i].rule->index == b->refs[i].rule->index),
             "ref rule");
        SAME(!a->refs[i].corr == !b->refs[i].corr &&
                 (!a->refs[i].corr ||
                  a->refs[i].corr->index == b->refs[i].corr->index),
             "ref correlation");
    }
    SAME(a->n_group_by == b->n_group_by &&
             strv_same(a->group_by, b->group_by, a->n_group_by),
         "group-by");
    SAME(strv_same(a->group_fields, b->group_fields, a->n_group_by * a->n_refs),
         "group fields");
    SAME(a->n_fields == b->n_fields &&
             strv_same(a->fields, b->fields, a->n_fields),
         "fields");
    SAME(strv_same(a->value_fields, b->value_fields, a->n_fields * a->n_refs),
         "value fields");
    SAME(a->timespan_ms == b->timespan_ms, "timespan");
    SAME(a->n_criteria == b->n_criteria && !a->criteria == !b->criteria,
         "criteria");
    for (size_t i = 0; a->criteria && i < a->n_criteria; i++)
        SAME(a->criteria[i].op == b->criteria[i].op &&
                 a->criteria[i].value == b->criteria[i].value,
             "criterion");
    if (!expr_same(a->expr, b->expr)) return false;
    SAME(a->generate == b->generate && a->correlated == b->correlated &&
             a->generated == b->generated,
         "generate");
    SAME(a->n_tags == b->n_tags && strv_same(a->tags, b->tags, a->n_tags),
         "tags");
    SAME(a->n_tactics == b->n_tactics &&
             strv_same(a->tactics, b->tactics, a->n_tactics),
         "tactics");
    SAME(a->n_techniques == b->n_techniques &&
             strv_same(a->techniques, b->techniques, a->n_techniques),
         "techniques");
    SAME(a->index == b->index, "index");
    return true;
}

static bool records_same(const struct cf_rule_rejection *a,
                         const struct cf_rule_rejection *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        snprintf(where, sizeof where, "record %zu: %s", i,
                 a[i].reason ? a[i].reason : "?");
        SAME(str_same(a[i].path, b[i].path) && str_same(a[i].id, b[i].id) &&
                 str_same(a[i].reason, b[i].reason),
             "rejection or conversion");
    }
    return true;
}

static bool book_same(const struct cf_rulebook *a,
                      const struct cf_rulebook *b) {
    snprintf(where, sizeof where, "counts");
    SAME(a->n_rules == b->n_rules, "number of rules");
    SAME(a->n_correlations == b->n_correlations, "number of correlations");
    SAME(a->n_rejected == b->n_rejected, "number of rejections");
    SAME(a->n_converted == b->n_converted, "number of conversions");
    SAME(a->n_documents == b->n_documents && a->n_files == b->n_files &&
             a->n_filters == b->n_filters,
         "documents, files, filters");
    for (size_t i = 0; i < a->n_rules; i++)
        if (!rule_same(a->rules[i], b->rules[i])) return false;
    for (size_t i = 0; i < a->n_correlations; i++)
        if (!corr_same(a->correlations[i], b->correlations[i])) return false;
    return records_same(a->rejected, b->rejected, a->n_rejected) &&
           records_same(a->converted, b->converted, a->n_converted);
}

/* ---- helpers ------------------------------------------------------------ */

static struct cf_config *config_with(const char *cache_dir,
                                     const char *placeholders_json) {
    char err[256], text[1024];
    json_error_t je;
    snprintf(text, sizeof text, "{\"cache\": {\"dir\": \"%s\"}%s%s}", cache_dir,
             placeholders_json ? ", \"placeholders\": " : "",
             placeholders_json ? placeholders_json : "");
    json_t *root = json_loads(text, 0, &je);
    assert_non_null(root);
    struct cf_config *cfg = cf_config_from_json(root, "test", err, sizeof err);
    json_decref(root);
    if (!cfg) fail_msg("config: %s", err);
    return cfg;
}

/* Loads `paths` (NULL-terminated) and finishes the book; what the loader
 * wrote on stderr goes to `errout` (may be NULL). */
static struct cf_rulebook *load(const char *const *paths,
                                const struct cf_config *cfg, char *errout,
                                size_t errout_size) {
    char err[1024];
    char tmp[] = "/tmp/cf_test_rbc_err_XXXXXX";
    int fd = mkstemp(tmp), saved = dup(2);
    assert_true(fd >= 0 && saved >= 0);
    fflush(stderr);
    dup2(fd, 2);
    struct cf_rulebook *rb = cf_rulebook_new();
    assert_non_null(rb);
    cf_err_t rc = CF_OK;
    for (size_t i = 0; paths[i] && rc == CF_OK; i++)
        rc = cf_rulebook_load(rb, paths[i], cfg, err, sizeof err);
    if (rc == CF_OK) rc = cf_rulebook_finish(rb, err, sizeof err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (errout) {
        ssize_t n = pread(fd, errout, errout_size - 1, 0);
        errout[n > 0 ? n : 0] = '\0';
    }
    close(fd);
    unlink(tmp);
    if (rc != CF_OK) fail_msg("load: %s", err);
    return rb;
}

static void write_file(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Rewrites the file in place, same size, and sets its mtime back to what
 * it was to the nanosecond: only ctime (which no one can set) changes. */
static void edit_same_size(const char *dir, const char *name, const char *from,
                           const char *to) {
    char path[4200], text[8192];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(stat(path, &st), 0);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    char *at = strstr(text, from);
    assert_non_null(at);
    assert_int_equal(strlen(from), strlen(to));
    memcpy(at, to, strlen(to));
    rewind(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    struct stat after;
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_size, st.st_size);
    assert_int_equal(after.st_mtim.tv_sec, st.st_mtim.tv_sec);
    assert_int_equal(after.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
}

/* The one file in `dir` whose name ends in `suffix`, in path. */
static int find_cache_file(const char *dir, const char *suffix, char *path,
                           size_t size) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls %s/*%s 2>/dev/null", dir, suffix);
    FILE *p = popen(cmd, "r");
    int n = 0;
    char line[4200];
    while (p && fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(path, size, "%s", line);
        n++;
    }
    if (p) pclose(p);
    return n;
}

static bool contains(const unsigned char *text, size_t len, const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; text && i + n <= len; i++)
        if (memcmp(text + i, s, n) == 0) return true;
    return false;
}

/* True when some pattern of some rule has text containing `s`. */
static bool has_pattern(const struct cf_rulebook *rb, const char *s) {
    for (size_t i = 0; i < rb->n_rules; i++) {
        const struct cf_sigma_rule *r = rb->rules[i];
        for (size_t j = 0; j < r->n_searches; j++)
            for (size_t k = 0; k < r->searches[j].n_alts; k++) {
                const struct cf_sigma_conjunction *c = &r->searches[j].alts[k];
                for (size_t m = 0; m < c->n_conds; m++)
                    for (size_t v = 0; v < c->conds[m].n_values; v++)
                        for (size_t a = 0; a < c->conds[m].values[v].n_alts;
                             a++) {
                            const struct cf_sigma_pattern *p =
                                &c->conds[m].values[v].alts[a];
                            if (contains(p->text, p->len, s)) return true;
                        }
            }
    }
    return false;
}

static void rm_rf(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- the whole SigmaHQ set ---------------------------------------------- */

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_sigmahq_same(void **state) {
    (void)state;
    const char *shared = getenv("CF_SHARED_DIR");
    char dirs[3][4096];
    const char *names[] = {"rules", "rules-threat-hunting",
                           "rules-emerging-threats"};
    for (int i = 0; i < 3; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/data/sigma/%s",
                 shared ? shared : "../shared", names[i]);
        struct stat st;
        if (stat(dirs[i], &st) != 0) {
            if (cf_test_shared_missing(dirs[i]) == 77) skip();
            fail();
        }
    }
    const char *paths[] = {dirs[0], dirs[1], dirs[2], NULL};
    char cache[] = "/tmp/cf_test_rbc_XXXXXX";
    assert_non_null(mkdtemp(cache));
    struct cf_config *none = config_with("", NULL);
    struct cf_config *cached = config_with(cache, NULL);

    double t0 = cpu_now();
    struct cf_rulebook *parsed = load(paths, none, NULL, 0);
    double t1 = cpu_now();
    struct cf_rulebook *cold = load(paths, cached, NULL, 0);
    double t2 = cpu_now();
    struct cf_rulebook *warm = load(paths, cached, NULL, 0);
    double t3 = cpu_now();
    printf("SigmaHQ: %zu rule files, %zu rules; parsed %.3f s CPU, parsed "
           "and cached %.3f s, from the cache %.3f s\n",
           parsed->n_files, parsed->n_rules, t1 - t0, t2 - t1, t3 - t2);
    assert_true(parsed->n_rules > 3000);
    assert_int_equal(parsed->n_cached, 0);
    assert_int_equal(cold->n_cached, 0);
    assert_int_equal(warm->n_cached, warm->n_files);
    assert_true(book_same(parsed, cold));
    assert_true(book_same(parsed, warm));
    cf_rulebook_destroy(parsed);
    cf_rulebook_destroy(cold);
    cf_rulebook_destroy(warm);
    cf_config_destroy(none);
    cf_config_destroy(cached);
    rm_rf(cache);
}

/* ---- a small tree ------------------------------------------------------- */

static const char rule_a[] = "title: Alpha\n"
                             "id: 11111111-0000-0000-0000-000000000001\n"
                             "logsource: {product: windows, category: "
                             "process_creation}\n"
                             "detection:\n"
                             "  sel:\n"
                             "    CommandLine|contains: 'alpha1'\n"
                             "    Image|endswith: ['\\a.exe', '\\b.exe']\n"
                             "  cidr:\n"
                             "    DestinationIp|cidr: 10.0.0.0/8\n"
                             "  condition: sel and not cidr\n"
                             "tags: [attack.execution, attack.t1059.001]\n"
                             "level: high\n";

static const char rule_b[] = "title: Bravo\n"
                             "id: 11111111-0000-0000-0000-000000000002\n"
                             "name: bravo_rule\n"
                             "logsource: {product: windows, service: "
                             "security}\n"
                             "detection:\n"
                             "  sel:\n"
                             "    EventID: 4625\n"
                             "    TargetUserName|re: '^bravo1[0-9]+$'\n"
                             "  kw:\n"
                             "    - 'bravo-keyword'\n"
                             "  condition: 1 of sel* or kw\n";

/* A correlation, a document that is rejected, in one file. */
static const char corr_c[] = "title: Many Bravo\n"
                             "id: 11111111-0000-0000-0000-000000000003\n"
                             "correlation:\n"
                             "  type: event_count\n"
                             "  rules: [bravo_rule]\n"
                             "  group-by: [TargetUserName]\n"
                             "  timespan: 5m\n"
                             "  condition: {gte: 3}\n"
                             "---\n"
                             "title: No detection\n";

static const char filter_f[] = "title: Filter Alpha\n"
                               "id: 11111111-0000-0000-0000-000000000004\n"
                               "logsource: {product: windows, category: "
                               "process_creation}\n"
                               "filter:\n"
                               "  rules: [11111111-0000-0000-0000-000000000001]"
                               "\n"
                               "  sel:\n"
                               "    User: 'svc_ok'\n"
                               "  condition: not sel\n";

static const char legacy_d[] = "title: Legacy count\n"
                               "id: 11111111-0000-0000-0000-000000000005\n"
                               "logsource: {product: windows, service: "
                               "security}\n"
                               "detection:\n"
                               "  sel:\n"
                               "    EventID: 4740\n"
                               "  condition: sel | count() by Host > 5\n"
                               "  timeframe: 10m\n";

static const char expand_g[] = "title: Admins\n"
                               "id: 11111111-0000-0000-0000-000000000006\n"
                               "logsource: {product: windows, service: "
                               "security}\n"
                               "detection:\n"
                               "  sel:\n"
                               "    SubjectUserName|expand: '%admins%'\n"
                               "  condition: sel\n";

struct tree {
    char root[64], rules[128], cache[128];
    struct cf_config *none, *cached;
};

static void tree_setup(struct tree *t) {
    snprintf(t->root, sizeof t->root, "/tmp/cf_test_rbc_XXXXXX");
    assert_non_null(mkdtemp(t->root));
    snprintf(t->rules, sizeof t->rules, "%s/rules", t->root);
    snprintf(t->cache, sizeof t->cache, "%s/cache", t->root);
    assert_int_equal(mkdir(t->rules, 0755), 0);
    char sub[200];
    snprintf(sub, sizeof sub, "%s/sub", t->rules);
    assert_int_equal(mkdir(sub, 0755), 0);
    write_file(t->rules, "a.yml", rule_a);
    write_file(t->rules, "b.yml", rule_b);
    write_file(t->rules, "sub/c.yml", corr_c);
    write_file(t->rules, "sub/f.yml", filter_f);
    write_file(t->rules, "d.yml", legacy_d);
    write_file(t->rules, "g.yml", expand_g);
    t->none = config_with("", "{\"admins\": [\"alice\"]}");
    t->cached = config_with(t->cache, "{\"admins\": [\"alice\"]}");
}

static void tree_teardown(struct tree *t) {
    cf_config_destroy(t->none);
    cf_config_destroy(t->cached);
    rm_rf(t->root);
}

/* Loads the tree through the cache and without it; checks they are the
 * same and returns the cached one's count of files from the cache. */
static size_t load_both(struct tree *t, const struct cf_config *cached,
                        const struct cf_config *none, char *errout,
                        size_t errout_size, struct cf_rulebook **out) {
    const char *paths[] = {t->rules, NULL};
    struct cf_rulebook *a = load(paths, none, NULL, 0);
    struct cf_rulebook *b = load(paths, cached, errout, errout_size);
    assert_true(book_same(a, b));
    size_t n = b->n_cached;
    cf_rulebook_destroy(a);
    if (out)
        *out = b;
    else
        cf_rulebook_destroy(b);
    return n;
}

static void test_tree_contents(void **state) {
    (void)state;
    struct tree t;
    tree_setup(&t);
    struct cf_rulebook *rb;
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, &rb), 0);
    /* The tree exercises every part of the outcome. */
    assert_int_equal(rb->n_files, 6);
    assert_true(rb->n_rules >= 4);
    assert_true(rb->n_correlations >= 2); /* event_count + legacy */
    assert_int_equal(rb->n_converted, 1);
    assert_true(rb->n_rejected >= 1);
    assert_int_equal(rb->n_filters, 1);
    assert_true(has_pattern(rb, "alice"));
    cf_rulebook_destroy(rb);
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, &rb), 6);
    assert_int_equal(rb->n_converted, 1);
    assert_int_equal(rb->n_filters, 1);
    cf_rulebook_destroy(rb);
    tree_teardown(&t);
}

/* What forge_entry changes in an entry. */
enum forge {
    FORGE_STAT, /* its stored stat becomes `st`: how an edit in the same
                   timestamp tick as the read looks (the stat says nothing
                   changed) */
    FORGE_HASH, /* its stored content hash no longer matches the file */
    FORGE_BLOB  /* its outcome becomes bytes that do not decode */
};

/* Edits the entry for `rule_path` in cache file `file` and sets the
 * file's checksum to match (layout: rules/rulebook_cache.c), so only
 * what the entry says changes. */
static void forge_entry(const char *file, const char *rule_path,
                        enum forge what, const struct stat *st) {
    FILE *f = fopen(file, "r+b");
    assert_non_null(f);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    assert_true(n > 56 && n < sizeof buf);
    unsigned char *p = buf + 56, *end = buf + n;
    uint64_t count, v;
    memcpy(&count, p, 8);
    p += 8;
    bool found = false;
    for (uint64_t i = 0; i < count && p < end; i++) {
        memcpy(&v, p, 8);
        p += 8;
        bool match =
            v - 1 == strlen(rule_path) && memcmp(p, rule_path, v - 1) == 0;
        p += v - 1;
        if (match && what == FORGE_STAT) {
            uint64_t fs[7] = {
                (uint64_t)st->st_dev,          (uint64_t)st->st_ino,
                (uint64_t)st->st_size,         (uint64_t)st->st_mtim.tv_sec,
                (uint64_t)st->st_mtim.tv_nsec, (uint64_t)st->st_ctim.tv_sec,
                (uint64_t)st->st_ctim.tv_nsec};
            memcpy(p, fs, sizeof fs);
        }
        p += 7 * 8 + 8;
        if (match && what == FORGE_HASH) p[0] ^= 0xff;
        p += 32;
        memcpy(&v, p, 8);
        p += 8;
        if (match && what == FORGE_BLOB)
            memset(p, 0xff, v); /* a varint with no end */
        found = found || match;
        p += v;
    }
    assert_true(found);
    uint64_t crc = cf_cache_sum(buf + 56, n - 56);
    memcpy(buf + 48, &crc, sizeof crc);
    rewind(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* Rewrites the listing of directory `dir` in cache file `file` (layout:
 * rules/rulebook_cache.c) and sets the file's length and checksum to
 * match: with `st`, its stored stat becomes `st` (how a change in the
 * same timestamp tick as the listing looks); with `drop`, that name is
 * left out of it (a stale listing, to see whether the cache serves it). */
static void forge_listing(const char *file, const char *dir,
                          const struct stat *st, const char *drop) {
    static unsigned char buf[1 << 20], out[1 << 20];
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 56 && n < sizeof buf);
    unsigned char *p = buf + 56, *end = buf + n;
    uint64_t count, v;
    memcpy(&count, p, 8);
    p += 8;
    for (uint64_t i = 0; i < count && p < end; i++) { /* the entries */
        memcpy(&v, p, 8);
        p += 8 + (v - 1) + 7 * 8 + 8 + 32;
        memcpy(&v, p, 8);
        p += 8 + v;
    }
    size_t o = (size_t)(p - buf);
    memcpy(out, buf, o);
    memcpy(&count, p, 8);
    memcpy(out + o, p, 8);
    p += 8;
    o += 8;
    bool found = false;
    for (uint64_t i = 0; i < count && p < end; i++) {
        memcpy(&v, p, 8);
        bool match = v - 1 == strlen(dir) && memcmp(p + 8, dir, v - 1) == 0;
        size_t head = 8 + (v - 1) + 7 * 8 + 8;
        memcpy(out + o, p, head);
        if (match && st) {
            uint64_t fs[7] = {
                (uint64_t)st->st_dev,          (uint64_t)st->st_ino,
                (uint64_t)st->st_size,         (uint64_t)st->st_mtim.tv_sec,
                (uint64_t)st->st_mtim.tv_nsec, (uint64_t)st->st_ctim.tv_sec,
                (uint64_t)st->st_ctim.tv_nsec};
            memcpy(out + o + 8 + (v - 1), fs, sizeof fs);
        }
        p += head;
        o += head;
        uint64_t len;
        memcpy(&len, p, 8);
        p += 8;
        size_t len_at = o;
        o += 8;
        uint64_t kept = 0;
        for (const unsigned char *name = p; name < p + len;) {
            size_t nl = strlen((const char *)name) + 1;
            if (!(match && drop && strcmp((const char *)name, drop) == 0)) {
                memcpy(out + o, name, nl);
                o += nl;
                kept += nl;
            }
            name += nl;
        }
        memcpy(out + len_at, &kept, 8);
        p += len;
        found = found || match;
    }
    assert_true(found);
    assert_true(p == end);
    uint64_t body_len = o - 56, crc = cf_cache_sum(out + 56, body_len);
    memcpy(out + 40, &body_len, 8);
    memcpy(out + 48, &crc, 8);
    f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(out, 1, o, f), o);
    fclose(f);
}

/* Waits out the racy window and loads the tree, so that the cache holds
 * every file and listing as settled. */
static void wait_settled(struct tree *t) {
    struct timespec wait = {2, 200000000};
    nanosleep(&wait, NULL);
    load_both(t, t->cached, t->none, NULL, 0, NULL);
}

static void add_echo(struct tree *t, const char *name) {
    char extra[sizeof rule_a + 16];
    snprintf(extra, sizeof extra, "%s", rule_a);
    memcpy(strstr(extra, "000000000001"), "000000000009", 12);
    memcpy(strstr(extra, "alpha1"), "echo-9", 6);
    write_file(t->rules, name, extra);
}

/* Loads the tree through the cache and without (load_both) and checks
 * the cached load: `cached` files from the cache of `files`, a pattern
 * containing `has` and none containing `lacks` (either may be NULL). */
static void check_load(struct tree *t, size_t cached, size_t files,
                       const char *has, const char *lacks) {
    struct cf_rulebook *rb;
    assert_int_equal(load_both(t, t->cached, t->none, NULL, 0, &rb), cached);
    assert_int_equal(rb->n_files, files);
    if (has) assert_true(has_pattern(rb, has));
    if (lacks) assert_false(has_pattern(rb, lacks));
    cf_rulebook_destroy(rb);
}

/* A settled directory's listing is served from the cache (a listing
 * forged to lack a file leaves it out), and only while the directory's
 * stat is the one listed: a name added, removed or renamed since
 * changes its mtime and ctime, and it is read again. */
static void test_listing_settled(void **state) {
    (void)state;
    struct tree t;
    tree_setup(&t);
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 0);
    wait_settled(&t);
    char file[4200], path[300];
    assert_int_equal(find_cache_file(t.cache, ".rules", file, sizeof file), 1);
    forge_listing(file, t.rules, NULL, "b.yml");
    const char *paths[] = {t.rules, NULL};
    struct cf_rulebook *rb = load(paths, t.cached, NULL, 0);
    assert_int_equal(rb->n_files, 5); /* the forged listing was used */
    assert_false(has_pattern(rb, "bravo1"));
    cf_rulebook_destroy(rb);
    /* A name removed from the root: its listing is read again, b.yml is
     * back (parsed: the load above dropped its entry), a.yml gone. */
    snprintf(path, sizeof path, "%s/a.yml", t.rules);
    assert_int_equal(unlink(path), 0);
    check_load(&t, 4, 5, "bravo1", "alpha1");
    /* A file added to the settled sub/. */
    wait_settled(&t);
    add_echo(&t, "sub/e.yml");
    check_load(&t, 5, 6, "echo-9", NULL);
    /* Renamed within the settled sub/, to a name the loader skips. */
    wait_settled(&t);
    char to[300];
    snprintf(path, sizeof path, "%s/sub/e.yml", t.rules);
    snprintf(to, sizeof to, "%s/sub/e.txt", t.rules);
    assert_int_equal(rename(path, to), 0);
    check_load(&t, 5, 5, NULL, "echo-9");
    tree_teardown(&t);
}

/* A name added in the same timestamp tick as the listing leaves the
 * directory's stat as listed (forged here): within CF_RBC_RACY_NS of
 * its last change a directory is read again all the same. */
static void test_listing_racy(void **state) {
    (void)state;
    struct tree t;
    tree_setup(&t);
    char file[4200];
    struct stat st;
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 0);
    add_echo(&t, "e.yml");
    assert_int_equal(stat(t.rules, &st), 0);
    assert_int_equal(find_cache_file(t.cache, ".rules", file, sizeof file), 1);
    forge_listing(file, t.rules, &st, NULL);
    check_load(&t, 6, 7, "echo-9", NULL);
    tree_teardown(&t);
}

/* An edit right after the cache was written that the stat cannot show
 * (same tick): the file changed within CF_RBC_RACY_NS of being read, so
 * its content is compared all the same. */
static void test_racy_edit(void **state) {
    (void)state;
    struct tree t;
    tree_setup(&t);
    struct cf_rulebook *rb;
    char file[4200], path[300];
    struct stat st;
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 0);
    edit_same_size(t.rules, "a.yml", "alpha1", "alpha2");
    snprintf(path, sizeof path, "%s/a.yml", t.rules);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(find_cache_file(t.cache, ".rules", file, sizeof file), 1);
    forge_entry(file, path, FORGE_STAT, &st);
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, &rb), 5);
    assert_true(has_pattern(rb, "alpha2"));
    assert_false(has_pattern(rb, "alpha1"));
    cf_rulebook_destroy(rb);
    tree_teardown(&t);
}

/* Long after: the stat is trusted, and an edit that keeps size and mtime
 * still changes ctime. */
static void test_old_file_edit(void **state) {
    (void)state;
    struct tree t;
    tree_setup(&t);
    struct cf_rulebook *rb;
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 0);
    /* Past the racy window, the next load verifies the files and
     * rewrites the cache with them as settled. */
    struct timespec wait = {2, 200000000};
    nanosleep(&wait, NULL);
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 6);
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 6);
    /* Settled, an unchanged stat is trusted: the content is not read, so
     * a stored hash that no longer matches goes unnoticed (read and
     * compared, it would have the file parsed again: 5). */
    char file[4200], path[300];
    snprintf(path, sizeof path, "%s/d.yml", t.rules);
    assert_int_equal(find_cache_file(t.cache, ".rules", file, sizeof file), 1);
    forge_entry(file, path, FORGE_HASH, NULL);
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 6);
    edit_same_size(t.rules, "b.yml", "bravo1", "bravo7");
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, &rb), 5);
    assert_true(has_pattern(rb, "bravo7"));
    assert_false(has_pattern(rb, "bravo1"));
    cf_rulebook_destroy(rb);
    /* Touched without a change: same content, served from the cache. */
    snprintf(path, sizeof path, "%s/a.yml", t.rules);
    assert_int_equal(utimensat(AT_FDCWD, path, NULL, 0), 0);
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 6);
    tree_teardown(&t);
}

static void test_add_remove(void **state) {
    (void)state;
    struct tree t;
    tree_setup(&t);
    struct cf_rulebook *rb;
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 0);
    char extra[sizeof rule_a + 16];
    snprintf(extra, sizeof extra, "%s", rule_a);
    memcpy(strstr(extra, "000000000001"), "000000000009", 12);
    memcpy(strstr(extra, "alpha1"), "echo-9", 6);
    write_file(t.rules, "sub/e.yml", extra);
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, &rb), 6);
    assert_int_equal(rb->n_files, 7);
    assert_true(has_pattern(rb, "echo-9"));
    cf_rulebook_destroy(rb);
    char path[300];
    snprintf(path, sizeof path, "%s/b.yml", t.rules);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, &rb), 6);
    assert_int_equal(rb->n_files, 6);
    assert_false(has_pattern(rb, "bravo1"));
    cf_rulebook_destroy(rb);
    tree_teardown(&t);
}

static void test_placeholders_change(void **state) {
    (void)state;
    struct tree t;
    tree_setup(&t);
    struct cf_rulebook *rb;
    struct cf_config *bob_none = config_with("", "{\"admins\": [\"bob\"]}");
    struct cf_config *bob = config_with(t.cache, "{\"admins\": [\"bob\"]}");
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 0);
    assert_int_equal(load_both(&t, bob, bob_none, NULL, 0, &rb), 0);
    assert_true(has_pattern(rb, "bob"));
    assert_false(has_pattern(rb, "alice"));
    cf_rulebook_destroy(rb);
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, &rb), 6);
    assert_true(has_pattern(rb, "alice"));
    cf_rulebook_destroy(rb);
    cf_config_destroy(bob_none);
    cf_config_destroy(bob);
    tree_teardown(&t);
}

static void damage(const char *path, bool truncate_it) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if (truncate_it) {
        assert_int_equal(truncate(path, st.st_size / 2), 0);
        return;
    }
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, st.st_size / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, st.st_size / 2, SEEK_SET);
    fputc(c ^ 0x20, f);
    fclose(f);
}

static void test_damaged_cache(void **state) {
    (void)state;
    struct tree t;
    tree_setup(&t);
    char file[4200], err[2048];
    assert_int_equal(load_both(&t, t.cached, t.none, NULL, 0, NULL), 0);
    assert_int_equal(find_cache_file(t.cache, ".rules", file, sizeof file), 1);
    /* One entry that does not decode, the file intact: that rule file is
     * parsed, the others still come from the cache. */
    char path[300];
    snprintf(path, sizeof path, "%s/b.yml", t.rules);
    forge_entry(file, path, FORGE_BLOB, NULL);
    assert_int_equal(load_both(&t, t.cached, t.none, err, sizeof err, NULL), 5);
    assert_non_null(strstr(err, "the entry for"));
    assert_non_null(strstr(err, "b.yml does not decode; parsing the file"));
    assert_int_equal(load_both(&t, t.cached, t.none, err, sizeof err, NULL), 6);
    assert_string_equal(err, "");
    for (int truncated = 0; truncated < 2; truncated++) {
        damage(file, truncated);
        assert_int_equal(load_both(&t, t.cached, t.none, err, sizeof err, NULL),
                         0);
        assert_non_null(strstr(err, "rule file cache"));
        assert_non_null(strstr(err, "is not usable"));
        assert_non_null(strstr(err, truncated ? "truncated" : "checksum"));
        /* rewritten: the next load is served again, quietly */
        assert_int_equal(load_both(&t, t.cached, t.none, err, sizeof err, NULL),
                         6);
        assert_string_equal(err, "");
    }
    tree_teardown(&t);
}

static void test_unwritable_cache(void **state) {
    (void)state;
    struct tree t;
    tree_setup(&t);
    char err[2048], dir[300];
    /* A directory under a regular file cannot be made, even by root. */
    write_file(t.root, "plain", "x");
    snprintf(dir, sizeof dir, "%s/plain/cache", t.root);
    struct cf_config *bad = config_with(dir, "{\"admins\": [\"alice\"]}");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(load_both(&t, bad, t.none, err, sizeof err, NULL), 0);
        assert_non_null(strstr(err, "rule file cache not written"));
    }
    cf_config_destroy(bad);
    if (geteuid() != 0) { /* root writes into a read-only directory */
        assert_int_equal(mkdir(t.cache, 0555), 0);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(
                load_both(&t, t.cached, t.none, err, sizeof err, NULL), 0);
            assert_non_null(strstr(err, "rule file cache not written"));
        }
        chmod(t.cache, 0755);
    }
    tree_teardown(&t);
}

/* A pipe given as the rule path (/dev/fd/N, /dev/stdin) is read every
 * time, even with the same content: its stat says nothing of what it
 * will hold. */
static void test_pipe_not_cached(void **state) {
    (void)state;
    struct tree t;
    tree_setup(&t);
    for (int round = 0; round < 2; round++) {
        int fds[2];
        char path[64];
        assert_int_equal(pipe(fds), 0);
        /* small enough for the pipe's buffer: no writer process needed */
        assert_int_equal(write(fds[1], rule_a, strlen(rule_a)),
                         (ssize_t)strlen(rule_a));
        close(fds[1]);
        snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
        const char *paths[] = {path, NULL};
        struct cf_rulebook *rb = load(paths, t.cached, NULL, 0);
        close(fds[0]);
        assert_int_equal(rb->n_files, 1);
        assert_int_equal(rb->n_rules, 1);
        assert_int_equal(rb->n_cached, 0);
        cf_rulebook_destroy(rb);
    }
    tree_teardown(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_contents),
        cmocka_unit_test(test_racy_edit),
        cmocka_unit_test(test_old_file_edit),
        cmocka_unit_test(test_add_remove),
        cmocka_unit_test(test_listing_settled),
        cmocka_unit_test(test_listing_racy),
        cmocka_unit_test(test_placeholders_change),
        cmocka_unit_test(test_damaged_cache),
        cmocka_unit_test(test_unwritable_cache),
        cmocka_unit_test(test_pipe_not_cached),
        cmocka_unit_test(test_sigmahq_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
