/*
 * chainfuse.c - the command line.
 *
 *   chainfuse check --rules PATH [--rules PATH ...] [--config FILE] [--json]
 *   chainfuse run   --rules PATH... [--input URL] [--output URL ...]
 *                   [--state DIR] [--config FILE] [--dead-letter FILE]
 *                   [--no-alerts] [--stats FILE|-]
 *   chainfuse config --reference | --check FILE
 *
 * Exit status: 0 when the command ran (check: whatever it rejected, as
 * long as one rule loaded), 1 on a runtime failure (a file that cannot
 * be read or written, rules that cannot be loaded or of which none
 * loaded, an input that fails part-way), 2 on a usage error (an unknown
 * option, a missing or stray argument, a path given twice, one file
 * given for two roles, a configuration file that cannot be used).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "deadletter.h"
#include "fieldmap.h"
#include "file/file_input.h"
#include "file/file_output.h"
#include "fusion.h"
#include "logsource.h"
#include "pipeline.h"
#include "registry.h"
#include "ruleset.h"
#include "sigma.h"
#include "sigma_correlation.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* Whether the ruleset and the rulebook are freed before the process exits.
 * Only for a leak checker: the SigmaHQ set is some 100,000 allocations,
 * and freeing them one by one took 7.5 ms of a 95 ms run with no events,
 * for memory the kernel takes back at once at exit.  The AddressSanitizer
 * build (CF_SANITIZE) frees everything, so its leak report stays exact. */
#if defined(__SANITIZE_ADDRESS__)
#define FREE_RULES_AT_EXIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define FREE_RULES_AT_EXIT 1
#endif
#endif
#ifndef FREE_RULES_AT_EXIT
#define FREE_RULES_AT_EXIT 0
#endif

/* The end of a command: the ruleset and rulebook it loaded are about to
 * be given back with the whole process (FREE_RULES_AT_EXIT). */
static void rules_done(struct cf_ruleset *rs, struct cf_rulebook *rb) {
    if (!FREE_RULES_AT_EXIT) return;
    cf_ruleset_destroy(rs);
    cf_rulebook_destroy(rb);
}

/* The one mutable global: how many SIGTERM/SIGINT arrived.  The first
 * stops reading (the run then flushes, checkpoints, commits and exits
 * 0); a second gives up waiting for an output that still retries.
 * tests/integration/no_mutable_globals.sh allows it by name. */
static volatile sig_atomic_t stop_signals;

static void on_stop_signal(int sig) {
    (void)sig;
    if (stop_signals < 2) stop_signals++;
}

/* SA_RESTART: an interrupted read goes on (zlib would report EINTR as a
 * read error); the flag is looked at between records. */
static void catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* --state DIR: created when missing; must be writable before any input
 * is read, or the first checkpoint would fail hours later; and used by
 * one run at a time (DIR/lock, held until exit): two runs checkpointing
 * into one directory would each replace the other's state. */
static bool prepare_state_dir(const char *dir) {
    struct stat st;
    char lock[4096];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "chainfuse: --state: cannot create %s: %s\n", dir,
                strerror(errno));
        return false;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "chainfuse: --state: %s is not a directory\n", dir);
        return false;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "chainfuse: --state: %s is not writable: %s\n", dir,
                strerror(errno));
        return false;
    }
    snprintf(lock, sizeof lock, "%s/lock", dir);
    /* fcntl, not flock: a child writing a checkpoint in the background
     * does not inherit it, so a restart after a crash is not refused
     * while an orphaned child finishes */
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0) {
        fprintf(stderr,
                "chainfuse: --state: %s is in use by another chainfuse run "
                "(%s)\n",
                dir, fd < 0 ? strerror(errno) : "its lock is held");
        if (fd >= 0) close(fd);
        return false;
    }
    return true; /* fd stays open: the lock lasts as long as the run */
}

static const char *const main_usage =
    "usage: chainfuse <command> [options]\n"
    "\n"
    "Streaming Sigma detection and kill-chain fusion of security events.\n"
    "\n"
    "commands:\n"
    "  check   compile rules and report which were rejected and why\n"
    "  run     match events (JSON lines) and write alerts and incidents\n"
    "  config  print the configuration reference, or check a file\n"
    "  deadletter  list a dead-letter file, or replay its output records\n"
    "\n"
    "options:\n"
    "  --help      show this help (and `chainfuse <command> --help`)\n"
    "  --version   print the version\n";

static const char *const check_usage =
    "usage: chainfuse check --rules PATH [--rules PATH ...] [--config FILE]\n"
    "                       [--json]\n"
    "\n"
    "Loads and compiles Sigma rules (files, or directories searched\n"
    "recursively for .yml/.yaml) and reports what loaded and what was\n"
    "rejected, with the reason for each rejection, and the rules whose\n"
    "alerts only feed correlations (no `generate: true`).  Exits 0 when it\n"
    "ran, whatever it rejected, and 1 when no rule loaded at all.\n"
    "\n"
    "  --rules PATH    rule file or directory; repeat for more\n"
    "  --config FILE   chainfuse configuration (placeholders, mappings)\n"
    "  --json          print one JSON object: rules_total, rules_loaded,\n"
    "                  rules_rejected, rejected [{path, id, reason}],\n"
    "                  converted [{path, id, note}] (legacy aggregations\n"
    "                  loaded as correlations), correlation_only [{path,\n"
    "                  id, title, level, correlations, warning}]\n";

