/*
 * file_input.c - the JSON-lines file input (connectors/file/file_input.h).
 *
 * Reads through zlib's gzread so gzip and plain files take the same path,
 * sized so that zlib reads straight into the chunk (ZLIB_BUFFER_BYTES).
 * Lines that fit in the current read chunk are handed out in place (no
 * copy); a line that spans chunks is assembled in a buffer bounded by
 * max_line_bytes, so one enormous line cannot exhaust memory.
 *
 * Threading: an input belongs to one engine thread.
 */
#include "file/file_input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "event.h" /* the CF_DEFECT_* words */

#define CHUNK_BYTES ((size_t)256 * 1024)
/* zlib's own buffer.  gzread() fills a request of at least twice its
 * buffer straight into the caller's memory (read() for a plain file,
 * inflate's output for gzip); a smaller one goes through the buffer and
 * is copied out, a second pass over every byte (it was 0.01 s of 0.06 s
 * reading 530 MB).  With a quarter of a chunk, only the first read's
 * header look-ahead is copied; every later read lands in the chunk. */
#define ZLIB_BUFFER_BYTES (CHUNK_BYTES / 4)
#define DEFAULT_MAX_LINE ((size_t)1 << 20)

/* A read buffer.  Records read from it carry its hold (cf_record.hold),
 * so the detection threads keep a batch of them by a reference instead
 * of a copy; a chunk still held when the next read is due is left to
 * its holders and the read goes to a free one. */
struct chunk {
    struct cf_hold hold; /* first: the hold handed out is this struct */
    struct file_input *fi;
    unsigned refs;      /* holders: batches of records not yet released */
    struct chunk *next; /* in file_input.spare */
    char data[];        /* CHUNK_BYTES */
};

struct file_input {
    struct cf_input in; /* first: the cf_input handed out is this struct */
    gzFile gz;
    char *path;
    size_t max_line;
    struct chunk *cur;   /* the chunk being read from */
    struct chunk *spare; /* released chunks, free for the next read */
    size_t chunk_pos;
    size_t chunk_end;
    char *acc; /* a line spanning chunks; capacity max_line + 1 */
    size_t acc_len;
    bool overlong; /* the line being read has lost bytes past acc */
    bool eof;
    bool started; /* the first chunk has been read */
    bool failed;  /* a read error: err says why, every read() now fails */
    int64_t line_no;
    char err[256];
};

static void acc_append(struct file_input *fi, const char *s, size_t n) {
    size_t room = fi->max_line + 1 - fi->acc_len;
    if (n > room) {
        fi->overlong = true;
        n = room;
    }
    memcpy(fi->acc + fi->acc_len, s, n);
    fi->acc_len += n;
}

static void chunk_retain(struct cf_hold *h) {
    ((struct chunk *)h)->refs++;
}

static void chunk_release(struct cf_hold *h) {
    struct chunk *c = (struct chunk *)h;
    if (--c->refs == 0 && c != c->fi->cur) {
        c->next = c->fi->spare;
        c->fi->spare = c;
    }
}

static struct chunk *chunk_new(struct file_input *fi) {
    struct chunk *c = cf_malloc(sizeof *c + CHUNK_BYTES);
    if (c) *c = (struct chunk){{chunk_retain, chunk_release}, fi, 0, NULL};
    return c;
}

/* Makes fi->cur a chunk nobody holds, for the next read to fill: false
 * when a new one was needed and no memory was left. */
static bool free_chunk(struct file_input *fi) {
    struct chunk *c = fi->cur;
    if (!c->refs) return true;
    if (fi->spare) {
        c = fi->spare;
        fi->spare = c->next;
    } else if (!(c = chunk_new(fi))) {
        return false;
    }
    fi->cur = c; /* the old one joins spare when its holders let go */
    return true;
}

/* Turns a complete line into a record.  Blank lines are records too:
 * the engine counts them rather than have them vanish here. */
