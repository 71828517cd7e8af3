#!/usr/bin/env bash
# cli.sh CHAINFUSE - the command line as a user meets it: help, version,
# usage errors, `check --json`, and `run` with bad input going to the
# dead-letter file while good input is processed.
set -uo pipefail
CF="$1"
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"

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
  echo '{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Hostname":"WS1","Image":"C:\\\\Windows\\\\System32\\\\whoami.exe","UtcTime":"2023-08-16 04:54:31.123"}'
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
check "missing config file is a usage error naming it" '[ $rc -eq 2 ] && grep -q "nope.yml" "$T/err"'


# ---- Silent failure modes, tried as a new user would -------------------

# Usage errors name the command and the offending argument.
"$CF" run --frob 2>"$T/err"; rc=$?
check "unknown option exits 2 and names the command" '[ $rc -eq 2 ] && grep -q "^chainfuse run: unrecognized option .--frob." "$T/err"'
"$CF" check --rules 2>"$T/err"; rc=$?
check "option without its argument exits 2" '[ $rc -eq 2 ] && grep -q "^chainfuse check: option .--rules. requires an argument" "$T/err"'
"$CF" run --rules "$T/rules" "$T/events.jsonl" 2>"$T/err"; rc=$?
check "a stray argument is named, with a hint at --input" '[ $rc -eq 2 ] && grep -q "unexpected argument .$T/events.jsonl." "$T/err" && grep -q -- "--input" "$T/err"'

# No rule loaded is an error naming the cause; nothing is read or written.
mkdir -p "$T/empty" "$T/onlybroken"
cp "$T/rules/sub/broken.yaml" "$T/onlybroken/"
: > "$T/emptyrule.yml"
"$CF" run --rules "$T/empty" --input "$T/events.jsonl" --output "$T/o_empty.jsonl" --dead-letter "$T/dl_empty.jsonl" 2>"$T/err"; rc=$?
check "run with an empty rule folder exits 1" '[ $rc -eq 1 ]'
check "... and says the folder has no .yml/.yaml files" 'grep -q "no rule loaded from $T/empty: the folder has no .yml/.yaml files" "$T/err"'
check "... before reading input or creating the output" '[ ! -e "$T/o_empty.jsonl" ] && ! grep -q "events," "$T/err"'
"$CF" run --rules "$T/emptyrule.yml" --input "$T/events.jsonl" --dead-letter "$T/dl_empty.jsonl" >/dev/null 2>"$T/err"; rc=$?
check "run with an empty rule file exits 1 and says the file is empty" '[ $rc -eq 1 ] && grep -q "no rule loaded from $T/emptyrule.yml: the file is empty" "$T/err"'
"$CF" run --rules "$T/onlybroken" --input "$T/events.jsonl" --dead-letter "$T/dl_empty.jsonl" >/dev/null 2>"$T/err"; rc=$?
check "run with every rule rejected exits 1" '[ $rc -eq 1 ]'
check "... and says all were rejected and how to see why" 'grep -q "no rule loaded: all rules were rejected" "$T/err" && grep -q "nosuchmodifier" "$T/err" && grep -q "chainfuse check --rules $T/onlybroken" "$T/err"'
"$CF" check --rules "$T/empty" >"$T/out_check" 2>"$T/err"; rc=$?
check "check with no rule loaded reports, then exits 1" '[ $rc -eq 1 ] && grep -q "0 of 0 rules loaded" "$T/out_check" && grep -q "no rule loaded from $T/empty" "$T/err"'
"$CF" check --rules "$T/onlybroken" --json >"$T/check_rej.json" 2>"$T/err"; rc=$?
check "check --json with every rule rejected prints the report and exits 1" '[ $rc -eq 1 ] && jq -e ".rules_loaded == 0 and .rules_rejected == 1" "$T/check_rej.json" >/dev/null && grep -q "no rule loaded: all rules were rejected" "$T/err"'
"$CF" run --rules "$T/rules" --rules "$T/empty" --input "$T/events.jsonl" --config "$T/config.yml" --dead-letter "$T/dl_empty.jsonl" >/dev/null 2>"$T/err"; rc=$?
check "a --rules folder without rules beside good ones is a warning" '[ $rc -eq 0 ] && grep -q "warning: --rules $T/empty: the folder has no .yml/.yaml files" "$T/err"'

