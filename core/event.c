/*
 * event.c - cf_event_decode and friends (core/event.h): turns one JSON
 * line into the flat list of leaves the matcher reads, folding Windows
 * XML-as-JSON events to the flat field names Sigma rules use.
 *
 * Called by the pipeline for every input record (the hot path) and by
 * tests and tools.  The JSON work is done by json_decode.cpp (a flat
 * scanner, else simdjson); this file walks the resulting node tape, builds
 * dotted names and copies names and values into the event's own buffer.
 *
 * Threading: a decoder and an event belong to one thread.
 */
#include "event.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "event_time.h"
#include "event_xml.h"
#include "json_decode.h"
#include "timeutil.h"

struct cf_decoder {
    struct cf_json_parser *json;
    const struct cf_time_names *times; /* NULL: built-in (event_time.c) */
    /* The built-in list as a table of its own, names hashed once */
    struct cf_time_names *builtin_times;
    struct cf_time_memo time_memo;
    /* Made on first use, for the shapes that carry a second document:
     * JSON inside a string (Sentinel's WindowsEvent) and XML (raw event
     * lines, SecurityEvent's EventData, Sysmon for Linux in syslog). */
    struct cf_json_parser *inner_json;
    struct cf_xml_parser *xml;
};

/* Top-level names remembered per position (event_storage.memo): a
 * Sysmon event has about 25. */
#define NAME_MEMO_SLOTS 48

/* Private buffers of one event (cf_event.storage).  Values and plain
 * names point straight into `strings`, where the parser unescaped them;
 * only composed names ("a.b", "Provider_Name") are written to `names`. */
struct event_storage {
    /* The parser's output, written by cf_json_parse rather than appended:
     * only its capacity is used, reserved before the parse. */
    struct cf_buf strings;
    struct cf_buf names; /* composed names, each NUL-terminated */
    /* The name being built, when it is not in strings; then it holds
     * exactly name_len bytes, and dropping a segment truncates it. */
    struct cf_buf name;
    size_t name_len;        /* of the current name, wherever it is */
    uint32_t name_key;      /* offset in strings when the current name is one
                               string there as it stands (then `name` is not
                               written: most names are plain keys), else
                               CF_JSON_NO_KEY */
    uint32_t last_name_off; /* reused by repeated leaves (arrays) */
    uint32_t last_name_len;
    uint32_t last_name_hash;
    bool have_last_name;
    uint32_t last_key; /* hash cache for names taken from strings */
    uint32_t last_key_hash;
    /* The top-level names of the last flat event by position, with
     * their hashes: the next event of the same source repeats them, and
     * a compare costs less than hashing and looking for spaces again. */
    struct name_memo {
        char bytes[32];
        uint32_t len; /* 0: nothing remembered (a nameless member emits
                         nothing, so it is never looked up) */
        uint32_t hash;
        bool spaced;
    } memo[NAME_MEMO_SLOTS];
    /* The second document of an event that carries one (at most one per
     * event): the inner JSON's strings or the XML's values, reserved
     * before that parse so that values can point into it. */
    struct cf_buf inner;
    /* A raw XML line as a JSON string: what cf_event_json returns, made
     * on its first call (most events raise no alert) from xml[0..xml_len),
     * the line without the blanks around it. */
    struct cf_buf json_form;
    /* The fields (uint32_t indexes) whose name lies in `names`, which may
     * move as it grows: their name holds its offset there until the
     * decode ends.  Names in `strings`, which does not move, are pointed
     * at from the start (every name of a flat event). */
    struct cf_buf composed;
    const char *xml;
    size_t xml_len;
};

/* Where the current name came from, to restore it after a child. */
struct name_mark {
    size_t len;
    uint32_t key;
};

/* State of one decode: the tape being walked and where leaves go. */
struct flatten {
    const struct cf_json_node *nodes;
    const char *strings;
    struct cf_event *ev;
    struct event_storage *st;
    struct cf_decoder *dec;
    unsigned max_depth;
    bool own_keys;      /* strings is st->strings, so names may point at keys
                           there (else every name is copied to `names`) */
    bool inner_used;    /* st->inner holds this event's second document */
    bool eventdata_xml; /* EventData was XML (Sentinel SecurityEvent/Event) */
    const char *why;    /* a CF_DEFECT_* when a fold fails for other than
                           memory */
};

#define DEFAULT_MAX_LINE ((size_t)1 << 20)
#define DEFAULT_MAX_DEPTH 64u

struct cf_decoder *cf_decoder_new(void) {
    struct cf_decoder *dec = cf_calloc(1, sizeof *dec);
    if (!dec) return NULL;
    if (!(dec->json = cf_json_parser_new()) ||
        !(dec->builtin_times = cf_time_names_new(NULL, 0, true))) {
        cf_decoder_destroy(dec);
        return NULL;
    }
    return dec;
}

void cf_decoder_set_time_names(struct cf_decoder *dec,
                               const struct cf_time_names *tf) {
    dec->times = tf;
}

void cf_decoder_destroy(struct cf_decoder *dec) {
    if (!dec) return;
    cf_json_parser_destroy(dec->json);
    cf_time_names_destroy(dec->builtin_times);
    cf_json_parser_destroy(dec->inner_json);
    cf_xml_parser_destroy(dec->xml);
    cf_free(dec);
}

void cf_event_init(struct cf_event *ev) {
    memset(ev, 0, sizeof *ev);
    ev->time_ms = ev->utc_ms = ev->stamp_ms = CF_TIME_UNKNOWN;
    ev->time_role = CF_TIME_ROLE_NONE;
    ev->pos.partition = -1;
}

