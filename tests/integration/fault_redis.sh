#!/usr/bin/env bash
# fault_redis.sh CHAINFUSE - issue 10's fault test 1: Redis killed
# mid-stream and restarted.
#
# Input: the shared OTRF recordings (real Windows logs) through the stock
# SigmaHQ rules, fed on standard input in two parts.  The reference is
# one uninterrupted run written to a file.  The faulty run writes to a
# real redis-server (append-only file, fsync always, password from
# password_env) on a free loopback port; once Redis holds records from
# the first part, Redis is killed with SIGKILL, the second part is fed
# while it is down, and Redis is restarted on the same port and data.
#
# Asserted: chainfuse exits 0 having retried (the outage was felt); the
# hash of every incident holds the reference's final version and JSON,
# and there is no other; the incident stream holds exactly the
# reference's incident records, none repeated (the version check); the
# queue holds exactly the incidents whose final status is not closed;
# the distinct alerts are the reference's; the password is printed
# nowhere.
set -uo pipefail
CF="$1"
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
for tool in jq unzip redis-server redis-cli; do
    command -v $tool >/dev/null || { echo "SKIP: $tool not installed (deploy/bootstrap.sh)"; exit 77; }
done
ZIPS=$(find "$SHARED/data/otrf/datasets" -name '*.zip' 2>/dev/null | sort)
if [ -z "$ZIPS" ] || [ ! -d "$SHARED/data/sigma/rules" ]; then
    shared_missing "$SHARED/data/otrf/datasets or $SHARED/data/sigma/rules"
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
RPID=
trap '[ -n "$RPID" ] && { kill -9 $RPID; wait $RPID; } 2>/dev/null; jobs -p | xargs -r kill -9 2>/dev/null; [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"' EXIT

for z in $ZIPS; do unzip -p "$z"; done > "$T/in.jsonl"
LINES=$(wc -l < "$T/in.jsonl")
head -n $((LINES / 2)) "$T/in.jsonl" > "$T/part1"
tail -n +$((LINES / 2 + 1)) "$T/in.jsonl" > "$T/part2"
RULES=()
for d in rules rules-threat-hunting rules-emerging-threats; do
    [ -d "$SHARED/data/sigma/$d" ] && RULES+=(--rules "$SHARED/data/sigma/$d")
done

