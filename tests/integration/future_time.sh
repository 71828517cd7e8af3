#!/usr/bin/env bash
# future_time.sh - one event stamped in the year 2100 among real ones must
# not hold incidents back until the end of input.
#
# Input: five shared OTRF atomic recordings (September-October 2020)
# one after the other, scanned with the bundled rule pack.  Their
# incidents are written while the input is still being read: the output
# interleaves them with the alerts of later input lines.  Then the same
# input with, as its first line, a copy of a real event re-stamped to
# 2100-01-01 (far past the wall clock plus fusion.max_future_skew).
# Checks:
#   1. the baseline does stream: some incident record comes before the
#      last alert record;
#   2. with the outlier, the sequence of records (kind, id, status) -
#      leaving out the outlier's own alert and incident - is the same as
#      without it: every incident arrives at the same point of the input;
#   3. the outlier is kept: its alert is written with its own time, and
#      the stats count it (fusion.future_events, fusion.future_alerts).
# Run by CTest as `bash future_time.sh <chainfuse binary>`; exits 77
# (skipped) when jq or ../shared is missing, 1 for the latter under
# CF_REQUIRE_SHARED=1 (tests/ci/shared_data.sh).
set -u
BIN=${1:?usage: future_time.sh <path-to-chainfuse>}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${CF_SHARED_DIR:-$(cd "$ROOT/.." && pwd)/shared}
. "$ROOT/tests/ci/shared_data.sh"
if ! command -v jq >/dev/null 2>&1; then
    echo "SKIP: jq is not installed (apt-get install jq)"; exit 77
fi
ATOMIC=$SHARED/data/otrf/datasets/atomic/windows
RECORDINGS=(
    privilege_escalation/host/empire_uac_shellapi_fodhelper.zip
    execution/host/empire_launcher_vbs.zip
    lateral_movement/host/empire_psexec_dcerpc_tcp_svcctl.zip
    credential_access/host/psh_lsass_memory_dump_comsvcs.zip
    defense_evasion/host/psh_cmstp_execution_bypassuac.zip
)
for r in "${RECORDINGS[@]}"; do
    if [ ! -f "$ATOMIC/$r" ]; then
        shared_missing "$ATOMIC/$r"
    fi
done
TMP=$(mktemp -d)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
export CHAINFUSE_CACHE_DIR="$TMP/cache"
fail=0
check() { # check <description> <test command...>
    local what=$1; shift
    if "$@"; then echo "ok:   $what"; else echo "FAIL: $what"; fail=1; fi
}

for r in "${RECORDINGS[@]}"; do unzip -p "$ATOMIC/$r"; done > "$TMP/real.jsonl"
# The outlier: the event of the first "PowerShell Started With Encoded
# Command" alert, every time field moved to 2100.
jq -c 'select(.EventID == 1 and ((.CommandLine // "") | test(" -enc "; "i")))' \
    "$TMP/real.jsonl" | head -1 |
    jq -c 'with_entries(if (.key | IN("UtcTime", "@timestamp", "EventTime",
                                      "EventReceivedTime", "TimeCreated"))
                        then .value = "2100-01-01T00:00:00.000Z" else . end)' \
    > "$TMP/outlier.jsonl"
cat "$TMP/outlier.jsonl" "$TMP/real.jsonl" > "$TMP/mixed.jsonl"

run() { # run <input> <output> <stats>
    "$BIN" run --rules "$ROOT/rules/pack" --input "$1" --output "$2" \
        --stats "$3" --dead-letter "$TMP/dead.jsonl" 2>> "$TMP/err.txt"
}
if ! run "$TMP/real.jsonl" "$TMP/real.out" "$TMP/real.stats" ||
   ! run "$TMP/mixed.jsonl" "$TMP/mixed.out" "$TMP/mixed.stats"; then
    echo "FAIL: chainfuse run failed:"; tail -20 "$TMP/err.txt"; exit 1
fi

FUTURE_ALERT=$(jq -r 'select(.kind == "alert" and (.time | startswith("2100"))) | .id' \
    "$TMP/mixed.out")
# (kind, id, status) in output order, without the outlier's records.
sequence() {
    jq -r --arg f "${FUTURE_ALERT:-none}" '
        select(.id != $f and ((.alert_ids // []) | index($f) | not))
        | "\(.kind) \(.id) \(.status // "")"' "$1"
}
sequence "$TMP/real.out" > "$TMP/real.seq"
sequence "$TMP/mixed.out" > "$TMP/mixed.seq"
before_last_alert() { # incident records written before the last alert
    awk '$1 == "incident" { n++ } $1 == "alert" { seen = n } END { print seen + 0 }' "$1"
}
echo "incident records before the last alert: without the outlier $(before_last_alert "$TMP/real.seq"), with it $(before_last_alert "$TMP/mixed.seq") (of $(grep -c '^incident' "$TMP/real.seq"))"

check "the outlier matched a rule" test -n "$FUTURE_ALERT"
check "baseline writes incidents while input is still read" \
    test "$(before_last_alert "$TMP/real.seq")" -gt 0
check "with a 2100 event, every incident arrives at the same input point" \
    cmp -s "$TMP/real.seq" "$TMP/mixed.seq"
[ "$fail" -eq 0 ] || diff "$TMP/real.seq" "$TMP/mixed.seq" | head -20
check "the outlier's alert is written with its own time" \
    test "$(jq -r 'select(.kind == "alert" and .input.offset == 1) | .time' "$TMP/mixed.out")" = "2100-01-01T00:00:00.000Z"
check "stats count the outlier event and its alert" \
    jq -e '.fusion.future_events == 1 and .fusion.future_alerts == 1 and .fusion.late_alerts == 0' "$TMP/mixed.stats" >/dev/null
# dropped{correlation_future_time} counts the outlier's alert only when a
# correlation rule of the pack counts its rule.
RULE=$(jq -r 'select(.kind == "alert" and .input.offset == 1) | .rule.id' "$TMP/mixed.out")
if grep -rqs -- "$RULE" "$ROOT/rules/pack/correlations"; then WANT=1; else WANT=0; fi
check "dropped{correlation_future_time} is $WANT (rule $RULE)" \
    jq -e --argjson w "$WANT" '.dropped.correlation_future_time == $w' "$TMP/mixed.stats" >/dev/null
exit $fail
