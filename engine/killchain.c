/*
 * killchain.c - ATT&CK tactic -> kill-chain stage (see killchain.h).
 * Static tables only; thread safe.
 */
#include "killchain.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

struct tactic {
    const char *name;
    const char *title;
    int stage;
};

/* Matrix order from ATT&CK v18.1; the two names that split
 * defense-evasion share its position (the first 14 entries are indexed by
 * position - 1). */
static const struct tactic tactics[] = {
    {"reconnaissance", "Reconnaissance", 1},
    {"resource-development", "Resource Development", 2},
    {"initial-access", "Initial Access", 3},
    {"execution", "Execution", 4},
    {"persistence", "Persistence", 5},
    {"privilege-escalation", "Privilege Escalation", 6},
    {"defense-evasion", "Defense Evasion", 7},
    {"credential-access", "Credential Access", 8},
    {"discovery", "Discovery", 9},
    {"lateral-movement", "Lateral Movement", 10},
    {"collection", "Collection", 11},
    {"command-and-control", "Command and Control", 12},
    {"exfiltration", "Exfiltration", 13},
    {"impact", "Impact", 14},
    {"stealth", "Stealth", 7},
    {"defense-impairment", "Defense Impairment", 7},
};
_Static_assert(sizeof tactics / sizeof tactics[0] == CF_KILLCHAIN_TACTICS,
               "CF_KILLCHAIN_TACTICS counts the table");

int cf_killchain_stage(const char *tactic, const char **display) {
    char buf[64];
    size_t n = 0;
    if (display) *display = NULL;
    if (!tactic) return 0;
    if (strncasecmp(tactic, "attack.", 7) == 0) tactic += 7;
    for (; tactic[n] && n + 1 < sizeof buf; n++) {
        char c = (char)tolower((unsigned char)tactic[n]);
        buf[n] = (c == '_' || c == ' ') ? '-' : c;
    }
    if (tactic[n]) return 0; /* longer than any tactic name */
    buf[n] = '\0';
    for (size_t i = 0; i < sizeof tactics / sizeof tactics[0]; i++) {
        if (strcmp(buf, tactics[i].name) == 0) {
            if (display) *display = tactics[i].name;
            return tactics[i].stage;
        }
    }
    return 0;
}

const char *cf_killchain_name(int stage) {
    if (stage < 1 || stage > CF_KILLCHAIN_STAGES) return NULL;
    return tactics[stage - 1].name;
}

const char *cf_killchain_title(int stage) {
    if (stage < 1 || stage > CF_KILLCHAIN_STAGES) return NULL;
    return tactics[stage - 1].title;
}
