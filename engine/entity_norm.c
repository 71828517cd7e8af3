/*
 * entity_norm.c - entity normalisation for linking (see entity_norm.h).
 * Pure functions; thread safe.
 */
#include "entity_norm.h"

#include "ckpt.h"

#include "hash.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Accounts every Windows machine runs as: linking on them would merge
 * all activity of a domain into one incident.  Compared after the domain
 * has been cut ("NT AUTHORITY\SYSTEM" -> "system"). */
static const char *const shared_users[] = {"system",
                                           "local service",
                                           "localservice",
                                           "network service",
                                           "networkservice",
                                           "localsystem",
                                           "anonymous logon",
                                           "nt authority",
                                           "n/a",
                                           "null",
                                           "none",
                                           "unknown",
                                           NULL};

/* Per-session virtual accounts (font driver host, window manager). */
static const char *const shared_user_prefixes[] = {"umfd-", "dwm-", NULL};

/* Logon ids of the built-in sessions (SYSTEM, LOCAL SERVICE, NETWORK
 * SERVICE, none). */
static const char *const shared_logon_ids[] = {"0x3e7", "0x3e4", "0x3e5",
                                               "0x0",   "0",     NULL};

static bool in_list(const char *s, const char *const *list) {
    for (; *list; list++)
        if (strcmp(s, *list) == 0) return true;
    return false;
}

static bool looks_ipv4(const char *s) {
    int dots = 0, digits = 0;
    for (; *s; s++) {
        if (*s == '.') {
            if (!digits) return false;
            dots++;
            digits = 0;
        } else if (isdigit((unsigned char)*s)) {
            if (++digits > 3) return false;
        } else {
            return false;
        }
    }
    return dots == 3 && digits;
}

static bool looks_ipv6(const char *s) {
    int colons = 0;
    for (; *s; s++) {
        if (*s == ':')
            colons++;
        else if (!isxdigit((unsigned char)*s) && *s != '.')
            return false;
    }
    return colons >= 2;
}

/* Loopback, unspecified and placeholder addresses. */
static bool shared_ip(const char *s) {
    if (strncmp(s, "127.", 4) == 0 && looks_ipv4(s)) return true;
    return strcmp(s, "::1") == 0 || strcmp(s, "0.0.0.0") == 0 ||
           strcmp(s, "::") == 0 || strcmp(s, "0:0:0:0:0:0:0:1") == 0;
}

/* Lowercased, trimmed copy of value into out. */
static size_t lower_trim(const char *value, char *out, size_t out_size) {
    const char *end;
    size_t n = 0;
    while (*value == ' ' || *value == '\t' || *value == '"') value++;
    end = value + strlen(value);
    while (end > value && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '"'))
        end--;
    for (; value < end && n + 1 < out_size; value++)
        out[n++] = (char)tolower((unsigned char)*value);
    out[n] = '\0';
    return n;
}

/* Moves out[from..] to the start of out. */
static size_t keep_from(char *out, size_t len, size_t from) {
    memmove(out, out + from, len - from + 1);
    return len - from;
}

static size_t normalize_ip(char *out, size_t n) {
    if (n && out[0] == '[') {
        char *close = strchr(out, ']');
        if (close) {
            *close = '\0';
            n = keep_from(out, (size_t)(close - out), 1);
        }
    }
    if (strncmp(out, "::ffff:", 7) == 0 && looks_ipv4(out + 7))
        n = keep_from(out, n, 7);
    if (shared_ip(out)) return 0;
    return n;
}

/* ---- accounts and domains ----------------------------------------- */

/* Domains whose accounts are a machine's own built-in ones, never an
 * estate's: they teach no NetBIOS-DNS pair.  By length, each length
 * having one name (a second name of some length would need a list
 * there): every account an event names is compared with them. */
static const char *const builtin_domains[] = {[7] = "builtin",
                                              [10] = "nt service",
                                              [11] = "iis apppool",
                                              [12] = "nt authority",
                                              [14] = "window manager",
                                              [16] = "font driver host",
                                              [18] = "nt virtual machine"};

/* Whether s (n bytes) is one of builtin_domains, ASCII case ignored. */
static bool builtin_domain(const char *s, size_t n) {
    const char *b =
        n < CF_ARRAY_LEN(builtin_domains) ? builtin_domains[n] : NULL;
    return b && strncasecmp(s, b, n) == 0;
}

struct domain_pair {
    char nb[64];
    char dns[CF_ENTITY_NORM_MAX];
    bool configured;
};

/* A domain SID (S-1-5-21-a-b-c) and the names it was seen with. */
struct domain_sid {
    char prefix[96];
    char nb[64];
    char dns[CF_ENTITY_NORM_MAX];
};

/* A user name seen with a domain, and the domains (as written,
 * lowercase) it was seen with: a name written bare elsewhere ("pgustavo"
 * in a service install event) is that account when only one domain has
 * it.  More than CF_ACCOUNT_DOMAINS domains: `many`. */
#define CF_ACCOUNT_DOMAINS 4
struct account {
    uint64_t hash; /* 0: empty slot */
    char name[64];
    char domains[CF_ACCOUNT_DOMAINS][64];
    uint8_t n_domains;
    bool many;
};

