/*
 * ruleset_cache.c - on-disk cache of compiled Hyperscan databases (see
 * ruleset_cache.h).  Called once per cf_ruleset_compile(); thread-safe.
 *
 * File layout (native endianness: the databases themselves are only valid
 * on the platform that built them, which the key already covers):
 *   "CFHSDB02" | key[32] | u64 n_status | status bytes |
 *   u64 n_dbs | per db: u64 size, size bytes | u64 sum
 * where sum is cf_cache_sum() of everything before it: the databases are
 * deserialized only when first needed (struct cf_hs_lazy), so a damaged
 * file must be found when it is opened, while the caller can still
 * compile instead.
 */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include "ruleset_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
/* SHA256_Init and friends are deprecated in OpenSSL 3 in favour of EVP,
 * whose provider lookup is what cf_cache_sha256 avoids; they are still
 * there, and the same digest. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yaml_json.h"

static const char cache_magic[8] = {'C', 'F', 'H', 'S', 'D', 'B', '0', '2'};
/* Room for a cache file's path (the directory is at most 4,096 bytes,
 * cf_cache_make_dirs). */
#define PATH_MAX_CACHE 4200

static const char plan_magic[8] = {'C', 'F', 'P', 'L', 'A', 'N', '0', '2'};

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

bool cf_cache_sha256(const void *data, size_t n,
                     uint8_t out[CF_HS_CACHE_KEY_LEN]) {
    SHA256_CTX ctx;
    return SHA256_Init(&ctx) == 1 && SHA256_Update(&ctx, data, n) == 1 &&
           SHA256_Final(out, &ctx) == 1;
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

uint64_t cf_cache_sum(const void *data, size_t n) {
    const unsigned char *p = data;
    const uint64_t k = UINT64_C(0x9e3779b97f4a7c15);
    uint64_t h[4] = {n, n ^ 1, n ^ 2, n ^ 3}, w;
    for (; n >= 32; p += 32, n -= 32)
        for (int l = 0; l < 4; l++) {
            memcpy(&w, p + 8 * l, 8);
            h[l] = (((h[l] << 29) | (h[l] >> 35)) ^ w) * k;
        }
    for (; n > 0; p++, n--) h[0] = (h[0] ^ *p) * k;
    uint64_t r = h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7);
    r ^= r >> 33;
    r *= UINT64_C(0xff51afd7ed558ccd);
    return r ^ (r >> 33);
}

struct cf_hs_lazy {
    void *map;
    size_t map_size;
    size_t n_dbs;
    struct lazy_db {
        const unsigned char *bytes; /* into map; NULL: empty */
        size_t len, size;           /* serialized, deserialized */
    } * dbs;
};

/* The file is mapped, not read, and kept mapped: each database is
 * deserialized from it when first needed.  Files are only ever replaced
 * by rename (store), never rewritten in place, so the mapping cannot
 * shrink under us. */
cf_err_t cf_hs_cache_open(const char *dir,
                          const uint8_t key[CF_HS_CACHE_KEY_LEN],
                          uint8_t *status, size_t n_status, size_t n_dbs,
                          struct cf_hs_lazy **out) {
    char path[PATH_MAX_CACHE];
    uint64_t n, sum;
    struct stat st;
    cf_err_t rc = CF_ERR_PARSE;
    struct cf_hs_lazy *lz = cf_calloc(1, sizeof *lz);

    *out = NULL;
    if (!lz) return CF_ERR_NOMEM;
    lz->map = MAP_FAILED;
    cache_path(path, sizeof path, dir, key, "hsdb");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = CF_ERR_IO;
        goto done;
    }
    if (fstat(fd, &st) != 0 || st.st_size <= (off_t)sizeof sum) goto done;
    lz->map_size = (size_t)st.st_size;
    lz->map =
        mmap(NULL, lz->map_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (lz->map == MAP_FAILED) {
        rc = CF_ERR_IO;
        goto done;
    }
    const unsigned char *p = lz->map, *at;
    const unsigned char *end = p + lz->map_size - sizeof sum;
    memcpy(&sum, end, sizeof sum);
    if (cf_cache_sum(p, (size_t)(end - p)) != sum) goto done;
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
    if (!(lz->dbs = cf_calloc(n_dbs ? n_dbs : 1, sizeof *lz->dbs))) {
        rc = CF_ERR_NOMEM;
        goto done;
    }
    lz->n_dbs = n_dbs;
    for (size_t i = 0; i < n_dbs; i++) {
        uint64_t len;
        if (!cf_cache_take_u64(&p, end, &len) ||
            !(at = cf_cache_take(&p, end, len)))
            goto done;
        if (len == 0) continue;
        lz->dbs[i].bytes = at;
        lz->dbs[i].len = (size_t)len;
        if (hs_serialized_database_size((const char *)at, (size_t)len,
                                        &lz->dbs[i].size) != HS_SUCCESS)
            goto done;
    }
    rc = p == end ? CF_OK : CF_ERR_PARSE;
done:
    if (fd >= 0) close(fd);
    if (rc != CF_OK) {
        cf_hs_lazy_close(lz);
        return rc;
    }
    *out = lz;
    return CF_OK;
}

