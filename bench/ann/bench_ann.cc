// bench_ann -- recall@10 vs QPS of Milvuso's HNSW against hnswlib and FAISS
// (IndexHNSWFlat) on the same data, graph parameters and query protocol.
// See README.md in this directory for what is measured and how.

#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <faiss/IndexHNSW.h>
#include <faiss/MetricType.h>
#include <hnswlib/hnswlib.h>

#include "exact.h"
#include "hnsw.h"
#include "mv_common.h"
#include "synth.h"
#include "vec.h"

namespace {

constexpr size_t kK = 10;      // recall@10

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

[[noreturn]] void die(const std::string &msg) {
    std::fprintf(stderr, "bench_ann: %s\n", msg.c_str());
    std::exit(1);
}

// ---- options ----------------------------------------------------------------

struct Options {
    size_t n = 200000;
    size_t dim = 64;
    size_t queries = 10000;
    size_t clusters = 1000;
    float spread = 1.1f;
    std::string fvecs;
    std::string query_fvecs;
    mv_metric_t metric = MV_METRIC_COSINE;
    uint32_t M = 16;
    uint32_t ef_construction = 200;
    std::vector<size_t> efs = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256};
    unsigned threads = 1;
    size_t runs = 5;           // timed passes over the queries per ef
    std::vector<std::string> libs = {"milvuso", "hnswlib", "faiss"};
    bool json = false;
    bool sq8 = true;
    bool reorder = false;
    std::string out = "bench/results";
    std::string plot_script;   // gnuplot script; empty: no PNG
    uint64_t seed = 42;
};

void usage() {
    std::fputs(
        "usage: bench_ann [options]\n"
        "  --n N                 base vectors (synthetic; default 200000)\n"
        "  --dim D               dimension (synthetic; default 64)\n"
        "  --queries Q           queries (default 10000)\n"
        "  --clusters C          synthetic cluster count (default 1000)\n"
        "  --spread S            synthetic cluster spread (default 1.1)\n"
        "  --fvecs FILE          base vectors from an .fvecs file\n"
        "  --query-fvecs FILE    queries from an .fvecs file (else the last Q\n"
        "                        base vectors are held out as queries)\n"
        "  --metric cosine|l2|ip (default cosine; ip: maximum inner product,\n"
        "                        synthetic base norms spread 0.25x..4x)\n"
        "  --M M                 graph degree (default 16)\n"
        "  --ef-construction E   (default 200)\n"
        "  --ef LIST             search ef sweep, comma separated\n"
        "  --threads T           search threads (default 1)\n"
        "  --runs R              timed passes per ef, interleaved across the\n"
        "                        libraries; QPS is their median (default 5)\n"
        "  --libs LIST           milvuso,hnswlib,faiss (default all)\n"
        "  --milvuso-no-sq8      build Milvuso's index without SQ8 codes\n"
        "  --milvuso-reorder     renumber Milvuso's nodes in graph order\n"
        "                        (mv_hnsw_reorder) before searching\n"
        "  --json                print one JSON object on stdout (and write it)\n"
        "  --out DIR             results folder (default bench/results)\n"
        "  --plot-script FILE    gnuplot script for the PNG (default: built in)\n"
        "  --seed S              data / graph seed (default 42)\n",
        stderr);
}

std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

size_t parse_size(const std::string &s, const char *what) {
    char *end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno != 0 || s[0] == '-')
        die(std::string("bad value for ") + what + ": '" + s + "'");
    return static_cast<size_t>(v);
}

