#!/usr/bin/env bash
# interleaved.sh - independent intrusions in one stream stay apart.
#
# The shared recordings (OTRF LSASS campaign 01, GoldenSAML AD FS mail
# access, every OTRF atomic dataset, and the generated demo scenario) are
# each moved into an organisation of their own by bench/rewrite_recording
# (domains, hosts, accounts, addresses, GUIDs rewritten; file hashes
# kept, so the same Windows binaries and tools appear in all of them),
# shifted so their activity falls in the same hours, and interleaved by
# event time into one stream.  With the whole SigmaHQ rule set:
#   1. no incident holds alerts of two recordings;
#   2. each recording's attack, as fused when the recording is run alone,
#      is still one incident, with at least the stages it had alone.
# A recording's attack alerts are those its labels name: the ground-truth
# window on MKT01 (LSASS), the metadata's tactics (GoldenSAML, atomic),
# the truth file's lines (demo).  Repeats are counted on the first alert,
# so alerts are compared by rule and entities, as the other dataset tests
# do.  Prints, per recording, incidents, alerts and hosts, and the links
# refused for prevalence.
# Run by CTest as `bash interleaved.sh <chainfuse binary>`; exits 77
# (skipped) when jq or ../shared is missing, 1 for the latter under
# CF_REQUIRE_SHARED=1 (tests/ci/shared_data.sh).
set -u
export LC_ALL=C # sort and join must agree
BIN=${1:?usage: interleaved.sh <path-to-chainfuse>}
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
if ! command -v jq >/dev/null 2>&1; then
    echo "SKIP: jq is not installed (apt-get install jq)"; exit 77
fi
OTRF=$SHARED/data/otrf/datasets
TACTICS=$SHARED/data/attack/enterprise_tactics_ordered.json
if [ ! -d "$OTRF/atomic/_metadata" ] || [ ! -d "$OTRF/compound/LSASS_campaign_01" ] ||
   [ ! -f "$TACTICS" ] || [ ! -d "$SHARED/data/sigma/rules" ]; then
    shared_missing "$OTRF, $TACTICS or $SHARED/data/sigma/rules"
fi
BINDIR="${CF_BINARY_DIR:-$(dirname "$BIN")}"
for t in gen_scenario rewrite_recording; do
    [ -x "$BINDIR/$t" ] || { echo "FAIL: $BINDIR/$t not built"; exit 1; }
done
TMP=$(mktemp -d)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
fail=0
printf 'fusion:\n  max_alerts: 1000000\n' > "$TMP/config.yaml"
sigma_rules
run() { # run <input> <output> <stats>
    "$BIN" run "${RULES[@]}" --input "$1" --output "$2" --stats "$3" \
        --config "$TMP/config.yaml" --dead-letter "$TMP/dead.jsonl" 2> "$TMP/err.txt" ||
        { echo "FAIL: chainfuse run on $1 failed: $(tail -3 "$TMP/err.txt")"; exit 1; }
}
tactic_names() { # ATT&CK tactic ids on stdin -> names as JSON list
    local names
    names=$(while read -r ta; do jq -r --arg ta "$ta" '.[] | select(.id == $ta) | .shortname' "$TACTICS"; done)
    case " $names " in *defense-evasion*) names="$names stealth defense-impairment";; esac
    printf '%s\n' $names | jq -R . | jq -s -c .
}
meta_tactics() { awk '/tactics:/ {t=1; next} t && /^ *- *TA[0-9]+/ {print $2; next} {t=0}' "$1" | sort -u; }

# ---- the recordings, each rewritten into organisation N ---------------
# Activity medians land 7 minutes apart from 10:00 on the demo's day.
mkdir -p "$TMP/ds"
n=0
add() { # add <name> <kind> <label> < events (not in a pipeline: n counts)
    n=$((n + 1))
    local at
    at=$(date -u -d "2026-11-02T10:00:00Z + $((n * 7)) minutes" +%Y-%m-%dT%H:%M:%SZ)
    "$BINDIR/rewrite_recording" --tag "$n" --at "$at" > "$TMP/ds/$n.jsonl" 2> "$TMP/ds/$n.log" ||
        { echo "FAIL: rewrite_recording failed on $1"; exit 1; }
    printf '%s\t%s\t%s\t%s\n' "$n" "$1" "$2" "$3" >> "$TMP/ds/list.tsv"
}
unzip -p "$OTRF/compound/LSASS_campaign_01/metasploit_logonpasswords_lsass_memory_dump.zip" > "$TMP/in.jsonl"
add lsass_campaign_01 window - < "$TMP/in.jsonl"
for z in "$OTRF"/compound/GoldenSAMLADFSMailAccess/*.Zip; do unzip -p "$z"; echo; done |
    grep -v '^$' > "$TMP/in.jsonl"
add golden_saml tactics "$(meta_tactics "$OTRF/compound/_metadata/GoldenSAMLADFSMailAccess.yaml" | tactic_names)" < "$TMP/in.jsonl"
while IFS= read -r zip; do
    rel=${zip#"$OTRF/atomic/"}
    meta=$(grep -l "datasets/atomic/$rel" "$OTRF"/atomic/_metadata/*.yaml | head -1)
    [ -n "$meta" ] || continue
    unzip -p "$zip" > "$TMP/in.jsonl"
    add "$(basename "$zip" .zip)" tactics "$(meta_tactics "$meta" | tactic_names)" < "$TMP/in.jsonl"
done < <(find "$OTRF/atomic" -name '*.zip' | sort)
"$BINDIR/gen_scenario" --events 20000 --truth "$TMP/truth.csv" > "$TMP/in.jsonl"
add demo truth - < "$TMP/in.jsonl"

# LSASS ground truth: the attack ran 04:54:31-04:58:35 on MKT01; moved
# by what the rewriter reports.
lsass_n=$(awk -F'\t' '$2 == "lsass_campaign_01" { print $1 }' "$TMP/ds/list.tsv")
shift_s=$(sed -n 's/.*times moved by \(-\{0,1\}[0-9]*\) s.*/\1/p' "$TMP/ds/$lsass_n.log")
W_START=$(date -u -d "@$(( $(date -u -d 2023-08-16T04:54:31Z +%s) + shift_s ))" +%Y-%m-%dT%H:%M:%S)
W_END=$(date -u -d "@$(( $(date -u -d 2023-08-16T04:58:35Z +%s) + shift_s ))" +%Y-%m-%dT%H:%M:%S)