static const char *const run_usage =
    "usage: chainfuse run --rules PATH [--rules PATH ...] [--input URL]\n"
    "                     [--output URL ...] [--state DIR] [--config FILE]\n"
    "                     [--dead-letter FILE] [--no-alerts] [--stats FILE|-]\n"
    "                     [--threads N]\n"
    "\n"
    "Reads events, one per line (JSON - flat, ECS, Sentinel tables - or\n"
    "Windows event XML; .gz files too), matches them against the rules,\n"
    "correlates alerts into incidents and writes JSON lines,\n"
    "each with \"kind\": \"alert\" or \"incident\".  Lines that cannot be\n"
    "processed go to the dead-letter file with the reason.\n"
    "\n"
    "  --rules PATH        rule file or directory; repeat for more\n"
    "  --input URL         events to read: FILE, - (standard input, the\n"
    "                      default) or kafka://BROKERS/TOPIC[,TOPIC]?group=G\n"
    "  --output URL        where records go: FILE, - (standard output, the\n"
    "                      default), redis://HOST:PORT, http(s)://...,\n"
    "                      kafka://BROKERS/TOPIC; repeat for more (replaces\n"
    "                      the config's outputs)\n"
    "  --state DIR         keep checkpoints in DIR and resume from them\n"
    "  --config FILE       chainfuse configuration (see README)\n"
    "  --dead-letter FILE  where bad lines go (default from config:\n"
    "                      chainfuse-deadletter.jsonl)\n"
    "  --no-alerts         write incidents only\n"
    "  --stats FILE|-      write run counters as one JSON object with\n"
    "                      \"kind\": \"stats\" when done (a one-line summary\n"
    "                      always goes to stderr)\n"
    "  --threads N         detection threads, 1 to 256 (default from config\n"
    "                      engine.threads, else one per CPU); the output is\n"
    "                      the same with any number\n"
    "\n"
    "Exits 1 when no rule loaded, when a file cannot be opened, read or\n"
    "written, or when the input fails part-way (what was read is still\n"
    "processed, written and summarised); 2 on a usage error.\n";

/* One --rules argument and, once loaded, why it gave no rule document
 * (NULL when it gave some, loaded or rejected). */
struct rules_path {
    const char *path;
    const char *empty;
};

struct rules_args {
    struct rules_path *paths;
    size_t n;
};

static void add_rules_path(struct rules_args *ra, const char *path) {
    struct rules_path *np = cf_realloc(ra->paths, (ra->n + 1) * sizeof *np);
    if (!np) {
        fprintf(stderr, "chainfuse: out of memory\n");
        exit(EXIT_RUNTIME);
    }
    ra->paths = np;
    ra->paths[ra->n++] = (struct rules_path){path, NULL};
}

/* The free-form sections (logsources, field_mappings, entities,
 * suppressions) are parsed by their owners when the run is built; each
 * is built once here so that a mistake in them is found with the rest
 * of the file, before any rule is compiled or input read. */
static int check_free_form_sections(const struct cf_config *cfg, char *err,
                                    size_t err_size) {
    struct cf_router *router = NULL;
    struct cf_fieldmap *fmap = NULL;
    struct cf_entity_map *emap = NULL;
    struct cf_fusion *fu = NULL;
    int rc = CF_ERR;
    if (!(router = cf_router_new(cf_config_section(cfg, "logsources"), err,
                                 err_size)) ||
        !(fmap = cf_fieldmap_new(cf_config_section(cfg, "field_mappings"), err,
                                 err_size)) ||
        !(emap = cf_entity_map_new(cf_config_section(cfg, "entities"), err,
                                   err_size)) ||
        !(fu = cf_fusion_new(cfg, NULL, NULL, NULL, err, err_size)))
        goto done;
    for (size_t i = 0; i < cfg->n_outputs; i++) {
        struct cf_output_filter f = {0};
        char where[48];
        snprintf(where, sizeof where, "outputs[%zu]", i);
        cf_err_t frc = cf_output_filter_from_item(&cfg->outputs[i], where, &f,
                                                  err, err_size);
        cf_output_filter_clear(&f);
        if (frc != CF_OK) goto done;
    }
    rc = CF_OK;
done:
    cf_fusion_destroy(fu);
    cf_entity_map_destroy(emap);
    cf_fieldmap_destroy(fmap);
    cf_router_destroy(router);
    return rc;
}

/* NULL after saying why on stderr: a configuration that cannot be used
 * is a usage error (EXIT_USAGE), named by file and full key. */
