#!/bin/sh
# run_anchor.sh: builds the benchmarks (Release, in their own build directory) and runs
# every contender of the anchor-graph benchmark in one run on this machine: CPython 3.11,
# Boehm, rcgc and the plain-C floor; then the churn benchmark. Prints the machine, the
# date, each contender's output and the summary tables with the target ratios.
#
# usage: bench/run_anchor.sh [live [pairs [reps]]]     (defaults 1000000 100000 5)
# environment: BENCH_BUILD_DIR (default <repo>/build/bench), BENCH_PYTHON (a CPython 3.11),
#              BENCH_NO_BUILD=1 (use the binaries already in BENCH_BUILD_DIR),
#              BENCH_CHURN_OPS (default 10000000; 0 skips the churn benchmark)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/common.sh
. "$here/common.sh"
build=${BENCH_BUILD_DIR:-$root/build/bench}
# shellcheck disable=SC2034 # read by run() in common.sh
run_failure="a check failed or the program crashed"
out=$(mktemp "${TMPDIR:-/tmp}/rcgc-anchor.XXXXXX")
one=$(mktemp "${TMPDIR:-/tmp}/rcgc-anchor.XXXXXX")
trap 'rm -f "$out" "$one"' EXIT

# ---- build -------------------------------------------------------------------------
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    if [ -f "$root/CMakeLists.txt" ]; then
        cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRCGC_BUILD_TESTS=OFF >/dev/null
    else # no top-level project yet: only the contenders that need no rcgc
        cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    for t in bench_anchor_floor bench_anchor_boehm bench_anchor_rcgc bench_churn; do
        if ! cmake --build "$build" --target "$t" -j "$(nproc)" >"$out" 2>&1; then
            # A failed build must not leave an older binary to be measured in its place.
            find "$build" -type f -name "$t" -exec rm -f {} +
            if grep -q "No rule to make target\|unknown target" "$out"; then
                echo "note: target $t is not configured (see bench/CMakeLists.txt)" >&2
            else
                tail -n 15 "$out" >&2
                echo "warning: building $t failed; it is skipped" >&2
            fi
        fi
    done
fi

find_python() {
    for p in ${BENCH_PYTHON:-} /usr/bin/python3 python3; do
        if command -v "$p" >/dev/null 2>&1 &&
            "$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$p"
            return 0
        fi
    done
    return 1
}

# ---- run ---------------------------------------------------------------------------
bench_header "rcgc anchor-graph benchmark"
echo "args:    live=${1:-1000000} pairs=${2:-100000} reps=${3:-5}"
: >"$out"

if py=$(find_python); then
    run cpython "$py" "$here/bench_anchor_cpython.py" "$@"
else
    echo "note: no CPython 3.11 found (set BENCH_PYTHON); cpython skipped"
fi
if b=$(find_bin bench_anchor_boehm) && [ -n "$b" ]; then
    run boehm env BENCH_BOEHM_PARALLEL=0 "$b" "$@"
    run boehm-par env BENCH_BOEHM_PARALLEL=1 "$b" "$@"
else
    echo "note: bench_anchor_boehm not built (no bdw-gc); boehm skipped"
fi
if b=$(find_bin bench_anchor_rcgc) && [ -n "$b" ]; then
    run rcgc "$b" "$@"
else
    echo "note: bench_anchor_rcgc not available (no rcgc::gc, or its build failed); rcgc skipped"
fi
if b=$(find_bin bench_anchor_floor) && [ -n "$b" ]; then
    run floor "$b" "$@"
fi

# ---- summary -----------------------------------------------------------------------
echo
echo "== anchor graph: full collection, ns per object in the heap (median of reps)"
awk '
/^RESULT name=(cpython|boehm|boehm-par|rcgc|floor) / {
    name = ""; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    n = v["name"]; ns[n] = v["ns_per_object"]; col[n] = v["collected"]; order[++k] = n
}
function ratio(x, y) { return (x == "" || y == "" || y == 0) ? "-" : sprintf("%.2f", x / y) }
function verdict(r, op, t) {
    if (r == "-") return "not measured"
    return ((op == ">=" && r + 0 >= t) || (op == "<=" && r + 0 <= t)) ? "met" : "NOT met"
}
END {
    printf "%-10s %12s %10s\n", "contender", "ns/object", "collected"
    for (i = 1; i <= k; i++) {
        n = order[i]
        printf "%-10s %12.2f %10s\n", n, ns[n], col[n] < 0 ? "-" : col[n]
    }
    print ""
    r1 = ratio(ns["cpython"], ns["rcgc"]); r2 = ratio(ns["boehm"], ns["rcgc"])
    r3 = ratio(ns["rcgc"], ns["floor"]); r4 = ratio(ns["boehm-par"], ns["rcgc"])
    printf "%-18s %7s   target %-6s %s\n", "CPython/rcgc", r1, ">= 4", verdict(r1, ">=", 4)
    printf "%-18s %7s   target %-6s %s\n", "Boehm/rcgc", r2, ">= 2", verdict(r2, ">=", 2)
    printf "%-18s %7s   (informative: Boehm with parallel markers)\n", "Boehm-par/rcgc", r4
    printf "%-18s %7s   target %-6s %s\n", "rcgc/floor", r3, "<= 3", verdict(r3, "<=", 3)
}' "$out"

echo
echo "== anchor graph: memory, resident-set growth from before the graph to after the warm-up"
awk '
/^MEMORY / {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    b[v["name"]] = v["bytes_per_node"]; order[++k] = v["name"]
}
END {
    printf "%-12s %14s\n", "contender", "bytes/node"
    for (i = 1; i <= k; i++) printf "%-12s %14.1f\n", order[i], b[order[i]]
    if (b["cpython"] > 0 && b["rcgc"] > 0) {
        r = b["rcgc"] / b["cpython"]; s = b["rcgc-steady"] / b["cpython"]
        printf "rcgc/CPython %7.2f   target <= 0.75 %s (after the full collection)\n", r, r <= 0.75 ? "met" : "NOT met"
        printf "rcgc/CPython %7.2f   (steady state: after the next young collection)\n", s
    }
}' "$out"

churn_ops=${BENCH_CHURN_OPS:-10000000}
if [ "$churn_ops" != 0 ] && b=$(find_bin bench_churn) && [ -n "$b" ]; then
    : >"$out"
    run churn "$b" "$churn_ops"
    echo
    echo "== churn: allocate + release a two-slot container, ns per op (median of reps)"
    awk '
    /^RESULT / {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        ns[v["name"]] = v["ns_per_op"]; order[++k] = v["name"]
    }
    END {
        printf "%-14s %10s\n", "variant", "ns/op"
        for (i = 1; i <= k; i++) printf "%-14s %10.2f\n", order[i], ns[order[i]]
        if (ns["calloc_empty"] > 0)
            printf "rcgc/calloc: empty %.2f, filled %.2f   target <= 0.7\n",
                   ns["rcgc_empty"] / ns["calloc_empty"], ns["rcgc_filled"] / ns["calloc_filled"]
        if (ns["rcgc_traced"] > 0)
            printf "traced/rcgc (exact, 1 frame) %.2f   target <= 2\n", ns["rcgc_traced"] / ns["rcgc_empty"]
        if (ns["rcgc_sampled"] > 0)
            printf "sampled/rcgc (512 KiB) %.3f   target <= 1.03\n", ns["rcgc_sampled"] / ns["rcgc_empty"]
    }' "$out"
fi
