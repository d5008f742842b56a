# The action log as Kafka's fallback, against the real broker `make
# services-suites` starts: nginx with milvuso_kafka and milvuso_action_log
# together, and what Kafka definitely did not take spooled to the log,
# answered 202 and applied once, then drained into Kafka by
# `milvuso-worker --worker-type drain` once the broker is back, and
# learnt by the trainer (on Kafka) exactly once:
#
#   1. nginx -t accepts both directives; /health shows both enabled;
#   2. the broker stopped, ack=on timeout=1s, sync=on (the appends in
#      nginx's thread pool): every POST /actions is answered 202 once its
#      delivery report failed (the record never reached Kafka) and is in
#      the zone at once (the new users' recommendations come from their
#      profile); /health and /metrics count them spooled; the broker back
#      and the drain started: the trainer learns each once (its actions
#      count and every item's popularity = the seed's + the accepted
#      Clicks, exactly);
#   3. the broker stopped, ack=off timeout=1s: 202 at once, applied; the
#      delivery reports that fail a second later spool the records from
#      the report; back: drained, learnt once;
#   4. the broker up, ack=off, a producer queue of one record and a long
#      linger: the second write finds the queue full and is spooled at
#      once; both reach the trainer once (one through Kafka, one through
#      the drain).
#
# Blocks 2 and 3 stop the broker, so they need the one `make
# services-suites` started (MILVUSO_SERVICES_RUN); against another broker
# they are skipped, saying so.  The trainer and the drain run from block 2
# to the end, so each count includes the blocks before it.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/../lib";
use MilvusoTest;

our ($B, $ACT, $ITM) = kafka_topics('d', 2);

MilvusoTest::init();
no_shuffle();
listen_loopback();

our $DIR = tmpdir();
our $SNAPS = "$DIR/snaps";
$ENV{TEST_NGINX_SNAPDIR} = $SNAPS;
$ENV{TEST_NGINX_LOGDIR} = "$DIR/log";
our $RUN = $ENV{MILVUSO_SERVICES_RUN} // '';
our $OWN_BROKER = $RUN && -s "$RUN/kafka/kafka.pid";

our $DIM = 8;
our @ITEMS = map { sprintf 'item-%06d', $_ } 0 .. 9;
our ($W, $D, %EXPECT, $ACCEPTED);

our $http_config = <<'_EOC_';
    milvuso_zone       milvuso:8m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current check=100ms;
    milvuso_kafka      brokers=$TEST_NGINX_KBROKERS topic=$TEST_NGINX_KACT
                       items_topic=$TEST_NGINX_KITM ack=on timeout=1s
                       linger.ms=1;
    milvuso_action_log $TEST_NGINX_LOGDIR segment=64k sync=on;
    milvuso_cache_ttl  0;
_EOC_

our $config = <<'_EOC_';
    location = /actions        { milvuso_actions; }
    location = /health         { milvuso_health; }
    location = /metrics        { milvuso_metrics; }
    location /recommendations/ { milvuso_recommend; }
_EOC_

# The trainer (on Kafka) and the drain (on the log nginx spools to) share
# one configuration, as on an nginx host.
sub worker_config {
    return kafka_worker_config($DIR, $DIM, $SNAPS, "d_group_$$",
        drain => { commit_interval => 0.2, metrics_file => "$DIR/drain.prom" },
        worker => { action_log => "$DIR/log" });
}

sub snap { return snapshot_items($SNAPS) }