static struct cf_config *load_config(const char *path) {
    char err[512];
    if (!path) {
        struct cf_config *cfg = cf_config_default();
        if (!cfg) fprintf(stderr, "chainfuse: out of memory\n");
        return cfg;
    }
    struct cf_config *cfg = cf_config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "chainfuse: %s\n", err);
        return NULL;
    }
    if (check_free_form_sections(cfg, err, sizeof err) != CF_OK) {
        /* the owners' messages may start "config: "; the file is named */
        const char *msg = strncmp(err, "config: ", 8) == 0 ? err + 8 : err;
        fprintf(stderr, "chainfuse: %s: %s\n", path, msg);
        cf_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

/* Loads every rules path into a new rulebook and notes the paths that
 * gave nothing; NULL if a path is unreadable (bad rules inside are
 * recorded, not fatal). */
static struct cf_rulebook *load_rules(struct rules_args *ra,
                                      const struct cf_config *cfg) {
    char err[512];
    struct cf_rulebook *rb = cf_rulebook_new();
    if (!rb) {
        fprintf(stderr, "chainfuse: out of memory\n");
        return NULL;
    }
    for (size_t i = 0; i < ra->n; i++) {
        const char *path = ra->paths[i].path;
        size_t files = rb->n_files, docs = rb->n_documents;
        size_t rejected = rb->n_rejected;
        struct stat st;
        bool is_dir, is_empty;
        if (cf_rulebook_load(rb, path, cfg, err, sizeof err) != CF_OK) {
            fprintf(stderr, "chainfuse: --rules %s: %s\n", path, err);
            cf_rulebook_destroy(rb);
            return NULL;
        }
        if (rb->n_documents != docs || rb->n_rejected != rejected) continue;
        is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
        is_empty = !is_dir && st.st_size == 0;
        if (is_dir)
            ra->paths[i].empty = rb->n_files == files
                                     ? "the folder has no .yml/.yaml files"
                                     : "its .yml/.yaml files hold no YAML "
                                       "document";
        else
            ra->paths[i].empty = is_empty ? "the file is empty"
                                          : "the file holds no YAML document";
    }
    if (cf_rulebook_finish(rb, err, sizeof err) != CF_OK) {
        fprintf(stderr, "chainfuse: %s\n", err);
        cf_rulebook_destroy(rb);
        return NULL;
    }
    return rb;
}

/* Whether a and b name the same file: when both exist, the same inode
 * ("-" is standard input or output, by descriptor); when neither does,
 * the same string.  With regular_only, devices (/dev/null) and folders
 * never count as the same. */
static bool same_file(const char *a, int a_std, const char *b, int b_std,
                      bool regular_only) {
    struct stat sa, sb;
    bool ea = strcmp(a, "-") == 0 ? fstat(a_std, &sa) == 0 : stat(a, &sa) == 0;
    bool eb = strcmp(b, "-") == 0 ? fstat(b_std, &sb) == 0 : stat(b, &sb) == 0;
    if (ea && eb)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino &&
               (!regular_only || S_ISREG(sa.st_mode));
    return !ea && !eb && strcmp(a, b) == 0;
}

/* The same folder given twice (rules, rules/, ./rules) would load every
 * rule in it twice; overlapping paths are caught by the loader. */
static bool rules_paths_distinct(const struct rules_args *ra, const char *cmd) {
    for (size_t i = 0; i < ra->n; i++) {
        for (size_t j = i + 1; j < ra->n; j++) {
            const char *a = ra->paths[i].path, *b = ra->paths[j].path;
            if (!same_file(a, -1, b, -1, false)) continue;
            if (strcmp(a, b) == 0)
                fprintf(stderr, "chainfuse %s: --rules %s is given twice\n",
                        cmd, a);
            else
                fprintf(stderr,
                        "chainfuse %s: --rules %s is given twice (as %s "
                        "and as %s)\n",
                        cmd, b, a, b);
            return false;
        }
    }
    return true;
}

/* Prints the `chainfuse check` command that explains rejections. */
static void print_check_hint(const struct rules_args *ra) {
    fputs("`chainfuse check", stderr);
    for (size_t i = 0; i < ra->n; i++)
        fprintf(stderr, " --rules %s", ra->paths[i].path);
    fputc('`', stderr);
}

/* A --rules path that gave nothing is a mistake worth a warning while
 * other paths gave rules; no rule at all is an error, since a run would
 * read every event and match none.  Returns true (after saying why)
 * when no rule loaded. */
static bool report_no_rules(const struct rules_args *ra,
                            const struct cf_rulebook *rb) {
    bool none = rb->n_rules + rb->n_correlations == 0;
    if (!none || rb->n_rejected > 0) {
        for (size_t i = 0; i < ra->n; i++)
            if (ra->paths[i].empty)
                fprintf(stderr, "chainfuse: warning: --rules %s: %s\n",
                        ra->paths[i].path, ra->paths[i].empty);
    }
    if (!none) return false;
    if (rb->n_rejected > 0) {
        const struct cf_rule_rejection *r = &rb->rejected[0];
        fprintf(stderr,
                "chainfuse: no rule loaded: all rules were rejected (%zu "
                "rejected; the first, %s: %s); see ",
                rb->n_rejected, r->path, r->reason);
        print_check_hint(ra);
        fputs(" for every reason\n", stderr);
        return true;
    }
    if (ra->n == 1) {
        fprintf(stderr, "chainfuse: no rule loaded from %s: %s\n",
                ra->paths[0].path,
                ra->paths[0].empty ? ra->paths[0].empty
                                   : "it holds no detection rule");
        return true;
    }
    fputs("chainfuse: no rule loaded:", stderr);
    for (size_t i = 0; i < ra->n; i++)
        fprintf(stderr, "%s %s: %s", i ? ";" : "", ra->paths[i].path,
                ra->paths[i].empty ? ra->paths[i].empty
                                   : "it holds no detection rule");
    fputc('\n', stderr);
    return true;
}

/* The connector's own words (which file, the errno or zlib text) for a
 * failure the pipeline reports in general terms ("input file failed"):
 * the first connector, in the order given, that recorded one, or "". */
static const char *io_detail(const struct cf_input *in,
                             const struct cf_output *dead, bool dead_first,
                             const struct cf_pipeline_output *outs, size_t n) {
    const char *d = in ? cf_file_input_error(in) : "";
    if (!*d && dead && dead_first) d = cf_file_output_error(dead);
    for (size_t i = 0; i < n && !*d; i++) d = cf_file_output_error(outs[i].out);
    if (!*d && dead) d = cf_file_output_error(dead);
    return d;
}

/* Takes the value of an option that may be given once.  A second one is
 * a usage error: silently keeping the last `--input day1 --input day2`
 * would drop day1 unsaid. */
static bool set_once(const char **slot, const char *value, const char *cmd,
                     const char *option) {
    if (*slot) {
        fprintf(stderr,
                "chainfuse %s: %s is given twice ('%s' and '%s'); give it "
                "once\n",
                cmd, option, *slot, value);
        return false;
    }
    *slot = value;
    return true;
}

/* Writes the run counters as one record of kind "stats", so that with
 * `--stats -` beside records on stdout every line still has a kind. */
static bool write_stats(struct cf_output *so, json_t *stats) {
    json_t *o = json_object();
    struct cf_buf text = CF_BUF_INIT;
    bool ok = false;
    if (!o) return false;
    json_object_set_new(o, "kind", json_string("stats"));
    json_object_update(o, stats);
    cf_buf_json(&text, o, JSON_COMPACT);
    if (!text.failed) {
        struct cf_out_record r =
            cf_out_record_plain("stats", text.data, text.len, NULL);
        ok = so->ops->write(so, &r) == CF_IO_OK &&
             so->ops->flush(so) == CF_IO_OK;
    }
    cf_buf_free(&text);
    json_decref(o);
    return ok;
}

/* [{path, id, <text_key>}] of rejected or converted rules. */
static json_t *records_json(const struct cf_rule_rejection *r, size_t n,
                            const char *text_key) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "path", json_string(r[i].path));
        json_object_set_new(e, "id",
                            r[i].id ? json_string(r[i].id) : json_null());
        json_object_set_new(e, text_key, json_string(r[i].reason));
        json_array_append_new(a, e);
    }
    return a;
}

