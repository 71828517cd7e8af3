#!/usr/bin/env bash
# no_mutable_globals.sh - chainfuse keeps no mutable global state.
#
# Lists every object (static or not, file or function scope) that the
# layers' libraries and the program place in writable storage: .data,
# .bss and their thread-local twins .tdata/.tbss.  Read-only tables
# (.rodata, .data.rel.ro) are fine.  The allowed exceptions, by name:
# the allocation fault-injection countdown in core/alloc.c (and its
# counter of refusals), which production code never sets, and the
# program's count of stop signals (app/chainfuse.c `stop_signals`, a
# volatile sig_atomic_t: a signal handler can set nothing else).  Compiler-generated
# C++ exception-handling references (DW.ref.*) are not state, and
# simdjson's header-only logger, which a Debug build compiles into
# json_decode.cpp's object, is the library's, not ours.
#
# Run by CTest as `bash no_mutable_globals.sh <chainfuse binary>`; reads
# the object files under CF_BINARY_DIR (the build directory).  Exits 77
# (skipped) when objdump is missing.
set -u
BIN=${1:?usage: no_mutable_globals.sh <path-to-chainfuse>}
BUILD=${CF_BINARY_DIR:-$(dirname "$BIN")}
if ! command -v objdump >/dev/null 2>&1; then
    echo "SKIP: objdump is not installed (binutils)"; exit 77
fi
objects=()
for lib in core rules engine kafka webhook connectors; do
    f="$BUILD/libcf_$lib.a"
    [ -f "$f" ] || { echo "FAIL: $f not built"; exit 1; }
    objects+=("$f")
done
while IFS= read -r o; do objects+=("$o"); done \
    < <(find "$BUILD/CMakeFiles/chainfuse.dir" -name '*.o' 2>/dev/null)

found=$(for f in "${objects[@]}"; do
    objdump -t "$f" | awk -v lib="$(basename "$f")" '
        /file format/ { obj = $1; sub(/:$/, "", obj) }
        {
            for (i = 1; i <= NF; i++)
                if ($i ~ /^\.(data|bss|tdata|tbss)(\.|$)/ &&
                    $i !~ /^\.data\.rel\.ro/ && $NF !~ /^DW\.ref\./ &&
                    $NF !~ /^_ZZ?N8simdjson/ && $NF !~ /^\./)
                    print lib ": " obj ": " $NF " (" $i ")"
        }'
done | grep -v -E ': alloc\.c\.o: (countdown|refused) |/app/chainfuse\.c\.o: stop_signals \(' | sort -u)
if [ -n "$found" ]; then
    echo "FAIL: mutable global or static state (make it const, or pass it in):"
    echo "$found" | sed 's/^/    /'
    exit 1
fi
echo "ok: no mutable global state outside core/alloc.c's fault countdown" \
     "and app/chainfuse.c's stop_signals" \
     "(${#objects[@]} libraries and objects checked)"
