/*
 * test_oom.c - out-of-memory paths, tested the way SQLite tests them
 * (test/malloc*.test): the allocation hook of core/alloc.h makes the Nth
 * allocation fail, and each subsystem is run for N = 0, 1, 2, ... until
 * N passes its last allocation.  Every run must end in success or in a
 * clean error (or, on the event path, a dead letter or a counted drop):
 * never a crash, a leak, a partial record or a silently different result.
 * Run under the sanitizer build (CF_SANITIZE=ON) this catches leaks,
 * double frees and NULL dereferences on every error path.
 *
 * Two modes per subsystem, as SQLite does:
 *  - persistent: allocation N+1 and every later one fail (the code must
 *    stop cleanly);
 *  - transient: only allocation N+1 fails (the code must recover: what it
 *    produces after the failure must still be right).
 *
 * Subsystems: the event decoder; the Sigma loader and ruleset compiler
 * (rules/pack, a few SigmaHQ rules, a filter); fusion with correlation
 * (alerts from real matches); the pipeline over a small file with
 * capturing outputs.  Each run's result is compared with a reference
 * run made without injection.
 *
 * N is stepped by 1 up to each subject's `dense` allocations and
 * sparser beyond (a run costs O(N), so a dense sweep of a long operation
 * is quadratic); CF_OOM_FULL=1 in the environment makes every sweep
 * dense, and CF_OOM_BIG=1 gives the loader all of rules/pack and the
 * pipeline every line fusion gets (minutes, not seconds, when dense).
 * The N at which each sweep completed (the operation's number of
 * allocations), the runs and their CPU time are printed.
 */
/* cmocka needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <hs.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "connector.h"
#include "event.h"
#include "file/file_input.h"
#include "fusion.h"
#include "pipeline.h"
#include "ruleset.h"
#include "shared_data.h"
#include "sigma.h"
#include "sigma_correlation.h"

static const char *src_dir(void) {
    const char *s = getenv("CF_SOURCE_DIR");
    return s ? s : CF_SOURCE_DIR;
}

static bool big(void) {
    return getenv("CF_OOM_BIG") && *getenv("CF_OOM_BIG") == '1';
}

static const char *shared_dir(void) {
    const char *s = getenv("CF_SHARED_DIR");
    return s ? s : CF_SOURCE_DIR "/../shared";
}

/* ---- the sweep ------------------------------------------------------ */

/* One subsystem under test.  run() works under injection and records
 * its outcome; check() runs without injection, asserts that the outcome
 * is a success equal to the reference or a clean failure, and says
 * whether it was a full success; cleanup() frees what run() made. */
struct subject {
    const char *name;
    void (*run)(void *ctx);
    bool (*check)(void *ctx, unsigned long refused);
    void (*cleanup)(void *ctx);
    long dense; /* every N below this; sparser above (CF_OOM_FULL: all) */
};

/* The run in progress, for failure messages. */
static const char *cur_name = "setup";
static long cur_n = -1;
static bool cur_persistent;

#define FAIL(...)                                                              \
    do {                                                                       \
        print_message("%s, %s mode, N=%ld: ", cur_name,                        \
                      cur_persistent ? "persistent" : "transient", cur_n);     \
        fail_msg(__VA_ARGS__);                                                 \
    } while (0)

/* CPU time: the figure that means something beside other builds. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long next_n(const struct subject *s, long n) {
    static int full = -1;
    if (full < 0) full = getenv("CF_OOM_FULL") && *getenv("CF_OOM_FULL") == '1';
    if (full || n < s->dense) return n + 1;
    /* Sparser with distance, but never a round stride, so the runs do
     * not keep landing on the same kind of allocation. */
    return n + 1 + (n - s->dense) / 16 + (n % 7);
}

/* One run with injection at N; true when no allocation was refused
 * (N is past the operation's last allocation). */
static bool run_at(const struct subject *s, void *ctx, bool persistent,
                   long n) {
    cur_n = n;
    if (persistent)
        cf_alloc_fail_after(n);
    else
        cf_alloc_fail_once(n);
    s->run(ctx);
    unsigned long refused = cf_alloc_failures();
    cf_alloc_fail_after(-1);
    bool ok = s->check(ctx, refused);
    s->cleanup(ctx);
    if (!ok && refused == 0) FAIL("failed with no allocation refused");
    return refused == 0;
}

/* Returns how many allocations the subject makes: the first N at which
 * it ran through without a refused one. */
static long sweep(const struct subject *s, void *ctx, bool persistent) {
    double t0 = now_s();
    long n, prev = -1, runs = 0;
    cur_name = s->name;
    cur_persistent = persistent;
    /* CF_OOM_START=N begins there (to look at one failure quickly). */
    n = getenv("CF_OOM_START") ? atol(getenv("CF_OOM_START")) : 0;
    for (;; prev = n, n = next_n(s, n)) {
        runs++;
        if (run_at(s, ctx, persistent, n)) break;
    }
    /* Past the dense part the last step may have overshot: bisect back
     * to the exact count (each probe is a checked run too). */
    for (long lo = prev; prev >= 0 && n - lo > 1;) {
        long mid = lo + (n - lo) / 2;
        runs++;
        if (run_at(s, ctx, persistent, mid))
            n = mid;
        else
            lo = mid;
    }
    cur_n = -1;
    print_message("%s: %s sweep: %ld allocations, %ld runs, %.1f s CPU\n",
                  s->name, persistent ? "persistent" : "transient", n, runs,
                  now_s() - t0);
    return n;
}

/* CF_OOM_MODE=persistent or transient runs only that mode,
 * CF_OOM_ONLY=<name> only that subject's sweeps. */
static void sweep_both(const struct subject *s, void *ctx) {
    const char *mode = getenv("CF_OOM_MODE"), *only = getenv("CF_OOM_ONLY");
    long a = -1, b = -1;
    if (only && strcmp(only, s->name) != 0) return;
    if (!mode || strcmp(mode, "transient") != 0) a = sweep(s, ctx, true);
    if (!mode || strcmp(mode, "persistent") != 0) b = sweep(s, ctx, false);
    /* Both modes end at the same count: the operation's allocations. */
    if (a >= 0 && b >= 0) assert_int_equal(a, b);
}

/* A malloc'd copy (the test's own memory is not injected). */
static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* A list of malloc'd strings. */
struct strs {
    char **v;
    size_t n;
};

static void strs_add(struct strs *l, const char *s, size_t n) {
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    assert_non_null(l->v);
    l->v[l->n++] = dupn(s, n);
}

static void strs_free(struct strs *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static bool strs_has(const struct strs *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) return true;
    return false;
}

