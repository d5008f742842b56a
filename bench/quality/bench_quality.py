#!/usr/bin/env python3
"""bench_quality.py -- offline quality of milvuso-worker's model against the
Python `implicit` library on the same splits, plus the trainer's throughput.

For each split seed (--seeds, default 42,1,2):

  1. runs `milvuso-worker eval --data FILE --config ml100k.toml --seed S
     --json --verbose --save-split TMP/seed-S` (per-user random 80/20 split;
     the model, popularity and random rows come from the C evaluator);
  2. loads TMP/seed-S/{train,test}.tsv, the very split the worker used, and
     measures with a NumPy implementation of the same protocol (eval.h,
     BASELINES.md): popularity, implicit's AlternatingLeastSquares and
     BayesianPersonalizedRanking (one thread each), and EASE (lambda 500)
     as a reference row;
  3. checks that the Python popularity row equals the worker's popularity
     row on every metric to 1e-6 (the worker prints 6 decimals), which shows
     the two metric implementations agree; any difference is fatal.

The report gives every model's P, R, NDCG, MAP, HR @K, coverage, diversity,
novelty and training seconds as mean +- sample sd over the seeds, the ratio
of milvuso's mean to each peer's on NDCG, P and R, and whether each target of
the issue holds on the mean over seeds:

  NDCG@10 >= 0.45, P@10 >= 0.37, R@10 >= 0.25, and >= implicit ALS and BPR.

Then the throughput: `milvuso-worker eval` at d = 64 latent coordinates plus
the item-bias coordinate (embedding_dim 65, the same shape as implicit BPR
with factors=64, which also stores 64 + 1 columns), 4 negatives, for every
loss x optimiser; the worker's "trained in X s (N updates/s)" line, median of
3 interleaved runs.  The trainer is single-threaded, so updates/s is per
core (the CPU-time / wall-time ratio of each run is recorded as a check).
The peer is implicit's BPR on one thread (num_threads=1 and
OPENBLAS/OMP threads 1): samples/s = nnz * iterations / fit seconds.

The script runs itself inside a virtual environment, build/bench-venv,
which it creates when missing (python3 -m venv, then pip installs the
pinned wheels below; Debian 12 needs the python3-venv package:
`make bench-quality` installs it, or `sudo apt-get install python3-venv`).

  python3 bench/quality/bench_quality.py --data ../shared/datasets/ml-100k/u.data \
      [--seeds 42,1,2] [--tune] [--json OUT] [--txt OUT] [--png OUT]
"""

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(REPO, "build", "bench-venv")

# Wheels for CPython 3.11 on x86-64 Linux (Debian 12's python3).
PINS = ["numpy==2.4.6", "scipy==1.17.1", "implicit==0.7.3",
        "matplotlib==3.10.8"]

# One thread for every numerical library, set before numpy is imported.
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}

# Issue targets, on the mean over seeds.
TARGETS = {"ndcg": 0.45, "precision": 0.37, "recall": 0.25}

# Peers' parameters, judged like ours on the mean NDCG@10 over seeds 42, 1,
# 2: ALS is the best of the earlier research grid (factors {32..256} x reg
# {0.01..10} x alpha {1,5,20}) and stays the best of ALS_GRID below; BPR is
# the best of BPR_GRID (`--tune` on ML-100K, 2026-11-24: NDCG 0.3504, against
# 0.3052 for the research grid's best, lr 0.01 / reg 0.05).
ALS_DEFAULT = {"factors": 32, "regularization": 10.0, "alpha": 1.0,
               "iterations": 15}
BPR_DEFAULT = {"factors": 64, "learning_rate": 0.005, "regularization": 0.003,
               "iterations": 100}
EASE_LAMBDA = 500.0

# --tune: small grids around those (ALS's regularization was at the edge).
ALS_GRID = {"factors": [16, 32, 64, 128], "regularization": [3.0, 10.0, 30.0,
            100.0], "alpha": [0.5, 1.0, 2.0], "iterations": [15]}
BPR_GRID = {"factors": [64, 128], "learning_rate": [0.0025, 0.005, 0.01],
            "regularization": [0.003, 0.01, 0.05], "iterations": [100, 300]}

