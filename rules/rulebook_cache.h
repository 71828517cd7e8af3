/*
 * rulebook_cache.h - on-disk cache of parsed rule files, private to the
 * rule loader (rulebook.c): a warm start reads each rule file's parse
 * outcome (its rules, correlations, rejections...; encoded by the loader
 * with rule_codec.h) instead of parsing its YAML again.
 *
 * One cache file per cf_rulebook_load() call (<dir>/<hex key>.rules), the
 * key covering the chainfuse build (its ELF build id, so any change of
 * the parser misses) and the versions of the libraries parsing goes
 * through (libyaml, jansson, PCRE2, OpenSSL: linked dynamically, an
 * upgrade changes no build id), the `placeholders` config (the only config the
 * parse reads), the rule path as given and, for a relative one, the
 * working directory.  Inside, one entry per rule file: its path, a
 * SHA-256 of its content, the stat of the file it was read from, and the
 * encoded outcome; and one listing per directory: its path, its stat and
 * the names the loader kept, in its order.
 *
 * An entry is served only for the same path whose content is known to be
 * the same: its stat (device, inode, size, mtime and ctime to the
 * nanosecond) is unchanged, and the file was last verified more than
 * CF_RBC_RACY_NS after its last change.  ctime cannot be set by a user,
 * so an edit that restores size and mtime still changes it; the second
 * condition is git's "racy clean" rule: a file changed within the same
 * timestamp tick as it was read could look unchanged, so such an entry
 * is checked by content every time until it is old enough.  Anything
 * else is checked by reading the file and comparing the SHA-256; an
 * equal content refreshes the entry, a different one is parsed.
 *
 * A listing is served on the same terms, without the content check: a
 * directory's mtime and ctime change whenever a name in it is added,
 * removed or renamed, so an unchanged stat (past the racy window) means
 * the same names; otherwise the directory is read again.  It saves the
 * directory reads (getdents), 6% of a warm start with SigmaHQ's 484
 * folders: each name's own stat is still taken, so a file edited in
 * place, or a name now another file, directory or link, is still seen.
 *
 * The whole file carries a checksum of its body (cf_cache_sum): a damaged or
 * truncated file is reported on stderr and ignored (every rule file is parsed
 * and the cache rewritten).  Writes go to a temporary file renamed into place;
 * a cache that cannot be written is reported, never fatal.
 *
 * Threading: one loader thread per cache object; no shared state.
 */
#ifndef CF_RULEBOOK_CACHE_H
#define CF_RULEBOOK_CACHE_H

#include <jansson.h>
#include <sys/stat.h>

#include "common.h"

/* How long after its last change a file's stat is trusted: timestamps
 * come from a coarse clock (a tick of a few ms; whole seconds on some
 * file systems), so 2 s is well past any tick. */
#define CF_RBC_RACY_NS 2000000000LL

struct cf_rbcache;

/* Opens the cache for loading `root` (as given to cf_rulebook_load).
 * NULL when `dir` is NULL or "" (no cache), or out of memory; a missing
 * file gives an empty cache, an unreadable one an empty cache and a
 * warning on stderr. */
struct cf_rbcache *cf_rbcache_open(const char *dir, const char *root,
                                   const json_t *placeholders);

/* The stored outcome of the rule file at `path` whose stat is `st`, or
 * NULL.  When the content had to be read to decide and was not the
 * stored one, *text (cf_free) and *text_len hold it, so the caller
 * parses what was compared; otherwise *text is NULL.  A hit is kept in
 * the cache; the blob stays valid until cf_rbcache_close(). */
const void *cf_rbcache_lookup(struct cf_rbcache *c, const char *path,
                              const struct stat *st, size_t *blob_len,
                              char **text, size_t *text_len);

/* The last hit, for `path`, could not be used after all (its outcome did
 * not decode): drops it, and says so on stderr. */
void cf_rbcache_reject_last(struct cf_rbcache *c, const char *path);

/* Stores the outcome of parsing text[0..len) read from `path` (stat
 * `st`).  Borrows everything.  Out of memory stores nothing. */
void cf_rbcache_put(struct cf_rbcache *c, const char *path,
                    const struct stat *st, const char *text, size_t len,
                    const void *blob, size_t blob_len);

/* The names the loader kept of directory `path` (stat `st`, of the
 * directory it has open) when last listed, each NUL-terminated, in
 * names[0..*names_len), if the directory is known unchanged since (see
 * above); else NULL.  A hit is kept in the cache; the names stay valid
 * until cf_rbcache_close(). */
const char *cf_rbcache_dir_lookup(struct cf_rbcache *c, const char *path,
                                  const struct stat *st, size_t *names_len);

/* Stores the listing of `path` (stat `st`) that the loader made: its
 * names, each NUL-terminated.  Borrows everything; out of memory stores
 * nothing. */
void cf_rbcache_dir_put(struct cf_rbcache *c, const char *path,
                        const struct stat *st, const char *names,
                        size_t names_len);

/* Writes the cache when an entry changed, was added or was not used,
 * and frees it.  `complete`: the load went through (a failed one writes
 * nothing, since files it did not reach would drop out).  NULL is a
 * no-op. */
void cf_rbcache_close(struct cf_rbcache *c, bool complete);

#endif
