#!/usr/bin/env bash
# kafka_fault_restart.sh CHAINFUSE - issue 10's fault tests 3 and 4 with
# the Kafka input: chainfuse reads a consumer group from a Kafka cluster
# (tests/tools/kafka_mock_cluster: librdkafka's mock brokers in their own
# process) while kcat writes real Windows logs into the topic.
#
# Input: three shared OTRF recordings (about 4 MB, 2007 events: the mock
# keeps only about 5 MiB per partition), one partition so that the order
# of events, which fusion's watermark depends on, is the same in every
# run, through the stock SigmaHQ rules.  kcat writes them in 30 chunks,
# 0.5 s apart, while chainfuse runs and is killed.  The reference is one uninterrupted run of
# another consumer group over the whole topic.
#
# 1. SIGKILL three times, each at a random moment between checkpoints,
#    restarting with the same --state and group each time;
# 2. then a run during which every broker goes down and comes back, ended
#    by SIGTERM (exit 0);
# 3. then a run to the end of the topic (stop_at_end).
# The final version of every incident equals the reference's, the
# distinct records written are the reference's (a replay repeats records
# whole, never writes one the reference lacks), the last run resumed from
# a checkpoint, and its summary counts every event once, as the
# reference's does.  An offset committed past the checkpoint would lose
# events at a restart, which these comparisons would show.
set -uo pipefail
CF="$1"
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
MOCK="${CF_BINARY_DIR:-$(dirname "$CF")}/kafka_mock_cluster"
for tool in jq unzip kcat; do
    command -v $tool >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
[ -x "$MOCK" ] || { echo "SKIP: $MOCK not built"; exit 77; }
W="$SHARED/data/otrf/datasets/atomic/windows"
ZIPS="$W/defense_evasion/host/psh_cmstp_execution_bypassuac.zip
$W/persistence/host/empire_persistence_registry_modification_run_keys_elevated_user.zip
$W/credential_access/host/psh_lsass_memory_dump_comsvcs.zip"
for z in $ZIPS; do
    [ -f "$z" ] || shared_missing "$z"
done
[ -d "$SHARED/data/sigma/rules" ] || shared_missing "$SHARED/data/sigma/rules"
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
trap 'exec 3>&- 2>/dev/null; jobs -p | xargs -r kill -9 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"' EXIT

for z in $ZIPS; do unzip -p "$z"; done > "$T/in.jsonl"
split -n l/30 -d "$T/in.jsonl" "$T/chunk."

# The cluster: three brokers, faults through a FIFO on its stdin.
mkfifo "$T/ctl"
"$MOCK" -b 3 -t events:1 < "$T/ctl" > "$T/mock.out" 2> "$T/mock.err" &
exec 3> "$T/ctl"
for _ in $(seq 1 100); do [ -s "$T/mock.out" ] && break; sleep 0.05; done
BOOT=$(head -1 "$T/mock.out")
[ -n "$BOOT" ] || { echo "FAIL: the mock cluster did not start"; cat "$T/mock.err"; exit 1; }
cluster() { # cluster COMMAND: applied once the cluster says "ok COMMAND"
    echo "$1" >&3
    for _ in $(seq 1 100); do grep -qx "ok $1" "$T/mock.out" && return 0; sleep 0.05; done
    return 1
}

# The mock holds a group for session.timeout.ms after a member vanishes
# (SIGKILL): a short session keeps restarts quick.
cat > "$T/c.yml" <<YML
input:
  rdkafka:
    session.timeout.ms: 4000
    heartbeat.interval.ms: 500
state:
  interval: 500ms