void cf_event_reset(struct cf_event *ev) {
    struct event_storage *st = ev->storage;
    ev->raw = NULL;
    ev->raw_len = 0;
    ev->n_fields = 0;
    ev->time_ms = ev->utc_ms = ev->stamp_ms = CF_TIME_UNKNOWN;
    ev->time_role = CF_TIME_ROLE_NONE;
    ev->cut_short = false;
    ev->pos.source = NULL;
    ev->pos.partition = -1;
    ev->pos.offset = 0;
    if (st) {
        /* also clears a failure of the previous decode */
        cf_buf_reset(&st->strings);
        cf_buf_reset(&st->names);
        cf_buf_reset(&st->name);
        cf_buf_reset(&st->inner);
        cf_buf_reset(&st->json_form);
        cf_buf_reset(&st->composed);
        st->xml = NULL;
        st->name_len = 0;
        st->name_key = CF_JSON_NO_KEY;
        st->have_last_name = false;
        st->last_key = CF_JSON_NO_KEY;
    }
}

void cf_event_free(struct cf_event *ev) {
    struct event_storage *st;
    if (!ev) return;
    st = ev->storage;
    if (st) {
        cf_buf_free(&st->strings);
        cf_buf_free(&st->names);
        cf_buf_free(&st->name);
        cf_buf_free(&st->inner);
        cf_buf_free(&st->json_form);
        cf_buf_free(&st->composed);
        cf_free(st);
    }
    cf_free(ev->fields);
    cf_event_init(ev);
}

/* Appends sep+seg to the name being built.  Returns the mark to
 * restore with name_pop; mark.len is SIZE_MAX when out of memory. */
static struct name_mark name_push(struct event_storage *st, char sep,
                                  const char *seg, size_t seg_len) {
    struct name_mark mark = {st->name_len, st->name_key};
    if (st->name_key != CF_JSON_NO_KEY) {
        /* the name so far is a key in strings: copy it out to extend it */
        cf_buf_reset(&st->name);
        cf_buf_append(&st->name, st->strings.data + st->name_key, st->name_len);
    }
    if (mark.len) cf_buf_putc(&st->name, sep);
    cf_buf_append(&st->name, seg, seg_len);
    if (st->name.failed) {
        mark.len = SIZE_MAX;
        return mark;
    }
    st->name_len = st->name.len;
    st->name_key = CF_JSON_NO_KEY;
    return mark;
}

/* Replaces the name with s; `key` is s's offset in strings when s is a
 * NUL-terminated string there (then leaves point at it and nothing is
 * copied), else CF_JSON_NO_KEY.  Only used where the enclosing name is
 * empty, so nothing a caller restores is overwritten. */
static struct name_mark name_set(struct event_storage *st, const char *s,
                                 size_t len, uint32_t key) {
    struct name_mark mark = {st->name_len, st->name_key};
    if (key != CF_JSON_NO_KEY) {
        st->name_len = len;
        st->name_key = key;
        return mark;
    }
    cf_buf_reset(&st->name);
    cf_buf_append(&st->name, s, len);
    if (st->name.failed) {
        mark.len = SIZE_MAX;
        return mark;
    }
    st->name_len = len;
    st->name_key = key;
    return mark;
}

static void name_pop(struct event_storage *st, struct name_mark mark) {
    st->name_len = mark.len;
    st->name_key = mark.key;
    if (mark.key == CF_JSON_NO_KEY) cf_buf_truncate(&st->name, mark.len);
}

/* Whether s[0..n) holds a ' ', eight bytes a step: names are short and
 * checked once per leaf, where a memchr call costs more than the look. */
static bool has_space(const char *s, size_t n) {
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t spaces = ones * ' ', highs = ones * 0x80;
    uint64_t w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        w ^= spaces;
        if ((w - ones) & ~w & highs) return true;
    }
    if (n) {
        /* the bytes past n set, so they never read as a space */
        w = (cf_load_tail((const unsigned char *)s, n) ^ spaces) |
            ~(uint64_t)0 << (8 * n);
        if ((w - ones) & ~w & highs) return true;
    }
    return false;
}

/* Notes that field i's name is an offset in `names` (see composed). */
static bool note_composed(struct event_storage *st, uint32_t i) {
    cf_buf_append(&st->composed, &i, sizeof i);
    return !st->composed.failed;
}

/* Some Windows channels name event fields in words (Windows Defender's
 * "Source Name", "Process Name", "Threat Name"), where Sigma rules and
 * SigmaHQ's own test tooling write the words run together (SourceName).
 * A leaf whose name has spaces is therefore also added under the name
 * with its spaces removed, so rules written either way match and the
 * lookups (rules, entities, suppressions) need no rule of their own.
 * Names without a space, nearly all, cost one has_space. */
static bool emit_unspaced(struct flatten *fl, const struct cf_event_field *f,
                          bool in_names, size_t at) {
    struct event_storage *st = fl->st;
    struct cf_event *ev = fl->ev;
    size_t len = f->name_len, off = st->names.len, kept = 0;
    const char *name;

    if (!has_space((in_names ? st->names.data : st->strings.data) + at, len))
        return true;
    /* Reserved first: `name` may point into `names` itself. */
    if (off + len + 1 > UINT32_MAX / 2 || !cf_buf_reserve(&st->names, len + 1))
        return false;
    name = (in_names ? st->names.data : st->strings.data) + at;
    for (size_t i = 0; i < len; i++)
        if (name[i] != ' ') st->names.data[off + kept++] = name[i];
    if (kept == 0) return true; /* all spaces: nothing to add */
    st->names.data[off + kept] = '\0';
    st->names.len = off + kept + 1;
    st->names.data[st->names.len] = '\0'; /* the buffer's own NUL */
    if (ev->n_fields == ev->cap_fields) {
        struct cf_event_field *nf =
            cf_realloc(ev->fields, 2 * ev->cap_fields * sizeof *nf);
        if (!nf) return false;
        ev->fields = nf;
        ev->cap_fields *= 2;
    }
    struct cf_event_field *u = &ev->fields[ev->n_fields];
    *u = ev->fields[ev->n_fields - 1];
    u->name = (const char *)(uintptr_t)off;
    u->name_len = (uint32_t)kept;
    u->name_hash = cf_hash_name(st->names.data + off, kept);
    return note_composed(st, ev->n_fields++);
}

