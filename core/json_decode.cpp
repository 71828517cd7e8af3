/*
 * json_decode.cpp - the C interface of json_decode.h over simdjson's
 * On-Demand API.
 *
 * Why On-Demand rather than the DOM: only it exposes each number's raw
 * token, and events must keep numbers exactly as written ("0x10" is a
 * string anyway, but "4688", "1.50" and "1e3" must stay as they are).
 * Stage 1 (structural indexing and UTF-8 validation) is dispatched at
 * run time to the best kernel for the CPU; the walk below does its own
 * string unescaping with memchr/memcpy because the inline On-Demand
 * string code is compiled for the baseline target.
 *
 * No C++ exception leaves this file: simdjson is used through error
 * codes only, and the entry points catch everything else.
 *
 * Threading: a parser belongs to one thread.
 */
#include "json_decode.h"

#include <simdjson.h>

#include "alloc.h"

#include <cstdlib>
#include <cstring>
#include <new>

extern "C" {
#include "buf.h"
}

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* The flat scanner's AVX-512 unescaping (unescape_wide), compiled for
 * those instructions alone and chosen at run time. */
#define CF_WIDE_STRINGS 1
#define CF_WIDE_TARGET                                                         \
    __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vbmi2,bmi,bmi2,"  \
                          "popcnt")))
#endif

using namespace simdjson;

/* One key of the last document the scanner read, as it stood in the
 * text with the quote and colon after it (`Image":`), to be compared
 * whole with the next document's key at the same position. */
struct cf_key_memo {
    char raw[32]; /* key, '"', ':', then zeros */
    uint32_t len; /* bytes of raw in use; 0: nothing remembered */
};

/* Keys remembered per position (the document's keys in order, nested
 * ones too): a Sysmon event has about 25. */
#define CF_KEY_MEMO_SLOTS 48

struct cf_json_parser {
    ondemand::parser parser;
    cf_buf padded = CF_BUF_INIT; /* the input plus SIMDJSON_PADDING */
    cf_json_node *nodes = nullptr;
    uint32_t n_nodes = 0;
    uint32_t cap_nodes = 0;
    char *strings = nullptr; /* the caller's, sized by cf_json_strings_size */
    size_t str_len = 0;
    unsigned max_depth = 0; /* the parse in progress's nesting bound */
    /* The CPU has what unescape_wide needs (AVX-512 VBMI2), and the
     * parse in progress may use it. */
    bool wide_cpu = false;
    bool wide = false;
    /* Consecutive events of one source repeat their keys in the same
     * order: a key byte-identical to the last document's at its position
     * (keys counted in document order, key_no) is taken by one compare
     * instead of a scan (flat_container). */
    cf_key_memo keys[CF_KEY_MEMO_SLOTS] = {};
    uint32_t key_no = 0;
};

namespace {

/* The 2 GiB bound keeps every offset in uint32 with room for the
 * strings buffer being up to twice the input. */
constexpr size_t max_input = (size_t)1 << 31;

/* Compact JSON has no blanks: one compare decides for almost every byte
 * the flat scanner asks about. */
bool is_ws(char c) {
    return (unsigned char)c <= ' ' &&
           (c == ' ' || c == '\t' || c == '\n' || c == '\r');
}

std::string_view trim_right(std::string_view s) {
    size_t n = s.size();
    while (n > 0 && is_ws(s[n - 1])) n--;
    return s.substr(0, n);
}

/* JSON number grammar; simdjson's stage 1 only finds where a scalar
 * starts, and we take the raw token without asking simdjson to convert
 * it, so the grammar is checked here. */
bool valid_number(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i >= n) return false;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == start) return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == start) return false;
    }
    return i == n;
}

int hex4(const char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Copies [s, e) to d up to the first backslash; returns its offset
 * from s, or e - s when there is none.  Works 16 bytes at a time and may
 * read up to 15 bytes past e (the input is padded) and write up to 15
 * bytes past d + (e - s) (cf_json_strings_size leaves that room; the
 * excess is overwritten by what comes next). */
size_t copy_to_backslash(const char *s, const char *e, char *d) {
    size_t n = (size_t)(e - s), i = 0;
#ifdef __SSE2__
    const __m128i bs = _mm_set1_epi8('\\');
    for (; i < n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        _mm_storeu_si128((__m128i *)(d + i), v);
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, bs));
        if (mask) {
            size_t at = i + (size_t)__builtin_ctz(mask);
            return at < n ? at : n;
        }
    }
    return n;
#else
    for (; i < n && s[i] != '\\'; i++) d[i] = s[i];
    return i;
#endif
}

/* What each one-letter escape \c stands for; '\0' for \u and for what
 * is not an escape.  A table: a message has dozens of escapes. */
struct escape_table {
    char to[256];
    constexpr escape_table() : to() {
        to[(unsigned char)'"'] = '"';
        to[(unsigned char)'\\'] = '\\';
        to[(unsigned char)'/'] = '/';
        to[(unsigned char)'b'] = '\b';
        to[(unsigned char)'f'] = '\f';
        to[(unsigned char)'n'] = '\n';
        to[(unsigned char)'r'] = '\r';
        to[(unsigned char)'t'] = '\t';
    }
};
constexpr escape_table one_letter_escapes;