METRICS = ["precision", "recall", "ndcg", "map", "hit_rate", "coverage",
           "diversity", "novelty"]
LABELS = {"precision": "P", "recall": "R", "ndcg": "NDCG", "map": "MAP",
          "hit_rate": "HR", "coverage": "cover", "diversity": "divers",
          "novelty": "novelty"}

LOSSES = ["logistic", "bpr", "softmax"]
OPTIMS = ["sgd", "adagrad", "adam"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- virtual environment ---------------------------------------------------

def in_venv(venv):
    return os.path.realpath(sys.prefix) == os.path.realpath(venv)


def ensure_venv(venv):
    """Creates/updates the venv (build/bench-venv) and re-runs this script
    in it."""
    py = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".bench-pins")
    want = "\n".join(PINS) + "\n"
    if not os.path.exists(py):
        log(f"bench_quality: creating {venv}")
        r = subprocess.run([sys.executable, "-m", "venv", venv])
        if r.returncode != 0 or not os.path.exists(
                os.path.join(venv, "bin", "pip")):
            shutil.rmtree(venv, ignore_errors=True)
            sys.exit("bench_quality: `python3 -m venv` failed; install the "
                     "venv module: sudo apt-get install python3-venv "
                     "python3-pip (or run `make bench-quality`, which does)")
    have = open(stamp).read() if os.path.exists(stamp) else ""
    if have != want:
        log(f"bench_quality: pip install {' '.join(PINS)}")
        r = subprocess.run([py, "-m", "pip", "install", "-q",
                            "--disable-pip-version-check",
                            "--only-binary=:all:"] + PINS)
        if r.returncode != 0:
            sys.exit("bench_quality: pip install failed (network? the pins "
                     "are wheels for CPython 3.11 on x86-64 Linux)")
        with open(stamp, "w") as f:
            f.write(want)
    env = dict(os.environ, **THREAD_ENV)
    os.execve(py, [py, os.path.abspath(__file__)] + sys.argv[1:], env)


# ---- data ------------------------------------------------------------------

