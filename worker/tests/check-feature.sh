#!/usr/bin/env bash
# check-feature.sh WORKER_BINARY -- end-to-end checks of the feature worker
# (milvuso-worker --worker-type feature) and of the trainer on its training
# examples, on a real Kafka broker, through the command line, kcat and the
# published snapshots only.  Exact counts throughout:
#
#   - `milvuso-worker topics` creates the run's four topics (the counts'
#     topic compacted, one partition);
#   - 200 actions (and 3 malformed records) in, one transaction per 64
#     records; kill -9 with a transaction open: a read_committed reader
#     sees exactly the committed examples (the open transaction's are in
#     the log, seen by a read_uncommitted reader), each action once;
#   - the restart aborts that transaction and joins its actions again, 100
#     more actions come, SIGTERM commits: exactly 300 examples, each
#     action once, keyed by its user, with its item's features (null for
#     the item never described), and each item's counts are 1 .. n once
#     each across the kill (the counts were restored consistently);
#   - a second restart reads nothing again (the group's offsets are
#     committed with the transactions);
#   - malformed actions, a tombstone and a features record of another
#     dimension are counted, logged, skipped;
#   - the trainer (trainer_input = examples) learns exactly the 300, its
#     snapshot positions are the committed examples of each partition;
#     kill -9 after its publish, restart: nothing applied again; 20 more
#     actions through the running feature worker and trainer: exactly 20;
#     a malformed record on the training topic is counted and skipped;
#   - a trainer on log_topic refuses that snapshot (it was trained on the
#     examples);
#   - a second feature worker of the group fences the first, which stops
#     with exit status 1; brokers where nothing listens: up, logged
#     rate-limited, clean stop.
#
# It needs a running broker at $MILVUSO_KAFKA_BROKERS (`make services`
# starts one); without the variable it exits 2.  Topics and groups are
# named after the run's pid.  Output as check-kafka.sh.
set -euo pipefail

if [ -z "${MILVUSO_KAFKA_BROKERS:-}" ]; then
    echo "check-feature: set MILVUSO_KAFKA_BROKERS=host:port of a running" \
         "Kafka broker (make services starts one)" >&2
    exit 2
fi

. "$(dirname "$0")/harness.sh"
harness_init check-feature "$@"
RUN_TIMEOUT=60
BROKERS=$MILVUSO_KAFKA_BROKERS
PFX="mvf-$$-$RANDOM"
TA="$PFX-actions"
TF="$PFX-items"
TE="$PFX-examples"
TP="$PFX-counts"
PIDS=()

trap harness_kill_all EXIT

FM="$T/feature.prom"
TM="$T/trainer.prom"
fw() { wait_metrics_in "$FM" "$@"; }
tw() { wait_metrics_in "$TM" "$@"; }

C="$T/pipeline.toml"
{
    echo '[kafka]'
    echo 'enabled = true'
    echo "log_topic = \"$TA\""
    echo "feature_topic = \"$TF\""
    echo "training_topic = \"$TE\""
    echo "group_id = \"$PFX-trainer\""
    echo 'partitions = 2'
    echo 'trainer_input = "examples"'
    echo '[feature]'
    echo "group_id = \"$PFX-feature\""
    echo "popularity_topic = \"$TP\""
    echo 'commit_records = 64'
    echo 'commit_interval = 10'
    echo "metrics_file = \"$FM\""
    echo '[recommendation]'
    echo 'embedding_dim = 4'
    echo '[training]'
    echo 'replay_window = 1000'
    echo '[worker]'
    echo "action_log = \"$T/unused-log\""
    echo "snapshot_dir = \"$T/snap\""
    echo "metrics_file = \"$TM\""
    echo 'publish_interval = 0.5'
    echo 'poll_interval = 0.05'
    echo 'popularity_half_life = 0.0'
} > "$C"

