/*
 * logsource.c - logsource routing: the built-in mapping table, the
 * `logsources` config section, and the per-thread route cache.
 *
 * Called by the rule compiler (ruleset.c) and the test oracle: they add
 * every rule's (product, category, service), seal the router, then route
 * each event.  The router is read-only after cf_router_seal(); a
 * cf_route_cache belongs to one thread.
 *
 * A route (product, category, service) holds when every part the table
 * knows holds; a part the table does not know imposes no condition.  A
 * category or service entry is looked up for the rule's product first,
 * then for "any product".  Each entry is an OR of condition maps; a map
 * ANDs its field tests.  Field names are compared exactly, values as
 * ASCII case-insensitive text (OTRF writes both "Security" and
 * "security"; numbers compare by their text, EventID 1 is "1").
 *
 * Config section format (YAML), documented for the README:
 *
 *   logsources:
 *     category:
 *       process_creation:
 *         product: windows      # optional: only rules of this product
 *         conditions:           # OR of maps; a map ANDs its fields
 *           - {Channel: Microsoft-Windows-Sysmon/Operational, EventID: 1}
 *           - {Channel: [Security, security], EventID: [4688]}
 *     service:
 *       myapp: {product: linux, conditions: [{program: myapp}]}
 *     product:
 *       windows: {conditions: [{Channel: true}, {EventID: true}]}
 *
 * A field's value is a scalar or a list of scalars (any of them), `true`
 * (field present) or `false` (field absent).  `conditions: []` removes
 * every condition for that part.  Under a name, a list of such objects
 * gives one entry per product.  An entry replaces the built-in entry with
 * the same kind, name and product; others are added.
 */
#include "logsource.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "hash.h"
#include "yaml_json.h"

enum ls_mode { LS_VALUES, LS_PRESENT, LS_ABSENT };
enum ls_kind { LS_PRODUCT, LS_CATEGORY, LS_SERVICE };

struct ls_test {
    uint32_t field; /* index into router->fields */
    enum ls_mode mode;
    char **values; /* LS_VALUES: lowercase text */
    size_t n_values;
};

struct ls_cond { /* AND */
    struct ls_test *tests;
    size_t n_tests;
};

struct ls_entry {
    enum ls_kind kind;
    char *product; /* NULL: any product (category/service entries) */
    char *name;
    struct ls_cond *alts; /* OR; n_alts == 0: no condition */
    size_t n_alts;
};

struct ls_field {
    char *name;
    uint32_t len;
    uint32_t hash;
    bool by_value; /* some test compares its values (else presence only) */
    bool used;     /* some sealed route tests it */
};

struct ls_route {
    char *product, *category, *service;
    const struct ls_entry *parts[3];
    uint64_t hash; /* route_hash */
};

struct cf_router {
    struct ls_entry *entries;
    size_t n_entries, cap_entries;
    struct ls_field *fields;
    uint32_t n_fields, cap_fields;
    struct ls_route *routes;
    uint32_t n_routes, cap_routes;
    /* Open addressing from route_hash to route index + 1, at most half
     * full: cf_router_add is called per rule (4,000 with SigmaHQ), and a
     * walk over the routes with three strcasecmp each was 4% of a warm
     * start's instructions. */
    uint32_t *route_slots;
    uint32_t route_mask;
    /* Sealed: open-addressing table from name hash to field index + 1 of
     * the fields routes use. */
    uint32_t *field_slots;
    uint32_t field_mask;
    bool sealed;
};

struct ls_slot {
    char *key; /* NULL: empty */
    size_t key_len;
    uint64_t hash;
    uint64_t *bits;
};

#define LS_CACHE_SLOTS 1024u /* power of two; cleared when 3/4 full */

struct cf_route_cache {
    uint32_t words;
    struct ls_slot *slots;
    uint32_t used;
    struct cf_route_hit *hits;
    size_t cap_hits;
    struct cf_buf key; /* the event's routing key, rebuilt per event */
    uint64_t *scratch; /* answer when the cache cannot store it */
};

/* ---- built-in table ---------------------------------------------------- */

/* The built-in table is written as compact strings so it reads like the
 * config format: entries "kind|product|name", conditions separated by
 * ';', tests in a condition by ',', each test "Field=v1/v2" (values
 * separated by '/' are alternatives, so no value may contain '/' -- use
 * '\x01' which is turned into '/'), "Field" alone meaning present and
 * "!Field" absent. */
struct ls_default {
    const char *key;
    const char *conds;
};

#define SYSMON "Microsoft-Windows-Sysmon\x01Operational"
#define SYSCH "Channel=" SYSMON
#define SYSPN "Provider_Name=Microsoft-Windows-Sysmon"
#define SYSSN "SourceName=Microsoft-Windows-Sysmon"
/* A Sysmon event with one of the given ids, by channel or provider. */
#define SYS(ids)                                                               \
    SYSCH ",EventID=" ids ";" SYSPN ",EventID=" ids ";" SYSSN ",EventID=" ids
#define PSOP "Microsoft-Windows-PowerShell\x01Operational"
#define LSYS "Linux-Sysmon\x01Operational"
#define LSYS_ID(ids)                                                           \
    "Channel=" LSYS ",EventID=" ids ";Provider_Name=Linux-Sysmon,EventID=" ids

