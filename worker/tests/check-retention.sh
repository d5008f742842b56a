#!/usr/bin/env bash
# check-retention.sh WORKER_BINARY ACTLOG_TOOL -- the action log's retention
# end to end, without nginx: records appended with actlog_tool (the
# library's appender, 1 KiB segments) are trained on by milvuso-worker
# --worker-type all with worker.action_log_retention = 0, and
#
#   - segments every consumer has in a durable snapshot vanish, the
#     newest stays, the metrics count exactly the bytes that went, and
#     the trainer's registration sits in consumers/;
#   - every item's popularity in the snapshot is exactly its clicks
#     (Click = 1, no decay): trimming lost nothing;
#   - a second trainer (another snapshot directory) holds the log from
#     where it started while it runs, replays exactly what was left, and
#     once stopped for longer than the expiry (4 s) its registration
#     expires and the first trainer trims past it;
#   - kill -9 of the trainer, then a restart: it resumes from its snapshot
#     and the counts are exact again;
#   - an expired registration planted before the start is removed with a
#     warning; with the default retention (a day) nothing is removed.
#
# Output as check-daemon.sh ("ok - NAME" / "not ok - NAME", then "N passed,
# M failed"); everything in a mktemp directory removed on exit; every
# daemon started here is stopped by its pid.
set -euo pipefail

