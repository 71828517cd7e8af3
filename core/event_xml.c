/*
 * event_xml.c - Windows event XML folded to leaves with expat (see
 * event_xml.h for the names it gives).
 *
 * The walk keeps a stack of open elements, each with its role (which
 * section it is in decides how its children are named) and, for an
 * element that names a leaf, the length of its name in `path`.  Text is
 * written straight into the caller's values buffer; text of an element
 * that turns out to have children (indentation) is rewound when the
 * first child opens, so only leaf elements keep their text.
 *
 * Threading: a parser belongs to one thread.
 */
#include "event_xml.h"

#include <expat.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>

#include "buf.h"

enum role {
    R_EVENT,     /* <Event> */
    R_CONTAINER, /* <DataItem> around a bare EventData / UserData */
    R_SYSTEM,    /* children: X = text, X_attr = value */
    R_DATA,      /* EventData or a UserData wrapper: Data Name= or X */
    R_USERDATA,  /* holds one provider-specific wrapper (an R_DATA) */
    R_FIELD      /* names a leaf (or a prefix for its children) */
};

struct frame {
    uint8_t role;
    bool had_child;
    bool had_attrs;    /* leaves were made of its attributes */
    size_t path_len;   /* R_FIELD: its name is path[0..path_len) */
    size_t text_start; /* where its own text starts in values */
};

struct cf_xml_parser {
    XML_Parser xp;
    /* Expat salts its name hashes against collision floods; left to
     * itself it asks the kernel for a new salt on every document, a
     * system call per event.  One secret salt per parser does the same
     * job. */
    unsigned long salt;
    struct frame *frames;
    unsigned depth, cap;
    struct cf_buf path;
    struct cf_buf repaired; /* the text with its escapes mended */
    /* per document */
    char *values;
    size_t values_len, values_cap;
    unsigned max_depth;
    bool event_root;
    enum cf_xml_status status;
    cf_xml_leaf_fn leaf;
    void *ctx;
};

static const XML_Memory_Handling_Suite mem_suite = {cf_malloc, cf_realloc,
                                                    cf_free};

struct cf_xml_parser *cf_xml_parser_new(void) {
    struct cf_xml_parser *p = cf_calloc(1, sizeof *p);
    if (!p) return NULL;
    /* The encoding given here wins over the document's declaration: the
     * text comes from a UTF-8 line or JSON string, whatever it says. */
    if (!(p->xp = XML_ParserCreate_MM("UTF-8", &mem_suite, NULL)) ||
        getrandom(&p->salt, sizeof p->salt, 0) != (ssize_t)sizeof p->salt) {
        if (p->xp) XML_ParserFree(p->xp);
        cf_free(p);
        return NULL;
    }
    return p;
}

void cf_xml_parser_destroy(struct cf_xml_parser *p) {
    if (!p) return;
    XML_ParserFree(p->xp);
    cf_free(p->frames);
    cf_buf_free(&p->path);
    cf_buf_free(&p->repaired);
    cf_free(p);
}

static void fail(struct cf_xml_parser *p, enum cf_xml_status s) {
    if (p->status == CF_XML_OK) p->status = s;
    XML_StopParser(p->xp, XML_FALSE);
}

/* Appends s[0..n) to the values without its NUL. */
static bool put(struct cf_xml_parser *p, const char *s, size_t n) {
    /* cannot happen while entities are refused (event_xml.h); checked
     * all the same, as the buffer is the caller's */
    if (n >= p->values_cap - p->values_len) {
        fail(p, CF_XML_NOMEM);
        return false;
    }
    memcpy(p->values + p->values_len, s, n);
    p->values_len += n;
    return true;
}

/* The text from `start` to the end of the values, NUL-terminated, as a
 * leaf named path[0..name_len). */
static void emit(struct cf_xml_parser *p, size_t name_len, size_t start) {
    if (!put(p, "", 0)) return;
    p->values[p->values_len++] = '\0';
    if (!p->leaf(p->ctx, p->path.data, name_len, p->values + start,
                 p->values_len - 1 - start))
        fail(p, CF_XML_SINK);
}

static bool is_xmlns(const char *a) {
    return strncmp(a, "xmlns", 5) == 0 && (a[5] == '\0' || a[5] == ':');
}

static const char *attr(const char **attrs, const char *name) {
    for (size_t i = 0; attrs[i]; i += 2)
        if (strcmp(attrs[i], name) == 0) return attrs[i + 1];
    return NULL;
}

/* Sets path to the leaf name of a new element: `el` alone, or after the
 * parent field's name and a dot. */
