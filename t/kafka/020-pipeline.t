# The whole pipeline on the real broker (MILVUSO_KAFKA_BROKERS; skipped,
# saying so, without it): POST /items and /actions through nginx with
# milvuso_kafka ack=on -> the topics -> the trainer (milvuso-worker with
# [kafka] enabled) -> a published snapshot -> nginx swaps to it (check=) ->
# the users' recommendations come from the model that learned them.
# Exact counts: the published positions equal the records answered 202,
# per topic, and the snapshot holds each new user and item once.
#
# Topics and group are named after this run's pid and created here.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/../lib";
use MilvusoTest;

our ($B, $ACT, $ITM) = kafka_topics('p', 3);

MilvusoTest::init();
no_shuffle();
listen_loopback();

our $DIR = tmpdir();
our $SNAPS = "$DIR/snaps";
$ENV{TEST_NGINX_SNAPDIR} = $SNAPS;

our $DIM = 8;
our $N_SEED_ITEMS = 20;
our $N_SEED_USERS = 5;
our $W;

our $http_config = <<'_EOC_';
    milvuso_zone      milvuso:8m;
    milvuso_snapshot  $TEST_NGINX_SNAPDIR/current check=100ms;
    milvuso_kafka     brokers=$TEST_NGINX_KBROKERS topic=$TEST_NGINX_KACT
                      items_topic=$TEST_NGINX_KITM ack=on linger.ms=1;
    milvuso_cache_ttl 0;
    milvuso_profile   weight=0;
_EOC_

our $config = <<'_EOC_';
    location = /actions        { milvuso_actions; }
    location = /items          { milvuso_items; }
    location = /health         { milvuso_health; }
    location /recommendations/ { milvuso_recommend; }
_EOC_

sub worker_config {
    return kafka_worker_config($DIR, $DIM, $SNAPS, "p_group_$$",
        worker => { publish_interval => 0.3, publish_every => 1000 });
}

sub offsets { return stream_offsets(@_) }

sub pipeline {
    my @answers;
    my $vec = join ',', map { $_ == 0 ? 1 : 0 } 0 .. $DIM - 1;
    push @answers, http_post('/items', qq({"item_id":"p-new","embedding":[$vec],"category":"c0"}));
    my $n_actions = 0;
    for my $u (1 .. 3) {
        for my $i (0 .. 9) {
            my $item = $i % 2 ? 'p-new' : sprintf('item-%06d', $i);
            push @answers, http_post('/actions',
                                     actions_json("p-user-$u", $item, 'Click'));
            $n_actions++;
        }
    }
    is(scalar(grep { $_->{status} == 202 } @answers), $n_actions + 1,
       'every write answered 202');

    my $j = wait_for(30, sub {
        my $s = eval { inspect("$SNAPS/current", '--all-items') };
        return ($s && offsets($s, $ACT) == $n_actions
                && offsets($s, $ITM) == 1) ? $s : undef;
    });
    ok($j, 'a published snapshot holds exactly the records answered 202');
    return unless $j;
    is(offsets($j, $ACT), $n_actions, "positions: $n_actions actions");
    is(offsets($j, $ITM), 1, 'positions: 1 item');
    is($j->{counts}{users}, $N_SEED_USERS + 3, 'the three new users, once each');
    is($j->{counts}{items}, $N_SEED_ITEMS + 1, 'the new item, once');
    my @new = grep { $_->{id} eq 'p-new' } @{ $j->{items} // [] };
    is(scalar @new, 1, 'the posted item is in the model once');

    my $gen = $j->{generation};
    my $h = wait_for(10, sub {
        my $x = json_decode(http_get('/health')->{content} // '') // {};
        return ($x->{model_generation} // 0) >= $gen ? $x : undef;
    });
    ok($h, "nginx serves generation $gen or later");

    my $r = json_decode(http_get('/recommendations/p-user-1?num_recommendations=5')->{content} // '') // {};
    is($r->{source}, 'index', 'p-user-1 is answered from its learned vector');
    ok(($r->{model_generation} // 0) >= $gen, 'from the new model');

    my $st = stop_worker($::W, 'TERM', 15);
    is($st, 0, 'the trainer stops on SIGTERM with status 0');
}

run_tests();

__DATA__

=== TEST 1: POST through nginx -> Kafka -> trainer -> snapshot -> nginx
--- setup
snapshot(out => $::SNAPS, synthetic => $::N_SEED_ITEMS, dim => $::DIM,
         metric => 'ip', users => $::N_SEED_USERS, categories => 3);
$::W = start_worker(config => ::worker_config(), out => "$::DIR/worker.log");
--- request
GET /health
--- response_body_like: ^\{"status":"ok","model_generation":1,
--- no_error_log
[alert]
--- after
::pipeline();