static const struct ls_default ls_defaults[] = {
    /* products */
    {"product||windows", "Channel;EventID"},
    /* Linux and macOS logs carry no Windows channel or event id (except
     * Sysmon for Linux, which keeps Sysmon's shape). */
    {"product||linux",
     "!Channel,!EventID;Channel=" LSYS ";Provider_Name=Linux-Sysmon"},
    {"product||macos", "!Channel,!EventID"},
    {"product||zeek", "uid,id.orig_h"},
    {"product||aws", "eventSource"},
    {"product||azure",
     "Type=AuditLogs/SigninLogs/AADNonInteractiveUserSignInLogs/"
     "AzureActivity/AADUserRiskEvents/AADRiskyUsers/"
     "AADServicePrincipalSignInLogs/AADManagedIdentitySignInLogs;"
     "category=AuditLogs/SignInLogs/NonInteractiveUserSignInLogs/"
     "Administrative/Security/ServiceHealth/Alert/Recommendation/Policy/"
     "Autoscale/ResourceHealth/UserRiskEvents/RiskyUsers/"
     "ServicePrincipalSignInLogs/ManagedIdentitySignInLogs"},
    {"product||m365", "Workload;OfficeWorkload;Type=OfficeActivity"},
    {"product||okta", "eventType,displayMessage;eventType,actor.alternateId"},
    {"product||gcp", "logName;protoPayload.serviceName;id.applicationName"},

    /* Windows categories (Sysmon event ids; process_creation also 4688) */
    {"category|windows|process_creation",
     SYS("1") ";Channel=Security,EventID=4688"},
    {"category|windows|file_change", SYS("2")},
    {"category|windows|network_connection", SYS("3")},
    {"category|windows|sysmon_status", SYS("4/16")},
    {"category|windows|process_termination", SYS("5")},
    {"category|windows|driver_load", SYS("6")},
    {"category|windows|image_load", SYS("7")},
    {"category|windows|create_remote_thread", SYS("8")},
    {"category|windows|raw_access_thread", SYS("9")},
    {"category|windows|process_access", SYS("10")},
    {"category|windows|file_event", SYS("11")},
    {"category|windows|registry_add", SYS("12")},
    {"category|windows|registry_delete", SYS("12")},
    {"category|windows|registry_set", SYS("13")},
    {"category|windows|registry_rename", SYS("14")},
    {"category|windows|registry_event", SYS("12/13/14")},
    {"category|windows|create_stream_hash", SYS("15")},
    {"category|windows|pipe_created", SYS("17/18")},
    {"category|windows|wmi_event", SYS("19/20/21")},
    {"category|windows|dns_query", SYS("22")},
    {"category|windows|file_delete", SYS("23/26")},
    {"category|windows|clipboard_change", SYS("24")},
    {"category|windows|process_tampering", SYS("25")},
    {"category|windows|file_block_executable", SYS("27")},
    {"category|windows|file_block_shredding", SYS("28")},
    {"category|windows|file_executable_detected", SYS("29")},
    {"category|windows|sysmon_error", SYS("255")},
    {"category|windows|ps_module",
     "Channel=" PSOP ",EventID=4103;"
     "Provider_Name=Microsoft-Windows-PowerShell,EventID=4103;"
     "SourceName=Microsoft-Windows-PowerShell,EventID=4103"},
    {"category|windows|ps_script",
     "Channel=" PSOP ",EventID=4104;"
     "Provider_Name=Microsoft-Windows-PowerShell,EventID=4104;"
     "SourceName=Microsoft-Windows-PowerShell,EventID=4104"},
    {"category|windows|ps_classic_start",
     "Channel=Windows PowerShell,EventID=400"},
    {"category|windows|ps_classic_provider_start",
     "Channel=Windows PowerShell,EventID=600"},
    {"category|windows|ps_classic_script",
     "Channel=Windows PowerShell,EventID=800"},
    /* file_rename and file_access come from Microsoft-Windows-Kernel-File
     * (ETW) in SigmaHQ's docs: no Sysmon id, so the provider decides. */
    {"category|windows|file_rename",
     "Provider_Name=Microsoft-Windows-Kernel-File;"
     "SourceName=Microsoft-Windows-Kernel-File"},
    {"category|windows|file_access",
     "Provider_Name=Microsoft-Windows-Kernel-File;"
     "SourceName=Microsoft-Windows-Kernel-File"},

    /* Sysmon for Linux */
    {"category|linux|process_creation", LSYS_ID("1")},
    {"category|linux|network_connection", LSYS_ID("3")},
    {"category|linux|process_termination", LSYS_ID("5")},
    {"category|linux|file_event", LSYS_ID("11")},
    {"category|linux|file_delete", LSYS_ID("23")},

    /* Windows services: channel names as in SigmaHQ / pySigma */
    {"service|windows|security", "Channel=Security"},
    {"service|windows|system", "Channel=System"},
    {"service|windows|application", "Channel=Application"},
    {"service|windows|sysmon", "Channel=" SYSMON},
    {"service|windows|powershell", "Channel=" PSOP},
    {"service|windows|powershell-classic", "Channel=Windows PowerShell"},
    {"service|windows|taskscheduler",
     "Channel=Microsoft-Windows-TaskScheduler\x01Operational"},
    {"service|windows|wmi", "Channel=Microsoft-Windows-WMI-Activity\x01"
                            "Operational"},
    {"service|windows|dns-server", "Channel=DNS Server"},
    {"service|windows|dns-server-audit",
     "Channel=Microsoft-Windows-DNS-Server\x01"
     "Audit"},
    {"service|windows|dns-server-analytic",
     "Channel=Microsoft-Windows-DNS-Server\x01"
     "Analytical"},
    {"service|windows|dns-client",
     "Channel=Microsoft-Windows-DNS Client Events\x01Operational"},
    {"service|windows|driver-framework",
     "Channel=Microsoft-Windows-DriverFrameworks-UserMode\x01Operational"},
    {"service|windows|ntlm", "Channel=Microsoft-Windows-NTLM\x01Operational"},
    {"service|windows|firewall-as",
     "Channel=Microsoft-Windows-Windows Firewall With Advanced Security\x01"
     "Firewall"},
    {"service|windows|bits-client",
     "Channel=Microsoft-Windows-Bits-Client\x01Operational"},
    {"service|windows|codeintegrity-operational",
     "Channel=Microsoft-Windows-CodeIntegrity\x01Operational"},
    {"service|windows|windefend",
     "Channel=Microsoft-Windows-Windows Defender\x01Operational"},
    {"service|windows|applocker",
     "Channel=Microsoft-Windows-AppLocker\x01MSI and Script/"
     "Microsoft-Windows-AppLocker\x01"
     "EXE and DLL/"
     "Microsoft-Windows-AppLocker\x01Packaged app-Deployment/"
     "Microsoft-Windows-AppLocker\x01Packaged app-Execution"},
    {"service|windows|msexchange-management", "Channel=MSExchange Management"},
    {"service|windows|printservice-admin",
     "Channel=Microsoft-Windows-PrintService\x01"
     "Admin"},
    {"service|windows|printservice-operational",
     "Channel=Microsoft-Windows-PrintService\x01Operational"},
    {"service|windows|smbclient-security",
     "Channel=Microsoft-Windows-SmbClient\x01Security"},
    {"service|windows|smbclient-connectivity",
     "Channel=Microsoft-Windows-SmbClient\x01"
     "Connectivity"},
    {"service|windows|smbserver-connectivity",
     "Channel=Microsoft-Windows-SMBServer\x01"
     "Connectivity"},
    {"service|windows|lsa-server",
     "Channel=Microsoft-Windows-LSA\x01Operational"},
    {"service|windows|appxdeployment-server",
     "Channel=Microsoft-Windows-AppXDeploymentServer\x01Operational"},
    {"service|windows|appxpackaging-om",
     "Channel=Microsoft-Windows-AppxPackaging\x01Operational"},
    {"service|windows|appmodel-runtime",
     "Channel=Microsoft-Windows-AppModel-Runtime\x01"
     "Admin"},
    {"service|windows|capi2", "Channel=Microsoft-Windows-CAPI2\x01Operational"},
    {"service|windows|certificateservicesclient-lifecycle-system",
     "Channel=Microsoft-Windows-CertificateServicesClient-Lifecycle-System"
     "\x01Operational"},
    {"service|windows|diagnosis-scripted",
     "Channel=Microsoft-Windows-Diagnosis-Scripted\x01Operational"},
    {"service|windows|ldap", "Channel=Microsoft-Windows-LDAP-Client\x01"
                             "Debug"},
    {"service|windows|openssh", "Channel=OpenSSH\x01Operational"},
    {"service|windows|shell-core",
     "Channel=Microsoft-Windows-Shell-Core\x01Operational"},
    {"service|windows|terminalservices-localsessionmanager",
     "Channel=Microsoft-Windows-TerminalServices-LocalSessionManager\x01"
     "Operational"},
    {"service|windows|security-mitigations",
     "Channel=Microsoft-Windows-Security-Mitigations\x01Kernel Mode/"
     "Microsoft-Windows-Security-Mitigations\x01User Mode"},
    {"service|windows|iis-configuration",
     "Channel=Microsoft-IIS-Configuration\x01Operational/"
     "Microsoft-IIS-Configuration\x01"
     "Administrative"},
    {"service|windows|microsoft-servicebus-client",
     "Channel=Microsoft-ServiceBus-Client"},
    {"service|windows|vhdmp", "Channel=Microsoft-Windows-VHDMP\x01Operational"},
    {"service|windows|bitlocker", "Channel=Microsoft-Windows-BitLocker\x01"
                                  "BitLocker Management"},
    {"service|windows|hyper-v-worker",
     "Channel=Microsoft-Windows-Hyper-V-Worker\x01"
     "Admin"},
    {"service|windows|kernel-shimengine",
     "Channel=Microsoft-Windows-Kernel-ShimEngine\x01Operational/"
     "Microsoft-Windows-Kernel-ShimEngine\x01"
     "Diagnostic"},
    {"service|windows|ntfs", "Channel=Microsoft-Windows-Ntfs\x01Operational"},
    {"service|windows|sysmon-error", SYS("255")},

    /* Linux services */
    {"service|linux|auditd", "type,!Channel"},
    {"service|linux|syslog", "Facility;facility;SyslogMessage"},

    /* Zeek logs (JSON): _path or a Filebeat dataset names the log; without
     * either, a field only that log has. */
    {"service|zeek|rdp", "_path=rdp;event.dataset=zeek.rdp;security_protocol"},
    {"service|zeek|dns", "_path=dns;event.dataset=zeek.dns;query,qtype_name"},
    {"service|zeek|http", "_path=http;event.dataset=zeek.http;uri,method"},
    {"service|zeek|smb_files",
     "_path=smb_files;event.dataset=zeek.smb_files;action,path"},
    {"service|zeek|dce_rpc",
     "_path=dce_rpc;event.dataset=zeek.dce_rpc;endpoint,operation"},
    {"service|zeek|kerberos",
     "_path=kerberos;event.dataset=zeek.kerberos;request_type"},
    {"service|zeek|x509",
     "_path=x509;event.dataset=zeek.x509;certificate.subject"},
    {"service|zeek|conn", "_path=conn;event.dataset=zeek.conn;conn_state"},
    {"service|zeek|smb_mapping",
     "_path=smb_mapping;event.dataset=zeek.smb_mapping;share_type"},
    {"service|zeek|ssl", "_path=ssl;event.dataset=zeek.ssl;server_name,cipher"},

    /* cloud services */
    {"service|aws|cloudtrail", "eventSource"},
    {"service|azure|auditlogs", "Type=AuditLogs;category=AuditLogs"},
    {"service|azure|signinlogs",
     "Type=SigninLogs/AADNonInteractiveUserSignInLogs;"
     "category=SignInLogs/NonInteractiveUserSignInLogs"},
    {"service|azure|activitylogs",
     "Type=AzureActivity;category=Administrative/Security/ServiceHealth/"
     "Alert/Recommendation/Policy/Autoscale/ResourceHealth"},
    {"service|azure|riskdetection",
     "Type=AADUserRiskEvents;category=UserRiskEvents"},
    {"service|azure|pim", "Type=AuditLogs;category=AuditLogs"},
    {"service|gcp|gcp.audit", "logName;protoPayload.serviceName"},
    {"service|gcp|google_workspace.admin", "id.applicationName=admin"},
    {"service|gcp|google_workspace.login", "id.applicationName=login"},
    {"service|okta|okta", "eventType"},
};

