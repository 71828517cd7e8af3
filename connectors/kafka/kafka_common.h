/*
 * kafka_common.h - what the Kafka input and output share: the URL, the
 * librdkafka configuration built from options (secrets included), and
 * saying broker errors once.  Internal to connectors/kafka.
 */
#ifndef CF_KAFKA_COMMON_H
#define CF_KAFKA_COMMON_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "common.h"

/* A parsed kafka:// URL; the strings are owned (kafka_url_free). */
struct kafka_url {
    char *brokers;
    char **topics; /* n_topics names */
    size_t n_topics;
    char *group;      /* ?group=, or NULL */
    bool stop_at_end; /* ?stop_at_end=true */
};

/* Parses `url`; `input` says which query keys are allowed (group and
 * stop_at_end for an input, none for an output, which also takes exactly
 * one topic). */
cf_err_t kafka_url_parse(const char *url, bool input, struct kafka_url *u,
                         char *errstr, size_t errstr_size);
void kafka_url_free(struct kafka_url *u);

/* Errors said once: the first is printed, later ones (an outage makes
 * several: disconnected, all brokers down, connection refused, again and
 * again) only counted until kafka_said_recovered() (traffic flows again)
 * says how many there were. */
struct kafka_said {
    const char *who; /* "input" or "output", for messages */
    bool trouble;
    size_t more;
};

/* Parses `url` into `u` and makes the configuration: `opaque` (which
 * must start with a struct kafka_said) for the callbacks, error and log
 * callbacks, bootstrap.servers, `defaults` (key, value, ..., NULL), then
 * opts["rdkafka"], refusing keys in `reserved` (NULL-terminated) and
 * unknown option keys.  NULL with errstr filled on failure (then `u` is
 * freed). */
rd_kafka_conf_t *
kafka_conf_open(const char *url, bool input, struct kafka_url *u, void *opaque,
                const json_t *opts, const char *const *defaults,
                const char *const *reserved, char *errstr, size_t errstr_size);

/* Sets one property the connector owns; only fails on a librdkafka
 * that lacks it. */
cf_err_t kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                        const char *value, char *errstr, size_t errstr_size);

void kafka_say(struct kafka_said *s, rd_kafka_resp_err_t err,
               const char *reason);
void kafka_said_recovered(struct kafka_said *s);

#endif
