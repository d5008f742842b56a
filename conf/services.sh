#!/usr/bin/env bash
# services.sh -- the real servers Milvuso talks to, started on 127.0.0.1
# for development and the test suites (`make services`,
# `make services-stop`, `make services-check`).  Today: Apache Kafka;
# Redis, PostgreSQL and Milvus join as their issues land.
#
#   services.sh start  --run DIR --worker BIN [--config FILE]
#   services.sh stop   --run DIR
#   services.sh status --run DIR
#   services.sh check  --run DIR --worker BIN [--config FILE]
#   services.sh restart --run DIR --worker BIN [--config FILE] [--kill]
#
# Kafka (KAFKA_VERSION, 4.1.1) is the real broker from Maven Central: its
# jars are fetched once into a cache outside the checkout
# ($MILVUSO_CACHE, default ~/.cache/milvuso), a fresh single-node KRaft
# data directory is formatted under DIR/kafka on every start (a stale one
# from another cluster id would refuse to start), the JVM runs in the
# background with its pid in DIR/kafka/kafka.pid, and the start returns
# once the broker answers metadata requests.  The listener is the first
# address of [kafka] brokers in the worker's configuration (it must be on
# 127.0.0.1; the controller listens on the next port), and the topics
# (log_topic, feature_topic, training_topic) are created with the
# configured partitions and replication by `milvuso-worker topics`.  The
# configuration is read through `milvuso-worker --print-config`, so
# MILVUSO_* variables apply.
#
# restart stops the broker (SIGTERM, or SIGKILL with --kill: a crash) and
# starts it again on the same data directory: the topics and their records
# survive, as on a production host (the fault suites use it).
#
# check starts everything, verifies each topic's partition count,
# produces a record and reads it back, stops, and checks that no process
# is left; it prints one "ok - " or "not ok - " line per check and a
# closing "N passed, M failed".
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
LOG4J_BINDING=org.apache.logging.log4j:log4j-slf4j-impl:2.24.3
CACHE=${MILVUSO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/milvuso}
JAVA=${JAVA:-java}
MVN=${MVN:-mvn}

cmd=${1:-}
shift || true
RUN=
WORKER=
CONFIG=
KILL=
KEEP_DATA=
while [ $# -gt 0 ]; do
    case "$1" in
        --run) RUN=$2; shift 2 ;;
        --worker) WORKER=$2; shift 2 ;;
        --config) CONFIG=$2; shift 2 ;;
        --kill) KILL=1; shift ;;
        *) echo "services: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -n "$RUN" ] || { echo "services: --run DIR is required" >&2; exit 2; }
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
KDIR=$RUN/kafka
LIBS=$CACHE/kafka-$KAFKA_VERSION/libs

say() { echo "services: $*"; }

# the pid in FILE when that process is alive
alive() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# ---- configuration ---------------------------------------------------------

