/*
 * redis_output.h - incident queues in Redis for a SOC's tools (hiredis).
 *
 * URL: redis://[USER:PASS@]HOST[:PORT][/DB][?prefix=P]  (port 6379, db 0,
 * prefix "chainfuse"; USER, PASS and P may be %-encoded).  rediss:// is
 * refused: the hiredis this builds on (0.14, Debian bookworm) has no TLS.
 *
 * What it writes, P being the prefix:
 *   incidents  P:incident:<id>  hash {version, status, severity, score,
 *                               json}, the latest version, expiring
 *                               `retention` after its last change;
 *              P:queue          sorted set of incident ids still waiting
 *                               for an analyst, scored severity * 1000 +
 *                               score (ZPOPMAX takes the worst);
 *              P:incidents      stream, one entry (field json) per
 *                               version that changed the hash;
 *   alerts     P:alerts         stream (field json);
 *   others     P:dead-letters, P:stats  streams (field json).
 * Streams are capped with XADD MAXLEN ~ `maxlen`.
 *
 * An incident is written by one Lua script (EVALSHA; EVAL when Redis has
 * lost the script) that compares versions atomically: a version not
 * newer than the stored one changes nothing, so a replay after a crash
 * or a resend after a lost reply adds no stream entry and never puts an
 * older state back.  An incident enters the queue when Redis first
 * learns of it; an update rescores it only while it is still queued (an
 * incident a tool has popped is not handed out again: the tool follows
 * it in its hash or the stream); a closed one leaves the queue.  Alerts
 * are plain XADDs: a resend may repeat one, recognisable by its id.
 *
 * `opts` (the YAML item's other keys, or NULL): user, password_env,
 * password_file (secrets: never printed, URLs are shown with the
 * password masked), maxlen, retention, queue (records held before
 * write() answers RETRY), batch (records per round trip), timeout.
 *
 * write() answers OK once the record is buffered; a full batch is sent
 * pipelined (one round trip) and its replies read.  flush() sends what
 * is buffered and answers RETRY until Redis has acknowledged it all.
 * While Redis is away both answer RETRY once `queue` records wait
 * (reconnecting with backoff, 50 ms doubling to 2 s); nothing is dropped.
 * A record Redis refuses for good (a script error, a key of the wrong
 * type) goes to cf_output_dead_letter() with Redis's words.
 *
 * The output connects when opened: refused credentials, an unknown
 * database or a missing password are errors then; an unreachable Redis
 * is only said (records wait for it).
 *
 * Threading: one engine thread, as every connector.
 */
#ifndef CF_REDIS_OUTPUT_H
#define CF_REDIS_OUTPUT_H

#include <stddef.h>

struct json_t;
struct cf_output;

/* NULL with "redis://...: reason" (password masked) in errstr. */
struct cf_output *cf_redis_output_open(const char *url,
                                       const struct json_t *opts, char *errstr,
                                       size_t n);

#endif
