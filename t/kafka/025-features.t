# The whole pipeline with the feature worker, on the real broker
# (MILVUSO_KAFKA_BROKERS; skipped, saying so, without it): POST /items and
# /actions through nginx (milvuso_kafka ack=on) -> user_actions and
# features -> the feature worker (--worker-type feature) joins each action
# with its item's features into training_examples, in transactions -> the
# trainer ([kafka] trainer_input = "examples", read_committed) -> a
# published snapshot -> nginx swaps to it -> the users' recommendations
# come from the model that learned them.
#
# While nginx takes writes, the feature worker is killed with SIGKILL
# twice (each time with a transaction open, most likely) and the trainer
# once, each restarted.  Exact count afterwards: every item's popularity
# in the trainer's snapshot = the seed's + its Clicks answered 202 (each
# action reached the model once: an aborted transaction's examples never,
# the examples joined again after a restart once), every new user once.
#
# Topics and groups are named after this run's pid and created here.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/../lib";
use MilvusoTest;

our ($B, $ACT, $ITM) = kafka_topics('e', 3);
our $EXAMPLES = "e_examples_$$";
our $COUNTS = "e_counts_$$";

MilvusoTest::init();
no_shuffle();
listen_loopback();

our $SEED = $ENV{TEST_MILVUSO_SEED} // (time ^ ($$ << 8)) % 1000000;
Test::More::note("seed $SEED (TEST_MILVUSO_SEED=$SEED repeats the choices)");

our $DIR = tmpdir();
our $SNAPS = "$DIR/snaps";
$ENV{TEST_NGINX_SNAPDIR} = $SNAPS;

our $DIM = 8;
our $N_SEED_ITEMS = 20;
our $N_SEED_USERS = 5;
our @ITEMS = ((map { sprintf 'item-%06d', $_ } 0 .. $N_SEED_ITEMS - 1),
              'e-new');
our ($T, $F);

our $http_config = <<'_EOC_';
    milvuso_zone      milvuso:8m;
    milvuso_snapshot  $TEST_NGINX_SNAPDIR/current check=100ms;
    milvuso_kafka     brokers=$TEST_NGINX_KBROKERS topic=$TEST_NGINX_KACT
                      items_topic=$TEST_NGINX_KITM ack=on timeout=30s
                      linger.ms=1;
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
    return kafka_worker_config($DIR, $DIM, $SNAPS, "e_trainer_$$",
        kafka => { training_topic => $EXAMPLES, trainer_input => 'examples' },
        feature => {
            group_id => "e_feature_$$", popularity_topic => $COUNTS,
            commit_interval => 0.2, commit_records => 50,
            metrics_file => "$DIR/feature.prom",
        },
        worker => { publish_interval => 0.2, publish_every => 50 });
}

sub start_feature {
    return start_worker(config => worker_config(), type => 'feature',
                        out => "$DIR/feature.log");
}

sub start_trainer {
    return start_worker(config => worker_config(), type => 'trainer',
                        out => "$DIR/trainer.log");
}

sub snap { return snapshot_items($SNAPS) }

sub lines_of { return () = file_text(shift) =~ /\n/g }

