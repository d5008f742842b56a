#!/usr/bin/env python3
"""bench_http.py -- HTTP benchmark of the nginx module against nginx's own
ceiling, measured in the same run on the same nginx configuration.

Starts /usr/sbin/nginx (2 workers) with the module on a seeded synthetic
model (default 100k items, d=64, 1k users), then runs wrk on loopback for:

  return200     `location = /bench/return200 { return 200; }`: the ceiling
  rec-miss      GET /recommendations with the cache off (every request
                blends the profile, searches HNSW, scans fresh items)
  rec-hit       GET /recommendations answered from the L1 cache
  actions       POST /actions (validation, log append, profile update)

and prints requests/s, p50 and p99 latency per case and the ratio of each
rate to return200's.  --json prints one JSON object instead of the table.

--mode sync-mixed measures what a durable action log costs the reads: the
log is written with `sync=on` (an fdatasync per append), and the cases are

  return200       the ceiling, alone
  rec-miss        GET /recommendations (cache off), alone
  rec-miss+post   the same GETs while a second wrk POSTs /actions on
                  --post-connections connections (both run --seconds)
  post            the concurrent POST /actions rate of that run

The ratio of rec-miss+post to rec-miss is the share of GET throughput that
survives a concurrent write load; with the log appended under the zone's
mutex a slow fdatasync stalls every GET, with its own lock it does not.
Targets (issue): rec-miss >= 0.25x, rec-hit >= 0.7x, actions >= 0.5x the
return200 rate, p99 <= 2 ms at 64 connections.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

NGINX_CONF = """
load_module {module};
worker_processes 2;
daemon off;
master_process on;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    keepalive_requests 1000000;
    milvuso_zone bench:256m;
    milvuso_snapshot {run}/snapshots/current;
    milvuso_action_log {run}/actions{log_sync};
    {ef_line}
    client_body_buffer_size 64k;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /bench/return200 {{ return 200; }}
        location /nocache/recommendations/ {{
            milvuso_cache_ttl 0;
            milvuso_recommend;
        }}
        location /recommendations/ {{
            milvuso_cache_ttl 1h;
            milvuso_recommend;
        }}
        location = /actions {{ milvuso_actions; }}
        location = /health {{ milvuso_health; }}
    }}
}}
"""

# wrk scripts: rotate over users so the miss case does real work per user
# and the action case spreads over profiles.
LUA_REC = """
local n = 0
request = function()
    n = n + 1
    local u = string.format("user-%06d", n % {users})
    return wrk.format("GET", "{prefix}" .. u .. "?num_recommendations=10")
end
"""

LUA_ACTIONS = """
local n = 0
local types = {{"View", "Click", "Like", "AddToCart", "Purchase"}}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
    n = n + 1
    local body = string.format(
        '{{"user_id":"user-%06d","item_id":"item-%06d","action_type":"%s"}}',
        n % {users}, (n * 7919) % {items}, types[n % 5 + 1])
    return wrk.format("POST", "/actions", nil, body)