# ---- interleave by event time ----------------------------------------
TIME='(.UtcTime // .TimeCreated // ."@timestamp" // .TimeGenerated // .Timestamp // .eventTime // "")
       | tostring | if . == "" then "0" else
         (sub("\\.[0-9]*"; "") | sub(" "; "T") | sub("Z$"; "") + "Z"
          | try fromdateiso8601 catch 0) end'
while IFS=$'\t' read -r i name kind label; do
    jq -r "$TIME" "$TMP/ds/$i.jsonl" 2>/dev/null > "$TMP/ds/$i.keys" ||
        awk '{ print 0 }' "$TMP/ds/$i.jsonl" > "$TMP/ds/$i.keys"
    paste -d'\t' "$TMP/ds/$i.keys" <(awk -v i="$i" '{ print i "\t" NR }' "$TMP/ds/$i.jsonl") "$TMP/ds/$i.jsonl"
done < "$TMP/ds/list.tsv" | sort -t"$(printf '\t')" -k1,1n -k2,2n -k3,3n -s > "$TMP/merged.tsv"
cut -f4- "$TMP/merged.tsv" > "$TMP/merged.jsonl"
awk -F'\t' '{ print NR, $2, $3 }' "$TMP/merged.tsv" > "$TMP/map.txt" # line ds orig_line
echo "interleaved: $(wc -l < "$TMP/merged.jsonl") events from $n recordings"

KEY="($ALERT_KEY | gsub(\" \"; \"_\"))"

# attack_keys <ds> <kind> <label> <out.jsonl> <line-of-alert mapper>: the
# recording's attack alerts as "id key" lines.  Alerts carry the line
# they came from as input.offset; correlation alerts carry none.
attack_keys() {
    local ds=$1 kind=$2 label=$3 out=$4 lines=$5
    jq -r --argjson n "$( [ "$kind" = tactics ] && echo "$label" || echo '[]')" \
        "select(.kind == \"alert\" and .input.offset != null)
         | [.input.offset, .id, $KEY, .time,
            (.entities.host // \"\" | ascii_downcase | split(\".\")[0]),
            ([.tactics[] | IN(\$n[])] | any)] | map(tostring) | join(\" \")" \
        "$out" | sort -k1,1 > "$TMP/ak_all.txt"
    join "$TMP/ak_all.txt" "$lines" | awk -v ds="$ds" '$8 == ds' > "$TMP/ak_ds.txt"
    case $kind in
    tactics) awk '$6 == "true" { print $2, $3 }' "$TMP/ak_ds.txt" ;;
    window) awk -v s="$W_START" -v e="$W_END" -v h="mkt01-o$ds" \
                '$5 == h && $4 >= s && $4 < e { print $2, $3 }' "$TMP/ak_ds.txt" ;;
    truth) awk 'NR > 1 { n = split($0, f, ","); m = split(f[n], l, ";");
                         for (i = 1; i <= m; i++) print l[i] }' "$TMP/truth.csv" | sort -u > "$TMP/tl.txt"
           awk 'NR == FNR { t[$1] = 1; next } ($7 in t) { print $2, $3 }' "$TMP/tl.txt" "$TMP/ak_ds.txt" ;;
    esac | sort -u
}
# members <out.jsonl>: "alert_id incident_id severity" of final incidents
members() {
    jq -c 'select(.kind=="incident")' "$1" |
        jq -s -c 'group_by(.id) | map(last) | map(select(.merged_into == null)) | .[]' > "$TMP/final.jsonl"
    jq -r '.id as $i | .alert_ids[] | "\(.) \($i)"' "$TMP/final.jsonl" | sort -u
}

