#!/bin/sh
# run.sh <rcgc-demo> [test files...]: the browser tests of the dashboard (CTest
# web.browser). Starts two leak-hunting demos serving the inspector on 127.0.0.1:0 with
# control requests on — the plain demo (`1 --serve`) and one with 100,000 extra Record
# objects (`--extra 100000`, for the virtualized objects table) — runs the tests
# (node --test: *.test.mjs, or the files given) with their URLs in RCGC_WEB_BASE_URL and
# RCGC_WEB_EXTRA_URL (and the demo program in RCGC_WEB_DEMO, for the tests that start
# one of their own), then stops both demos by pid.
#
# The browser is Debian's chromium, /usr/bin/chromium (package chromium; RCGC_WEB_CHROMIUM
# names another build), driven by playwright-core from package-lock.json (npm ci on first
# use; no browser is ever downloaded). Without the browser or node the test is skipped
# (exit 77), unless CI is set: then it fails. Screenshots of every view go to
# $RCGC_WEB_SCREENSHOTS (CTest: the build's tests/web/screenshots; default ./screenshots
# from where this was started). The demos inherit the environment, so
# RCGC_INSPECT_WEB_DIR=<repo>/web tests the page on disk without rebuilding (CTest unsets
# it: there the compiled-in page is tested).
set -eu
start_dir=$(pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../support/demo_port.sh"

if [ "$#" -lt 1 ]; then
    echo "usage: sh tests/web/run.sh <rcgc-demo> [test files...]" >&2
    exit 2
fi
case $1 in
/*) demo=$1 ;;
*) demo=$start_dir/$1 ;;
esac
shift
if [ ! -x "$demo" ]; then
    echo "tests/web: $demo is not an executable (the rcgc-demo target)" >&2
    exit 1
fi

missing_who=tests/web
. "$here/../support/missing.sh"
chromium=${RCGC_WEB_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || missing "$chromium is not installed (Debian package chromium)"
command -v node >/dev/null 2>&1 || missing "node is not installed (Debian package nodejs)"
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    echo "tests/web: node $(node --version) is too old; Node.js 18 or newer is needed" >&2
    exit 1
fi

cd "$here"
install() {
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        if ! command -v npm >/dev/null 2>&1; then
            echo "tests/web: npm is needed to install playwright-core (Debian package npm)" >&2
            exit 1
        fi
        echo "tests/web: npm ci (playwright-core, without a browser)" >&2
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefer-offline --no-audit --no-fund >&2
    fi
}
# Parallel CTest runs (several build directories) share this folder: one installs at a time.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/rcgc-tests-web-npm.lock"
    flock 9
    install
    flock -u 9
else
    install
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rcgc-web.XXXXXX")
pids=
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null || true
    done
    for p in $pids; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start <name> <demo args...>: starts the demo (it stops by itself after 900 s even if
# this script is killed) and sets $url to its inspector once it listens.
start() {
    name=$1
    shift
    : >"$tmp/$name.out"
    RCGC_INSPECT=127.0.0.1:0 RCGC_INSPECT_CONTROL=1 "$demo" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    pids="$pids $pid"
    port=$(demo_port "$tmp/$name.out" "$pid" 300)
    if [ -z "$port" ]; then
        echo "tests/web: the demo ($name: $*) did not start its inspector" >&2
        cat "$tmp/$name.out" "$tmp/$name.err" >&2
        exit 1
    fi
    url=http://127.0.0.1:$port
    echo "tests/web: demo ($*) pid $pid at $url" >&2
}

start plain 1 --serve 900
base=$url
start extra 1 --serve 900 --extra 100000
extra=$url

RCGC_WEB_BASE_URL=$base
RCGC_WEB_EXTRA_URL=$extra
RCGC_WEB_DEMO=$demo
RCGC_WEB_SCREENSHOTS=${RCGC_WEB_SCREENSHOTS:-$start_dir/screenshots}
export RCGC_WEB_BASE_URL RCGC_WEB_EXTRA_URL RCGC_WEB_DEMO RCGC_WEB_SCREENSHOTS
mkdir -p "$RCGC_WEB_SCREENSHOTS"
rm -f "$RCGC_WEB_SCREENSHOTS"/failed-*.png # a previous run's failures
echo "tests/web: screenshots in $RCGC_WEB_SCREENSHOTS" >&2

if [ "$#" -eq 0 ]; then
    set -- ./*.test.mjs
else # test files named from where this was started, or from tests/web
    for f in "$@"; do
        shift
        case $f in
        /* | -*) ;;
        *) if [ -e "$start_dir/$f" ]; then f=$start_dir/$f; fi ;;
        esac
        set -- "$@" "$f"
    done
fi
rc=0
# One file at a time (they share the demos). Node 18 has no --test-concurrency: there,
# one node --test per file.
if node --test-concurrency=1 -e 0 >/dev/null 2>&1; then
    node --test --test-concurrency=1 --test-reporter=spec "$@" || rc=$?
else
    for f in "$@"; do
        node --test --test-reporter=spec "$f" || rc=$?
    done
fi
for p in $pids; do
    if ! kill -0 "$p" 2>/dev/null; then
        echo "tests/web: a demo (pid $p) exited during the tests" >&2
        rc=1
    fi
done
if [ "$rc" -ne 0 ]; then
    for name in plain extra; do
        echo "---- tests/web: the last lines of the $name demo's stderr ----" >&2
        tail -n 20 "$tmp/$name.err" >&2 || true
    done
fi
exit "$rc"
