/*
 * test_pipeline.c - the engine's delivery contract with outputs: an
 * output that answers RETRY gets the same record again until it accepts
 * it (nothing lost, nothing duplicated, order kept); one that answers
 * FAIL has the record dead-lettered with the reason; a bad input line is
 * dead-lettered and processing goes on; every input position is
 * committed.  And the counters: each has one owner (records, written,
 * incidents), blank lines are counted, an over-long line is
 * dead-lettered flagged as cut, dead-letter reasons are a fixed set, and
 * the dropped{reason} family is always complete.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "connector.h"
#include "file/file_input.h"
#include "pipeline.h"
#include "ruleset.h"
#include "sigma.h"

static const char rule_yaml[] =
    "title: Whoami\n"
    "id: 11111111-2222-4333-8444-555555555555\n"
    "level: medium\n"
    "tags: [attack.discovery, attack.t1033]\n"
    "logsource: {product: windows, category: process_creation}\n"
    "detection:\n"
    "  selection:\n"
    "    Image|endswith: '\\whoami.exe'\n"
    "  condition: selection\n";

#define WHOAMI(host)                                                           \
    "{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"     \
    "\"Hostname\":\"" host "\",\"Image\":\"C:\\\\Windows\\\\whoami.exe\","     \
    "\"UtcTime\":\"2026-11-02 08:00:00.000\"}"

static const char *const lines[] = {WHOAMI("A"), "not json", WHOAMI("B"),
                                    "{\"x\":1}", WHOAMI("C")};

/* ---- an in-memory input ---- */
struct mem_input {
    struct cf_input in;
    size_t next;
    int64_t committed;
};

static cf_io_status mem_read(struct cf_input *in, struct cf_record *rec) {
    struct mem_input *mi = in->ctx;
    if (mi->next >= CF_ARRAY_LEN(lines)) return CF_IO_EOF;
    memset(rec, 0, sizeof *rec);
    rec->data = lines[mi->next];
    rec->len = strlen(lines[mi->next]);
    rec->pos.source = "memory";
    rec->pos.partition = 0;
    rec->pos.offset = (int64_t)mi->next++;
    return CF_IO_OK;
}

static void mem_commit(struct cf_input *in, const struct cf_position *pos) {
    struct mem_input *mi = in->ctx;
    assert_true(pos->offset >= mi->committed); /* in order */
    mi->committed = pos->offset;
}

static const struct cf_input_ops mem_input_ops = {
    .name = "memory", .read = mem_read, .commit = mem_commit, .close = NULL};

/* ---- an output that is not ready at first, or fails for good ---- */
struct flaky_output {
    struct cf_output out;
    int retries_left; /* answer RETRY this many times first */
    bool fail;        /* answer FAIL to alerts */
    int attempts;
    json_t *accepted; /* array of accepted records */
};

static cf_io_status flaky_write(struct cf_output *out,
                                const struct cf_out_record *r) {
    struct flaky_output *fo = out->ctx;
    fo->attempts++;
    if (fo->fail && strcmp(r->kind, "alert") == 0) return CF_IO_FAIL;
    if (fo->retries_left > 0) {
        fo->retries_left--;
        return CF_IO_RETRY;
    }
    json_t *rec = json_loadb(r->json, r->len, 0, NULL);
    assert_non_null(rec);
    json_array_append_new(fo->accepted, rec);
    return CF_IO_OK;
}

static const struct cf_output_ops flaky_ops = {
    .name = "flaky", .write = flaky_write, .flush = NULL, .close = NULL};

static void flaky_init(struct flaky_output *fo, int retries, bool fail) {
    memset(fo, 0, sizeof *fo);
    fo->out.ops = &flaky_ops;
    fo->out.ctx = fo;
    fo->retries_left = retries;
    fo->fail = fail;
    fo->accepted = json_array();
}

struct fixture {
    char dir[64];
    struct cf_config *cfg;
    struct cf_rulebook *rb;
    struct cf_ruleset *rs;
};