static bool room_for_field(struct cf_event *ev) {
    if (ev->n_fields < ev->cap_fields) return true;
    uint32_t cap = ev->cap_fields ? ev->cap_fields * 2 : 64;
    struct cf_event_field *nf = cf_realloc(ev->fields, cap * sizeof *nf);
    if (!nf) return false;
    ev->fields = nf;
    ev->cap_fields = cap;
    return true;
}

static uint8_t value_type(uint8_t json_type) {
    switch (json_type) {
    case CF_JSON_NUMBER: return CF_VALUE_NUMBER;
    case CF_JSON_BOOL: return CF_VALUE_BOOL;
    case CF_JSON_NULL: return CF_VALUE_NULL;
    default: return CF_VALUE_STRING;
    }
}

/* Adds a leaf named by the current name with the text value[0..len),
 * which lies in a buffer that does not move during a decode (strings or
 * inner); a composed name's offset in `names` (which may move as it
 * grows) is kept in the pointer field until the decode finishes (see
 * event_storage.composed). */
static bool emit_value(struct flatten *fl, const char *value, uint32_t len,
                       uint8_t type) {
    struct cf_event *ev = fl->ev;
    struct event_storage *st = fl->st;
    struct cf_event_field *f;
    size_t name_at;
    bool in_names;
    uint32_t hash;

    if (st->name_len == 0) return true; /* nameless: nothing can match it */
    if (st->name_len > UINT32_MAX / 2 || !room_for_field(ev)) return false;
    if (st->name_key != CF_JSON_NO_KEY) {
        if (st->name_key != st->last_key) {
            st->last_key = st->name_key;
            st->last_key_hash =
                cf_hash_name(st->strings.data + st->name_key, st->name_len);
        }
        hash = st->last_key_hash;
        name_at = st->name_key;
        in_names = false;
    } else {
        if (!st->have_last_name || st->last_name_len != st->name_len ||
            memcmp(st->names.data + st->last_name_off, st->name.data,
                   st->name_len)) {
            if (st->names.len + st->name_len + 1 > UINT32_MAX / 2) return false;
            st->last_name_off = (uint32_t)st->names.len;
            /* with its NUL, which the buffer keeps after the content */
            cf_buf_append(&st->names, st->name.data, st->name_len + 1);
            if (st->names.failed) return false;
            st->last_name_len = (uint32_t)st->name_len;
            st->last_name_hash = cf_hash_name(st->name.data, st->name_len);
            st->have_last_name = true;
        }
        hash = st->last_name_hash;
        name_at = st->last_name_off;
        in_names = true;
    }

    if (in_names && !note_composed(st, ev->n_fields)) return false;
    f = &ev->fields[ev->n_fields++];
    f->name = in_names ? (const char *)(uintptr_t)name_at
                       : st->strings.data + name_at;
    f->name_len = (uint32_t)st->name_len;
    f->name_hash = hash;
    f->value = value;
    f->value_len = len;
    f->type = type;
    return emit_unspaced(fl, f, in_names, name_at);
}

/* Adds a leaf named by the current name with the scalar node's text. */
static bool emit(struct flatten *fl, const struct cf_json_node *node) {
    return emit_value(fl, fl->strings + node->text_off, node->text_len,
                      value_type(node->type));
}

/* A top-level scalar whose key lies in st->strings (every member of the
 * usual flat event): the leaf emit_value would add under that key, made
 * without setting and restoring the current name, which only composed
 * names need. */
static bool emit_member(struct flatten *fl, const struct cf_json_node *n) {
    struct cf_event *ev = fl->ev;
    if (n->key_len == 0) return true; /* nameless: nothing can match it */
    if (n->key_len > UINT32_MAX / 2 || !room_for_field(ev)) return false;
    uint32_t slot = ev->n_fields;
    const char *key = fl->strings + n->key_off;
    struct cf_event_field *f = &ev->fields[ev->n_fields++];
    bool spaced;
    f->name = key;
    f->name_len = n->key_len;
    f->value = fl->strings + n->text_off;
    f->value_len = n->text_len;
    f->type = value_type(n->type);
    if (slot < NAME_MEMO_SLOTS) {
        struct name_memo *m = &fl->st->memo[slot];
        if (m->len == n->key_len && cf_bytes_equal(m->bytes, key, m->len)) {
            f->name_hash = m->hash;
            return !m->spaced || emit_unspaced(fl, f, false, n->key_off);
        }
        f->name_hash = cf_hash_name(key, n->key_len);
        spaced = has_space(key, n->key_len);
        m->len = 0;
        if (n->key_len <= sizeof m->bytes) {
            memcpy(m->bytes, key, n->key_len);
            m->len = n->key_len;
            m->hash = f->name_hash;
            m->spaced = spaced;
        }
        return !spaced || emit_unspaced(fl, f, false, n->key_off);
    }
    f->name_hash = cf_hash_name(key, n->key_len);
    /* nearly every name has no space: checked here, without the call */
    return !has_space(key, n->key_len) ||
           emit_unspaced(fl, f, false, n->key_off);
}

/* An empty value for a Data element that has a name but no text; the
 * NUL terminating the name's own text serves as its "". */
