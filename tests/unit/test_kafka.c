/*
 * test_kafka.c - the Kafka input and output against a real Kafka
 * protocol peer: tests/tools/kafka_mock_cluster (librdkafka's mock
 * cluster in its own process, faults injected on its stdin), with
 * messages produced and read back by kcat, an independent client.
 *
 * Each group join takes about 3 s in the mock, so the tests keep to few
 * joins and small volumes.  Skipped (77) when kcat or the mock-cluster
 * program is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kafka/kafka.h"

#define MAX_GOT 256

struct cluster {
    pid_t pid;
    FILE *ctl; /* its stdin */
    FILE *out; /* its stdout */
    char boot[256];
};

struct got {
    int32_t partition;
    int64_t offset;
    char data[64];
};

struct run {
    struct got got[MAX_GOT];
    size_t n;
    bool eof;
    int checkpoints;          /* cf_input_checkpoint calls seen */
    struct cf_input *in;      /* for the checkpoint callback */
    int64_t last[8];          /* per partition: last offset read, -1 none */
    const char *source[8];    /* per partition: the pos.source seen */
    int64_t at_checkpoint[8]; /* `last` at the latest checkpoint */
};

static char mock_path[512];
static struct cluster *running; /* stopped by teardown if a test fails */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cluster_start(struct cluster *c, int brokers, const char *topics) {
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        char b[8];
        snprintf(b, sizeof b, "%d", brokers);
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(mock_path, mock_path, "-b", b, "-t", topics, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->ctl = fdopen(in[1], "w");
    c->out = fdopen(out[0], "r");
    assert_non_null(fgets(c->boot, sizeof c->boot, c->out));
    c->boot[strcspn(c->boot, "\n")] = '\0';
    running = c;
}

static void cluster_cmd(struct cluster *c, const char *cmd) {
    char line[256];
    fprintf(c->ctl, "%s\n", cmd);
    fflush(c->ctl);
    assert_non_null(fgets(line, sizeof line, c->out));
    assert_int_equal(strncmp(line, "ok ", 3), 0);
}

static void cluster_stop(struct cluster *c) {
    int st;
    running = NULL;
    kill(c->pid, SIGTERM);
    waitpid(c->pid, &st, 0);
    fclose(c->ctl);
    fclose(c->out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* kcat writes `count` records to one partition: {"p":P,"n":K}. */
static void produce(const struct cluster *c, const char *topic, int partition,
                    int from, int count) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "kcat -P -q -b '%s' -t '%s' -p %d", c->boot,
             topic, partition);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    for (int k = from; k < from + count; k++)
        fprintf(p, "{\"p\":%d,\"n\":%d}\n", partition, k);
    assert_int_equal(pclose(p), 0);
}

static void run_init(struct run *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 8; i++) r->last[i] = -1;
}

/* Reads until `want` records (0: until end of input) or `ms` pass. */
static void read_some(struct cf_input *in, struct run *r, size_t want,
                      long ms) {
    int64_t deadline = now_ms() + ms;
    while (now_ms() < deadline && (want == 0 || r->n < want)) {
        struct cf_record rec;
        cf_io_status st = in->ops->read(in, &rec);
        if (st == CF_IO_EOF) {
            r->eof = true;
            return;
        }
        if (st == CF_IO_RETRY) continue;
        assert_int_equal(st, CF_IO_OK);
        assert_true(r->n < MAX_GOT);
        assert_true(rec.pos.partition >= 0 && rec.pos.partition < 8);
        struct got *g = &r->got[r->n++];
        g->partition = rec.pos.partition;
        g->offset = rec.pos.offset;
        snprintf(g->data, sizeof g->data, "%.*s", (int)rec.len, rec.data);
        /* in order within a partition, nothing skipped or repeated */
        if (r->last[g->partition] >= 0)
            assert_int_equal(g->offset, r->last[g->partition] + 1);
        r->last[g->partition] = g->offset;
        r->source[g->partition] = rec.pos.source;
    }
}

/* Every record is the one kcat wrote at that partition and offset. */
static void check_payloads(const struct run *r, int64_t first_n) {
    for (size_t i = 0; i < r->n; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"p\":%d,\"n\":%lld}",
                 (int)r->got[i].partition,
                 (long long)(r->got[i].offset + first_n));
        assert_string_equal(r->got[i].data, want);
    }
}

