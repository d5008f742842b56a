#!/usr/bin/env bash
# check-drain.sh WORKER_BINARY ACTLOG_TOOL -- the drain (milvuso-worker
# --worker-type drain) end to end on a real Kafka broker: records are
# appended to an action log with actlog_tool (the library's appender, as
# nginx appends what Kafka did not take), the drain produces them into
# the run's topics, and a read_committed reader (kcat) counts them.
# Exact counts throughout:
#
#   - 200 actions, 3 items and 1 malformed record, one transaction per 64
#     records: every action on the actions topic once, keyed by its user,
#     its value the log's payload byte for byte; the items on the items
#     topic keyed by their id; the malformed record counted and logged;
#     the committed offset of group milvuso-drain-CRC on partition 0 is
#     the log position, its metadata says so;
#   - kill -9 with a transaction open: a read_committed reader sees
#     exactly the committed records (a read_uncommitted one more); the
#     restart aborts the open transaction and drains its records again:
#     each record exactly once; a second restart drains nothing;
#   - an idle drain costs little CPU and, with a short consumer expiry,
#     commits its position again (refreshes) so that Kafka keeps it;
#   - retention: with action_log_retention = 0 the drained segments go,
#     the newest stays;
#   - the broker stopped (services.sh stop; needs MILVUSO_SERVICES_RUN, the
#     run directory of the suite's broker, else skipped saying so): the
#     drain keeps running, logs rate-limited; records appended meanwhile
#     are drained once the broker is back, once;
#   - a second drain of the same log fences the first, which stops with
#     exit status 1; records after that are drained once; SIGTERM: 0.
#
# It needs a running broker at $MILVUSO_KAFKA_BROKERS (`make services`
# starts one); without the variable it exits 2.  Topics are named after
# the run's pid.  Output as check-kafka.sh.
set -euo pipefail

if [ -z "${MILVUSO_KAFKA_BROKERS:-}" ]; then
    echo "check-drain: set MILVUSO_KAFKA_BROKERS=host:port of a running" \
         "Kafka broker (make services starts one)" >&2
    exit 2
fi

