/*
 * test_kafka.c - the Kafka input and output against a real Kafka
 * protocol peer: tests/tools/kafka_mock_cluster (librdkafka's mock
 * cluster in its own process), with messages produced and read back by
 * kcat, an independent client: URL and option checks, delivery and
 * delivery failure, reading to the end, restart from committed offsets.
 * The fault tests are test_kafka_faults.c.  Skipped (77) when kcat or
 * the mock-cluster program is missing.
 */
#include "kafka_cluster.h"

/* Three partitions written by kcat come out whole, in order per
 * partition, with their topic and offsets; stop_at_end ends the input
 * once every partition is at its end. */
static void test_consume_until_end(void **state) {
    (void)state;
    struct cluster c;
    static struct run r;
    cluster_start(&c, 3, "t:3");
    for (int p = 0; p < 3; p++) produce(&c, "t", p, 0, 10);
    struct cf_input *in =
        open_input(c.boot, "t", "group=g1&stop_at_end=true", NULL);
    run_init(&r);
    read_some(in, &r, 0, 20000);
    assert_true(r.eof);
    assert_int_equal(r.n, 30);
    for (int p = 0; p < 3; p++) {
        assert_int_equal(count_partition(&r, p), 10);
        assert_string_equal(r.source[p], "t");
    }
    check_payloads(&r, 0);
    /* at the end it stays at the end */
    struct cf_record rec;
    assert_int_equal(in->ops->read(in, &rec), CF_IO_EOF);
    cf_input_close(in);
    cluster_stop(&c);
}

/* A restarted consumer resumes after exactly what commit() was told:
 * nothing read but not committed is skipped, and closing commits nothing
 * of its own. */
static void test_restart_from_commit(void **state) {
    (void)state;
    struct cluster c;
    static struct run r;
    cluster_start(&c, 1, "r:2");
    for (int p = 0; p < 2; p++) produce(&c, "r", p, 0, 10);

    struct cf_input *in = open_input(c.boot, "r", "group=g2", NULL);
    run_init(&r);
    read_some(in, &r, 20, 20000);
    assert_int_equal(r.n, 20);
    struct cf_position p0 = {r.source[0], 0, 3}, p0b = {r.source[0], 0, 6},
                       p1 = {r.source[1], 1, 2};
    in->ops->commit(in, &p0);
    in->ops->commit(in, &p0b);
    in->ops->commit(in, &p1);
    cf_input_close(in);

    /* Read everything again without committing: close commits nothing. */
    for (int round = 0; round < 2; round++) {
        in = open_input(c.boot, "r", "group=g2&stop_at_end=true", NULL);
        run_init(&r);
        read_some(in, &r, 0, 20000);
        assert_true(r.eof);
        assert_int_equal(first_offset(&r, 0), 7);
        assert_int_equal(first_offset(&r, 1), 3);
        assert_int_equal(count_partition(&r, 0), 3);
        assert_int_equal(count_partition(&r, 1), 7);
        check_payloads(&r, 0);
        cf_input_close(in);
    }
    cluster_stop(&c);
}

/* The output: records land in the topic with key = id and the headers;
 * a dead letter carries its reason and origin; flush() answers OK only
 * once everything is delivered. */
