# milvuso_kafka against the real Apache Kafka broker that `make
# services-suites` starts (MILVUSO_KAFKA_BROKERS names it; without it the
# file skips, saying so): what nginx -t refuses, records on the topics
# (key, canonical value, the answered event id), ack=on waiting for the
# delivery report, a topic that does not exist and a broker that is down
# answering 503 with nothing applied, ack=off answering at once, and the
# counters in /health and /metrics.  End to end with the trainer: what
# nginx produced is trained on and served back.
#
# Topics are named after this run's pid and created here with
# `milvuso-worker topics`, so runs never see each other's records.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/../lib";
use MilvusoTest;
use Time::HiRes ();

our ($B, $ACT, $ITM) = kafka_topics('t', 2);

MilvusoTest::init();
no_shuffle();
listen_loopback();

our $DIR = tmpdir();
$ENV{TEST_NGINX_SNAPDIR} = "$DIR/snaps";

# The records of TOPIC as [key, value] in partition order.
sub records {
    my $topic = shift;
    my @out = `kcat -C -b $B -t $topic -o beginning -e -q -f '%k\\t%s\\n' 2>&1`;
    chomp @out;
    return map { [split /\t/, $_, 2] } grep { length } @out;
}

our $http_config = <<'_EOC_';
    milvuso_zone   milvuso:4m;
    milvuso_dim    4;
    milvuso_kafka  brokers=$TEST_NGINX_KBROKERS topic=$TEST_NGINX_KACT
                   items_topic=$TEST_NGINX_KITM ack=on timeout=5s
                   linger.ms=1;
_EOC_

our $config = <<'_EOC_';
    location = /actions        { milvuso_actions; }
    location = /items          { milvuso_items; }
    location = /health         { milvuso_health; }
    location = /metrics        { milvuso_metrics; }
    location /recommendations/ {
        milvuso_recommend;
        add_header X-Milvuso-Source $milvuso_source always;
    }
_EOC_

run_tests();

__DATA__

=== TEST 1: nginx -t: brokers= is required
--- http_config
    milvuso_zone  milvuso:4m;
    milvuso_kafka topic=a;
--- config
--- must_die
--- error_log
"milvuso_kafka" directive needs brokers=HOST:PORT[,...]



=== TEST 2: nginx -t: acks cannot be weakened
--- http_config
    milvuso_zone  milvuso:4m;
    milvuso_kafka brokers=127.0.0.1:9 acks=0;
--- config
--- must_die
--- error_log
the property "acks" is set by milvuso_kafka itself



=== TEST 3: nginx -t: librdkafka validates every property
--- http_config
    milvuso_zone  milvuso:4m;
    milvuso_kafka brokers=127.0.0.1:9 linger.ms=abc;
--- config
--- must_die
--- error_log
milvuso_kafka: "linger.ms=abc": Invalid value



=== TEST 4.1: nginx -t: an unknown property
--- http_config
    milvuso_zone  milvuso:4m;
    milvuso_kafka brokers=127.0.0.1:9 no.such.thing=1;
--- config
--- must_die
--- error_log
No such configuration property: "no.such.thing"



=== TEST 4.2: nginx -t: a bad parameter
--- http_config
    milvuso_zone  milvuso:4m;
    milvuso_kafka brokers=127.0.0.1:9 ack=maybe;
--- config
--- must_die
--- error_log
invalid parameter "ack=maybe"



=== TEST 4.3: nginx -t: a duplicate
--- http_config
    milvuso_zone  milvuso:4m;
    milvuso_kafka brokers=127.0.0.1:9;
    milvuso_kafka brokers=127.0.0.1:9;
--- config
--- must_die
--- error_log
"milvuso_kafka" directive is duplicate



=== TEST 4.4: nginx -t: a topic name over 39 bytes
--- http_config
    milvuso_zone  milvuso:4m;
    milvuso_kafka brokers=127.0.0.1:9 topic=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx;
--- config
--- must_die
--- error_log
has a topic name longer than 39 bytes



=== TEST 4.5: nginx -t: one topic for both
--- http_config
    milvuso_zone  milvuso:4m;
    milvuso_kafka brokers=127.0.0.1:9 topic=a items_topic=a;
--- config
--- must_die
--- error_log
needs two different topics



=== TEST 5: ack=on: actions and an item are on their topics, keyed, canonical, with the answered ids; counted
--- request eval
["POST /actions\n" . actions_json('kuser-1', 'item-a', 'Click'),
 "POST /actions\n" . actions_json('kuser-2', 'item-b', 'View'),
 "POST /actions\n" . actions_json('kuser-1', 'item-c', 'Purchase'),
 "POST /items\n" . '{"item_id":"kitem-9","embedding":[1,0,0,0],"category":"books"}',
 "GET /health"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 202, 202, 200]
