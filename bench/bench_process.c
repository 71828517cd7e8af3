/*
 * bench_process.c - the whole `chainfuse run` process, as a user runs it:
 * events per CPU-second (user + system, rule loading included), wall-clock
 * events per second, and peak RSS, on an OTRF recording replayed until it
 * holds at least --events events, with the whole SigmaHQ set.
 * `bench_process --help` lists the options.
 *
 * chainfuse runs as a child process (fork, exec, wait4), so its figures
 * are its own: getrusage of the child, not of this program.  Start-up (rule
 * loading from the warm cache, with no events) is measured by a run of its
 * own and reported beside the total, never subtracted from it.  A first
 * run, not counted, warms the rule cache and the page cache.  Each figure
 * is the best of --runs runs: on a shared machine the neighbours only ever
 * add time, so the least is the closest to what the process costs.
 *
 * Where the CPU goes inside the process comes from chainfuse itself
 * (--stats cpu_seconds: start-up, read, detect, fuse), each stage timed
 * as itself; build/bench_detect times decode and matching apart.
 */
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static const char usage[] =
    "usage: bench_process [--events N] [--runs N] [--threads N]...\n"
    "                     [--rules PATH]... [--chainfuse PATH] [RECORDING]\n"
    "\n"
    "Runs `chainfuse run` on RECORDING (JSON lines, or a .zip of them)\n"
    "replayed until it holds at least --events events, output discarded,\n"
    "and prints events per CPU-second (user + system of the chainfuse\n"
    "process), wall-clock events per second and peak RSS.\n"
    "\n"
    "  --events N      events to run (default 250000)\n"
    "  --runs N        runs per setting; the best is reported (default 3)\n"
    "  --threads N     also run with --threads N; repeatable (only when\n"
    "                  `chainfuse run --help` offers --threads)\n"
    "  --rules PATH    rule file or folder; repeatable (default: SigmaHQ\n"
    "                  rules, rules-threat-hunting, rules-emerging-threats\n"
    "                  under $CF_SHARED_DIR/data/sigma)\n"
    "  --chainfuse P   the binary (default: chainfuse beside this program)\n"
    "  RECORDING       default: LSASS_campaign_01 from the shared OTRF data\n";

#define MAX_ARGS 64

struct run_result {
    double cpu, wall; /* seconds */
    double sys;       /* the kernel's part of cpu */
    long maxrss_kb;
    int status;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_process: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long parse_count(const char *opt, const char *v) {
    char *end;
    long n = v ? strtol(v, &end, 10) : -1;
    if (!v || *end || n <= 0) die("%s needs a positive number", opt);
    return n;
}

/* Reads the recording (through `unzip -p` for a .zip) into memory. */
static char *read_recording(const char *path, size_t *len) {
    size_t n = strlen(path);
    FILE *f;
    bool zip = n > 4 && strcmp(path + n - 4, ".zip") == 0;
    if (zip) {
        char cmd[4096];
        if (strchr(path, '\'')) die("cannot quote %s for unzip", path);
        snprintf(cmd, sizeof cmd, "unzip -p '%s'", path);
        f = popen(cmd, "r");
    } else {
        f = fopen(path, "rb");
    }
    if (!f) die("cannot read %s", path);
    size_t cap = 1 << 20, used = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) die("out of memory reading %s", path);
        size_t got = fread(buf + used, 1, cap - used, f);
        used += got;
        if (got == 0) break;
        if (used == cap) buf = realloc(buf, cap *= 2);
    }
    if (zip ? pclose(f) != 0 : fclose(f) != 0)
        die("cannot read %s (unzip failed?)", path);
    if (used && buf[used - 1] != '\n') { /* end the last line */
        if (used == cap) buf = realloc(buf, cap + 1);
        if (!buf) die("out of memory reading %s", path);
        buf[used++] = '\n';
    }
    *len = used;
    return buf;
}

static size_t count_events(const char *buf, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n') n++;
    return n;
}

/* Runs argv with stdout and stderr to /dev/null; the child's own
 * resource use comes back from wait4. */
