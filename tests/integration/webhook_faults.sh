#!/usr/bin/env bash
# webhook_faults.sh - the webhook output against a real receiver that
# fails, stalls and recovers (issue 10, fault test 2).
#
# The records are what `chainfuse run` writes for the OTRF LSASS
# campaign recording with the stock SigmaHQ rules (alerts, and eleven
# versions of one incident).  They go through the webhook output
# (tests/tools/webhook_feed drives it as the engine does) to
# tests/tools/webhook_receiver, which verifies every Standard Webhooks
# signature with its own HMAC code and can be told to misbehave.
#   1. Uninterrupted: every record arrives once, signed with both
#      secrets (rotation), and verifies.
#   2. Faults: 500s, then requests stalled past the timeout, then 429
#      with Retry-After, then recovery, with two alerts answered 422 for
#      good and fewer records allowed in flight than the input holds.
#      Every other record arrives (compared with run 1), each incident
#      version only after the one before it, Retry-After is honoured, the
#      receiver that knows only the new secret verifies everything, and
#      the two refused alerts, and only they, are in the dead-letter file
#      with the record itself.
#   3. A receiver with another secret answers 401: every record is
#      dead-lettered, none is lost.
#   4. Gave up: a receiver answering 503 forever, and no receiver at all,
#      exhaust max_attempts; a Retry-After past max_age gives up at once.
#   5. TLS: a receiver's self-signed certificate is refused by default,
#      accepted with ca_file naming it or with tls_verify: false.
#   6. No secret appears in anything chainfuse printed or wrote.
# Run by CTest as `bash webhook_faults.sh <chainfuse binary>`.
set -u
BIN=${1:?usage: webhook_faults.sh <path-to-chainfuse>}
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
BUILD=${CF_BINARY_DIR:-$(dirname "$BIN")}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../tools/webhook_test.sh"
ZIP=$SHARED/data/otrf/datasets/compound/LSASS_campaign_01/metasploit_logonpasswords_lsass_memory_dump.zip
if [ ! -f "$ZIP" ] || [ ! -d "$SHARED/data/sigma/rules" ]; then
    shared_missing "$ZIP or $SHARED/data/sigma/rules"
fi
OTHER=whsec_c2VjcmV0LW9mLWFub3RoZXItcmVjZWl2ZXItIQ==
export CHAINFUSE_WEBHOOK_SECRET="$OLD $NEW"

# feed NAME PORT [OPTIONS_JSON]: sends the records, prints the summary.
feed() {
    local name=$1 port=$2
    shift 2
    if [ $# -gt 0 ]; then
        printf '%s' "$1" > "$TMP/$name.opts.json"
        set -- "$TMP/$name.opts.json"
    fi
    "$FEED" "http://127.0.0.1:$port/hooks/chainfuse" "$TMP/${RECORDS:-records.jsonl}" \
        "$TMP/$name.dead.jsonl" "$@" > "$TMP/$name.out" 2> "$TMP/$name.err" ||
        { echo "FAIL: webhook_feed ($name) exited $?:"; tail -5 "$TMP/$name.err"; fail=1; }
}

unzip -p "$ZIP" > "$TMP/events.jsonl"
if ! "$BIN" run --rules "$SHARED/data/sigma/rules" --input "$TMP/events.jsonl" \
        --output "$TMP/records.jsonl" --dead-letter "$TMP/run.dead.jsonl" \
        2> "$TMP/run.err"; then
    echo "FAIL: chainfuse run failed:"; tail -5 "$TMP/run.err"; exit 1
fi
total=$(wc -l < "$TMP/records.jsonl")
incident_versions=$(jq -c 'select(.kind=="incident")' "$TMP/records.jsonl" | wc -l)
echo "records: $total ($incident_versions incident versions)"
check "the run gives alerts and several versions of an incident" \
    test "$total" -gt 100 -a "$incident_versions" -gt 2

# What the receiver acknowledged: one line per webhook-id, its body.
delivered() { jq -c 'select(.answered>=200 and .answered<300) | [.webhook_id, .body]' "$1" | sort -u; }
# The final version of every incident delivered, as [id, version, body].
final_incidents() {
    jq -c 'select(.answered==200 and .kind=="incident")' "$1" |
        jq -s -c 'group_by(.id) | map(max_by(.version)) | .[] | [.id, .version, .body]'
}

# 1. Uninterrupted.
receiver clean "$OLD $NEW"
feed clean "$PORT"
check "uninterrupted: every record delivered once" \
    test "$(delivered "$TMP/clean.log" | wc -l)" -eq "$(sort -u "$TMP/records.jsonl" | wc -l)" \
         -a "$(wc -l < "$TMP/clean.log")" -eq "$total"
check "uninterrupted: both signatures verify for every request" \
    test "$(jq -c 'select(.verified and .matched==[0,1] and .content_type=="application/json")' "$TMP/clean.log" | wc -l)" -eq "$total"
check "uninterrupted: bodies are the records, byte for byte" \
    cmp -s <(jq -r .body "$TMP/clean.log" | sort) <(sort "$TMP/records.jsonl")
check "uninterrupted: webhook-id is <id>_v<version>" \
    test "$(jq -c 'select(.webhook_id != "\(.id)_v\(if .kind=="alert" then 1 else .version end)")' "$TMP/clean.log" | wc -l)" -eq 0

# 2. Faults.  Two alerts are refused for good.
mapfile -t REJECT < <(jq -r 'select(.kind=="alert") | .id' "$TMP/records.jsonl" | sort -u | sed -n '5p;40p')
receiver faulty "$NEW" "$(printf '500 25\nstall:1500 6\n429:2 4\nreject %s\nreject %s' "${REJECT[@]}")"
start=$(date +%s)
feed faulty "$PORT" '{"secret_env":"CHAINFUSE_WEBHOOK_SECRET","timeout":"500ms",
  "backoff":"100ms","max_backoff":"1s","max_attempts":30,"max_age":"5m",
  "concurrency":4,"max_pending":32,"headers":["X-Chainfuse-Test: faults"]}'
