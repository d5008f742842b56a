# Faults on the Kafka pipeline, each followed by an exact count: every
# action answered 202 is in the topic and in the trainer's snapshot once
# (its positions = the records accepted; every item's popularity = the
# seed's + its accepted Clicks), none answered 503 "may be posted again"
# ever reaches the model, none is applied twice.
#
#   1. the trainer killed with SIGKILL three times while nginx produces
#      (ack=on), restarted each time;
#   2. the broker killed with SIGKILL and started again on its data while
#      nginx produces (ack=on): the requests wait for it, then succeed;
#   3. the broker stopped (ack=on, timeout=1s): every write is refused with
#      503 and never applied; started again, the refused writes posted once
#      more are applied once;
#   4. the broker paused (SIGSTOP) while a write waits (ack=on,
#      timeout=1s): 503 saying the record may still be stored and that
#      posting it again may count it twice; resumed (SIGCONT), the record
#      may indeed land: the count allows it, once, and nothing else;
#   5. a standby trainer (--standby, same snapshot directory) while nginx
#      produces: it waits holding nothing; the active one is killed with
#      SIGKILL; the standby takes over from the active's last snapshot;
#   6. nginx reloaded (HUP) three times while it produces with ack=off and
#      linger.ms=2000 (so that every reload finds records waiting in the
#      producer's queue): the old workers flush what they answered 202
#      before they exit.
#
# Blocks 2 and 3 restart the broker, so they need the one `make
# services-suites` started (MILVUSO_SERVICES_RUN names its run directory);
# against a broker the suite does not own they are skipped, saying so.
# The trainer runs from block 1 to the end; the blocks share the topics,
# the group and the snapshot directory, so each block's count includes
# the blocks before it.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/../lib";
use MilvusoTest;

our ($B, $ACT, $ITM) = kafka_topics('f', 3);

MilvusoTest::init();
no_shuffle();
listen_loopback();

our $SEED = $ENV{TEST_MILVUSO_SEED} // (time ^ ($$ << 8)) % 1000000;
Test::More::note("seed $SEED (TEST_MILVUSO_SEED=$SEED repeats the choices)");

our $DIR = tmpdir();
our $SNAPS = "$DIR/snaps";
$ENV{TEST_NGINX_SNAPDIR} = $SNAPS;
our $RUN = $ENV{MILVUSO_SERVICES_RUN} // '';
our $OWN_BROKER = $RUN && -s "$RUN/kafka/kafka.pid";

our $DIM = 8;
our $N_SEED_ITEMS = 20;
our @ITEMS = map { sprintf 'item-%06d', $_ } 0 .. $N_SEED_ITEMS - 1;
our ($W, %EXPECT, $ACCEPTED, %MAYBE, $MAYBE_N);

our $http_config = <<'_EOC_';
    milvuso_zone      milvuso:8m;
    milvuso_snapshot  $TEST_NGINX_SNAPDIR/current check=100ms;
    milvuso_kafka     brokers=$TEST_NGINX_KBROKERS topic=$TEST_NGINX_KACT
                      items_topic=$TEST_NGINX_KITM ack=on timeout=60s
                      linger.ms=1;
    milvuso_cache_ttl 0;
_EOC_

our $config = <<'_EOC_';
    location = /actions        { milvuso_actions; }
    location = /health         { milvuso_health; }
    location = /metrics        { milvuso_metrics; }
_EOC_

sub worker_config {
    return kafka_worker_config($DIR, $DIM, $SNAPS, "f_group_$$");
}

sub snap { return snapshot_items($SNAPS) }
sub offsets { return stream_offsets(@_) }

# A plan of N Clicks by users PREFIX-000 .. 099 on random seed items.
sub write_plan {
    my ($file, $prefix, $n) = @_;
    open my $fh, '>', $file or die "$file: $!";
    printf $fh "%s-%03d %s Click\n", $prefix, int rand 100,
           $ITEMS[int rand @ITEMS] for 1 .. $n;
    close $fh or die "$file: $!";
}

