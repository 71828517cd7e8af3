/*
 * json_decode.h - JSON to a node tape: events by a one-pass scanner of
 * our own, what it declines (errors, documents nested past its bound) by
 * simdjson's On-Demand API, which also words the errors.
 *
 * cf_json_parse() validates one JSON document and turns it into a flat
 * array of nodes in document order (a "tape"): containers record where
 * their subtree ends, so a caller can walk members, look ahead among
 * siblings (needed to fold XML-as-JSON elements whose "@Name" may come
 * after "#text") and skip subtrees.  Strings are unescaped; numbers keep
 * the exact text they had in the input.
 *
 * Called by core/event.c (cf_event_decode) on the hot path; nothing
 * else should need it.  Once its buffers have grown to the largest
 * document seen, a parse does not allocate.  A parser remembers the
 * keys of the last document it scanned, to take the next document's
 * keys by a compare where they repeat; what a parse returns never
 * depends on what it parsed before.
 *
 * Threading: a parser and the document it returned belong to one thread.
 */
#ifndef CF_JSON_DECODE_H
#define CF_JSON_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

enum cf_json_type {
    CF_JSON_OBJECT = 0,
    CF_JSON_ARRAY = 1,
    CF_JSON_STRING = 2,
    CF_JSON_NUMBER = 3,
    CF_JSON_BOOL = 4,
    CF_JSON_NULL = 5
};

enum cf_json_status {
    CF_JSON_OK = 0,
    CF_JSON_INVALID,    /* not JSON */
    CF_JSON_TRUNCATED,  /* JSON that stops before the document is closed */
    CF_JSON_TOO_DEEP,   /* nesting deeper than max_depth */
    CF_JSON_BAD_UTF8,   /* the bytes are not valid UTF-8 */
    CF_JSON_NOT_OBJECT, /* valid JSON, but the root is not an object */
    CF_JSON_TOO_LONG,   /* longer than this interface can address (2 GiB) */
    CF_JSON_NOMEM,
    CF_JSON_DECLINED /* only from cf_json_parse_with(CF_JSON_ENGINE_FLAT) */
};

#define CF_JSON_NO_KEY UINT32_MAX

/* One value of the document.  Offsets index cf_json_doc.strings; every
 * string there is NUL-terminated (and may contain NULs before its
 * length when the JSON had "\u0000"). */
struct cf_json_node {
    uint32_t key_off; /* member key, or CF_JSON_NO_KEY (root, array element) */
    uint32_t key_len;
    uint32_t text_off; /* scalars: unescaped string, number as written,
                          "true"/"false", "" for null; containers: 0 */
    uint32_t text_len;
    uint32_t end; /* index one past this node's subtree */
    uint8_t type; /* enum cf_json_type */
};

/* A parsed document.  Borrowed from the parser: valid until the next
 * cf_json_parse() or cf_json_parser_destroy() on it.  nodes[0] is the
 * root object; the children of a container at i are i+1, then each
 * child's `end`, until the container's own `end`. */
struct cf_json_doc {
    const struct cf_json_node *nodes;
    uint32_t n_nodes;
    const char *strings;
};

struct cf_json_parser;

/* NULL when out of memory. */
struct cf_json_parser *cf_json_parser_new(void);
void cf_json_parser_destroy(struct cf_json_parser *p); /* NULL is a no-op */

/* Bytes the strings buffer of cf_json_parse needs for a text of `len`
 * bytes. */
static inline size_t cf_json_strings_size(size_t len) {
    return 2 * len + 64;
}

/* Parses `text` (len bytes; need not be NUL-terminated nor padded: it is
 * read in place or copied into the parser's padded buffer).  An object of
 * scalars, the usual event, is read by chainfuse's own one-pass scanner;
 * anything else, or anything it declines, by simdjson: the two give the
 * same nodes and strings for what both accept.  The root must be an object
 * nested at most max_depth levels (the root object is level 1).
 * Unescaped strings go to `strings`, the caller's buffer of at least
 * cf_json_strings_size(len) bytes, so that a caller can keep pointing at
 * them after the next parse (the event does).  doc->strings == strings. */
enum cf_json_status cf_json_parse(struct cf_json_parser *p, const char *text,
                                  size_t len, unsigned max_depth, char *strings,
                                  struct cf_json_doc *doc);

/* Which reader parses: both as cf_json_parse does (AUTO), or one alone,
 * for the tests that compare them (FLAT returns CF_JSON_DECLINED for a
 * text it leaves to simdjson).  FLAT_NARROW is FLAT with its baseline
 * (SSE2) string loop even where the CPU has AVX-512, so that the tests
 * check both loops on a machine that has it. */
enum cf_json_engine {
    CF_JSON_ENGINE_AUTO,
    CF_JSON_ENGINE_FLAT,
    CF_JSON_ENGINE_FLAT_NARROW,
    CF_JSON_ENGINE_SIMDJSON
};

enum cf_json_status cf_json_parse_with(struct cf_json_parser *p,
                                       const char *text, size_t len,
                                       unsigned max_depth, char *strings,
                                       struct cf_json_doc *doc,
                                       enum cf_json_engine engine);

/* A short human-readable name of the simdjson kernel in use (for the
 * benchmark's report). */
const char *cf_json_implementation(void);

/* Whether the flat scanner unescapes strings with AVX-512 on this CPU
 * (else with its SSE2 loop alone): for reports and the tests, which
 * compare the two loops only where both run. */
bool cf_json_wide_strings(void);

#ifdef __cplusplus
}
#endif

#endif
