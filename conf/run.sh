#!/usr/bin/env bash
# run.sh MODULE_SO WORKER_BIN RUN_DIR [LISTEN] -- the embedded default that
# `make run` starts: a seeded synthetic catalogue (10k items in 20
# categories, 1k users, d=64) published as generation 1 when the data
# directory has no snapshot yet, then nginx in the foreground with
# conf/nginx.conf rendered for this checkout.  Ctrl-C stops nginx.
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 MODULE_SO WORKER_BIN RUN_DIR [LISTEN]" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
module=$(realpath "$1")
worker=$(realpath "$2")
run=$(realpath -m "$3")
listen=${4:-127.0.0.1:8080}
data=$run/data

mkdir -p "$run" "$data/snapshots" "$data/actions"

if [ ! -e "$data/snapshots/current" ]; then
    echo "run: seeding a synthetic catalogue into $data/snapshots"
    "$worker" snapshot --out "$data/snapshots" --synthetic 10000 --dim 64 \
        --categories 20 --users 1000 --seed 1 --generation 1
fi

sed -e "s|@MODULE@|$module|g" -e "s|@RUN@|$run|g" -e "s|@DATA@|$data|g" \
    -e "s|@LISTEN@|$listen|g" "$here/nginx.conf" >"$run/nginx.conf"

# the worker processes run as nginx's default user: let them write the log
if [ "$(id -u)" = 0 ]; then
    chown -R nobody "$data/actions" 2>/dev/null || true
    chmod 755 "$run" "$data" "$data/snapshots"
fi

/usr/sbin/nginx -e "$run/error.log" -c "$run/nginx.conf" -t
echo "run: nginx on http://$listen (Ctrl-C stops it); logs in $run"
exec /usr/sbin/nginx -e "$run/error.log" -c "$run/nginx.conf"