# ---- each recording alone ---------------------------------------------
echo "alone:"
while IFS=$'\t' read -r i name kind label; do
    run "$TMP/ds/$i.jsonl" "$TMP/ds/$i.out" "$TMP/ds/$i.stats"
    awk -v i="$i" '{ print NR, NR, i }' "$TMP/ds/$i.jsonl" | sort -k1,1 > "$TMP/lines_alone.txt"
    # line -> "orig ds": the recording's own line numbers
    attack_keys "$i" "$kind" "$label" "$TMP/ds/$i.out" "$TMP/lines_alone.txt" > "$TMP/ds/$i.attack"
    members "$TMP/ds/$i.out" > "$TMP/ds/$i.members"
    join <(sort -k1,1 "$TMP/ds/$i.attack") "$TMP/ds/$i.members" | awk '{ print $2, $3 }' | sort -u > "$TMP/ds/$i.key_inc"
    main=$(awk '{ print $2 }' "$TMP/ds/$i.key_inc" | sort | uniq -c | sort -k1,1nr -k2 | awk 'NR == 1 { print $2 }')
    awk -v m="$main" '$2 == m { print $1 }' "$TMP/ds/$i.key_inc" | sort -u > "$TMP/ds/$i.main_keys"
    jq -r --arg m "$main" 'select(.id == $m) | .stages[].tactic' "$TMP/final.jsonl" | sort -u > "$TMP/ds/$i.stages"
    echo "  $name: $(wc -l < "$TMP/ds/$i.attack") attack alerts, $(awk '{print $1}' "$TMP/ds/$i.key_inc" | sort -u | wc -l) distinct, in $(awk '{print $2}' "$TMP/ds/$i.key_inc" | sort -u | wc -l) incident(s); stages of the main one: $(tr '\n' ' ' < "$TMP/ds/$i.stages")"
done < "$TMP/ds/list.tsv"

# ---- interleaved ---------------------------------------------------------
run "$TMP/merged.jsonl" "$TMP/merged.out" "$TMP/merged.stats"
awk '{ print $1, $3, $2 }' "$TMP/map.txt" | sort -k1,1 > "$TMP/lines_merged.txt" # line orig ds
members "$TMP/merged.out" > "$TMP/merged.members"
jq -r 'select(.kind == "alert" and .input.offset != null) | "\(.input.offset) \(.id)"' "$TMP/merged.out" |
    sort -k1,1 | join - "$TMP/lines_merged.txt" | awk '{ print $2, $4 }' | sort -k1,1 > "$TMP/alert_ds.txt"
join "$TMP/alert_ds.txt" "$TMP/merged.members" | awk '{ print $3, $2 }' | sort -u > "$TMP/inc_ds.txt"
mixed=$(awk '{ c[$1]++ } END { for (i in c) if (c[i] > 1) print i }' "$TMP/inc_ds.txt")
echo "interleaved: $(jq -c 'select(.kind == "alert")' "$TMP/merged.out" | wc -l) alerts," \
     "$(wc -l < "$TMP/final.jsonl") incidents; fusion: $(jq -c '.fusion | {strong_links, weak_links,
     links_refused_prevalence, links_refused_organisation, cross_host_links_confirmed, noise_folded}' "$TMP/merged.stats")"
for inc in $mixed; do
    echo "  mixed incident $inc: recordings $(awk -v i="$inc" '$1 == i { print $2 }' "$TMP/inc_ds.txt" | tr '\n' ' ')"
done
check "no incident holds alerts of two recordings ($(echo $mixed | wc -w) do)" test -z "$mixed"

while IFS=$'\t' read -r i name kind label; do
    [ -s "$TMP/ds/$i.main_keys" ] || { echo "n/a  $name: no attack alert alone"; continue; }
    attack_keys "$i" "$kind" "$label" "$TMP/merged.out" "$TMP/lines_merged.txt" > "$TMP/ia.txt"
    join <(sort -k1,1 "$TMP/ia.txt") "$TMP/merged.members" | awk '{ print $2, $3 }' | sort -u |
        join - "$TMP/ds/$i.main_keys" > "$TMP/ik.txt"
    found=$(awk '{ print $1 }' "$TMP/ik.txt" | sort -u | wc -l)
    want=$(wc -l < "$TMP/ds/$i.main_keys")
    incs=$(awk '{ print $2 }' "$TMP/ik.txt" | sort -u)
    n_incs=$(echo $incs | wc -w)
    stages_ok=false
    if [ "$n_incs" -eq 1 ]; then
        jq -r --arg m "$incs" 'select(.id == $m) | .stages[].tactic' "$TMP/final.jsonl" | sort -u > "$TMP/is.txt"
        [ -z "$(comm -23 "$TMP/ds/$i.stages" "$TMP/is.txt")" ] && stages_ok=true
        info=$(jq -r --arg m "$incs" 'select(.id == $m) | "\(.alert_count) alerts, \(.entities.hosts | length) host(s), \(.severity)"' "$TMP/final.jsonl")
    fi
    check "$name: its attack ($want distinct alerts) is one incident (${info:-$n_incs incidents}, $found found) with its stages" \
        test "$found" -eq "$want" -a "$n_incs" -eq 1 -a "$stages_ok" = true
    info=
done < "$TMP/ds/list.tsv"
exit $fail
