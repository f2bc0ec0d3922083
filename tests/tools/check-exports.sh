#!/bin/sh
# check-exports.sh <librcgc.so> <librcgc.a>
#
# Fails when either library defines a global symbol outside the rcgc_ prefix (which
# includes the internal rcgc__ one): Boehm, jansson and libmicrohttpd share the process
# with us, and a static archive ignores visibility. Uses $NM (default nm).
set -eu

nm_tool=${NM:-nm}
[ $# -eq 2 ] || { echo "usage: $0 <librcgc.so> <librcgc.a>" >&2; exit 2; }
shared=$1
static=$2

# Symbols the toolchain itself may define in a shared object or archive: its own, and the
# bounds of librcgc's section rcgc_alloc_path (trace.c declares them hidden; GNU ld still
# lists them in .dynsym, marked HIDDEN; they carry the section's name, ours alone).
# With sanitizers, also their instrumentation symbols.
allowed='^(_init|_fini|_edata|_end|__bss_start|__start_rcgc_alloc_path|__stop_rcgc_alloc_path)$'
case ${RCGC_SANITIZE:-} in
*?*) allowed='^(_init|_fini|_edata|_end|__bss_start|__start_rcgc_alloc_path|__stop_rcgc_alloc_path|__odr_asan[._].*|__asan_.*|__ubsan_.*|__tsan_.*)$' ;;
esac

# Reads `nm` output on stdin; prints "<lib>: <symbol>" for each offending global symbol.
# Archive member headers ("foo.c.o:") and blank lines have fewer than 3 fields.
bad_symbols() {
    awk -v lib="$1" -v allowed="$allowed" '
        NF >= 3 && $2 ~ /^[A-Z]$/ && $2 != "U" {
            if ($3 !~ /^rcgc_/ && $3 !~ allowed) print lib ": " $3 " (" $2 ")"
        }'
}

status=0
for lib in "$shared" "$static"; do
    [ -f "$lib" ] || { echo "check-exports: $lib: no such file" >&2; exit 2; }
done

out=$("$nm_tool" -D --defined-only "$shared") || { echo "check-exports: $nm_tool -D failed on $shared" >&2; exit 2; }
count_shared=$(printf '%s\n' "$out" | awk 'NF >= 3 && $3 ~ /^rcgc_/' | wc -l)
bad=$(printf '%s\n' "$out" | bad_symbols "$shared")
if [ -n "$bad" ]; then printf '%s\n' "$bad"; status=1; fi

out=$("$nm_tool" --defined-only -g "$static") || { echo "check-exports: $nm_tool -g failed on $static" >&2; exit 2; }
count_static=$(printf '%s\n' "$out" | awk 'NF >= 3 && $3 ~ /^rcgc_/' | wc -l)
bad=$(printf '%s\n' "$out" | bad_symbols "$static")
if [ -n "$bad" ]; then printf '%s\n' "$bad"; status=1; fi

if [ "$status" -ne 0 ]; then
    echo "check-exports: global symbols outside the rcgc_ prefix (make them static, or name them rcgc__*)"
    exit 1
fi
if [ "$count_shared" -eq 0 ]; then
    echo "check-exports: $shared exports no rcgc_ symbol at all (is RCGC_API applied?)"
    exit 1
fi
echo "check-exports: ok ($count_shared exported from $(basename "$shared"), $count_static global in $(basename "$static"))"
