/*
 * sigma_correlation.h - Sigma correlation rules as data (correlation
 * specification v2.x): the parsed form consumed by engine/correlate.c.
 * Owned by the rulebook that loaded them.
 */
#ifndef CF_SIGMA_CORRELATION_H
#define CF_SIGMA_CORRELATION_H

#include "sigma.h"

struct cf_sigma_correlation {
    char *id;
    char *name;
    char *title;
    char *path;
    enum cf_level level;
};

/* Resolves every correlation's rule references (by id or name, including
 * other correlations) against the rulebook; a correlation whose references
 * cannot be resolved is moved to rb->rejected with the reason.  Called by
 * cf_rulebook_finish(). */
void cf_correlations_resolve(struct cf_rulebook *rb);

#endif
