/*
 * test_dropped.c - nothing is skipped without being counted.
 *
 *  - A failed scan is counted, never a silent missed detection: an
 *    hs_scan error (forced by interposing hs_scan, which this executable
 *    defines, and passing the real one a NULL scratch so Hyperscan itself
 *    answers HS_INVALID), a PCRE2 error (the match limit, reached by a
 *    regex with catastrophic backtracking that Hyperscan refuses), and a
 *    keyword literal scan that cannot get memory.  The pipeline reports
 *    them as dropped.scan_error and says so on stderr once.
 *  - A field mapped to more names than the compiler once had room for
 *    (64) is looked up under every one of them.
 *  - An alert a correlation skips is counted under dropped.
 *  - Under an allocation failure at every point of a run with a
 *    correlation, the correlation alert is written or something is
 *    counted (dropped or dead-lettered).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <hs/hs.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "connector.h"
#include "event.h"
#include "pipeline.h"
#include "ruleset.h"
#include "sigma.h"

/* ---- hs_scan, interposed ---------------------------------------------- */

static int fail_scans; /* test-only: make every hs_scan fail while set */

hs_error_t hs_scan(const hs_database_t *db, const char *data,
                   unsigned int length, unsigned int flags,
                   hs_scratch_t *scratch, match_event_handler on_event,
                   void *context) {
    typedef hs_error_t (*scan_fn)(const hs_database_t *, const char *,
                                  unsigned int, unsigned int, hs_scratch_t *,
                                  match_event_handler, void *);
    static scan_fn real;
    if (!real) {
        *(void **)&real = dlsym(RTLD_NEXT, "hs_scan");
        assert_non_null(real);
    }
    /* Hyperscan's own check rejects a missing scratch: a real error. */
    return real(db, data, length, flags, fail_scans ? NULL : scratch, on_event,
                context);
}

/* ---- helpers ------------------------------------------------------------ */

struct book {
    struct cf_config *cfg;
    struct cf_rulebook *rb;
    struct cf_ruleset *rs;
};

static void book_load(struct book *b, const char *yaml,
                      json_t *field_mappings) {
    char path[] = "/tmp/cf_test_dropped_XXXXXX.yml", err[512] = "";
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    size_t len = strlen(yaml);
    assert_int_equal(write(fd, yaml, len), (ssize_t)len);
    close(fd);
    b->cfg = cf_config_default();
    assert_non_null(b->cfg);
    free(b->cfg->cache_dir);
    b->cfg->cache_dir = strdup(""); /* no cache: nothing left behind */
    if (field_mappings)
        json_object_set_new(b->cfg->root, "field_mappings", field_mappings);
    b->rb = cf_rulebook_new();
    assert_int_equal(cf_rulebook_load(b->rb, path, b->cfg, err, sizeof err),
                     CF_OK);
    assert_int_equal(cf_rulebook_finish(b->rb, err, sizeof err), CF_OK);
    unlink(path);
    assert_int_equal(b->rb->n_rejected, 0);
    b->rs = cf_ruleset_compile(b->rb, b->cfg, err, sizeof err);
    if (!b->rs) fail_msg("compile: %s", err);
}

static void book_free(struct book *b) {
    cf_ruleset_destroy(b->rs);
    cf_rulebook_destroy(b->rb);
    cf_config_destroy(b->cfg);
}

static void count_match(const struct cf_sigma_rule *rule, void *opaque) {
    (void)rule;
    ++*(int *)opaque;
}

/* Matches one JSON event; returns how many rules matched. */
static int match_json(struct cf_matcher *m, const char *json) {
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_event ev;
    const char *why = NULL;
    int n = 0;
    assert_non_null(dec);
    cf_event_init(&ev);
    assert_int_equal(cf_event_decode(dec, &ev, json, strlen(json), NULL, &why),
                     CF_OK);
    int rc = cf_matcher_match(m, &ev, count_match, &n);
    assert_int_equal(rc, n);
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
    return n;
}

#define RULE(id, title, detection)                                             \
    "title: " title "\n"                                                       \
    "id: " id "\n"                                                             \
    "level: medium\n"                                                          \
    "tags: [attack.discovery]\n"                                               \
    "logsource: {product: chainfuse_test}\n"                                   \
    "detection:\n" detection