Options parse_args(int argc, char **argv) {
    Options o;
#ifdef BENCH_PLOT_SCRIPT
    o.plot_script = BENCH_PLOT_SCRIPT;
#endif
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value after " + a);
            return argv[++i];
        };
        if (a == "--n") o.n = parse_size(val(), "--n");
        else if (a == "--dim") o.dim = parse_size(val(), "--dim");
        else if (a == "--queries") o.queries = parse_size(val(), "--queries");
        else if (a == "--clusters") o.clusters = parse_size(val(), "--clusters");
        else if (a == "--spread") {
            std::string v = val();
            o.spread = std::strtof(v.c_str(), nullptr);
            if (!(o.spread >= 0.0f)) die("bad --spread");
        }
        else if (a == "--fvecs") o.fvecs = val();
        else if (a == "--query-fvecs") o.query_fvecs = val();
        else if (a == "--metric") {
            std::string v = val();
            if (v == "cosine") o.metric = MV_METRIC_COSINE;
            else if (v == "l2") o.metric = MV_METRIC_L2;
            else if (v == "ip") o.metric = MV_METRIC_IP;
            else die("--metric must be cosine, l2 or ip");
        }
        else if (a == "--M") o.M = static_cast<uint32_t>(parse_size(val(), "--M"));
        else if (a == "--ef-construction")
            o.ef_construction = static_cast<uint32_t>(parse_size(val(), "--ef-construction"));
        else if (a == "--ef") {
            o.efs.clear();
            for (auto &e : split(val(), ',')) o.efs.push_back(parse_size(e, "--ef"));
        }
        else if (a == "--threads") o.threads = static_cast<unsigned>(parse_size(val(), "--threads"));
        else if (a == "--runs") o.runs = parse_size(val(), "--runs");
        else if (a == "--libs") {
            o.libs.clear();
            for (auto &l : split(val(), ','))
                if (std::find(o.libs.begin(), o.libs.end(), l) == o.libs.end())
                    o.libs.push_back(l);
        }
        else if (a == "--milvuso-no-sq8") o.sq8 = false;
        else if (a == "--milvuso-reorder") o.reorder = true;
        else if (a == "--json") o.json = true;
        else if (a == "--out") o.out = val();
        else if (a == "--plot-script") o.plot_script = val();
        else if (a == "--seed") o.seed = parse_size(val(), "--seed");
        else if (a == "-h" || a == "--help") { usage(); std::exit(0); }
        else { usage(); die("unknown option " + a); }
    }
    if (o.efs.empty()) die("--ef needs at least one value");
    for (size_t ef : o.efs)
        if (ef < 1) die("--ef values must be >= 1");
    if (o.threads < 1) die("--threads must be >= 1");
    if (o.runs < 1 || o.runs > 99) die("--runs must be in 1..99");
    if (o.M < 2 || o.M > MV_HNSW_MAX_M) die("--M must be in 2..64");
    if (o.queries < 1) die("--queries must be >= 1");
    if (o.libs.empty()) die("--libs needs at least one library");
    for (auto &l : o.libs)
        if (l != "milvuso" && l != "hnswlib" && l != "faiss")
            die("unknown library '" + l + "' in --libs");
    return o;
}

// ---- data ---------------------------------------------------------------------

struct Dataset {
    std::string name;          // "synthetic-clustered" or the file name
    size_t n = 0, dim = 0, nq = 0;
    std::vector<float> base;   // n x dim (normalised for cosine)
    std::vector<float> queries;
    std::vector<uint32_t> truth;   // nq x kK
};

std::vector<float> read_fvecs(const std::string &path, size_t *dim_out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) die("cannot open " + path);
    std::vector<float> out;
    size_t dim = 0;
    for (;;) {
        int32_t d;
        if (!f.read(reinterpret_cast<char *>(&d), sizeof d)) break;
        if (d <= 0 || d > 65536) die(path + ": bad dimension record");
        if (dim == 0) dim = static_cast<size_t>(d);
        else if (static_cast<size_t>(d) != dim) die(path + ": mixed dimensions");
        size_t at = out.size();
        out.resize(at + dim);
        if (!f.read(reinterpret_cast<char *>(out.data() + at),
                    static_cast<std::streamsize>(dim * sizeof(float))))
            die(path + ": truncated vector");
    }
    if (dim == 0) die(path + ": no vectors");
    *dim_out = dim;
    return out;
}