static bool emit_empty_string(struct flatten *fl,
                              const struct cf_json_node *name) {
    struct cf_json_node empty = {CF_JSON_NO_KEY, 0, 0, 0, 0, CF_JSON_STRING};
    empty.text_off = name->text_off + name->text_len;
    return emit(fl, &empty);
}

static bool key_is(const struct flatten *fl, const struct cf_json_node *n,
                   const char *s, size_t len) {
    return n->key_len == len && memcmp(fl->strings + n->key_off, s, len) == 0;
}

#define KEY_IS(fl, n, lit) key_is((fl), (n), lit, sizeof(lit) - 1)

static const char *key_of(const struct flatten *fl,
                          const struct cf_json_node *n) {
    return fl->strings + n->key_off;
}

/* How a name taken from the document refers to its text: by offset when
 * the document's strings are st->strings, else not at all (copied). */
static uint32_t key_ref(const struct flatten *fl, uint32_t off) {
    return fl->own_keys ? off : CF_JSON_NO_KEY;
}

static long find_member(const struct flatten *fl, uint32_t obj, const char *key,
                        size_t len) {
    for (uint32_t c = obj + 1; c < fl->nodes[obj].end; c = fl->nodes[c].end)
        if (key_is(fl, &fl->nodes[c], key, len)) return (long)c;
    return -1;
}

static bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Plain JSON: nested objects become dotted names, arrays repeat the
 * name once per element. */
static bool flatten_plain(struct flatten *fl, uint32_t i) {
    const struct cf_json_node *n = &fl->nodes[i];
    if (n->type == CF_JSON_OBJECT) {
        for (uint32_t c = i + 1; c < n->end; c = fl->nodes[c].end) {
            const struct cf_json_node *cn = &fl->nodes[c];
            struct name_mark old =
                name_push(fl->st, '.', key_of(fl, cn), cn->key_len);
            if (old.len == SIZE_MAX || !flatten_plain(fl, c)) return false;
            name_pop(fl->st, old);
        }
        return true;
    }
    if (n->type == CF_JSON_ARRAY) {
        for (uint32_t c = i + 1; c < n->end; c = fl->nodes[c].end)
            if (!flatten_plain(fl, c)) return false;
        return true;
    }
    return emit(fl, n);
}

/* One XML element rendered as JSON (xmltodict / evtx conventions): its
 * attributes ("#attributes": {...} or "@attr") become name_attr, its
 * text ("#text") the name itself, child elements name.child. */
static bool fold_element(struct flatten *fl, uint32_t i) {
    const struct cf_json_node *n = &fl->nodes[i];
    if (n->type == CF_JSON_ARRAY) {
        for (uint32_t c = i + 1; c < n->end; c = fl->nodes[c].end)
            if (!fold_element(fl, c)) return false;
        return true;
    }
    if (n->type != CF_JSON_OBJECT) return emit(fl, n);
    for (uint32_t c = i + 1; c < n->end; c = fl->nodes[c].end) {
        const struct cf_json_node *cn = &fl->nodes[c];
        struct name_mark old;
        if (KEY_IS(fl, cn, "#attributes") && cn->type == CF_JSON_OBJECT) {
            for (uint32_t a = c + 1; a < cn->end; a = fl->nodes[a].end) {
                const struct cf_json_node *an = &fl->nodes[a];
                old = name_push(fl->st, '_', key_of(fl, an), an->key_len);
                if (old.len == SIZE_MAX || !fold_element(fl, a)) return false;
                name_pop(fl->st, old);
            }
            continue;
        }
        if (KEY_IS(fl, cn, "#text")) {
            if (!fold_element(fl, c)) return false;
            continue;
        }
        if (cn->key_len > 1 && key_of(fl, cn)[0] == '@')
            old = name_push(fl->st, '_', key_of(fl, cn) + 1, cn->key_len - 1);
        else
            old = name_push(fl->st, '.', key_of(fl, cn), cn->key_len);
        if (old.len == SIZE_MAX || !fold_element(fl, c)) return false;
        name_pop(fl->st, old);
    }
    return true;
}

/* One EventData "Data" element: {"@Name": "X", "#text": v} or
 * {"#attributes": {"Name": "X"}, "#text": v} is the field X = v (an
 * element without text is X = ""); anything else stays "Data". */
static bool fold_data(struct flatten *fl, uint32_t i) {
    const struct cf_json_node *n = &fl->nodes[i];
    long name_idx = -1, text_idx;
    struct name_mark old;
    bool ok;

    if (n->type == CF_JSON_ARRAY) {
        for (uint32_t c = i + 1; c < n->end; c = fl->nodes[c].end)
            if (!fold_data(fl, c)) return false;
        return true;
    }
    if (n->type == CF_JSON_OBJECT) {
        long attrs = find_member(fl, i, "#attributes", 11);
        name_idx = find_member(fl, i, "@Name", 5);
        if (name_idx < 0 && attrs >= 0 &&
            fl->nodes[attrs].type == CF_JSON_OBJECT)
            name_idx = find_member(fl, (uint32_t)attrs, "Name", 4);
        if (name_idx >= 0 && fl->nodes[name_idx].type != CF_JSON_STRING)
            name_idx = -1;
    }
    if (name_idx < 0) {
        old = name_set(fl->st, "Data", 4, CF_JSON_NO_KEY);
        if (old.len == SIZE_MAX) return false;
        ok = fold_element(fl, i);
        name_pop(fl->st, old);
        return ok;
    }
    old = name_set(fl->st, fl->strings + fl->nodes[name_idx].text_off,
                   fl->nodes[name_idx].text_len,
                   key_ref(fl, fl->nodes[name_idx].text_off));
    if (old.len == SIZE_MAX) return false;
    text_idx = find_member(fl, i, "#text", 5);
    ok = text_idx >= 0 ? fold_element(fl, (uint32_t)text_idx)
                       : emit_empty_string(fl, &fl->nodes[name_idx]);
    name_pop(fl->st, old);
    return ok;
}