static void make_record(struct file_input *fi, const char *data, size_t len,
                        struct cf_record *rec) {
    bool overlong = fi->overlong;
    fi->line_no++;
    fi->acc_len = 0;
    fi->overlong = false;
    if (!overlong && len > 0 && data[len - 1] == '\r') len--;
    rec->defect = NULL;
    rec->truncated = false;
    if (overlong || len > fi->max_line) {
        rec->defect = CF_DEFECT_LINE_TOO_LONG;
        rec->truncated = true;
        if (len > fi->max_line) len = fi->max_line;
    }
    rec->data = data;
    rec->len = len;
    /* a line assembled in acc is valid only until the next read */
    rec->hold = data == fi->acc ? NULL : &fi->cur->hold;
    rec->pos.source = fi->path;
    rec->pos.partition = -1;
    rec->pos.offset = fi->line_no;
}

/* zlib prefixes its messages with the path it was given ("<fd:3>" for
 * stdin); the reason is what follows, the file is named by the caller. */
static const char *zlib_reason(const char *msg, const char *path) {
    size_t n = strlen(path);
    const char *end;
    if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
        return msg + n + 2;
    if (strncmp(msg, "<fd:", 4) == 0 && (end = strstr(msg, ">: ")) != NULL)
        return end + 3;
    return msg;
}

