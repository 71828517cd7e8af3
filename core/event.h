/*
 * event.h - the decoded form of one input event.
 *
 * A JSON event is flattened into a list of (name, value) leaves.  Nested
 * objects become dotted names ("userIdentity.arn"); array elements repeat
 * the same name, one leaf per element.  Windows events rendered as nested
 * XML-as-JSON ({"Event": {"System": ..., "EventData": ...}}) are folded to
 * the flat names Sigma rules use: "Event.EventData.Image" -> "Image",
 * "Event.System.EventID" -> "EventID",
 * "Event.System.Provider.#attributes.Name" -> "Provider_Name",
 * "Event.System.X.#attributes.Y" -> "X_Y" otherwise, and
 * EventData "Data" arrays of {"@Name"/"#attributes.Name", value} to their
 * names.  So the three shapes chainfuse accepts (flat, flat with
 * Computer/Provider_Name, nested) all look alike to the matcher.
 *
 * Every value keeps its textual form: strings unescaped, numbers exactly
 * as written in the input ("4688", "1.5"), booleans "true"/"false", null
 * with an empty text.
 *
 * Ownership: the event owns its leaves and strings; they stay valid until
 * the next cf_event_decode() or cf_event_reset() on the same event.  The
 * raw line is borrowed from the input record.  One cf_event is reused for
 * every event a thread decodes, so the hot path does not allocate once
 * its buffers have grown to the largest event seen.
 *
 * Threading: an event and a decoder belong to one thread.
 */
#ifndef CF_EVENT_H
#define CF_EVENT_H

#include <string.h>

#include "common.h"
#include "hash.h"

enum cf_value_type {
    CF_VALUE_STRING = 0,
    CF_VALUE_NUMBER = 1,
    CF_VALUE_BOOL = 2,
    CF_VALUE_NULL = 3
};

struct cf_event_field {
    const char *name; /* NUL-terminated */
    uint32_t name_len;
    uint32_t name_hash; /* cf_hash_name(name, name_len) */
    const char *value;  /* NUL-terminated text; may contain NULs before len */
    uint32_t value_len;
    uint8_t type; /* enum cf_value_type */
};

#define CF_TIME_UNKNOWN INT64_MIN

/* What kind of field an event's time was read from (core/event_time.c).
 * The engine's clock check (engine/clocks.h) compares a sensor's UTC
 * with the host-clock stamp of the same event, and corrects only times
 * read from a host-clock stamp. */
enum cf_time_role {
    CF_TIME_ROLE_NONE,   /* no usable time */
    CF_TIME_ROLE_SENSOR, /* Sysmon's UtcTime: the sensor's own UTC */
    CF_TIME_ROLE_STAMP,  /* TimeCreated, TimeCreated_SystemTime, @timestamp:
                            the host's event-log clock, as collected */
    CF_TIME_ROLE_OTHER,  /* any other built-in or configured field */
};

struct cf_event {
    /* The record as it came in; borrowed.  Once cf_event_decode has
     * accepted it, it is exactly one JSON object in valid UTF-8 with at
     * most JSON whitespace around it, or one Windows event in XML (see
     * cf_event_json). */
    const char *raw;
    size_t raw_len;
    struct cf_event_field *fields;
    uint32_t n_fields;
    uint32_t cap_fields;
    void *storage;   /* the event's own buffers for names and values,
                        filled by the decoder; private to event.c */
    int64_t time_ms; /* event time in ms since the epoch, or CF_TIME_UNKNOWN */
    /* Where time_ms came from, and for the clock check both readings
     * when the event carries both: utc_ms (UtcTime) and stamp_ms (the
     * first host-clock stamp); CF_TIME_UNKNOWN when absent.  Only read
     * beyond the chosen field when it is a sensor or stamp field. */
    int64_t utc_ms, stamp_ms;
    /* What engine/clocks.c subtracted from the stamp to give time_ms (the
     * host clock's offset from UTC); 0 when nothing was. */
    int64_t clock_offset_ms;
    uint8_t time_role; /* enum cf_time_role */
    /* The XML inside it (a Sentinel SyslogMessage) was cut short by the
     * collector's size limit: the event holds what arrived. */
    bool cut_short;
    struct cf_position pos;
};

/* Limits checked while decoding; a violating line is rejected with a
 * reason and goes to the dead-letter output. */
struct cf_decode_limits {
    size_t max_line_bytes; /* default 1 MiB */
    unsigned max_depth;    /* default 64 */
};

/* The decoder holds the parser's reusable state (simdjson on the hot
 * path).  One per thread. */
struct cf_decoder;

struct cf_decoder *cf_decoder_new(void);
void cf_decoder_destroy(struct cf_decoder *dec); /* NULL is a no-op */

void cf_event_init(struct cf_event *ev);
void cf_event_reset(struct cf_event *ev); /* keeps buffers */
void cf_event_free(struct cf_event *ev);  /* frees buffers */

/* What can be wrong with an input record, in the words its dead-letter
 * record uses: the decoder's reasons and those of the connectors that
 * find a record bad before decoding.  One vocabulary, so that the engine
 * counts each under its own name (engine/pipeline.c); a connector with
 * a defect of its own adds it here. */
