/*
 * rewrite_recording.c - makes a recorded intrusion look like it happened
 * in another organisation, at another time, so that several recordings
 * can be interleaved into one stream of independent intrusions
 * (tests/integration/interleaved.sh).
 *
 *   rewrite_recording --tag N --at 2026-11-02T10:00:00Z < in.jsonl > out.jsonl
 *
 * Pass 1 reads every line as JSON and learns the recording's identities
 * from the fields that carry them (host names, accounts, domains); pass 2
 * rewrites the raw text of each line, so every other byte stays as it
 * was:
 *   - DNS domains "corp.com" -> "corp-oN.com", NetBIOS domains "CORP" ->
 *     "CORP-ON", host names "WS01" -> "WS01-oN", accounts "bob" ->
 *     "bob-oN" (built-in accounts such as SYSTEM, and names shorter than
 *     three characters, are left alone), wherever they stand as words;
 *   - IPv4 addresses: private ones move to 10.(100+N).c.d, public ones to
 *     198.(18+N).c.d (loopback, 0.0.0.0, broadcast and multicast stay);
 *   - GUIDs: the first group is scrambled with N (Sysmon process GUIDs,
 *     logon GUIDs, tenant ids);
 *   - times "YYYY-MM-DD[T ]HH:MM:SS[.fff][Z]" move by one offset that puts
 *     the median time of the recording at --at; their format is kept.
 * File hashes (hex without dashes) are kept: the same binary is the same
 * binary in every organisation.
 *
 * Test tooling, not part of chainfuse.  Reads the whole input into
 * memory.  Same input and options give the same output.
 */
#include <ctype.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "timeutil.h"

struct words {
    char **from, **to;
    size_t n, cap;
};

static int tag = 1;

static void add_word(struct words *w, const char *from, size_t len,
                     const char *suffix, bool upper) {
    char buf[512];
    if (len < 3 || len >= sizeof buf / 2) return;
    for (size_t i = 0; i < w->n; i++)
        if (strlen(w->from[i]) == len &&
            strncasecmp(w->from[i], from, len) == 0)
            return;
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->from = realloc(w->from, w->cap * sizeof *w->from);
        w->to = realloc(w->to, w->cap * sizeof *w->to);
        if (!w->from || !w->to) exit(2);
    }
    w->from[w->n] = strndup(from, len);
    snprintf(buf, sizeof buf, "%.*s%s%d", (int)len, from, suffix, tag);
    if (upper)
        for (char *c = buf; *c; c++) *c = (char)toupper((unsigned char)*c);
    w->to[w->n] = strdup(buf);
    w->n++;
}

static const char *const builtin_accounts[] = {"system",
                                               "local service",
                                               "localservice",
                                               "network service",
                                               "networkservice",
                                               "anonymous logon",
                                               "nt authority",
                                               "localsystem",
                                               "administrators",
                                               "users",
                                               "everyone",
                                               "builtin",
                                               "nt service",
                                               "window manager",
                                               "font driver host",
                                               "n/a",
                                               "null",
                                               "none",
                                               "unknown",
                                               NULL};

static bool builtin(const char *s, size_t len) {
    for (const char *const *b = builtin_accounts; *b; b++)
        if (strlen(*b) == len && strncasecmp(*b, s, len) == 0) return true;
    return (len > 4 && (strncasecmp(s, "dwm-", 4) == 0 ||
                        strncasecmp(s, "umfd-", 5) == 0)) ||
           memchr(s, ' ', len) != NULL;
}

static bool is_ip(const char *s, size_t len) {
    int dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.')
            dots++;
        else if (!isdigit((unsigned char)s[i]))
            return false;
    }
    return dots == 3;
}

static struct words dns, netbios, hosts, accounts;

/* "ws01.corp.com" -> host ws01, domain corp.com; "WS01" -> host. */
static void learn_host(const char *v) {
    size_t len = strlen(v);
    if (!len || is_ip(v, len) || strchr(v, ':') || strchr(v, ' ') ||
        strcmp(v, "-") == 0 || strcasecmp(v, "localhost") == 0)
        return;
    const char *dot = strchr(v, '.');
    add_word(&hosts, v, dot ? (size_t)(dot - v) : len, "-o", false);
    if (dot && dot[1]) add_word(&dns, dot + 1, strlen(dot + 1), "", false);
}

