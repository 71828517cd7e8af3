/*
 * rulebook_cache.c - on-disk cache of parsed rule files (see
 * rulebook_cache.h).  Opened and closed once per cf_rulebook_load() by
 * the loader's thread.
 *
 * File layout (native endianness; the key covers the build):
 *   "CFRB0003" | key[32] | u64 body_len | u64 cf_cache_sum(body) | body
 *   body: u64 n | n entries of
 *     str path | u64 dev, ino, size, mtime_s, mtime_ns, ctime_s, ctime_ns |
 *     u64 verified_ns | sha256(content)[32] | u64 blob_len | blob
 *   then u64 n_dirs | n_dirs directory listings of
 *     str path | the same seven u64 of the directory | u64 verified_ns |
 *     u64 names_len | names (each NUL-terminated, in the loader's order)
 * (all u64 fixed 8 bytes; str: u64 length plus one, bytes).  Entries and
 * listings are in the order the loader reached them, which is the order
 * it reaches them next time, so a lookup is one comparison unless files
 * came or went.
 */
#include "rulebook_cache.h"

#include <errno.h>
#include <fcntl.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <openssl/crypto.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ruleset_cache.h"
#include "yaml_json.h"

static const char rbc_magic[8] = {'C', 'F', 'R', 'B', '0', '0', '0', '3'};
#define HASH_LEN 32
#define HEADER_LEN (8 + HASH_LEN + 8 + 8)

/* What identifies a file's state, as stored. */
struct fstate {
    uint64_t dev, ino, size, mtime_s, mtime_ns, ctime_s, ctime_ns;
};

/* A rule file's entry, or a directory's listing (no hash; its blob is
 * the names, each NUL-terminated). */
struct entry {
    const char *path; /* into the old file's bytes, or owned (`owned`) */
    size_t path_len;
    struct fstate st;
    int64_t verified_ns; /* when the content was last read (or before) */
    unsigned char hash[HASH_LEN];
    const void *blob; /* into the old file's bytes, or owned */
    size_t blob_len;
    bool owned;
};

/* The entries of one kind read from the file (`old`) and those to write
 * (`out`), both in load order. */
struct list {
    struct entry *old;
    size_t n_old, next; /* next: where the next lookup starts */
    /* Into old (served, updated in place) or owned entries of their own
     * (`owned`): pointers, not copies of 3,500 entries of 136 bytes. */
    struct entry **out;
    size_t n_out, cap_out;
};

struct cf_rbcache {
    char *dir, *file;
    uint8_t key[HASH_LEN];
    /* The file, mapped read-only (MAP_FAILED: none); old entries point
     * into it.  Mapped rather than read: the 4.5 MB of SigmaHQ's cache
     * were copied into a buffer and page-faulted in on every start. */
    void *bytes;
    size_t n_bytes;
    struct list files, dirs;
    int64_t now_ns; /* taken before any rule file was read */
    bool dirty, warned;
};

static void warn_damaged(struct cf_rbcache *c, const char *why) {
    if (c->warned) return;
    c->warned = true;
    fprintf(stderr,
            "chainfuse: warning: rule file cache %s is not usable (%s); "
            "reading the rule files again\n",
            c->file, why);
}

static struct fstate fstate_of(const struct stat *st) {
    struct fstate s = {
        (uint64_t)st->st_dev,          (uint64_t)st->st_ino,
        (uint64_t)st->st_size,         (uint64_t)st->st_mtim.tv_sec,
        (uint64_t)st->st_mtim.tv_nsec, (uint64_t)st->st_ctim.tv_sec,
        (uint64_t)st->st_ctim.tv_nsec};
    return s;
}

