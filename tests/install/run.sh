#!/usr/bin/env bash
# run.sh <rcgc build dir> <work dir> [config]
#
# CTest gc.install: installs the build into <work dir>/stage, then builds this folder's
# smoke.c against the staged copy twice, with find_package(rcgc 0.1 REQUIRED CONFIG)
# (shared and static) and with `pkg-config --cflags --libs rcgc`, and runs each binary.
# Uses $CMAKE_COMMAND (default cmake) and $CC (default cc).
set -euo pipefail

build=${1:?usage: run.sh <rcgc build dir> <work dir> [config]}
work=${2:?usage: run.sh <rcgc build dir> <work dir> [config]}
config=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
cmake=${CMAKE_COMMAND:-cmake}
cc=${CC:-cc}

rm -rf "$work"
mkdir -p "$work"
stage=$work/stage

step() { printf '\n== %s\n' "$*"; }

step "install $build into $stage"
config_args=()
[ -n "$config" ] && config_args=(--config "$config")
"$cmake" --install "$build" --prefix "$stage" "${config_args[@]}"

# The library directory (lib, lib64 or lib/<multiarch>) is wherever rcgc.pc landed.
pc=$(find "$stage" -name rcgc.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || { echo "gc.install: rcgc.pc was not installed" >&2; exit 1; }
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
echo "rcgc.pc:"
sed 's/^/    /' "$pc"
grep -qx "prefix=$stage" "$pc" || { echo "gc.install: rcgc.pc prefix is not $stage" >&2; exit 1; }

step "find_package(rcgc 0.1 REQUIRED CONFIG)"
"$cmake" -S "$here" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$stage" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Debug
"$cmake" --build "$work/consumer"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/consumer/smoke_shared"
"$work/consumer/smoke_static"
# The shared binary must really resolve librcgc from the staged prefix.
if command -v ldd >/dev/null 2>&1; then
    LD_LIBRARY_PATH="$libdir" ldd "$work/consumer/smoke_shared" | grep -F "$libdir/librcgc.so" \
        || { echo "gc.install: smoke_shared does not load the staged librcgc.so" >&2; exit 1; }
fi

step "pkg-config --cflags --libs rcgc"
flags=$(PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_LIBDIR="$pcdir" pkg-config --cflags --libs rcgc)
echo "flags: $flags"
# shellcheck disable=SC2086 # $flags is a word list on purpose
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$work/smoke_pkgconfig" \
    "$here/smoke.c" $flags
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/smoke_pkgconfig"

step "gc.install: ok"
