# npm_env.sh: sourced by run.sh and pprof_check.sh (from tests/protocol). Checks for node
# >= 18 and npm, then installs the packages pinned in package-lock.json (npm ci) when they
# are missing or older than the lock file, one CTest run at a time (flock).

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
    missing "node and npm are not installed (Node.js 18 or newer)"
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    echo "tests/protocol: node $(node --version) is too old; Node.js 18 or newer is needed" >&2
    exit 1
fi

npm_install() {
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        echo "tests/protocol: npm ci (the packages of package-lock.json)" >&2
        npm ci --prefer-offline --no-audit --no-fund >&2
    fi
}
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/rcgc-tests-protocol-npm.lock"
    flock 9
    npm_install
    flock -u 9
else
    npm_install
fi
