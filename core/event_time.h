/*
 * event_time.h - between the decoder (core/event.c) and the time reader
 * (core/event_time.c) only: what the reader remembers from one event to
 * the next.
 *
 * Consecutive events of one source carry the same time text more often
 * than not (on the LSASS recording 88% of UtcTime and 66% of TimeCreated
 * values equal the previous event's): the reader keeps, for each of the
 * first names of its list, the last text it parsed there and what that
 * gave, and takes a byte-identical text's time without parsing it again.
 *
 * Threading: a memo belongs to one decoder, hence one thread.
 */
#ifndef CF_EVENT_TIME_H
#define CF_EVENT_TIME_H

#include "event.h"

/* Names of the list remembered: the built-in list's first four are
 * UtcTime, TimeCreated, TimeCreated_SystemTime and @timestamp. */
#define CF_TIME_MEMO_SLOTS 4

struct cf_time_memo_slot {
    char text[32];
    uint32_t len; /* of text */
    bool kept;    /* text and ms hold a text read before (the empty one
                     too: len alone cannot say) */
    int64_t ms;   /* its usable time, or CF_TIME_UNKNOWN */
};

struct cf_time_memo {
    struct cf_time_memo_slot slot[CF_TIME_MEMO_SLOTS];
};

/* cf_event_read_time, remembering in `memo` (zeroed before first use).
 * The same result as cf_event_read_time(ev, tf) for every event. */
void cf_event_read_time_memo(struct cf_event *ev,
                             const struct cf_time_names *tf,
                             struct cf_time_memo *memo);

#endif
