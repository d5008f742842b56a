# The trainer daemon (milvuso-worker --worker-type all) end to end, through
# nginx: what is posted to nginx is learned and comes back in nginx's
# answers; kill -9 at random moments loses nothing and applies nothing
# twice (every item's popularity is counted exactly); SIGTERM publishes the
# pending work, and the metrics file shows the lag of what was pending (a
# click 3 hours old: behind) and none after the publish; after a rollback of `current` no published generation is
# replaced; the refusals (a second worker, --worker-type feature,
# an unknown config key, a snapshot directory whose snapshots are all
# corrupt); and the log's retention, nginx appending while the worker
# removes what its snapshots hold, /health reporting what is left.
#
# Blocks 1 to 6 share one action log and run in order.  Blocks 1, 3, 4, 5
# and 6 share one snapshot directory: the worker of each resumes from what
# the one before published.  Block 2 trains a second model from the same
# log into an empty directory, which nginx serves during that block only.
# Block 7 has a log (in 4k segments, retention 0) and a model of its own.
# nginx (restarted for each block) listens on 127.0.0.1 only and polls
# `current` every 100 ms.
#
# Every worker is started through start_worker() (t/lib/MilvusoTest.pm):
# each block stops its own, kill_spawned() ends whatever a failed block
# left, and the END block of MilvusoTest.pm kills what is still running
# when the file ends; the temp directories go with File::Temp.
#
# Bounded: no single wait is longer than 20 s; the file takes 15-20 s
# (under 30 s with the two cores busy elsewhere).
# TEST_MILVUSO_SEED=N replays the random choices of a run (the seed of each
# run is printed as a note).
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes ();

MilvusoTest::init();
no_shuffle();

listen_loopback();

our $TODO;
our $SEED = $ENV{TEST_MILVUSO_SEED} // (time ^ ($$ << 8)) % 1000000;
Test::More::note("TEST_MILVUSO_SEED=$SEED");

our $DIR = tmpdir();
our $SNAPS = "$DIR/snaps";
our $SNAPS2 = "$DIR/snaps-fresh";
our $LOG = "$DIR/actlog";
our $SNAPS3 = "$DIR/snaps-retention";
our $LOG3 = "$DIR/actlog-retention";
$ENV{TEST_NGINX_SNAPDIR} = $SNAPS;
$ENV{TEST_NGINX_SNAPDIR2} = $SNAPS2;
$ENV{TEST_NGINX_LOGDIR} = $LOG;
$ENV{TEST_NGINX_SNAPDIR3} = $SNAPS3;
$ENV{TEST_NGINX_LOGDIR3} = $LOG3;

our $DIM = 16;
our $N_SEED_ITEMS = 30;        # the synthetic seed: item-000000 .. 29
our $N_SEED_USERS = 10;

our $http_config = <<'_EOC_';
    milvuso_zone       milvuso:16m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current check=100ms;
    milvuso_action_log $TEST_NGINX_LOGDIR;
    milvuso_dim        16;
    milvuso_cache_ttl  0;
    # the query is the model's user vector alone: the answers show what
    # the trainer learned, not the real-time profile
    milvuso_profile    weight=0;
_EOC_

# block 2: the model trained from an empty snapshot directory
(our $http_config_fresh = $http_config)
    =~ s/TEST_NGINX_SNAPDIR\b/TEST_NGINX_SNAPDIR2/;

# block 7: a log of its own in 4k segments, and its own model
(our $http_config_retention = $http_config)
    =~ s/TEST_NGINX_SNAPDIR\b/TEST_NGINX_SNAPDIR3/;
$http_config_retention =~ s/\$TEST_NGINX_LOGDIR;/\$TEST_NGINX_LOGDIR3 segment=4k;/
    or die 'no milvuso_action_log line';

our $config = <<'_EOC_';
    location = /actions        { milvuso_actions; }
    location = /items          { milvuso_items; }
    location /recommendations/ { milvuso_recommend; }
    location = /health         { milvuso_health; }
    location = /metrics        { milvuso_metrics; }
_EOC_

# ---- helpers ---------------------------------------------------------------

# The worker's configuration NAME.toml: the test's paths (snapshots in
# $SNAPS), dim 16, ip, no popularity decay, settings that learn fast on
# tiny data, Click = 1; %over = { section => { key => value } } on top.
sub worker_config {
    my ($name, %over) = @_;
    my %c = (
        recommendation => { embedding_dim => $DIM, metric => 'ip' },
        # learning rate 0.1: on block 1's data (720 clicks), the model
        # trained from an empty directory put 90-99% of the own group in
        # the top-5 over 24 random logs; 71-96% at 0.05 (the default) over 8
        training => {
            learning_rate => 0.1, negative_sampling_ratio => 8,
            replay_ratio => 4, seed => 7,
        },
        'training.action_weights' => { click => 1, dislike => 0 },
        worker => {
            action_log => $LOG, snapshot_dir => $SNAPS,
            metrics_file => "$DIR/$name.prom", publish_interval => 0.3,
            publish_every => 1000, popularity_half_life => 0,
            poll_interval => 0.05, keep_generations => 3,
            log_level => 'info',
        },
    );
    for my $s (keys %over) {
        $c{$s}{$_} = $over{$s}{$_} for keys %{ $over{$s} };
    }
    return write_toml("$DIR/$name.toml", \%c);
}

# The decoded inspect --json --all-items of DIR/current (default $SNAPS),
# or undef when it does not open (e.g. it was replaced while being read).
sub snap {
    my $dir = shift // $SNAPS;
    return eval { inspect("$dir/current", '--all-items') };
}

