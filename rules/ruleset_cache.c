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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int read_u64(FILE *f, uint64_t *v) {
    return fread(v, sizeof *v, 1, f) == 1 ? 0 : -1;
}

cf_err_t cf_hs_cache_load(const char *dir,
                          const uint8_t key[CF_HS_CACHE_KEY_LEN],
                          uint8_t *status, size_t n_status, hs_database_t **dbs,
                          size_t n_dbs) {
    char path[4200];
    char magic[8];
    uint8_t stored_key[CF_HS_CACHE_KEY_LEN];
    uint64_t n;
    char *bytes = NULL;
    size_t loaded = 0, cap = 0;
    cf_err_t rc = CF_ERR_PARSE;

    cache_path(path, sizeof path, dir, key, "");
    FILE *f = fopen(path, "rb");
    if (!f) return CF_ERR_IO;
    if (fread(magic, sizeof magic, 1, f) != 1 ||
        memcmp(magic, cache_magic, sizeof magic) != 0)
        goto done;
    if (fread(stored_key, sizeof stored_key, 1, f) != 1 ||
        memcmp(stored_key, key, sizeof stored_key) != 0)
        goto done;
    if (read_u64(f, &n) || n != n_status) goto done;
    if (n_status && fread(status, 1, n_status, f) != n_status) goto done;
    if (read_u64(f, &n) || n != n_dbs) goto done;
    for (; loaded < n_dbs; loaded++) {
        uint64_t size;
        dbs[loaded] = NULL;
        if (read_u64(f, &size) || size > ((uint64_t)1 << 34)) goto done;
        if (size == 0) continue;
        /* One buffer for all, grown to the largest: its pages are
         * faulted in once rather than once per database, and the file
         * is never held whole (peak RSS). */
        if (size > cap) {
            cf_free(bytes);
            if (!(bytes = cf_malloc(size))) goto done;
            cap = size;
        }
        if (fread(bytes, 1, size, f) != size) goto done;
        if (hs_deserialize_database(bytes, size, &dbs[loaded]) != HS_SUCCESS) {
            dbs[loaded] = NULL;
            goto done;
        }
    }
    rc = CF_OK;
done:
    if (rc != CF_OK) {
        for (size_t i = 0; i < loaded; i++) hs_free_database(dbs[i]);
        for (size_t i = 0; i < n_dbs; i++) dbs[i] = NULL;
    }
    cf_free(bytes);
    fclose(f);
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
