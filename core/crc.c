/*
 * crc.c - cf_crc32 (core/crc.h).
 */
#include "crc.h"

#include <zlib.h>

uint32_t cf_crc32(const void *p, size_t n) {
    const unsigned char *b = p;
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}
