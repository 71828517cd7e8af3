# harness.sh - sourced by tests/integration/*.sh (this folder is not a
# test): needs jq, makes a scratch folder $T removed on exit (kept with
# KEEP_TMP=1; background jobs killed) and a rule cache in it unless
# CHAINFUSE_CACHE_DIR names one, and counts checks.  `check NAME 'SHELL
# TEST'` prints ok or FAIL (`ok NAME` and `bad NAME` record one
# directly); `finish NAME` prints the tally and exits non-zero on a
# failure.  A script that must clean up more sets its own trap after.
command -v jq >/dev/null || { echo "SKIP: jq not installed (deploy/bootstrap.sh installs it)"; exit 77; }
T="$(mktemp -d)"
trap 'jobs -p | xargs -r kill -9 2>/dev/null; [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"' EXIT
export CHAINFUSE_CACHE_DIR="${CHAINFUSE_CACHE_DIR:-$T/cache}"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
finish() { echo "$1: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
