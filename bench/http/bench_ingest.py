#!/usr/bin/env python3
"""bench_ingest.py -- sustained ingest: does the trainer keep up with what
nginx accepts, on the same machine, and how fresh is the published model?

Runs what `make run` runs, in a temporary directory: a seeded synthetic
model (--items items in 20 categories, d=--dim, inner product, 1,000
users) published as generation 1, nginx (2 workers) with the embedded
action log and `milvuso_snapshot .../current check=1s`, and milvuso-worker
--worker-type all following that log (publish_interval 5 s and
publish_every 10000 unless --publish-interval / --publish-every).  nginx,
the trainer and wrk share the machine's cores.

Load: wrk (--threads, default 1, --connections) POSTs /actions for
--seconds where every request is a new user ("nu-<thread>-<n>"), the item
one of the catalogue's.  Meanwhile:

  probes    a paced client posts one action every --probe-interval s for
            a user of its own ("probe-<n>"), notes when the 202 came back,
            and polls GET /recommendations/probe-<n> every 0.1 s until the
            answer's source is "index" (the user's vector comes from the
            model nginx serves; "profile" before).  Freshness = that time
            minus the accept time: it includes nginx's 1 s check.
  samples   every second the worker's metrics file and nginx's /metrics
            (milvuso_action_log_records_total: what nginx accepted);
            every 10 s the bytes of the snapshot directory and of the log.

After the load, the probes still outstanding get --grace seconds.  The
report: nginx's accept rate (wrk and the log's count) and POST latency
(wrk --latency, over the whole run and so during the publishes), the
trainer's apply rate over the same window and its ratio to the accept rate
(the peer measured in the same run), the backlog (accepted - read by the
trainer, in records and in seconds of accepts: the time since nginx had
accepted as many records as the trainer has read) and when it was back to
0 after the load stopped, the generations published and the time between
them, publish durations (the worker's log: graph + files), freshness
p50/p99/max, the snapshot directory's size.  Targets (issue "The trainer
keeps up"): apply rate >= accept rate (>= 20k new-user actions/s), a
generation at least every 5 s, freshness p99 <= 10 s.

--json prints one JSON object instead of the tables; --plot FILE.png draws
the lag and the rates over time with gnuplot (bench/http/ingest.gp).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_http import parse_wrk, wait_healthy  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

NGINX_CONF = """
load_module {module};
worker_processes 2;
daemon off;
master_process on;
pid {run}/nginx.pid;
error_log {run}/error.log notice;
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
    milvuso_snapshot {run}/snapshots/current check=1s;
    milvuso_action_log {run}/actions segment=64m sync=off;
    client_body_buffer_size 64k;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /actions {{ milvuso_actions; }}
        # no cache: each probe's answer says where its vector came from
        location /recommendations/ {{
            milvuso_cache_ttl 0;
            milvuso_recommend;
        }}
        location = /health {{ milvuso_health; }}
        location = /metrics {{ milvuso_metrics; }}
    }}
}}
"""

WORKER_TOML = """[recommendation]
embedding_dim = {dim}
metric = "ip"

[worker]
action_log = "{run}/actions"
snapshot_dir = "{run}/snapshots"
metrics_file = "{run}/worker.prom"
log_level = "info"
{extra}"""

# every request a new user: thread number (setup) and a counter
LUA_NEW_USERS = """
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

local n = 0
local types = {{"View", "Click", "Like", "AddToCart", "Purchase"}}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
    n = n + 1
    local body = string.format(
        '{{"user_id":"nu-%d-%d","item_id":"item-%06d","action_type":"%s"}}',
        tid, n, (n * 7919) % {items}, types[n % 5 + 1])
    return wrk.format("POST", "/actions", nil, body)
