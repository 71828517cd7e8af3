/*
 * test_pipeline.c - the engine's delivery contract with outputs: an
 * output that answers RETRY gets the same record again until it accepts
 * it (nothing lost, nothing duplicated, order kept); one that answers
 * FAIL has the record dead-lettered with the reason; a bad input line is
 * dead-lettered and processing goes on; every input position is
 * committed.
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

#define WHOAMI(host)                                                         \
    "{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"   \
    "\"Hostname\":\"" host "\",\"Image\":\"C:\\\\Windows\\\\whoami.exe\","   \
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

static cf_io_status flaky_write(struct cf_output *out, const char *kind,
                                const char *json, size_t len,
                                const struct cf_position *pos) {
    struct flaky_output *fo = out->ctx;
    (void)pos;
    fo->attempts++;
    if (fo->fail && strcmp(kind, "alert") == 0) return CF_IO_FAIL;
    if (fo->retries_left > 0) {
        fo->retries_left--;
        return CF_IO_RETRY;
    }
    json_t *rec = json_loadb(json, len, 0, NULL);
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
    struct cf_pipeline_setup setup = {.cfg = fx->cfg, .rb = fx->rb,
                                      .rs = fx->rs, .out = &out->out,
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
        if (strcmp(json_string_value(json_object_get(r, "reason")),
                   "output failed") == 0) {
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_delivers_everything_once_in_order),
        cmocka_unit_test(test_failed_output_dead_letters_the_record),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