/* ---- decoder -------------------------------------------------------- */

static const char *const decode_lines[] = {
    /* flat Sysmon */
    "{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":1,"
    "\"Hostname\":\"WS03\",\"Image\":\"C:\\\\Windows\\\\whoami.exe\","
    "\"CommandLine\":\"whoami /priv\",\"UtcTime\":\"2026-11-02 08:00:00.000\"}",
    /* nested XML-as-JSON with attributes, Data array, text, null */
    "{\"Event\":{\"#attributes\":{\"xmlns\":\"http://x\"},\"System\":{"
    "\"Provider\":{\"#attributes\":{\"Name\":\"Microsoft-Windows-Security-"
    "Auditing\",\"Guid\":\"{54849625}\"}},\"EventID\":{\"#text\":\"4624\","
    "\"#attributes\":{\"Qualifiers\":\"0\"}},\"TimeCreated\":{\"@SystemTime\":"
    "\"2024-05-01T10:00:00.000Z\"},\"Correlation\":null,\"Computer\":\"DC01\"},"
    "\"EventData\":{\"Data\":[{\"@Name\":\"TargetUserName\",\"#text\":"
    "\"alice\"},"
    "{\"#text\":\"10\",\"#attributes\":{\"Name\":\"LogonType\"}},"
    "{\"@Name\":\"Empty\"},\"loose\"]}}}",
    /* UserData wrapper */
    "{\"Event\":{\"System\":{\"EventID\":1102},\"UserData\":{"
    "\"LogFileCleared\":"
    "{\"SubjectUserName\":\"bob\",\"SubjectDomainName\":\"ACME\"}}}}",
    /* arrays, nesting, escapes, numbers as written */
    "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\\u00e9\\n\","
    "\"f\":{\"g\":[1.50,1e3,-0]}},\"k\":\"\\ud83d\\ude00\",\"z\":[[],{},[{}]],"
    "\"big\":123456789012345678901234567890}",
    /* CloudTrail-like with dotted names */
    "{\"eventTime\":\"2026-11-02T10:00:00Z\",\"userIdentity\":{\"arn\":"
    "\"arn:aws:iam::1:user/x\",\"accountId\":\"1\"},\"requestParameters\":"
    "{\"bucketName\":\"b\",\"instancesSet\":{\"items\":[{\"instanceId\":\"i-"
    "1\"},"
    "{\"instanceId\":\"i-2\"}]}}}",
    /* ECS (Winlogbeat) */
    "{\"@timestamp\":\"2026-11-02T08:00:00Z\",\"host\":{\"name\":\"ws\"},"
    "\"winlog\":{\"channel\":\"Security\",\"event_id\":\"4688\",\"record_id\":"
    "7,\"event_data\":{\"NewProcessName\":\"C:\\\\a.exe\"}}}",
    /* Sentinel WindowsEvent: JSON inside a string */
    "{\"Computer\":\"ws\",\"EventData\":\"{\\\"Image\\\":\\\"x\\\",\\\"n\\\""
    ":{\\\"m\\\":[1,2]}}\",\"TimeGenerated\":\"2026-11-02T08:00:00Z\"}",
    /* Sentinel Event: XML inside a string, EventLog and Source renamed */
    "{\"EventLog\":\"System\",\"Source\":\"SCM\",\"EventData\":\"<DataItem>"
    "<EventData xmlns='x'><Data Name='ServiceName'>evil</Data><Data>d</Data>"
    "</EventData></DataItem>\"}",
    /* Sentinel Syslog: Sysmon for Linux XML with broken escapes, cut */
    "{\"Facility\":\"user\",\"SyslogMessage\":\"<Event><System><Provider "
    "Name='Linux-Sysmon'/><EventID>1</EventID></System><EventData><Data "
    "Name='Image'>&lt unknown&gt </Data><Data Name='CommandLine'>java -D\"}",
    /* Sentinel Syslog: an audit record */
    "{\"SyslogMessage\":\"type=EXECVE msg=audit(1.2:3): argc=2 a0=\\\"bash\\\" "
    "proctitle=bash -i\"}",
    /* raw event XML */
    "<Event><System><EventID Qualifiers='0'>4624</EventID><TimeCreated "
    "SystemTime='2024-05-01T10:00:00Z'/></System><UserData><W><A>1</A></W>"
    "</UserData><EventData><Data Name='TargetUserName'>al&amp;ice</Data>"
    "</EventData></Event>",
    /* broken XML and embedded JSON, a DTD, XML nested too deep */
    "<Event><System></Event>",
    "<!DOCTYPE e [<!ENTITY x \"y\">]><Event>&x;</Event>",
    "{\"EventData\":\"{\\\"a\\\":\"}",
    "<a><a><a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a></a></a>",
    /* broken ones: same verdict with or without memory */
    "not json",
    "{\"a\":[1,2",
    "[1,2,3]",
    "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":1}}}}}}}}}",
    "{\"bad\":\"\xff\xfe\"}",
    NULL, /* the large event, built in setup */
    /* small again: buffers grown by the large one are reused */
    "{\"x\":\"y\"}",
};

struct decode_ref {
    cf_err_t rc;
    const char *reason;
    char *fields; /* canonical text of the leaves, malloc'd */
    int64_t time_ms;
};

struct decode_ctx {
    const char *lines[CF_ARRAY_LEN(decode_lines)];
    char *large;
    struct decode_ref ref[CF_ARRAY_LEN(decode_lines)];
    struct cf_decode_limits limits;
    /* one run */
    bool dec_failed;
    struct decode_ref got[CF_ARRAY_LEN(decode_lines)];
};

static char *canon_fields(const struct cf_event *ev) {
    size_t cap = 256, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    for (uint32_t i = 0; i < ev->n_fields; i++) {
        const struct cf_event_field *f = &ev->fields[i];
        size_t need = len + f->name_len + f->value_len + 16;
        if (need > cap) {
            while (cap < need) cap *= 2;
            s = realloc(s, cap);
            assert_non_null(s);
        }
        assert_int_equal(f->name_hash, cf_hash_name(f->name, f->name_len));
        memcpy(s + len, f->name, f->name_len);
        len += f->name_len;
        len += (size_t)snprintf(s + len, cap - len, "=%d:", f->type);
        memcpy(s + len, f->value, f->value_len);
        len += f->value_len;
        s[len++] = '\n';
        s[len] = '\0';
    }
    return s;
}

