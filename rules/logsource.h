/*
 * logsource.h - logsource routing: which events a rule sees.
 *
 * A rule's logsource (product, category, service) is a route.  Each route
 * is resolved, through a mapping table, into conditions on event fields
 * (for example category process_creation + product windows: Channel is
 * Microsoft-Windows-Sysmon/Operational and EventID 1, or Channel Security
 * and EventID 4688).  Defaults cover Windows Sysmon, Security, System,
 * PowerShell and the other channels SigmaHQ uses, Linux and cloud logs;
 * the `logsources` config section extends or overrides them.  A part of a
 * logsource the table does not know imposes no condition.
 *
 * Routing an event evaluates the routes' conditions once per distinct
 * combination of routing-field values and caches the answer, so the cost
 * per event is one hash lookup in steady state.
 *
 * Threading: a router is built once and then shared read-only; each
 * thread routes through its own cf_route_cache.
 */
#ifndef CF_LOGSOURCE_H
#define CF_LOGSOURCE_H

#include "common.h"
#include "event.h"

struct json_t;
struct cf_router;
struct cf_route_cache;

/* NULL with errstr if the config section is malformed or memory runs
 * out.  The section is read during the call only. */
struct cf_router *cf_router_new(const struct json_t *section, char *errstr,
                                size_t errstr_size);
void cf_router_destroy(struct cf_router *router); /* NULL is a no-op */

/* Returns the route id for a logsource (same triple, same id). Any part
 * may be NULL.  Call before cf_router_seal().  UINT32_MAX when out of
 * memory. */
uint32_t cf_router_add(struct cf_router *router, const char *product,
                       const char *category, const char *service);
/* Ends adding; prepares matching. */
cf_err_t cf_router_seal(struct cf_router *router, char *errstr,
                        size_t errstr_size);
uint32_t cf_router_count(const struct cf_router *router);

/* A cache borrows its router, which must outlive it.  NULL when memory
 * runs out. */
struct cf_route_cache *cf_route_cache_new(const struct cf_router *router);
void cf_route_cache_destroy(struct cf_route_cache *cache); /* NULL: no-op */

/* Returns a bitset of cf_router_count() bits (route id i is bit i of
 * word i/64): the routes `ev` belongs to.  Valid until the next call on
 * the same cache.  NULL when out of memory (the event cannot be routed,
 * which is not "routed nowhere"). */
const uint64_t *cf_router_route(const struct cf_router *router,
                                struct cf_route_cache *cache,
                                const struct cf_event *ev);

/* A leaf of a routing field in an event: router field `field` (below
 * cf_router_field_count) is the event's field `leaf`. */
struct cf_route_hit {
    uint32_t field;
    uint32_t leaf;
};

/* The names of the fields routing reads, for a caller that passes over
 * an event's fields anyway and finds them on its way: field i's name
 * (NUL-terminated), its length and cf_hash_name in *len and *hash;
 * NULL when no route tests field i. */
uint32_t cf_router_field_count(const struct cf_router *router);
const char *cf_router_field(const struct cf_router *router, uint32_t i,
                            uint32_t *len, uint32_t *hash);

/* cf_router_route for such a caller: hits[0..n_hits) are all the
 * leaves of `ev` with a routing field's name, in the event's order
 * (reordered in place). */
const uint64_t *cf_router_route_hits(const struct cf_router *router,
                                     struct cf_route_cache *cache,
                                     const struct cf_event *ev,
                                     struct cf_route_hit *hits, size_t n_hits);

/* The first route with the same conditions as `route` (the same events),
 * `route` itself when none comes before it: routes of different
 * logsources that the table resolves alike (every unknown logsource
 * imposes no condition) share one. */
uint32_t cf_router_twin(const struct cf_router *router, uint32_t route);

/* Whether `route` imposes no condition: every event is on it. */
bool cf_router_every_event(const struct cf_router *router, uint32_t route);

/* Human-readable conditions of a route, for `chainfuse check` and tests.
 * The caller frees the string with cf_free(); NULL for an unknown route
 * or when memory runs out. */
char *cf_router_describe(const struct cf_router *router, uint32_t route);

#endif