static struct run_result run_child(char *const *argv) {
    struct run_result r = {0};
    double t0 = wall_now();
    pid_t pid = fork();
    if (pid < 0) die("fork failed: %s", strerror(errno));
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    struct rusage ru;
    if (wait4(pid, &r.status, 0, &ru) < 0)
        die("wait4 failed: %s", strerror(errno));
    r.wall = wall_now() - t0;
    r.sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    r.cpu =
        (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + r.sys;
    r.maxrss_kb = ru.ru_maxrss;
    return r;
}

/* Where a run's --stats go, and where the best run's are kept. */
static char stats_run[64], stats_best[64];

/* The best (least CPU) of `runs` runs; exits when one fails.  With argv
 * writing --stats to stats_run, the best run's file ends as stats_best. */
static struct run_result best_of(char *const *argv, int runs) {
    struct run_result best = {0};
    for (int i = 0; i < runs; i++) {
        struct run_result r = run_child(argv);
        if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
            fprintf(stderr,
                    "bench_process: chainfuse failed (status %d):", r.status);
            for (int a = 0; argv[a]; a++) fprintf(stderr, " %s", argv[a]);
            fputc('\n', stderr);
            exit(1);
        }
        if (i == 0 || r.cpu < best.cpu) {
            best = r;
            rename(stats_run, stats_best);
        }
    }
    return best;
}

/* The stages of the best run, as chainfuse measured each (--stats
 * cpu_seconds): never derived here by subtraction. */
static void print_stages(void) {
    json_t *st = json_load_file(stats_best, 0, NULL);
    json_t *c = st ? json_object_get(st, "cpu_seconds") : NULL;
    if (!c) {
        printf("           (no cpu_seconds in chainfuse's --stats)\n");
    } else {
        printf("           stages, CPU s: start-up %.3f, read %.3f, "
               "detect %.3f, fuse %.3f (whole process %.3f)\n",
               json_number_value(json_object_get(c, "start_up")),
               json_number_value(json_object_get(c, "read")),
               json_number_value(json_object_get(c, "detect")),
               json_number_value(json_object_get(c, "fuse")),
               json_number_value(json_object_get(c, "process")));
    }
    json_decref(st);
}

/* True when `chainfuse run --help` names --threads. */
static bool offers_threads(const char *chainfuse) {
    char cmd[4200];
    char line[512];
    bool found = false;
    snprintf(cmd, sizeof cmd, "'%s' run --help 2>&1", chainfuse);
    FILE *p = popen(cmd, "r");
    if (!p) return false;
    while (fgets(line, sizeof line, p))
        if (strstr(line, "--threads")) found = true;
    pclose(p);
    return found;
}

