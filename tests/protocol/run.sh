#!/bin/sh
# run.sh [--live URL [validate.mjs options]]: the entry point of tests/protocol. Installs
# the npm packages pinned in package-lock.json into node_modules (npm ci) when they are
# missing or older than the lock file, then runs the protocol tests (node --test: CTest
# protocol.schemas), or, with --live, checks a running server (validate.mjs --live: for
# the server's integration tests). Needs node >= 18 and npm.
set -eu
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "tests/protocol: node and npm are needed (Node.js 18 or newer) and were not found" >&2
    echo "tests/protocol: bash scripts/bootstrap.sh --tests installs them" >&2
    exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    echo "tests/protocol: node $(node --version) is too old; Node.js 18 or newer is needed" >&2
    exit 1
fi

install() {
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        echo "tests/protocol: npm ci (ajv, ajv-formats, yaml, @seriousme/openapi-schema-validator)" >&2
        npm ci --prefer-offline --no-audit --no-fund >&2
    fi
}
# Parallel CTest runs share this folder: one installs at a time.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/rcgc-tests-protocol-npm.lock"
    flock 9
    install
    flock -u 9
else
    install
fi

if [ "${1:-}" = "--live" ]; then
    exec node validate.mjs "$@"
fi
exec node --test schemas.test.mjs live.test.mjs