# Counts a poster's output into the expectation: returns (answers, 202s,
# the lines that are neither 202 nor a 503).  A 503 that says the record
# may still be stored ("503?") goes to %MAYBE: it may land, once.
sub account {
    my $out = shift;
    my @lines = split /\n/, file_text($out);
    my ($ok, @other) = (0);
    for (@lines) {
        if (/^202 \S+ (\S+) Click$/) { $EXPECT{$1}++; $ok++; next }
        if (/^503\? \S+ (\S+) Click$/) { $MAYBE{$1}++; $MAYBE_N++; next }
        push @other, $_ unless /^503 /;
    }
    $ACCEPTED += $ok;
    return (scalar @lines, $ok, @other);
}

# Waits (at most SECONDS) for the poster writing POSTED to finish, then
# checks that it got N answers, every one 202 (WHY says what that proves),
# and counts them into the expectation.
sub all_accepted {
    my ($name, $poster, $posted, $n, $seconds, $why) = @_;
    is(how_ended(stop_worker($poster, undef, $seconds)), 'exit 0',
       "$name - the poster finished");
    my ($answers, $ok, @other) = account($posted);
    is($answers, $n, "$name - $n answers");
    is($ok, $n, "$name - every one 202" . ($why ? ": $why" : ''))
        or diag(join "\n", grep { defined } @other[0 .. 4]);
}