size_t cf_hs_lazy_size(const struct cf_hs_lazy *lz, size_t i) {
    return lz->dbs[i].size;
}

bool cf_hs_lazy_load(const struct cf_hs_lazy *lz, size_t i, void *at) {
    return lz->dbs[i].bytes &&
           hs_deserialize_database_at((const char *)lz->dbs[i].bytes,
                                      lz->dbs[i].len,
                                      (hs_database_t *)at) == HS_SUCCESS;
}

void cf_hs_lazy_close(struct cf_hs_lazy *lz) {
    if (!lz) return;
    if (lz->map != MAP_FAILED) munmap(lz->map, lz->map_size);
    cf_free(lz->dbs);
    cf_free(lz);
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
    /* Built whole first: the checksum covers every byte before it. */
    struct cf_buf out = CF_BUF_INIT;
    bool made = false; /* tmp exists */

    cf_buf_append(&out, cache_magic, sizeof cache_magic);
    cf_buf_append(&out, key, CF_HS_CACHE_KEY_LEN);
    n = n_status;
    cf_buf_append(&out, &n, sizeof n);
    cf_buf_append(&out, status, n_status);
    n = n_dbs;
    cf_buf_append(&out, &n, sizeof n);
    for (size_t i = 0; i < n_dbs && !out.failed; i++) {
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
        cf_buf_append(&out, &n, sizeof n);
        cf_buf_append(&out, bytes, size);
        cf_free(bytes);
    }
    if (out.failed) {
        rc = cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        goto done;
    }
    uint64_t sum = cf_cache_sum((const unsigned char *)out.data, out.len);
    if (!(f = open_tmp(dir, key, "hsdb", path, tmp, errstr, errstr_size)))
        goto done;
    made = true;
    bool bad = fwrite(out.data, 1, out.len, f) != out.len ||
               fwrite(&sum, sizeof sum, 1, f) != 1;
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
    if (rc != CF_OK && made) unlink(tmp);
    cf_buf_free(&out);
    return rc;
}

/* ---- the compile plan ---------------------------------------------------
 * "CFPLAN02" | key[32] | u64 len | u64 cf_cache_sum(bytes) | bytes */

cf_err_t cf_plan_cache_load(const char *dir,
                            const uint8_t key[CF_HS_CACHE_KEY_LEN],
                            struct cf_plan_file *pf) {
    char path[PATH_MAX_CACHE];
    struct stat st;
    memset(pf, 0, sizeof *pf);
    cache_path(path, sizeof path, dir, key, "plan");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CF_ERR_IO;
    cf_err_t rc = CF_ERR_PARSE;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) goto done;
    /* Replaced only by rename (cf_plan_cache_store), never rewritten in
     * place: the mapping keeps the file whole. */
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ,
                     MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = CF_ERR_IO;
        goto done;
    }
    pf->map = map;
    pf->map_len = (size_t)st.st_size;
    const unsigned char *p = map, *end = p + pf->map_len, *at;
    uint64_t body, crc;
    if (!(at = cf_cache_take(&p, end, sizeof plan_magic)) ||
        memcmp(at, plan_magic, sizeof plan_magic) != 0 ||
        !(at = cf_cache_take(&p, end, CF_HS_CACHE_KEY_LEN)) ||
        memcmp(at, key, CF_HS_CACHE_KEY_LEN) != 0 ||
        !cf_cache_take_u64(&p, end, &body) ||
        !cf_cache_take_u64(&p, end, &crc) || body != (uint64_t)(end - p) ||
        cf_cache_sum(p, (size_t)body) != crc)
        goto done;
    pf->bytes = p;
    pf->len = (size_t)body;
    rc = CF_OK;
done:
    close(fd);
    if (rc != CF_OK) cf_plan_cache_close(pf);
    return rc;
}

void cf_plan_cache_close(struct cf_plan_file *pf) {
    if (pf->map) munmap(pf->map, pf->map_len);
    memset(pf, 0, sizeof *pf);
}

cf_err_t cf_plan_cache_store(const char *dir,
                             const uint8_t key[CF_HS_CACHE_KEY_LEN],
                             const void *bytes, size_t len, char *errstr,
                             size_t errstr_size) {
    char path[PATH_MAX_CACHE], tmp[PATH_MAX_CACHE + 100];
    FILE *f = open_tmp(dir, key, "plan", path, tmp, errstr, errstr_size);
    if (!f) return CF_ERR_IO;
    uint64_t body = len, crc = cf_cache_sum(bytes, len);
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
