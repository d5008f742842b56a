#!/usr/bin/env bash
# check-kafka.sh WORKER_BINARY -- end-to-end checks of the trainer daemon
# on a real Kafka broker ([kafka] enabled = true), through the command
# line, kcat and the published snapshots only:
#
#   - `milvuso-worker topics` creates the run's topics;
#   - keyed records produced with kcat into the actions and items topics
#     are trained on and published: the snapshot holds the users and
#     items, and its positions equal the records of each partition;
#   - SIGTERM publishes and exits 0;
#   - a restart resumes without re-applying: it reads only what came
#     after (the metrics file's counters, exact);
#   - kill -9 after a publish, then a restart: the records after the last
#     published position are applied once (exact counts again);
#   - malformed records (bad JSON, an unknown action, an item of another
#     dimension) and a tombstone are skipped and counted, the daemon keeps
#     running;
#   - fenced: another static member with the trainer's instance id makes
#     librdkafka give up on its consumer (fatal); the daemon reopens it at
#     the positions applied and goes on, each record applied once;
#   - brokers where nothing listens: the daemon starts, stays up, logs the
#     failure rate-limited, and stops on SIGTERM.
#
# It needs a running broker at $MILVUSO_KAFKA_BROKERS (host:port; `make
# services` starts one): without the variable it exits 2 with a message;
# with it and no broker answering, the checks fail.  Every run uses topics
# and a group named after its pid, so runs never see each other's records
# (the topics are left on the broker, which is a throw-away one).
#
# Output as check-daemon.sh: "ok - NAME" / "not ok - NAME" lines, then
# "N passed, M failed"; everything in a mktemp directory removed on exit;
# every daemon started here is stopped by its pid.
set -euo pipefail

if [ -z "${MILVUSO_KAFKA_BROKERS:-}" ]; then
    echo "check-kafka: set MILVUSO_KAFKA_BROKERS=host:port of a running" \
         "Kafka broker (make services starts one on 127.0.0.1:9092)" >&2
    exit 2
fi

. "$(dirname "$0")/harness.sh"
harness_init check-kafka "$@"
RUN_TIMEOUT=60
BROKERS=$MILVUSO_KAFKA_BROKERS
PFX="mvk-$$-$RANDOM"
TA="$PFX-actions"
TF="$PFX-items"
trap harness_kill_all EXIT

# metric NAME, wait_metrics SECONDS NAME=VALUE...: the worker's metrics
# file, the milvuso_worker_ prefix implied.
metric() {
    metric_in "$T/metrics.prom" "milvuso_worker_$1"
}
wait_metrics() {
    local secs=$1
    shift
    wait_metrics_in "$T/metrics.prom" "$secs" \
        $(printf 'milvuso_worker_%s ' "$@")
}

C="$T/kafka.toml"
{
    echo '[kafka]'
    echo 'enabled = true'
    echo "log_topic = \"$TA\""
    echo "feature_topic = \"$TF\""
    echo "training_topic = \"$PFX-examples\""
    echo "group_id = \"$PFX-group\""
    echo 'partitions = 2'
    echo '[recommendation]'
    echo 'embedding_dim = 4'
    echo '[training]'
    echo 'replay_window = 1000'
    echo '[worker]'
    echo "action_log = \"$T/unused-log\""
    echo "snapshot_dir = \"$T/snap\""
    echo "metrics_file = \"$T/metrics.prom\""
    echo 'publish_interval = 0.5'
    echo 'poll_interval = 0.05'
    echo 'popularity_half_life = 0.0'
} > "$C"

# actions FIRST N [USER_BASE]: N keyed click records, users USER_BASE + k % 10
actions() {
    local k u
    for k in $(seq "$1" $(($1 + $2 - 1))); do
        u=$(( ${3:-0} + k % 10 ))
        printf 'user-%d|{"event_id":"e%d","user_id":"user-%d","item_id":"item-%d","action_type":"click","timestamp":"2024-01-01T00:00:00Z"}\n' \
            "$u" "$k" "$u" $((k % 6))
    done | kcat -b "$BROKERS" -P -t "$TA" -K '|'
}
items() {
    local k
    for k in $(seq 0 $(($1 - 1))); do
        printf 'item-%d|{"item_id":"item-%d","embedding":[0.%d,0.2,0.3,0.4],"category":"books"}\n' \
            "$k" "$k" "$k"
    done | kcat -b "$BROKERS" -P -t "$TF" -K '|'
}
# start_daemon LOG [VAR=VALUE...]: starts the daemon in the background.
start_daemon() {
    local log=$1
    shift
    env "$@" "$W" --config "$C" --worker-type all --foreground 2> "$log" &
    DP=$!
    PIDS+=("$DP")
}
# stop_daemon: SIGTERM, then RC = its exit status (99: still running).
stop_daemon() {
    kill -TERM "$DP" 2>/dev/null || true
    RC=0
    if gone_within "$DP" 10; then
        wait "$DP" || RC=$?
    else
        RC=99
    fi
}
# snapshot JQ: the expression over `inspect --json` of current.
snapshot() {
    "$W" inspect "$T/snap/current" --json --all-items | jq -r "$1"
}
# partition_counts TOPIC: "partition count" lines of what the topic holds.
partition_counts() {
    kcat -b "$BROKERS" -C -t "$1" -o beginning -e -q -f '%p\n' 2>/dev/null \
        | sort -n | uniq -c | awk '{ print $2, $1 }'
}
# snapshot_positions TOPIC: "partition offset" lines of the snapshot.
snapshot_positions() {
    snapshot ".positions[] | select(.stream == \"$1\")
              | \"\(.partition) \(.offset)\"" | sort -n
}
positions_match() {
    local t
    for t in "$TA" "$TF"; do
        if [ "$(partition_counts "$t")" != "$(snapshot_positions "$t")" ]; then
            OUT="$t: kafka $(partition_counts "$t" | tr '\n' ';') snapshot $(snapshot_positions "$t" | tr '\n' ';')"
            return 1
        fi
    done
}
position_sum() {
    snapshot "[.positions[] | select(.stream == \"$1\") | .offset] | add"
}

