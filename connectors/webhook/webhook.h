/*
 * webhook.h - signed HTTP POSTs (Standard Webhooks) for workflow
 * automation, through libcurl's multi interface.
 *
 * Each record is POSTed as its JSON with the headers webhook-id
 * (`<id>_v<version>`: the same for every attempt and every replay of one
 * record version, so a receiver deduplicates), webhook-timestamp (unix
 * seconds of the attempt), webhook-signature (`v1,` + base64 HMAC-SHA256
 * of `webhook-id.webhook-timestamp.body`, one per configured secret,
 * space-separated) and content-type: application/json
 * (https://www.standardwebhooks.com, spec/standard-webhooks.md).
 *
 * Asynchronous: write() takes the record (a copy) and answers OK, or
 * RETRY when `max_pending` records are already taken and unacknowledged
 * after driving the transfers for a moment.  Up to `concurrency`
 * requests run at once, but never two records with the same id: version
 * 3 of an incident is sent only once version 2 is acknowledged or
 * dead-lettered, so a receiver sees each incident's versions in order.
 * Network errors, 408, 429 and 5xx are retried with exponential backoff
 * and jitter, waiting at least what Retry-After asks, until `max_attempts`
 * or `max_age`; other answers (3xx, 4xx) and exhausted retries go to
 * cf_output_dead_letter() with the reason ("HTTP 422, not retried",
 * "gave up after 8 attempts (last: HTTP 503)"; the engine says which
 * output).  flush() drives transfers and
 * answers RETRY until every record taken is acknowledged or
 * dead-lettered.
 *
 * Secrets (whsec_ + base64 of 24..64 key bytes) never appear in errors,
 * logs or dead-letter reasons; URLs are shown with any user:password and
 * query string masked.
 *
 * Threading: one engine thread per output (libcurl handles are not
 * shared).
 */
#ifndef CF_WEBHOOK_OUTPUT_H
#define CF_WEBHOOK_OUTPUT_H

#include <jansson.h>

#include "config_map.h"
#include "connector.h"

/* The environment variable holding the secret(s) of a webhook named on
 * the command line (no options). */
#define CF_WEBHOOK_SECRET_ENV "CHAINFUSE_WEBHOOK_SECRET"

/*
 * Opens a webhook output POSTing to `url` (http:// or https://).  `opts`
 * is the YAML item of the output (keys in cf_webhook_options(); `url`
 * itself is ignored there) or NULL for a webhook named on the command
 * line.  A secret is required: from secret_env and/or secret_file, else
 * from $CHAINFUSE_WEBHOOK_SECRET.  Returns NULL with the reason in errstr
 * (never containing a secret).  The caller closes it with cf_output_close();
 * records still unacknowledged then are said on stderr.
 */
struct cf_output *cf_webhook_output_open(const char *url, const json_t *opts,
                                         char *errstr, size_t errstr_size);

/* The option keys of a webhook output (for `config --reference` and the
 * key checks); a static table. */
const struct cf_config_section_def *cf_webhook_options(void);

/* Decodes `secret` ("whsec_" + base64) into key[0..*n) (at most 64
 * bytes).  CF_ERR when it is not of that form or outside 24..64 bytes. */
cf_err_t cf_webhook_secret_decode(const char *secret, unsigned char key[64],
                                  size_t *n);

/* Appends "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)) to
 * `sig`. */
void cf_webhook_sign(struct cf_buf *sig, const unsigned char *key,
                     size_t key_len, const char *id, long long timestamp,
                     const char *body, size_t body_len);

/* The URL as it may be shown: user:password and query string masked.
 * Appends to `out`. */
void cf_webhook_safe_url(struct cf_buf *out, const char *url);

#endif