# The same rule loaded twice is an error naming both files.
"$CF" run --rules "$T/rules" --rules "$T/rules" --input "$T/events.jsonl" 2>"$T/err"; rc=$?
check "the same --rules path twice is a usage error" '[ $rc -eq 2 ] && grep -q -- "--rules $T/rules is given twice" "$T/err"'
"$CF" run --rules "$T/rules" --rules "$T/rules/" --input "$T/events.jsonl" 2>"$T/err"; rc=$?
check "... also spelled differently" '[ $rc -eq 2 ] && grep -q "is given twice" "$T/err"'
"$CF" run --rules "$T/rules" --rules "$T/rules/good.yml" --input "$T/events.jsonl" 2>"$T/err"; rc=$?
check "overlapping --rules paths load a file twice: error naming it" '[ $rc -eq 1 ] && grep -q "rule file $T/rules/good.yml is loaded twice" "$T/err"'
mkdir -p "$T/dup"
cp "$T/rules/good.yml" "$T/dup/a.yml"; cp "$T/rules/good.yml" "$T/dup/b.yml"
"$CF" run --rules "$T/dup" --input "$T/events.jsonl" >"$T/o_dup.jsonl" 2>"$T/err"; rc=$?
check "duplicate rule ids are an error naming both files" '[ $rc -eq 1 ] && grep -q "rule id 5f0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f01 is used twice: in $T/dup/a.yml and in $T/dup/b.yml" "$T/err" && [ ! -s "$T/o_dup.jsonl" ]'
"$CF" check --rules "$T/dup" >/dev/null 2>"$T/err"; rc=$?
check "check reports duplicate ids too" '[ $rc -eq 1 ] && grep -q "is used twice" "$T/err"'
mkdir -p "$T/dupcorr"
cp "$T/rules/good.yml" "$T/dupcorr/rule.yml"
for n in 1 2; do cat > "$T/dupcorr/corr$n.yml" <<R
title: Whoami twice $n
id: 6f0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f0$n
name: whoami_twice
correlation:
  type: event_count
  rules: [5f0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f01]
  group-by: [Hostname]
  timespan: 5m
  condition: {gte: 2}
R
done
"$CF" check --rules "$T/dupcorr" >/dev/null 2>"$T/err"; rc=$?
check "duplicate correlation names are an error naming both files" '[ $rc -eq 1 ] && grep -q "correlation name whoami_twice is used twice: in $T/dupcorr/corr1.yml and in $T/dupcorr/corr2.yml" "$T/err"'

# --stats: checked before any input is read; on stdout it is a record too.
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --output "$T/o_stats.jsonl" --stats /nonexistent/stats.json 2>"$T/err"; rc=$?
check "unwritable --stats fails with exit 1 before reading input" '[ $rc -eq 1 ] && grep -q -- "--stats: cannot create /nonexistent/stats.json: No such file or directory" "$T/err" && ! grep -q "events," "$T/err" && [ ! -e "$T/o_stats.jsonl" ]'
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --config "$T/config.yml" --dead-letter "$T/dl6.jsonl" --stats - >"$T/o_mixed.jsonl" 2>/dev/null; rc=$?
check "--stats - beside records on stdout: every line has a kind, stats last" '[ $rc -eq 0 ] && jq -s -e "all(has(\"kind\")) and (.[-1].kind == \"stats\") and (.[-1].events == 2) and (map(select(.kind == \"alert\")) | length == 1)" "$T/o_mixed.jsonl" >/dev/null'
check "the --stats file says what it is too" 'jq -e ".kind == \"stats\"" "$T/stats.json" >/dev/null'