/* The fields the learning reads.  The pipeline finds them in the entity
 * map's one pass over an event (cf_entity_map_also), not here by name:
 * looking each up on every event cost more than the learning. */
enum learn_field {
    LF_HOSTNAME,
    LF_COMPUTER,
    LF_COMPUTER_NAME,
    LF_HOST_NAME,
    LF_SUBJECT_DOMAIN,
    LF_SUBJECT_USER,
    LF_SUBJECT_SID,
    LF_TARGET_DOMAIN,
    LF_TARGET_USER,
    LF_TARGET_USER_SID,
    LF_TARGET_SID,
    LF_USER,
    LF_COUNT
};

static const char *const learn_names[LF_COUNT] = {
    [LF_HOSTNAME] = "Hostname",
    [LF_COMPUTER] = "Computer",
    [LF_COMPUTER_NAME] = "ComputerName",
    [LF_HOST_NAME] = "host.name",
    [LF_SUBJECT_DOMAIN] = "SubjectDomainName",
    [LF_SUBJECT_USER] = "SubjectUserName",
    [LF_SUBJECT_SID] = "SubjectUserSid",
    [LF_TARGET_DOMAIN] = "TargetDomainName",
    [LF_TARGET_USER] = "TargetUserName",
    [LF_TARGET_USER_SID] = "TargetUserSid",
    [LF_TARGET_SID] = "TargetSid",
    [LF_USER] = "User"};

/* A call of learn_domain that taught nothing: the same account, SID and
 * host (a machine's events repeat them all day) teach nothing again as
 * long as nothing changed the domains since (learn_mark).  Texts longer
 * than LEARNED_TEXT are not remembered. */
#define LEARNED_WAYS 4
#define LEARNED_TEXT 128
#define LEARNED_NONE UINT16_MAX /* the text was NULL */
enum { LT_DOMAIN, LT_USER, LT_SID, LT_HOST, LT_COUNT };
struct learned {
    bool used;
    uint64_t mark;
    uint16_t len[LT_COUNT];
    char text[LT_COUNT][LEARNED_TEXT];
};

struct cf_domains {
    bool learn;
    struct domain_pair *pairs;
    size_t n_pairs, cap_pairs, n_learned;
    struct domain_sid *sids;
    size_t n_sids, cap_sids;
    struct account *accounts; /* open addressing, power-of-two size */
    size_t n_accounts, cap_accounts;
    /* bumped by every change to pairs, SIDs or accounts (pairs and
     * accounts are all that normalising an account reads:
     * cf_domains_generation) */
    uint64_t generation;
    uint64_t pairs_refused, sids_refused, accounts_refused, ambiguous,
        alloc_failures;
    struct learned learned[LEARNED_WAYS]; /* learn_domain's */
    unsigned next_learned, last_learned;
};

/* Lowercased copy of s[0..len) into buf (cut to size - 1). */
static void lower_copy(const char *s, size_t len, char *buf, size_t size) {
    size_t n = 0;
    for (; n < len && n + 1 < size; n++)
        buf[n] = (char)tolower((unsigned char)s[n]);
    buf[n] = '\0';
}

static bool netbios_name(const char *s) {
    size_t n = strlen(s);
    return n > 0 && n < 64 && !strpbrk(s, ".\\@/ ") && strcmp(s, "-") != 0;
}

static bool dns_name(const char *s) {
    size_t n = strlen(s);
    return n > 2 && n < CF_ENTITY_NORM_MAX && strchr(s, '.') && s[0] != '.' &&
           s[n - 1] != '.' && !strpbrk(s, "\\@/ ") && !looks_ipv4(s);
}

/* "ws03.acme.local" -> its DNS domain "acme.local" and short name
 * "ws03" (lowercase, into the buffers); false for a short name or an
 * address. */
static bool split_host(const char *host, char *shortname, size_t short_size,
                       char *suffix, size_t suffix_size) {
    char h[CF_ENTITY_NORM_MAX];
    if (!host) return false;
    size_t n = lower_trim(host, h, sizeof h);
    if (n == 0 || looks_ipv4(h) || looks_ipv6(h) || h[0] == '[') return false;
    char *dot = strchr(h, '.');
    if (!dot || dot == h || !dns_name(dot + 1)) return false;
    lower_copy(h, (size_t)(dot - h), shortname, short_size);
    lower_copy(dot + 1, strlen(dot + 1), suffix, suffix_size);
    return true;
}

/* Whether DNS domain `dns` starts with the label `nb` ("acme.local" and
 * "acme"). */
static bool first_label_is(const char *dns, const char *nb) {
    size_t n = strlen(nb);
    return strncmp(dns, nb, n) == 0 && dns[n] == '.';
}

/* Whether `sub` is a subdomain of `dns` ("eu.acme.local", "acme.local"). */
static bool subdomain_of(const char *sub, const char *dns) {
    size_t a = strlen(sub), b = strlen(dns);
    return a > b + 1 && sub[a - b - 1] == '.' && strcmp(sub + a - b, dns) == 0;
}

/* Room for element n of *arr (capacity *cap, doubled as needed); false,
 * counted, when memory runs out. */