/* Runs `fold` on member c with the name set to c's key, then restores
 * the name: a top-level member, or a member of a section, starts a new
 * name rather than extending the current one. */
static bool fold_renamed(struct flatten *fl, uint32_t c,
                         bool (*fold)(struct flatten *, uint32_t)) {
    const struct cf_json_node *cn = &fl->nodes[c];
    struct name_mark old =
        name_set(fl->st, key_of(fl, cn), cn->key_len, key_ref(fl, cn->key_off));
    bool ok;
    if (old.len == SIZE_MAX) return false;
    ok = fold(fl, c);
    name_pop(fl->st, old);
    return ok;
}

/* Children of a section (System, EventData, a UserData wrapper) become
 * top-level names. */
static bool fold_section(struct flatten *fl, uint32_t i, bool data) {
    const struct cf_json_node *n = &fl->nodes[i];
    if (n->type != CF_JSON_OBJECT) return true;
    for (uint32_t c = i + 1; c < n->end; c = fl->nodes[c].end) {
        const struct cf_json_node *cn = &fl->nodes[c];
        if (KEY_IS(fl, cn, "#attributes") || KEY_IS(fl, cn, "@xmlns"))
            continue; /* namespace declarations, never matched on */
        if (data && KEY_IS(fl, cn, "Data")) {
            if (!fold_data(fl, c)) return false;
            continue;
        }
        if (!fold_renamed(fl, c, fold_element)) return false;
    }
    return true;
}

/* {"Event": {"System": ..., "EventData": ..., "UserData": ...}} */
static bool fold_event(struct flatten *fl, uint32_t i) {
    const struct cf_json_node *n = &fl->nodes[i];
    for (uint32_t c = i + 1; c < n->end; c = fl->nodes[c].end) {
        const struct cf_json_node *cn = &fl->nodes[c];
        bool ok;
        if (KEY_IS(fl, cn, "#attributes")) continue;
        if (KEY_IS(fl, cn, "System")) {
            ok = fold_section(fl, c, false);
        } else if (KEY_IS(fl, cn, "EventData")) {
            ok = fold_section(fl, c, true);
        } else if (KEY_IS(fl, cn, "UserData") && cn->type == CF_JSON_OBJECT) {
            /* UserData holds one provider-specific wrapper element. */
            ok = true;
            for (uint32_t w = c + 1; ok && w < cn->end; w = fl->nodes[w].end)
                ok = fold_section(fl, w, true);
        } else {
            ok = fold_renamed(fl, c, fold_element);
        }
        if (!ok) return false;
    }
    return true;
}

/* Winlogbeat 7/8 and Elastic Agent (ECS): {"winlog": {"channel": ...,
 * "event_id": ..., "computer_name": ..., "provider_name": ...,
 * "event_data": {...}, "user_data": {...}}}.  The four named members
 * take the names the flat shape gives them, event_data's and
 * user_data's members become top-level names, and the rest of winlog
 * stays dotted (winlog.record_id). */
static bool fold_winlog(struct flatten *fl, uint32_t i) {
    static const struct {
        const char *key, *name;
    } renames[] = {{"channel", "Channel"},
                   {"event_id", "EventID"},
                   {"computer_name", "Computer"},
                   {"provider_name", "Provider_Name"}};
    const struct cf_json_node *n = &fl->nodes[i];
    for (uint32_t c = i + 1; c < n->end; c = fl->nodes[c].end) {
        const struct cf_json_node *cn = &fl->nodes[c];
        const char *name = NULL;
        struct name_mark old;
        bool ok;
        if ((KEY_IS(fl, cn, "event_data") || KEY_IS(fl, cn, "user_data")) &&
            cn->type == CF_JSON_OBJECT) {
            for (uint32_t d = c + 1; d < cn->end; d = fl->nodes[d].end)
                if (!fold_renamed(fl, d, flatten_plain)) return false;
            continue;
        }
        for (size_t r = 0; !name && r < CF_ARRAY_LEN(renames); r++)
            if (key_is(fl, cn, renames[r].key, strlen(renames[r].key)))
                name = renames[r].name;
        if (name) {
            old = name_set(fl->st, name, strlen(name), CF_JSON_NO_KEY);
        } else {
            old = name_set(fl->st, "winlog", 6, CF_JSON_NO_KEY);
            if (old.len != SIZE_MAX &&
                name_push(fl->st, '.', key_of(fl, cn), cn->key_len).len ==
                    SIZE_MAX)
                old.len = SIZE_MAX;
        }
        if (old.len == SIZE_MAX) return false;
        ok = flatten_plain(fl, c);
        name_pop(fl->st, old);
        if (!ok) return false;
    }
    return true;
}

static bool xml_leaf(void *ctx, const char *name, size_t name_len,
                     const char *value, size_t value_len) {
    struct flatten *fl = ctx;
    struct name_mark old = name_set(fl->st, name, name_len, CF_JSON_NO_KEY);
    bool ok;
    if (old.len == SIZE_MAX || value_len > UINT32_MAX) return false;
    ok = emit_value(fl, value, (uint32_t)value_len, CF_VALUE_STRING);
    name_pop(fl->st, old);
    return ok;
}