/* "CORP\bob", "bob@corp.com", "bob". */
static void learn_account(const char *v) {
    const char *slash = strrchr(v, '\\'), *at = strchr(v, '@');
    if (slash) {
        if (!builtin(v, (size_t)(slash - v)))
            add_word(&netbios, v, (size_t)(slash - v), "-O", true);
        v = slash + 1;
    }
    size_t len = at && at > v ? (size_t)(at - v) : strlen(v);
    if (at && at[1] && !slash)
        add_word(&dns, at + 1, strlen(at + 1), "", false);
    if (len && v[len - 1] == '$') return; /* a machine account: its host */
    if (!builtin(v, len) && strcmp(v, "-") != 0)
        add_word(&accounts, v, len, "-o", false);
}

static const char *const host_fields[] = {"Computer",
                                          "Hostname",
                                          "DeviceName",
                                          "ComputerName",
                                          "WorkstationName",
                                          "SourceHostname",
                                          "DestinationHostname",
                                          "RemoteDeviceName",
                                          "MachineName",
                                          "hostname",
                                          "name",
                                          "Workstation",
                                          NULL};
static const char *const account_fields[] = {"User",
                                             "TargetUserName",
                                             "SubjectUserName",
                                             "AccountName",
                                             "UserName",
                                             "UserId",
                                             "UserPrincipalName",
                                             "AccountUpn",
                                             "ParentUser",
                                             "SourceUser",
                                             "TargetUser",
                                             "InitiatingProcessAccountName",
                                             "InitiatingProcessAccountUpn",
                                             "MailboxOwnerUPN",
                                             "userName",
                                             NULL};
static const char *const domain_fields[] = {
    "TargetDomainName", "SubjectDomainName",
    "AccountDomain",    "InitiatingProcessAccountDomain",
    "Domain",           NULL};

static bool in(const char *k, const char *const *list) {
    for (; *list; list++)
        if (strcmp(k, *list) == 0) return true;
    return false;
}

static void learn(json_t *o, const char *key) {
    if (json_is_object(o)) {
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) learn(v, k);
    } else if (json_is_array(o)) {
        size_t i;
        json_t *v;
        json_array_foreach(o, i, v) learn(v, key);
    } else if (json_is_string(o) && key) {
        const char *v = json_string_value(o);
        if (in(key, host_fields))
            learn_host(v);
        else if (in(key, account_fields))
            learn_account(v);
        else if (in(key, domain_fields) && !builtin(v, strlen(v)) &&
                 strcmp(v, "-") != 0) {
            if (strchr(v, '.'))
                add_word(&dns, v, strlen(v), "", false);
            else
                add_word(&netbios, v, strlen(v), "-O", true);
        }
    }
}

/* DNS domains get the tag before their last label: corp.com ->
 * corp-oN.com. */
static void fix_dns(void) {
    for (size_t i = 0; i < dns.n; i++) {
        char buf[512];
        const char *last = strrchr(dns.from[i], '.');
        if (!last) last = dns.from[i] + strlen(dns.from[i]);
        snprintf(buf, sizeof buf, "%.*s-o%d%s", (int)(last - dns.from[i]),
                 dns.from[i], tag, last);
        free(dns.to[i]);
        dns.to[i] = strdup(buf);
    }
}

static bool word_char(int c) {
    return isalnum(c) || c == '_' || c == '-';
}

/* ---- pass 2 ------------------------------------------------------------ */

