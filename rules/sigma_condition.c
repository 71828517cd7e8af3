/*
 * sigma_condition.c - a detection's condition string to a cf_sigma_cond
 * tree.  Called by sigma_rule.c for rules and filters at load time; no
 * shared state.
 *
 * Grammar (sigma-rules-specification.md, precedence not > and > or):
 *   expr    := and ('or' and)*
 *   and     := unary ('and' unary)*
 *   unary   := 'not' unary | '(' expr ')' | quant 'of' target | SEARCH
 *   quant   := '1' | 'any' | 'all'       target := 'them' | PATTERN
 * Quantifiers are expanded into OR/AND of search nodes here, so the
 * matchers only ever see AND, OR, NOT and SEARCH.
 */
#include "sigma_condition.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64

struct parser {
    const char *s;   /* whole condition, for messages */
    const char *p;   /* cursor */
    const char *tok; /* current token */
    size_t tok_len;
    const char *const *names;
    size_t n_names;
    int depth;
    char *errstr;
    size_t errstr_size;
    bool failed;
};

static void next_token(struct parser *ps) {
    const char *p = ps->p;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    ps->tok = p;
    if (*p == '(' || *p == ')') {
        p++;
    } else {
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' &&
               *p != '(' && *p != ')')
            p++;
    }
    ps->tok_len = (size_t)(p - ps->tok);
    ps->p = p;
}

/* Operators are matched case-insensitively ("AND", "Not") as hand-written
 * rules use them; search identifiers stay case-sensitive. */
static bool tok_is(const struct parser *ps, const char *word) {
    return ps->tok_len == strlen(word) &&
           strncasecmp(ps->tok, word, ps->tok_len) == 0;
}

/* Records the first error as "condition '...': <before><arg><after>". */
static void fail(struct parser *ps, const char *before, const char *arg,
                 size_t arg_len, const char *after) {
    if (ps->failed) return;
    ps->failed = true;
    cf_seterr(ps->errstr, ps->errstr_size, CF_ERR_PARSE,
              "condition '%s': %s%.*s%s", ps->s, before, (int)arg_len, arg,
              after);
}

/* Exactly "out of memory", as every loader reports it (the rule loader
 * must tell it from a defect of the rule). */
static void fail_nomem(struct parser *ps) {
    if (ps->failed) return;
    ps->failed = true;
    cf_seterr(ps->errstr, ps->errstr_size, CF_ERR_NOMEM, "out of memory");
}

void cf_sigma_cond_clear(struct cf_sigma_cond *cond) {
    if (!cond) return;
    if (cond->op == CF_COND_AND || cond->op == CF_COND_OR ||
        cond->op == CF_COND_NOT) {
        for (uint32_t i = 0; i < cond->n_kids; i++)
            cf_sigma_cond_clear(&cond->kids[i]);
        cf_free(cond->kids);
    }
    cond->kids = NULL;
    cond->n_kids = 0;
}

void cf_sigma_cond_destroy(struct cf_sigma_cond *cond) {
    if (!cond) return;
    cf_sigma_cond_clear(cond);
    cf_free(cond);
}

void cf_sigma_cond_offset(struct cf_sigma_cond *cond, uint32_t delta) {
    if (!cond) return;
    if (cond->op == CF_COND_SEARCH) cond->search += delta;
    for (uint32_t i = 0; i < cond->n_kids; i++)
        cf_sigma_cond_offset(&cond->kids[i], delta);
}

/* Appends `kid` to an AND/OR node, flattening nested nodes of the same
 * operator so `a and b and c` is one node with three kids. */
static bool add_kid(struct cf_sigma_cond *node, struct cf_sigma_cond *kid) {
    if (kid->op == node->op) {
        for (uint32_t i = 0; i < kid->n_kids; i++)
            if (!add_kid(node, &kid->kids[i])) return false;
        cf_free(kid->kids);
        kid->kids = NULL;
        kid->n_kids = 0;
        return true;
    }
    struct cf_sigma_cond *k =
        cf_realloc(node->kids, (node->n_kids + 1) * sizeof(*k));
    if (!k) return false;
    node->kids = k;
    node->kids[node->n_kids++] = *kid;
    memset(kid, 0, sizeof(*kid));
    return true;
}

/* `*` in a quantifier pattern matches any run of characters. */
static bool name_matches(const char *pat, size_t plen, const char *name) {
    if (plen == 0) return *name == '\0';
    if (*pat == '*') {
        for (const char *n = name;; n++) {
            if (name_matches(pat + 1, plen - 1, n)) return true;
            if (!*n) return false;
        }
    }
    return *name && *name == *pat && name_matches(pat + 1, plen - 1, name + 1);
}

static struct cf_sigma_cond parse_or(struct parser *ps);

static struct cf_sigma_cond search_node(uint32_t i) {
    struct cf_sigma_cond c = {.op = CF_COND_SEARCH, .search = i};
    return c;
}

static struct cf_sigma_cond parse_quantifier(struct parser *ps, bool all) {
    struct cf_sigma_cond node = {.op = all ? CF_COND_AND : CF_COND_OR};
    const char *q = ps->tok;
    size_t qlen = ps->tok_len;
    next_token(ps);
    if (!tok_is(ps, "of")) {
        fail(ps, "expected 'of' after '", q, qlen, "'");
        return node;
    }
    next_token(ps);
    if (ps->tok_len == 0 || tok_is(ps, "(") || tok_is(ps, ")")) {
        fail(ps, "expected 'them' or a search pattern after '", q, qlen,
             " of'");
        return node;
    }
    bool them = tok_is(ps, "them");
    for (size_t i = 0; i < ps->n_names; i++) {
        bool match = them ? ps->names[i][0] != '_'
                          : name_matches(ps->tok, ps->tok_len, ps->names[i]);
        if (!match) continue;
        struct cf_sigma_cond s = search_node((uint32_t)i);
        if (!add_kid(&node, &s)) {
            fail_nomem(ps);
            return node;
        }
    }
    if (node.n_kids == 0) {
        fail(ps, them ? "'" : "pattern '", ps->tok, ps->tok_len,
             "' matches no search identifier");
        return node;
    }
    next_token(ps);
    if (node.n_kids == 1) {
        struct cf_sigma_cond only = node.kids[0];
        cf_free(node.kids);
        return only;
    }
    return node;
}

