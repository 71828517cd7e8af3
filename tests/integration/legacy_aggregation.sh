#!/usr/bin/env bash
# legacy_aggregation.sh - rules written with Sigma 1.x aggregations load
# as correlations and fire on a real recording.
#
# Three rules as older repositories write them (`selection | count() by X
# > N`, `| count(F) by X >= N`, `| near`; the first modelled on SigmaHQ's
# retired 61ab5496 "Quick Execution of a Series of Suspicious Commands")
# run over the OTRF LSASS_campaign_01 recording, whose discovery on MKT01
# is what they describe (systeminfo, whoami, tasklist at 04:55 per the
# ground truth; systeminfo, tasklist and a run of certutil at 04:59).  `chainfuse check` must say each was
# converted and reject a max() rule saying why; `run` must raise the
# correlation alerts under the rules' own ids, grouped by host.
# Run by CTest as `bash legacy_aggregation.sh <chainfuse binary>`; exits 77
# (skipped) when jq or ../shared is missing, 1 for the latter under
# CF_REQUIRE_SHARED=1 (tests/ci/shared_data.sh).
set -u
BIN=${1:?usage: legacy_aggregation.sh <path-to-chainfuse>}
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
if ! command -v jq >/dev/null 2>&1; then
    echo "SKIP: jq is not installed (apt-get install jq)"; exit 77
fi
ZIP=$SHARED/data/otrf/datasets/compound/LSASS_campaign_01/metasploit_logonpasswords_lsass_memory_dump.zip
[ -f "$ZIP" ] || shared_missing "$ZIP"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export CHAINFUSE_CACHE_DIR="$TMP/cache"
fail=0
check() { # check <description> <test command...>
    local what=$1; shift
    if "$@"; then echo "ok:   $what"; else echo "FAIL: $what"; fail=1; fi
}
mkdir "$TMP/rules"
cat > "$TMP/rules/burst.yml" <<'EOF'
title: Quick Execution of a Series of Discovery Commands
id: 7e3c1a52-0d5b-4f0e-9c3a-5b1f2e8d4a01
level: medium
tags: [attack.discovery, attack.t1082]
logsource: {product: windows, category: process_creation}
detection:
  selection:
    CommandLine|contains: [systeminfo, whoami, tasklist, certutil, ipconfig, gpresult]
  timeframe: 5m
  condition: selection | count() by Hostname > 5
EOF
cat > "$TMP/rules/tools.yml" <<'EOF'
title: Several Discovery Tools From One Host
id: 7e3c1a52-0d5b-4f0e-9c3a-5b1f2e8d4a02
level: medium
tags: [attack.discovery]
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: ['\systeminfo.exe', '\whoami.exe', '\tasklist.exe', '\certutil.exe']
  timeframe: 10m
  condition: selection | count(Image) by Hostname >= 3
EOF
cat > "$TMP/rules/near.yml" <<'EOF'
title: Whoami Near Systeminfo
id: 7e3c1a52-0d5b-4f0e-9c3a-5b1f2e8d4a03
level: medium
tags: [attack.discovery]
logsource: {product: windows, category: process_creation}
detection:
  sel_whoami:
    Image|endswith: '\whoami.exe'
  sel_sysinfo:
    Image|endswith: '\systeminfo.exe'
  timeframe: 2m
  condition: sel_whoami | near sel_sysinfo
EOF
cat > "$TMP/rules/max.yml" <<'EOF'
title: Longest Command Line
id: 7e3c1a52-0d5b-4f0e-9c3a-5b1f2e8d4a04
logsource: {product: windows, category: process_creation}
detection:
  selection: {Image|endswith: '\cmd.exe'}
  timeframe: 5m
  condition: selection | max(TerminalSessionId) by Hostname > 1
EOF

"$BIN" check --rules "$TMP/rules" > "$TMP/check.txt" 2>&1
check "check runs" [ $? -eq 0 ]
for n in 1 2 3; do
    check "check says rule $n was converted" \
        grep -q "^converted .* id 7e3c1a52-0d5b-4f0e-9c3a-5b1f2e8d4a0$n: legacy aggregation" "$TMP/check.txt"
done
check "check rejects max() saying why" \
    grep -q "^rejected .*4a04: .*max() has no Sigma correlation equivalent" "$TMP/check.txt"

unzip -p "$ZIP" > "$TMP/events.jsonl"
"$BIN" run --rules "$TMP/rules" --input "$TMP/events.jsonl" --output "$TMP/out.jsonl" \
    --dead-letter "$TMP/dead.jsonl" 2> "$TMP/err.txt"
check "run runs" [ $? -eq 0 ]
jq -r 'select(.kind == "alert" and .correlation)
       | "\(.rule.id) \(.correlation.type) \(.entities.host // "-") \(.time)"' \
    "$TMP/out.jsonl" | sort > "$TMP/corr.txt"
cat "$TMP/corr.txt"
for want in "4a01 event_count" "4a02 value_count" "4a03 temporal"; do
    id=7e3c1a52-0d5b-4f0e-9c3a-5b1f2e8d${want%% *}
    check "$want correlation alert under the rule's id on MKT01" \
        grep -qE "^$id ${want#* } MKT01\.pandalab\.com 2023-08-16T04:5" "$TMP/corr.txt"
done
exit "$fail"
