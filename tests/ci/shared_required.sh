#!/usr/bin/env bash
# shared_required.sh [-- NAME COMMAND [ARG...]]... - a checkout without the
# shared data (CF_SHARED_DIR pointing at nothing) must not go green.
#
# For every test that reads the shared data (CMake lists them: their
# source mentions CF_SHARED_DIR), run as CTest would but with
# CF_SHARED_DIR set to a folder that does not exist:
#   - with CF_REQUIRE_SHARED=1 (what CI sets) it must fail - not pass, not
#     skip - and say that the shared data is missing, naming CF_SHARED_DIR;
#   - without it, it must skip (77) or pass (a test that needs the data for
#     only some of its cases runs the others), never fail.
set -u
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export CHAINFUSE_CACHE_DIR="$T/cache"
MISSING="$T/no-shared-here"
pass=0 fail=0 n=0

check_one() { # check_one NAME COMMAND...
    local name=$1 rc out
    shift
    n=$((n + 1))
    out=$(env CF_SHARED_DIR="$MISSING" CF_REQUIRE_SHARED=1 "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then
        echo "FAIL: $name exits $rc without the shared data under CF_REQUIRE_SHARED=1"
        printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /'
        fail=$((fail + 1))
        return
    fi
    if ! printf '%s\n' "$out" | grep -q "shared data missing.*CF_SHARED_DIR"; then
        echo "FAIL: $name fails ($rc) under CF_REQUIRE_SHARED=1 but does not say the shared data is missing (CF_SHARED_DIR)"
        printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /'
        fail=$((fail + 1))
        return
    fi
    out=$(env -u CF_REQUIRE_SHARED CF_SHARED_DIR="$MISSING" "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        echo "FAIL: $name exits $rc without the shared data (must skip: 77)"
        printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /'
        fail=$((fail + 1))
        return
    fi
    echo "ok: $name: fails under CF_REQUIRE_SHARED=1, exits $rc without it"
    pass=$((pass + 1))
}

# Split the arguments at each "--" into NAME COMMAND....
args=()
for a in "$@" --; do
    if [ "$a" = -- ]; then
        [ ${#args[@]} -gt 0 ] && check_one "${args[@]}"
        args=()
    else
        args+=("$a")
    fi
done
echo "shared_required: $pass of $n tests fail without the shared data when it is required"
[ "$n" -gt 0 ] || { echo "FAIL: no test is listed as reading the shared data"; exit 1; }
[ "$fail" -eq 0 ]