/* ---- small helpers ----------------------------------------------------- */

static char *ls_strdup(const char *s) {
    return s ? cf_strdup(s) : NULL;
}

static char *ls_lower_dup(const char *s, size_t n) {
    char *d = cf_malloc(n + 1);
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i] == '\x01' ? '/' : s[i];
        d[i] = (char)tolower((unsigned char)c);
    }
    d[n] = '\0';
    return d;
}

static bool eq_opt(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcasecmp(a, b) == 0;
}

static void cond_free(struct ls_cond *c) {
    for (size_t i = 0; i < c->n_tests; i++) {
        for (size_t j = 0; j < c->tests[i].n_values; j++)
            cf_free(c->tests[i].values[j]);
        cf_free(c->tests[i].values);
    }
    cf_free(c->tests);
}

static void entry_free(struct ls_entry *e) {
    for (size_t i = 0; i < e->n_alts; i++) cond_free(&e->alts[i]);
    cf_free(e->alts);
    cf_free(e->product);
    cf_free(e->name);
}

/* Index of field `name`, added if new; UINT32_MAX on allocation failure. */
static uint32_t field_index(struct cf_router *r, const char *name, size_t len) {
    uint32_t h = cf_hash_name(name, len);
    for (uint32_t i = 0; i < r->n_fields; i++)
        if (r->fields[i].hash == h && r->fields[i].len == len &&
            memcmp(r->fields[i].name, name, len) == 0)
            return i;
    if (r->n_fields == r->cap_fields) {
        uint32_t cap = r->cap_fields ? r->cap_fields * 2 : 16;
        struct ls_field *f = cf_realloc(r->fields, cap * sizeof *f);
        if (!f) return UINT32_MAX;
        r->fields = f;
        r->cap_fields = cap;
    }
    struct ls_field *f = &r->fields[r->n_fields];
    memset(f, 0, sizeof *f);
    if (!(f->name = cf_malloc(len + 1))) return UINT32_MAX;
    memcpy(f->name, name, len);
    f->name[len] = '\0';
    f->len = (uint32_t)len;
    f->hash = h;
    return r->n_fields++;
}

