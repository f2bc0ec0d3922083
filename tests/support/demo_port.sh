# demo_port.sh: sourced by the scripts that start the leak-hunting demo on 127.0.0.1:0
# (tests/protocol/live_demo.sh, tests/web/run.sh).
#
# demo_port <stdout file> <pid> <tries>: prints the port the demo's inspector listens on,
# read from its "inspector: http://127.0.0.1:<port>/" line, waiting up to <tries> x 0.1 s
# while the process lives; prints nothing when it never came.
demo_port() {
    _tries=0
    while [ "$_tries" -lt "$3" ]; do
        _port=$(sed -n 's/^inspector: http:\/\/127\.0\.0\.1:\([0-9]*\)\/.*/\1/p' "$1")
        if [ -n "$_port" ]; then
            echo "$_port"
            return 0
        fi
        kill -0 "$2" 2>/dev/null || return 0
        sleep 0.1
        _tries=$((_tries + 1))
    done
}
