/*
 * bench_detect.c - detection throughput benchmark: decode, route and
 * match recorded events against a Sigma rule set, and compare with the
 * test oracle on the same events.
 *
 *   bench_detect [--loops N] [--oracle-events N] [--rules DIR]...
 *                [FILE.jsonl...]
 *
 * Defaults: the SigmaHQ rules in ../shared/data/sigma/{rules,
 * rules-threat-hunting,rules-emerging-threats} beside the source tree and
 * every OTRF recording in ../shared/data/otrf/datasets (read with
 * `unzip -p`).  Events are loaded into memory first so the timing covers
 * only decode + route + match.  Single-threaded: the figures are per core.
 * The oracle is some 300 times slower, so it sees the first
 * --oracle-events events (default 5000; 0 = all of them).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "event.h"
#include "fusion.h"
#include "ruleset.h"
#include "sigma.h"
/* The oracle (library chainfuse_oracle, tests/oracle/oracle.c) is
 * written alongside the matcher; until it exists the benchmark reports
 * the matcher alone. */
#if __has_include("../tests/oracle/oracle.c")
#include "oracle.h"
#define HAVE_ORACLE 1
#endif

struct lines {
    char *buf;
    size_t len, cap;
    size_t *off; /* start of each line in buf */
    size_t n, cap_off;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *msg) {
    fprintf(stderr, "bench_detect: %s\n", msg);
    exit(1);
}

static void add_line(struct lines *l, const char *s, size_t n) {
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    if (n == 0) return;
    if (l->len + n + 1 > l->cap) {
        l->cap = (l->cap + n + 1) * 2;
        if (!(l->buf = realloc(l->buf, l->cap))) die("out of memory");
    }
    if (l->n == l->cap_off) {
        l->cap_off = l->cap_off ? l->cap_off * 2 : 4096;
        if (!(l->off = realloc(l->off, (l->cap_off + 1) * sizeof *l->off)))
            die("out of memory");
    }
    l->off[l->n++] = l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len++] = '\0';
    l->off[l->n] = l->len;
}

static void read_stream(struct lines *l, FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) add_line(l, line, (size_t)n);
    free(line);
}

static void load_file(struct lines *l, const char *path) {
    size_t n = strlen(path);
    if (n > 4 && strcmp(path + n - 4, ".zip") == 0) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "unzip -p '%s'", path);
        FILE *p = popen(cmd, "r");
        if (!p) die("cannot run unzip");
        read_stream(l, p);
        if (pclose(p) != 0) fprintf(stderr, "bench_detect: unzip -p %s failed\n", path);
        return;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench_detect: cannot open %s\n", path);
        exit(1);
    }
    read_stream(l, f);
    fclose(f);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every .zip under dir, in sorted order so runs are comparable. */
static void load_zips(struct lines *l, const char *dir, int *n_files) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    if (!d) return;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0) continue;
        size_t len = strlen(path);
        if (S_ISDIR(st.st_mode) ||
            (len > 4 && strcmp(path + len - 4, ".zip") == 0)) {
            if (!(names = realloc(names, (n + 1) * sizeof *names)) ||
                !(names[n++] = strdup(path)))
                die("out of memory");
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len > 4 && strcmp(names[i] + len - 4, ".zip") == 0) {
            load_file(l, names[i]);
            (*n_files)++;
        } else {
            load_zips(l, names[i], n_files);
        }
        free(names[i]);
    }
    free(names);
}

static void count_match(const struct cf_sigma_rule *rule, void *opaque) {
    CF_UNUSED(rule);
    (*(uint64_t *)opaque)++;
}

/* The whole detection path as `chainfuse run` does it, less output
 * serialization: alerts are built and fed to correlation and fusion. */
struct full_path {
    const struct cf_event *ev;
    const struct cf_entity_map *entities;
    struct cf_fusion *fusion;
    uint64_t alerts, records;
};

static void fuse_match(const struct cf_sigma_rule *rule, void *opaque) {
    struct full_path *fp = opaque;
    struct cf_alert alert;
    if (cf_alert_from_event(&alert, rule, fp->ev, fp->entities) == CF_OK) {
        fp->alerts++;
        cf_fusion_push(fp->fusion, &alert);
    }
    cf_alert_clear(&alert);
}