static struct ls_test *cond_add_test(struct ls_cond *c) {
    struct ls_test *t = cf_realloc(c->tests, (c->n_tests + 1) * sizeof *t);
    if (!t) return NULL;
    c->tests = t;
    memset(&t[c->n_tests], 0, sizeof *t);
    return &t[c->n_tests++];
}

static int test_add_value(struct ls_test *t, const char *v, size_t n) {
    char **vs = cf_realloc(t->values, (t->n_values + 1) * sizeof *vs);
    if (!vs) return -1;
    t->values = vs;
    if (!(vs[t->n_values] = ls_lower_dup(v, n))) return -1;
    t->n_values++;
    return 0;
}

static struct ls_cond *entry_add_cond(struct ls_entry *e) {
    struct ls_cond *c = cf_realloc(e->alts, (e->n_alts + 1) * sizeof *c);
    if (!c) return NULL;
    e->alts = c;
    memset(&c[e->n_alts], 0, sizeof *c);
    return &c[e->n_alts++];
}

/* Adds `e` (taking ownership of its contents), replacing an entry with the
 * same kind, product and name. */
static int router_put(struct cf_router *r, struct ls_entry *e) {
    for (size_t i = 0; i < r->n_entries; i++) {
        struct ls_entry *o = &r->entries[i];
        if (o->kind == e->kind && eq_opt(o->product, e->product) &&
            strcasecmp(o->name, e->name) == 0) {
            entry_free(o);
            *o = *e;
            return 0;
        }
    }
    if (r->n_entries == r->cap_entries) {
        size_t cap = r->cap_entries ? r->cap_entries * 2 : 128;
        struct ls_entry *n = cf_realloc(r->entries, cap * sizeof *n);
        if (!n) return -1;
        r->entries = n;
        r->cap_entries = cap;
    }
    r->entries[r->n_entries++] = *e;
    return 0;
}

/* Parses one built-in "F=a/b,G;!H" string into e's alternatives. */
static int parse_default_conds(struct cf_router *r, struct ls_entry *e,
                               const char *s) {
    while (*s) {
        struct ls_cond *c = entry_add_cond(e);
        if (!c) return -1;
        for (;;) {
            size_t n = strcspn(s, ",;");
            const char *eq = memchr(s, '=', n);
            struct ls_test *t = cond_add_test(c);
            if (!t) return -1;
            const char *name = s;
            size_t name_len = eq ? (size_t)(eq - s) : n;
            if (*name == '!') {
                t->mode = LS_ABSENT;
                name++;
                name_len--;
            } else {
                t->mode = eq ? LS_VALUES : LS_PRESENT;
            }
            if ((t->field = field_index(r, name, name_len)) == UINT32_MAX)
                return -1;
            if (eq) {
                const char *v = eq + 1, *end = s + n;
                while (v <= end) {
                    size_t vn = strcspn(v, "/");
                    if (v + vn > end) vn = (size_t)(end - v);
                    if (test_add_value(t, v, vn)) return -1;
                    v += vn + 1;
                }
            }
            s += n;
            if (*s != ',') break;
            s++;
        }
        if (*s == ';') s++;
    }
    return 0;
}

static int load_defaults(struct cf_router *r) {
    for (size_t i = 0; i < CF_ARRAY_LEN(ls_defaults); i++) {
        struct ls_entry e = {0};
        const char *k = ls_defaults[i].key;
        const char *p1 = strchr(k, '|'), *p2 = strchr(p1 + 1, '|');
        e.kind = k[0] == 'p'   ? LS_PRODUCT
                 : k[0] == 'c' ? LS_CATEGORY
                               : LS_SERVICE;
        if (p2 > p1 + 1 &&
            !(e.product = cf_strndup(p1 + 1, (size_t)(p2 - p1 - 1))))
            goto fail;
        if (!(e.name = cf_strdup(p2 + 1))) goto fail;
        if (parse_default_conds(r, &e, ls_defaults[i].conds)) goto fail;
        if (router_put(r, &e)) goto fail;
        continue;
    fail:
        entry_free(&e);
        return -1;
    }
    return 0;
}

/* ---- config section ---------------------------------------------------- */

