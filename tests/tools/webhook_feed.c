/*
 * webhook_feed.c - drives the webhook output as the engine does, for the
 * tests: until the connector registry lets `chainfuse run --output URL`
 * reach it, this is how records a run wrote reach a receiver.
 *
 *   webhook_feed URL RECORDS.jsonl DEADLETTER.jsonl [OPTIONS.json]
 *
 * Each line of RECORDS (alerts and incidents as `chainfuse run` writes
 * them) is offered to the output until it answers OK (sleeping 10 ms
 * doubling to 1 s on RETRY, as the pipeline does); records the output
 * reports later through the dead-letter hook are written to DEADLETTER
 * with cf_dead_letter_write_record; at the end flush() is called until
 * it answers OK.  OPTIONS is the output's YAML item as JSON (without it:
 * $CHAINFUSE_WEBHOOK_SECRET).  Prints "written N dead_lettered M
 * retries R" on stdout.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "file/file_output.h"
#include "out_record.h"
#include "webhook/webhook.h"

struct feed {
    struct cf_output *dead;
    const char *url;
    long dead_lettered;
    bool dead_failed;
};

static void on_dead_letter(void *engine, const struct cf_out_record *rec,
                           const char *reason) {
    struct feed *f = engine;
    char why[512];
    f->dead_lettered++;
    /* worded as the engine words an output's refusal */
    snprintf(why, sizeof why, "output %s: %s", f->url, reason);
    if (cf_dead_letter_write_record(f->dead, why, "webhook", rec) != CF_OK)
        f->dead_failed = true;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    char err[512];
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: webhook_feed URL RECORDS.jsonl "
                        "DEADLETTER.jsonl [OPTIONS.json]\n");
        return 2;
    }
    json_t *opts = NULL;
    if (argc == 5 && !(opts = json_load_file(argv[4], 0, NULL))) {
        fprintf(stderr, "webhook_feed: %s: not JSON\n", argv[4]);
        return 2;
    }
    struct feed f = {0};
    f.url = argv[1]; /* a test URL: nothing to mask */
    FILE *in = fopen(argv[2], "r");
    if (!in) {
        perror(argv[2]);
        return 1;
    }
    if (!(f.dead = cf_file_output_open(argv[3], 0, err, sizeof err))) {
        fprintf(stderr, "webhook_feed: %s\n", err);
        return 1;
    }
    struct cf_output *out =
        cf_webhook_output_open(argv[1], opts, err, sizeof err);
    if (!out) {
        fprintf(stderr, "webhook_feed: %s\n", err);
        return 1;
    }
    out->dead_letter = on_dead_letter;
    out->engine = &f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long written = 0, retries = 0, lineno = 0;
    while ((n = getline(&line, &cap, in)) > 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0) continue;
        json_t *doc = json_loadb(line, (size_t)n, 0, NULL);
        struct cf_out_record_json r;
        struct cf_position pos = {argv[2], -1, lineno};
        if (!cf_out_record_from_json(doc, line, (size_t)n, &r)) {
            fprintf(stderr, "webhook_feed: line %ld is not a record\n", lineno);
            return 1;
        }
        r.rec.pos = &pos;
        long backoff = 10;
        cf_io_status st;
        while ((st = out->ops->write(out, &r.rec)) == CF_IO_RETRY) {
            retries++;
            sleep_ms(backoff);
            if (backoff < 1000) backoff *= 2;
        }
        json_decref(doc);
        if (st != CF_IO_OK) {
            fprintf(stderr, "webhook_feed: write failed\n");
            return 1;
        }
        written++;
    }
    free(line); /* getline's own allocation */
    fclose(in);
    long backoff = 10;
    while (out->ops->flush(out) == CF_IO_RETRY) {
        sleep_ms(backoff);
        if (backoff < 1000) backoff *= 2;
    }
    cf_output_close(out);
    cf_output_close(f.dead);
    json_decref(opts);
    printf("written %ld dead_lettered %ld retries %ld\n", written,
           f.dead_lettered, retries);
    return f.dead_failed ? 1 : 0;
}