Dataset make_dataset(const Options &o) {
    Dataset ds;
    if (!o.fvecs.empty()) {
        size_t dim;
        ds.base = read_fvecs(o.fvecs, &dim);
        ds.dim = dim;
        size_t total = ds.base.size() / dim;
        ds.name = o.fvecs.substr(o.fvecs.find_last_of('/') + 1);
        if (!o.query_fvecs.empty()) {
            size_t qdim;
            ds.queries = read_fvecs(o.query_fvecs, &qdim);
            if (qdim != dim) die("query and base dimensions differ");
            ds.nq = std::min(o.queries, ds.queries.size() / dim);
            ds.queries.resize(ds.nq * dim);
            ds.n = total;
        } else {
            if (total <= o.queries) die("--fvecs holds too few vectors to hold out queries");
            ds.nq = o.queries;
            ds.n = total - ds.nq;
            ds.queries.assign(ds.base.begin() + static_cast<std::ptrdiff_t>(ds.n * dim),
                              ds.base.end());
            ds.base.resize(ds.n * dim);
        }
        ds.base.shrink_to_fit();
    } else {
        ds.name = "synthetic-clustered";
        ds.n = o.n;
        ds.dim = o.dim;
        ds.nq = o.queries;
        if (ds.n == 0 || ds.dim == 0) die("--n and --dim must be positive");
        ds.base.resize(ds.n * ds.dim);
        ds.queries.resize(ds.nq * ds.dim);
        // The same centres (the centres are drawn first from the seed), so
        // the queries come from the same distribution: generate base and
        // queries together from one seed, then split.  A different seed for
        // the queries would draw different centres.
        std::vector<float> all((ds.n + ds.nq) * ds.dim);
        mv_synth_clustered(all.data(), ds.n + ds.nq, ds.dim, o.clusters, o.spread,
                           o.seed, nullptr);
        std::copy(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(ds.n * ds.dim),
                  ds.base.begin());
        std::copy(all.begin() + static_cast<std::ptrdiff_t>(ds.n * ds.dim), all.end(),
                  ds.queries.begin());
        // Inner product: base norms spread log-uniformly over 0.25x..4x, as
        // item norms spread with popularity in a matrix factorisation (the
        // clustered points alone have nearly equal norms).
        if (o.metric == MV_METRIC_IP) {
            mv_rng_t rng;
            mv_rng_seed(&rng, o.seed + 1);
            for (size_t i = 0; i < ds.n; i++) {
                float s = static_cast<float>(std::exp2(4.0 * mv_rng_uniform(&rng) - 2.0));
                for (size_t j = 0; j < ds.dim; j++) ds.base[i * ds.dim + j] *= s;
            }
        }
    }
    if (ds.n > UINT32_MAX - 1) die("too many base vectors");
    if (o.metric == MV_METRIC_COSINE) {
        for (size_t i = 0; i < ds.n; i++) mv_normalize(&ds.base[i * ds.dim], ds.dim);
        for (size_t i = 0; i < ds.nq; i++) mv_normalize(&ds.queries[i * ds.dim], ds.dim);
    }
    return ds;
}

// ---- memory ------------------------------------------------------------------

