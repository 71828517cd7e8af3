/*
 * bench_decode.c - decode+flatten throughput of cf_event_decode on a
 * JSON-lines file, next to jansson's json_loads on the same lines.
 *
 * Usage: bench_decode <file.jsonl> [loops] [jansson loops, 0 = skip]
 * The whole file is read into memory first so that only decoding is
 * timed, and each decoder gets one untimed pass first (buffers grown,
 * lines in cache) so neither is timed cold.  Timed in CPU time of the
 * thread; single thread: the figures are per core.  The comparison is of
 * unequal work, and says so: cf_event_decode parses, flattens and reads
 * the event time, json_loadb only parses into a tree.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "json_decode.h"

struct line {
    const char *s;
    size_t len;
};

/* CPU time of this thread: on a shared machine wall time mostly
 * measures the neighbours, and the figure wanted is per core. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    if (!fp) return NULL;
    for (;;) {
        if (n + 65536 > cap) {
            char *b;
            cap = cap ? cap * 2 : 1 << 20;
            if (!(b = cf_realloc(buf, cap))) {
                cf_free(buf);
                fclose(fp);
                return NULL;
            }
            buf = b;
        }
        got = fread(buf + n, 1, cap - n, fp);
        if (got == 0) break;
        n += got;
    }
    fclose(fp);
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    size_t len, n_lines = 0, cap_lines = 0, bytes = 0;
    struct line *lines = NULL;
    char *data;
    int loops = argc > 2 ? atoi(argv[2]) : 3;
    int jloops = argc > 3 ? atoi(argv[3]) : loops;
    int rc = 1;
    struct cf_decoder *dec = NULL;
    struct cf_event ev;
    const struct cf_decode_limits limits = {1 << 20, 64};
    uint64_t fields = 0, failed = 0, with_time = 0;
    double t0, w0, t_ours, w_ours, t_jansson = 0;

    cf_event_init(&ev);
    if (argc > 1 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: %s <file.jsonl> [loops] [jansson loops, 0 = skip]\n",
               argv[0]);
        return 0;
    }
    if (argc < 2 || loops < 1 || jloops < 0) {
        fprintf(stderr,
                "usage: %s <file.jsonl> [loops] [jansson loops]\n"
                "  e.g. unzip -p dataset.zip > /tmp/x.jsonl\n",
                argv[0]);
        return 2;
    }
    if (!(data = read_file(argv[1], &len))) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        if (end > i) {
            if (n_lines == cap_lines) {
                cap_lines = cap_lines ? cap_lines * 2 : 65536;
                lines = cf_realloc(lines, cap_lines * sizeof *lines);
                if (!lines) goto done;
            }
            lines[n_lines].s = data + i;
            lines[n_lines].len = end - i;
            bytes += end - i;
            n_lines++;
        }
        i = end + 1;
    }
    if (!(dec = cf_decoder_new())) goto done;

    /* One untimed pass grows every buffer to its final size. */
    for (size_t i = 0; i < n_lines; i++) {
        const char *reason;
        if (cf_event_decode(dec, &ev, lines[i].s, lines[i].len, &limits,
                            &reason) != CF_OK)
            failed++;
        else {
            fields += ev.n_fields;
            if (ev.time_ms != CF_TIME_UNKNOWN) with_time++;
        }
    }
    t0 = now();
    w0 = wall();
    for (int l = 0; l < loops; l++)
        for (size_t i = 0; i < n_lines; i++) {
            const char *reason;
            cf_event_decode(dec, &ev, lines[i].s, lines[i].len, &limits,
                            &reason);
        }
    t_ours = now() - t0;
    w_ours = wall() - w0;

    if (jloops > 0) /* one untimed pass, as for cf_event_decode */
        for (size_t i = 0; i < n_lines; i++) {
            json_error_t err;
            json_decref(json_loadb(lines[i].s, lines[i].len, 0, &err));
        }
    t0 = now();
    for (int l = 0; l < jloops; l++)
        for (size_t i = 0; i < n_lines; i++) {
            json_error_t err;
            json_t *j = json_loadb(lines[i].s, lines[i].len, 0, &err);
            json_decref(j);
        }
    t_jansson = now() - t0;

    double events = (double)n_lines * loops, mb = (double)bytes * loops / 1e6;
    printf("file: %s\n", argv[1]);
    printf("lines: %zu (%.1f MB, %.0f bytes/line), loops: %d, simdjson "
           "kernel: %s, flat scanner strings: %s\n",
           n_lines, bytes / 1e6, (double)bytes / (double)n_lines, loops,
           cf_json_implementation(),
           cf_json_wide_strings() ? "AVX-512 + SSE2" : "SSE2");
    printf("decoded: %llu failed: %llu, %.1f leaves/event, %.1f%% with time\n",
           (unsigned long long)(n_lines - failed), (unsigned long long)failed,
           (double)fields / (double)(n_lines - failed ? n_lines - failed : 1),
           100.0 * (double)with_time / (double)n_lines);
    printf("cf_event_decode (decode+flatten+time): %.0f events/s, %.0f MB/s "
           "per CPU-second (wall: %.0f events/s)\n",
           events / t_ours, mb / t_ours, events / w_ours);
    if (jloops > 0) {
        double jevents = (double)n_lines * jloops;
        double jmb = (double)bytes * jloops / 1e6;
        printf("jansson json_loadb (parse only):        %.0f events/s, "
               "%.0f MB/s per CPU-second\n",
               jevents / t_jansson, jmb / t_jansson);
        printf("cf_event_decode does its work in %.2fx the CPU time "
               "json_loadb takes to parse the same lines\n",
               (t_ours / events) / (t_jansson / jevents));
    }
    rc = 0;
done:
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
    cf_free(lines);
    cf_free(data);
    return rc;
}