static void count_record(const char *kind, json_t *record,
                         const struct cf_position *pos, void *opaque) {
    CF_UNUSED(kind);
    CF_UNUSED(record);
    CF_UNUSED(pos);
    ((struct full_path *)opaque)->records++;
}

struct oracle_result {
    bool ran;
    const char *why;
    uint64_t events, alerts, disagree;
    double seconds;
};

#ifdef HAVE_ORACLE
/* Rule indexes a match produced, to compare matcher and oracle. */
struct rule_list {
    uint32_t idx[256];
    int n;
};

static void list_match(const struct cf_sigma_rule *rule, void *opaque) {
    struct rule_list *l = opaque;
    if (l->n < 256) l->idx[l->n++] = rule->index;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}
#endif

/* The oracle on the same events, once (it is meant to be simple, not
 * fast); agreement is checked outside the timed loop. */
static void run_oracle(struct oracle_result *r, struct cf_rulebook *rb,
                       const struct cf_config *cfg, struct cf_decoder *dec,
                       struct cf_event *ev, const struct lines *lines,
                       struct cf_matcher *m, size_t max_events) {
#ifdef HAVE_ORACLE
    char err[512];
    struct cf_oracle *oracle = cf_oracle_new(rb, cfg, err, sizeof err);
    if (!oracle) {
        fprintf(stderr, "bench_detect: oracle: %s\n", err);
        r->why = "the oracle could not be built";
        return;
    }
    size_t n_lines = max_events && max_events < lines->n ? max_events : lines->n;
    double t = now();
    for (size_t i = 0; i < n_lines; i++) {
        const char *reason;
        if (cf_event_decode(dec, ev, lines->buf + lines->off[i],
                            lines->off[i + 1] - lines->off[i] - 1, &cfg->limits,
                            &reason) != CF_OK)
            continue;
        r->events++;
        r->alerts += (uint64_t)cf_oracle_match(oracle, ev, count_match,
                                               &(uint64_t){0});
    }
    r->seconds = now() - t;
    for (size_t i = 0; i < n_lines; i++) {
        const char *reason;
        struct rule_list a = {.n = 0}, b = {.n = 0};
        if (cf_event_decode(dec, ev, lines->buf + lines->off[i],
                            lines->off[i + 1] - lines->off[i] - 1, &cfg->limits,
                            &reason) != CF_OK)
            continue;
        cf_matcher_match(m, ev, list_match, &a);
        cf_oracle_match(oracle, ev, list_match, &b);
        qsort(a.idx, (size_t)a.n, sizeof *a.idx, cmp_u32);
        qsort(b.idx, (size_t)b.n, sizeof *b.idx, cmp_u32);
        if (a.n != b.n || memcmp(a.idx, b.idx, (size_t)a.n * sizeof *a.idx) != 0)
            r->disagree++;
    }
    cf_oracle_destroy(oracle);
    r->ran = true;
#else
    CF_UNUSED(rb);
    CF_UNUSED(cfg);
    CF_UNUSED(dec);
    CF_UNUSED(ev);
    CF_UNUSED(lines);
    CF_UNUSED(m);
    CF_UNUSED(max_events);
    r->why = "tests/oracle/oracle.c is not there yet";
#endif
}