def first_appearance(path, fmt):
    """The worker's id maps: dense indices in order of first appearance."""
    users, items = {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if fmt == "movielens":
                fl = line.split("\t") if "\t" in line else line.split("::")
            elif fmt == "tsv":
                fl = line.split("\t")
            elif fmt == "csv":
                fl = line.split(",")
                if not users and not items and fl[0].strip().lower() in (
                        "user", "user_id", "userid", "uid"):
                    continue
            else:
                raise SystemExit(f"bench_quality: --format {fmt} is not "
                                 "supported here (movielens, tsv, csv)")
            u, i = fl[0].strip(), fl[1].strip()
            users.setdefault(u, len(users))
            items.setdefault(i, len(items))
    return users, items


def load_split(d, users, items):
    import numpy as np

    def read(name):
        uu, ii = [], []
        with open(os.path.join(d, name), encoding="utf-8") as f:
            for line in f:
                fl = line.rstrip("\n").split("\t")
                if len(fl) < 2:
                    continue
                try:
                    uu.append(users[fl[0]])
                    ii.append(items[fl[1]])
                except KeyError as e:
                    raise SystemExit(f"bench_quality: {d}/{name}: id {e} is "
                                     "not in --data (wrong file?)")
        return np.array(uu, dtype=np.int64), np.array(ii, dtype=np.int64)

    tr = read("train.tsv")
    te = read("test.tsv")
    return tr, te


# ---- the protocol (worker/data/eval.h) --------------------------------------

class Evaluator:
    """P/R/NDCG/MAP/HR@k, coverage, diversity, novelty as eval.c does them:
    every item not in the user's train set is ranked (higher score first,
    equal scores by ascending item index), users with a test item only;
    diversity from the binary train item columns' cosine; novelty
    -log2(train users of i / n_users), 1 / n_users for unseen items."""

    def __init__(self, n_users, n_items, tr, te, k=10):
        import numpy as np
        import scipy.sparse as sp
        self.np = np
        self.k = k
        self.n_users, self.n_items = n_users, n_items
        ones = np.ones(len(tr[0]), dtype=np.float32)
        self.X = sp.csr_matrix((ones, tr), shape=(n_users, n_items))
        self.X.sum_duplicates()
        self.X.data[:] = 1.0
        T = sp.csr_matrix((np.ones(len(te[0]), dtype=np.float32), te),
                          shape=(n_users, n_items))
        T.sum_duplicates()
        T.data[:] = 1.0
        T = T - T.multiply(self.X)          # test items also in train
        T.eliminate_zeros()
        self.T = T.toarray() > 0
        self.ntest = self.T.sum(1)
        self.users = np.where(self.ntest > 0)[0]
        self.train_dense = self.X.toarray() > 0
        pop = np.asarray(self.X.sum(0)).ravel()
        self.pop = pop
        p = np.where(pop > 0, pop, 1.0) / n_users
        self.selfinfo = -np.log2(p)
        G = (self.X.T @ self.X).toarray().astype(np.float64)
        nrm = np.sqrt(np.outer(pop, pop))
        with np.errstate(divide="ignore", invalid="ignore"):
            C = np.where(nrm > 0, G / nrm, 0.0)
        self.cos = C
        kk = min(k, n_items)
        self.disc = 1.0 / np.log2(np.arange(kk) + 2.0)
        self.idcg = np.concatenate([[0.0], np.cumsum(self.disc)])

    def __call__(self, scores):
        np = self.np
        k = self.k
        S = np.asarray(scores, dtype=np.float32)[self.users]
        tr = self.train_dense[self.users]
        # Order by (class, -score, index): class 0 for a number, 1 for NaN,
        # 2 for a train item (never ranked); lexsort is stable, so equal
        # keys keep ascending item order.
        cls = np.where(tr, 2, np.where(np.isnan(S), 1, 0)).astype(np.int8)
        neg = np.where(cls == 0, -S.astype(np.float64), 0.0)
        order = np.lexsort((neg, cls), axis=-1)
        kk = min(k, self.n_items)
        top = order[:, :kk]
        cand = self.n_items - tr.sum(1)
        valid = np.arange(kk)[None, :] < np.minimum(cand, kk)[:, None]
        T = self.T[self.users]
        hits = np.take_along_axis(T, top, 1) & valid
        h = hits.sum(1)
        nt = self.ntest[self.users]
        ideal = np.minimum(nt, kk)
        dcg = (hits * self.disc[None, :]).sum(1)
        cum = np.cumsum(hits, 1)
        ap = (hits * cum / (np.arange(kk) + 1.0)[None, :]).sum(1)
        lens = valid.sum(1)
        nov = np.where(valid, self.selfinfo[top], 0.0).sum(1)
        nov = np.where(lens > 0, nov / np.maximum(lens, 1), 0.0)
        iu, ju = np.triu_indices(kk, 1)
        pv = valid[:, iu] & valid[:, ju]
        dv = np.where(pv, 1.0 - self.cos[top[:, iu], top[:, ju]], 0.0)
        npairs = lens * (lens - 1) / 2.0
        has = lens >= 2
        div = dv.sum(1)[has] / npairs[has]
        shown = np.unique(top[valid])
        n = len(self.users)
        return {
            "precision": float((h / k).sum() / n),
            "recall": float((h / nt).sum() / n),
            "ndcg": float((dcg / self.idcg[ideal]).sum() / n),
            "map": float((ap / ideal).sum() / n),
            "hit_rate": float((h > 0).sum() / n),
            "coverage": float(len(shown) / self.n_items),
            "diversity": float(div.sum() / has.sum()) if has.any() else 0.0,
            "novelty": float(nov.sum() / n),
        }


# ---- models ----------------------------------------------------------------

def fit_als(X, p, seed):
    import numpy as np
    from implicit.cpu.als import AlternatingLeastSquares
    m = AlternatingLeastSquares(factors=p["factors"],
                                regularization=p["regularization"],
                                alpha=p["alpha"], iterations=p["iterations"],
                                num_threads=1, random_state=seed,
                                calculate_training_loss=False)
    t = time.perf_counter()
    m.fit(X, show_progress=False)
    t = time.perf_counter() - t
    return np.asarray(m.user_factors) @ np.asarray(m.item_factors).T, t


def fit_bpr(X, p, seed):
    import numpy as np
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    m = BayesianPersonalizedRanking(factors=p["factors"],
                                    learning_rate=p["learning_rate"],
                                    regularization=p["regularization"],
                                    iterations=p["iterations"],
                                    num_threads=1, random_state=seed)
    t = time.perf_counter()
    m.fit(X, show_progress=False)
    t = time.perf_counter() - t
    return np.asarray(m.user_factors) @ np.asarray(m.item_factors).T, t


def fit_ease(X, lam):
    import numpy as np
    t = time.perf_counter()
    Xd = X.toarray().astype(np.float64)
    G = Xd.T @ Xd
    G[np.diag_indices_from(G)] += lam
    P = np.linalg.inv(G)
    B = -P / np.diag(P)
    B[np.diag_indices_from(B)] = 0.0
    S = Xd @ B
    return S, time.perf_counter() - t


# ---- the worker ------------------------------------------------------------

def run_worker(args, extra):
    """Runs the worker; returns (stdout, stderr, wall s, cpu s)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run([args.worker, "eval"] + extra, capture_output=True,
                       text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode != 0:
        raise SystemExit(f"bench_quality: {args.worker} eval "
                         f"{' '.join(extra)} failed ({p.returncode}):\n"
                         f"{p.stderr}")
    return p.stdout, p.stderr, wall, cpu


def worker_sets(args):
    out = []
    for s in args.set:
        out += ["--set", s]
    return out


def eval_seed(args, seed, tmp):
    d = os.path.join(tmp, f"seed-{seed}")
    extra = ["--data", args.data, "--format", args.format, "--config",
             args.config, "--seed", str(seed), "--k", str(args.k), "--json",
             "--verbose", "--save-split", d] + worker_sets(args)
    out, err, wall, cpu = run_worker(args, extra)
    res = json.loads(out)
    ep = re.findall(r"^epoch (\d+): loss \S+ \(([\d.]+) s\)", err, re.M)
    train_s = float(ep[-1][1]) if ep else None
    return res, train_s, wall, d


def agree(py, c, tol):
    bad = []
    for m in METRICS:
        if c.get(m) is None or abs(py[m] - c[m]) > tol:
            bad.append((m, py[m], c.get(m)))
    return bad


# ---- statistics and report -------------------------------------------------

def mean_sd(v):
    v = [x for x in v if x is not None]
    if not v:
        return None, None
    m = statistics.fmean(v)
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return m, sd


def fmt_ms(m, sd, nd=4):
    if m is None:
        return "-"
    return f"{m:.{nd}f}±{sd:.{nd}f}"


def grid(g):
    keys = list(g)

    def rec(i, cur):
        if i == len(keys):
            yield dict(cur)
            return
        for v in g[keys[i]]:
            cur[keys[i]] = v
            yield from rec(i + 1, cur)
    return list(rec(0, {}))


def tune(name, fit, g, splits, seeds):
    """Best grid point by mean NDCG over the seeds (same judge as ours)."""
    rows = []
    for p in grid(g):
        nd = []
        for s in seeds:
            ev, X = splits[s]
            S, _ = fit(X, p, s)
            nd.append(ev(S)["ndcg"])
        rows.append((statistics.fmean(nd), p))
        log(f"  tune {name} {json.dumps(p)}: NDCG {rows[-1][0]:.4f}")
    rows.sort(key=lambda r: -r[0])
    return rows


def throughput(args, splits, seeds):
    import numpy as np
    res = {}
    runs = {}
    nnz = None
    s0 = seeds[0]
    ev, X = splits[s0]
    nnz = X.nnz
    bp = {"factors": 64, "learning_rate": 0.01, "regularization": 0.01,
          "iterations": args.tp_epochs}
    for rep in range(args.tp_runs):
        for loss in LOSSES:
            for opt in OPTIMS:
                extra = ["--data", args.data, "--format", args.format,
                         "--config", args.config, "--seed", str(s0),
                         "--set", "recommendation.embedding_dim=65",
                         "--set", "training.item_bias=true",
                         "--set", "training.negative_sampling_ratio=4",
                         "--set", f"training.epochs={args.tp_epochs}",
                         "--set", f"training.loss={loss}",
                         "--set", f"training.optimizer={opt}",
                         "--set", "training.learning_rate=0.01"]
                if loss != "softmax":
                    extra += ["--set", "training.sampler_power=0"]
                out, _, wall, cpu = run_worker(args, extra)
                m = re.search(r"trained in ([\d.]+) s \((\d+) updates/s\)",
                              out)
                if not m:
                    raise SystemExit("bench_quality: no 'trained in' line:\n"
                                     + out)
                runs.setdefault(f"{loss}/{opt}", []).append(
                    {"train_s": float(m[1]), "updates_per_s": int(m[2]),
                     "cpu_over_wall": cpu / wall})
                log(f"  throughput {loss}/{opt} run {rep + 1}: "
                    f"{int(m[2]):,} updates/s")
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        mdl = BayesianPersonalizedRanking(
            factors=bp["factors"], learning_rate=bp["learning_rate"],
            regularization=bp["regularization"],
            iterations=bp["iterations"], num_threads=1, random_state=s0)
        c0 = time.process_time()
        t = time.perf_counter()
        mdl.fit(X, show_progress=False)
        t = time.perf_counter() - t
        c = time.process_time() - c0
        runs.setdefault("implicit-bpr", []).append(
            {"train_s": t, "updates_per_s": nnz * bp["iterations"] / t,
             "cpu_over_wall": c / t,
             "stored_columns": int(np.asarray(mdl.item_factors).shape[1])})
        log(f"  throughput implicit BPR run {rep + 1}: "
            f"{nnz * bp['iterations'] / t:,.0f} samples/s")
    for k, v in runs.items():
        res[k] = {"median_updates_per_s": statistics.median(
            r["updates_per_s"] for r in v), "runs": v}
    res["_setup"] = {"embedding_dim": 65, "latent": 64, "item_bias": True,
                     "negatives": 4, "epochs": args.tp_epochs,
                     "learning_rate": 0.01, "train_interactions": nnz,
                     "implicit_bpr": bp, "runs": args.tp_runs,
                     "split_seed": s0}
    return res


def plot(path, agg, order, names):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("bench_quality: no matplotlib, no PNG")
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (met, lab) in zip(axes, [("ndcg", "NDCG@10"),
                                     ("recall", "R@10")]):
        ms = [agg[m][met][0] for m in order]
        sds = [agg[m][met][1] for m in order]
        cols = ["tab:red" if m == "milvuso" else "tab:gray" for m in order]
        ax.bar(range(len(order)), ms, yerr=sds, capsize=4, color=cols)
        ax.axhline(TARGETS[met], color="k", ls="--", lw=1,
                   label=f"target {TARGETS[met]}")
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([names[m] for m in order], rotation=20,
                           ha="right", fontsize=8)
        ax.set_title(f"{lab}, mean ± sd over seeds")
        ax.set_ylim(0, max(max(ms), TARGETS[met]) * 1.12)
        for x, (m, sd) in enumerate(zip(ms, sds)):
            ax.text(x, m + sd + 0.004, f"{m:.4f}", ha="center",
                    va="bottom", fontsize=7)
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    log(f"bench_quality: wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(
        REPO, "..", "shared", "datasets", "ml-100k", "u.data"))
    ap.add_argument("--format", default="movielens")
    ap.add_argument("--worker", default=os.path.join(REPO, "build",
                                                     "milvuso-worker"))
    ap.add_argument("--config", default=os.path.join(HERE, "ml100k.toml"))
    ap.add_argument("--set", action="append", default=[],
                    metavar="KEY=VALUE", help="passed on to the worker")
    ap.add_argument("--seeds", default="42,1,2")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--tune", action="store_true",
                    help="grid-search implicit's ALS and BPR on these seeds")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--tp-epochs", type=int, default=20)
    ap.add_argument("--tp-runs", type=int, default=3)
    ap.add_argument("--venv", default=VENV,
                    help="virtual environment (created when missing)")
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--txt", metavar="OUT", help="also write the report here")
    ap.add_argument("--png", metavar="OUT")
    args = ap.parse_args()

    if not in_venv(args.venv):
        ensure_venv(args.venv)  # does not return
    for k, v in THREAD_ENV.items():
        os.environ.setdefault(k, v)

    import numpy as np
    import scipy
    import scipy.sparse as sp
    import implicit
    from importlib.metadata import version as pkg_version

    args.data = os.path.abspath(args.data)
    args.worker = os.path.abspath(args.worker)
    args.config = os.path.abspath(args.config)
    for f in (args.data, args.worker, args.config):
        if not os.path.exists(f):
            raise SystemExit(f"bench_quality: {f} not found"
                             + (" (make B=build worker)"
                                if f == args.worker else ""))
    seeds = [int(s) for s in args.seeds.split(",") if s]
    users, items = first_appearance(args.data, args.format)
    n_users, n_items = len(users), len(items)

    tmp = tempfile.mkdtemp(prefix="bench-quality-")
    per_seed = {}
    splits = {}
    try:
        for s in seeds:
            log(f"bench_quality: seed {s}: milvuso-worker eval ...")
            res, train_s, wall, d = eval_seed(args, s, tmp)
            if res["users"] == 0:
                raise SystemExit("bench_quality: no evaluated users")
            tr, te = load_split(d, users, items)
            ev = Evaluator(n_users, n_items, tr, te, args.k)
            if len(ev.users) != res["users"]:
                raise SystemExit(f"bench_quality: seed {s}: {len(ev.users)} "
                                 f"users in Python, {res['users']} in the "
                                 "worker")
            X = ev.X.astype(np.float32).tocsr()
            splits[s] = (ev, X)
            r = {"milvuso": dict(res["models"]["milvuso-mf"],
                                 train_s=train_s, eval_wall_s=wall),
                 "milvuso-popularity": res["models"]["popularity"],
                 "milvuso-random": res["models"]["random"]}
            popS = np.tile(ev.pop.astype(np.float32), (n_users, 1))
            r["popularity"] = dict(ev(popS), train_s=0.0)
            bad = agree(r["popularity"], r["milvuso-popularity"], 1e-6)
            if bad:
                msg = "\n".join(f"  {m}: python {a!r} worker {b!r}"
                                for m, a, b in bad)
                raise SystemExit(
                    "bench_quality: FAIL: the Python metrics disagree with "
                    f"the worker's popularity row on seed {s}:\n{msg}")
            r["popularity_check_max_abs_diff"] = max(
                abs(r["popularity"][m] - r["milvuso-popularity"][m])
                for m in METRICS)
            per_seed[s] = r
            log(f"  milvuso NDCG {res['models']['milvuso-mf']['ndcg']:.4f}; "
                "popularity rows agree")

        tuned = {}
        als_p, bpr_p = dict(ALS_DEFAULT), dict(BPR_DEFAULT)
        if args.tune:
            log("bench_quality: tuning implicit ALS and BPR ...")
            rows = tune("als", fit_als, ALS_GRID, splits, seeds)
            als_p = rows[0][1]
            tuned["als"] = [{"ndcg": n, "params": p} for n, p in rows[:5]]
            rows = tune("bpr", fit_bpr, BPR_GRID, splits, seeds)
            bpr_p = rows[0][1]
            tuned["bpr"] = [{"ndcg": n, "params": p} for n, p in rows[:5]]

        for s in seeds:
            ev, X = splits[s]
            log(f"bench_quality: seed {s}: implicit ALS, BPR, EASE ...")
            S, t = fit_als(X, als_p, s)
            per_seed[s]["implicit-als"] = dict(ev(S), train_s=t)
            S, t = fit_bpr(X, bpr_p, s)
            per_seed[s]["implicit-bpr"] = dict(ev(S), train_s=t)
            S, t = fit_ease(X, EASE_LAMBDA)
            per_seed[s]["ease"] = dict(ev(S), train_s=t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    order = ["milvuso", "implicit-als", "implicit-bpr", "ease",
             "popularity", "milvuso-random"]
    names = {"milvuso": "milvuso-mf",
             "implicit-als": "implicit ALS",
             "implicit-bpr": "implicit BPR",
             "ease": f"EASE λ={EASE_LAMBDA:g} (ref)",
             "popularity": "popularity",
             "milvuso-random": "random"}
    agg = {}
    for m in order:
        agg[m] = {}
        for met in METRICS + ["train_s"]:
            agg[m][met] = mean_sd([per_seed[s][m].get(met) for s in seeds])

    tp = None
    if not args.no_throughput:
        log("bench_quality: throughput ...")
        tp = throughput(args, splits, seeds)

    # ---- report ----
    L = []
    cfg_txt = os.path.relpath(args.config, REPO)
    L.append(f"Offline quality on {os.path.basename(args.data)} "
             f"({n_users} users, {n_items} items), per-user random 80/20 "
             f"split, K={args.k}, seeds {','.join(map(str, seeds))}; "
             "mean±sd (sample sd) over seeds")
    L.append(f"milvuso: {cfg_txt}" + (f" --set {' --set '.join(args.set)}"
                                      if args.set else ""))
    L.append(f"implicit {implicit.__version__} ALS {json.dumps(als_p)}")
    L.append(f"implicit {implicit.__version__} BPR {json.dumps(bpr_p)}")
    md = max(per_seed[s]["popularity_check_max_abs_diff"] for s in seeds)
    L.append("metric check: the Python popularity row equals the worker's "
             f"on every seed and metric (largest |diff| {md:.1e}, limit "
             "1e-6; the worker prints 6 decimals)")
    L.append("")
    w = max(len(n) for n in names.values())
    hdr = f"{'model':<{w}}"
    for met in METRICS:
        hdr += f" {LABELS[met] + ('@' + str(args.k) if met in ('precision', 'recall', 'ndcg', 'map', 'hit_rate') else ''):>15}"
    hdr += f" {'train s':>12}"
    L.append(hdr)
    for m in order:
        row = f"{names[m]:<{w}}"
        for met in METRICS:
            row += f" {fmt_ms(*agg[m][met], nd=3 if met == 'novelty' else 4):>15}"
        if m == "milvuso-random" or m == "popularity":
            row += f" {'-':>12}"
        else:
            row += f" {fmt_ms(*agg[m]['train_s'], nd=1 if m == 'milvuso' else 2):>12}"
        L.append(row)
    L.append("(milvuso's train s: the worker's own clock from --verbose, "
             "0.1 s resolution; peers: fit() on one thread)")
    L.append("")
    L.append("per seed (NDCG / P / R):")
    for s in seeds:
        L.append(f"  seed {s:>3}: " + "; ".join(
            f"{names[m].split(' (')[0]} {per_seed[s][m]['ndcg']:.4f} / "
            f"{per_seed[s][m]['precision']:.4f} / "
            f"{per_seed[s][m]['recall']:.4f}"
            for m in ("milvuso", "implicit-als", "implicit-bpr", "ease")))
    L.append("")
    L.append("ratio of milvuso's mean to the peer's mean:")
    ratios = {}
    for peer in ("implicit-als", "implicit-bpr", "ease"):
        ratios[peer] = {met: agg["milvuso"][met][0] / agg[peer][met][0]
                        for met in ("ndcg", "precision", "recall")}
        wins = {met: sum(per_seed[s]["milvuso"][met]
                         >= per_seed[s][peer][met] for s in seeds)
                for met in ("ndcg", "precision", "recall")}
        ratios[peer]["seeds_won"] = wins
        L.append(f"  vs {names[peer]:<{w}}  NDCG {ratios[peer]['ndcg']:.3f}x"
                 f"  P {ratios[peer]['precision']:.3f}x"
                 f"  R {ratios[peer]['recall']:.3f}x   (seeds where milvuso "
                 f">= peer: NDCG {wins['ndcg']}/{len(seeds)}, P "
                 f"{wins['precision']}/{len(seeds)}, R {wins['recall']}/"
                 f"{len(seeds)})")
    L.append("")
    L.append("targets (on the mean over seeds):")
    verdict = {}
    for met, lab in (("ndcg", "NDCG@10"), ("precision", "P@10"),
                     ("recall", "R@10")):
        m = agg["milvuso"][met][0]
        ok = m >= TARGETS[met]
        verdict[met] = {"target": TARGETS[met], "mean": m, "holds": ok}
        L.append(f"  {lab:<8} >= {TARGETS[met]:.2f}: {m:.4f}  "
                 f"{'HOLDS' if ok else 'MISSED by %.4f' % (TARGETS[met] - m)}")
    for peer in ("implicit-als", "implicit-bpr"):
        ok = all(agg["milvuso"][met][0] >= agg[peer][met][0]
                 for met in ("ndcg", "precision", "recall"))
        verdict[f">= {peer}"] = {"holds": ok}
        L.append(f"  >= {names[peer]} on NDCG, P and R: "
                 f"{'HOLDS' if ok else 'DOES NOT HOLD'}")
    L.append("  (reference, not a target: EASE λ=500 above)")

    if tp is not None:
        st = tp["_setup"]
        L.append("")
        L.append(f"Training throughput: d = {st['latent']} latent + item bias "
                 f"(embedding_dim {st['embedding_dim']}), {st['negatives']} "
                 f"negatives, {st['epochs']} epochs over the "
                 f"{st['train_interactions']:,} training interactions of seed "
                 f"{st['split_seed']}, lr {st['learning_rate']}; median of "
                 f"{st['runs']} interleaved runs; one thread")
        L.append("updates/s = positive examples per second (each with its "
                 "4 negatives); per core, as the trainer is single-threaded")
        bpr_rate = tp["implicit-bpr"]["median_updates_per_s"]
        L.append(f"implicit BPR (factors 64 = 64 latent + its bias column, "
                 f"1 negative per sample, num_threads=1): {bpr_rate:,.0f} "
                 "samples/s")
        L.append("ratio A = updates/s / implicit BPR samples/s; ratio B = "
                 "item rows scored and updated per second (ours 1 + 4 per "
                 "update, BPR's 1 + 1 per sample)")
        L.append(f"{'loss':<9} {'optimiser':<9} {'updates/s':>11} "
                 f"{'ratio A':>8} {'ratio B':>8} {'min..max of runs':>23}")
        for loss in LOSSES:
            for o in OPTIMS:
                e = tp[f"{loss}/{o}"]
                v = e["median_updates_per_s"]
                rs = [r["updates_per_s"] for r in e["runs"]]
                ra, rb = v / bpr_rate, v * 5 / (bpr_rate * 2)
                e["ratio_updates"] = ra
                e["ratio_item_rows"] = rb
                L.append(f"{loss:<9} {o:<9} {v:>11,.0f} {ra:>7.2f}x "
                         f"{rb:>7.2f}x {min(rs):>11,.0f}..{max(rs):>10,.0f}")
        cw = max(r["cpu_over_wall"] for k, v in tp.items() if k != "_setup"
                 for r in v["runs"] if k != "implicit-bpr")
        L.append(f"(largest CPU/wall ratio of a worker run: {cw:.2f}; the "
                 "wall clock includes the evaluation after training)")

    report = "\n".join(L) + "\n"
    sys.stdout.write(report)
    if args.txt:
        with open(args.txt, "w") as f:
            f.write(report)
    if args.json:
        try:
            cpu = next(l.split(":", 1)[1].strip()
                       for l in open("/proc/cpuinfo")
                       if l.startswith("model name"))
        except (OSError, StopIteration):
            cpu = platform.processor()
        out = {
            "data": args.data, "format": args.format, "k": args.k,
            "seeds": seeds, "users": n_users, "items": n_items,
            "config": os.path.relpath(args.config, REPO),
            "config_text": open(args.config).read(), "set": args.set,
            "implicit_als": als_p, "implicit_bpr": bpr_p,
            "ease_lambda": EASE_LAMBDA, "tuning": tuned,
            "per_seed": {str(s): per_seed[s] for s in seeds},
            "mean_sd": {m: {met: list(v) for met, v in agg[m].items()}
                        for m in order},
            "ratios": ratios, "targets": verdict, "throughput": tp,
            "versions": {"python": platform.python_version(),
                         "numpy": np.__version__, "scipy": scipy.__version__,
                         "implicit": implicit.__version__,
                         "matplotlib": _version(pkg_version, "matplotlib")},
            "machine": {"cpu": cpu, "nproc": os.cpu_count(),
                        "loadavg": os.getloadavg()},
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
    if args.png:
        plot(args.png, agg, ["milvuso", "implicit-als", "implicit-bpr",
                             "ease", "popularity"], names)
    return 0


def _version(fn, name):
    try:
        return fn(name)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