# Files that cannot be opened are named with the reason.
"$CF" run --rules "$T/nonexistent" --input "$T/events.jsonl" 2>"$T/err"; rc=$?
check "run with a nonexistent --rules path exits 1 naming it" '[ $rc -eq 1 ] && grep -q -- "--rules $T/nonexistent: .*No such file or directory" "$T/err"'
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --output /nonexistent/x 2>"$T/err"; rc=$?
check "--output in a missing folder exits 1 naming it" '[ $rc -eq 1 ] && grep -q -- "--output: cannot create /nonexistent/x: No such file or directory" "$T/err"'
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --dead-letter /nonexistent/x >/dev/null 2>"$T/err"; rc=$?
check "--dead-letter in a missing folder exits 1 naming it" '[ $rc -eq 1 ] && grep -q -- "--dead-letter: cannot create /nonexistent/x: No such file or directory" "$T/err"'
"$CF" run --rules "$T/rules" --input "$T" --output "$T/o_dir.jsonl" 2>"$T/err"; rc=$?
check "--input a directory exits 1 saying so" '[ $rc -eq 1 ] && grep -q -- "--input: cannot read $T: it is a directory" "$T/err"'
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --output "$T/events.jsonl" 2>"$T/err"; rc=$?
check "--output the same file as --input is refused" '[ $rc -eq 2 ] && grep -q "same file" "$T/err" && [ "$(wc -l < "$T/events.jsonl")" -eq 8 ]'
"$CF" run --rules "$T/rules" --output "$T/events.jsonl" < "$T/events.jsonl" 2>"$T/err"; rc=$?
check "--output the file standard input reads is refused" '[ $rc -eq 2 ] && grep -q "standard input and --output $T/events.jsonl are the same file" "$T/err" && [ "$(wc -l < "$T/events.jsonl")" -eq 8 ]'
"$CF" run --rules "$T/rules" --input "$T/events.jsonl" --output "$T/same.jsonl" --dead-letter "$T/same.jsonl" 2>"$T/err"; rc=$?
check "--dead-letter the same file as --output is refused" '[ $rc -eq 2 ] && grep -q "same file" "$T/err"'

# Waiting on a terminal for events is not a hang: it says what it waits for.
if command -v script >/dev/null; then
  script -qec "'$CF' run --rules '$T/rules' --output /dev/null --dead-letter '$T/dl8.jsonl'" /dev/null </dev/null >"$T/tty" 2>&1
  check "run reading a terminal says it waits for events on stdin" 'grep -q "reading events from standard input" "$T/tty"'
fi

# A truncated .gz: the error names the file and what is wrong with it;
# what was read is processed, flushed and summarised.
for i in $(seq 1 4000); do
  printf '{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Hostname":"WS%d","Image":"C:\\\\Windows\\\\System32\\\\whoami.exe","UtcTime":"2023-08-16 04:%02d:%02d.000"}\n' $((i % 50)) $((i / 60 % 60)) $((i % 60))
done | gzip -c > "$T/many.jsonl.gz"
head -c $(( $(wc -c < "$T/many.jsonl.gz") / 2 )) "$T/many.jsonl.gz" > "$T/cut.jsonl.gz"
"$CF" run --rules "$T/rules" --input "$T/cut.jsonl.gz" --output "$T/o_cut.jsonl" --stats "$T/stats_cut.json" 2>"$T/err"; rc=$?
check "truncated .gz exits 1" '[ $rc -eq 1 ]'
check "... naming the file and what is wrong" 'grep -q "input file failed: cannot read $T/cut.jsonl.gz after line [0-9]*: unexpected end of file" "$T/err"'
check "... still printing the summary and stats" 'grep -q "chainfuse: [1-9][0-9]* events, [1-9][0-9]* alerts" "$T/err" && jq -e ".events > 0" "$T/stats_cut.json" >/dev/null'
check "... and flushing every alert it produced" 'a=$(sed -n "s/.* events, \([0-9]*\) alerts.*/\1/p" "$T/err"); [ "$(jq -s "map(select(.kind == \"alert\")) | length" "$T/o_cut.jsonl")" = "$a" ]'

# A suppression naming a correlation rule hides its alerts too.
mkdir -p "$T/corr"
cat > "$T/corr/base.yml" <<'R'
title: Whoami Run
name: whoami_run
id: 6a0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f10
level: low
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\whoami.exe'
  condition: selection
R
cat > "$T/corr/many.yml" <<'R'
title: Many Whoami
id: 6a0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f11
level: high
correlation:
  type: event_count
  rules: [whoami_run]
  group-by: [Computer]
  timespan: 5m
  condition: {gte: 3}
