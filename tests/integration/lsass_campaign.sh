#!/usr/bin/env bash
# lsass_campaign.sh - kill-chain fusion on a real recorded intrusion.
#
# Runs `chainfuse run` with the whole shared SigmaHQ rule set on the
# OTRF LSASS_campaign_01 recording and checks, against the ground truth
# (../shared/data/groundtruth/lsass_campaigns/):
#   1. every alert raised on MKT01 during the attack window lands in one
#      incident, whose stages appear in time order;
#   2. the researchers' benign `netsh trace stop` burst at the end does not
#      become a high- or critical-severity incident of its own;
#   3. two different shuffles of the input within the 15-minute lateness
#      bound (a deterministic shuffler below) give byte-identical incident
#      records and make no alert late (the recording as shipped is itself
#      outside the bound; see step 3).
# Run by CTest as `bash lsass_campaign.sh <chainfuse binary>`; exits 77
# (skipped) when jq or ../shared is missing, 1 for the latter under
# CF_REQUIRE_SHARED=1 (tests/ci/shared_data.sh).
set -u
BIN=${1:?usage: lsass_campaign.sh <path-to-chainfuse>}
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
if ! command -v jq >/dev/null 2>&1; then
    echo "SKIP: jq is not installed (apt-get install jq)"; exit 77
fi
ZIP=$SHARED/data/otrf/datasets/compound/LSASS_campaign_01/metasploit_logonpasswords_lsass_memory_dump.zip
if [ ! -f "$ZIP" ] || [ ! -d "$SHARED/data/sigma/rules" ]; then
    shared_missing "$ZIP or $SHARED/data/sigma/rules"
fi
TMP=$(mktemp -d)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
fail=0

unzip -p "$ZIP" > "$TMP/events.jsonl"
# Alert ids stay in incidents (no size cap) so membership can be checked.
printf 'fusion:\n  max_alerts: 1000000\n' > "$TMP/config.yaml"
sigma_rules

run() { # run <input> <output> <stats>
    "$BIN" run "${RULES[@]}" --input "$1" --output "$2" --stats "$3" \
        --config "$TMP/config.yaml" --dead-letter "$TMP/dead.jsonl"
}
if ! run "$TMP/events.jsonl" "$TMP/out.jsonl" "$TMP/stats.json" 2> "$TMP/err.txt"; then
    echo "FAIL: chainfuse run failed:"; tail -20 "$TMP/err.txt"; exit 1
fi

# Final state of every incident (last record per id), merged ones dropped.
final() { jq -c 'select(.kind=="incident")' "$1" |
          jq -s -c 'group_by(.id) | map(last) | map(select(.merged_into == null)) | .[]'; }
final "$TMP/out.jsonl" > "$TMP/incidents.jsonl"
jq -c 'select(.kind=="alert")' "$TMP/out.jsonl" > "$TMP/alerts.jsonl"
echo "alerts: $(wc -l < "$TMP/alerts.jsonl"), incidents: $(wc -l < "$TMP/incidents.jsonl")"

