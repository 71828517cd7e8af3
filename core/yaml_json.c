/*
 * yaml_json.c - libyaml document trees converted to jansson values.
 * Called by the rule loader and the config loader; thread safe (no
 * shared state).
 */
#include "yaml_json.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "buf.h"

static bool scalar_is(const char *s, const char *const *words) {
    for (; *words; words++)
        if (strcmp(s, *words) == 0) return true;
    return false;
}

/* YAML 1.1 resolution of a plain (unquoted) scalar. */
static json_t *plain_scalar(const char *s, size_t len) {
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes",
                                        "YES",  "on",   "On",   "ON",  NULL};
    static const char *const falses[] = {
        "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL};
    if (scalar_is(s, nulls)) return json_null();
    if (scalar_is(s, trues)) return json_true();
    if (scalar_is(s, falses)) return json_false();

    /* Integers: decimal without leading zeros (so "0777" and IDs such as
     * "0x1010" stay strings, as Sigma authors mean them). */
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    if (*p >= '0' && *p <= '9') {
        /* "0777" is a leading zero; "0.5" and "0" are not. */
        bool digits = true;
        bool leading_zero = p[0] == '0' && p[1] >= '0' && p[1] <= '9';
        for (const char *q = p; *q; q++)
            if (*q < '0' || *q > '9') digits = false;
        if (digits && !leading_zero && len < 19) {
            char *end;
            errno = 0;
            long long v = strtoll(s, &end, 10);
            if (errno == 0 && *end == '\0') return json_integer(v);
        }
        /* Floats: digits '.' digits, optional exponent. */
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (errno == 0 && *end == '\0' && strchr(s, '.') && !leading_zero &&
            strspn(p, "0123456789.eE+-") == strlen(p))
            return json_real(d);
    }
    return json_stringn(s, len);
}

/* State of one document's conversion: where we are (the dotted key path,
 * "fusion.window" or "a[1].x", for messages) and the first error. */
struct walk {
    yaml_document_t *doc;
    struct cf_buf path;
    char *errstr;
    size_t errstr_size;
    bool failed;   /* errstr holds the reason */
    char msg[320]; /* scratch for building a message */
};

/* Records "<what> at line L, column C<tail>" as the error (the first one
 * wins) and returns NULL. */
static json_t *walk_fail(struct walk *w, const yaml_node_t *node,
                         const char *what, const char *tail) {
    if (!w->failed)
        cf_seterr(w->errstr, w->errstr_size, CF_ERR_PARSE,
                  "%s at line %zu, column %zu%s", what,
                  node->start_mark.line + 1, node->start_mark.column + 1, tail);
    w->failed = true;
    return NULL;
}

/* " (under 'a.b')" when inside something, for messages. */
static const char *where(struct walk *w) {
    if (!w->path.len || w->path.failed) return "";
    snprintf(w->msg, sizeof w->msg, " (under '%s')", w->path.data);
    return w->msg;
}

/* The line of the first key of `node` equal to `k` (which is a later
 * one): only looked for once a duplicate is known, so the common path
 * costs one hash lookup per key. */
static size_t first_line_of(yaml_document_t *doc, yaml_node_t *node,
                            const yaml_node_t *k) {
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *o = yaml_document_get_node(doc, pair->key);
        if (o && o->type == YAML_SCALAR_NODE &&
            o->data.scalar.length == k->data.scalar.length &&
            memcmp(o->data.scalar.value, k->data.scalar.value,
                   k->data.scalar.length) == 0)
            return o->start_mark.line + 1;
    }
    return 0;
}

