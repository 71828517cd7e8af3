#!/usr/bin/env bash
# clocks.sh - event time on real recordings: host clocks that are off
# (time.clock_offsets) and events without a usable time (time.fields).
#
# 1. OTRF LSASS_campaign_01 with the stock SigmaHQ rules: MKT01's
#    TimeCreated/@timestamp are local time labelled UTC, -19h from
#    Sysmon's UtcTime.  By default this is detected and said once, and
#    nothing changes (the incident then starts 19 hours before the
#    attack, from the Security log); with clock_offsets {MKT01: -19h}
#    every incident time falls in the attack, with the same alerts.
# 2. The atomic psh_cmstp recording (WORKSTATION5, -4h): found by
#    default; with the Sysmon stamps of its second half moved one more
#    hour (a daylight-saving change), `auto` follows to -5h and says so;
#    with every stamp jittered by minutes to hours, nothing is found.
#    A recording whose clocks agree (empire_launcher_vbs) warns nothing.
# 3. Events without a usable time are on the summary line; time.fields
#    gives them one.
# Run by CTest as `bash clocks.sh <chainfuse binary>`; exits 77 (skipped)
# when jq or ../shared is missing, 1 for the latter under
# CF_REQUIRE_SHARED=1 (tests/ci/shared_data.sh).
set -u
BIN=${1:?usage: clocks.sh <path-to-chainfuse>}
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
if ! command -v jq >/dev/null 2>&1; then
    echo "SKIP: jq is not installed (apt-get install jq)"; exit 77
fi
OTRF=$SHARED/data/otrf/datasets
LSASS=$OTRF/compound/LSASS_campaign_01/metasploit_logonpasswords_lsass_memory_dump.zip
CMSTP=$OTRF/atomic/windows/defense_evasion/host/psh_cmstp_execution_bypassuac.zip
AGREE=$OTRF/atomic/windows/execution/host/empire_launcher_vbs.zip
for f in "$LSASS" "$CMSTP" "$AGREE" "$SHARED/data/sigma/rules"; do
    [ -e "$f" ] || shared_missing "$f"
done
TMP=$(mktemp -d)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
fail=0
check() { # check <description> <test command...>
    local what=$1; shift
    if "$@"; then echo "ok:   $what"; else echo "FAIL: $what"; fail=1; fi
}
RULES=()
for d in rules rules-threat-hunting rules-emerging-threats; do
    [ -d "$SHARED/data/sigma/$d" ] && RULES+=(--rules "$SHARED/data/sigma/$d")
done
run() { # run <name> <input> <config text>: out, stats and err under $TMP/<name>.*
    printf '%s\n' "$3" > "$TMP/$1.yaml"
    "$BIN" run "${RULES[@]}" --input "$2" --output "$TMP/$1.out" \
        --stats "$TMP/$1.stats" --config "$TMP/$1.yaml" \
        --dead-letter "$TMP/$1.dead" 2> "$TMP/$1.err" ||
        { echo "FAIL: run $1:"; tail -5 "$TMP/$1.err"; fail=1; }
}
warnings() { grep -c 'warning: host' "$TMP/$1.err"; }
stat() { jq -r "$2" "$TMP/$1.stats"; }
# Every time an incident shows (bounds, stages), final versions only.
incident_times() {
    jq -c 'select(.kind=="incident")' "$TMP/$1.out" |
        jq -s -r 'group_by(.id) | map(last) | map(select(.merged_into == null))
                  | .[] | .first_seen, .last_seen, (.stages[].first_seen)' | sort
}
alert_ids() { jq -r 'select(.kind=="alert") | .id' "$TMP/$1.out" | sort; }

# 1. LSASS campaign 01: the attack runs 2023-08-16 04:54-04:59Z on MKT01.
unzip -p "$LSASS" > "$TMP/lsass.jsonl"
run lsass "$TMP/lsass.jsonl" 'fusion: {max_alerts: 1000000}'
check "MKT01 found -19h, said once" \
    test "$(warnings lsass)" = 1 -a \
    "$(grep -c 'host MKT01.pandalab.com: .* are -19h from Sysmon' "$TMP/lsass.err")" = 1
check "stats list MKT01 at -19h, uncorrected" \
    test "$(stat lsass '.clocks.hosts | map("\(.host) \(.offset) \(.correction)") | join(",")')" \
    = "MKT01.pandalab.com -19h none"
check "by default nothing is corrected" test "$(stat lsass .clocks.events_corrected)" = 0
early=$(incident_times lsass | head -1)
echo "      uncorrected, the incident starts at $early"
check "uncorrected, the incident starts hours before the attack" \
    test "$early" \< "2023-08-16T00:00"
run lsass_fixed "$TMP/lsass.jsonl" 'fusion: {max_alerts: 1000000}
time: {clock_offsets: {MKT01: -19h}}'
first=$(incident_times lsass_fixed | head -1)
last=$(incident_times lsass_fixed | tail -1)
echo "      corrected, incident times run from $first to $last"
check "corrected, every incident time is within the attack's hour" \
    test "$first" \> "2023-08-16T04:45" -a "$last" \< "2023-08-16T05:15"
check "correction changes no alert" \
    diff <(alert_ids lsass) <(alert_ids lsass_fixed)
