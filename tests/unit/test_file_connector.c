/*
 * test_file_connector.c - the file input (plain, gzip, stdin, CRLF,
 * blank lines, a last line without newline, over-long lines, records
 * held past later reads, read errors) and the file output with
 * dead-letter records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dead_letter.h"
#include "file/file_input.h"
#include "file/file_output.h"

static char dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/cf_test_file_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static cf_io_status write_plain(struct cf_output *out, const char *json) {
    struct cf_out_record r =
        cf_out_record_plain("alert", json, strlen(json), NULL);
    return out->ops->write(out, &r);
}

static char *path_of(const char *name) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static void write_file(const char *path, const char *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void write_gz(const char *path, const char *data, size_t len) {
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
}

static const char sample[] = "{\"a\":1}\n"
                             "\n"
                             "{\"b\":2}\r\n"
                             "   \r\n"
                             "{\"c\":\"x y\"}\n"
                             "{\"d\":4}"; /* no final newline */

/* Reads `in` to the end, checking each record against want/lines.
 * Blank lines are records too (the engine counts them). */
static void expect_records(struct cf_input *in, const char *source,
                           const char *const *want, const int64_t *lines,
                           size_t n) {
    struct cf_record rec;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(in->ops->read(in, &rec), CF_IO_OK);
        assert_null(rec.defect);
        assert_false(rec.truncated);
        assert_int_equal(rec.len, strlen(want[i]));
        assert_memory_equal(rec.data, want[i], rec.len);
        assert_string_equal(rec.pos.source, source);
        assert_int_equal(rec.pos.partition, -1);
        assert_int_equal(rec.pos.offset, lines[i]);
    }
    assert_int_equal(in->ops->read(in, &rec), CF_IO_EOF);
    assert_int_equal(in->ops->read(in, &rec), CF_IO_EOF);
}

static const char *const sample_want[] = {
    "{\"a\":1}", "", "{\"b\":2}", "   ", "{\"c\":\"x y\"}", "{\"d\":4}"};
static const int64_t sample_lines[] = {1, 2, 3, 4, 5, 6};

static void test_plain_file(void **state) {
    (void)state;
    char err[256];
    const char *p = path_of("plain.jsonl");
    write_file(p, sample, sizeof sample - 1);
    struct cf_input *in = cf_file_input_open(p, 1024, err, sizeof err);
    assert_non_null(in);
    assert_string_equal(in->ops->name, "file");
    expect_records(in, p, sample_want, sample_lines, 6);
    assert_string_equal(cf_file_input_error(in), "");
    cf_input_close(in);
    cf_input_close(NULL);
}

static void test_gzip_file(void **state) {
    (void)state;
    char err[256];
    const char *p = path_of("events.jsonl.gz");
    write_gz(p, sample, sizeof sample - 1);
    struct cf_input *in = cf_file_input_open(p, 1024, err, sizeof err);
    assert_non_null(in);
    expect_records(in, p, sample_want, sample_lines, 6);
    cf_input_close(in);
}

static void test_stdin(void **state) {
    (void)state;
    char err[256];
    const char *p = path_of("stdin.jsonl");
    write_file(p, sample, sizeof sample - 1);
    int saved = dup(STDIN_FILENO);
    int fd = open(p, O_RDONLY);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDIN_FILENO) >= 0);
    close(fd);
    struct cf_input *in = cf_file_input_open("-", 0, err, sizeof err);
    assert_non_null(in);
    expect_records(in, "-", sample_want, sample_lines, 6);
    cf_input_close(in);
    assert_true(dup2(saved, STDIN_FILENO) >= 0);
    close(saved);
}

/* A UTF-8 byte order mark (Windows editors, PowerShell's Out-File)
 * at the very start of the input is not part of the first event; one
 * anywhere else is left in place for the decoder to reject. */
