#!/usr/bin/env bash
# check-daemon.sh WORKER_BINARY -- end-to-end checks of the trainer daemon
# (milvuso-worker --config FILE --worker-type T) through the command line
# only: usage and exit codes, the configuration (print and read back, an
# unknown key with FILE:LINE, a bad environment value, a Kafka topic or
# broker list refused), the roles each configuration refuses (feature
# without Kafka or with clashing topics, all on training examples), a
# start on empty directories and a clean stop on
# SIGTERM, the one-worker lock, refusal of corrupt or mismatched
# snapshots, resuming from a valid one, and detaching.  Live action-log
# traffic is covered by the Test::Nginx suites (t/), which have nginx to
# write the log; live Kafka traffic by check-kafka.sh and
# check-feature.sh.
#
# Each check prints "ok - NAME" or "not ok - NAME" (with the output that
# failed it); the last line is "N passed, M failed" and the exit status is
# non-zero when any check failed.  Everything happens in a mktemp directory
# that is removed on exit; every daemon started here is stopped by its pid
# first.
set -euo pipefail

. "$(dirname "$0")/harness.sh"
harness_init check-daemon "$@"
# a daemon that fails to refuse must not hang the script
RUN_TIMEOUT=20
PIDS=()

# Stops the daemons started here (by pid, only while their command line
# still names $T), then removes $T.
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        if owned "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 40); do
            owned "$pid" || break
            sleep 0.05
        done
        if owned "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$T"
}
trap cleanup EXIT

# mkconf FILE SNAPSHOT_DIR LOG_DIR [EXTRA TOML LINES...]: a configuration
# with dim 8, inner product, short poll and publish intervals.
mkconf() {
    local file=$1 snap=$2 log=$3
    shift 3
    {
        echo '[recommendation]'
        echo 'embedding_dim = 8'
        echo 'metric = "ip"'
        echo 'hnsw_m = 16'
        echo '[training]'
        echo 'replay_window = 1000'
        echo '[worker]'
        echo "action_log = \"$log\""
        echo "snapshot_dir = \"$snap\""
        echo 'publish_interval = 0.5'
        echo 'poll_interval = 0.05'
        echo 'log_level = "info"'
        local line
        for line in "$@"; do
            echo "$line"
        done
    } > "$file"
}
# flip FILE: xors the byte in the middle of FILE with 0x5a.
flip() {
    local size mid byte
    size=$(stat -c %s "$1")
    mid=$((size / 2))
    byte=$(od -An -tu1 -j "$mid" -N1 "$1" | tr -d ' ')
    printf "\\$(printf '%03o' $(( (byte ^ 0x5a) & 255 )))" |
        dd of="$1" bs=1 seek="$mid" count=1 conv=notrunc 2>/dev/null
}

C="$T/worker.toml"
mkconf "$C" "$T/snap" "$T/log"

# ---- command line ------------------------------------------------------------

run "$W" --help
check "--help exits 0" eval 'rc_is 0 && has "^usage:" && has "--worker-type"'
run "$W" --config "$C" --help
check "daemon --help exits 0 with its options" eval 'rc_is 0 && has "--foreground" && has "--print-config" && has "SIGTERM"'
run "$W" --config "$C"
check "no --worker-type exits 2" eval 'rc_is 2 && has "--worker-type is required" && has "^usage:"'
run "$W" --config "$C" --worker-type frobnicate --foreground
check "unknown worker type exits 2" eval 'rc_is 2 && has "unknown worker type .frobnicate." && has "^usage:"'
run "$W" --config "$C" --worker-type all --foreground --bogus
check "unknown option exits 2" eval 'rc_is 2 && has "^usage:"'
run "$W" --config "$C" --worker-type all --foreground extra
check "extra argument exits 2" eval 'rc_is 2 && has "unexpected argument"'
run "$W" --config "$C" --worker-type feature --foreground
check "feature alone exits 1, explaining Kafka" eval 'rc_is 1 && has "Kafka" && has "--worker-type all"'
check "refusals created nothing" eval '[ ! -e "$T/snap" ] && [ ! -e "$T/log" ]'

# ---- configuration ------------------------------------------------------------

