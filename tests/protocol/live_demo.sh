#!/bin/sh
# live_demo.sh <rcgc-demo>: starts the leak-hunting demo serving the inspector on
# 127.0.0.1:0 (a free port), checks every implemented endpoint's live answers against
# protocol/ with validate.mjs --live (control requests enabled), and stops the demo.
set -eu
demo=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../support/demo_port.sh"
out=$(mktemp "${TMPDIR:-/tmp}/rcgc-live.XXXXXX")
err=$(mktemp "${TMPDIR:-/tmp}/rcgc-live.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$out" "$err"
}
trap cleanup EXIT INT TERM
# The demo stops by itself after 120 s even if this script is killed.
RCGC_INSPECT=127.0.0.1:0 RCGC_INSPECT_CONTROL=1 "$demo" 1 --serve 120 >"$out" 2>"$err" &
pid=$!
port=$(demo_port "$out" "$pid" 100)
if [ -z "$port" ]; then
    echo "live_demo: the demo did not start its inspector" >&2
    cat "$out" "$err" >&2
    exit 1
fi
sh "$here/run.sh" --live "http://127.0.0.1:$port" --control
