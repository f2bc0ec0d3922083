#!/bin/sh
# pprof_check.sh <test_pprof>: CTest protocol.pprof. Installs the npm packages pinned in
# package-lock.json (npm ci, as run.sh does, under the same lock) when they are missing or
# older than the lock file, then runs pprof_check.mjs: the pprof encoder's output
# gunzipped by node:zlib and decoded by protobufjs. The sample profile is left in the
# directory this was started from (CTest: the build's tests/protocol). Without node or npm
# the test is skipped (exit 77), unless CI is set: then it fails.
set -eu
if [ "$#" -ne 1 ]; then
    echo "usage: sh tests/protocol/pprof_check.sh <test_pprof>" >&2
    exit 2
fi
start_dir=$(pwd)
case $1 in
/*) bin=$1 ;;
*) bin=$start_dir/$1 ;;
esac
cd "$(dirname "$0")"

missing_who=tests/protocol
. ../support/missing.sh
. ./npm_env.sh

exec node pprof_check.mjs "$bin" "$start_dir"