end
"""

PUBLISHED_RE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z \w+ published generation "
    r"(\d+) \(.*?(\d+) users of which (\d+) in its delta.*?(\d+) records, "
    r"(\d+) bytes, graph ([\d.]+) s, files ([\d.]+) s\)")


def percentile(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def median(values):
    return percentile(values, 50) if values else None


def prom(text):
    """{name: value} of a Prometheus text exposition (no labels used)."""
    out = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) >= 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def dir_bytes(path):
    """Bytes on disk of the files under path (du: allocated blocks)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


def cpu_s(pid):
    """User + system CPU seconds of process pid so far (0 once gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / float(
        os.sysconf("SC_CLK_TCK"))


def rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def machine():
    model = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cores": os.cpu_count(), "cpu": model,
            "kernel": os.uname().release,
            "loadavg_before": open("/proc/loadavg").read().split()[:3]}


class Sampler(threading.Thread):
    """Every second: the worker's metrics and nginx's; every 10 s the
    snapshot directory's and the log's bytes."""

    def __init__(self, run, base, t0, worker_pid):
        super().__init__(daemon=True)
        self.dir, self.base, self.t0 = run, base, t0
        self.worker_pid = worker_pid
        self.rss = []             # (t, worker's VmRSS in MiB)
        self.samples = []
        self.disk = []
        self.stop_ev = threading.Event()

    def one(self):
        """(nginx's time, its metrics, the worker's time, its metrics): the
        worker writes its file every 5 s and after each publish, so its
        values are as of the file's mtime; nginx's as of the middle of
        the request."""
        w, tw = {}, None
        try:
            with open(self.dir + "/worker.prom") as f:
                tw = os.fstat(f.fileno()).st_mtime - self.t0
                w = prom(f.read())
        except OSError:
            pass
        n = {}
        t = time.time()
        try:
            n = prom(urllib.request.urlopen(self.base + "/metrics",
                                            timeout=5).read().decode())
        except OSError:
            pass
        t = (t + time.time()) / 2 - self.t0
        self.samples.append((t, n, tw, w))

    def run_disk(self):
        self.rss.append((time.time() - self.t0, rss_mib(self.worker_pid)))
        self.disk.append((time.time() - self.t0,
                          dir_bytes(self.dir + "/snapshots"),
                          dir_bytes(self.dir + "/actions"),
                          len(os.listdir(self.dir + "/snapshots"))))

    def run(self):
        k = 0
        while not self.stop_ev.is_set():
            self.one()
            if k % 10 == 0:
                self.run_disk()
            k += 1
            self.stop_ev.wait(max(0.0, self.t0 + k - time.time()))
        self.one()
        self.run_disk()


class Prober(threading.Thread):
    """One probe action every `interval` s for a new user; each outstanding
    probe's recommendations polled every 0.1 s until its source is index."""

    def __init__(self, base, interval, items, t0):
        super().__init__(daemon=True)
        host, port = base[len("http://"):].split(":")
        self.host, self.port = host, int(port)
        self.interval, self.items, self.t0 = interval, items, t0
        self.probes = []          # [name, accepted t, seen t or None]
        self.posting = True       # cleared: no new probes
        self.stop_ev = threading.Event()
        self.errors = 0

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, c, method, path, body=None):
        hdr = {"Content-Type": "application/json"} if body else {}
        try:
            c.request(method, path, body, hdr)
            r = c.getresponse()
            return c, r.status, r.read()
        except (OSError, http.client.HTTPException):
            self.errors += 1
            c.close()
            return self.conn(), None, b""

    def outstanding(self):
        return [p for p in self.probes if p[2] is None]

    def run(self):
        c = self.conn()
        next_post = time.time()
        k = 0
        while not self.stop_ev.is_set():
            now = time.time()
            if self.posting and now >= next_post:
                name = "probe-%d" % len(self.probes)
                body = json.dumps({"user_id": name,
                                   "item_id": "item-%06d"
                                   % ((len(self.probes) * 7919) % self.items),
                                   "action_type": "Click"})
                c, st, _ = self.request(c, "POST", "/actions", body)
                if st == 202:
                    self.probes.append([name, time.time() - self.t0, None])
                next_post += self.interval
            for p in self.outstanding():
                c, st, data = self.request(c, "GET", "/recommendations/"
                                           + p[0] + "?num_recommendations=5")
                if st == 200:
                    try:
                        src = json.loads(data).get("source")
                    except ValueError:
                        src = None
                    if src == "index":
                        p[2] = time.time() - self.t0
            # paced on a 0.1 s grid from t0; a slow round skips ahead
            k += 1
            now = time.time()
            if now > self.t0 + k * 0.1 + 1:
                k = int((now - self.t0) / 0.1) + 1
            self.stop_ev.wait(max(0.0, self.t0 + k * 0.1 - now))
        c.close()


