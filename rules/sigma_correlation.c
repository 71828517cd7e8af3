/*
 * sigma_correlation.c - parses Sigma correlation rules.
 * Placeholder until correlation support lands: every correlation is
 * rejected with a reason that says so.
 */
#include "sigma_correlation.h"

#include <jansson.h>
#include <stdlib.h>

struct cf_sigma_correlation *cf_correlation_parse(const json_t *doc,
                                                  const char *path,
                                                  char *errstr,
                                                  size_t errstr_size) {
    CF_UNUSED(doc);
    CF_UNUSED(path);
    cf_seterr(errstr, errstr_size, CF_ERR,
              "correlation rules are not supported yet");
    return NULL;
}

void cf_correlation_destroy(struct cf_sigma_correlation *corr) {
    free(corr);
}

void cf_correlations_resolve(struct cf_rulebook *rb) {
    CF_UNUSED(rb);
}