size_t heap_in_use() {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

// ---- libraries ---------------------------------------------------------------

// One index under test.  build() runs single-threaded; search() may be called
// from several threads at once, each with its own thread slot.
class AnnLib {
public:
    virtual ~AnnLib() = default;
    virtual const char *name() const = 0;
    virtual void build(const Dataset &ds) = 0;
    // Called before a sweep point, from the main thread.
    virtual void prepare(size_t ef, unsigned threads) = 0;
    // Writes up to kK ids into out (UINT32_MAX pads).
    virtual void search(unsigned slot, const float *q, uint32_t *out) = 0;
    virtual size_t own_memory() const { return 0; }   // 0: not reported
};

class MilvusoLib : public AnnLib {
public:
    MilvusoLib(const Options &o) : o_(o) {}
    ~MilvusoLib() override {
        for (auto *s : scratch_) mv_hnsw_scratch_free(s);
        if (h_) mv_hnsw_free(h_);
    }
    const char *name() const override { return "milvuso"; }
    void build(const Dataset &ds) override {
        mv_hnsw_params_t p{};
        p.dim = static_cast<uint32_t>(ds.dim);
        p.metric = o_.metric;
        p.M = o_.M;
        p.ef_construction = o_.ef_construction;
        p.seed = o_.seed;
        p.sq8 = o_.sq8 ? 1 : 0;
        mv_err_t err{};
        h_ = mv_hnsw_new(&p, ds.n, &err);
        if (!h_) die(std::string("mv_hnsw_new: ") + err.msg);
        if (mv_hnsw_add_batch(h_, ds.base.data(), ds.n, &err) != MV_OK)
            die(std::string("mv_hnsw_add_batch: ") + err.msg);
        // With --milvuso-reorder the nodes are renumbered in graph order and
        // the old ids kept to answer in the dataset's numbering (hnswlib
        // keeps its labels the same way).
        label_.resize(ds.n);
        if (o_.reorder) {
            if (mv_hnsw_reorder(h_, label_.data(), &err) != MV_OK)
                die(std::string("mv_hnsw_reorder: ") + err.msg);
        } else {
            for (size_t i = 0; i < ds.n; i++) label_[i] = static_cast<uint32_t>(i);
        }
        mv_hnsw_graph(h_, &g_);
        kern_ = mv_kernels_best();
        n_ = ds.n;
        dim_ = ds.dim;
    }
    void prepare(size_t ef, unsigned threads) override {
        ef_ = ef;
        while (scratch_.size() < threads) {
            mv_hnsw_scratch_t *s = mv_hnsw_scratch_new(n_, dim_, ef);
            if (!s) die("mv_hnsw_scratch_new failed");
            scratch_.push_back(s);
        }
        for (auto *s : scratch_)
            if (mv_hnsw_scratch_reserve(s, n_, dim_, std::max(ef, kK)) != MV_OK)
                die("mv_hnsw_scratch_reserve failed");
    }
    void search(unsigned slot, const float *q, uint32_t *out) override {
        mv_hit_t hits[kK];
        size_t got = mv_hnsw_search(&g_, kern_, scratch_[slot], q, kK, ef_, nullptr, hits);
        for (size_t i = 0; i < kK; i++) out[i] = i < got ? label_[hits[i].id] : UINT32_MAX;
    }
    size_t own_memory() const override {
        return mv_hnsw_memory(h_) + label_.size() * sizeof(uint32_t);
    }

private:
    const Options &o_;
    mv_hnsw_t *h_ = nullptr;
    mv_hnsw_graph_t g_{};
    const mv_kernels_t *kern_ = nullptr;
    std::vector<mv_hnsw_scratch_t *> scratch_;
    std::vector<uint32_t> label_;
    size_t n_ = 0, dim_ = 0, ef_ = kK;
};

class HnswlibLib : public AnnLib {
public:
    HnswlibLib(const Options &o) : o_(o) {}
    const char *name() const override { return "hnswlib"; }
    void build(const Dataset &ds) override {
        // hnswlib's 'ip' space serves both: cosine data is normalised here
        if (o_.metric == MV_METRIC_COSINE || o_.metric == MV_METRIC_IP)
            space_ = std::make_unique<hnswlib::InnerProductSpace>(ds.dim);
        else
            space_ = std::make_unique<hnswlib::L2Space>(ds.dim);
        index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(
            space_.get(), ds.n, o_.M, o_.ef_construction, o_.seed);
        for (size_t i = 0; i < ds.n; i++)
            index_->addPoint(&ds.base[i * ds.dim], static_cast<hnswlib::labeltype>(i));
    }
    void prepare(size_t ef, unsigned) override { index_->setEf(ef); }
    void search(unsigned, const float *q, uint32_t *out) override {
        auto pq = index_->searchKnn(q, kK);
        // The queue pops the worst first.
        size_t got = pq.size();
        for (size_t i = got; i < kK; i++) out[i] = UINT32_MAX;
        while (!pq.empty()) {
            out[--got] = static_cast<uint32_t>(pq.top().second);
            pq.pop();
        }
    }

private:
    const Options &o_;
    std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
};

class FaissLib : public AnnLib {
public:
    FaissLib(const Options &o) : o_(o) {}
    const char *name() const override { return "faiss"; }
    void build(const Dataset &ds) override {
        omp_set_num_threads(1);
        index_ = std::make_unique<faiss::IndexHNSWFlat>(
            static_cast<int>(ds.dim), static_cast<int>(o_.M),
            o_.metric == MV_METRIC_L2 ? faiss::METRIC_L2
                                      : faiss::METRIC_INNER_PRODUCT);
        index_->hnsw.efConstruction = static_cast<int>(o_.ef_construction);
        index_->add(static_cast<faiss::Index::idx_t>(ds.n), ds.base.data());
    }
    void prepare(size_t ef, unsigned) override {
        // FAISS 1.7.3 reads efSearch partly from the parameters and partly
        // from the index: set both.
        params_.efSearch = static_cast<int>(ef);
        index_->hnsw.efSearch = static_cast<int>(ef);
    }
    void search(unsigned, const float *q, uint32_t *out) override {
        // Each search thread runs FAISS's OpenMP regions with one thread.
        thread_local bool omp_set = false;
        if (!omp_set) { omp_set_num_threads(1); omp_set = true; }
        float d[kK];
        faiss::Index::idx_t l[kK];
        index_->search(1, q, static_cast<faiss::Index::idx_t>(kK), d, l, &params_);
        for (size_t i = 0; i < kK; i++)
            out[i] = l[i] < 0 ? UINT32_MAX : static_cast<uint32_t>(l[i]);
    }

private:
    const Options &o_;
    std::unique_ptr<faiss::IndexHNSWFlat> index_;
    faiss::SearchParametersHNSW params_;
};

// ---- measurement -------------------------------------------------------------

struct Point {
    size_t ef;
    double recall;
    double qps;                 // median over the passes
    double qps_lo, qps_hi;      // slowest and fastest pass
    double pass_ratio = NAN;    // milvuso only: median over the passes of
                                // hnswlib's time / ours in the same pass
    std::vector<double> pass_qps;   // each pass's QPS, in run order
};

struct LibResult {
    std::string name;
    double build_seconds = 0;
    double bytes_per_item = 0;
    double own_bytes_per_item = 0;   // mv_hnsw_memory / n (ours only)
    std::vector<Point> points;
};

// Runs every query once over `threads` threads; returns the wall time.
double run_queries(AnnLib &lib, const Dataset &ds, unsigned threads,
                   std::vector<uint32_t> &found) {
    auto work = [&](unsigned slot, size_t q0, size_t q1) {
        for (size_t q = q0; q < q1; q++)
            lib.search(slot, &ds.queries[q * ds.dim], &found[q * kK]);
    };
    auto t0 = Clock::now();
    if (threads == 1) {
        work(0, 0, ds.nq);
    } else {
        std::vector<std::thread> pool;
        size_t per = (ds.nq + threads - 1) / threads;
        for (unsigned t = 0; t < threads; t++) {
            size_t q0 = std::min(ds.nq, t * per), q1 = std::min(ds.nq, q0 + per);
            pool.emplace_back(work, t, q0, q1);
        }
        for (auto &th : pool) th.join();
    }
    return seconds_since(t0);
}

double recall_at_k(const Dataset &ds, const std::vector<uint32_t> &found) {
    double sum = 0;
    for (size_t q = 0; q < ds.nq; q++) {
        const uint32_t *t = &ds.truth[q * kK];
        const uint32_t *f = &found[q * kK];
        size_t hit = 0;
        for (size_t i = 0; i < kK; i++) {
            if (f[i] == UINT32_MAX) continue;
            for (size_t j = 0; j < kK; j++)
                if (f[i] == t[j]) { hit++; break; }
        }
        sum += static_cast<double>(hit) / kK;
    }
    return sum / static_cast<double>(ds.nq);
}

// Builds one library's index (single-threaded) and records build time and
// heap growth.  Earlier indexes stay alive, which does not disturb the delta.
LibResult build_lib(AnnLib &lib, const Dataset &ds, const Options &o) {
    LibResult r;
    r.name = lib.name();
    std::fprintf(stderr, "[%s] building (M=%u, ef_construction=%u, 1 thread)...\n",
                 lib.name(), o.M, o.ef_construction);
    size_t before = heap_in_use();
    auto t0 = Clock::now();
    lib.build(ds);
    r.build_seconds = seconds_since(t0);
    size_t after = heap_in_use();
    r.bytes_per_item = after > before
        ? static_cast<double>(after - before) / static_cast<double>(ds.n) : 0.0;
    r.own_bytes_per_item = static_cast<double>(lib.own_memory()) / static_cast<double>(ds.n);
    std::fprintf(stderr, "[%s] built in %.2f s, %.1f bytes/item\n",
                 lib.name(), r.build_seconds, r.bytes_per_item);
    return r;
}

// The ef sweep.  For each ef the timed passes are interleaved across the
// libraries (pass 1 of each, then pass 2 of each, ...), so a burst of load
// from elsewhere on the machine hits all of them alike rather than one.
void sweep(std::vector<std::unique_ptr<AnnLib>> &libs, std::vector<LibResult> &results,
           const Dataset &ds, const Options &o) {
    std::vector<uint32_t> found(ds.nq * kK);
    const size_t runs = o.runs;
    int mi = -1, hi = -1;
    for (size_t i = 0; i < libs.size(); i++) {
        if (std::strcmp(libs[i]->name(), "milvuso") == 0) mi = static_cast<int>(i);
        if (std::strcmp(libs[i]->name(), "hnswlib") == 0) hi = static_cast<int>(i);
    }
    for (size_t ef : o.efs) {
        std::vector<std::vector<double>> times(libs.size());
        std::vector<double> recall(libs.size());
        for (auto &lib : libs) lib->prepare(ef, o.threads);
        for (size_t run = 0; run < runs; run++) {
            for (size_t i = 0; i < libs.size(); i++) {
                times[i].push_back(run_queries(*libs[i], ds, o.threads, found));
                if (run == 0) recall[i] = recall_at_k(ds, found);
            }
        }
        // Milvuso against hnswlib pass by pass: the two ran seconds apart,
        // so a pass ratio is less exposed to the machine's swings than a
        // ratio of medians taken over the whole sweep point.
        double pass_ratio = NAN;
        if (mi >= 0 && hi >= 0) {
            std::vector<double> r;
            for (size_t run = 0; run < runs; run++)
                r.push_back(times[hi][run] / times[mi][run]);
            std::sort(r.begin(), r.end());
            pass_ratio = r[runs / 2];
        }
        for (size_t i = 0; i < libs.size(); i++) {
            Point p;
            for (double t : times[i]) p.pass_qps.push_back(static_cast<double>(ds.nq) / t);
            std::sort(times[i].begin(), times[i].end());
            p.ef = ef;
            p.recall = recall[i];
            p.qps = static_cast<double>(ds.nq) / times[i][runs / 2];
            p.qps_lo = static_cast<double>(ds.nq) / times[i].back();
            p.qps_hi = static_cast<double>(ds.nq) / times[i].front();
            if (static_cast<int>(i) == mi) p.pass_ratio = pass_ratio;
            results[i].points.push_back(p);
            std::fprintf(stderr, "[%s] ef=%zu recall@10=%.4f qps=%.0f (%.0f..%.0f)\n",
                         libs[i]->name(), ef, p.recall, p.qps, p.qps_lo, p.qps_hi);
        }
    }
}

// QPS at a target recall, interpolated linearly in (recall, log QPS) between
// the two sweep points that bracket it.  The curve is first made monotone in
// recall: points are taken in ef order and a point whose recall does not
// exceed every earlier one is dropped.  Returns NaN when the library never
// reaches the target; when even the smallest ef is above the target, the QPS
// of that point (a lower bound) is returned.
double qps_at_recall(const LibResult &r, double target) {
    std::vector<Point> pts = r.points;
    std::sort(pts.begin(), pts.end(), [](const Point &a, const Point &b) { return a.ef < b.ef; });
    std::vector<Point> mono;
    for (auto &p : pts)
        if (mono.empty() || p.recall > mono.back().recall) mono.push_back(p);
    if (mono.empty() || mono.back().recall < target) return NAN;
    if (mono.front().recall >= target) return mono.front().qps;
    for (size_t i = 1; i < mono.size(); i++) {
        if (mono[i].recall >= target) {
            const Point &a = mono[i - 1], &b = mono[i];
            double t = (target - a.recall) / (b.recall - a.recall);
            return std::exp(std::log(a.qps) + t * (std::log(b.qps) - std::log(a.qps)));
        }
    }
    return NAN;
}

// ---- output ------------------------------------------------------------------

std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            auto c = line.find(':');
            if (c != std::string::npos) {
                std::string v = line.substr(c + 1);
                v.erase(0, v.find_first_not_of(" \t"));
                return v;
            }
        }
    }
    return "unknown";
}

