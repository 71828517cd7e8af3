/*
 * test_sigma_condition.c - the condition parser (rules/sigma_condition.c):
 * precedence, parentheses, quantifiers and `them`, flattening, and the
 * errors a rule author gets.  Trees are printed as "or(a,and(b,not(c)))"
 * so each expectation is one readable string.
 */
/* cmocka needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "sigma_condition.h"

static const char *const names[] = {
    "sel", "sel_img", "sel_cli", "filter_a", "filter_b", "_helper", "keywords"};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

static void render(const struct cf_sigma_cond *c, char *buf, size_t size) {
    size_t len = strlen(buf);
    switch (c->op) {
    case CF_COND_SEARCH:
        snprintf(buf + len, size - len, "%s", names[c->search]);
        return;
    case CF_COND_TRUE: snprintf(buf + len, size - len, "true"); return;
    case CF_COND_FALSE: snprintf(buf + len, size - len, "false"); return;
    default: break;
    }
    snprintf(buf + len, size - len, "%s(",
             c->op == CF_COND_AND  ? "and"
             : c->op == CF_COND_OR ? "or"
                                   : "not");
    for (uint32_t i = 0; i < c->n_kids; i++) {
        if (i) snprintf(buf + strlen(buf), size - strlen(buf), ",");
        render(&c->kids[i], buf, size);
    }
    snprintf(buf + strlen(buf), size - strlen(buf), ")");
}

/* Parses `text` and compares the rendered tree with `want`. */
static void expect_tree(const char *text, const char *want) {
    char err[256] = "";
    struct cf_sigma_cond *c =
        cf_sigma_condition_parse(text, names, N_NAMES, err, sizeof(err));
    if (!c) fail_msg("'%s' failed: %s", text, err);
    char buf[1024] = "";
    render(c, buf, sizeof(buf));
    if (strcmp(buf, want) != 0)
        fail_msg("'%s' parsed as %s, want %s", text, buf, want);
    cf_sigma_cond_destroy(c);
}

/* Parse must fail and the message must contain `want`. */
static void expect_error(const char *text, const char *want) {
    char err[256] = "";
    struct cf_sigma_cond *c =
        cf_sigma_condition_parse(text, names, N_NAMES, err, sizeof(err));
    if (c) {
        char buf[512] = "";
        render(c, buf, sizeof(buf));
        cf_sigma_cond_destroy(c);
        fail_msg("'%s' parsed as %s, expected an error", text, buf);
    }
    if (!strstr(err, want))
        fail_msg("'%s': error '%s' does not mention '%s'", text, err, want);
}

static void test_plain_and_precedence(void **state) {
    (void)state;
    expect_tree("sel", "sel");
    expect_tree("sel and not filter_a", "and(sel,not(filter_a))");
    expect_tree("sel or sel_img and sel_cli", "or(sel,and(sel_img,sel_cli))");
    expect_tree("sel and sel_img or sel_cli", "or(and(sel,sel_img),sel_cli)");
    expect_tree("not sel and sel_img", "and(not(sel),sel_img)");
    expect_tree("not sel or sel_img", "or(not(sel),sel_img)");
    expect_tree("not not sel", "not(not(sel))");
    expect_tree("(sel or sel_img) and sel_cli", "and(or(sel,sel_img),sel_cli)");
    expect_tree("sel and (sel_img or (sel_cli and not filter_a))",
                "and(sel,or(sel_img,and(sel_cli,not(filter_a))))");
    expect_tree("((sel))", "sel");
    expect_tree("  sel\tand\nsel_img ", "and(sel,sel_img)");
    expect_tree("sel and(sel_img)", "and(sel,sel_img)");
    /* operators in any case; identifiers are exact */
    expect_tree("sel AND NOT filter_a Or keywords",
                "or(and(sel,not(filter_a)),keywords)");
    expect_tree("ALL OF sel_*", "and(sel_img,sel_cli)");
    expect_error("SEL", "unknown search identifier 'SEL'");
}

