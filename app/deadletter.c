/*
 * deadletter.c - `chainfuse deadletter list|replay` (deadletter.h).
 *
 * A dead-letter file mixes two things.  Input lines the engine could not
 * process (bad JSON, too long, ...) never became records: they can only
 * be fixed and run through `chainfuse run` again.  Output records an
 * output took and could not deliver (a webhook answering 4xx, retries
 * spent) are complete alerts and incidents: replay sends them again, to
 * the same or another output.  An output's dead letter says which output
 * refused it ("output"), or its reason starts "output " as the engine
 * words an output's refusal.
 */
#include "deadletter.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"
#include "file/file_output.h"
#include "out_record.h"
#include "webhook/webhook.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define DEFAULT_FAILED "chainfuse-deadletter-replay.jsonl"

static const char *const usage =
    "usage: chainfuse deadletter list FILE [--kind KIND] [--reason TEXT]\n"
    "       chainfuse deadletter replay FILE --output URL|FILE|-\n"
    "                            [--dead-letter FILE] [--kind KIND]\n"
    "                            [--reason TEXT]\n"
    "\n"
    "list: one line per dead letter (line number, kind, where it came\n"
    "from, reason), then counts by kind and reason.  KIND is `input` for\n"
    "input lines that could not be processed, or the kind of an output\n"
    "record (alert, incident, dead-letter, stats) an output refused.\n"
    "\n"
    "replay: sends the output records of FILE again, in order, to URL\n"
    "(http:// or https://: a webhook signed with the secrets in\n"
    "$" CF_WEBHOOK_SECRET_ENV ") or to a file (`-`: standard output).\n"
    "They keep their id and version (a webhook receiver deduplicates by\n"
    "webhook-id).  Input lines cannot be replayed to an output (they\n"
    "never became records): fix them and run them through `chainfuse\n"
    "run` again.  Records refused again go to --dead-letter "
    "(default " DEFAULT_FAILED ").\n"
    "FILE itself is never changed.\n"
    "\n"
    "  --kind KIND      only dead letters of this kind\n"
    "  --reason TEXT    only dead letters whose reason contains TEXT\n"
    "\n"
    "Exits 0 when every record selected was delivered, 1 when some were\n"
    "refused again or a file cannot be read or written, 2 on a usage\n"
    "error.\n";

/* One dead letter of the file, borrowed from its parsed line. */
struct entry {
    long lineno;
    const char *reason, *source, *kind, *id;
    json_int_t partition, offset, version;
    bool output_side;
    const char *line; /* the record, for output records */
    size_t line_len;
};

struct filter {
    const char *kind, *reason;
};

