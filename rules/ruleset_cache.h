/*
 * ruleset_cache.h - on-disk cache of compiled Hyperscan databases, private
 * to the rule compiler (ruleset.c).
 *
 * One file per key (<dir>/<hex key>.hsdb) holds a status byte per
 * candidate expression (the compiler's fallback decisions, so a warm start
 * does not redo them) and the serialized databases.  The key is chosen by
 * the caller over everything that changes compilation.  Writes go to a
 * temporary file renamed into place, so concurrent starts never read a
 * half-written file.  Every failure is reported, never fatal: the caller
 * compiles instead.  Thread-safe (no shared state).
 */
#ifndef CF_RULESET_CACHE_H
#define CF_RULESET_CACHE_H

#include <hs/hs.h>

#include "buf.h"
#include "common.h"

#define CF_HS_CACHE_KEY_LEN 32

/* A cache file opened for loading its databases one at a time, when
 * they are first needed (most serve logsources an input never has).
 * Opening checks the whole file (magic, key, layout, checksum) and fills
 * status[0..n_status); CF_ERR_IO when there is no such file,
 * CF_ERR_PARSE when it does not fit or is damaged, CF_ERR_NOMEM. */
struct cf_hs_lazy;
cf_err_t cf_hs_cache_open(const char *dir,
                          const uint8_t key[CF_HS_CACHE_KEY_LEN],
                          uint8_t *status, size_t n_status, size_t n_dbs,
                          struct cf_hs_lazy **out);
/* The bytes database i takes once deserialized; 0 when it is empty. */
size_t cf_hs_lazy_size(const struct cf_hs_lazy *lz, size_t i);
/* Deserializes database i into `at` (cf_hs_lazy_size bytes, 8-aligned);
 * false when Hyperscan refuses it.  Reads only: callers may load
 * different databases at once. */
bool cf_hs_lazy_load(const struct cf_hs_lazy *lz, size_t i, void *at);
void cf_hs_lazy_close(struct cf_hs_lazy *lz); /* NULL is a no-op */

/* Writes the file for `key`, creating `dir` (and parents) if needed.
 * Borrows everything. */
cf_err_t cf_hs_cache_store(const char *dir,
                           const uint8_t key[CF_HS_CACHE_KEY_LEN],
                           const uint8_t *status, size_t n_status,
                           hs_database_t *const *dbs, size_t n_dbs,
                           char *errstr, size_t errstr_size);

/* Appends what identifies the running build to `b`: its GNU build id
 * or, without one, the identity and times of its executable.  False when
 * neither can be had: what the build computes cannot be cached then.
 * Shared by the caches of what chainfuse itself derives (rule files,
 * the compile plan), which any change of the code must miss. */
bool cf_cache_put_build(struct cf_buf *b);

/* The compile plan (ruleset.c): one file per key (<dir>/<hex key>.plan)
 * holding `len` opaque bytes, with a checksum (cf_cache_sum) that a
 * damaged or cut file fails.  Load: the file mapped read-only, its bytes
 * in pf->bytes[0..pf->len) until cf_plan_cache_close(pf) (mapped rather
 * than read: a read copied its 380 kB for SigmaHQ twice, into a buffer
 * and out of it); CF_ERR_IO when there is no such file, CF_ERR_PARSE when
 * it is not whole.  Store: as cf_hs_cache_store. */
struct cf_plan_file {
    void *map; /* NULL: nothing mapped */
    size_t map_len;
    const unsigned char *bytes;
    size_t len;
};
cf_err_t cf_plan_cache_load(const char *dir,
                            const uint8_t key[CF_HS_CACHE_KEY_LEN],
                            struct cf_plan_file *pf);
void cf_plan_cache_close(struct cf_plan_file *pf); /* idempotent */
cf_err_t cf_plan_cache_store(const char *dir,
                             const uint8_t key[CF_HS_CACHE_KEY_LEN],
                             const void *bytes, size_t len, char *errstr,
                             size_t errstr_size);

/* A checksum of a cache file's bytes, on four independent lanes so that
 * it runs at memory speed (the 10 MB of SigmaHQ's databases on every
 * warm start; zlib's crc32 takes several times as long).  Catches what
 * a cache must survive: cut files, overwritten or garbled bytes.  It is
 * written out: it never changes without the files' magic. */
uint64_t cf_cache_sum(const void *data, size_t n);

/* SHA-256 of data[0..n) into out; false when OpenSSL fails.  For the
 * caches' keys (and the rule file cache's content hashes): OpenSSL's
 * SHA-256 functions themselves, not EVP_Digest, whose first call fetches
 * the algorithm from a provider (loading the library's configuration):
 * 1 ms of a 40 ms warm start, for two keys of a few hundred kB.  The
 * digest is the same (caches written before stay valid). */
bool cf_cache_sha256(const void *data, size_t n,
                     uint8_t out[CF_HS_CACHE_KEY_LEN]);

/* mkdir -p `dir` (the configured directory may be several levels deep);
 * 0, or -1 with errno.  Shared with the rule file cache
 * (rulebook_cache.c). */
int cf_cache_make_dirs(const char *dir);

/* Reading a cache file held in memory, never past `end` (a short or
 * damaged file is a miss, not a read out of bounds); shared with
 * rulebook_cache.c.  cf_cache_take: n bytes at *p, advancing it, or NULL
 * when fewer are left.  cf_cache_take_u64: a native u64 the same way. */
const unsigned char *cf_cache_take(const unsigned char **p,
                                   const unsigned char *end, uint64_t n);
bool cf_cache_take_u64(const unsigned char **p, const unsigned char *end,
                       uint64_t *v);

#endif
