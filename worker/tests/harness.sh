# harness.sh -- what the worker's command-line check scripts share
# (check-cli.sh, check-daemon.sh, check-kafka.sh, check-retention.sh,
# check-feature.sh, check-drain.sh): sourced, not run.
#
#   . "$(dirname "$0")/harness.sh"
#   harness_init NAME "$@"     # checks the argument (the worker binary),
#                              # sets W (its absolute path) and T (a fresh
#                              # mktemp directory; the caller removes it)
#   run CMD...                 # stdout+stderr in OUT, status in RC (at most
#                              # RUN_TIMEOUT seconds when that is set)
#   check NAME CONDITION...    # prints "ok - NAME" or "not ok - NAME" with
#                              # OUT, counted
#   harness_finish             # "N passed, M failed"; fails if any failed
#
# Conditions use has REGEX (OUT has a matching line), rc_is N and
# count_files DIR (published snapshot files in DIR); a metrics file's
# values with metric_in FILE NAME and wait_metrics_in FILE SECONDS
# NAME=VALUE... (until every one holds).
#
#   PIDS+=("$pid")             # a daemon started in the background
#   trap harness_kill_all EXIT # SIGKILL to those still running, rm -rf $T
#   stop PID                   # SIGTERM, its exit status in RC
#   need_broker BROKERS        # checks one answers, else finishes (exit 1)

harness_init() {
    local name=$1
    shift
    if [ $# -ne 1 ] || [ ! -x "$1" ]; then
        echo "usage: $0 WORKER_BINARY" >&2
        exit 2
    fi
    W=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    T=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
    passed=0
    failed=0
    PIDS=()
    OUT=""
    RC=0
}

ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() {
    echo "not ok - $1"
    printf '%s\n' "$OUT" | sed 's/^/#   /' | head -20
    failed=$((failed + 1))
}
# check NAME CONDITION...: evaluates the condition (a command) for NAME.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}
# run CMD...: runs it, keeping stdout+stderr in OUT and the status in RC.
run() {
    RC=0
    if [ -n "${RUN_TIMEOUT:-}" ]; then
        OUT=$(timeout "$RUN_TIMEOUT" "$@" 2>&1) || RC=$?
    else
        OUT=$("$@" 2>&1) || RC=$?
    fi
}
# (a here-string, not printf | grep -q: under pipefail, grep -q leaving at
# its first match could fail the pipe with printf's SIGPIPE when OUT is
# written in several chunks -- a flaky "not ok" seen under load)
has() { grep -qE -- "$1" <<< "$OUT"; }
rc_is() { [ "$RC" -eq "$1" ]; }
count_files() { find "$1" -maxdepth 1 -name 'snapshot-*.mvs' 2>/dev/null | wc -l; }

# owned PID: the process is alive and its command line names $T (so a
# recycled pid is never signalled).
owned() {
    [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null \
        | grep -qF -- "$T"
}
# wait_for FILE REGEX SECONDS: until FILE has a line matching REGEX.
wait_for() {
    local i
    for i in $(seq $(($3 * 20))); do
        if [ -f "$1" ] && grep -qE -- "$2" "$1"; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}
# gone_within PID SECONDS: the process has exited within SECONDS.
gone_within() {
    local i
    for i in $(seq $(($2 * 20))); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.05
    done
    return 1
}
# metric_in FILE NAME: NAME's value in the metrics file FILE (empty when
# absent).
metric_in() {
    sed -n "s/^$2 //p" "$1" 2>/dev/null
}
# wait_metrics_in FILE SECONDS NAME=VALUE...: until every one holds in
# FILE (then 0), or SECONDS pass (then 1, OUT showing FILE).
wait_metrics_in() {
    local file=$1 secs=$2 i kv ok
    shift 2
    for i in $(seq $((secs * 10))); do
        ok=1
        for kv in "$@"; do
            [ "$(metric_in "$file" "${kv%%=*}")" = "${kv#*=}" ] || { ok=0; break; }
        done
        [ "$ok" = 1 ] && return 0
        sleep 0.1
    done
    OUT="$file: $(grep -v '^#' "$file" 2>/dev/null | tr '\n' ' ')"
    return 1
}
# harness_kill_all: SIGKILL to every pid of PIDS that is still ours
# (owned), then removes $T.
harness_kill_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        if owned "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$T"
}
# need_broker BROKERS: checks that a Kafka broker answers there; when none
# does, the script finishes at once (failed).
need_broker() {
    run kcat -b "$1" -L -m 5
    check "a broker answers at $1" rc_is 0
    if ! rc_is 0; then
        harness_finish
        exit 1
    fi
}
# stop PID: SIGTERM, RC = its exit status (99: still running after 15 s).
stop() {
    kill -TERM "$1" 2>/dev/null || true
    RC=0
    if gone_within "$1" 15; then wait "$1" || RC=$?; else RC=99; fi
}
harness_finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