static void decode_all(struct decode_ctx *c, struct decode_ref *out) {
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_event ev;
    c->dec_failed = !dec;
    memset(out, 0, CF_ARRAY_LEN(decode_lines) * sizeof *out);
    if (!dec) return;
    cf_event_init(&ev);
    for (size_t i = 0; i < CF_ARRAY_LEN(decode_lines); i++) {
        const char *reason = NULL;
        out[i].rc = cf_event_decode(dec, &ev, c->lines[i], strlen(c->lines[i]),
                                    &c->limits, &reason);
        out[i].reason = reason;
        out[i].time_ms = ev.time_ms;
        /* malloc while injection is on: the test's own memory is plain */
        out[i].fields = out[i].rc == CF_OK ? canon_fields(&ev) : NULL;
        if (out[i].rc != CF_OK) assert_int_equal(ev.n_fields, 0);
    }
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
}

static void decode_run(void *ctx) {
    struct decode_ctx *c = ctx;
    decode_all(c, c->got);
}

static bool decode_check(void *ctx, unsigned long refused) {
    struct decode_ctx *c = ctx;
    bool all = !c->dec_failed;
    (void)refused;
    if (c->dec_failed) return false;
    for (size_t i = 0; i < CF_ARRAY_LEN(decode_lines); i++) {
        const struct decode_ref *g = &c->got[i], *r = &c->ref[i];
        if (g->rc == CF_ERR_NOMEM) {
            if (!g->reason || strcmp(g->reason, "out of memory") != 0)
                FAIL("line %zu: out of memory with reason '%s'", i,
                     g->reason ? g->reason : "(none)");
            all = false;
            continue;
        }
        /* anything else is exactly what it is with memory to spare */
        if (g->rc != r->rc)
            FAIL("line %zu: rc %d instead of %d", i, g->rc, r->rc);
        if (r->rc != CF_OK) {
            if (strcmp(g->reason, r->reason) != 0)
                FAIL("line %zu: '%s' instead of '%s'", i, g->reason, r->reason);
            continue;
        }
        if (strcmp(g->fields, r->fields) != 0 || g->time_ms != r->time_ms)
            FAIL("line %zu decoded differently:\n%s\ninstead of\n%s", i,
                 g->fields, r->fields);
    }
    return all;
}

static void decode_cleanup(void *ctx) {
    struct decode_ctx *c = ctx;
    for (size_t i = 0; i < CF_ARRAY_LEN(decode_lines); i++) {
        free(c->got[i].fields);
        c->got[i].fields = NULL;
    }
}

static void test_decoder(void **state) {
    static struct decode_ctx c;
    (void)state;
    memset(&c, 0, sizeof c);
    c.limits.max_depth = 8;
    /* A large event: 200 fields (the field array grows past its first
     * 64) with long values (the string buffers grow). */
    size_t cap = 64 * 1024, len = 0;
    c.large = malloc(cap);
    assert_non_null(c.large);
    len += (size_t)snprintf(c.large + len, cap - len,
                            "{\"Event\":{\"EventData\":"
                            "{\"Data\":[");
    for (int i = 0; i < 200; i++)
        len += (size_t)snprintf(c.large + len, cap - len,
                                "%s{\"@Name\":\"F%d\",\"#text\":\"%0*d\"}",
                                i ? "," : "", i, 100 + i % 50, i);
    len += (size_t)snprintf(c.large + len, cap - len, "]}}}");
    assert_true(len < cap);
    for (size_t i = 0; i < CF_ARRAY_LEN(decode_lines); i++)
        c.lines[i] = decode_lines[i] ? decode_lines[i] : c.large;
    decode_all(&c, c.ref);
    assert_false(c.dec_failed);
    size_t n_ok = 0;
    for (size_t i = 0; i < CF_ARRAY_LEN(decode_lines); i++)
        n_ok += c.ref[i].rc == CF_OK;
    assert_int_equal(n_ok, 13);

    static const struct subject s = {"decoder", decode_run, decode_check,
                                     decode_cleanup, 1000};
    sweep_both(&s, &c);
    for (size_t i = 0; i < CF_ARRAY_LEN(decode_lines); i++)
        free(c.ref[i].fields);
    free(c.large);
}

/* ---- Sigma loader and ruleset compiler ------------------------------ */

static const char *const sigmahq_rules[] = {
    "rules/windows/process_creation/"
    "proc_creation_win_powershell_base64_frombase64string.yml",
    "rules/windows/process_creation/proc_creation_win_lolbin_unregmp2.yml",
    "rules/network/zeek/zeek_rdp_public_listener.yml",
    "rules/linux/process_creation/proc_creation_lnx_susp_inod_listing.yml",
    "rules/windows/file/file_delete/file_delete_win_delete_own_image.yml",
    "rules/network/zeek/zeek_smb_converted_win_lm_namedpipe.yml",
    "rules/linux/auditd/syscall/lnx_auditd_web_rce.yml",
    "rules-emerging-threats/2026/Exploits/CVE-2026-54121/"
    "win_security_adcs_certighost_cdc_chase_request.yml",
};

/* Documents the loader must reject, whatever memory there is, so the
 * sweep goes through recording rejections too. */
static const char rejected_yaml[] =
    "title: Unknown Modifier\n"
    "id: 0d0e0f10-1111-4222-8333-444455556666\n"
    "logsource: {product: windows, category: process_creation}\n"
    "detection:\n"
    "  sel: {Image|nosuchmodifier: x}\n"
    "  condition: sel\n"
    "---\n"
    "- not a rule\n"
    "---\n"
    "title: Broken Regex\n"
    "logsource: {product: windows, category: process_creation}\n"
    "detection:\n"
    "  sel: {CommandLine|re: '(unclosed'}\n"
    "  condition: sel\n"
    "---\n"
    "title: Correlation Of Nothing\n"
    "correlation:\n"
    "  type: event_count\n"
    "  rules: [no_such_rule]\n"
    "  group-by: [Hostname]\n"
    "  timespan: 5m\n"
    "  condition: {gte: 2}\n";

struct load_ctx {
    char paths[16][1024];
    size_t n_paths;
    struct cf_config *cfg;
    /* reference */
    struct strs ref_rules, ref_rejected, ref_corrs;
    struct cf_ruleset_stats ref_stats;
    /* one run */
    struct cf_rulebook *rb;
    struct cf_ruleset *rs;
    cf_err_t rc;
    const char *stage;
    char err[512];
};