run "$W" --print-config
check "--print-config prints the defaults as TOML" eval 'rc_is 0 && has "^\[training\]$" && has "^\[worker\]$" && has "^embedding_dim = 64$"'
printf '%s\n' "$OUT" > "$T/defaults.toml"
run "$W" --config "$T/defaults.toml" --print-config
check "printed defaults load again, same text" eval 'rc_is 0 && [ "$OUT" = "$(cat "$T/defaults.toml")" ]'

run "$W" --config "$C" --print-config
printf '%s\n' "$OUT" > "$T/printed.toml"
check "--print-config shows the file's values" eval 'rc_is 0 && has "^embedding_dim = 8$" && has "^poll_interval = 0\.05$" && has "^snapshot_dir = \"$T/snap\"$"'
run "$W" --config "$T/printed.toml" --print-config
check "printed config loads again, same text" eval 'rc_is 0 && [ "$OUT" = "$(cat "$T/printed.toml")" ]'
MILVUSO_TRAINING_LEARNING_RATE=0.125 run "$W" --config "$C" --print-config
check "environment overrides the file" eval 'rc_is 0 && has "^learning_rate = 0\.125$"'

printf '[training]\nepochs = 3\n\n[worker]\nsnapshot_dirr = "/tmp/x"\n' > "$T/unknown.toml"
run "$W" --config "$T/unknown.toml" --worker-type all --foreground
check "unknown key exits 1 with FILE:LINE" eval 'rc_is 1 && has "$T/unknown.toml:5: unknown key \"worker.snapshot_dirr\""'
run "$W" --config "$T/missing.toml" --worker-type all --foreground
check "missing config file exits 1" eval 'rc_is 1 && has "missing.toml"'
MILVUSO_TRAINING_LEARNING_RATE=abc run "$W" --config "$C" --worker-type all --foreground
check "bad environment value exits 1 naming it" eval 'rc_is 1 && has "MILVUSO_TRAINING_LEARNING_RATE"'
MILVUSO_TRAINING_LERNING_RATE=1 run "$W" --config "$C" --worker-type all --foreground
check "unknown environment key exits 1 naming it" eval 'rc_is 1 && has "MILVUSO_TRAINING_LERNING_RATE"'
mkconf "$T/kafka.toml" "$T/snap" "$T/log" '[kafka]' 'enabled = true' \
    'log_topic = "user_actions_of_the_shop_in_the_west_eu1"'
run "$W" --config "$T/kafka.toml" --worker-type all --foreground
check "a Kafka topic of 40 bytes exits 1 with FILE:LINE" eval 'rc_is 1 && has "kafka.toml:[0-9]+: kafka.log_topic: must be at most 39 bytes"'
MILVUSO_KAFKA_ENABLED=true MILVUSO_KAFKA_BROKERS=localhost run "$W" --config "$C" --worker-type trainer --foreground
check "a broker without a port exits 1 naming it" eval 'rc_is 1 && has "MILVUSO_KAFKA_BROKERS: kafka.brokers: \"localhost\" is not host:port"'
MILVUSO_KAFKA_ENABLED=true MILVUSO_FEATURE_POPULARITY_TOPIC=user_actions run "$W" --config "$C" --worker-type feature --foreground
check "feature: popularity_topic = log_topic exits 1 naming both" eval 'rc_is 1 && has "log_topic and popularity_topic are both \"user_actions\""'
MILVUSO_KAFKA_ENABLED=true MILVUSO_KAFKA_TRAINER_INPUT=examples run "$W" --config "$C" --worker-type all --foreground
check "all with trainer_input = examples exits 1: run feature and trainer" eval 'rc_is 1 && has "run --worker-type feature and --worker-type trainer"'
check "still nothing created" eval '[ ! -e "$T/snap" ] && [ ! -e "$T/log" ]'

# start_standby LOG: a --standby worker on $C in the background, stderr to
# LOG, its pid in SB (and PIDS); returns once it says it waits (10 s at most).
start_standby() {
    "$W" --config "$C" --worker-type all --foreground --standby > /dev/null 2> "$1" &
    SB=$!
    PIDS+=("$SB")
    wait_for "$1" "standby: another worker publishes" 10 || true
}

# ---- start on empty directories, stop on SIGTERM ------------------------------

