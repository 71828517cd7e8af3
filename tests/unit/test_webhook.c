/*
 * test_webhook.c - the webhook output's signing against the Standard
 * Webhooks test vector, secrets refused without being echoed, URLs
 * shown masked, options checked at open.  Delivery, retries and
 * ordering are tested against a real receiver (tests/integration/
 * webhook_faults.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config_map.h"
#include "webhook/webhook.h"

/* The vector of the Standard Webhooks reference libraries' tests. */
static const char vec_secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char vec_id[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
static const long long vec_ts = 1614265330;
static const char vec_body[] = "{\"test\": 2432232314}";
static const char vec_sig[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

static void test_reference_vector(void **state) {
    (void)state;
    unsigned char key[64];
    size_t n = 0;
    struct cf_buf sig = CF_BUF_INIT;
    assert_int_equal(cf_webhook_secret_decode(vec_secret, key, &n), CF_OK);
    assert_int_equal(n, 24);
    cf_webhook_sign(&sig, key, n, vec_id, vec_ts, vec_body, strlen(vec_body));
    assert_false(sig.failed);
    assert_string_equal(sig.data, vec_sig);
    /* one byte of the body changed: another signature */
    cf_buf_reset(&sig);
    cf_webhook_sign(&sig, key, n, vec_id, vec_ts, "{\"test\": 2432232315}",
                    strlen(vec_body));
    assert_string_not_equal(sig.data, vec_sig);
    cf_buf_free(&sig);
}

static void test_secret_forms(void **state) {
    (void)state;
    unsigned char key[64];
    size_t n;
    /* no prefix, bad base64, too short (16 bytes), too long (72 bytes) */
    assert_int_equal(
        cf_webhook_secret_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, &n),
        CF_ERR);
    assert_int_equal(cf_webhook_secret_decode(
                         "whsec_MfKQ9r8GKYqr*wjUPD8ILPZIo2LaLaSw", key, &n),
                     CF_ERR);
    assert_int_equal(
        cf_webhook_secret_decode("whsec_AAAAAAAAAAAAAAAAAAAAAA==", key, &n),
        CF_ERR);
    assert_int_equal(cf_webhook_secret_decode(
                         "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                         key, &n),
                     CF_ERR);
    /* 32 bytes, padded */
    assert_int_equal(
        cf_webhook_secret_decode(
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", key, &n),
        CF_OK);
    assert_int_equal(n, 32);
    assert_int_equal(key[31], 31);
}

static void test_safe_url(void **state) {
    (void)state;
    struct cf_buf b = CF_BUF_INIT;
    cf_webhook_safe_url(&b, "https://bot:hunter2@hooks.example:8443/flow/"
                            "run?token=s3cr3t&x=1");
    assert_string_equal(b.data, "https://***@hooks.example:8443/flow/run?***");
    cf_buf_reset(&b);
    cf_webhook_safe_url(&b, "http://127.0.0.1:9/hook");
    assert_string_equal(b.data, "http://127.0.0.1:9/hook");
    cf_buf_free(&b);
}

/* Opens with `opts` (JSON text or NULL) and returns the error, "" when
 * it opened. */
static const char *open_error(const char *url, const char *opts_json, char *err,
                              size_t n) {
    json_t *opts = opts_json ? json_loads(opts_json, 0, NULL) : NULL;
    err[0] = '\0';
    struct cf_output *out = cf_webhook_output_open(url, opts, err, n);
    if (out) {
        assert_string_equal(err, "");
        cf_output_close(out);
    } else {
        assert_string_not_equal(err, "");
    }
    json_decref(opts);
    return err;
}

static void test_open_checks(void **state) {
    (void)state;
    char err[512];
    /* a secret that is not valid must not be echoed */
    setenv("CF_TEST_WH_SECRET", "whsec_tooshort-and-secret", 1);
    open_error("http://127.0.0.1:9/h", "{\"secret_env\":\"CF_TEST_WH_SECRET\"}",
               err, sizeof err);
    assert_non_null(strstr(err, "secret 1 is not"));
    assert_null(strstr(err, "tooshort"));
    /* command line, or an item naming no secret: $CHAINFUSE_WEBHOOK_SECRET,
     * here unset, then set */
    unsetenv(CF_WEBHOOK_SECRET_ENV);
    open_error("http://127.0.0.1:9/h", NULL, err, sizeof err);
    assert_non_null(strstr(err, "$" CF_WEBHOOK_SECRET_ENV));
    open_error("http://127.0.0.1:9/h", "{\"timeout\":\"2s\"}", err, sizeof err);
    assert_non_null(strstr(err, "secret_env or secret_file"));
    setenv(CF_WEBHOOK_SECRET_ENV, vec_secret, 1);
    assert_string_equal(
        open_error("http://127.0.0.1:9/h", NULL, err, sizeof err), "");
    assert_string_equal(open_error("http://127.0.0.1:9/h",
                                   "{\"timeout\":\"2s\"}", err, sizeof err),
                        "");
    /* a secret_file that is not there */
    open_error("http://127.0.0.1:9/h", "{\"secret_file\":\"/nonexistent/s\"}",
               err, sizeof err);
    assert_non_null(strstr(err, "secret_file /nonexistent/s: cannot open"));
    /* typos are refused, with the key named; the password is masked */
    open_error("https://u:pw123@h.example/h",
               "{\"secret_env\":\"" CF_WEBHOOK_SECRET_ENV
               "\",\"max_atempts\":3}",
               err, sizeof err);
    assert_non_null(strstr(err, "max_atempts"));
    assert_null(strstr(err, "pw123"));
    /* the engine's own keys of an output item are not the connector's */
    assert_string_equal(
        open_error("http://127.0.0.1:9/h",
                   "{\"url\":\"x\",\"kinds\":[\"incident\"],\"secret_env\":"
                   "\"" CF_WEBHOOK_SECRET_ENV
                   "\",\"headers\":[\"X-Team: soc\"]}",
                   err, sizeof err),
        "");
    open_error("http://127.0.0.1:9/h",
               "{\"secret_env\":\"" CF_WEBHOOK_SECRET_ENV
               "\",\"headers\":[\"webhook-id: mine\"]}",
               err, sizeof err);
    assert_non_null(strstr(err, "set by the output itself"));
    open_error("ftp://h.example/x", NULL, err, sizeof err);
    assert_non_null(strstr(err, "not an http"));
}

/* The README's table of webhook options is the table the code parses. */
static void test_readme_options(void **state) {
    (void)state;
    struct cf_buf ref = CF_BUF_INIT, readme = CF_BUF_INIT;
    char chunk[4096];
    size_t n;
    FILE *f = fopen(CF_SOURCE_DIR "/README.md", "r");
    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cf_buf_append(&readme, chunk, n);
    fclose(f);
    cf_config_map_reference(cf_webhook_options(), 1, &ref);
    assert_false(ref.failed || readme.failed);
    /* the README nests it under its own heading */
    const char *body = strstr(ref.data, "\n\n");
    assert_non_null(body);
    assert_non_null(strstr(readme.data, "### Options (`webhook`)"));
    assert_non_null(strstr(readme.data, body + 2));
    cf_buf_free(&ref);
    cf_buf_free(&readme);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vector),
        cmocka_unit_test(test_secret_forms),
        cmocka_unit_test(test_safe_url),
        cmocka_unit_test(test_open_checks),
        cmocka_unit_test(test_readme_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