/* Decodes the escape whose backslash is at s[-1], writing its UTF-8 to
 * *d and advancing it.  Returns the byte after the escape, or nullptr on
 * a bad escape or a lone surrogate (e bounds the reads). */
const char *decode_escape(const char *s, const char *e, char **d) {
    char *o = *d;
    if (s >= e) return nullptr;
    char one = one_letter_escapes.to[(unsigned char)*s];
    if (one) {
        *o++ = one;
        s++;
    } else if (*s++ == 'u') {
        if (e - s < 4) return nullptr;
        int cp = hex4(s);
        if (cp < 0) return nullptr;
        s += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (e - s < 6 || s[0] != '\\' || s[1] != 'u') return nullptr;
            int lo = hex4(s + 2);
            if (lo < 0xDC00 || lo > 0xDFFF) return nullptr;
            s += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return nullptr;
        }
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (cp < 0x800) {
            *o++ = (char)(0xC0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xE0 | (cp >> 12));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *o++ = (char)(0xF0 | (cp >> 18));
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
    } else {
        return nullptr;
    }
    *d = o;
    return s;
}

/* Unescapes the string body [s, e) into dst (which has room for e - s
 * bytes plus the 15 of copy_to_backslash: an escape never expands).
 * Returns the length or -1 on a bad escape or a lone surrogate. */
long unescape(const char *s, const char *e, char *dst) {
    char *d = dst;
    for (;;) {
        size_t run = copy_to_backslash(s, e, d);
        d += run;
        s += run;
        if (s >= e) break;
        if (!(s = decode_escape(s + 1, e, &d))) return -1;
    }
    return (long)(d - dst);
}

/* Whether the document merely stops early (unclosed string, object or
 * array) as opposed to being malformed: used to tell "truncated JSON"
 * from "invalid JSON" once simdjson has refused the text. */
bool looks_truncated(const char *s, size_t n) {
    /* Open brackets, to tell {"a":[1} (invalid) from {"a":[1 (cut);
     * past the array's depth only the count is kept. */
    char open[256];
    long depth = 0;
    bool in_string = false;
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (depth < (long)sizeof open) open[depth] = c;
            depth++;
            seen = true;
        } else if (c == '}' || c == ']') {
            if (--depth < 0) return false;
            char want = c == '}' ? '{' : '[';
            if (depth < (long)sizeof open && open[depth] != want) return false;
        }
    }
    return seen && (in_string || depth > 0);
}

/* Appends a node; -1 when out of memory. */
long push_node(cf_json_parser *p, uint32_t key_off, uint32_t key_len,
               uint8_t type) {
    if (p->n_nodes == p->cap_nodes) {
        uint32_t cap = p->cap_nodes ? p->cap_nodes * 2 : 256;
        void *n = cf_realloc(p->nodes, cap * sizeof *p->nodes);
        if (!n) return -1;
        p->nodes = (cf_json_node *)n;
        p->cap_nodes = cap;
    }
    cf_json_node *node = &p->nodes[p->n_nodes];
    node->key_off = key_off;
    node->key_len = key_len;
    node->text_off = 0;
    node->text_len = 0;
    node->end = p->n_nodes + 1;
    node->type = type;
    return (long)p->n_nodes++;
}

/* Ends the n bytes just written at the end of the strings buffer (sized
 * so that this cannot overflow, see parse) with a NUL and takes them as
 * the next string: its offset and length into *off and *len. */
void commit_text(cf_json_parser *p, size_t n, uint32_t *off, uint32_t *len) {
    /* read once: the NUL's store may alias anything */
    size_t at = p->str_len;
    p->strings[at + n] = '\0';
    *off = (uint32_t)at;
    *len = (uint32_t)n;
    p->str_len = at + n + 1;
}

/* Appends s[0..n) as the next string. */
void put_text(cf_json_parser *p, const char *s, size_t n, uint32_t *off,
              uint32_t *len) {
    memcpy(p->strings + p->str_len, s, n);
    commit_text(p, n, off, len);
}

class walker {
  public:
    walker(cf_json_parser *p, unsigned max_depth)
        : p_(p), max_depth_(max_depth) {}

    cf_json_status status = CF_JSON_OK;
    error_code error = SUCCESS;

    bool object(ondemand::object obj, uint32_t key_off, uint32_t key_len,
                unsigned depth) {
        long idx = push(key_off, key_len, CF_JSON_OBJECT);
        if (idx < 0) return false;
        for (auto member : obj) {
            ondemand::field field;
            if ((error = std::move(member).get(field))) return false;
            uint32_t k_off, k_len;
            if (!key(field.key(), &k_off, &k_len)) return false;
            ondemand::value v = field.value();
            if (!value(v, k_off, k_len, depth)) return false;
        }
        p_->nodes[idx].end = p_->n_nodes;
        return true;
    }

  private:
    cf_json_parser *p_;
    unsigned max_depth_;

