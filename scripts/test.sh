#!/usr/bin/env bash
# test.sh: every test, as the README and CI run them. Four builds under build/:
#   plain   optimised build, all tests
#   asan    RCGC_SANITIZE=address,undefined + RCGC_DEBUG_INVARIANTS, all tests
#   stress  RCGC_GC_STRESS (a collection at every allocation), tests not labelled slow
#   tsan    RCGC_SANITIZE=thread, only tests labelled threads (skipped while none exist)
# All with -Werror. Stops at the first failure (non-zero exit) and ends with the line
# "test: N passed, M failed", summed over the builds.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

bash scripts/bootstrap.sh --tests

passed=0
failed=0
skipped=0

summary() {
    if [ "$skipped" -gt 0 ]; then
        echo "test: $skipped skipped (see the output above for why)"
    fi
    echo "test: $passed passed, $failed failed"
}

banner() { printf '\n===== %s =====\n' "$*"; }

# stop <why>: the end of a failed run.
stop() {
    echo "test: $*"
    summary
    exit 1
}

# configure <dir> <cmake args...>, compile <dir>: or stop, counting one failure.
configure() {
    rcgc_configure "$@" || { failed=$((failed + 1)); stop "$1 failed to configure"; }
}
compile() {
    cmake --build "$1" -j "$RCGC_JOBS" || { failed=$((failed + 1)); stop "$1 failed to build"; }
}

# check <dir> [ctest args...]: runs ctest, adds its counts to the totals, or stops.
check() {
    local dir=$1
    shift
    local log=$dir/test-log.txt rc=0
    ctest --test-dir "$dir" --output-on-failure -j "$RCGC_JOBS" "$@" 2>&1 | tee "$log" ||
        rc=$?
    local line total=0 bad=0 skip
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
    if [ -n "$line" ]; then
        bad=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
        total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    fi
    skip=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)[[:space:]]*$' "$log" || true)
    passed=$((passed + total - bad - skip))
    failed=$((failed + bad))
    skipped=$((skipped + skip))
    if [ "$rc" -ne 0 ] || [ "$bad" -ne 0 ]; then
        if [ "$bad" -eq 0 ]; then
            failed=$((failed + 1)) # ctest failed without reporting a count
        fi
        stop "failures in $dir"
    fi
}

banner "plain (build/plain)"
configure build/plain "${RCGC_PLAIN_ARGS[@]}"
compile build/plain
check build/plain

banner "asan + ubsan + invariants (build/asan)"
configure build/asan -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" \
    -DRCGC_SANITIZE=address,undefined -DRCGC_DEBUG_INVARIANTS=ON -DRCGC_BUILD_BENCH=OFF
compile build/asan
check build/asan

banner "gc stress, without slow tests (build/stress)"
configure build/stress "${RCGC_PLAIN_ARGS[@]}" -DRCGC_GC_STRESS=ON -DRCGC_BUILD_BENCH=OFF
compile build/stress
check build/stress -LE slow

banner "tsan, tests labelled threads (build/tsan)"
configure build/tsan -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" \
    -DRCGC_SANITIZE=thread -DRCGC_BUILD_BENCH=OFF -DRCGC_BUILD_EXAMPLES=OFF
if ctest --test-dir build/tsan -N -L threads | grep -qE '^Total Tests: 0$'; then
    echo "tsan: no test is labelled threads yet; skipping the TSan build"
else
    compile build/tsan
    check build/tsan -L threads --no-tests=ignore
fi

echo
summary
