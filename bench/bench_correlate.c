/*
 * bench_correlate.c - memory per open correlation window and cost per
 * alert as the number of open windows grows (issue 3: one million open
 * windows in under 128 MB; per-alert cost flat).
 *
 * One event_count correlation (group-by User, timespan 1d, a threshold
 * never reached) receives one alert per distinct user, so every alert
 * opens a window; then 200,000 more alerts land on random existing
 * windows.  Prints, for 1k, 100k and 1M windows: bytes per window by RSS
 * delta and by the correlator's own accounting, and ns per alert for
 * opening windows and for updating them.  The times are CPU time of the
 * process (CLOCK_PROCESS_CPUTIME_ID) spent in cf_correlator_push and
 * cf_correlator_advance alone: the alerts' ids and event texts are
 * written beforehand, outside the timed loops and before the RSS
 * baseline.
 *
 * Usage: bench_correlate [max_windows]   (default 1000000)
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "correlate.h"
#include "sigma_correlation.h"

static const char *yaml =
    "title: Failed logon\nid: b0000000-0000-4000-8000-000000000001\n"
    "name: failed_logon\n"
    "logsource:\n    product: windows\n    service: security\n"
    "detection:\n    selection:\n        EventID: 4625\n"
    "    condition: selection\n"
    "---\n"
    "title: Bench count\nid: b0000000-0000-4000-8000-0000000000c1\n"
    "correlation:\n    type: event_count\n    rules: [failed_logon]\n"
    "    group-by: [User]\n    timespan: 1d\n"
    "    condition: {gte: 1000000000}\n";

static long rss_bytes(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

static double cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void noop(const struct cf_alert *a, void *opaque) {
    (void)a;
    (void)opaque;
}

static struct cf_rulebook *load(void) {
    char path[] = "/tmp/cf_bench_corr_XXXXXX.yml";
    int fd = mkstemps(path, 4);
    if (fd < 0) return NULL;
    if (write(fd, yaml, strlen(yaml)) != (ssize_t)strlen(yaml)) {
        close(fd);
        return NULL;
    }
    close(fd);
    struct cf_rulebook *rb = cf_rulebook_new();
    char err[256];
    if (cf_rulebook_load(rb, path, NULL, err, sizeof(err)) ||
        cf_rulebook_finish(rb, err, sizeof(err)) || rb->n_correlations != 1) {
        fprintf(stderr, "bench_correlate: cannot load rules: %s\n", err);
        cf_rulebook_destroy(rb);
        rb = NULL;
    }
    unlink(path);
    return rb;
}

/* The parts of one alert that vary, written before the timing starts. */
struct input {
    char id[33];
    char event[72];
    int event_len;
};

static void make_input(struct input *in, uint64_t seq, unsigned u) {
    snprintf(in->id, sizeof(in->id), "%032llx", (unsigned long long)seq);
    in->event_len = snprintf(in->event, sizeof(in->event),
                             "{\"EventID\":4625,\"User\":\"user%07u\","
                             "\"Computer\":\"DC01\"}",
                             u);
}

/* One alert of the rule at `t`. */
static void push_one(struct cf_correlator *co, const struct cf_sigma_rule *r,
                     const struct input *in, int64_t t) {
    struct cf_alert a;
    memset(&a, 0, sizeof(a));
    memcpy(a.id, in->id, sizeof(a.id));
    a.time_ms = t;
    a.rule_id = r->id;
    a.rule_title = r->title;
    a.rule_name = r->name;
    a.level = r->level;
    a.event_json = (char *)in->event; /* only read: the correlator copies */
    a.event_len = (size_t)in->event_len;
    cf_correlator_push(co, &a); /* copies what it keeps */
}

static int run(const struct cf_rulebook *rb, unsigned n_windows) {
    const struct cf_sigma_rule *r = rb->rules[0];
    const int64_t t0 = 1692161671000;
    const unsigned updates = 200000;
    struct input *in = cf_malloc((size_t)(n_windows + updates) * sizeof *in);
    if (!in) {
        fprintf(stderr, "bench_correlate: out of memory\n");
        return 1;
    }
    uint32_t x = 2463534242u;
    for (unsigned i = 0; i < n_windows; i++) make_input(&in[i], i, i);
    for (unsigned i = 0; i < updates; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        make_input(&in[n_windows + i], (uint64_t)n_windows + i, x % n_windows);
    }
    long rss0 = rss_bytes();
    char err[256];
    struct cf_correlator *co =
        cf_correlator_new(rb, NULL, NULL, noop, NULL, err, sizeof(err));
    if (!co) {
        fprintf(stderr, "bench_correlate: %s\n", err);
        cf_free(in);
        return 1;
    }
    double t_start = cpu_ns();
    for (unsigned i = 0; i < n_windows; i++) {
        int64_t t = t0 + i / 16; /* 16 alerts per ms, all within the day */
        push_one(co, r, &in[i], t);
        cf_correlator_advance(co, t);
    }
    double open_ns = (cpu_ns() - t_start) / n_windows;
    json_t *st = cf_correlator_stats(co);
    long rss1 = rss_bytes();
    json_int_t open = json_integer_value(json_object_get(st, "windows_open"));
    json_int_t own = json_integer_value(json_object_get(st, "state_bytes"));
    json_decref(st);

    int64_t tlast = t0 + n_windows / 16;
    t_start = cpu_ns();
    for (unsigned i = 0; i < updates; i++) {
        int64_t t = tlast + 1 + i / 16;
        push_one(co, r, &in[n_windows + i], t);
        cf_correlator_advance(co, t);
    }
    double update_ns = (cpu_ns() - t_start) / updates;
    printf("%9u windows open=%lld  rss_delta=%.1f MB (%.0f B/window)  "
           "own=%.1f MB (%.0f B/window)  open %.0f ns/alert  "
           "update %.0f ns/alert (CPU)\n",
           n_windows, (long long)open, (rss1 - rss0) / 1048576.0,
           (double)(rss1 - rss0) / n_windows, own / 1048576.0,
           (double)own / n_windows, open_ns, update_ns);
    fflush(stdout);
    cf_correlator_destroy(co);
    cf_free(in);
    return open == (json_int_t)n_windows ? 0 : 1;
}

int main(int argc, char **argv) {
    unsigned max = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000000;
    struct cf_rulebook *rb = load();
    if (!rb) return 1;
    int rc = 0;
    unsigned sizes[] = {1000, 100000, 1000000};
    printf("bench_correlate: event_count, group-by User, 1 alert per window, "
           "then 200000 updates on random windows\n");
    /* each size in a fresh child so that RSS deltas do not hide behind
     * memory an earlier run left in the allocator */
    for (int i = 0; i < 3; i++) {
        if (sizes[i] > max) continue;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) _exit(run(rb, sizes[i]));
        int status = 1;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || status != 0) rc = 1;
    }
    cf_rulebook_destroy(rb);
    return rc;
}