static int setup(void **state) {
    struct fixture *fx = calloc(1, sizeof *fx);
    char path[128], err[256];
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cf_test_pipeline_XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(path, sizeof path, "%s/rule.yml", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(rule_yaml, f);
    fclose(f);
    fx->cfg = cf_config_default();
    free(fx->cfg->cache_dir);
    fx->cfg->cache_dir = strdup(""); /* no cache: nothing left behind */
    fx->rb = cf_rulebook_new();
    assert_int_equal(cf_rulebook_load(fx->rb, path, fx->cfg, err, sizeof err),
                     CF_OK);
    assert_int_equal(cf_rulebook_finish(fx->rb, err, sizeof err), CF_OK);
    assert_int_equal(fx->rb->n_rules, 1);
    fx->rs = cf_ruleset_compile(fx->rb, fx->cfg, err, sizeof err);
    assert_non_null(fx->rs);
    unlink(path);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    struct fixture *fx = *state;
    cf_ruleset_destroy(fx->rs);
    cf_rulebook_destroy(fx->rb);
    cf_config_destroy(fx->cfg);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void run_pipeline(struct fixture *fx, struct flaky_output *out,
                         struct flaky_output *dead, struct mem_input *mi) {
    char err[256];
    memset(mi, 0, sizeof *mi);
    mi->in.ops = &mem_input_ops;
    mi->in.ctx = mi;
    mi->committed = -1;
    struct cf_pipeline_setup setup = {.cfg = fx->cfg,
                                      .rb = fx->rb,
                                      .rs = fx->rs,
                                      .out = &out->out,
                                      .dead_letter = &dead->out};
    struct cf_pipeline *p = cf_pipeline_new(&setup, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(cf_pipeline_run(p, &mi->in, err, sizeof err), CF_OK);
    assert_int_equal(cf_pipeline_finish(p, err, sizeof err), CF_OK);
    json_t *stats = cf_pipeline_stats(p);
    assert_int_equal(json_integer_value(json_object_get(stats, "events")), 4);
    assert_int_equal(
        json_integer_value(json_object_get(stats, "dead_lettered")),
        1 + (out->fail ? 3 : 0));
    json_decref(stats);
    cf_pipeline_destroy(p);
}

static size_t count_kind(json_t *records, const char *kind) {
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(records, i, r) {
        if (strcmp(json_string_value(json_object_get(r, "kind")), kind) == 0)
            n++;
    }
    return n;
}

static void test_retry_delivers_everything_once_in_order(void **state) {
    struct fixture *fx = *state;
    struct flaky_output out, dead;
    struct mem_input mi;
    flaky_init(&out, 3, false);
    flaky_init(&dead, 0, false);
    run_pipeline(fx, &out, &dead, &mi);

    assert_int_equal(count_kind(out.accepted, "alert"), 3);
    /* Three RETRY answers were three extra attempts, not lost records. */
    assert_int_equal(out.attempts, (int)json_array_size(out.accepted) + 3);
    const char *hosts[] = {"A", "B", "C"};
    size_t i, a = 0;
    json_t *r;
    json_array_foreach(out.accepted, i, r) {
        if (strcmp(json_string_value(json_object_get(r, "kind")), "alert"))
            continue;
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(r, "entities"), "host")),
                            hosts[a++]);
    }
    /* The bad line went to the dead-letter output with its reason. */
    assert_int_equal(json_array_size(dead.accepted), 1);
    json_t *d0 = json_array_get(dead.accepted, 0);
    assert_int_equal(json_integer_value(json_object_get(d0, "offset")), 1);
    assert_non_null(json_string_value(json_object_get(d0, "reason")));
    /* Every input position was committed. */
    assert_int_equal(mi.committed, (int64_t)CF_ARRAY_LEN(lines) - 1);
    json_decref(out.accepted);
    json_decref(dead.accepted);
}