    long push(uint32_t key_off, uint32_t key_len, uint8_t type) {
        long idx = push_node(p_, key_off, key_len, type);
        if (idx < 0) status = CF_JSON_NOMEM;
        return idx;
    }

    /* Appends the unescaped body [s, e) NUL-terminated to the strings
     * buffer (sized so that this cannot overflow, see cf_json_parse). */
    bool add_text(const char *s, const char *e, bool escaped, uint32_t *off,
                  uint32_t *len) {
        if (!escaped) {
            put_text(p_, s, (size_t)(e - s), off, len);
            return true;
        }
        long n = unescape(s, e, p_->strings + p_->str_len);
        if (n < 0) {
            status = CF_JSON_INVALID;
            return false;
        }
        commit_text(p_, (size_t)n, off, len);
        return true;
    }

    bool key(ondemand::raw_json_string raw, uint32_t *off, uint32_t *len) {
        /* raw points just past the opening quote; stage 1 proved the
         * string is closed, so the scan stops at its closing quote. */
        const char *s = (const char *)raw.raw();
        const char *e = s;
#ifdef __SSE2__
        /* Keys are short and rarely escaped: copy 16 bytes at a time
         * while looking for the closing quote (same bounds as
         * copy_to_backslash: a key is always followed by its value). */
        char *dst = p_->strings + p_->str_len;
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i bs = _mm_set1_epi8('\\');
        for (size_t i = 0;; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
            _mm_storeu_si128((__m128i *)(dst + i), v);
            unsigned m = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bs)));
            if (m) {
                e = s + i + __builtin_ctz(m);
                break;
            }
        }
        if (*e == '"') {
            commit_text(p_, (size_t)(e - s), off, len);
            return true;
        }
#endif
        bool escaped = false;
        while (*e != '"') {
            if (*e == '\\') {
                escaped = true;
                e++;
            }
            e++;
        }
        return add_text(s, e, escaped, off, len);
    }

    /* The raw token is read first (it does not move the iterator), then
     * the value is consumed through simdjson: an unconsumed value is
     * skipped token by token when the walk moves on, and that skip does
     * not check the grammar ({"a":"b":"c"} would pass). */
    bool scalar_text(ondemand::value &v, uint32_t *off, uint32_t *len,
                     bool is_string) {
        std::string_view tok = trim_right(v.raw_json_token());
        if (is_string) {
            ondemand::raw_json_string raw;
            if ((error = v.get_raw_json_string().get(raw))) return false;
            if (tok.size() < 2 || tok.back() != '"') {
                status = CF_JSON_INVALID;
                return false;
            }
            return add_text(tok.data() + 1, tok.data() + tok.size() - 1, true,
                            off, len);
        }
        /* Numbers are not converted (a 128-bit id or 1e400 is still a
         * valid event value and simdjson 3.0 would refuse it), so they
         * are never consumed either.  Skipping an unconsumed scalar is
         * exact when a ',', '}' or ']' follows it, which is checked
         * here; the token's raw view runs up to that next character. */
        std::string_view untrimmed = v.raw_json_token();
        char next = untrimmed.data()[untrimmed.size()];
        if (next != ',' && next != '}' && next != ']') {
            status = CF_JSON_INVALID;
            return false;
        }
        if (!valid_number(tok.data(), tok.size())) {
            status = CF_JSON_INVALID;
            return false;
        }
        return add_text(tok.data(), tok.data() + tok.size(), false, off, len);
    }

    bool value(ondemand::value &v, uint32_t key_off, uint32_t key_len,
               unsigned depth) {
        ondemand::json_type type;
        if ((error = v.type().get(type))) return false;
        switch (type) {
        case ondemand::json_type::object: {
            if (depth + 1 > max_depth_) {
                status = CF_JSON_TOO_DEEP;
                return false;
            }
            ondemand::object obj;
            if ((error = v.get_object().get(obj))) return false;
            return object(obj, key_off, key_len, depth + 1);
        }
        case ondemand::json_type::array: {
            if (depth + 1 > max_depth_) {
                status = CF_JSON_TOO_DEEP;
                return false;
            }
            ondemand::array arr;
            if ((error = v.get_array().get(arr))) return false;
            long idx = push(key_off, key_len, CF_JSON_ARRAY);
            if (idx < 0) return false;
            for (auto element : arr) {
                ondemand::value ev;
                if ((error = std::move(element).get(ev))) return false;
                if (!value(ev, CF_JSON_NO_KEY, 0, depth + 1)) return false;
            }
            p_->nodes[idx].end = p_->n_nodes;
            return true;
        }
        case ondemand::json_type::string:
        case ondemand::json_type::number: {
            bool is_string = type == ondemand::json_type::string;
            long idx = push(key_off, key_len,
                            is_string ? CF_JSON_STRING : CF_JSON_NUMBER);
            if (idx < 0) return false;
            uint32_t off, len;
            if (!scalar_text(v, &off, &len, is_string)) return false;
            p_->nodes[idx].text_off = off;
            p_->nodes[idx].text_len = len;
            return true;
        }
        case ondemand::json_type::boolean: {
            bool b;
            if ((error = v.get_bool().get(b))) return false;
            long idx = push(key_off, key_len, CF_JSON_BOOL);
            if (idx < 0) return false;
            static const char t[] = "true", f[] = "false";
            const char *s = b ? t : f;
            return add_text(s, s + (b ? 4 : 5), false, &p_->nodes[idx].text_off,
                            &p_->nodes[idx].text_len);
        }
        case ondemand::json_type::null: {
            bool is_null;
            if ((error = v.is_null().get(is_null))) return false;
            if (!is_null) {
                status = CF_JSON_INVALID;
                return false;
            }
            long idx = push(key_off, key_len, CF_JSON_NULL);
            if (idx < 0) return false;
            /* The empty string every null points at. */
            return add_text("", "", false, &p_->nodes[idx].text_off,
                            &p_->nodes[idx].text_len);
        }
        }
        status = CF_JSON_INVALID;
        return false;
    }
};

