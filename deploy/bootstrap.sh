#!/usr/bin/env bash
# bootstrap.sh - everything a fresh Debian bookworm machine needs, in one
# idempotent command.
#
#   deploy/bootstrap.sh demo   install what is missing, build, run the demo
#   deploy/bootstrap.sh test   install what is missing, build (release and
#                              ASan+UBSan), run the whole test suite on both;
#                              a skipped test fails the run, and so does
#                              missing shared data (CF_REQUIRE_SHARED=1)
#   deploy/bootstrap.sh build  install what is missing and build only
#
# Packages come from Debian only; nothing is downloaded at build time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${1:-demo}"
JOBS="${CF_JOBS:-$(nproc)}"

PACKAGES=(build-essential cmake pkg-config g++ libhyperscan-dev
          libsimdjson-dev libjansson-dev libyaml-dev libpcre2-dev zlib1g-dev
          libssl-dev libexpat1-dev libcmocka-dev jq unzip clang-format
          librdkafka-dev kcat libcurl4-openssl-dev libmicrohttpd-dev curl
          openssl libhiredis-dev redis-server)

install_missing() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "bootstrap: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
}

build() { # build DIR [cmake args...]
    local dir="$1"; shift
    cmake -S "$ROOT" -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS"
}

run_tests() { # run_tests DIR [ctest args...]
    local dir="$1" log rc
    shift
    log="$dir/ctest.log"
    (cd "$dir" && ctest -j "$JOBS" --output-on-failure --timeout 1200 "$@") |
        tee "$log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || return "$rc"
    # In test mode nothing may pass by skipping: a skipped test checked
    # nothing (missing jq, clang-format or shared data).
    if [ "$MODE" = test ] && grep -q '(Skipped)' "$log"; then
        echo "bootstrap: tests were skipped; in test mode that is a failure:" >&2
        grep '(Skipped)' "$log" >&2
        return 1
    fi
}

install_missing
case "$MODE" in
build)
    build "$ROOT/build" -DCMAKE_BUILD_TYPE=Release
    ;;
demo)
    build "$ROOT/build" -DCMAKE_BUILD_TYPE=Release
    exec "$ROOT/deploy/demo.sh" "$ROOT/build"
    ;;
test)
    # A checkout without the shared datasets fails instead of skipping
    # (tests/unit/shared_data.h, tests/ci/shared_data.sh).
    export CF_REQUIRE_SHARED=1
    export CHAINFUSE_CACHE_DIR="$ROOT/build/cache"
    build "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DCF_WERROR=ON
    # The optimised build checks parity with the oracle on every event of
    # every shared recording.
    CF_TIMING_ASSERTS=1 CF_DIFFERENTIAL_MAX_EVENTS=0 run_tests "$ROOT/build"
    # The sanitizer build runs the same suite but samples the recordings
    # in the differential test, and leaves out the whole-dataset
    # command-line runs that the optimised build has just run (SigmaHQ
    # check, LSASS campaign, atomic datasets, the interleaved intrusions,
    # the shapes, clocks and stock-SigmaHQ demo runs, and the restart and
    # delivery fault runs over whole recordings): under ASan they take
    # most of an hour and exercise no code the unit tests and the smaller
    # integration tests do not; and the formatting check, which does not
    # depend on the build.
    export CHAINFUSE_CACHE_DIR="$ROOT/build-asan/cache"
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    build "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCF_SANITIZE=ON \
        -DCF_WERROR=ON
    CF_DIFFERENTIAL_MAX_EVENTS="${CF_DIFFERENTIAL_MAX_EVENTS:-2000}" \
        run_tests "$ROOT/build-asan" \
        -E '^(sigmahq_check|lsass_campaign|atomic_datasets|clang_format|interleaved|shapes|clocks|demo_sigmahq|fault_restart|kafka_fault_restart|fault_redis|webhook_run)$'
    ;;
*)
    echo "usage: deploy/bootstrap.sh demo|test|build" >&2
    exit 2
    ;;
esac