static void test_failed_output_dead_letters_the_record(void **state) {
    struct fixture *fx = *state;
    struct flaky_output out, dead;
    struct mem_input mi;
    flaky_init(&out, 0, true);
    flaky_init(&dead, 0, false);
    run_pipeline(fx, &out, &dead, &mi);
    assert_int_equal(count_kind(out.accepted, "alert"), 0);
    /* The bad line + 3 alerts the output refused for good. */
    assert_int_equal(json_array_size(dead.accepted), 4);
    size_t i, refused = 0;
    json_t *r;
    json_array_foreach(dead.accepted, i, r) {
        /* "output NAME: refused the record" */
        if (strncmp(json_string_value(json_object_get(r, "reason")), "output ",
                    7) == 0) {
            refused++;
            /* The refused record itself is kept, whole. */
            json_t *rec = json_loads(
                json_string_value(json_object_get(r, "line")), 0, NULL);
            assert_non_null(rec);
            assert_string_equal(json_string_value(json_object_get(rec, "kind")),
                                "alert");
            json_decref(rec);
        }
    }
    assert_int_equal(refused, 3);
    json_decref(out.accepted);
    json_decref(dead.accepted);
}

/* ---- counters -------------------------------------------------------- */

static const char rule2_yaml[] =
    "title: PowerShell\n"
    "id: 22222222-3333-4444-8555-666666666666\n"
    "level: medium\n"
    "tags: [attack.execution, attack.t1059.001]\n"
    "logsource: {product: windows, category: process_creation}\n"
    "detection:\n"
    "  selection:\n"
    "    Image|endswith: '\\\\powershell.exe'\n"
    "  condition: selection\n";

#define PWSH(host)                                                             \
    "{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"     \
    "\"Hostname\":\"" host "\",\"Image\":\"C:\\\\Windows\\\\powershell.exe\"," \
    "\"UtcTime\":\"2026-11-02 08:01:00.000\"}"

/* The fixture's rulebook plus rule2: two stages on one host raise an
 * incident. */
struct two_rules {
    struct cf_rulebook *rb;
    struct cf_ruleset *rs;
};

static void two_rules_load(struct fixture *fx, struct two_rules *tr) {
    char path[160], err[256];
    const char *const yamls[] = {rule_yaml, rule2_yaml};
    tr->rb = cf_rulebook_new();
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/rule%zu.yml", fx->dir, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(yamls[i], f);
        fclose(f);
        assert_int_equal(
            cf_rulebook_load(tr->rb, path, fx->cfg, err, sizeof err), CF_OK);
    }
    assert_int_equal(cf_rulebook_finish(tr->rb, err, sizeof err), CF_OK);
    /* Removed only now: the loader tells files apart by inode, and a
     * file removed mid-load may hand its inode to the next one. */
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/rule%zu.yml", fx->dir, i);
        unlink(path);
    }
    assert_int_equal(tr->rb->n_rules, 2);
    tr->rs = cf_ruleset_compile(tr->rb, fx->cfg, err, sizeof err);
    assert_non_null(tr->rs);
}

static void two_rules_free(struct two_rules *tr) {
    cf_ruleset_destroy(tr->rs);
    cf_rulebook_destroy(tr->rb);
}

static json_int_t ival(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) fail_msg("counter %s missing", key);
    return json_integer_value(v);
}

/* The whole path through the real file connector: blank lines, a bad
 * line, an over-long line and two alerts that make one incident. */
