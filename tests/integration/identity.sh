#!/usr/bin/env bash
# identity.sh CHAINFUSE - one identity per account, on a real recording
# (OTRF empire_psexec_dcerpc_tcp_svcctl, stock SigmaHQ rules).  The estate
# writes one user three ways: THESHIRE\pgustavo (Sysmon, Security),
# pgustavo@THESHIRE.LOCAL (Kerberos 4769) and a bare pgustavo (service
# install 7045).  Fusion learns THESHIRE = theshire.local from the events
# themselves (machine accounts on their own hosts) and keys all three as
# pgustavo@theshire.local.  Then a second estate made from the same
# recording with the same NetBIOS name THESHIRE but DNS domain
# theshire.corp (hosts, process GUIDs and logon ids rewritten), in one
# stream with the first: its pgustavo is another account.
set -u
BIN=${1:?usage: identity.sh <path-to-chainfuse>}
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
command -v jq >/dev/null || { echo "SKIP: jq not installed (deploy/bootstrap.sh installs it)"; exit 77; }
ZIP=$SHARED/data/otrf/datasets/atomic/windows/lateral_movement/host/empire_psexec_dcerpc_tcp_svcctl.zip
[ -f "$ZIP" ] && [ -d "$SHARED/data/sigma/rules" ] || shared_missing "$ZIP or $SHARED/data/sigma/rules"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok: $1"; else fail=$((fail + 1)); echo "FAIL: $1"; fi; }
RULES=()
for d in rules rules-threat-hunting rules-emerging-threats; do
    [ -d "$SHARED/data/sigma/$d" ] && RULES+=(--rules "$SHARED/data/sigma/$d")
done
run() { "$BIN" run "${RULES[@]}" --input "$1" --output "$2" --stats "$3" --dead-letter "$TMP/dead.jsonl" 2>"$TMP/err" ||
        { echo "FAIL: chainfuse run failed:"; tail -5 "$TMP/err"; exit 1; }; }

unzip -p "$ZIP" > "$TMP/a.jsonl"
run "$TMP/a.jsonl" "$TMP/out_a.jsonl" "$TMP/stats_a.json"
spellings() { jq -r 'select(.kind == "alert") | .entities.user // empty | select(test("pgustavo"; "i"))' "$1" | sort -u | paste -sd' '; }
# (incidents merged into another live on in it: their last record is not counted)
users() { jq -s -r '[.[] | select(.kind == "incident")] | group_by(.id) | map(last) | map(select(.merged_into == null))[] | .entities.users[] | select(test("pgustavo"; "i"))' "$1" | sort | uniq -c | awk '{print $1}' | paste -sd' '; }
echo "alerts name pgustavo as: $(spellings "$TMP/out_a.jsonl")"
check "the recording writes pgustavo with and without its domain" '[ "$(spellings "$TMP/out_a.jsonl" | wc -w)" -ge 2 ]'
check "fusion learned THESHIRE = theshire.local from the events" 'jq -e ".fusion.domains_learned >= 1 and .fusion.domains_ambiguous == 0" "$TMP/stats_a.json" >/dev/null'
check "each incident lists pgustavo once" '[ "$(users "$TMP/out_a.jsonl")" = 1 ]'
check "... linked as pgustavo@theshire.local, never by the bare name" 'jq -s -e "[.[] | select(.kind == \"incident\") | .links[].entity_value | select(. != null and test(\"pgustavo\"))] | unique == [\"pgustavo@theshire.local\"]" "$TMP/out_a.jsonl" >/dev/null'

# The second estate: same NetBIOS domain, another DNS domain and hosts.
sed -e 's/theshire\.local/theshire.corp/Ig' -e 's/WORKSTATION\([0-9]\)/WKS\1B/g' \
    -e 's/MORDORDC/DC2/g' -e 's/-5f6/-9f6/g' -e 's/\("[A-Za-z]*LogonId":"0x\)/\1b/g' \
    "$TMP/a.jsonl" > "$TMP/b.jsonl"
cat "$TMP/a.jsonl" "$TMP/b.jsonl" > "$TMP/ab.jsonl"
run "$TMP/ab.jsonl" "$TMP/out_ab.jsonl" "$TMP/stats_ab.json"
check "both estates' pairs are learned, and THESHIRE is ambiguous" 'jq -e ".fusion.domains_learned == 2 and .fusion.domains_ambiguous == 1" "$TMP/stats_ab.json" >/dev/null'
check "each estate's pgustavo keeps its own DNS domain; none is keyed bare" 'jq -s -e "[.[] | select(.kind == \"incident\") | .links[].entity_value | select(. != null and test(\"pgustavo\"))] | unique == [\"pgustavo@theshire.corp\", \"pgustavo@theshire.local\"]" "$TMP/out_ab.jsonl" >/dev/null'

echo "identity: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