static bool fstate_equal(const struct fstate *a, const struct fstate *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns &&
           a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

/* The file's last change (mtime or ctime, whichever is later; mtime can
 * be set into the future), in ns. */
static int64_t changed_ns(const struct fstate *s) {
    int64_t m = (int64_t)s->mtime_s * 1000000000LL + (int64_t)s->mtime_ns;
    int64_t c = (int64_t)s->ctime_s * 1000000000LL + (int64_t)s->ctime_ns;
    return m > c ? m : c;
}

/* Racy: changed so close to when it was read that a later change in the
 * same timestamp tick would not show in the stat. */
static bool racy(const struct fstate *s, int64_t verified_ns) {
    return changed_ns(s) >= verified_ns - CF_RBC_RACY_NS;
}

/* ---- the key ------------------------------------------------------------ */

/* Everything the parse depends on besides the files: the build that
 * parses (its build id; without one, the executable's identity and
 * time), the libraries it parses with (YAML, JSON, PCRE2 for checking
 * regexes, OpenSSL for digests), the placeholder values, and where the
 * paths lead. */
static bool make_key(const char *root, const json_t *placeholders,
                     uint8_t key[HASH_LEN]) {
    static const char tag[] = "chainfuse " CF_VERSION " rulebook-cache 2";
    struct cf_buf b = CF_BUF_INIT;
    char cwd[4096] = "";

    cf_buf_append(&b, tag, sizeof tag);
    if (!cf_cache_put_build(&b)) {
        cf_buf_free(&b);
        return false; /* no way to tell builds apart: no cache */
    }
    cf_buf_putc(&b, '\0');
    /* The libraries the parse goes through are linked dynamically: an
     * upgrade of one changes no build id. */
    char versions[128], pcre[64] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    cf_buf_puts(&b, cf_yaml_json_versions(versions, sizeof versions));
    cf_buf_putc(&b, '\0');
    cf_buf_puts(&b, pcre);
    cf_buf_putc(&b, '\0');
    cf_buf_puts(&b, OpenSSL_version(OPENSSL_VERSION));
    cf_buf_putc(&b, '\0');
    if (placeholders)
        cf_buf_json(&b, placeholders, JSON_SORT_KEYS | JSON_COMPACT);
    cf_buf_putc(&b, '\0');
    if (root[0] != '/' && !getcwd(cwd, sizeof cwd)) {
        cf_buf_free(&b);
        return false;
    }
    cf_buf_puts(&b, cwd);
    cf_buf_putc(&b, '\0');
    cf_buf_puts(&b, root);
    bool ok = !b.failed && cf_cache_sha256(b.data, b.len, key);
    cf_buf_free(&b);
    return ok;
}

/* ---- reading the file -------------------------------------------------- */

static void put_fixed(struct cf_buf *b, uint64_t v) {
    cf_buf_append(b, &v, sizeof v);
}

/* Reads one list of entries (with their content hashes when `hashed`)
 * into l->old; false when it does not parse. */
static bool parse_list(const unsigned char **p, const unsigned char *end,
                       struct list *l, bool hashed) {
    uint64_t n, v;
    if (!cf_cache_take_u64(p, end, &n) || n > (uint64_t)(end - *p))
        return false;
    if (!(l->old = cf_calloc(n ? (size_t)n : 1, sizeof *l->old))) return false;
    for (size_t i = 0; i < n; i++) {
        struct entry *e = &l->old[i];
        const unsigned char *at;
        if (!cf_cache_take_u64(p, end, &v) || v == 0 ||
            !(e->path = (const char *)cf_cache_take(p, end, v - 1)))
            return false;
        e->path_len = (size_t)(v - 1);
        /* written as the struct is (write_cache) */
        if (!(at = cf_cache_take(p, end, sizeof e->st))) return false;
        memcpy(&e->st, at, sizeof e->st);
        if (!cf_cache_take_u64(p, end, &v)) return false;
        e->verified_ns = (int64_t)v;
        if (hashed) {
            if (!(at = cf_cache_take(p, end, HASH_LEN))) return false;
            memcpy(e->hash, at, HASH_LEN);
        }
        if (!cf_cache_take_u64(p, end, &v) ||
            !(e->blob = cf_cache_take(p, end, v)))
            return false;
        e->blob_len = (size_t)v;
        /* a listing's names are walked by their NULs */
        if (!hashed && v && ((const char *)e->blob)[v - 1] != '\0')
            return false;
    }
    l->n_old = (size_t)n;
    return true;
}

/* Splits the body into entries and listings; false when it does not
 * parse. */
static bool parse_entries(struct cf_rbcache *c, const unsigned char *body,
                          size_t len) {
    const unsigned char *p = body, *end = body + len;
    return parse_list(&p, end, &c->files, true) &&
           parse_list(&p, end, &c->dirs, false) && p == end;
}

static void drop_old(struct list *l) {
    cf_free(l->old);
    l->old = NULL;
    l->n_old = 0;
}

static void read_cache(struct cf_rbcache *c) {
    int fd = open(c->file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    const char *why = NULL;
    if (fd < 0) {
        if (errno != ENOENT) why = strerror(errno);
        goto done;
    }
    if (fstat(fd, &st) != 0 || st.st_size < HEADER_LEN) {
        why = "too short";
        goto done;
    }
    size_t size = (size_t)st.st_size;
    /* Replaced only by rename (write_cache), never rewritten in place:
     * the mapping keeps the old file whole while entries point into it. */
    c->bytes = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (c->bytes == MAP_FAILED) {
        why = strerror(errno);
        goto done;
    }
    c->n_bytes = size;
    const unsigned char *p = c->bytes;
    uint64_t body_len, crc;
    memcpy(&body_len, p + 8 + HASH_LEN, sizeof body_len);
    memcpy(&crc, p + 8 + HASH_LEN + 8, sizeof crc);
    if (memcmp(p, rbc_magic, sizeof rbc_magic) != 0 ||
        memcmp(p + 8, c->key, HASH_LEN) != 0) {
        why = "not a rule file cache of this key";
    } else if (body_len != size - HEADER_LEN) {
        why = "truncated";
    } else if (cf_cache_sum(p + HEADER_LEN, size - HEADER_LEN) != crc) {
        why = "checksum mismatch";
    } else if (!parse_entries(c, p + HEADER_LEN, size - HEADER_LEN)) {
        why = "entries do not parse";
    }
done:
    if (fd >= 0) close(fd);
    if (why) {
        warn_damaged(c, why);
        drop_old(&c->files);
        drop_old(&c->dirs);
        c->dirty = true; /* rewrite it */
    }
}

struct cf_rbcache *cf_rbcache_open(const char *dir, const char *root,
                                   const json_t *placeholders) {
    struct timespec now;
    if (!dir || !*dir) return NULL;
    struct cf_rbcache *c = cf_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->bytes = MAP_FAILED;
    char hex[2 * HASH_LEN + 1];
    struct cf_buf name = CF_BUF_INIT;
    if (!make_key(root, placeholders, c->key)) goto fail;
    for (size_t i = 0; i < HASH_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", c->key[i]);
    cf_buf_printf(&name, "%s/%s.rules", dir, hex);
    if (!(c->file = cf_buf_steal(&name)) || !(c->dir = cf_strdup(dir)))
        goto fail;
    clock_gettime(CLOCK_REALTIME, &now);
    c->now_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    read_cache(c);
    return c;
fail:
    cf_free(c->file);
    cf_free(c->dir);
    cf_free(c);
    return NULL;
}

/* ---- lookups ------------------------------------------------------------ */

static bool add_out(struct list *l, struct entry *e) {
    if (l->n_out == l->cap_out) {
        size_t cap = l->cap_out ? 2 * l->cap_out
                     : l->n_old ? l->n_old + 16
                                : 256;
        struct entry **p = cf_realloc(l->out, cap * sizeof *p);
        if (!p) return false;
        l->out = p;
        l->cap_out = cap;
    }
    l->out[l->n_out++] = e;
    return true;
}

static struct entry *find_old(struct list *l, const char *path) {
    size_t len = strlen(path);
    for (size_t k = 0; k < l->n_old; k++) {
        size_t i = (l->next + k) % l->n_old;
        struct entry *e = &l->old[i];
        if (e->path_len == len && memcmp(e->path, path, len) == 0) {
            l->next = i + 1;
            return e;
        }
    }
    return NULL;
}

/* A new entry for what was just read from `path` (stat `st`), with a
 * copy of path and blob; `hash`: its content's, or NULL.  Out of memory
 * stores nothing: the file is read again next time. */
static void put_new(struct cf_rbcache *c, struct list *l,
                    const unsigned char *hash, const char *path,
                    const struct stat *st, const void *blob, size_t blob_len) {
    struct entry *e = cf_calloc(1, sizeof *e);
    char *p = cf_strdup(path);
    void *b = cf_malloc(blob_len ? blob_len : 1);
    /* the cache is rewritten without the old entry either way */
    c->dirty = true;
    if (!e || !p || !b) goto fail;
    e->st = fstate_of(st);
    e->verified_ns = c->now_ns;
    e->owned = true;
    e->path_len = strlen(path);
    if (hash) memcpy(e->hash, hash, HASH_LEN);
    if (blob_len) memcpy(b, blob, blob_len);
    e->path = p;
    e->blob = b;
    e->blob_len = blob_len;
    if (add_out(l, e)) return;
fail:
    cf_free(e);
    cf_free(p);
    cf_free(b);
}

const void *cf_rbcache_lookup(struct cf_rbcache *c, const char *path,
                              const struct stat *st, size_t *blob_len,
                              char **text, size_t *text_len) {
    *text = NULL;
    *text_len = 0;
    struct entry *e = find_old(&c->files, path);
    if (!e) return NULL;
    struct fstate now = fstate_of(st);
    if (!fstate_equal(&e->st, &now) || racy(&e->st, e->verified_ns)) {
        /* Not known to be the same: compare the content. */
        char err[512];
        unsigned char hash[HASH_LEN];
        size_t len;
        char *t = cf_read_file(path, &len, err, sizeof err);
        if (!t) return NULL; /* the loader reads it again and says why */
        if (!cf_cache_sha256(t, len, hash) ||
            memcmp(hash, e->hash, HASH_LEN) != 0) {
            *text = t;
            *text_len = len;
            return NULL;
        }
        cf_free(t);
        /* Same content: the entry holds for the new stat, verified now
         * (worth writing when that makes it trusted next time). */
        if (!fstate_equal(&e->st, &now) || !racy(&now, c->now_ns))
            c->dirty = true;
        e->st = now;
        e->verified_ns = c->now_ns;
    }
    if (!add_out(&c->files, e)) return NULL;
    *blob_len = e->blob_len;
    return e->blob;
}

void cf_rbcache_reject_last(struct cf_rbcache *c, const char *path) {
    if (c->files.n_out) c->files.n_out--;
    c->dirty = true;
    fprintf(stderr,
            "chainfuse: warning: rule file cache %s: the entry for %s does "
            "not decode; parsing the file\n",
            c->file, path);
}

void cf_rbcache_put(struct cf_rbcache *c, const char *path,
                    const struct stat *st, const char *text, size_t len,
                    const void *blob, size_t blob_len) {
    unsigned char hash[HASH_LEN];
    if (!cf_cache_sha256(text, len, hash)) {
        c->dirty = true; /* not stored; rewritten without the old entry */
        return;
    }
    put_new(c, &c->files, hash, path, st, blob, blob_len);
}

/* ---- directory listings ---------------------------------------------- */

const char *cf_rbcache_dir_lookup(struct cf_rbcache *c, const char *path,
                                  const struct stat *st, size_t *names_len) {
    struct entry *old = find_old(&c->dirs, path);
    struct fstate now = fstate_of(st);
    /* Only a listing known to be the same is served: no re-reading
     * settles a doubt here, the directory is listed again. */
    if (!old || !fstate_equal(&old->st, &now) ||
        racy(&old->st, old->verified_ns))
        return NULL;
    if (!add_out(&c->dirs, old)) return NULL;
    *names_len = old->blob_len;
    return old->blob;
}

void cf_rbcache_dir_put(struct cf_rbcache *c, const char *path,
                        const struct stat *st, const char *names,
                        size_t names_len) {
    put_new(c, &c->dirs, NULL, path, st, names, names_len);
}

/* ---- writing ------------------------------------------------------------ */

static void put_list(struct cf_buf *body, const struct list *l, bool hashed) {
    put_fixed(body, l->n_out);
    for (size_t i = 0; i < l->n_out; i++) {
        const struct entry *e = l->out[i];
        put_fixed(body, e->path_len + 1);
        cf_buf_append(body, e->path, e->path_len);
        cf_buf_append(body, &e->st, sizeof e->st);
        put_fixed(body, (uint64_t)e->verified_ns);
        if (hashed) cf_buf_append(body, e->hash, HASH_LEN);
        put_fixed(body, e->blob_len);
        cf_buf_append(body, e->blob, e->blob_len);
    }
}

static void write_cache(struct cf_rbcache *c) {
    struct cf_buf body = CF_BUF_INIT;
    struct cf_buf tmpname = CF_BUF_INIT;
    char err[512] = "";
    const char *tmp;
    FILE *f = NULL;

    put_list(&body, &c->files, true);
    put_list(&body, &c->dirs, false);
    if (body.failed) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    uint64_t crc = cf_cache_sum(body.data, body.len);
    if (cf_cache_make_dirs(c->dir) != 0) {
        snprintf(err, sizeof err, "cannot create %.400s: %s", c->dir,
                 strerror(errno));
        goto done;
    }
    /* pid in the name: two engines starting together write apart. */
    cf_buf_printf(&tmpname, "%s.%ld.tmp", c->file, (long)getpid());
    if (tmpname.failed) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    tmp = tmpname.data;
    if (!(f = fopen(tmp, "wb"))) {
        snprintf(err, sizeof err, "cannot write %.400s: %s", tmp,
                 strerror(errno));
        goto done;
    }
    uint64_t body_len = body.len;
    bool bad = fwrite(rbc_magic, sizeof rbc_magic, 1, f) != 1 ||
               fwrite(c->key, HASH_LEN, 1, f) != 1 ||
               fwrite(&body_len, sizeof body_len, 1, f) != 1 ||
               fwrite(&crc, sizeof crc, 1, f) != 1 ||
               fwrite(body.data, 1, body.len, f) != body.len;
    bad = fclose(f) != 0 || bad;
    f = NULL;
    if (bad || rename(tmp, c->file) != 0) {
        snprintf(err, sizeof err, "cannot write %.400s: %s", tmp,
                 strerror(errno ? errno : EIO));
        unlink(tmp);
    }
done:
    if (err[0])
        fprintf(stderr,
                "chainfuse: warning: rule file cache not written (%s); the "
                "next start parses the rule files again\n",
                err);
    cf_buf_free(&body);
    cf_buf_free(&tmpname);
}

static void free_list(struct list *l) {
    for (size_t i = 0; i < l->n_out; i++)
        if (l->out[i]->owned) {
            cf_free((void *)l->out[i]->path);
            cf_free((void *)l->out[i]->blob);
            cf_free(l->out[i]);
        }
    cf_free(l->out);
    cf_free(l->old);
}

void cf_rbcache_close(struct cf_rbcache *c, bool complete) {
    if (!c) return;
    if (complete && (c->dirty || c->files.n_out != c->files.n_old ||
                     c->dirs.n_out != c->dirs.n_old))
        write_cache(c);
    free_list(&c->files);
    free_list(&c->dirs);
    if (c->bytes != MAP_FAILED) munmap(c->bytes, c->n_bytes);
    cf_free(c->file);
    cf_free(c->dir);
    cf_free(c);
}