# Redis with its data on disk (as in production): what it acknowledged
# survives the SIGKILL.
PW="fault-$RANDOM-$RANDOM-pw"
mkdir -p "$T/redis"
start_redis() {
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$T/redis" \
        --appendonly yes --appendfsync always --save '' \
        --requirepass "$PW" --logfile "$T/redis/log" &
    RPID=$!
    for _ in $(seq 1 100); do
        REDISCLI_AUTH=$PW redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && return 0
        kill -0 $RPID 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
for _ in 1 2 3 4 5; do # a free port: Redis refuses one in use
    PORT=$((20000 + RANDOM % 40000))
    start_redis && break
    RPID=
done
[ -n "$RPID" ] || { echo "FAIL: redis-server did not start"; cat "$T/redis/log"; exit 1; }
rc() { REDISCLI_AUTH=$PW redis-cli -p "$PORT" --no-raw "$@" 2>/dev/null; }
rcr() { REDISCLI_AUTH=$PW redis-cli -p "$PORT" --raw "$@" 2>/dev/null; }

final() { jq -c -s 'map(select(.kind=="incident")) | group_by(.id) | map(max_by(.version)) | sort_by(.id) | .[]' "$1"; }

# The reference: uninterrupted, to a file, from standard input too.
cat "$T/part1" "$T/part2" | "$CF" run "${RULES[@]}" --input - \
    --output "$T/ref.jsonl" --dead-letter "$T/ref_dl.jsonl" 2>"$T/ref.err" ||
    { echo "FAIL: the reference run failed"; cat "$T/ref.err"; exit 1; }
final "$T/ref.jsonl" > "$T/ref.final"
n_inc=$(wc -l < "$T/ref.final")
n_alerts=$(jq -c 'select(.kind=="alert")' "$T/ref.jsonl" | sort -u | wc -l)
check "the reference has several incidents and alerts ($n_inc, $n_alerts)" '[ "$n_inc" -ge 3 ] && [ "$n_alerts" -ge 10 ]'

cat > "$T/c.yml" <<EOF
outputs:
  - url: redis://127.0.0.1:$PORT?prefix=f
    kinds: [alert, incident]
    password_env: CF_TEST_REDIS_PW
    batch: 64
    queue: 16
    max_buffered: 32
EOF
mkfifo "$T/feed"
(cat "$T/part1"; while [ ! -e "$T/go" ]; do sleep 0.02; done; cat "$T/part2") > "$T/feed" &
CF_TEST_REDIS_PW=$PW "$CF" run "${RULES[@]}" --config "$T/c.yml" --input - \
    --dead-letter "$T/f_dl.jsonl" --stats "$T/f_stats.json" < "$T/feed" 2>"$T/f.err" &
cfpid=$!
# Records of the first part reached Redis: kill it mid-stream.
for _ in $(seq 1 400); do
    [ "$(rcr XLEN f:alerts)" -gt 0 ] 2>/dev/null && break
    sleep 0.05
done
before=$(rcr XLEN f:alerts)
kill -9 $RPID; wait $RPID 2>/dev/null; RPID=
touch "$T/go"
sleep 1.5
start_redis || { echo "FAIL: redis-server did not restart"; exit 1; }
wait $cfpid; st=$?
check "Redis was killed mid-stream (it held $before alerts then) and chainfuse exits 0" '[ "${before:-0}" -gt 0 ] && [ $st -eq 0 ]'
check "the outage was felt: the Redis output retried" 'jq -e "[.outputs[] | select(.name | startswith(\"redis\")) | .retries] | add > 0" "$T/f_stats.json" >/dev/null'

# Every incident's hash holds its final version, and nothing else.
rcr --scan --pattern 'f:incident:*' | sort > "$T/keys"
for k in $(cat "$T/keys"); do rcr HGET "$k" json; done | jq -c -s 'sort_by(.id) | .[]' > "$T/redis.final"
check "every incident's final version is in Redis ($(wc -l < "$T/keys") hashes)" 'cmp -s "$T/redis.final" "$T/ref.final"'
fields_ok() { # version and status fields say what the JSON says
    local k
    for k in $(cat "$T/keys"); do
        [ "$(rcr HMGET "$k" version status | paste -sd' ')" = \
          "$(rcr HGET "$k" json | jq -r '"\(.version) \(.status)"')" ] || return 1
    done
}
check "each hash's version and status fields match its JSON" fields_ok
# The stream: the reference's incident records, each once.
rcr XRANGE f:incidents - + | awk 'prev == "json" {print} {prev = $0}' | jq -c . | sort > "$T/stream"
check "the incident stream holds each incident version once, as the reference ($(wc -l < "$T/stream") entries)" 'cmp -s "$T/stream" <(jq -c "select(.kind==\"incident\")" "$T/ref.jsonl" | sort)'
check "the queue holds exactly the incidents not closed" 'cmp -s <(rcr ZRANGE f:queue 0 -1 | sed "/^$/d" | sort) <(jq -r "select(.status != \"closed\") | .id" "$T/ref.final" | sort)'
rcr XRANGE f:alerts - + | awk 'prev == "json" {print} {prev = $0}' | jq -c . | sort -u > "$T/alerts"
check "the distinct alerts are the reference's ($n_alerts)" 'cmp -s "$T/alerts" <(jq -c "select(.kind==\"alert\")" "$T/ref.jsonl" | sort -u)'
check "the password is printed nowhere" '! grep -q -- "$PW" "$T/f.err" "$T/f_stats.json"'

finish fault_redis
