#!/usr/bin/env bash
# cli.sh CHAINFUSE - the command line as a user meets it: help, version,
# usage errors, `check --json`, and `run` with bad input going to the
# dead-letter file while good input is processed.
set -uo pipefail
CF="$1"
command -v jq >/dev/null || { echo "SKIP: jq not installed (deploy/bootstrap.sh installs it)"; exit 77; }
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
export CHAINFUSE_CACHE_DIR="$T/cache"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

check "--version prints the version" '"$CF" --version | grep -q "^chainfuse [0-9]"'
check "--help exits 0" '"$CF" --help >/dev/null'
check "check --help exits 0" '"$CF" check --help | grep -q -- "--json"'
check "run --help exits 0" '"$CF" run --help | grep -q -- "--input"'
"$CF" frobnicate 2>/dev/null; check "unknown command exits 2" '[ $? -eq 2 ]'
"$CF" run 2>"$T/err"; rc=$?
check "run without --rules exits 2 and says why" '[ $rc -eq 2 ] && grep -q "at least one --rules" "$T/err"'

mkdir -p "$T/rules/sub"
cat > "$T/rules/good.yml" <<'R'
title: Whoami Execution
id: 5f0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f01
status: test
level: medium
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\whoami.exe'
  condition: selection
R
cat > "$T/rules/sub/broken.yaml" <<'R'
title: Broken
id: 5f0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f02
logsource: {product: windows}
detection:
  selection:
    Image|nosuchmodifier: x
  condition: selection
R
"$CF" check --rules "$T/rules" --json > "$T/check.json"; rc=$?
check "check exits 0 with rejections" '[ $rc -eq 0 ]'
check "check --json counts" 'jq -e ".rules_total == 2 and .rules_loaded == 1 and .rules_rejected == 1" "$T/check.json" >/dev/null'
check "rejection names path, id and reason" 'jq -e ".rejected[0] | (.path | endswith(\"broken.yaml\")) and .id == \"5f0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f02\" and (.reason | test(\"nosuchmodifier\"))" "$T/check.json" >/dev/null'
"$CF" check --rules "$T/nonexistent" >/dev/null 2>"$T/err"; rc=$?
check "unreadable --rules path is an error" '[ $rc -ne 0 ] && grep -q nonexistent "$T/err"'

# Events: two good ones (one matches), then bad lines of every kind.
{
  echo '{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Hostname":"WS1","Image":"C:\\Windows\\System32\\whoami.exe","UtcTime":"2023-08-16 04:54:31.123"}'
  echo '{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Hostname":"WS1","Image":"C:\\Windows\\System32\\notepad.exe","UtcTime":"2023-08-16 04:54:32.000"}'
  echo 'this is not json'
  echo '{"Channel":"Security","EventID":4624,'
  printf '{"Channel":"Security","Bad":"\xff\xfe"}\n'
  echo '{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}'
  printf '{"Long":"%s"}\n' "$(head -c 5000 /dev/zero | tr '\0' x)"
  echo '[1,2,3]'
} > "$T/events.jsonl"
cat > "$T/config.yml" <<'C'
input:
  max_line_bytes: 2048
  max_depth: 4
C
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --output "$T/out.jsonl" \
    --config "$T/config.yml" --dead-letter "$T/dl.jsonl" --stats "$T/stats.json" 2>"$T/err"; rc=$?
check "run exits 0 despite bad lines" '[ $rc -eq 0 ]'
check "one alert for the whoami event" 'jq -s -e "map(select(.kind==\"alert\")) | length == 1" "$T/out.jsonl" >/dev/null'
check "alert carries rule, tactics, entities, input position, event" 'jq -s -e "map(select(.kind==\"alert\"))[0] | .rule.id == \"5f0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f01\" and .tactics == [\"discovery\"] and .techniques == [\"T1033\"] and .entities.host == \"WS1\" and .input.offset == 1 and .event.EventID == 1 and .time == \"2023-08-16T04:54:31.123Z\"" "$T/out.jsonl" >/dev/null'
check "six dead letters" '[ "$(wc -l < "$T/dl.jsonl")" -eq 6 ]'
check "dead letters name their reasons and lines" 'jq -s -e "map(.offset) == [3,4,5,6,7,8] and (map(.reason) | all(length > 0))" "$T/dl.jsonl" >/dev/null'
check "invalid UTF-8 is its own reason" 'jq -s -e "map(select(.offset==5))[0].reason | test(\"UTF-8\")" "$T/dl.jsonl" >/dev/null'
check "depth limit is its own reason" 'jq -s -e "map(select(.offset==6))[0].reason | test(\"depth\")" "$T/dl.jsonl" >/dev/null'
check "line length limit is its own reason" 'jq -s -e "map(select(.offset==7))[0].reason | test(\"max_line_bytes\")" "$T/dl.jsonl" >/dev/null'
check "stats count events and dead letters" 'jq -e ".events == 2 and .dead_lettered == 6 and .alerts == 1" "$T/stats.json" >/dev/null'
check "summary on stderr mentions the dead-letter file" 'grep -q "6 dead-lettered to $T/dl.jsonl" "$T/err"'

# A suppression from the config hides the alert from the output and is
# counted.
cat > "$T/suppress.yml" <<'C'
suppressions:
  - rule: 5f0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f01
    entity: {host: ws1}
    reason: admins run whoami on WS1
    expires: 2030-01-01T00:00:00Z
C
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --config "$T/suppress.yml" \
    --dead-letter "$T/dl5.jsonl" --stats "$T/stats2.json" > "$T/out2.jsonl" 2>/dev/null
check "suppressed alert is not output" '! grep -q "\"kind\":\"alert\"" "$T/out2.jsonl"'
check "suppressed alert is counted" 'jq -e ".suppressed_alerts == 1 and .alerts == 1" "$T/stats2.json" >/dev/null'

# Same alert id on a replay; gzip and stdin inputs give the same alerts.
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --config "$T/config.yml" --dead-letter "$T/dl2.jsonl" 2>/dev/null | jq -c 'select(.kind=="alert") | .id' > "$T/ids1"
gzip -c "$T/events.jsonl" > "$T/events.jsonl.gz"
"$CF" run --rules "$T/rules" --input "$T/events.jsonl.gz" --config "$T/config.yml" --dead-letter "$T/dl3.jsonl" 2>/dev/null | jq -c 'select(.kind=="alert") | .id' > "$T/ids2"
"$CF" run --rules "$T/rules" --config "$T/config.yml" --dead-letter "$T/dl4.jsonl" < "$T/events.jsonl" 2>/dev/null | jq -c 'select(.kind=="alert") | .id' > "$T/ids3"
check "alert ids are stable across replays" '[ -s "$T/ids1" ] && cmp -s "$T/ids1" <(jq -s -r "map(select(.kind==\"alert\") | .id)[]" "$T/out.jsonl" | sed "s/.*/\"&\"/")'
check ".gz input gives the same alerts" 'cmp -s "$T/ids1" "$T/ids2"'
check "stdin input gives the same alerts" 'cmp -s "$T/ids1" "$T/ids3"'
"$CF" run --rules "$T/rules" --input "$T/nope.jsonl" 2>"$T/err"; rc=$?
check "missing input file is a clear error" '[ $rc -eq 1 ] && grep -q "nope.jsonl" "$T/err"'
"$CF" run --rules "$T/rules" --config "$T/nope.yml" --input "$T/events.jsonl" 2>"$T/err"; rc=$?
check "missing config file is a clear error" '[ $rc -eq 1 ] && grep -q "nope.yml" "$T/err"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
