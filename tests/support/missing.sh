# missing.sh: sourced by the test scripts that need a tool the project installs for the
# tests (tests/protocol/pprof_check.sh, pprof_go.sh, tests/web/run.sh). Set missing_who
# (the name in the messages) first.
#
# missing <what>: the tool is absent: skip (exit 77), or fail (exit 1) when CI is set.
missing() {
    case ${CI:-} in
    "" | 0 | false | no)
        echo "$missing_who: SKIPPED: $1 (bash scripts/bootstrap.sh --tests installs it)" >&2
        exit 77
        ;;
    esac
    echo "$missing_who: $1, and CI is set: failing (bash scripts/bootstrap.sh --tests installs it)" >&2
    exit 1
}
