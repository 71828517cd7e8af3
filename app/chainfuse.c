/*
 * chainfuse.c - the command line.
 *
 *   chainfuse check --rules PATH [--rules PATH ...] [--config FILE] [--json]
 *   chainfuse run   --rules PATH... [--input FILE|-] [--output FILE|-]
 *                   [--config FILE] [--dead-letter FILE] [--no-alerts]
 *                   [--stats FILE|-]
 *
 * Exit status: 0 when the command ran (check: whatever it rejected),
 * 1 on a runtime failure, 2 on a usage error.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pipeline.h"
#include "ruleset.h"
#include "sigma.h"
#include "file/file_input.h"
#include "file/file_output.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char *const main_usage =
    "usage: chainfuse <command> [options]\n"
    "\n"
    "Streaming Sigma detection and kill-chain fusion of security events.\n"
    "\n"
    "commands:\n"
    "  check   compile rules and report which were rejected and why\n"
    "  run     match events (JSON lines) and write alerts and incidents\n"
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
    "rejected, with the reason for each rejection.  Exits 0 when it ran,\n"
    "whatever it rejected.\n"
    "\n"
    "  --rules PATH    rule file or directory; repeat for more\n"
    "  --config FILE   chainfuse configuration (placeholders, mappings)\n"
    "  --json          print one JSON object: rules_total, rules_loaded,\n"
    "                  rules_rejected, rejected [{path, id, reason}]\n";

static const char *const run_usage =
    "usage: chainfuse run --rules PATH [--rules PATH ...] [--input FILE|-]\n"
    "                     [--output FILE|-] [--config FILE]\n"
    "                     [--dead-letter FILE] [--no-alerts] [--stats FILE|-]\n"
    "\n"
    "Reads JSON events, one per line (.gz files too), matches them against\n"
    "the rules, correlates alerts into incidents and writes JSON lines,\n"
    "each with \"kind\": \"alert\" or \"incident\".  Lines that cannot be\n"
    "processed go to the dead-letter file with the reason.\n"
    "\n"
    "  --rules PATH        rule file or directory; repeat for more\n"
    "  --input FILE|-      events to read (default: standard input)\n"
    "  --output FILE|-     where to write records (default: standard output)\n"
    "  --config FILE       chainfuse configuration (see README)\n"
    "  --dead-letter FILE  where bad lines go (default from config:\n"
    "                      chainfuse-deadletter.jsonl)\n"
    "  --no-alerts         write incidents only\n"
    "  --stats FILE|-      write run counters as JSON when done\n"
    "                      (a one-line summary always goes to stderr)\n";

struct rules_args {
    const char **paths;
    size_t n;
};

static void add_rules_path(struct rules_args *ra, const char *path) {
    const char **np = cf_realloc(ra->paths, (ra->n + 1) * sizeof *np);
    if (!np) {
        fprintf(stderr, "chainfuse: out of memory\n");
        exit(EXIT_RUNTIME);
    }
    ra->paths = np;
    ra->paths[ra->n++] = path;
}

static struct cf_config *load_config(const char *path) {
    char err[512];
    struct cf_config *cfg =
        path ? cf_config_load(path, err, sizeof err) : cf_config_default();
    if (!cfg)
        fprintf(stderr, "chainfuse: %s\n", path ? err : "out of memory");
    return cfg;
}

/* Loads every rules path into a new rulebook; NULL if a path is
 * unreadable (bad rules inside are recorded, not fatal). */
