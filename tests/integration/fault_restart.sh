#!/usr/bin/env bash
# fault_restart.sh CHAINFUSE - issue 10's fault test 3 with the file
# input, and the SIGTERM drain.
#
# Input: every shared OTRF recording (real Windows logs, 76,000 lines,
# some of them not JSON) through the stock SigmaHQ rules.  The reference
# is one uninterrupted run.
#
# 1. SIGKILL at several points mid-stream (each after a checkpoint was
#    written, at a random moment after it), restarting with the same
#    --state each time, then a run to the end: the final version of every
#    incident equals the reference's, and so does the set of distinct
#    records written (a replay repeats records whole, with the same id
#    and version, and never writes one the reference lacks); the
#    summary's counters equal the reference's.
# 2. SIGTERM with --state mid-stream: exit 0, every record written is
#    whole, the checkpoint keeps the alerts still waiting for the
#    watermark (none forced out: the restart then gives exactly the
#    reference's records).
# 3. SIGTERM without --state: exit 0, whatever was pending is fused and
#    flushed as at the end of input: every incident written has a last
#    record that is closed, and every line is whole.
set -uo pipefail
CF="$1"
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
command -v unzip >/dev/null || { echo "SKIP: unzip not installed"; exit 77; }
ZIPS=$(find "$SHARED/data/otrf/datasets" -name '*.zip' 2>/dev/null | sort)
if [ -z "$ZIPS" ] || [ ! -d "$SHARED/data/sigma/rules" ]; then
    shared_missing "$SHARED/data/otrf/datasets or $SHARED/data/sigma/rules"
fi

# A sanitizer build runs about ten times slower: a third of the
# recordings keep its run time reasonable.  A release build reads the
# recordings three times over: once, a run that resumes twice is over
# before its next checkpoint on a quiet machine, and the kills below
# need it still running.
COPIES=3
if grep -q '^CF_SANITIZE:BOOL=ON' "${CF_BINARY_DIR:-$(dirname "$CF")}/CMakeCache.txt" 2>/dev/null; then
    ZIPS=$(echo "$ZIPS" | awk 'NR % 3 == 1')
    COPIES=1
fi
for _ in $(seq "$COPIES"); do
    for z in $ZIPS; do unzip -p "$z"; done
done > "$T/in.jsonl"
LINES=$(wc -l < "$T/in.jsonl")
printf 'state:\n  interval: 100ms\n' > "$T/c.yml"
printf 'state:\n  interval: 100ms\n  background: false\n' > "$T/c_fg.yml"
RULES=()
for d in rules rules-threat-hunting rules-emerging-threats; do
    [ -d "$SHARED/data/sigma/$d" ] && RULES+=(--rules "$SHARED/data/sigma/$d")
done
run() { # run OUT DEADLETTER [more options]
    local out=$1 dl=$2; shift 2
    "$CF" run "${RULES[@]}" --input "$T/in.jsonl" --config "$T/c.yml" \
        --output "$out" --dead-letter "$dl" "$@"
}
start() { # start OUT DEADLETTER [more options]: in the background, pid in $pid
    local out=$1 dl=$2; shift 2
    "$CF" run "${RULES[@]}" --input "$T/in.jsonl" --config "${CONF:-$T/c.yml}" \
        --output "$out" --dead-letter "$dl" "$@" &
    pid=$!
}
final() { jq -c -s 'map(select(.kind=="incident")) | group_by(.id) | map(max_by(.version)) | sort_by(.id) | .[]' "$1"; }
summary() { grep -E '^chainfuse: [0-9]+ events' "$1" | tail -1 | sed 's/ to [^,]*,/,/'; }
whole_lines() { jq -c . "$1" >/dev/null 2>&1; }

run "$T/ref.jsonl" "$T/ref_dl.jsonl" 2>"$T/ref.err" || { echo "FAIL: the reference run failed"; cat "$T/ref.err"; exit 1; }
final "$T/ref.jsonl" > "$T/ref.final"
n_inc=$(wc -l < "$T/ref.final")
check "the reference has several incidents and dead letters" '[ "$n_inc" -ge 3 ] && [ -s "$T/ref_dl.jsonl" ]'