/* Folds the XML text[0..len) (see event_xml.h) into the event. */
static bool fold_xml(struct flatten *fl, const char *text, size_t len) {
    struct cf_decoder *dec = fl->dec;
    enum cf_xml_status xs;
    if (!dec->xml && !(dec->xml = cf_xml_parser_new())) return false;
    if (!cf_buf_reserve(&fl->st->inner, cf_xml_values_size(len))) return false;
    /* a raw line must be an event; a string was checked by its start */
    xs = cf_xml_fold(dec->xml, text, len, fl->max_depth, !fl->nodes,
                     fl->st->inner.data, xml_leaf, fl);
    switch (xs) {
    case CF_XML_OK: return true;
    case CF_XML_CUT:
        /* inside a string of a complete record, the collector cut it:
         * keep what arrived and say so; a raw line cut short is broken */
        if (fl->nodes) {
            fl->ev->cut_short = true;
            return true;
        }
        fl->why = CF_DEFECT_INVALID_XML;
        return false;
    case CF_XML_INVALID: fl->why = CF_DEFECT_INVALID_XML; return false;
    case CF_XML_DTD: fl->why = CF_DEFECT_XML_DTD; return false;
    case CF_XML_NOT_EVENT: fl->why = CF_DEFECT_XML_NOT_EVENT; return false;
    case CF_XML_TOO_DEEP: fl->why = CF_DEFECT_TOO_DEEP; return false;
    default: return false; /* out of memory */
    }
}

/* Sentinel's WindowsEvent: EventData is a JSON object written as a
 * string; its members become top-level names. */
static bool fold_inner_json(struct flatten *fl, const char *text, size_t len) {
    struct cf_decoder *dec = fl->dec;
    struct cf_json_doc doc;
    enum cf_json_status js;
    struct flatten in = *fl;
    if (!dec->inner_json && !(dec->inner_json = cf_json_parser_new()))
        return false;
    if (!cf_buf_reserve(&fl->st->inner, cf_json_strings_size(len)))
        return false;
    js = cf_json_parse(dec->inner_json, text, len, fl->max_depth,
                       fl->st->inner.data, &doc);
    if (js == CF_JSON_NOMEM) return false;
    if (js == CF_JSON_TOO_DEEP) fl->why = CF_DEFECT_TOO_DEEP;
    if (js != CF_JSON_OK) {
        if (!fl->why) fl->why = CF_DEFECT_INVALID_EMBEDDED_JSON;
        return false;
    }
    in.nodes = doc.nodes;
    in.strings = doc.strings;
    in.own_keys = false;
    for (uint32_t c = 1; c < doc.nodes[0].end; c = doc.nodes[c].end)
        if (!fold_renamed(&in, c, flatten_plain)) {
            fl->why = in.why;
            return false;
        }
    return true;
}

static bool is_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

/* One key=value of an audit record: the value, unquoted, copied to
 * st->inner (reserved by the caller) and NUL-terminated. */
static bool audit_field(struct flatten *fl, const char *key, size_t key_len,
                        const char *v, size_t v_len) {
    struct cf_buf *in = &fl->st->inner;
    char *value = in->data + in->len;
    if (v_len >= 2 && v[0] == '"' && v[v_len - 1] == '"') {
        v++;
        v_len -= 2;
    }
    /* within the reservation (the record's own length plus a NUL per
     * field), so the buffer does not move */
    cf_buf_append(in, v, v_len);
    cf_buf_putc(in, '\0');
    return xml_leaf(fl, key, key_len, value, v_len);
}

/* An auditd or AUOMS record as Sentinel's Syslog table holds it:
 * `type=EXECVE msg=audit(1652292621.986:84138): a0="x" ...` or
 * `type=AUOMS_EXECVE audit(...): ... proctitle=/bin/java -Dx=y ...`.
 * Each key=value becomes a field; a word that is not key=value belongs to
 * the value before it (unquoted values with spaces, like proctitle). */
static bool fold_audit(struct flatten *fl, const char *s, size_t n) {
    const char *key = NULL, *val = NULL, *val_end = NULL;
    size_t key_len = 0;
    if (!cf_buf_reserve(&fl->st->inner, 2 * n + 16)) return false;
    for (size_t i = 0; i < n;) {
        size_t j = i, k = i;
        while (i < n && s[i] == ' ') i++;
        if (i == n) break;
        for (k = i; k < n && is_key_char(s[k]); k++) {
        }
        if (k > i && k < n && s[k] == '=') {
            /* a new field: its value runs to the next space, or to the
             * closing quote */
            j = k + 1;
            if (j < n && s[j] == '"') {
                const char *q = memchr(s + j + 1, '"', n - j - 1);
                j = q ? (size_t)(q - s) + 1 : n;
            }
            while (j < n && s[j] != ' ') j++;
            if (key &&
                !audit_field(fl, key, key_len, val, (size_t)(val_end - val)))
                return false;
            key = s + i;
            key_len = k - i;
            val = s + k + 1;
            val_end = s + j;
            if (key_len == 3 && memcmp(key, "msg", 3) == 0 &&
                (size_t)(val_end - val) >= 6 && memcmp(val, "audit(", 6) == 0)
                key = NULL; /* msg=audit(time:serial): not a field */
        } else {
            for (j = i; j < n && s[j] != ' '; j++) {
            }
            if (j - i >= 6 && memcmp(s + i, "audit(", 6) == 0) {
                /* AUOMS's bare audit(time:serial): ends the field before */
                if (key && !audit_field(fl, key, key_len, val,
                                        (size_t)(val_end - val)))
                    return false;
                key = NULL;
            } else if (key) {
                val_end = s + j;
            }
        }
        i = j;
    }
    return !key || audit_field(fl, key, key_len, val, (size_t)(val_end - val));
}

static bool starts_with(const char *s, size_t n, const char *lit) {
    size_t l = strlen(lit);
    return n >= l && memcmp(s, lit, l) == 0;
}

