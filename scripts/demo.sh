#!/usr/bin/env bash
# demo.sh [args...]: builds rcgc (build/plain) and runs the leak-hunting demo,
# build/plain/examples/rcgc-demo, passing it the arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

bash scripts/bootstrap.sh

if [ ! -f examples/demo.c ]; then
    echo "demo: examples/demo.c does not exist yet; there is no demo to run" >&2
    exit 1
fi
rcgc_configure build/plain "${RCGC_PLAIN_ARGS[@]}"
cmake --build build/plain -j "$RCGC_JOBS" --target rcgc-demo
exec build/plain/examples/rcgc-demo "$@"
