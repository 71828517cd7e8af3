#!/usr/bin/env bash
# state.sh CHAINFUSE - checkpoints as an operator meets them: a run
# stopped by SIGTERM keeps the alerts waiting for the watermark in its
# checkpoint and a restart goes on from it; a checkpoint that is damaged,
# cut short or of another format version is refused whole with a clear
# message; after a rule update the state of rules no longer loaded is
# dropped and counted and the rest restored; an input that changed under
# the checkpoint is refused; one --state directory serves one run.
#
# The input is read through a FIFO so that SIGTERM arrives at a known
# point (the writer pauses after the first part); the records come from
# the demo scenario through the rule pack (routing, not detection).
set -uo pipefail
CF="$1"
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
[ -r /proc/self/stat ] || { echo "SKIP: /proc/PID/stat is not readable here"; exit 77; }
SRC="${CF_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
GEN="${CF_BINARY_DIR:-$(dirname "$CF")}/gen_scenario"
[ -x "$GEN" ] || { echo "FAIL: $GEN not built"; exit 1; }
RULES="$SRC/rules/pack"

"$GEN" --events 20000 > "$T/s.jsonl"
N=$(wc -l < "$T/s.jsonl")
head -n $((N / 2)) "$T/s.jsonl" > "$T/half.jsonl"
mkfifo "$T/in"
feed() { cat "$1" > "$T/in" & }
run() { "$CF" run --rules "${R:-$RULES}" --input "$T/in" --dead-letter "$T/dl.jsonl" "$@"; }
final() { jq -c -s 'map(select(.kind=="incident")) | group_by(.id) | map(max_by(.version)) | sort_by(.id) | .[]' "$1"; }

feed "$T/s.jsonl"; run --output "$T/ref.jsonl" --threads 1 2>/dev/null
check "the reference run has incidents" '[ -n "$(final "$T/ref.jsonl")" ]'

# SIGTERM while the input is paused after its first half: the test
# holds the FIFO open (fd 4), writes the first half, waits until the
# engine sleeps waiting for more, signals it, then closes the FIFO.
# With one detection thread and with two (engine/workers.h: a stop
# drains the records read to the workers before the checkpoint, and
# the restart goes on from exactly there).
stop_and_resume() { # stop_and_resume THREADS
    local th=$1 st="$T/st$1" a="$T/a$1.jsonl"
    "$CF" run --rules "$RULES" --input "$T/in" --dead-letter "$T/dl.jsonl" \
        --output "$a" --state "$st" --stats "$T/a_stats.json" \
        --threads "$th" 2>"$T/a.err" &
    pid=$!
    exec 4>"$T/in"
    cat "$T/half.jsonl" >&4
    asleep=0
    for _ in $(seq 1 3000); do
        st_=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
        if [ "$st_" = S ]; then asleep=$((asleep + 1)); else asleep=0; fi
        [ "$asleep" -ge 5 ] && break
        sleep 0.1
    done
    kill -TERM "$pid"; sleep 0.2; exec 4>&-; wait "$pid"; rc=$?
    check "--threads $th: SIGTERM with --state exits 0" '[ $rc -eq 0 ] && [ -s "$st/checkpoint" ]'
    check "--threads $th: alerts waiting for the watermark stay in the checkpoint, not forced out" \
        'jq -e ".fusion.alerts_pending > 0 and .fusion.incidents_closed == 0" "$T/a_stats.json" >/dev/null'
    rm -rf "$T/st_saved"; cp -r "$st" "$T/st_saved"
    cp "$a" "$T/a_saved.jsonl"
    feed "$T/s.jsonl"; run --output "$a" --state "$st" --stats "$T/b_stats.json" --threads "$th" 2>/dev/null; rc=$?
    check "--threads $th: the restart resumes after the checkpointed line" \
        '[ $rc -eq 0 ] && jq -e --argjson h $((N / 2)) ".checkpoints.restored and .checkpoints.records_skipped_on_resume > 0 and .checkpoints.records_skipped_on_resume <= \$h" "$T/b_stats.json" >/dev/null'
    check "--threads $th: stopped and restarted: the reference's records, each once" \
        'cmp -s "$a" "$T/ref.jsonl"'
}
stop_and_resume 2
stop_and_resume 1

refused() { # refused NAME STATE-DIR PATTERN
    local want=$3
    feed "$T/s.jsonl"
    run --output "$T/x.jsonl" --state "$2" 2>"$T/err"; rc=$?
    check "$1" '[ $rc -eq 1 ] && grep -q "$want" "$T/err" && grep -q "nothing was restored" "$T/err" && [ ! -s "$T/x.jsonl" ]'
    exec 3<>"$T/in"; exec 3>&-  # let the feeder finish
    wait 2>/dev/null
}
cp -r "$T/st_saved" "$T/bad1"
printf '\xff' | dd of="$T/bad1/checkpoint" bs=1 seek=200 conv=notrunc 2>/dev/null
refused "a damaged checkpoint is refused (checksum)" "$T/bad1" "checksum does not match"
cp -r "$T/st_saved" "$T/bad2"
printf '\x09' | dd of="$T/bad2/checkpoint" bs=1 seek=8 conv=notrunc 2>/dev/null
refused "a checkpoint of another format version is refused" "$T/bad2" "format 9; this chainfuse reads format"
cp -r "$T/st_saved" "$T/bad3"
truncate -s -100 "$T/bad3/checkpoint"
refused "a checkpoint cut short is refused" "$T/bad3" "is damaged"

# A rule update: the pack without its discovery rules.
mkdir "$T/rules"
cp -r "$RULES"/. "$T/rules/"
gone=$(grep -l -r -i "attack.discovery" "$T/rules" | head -100)
[ -n "$gone" ] && rm $gone
cp -r "$T/st_saved" "$T/st3"
feed "$T/s.jsonl"
R="$T/rules" run --output "$T/c.jsonl" --state "$T/st3" --stats "$T/c_stats.json" 2>"$T/err"; rc=$?
check "after a rule update the rest is restored and the run goes on" '[ $rc -eq 0 ] && jq -e ".checkpoints.restored" "$T/c_stats.json" >/dev/null'
check "... and the state of rules no longer loaded is dropped, counted and said" \
    'jq -e ".checkpoints.restored_alerts_dropped > 0" "$T/c_stats.json" >/dev/null && grep -q "dropped the state of rules no longer loaded" "$T/err"'

# The input changed under the checkpoint.
"$GEN" --events 20000 --seed 7 > "$T/other.jsonl"
cp -r "$T/st_saved" "$T/st4"
feed "$T/other.jsonl"
run --output "$T/d.jsonl" --state "$T/st4" 2>"$T/err"; rc=$?
check "an input that changed since the checkpoint is refused" '[ $rc -eq 1 ] && grep -q "changed since the checkpoint" "$T/err"'
exec 3<>"$T/in"; exec 3>&-; wait 2>/dev/null

# One run per state directory: a second run while the first waits on
# its input is refused.
( cat "$T/half.jsonl"; sleep 3 ) > "$T/in" &
"$CF" run --rules "$RULES" --input "$T/in" --dead-letter "$T/dl.jsonl" \
    --output "$T/e1.jsonl" --state "$T/st5" 2>/dev/null &
sleep 1
"$CF" run --rules "$RULES" --input "$T/s.jsonl" --output "$T/e.jsonl" --state "$T/st5" 2>"$T/err"; rc=$?
check "a --state directory in use by another run is refused" '[ $rc -eq 1 ] && grep -q "in use by another chainfuse run" "$T/err"'
wait 2>/dev/null

finish state
