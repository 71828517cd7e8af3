/*
 * bench_prevalence.c - what fusion's prevalence tracking costs per event
 * and in memory (issue 9 wants every event's entities counted; issue 12
 * wants throughput).
 *
 * Reads JSON lines (e.g. the OTRF LSASS campaign 01 recording unzipped,
 * or the demo scenario from gen_scenario), decodes
 * them in batches of 1024 outside the timed part, then times
 * cf_fusion_sight over each batch: entity lookup, normalisation, hashing
 * and the table updates, CPU time of the process
 * (CLOCK_PROCESS_CPUTIME_ID).  Repeats the file `passes` times (default
 * 3) and prints ns per event for each pass and the table's bytes and
 * values (fusion stats).
 *
 * Usage: bench_prevalence FILE.jsonl [passes]
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "config.h"
#include "event.h"
#include "fusion.h"

#define BATCH 1024

static double cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    char err[256];
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: bench_prevalence FILE.jsonl [passes]\n");
        return 2;
    }
    int passes = argc > 2 ? atoi(argv[2]) : 3;
    struct cf_config *cfg = cf_config_default();
    struct cf_entity_map *map = cf_entity_map_new(NULL, err, sizeof err);
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_fusion *fu =
        cfg ? cf_fusion_new(cfg, NULL, NULL, NULL, err, sizeof err) : NULL;
    static struct cf_event ev[BATCH];
    char *lines[BATCH] = {0};
    if (!map || !dec || !fu) {
        fprintf(stderr, "bench_prevalence: setup failed: %s\n", err);
        return 1;
    }
    for (int i = 0; i < BATCH; i++) cf_event_init(&ev[i]);
    for (int p = 0; p < passes; p++) {
        FILE *f = fopen(argv[1], "r");
        if (!f) {
            perror(argv[1]);
            return 1;
        }
        double ns = 0;
        size_t events = 0;
        char *line = NULL;
        size_t cap = 0;
        ssize_t r;
        for (bool more = true; more;) {
            int n = 0;
            while (n < BATCH && (more = (r = getline(&line, &cap, f)) > 0)) {
                const char *why = NULL;
                free(lines[n]);
                lines[n] = strndup(line, (size_t)r);
                if (cf_event_decode(dec, &ev[n], lines[n], (size_t)r, NULL,
                                    &why) == CF_OK)
                    n++;
            }
            double t0 = cpu_ns();
            for (int i = 0; i < n; i++) cf_fusion_sight(fu, map, &ev[i]);
            ns += cpu_ns() - t0;
            events += (size_t)n;
        }
        free(line);
        fclose(f);
        printf("pass %d: %zu events, %.0f ns per event in cf_fusion_sight\n",
               p + 1, events, events ? ns / (double)events : 0.0);
    }
    json_t *st = cf_fusion_stats(fu);
    printf(
        "prevalence table: %lld bytes, %lld values, %lld evicted\n",
        (long long)json_integer_value(json_object_get(st, "prevalence_bytes")),
        (long long)json_integer_value(json_object_get(st, "prevalence_values")),
        (long long)json_integer_value(
            json_object_get(st, "prevalence_evicted")));
    json_decref(st);
    for (int i = 0; i < BATCH; i++) {
        cf_event_free(&ev[i]);
        free(lines[i]);
    }
    cf_fusion_destroy(fu);
    cf_decoder_destroy(dec);
    cf_entity_map_destroy(map);
    cf_config_destroy(cfg);
    return 0;
}
