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
#include "timeutil.h"

struct time_name {
    const char *name; /* owned by the table (configured) or static */
    size_t len;
    enum cf_time_role role;
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
    {"UtcTime", 7, CF_TIME_ROLE_SENSOR},
    {"TimeCreated", 11, CF_TIME_ROLE_STAMP},
    {"TimeCreated_SystemTime", 22, CF_TIME_ROLE_STAMP},
    {"@timestamp", 10, CF_TIME_ROLE_STAMP},
    /* Microsoft Sentinel / Log Analytics tables (every one has it, in
     * UTC) and Defender XDR's advanced hunting tables. */
    {"TimeGenerated", 13, CF_TIME_ROLE_OTHER},
    {"Timestamp", 9, CF_TIME_ROLE_OTHER},
    {"timestamp", 9, CF_TIME_ROLE_OTHER},
    {"eventTime", 9, CF_TIME_ROLE_OTHER},
    {"time", 4, CF_TIME_ROLE_OTHER},
    {"EventTime", 9, CF_TIME_ROLE_OTHER},
    {"_time", 5, CF_TIME_ROLE_OTHER},
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
        tf->names[tf->n++] = (struct time_name){copy, len, role_of(copy, len)};
        tf->n_owned = tf->n;
    }
    for (size_t i = 0; builtin_too && i < CF_ARRAY_LEN(builtin); i++)
        if (!listed(tf, builtin[i].name, builtin[i].len))
            tf->names[tf->n++] = builtin[i];
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

/* The first usable time in a field named `tn`, or CF_TIME_UNKNOWN.
 * Every leaf of that name is tried (an array, or a repeated name). */
static int64_t read_one(const struct cf_event *ev, const struct time_name *tn) {
    for (int i = cf_event_find(ev, tn->name, tn->len, 0); i >= 0;
         i = cf_event_find(ev, tn->name, tn->len, (uint32_t)i + 1)) {
        const struct cf_event_field *f = &ev->fields[i];
        int64_t ms;
        if (f->type == CF_VALUE_NULL || f->type == CF_VALUE_BOOL) continue;
        if (cf_time_parse(f->value, f->value_len, &ms) == CF_OK &&
            ms >= USABLE_FROM_MS)
            return ms;
    }
    return CF_TIME_UNKNOWN;
}

void cf_event_read_time(struct cf_event *ev, const struct cf_time_names *tf) {
    static const struct cf_time_names builtin_list = {
        (struct time_name *)builtin, CF_ARRAY_LEN(builtin), 0};
    const struct cf_time_names *list = tf ? tf : &builtin_list;
    size_t i = 0;
    ev->time_ms = ev->utc_ms = ev->stamp_ms = CF_TIME_UNKNOWN;
    ev->clock_offset_ms = 0;
    ev->time_role = CF_TIME_ROLE_NONE;
    for (; i < list->n; i++) {
        int64_t ms = read_one(ev, &list->names[i]);
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
        int64_t ms = read_one(ev, &list->names[i]);
        if (ms == CF_TIME_UNKNOWN) continue;
        if (want == CF_TIME_ROLE_STAMP)
            ev->stamp_ms = ms;
        else
            ev->utc_ms = ms;
        return;
    }
}

int64_t cf_event_extract_time(const struct cf_event *ev) {
    struct cf_event copy = *ev;
    cf_event_read_time(&copy, NULL);
    return copy.time_ms;
}