def publishes_from_log(path):
    """(unix time, generation, users in delta, records, bytes, graph s,
    files s) of each 'published generation' line of the worker's log."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = PUBLISHED_RE.match(line)
            if not m:
                continue
            ts = time.mktime(time.strptime(m.group(1)[:19],
                                           "%Y-%m-%dT%H:%M:%S")) \
                - time.timezone + float("0" + m.group(1)[19:])
            out.append((ts, int(m.group(2)), int(m.group(4)),
                        int(m.group(5)), int(m.group(6)),
                        float(m.group(7)), float(m.group(8))))
    return out


def accepted_series(samples):
    """[(t, records nginx had accepted)] from its /metrics samples."""
    return [(t, n["milvuso_action_log_records_total"]) for t, n, _, _ in
            samples if "milvuso_action_log_records_total" in n]


def interp(xy, x):
    """y at x, linear between the points of xy (sorted by x), clamped."""
    if not xy:
        return None
    if x <= xy[0][0]:
        return xy[0][1]
    for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1
    return xy[-1][1]


def accepted_at(acc, count):
    """When nginx had accepted `count` records (linear between samples),
    or None."""
    prev = None
    for t, a in acc:
        if a >= count:
            if prev is None or a == prev[1]:
                return t
            return prev[0] + (t - prev[0]) * (count - prev[1]) / (a - prev[1])
        prev = (t, a)
    return None


def series(samples):
    """Per write of the worker's metrics file (at its mtime): accepted by
    nginx then, read, applied, pending, generation, backlog records, backlog
    seconds (the time since nginx had accepted as many records as the
    trainer had read), and the worker's own lag metrics if it has them."""
    acc = accepted_series(samples)
    rows = []
    for _, _, tw, w in samples:
        r = w.get("milvuso_worker_records_total")
        if tw is None or r is None or (rows and tw <= rows[-1]["t"]):
            continue
        a = interp(acc, tw)
        if a is None:
            continue
        at = accepted_at(acc, r)
        lag = max(0.0, tw - at) if (at is not None and r < a) else 0.0
        rows.append({"t": round(tw, 3), "accepted": int(a), "read": int(r),
                     "applied": int(w.get("milvuso_worker_actions_total", 0)),
                     "pending": int(w.get("milvuso_worker_pending_records",
                                          0)),
                     "generation": int(w.get("milvuso_worker_generation", 0)),
                     "backlog": int(max(0, a - r)),
                     "apply_lag_s": round(lag, 2),
                     "worker_lag_s": w.get("milvuso_worker_lag_seconds"),
                     "worker_backlog_bytes":
                         w.get("milvuso_worker_backlog_bytes"),
                     "worker_behind": w.get("milvuso_worker_behind"),
                     "publish_s":
                         w.get("milvuso_worker_last_publish_duration_seconds")})
    return rows


def rate_at(rows, key, i, window=5.0):
    """Per-second rate of rows[*][key] over >= `window` s up to row i."""
    j = i
    while j > 0 and rows[i]["t"] - rows[j]["t"] < window:
        j -= 1
    dt = rows[i]["t"] - rows[j]["t"]
    return (rows[i][key] - rows[j][key]) / dt if dt > 0 else 0.0