std::string json_str(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') { out += '\\'; out += c; }
        else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else out += c;
    }
    return out + "\"";
}

std::string json_num(double v, int prec = 6) {
    if (!std::isfinite(v)) return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    return buf;
}

const LibResult *find_lib(const std::vector<LibResult> &rs, const char *name) {
    for (auto &r : rs)
        if (r.name == name) return &r;
    return nullptr;
}

struct Ratios {
    double qps[3] = {NAN, NAN, NAN};
    double pass_qps[3] = {NAN, NAN, NAN};
    double build = NAN, memory = NAN;
};

const double kTargets[3] = {0.90, 0.95, 0.99};

// The same library with each point's QPS taken from pass `pass` alone.
LibResult one_pass(const LibResult &r, size_t pass) {
    LibResult o = r;
    for (auto &p : o.points) p.qps = p.pass_qps.at(pass);
    return o;
}

// The QPS ratio at a target recall computed pass by pass (each library's
// curve from the same pass, whose timings were taken seconds apart), then
// the median over the passes: less exposed to the machine's swings than
// the ratio of the two median curves.
double pass_matched_ratio(const LibResult &m, const LibResult &h, double target) {
    size_t runs = m.points.empty() ? 0 : m.points[0].pass_qps.size();
    std::vector<double> r;
    for (size_t p = 0; p < runs; p++) {
        double x = qps_at_recall(one_pass(m, p), target) / qps_at_recall(one_pass(h, p), target);
        if (std::isnan(x)) return NAN;
        r.push_back(x);
    }
    if (r.empty()) return NAN;
    std::sort(r.begin(), r.end());
    return r[r.size() / 2];
}

