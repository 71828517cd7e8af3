/*
 * ruleset_cache.c - on-disk cache of compiled Hyperscan databases (see
 * ruleset_cache.h).  Called once per cf_ruleset_compile(); thread-safe.
 *
 * File layout (native endianness: the databases themselves are only valid
 * on the platform that built them, which the key already covers):
 *   "CFHSDB01" | key[32] | u64 n_status | status bytes |
 *   u64 n_dbs | per db: u64 size, size bytes
 */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include "ruleset_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc.h"
#include "yaml_json.h"

static const char cache_magic[8] = {'C', 'F', 'H', 'S', 'D', 'B', '0', '1'};
/* Room for a cache file's path (the directory is at most 4,096 bytes,
 * cf_cache_make_dirs). */
#define PATH_MAX_CACHE 4200

static const char plan_magic[8] = {'C', 'F', 'P', 'L', 'A', 'N', '0', '1'};

struct build_id {
    const unsigned char *bytes;
    size_t len;
};

/* The main program comes first in dl_iterate_phdr's list. */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *arg) {
    struct build_id *id = arg;
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const unsigned char *p =
            (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        const unsigned char *end = p + ph->p_memsz;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
            size_t name = (nh->n_namesz + 3) & ~(size_t)3;
            size_t desc = (nh->n_descsz + 3) & ~(size_t)3;
            const unsigned char *n = p + sizeof *nh;
            if ((size_t)(end - n) < name + desc) break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(n, "GNU", 4) == 0) {
                id->bytes = n + name;
                id->len = nh->n_descsz;
                return 1;
            }
            p = n + name + desc;
        }
    }
    return 1; /* only the main program */
}

bool cf_cache_put_build(struct cf_buf *b) {
    struct build_id id = {NULL, 0};
    struct stat exe;
    dl_iterate_phdr(find_build_id, &id);
    if (id.bytes) {
        cf_buf_append(b, id.bytes, id.len);
        return true;
    }
    if (stat("/proc/self/exe", &exe) != 0) return false;
    uint64_t s[7] = {
        (uint64_t)exe.st_dev,          (uint64_t)exe.st_ino,
        (uint64_t)exe.st_size,         (uint64_t)exe.st_mtim.tv_sec,
        (uint64_t)exe.st_mtim.tv_nsec, (uint64_t)exe.st_ctim.tv_sec,
        (uint64_t)exe.st_ctim.tv_nsec};
    cf_buf_append(b, s, sizeof s);
    return true;
}

/* <dir>/<hex key>.<ext> */
static void cache_path(char *buf, size_t size, const char *dir,
                       const uint8_t key[CF_HS_CACHE_KEY_LEN],
                       const char *ext) {
    char hex[2 * CF_HS_CACHE_KEY_LEN + 1];
    for (size_t i = 0; i < CF_HS_CACHE_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    snprintf(buf, size, "%s/%s.%s", dir, hex, ext);
}

/* mkdir -p: the configured directory may be several levels deep. */
int cf_cache_make_dirs(const char *dir) {
    char path[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path) return -1;
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) return -1;
        path[i] = saved;
    }
    return 0;
}

const unsigned char *cf_cache_take(const unsigned char **p,
                                   const unsigned char *end, uint64_t n) {
    if (n > (uint64_t)(end - *p)) return NULL;
    const unsigned char *at = *p;
    *p += n;
    return at;
}

bool cf_cache_take_u64(const unsigned char **p, const unsigned char *end,
                       uint64_t *v) {
    const unsigned char *at = cf_cache_take(p, end, sizeof *v);
    if (at) memcpy(v, at, sizeof *v);
    return at != NULL;
}

/* Creates `dir` (and parents) and opens the temporary file `tmp` a
 * store writes and then renames to `path` (<dir>/<hex key>.<ext>); NULL
 * with errstr set when it cannot. */