def plot(a, rows, probes, load, out_png, run):
    """Lag (apply lag, worker lag_seconds, probe freshness) and the
    accepted vs applied rates over time, with gnuplot."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("no gnuplot: no plot (apt-get install gnuplot-nox)",
              file=sys.stderr)
        return None
    csv = run + "/series.csv"
    with open(csv, "w") as f:
        f.write("t,accepted_rate,applied_rate,backlog,apply_lag_s,"
                "worker_lag_s,generation\n")
        for i, r in enumerate(rows):
            wl = r["worker_lag_s"]
            f.write("%.2f,%.0f,%.0f,%d,%.2f,%s,%d\n" % (
                r["t"] - load[0], rate_at(rows, "accepted", i),
                rate_at(rows, "applied", i), r["backlog"], r["apply_lag_s"],
                "%.2f" % wl if wl is not None else "NaN", r["generation"]))
    pcsv = run + "/probes.csv"
    with open(pcsv, "w") as f:
        f.write("accepted_t,freshness_s\n")
        for _, acc, seen in probes:
            if seen is not None:
                f.write("%.2f,%.3f\n" % (acc - load[0], seen - acc))
    title = ("ingest: new-user POST /actions, wrk -t%d -c%d, %d s; %d items "
             "d=%d; publish_interval %gs publish_every %d"
             % (a.threads, a.connections, a.seconds, a.items, a.dim,
                a.publish_interval, a.publish_every))
    subprocess.run([gnuplot, "-e",
                    "csv='%s'; probes='%s'; png='%s'; plottitle='%s'; "
                    "loadend=%g; haslag=%d"
                    % (csv, pcsv, os.path.abspath(out_png), title,
                       load[1] - load[0],
                       any(r["worker_lag_s"] is not None for r in rows)),
                    os.path.join(HERE, "ingest.gp")], check=True)
    return out_png


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--module", required=True)
    ap.add_argument("--worker", required=True)
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--items", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1,
                    help="wrk threads (1: the cores are shared by nginx, "
                         "the trainer and wrk)")
    ap.add_argument("--port", type=int, default=18082)
    ap.add_argument("--publish-interval", type=float, default=5.0)
    ap.add_argument("--publish-every", type=int, default=10000)
    ap.add_argument("--probe-interval", type=float, default=0.5)
    ap.add_argument("--grace", type=float, default=60,
                    help="seconds after the load for outstanding probes")
    ap.add_argument("--dir", default=None,
                    help="where the run directory goes")
    ap.add_argument("--plot", default=None, metavar="FILE.png")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None, metavar="PREFIX",
                    help="also write PREFIX.txt and PREFIX.json (and "
                         "PREFIX.png unless --plot)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the run directory")
    a = ap.parse_args()

    mach = machine()
    run = tempfile.mkdtemp(prefix="bench-ingest.",
                           dir=os.path.abspath(a.dir) if a.dir else None)
    os.chmod(run, 0o755)
    procs = []
    try:
        os.makedirs(run + "/actions")
        if os.getuid() == 0:
            shutil.chown(run + "/actions", user="nobody")
        subprocess.run([a.worker, "snapshot", "--out", run + "/snapshots",
                        "--synthetic", str(a.items), "--dim", str(a.dim),
                        "--categories", "20", "--users", "1000", "--seed",
                        "1", "--generation", "1", "--metric", "ip"],
                       check=True, capture_output=True)
        os.chmod(run + "/snapshots", 0o755)
        with open(run + "/nginx.conf", "w") as f:
            f.write(NGINX_CONF.format(module=os.path.abspath(a.module),
                                      run=run, port=a.port))
        with open(run + "/worker.toml", "w") as f:
            f.write(WORKER_TOML.format(
                dim=a.dim, run=run,
                extra="publish_interval = %g\npublish_every = %d\n"
                % (a.publish_interval, a.publish_every)))
        with open(run + "/new-users.lua", "w") as f:
            f.write(LUA_NEW_USERS.format(items=a.items))

        log = open(run + "/worker.log", "w")
        worker = subprocess.Popen([a.worker, "--config", run + "/worker.toml",
                                   "--worker-type", "all", "--foreground"],
                                  stdout=log, stderr=subprocess.STDOUT)
        procs.append(("worker", worker, signal.SIGTERM))
        nginx = subprocess.Popen([a.nginx, "-e", run + "/error.log", "-c",
                                  run + "/nginx.conf"])
        procs.append(("nginx", nginx, signal.SIGQUIT))
        base = "http://127.0.0.1:%d" % a.port
        if not wait_healthy(base):
            sys.exit("nginx did not come up; see %s/error.log" % run)
        time.sleep(1)
        if worker.poll() is not None:
            sys.exit("the worker exited; see %s/worker.log" % run)

        t0 = time.time()
        sampler = Sampler(run, base, t0, worker.pid)
        prober = Prober(base, a.probe_interval, a.items, t0)
        sampler.start()
        time.sleep(2)                   # a baseline before the load
        prober.start()
        ngx_pids = [nginx.pid] + children(nginx.pid)
        c_worker, c_ngx = cpu_s(worker.pid), sum(cpu_s(p) for p in ngx_pids)
        load0 = time.time() - t0
        out = subprocess.run(["wrk", "-t%d" % a.threads,
                              "-c%d" % a.connections, "-d%ds" % a.seconds,
                              "--latency", "-s", run + "/new-users.lua",
                              base], check=True, capture_output=True,
                             text=True).stdout
        load1 = time.time() - t0
        cores = {"worker": round((cpu_s(worker.pid) - c_worker)
                                 / (load1 - load0), 2),
                 "nginx": round((sum(cpu_s(p) for p in ngx_pids) - c_ngx)
                                / (load1 - load0), 2)}
        with open(run + "/wrk.txt", "w") as f:
            f.write(out)
        rps, p50, p99, errors = parse_wrk(out)
        m = re.search(r"(\d+) requests in", out)
        wrk_requests = int(m.group(1)) if m else None

        # the grace: no new probes; wait for the outstanding ones and the
        # trainer to have read everything nginx accepted
        prober.posting = False
        deadline = time.time() + a.grace
        while time.time() < deadline:
            s = sampler.samples[-1] if sampler.samples else None
            done = (s and s[3].get("milvuso_worker_records_total", -1)
                    >= s[1].get("milvuso_action_log_records_total", 0))
            if done and not prober.outstanding():
                break
            time.sleep(0.5)
        time.sleep(1.5)                 # one more sample past it
        prober.stop_ev.set()
        prober.join()
        sampler.stop_ev.set()
        sampler.join()
        end = time.time() - t0
    finally:
        for name, p, sig in reversed(procs):
            if p.poll() is None:
                p.send_signal(sig)
        for name, p, sig in reversed(procs):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if procs:
            log.close()

    try:
        report = analyse(a, run, mach, sampler, prober, (load0, load1), end,
                         rps, p50, p99, errors, wrk_requests, cores)
        png = a.plot or (a.out + ".png" if a.out else None)
        if png:
            report["plot"] = plot(a, series(sampler.samples), prober.probes,
                                  (load0, load1), png, run)
        if a.out:
            with open(a.out + ".json", "w") as f:
                json.dump(report, f, indent=1)
            with open(a.out + ".txt", "w") as f:
                print_report(a, report, f)
        if a.json:
            print(json.dumps(report, indent=1))
        else:
            print_report(a, report)
    finally:
        if a.keep:
            print("run directory kept: " + run, file=sys.stderr)
        else:
            shutil.rmtree(run, ignore_errors=True)


def analyse(a, run, mach, sampler, prober, load, end, rps, p50, p99, errors,
            wrk_requests, cores):
    rows = series(sampler.samples)
    load0, load1 = load
    # the rates over the load window: the trainer's between its first and
    # last metrics write inside it, nginx's over the same interval
    acc = accepted_series(sampler.samples)
    inside = [r for r in rows if load0 <= r["t"] <= load1]
    if len(inside) >= 2:
        w0, w1 = inside[0]["t"], inside[-1]["t"]
        apply_rate = ((inside[-1]["applied"] - inside[0]["applied"])
                      / (w1 - w0))
        accept_rate = (interp(acc, w1) - interp(acc, w0)) / (w1 - w0)
    else:
        w0 = w1 = None
        apply_rate = accept_rate = 0.0
    # back to a backlog of 0 after the load stopped
    caught = None
    final = rows[-1]["accepted"] if rows else 0
    for r in rows:
        if r["t"] >= load1 and r["read"] >= final:
            caught = round(r["t"] - load1, 2)
            break
    pubs = [p for p in publishes_from_log(run + "/worker.log")
            if p[0] >= sampler.t0 + load0]
    pub_t = [p[0] for p in pubs if p[0] <= sampler.t0 + load1]
    # the time between publishes while the load ran: from the load's start
    # to the first publish after its end (a long publish that spans the
    # end counts)
    after = [p[0] for p in pubs if p[0] > sampler.t0 + load1][:1]
    marks = [sampler.t0 + load0] + pub_t + after
    gaps = [y - x for x, y in zip(marks, marks[1:])]
    dur = [p[5] + p[6] for p in pubs]
    # publish (the worker's log) -> nginx serves it (its /metrics, 1 s
    # samples): what nginx's check= adds to the freshness
    swaps = []
    for p in pubs:
        for t, n, _, _ in sampler.samples:
            if (t + sampler.t0 >= p[0]
                    and n.get("milvuso_snapshot_generation", 0) >= p[1]):
                swaps.append(t + sampler.t0 - p[0])
                break
    last_n = sampler.samples[-1][1] if sampler.samples else {}
    warns = errs = 0
    compactions = []
    with open(run + "/worker.log", errors="replace") as f:
        for line in f:
            warns += " warn " in line[:40]
            errs += " error " in line[:40]
            m = re.search(r"compacted the users of generation (\d+) into one "
                          r"base \((\d+) bytes, ([\d.]+) s\)", line)
            if m:
                compactions.append({"generation": int(m.group(1)),
                                    "bytes": int(m.group(2)),
                                    "seconds": float(m.group(3))})
    fresh = [s - acc for _, acc, s in prober.probes if s is not None]
    never = [p for p in prober.probes if p[2] is None]
    during = [s - acc for _, acc, s in prober.probes
              if s is not None and acc <= load1]
    # the last probe accepted before the load stopped: when it was visible
    last = [p for p in prober.probes if p[1] <= load1]
    last_seen = (round(last[-1][2] - load1, 2)
                 if last and last[-1][2] is not None else None)
    wl = [r["worker_lag_s"] for r in rows if r["worker_lag_s"] is not None]
    return {
        "machine": mach,
        "config": {"items": a.items, "dim": a.dim, "seconds": a.seconds,
                   "wrk_threads": a.threads, "connections": a.connections,
                   "nginx_workers": 2, "check": "1s",
                   "publish_interval_s": a.publish_interval,
                   "publish_every": a.publish_every,
                   "probe_interval_s": a.probe_interval, "grace_s": a.grace},
        "post": {"wrk_rps": rps, "wrk_requests": wrk_requests,
                 "p50_ms": p50, "p99_ms": p99, "errors": errors},
        "cores_used": cores,
        "accept_rate": round(accept_rate, 1),
        "apply_rate": round(apply_rate, 1),
        "apply_over_accept": round(apply_rate / accept_rate, 3)
        if accept_rate else None,
        "accepted_total": final,
        "applied_total": rows[-1]["applied"] if rows else 0,
        "max_backlog_records": max([r["backlog"] for r in rows] or [0]),
        "max_apply_lag_s": max([r["apply_lag_s"] for r in rows] or [0]),
        "max_worker_lag_s": max(wl) if wl else None,
        "caught_up_after_load_s": caught,
        "last_probe_before_end_visible_after_s": last_seen,
        "publishes": {
            "during_load": len(pub_t), "total": len(pubs),
            "interval_median_s": round(median(gaps), 2) if gaps else None,
            "interval_max_s": round(max(gaps), 2) if gaps else None,
            "duration_median_s": round(median(dur), 3) if dur else None,
            "duration_max_s": round(max(dur), 3) if dur else None,
            "graph_max_s": max(p[5] for p in pubs) if pubs else None,
            "files_max_s": max(p[6] for p in pubs) if pubs else None,
            "served_after_median_s": round(median(swaps), 2)
            if swaps else None,
            "served_after_max_s": round(max(swaps), 2) if swaps else None,
            "nginx_refusals": last_n.get("milvuso_snapshot_refusals_total"),
            "last": ({"generation": pubs[-1][1], "users_in_delta": pubs[-1][2],
                      "records": pubs[-1][3], "bytes": pubs[-1][4]}
                     if pubs else None)},
        "freshness": {
            "probes": len(prober.probes), "never": len(never),
            "probe_errors": prober.errors,
            "p50_s": round(percentile(fresh, 50), 2) if fresh else None,
            "p99_s": round(percentile(fresh, 99), 2) if fresh else None,
            "max_s": round(max(fresh), 2) if fresh else None,
            "during_load_p99_s": round(percentile(during, 99), 2)
            if during else None},
        "disk": {
            "snapshot_dir_max_bytes": max(d[1] for d in sampler.disk),
            "snapshot_dir_last_bytes": sampler.disk[-1][1],
            "snapshot_dir_max_files": max(d[3] for d in sampler.disk),
            "action_log_last_bytes": sampler.disk[-1][2]},
        "worker_rss_max_mib": max([m for _, m in sampler.rss
                                   if m is not None] or [0]),
        "worker_log": {"warnings": warns, "errors": errs,
                       "publishes": [
                           {"t_s": round(p[0] - sampler.t0, 3),
                            "generation": p[1], "users_in_delta": p[2],
                            "records": p[3], "bytes": p[4], "graph_s": p[5],
                            "files_s": p[6]} for p in pubs],
                       "compactions": compactions},
        "load_window_s": [round(load0, 2), round(load1, 2)],
        "rate_window_s": [w0, w1],
        "run_s": round(end, 1),
        "targets": {"apply_over_accept": 1.0, "accept_rate": 20000,
                    "publish_interval_max_s": 5.0, "fresh_p99_s": 10.0},
        "series": rows,
        "probes": [{"user": n, "accepted_s": round(acc, 3),
                    "seen_s": round(s, 3) if s is not None else None}
                   for n, acc, s in prober.probes],
    }


def print_report(a, r, out=sys.stdout):
    def print(*args):
        out.write(" ".join(str(x) for x in args) + "\n")

    c, m = r["config"], r["machine"]
    print("sustained ingest: new-user POST /actions, wrk -t%d -c%d -d%ds; "
          "%d items d=%d; nginx 2 workers (action log, check=1s); trainer "
          "publish_interval %g s, publish_every %d"
          % (c["wrk_threads"], c["connections"], c["seconds"], c["items"],
             c["dim"], c["publish_interval_s"], c["publish_every"]))
    print("machine: %d cores, %s, kernel %s, load average before %s; "
          "run of %s" % (m["cores"], m["cpu"], m["kernel"],
                         " ".join(m["loadavg_before"]), m["date"]))
    p, pu, f, d = r["post"], r["publishes"], r["freshness"], r["disk"]

    def fmt(v, spec):
        return spec % v if v is not None else "-"

    rows = [
        ("POST accepted (wrk)", "%.0f req/s, %d non-2xx/errors"
         % (p["wrk_rps"], p["errors"])),
        ("POST accepted (nginx log)", "%.0f records/s" % r["accept_rate"]),
        ("POST latency", "p50 %s ms, p99 %s ms" % (fmt(p["p50_ms"], "%.3f"),
                                                   fmt(p["p99_ms"], "%.3f"))),
        ("trainer applied", "%.0f actions/s = %.2fx the accept rate"
         % (r["apply_rate"], r["apply_over_accept"] or 0)),
        ("cores used during load", "nginx %.2f, worker %.2f"
         % (r["cores_used"]["nginx"], r["cores_used"]["worker"])),
        ("accepted / applied", "%d / %d" % (r["accepted_total"],
                                            r["applied_total"])),
        ("max backlog", "%d records, %.1f s of accepts"
         % (r["max_backlog_records"], r["max_apply_lag_s"])),
        ("worker lag_seconds max", fmt(r["max_worker_lag_s"], "%.2f s")),
        ("caught up after load", fmt(r["caught_up_after_load_s"],
                                     "%.1f s (read all accepted)")),
        ("last probe before end", fmt(r["last_probe_before_end_visible_after_s"],
                                      "visible %.1f s after the load")),
        ("generations published", "%d during the load, %d in all"
         % (pu["during_load"], pu["total"])),
        ("publish interval", "median %s s, max %s s"
         % (fmt(pu["interval_median_s"], "%.2f"),
            fmt(pu["interval_max_s"], "%.2f"))),
        ("publish duration", "median %s s, max %s s (graph max %s s, files "
         "max %s s)" % (fmt(pu["duration_median_s"], "%.3f"),
                        fmt(pu["duration_max_s"], "%.3f"),
                        fmt(pu["graph_max_s"], "%.3f"),
                        fmt(pu["files_max_s"], "%.3f"))),
        ("nginx serves a generation", "median %s s, max %s s after its "
         "publish (1 s samples); %s refused"
         % (fmt(pu["served_after_median_s"], "%.1f"),
            fmt(pu["served_after_max_s"], "%.1f"),
            fmt(pu["nginx_refusals"], "%d"))),
        ("freshness (probes)", "p50 %s s, p99 %s s, max %s s; %d probes, %d "
         "never visible" % (fmt(f["p50_s"], "%.2f"), fmt(f["p99_s"], "%.2f"),
                            fmt(f["max_s"], "%.2f"), f["probes"],
                            f["never"])),
        ("snapshot dir", "max %.1f MiB (%d files), %.1f MiB at the end"
         % (d["snapshot_dir_max_bytes"] / 1048576.0,
            d["snapshot_dir_max_files"],
            d["snapshot_dir_last_bytes"] / 1048576.0)),
        ("action log on disk", "%.1f MiB at the end"
         % (d["action_log_last_bytes"] / 1048576.0)),
        ("worker", "RSS max %.0f MiB; log: %d warnings, %d errors, %d "
         "compactions (max %s s)"
         % (r["worker_rss_max_mib"], r["worker_log"]["warnings"],
            r["worker_log"]["errors"], len(r["worker_log"]["compactions"]),
            fmt(max([x["seconds"] for x in r["worker_log"]["compactions"]]
                    or [None], key=lambda v: v or 0), "%.2f"))),
    ]
    for k, v in rows:
        print("  %-26s %s" % (k, v))
    print("targets: applied >= accepted (>= 20000/s), a generation every "
          "<= 5 s, freshness p99 <= 10 s")
    if r.get("plot"):
        print("plot: " + r["plot"])


if __name__ == "__main__":
    main()