/* ---- the scanner, without simdjson ------------------------------------
 *
 * For events, running simdjson's stage 1 and then walking the On-Demand
 * iterator (which re-checks every step) cost more than the events' own
 * bytes: a third of decoding for flat objects, and with nested ones
 * (Winlogbeat's winlog.event_data, the OTRF recordings' "tags" array) the
 * walk alone took a fifth of the whole process.  The scanner below reads
 * the document in one pass, copying and unescaping strings 16 bytes a step
 * as the walker does and checking their UTF-8 as it goes, and builds the
 * same nodes in the same order.  It accepts only what simdjson accepts
 * and yields the same nodes and strings (tests/unit/test_json_flat.c
 * compares the two on every shared recording and on mutated lines);
 * anything else (a byte it is not sure of, nesting past the bound, any
 * error) declines, and simdjson parses the text and words the error as
 * before.  ("flat": it was first written for flat objects alone.)
 *
 * Reading is one chain: where a token starts depends on where the last
 * one ended.  So what is decided per token is kept short and in
 * registers: a key the last document had at the same position is taken
 * by one compare (memo_key), a plain value under 32 bytes is read inline
 * by flat_value, and a string's end is told by the masks of its step
 * rather than by reading the byte there again. */

enum class flat { ok, declined, nomem };

/* The length of the well-formed UTF-8 sequence that starts with the
 * non-ASCII byte s[0] (the Unicode standard's table 3-7: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0 when it is not one
 * or does not fit in s[0..n). */
size_t utf8_sequence(const unsigned char *s, size_t n) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n <= need || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k <= need; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    return need + 1;
}

size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && is_ws(s[i])) i++;
    return i;
}

#ifdef CF_WIDE_STRINGS
/* The rest of a string from its first backslash or non-ASCII byte at
 * s[*at], unescaped to *out, 64 bytes a step with AVX-512; *at ends on
 * the closing quote.  False for what is not a JSON string.
 *
 * Why: Windows events escape a backslash every few bytes of a path and
 * end every line of a message with \r\n, and flat_string's SSE2 loop
 * stops at each escape on a branch the CPU cannot predict.  Here a step
 * finds the escapes of its 64 bytes as bit masks, translates the escaped
 * letters with one table lookup (vpermi2b) and squeezes the escaping
 * backslashes out (vpcompressb).  It stops only at the closing quote, a
 * \u escape, a non-ASCII byte (checked by utf8_sequence) or an error.
 * Plain ASCII strings (keys, most values) stay in the SSE2 loop, where
 * the next load need not wait for the last step's masks: sending every
 * string here decoded LSASS events 1.3 times slower.  A masked load
 * costs far more than a plain one on this machine's CPU, so only the
 * text's last 63 bytes are read masked; nothing past s[n) is read.  Each
 * step writes 64 bytes at *out (cf_json_strings_size leaves that room). */