static void test_output(void **state) {
    (void)state;
    struct cluster c;
    char url[512], err[256] = "", line[1024];
    cluster_start(&c, 1, "out:1");
    snprintf(url, sizeof url, "kafka://%s/out", c.boot);
    struct cf_output *out = cf_kafka_output_open(url, NULL, err, sizeof err);
    if (!out) fail_msg("%s", err);
    const char *inc = "{\"kind\":\"incident\",\"id\":\"inc-1\"}";
    struct cf_out_record r =
        cf_out_record_plain("incident", inc, strlen(inc), NULL);
    r.id = "inc-1";
    r.version = 3;
    r.severity = 4;
    assert_int_equal(out->ops->write(out, &r), CF_IO_OK);
    const char *dl = "{\"kind\":\"dead-letter\",\"reason\":\"invalid JSON\","
                     "\"line\":\"{oops\"}";
    struct cf_position pos = {"events", 2, 41};
    struct cf_out_record d =
        cf_out_record_plain("dead-letter", dl, strlen(dl), &pos);
    assert_int_equal(out->ops->write(out, &d), CF_IO_OK);
    int64_t deadline = now_ms() + 10000;
    cf_io_status st;
    while ((st = out->ops->flush(out)) == CF_IO_RETRY && now_ms() < deadline)
        ;
    assert_int_equal(st, CF_IO_OK);
    cf_output_close(out);

    snprintf(line, sizeof line,
             "kcat -C -q -e -b '%s' -t out -f '%%k|%%h|%%s\\n'", c.boot);
    FILE *p = popen(line, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof line, p));
    assert_string_equal(line, "inc-1|chainfuse.kind=incident,"
                              "chainfuse.version=3|"
                              "{\"kind\":\"incident\",\"id\":\"inc-1\"}\n");
    assert_non_null(fgets(line, sizeof line, p));
    char want[512];
    snprintf(want, sizeof want,
             "|chainfuse.kind=dead-letter,chainfuse.reason=invalid JSON,"
             "chainfuse.source=events,chainfuse.partition=2,"
             "chainfuse.offset=41|%s\n",
             dl);
    assert_string_equal(line, want);
    assert_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    cluster_stop(&c);
}

/* With every broker down, flush() keeps answering RETRY (nothing is
 * acknowledged), and a record librdkafka gives up on is handed to the
 * engine's dead-letter hook with the reason. */
struct dl_seen {
    int n;
    char reason[160], kind[32], id[32];
    int64_t offset;
};

static void on_dead_letter(void *engine, const struct cf_out_record *rec,
                           const char *reason) {
    struct dl_seen *s = engine;
    s->n++;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    snprintf(s->kind, sizeof s->kind, "%s", rec->kind);
    snprintf(s->id, sizeof s->id, "%s", rec->id ? rec->id : "");
    s->offset = rec->pos ? rec->pos->offset : -1;
}

static void test_output_delivery_failure(void **state) {
    (void)state;
    struct cluster c;
    char url[512], err[256] = "";
    struct dl_seen seen = {0};
    cluster_start(&c, 1, "o2:1");
    cluster_cmd(&c, "down 1");
    snprintf(url, sizeof url, "kafka://%s/o2", c.boot);
    json_t *opts =
        json_pack("{s:{s:i}}", "rdkafka", "message.timeout.ms", 1500);
    struct cf_output *out = cf_kafka_output_open(url, opts, err, sizeof err);
    json_decref(opts);
    if (!out) fail_msg("%s", err);
    out->dead_letter = on_dead_letter;
    out->engine = &seen;
    const char *a = "{\"kind\":\"alert\",\"id\":\"al-7\"}";
    struct cf_position pos = {"src", 0, 9};
    struct cf_out_record r = cf_out_record_plain("alert", a, strlen(a), &pos);
    r.id = "al-7";
    assert_int_equal(out->ops->write(out, &r), CF_IO_OK);
    assert_int_equal(out->ops->flush(out), CF_IO_RETRY);
    int64_t deadline = now_ms() + 10000;
    cf_io_status st;
    while ((st = out->ops->flush(out)) == CF_IO_RETRY && now_ms() < deadline)
        ;
    assert_int_equal(st, CF_IO_OK);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.kind, "alert");
    assert_string_equal(seen.id, "al-7");
    assert_int_equal(seen.offset, 9);
    assert_non_null(strstr(seen.reason, "kafka delivery failed"));
    cf_output_close(out);
    cluster_stop(&c);
}

/* URLs and options are checked at open, before any broker is asked;
 * secrets taken from the environment are never shown. */
