#!/usr/bin/env bash
# config.sh CHAINFUSE - the configuration file as a user meets it: a
# mistake is a usage error (exit 2) whose message names the file, the
# full key and, for a key written twice, the line; and the README's
# configuration reference is exactly what `chainfuse config --reference`
# prints from the tables the parser uses.
set -uo pipefail
CF="$1"
SRC="${CF_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"

mkdir -p "$T/rules"
cat > "$T/rules/good.yml" <<'R'
title: Whoami Execution
id: 5f0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f01
level: medium
tags: [attack.discovery]
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\whoami.exe'
  condition: selection
R
echo '{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Image":"C:\\whoami.exe"}' > "$T/events.jsonl"

# run_bad NAME YAML PATTERN...: `run` and `check` with this config exit 2
# without reading input, and stderr names the file and every PATTERN.
run_bad() {
    local name="$1" yaml="$2"
    shift 2
    printf '%s' "$yaml" > "$T/bad.yml"
    "$CF" run --rules "$T/rules" --input "$T/events.jsonl" --config "$T/bad.yml" \
        --dead-letter "$T/dl.jsonl" > "$T/out" 2> "$T/err"
    local rc=$? good=1
    [ $rc -eq 2 ] || good=0
    [ -s "$T/out" ] && good=0
    grep -qF "$T/bad.yml" "$T/err" || good=0
    for p in "$@"; do grep -qF -- "$p" "$T/err" || good=0; done
    if [ $good -eq 1 ]; then ok "run: $name"; else bad "run: $name (rc $rc: $(cat "$T/err"))"; fi
    "$CF" check --rules "$T/rules" --config "$T/bad.yml" > /dev/null 2>&1
    check "check: $name exits 2" "[ $? -eq 2 ]"
}

run_bad "section written twice names the key and both lines" \
    $'fusion:\n  window: 1h\noutput:\n  alerts: true\nfusion:\n  lateness: 5m\n' \
    "duplicate key 'fusion'" "line 5" "line 1"
run_bad "key written twice inside a section" \
    $'fusion:\n  window: 1h\n  window: 2h\n' "duplicate key 'fusion.window'" "line 3"
run_bad "wrong type names the full key" \
    $'input:\n  max_line_bytes: lots\n' "input.max_line_bytes"
run_bad "negative size" $'input:\n  max_line_bytes: -1\n' "input.max_line_bytes"
run_bad "duration that overflows" $'fusion:\n  window: 99999999999999999d\n' "fusion.window"
run_bad "unknown key inside a section" $'fusion:\n  latenes: 15m\n' "fusion.latenes" "lateness"
run_bad "unknown section" $'fuson:\n  window: 1h\n' "fuson" "fusion"
run_bad "YAML syntax error" $'input: [\n' "line"
run_bad "bad suppression (parsed by fusion)" \
    $'suppressions:\n  - reason: everything\n' "suppressions[0]"
run_bad "bad logsource mapping (parsed by the router)" \
    $'logsources:\n  category:\n    process_creation: {product: windows, conditions: 5}\n' \
    "logsources"
run_bad "bad entity fields (parsed by the entity map)" \
    $'entities:\n  hostname: [agent.hostname]\n' "entities" "hostname"
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --config "$T/nope.yml" 2> "$T/err"; rc=$?
check "missing config file exits 2 and names it" '[ $rc -eq 2 ] && grep -q nope.yml "$T/err"'

cat > "$T/good.yml" <<'C'
input:
  max_line_bytes: 64KiB
fusion:
  window: 90m
  lateness: 30
  never_link: [collector01]
correlation:
C
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --config "$T/good.yml" \
    --dead-letter "$T/dl.jsonl" > "$T/out" 2> "$T/err"; rc=$?
check "a good config runs" '[ $rc -eq 0 ] && grep -q "\"kind\":\"alert\"" "$T/out"'

# The reference: generated, one table per section, and the README holds
# exactly that text between its markers.
"$CF" config --reference > "$T/ref.md"; rc=$?
check "config --reference exits 0" '[ $rc -eq 0 ] && [ -s "$T/ref.md" ]'
for sec in input dead_letter cache output correlation fusion placeholders \
           logsources field_mappings entities suppressions; do
    check "reference lists section $sec" 'grep -q "\`$sec\`" "$T/ref.md"'
done
check "reference has fusion.lateness with its default" \
    'grep -qE "^\| \`lateness\` \| duration \| \`15m\` \|" "$T/ref.md"'
sed -n '/<!-- config-reference:begin -->/,/<!-- config-reference:end -->/p' \
    "$SRC/README.md" | sed '1d;$d' > "$T/readme.md"
if [ ! -s "$T/readme.md" ]; then
    bad "README.md has no <!-- config-reference:begin/end --> block"
elif diff -u "$T/readme.md" "$T/ref.md" > "$T/diff"; then
    ok "README's configuration reference matches config --reference"
else
    bad "README's configuration reference differs from \`chainfuse config --reference\`; paste its output between the config-reference markers:"
    head -40 "$T/diff"
fi
"$CF" config 2> /dev/null; check "config without an action exits 2" '[ $? -eq 2 ]'

# Every YAML example in the README's Configuration section is a valid
# configuration (so the prose cannot drift from the parser either).
awk '/^## Configuration/{on=1; next} /^## /{on=0} on' "$SRC/README.md" |
    awk -v dir="$T" '/^```yaml/{n++; f=dir "/example" n ".yml"; inb=1; next}
                     /^```/{inb=0; next} inb{print > f}'
n_examples=$(ls "$T"/example*.yml 2>/dev/null | wc -l)
check "README's Configuration section has YAML examples" '[ "$n_examples" -ge 3 ]'
for f in "$T"/example*.yml; do
    "$CF" config --check "$f" 2> "$T/err"
    check "README example $(basename "$f") is a valid config" "[ $? -eq 0 ] || { cat '$T/err'; false; }"
done
printf 'fusion:\n  window: 2h\n' > "$T/ok.yml"
"$CF" config --check "$T/ok.yml"; check "config --check accepts a good file" '[ $? -eq 0 ]'
printf 'fusion:\n  window: 2x\n' > "$T/ko.yml"
"$CF" config --check "$T/ko.yml" 2> "$T/err"
check "config --check refuses a bad one with exit 2" '[ $? -eq 2 ] && grep -q "fusion.window" "$T/err"'

finish config
