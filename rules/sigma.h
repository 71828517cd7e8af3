/*
 * sigma.h - Sigma rules as data: what the YAML parser produces and what
 * the rule compiler (ruleset.h), the test oracle and the correlator
 * consume.
 *
 * The parser applies every value modifier at load time, so a field
 * condition holds final patterns: a glob (literal bytes plus `*`/`?`
 * wildcards, matched against the whole value), a regular expression, or a
 * typed comparison that is checked directly (numbers, CIDR, field
 * references, existence, null, parts of a date).  contains/startswith/
 * endswith become globs with leading/trailing `*`; windash, base64offset
 * and utf16 produce alternatives; expand substitutes placeholder values.
 *
 * Ownership: a cf_rulebook owns every rule, search, condition and string
 * below it; cf_rulebook_destroy() frees them all.  Alerts, incidents,
 * the ruleset and the correlator borrow rule strings and rules from it,
 * so it is destroyed last.
 *
 * Threading: one thread loads and finishes a rulebook; cf_ruleset_compile()
 * then appends the rules it cannot compile to `rejected`.  From then on
 * nothing changes it and any thread may read it.  Rules are loaded once
 * per run: there is no reload.
 */
#ifndef CF_SIGMA_H
#define CF_SIGMA_H

#include "common.h"

struct cf_config;

enum cf_level {
    CF_LEVEL_INFORMATIONAL = 0,
    CF_LEVEL_LOW = 1,
    CF_LEVEL_MEDIUM = 2,
    CF_LEVEL_HIGH = 3,
    CF_LEVEL_CRITICAL = 4
};
const char *cf_level_name(enum cf_level level);
/* Returns 0 and sets *level, or -1 for an unknown name. */
int cf_level_parse(const char *name, enum cf_level *level);

enum cf_pattern_kind {
    CF_PATTERN_GLOB,     /* full match of text with wildcards (wild[]) */
    CF_PATTERN_REGEX,    /* PCRE; unanchored search like Sigma backends */
    CF_PATTERN_NUMBER,   /* value (as a number) <op> number */
    CF_PATTERN_CIDR,     /* value is an IP address inside addr/prefix */
    CF_PATTERN_FIELDREF, /* value compared with another field's value */
    CF_PATTERN_EXISTS,   /* field present (exists=true) or absent */
    CF_PATTERN_NULL,     /* field absent, JSON null (Sigma `null`) */
    CF_PATTERN_TIMEPART  /* a part of the value's date <op> number */
};

enum cf_compare {
    CF_CMP_EQ,
    CF_CMP_NEQ,
    CF_CMP_LT,
    CF_CMP_LTE,
    CF_CMP_GT,
    CF_CMP_GTE
};

enum cf_time_part {
    CF_TIMEPART_MINUTE,
    CF_TIMEPART_HOUR,
    CF_TIMEPART_DAY,
    CF_TIMEPART_WEEK,
    CF_TIMEPART_MONTH,
    CF_TIMEPART_YEAR
};

/* Pattern flags. */
#define CF_PAT_CASED 0x01     /* glob, fieldref: case-sensitive (|cased) */
#define CF_PAT_RE_I 0x02      /* regex: case-insensitive */
#define CF_PAT_RE_M 0x04      /* regex: multi-line */
#define CF_PAT_RE_S 0x08      /* regex: dot matches newline */
#define CF_PAT_REF_START 0x10 /* fieldref: value starts with the other */
#define CF_PAT_REF_END 0x20   /* fieldref: value ends with the other */
/* fieldref with both START and END flags clear and CONTAINS set means
 * "contains"; all clear means equals. */
#define CF_PAT_REF_CONTAINS 0x40

/* One final pattern.  Case-insensitivity of globs is ASCII case folding
 * (as in Sigma backends for Windows logs). */
struct cf_sigma_pattern {
    enum cf_pattern_kind kind;
    unsigned flags;
    /* GLOB: bytes to match, len bytes, may contain NUL (utf16).
     *       wild[i] is 0 for a literal byte, '*' for any run of bytes
     *       (including none), '?' for exactly one byte.
     * REGEX: the expression, NUL-terminated.
     * FIELDREF: the other field's name, NUL-terminated. */
    unsigned char *text;
    size_t len;
    unsigned char *wild; /* GLOB only */
    /* NUMBER, TIMEPART: comparison */
    enum cf_compare op;
    double number;
    enum cf_time_part time_part;
    /* CIDR */
    int family; /* 4 or 6 */
    uint8_t addr[16];
    int prefix;
    /* EXISTS */
    bool exists;
};

/* One value of a field's value list: matches if any alternative does
 * (alternatives come from windash, base64offset, utf16, expand). */
struct cf_sigma_value {
    struct cf_sigma_pattern *alts;
    size_t n_alts;
};

/* `field: values` inside a selection map, or a keyword list
 * (field == NULL: matches if any field value of the event matches). */
struct cf_sigma_field_cond {
    char *field;
    bool all;    /* |all: every value must match, else any */
    bool negate; /* |neq: field present and no value matches */
    struct cf_sigma_value *values;
    size_t n_values;
};

/* One selection map: all of its field conditions (AND). */
struct cf_sigma_conjunction {
    struct cf_sigma_field_cond *conds;
    size_t n_conds;
};

/* A search identifier ("selection", "filter_main_x").  Matches if any of
 * its conjunctions matches (a list of maps is OR; a single map is one
 * conjunction; a keyword list is one conjunction with one field-less
 * condition). */
struct cf_sigma_search {
    char *name;
    struct cf_sigma_conjunction *alts;
    size_t n_alts;
};

