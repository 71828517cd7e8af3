#!/usr/bin/env bash
# webhook_run.sh - `chainfuse run` itself writing to a webhook that fails,
# stalls and recovers (issue 10, fault test 2, through the engine).
#
# The OTRF LSASS campaign recording with the stock SigmaHQ rules, run
# three times: to a file (the uninterrupted run); with `--output URL`
# beside `--output FILE` while tests/tools/webhook_receiver answers 500,
# stalls past the timeout, answers 429 and refuses one alert for good;
# and from a configuration whose `outputs:` item sends only incidents to
# the webhook, with options.  Checked: every record reaches the receiver
# once its turn comes (the file output is not held up), signatures
# verify, incident versions arrive in order, the final incidents equal the
# uninterrupted run's, the refused alert is in the dead-letter file and
# counted, `deadletter replay` then delivers it, and no secret is printed.
# Run by CTest as `bash webhook_run.sh <chainfuse binary>`.
set -u
BIN=${1:?usage: webhook_run.sh <path-to-chainfuse>}
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
BUILD=${CF_BINARY_DIR:-$(dirname "$BIN")}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../tools/webhook_test.sh"
ZIP=$SHARED/data/otrf/datasets/compound/LSASS_campaign_01/metasploit_logonpasswords_lsass_memory_dump.zip
if [ ! -f "$ZIP" ] || [ ! -d "$SHARED/data/sigma/rules" ]; then
    shared_missing "$ZIP or $SHARED/data/sigma/rules"
fi
export CHAINFUSE_WEBHOOK_SECRET="$OLD $NEW"
unzip -p "$ZIP" > "$TMP/events.jsonl"
run() { # run NAME ARGS...: chainfuse run on the recording
    local name=$1; shift
    "$BIN" run --rules "$SHARED/data/sigma/rules" --input "$TMP/events.jsonl" \
        --dead-letter "$TMP/$name.dead.jsonl" --stats "$TMP/$name.stats.json" \
        "$@" > "$TMP/$name.out" 2> "$TMP/$name.err"
}
if ! run file --output "$TMP/records.jsonl"; then
    echo "FAIL: chainfuse run failed:"; tail -5 "$TMP/file.err"; exit 1
fi
# The bodies acknowledged, as sent (raw), one per line.
delivered() { jq -r 'select(.answered>=200 and .answered<300) | .body' "$1" | sort -u; }
final_incidents() {
    jq -c 'select(.answered==200 and .kind=="incident")' "$1" |
        jq -s -c 'group_by(.id) | map(max_by(.version)) | .[] | [.id, .version, .body]'
}
in_order() { # no incident version before the one before it
    test "$(jq -s -c '[.[] | select(.kind=="incident")] | group_by(.id) | map(sort_by(.n) | map(.version)) | map(select(. != sort)) | length' "$1")" -eq 0
}

# Command line: the webhook beside a file.
REJECT=$(jq -r 'select(.kind=="alert") | .id' "$TMP/records.jsonl" | sort -u | sed -n 7p)
receiver cli "$NEW" "$(printf '500 25\nstall:1500 4\n429:1 3\nreject %s' "$REJECT")"
URL="http://127.0.0.1:$PORT/hooks/chainfuse"
run cli --output "$URL" --output "$TMP/cli.records.jsonl"
check "command line: the run succeeds" test $? -eq 0
sleep 2 # a stalled request is logged when its stall (1.5 s) ends
L=$TMP/cli.log
check "command line: the receiver failed, stalled and throttled" \
    test "$(jq -c 'select(.answered==500)' "$L" | wc -l)" -eq 25 \
         -a "$(jq -c 'select(.stalled_ms > 0)' "$L" | wc -l)" -eq 4 \
         -a "$(jq -c 'select(.answered==429)' "$L" | wc -l)" -eq 3
check "command line: every request verifies (new secret)" \
    test "$(jq -c 'select(.verified|not)' "$L" | wc -l)" -eq 0
check "command line: every record but the refused one delivered" \
    cmp -s <(delivered "$L") <(grep -vF "{\"kind\":\"alert\",\"id\":\"$REJECT\"" "$TMP/records.jsonl" | sort -u)
check "command line: the file output got every record" \
    cmp -s "$TMP/cli.records.jsonl" "$TMP/records.jsonl"
check "command line: incident versions arrive in order" \
    in_order "$L"
check "command line: the final incidents are the uninterrupted run's" \
    cmp -s <(final_incidents "$L") \
           <(jq -R -c 'fromjson as $r | select($r.kind=="incident") | [$r.id, $r.version, .]' "$TMP/records.jsonl" | jq -s -c 'group_by(.[0]) | map(max_by(.[1])) | .[]')
check "command line: the refused alert is dead-lettered with the reason" \
    test "$(jq -c --arg r "$REJECT" 'select((.line|fromjson|.id)==$r and (.reason|test("^output http://127.0.0.1:[0-9]+/hooks/chainfuse: HTTP 422, not retried$")))' "$TMP/cli.dead.jsonl" | wc -l)" -eq 1 \
         -a "$(wc -l < "$TMP/cli.dead.jsonl")" -eq 1
check "command line: --stats counts it" \
    test "$(jq '.dead_lettered' "$TMP/cli.stats.json")" -eq 1

# Replay the dead letter once the receiver has stopped refusing it.
receiver later "$OLD"
"$BIN" deadletter replay "$TMP/cli.dead.jsonl" --output "http://127.0.0.1:$PORT/x" \
    --dead-letter "$TMP/replay.again.jsonl" > "$TMP/replay.out" 2> "$TMP/replay.err"
check "replay: the refused alert arrives, with the webhook-id it had" \
    test "$?" -eq 0 -a "$(jq -r '[.webhook_id, .verified, .answered] | @tsv' "$TMP/later.log")" = \
         "$(printf '%s_v1\ttrue\t200' "$REJECT")"

# Configuration: only incidents, with options.
receiver yaml "$NEW" "500 5"
cat > "$TMP/config.yaml" <<YAML
outputs:
  - url: http://127.0.0.1:$PORT/incidents
    kinds: [incident]
    secret_env: CHAINFUSE_WEBHOOK_SECRET
    timeout: 2s
    backoff: 100ms
    concurrency: 2
    headers: ["X-Team: soc"]
YAML
run yaml --config "$TMP/config.yaml"
check "config: the run succeeds" test $? -eq 0
check "config: only incidents, all of them, verified, in order" \
    test "$(delivered "$TMP/yaml.log" | wc -l)" -eq "$(jq -c 'select(.kind=="incident")' "$TMP/records.jsonl" | sort -u | wc -l)" \
         -a "$(jq -c 'select(.kind != "incident" or (.verified|not))' "$TMP/yaml.log" | wc -l)" -eq 0
check "config: incident versions in order" in_order "$TMP/yaml.log"
check "no secret in anything written" \
    secrets_absent "$TMP"/*.out "$TMP"/*.err "$TMP"/*.dead.jsonl "$TMP"/*.stats.json
exit $fail