/* The first offset read of each partition, -1 when none. */
static int64_t first_offset(const struct run *r, int32_t partition) {
    for (size_t i = 0; i < r->n; i++)
        if (r->got[i].partition == partition) return r->got[i].offset;
    return -1;
}

static size_t count_partition(const struct run *r, int32_t partition) {
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) n += r->got[i].partition == partition;
    return n;
}

/* The mock keeps a group that a member has left waiting for
 * session.timeout.ms - 1 s before it takes a new member, and times out a
 * member whose session is shorter than its 3 s first join: 4 s keeps
 * restarts quick.  `extra` adds to (or overrides) these properties. */
static struct cf_input *open_input(const char *boot, const char *topics,
                                   const char *query, json_t *extra) {
    char url[512], err[256] = "";
    snprintf(url, sizeof url, "kafka://%s/%s?%s", boot, topics, query);
    json_t *opts = json_pack("{s:{s:i,s:i}}", "rdkafka", "session.timeout.ms",
                             4000, "heartbeat.interval.ms", 500);
    json_t *rdk = json_object_get(opts, "rdkafka");
    if (extra) json_object_update(rdk, json_object_get(extra, "rdkafka"));
    if (getenv("CF_TEST_KAFKA_DEBUG"))
        json_object_set_new(rdk, "debug",
                            json_string(getenv("CF_TEST_KAFKA_DEBUG")));
    struct cf_input *in = cf_kafka_input_open(url, opts, err, sizeof err);
    json_decref(opts);
    if (!in) fail_msg("%s", err);
    return in;
}

/* What the engine does at a checkpoint: commit the last position read
 * of every partition. */
static void commit_read(struct cf_input *in, const struct run *r) {
    for (int p = 0; p < 8; p++) {
        if (r->last[p] < 0) continue;
        struct cf_position pos = {r->source[p], p, r->last[p]};
        in->ops->commit(in, &pos);
    }
}

static void on_checkpoint(void *engine) {
    struct run *r = engine;
    r->checkpoints++;
    memcpy(r->at_checkpoint, r->last, sizeof r->last);
    commit_read(r->in, r);
}

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

/* Every broker goes down and comes back: reads pause, a commit told
 * during the outage is committed once a coordinator is back, reading
 * resumes with nothing lost, and nothing past what commit() was told is
 * committed. */
static void test_brokers_down_and_up(void **state) {
    (void)state;
    struct cluster c;
    static struct run r, again;
    cluster_start(&c, 3, "d:2");
    for (int p = 0; p < 2; p++) produce(&c, "d", p, 0, 5);
    struct cf_input *in = open_input(c.boot, "d", "group=g3", NULL);
    run_init(&r);
    read_some(in, &r, 10, 20000);
    assert_int_equal(r.n, 10);

    for (int b = 1; b <= 3; b++) {
        char cmd[16];
        snprintf(cmd, sizeof cmd, "down %d", b);
        cluster_cmd(&c, cmd);
    }
    commit_read(in, &r); /* offsets 4 + 1, owed while no one listens */
    read_some(in, &r, 11, 2000);
    assert_int_equal(r.n, 10);
    for (int b = 1; b <= 3; b++) {
        char cmd[16];
        snprintf(cmd, sizeof cmd, "up %d", b);
        cluster_cmd(&c, cmd);
    }
    for (int p = 0; p < 2; p++) produce(&c, "d", p, 5, 5);
    read_some(in, &r, 20, 20000);
    assert_int_equal(r.n, 20); /* resumed at 5, in order (read_some) */
    check_payloads(&r, 0);
    cf_input_close(in); /* offsets 5..9 read, never committed */

    in = open_input(c.boot, "d", "group=g3&stop_at_end=true", NULL);
    run_init(&again);
    read_some(in, &again, 0, 20000);
    assert_true(again.eof);
    assert_int_equal(first_offset(&again, 0), 5);
    assert_int_equal(first_offset(&again, 1), 5);
    assert_int_equal(again.n, 10);
    cf_input_close(in);
    cluster_stop(&c);
}

/* wait() keeps the group session: waiting longer than
 * max.poll.interval.ms costs no rebalance (a revoke would have asked for
 * a checkpoint); what arrives meanwhile comes out afterwards, whole and
 * in order. */
