#!/usr/bin/env bash
# golden.sh CHAINFUSE [CASE...] - runs every golden case under tests/golden
# (or only the named ones) through `chainfuse run` and compares the alerts
# it raises, as (rule id, 1-based input line) pairs, with the case's
# expected.jsonl.  The expected files are written by hand from the Sigma
# specification, not produced by the engine: they are the independent
# truth.  Correlation alerts are not compared (they have no input line).
#
# Run by CTest; exits 77 (skipped) without jq, non-zero if any case fails.
set -uo pipefail
CF="$1"
shift
ROOT="${CF_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
GOLDEN="$ROOT/tests/golden"
command -v jq >/dev/null || { echo "SKIP: jq not installed (deploy/bootstrap.sh installs it)"; exit 77; }
[ -x "$CF" ] || { echo "FAIL: chainfuse binary '$CF' not found or not executable"; exit 1; }
[ -d "$GOLDEN" ] || { echo "FAIL: no golden cases at $GOLDEN"; exit 1; }
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
export CHAINFUSE_CACHE_DIR="$T/cache"

cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
    for d in "$GOLDEN"/*/; do
        [ -f "$d/events.jsonl" ] && cases+=("$(basename "$d")")
    done
fi

pass=0 fail=0
for c in "${cases[@]}"; do
    dir="$GOLDEN/$c"
    if [ -d "$dir/rules" ]; then rules="$dir/rules"; else rules="$dir/rules.yml"; fi
    args=(run --rules "$rules" --input "$dir/events.jsonl" --output "$T/$c.out"
          --dead-letter "$T/$c.dead")
    [ -f "$dir/config.yml" ] && args+=(--config "$dir/config.yml")
    "$CF" "${args[@]}" 2>"$T/$c.err"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        fail=$((fail + 1))
        echo "FAIL: $c: chainfuse exited with status $rc:"
        sed 's/^/    /' "$T/$c.err" | head -20
        continue
    fi
    jq -r 'select(.kind == "alert" and .correlation == null)
           | "\(.rule.id) \(.input.offset)"' "$T/$c.out" | sort > "$T/$c.got"
    jq -r '"\(.rule) \(.offset)"' "$dir/expected.jsonl" | sort > "$T/$c.want"
    if diff -u --label "expected ($c)" --label "got ($c)" \
            "$T/$c.want" "$T/$c.got" > "$T/$c.diff"; then
        pass=$((pass + 1))
        echo "ok: $c ($(wc -l < "$T/$c.want") alerts)"
    else
        fail=$((fail + 1))
        echo "FAIL: $c (lines: rule-id offset; see tests/golden/$c/README.md)"
        sed 's/^/    /' "$T/$c.diff"
        [ -s "$T/$c.dead" ] && { echo "    dead-lettered:"; sed 's/^/      /' "$T/$c.dead" | head -5; }
        [ -s "$T/$c.err" ] && { echo "    stderr:"; sed 's/^/      /' "$T/$c.err" | head -5; }
    fi
done
echo "golden: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
