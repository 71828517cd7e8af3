# webhook_test.sh - sourced by the tests that run the webhook output
# against tests/tools/webhook_receiver (BUILD: the build folder).
# Skips (77) without jq, curl or the receiver; sets TMP (removed at exit
# with every receiver started), OLD and NEW (test secrets: the Standard
# Webhooks specification's test vector and another), and defines check,
# receiver and secrets_absent.
for tool in jq curl openssl; do
    command -v $tool >/dev/null 2>&1 ||
        { echo "SKIP: $tool is not installed"; exit 77; }
done
RECEIVER=$BUILD/webhook_receiver FEED=$BUILD/webhook_feed
[ -x "$RECEIVER" ] ||
    { echo "SKIP: $RECEIVER not built (apt-get install libmicrohttpd-dev)"; exit 77; }
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
fail=0
check() { # check <description> <test command...>
    local what=$1; shift
    if "$@"; then echo "ok:   $what"; else echo "FAIL: $what"; fail=1; fi
}
OLD=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
NEW=whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=

# receiver NAME SECRETS [PLAN]: starts one logging to $TMP/NAME.log, sets
# PORT, and posts PLAN (see webhook_receiver.c) to its control endpoint.
receiver() {
    "$RECEIVER" --port-file "$TMP/$1.port" --log "$TMP/$1.log" \
        --secrets "$2" 2> "$TMP/$1.err" &
    PIDS+=($!)
    for _ in $(seq 100); do [ -s "$TMP/$1.port" ] && break; sleep 0.05; done
    PORT=$(cat "$TMP/$1.port")
    [ -z "${3:-}" ] ||
        printf '%s\n' "$3" | curl -s -o /dev/null --data-binary @- "http://127.0.0.1:$PORT/_control"
}

# secrets_absent FILE...: no test secret, with or without its prefix.
secrets_absent() {
    local s
    for s in "$OLD" "$NEW" "${OLD#whsec_}" "${NEW#whsec_}"; do
        grep -lF -- "$s" "$@" 2>/dev/null && return 1
    done
    return 0
}