# actions FIRST N: N keyed clicks, event eK, user-(K % 7), item-(K % 5).
actions() {
    local k
    for k in $(seq "$1" $(($1 + $2 - 1))); do
        printf 'user-%d|{"event_id":"e%d","user_id":"user-%d","item_id":"item-%d","action_type":"click","timestamp":"2024-01-01T00:00:00Z"}\n' \
            $((k % 7)) "$k" $((k % 7)) $((k % 5))
    done | kcat -b "$BROKERS" -P -t "$TA" -K '|'
}
# items 0 .. 3 (item-4 is never described) and one of another dimension.
items() {
    local k
    for k in 0 1 2 3; do
        printf 'item-%d|{"item_id":"item-%d","embedding":[0.%d,0.2,0.3,0.4],"category":"cat-%d","tags":["t%d"]}\n' \
            "$k" "$k" "$k" "$k" "$k"
    done
    echo 'item-9|{"item_id":"item-9","embedding":[1,2,3]}'
} 
# start NAME VAR=VALUE... -- ROLE: a worker in the background, DP its pid.
start() {
    local log=$T/$1.log
    shift
    local vars=()
    while [ "$1" != "--" ]; do vars+=("$1"); shift; done
    shift
    env "${vars[@]}" "$W" --config "$C" --worker-type "$1" --foreground \
        2> "$log" &
    DP=$!
    PIDS+=("$DP")
}
# examples ISOLATION: "user<TAB>event<TAB>item<TAB>popularity<TAB>category
# or null<TAB>key" lines of the training topic.
examples() {
    kcat -b "$BROKERS" -C -t "$TE" -o beginning -e -q \
        -X isolation.level="$1" -f '%k\t%s\n' 2>/dev/null \
        | jq -R -r 'split("\t") as [$k, $v] | ($v | fromjson) as $x
                    | [$x.user_id, $x.event_id, $x.item_id, $x.popularity,
                       (if $x.features == null then "null"
                        else $x.features.category end), $k] | @tsv'
}
count_lines() { wc -l < "$1" | tr -d ' '; }
# distinct_events FILE: number of distinct event ids.
distinct_events() { cut -f2 "$1" | sort -u | wc -l | tr -d ' '; }
# counts_exact FILE: every item's popularities are 1 .. n, once each.
counts_exact() {
    awk -F'\t' '{ n[$3]++; if (seen[$3, $4]++) bad = bad " " $3 "@" $4 }
                { if ($4 > max[$3]) max[$3] = $4 }
                END { for (i in n) if (max[i] != n[i]) bad = bad " " i ":" n[i] "/" max[i];
                      if (bad != "") { print "bad:" bad; exit 1 } }' "$1"
}
snapshot() {
    "$W" inspect "$T/snap/current" --json --all-items | jq -r "$1"
}
# committed_ends: "partition next" of the training topic's committed records.
committed_ends() {
    kcat -b "$BROKERS" -C -t "$TE" -o beginning -e -q \
        -X isolation.level=read_committed -f '%p %o\n' 2>/dev/null \
        | awk '{ if ($2 + 1 > e[$1]) e[$1] = $2 + 1 } END { for (p in e) print p, e[p] }' \
        | sort -n
}
snapshot_ends() {
    snapshot ".positions[] | select(.stream == \"$TE\") | \"\(.partition) \(.offset)\"" \
        | sort -n
}

# ---- the broker and the topics --------------------------------------------------

need_broker "$BROKERS"
run "$W" topics --config "$C" --timeout 20
check "topics creates the four, the counts' compacted with 1 partition" eval 'rc_is 0 && has "^created $TE \(2 partitions" && has "^created $TP \(1 partitions, replication 1, compacted\)"'
run "$W" topics --config "$C" --timeout 20
check "topics again: the counts' topic exists with 1 partition" eval 'rc_is 0 && has "^exists $TP \(1 partitions\)"'

# ---- 200 actions, kill -9 with a transaction open ------------------------------

items | kcat -b "$BROKERS" -P -t "$TF" -K '|'
{
    echo 'user-x|not json'
    echo 'user-x|{"user_id":"user-x","item_id":"item-1","action_type":"teleport"}'
    echo 'user-x|'
} | kcat -b "$BROKERS" -P -t "$TA" -K '|' -Z
actions 0 200

start f1 -- feature
F1=$DP
OUT=""
wait_for "$T/f1.log" "worker feature following Kafka topic $TA" 10 || OUT=$(cat "$T/f1.log")
check "feature: the start line names its topics and group" eval 'grep -q "joined with $TF (items) at $BROKERS, group $PFX-feature, writing training examples to $TE (item counts in $TP)" "$T/f1.log"'
check "feature: 3 transactions of 64 records committed, 11 open" \
    fw 40 milvuso_feature_actions_total=192 milvuso_feature_pending_actions=11 \
        milvuso_feature_transactions_total=3 milvuso_feature_items_total=4 \
        milvuso_feature_invalid_items_total=1