static struct cf_rulebook *load_rules(const struct rules_args *ra,
                                      const struct cf_config *cfg) {
    char err[512];
    struct cf_rulebook *rb = cf_rulebook_new();
    if (!rb) {
        fprintf(stderr, "chainfuse: out of memory\n");
        return NULL;
    }
    for (size_t i = 0; i < ra->n; i++) {
        if (cf_rulebook_load(rb, ra->paths[i], cfg, err, sizeof err) != CF_OK) {
            fprintf(stderr, "chainfuse: --rules %s: %s\n", ra->paths[i], err);
            cf_rulebook_destroy(rb);
            return NULL;
        }
    }
    if (cf_rulebook_finish(rb, err, sizeof err) != CF_OK) {
        fprintf(stderr, "chainfuse: %s\n", err);
        cf_rulebook_destroy(rb);
        return NULL;
    }
    return rb;
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
    while ((c = getopt_long(argc, argv, "r:c:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': add_rules_path(&ra, optarg); break;
        case 'c': config_path = optarg; break;
        case 'j': as_json = true; break;
        case 'h': fputs(check_usage, stdout); cf_free(ra.paths); return 0;
        default: fputs(check_usage, stderr); cf_free(ra.paths); return EXIT_USAGE;
        }
    }
    if (ra.n == 0 || optind != argc) {
        fprintf(stderr, "chainfuse check: %s\n%s",
                ra.n == 0 ? "at least one --rules PATH is required"
                          : "unexpected argument",
                check_usage);
        cf_free(ra.paths);
        return EXIT_USAGE;
    }
    struct cf_config *cfg = load_config(config_path);
    struct cf_rulebook *rb = cfg ? load_rules(&ra, cfg) : NULL;
    struct cf_ruleset *rs = NULL;
    char err[512];
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
    if (as_json) {
        json_t *o = json_object();
        json_t *rej = json_array();
        json_object_set_new(o, "rules_total", json_integer((json_int_t)total));
        json_object_set_new(o, "rules_loaded", json_integer((json_int_t)loaded));
        json_object_set_new(o, "rules_rejected",
                            json_integer((json_int_t)rb->n_rejected));
        for (size_t i = 0; i < rb->n_rejected; i++) {
            const struct cf_rule_rejection *r = &rb->rejected[i];
            json_t *e = json_object();
            json_object_set_new(e, "path", json_string(r->path));
            json_object_set_new(e, "id", r->id ? json_string(r->id) : json_null());
            json_object_set_new(e, "reason", json_string(r->reason));
            json_array_append_new(rej, e);
        }
        json_object_set_new(o, "rejected", rej);
        json_object_set_new(o, "detection_rules",
                            json_integer((json_int_t)rb->n_rules));
        json_object_set_new(o, "correlation_rules",
                            json_integer((json_int_t)rb->n_correlations));
        json_object_set_new(o, "filters_applied",
                            json_integer((json_int_t)rb->n_filters));
        json_t *comp = json_object();
        json_object_set_new(comp, "fields", json_integer((json_int_t)st.fields));
        json_object_set_new(comp, "patterns",
                            json_integer((json_int_t)st.patterns));
        json_object_set_new(comp, "direct_patterns",
                            json_integer((json_int_t)st.direct_patterns));
        json_object_set_new(comp, "cache_hit", json_boolean(st.cache_hit));
        json_object_set_new(comp, "seconds", json_real(st.compile_seconds));
        json_object_set_new(o, "compile", comp);
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        for (size_t i = 0; i < rb->n_rejected; i++) {
            const struct cf_rule_rejection *r = &rb->rejected[i];
            printf("rejected %s%s%s: %s\n", r->path, r->id ? " id " : "",
                   r->id ? r->id : "", r->reason);
        }
        printf("%zu of %zu rules loaded (%zu detection, %zu correlation), "
               "%zu rejected, %zu filters applied\n",
               loaded, total, rb->n_rules, rb->n_correlations, rb->n_rejected,
               rb->n_filters);
        printf("compiled %zu patterns over %zu fields (%zu checked directly) "
               "in %.2f s%s\n",
               st.patterns, st.fields, st.direct_patterns, st.compile_seconds,
               st.cache_hit ? " (from cache)" : "");
    }
    rc = 0;
done:
    cf_ruleset_destroy(rs);
    cf_rulebook_destroy(rb);
    cf_config_destroy(cfg);
    cf_free(ra.paths);
    return rc;
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
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    struct rules_args ra = {0};
    const char *input = "-", *output = "-", *config_path = NULL;
    const char *dead_letter_path = NULL, *stats_path = NULL;
    bool no_alerts = false;
    int c, rc = EXIT_RUNTIME;
    while ((c = getopt_long(argc, argv, "r:i:o:c:d:ns:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': add_rules_path(&ra, optarg); break;
        case 'i': input = optarg; break;
        case 'o': output = optarg; break;
        case 'c': config_path = optarg; break;
        case 'd': dead_letter_path = optarg; break;
        case 'n': no_alerts = true; break;
        case 's': stats_path = optarg; break;
        case 'h': fputs(run_usage, stdout); cf_free(ra.paths); return 0;
        default: fputs(run_usage, stderr); cf_free(ra.paths); return EXIT_USAGE;
        }
    }
    if (ra.n == 0 || optind != argc) {
        fprintf(stderr, "chainfuse run: %s\n%s",
                ra.n == 0 ? "at least one --rules PATH is required"
                          : "unexpected argument",
                run_usage);
        cf_free(ra.paths);
        return EXIT_USAGE;
    }
    char err[512];
    struct cf_config *cfg = load_config(config_path);
    struct cf_rulebook *rb = NULL;
    struct cf_ruleset *rs = NULL;
    struct cf_input *in = NULL;
    struct cf_output *out = NULL, *dead = NULL;
    struct cf_pipeline *p = NULL;
    if (!cfg) goto done;
    if (dead_letter_path) {
        cf_free(cfg->dead_letter_path);
        cfg->dead_letter_path = cf_strdup(dead_letter_path);
    }
    if (no_alerts) cfg->emit_alerts = false;
    if (!(rb = load_rules(&ra, cfg))) goto done;
    if (!(rs = cf_ruleset_compile(rb, cfg, err, sizeof err))) {
        fprintf(stderr, "chainfuse: cannot compile rules: %s\n", err);
        goto done;
    }
    if (rb->n_rejected)
        fprintf(stderr,
                "chainfuse: %zu rules rejected (see `chainfuse check`)\n",
                rb->n_rejected);
    if (!(in = cf_file_input_open(input, cfg->limits.max_line_bytes, err,
                                  sizeof err))) {
        fprintf(stderr, "chainfuse: --input %s: %s\n", input, err);
        goto done;
    }
    if (!(out = cf_file_output_open(output, 0, err, sizeof err))) {
        fprintf(stderr, "chainfuse: --output %s: %s\n", output, err);
        goto done;
    }
    if (!(dead = cf_file_output_open(cfg->dead_letter_path,
                                     CF_FILE_OUTPUT_DEFERRED, err,
                                     sizeof err))) {
        fprintf(stderr, "chainfuse: dead-letter output: %s\n", err);
        goto done;
    }
    struct cf_pipeline_setup setup = {.cfg = cfg, .rb = rb, .rs = rs,
                                      .out = out, .dead_letter = dead};
    if (!(p = cf_pipeline_new(&setup, err, sizeof err))) {
        fprintf(stderr, "chainfuse: %s\n", err);
        goto done;
    }
    if (cf_pipeline_run(p, in, err, sizeof err) != CF_OK ||
        cf_pipeline_finish(p, err, sizeof err) != CF_OK) {
        fprintf(stderr, "chainfuse: %s\n", err);
        goto done;
    }
    json_t *stats = cf_pipeline_stats(p);
    json_int_t dl = json_integer_value(json_object_get(stats, "dead_lettered"));
    fprintf(stderr,
            "chainfuse: %lld events, %lld alerts, %lld incidents, "
            "%lld dead-lettered%s%s\n",
            (long long)json_integer_value(json_object_get(stats, "events")),
            (long long)json_integer_value(json_object_get(stats, "alerts")),
            (long long)json_integer_value(json_object_get(stats, "incidents")),
            (long long)dl, dl ? " to " : "", dl ? cfg->dead_letter_path : "");
    if (stats_path) {
        FILE *f = strcmp(stats_path, "-") == 0 ? stdout : fopen(stats_path, "w");
        if (f) {
            json_dumpf(stats, f, JSON_COMPACT);
            fputc('\n', f);
            if (f != stdout) fclose(f);
        } else {
            fprintf(stderr, "chainfuse: cannot write --stats %s\n", stats_path);
        }
    }
    json_decref(stats);
    rc = 0;
done:
    cf_pipeline_destroy(p);
    cf_output_close(dead);
    cf_output_close(out);
    cf_input_close(in);
    cf_ruleset_destroy(rs);
    cf_rulebook_destroy(rb);
    cf_config_destroy(cfg);
    cf_free(ra.paths);
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
    fprintf(stderr, "chainfuse: unknown command '%s'\n%s", cmd, main_usage);
    return EXIT_USAGE;
}
