#!/usr/bin/env bash
# correlation_generate.sh CHAINFUSE - Sigma correlation `generate`: the
# rules a correlation refers to are written as alerts on their own only
# when a correlation using them says `generate: true` (the specification's
# default is the correlation alone).  Checks a rule two correlations share
# with different `generate` values, a high-level rule only a correlation
# uses (hidden, warned about by `check`), a correlation chained into
# another, what is counted, and that hidden alerts still feed correlations
# and incidents.
set -uo pipefail
CF="$1"
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"

R="$T/rules"
mkdir -p "$R"
base() { # file name title level image tactic
  cat > "$R/$1.yml" <<Y
title: $3
name: $2
id: 7b0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f$1
level: $4
tags: [attack.$6]
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\\$5'
  condition: selection
Y
}
corr() { # file name title level type rules gte [generate]
  cat > "$R/$1.yml" <<Y
title: $3
name: $2
id: 7b0ab8f1-0c46-4b2f-a4b5-3b3a0e3c1f$1
level: $4
correlation:
  type: $5
  rules: [$6]
  group-by: [Computer]
  timespan: 5m
  condition: {gte: $7}
${8:+generate: $8}
Y
}
base 01 whoami_run "Whoami Run" low whoami.exe discovery
base 02 net_user_run "Net User Run" high net.exe discovery
base 03 hostname_run "Hostname Run" medium hostname.exe execution
corr 11 two_whoami "Two Whoami" medium event_count whoami_run 2          # generate unset
corr 12 three_whoami "Three Whoami" medium event_count whoami_run 3 true # generate: true
corr 13 two_net_user "Two Net User" high event_count net_user_run 2 false
corr 14 net_then_whoami "Net User Burst Then Whoami" critical temporal "two_net_user, whoami_run" 2

ev() { printf '{"Channel":"Microsoft-Windows-Sysmon/Operational","EventID":1,"Computer":"ws1.corp.local","User":"CORP\\\\bob","Image":"C:\\\\Windows\\\\System32\\\\%s","UtcTime":"2026-11-02 08:%s.000"}\n' "$1" "$2"; }
{
  ev whoami.exe 00:01; ev whoami.exe 00:02; ev whoami.exe 00:03
  ev net.exe 00:04; ev net.exe 00:05
  ev hostname.exe 02:00
} > "$T/ev.jsonl"

"$CF" check --rules "$R" --json > "$T/check.json" 2>"$T/err"
"$CF" check --rules "$R" > "$T/check.txt" 2>>"$T/err"
only() { jq -c '[.correlation_only[].title] | sort' "$T/check.json"; }
check "check lists the rules only correlations use" '[ "$(only)" = "[\"Net User Run\",\"Two Net User\"]" ]'
check "... not one that a generate: true correlation also uses" '! grep -q "^Whoami Run\|warning: Whoami Run" "$T/check.txt"'
check "... naming the correlations that use each" 'jq -e ".correlation_only[] | select(.title == \"Net User Run\") | .correlations == [\"Two Net User\"]" "$T/check.json" >/dev/null'
check "... warning when its level says it matters alone" 'jq -e "[.correlation_only[] | select(.warning)] | length == 2" "$T/check.json" >/dev/null && grep -q "^warning: Net User Run (.*02.yml, high) only feeds correlations: .Two Net User. does not set generate: true" "$T/check.txt"'
check "... and counting them" 'grep -q "^2 rules only feed correlations (no generate: true)" "$T/check.txt"'

"$CF" run --rules "$R" --input "$T/ev.jsonl" --output "$T/out.jsonl" --stats "$T/stats.json" 2>"$T/run.err"
n() { jq -s --arg t "$1" 'map(select(.kind == "alert" and .rule.title == $t)) | length' "$T/out.jsonl"; }
check "a rule shared by a generate: true and a default correlation is written" '[ "$(n "Whoami Run")" = 3 ]'
check "a rule only a default correlation uses is not written" '[ "$(n "Net User Run")" = 0 ]'
check "... nor is generate: false on a correlation chained into another" '[ "$(n "Two Net User")" = 0 ]'
check "... yet both feed correlations: the chain still fires" '[ "$(n "Net User Burst Then Whoami")" = 1 ] && [ "$(n "Two Whoami")" = 1 ] && [ "$(n "Three Whoami")" = 1 ]'
check "a rule no correlation uses is written" '[ "$(n "Hostname Run")" = 1 ]'
check "what is not written is counted" 'jq -e ".alerts == 6 and .correlation_alerts == 4 and .ungenerated_alerts == 3" "$T/stats.json" >/dev/null'
check "... and said on the summary line" 'grep -q "6 alerts (+4 from correlations, 0 suppressed, 3 only for correlations)" "$T/run.err"'
check "hidden alerts still join the incident as context" 'jq -s -e "[.[] | select(.kind == \"incident\")] | last | [.rules[].title] | index(\"Net User Run\") != null" "$T/out.jsonl" >/dev/null'

# The specification's default alone: without the generate: true
# correlation, its base rule is no longer written either.
rm "$R/12.yml"
"$CF" run --rules "$R" --input "$T/ev.jsonl" --output "$T/out2.jsonl" 2>/dev/null
check "without generate: true anywhere, the shared rule is not written" '[ "$(jq -s "map(select(.kind == \"alert\" and .rule.title == \"Whoami Run\")) | length" "$T/out2.jsonl")" = 0 ]'

finish correlation_generate
