/*
 * event_xml.h - Windows event XML to (name, value) leaves, for the
 * decoder (core/event.c) only.
 *
 * Reads one XML document with expat and folds it to the flat names
 * Sigma rules use, exactly as event.c folds XML rendered as JSON:
 *   <Event><System><X a="v">t</X>...   -> X = t, X_a = v
 *   <EventData><Data Name="N">t</Data> -> N = t (no Name: Data = t)
 *   <UserData><Wrapper><X>t</X>...     -> X = t
 *   <Event><Other><Y>t</Y>...          -> Other.Y = t
 * The root may be <Event> (a raw event line, Sysmon for Linux in a
 * syslog message) or a bare <EventData> / <UserData>, optionally inside
 * a <DataItem> (the EventData column of Sentinel's SecurityEvent and
 * Event tables).  Whitespace between elements is not a value;
 * namespace declarations are never leaves.
 *
 * Sysmon for Linux's escapes without a semicolon ("&lt unknown
 * process&gt ") are mended before parsing (see repair_escapes).
 *
 * Hostile input: a document type declaration is refused outright (no
 * internal or external entity is ever declared, so none is expanded:
 * no billion laughs, no file or network access), nesting is bounded,
 * and every value is written into the caller's buffer, which cannot
 * overflow because decoded text never exceeds the source once entities
 * are refused.
 *
 * Threading: a parser belongs to one thread.
 */
#ifndef CF_EVENT_XML_H
#define CF_EVENT_XML_H

#include "common.h"

enum cf_xml_status {
    CF_XML_OK = 0,
    CF_XML_INVALID,   /* not well-formed XML (or not UTF-8) */
    CF_XML_DTD,       /* has a document type declaration: refused */
    CF_XML_NOT_EVENT, /* the root is not <Event>, and had to be */
    CF_XML_TOO_DEEP,  /* elements nested deeper than max_depth */
    CF_XML_CUT,       /* the text stops inside an element (a collector's size
                         limit cut it): the leaves before the cut, and the
                         text of the leaf it cut, were given */
    CF_XML_NOMEM,
    CF_XML_SINK /* the sink refused a leaf (out of memory) */
};

/* Receives each leaf.  `value` lies in the caller's values buffer,
 * NUL-terminated, and stays where it is; `name` is only valid during the
 * call.  Returns false to stop (out of memory). */
typedef bool (*cf_xml_leaf_fn)(void *ctx, const char *name, size_t name_len,
                               const char *value, size_t value_len);

struct cf_xml_parser;

struct cf_xml_parser *cf_xml_parser_new(void); /* NULL when out of memory */
void cf_xml_parser_destroy(struct cf_xml_parser *p); /* NULL is a no-op */

/* Bytes the values buffer needs for an XML text of `len` bytes. */
static inline size_t cf_xml_values_size(size_t len) {
    return 2 * len + 16;
}

/* Parses text[0..len) and calls leaf() for each leaf, in document order.
 * `values` has room for cf_xml_values_size(len) bytes.  With
 * `event_root` the root must be <Event> (a line of XML that is some other
 * document is not an event). */
enum cf_xml_status cf_xml_fold(struct cf_xml_parser *p, const char *text,
                               size_t len, unsigned max_depth, bool event_root,
                               char *values, cf_xml_leaf_fn leaf, void *ctx);

#endif