static bool room_for_one(struct cf_domains *d, void **arr, size_t n,
                         size_t *cap, size_t elem) {
    if (n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : 8;
    void *na = cf_realloc(*arr, nc * elem);
    if (!na) {
        d->alloc_failures++;
        return false;
    }
    *arr = na;
    *cap = nc;
    return true;
}

/* Adds the pair (both lowercase, checked), once. */
static void add_pair(struct cf_domains *d, const char *nb, const char *dns,
                     bool configured) {
    bool other = false;
    for (size_t i = 0; i < d->n_pairs; i++) {
        struct domain_pair *p = &d->pairs[i];
        if (strcmp(p->nb, nb) != 0) continue;
        if (strcmp(p->dns, dns) == 0) {
            if (configured && !p->configured) d->generation++;
            p->configured = p->configured || configured;
            return;
        }
        other = true;
    }
    if (!configured && d->n_learned >= CF_DOMAINS_MAX) {
        d->pairs_refused++;
        return;
    }
    if (!room_for_one(d, (void **)&d->pairs, d->n_pairs, &d->cap_pairs,
                      sizeof *d->pairs))
        return;
    struct domain_pair *p = &d->pairs[d->n_pairs++];
    d->generation++;
    snprintf(p->nb, sizeof p->nb, "%s", nb);
    snprintf(p->dns, sizeof p->dns, "%s", dns);
    p->configured = configured;
    if (!configured) d->n_learned++;
    if (other && !configured) d->ambiguous++;
}

/* Remembers that domain SID `sid` (lowercase "s-1-5-21-a-b-c-rid") goes
 * with the domain name `name`; a SID seen with both a NetBIOS and a DNS
 * name pairs them. */
static void learn_sid(struct cf_domains *d, const char *sid, const char *name) {
    char prefix[96];
    const char *last = strrchr(sid, '-');
    int dashes = 0;
    for (const char *c = sid; *c; c++) dashes += *c == '-';
    /* S-1-5-21-a-b-c-rid: a domain (or machine) account */
    if (strncmp(sid, "s-1-5-21-", 9) != 0 || dashes != 7 ||
        (size_t)(last - sid) >= sizeof prefix)
        return;
    lower_copy(sid, (size_t)(last - sid), prefix, sizeof prefix);
    struct domain_sid *e = NULL;
    for (size_t i = 0; i < d->n_sids && !e; i++)
        if (strcmp(d->sids[i].prefix, prefix) == 0) e = &d->sids[i];
    if (!e) {
        if (d->n_sids >= CF_DOMAINS_MAX) {
            d->sids_refused++;
            return;
        }
        if (!room_for_one(d, (void **)&d->sids, d->n_sids, &d->cap_sids,
                          sizeof *d->sids))
            return;
        e = &d->sids[d->n_sids++];
        d->generation++;
        memset(e, 0, sizeof *e);
        snprintf(e->prefix, sizeof e->prefix, "%s", prefix);
    }
    char *slot = dns_name(name) ? e->dns : e->nb;
    size_t size = dns_name(name) ? sizeof e->dns : sizeof e->nb;
    if (slot[0]) return; /* the first name seen for it stays */
    d->generation++;
    snprintf(slot, size, "%s", name);
    if (e->nb[0] && e->dns[0]) add_pair(d, e->nb, e->dns, false);
}

static uint64_t account_hash(const char *name) {
    uint64_t h = cf_hash_bytes(name, strlen(name));
    return h ? h : 1;
}

static struct account *find_account(const struct cf_domains *d,
                                    const char *name, uint64_t h) {
    if (!d->cap_accounts) return NULL;
    for (size_t i = h & (d->cap_accounts - 1);;
         i = (i + 1) & (d->cap_accounts - 1)) {
        struct account *a = &d->accounts[i];
        if (!a->hash) return a; /* the free slot it would take */
        if (a->hash == h && strcmp(a->name, name) == 0) return a;
    }
}

static bool grow_accounts(struct cf_domains *d) {
    size_t nc = d->cap_accounts ? d->cap_accounts * 2 : 256;
    struct account *old = d->accounts, *na = cf_calloc(nc, sizeof *na);
    size_t oc = d->cap_accounts;
    if (!na) return false;
    d->accounts = na;
    d->cap_accounts = nc;
    for (size_t i = 0; i < oc; i++)
        if (old[i].hash) *find_account(d, old[i].name, old[i].hash) = old[i];
    cf_free(old);
    return true;
}

/* Remembers that user `name` exists in `domain` (both lowercase). */
static void learn_account(struct cf_domains *d, const char *name,
                          const char *domain) {
    if (!name[0] || strcmp(name, "-") == 0 || strlen(name) >= 64 ||
        strlen(domain) >= 64 || in_list(name, shared_users))
        return;
    uint64_t h = account_hash(name);
    struct account *a = find_account(d, name, h);
    if (!a || !a->hash) {
        if (d->n_accounts >= CF_DOMAINS_MAX * 64) {
            d->accounts_refused++;
            return;
        }
        if (2 * (d->n_accounts + 1) > d->cap_accounts) {
            if (!grow_accounts(d)) {
                d->alloc_failures++;
                return;
            }
            a = find_account(d, name, h);
        }
        a->hash = h;
        snprintf(a->name, sizeof a->name, "%s", name);
        d->n_accounts++;
        d->generation++;
    }
    for (uint8_t i = 0; i < a->n_domains; i++)
        if (strcmp(a->domains[i], domain) == 0) return;
    if (a->n_domains == CF_ACCOUNT_DOMAINS) {
        /* a change only the first time (the learn memo stays valid) */
        if (!a->many) d->generation++;
        a->many = true;
        return;
    }
    d->generation++;
    snprintf(a->domains[a->n_domains++], sizeof a->domains[0], "%s", domain);
}

/* `domain` (lowercase) as a DNS domain when it resolves to one, else as
 * it is, into buf. */
static void canonical_domain(const struct cf_domains *d, const char *domain,
                             const char *suffix, char *buf, size_t size) {
    const char *dns =
        netbios_name(domain) && !builtin_domain(domain, strlen(domain))
            ? cf_domains_resolve(d, domain, suffix)
            : NULL;
    snprintf(buf, size, "%s", dns ? dns : domain);
}

/* The domain a bare user `name` on host `shortname` of DNS domain
 * `suffix` (both NULL when unknown) belongs to, into buf: the one domain
 * the name is known in (NetBIOS names resolved); else, when the host is
 * in one of them and has no local account of that name, the host's.
 * False when none or undecidable (two estates, local accounts). */
static bool only_domain(const struct cf_domains *d, const char *name,
                        const char *shortname, const char *suffix, char *buf,
                        size_t size) {
    char dom[CF_ACCOUNT_DOMAINS][CF_ENTITY_NORM_MAX];
    const struct account *a = d && strlen(name) < 64
                                  ? find_account(d, name, account_hash(name))
                                  : NULL;
    bool same = true, host_domain = false, local = false;
    if (!a || !a->hash || a->many || !a->n_domains) return false;
    for (uint8_t i = 0; i < a->n_domains; i++) {
        canonical_domain(d, a->domains[i], suffix, dom[i], sizeof dom[i]);
        same = same && strcmp(dom[i], dom[0]) == 0;
        host_domain = host_domain || (suffix && strcmp(dom[i], suffix) == 0);
        local = local || (shortname && strcmp(dom[i], shortname) == 0);
    }
    if (same) {
        snprintf(buf, size, "%s", dom[0]);
        return true;
    }
    if (!host_domain || local) return false;
    snprintf(buf, size, "%s", suffix);
    return true;
}

/* What an account of domain `domain` (as written), user `user` and SID
 * `sid` (either may be NULL) on `host` teaches. */
static void teach(struct cf_domains *d, const char *domain, size_t domain_len,
                  const char *user, const char *sid, const char *host) {
    char dom[CF_ENTITY_NORM_MAX], shortname[CF_ENTITY_NORM_MAX],
        suffix[CF_ENTITY_NORM_MAX];
    lower_copy(domain, domain_len, dom, sizeof dom);
    if (!dom[0] || builtin_domain(dom, strlen(dom))) return;
    bool fqdn =
        split_host(host, shortname, sizeof shortname, suffix, sizeof suffix);
    if (user && (netbios_name(dom) || dns_name(dom))) {
        char u[CF_ENTITY_NORM_MAX];
        lower_trim(user, u, sizeof u);
        char *at = strchr(u, '@'); /* 4769 writes user@REALM */
        if (at) *at = '\0';
        learn_account(d, u, dom);
    }
    if (netbios_name(dom)) {
        /* a local account: its domain is the machine */
        if (fqdn && strcmp(dom, shortname) == 0) return;
        if (fqdn && user) {
            char u[CF_ENTITY_NORM_MAX];
            size_t n = lower_trim(user, u, sizeof u);
            /* the machine's own account names its domain */
            if (n > 1 && u[n - 1] == '$' && n - 1 == strlen(shortname) &&
                strncmp(u, shortname, n - 1) == 0)
                add_pair(d, dom, suffix, false);
        }
        if (fqdn && first_label_is(suffix, dom))
            add_pair(d, dom, suffix, false);
    } else if (!dns_name(dom)) {
        return;
    }
    if (sid) {
        char s[96];
        lower_copy(sid, strlen(sid), s, sizeof s);
        learn_sid(d, s, dom);
    }
}

/* Changes whenever anything in d changes: the generation and every
 * counter only grow. */
static uint64_t learn_mark(const struct cf_domains *d) {
    return d->generation + d->pairs_refused + d->sids_refused +
           d->accounts_refused + d->ambiguous + d->alloc_failures;
}

/* teach(), unless the same call taught nothing and nothing changed
 * since (struct learned).  text[LT_*] (NUL-terminated but for the
 * domain, len[] bytes long; NULL and LEARNED_NONE: none) as teach()
 * takes them.  Unless `checked`, the texts were read without looking
 * for NULs in them (event_value): then only a remembered call is
 * recognised, and false says that the call must be made again with
 * checked texts. */
static bool learn_domain(struct cf_domains *d, const char *const *text,
                         const size_t *len, bool checked) {
    bool keep = true;
    if (!d || !d->learn) return true;
    /* teach() would return at once (no domain, or a built-in one: half
     * the accounts Sysmon names are NT AUTHORITY's) */
    if (len[LT_DOMAIN] == 0 || builtin_domain(text[LT_DOMAIN], len[LT_DOMAIN]))
        return true;
    for (int i = 0; i < LT_COUNT; i++)
        keep = keep && (len[i] == LEARNED_NONE || len[i] < LEARNED_TEXT);
    uint64_t mark = learn_mark(d);
    /* the way that answered last first: events repeat their accounts */
    for (int j = 0; keep && j < LEARNED_WAYS; j++) {
        int w = (d->last_learned + j) % LEARNED_WAYS;
        const struct learned *l = &d->learned[w];
        bool same = l->used && l->mark == mark;
        for (int i = 0; same && i < LT_COUNT; i++)
            same = l->len[i] == len[i] &&
                   (len[i] == LEARNED_NONE ||
                    cf_bytes_equal(l->text[i], text[i], len[i]));
        /* remembered texts have no NUL: nor have these, then */
        if (same) {
            d->last_learned = (unsigned)w;
            return true;
        }
    }
    if (!checked) return false;
    teach(d, text[LT_DOMAIN], len[LT_DOMAIN], text[LT_USER], text[LT_SID],
          text[LT_HOST]);
    if (!keep || learn_mark(d) != mark) return true;
    struct learned *l = &d->learned[d->next_learned];
    d->next_learned = (d->next_learned + 1) % LEARNED_WAYS;
    l->used = true;
    l->mark = mark;
    for (int i = 0; i < LT_COUNT; i++) {
        l->len[i] = (uint16_t)len[i];
        if (len[i] != LEARNED_NONE) memcpy(l->text[i], text[i], len[i]);
    }
    return true;
}

/* An account "DOMAIN\user" (`len` bytes, NUL-terminated) on `host`
 * (host_len bytes; NULL, LEARNED_NONE: none); `checked` and the result
 * as learn_domain's. */
static bool learn_from_account(struct cf_domains *d, const char *account,
                               size_t len, const char *host, size_t host_len,
                               bool checked) {
    const char *slash = account ? strrchr(account, '\\') : NULL;
    if (!d || !d->learn || !slash || slash == account) return true;
    const char *text[LT_COUNT] = {account, slash + 1, NULL, host};
    size_t lens[LT_COUNT] = {(size_t)(slash - account),
                             len - (size_t)(slash + 1 - account), LEARNED_NONE,
                             host_len};
    return learn_domain(d, text, lens, checked);
}

/* The value of the first of the fields `which` (ending with LF_COUNT)
 * whose first occurrence is a usable text, else NULL; *len its length
 * (LEARNED_NONE for NULL).  A text with a NUL in it is not usable; unless
 * `checked`, that is not looked at (learn_domain's `checked`). */
static const char *event_value(const struct cf_event *ev, const int *first,
                               const enum learn_field *which, size_t *len,
                               bool checked) {
    for (; *which != LF_COUNT; which++) {
        int i = first[*which];
        if (i < 0) continue;
        const struct cf_event_field *f = &ev->fields[i];
        if (f->type == CF_VALUE_STRING && f->value_len &&
            (!checked || strlen(f->value) == f->value_len)) {
            *len = f->value_len;
            return f->value;
        }
    }
    *len = LEARNED_NONE;
    return NULL;
}

const char *const *cf_domains_learn_names(size_t *n) {
    *n = LF_COUNT;
    return learn_names;
}

void cf_domains_learn_event(struct cf_domains *d, const struct cf_event *ev) {
    int first[LF_COUNT];
    if (!d || !d->learn || !ev) return;
    for (int j = 0; j < LF_COUNT; j++)
        first[j] = cf_event_find(ev, learn_names[j], strlen(learn_names[j]), 0);
    cf_domains_learn_found(d, ev, first);
}

/* What cf_domains_learn_found teaches; false when a call unchecked
 * (learn_domain) must be made checked. */
static bool learn_found(struct cf_domains *d, const struct cf_event *ev,
                        const int *first, bool checked) {
    static const enum learn_field hosts[] = {
        LF_HOSTNAME, LF_COMPUTER, LF_COMPUTER_NAME, LF_HOST_NAME, LF_COUNT};
    /* per side: domain, user, SID */
    static const enum learn_field sides[2][3][3] = {
        {{LF_SUBJECT_DOMAIN, LF_COUNT},
         {LF_SUBJECT_USER, LF_COUNT},
         {LF_SUBJECT_SID, LF_COUNT}},
        {{LF_TARGET_DOMAIN, LF_COUNT},
         {LF_TARGET_USER, LF_COUNT},
         {LF_TARGET_USER_SID, LF_TARGET_SID, LF_COUNT}}};
    static const enum learn_field users[] = {LF_USER, LF_COUNT};
    const char *text[LT_COUNT];
    size_t len[LT_COUNT];
    text[LT_HOST] = event_value(ev, first, hosts, &len[LT_HOST], checked);
    for (size_t s = 0; s < CF_ARRAY_LEN(sides); s++) {
        text[LT_DOMAIN] =
            event_value(ev, first, sides[s][0], &len[LT_DOMAIN], checked);
        if (!text[LT_DOMAIN]) continue;
        text[LT_USER] =
            event_value(ev, first, sides[s][1], &len[LT_USER], checked);
        text[LT_SID] =
            event_value(ev, first, sides[s][2], &len[LT_SID], checked);
        if (!learn_domain(d, text, len, checked)) return false;
    }
    size_t alen;
    const char *account = event_value(ev, first, users, &alen, checked);
    return !account || learn_from_account(d, account, alen, text[LT_HOST],
                                          len[LT_HOST], checked);
}

/* Most events repeat a remembered call: their texts are first read
 * without the search for NULs (a strlen of each), which a remembered
 * text makes needless; only an event that teaches is read again. */
void cf_domains_learn_found(struct cf_domains *d, const struct cf_event *ev,
                            const int *first) {
    if (!d || !d->learn || !ev) return;
    /* only a domain or an account teaches (learn_found reads the host
     * for them): most events have neither */
    if ((first[LF_SUBJECT_DOMAIN] & first[LF_TARGET_DOMAIN] & first[LF_USER]) <
        0)
        return;
    if (!learn_found(d, ev, first, false)) learn_found(d, ev, first, true);
}

void cf_domains_learn_account(struct cf_domains *d, const char *account,
                              const char *host) {
    if (account)
        learn_from_account(d, account, strlen(account), host,
                           host ? strlen(host) : LEARNED_NONE, true);
}

const char *cf_domains_resolve(const struct cf_domains *d, const char *netbios,
                               const char *suffix) {
    const struct domain_pair *only = NULL, *parent = NULL;
    size_t n = 0, n_parent = 0;
    for (size_t i = 0; d && i < d->n_pairs; i++)
        if (d->pairs[i].configured && strcmp(d->pairs[i].nb, netbios) == 0)
            return d->pairs[i].dns;
    if (suffix && first_label_is(suffix, netbios)) return suffix;
    for (size_t i = 0; d && i < d->n_pairs; i++) {
        const struct domain_pair *p = &d->pairs[i];
        if (strcmp(p->nb, netbios) != 0) continue;
        if (suffix && strcmp(p->dns, suffix) == 0) return p->dns;
        if (suffix && subdomain_of(suffix, p->dns)) {
            parent = p;
            n_parent++;
        }
        only = p;
        n++;
    }
    if (suffix) return n_parent == 1 ? parent->dns : NULL;
    return n == 1 ? only->dns : NULL;
}

/* out (lowercased, trimmed, length n) as an account key (see
 * entity_norm.h); 0 when it names no one or a shared account. */
static size_t normalize_account(const struct cf_domains *d, char *out,
                                size_t out_size, const char *host) {
    char dom[CF_ENTITY_NORM_MAX] = "", name[CF_ENTITY_NORM_MAX];
    char shortname[CF_ENTITY_NORM_MAX], suffix[CF_ENTITY_NORM_MAX];
    char *slash = strrchr(out, '\\');
    const char *user = out;
    if (slash) {
        lower_copy(out, (size_t)(slash - out), dom, sizeof dom);
        user = slash + 1;
    }
    snprintf(name, sizeof name, "%s", user);
    char *at = strchr(name, '@');
    if (at && at != name) {
        /* user@dns.domain (a UPN, or 4769's user@REALM) */
        if (dns_name(at + 1) || !dom[0])
            snprintf(dom, sizeof dom, "%s", at + 1);
        *at = '\0';
    }
    if (!name[0] || strcmp(name, "-") == 0 || in_list(name, shared_users))
        return 0;
    for (const char *const *p = shared_user_prefixes; *p; p++)
        if (strncmp(name, *p, strlen(*p)) == 0) return 0;
    bool fqdn =
        split_host(host, shortname, sizeof shortname, suffix, sizeof suffix);
    /* a bare name is the one account of that name the estate has */
    if (!dom[0] && !only_domain(d, name, fqdn ? shortname : NULL,
                                fqdn ? suffix : NULL, dom, sizeof dom))
        dom[0] = '\0';
    if (dom[0] && netbios_name(dom) && !builtin_domain(dom, strlen(dom))) {
        const char *dns = cf_domains_resolve(d, dom, fqdn ? suffix : NULL);
        if (dns) snprintf(dom, sizeof dom, "%s", dns);
    }
    int w;
    if (!dom[0] || strcmp(dom, "-") == 0)
        w = snprintf(out, out_size, "%s", name);
    else if (dns_name(dom))
        w = snprintf(out, out_size, "%s@%s", name, dom);
    else
        w = snprintf(out, out_size, "%s\\%s", dom, name);
    if (w < 0) return 0;
    return (size_t)w < out_size ? (size_t)w : out_size - 1;
}

bool cf_entity_matches(const struct cf_domains *dom, enum cf_entity_kind kind,
                       const char *configured, const char *key) {
    if (strcmp(configured, key) == 0) return true;
    if (kind != CF_ENTITY_USER || strchr(configured, '@')) return false;
    const char *cslash = strrchr(configured, '\\');
    const char *cuser = cslash ? cslash + 1 : configured;
    const char *kslash = strrchr(key, '\\');
    const char *user = kslash ? kslash + 1 : key;
    const char *at = strchr(user, '@');
    size_t n = at ? (size_t)(at - user) : strlen(user);
    if (strlen(cuser) != n || strncmp(cuser, user, n) != 0) return false;
    if (!cslash) return true; /* a bare name: that user in any domain */
    /* "acme\\bchen" configured, "bchen@acme.local" seen */
    char nb[64];
    if (!at || (size_t)(cslash - configured) >= sizeof nb) return false;
    lower_copy(configured, (size_t)(cslash - configured), nb, sizeof nb);
    const char *dns = cf_domains_resolve(dom, nb, at + 1);
    return dns && strcmp(dns, at + 1) == 0;
}

struct cf_domains *cf_domains_new(const struct cf_config *cfg, char *errstr,
                                  size_t errstr_size) {
    struct cf_domains *d = cf_calloc(1, sizeof *d);
    if (!d) goto nomem;
    d->learn = cfg->identity.learn_domains;
    const struct cf_strmap *m = &cfg->identity.domains;
    for (size_t i = 0; i < m->n; i++) {
        char nb[CF_ENTITY_NORM_MAX], dns[CF_ENTITY_NORM_MAX];
        lower_trim(m->key[i], nb, sizeof nb);
        lower_trim(m->value[i], dns, sizeof dns);
        if (!netbios_name(nb) || builtin_domain(nb, strlen(nb)) ||
            !dns_name(dns)) {
            cf_seterr(errstr, errstr_size, CF_ERR,
                      "config: identity.domains: '%s: %s' must map a NetBIOS "
                      "domain name (no dots, e.g. ACME) to a DNS domain name "
                      "(e.g. acme.local)",
                      m->key[i], m->value[i]);
            goto fail;
        }
        add_pair(d, nb, dns, true);
        if (d->alloc_failures) goto nomem;
    }
    return d;
nomem:
    cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
fail:
    cf_domains_destroy(d);
    return NULL;
}

void cf_domains_destroy(struct cf_domains *d) {
    if (!d) return;
    cf_free(d->pairs);
    cf_free(d->sids);
    cf_free(d->accounts);
    cf_free(d);
}

uint64_t cf_domains_generation(const struct cf_domains *d) {
    return d ? d->generation : 0;
}

void cf_domains_stats(const struct cf_domains *d, json_t *obj) {
    json_object_set_new(obj, "domains_configured",
                        json_integer((json_int_t)(d->n_pairs - d->n_learned)));
    json_object_set_new(obj, "domains_learned",
                        json_integer((json_int_t)d->n_learned));
    json_object_set_new(obj, "domains_ambiguous",
                        json_integer((json_int_t)d->ambiguous));
    json_object_set_new(obj, "accounts_known",
                        json_integer((json_int_t)d->n_accounts));
    json_object_set_new(
        obj, "domains_refused",
        json_integer((json_int_t)(d->pairs_refused + d->sids_refused +
                                  d->accounts_refused + d->alloc_failures)));
}

size_t cf_entity_normalize(enum cf_entity_kind kind, const char *value,
                           char *out, size_t out_size) {
    return cf_entity_normalize_in(NULL, kind, value, NULL, out, out_size);
}

size_t cf_entity_normalize_in(const struct cf_domains *dom,
                              enum cf_entity_kind kind, const char *value,
                              const char *host, char *out, size_t out_size) {
    size_t n;
    if (!out || out_size == 0) return 0;
    out[0] = '\0';
    if (!value) return 0;
    n = lower_trim(value, out, out_size);
    if (n == 0 || strcmp(out, "-") == 0) goto never;

    switch (kind) {
    case CF_ENTITY_USER:
        n = normalize_account(dom, out, out_size, host);
        if (n == 0) goto never;
        break;
    case CF_ENTITY_HOST:
        if (looks_ipv4(out) || looks_ipv6(out) || out[0] == '[') {
            n = normalize_ip(out, n);
            if (n == 0) goto never;
            break;
        }
        {
            char *dot = strchr(out, '.');
            if (dot && dot != out) {
                *dot = '\0';
                n = (size_t)(dot - out);
            }
        }
        if (strcmp(out, "localhost") == 0) goto never;
        break;
    case CF_ENTITY_SRC_IP:
    case CF_ENTITY_DST_IP:
        n = normalize_ip(out, n);
        if (n == 0 || strcmp(out, "localhost") == 0) goto never;
        break;
    case CF_ENTITY_PROCESS_GUID:
        if (out[0] == '{' && n >= 2 && out[n - 1] == '}') {
            out[--n] = '\0';
            n = keep_from(out, n, 1);
        }
        if (n == 0 || strspn(out, "0-") == n) goto never;
        break;
    case CF_ENTITY_LOGON_ID:
        if (in_list(out, shared_logon_ids)) goto never;
        break;
    default: break;
    }
    return n;
never:
    out[0] = '\0';
    return 0;
}

bool cf_entity_kind_links(enum cf_entity_kind kind) {
    return kind != CF_ENTITY_PROCESS && kind != CF_ENTITY_PARENT_PROCESS &&
           (unsigned)kind < CF_ENTITY_COUNT;
}

static const char *const plurals[CF_ENTITY_COUNT] = {"hosts",
                                                     "users",
                                                     "ips",
                                                     "ips",
                                                     "processes",
                                                     "parent_processes",
                                                     "process_guids",
                                                     "logon_ids",
                                                     "file_hashes",
                                                     "cloud_accounts",
                                                     "cloud_resources"};

const char *cf_entity_kind_plural(enum cf_entity_kind kind) {
    return (unsigned)kind < CF_ENTITY_COUNT ? plurals[kind] : "unknown";
}

/* ---- checkpoints ---------------------------------------------------- */

void cf_domains_save(const struct cf_domains *d, struct cf_ckpt_w *w) {
    cf_ckpt_u64(w, d->n_pairs);
    for (size_t i = 0; i < d->n_pairs; i++) {
        cf_ckpt_str(w, d->pairs[i].nb);
        cf_ckpt_str(w, d->pairs[i].dns);
        cf_ckpt_u8(w, d->pairs[i].configured);
    }
    cf_ckpt_u64(w, d->n_sids);
    for (size_t i = 0; i < d->n_sids; i++) {
        cf_ckpt_str(w, d->sids[i].prefix);
        cf_ckpt_str(w, d->sids[i].nb);
        cf_ckpt_str(w, d->sids[i].dns);
    }
    cf_ckpt_u64(w, d->n_accounts);
    for (size_t i = 0; i < d->cap_accounts; i++) {
        const struct account *a = &d->accounts[i];
        if (!a->hash) continue;
        cf_ckpt_str(w, a->name);
        cf_ckpt_u8(w, (uint8_t)(a->n_domains | a->many << 7));
        for (uint8_t k = 0; k < a->n_domains; k++)
            cf_ckpt_str(w, a->domains[k]);
    }
    const uint64_t counters[] = {d->n_learned,    d->pairs_refused,
                                 d->sids_refused, d->accounts_refused,
                                 d->ambiguous,    d->alloc_failures};
    for (size_t i = 0; i < CF_ARRAY_LEN(counters); i++)
        cf_ckpt_u64(w, counters[i]);
}

/* A string read into a fixed field: too long is a damaged file. */
static void get_fixed(struct cf_ckpt_r *r, char *out, size_t size) {
    size_t n;
    const char *v = cf_ckpt_get_str(r, &n);
    if (!v || n >= size) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, v, n + 1);
}