static const char whoami_rule[] =
    RULE("11111111-2222-4333-8444-555555555555", "Whoami",
         "  selection:\n"
         "    Image|endswith: '\\whoami.exe'\n"
         "  condition: selection\n");

#define WHOAMI_EVENT(host, time)                                               \
    "{\"Hostname\":\"" host                                                    \
    "\",\"Image\":\"C:\\\\Windows\\\\whoami.exe\"" time "}"

/* ---- scan errors, at the matcher ---------------------------------------- */

static void test_hs_scan_error_is_counted(void **state) {
    (void)state;
    struct book b;
    const char *why = NULL;
    book_load(&b, whoami_rule, NULL);
    struct cf_matcher *m = cf_matcher_new(b.rs);
    assert_non_null(m);

    assert_int_equal(match_json(m, WHOAMI_EVENT("A", "")), 1);
    assert_int_equal(cf_matcher_scan_errors(m, &why), 0);
    assert_string_equal(why, "");

    /* A value scanned before is not scanned again (the matcher's memo):
     * the failing scans are of values not seen yet. */
    static const char other[] =
        "{\"Hostname\":\"B\",\"Image\":\"C:\\\\Temp\\\\whoami.exe\"}";
    fail_scans = 1;
    int failed_a = match_json(m, WHOAMI_EVENT("A", ""));
    int failed_b = match_json(m, other);
    fail_scans = 0;
    assert_int_equal(failed_a, 1); /* memo: no scan, no failure */
    assert_int_equal(failed_b, 0);
    /* one per event, whatever the number of scans that failed in it */
    assert_int_equal(cf_matcher_scan_errors(m, &why), 1);
    assert_non_null(strstr(why, "Hyperscan"));
    assert_non_null(strstr(why, "HS_INVALID"));

    /* A failed scan is not remembered as "no match". */
    assert_int_equal(match_json(m, other), 1);
    assert_int_equal(cf_matcher_scan_errors(m, NULL), 1);
    cf_matcher_destroy(m);
    book_free(&b);
}