static const char *str(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static json_int_t num(const json_t *o, const char *k) {
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* False when `doc` is not a dead-letter record. */
static bool parse_entry(const json_t *doc, long lineno, struct entry *e) {
    const char *k = str(doc, "kind");
    if (!k || strcmp(k, "dead-letter") != 0) return false;
    memset(e, 0, sizeof *e);
    e->lineno = lineno;
    e->reason = str(doc, "reason") ? str(doc, "reason") : "(no reason)";
    e->source = str(doc, "source");
    e->partition = num(doc, "partition");
    e->offset = num(doc, "offset");
    e->line = str(doc, "line");
    e->line_len = json_string_length(json_object_get(doc, "line"));
    /* The engine words an output's refusal "output NAME: why" (older
     * builds: "output failed"); input defects never start so. */
    e->output_side = str(doc, "output") ||
                     strncmp(e->reason, "output ", 7) == 0 ||
                     strcmp(e->reason, "output failed") == 0;
    e->kind = "input";
    if (e->output_side) {
        /* record_kind, id and version are written by
         * cf_dead_letter_write_record; the pipeline's "output failed"
         * dead letters hold only the record, read by each_entry */
        e->kind = str(doc, "record_kind");
        e->id = str(doc, "id");
        e->version = num(doc, "version");
    }
    return true;
}

static bool selected(const struct entry *e, const struct filter *f) {
    if (f->kind && strcmp(f->kind, e->kind) != 0) return false;
    if (f->reason && !strstr(e->reason, f->reason)) return false;
    return true;
}

/* Calls `each` for every dead letter of `path` that `f` selects, with
 * its parsed line (and the record, parsed, for output records whose
 * line is JSON).  Lines that are not dead letters are counted in
 * *foreign.  False when the file cannot be read. */
typedef void (*entry_fn)(const struct entry *e, const json_t *record,
                         void *opaque);
static bool each_entry(const char *path, const struct filter *f, entry_fn each,
                       void *opaque, long *foreign) {
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    *foreign = 0;
    if (!in) {
        fprintf(stderr, "chainfuse deadletter: cannot read %s\n", path);
        return false;
    }
    while ((n = getline(&line, &cap, in)) > 0) {
        lineno++;
        json_t *doc = json_loadb(line, (size_t)n, JSON_DISABLE_EOF_CHECK, NULL);
        struct entry e;
        if (!doc || !parse_entry(doc, lineno, &e)) {
            if (n > 1 || line[0] != '\n') (*foreign)++;
            json_decref(doc);
            continue;
        }
        json_t *rec = e.output_side && e.line
                          ? json_loadb(e.line, e.line_len, 0, NULL)
                          : NULL;
        if (!e.kind)
            e.kind = str(rec, "kind") ? str(rec, "kind") : "unreadable";
        if (selected(&e, f)) each(&e, rec, opaque);
        json_decref(rec);
        json_decref(doc);
    }
    bool ok = !ferror(in);
    free(line); /* getline's own allocation */
    if (in != stdin) fclose(in);
    if (!ok) fprintf(stderr, "chainfuse deadletter: error reading %s\n", path);
    return ok;
}

/* Counts by a text (kind or reason), in order of first appearance. */
struct tally {
    char **name;
    long *count;
    size_t n;
    bool failed;
};

static void tally_add(struct tally *t, const char *name) {
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->name[i], name) == 0) {
            t->count[i]++;
            return;
        }
    char **nn = cf_realloc(t->name, (t->n + 1) * sizeof *nn);
    if (nn) t->name = nn;
    long *nc = cf_realloc(t->count, (t->n + 1) * sizeof *nc);
    if (nc) t->count = nc;
    char *d = nn && nc ? cf_strdup(name) : NULL;
    if (!d) {
        t->failed = true;
        return;
    }
    t->name[t->n] = d;
    t->count[t->n++] = 1;
}

static void tally_free(struct tally *t) {
    for (size_t i = 0; i < t->n; i++) cf_free(t->name[i]);
    cf_free(t->name);
    cf_free(t->count);
}

struct listing {
    struct tally kinds, reasons;
    long total, output_records, input_lines;
};

static void where(const struct entry *e, char *buf, size_t n) {
    if (e->source && e->partition >= 0)
        snprintf(buf, n, "%s[%lld]:%lld", e->source, (long long)e->partition,
                 (long long)e->offset);
    else if (e->source)
        snprintf(buf, n, "%s:%lld", e->source, (long long)e->offset);
    else
        snprintf(buf, n, "-");
}

static void list_one(const struct entry *e, const json_t *rec, void *opaque) {
    struct listing *l = opaque;
    const char *kind = e->kind;
    struct cf_out_record_json oj; /* as replay would send it */
    bool readable = rec && cf_out_record_from_json(rec, "", 0, &oj);
    const char *id = e->id ? e->id : readable ? oj.rec.id : NULL;
    json_int_t version = e->version > 0 ? e->version
                         : readable     ? (json_int_t)oj.rec.version
                                        : 0;
    char pos[300];
    where(e, pos, sizeof pos);
    printf("%-6ld %-10s %-30s %s", e->lineno, kind, pos, e->reason);
    if (id && version > 0)
        printf(" [%s v%lld]", id, (long long)version);
    else if (id)
        printf(" [%s]", id);
    putchar('\n');
    l->total++;
    if (e->output_side)
        l->output_records++;
    else
        l->input_lines++;
    tally_add(&l->kinds, kind);
    tally_add(&l->reasons, e->reason);
}

