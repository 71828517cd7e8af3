/*
 * probe.c - compiled by the layering test against one layer's library
 * with CF_PROBE_HEADER naming a header of some layer.  It must compile
 * when that header is in the same layer or below and fail when it is
 * above: that is what keeps includes pointing down.
 */
#include CF_PROBE_HEADER

int cf_layering_probe(void);
int cf_layering_probe(void) {
    return 0;
}