Ratios ratios_vs_hnswlib(const std::vector<LibResult> &rs) {
    Ratios r;
    const LibResult *m = find_lib(rs, "milvuso"), *h = find_lib(rs, "hnswlib");
    if (!m || !h) return r;
    for (int i = 0; i < 3; i++) {
        r.qps[i] = qps_at_recall(*m, kTargets[i]) / qps_at_recall(*h, kTargets[i]);
        r.pass_qps[i] = pass_matched_ratio(*m, *h, kTargets[i]);
    }
    r.build = m->build_seconds / h->build_seconds;
    r.memory = m->bytes_per_item / h->bytes_per_item;
    return r;
}

std::string make_json(const Dataset &ds, const Options &o, const std::vector<LibResult> &rs) {
    std::ostringstream j;
    j << "{\"dataset\":{\"name\":" << json_str(ds.name) << ",\"n\":" << ds.n
      << ",\"dim\":" << ds.dim << ",\"queries\":" << ds.nq
      << ",\"metric\":" << json_str(mv_metric_name(o.metric));
    if (o.fvecs.empty())
        j << ",\"clusters\":" << o.clusters << ",\"spread\":" << json_num(o.spread)
          << ",\"seed\":" << o.seed;
    j << ",\"k\":" << kK << ",\"M\":" << o.M << ",\"ef_construction\":" << o.ef_construction
      << ",\"search_threads\":" << o.threads << ",\"runs\":" << o.runs << "}";
    j << ",\"machine\":{\"cpu\":" << json_str(cpu_model())
      << ",\"cores\":" << std::thread::hardware_concurrency()
      << ",\"kernels\":" << json_str(mv_kernels_best()->name) << "}";
    j << ",\"libraries\":{";
    for (size_t i = 0; i < rs.size(); i++) {
        const LibResult &r = rs[i];
        j << (i ? "," : "") << json_str(r.name) << ":{\"build_seconds\":"
          << json_num(r.build_seconds) << ",\"bytes_per_item\":" << json_num(r.bytes_per_item);
        if (r.name == "milvuso")
            j << ",\"index_bytes_per_item\":" << json_num(r.own_bytes_per_item)
              << ",\"sq8\":" << (o.sq8 ? "true" : "false")
              << ",\"reorder\":" << (o.reorder ? "true" : "false");
        j << ",\"points\":[";
        for (size_t p = 0; p < r.points.size(); p++)
            j << (p ? "," : "") << "{\"ef\":" << r.points[p].ef
              << ",\"recall_at_10\":" << json_num(r.points[p].recall)
              << ",\"qps\":" << json_num(r.points[p].qps)
              << ",\"qps_min\":" << json_num(r.points[p].qps_lo)
              << ",\"qps_max\":" << json_num(r.points[p].qps_hi)
              << (r.name == "milvuso" ? ",\"pass_ratio_vs_hnswlib\":" + json_num(r.points[p].pass_ratio)
                                      : std::string())
              << "}";
        j << "]}";
    }
    j << "}";
    Ratios ra = ratios_vs_hnswlib(rs);
    j << ",\"ratios_vs_hnswlib\":{\"qps_at_recall_0.90\":" << json_num(ra.qps[0])
      << ",\"qps_at_recall_0.95\":" << json_num(ra.qps[1])
      << ",\"qps_at_recall_0.99\":" << json_num(ra.qps[2])
      << ",\"pass_matched_qps_at_recall_0.90\":" << json_num(ra.pass_qps[0])
      << ",\"pass_matched_qps_at_recall_0.95\":" << json_num(ra.pass_qps[1])
      << ",\"pass_matched_qps_at_recall_0.99\":" << json_num(ra.pass_qps[2])
      << ",\"build_time\":" << json_num(ra.build)
      << ",\"memory\":" << json_num(ra.memory) << "}}";
    return j.str();
}