check "a configured offset that matches is not warned about" \
    test "$(warnings lsass_fixed)" = 0
check "corrected events counted" \
    test "$(stat lsass_fixed .clocks.events_corrected)" -gt 5000
# A corrected alert says so: its time is its event's stamp + 19h, and
# no alert timed by UtcTime is touched.
check "corrected alerts carry clock_offset, time = stamp + 19h" \
    test "$(jq -r 'select(.kind == "alert" and .clock_offset)
        | [.clock_offset, .event.UtcTime == null,
           ((.time | sub("\\.[0-9]+Z$"; "Z") | fromdate)
            - (.event.TimeCreated | sub("\\.[0-9]+Z$"; "Z") | fromdate))]
        | @tsv' "$TMP/lsass_fixed.out" | sort -u)" = "$(printf -- '-19h\ttrue\t68400')"
check "uncorrected alerts carry none" \
    test "$(jq -r 'select(.kind == "alert" and .clock_offset)' "$TMP/lsass.out" | wc -l)" = 0

# 2. psh_cmstp: WORKSTATION5 at -4h.
unzip -p "$CMSTP" > "$TMP/cmstp.jsonl"
run cmstp "$TMP/cmstp.jsonl" ''
check "WORKSTATION5 found -4h" \
    test "$(stat cmstp '.clocks.hosts[0].offset')" = "-4h"
# Daylight saving ends half-way through the Sysmon block: -5h from then.
jq -c -n 'foreach inputs as $e (0; if $e.UtcTime then . + 1 else . end;
        if . > 400 and $e.UtcTime then
            $e | .TimeCreated = ((.TimeCreated | sub("\\.[0-9]+Z$"; "Z") | fromdate)
                                 - 3600 | todate) | ."@timestamp" = .TimeCreated
        else $e end)' "$TMP/cmstp.jsonl" > "$TMP/cmstp_dst.jsonl"
run cmstp_dst "$TMP/cmstp_dst.jsonl" 'time: {clock_offsets: auto}'
check "auto follows a change of offset (-4h, then -5h) and says both" \
    test "$(stat cmstp_dst '.clocks.hosts[0] | "\(.offset) \(.changes)"')" = "-5h 1" -a \
    "$(grep -c 'now -5h from UTC (was -4h)' "$TMP/cmstp_dst.err")" = 1
# Jitter: every stamp moved by a pseudo-random amount within +-3h.
jq -c 'if .UtcTime then
         .TimeCreated = ((.UtcTime | sub("\\.[0-9]+$"; "") | sub(" "; "T") + "Z" | fromdate)
                         + ((input_line_number * 7919) % 21600) - 10800 | todate)
       else . end' "$TMP/cmstp.jsonl" > "$TMP/cmstp_jitter.jsonl"
run cmstp_jitter "$TMP/cmstp_jitter.jsonl" 'time: {clock_offsets: auto}'
check "jittery stamps are no time zone: nothing found, nothing corrected" \
    test "$(warnings cmstp_jitter)" = 0 -a \
    "$(stat cmstp_jitter '"\(.clocks.hosts_off) \(.clocks.events_corrected) \(.clocks.events_compared)"')" = "0 0 775"
unzip -p "$AGREE" > "$TMP/agree.jsonl"
run agree "$TMP/agree.jsonl" ''
check "clocks that agree: no warning, compared all the same" \
    test "$(warnings agree)" = 0 -a "$(stat agree .clocks.hosts_off)" = 0 -a \
    "$(stat agree .clocks.events_compared)" -gt 1000

# 3. Events without a usable time.  Every shared recording names its
# time in a field the built-in list knows (Sysmon, Windows, Sentinel's
# TimeGenerated, Defender XDR's Timestamp, CloudTrail, auditd...).
PACK=$(cd "$(dirname "$0")/../.." && pwd)/rules/pack
untimed=0
while IFS= read -r z; do
    unzip -p "$z" > "$TMP/rec.jsonl" 2>/dev/null
    "$BIN" run --rules "$PACK" --input "$TMP/rec.jsonl" --output /dev/null \
        --stats "$TMP/rec.stats" --dead-letter "$TMP/rec.dead" 2>/dev/null
    n=$(jq -r '"\(.events_without_time) of \(.events)"' "$TMP/rec.stats")
    case $n in
    "0 of "*) ;;
    *) echo "FAIL: ${z#$OTRF/}: $n events without a usable time"; untimed=1 ;;
    esac
done < <(find "$OTRF" -iname '*.zip' | sort)
check "every shared recording's events have a usable time" test $untimed = 0

head -50 "$TMP/cmstp.jsonl" | jq -c '{Hostname, Channel, EventID, ts: .TimeCreated, Message}' \
    > "$TMP/no_time.jsonl"
printf '{"Hostname":"x","time":0}\n' >> "$TMP/no_time.jsonl"
run no_time "$TMP/no_time.jsonl" ''
check "events without a usable time are on the summary line" \
    grep -q '51 events (51 without a usable time: see time.fields)' "$TMP/no_time.err"
run with_ts "$TMP/no_time.jsonl" 'time: {fields: [ts]}'
check "time.fields gives them one" \
    test "$(stat with_ts .events_without_time)" = 1 -a \
    "$(grep -c '50 events\|51 events (1 without' "$TMP/with_ts.err")" = 1
exit $fail
