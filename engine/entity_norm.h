/*
 * entity_norm.h - entity values made comparable for linking alerts.
 *
 * The same account or machine is written many ways across log sources:
 * "PANDALAB\pedro", "pedro@pandalab.com", "PANDALAB.COM\pedro";
 * "MKT01.pandalab.com" and "MKT01".  Normalisation maps them to one key,
 * and recognises values shared by everything (SYSTEM, LOCAL SERVICE, '-',
 * loopback addresses, localhost, well-known logon ids) that must never
 * link alerts.
 *
 * An account keeps its domain, so that "bchen" of two estates are two
 * accounts: the key is "user@dns.domain" when the DNS domain is known,
 * "netbios\user" when only a NetBIOS domain is and it cannot be resolved,
 * "user" when the value names no domain.  A NetBIOS domain resolves to a
 * DNS domain through struct cf_domains: pairs configured
 * (identity.domains) or learned from events that carry both names.
 *
 * Called by fusion (engine/fusion.c) for every alert.  The normalising
 * functions are pure (thread safe, no allocation) given the domains they
 * read; a struct cf_domains belongs to one fusion instance.
 */
#ifndef CF_ENTITY_NORM_H
#define CF_ENTITY_NORM_H

#include <stddef.h>
#include <stdbool.h>

#include "alert.h"
#include "config.h"
#include "event.h"

struct cf_domains; /* below */

/* Longest normalised value kept; longer values are cut (they still
 * compare equal when equal). */
#define CF_ENTITY_NORM_MAX 256

/*
 * Normalises `value` of entity `kind` into out (NUL-terminated, at most
 * out_size - 1 bytes): lowercase everywhere; accounts keyed by user and
 * domain as above ("DOMAIN.COM\user", "user@domain.com" and
 * "DOMAIN.COM\user@DOMAIN.COM" -> "user@domain.com"; "DOMAIN\user" ->
 * "domain\user"); host names lose their domain ("mkt01.pandalab.com" ->
 * "mkt01") unless they are IP addresses; IPv4-mapped IPv6 addresses become
 * IPv4; GUIDs lose their braces.  Returns the length written, or 0 when
 * the value must never link (empty, placeholder, built-in shared account,
 * loopback, localhost); out then holds "".
 */
size_t cf_entity_normalize(enum cf_entity_kind kind, const char *value,
                           char *out, size_t out_size);

/* The same, resolving an account's NetBIOS domain to its DNS domain with
 * `dom` (may be NULL) in the context of `host`, the alert's host as
 * written (may be NULL): "ACME\bchen" on "WS03.acme.local" ->
 * "bchen@acme.local" (see cf_domains_resolve). */
size_t cf_entity_normalize_in(const struct cf_domains *dom,
                              enum cf_entity_kind kind, const char *value,
                              const char *host, char *out, size_t out_size);

/* Whether an entity key matches a configured one (never_link,
 * suppressions), both normalised: equal, or, for accounts, `configured`
 * names no domain and `key` is that user in any domain, or `configured`
 * is "netbios\user" and `key` that user in the DNS domain `dom` resolves
 * the NetBIOS name to. */
bool cf_entity_matches(const struct cf_domains *dom, enum cf_entity_kind kind,
                       const char *configured, const char *key);

/*
 * NetBIOS <-> DNS domain pairs one engine knows.  Configured pairs
 * (identity.domains) are authoritative; learned pairs come from events
 * that carry both names (when identity.learn_domains):
 *  - a machine account on its own host: SubjectUserName "WS03$",
 *    SubjectDomainName "ACME" on host "WS03.acme.local";
 *  - a domain SID (S-1-5-21-a-b-c) seen once with a NetBIOS and once with
 *    a DNS domain name (4624 logons write either, 4768 the DNS one);
 *  - an account of domain ACME (Sysmon's User "ACME\bchen", Security's
 *    *DomainName) on a host whose DNS domain starts with that name
 *    ("WS03.acme.local"), the convention nearly every estate follows.
 * Well-known domains (NT AUTHORITY, BUILTIN, ...) and local accounts (the
 * domain is the host's own name) teach nothing.  A NetBIOS name paired
 * with two DNS domains (two estates both called ACME) is ambiguous and
 * resolves only in the context of a host of one of them.  Bounded: past
 * CF_DOMAINS_MAX pairs or SIDs, new ones are refused and counted.
 */
#define CF_DOMAINS_MAX 1024
struct cf_domains;

/* From cfg->identity (borrowed for the call).  NULL with errstr when a
 * configured pair is not a NetBIOS name and a DNS name, or out of
 * memory. */
struct cf_domains *cf_domains_new(const struct cf_config *cfg, char *errstr,
                                  size_t errstr_size);
void cf_domains_destroy(struct cf_domains *d); /* NULL is a no-op */

/* Learns from a decoded event's account, domain, SID and host fields. */
void cf_domains_learn_event(struct cf_domains *d, const struct cf_event *ev);

/* The names of the fields cf_domains_learn_event reads (*n of them;
 * static), and the same learning given first[j], the index of the first
 * field named names[j] (-1 when none), found already: by
 * cf_entity_locate's pass over the event (cf_entity_map_also). */
const char *const *cf_domains_learn_names(size_t *n);
void cf_domains_learn_found(struct cf_domains *d, const struct cf_event *ev,
                            const int *first);

/* Learns from an account and host as written (an alert's entities). */
void cf_domains_learn_account(struct cf_domains *d, const char *account,
                              const char *host);

/* The DNS domain the lowercase NetBIOS name `netbios` stands for, for an
 * account seen on a host of DNS domain `suffix` (lowercase; NULL when
 * unknown), or NULL: a configured pair; else the host's own domain when
 * learned for that name or when it starts with it ("acme" on
 * "acme.local"); else the one learned domain the host's is a subdomain
 * of; else, with no host domain, the only one learned. */
const char *cf_domains_resolve(const struct cf_domains *d, const char *netbios,
                               const char *suffix);

/* A number that changes (at least) whenever a pair or an account is
 * added or changed: an account normalised (cf_entity_normalize_in) under one
 * generation normalises the same while it lasts, so callers may keep
 * the answer. */
uint64_t cf_domains_generation(const struct cf_domains *d);

/* Counters: pairs configured and learned, pairs and SIDs refused at the
 * bound, ambiguous NetBIOS names. */
void cf_domains_stats(const struct cf_domains *d, json_t *obj);

/* Whether alerts sharing an entity of this kind are linked.  Process
 * image paths (cmd.exe, powershell.exe) are shared by everyone, so they
 * are recorded but never link. */
bool cf_entity_kind_links(enum cf_entity_kind kind);

/* Plural key for incident records: "hosts", "users", "ips" (source and
 * destination addresses share one list), ... */
const char *cf_entity_kind_plural(enum cf_entity_kind kind);

struct cf_ckpt_w;
struct cf_ckpt_r;

/* The learned pairs, domain SIDs and accounts in a checkpoint
 * (engine/ckpt.h); cf_domains_load adds them to a new cf_domains (its
 * configured pairs stay as this run's configuration says).  Failure
 * is r->bad or r->nomem. */
void cf_domains_save(const struct cf_domains *d, struct cf_ckpt_w *w);
void cf_domains_load(struct cf_domains *d, struct cf_ckpt_r *r);

#endif
