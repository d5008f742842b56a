# Milvuso -- top-level build.
#
#   make test        install missing apt packages, build everything, run every
#                    suite (unit tests, unit tests under ASan/UBSan, the
#                    worker's command-line and daemon checks, the real
#                    Kafka broker's checks and the trainer on it (the
#                    broker started and stopped by the suite), Test::Nginx,
#                    valgrind, fuzz smoke run)
#   make fuzz        run each libFuzzer target for FUZZ_SECONDS (default 600)
#   make bench-ann   ANN benchmark against hnswlib and FAISS (bench/ann)
#   make bench-validate  snapshot map + validation time at 1M items
#   make bench-publish   a generation publish (changed users + items) vs a
#                    full snapshot per publish, at 10k/100k/1M users
#   make bench-quality   the trainer on MovieLens-100K against implicit's
#                    ALS and BPR, and its updates/s (bench/quality)
#
# Build output goes to build/ (release), build-asan/ (sanitizers) and
# build-fuzz/ (clang + libFuzzer).  Tests are discovered, not listed: every
# shared/tests/test_*.c and worker/tests/test_*.c is a cmocka program.

SHELL      := /bin/bash
CC         ?= cc
CXX        ?= c++
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian bookworm packages each part needs (installed when missing).
APT_BUILD  := build-essential pkg-config libcmocka-dev libopenblas-dev \
              libcjson-dev librdkafka-dev
APT_FUZZ   := clang libclang-rt-14-dev
APT_BENCH  := libhnswlib-dev libfaiss-dev gnuplot-nox
APT_NGINX  := nginx nginx-dev libcjson-dev librdkafka-dev
APT_SERVICES := openjdk-17-jre-headless maven kcat jq

# The flags libmilvuso must be clean under: ours, plus nginx's own set.
WARN       := -Wall -Wextra -Werror -Wpointer-arith -Wshadow \
              -Wstrict-prototypes -Wmissing-prototypes
CFLAGS_STD := -std=c11 -D_GNU_SOURCE
OPT        ?= -O2 -g
CFLAGS     := $(CFLAGS_STD) $(OPT) $(WARN) -fPIC -Ishared
SAN        := -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=all
LDLIBS     := -lcjson -lopenblas -lm -lpthread
# The worker (its Kafka source) also links librdkafka; libmilvuso does not.
RDKAFKA_CFLAGS := $(shell pkg-config --cflags rdkafka 2>/dev/null)
RDKAFKA_LIBS   := $(shell pkg-config --libs rdkafka 2>/dev/null || echo -lrdkafka)
WLDLIBS    := $(RDKAFKA_LIBS) $(LDLIBS)

LIB_SRC    := $(wildcard shared/*.c)
LIB_HDR    := $(wildcard shared/*.h)
TEST_SRC   := $(wildcard shared/tests/test_*.c)
# The worker's sources sit in folders that follow the data (worker/worker.h
# has the map); tests and fuzz targets are built by their own rules.
WORKER_ALL := $(filter-out worker/tests/% worker/fuzz/%, \
                $(wildcard worker/*.c worker/*/*.c))
WORKER_SRC := $(filter-out worker/cli/main.c,$(WORKER_ALL))
WORKER_HDR := $(filter-out worker/tests/% worker/fuzz/%, \
                $(wildcard worker/*.h worker/*/*.h))
WTEST_SRC  := $(wildcard worker/tests/test_*.c)
FUZZ_SRC   := $(wildcard shared/fuzz/fuzz_*.c) $(wildcard worker/fuzz/fuzz_*.c)

# $(call objs,BUILD_DIR,SOURCES)
objs = $(patsubst %.c,$(1)/obj/%.o,$(2))

.PHONY: all deps deps-fuzz deps-bench deps-nginx lib worker module run stop \
        run-check bench-kafka bench-ingest nginx-kafka-valgrind services services-stop services-check services-suites \
        kafka-check nginx-kafka-test unit \
        unit-asan unit-scalar worker-check nginx-test nginx-valgrind test fuzz \
        fuzz-smoke \
        fuzz-corpus bench-ann bench-http bench-validate bench-publish bench-quality \
        clean

all: lib worker

deps:
	@./.ci/apt-ensure $(APT_BUILD)

