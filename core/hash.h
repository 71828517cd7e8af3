/*
 * hash.h - chainfuse's non-cryptographic hashes: FNV-1a over bytes, 64
 * bits (http://www.isthe.com/chongo/tech/comp/fnv/), for keys built in
 * parts; and cf_hash_words, eight bytes a step, for what is hashed on
 * the per-event path (event field names, the routing cache's key, the
 * matcher's scan memo), where FNV's multiply per byte costs more than
 * the work it serves.
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
#include <stdbool.h>
#include <string.h>

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

/* The last n (1..7) bytes of a string as the low bytes of a word, the
 * rest zero: what memcpy(&w, p, n) into a zeroed w gives, without its
 * variable-length store, which the next 8-byte load of w has to wait
 * for (store forwarding fails on it: that stall was a fifth of the
 * decoder's time).  Overlapping fixed-size loads read only p[0..n). */
static inline uint64_t cf_load_tail(const unsigned char *p, size_t n) {
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return lo | (uint64_t)hi << (8 * (n - 4));
    }
    return p[0] | (uint64_t)p[n / 2] << (8 * (n / 2)) |
           (uint64_t)p[n - 1] << (8 * (n - 1));
}

/* Whether a[0..n) and b[0..n) are equal: inline for up to 32 bytes
 * (names, hosts, accounts, the memo's short values: overlapping words,
 * no loop, no call), memcmp beyond, where the library's vector loop
 * wins.  The per-event paths compare after hashes agreed, where a call
 * to memcmp costs more than the comparison. */
static inline bool cf_bytes_equal(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    if (n >= 8 && n <= 32) {
        uint64_t u0, v0, u1, v1;
        memcpy(&u0, x, 8);
        memcpy(&v0, y, 8);
        memcpy(&u1, x + n - 8, 8);
        memcpy(&v1, y + n - 8, 8);
        uint64_t d = (u0 ^ v0) | (u1 ^ v1);
        if (n > 16) {
            uint64_t u2, v2, u3, v3;
            memcpy(&u2, x + 8, 8);
            memcpy(&v2, y + 8, 8);
            memcpy(&u3, x + n - 16, 8);
            memcpy(&v3, y + n - 16, 8);
            d |= (u2 ^ v2) | (u3 ^ v3);
        }
        return d == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t u0, v0, u1, v1;
        memcpy(&u0, x, 4);
        memcpy(&v0, y, 4);
        memcpy(&u1, x + n - 4, 4);
        memcpy(&v1, y + n - 4, 4);
        return ((u0 ^ v0) | (u1 ^ v1)) == 0;
    }
    if (n < 4)
        return n == 0 ||
               (x[0] == y[0] && x[n / 2] == y[n / 2] && x[n - 1] == y[n - 1]);
    return memcmp(a, b, n) == 0;
}

/* s[0..n) eight bytes at a time (rustc's FxHash step), then murmur3's
 * 64-bit finaliser so that every output bit depends on every input bit.
 * Unkeyed and easily made to collide by crafted input: use it only
 * where a collision costs time, never correctness (entries are compared
 * in full).  Its uses are bounded: event names are looked up in tables
 * built from rule and config names, the scan memo is direct-mapped (a
 * collision is a miss, never a longer probe), and the routing cache
 * (rules/logsource.c) starts over once 3/4 of its 1,024 slots are used. */
static inline uint64_t cf_hash_words(uint64_t seed, const void *s, size_t n) {
    const unsigned char *p = s;
    const uint64_t k = UINT64_C(0x517cc1b727220a95);
    uint64_t h = seed ^ ((uint64_t)n * k), w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (((h << 5) | (h >> 59)) ^ w) * k;
    }
    if (n) h = (((h << 5) | (h >> 59)) ^ cf_load_tail(p, n)) * k;
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    return h ^ (h >> 33);
}

/* 32 bits for the name tables that store 32-bit hashes (struct
 * cf_event_field.name_hash and the tables looked up by it): every event
 * field name is hashed as it is decoded, so eight bytes a step.  The
 * finaliser makes the low bits, which a small table indexes by, depend
 * on every input bit. */
static inline uint32_t cf_hash_name(const char *s, size_t len) {
    return (uint32_t)cf_hash_words(0, s, len);
}

#endif