static int parse_cfg_test(struct cf_router *r, struct ls_cond *c,
                          const char *field, const json_t *val,
                          const char *where, char *errstr, size_t n) {
    struct ls_test *t = cond_add_test(c);
    if (!t) return cf_seterr(errstr, n, CF_ERR_NOMEM, "out of memory");
    if ((t->field = field_index(r, field, strlen(field))) == UINT32_MAX)
        return cf_seterr(errstr, n, CF_ERR_NOMEM, "out of memory");
    if (json_is_true(val)) {
        t->mode = LS_PRESENT;
        return CF_OK;
    }
    if (json_is_false(val)) {
        t->mode = LS_ABSENT;
        return CF_OK;
    }
    t->mode = LS_VALUES;
    size_t count = json_is_array(val) ? json_array_size(val) : 1;
    if (count == 0)
        return cf_seterr(errstr, n, CF_ERR_PARSE,
                         "logsources: %s: field %s has an empty value list; "
                         "give at least one value, or true/false for "
                         "present/absent",
                         where, field);
    for (size_t i = 0; i < count; i++) {
        const json_t *v = json_is_array(val) ? json_array_get(val, i) : val;
        char buf[64];
        const char *text;
        size_t len;
        /* true / false mean present / absent, and only alone */
        if (json_is_boolean(v) ||
            !(text = cf_scalar_text(v, buf, sizeof buf, &len)))
            return cf_seterr(errstr, n, CF_ERR_PARSE,
                             "logsources: %s: field %s: values must be "
                             "strings or numbers (or true/false alone)",
                             where, field);
        if (test_add_value(t, text, len))
            return cf_seterr(errstr, n, CF_ERR_NOMEM, "out of memory");
    }
    return CF_OK;
}

static int parse_cfg_entry(struct cf_router *r, enum ls_kind kind,
                           const char *name, const json_t *obj, char *errstr,
                           size_t n) {
    struct ls_entry e = {0};
    char where[160];
    int rc = CF_ERR_PARSE;
    static const char *const kinds[] = {"product", "category", "service"};

    snprintf(where, sizeof where, "%s %s", kinds[kind], name);
    e.kind = kind;
    if (!json_is_object(obj)) {
        cf_seterr(errstr, n, rc,
                  "logsources: %s: expected an object with "
                  "`conditions` (and optionally `product`)",
                  where);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "product") && strcmp(key, "conditions")) {
            cf_seterr(errstr, n, rc,
                      "logsources: %s: unknown key `%s` "
                      "(expected product, conditions)",
                      where, key);
            goto done;
        }
    }
    const json_t *prod = json_object_get(obj, "product");
    if (prod && !json_is_string(prod)) {
        cf_seterr(errstr, n, rc, "logsources: %s: product must be a string",
                  where);
        goto done;
    }
    if (kind == LS_PRODUCT && prod) {
        cf_seterr(errstr, n, rc,
                  "logsources: %s: a product entry takes no "
                  "`product` key",
                  where);
        goto done;
    }
    const json_t *conds = json_object_get(obj, "conditions");
    if (!json_is_array(conds)) {
        cf_seterr(errstr, n, rc,
                  "logsources: %s: `conditions` must be a list "
                  "of maps such as [{Channel: Security, EventID: 4688}]",
                  where);
        goto done;
    }
    rc = CF_ERR_NOMEM;
    if (!(e.name = cf_strdup(name))) goto done;
    if (prod && !(e.product = cf_strdup(json_string_value(prod)))) goto done;
    for (size_t i = 0; i < json_array_size(conds); i++) {
        const json_t *m = json_array_get(conds, i);
        if (!json_is_object(m) || json_object_size(m) == 0) {
            rc = cf_seterr(errstr, n, CF_ERR_PARSE,
                           "logsources: %s: condition "
                           "%zu must be a non-empty map of field: values",
                           where, i + 1);
            goto done;
        }
        struct ls_cond *c = entry_add_cond(&e);
        if (!c) goto done;
        json_object_foreach((json_t *)m, key, v) {
            rc = parse_cfg_test(r, c, key, v, where, errstr, n);
            if (rc != CF_OK) goto done;
        }
    }
    rc = CF_ERR_NOMEM;
    if (router_put(r, &e)) goto done;
    return CF_OK;
done:
    if (rc == CF_ERR_NOMEM) cf_seterr(errstr, n, rc, "out of memory");
    entry_free(&e);
    return rc;
}

static int parse_section(struct cf_router *r, const json_t *section,
                         char *errstr, size_t n) {
    static const char *const kinds[] = {"product", "category", "service"};
    if (!json_is_object(section))
        return cf_seterr(errstr, n, CF_ERR_PARSE,
                         "logsources: expected a map "
                         "with keys product, category, service");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)section, key, v) {
        int kind = -1;
        for (int k = 0; k < 3; k++)
            if (strcmp(key, kinds[k]) == 0) kind = k;
        if (kind < 0)
            return cf_seterr(errstr, n, CF_ERR_PARSE,
                             "logsources: unknown key "
                             "`%s` (expected product, category, service)",
                             key);
        if (!json_is_object(v))
            return cf_seterr(errstr, n, CF_ERR_PARSE,
                             "logsources: %s must be a "
                             "map of name: entry",
                             key);
        const char *name;
        json_t *ent;
        json_object_foreach(v, name, ent) {
            size_t cnt = json_is_array(ent) ? json_array_size(ent) : 1;
            for (size_t i = 0; i < cnt; i++) {
                const json_t *one =
                    json_is_array(ent) ? json_array_get(ent, i) : ent;
                int rc = parse_cfg_entry(r, (enum ls_kind)kind, name, one,
                                         errstr, n);
                if (rc != CF_OK) return rc;
            }
        }
    }
    return CF_OK;
}

/* ---- router ------------------------------------------------------------ */

struct cf_router *cf_router_new(const struct json_t *section, char *errstr,
                                size_t errstr_size) {
    bool nomem = false;
    struct cf_router *r = cf_calloc(1, sizeof *r);
    if (!r) {
        nomem = true;
        goto fail;
    }
    if (load_defaults(r)) {
        nomem = true;
        goto fail;
    }
    if (section && parse_section(r, section, errstr, errstr_size) != CF_OK)
        goto fail;
    return r;
fail:
    if (nomem) cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    cf_router_destroy(r);
    return NULL;
}