int main(int argc, char **argv) {
    long events = 250000, runs = 3;
    long threads[8];
    int n_threads = 0;
    const char *rules[16];
    int n_rules = 0;
    const char *recording = NULL, *chainfuse = NULL;
    char defaults[4][4096], self[4096], bin[4096];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--events") == 0) {
            events = parse_count(a, v), i++;
        } else if (strcmp(a, "--runs") == 0) {
            runs = parse_count(a, v), i++;
        } else if (strcmp(a, "--threads") == 0) {
            if (n_threads == 8) die("%s: at most 8", a);
            threads[n_threads++] = parse_count(a, v), i++;
        } else if (strcmp(a, "--rules") == 0 && v) {
            if (n_rules == 16) die("%s: at most 16", a);
            rules[n_rules++] = v, i++;
        } else if (strcmp(a, "--chainfuse") == 0 && v) {
            chainfuse = v, i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "bench_process: unknown option %s\n%s", a, usage);
            return 2;
        } else {
            recording = a;
        }
    }

    const char *shared = getenv("CF_SHARED_DIR");
    if (!shared) shared = CF_SOURCE_DIR "/../shared";
    if (!recording) {
        snprintf(defaults[3], sizeof defaults[3],
                 "%s/data/otrf/datasets/compound/LSASS_campaign_01/"
                 "metasploit_logonpasswords_lsass_memory_dump.zip",
                 shared);
        recording = defaults[3];
    }
    if (n_rules == 0) {
        const char *sub[3] = {"rules", "rules-threat-hunting",
                              "rules-emerging-threats"};
        for (int s = 0; s < 3; s++) {
            struct stat st;
            snprintf(defaults[s], sizeof defaults[s], "%s/data/sigma/%s",
                     shared, sub[s]);
            if (stat(defaults[s], &st) == 0) rules[n_rules++] = defaults[s];
        }
        if (n_rules == 0) die("no SigmaHQ rules under %s/data/sigma", shared);
    }
    if (!chainfuse) {
        snprintf(self, sizeof self, "%s", argv[0]);
        snprintf(bin, sizeof bin, "%s/chainfuse", dirname(self));
        chainfuse = bin;
    }
    if (access(chainfuse, X_OK) != 0)
        die("cannot run %s (build it, or give --chainfuse)", chainfuse);

    /* The input: the recording replayed until it holds enough events. */
    size_t rec_len;
    char *rec = read_recording(recording, &rec_len);
    size_t per_copy = count_events(rec, rec_len);
    if (per_copy == 0) die("%s holds no events", recording);
    size_t copies = ((size_t)events + per_copy - 1) / per_copy;
    char input[] = "/tmp/chainfuse-bench-XXXXXX";
    int fd = mkstemp(input);
    if (fd < 0) die("cannot create a temporary file: %s", strerror(errno));
    for (size_t c = 0; c < copies; c++)
        for (size_t off = 0; off < rec_len;) {
            ssize_t w = write(fd, rec + off, rec_len - off);
            if (w <= 0) {
                unlink(input);
                die("cannot write the input: %s", strerror(errno));
            }
            off += (size_t)w;
        }
    close(fd);
    free(rec);
    size_t n_events = copies * per_copy;

    /* argv: chainfuse run --rules R... --input F --output /dev/null
     * [--threads N] */
    char *args[MAX_ARGS];
    int n = 0;
    args[n++] = (char *)chainfuse;
    args[n++] = "run";
    for (int r = 0; r < n_rules; r++) {
        args[n++] = "--rules";
        args[n++] = (char *)rules[r];
    }
    args[n++] = "--input";
    int input_arg = n;
    args[n++] = input;
    args[n++] = "--output";
    args[n++] = "/dev/null";
    args[n++] = "--dead-letter";
    args[n++] = "/dev/null";
    args[n] = NULL;

    printf("bench_process: %zu events (%s replayed %zu times), %d rule "
           "paths, %s\n",
           n_events, recording, copies, n_rules, chainfuse);

    args[input_arg] = "/dev/null";
    snprintf(stats_run, sizeof stats_run, "/tmp/chainfuse-bench-%d.run",
             (int)getpid());
    snprintf(stats_best, sizeof stats_best, "/tmp/chainfuse-bench-%d.best",
             (int)getpid());
    best_of(args, 1); /* warms the rule cache; not counted */
    struct run_result start = best_of(args, (int)runs);
    args[input_arg] = input;
    best_of(args, 1); /* warms the page cache; not counted */

    printf("start-up, no events: %.3f s CPU, %.3f s wall, peak RSS %.1f MB\n",
           start.cpu, start.wall, (double)start.maxrss_kb / 1024);
    printf("%-10s %12s %10s %14s %12s %10s\n", "threads", "CPU s", "wall s",
           "events/CPU-s", "events/s", "RSS MB");

    bool threaded = n_threads > 0 && offers_threads(chainfuse);
    if (n_threads > 0 && !threaded)
        printf("(chainfuse run offers no --threads: only the default "
               "measured)\n");
    int settings = threaded ? n_threads + 1 : 1;
    char tbuf[8][24];
    for (int s = 0; s < settings; s++) {
        int m = n;
        const char *label = "default";
        args[m++] = "--stats";
        args[m++] = stats_run;
        args[m] = NULL;
        if (s > 0) {
            snprintf(tbuf[s], sizeof tbuf[s], "%ld", threads[s - 1]);
            args[m++] = "--threads";
            args[m++] = tbuf[s];
            args[m] = NULL;
            label = tbuf[s];
        }
        struct run_result r = best_of(args, (int)runs);
        args[n] = NULL;
        printf("%-10s %12.3f %10.3f %14.0f %12.0f %10.1f\n", label, r.cpu,
               r.wall, (double)n_events / r.cpu, (double)n_events / r.wall,
               (double)r.maxrss_kb / 1024);
        printf("           of the CPU s, in the kernel (system time): %.3f\n",
               r.sys);
        print_stages();
    }
    unlink(input);
    unlink(stats_run);
    unlink(stats_best);
    return 0;
}