# { item id => popularity } of a decoded inspect --all-items.

sub health {
    return json_decode(http_get('/health')->{content} // '') // {};
}

# Waits (at most SECONDS) until DIR/current includes the whole action log
# (LOG, default $LOG) and nginx serves that generation; returns that
# snapshot's inspect, or undef.
sub wait_caught_up {
    my ($seconds, $dir, $log) = @_;
    my $j;
    my $t0 = Time::HiRes::time();
    wait_for($seconds, sub {
        $j = snap($dir);
        return $j && (snapshot_position($j) // -1) == actlog_end($log // $LOG);
    }) or return undef;
    my $left = $seconds - (Time::HiRes::time() - $t0);
    $left = 2 if $left < 2;
    wait_for($left, sub {
        # or a newer one: a base merged in the background is named by a
        # generation of its own
        (health()->{model_generation} // -1) >= $j->{generation}
    }) or return undef;
    return $j;
}

# Waits (at most 10 s) until the worker log FILE says N starts got as far
# as following the log (so their SIGTERM handler is in place: a SIGTERM
# right after the exec would find the default action).
sub started {
    my ($file, $n) = @_;
    return wait_for(10, sub {
        (() = file_text($file) =~ /\binfo worker all following /g) >= $n
    });
}

# Exit status as text: "exit N", "signal N" or "did not stop".

sub gauss {
    return sqrt(-2 * log(1 - rand)) * cos(2 * 3.14159265358979 * rand);
}

sub shuffled {
    return map { $_->[1] } sort { $a->[0] <=> $b->[0] }
           map { [ rand, $_ ] } @_;
}

sub post_ok {
    my ($path, $body) = @_;
    return http_post($path, $body)->{status} == 202;
}

# Runs a block's checks: a death is a failure; whatever the block (or its
# --- setup) started and did not stop is killed.
sub block {
    my ($name, $code) = @_;
    my $ok = eval { $code->(); 1 };
    Test::More::fail("$name - died: $@") unless $ok;
    kill_spawned();
}

# ---- blocks 1 and 2: learning reaches nginx --------------------------------

our (@A, @B, %GROUP_OF_ITEM, %SEEN, %CLICKS, @USERS, $W1, $W2, $W3);

# Posts 20 items in two categories and the clicks of 60 users: user-aNN
# click 4 items of group a only, user-bNN 4 of b only, 3 rounds, all users
# interleaved at random.  The content embeddings are i.i.d. N(0, 0.25^2)
# whatever the group: the content does not separate the groups, only the
# clicks do.
sub post_groups {
    my $name = shift;
    @A = map { sprintf 'item-a%02d', $_ } 0 .. 9;
    @B = map { sprintf 'item-b%02d', $_ } 0 .. 9;
    my $posted = 0;
    for my $id (@A, @B) {
        my $g = substr $id, 5, 1;
        $GROUP_OF_ITEM{$id} = $g;
        $posted += post_ok('/items', item_json($id,
            [ map { 0.25 * gauss() } 1 .. $DIM ], category => $g,
            popularity_score => 0));
    }
    is($posted, 20, "$name - 20 items accepted");

    my %pick;
    for my $g ('a', 'b') {
        my @items = $g eq 'a' ? @A : @B;
        for my $n (0 .. 29) {
            my $u = sprintf 'user-%s%02d', $g, $n;
            $pick{$u} = [ (shuffled(@items))[0 .. 3] ];
            $SEEN{$u} = { map { $_ => 1 } @{ $pick{$u} } };
        }
    }
    @USERS = sort keys %pick;
    my ($sent, $ok) = (0, 0);
    my $t0 = Time::HiRes::time();
    for my $round (1 .. 3) {
        my @ev = map { my $u = $_; map { [ $u, $_ ] } @{ $pick{$u} } }
                 @USERS;
        for my $e (shuffled(@ev))
        {
            $sent++;
            next unless post_ok('/actions', actions_json(@$e, 'Click'));
            $ok++;
            $CLICKS{ $e->[1] }++;
        }
    }
    is($ok, $sent, "$name - all $sent clicks accepted");
    Test::More::note(sprintf "%s: %d clicks posted in %.1f s", $name, $sent,
                     Time::HiRes::time() - $t0);
}

# The answers of generation GEN for the 60 users: the top-5 of the items
# they have not seen, from the model (source index); returns the share of
# the user's own group in them, on average, and some of the worst lists.
# With EXCLUDE the module drops the seen items (exclude_seen=1, which needs
# the users' profiles in the zone); without, the test drops them from a
# top-9 (4 seen + 5).
sub own_group_share {
    my ($name, $gen, $exclude) = @_;
    my ($sum, $n, @bad, @wrong) = (0, 0);
    for my $u (@USERS) {
        my $g = substr $u, 5, 1;
        my $r = http_get("/recommendations/$u?"
                         . ($exclude ? 'num_recommendations=5&exclude_seen=1'
                                     : 'num_recommendations=9'));
        my $ans = json_decode($r->{content} // "") // {};
        my @ids = map { $_->{item_id} } @{ $ans->{recommendations} // [] };
        my @seen = grep { $SEEN{$u}{$_} } @ids;
        @ids = grep { !$SEEN{$u}{$_} } @ids;
        if ($r->{status} != 200 || ($ans->{model_generation} // -1) != $gen
            || ($ans->{source} // '') ne 'index' || @ids < 5
            || ($exclude && @seen))
        {
            push @bad, "$u: $r->{status} " . ($r->{content} // '');
            next;
        }
        @ids = @ids[0 .. 4];
        my $same = grep { ($GROUP_OF_ITEM{$_} // '') eq $g } @ids;
        $sum += $same / 5;
        $n++;
        push @wrong, "$u: @ids" if $same < 3;
    }
    is(join("\n", @bad), '', "$name - every answer: 200, generation $gen, "
       . 'source index, 5 items not seen'
       . ($exclude ? ' (exclude_seen=1)' : ''));
    my $share = $n ? $sum / $n : 0;
    Test::More::note(sprintf "%s: own group %.0f%% of the top-5", $name,
                     100 * $share);
    return ($share, join "\n", @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]);
}

sub learning {
    my $name = 'learning';
    srand $SEED;
    post_groups($name);

    my $t0 = Time::HiRes::time();
    my $j = wait_caught_up(20);
    ok($j, sprintf "$name - within 20 s a generation includes the whole "
                 . "log and nginx serves it (%.1f s)",
       Time::HiRes::time() - $t0)
        or return diag(file_text("$DIR/learning.log"));
    my $gen = $j->{generation};
    cmp_ok($gen, '>', 1, "$name - a new generation ($gen) was published");

    # the catalogue: the seed's items and users, the 20 posted items with
    # their category and popularity = their clicks (Click = 1, no decay),
    # the 60 users
    my %items = map { $_->{id} => $_ } @{ $j->{items} // [] };
    is($j->{counts}{items}, $N_SEED_ITEMS + 20, "$name - 50 items");
    is($j->{counts}{users}, $N_SEED_USERS + 60, "$name - 70 users");
    my @bad = grep {
        !$items{$_} || $items{$_}{category} ne $GROUP_OF_ITEM{$_}
        || $items{$_}{popularity} != ($CLICKS{$_} // 0)
        || $items{$_}{deleted}
    } @A, @B;
    is("@bad", '', "$name - every posted item is there with its category "
                   . "and its clicks as popularity")
        or diag(Test::More::explain([ map { $items{$_} } @bad ]));

    my ($share, $wrong) = own_group_share($name, $gen, 1);
    cmp_ok($share, '>=', 0.8, sprintf "$name - top-5 of the user's own "
           . "group, %.0f%% on average (>= 80%%)", 100 * $share)
        or diag("some users with fewer than 3 of 5:\n$wrong");

    # no new generation without new records; SIGTERM with nothing
    # pending: exit 0, nothing published
    my $st = stop_worker($W1, 'TERM', 10);
    is(how_ended($st), 'exit 0', "$name - SIGTERM: the worker exits 0");
    my $k = snap();
    is($k && $k->{generation}, $gen,
       "$name - nothing pending: no generation after $gen");
    unlike(file_text("$DIR/learning.log"), qr/ (?:error|warn) /,
           "$name - the worker logged no error or warning");
}

# The same log, trained by a worker that started from an empty snapshot
# directory ($SNAPS2, which nginx serves in this block): the sampler
# covers the 20 items from the first action on.
sub learning_fresh {
    my $name = 'learning (no seed)';
    my $t0 = Time::HiRes::time();
    my $j = wait_caught_up(20, $SNAPS2);
    ok($j, sprintf "$name - within 20 s a generation includes the whole "
                 . "log and nginx serves it (%.1f s)",
       Time::HiRes::time() - $t0)
        or return diag(file_text("$DIR/fresh.log"));
    my $gen = $j->{generation};
    is($j->{counts}{items}, 20, "$name - 20 items");
    is($j->{counts}{users}, 60, "$name - 60 users");
    my ($share, $wrong) = own_group_share($name, $gen, 0);
    cmp_ok($share, '>=', 0.8, sprintf "$name - top-5 of the user's own "
           . "group, %.0f%% on average (>= 80%%)", 100 * $share)
        or diag("some users with fewer than 3 of 5:\n$wrong");
    is(how_ended(stop_worker($W2, 'TERM', 10)), 'exit 0',
       "$name - SIGTERM: the worker exits 0");
    unlike(file_text("$DIR/fresh.log"), qr/ (?:error|warn) /,
           "$name - the worker logged no error or warning");
}

# ---- block 3: kill -9 at random moments, counted ---------------------------

our $N_ACTIONS = 3000;
our $KILLS = 4;

# { item => Click actions } among the action records of the log that start
# at FROM or after and end at TO or before (packed positions).
sub clicks_in_log {
    my ($from, $to) = @_;
    my %c;
    my $log = read_actlog($LOG);
    for my $r (@{ $log->{records} }) {
        my ($seq) = $r->{segment} =~ /(\d{20})/;
        my $start = (int($seq) << 40) | $r->{offset};
        next if $start < $from || $start + 16 + $r->{len} > $to;
        next unless $r->{type} == 1 && $r->{crc_ok} && $r->{json};
        $c{ $r->{json}{item_id} }++ if $r->{json}{action_type} eq 'Click';
    }
    return \%c;
}

# Every item of snapshot J has popularity BEFORE + CLICKS, exactly, and
# there is no other item.
sub counts_exact {
    my ($name, $j, $before, $clicks) = @_;
    my $now = pops($j);
    my @bad;
    for my $id (sort keys %$before) {
        my $want = $before->{$id} + ($clicks->{$id} // 0);
        push @bad, "$id: " . ($now->{$id} // 'missing') . " instead of "
                   . "$want (before $before->{$id}, clicks "
                   . ($clicks->{$id} // 0) . ')'
            if !defined $now->{$id} || $now->{$id} != $want;
    }
    push @bad, 'other items: '
               . join ' ', grep { !exists $before->{$_} } sort keys %$now
        if grep { !exists $before->{$_} } keys %$now;
    is(join("\n", @bad), '', $name);
}

sub crash {
    my $name = 'kill -9';
    srand $SEED + 3;
    my $conf = worker_config('crash', worker => {
        publish_every => 20, publish_interval => 0.1 });

    # where block 1 left it: everything in the log is in current
    my $bs = snap();
    ok($bs && snapshot_position($bs) == actlog_end($LOG),
       "$name - before: current includes the whole log") or return;
    my $before = pops($bs);
    my $from = actlog_end($LOG);

    # the plan: users crash-000 .. 199, the 20 posted items, 10% Dislikes
    # (weight 0: counted, not a positive, no popularity, no new user)
    open my $fh, '>', "$DIR/plan" or die;
    my %positive_users;
    for (1 .. $N_ACTIONS) {
        my $u = sprintf 'crash-%03d', int rand 200;
        my $i = (@A, @B)[int rand 20];
        my $t = rand() < 0.1 ? 'Dislike' : 'Click';
        $positive_users{$u} = 1 if $t eq 'Click';
        print $fh "$u $i $t\n";
    }
    close $fh;

    # 4 kills at random moments of the posting (by its progress), each
    # followed by a restart at once
    my @at = sort { $a <=> $b } map { int $N_ACTIONS * (0.05 + rand 0.85) }
             1 .. $KILLS;
    my $w = start_worker(config => $conf, out => "$DIR/crash.log");
    # paced (about 3 s in all) so that the kills find the worker tailing
    # the log, not only catching up
    my $poster = start_poster("$DIR/plan", "$DIR/posted", pace => 0.01);
    my $t0 = Time::HiRes::time();
    my $left = sub {
        my $l = 20 - (Time::HiRes::time() - $t0);
        return $l < 1 ? 1 : $l;
    };
    my @kills;
    for my $k (1 .. $KILLS) {
        wait_for($left->(), sub {
            (() = file_text("$DIR/posted") =~ /\n/g) >= $at[$k - 1]
        });
        Time::HiRes::sleep(rand 0.1);
        # how much of the log current lacks: what the restart must redo or
        # read for the first time
        my $c = snap();
        my $behind = actlog_end($LOG) - ($c ? snapshot_position($c) // 0 : 0);
        my $st = stop_worker($w, 'KILL', 5);
        push @kills, sprintf "kill %d at %.1f s (%d posted): %s; current: "
            . "generation %s, %d log bytes behind", $k,
            Time::HiRes::time() - $t0,
            scalar(() = file_text("$DIR/posted") =~ /\n/g), how_ended($st),
            $c ? $c->{generation} : '?', $behind;
        is(how_ended($st), 'signal 9', "$name - kill $k hit a running worker");
        $w = start_worker(config => $conf, out => "$DIR/crash.log");
    }
    my $pst = stop_worker($poster, undef, $left->());
    Test::More::note($_) for @kills;
    Test::More::note(sprintf "$name: %d actions posted in %.1f s",
                     $N_ACTIONS, Time::HiRes::time() - $t0);
    is(how_ended($pst), 'exit 0', "$name - the poster finished within 20 s");
    ok(scalar(grep { !/ 0 log bytes behind/ } @kills), "$name - at least "
       . 'one kill left log records that current did not include');

    my @posted = split /\n/, file_text("$DIR/posted");
    my @not = grep { !/^202 / } @posted;
    is(scalar @posted, $N_ACTIONS, "$name - $N_ACTIONS actions posted");
    is(scalar @not, 0, "$name - every one accepted")
        or diag(join "\n", @not[0 .. ($#not < 4 ? $#not : 4)]);
    my %clicks;
    /^202 \S+ (\S+) Click$/ and $clicks{$1}++ for @posted;

    # SIGTERM at once (once it runs), probably in the middle of catching
    # up: it publishes what it has applied, with the position after it,
    # and exits 0
    ok(started("$DIR/crash.log", $KILLS + 1),
       "$name - the restarted worker runs");
    my $st = stop_worker($w, 'TERM', 10);
    is(how_ended($st), 'exit 0', "$name - SIGTERM: the worker exits 0");
    my $mid = snap();
    ok($mid, "$name - current opens after SIGTERM") or return;
    my $p = snapshot_position($mid);
    Test::More::note(sprintf "$name: after SIGTERM generation %d includes "
        . "%d of %d new log bytes", $mid->{generation}, $p - $from,
        actlog_end($LOG) - $from);
    counts_exact("$name - after SIGTERM: every popularity = before + the "
                 . 'clicks before its position', $mid, $before,
                 clicks_in_log($from, $p));

    # once more, to the end of the log; with what a publish cut short by
    # kill -9 leaves (planted here too, so the check never depends on
    # where the kills landed): the restart removes it
    for my $f ("snapshot-00000000000000009999.mvs.tmp-99999-00000000000000ff",
               ".current.tmp-99999-00000000000000ff") {
        open my $fh, '>', "$SNAPS/$f" or die "$SNAPS/$f: $!";
        close $fh;
    }
    $w = start_worker(config => $conf, out => "$DIR/crash.log");
    my $j = wait_caught_up(20);
    ok($j && started("$DIR/crash.log", $KILLS + 2),
       "$name - the restarted worker catches up within 20 s")
        or return diag(file_text("$DIR/crash.log"));
    $st = stop_worker($w, 'TERM', 10);
    is(how_ended($st), 'exit 0', "$name - SIGTERM: the worker exits 0");
    $j = snap();
    is($j && snapshot_position($j), actlog_end($LOG),
       "$name - the stored position is the end of the log");
    counts_exact("$name - every popularity = before + its clicks, exactly",
                 $j, $before, \%clicks);
    is($j && $j->{counts}{users},
       $bs->{counts}{users} + scalar keys %positive_users,
       "$name - every user with a click is there, once");
    # the temp files of interrupted publishes (the planted ones, and any a
    # kill left) are gone
    my @tmp = map { s{.*/}{}r } glob "$SNAPS/*.tmp-* $SNAPS/.current.tmp-*";
    is("@tmp", '', "$name - no temp file of an interrupted publish is "
       . 'left');
    my $log = file_text("$DIR/crash.log");
    my $resumed = () = $log =~ /resumed from generation/g;
    is($resumed, $KILLS + 2, "$name - each of the " . ($KILLS + 2)
       . ' starts resumed from a snapshot');
    unlike($log, qr/ error /, "$name - the worker logged no error");
}

# ---- block 3b: SIGKILL at each step of a publish ----------------------------

# MVW_TEST_CRASH_AT=STEP makes the worker kill itself (SIGKILL) right after
# that step of every publish (worker/publish/publisher.c): the graph, the
# items file, a compaction, the user delta, the dedupe side file, the
# manifest and `current`.  For each step: clicks of new users posted, a
# worker that dies there, then a restart without the hook that catches up
# and stops.  After each kill `current` still opens (a complete
# generation); at the end every popularity is exact (nothing lost, nothing
# applied twice), every user is there, and the directory holds only what
# the kept generations name.  compact_max_deltas = 1: a compaction is due
# at every publish that follows two deltas.
our @STEPS = qw(index items users dedupe manifest compact);

# The files of DIR the kept generations name, with their side files and
# `current`; and every file DIR has.
sub named_files {
    my $dir = shift;
    my %named = (current => 1);
    for my $m (map { s{.*/}{}r } glob "$dir/gen-*.mvm") {
        $named{$m} = 1;
        $named{"$m.dedupe"} = 1;
        my $j = eval { inspect("$dir/$m") } or next;
        $named{ $_->{name} } = 1 for @{ $j->{files} };
    }
    my @all = map { s{.*/}{}r } glob "$dir/*";
    return (join(' ', sort grep { $named{$_} } @all),
            join(' ', sort @all));
}

sub crash_steps {
    my $name = 'kill at each step';
    my $conf = worker_config('steps', worker => {
        publish_every => 20, publish_interval => 0.1,
        compact_max_deltas => 1 });
    my $bs = snap();
    ok($bs && snapshot_position($bs) == actlog_end($LOG),
       "$name - before: current includes the whole log") or return;
    my $before = pops($bs);
    my $from = actlog_end($LOG);
    my %users;

    for my $step (@STEPS) {
        for my $k (1 .. 40) {
            my $u = sprintf 'step-%s-%02d', $step, $k % 25;
            $users{$u} = 1;
            post_ok('/actions', actions_json($u, (@A, @B)[$k % 20], 'Click'))
                or return fail("$name - $step: click $k accepted");
        }
        my $w;
        {
            local $ENV{MVW_TEST_CRASH_AT} = $step;
            $w = start_worker(config => $conf, out => "$DIR/steps.log");
        }
        my $st = stop_worker($w, undef, 15);
        is(how_ended($st), 'signal 9', "$name - $step: the worker killed "
           . 'itself at that step') or diag(file_text("$DIR/steps.log"));
        my $j = snap();
        ok($j, "$name - $step: current opens after the kill");
        $w = start_worker(config => $conf, out => "$DIR/steps.log");
        ok(wait_caught_up(20), "$name - $step: the restarted worker catches "
           . 'up within 20 s');
        is(how_ended(stop_worker($w, 'TERM', 10)), 'exit 0',
           "$name - $step: SIGTERM, exit 0");
    }

    my $j = snap();
    is($j && snapshot_position($j), actlog_end($LOG),
       "$name - the stored position is the end of the log");
    counts_exact("$name - every popularity = before + its clicks, exactly",
                 $j, $before, clicks_in_log($from, actlog_end($LOG)));
    is($j && $j->{counts}{users},
       $bs->{counts}{users} + scalar keys %users,
       "$name - every user is there, once");
    my @missing = grep {
        !defined eval { inspect("$SNAPS/current", '--user', $_)->{user} }
    } (sort keys %users)[0 .. 4];
    is("@missing", '', "$name - users of every step are found");
    my $log = file_text("$DIR/steps.log");
    like($log, qr/compacted the users of generation/,
         "$name - a compaction ran");
    my ($named, $all) = named_files($SNAPS);
    is($all, $named, "$name - the directory holds only what the kept "
       . 'generations name');
}

# ---- block 4: SIGTERM publishes what is pending ----------------------------

sub sigterm {
    my $name = 'SIGTERM';
    my $conf = worker_config('sigterm', worker => {
        publish_interval => 3600, publish_every => 0 });
    my $bs = snap();
    ok($bs && snapshot_position($bs) == actlog_end($LOG),
       "$name - before: current includes the whole log") or return;
    my $before = pops($bs);
    my $g0 = $bs->{generation};

    my $w = start_worker(config => $conf, out => "$DIR/sigterm.log");
    my @ev = ((['late-user', 'item-a03']) x 5,
              (['late-user', 'item-b07']) x 2);
    # the first click says it happened 3 hours ago: the lag of the
    # unpublished model is then past 2 x publish_interval + 5 (7205 s)
    my $ok = 0;
    for my $i (0 .. $#ev) {
        $ok += post_ok('/actions', actions_json(@{ $ev[$i] }, 'Click',
                       $i == 0 ? (timestamp => now_rfc3339(3 * 3600)) : ()));
    }
    is($ok, 7, "$name - 7 clicks accepted");

    # the metrics file is written every 5 s
    my $t0 = Time::HiRes::time();
    my $read = wait_for(15, sub {
        (read_metrics("$DIR/sigterm.prom")->{milvuso_worker_records_total}
         // 0) >= 7
    });
    ok($read, sprintf "$name - the worker read the 7 records (metrics file, "
                    . "%.1f s)", Time::HiRes::time() - $t0);
    my $m = read_metrics("$DIR/sigterm.prom");
    is($m->{milvuso_worker_pending_records}, 7, "$name - 7 records pending");
    is($m->{milvuso_worker_backlog_bytes}, 0,
       "$name - backlog_bytes 0: the worker read the whole log");
    ok(!exists $m->{milvuso_worker_backlog_records},
       "$name - no backlog_records on the action log (unknown: left out)");
    my $lag = $m->{milvuso_worker_lag_seconds} // -1;
    ok($lag >= 3 * 3600 && $lag < 3 * 3600 + 60, "$name - lag_seconds "
       . "$lag: the age of the first pending record (3 hours)");
    is($m->{milvuso_worker_behind}, 1,
       "$name - behind 1: lag > 2 x publish_interval + 5");
    my $c = snap();
    is($c && $c->{generation}, $g0,
       "$name - nothing published before SIGTERM (publish_interval 3600)");

    my $st = stop_worker($w, 'TERM', 10);
    is(how_ended($st), 'exit 0', "$name - the worker exits 0");
    $m = read_metrics("$DIR/sigterm.prom");
    is(join(' ', map { $m->{"milvuso_worker_$_"} // 'none' }
                 qw(pending_records lag_seconds behind backlog_bytes)),
       '0 0.000 0 0', "$name - after its last publish: nothing pending, "
       . 'lag_seconds 0, behind 0, backlog_bytes 0');
    my $j = snap();
    is($j && $j->{generation}, $g0 + 1,
       "$name - it published generation " . ($g0 + 1));
    is($j && snapshot_position($j), actlog_end($LOG),
       "$name - which includes the whole log");
    counts_exact("$name - and the 7 clicks", $j, $before,
                 { 'item-a03' => 5, 'item-b07' => 2 });
    is($j && $j->{counts}{users}, $bs->{counts}{users} + 1,
       "$name - and the new user");
    ok(wait_for(10, sub {
        (health()->{model_generation} // -1) == $g0 + 1 }),
       "$name - nginx serves it");
    my $r = json_decode(http_get('/recommendations/late-user')->{content}
                        // '') // {};
    is(($r->{source} // '') . ' ' . ($r->{model_generation} // ''),
       'index ' . ($g0 + 1), "$name - late-user is answered from the model");
    like(file_text("$DIR/sigterm.log"),
         qr/signal 15: stopping\n.*published generation ${\($g0 + 1)} /,
         "$name - its log says it stopped and published");
}

# ---- block 5: after a rollback, no published generation is replaced -------

# An operator rolls back by pointing `current` at an older generation.  The
# worker resumes from that one, and its next publish takes the number after
# the newest file present, leaving the newer (rolled-back) file as it was.
sub rollback {
    my $name = 'rollback';
    my $conf = worker_config('rollback', worker => {
        publish_interval => 3600, publish_every => 0 });
    my $bs = snap();
    ok($bs && $bs->{generation} >= 2, "$name - before: generation "
       . ($bs ? $bs->{generation} : '?') . " is current") or return;
    my $g = $bs->{generation};
    my $newest = sprintf "$SNAPS/gen-%020d.mvm", $g;
    my $older = sprintf "gen-%020d.mvm", $g - 1;
    ok(-f "$SNAPS/$older", "$name - generation " . ($g - 1) . " is kept")
        or return;
    my $bytes = file_text($newest);
    symlink($older, "$SNAPS/current.rollback") or die "symlink: $!";
    rename("$SNAPS/current.rollback", "$SNAPS/current") or die "rename: $!";

    my $w = start_worker(config => $conf, out => "$DIR/rollback.log");
    ok(started("$DIR/rollback.log", 1), "$name - the worker runs");
    ok(post_ok('/actions', actions_json('rollback-user', 'item-a01',
                                        'Click')), "$name - a click accepted");
    ok(wait_for(15, sub {
        (read_metrics("$DIR/rollback.prom")->{milvuso_worker_records_total}
         // 0) >= 1 }), "$name - the worker read it");
    is(how_ended(stop_worker($w, 'TERM', 10)), 'exit 0',
       "$name - SIGTERM: the worker exits 0");

    my $log = file_text("$DIR/rollback.log");
    like($log, qr/resumed from generation ${\($g - 1)} /,
         "$name - it resumed from the generation current named");
    my $j = snap();
    is($j && $j->{generation}, $g + 1, "$name - it published generation "
       . ($g + 1) . ", after the newest file");
    ok(file_text($newest) eq $bytes, "$name - generation $g is unchanged");
    is(readlink("$SNAPS/current"), sprintf("gen-%020d.mvm", $g + 1),
       "$name - current names generation " . ($g + 1));
}

# ---- block 6: refusals -----------------------------------------------------

sub refusals {
    my $name = 'refusals';
    my $conf = worker_config('refusals');
    # (temp files aside: what a job interrupted by the previous worker's
    # exit left, which any start removes)
    my $files = join ' ', sort grep { !/\.tmp-/ } glob "$SNAPS/*";

    # a second worker on the same snapshot directory
    my $w = start_worker(config => $conf, out => "$DIR/first.log");
    ok(started("$DIR/first.log", 1), "$name - the first worker runs");
    my ($st, $out) = run_worker(out => "$DIR/second.log", args => [
        '--config', $conf, '--worker-type', 'all', '--foreground' ]);
    is(how_ended($st), 'exit 1', "$name - a second worker exits 1");
    like($out, qr/another worker/,
         "$name - saying on stderr that another worker runs");
    # the same without --foreground: refused before it detaches
    ($st, $out) = run_worker(out => "$DIR/second-bg.log", args => [
        '--config', $conf, '--worker-type', 'all' ]);
    is(how_ended($st) . ' ' . ($out =~ /another worker/ ? 'another' : '-'),
       'exit 1 another', "$name - the same without --foreground");
    is(how_ended(stop_worker($w, 'TERM', 10)), 'exit 0',
       "$name - the first worker was not disturbed: SIGTERM, exit 0");

    # --worker-type feature
    ($st, $out) = run_worker(out => "$DIR/feature.log", args => [
        '--config', $conf, '--worker-type', 'feature', '--foreground' ]);
    is(how_ended($st), 'exit 1', "$name - --worker-type feature exits 1");
    like($out, qr/feature.*Kafka/,
         "$name - explaining on stderr that it needs Kafka");

    # an unknown key: FILE:LINE
    my $bad = "$DIR/unknown.toml";
    open my $fh, '>', $bad or die;
    print $fh "[worker]\nsnapshot_dir = \"$SNAPS\"\naction_log = \"$LOG\"\n"
              . "\n[training]\nlearning_rate = 0.1\nlerning_rate = 0.1\n";
    close $fh;
    ($st, $out) = run_worker(out => "$DIR/unknown.log", args => [
        '--config', $bad, '--worker-type', 'all', '--foreground' ]);
    is(how_ended($st), 'exit 1', "$name - an unknown key: exit 1");
    like($out, qr/\Q$bad\E:7:.*lerning_rate/,
         "$name - naming the file, line 7 and the key");

    is(join(' ', sort grep { !/\.tmp-/ } glob "$SNAPS/*"), $files,
       "$name - none of them changed the snapshot directory");

    # the only snapshot is corrupt: refuse, do not start from scratch
    my $d = tmpdir();
    snapshot(out => "$d/snaps", synthetic => 20, dim => $DIM, metric => 'ip');
    my ($file) = glob "$d/snaps/snapshot-*.mvs";
    flip_byte($file);
    ok(!eval { inspect($file); 1 },
       "$name - the flipped byte makes it invalid");
    write_toml("$d/c.toml", {
        recommendation => { embedding_dim => $DIM, metric => 'ip' },
        worker => { action_log => "$d/actlog", snapshot_dir => "$d/snaps",
                    publish_interval => 0.1 } });
    ($st, $out) = run_worker(out => "$d/out.log", args => [
        '--config', "$d/c.toml", '--worker-type', 'all', '--foreground' ]);
    is(how_ended($st), 'exit 1',
       "$name - the only snapshot is corrupt: exit 1");
    like($out, qr/unusable.*\n(?s:.*)refusing to start from scratch/,
         "$name - saying why on stderr, and refusing to start from scratch");
    is(join(' ', map { s{.*/}{}r } sort glob "$d/snaps/*"),
       'current snapshot-00000000000000000001.mvs',
       "$name - nothing published over it");
}

# ---- block 7: retention through nginx ---------------------------------------

# The segments of LOG: (count, bytes, lowest number).
sub segments_of {
    my $log = shift;
    my @f = sort glob "$log/actions-*.log";
    my $bytes = 0;
    $bytes += -s $_ for @f;
    my ($low) = @f ? $f[0] =~ /(\d{20})\.log$/ : (0);
    return (scalar @f, $bytes, int $low);
}

# Posts N clicks of users ret-000 .. 049 on items ret-item-00 .. 09;
# returns { item => clicks } of those accepted.
sub post_clicks {
    my $n = shift;
    my %c;
    for (1 .. $n) {
        my $i = sprintf 'ret-item-%02d', int rand 10;
        my $u = sprintf 'ret-%03d', int rand 50;
        $c{$i}++ if post_ok('/actions', actions_json($u, $i, 'Click'));
    }
    return \%c;
}

# nginx appends in 4k segments; the worker (retention 0, 2 generations)
# removes what its snapshots hold; nginx goes on appending to the newest
# segment, reports what is on disk, and the model counts every click.
sub retention {
    my $name = 'retention';
    srand $SEED + 7;
    my $bs = snap($SNAPS3);
    ok($bs, "$name - nginx starts on the seed model") or return;
    my $before = pops($bs);

    # ten items of popularity 0, so that their popularity counts clicks
    # exactly (the seed's are fractions)
    my $posted = 0;
    for my $k (0 .. 9) {
        my $id = sprintf 'ret-item-%02d', $k;
        $before->{$id} = 0;
        $posted += post_ok('/items', item_json($id,
            [ map { 0.25 * gauss() } 1 .. $DIM ], category => 'r',
            popularity_score => 0));
    }
    is($posted, 10, "$name - 10 items accepted");
    my %all;
    my $c = post_clicks(500);
    $all{$_} += $c->{$_} for keys %$c;
    my $j = wait_caught_up(20, $SNAPS3, $LOG3);
    ok($j, "$name - within 20 s the model holds the whole log")
        or return diag(file_text("$DIR/retention.log"));
    my ($n, $bytes, $low) = segments_of($LOG3);
    ok(wait_for(10, sub { $low = (segments_of($LOG3))[2]; $low > 1 }),
       "$name - old segments are removed (the oldest left is $low)");
    like(file_text("$DIR/retention.log"),
         qr/ info action log \Q$LOG3\E: removed \d+ segment/,
         "$name - the worker says what it removed");
    counts_exact("$name - every popularity = before + its clicks", $j,
                 $before, \%all);

    # what nginx reports is what is on disk (listed at most once a second)
    my ($h, @disk);
    ok(wait_for(5, sub {
        @disk = segments_of($LOG3);
        $h = health()->{action_log} // {};
        ($h->{segments} // -1) == $disk[0] && ($h->{bytes} // -1) == $disk[1]
    }), "$name - /health: $disk[0] segments, $disk[1] bytes, as on disk")
        or diag(Test::More::explain($h));
    my $m = http_get('/metrics')->{content} // '';
    like($m, qr/^milvuso_action_log_segments \d+$/m,
         "$name - /metrics has the segment count");

    # nginx appends on after the trims: nothing lost, no damage
    $c = post_clicks(150);
    $all{$_} += $c->{$_} for keys %$c;
    $j = wait_caught_up(20, $SNAPS3, $LOG3);
    ok($j, "$name - the model holds the new clicks too") or return;
    counts_exact("$name - every popularity still exact", $j, $before, \%all);
    log_records($LOG3, $name);
    ok((segments_of($LOG3))[2] > $low
       || wait_for(5, sub { (segments_of($LOG3))[2] > $low }),
       "$name - and the trim goes on past segment $low");
    is(how_ended(stop_worker($::W3, 'TERM', 10)), 'exit 0',
       "$name - SIGTERM: the worker exits 0");
    unlike(file_text("$DIR/retention.log"), qr/ (?:error|warn) /,
           "$name - the worker logged no error or warning");
}

run_tests();

__DATA__

=== TEST 1: learning reaches nginx: two groups of users, default loss (softmax)
--- setup
snapshot(out => $::SNAPS, synthetic => $::N_SEED_ITEMS, dim => $::DIM,
         metric => 'ip', users => $::N_SEED_USERS, categories => 3);
$::W1 = start_worker(config => ::worker_config('learning'),
                     out => "$::DIR/learning.log");
--- request
GET /health
--- response_body_like: ^\{"status":"ok","model_generation":1,.*"items":30,"users":10,.*"metric":"ip"
--- after
::block('learning', \&::learning);



=== TEST 2: learning reaches nginx: the same log, trained from an empty snapshot directory
--- http_config eval: $::http_config_fresh
--- setup
$::W2 = start_worker(config => ::worker_config('fresh',
                         worker => { snapshot_dir => $::SNAPS2 }),
                     out => "$::DIR/fresh.log");
# nginx starts with the worker's first generation
wait_for(10, sub { -e "$::SNAPS2/current" });
--- request
GET /health
--- response_body_like: ^\{"status":"ok","model_generation":\d+,.*"metric":"ip"
--- after
::block('learning (no seed)', \&::learning_fresh);



=== TEST 3: kill -9 at random moments: nothing lost, nothing applied twice
--- request
GET /health
--- response_body_like: ^\{"status":"ok"
--- after
::block('kill -9', \&::crash);



=== TEST 3b: SIGKILL at each step of a publish: current stays complete, nothing lost, nothing applied twice, no file left over
--- request
GET /health
--- response_body_like: ^\{"status":"ok"
--- after
::block('kill at each step', \&::crash_steps);



=== TEST 4: SIGTERM publishes what is pending
--- request
GET /health
--- response_body_like: ^\{"status":"ok"
--- after
::block('SIGTERM', \&::sigterm);



=== TEST 5: after a rollback of current the worker publishes after the newest file
--- request
GET /health
--- response_body_like: ^\{"status":"ok"
--- after
::block('rollback', \&::rollback);



=== TEST 6: refusals: a second worker, --worker-type feature, an unknown key, only corrupt snapshots
--- request
GET /health
--- response_body_like: ^\{"status":"ok"
--- after
::block('refusals', \&::refusals);



=== TEST 7: retention: nginx appends 4k segments, the worker removes what its snapshots hold, /health reports what is left
--- http_config eval: $::http_config_retention
--- setup
snapshot(out => $::SNAPS3, synthetic => $::N_SEED_ITEMS, dim => $::DIM,
         metric => 'ip', users => $::N_SEED_USERS, categories => 3);
$::W3 = start_worker(config => ::worker_config('retention',
                         training => { batch_size => 25 },
                         worker => { snapshot_dir => $::SNAPS3,
                                     action_log => $::LOG3,
                                     publish_every => 50,
                                     keep_generations => 2,
                                     action_log_retention => 0 }),
                     out => "$::DIR/retention.log");
--- request
GET /health
--- response_body_like: ^\{"status":"ok","model_generation":1,.*"action_log":\{"enabled":true,
--- after
::block('retention', \&::retention);