echo "faulty run: $(cat "$TMP/faulty.out") in $(( $(date +%s) - start )) s"
sleep 2 # a stalled request is logged when its stall (1.5 s) ends
L=$TMP/faulty.log
check "faults: the receiver answered 500, stalled and answered 429" \
    test "$(jq -c 'select(.answered==500)' "$L" | wc -l)" -eq 25 \
         -a "$(jq -c 'select(.answered==429)' "$L" | wc -l)" -eq 4 \
         -a "$(jq -c 'select(.answered==422)' "$L" | wc -l)" -ge 2
check "faults: each request stalled past the timeout was sent again" \
    test "$(jq -s -c '[.[] | select(.stalled_ms > 0) | .webhook_id] as $s | [.[] | select(.webhook_id as $w | $s | index($w))] | group_by(.webhook_id) | map(select(length < 2)) | length' "$L")" -eq 0 \
         -a "$(jq -c 'select(.stalled_ms > 0)' "$L" | wc -l)" -eq 6
check "faults: the output made the engine wait (write answered RETRY)" \
    grep -q 'retries [1-9]' "$TMP/faulty.out"
check "faults: every request verifies with the new secret alone" \
    test "$(jq -c 'select(.verified and .matched==[0])' "$L" | wc -l)" -eq "$(wc -l < "$L")"
jq -c --arg a "${REJECT[0]}" --arg b "${REJECT[1]}" \
    'select(.[1] | fromjson | .id != $a and .id != $b)' \
    <(delivered "$TMP/clean.log") > "$TMP/expected.txt"
check "faults: every record not refused is delivered, as in the uninterrupted run" \
    cmp -s "$TMP/expected.txt" <(delivered "$L")
check "faults: the final version of every incident is the uninterrupted run's" \
    cmp -s <(final_incidents "$TMP/clean.log") <(final_incidents "$L")
check "faults: no incident version arrives before the one before it" \
    test "$(jq -s -c '[.[] | select(.kind=="incident")] | group_by(.id) | map(sort_by(.n) | map(.version)) | map(select(. != sort)) | length' "$L")" -eq 0
# A record answered 429 (Retry-After: 2) is not tried again sooner.
check "faults: Retry-After is honoured" \
    test "$(jq -s -c 'group_by(.webhook_id) | map(sort_by(.n)) | map(. as $a | range(0; length-1) | select($a[.].answered==429) | $a[.+1].at_ms - $a[.].at_ms) | map(select(. < 2000)) | length' "$L")" -eq 0 \
         -a "$(jq -c 'select(.answered==429)' "$L" | wc -l)" -gt 0
D=$TMP/faulty.dead.jsonl
check "faults: the two refused alerts, and only they, are dead-lettered" \
    test "$(jq -r '.id' "$D" | sort -u | tr '\n' ' ')" = "$(printf '%s\n' "${REJECT[@]}" | sort | tr '\n' ' ')"
check "faults: each dead letter names the output, the reason and holds the record" \
    test "$(jq -c 'select(.output=="webhook" and .record_kind=="alert" and (.reason|test("HTTP 422, not retried")) and (.line|fromjson|.id)==.id)' "$D" | wc -l)" -eq "$(wc -l < "$D")" -a -s "$D"

