#!/bin/sh
# run_inspect.sh: builds bench_inspect (Release, in its own build directory) and measures
# issue 3's targets for the inspection server in one run on this machine: the churn
# benchmark with the server off / idle / polled at 10 Hz (interleaved), the owner's cost
# of a snapshot and the census / object (referrers) answers on a 1,000,000-object heap,
# and wrk against GET /v1/heaps/{heap}. Prints the machine, the date, each program's
# output and a table of the targets, met or not.
#
# usage: bench/run_inspect.sh [churn_ops [churn_reps [heap_objects]]]
#        (defaults 5000000 31 1000000; about a minute on 2 cores)
# environment: BENCH_BUILD_DIR (default <repo>/build/bench-inspect),
#              BENCH_NO_BUILD=1 (use the binary already in BENCH_BUILD_DIR),
#              BENCH_WRK (default: wrk on PATH), BENCH_WRK_SECONDS (default 10).
# wrk: Debian/Ubuntu `apt-get install wrk` (https://github.com/wg/wrk otherwise). Without
# it the script says so and uses `bench_inspect load`, a small keep-alive load generator
# with one request in flight per thread: a floor (about 60% of wrk's rate here).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/common.sh
. "$here/common.sh"
build=${BENCH_BUILD_DIR:-$root/build/bench-inspect}
# shellcheck disable=SC2034 # read by run() in common.sh
run_failure="a request failed or the program crashed"
churn_ops=${1:-5000000}
churn_reps=${2:-31}
heap_objects=${3:-1000000}
wrk_seconds=${BENCH_WRK_SECONDS:-10}
out=$(mktemp "${TMPDIR:-/tmp}/rcgc-inspect.XXXXXX")
one=$(mktemp "${TMPDIR:-/tmp}/rcgc-inspect.XXXXXX")
srv=$(mktemp "${TMPDIR:-/tmp}/rcgc-inspect.XXXXXX")
host_pid=
cleanup() {
    if [ -n "$host_pid" ]; then kill "$host_pid" 2>/dev/null || true; fi
    rm -f "$out" "$one" "$srv"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build -------------------------------------------------------------------------
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRCGC_BUILD_TESTS=OFF \
        -DRCGC_BUILD_INSPECT=ON >"$one" 2>&1 || { tail -n 20 "$one" >&2; exit 1; }
    if ! cmake --build "$build" --target bench_inspect -j "$(nproc)" >"$one" 2>&1; then
        # A failed build must not leave an older binary to be measured in its place.
        find "$build" -type f -name bench_inspect -exec rm -f {} +
        tail -n 20 "$one" >&2
        echo "error: building bench_inspect failed (it needs librcgc-inspect: libmicrohttpd-dev" \
            "and libjansson-dev, see scripts/bootstrap.sh)" >&2
        exit 1
    fi
fi
b=$(find_bin bench_inspect)
if [ -z "$b" ]; then
    echo "error: no bench_inspect in $build" >&2
    exit 1
fi

# ---- run ---------------------------------------------------------------------------
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain -- libgc inspectd 2>/dev/null)" ]; then
    commit="$commit (libgc/inspectd modified)"
fi
bench_header "rcgc inspection server benchmark"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; other work on the machine shows as noise)"
echo "rcgc:    commit $commit, $b"
echo "args:    churn ops=$churn_ops reps=$churn_reps; heap objects=$heap_objects; wrk ${wrk_seconds}s"
: >"$out"

run churn env -u RCGC_INSPECT_TOKEN "$b" churn "$churn_ops" "$churn_reps"
# fresh: objects in allocation order, as malloc laid them out (walks stream through
# memory); aged: every object replaced once in random order first (walks miss the cache).
run heap-fresh env -u RCGC_INSPECT_TOKEN "$b" heap "$heap_objects" 15 fresh
run heap-aged env -u RCGC_INSPECT_TOKEN "$b" heap "$heap_objects" 15 aged

# wrk against a host that allocates a little, calls rcgc_safepoint and sleeps 1 ms.
echo
echo "-- wrk: GET /v1/heaps/serve, 2 threads, 32 connections, ${wrk_seconds} s"
env -u RCGC_INSPECT_TOKEN "$b" serve >"$srv" 2>&1 &
host_pid=$!
port=
i=0
while [ $i -lt 50 ] && [ -z "$port" ]; do
    port=$(sed -n 's/^PORT \([0-9][0-9]*\)$/\1/p' "$srv")
    [ -n "$port" ] || sleep 0.1
    i=$((i + 1))
done
if [ -z "$port" ]; then
    cat "$srv"
    echo "(the serving host did not start)"
else
    url="http://127.0.0.1:$port/v1/heaps/serve"
    wrk=${BENCH_WRK:-wrk}
    if command -v "$wrk" >/dev/null 2>&1; then
        "$wrk" --version 2>&1 | head -n 1 | sed 's/ \[.*//' || true
        "$wrk" -t2 -c32 -d"${wrk_seconds}s" --latency "$url" >"$one" 2>&1 || true
        loader=wrk
    else
        echo "note: wrk not found (Debian/Ubuntu: apt-get install wrk); using" \
            "bench_inspect load (keep-alive, 2 threads, 32 connections, one request in" \
            "flight per thread: a floor, not wrk's number) instead"
        "$b" load "$port" /v1/heaps/serve "$wrk_seconds" 32 2 >"$one" 2>&1 || true
        loader="bench_inspect load"
    fi
    cat "$one"
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$one")
    bad=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$one")
    errs=$(sed -n 's/^ *Socket errors: *\(.*\)$/\1/p' "$one")
    echo "RESULT name=wrk rps=${rps:-0} non2xx=${bad:-0} loader=$(echo "$loader" | tr ' ' _)" >>"$out"
    [ -z "$errs" ] || echo "RESULT name=wrk_socket_errors $(echo "$errs" | tr -d ' ' | tr ',' ' ')" >>"$out"
    kill "$host_pid" 2>/dev/null || true
    wait "$host_pid" 2>/dev/null || true
    host_pid=
    grep -v '^PORT' "$srv" || true
