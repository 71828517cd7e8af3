/*
 * bench_detect.c - detection cost per event, stage by stage, on recorded
 * events and a Sigma rule set, and the test oracle's cost on the same
 * events.  `bench_detect --help` lists the options.
 *
 * Defaults: the SigmaHQ rules in $CF_SHARED_DIR (else ../shared beside the
 * source tree)/data/sigma/{rules,rules-threat-hunting,
 * rules-emerging-threats} and every OTRF recording under
 * data/otrf/datasets (read with `unzip -p`).  Lines are read into memory
 * first.
 *
 * Every figure is CPU time of this process (CLOCK_PROCESS_CPUTIME_ID), so
 * neighbours on a busy machine do not change it, and each stage is timed
 * as itself:
 *   decode        cf_event_decode on every line;
 *   route+match   cf_matcher_match on events decoded beforehand (batches
 *                 are decoded untimed, then matched timed);
 *   full path     chainfuse run's pipeline (cf_pipeline_run + finish:
 *                 decode, route, match, alerts, correlation, fusion,
 *                 records serialized) from memory to an output that
 *                 discards, i.e. everything but file I/O;
 *   oracle        cf_oracle_match and cf_matcher_match on the same
 *                 pre-decoded sample of events, so the ratio compares the
 *                 two on identical work.
 * Single-threaded: the figures are per core.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "connector.h"
#include "event.h"
#include "oracle.h"
#include "pipeline.h"
#include "ruleset.h"
#include "sigma.h"

static const char usage[] =
    "usage: bench_detect [--loops N] [--oracle-events N] [--rules PATH]...\n"
    "                    [--config FILE] [FILE.jsonl|FILE.zip...]\n"
    "\n"
    "Detection cost per event, stage by stage, in CPU time of this process:\n"
    "decode alone, route+match alone (on events decoded beforehand), the\n"
    "full path (chainfuse run's pipeline from memory, output discarded), and\n"
    "the test oracle against the matcher on the same sample of events.\n"
    "\n"
    "  --loops N          passes over the events for each stage (default 3)\n"
    "  --oracle-events N  events in the oracle sample, spread evenly over\n"
    "                     the set (default 5000; 0 = every event)\n"
    "  --rules PATH       rule file or folder; repeatable (default: SigmaHQ\n"
    "                     rules, rules-threat-hunting, rules-emerging-threats\n"
    "                     under $CF_SHARED_DIR/data/sigma)\n"
    "  --config FILE      chainfuse configuration (field mappings, "
    "logsources)\n"
    "  FILE               JSON lines, or a .zip of them (default: every OTRF\n"
    "                     recording under $CF_SHARED_DIR/data/otrf/datasets)\n";

/* Every input line, NUL-terminated, one after the other. */
struct lines {
    char *buf;
    size_t len, cap;
    size_t *off; /* off[i] is the start of line i; off[n] the end */
    size_t n, cap_off;
};

static void die(const char *msg) {
    fprintf(stderr, "bench_detect: %s\n", msg);
    exit(1);
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *line_at(const struct lines *l, size_t i, size_t *len) {
    *len = l->off[i + 1] - l->off[i] - 1;
    return l->buf + l->off[i];
}

static void add_line(struct lines *l, const char *s, size_t n) {
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    if (n == 0) return;
    if (l->len + n + 1 > l->cap) {
        l->cap = (l->cap + n + 1) * 2;
        if (!(l->buf = cf_realloc(l->buf, l->cap))) die("out of memory");
    }
    if (l->n + 1 >= l->cap_off) {
        l->cap_off = l->cap_off ? l->cap_off * 2 : 4096;
        if (!(l->off = cf_realloc(l->off, l->cap_off * sizeof *l->off)))
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
    free(line); /* getline's buffer comes from malloc */
}

static void load_file(struct lines *l, const char *path) {
    size_t n = strlen(path);
    if (n > 4 && strcasecmp(path + n - 4, ".zip") == 0) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "unzip -p '%s'", path);
        FILE *p = popen(cmd, "r");
        if (!p) die("cannot run unzip");
        read_stream(l, p);
        if (pclose(p) != 0) {
            fprintf(stderr, "bench_detect: unzip -p %s failed\n", path);
            exit(1);
        }
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
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0) continue;
        size_t len = strlen(path);
        if (S_ISDIR(st.st_mode) ||
            (len > 4 && strcasecmp(path + len - 4, ".zip") == 0)) {
            if (!(names = cf_realloc(names, (n + 1) * sizeof *names)) ||
                !(names[n++] = cf_strdup(path)))
                die("out of memory");
        }
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len > 4 && strcasecmp(names[i] + len - 4, ".zip") == 0) {
            load_file(l, names[i]);
            (*n_files)++;
        } else {
            load_zips(l, names[i], n_files);
        }
        cf_free(names[i]);
    }
    cf_free(names);
}

