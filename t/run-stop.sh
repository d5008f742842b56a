#!/usr/bin/env bash
# run-stop.sh MAKE BUILD_DIR LISTEN -- `make run` in the background, wait
# until it answers, `make stop`, then check that run.sh, nginx and the
# worker are gone, that run.sh ran its own stop (SIGQUIT to nginx, SIGTERM
# to the worker, which publishes pending work), and that a second
# `make stop` with nothing running exits 0.  Run by `make run-check`; not a Test::Nginx suite (prove skips it).
set -euo pipefail

make=$1
b=$2
listen=$3
run=$b/run

fail() { echo "run-stop: FAIL: $*" >&2; "$make" --no-print-directory stop \
             B="$b" >/dev/null 2>&1 || true; exit 1; }

"$make" --no-print-directory stop B="$b" >/dev/null

"$make" --no-print-directory run B="$b" LISTEN="$listen" \
    >"$b/run-check.out" 2>&1 &

for i in $(seq 100); do
    curl -fsS "http://$listen/health" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "http://$listen/health" >/dev/null || fail "make run did not answer"

run_pid=$(cat "$run/run.pid")
worker_pid=$(cat "$run/worker.pid")
nginx_pid=$(cat "$run/nginx.pid")

"$make" --no-print-directory stop B="$b" || fail "make stop failed"

for pid in "$run_pid" "$worker_pid" "$nginx_pid"; do
    kill -0 "$pid" 2>/dev/null && fail "pid $pid still runs after make stop"
done
grep -q "run: stopped" "$b/run-check.out" || fail "run.sh did not stop itself"

out=$("$make" --no-print-directory stop B="$b") \
    || fail "make stop with nothing running failed"
case "$out" in
    *"nothing runs"*) ;;
    *) fail "make stop with nothing running said: $out" ;;
esac

wait || true
echo "run-stop: ok (make run in the background, make stop: all gone)"
