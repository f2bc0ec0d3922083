#!/bin/sh
# check-format.sh <repo root>
#
# Runs `clang-format --dry-run --Werror` (style from the repo's .clang-format) over the
# C sources of libgc/ inspectd/ tests/ bench/ examples/: the files git tracks plus the
# untracked ones it does not ignore, or every .c/.h when this is not a git checkout.
# Exits 77 (CTest: skipped) when clang-format is missing. Fix a failure with
# `clang-format -i <file>`.
set -eu

root=${1:?usage: $0 <repo root>}
cd "$root"
dirs="libgc inspectd tests bench examples"

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
    cf=$(command -v clang-format || command -v clang-format-14 || true)
fi
if [ -z "$cf" ] || ! command -v "$cf" >/dev/null 2>&1; then
    echo "format.check: skipped: clang-format is not installed (apt-get install clang-format)"
    exit 77
fi

list=$(mktemp)
trap 'rm -f "$list"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # shellcheck disable=SC2086 # $dirs is a word list on purpose
    git ls-files --cached --others --exclude-standard -- $dirs |
        grep -E '\.[ch]$' >"$list" || true
else
    for d in $dirs; do
        [ -d "$d" ] && find "$d" -type f \( -name '*.c' -o -name '*.h' \)
    done | sort >"$list"
fi

n=$(awk 'END { print NR }' "$list")
if [ "$n" -eq 0 ]; then
    echo "format.check: no C sources to check"
    exit 0
fi
# Files listed by git but deleted in the work tree are skipped.
status=0
while IFS= read -r f; do
    [ -f "$f" ] || continue
    "$cf" --style=file --dry-run --Werror "$f" || status=1
done <"$list"
if [ "$status" -ne 0 ]; then
    echo "format.check: files above differ from .clang-format ($("$cf" --version)); run clang-format -i on them"
    exit 1
fi
echo "format.check: $n files formatted ($("$cf" --version))"
