/*
 * killchain.h - ATT&CK enterprise tactics as kill-chain stages.
 *
 * Maps a tactic name from a rule's `attack.<tactic>` tag to its position
 * in the ATT&CK matrix (reconnaissance = 1 ... impact = 14).  ATT&CK
 * v18 splits defense evasion into `stealth` and `defense-impairment`;
 * both sit at defense-evasion's position, so 16 tactic names share 14
 * positions: incidents keep one stage per tactic (each is a different
 * thing an analyst must see) and order and score them by position.  The
 * order is compiled in (taken from ATT&CK v18.1,
 * enterprise_tactics_ordered.json); nothing is read at run time.
 *
 * Used by incident scoring and summaries (engine/incident.c).  Pure
 * functions over static tables: thread safe.
 */
#ifndef CF_KILLCHAIN_H
#define CF_KILLCHAIN_H

#include <stddef.h>

#define CF_KILLCHAIN_STAGES 14  /* positions */
#define CF_KILLCHAIN_TACTICS 16 /* names: positions plus the two v18 splits */

/* Stage (position) of `tactic` (1..14), or 0 for a name that is not an
 * ATT&CK enterprise tactic.  Case and '_'/' ' versus '-' are ignored, and
 * an "attack." prefix is accepted.  When display is non-NULL it receives
 * a static string naming the tactic as the rule did, in canonical
 * spelling ("stealth" stays "stealth"), or NULL for an unknown tactic;
 * the same tactic always gives the same pointer. */
int cf_killchain_stage(const char *tactic, const char **display);

/* Canonical shortname of stage 1..14 ("credential-access"), else NULL. */
const char *cf_killchain_name(int stage);

/* Human-readable name of stage 1..14 ("Credential Access"), else NULL. */
const char *cf_killchain_title(int stage);

#endif