void cf_router_destroy(struct cf_router *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_entries; i++) entry_free(&r->entries[i]);
    cf_free(r->entries);
    for (uint32_t i = 0; i < r->n_fields; i++) cf_free(r->fields[i].name);
    cf_free(r->fields);
    for (uint32_t i = 0; i < r->n_routes; i++) {
        cf_free(r->routes[i].product);
        cf_free(r->routes[i].category);
        cf_free(r->routes[i].service);
    }
    cf_free(r->routes);
    cf_free(r->route_slots);
    cf_free(r->field_slots);
    cf_free(r);
}

/* A logsource part for route_hash: ASCII case folded (eq_opt compares
 * with strcasecmp), NULL apart from "". */
static uint64_t hash_part(uint64_t h, const char *s) {
    if (!s) return cf_hash_continue(h, "\x01", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        c = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
        h = cf_hash_continue(h, &c, 1);
    }
    return cf_hash_continue(h, "", 1);
}

static uint64_t route_hash(const char *product, const char *category,
                           const char *service) {
    return hash_part(hash_part(hash_part(CF_HASH_INIT, product), category),
                     service);
}

/* Rebuilds route_slots for twice the routes; false when out of memory. */
static bool route_slots_grow(struct cf_router *r) {
    uint32_t size = r->route_slots ? 2 * (r->route_mask + 1) : 64;
    uint32_t *slots = cf_calloc(size, sizeof *slots);
    if (!slots) return false;
    for (uint32_t i = 0; i < r->n_routes; i++) {
        uint32_t s = (uint32_t)r->routes[i].hash & (size - 1);
        while (slots[s]) s = (s + 1) & (size - 1);
        slots[s] = i + 1;
    }
    cf_free(r->route_slots);
    r->route_slots = slots;
    r->route_mask = size - 1;
    return true;
}

uint32_t cf_router_add(struct cf_router *r, const char *product,
                       const char *category, const char *service) {
    uint64_t h = route_hash(product, category, service);
    uint32_t s = 0;
    if (r->route_slots) {
        for (s = (uint32_t)h & r->route_mask; r->route_slots[s];
             s = (s + 1) & r->route_mask) {
            uint32_t i = r->route_slots[s] - 1;
            const struct ls_route *o = &r->routes[i];
            if (o->hash == h && eq_opt(o->product, product) &&
                eq_opt(o->category, category) && eq_opt(o->service, service))
                return i;
        }
    }
    if (2 * (r->n_routes + 1) > (r->route_slots ? r->route_mask + 1 : 0)) {
        if (!route_slots_grow(r)) return UINT32_MAX;
        s = (uint32_t)h & r->route_mask;
        while (r->route_slots[s]) s = (s + 1) & r->route_mask;
    }
    if (r->n_routes == r->cap_routes) {
        uint32_t cap = r->cap_routes ? r->cap_routes * 2 : 64;
        struct ls_route *n = cf_realloc(r->routes, cap * sizeof *n);
        if (!n) return UINT32_MAX;
        r->routes = n;
        r->cap_routes = cap;
    }
    struct ls_route *rt = &r->routes[r->n_routes];
    memset(rt, 0, sizeof *rt);
    rt->product = ls_strdup(product);
    rt->category = ls_strdup(category);
    rt->service = ls_strdup(service);
    if ((product && !rt->product) || (category && !rt->category) ||
        (service && !rt->service)) {
        cf_free(rt->product);
        cf_free(rt->category);
        cf_free(rt->service);
        return UINT32_MAX;
    }
    rt->hash = h;
    r->route_slots[s] = r->n_routes + 1;
    return r->n_routes++;
}

static const struct ls_entry *find_entry(const struct cf_router *r,
                                         enum ls_kind kind, const char *product,
                                         const char *name) {
    const struct ls_entry *any = NULL;
    if (!name) return NULL;
    for (size_t i = 0; i < r->n_entries; i++) {
        const struct ls_entry *e = &r->entries[i];
        if (e->kind != kind || strcasecmp(e->name, name)) continue;
        if (e->product && product && strcasecmp(e->product, product) == 0)
            return e;
        if (!e->product) any = e;
    }
    return any;
}

cf_err_t cf_router_seal(struct cf_router *r, char *errstr, size_t errstr_size) {
    for (uint32_t i = 0; i < r->n_routes; i++) {
        struct ls_route *rt = &r->routes[i];
        rt->parts[0] = find_entry(r, LS_PRODUCT, NULL, rt->product);
        rt->parts[1] = find_entry(r, LS_CATEGORY, rt->product, rt->category);
        rt->parts[2] = find_entry(r, LS_SERVICE, rt->product, rt->service);
        for (int p = 0; p < 3; p++) {
            const struct ls_entry *e = rt->parts[p];
            if (!e) continue;
            for (size_t a = 0; a < e->n_alts; a++)
                for (size_t t = 0; t < e->alts[a].n_tests; t++) {
                    struct ls_field *f = &r->fields[e->alts[a].tests[t].field];
                    f->used = true;
                    if (e->alts[a].tests[t].mode == LS_VALUES)
                        f->by_value = true;
                }
        }
    }
    uint32_t size = 16;
    while (size < r->n_fields * 4) size *= 2;
    cf_free(r->field_slots);
    r->field_slots = cf_calloc(size, sizeof *r->field_slots);
    if (!r->field_slots)
        return cf_seterr(errstr, errstr_size, CF_ERR_NOMEM, "out of memory");
    r->field_mask = size - 1;
    for (uint32_t i = 0; i < r->n_fields; i++) {
        if (!r->fields[i].used) continue;
        uint32_t s = r->fields[i].hash & r->field_mask;
        while (r->field_slots[s]) s = (s + 1) & r->field_mask;
        r->field_slots[s] = i + 1;
    }
    r->sealed = true;
    return CF_OK;
}

