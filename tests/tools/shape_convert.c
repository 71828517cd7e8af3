/*
 * shape_convert.c - rewrites a flat JSON-lines recording (OTRF's
 * Windows shape: Hostname, Channel, EventID, SourceName, a time field
 * and the event's data at the top level) in one of the shapes SIEM
 * collectors ship, one line in, one line out, for tests/integration/
 * shapes.sh to check that every shape raises the same alerts.
 *
 * Usage: shape_convert ecs|windowsevent|sentinel|syslog|xml <in >out
 *   ecs           Winlogbeat 8 / Elastic Agent: winlog.event_data etc.
 *   windowsevent  Sentinel WindowsEvent: EventData is JSON in a string
 *   sentinel      Sentinel SecurityEvent (Security channel) or Event
 *                 (other channels): EventData is event XML in a string
 *   syslog        Sentinel Syslog: SyslogMessage holds the event XML
 *   xml           raw event XML, one event per line (WEF, Splunk)
 *
 * The host, channel, event id and provider go where each shape keeps
 * them; the event time is the first of the decoder's time fields that
 * holds a usable time (UtcTime, a Sysmon data field, stays with the
 * data); the other
 * time fields are dropped, as the shapes have one place for the time.
 * Numbers keep their text: the input is read with chainfuse's own JSON
 * tape (core/json_decode.h), not re-printed by a library.  A line that
 * is not a JSON object is written through unchanged, so positions stay
 * aligned with the flat input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json_decode.h"
#include "timeutil.h"

enum shape { ECS, WINDOWSEVENT, SENTINEL, SYSLOG, XML };

struct doc {
    const struct cf_json_node *n;
    const char *s;
};

/* The decoder's built-in time fields after UtcTime (core/event_time.c),
 * in its order. */
static const char *const time_keys[] = {"TimeCreated", "TimeCreated_SystemTime",
                                        "@timestamp",  "TimeGenerated",
                                        "Timestamp",   "timestamp",
                                        "eventTime",   "time",
                                        "EventTime",   "_time"};

/* The decoder takes no time before 1980 (collectors' zero values). */
#define USABLE_FROM_MS 315532800000LL

static bool key_is(const struct doc *d, uint32_t i, const char *k) {
    return d->n[i].key_len == strlen(k) &&
           memcmp(d->s + d->n[i].key_off, k, d->n[i].key_len) == 0;
}

static bool is_time_key(const struct doc *d, uint32_t i) {
    for (size_t k = 0; k < sizeof time_keys / sizeof *time_keys; k++)
        if (key_is(d, i, time_keys[k])) return true;
    return false;
}

static long member(const struct doc *d, const char *k) {
    for (uint32_t c = 1; c < d->n[0].end; c = d->n[c].end)
        if (key_is(d, c, k)) return (long)c;
    return -1;
}

/* The first time field, in the decoder's order, that holds a usable
 * time. */
static long time_member(const struct doc *d) {
    for (size_t k = 0; k < sizeof time_keys / sizeof *time_keys; k++)
        for (uint32_t c = 1; c < d->n[0].end; c = d->n[c].end) {
            int64_t ms;
            if (key_is(d, c, time_keys[k]) && d->n[c].type != CF_JSON_OBJECT &&
                d->n[c].type != CF_JSON_ARRAY &&
                cf_time_parse(d->s + d->n[c].text_off, d->n[c].text_len, &ms) ==
                    CF_OK &&
                ms >= USABLE_FROM_MS)
                return (long)c;
        }
    return -1;
}