static void load_and_compile(struct load_ctx *c) {
    c->rs = NULL;
    c->err[0] = '\0';
    c->rc = CF_OK;
    c->stage = "new";
    if (!(c->rb = cf_rulebook_new())) {
        c->rc = CF_ERR_NOMEM;
        snprintf(c->err, sizeof c->err, "out of memory"); /* NULL says it */
        return;
    }
    c->stage = "load";
    for (size_t i = 0; i < c->n_paths; i++)
        if ((c->rc = cf_rulebook_load(c->rb, c->paths[i], c->cfg, c->err,
                                      sizeof c->err)) != CF_OK)
            return;
    c->stage = "finish";
    if ((c->rc = cf_rulebook_finish(c->rb, c->err, sizeof c->err)) != CF_OK)
        return;
    c->stage = "compile";
    if (!(c->rs = cf_ruleset_compile(c->rb, c->cfg, c->err, sizeof c->err)))
        c->rc = CF_ERR;
}

/* One line per rule, rejection and correlation: what a user sees. */
static void describe_book(const struct cf_rulebook *rb, struct strs *rules,
                          struct strs *rejected, struct strs *corrs) {
    char line[4096];
    for (size_t i = 0; i < rb->n_rules; i++) {
        const struct cf_sigma_rule *r = rb->rules[i];
        int n = snprintf(
            line, sizeof line, "%s|%s|%s|%s|%d|%zu|%zu|%s|%s|%s|%s",
            r->id ? r->id : "-", r->title ? r->title : "-",
            r->name ? r->name : "-", r->path ? r->path : "-", (int)r->level,
            r->n_tags, r->n_searches, r->product ? r->product : "-",
            r->category ? r->category : "-", r->service ? r->service : "-",
            r->digest);
        strs_add(rules, line, (size_t)n);
    }
    for (size_t i = 0; i < rb->n_rejected; i++) {
        const struct cf_rule_rejection *r = &rb->rejected[i];
        int n = snprintf(line, sizeof line, "%s|%s|%s", r->path ? r->path : "-",
                         r->id ? r->id : "-", r->reason ? r->reason : "-");
        strs_add(rejected, line, (size_t)n);
    }
    for (size_t i = 0; i < rb->n_correlations; i++) {
        const struct cf_sigma_correlation *c = rb->correlations[i];
        int n =
            snprintf(line, sizeof line, "%s|%s|%d|%d|%zu|%zu|%zu|%zu", c->key,
                     c->title, (int)c->type, (int)c->level, c->n_refs,
                     c->n_group_by, c->n_tactics, c->n_techniques);
        for (size_t r = 0; r < c->n_refs && n > 0 && (size_t)n < sizeof line;
             r++) /* resolved to the rule or correlation it names */
            n += snprintf(line + n, sizeof line - (size_t)n, "|%s>%s",
                          c->refs[r].ref,
                          c->refs[r].rule   ? c->refs[r].rule->path
                          : c->refs[r].corr ? c->refs[r].corr->key
                                            : "?");
        strs_add(corrs, line, strlen(line));
    }
}

static void load_run(void *ctx) {
    load_and_compile(ctx);
}

static bool load_check(void *ctx, unsigned long refused) {
    struct load_ctx *c = ctx;
    (void)refused;
    if (c->rc != CF_OK) {
        /* A clean failure: out of memory, said so. */
        if (c->rc != CF_ERR_NOMEM && c->rc != CF_ERR)
            FAIL("loader failed in %s with rc %d: %s", c->stage, c->rc, c->err);
        if (!strstr(c->err, "out of memory"))
            FAIL("loader failed in %s (rc %d) without saying it ran out "
                 "of memory: '%s'",
                 c->stage, c->rc, c->err);
        return false;
    }
    /* Success: exactly what a run without injection loads - no rule
     * dropped, rejected or changed because memory ran short. */
    struct strs rules = {0}, rejected = {0}, corrs = {0};
    describe_book(c->rb, &rules, &rejected, &corrs);
    for (size_t i = 0; i < rejected.n; i++)
        if (!strs_has(&c->ref_rejected, rejected.v[i]))
            FAIL("loader succeeded but rejected: %s", rejected.v[i]);
    assert_int_equal(rejected.n, c->ref_rejected.n);
    assert_int_equal(rules.n, c->ref_rules.n);
    for (size_t i = 0; i < rules.n; i++)
        if (strcmp(rules.v[i], c->ref_rules.v[i]) != 0)
            FAIL("loader succeeded but loaded a different rule:\n  %s\n"
                 "instead of\n  %s",
                 rules.v[i], c->ref_rules.v[i]);
    assert_int_equal(corrs.n, c->ref_corrs.n);
    for (size_t i = 0; i < corrs.n; i++)
        if (strcmp(corrs.v[i], c->ref_corrs.v[i]) != 0)
            FAIL("loader succeeded but loaded a different correlation:\n"
                 "  %s\ninstead of\n  %s",
                 corrs.v[i], c->ref_corrs.v[i]);
    struct cf_ruleset_stats st;
    cf_ruleset_get_stats(c->rs, &st);
    assert_int_equal(st.rules, c->ref_stats.rules);
    assert_int_equal(st.fields, c->ref_stats.fields);
    assert_int_equal(st.patterns, c->ref_stats.patterns);
    assert_int_equal(st.direct_patterns, c->ref_stats.direct_patterns);
    strs_free(&rules);
    strs_free(&rejected);
    strs_free(&corrs);
    return true;
}

static void load_cleanup(void *ctx) {
    struct load_ctx *c = ctx;
    cf_ruleset_destroy(c->rs);
    cf_rulebook_destroy(c->rb);
    c->rs = NULL;
    c->rb = NULL;
}

/* A config from JSON text, checked as a file would be. */
static struct cf_config *config_from(const char *json) {
    char err[256];
    json_error_t e;
    json_t *root = json_loads(json, 0, &e);
    if (!root) fail_msg("config text: %s", e.text);
    struct cf_config *cfg =
        cf_config_from_json(root, "test_oom", err, sizeof err);
    json_decref(root);
    if (!cfg) fail_msg("config: %s", err);
    return cfg;
}

/* No cache: compile every time. */
static struct cf_config *test_config(void) {
    return config_from("{\"cache\": {\"dir\": \"\"}}");
}

/* The loader and compiler on rule files parsed (cache_dir NULL: no
 * cache) or read back from the rule file cache (and the compiled
 * databases from theirs), under the sweep. */