mkdir -p "$T/log"
"$W" --config "$C" --worker-type all --foreground > "$T/fg.out" 2> "$T/fg.log" &
FG=$!
PIDS+=("$FG")
OUT=""
wait_for "$T/fg.log" "following .*publishing into" 10 || OUT=$(cat "$T/fg.log")
check "foreground worker starts on empty directories" eval 'grep -q "starting an empty model" "$T/fg.log" && kill -0 "$FG" 2>/dev/null'
check "it holds the lock file" eval '[ -f "$T/snap/.milvuso-worker.lock" ]'
run "$W" --config "$C" --worker-type all --foreground
check "a second worker on the same snapshot dir exits 1" eval 'rc_is 1 && has "another worker"'
mkconf "$T/other-log.toml" "$T/snap" "$T/log2"
run "$W" --config "$T/other-log.toml" --worker-type trainer --foreground
check "also with another log and type trainer" eval 'rc_is 1 && has "another worker"'
check "the first one still runs" eval 'kill -0 "$FG" 2>/dev/null'
# --standby waits for the lock instead; SIGTERM while waiting: exit 0
start_standby "$T/sb1.log"
OUT=$(cat "$T/sb1.log")
check "--standby: waits while another worker holds the directory" eval 'has "standby: another worker publishes into" && kill -0 "$SB" 2>/dev/null'
kill -TERM "$SB" 2>/dev/null || true
check "--standby: SIGTERM while waiting: exits within 2 s" gone_within "$SB" 2
RC=0
wait "$SB" || RC=$?
OUT=$(cat "$T/sb1.log")
check "--standby: ... with status 0, never having taken over" eval 'rc_is 0 && has "stopped before taking over" && ! has "is free: taking over"'
check "the first one still runs" eval 'kill -0 "$FG" 2>/dev/null'
# a second standby takes over when the first worker stops
start_standby "$T/sb2.log"
kill -TERM "$FG" 2>/dev/null || true
OUT=$(cat "$T/fg.log")
check "SIGTERM: exits within 2 s" gone_within "$FG" 2
RC=0
wait "$FG" || RC=$?
OUT=$(cat "$T/fg.log")
check "SIGTERM: exit status 0" rc_is 0
check "SIGTERM: logged the stop" eval 'has "signal 15: stopping"'
check "SIGTERM: nothing pending, nothing published" eval '[ "$(count_files "$T/snap")" = 0 ] && [ ! -e "$T/snap/current" ] && ! has "published generation"'
check "nothing on stdout" eval '[ ! -s "$T/fg.out" ]'
wait_for "$T/sb2.log" "following .*publishing into" 10 || true
OUT=$(cat "$T/sb2.log")
check "--standby: takes over once the worker stopped" eval 'has "taking over" && has "following .*publishing into" && kill -0 "$SB" 2>/dev/null'
kill -TERM "$SB" 2>/dev/null || true
check "--standby: the new worker stops on SIGTERM" gone_within "$SB" 2
RC=0
wait "$SB" || RC=$?
check "--standby: ... with status 0" rc_is 0
"$W" --config "$C" --worker-type all --foreground 2> "$T/fg2.log" &
FG2=$!
PIDS+=("$FG2")
OUT=""
wait_for "$T/fg2.log" "following" 10 || OUT=$(cat "$T/fg2.log")
check "the lock is free again after the stop" eval 'kill -0 "$FG2" 2>/dev/null'
kill -INT "$FG2" 2>/dev/null || true
RC=0
gone_within "$FG2" 2 && { wait "$FG2" || RC=$?; } || RC=99
OUT=$(cat "$T/fg2.log")
check "SIGINT: exits 0 within 2 s" eval 'rc_is 0 && has "signal 2: stopping"'

# ---- snapshots: corrupt, mismatched, valid -------------------------------------

S="$T/corrupt"
run "$W" snapshot --out "$S" --synthetic 50 --dim 8 --metric ip
check "synthetic dim-8 snapshot published" eval 'rc_is 0 && [ "$(count_files "$S")" = 1 ]'
F=$(find "$S" -maxdepth 1 -name 'snapshot-*.mvs' | head -1)
if [ -n "$F" ]; then
    cp "$F" "$T/corrupt-copy.mvs"
    flip "$F"
    check "the byte was flipped" eval '! cmp -s "$F" "$T/corrupt-copy.mvs"'
    mkconf "$T/corrupt.toml" "$S" "$T/log"
    run "$W" --config "$T/corrupt.toml" --worker-type all --foreground
    check "only a corrupt snapshot: exit 1 no usable snapshot" eval 'rc_is 1 && has "no usable snapshot" && has "unusable"'
    check "the corrupt snapshot is left in place" eval '[ -f "$F" ] && [ "$(count_files "$S")" = 1 ]'
    rm -f "$S/current"
    run "$W" --config "$T/corrupt.toml" --worker-type all --foreground
    check "corrupt snapshot without current: exit 1 too" eval 'rc_is 1 && has "no usable snapshot"'