end
"""


def parse_wrk(out):
    """Requests/s, p50 and p99 (ms) and error counts from wrk --latency."""
    def to_ms(v, unit):
        v = float(v)
        return {"us": v / 1000.0, "ms": v, "s": v * 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct, v, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$",
                                   out, re.M):
        lat[pct] = to_ms(v, unit)
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return rps, lat.get("50"), lat.get("99"), errors


def wrk(url, seconds, conns, threads, script=None):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds,
           "--latency"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    out = subprocess.run(cmd, check=True, capture_output=True,
                         text=True).stdout
    return parse_wrk(out)


def seed_snapshot(worker, out, items, dim, users):
    """Publishes a seeded synthetic model (20 categories) into `out`."""
    subprocess.run([worker, "snapshot", "--out", out, "--synthetic",
                    str(items), "--dim", str(dim), "--categories", "20",
                    "--users", str(users), "--seed", "1"], check=True,
                   capture_output=True)


def wait_healthy(base, tries=100):
    """True once GET base/health answers status ok (0.1 s between tries)."""
    for _ in range(tries):
        try:
            h = json.load(urllib.request.urlopen(base + "/health"))
            if h.get("status") == "ok":
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def sync_mixed(a, base, run):
    """return200 and rec-miss alone, then rec-miss under a POST load."""
    results = {}
    for name, url, script in (("return200", base + "/bench/return200", None),
                              ("rec-miss", base, run + "/rec-miss.lua")):
        rps, p50, p99, errors = wrk(url, a.seconds, a.connections, a.threads,
                                    script)
        results[name] = {"rps": rps, "p50_ms": p50, "p99_ms": p99,
                         "errors": errors}

    # the POST load starts first and outlasts the GETs by a second
    post = subprocess.Popen(
        ["wrk", "-t1", "-c%d" % a.post_connections, "-d%ds" % (a.seconds + 2),
         "--latency", "-s", run + "/actions.lua", base],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        rps, p50, p99, errors = wrk(base, a.seconds, a.connections,
                                    a.threads, run + "/rec-miss.lua")
        results["rec-miss+post"] = {"rps": rps, "p50_ms": p50,
                                    "p99_ms": p99, "errors": errors}
        out, _ = post.communicate(timeout=a.seconds + 30)
    finally:
        if post.poll() is None:
            post.kill()
            post.wait()
    rps, p50, p99, errors = parse_wrk(out)
    results["post"] = {"rps": rps, "p50_ms": p50, "p99_ms": p99,
                       "errors": errors}
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--module", required=True)
    ap.add_argument("--worker", required=True)
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--ef", type=int, default=0,
                    help="milvuso_ef for the searches (0: the default)")
    ap.add_argument("--mode", choices=("standard", "sync-mixed"),
                    default="standard")
    ap.add_argument("--post-connections", type=int, default=16,
                    help="sync-mixed: connections of the POST load")
    ap.add_argument("--dir", default=None,
                    help="where the run directory goes (a disk, not tmpfs, "
                         "for sync-mixed)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true",
                    help="keep the run directory")
    a = ap.parse_args()

    run = tempfile.mkdtemp(prefix="bench-http.",
                           dir=os.path.abspath(a.dir) if a.dir else None)
    os.chmod(run, 0o755)
    try:
        os.makedirs(run + "/actions")
        if os.getuid() == 0:
            shutil.chown(run + "/actions", user="nobody")
        t0 = time.time()
        seed_snapshot(a.worker, run + "/snapshots", a.items, a.dim, a.users)
        os.chmod(run + "/snapshots", 0o755)
        build_s = time.time() - t0

        with open(run + "/nginx.conf", "w") as f:
            f.write(NGINX_CONF.format(
                module=os.path.abspath(a.module), run=run, port=a.port,
                ef_line=("milvuso_ef %d;" % a.ef) if a.ef else "",
                log_sync=(" sync=on" if a.mode == "sync-mixed" else "")))
        for name, text in (("rec-miss.lua", LUA_REC.format(
                                users=a.users,
                                prefix="/nocache/recommendations/")),
                           ("rec-hit.lua", LUA_REC.format(
                                users=a.users, prefix="/recommendations/")),
                           ("actions.lua", LUA_ACTIONS.format(
                                users=a.users, items=a.items))):
            with open(os.path.join(run, name), "w") as f:
                f.write(text)

        nginx = subprocess.Popen(["/usr/sbin/nginx", "-e",
                                  run + "/error.log", "-c",
                                  run + "/nginx.conf"])
        base = "http://127.0.0.1:%d" % a.port
        try:
            if not wait_healthy(base):
                sys.exit("nginx did not come up with the model; see "
                         + run + "/error.log")

            # warm the cache for the hit case: one request per user
            subprocess.run(["wrk", "-t1", "-c4", "-d2s", "-s",
                            run + "/rec-hit.lua", base], check=True,
                           capture_output=True)

            if a.mode == "sync-mixed":
                results = sync_mixed(a, base, run)
            else:
                cases = [("return200", base + "/bench/return200", None),
                         ("rec-miss", base, run + "/rec-miss.lua"),
                         ("rec-hit", base, run + "/rec-hit.lua"),
                         ("actions", base, run + "/actions.lua")]
                results = {}
                for name, url, script in cases:
                    rps, p50, p99, errors = wrk(url, a.seconds,
                                                a.connections, a.threads,
                                                script)
                    results[name] = {"rps": rps, "p50_ms": p50,
                                     "p99_ms": p99, "errors": errors}
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=30)

        ceiling = results["return200"]["rps"]
        for r in results.values():
            r["ratio"] = r["rps"] / ceiling if ceiling else 0.0

        report = {
            "mode": a.mode,
            "items": a.items, "dim": a.dim, "users": a.users,
            "connections": a.connections, "wrk_threads": a.threads,
            "seconds": a.seconds, "nginx_workers": 2,
            "milvuso_ef": a.ef or "default",
            "snapshot_build_seconds": round(build_s, 1),
            "cases": results,
            "targets": {"rec-miss": 0.25, "rec-hit": 0.7, "actions": 0.5,
                        "p99_ms": 2.0},
        }
        if a.json:
            print(json.dumps(report, indent=1))
        else:
            print("HTTP benchmark: %d items, d=%d, %d users; wrk -t%d -c%d "
                  "-d%ds on loopback, nginx 2 workers" %
                  (a.items, a.dim, a.users, a.threads, a.connections,
                   a.seconds))
            print("%-10s %12s %9s %9s %8s %7s" %
                  ("case", "requests/s", "p50 ms", "p99 ms", "ratio",
                   "errors"))
            for name in results:
                r = results[name]
                print("%-10s %12.0f %9.3f %9.3f %7.2fx %7d" %
                      (name, r["rps"], r["p50_ms"] or 0, r["p99_ms"] or 0,
                       r["ratio"], r["errors"]))
    finally:
        if a.keep:
            print("run directory kept: " + run, file=sys.stderr)
        else:
            shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