void print_table(FILE *f, const Dataset &ds, const Options &o, const std::vector<LibResult> &rs) {
    std::fprintf(f, "dataset %s: n=%zu dim=%zu queries=%zu metric=%s M=%u efC=%u "
                 "threads=%u kernels=%s\n\n",
                 ds.name.c_str(), ds.n, ds.dim, ds.nq,
                 mv_metric_name(o.metric), o.M, o.ef_construction,
                 o.threads, mv_kernels_best()->name);
    std::fprintf(f, "QPS: median of %zu passes (slowest..fastest); pass ratio: median of\n"
                 "hnswlib's time / Milvuso's in the same pass\n\n", o.runs);
    std::fprintf(f, "%-9s %6s %10s %11s %17s %9s %11s\n", "library", "ef", "recall@10", "QPS",
                 "range", "us/query", "pass ratio");
    for (auto &r : rs)
        for (auto &p : r.points) {
            char range[40];
            std::snprintf(range, sizeof range, "%.0f..%.0f", p.qps_lo, p.qps_hi);
            std::fprintf(f, "%-9s %6zu %10.4f %11.0f %17s %9.1f", r.name.c_str(), p.ef,
                         p.recall, p.qps, range, 1e6 * o.threads / p.qps);
            if (!std::isnan(p.pass_ratio)) std::fprintf(f, " %10.2fx", p.pass_ratio);
            std::fputc('\n', f);
        }
    std::fprintf(f, "\n%-9s %9s %12s\n", "library", "build s", "bytes/item");
    for (auto &r : rs) {
        std::fprintf(f, "%-9s %9.2f %12.1f", r.name.c_str(), r.build_seconds, r.bytes_per_item);
        if (r.name == "milvuso")
            std::fprintf(f, "   (mv_hnsw_memory: %.1f bytes/item, sq8=%s)",
                         r.own_bytes_per_item, o.sq8 ? "on" : "off");
        std::fputc('\n', f);
    }
    for (double t : kTargets) {
        std::fprintf(f, "%s", t == kTargets[0] ? "\nQPS at recall@10 target:\n" : "");
        std::fprintf(f, "  %.2f:", t);
        for (auto &r : rs) {
            double q = qps_at_recall(r, t);
            if (std::isnan(q)) std::fprintf(f, "  %s never reaches it", r.name.c_str());
            else std::fprintf(f, "  %s %.0f", r.name.c_str(), q);
        }
        std::fputc('\n', f);
    }
    if (find_lib(rs, "milvuso") && find_lib(rs, "hnswlib")) {
        Ratios ra = ratios_vs_hnswlib(rs);
        std::fprintf(f, "\nmilvuso / hnswlib:\n");
        for (int i = 0; i < 3; i++) {
            if (std::isnan(ra.qps[i]))
                std::fprintf(f, "  QPS at recall %.2f: null (not reached by both)\n", kTargets[i]);
            else
                std::fprintf(f, "  QPS at recall %.2f: %.2fx (pass-matched: %.2fx)\n",
                             kTargets[i], ra.qps[i], ra.pass_qps[i]);
        }
        std::fprintf(f, "  build time: %.2fx\n  memory (heap bytes/item): %.2fx\n",
                     ra.build, ra.memory);
    }
}

