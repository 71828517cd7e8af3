/*
 * event_time.c - which field of an event names its time (core/event.h:
 * cf_event_read_time, cf_time_names_*).
 *
 * Called by the decoder for every event.  The built-in list is tried in
 * order; a configured list (`time.fields`) goes in front of it, or
 * replaces it.  Besides the chosen time, the reader notes the two
 * readings the engine's clock check compares (engine/clocks.h): Sysmon's
 * UtcTime, the sensor's own UTC, and the first host-clock stamp
 * (TimeCreated, @timestamp), which some collectors write as local time
 * labelled UTC.  It reads past the chosen field only for that, and only
 * the fields of the other kind.
 *
 * Threading: a cf_time_names is read-only once built.
 */
#include <string.h>

#include "event.h"
#include "event_time.h"
#include "timeutil.h"

struct time_name {
    const char *name; /* owned by the table (configured) or static */
    size_t len;
    enum cf_time_role role;
    uint32_t hash; /* cf_hash_name of name: set by cf_time_names_new, 0 in
                      the static built-in table (hashed when read) */
};

struct cf_time_names {
    struct time_name *names;
    size_t n;
    size_t n_owned; /* names[0 .. n_owned) are configured copies, owned */
};

/* Sysmon's UtcTime first: in some recorded datasets the collector's own
 * stamps (@timestamp, TimeCreated) are shifted by a fixed offset, while
 * UtcTime is what the sensor saw. */
static const struct time_name builtin[] = {
    {"UtcTime", 7, CF_TIME_ROLE_SENSOR, 0},
    {"TimeCreated", 11, CF_TIME_ROLE_STAMP, 0},
    {"TimeCreated_SystemTime", 22, CF_TIME_ROLE_STAMP, 0},
    {"@timestamp", 10, CF_TIME_ROLE_STAMP, 0},
    /* Microsoft Sentinel / Log Analytics tables (every one has it, in
     * UTC) and Defender XDR's advanced hunting tables. */
    {"TimeGenerated", 13, CF_TIME_ROLE_OTHER, 0},
    {"Timestamp", 9, CF_TIME_ROLE_OTHER, 0},
    {"timestamp", 9, CF_TIME_ROLE_OTHER, 0},
    {"eventTime", 9, CF_TIME_ROLE_OTHER, 0},
    {"time", 4, CF_TIME_ROLE_OTHER, 0},
    {"EventTime", 9, CF_TIME_ROLE_OTHER, 0},
    {"_time", 5, CF_TIME_ROLE_OTHER, 0},
};

/* A configured name keeps the role its built-in namesake has, so that
 * `time.fields: [TimeCreated]` is still a host-clock stamp. */
static enum cf_time_role role_of(const char *name, size_t len) {
    for (size_t i = 0; i < CF_ARRAY_LEN(builtin); i++)
        if (builtin[i].len == len && memcmp(builtin[i].name, name, len) == 0)
            return builtin[i].role;
    return CF_TIME_ROLE_OTHER;
}

static bool listed(const struct cf_time_names *tf, const char *name,
                   size_t len) {
    for (size_t i = 0; i < tf->n; i++)
        if (tf->names[i].len == len &&
            memcmp(tf->names[i].name, name, len) == 0)
            return true;
    return false;
}

struct cf_time_names *cf_time_names_new(const char *const *names, size_t n,
                                        bool builtin_too) {
    struct cf_time_names *tf = cf_calloc(1, sizeof *tf);
    if (!tf) return NULL;
    tf->names = cf_calloc(n + CF_ARRAY_LEN(builtin), sizeof *tf->names);
    if (!tf->names) goto fail;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (listed(tf, names[i], len)) continue;
        char *copy = cf_strndup(names[i], len);
        if (!copy) goto fail;
        tf->names[tf->n++] =
            (struct time_name){copy, len, role_of(copy, len), 0};
        tf->n_owned = tf->n;
    }
    for (size_t i = 0; builtin_too && i < CF_ARRAY_LEN(builtin); i++)
        if (!listed(tf, builtin[i].name, builtin[i].len))
            tf->names[tf->n++] = builtin[i];
    /* hashed once here rather than for every event */
    for (size_t i = 0; i < tf->n; i++)
        tf->names[i].hash = cf_hash_name(tf->names[i].name, tf->names[i].len);
    return tf;
fail:
    cf_time_names_destroy(tf);
    return NULL;
}

void cf_time_names_destroy(struct cf_time_names *tf) {
    if (!tf) return;
    for (size_t i = 0; i < tf->n_owned; i++) cf_free((char *)tf->names[i].name);
    cf_free(tf->names);
    cf_free(tf);
}