static void test_pcre2_error_is_counted(void **state) {
    (void)state;
    struct book b;
    const char *why = NULL;
    /* The backreference makes Hyperscan refuse it, so PCRE2 runs it,
     * and (a+)+ against a long run of a's, then "!b" (a b, so PCRE2
     * cannot rule the subject out at once, but not where it is needed),
     * backtracks past PCRE2's match limit. */
    book_load(&b,
              RULE("22222222-3333-4444-8555-666666666666", "Backtracking",
                   "  selection:\n"
                   "    CommandLine|re: '^(a+)+\\1b'\n"
                   "  condition: selection\n"),
              NULL);
    struct cf_matcher *m = cf_matcher_new(b.rs);
    assert_non_null(m);
    assert_int_equal(match_json(m, "{\"CommandLine\":\"aab\"}"), 1);
    assert_int_equal(match_json(m, "{\"CommandLine\":\"xyz\"}"), 0);
    assert_int_equal(cf_matcher_scan_errors(m, NULL), 0);
    char ev[128];
    snprintf(ev, sizeof ev, "{\"CommandLine\":\"%.40s!b\"}",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(match_json(m, ev), 0);
    assert_int_equal(cf_matcher_scan_errors(m, &why), 1);
    assert_non_null(strstr(why, "PCRE2"));
    assert_non_null(strstr(why, "CommandLine"));
    cf_matcher_destroy(m);
    book_free(&b);
}

static void test_literal_scan_without_memory_is_counted(void **state) {
    (void)state;
    struct book b;
    const char *why = NULL;
    /* A keyword *literal* is searched in all values at once, in a buffer
     * the matcher grows to the largest event seen. */
    book_load(&b,
              RULE("33333333-4444-4555-8666-777777777777", "Keyword",
                   "  keywords:\n"
                   "    - '*mimikatz*'\n"
                   "  condition: keywords\n"),
              NULL);
    struct cf_matcher *m = cf_matcher_new(b.rs);
    assert_non_null(m);
    assert_int_equal(match_json(m, "{\"a\":\"run mimikatz\"}"), 1);

    char big[2048];
    int n = snprintf(big, sizeof big, "{\"a\":\"run mimikatz\",\"b\":\"");
    memset(big + n, 'x', 1500);
    snprintf(big + n + 1500, sizeof big - (size_t)n - 1500, "\"}");
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_event ev;
    const char *reason = NULL;
    int hits = 0;
    cf_event_init(&ev);
    assert_int_equal(cf_event_decode(dec, &ev, big, strlen(big), NULL, &reason),
                     CF_OK);
    cf_alloc_fail_after(0); /* the buffer cannot grow */
    cf_matcher_match(m, &ev, count_match, &hits);
    cf_alloc_fail_after(-1);
    assert_int_equal(hits, 0);
    assert_int_equal(cf_matcher_scan_errors(m, &why), 1);
    assert_non_null(strstr(why, "out of memory"));
    /* with memory it is found again */
    cf_matcher_match(m, &ev, count_match, &hits);
    assert_int_equal(hits, 1);
    assert_int_equal(cf_matcher_scan_errors(m, NULL), 1);
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
    cf_matcher_destroy(m);
    book_free(&b);
}

/* ---- field mappings ------------------------------------------------------ */

static void test_field_mapped_to_many_names(void **state) {
    (void)state;
    struct book b;
    json_t *names = json_array();
    char name[32], ev[160];
    for (int i = 0; i < 70; i++) {
        snprintf(name, sizeof name, "alias%d", i);
        json_array_append_new(names, json_string(name));
    }
    json_t *fm = json_object();
    json_object_set_new(fm, "Image", names);
    book_load(&b, whoami_rule, fm);
    struct cf_matcher *m = cf_matcher_new(b.rs);
    assert_non_null(m);
    /* Image itself, the first alias and the 70th, the 71st name. */
    assert_int_equal(match_json(m, WHOAMI_EVENT("A", "")), 1);
    const int probe[] = {0, 62, 63, 64, 69};
    for (size_t i = 0; i < CF_ARRAY_LEN(probe); i++) {
        snprintf(ev, sizeof ev, "{\"alias%d\":\"C:\\\\Windows\\\\whoami.exe\"}",
                 probe[i]);
        if (match_json(m, ev) != 1) fail_msg("alias%d not looked up", probe[i]);
    }
    assert_int_equal(cf_matcher_scan_errors(m, NULL), 0);
    cf_matcher_destroy(m);
    book_free(&b);
}

/* ---- through the pipeline ------------------------------------------------ */

struct mem_input {
    struct cf_input in;
    const char *const *lines;
    size_t n, next;
};

static cf_io_status mem_read(struct cf_input *in, struct cf_record *rec) {
    struct mem_input *mi = in->ctx;
    if (mi->next >= mi->n) return CF_IO_EOF;
    memset(rec, 0, sizeof *rec);
    rec->data = mi->lines[mi->next];
    rec->len = strlen(mi->lines[mi->next]);
    rec->pos.source = "memory";
    rec->pos.partition = -1;
    rec->pos.offset = (int64_t)++mi->next;
    return CF_IO_OK;
}

static const struct cf_input_ops mem_input_ops = {.name = "memory",
                                                  .read = mem_read};

struct mem_output {
    struct cf_output out;
    json_t *records;
};

static cf_io_status mem_write(struct cf_output *out,
                              const struct cf_out_record *rec) {
    struct mem_output *mo = out->ctx;
    json_t *r = json_loadb(rec->json, rec->len, 0, NULL);
    if (!r) return CF_IO_FAIL; /* under fault injection too */
    if (json_array_append_new(mo->records, r)) return CF_IO_FAIL;
    return CF_IO_OK;
}

static const struct cf_output_ops mem_output_ops = {.name = "memory",
                                                    .write = mem_write};

static void mem_output_init(struct mem_output *mo) {
    memset(mo, 0, sizeof *mo);
    mo->out.ops = &mem_output_ops;
    mo->out.ctx = mo;
    mo->records = json_array();
}

struct run {
    struct mem_output out, dead;
    json_t *stats;
    cf_err_t rc;
};

/* Runs `lines` through a pipeline over `b`.  With fail_after >= 0 the
 * allocations of the run (not of the setup) fail from that one on. */
static bool run_lines(struct book *b, const char *const *lines, size_t n,
                      long fail_after, struct run *r) {
    char err[256];
    struct mem_input mi = {
        .in = {.ops = &mem_input_ops}, .lines = lines, .n = n};
    mi.in.ctx = &mi;
    mem_output_init(&r->out);
    mem_output_init(&r->dead);
    struct cf_pipeline_setup setup = {.cfg = b->cfg,
                                      .rb = b->rb,
                                      .rs = b->rs,
                                      .out = &r->out.out,
                                      .dead_letter = &r->dead.out};
    struct cf_pipeline *p = cf_pipeline_new(&setup, err, sizeof err);
    assert_non_null(p);
    if (fail_after >= 0) cf_alloc_fail_after(fail_after);
    r->rc = cf_pipeline_run(p, &mi.in, err, sizeof err);
    if (r->rc == CF_OK) r->rc = cf_pipeline_finish(p, err, sizeof err);
    bool refused = fail_after >= 0 && cf_alloc_failures() > 0;
    cf_alloc_fail_after(-1);
    r->stats = cf_pipeline_stats(p);
    cf_pipeline_destroy(p);
    return refused;
}

static void run_free(struct run *r) {
    json_decref(r->out.records);
    json_decref(r->dead.records);
    json_decref(r->stats);
}

static json_int_t dropped(const struct run *r, const char *reason) {
    const json_t *v =
        json_object_get(json_object_get(r->stats, "dropped"), reason);
    if (!json_is_integer(v)) fail_msg("dropped.%s missing", reason);
    return json_integer_value(v);
}

static json_int_t dropped_total(const struct run *r) {
    const char *k;
    const json_t *v;
    json_int_t sum = 0;
    json_object_foreach(json_object_get(r->stats, "dropped"), k, v) sum +=
        json_integer_value(v);
    return sum;
}

/* Reads everything written to stderr while fn runs. */
static char *capture_stderr(void (*fn)(void *), void *arg) {
    char path[] = "/tmp/cf_test_dropped_err_XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    assert_true(fd >= 0 && saved >= 0);
    fflush(stderr);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    fn(arg);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    static char text[4096];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return text;
}

struct scan_run {
    struct book *b;
    struct run r;
};

static void run_failing_scans(void *arg) {
    struct scan_run *sr = arg;
    static const char *const lines[] = {
        WHOAMI_EVENT("A", ""), WHOAMI_EVENT("B", ""), WHOAMI_EVENT("C", "")};
    fail_scans = 1;
    run_lines(sr->b, lines, CF_ARRAY_LEN(lines), -1, &sr->r);
    fail_scans = 0;
}

static void test_pipeline_reports_scan_errors(void **state) {
    (void)state;
    struct book b;
    struct scan_run sr = {.b = &b};
    book_load(&b, whoami_rule, NULL);
    char *err = capture_stderr(run_failing_scans, &sr);
    assert_int_equal(sr.r.rc, CF_OK);
    assert_int_equal(json_integer_value(json_object_get(sr.r.stats, "events")),
                     3);
    assert_int_equal(json_integer_value(json_object_get(sr.r.stats, "alerts")),
                     0);
    assert_int_equal(dropped(&sr.r, "scan_error"), 3);
    /* said once, naming the failure and where it first happened */
    const char *at = strstr(err, "HS_INVALID");
    if (!at) fail_msg("stderr does not name the scan error: %s", err);
    assert_null(strstr(at + 1, "HS_INVALID"));
    assert_non_null(strstr(err, "memory:1"));
    assert_non_null(strstr(err, "dropped.scan_error"));
    run_free(&sr.r);
    book_free(&b);
}

static const char count_yaml[] = RULE(
    "11111111-2222-4333-8444-555555555555", "Whoami",
    "  selection:\n"
    "    Image|endswith: '\\whoami.exe'\n"
    "  condition: selection\n") "---\n"
                                "title: Whoami twice\n"
                                "id: 44444444-5555-4666-8777-888888888888\n"
                                "correlation:\n"
                                "    type: event_count\n"
                                "    rules: "
                                "[11111111-2222-4333-8444-555555555555]\n"
                                "    group-by: [Hostname]\n"
                                "    timespan: 1h\n"
                                "    condition: {gte: 2}\n";

#define AT(t) ",\"UtcTime\":\"2026-11-02 08:0" t ":00.000\""

static const char *const count_lines[] = {
    WHOAMI_EVENT("A", AT("0")), WHOAMI_EVENT("A", ""),
    WHOAMI_EVENT("A", AT("1")), WHOAMI_EVENT("B", AT("2"))};

static size_t count_correlation_alerts(const json_t *records) {
    size_t i, n = 0;
    const json_t *r;
    json_array_foreach(records, i, r) n +=
        json_object_get(r, "correlation") != NULL;
    return n;
}

static void test_correlation_skips_are_counted(void **state) {
    (void)state;
    struct book b;
    struct run r;
    book_load(&b, count_yaml, NULL);
    run_lines(&b, count_lines, CF_ARRAY_LEN(count_lines), -1, &r);
    assert_int_equal(r.rc, CF_OK);
    assert_int_equal(json_integer_value(json_object_get(r.stats, "alerts")), 4);
    assert_int_equal(count_correlation_alerts(r.out.records), 1);
    assert_int_equal(
        json_integer_value(json_object_get(r.stats, "correlation_alerts")), 1);
    /* the alert without event time is not counted by the correlation,
     * and kept out of incidents */
    assert_int_equal(dropped(&r, "correlation_no_time"), 1);
    assert_int_equal(dropped(&r, "fusion_no_time"), 1);
    assert_int_equal(dropped_total(&r), 2);
    run_free(&r);
    book_free(&b);
}

static size_t count_reason(const json_t *records, const char *reason) {
    size_t i, n = 0;
    const json_t *r;
    json_array_foreach(records, i, r) {
        const char *why = json_string_value(json_object_get(r, "reason"));
        n += why && strcmp(why, reason) == 0;
    }
    return n;
}

/* From every allocation of the run on, allocations fail: every
 * correlation alert raised is written, dead-lettered or counted as
 * dropped, and when none was raised, something upstream was counted. */
static void test_out_of_memory_never_silent(void **state) {
    (void)state;
    struct book b;
    struct run r;
    unsigned long silent = 0, runs = 0;
    book_load(&b, count_yaml, NULL);
    for (long n = 0;; n++) {
        bool refused =
            run_lines(&b, count_lines, CF_ARRAY_LEN(count_lines), n, &r);
        runs++;
        if (r.rc == CF_OK) {
            json_int_t raised = json_integer_value(
                json_object_get(r.stats, "correlation_alerts"));
            json_int_t accounted =
                (json_int_t)count_correlation_alerts(r.out.records) +
                dropped(&r, "correlation_alert_unwritten") +
                (json_int_t)count_reason(r.dead.records,
                                         "out of memory serializing record");
            json_int_t upstream =
                json_integer_value(json_object_get(r.stats, "dead_lettered")) +
                dropped_total(&r) - dropped(&r, "correlation_no_time");
            if (raised != accounted || (raised == 0 && upstream == 0)) {
                fprintf(stderr,
                        "allocation %ld: %lld raised, %lld accounted "
                        "for, %lld upstream\n",
                        n, (long long)raised, (long long)accounted,
                        (long long)upstream);
                silent++;
            }
        }
        run_free(&r);
        if (!refused) break;
    }
    fprintf(stderr, "%lu runs, %lu silent losses\n", runs, silent);
    assert_true(runs > 10);
    assert_int_equal(silent, 0);
    book_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hs_scan_error_is_counted),
        cmocka_unit_test(test_pcre2_error_is_counted),
        cmocka_unit_test(test_literal_scan_without_memory_is_counted),
        cmocka_unit_test(test_field_mapped_to_many_names),
        cmocka_unit_test(test_pipeline_reports_scan_errors),
        cmocka_unit_test(test_correlation_skips_are_counted),
        cmocka_unit_test(test_out_of_memory_never_silent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
