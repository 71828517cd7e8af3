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

# check WHAT CMD...: runs CMD and prints "ok:   WHAT" or "FAIL: WHAT",
# setting fail=1 on failure (the tests exit with $fail).
check() {
    local what=$1; shift
    if "$@"; then echo "ok:   $what"; else echo "FAIL: $what"; fail=1; fi
}

# sigma_rules: RULES=(--rules DIR ...) for the shared SigmaHQ rule
# folders that are there (rules, rules-threat-hunting,
# rules-emerging-threats).  Needs SHARED.
sigma_rules() {
    RULES=()
    local d
    for d in rules rules-threat-hunting rules-emerging-threats; do
        [ -d "$SHARED/data/sigma/$d" ] && RULES+=(--rules "$SHARED/data/sigma/$d")
    done
}

# ALERT_KEY: a jq expression giving an alert's rule and entities,
# normalised roughly as fusion does.  Repeats of an alert (same rule,
# same entities within the suppression window) are counted on the first
# one, not listed in incidents, so the dataset tests account for an
# alert when one with its key is listed.  Shared accounts, loopback
# addresses and built-in logon ids never link, so they count as absent.
ALERT_KEY='(.rule.id // .rule.title) + "|" + ([.entities | to_entries[]
      | select(.key != "process" and .key != "parent_process")
      | . as $e | $e.key + "=" + ($e.value | ascii_downcase | split("\\") | last
                      | if $e.key == "user" then split("@")[0]
                        elif $e.key == "host" and (test("^[0-9.]+$|:") | not)
                        then split(".")[0] else . end)
      | select(test("^user=(system|local service|network service)$|^(src_ip|dst_ip)=(127\\.|::1?$|0\\.0\\.0\\.0$)|^logon_id=0x(3e[457]|0)$") | not)]
      | sort | join(","))'
