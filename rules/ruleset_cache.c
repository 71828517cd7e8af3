/*
 * ruleset_cache.c - on-disk cache of compiled Hyperscan databases (see
 * ruleset_cache.h).  Called once per cf_ruleset_compile(); thread-safe.
 *
 * File layout (native endianness: the databases themselves are only valid
 * on the platform that built them, which the key already covers):
 *   "CFHSDB01" | key[32] | u64 n_status | status bytes |
 *   u64 n_dbs | per db: u64 size, size bytes
 */
#include "ruleset_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char cache_magic[8] = {'C', 'F', 'H', 'S', 'D', 'B', '0', '1'};

static void cache_path(char *buf, size_t size, const char *dir,
                       const uint8_t key[CF_HS_CACHE_KEY_LEN],
                       const char *suffix) {
    char hex[2 * CF_HS_CACHE_KEY_LEN + 1];
    for (size_t i = 0; i < CF_HS_CACHE_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    snprintf(buf, size, "%s/%s.hsdb%s", dir, hex, suffix);
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

/* Reads a u64 at *p, when 8 bytes are left before `end`. */
static bool read_u64(const char **p, const char *end, uint64_t *v) {
    if ((size_t)(end - *p) < sizeof *v) return false;
    memcpy(v, *p, sizeof *v);
    *p += sizeof *v;
    return true;
}

cf_err_t cf_hs_cache_load(const char *dir,
                          const uint8_t key[CF_HS_CACHE_KEY_LEN],
                          uint8_t *status, size_t n_status, hs_database_t **dbs,
                          size_t n_dbs) {
    char path[4200];
    uint64_t n;
    size_t loaded = 0;
    cf_err_t rc = CF_ERR_PARSE;
    struct stat st;

    cache_path(path, sizeof path, dir, key, "");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CF_ERR_IO;
    /* Mapped, not read: the databases (megabytes) are deserialized
     * straight from the page cache instead of copied into the heap
     * first. */
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size > 0)
        map = mmap(NULL, (size_t)st.st_size, PROT_READ,
                   MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return CF_ERR_PARSE;
    const char *p = map, *end = p + st.st_size;
    if ((size_t)(end - p) < sizeof cache_magic + CF_HS_CACHE_KEY_LEN ||
        memcmp(p, cache_magic, sizeof cache_magic) != 0 ||
        memcmp(p + sizeof cache_magic, key, CF_HS_CACHE_KEY_LEN) != 0)
        goto done;
    p += sizeof cache_magic + CF_HS_CACHE_KEY_LEN;
    if (!read_u64(&p, end, &n) || n != n_status || (size_t)(end - p) < n_status)
        goto done;
    if (n_status) memcpy(status, p, n_status);
    p += n_status;
    if (!read_u64(&p, end, &n) || n != n_dbs) goto done;
    for (; loaded < n_dbs; loaded++) {
        uint64_t size;
        dbs[loaded] = NULL;
        if (!read_u64(&p, end, &size) || size > (uint64_t)(end - p)) goto done;
        if (size == 0) continue;
        if (hs_deserialize_database(p, size, &dbs[loaded]) != HS_SUCCESS) {
            dbs[loaded] = NULL;
            goto done;
        }
        p += size;
    }
    rc = CF_OK;
done:
    if (rc != CF_OK) {
        for (size_t i = 0; i < loaded; i++) hs_free_database(dbs[i]);
        for (size_t i = 0; i < n_dbs; i++) dbs[i] = NULL;
    }
    munmap(map, (size_t)st.st_size);
    return rc;
}

cf_err_t cf_hs_cache_store(const char *dir,
                           const uint8_t key[CF_HS_CACHE_KEY_LEN],
                           const uint8_t *status, size_t n_status,
                           hs_database_t *const *dbs, size_t n_dbs,
                           char *errstr, size_t errstr_size) {
    char path[4200], tmp[4300];
    FILE *f = NULL;
    cf_err_t rc = CF_ERR_IO;
    int write_errno = 0;
    uint64_t n;

    if (cf_cache_make_dirs(dir) != 0)
        return cf_seterr(errstr, errstr_size, CF_ERR_IO,
                         "cannot create cache directory %s: %s", dir,
                         strerror(errno));
    cache_path(path, sizeof path, dir, key, "");
    /* pid in the name: two engines starting together write apart. */
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f) {
        cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot write %s: %s", tmp,
                  strerror(errno));
        goto done;
    }
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
