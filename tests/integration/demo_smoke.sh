#!/usr/bin/env bash
# demo_smoke.sh CHAINFUSE - a smoke test of the demo (deploy/demo.sh): the
# project's rule pack (rules/pack) against the generated scenario
# (bench/gen_scenario.c) runs, every attack step in the generator's truth
# file raises at least one pack alert on one of the step's own input
# lines, on the step's host (steps detected by a correlation rule: that
# correlation must fire), and the background stays quiet.
#
# NOT evidence of detection quality: the generator was written to emit
# what the rule pack detects (and the background to sit just outside
# it), so passing shows that the demo still works end to end, not that
# the rules or the matcher detect real attacks.  That evidence comes from
# the golden cases (tests/golden), the SigmaHQ regression cases
# (test_regression, test_ruleset), the differential test against the
# oracle and the OTRF recordings (lsass_campaign, atomic_datasets).
#
# False-positive bound: the background is built of benign look-alikes that
# sit just outside each rule (plain whoami, RDP from the jump host,
# Defender reading LSASS, OneDrive Run keys, PowerShell -File, private
# destinations...), so a correct engine raises no alert of level low or
# above on it.  We allow one per 1000 background events (20 for the
# default 20000); more means the demo's rules or generator drifted apart.
# Informational alerts (the base rules of the correlations) are counted
# and printed, not bounded.
#
# Needs jq and gen_scenario in CF_BINARY_DIR; builds nothing.
set -uo pipefail
CF="$1"
SRC="${CF_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
GEN="${CF_BINARY_DIR:-$(dirname "$CF")}/gen_scenario"
[ -x "$GEN" ] || { echo "FAIL: $GEN not built (it is bench/gen_scenario.c; build the project first)"; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh" # jq, $T, the rule cache
BACKGROUND=20000

"$GEN" --events "$BACKGROUND" --truth "$T/truth.csv" > "$T/s.jsonl" || { echo "FAIL: gen_scenario failed"; exit 1; }
CONFIG=()
[ -f "$SRC/deploy/demo.yml" ] && CONFIG=(--config "$SRC/deploy/demo.yml")
start=$(date +%s.%N)
if ! "$CF" run --rules "$SRC/rules/pack" "${CONFIG[@]}" --input "$T/s.jsonl" \
        --output "$T/out.jsonl" --dead-letter "$T/dead.jsonl" 2>"$T/err"; then
    echo "FAIL: chainfuse run failed:"; sed 's/^/    /' "$T/err" | head -20; exit 1
fi
end=$(date +%s.%N)
echo "demo smoke: $(wc -l < "$T/s.jsonl") events, $(($(wc -l < "$T/truth.csv") - 1)) attack steps," \
     "$(grep -c '"kind":"alert"' "$T/out.jsonl") alerts, run took $(echo "$end - $start" | bc 2>/dev/null || echo '?') s"

# offset<TAB>host<TAB>title<TAB>level<TAB>is_correlation
jq -r 'select(.kind == "alert")
       | [(.input.offset // 0), (.entities.host // ""), .rule.title,
          (.rule.level // .severity // ""), (if .correlation then 1 else 0 end)]
       | @tsv' "$T/out.jsonl" > "$T/alerts.tsv"

awk -F'\t' -v bg="$BACKGROUND" '
function lc(s) { return tolower(s) }
FNR == NR {
    if ($5 == 1) { corr[$3] = 1; if ($2 != "") corrhost[$3, lc($2)] = 1; next }
    n_alerts++
    host[$1, lc($2)] = 1; title[$1, $3] = 1; at[$1] = 1
    off[n_alerts] = $1; lvl[n_alerts] = $4; ttl[n_alerts] = $3
    next
}
FNR == 1 { next }   # CSV header
{
    # time,host,user,tactic,technique,rule_title,lines (titles have no commas)
    split($0, f, ","); steps++
    n = split(f[7], ls, ";"); hit = 0; exact = 0
    for (i = 1; i <= n; i++) {
        attack[ls[i]] = 1
        if ((ls[i], lc(f[2])) in host) hit = 1
        if ((ls[i], f[6]) in title) exact = 1
    }
    if (f[6] in corr) { hit = 1; exact = 1 }
    if (hit) { ok++; printf "ok:   %-20s %-11s %-22s %s%s\n", f[4], f[5], f[2], f[6], exact ? "" : "  (raised by other pack rules, not this one)"; if (!exact) other++ }
    else { bad++; printf "FAIL: %-20s %-11s %-22s %s: no pack alert on its %d line(s) %s\n", f[4], f[5], f[2], f[6], n, f[7] }
}
END {
    for (i = 1; i <= n_alerts; i++) {
        if (off[i] in attack) continue
        if (lvl[i] == "informational") { info++; continue }
        fp++; fpt[ttl[i]]++
    }
    bound = int(bg / 1000)
    printf "demo smoke: %d/%d steps detected (%d only by a different rule than expected)\n", ok, steps, other
    printf "demo smoke: false positives on background: %d (bound %d), informational: %d\n", fp, bound, info
    for (t in fpt) printf "    %5d  %s\n", fpt[t], t
    if (bad > 0 || fp > bound) exit 1
}' "$T/alerts.tsv" "$T/truth.csv"
