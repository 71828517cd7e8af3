#!/usr/bin/env bash
# shapes.sh - every event shape chainfuse reads raises the same alerts.
#
# 1. OTRF atomic Windows recordings and the LSASS campaign, as
#    shipped (flat), are rewritten by build/shape_convert in every shape
#    SIEM collectors ship (ECS/Winlogbeat, Sentinel WindowsEvent, Sentinel
#    SecurityEvent/Event, Sentinel Syslog holding event XML, raw event
#    XML lines); with the whole shared SigmaHQ rule set each shape must
#    raise exactly the flat shape's alerts: same rule, same input line,
#    same event time, same entities (host included).
# 2. The OTRF Log4Shell recordings exported from Microsoft Sentinel, read
#    as they are, raise the alerts the attack should raise with stock
#    SigmaHQ rules: on Windows (WindowsEvent, Sysmon in EventData JSON)
#    PowerShell with an encoded command spawned by Tomcat; on Linux
#    (Syslog, Sysmon for Linux XML in SyslogMessage) the shell Java
#    spawned, the base64 decoding and the reverse shell; on the
#    SecurityEvent table (4688) the same PowerShell as on WindowsEvent.
# Run by CTest as `bash shapes.sh <chainfuse binary>`; shape_convert is
# beside it.  Exits 77 (skipped) when jq, unzip or ../shared is missing,
# 1 for the latter under CF_REQUIRE_SHARED=1 (tests/ci/shared_data.sh).
set -u
BIN=${1:?usage: shapes.sh <path-to-chainfuse>}
CONVERT=$(dirname "$BIN")/shape_convert
SHARED=${CF_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
. "$(dirname "${BASH_SOURCE[0]}")/../ci/shared_data.sh"
for tool in jq unzip; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed"; exit 77
    fi
done
if [ ! -x "$CONVERT" ]; then echo "FAIL: no $CONVERT (build it)"; exit 1; fi
DATA=$SHARED/data/otrf/datasets
L4S=$DATA/compound/Log4Shell
if [ ! -d "$DATA/atomic/windows" ] || [ ! -d "$L4S" ] ||
   [ ! -d "$SHARED/data/sigma/rules" ]; then
    shared_missing "$DATA/atomic/windows, $L4S or $SHARED/data/sigma/rules"
fi
TMP=$(mktemp -d)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
RULES=()
for d in rules rules-threat-hunting rules-emerging-threats; do
    [ -d "$SHARED/data/sigma/$d" ] && RULES+=(--rules "$SHARED/data/sigma/$d")
done
fail=0
check() { # check <description> <test command...>
    local what=$1; shift
    if "$@"; then echo "ok:   $what"; else echo "FAIL: $what"; fail=1; fi
}
run() { # run <input> <name>: alerts to $TMP/<name>.out, stats to .stats
    if ! "$BIN" run "${RULES[@]}" --input "$1" --output "$TMP/$2.out" \
            --stats "$TMP/$2.stats" --dead-letter "$TMP/$2.dead" \
            2> "$TMP/$2.err"; then
        echo "FAIL: chainfuse run on $2: $(tail -3 "$TMP/$2.err")"; fail=1
    fi
}
# What makes two alerts the same: rule, input line, event time, entities.
KEY='select(.kind=="alert") | [(.rule.id // .rule.title), .input.offset,
     .time, .entities] | tostring'
stat() { jq -r ".$2" "$TMP/$1.stats"; }

# 1. one recording in every shape
SHAPES="ecs windowsevent sentinel syslog xml"
# Three atomic recordings (Security auditing and Sysmon, one host and
# three, nested values) and the 53,698-event LSASS campaign; each run
# loads the whole rule set, so not every atomic recording is taken.
for zip in "$DATA"/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip \
           "$DATA"/atomic/windows/lateral_movement/host/empire_psexec_dcerpc_tcp_svcctl.zip \
           "$DATA"/atomic/windows/privilege_escalation/host/empire_uac_shellapi_fodhelper.zip \
           "$DATA/compound/LSASS_campaign_01/metasploit_logonpasswords_lsass_memory_dump.zip"; do
    if [ ! -f "$zip" ]; then shared_missing "$zip"; fi
    name=$(basename "$zip" .zip)
    unzip -p "$zip" > "$TMP/flat.jsonl"
    run "$TMP/flat.jsonl" flat
    jq -r "$KEY" "$TMP/flat.out" | sort > "$TMP/flat.keys"
    n=$(wc -l < "$TMP/flat.keys")
    for shape in $SHAPES; do
        "$CONVERT" "$shape" < "$TMP/flat.jsonl" > "$TMP/$shape.jsonl" \
            2> "$TMP/convert.err" || { echo "FAIL: shape_convert $shape"; fail=1; }
        run "$TMP/$shape.jsonl" "$shape"
        jq -r "$KEY" "$TMP/$shape.out" | sort > "$TMP/$shape.keys"
        check "$name as $shape: the flat shape's $n alerts, no more, no fewer" \
            cmp -s "$TMP/flat.keys" "$TMP/$shape.keys"
        if ! cmp -s "$TMP/flat.keys" "$TMP/$shape.keys"; then
            diff "$TMP/flat.keys" "$TMP/$shape.keys" | head -4 | cut -c1-300
        fi
        check "$name as $shape: every line an event ($(stat flat events))" \
            [ "$(stat "$shape" events)" = "$(stat flat events)" ]
        check "$name as $shape: nothing dead-lettered beyond the flat shape's" \
            [ "$(stat "$shape" dead_lettered)" = "$(stat flat dead_lettered)" ]
    done
    check "$name: the comparison is not empty" [ "$n" -gt 0 ]
