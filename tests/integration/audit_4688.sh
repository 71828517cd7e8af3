#!/usr/bin/env bash
# audit_4688.sh - Security 4688 serving SigmaHQ's process_creation rules,
# on real recordings.
#
# Every process creation (Sysmon 1 and Security 4688) of the shared OTRF
# recordings goes through the stock SigmaHQ rules.  Many processes were
# logged twice, once by each source, so Sysmon is the reference:
#   - no new false match: a rule that fires on a 4688 event fires on the
#     Sysmon event of the same process (same image and command line)
#     whenever the recording has one, so 4688 never fires a rule through a
#     field it lacks (rules/fieldmap.h);
#   - rules that need the 4688 names fire there: Image -> NewProcessName
#     (whoami groups), ParentImage -> ParentProcessName (fodhelper), and
#     IntegrityLevel -> MandatoryLabel (conhost), none of which fired on
#     4688 before the mapping;
#   - the alerts on 4688 carry the process and user entities.
# Run by CTest as `bash audit_4688.sh <chainfuse binary>`; exits 77
# (skipped) when jq or ../shared is missing, 1 for the latter under
# CF_REQUIRE_SHARED=1 (tests/ci/shared_data.sh).
set -u
BIN=${1:?usage: audit_4688.sh <path-to-chainfuse>}
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
if ! command -v jq >/dev/null 2>&1; then
    echo "SKIP: jq is not installed (apt-get install jq)"; exit 77
fi
OTRF=$SHARED/data/otrf/datasets
if [ ! -d "$OTRF/compound/LSASS_campaign_01" ] || [ ! -d "$SHARED/data/sigma/rules" ]; then
    shared_missing "$OTRF/compound/LSASS_campaign_01 or $SHARED/data/sigma/rules"
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
RULES=()
for d in rules rules-threat-hunting rules-emerging-threats; do
    [ -d "$SHARED/data/sigma/$d" ] && RULES+=(--rules "$SHARED/data/sigma/$d")
done
find "$OTRF" -name '*.zip' | sort | while IFS= read -r zip; do
    unzip -p "$zip" | grep -E '"EventID": ?"?(1|4688)"?,'
done > "$TMP/events.jsonl"
n4688=$(grep -cE '"EventID": ?"?4688' "$TMP/events.jsonl")
if [ "$n4688" -lt 50 ]; then
    echo "FAIL: only $n4688 Security 4688 events found in $OTRF"; exit 1
fi
if ! "$BIN" run "${RULES[@]}" --input "$TMP/events.jsonl" --output "$TMP/out.jsonl" \
        --dead-letter "$TMP/dead.jsonl" 2> "$TMP/err.txt"; then
    echo "FAIL: chainfuse run failed: $(tail -3 "$TMP/err.txt")"; exit 1
fi
fail=0
# A process as both sources name it: image (case folded) and command line.
PROC='(.Image // .NewProcessName | ascii_downcase) + "|" + (.CommandLine | tostring)'
jq -r "select(.EventID == 1 and (.Image | type) == \"string\") | $PROC" \
    "$TMP/events.jsonl" | sort -u > "$TMP/sysmon_procs.txt"
jq -r "select(.kind == \"alert\") | .rule.id + \"|\" + (.event | $PROC) + \"\\t\" + (.event.EventID | tostring)" \
    "$TMP/out.jsonl" | sort -u > "$TMP/alerts.txt"
awk -F'\t' '$2 == "1" { print $1 }' "$TMP/alerts.txt" | sort -u > "$TMP/sysmon_alerts.txt"
awk -F'\t' '$2 == "4688" { print $1 }' "$TMP/alerts.txt" | sort -u > "$TMP/audit_alerts.txt"
twins=0
while IFS= read -r a; do
    proc=${a#*|}
    grep -qxF -- "$proc" "$TMP/sysmon_procs.txt" || continue
    twins=$((twins + 1))
    if ! grep -qxF -- "$a" "$TMP/sysmon_alerts.txt"; then
        echo "FAIL: fires on 4688 but not on the Sysmon event of the same process: ${a:0:200}"
        fail=1
    fi
done < "$TMP/audit_alerts.txt"
if [ "$twins" -lt 20 ]; then
    echo "FAIL: only $twins alerts on 4688 events with a Sysmon twin to compare"; fail=1
fi
for want in bd8b828d-0dca-48e1-8a63-8a58ecf2644f:Image \
            7f741dcf-fc22-4759-87b4-9ae8376676a2:ParentImage \
            3037d961-21e9-4732-b27a-637bcc7bf539:IntegrityLevel; do
    id=${want%%:*}
    if ! grep -q "^$id|" "$TMP/audit_alerts.txt"; then
        echo "FAIL: stock rule $id (on ${want#*:}) raised no alert on a 4688 event"; fail=1
    fi
done
missing=$(jq -r 'select(.kind == "alert" and .event.EventID == 4688
                        and (.entities.process == null or .entities.user == null))
                 | .rule.title' "$TMP/out.jsonl" | head -3)
if [ -n "$missing" ]; then
    echo "FAIL: 4688 alerts without a process or user entity, e.g. $missing"; fail=1
fi
audit=$(jq -r 'select(.kind == "alert" and .event.EventID == 4688) | .id' "$TMP/out.jsonl" | wc -l)
echo "$n4688 Security 4688 events: $audit alerts, $(wc -l < "$TMP/audit_alerts.txt") distinct (rule, process); $twins compared with their Sysmon twin"
[ "$fail" -eq 0 ] && echo "ok"
exit "$fail"