static int cmd_list(const char *path, const struct filter *f) {
    struct listing l = {0};
    long foreign;
    printf("%-6s %-10s %-30s %s\n", "LINE", "KIND", "FROM", "REASON");
    bool ok = each_entry(path, f, list_one, &l, &foreign);
    printf("\n%ld dead letter%s: %ld output record%s that `chainfuse "
           "deadletter replay` can send again, %ld input line%s that cannot "
           "be replayed to an output (fix them and run them again)\n",
           l.total, l.total == 1 ? "" : "s", l.output_records,
           l.output_records == 1 ? "" : "s", l.input_lines,
           l.input_lines == 1 ? "" : "s");
    for (size_t i = 0; i < l.kinds.n; i++)
        printf("  %8ld  kind %s\n", l.kinds.count[i], l.kinds.name[i]);
    for (size_t i = 0; i < l.reasons.n; i++)
        printf("  %8ld  %s\n", l.reasons.count[i], l.reasons.name[i]);
    if (foreign)
        fprintf(stderr,
                "chainfuse deadletter: %ld line%s of %s %s not a dead-letter "
                "record\n",
                foreign, foreign == 1 ? "" : "s", path,
                foreign == 1 ? "is" : "are");
    if (l.kinds.failed || l.reasons.failed)
        fprintf(stderr, "chainfuse deadletter: out of memory counting\n");
    tally_free(&l.kinds);
    tally_free(&l.reasons);
    return ok && !l.kinds.failed && !l.reasons.failed ? 0 : EXIT_RUNTIME;
}

struct replay {
    struct cf_output *out, *again;
    const char *out_name, *shown;
    long sent, refused, input_lines, unreadable;
    bool again_failed;
};

/* A record the output took and then refused for good. */
static void refused_again(void *engine, const struct cf_out_record *rec,
                          const char *reason) {
    struct replay *r = engine;
    struct cf_buf why = CF_BUF_INIT;
    r->refused++;
    /* worded as the engine words an output's refusal */
    cf_buf_printf(&why, "output %s: %s", r->shown, reason);
    if (why.failed || cf_dead_letter_write_record(r->again, why.data,
                                                  r->out_name, rec) != CF_OK)
        r->again_failed = true;
    cf_buf_free(&why);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void replay_one(const struct entry *e, const json_t *rec, void *opaque) {
    struct replay *r = opaque;
    struct cf_out_record_json oj;
    if (!e->output_side) {
        r->input_lines++;
        return;
    }
    if (!cf_out_record_from_json(rec, e->line, e->line_len, &oj)) {
        r->unreadable++;
        return;
    }
    struct cf_position pos = {e->source, (int32_t)e->partition, e->offset};
    if (e->source || e->offset >= 0) oj.rec.pos = &pos;
    long backoff = 10;
    cf_io_status st;
    /* RETRY is backpressure (the output retries and dead-letters on its
     * own): wait, as the engine does. */
    while ((st = r->out->ops->write(r->out, &oj.rec)) == CF_IO_RETRY) {
        sleep_ms(backoff);
        if (backoff < 1000) backoff *= 2;
    }
    if (st == CF_IO_OK) {
        r->sent++;
    } else { /* counted as taken, then refused */
        r->sent++;
        refused_again(r, &oj.rec, "the output failed");
    }
}

/* Whether a and b are the same existing file, or the same name. */
static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino &&
               S_ISREG(sa.st_mode);
    return strcmp(a, b) == 0;
}