static void test_open_errors(void **state) {
    (void)state;
    char err[512];
    static const char *const bad_inputs[] = {
        "kafka://h:9092/t",              /* no group */
        "kafka:///t?group=g",            /* no brokers */
        "kafka://h:9092/?group=g",       /* no topic */
        "kafka://h:9092/a,,b?group=g",   /* empty topic */
        "kafka://u:pw@h:9092/t?group=g", /* credentials in URL */
        "kafka://h:9092/t?group=g&x=1",  /* unknown parameter */
        "kafka://h:9092/t?group=g&stop_at_end=yes",
        "redis://h:9092/t?group=g",
    };
    for (size_t i = 0; i < sizeof bad_inputs / sizeof *bad_inputs; i++) {
        err[0] = '\0';
        assert_null(cf_kafka_input_open(bad_inputs[i], NULL, err, sizeof err));
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "pw"));
    }
    assert_null(
        cf_kafka_output_open("kafka://h:9092/a,b", NULL, err, sizeof err));
    assert_null(cf_kafka_output_open("kafka://h:9092/a?group=g", NULL, err,
                                     sizeof err));

    /* the connector's guarantees are not negotiable */
    json_t *o = json_pack("{s:{s:b}}", "rdkafka", "enable.auto.commit", 1);
    assert_null(
        cf_kafka_input_open("kafka://h:9092/t?group=g", o, err, sizeof err));
    assert_non_null(strstr(err, "enable.auto.commit"));
    json_decref(o);
    o = json_pack("{s:{s:b}}", "rdkafka", "enable.idempotence", 0);
    assert_null(cf_kafka_output_open("kafka://h:9092/t", o, err, sizeof err));
    json_decref(o);
    o = json_pack("{s:s}", "rdkafak", "x");
    assert_null(cf_kafka_output_open("kafka://h:9092/t", o, err, sizeof err));
    assert_non_null(strstr(err, "rdkafak"));
    json_decref(o);

    /* a value from the environment that librdkafka refuses: named, not
     * shown */
    setenv("CF_TEST_KAFKA_SECRET", "hunter2-not-a-number", 1);
    o = json_pack("{s:{s:s}}", "rdkafka", "linger.ms_env",
                  "CF_TEST_KAFKA_SECRET");
    assert_null(cf_kafka_output_open("kafka://h:9092/t", o, err, sizeof err));
    assert_non_null(strstr(err, "linger.ms"));
    assert_null(strstr(err, "hunter2"));
    json_decref(o);
    o = json_pack("{s:{s:s}}", "rdkafka", "sasl.password_env",
                  "CF_TEST_KAFKA_UNSET");
    assert_null(cf_kafka_output_open("kafka://h:9092/t", o, err, sizeof err));
    assert_non_null(strstr(err, "CF_TEST_KAFKA_UNSET"));
    json_decref(o);
    /* a direct value librdkafka refuses under a secret-looking name */
    o = json_pack("{s:{s:s}}", "rdkafka", "sasl.password.nonexistent",
                  "hunter2");
    assert_null(cf_kafka_output_open("kafka://h:9092/t", o, err, sizeof err));
    assert_null(strstr(err, "hunter2"));
    json_decref(o);

    /* _file: the value is the file's content, one newline dropped */
    char path[] = "/tmp/cf_test_kafka_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "7\n", 2), 2);
    close(fd);
    o = json_pack("{s:{s:s}}", "rdkafka", "linger.ms_file", path);
    struct cf_output *out =
        cf_kafka_output_open("kafka://127.0.0.1:1/t", o, err, sizeof err);
    if (!out) fail_msg("%s", err);
    cf_output_close(out);
    json_decref(o);
    unlink(path);
    o = json_pack("{s:{s:s}}", "rdkafka", "linger.ms_file", path);
    assert_null(cf_kafka_output_open("kafka://h:9092/t", o, err, sizeof err));
    assert_non_null(strstr(err, "cannot read"));
    json_decref(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_open_errors, kafka_teardown),
        cmocka_unit_test_teardown(test_output, kafka_teardown),
        cmocka_unit_test_teardown(test_output_delivery_failure, kafka_teardown),
        cmocka_unit_test_teardown(test_consume_until_end, kafka_teardown),
        cmocka_unit_test_teardown(test_restart_from_commit, kafka_teardown),
    };
    return kafka_run_tests("test_kafka", tests, sizeof tests / sizeof *tests);
}