/*
 * Rules whose alerts are not written on their own: correlations refer to
 * them and none says `generate: true` (the Sigma default).  One entry per
 * rule or chained correlation: {path, id, title, level, correlations:
 * [titles], warning?}.  A rule of level high or critical gets a warning:
 * such a level says its hits are worth a look alone, which the
 * correlation's default hides.  Returns how many carry a warning; NULL
 * *out on out of memory.
 */
static size_t correlation_only(const struct cf_rulebook *rb, json_t **out) {
    size_t warnings = 0;
    json_t *list = json_array();
    for (size_t i = 0; list && i < rb->n_rules + rb->n_correlations; i++) {
        const struct cf_sigma_rule *r = i < rb->n_rules ? rb->rules[i] : NULL;
        const struct cf_sigma_correlation *c =
            r ? NULL : rb->correlations[i - rb->n_rules];
        if (r ? !r->correlated || r->generated : !c->correlated || c->generated)
            continue;
        enum cf_level level = r ? r->level : c->level;
        json_t *by = json_array(), *e = json_object();
        for (size_t k = 0; by && k < rb->n_correlations; k++) {
            const struct cf_sigma_correlation *u = rb->correlations[k];
            for (size_t x = 0; x < u->n_refs; x++)
                if ((r && u->refs[x].rule == r) ||
                    (c && u->refs[x].corr == c)) {
                    json_array_append_new(by, json_string(u->title));
                    break;
                }
        }
        json_object_set_new(e, "path", json_string(r ? r->path : c->path));
        const char *id = r ? r->id : c->id;
        json_object_set_new(e, "id", id ? json_string(id) : json_null());
        json_object_set_new(e, "title", json_string(r ? r->title : c->title));
        json_object_set_new(e, "level", json_string(cf_level_name(level)));
        json_object_set_new(e, "correlations", by);
        if (level >= CF_LEVEL_HIGH) {
            warnings++;
            json_object_set_new(
                e, "warning",
                json_string("its level says its alerts matter alone: add "
                            "generate: true to a correlation using it to "
                            "write them"));
        }
        if (json_array_append_new(list, e)) {
            json_decref(list);
            list = NULL;
        }
    }
    *out = list;
    return warnings;
}