void write_file(const std::string &path, const std::string &text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f || !(f << text)) die("cannot write " + path);
}

std::string shell_quote(const std::string &s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

}  // namespace

int main(int argc, char **argv) {
    Options o = parse_args(argc, argv);
    omp_set_num_threads(1);   // FAISS build: one thread, like the others

    std::fprintf(stderr, "generating data...\n");
    Dataset ds = make_dataset(o);

    std::fprintf(stderr, "ground truth (exact top-%zu of %zu queries)...\n", kK, ds.nq);
    ds.truth.resize(ds.nq * kK);
    {
        mv_err_t err{};
        auto t0 = Clock::now();
        if (mv_exact_topk(ds.base.data(), ds.n, ds.dim, o.metric, ds.queries.data(), ds.nq,
                          kK, ds.truth.data(), nullptr, &err) != MV_OK)
            die(std::string("mv_exact_topk: ") + err.msg);
        std::fprintf(stderr, "ground truth in %.2f s\n", seconds_since(t0));
    }

    std::vector<std::unique_ptr<AnnLib>> libs;
    std::vector<LibResult> results;
    for (auto &name : o.libs) {
        if (name == "milvuso") libs.push_back(std::make_unique<MilvusoLib>(o));
        else if (name == "hnswlib") libs.push_back(std::make_unique<HnswlibLib>(o));
        else libs.push_back(std::make_unique<FaissLib>(o));
        results.push_back(build_lib(*libs.back(), ds, o));
    }
    sweep(libs, results, ds, o);
    libs.clear();

    // Files: CSV, JSON (when asked), PNG.
    std::string stem = o.out + "/ann-" + std::to_string(ds.n) + "x" + std::to_string(ds.dim);
    if (std::system(("mkdir -p " + shell_quote(o.out)).c_str()) != 0)
        die("cannot create " + o.out);
    {
        std::ostringstream csv;
        csv << "library,ef,recall,qps\n";
        for (auto &r : results)
            for (auto &p : r.points)
                csv << r.name << "," << p.ef << "," << json_num(p.recall) << ","
                    << json_num(p.qps) << "\n";
        write_file(stem + ".csv", csv.str());
    }
    std::string json = make_json(ds, o, results);
    if (o.json) write_file(stem + ".json", json + "\n");
    if (!o.plot_script.empty()) {
        std::string libs;
        for (auto &r : results) libs += (libs.empty() ? "" : " ") + r.name;
        std::string title = ds.name + " " + std::to_string(ds.n) + "x" + std::to_string(ds.dim) +
                            " " + mv_metric_name(o.metric) +
                            ", M=" + std::to_string(o.M) + ", efC=" +
                            std::to_string(o.ef_construction) + ", " +
                            std::to_string(o.threads) + " thread(s)";
        std::string cmd = "gnuplot -e " +
            shell_quote("csv='" + stem + ".csv'; png='" + stem + ".png'; libs='" + libs +
                        "'; plottitle='" + title + "'") +
            " " + shell_quote(o.plot_script) + " 1>&2";
        if (std::system(cmd.c_str()) != 0)
            std::fprintf(stderr, "bench_ann: gnuplot failed; no PNG written\n");
    }

    if (o.json) {
        print_table(stderr, ds, o, results);   // for people; stdout is JSON only
        std::printf("%s\n", json.c_str());
    } else {
        print_table(stdout, ds, o, results);
        std::printf("\nwrote %s.csv%s\n", stem.c_str(),
                    o.plot_script.empty() ? "" : (" and " + stem + ".png").c_str());
    }
    return 0;
}
