#!/usr/bin/env bash
# demo.sh [args...]: builds rcgc (build/plain) and runs the leak-hunting demo,
# build/plain/examples/rcgc-demo, passing it the arguments (default: 3 --serve).
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
# Without arguments: three console rounds, then serve the inspector on 127.0.0.1:7070
# (RCGC_INSPECT to change it) with control requests on, until Ctrl-C.
if [ "$#" -eq 0 ]; then
    set -- 3 --serve
fi
export RCGC_INSPECT=${RCGC_INSPECT:-127.0.0.1:7070}
export RCGC_INSPECT_CONTROL=${RCGC_INSPECT_CONTROL:-1}
exec build/plain/examples/rcgc-demo "$@"