static int cmd_check(int argc, char **argv) {
    static const struct option opts[] = {{"rules", required_argument, 0, 'r'},
                                         {"config", required_argument, 0, 'c'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct rules_args ra = {0};
    const char *config_path = NULL;
    bool as_json = false;
    int c, rc = EXIT_RUNTIME;
    char prog[] = "chainfuse check"; /* getopt's messages start with it */
    argv[0] = prog;
    while ((c = getopt_long(argc, argv, "r:c:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': add_rules_path(&ra, optarg); break;
        case 'c':
            if (!set_once(&config_path, optarg, "check", "--config")) {
                cf_free(ra.paths);
                return EXIT_USAGE;
            }
            break;
        case 'j': as_json = true; break;
        case 'h':
            fputs(check_usage, stdout);
            cf_free(ra.paths);
            return 0;
        default:
            fputs(check_usage, stderr);
            cf_free(ra.paths);
            return EXIT_USAGE;
        }
    }
    if (ra.n == 0 || optind != argc) {
        if (ra.n == 0)
            fprintf(stderr,
                    "chainfuse check: at least one --rules PATH is required\n");
        else
            fprintf(stderr,
                    "chainfuse check: unexpected argument '%s' (rule paths "
                    "are given with --rules PATH)\n",
                    argv[optind]);
        fputs(check_usage, stderr);
        cf_free(ra.paths);
        return EXIT_USAGE;
    }
    if (!rules_paths_distinct(&ra, "check")) {
        cf_free(ra.paths);
        return EXIT_USAGE;
    }
    struct cf_config *cfg = load_config(config_path);
    struct cf_rulebook *rb = cfg ? load_rules(&ra, cfg) : NULL;
    struct cf_ruleset *rs = NULL;
    json_t *conly = NULL; /* rules only correlations use */
    char err[512];
    if (!cfg) rc = EXIT_USAGE;
    if (!rb) goto done;
    rs = cf_ruleset_compile(rb, cfg, err, sizeof err);
    if (!rs) {
        fprintf(stderr, "chainfuse: cannot compile rules: %s\n", err);
        goto done;
    }
    struct cf_ruleset_stats st;
    cf_ruleset_get_stats(rs, &st);
    size_t loaded = rb->n_rules + rb->n_correlations;
    size_t total = loaded + rb->n_rejected;
    size_t conly_warnings = correlation_only(rb, &conly);
    if (!conly) {
        fprintf(stderr, "chainfuse check: out of memory\n");
        goto done;
    }
    if (as_json) {
        json_t *o = json_object();
        json_object_set_new(o, "rules_total", json_integer((json_int_t)total));
        json_object_set_new(o, "rules_loaded",
                            json_integer((json_int_t)loaded));
        json_object_set_new(o, "rules_rejected",
                            json_integer((json_int_t)rb->n_rejected));
        json_object_set_new(
            o, "rejected",
            records_json(rb->rejected, rb->n_rejected, "reason"));
        json_object_set_new(
            o, "converted",
            records_json(rb->converted, rb->n_converted, "note"));
        json_object_set_new(o, "detection_rules",
                            json_integer((json_int_t)rb->n_rules));
        json_object_set_new(o, "correlation_rules",
                            json_integer((json_int_t)rb->n_correlations));
        json_object_set_new(o, "filters_applied",
                            json_integer((json_int_t)rb->n_filters));
        json_object_set_new(o, "correlation_only", json_incref(conly));
        json_t *comp = json_object();
        json_object_set_new(comp, "fields",
                            json_integer((json_int_t)st.fields));
        json_object_set_new(comp, "patterns",
                            json_integer((json_int_t)st.patterns));
        json_object_set_new(comp, "literal_patterns",
                            json_integer((json_int_t)st.literal_patterns));
        json_object_set_new(comp, "direct_patterns",
                            json_integer((json_int_t)st.direct_patterns));
        json_object_set_new(comp, "cache_hit", json_boolean(st.cache_hit));
        json_object_set_new(comp, "plan_hit", json_boolean(st.plan_hit));
        json_object_set_new(comp, "seconds", json_real(st.compile_seconds));
        json_object_set_new(o, "compile", comp);
        json_t *files = json_object();
        json_object_set_new(files, "read",
                            json_integer((json_int_t)rb->n_files));
        json_object_set_new(files, "from_cache",
                            json_integer((json_int_t)rb->n_cached));
        json_object_set_new(o, "rule_files", files);
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        for (size_t i = 0; i < rb->n_rejected; i++) {
            const struct cf_rule_rejection *r = &rb->rejected[i];
            printf("rejected %s%s%s: %s\n", r->path, r->id ? " id " : "",
                   r->id ? r->id : "", r->reason);
        }
        for (size_t i = 0; i < rb->n_converted; i++) {
            const struct cf_rule_rejection *r = &rb->converted[i];
            printf("converted %s%s%s: %s\n", r->path, r->id ? " id " : "",
                   r->id ? r->id : "", r->reason);
        }
        size_t i;
        json_t *e;
        json_array_foreach(conly, i, e) {
            json_t *by = json_object_get(e, "correlations");
            const char *w = json_string_value(json_object_get(e, "warning"));
            printf(
                "%s%s (%s, %s) only feeds correlations: ", w ? "warning: " : "",
                json_string_value(json_object_get(e, "title")),
                json_string_value(json_object_get(e, "path")),
                json_string_value(json_object_get(e, "level")));
            for (size_t k = 0; k < json_array_size(by); k++)
                printf("%s'%s'", k ? ", " : "",
                       json_string_value(json_array_get(by, k)));
            printf(" %s generate: true, so its alerts are not written on "
                   "their own%s%s\n",
                   json_array_size(by) > 1 ? "do not set" : "does not set",
                   w ? "; " : "", w ? w : "");
        }
        printf("%zu of %zu rules loaded (%zu detection, %zu correlation), "
               "%zu rejected, %zu filters applied\n",
               loaded, total, rb->n_rules, rb->n_correlations, rb->n_rejected,
               rb->n_filters);
        if (json_array_size(conly))
            printf("%zu rules only feed correlations (no generate: true): "
                   "their alerts are counted, correlated and fused as "
                   "context, not written%s\n",
                   json_array_size(conly),
                   conly_warnings ? "; see the warnings above" : "");
        printf("compiled %zu patterns over %zu fields (%zu checked directly) "
               "in %.2f s%s\n",
               st.patterns, st.fields, st.direct_patterns, st.compile_seconds,
               st.plan_hit    ? " (from cache, with its compile plan)"
               : st.cache_hit ? " (from cache)"
                              : "");
    }
    fflush(stdout); /* the report first, then why it is a failure */
    rc = report_no_rules(&ra, rb) ? EXIT_RUNTIME : 0;
done:
    json_decref(conly);
    rules_done(rs, rb);
    cf_config_destroy(cfg);
    cf_free(ra.paths);
    return rc;
}

/* The outputs of a run: from --output (repeatable; default filter, no
 * options), else the config's `outputs`, else standard output. */
struct run_outputs {
    struct cf_pipeline_output *v; /* filters owned, names owned */
    struct cf_output_item *items; /* borrowed from the config, or NULL */
    const char **urls;
    size_t n;
};

static void run_outputs_free(struct run_outputs *ro) {
    for (size_t i = 0; ro->v && i < ro->n; i++) {
        cf_output_close(ro->v[i].out);
        cf_output_filter_clear(&ro->v[i].filter);
        cf_free((char *)ro->v[i].name);
    }
    cf_free(ro->v);
    cf_free(ro->urls);
}

static bool add_url(const char ***urls, size_t *n, const char *url) {
    const char **nu = cf_realloc(*urls, (*n + 1) * sizeof *nu);
    if (!nu) {
        fprintf(stderr, "chainfuse: out of memory\n");
        return false;
    }
    nu[(*n)++] = url;
    *urls = nu;
    return true;
}

/* One file in two roles would be truncated by one and overwritten by
 * the other (or, for the input, destroyed before it is read).  Records,
 * dead letters and stats may share stdout: each line says what it is. */
struct role {
    const char *opt, *path;
    int fd; /* what "-" means */
};

static bool roles_distinct(const struct role *roles, size_t n) {
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            const char *a = roles[i].path, *b = roles[j].path;
            if (!a || !b || (strcmp(a, "-") == 0 && strcmp(b, "-") == 0))
                continue;
            if (!same_file(a, roles[i].fd, b, roles[j].fd, true)) continue;
            bool a_std = strcmp(a, "-") == 0, b_std = strcmp(b, "-") == 0;
            if (strcmp(roles[i].opt, roles[j].opt) == 0)
                fprintf(stderr,
                        "chainfuse run: %s %s is given twice; give each "
                        "output once\n",
                        roles[i].opt, a);
            else
                fprintf(
                    stderr,
                    "chainfuse run: %s%s%s and %s%s%s are the same file; %s\n",
                    a_std ? "" : roles[i].opt, a_std ? "" : " ",
                    a_std ? (i == 0 ? "standard input" : "standard output") : a,
                    b_std ? "" : roles[j].opt, b_std ? "" : " ",
                    b_std ? "standard output" : b,
                    i == 0 ? "writing it would destroy the input"
                           : "give each its own file");
            return false;
        }
    }
    return true;
}

/* Opens every output with its filter; false after saying why. */
static bool open_outputs(struct run_outputs *ro, const struct cf_config *cfg,
                         unsigned file_flags) {
    char err[512], where[48];
    if (!(ro->v = cf_calloc(ro->n ? ro->n : 1, sizeof *ro->v))) {
        fprintf(stderr, "chainfuse: out of memory\n");
        return false;
    }
    for (size_t i = 0; i < ro->n; i++) {
        const struct cf_output_item *it = ro->items ? &ro->items[i] : NULL;
        const char *url = ro->urls[i];
        struct cf_connector_args args = {0, file_flags};
        ro->v[i].filter.min_severity = -1;
        if (it) snprintf(where, sizeof where, "outputs[%zu]", i);
        if (it && cf_output_filter_from_item(it, where, &ro->v[i].filter, err,
                                             sizeof err) != CF_OK) {
            fprintf(stderr, "chainfuse: %s\n", err);
            return false;
        }
        if (!(ro->v[i].name = cf_registry_display_url(url))) {
            fprintf(stderr, "chainfuse: out of memory\n");
            return false;
        }
        ro->v[i].out = cf_registry_open_output(url, it ? it->options : NULL,
                                               &args, err, sizeof err);
        if (!ro->v[i].out) {
            if (it)
                fprintf(stderr, "chainfuse: %s: %s\n", where, err);
            else
                fprintf(stderr, "chainfuse: --output: %s\n", err);
            return false;
        }
    }
    (void)cfg;
    return true;
}

/* --threads N: 1 to CF_MAX_THREADS; 0 after saying why. */
static unsigned parse_threads(const char *s) {
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end || errno || n < 1 ||
        n > CF_MAX_THREADS) {
        fprintf(stderr,
                "chainfuse run: --threads takes a whole number from 1 to %d "
                "(detection threads), not '%s'\n",
                CF_MAX_THREADS, s);
        return 0;
    }
    return (unsigned)n;
}