. "$(dirname "$0")/harness.sh"
if [ $# -ne 2 ] || [ ! -x "$2" ]; then
    echo "usage: $0 WORKER_BINARY ACTLOG_TOOL" >&2
    exit 2
fi
TOOL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
harness_init check-drain "$1"
trap harness_kill_all EXIT
RUN_TIMEOUT=60
BROKERS=$MILVUSO_KAFKA_BROKERS
PFX="mvd-$$-$RANDOM"
TA="$PFX-actions"
TF="$PFX-items"
LOG="$T/log"
DM="$T/drain.prom"
dw() { wait_metrics_in "$DM" "$@"; }

C="$T/drain.toml"
{
    echo '[kafka]'
    echo "log_topic = \"$TA\""
    echo "feature_topic = \"$TF\""
    echo "training_topic = \"$PFX-examples\""
    echo 'partitions = 2'
    echo '[feature]'
    echo "popularity_topic = \"$PFX-counts\""
    echo '[drain]'
    echo 'commit_records = 64'
    echo 'commit_interval = 10'
    echo "metrics_file = \"$DM\""
    echo '[worker]'
    echo "action_log = \"$LOG\""
    echo 'poll_interval = 0.05'
} > "$C"

# append FIRST N: N clicks to the log, event eK, user-(K % 7), item-(K % 5).
append() {
    local k
    for k in $(seq "$1" $(($1 + $2 - 1))); do
        printf 'action {"event_id":"e%d","user_id":"user-%d","item_id":"item-%d","action_type":"Click","timestamp":"2024-01-01T00:00:00Z"}\n' \
            "$k" $((k % 7)) $((k % 5))
    done | "$TOOL" append "$LOG" 4096 > /dev/null
}
# start NAME VAR=VALUE...: a drain in the background, DP its pid.
start() {
    local log=$T/$1.log
    shift
    rm -f "$DM"                          # no figures of an earlier drain
    env "$@" "$W" --config "$C" --worker-type drain --foreground 2> "$log" &
    DP=$!
    PIDS+=("$DP")
}
# records TOPIC ISOLATION: "key<TAB>value" lines of the topic.
records() {
    kcat -b "$BROKERS" -C -t "$1" -o beginning -e -q \
        -X isolation.level="$2" -f '%k\t%s\n' 2>/dev/null
}
count_lines() { wc -l < "$1" | tr -d ' '; }
# distinct_events FILE: number of distinct event ids in "key<TAB>value".
distinct_events() { cut -f2 "$1" | jq -r .event_id | sort -u | wc -l | tr -d ' '; }
# actions_exact N: the actions topic holds events e0 .. e(N-1), each once,
# keyed by its user, committed.
actions_exact() {
    records "$TA" read_committed > "$T/a.tsv"
    OUT="read_committed $(count_lines "$T/a.tsv"), distinct $(distinct_events "$T/a.tsv") (want $1)"
    [ "$(count_lines "$T/a.tsv")" = "$1" ] && [ "$(distinct_events "$T/a.tsv")" = "$1" ] \
        && [ -z "$(jq -R -r 'split("\t") as [$k, $v] | ($v | fromjson) as $x
                   | select($x.user_id != $k) | $k' "$T/a.tsv")" ] \
        && diff <(cut -f2 "$T/a.tsv" | jq -r .event_id | sort -u) \
                <(seq 0 $(($1 - 1)) | sed 's/^/e/' | sort) > /dev/null
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# ---- the broker and the topics --------------------------------------------------

need_broker "$BROKERS"
run "$W" topics --config "$C" --timeout 20
check "topics creates the run's topics" eval 'rc_is 0 && has "^created $TA \(2 partitions"'

# ---- 200 actions, 3 items, a malformed record ------------------------------------

append 0 100
{
    for k in 0 1 2; do
        printf 'item {"item_id":"item-%d","embedding":[0.%d,0.2],"category":"cat-%d"}\n' "$k" "$k" "$k"
    done
    echo 'action {"user_id":"user-x","item_id":"item-1","action_type":"teleport"}'
} | "$TOOL" append "$LOG" 4096 > /dev/null
append 100 100
start d1
D1=$DP
OUT=""
wait_for "$T/d1.log" "worker drain following action log $LOG \(consumer drain-[0-9a-f]{8}\) into Kafka topics $TA \(actions\) and $TF \(items\)" 10 || OUT=$(cat "$T/d1.log")
check "start: the start line names the log, its consumer, the topics" eval '[ -z "$OUT" ]'
check "first start: from the log's start, 3 transactions of 64, 12 open" \
    dw 30 milvuso_drain_transactions_total=3 milvuso_drain_pending_records=12 \
        milvuso_drain_phase=2
OUT=$(grep "draining" "$T/d1.log" || true)
check "first start: it says it starts at the log's start" has "no position in Kafka: the log's start"
sleep 1                                  # the open transaction's records
kill -KILL "$D1"                         # reach the broker meanwhile
wait "$D1" 2>/dev/null || true
records "$TA" read_committed > "$T/c1.tsv"
records "$TA" read_uncommitted > "$T/u1.tsv"
records "$TF" read_committed > "$T/i1.tsv"
COMMITTED=$(( $(metric_in "$DM" milvuso_drain_actions_total) ))
OUT="metrics $COMMITTED actions; read_committed $(count_lines "$T/c1.tsv"), read_uncommitted $(count_lines "$T/u1.tsv")"
check "kill -9: a read_committed reader sees exactly the committed actions" eval '[ "$(count_lines "$T/c1.tsv")" = "$COMMITTED" ] && [ "$COMMITTED" -ge 180 ]'
check "kill -9: the open transaction's records are in the log, not committed" eval '[ "$(count_lines "$T/u1.tsv")" -gt "$COMMITTED" ]'
OUT=$(cat "$T/i1.tsv")
check "the 3 items on the items topic, keyed by their id" eval '[ "$(count_lines "$T/i1.tsv")" = 3 ] && [ -z "$(jq -R -r '"'"'split("\t") as [$k, $v] | ($v | fromjson) | select(.item_id != $k) | $k'"'"' "$T/i1.tsv")" ]'

start d2
D2=$DP
check "restart: the open transaction drained again, all 200 committed" \
    dw 30 milvuso_drain_pending_records=0 milvuso_drain_transactions_total=1
check "restart: every action exactly once, keyed by its user" actions_exact 200
OUT=$(grep "draining" "$T/d2.log" || true)
check "restart: resumes at the position committed in Kafka, read back with its metadata" \
    has "the position committed in Kafka: \"milvuso drain: action-log position \(segment [0-9]+, offset [0-9]+\) of $LOG, not a Kafka offset\""
OUT=$(grep "skipped" "$T/d1.log" "$T/d2.log" || true)
check "the malformed record is logged, not produced (the actions are exact above)" \
    has "unknown_action_type"
OUT=$(head -c 300 "$T/a.tsv")
check "a value is the log's payload, byte for byte" \
    eval 'grep -qF "{\"event_id\":\"e7\",\"user_id\":\"user-0\",\"item_id\":\"item-2\",\"action_type\":\"Click\",\"timestamp\":\"2024-01-01T00:00:00Z\"}" "$T/a.tsv"'

# ---- idle ---------------------------------------------------------------------------

T0=$(cpu_ticks "$D2")
sleep 5
T1=$(cpu_ticks "$D2")
OUT="$((T1 - T0)) ticks of CPU in 5 s"
check "idle: under 0.25 s of CPU in 5 s" eval '[ $((T1 - T0)) -lt 25 ]'
stop "$D2"
check "idle: SIGTERM exits 0" rc_is 0
start d3
D3=$DP
append 200 10
check "second restart: only the 10 new actions" \
    dw 30 milvuso_drain_actions_total=10 milvuso_drain_pending_records=0
check "second restart: 210 on the topic, each once" actions_exact 210
stop "$D3"
check "second restart: SIGTERM exit 0" rc_is 0

# ---- refresh and retention ------------------------------------------------------------

start d4 MILVUSO_WORKER_ACTION_LOG_CONSUMER_EXPIRY=4 \
    MILVUSO_WORKER_ACTION_LOG_RETENTION=0
D4=$DP
append 210 10
check "retention: 10 more drained" \
    dw 30 milvuso_drain_actions_total=10 milvuso_drain_pending_records=0
sleep 3
REFRESHES=$(metric_in "$DM" milvuso_drain_refreshes_total)
OUT="$REFRESHES refreshes in 3 s"
check "idle with a 4 s expiry: the position committed again every second" eval '[ "$REFRESHES" -ge 2 ]'
SEGS=$(ls "$LOG" | grep -c '^actions-' || true)
OUT="segments left: $(ls "$LOG" | tr '\n' ' '); removed $(metric_in "$DM" milvuso_drain_removed_segments_total)"
check "retention 0: the drained segments are removed, the newest stays" eval '[ "$SEGS" = 1 ] && [ "$(metric_in "$DM" milvuso_drain_removed_segments_total)" -ge 5 ]'
check "the log's registration names the drain" eval 'grep -q "worker --worker-type drain into $TA" "$LOG"/consumers/drain-*'
stop "$D4"
check "retention: SIGTERM exit 0" rc_is 0
check "after all that: 220 on the topic, each once" actions_exact 220

# ---- the broker stopped ----------------------------------------------------------------

N=220
if [ -n "${MILVUSO_SERVICES_RUN:-}" ]; then
    services() {
        MILVUSO_KAFKA_BROKERS=$BROKERS "$(dirname "$0")/../../conf/services.sh" \
            "$@" --run "$MILVUSO_SERVICES_RUN" --worker "$W" > "$T/services.log" 2>&1
    }
    start d5
    D5=$DP
    check "broker down: the drain is up" dw 30 milvuso_drain_phase=2
    services stop
    check "broker down: stopped" eval '! kcat -b "$BROKERS" -L -m 1 > /dev/null 2>&1'
    append 220 30
    sleep 15
    OUT=$(cat "$T/d5.log")
    check "broker down: the drain still runs after 15 s" eval 'kill -0 "$D5" 2>/dev/null'
    check "broker down: logged, rate-limited (at most 8 warnings in 15 s)" \
        eval 'has " warn drain" && [ "$(grep -c " warn " "$T/d5.log")" -le 8 ]'
    services restart
    check "broker back: started on its data" rc_is 0
    check "broker back: the 30 drained" \
        dw 120 milvuso_drain_actions_total=30 milvuso_drain_pending_records=0
    N=250
    check "broker back: $N on the topic, each once" actions_exact $N
    stop "$D5"
    check "broker back: SIGTERM exit 0" rc_is 0
else
    echo "ok - broker down: skipped (set MILVUSO_SERVICES_RUN to the run directory of the suite's own broker)"
fi

# ---- a second drain fences the first -----------------------------------------------------

start d6
D6=$DP
check "fencing: the first drain runs" dw 30 milvuso_drain_phase=2
start d7 MILVUSO_DRAIN_METRICS_FILE="$T/d7.prom"
D7=$DP
check "fencing: the second drain runs" \
    wait_metrics_in "$T/d7.prom" 30 milvuso_drain_phase=2
append $N 20
OUT=""
gone_within "$D6" 30 || OUT="the first drain still runs"
check "fencing: the first stops" eval '[ -z "$OUT" ]'
RC=0
wait "$D6" 2>/dev/null || RC=$?
OUT=$(tail -3 "$T/d6.log")
check "fencing: with exit 1, saying another drain took over" eval 'rc_is 1 && has "fenced by a newer instance \(another drain of this action log may have taken over\)"'
check "fencing: the second drains the 20" \
    wait_metrics_in "$T/d7.prom" 30 milvuso_drain_actions_total=20 milvuso_drain_pending_records=0
check "fencing: $((N + 20)) on the topic, each once" actions_exact $((N + 20))
stop "$D7"
check "fencing: SIGTERM exit 0" rc_is 0

# ---- refusals -------------------------------------------------------------------------------

MILVUSO_KAFKA_FEATURE_TOPIC=$TA run "$W" --config "$C" --worker-type drain --foreground
check "the same topic for actions and items is refused" eval 'rc_is 1 && has "both"'

harness_finish