static void sweep_loader(const struct subject *s, const char *cache_dir) {
    static struct load_ctx c;
    char probe[1024], cfg_json[1200];
    memset(&c, 0, sizeof c);
    snprintf(probe, sizeof probe, "%s/data/sigma/rules", shared_dir());
    bool have_sigmahq = access(probe, R_OK) == 0;
    /* Without them the pack, the filter and the rejections still make a
     * sweep worth running - unless the data is required (CI). */
    if (!have_sigmahq && cf_test_shared_missing(probe) != 77) fail();
    /* Part of the pack: its three correlations and the rules they
     * refer to (all of it would make each run, and so the sweep, much
     * longer without reaching other code). */
    static const char *const pack_dirs[] = {"correlations", "credential-access",
                                            "discovery", "initial-access"};
    for (size_t i = 0; i < CF_ARRAY_LEN(pack_dirs) && !big(); i++)
        snprintf(c.paths[c.n_paths++], sizeof c.paths[0], "%s/rules/pack/%s",
                 src_dir(), pack_dirs[i]);
    if (big())
        snprintf(c.paths[c.n_paths++], sizeof c.paths[0], "%s/rules/pack",
                 src_dir());
    snprintf(c.paths[c.n_paths++], sizeof c.paths[0],
             "%s/tests/golden/filters/rules", src_dir());
    for (size_t i = 0; i < CF_ARRAY_LEN(sigmahq_rules) && have_sigmahq; i++)
        snprintf(c.paths[c.n_paths++], sizeof c.paths[0], "%s/data/sigma/%s",
                 shared_dir(), sigmahq_rules[i]);
    char dir[] = "/tmp/cf_test_oom_rules_XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(c.paths[c.n_paths++], sizeof c.paths[0], "%s/rejected.yml", dir);
    FILE *f = fopen(c.paths[c.n_paths - 1], "w");
    assert_non_null(f);
    fputs(rejected_yaml, f);
    fclose(f);
    /* placeholders for the |expand rule */
    snprintf(cfg_json, sizeof cfg_json,
             "{\"cache\": {\"dir\": \"%s\"}, \"placeholders\":"
             " {\"known_cdcs\": [\"DC01$\", \"DC02$\"]}}",
             cache_dir ? cache_dir : "");
    c.cfg = config_from(cfg_json);
    if (cache_dir) {
        /* Every run must take the same path: past the racy window (see
         * rules/rulebook_cache.h) a file's stat is trusted, so wait for
         * rejected.yml to settle, then fill the caches. */
        struct timespec settle = {2, 200000000};
        nanosleep(&settle, NULL);
        load_and_compile(&c);
        load_cleanup(&c);
    }

    load_and_compile(&c);
    if (c.rc != CF_OK) FAIL("reference load: %s", c.err);
    describe_book(c.rb, &c.ref_rules, &c.ref_rejected, &c.ref_corrs);
    cf_ruleset_get_stats(c.rs, &c.ref_stats);
    print_message("loader: %zu rules, %zu correlations, %zu rejected, %zu "
                  "patterns\n",
                  c.ref_rules.n, c.ref_corrs.n, c.ref_rejected.n,
                  c.ref_stats.patterns);
    assert_true(c.ref_rules.n >= (have_sigmahq ? 15 : 10));
    assert_int_equal(c.ref_corrs.n, 3);
    assert_int_equal(c.ref_rejected.n, 4); /* rejected.yml, all of it */
    if (cache_dir) assert_int_equal(c.rb->n_cached, c.rb->n_files);
    load_cleanup(&c);

    sweep_both(s, &c);
    strs_free(&c.ref_rules);
    strs_free(&c.ref_rejected);
    strs_free(&c.ref_corrs);
    cf_config_destroy(c.cfg);
    unlink(c.paths[c.n_paths - 1]);
    rmdir(dir);
}

static void test_loader(void **state) {
    static const struct subject s = {"loader", load_run, load_check,
                                     load_cleanup, 1000};
    (void)state;
    sweep_loader(&s, NULL);
}

/* The rule file cache's reading (cache file, entries, decoding every
 * rule, correlation, filter and rejection) fails cleanly or loads
 * exactly what parsing does. */