static void set_path(struct cf_xml_parser *p, const struct frame *parent,
                     const char *el) {
    if (parent && parent->role == R_FIELD) {
        cf_buf_truncate(&p->path, parent->path_len);
        cf_buf_putc(&p->path, '.');
    } else {
        cf_buf_reset(&p->path);
    }
    cf_buf_puts(&p->path, el);
}

static enum role role_of(const struct frame *parent, const char *el) {
    int r = parent ? parent->role : -1;
    if (r == R_SYSTEM || r == R_FIELD) return R_FIELD;
    if (r == R_USERDATA) return R_DATA;
    if (r == R_DATA) return R_FIELD;
    /* the root, or a child of Event / DataItem */
    if (strcmp(el, "System") == 0 && r >= 0) return R_SYSTEM;
    if (strcmp(el, "EventData") == 0) return R_DATA;
    if (strcmp(el, "UserData") == 0) return R_USERDATA;
    if (r < 0 && strcmp(el, "Event") == 0) return R_EVENT;
    if (r < 0 && strcmp(el, "DataItem") == 0) return R_CONTAINER;
    return R_FIELD;
}

static void XMLCALL on_start(void *ud, const char *el, const char **attrs) {
    struct cf_xml_parser *p = ud;
    struct frame *parent = p->depth ? &p->frames[p->depth - 1] : NULL;
    struct frame *f;
    const char *data_name = NULL;

    if (p->status != CF_XML_OK) return;
    if (!parent && p->event_root && strcmp(el, "Event") != 0) {
        fail(p, CF_XML_NOT_EVENT);
        return;
    }
    if (p->depth >= p->max_depth) {
        fail(p, CF_XML_TOO_DEEP);
        return;
    }
    if (p->depth == p->cap) {
        unsigned cap = p->cap ? p->cap * 2 : 16;
        struct frame *nf = cf_realloc(p->frames, cap * sizeof *nf);
        if (!nf) {
            fail(p, CF_XML_NOMEM);
            return;
        }
        p->frames = nf;
        p->cap = cap;
        parent = p->depth ? &p->frames[p->depth - 1] : NULL;
    }
    if (parent) {
        parent->had_child = true;
        p->values_len = parent->text_start; /* its text was indentation */
    }
    f = &p->frames[p->depth++];
    memset(f, 0, sizeof *f);
    f->role = (uint8_t)role_of(parent, el);
    if (f->role == R_FIELD) {
        if (parent && parent->role == R_DATA && strcmp(el, "Data") == 0)
            data_name = attr(attrs, "Name");
        set_path(p, data_name ? NULL : parent, data_name ? data_name : el);
        f->path_len = p->path.len;
        /* A Data element's Name is its name, not a leaf of its own. */
        for (size_t i = 0; !data_name && attrs[i]; i += 2) {
            size_t start = p->values_len;
            if (is_xmlns(attrs[i])) continue;
            cf_buf_putc(&p->path, '_');
            cf_buf_puts(&p->path, attrs[i]);
            if (p->path.failed) {
                fail(p, CF_XML_NOMEM);
                return;
            }
            if (!put(p, attrs[i + 1], strlen(attrs[i + 1]))) return;
            emit(p, p->path.len, start);
            cf_buf_truncate(&p->path, f->path_len);
            f->had_attrs = true;
        }
        if (p->path.failed) {
            fail(p, CF_XML_NOMEM);
            return;
        }
    }
    f->text_start = p->values_len;
}

static void XMLCALL on_end(void *ud, const char *el) {
    struct cf_xml_parser *p = ud;
    struct frame *f;
    (void)el;
    if (p->status != CF_XML_OK || p->depth == 0) return;
    f = &p->frames[--p->depth];
    if (f->role == R_FIELD && !f->had_child &&
        (p->values_len > f->text_start || !f->had_attrs)) {
        /* path holds this element's name: no child has changed it */
        emit(p, f->path_len, f->text_start);
    } else {
        p->values_len = f->text_start;
    }
    if (p->depth) p->frames[p->depth - 1].text_start = p->values_len;
}

static void XMLCALL on_text(void *ud, const char *s, int len) {
    struct cf_xml_parser *p = ud;
    const struct frame *f;
    if (p->status != CF_XML_OK || p->depth == 0) return;
    f = &p->frames[p->depth - 1];
    if (f->role != R_FIELD || f->had_child) return;
    put(p, s, (size_t)len);
}

/* Any DTD may declare entities (billion laughs, external files):
 * refused before a declaration is read. */
