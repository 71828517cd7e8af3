#!/usr/bin/env bash
# demo.sh BUILD_DIR - runs chainfuse on the bundled scenario: a generated
# multi-stage intrusion on a few hosts hidden in background activity,
# matched against the project's own rule pack (rules/pack).  Writes
# everything under BUILD_DIR/demo and prints the incidents it found.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
OUT="$BUILD/demo"
mkdir -p "$OUT"

"$BUILD/gen_scenario" --truth "$OUT/truth.csv" > "$OUT/scenario.jsonl"
echo "demo: generated $(wc -l < "$OUT/scenario.jsonl") events ($OUT/scenario.jsonl)"

CONFIG=()
[ -f "$ROOT/deploy/demo.yml" ] && CONFIG=(--config "$ROOT/deploy/demo.yml")
"$BUILD/chainfuse" run --rules "$ROOT/rules/pack" "${CONFIG[@]}" \
    --input "$OUT/scenario.jsonl" --output "$OUT/records.jsonl" \
    --dead-letter "$OUT/dead-letter.jsonl" --stats "$OUT/stats.json"

echo "demo: $(jq -s 'map(select(.kind=="alert")) | length' "$OUT/records.jsonl") alert records (detection and correlation)," \
     "$(jq -s '[.[] | select(.kind=="incident") | .id] | unique | length' "$OUT/records.jsonl") incidents"
echo
# The last version of each incident is its current state; one merged
# into another (merged_into) lives on in that one.
jq -rs '[.[] | select(.kind=="incident")] | group_by(.id) | map(max_by(.version))
        | map(select(.merged_into == null)) | sort_by(.first_seen)[]
        | "[\(.severity)] \(.title)  (score \(.score), \(.alert_count) alerts, status \(.status))\n  stages: \([.stages[].tactic] | join(" -> "))\n  hosts: \(.entities.hosts // [] | join(", "))  users: \(.entities.users // [] | join(", "))\n  \(.summary)\n"' \
    "$OUT/records.jsonl"
echo "demo: all records in $OUT/records.jsonl"
