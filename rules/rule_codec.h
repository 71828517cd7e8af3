/*
 * rule_codec.h - parsed Sigma rules and correlations as bytes and back,
 * for the rule-file cache (rulebook_cache.h).  Private to the rule loader
 * (rulebook.c).
 *
 * A decoded rule or correlation equals the encoded one field for field
 * (every string, array, pattern byte and condition node; NULL stays NULL),
 * so a rulebook loaded from the cache is the rulebook the parser built.
 * The bytes are native-endian and only read back by the same build (the
 * cache key holds its build id).  Decoding checks every length against
 * the bytes left: a damaged input fails (rd->bad), never reads past its
 * end.
 *
 * Threading: no shared state.
 */
#ifndef CF_RULE_CODEC_H
#define CF_RULE_CODEC_H

#include "buf.h"
#include "sigma_correlation.h"

/* A cursor over encoded bytes.  `bad`: the bytes do not decode; `nomem`:
 * an allocation failed.  Either makes every later read fail. */
struct cf_codec_pack;
struct cf_codec_rd {
    const unsigned char *p, *end;
    bool bad, nomem;
    /* Set by cf_codec_get_rule while it decodes the parts of a rule that
     * go into packed blocks (below); NULL otherwise. */
    struct cf_codec_pack *pack;
};

/* Blocks that decoded rules keep their strings and arrays in (sigma.h,
 * `packed`), filled one after the other: the pages a start touches are
 * the bytes the rules take.  Owned by the rulebook; zero-initialise,
 * free with cf_codec_pack_free() once its rules are destroyed. */
struct cf_codec_pack {
    void *blocks; /* chained through their first word, newest first */
    unsigned char *at, *end; /* what is left of the newest */
};
void cf_codec_pack_free(struct cf_codec_pack *pk);

void cf_codec_put_u32(struct cf_buf *b, uint32_t v);
void cf_codec_put_u64(struct cf_buf *b, uint64_t v);
/* A string or NULL. */
void cf_codec_put_str(struct cf_buf *b, const char *s);

uint32_t cf_codec_get_u32(struct cf_codec_rd *rd);
uint64_t cf_codec_get_u64(struct cf_codec_rd *rd);
/* A new string (cf_free), or NULL for an encoded NULL or a failure (then
 * rd->bad or rd->nomem is set). */
char *cf_codec_get_str(struct cf_codec_rd *rd);
/* The bytes of a string in place: *len without the NUL; NULL for NULL. */
const char *cf_codec_view_str(struct cf_codec_rd *rd, size_t *len);

void cf_codec_put_rule(struct cf_buf *b, const struct cf_sigma_rule *r);
/* NULL when it does not decode (rd->bad) or memory ran out (rd->nomem).
 * With `pack`, the rule is packed into its blocks (which it must not
 * outlive); NULL: every part is allocated on its own. */
struct cf_sigma_rule *cf_codec_get_rule(struct cf_codec_rd *rd,
                                        struct cf_codec_pack *pack);

void cf_codec_put_correlation(struct cf_buf *b,
                              const struct cf_sigma_correlation *c);
struct cf_sigma_correlation *cf_codec_get_correlation(struct cf_codec_rd *rd);

#endif
