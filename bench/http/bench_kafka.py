#!/usr/bin/env python3
"""bench_kafka.py -- POST /actions through nginx's Kafka producer against
nginx's own `return 200` and the embedded action log, measured in the same
run, and the pipeline's end-to-end freshness.

Starts its own broker (conf/services.sh, on --kafka-port, in the run
directory: the JVM's start time and the broker's RSS go in the report),
seeds a synthetic model, and runs nginx (2 workers) three times, once per
transport:

  log          milvuso_action_log (the embedded default)
  kafka-off    milvuso_kafka ack=off (202 once the record is queued)
  kafka-on     milvuso_kafka ack=on (202 once Kafka confirmed it)

In each run (--runs, medians reported) wrk measures `return 200` (the ceiling) and POST /actions on
the same configuration; the ratio is the run's POST rate over its own
return 200 rate (target: >= 0.5 with ack=off).  The broker runs on the
same machine: the cores it used meanwhile are reported beside.

Freshness, twice: a trainer (milvuso-worker, [kafka] enabled, the default
publish interval unless --publish-interval) follows fresh topics while a
paced client posts --fresh-rate actions/s for --fresh-seconds through nginx
(ack=on); first the trainer on user_actions itself, then the pipeline with
the feature worker (trainer_input = examples: actions -> feature worker ->
training examples, in transactions -> trainer).  Every snapshot is kept;
afterwards each action's freshness is the creation time of the first
snapshot whose position on the partition the trainer read it from (the
action's, or its example's, matched by event id) is past it, minus the
action's Kafka timestamp (set by nginx's producer when it accepted the
request).  p50 and p99 over all the records (target: p99 <= 10 s with the
default 5 s publish interval).

--json prints one JSON object instead of the tables.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_http import (LUA_ACTIONS, seed_snapshot, wait_healthy,  # noqa: E402
                        wrk)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

NGINX_CONF = """
load_module {module};
worker_processes 2;
daemon off;
master_process on;
pid {run}/nginx.pid;
error_log {run}/error-{name}.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    keepalive_requests 1000000;
    milvuso_zone bench:128m;
    milvuso_snapshot {run}/seed/current;
    {transport}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /bench/return200 {{ return 200; }}
        location = /actions {{ milvuso_actions; }}
        location = /health {{ milvuso_health; }}
    }}
}}
"""


def percentile(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def services(cmd, run, worker, env):
    subprocess.run([ROOT + "/conf/services.sh", cmd, "--run", run,
                    "--worker", worker], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def cpu_s(pid):
    """User + system CPU seconds of process pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(
        os.sysconf("SC_CLK_TCK"))


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


class Nginx:
    """nginx with the module on one transport, up once /health answers."""

    def __init__(self, a, run, name, transport):
        conf = "%s/nginx-%s.conf" % (run, name)
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(module=os.path.abspath(a.module),
                                      run=run, port=a.port, name=name,
                                      transport=transport))
        self.p = subprocess.Popen(["/usr/sbin/nginx", "-e",
                                   "%s/error-%s.log" % (run, name),
                                   "-c", conf])
        self.base = "http://127.0.0.1:%d" % a.port
        if wait_healthy(self.base):
            return
        self.stop()
        sys.exit("nginx (%s) did not come up; see %s/error-%s.log"
                 % (name, run, name))

    def stop(self):
        self.p.send_signal(signal.SIGQUIT)
        self.p.wait(timeout=60)


def throughput(a, run, brokers, broker_pid):
    results = {}
    for name, transport in (
            ("log", "milvuso_action_log %s/actions;" % run),
            ("kafka-off", "milvuso_kafka brokers=%s ack=off %s;"
             % (brokers, a.kafka_props)),
            ("kafka-on", "milvuso_kafka brokers=%s ack=on %s;"
             % (brokers, a.kafka_props))):
        ngx = Nginx(a, run, name, transport)
        try:
            # warm-up, unmeasured: the broker's JIT compiles its hot paths
            # under the first load (a running broker is warm)
            wrk(ngx.base, a.warmup, a.connections, a.threads,
                run + "/actions.lua")
            case = {}
            for what, url, script in (
                    ("return200", ngx.base + "/bench/return200", None),
                    ("actions", ngx.base, run + "/actions.lua")):
                c0, t0 = cpu_s(broker_pid), time.time()
                rps, p50, p99, errors = wrk(url, a.seconds, a.connections,
                                            a.threads, script)
                case[what] = {"rps": rps, "p50_ms": p50, "p99_ms": p99,
                              "errors": errors,
                              "broker_cores": round((cpu_s(broker_pid) - c0)
                                                    / (time.time() - t0), 2)}
            case["ratio"] = (case["actions"]["rps"]
                             / case["return200"]["rps"])
            results[name] = case
        finally:
            ngx.stop()
    return results