static void remove_tree(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_detect: could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    const char *rule_dirs[64];
    int n_rule_dirs = 0, n_files = 0;
    long loops = 3;
    size_t oracle_events = 5000;
    struct lines lines = {0};
    char err[1024];
    char shared[4096];
    char defaults[3][4200];
    const char *env = getenv("CF_SHARED_DIR");

    snprintf(shared, sizeof shared, "%s", env ? env : CF_SOURCE_DIR "/../shared");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--loops") == 0 && i + 1 < argc) {
            loops = atol(argv[++i]);
        } else if (strcmp(argv[i], "--oracle-events") == 0 && i + 1 < argc) {
            oracle_events = (size_t)atol(argv[++i]);
        } else if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc) {
            if (n_rule_dirs < 64) rule_dirs[n_rule_dirs++] = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr,
                    "usage: bench_detect [--loops N] [--oracle-events N] "
                    "[--rules DIR]... "
                    "[FILE.jsonl|FILE.zip...]\n");
            return 2;
        } else {
            load_file(&lines, argv[i]);
            n_files++;
        }
    }
    if (n_rule_dirs == 0) {
        const char *sub[3] = {"rules", "rules-threat-hunting",
                              "rules-emerging-threats"};
        for (int i = 0; i < 3; i++) {
            snprintf(defaults[i], sizeof defaults[i], "%s/data/sigma/%s", shared,
                     sub[i]);
            if (access(defaults[i], R_OK) == 0) rule_dirs[n_rule_dirs++] = defaults[i];
        }
        if (n_rule_dirs == 0) {
            fprintf(stderr, "bench_detect: no rules: %s/data/sigma is missing; "
                            "pass --rules DIR\n", shared);
            return 1;
        }
    }
    if (n_files == 0) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/data/otrf/datasets", shared);
        load_zips(&lines, dir, &n_files);
        if (lines.n == 0) {
            fprintf(stderr, "bench_detect: no events: %s is missing; pass "
                            "FILE.jsonl\n", dir);
            return 1;
        }
    }
    if (loops < 1) loops = 1;

    /* Rules. */
    struct cf_config *cfg = cf_config_default();
    struct cf_rulebook *rb = cf_rulebook_new();
    if (!cfg || !rb) die("out of memory");
    double t0 = now();
    for (int i = 0; i < n_rule_dirs; i++)
        if (cf_rulebook_load(rb, rule_dirs[i], cfg, err, sizeof err) != CF_OK) {
            fprintf(stderr, "bench_detect: %s\n", err);
            return 1;
        }
    if (cf_rulebook_finish(rb, err, sizeof err) != CF_OK) {
        fprintf(stderr, "bench_detect: %s\n", err);
        return 1;
    }
    double t_load = now() - t0;

    /* Compile cold into a fresh cache directory, then warm from it. */
    char cache_dir[] = "/tmp/cf_bench_cache_XXXXXX";
    if (!mkdtemp(cache_dir)) die("cannot create a temporary cache directory");
    free(cfg->cache_dir);
    cfg->cache_dir = strdup(cache_dir);
    struct cf_ruleset_stats cold, warm;
    struct cf_ruleset *rs = cf_ruleset_compile(rb, cfg, err, sizeof err);
    if (!rs) {
        fprintf(stderr, "bench_detect: compile: %s\n", err);
        return 1;
    }
    cf_ruleset_get_stats(rs, &cold);
    cf_ruleset_destroy(rs);
    size_t rejected_before_warm = rb->n_rejected;
    rs = cf_ruleset_compile(rb, cfg, err, sizeof err);
    if (!rs) {
        fprintf(stderr, "bench_detect: compile: %s\n", err);
        return 1;
    }
    cf_ruleset_get_stats(rs, &warm);
    remove_tree(cache_dir);

    printf("rules: %zu loaded in %.2f s (%zu documents, %zu rejected by the "
           "parser/compiler)\n",
           rb->n_rules, t_load, rb->n_documents, rejected_before_warm);
    printf("compiled: %zu rules, %zu fields, %zu Hyperscan patterns, %zu direct "
           "patterns\n",
           warm.rules, warm.fields, warm.patterns, warm.direct_patterns);
    printf("compile: cold %.3f s (cache %s), warm %.3f s (cache %s)\n",
           cold.compile_seconds, cold.cache_hit ? "hit" : "miss",
           warm.compile_seconds, warm.cache_hit ? "hit" : "miss");
    printf("events: %zu lines from %d files (%.1f MB), %ld loops\n", lines.n,
           n_files, (double)lines.len / 1e6, loops);

    /* Decode + route + match. */
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_matcher *m = cf_matcher_new(rs);
    struct cf_event ev;
    struct cf_decode_limits limits = cfg->limits;
    uint64_t alerts = 0, events = 0, bad = 0;
    if (!dec || !m) die("out of memory");
    cf_event_init(&ev);

    /* Decode alone first, to tell its cost from the matcher's. */
    double t_decode = now();
    for (size_t i = 0; i < lines.n; i++) {
        const char *reason;
        cf_event_decode(dec, &ev, lines.buf + lines.off[i],
                        lines.off[i + 1] - lines.off[i] - 1, &limits, &reason);
    }
    t_decode = now() - t_decode;

    double t_match = now();
    for (long loop = 0; loop < loops; loop++) {
        for (size_t i = 0; i < lines.n; i++) {
            const char *reason;
            if (cf_event_decode(dec, &ev, lines.buf + lines.off[i],
                                lines.off[i + 1] - lines.off[i] - 1, &limits,
                                &reason) != CF_OK) {
                bad++;
                continue;
            }
            events++;
            cf_matcher_match(m, &ev, count_match, &alerts);
        }
    }
    t_match = now() - t_match;

    /* One pass of the full path (a replay would only feed fusion the
     * same event times again). */
    char ferr[256];
    struct full_path fp = {.ev = &ev};
    struct cf_entity_map *emap = cf_entity_map_new(NULL, ferr, sizeof ferr);
    fp.entities = emap;
    fp.fusion = cf_fusion_new(cfg, rb, count_record, &fp, ferr, sizeof ferr);
    if (!emap || !fp.fusion) die(ferr);
    uint64_t full_events = 0;
    double t_full = now();
    for (size_t i = 0; i < lines.n; i++) {
        const char *reason;
        if (cf_event_decode(dec, &ev, lines.buf + lines.off[i],
                            lines.off[i + 1] - lines.off[i] - 1, &limits,
                            &reason) != CF_OK)
            continue;
        full_events++;
        if (ev.time_ms != CF_TIME_UNKNOWN) cf_fusion_observe(fp.fusion, ev.time_ms);
        cf_matcher_match(m, &ev, fuse_match, &fp);
    }
    cf_fusion_finish(fp.fusion);
    t_full = now() - t_full;
    cf_fusion_destroy(fp.fusion);
    cf_entity_map_destroy(emap);

    struct oracle_result orc = {0};
    run_oracle(&orc, rb, cfg, dec, &ev, &lines, m, oracle_events);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rate = (double)events / t_match;
    printf("single-threaded (figures are per core):\n");
    double us_decode = 1e6 * t_decode / (double)lines.n;
    printf("  decode only:           %.0f events/s, %.2f us/event\n",
           (double)lines.n / t_decode, us_decode);
    printf("  decode+route+match:    %llu events, %llu alerts (%llu rejected "
           "lines), %.3f s, %.0f events/s, %.2f us/event\n",
           (unsigned long long)events, (unsigned long long)alerts,
           (unsigned long long)bad, t_match, rate, 1e6 / rate);
    printf("  route+match alone:     ~%.2f us/event, ~%.0f events/s (the "
           "difference of the two lines above)\n",
           1e6 / rate - us_decode, 1e6 / (1e6 / rate - us_decode));
    printf("  full path (decode+route+match+alerts+correlation+fusion, "
           "1 pass): %llu events, %llu alerts, %llu fusion records, %.3f s, "
           "%.0f events/s\n",
           (unsigned long long)full_events, (unsigned long long)fp.alerts,
           (unsigned long long)fp.records, t_full,
           (double)full_events / t_full);
    if (orc.ran) {
        double orate = (double)orc.events / orc.seconds;
        printf("  oracle (decode+match): %llu events, %llu alerts, %.3f s, %.0f "
               "events/s; matcher is %.1fx faster; events where the matched "
               "rules differ: %llu\n",
               (unsigned long long)orc.events, (unsigned long long)orc.alerts,
               orc.seconds, orate, rate / orate,
               (unsigned long long)orc.disagree);
    } else {
        printf("  oracle: not run (%s)\n", orc.why);
    }
    printf("peak RSS: %.1f MB\n", (double)ru.ru_maxrss / 1024.0);

    cf_event_free(&ev);
    cf_matcher_destroy(m);
    cf_decoder_destroy(dec);
    cf_ruleset_destroy(rs);
    cf_rulebook_destroy(rb);
    cf_config_destroy(cfg);
    free(lines.buf);
    free(lines.off);
    return 0;
}