CF_WIDE_TARGET
bool unescape_wide(const char *s, size_t n, size_t *at, char **out) {
    const __m512i quote = _mm512_set1_epi8('"');
    const __m512i backslash = _mm512_set1_epi8('\\');
    const __m512i last_control = _mm512_set1_epi8(0x1F);
    const __m512i table_lo = _mm512_loadu_si512(one_letter_escapes.to);
    const __m512i table_hi = _mm512_loadu_si512(one_letter_escapes.to + 64);
    const uint64_t top = (uint64_t)1 << 63;
    size_t i = *at;
    char *d = *out;
    for (;;) {
        size_t avail = n - i;
        uint64_t in = ~(uint64_t)0;
        __m512i v;
        /* a masked load costs more than a plain one: only at the end */
        if (avail >= 64) {
            v = _mm512_loadu_si512(s + i);
        } else {
            in = _bzhi_u64(in, (unsigned)avail);
            v = _mm512_maskz_loadu_epi8(in, s + i);
        }
        uint64_t quotes = _mm512_cmpeq_epi8_mask(v, quote);
        uint64_t slashes = _mm512_cmpeq_epi8_mask(v, backslash);
        uint64_t controls = _mm512_cmple_epu8_mask(v, last_control);
        uint64_t high = _mm512_movepi8_mask(v);
        /* The escaping backslashes: in each run of backslashes, those at
         * an even offset from its start (a step never starts on an
         * escaped byte, see below); each escapes the byte after it.
         * Without a loop, as simdjson finds them: adding a run's first
         * bit clears the run, so the runs that start on an even bit are
         * the backslashes that adding the even starts clears. */
        const uint64_t even = UINT64_C(0x5555555555555555);
        uint64_t starts = slashes & ~(slashes << 1);
        uint64_t even_runs = slashes & ~(slashes + (starts & even));
        uint64_t escapes = (even_runs & even) | (slashes & ~even_runs & ~even);
        uint64_t escaped = escapes << 1;
        __m512i letters = _mm512_permutex2var_epi8(table_lo, v, table_hi);
        /* \u, a letter that is no escape, or a non-ASCII byte escaped:
         * stop at its backslash. */
        uint64_t odd =
            escaped & (_mm512_testn_epi8_mask(letters, letters) | high);
        uint64_t stops = ((quotes | controls | high) & ~escaped) | (odd >> 1) |
                         (escapes & top) | ~in;
        unsigned k = stops ? (unsigned)_tzcnt_u64(stops) : 64;
        uint64_t keep = _bzhi_u64(~escapes, k);
        __m512i packed = _mm512_maskz_compress_epi8(
            keep, _mm512_mask_mov_epi8(v, escaped, letters));
        _mm512_storeu_si512(d, packed);
        d += _mm_popcnt_u64(keep);
        i += k;
        if (k == 64) continue;
        if (i >= n) return false; /* not closed */
        unsigned char c = (unsigned char)s[i];
        if (c == '"') break;
        if (c == '\\') {
            /* An escape split by the step's end starts the next step;
             * otherwise \uXXXX, or an error. */
            if (k == 63 && (escapes & top)) continue;
            const char *next = decode_escape(s + i + 1, s + n, &d);
            if (!next) return false;
            i = (size_t)(next - s);
            continue;
        }
        if (c < 0x80) return false; /* a raw control character */
        size_t seq = utf8_sequence((const unsigned char *)s + i, n - i);
        if (!seq) return false;
        memcpy(d, s + i, seq);
        d += seq;
        i += seq;
    }
    *at = i;
    *out = d;
    return true;
}
#endif

#ifdef __SSE2__
/* Copies the 16 bytes at s to d; returns the bits of those that stop a
 * plain string (quote, backslash, a control or non-ASCII byte), and in
 * *quotes those of the quotes. */
inline uint32_t plain_block(const char *s, char *d, uint32_t *quotes) {
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bs = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1F);
    __m128i v = _mm_loadu_si128((const __m128i *)s);
    _mm_storeu_si128((__m128i *)d, v);
    __m128i q = _mm_cmpeq_epi8(v, quote);
    /* v <= 0x1F, or a non-ASCII byte (its high bit, which movemask
     * reads) */
    __m128i stop =
        _mm_or_si128(_mm_or_si128(q, _mm_cmpeq_epi8(v, bs)),
                     _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v), v));
    *quotes = (uint32_t)_mm_movemask_epi8(q);
    return (uint32_t)_mm_movemask_epi8(stop);
}
#endif

/* The string whose body starts at s[*pos] (just past its opening quote),
 * unescaped into the strings buffer and NUL-terminated; *pos moves past
 * the closing quote.  False for what is not a JSON string: unclosed, a
 * raw control character, a bad escape.  Reads stay inside s[0..n);
 * writes may run 63 bytes past the text (cf_json_strings_size leaves
 * that room; the excess is overwritten by what comes next). */