def median_cases(runs):
    """Per transport and field, the median over the runs' results."""
    def med(xs):
        xs = sorted(x for x in xs if x is not None)
        return xs[len(xs) // 2] if xs else None

    out = {}
    for name in runs[0]:
        out[name] = {"ratio": med([r[name]["ratio"] for r in runs]),
                     "ratios": [round(r[name]["ratio"], 3) for r in runs]}
        for what in ("return200", "actions"):
            out[name][what] = {k: med([r[name][what][k] for r in runs])
                               for k in runs[0][name][what]}
    return out


def post_paced(base, rate, seconds, users, items):
    """POSTs `rate` actions/s for `seconds` over one keep-alive connection.
    Returns the number answered 202."""
    host, port = base[len("http://"):].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    ok = 0
    n = int(rate * seconds)
    t0 = time.time()
    for k in range(n):
        delay = t0 + k / float(rate) - time.time()
        if delay > 0:
            time.sleep(delay)
        body = json.dumps({"user_id": "user-%06d" % (k % users),
                           "item_id": "item-%06d" % ((k * 7919) % items),
                           "action_type": "Click"})
        c.request("POST", "/actions", body,
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        ok += r.status == 202
    c.close()
    return ok


def kcat_records(brokers, topic, committed=False):
    """(partition, offset, Kafka timestamp ms, event_id) of every record."""
    cmd = ["kcat", "-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e",
           "-q", "-f", "%p %o %T %s\n"]
    if committed:
        cmd[1:1] = ["-X", "isolation.level=read_committed"]
    out = subprocess.run(cmd, check=True, capture_output=True,
                         text=True).stdout
    recs = []
    for line in out.split("\n"):
        if not line.strip():
            continue
        part, off, ts, value = line.split(" ", 3)
        try:
            ev = json.loads(value).get("event_id")
        except ValueError:
            ev = None
        recs.append((int(part), int(off), int(ts), ev))
    return recs


def caught_up(a, brokers, snaps, learn, accepted, via_features):
    """Whether the current snapshot holds every accepted action: its
    positions on the learned topic count the actions themselves, or, on
    the training topic, are past every committed example (whose offsets
    also count the transactions' commit markers) once all are there."""
    j = json.loads(subprocess.run(
        [a.worker, "inspect", snaps + "/current", "--json"],
        check=True, capture_output=True, text=True).stdout)
    pos = {p["partition"]: p["offset"] for p in j.get("positions", [])
           if p["stream"] == learn}
    if not via_features:
        return sum(pos.values()) >= accepted
    recs = kcat_records(brokers, learn, committed=True)
    last = {}
    for part, off, _, _ in recs:
        last[part] = max(last.get(part, -1), off)
    return (len(recs) >= accepted
            and all(pos.get(p, 0) > o for p, o in last.items()))


def freshness(a, run, brokers, env, via_features=False):
    """Accepted -> in a published snapshot, through the trainer alone or
    (via_features) through the feature worker and the training topic."""
    pfx = "ffresh" if via_features else "fresh"
    act, itm, exa = pfx + "_actions", pfx + "_items", pfx + "_examples"
    learn = exa if via_features else act      # the trainer's positions
    topics = {"MILVUSO_KAFKA_LOG_TOPIC": act,
              "MILVUSO_KAFKA_FEATURE_TOPIC": itm,
              "MILVUSO_KAFKA_TRAINING_TOPIC": exa,
              "MILVUSO_FEATURE_POPULARITY_TOPIC": pfx + "_counts"}
    tenv = dict(env, **topics)
    subprocess.run([a.worker, "topics"], check=True, env=tenv,
                   stdout=subprocess.DEVNULL)
    snaps = run + "/" + pfx + "-snaps"
    seed_snapshot(a.worker, snaps, a.items, a.dim, a.users)
    conf = run + "/" + pfx + ".toml"
    with open(conf, "w") as f:
        f.write("[recommendation]\nembedding_dim = %d\nmetric = \"cosine\"\n\n"
                "[kafka]\nenabled = true\nbrokers = \"%s\"\n"
                "log_topic = \"%s\"\nfeature_topic = \"%s\"\n"
                "training_topic = \"%s\"\ntrainer_input = \"%s\"\n"
                "group_id = \"bench-%s\"\n\n"
                "[feature]\ngroup_id = \"bench-%s-feature\"\n"
                "popularity_topic = \"%s_counts\"\n\n"
                "[worker]\naction_log = \"%s/unused\"\nsnapshot_dir = \"%s\"\n"
                "metrics_file = \"%s/%s.prom\"\nkeep_generations = 1000\n%s"
                % (a.dim, brokers, act, itm, exa,
                   "examples" if via_features else "actions", pfx, pfx, pfx,
                   run, snaps, run, pfx,
                   ("publish_interval = %g\n" % a.publish_interval)
                   if a.publish_interval else ""))
    log = open(run + "/" + pfx + "-worker.log", "w")
    procs = [subprocess.Popen([a.worker, "--config", conf, "--worker-type",
                               "trainer" if via_features else "all",
                               "--foreground"],
                              stdout=log, stderr=subprocess.STDOUT)]
    if via_features:
        procs.append(subprocess.Popen([a.worker, "--config", conf,
                                       "--worker-type", "feature",
                                       "--foreground"],
                                      stdout=log, stderr=subprocess.STDOUT))
    ngx = Nginx(a, run, pfx, "milvuso_kafka brokers=%s ack=on "
                "topic=%s items_topic=%s;" % (brokers, act, itm))
    try:
        time.sleep(3)                   # the workers join their groups
        accepted = post_paced(ngx.base, a.fresh_rate, a.fresh_seconds,
                              a.users, a.items)
        # until a snapshot holds everything (or a minute passed)
        deadline = time.time() + 60
        while time.time() < deadline and not caught_up(
                a, brokers, snaps, learn, accepted, via_features):
            time.sleep(0.5)
    finally:
        ngx.stop()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        log.close()

    # each snapshot: (created ms, {partition: next offset on learn})
    published = []
    for f in sorted(os.listdir(snaps)):
        if not (f.startswith("gen-") and f.endswith(".mvm")):
            continue
        j = json.loads(subprocess.run(
            [a.worker, "inspect", os.path.join(snaps, f), "--json"],
            check=True, capture_output=True, text=True).stdout)
        pos = {p["partition"]: p["offset"] for p in j.get("positions", [])
               if p["stream"] == learn}
        published.append((j["created_at_ms"], pos))
    published.sort(key=lambda x: x[0])
    # when nginx accepted each action (its Kafka timestamp), by event id;
    # where the trainer reads it: the action itself, or its example
    accepted_ms = {ev: ts for _, _, ts, ev in kcat_records(brokers, act)}
    lags = []
    unseen = 0
    for part, off, _, ev in kcat_records(brokers, learn, committed=True):
        if ev not in accepted_ms:
            continue
        for created, pos in published:
            if pos.get(part, 0) > off:
                lags.append((created - accepted_ms[ev]) / 1000.0)
                break
        else:
            unseen += 1
    return {"accepted": accepted, "records": len(lags) + unseen,
            "not_published": unseen, "snapshots": len(published),
            "publish_interval_s": a.publish_interval or 5.0,
            "p50_s": percentile(lags, 50) if lags else None,
            "p99_s": percentile(lags, 99) if lags else None,
            "max_s": max(lags) if lags else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--module", required=True)
    ap.add_argument("--worker", required=True)
    ap.add_argument("--items", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--port", type=int, default=18081)
    ap.add_argument("--kafka-port", type=int, default=19192)
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of the three transports; medians reported")
    ap.add_argument("--warmup", type=int, default=5,
                    help="seconds of unmeasured POSTs before each transport")
    ap.add_argument("--kafka-props", default="",
                    help="librdkafka properties added to milvuso_kafka "
                         "(e.g. linger.ms=20)")
    ap.add_argument("--fresh-rate", type=int, default=200)
    ap.add_argument("--fresh-seconds", type=int, default=30)
    ap.add_argument("--publish-interval", type=float, default=0,
                    help="the trainer's (0: its default)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    run = tempfile.mkdtemp(prefix="bench-kafka.")
    os.chmod(run, 0o755)
    brokers = "127.0.0.1:%d" % a.kafka_port
    env = dict(os.environ, MILVUSO_KAFKA_BROKERS=brokers)
    svc = run + "/services"
    try:
        os.makedirs(run + "/actions")
        if os.getuid() == 0:
            shutil.chown(run + "/actions", user="nobody")
        seed_snapshot(a.worker, run + "/seed", a.items, a.dim, a.users)
        os.chmod(run + "/seed", 0o755)
        with open(run + "/actions.lua", "w") as f:
            f.write(LUA_ACTIONS.format(users=a.users, items=a.items))
        t0 = time.time()
        services("start", svc, a.worker, env)
        start_s = time.time() - t0
        try:
            with open(svc + "/kafka/kafka.pid") as f:
                broker_pid = int(f.read())
            rss_idle = rss_mib(broker_pid)
            cases = median_cases([throughput(a, run, brokers, broker_pid)
                                  for _ in range(a.runs)])
            fresh = freshness(a, run, brokers, env)
            fresh_features = freshness(a, run, brokers, env, True)
            rss_after = rss_mib(broker_pid)
        finally:
            services("stop", svc, a.worker, env)
        report = {"items": a.items, "dim": a.dim, "users": a.users,
                  "connections": a.connections, "wrk_threads": a.threads,
                  "seconds": a.seconds, "nginx_workers": 2,
                  "broker_start_s": round(start_s, 1),
                  "broker_rss_mib": {"idle": rss_idle, "after": rss_after},
                  "throughput": cases, "freshness": fresh,
                  "freshness_via_features": fresh_features,
                  "targets": {"kafka-off_ratio": 0.5, "fresh_p99_s": 10.0}}
        if a.json:
            print(json.dumps(report, indent=1))
            return
        print("POST /actions by transport: %d items, d=%d, %d users; wrk "
              "-t%d -c%d -d%ds on loopback, nginx 2 workers; medians of %d "
              "runs" % (a.items, a.dim, a.users, a.threads, a.connections,
                        a.seconds, a.runs))
        print("%-10s %12s %12s %9s %9s %7s %7s %8s" %
              ("transport", "return200/s", "actions/s", "p50 ms", "p99 ms",
               "ratio", "errors", "broker"))
        for name, c in cases.items():
            print("%-10s %12.0f %12.0f %9.3f %9.3f %6.2fx %7d %5.2f cpu" %
                  (name, c["return200"]["rps"], c["actions"]["rps"],
                   c["actions"]["p50_ms"] or 0, c["actions"]["p99_ms"] or 0,
                   c["ratio"], c["actions"]["errors"],
                   c["actions"]["broker_cores"]))
        print("(broker: the cores the JVM broker used during the POSTs, on "
              "the same 2 cores as nginx and wrk)")
        print("ratios of each run: " + "; ".join(
            "%s %s" % (n, " ".join("%.2f" % x for x in c["ratios"]))
            for n, c in cases.items()))
        print()
        print("freshness (accepted -> in a published snapshot), %d actions/s "
              "for %d s, ack=on, publish interval %g s:"
              % (a.fresh_rate, a.fresh_seconds, fresh["publish_interval_s"]))
        for name, fr in (("trainer on user_actions", fresh),
                         ("via the feature worker", fresh_features)):
            print("  %-23s %d accepted, %d records, %d not published, %d "
                  "snapshots; p50 %.2f s, p99 %.2f s, max %.2f s"
                  % (name, fr["accepted"], fr["records"], fr["not_published"],
                     fr["snapshots"], fr["p50_s"] or -1, fr["p99_s"] or -1,
                     fr["max_s"] or -1))
        print("broker: started in %.1f s (JVM + KRaft format + topics); RSS "
              "%.0f MiB idle, %.0f MiB after the runs"
              % (start_s, rss_idle or -1, rss_after or -1))
    finally:
        if a.keep:
            print("run directory kept: " + run, file=sys.stderr)
        else:
            shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
