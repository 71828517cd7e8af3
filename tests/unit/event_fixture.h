/*
 * event_fixture.h - the decoder fixture the event tests share
 * (test_event.c, test_event_shapes.c): one decoder and one reused event,
 * cmocka setup/teardown, and lookups of leaves by name.
 *
 * Header only, included once per test program after cmocka.h and
 * event.h.
 */
#ifndef CF_TEST_EVENT_FIXTURE_H
#define CF_TEST_EVENT_FIXTURE_H

#include <string.h>

static struct cf_decoder *dec;
static struct cf_event ev;
static const struct cf_decode_limits limits = {1 << 20, 64};

static inline int setup(void **state) {
    (void)state;
    dec = cf_decoder_new();
    cf_event_init(&ev);
    return dec ? 0 : -1;
}

static inline int teardown(void **state) {
    (void)state;
    cf_event_free(&ev);
    cf_decoder_destroy(dec);
    cf_decoder_destroy(NULL);
    return 0;
}

static inline cf_err_t decode(const char *line, const char **reason) {
    return cf_event_decode(dec, &ev, line, strlen(line), &limits, reason);
}

static inline void decode_ok(const char *line) {
    const char *reason = NULL;
    cf_err_t rc = decode(line, &reason);
    if (rc != CF_OK) fail_msg("decode failed (%s): %.200s", reason, line);
}

/* The value of the n-th leaf named `name`; fails the test if absent. */
static inline const struct cf_event_field *leaf(const char *name, int nth) {
    int i = cf_event_find(&ev, name, strlen(name), 0);
    while (i >= 0 && nth-- > 0)
        i = cf_event_find(&ev, name, strlen(name), (uint32_t)i + 1);
    if (i < 0) fail_msg("no leaf %s", name);
    return &ev.fields[i];
}

static inline int count(const char *name) {
    int n = 0;
    for (int i = cf_event_find(&ev, name, strlen(name), 0); i >= 0;
         i = cf_event_find(&ev, name, strlen(name), (uint32_t)i + 1))
        n++;
    return n;
}

#endif