static FILE *open_tmp(const char *dir, const uint8_t key[CF_HS_CACHE_KEY_LEN],
                      const char *ext, char path[PATH_MAX_CACHE],
                      char tmp[PATH_MAX_CACHE + 100], char *errstr,
                      size_t errstr_size) {
    if (cf_cache_make_dirs(dir) != 0) {
        cf_seterr(errstr, errstr_size, CF_ERR_IO,
                  "cannot create cache directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    cache_path(path, PATH_MAX_CACHE, dir, key, ext);
    /* pid in the name: two engines starting together write apart. */
    snprintf(tmp, PATH_MAX_CACHE + 100, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot write %s: %s", tmp,
                  strerror(errno));
    return f;
}

/* The file is mapped, not read: hs_deserialize_database copies each
 * database out of it anyway, and reading 12 MB (SigmaHQ) into a buffer
 * first cost a copy and a page fault per page of the buffer on every
 * warm start.  Files are only ever replaced by rename (store), never
 * rewritten in place, so the mapping cannot shrink under us. */
cf_err_t cf_hs_cache_load(const char *dir,
                          const uint8_t key[CF_HS_CACHE_KEY_LEN],
                          uint8_t *status, size_t n_status, hs_database_t **dbs,
                          size_t n_dbs) {
    char path[PATH_MAX_CACHE];
    uint64_t n;
    size_t loaded = 0, size = 0;
    void *map = MAP_FAILED;
    struct stat st;
    cf_err_t rc = CF_ERR_PARSE;

    cache_path(path, sizeof path, dir, key, "hsdb");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CF_ERR_IO;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) goto done;
    size = (size_t)st.st_size;
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = CF_ERR_IO;
        goto done;
    }
    const unsigned char *p = map, *end = p + size, *at;
    if (!(at = cf_cache_take(&p, end, sizeof cache_magic)) ||
        memcmp(at, cache_magic, sizeof cache_magic) != 0)
        goto done;
    if (!(at = cf_cache_take(&p, end, CF_HS_CACHE_KEY_LEN)) ||
        memcmp(at, key, CF_HS_CACHE_KEY_LEN) != 0)
        goto done;
    if (!cf_cache_take_u64(&p, end, &n) || n != n_status) goto done;
    if (!(at = cf_cache_take(&p, end, n_status))) goto done;
    if (n_status) memcpy(status, at, n_status);
    if (!cf_cache_take_u64(&p, end, &n) || n != n_dbs) goto done;
    for (; loaded < n_dbs; loaded++) {
        uint64_t len;
        dbs[loaded] = NULL;
        if (!cf_cache_take_u64(&p, end, &len) ||
            !(at = cf_cache_take(&p, end, len)))
            goto done;
        if (len == 0) continue;
        if (hs_deserialize_database((const char *)at, (size_t)len,
                                    &dbs[loaded]) != HS_SUCCESS) {
            dbs[loaded] = NULL;
            goto done;
        }
    }
    rc = p == end ? CF_OK : CF_ERR_PARSE;
done:
    if (rc != CF_OK) {
        for (size_t i = 0; i < loaded; i++) hs_free_database(dbs[i]);
        for (size_t i = 0; i < n_dbs; i++) dbs[i] = NULL;
    }
    if (map != MAP_FAILED) munmap(map, size);
    close(fd);
    return rc;
}