static struct cf_sigma_cond parse_unary(struct parser *ps) {
    struct cf_sigma_cond none = {.op = CF_COND_FALSE};
    if (ps->failed) return none;
    if (++ps->depth > MAX_DEPTH) {
        fail(ps, "nested deeper than ", "64", 2, " levels");
        return none;
    }
    struct cf_sigma_cond result = none;
    if (ps->tok_len == 0) {
        fail(ps, "unexpected end", "", 0, "");
    } else if (tok_is(ps, "not")) {
        next_token(ps);
        struct cf_sigma_cond kid = parse_unary(ps);
        result.op = CF_COND_NOT;
        result.kids = cf_malloc(sizeof(*result.kids));
        if (!result.kids) {
            cf_sigma_cond_clear(&kid);
            result.op = CF_COND_FALSE;
            fail_nomem(ps);
        } else {
            result.kids[0] = kid;
            result.n_kids = 1;
        }
    } else if (tok_is(ps, "(")) {
        next_token(ps);
        result = parse_or(ps);
        if (!ps->failed && !tok_is(ps, ")")) fail(ps, "missing ')'", "", 0, "");
        next_token(ps);
    } else if (tok_is(ps, "1") || tok_is(ps, "any") || tok_is(ps, "all")) {
        result = parse_quantifier(ps, tok_is(ps, "all"));
    } else if (tok_is(ps, ")") || tok_is(ps, "and") || tok_is(ps, "or") ||
               tok_is(ps, "of") || tok_is(ps, "them")) {
        fail(ps, "unexpected '", ps->tok, ps->tok_len, "'");
    } else {
        size_t i;
        for (i = 0; i < ps->n_names; i++)
            if (strlen(ps->names[i]) == ps->tok_len &&
                strncmp(ps->names[i], ps->tok, ps->tok_len) == 0)
                break;
        if (i == ps->n_names) {
            if (ps->tok_len > 0 && ps->tok[0] >= '2' && ps->tok[0] <= '9')
                fail(ps, "'", ps->tok, ps->tok_len,
                     " of' is not supported; use '1 of', 'any of' or "
                     "'all of'");
            else
                fail(ps, "unknown search identifier '", ps->tok, ps->tok_len,
                     "'");
        } else {
            result = search_node((uint32_t)i);
            next_token(ps);
        }
    }
    ps->depth--;
    if (ps->failed) {
        cf_sigma_cond_clear(&result);
        return none;
    }
    return result;
}

/* Shared loop of `and` and `or`: operands joined by `word`. */
static struct cf_sigma_cond
parse_chain(struct parser *ps, const char *word, enum cf_cond_op op,
            struct cf_sigma_cond (*operand)(struct parser *)) {
    struct cf_sigma_cond first = operand(ps);
    if (ps->failed || !tok_is(ps, word)) return first;
    struct cf_sigma_cond node = {.op = op};
    if (!add_kid(&node, &first)) {
        cf_sigma_cond_clear(&first);
        fail_nomem(ps);
        return node;
    }
    while (!ps->failed && tok_is(ps, word)) {
        next_token(ps);
        struct cf_sigma_cond kid = operand(ps);
        if (ps->failed) break;
        if (!add_kid(&node, &kid)) {
            cf_sigma_cond_clear(&kid);
            fail_nomem(ps);
        }
    }
    if (ps->failed) {
        cf_sigma_cond_clear(&node);
        node.op = CF_COND_FALSE;
    }
    return node;
}

static struct cf_sigma_cond parse_and(struct parser *ps) {
    return parse_chain(ps, "and", CF_COND_AND, parse_unary);
}

static struct cf_sigma_cond parse_or(struct parser *ps) {
    return parse_chain(ps, "or", CF_COND_OR, parse_and);
}

struct cf_sigma_cond *cf_sigma_condition_parse(const char *text,
                                               const char *const *names,
                                               size_t n_names, char *errstr,
                                               size_t errstr_size) {
    struct cf_sigma_cond *root = NULL;
    if (strchr(text, '|')) {
        cf_seterr(errstr, errstr_size, CF_ERR_PARSE,
                  "condition '%s': aggregations ('| count() ...') are "
                  "deprecated; express them as a Sigma correlation rule",
                  text);
        return NULL;
    }
    struct parser ps = {.s = text,
                        .p = text,
                        .names = names,
                        .n_names = n_names,
                        .errstr = errstr,
                        .errstr_size = errstr_size};
    next_token(&ps);
    struct cf_sigma_cond tree = parse_or(&ps);
    if (!ps.failed && ps.tok_len != 0)
        fail(&ps, "unexpected '", ps.tok, ps.tok_len, "'");
    if (ps.failed) goto cleanup;
    root = cf_malloc(sizeof(*root));
    if (!root) {
        cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    *root = tree;
    memset(&tree, 0, sizeof(tree));
cleanup:
    cf_sigma_cond_clear(&tree);
    return root;
}
