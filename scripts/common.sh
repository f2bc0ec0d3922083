# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/demo.sh: how rcgc's build directories are made.

# rcgc_configure <build dir> [cmake args...]: configures <build dir> from the repo root
# with -Werror, using Ninja when present (only for a new build directory: an existing
# one keeps its generator).
rcgc_configure() {
    local dir=$1
    shift
    local gen=()
    if [ ! -f "$dir/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then
        gen=(-G Ninja)
    fi
    cmake -S . -B "$dir" "${gen[@]}" -DRCGC_WERROR=ON "$@"
}

# The arguments of build/plain, shared by test.sh and demo.sh so that neither forces the
# other to reconfigure: optimised, with debug info, and with assert() kept (no NDEBUG).
# shellcheck disable=SC2034 # used by the scripts that source this file
RCGC_PLAIN_ARGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g")

# How many jobs to build and test with (the CI machine has 2 cores).
RCGC_JOBS=${RCGC_JOBS:-2}