static void count_match(const struct cf_sigma_rule *rule, void *opaque) {
    CF_UNUSED(rule);
    (*(uint64_t *)opaque)++;
}

/* ---- decoded batches ----------------------------------------------------- */

/* Route+match is timed on events decoded beforehand, a batch at a time
 * so memory stays bounded whatever the number of events. */
#define BATCH 4096

struct batch {
    struct cf_event ev[BATCH];
    size_t n;
};

/* Decodes lines [from, from + count) of `which` (NULL: every line) into b;
 * lines that do not decode are left out and counted in *bad. */
static void decode_batch(struct batch *b, struct cf_decoder *dec,
                         const struct lines *l, const size_t *which,
                         size_t from, size_t count,
                         const struct cf_decode_limits *lim, uint64_t *bad) {
    b->n = 0;
    for (size_t k = from; k < from + count; k++) {
        size_t len, i = which ? which[k] : k;
        const char *s = line_at(l, i, &len);
        const char *reason;
        if (cf_event_decode(dec, &b->ev[b->n], s, len, lim, &reason) == CF_OK)
            b->n++;
        else if (bad)
            (*bad)++;
    }
}

/* ---- the full path: the pipeline from memory to nowhere ------------------ */

struct mem_input {
    const struct lines *lines;
    size_t next;
};

static cf_io_status mem_read(struct cf_input *in, struct cf_record *rec) {
    struct mem_input *m = in->ctx;
    if (m->next == m->lines->n) return CF_IO_EOF;
    memset(rec, 0, sizeof *rec);
    rec->data = line_at(m->lines, m->next, &rec->len);
    rec->pos.source = "bench";
    rec->pos.partition = -1;
    rec->pos.offset = (int64_t)++m->next;
    return CF_IO_OK;
}

static const struct cf_input_ops mem_input_ops = {.name = "memory",
                                                  .read = mem_read};

/* Counts records by kind and drops them. */
struct sink_counts {
    uint64_t alerts, incidents, dead, other, bytes;
};

static cf_io_status sink_write(struct cf_output *out,
                               const struct cf_out_record *rec) {
    struct sink_counts *c = out->ctx;
    const char *kind = rec->kind;
    c->bytes += rec->len;
    if (strcmp(kind, "alert") == 0)
        c->alerts++;
    else if (strcmp(kind, "incident") == 0)
        c->incidents++;
    else if (strcmp(kind, "dead-letter") == 0)
        c->dead++;
    else
        c->other++;
    return CF_IO_OK;
}

static cf_io_status sink_flush(struct cf_output *out) {
    CF_UNUSED(out);
    return CF_IO_OK;
}

static const struct cf_output_ops sink_ops = {
    .name = "discard", .write = sink_write, .flush = sink_flush};

/* One pass of the pipeline over every line; returns its CPU seconds. */
static double full_pass(const struct cf_config *cfg,
                        const struct cf_rulebook *rb,
                        const struct cf_ruleset *rs, const struct lines *l,
                        struct sink_counts *counts) {
    char err[512];
    struct mem_input src = {.lines = l};
    struct cf_input in = {.ops = &mem_input_ops, .ctx = &src};
    struct cf_output out = {.ops = &sink_ops, .ctx = counts};
    struct cf_output dead = {.ops = &sink_ops, .ctx = counts};
    struct cf_pipeline_setup setup = {
        .cfg = cfg, .rb = rb, .rs = rs, .out = &out, .dead_letter = &dead};
    struct cf_pipeline *p = cf_pipeline_new(&setup, err, sizeof err);
    if (!p) die(err);
    double t = cpu_now();
    if (cf_pipeline_run(p, &in, err, sizeof err) != CF_OK ||
        cf_pipeline_finish(p, err, sizeof err) != CF_OK)
        die(err);
    t = cpu_now() - t;
    cf_pipeline_destroy(p);
    return t;
}

/* ---- the oracle against the matcher ------------------------------------- */

struct rule_list {
    uint32_t idx[512];
    int n;
};