static void XMLCALL on_doctype(void *ud, const char *name, const char *sysid,
                               const char *pubid, int has_internal_subset) {
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    fail(ud, CF_XML_DTD);
}

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
           c == ':' || (unsigned char)c >= 0x80;
}

/* Sysmon for Linux writes its escapes without their semicolon, a space
 * in its place ("&lt unknown process&gt ", "&quot SELECT"): one of the
 * five predefined entities followed by a space gets the semicolon back
 * instead of the space, followed by anything but a name character or
 * ';' gets it added.  Anything else, an undefined entity included, is
 * left for expat to refuse.  Returns the mended text in p->repaired, or
 * NULL when the text needs nothing (the usual case: one memchr pass) or
 * memory ran out (then p->repaired.failed). */
static const char *repair_escapes(struct cf_xml_parser *p, const char *text,
                                  size_t *len) {
    static const char *const names[] = {"lt", "gt", "amp", "quot", "apos"};
    const char *s = text, *scan = text, *end = text + *len, *amp;
    bool changed = false;
    cf_buf_reset(&p->repaired);
    /* s: copied up to here; scan: searched up to here */
    while ((amp = memchr(scan, '&', (size_t)(end - scan)))) {
        const char *after = NULL;
        for (size_t k = 0; !after && k < CF_ARRAY_LEN(names); k++) {
            size_t l = strlen(names[k]);
            if ((size_t)(end - amp - 1) >= l && !memcmp(amp + 1, names[k], l))
                after = amp + 1 + l;
        }
        scan = amp + 1;
        if (!after || (after < end && (*after == ';' || is_name_char(*after))))
            continue;
        cf_buf_append(&p->repaired, s, (size_t)(after - s));
        cf_buf_putc(&p->repaired, ';');
        s = scan = after < end && *after == ' ' ? after + 1 : after;
        changed = true;
    }
    if (!changed) return NULL;
    cf_buf_append(&p->repaired, s, (size_t)(end - s));
    if (p->repaired.failed) return NULL;
    *len = p->repaired.len;
    return p->repaired.data;
}

enum cf_xml_status cf_xml_fold(struct cf_xml_parser *p, const char *text,
                               size_t len, unsigned max_depth, bool event_root,
                               char *values, cf_xml_leaf_fn leaf, void *ctx) {
    enum XML_Status rc;
    const struct frame *f;
    size_t fixed_len = len, values_cap = cf_xml_values_size(len);
    const char *fixed;
    if (len > INT_MAX / 2) return CF_XML_INVALID;
    /* the values' room stays that of the original: a mended escape still
     * decodes to one character */
    if ((fixed = repair_escapes(p, text, &fixed_len))) {
        text = fixed;
        len = fixed_len;
    } else if (p->repaired.failed) {
        return CF_XML_NOMEM;
    }
    if (!XML_ParserReset(p->xp, "UTF-8")) return CF_XML_NOMEM;
    XML_SetHashSalt(p->xp, p->salt);
    XML_SetUserData(p->xp, p);
    XML_SetElementHandler(p->xp, on_start, on_end);
    XML_SetCharacterDataHandler(p->xp, on_text);
    XML_SetStartDoctypeDeclHandler(p->xp, on_doctype);
    XML_SetParamEntityParsing(p->xp, XML_PARAM_ENTITY_PARSING_NEVER);
    p->depth = 0;
    p->values = values;
    p->values_len = 0;
    p->values_cap = values_cap;
    p->max_depth = max_depth ? max_depth : 1;
    p->event_root = event_root;
    p->status = CF_XML_OK;
    p->leaf = leaf;
    p->ctx = ctx;
    cf_buf_reset(&p->path);
    rc = XML_Parse(p->xp, text, (int)len, XML_TRUE);
    if (p->status != CF_XML_OK) return p->status;
    if (rc == XML_STATUS_OK) return CF_XML_OK;
    switch (XML_GetErrorCode(p->xp)) {
    case XML_ERROR_NO_MEMORY: return CF_XML_NOMEM;
    case XML_ERROR_NO_ELEMENTS:
    case XML_ERROR_UNCLOSED_TOKEN:
    case XML_ERROR_PARTIAL_CHAR:
        /* The input ended early; with an element open that is a cut, and
         * the innermost one's text so far is its value. */
        if (p->depth == 0) return CF_XML_INVALID;
        f = &p->frames[p->depth - 1];
        if (f->role == R_FIELD && !f->had_child &&
            p->values_len > f->text_start)
            emit(p, f->path_len, f->text_start);
        return p->status != CF_XML_OK ? p->status : CF_XML_CUT;
    default: return CF_XML_INVALID;
    }
}