static void test_counters_have_one_owner(void **state) {
    struct fixture *fx = *state;
    struct two_rules tr;
    struct flaky_output out, dead;
    char path[160], err[256];
    two_rules_load(fx, &tr);
    flaky_init(&out, 0, false);
    flaky_init(&dead, 0, false);

    snprintf(path, sizeof path, "%s/in.jsonl", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(WHOAMI("A") "\n\n   \r\nnot json\n" PWSH("A") "\n", f);
    fputs("{\"long\":\"", f); /* 600 bytes: over the 300-byte limit */
    for (int i = 0; i < 588; i++) fputc('x', f);
    fputs("\"}\n", f);
    fclose(f);
    fx->cfg->limits.max_line_bytes = 300;
    struct cf_input *in = cf_file_input_open(path, 300, err, sizeof err);
    assert_non_null(in);

    struct cf_pipeline_setup setup = {.cfg = fx->cfg,
                                      .rb = tr.rb,
                                      .rs = tr.rs,
                                      .out = &out.out,
                                      .dead_letter = &dead.out};
    struct cf_pipeline *p = cf_pipeline_new(&setup, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(cf_pipeline_run(p, in, err, sizeof err), CF_OK);
    assert_int_equal(cf_pipeline_finish(p, err, sizeof err), CF_OK);
    json_t *s = cf_pipeline_stats(p);

    /* Every line the input handed over is one record: 2 events + 2
     * blank + 2 dead-lettered. */
    assert_int_equal(ival(s, "records"), 6);
    assert_int_equal(ival(s, "blank_lines"), 2);
    assert_int_equal(ival(s, "events"), 2);
    assert_int_equal(ival(s, "dead_lettered"), 2);
    assert_int_equal(ival(s, "records"), ival(s, "events") +
                                             ival(s, "blank_lines") +
                                             ival(s, "dead_lettered"));
    assert_int_equal(ival(s, "alerts"), 2);
    /* One incident, emitted as "new" and then "closed". */
    assert_int_equal(count_kind(out.accepted, "incident"), 2);
    assert_int_equal(ival(s, "incidents"), 1);
    assert_int_equal(ival(s, "incident_records"), 2);
    /* written = what the output accepted, counted once. */
    assert_int_equal(ival(s, "written"),
                     (json_int_t)json_array_size(out.accepted));
    assert_int_equal(ival(s, "written"), 4);

    /* The over-long line is dead-lettered saying it was cut. */
    assert_int_equal(json_array_size(dead.accepted), 2);
    json_t *d = json_array_get(dead.accepted, 1);
    assert_int_equal(json_integer_value(json_object_get(d, "offset")), 6);
    assert_true(json_is_true(json_object_get(d, "truncated")));
    assert_int_equal(strlen(json_string_value(json_object_get(d, "line"))),
                     300);
    d = json_array_get(dead.accepted, 0);
    assert_null(json_object_get(d, "truncated"));
    json_t *reasons = json_object_get(s, "dead_letter_reasons");
    assert_int_equal(ival(reasons, "not_an_object"), 1);
    assert_int_equal(ival(reasons, "line_too_long"), 1);

    json_decref(s);
    cf_pipeline_destroy(p);
    cf_input_close(in);
    fx->cfg->limits.max_line_bytes = 0;
    json_decref(out.accepted);
    json_decref(dead.accepted);
    two_rules_free(&tr);
}

/* ---- an input whose every record has its own defect ---- */
#define N_DEFECTS 20
static char defect_text[N_DEFECTS][32];

static cf_io_status defect_read(struct cf_input *in, struct cf_record *rec) {
    struct mem_input *mi = in->ctx;
    if (mi->next >= N_DEFECTS) return CF_IO_EOF;
    memset(rec, 0, sizeof *rec);
    snprintf(defect_text[mi->next], sizeof defect_text[0],
             "connector defect %zu", mi->next);
    rec->defect = defect_text[mi->next];
    rec->data = "{}";
    rec->len = 2;
    rec->pos.source = "memory";
    rec->pos.offset = (int64_t)mi->next++;
    return CF_IO_OK;
}

static const struct cf_input_ops defect_input_ops = {
    .name = "defects", .read = defect_read, .commit = NULL, .close = NULL};

static const char *const dead_letter_reason_names[] = {"invalid_json",
                                                       "truncated_json",
                                                       "line_too_long",
                                                       "too_deep",
                                                       "invalid_utf8",
                                                       "not_an_object",
                                                       "invalid_xml",
                                                       "xml_dtd",
                                                       "xml_not_event",
                                                       "invalid_embedded_json",
                                                       "truncated_input",
                                                       "out_of_memory",
                                                       "alert_out_of_memory",
                                                       "output_failed",
                                                       "other"};

static const char *const dropped_reason_names[] = {
    "scan_error",
    "route_out_of_memory",
    "correlation_future_time",
    "correlation_no_time",
    "correlation_no_group_by",
    "correlation_no_value",
    "correlation_too_late",
    "correlation_window_evicted",
    "correlation_out_of_memory",
    "correlation_alert_unwritten",
    "incident_record_unwritten",
    "fusion_out_of_memory",
    "fusion_no_time"};

/* Exactly `names`, each an integer; returns their sum. */
static json_int_t expect_keys(const json_t *o, const char *const *names,
                              size_t n) {
    json_int_t sum = 0;
    assert_true(json_is_object(o));
    assert_int_equal(json_object_size(o), n);
    for (size_t i = 0; i < n; i++) sum += ival(o, names[i]);
    return sum;
}

static void test_dead_letter_reasons_are_a_fixed_set(void **state) {
    struct fixture *fx = *state;
    struct flaky_output out, dead;
    struct mem_input mi;
    char err[256];
    flaky_init(&out, 0, false);
    flaky_init(&dead, 0, false);
    memset(&mi, 0, sizeof mi);
    mi.in.ops = &defect_input_ops;
    mi.in.ctx = &mi;
    struct cf_pipeline_setup setup = {.cfg = fx->cfg,
                                      .rb = fx->rb,
                                      .rs = fx->rs,
                                      .out = &out.out,
                                      .dead_letter = &dead.out};
    struct cf_pipeline *p = cf_pipeline_new(&setup, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(cf_pipeline_run(p, &mi.in, err, sizeof err), CF_OK);
    assert_int_equal(cf_pipeline_finish(p, err, sizeof err), CF_OK);
    json_t *s = cf_pipeline_stats(p);
    assert_int_equal(ival(s, "dead_lettered"), N_DEFECTS);
    /* Twenty distinct texts, none of them known: every one is counted,
     * as "other", and the set of keys does not grow with them. */
    json_t *reasons = json_object_get(s, "dead_letter_reasons");
    assert_int_equal(expect_keys(reasons, dead_letter_reason_names,
                                 CF_ARRAY_LEN(dead_letter_reason_names)),
                     N_DEFECTS);
    assert_int_equal(ival(reasons, "other"), N_DEFECTS);
    /* The record itself keeps the connector's own words. */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(dead.accepted, 19), "reason")),
                        "connector defect 19");
    json_decref(s);
    cf_pipeline_destroy(p);
    json_decref(out.accepted);
    json_decref(dead.accepted);
}

