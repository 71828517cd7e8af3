#!/usr/bin/env bash
# alert_event.sh CHAINFUSE - an alert's "event" is the input event exactly
# as it came in: a 30-digit integer stays an integer, 1.50 stays 1.50,
# 1e3 stays 1e3, escapes stay escapes (\u00e9, \/, a surrogate pair), key
# order and duplicate keys are kept.  Only the whitespace around the
# object (and a CRLF line end) is not part of it.  Checked on the bytes of
# the output, not through a JSON parser, which would normalise exactly
# what is being tested.
set -uo pipefail
CF="$1"
. "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"

cat > "$T/rule.yml" <<'R'
title: Host WS1
id: 7e57a1e0-0000-4000-8000-000000000001
level: medium
tags: [attack.discovery]
logsource: {product: windows}
detection:
  selection:
    Hostname: WS1
  condition: selection
R
# Lines 1 and 2 are the events; line 2 has blanks around it and a CRLF end.
E1='{"z":1,"Channel":"Security","Hostname":"WS1","Big":123456789012345678901234567890,"F":1.50,"E":1e3,"N":-0.0,"U":"caf\u00e9 \ud83d\ude00 \"q\" \/ é","A":[1.0, 2E-2 ,{"b":null,"a":true}],"z":2,"UtcTime":"2023-08-16 04:54:31.123"}'
E2='{ "Channel" : "Security" , "Hostname" : "WS1" , "Id" : 340282366920938463463374607431768211457 , "UtcTime" : "2023-08-16 04:54:32.000" }'
printf '%s\n  %s \r\n' "$E1" "$E2" > "$T/events.jsonl"

"$CF" run --rules "$T/rule.yml" --input "$T/events.jsonl" --output "$T/out.jsonl" \
    --dead-letter "$T/dead.jsonl" 2>"$T/err"
check "run succeeds with two alerts" '[ $? -eq 0 ] && [ "$(jq -s "map(select(.kind==\"alert\")) | length" "$T/out.jsonl")" -eq 2 ]'
check "every output line is valid JSON" 'jq -e . "$T/out.jsonl" >/dev/null'
check "event 1 is embedded byte for byte, last in the record" 'grep -qF -- "\"event\":$E1}" "$T/out.jsonl"'
check "event 2 is embedded byte for byte, without the blanks around it" 'grep -qF -- "\"event\":$E2}" "$T/out.jsonl"'
check "no carriage return reaches the output" '! grep -q $'"'"'\r'"'"' "$T/out.jsonl"'
finish alert_event