# Waits (at most SECONDS) for a snapshot holding exactly the records
# accepted so far, then checks every item's popularity against them.  The
# records refused with "may still be stored" (%MAYBE) may be there too,
# each at most once: the positions and each item's popularity may exceed
# the accepted by at most those, and by the same number; what landed
# joins the expectation.
sub counts_exact {
    my ($name, $seconds) = @_;
    $MAYBE_N //= 0;
    my $j = wait_for($seconds, sub {
        my $s = snap();
        return $s && offsets($s, $ACT) >= $ACCEPTED ? $s : undef;
    });
    ok($j, "$name - a snapshot reaches the $ACCEPTED actions accepted "
       . "within $seconds s") or return diag(file_text("$DIR/worker.log"));
    my $landed = offsets($j, $ACT) - $ACCEPTED;
    ok($landed >= 0 && $landed <= $MAYBE_N, "$name - its positions: the "
       . "$ACCEPTED actions accepted, and of the $MAYBE_N unconfirmed at "
       . "most all ($landed)");
    my $now = pops($j);
    my ($extra, @bad) = (0);
    for my $id (sort keys %EXPECT) {
        my $d = ($now->{$id} // -1e9) - $EXPECT{$id};
        my $k = sprintf '%.0f', $d;
        if (abs($d - $k) > 0.01 || $k < 0 || $k > ($MAYBE{$id} // 0)) {
            push @bad, "$id: " . ($now->{$id} // 'missing')
                       . " instead of $EXPECT{$id}";
            next;
        }
        $extra += $k;
        $EXPECT{$id} += $k;
    }
    is(join("\n", @bad), '', "$name - every item's popularity = the seed's "
       . '+ its Clicks answered 202, exactly (+ unconfirmed ones that landed)');
    is($extra, $landed, "$name - the unconfirmed records that landed count "
       . 'once each');
    $ACCEPTED += $landed;
    %MAYBE = ();
    $MAYBE_N = 0;
    return $j;
}

# ---- block 1: the trainer killed --------------------------------------------

sub trainer_killed {
    my $name = 'trainer SIGKILL';
    srand $SEED + 1;
    my $j = snap();
    ok($j, "$name - the seed snapshot opens") or return;
    %EXPECT = %{ pops($j) };
    $ACCEPTED = offsets($j, $ACT);

    my $n = 600;
    write_plan("$DIR/plan1", 'k', $n);
    my $poster = start_poster("$DIR/plan1", "$DIR/posted1", pace => 0.02);
    my @kills;
    for my $k (1 .. 3) {
        my $at = int $n * (0.15 + 0.25 * ($k - 1) + rand 0.15);
        wait_for(30, sub { (() = file_text("$DIR/posted1") =~ /\n/g) >= $at });
        my $st = stop_worker($W, 'KILL', 5);
        is(how_ended($st), 'signal 9', "$name - kill $k hit a running trainer");
        push @kills, $at;
        $W = start_worker(config => worker_config(), out => "$DIR/worker.log");
    }
    Test::More::note("$name: kills after " . join(', ', @kills) . " posts");
    all_accepted($name, $poster, "$DIR/posted1", $n, 60);
    counts_exact($name, 30);
}

# ---- block 2: the broker killed and started again ---------------------------

sub broker_killed {
    my $name = 'broker SIGKILL';
    SKIP: {
        skip "$name: the broker is not the suite's own (MILVUSO_SERVICES_RUN)", 8
            unless $OWN_BROKER;
        srand $SEED + 2;
        my $n = 400;
        write_plan("$DIR/plan2", 'b', $n);
        my $poster = start_poster("$DIR/plan2", "$DIR/posted2", pace => 0.02);
        wait_for(30, sub { (() = file_text("$DIR/posted2") =~ /\n/g) >= $n * 0.3 });
        my $t0 = Time::HiRes::time();
        ok(services($RUN, 'restart', '--kill'), "$name - killed and started again");
        Test::More::note(sprintf "$name: the broker was back after %.1f s",
                         Time::HiRes::time() - $t0);
        all_accepted($name, $poster, "$DIR/posted2", $n, 90,
                     'the requests waited for the broker');
        counts_exact($name, 60);
    }
}

# ---- block 3: the broker stopped, writes refused ----------------------------

sub broker_stopped {
    my $name = 'broker stopped';
    SKIP: {
        skip "$name: the broker is not the suite's own (MILVUSO_SERVICES_RUN)", 11
            unless $OWN_BROKER;
        srand $SEED + 3;
        ok(services($RUN, 'stop'), "$name - the broker stopped");
        write_plan("$DIR/plan3", 's', 4);
        my $poster = start_poster("$DIR/plan3", "$DIR/posted3", pace => 0);
        is(how_ended(stop_worker($poster, undef, 30)), 'exit 0',
           "$name - the poster finished");
        my @refused = grep { /^503\??\s/ } split /\n/, file_text("$DIR/posted3");
        is(scalar @refused, 4, "$name - every write refused with 503");
        my $h = json_decode(http_get('/health')->{content} // '') // {};
        ok(($h->{kafka}{failed} // 0) + ($h->{kafka}{refused} // 0) >= 4,
           "$name - /health counts the failures");

        # the same four again, once the broker is back: each is retried
        # while nginx's producer reconnects
        ok(services($RUN, 'restart'), "$name - the broker started on its data");
        $poster = start_poster("$DIR/plan3", "$DIR/posted3b", pace => 0,
                               retry_503 => 30);
        is(how_ended(stop_worker($poster, undef, 60)), 'exit 0',
           "$name - the poster finished");
        my ($answers, $ok) = account("$DIR/posted3b");
        # (one sent while the broker was still starting may instead end
        # unconfirmed, "503?": counts_exact allows it, at most once)
        is($ok + $MAYBE_N, 4, "$name - each of the four accepted once the "
           . 'broker is back, or refused as possibly stored');
        counts_exact($name, 60);
    }
}

# ---- block 4: the broker paused while a write waits ------------------------

sub broker_paused {
    my $name = 'broker paused';
    SKIP: {
        skip "$name: the broker is not the suite's own (MILVUSO_SERVICES_RUN)", 8
            unless $OWN_BROKER;
        my $pid = file_text("$RUN/kafka/kafka.pid") =~ /(\d+)/ ? $1 : 0;
        # a write through first: the producer is connected
        my $w = http_post('/actions', actions_json('z-001', $ITEMS[1], 'Click'));
        is($w->{status}, 202, "$name - a write goes through before the pause");
        $EXPECT{ $ITEMS[1] }++, $ACCEPTED++ if $w->{status} == 202;
        ok($pid && kill('STOP', $pid), "$name - the broker paused");
        my $r = http_post('/actions', actions_json('z-000', $ITEMS[0], 'Click'));
        my $e = json_decode($r->{content} // '') // {};
        kill 'CONT', $pid;
        is($r->{status}, 503, "$name - 503 once the timeout passed");
        my $maybe = ($e->{detail} // '') =~ /may still (?:be|have been) stored.*may count it twice/;
        ok($maybe || ($e->{detail} // '') =~ /may be posted again/,
           "$name - the answer says whether the record may still be stored");
        Test::More::note("$name: " . ($e->{detail} // ''));
        if ($maybe) { $MAYBE{ $ITEMS[0] }++; $MAYBE_N++ }
        # a record that may land: give it the time to
        wait_for(10, sub { offsets(snap(), $ACT) > $ACCEPTED }) if $maybe;
        counts_exact($name, 30);
    }
}

# ---- block 5: standby takeover ---------------------------------------------

sub standby {
    my $name = 'standby';
    srand $SEED + 5;
    my $log = "$DIR/standby.log";
    my $sb = start_worker(config => worker_config(), out => $log,
                          args => ['--standby']);
    ok(wait_for(10, sub { file_text($log) =~ /standby: another worker publishes/ }),
       "$name - the second trainer waits") or return diag(file_text($log));
    my $n = 400;
    write_plan("$DIR/plan5", 'y', $n);
    my $poster = start_poster("$DIR/plan5", "$DIR/posted5", pace => 0.02);
    wait_for(30, sub { (() = file_text("$DIR/posted5") =~ /\n/g) >= $n * 0.4 });
    # while both run, only the active one is in the group
    unlike(file_text($log), qr/partition\(s\) assigned/,
           "$name - the standby holds no partition");
    is(how_ended(stop_worker($W, 'KILL', 5)), 'signal 9',
       "$name - the active trainer killed");
    ok(wait_for(10, sub { file_text($log) =~ /taking over/ }),
       "$name - the standby takes over") or return diag(file_text($log));
    $W = $sb;
    all_accepted($name, $poster, "$DIR/posted5", $n, 60);
    counts_exact($name, 30);
    like(file_text($log), qr/resumed from generation/,
         "$name - it resumed from the active's snapshot");
}

# ---- block 6: nginx reloaded while producing --------------------------------

sub reloaded {
    my $name = 'nginx HUP';
    srand $SEED + 4;
    my $n = 600;
    write_plan("$DIR/plan4", 'r', $n);
    my $poster = start_poster("$DIR/plan4", "$DIR/posted4", pace => 0.02);
    my $master = file_text($Test::Nginx::Util::PidFile) =~ /(\d+)/ ? $1 : 0;
    ok($master, "$name - nginx's master pid") or return;
    for my $k (1 .. 3) {
        wait_for(30, sub { (() = file_text("$DIR/posted4") =~ /\n/g) >= $n * $k / 4 });
        ok(kill('HUP', $master), "$name - reload $k");
    }
    all_accepted($name, $poster, "$DIR/posted4", $n, 60);
    counts_exact($name, 30);
    is(how_ended(stop_worker($W, 'TERM', 15)), 'exit 0',
       'the trainer stops on SIGTERM with status 0');
}

run_tests();

__DATA__

=== TEST 1: the trainer killed with SIGKILL while nginx produces (ack=on)
--- setup
snapshot(out => $::SNAPS, synthetic => $::N_SEED_ITEMS, dim => $::DIM,
         metric => 'ip', users => 5, categories => 3);
$::W = start_worker(config => ::worker_config(), out => "$::DIR/worker.log");
--- request
GET /health
--- response_body_like: "kafka":\{"enabled":true,"ack":true
--- no_error_log
[alert]
--- after
::trainer_killed();



=== TEST 2: the broker killed and started again while nginx produces (ack=on)
--- request
GET /health
--- response_body_like: "kafka":\{"enabled":true,"ack":true
--- no_error_log
[alert]
--- after
::broker_killed();



=== TEST 3: the broker stopped: writes refused, never applied; back: accepted
--- http_config eval
$::http_config =~ s/timeout=60s/timeout=1s/r
--- request
GET /health
--- response_body_like: "kafka":\{"enabled":true,"ack":true
--- no_error_log
[alert]
--- after
::broker_stopped();



=== TEST 4: the broker paused while a write waits: 503, may still be stored
--- http_config eval
$::http_config =~ s/timeout=60s/timeout=1s/r
--- request
GET /health
--- response_body_like: "kafka":\{"enabled":true,"ack":true
--- no_error_log
[alert]
--- after
::broker_paused();



=== TEST 5: a standby trainer takes over when the active one is killed
--- request
GET /health
--- response_body_like: "kafka":\{"enabled":true,"ack":true
--- no_error_log
[alert]
--- after
::standby();



=== TEST 6: nginx reloaded three times while it produces (ack=off)
--- http_config eval
$::http_config =~ s/ack=on timeout=60s\s+linger.ms=1/ack=off linger.ms=2000/r
--- request
GET /health
--- response_body_like: "kafka":\{"enabled":true,"ack":false
--- no_error_log
[alert]
--- after
::reloaded();
