/*
 * bench_kafka.c - what the Kafka connectors cost on their own, against
 * librdkafka's mock cluster (tests/tools/kafka_mock_cluster, a separate
 * process, as a broker would be): records per second written through
 * the Kafka output (write until flush() says every delivery report is
 * in), then read back through the Kafka input (from the first record to
 * the end of every partition; the group join before it is left out and
 * said apart), wall-clock and per CPU-second of this process (its
 * librdkafka threads included, the mock broker not: on a real
 * deployment the broker is elsewhere).  Each figure is the best of
 * --runs runs.
 *
 *   bench_kafka [--records N] [--partitions N] [--bytes N] [--runs N]
 *
 * The records are synthetic Sysmon-shaped JSON of about --bytes bytes.
 * The mock keeps about 5 MiB per partition and silently drops older
 * data, so records * bytes must stay under partitions * 4 MiB (checked).
 * The engine is not in this figure: chainfuse end to end from Kafka is
 * for when the command line takes kafka:// URLs.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "kafka/kafka.h"

struct cluster {
    pid_t pid;
    char boot[256];
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU time of this process (librdkafka's threads included; the mock
 * cluster, a process of its own, not). */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cluster_start(struct cluster *c, const char *self, int partitions) {
    char path[1024], topic[64];
    int out[2];
    snprintf(path, sizeof path, "%.*s/kafka_mock_cluster",
             (int)(strrchr(self, '/') ? strrchr(self, '/') - self : 1),
             strrchr(self, '/') ? self : ".");
    snprintf(topic, sizeof topic, "bench:%d", partitions);
    if (pipe(out) != 0) return -1;
    if ((c->pid = fork()) < 0) return -1;
    if (c->pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(path, path, "-t", topic, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *fp = fdopen(out[0], "r");
    if (!fp || !fgets(c->boot, sizeof c->boot, fp)) {
        fprintf(stderr, "bench_kafka: %s did not start\n", path);
        return -1;
    }
    fclose(fp);
    c->boot[strcspn(c->boot, "\n")] = '\0';
    return 0;
}

static void cluster_stop(struct cluster *c) {
    kill(c->pid, SIGTERM);
    waitpid(c->pid, NULL, 0);
}

/* A Sysmon process-creation event of about `bytes` bytes, numbered. */
static void make_record(struct cf_buf *b, long i, size_t bytes) {
    cf_buf_reset(b);
    cf_buf_printf(b,
                  "{\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/"
                  "Operational\",\"Hostname\":\"wks-%03ld.corp.example\","
                  "\"UtcTime\":\"2026-12-01 10:%02ld:%02ld.%03ld\","
                  "\"Image\":\"C:\\\\Windows\\\\System32\\\\cmd.exe\","
                  "\"User\":\"CORP\\\\user%ld\",\"ProcessId\":%ld,"
                  "\"CommandLine\":\"",
                  i % 500, (i / 60000) % 60, (i / 1000) % 60, i % 1000, i % 97,
                  1000 + i);
    while (b->len + 3 < bytes) cf_buf_putc(b, 'a' + (char)(b->len % 26));
    cf_buf_puts(b, "\"}");
}

static int bench_run(const char *self, long records, int partitions,
                     size_t bytes, double *out_rate, double *in_rate,
                     double *out_cpu, double *in_cpu, double *join_s) {
    struct cluster c;
    char url[512], err[256];
    struct cf_buf rec = CF_BUF_INIT;
    int rc = -1;
    if (cluster_start(&c, self, partitions) != 0) return -1;

    snprintf(url, sizeof url, "kafka://%s/bench", c.boot);
    struct cf_output *out = cf_kafka_output_open(url, NULL, err, sizeof err);
    if (!out) {
        fprintf(stderr, "bench_kafka: %s\n", err);
        goto done;
    }
    double t0 = now_s(), c0 = cpu_s();
    for (long i = 0; i < records; i++) {
        char id[32];
        snprintf(id, sizeof id, "a-%ld", i);
        make_record(&rec, i, bytes);
        struct cf_out_record r =
            cf_out_record_plain("alert", rec.data, rec.len, NULL);
        r.id = id;
        cf_io_status st;
        while ((st = out->ops->write(out, &r)) == CF_IO_RETRY)
            ;
        if (st != CF_IO_OK) goto done;
    }
    cf_io_status st;
    while ((st = out->ops->flush(out)) == CF_IO_RETRY)
        ;
    *out_rate = records / (now_s() - t0);
    *out_cpu = records / (cpu_s() - c0);
    cf_output_close(out);
    out = NULL;
    if (st != CF_IO_OK) goto done;

    snprintf(url, sizeof url, "kafka://%s/bench?group=bench&stop_at_end=true",
             c.boot);
    struct cf_input *in = cf_kafka_input_open(url, NULL, err, sizeof err);
    if (!in) {
        fprintf(stderr, "bench_kafka: %s\n", err);
        goto done;
    }
    long got = 0;
    double opened = now_s(), first = 0, cfirst = 0;
    for (;;) {
        struct cf_record r;
        cf_io_status s = in->ops->read(in, &r);
        if (s == CF_IO_EOF || s == CF_IO_FAIL) break;
        if (s != CF_IO_OK) continue;
        if (got++ == 0) {
            first = now_s();
            cfirst = cpu_s();
        }
    }
    double end = now_s(), cend = cpu_s();
    cf_input_close(in);
    if (got != records) {
        fprintf(stderr, "bench_kafka: read %ld of %ld records\n", got, records);
        goto done;
    }
    *in_rate = (records - 1) / (end - first);
    *in_cpu = (records - 1) / (cend - cfirst);
    *join_s = first - opened;
    rc = 0;
done:
    if (out) cf_output_close(out);
    cf_buf_free(&rec);
    cluster_stop(&c);
    return rc;
}

int main(int argc, char **argv) {
    long records = 100000;
    int partitions = 16, runs = 3;
    size_t bytes = 400;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && strcmp(a, "--records") == 0)
            records = atol(v);
        else if (v && strcmp(a, "--partitions") == 0)
            partitions = atoi(v);
        else if (v && strcmp(a, "--bytes") == 0)
            bytes = (size_t)atol(v);
        else if (v && strcmp(a, "--runs") == 0)
            runs = atoi(v);
        else {
            fprintf(stderr, "usage: bench_kafka [--records N] "
                            "[--partitions N] [--bytes N] [--runs N]\n");
            return 2;
        }
        i++;
    }
    if (records < 2 || partitions < 1 || runs < 1 || bytes < 200 ||
        (double)records * (double)bytes > partitions * 4.0 * 1024 * 1024) {
        fprintf(stderr, "bench_kafka: records * bytes must stay under "
                        "partitions * 4 MiB (the mock drops older data)\n");
        return 2;
    }
    double best_out = 0, best_in = 0, cpu_out = 0, cpu_in = 0, join = 0;
    for (int r = 0; r < runs; r++) {
        double o, in, co, ci, j;
        if (bench_run(argv[0], records, partitions, bytes, &o, &in, &co, &ci,
                      &j) != 0)
            return 1;
        if (o > best_out) best_out = o;
        if (in > best_in) best_in = in;
        if (co > cpu_out) cpu_out = co;
        if (ci > cpu_in) cpu_in = ci;
        join = j;
    }
    printf("kafka output: %.0f records/s wall, %.0f per CPU-second (write "
           "until every delivery report is in)\n",
           best_out, cpu_out);
    printf("kafka input:  %.0f records/s wall, %.0f per CPU-second (first "
           "record to end of every partition; the group join took %.1f s)\n",
           best_in, cpu_in, join);
    printf("(%ld records of %zu bytes, %d partitions, mock cluster, best of "
           "%d runs)\n",
           records, bytes, partitions, runs);
    return 0;
}