fi

# ---- summary -----------------------------------------------------------------------
echo
echo "== issue 3 targets (churn: median of reps, overhead against the server off)"
awk '
/^RESULT / {
    split("", v)
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    n = v["name"]
    if (n == "overhead") {
        ov[v["mode"], v["variant"]] = v["pct"]; pv[v["mode"], v["variant"]] = v["paired_pct"]
        variants[v["variant"]] = 1
    } else if (n == "churn" && v["mode"] == "off") {
        nsop[v["variant"]] = v["ns_per_op"]
    } else if (n == "poll") {
        poll_n = v["requests"]; poll_err = v["errors"]
    } else if (n == "publish") {
        l = v["layout"]; pub[l] = v["median_us"]; pub_max[l] = v["max_us"]
        objects = v["objects"]; types = v["types"]
    } else if (n == "latency") {
        l = v["layout"]; e = v["endpoint"]
        if (e == "object") { obj[l] = v["median_ms"]; obj_max[l] = v["max_ms"] }
        else { lat[l, e] = v["median_us"]; lat99[l, e] = v["p99_us"] }
    } else if (n == "pause") {
        l = v["layout"]; pause[l] = v["wall_median_ms"]; pause_max[l] = v["wall_max_ms"]
    } else if (n == "wrk") {
        rps = v["rps"]; non2xx = v["non2xx"]; loader = v["loader"]
    }
}
function verdict(x, op, t) {
    if (x == "") return "not measured"
    return ((op == "<=" && x + 0 <= t) || (op == ">=" && x + 0 >= t)) ? "met" : "NOT met"
}
function churn_row(mode, label, t,    w, s, vn, first) {
    w = ""; s = ""; first = 1
    split("empty filled cycles", vn, " ")
    for (i = 1; i <= 3; i++) {
        if (!((mode, vn[i]) in ov)) continue
        s = s (first ? "" : ", ") sprintf("%s %+.2f%%", vn[i], ov[mode, vn[i]])
        if (w == "" || ov[mode, vn[i]] + 0 > w + 0) w = ov[mode, vn[i]]
        first = 0
    }
    printf "%-44s %-44s %-9s %s\n", label, s == "" ? "-" : s, "<= " t "%", verdict(w, "<=", t)
}
END {
    printf "%-44s %-44s %-9s %s\n", "target", "measured", "target", "status"
    churn_row("idle", "churn, server started and idle", 1)
    churn_row("poll", "churn, stats + census polled at 10 Hz", 3)
    worst = ""
    for (l in pub) if (worst == "" || pub[l] + 0 > worst + 0) worst = pub[l]
    printf "%-44s %-44s %-9s %s\n", "census at " objects " objects: owner publishes",
           sprintf("%.2f us (max %.2f us)", pub["fresh"], pub_max["fresh"]), "<= 1 ms",
           verdict(worst == "" ? "" : worst / 1000, "<=", 1)
    printf "%-44s %-44s %-9s %s\n", "  census answer latency (client, informative)",
           sprintf("%.0f us median, p99 %.0f us", lat["fresh", "census"], lat99["fresh", "census"]),
           "-", "-"
    split("fresh aged", lays, " ")
    for (i = 1; i <= 2; i++) {
        l = lays[i]
        if (!(l in obj)) continue
        printf "%-44s %-44s %-9s %s\n", "object + referrers, " objects " objects, " l,
               sprintf("%.2f ms median, max %.2f ms", obj[l], obj_max[l]), "<= 100 ms",
               verdict(obj_max[l], "<=", 100)
        printf "%-44s %-44s %-9s %s\n", "  host pause per request (" l ")",
               sprintf("%.2f ms median, max %.2f ms", pause[l], pause_max[l]), "<= 100 ms",
               verdict(pause_max[l], "<=", 100)
    }
    printf "%-44s %-44s %-9s %s\n", "wrk GET /v1/heaps/{heap} (2 thr, 32 conn)",
           sprintf("%.0f req/s%s", rps, non2xx + 0 ? ", " non2xx " non-2xx" : ""),
           ">= 20000", (non2xx + 0) ? "NOT met (errors)" : verdict(rps, ">=", 20000)
    print ""
    printf "churn ns/op with the server off: empty %s, filled %s, cycles %s\n",
           nsop["empty"], nsop["filled"], nsop["cycles"]
    printf "paired overhead (median over reps of mode/off in the same rep): idle %s; poll %s\n",
           sprintf("%+.2f%%/%+.2f%%/%+.2f%%", pv["idle","empty"], pv["idle","filled"], pv["idle","cycles"]),
           sprintf("%+.2f%%/%+.2f%%/%+.2f%%", pv["poll","empty"], pv["poll","filled"], pv["poll","cycles"])
    printf "poller: %s requests, %s errors; stats latency at %s objects: %.0f us median\n",
           poll_n, poll_err, objects, lat["fresh", "stats"]
    if (loader != "" && loader != "wrk") print "load generated by " loader " (wrk not installed)"
}' "$out"