static void test_bom(void **state) {
    (void)state;
    char err[256];
    const char data[] = "\xef\xbb\xbf{\"a\":1}\n\xef\xbb\xbf{\"b\":2}\n";
    const char *const want[] = {"{\"a\":1}", "\xef\xbb\xbf{\"b\":2}"};
    const int64_t lines[] = {1, 2};
    const char *p = path_of("bom.jsonl");
    write_file(p, data, sizeof data - 1);
    struct cf_input *in = cf_file_input_open(p, 0, err, sizeof err);
    assert_non_null(in);
    expect_records(in, p, want, lines, 2);
    cf_input_close(in);

    p = path_of("bom.jsonl.gz");
    write_gz(p, data, sizeof data - 1);
    in = cf_file_input_open(p, 0, err, sizeof err);
    assert_non_null(in);
    expect_records(in, p, want, lines, 2);
    cf_input_close(in);

    /* stdin, and a file that is nothing but a BOM (no record at all). */
    p = path_of("bom_only.jsonl");
    write_file(p, "\xef\xbb\xbf", 3);
    int saved = dup(STDIN_FILENO);
    int fd = open(p, O_RDONLY);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDIN_FILENO) >= 0);
    close(fd);
    in = cf_file_input_open("-", 0, err, sizeof err);
    assert_non_null(in);
    expect_records(in, "-", want, lines, 0);
    cf_input_close(in);
    assert_true(dup2(saved, STDIN_FILENO) >= 0);
    close(saved);

    /* Two bytes of a BOM are not one: kept. */
    p = path_of("half_bom.jsonl");
    write_file(p, "\xef\xbb{}\n", 5);
    in = cf_file_input_open(p, 0, err, sizeof err);
    const char *const half[] = {"\xef\xbb{}"};
    expect_records(in, p, half, lines, 1);
    cf_input_close(in);
}

static void test_long_lines(void **state) {
    (void)state;
    char err[256];
    /* A 1 MB line spans several 256 KiB read chunks; the limit is 100. */
    size_t big = 1000000, n = 0;
    char *data = malloc(big + 200);
    assert_non_null(data);
    n += (size_t)snprintf(data + n, 200, "{\"ok\":1}\n{\"big\":\"");
    memset(data + n, 'x', big);
    n += big;
    n += (size_t)snprintf(data + n, 200, "\"}\n{\"ok\":2}\n");
    const char *p = path_of("long.jsonl");
    write_file(p, data, n);
    free(data);

    for (int gz = 0; gz < 2; gz++) {
        if (gz) {
            FILE *fp = fopen(p, "rb");
            char *copy = malloc(n);
            assert_int_equal(fread(copy, 1, n, fp), n);
            fclose(fp);
            p = path_of("long.jsonl.gz");
            write_gz(p, copy, n);
            free(copy);
        }
        struct cf_input *in = cf_file_input_open(p, 100, err, sizeof err);
        struct cf_record rec;
        assert_non_null(in);
        assert_int_equal(in->ops->read(in, &rec), CF_IO_OK);
        assert_null(rec.defect);
        assert_int_equal(rec.pos.offset, 1);
        assert_int_equal(in->ops->read(in, &rec), CF_IO_OK);
        assert_non_null(rec.defect);
        assert_string_equal(rec.defect, "line exceeds max_line_bytes");
        assert_true(rec.truncated);
        assert_int_equal(rec.len, 100);
        assert_memory_equal(rec.data, "{\"big\":\"xxx", 11);
        assert_int_equal(rec.pos.offset, 2);
        assert_int_equal(in->ops->read(in, &rec), CF_IO_OK);
        assert_null(rec.defect);
        assert_int_equal(rec.len, 8);
        assert_memory_equal(rec.data, "{\"ok\":2}", 8);
        assert_int_equal(rec.pos.offset, 3);
        assert_int_equal(in->ops->read(in, &rec), CF_IO_EOF);
        cf_input_close(in);
    }

    /* Exactly at the limit is fine, one more byte is not, CR aside. */
    const char edge[] = "12345\r\n123456\n1234567";
    p = path_of("edge.jsonl");
    write_file(p, edge, sizeof edge - 1);
    struct cf_input *in = cf_file_input_open(p, 6, err, sizeof err);
    struct cf_record rec;
    assert_int_equal(in->ops->read(in, &rec), CF_IO_OK);
    assert_null(rec.defect);
    assert_int_equal(rec.len, 5);
    assert_int_equal(in->ops->read(in, &rec), CF_IO_OK);
    assert_null(rec.defect);
    assert_int_equal(rec.len, 6);
    assert_int_equal(in->ops->read(in, &rec), CF_IO_OK);
    assert_non_null(rec.defect);
    assert_true(rec.truncated);
    assert_int_equal(rec.len, 6);
    assert_int_equal(rec.pos.offset, 3);
    assert_int_equal(in->ops->read(in, &rec), CF_IO_EOF);
    cf_input_close(in);
}