static int64_t shift_ms;

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n) {
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        if (!(o->p = realloc(o->p, o->cap))) exit(2);
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static size_t digits(const char *s, size_t max) {
    size_t n = 0;
    while (n < max && isdigit((unsigned char)s[n])) n++;
    return n;
}

/* A time at s: returns its length and writes the shifted text. */
static size_t try_time(const char *s, size_t rest, struct out *o) {
    if (rest < 19 || digits(s, 4) != 4 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return 0;
    size_t n = 19;
    if (n < rest && s[n] == '.') n += 1 + digits(s + n + 1, rest - n - 1);
    size_t frac = n - 19;
    char iso[64];
    snprintf(iso, sizeof iso, "%.10sT%.8sZ", s, s + 11);
    int64_t ms;
    if (cf_time_parse(iso, strlen(iso), &ms) != CF_OK) return 0;
    ms += shift_ms - (shift_ms % 1000);
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64];
    int w = snprintf(buf, sizeof buf, "%04d-%02d-%02d%c%02d:%02d:%02d",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, s[10],
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
    put(o, buf, (size_t)w);
    put(o, s + 19, frac);
    return n;
}

/* An IPv4 address at s (at a word boundary). */
static size_t try_ip(const char *s, size_t rest, struct out *o) {
    int oct[4];
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        size_t d = digits(s + n, rest - n);
        if (!d || d > 3) return 0;
        oct[i] = atoi(s + n);
        if (oct[i] > 255) return 0;
        n += d;
        if (i < 3) {
            if (n >= rest || s[n] != '.') return 0;
            n++;
        }
    }
    if (n < rest && (isalnum((unsigned char)s[n]) || s[n] == '.')) return 0;
    char buf[32];
    int w;
    bool private = oct[0] == 10 ||
                   (oct[0] == 172 && oct[1] >= 16 && oct[1] < 32) ||
                   (oct[0] == 192 && oct[1] == 168);
    if (oct[0] == 127 || oct[0] == 0 || oct[0] >= 224 || oct[0] == 169)
        return 0;
    if (private)
        w = snprintf(buf, sizeof buf, "10.%d.%d.%d", 100 + tag, oct[2], oct[3]);
    else
        w = snprintf(buf, sizeof buf, "198.%d.%d.%d", 18 + tag, oct[2], oct[3]);
    put(o, buf, (size_t)w);
    return n;
}

/* A GUID 8-4-4-4-12 at s: the first group is scrambled with the tag. */
static size_t try_guid(const char *s, size_t rest, struct out *o) {
    static const int groups[] = {8, 4, 4, 4, 12};
    size_t n = 0;
    if (rest < 36) return 0;
    for (int g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, n++)
            if (!isxdigit((unsigned char)s[n])) return 0;
        if (g < 4 && s[n++] != '-') return 0;
    }
    if (n < rest && isxdigit((unsigned char)s[n])) return 0;
    unsigned long first = strtoul(s, NULL, 16);
    unsigned long mixed =
        (first * 2654435761UL + (unsigned long)tag * 40503UL) & 0xffffffffUL;
    char buf[16];
    snprintf(buf, sizeof buf,
             isupper((unsigned char)s[0]) || isupper((unsigned char)s[1])
                 ? "%08lX"
                 : "%08lx",
             mixed);
    put(o, buf, 8);
    put(o, s + 8, 28);
    return 36;
}

static size_t try_words(const struct words *w, const char *s, size_t rest,
                        struct out *o) {
    size_t best = 0, bi = 0;
    for (size_t i = 0; i < w->n; i++) {
        size_t l = strlen(w->from[i]);
        if (l > rest || l <= best || strncasecmp(s, w->from[i], l) != 0)
            continue;
        if (l < rest && (word_char((unsigned char)s[l]) ||
                         (s[l] == '.' && w == &dns && l + 1 < rest &&
                          isalpha((unsigned char)s[l + 1]))))
            continue;
        best = l;
        bi = i;
    }
    if (best) put(o, w->to[bi], strlen(w->to[bi]));
    return best;
}