static void test_wait_keeps_session(void **state) {
    (void)state;
    struct cluster c;
    static struct run r;
    cluster_start(&c, 1, "w:2");
    for (int p = 0; p < 2; p++) produce(&c, "w", p, 0, 5);
    json_t *opts =
        json_pack("{s:{s:i}}", "rdkafka", "max.poll.interval.ms", 4000);
    struct cf_input *in =
        open_input(c.boot, "w", "group=g4&stop_at_end=true", opts);
    json_decref(opts);
    run_init(&r);
    r.in = in;
    in->checkpoint = on_checkpoint;
    in->engine = &r;
    read_some(in, &r, 6, 20000);
    assert_int_equal(r.n, 6);
    for (int p = 0; p < 2; p++) produce(&c, "w", p, 5, 5);
    for (int i = 0; i < 12; i++) in->ops->wait(in, 500);
    assert_int_equal(r.checkpoints, 0);
    read_some(in, &r, 0, 20000);
    assert_true(r.eof);
    assert_int_equal(r.n, 20);
    check_payloads(&r, 0);
    assert_int_equal(r.checkpoints, 0);
    cf_input_close(in);
    assert_int_equal(r.checkpoints, 0); /* close asks for none */
    cluster_stop(&c);
}

/* A second consumer joins the group: the first is asked for a
 * checkpoint before it gives partitions up; the second starts each
 * partition it takes after what was committed there, never before it
 * (nothing committed is read twice) and never after what the first had
 * read when it gave the partition up (nothing is skipped).  (The mock
 * refuses commits while the group rebalances, which Kafka accepts, so
 * the commit made inside the revoke is not relied on here.) */
static void test_rebalance_checkpoints(void **state) {
    (void)state;
    struct cluster c;
    static struct run a, b;
    cluster_start(&c, 1, "g:2");
    for (int p = 0; p < 2; p++) produce(&c, "g", p, 0, 5);
    struct cf_input *ia = open_input(c.boot, "g", "group=g5", NULL);
    run_init(&a);
    a.in = ia;
    ia->checkpoint = on_checkpoint;
    ia->engine = &a;
    read_some(ia, &a, 10, 20000);
    assert_int_equal(a.n, 10);
    commit_read(ia, &a);         /* a checkpoint: offsets 0..4 */
    read_some(ia, &a, 11, 1000); /* sends the commit */

    struct cf_input *ib = open_input(c.boot, "g", "group=g5", NULL);
    run_init(&b);
    for (int p = 0; p < 2; p++) produce(&c, "g", p, 5, 5);
    /* both poll, as two engines would, until each has had a share */
    int64_t deadline = now_ms() + 25000;
    while ((a.checkpoints == 0 || b.n == 0 || a.n + b.n < 20) &&
           now_ms() < deadline) {
        read_some(ia, &a, a.n + 1, 50);
        read_some(ib, &b, b.n + 1, 50);
    }
    assert_true(a.checkpoints >= 1);
    assert_true(b.n > 0);
    for (int p = 0; p < 2; p++) {
        int64_t first_b = first_offset(&b, p);
        if (first_b < 0) continue;
        assert_true(first_b >= 5);
        assert_true(first_b <= a.at_checkpoint[p] + 1);
        /* between them every message was read */
        assert_int_equal(b.last[p], 9);
    }
    cf_input_close(ia);
    cf_input_close(ib);
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

static int teardown(void **state) {
    (void)state;
    if (running) {
        kill(running->pid, SIGKILL);
        waitpid(running->pid, NULL, 0);
        running = NULL;
    }
    return 0;
}

int main(void) {
    const char *bin = getenv("CF_BINARY_DIR");
    snprintf(mock_path, sizeof mock_path, "%s/kafka_mock_cluster",
             bin ? bin : ".");
    if (access(mock_path, X_OK) != 0 ||
        system("command -v kcat >/dev/null 2>&1") != 0) {
        printf("SKIP: needs kcat and %s\n", mock_path);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_open_errors, teardown),
        cmocka_unit_test_teardown(test_output, teardown),
        cmocka_unit_test_teardown(test_output_delivery_failure, teardown),
        cmocka_unit_test_teardown(test_consume_until_end, teardown),
        cmocka_unit_test_teardown(test_restart_from_commit, teardown),
        cmocka_unit_test_teardown(test_brokers_down_and_up, teardown),
        cmocka_unit_test_teardown(test_wait_keeps_session, teardown),
        cmocka_unit_test_teardown(test_rebalance_checkpoints, teardown),
    };
    if (getenv("CF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CF_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