static void list_match(const struct cf_sigma_rule *rule, void *opaque) {
    struct rule_list *l = opaque;
    if (l->n < 512) l->idx[l->n++] = rule->index;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

struct oracle_figures {
    size_t events;
    uint64_t alerts, disagree;
    double matcher_s, oracle_s;
};

/* Both on the same pre-decoded sample, batch by batch; agreement is
 * checked outside the timed calls. */
static void run_oracle(struct oracle_figures *r, const struct cf_rulebook *rb,
                       const struct cf_config *cfg, struct cf_matcher *m,
                       struct cf_decoder *dec, struct batch *b,
                       const struct lines *l, const size_t *sample,
                       size_t n_sample) {
    char err[512];
    struct cf_oracle *o = cf_oracle_new(rb, cfg, err, sizeof err);
    if (!o) die(err);
    for (size_t from = 0; from < n_sample; from += BATCH) {
        size_t count = n_sample - from < BATCH ? n_sample - from : BATCH;
        uint64_t sink = 0;
        decode_batch(b, dec, l, sample, from, count, &cfg->limits, NULL);
        r->events += b->n;
        double t = cpu_now();
        for (size_t i = 0; i < b->n; i++)
            cf_matcher_match(m, &b->ev[i], count_match, &sink);
        r->matcher_s += cpu_now() - t;
        t = cpu_now();
        for (size_t i = 0; i < b->n; i++) {
            int got = cf_oracle_match(o, &b->ev[i], count_match, &r->alerts);
            if (got < 0) die("oracle: out of memory");
        }
        r->oracle_s += cpu_now() - t;
        for (size_t i = 0; i < b->n; i++) {
            struct rule_list x = {.n = 0}, y = {.n = 0};
            cf_matcher_match(m, &b->ev[i], list_match, &x);
            cf_oracle_match(o, &b->ev[i], list_match, &y);
            if (x.n) qsort(x.idx, (size_t)x.n, sizeof *x.idx, cmp_u32);
            if (y.n) qsort(y.idx, (size_t)y.n, sizeof *y.idx, cmp_u32);
            if (x.n != y.n ||
                memcmp(x.idx, y.idx, (size_t)x.n * sizeof *x.idx) != 0)
                r->disagree++;
        }
    }
    cf_oracle_destroy(o);
}

static void remove_tree(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_detect: could not remove %s\n", dir);
}

static long parse_count(const char *opt, const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 0) {
        fprintf(stderr, "bench_detect: %s needs a count, not '%s'\n%s", opt, s,
                usage);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    const char *rule_paths[64];
    const char *config_path = NULL;
    int n_rule_paths = 0, n_files = 0;
    long loops = 3, oracle_events = 5000;
    struct lines lines = {0};
    char err[1024], shared[4096], defaults[3][4200];
    const char *env = getenv("CF_SHARED_DIR");

    snprintf(shared, sizeof shared, "%s",
             env && *env ? env : CF_SOURCE_DIR "/../shared");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--loops") == 0 && i + 1 < argc) {
            loops = parse_count(a, argv[++i]);
        } else if (strcmp(a, "--oracle-events") == 0 && i + 1 < argc) {
            oracle_events = parse_count(a, argv[++i]);
        } else if (strcmp(a, "--rules") == 0 && i + 1 < argc) {
            if (n_rule_paths == 64) die("at most 64 --rules");
            rule_paths[n_rule_paths++] = argv[++i];
        } else if (strcmp(a, "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "bench_detect: unknown option %s\n%s", a, usage);
            return 2;
        } else {
            load_file(&lines, a);
            n_files++;
        }
    }
    if (loops < 1) loops = 1;
    if (n_rule_paths == 0) {
        const char *sub[3] = {"rules", "rules-threat-hunting",
                              "rules-emerging-threats"};
        for (int i = 0; i < 3; i++) {
            snprintf(defaults[i], sizeof defaults[i], "%s/data/sigma/%s",
                     shared, sub[i]);
            if (access(defaults[i], R_OK) == 0)
                rule_paths[n_rule_paths++] = defaults[i];
        }
        if (n_rule_paths == 0) {
            fprintf(stderr,
                    "bench_detect: no rules: %s/data/sigma is missing; set "
                    "CF_SHARED_DIR or pass --rules PATH\n",
                    shared);
            return 1;
        }
    }
    if (n_files == 0) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/data/otrf/datasets", shared);
        load_zips(&lines, dir, &n_files);
        if (lines.n == 0) {
            fprintf(stderr,
                    "bench_detect: no events: %s is missing; set "
                    "CF_SHARED_DIR or pass FILE.jsonl\n",
                    dir);
            return 1;
        }
    }

    /* Rules: load, then compile cold into a fresh cache folder and warm
     * from it. */
    struct cf_config *cfg = config_path
                                ? cf_config_load(config_path, err, sizeof err)
                                : cf_config_default();
    if (!cfg) die(config_path ? err : "out of memory");
    struct cf_rulebook *rb = cf_rulebook_new();
    if (!rb) die("out of memory");
    double t_load = cpu_now();
    for (int i = 0; i < n_rule_paths; i++)
        if (cf_rulebook_load(rb, rule_paths[i], cfg, err, sizeof err) != CF_OK)
            die(err);
    if (cf_rulebook_finish(rb, err, sizeof err) != CF_OK) die(err);
    t_load = cpu_now() - t_load;
    printf("rule files: %zu, %zu of them parsed, the others read from the "
           "rule file cache\n",
           rb->n_files, rb->n_files - rb->n_cached);
    char cache_dir[] = "/tmp/cf_bench_cache_XXXXXX";
    if (!mkdtemp(cache_dir)) die("cannot create a temporary cache folder");
    cf_free(cfg->cache_dir);
    if (!(cfg->cache_dir = cf_strdup(cache_dir))) die("out of memory");
    struct cf_ruleset_stats cold, warm;
    double t_cold = cpu_now();
    struct cf_ruleset *rs = cf_ruleset_compile(rb, cfg, err, sizeof err);
    t_cold = cpu_now() - t_cold;
    if (!rs) die(err);
    cf_ruleset_get_stats(rs, &cold);
    cf_ruleset_destroy(rs);
    size_t rejected = rb->n_rejected;
    double t_warm = cpu_now();
    rs = cf_ruleset_compile(rb, cfg, err, sizeof err);
    t_warm = cpu_now() - t_warm;
    if (!rs) die(err);
    cf_ruleset_get_stats(rs, &warm);
    remove_tree(cache_dir);

    printf("rules: %zu loaded (%zu documents, %zu rejected); %zu fields, "
           "%zu Hyperscan patterns (%zu literals), %zu checked directly\n",
           rb->n_rules, rb->n_documents, rejected, warm.fields, warm.patterns,
           warm.literal_patterns, warm.direct_patterns);
    printf("events: %zu lines from %d files (%.1f MB); %ld loops per stage\n",
           lines.n, n_files, (double)lines.len / 1e6, loops);
    printf("CPU time of this process (CLOCK_PROCESS_CPUTIME_ID), one "
           "thread:\n");
    printf("  load rules:            %.2f s\n", t_load);
    /* Compiles run on every core: wall-clock time is the start-up a user
     * waits for, CPU time what the machine pays. */
    printf("  compile, cold:         %.2f s, %.2f s wall (cache %s)\n", t_cold,
           cold.compile_seconds, cold.cache_hit ? "hit" : "miss");
    printf("  compile, warm:         %.2f s, %.2f s wall (cache %s)\n", t_warm,
           warm.compile_seconds, warm.cache_hit ? "hit" : "miss");

    struct cf_decoder *dec = cf_decoder_new();
    struct cf_matcher *m = cf_matcher_new(rs);
    struct batch *b = cf_calloc(1, sizeof *b);
    if (!dec || !m || !b) die("out of memory");
    for (size_t i = 0; i < BATCH; i++) cf_event_init(&b->ev[i]);

    /* Decode alone: one untimed pass grows the buffers, then the loops. */
    uint64_t bad = 0, events = 0, alerts = 0;
    struct cf_event *ev = &b->ev[0];
    for (size_t i = 0; i < lines.n; i++) {
        size_t len;
        const char *s = line_at(&lines, i, &len), *reason;
        if (cf_event_decode(dec, ev, s, len, &cfg->limits, &reason) != CF_OK)
            bad++;
    }
    double t_decode = cpu_now();
    for (long loop = 0; loop < loops; loop++)
        for (size_t i = 0; i < lines.n; i++) {
            size_t len;
            const char *s = line_at(&lines, i, &len), *reason;
            cf_event_decode(dec, ev, s, len, &cfg->limits, &reason);
        }
    t_decode = cpu_now() - t_decode;
    double n_decoded = (double)lines.n * (double)loops;

    /* Route+match alone, on events decoded beforehand; a fresh matcher
     * per loop, so the scan memo never starts with what a previous loop
     * saw. */
    double t_match = 0;
    uint64_t memo_hits = 0, memo_lookups = 0;
    for (long loop = 0; loop < loops; loop++) {
        if (loop > 0) {
            cf_matcher_destroy(m);
            if (!(m = cf_matcher_new(rs))) die("out of memory");
        }
        for (size_t from = 0; from < lines.n; from += BATCH) {
            size_t count = lines.n - from < BATCH ? lines.n - from : BATCH;
            decode_batch(b, dec, &lines, NULL, from, count, &cfg->limits, NULL);
            double t = cpu_now();
            for (size_t i = 0; i < b->n; i++)
                cf_matcher_match(m, &b->ev[i], count_match, &alerts);
            t_match += cpu_now() - t;
            events += b->n;
        }
        uint64_t hits, misses;
        cf_matcher_memo_counts(m, &hits, &misses);
        memo_hits += hits;
        memo_lookups += hits + misses;
    }
    alerts /= (uint64_t)loops;

    /* The full path, a fresh pipeline per loop (fusion starts empty). */
    struct sink_counts counts = {0};
    double t_full = 0;
    for (long loop = 0; loop < loops; loop++)
        t_full += full_pass(cfg, rb, rs, &lines, &counts);

    double us_decode = 1e6 * t_decode / n_decoded;
    double us_match = 1e6 * t_match / (double)events;
    double us_full = 1e6 * t_full / n_decoded; /* per line, as decode */
    printf("  decode:                %.2f us/line, %.0f lines/s (%llu "
           "lines do not decode)\n",
           us_decode, 1e6 / us_decode, (unsigned long long)bad);
    printf("  route+match:           %.2f us/event, %.0f events/s (%llu "
           "rule matches per pass)\n",
           us_match, 1e6 / us_match, (unsigned long long)alerts);
    printf("  scan memo:             %.1f%% of %.1f lookups per event "
           "answered without a scan\n",
           memo_lookups ? 100.0 * (double)memo_hits / (double)memo_lookups
                        : 0.0,
           (double)memo_lookups / (double)(events ? events : 1));
    printf("  full path:             %.2f us/line, %.0f lines/s (per pass: "
           "%llu alerts, %llu incident records, %llu dead letters, %.1f MB "
           "written)\n",
           us_full, 1e6 / us_full,
           (unsigned long long)(counts.alerts / (uint64_t)loops),
           (unsigned long long)(counts.incidents / (uint64_t)loops),
           (unsigned long long)(counts.dead / (uint64_t)loops),
           (double)counts.bytes / (double)loops / 1e6);
    /* No "rest" by subtraction: stages timed apart run with different
     * cache contents, so their sum is not the full path (it came out
     * above 100% here). */

    /* Oracle: a sample spread evenly over the lines. */
    size_t n_sample = oracle_events == 0 || (size_t)oracle_events > lines.n
                          ? lines.n
                          : (size_t)oracle_events;
    size_t *sample = cf_malloc((n_sample ? n_sample : 1) * sizeof *sample);
    if (!sample) die("out of memory");
    for (size_t k = 0; k < n_sample; k++)
        sample[k] = (size_t)((double)k * (double)lines.n / (double)n_sample);
    struct oracle_figures orc = {0};
    run_oracle(&orc, rb, cfg, m, dec, b, &lines, sample, n_sample);
    printf("oracle against the matcher, route+match on the same %zu "
           "pre-decoded events (every %.0fth line):\n",
           orc.events, (double)lines.n / (double)n_sample);
    printf("  matcher:               %.2f us/event\n",
           1e6 * orc.matcher_s / (double)orc.events);
    printf("  oracle:                %.2f us/event (%llu rule matches)\n",
           1e6 * orc.oracle_s / (double)orc.events,
           (unsigned long long)orc.alerts);
    printf("  the oracle takes %.0fx the matcher's CPU time; events where "
           "the matched rules differ: %llu\n",
           orc.oracle_s / orc.matcher_s, (unsigned long long)orc.disagree);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS: %.0f MB\n", (double)ru.ru_maxrss / 1024.0);

    for (size_t i = 0; i < BATCH; i++) cf_event_free(&b->ev[i]);
    cf_free(b);
    cf_free(sample);
    cf_matcher_destroy(m);
    cf_decoder_destroy(dec);
    cf_ruleset_destroy(rs);
    cf_rulebook_destroy(rb);
    cf_config_destroy(cfg);
    cf_free(lines.buf);
    cf_free(lines.off);
    return 0;
}
