# harness.sh - sourced by tests/integration/*.sh (this folder is not a
# test): needs jq, makes a scratch folder $T removed on exit with its own
# rule cache, and counts checks.  `check NAME 'SHELL TEST'` prints ok or
# FAIL; `finish NAME` prints the tally and exits non-zero on a failure.
command -v jq >/dev/null || { echo "SKIP: jq not installed (deploy/bootstrap.sh installs it)"; exit 77; }
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
export CHAINFUSE_CACHE_DIR="$T/cache"
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok: $1"; else fail=$((fail + 1)); echo "FAIL: $1"; fi; }
finish() { echo "$1: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