# Waits until $1/checkpoint is replaced (a new inode) while pid $2 runs.
wait_checkpoint() {
    local dir=$1 pid=$2 before now
    before=$(stat -c %i "$dir/checkpoint" 2>/dev/null || echo none)
    for _ in $(seq 1 6000); do
        now=$(stat -c %i "$dir/checkpoint" 2>/dev/null || echo none)
        [ "$now" != "$before" ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# 1. SIGKILL at several points; checkpoints written by a child process
#    (the default) and, every other time, in-process.
S="$T/state"
kills=0
for i in 1 2 3 4; do
    CONF="$T/c.yml"; [ $((i % 2)) -eq 0 ] && CONF="$T/c_fg.yml"
    start "$T/k.jsonl" "$T/k_dl.jsonl" --state "$S" 2>>"$T/k.err"
    CONF=
    if wait_checkpoint "$S" "$pid"; then
        sleep "0.0$((RANDOM % 9))"
        if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    fi
    wait "$pid" 2>/dev/null
done
run "$T/k.jsonl" "$T/k_dl.jsonl" --state "$S" --stats "$T/k_stats.json" 2>"$T/k_last.err"; rc=$?
check "killed mid-stream at least 3 times, after a checkpoint each time" '[ "$kills" -ge 3 ]'
check "the last run resumed from a checkpoint and exits 0" '[ $rc -eq 0 ] && jq -e ".checkpoints.restored and .checkpoints.records_skipped_on_resume > 0" "$T/k_stats.json" >/dev/null'
check "after SIGKILLs: the final version of every incident equals the uninterrupted run's" 'cmp -s <(final "$T/k.jsonl") "$T/ref.final"'
check "after SIGKILLs: the distinct records written are the reference's (repeats are whole copies)" 'cmp -s <(sort -u "$T/k.jsonl") <(sort -u "$T/ref.jsonl")'
check "after SIGKILLs: the distinct dead letters are the reference's" 'cmp -s <(sort -u "$T/k_dl.jsonl") <(sort -u "$T/ref_dl.jsonl")'
check "after SIGKILLs: the summary counts what the uninterrupted run counted" '[ "$(summary "$T/k_last.err")" = "$(summary "$T/ref.err")" ]'

# 2. SIGTERM with --state.
S2="$T/state2"
start "$T/t.jsonl" "$T/t_dl.jsonl" --state "$S2" --stats "$T/t_stats.json" 2>"$T/t.err"
wait_checkpoint "$S2" "$pid"
kill -TERM "$pid"; wait "$pid"; rc=$?
check "SIGTERM with --state exits 0 and says what it did" '[ $rc -eq 0 ] && grep -q "stopped by a signal: outputs flushed, state checkpointed" "$T/t.err"'
check "SIGTERM with --state: stopped mid-stream, every line whole" 'whole_lines "$T/t.jsonl" && jq -e --argjson n "$LINES" ".records < \$n" "$T/t_stats.json" >/dev/null'
check "SIGTERM with --state: alerts waiting for the watermark stay waiting" 'jq -e ".fusion.alerts_pending > 0 or .fusion.correlation.pending > 0 or .fusion.incidents_open > 0" "$T/t_stats.json" >/dev/null'
run "$T/t.jsonl" "$T/t_dl.jsonl" --state "$S2" 2>/dev/null
check "SIGTERM with --state then a restart: exactly the reference's records" 'cmp -s <(sort -u "$T/t.jsonl") <(sort -u "$T/ref.jsonl") && cmp -s <(final "$T/t.jsonl") "$T/ref.final"'

# 3. SIGTERM without --state, once records started to reach the output
#    (its first 256 KiB buffer), well before the end.
start "$T/n.jsonl" "$T/n_dl.jsonl" --stats "$T/n_stats.json" 2>"$T/n.err"
for _ in $(seq 1 30000); do
    [ -s "$T/n.jsonl" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
done
kill -TERM "$pid"; wait "$pid"; rc=$?
check "SIGTERM without --state exits 0, says pending was fused and flushed" '[ $rc -eq 0 ] && grep -q "everything pending fused and flushed" "$T/n.err"'
check "SIGTERM without --state: stopped mid-stream, every line whole" 'whole_lines "$T/n.jsonl" && jq -e --argjson n "$LINES" ".records < \$n and .records > 0" "$T/n_stats.json" >/dev/null'
check "SIGTERM without --state: nothing left pending, every incident's last record closed" 'jq -e ".fusion.alerts_pending == 0 and .fusion.incidents_open == 0" "$T/n_stats.json" >/dev/null && [ -z "$(final "$T/n.jsonl" | jq -c "select(.status != \"closed\")")" ]'

finish fault_restart