deps-fuzz:
	@./.ci/apt-ensure $(APT_FUZZ)

deps-bench:
	@./.ci/apt-ensure $(APT_BENCH)

deps-nginx:
	@./.ci/apt-ensure $(APT_NGINX)
	@./.ci/install-test-nginx

# ---- library, worker, tests: one set of rules per build flavour ----------

define FLAVOUR
$(1)/obj/%.o: %.c $(LIB_HDR)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $(2) -c $$< -o $$@

# Worker sources include each other's headers by folder ("model/mf.h").
$(1)/obj/worker/%.o: worker/%.c $(LIB_HDR) $(WORKER_HDR)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $(2) -Iworker $$(RDKAFKA_CFLAGS) -c $$< -o $$@

$(1)/libmilvuso.a: $(call objs,$(1),$(LIB_SRC))
	@rm -f $$@
	ar rcs $$@ $$^

$(1)/milvuso-worker: $(call objs,$(1),$(WORKER_ALL)) $(1)/libmilvuso.a
	$$(CC) $(2) -o $$@ $$(filter %.o,$$^) $(1)/libmilvuso.a $$(WLDLIBS)

$(1)/tests/%: shared/tests/%.c $(1)/libmilvuso.a $(LIB_HDR)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $(2) -o $$@ $$< $(1)/libmilvuso.a -lcmocka $$(LDLIBS)

