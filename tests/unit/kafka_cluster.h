/*
 * kafka_cluster.h - what the Kafka tests share: a mock cluster in its own
 * process (tests/tools/kafka_mock_cluster, faults on its stdin), records
 * written by kcat, inputs read and checked.  Header-only, for
 * test_kafka.c and test_kafka_faults.c (two programs, so ctest -j runs
 * them side by side: every group join costs about 3 s in the mock).
 */
#ifndef CF_TEST_KAFKA_CLUSTER_H
#define CF_TEST_KAFKA_CLUSTER_H

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

static inline int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void cluster_start(struct cluster *c, int brokers,
                                 const char *topics) {
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

static inline void cluster_cmd(struct cluster *c, const char *cmd) {
    char line[256];
    fprintf(c->ctl, "%s\n", cmd);
    fflush(c->ctl);
    assert_non_null(fgets(line, sizeof line, c->out));
    assert_int_equal(strncmp(line, "ok ", 3), 0);
}

static inline void cluster_stop(struct cluster *c) {
    int st;
    running = NULL;
    kill(c->pid, SIGTERM);
    waitpid(c->pid, &st, 0);
    fclose(c->ctl);
    fclose(c->out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* kcat writes `count` records to one partition: {"p":P,"n":K}. */
static inline void produce(const struct cluster *c, const char *topic,
                           int partition, int from, int count) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "kcat -P -q -b '%s' -t '%s' -p %d", c->boot,
             topic, partition);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    for (int k = from; k < from + count; k++)
        fprintf(p, "{\"p\":%d,\"n\":%d}\n", partition, k);
    assert_int_equal(pclose(p), 0);
}

static inline void run_init(struct run *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 8; i++) r->last[i] = -1;
}

/* Reads until `want` records (0: until end of input) or `ms` pass. */
static inline void read_some(struct cf_input *in, struct run *r, size_t want,
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
static inline void check_payloads(const struct run *r, int64_t first_n) {
    for (size_t i = 0; i < r->n; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"p\":%d,\"n\":%lld}",
                 (int)r->got[i].partition,
                 (long long)(r->got[i].offset + first_n));
        assert_string_equal(r->got[i].data, want);
    }
}

/* The first offset read of each partition, -1 when none. */
static inline int64_t first_offset(const struct run *r, int32_t partition) {
    for (size_t i = 0; i < r->n; i++)
        if (r->got[i].partition == partition) return r->got[i].offset;
    return -1;
}

static inline size_t count_partition(const struct run *r, int32_t partition) {
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) n += r->got[i].partition == partition;
    return n;
}

/* The mock keeps a group that a member has left waiting for
 * session.timeout.ms - 1 s before it takes a new member, and times out a
 * member whose session is shorter than its 3 s first join: 4 s keeps
 * restarts quick.  `extra` adds to (or overrides) these properties. */
static inline struct cf_input *open_input(const char *boot, const char *topics,
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
static inline void commit_read(struct cf_input *in, const struct run *r) {
    for (int p = 0; p < 8; p++) {
        if (r->last[p] < 0) continue;
        struct cf_position pos = {r->source[p], p, r->last[p]};
        in->ops->commit(in, &pos);
    }
}

static inline void on_checkpoint(void *engine) {
    struct run *r = engine;
    r->checkpoints++;
    memcpy(r->at_checkpoint, r->last, sizeof r->last);
    commit_read(r->in, r);
}

static inline int kafka_teardown(void **state) {
    (void)state;
    if (running) {
        kill(running->pid, SIGKILL);
        waitpid(running->pid, NULL, 0);
        running = NULL;
    }
    return 0;
}

/* Runs `tests` with kafka_teardown; 77 (skipped) without kcat or the
 * mock-cluster program.  CF_TEST_FILTER picks tests by name. */
static inline int kafka_run_tests(const char *name,
                                  const struct CMUnitTest *tests, size_t n) {
    const char *bin = getenv("CF_BINARY_DIR");
    snprintf(mock_path, sizeof mock_path, "%s/kafka_mock_cluster",
             bin ? bin : ".");
    if (access(mock_path, X_OK) != 0 ||
        system("command -v kcat >/dev/null 2>&1") != 0) {
        printf("SKIP: needs kcat and %s\n", mock_path);
        return 77;
    }
    if (getenv("CF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CF_TEST_FILTER"));
    return _cmocka_run_group_tests(name, tests, n, NULL, NULL);
}

#endif