enum cf_cond_op {
    CF_COND_AND,
    CF_COND_OR,
    CF_COND_NOT,
    CF_COND_SEARCH,
    CF_COND_TRUE,
    CF_COND_FALSE
};

/* The parsed condition.  `1 of x*`, `all of them` etc. are expanded into
 * OR/AND over CF_COND_SEARCH nodes at parse time; a list of conditions is
 * an OR. */
struct cf_sigma_cond {
    enum cf_cond_op op;
    uint32_t search; /* CF_COND_SEARCH: index into rule->searches */
    uint32_t n_kids;
    struct cf_sigma_cond *kids; /* AND/OR: n_kids; NOT: 1 */
};

struct cf_sigma_rule {
    char *id;   /* may be NULL in hand-written rules */
    char *name; /* optional `name:` (used by correlations) */
    char *title;
    char *path; /* file it came from */
    char *description;
    char *status;
    enum cf_level level; /* medium where the rule says nothing */
    char **tags;
    size_t n_tags;
    /* From `attack.<tactic>` tags, names as in the tags, in tag order
     * ("credential-access"), and `attack.tNNNN[.NNN]` as "T1003.001". */
    char **tactics;
    size_t n_tactics;
    char **techniques;
    size_t n_techniques;
    char *product, *category, *service; /* logsource; NULL if absent */
    struct cf_sigma_search *searches;
    size_t n_searches;
    struct cf_sigma_cond *condition;
    /* sha-256 of the rule document (canonical JSON, plus placeholder values
     * it expanded and filters applied to it), hex; keys the compile cache */
    char digest[65];
    uint32_t index; /* position in rulebook->rules */
    /* Set by cf_rulebook_finish: a loaded correlation refers to it
     * (`correlated`), and one of those says `generate: true`
     * (`generated`).  Per the Sigma correlation specification its alerts
     * are written on their own only when !correlated || generated; the
     * others only feed correlations and fusion. */
    bool correlated, generated;
    /* A rule read back from the rule file cache (rule_codec.h) keeps its
     * strings, tag lists and the contents of its first n_packed searches
     * in blocks its rulebook owns and frees after its rules, not each in
     * an allocation of its own: 200,000 allocations per start with
     * SigmaHQ.  The searches array and the condition tree are allocated
     * as a parsed rule's are, since a filter (cf_rulebook_finish) grows
     * the one and replaces the other.  False for a parsed rule. */
    bool packed;
    size_t n_packed;
};

/* A rule (or rule file document) that was not loaded, and why, in words
 * a rule author can act on. */
struct cf_rule_rejection {
    char *path;
    char *id; /* NULL if the document had none */
    char *reason;
};

struct cf_sigma_correlation; /* rules/sigma_correlation.h */
struct json_t;               /* jansson */

/* Parses one Sigma correlation document (already converted from YAML to
 * JSON, see yaml_json.h).  Returns NULL with a reason in errstr when the
 * correlation is invalid.  Defined in sigma_correlation.c; references to
 * other rules are resolved later by cf_rulebook_finish(). */
struct cf_sigma_correlation *cf_correlation_parse(const struct json_t *doc,
                                                  const char *path,
                                                  char *errstr,
                                                  size_t errstr_size);
void cf_correlation_destroy(struct cf_sigma_correlation *corr);

/* Everything loaded from the --rules paths. */
struct cf_rulebook {
    struct cf_sigma_rule **rules;
    size_t n_rules;
    struct cf_sigma_correlation **correlations;
    size_t n_correlations;
    struct cf_rule_rejection *rejected;
    size_t n_rejected;
    /* Rules loaded after a conversion, with what was done in `reason`:
     * legacy aggregations (`| count() by X > 5`) loaded as correlations
     * (rules/sigma_legacy.h).  `chainfuse check` lists them. */
    struct cf_rule_rejection *converted;
    size_t n_converted;
    size_t n_documents; /* rule, correlation and filter documents seen */
    size_t n_files;     /* rule files read (a folder may have none) */
    size_t n_cached;    /* of those, parsed outcomes from the rule file cache */
    size_t n_filters;   /* filter documents applied */
};

struct cf_rulebook *cf_rulebook_new(void);
void cf_rulebook_destroy(struct cf_rulebook *rb); /* NULL is a no-op */

/*
 * Loads a file, or a directory searched recursively for .yml/.yaml.
 * Documents that fail are recorded in rb->rejected; this returns an error
 * only when the path itself cannot be read, or when it reaches a file an
 * earlier load already read (overlapping paths would load every rule in
 * it twice), or CF_ERR_NOMEM ("out of memory") when an allocation failed:
 * no document is rejected for that, and the rulebook, incomplete, can
 * only be destroyed.  `cfg` supplies placeholder
 * values for |expand (NULL: no placeholders configured).  Filters
 * (sigma-filters) are collected and applied by cf_rulebook_finish().
 */
cf_err_t cf_rulebook_load(struct cf_rulebook *rb, const char *path,
                          const struct cf_config *cfg, char *errstr,
                          size_t errstr_size);

/* Applies collected filters to the rules they name and resolves
 * correlation rule references.  Call once after the last load.  Fails,
 * naming both files, when two rules or correlations share an id or a
 * name: alerts would carry the same rule id and references would be
 * ambiguous; CF_ERR_NOMEM as for cf_rulebook_load. */
cf_err_t cf_rulebook_finish(struct cf_rulebook *rb, char *errstr,
                            size_t errstr_size);

/* Records a rejection (copies the strings).  Out of memory, records
 * nothing: rb->n_rejected does not grow. */
void cf_rulebook_reject(struct cf_rulebook *rb, const char *path,
                        const char *id, const char *reason);

#endif
