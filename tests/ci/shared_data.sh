# shared_data.sh - sourced by the tests/integration/*.sh that read the
# shared datasets (the `shared/` folder beside the clone, CF_SHARED_DIR).
#
# shared_missing WHAT: the shared data at WHAT is not there.  Exits 77
# (CTest: skipped), or 1 under CF_REQUIRE_SHARED=1 (CI sets it), where a
# run that skipped its dataset checks would prove nothing.  The C tests do
# the same through tests/unit/shared_data.h.
shared_missing() {
    local why="shared data missing: $1 (CF_SHARED_DIR=${CF_SHARED_DIR:-(unset)}; set CF_SHARED_DIR to the shared/ folder holding data/)"
    if [ "${CF_REQUIRE_SHARED:-0}" = 1 ]; then
        echo "FAIL: $why; CF_REQUIRE_SHARED=1 makes this a failure"
        exit 1
    fi
    echo "SKIP: $why"
    exit 77
}
