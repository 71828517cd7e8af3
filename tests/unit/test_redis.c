/*
 * test_redis.c - the Redis output against a real redis-server started on
 * a free loopback port (and stopped) by the test: version ordering,
 * queue order and membership, ACL user and password, refused
 * credentials, expiry, prefix and database, dead letters, rediss://,
 * and records waiting while Redis is down, then arriving.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connector.h"
#include "redis/redis_output.h"

static char dir[64];
static int port;
static pid_t server = -1;
static char url[128];       /* as the default user */
static char dl_reason[512]; /* the last dead letter's reason */
static int dl_count;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
    nanosleep(&ts, NULL);
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(s);
    return ntohs(a.sin_port);
}

/* A client for checking what the output wrote (as the default user). */
static redisContext *client(void) {
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c && c->err) redisFree(c), c = NULL;
    if (!c) return NULL;
    redisReply *r = redisCommand(c, "AUTH defaultpw");
    freeReplyObject(r);
    return c;
}

static bool start_server(void) {
    char conf[128];
    snprintf(conf, sizeof conf, "%s/redis.conf", dir);
    FILE *f = fopen(conf, "w");
    if (!f) return false;
    fprintf(f,
            "port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %s\n"
            "requirepass defaultpw\n"
            "user soc on >socpw ~* &* +@all\n"
            "logfile %s/redis.log\n",
            port, dir, dir);
    fclose(f);
    server = fork();
    if (server == 0) {
        execlp("redis-server", "redis-server", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        redisContext *c = client();
        redisReply *r = c ? redisCommand(c, "PING") : NULL;
        bool up = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (c) redisFree(c);
        if (up) return true;
        sleep_ms(50);
    }
    return false;
}

static void stop_server(void) {
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
    }
    server = -1;
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/cf_test_redis_XXXXXX");
    if (!mkdtemp(dir) || (port = free_port()) < 0) return -1;
    snprintf(url, sizeof url, "redis://:defaultpw@127.0.0.1:%d", port);
    return start_server() ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    stop_server();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void on_dead(void *engine, const struct cf_out_record *rec,
                    const char *reason) {
    (void)engine;
    (void)rec;
    snprintf(dl_reason, sizeof dl_reason, "%s", reason);
    dl_count++;
}

static struct cf_output *open_out(const char *u, const char *opts_json) {
    char err[512] = "";
    json_t *opts = opts_json ? json_loads(opts_json, 0, NULL) : NULL;
    struct cf_output *out = cf_redis_output_open(u, opts, err, sizeof err);
    json_decref(opts);
    if (!out) fprintf(stderr, "open: %s\n", err);
    assert_non_null(out);
    out->dead_letter = on_dead;
    return out;
}

static cf_io_status incident(struct cf_output *out, const char *id,
                             uint32_t version, const char *status, int sev,
                             int score) {
    char json[256];
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"version\":%u}", id, version);
    struct cf_out_record r = {"incident", json, strlen(json), NULL, id, version,
                              status,     sev,  score,        NULL, 0};
    return out->ops->write(out, &r);
}

