#!/bin/sh
# pprof_go.sh <rcgc-demo>: CTest protocol.pprof_go. GET /v1/heaps/{heap}/pprof/heap read
# by the real Go pprof (`go tool pprof`; Debian's golang-go). The leak-hunting demo serves
# the inspector on 127.0.0.1:0 while its page cache grows (render_page in
# examples/demo.c); two profiles fetched a second apart (node's fetch) are saved and:
#   go tool pprof -raw     sample types inuse_objects/count and inuse_space/bytes (the
#                          default), period type space/bytes, period 1 (exact tracing),
#                          render_page's location in examples/demo.c;
#   go tool pprof -traces  a stack with render_page as its leaf (most recent frame first);
#   go tool pprof -top -diff_base=old new
#                          render_page grew, in objects and in bytes, by whole Pages; and
#                          with the two swapped it shrank;
#   go tool pprof -raw URL pprof's own fetch of the endpoint (protocol/README.md's usage).
# Go runs offline in a temporary HOME/GOPATH/GOCACHE (GOTOOLCHAIN=local, GOPROXY=off,
# GOENV=off). Without go (or node) the test is skipped (exit 77), unless CI is set: then
# it fails. $GO names the go command (default: go on PATH).
set -eu
if [ "$#" -ne 1 ]; then
    echo "usage: sh tests/protocol/pprof_go.sh <rcgc-demo>" >&2
    exit 2
fi
case $1 in
/*) demo=$1 ;;
*) demo=$(pwd)/$1 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../support/demo_port.sh"

missing_who=protocol.pprof_go
. "$here/../support/missing.sh"
go=${GO:-go}
command -v "$go" >/dev/null 2>&1 ||
    missing "go is not installed (Debian: golang-go), so go tool pprof cannot run"
command -v node >/dev/null 2>&1 || missing "node is not installed (Node.js 18 or newer)"
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
    echo "protocol.pprof_go: node $(node --version) is too old; Node.js 18 or newer is needed" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rcgc-pprof-go.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Go offline and away from the user's home, settings and caches.
export HOME="$tmp/home" GOPATH="$tmp/gopath" GOCACHE="$tmp/gocache" PPROF_TMPDIR="$tmp/pprof"
export GOFLAGS='' GOTOOLCHAIN=local GOPROXY=off GOSUMDB=off GOENV=off GOTELEMETRY=off
mkdir "$HOME" "$PPROF_TMPDIR"
cd "$tmp" # no go.mod around

"$go" tool -n pprof >/dev/null 2>&1 || {
    echo "protocol.pprof_go: '$go' has no pprof tool ($("$go" version 2>&1))" >&2
    exit 1
}

fail() {
    echo "protocol.pprof_go: FAILED: $*" >&2
    exit 1
}

# pprof <out file> <args...>: go tool pprof, its output kept; fails the test when it fails.
pprof() {
    _out=$1
    shift
    if ! "$go" tool pprof "$@" >"$_out" 2>"$_out.err"; then
        cat "$_out" "$_out.err" >&2
        fail "go tool pprof $* exited with an error"
    fi
}

# flat <top output> <function>: the flat value of the function's row of pprof -top.
flat() {
    awk -v f="$2" '$NF == f && NF == 6 { print $1; exit }' "$1"
}

# fetch <url> <file>: the body of a 200 application/octet-stream answer.
fetch() {
    node --input-type=module -e '
import { writeFileSync } from "node:fs";
const [url, file] = process.argv.slice(1);
const r = await fetch(url);
const body = Buffer.from(await r.arrayBuffer());
const type = r.headers.get("content-type");
if (r.status !== 200 || type !== "application/octet-stream") {
  console.error(`GET ${url}: ${r.status} ${type}: ${body.subarray(0, 300)}`);
  process.exit(1);
}
writeFileSync(file, body);' "$1" "$2" || fail "GET $1"
}

# The demo stops by itself after 120 s even if this script is killed; one round of
# requests, then it serves (a request every 5 ms, each rendering a Page it never frees).
env -u RCGC_INSPECT_TOKEN RCGC_INSPECT=127.0.0.1:0 RCGC_INSPECT_CONTROL=1 \
    "$demo" 1 --serve 120 >"$tmp/demo.out" 2>"$tmp/demo.err" &
pid=$!
port=$(demo_port "$tmp/demo.out" "$pid" 100)
if [ -z "$port" ]; then
    cat "$tmp/demo.out" "$tmp/demo.err" >&2
    fail "the demo did not start its inspector"
fi
url="http://127.0.0.1:$port/v1/heaps/demo/pprof/heap"
fetch "$url" old.pb.gz
sleep 1
fetch "$url" new.pb.gz
echo "protocol.pprof_go: $("$go" version); profiles of $(wc -c <old.pb.gz) and $(wc -c <new.pb.gz) bytes"

# -raw: what pprof read of the header and the locations.
pprof raw.txt -raw old.pb.gz
sed -n '1,/^Samples:/p' raw.txt
grep -qx 'PeriodType: space bytes' raw.txt || fail "-raw: no 'PeriodType: space bytes'"
grep -qx 'Period: 1' raw.txt || fail "-raw: no 'Period: 1' (exact tracing)"
types=$(sed -n '/^Samples:$/{n;p;q;}' raw.txt)
echo "$types"
[ "$types" = "inuse_objects/count inuse_space/bytes[dflt]" ] ||
    fail "-raw: sample types '$types', not 'inuse_objects/count inuse_space/bytes[dflt]'"
site=$(grep -E '^ +[0-9]+: 0x0 M=1 render_page [^ ]*examples/demo\.c:[1-9][0-9]* ' raw.txt |
    head -n 1) || true
[ -n "$site" ] || fail "-raw: no location of render_page in examples/demo.c"
echo "protocol.pprof_go: -raw: $(echo "$site" | sed 's/^ *//')"