/* Whether s starts with the start tag of element `name`. */
static bool starts_with_tag(const char *s, size_t n, const char *name) {
    size_t l = strlen(name);
    return n > l + 1 && s[0] == '<' && memcmp(s + 1, name, l) == 0 &&
           (s[l + 1] == '>' || s[l + 1] == '/' || is_json_space(s[l + 1]));
}

/* What a string holding a document of its own holds. */
enum embedded { EMB_NONE, EMB_XML, EMB_JSON, EMB_AUDIT };

static enum embedded embedded_kind(const char *s, size_t n, bool syslog) {
    if (syslog) {
        if (starts_with_tag(s, n, "Event")) return EMB_XML;
        return starts_with(s, n, "type=") ? EMB_AUDIT : EMB_NONE;
    }
    if (starts_with_tag(s, n, "EventData") ||
        starts_with_tag(s, n, "UserData") || starts_with_tag(s, n, "DataItem"))
        return EMB_XML;
    return n && *s == '{' ? EMB_JSON : EMB_NONE;
}

/* A top-level string that holds a document of its own: Sentinel's
 * EventData (<EventData>, <UserData> or <DataItem> XML, or a JSON object
 * in WindowsEvent) and SyslogMessage (Sysmon for Linux <Event> XML, or
 * an audit record).  The decoded document replaces the string; an audit
 * record keeps it too, for keyword rules.  A string that is none of these
 * (any other syslog text, even one starting with '<') stays a plain
 * leaf; one that starts as XML or JSON and is broken makes the record a
 * dead letter with its own reason. */
static bool fold_embedded(struct flatten *fl, uint32_t c, bool syslog) {
    const struct cf_json_node *cn = &fl->nodes[c];
    const char *s = fl->strings + cn->text_off;
    size_t n = cn->text_len;
    enum embedded kind;
    while (n && is_json_space(*s)) {
        s++;
        n--;
    }
    kind = embedded_kind(s, n, syslog);
    if (kind != EMB_NONE && !fl->inner_used) {
        fl->inner_used = true;
        cf_buf_reset(&fl->st->inner);
        if (kind == EMB_XML) {
            fl->eventdata_xml = !syslog;
            return fold_xml(fl, s, n);
        }
        if (kind == EMB_JSON) return fold_inner_json(fl, s, n);
        if (!fold_audit(fl, s, n)) return false;
    }
    return fold_renamed(fl, c, flatten_plain);
}

/* Sentinel's Event table names the channel EventLog and the provider
 * Source: given the flat names when the event has none of its own. */
static void rename_event_table(struct cf_event *ev) {
    static const struct {
        const char *from, *to;
    } renames[] = {{"EventLog", "Channel"}, {"Source", "Provider_Name"}};
    for (size_t r = 0; r < CF_ARRAY_LEN(renames); r++) {
        const char *to = renames[r].to;
        int i = cf_event_find(ev, renames[r].from, strlen(renames[r].from), 0);
        if (i < 0 || cf_event_find(ev, to, strlen(to), 0) >= 0) continue;
        for (; i >= 0;
             i = cf_event_find(ev, renames[r].from, strlen(renames[r].from),
                               (uint32_t)i + 1)) {
            ev->fields[i].name = to;
            ev->fields[i].name_len = (uint32_t)strlen(to);
            ev->fields[i].name_hash = cf_hash_name(to, strlen(to));
        }
    }
}

/* The top-level members; the shape is told by a few of their names,
 * compared only when the length fits, so the flat shape pays one switch
 * per member. */
static bool flatten_root(struct flatten *fl) {
    const struct cf_json_node *root = &fl->nodes[0];
    for (uint32_t c = 1; c < root->end; c = fl->nodes[c].end) {
        const struct cf_json_node *cn = &fl->nodes[c];
        bool ok;
        switch (cn->key_len) {
        case 5:
            if (KEY_IS(fl, cn, "Event") && cn->type == CF_JSON_OBJECT &&
                (find_member(fl, c, "System", 6) >= 0 ||
                 find_member(fl, c, "EventData", 9) >= 0)) {
                name_pop(fl->st, (struct name_mark){0, CF_JSON_NO_KEY});
                if (!fold_event(fl, c)) return false;
                continue;
            }
            break;
        case 6:
            if (KEY_IS(fl, cn, "winlog") && cn->type == CF_JSON_OBJECT) {
                if (!fold_winlog(fl, c)) return false;
                continue;
            }
            break;
        case 9:
        case 13:
            if (cn->type == CF_JSON_STRING &&
                (KEY_IS(fl, cn, "EventData") ||
                 KEY_IS(fl, cn, "SyslogMessage"))) {
                if (!fold_embedded(fl, c, cn->key_len == 13)) return false;
                continue;
            }
            break;
        default: break;
        }
        ok = cn->type >= CF_JSON_STRING && fl->own_keys
                 ? emit_member(fl, cn)
                 : fold_renamed(fl, c, flatten_plain);
        if (!ok) return false;
    }
    return true;
}

static const char *status_reason(enum cf_json_status s) {
    switch (s) {
    case CF_JSON_TRUNCATED: return CF_DEFECT_TRUNCATED_JSON;
    case CF_JSON_TOO_DEEP: return CF_DEFECT_TOO_DEEP;
    case CF_JSON_BAD_UTF8: return CF_DEFECT_INVALID_UTF8;
    case CF_JSON_NOT_OBJECT: return CF_DEFECT_NOT_AN_OBJECT;
    case CF_JSON_TOO_LONG: return CF_DEFECT_LINE_TOO_LONG;
    case CF_JSON_NOMEM: return CF_DEFECT_OUT_OF_MEMORY;
    default: return CF_DEFECT_INVALID_JSON;
    }
}