void cf_domains_load(struct cf_domains *d, struct cf_ckpt_r *r) {
    d->generation++; /* accounts are written in place below */
    /* counters are set back below: learn_mark may repeat */
    memset(d->learned, 0, sizeof d->learned);
    size_t n = cf_ckpt_get_count(r, 4 + 4 + 1);
    for (size_t i = 0; i < n && !r->bad; i++) {
        char nb[64], dns[CF_ENTITY_NORM_MAX];
        get_fixed(r, nb, sizeof nb);
        get_fixed(r, dns, sizeof dns);
        /* configured pairs come from this run's configuration */
        if (!cf_ckpt_get_u8(r) && !r->bad) add_pair(d, nb, dns, false);
    }
    n = cf_ckpt_get_count(r, 3 * 4);
    for (size_t i = 0; i < n && !r->bad; i++) {
        if (!room_for_one(d, (void **)&d->sids, d->n_sids, &d->cap_sids,
                          sizeof *d->sids)) {
            r->nomem = true;
            return;
        }
        struct domain_sid *e = &d->sids[d->n_sids];
        get_fixed(r, e->prefix, sizeof e->prefix);
        get_fixed(r, e->nb, sizeof e->nb);
        get_fixed(r, e->dns, sizeof e->dns);
        if (!r->bad) d->n_sids++;
    }
    n = cf_ckpt_get_count(r, 4 + 1);
    for (size_t i = 0; i < n && !r->bad && !r->nomem; i++) {
        char name[64];
        get_fixed(r, name, sizeof name);
        uint8_t flags = cf_ckpt_get_u8(r);
        uint8_t nd = flags & 0x7f;
        if (nd > CF_ACCOUNT_DOMAINS || r->bad) {
            r->bad = true;
            return;
        }
        if (2 * (d->n_accounts + 1) > d->cap_accounts && !grow_accounts(d)) {
            r->nomem = true;
            return;
        }
        uint64_t h = account_hash(name);
        struct account *a = find_account(d, name, h);
        if (a->hash) { /* the same name twice */
            r->bad = true;
            return;
        }
        a->hash = h;
        memcpy(a->name, name, sizeof a->name);
        a->many = (flags & 0x80) != 0;
        for (uint8_t k = 0; k < nd; k++)
            get_fixed(r, a->domains[k], sizeof a->domains[k]);
        a->n_domains = nd;
        d->n_accounts++;
    }
    uint64_t *counters[] = {&d->n_learned,    &d->pairs_refused,
                            &d->sids_refused, &d->accounts_refused,
                            &d->ambiguous,    &d->alloc_failures};
    for (size_t i = 0; i < CF_ARRAY_LEN(counters); i++)
        *counters[i] = cf_ckpt_get_u64(r);
}