$(1)/wtests/%: worker/tests/%.c $(call objs,$(1),$(WORKER_SRC)) $(1)/libmilvuso.a \
                $(wildcard worker/tests/*.h) \
                $(WORKER_HDR)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $(2) -Iworker $$(RDKAFKA_CFLAGS) -o $$@ $$< \
	    $(call objs,$(1),$(WORKER_SRC)) $(1)/libmilvuso.a -lcmocka $$(WLDLIBS)
endef

# B names the release build folder (helpers and parallel checkouts may point
# it elsewhere); the sanitizer flavour lives beside it.
B          ?= build
$(eval $(call FLAVOUR,$(B),))
$(eval $(call FLAVOUR,$(B)-asan,$(SAN)))

TESTS      := $(patsubst shared/tests/%.c,%,$(TEST_SRC))
WTESTS     := $(patsubst worker/tests/%.c,%,$(WTEST_SRC))

lib: $(B)/libmilvuso.a
worker: $(B)/milvuso-worker

# Runs every cmocka program of a flavour; fails if any fails.
# $(call run_tests,BUILD_DIR,ENV)
define run_tests
	@fail=0; for t in $(addprefix $(1)/tests/,$(TESTS)) \
	                  $(addprefix $(1)/wtests/,$(WTESTS)); do \
	    echo "== $$t"; $(2) $$t || fail=1; \
	done; exit $$fail
endef

unit: deps $(addprefix $(B)/tests/,$(TESTS)) $(addprefix $(B)/wtests/,$(WTESTS))
	$(call run_tests,$(B),)

# The same suites with the portable kernels forced (CI machines differ).
unit-scalar: deps $(addprefix $(B)/tests/,$(TESTS)) $(addprefix $(B)/wtests/,$(WTESTS))
	$(call run_tests,$(B),MILVUSO_KERNELS=scalar)

unit-asan: deps $(addprefix $(B)-asan/tests/,$(TESTS)) $(addprefix $(B)-asan/wtests/,$(WTESTS))
	$(call run_tests,$(B)-asan,ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1)

# check-retention appends with worker/tests/actlog_tool.c (a helper built
# by the wtests rule; not a test_* program, so `unit` does not run it).
worker-check: deps $(B)/milvuso-worker $(B)/wtests/actlog_tool
	./worker/tests/check-cli.sh $(B)/milvuso-worker
	./worker/tests/check-daemon.sh $(B)/milvuso-worker
	./worker/tests/check-retention.sh $(B)/milvuso-worker $(B)/wtests/actlog_tool

# ---- the nginx module ------------------------------------------------------
#
# Built against Debian's nginx: its source tree (package nginx-dev) is copied
# to $(B)/nginx, configured once with --with-compat and this directory as a
# dynamic module, and `make -f objs/Makefile modules` builds the .so that
# /usr/sbin/nginx loads with load_module.

NGX_SRC    ?= /usr/share/nginx/src
NGX_BUILD  := $(B)/nginx
MODULE_SO  := $(NGX_BUILD)/objs/ngx_http_milvuso_module.so
MODULE_SRC := config $(wildcard ngx_milvuso_module/*.c ngx_milvuso_module/*.h) \
              $(LIB_SRC) $(LIB_HDR)

# config globs its sources: ./configure runs again when the set of files
# changes (the list file is rewritten only when its content differs).
MODULE_FILES := $(sort $(wildcard ngx_milvuso_module/*.c \
                  ngx_milvuso_module/*.h) $(LIB_SRC) $(LIB_HDR))
# --with-threads: Debian's nginx has thread pools; the module appends to a
# synced action log from one (ngx_milvuso_actlog.c).
NGX_CONFIGURE := --with-compat --with-threads

$(B)/module-files.list: FORCE
	@mkdir -p $(@D)
	@echo '$(NGX_CONFIGURE) $(MODULE_FILES)' | cmp -s - $@ 2>/dev/null \
	    || echo '$(NGX_CONFIGURE) $(MODULE_FILES)' > $@

FORCE:

$(NGX_BUILD)/objs/Makefile: config $(B)/module-files.list | deps-nginx
	rm -rf $(NGX_BUILD)
	mkdir -p $(dir $(NGX_BUILD))
	cp -r $(NGX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && ./configure $(NGX_CONFIGURE) \
	    --add-dynamic-module=$(CURDIR) >configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }

$(MODULE_SO): $(NGX_BUILD)/objs/Makefile $(MODULE_SRC)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules

module: $(MODULE_SO)

# The embedded default: nginx with the module on a seeded synthetic model,
# in the foreground (Ctrl-C stops it).  LISTEN=host:port moves it.
LISTEN     ?= 127.0.0.1:8080
run: deps $(MODULE_SO) $(B)/milvuso-worker
	./conf/run.sh $(MODULE_SO) $(B)/milvuso-worker $(B)/run $(LISTEN)

# Stops what `make run` started (for scripts that run it in the
# background): SIGTERM to run.sh, which stops nginx and the worker (the
# worker publishes pending work first).  Nothing running is not an error.
stop:
	./conf/run.sh --stop $(B)/run

# make run in the background, one request, make stop: the processes are gone.
run-check: deps $(MODULE_SO) $(B)/milvuso-worker
	./t/run-stop.sh $(MAKE) $(B) 127.0.0.1:18089

# The real servers on 127.0.0.1 (conf/services.sh): today Apache Kafka,
# its jars cached outside the checkout ($$MILVUSO_CACHE, ~/.cache/milvuso),
# topics from conf/milvuso.toml's [kafka] (MILVUSO_CONFIG=FILE for another).
MILVUSO_CONFIG ?= conf/milvuso.toml
SERVICES_RUN   := $(B)/services

services: deps $(B)/milvuso-worker
	@./.ci/apt-ensure $(APT_SERVICES)
	./conf/services.sh start --run $(SERVICES_RUN) \
	    --worker $(B)/milvuso-worker --config $(MILVUSO_CONFIG)

services-stop:
	./conf/services.sh stop --run $(SERVICES_RUN)

# Start, check (topics, a record through), stop, nothing left.
services-check: deps $(B)/milvuso-worker
	@./.ci/apt-ensure $(APT_SERVICES)
	./conf/services.sh check --run $(B)/services-check \
	    --worker $(B)/milvuso-worker --config $(MILVUSO_CONFIG)

# The trainer on a real broker (worker/tests/check-kafka.sh), then the
# feature worker and the trainer on its examples (check-feature.sh), then
# the drain of the action log into Kafka (check-drain.sh; its broker-down
# block stops and restarts the broker of SERVICES_RUN): one must answer at
# KAFKA_BROKERS (`make services` starts one there).
KAFKA_BROKERS ?= 127.0.0.1:9092
kafka-check: deps $(B)/milvuso-worker $(B)/wtests/actlog_tool
	@./.ci/apt-ensure kcat jq
	@status=0; \
	MILVUSO_KAFKA_BROKERS=$(KAFKA_BROKERS) \
	    ./worker/tests/check-kafka.sh $(B)/milvuso-worker || status=1; \
	MILVUSO_KAFKA_BROKERS=$(KAFKA_BROKERS) \
	    ./worker/tests/check-feature.sh $(B)/milvuso-worker || status=1; \
	MILVUSO_KAFKA_BROKERS=$(KAFKA_BROKERS) \
	MILVUSO_SERVICES_RUN=$(abspath $(SERVICES_RUN)) \
	    ./worker/tests/check-drain.sh $(B)/milvuso-worker \
	        $(B)/wtests/actlog_tool || status=1; \
	exit $$status

# The suites that need the real servers (today: kafka-check, and the
# Test::Nginx suites of t/kafka: nginx's producer, the whole pipeline), against
# servers started once for all of them and stopped afterwards, also when a
# suite fails.  Something else answering on the brokers' port stops it.
services-suites: deps deps-nginx $(MODULE_SO) $(B)/milvuso-worker
	@./.ci/apt-ensure $(APT_SERVICES)
	./conf/services.sh start --run $(B)/services-suites \
	    --worker $(B)/milvuso-worker --config $(MILVUSO_CONFIG)
	@status=0; \
	$(MAKE) kafka-check SERVICES_RUN=$(B)/services-suites || status=1; \
	$(MAKE) nginx-kafka-test SERVICES_RUN=$(B)/services-suites || status=1; \
	$(MAKE) nginx-kafka-valgrind || status=1; \
	./conf/services.sh stop --run $(B)/services-suites || status=1; \
	exit $$status

# Test::Nginx suites against Debian's nginx with the module loaded: t/*.t
# need no server; t/kafka/ needs the broker (services-suites runs it).
nginx-test: deps-nginx $(MODULE_SO) $(B)/milvuso-worker
	TEST_NGINX_BINARY=/usr/sbin/nginx \
	TEST_NGINX_MILVUSO_MODULE=$(abspath $(MODULE_SO)) \
	TEST_NGINX_MILVUSO_WORKER=$(abspath $(B)/milvuso-worker) \
	    prove t

nginx-kafka-test: deps-nginx $(MODULE_SO) $(B)/milvuso-worker
	@./.ci/apt-ensure kcat
	MILVUSO_KAFKA_BROKERS=$(KAFKA_BROKERS) \
	MILVUSO_SERVICES_RUN=$(abspath $(SERVICES_RUN)) \
	TEST_NGINX_BINARY=/usr/sbin/nginx \
	TEST_NGINX_MILVUSO_MODULE=$(abspath $(MODULE_SO)) \
	TEST_NGINX_MILVUSO_WORKER=$(abspath $(B)/milvuso-worker) \
	    prove -r t/kafka

# A subset of the suites with nginx under valgrind memcheck: any valgrind
# report (invalid access, uninitialised use, definite leak not in
# t/valgrind.suppress) fails the target.
VALGRIND_SUITES ?= t/020-actions.t t/030-items.t t/040-recommend.t
# --keep-debuginfo: nginx unloads the module and its libraries before the
# leak report; without it their frames are ??? and no suppression matches.
VALGRIND_OPTS := --tool=memcheck --leak-check=full --keep-debuginfo=yes \
    --show-possibly-lost=no --num-callers=50 --error-exitcode=0 \
    --suppressions=$(CURDIR)/t/valgrind.suppress
# $(call valgrind_verdict,LOG,SUITES): fails, showing them, when LOG holds
# valgrind reports.
valgrind_verdict = if grep -qE '^==[0-9]+== ' $(1); then \
    grep -E '^==[0-9]+== ' $(1) | head -60; \
    echo "valgrind reported errors (full log: $(1))"; exit 1; \
    fi; echo "valgrind: no errors in $(2)"

nginx-valgrind: deps-nginx $(MODULE_SO) $(B)/milvuso-worker
	@./.ci/apt-ensure valgrind
	@mkdir -p $(B)
	TEST_NGINX_BINARY=/usr/sbin/nginx \
	TEST_NGINX_MILVUSO_MODULE=$(abspath $(MODULE_SO)) \
	TEST_NGINX_MILVUSO_WORKER=$(abspath $(B)/milvuso-worker) \
	TEST_NGINX_USE_VALGRIND="$(VALGRIND_OPTS)" \
	    prove $(VALGRIND_SUITES) 2>$(B)/valgrind.log
	@$(call valgrind_verdict,$(B)/valgrind.log,$(VALGRIND_SUITES))

# The producer and the pipeline under valgrind, against the broker at
# KAFKA_BROKERS (services-suites runs it).
VALGRIND_KAFKA_SUITES := t/kafka/010-producer.t t/kafka/020-pipeline.t
nginx-kafka-valgrind: deps-nginx $(MODULE_SO) $(B)/milvuso-worker
	@./.ci/apt-ensure valgrind kcat
	@mkdir -p $(B)
	MILVUSO_KAFKA_BROKERS=$(KAFKA_BROKERS) \
	TEST_NGINX_BINARY=/usr/sbin/nginx \
	TEST_NGINX_MILVUSO_MODULE=$(abspath $(MODULE_SO)) \
	TEST_NGINX_MILVUSO_WORKER=$(abspath $(B)/milvuso-worker) \
	TEST_NGINX_USE_VALGRIND="$(VALGRIND_OPTS)" \
	    prove $(VALGRIND_KAFKA_SUITES) 2>$(B)/valgrind-kafka.log
	@$(call valgrind_verdict,$(B)/valgrind-kafka.log,$(VALGRIND_KAFKA_SUITES))

# ---- fuzzing (clang + libFuzzer) ------------------------------------------

FUZZ_CC     := clang
FUZZ_CFLAGS := $(CFLAGS_STD) -O1 -g $(WARN) -Wno-unused-command-line-argument \
               -Ishared -fsanitize=fuzzer,address,undefined
FUZZ_BINS   := $(patsubst %.c,build-fuzz/%,$(notdir $(FUZZ_SRC)))
FUZZ_SECONDS ?= 600

# A target in worker/fuzz may use the worker's sources (not its main).
build-fuzz/%: shared/fuzz/%.c $(LIB_SRC) $(LIB_HDR) | deps-fuzz
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(LDLIBS)

build-fuzz/%: worker/fuzz/%.c $(LIB_SRC) $(LIB_HDR) $(WORKER_SRC) $(WORKER_HDR) \
              | deps-fuzz
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Iworker $(RDKAFKA_CFLAGS) -o $@ $< $(LIB_SRC) \
	    $(WORKER_SRC) $(WLDLIBS)

# Each target runs FUZZ_SECONDS from its seed corpus ({shared,worker}/fuzz/corpus/NAME,
# generated seeds are kept in build-fuzz/corpus/NAME).
fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
	    name=$$(basename $$f); mkdir -p build-fuzz/corpus/$$name; \
	    echo "== $$name for $(FUZZ_SECONDS)s"; \
	    seeds=$$(ls -d shared/fuzz/corpus/$$name worker/fuzz/corpus/$$name \
	             2>/dev/null); \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        build-fuzz/corpus/$$name $$seeds || exit 1; \
	done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=20

# Regenerates the snapshot and manifest seeds (after a format change).
fuzz-corpus: $(B)/libmilvuso.a
	$(CC) $(CFLAGS) -o $(B)/gen_snapshot_corpus \
	    shared/fuzz/gen_snapshot_corpus.c $(B)/libmilvuso.a $(LDLIBS)
	rm -f shared/fuzz/corpus/fuzz_snapshot/*.mvs
	$(B)/gen_snapshot_corpus shared/fuzz/corpus/fuzz_snapshot
	$(CC) $(CFLAGS) -o $(B)/gen_manifest_corpus \
	    shared/fuzz/gen_manifest_corpus.c $(B)/libmilvuso.a $(LDLIBS)
	rm -f shared/fuzz/corpus/fuzz_manifest/*.mvm
	$(B)/gen_manifest_corpus shared/fuzz/corpus/fuzz_manifest

# ---- benchmarks -------------------------------------------------------------

bench-ann: deps deps-bench $(B)/libmilvuso.a
	$(MAKE) -C bench/ann B=$(abspath $(B)) run

# wrk on loopback: return 200 vs GET /recommendations (cache miss, hit) and
# POST /actions on one nginx configuration (ARGS="--json" for JSON).
bench-http: deps deps-nginx $(MODULE_SO) $(B)/milvuso-worker
	@./.ci/apt-ensure wrk python3
	python3 bench/http/bench_http.py --module $(MODULE_SO) \
	    --worker $(B)/milvuso-worker $(ARGS)

# POST /actions through the Kafka producer (ack=off, ack=on) and the action
# log, each against return 200 in the same nginx run, and the pipeline's
# freshness (accepted -> published); starts and stops its own broker.
bench-kafka: deps deps-nginx $(MODULE_SO) $(B)/milvuso-worker
	@./.ci/apt-ensure wrk python3 kcat $(APT_SERVICES)
	python3 bench/http/bench_kafka.py --module $(MODULE_SO) \
	    --worker $(B)/milvuso-worker $(ARGS)

# Sustained ingest: wrk POSTs new-user actions for 300 s while the trainer
# follows the action log and publishes; its apply rate against nginx's
# accept rate, the freshness of paced probes, publish intervals and
# durations, snapshot disk use; the plot of the lag goes to bench/results.
# BENCH_INGEST_ARGS="--seconds 30" for a quick check, "--json" for JSON.
BENCH_INGEST_ARGS ?=

bench-ingest: deps deps-nginx $(MODULE_SO) $(B)/milvuso-worker
	@./.ci/apt-ensure wrk python3 gnuplot-nox
	@mkdir -p bench/results
	python3 bench/http/bench_ingest.py --module $(MODULE_SO) \
	    --worker $(B)/milvuso-worker --plot bench/results/ingest.png \
	    $(BENCH_INGEST_ARGS)

# Map + full validation of a 1M-item snapshot against one CRC pass over it.
bench-validate: deps $(B)/libmilvuso.a
	@mkdir -p $(B)/bench
	$(CC) $(CFLAGS) -o $(B)/bench/bench_validate \
	    bench/snapshot/bench_validate.c $(B)/libmilvuso.a $(LDLIBS)
	$(B)/bench/bench_validate $(ARGS)

# A publish as a generation of several files (the worker's publisher: graph
# update, items segment, user delta, manifest) against one full snapshot per
# publish, at 10k, 100k and 1M users; reader open with and without segment
# reuse; compaction.  In a temp dir under $(B)/bench (same disk as the repo).
# BENCH_PUBLISH_ARGS="--users 10000000" (~2.6 GB per copy), "--runs 5",
# "--json".
BENCH_PUBLISH_ARGS ?=

bench-publish: deps $(B)/libmilvuso.a $(call objs,$(B),$(WORKER_SRC))
	@mkdir -p $(B)/bench
	$(CC) $(CFLAGS) -Iworker $(RDKAFKA_CFLAGS) -o $(B)/bench/bench_publish \
	    bench/snapshot/bench_publish.c $(call objs,$(B),$(WORKER_SRC)) \
	    $(B)/libmilvuso.a $(WLDLIBS)
	$(B)/bench/bench_publish --dir $(B)/bench $(BENCH_PUBLISH_ARGS)

# Offline quality on MovieLens-100K (bench/quality/ml100k.toml) against the
# Python implicit library's ALS and BPR on the same splits, and the trainer's
# updates/s against implicit BPR's (pinned wheels in a venv under $(B)).
# QUALITY_DATA=path/to/u.data; ARGS="--tune", "--seeds 42", "--no-throughput".
QUALITY_DATA ?= ../shared/datasets/ml-100k/u.data

bench-quality: deps $(B)/milvuso-worker
	@./.ci/apt-ensure python3 python3-venv python3-pip
	@mkdir -p bench/results
	python3 bench/quality/bench_quality.py --worker $(B)/milvuso-worker \
	    --venv $(B)/bench-venv --data $(QUALITY_DATA) \
	    --json bench/results/quality-ml100k.json \
	    --txt bench/results/quality-ml100k.txt \
	    --png bench/results/quality-ml100k.png $(ARGS)

# ---- everything ----------------------------------------------------------------

test: deps
	$(MAKE) unit
	$(MAKE) unit-scalar
	$(MAKE) unit-asan
	$(MAKE) worker-check
	$(MAKE) run-check
	$(MAKE) services-check
	$(MAKE) services-suites
	$(MAKE) nginx-test
	$(MAKE) nginx-valgrind
	$(MAKE) fuzz-smoke

clean:
	rm -rf build build-asan build-fuzz
