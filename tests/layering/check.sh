#!/usr/bin/env bash
# check.sh SOURCE_DIR BUILD_DIR - proves the layers only point down.
#
#   core <- rules <- engine <- connectors <- app
#
# 1. No source reaches another folder with a relative include ("../").
# 2. Every quoted include of a layer's file names a header of that layer
#    or of one below it.
# 3. Symbols: no object file uses a cf_ symbol defined by a layer above
#    its own, and no two object files use each other's symbols (a call
#    cycle between files, as rulebook.c and sigma_correlation.c had).
# 4. The build itself refuses an upward include: each probe target
#    (CMakeLists.txt, "Layering") compiles one header of some layer
#    against one layer's library; it must build exactly when the header's
#    layer is not above the library's.
#
# usage: check.sh SOURCE_DIR BUILD_DIR [LIB_LAYER:HEADER_LAYER:TARGET ...]
set -u
SRC="$1"
BUILD="$2"
shift 2
cd "$SRC" || exit 1
LAYERS=(core rules engine connectors app)
fail=0

layer_index() { # layer_index PATH -> index of the folder's layer
    local top="${1%%/*}"
    for i in "${!LAYERS[@]}"; do
        [ "${LAYERS[$i]}" = "$top" ] && { echo "$i"; return; }
    done
    echo -1
}

# 1 and 2.
for f in $(git ls-files core rules engine connectors app | grep -E '\.(c|cpp|h)$'); do
    own=$(layer_index "$f")
    while IFS= read -r inc; do
        if [[ "$inc" == ../* ]]; then
            echo "layering: $f includes \"$inc\": relative includes across folders are not allowed"
            fail=1
            continue
        fi
        found=-1
        for i in "${!LAYERS[@]}"; do
            d="${LAYERS[$i]}"
            cand="$d/$inc"
            [ -f "$cand" ] && { found=$i; break; }
        done
        # A connector's own header lives in its folder, named "<name>/x.h".
        if [ "$found" -lt 0 ] && [ -f "$(dirname "$f")/$inc" ]; then found=$own; fi
        if [ "$found" -lt 0 ]; then
            echo "layering: $f includes \"$inc\", which is in no layer"
            fail=1
        elif [ "$found" -gt "$own" ]; then
            echo "layering: $f (${LAYERS[$own]}) includes \"$inc\" from ${LAYERS[$found]}, a layer above it"
            fail=1
        fi
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done

# 3. Symbol use between object files.
declare -A def_layer def_obj
uses=$(mktemp)
trap 'rm -f "$uses"' EXIT
for i in 0 1 2 3; do
    lib="$BUILD/libcf_${LAYERS[$i]}.a"
    [ -f "$lib" ] || { echo "layering: $lib not built"; exit 1; }
    while read -r obj kind sym; do
        if [ "$kind" = U ]; then
            echo "$i $obj $sym" >>"$uses"
        else
            def_layer[$sym]=$i
            def_obj[$sym]="$obj"
        fi
    done < <(nm -A "$lib" 2>/dev/null | awk '{n=split($1,a,":"); obj=a[2];
        if ($2 == "U" && $3 ~ /^cf_/) print obj, "U", $3;
        else if (NF == 3 && $3 ~ /^cf_/ && $2 ~ /^[TDBR]$/) print obj, "D", $3}')
done
declare -A edge
while read -r i obj sym; do
    dl="${def_layer[$sym]:-}"
    [ -z "$dl" ] && continue
    if [ "$dl" -gt "$i" ]; then
        echo "layering: $obj (${LAYERS[$i]}) calls $sym, defined in ${LAYERS[$dl]}, a layer above"
        fail=1
    fi
    edge["$obj>${def_obj[$sym]}"]="$sym"
done <"$uses"
for e in "${!edge[@]}"; do
    a="${e%%>*}"; b="${e##*>}"
    [ "$a" = "$b" ] && continue
    if [ -n "${edge["$b>$a"]:-}" ] && [[ "$a" < "$b" ]]; then
        echo "layering: $a and $b call each other (${edge[$e]} / ${edge["$b>$a"]}); make the dependency one-way"
        fail=1
    fi
done
# 4. The compiler's verdict on every probe.
for probe in "$@"; do
    IFS=: read -r lib hdr target <<<"$probe"
    li=$(layer_index "$lib/"); hi=$(layer_index "$hdr/")
    if cmake --build "$BUILD" --target "$target" >/dev/null 2>&1; then
        built=1
    else
        built=0
    fi
    if [ "$hi" -le "$li" ] && [ "$built" -eq 0 ]; then
        echo "layering: $lib cannot include a header of $hdr ($target failed to build)"
        fail=1
    elif [ "$hi" -gt "$li" ] && [ "$built" -eq 1 ]; then
        echo "layering: $lib compiled a header of $hdr, a layer above it ($target)"
        fail=1
    fi
done
[ "$fail" -eq 0 ] && echo "layering: ok ($# probes)"
exit "$fail"