# 3. A receiver that knows another secret.
RECORDS=few.jsonl
head -20 "$TMP/records.jsonl" > "$TMP/few.jsonl"
receiver stranger "$OTHER"
feed stranger "$PORT" '{"secret_env":"CHAINFUSE_WEBHOOK_SECRET","max_attempts":2}'
check "another secret: every request refused (401), every record dead-lettered" \
    test "$(jq -c 'select(.answered==401 and (.verified|not))' "$TMP/stranger.log" | wc -l)" -eq 20 \
         -a "$(jq -c 'select(.reason|test("HTTP 401"))' "$TMP/stranger.dead.jsonl" | wc -l)" -eq 20

# 4. Giving up.
receiver down "$NEW" '503 1000'
feed down "$PORT" '{"secret_env":"CHAINFUSE_WEBHOOK_SECRET","max_attempts":3,"backoff":"50ms"}'
check "HTTP 503 forever: dead-lettered after max_attempts, each tried 3 times" \
    test "$(jq -c 'select(.reason|test("gave up after 3 attempts \\(last: HTTP 503\\)"))' "$TMP/down.dead.jsonl" | wc -l)" -eq 20 \
         -a "$(wc -l < "$TMP/down.log")" -eq 60
closed=$(cat "$TMP/stranger.port")
kill "${PIDS[2]}"; wait "${PIDS[2]}" 2>/dev/null
feed refused "$closed" '{"secret_env":"CHAINFUSE_WEBHOOK_SECRET","max_attempts":2,"backoff":"50ms","timeout":"1s"}'
check "no receiver: dead-lettered after max_attempts with the network error" \
    test "$(jq -c 'select(.reason|test("gave up after 2 attempts \\(last: .*(refused|connect)"))' "$TMP/refused.dead.jsonl" | wc -l)" -eq 20
receiver slow "$NEW" '429:3600 100'
feed slow "$PORT" '{"secret_env":"CHAINFUSE_WEBHOOK_SECRET","max_age":"10m"}'
check "a Retry-After past max_age: dead-lettered at once, not waited for" \
    test "$(jq -c 'select(.reason|test("past max_age 10m"))' "$TMP/slow.dead.jsonl" | wc -l)" -eq 20

# 5. TLS: verified by default; a CA file or tls_verify: false for a
# receiver with its own certificate.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/key.pem" \
    -out "$TMP/cert.pem" 2> /dev/null
"$RECEIVER" --port-file "$TMP/tls.port" --log "$TMP/tls.log" --secrets "$NEW" \
    --cert "$TMP/cert.pem" --key "$TMP/key.pem" 2> "$TMP/tls.err" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$TMP/tls.port" ] && break; sleep 0.05; done
tls_feed() { # tls_feed NAME OPTIONS_JSON
    printf '%s' "$2" > "$TMP/$1.opts.json"
    "$FEED" "https://127.0.0.1:$(cat "$TMP/tls.port")/hook" "$TMP/few.jsonl" \
        "$TMP/$1.dead.jsonl" "$TMP/$1.opts.json" > "$TMP/$1.out" 2> "$TMP/$1.err" ||
        { echo "FAIL: webhook_feed ($1) exited $?:"; tail -5 "$TMP/$1.err"; fail=1; }
}
tls_feed tls_default '{"secret_env":"CHAINFUSE_WEBHOOK_SECRET","max_attempts":2,"backoff":"50ms"}'
check "TLS: an unknown certificate is refused by default, nothing sent" \
    test "$(jq -c 'select(.reason|test("gave up after 2 attempts \\(last: .*(certificate|SSL)"))' "$TMP/tls_default.dead.jsonl" | wc -l)" -eq 20 \
         -a ! -s "$TMP/tls.log"
tls_feed tls_ca "{\"secret_env\":\"CHAINFUSE_WEBHOOK_SECRET\",\"ca_file\":\"$TMP/cert.pem\"}"
check "TLS: with ca_file naming its certificate, every record delivered" \
    test "$(jq -c 'select(.verified and .answered==200)' "$TMP/tls.log" | wc -l)" -eq 20 \
         -a ! -s "$TMP/tls_ca.dead.jsonl"
tls_feed tls_off '{"secret_env":"CHAINFUSE_WEBHOOK_SECRET","tls_verify":false}'
check "TLS: with tls_verify false, every record delivered" \
    test "$(jq -c 'select(.verified and .answered==200)' "$TMP/tls.log" | wc -l)" -eq 40 \
         -a ! -s "$TMP/tls_off.dead.jsonl"

# 6. Secrets: in no output, error, summary or dead letter.
check "no secret in anything written" \
    secrets_absent "$TMP"/*.out "$TMP"/*.err "$TMP"/*.dead.jsonl "$TMP"/*.log
exit $fail