#define CF_DEFECT_INVALID_JSON "invalid JSON"
#define CF_DEFECT_TRUNCATED_JSON "truncated JSON"
#define CF_DEFECT_LINE_TOO_LONG "line exceeds max_line_bytes"
#define CF_DEFECT_TOO_DEEP "nesting exceeds max_depth"
#define CF_DEFECT_INVALID_UTF8 "invalid UTF-8"
#define CF_DEFECT_NOT_AN_OBJECT "not a JSON object"
#define CF_DEFECT_OUT_OF_MEMORY "out of memory"
#define CF_DEFECT_TRUNCATED_INPUT "truncated input" /* a read error cut it */
/* An event XML line, or XML inside a Sentinel EventData/SyslogMessage
 * string, that is not well-formed. */
#define CF_DEFECT_INVALID_XML "invalid XML"
/* XML with a document type declaration: refused, as a DTD is where
 * entity expansion attacks (billion laughs, external entities) live. */
#define CF_DEFECT_XML_DTD "XML with a DTD"
/* A line of XML whose root is not <Event>: some other document. */
#define CF_DEFECT_XML_NOT_EVENT "XML that is not an <Event>"
/* A Sentinel WindowsEvent whose EventData string is broken JSON. */
#define CF_DEFECT_INVALID_EMBEDDED_JSON "invalid JSON inside EventData"

/*
 * Decodes one JSON line into `ev` (which is reset first).  On failure
 * returns a negative cf_err_t and sets *reason to one of the static
 * CF_DEFECT_* strings above.  Sets ev->time_ms from the event's time fields
 * (see cf_event_extract_time).
 */
cf_err_t cf_event_decode(struct cf_decoder *dec, struct cf_event *ev,
                         const char *line, size_t len,
                         const struct cf_decode_limits *limits,
                         const char **reason);

/* Whether s[0..n) is wholly one decimal number - optional sign, digits,
 * optional fraction, optional exponent - and its value in *out.  Blanks,
 * hex ("0x20"), "inf", "nan" and units are not numbers.  The one reader
 * for values compared as numbers: an event's field and a rule's value
 * written as text.  s[n] need not be NUL. */
bool cf_decimal_parse(const char *s, size_t n, double *out);

/* Index of the first leaf named `name` at or after `from`, or -1
 * (cf_event_find_hashed: with h = cf_hash_name(name, name_len) known).
 * Leaves of one array share a name and are adjacent.  Inline: it is on
 * every event's path (time fields, entities), and the decoder and the
 * time reader (event_time.c) both use it without calling each other. */
static inline int cf_event_find_hashed(const struct cf_event *ev,
                                       const char *name, size_t name_len,
                                       uint32_t h, uint32_t from) {
    for (uint32_t i = from; i < ev->n_fields; i++) {
        const struct cf_event_field *f = &ev->fields[i];
        if (f->name_hash == h && f->name_len == name_len &&
            cf_bytes_equal(f->name, name, name_len))
            return (int)i;
    }
    return -1;
}

static inline int cf_event_find(const struct cf_event *ev, const char *name,
                                size_t name_len, uint32_t from) {
    return cf_event_find_hashed(ev, name, name_len,
                                cf_hash_name(name, name_len), from);
}

/* The event's time from the built-in fields, in order: UtcTime,
 * TimeCreated / TimeCreated_SystemTime, @timestamp, TimeGenerated,
 * Timestamp, timestamp, eventTime, time, EventTime, _time.  CF_TIME_UNKNOWN if
 * none holds a usable time: one that parses (core/timeutil.h) and is not before
 * 1980, since earlier ones are collectors' zero values (0, 0001-01-01,
 * 1601-01-01). */
int64_t cf_event_extract_time(const struct cf_event *ev);

/* Which fields name the event time (config `time.fields`,
 * `time.builtin_fields`), compiled once; read-only after, so threads may
 * share one.  cf_time_names_new copies `names`; with `builtin` the
 * built-in list above follows them (names already listed skipped).
 * NULL on out of memory. */
struct cf_time_names;
struct cf_time_names *cf_time_names_new(const char *const *names, size_t n,
                                        bool builtin);
void cf_time_names_destroy(struct cf_time_names *tf); /* NULL: no-op */

/* Sets ev->time_ms, time_role, utc_ms and stamp_ms from the first field
 * of `tf` (NULL: the built-in list) that holds a parseable time. */
void cf_event_read_time(struct cf_event *ev, const struct cf_time_names *tf);

/* The decoder reads times with `tf` (borrowed; it must outlive the
 * decoder's use; NULL: the built-in list, the default). */
void cf_decoder_set_time_names(struct cf_decoder *dec,
                               const struct cf_time_names *tf);

/* The decoded event's JSON object exactly as it came in, without the
 * whitespace around it: what an alert embeds, never re-parsed.  An
 * event XML line is given as one JSON string of its bytes (made on the
 * first call; "null" if memory ran out).  Sets *len; the text is
 * borrowed like ev->raw, or from the event until its next decode. */
const char *cf_event_json(const struct cf_event *ev, size_t *len);

#endif
