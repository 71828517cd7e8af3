/*
 * drops.c - names of the dropped{reason} family (engine/drops.h).
 */
#include "drops.h"

/* Indexed by enum cf_drop_reason; the names are an interface (stats
 * keys, metric labels): add new ones, never rename. */
static const char *const names[CF_DROP_REASONS] = {
    [CF_DROP_SCAN_ERROR] = "scan_error",
    [CF_DROP_ROUTE_OUT_OF_MEMORY] = "route_out_of_memory",
    [CF_DROP_CORRELATION_FUTURE_TIME] = "correlation_future_time",
    [CF_DROP_CORRELATION_NO_TIME] = "correlation_no_time",
    [CF_DROP_CORRELATION_NO_GROUP_BY] = "correlation_no_group_by",
    [CF_DROP_CORRELATION_NO_VALUE] = "correlation_no_value",
    [CF_DROP_CORRELATION_TOO_LATE] = "correlation_too_late",
    [CF_DROP_CORRELATION_WINDOW_EVICTED] = "correlation_window_evicted",
    [CF_DROP_CORRELATION_OUT_OF_MEMORY] = "correlation_out_of_memory",
    [CF_DROP_CORRELATION_ALERT_UNWRITTEN] = "correlation_alert_unwritten",
    [CF_DROP_INCIDENT_RECORD_UNWRITTEN] = "incident_record_unwritten",
    [CF_DROP_FUSION_OUT_OF_MEMORY] = "fusion_out_of_memory",
    [CF_DROP_FUSION_NO_TIME] = "fusion_no_time",
};

json_t *cf_drops_to_json(const struct cf_drops *d) {
    json_t *o = json_object();
    if (!o) return NULL;
    for (int r = 0; r < CF_DROP_REASONS; r++)
        if (json_object_set_new(o, names[r],
                                json_integer((json_int_t)d->n[r]))) {
            json_decref(o);
            return NULL;
        }
    return o;
}