static void test_open_and_read_errors(void **state) {
    (void)state;
    char err[256] = "";
    assert_null(
        cf_file_input_open(path_of("missing.jsonl"), 0, err, sizeof err));
    assert_non_null(strstr(err, "missing.jsonl"));
    assert_null(cf_file_input_open("", 0, err, sizeof err));

    /* A gzip file cut in the middle: records up to the cut, then FAIL
     * with a reason instead of a silent EOF. */
    size_t n = 0;
    char *data = malloc(300000);
    for (int i = 0; n < 290000; i++)
        n += (size_t)snprintf(data + n, 300000 - n, "{\"i\":%d,\"r\":%u}\n", i,
                              (unsigned)(i * 2654435761u));
    const char *p = path_of("cut.jsonl.gz");
    write_gz(p, data, n);
    free(data);
    FILE *fp = fopen(p, "rb");
    char whole[400000];
    size_t got = fread(whole, 1, sizeof whole, fp);
    fclose(fp);
    write_file(p, whole, got / 2);
    struct cf_input *in = cf_file_input_open(p, 0, err, sizeof err);
    struct cf_record rec;
    cf_io_status st;
    int records = 0;
    bool saw_partial = false;
    int64_t last_line = 0;
    assert_non_null(in);
    while ((st = in->ops->read(in, &rec)) == CF_IO_OK) {
        records++;
        /* Only the last record, the line the cut went through, is
         * defective: handed over (to be dead-lettered and counted), not
         * lost. */
        assert_false(saw_partial);
        if (rec.defect) {
            assert_string_equal(rec.defect, "truncated input");
            assert_true(rec.truncated);
            assert_true(rec.len > 0);
            assert_memory_equal(rec.data, "{\"i\":", 5);
            saw_partial = true;
        }
        last_line = rec.pos.offset;
    }
    assert_int_equal(st, CF_IO_FAIL);
    assert_true(records > 0);
    assert_true(saw_partial);
    assert_int_equal(last_line, records);
    assert_true(strlen(cf_file_input_error(in)) > 0);
    /* The message counts the complete lines; the cut one comes after. */
    char after[64];
    snprintf(after, sizeof after, "after line %d:", records - 1);
    assert_non_null(strstr(cf_file_input_error(in), after));
    assert_int_equal(in->ops->read(in, &rec), CF_IO_FAIL);
    fprintf(stderr, "truncated gzip: %d records, then: %s\n", records,
            cf_file_input_error(in));
    cf_input_close(in);
}

static char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    static char buf[65536];
    assert_non_null(fp);
    *len = fread(buf, 1, sizeof buf - 1, fp);
    buf[*len] = '\0';
    fclose(fp);
    return buf;
}

/* Deferred: no file when nothing is written, and an earlier run's file
 * is emptied at open, not left to pass for this run's. */
static void test_deferred_output(void **state) {
    (void)state;
    char err[256];
    struct stat st;
    const char *fresh = path_of("deferred_new.jsonl");
    struct cf_output *out =
        cf_file_output_open(fresh, CF_FILE_OUTPUT_DEFERRED, err, sizeof err);
    assert_non_null(out);
    cf_output_close(out);
    assert_int_not_equal(stat(fresh, &st), 0);

    const char *old = path_of("deferred_old.jsonl");
    FILE *fp = fopen(old, "w");
    assert_non_null(fp);
    fputs("{\"kind\":\"dead-letter\",\"reason\":\"from before\"}\n", fp);
    fclose(fp);
    out = cf_file_output_open(old, CF_FILE_OUTPUT_DEFERRED, err, sizeof err);
    assert_non_null(out);
    cf_output_close(out);
    assert_int_equal(stat(old, &st), 0);
    assert_int_equal(st.st_size, 0);
}

/* A dead letter stays JSON when the input's name is not UTF-8. */
static void test_dead_letter_source_not_utf8(void **state) {
    (void)state;
    char err[256];
    const char *p = path_of("dl_source.jsonl");
    struct cf_output *out = cf_file_output_open(p, 0, err, sizeof err);
    assert_non_null(out);
    struct cf_position pos = {"bad\xe9.jsonl", -1, 3};
    assert_int_equal(
        cf_dead_letter_write(out, "invalid JSON", &pos, "{", 1, false), CF_OK);
    cf_output_close(out);
    size_t len;
    char *text = slurp(p, &len);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j) fail_msg("dead letter is not JSON: %s", jerr.text);
    assert_string_equal(json_string_value(json_object_get(j, "source")),
                        "bad\xef\xbf\xbd.jsonl");
    json_decref(j);
}