else
    OUT="no snapshot file in $S"
    not_ok "corrupt snapshot checks"
fi

D="$T/dim16"
run "$W" snapshot --out "$D" --synthetic 50 --dim 16 --metric ip
check "synthetic dim-16 snapshot published" eval 'rc_is 0'
mkconf "$T/dim.toml" "$D" "$T/log"
run "$W" --config "$T/dim.toml" --worker-type all --foreground
check "snapshot of another dim: exit 1 mentioning dim" eval 'rc_is 1 && has "dim 16" && has "8"'

M="$T/cosine"
run "$W" snapshot --out "$M" --synthetic 50 --dim 8
mkconf "$T/metric.toml" "$M" "$T/log"
run "$W" --config "$T/metric.toml" --worker-type all --foreground
check "snapshot of another metric: exit 1 mentioning metric" eval 'rc_is 1 && has "metric"'

V="$T/valid"
run "$W" snapshot --out "$V" --synthetic 50 --dim 8 --metric ip --users 5
check "synthetic valid snapshot published" eval 'rc_is 0'
mkconf "$T/valid.toml" "$V" "$T/log"
"$W" --config "$T/valid.toml" --worker-type all --foreground 2> "$T/valid.log" &
VP=$!
PIDS+=("$VP")
OUT=""
wait_for "$T/valid.log" "following" 10 || OUT=$(cat "$T/valid.log")
check "valid snapshot: resumed from generation 1" eval 'grep -qE "resumed from generation 1 \(50 items, 5 users\)" "$T/valid.log"'
kill -TERM "$VP" 2>/dev/null || true
RC=0
gone_within "$VP" 2 && { wait "$VP" || RC=$?; } || RC=99
OUT=$(cat "$T/valid.log")
check "valid snapshot: clean stop, nothing new published" eval 'rc_is 0 && [ "$(count_files "$V")" = 1 ] && [ "$(readlink "$V/current")" = snapshot-00000000000000000001.mvs ]'

# ---- detached ------------------------------------------------------------------

mkconf "$T/detach.toml" "$T/dsnap" "$T/dlog"
start=$(date +%s%N)
RC=0
timeout 10 "$W" --config "$T/detach.toml" --worker-type all \
    > "$T/detach.out" 2> "$T/detach.log" || RC=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
OUT="exit $RC after $elapsed_ms ms"
check "without --foreground: returns at once with 0" eval 'rc_is 0 && [ "$elapsed_ms" -lt 2000 ]'
OUT=""
wait_for "$T/detach.log" "following .*\(pid [0-9]+\)" 10 || OUT=$(cat "$T/detach.log")
DP=$(sed -nE 's/.*following .*\(pid ([0-9]+)\).*/\1/p' "$T/detach.log" | head -1)
if [ -n "$DP" ]; then
    PIDS+=("$DP")
fi
check "the daemon keeps running detached" eval '[ -n "$DP" ] && owned "$DP"'
check "it runs in its own session" eval '[ -n "$DP" ] && [ "$(ps -o sid= -p "$DP" | tr -d " ")" != "$(ps -o sid= -p $$ | tr -d " ")" ]'
run "$W" --config "$T/detach.toml" --worker-type all --foreground
check "a second start fails on the lock" eval 'rc_is 1 && has "another worker"'
# (stderr to a file: a detached child keeps it open)
check "a detached start that cannot take the lock exits non-zero" \
    eval 'RC=0; timeout 10 "$W" --config "$T/detach.toml" --worker-type all \
              2> "$T/detach2.log" || RC=$?; OUT="exit $RC"; ! rc_is 0'
if [ -n "$DP" ] && owned "$DP"; then
    kill -TERM "$DP"
fi
OUT=$(cat "$T/detach.log")
check "SIGTERM stops the detached daemon within 2 s" eval '[ -n "$DP" ] && gone_within "$DP" 2 && has "signal 15: stopping"'
check "detached: nothing published" eval '[ "$(count_files "$T/dsnap")" = 0 ]'

harness_finish
