/*
 * bench_kafka_e2e.c - chainfuse end to end from Kafka: `chainfuse run`
 * reading a consumer group and writing alerts and incidents to a Kafka
 * topic, against librdkafka's mock cluster (tests/tools/
 * kafka_mock_cluster, a process of its own on the same cores).
 *
 *   bench_kafka_e2e [--events N] [--partitions N] [--rate R]
 *                   [--rules PATH]... [--chainfuse PATH] [RECORDING]
 *
 * 1. Rate: N events of RECORDING (JSON lines; default: the OTRF
 *    LSASS_campaign_01 recording, cut to fit the mock's ~5 MiB per
 *    partition) are written to the topic first; chainfuse then reads
 *    them to the end (stop_at_end) with the whole SigmaHQ set.  Reported:
 *    events per CPU-second of the chainfuse process (rule loading from
 *    the warm cache and the group join included: a start-up run on an
 *    empty topic is measured and said beside it, not subtracted) and
 *    wall-clock from its start to its exit.
 * 2. Latency: chainfuse runs on a fresh group while this program writes
 *    the same events at R per second (default: half the measured rate);
 *    each event carries the wall-clock time it was written
 *    ("_bench_sent_ms").  For every alert chainfuse writes, latency is
 *    the out message's timestamp (taken when chainfuse produced it)
 *    minus the time its event was written; for every incident record,
 *    minus the time the newest of its alerts' events was written.
 *    Reported: p50, p99, max.
 * chainfuse's consumer is given fetch.wait.max.ms: 2 (see main: the
 * mock broker does not answer a waiting fetch when data arrives).
 */
#include <stdarg.h>
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"

#define MAX_RULES 8

struct opts {
    long events;
    int partitions;
    double rate;
    const char *rules[MAX_RULES];
    int n_rules;
    char chainfuse[1024], mock[1024], recording[1024], config[64];
};

