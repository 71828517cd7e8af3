/*
 * kafka_mock_cluster.c - a Kafka cluster for tests, on librdkafka's mock
 * cluster (rdkafka_mock.h), which speaks the Kafka protocol over TCP on
 * loopback ports it picks itself.
 *
 *   kafka_mock_cluster [-b BROKERS] [-t TOPIC:PARTITIONS]...
 *
 * Starts BROKERS (1-3, default 1) brokers, creates the topics, prints the
 * bootstrap address ("127.0.0.1:PORT,...") as its first line on stdout
 * and runs until SIGINT or SIGTERM.  Commands, one a line on stdin, are
 * answered on stdout with "ok <command>" or "error <why>" once applied,
 * so a test can wait for a fault to be in place before it goes on:
 *
 *   down ID          broker ID stops listening and drops its connections
 *   up ID            broker ID listens again (same port)
 *   rtt ID MS        broker ID answers MS milliseconds late
 *   topic NAME N     creates topic NAME with N partitions
 *   leader T P ID    broker ID becomes leader of partition P of topic T
 *
 * End of stdin is not the end: the cluster runs until signalled.  Known
 * limits of librdkafka 2.0.2's mock: about 5 MiB kept per partition
 * (older messages vanish), the first group join takes about 3 s.
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int usage(void) {
    fprintf(
        stderr,
        "usage: kafka_mock_cluster [-b BROKERS] [-t TOPIC:PARTITIONS]...\n");
    return 2;
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *name,
                        int partitions) {
    if (partitions < 1) return -1;
    rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(mc, name, partitions, 1);
    return err ? -1 : 0;
}

/* Applies one command line; answers on stdout. */
static void command(rd_kafka_mock_cluster_t *mc, char *line) {
    char what[16], name[256];
    int a = 0, b = 0, c = 0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    line[strcspn(line, "\r\n")] = '\0';
    if (sscanf(line, "%15s", what) != 1) return;
    if (strcmp(what, "down") == 0 && sscanf(line, "%*s %d", &a) == 1)
        err = rd_kafka_mock_broker_set_down(mc, a);
    else if (strcmp(what, "up") == 0 && sscanf(line, "%*s %d", &a) == 1)
        err = rd_kafka_mock_broker_set_up(mc, a);
    else if (strcmp(what, "rtt") == 0 && sscanf(line, "%*s %d %d", &a, &b) == 2)
        err = rd_kafka_mock_broker_set_rtt(mc, a, b);
    else if (strcmp(what, "topic") == 0 &&
             sscanf(line, "%*s %255s %d", name, &a) == 2) {
        if (create_topic(mc, name, a) != 0) {
            printf("error cannot create topic %s\n", name);
            fflush(stdout);
            return;
        }
    } else if (strcmp(what, "leader") == 0 &&
               sscanf(line, "%*s %255s %d %d", name, &b, &c) == 3)
        err = rd_kafka_mock_partition_set_leader(mc, name, b, c);
    else {
        printf("error unknown command: %s\n", line);
        fflush(stdout);
        return;
    }
    if (err)
        printf("error %s: %s\n", line, rd_kafka_err2str(err));
    else
        printf("ok %s\n", line);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int brokers = 1, opt, rc = 1, sfd = -1;
    char errstr[256];
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;

    while ((opt = getopt(argc, argv, "b:t:")) != -1) {
        if (opt == 'b') {
            brokers = atoi(optarg);
            if (brokers < 1 || brokers > 3) return usage();
        } else if (opt != 't')
            return usage();
    }
    /* Signals arrive through a descriptor, polled beside stdin. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (sfd = signalfd(-1, &mask, 0)) < 0) {
        perror("kafka_mock_cluster: signalfd");
        return 1;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* log_level 4: not the notice that no bootstrap.servers is set */
    if (rd_kafka_conf_set(conf, "client.id", "MOCK", errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_mock_cluster: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto done;
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) {
        fprintf(stderr, "kafka_mock_cluster: %s\n", errstr);
        goto done;
    }
    if (!(mc = rd_kafka_mock_cluster_new(rk, brokers))) {
        fprintf(stderr, "kafka_mock_cluster: cannot start the cluster\n");
        goto done;
    }
    optind = 1;
    while ((opt = getopt(argc, argv, "b:t:")) != -1) {
        if (opt != 't') continue;
        char *colon = strrchr(optarg, ':');
        int n = colon ? atoi(colon + 1) : 1;
        if (colon) *colon = '\0';
        if (create_topic(mc, optarg, n) != 0) {
            fprintf(stderr, "kafka_mock_cluster: cannot create topic %s\n",
                    optarg);
            goto done;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    int nfds = 2;
    char line[512];
    size_t used = 0;
    for (;;) {
        if (poll(fds, (nfds_t)nfds, -1) < 0) {
            if (errno == EINTR) continue;
            perror("kafka_mock_cluster: poll");
            goto done;
        }
        if (fds[0].revents) break; /* SIGINT or SIGTERM */
        if (nfds < 2 || !fds[1].revents) continue;
        ssize_t got = read(STDIN_FILENO, line + used, sizeof line - 1 - used);
        if (got <= 0) { /* end of stdin: keep serving until signalled */
            nfds = 1;
            continue;
        }
        used += (size_t)got;
        line[used] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            command(mc, line);
            size_t rest = used - (size_t)(nl + 1 - line);
            memmove(line, nl + 1, rest + 1);
            used = rest;
        }
        if (used == sizeof line - 1) used = 0; /* an overlong line: drop */
    }
    rc = 0;
done:
    if (mc) rd_kafka_mock_cluster_destroy(mc);
    if (rk) rd_kafka_destroy(rk);
    if (sfd >= 0) close(sfd);
    return rc;
}
