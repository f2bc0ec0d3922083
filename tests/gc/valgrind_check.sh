#!/bin/sh
# valgrind_check.sh <valgrind> <valgrind_probe>: CTest gc.valgrind. Memcheck must find no
# error in the clean run and an invalid read in each faulty one.
set -u
vg=$1
probe=$2
run() {
    "$vg" --quiet --error-exitcode=99 --leak-check=no "$probe" "$1" 2>"$out"
}
out=$(mktemp "${TMPDIR:-/tmp}/rcgc-valgrind.XXXXXX")
trap 'rm -f "$out"' EXIT
status=0
run clean
if [ $? -ne 0 ]; then
    echo "gc.valgrind: the clean run reported errors:" >&2
    cat "$out" >&2
    status=1
fi
for mode in uaf beyond; do
    run "$mode"
    rc=$?
    if [ $rc -ne 99 ] || ! grep -q "Invalid read" "$out"; then
        echo "gc.valgrind: '$mode' was not reported as an invalid read (exit $rc):" >&2
        cat "$out" >&2
        status=1
    fi
done
[ $status -eq 0 ] && echo "gc.valgrind: memcheck sees inside the pools"
exit $status
