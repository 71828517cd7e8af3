/*
 * entity_norm.h - entity values made comparable for linking alerts.
 *
 * The same account or machine is written many ways across log sources:
 * "PANDALAB\pedro", "pedro@pandalab.com", "pedro"; "MKT01.pandalab.com"
 * and "MKT01".  Normalisation maps them to one key, and recognises values
 * shared by everything (SYSTEM, LOCAL SERVICE, '-', loopback addresses,
 * localhost, well-known logon ids) that must never link alerts.
 *
 * Called by fusion (engine/fusion.c) for every alert.  Pure functions:
 * thread safe, no allocation.
 */
#ifndef CF_ENTITY_NORM_H
#define CF_ENTITY_NORM_H

#include <stddef.h>
#include <stdbool.h>

#include "alert.h"

/* Longest normalised value kept; longer values are cut (they still
 * compare equal when equal). */
#define CF_ENTITY_NORM_MAX 256

/*
 * Normalises `value` of entity `kind` into out (NUL-terminated, at most
 * out_size - 1 bytes): lowercase everywhere; users lose their domain
 * ("DOMAIN\user", "user@domain" -> "user"); host names lose their domain
 * ("mkt01.pandalab.com" -> "mkt01") unless they are IP addresses;
 * IPv4-mapped IPv6 addresses become IPv4; GUIDs lose their braces.
 * Returns the length written, or 0 when the value must never link (empty,
 * placeholder, built-in shared account, loopback, localhost); out then
 * holds "".
 */
size_t cf_entity_normalize(enum cf_entity_kind kind, const char *value,
                           char *out, size_t out_size);

/* Whether alerts sharing an entity of this kind are linked.  Process
 * image paths (cmd.exe, powershell.exe) are shared by everyone, so they
 * are recorded but never link. */
bool cf_entity_kind_links(enum cf_entity_kind kind);

/* Plural key for incident records: "hosts", "users", "ips" (source and
 * destination addresses share one list), ... */
const char *cf_entity_kind_plural(enum cf_entity_kind kind);

#endif
