#!/bin/sh
# run.sh [--live URL [validate.mjs options]]: the entry point of tests/protocol. Installs
# the npm packages pinned in package-lock.json into node_modules (npm ci) when they are
# missing or older than the lock file, then runs the protocol tests (node --test: CTest
# protocol.schemas), or, with --live, checks a running server (validate.mjs --live: for
# the server's integration tests). Needs node >= 18 and npm.
set -eu
cd "$(dirname "$0")"

# missing <what>: run.sh always fails (protocol.schemas needs them everywhere).
missing() {
    echo "tests/protocol: $1 (bash scripts/bootstrap.sh --tests installs them)" >&2
    exit 1
}
. ./npm_env.sh

if [ "${1:-}" = "--live" ]; then
    exec node validate.mjs "$@"
fi
exec node --test schemas.test.mjs live.test.mjs
