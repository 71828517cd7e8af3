/*
 * hash.h - the one non-cryptographic hash chainfuse uses: FNV-1a over
 * bytes, 64 bits (http://www.isthe.com/chongo/tech/comp/fnv/).
 *
 * For in-memory tables only: event field names, correlation window keys,
 * routing-cache keys, fusion's entity and duplicate maps.  No value is
 * ever written out or compared across runs, so the function may change
 * without a format version.  What must stay stable across runs and
 * versions (alert and incident ids, the rule cache key) is SHA-256, not
 * this.  FNV is not keyed: input crafted to collide lengthens the probes
 * of the tables keyed by event values (correlation windows, fusion's
 * entities); a keyed hash (SipHash) is the remedy if that becomes a
 * threat.
 *
 * Header only; pure functions; thread safe.
 */
#ifndef CF_HASH_H
#define CF_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The FNV-1a 64-bit offset basis: the hash of no bytes. */
#define CF_HASH_INIT UINT64_C(14695981039346656037)

/* Continues hash `h` over s[0..n): hashing a then b this way equals
 * hashing their concatenation, so a key in several parts needs no
 * buffer.  Start from CF_HASH_INIT (or another seed). */
static inline uint64_t cf_hash_continue(uint64_t h, const void *s, size_t n) {
    const unsigned char *p = s;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(1099511628211); /* the FNV 64-bit prime */
    }
    return h;
}

static inline uint64_t cf_hash_bytes(const void *s, size_t n) {
    return cf_hash_continue(CF_HASH_INIT, s, n);
}

/* The bytes of a NUL-terminated string, without the NUL. */
static inline uint64_t cf_hash_str(const char *s) {
    uint64_t h = CF_HASH_INIT;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* 32 bits of cf_hash_bytes, for the name tables that store 32-bit hashes
 * (struct cf_event_field.name_hash and the tables looked up by it).  Not
 * simply the low half: FNV's low bits depend only on the low bits of
 * each input byte, and a small table indexes by the low bits.  The top
 * half of a product with an odd constant (Fibonacci hashing) depends on
 * every bit of the hash. */
static inline uint32_t cf_hash_name(const char *s, size_t len) {
    return (uint32_t)((cf_hash_bytes(s, len) * UINT64_C(0x9e3779b97f4a7c15)) >>
                      32);
}

#endif
