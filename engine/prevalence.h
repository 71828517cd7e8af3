/*
 * prevalence.h - how common an entity value is across the estate: on how
 * many distinct hosts, and under how many distinct accounts, it was seen
 * over a sliding event-time horizon, in every event (not only alerts).
 *
 * Fusion asks it before linking alerts on different hosts through a
 * shared value: the hash of a system binary, a service account or a
 * gateway address is on every machine and says nothing about an attack;
 * a value seen on two machines does.  See fusion.c for how the answer is
 * used and README "How alerts become incidents".
 *
 * Bounded memory: a fixed table of values (open addressing, a short probe
 * window, the least recently seen value in the window replaced when it is
 * full), each with a capped list of the hosts and accounts it was seen
 * with.  Keys are 64-bit hashes of (kind, normalised value), hosts and
 * accounts 32-bit hashes: a collision can only make a value look more
 * common, never link two different ones.
 *
 * Event time, not arrival: a sighting counts at time t when it was first
 * seen at or before t and last seen no longer than the horizon before t,
 * so events that arrive early (within fusion's lateness) do not change
 * the answer for an alert processed before them (shuffle invariance).
 * A host stops counting once its last sighting is a horizon old (decay).
 *
 * Ownership: owns its table.  Threading: one per fusion instance.
 */
#ifndef CF_PREVALENCE_H
#define CF_PREVALENCE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Distinct hosts and accounts kept per value (about 250 bytes a value).
 * A value seen on more is reported as this many with `saturated`: it is
 * common by any threshold fusion allows (fusion.c). */
#define CF_PREVALENCE_HOSTS 12
#define CF_PREVALENCE_ACCOUNTS 8
#define CF_PREVALENCE_ORGS 4

struct cf_prevalence;

struct cf_prevalence_count {
    uint32_t hosts;    /* distinct hosts at the time asked */
    uint32_t accounts; /* distinct accounts at the time asked */
    uint32_t orgs;     /* distinct organisations (DNS domains) */
    bool saturated;    /* more hosts or accounts than the slots hold */
};

/* max_values: values kept (rounded up to a power of two); horizon: how
 * long a sighting counts, in ms.  NULL when out of memory. */
struct cf_prevalence *cf_prevalence_new(size_t max_values, int64_t horizon);
void cf_prevalence_destroy(struct cf_prevalence *pv); /* NULL is a no-op */

/* Host `host` was seen at time t: counted into the estate. */
void cf_prevalence_see_host(struct cf_prevalence *pv, uint32_t host, int64_t t);

/* Value `key` was seen at time t on host `host` of organisation `org`
 * under account `account` (each 0: not known). */
void cf_prevalence_see(struct cf_prevalence *pv, uint64_t key, uint32_t host,
                       uint32_t org, uint32_t account, int64_t t);

/* Where a sighting went, kept by the caller beside the value (fusion's
 * memo of entity texts): the same value seen again with the same host,
 * organisation and account within the same second changes nothing but
 * the value's recency, which cf_prevalence_see_hinted then updates
 * alone; anything else is cf_prevalence_see's (the hint then renewed).
 * Zeroed: no hint.  A hint is only ever a shortcut to the same result. */
struct cf_prevalence_hint {
    void *slot;   /* the value's slot; NULL: none */
    uint64_t gen; /* the table's generation it was taken in */
    uint64_t key;
    uint32_t host, org, account;
    int64_t lo, hi; /* event times (ms) within the same second */
};
void cf_prevalence_see_hinted(struct cf_prevalence *pv,
                              struct cf_prevalence_hint *hint, uint64_t key,
                              uint32_t host, uint32_t org, uint32_t account,
                              int64_t t);

/* cf_prevalence_see_host with a hint (its slot the host's place in the
 * estate; key, org and account unused). */
void cf_prevalence_see_host_hinted(struct cf_prevalence *pv,
                                   struct cf_prevalence_hint *hint,
                                   uint32_t host, int64_t t);

/* Prevalence of `key` at time t (zeros when never seen or forgotten). */
struct cf_prevalence_count cf_prevalence_get(const struct cf_prevalence *pv,
                                             uint64_t key, int64_t t);

/* Distinct hosts seen at time t, in any value (the estate's size), up to
 * the estate table's capacity. */
uint32_t cf_prevalence_estate(struct cf_prevalence *pv, int64_t t);

/* Bytes held; values tracked; values forgotten to make room. */
size_t cf_prevalence_bytes(const struct cf_prevalence *pv);
size_t cf_prevalence_values(const struct cf_prevalence *pv);
uint64_t cf_prevalence_evicted(const struct cf_prevalence *pv);

/* 32-bit identity of a normalised host or account (0 is "none"). */
uint32_t cf_prevalence_id(const char *s, size_t len);

/* Checkpoints (engine/ckpt.h): every value and the estate.  A table of
 * another size (fusion.prevalence_values changed) takes the values again
 * by key, evicting as cf_prevalence_see would; NULL pv saves nothing. */
struct cf_ckpt_w;
struct cf_ckpt_r;
void cf_prevalence_save(const struct cf_prevalence *pv, struct cf_ckpt_w *w);
void cf_prevalence_load(struct cf_prevalence *pv, struct cf_ckpt_r *r);

#endif
