#!/usr/bin/env bash
# bootstrap.sh [--tests]: makes sure what building rcgc needs is installed (Debian/Ubuntu),
# and with --tests also what the full test run needs. Installs missing packages with
# apt-get, saying what it installs; prints nothing when everything is present.
set -euo pipefail

usage() {
    echo "usage: bash scripts/bootstrap.sh [--tests]"
    echo "  checks for cmake, cc, make or ninja, pkg-config, libcmocka-dev, libjansson-dev,"
    echo "  libmicrohttpd-dev, libdw-dev, nodejs and npm, and the dashboard's npm packages (npm ci"
    echo "  in web/);"
    echo "  with --tests also libgc-dev, clang-format, python3, prometheus (for promtool),"
    echo "  golang-go (for go tool pprof) and the npm packages of tests/protocol (npm ci)."
    echo "  With --tests also chromium and fonts-dejavu-core, and npm ci in tests/web (browser tests)."
}

tests=0
for arg in "$@"; do
    case $arg in
    --tests) tests=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

have_dpkg=0
command -v dpkg >/dev/null 2>&1 && have_dpkg=1

missing=() # Debian packages to install

installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

# need_tool <package> <command>...: fine when one of the commands is on PATH (however it
# was installed); otherwise <package> provides it.
need_tool() {
    local pkg=$1 c
    shift
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 && return 0
    done
    if [ "$have_dpkg" -eq 1 ] && installed "$pkg"; then
        return 0
    fi
    missing+=("$pkg")
}

# need_lib <package> <pkg-config module>: a development package, checked with dpkg -s
# (with pkg-config where there is no dpkg).
need_lib() {
    if [ "$have_dpkg" -eq 1 ]; then
        installed "$1" || missing+=("$1")
    elif ! pkg-config --exists "$2" 2>/dev/null; then
        missing+=("$1")
    fi
}

need_tool cmake cmake
need_tool gcc cc
need_tool make make ninja
need_tool pkg-config pkg-config
need_lib libcmocka-dev cmocka
need_lib libjansson-dev jansson
need_lib libmicrohttpd-dev libmicrohttpd
# elfutils' libdw: file:line for the C frames of allocation tracebacks (optional in CMake,
# RCGC_LIBDW; the tests check those frames when it is there).
need_lib libdw-dev libdw
# The dashboard compiled into librcgc-inspect takes uPlot from web/node_modules (npm ci
# below); tests/protocol needs them too (Node.js 18 or newer).
need_tool nodejs node
need_tool npm npm
if [ "$tests" -eq 1 ]; then
    need_lib libgc-dev bdw-gc # the Boehm collector: an anchor of the benchmarks
    need_tool clang-format clang-format clang-format-14
    need_tool python3 python3
    need_tool prometheus promtool # `promtool check metrics` (CTest inspectd.metrics)
    need_tool golang-go go # `go tool pprof` on the served heap profiles (CTest protocol.pprof_go)
    # tests/web (CTest web.browser): Debian's chromium, driven by playwright-core, and a
    # font for its screenshots.
    need_tool chromium /usr/bin/chromium
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$have_dpkg" -eq 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: missing: ${missing[*]} (Debian package names)." >&2
        echo "bootstrap: this is not a Debian/Ubuntu system; install their equivalents." >&2
        exit 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "bootstrap: missing packages: ${missing[*]}" >&2
        echo "bootstrap: not root and sudo is not available; as root, run:" >&2
        echo "    $cmd" >&2
        exit 1
    fi
    s=${sudo[*]:+${sudo[*]} }
    echo "bootstrap: installing ${missing[*]}:"
    echo "    ${s}apt-get update && ${s}apt-get install -y --no-install-recommends ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# cmake_minimum_required(VERSION 3.25) in CMakeLists.txt.
version=$(cmake --version | awk 'NR == 1 { print $3 }')
if [ "$(printf '%s\n' 3.25 "$version" | sort -V | head -n 1)" != 3.25 ]; then
    echo "bootstrap: cmake $version is too old; rcgc needs cmake 3.25 or newer" >&2
    exit 1
fi

root="$(cd "$(dirname "$0")/.." && pwd)"

# web/: uPlot, pinned in web/package-lock.json, which the build compiles into
# librcgc-inspect (CMake stops without it unless -DRCGC_INSPECT_WEB=OFF). Installed again
# when the lock file is newer than the installed tree.
if [ -f "$root/web/package-lock.json" ] &&
    { [ ! -f "$root/web/node_modules/.package-lock.json" ] ||
        [ "$root/web/package-lock.json" -nt "$root/web/node_modules/.package-lock.json" ]; }; then
    echo "bootstrap: npm ci in web"
    (cd "$root/web" && npm ci --no-audit --no-fund)
fi

# tests/protocol: the npm packages pinned in its package-lock.json (tests/protocol/run.sh
# also installs them on first use).
if [ "$tests" -eq 1 ]; then
    protocol_tests="$root/tests/protocol"
    if [ ! -f "$protocol_tests/node_modules/.package-lock.json" ]; then
        echo "bootstrap: npm ci in tests/protocol"
        (cd "$protocol_tests" && npm ci --no-audit --no-fund)
    fi
fi

# tests/web: playwright-core pinned in its package-lock.json, never a browser download (the
# tests drive /usr/bin/chromium; tests/web/run.sh also installs it on first use).
if [ "$tests" -eq 1 ]; then
    web_tests="$root/tests/web"
    if [ ! -f "$web_tests/node_modules/.package-lock.json" ]; then
        echo "bootstrap: npm ci in tests/web"
        (cd "$web_tests" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
    fi
fi