/* The node's value as JSON. */
static void put_json(struct cf_buf *b, const struct doc *d, uint32_t i) {
    const struct cf_json_node *n = &d->n[i];
    const char *sep = "";
    switch (n->type) {
    case CF_JSON_STRING:
        cf_buf_json_string(b, d->s + n->text_off, n->text_len);
        return;
    case CF_JSON_NULL: cf_buf_puts(b, "null"); return;
    case CF_JSON_NUMBER:
    case CF_JSON_BOOL:
        cf_buf_append(b, d->s + n->text_off, n->text_len);
        return;
    default: break;
    }
    cf_buf_putc(b, n->type == CF_JSON_OBJECT ? '{' : '[');
    for (uint32_t c = i + 1; c < n->end; c = d->n[c].end) {
        cf_buf_puts(b, sep);
        sep = ",";
        if (n->type == CF_JSON_OBJECT) {
            cf_buf_json_string(b, d->s + d->n[c].key_off, d->n[c].key_len);
            cf_buf_putc(b, ':');
        }
        put_json(b, d, c);
    }
    cf_buf_putc(b, n->type == CF_JSON_OBJECT ? '}' : ']');
}

/* Text escaped for XML content and attributes alike; tabs and line
 * breaks as references, which XML parsers would otherwise normalise. */
static void put_xml_text(struct cf_buf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': cf_buf_puts(b, "&amp;"); break;
        case '<': cf_buf_puts(b, "&lt;"); break;
        case '>': cf_buf_puts(b, "&gt;"); break;
        case '"': cf_buf_puts(b, "&quot;"); break;
        case '\t': cf_buf_puts(b, "&#9;"); break;
        case '\n': cf_buf_puts(b, "&#10;"); break;
        case '\r': cf_buf_puts(b, "&#13;"); break;
        default: cf_buf_putc(b, s[i]); break;
        }
    }
}

/* One value as <Data Name="name">text</Data>: an array as one Data per
 * element, an object's members under dotted names, as the decoder
 * flattens them. */
static void put_data(struct cf_buf *b, const struct doc *d, uint32_t i,
                     struct cf_buf *name) {
    const struct cf_json_node *n = &d->n[i];
    if (n->type == CF_JSON_ARRAY || n->type == CF_JSON_OBJECT) {
        size_t len = name->len;
        for (uint32_t c = i + 1; c < n->end; c = d->n[c].end) {
            if (n->type == CF_JSON_OBJECT) {
                cf_buf_putc(name, '.');
                cf_buf_append(name, d->s + d->n[c].key_off, d->n[c].key_len);
            }
            put_data(b, d, c, name);
            cf_buf_truncate(name, len);
        }
        return;
    }
    cf_buf_puts(b, "<Data Name=\"");
    put_xml_text(b, name->data, name->len);
    cf_buf_puts(b, "\">");
    if (n->type != CF_JSON_NULL)
        put_xml_text(b, d->s + n->text_off, n->text_len);
    cf_buf_puts(b, "</Data>");
}

struct sys {
    long host, channel, id, provider, time;
};

static bool is_sys(const struct sys *y, uint32_t c) {
    return (long)c == y->host || (long)c == y->channel || (long)c == y->id ||
           (long)c == y->provider || (long)c == y->time;
}

/* The members that are the event's data: all but the system ones and
 * the time fields (except UtcTime, a Sysmon data field). */
static bool is_data(const struct doc *d, const struct sys *y, uint32_t c) {
    return !is_sys(y, c) && !is_time_key(d, c);
}

static void put_eventdata_xml(struct cf_buf *b, const struct doc *d,
                              const struct sys *y, const char *indent) {
    struct cf_buf name = CF_BUF_INIT;
    cf_buf_puts(b, "<EventData xmlns=\"http://schemas.microsoft.com/win/2004/"
                   "08/events/event\">");
    for (uint32_t c = 1; c < d->n[0].end; c = d->n[c].end) {
        if (!is_data(d, y, c)) continue;
        cf_buf_reset(&name);
        cf_buf_append(&name, d->s + d->n[c].key_off, d->n[c].key_len);
        cf_buf_puts(b, indent);
        put_data(b, d, c, &name);
    }
    cf_buf_puts(b, indent[0] ? "\r\n</EventData>" : "</EventData>");
    cf_buf_free(&name);
}