sleep 1                                  # the open transaction's records
kill -KILL "$F1"                         # reach the broker meanwhile
wait "$F1" 2>/dev/null || true
COMMITTED=$(metric_in "$FM" milvuso_feature_examples_total)
INVALID1=$(metric_in "$FM" milvuso_feature_invalid_records_total)
SKIPPED1=$(metric_in "$FM" milvuso_feature_skipped_records_total)
examples read_committed > "$T/ex1.tsv"
examples read_uncommitted > "$T/ex1u.tsv"
OUT="metrics: $COMMITTED committed; read_committed $(count_lines "$T/ex1.tsv"), read_uncommitted $(count_lines "$T/ex1u.tsv")"
check "kill -9: a read_committed reader sees exactly the committed examples" eval '[ "$(count_lines "$T/ex1.tsv")" = "$COMMITTED" ] && [ "$COMMITTED" -ge 181 ]'
check "kill -9: the open transaction's examples are in the log, not committed" eval '[ "$(count_lines "$T/ex1u.tsv")" -gt "$COMMITTED" ]'
check "kill -9: each committed action once" eval '[ "$(distinct_events "$T/ex1.tsv")" = "$COMMITTED" ]'

# ---- restart: the open transaction joined again, 100 more, SIGTERM -------------

start f2 -- feature
F2=$DP
check "restart: the 11 again, the counts of 5 items restored" \
    fw 40 milvuso_feature_items=5 \
        milvuso_feature_pending_actions=11 milvuso_feature_actions_total=0
actions 200 100
check "restart: 100 more: one more transaction, 47 open" \
    fw 40 milvuso_feature_actions_total=64 milvuso_feature_pending_actions=47
stop "$F2"
OUT=$(tail -5 "$T/f2.log")
check "restart: SIGTERM commits and exits 0" eval 'rc_is 0 && has "signal 15: stopping"'
check "restart: 111 actions committed by this run, no abort" \
    fw 5 milvuso_feature_actions_total=111 milvuso_feature_aborts_total=0
examples read_committed > "$T/ex.tsv"
examples read_uncommitted > "$T/exu.tsv"
OUT="read_committed $(count_lines "$T/ex.tsv"), distinct $(distinct_events "$T/ex.tsv")"
check "exactly 300 examples committed, each action once" eval '[ "$(count_lines "$T/ex.tsv")" = 300 ] && [ "$(distinct_events "$T/ex.tsv")" = 300 ]'
check "the aborted transaction's records stay out (read_uncommitted sees more)" eval '[ "$(count_lines "$T/exu.tsv")" -gt 300 ]'
OUT=$(counts_exact "$T/ex.tsv" 2>&1 || true)
check "each item's counts are 1 .. n once each across the kill" counts_exact "$T/ex.tsv"
OUT=$(awk -F'\t' '$1 != $6' "$T/ex.tsv" | head -3)
check "every example keyed by its user" eval '[ -z "$OUT" ]'
OUT=$(awk -F'\t' '($3 == "item-4") != ($5 == "null") || ($3 != "item-4" && $5 != "cat-" substr($3, 6))' "$T/ex.tsv" | head -3)
check "features: the item's category; null for item-4, never described" eval '[ -z "$OUT" ]'
OUT=$(grep -E "skipped|refused" "$T/f1.log" "$T/f2.log" | head -5)
# (the second malformed action comes within the rate limit of the first:
# counted below, not necessarily logged)
check "malformed records logged" eval 'has "invalid_json" && has "dimension_mismatch"'
OUT="first run: $INVALID1 refused, $SKIPPED1 skipped; restart: $(metric_in "$FM" milvuso_feature_invalid_records_total), $(metric_in "$FM" milvuso_feature_skipped_records_total)"
check "malformed: 2 refused and the tombstone skipped over both runs" \
    eval '[ $((INVALID1 + $(metric_in "$FM" milvuso_feature_invalid_records_total))) = 2 ] && [ $((SKIPPED1 + $(metric_in "$FM" milvuso_feature_skipped_records_total))) = 1 ]'

# ---- a second restart reads nothing again -------------------------------------

start f3 -- feature
F3=$DP
check "second restart: running, nothing to join" \
    fw 40 milvuso_feature_phase=2 milvuso_feature_pending_actions=0