static void test_flattening(void **state) {
    (void)state;
    expect_tree("sel and sel_img and sel_cli", "and(sel,sel_img,sel_cli)");
    expect_tree("sel or (sel_img or sel_cli)", "or(sel,sel_img,sel_cli)");
    expect_tree("sel and all of filter_*", "and(sel,filter_a,filter_b)");
}

static void test_quantifiers(void **state) {
    (void)state;
    expect_tree("1 of sel*", "or(sel,sel_img,sel_cli)");
    expect_tree("any of sel_*", "or(sel_img,sel_cli)");
    expect_tree("all of sel_*", "and(sel_img,sel_cli)");
    expect_tree("1 of sel_i*", "sel_img"); /* one match: no wrapper */
    expect_tree("all of *_a", "filter_a");
    expect_tree("sel and not 1 of filter_*",
                "and(sel,not(or(filter_a,filter_b)))");
    expect_tree("1 of s*l_*", "or(sel_img,sel_cli)");
    /* `them` skips identifiers starting with '_' */
    expect_tree("1 of them",
                "or(sel,sel_img,sel_cli,filter_a,filter_b,keywords)");
    expect_tree("all of them",
                "and(sel,sel_img,sel_cli,filter_a,filter_b,keywords)");
    /* a pattern may still name _helper explicitly */
    expect_tree("all of _*", "_helper");
    expect_tree("all of sel_* or keywords",
                "or(and(sel_img,sel_cli),keywords)");
}

static void test_errors(void **state) {
    (void)state;
    expect_error("selection", "unknown search identifier 'selection'");
    expect_error("sel and nope", "unknown search identifier 'nope'");
    expect_error("1 of nothing_*", "pattern 'nothing_*' matches no search");
    expect_error("sel and", "unexpected end");
    expect_error("(sel or sel_img", "missing ')'");
    expect_error("sel sel_img", "unexpected 'sel_img'");
    expect_error("sel )", "unexpected ')'");
    expect_error("1 sel", "expected 'of'");
    expect_error("all of", "expected 'them' or a search pattern");
    expect_error("2 of sel*", "'2 of' is not supported");
    expect_error("sel | count() > 5", "aggregations");
    expect_error("", "unexpected end");
    expect_error("and sel", "unexpected 'and'");
    char deep[400];
    memset(deep, '(', 100);
    memcpy(deep + 100, "sel", 3);
    memset(deep + 103, ')', 100);
    deep[203] = '\0';
    expect_error(deep, "nested deeper");
    /* the message quotes the whole condition for the rule author */
    char err[256];
    assert_null(cf_sigma_condition_parse("sel and x", names, N_NAMES, err,
                                         sizeof(err)));
    assert_non_null(strstr(err, "condition 'sel and x'"));
}

static void test_them_with_only_private_searches(void **state) {
    (void)state;
    static const char *const only_private[] = {"_a", "_b"};
    char err[256];
    assert_null(cf_sigma_condition_parse("1 of them", only_private, 2, err,
                                         sizeof(err)));
    assert_non_null(strstr(err, "matches no search"));
}

static void test_offset(void **state) {
    (void)state;
    char err[256];
    struct cf_sigma_cond *c = cf_sigma_condition_parse(
        "sel and not 1 of filter_*", names, N_NAMES, err, sizeof(err));
    assert_non_null(c);
    cf_sigma_cond_offset(c, 10);
    assert_int_equal(c->kids[0].search, 10);
    assert_int_equal(c->kids[1].kids[0].kids[0].search, 13);
    assert_int_equal(c->kids[1].kids[0].kids[1].search, 14);
    cf_sigma_cond_destroy(c);
    cf_sigma_cond_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_precedence),
        cmocka_unit_test(test_flattening),
        cmocka_unit_test(test_quantifiers),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_them_with_only_private_searches),
        cmocka_unit_test(test_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