bool flat_string(cf_json_parser *p, const char *s, size_t n, size_t *pos,
                 uint32_t *off, uint32_t *len) {
    size_t i = *pos;
    char *dst = p->strings + p->str_len, *d = dst;
    for (;;) {
#ifdef __SSE2__
        uint32_t m = 0, q = 0;
        for (; i + 16 <= n; i += 16, d += 16)
            if ((m = plain_block(s + i, d, &q)) != 0) break;
        if (m) {
            unsigned k = (unsigned)__builtin_ctz(m);
            i += k;
            d += k;
            /* told by the masks, not by reading s[i] again after them */
            if (q >> k & 1) break;
        } else
#endif
        {
            while (i < n && s[i] != '"' && s[i] != '\\' &&
                   (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x80)
                *d++ = s[i++];
            if (i >= n) return false;
            if (s[i] == '"') break;
        }
#ifdef CF_WIDE_STRINGS
        /* The rest of a string with escapes or UTF-8 goes 64 bytes a
         * step (unescape_wide). */
        if (p->wide && (s[i] == '\\' || (unsigned char)s[i] >= 0x80)) {
            if (!unescape_wide(s, n, &i, &d)) return false;
            break;
        }
#endif
        if ((unsigned char)s[i] >= 0x80) {
            /* UTF-8 is checked here, in the strings, where all of it is:
             * outside them a non-ASCII byte is not JSON anyway. */
            size_t len = utf8_sequence((const unsigned char *)s + i, n - i);
            if (!len) return false;
            memcpy(d, s + i, len);
            d += len;
            i += len;
            continue;
        }
        if (s[i] != '\\') return false;
        /* Paths escape a backslash every few bytes and rendered
         * messages end every line with \r\n: the one-letter escapes
         * without the call. */
        char one =
            i + 1 < n ? one_letter_escapes.to[(unsigned char)s[i + 1]] : '\0';
        if (one) {
            *d++ = one;
            i += 2;
            continue;
        }
        const char *next = decode_escape(s + i + 1, s + n, &d);
        if (!next) return false;
        i = (size_t)(next - s);
    }
    commit_text(p, (size_t)(d - dst), off, len);
    *pos = i + 1;
    return true;
}

bool number_char(char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
           c == 'e' || c == 'E';
}

/* Whether the key at s[*pos] (just past its opening quote) is the one
 * remembered for key k of the document, quote and colon included; if so, takes
 * it as flat_string would have (the remembered bytes hold no quote, backslash
 * or control byte and whole UTF-8 sequences: they were read plainly
 * once) and moves *pos past the colon. */
bool memo_key(cf_json_parser *p, uint32_t k, const char *s, size_t n,
              size_t *pos, uint32_t *off, uint32_t *len) {
    if (k >= CF_KEY_MEMO_SLOTS) return false;
    const cf_key_memo *m = &p->keys[k];
    size_t want = m->len, i = *pos;
    if (want == 0 || n - i < want) return false;
#ifdef __SSE2__
    if (n - i >= sizeof m->raw) {
        /* Two plain loads: most keys are 4..30 bytes, where a byte
         * compare loop or a call would cost more than the scan saved. */
        __m128i a0 = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i a1 = _mm_loadu_si128((const __m128i *)(s + i + 16));
        __m128i b0 = _mm_loadu_si128((const __m128i *)m->raw);
        __m128i b1 = _mm_loadu_si128((const __m128i *)(m->raw + 16));
        uint32_t eq = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a0, b0)) |
                      (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a1, b1)) << 16;
        uint32_t need = want == 32 ? ~(uint32_t)0 : ((uint32_t)1 << want) - 1;
        if ((eq & need) != need) return false;
    } else
#endif
        if (memcmp(s + i, m->raw, want) != 0) {
        return false;
    }
    /* the whole slot: a fixed-size copy (the strings buffer has room) */
    memcpy(p->strings + p->str_len, m->raw, sizeof m->raw);
    commit_text(p, want - 2, off, len);
    *pos = i + want;
    return true;
}

/* Remembers the key just read from s[start..) (klen bytes unescaped,
 * `raw` bytes in the text before its closing quote) for key k of the document,
 * when it was written plainly and a colon follows its quote directly. */
void remember_key(cf_json_parser *p, uint32_t k, const char *s, size_t n,
                  size_t start, uint32_t klen, size_t raw) {
    if (k >= CF_KEY_MEMO_SLOTS) return;
    cf_key_memo *m = &p->keys[k];
    size_t want = raw + 2;
    m->len = 0;
    /* an escape always shrinks: equal lengths mean none */
    if (raw != klen || want > sizeof m->raw || start + want > n ||
        s[start + raw + 1] != ':')
        return;
    memset(m->raw, 0, sizeof m->raw);
    memcpy(m->raw, s + start, want);
    m->len = (uint32_t)want;
}

/* Nesting the scanner takes on itself (each level is a call); deeper
 * documents, which no log shipper writes, are simdjson's. */
constexpr unsigned flat_max_depth = 128;

flat flat_container(cf_json_parser *p, const char *s, size_t n, size_t *pos,
                    uint32_t koff, uint32_t klen, unsigned depth);

/* The value at s[*pos] as a node keyed (koff, klen), inside a container
 * at nesting depth `depth` (the root object is 1); a nested object or
 * array is one level deeper, as the walker counts. */
flat flat_value(cf_json_parser *p, const char *s, size_t n, size_t *pos,
                uint32_t koff, uint32_t klen, unsigned depth) {
    static const char t[] = "true", f[] = "false";
    size_t i = *pos;
    uint8_t type;
    const char *lit = nullptr;     /* the node's text, when not a string */
    size_t lit_len = 0, token = 0; /* token: its bytes in the input */
    char c = s[i];
    if (c == '"') {
        type = CF_JSON_STRING;
    } else if (c == '{' || c == '[') {
        /* too deep: declined, and simdjson's walk words the error */
        if (depth + 1 > p->max_depth || depth + 1 > flat_max_depth)
            return flat::declined;
        return flat_container(p, s, n, pos, koff, klen, depth + 1);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        type = CF_JSON_NUMBER;
        size_t j = i;
        while (j < n && number_char(s[j])) j++;
        if (!valid_number(s + i, j - i)) return flat::declined;
        lit = s + i;
        lit_len = token = j - i;
    } else if (c == 't' && n - i >= 4 && memcmp(s + i, t, 4) == 0) {
        type = CF_JSON_BOOL;
        lit = t;
        lit_len = token = 4;
    } else if (c == 'f' && n - i >= 5 && memcmp(s + i, f, 5) == 0) {
        type = CF_JSON_BOOL;
        lit = f;
        lit_len = token = 5;
    } else if (c == 'n' && n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
        type = CF_JSON_NULL;
        lit = ""; /* its text is the empty string */
        token = 4;
    } else {
        return flat::declined; /* not JSON */
    }
    long idx = push_node(p, koff, klen, type);
    if (idx < 0) return flat::nomem;
    cf_json_node *node = &p->nodes[idx];
    if (type == CF_JSON_STRING) {
        i++;
#ifdef __SSE2__
        /* Most values are plain and under 32 bytes: read here, where the
         * position stays in a register, when the first stop in the
         * first 32 bytes is the closing quote; else from the start by
         * flat_string. */
        if (n - i >= 32) {
            uint32_t q0, q1;
            char *d = p->strings + p->str_len;
            uint32_t m = plain_block(s + i, d, &q0) |
                         plain_block(s + i + 16, d + 16, &q1) << 16;
            uint32_t first = m & (0 - m);
            if (first & (q0 | q1 << 16)) {
                unsigned k = (unsigned)__builtin_ctz(m);
                commit_text(p, k, &node->text_off, &node->text_len);
                *pos = i + k + 1;
                return flat::ok;
            }
        }
#endif
        if (!flat_string(p, s, n, &i, &node->text_off, &node->text_len))
            return flat::declined;
    } else {
        put_text(p, lit, lit_len, &node->text_off, &node->text_len);
        i += token;
    }
    *pos = i;
    return flat::ok;
}