sleep 3
check "second restart: still nothing after 3 s" \
    fw 1 milvuso_feature_actions_total=0 milvuso_feature_pending_actions=0
stop "$F3"
check "second restart: SIGTERM exit 0" rc_is 0

# ---- the trainer on the examples -------------------------------------------------

start t1 -- trainer
T1=$DP
OUT=""
wait_for "$T/t1.log" "following Kafka topics $TE \(training examples\) and $TF \(items\)" 10 || OUT=$(cat "$T/t1.log")
check "trainer: follows the training examples" eval '[ -z "$OUT" ]'
check "trainer: exactly 300 examples, 4 items, the bad one refused, published" \
    tw 40 milvuso_worker_actions_total=300 milvuso_worker_items_total=4 \
        milvuso_worker_invalid_records_total=1 milvuso_worker_pending_records=0
kill -KILL "$T1"
wait "$T1" 2>/dev/null || true
OUT="kafka: $(committed_ends | tr '\n' ';') snapshot: $(snapshot_ends | tr '\n' ';')"
check "trainer: snapshot positions = the committed examples of each partition" eval '[ "$(committed_ends)" = "$(snapshot_ends)" ]'
OUT=$(snapshot '.counts')
check "trainer: 7 users, 5 items, item-2 in cat-2" eval '[ "$(snapshot .counts.users)" = 7 ] && [ "$(snapshot .counts.items)" = 5 ] && [ "$(snapshot "[.items[] | select(.id == \"item-2\") | .category][0]")" = cat-2 ]'

start t2 -- trainer
T2=$DP
check "trainer: restart after kill -9 applies nothing again" \
    tw 40 milvuso_worker_records_total=0 milvuso_worker_pending_records=0
start f4 -- feature
F4=$DP
actions 300 20
check "live: 20 more actions through the feature worker" \
    fw 40 milvuso_feature_actions_total=20 milvuso_feature_pending_actions=0
check "live: the trainer applies exactly those 20" \
    tw 40 milvuso_worker_actions_total=20 milvuso_worker_pending_records=0
echo 'user-x|{"user_id":"user-x"}' | kcat -b "$BROKERS" -P -t "$TE" -K '|'
check "trainer: a malformed example is counted and skipped" \
    tw 40 milvuso_worker_invalid_records_total=1 milvuso_worker_actions_total=20
OUT=$(grep "training example refused" "$T/t2.log" | head -2)
check "trainer: the malformed example is logged" eval '[ -n "$OUT" ]'
sleep 1
check "live: and no more" tw 1 milvuso_worker_actions_total=20
stop "$T2"
check "trainer: SIGTERM exit 0" rc_is 0

MILVUSO_KAFKA_TRAINER_INPUT=actions run "$W" --config "$C" --worker-type trainer --foreground
check "a trainer on log_topic refuses the examples' snapshot" eval 'rc_is 1 && has "trained on Kafka topic $TE"'

# ---- fencing ------------------------------------------------------------------------

start f5 MILVUSO_FEATURE_METRICS_FILE="$T/f5.prom" -- feature
F5=$DP
check "fencing: the second feature worker runs" \
    wait_metrics_in "$T/f5.prom" 40 milvuso_feature_phase=2
OUT=""
gone_within "$F4" 30 || OUT="the first feature worker still runs"
check "fencing: the first stops" eval '[ -z "$OUT" ]'
RC=0
wait "$F4" 2>/dev/null || RC=$?
OUT=$(tail -3 "$T/f4.log")
check "fencing: with exit 1, saying another worker took over" eval 'rc_is 1 && has "took over"'
stop "$F5"
check "fencing: the second stops on SIGTERM, exit 0" rc_is 0

# ---- nothing listens -------------------------------------------------------------

start f6 MILVUSO_KAFKA_BROKERS=127.0.0.1:1 \
    MILVUSO_FEATURE_METRICS_FILE="$T/down.prom" -- feature
F6=$DP
sleep 12
OUT=$(cat "$T/f6.log")
check "no broker: still running after 12 s" eval 'kill -0 "$F6" 2>/dev/null'
check "no broker: logged" eval 'has "warn feature worker"'
check "no broker: rate-limited (at most 6 warnings in 12 s)" \
    eval '[ "$(grep -c " warn " "$T/f6.log")" -le 6 ]'
stop "$F6"
check "no broker: SIGTERM exit 0 within 15 s" rc_is 0

harness_finish