R
for s in 01 02 03; do
  printf '{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Computer":"ws1","Image":"C:\\\\Windows\\\\System32\\\\whoami.exe","UtcTime":"2026-11-02 08:00:%s.000"}\n' "$s"
done > "$T/corr_events.jsonl"
printf 'suppressions:\n  - rule: Many Whoami\n    reason: lab\n' > "$T/corr_supp.yml"
"$CF" run --rules "$T/corr" --input "$T/corr_events.jsonl" --output "$T/corr_plain.jsonl" 2>/dev/null
"$CF" run --rules "$T/corr" --input "$T/corr_events.jsonl" --config "$T/corr_supp.yml" --output "$T/corr_supp.jsonl" --stats "$T/corr_supp_stats.json" 2>"$T/corr_supp.err"
check "a suppression naming a loaded rule draws no warning" '! grep -q "warning: suppressions" "$T/corr_supp.err"'
printf 'suppressions:\n  - rule: Many Whoamii\n    reason: typo\n' > "$T/corr_typo.yml"
"$CF" run --rules "$T/corr" --input "$T/corr_events.jsonl" --config "$T/corr_typo.yml" --output /dev/null 2>"$T/err"; rc=$?
check "a suppression naming no loaded rule is warned about" '[ $rc -eq 0 ] && grep -q "warning: suppressions\[0\]: rule .Many Whoamii. is not the id, name or title of any loaded rule" "$T/err"'
check "a correlation alert is raised without the suppression" '[ "$(jq -s "map(select(.kind == \"alert\" and .rule.title == \"Many Whoami\")) | length" "$T/corr_plain.jsonl")" = 1 ]'
check "... and hidden and counted with it" '[ "$(jq -s "map(select(.kind == \"alert\" and .rule.title == \"Many Whoami\")) | length" "$T/corr_supp.jsonl")" = 0 ] && jq -e ".suppressed_alerts == 1" "$T/corr_supp_stats.json" >/dev/null'

# An option that takes one value refuses a second instead of keeping the last.
for opt in --input --dead-letter --stats --config; do
  "$CF" run --rules "$T/rules" "$opt" "$T/a" "$opt" "$T/b" 2>"$T/err" </dev/null; rc=$?
  check "run $opt given twice exits 2 naming both" '[ $rc -eq 2 ] && grep -q -- "$opt is given twice" "$T/err"'
done
"$CF" check --rules "$T/rules" --config "$T/a" --config "$T/b" 2>"$T/err"; rc=$?
check "check --config given twice exits 2" '[ $rc -eq 2 ] && grep -q -- "--config is given twice" "$T/err"'

# An output that cannot take the data says why.
if [ -w /dev/full ]; then
  "$CF" run --rules "$T/rules" --input "$T/events.jsonl" --config "$T/config.yml" --dead-letter "$T/dl7.jsonl" --output /dev/full 2>"$T/err"; rc=$?
  check "--output /dev/full exits 1 with the errno text" '[ $rc -eq 1 ] && grep -q "output /dev/full failed to flush: cannot write /dev/full: No space left on device" "$T/err"'
  printf 'not json\n' | "$CF" run --rules "$T/rules" --dead-letter /dev/full --output /dev/null 2>"$T/err"; rc=$?
  check "a dead letter that could not be saved is not reported as saved" '[ $rc -eq 1 ] && grep -q "1 dead-lettered but NOT saved to /dev/full" "$T/err"'
fi