static bool ends_in_gz(const char *path) {
    size_t n = strlen(path);
    return n >= 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* Called once, on the first chunk of the input. */
static void first_chunk(struct file_input *fi) {
    fi->started = true;
    /* A UTF-8 byte order mark (Windows editors, PowerShell's Out-File)
     * would otherwise make the first event invalid JSON.  Only here: a
     * BOM anywhere else is in the data, and the decoder rejects it. */
    if (fi->chunk_end >= 3 && memcmp(fi->cur->data, "\xef\xbb\xbf", 3) == 0)
        fi->chunk_pos = 3;
    /* zlib reads anything that is not gzip as plain text without a word.
     * Read it (a browser that undid the transfer encoding keeps the .gz
     * name, and the events are still wanted), but say so: a file that
     * is really something else (zip, bzip2) then shows up as one dead
     * letter per line with this warning naming the cause. */
    if (ends_in_gz(fi->path) && gzdirect(fi->gz))
        fprintf(stderr,
                "chainfuse: warning: %s ends in .gz but is not gzip data; "
                "reading it as plain text\n",
                fi->path);
}

static cf_io_status file_read(struct cf_input *in, struct cf_record *rec) {
    struct file_input *fi = in->ctx;
    if (fi->failed) return CF_IO_FAIL;
    for (;;) {
        const char *start, *nl;
        size_t avail;
        if (fi->chunk_pos == fi->chunk_end) {
            int n;
            if (fi->eof) {
                if (fi->acc_len > 0 || fi->overlong) {
                    make_record(fi, fi->acc, fi->acc_len, rec);
                    return CF_IO_OK;
                }
                return CF_IO_EOF;
            }
            /* a chunk still held is not overwritten; without memory
             * for another, the engine is asked to come back once it
             * has given some back (it releases batches meanwhile) */
            if (!free_chunk(fi)) return CF_IO_RETRY;
            n = gzread(fi->gz, fi->cur->data, (unsigned)CHUNK_BYTES);
            if (n <= 0) {
                /* A gzip stream cut short reads as a plain end of file
                 * here; only gzerror() tells the two apart. */
                int zerr;
                const char *msg = gzerror(fi->gz, &zerr);
                if (n == 0 && (zerr == Z_OK || zerr == Z_STREAM_END)) {
                    fi->eof = true;
                    continue;
                }
                snprintf(fi->err, sizeof fi->err,
                         "cannot read %s after line %lld: %s%s",
                         strcmp(fi->path, "-") == 0 ? "standard input"
                                                    : fi->path,
                         (long long)fi->line_no, zlib_reason(msg, fi->path),
                         zerr == Z_BUF_ERROR ? " (the gzip data is cut short)"
                         : zerr == Z_DATA_ERROR ? " (the gzip data is corrupt)"
                                                : "");
                fi->failed = true;
                /* The line the data stopped in is handed over, marked,
                 * so it is dead-lettered and counted rather than lost;
                 * the next read() reports the error. */
                if (fi->acc_len > 0 || fi->overlong) {
                    make_record(fi, fi->acc, fi->acc_len, rec);
                    rec->defect = CF_DEFECT_TRUNCATED_INPUT;
                    rec->truncated = true;
                    return CF_IO_OK;
                }
                return CF_IO_FAIL;
            }
            fi->chunk_pos = 0;
            fi->chunk_end = (size_t)n;
            if (!fi->started) first_chunk(fi);
            continue;
        }
        start = fi->cur->data + fi->chunk_pos;
        avail = fi->chunk_end - fi->chunk_pos;
        nl = memchr(start, '\n', avail);
        if (!nl) {
            acc_append(fi, start, avail);
            fi->chunk_pos = fi->chunk_end;
            continue;
        }
        fi->chunk_pos += (size_t)(nl - start) + 1;
        if (fi->acc_len == 0 && !fi->overlong) {
            make_record(fi, start, (size_t)(nl - start), rec);
        } else {
            acc_append(fi, start, (size_t)(nl - start));
            make_record(fi, fi->acc, fi->acc_len, rec);
        }
        return CF_IO_OK;
    }
}

static void file_close(struct cf_input *in) {
    struct file_input *fi;
    if (!in) return;
    fi = in->ctx;
    if (fi->gz) gzclose(fi->gz);
    cf_free(fi->path);
    cf_free(fi->cur);
    while (fi->spare) {
        struct chunk *c = fi->spare;
        fi->spare = c->next;
        cf_free(c);
    }
    cf_free(fi->acc);
    cf_free(fi);
}

static const struct cf_input_ops file_input_ops = {
    .name = "file",
    .read = file_read,
    .commit = NULL, /* a file cannot be told what was processed */
    .close = file_close,
};

struct cf_input *cf_file_input_open(const char *path, size_t max_line_bytes,
                                    char *errstr, size_t errstr_size) {
    struct file_input *fi = NULL;
    struct stat st;
    int fd = -1;

    if (!path || !*path) {
        cf_seterr(errstr, errstr_size, CF_ERR,
                  "no input path given (use \"-\" for stdin)");
        goto fail;
    }
    if (!(fi = cf_calloc(1, sizeof *fi))) goto nomem;
    fi->in.ops = &file_input_ops;
    fi->in.ctx = fi;
    fi->max_line = max_line_bytes ? max_line_bytes : DEFAULT_MAX_LINE;
    if (!(fi->path = cf_strdup(path)) || !(fi->cur = chunk_new(fi)) ||
        !(fi->acc = cf_malloc(fi->max_line + 1)))
        goto nomem;
    if (strcmp(path, "-") == 0) {
        /* gzclose closes the descriptor; keep stdin itself open. */
        if ((fd = dup(STDIN_FILENO)) < 0 || !(fi->gz = gzdopen(fd, "rb"))) {
            cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot read stdin: %s",
                      strerror(errno));
            if (fd >= 0) close(fd);
            goto fail;
        }
    } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* gzopen() accepts a directory and fails only at the first read;
         * say so before anything runs. */
        cf_seterr(errstr, errstr_size, CF_ERR_IO,
                  "cannot read %s: it is a directory", path);
        goto fail;
    } else if (!(fi->gz = gzopen(path, "rb"))) {
        cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot open %s: %s", path,
                  errno ? strerror(errno) : "out of memory");
        goto fail;
    }
    gzbuffer(fi->gz, (unsigned)ZLIB_BUFFER_BYTES);
    return &fi->in;
nomem:
    cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
              "out of memory opening input %s", path);
fail:
    if (fi) file_close(&fi->in);
    return NULL;
}

const char *cf_file_input_error(const struct cf_input *in) {
    if (!in || in->ops != &file_input_ops) return "";
    return ((const struct file_input *)in->ctx)->err;
}
