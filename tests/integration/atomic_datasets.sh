#!/usr/bin/env bash
# atomic_datasets.sh - fusion on the shared OTRF atomic recordings.
#
# Each atomic recording holds one technique; its metadata
# (../shared/data/otrf/datasets/atomic/_metadata/*.yaml) names the ATT&CK
# tactic(s).  With the whole shared SigmaHQ rule set, the alerts that
# carry the labelled tactic must land in one incident, not be spread over
# several.  A recording where no alert carries the tactic is reported and
# not counted as a failure (nothing to fuse).
# Run by CTest as `bash atomic_datasets.sh <chainfuse binary>`; exits 77
# (skipped) when jq or ../shared is missing, 1 for the latter under
# CF_REQUIRE_SHARED=1 (tests/ci/shared_data.sh).
set -u
BIN=${1:?usage: atomic_datasets.sh <path-to-chainfuse>}
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
if ! command -v jq >/dev/null 2>&1; then
    echo "SKIP: jq is not installed (apt-get install jq)"; exit 77
fi
ATOMIC=$SHARED/data/otrf/datasets/atomic
TACTICS=$SHARED/data/attack/enterprise_tactics_ordered.json
if [ ! -d "$ATOMIC/_metadata" ] || [ ! -f "$TACTICS" ] || [ ! -d "$SHARED/data/sigma/rules" ]; then
    shared_missing "$ATOMIC/_metadata, $TACTICS or $SHARED/data/sigma/rules"
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# The OTRF lab forwards every event through its collector "wec"; that
# host is in every record and must not link anything.
cat > "$TMP/config.yaml" <<'YAML'
fusion:
  max_alerts: 1000000
  never_link: [wec.internal.cloudapp.net]
YAML
sigma_rules

KEY=$ALERT_KEY
fail=0 checked=0 passed=0 empty=0
while IFS= read -r zip; do
    rel=${zip#"$ATOMIC"/}
    meta=$(grep -l "datasets/atomic/$rel" "$ATOMIC"/_metadata/*.yaml | head -1)
    if [ -z "$meta" ]; then echo "?    $rel: no metadata names it"; continue; fi
    tas=$(awk '/tactics:/ {t=1; next} t && /^ *- *TA[0-9]+/ {print $2; next} {t=0}' "$meta" | sort -u)
    names=$(for ta in $tas; do jq -r --arg ta "$ta" '.[] | select(.id == $ta) | .shortname' "$TACTICS"; done)
    # the v19 names of defense-evasion
    case " $names " in *defense-evasion*) names="$names stealth defense-impairment";; esac
    names_json=$(printf '%s\n' $names | jq -R . | jq -s -c .)
    unzip -p "$zip" > "$TMP/events.jsonl"
    if ! "$BIN" run "${RULES[@]}" --input "$TMP/events.jsonl" --output "$TMP/out.jsonl" \
            --config "$TMP/config.yaml" --dead-letter "$TMP/dead.jsonl" 2> "$TMP/err.txt"; then
        echo "FAIL $rel: chainfuse run failed: $(tail -3 "$TMP/err.txt")"; fail=1; continue
    fi
    # Repeats (same rule, same entities within the suppression window) are
    # counted on the first alert, not listed: an alert is accounted for
    # when an alert with its rule and entities (normalised roughly as
    # fusion does) is listed in an incident.
    jq -r --argjson n "$names_json" "select(.kind == \"alert\")
        | \"\\(.id) \\($KEY | gsub(\" \"; \"_\")) \\([.tactics[] | IN(\$n[])] | any)\"" \
        "$TMP/out.jsonl" | sort -u > "$TMP/keyed.txt"
    awk '$3 == "true" { print $2 }' "$TMP/keyed.txt" | sort -u > "$TMP/keys.txt"
    jq -c 'select(.kind == "incident")' "$TMP/out.jsonl" |
        jq -s -c 'group_by(.id) | map(last) | map(select(.merged_into == null)) | .[]' |
        jq -r '.id as $i | .alert_ids[] | "\(.) \($i)"' | sort -u > "$TMP/members.txt"
    n=$(awk '$3 == "true"' "$TMP/keyed.txt" | wc -l)
    k=$(wc -l < "$TMP/keys.txt")
    if [ "$n" -eq 0 ]; then
        echo "n/a  $rel ($(echo $names | tr ' ' ',')): no alert carries the labelled tactic"
        empty=$((empty + 1)); continue
    fi
    checked=$((checked + 1))
    join "$TMP/keyed.txt" "$TMP/members.txt" | awk '{ print $2, $4 }' | sort -u |
        join - "$TMP/keys.txt" > "$TMP/joined.txt"
    n_in=$(cut -d' ' -f1 "$TMP/joined.txt" | sort -u | wc -l)
    n_inc=$(cut -d' ' -f2 "$TMP/joined.txt" | sort -u | wc -l)
    if [ "$n_in" -eq "$k" ] && [ "$n_inc" -eq 1 ]; then
        echo "ok   $rel ($(echo $names | tr ' ' ',')): $n alerts ($k distinct rule+entities) in one incident"
        passed=$((passed + 1))
    else
        echo "FAIL $rel ($(echo $names | tr ' ' ',')): $n alerts ($k distinct rule+entities), $n_in in emitted incidents, spread over $n_inc incident(s)"
        fail=1
    fi
done < <(find "$ATOMIC" -name '*.zip' | sort)
echo "atomic datasets: $passed of $checked passed, $empty without alerts of the labelled tactic"
[ "$checked" -gt 0 ] || { echo "FAIL: no dataset could be checked"; fail=1; }
exit $fail