cf_err_t cf_hs_cache_store(const char *dir,
                           const uint8_t key[CF_HS_CACHE_KEY_LEN],
                           const uint8_t *status, size_t n_status,
                           hs_database_t *const *dbs, size_t n_dbs,
                           char *errstr, size_t errstr_size) {
    char path[PATH_MAX_CACHE], tmp[PATH_MAX_CACHE + 100];
    FILE *f = NULL;
    cf_err_t rc = CF_ERR_IO;
    int write_errno = 0;
    uint64_t n;

    if (!(f = open_tmp(dir, key, "hsdb", path, tmp, errstr, errstr_size)))
        return CF_ERR_IO;
    n = n_status;
    bool bad = fwrite(cache_magic, sizeof cache_magic, 1, f) != 1 ||
               fwrite(key, CF_HS_CACHE_KEY_LEN, 1, f) != 1 ||
               fwrite(&n, sizeof n, 1, f) != 1 ||
               (n_status && fwrite(status, 1, n_status, f) != n_status);
    n = n_dbs;
    bad = bad || fwrite(&n, sizeof n, 1, f) != 1;
    for (size_t i = 0; i < n_dbs && !bad; i++) {
        char *bytes = NULL;
        size_t size = 0;
        if (dbs[i] &&
            hs_serialize_database(dbs[i], &bytes, &size) != HS_SUCCESS) {
            cf_seterr(errstr, errstr_size, CF_ERR,
                      "hs_serialize_database failed");
            rc = CF_ERR;
            goto done;
        }
        n = size;
        bad = fwrite(&n, sizeof n, 1, f) != 1 ||
              (size && fwrite(bytes, 1, size, f) != size);
        cf_free(bytes);
    }
    int closed = fclose(f);
    f = NULL;
    if (bad || closed != 0 || rename(tmp, path) != 0) {
        write_errno = errno ? errno : EIO;
        goto done;
    }
    rc = CF_OK;
done:
    if (write_errno)
        cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot write %s: %s", tmp,
                  strerror(write_errno));
    if (f) fclose(f);
    if (rc != CF_OK) unlink(tmp);
    return rc;
}

/* ---- the compile plan ---------------------------------------------------
 * "CFPLAN01" | key[32] | u64 len | u64 crc32(bytes) | bytes */

cf_err_t cf_plan_cache_load(const char *dir,
                            const uint8_t key[CF_HS_CACHE_KEY_LEN],
                            unsigned char **bytes, size_t *len) {
    char path[PATH_MAX_CACHE], err[512];
    size_t size;
    *bytes = NULL;
    *len = 0;
    cache_path(path, sizeof path, dir, key, "plan");
    char *data = cf_read_file(path, &size, err, sizeof err);
    if (!data) return CF_ERR_IO;
    const unsigned char *p = (const unsigned char *)data, *end = p + size, *at;
    uint64_t body, crc;
    cf_err_t rc = CF_ERR_PARSE;
    if (!(at = cf_cache_take(&p, end, sizeof plan_magic)) ||
        memcmp(at, plan_magic, sizeof plan_magic) != 0 ||
        !(at = cf_cache_take(&p, end, CF_HS_CACHE_KEY_LEN)) ||
        memcmp(at, key, CF_HS_CACHE_KEY_LEN) != 0 ||
        !cf_cache_take_u64(&p, end, &body) ||
        !cf_cache_take_u64(&p, end, &crc) || body != (uint64_t)(end - p) ||
        cf_crc32(p, (size_t)body) != crc)
        goto done;
    if (!(*bytes = cf_malloc(body ? (size_t)body : 1))) {
        rc = CF_ERR_NOMEM;
        goto done;
    }
    memcpy(*bytes, p, (size_t)body);
    *len = (size_t)body;
    rc = CF_OK;
done:
    cf_free(data);
    return rc;
}

cf_err_t cf_plan_cache_store(const char *dir,
                             const uint8_t key[CF_HS_CACHE_KEY_LEN],
                             const void *bytes, size_t len, char *errstr,
                             size_t errstr_size) {
    char path[PATH_MAX_CACHE], tmp[PATH_MAX_CACHE + 100];
    FILE *f = open_tmp(dir, key, "plan", path, tmp, errstr, errstr_size);
    if (!f) return CF_ERR_IO;
    uint64_t body = len, crc = cf_crc32(bytes, len);
    bool bad = fwrite(plan_magic, sizeof plan_magic, 1, f) != 1 ||
               fwrite(key, CF_HS_CACHE_KEY_LEN, 1, f) != 1 ||
               fwrite(&body, sizeof body, 1, f) != 1 ||
               fwrite(&crc, sizeof crc, 1, f) != 1 ||
               (len && fwrite(bytes, 1, len, f) != len);
    bad = fclose(f) != 0 || bad;
    if (bad || rename(tmp, path) != 0) {
        int e = errno ? errno : EIO;
        unlink(tmp);
        return cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot write %s: %s",
                         tmp, strerror(e));
    }
    return CF_OK;
}