/* 1980-01-01T00:00:00Z.  Earlier times are the zero values collectors
 * write when they have none (0 = 1970, 0001-01-01, FILETIME's 1601), not
 * the time of any event chainfuse reads: taken as they are, they would
 * date incidents 1970. */
#define USABLE_FROM_MS 315532800000LL

/* The usable time a text holds, or CF_TIME_UNKNOWN. */
static int64_t usable_time(const char *s, size_t len) {
    int64_t ms;
    if (cf_time_parse(s, len, &ms) == CF_OK && ms >= USABLE_FROM_MS) return ms;
    return CF_TIME_UNKNOWN;
}

/* usable_time, or what `slot` remembers of the same text (slot may be
 * NULL), remembering it. */
static int64_t memo_time(const char *s, size_t len,
                         struct cf_time_memo_slot *m) {
    if (!m) return usable_time(s, len);
    if (m->kept && m->len == len && cf_bytes_equal(m->text, s, len))
        return m->ms;
    int64_t ms = usable_time(s, len);
    m->kept = false;
    if (len <= sizeof m->text) {
        memcpy(m->text, s, len);
        m->len = (uint32_t)len;
        m->ms = ms;
        m->kept = true;
    }
    return ms;
}

/* The first usable time in a field named `tn`, or CF_TIME_UNKNOWN.
 * Every leaf of that name is tried (an array, or a repeated name). */
static int64_t read_one(const struct cf_event *ev, const struct time_name *tn,
                        struct cf_time_memo *memo, size_t at) {
    uint32_t h = tn->hash ? tn->hash : cf_hash_name(tn->name, tn->len);
    for (int i = cf_event_find_hashed(ev, tn->name, tn->len, h, 0); i >= 0;
         i = cf_event_find_hashed(ev, tn->name, tn->len, h, (uint32_t)i + 1)) {
        const struct cf_event_field *f = &ev->fields[i];
        if (f->type == CF_VALUE_NULL || f->type == CF_VALUE_BOOL) continue;
        int64_t ms =
            memo_time(f->value, f->value_len,
                      memo && at < CF_TIME_MEMO_SLOTS ? &memo->slot[at] : NULL);
        if (ms != CF_TIME_UNKNOWN) return ms;
    }
    return CF_TIME_UNKNOWN;
}

void cf_event_read_time_memo(struct cf_event *ev,
                             const struct cf_time_names *tf,
                             struct cf_time_memo *memo) {
    static const struct cf_time_names builtin_list = {
        (struct time_name *)builtin, CF_ARRAY_LEN(builtin), 0};
    const struct cf_time_names *list = tf ? tf : &builtin_list;
    size_t i = 0;
    ev->time_ms = ev->utc_ms = ev->stamp_ms = CF_TIME_UNKNOWN;
    ev->clock_offset_ms = 0;
    ev->time_role = CF_TIME_ROLE_NONE;
    for (; i < list->n; i++) {
        int64_t ms = read_one(ev, &list->names[i], memo, i);
        if (ms == CF_TIME_UNKNOWN) continue;
        ev->time_ms = ms;
        ev->time_role = (uint8_t)list->names[i].role;
        break;
    }
    /* The clock check wants the sensor's and the host's reading of the
     * same event: past the chosen field, only the other kind is read. */
    enum cf_time_role want;
    if (ev->time_role == CF_TIME_ROLE_SENSOR) {
        ev->utc_ms = ev->time_ms;
        want = CF_TIME_ROLE_STAMP;
    } else if (ev->time_role == CF_TIME_ROLE_STAMP) {
        ev->stamp_ms = ev->time_ms;
        want = CF_TIME_ROLE_SENSOR;
    } else {
        return;
    }
    for (i++; i < list->n; i++) {
        if (list->names[i].role != want) continue;
        int64_t ms = read_one(ev, &list->names[i], memo, i);
        if (ms == CF_TIME_UNKNOWN) continue;
        if (want == CF_TIME_ROLE_STAMP)
            ev->stamp_ms = ms;
        else
            ev->utc_ms = ms;
        return;
    }
}

void cf_event_read_time(struct cf_event *ev, const struct cf_time_names *tf) {
    cf_event_read_time_memo(ev, tf, NULL);
}

int64_t cf_event_extract_time(const struct cf_event *ev) {
    struct cf_event copy = *ev;
    cf_event_read_time(&copy, NULL);
    return copy.time_ms;
}
