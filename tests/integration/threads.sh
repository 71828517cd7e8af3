#!/usr/bin/env bash
# threads.sh CHAINFUSE - `chainfuse run --threads N` changes nothing but
# speed: with 1, 2, 3 and 4 detection threads the alerts, incidents,
# dead letters and --stats counters are byte for byte the same (the
# engine takes detection results back in input order, engine/workers.h).
#
#   1. hostile values of --threads and engine.threads are refused with
#      exit 2 and a message saying what is accepted;
#   2. the demo scenario (bench/gen_scenario.c, the rule pack), with bad
#      JSON, blank and overlong lines mixed in so that dead letters and
#      blank lines are interleaved with alerts: same bytes at every count;
#   3. the OTRF LSASS_campaign_01 recording with the whole shared SigmaHQ
#      set (real events, real rules; 330-odd alerts fused into an
#      incident): same bytes at every count, with periodic checkpoints
#      (state.interval 100ms) at 2 threads changing nothing either.
# Stop and resume with --threads 2 and --state is in state.sh.
#
# Run by CTest as `bash threads.sh <chainfuse binary>`; part 3 skips (77)
# when ../shared is missing, and fails under CF_REQUIRE_SHARED=1.
set -uo pipefail
CF=${1:?usage: threads.sh <path-to-chainfuse>}
CF=$(cd "$(dirname "$CF")" && pwd)/$(basename "$CF") # runs cd
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh" # its check is the one used
SRC="${CF_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
GEN="${CF_BINARY_DIR:-$(dirname "$CF")}/gen_scenario"
[ -x "$GEN" ] || { echo "FAIL: $GEN not built"; exit 1; }
PACK="$SRC/rules/pack"

# 1. Hostile values.
check "run --help offers --threads" '"$CF" run --help | grep -q -- "--threads N"'
for v in 0 -1 -2 abc 2x "" " 2" 1.5 257 100000 99999999999999999999; do
    "$CF" run --rules "$PACK" --input /dev/null --output "$T/h.jsonl" \
        --dead-letter "$T/h_dl.jsonl" --threads "$v" 2>"$T/err"; rc=$?
    check "--threads '$v' is refused (exit 2, says what it takes)" \
        '[ $rc -eq 2 ] && grep -q "threads takes a whole number from 1 to 256" "$T/err"'
done
"$CF" run --rules "$PACK" --input /dev/null --output "$T/h.jsonl" \
    --dead-letter "$T/h_dl.jsonl" --threads 2 --threads 3 2>"$T/err"; rc=$?
check "--threads given twice is refused" '[ $rc -eq 2 ]'
for v in 0 -3 257 abc; do
    printf 'engine:\n  threads: %s\n' "$v" > "$T/c.yaml"
    "$CF" run --rules "$PACK" --input /dev/null --output "$T/h.jsonl" \
        --dead-letter "$T/h_dl.jsonl" --config "$T/c.yaml" 2>"$T/err"; rc=$?
    check "engine.threads: $v is refused naming the key" \
        '[ $rc -eq 2 ] && grep -q "engine.threads" "$T/err"'
done
printf 'engine:\n  threads: 3\n' > "$T/c3.yaml"

# run_in DIR THREADS INPUT ARGS...: one run in its own directory, so
# that the file names the stats carry are the same in every run.
run_in() {
    local dir=$1 th=$2 input=$3
    shift 3
    mkdir -p "$dir"
    (cd "$dir" && "$CF" run --input "$input" --output out.jsonl \
        --dead-letter dl.jsonl --stats stats.json ${th:+--threads "$th"} \
        "$@" 2>err.txt)
}
# same REF DIR WHAT: the outputs of DIR are REF's, byte for byte (a
# dead-letter file is only created when there is a dead letter).
same() {
    local f
    for f in out.jsonl dl.jsonl; do
        check "$3: $f byte for byte as with one thread" \
            "cmp -s $1/$f $2/$f || [ ! -e $1/$f -a ! -e $2/$f -a $f = dl.jsonl ]"
    done
    # every counter; cpu_seconds are timings, different in every run
    check "$3: stats.json as with one thread, but for cpu_seconds" \
        "cmp -s <(jq -S 'del(.cpu_seconds)' $1/stats.json) <(jq -S 'del(.cpu_seconds)' $2/stats.json)"
}

# 2. The demo scenario, with defects mixed in.
"$GEN" --events 20000 > "$T/s.jsonl" || { echo "FAIL: gen_scenario"; exit 1; }
awk -v long="$(head -c 3000 /dev/zero | tr '\0' x)" '
    NR % 997 == 0 { print "{\"EventID\": 1, broken" }
    NR % 1499 == 0 { print "" }
    NR % 2503 == 0 { print "{\"x\": \"" long "\"}" }
    { print }' "$T/s.jsonl" > "$T/mixed.jsonl"