# Reads the [kafka] keys of the effective configuration into K_* variables.
read_config() {
    [ -n "$WORKER" ] || { echo "services: --worker BIN is required" >&2; exit 2; }
    local args=(--print-config) text
    [ -n "$CONFIG" ] && args=(--config "$CONFIG" --print-config)
    text=$("$WORKER" "${args[@]}" | awk '
        /^\[/ { sect = $0 } sect == "[kafka]" && /^[a-z_]+ = / { print }')
    K_BROKERS=$(sed -n 's/^brokers = "\(.*\)"$/\1/p' <<<"$text")
    K_TOPICS=$(sed -n 's/^\(log\|feature\|training\)_topic = "\(.*\)"$/\2/p' <<<"$text")
    K_PARTITIONS=$(sed -n 's/^partitions = //p' <<<"$text")
    K_REPLICATION=$(sed -n 's/^replication = //p' <<<"$text")
    K_ADDR=${K_BROKERS%%,*}
    K_HOST=${K_ADDR%:*}
    K_PORT=${K_ADDR##*:}
    if [ "$K_HOST" != 127.0.0.1 ] || ! [[ "$K_PORT" =~ ^[0-9]+$ ]]; then
        echo "services: [kafka] brokers must start with 127.0.0.1:PORT to" \
             "start a broker here, not '$K_BROKERS'" >&2
        exit 1
    fi
    K_CPORT=$((K_PORT + 1))
}

# ---- Kafka -----------------------------------------------------------------

# Fetches the broker's jars into the cache (once).
kafka_jars() {
    [ -f "$LIBS/.complete" ] && return 0
    say "fetching Kafka $KAFKA_VERSION jars into $LIBS"
    local tmp
    tmp=$(mktemp -d)
    cat > "$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>milvuso</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>${LOG4J_BINDING%%:*}</groupId>
      <artifactId>$(cut -d: -f2 <<<"$LOG4J_BINDING")</artifactId>
      <version>${LOG4J_BINDING##*:}</version>
    </dependency>
  </dependencies>
</project>
EOF
    rm -rf "$LIBS.tmp"
    if ! "$MVN" -q -B -f "$tmp/pom.xml" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >&2; then
        rm -rf "$tmp" "$LIBS.tmp"
        echo "services: could not fetch the Kafka jars" >&2
        return 1
    fi
    rm -rf "$tmp" "$LIBS"
    mv "$LIBS.tmp" "$LIBS"
    touch "$LIBS/.complete"
}

kafka_files() {
    mkdir -p "$KDIR"
    cat > "$KDIR/log4j2.properties" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
EOF
    cat > "$KDIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$K_CPORT
listeners=PLAINTEXT://127.0.0.1:$K_PORT,CONTROLLER://127.0.0.1:$K_CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$K_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$KDIR/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
EOF
}

# Runs a Kafka tool class with the quiet log configuration.
kafka_tool() {
    "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$KDIR/log4j2.properties" \
        -cp "$LIBS/*" "$@"
}

kafka_ready() {
    kcat -b "127.0.0.1:$K_PORT" -L -m 2 >/dev/null 2>&1
}

kafka_start() {
    local pid id i
    if pid=$(alive "$KDIR/kafka.pid"); then
        say "kafka already runs (pid $pid) on 127.0.0.1:$K_PORT"
        return 0
    fi
    if kafka_ready; then
        echo "services: something already answers on 127.0.0.1:$K_PORT;" \
             "stop it or move [kafka] brokers" >&2
        return 1
    fi
    kafka_jars
    kafka_files
    if [ -z "$KEEP_DATA" ] || [ ! -f "$KDIR/data/meta.properties" ]; then
        rm -rf "$KDIR/data"
        id=$(kafka_tool kafka.tools.StorageTool random-uuid)
        kafka_tool kafka.tools.StorageTool format -t "$id" \
            -c "$KDIR/server.properties" >"$KDIR/format.log" 2>&1 \
            || { cat "$KDIR/format.log" >&2; return 1; }
    fi
    setsid "$JAVA" -Xms128m -Xmx256m -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$KDIR/log4j2.properties" \
        -cp "$LIBS/*" kafka.Kafka "$KDIR/server.properties" \
        </dev/null >"$KDIR/kafka.log" 2>&1 &
    echo $! > "$KDIR/kafka.pid"
    for i in $(seq 600); do
        kafka_ready && break
        if ! alive "$KDIR/kafka.pid" >/dev/null; then
            echo "services: the broker exited; its log:" >&2
            tail -30 "$KDIR/kafka.log" >&2
            return 1
        fi
        sleep 0.1
    done
    if ! kafka_ready; then
        echo "services: the broker does not answer after 60 s" >&2
        kafka_stop
        return 1
    fi
    # the worker creates them (librdkafka's admin API): no JVM per topic
    local args=(topics)
    [ -n "$CONFIG" ] && args+=(--config "$CONFIG")
    "$WORKER" "${args[@]}" >>"$KDIR/topics.log" 2>&1 \
        || { cat "$KDIR/topics.log" >&2; kafka_stop; return 1; }
    say "kafka $KAFKA_VERSION on 127.0.0.1:$K_PORT (pid $(cat "$KDIR/kafka.pid")),"\
        "topics $(echo $K_TOPICS) with $K_PARTITIONS partitions"
}

kafka_stop() {
    local pid i
    pid=$(alive "$KDIR/kafka.pid") || { rm -f "$KDIR/kafka.pid"; return 0; }
    kill -"${1:-TERM}" "$pid"
    for i in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "services: kafka (pid $pid) did not stop in 30 s; killed" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$KDIR/kafka.pid"
    say "kafka stopped"
}

# ---- check -----------------------------------------------------------------

PASS=0
FAIL=0
check() {
    local name=$1
    shift
    if "$@"; then
        echo "ok - $name"
        PASS=$((PASS + 1))
    else
        echo "not ok - $name"
        FAIL=$((FAIL + 1))
    fi
}

partitions_of() {
    kcat -b "127.0.0.1:$K_PORT" -L -t "$1" 2>/dev/null \
        | sed -n "s/^ *topic \"$1\" with \([0-9]*\) partitions:.*/\1/p"
}

round_trip() {
    local topic=$1 value
    value="check-$$-$RANDOM"
    printf 'user-1:%s\n' "$value" \
        | kcat -b "127.0.0.1:$K_PORT" -P -t "$topic" -K: >/dev/null 2>&1 \
        || return 1
    kcat -b "127.0.0.1:$K_PORT" -C -t "$topic" -o beginning -e -q \
        -f '%k:%s\n' 2>/dev/null | grep -qx "user-1:$value"
}

run_check() {
    local pid
    read_config
    check "services start" services_start
    pid=$(alive "$KDIR/kafka.pid" || true)
    check "the broker answers on 127.0.0.1:$K_PORT" kafka_ready
    for t in $K_TOPICS; do
        check "topic $t has $K_PARTITIONS partitions" \
            test "$(partitions_of "$t")" = "$K_PARTITIONS"
    done
    check "a keyed record goes through $(set -- $K_TOPICS; echo "$1")" \
        round_trip "$(set -- $K_TOPICS; echo "$1")"
    check "a second start is a no-op" services_start
    check "services stop" services_stop
    check "no broker process is left" test -z "$pid" -o ! -d "/proc/$pid"
    check "nothing answers any more" bash -c "! kcat -b 127.0.0.1:$K_PORT -L -m 1 >/dev/null 2>&1"
    check "a stop with nothing running is fine" services_stop
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}

services_start() { kafka_start; }
services_stop() { kafka_stop; }

case "$cmd" in
    start) read_config; services_start ;;
    stop) services_stop ;;
    status)
        if pid=$(alive "$KDIR/kafka.pid"); then
            say "kafka runs (pid $pid)"
        else
            say "kafka does not run"
        fi ;;
    check) run_check ;;
    restart)
        read_config
        kafka_stop "${KILL:+KILL}"
        KEEP_DATA=1 services_start ;;
    *) echo "usage: services.sh start|stop|status|check|restart --run DIR" \
            "[--worker BIN] [--config FILE]" >&2; exit 2 ;;
esac