/* The object or array opening at s[*pos], at nesting depth `depth`, as
 * a node keyed (koff, klen) followed by its members' or elements' nodes
 * (elements have no key), as the walker builds them. */
flat flat_container(cf_json_parser *p, const char *s, size_t n, size_t *pos,
                    uint32_t koff, uint32_t klen, unsigned depth) {
    bool object = s[*pos] == '{';
    char close = object ? '}' : ']';
    long idx =
        push_node(p, koff, klen, object ? CF_JSON_OBJECT : CF_JSON_ARRAY);
    if (idx < 0) return flat::nomem;
    size_t i = skip_ws(s, n, *pos + 1);
    if (i < n && s[i] == close) {
        i++;
    } else {
        for (;;) {
            uint32_t k_off = CF_JSON_NO_KEY, k_len = 0;
            if (object) {
                if (i >= n || s[i] != '"') return flat::declined;
                i++;
                uint32_t k = p->key_no++;
                if (!memo_key(p, k, s, n, &i, &k_off, &k_len)) {
                    size_t start = i;
                    if (!flat_string(p, s, n, &i, &k_off, &k_len))
                        return flat::declined;
                    remember_key(p, k, s, n, start, k_len, i - start - 1);
                    i = skip_ws(s, n, i);
                    if (i >= n || s[i] != ':') return flat::declined;
                    i++;
                }
                i = skip_ws(s, n, i);
            }
            if (i >= n) return flat::declined;
            flat r = flat_value(p, s, n, &i, k_off, k_len, depth);
            if (r != flat::ok) return r;
            i = skip_ws(s, n, i);
            if (i < n && s[i] == ',') {
                i = skip_ws(s, n, i + 1);
                continue;
            }
            if (i < n && s[i] == close) {
                i++;
                break;
            }
            return flat::declined;
        }
    }
    p->nodes[idx].end = p->n_nodes;
    *pos = i;
    return flat::ok;
}

/* The whole text as one object, or declined. */
flat parse_flat(cf_json_parser *p, const char *s, size_t n) {
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') return flat::declined;
    flat r = flat_container(p, s, n, &i, CF_JSON_NO_KEY, 0, 1);
    if (r != flat::ok) return r;
    if (skip_ws(s, n, i) != n) return flat::declined;
    return flat::ok;
}

cf_json_status from_simdjson(error_code e, const char *text, size_t len) {
    switch (e) {
    case SUCCESS: return CF_JSON_OK;
    case UTF8_ERROR: return CF_JSON_BAD_UTF8;
    case DEPTH_ERROR: return CF_JSON_TOO_DEEP;
    case MEMALLOC: return CF_JSON_NOMEM;
    case CAPACITY: return CF_JSON_TOO_LONG;
    default:
        return looks_truncated(text, len) ? CF_JSON_TRUNCATED : CF_JSON_INVALID;
    }
}