# -traces: render_page is the leaf of a stack (the first frame pprof prints).
pprof traces.txt -traces new.pb.gz
awk 'prev ~ /^-+\+-+$/ && $2 == "render_page" { ok = 1 } { prev = $0 } END { exit !ok }' \
    traces.txt || { cat traces.txt >&2; fail "-traces: no stack with render_page as its leaf"; }
grep -qx 'Type: inuse_space' traces.txt || fail "-traces: the default type is not inuse_space"

# -top -diff_base: render_page grew by whole Pages, in bytes and objects.
pprof size.txt -top -unit=B new.pb.gz
pprof count.txt -top -sample_index=inuse_objects new.pb.gz
pprof diff.txt -top -unit=B -diff_base=old.pb.gz new.pb.gz
pprof diffn.txt -top -sample_index=inuse_objects -diff_base=old.pb.gz new.pb.gz
pprof back.txt -top -unit=B -diff_base=new.pb.gz old.pb.gz
sed -n '1,/ flat /p' diff.txt
grep -E ' render_page$' diff.txt diffn.txt back.txt || true
bytes=$(flat size.txt render_page)
objects=$(flat count.txt render_page)
grown=$(flat diff.txt render_page)
grown_n=$(flat diffn.txt render_page)
shrunk=$(flat back.txt render_page)
for v in "${bytes%B}" "$objects" "${grown%B}" "$grown_n"; do
    case $v in
    "" | 0 | *[!0-9]*) fail "render_page: in use $bytes in $objects objects, grew by $grown in $grown_n objects (go tool pprof -top): not all positive" ;;
    esac
done
if [ "${bytes%B}" -lt "$objects" ] || [ $((${bytes%B} % objects)) -ne 0 ]; then
    fail "render_page: $bytes in $objects objects is not a whole number of bytes per Page"
fi
page=$((${bytes%B} / objects))
[ "${grown%B}" -eq $((grown_n * page)) ] ||
    fail "render_page grew by $grown, not $grown_n objects x $page bytes"
[ "$shrunk" = "-$grown" ] || fail "with the profiles swapped render_page changed by $shrunk, not -$grown"
echo "protocol.pprof_go: -diff_base: render_page grew by $grown_n Pages of $page bytes ($grown)"

# The README's usage: pprof fetching the endpoint itself.
pprof url.txt -raw "$url"
grep -qx 'inuse_objects/count inuse_space/bytes\[dflt\]' url.txt ||
    fail "go tool pprof -raw $url: not the sample types above"
grep -qE ' render_page [^ ]*examples/demo\.c:' url.txt || fail "go tool pprof -raw $url: no render_page"
echo "protocol.pprof_go: ok"
