/*
 * kafka.h - Kafka input (a consumer group) and output (an idempotent
 * producer), on librdkafka.
 *
 * Input URL:  kafka://BROKERS/TOPIC[,TOPIC...]?group=NAME[&stop_at_end=true]
 * Output URL: kafka://BROKERS/TOPIC
 * BROKERS is host:port[,host:port...].
 *
 * `opts` (a JSON object, the YAML item, or NULL) may hold `rdkafka`: an
 * object of librdkafka properties passed through unchanged (values may
 * be strings, numbers or booleans).  A property named KEY_env takes
 * KEY's value from that environment variable, KEY_file from that file
 * (one trailing newline dropped): that is where secrets go
 * (sasl.password_file: /run/secrets/kafka).  Secret values are never
 * printed, not even in an error about them.  Other keys of `opts` that
 * the engine owns (url, kinds, min_severity, tactics, name) are ignored;
 * any other key is refused.  The properties this connector's guarantees
 * rest on are refused too (bootstrap.servers and group.id come from the
 * URL; enable.auto.commit, enable.auto.offset.store, enable.partition.eof
 * and, for the output, enable.idempotence are set here).
 *
 * Input: one record per message, pos = {topic, partition, offset}; the
 * topic string lives as long as the input.  Offsets are committed only
 * through commit(pos), as pos.offset + 1, never automatically: a restart
 * resumes after the last position the engine called checkpointed.
 * Commits are sent asynchronously and tracked; one that fails (the
 * coordinator is away) is sent again until it succeeds, and close()
 * commits what is still owed synchronously, serving the group for up to
 * 10 s when it refuses (a session that ended during an outage).  wait(ms)
 * pauses every assigned partition and serves the group (heartbeats, rebalances)
 * for ms without handing out messages; the next read() resumes them where the
 * engine left off.  Before a rebalance takes partitions away the input calls
 * cf_input_checkpoint(), then commits synchronously what the engine committed
 * for them.  With stop_at_end, read() answers CF_IO_EOF once the group has
 * assigned partitions and every one of them is at its end.  read() waits up to
 * 100 ms for a message, then answers CF_IO_RETRY.  Broker errors are said once
 * on stderr (again only when a different one follows); librdkafka retries them.
 * A fatal error makes read() answer CF_IO_FAIL.
 *
 * Output: every record is produced to TOPIC with value = its JSON, key =
 * its id (incident or alert id; none for dead letters and stats), and
 * headers chainfuse.kind and, for versioned records, chainfuse.version.
 * A dead-letter record also carries chainfuse.reason (from its JSON),
 * chainfuse.source, chainfuse.partition and chainfuse.offset (from its
 * pos), so a Kafka output taking kind dead-letter is a dead-letter
 * topic.  write() answers OK once librdkafka has queued the record,
 * RETRY when its local queue is full (the engine backs off while
 * delivery reports drain); flush() answers RETRY until every record
 * written has its delivery report.  A record librdkafka gives up on
 * (message.timeout.ms, default 5 minutes) goes to
 * cf_output_dead_letter() with librdkafka's reason.
 *
 * Both return NULL and fill errstr when the URL or an option is wrong or
 * librdkafka refuses the configuration; brokers are not contacted before
 * the first read() or write().  Threading: one engine thread per
 * connector (librdkafka's own threads are behind it).
 */
#ifndef CF_KAFKA_H
#define CF_KAFKA_H

#include "connector.h"

struct json_t;

struct cf_input *cf_kafka_input_open(const char *url, const struct json_t *opts,
                                     char *errstr, size_t errstr_size);
struct cf_output *cf_kafka_output_open(const char *url,
                                       const struct json_t *opts, char *errstr,
                                       size_t errstr_size);

#endif
