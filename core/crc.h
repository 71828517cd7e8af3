/*
 * crc.h - CRC-32 (zlib's) over a buffer of any size: the checksum of the
 * files chainfuse writes and reads back (checkpoints, the rule file
 * cache).  It guards against damage (a torn write, a truncation), not
 * against someone who can write the file.
 *
 * Pure function; thread safe.
 */
#ifndef CF_CRC_H
#define CF_CRC_H

#include <stddef.h>
#include <stdint.h>

/* zlib's crc32 of p[0..n), taken a gigabyte at a time (its length is a
 * uInt). */
uint32_t cf_crc32(const void *p, size_t n);

#endif