static redisReply *cmd(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static long long int_of(redisContext *c, const char *fmt, const char *arg) {
    redisReply *r = cmd(c, fmt, arg);
    long long v = r->type == REDIS_REPLY_INTEGER  ? r->integer
                  : r->type == REDIS_REPLY_STRING ? atoll(r->str)
                                                  : -1;
    freeReplyObject(r);
    return v;
}

static void flush_ok(struct cf_output *out) {
    assert_int_equal(out->ops->flush(out), CF_IO_OK);
}

static void test_version_order(void **state) {
    (void)state;
    struct cf_output *out = open_out(url, NULL);
    redisContext *c = client();
    freeReplyObject(cmd(c, "FLUSHALL"));
    assert_int_equal(incident(out, "inc-1", 3, "updated", 3, 70), CF_IO_OK);
    assert_int_equal(incident(out, "inc-1", 2, "updated", 2, 40), CF_IO_OK);
    flush_ok(out);
    /* the same version again (a replay) adds nothing either */
    incident(out, "inc-1", 3, "updated", 3, 70);
    flush_ok(out);
    assert_int_equal(int_of(c, "HGET %s version", "chainfuse:incident:inc-1"),
                     3);
    redisReply *r = cmd(c, "HGETALL chainfuse:incident:inc-1");
    assert_int_equal(r->elements, 10);
    freeReplyObject(r);
    r = cmd(c, "HGET chainfuse:incident:inc-1 json");
    assert_string_equal(r->str, "{\"id\":\"inc-1\",\"version\":3}");
    freeReplyObject(r);
    r = cmd(c, "HGET chainfuse:incident:inc-1 severity");
    assert_string_equal(r->str, "high");
    freeReplyObject(r);
    assert_int_equal(int_of(c, "XLEN %s", "chainfuse:incidents"), 1);
    /* newer one goes through */
    incident(out, "inc-1", 4, "updated", 4, 90);
    flush_ok(out);
    assert_int_equal(int_of(c, "HGET %s version", "chainfuse:incident:inc-1"),
                     4);
    assert_int_equal(int_of(c, "XLEN %s", "chainfuse:incidents"), 2);
    redisFree(c);
    cf_output_close(out);
}

static void test_queue(void **state) {
    (void)state;
    struct cf_output *out = open_out(url, NULL);
    redisContext *c = client();
    freeReplyObject(cmd(c, "FLUSHALL"));
    incident(out, "a", 1, "new", 2, 50);
    incident(out, "b", 1, "new", 4, 10);
    incident(out, "c", 1, "new", 4, 90);
    incident(out, "d", 1, "new", 3, 0);
    incident(out, "e", 1, "new", 1, 0);
    flush_ok(out);
    /* worst first: severity, then score */
    const char *want[] = {"c", "b", "d"};
    for (size_t i = 0; i < 3; i++) {
        redisReply *r = cmd(c, "ZPOPMAX chainfuse:queue");
        assert_int_equal(r->elements, 2);
        assert_string_equal(r->element[0]->str, want[i]);
        freeReplyObject(r);
    }
    /* popped (taken by an analyst): an update does not queue it again;
     * still waiting: an update rescores it; closed: it leaves */
    incident(out, "b", 2, "updated", 4, 20);
    incident(out, "a", 2, "updated", 4, 95);
    incident(out, "e", 2, "closed", 1, 0);
    flush_ok(out);
    assert_int_equal(int_of(c, "ZCARD %s", "chainfuse:queue"), 1);
    redisReply *r = cmd(c, "ZSCORE chainfuse:queue a");
    assert_string_equal(r->str, "4095");
    freeReplyObject(r);
    assert_int_equal(int_of(c, "HGET %s version", "chainfuse:incident:b"), 2);
    /* an incident first seen at a later version (filtered before) is
     * queued: Redis has never seen it */
    incident(out, "f", 5, "updated", 2, 10);
    flush_ok(out);
    assert_int_equal(int_of(c, "ZCARD %s", "chainfuse:queue"), 2);
    redisFree(c);
    cf_output_close(out);
}

static void test_acl_user_prefix_db_expiry_alerts(void **state) {
    (void)state;
    char u[160];
    snprintf(u, sizeof u, "redis://soc:socpw@127.0.0.1:%d/2?prefix=soc1", port);
    struct cf_output *out = open_out(u, "{\"retention\": \"2h\"}");
    redisContext *c = client();
    freeReplyObject(cmd(c, "SELECT 2"));
    freeReplyObject(cmd(c, "FLUSHDB"));
    incident(out, "x", 1, "new", 2, 5);
    struct cf_out_record a =
        cf_out_record_plain("alert", "{\"rule\":\"r\"}", 12, NULL);
    for (int i = 0; i < 3; i++) assert_int_equal(out->ops->write(out, &a), 0);
    flush_ok(out);
    long long ttl = int_of(c, "TTL %s", "soc1:incident:x");
    assert_true(ttl > 7100 && ttl <= 7200);
    assert_int_equal(int_of(c, "XLEN %s", "soc1:alerts"), 3);
    redisReply *r = cmd(c, "XRANGE soc1:alerts - + COUNT 1");
    assert_string_equal(r->element[0]->element[1]->element[0]->str, "json");
    assert_string_equal(r->element[0]->element[1]->element[1]->str,
                        "{\"rule\":\"r\"}");
    freeReplyObject(r);
    freeReplyObject(cmd(c, "SELECT 0"));
    assert_int_equal(int_of(c, "EXISTS %s", "soc1:incident:x"), 0);
    redisFree(c);
    cf_output_close(out);

    /* the default expiry is 30 days */
    out = open_out(url, NULL);
    incident(out, "y", 1, "new", 2, 5);
    flush_ok(out);
    c = client();
    ttl = int_of(c, "TTL %s", "chainfuse:incident:y");
    assert_true(ttl > 30 * 86400 - 100 && ttl <= 30 * 86400);
    redisFree(c);
    cf_output_close(out);
}

static void expect_refused(const char *u, const char *opts_json,
                           const char *says, const char *secret) {
    char err[512] = "";
    json_t *opts = opts_json ? json_loads(opts_json, 0, NULL) : NULL;
    struct cf_output *out = cf_redis_output_open(u, opts, err, sizeof err);
    json_decref(opts);
    if (out || !strstr(err, says))
        fprintf(stderr, "%s: got \"%s\", want \"%s\"\n", u, err, says);
    assert_null(out);
    assert_non_null(strstr(err, says));
    if (secret) assert_null(strstr(err, secret));
}

static void test_refusals(void **state) {
    (void)state;
    char u[160];
    snprintf(u, sizeof u, "redis://soc:n0tThePw@127.0.0.1:%d", port);
    expect_refused(u, NULL, "refused the credentials of user soc", "n0tThePw");
    expect_refused(u, NULL, "redis://soc:***@", NULL);
    snprintf(u, sizeof u, "redis://127.0.0.1:%d", port);
    expect_refused(u, NULL, "Redis wants a password", NULL);
    setenv("CF_TEST_REDIS_PW", "wr0ngpw", 1);
    expect_refused(u, "{\"password_env\": \"CF_TEST_REDIS_PW\"}",
                   "refused the credentials", "wr0ngpw");
    expect_refused(u, "{\"password_env\": \"CF_TEST_REDIS_NOPE\"}",
                   "CF_TEST_REDIS_NOPE is not set", NULL);
    expect_refused(url, "{\"password_env\": \"CF_TEST_REDIS_PW\"}",
                   "given more than once", "wr0ngpw");
    expect_refused(url, "{\"maxlenn\": 5}", "maxlen", NULL);
    snprintf(u, sizeof u, "rediss://:defaultpw@127.0.0.1:%d", port);
    expect_refused(u, NULL, "hiredis 0.14", "defaultpw");
    snprintf(u, sizeof u, "redis://:defaultpw@127.0.0.1:%d/x", port);
    expect_refused(u, NULL, "database", "defaultpw");
    snprintf(u, sizeof u, "redis://:defaultpw@127.0.0.1:%d?prefx=a", port);
    expect_refused(u, NULL, "unknown parameter 'prefx'", "defaultpw");

    /* the password from a file, the ACL user from the options */
    char pw[128];
    snprintf(pw, sizeof pw, "%s/pw", dir);
    FILE *f = fopen(pw, "w");
    fputs("socpw\n", f);
    fclose(f);
    char opts[256];
    snprintf(opts, sizeof opts,
             "{\"user\": \"soc\", \"password_file\": \"%s\"}", pw);
    snprintf(u, sizeof u, "redis://127.0.0.1:%d", port);
    struct cf_output *out = open_out(u, opts);
    incident(out, "pf", 1, "new", 1, 1);
    flush_ok(out);
    cf_output_close(out);
}

static void test_dead_letter(void **state) {
    (void)state;
    struct cf_output *out = open_out(url, NULL);
    redisContext *c = client();
    freeReplyObject(cmd(c, "FLUSHALL"));
    /* the hash key is taken by something else: Redis refuses this
     * record for good, the others go through */
    freeReplyObject(cmd(c, "SET chainfuse:incident:bad x"));
    dl_count = 0;
    incident(out, "ok1", 1, "new", 2, 1);
    incident(out, "bad", 1, "new", 2, 1);
    incident(out, "ok2", 1, "new", 2, 1);
    flush_ok(out);
    assert_int_equal(dl_count, 1);
    assert_non_null(strstr(dl_reason, "WRONGTYPE"));
    assert_int_equal(int_of(c, "ZCARD %s", "chainfuse:queue"), 2);
    /* Redis lost the script: the record is sent with EVAL instead */
    freeReplyObject(cmd(c, "SCRIPT FLUSH"));
    incident(out, "ok3", 1, "new", 2, 1);
    flush_ok(out);
    assert_int_equal(int_of(c, "ZCARD %s", "chainfuse:queue"), 3);
    assert_int_equal(dl_count, 1);
    redisFree(c);
    cf_output_close(out);
}

/* Redis goes away: records wait up to `queue`, then write() answers
 * RETRY; after a restart everything held arrives. */
static void test_down_and_back(void **state) {
    (void)state;
    struct cf_output *out = open_out(url, "{\"queue\": 50, \"batch\": 8}");
    incident(out, "before", 1, "new", 2, 1);
    flush_ok(out);
    stop_server();
    int taken = 0;
    char id[32];
    for (int i = 0; i < 80; i++) {
        snprintf(id, sizeof id, "i%d", i);
        if (incident(out, id, 1, "new", 2, i % 100) != CF_IO_OK) break;
        taken++;
    }
    assert_int_equal(taken, 50);
    assert_int_equal(out->ops->flush(out), CF_IO_RETRY);
    assert_true(start_server());
    cf_io_status st = CF_IO_RETRY;
    for (int i = 0; i < 100 && st == CF_IO_RETRY; i++) {
        st = out->ops->flush(out);
        if (st == CF_IO_RETRY) sleep_ms(50);
    }
    assert_int_equal(st, CF_IO_OK);
    redisContext *c = client();
    assert_int_equal(int_of(c, "ZCARD %s", "chainfuse:queue"), 50);
    assert_int_equal(int_of(c, "XLEN %s", "chainfuse:incidents"), 50);
    redisFree(c);
    cf_output_close(out);
}

int main(void) {
    if (system("command -v redis-server >/dev/null") != 0) {
        fprintf(stderr, "redis-server is not installed "
                        "(deploy/bootstrap.sh installs it)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_order),
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_acl_user_prefix_db_expiry_alerts),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_dead_letter),
        cmocka_unit_test(test_down_and_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
