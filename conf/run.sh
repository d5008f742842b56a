#!/usr/bin/env bash
# run.sh MODULE_SO WORKER_BIN RUN_DIR [LISTEN] -- the embedded default that
# `make run` starts:
#   1. a seeded synthetic catalogue (10k items in 20 categories, 1k users,
#      d=64, inner product) published as generation 1 when the data
#      directory has no snapshot yet;
#   2. milvuso-worker --worker-type all on conf/milvuso.toml, with the
#      paths pointed into RUN_DIR by MILVUSO_* variables: it follows the
#      action log nginx writes, trains, and publishes new generations;
#   3. nginx in the foreground with conf/nginx.conf rendered for this
#      checkout; it swaps to each new generation (check=).
# Ctrl-C stops both (the worker publishes what is pending first).  Logs:
# RUN_DIR/error.log, access.log, worker.log; worker metrics: worker.prom.
#
# run.sh --stop RUN_DIR (`make stop`) stops what a run.sh in the background
# started: it sends SIGTERM to run.sh (pid in RUN_DIR/run.pid), which stops
# nginx (SIGQUIT) and the worker (SIGTERM: it publishes pending work) and
# waits for both; processes left by a run.sh killed harder are stopped from
# RUN_DIR/worker.pid and nginx.pid.  Nothing running is a clean exit.
set -euo pipefail

# the pid in FILE when that process is alive
alive() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# waits (at most 30 s) until PID is gone
wait_gone() {
    local i
    for i in $(seq 300); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "run: pid $1 still running after 30 s" >&2
    return 1
}

if [ "${1:-}" = "--stop" ]; then
    [ $# -eq 2 ] || { echo "usage: $0 --stop RUN_DIR" >&2; exit 2; }
    run=$(realpath -m "$2")
    stopped=0
    if pid=$(alive "$run/run.pid"); then
        kill -TERM "$pid"
        wait_gone "$pid"
        stopped=1
    fi
    if pid=$(alive "$run/nginx.pid"); then
        kill -QUIT "$pid"
        wait_gone "$pid"
        stopped=1
    fi
    if pid=$(alive "$run/worker.pid"); then
        kill -TERM "$pid"
        wait_gone "$pid"
        stopped=1
    fi
    rm -f "$run/run.pid" "$run/worker.pid"
    if [ $stopped = 1 ]; then
        echo "run: stopped what ran in $run"
    else
        echo "run: nothing runs in $run"
    fi
    exit 0
fi

if [ $# -lt 3 ]; then
    echo "usage: $0 MODULE_SO WORKER_BIN RUN_DIR [LISTEN]" >&2
    echo "       $0 --stop RUN_DIR" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
module=$(realpath "$1")
worker=$(realpath "$2")
run=$(realpath -m "$3")
listen=${4:-127.0.0.1:8080}
data=$run/data

mkdir -p "$run" "$data/snapshots" "$data/actions"

if pid=$(alive "$run/run.pid"); then
    echo "run: already running in $run (pid $pid); make stop stops it" >&2
    exit 1
fi
echo $$ >"$run/run.pid"
trap 'rm -f "$run/run.pid"' EXIT

if [ ! -e "$data/snapshots/current" ]; then
    echo "run: seeding a synthetic catalogue into $data/snapshots"
    "$worker" snapshot --out "$data/snapshots" --synthetic 10000 --dim 64 \
        --categories 20 --users 1000 --seed 1 --generation 1 --metric ip
fi

sed -e "s|@MODULE@|$module|g" -e "s|@RUN@|$run|g" -e "s|@DATA@|$data|g" \
    -e "s|@LISTEN@|$listen|g" "$here/nginx.conf" >"$run/nginx.conf"

# the nginx worker processes run as nginx's default user: let them write
# the log
if [ "$(id -u)" = 0 ]; then
    chown -R nobody "$data/actions" 2>/dev/null || true
    chmod 755 "$run" "$data" "$data/snapshots"
fi

/usr/sbin/nginx -e "$run/error.log" -c "$run/nginx.conf" -t

export MILVUSO_WORKER_ACTION_LOG="$data/actions"
export MILVUSO_WORKER_SNAPSHOT_DIR="$data/snapshots"
export MILVUSO_WORKER_METRICS_FILE="$run/worker.prom"
"$worker" --config "$here/milvuso.toml" --worker-type all --foreground \
    2>>"$run/worker.log" &
worker_pid=$!
echo "$worker_pid" >"$run/worker.pid"
nginx_pid=

stop() {
    trap - INT TERM EXIT
    [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null || true
    kill -TERM "$worker_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -f "$run/run.pid" "$run/worker.pid"
    echo "run: stopped"
}
trap stop INT TERM EXIT

sleep 0.3
if ! kill -0 "$worker_pid" 2>/dev/null; then
    echo "run: the worker did not start; its log ($run/worker.log):" >&2
    tail -5 "$run/worker.log" >&2
    exit 1
fi

echo "run: nginx on http://$listen, worker pid $worker_pid (Ctrl-C stops"\
     "both); logs in $run"
/usr/sbin/nginx -e "$run/error.log" -c "$run/nginx.conf" &
nginx_pid=$!
wait "$nginx_pid"
