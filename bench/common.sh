# shellcheck shell=sh
# shellcheck disable=SC2154 # build, out, one and run_failure are the sourcing script's
# common.sh: what bench/run_anchor.sh and bench/run_inspect.sh share, sourced by both
# (`. "$here/common.sh"`): the head of a run's report, run() and find_bin. They read the
# caller's variables when called: build (the build directory), out and one (temporary
# files) and run_failure (what a nonzero exit status of a program means).

# bench_header TITLE: prints "== TITLE", the date and the machine.
bench_header() {
    echo "== $1"
    echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -sr)"
}

run() { # name, command...: prints the output, keeps it for the summary
    name=$1
    shift
    echo
    echo "-- $name: $*"
    if "$@" >"$one" 2>&1; then st=0; else st=$?; fi
    cat "$one"
    cat "$one" >>"$out"
    if [ "$st" != 0 ]; then echo "(exit status $st: $run_failure)"; fi
}

# find_bin NAME: prints the path of the executable NAME under $build (nothing when none).
find_bin() {
    find "$build" -type f -name "$1" -perm -u+x 2>/dev/null | head -n 1
}