/* The error of a fold that failed: its reason, or out of memory. */
static cf_err_t fold_error(const struct flatten *fl, const char **why) {
    *why = fl->why ? fl->why : CF_DEFECT_OUT_OF_MEMORY;
    if (!fl->why) return CF_ERR_NOMEM;
    return strcmp(fl->why, CF_DEFECT_TOO_DEEP) == 0 ? CF_ERR_LIMIT
                                                    : CF_ERR_PARSE;
}

/* A raw event XML line (WEF, Splunk's XmlWinEventLog): folded to the
 * same leaves; cf_event_json gives it to alerts as a JSON string. */
static cf_err_t decode_xml_line(struct flatten *fl, const char *s, size_t n,
                                const char **why) {
    struct event_storage *st = fl->st;
    fl->inner_used = true;
    if (!fold_xml(fl, s, n)) return fold_error(fl, why);
    while (n && is_json_space(s[n - 1])) n--;
    st->xml = s;
    st->xml_len = n;
    return CF_OK;
}

cf_err_t cf_event_decode(struct cf_decoder *dec, struct cf_event *ev,
                         const char *line, size_t len,
                         const struct cf_decode_limits *limits,
                         const char **reason) {
    size_t max_line = DEFAULT_MAX_LINE;
    unsigned max_depth = DEFAULT_MAX_DEPTH;
    struct cf_json_doc doc;
    enum cf_json_status js;
    struct flatten fl;
    struct event_storage *st;
    const char *why = NULL;
    cf_err_t rc = CF_OK;
    size_t lead = 0;

    if (limits && limits->max_line_bytes) max_line = limits->max_line_bytes;
    if (limits && limits->max_depth) max_depth = limits->max_depth;
    cf_event_reset(ev);
    ev->raw = line;
    ev->raw_len = len;
    if (!ev->storage) {
        if (!(ev->storage = cf_calloc(1, sizeof *st))) {
            why = CF_DEFECT_OUT_OF_MEMORY;
            rc = CF_ERR_NOMEM;
            goto done;
        }
        cf_event_reset(ev); /* the storage's own "nothing cached" marks */
        ev->raw = line;
        ev->raw_len = len;
    }
    st = ev->storage;
    if (len > max_line) {
        why = CF_DEFECT_LINE_TOO_LONG;
        rc = CF_ERR_LIMIT;
        goto done;
    }
    memset(&fl, 0, sizeof fl);
    fl.ev = ev;
    fl.st = st;
    fl.dec = dec;
    fl.max_depth = max_depth;
    fl.own_keys = true;
    while (lead < len && is_json_space(line[lead])) lead++;
    if (lead < len && line[lead] == '<') {
        if ((rc = decode_xml_line(&fl, line + lead, len - lead, &why)) != CF_OK)
            goto done;
    } else {
        if (!cf_buf_reserve(&st->strings, cf_json_strings_size(len))) {
            why = CF_DEFECT_OUT_OF_MEMORY;
            rc = CF_ERR_NOMEM;
            goto done;
        }
        js = cf_json_parse(dec->json, line ? line : "", line ? len : 0,
                           max_depth, st->strings.data, &doc);
        if (js != CF_JSON_OK) {
            why = status_reason(js);
            rc = js == CF_JSON_NOMEM ? CF_ERR_NOMEM
                 : (js == CF_JSON_TOO_DEEP || js == CF_JSON_TOO_LONG)
                     ? CF_ERR_LIMIT
                     : CF_ERR_PARSE;
            goto done;
        }
        fl.nodes = doc.nodes;
        fl.strings = doc.strings;
        if (!flatten_root(&fl)) {
            rc = fold_error(&fl, &why);
            goto done;
        }
    }
    for (size_t k = 0; k < st->composed.len; k += sizeof(uint32_t)) {
        uint32_t i;
        memcpy(&i, st->composed.data + k, sizeof i);
        struct cf_event_field *f = &ev->fields[i];
        f->name = st->names.data + (uintptr_t)f->name;
    }
    if (fl.eventdata_xml) rename_event_table(ev);
    cf_event_read_time_memo(ev, dec->times ? dec->times : dec->builtin_times,
                            &dec->time_memo);
done:
    if (rc != CF_OK) ev->n_fields = 0;
    if (reason) *reason = why;
    return rc;
}

const char *cf_event_json(const struct cf_event *ev, size_t *len) {
    struct event_storage *st = ev->storage;
    const char *s = ev->raw;
    size_t n = s ? ev->raw_len : 0;
    if (st && st->xml) {
        if (!st->json_form.len)
            cf_buf_json_text(&st->json_form, st->xml, st->xml_len);
        if (st->json_form.failed) {
            *len = 4; /* out of memory: still valid JSON */
            return "null";
        }
        *len = st->json_form.len;
        return st->json_form.data;
    }
    while (n && is_json_space(*s)) {
        s++;
        n--;
    }
    while (n && is_json_space(s[n - 1])) n--;
    *len = n;
    return s;
}

bool cf_decimal_parse(const char *s, size_t n, double *out) {
    char text[128];
    size_t i = 0, start;
    if (n == 0 || n >= sizeof text) return false; /* no number is longer */
    if (s[i] == '+' || s[i] == '-') i++;
    for (start = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    }
    if (i == start) return false;
    if (i < n && s[i] == '.') {
        for (start = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == start) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-')) i++;
        for (start = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == start) return false;
    }
    if (i != n) return false;
    /* The grammar is checked; strtod only converts, on a NUL-ended copy. */
    memcpy(text, s, n);
    text[n] = '\0';
    *out = strtod(text, NULL);
    return isfinite(*out);
}