--- after
my @b = map { json_decode($_) } bodies();
my @acts = records($::ACT);
is(scalar @acts, 3, 'three action records');
my %by_id = map { json_decode($_->[1])->{event_id} => $_ } @acts;
for my $i (0 .. 2) {
    my $rec = $by_id{$b[$i]{event_id}};
    ok($rec, "answered event $i is on the topic");
    is($rec->[0], ('kuser-1', 'kuser-2', 'kuser-1')[$i], "key of $i is the user");
}
like($by_id{$b[0]{event_id}}[1],
     qr/^\{"event_id":"[^"]+","user_id":"kuser-1","item_id":"item-a","action_type":"Click","timestamp":"[^"]+"\}$/,
     'value is the canonical payload');
my @items = records($::ITM);
is(scalar @items, 1, 'one item record');
is($items[0][0], 'kitem-9', 'keyed by item id');
is(json_decode($items[0][1])->{event_id}, $b[3]{event_id}, 'the answered item id');
my $h = $b[4];
is($h->{kafka}{enabled}, JSON::PP::true, 'health: kafka enabled');
is($h->{kafka}{queued}, 4, 'health: 4 queued');
is($h->{kafka}{delivered}, 4, 'health: 4 delivered');
is($h->{kafka}{failed}, 0, 'health: none failed');
is($h->{profiles}, 2, 'both users have a profile (applied once delivered)');
is($h->{fresh_items}, 1, 'the item is fresh in the zone');



=== TEST 6: ack=on to a topic that does not exist: 503 stream_unavailable, nothing applied, counted
--- http_config
    milvuso_zone   milvuso:4m;
    milvuso_dim    4;
    milvuso_kafka  brokers=$TEST_NGINX_KBROKERS topic=t_no_such_topic
                   items_topic=$TEST_NGINX_KITM ack=on timeout=1500ms;
--- request eval
["POST /actions\n" . actions_json('kuser-3', 'item-a', 'Click'),
 "GET /health", "GET /metrics"]
--- more_headers
Content-Type: application/json
--- error_code eval
[503, 200, 200]
--- no_error_log
[alert]
--- after
open(my $fh, '<', $Test::Nginx::Util::ErrLogFile) or die;
my $log = do { local $/; <$fh> };
like($log, qr/milvuso: topic "t_no_such_topic": Kafka did not confirm the record/,
     'the failure is logged with its topic');
my @b = bodies();
my $e = json_decode($b[0]);
is($e->{error}, 'stream_unavailable', 'error code');
like($e->{detail}, qr/was not applied and may be posted again/, 'detail says nothing was applied');
my $h = json_decode($b[1]);
is($h->{profiles}, 0, 'no profile: nothing applied');
is($h->{kafka}{failed}, 1, 'one failed');
like($b[2], qr/^milvuso_kafka_records_total\{outcome="failed"\} 1$/m, 'metrics: failed 1');



=== TEST 7: ack=on with no broker listening: 503 within the timeout
--- http_config
    milvuso_zone   milvuso:4m;
    milvuso_kafka  brokers=127.0.0.1:1 ack=on timeout=1s;
--- request eval
"POST /actions\n" . actions_json('kuser-4', 'item-a', 'Click')
--- more_headers
Content-Type: application/json
--- error_code: 503
--- response_body_like: "error":"stream_unavailable"
--- error_log
milvuso: Kafka:



=== TEST 8: ack=off: answered at once while the broker is away; queued, not delivered
--- http_config
    milvuso_zone   milvuso:4m;
    milvuso_kafka  brokers=127.0.0.1:1 ack=off timeout=1s;
--- request eval
["POST /actions\n" . actions_json('kuser-5', 'item-a', 'Click'), "GET /health"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200]
--- no_error_log
[alert]
--- after
my $h = json_decode((bodies())[1]);
is($h->{kafka}{queued}, 1, 'queued');
is($h->{kafka}{delivered}, 0, 'not delivered');
is($h->{kafka}{ack}, JSON::PP::false, 'ack=off');
is($h->{profiles}, 1, 'applied at once');



=== TEST 9: ack=off, the broker away: stopping nginx waits for the bounded flush (5 s), not the message timeout (300 s), and logs the loss
--- http_config
    milvuso_zone   milvuso:4m;
    milvuso_kafka  brokers=127.0.0.1:1 ack=off;
--- request eval
["POST /actions\n" . actions_json('kuser-6', 'item-a', 'Click'), "GET /health"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200]
--- no_error_log
[alert]
--- after
# (not under valgrind: there nginx runs as one process, slowed many times)
return Test::More::note('skipped under valgrind') if $ENV{TEST_NGINX_USE_VALGRIND};
my $master = file_text($Test::Nginx::Util::PidFile) =~ /(\d+)/ ? $1 : 0;
ok($master && kill('QUIT', $master), 'nginx told to quit');
ok(wait_for(20, sub { !kill(0, $master) }),
   'nginx is gone within 20 s (the flush takes 5)');
like(file_text($Test::Nginx::Util::ErrLogFile),
     qr/1 Kafka record\(s\) still undelivered after 5000 ms at exit: they are lost/,
     'the lost record is logged');