uint32_t cf_router_count(const struct cf_router *r) {
    return r->n_routes;
}

/* ---- routing ----------------------------------------------------------- */

struct cf_route_cache *cf_route_cache_new(const struct cf_router *r) {
    struct cf_route_cache *c = cf_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->words = (r->n_routes + 63) / 64;
    if (c->words == 0) c->words = 1;
    c->slots = cf_calloc(LS_CACHE_SLOTS, sizeof *c->slots);
    c->scratch = cf_calloc(c->words, sizeof *c->scratch);
    if (!c->slots || !c->scratch) {
        cf_route_cache_destroy(c);
        return NULL;
    }
    return c;
}

static void cache_clear(struct cf_route_cache *c) {
    for (uint32_t i = 0; i < LS_CACHE_SLOTS; i++) {
        cf_free(c->slots[i].key);
        cf_free(c->slots[i].bits);
        c->slots[i].key = NULL;
        c->slots[i].bits = NULL;
    }
    c->used = 0;
}

void cf_route_cache_destroy(struct cf_route_cache *c) {
    if (!c) return;
    if (c->slots) cache_clear(c);
    cf_free(c->slots);
    cf_free(c->hits);
    cf_buf_free(&c->key);
    cf_free(c->scratch);
    cf_free(c);
}

static uint32_t routing_field(const struct cf_router *r,
                              const struct cf_event_field *f) {
    uint32_t s = f->name_hash & r->field_mask;
    for (uint32_t idx; (idx = r->field_slots[s]) != 0;
         s = (s + 1) & r->field_mask) {
        const struct ls_field *lf = &r->fields[idx - 1];
        if (lf->hash == f->name_hash && lf->len == f->name_len &&
            memcmp(lf->name, f->name, f->name_len) == 0)
            return idx - 1;
    }
    return UINT32_MAX;
}

static bool value_eq(const char *lower, const struct cf_event_field *f) {
    for (uint32_t i = 0; i < f->value_len; i++) {
        if (lower[i] == '\0' ||
            (char)tolower((unsigned char)f->value[i]) != lower[i])
            return false;
    }
    return lower[f->value_len] == '\0';
}

static bool test_holds(const struct ls_test *t, const struct cf_route_hit *hits,
                       size_t n_hits, const struct cf_event *ev) {
    bool present = false;
    for (size_t i = 0; i < n_hits; i++) {
        if (hits[i].field != t->field) continue;
        present = true;
        if (t->mode != LS_VALUES) break;
        const struct cf_event_field *f = &ev->fields[hits[i].leaf];
        for (size_t v = 0; v < t->n_values; v++)
            if (value_eq(t->values[v], f)) return true;
    }
    if (t->mode == LS_PRESENT) return present;
    if (t->mode == LS_ABSENT) return !present;
    return false;
}

static bool entry_holds(const struct ls_entry *e,
                        const struct cf_route_hit *hits, size_t n_hits,
                        const struct cf_event *ev) {
    if (!e || e->n_alts == 0) return true;
    for (size_t a = 0; a < e->n_alts; a++) {
        bool all = true;
        for (size_t t = 0; t < e->alts[a].n_tests && all; t++)
            all = test_holds(&e->alts[a].tests[t], hits, n_hits, ev);
        if (all) return true;
    }
    return false;
}

static void evaluate(const struct cf_router *r, const struct cf_route_hit *hits,
                     size_t n_hits, const struct cf_event *ev, uint64_t *bits,
                     uint32_t words) {
    memset(bits, 0, words * sizeof *bits);
    for (uint32_t i = 0; i < r->n_routes; i++) {
        const struct ls_route *rt = &r->routes[i];
        if (entry_holds(rt->parts[0], hits, n_hits, ev) &&
            entry_holds(rt->parts[1], hits, n_hits, ev) &&
            entry_holds(rt->parts[2], hits, n_hits, ev))
            bits[i / 64] |= UINT64_C(1) << (i % 64);
    }
}

/* The routes of `ev`, whose routing-field leaves are hits[0..n_hits) in
 * field order (stable). */
static const uint64_t *route_sorted(const struct cf_router *r,
                                    struct cf_route_cache *c,
                                    const struct cf_event *ev,
                                    const struct cf_route_hit *hits,
                                    size_t n_hits) {
    /* Key: per hit, the field index and, for fields compared by value,
     * the value as written.  Presence-only fields contribute their index
     * once, so varying values (displayMessage) do not defeat the cache.
     * The routes are a function of the key, so its values need no case
     * folding: "Security" and "security" take a slot each, both right.
     * Written in place after one reserve: cf_buf_append per part showed
     * in the per-event profile. */
    struct cf_buf *key = &c->key;
    uint32_t last = UINT32_MAX;
    size_t need = 0;
    for (size_t i = 0; i < n_hits; i++)
        need += 8 + (r->fields[hits[i].field].by_value
                         ? ev->fields[hits[i].leaf].value_len
                         : 0);
    cf_buf_reset(key);
    if (!cf_buf_reserve(key, need)) goto uncached;
    char *at = key->data;
    for (size_t i = 0; i < n_hits; i++) {
        const struct ls_field *lf = &r->fields[hits[i].field];
        const struct cf_event_field *f = &ev->fields[hits[i].leaf];
        if (!lf->by_value && hits[i].field == last) continue;
        last = hits[i].field;
        uint32_t vlen = lf->by_value ? f->value_len : 0;
        memcpy(at, &hits[i].field, 4);
        memcpy(at + 4, &vlen, 4);
        memcpy(at + 8, f->value, vlen);
        at += 8 + vlen;
    }
    key->len = (size_t)(at - key->data);
    *at = '\0'; /* the buffer's own NUL, as cf_buf keeps it */
    size_t len = key->len;
    uint64_t h = cf_hash_words(0, key->data, len);
    uint32_t s = (uint32_t)h & (LS_CACHE_SLOTS - 1);
    for (; c->slots[s].key; s = (s + 1) & (LS_CACHE_SLOTS - 1)) {
        struct ls_slot *sl = &c->slots[s];
        if (sl->hash == h && sl->key_len == len &&
            (len == 0 || memcmp(sl->key, key->data, len) == 0))
            return sl->bits;
    }
    if (c->used >= LS_CACHE_SLOTS / 4 * 3) {
        /* Many distinct routing tuples: start over rather than grow, the
         * set that matters in steady state refills quickly. */
        cache_clear(c);
        s = (uint32_t)h & (LS_CACHE_SLOTS - 1);
    }
    struct ls_slot *sl = &c->slots[s];
    sl->key = cf_malloc(len ? len : 1);
    sl->bits = cf_malloc(c->words * sizeof *sl->bits);
    if (!sl->key || !sl->bits) {
        cf_free(sl->key);
        cf_free(sl->bits);
        sl->key = NULL;
        sl->bits = NULL;
        goto uncached;
    }
    if (len) memcpy(sl->key, key->data, len);
    sl->key_len = len;
    sl->hash = h;
    c->used++;
    evaluate(r, hits, n_hits, ev, sl->bits, c->words);
    return sl->bits;

uncached:
    /* Out of memory for the cache: answer correctly anyway. */
    evaluate(r, hits, n_hits, ev, c->scratch, c->words);
    return c->scratch;
}