YML
RULES=(--rules "$SHARED/data/sigma/rules")
start() { # start GROUP QUERY OUT [more options]: background, pid in $pid
    local group=$1 query=$2 out=$3; shift 3
    "$CF" run "${RULES[@]}" --config "$T/c.yml" \
        --input "kafka://$BOOT/events?group=$group$query" \
        --output "$out" --dead-letter "$out.dl" "$@" &
    pid=$!
}
summary() { grep -E '^chainfuse: [0-9]+ events' "$1" | tail -1 | sed 's/ to [^,]*,/,/'; }
final() { jq -c -s 'map(select(.kind=="incident")) | group_by(.id) | map(max_by(.version)) | sort_by(.id) | .[]' "$1"; }
wait_writing() { # until file $1 grows (the run consumes) while pid $2 runs
    local before
    before=$(stat -c %s "$1" 2>/dev/null || echo 0)
    for _ in $(seq 1 600); do
        [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt "$before" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
wait_checkpoint() { # until $1/checkpoint is replaced while pid $2 runs
    local dir=$1 pid=$2 before now
    before=$(stat -c %i "$dir/checkpoint" 2>/dev/null || echo none)
    for _ in $(seq 1 600); do
        now=$(stat -c %i "$dir/checkpoint" 2>/dev/null || echo none)
        [ "$now" != "$before" ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# kcat writes the events while chainfuse runs and is killed.
# Slow enough that the three kills (each waits for a group join and a
# checkpoint) come while it still writes, on a busy machine too.
(for c in "$T"/chunk.*; do
    kcat -P -q -b "$BOOT" -t events -p 0 < "$c" || exit 1
    sleep 1.5
done) &
producer=$!

S="$T/state"
kills=0 killed_producing=0
for i in 1 2 3; do
    start k "" "$T/k.jsonl" --state "$S" 2>>"$T/k.err"
    # once it consumes (the group join takes seconds), at a random moment
    # between checkpoints, when events read since the last one are not
    # covered yet
    if wait_writing "$T/k.jsonl" "$pid" && wait_checkpoint "$S" "$pid"; then
        sleep "0.$((1 + RANDOM % 8))"
        kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
        kill -0 "$producer" 2>/dev/null && killed_producing=$((killed_producing + 1))
    else
        # it wrote nothing new or no checkpoint came: stop it rather than
        # wait for ever (it has no end of input); the check below fails
        kill -TERM "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
done
check "killed mid-stream 3 times, between checkpoints each time" '[ "$kills" -eq 3 ] && [ "$killed_producing" -ge 2 ]'

wait "$producer"; produced=$?
start k "" "$T/k.jsonl" --state "$S" 2>"$T/k_outage.err"
wait_checkpoint "$S" "$pid"
down=0
for b in 1 2 3; do cluster "down $b" && down=$((down + 1)); done
sleep 2
for b in 1 2 3; do cluster "up $b"; done
wait_checkpoint "$S" "$pid" && wait_checkpoint "$S" "$pid"
kill -TERM "$pid"; wait "$pid"; rc=$?
check "kcat wrote every chunk" '[ "$produced" -eq 0 ]'
check "every broker went down and came back during a run, which SIGTERM ended with 0" '[ "$down" -eq 3 ] && [ "$rc" -eq 0 ]'

start ref "&stop_at_end=true" "$T/ref.jsonl" 2>"$T/ref.err"
wait "$pid" || { echo "FAIL: the reference run failed"; cat "$T/ref.err"; exit 1; }
final "$T/ref.jsonl" > "$T/ref.final"
n_inc=$(wc -l < "$T/ref.final")
check "the reference read every event and has several incidents" '[ "$n_inc" -ge 3 ] && grep -q "^chainfuse: 2007 events" "$T/ref.err"'

start k "&stop_at_end=true" "$T/k.jsonl" --state "$S" --stats "$T/k_stats.json" 2>"$T/k_last.err"
wait "$pid"; rc=$?
check "the last run resumed from a checkpoint and exits 0" '[ $rc -eq 0 ] && jq -e ".checkpoints.restored" "$T/k_stats.json" >/dev/null'
check "the final version of every incident equals the uninterrupted run's" 'cmp -s <(final "$T/k.jsonl") "$T/ref.final"'
check "the distinct records written are the reference's (repeats are whole copies)" 'cmp -s <(sort -u "$T/k.jsonl") <(sort -u "$T/ref.jsonl")'
# Counters live in the checkpoint: an event lost to an offset committed
# past it shows here even when it raised no alert.
check "the summary counts what the uninterrupted run counted" '[ "$(summary "$T/k_last.err")" = "$(summary "$T/ref.err")" ]'

finish kafka_fault_restart