static void test_dropped_family_is_always_complete(void **state) {
    struct fixture *fx = *state;
    struct flaky_output out, dead;
    struct mem_input mi;
    char err[256];
    flaky_init(&out, 0, false);
    flaky_init(&dead, 0, false);
    memset(&mi, 0, sizeof mi);
    mi.in.ops = &mem_input_ops;
    mi.in.ctx = &mi;
    mi.committed = -1;
    struct cf_pipeline_setup setup = {.cfg = fx->cfg,
                                      .rb = fx->rb,
                                      .rs = fx->rs,
                                      .out = &out.out,
                                      .dead_letter = &dead.out};
    struct cf_pipeline *p = cf_pipeline_new(&setup, err, sizeof err);
    assert_non_null(p);
    json_t *s = cf_pipeline_stats(p);
    /* Before any input, every reason is there with 0 ... */
    assert_int_equal(expect_keys(json_object_get(s, "dropped"),
                                 dropped_reason_names,
                                 CF_ARRAY_LEN(dropped_reason_names)),
                     0);
    assert_int_equal(expect_keys(json_object_get(s, "dead_letter_reasons"),
                                 dead_letter_reason_names,
                                 CF_ARRAY_LEN(dead_letter_reason_names)),
                     0);
    json_decref(s);
    assert_int_equal(cf_pipeline_run(p, &mi.in, err, sizeof err), CF_OK);
    assert_int_equal(cf_pipeline_finish(p, err, sizeof err), CF_OK);
    /* ... and after a clean run nothing was dropped. */
    s = cf_pipeline_stats(p);
    assert_int_equal(expect_keys(json_object_get(s, "dropped"),
                                 dropped_reason_names,
                                 CF_ARRAY_LEN(dropped_reason_names)),
                     0);
    json_decref(s);
    cf_pipeline_destroy(p);
    json_decref(out.accepted);
    json_decref(dead.accepted);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_delivers_everything_once_in_order),
        cmocka_unit_test(test_failed_output_dead_letters_the_record),
        cmocka_unit_test(test_counters_have_one_owner),
        cmocka_unit_test(test_dead_letter_reasons_are_a_fixed_set),
        cmocka_unit_test(test_dropped_family_is_always_complete),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