/* Inserts `h` into hits[0..n), kept in field order (stable). */
static void hit_insert(struct cf_route_hit *hits, size_t n,
                       struct cf_route_hit h) {
    while (n > 0 && hits[n - 1].field > h.field) {
        hits[n] = hits[n - 1];
        n--;
    }
    hits[n] = h;
}

const uint64_t *cf_router_route(const struct cf_router *r,
                                struct cf_route_cache *c,
                                const struct cf_event *ev) {
    size_t n_hits = 0;

    /* Collect the leaves of routing fields, in field order (stable), so
     * the key is the same whatever order the event lists its fields. */
    for (uint32_t i = 0; i < ev->n_fields; i++) {
        uint32_t f = routing_field(r, &ev->fields[i]);
        if (f == UINT32_MAX) continue;
        if (n_hits == c->cap_hits) {
            size_t cap = c->cap_hits ? c->cap_hits * 2 : 16;
            struct cf_route_hit *h = cf_realloc(c->hits, cap * sizeof *h);
            if (!h) return NULL; /* routing on part of them would be wrong */
            c->hits = h;
            c->cap_hits = cap;
        }
        hit_insert(c->hits, n_hits++, (struct cf_route_hit){f, i});
    }
    return route_sorted(r, c, ev, c->hits, n_hits);
}

const uint64_t *cf_router_route_hits(const struct cf_router *r,
                                     struct cf_route_cache *c,
                                     const struct cf_event *ev,
                                     struct cf_route_hit *hits, size_t n_hits) {
    for (size_t i = 1; i < n_hits; i++) hit_insert(hits, i, hits[i]);
    return route_sorted(r, c, ev, hits, n_hits);
}

const char *cf_router_field(const struct cf_router *r, uint32_t i,
                            uint32_t *len, uint32_t *hash) {
    if (i >= r->n_fields || !r->fields[i].used) return NULL;
    *len = r->fields[i].len;
    *hash = r->fields[i].hash;
    return r->fields[i].name;
}

uint32_t cf_router_field_count(const struct cf_router *r) {
    return r->n_fields;
}

/* ---- describe ---------------------------------------------------------- */

static void describe_entry(const struct cf_router *r, const struct ls_entry *e,
                           struct cf_buf *b) {
    if (e->n_alts > 1) cf_buf_puts(b, "(");
    for (size_t a = 0; a < e->n_alts; a++) {
        if (a) cf_buf_puts(b, " OR ");
        for (size_t t = 0; t < e->alts[a].n_tests; t++) {
            const struct ls_test *ts = &e->alts[a].tests[t];
            if (t) cf_buf_puts(b, " AND ");
            if (ts->mode == LS_ABSENT) cf_buf_puts(b, "NOT ");
            cf_buf_puts(b, r->fields[ts->field].name);
            if (ts->mode == LS_VALUES) {
                cf_buf_puts(b, ts->n_values > 1 ? " in [" : " = ");
                for (size_t v = 0; v < ts->n_values; v++) {
                    if (v) cf_buf_puts(b, ", ");
                    cf_buf_puts(b, ts->values[v]);
                }
                if (ts->n_values > 1) cf_buf_puts(b, "]");
            } else {
                cf_buf_puts(b, " present");
            }
        }
    }
    if (e->n_alts > 1) cf_buf_puts(b, ")");
}

/* The entry of a route part that imposes a condition, else NULL. */
static const struct ls_entry *part_condition(const struct ls_route *rt, int p) {
    const struct ls_entry *e = rt->parts[p];
    return e && e->n_alts > 0 ? e : NULL;
}

uint32_t cf_router_twin(const struct cf_router *r, uint32_t route) {
    const struct ls_route *rt = &r->routes[route];
    for (uint32_t i = 0; i < route; i++) {
        const struct ls_route *o = &r->routes[i];
        int p = 0;
        while (p < 3 && part_condition(o, p) == part_condition(rt, p)) p++;
        if (p == 3) return i;
    }
    return route;
}

bool cf_router_every_event(const struct cf_router *r, uint32_t route) {
    const struct ls_route *rt = &r->routes[route];
    return !part_condition(rt, 0) && !part_condition(rt, 1) &&
           !part_condition(rt, 2);
}

char *cf_router_describe(const struct cf_router *r, uint32_t route) {
    struct cf_buf b = CF_BUF_INIT;
    if (route >= r->n_routes) return NULL;
    const struct ls_route *rt = &r->routes[route];
    bool any = false;
    for (int p = 0; p < 3; p++) {
        const struct ls_entry *e = rt->parts[p];
        if (!e || e->n_alts == 0) continue;
        if (any) cf_buf_puts(&b, " AND ");
        describe_entry(r, e, &b);
        any = true;
    }
    if (!any) cf_buf_puts(&b, "every event");
    return cf_buf_steal(&b);
}