static void test_output_and_dead_letter(void **state) {
    (void)state;
    char err[256];
    const char *p = path_of("out.jsonl");
    struct cf_output *out = cf_file_output_open(p, 0, err, sizeof err);
    assert_non_null(out);
    assert_int_equal(write_plain(out, "{\"x\":1}"), CF_IO_OK);
    struct cf_position pos = {"in \"q\".jsonl", -1, 42};
    const char bad_json[] = "{\"a\":\"tab\there\" \x01 \\";
    assert_int_equal(cf_dead_letter_write(out, "invalid JSON", &pos, bad_json,
                                          sizeof bad_json - 1, false),
                     CF_OK);
    const char not_utf8[] = "{\"a\":\"\xff\xfe\"}";
    assert_int_equal(cf_dead_letter_write(out, "invalid UTF-8", &pos, not_utf8,
                                          sizeof not_utf8 - 1, false),
                     CF_OK);
    struct cf_position kafka = {"topic", 3, 7};
    assert_int_equal(
        cf_dead_letter_write(out, "truncated JSON", &kafka, "{", 1, false),
        CF_OK);
    assert_int_equal(cf_dead_letter_write(out, "x", NULL, "{}", 2, false),
                     CF_OK);
    assert_int_equal(out->ops->flush(out), CF_IO_OK);

    size_t len;
    char *text = slurp(p, &len);
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    assert_string_equal(line, "{\"x\":1}");
    json_error_t jerr;
    line = strtok_r(NULL, "\n", &save);
    json_t *j = json_loads(line, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "kind")),
                        "dead-letter");
    assert_string_equal(json_string_value(json_object_get(j, "reason")),
                        "invalid JSON");
    assert_string_equal(json_string_value(json_object_get(j, "source")),
                        "in \"q\".jsonl");
    assert_int_equal(json_integer_value(json_object_get(j, "offset")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "line")),
                        bad_json);
    json_decref(j);
    line = strtok_r(NULL, "\n", &save);
    j = json_loads(line, 0, &jerr);
    assert_non_null(j);
    assert_null(json_object_get(j, "line"));
    /* base64 of {"a":"\xff\xfe"} */
    assert_string_equal(json_string_value(json_object_get(j, "line_base64")),
                        "eyJhIjoi//4ifQ==");
    json_decref(j);
    line = strtok_r(NULL, "\n", &save);
    j = json_loads(line, 0, &jerr);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "partition")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "offset")), 7);
    json_decref(j);
    line = strtok_r(NULL, "\n", &save);
    assert_string_equal(line, "{\"kind\":\"dead-letter\",\"reason\":\"x\","
                              "\"line\":\"{}\"}");
    cf_output_close(out);
    cf_output_close(NULL);

    /* Unwritable places fail at open or at flush, not silently. */
    assert_null(
        cf_file_output_open(path_of("no/such/dir.jsonl"), 0, err, sizeof err));
    assert_non_null(strstr(err, "no/such/dir.jsonl"));
    if (access("/dev/full", W_OK) == 0) {
        out = cf_file_output_open("/dev/full", 0, err, sizeof err);
        assert_non_null(out);
        assert_int_equal(write_plain(out, "{}"), CF_IO_OK); /* buffered */
        assert_int_equal(out->ops->flush(out), CF_IO_FAIL);
        cf_output_close(out);
    }
}

/* A record's hold keeps its data valid past later reads: the chunk it
 * lies in is not refilled while held (the detection threads' batches
 * rely on it instead of copying).  A line assembled across chunks
 * carries no hold.  (That a released chunk is reused is not checked
 * here.) */
static void test_held_records(void **state) {
    (void)state;
    char err[256];
    const char *p = path_of("held.jsonl");
    /* 4,000 lines of 200 bytes: 800 KB, several read chunks */
    size_t n_lines = 4000, line = 200, len = n_lines * line;
    char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < n_lines; i++) {
        memset(data + i * line, 'a' + (int)(i % 26), line - 1);
        data[i * line + line - 1] = '\n';
    }
    write_file(p, data, len);
    struct cf_input *in = cf_file_input_open(p, 0, err, sizeof err);
    assert_non_null(in);
    struct cf_record first, rec;
    assert_int_equal(in->ops->read(in, &first), CF_IO_OK);
    assert_non_null(first.hold);
    first.hold->retain(first.hold);
    size_t unheld = 0;
    for (size_t i = 1; i < n_lines; i++) {
        assert_int_equal(in->ops->read(in, &rec), CF_IO_OK);
        assert_int_equal(rec.len, line - 1);
        assert_memory_equal(rec.data, data + i * line, line - 1);
        unheld += rec.hold == NULL;
    }
    /* only the lines that straddle a chunk boundary were assembled */
    assert_true(unheld > 0 && unheld < 8);
    assert_int_equal(in->ops->read(in, &rec), CF_IO_EOF);
    /* the first chunk was never overwritten */
    assert_int_equal(first.len, line - 1);
    assert_memory_equal(first.data, data, line - 1);
    first.hold->release(first.hold);
    cf_input_close(in);
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_file),
        cmocka_unit_test(test_gzip_file),
        cmocka_unit_test(test_stdin),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_held_records),
        cmocka_unit_test(test_open_and_read_errors),
        cmocka_unit_test(test_output_and_dead_letter),
        cmocka_unit_test(test_dead_letter_source_not_utf8),
        cmocka_unit_test(test_deferred_output),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
