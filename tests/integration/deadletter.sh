#!/usr/bin/env bash
# deadletter.sh - `chainfuse deadletter list|replay` on a dead-letter file
# holding both kinds of dead letters: input lines `chainfuse run` could
# not process, and output records a webhook receiver refused
# (tests/tools/webhook_receiver, fed through tests/tools/webhook_feed).
#   1. list: one line per dead letter with kind, origin and reason, and
#      counts; --kind and --reason select.
#   2. replay to a receiver that now accepts: the refused records arrive,
#      signed, in order, with the webhook-id they had; the input lines are
#      said not to be replayable; exit 0.
#   3. replay to a receiver that still refuses: exit 1, the records are in
#      the new dead-letter file, the original file is unchanged.
#   4. replay to a file: the records byte for byte.
#   5. usage errors; no secret in anything printed.
# Run by CTest as `bash deadletter.sh <chainfuse binary>`.
set -u
BIN=${1:?usage: deadletter.sh <path-to-chainfuse>}
BUILD=${CF_BINARY_DIR:-$(dirname "$BIN")}
SRC=${CF_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$(dirname "${BASH_SOURCE[0]}")/../tools/webhook_test.sh"
export CHAINFUSE_WEBHOOK_SECRET="$OLD $NEW"

# Input dead letters: two lines `chainfuse run` cannot process.
printf '{"a":1}\nnot json\n{"b":\n' > "$TMP/events.jsonl"
"$BIN" run --rules "$SRC/tests/golden/numeric/rules" --input "$TMP/events.jsonl" \
    --output "$TMP/run.out" --dead-letter "$TMP/input.dead.jsonl" 2> "$TMP/run.err"
# Output dead letters: three versions of incident inc-1 refused (422).
cat > "$TMP/records.jsonl" <<'EOF'
{"kind":"alert","id":"al-1","severity":"high","tactics":["execution"],"rule":{"title":"one"}}
{"kind":"incident","id":"inc-1","version":1,"status":"new","severity":"high","score":40}
{"kind":"alert","id":"al-2","severity":"low","tactics":[]}
{"kind":"incident","id":"inc-1","version":2,"status":"updated","severity":"high","score":60}
{"kind":"incident","id":"inc-1","version":3,"status":"closed","severity":"critical","score":80}
EOF
receiver refusing "$OLD" "reject inc-1"
"$FEED" "http://127.0.0.1:$PORT/hook" "$TMP/records.jsonl" "$TMP/output.dead.jsonl" \
    > "$TMP/feed.out" 2>&1
check "the feeder ran" test $? -eq 0
cat "$TMP/input.dead.jsonl" "$TMP/output.dead.jsonl" > "$TMP/dead.jsonl"
cp "$TMP/dead.jsonl" "$TMP/dead.orig"
check "the file holds 2 input and 3 output dead letters" \
    test "$(wc -l < "$TMP/input.dead.jsonl")" -eq 2 -a "$(wc -l < "$TMP/output.dead.jsonl")" -eq 3

# 1. list
"$BIN" deadletter list "$TMP/dead.jsonl" > "$TMP/list.out" 2> "$TMP/list.err"
check "list: exit 0" test $? -eq 0
check "list: one line per dead letter, kind and origin and reason" \
    test "$(grep -cE '^[0-9]+ +input +.*events.jsonl:[23] ' "$TMP/list.out")" -eq 2 \
         -a "$(grep -cE '^[0-9]+ +incident +.*records.jsonl:[245] +output http://127.0.0.1:[0-9]+/hook: HTTP 422, not retried \[inc-1 v[123]\]' "$TMP/list.out")" -eq 3
check "list: the summary says what can and cannot be replayed" \
    grep -q '^5 dead letters: 3 output records that `chainfuse deadletter replay` can send again, 2 input lines that cannot be replayed' "$TMP/list.out"
"$BIN" deadletter list "$TMP/dead.jsonl" --kind input > "$TMP/list.input" 2>&1
"$BIN" deadletter list "$TMP/dead.jsonl" --reason 'HTTP 422' > "$TMP/list.422" 2>&1
check "list: --kind and --reason select" \
    test "$(grep -cE '^[0-9]+ +input ' "$TMP/list.input")" -eq 2 -a "$(grep -cE '^[0-9]+ +incident ' "$TMP/list.422")" -eq 3 -a "$(grep -cE '^[0-9]+ +(input|incident) ' "$TMP/list.input" "$TMP/list.422" | awk -F: '{s+=$2} END {print s}')" -eq 5
printf 'garbage\n' >> "$TMP/list.extra"; cat "$TMP/dead.jsonl" >> "$TMP/list.extra"
"$BIN" deadletter list "$TMP/list.extra" > /dev/null 2> "$TMP/list.extra.err"
check "list: a line that is not a dead letter is said" \
    grep -q '1 line of .* is not a dead-letter record' "$TMP/list.extra.err"

# The engine words an output's refusal "output NAME: why" and keeps the
# record in "line".
jq -c '{kind:"dead-letter", reason:"output paging: delivery failed", source:"events.jsonl", offset:9, line:tojson}' \
    <(head -1 "$TMP/records.jsonl") > "$TMP/engine.dead.jsonl"
"$BIN" deadletter list "$TMP/engine.dead.jsonl" > "$TMP/engine.list" 2>&1
check "list: an engine-worded output dead letter is an alert to replay" \
    grep -qE '^1 +alert +events.jsonl:9 +output paging: delivery failed \[al-1 v1\]' "$TMP/engine.list"

# 2. replay to a receiver that accepts (it knows only the new secret)
receiver healthy "$NEW"
(cd "$TMP" && "$BIN" deadletter replay dead.jsonl --output "http://127.0.0.1:$PORT/hook") \
    > "$TMP/replay.out" 2> "$TMP/replay.err"
check "replay: exit 0" test $? -eq 0
check "replay: the three versions arrive in order, signed, with their webhook-id" \
    test "$(jq -r '[.webhook_id, .verified, .answered] | @tsv' "$TMP/healthy.log" | tr '\t\n' ' ;')" \
       = "inc-1_v1 true 200;inc-1_v2 true 200;inc-1_v3 true 200;"
check "replay: the bodies are the records refused" \
    cmp -s <(jq -r .body "$TMP/healthy.log") <(grep inc-1 "$TMP/records.jsonl")
check "replay: says the input lines cannot be replayed to an output" \
    grep -q '2 input lines skipped: .*cannot be replayed to an output' "$TMP/replay.err"
check "replay: nothing refused, no new dead-letter file" \
    test ! -e "$TMP/chainfuse-deadletter-replay.jsonl"

# 3. replay to a receiver that still refuses
PORT=$(cat "$TMP/refusing.port")
"$BIN" deadletter replay "$TMP/dead.jsonl" --output "http://127.0.0.1:$PORT/hook" \
    --dead-letter "$TMP/again.jsonl" > /dev/null 2> "$TMP/again.err"
check "replay refused: exit 1" test $? -eq 1
check "replay refused: the records are dead-lettered again, with their position" \
    test "$(jq -c 'select(.output=="webhook" and .record_kind=="incident" and .id=="inc-1" and .offset>0)' "$TMP/again.jsonl" | wc -l)" -eq 3
check "replay refused: the summary says so" \
    grep -q '0 records sent to http://127.0.0.1:[0-9]*/hook, 3 refused again (in ' "$TMP/again.err"
check "replay: the dead-letter file read is unchanged" cmp -s "$TMP/dead.jsonl" "$TMP/dead.orig"

# 4. replay to a file
"$BIN" deadletter replay "$TMP/dead.jsonl" --output - --kind incident \
    --dead-letter "$TMP/unused.jsonl" > "$TMP/file.out" 2> /dev/null
check "replay to a file: the records byte for byte" \
    cmp -s "$TMP/file.out" <(grep inc-1 "$TMP/records.jsonl")

# 5. usage and secrets
"$BIN" deadletter replay "$TMP/dead.jsonl" > /dev/null 2>&1
check "replay without --output: usage error" test $? -eq 2
"$BIN" deadletter replay "$TMP/dead.jsonl" --output - --dead-letter "$TMP/dead.jsonl" > /dev/null 2>&1
check "replay into the file it reads: usage error" test $? -eq 2
"$BIN" deadletter frobnicate "$TMP/dead.jsonl" > /dev/null 2>&1
check "unknown subcommand: usage error" test $? -eq 2
CHAINFUSE_WEBHOOK_SECRET=whsec_nope-$OLD "$BIN" deadletter replay "$TMP/dead.jsonl" \
    --output "http://127.0.0.1:$PORT/hook" > /dev/null 2> "$TMP/badsecret.err"
check "a bad secret is refused without being printed" \
    test $? -eq 1 -a "$(grep -c 'is not `whsec_`' "$TMP/badsecret.err")" -eq 1
check "no secret in anything written" \
    secrets_absent "$TMP"/*.out "$TMP"/*.err "$TMP"/*.jsonl
exit $fail