# ---- the broker and the topics --------------------------------------------------

need_broker "$BROKERS"
run "$W" topics --config "$C" --timeout 20
check "topics creates the run's topics" eval 'rc_is 0 && has "^created $TA \(2 partitions" && has "^created $TF "'
run "$W" topics --config "$C" --timeout 20
check "topics again: they exist" eval 'rc_is 0 && has "^exists $TA \(2 partitions\)"'

# ---- records in, snapshot out -------------------------------------------------------

actions 0 30
items 4
start_daemon "$T/d1.log"
OUT=""
wait_for "$T/d1.log" "following Kafka topics" 10 || OUT=$(cat "$T/d1.log")
check "the start line names the topics and brokers" eval 'grep -q "following Kafka topics $TA (actions) and $TF (items) at $BROKERS, group $PFX-group" "$T/d1.log"'
check "30 actions and 4 items applied and published" \
    wait_metrics 30 records_total=34 actions_total=30 items_total=4 \
        invalid_records_total=0 pending_records=0
stop_daemon
OUT=$(cat "$T/d1.log")
check "SIGTERM: exit 0" eval 'rc_is 0 && has "signal 15: stopping"'
OUT=$("$W" inspect "$T/snap/current" --json 2>&1 | head -c 2000)
check "the snapshot has the 10 users and 6 items" eval '[ "$(snapshot .counts.users)" = 10 ] && [ "$(snapshot .counts.items)" = 6 ]'
check "item-2 came with its category" eval '[ "$(snapshot "[.items[] | select(.id == \"item-2\") | .category][0]")" = books ]'
check "positions = records of each partition" positions_match
OUT=$(snapshot '.positions')
check "positions add up to 30 and 4" eval '[ "$(position_sum "$TA")" = 30 ] && [ "$(position_sum "$TF")" = 4 ]'

# ---- a restart resumes after what it published --------------------------------------

start_daemon "$T/d2.log"
OUT=""
wait_for "$T/d2.log" "kafka: [0-9]+ partition\(s\) assigned" 20 || OUT=$(cat "$T/d2.log")
check "restart: resumed and assigned" eval 'grep -q "resumed from generation" "$T/d2.log" && grep -qE "partition\(s\) assigned" "$T/d2.log"'
actions 100 5 10
check "restart: only the 5 new records are read" \
    wait_metrics 30 records_total=5 actions_total=5 pending_records=0
sleep 1
check "restart: still exactly 5 a second later" \
    wait_metrics 1 records_total=5 actions_total=5
stop_daemon
OUT=$(cat "$T/d2.log")
check "restart: SIGTERM exit 0" rc_is 0
OUT=$(snapshot '.positions')
check "restart: 15 users, positions add up to 35" eval '[ "$(snapshot .counts.users)" = 15 ] && [ "$(position_sum "$TA")" = 35 ] && positions_match'

# ---- kill -9 after a publish ---------------------------------------------------------

# publish after every 10 records, never by time: 7 records stay pending
HOLD=(MILVUSO_WORKER_PUBLISH_EVERY=10 MILVUSO_WORKER_PUBLISH_INTERVAL=100000)
start_daemon "$T/d3.log" "${HOLD[@]}"
OUT=""
wait_for "$T/d3.log" "partition\(s\) assigned" 20 || OUT=$(cat "$T/d3.log")
actions 200 10 20
check "kill -9: 10 records published" \
    wait_metrics 30 records_total=10 pending_records=0
GEN=$(snapshot .generation)
actions 300 7 30
check "kill -9: 7 more read, not published" \
    wait_metrics 30 records_total=17 pending_records=7
kill -KILL "$DP"
wait "$DP" 2>/dev/null || true
check "kill -9: the snapshot is the one with the 10" eval '[ "$(snapshot .generation)" = "$GEN" ] && [ "$(position_sum "$TA")" = 45 ]'
start_daemon "$T/d4.log" "${HOLD[@]}"
check "kill -9: the restart reads exactly the 7" \
    wait_metrics 30 records_total=7 actions_total=7 pending_records=7
