/*
 * file_output.c - the JSON-lines file output (connectors/file/file_output.h).
 *
 * Writes go through a stdio buffer (records are small, so one write(2)
 * per record would dominate); flush() and close() push it out.
 *
 * Threading: an output belongs to one engine thread.
 */
#include "file/file_output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_BUFFER_BYTES ((size_t)256 * 1024)

struct file_output {
    struct cf_output out; /* first: the cf_output handed out is this */
    FILE *fp;             /* NULL while creation is deferred */
    bool is_stdout;
    char *path;    /* for messages, and for the deferred creation */
    bool append;   /* resuming: keep what an earlier run wrote */
    char *buffer;  /* stdio buffer; must outlive fp */
    char err[320]; /* why the last write or flush failed, or "" */
};

/* A hint only where the usual cause is clear. */
static const char *create_hint(int err) {
    switch (err) {
    case ENOENT: return " (check that the directory exists)";
    case EACCES: return " (check that the directory is writable)";
    default: return "";
    }
}

/* Creates the file and gives it a large stdio buffer. */
/* A run killed part-way may have left half a line at the end (stdio
 * writes its buffer in pieces); a resumed run writes that record again,
 * whole, so the piece is cut off rather than glued to the next line. */
static void cut_partial_line(FILE *fp) {
    char tail[4096];
    long end, from;
    if (fseek(fp, 0, SEEK_END) != 0 || (end = ftell(fp)) <= 0) return;
    for (long stop = end; stop > 0; stop = from) {
        from = stop > (long)sizeof tail ? stop - (long)sizeof tail : 0;
        size_t n = (size_t)(stop - from);
        if (fseek(fp, from, SEEK_SET) != 0 || fread(tail, 1, n, fp) != n)
            return;
        for (size_t i = n; i > 0; i--)
            if (tail[i - 1] == '\n') {
                if (from + (long)i < end) {
                    fflush(fp);
                    if (ftruncate(fileno(fp), from + (long)i) != 0) return;
                }
                return;
            }
    }
    fflush(fp);
    if (ftruncate(fileno(fp), 0) != 0) return; /* no newline at all */
}

static cf_err_t create_file(struct file_output *fo, const char *path,
                            char *errstr, size_t errstr_size) {
    if (fo->append && (fo->fp = fopen(path, "r+"))) {
        cut_partial_line(fo->fp);
        fclose(fo->fp);
    }
    if (!(fo->fp = fopen(path, fo->append ? "a" : "w")))
        return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                         "cannot create %s: %s%s", path, strerror(errno),
                         create_hint(errno));
    /* Without a buffer of our own stdio would still work, only with
     * 4 KiB writes; failing to get one is not worth failing the open. */
    if ((fo->buffer = cf_malloc(OUT_BUFFER_BYTES)))
        setvbuf(fo->fp, fo->buffer, _IOFBF, OUT_BUFFER_BYTES);
    return CF_OK;
}

/* Records why (the errno text: a full disk, a closed pipe) for
 * cf_file_output_error(); the engine only learns FAIL.  The first reason
 * is kept: once the stream's error flag is set, later calls fail without
 * an errno of their own. */
static cf_io_status write_failed(struct file_output *fo) {
    int e = errno;
    if (fo->err[0]) return CF_IO_FAIL;
    snprintf(fo->err, sizeof fo->err, "cannot write %s: %s",
             fo->is_stdout ? "standard output" : fo->path,
             e ? strerror(e) : "write error");
    return CF_IO_FAIL;
}

static cf_io_status file_write(struct cf_output *out,
                               const struct cf_out_record *rec) {
    struct file_output *fo = out->ctx;
    const char *json = rec->json;
    size_t len = rec->len;
    if (!fo->fp && create_file(fo, fo->path, fo->err, sizeof fo->err) != CF_OK)
        return CF_IO_FAIL;
    errno = 0;
    if (fwrite(json, 1, len, fo->fp) != len || putc('\n', fo->fp) == EOF ||
        ferror(fo->fp))
        return write_failed(fo);
    return CF_IO_OK;
}

static cf_io_status file_flush(struct cf_output *out) {
    struct file_output *fo = out->ctx;
    if (!fo->fp) return CF_IO_OK; /* deferred and nothing written */
    errno = 0;
    if (fflush(fo->fp) != 0 || ferror(fo->fp)) return write_failed(fo);
    return CF_IO_OK;
}

static void file_close(struct cf_output *out) {
    struct file_output *fo;
    if (!out) return;
    fo = out->ctx;
    if (fo->fp) {
        if (fo->is_stdout)
            fflush(fo->fp);
        else
            fclose(fo->fp);
    }
    cf_free(fo->path);
    cf_free(fo->buffer);
    cf_free(fo);
}

static const struct cf_output_ops file_output_ops = {
    .name = "file",
    .write = file_write,
    .flush = file_flush,
    .close = file_close,
};

struct cf_output *cf_file_output_open(const char *path, unsigned flags,
                                      char *errstr, size_t errstr_size) {
    struct file_output *fo = NULL;

    if (!path || !*path) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "no output path given (use \"-\" for stdout)");
        goto fail;
    }
    if (!(fo = cf_calloc(1, sizeof *fo))) {
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                  "out of memory opening output %s", path);
        goto fail;
    }
    fo->out.ops = &file_output_ops;
    fo->out.ctx = fo;
    fo->append = (flags & CF_FILE_OUTPUT_APPEND) != 0;
    if (!(fo->path = cf_strdup(path))) {
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                  "out of memory opening output %s", path);
        goto fail;
    }
    if (strcmp(path, "-") == 0) {
        fo->fp = stdout;
        fo->is_stdout = true;
        return &fo->out;
    }
    if (flags & CF_FILE_OUTPUT_DEFERRED) {
        /* Prove now that the file can be created, so a bad path fails
         * before any input is read, then remove it again. */
        struct stat st;
        bool existed = stat(path, &st) == 0;
        if (existed && S_ISDIR(st.st_mode)) {
            cf_seterr(errstr, errstr_size, CF_ERR_IO,
                      "cannot create %s: it is a directory", path);
            goto fail;
        }
        /* An existing file is emptied now, as a write would: dead
         * letters of an earlier run must not pass for this one's. */
        FILE *probe = fopen(path, existed && !fo->append ? "w" : "a");
        if (!probe) {
            cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot create %s: %s%s",
                      path, strerror(errno), create_hint(errno));
            goto fail;
        }
        fclose(probe);
        if (!existed) unlink(path);
        return &fo->out;
    }
    if (create_file(fo, path, errstr, errstr_size) != CF_OK) goto fail;
    return &fo->out;
fail:
    if (fo) file_close(&fo->out);
    return NULL;
}

const char *cf_file_output_error(const struct cf_output *out) {
    if (!out || out->ops != &file_output_ops) return "";
    return ((const struct file_output *)out->ctx)->err;
}
