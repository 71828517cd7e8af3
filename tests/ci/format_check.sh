#!/usr/bin/env bash
# format_check.sh SOURCE_DIR - fails when a tracked .c/.h/.cpp file under
# core rules engine connectors app tests bench differs from what
# clang-format makes of it with the tree's .clang-format.
#
# The formatter is pinned to Debian bookworm's clang-format 14
# (deploy/bootstrap.sh installs it): other versions format differently, so
# with another version the check skips (77) rather than report noise; CI
# runs under deploy/bootstrap.sh, where a skipped test fails the run.
# Lists every file that differs, with the start of its diff, and how to
# fix it.  Reads the files; changes nothing.
set -u
SRC=${1:?usage: format_check.sh SOURCE_DIR}
FOLDERS=(core rules engine connectors app tests bench)
CLANG_FORMAT=${CLANG_FORMAT:-}
if [ -z "$CLANG_FORMAT" ]; then
    for c in clang-format-14 clang-format; do
        command -v "$c" >/dev/null 2>&1 && { CLANG_FORMAT=$c; break; }
    done
fi
if [ -z "$CLANG_FORMAT" ]; then
    echo "SKIP: clang-format is not installed (apt-get install clang-format)"
    exit 77
fi
version=$("$CLANG_FORMAT" --version)
major=$(printf '%s\n' "$version" | sed -n 's/.*clang-format version \([0-9]*\).*/\1/p')
if [ "$major" != 14 ]; then
    echo "SKIP: $version is not clang-format 14, the version the tree is formatted with"
    exit 77
fi
[ -f "$SRC/.clang-format" ] || { echo "FAIL: $SRC/.clang-format is missing"; exit 1; }
if ! files=$(git -C "$SRC" ls-files -- "${FOLDERS[@]}" 2>/dev/null); then
    echo "FAIL: $SRC is not a git checkout; the check covers tracked files"
    exit 1
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
checked=0 differ=0
while IFS= read -r f; do
    case "$f" in *.c | *.h | *.cpp) ;; *) continue ;; esac
    [ -f "$SRC/$f" ] || continue # deleted in the work tree, not yet in git
    checked=$((checked + 1))
    # --assume-filename makes clang-format find .clang-format from the
    # file's own folder and pick the language by extension.
    if ! "$CLANG_FORMAT" --style=file --assume-filename="$SRC/$f" \
            < "$SRC/$f" > "$T/out"; then
        echo "FAIL: $CLANG_FORMAT failed on $f"
        differ=$((differ + 1))
        continue
    fi
    if ! cmp -s "$SRC/$f" "$T/out"; then
        differ=$((differ + 1))
        echo "differs: $f"
        diff -u --label "$f" --label "$f (clang-format)" "$SRC/$f" "$T/out" |
            sed -n '3,14p' | sed 's/^/    /'
    fi
done <<< "$files"
echo "clang_format: $checked files checked with $version, $differ differ"
if [ "$checked" -eq 0 ]; then
    echo "FAIL: no C/C++ files found under ${FOLDERS[*]}"
    exit 1
fi
if [ "$differ" -ne 0 ]; then
    # clang-format 14 is not idempotent on a few macro-heavy calls: a
    # second pass settles them.
    echo "fix (twice): git ls-files -- ${FOLDERS[*]} | grep -E '\\.(c|h|cpp)\$' | xargs $CLANG_FORMAT -i"
    exit 1
fi
