/*
 * bench_redis.c - what the Redis output costs on its own, against a real
 * redis-server (no persistence) it starts on a free loopback port.
 *
 * 1. Alerts: N records of about 600 bytes, pipelined (write() sends a
 *    batch when full), then flush(): records per second, wall time (the
 *    server runs on the same cores) and this process's CPU.
 * 2. Incidents: M versions (ids cycled, versions rising), each sent at
 *    once by write() through the version-checking script: per record the
 *    write() latency, p50 and p99, i.e. from the engine handing it over
 *    to Redis having stored hash, queue and stream entry.
 *
 * Usage: bench_redis [alerts] [incidents]   (default 200000 20000)
 */
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "connector.h"
#include "redis/redis_output.h"

static double now_s(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0) close(s);
    return port;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: bench_redis [alerts] [incidents]\n");
        return 0;
    }
    long n_alerts = argc > 1 ? atol(argv[1]) : 200000;
    long n_inc = argc > 2 ? atol(argv[2]) : 20000;
    int port = free_port();
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    pid_t srv = fork();
    if (srv == 0) {
        execlp("redis-server", "redis-server", "--port", portstr, "--bind",
               "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile",
               "/dev/null", (char *)NULL);
        _exit(127);
    }
    struct cf_output *out = NULL;
    char url[64], err[512];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    for (int i = 0; i < 100 && !out; i++) {
        redisContext *c = redisConnect("127.0.0.1", port);
        bool up = c && !c->err;
        if (c) redisFree(c);
        if (up) out = cf_redis_output_open(url, NULL, err, sizeof err);
        if (!out) usleep(50000);
    }
    if (!out) {
        fprintf(stderr, "bench_redis: %s\n", err);
        kill(srv, SIGKILL);
        return 1;
    }

    char json[700];
    int len = snprintf(json, sizeof json,
                       "{\"kind\":\"alert\",\"rule\":{\"id\":\"0000\","
                       "\"title\":\"bench\"},\"pad\":\"");
    for (; len < 590; len++) json[len] = 'x';
    len += snprintf(json + len, sizeof json - (size_t)len, "\"}");
    struct cf_out_record a =
        cf_out_record_plain("alert", json, (size_t)len, NULL);
    double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < n_alerts; i++)
        while (out->ops->write(out, &a) != CF_IO_OK) usleep(1000);
    while (out->ops->flush(out) != CF_IO_OK) usleep(1000);
    double w1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    printf("alerts:    %ld records of %d bytes in %.3f s wall: %.0f records/s; "
           "%.2f us CPU per record in chainfuse's process\n",
           n_alerts, len, w1 - w0, (double)n_alerts / (w1 - w0),
           (c1 - c0) * 1e6 / (double)n_alerts);

    double *lat = cf_calloc((size_t)(n_inc ? n_inc : 1), sizeof *lat);
    char id[32];
    w0 = now_s(CLOCK_MONOTONIC);
    for (long i = 0; i < n_inc; i++) {
        snprintf(id, sizeof id, "inc%05ld", i % 1000);
        struct cf_out_record r = {"incident",
                                  json,
                                  (size_t)len,
                                  NULL,
                                  id,
                                  (uint32_t)(i / 1000 + 1),
                                  "updated",
                                  (int)(i % 5),
                                  (int)(i % 100),
                                  NULL,
                                  0};
        double t = now_s(CLOCK_MONOTONIC);
        while (out->ops->write(out, &r) != CF_IO_OK) usleep(1000);
        lat[i] = now_s(CLOCK_MONOTONIC) - t;
    }
    while (out->ops->flush(out) != CF_IO_OK) usleep(1000);
    w1 = now_s(CLOCK_MONOTONIC);
    qsort(lat, (size_t)n_inc, sizeof *lat, cmp_double);
    if (n_inc)
        printf("incidents: %ld versions in %.3f s: %.0f per s, one round trip "
               "each; write() latency p50 %.0f us, p99 %.0f us\n",
               n_inc, w1 - w0, (double)n_inc / (w1 - w0), lat[n_inc / 2] * 1e6,
               lat[n_inc * 99 / 100] * 1e6);
    cf_free(lat);
    cf_output_close(out);
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    return 0;
}