printf 'input:\n  max_line_bytes: 2KiB\n' > "$T/demo.yaml"
[ -f "$SRC/deploy/demo.yml" ] && cat "$SRC/deploy/demo.yml" >> "$T/demo.yaml"
DEMO=(--rules "$PACK" --config "$T/demo.yaml")
run_in "$T/d1" 1 "$T/mixed.jsonl" "${DEMO[@]}"
check "demo, 1 thread: alerts, incidents, dead letters and blank lines" \
    'jq -e ".alerts > 100 and .incidents > 0 and .dead_lettered > 20 and .dead_letter_reasons.line_too_long > 0 and .blank_lines > 10" "$T/d1/stats.json" >/dev/null'
for th in 2 3 4; do
    run_in "$T/d$th" "$th" "$T/mixed.jsonl" "${DEMO[@]}"
    same "$T/d1" "$T/d$th" "demo, $th threads"
done
# The config key, and the default (one per CPU) with it unset.
cat "$T/demo.yaml" "$T/c3.yaml" > "$T/demo3.yaml"
run_in "$T/dc" "" "$T/mixed.jsonl" --rules "$PACK" --config "$T/demo3.yaml"
same "$T/d1" "$T/dc" "demo, engine.threads: 3"
run_in "$T/dd" "" "$T/mixed.jsonl" "${DEMO[@]}"
same "$T/d1" "$T/dd" "demo, default threads"

# 3. The LSASS campaign with the whole SigmaHQ set.
ZIP=$SHARED/data/otrf/datasets/compound/LSASS_campaign_01/metasploit_logonpasswords_lsass_memory_dump.zip
if [ ! -f "$ZIP" ] || [ ! -d "$SHARED/data/sigma/rules" ]; then
    [ "$fail" -eq 0 ] || exit 1
    shared_missing "$ZIP or $SHARED/data/sigma/rules"
fi
command -v unzip >/dev/null || { echo "FAIL: unzip not installed"; exit 1; }
unzip -p "$ZIP" > "$T/lsass.jsonl"
sigma_rules
run_in "$T/l1" 1 "$T/lsass.jsonl" "${RULES[@]}"
check "LSASS, 1 thread: alerts and an incident" \
    'jq -e ".events > 50000 and .alerts > 100 and .incidents > 0" "$T/l1/stats.json" >/dev/null'
for th in 2 4; do
    run_in "$T/l$th" "$th" "$T/lsass.jsonl" "${RULES[@]}"
    same "$T/l1" "$T/l$th" "LSASS, $th threads"
done
# cpu_seconds: each stage measured, and together about the process.
for d in l1 l2; do
    check "LSASS, $d: cpu_seconds has every stage, adding up to about the process" \
        "jq -e '.cpu_seconds | .start_up > 0 and .read > 0 and .detect > 0 and .fuse > 0 and (.start_up + .read + .detect + .fuse) > 0.5 * .process and (.start_up + .read + .detect + .fuse) < 1.6 * .process' $T/$d/stats.json >/dev/null"
done
# Periodic checkpoints drain the workers first; they change no output.
# A release build runs LSASS in well under a second: five copies give
# the 100 ms interval room for several checkpoints (a sanitizer build is
# slow enough with one).
if grep -q '^CF_SANITIZE:BOOL=ON' "${CF_BINARY_DIR:-$(dirname "$CF")}/CMakeCache.txt" 2>/dev/null; then
    cp "$T/lsass.jsonl" "$T/lsass_ck.jsonl"
else
    for _ in 1 2 3 4 5; do cat "$T/lsass.jsonl"; done > "$T/lsass_ck.jsonl"
fi
run_in "$T/lc0" 1 "$T/lsass_ck.jsonl" "${RULES[@]}"
printf 'state:\n  interval: 100ms\n' > "$T/ck.yaml"
run_in "$T/lc1" 1 "$T/lsass_ck.jsonl" "${RULES[@]}" --config "$T/ck.yaml" --state st
run_in "$T/lc2" 2 "$T/lsass_ck.jsonl" "${RULES[@]}" --config "$T/ck.yaml" --state st
check "LSASS with state.interval 100ms, 2 threads: several checkpoints" \
    'jq -e ".checkpoints.written > 2 and .checkpoints.failed == 0" "$T/lc2/stats.json" >/dev/null'
# state.background (the default) forks a child for periodic checkpoints,
# with worker threads running too; false writes them in-process.
check "... periodic ones written in the background, by default" \
    'jq -e -s "all(.[]; .checkpoints.written_in_background > 0)" "$T/lc1/stats.json" "$T/lc2/stats.json" >/dev/null'
printf 'state:\n  interval: 100ms\n  background: false\n' > "$T/ckfg.yaml"
run_in "$T/lcf" 2 "$T/lsass_ck.jsonl" "${RULES[@]}" --config "$T/ckfg.yaml" --state st
check "... and none with state.background: false, the output the same" \
    'jq -e ".checkpoints.written > 2 and .checkpoints.written_in_background == 0" "$T/lcf/stats.json" >/dev/null && cmp -s "$T/lc0/out.jsonl" "$T/lcf/out.jsonl"'
check "... and the alerts and incidents of one thread without checkpoints" \
    'cmp -s "$T/lc0/out.jsonl" "$T/lc1/out.jsonl" && cmp -s "$T/lc0/out.jsonl" "$T/lc2/out.jsonl"'
finish threads