sleep 1
check "kill -9: and no more" wait_metrics 1 records_total=7
stop_daemon
OUT=$(cat "$T/d4.log")
check "kill -9: SIGTERM publishes them, exit 0" eval 'rc_is 0 && has "published generation"'
OUT=$(snapshot '.positions')
check "kill -9: positions add up to 52, users 32" eval '[ "$(position_sum "$TA")" = 52 ] && [ "$(snapshot .counts.users)" = 32 ] && positions_match'

# ---- malformed records ---------------------------------------------------------------

{
    echo 'user-x|not json'
    echo 'user-x|{"user_id":"user-x","item_id":"item-1","action_type":"teleport","timestamp":"2024-01-01T00:00:00Z"}'
    echo 'user-x|'
} | kcat -b "$BROKERS" -P -t "$TA" -K '|' -Z
echo 'item-9|{"item_id":"item-9","embedding":[1,2,3]}' \
    | kcat -b "$BROKERS" -P -t "$TF" -K '|'
actions 400 1 40
start_daemon "$T/d5.log"
check "malformed: 3 refused, the tombstone skipped, 1 applied" \
    wait_metrics 30 invalid_records_total=3 skipped_records_total=1 \
        actions_total=1 records_total=4 pending_records=0
OUT=$(cat "$T/d5.log")
check "malformed: logged as skipped records" eval 'has "record skipped"'
check "malformed: the daemon keeps running" eval 'kill -0 "$DP" 2>/dev/null'
stop_daemon
OUT=$(cat "$T/d5.log")
check "malformed: SIGTERM exit 0" rc_is 0
OUT=$(snapshot '.positions')
check "malformed: positions past them (56 and 5)" eval '[ "$(position_sum "$TA")" = 56 ] && [ "$(position_sum "$TF")" = 5 ] && positions_match'

# ---- fenced: librdkafka gives up on the consumer, the daemon reopens it ---------------

# A second static member with the trainer's group.instance.id fences the
# trainer's consumer (FENCED_INSTANCE_ID: fatal in librdkafka); the daemon
# must reopen it at the positions it applied, then go on, exactly.
start_daemon "$T/d7.log"
OUT=""
wait_for "$T/d7.log" "partition\(s\) assigned" 20 || OUT=$(cat "$T/d7.log")
MEMBER=$(sed -n 's/.*(member \([^)]*\)).*/\1/p' "$T/d7.log" | head -1)
check "fenced: the start line names the static member" eval '[ -n "$MEMBER" ]'
timeout 8 kcat -b "$BROKERS" -G "$PFX-group" -X "group.instance.id=$MEMBER" \
    -X session.timeout.ms=6000 -q -o end "$TA" > /dev/null 2>&1 &
FENCER=$!
PIDS+=("$FENCER")
OUT=""
wait_for "$T/d7.log" "reopened Kafka" 30 || OUT=$(cat "$T/d7.log")
check "fenced: the fatal error is logged, the consumer reopened" \
    eval 'grep -q "reopened Kafka" "$T/d7.log"'
wait "$FENCER" 2>/dev/null || true
actions 500 6 50
check "fenced: the 6 actions after it applied, exactly" \
    wait_metrics 40 actions_total=6 pending_records=0
sleep 1
check "fenced: and no more" wait_metrics 1 actions_total=6
check "fenced: the daemon keeps running" eval 'kill -0 "$DP" 2>/dev/null'
stop_daemon
OUT=$(cat "$T/d7.log")
check "fenced: SIGTERM exit 0" rc_is 0
OUT=$(snapshot '.positions')
check "fenced: positions add up to 62, each record once" eval '[ "$(position_sum "$TA")" = 62 ] && positions_match'

# ---- nothing listens -------------------------------------------------------------------

sed -i "s|$T/snap|$T/snap-down|; s|$T/metrics.prom|$T/metrics-down.prom|" "$C"
start_daemon "$T/d6.log" MILVUSO_KAFKA_BROKERS=127.0.0.1:1
OUT=""
wait_for "$T/d6.log" "following Kafka topics .* at 127\.0\.0\.1:1," 10 || OUT=$(cat "$T/d6.log")
check "no broker: the daemon starts" eval 'kill -0 "$DP" 2>/dev/null'
sleep 12
OUT=$(cat "$T/d6.log")
check "no broker: still running after 12 s" eval 'kill -0 "$DP" 2>/dev/null'
check "no broker: the failure is logged" eval 'has "warn kafka: .*127\.0\.0\.1:1.*(Connection refused|_TRANSPORT)"'
check "no broker: rate-limited (at most 3 lines in 12 s)" \
    eval '[ "$(grep -c "warn kafka: " "$T/d6.log")" -le 3 ]'
stop_daemon
OUT=$(cat "$T/d6.log")
check "no broker: SIGTERM exit 0 within 10 s" eval 'rc_is 0 && has "signal 15: stopping"'
check "no broker: nothing published" eval '[ "$(count_files "$T/snap-down")" = 0 ]'

harness_finish