sub health { return json_decode(http_get('/health')->{content} // '') // {} }

# Posts N Clicks by users PREFIX-K on items K % 10; returns the statuses.
sub post_clicks {
    my ($prefix, $n) = @_;
    my @st;
    for my $k (0 .. $n - 1) {
        my $r = http_post('/actions', actions_json("$prefix-$k",
                                                   $ITEMS[$k % 10], 'Click'));
        push @st, $r->{status};
        Test::More::note("$prefix-$k: $r->{status} $r->{content}")
            if $r->{status} != 202;
        if ($r->{status} == 202) { $EXPECT{ $ITEMS[$k % 10] }++; $ACCEPTED++ }
    }
    return @st;
}

# Waits (at most SECONDS) until the trainer applied exactly the actions
# accepted so far, then checks every item's popularity.
sub counts_exact {
    my ($name, $seconds) = @_;
    my $ok = wait_for($seconds, sub {
        my $m = read_metrics("$DIR/worker.prom");
        my $s = snap();
        return ($m->{milvuso_worker_actions_total} // 0) >= $ACCEPTED
               && $s && ($m->{milvuso_worker_pending_records} // 1) == 0;
    });
    my $m = read_metrics("$DIR/worker.prom");
    is($m->{milvuso_worker_actions_total}, $ACCEPTED,
       "$name - the trainer applied exactly the $ACCEPTED actions accepted")
        or return diag(file_text("$DIR/worker.log") . file_text("$DIR/drain.log"));
    my $now = pops(snap());
    my @bad = map { "$_: " . ($now->{$_} // 'missing') . " instead of $EXPECT{$_}" }
              grep { abs(($now->{$_} // -1e9) - $EXPECT{$_}) > 0.01 }
              sort keys %EXPECT;
    is(join("\n", @bad), '', "$name - every item's popularity = the seed's "
       . '+ its Clicks answered 202, exactly');
}

sub start_all {
    my $j = snap();
    %EXPECT = %{ pops($j) };
    $ACCEPTED = 0;
    $W = start_worker(config => worker_config(), out => "$DIR/worker.log");
    $D = start_worker(config => worker_config(), out => "$DIR/drain.log",
                      type => 'drain');
    ok(wait_for(20, sub {
        (read_metrics("$DIR/drain.prom")->{milvuso_drain_phase} // 0) == 2 }),
       'the drain runs') or diag(file_text("$DIR/drain.log"));
}

# ---- blocks 2 and 3: the broker stopped ---------------------------------------

sub broker_stopped {
    my ($name, $prefix, $n, $immediate) = @_;
    SKIP: {
        skip "$name: the broker is not the suite's own (MILVUSO_SERVICES_RUN)", 9
            unless $OWN_BROKER;
        my $before = health()->{kafka}{spooled} // 0;
        ok(services($RUN, 'stop'), "$name - the broker stopped");
        my $t0 = Time::HiRes::time();
        my @st = post_clicks($prefix, $n);
        my $took = Time::HiRes::time() - $t0;
        is(join(',', @st), join(',', (202) x $n), "$name - every write 202");
        ok($immediate ? $took < 2 : $took >= $n * 0.9,
           sprintf("$name - answered %s (%.1f s for $n)",
                   $immediate ? 'at once' : 'after its delivery report', $took));
        my $r = http_get("/recommendations/$prefix-0?num_recommendations=3");
        like($r->{content} // '', qr/"source":"profile"/,
             "$name - applied to the zone: a new user's list comes from its profile");
        ok(wait_for(10, sub { (health()->{kafka}{spooled} // 0) - $before == $n }),
           "$name - /health counts $n spooled");
        like(http_get('/metrics')->{content} // '',
             qr/milvuso_kafka_records_total\{outcome="spooled"\} \d+/,
             "$name - /metrics counts them");
        ok(services($RUN, 'restart'), "$name - the broker started on its data");
        ok(wait_for(60, sub {
            (read_metrics("$DIR/drain.prom")->{milvuso_drain_pending_records} // 1) == 0
            && read_metrics("$DIR/drain.prom")->{milvuso_drain_actions_total} // 0 }),
           "$name - drained") or diag(file_text("$DIR/drain.log"));
        counts_exact($name, 60);
    }
}

# ---- block 4: the producer's queue full ---------------------------------------

sub queue_full {
    my $name = 'queue full';
    my $before = health()->{kafka}{spooled} // 0;
    my @st = post_clicks('q', 2);
    is(join(',', @st), '202,202', "$name - both writes 202");
    is((health()->{kafka}{spooled} // 0) - $before, 1,
       "$name - the second one spooled at once");
    counts_exact($name, 60);
    is(how_ended(stop_worker($D, 'TERM', 15)), 'exit 0',
       'the drain stops on SIGTERM with status 0');
    is(how_ended(stop_worker($W, 'TERM', 15)), 'exit 0',
       'the trainer stops on SIGTERM with status 0');
}

run_tests();

__DATA__

=== TEST 1: nginx -t accepts milvuso_kafka with milvuso_action_log
--- request
GET /health
--- response_body_like: "action_log":\{"enabled":true.*"kafka":\{"enabled":true,"ack":true.*"spooled":0
--- no_error_log
[alert]



=== TEST 2: the broker stopped, ack=on: spooled, 202, applied; back: drained, learnt once
--- setup
snapshot(out => $::SNAPS, synthetic => 10, dim => $::DIM, metric => 'ip',
         users => 5, categories => 3);
--- request
GET /health
--- response_body_like: "kafka":\{"enabled":true,"ack":true
--- no_error_log
[alert]
--- after
::start_all();
::broker_stopped('ack=on', 'on', 6, 0);



=== TEST 3: the broker stopped, ack=off: 202 at once, spooled from the delivery report
--- http_config eval
$::http_config =~ s/ack=on timeout=1s\s+linger.ms=1/ack=off timeout=1s/r
--- request
GET /health
--- response_body_like: "kafka":\{"enabled":true,"ack":false
--- no_error_log
[alert]
--- after
::broker_stopped('ack=off', 'off', 6, 1);



=== TEST 4: the producer's queue full: the record spooled at once
--- http_config eval
$::http_config =~ s/ack=on timeout=1s\s+linger.ms=1/ack=off linger.ms=3000 queue.buffering.max.messages=1/r
--- request
GET /health
--- response_body_like: "kafka":\{"enabled":true,"ack":false
--- no_error_log
[alert]
--- after
::queue_full();