/* before + the member's text + after, when the event has the member. */
static void put_wrapped(struct cf_buf *b, const struct doc *d, long i,
                        const char *before, const char *after) {
    if (i < 0) return;
    cf_buf_puts(b, before);
    put_xml_text(b, d->s + d->n[i].text_off, d->n[i].text_len);
    cf_buf_puts(b, after);
}

static void put_event_xml(struct cf_buf *b, const struct doc *d,
                          const struct sys *y) {
    cf_buf_puts(b, "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/"
                   "events/event\"><System>");
    put_wrapped(b, d, y->provider, "<Provider Name=\"", "\"/>");
    put_wrapped(b, d, y->id, "<EventID>", "</EventID>");
    put_wrapped(b, d, y->time, "<TimeCreated SystemTime=\"", "\"/>");
    put_wrapped(b, d, y->channel, "<Channel>", "</Channel>");
    put_wrapped(b, d, y->host, "<Computer>", "</Computer>");
    cf_buf_puts(b, "</System>");
    put_eventdata_xml(b, d, y, "");
    cf_buf_puts(b, "</Event>");
}

/* ,"key":value for a system member, when the event has it. */
static void put_member(struct cf_buf *b, const char *key, const struct doc *d,
                       long i, bool as_string) {
    if (i < 0) return;
    cf_buf_printf(b, ",\"%s\":", key);
    if (as_string)
        cf_buf_json_string(b, d->s + d->n[i].text_off, d->n[i].text_len);
    else
        put_json(b, d, (uint32_t)i);
}

static void put_data_object(struct cf_buf *b, const struct doc *d,
                            const struct sys *y) {
    const char *sep = "";
    cf_buf_putc(b, '{');
    for (uint32_t c = 1; c < d->n[0].end; c = d->n[c].end) {
        if (!is_data(d, y, c)) continue;
        cf_buf_puts(b, sep);
        sep = ",";
        cf_buf_json_string(b, d->s + d->n[c].key_off, d->n[c].key_len);
        cf_buf_putc(b, ':');
        put_json(b, d, c);
    }
    cf_buf_putc(b, '}');
}