cf_json_status parse(cf_json_parser *p, const char *text, size_t len,
                     unsigned max_depth, char *strings, cf_json_doc *doc,
                     cf_json_engine engine) {
    if (len >= max_input) return CF_JSON_TOO_LONG;
    if (max_depth == 0) max_depth = 1;
    /* Unescaped text never exceeds its source and every value gets one
     * NUL; "true"/"false"/"" are never longer than their source plus
     * one either, so cf_json_strings_size bounds the strings buffer and
     * the walk appends without checking. */
    p->strings = strings;
    p->str_len = 0;
    p->n_nodes = 0;
    p->key_no = 0;
    p->max_depth = max_depth;
    p->wide = p->wide_cpu && engine != CF_JSON_ENGINE_FLAT_NARROW;
    if (engine != CF_JSON_ENGINE_SIMDJSON) {
        switch (parse_flat(p, text, len)) {
        case flat::ok:
            doc->nodes = p->nodes;
            doc->n_nodes = p->n_nodes;
            doc->strings = p->strings;
            return CF_JSON_OK;
        case flat::nomem: return CF_JSON_NOMEM;
        case flat::declined:
            if (engine != CF_JSON_ENGINE_AUTO) return CF_JSON_DECLINED;
            p->str_len = 0;
            p->n_nodes = 0;
            break;
        }
    }
    /* simdjson reads up to SIMDJSON_PADDING bytes past the input. */
    cf_buf_reset(&p->padded);
    if (!cf_buf_reserve(&p->padded, len + SIMDJSON_PADDING))
        return CF_JSON_NOMEM;
    cf_buf_append(&p->padded, text, len);
    memset(p->padded.data + len, 0, SIMDJSON_PADDING);

    /* simdjson checks its own depth bound as it walks; ours is
     * checked first, but its bound must not be the smaller one. */
    if (p->parser.max_depth() < (size_t)max_depth + 2 ||
        p->parser.capacity() < len) {
        size_t cap = p->parser.capacity() > len ? p->parser.capacity() : len;
        size_t depth = p->parser.max_depth() > (size_t)max_depth + 2
                           ? p->parser.max_depth()
                           : (size_t)max_depth + 2;
        error_code e = p->parser.allocate(cap < 4096 ? 4096 : cap, depth);
        if (e) return e == MEMALLOC ? CF_JSON_NOMEM : CF_JSON_TOO_LONG;
    }

    ondemand::document d;
    error_code e = p->parser.iterate(p->padded.data, len, p->padded.cap).get(d);
    if (e) return from_simdjson(e, text, len);
    ondemand::json_type type;
    if ((e = d.type().get(type))) return from_simdjson(e, text, len);
    if (type != ondemand::json_type::object) {
        /* A scalar or array root that is itself broken is still
         * reported as broken, not merely as the wrong shape. */
        if (looks_truncated(text, len)) return CF_JSON_TRUNCATED;
        return CF_JSON_NOT_OBJECT;
    }
    ondemand::object obj;
    if ((e = d.get_object().get(obj))) return from_simdjson(e, text, len);
    walker w(p, max_depth);
    if (!w.object(obj, CF_JSON_NO_KEY, 0, 1)) {
        if (w.status != CF_JSON_OK) {
            if (w.status == CF_JSON_INVALID && looks_truncated(text, len))
                return CF_JSON_TRUNCATED;
            return w.status;
        }
        return from_simdjson(w.error ? w.error : TAPE_ERROR, text, len);
    }
    const char *rest;
    if (d.current_location().get(rest) != OUT_OF_BOUNDS) return CF_JSON_INVALID;

    doc->nodes = p->nodes;
    doc->n_nodes = p->n_nodes;
    doc->strings = p->strings;
    return CF_JSON_OK;
}

} // namespace

/* The parser itself comes from cf_malloc like every other allocation,
 * so the fault-injection tests reach it (simdjson's own buffers, sized
 * by parser.allocate(), still come from operator new: its failure is
 * reported as MEMALLOC and mapped to CF_JSON_NOMEM). */
extern "C" struct cf_json_parser *cf_json_parser_new(void) {
    void *mem = cf_malloc(sizeof(cf_json_parser));
    if (!mem) return nullptr;
    try {
        cf_json_parser *p = new (mem) cf_json_parser();
        p->wide_cpu = cf_json_wide_strings();
        return p;
    } catch (...) {
        cf_free(mem);
        return nullptr;
    }
}

extern "C" void cf_json_parser_destroy(struct cf_json_parser *p) {
    if (!p) return;
    cf_buf_free(&p->padded);
    cf_free(p->nodes);
    p->~cf_json_parser();
    cf_free(p);
}

extern "C" enum cf_json_status cf_json_parse(struct cf_json_parser *p,
                                             const char *text, size_t len,
                                             unsigned max_depth, char *strings,
                                             struct cf_json_doc *doc) {
    return cf_json_parse_with(p, text, len, max_depth, strings, doc,
                              CF_JSON_ENGINE_AUTO);
}

extern "C" enum cf_json_status
cf_json_parse_with(struct cf_json_parser *p, const char *text, size_t len,
                   unsigned max_depth, char *strings, struct cf_json_doc *doc,
                   enum cf_json_engine engine) {
    doc->nodes = nullptr;
    doc->n_nodes = 0;
    doc->strings = nullptr;
    try {
        return parse(p, text, len, max_depth, strings, doc, engine);
    } catch (const std::bad_alloc &) {
        return CF_JSON_NOMEM;
    } catch (...) {
        return CF_JSON_INVALID;
    }
}

extern "C" bool cf_json_wide_strings(void) {
#ifdef CF_WIDE_STRINGS
    return __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vbmi") &&
           __builtin_cpu_supports("avx512vbmi2") &&
           __builtin_cpu_supports("bmi2");
#else
    return false;
#endif
}

extern "C" const char *cf_json_implementation(void) {
    try {
        return simdjson::get_active_implementation()->name().data();
    } catch (...) {
        return "unknown";
    }
}