static json_t *convert(struct walk *w, yaml_node_t *node, int depth) {
    if (!node) return NULL;
    if (depth > 200)
        return walk_fail(w, node, "nesting deeper than 200", where(w));
    switch (node->type) {
    case YAML_SCALAR_NODE: {
        const char *s = (const char *)node->data.scalar.value;
        size_t len = node->data.scalar.length;
        if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            strlen(s) == len)
            return plain_scalar(s, len);
        return json_stringn(s, len);
    }
    case YAML_SEQUENCE_NODE: {
        json_t *arr = json_array();
        size_t mark = w->path.len, i = 0;
        if (!arr) return NULL;
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++, i++) {
            cf_buf_printf(&w->path, "[%zu]", i);
            json_t *v =
                convert(w, yaml_document_get_node(w->doc, *it), depth + 1);
            cf_buf_truncate(&w->path, mark);
            /* append steals v even when it fails (out of memory) */
            if (!v || json_array_append_new(arr, v)) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    case YAML_MAPPING_NODE: {
        json_t *obj = json_object();
        size_t mark = w->path.len;
        if (!obj) return NULL;
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
            yaml_node_t *k = yaml_document_get_node(w->doc, pair->key);
            if (!k || k->type != YAML_SCALAR_NODE) {
                json_decref(obj);
                return walk_fail(w, k ? k : node,
                                 "unsupported YAML: a mapping key that is "
                                 "not a scalar",
                                 where(w));
            }
            const char *key = (const char *)k->data.scalar.value;
            size_t klen = k->data.scalar.length;
            if (mark) cf_buf_putc(&w->path, '.');
            cf_buf_append(&w->path, key, klen);
            /* YAML allows a key once per mapping; keeping the last one
             * silently lost half of a section written twice. */
            if (json_object_getn(obj, key, klen)) {
                char tail[48];
                snprintf(w->msg, sizeof w->msg, "duplicate key '%s'",
                         w->path.failed ? key : w->path.data);
                snprintf(tail, sizeof tail, " (first at line %zu)",
                         first_line_of(w->doc, node, k));
                cf_buf_truncate(&w->path, mark);
                json_decref(obj);
                return walk_fail(w, k, w->msg, tail);
            }
            json_t *v = convert(w, yaml_document_get_node(w->doc, pair->value),
                                depth + 1);
            cf_buf_truncate(&w->path, mark);
            if (!v) {
                json_decref(obj);
                return NULL;
            }
            /* Keep the key bytes as written.  A key jansson refuses (one
             * with a NUL) is dropped, as before; running out of memory
             * is an error, not a missing key. */
            if (json_object_setn_new(obj, key, klen, v) &&
                memchr(key, '\0', klen) == NULL) {
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    default: return walk_fail(w, node, "unsupported YAML node", where(w));
    }
}

json_t *cf_yaml_to_json(const char *text, size_t len, char *errstr,
                        size_t errstr_size) {
    yaml_parser_t parser;
    json_t *docs = json_array();
    if (!docs) {
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) { /* it only allocates */
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        json_decref(docs);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            if (parser.error == YAML_MEMORY_ERROR)
                cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
            else
                cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                          "YAML syntax error at line %zu, column %zu: %s",
                          parser.problem_mark.line + 1,
                          parser.problem_mark.column + 1,
                          parser.problem ? parser.problem : "unknown problem");
            json_decref(docs);
            docs = NULL;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) { /* end of stream */
            yaml_document_delete(&doc);
            break;
        }
        struct walk w = {.doc = &doc,
                         .path = CF_BUF_INIT,
                         .errstr = errstr,
                         .errstr_size = errstr_size};
        json_t *v = convert(&w, root, 0);
        cf_buf_free(&w.path);
        yaml_document_delete(&doc);
        if (!v) {
            if (!w.failed)
                cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
            json_decref(docs);
            docs = NULL;
            break;
        }
        if (json_array_append_new(docs, v)) {
            cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
            json_decref(docs);
            docs = NULL;
            break;
        }
    }
    yaml_parser_delete(&parser);
    return docs;
}

const char *cf_yaml_json_versions(char *buf, size_t size) {
    snprintf(buf, size, "libyaml %s, jansson %s", yaml_get_version_string(),
             jansson_version_str());
    return buf;
}

char *cf_read_file(const char *path, size_t *len, char *errstr,
                   size_t errstr_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot open %s: %s", path,
                  strerror(errno));
        return NULL;
    }
    /* Sized from the stat, so a rule file is one allocation and one read
     * (thousands of them at a cold start); grown if the file grows. */
    struct stat st;
    size_t cap = 8192, n = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uint64_t)st.st_size < SIZE_MAX / 2)
        cap = (size_t)st.st_size + 1;
    char *text = cf_malloc(cap);
    bool failed = false;
    while (text) {
        if (n + 1 == cap) {
            char *grown = cf_realloc(text, cap * 2);
            if (!grown) {
                cf_free(text);
                text = NULL;
                break;
            }
            text = grown;
            cap *= 2;
        }
        ssize_t got = read(fd, text + n, cap - 1 - n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            failed = got < 0;
            break;
        }
        n += (size_t)got;
    }
    close(fd);
    if (failed || !text) {
        if (failed)
            cf_seterr(errstr, errstr_size, CF_ERR_IO, "cannot read %s", path);
        else
            cf_seterr(errstr, errstr_size, CF_ERR_NOMEM,
                      "out of memory reading %s", path);
        cf_free(text);
        return NULL;
    }
    text[n] = '\0';
    if (len) *len = n;
    return text;
}

const char *cf_scalar_text(const json_t *v, char *buf, size_t size,
                           size_t *len) {
    if (json_is_string(v)) {
        *len = json_string_length(v);
        return json_string_value(v);
    }
    if (json_is_integer(v)) {
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 1e16) {
            /* as Python (pySigma) prints floats: 10.0 stays "10.0" */
            snprintf(buf, size, "%.1f", d);
        } else {
            /* shortest text that reads back as the same double */
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(buf, size, "%.*g", prec, d);
                if (strtod(buf, NULL) == d) break;
            }
        }
    } else if (json_is_true(v)) {
        snprintf(buf, size, "true");
    } else if (json_is_false(v)) {
        snprintf(buf, size, "false");
    } else {
        return NULL;
    }
    *len = strlen(buf);
    return buf;
}