struct cluster {
    pid_t pid;
    char boot[256];
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_kafka_e2e: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void cluster_start(struct cluster *c, const struct opts *o) {
    char in[64];
    int out[2];
    snprintf(in, sizeof in, "in:%d", o->partitions);
    if (pipe(out) != 0 || (c->pid = fork()) < 0)
        die("fork: %s", strerror(errno));
    if (c->pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(o->mock, o->mock, "-t", in, "-t", "out:1", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *fp = fdopen(out[0], "r");
    if (!fp || !fgets(c->boot, sizeof c->boot, fp))
        die("%s did not start", o->mock);
    fclose(fp);
    c->boot[strcspn(c->boot, "\n")] = '\0';
}

static void cluster_stop(struct cluster *c) {
    kill(c->pid, SIGTERM);
    waitpid(c->pid, NULL, 0);
}

/* The events, each with "_bench_sent_ms" to be filled at write time. */
struct events {
    char **line;
    size_t *len;
    long n;
};

static void load_events(struct events *ev, const struct opts *o) {
    char cmd[2048];
    const char *r = o->recording;
    size_t n = strlen(r);
    if (n > 4 && strcmp(r + n - 4, ".zip") == 0)
        snprintf(cmd, sizeof cmd, "unzip -p '%s'", r);
    else
        snprintf(cmd, sizeof cmd, "cat '%s'", r);
    FILE *p = popen(cmd, "r");
    if (!p) die("cannot run %s", cmd);
    ev->line = cf_calloc((size_t)o->events, sizeof *ev->line);
    ev->len = cf_calloc((size_t)o->events, sizeof *ev->len);
    if (!ev->line || !ev->len) die("out of memory");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t got;
    ev->n = 0;
    double bytes = 0, budget = o->partitions * 4.0 * 1024 * 1024;
    while (ev->n < o->events && (got = getline(&buf, &cap, p)) > 0) {
        while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
            buf[--got] = '\0';
        if (got < 2 || buf[0] != '{') continue;
        if (bytes + got > budget) break; /* the mock would drop data */
        bytes += got;
        if (!(ev->line[ev->n] = cf_strdup(buf + 1))) /* without its "{" */
            die("out of memory");
        ev->len[ev->n++] = (size_t)got - 1;
    }
    free(buf); /* getline's buffer comes from malloc */
    pclose(p);
    if (ev->n == 0) die("no events in %s", r);
}

/* Writes the events to topic `in` at `rate` per second (0: at once). */
static void produce(const char *boot, const struct events *ev, double rate) {
    char err[512], key[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", boot, err, sizeof err) ||
        rd_kafka_conf_set(conf, "linger.ms", "1", err, sizeof err))
        die("%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) die("%s", err);
    size_t cap = 0;
    char *msg = NULL;
    double t0 = mono_s();
    for (long i = 0; i < ev->n; i++) {
        if (rate > 0) {
            double due = t0 + i / rate, now = mono_s();
            if (due > now) {
                struct timespec ts = {(time_t)(due - now),
                                      (long)((due - now) * 1e9) % 1000000000L};
                nanosleep(&ts, NULL);
            }
        }
        if (cap < ev->len[i] + 64) {
            cap = ev->len[i] + 64;
            if (!(msg = cf_realloc(msg, cap))) die("out of memory");
        }
        int n = snprintf(msg, cap, "{\"_bench_sent_ms\":%.3f,%s", wall_ms(),
                         ev->line[i]);
        snprintf(key, sizeof key, "%ld", i);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("in"),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY(key, strlen(key)),
                                      RD_KAFKA_V_VALUE(msg, (size_t)n),
                                      RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        if (e) die("produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 60000);
    if (rd_kafka_outq_len(rk)) die("produce: not every event was delivered");
    rd_kafka_destroy(rk);
    cf_free(msg);
}

/* Runs chainfuse on group `group`; returns its pid (wait with wait4). */
static pid_t start_chainfuse(const struct opts *o, const char *boot,
                             const char *group, bool stop_at_end) {
    char in[512], out[512];
    const char *argv[40];
    int n = 0;
    snprintf(in, sizeof in, "kafka://%s/in?group=%s%s", boot, group,
             stop_at_end ? "&stop_at_end=true" : "");
    snprintf(out, sizeof out, "kafka://%s/out", boot);
    argv[n++] = o->chainfuse;
    argv[n++] = "run";
    for (int i = 0; i < o->n_rules; i++) {
        argv[n++] = "--rules";
        argv[n++] = o->rules[i];
    }
    argv[n++] = "--input";
    argv[n++] = in;
    argv[n++] = "--output";
    argv[n++] = out;
    argv[n++] = "--dead-letter";
    argv[n++] = "/dev/null";
    argv[n++] = "--config";
    argv[n++] = o->config;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        execv(o->chainfuse, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static double run_to_end(const struct opts *o, const char *boot,
                         const char *group, double *wall) {
    struct rusage ru;
    int st;
    double t0 = mono_s();
    pid_t pid = start_chainfuse(o, boot, group, true);
    if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
        die("chainfuse failed");
    *wall = mono_s() - t0;
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Latency samples from the out topic, read until `expect` alerts or a
 * quiet `idle_s`. */
struct samples {
    double *alert, *incident;
    size_t n_alert, n_incident;
};

static void collect(const char *boot, long expect_alerts, double idle_s,
                    struct samples *s) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", boot, err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", "bench-collect", err, sizeof err))
        die("%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("%s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "out", 0)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    json_t *sent = json_object(); /* alert id -> sent ms */
    size_t cap = 1 << 20;
    s->alert = cf_malloc(cap * sizeof *s->alert);
    s->incident = cf_malloc(cap * sizeof *s->incident);
    if (!s->alert || !s->incident) die("out of memory");
    double quiet_since = mono_s();
    while ((long)s->n_alert < expect_alerts &&
           mono_s() - quiet_since < idle_s) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        quiet_since = mono_s();
        double out_ms = (double)rd_kafka_message_timestamp(m, NULL);
        json_t *doc = json_loadb(m->payload, m->len, 0, NULL);
        const char *kind = json_string_value(json_object_get(doc, "kind"));
        if (kind && strcmp(kind, "alert") == 0) {
            json_t *t = json_object_get(json_object_get(doc, "event"),
                                        "_bench_sent_ms");
            const char *id = json_string_value(json_object_get(doc, "id"));
            if (t && id && s->n_alert < cap) {
                json_object_set_new(sent, id, json_real(json_number_value(t)));
                s->alert[s->n_alert++] = out_ms - json_number_value(t);
            }
        } else if (kind && strcmp(kind, "incident") == 0) {
            double newest = -1;
            size_t i;
            json_t *a;
            json_array_foreach(json_object_get(doc, "alert_ids"), i, a) {
                double t = json_number_value(
                    json_object_get(sent, json_string_value(a)));
                if (t > newest) newest = t;
            }
            if (newest > 0 && s->n_incident < cap)
                s->incident[s->n_incident++] = out_ms - newest;
        }
        json_decref(doc);
        rd_kafka_message_destroy(m);
    }
    json_decref(sent);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static void report(const char *what, double *v, size_t n) {
    if (n == 0) {
        printf("  %-10s none\n", what);
        return;
    }
    qsort(v, n, sizeof *v, cmp_double);
    printf("  %-10s p50 %.1f ms, p99 %.1f ms, max %.1f ms (%zu records)\n",
           what, v[n / 2], v[(size_t)(n * 0.99)], v[n - 1], n);
}

int main(int argc, char **argv) {
    struct opts o = {.events = 30000, .partitions = 16};
    const char *shared = getenv("CF_SHARED_DIR");
    char self_dir[512], def_rules[1024];
    snprintf(self_dir, sizeof self_dir, "%s", argv[0]);
    char *slash = strrchr(self_dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(self_dir, sizeof self_dir, ".");
    snprintf(o.chainfuse, sizeof o.chainfuse, "%s/chainfuse", self_dir);
    snprintf(o.mock, sizeof o.mock, "%s/kafka_mock_cluster", self_dir);
    if (!shared) shared = CF_SOURCE_DIR "/../shared";
    snprintf(o.recording, sizeof o.recording,
             "%s/data/otrf/datasets/compound/LSASS_campaign_01/"
             "metasploit_logonpasswords_lsass_memory_dump.zip",
             shared);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && strcmp(a, "--events") == 0)
            o.events = atol(v), i++;
        else if (v && strcmp(a, "--partitions") == 0)
            o.partitions = atoi(v), i++;
        else if (v && strcmp(a, "--rate") == 0)
            o.rate = atof(v), i++;
        else if (v && strcmp(a, "--rules") == 0 && o.n_rules < MAX_RULES)
            o.rules[o.n_rules++] = v, i++;
        else if (v && strcmp(a, "--chainfuse") == 0)
            snprintf(o.chainfuse, sizeof o.chainfuse, "%s", v), i++;
        else if (a[0] != '-')
            snprintf(o.recording, sizeof o.recording, "%s", a);
        else
            die("usage: bench_kafka_e2e [--events N] [--partitions N] "
                "[--rate R] [--rules PATH]... [--chainfuse PATH] "
                "[RECORDING]");
    }
    if (o.n_rules == 0) {
        snprintf(def_rules, sizeof def_rules, "%s/data/sigma/rules", shared);
        o.rules[o.n_rules++] = def_rules;
    }
    /* librdkafka 2.0.2's mock broker holds a fetch that finds no data
     * for its whole MaxWait (fetch.wait.max.ms, 500 ms by default) even
     * when data arrives meanwhile; Kafka answers as soon as it does.  A
     * short wait makes the mock behave like Kafka here. */
    snprintf(o.config, sizeof o.config, "/tmp/bench_kafka_e2e.%d.yml",
             (int)getpid());
    FILE *cf = fopen(o.config, "w");
    if (!cf) die("cannot write %s", o.config);
    fputs("input:\n  rdkafka:\n    fetch.wait.max.ms: 2\n", cf);
    fclose(cf);
    struct events ev;
    load_events(&ev, &o);

    /* 1. Rate. */
    struct cluster c;
    cluster_start(&c, &o);
    double wall0, cpu0 = run_to_end(&o, c.boot, "startup", &wall0);
    produce(c.boot, &ev, 0);
    double wall, cpu = run_to_end(&o, c.boot, "rate", &wall);
    cluster_stop(&c);
    double per_cpu = ev.n / cpu, per_wall = ev.n / wall;
    printf("chainfuse from Kafka to Kafka, %ld events, %d partitions:\n", ev.n,
           o.partitions);
    printf("  %.0f events per CPU-second, %.0f per wall-second (start-up on "
           "an empty topic, included in both: %.2f s CPU, %.1f s wall)\n",
           per_cpu, per_wall, cpu0, wall0);

    /* 2. Latency at a steady rate. */
    double rate = o.rate > 0 ? o.rate : per_cpu / 2;
    cluster_start(&c, &o);
    pid_t pid = start_chainfuse(&o, c.boot, "latency", false);
    sleep(5); /* rules loaded, group joined */
    double t0 = mono_s();
    produce(c.boot, &ev, rate);
    printf("latency at %.0f events/s (written in %.1f s), from the event "
           "written to Kafka to chainfuse's record produced:\n",
           rate, mono_s() - t0);
    struct samples s = {0};
    collect(c.boot, 1L << 40, 15, &s);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    cluster_stop(&c);
    report("alerts", s.alert, s.n_alert);
    report("incidents", s.incident, s.n_incident);
    unlink(o.config);
    return 0;
}