static void test_loader_cached(void **state) {
    static const struct subject s = {"loader_cached", load_run, load_check,
                                     load_cleanup, 1000};
    char dir[] = "/tmp/cf_test_oom_cache_XXXXXX", cmd[64];
    (void)state;
    assert_non_null(mkdtemp(dir));
    sweep_loader(&s, dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- events that the rule pack detects ------------------------------ */

#define SYSMON(id, t, host, user, rest)                                        \
    "{\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"EventID\":" id    \
    ",\"Hostname\":\"" host "\",\"User\":\"" user "\",\"UtcTime\":"            \
    "\"2026-11-02 " t "\"," rest "}"
#define PROC(t, host, user, image, cmd, parent)                                \
    SYSMON("1", t, host, user,                                                 \
           "\"Image\":\"" image "\",\"CommandLine\":\"" cmd                    \
           "\",\"ParentImage\":\"" parent "\"")
#define SYS32 "C:\\\\Windows\\\\System32\\\\"

static const char *const pack_events[] = {
    PROC("10:00:50.000", "WS03.acme.local", "ACME\\\\bchen",
         SYS32 "WindowsPowerShell\\\\v1.0\\\\powershell.exe",
         "powershell.exe -nop -enc SQBFAFgA",
         "C:\\\\Program Files\\\\Microsoft Office\\\\root\\\\Office16\\\\"
         "WINWORD.EXE"),
    SYSMON("10", "10:22:00.000", "WS03.acme.local", "NT AUTHORITY\\\\SYSTEM",
           "\"SourceImage\":\"C:\\\\Users\\\\Public\\\\svchost.exe\","
           "\"TargetImage\":\"" SYS32
           "lsass.exe\",\"GrantedAccess\":\"0x1010\""),
    "not json at all",
    PROC("10:28:00.000", "WS03.acme.local", "ACME\\\\bchen", SYS32 "whoami.exe",
         "whoami /priv", SYS32 "cmd.exe"),
    PROC("10:28:20.000", "WS03.acme.local", "ACME\\\\bchen", SYS32 "net.exe",
         "net group \\\"Domain Admins\\\" /domain", SYS32 "cmd.exe"),
    PROC("10:28:45.000", "WS03.acme.local", "ACME\\\\bchen", SYS32 "nltest.exe",
         "nltest /domain_trusts", SYS32 "cmd.exe"),
    PROC("10:29:10.000", "WS03.acme.local", "ACME\\\\bchen",
         SYS32 "systeminfo.exe", "systeminfo", SYS32 "cmd.exe"),
    PROC("10:29:20.000", "WS03.acme.local", "ACME\\\\bchen",
         SYS32 "ipconfig.exe", "ipconfig /all", SYS32 "cmd.exe"),
    PROC("10:51:00.000", "WS07.acme.local", "ACME\\\\adm.kowalski",
         SYS32 "whoami.exe", "whoami /groups", SYS32 "cmd.exe"),
    /* far later: closes what is open */
    PROC("23:59:00.000", "WS09.acme.local", "ACME\\\\carol", SYS32 "whoami.exe",
         "whoami /all", SYS32 "cmd.exe"),
};

/* The rule pack, loaded and compiled once for fusion and pipeline. */
struct pack {
    struct cf_config *cfg;
    struct cf_rulebook *rb;
    struct cf_ruleset *rs;
};

static void pack_load(struct pack *p) {
    char path[1024], err[512];
    p->cfg = test_config();
    p->rb = cf_rulebook_new();
    assert_non_null(p->rb);
    snprintf(path, sizeof path, "%s/rules/pack", src_dir());
    if (cf_rulebook_load(p->rb, path, p->cfg, err, sizeof err) != CF_OK ||
        cf_rulebook_finish(p->rb, err, sizeof err) != CF_OK)
        FAIL("rule pack: %s", err);
    assert_int_equal(p->rb->n_rejected, 0);
    p->rs = cf_ruleset_compile(p->rb, p->cfg, err, sizeof err);
    if (!p->rs) FAIL("rule pack: %s", err);
}

static void pack_free(struct pack *p) {
    cf_ruleset_destroy(p->rs);
    cf_rulebook_destroy(p->rb);
    cf_config_destroy(p->cfg);
}

/* ---- fusion and correlation ----------------------------------------- */

struct alerts {
    struct cf_alert *v;
    size_t n;
};

struct match_ctx {
    struct alerts *out;
    const struct cf_event *ev;
    const struct cf_entity_map *map;
};

static void collect_alert(const struct cf_sigma_rule *rule, void *opaque) {
    struct match_ctx *m = opaque;
    struct alerts *a = m->out;
    a->v = realloc(a->v, (a->n + 1) * sizeof *a->v);
    assert_non_null(a->v);
    assert_int_equal(cf_alert_from_event(&a->v[a->n], rule, m->ev, m->map),
                     CF_OK);
    a->n++;
}

/* The alerts the pack raises on pack_events, in input order. */
static void pack_alerts(const struct pack *p, struct alerts *out) {
    char err[256];
    struct cf_decoder *dec = cf_decoder_new();
    struct cf_matcher *m = cf_matcher_new(p->rs);
    struct cf_entity_map *map = cf_entity_map_new(NULL, err, sizeof err);
    struct cf_event ev;
    assert_non_null(dec);
    assert_non_null(m);
    assert_non_null(map);
    cf_event_init(&ev);
    for (size_t i = 0; i < CF_ARRAY_LEN(pack_events); i++) {
        const char *line = pack_events[i];
        if (cf_event_decode(dec, &ev, line, strlen(line), NULL, NULL) != CF_OK)
            continue;
        ev.pos.source = "oom";
        ev.pos.partition = -1;
        ev.pos.offset = (int64_t)i + 1;
        struct match_ctx mc = {out, &ev, map};
        cf_matcher_match(m, &ev, collect_alert, &mc);
    }
    cf_event_free(&ev);
    cf_entity_map_destroy(map);
    cf_matcher_destroy(m);
    cf_decoder_destroy(dec);
}

struct fusion_ctx {
    struct pack pack;
    struct cf_config *cfg; /* pack's rules, fusion settings of its own */
    struct alerts alerts;
    struct strs ref; /* "kind record" lines of the reference run */
    /* one run */
    struct cf_fusion *fu;
    char err[256];
    struct strs out; /* "kind record", in emission order */
};

static void fusion_emit(const struct cf_out_record *r, void *opaque) {
    struct fusion_ctx *c = opaque;
    const char *kind = r->kind, *record = r->json;
    size_t len = r->len;
    char *line = malloc(strlen(kind) + 1 + len + 1);
    assert_non_null(line);
    memcpy(line, kind, strlen(kind));
    line[strlen(kind)] = ' ';
    memcpy(line + strlen(kind) + 1, record, len);
    line[strlen(kind) + 1 + len] = '\0';
    strs_add(&c->out, line, strlen(line));
    free(line);
}

/* The events are from 2026-11-02: a wall clock a day later keeps them
 * in the past whatever today's date. */
static int64_t wall_clock(void *opaque) {
    (void)opaque;
    return 1793750400000LL; /* 2026-11-03T00:00:00Z */
}

static void fusion_run(void *ctx) {
    struct fusion_ctx *c = ctx;
    c->fu = cf_fusion_new(c->cfg, c->pack.rb, fusion_emit, c, c->err,
                          sizeof c->err);
    if (!c->fu) return;
    cf_fusion_set_wall_clock(c->fu, wall_clock, NULL);
    for (size_t i = 0; i < c->alerts.n; i++) {
        cf_fusion_observe(c->fu, c->alerts.v[i].time_ms);
        cf_fusion_push(c->fu, &c->alerts.v[i], NULL);
    }
    cf_fusion_finish(c->fu);
}

/* What lack of memory made fusion and its correlator drop. */
static uint64_t oom_drops(const struct cf_drops *d) {
    return d->n[CF_DROP_CORRELATION_OUT_OF_MEMORY] +
           d->n[CF_DROP_CORRELATION_ALERT_UNWRITTEN] +
           d->n[CF_DROP_INCIDENT_RECORD_UNWRITTEN] +
           d->n[CF_DROP_FUSION_OUT_OF_MEMORY];
}

static void count_kinds(const struct strs *l, size_t *incidents,
                        size_t *alerts) {
    *incidents = *alerts = 0;
    for (size_t i = 0; i < l->n; i++) {
        *incidents += strncmp(l->v[i], "incident ", 9) == 0;
        *alerts += strncmp(l->v[i], "alert ", 6) == 0;
    }
}

static bool fusion_check(void *ctx, unsigned long refused) {
    struct fusion_ctx *c = ctx;
    (void)refused;
    if (!c->fu) {
        if (!strstr(c->err, "out of memory"))
            FAIL("cf_fusion_new failed without saying it ran out of "
                 "memory: '%s'",
                 c->err);
        return false;
    }
    struct cf_drops d;
    memset(&d, 0, sizeof d);
    cf_fusion_drops(c->fu, &d);
    uint64_t drops = oom_drops(&d);
    bool same = c->out.n == c->ref.n;
    for (size_t i = 0; same && i < c->out.n; i++)
        same = strcmp(c->out.v[i], c->ref.v[i]) == 0;
    /* Any difference from the reference is a drop, and counted. */
    if (!same && drops == 0) {
        for (size_t i = 0; i < c->out.n || i < c->ref.n; i++)
            if (i >= c->out.n || i >= c->ref.n ||
                strcmp(c->out.v[i], c->ref.v[i])) {
                const char *g = i < c->out.n ? c->out.v[i] : "(none)";
                const char *r = i < c->ref.n ? c->ref.v[i] : "(none)";
                size_t at = 0;
                while (g[at] && g[at] == r[at]) at++;
                at = at > 80 ? at - 80 : 0;
                print_message("first difference at record %zu, byte %zu:\n"
                              " got %.300s\n ref %.300s\n",
                              i, at, g + at, r + at);
                break;
            }
        FAIL("fusion output differs from the reference (%zu records vs "
             "%zu) and no drop was counted",
             c->out.n, c->ref.n);
    }
    /* Every record is whole, and the counts are the records. */
    for (size_t i = 0; i < c->out.n; i++) {
        json_error_t e;
        json_t *j = json_loads(strchr(c->out.v[i], ' ') + 1, 0, &e);
        if (!j)
            FAIL("record %zu is not JSON (%s): %.300s", i, e.text, c->out.v[i]);
        json_decref(j);
    }
    size_t incidents, corr;
    count_kinds(&c->out, &incidents, &corr);
    struct cf_fusion_counts fc;
    cf_fusion_counts(c->fu, &fc);
    if (fc.incident_records != incidents)
        FAIL("%zu incident records counted, %zu emitted",
             (size_t)fc.incident_records, incidents);
    /* raised = written + not written */
    if (fc.correlation_alerts !=
        corr + d.n[CF_DROP_CORRELATION_ALERT_UNWRITTEN])
        FAIL("%zu correlation alerts counted, %zu emitted + %zu unwritten",
             (size_t)fc.correlation_alerts, corr,
             (size_t)d.n[CF_DROP_CORRELATION_ALERT_UNWRITTEN]);
    return drops == 0 && same;
}

static void fusion_cleanup(void *ctx) {
    struct fusion_ctx *c = ctx;
    cf_fusion_destroy(c->fu);
    c->fu = NULL;
    strs_free(&c->out);
}

static void test_fusion(void **state) {
    static struct fusion_ctx c;
    (void)state;
    memset(&c, 0, sizeof c);
    pack_load(&c.pack);
    pack_alerts(&c.pack, &c.alerts);
    assert_true(c.alerts.n >= 8);
    /* Settings that exercise more of fusion: never_link and a
     * suppression (by entity: field suppressions read the pipeline's
     * decoded event, which this sweep does not have). */
    c.cfg = config_from(
        "{\"cache\": {\"dir\": \"\"},"
        " \"fusion\": {\"update_interval\": \"5m\","
        "               \"never_link\": [\"COLLECTOR01\"]},"
        " \"suppressions\": [{\"entity\": {\"host\": \"WS07.acme.local\"},"
        "                     \"reason\": \"lab host\"}]}");

    fusion_run(&c);
    assert_non_null(c.fu);
    c.ref = c.out;
    memset(&c.out, 0, sizeof c.out);
    size_t incidents, corr;
    count_kinds(&c.ref, &incidents, &corr);
    struct cf_fusion_counts fc;
    cf_fusion_counts(c.fu, &fc);
    print_message("fusion: %zu alerts in, %zu incident records, %zu "
                  "correlation alerts, %zu suppressed\n",
                  c.alerts.n, incidents, corr, (size_t)fc.suppressed);
    assert_true(incidents >= 2);
    assert_true(corr >= 2);
    assert_true(fc.suppressed >= 1);
    fusion_cleanup(&c);

    static const struct subject s = {"fusion", fusion_run, fusion_check,
                                     fusion_cleanup, 1000};
    sweep_both(&s, &c);
    strs_free(&c.ref);
    for (size_t i = 0; i < c.alerts.n; i++) cf_alert_clear(&c.alerts.v[i]);
    free(c.alerts.v);
    cf_config_destroy(c.cfg);
    pack_free(&c.pack);
}

/* ---- pipeline -------------------------------------------------------- */

/* An output that keeps what it is given (in plain memory). */
struct capture {
    struct cf_output out;
    struct strs records;
};

static cf_io_status capture_write(struct cf_output *out,
                                  const struct cf_out_record *r) {
    struct capture *c = out->ctx;
    strs_add(&c->records, r->json, r->len);
    return CF_IO_OK;
}

static const struct cf_output_ops capture_ops = {
    .name = "capture", .write = capture_write, .flush = NULL, .close = NULL};

static void capture_init(struct capture *c) {
    memset(c, 0, sizeof *c);
    c->out.ops = &capture_ops;
    c->out.ctx = c;
}

struct pipeline_ctx {
    struct pack pack;
    char input[256];
    struct strs ref_out, ref_dead;
    /* one run */
    struct cf_pipeline *p;
    struct cf_input *in;
    struct capture out, dead;
    cf_err_t run_rc, finish_rc;
    char err[512];
};

static void pipeline_run(void *ctx) {
    struct pipeline_ctx *c = ctx;
    struct cf_pipeline_setup setup = {.cfg = c->pack.cfg,
                                      .rb = c->pack.rb,
                                      .rs = c->pack.rs,
                                      .out = &c->out.out,
                                      .dead_letter = &c->dead.out};
    capture_init(&c->out);
    capture_init(&c->dead);
    c->err[0] = '\0';
    c->run_rc = c->finish_rc = CF_ERR;
    c->in = cf_file_input_open(c->input, 0, c->err, sizeof c->err);
    if (!c->in) return;
    c->p = cf_pipeline_new(&setup, c->err, sizeof c->err);
    if (!c->p) return;
    c->run_rc = cf_pipeline_run(c->p, c->in, c->err, sizeof c->err);
    if (c->run_rc == CF_OK)
        c->finish_rc = cf_pipeline_finish(c->p, c->err, sizeof c->err);
}

static json_t *parse(const char *s) {
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j) FAIL("emitted record is not JSON (%s): '%.300s'", e.text, s);
    return j;
}

static bool pipeline_check(void *ctx, unsigned long refused) {
    struct pipeline_ctx *c = ctx;
    (void)refused;
    /* Every record written is whole: an alert is exactly one of the
     * reference's; a dead letter says why. */
    for (size_t i = 0; i < c->out.records.n; i++) {
        const char *r = c->out.records.v[i];
        json_t *j = parse(r);
        const char *kind = json_string_value(json_object_get(j, "kind"));
        assert_non_null(kind);
        if (strcmp(kind, "alert") == 0 && !json_object_get(j, "correlation") &&
            !strs_has(&c->ref_out, r))
            FAIL("alert not in the reference: %.600s", r);
        json_decref(j);
    }
    for (size_t i = 0; i < c->dead.records.n; i++) {
        json_t *j = parse(c->dead.records.v[i]);
        assert_non_null(json_string_value(json_object_get(j, "reason")));
        json_decref(j);
    }
    if (!c->in || !c->p || c->run_rc != CF_OK || c->finish_rc != CF_OK) {
        if (!strstr(c->err, "out of memory"))
            FAIL("pipeline failed without saying it ran out of memory: "
                 "'%s'",
                 c->err);
        return false;
    }
    /* Success: every detection alert of the reference was written, or
     * its input line dead-lettered, or its event counted as one the
     * matcher could not route; what else differs was counted. */
    json_t *stats = cf_pipeline_stats(c->p);
    assert_non_null(stats);
    struct cf_drops d;
    cf_pipeline_dropped(c->p, &d);
    /* an event the router could not route is counted as such */
    uint64_t drops = oom_drops(&d) + d.n[CF_DROP_ROUTE_OUT_OF_MEMORY];
    json_int_t dead =
        json_integer_value(json_object_get(stats, "dead_lettered"));
    assert_int_equal(dead, c->dead.records.n);
    bool same =
        c->out.records.n == c->ref_out.n && c->dead.records.n == c->ref_dead.n;
    for (size_t i = 0; same && i < c->out.records.n; i++)
        same = strcmp(c->out.records.v[i], c->ref_out.v[i]) == 0;
    for (size_t i = 0; i < c->ref_out.n; i++) {
        const char *r = c->ref_out.v[i];
        if (!strstr(r, "\"kind\":\"alert\"") || strstr(r, "\"correlation\":") ||
            strs_has(&c->out.records, r))
            continue;
        /* missing: its line must be in the dead letters */
        json_t *j = parse(r);
        json_int_t off = json_integer_value(
            json_object_get(json_object_get(j, "input"), "offset"));
        json_decref(j);
        bool found = d.n[CF_DROP_ROUTE_OUT_OF_MEMORY] > 0;
        for (size_t k = 0; k < c->dead.records.n && !found; k++) {
            json_t *dl = parse(c->dead.records.v[k]);
            found = json_integer_value(json_object_get(dl, "offset")) == off;
            json_decref(dl);
        }
        if (!found)
            FAIL("alert lost without a dead letter or a count for line %lld: "
                 "%.300s",
                 (long long)off, r);
    }
    if (!same && drops == 0 && c->dead.records.n == c->ref_dead.n)
        FAIL("pipeline output differs from the reference with nothing "
             "dead-lettered or counted (%zu records vs %zu)",
             c->out.records.n, c->ref_out.n);
    json_decref(stats);
    return same && drops == 0;
}

static void pipeline_cleanup(void *ctx) {
    struct pipeline_ctx *c = ctx;
    cf_pipeline_destroy(c->p);
    cf_input_close(c->in);
    c->p = NULL;
    c->in = NULL;
    strs_free(&c->out.records);
    strs_free(&c->dead.records);
}

static void test_pipeline(void **state) {
    static struct pipeline_ctx c;
    char dir[] = "/tmp/cf_test_oom_XXXXXX";
    (void)state;
    memset(&c, 0, sizeof c);
    pack_load(&c.pack);
    assert_non_null(mkdtemp(dir));
    snprintf(c.input, sizeof c.input, "%s/in.jsonl", dir);
    FILE *f = fopen(c.input, "w");
    assert_non_null(f);
    /* Fewer lines than fusion gets (its sweep covers fusion itself): an
     * alert that opens an incident, one that raises a correlation, a
     * dead letter, and a late line that closes the incident. */
    static const size_t pick[] = {0, 1, 2, 3, 9};
    size_t n_lines = big() ? CF_ARRAY_LEN(pack_events) : CF_ARRAY_LEN(pick);
    for (size_t i = 0; i < n_lines; i++)
        fprintf(f, "%s\n", pack_events[big() ? i : pick[i]]);
    fclose(f);

    pipeline_run(&c);
    if (c.run_rc != CF_OK || c.finish_rc != CF_OK)
        FAIL("reference pipeline run: %s", c.err);
    c.ref_out = c.out.records;
    c.ref_dead = c.dead.records;
    memset(&c.out.records, 0, sizeof c.out.records);
    memset(&c.dead.records, 0, sizeof c.dead.records);
    size_t alerts = 0, incidents = 0, corr = 0;
    for (size_t i = 0; i < c.ref_out.n; i++) {
        alerts += strstr(c.ref_out.v[i], "\"kind\":\"alert\"") != NULL;
        incidents += strstr(c.ref_out.v[i], "\"kind\":\"incident\"") != NULL;
        corr += strstr(c.ref_out.v[i], "\"correlation\":") != NULL;
    }
    assert_true(corr >= 1);
    print_message("pipeline: %zu lines, %zu alerts, %zu incident records, "
                  "%zu dead letters\n",
                  n_lines, alerts, incidents, c.ref_dead.n);
    assert_int_equal(c.ref_dead.n, 1);
    assert_true(alerts >= 5);
    assert_true(incidents >= 2);
    pipeline_cleanup(&c);

    static const struct subject s = {"pipeline", pipeline_run, pipeline_check,
                                     pipeline_cleanup, 1000};
    sweep_both(&s, &c);
    strs_free(&c.ref_out);
    strs_free(&c.ref_dead);
    unlink(c.input);
    rmdir(dir);
    pack_free(&c.pack);
}

/* OpenSSL (the digests of ids and cache keys) allocates through the
 * hook too, so its failures are swept with the rest. */
static void *ossl_malloc(size_t n, const char *file, int line) {
    (void)file;
    (void)line;
    return cf_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line) {
    (void)file;
    (void)line;
    return cf_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line) {
    (void)file;
    (void)line;
    cf_free(p);
}

int main(void) {
    char id[33];
    if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free))
        print_message("note: OpenSSL allocated before main; its allocations "
                      "are not swept\n");
    /* OpenSSL sets up its providers once, on first use: not under test. */
    cf_digest_hex128("warm-up", 7, id);
    /* Hyperscan's scratch space too (it reports HS_NOMEM cleanly; its
     * compiler allocates with operator new, and a failed database or
     * misc allocation comes back as a compile error no caller can tell
     * from a bad pattern, so those stay on malloc). */
    if (hs_set_scratch_allocator(cf_malloc, cf_free) != HS_SUCCESS)
        print_message("note: Hyperscan scratch allocations are not swept\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder),       cmocka_unit_test(test_loader),
        cmocka_unit_test(test_loader_cached), cmocka_unit_test(test_fusion),
        cmocka_unit_test(test_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