# A UTF-8 byte order mark at the start of the input is not an event
# defect; one further on still is.
printf '\xef\xbb\xbf' > "$T/bom.jsonl"; head -n 2 "$T/events.jsonl" >> "$T/bom.jsonl"
"$CF" run --rules "$T/rules" --input "$T/bom.jsonl" --output "$T/o_bom.jsonl" --dead-letter "$T/dl_bom.jsonl" --stats "$T/stats_bom.json" 2>"$T/err"; rc=$?
check "a BOM at the start of the input is skipped" '[ $rc -eq 0 ] && jq -e ".events == 2 and .dead_lettered == 0 and .alerts == 1" "$T/stats_bom.json" >/dev/null'
"$CF" run --rules "$T/rules" --output /dev/null --dead-letter "$T/dl_bom1.jsonl" --stats "$T/stats_bom1.json" < "$T/bom.jsonl" 2>/dev/null
check "... on stdin too" 'jq -e ".events == 2 and .dead_lettered == 0" "$T/stats_bom1.json" >/dev/null'
printf '\xef\xbb\xbf' | cat - "$T/bom.jsonl" | "$CF" run --rules "$T/rules" --output /dev/null --dead-letter "$T/dl_bom2.jsonl" --stats "$T/stats_bom2.json" 2>/dev/null
check "... but only the first one" 'jq -e ".events == 1 and .dead_lettered == 1" "$T/stats_bom2.json" >/dev/null && jq -e ".offset == 1" "$T/dl_bom2.jsonl" >/dev/null'

# A .gz that is not gzip data is read, with a warning naming it.
cp "$T/events.jsonl" "$T/plain.jsonl.gz"
"$CF" run --rules "$T/rules" --input "$T/plain.jsonl.gz" --config "$T/config.yml" --output "$T/o_plaingz.jsonl" --dead-letter "$T/dl_plaingz.jsonl" 2>"$T/err"; rc=$?
check "a .gz that is not gzip warns once, naming the file" '[ $rc -eq 0 ] && [ "$(grep -c "warning: $T/plain.jsonl.gz ends in .gz but is not gzip data; reading it as plain text" "$T/err")" = 1 ] && [ "$(grep -c "not gzip" "$T/err")" = 1 ]'
check "... and still reads it" 'jq -s -e "map(select(.kind==\"alert\")) | length == 1" "$T/o_plaingz.jsonl" >/dev/null'
"$CF" run --rules "$T/rules" --input "$T/events.jsonl.gz" --config "$T/config.yml" --output /dev/null --dead-letter "$T/dl_realgz.jsonl" 2>"$T/err"
check "... a real .gz gives no such warning" '! grep -q "not gzip" "$T/err"'

# The line a truncated .gz stops in is dead-lettered and counted, not lost.
"$CF" run --rules "$T/rules" --input "$T/cut.jsonl.gz" --output /dev/null --dead-letter "$T/dl_cut.jsonl" --stats "$T/stats_cut2.json" 2>"$T/err"; rc=$?
cut_after=$(sed -n "s/.*cannot read .* after line \([0-9]*\):.*/\1/p" "$T/err")
check "truncated .gz: the cut line is dead-lettered as truncated input" '[ $rc -eq 1 ] && [ -n "$cut_after" ] && [ "$(wc -l < "$T/dl_cut.jsonl")" = 1 ] && jq -e --argjson n "$cut_after" ".reason == \"truncated input\" and .truncated == true and .offset == \$n + 1" "$T/dl_cut.jsonl" >/dev/null'
check "... and counted with the events, under its own reason" 'jq -e --argjson n "$cut_after" ".events == \$n and .dead_lettered == 1 and .dead_letter_reasons.truncated_input == 1 and .dead_letter_reasons.other == 0" "$T/stats_cut2.json" >/dev/null'

# A symlink loop in a rule folder is read once, with a warning, not an
# error about overlapping paths.
mkdir -p "$T/loop"
cp "$T/rules/good.yml" "$T/loop/"
ln -s ../loop "$T/loop/self"
"$CF" check --rules "$T/loop" --json > "$T/loop.json" 2>"$T/err"; rc=$?
check "a symlink loop under --rules is skipped, not an error" '[ $rc -eq 0 ] && jq -e ".rules_loaded == 1 and .rules_rejected == 0" "$T/loop.json" >/dev/null && ! grep -q "loaded twice" "$T/err"'
check "... with one warning naming the link" '[ "$(grep -c "skipping $T/loop/self: it leads back to $T/loop, already read" "$T/err")" = 1 ] && [ "$(grep -c "skipping" "$T/err")" = 1 ]'
"$CF" check --rules "$T/loop" --rules "$T/loop/good.yml" >/dev/null 2>"$T/err"; rc=$?
check "... while two overlapping --rules paths are still an error" '[ $rc -ne 0 ] && grep -q "loaded twice" "$T/err"'

finish cli
