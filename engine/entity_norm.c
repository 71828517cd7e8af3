/*
 * entity_norm.c - entity normalisation for linking (see entity_norm.h).
 * Pure functions; thread safe.
 */
#include "entity_norm.h"

#include <ctype.h>
#include <string.h>

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

size_t cf_entity_normalize(enum cf_entity_kind kind, const char *value,
                           char *out, size_t out_size) {
    size_t n;
    if (!out || out_size == 0) return 0;
    out[0] = '\0';
    if (!value) return 0;
    n = lower_trim(value, out, out_size);
    if (n == 0 || strcmp(out, "-") == 0) goto never;

    switch (kind) {
    case CF_ENTITY_USER: {
        char *slash = strrchr(out, '\\');
        char *at = strchr(out, '@');
        if (slash)
            n = keep_from(out, n, (size_t)(slash - out) + 1);
        else if (at && at != out) {
            *at = '\0';
            n = (size_t)(at - out);
        }
        if (n == 0 || strcmp(out, "-") == 0 || in_list(out, shared_users))
            goto never;
        for (const char *const *p = shared_user_prefixes; *p; p++)
            if (strncmp(out, *p, strlen(*p)) == 0) goto never;
        break;
    }
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