/* engine.threads unset: one detection thread per online CPU. */
static unsigned online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > CF_AUTO_THREADS ? CF_AUTO_THREADS : (unsigned)n;
}

static int cmd_run(int argc, char **argv) {
    static const struct option opts[] = {
        {"rules", required_argument, 0, 'r'},
        {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'},
        {"config", required_argument, 0, 'c'},
        {"dead-letter", required_argument, 0, 'd'},
        {"no-alerts", no_argument, 0, 'n'},
        {"stats", required_argument, 0, 's'},
        {"state", required_argument, 0, 'S'},
        {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    struct rules_args ra = {0};
    struct run_outputs ro = {0};
    const char *input = NULL, *config_path = NULL, *state_dir = NULL;
    const char *dead_letter_path = NULL, *stats_path = NULL;
    const char *threads_arg = NULL;
    const char **cli_outputs = NULL;
    size_t n_cli_outputs = 0;
    bool no_alerts = false, once = true;
    int c, rc = EXIT_RUNTIME;
    char prog[] = "chainfuse run"; /* getopt's messages start with it */
    argv[0] = prog;
    while ((c = getopt_long(argc, argv, "r:i:o:c:d:ns:S:t:h", opts, NULL)) !=
           -1) {
        switch (c) {
        case 'r': add_rules_path(&ra, optarg); break;
        case 'i': once = set_once(&input, optarg, "run", "--input"); break;
        case 'o': once = add_url(&cli_outputs, &n_cli_outputs, optarg); break;
        case 'c':
            once = set_once(&config_path, optarg, "run", "--config");
            break;
        case 'd':
            once = set_once(&dead_letter_path, optarg, "run", "--dead-letter");
            break;
        case 'n': no_alerts = true; break;
        case 's': once = set_once(&stats_path, optarg, "run", "--stats"); break;
        case 'S': once = set_once(&state_dir, optarg, "run", "--state"); break;
        case 't':
            once = set_once(&threads_arg, optarg, "run", "--threads");
            break;
        case 'h':
            fputs(run_usage, stdout);
            cf_free(ra.paths);
            cf_free(cli_outputs);
            return 0;
        default:
            fputs(run_usage, stderr);
            cf_free(ra.paths);
            cf_free(cli_outputs);
            return EXIT_USAGE;
        }
        if (!once) {
            cf_free(ra.paths);
            cf_free(cli_outputs);
            return EXIT_USAGE;
        }
    }
    if (ra.n == 0 || optind != argc) {
        if (ra.n == 0)
            fprintf(stderr,
                    "chainfuse run: at least one --rules PATH is required\n");
        else
            fprintf(stderr,
                    "chainfuse run: unexpected argument '%s' (events are "
                    "read with --input FILE)\n",
                    argv[optind]);
        fputs(run_usage, stderr);
        cf_free(ra.paths);
        cf_free(cli_outputs);
        return EXIT_USAGE;
    }
    unsigned threads = 0;
    if (threads_arg && !(threads = parse_threads(threads_arg))) {
        cf_free(ra.paths);
        cf_free(cli_outputs);
        return EXIT_USAGE;
    }
    if (!rules_paths_distinct(&ra, "run")) {
        cf_free(ra.paths);
        cf_free(cli_outputs);
        return EXIT_USAGE;
    }
    char err[512], finish_err[512];
    struct cf_config *cfg = load_config(config_path);
    struct cf_rulebook *rb = NULL;
    struct cf_ruleset *rs = NULL;
    struct cf_input *in = NULL;
    struct cf_output *dead = NULL, *stats_out = NULL;
    struct cf_pipeline *p = NULL;
    struct role *roles = NULL;
    if (!cfg) {
        rc = EXIT_USAGE;
        goto done;
    }
    if (dead_letter_path) {
        cf_free(cfg->dead_letter_path);
        cfg->dead_letter_path = cf_strdup(dead_letter_path);
    }
    if (no_alerts) cfg->emit_alerts = false;
    if (!input) input = cfg->input_url ? cfg->input_url : "-";
    if (!state_dir) state_dir = cfg->state_dir;
    /* --output replaces the config's outputs; neither: standard output */
    if (n_cli_outputs) {
        ro.urls = cli_outputs;
        ro.n = n_cli_outputs;
        cli_outputs = NULL;
    } else if (cfg->n_outputs) {
        ro.items = cfg->outputs;
        for (size_t i = 0; i < cfg->n_outputs; i++)
            if (!add_url(&ro.urls, &ro.n, cfg->outputs[i].url)) goto done;
    } else if (!add_url(&ro.urls, &ro.n, "-")) {
        goto done;
    }
    const char *dead_opt = dead_letter_path
                               ? "--dead-letter"
                               : "dead-letter file (set with --dead-letter)";
    if (!(roles = cf_calloc(ro.n + 3, sizeof *roles))) {
        fprintf(stderr, "chainfuse: out of memory\n");
        goto done;
    }
    size_t n_roles = 0;
    if (cf_registry_is_file(input))
        roles[n_roles++] = (struct role){
            "--input", cf_registry_file_path(input), STDIN_FILENO};
    else
        roles[n_roles++] = (struct role){"--input", NULL, STDIN_FILENO};
    for (size_t i = 0; i < ro.n; i++)
        if (cf_registry_is_file(ro.urls[i]))
            roles[n_roles++] = (struct role){
                "--output", cf_registry_file_path(ro.urls[i]), STDOUT_FILENO};
    roles[n_roles++] =
        (struct role){dead_opt, cfg->dead_letter_path, STDOUT_FILENO};
    roles[n_roles++] = (struct role){"--stats", stats_path, STDOUT_FILENO};
    if (!roles_distinct(roles, n_roles)) {
        rc = EXIT_USAGE;
        goto done;
    }
    if (!(rb = load_rules(&ra, cfg))) goto done;
    if (report_no_rules(&ra, rb)) goto done;
    if (!(rs = cf_ruleset_compile(rb, cfg, err, sizeof err))) {
        fprintf(stderr, "chainfuse: cannot compile rules: %s\n", err);
        goto done;
    }
    if (rb->n_rejected) {
        fprintf(stderr, "chainfuse: %zu rule%s rejected (see ", rb->n_rejected,
                rb->n_rejected == 1 ? "" : "s");
        print_check_hint(&ra);
        fputs(")\n", stderr);
    }
    /* Every file is opened, or proven creatable, before the first event
     * is read: a bad path fails at once, not after hours of input. */
    struct cf_connector_args in_args = {cfg->limits.max_line_bytes, 0};
    if (!(in = cf_registry_open_input(input, cfg->input_options, &in_args, err,
                                      sizeof err))) {
        fprintf(stderr, "chainfuse: --input: %s\n", err);
        goto done;
    }
    /* Resuming from a checkpoint: files written by the earlier run are
     * continued, not emptied. */
    if (state_dir && !prepare_state_dir(state_dir)) goto done;
    unsigned resume =
        cf_pipeline_state_exists(state_dir) ? CF_FILE_OUTPUT_APPEND : 0;
    if (!(dead = cf_file_output_open(cfg->dead_letter_path,
                                     CF_FILE_OUTPUT_DEFERRED | resume, err,
                                     sizeof err))) {
        fprintf(stderr, "chainfuse: %s: %s\n", dead_opt, err);
        goto done;
    }
    if (stats_path &&
        !(stats_out = cf_file_output_open(stats_path, CF_FILE_OUTPUT_DEFERRED,
                                          err, sizeof err))) {
        fprintf(stderr, "chainfuse: --stats: %s\n", err);
        goto done;
    }
    if (!open_outputs(&ro, cfg, resume)) goto done;
    struct cf_pipeline_setup setup = {.cfg = cfg,
                                      .rb = rb,
                                      .rs = rs,
                                      .outs = ro.v,
                                      .n_outs = ro.n,
                                      .dead_letter = dead,
                                      .stop = &stop_signals,
                                      .state_dir = state_dir,
                                      .state_interval_ms = cfg->state_interval,
                                      .state_background = cfg->state_background,
                                      .threads = threads ? threads
                                                 : cfg->threads
                                                     ? (unsigned)cfg->threads
                                                     : online_cpus()};
    if (!(p = cf_pipeline_new(&setup, err, sizeof err))) {
        fprintf(stderr, "chainfuse: %s\n", err);
        goto done;
    }
    if (strcmp(input, "-") == 0 && isatty(STDIN_FILENO))
        fprintf(stderr, "chainfuse: reading events from standard input "
                        "(end with Ctrl-D; --input FILE reads a file)\n");
    catch_stop_signals();
    /* An input that fails part-way still has its events finished:
     * pending correlations fire, outputs are flushed, the summary and
     * stats are written, and only then does the run fail. */
    cf_err_t run_rc = cf_pipeline_run(p, in, err, sizeof err);
    if (run_rc != CF_OK) {
        /* The run stops for the input, or for a dead-letter output that
         * failed (records the output refused went there first). */
        const char *d = io_detail(in, dead, true, ro.v, ro.n);
        fprintf(stderr, "chainfuse: %s%s%s\n", err, *d ? ": " : "", d);
    }
    cf_err_t finish_rc = cf_pipeline_finish(p, finish_err, sizeof finish_err);
    if (finish_rc != CF_OK &&
        (run_rc == CF_OK || strcmp(err, finish_err) != 0)) {
        const char *d = io_detail(NULL, dead, false, ro.v, ro.n);
        fprintf(stderr, "chainfuse: %s%s%s\n", finish_err, *d ? ": " : "", d);
    }
    rc = run_rc == CF_OK && finish_rc == CF_OK ? 0 : EXIT_RUNTIME;
    if (stop_signals)
        fprintf(stderr, "chainfuse: stopped by a signal: %s\n",
                finish_rc != CF_OK ? "NOT checkpointed, positions not "
                                     "committed (a restart replays from the "
                                     "last checkpoint)"
                : state_dir        ? "outputs flushed, state checkpointed, "
                                     "positions committed"
                                   : "everything pending fused and flushed, "
                                     "positions committed (no --state)");
    json_t *stats = cf_pipeline_stats(p);
    json_int_t dl = json_integer_value(json_object_get(stats, "dead_lettered"));
    json_int_t dropped = 0;
    const char *reason;
    json_t *n;
    json_object_foreach(json_object_get(stats, "dropped"), reason, n) dropped +=
        json_integer_value(n);
    json_int_t no_time =
        json_integer_value(json_object_get(stats, "events_without_time"));
    char no_time_text[96] = "";
    if (no_time)
        snprintf(no_time_text, sizeof no_time_text,
                 " (%lld without a usable time: see time.fields)",
                 (long long)no_time);
    /* Every count the user could miss is on this line: events without
     * a time, correlation alerts beside detection ones, what was
     * suppressed, dropped or dead-lettered (--stats has the reasons). */
    fprintf(stderr,
            "chainfuse: %lld events%s, %lld alerts (+%lld from correlations, "
            "%lld suppressed, %lld only for correlations), %lld incidents, "
            "%lld dead-lettered%s%s, %lld dropped%s\n",
            (long long)json_integer_value(json_object_get(stats, "events")),
            no_time_text,
            (long long)json_integer_value(json_object_get(stats, "alerts")),
            (long long)json_integer_value(
                json_object_get(stats, "correlation_alerts")),
            (long long)json_integer_value(
                json_object_get(stats, "suppressed_alerts")),
            (long long)json_integer_value(
                json_object_get(stats, "ungenerated_alerts")),
            (long long)json_integer_value(json_object_get(stats, "incidents")),
            (long long)dl,
            !dl                           ? ""
            : *cf_file_output_error(dead) ? " but NOT saved to "
                                          : " to ",
            dl ? cfg->dead_letter_path : "", (long long)dropped,
            dropped ? " (see --stats)" : "");
    if (stats_out && !write_stats(stats_out, stats)) {
        const char *d = cf_file_output_error(stats_out);
        fprintf(stderr, "chainfuse: --stats: %s\n", *d ? d : "out of memory");
        rc = EXIT_RUNTIME;
    }
    json_decref(stats);
done:
    cf_pipeline_destroy(p);
    cf_output_close(stats_out);
    cf_output_close(dead);
    run_outputs_free(&ro);
    cf_input_close(in);
    rules_done(rs, rb);
    cf_config_destroy(cfg);
    cf_free(roles);
    cf_free(cli_outputs);
    cf_free(ra.paths);
    return rc;
}

static const char *const config_usage =
    "usage: chainfuse config --reference\n"
    "       chainfuse config --check FILE\n"
    "\n"
    "  --reference   print every configuration section and key (type,\n"
    "                default, range, meaning) as Markdown; the README's\n"
    "                reference is this output\n"
    "  --check FILE  read FILE as `run --config` would and report the\n"
    "                first mistake (exit 2), or nothing (exit 0)\n";

static int cmd_config(int argc, char **argv) {
    static const struct option opts[] = {{"reference", no_argument, 0, 'r'},
                                         {"check", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *check_path = NULL;
    bool reference = false;
    int c;
    while ((c = getopt_long(argc, argv, "rc:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': reference = true; break;
        case 'c': check_path = optarg; break;
        case 'h': fputs(config_usage, stdout); return 0;
        default: fputs(config_usage, stderr); return EXIT_USAGE;
        }
    }
    if (reference == (check_path != NULL) || optind != argc) {
        fprintf(stderr,
                "chainfuse config: give one of --reference, --check "
                "FILE\n%s",
                config_usage);
        return EXIT_USAGE;
    }
    if (check_path) {
        struct cf_config *cfg = load_config(check_path);
        int rc = cfg ? 0 : EXIT_USAGE;
        cf_config_destroy(cfg);
        return rc;
    }
    struct cf_buf ref = CF_BUF_INIT;
    cf_config_reference(&ref);
    int rc = ref.failed ? EXIT_RUNTIME : 0;
    if (rc)
        fprintf(stderr, "chainfuse: out of memory\n");
    else
        fputs(ref.data, stdout);
    cf_buf_free(&ref);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(main_usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("chainfuse %s\n", CF_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(main_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "check") == 0) return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "config") == 0) return cmd_config(argc - 1, argv + 1);
    if (strcmp(cmd, "deadletter") == 0)
        return cf_cmd_deadletter(argc - 1, argv + 1);
    fprintf(stderr, "chainfuse: unknown command '%s'\n%s", cmd, main_usage);
    return EXIT_USAGE;
}