static void convert(struct cf_buf *b, const struct doc *d, enum shape shape) {
    struct sys y;
    struct cf_buf inner = CF_BUF_INIT;
    y.host = member(d, "Hostname");
    if (y.host < 0) y.host = member(d, "Computer");
    y.channel = member(d, "Channel");
    y.id = member(d, "EventID");
    y.provider = member(d, "SourceName");
    if (y.provider < 0) y.provider = member(d, "Provider_Name");
    y.time = time_member(d);

    switch (shape) {
    case ECS:
        cf_buf_puts(b, "{\"@timestamp\":");
        if (y.time >= 0)
            put_json(b, d, (uint32_t)y.time);
        else
            cf_buf_puts(b, "null");
        if (y.host >= 0) {
            cf_buf_puts(b, ",\"host\":{\"name\":");
            put_json(b, d, (uint32_t)y.host);
            cf_buf_putc(b, '}');
        }
        cf_buf_puts(b, ",\"winlog\":{\"api\":\"wineventlog\"");
        put_member(b, "channel", d, y.channel, false);
        put_member(b, "event_id", d, y.id, true); /* Winlogbeat 8: text */
        put_member(b, "computer_name", d, y.host, false);
        put_member(b, "provider_name", d, y.provider, false);
        cf_buf_puts(b, ",\"event_data\":");
        put_data_object(b, d, &y);
        cf_buf_puts(b, "}}");
        break;
    case WINDOWSEVENT:
        cf_buf_puts(b, "{\"SourceSystem\":\"OpsManager\"");
        put_member(b, "TimeGenerated", d, y.time, false);
        put_member(b, "Provider", d, y.provider, false);
        put_member(b, "Channel", d, y.channel, false);
        put_member(b, "Computer", d, y.host, false);
        put_data_object(&inner, d, &y);
        cf_buf_puts(b, ",\"EventData\":");
        cf_buf_json_string(b, inner.data, inner.len);
        put_member(b, "EventID", d, y.id, false);
        cf_buf_puts(b, ",\"Type\":\"WindowsEvent\"}");
        break;
    case SENTINEL: {
        bool security =
            y.channel >= 0 && d->n[y.channel].text_len == 8 &&
            memcmp(d->s + d->n[y.channel].text_off, "Security", 8) == 0;
        cf_buf_puts(b, "{\"SourceSystem\":\"OpsManager\"");
        put_member(b, "TimeGenerated", d, y.time, false);
        if (security) {
            put_member(b, "Computer", d, y.host, false);
            put_member(b, "EventSourceName", d, y.provider, false);
            put_member(b, "Channel", d, y.channel, false);
            put_eventdata_xml(&inner, d, &y, "\r\n  ");
        } else {
            put_member(b, "Source", d, y.provider, false);
            put_member(b, "EventLog", d, y.channel, false);
            put_member(b, "Computer", d, y.host, false);
            cf_buf_puts(&inner, "<DataItem type=\"System.XmlData\" "
                                "time=\"x\" sourceHealthServiceId=\"x\">");
            put_eventdata_xml(&inner, d, &y, "");
            cf_buf_puts(&inner, "</DataItem>");
        }
        cf_buf_puts(b, ",\"EventData\":");
        cf_buf_json_string(b, inner.data, inner.len);
        put_member(b, "EventID", d, y.id, false);
        cf_buf_printf(b, ",\"Type\":\"%s\"}",
                      security ? "SecurityEvent" : "Event");
        break;
    }
    case SYSLOG:
        cf_buf_puts(b, "{\"SourceSystem\":\"Linux\"");
        put_member(b, "TimeGenerated", d, y.time, false);
        put_member(b, "Computer", d, y.host, false);
        cf_buf_puts(b, ",\"Facility\":\"user\",\"SeverityLevel\":\"info\"");
        put_event_xml(&inner, d, &y);
        cf_buf_puts(b, ",\"SyslogMessage\":");
        cf_buf_json_string(b, inner.data, inner.len);
        cf_buf_puts(b, ",\"Type\":\"Syslog\"}");
        break;
    case XML: put_event_xml(b, d, &y); break;
    }
    cf_buf_free(&inner);
}

int main(int argc, char **argv) {
    static const char *const names[] = {"ecs", "windowsevent", "sentinel",
                                        "syslog", "xml"};
    enum shape shape = ECS;
    bool known = false;
    struct cf_json_parser *parser = cf_json_parser_new();
    struct cf_buf strings = CF_BUF_INIT, out = CF_BUF_INIT;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long passed = 0;
    int rc = 0;

    for (size_t i = 0; argc == 2 && i < sizeof names / sizeof *names; i++)
        if (strcmp(argv[1], names[i]) == 0) {
            shape = (enum shape)i;
            known = true;
        }
    if (!known) {
        fprintf(stderr,
                "usage: shape_convert ecs|windowsevent|sentinel|syslog|xml "
                "<flat.jsonl >shaped\n");
        return 2;
    }
    if (!parser) return 1;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        struct cf_json_doc doc;
        struct doc d;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        cf_buf_reset(&strings);
        cf_buf_reset(&out);
        if (!cf_buf_reserve(&strings, cf_json_strings_size((size_t)len))) {
            rc = 1;
            break;
        }
        if (cf_json_parse(parser, line, (size_t)len, 64, strings.data, &doc) !=
            CF_JSON_OK) {
            cf_buf_append(&out, line, (size_t)len);
            passed++;
        } else {
            d.n = doc.nodes;
            d.s = doc.strings;
            convert(&out, &d, shape);
        }
        cf_buf_putc(&out, '\n');
        if (out.failed || fwrite(out.data, 1, out.len, stdout) != out.len) {
            rc = 1;
            break;
        }
    }
    if (passed)
        fprintf(stderr, "shape_convert: %ld lines not JSON objects, copied\n",
                passed);
    free(line);
    cf_buf_free(&strings);
    cf_buf_free(&out);
    cf_json_parser_destroy(parser);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}
