#!/usr/bin/env bash
# outputs.sh CHAINFUSE - several outputs at once, each with its own
# filter (kinds, min_severity, tactics), from the command line
# (`--output` repeated) and from the YAML `outputs:` list; the connector
# registry's refusals (unknown scheme, a connector not in the build, a
# file given options); per-output counters in --stats.
#
# The records come from the demo scenario (bench/gen_scenario) through
# the project's rule pack: this tests routing, not detection, and every
# expectation is computed from an unfiltered run of the same input.
set -uo pipefail
CF="$1"
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
SRC="${CF_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
GEN="${CF_BINARY_DIR:-$(dirname "$CF")}/gen_scenario"
[ -x "$GEN" ] || { echo "FAIL: $GEN not built"; exit 1; }
RULES="$SRC/rules/pack"

"$GEN" --events 3000 > "$T/s.jsonl"
printf 'not json\n' >> "$T/s.jsonl"
"$CF" run --rules "$RULES" --input "$T/s.jsonl" --output "$T/all.jsonl" \
    --dead-letter "$T/dl0.jsonl" 2>/dev/null
check "the unfiltered run has alerts and incidents of several severities" \
    '[ "$(jq -s "map(select(.kind==\"incident\")) | length" "$T/all.jsonl")" -gt 1 ] && [ "$(jq -s "[.[].severity] | unique | length" "$T/all.jsonl")" -gt 2 ]'

# --output twice: both files get every record, in the same order.
"$CF" run --rules "$RULES" --input "$T/s.jsonl" --output "$T/a.jsonl" \
    --output "$T/b.jsonl" --dead-letter "$T/dl1.jsonl" --stats "$T/st1.json" 2>/dev/null
check "--output repeated: each file gets every record" \
    'cmp -s "$T/a.jsonl" "$T/all.jsonl" && cmp -s "$T/b.jsonl" "$T/all.jsonl"'
n_all=$(wc -l < "$T/all.jsonl")
check "--stats counts per output" \
    'jq -e --argjson n "$n_all" ".outputs | length == 2 and all(.written == \$n and .retries == 0)" "$T/st1.json" >/dev/null'
"$CF" run --rules "$RULES" --input "$T/s.jsonl" --output "$T/a.jsonl" \
    --output "$T/a.jsonl" --dead-letter "$T/dl1.jsonl" 2>"$T/err"; rc=$?
check "the same file as two outputs is a usage error" '[ $rc -eq 2 ] && grep -q "is given twice" "$T/err"'

# YAML: critical incidents to one output, high+ credential-access alerts
# to another, dead letters and everything to a third.
cat > "$T/c.yml" <<Y
outputs:
  - url: $T/page.jsonl
    kinds: [incident]
    min_severity: critical
  - url: file://$T/cred.jsonl
    kinds: [alert]
    min_severity: high
    tactics: [credential-access]
  - url: $T/every.jsonl
    kinds: [alert, incident, dead-letter]
Y
"$CF" run --rules "$RULES" --input "$T/s.jsonl" --config "$T/c.yml" \
    --dead-letter "$T/dl2.jsonl" --stats "$T/st2.json" 2>/dev/null; rc=$?
check "a run with three filtered outputs succeeds" '[ $rc -eq 0 ]'
jq -c 'select(.kind=="incident" and .severity=="critical")' "$T/all.jsonl" > "$T/want_page"
check "kinds + min_severity: exactly the critical incidents" \
    '[ -s "$T/want_page" ] && cmp -s "$T/page.jsonl" "$T/want_page"'
jq -c 'select(.kind=="alert" and (.severity=="high" or .severity=="critical") and (.tactics | index("credential-access")))' "$T/all.jsonl" > "$T/want_cred"
check "tactics: exactly the high+ credential-access alerts" \
    '[ -s "$T/want_cred" ] && cmp -s "$T/cred.jsonl" "$T/want_cred"'
check "kind dead-letter: the dead letter too, beside every record" \
    '[ "$(grep -c "\"kind\":\"dead-letter\"" "$T/every.jsonl")" -eq 1 ] && cmp -s <(grep -v "\"kind\":\"dead-letter\"" "$T/every.jsonl") "$T/all.jsonl" && [ -s "$T/dl2.jsonl" ]'
check "--stats: written + filtered per output add up" \
    'jq -e ".outputs | length == 3 and ((.[0].written + .[0].filtered) as \$n | all(.[]; .written + .filtered == \$n))" "$T/st2.json" >/dev/null'
"$CF" run --rules "$RULES" --input "$T/s.jsonl" --config "$T/c.yml" \
    --output "$T/cli.jsonl" --dead-letter "$T/dl3.jsonl" 2>/dev/null
check "--output replaces the config's outputs" 'cmp -s "$T/cli.jsonl" "$T/all.jsonl"'

# Mistakes in an outputs item are configuration errors (exit 2).
printf 'outputs:\n  - url: x.jsonl\n    kinds: [alerts]\n' > "$T/bad1.yml"
"$CF" config --check "$T/bad1.yml" 2>"$T/err"; rc=$?
check "an unknown kind is refused naming the item" '[ $rc -eq 2 ] && grep -q "outputs\[0\].kinds" "$T/err"'
printf 'outputs:\n  - url: x.jsonl\n    min_severty: high\n' > "$T/bad2.yml"
"$CF" config --check "$T/bad2.yml" 2>"$T/err"; rc=$?
check "a misspelt engine key is refused with a suggestion" '[ $rc -eq 2 ] && grep -q "did you mean .min_severity." "$T/err"'
printf 'outputs:\n  - kinds: [alert]\n' > "$T/bad3.yml"
"$CF" config --check "$T/bad3.yml" 2>"$T/err"; rc=$?
check "an item without url is refused" '[ $rc -eq 2 ] && grep -q "outputs\[0\].url" "$T/err"'
printf 'outputs:\n  - url: %s/o.jsonl\n    colour: blue\n' "$T" > "$T/bad4.yml"
"$CF" run --rules "$RULES" --input "$T/s.jsonl" --config "$T/bad4.yml" 2>"$T/err"; rc=$?
check "a file output given a connector option is refused naming it" '[ $rc -eq 1 ] && grep -q "unknown option .colour." "$T/err"'

# The registry: an unknown scheme, and connectors absent from the build.
"$CF" run --rules "$RULES" --input "$T/s.jsonl" --output "s3://bucket/x" 2>"$T/err"; rc=$?
check "an unknown scheme is an error, not a file named s3:" '[ $rc -eq 1 ] && grep -q "unknown scheme" "$T/err" && [ ! -e "s3:" ]'
for c in redis:redis:redis://127.0.0.1:1 webhook:webhook:https://127.0.0.1:1/x kafka:kafka:kafka://127.0.0.1:1/t; do
  dir=${c%%:*}; rest=${c#*:}; url=${rest#*:}
  if [ ! -d "$SRC/connectors/$dir" ]; then
    "$CF" run --rules "$RULES" --input "$T/s.jsonl" --output "$url" 2>"$T/err"; rc=$?
    check "$url without connectors/$dir: says it was built without it" '[ $rc -eq 1 ] && grep -q "built without" "$T/err"'
  fi
done

finish outputs