static void rewrite(const char *s, size_t len, struct out *o) {
    o->len = 0;
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        /* a JSON escape (\t, \n, \r) before a word is a boundary too */
        bool boundary =
            i == 0 || !word_char((unsigned char)s[i - 1]) ||
            (i >= 2 && s[i - 2] == '\\' && strchr("tnr", s[i - 1]) != NULL &&
             (i < 3 || s[i - 3] != '\\'));
        bool after_dot = i > 0 && s[i - 1] == '.';
        if (boundary) {
            n = try_time(s + i, len - i, o);
            if (!n) n = try_guid(s + i, len - i, o);
            if (!n && !after_dot) n = try_ip(s + i, len - i, o);
            if (!n) n = try_words(&dns, s + i, len - i, o);
            if (!n && !after_dot) n = try_words(&hosts, s + i, len - i, o);
            if (!n && !after_dot) n = try_words(&netbios, s + i, len - i, o);
            if (!n && !after_dot) n = try_words(&accounts, s + i, len - i, o);
        }
        if (n) {
            i += n;
        } else {
            put(o, s + i, 1);
            i++;
        }
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every time in a line, for the median. */
static void collect_times(const char *s, size_t len, int64_t **t, size_t *n,
                          size_t *cap) {
    for (size_t i = 0; i + 19 <= len; i++) {
        if (i && word_char((unsigned char)s[i - 1])) continue;
        const char *p = s + i;
        if (digits(p, 4) != 4 || p[4] != '-' || p[7] != '-' ||
            (p[10] != 'T' && p[10] != ' ') || p[13] != ':' || p[16] != ':')
            continue;
        char iso[32];
        int64_t ms;
        snprintf(iso, sizeof iso, "%.10sT%.8sZ", p, p + 11);
        if (cf_time_parse(iso, strlen(iso), &ms) != CF_OK) continue;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 4096;
            if (!(*t = realloc(*t, *cap * sizeof **t))) exit(2);
        }
        (*t)[(*n)++] = ms;
        i += 18;
    }
}

int main(int argc, char **argv) {
    const char *at = NULL;
    static const struct option opts[] = {{"tag", required_argument, 0, 't'},
                                         {"at", required_argument, 0, 'a'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 't')
            tag = atoi(optarg);
        else if (c == 'a')
            at = optarg;
        else {
            fprintf(stderr,
                    "usage: rewrite_recording --tag N --at TIME < in > out\n");
            return 2;
        }
    }
    int64_t at_ms = 0;
    if (!at || tag < 1 || tag > 99 ||
        cf_time_parse(at, strlen(at), &at_ms) != CF_OK) {
        fprintf(
            stderr,
            "usage: rewrite_recording --tag 1..99 --at RFC3339 < in > out\n");
        return 2;
    }
    char **lines = NULL;
    size_t *lens = NULL, n = 0, cap = 0, tn = 0, tcap = 0;
    int64_t *times = NULL;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t r;
    while ((r = getline(&line, &lcap, stdin)) > 0) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            lines = realloc(lines, cap * sizeof *lines);
            lens = realloc(lens, cap * sizeof *lens);
            if (!lines || !lens) return 2;
        }
        lines[n] = malloc((size_t)r);
        if (!lines[n]) return 2;
        memcpy(lines[n], line, (size_t)r);
        lens[n] = (size_t)r;
        json_t *j = json_loadb(line, (size_t)r, JSON_DECODE_ANY, NULL);
        if (j) learn(j, NULL);
        json_decref(j);
        collect_times(line, (size_t)r, &times, &tn, &tcap);
        n++;
    }
    free(line);
    fix_dns();
    if (tn) {
        qsort(times, tn, sizeof *times, cmp_i64);
        shift_ms = at_ms - times[tn / 2];
    }
    struct out o = {0};
    for (size_t i = 0; i < n; i++) {
        rewrite(lines[i], lens[i], &o);
        fwrite(o.p, 1, o.len, stdout);
        free(lines[i]);
    }
    fprintf(
        stderr,
        "rewrite_recording: tag %d: %zu lines, %zu DNS domains, %zu NetBIOS "
        "domains, %zu hosts, %zu accounts, times moved by %lld s\n",
        tag, n, dns.n, netbios.n, hosts.n, accounts.n,
        (long long)(shift_ms / 1000));
    /* freed so the sanitizer build can run the interleaved test */
    free(o.p);
    free(lines);
    free(lens);
    free(times);
    return 0;
}