done

# 2. the Log4Shell recordings as Sentinel exported them
has_alert() { # has_alert <run> <rule id> <host> <time> [process suffix]
    jq -e -s --arg r "$2" --arg h "$3" --arg t "$4" --arg p "${5:-}" \
        'any(.[]; .kind=="alert" and .rule.id==$r and .entities.host==$h
                  and .time==$t and ((.entities.process // "") | endswith($p)))' \
        "$TMP/$1.out" > /dev/null
}
unzip -p "$L4S/sysmon_log4shell_cve2021_44228_java_serialized_object.zip" \
    > "$TMP/l4s_windowsevent.jsonl"
run "$TMP/l4s_windowsevent.jsonl" l4s_windowsevent
check "WindowsEvent: all 487 rows decoded" \
    [ "$(stat l4s_windowsevent events)" = 487 ]
T=2022-05-13T08:54:08.420Z
PS='\powershell.exe'
# PowerShell from Tomcat with an encoded command: parent process,
# base64, FromBase64String, non-interactive
PS_RULES="754ed792-634f-40ae-b3bc-e0448d33f695 fb843269-508c-4b76-8b8d-88679db22ce7
          fdb62a13-9a81-4e5c-a38f-ea93a16f6d7c f4bbd493-b796-416e-bbf2-121235348529"
for rule in $PS_RULES; do
    check "WindowsEvent: $rule on WORKSTATION5 at $T (PowerShell from Tomcat)" \
        has_alert l4s_windowsevent $rule WORKSTATION5 $T "$PS"
done
check "WindowsEvent: the PowerShell's parent is Tomcat" \
    jq -e -s 'any(.[]; .kind=="alert"
                  and .rule.id=="754ed792-634f-40ae-b3bc-e0448d33f695"
                  and (.entities.parent_process | endswith("\\tomcat9.exe")))' \
    "$TMP/l4s_windowsevent.out" > /dev/null

unzip -p "$L4S/syslog_sysmon_log4shell_cve2021_44228_jndi_reference.zip" \
    > "$TMP/l4s_syslog.jsonl"
run "$TMP/l4s_syslog.jsonl" l4s_syslog
check "Syslog: all 93 rows decoded, the one cut by syslog's size limit counted" \
    [ "$(stat l4s_syslog events)/$(stat l4s_syslog events_cut_short)/$(stat l4s_syslog dead_lettered)" = 93/1/0 ]
check "Syslog: Java spawned a shell (d292e0af) on UBUNTU5 at 18:10:21.998" \
    has_alert l4s_syslog d292e0af-9a18-420c-9525-ec0ac3936892 UBUNTU5 \
        2022-05-11T18:10:21.998Z /bin/bash
check "Syslog: base64 decoding (e2072cab) at 18:10:22.017" \
    has_alert l4s_syslog e2072cab-8c9a-459b-b63c-40ae79e27031 UBUNTU5 \
        2022-05-11T18:10:22.017Z /usr/bin/base64
check "Syslog: reverse shell (83dcd9f6) at 18:10:25.513" \
    has_alert l4s_syslog 83dcd9f6-9ca8-4af7-a16e-a1c7a6b51871 UBUNTU5 \
        2022-05-11T18:10:25.513Z /bin/bash

unzip -p "$L4S/securityauditing_log4shell_cve2021_44228_java_serialized_object.zip" \
    > "$TMP/l4s_securityevent.jsonl"
run "$TMP/l4s_securityevent.jsonl" l4s_securityevent
check "SecurityEvent: all 39 rows decoded" \
    [ "$(stat l4s_securityevent events)" = 39 ]
for rule in $PS_RULES; do
    check "SecurityEvent: $rule on WORKSTATION5 at $T (4688, PowerShell from Tomcat)" \
        has_alert l4s_securityevent $rule WORKSTATION5 $T "$PS"
done

unzip -p "$L4S/syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference.zip" \
    > "$TMP/l4s_auoms.jsonl"
run "$TMP/l4s_auoms.jsonl" l4s_auoms
check "Syslog AUOMS: all 50 rows decoded" \
    [ "$(stat l4s_auoms events)/$(stat l4s_auoms dead_lettered)" = 50/0 ]

exit $fail