. "$(dirname "$0")/harness.sh"
if [ $# -ne 2 ] || [ ! -x "$2" ]; then
    echo "usage: $0 WORKER_BINARY ACTLOG_TOOL" >&2
    exit 2
fi
TOOL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
harness_init check-retention "$1"
LOG="$T/log"
trap harness_kill_all EXIT

# mkconf NAME SNAPSHOT_DIR [TOML LINES for [worker]...]: $T/NAME.toml
# (training.batch_size 20: the daemon checks whether to publish every 20
# records, so catching up publishes every publish_every records)
mkconf() {
    local name=$1 snap=$2 line
    shift 2
    {
        echo '[recommendation]'
        echo 'embedding_dim = 4'
        echo 'metric = "ip"'
        echo '[training]'
        echo 'replay_window = 1000'
        echo 'batch_size = 20'        # several publishes while catching up
        echo '[training.action_weights]'
        echo 'click = 1.0'
        echo '[worker]'
        echo "action_log = \"$LOG\""
        echo "snapshot_dir = \"$snap\""
        echo "metrics_file = \"$T/$name.prom\""
        echo 'poll_interval = 0.05'
        echo 'popularity_half_life = 0.0'
        echo 'keep_generations = 2'
        echo 'action_log_consumer_expiry = 4.0'
        echo 'log_level = "info"'
        for line in "$@"; do
            echo "$line"
        done
    } > "$T/$name.toml"
}

# append FIRST N: clicks FIRST .. FIRST+N-1 (user k % 10, item k % 6), their
# items in $T/clicks and "segment offset item" in $T/where
append() {
    local k
    for k in $(seq "$1" $(($1 + $2 - 1))); do
        echo "action {\"event_id\":\"e$k\",\"user_id\":\"user-$((k % 10))\",\"item_id\":\"item-$((k % 6))\",\"action_type\":\"Click\",\"timestamp\":\"2024-01-01T00:00:00Z\"}"
    done > "$T/batch"
    "$TOOL" append "$LOG" 1024 < "$T/batch" > "$T/batch.pos"
    sed -E 's/.*"item_id":"([^"]*)".*/\1/' "$T/batch" | tee -a "$T/clicks" \
        | paste -d ' ' "$T/batch.pos" - >> "$T/where"
}
# segments: the numbers of the segments present, one a line
segments() {
    ls "$LOG" 2>/dev/null | sed -nE 's/^actions-0*([0-9]+)\.log$/\1/p' \
        | sort -n
}
seg_bytes() {
    local s sum=0
    for s in "$@"; do
        sum=$((sum + $(stat -c %s "$LOG/$(printf 'actions-%020d.log' "$s")")))
    done
    echo "$sum"
}
log_end() {
    local last
    last=$(segments | tail -1)
    echo $(( (last << 40) | $(seg_bytes "$last") ))
}
# snap_pos SNAPDIR: the actlog offset current holds (empty: none)
snap_pos() {
    "$W" inspect "$1/current" 2>/dev/null \
        | sed -nE 's/^  actlog partition 0 offset ([0-9]+)$/\1/p'
}
# wait_caught_up SNAPDIR SECONDS: until current holds the whole log
wait_caught_up() {
    local i
    for i in $(seq $(($2 * 10))); do
        [ "$(snap_pos "$1")" = "$(log_end)" ] && return 0
        sleep 0.1
    done
    OUT="current at $(snap_pos "$1"), log end $(log_end)"
    return 1
}
# pops SNAPDIR: "item popularity" lines of current, sorted
pops() {
    "$W" inspect "$1/current" --all-items \
        | awk '/^items:$/ { f = 1; next } /^top popular:/ { f = 0 }
               f { print $1, $NF }' | sort
}
# want FILE: "item count" lines of the items listed in FILE, sorted
want() {
    sort "$1" | uniq -c | awk '{ print $2, $1 }' | sort
}
counts_exact() {
    if [ "$(pops "$1")" = "$(want "$2")" ]; then
        return 0
    fi
    OUT="snapshot: $(pops "$1" | tr '\n' ';') clicks: $(want "$2" | tr '\n' ';')"
    return 1
}
metric() {
    sed -n "s/^milvuso_worker_$2 //p" "$T/$1.prom" 2>/dev/null
}
# start NAME: the daemon on $T/NAME.toml, its log in $T/NAME.log
start() {
    "$W" --config "$T/$1.toml" --worker-type all --foreground \
        2>> "$T/$1.log" &
    DP=$!
    PIDS+=("$DP")
}
# stop PID SIGNAL: RC = its exit status (99: still running after 10 s)
stop() {
    kill "-$2" "$1" 2>/dev/null || true
    RC=0
    if gone_within "$1" 10; then
        wait "$1" 2>/dev/null || RC=$?   # no "Killed" line
    else
        RC=99
    fi
}

# ---- one trainer, retention 0 ---------------------------------------------------

mkdir -p "$LOG"
: > "$T/clicks"
: > "$T/where"
printf 'item {"item_id":"item-%d","embedding":[0.%d,0.2,0.3,0.4]}\n' \
    0 1 1 2 2 3 3 4 4 5 5 6 | "$TOOL" append "$LOG" 1024 > /dev/null
append 0 200
# a registration nobody updated for 10 s: expired at the first trim
"$TOOL" register "$LOG" ghost 1 10000
N0=$(segments | wc -l)
BEFORE=$(seg_bytes $(segments))
OUT="$N0 segments"
check "200 clicks in $N0 segments of 1 KiB" eval '[ "$N0" -ge 20 ]'

mkconf a "$T/snap-a" 'action_log_retention = 0.0' 'publish_every = 40' \
    'publish_interval = 0.3'
start a
A=$DP
OUT=""
wait_for "$T/a.log" "following action log .*\(consumer trainer-[0-9a-f]{8}\)" 10 \
    || OUT=$(cat "$T/a.log")
check "the start line names the consumer" eval '[ -z "$OUT" ]'
check "trainer A catches up within 30 s" wait_caught_up "$T/snap-a" 30
wait_for "$T/a.log" "removed [0-9]+ segment" 10 || true
OUT=$(cat "$T/a.log")
check "A logs what it removed" has "action log $LOG: removed [0-9]+ segment\(s\), [0-9]+ bytes; [0-9]+ segment\(s\), [0-9]+ bytes left"
check "the expired registration is removed with a warning" eval 'has "warn action log $LOG: 1 consumer registration\(s\) not updated for 4 s expired and were removed \(ghost first\)" && [ ! -e "$LOG/consumers/ghost" ]'
sleep 5.5          # the last trim is over; a metrics file is written
                   # every 5 s
N1=$(segments | wc -l)
OUT="segments: $(segments | tr '\n' ' ')"
check "old segments are gone ($N0 -> $N1), the newest stays" eval '[ "$N1" -lt "$N0" ] && [ "$(segments | head -1)" -gt 1 ] && [ "$(segments | tail -1)" -ge "$(tail -1 "$T/where" | cut -d " " -f 1)" ]'
REMOVED=$(metric a action_log_removed_bytes_total)
OUT="metrics: $REMOVED bytes, $(metric a action_log_removed_segments_total) segments; log $BEFORE -> $(seg_bytes $(segments))"
check "the metrics count exactly the bytes and segments removed" eval '[ "$REMOVED" = $((BEFORE - $(seg_bytes $(segments)))) ] && [ "$(metric a action_log_removed_segments_total)" = $((N0 - N1)) ]'
REG=$(ls "$LOG/consumers")
OUT="consumers: $REG"
check "A's registration is in consumers/, at a segment present" eval '[[ "$REG" =~ ^trainer-[0-9a-f]{8}$ ]] && seg=$(sed -nE "s/^position ([0-9]+) [0-9]+$/\1/p" "$LOG/consumers/$REG") && [ "$seg" -ge "$(segments | head -1)" ]'
check "every item's popularity is exactly its clicks" counts_exact "$T/snap-a" "$T/clicks"
U1=$(sed -nE 's/^updated_ms ([0-9]+)$/\1/p' "$LOG/consumers/$REG")
sleep 2.5
U2=$(sed -nE 's/^updated_ms ([0-9]+)$/\1/p' "$LOG/consumers/$REG")
OUT="updated_ms $U1 then $U2"
check "idle, A keeps its registration fresh" eval '[ "$U2" -gt "$U1" ]'

# ---- a second trainer holds the log while it runs ---------------------------------

LOW_B=$(segments | head -1)
mkconf b "$T/snap-b" 'action_log_retention = 0.0' 'publish_every = 0' \
    'publish_interval = 3600.0'
start b
B=$DP
OUT=""
wait_for "$T/b.log" "following action log" 10 || OUT=$(cat "$T/b.log")
check "trainer B starts on the same log" eval '[ -z "$OUT" ]'
RA=$(metric a action_log_removed_segments_total)
append 200 100
check "A catches up with 100 more clicks" wait_caught_up "$T/snap-a" 30
sleep 1
OUT="lowest segment $(segments | head -1), was $LOW_B; $(grep 'removed' "$T/a.log" | tail -1)"
check "B (at segment 0 until it publishes) holds every segment" eval '[ "$(segments | head -1)" = "$LOW_B" ]'
stop "$B" TERM
OUT=$(cat "$T/b.log")
check "B: SIGTERM publishes, exit 0" eval 'rc_is 0 && has "published generation"'
awk -v low="$LOW_B" '$1 >= low { print $3 }' "$T/where" > "$T/clicks-b"
check "B replayed exactly what was left of the log" counts_exact "$T/snap-b" "$T/clicks-b"
sleep 4.5          # B's registration expires (4 s)
append 300 60
check "A catches up again" wait_caught_up "$T/snap-a" 30
wait_for "$T/a.log" "registration\(s\) not updated for 4 s expired and were removed \(trainer-" 10 || true
OUT=$(cat "$T/a.log")
check "B's registration expired and is removed" eval 'has "expired and were removed \(trainer-" && [ "$(ls "$LOG/consumers" | wc -l)" = 1 ]'
OUT="lowest segment $(segments | head -1), was $LOW_B"
check "A trims past where B held it" eval '[ "$(segments | head -1)" -gt "$LOW_B" ]'
check "A's counts are still exact" counts_exact "$T/snap-a" "$T/clicks"

# ---- kill -9, restart --------------------------------------------------------------

append 360 150 &
APPENDER=$!
sleep "0.$((RANDOM % 5))"
stop "$A" KILL
wait "$APPENDER"
OUT="$RC"
check "kill -9 hit the running trainer" eval '[ "$RC" = 137 ]'
start a
A=$DP
check "the restarted trainer catches up within 30 s" wait_caught_up "$T/snap-a" 30
OUT=$(cat "$T/a.log")
check "it resumed from its snapshot, without a gap" eval '[ "$(grep -c "resumed from generation" "$T/a.log")" = 1 ] && ! has " error " && ! has "gone"'
check "after kill -9: every popularity exactly its clicks" counts_exact "$T/snap-a" "$T/clicks"
append 510 40
check "and after more clicks" eval 'wait_caught_up "$T/snap-a" 30 && counts_exact "$T/snap-a" "$T/clicks"'
sleep 5.5
OUT="skipped $(metric a skipped_bytes_total)"
check "nothing was skipped" eval '[ "$(metric a skipped_bytes_total)" = 0 ]'
stop "$A" TERM
check "SIGTERM: exit 0" rc_is 0

# ---- the default retention keeps a day -------------------------------------------------

N2=$(segments | wc -l)
mkconf d "$T/snap-a" 'publish_every = 40' 'publish_interval = 0.3'
start d
append 550 150
check "with the default retention the trainer catches up" wait_caught_up "$T/snap-a" 30
OUT="segments $N2 -> $(segments | wc -l); $(grep removed "$T/d.log" || true)"
check "and removes nothing (a day)" eval '[ "$(segments | wc -l)" -gt "$N2" ] && ! grep -q "removed [0-9]* segment" "$T/d.log"'
check "counts exact" counts_exact "$T/snap-a" "$T/clicks"
stop "$DP" TERM
check "SIGTERM: exit 0" rc_is 0

harness_finish