sub pipeline {
    srand $SEED;
    my $j0 = snap();
    ok($j0, 'the seed snapshot opens') or return;
    my %expect = %{ pops($j0) };

    my $vec = join ',', map { $_ == 0 ? 1 : 0 } 0 .. $DIM - 1;
    my $r = http_post('/items', qq({"item_id":"e-new","embedding":[$vec],)
                                . qq("category":"c9","tags":["fresh"]}));
    is($r->{status}, 202, 'POST /items e-new: 202');

    # 600 Clicks by 40 new users, e-new among the items
    my $n = 600;
    open my $fh, '>', "$DIR/plan" or die "$DIR/plan: $!";
    my %users;
    for (1 .. $n) {
        my $u = sprintf 'e-user-%02d', int rand 40;
        $users{$u} = 1;
        printf $fh "%s %s Click\n", $u, $ITEMS[int rand @ITEMS];
    }
    close $fh or die "$DIR/plan: $!";
    my $poster = start_poster("$DIR/plan", "$DIR/posted", pace => 0.15);

    my @faults = ([0.2, 'feature'], [0.45, 'trainer'], [0.7, 'feature']);
    for my $f (@faults) {
        my ($at, $who) = ($f->[0] * $n, $f->[1]);
        wait_for(60, sub { lines_of("$DIR/posted") >= $at });
        if ($who eq 'feature') {
            # a worker past its start, that has committed examples
            ok(wait_for(30, sub {
                my $m = read_metrics("$DIR/feature.prom");
                return ($m->{milvuso_feature_phase} // 0) == 2
                       && ($m->{milvuso_feature_examples_total} // 0) > 0;
            }), 'the feature worker joins');
            is(how_ended(stop_worker($F, 'KILL', 5)), 'signal 9',
               "the feature worker SIGKILLed after "
               . lines_of("$DIR/posted") . " posts");
            unlink "$DIR/feature.prom";
            $F = start_feature();
        } else {
            is(how_ended(stop_worker($T, 'KILL', 5)), 'signal 9',
               "the trainer SIGKILLed after " . lines_of("$DIR/posted")
               . " posts");
            $T = start_trainer();
        }
    }
    is(how_ended(stop_worker($poster, undef, 90)), 'exit 0',
       'the poster finished');
    my @lines = split /\n/, file_text("$DIR/posted");
    my $ok = 0;
    for (@lines) {
        if (/^202 \S+ (\S+) Click$/) { $expect{$1}++; $ok++ }
    }
    is(scalar @lines, $n, "$n answers");
    is($ok, $n, 'every one 202') or diag(join "\n", grep { !/^202 / } @lines[0 .. 9]);

    # every item's popularity exactly (the seed's are fractions, stored
    # as floats): each action reached the model once
    my $off = sub {
        my $p = pops(shift);
        return grep { abs(($p->{$_} // -1e9) - $expect{$_}) > 0.01 } sort keys %expect;
    };
    my $j = wait_for(60, sub {
        my $s = snap();
        return $s && !$off->($s) ? $s : undef;
    });
    ok($j, "a snapshot holds every item's popularity = the seed's + its "
       . 'Clicks answered 202, exactly (none lost, none twice)')
        or do {
            my $s = snap() // {};
            my $p = pops($s);
            diag(join "\n", map { "$_: " . ($p->{$_} // 'missing')
                                  . " instead of $expect{$_}" } $off->($s));
            diag(file_text("$DIR/feature.log"));
            return;
        };
    is($j->{counts}{users}, $N_SEED_USERS + scalar(keys %users),
       'the new users, once each');
    is($j->{counts}{items}, $N_SEED_ITEMS + 1, 'the new item, once');
    my ($new) = grep { $_->{id} eq 'e-new' } @{ $j->{items} // [] };
    is($new && $new->{category}, 'c9', "e-new has the category posted");
    ok(!grep({ $_->{stream} eq $ACT } @{ $j->{positions} // [] }),
       'the trainer read the training examples, not user_actions');

    # the feature worker said what it did; what it refused: nothing
    my $fm = read_metrics("$DIR/feature.prom");
    ok(%$fm, 'the feature worker writes its metrics file');
    is(($fm->{milvuso_feature_invalid_records_total} // -1)
       + ($fm->{milvuso_feature_invalid_items_total} // -1), 0,
       'the feature worker refused no record');

    my $gen = $j->{generation};
    my $h = wait_for(10, sub {
        my $x = json_decode(http_get('/health')->{content} // '') // {};
        return ($x->{model_generation} // 0) >= $gen ? $x : undef;
    });
    ok($h, "nginx serves generation $gen or later");
    my ($u) = sort keys %users;
    my $rec = json_decode(http_get("/recommendations/$u?num_recommendations=5")->{content} // '') // {};
    is($rec->{source}, 'index', "$u is answered from its learned vector");
    ok(($rec->{model_generation} // 0) >= $gen, 'from the new model');

    is(how_ended(stop_worker($F, 'TERM', 15)), 'exit 0',
       'the feature worker stops on SIGTERM with status 0');
    is(how_ended(stop_worker($T, 'TERM', 15)), 'exit 0',
       'the trainer stops on SIGTERM with status 0');
}

run_tests();

__DATA__

=== TEST 1: nginx -> Kafka -> feature worker -> trainer -> snapshot -> nginx, kill -9 on the way
--- setup
snapshot(out => $::SNAPS, synthetic => $::N_SEED_ITEMS, dim => $::DIM,
         metric => 'ip', users => $::N_SEED_USERS, categories => 3);
$::F = ::start_feature();
$::T = ::start_trainer();
--- request
GET /health
--- response_body_like: ^\{"status":"ok","model_generation":1,
--- no_error_log
[alert]
--- after
::pipeline();