# 1. The attack: ground truth steps 1-6, 04:54:31Z to 04:58:34Z on MKT01.
#    Repeats of an alert (same rule, same entities within the suppression
#    window) are counted on the first one, not listed, so an attack alert
#    is accounted for when an alert with its rule and entities (normalised
#    roughly as fusion does) is in the incident.
START=2023-08-16T04:54:31
END=2023-08-16T04:58:35
KEY=$ALERT_KEY
# Only alerts from an hour (the suppression window) before the attack on
# can be the listed first of a repeat.
NEAR=2023-08-16T03:54:31
jq -r --arg s "$START" --arg e "$END" --arg n "$NEAR" "
    select((.entities.host // \"\" | ascii_downcase | split(\".\")[0]) == \"mkt01\")
    | select(.time != null and .time >= \$n and .time < \$e)
    | \"\\(.id) \\($KEY | gsub(\" \"; \"_\")) \\(.time != null and .time >= \$s and .time < \$e)\"" \
    "$TMP/alerts.jsonl" | sort -u > "$TMP/keyed.txt"
awk '$3 == "true" { print $2 }' "$TMP/keyed.txt" | sort -u > "$TMP/attack_keys.txt"
n_attack=$(awk '$3 == "true"' "$TMP/keyed.txt" | wc -l)
n_keys=$(wc -l < "$TMP/attack_keys.txt")
echo "attack-window alerts on MKT01: $n_attack ($n_keys distinct rule+entities)"
check "alerts are raised on MKT01 during the attack" test "$n_attack" -gt 0
jq -r '.id as $i | .alert_ids[] | "\(.) \($i)"' "$TMP/incidents.jsonl" |
    sort -u > "$TMP/membership.txt"
# key -> incident of every listed alert (also those just before the
# window, on which later repeats are counted)
join "$TMP/keyed.txt" "$TMP/membership.txt" | awk '{ print $2, $4 }' | sort -u |
    join - "$TMP/attack_keys.txt" > "$TMP/attack_members.txt"
n_in=$(cut -d' ' -f1 "$TMP/attack_members.txt" | sort -u | wc -l)
n_inc=$(cut -d' ' -f2 "$TMP/attack_members.txt" | sort -u | wc -l)
echo "attack rule+entities found in emitted incidents: $n_in of $n_keys, in $n_inc incident(s)"
check "every attack alert is in an emitted incident (itself or as a counted repeat)" \
    test "$n_in" -eq "$n_keys"
check "all attack alerts are in one incident" test "$n_inc" -eq 1
INC=$(cut -d' ' -f2 "$TMP/attack_members.txt" | sort -u | head -1)
if [ -n "$INC" ]; then
    jq -c --arg i "$INC" 'select(.id == $i) | {severity, score, alert_count,
        stages: [.stages[] | "\(.tactic)@\(.first_seen)"], title}' \
        "$TMP/incidents.jsonl"
    check "the campaign incident's stages appear in time order" \
        test "$(jq -r --arg i "$INC" 'select(.id == $i) |
                [.stages[].first_seen] | (. == sort)' "$TMP/incidents.jsonl")" = true
    check "the campaign incident covers execution and credential-access" \
        test "$(jq -r --arg i "$INC" 'select(.id == $i) | [.stages[].tactic] |
                (index("execution") != null and index("credential-access") != null)' \
                "$TMP/incidents.jsonl")" = true
    check "the campaign incident is high or critical" \
        test "$(jq -r --arg i "$INC" 'select(.id == $i) | .severity' \
                "$TMP/incidents.jsonl" | grep -cE '^(high|critical)$')" -eq 1
fi

# 2. The benign burst (04:59:23Z-05:00:06Z): no high/critical incident of
#    its own, i.e. made only of alerts from the burst onwards.
jq -r '"\(.id) \(.time)"' "$TMP/alerts.jsonl" | sort -u > "$TMP/alert_times.txt"
own=$(jq -r '.id as $i | .severity as $s | .alert_ids[] | "\(.) \($i) \($s)"' \
        "$TMP/incidents.jsonl" | sort | join - "$TMP/alert_times.txt" |
      awk '{ if (!($2 in first) || $4 < first[$2]) first[$2] = $4; sev[$2] = $3 }
           END { for (i in first)
                   if (first[i] >= "2023-08-16T04:59:23" && (sev[i] == "high" || sev[i] == "critical"))
                       print i }' | wc -l)
echo "high/critical incidents starting with the netsh burst or later: $own"
check "the netsh trace stop burst is not a high-severity incident of its own" \
    test "$own" -eq 0

# 3. Shuffle within the lateness: each line moves to its event time plus a
#    pseudo-random 0..14 minutes, so no line arrives more than 14 minutes
#    after a younger one.  Fixed seeds: the same shuffles every run.  The
#    recording as shipped is NOT within the bound (its non-Sysmon channels
#    carry TimeCreated shifted 19 h from UtcTime, and some Sysmon network
#    events carry times six days old), so its alerts arrive up to days late
#    and are fused in arrival order; two shuffles of the same events are
#    compared with each other, and the original order is reported.
jq -r '(.UtcTime // .TimeCreated // ."@timestamp" // "") | tostring
       | if . == "" then "0" else
         (sub("\\.[0-9]*"; "") | sub(" "; "T") | sub("Z$"; "") + "Z"
          | try fromdateiso8601 catch 0) end' "$TMP/events.jsonl" > "$TMP/keys.txt"
shuffle() { # shuffle <seed> <output>
    paste -d'\t' "$TMP/keys.txt" "$TMP/events.jsonl" |
        awk -F'\t' -v seed="$1" 'BEGIN { srand(seed) }
            { printf "%d\t%s\n", $1 + int(rand() * 840), $0 }' |
        sort -t"$(printf '\t')" -k1,1n -s | cut -f3- > "$2"
}
shuffle 42 "$TMP/shuffled_a.jsonl"
shuffle 7 "$TMP/shuffled_b.jsonl"
check "the two shuffles differ" \
    test "$(cmp -l "$TMP/shuffled_a.jsonl" "$TMP/shuffled_b.jsonl" 2>/dev/null | wc -l)" -gt 0
for x in a b; do
    if ! run "$TMP/shuffled_$x.jsonl" "$TMP/out_$x.jsonl" "$TMP/stats_$x.json" 2> "$TMP/err_$x.txt"; then
        echo "FAIL: chainfuse run on shuffled input failed:"; tail -20 "$TMP/err_$x.txt"; exit 1
    fi
    jq -c 'select(.kind=="incident")' "$TMP/out_$x.jsonl" > "$TMP/inc_$x.jsonl"
    late=$(jq -r '.fusion.late_alerts // empty' "$TMP/stats_$x.json")
    echo "shuffle $x: $(wc -l < "$TMP/inc_$x.jsonl") incident records, late alerts: ${late:-unknown}"
    check "no alert is late in shuffle $x" test "${late:-1}" -eq 0
done
check "two shuffles within 15 minutes give byte-identical incident records" \
    cmp -s "$TMP/inc_a.jsonl" "$TMP/inc_b.jsonl"
jq -c 'select(.kind=="incident")' "$TMP/out.jsonl" > "$TMP/inc_orig.jsonl"
late=$(jq -r '.fusion.late_alerts // empty' "$TMP/stats.json")
if cmp -s "$TMP/inc_orig.jsonl" "$TMP/inc_a.jsonl"; then
    echo "info: the original order gives the same incident records"
else
    echo "info: the original order differs from the shuffles ($(wc -l < "$TMP/inc_orig.jsonl") records, ${late:-?} alerts late in it)"
fi
exit $fail