static bool is_webhook(const char *url) {
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

static int cmd_replay(const char *path, const char *url, const char *again,
                      const struct filter *f) {
    char err[512];
    struct replay r = {0};
    struct cf_buf shown = CF_BUF_INIT;
    long foreign;
    int rc = EXIT_RUNTIME;
    if (same_file(path, again) || (!is_webhook(url) && same_file(url, again)) ||
        (!is_webhook(url) && same_file(url, path))) {
        fprintf(stderr,
                "chainfuse deadletter replay: %s, --output and "
                "--dead-letter must be three different files\n",
                path);
        return EXIT_USAGE;
    }
    if (is_webhook(url)) {
        cf_webhook_safe_url(&shown, url);
        r.out = cf_webhook_output_open(url, NULL, err, sizeof err);
    } else {
        cf_buf_puts(&shown, url);
        r.out = cf_file_output_open(url, 0, err, sizeof err);
    }
    if (!r.out) {
        fprintf(stderr, "chainfuse deadletter replay: --output: %s\n", err);
        goto done;
    }
    r.out_name = r.out->ops->name;
    r.shown = shown.data;
    if (!(r.again = cf_file_output_open(again, CF_FILE_OUTPUT_DEFERRED, err,
                                        sizeof err))) {
        fprintf(stderr, "chainfuse deadletter replay: --dead-letter: %s\n",
                err);
        goto done;
    }
    r.out->dead_letter = refused_again;
    r.out->engine = &r;
    bool read_ok = each_entry(path, f, replay_one, &r, &foreign);
    long backoff = 10;
    cf_io_status st;
    while ((st = r.out->ops->flush(r.out)) == CF_IO_RETRY) {
        sleep_ms(backoff);
        if (backoff < 1000) backoff *= 2;
    }
    if (st != CF_IO_OK)
        fprintf(stderr, "chainfuse deadletter replay: %s failed to flush%s%s\n",
                shown.data, *cf_file_output_error(r.out) ? ": " : "",
                cf_file_output_error(r.out));
    if (r.again->ops->flush(r.again) != CF_IO_OK) r.again_failed = true;
    fprintf(stderr,
            "chainfuse deadletter replay: %ld record%s sent to %s, %ld "
            "refused again%s%s%s\n",
            r.sent - r.refused, r.sent - r.refused == 1 ? "" : "s", shown.data,
            r.refused, r.refused ? " (in " : "", r.refused ? again : "",
            r.refused ? (r.again_failed ? ", NOT saved)" : ")") : "");
    if (r.input_lines)
        fprintf(stderr,
                "chainfuse deadletter replay: %ld input line%s skipped: input "
                "lines (bad JSON, too long, ...) never became records and "
                "cannot be replayed to an output; fix them and run them "
                "through `chainfuse run` again\n",
                r.input_lines, r.input_lines == 1 ? "" : "s");
    if (r.unreadable)
        fprintf(stderr,
                "chainfuse deadletter replay: %ld output dead letter%s hold "
                "no readable record and were skipped\n",
                r.unreadable, r.unreadable == 1 ? "" : "s");
    if (foreign)
        fprintf(stderr,
                "chainfuse deadletter replay: %ld line%s of %s not a "
                "dead-letter record, skipped\n",
                foreign, foreign == 1 ? " is" : "s are", path);
    rc = read_ok && st == CF_IO_OK && !r.refused && !r.again_failed &&
                 !r.unreadable
             ? 0
             : EXIT_RUNTIME;
done:
    cf_output_close(r.out);
    cf_output_close(r.again);
    cf_buf_free(&shown);
    return rc;
}

int cf_cmd_deadletter(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},
        {"dead-letter", required_argument, 0, 'd'},
        {"kind", required_argument, 0, 'k'},
        {"reason", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *output = NULL, *again = NULL;
    struct filter f = {0};
    int c;
    char prog[] = "chainfuse deadletter"; /* getopt's messages start with it */
    argv[0] = prog;
    while ((c = getopt_long(argc, argv, "o:d:k:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'd': again = optarg; break;
        case 'k': f.kind = optarg; break;
        case 'r': f.reason = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    const char *sub = optind < argc ? argv[optind] : NULL;
    bool list = sub && strcmp(sub, "list") == 0;
    bool replay = sub && strcmp(sub, "replay") == 0;
    if ((!list && !replay) || argc - optind != 2) {
        fprintf(stderr,
                "chainfuse deadletter: give `list FILE` or `replay "
                "FILE --output URL`\n%s",
                usage);
        return EXIT_USAGE;
    }
    const char *path = argv[optind + 1];
    if (list && (output || again)) {
        fprintf(stderr, "chainfuse deadletter list: --output and "
                        "--dead-letter are for replay\n");
        return EXIT_USAGE;
    }
    if (list) return cmd_list(path, &f);
    if (!output) {
        fprintf(stderr,
                "chainfuse deadletter replay: --output URL|FILE is required\n");
        return EXIT_USAGE;
    }
    return cmd_replay(path, output, again ? again : DEFAULT_FAILED, &f);
}
