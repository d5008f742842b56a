package MilvusoTest;

# What the Test::Nginx suites of ngx_http_milvuso_module share.
#
# Running them (from the project root; .ci/install-test-nginx installs
# Test::Nginx on Debian 12; `make nginx-test` does the same as):
#
#   TEST_NGINX_BINARY=/usr/sbin/nginx \
#   TEST_NGINX_MILVUSO_MODULE=$PWD/build/nginx/objs/ngx_http_milvuso_module.so \
#   TEST_NGINX_MILVUSO_WORKER=$PWD/build/milvuso-worker \
#       prove -r t
#
#   use Test::Nginx::Socket;
#   use lib ...;  use MilvusoTest;
#   MilvusoTest::init();        # skips the file when the module is not built
#
# Environment:
#   TEST_NGINX_MILVUSO_MODULE  absolute path of ngx_http_milvuso_module.so
#   TEST_NGINX_MILVUSO_WORKER  absolute path of milvuso-worker
#   TEST_NGINX_BINARY          the nginx to run (Debian's /usr/sbin/nginx)
#
# The block preprocessor installed by init():
#   - puts `load_module $TEST_NGINX_MILVUSO_MODULE;` in front of every
#     block's --- main_config;
#   - gives blocks without --- http_config / --- config the file's defaults
#     ($main::http_config, $main::config);
#   - runs a block's --- setup section (Perl, package main) before nginx is
#     (re)started or reloaded for the block (--- init runs after);
#   - adds `--- no_error_log [error]` to blocks that say nothing about the
#     error log (Test::Nginx already fails on [alert], [crit] and [emerg]);
#   - sets $ENV{TEST_NGINX_ACTLOG} to a fresh directory (not created yet)
#     for the block's milvuso_action_log;
#   - arranges for a block's --- after section (Perl, package main) to run
#     once, after the block's last response, with bodies() holding the raw
#     response bodies of the block.
#
# Processes: start_worker() runs `milvuso-worker --foreground` in the
# background (stop_worker() signals and reaps it), run_worker() runs it to
# its end; every process started through them (or handed to track_child())
# and not reaped yet is killed (SIGKILL) by kill_spawned(), which an END
# block calls, also when SIGINT, SIGTERM or SIGHUP ends the test.

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use HTTP::Tiny;
use IO::Socket::INET ();
use JSON::PP ();
use POSIX ();
use Test::More ();
use Time::HiRes ();

our @EXPORT = qw(listen_loopback worker module_path snapshot inspect write_jsonl tmpdir
                 json_decode json_encode summary bodies read_actlog
                 log_records crc32c http_get http_post wait_for
                 actions_json item_json flip_byte publish_link now_rfc3339
                 tiny_model no_log_records json_keys
                 write_toml start_worker stop_worker run_worker
                 track_child kill_spawned actlog_end snapshot_position
                 read_metrics file_text kafka_topics start_poster
                 pops how_ended services kafka_worker_config
                 stream_offsets snapshot_items);

our @RAW;          # raw bodies of the current block's responses

my $JSON = JSON::PP->new->utf8(1)->canonical(1)->allow_nonref(1);

sub json_decode { my $s = shift; return eval { $JSON->decode($s) } }
sub json_encode { return $JSON->encode(shift) }

sub module_path { return $ENV{TEST_NGINX_MILVUSO_MODULE} }
sub worker      { return $ENV{TEST_NGINX_MILVUSO_WORKER} }

# Makes nginx listen on 127.0.0.1 only (Test::Nginx's default is every
# address), for the files that also talk to it with plain HTTP.
sub listen_loopback {
    my $port = Test::Nginx::Util::server_port();
    $port =~ s/.*://;
    Test::Nginx::Util::server_port_for_client($port);
    Test::Nginx::Util::server_port("127.0.0.1:$port");
    $ENV{TEST_NGINX_SERVER_PORT} //= $port;
    $ENV{TEST_NGINX_STREAM_PORT} //= $port + 1;
}

sub init {
    my $mod = module_path();
    my $w = worker();
    if (!defined $mod || !-f $mod) {
        Test::More::plan(skip_all => 'TEST_NGINX_MILVUSO_MODULE does not name '
                                   . 'ngx_http_milvuso_module.so');
    }
    if (!defined $w || !-x $w) {
        Test::More::plan(skip_all => 'TEST_NGINX_MILVUSO_WORKER does not name '
                                   . 'milvuso-worker');
    }
    Test::More::plan('no_plan');

    # Test::Base evaluates `--- xxx eval` sections in Test::Base::Filter:
    # make the helpers callable there too.
    # and --- init sections in Test::Nginx::Util.
    no strict 'refs';
    for my $pkg ('Test::Base::Filter', 'Test::Nginx::Util') {
        for my $f (@EXPORT) {
            *{"${pkg}::$f"} = \&{"MilvusoTest::$f"}
                unless defined &{"${pkg}::$f"};
        }
    }

    Test::Nginx::Util::add_block_preprocessor(\&_preprocess);
    Test::Nginx::Socket::add_response_body_check(\&_after_response);
}

sub _preprocess {
    my $block = shift;
    @RAW = ();

    my $mc = $block->main_config // '';
    $block->set_value('main_config',
                      "load_module \$TEST_NGINX_MILVUSO_MODULE;\n$mc");

    no warnings 'once';
    if (!defined $block->http_config && defined $main::http_config) {
        $block->set_value('http_config', $main::http_config);
    }
    if (!defined $block->config && defined $main::config) {
        $block->set_value('config', $main::config);
    }

    # nginx also prints a refused configuration on stderr: keep prove's
    # output clean, the error log holds the same line.
    if (defined $block->must_die && !defined $block->suppress_stderr) {
        $block->set_value('suppress_stderr', 1);
    }

    if (!defined $block->error_log && !defined $block->no_error_log
        && !defined $block->must_die)
    {
        $block->set_value('no_error_log', "[error]\n");
    }

    # Every block gets a fresh, empty action-log directory.
    $ENV{TEST_NGINX_ACTLOG} = tmpdir() . '/actlog';

    my $setup = $block->setup;
    if (defined $setup) {
        package main;
        eval $setup;
        die "$0 " . $block->name . ": --- setup failed: $@" if $@;
    }
}

sub _requests {
    my $block = shift;
    my $r = $block->request;
    return ref $r eq 'ARRAY' ? scalar @$r : 1;
}

sub _after_response {
    my ($block, $content, $req_idx, $repeated_req_idx, $dry_run) = @_;
    push @RAW, $content unless defined $block->response_body_filters;
    return if $req_idx != _requests($block) - 1;
    my $after = $block->after;
    return unless defined $after;
    package main;
    eval $after;
    Test::More::fail($block->name . " - --- after died: $@") if $@;
}

# The raw bodies of the current block's responses, in order.
sub bodies { return @RAW }

# A response-body filter: the JSON answer reduced to one line that a
# --- response_body_like can match, e.g.
#   "source=index gen=1 n=2 items=item-a1,item-a2"   (recommendations)
#   "gen=1 n=1 items=item-a2"                         (similar)
#   "error=invalid_json"                              (errors)
#   "status=accepted event_id=yes item_id=item-1"     (POST answers)
sub summary {
    my $body = shift;
    push @RAW, $body;
    my $j = json_decode($body);
    return "not json: $body" unless ref $j eq 'HASH';
    if (exists $j->{error}) {
        # every error carries a non-empty text detail
        my $d = $j->{detail};
        return "error=$j->{error}" if defined $d && !ref $d && length $d;
        return "error=$j->{error} (without detail)";
    }
    if (ref $j->{recommendations} eq 'ARRAY') {
        my @r = @{ $j->{recommendations} };
        my $sorted = _scores_sorted(\@r) ? '' : ' UNSORTED';
        return sprintf "source=%s gen=%s n=%d items=%s%s",
            $j->{source} // '-', $j->{model_generation} // '-', scalar @r,
            join(',', map { $_->{item_id} // '?' } @r), $sorted;
    }
    if (ref $j->{similar} eq 'ARRAY') {
        my @r = @{ $j->{similar} };
        my $sorted = _scores_sorted(\@r) ? '' : ' UNSORTED';
        return sprintf "gen=%s n=%d items=%s%s",
            $j->{model_generation} // '-', scalar @r,
            join(',', map { $_->{item_id} // '?' } @r), $sorted;
    }
    if (exists $j->{status}) {
        my $s = "status=$j->{status}";
        if (exists $j->{event_id}) {
            my $ok = defined $j->{event_id} && !ref $j->{event_id}
                     && length $j->{event_id};
            $s .= ' event_id=' . ($ok ? 'yes' : 'no');
        }
        $s .= " item_id=$j->{item_id}" if exists $j->{item_id};
        return $s;
    }
    return "json: $body";
}

# Every key name in a decoded JSON document, at any depth.
sub json_keys {
    my $j = shift;
    return map { ($_, json_keys($j->{$_})) } keys %$j if ref $j eq 'HASH';
    return map { json_keys($_) } @$j if ref $j eq 'ARRAY';
    return ();
}

# Scores must not increase down a list (higher score = better match).
sub _scores_sorted {
    my $r = shift;
    for my $i (1 .. $#$r) {
        my ($a, $b) = ($r->[$i - 1]{score}, $r->[$i]{score});
        next unless defined $a && defined $b;
        return 0 if $b > $a + 1e-6;
    }
    return 1;
}

# ---- the worker ----------------------------------------------------------

my @TMP;   # keeps File::Temp objects alive until the end

sub tmpdir {
    my $d = File::Temp->newdir('milvuso-tn-XXXXXX', TMPDIR => 1,
                               CLEANUP => 1);
    push @TMP, $d;
    chmod 0755, "$d";
    return "$d";
}

sub _run {
    my @cmd = @_;
    my $out = '';
    open my $fh, '-|', @cmd or die "cannot run @cmd: $!";
    { local $/; $out = <$fh> // '' }
    close $fh;
    die "@cmd failed (status $?):\n$out" if $?;
    return $out;
}

# snapshot(out => DIR, synthetic => N, dim => ..., ...) or
# snapshot(out => DIR, items => FILE, users => FILE, ...)
sub snapshot {
    my %o = @_;
    my @args = (worker(), 'snapshot');
    for my $k (sort keys %o) {
        (my $opt = $k) =~ s/_/-/g;
        push @args, "--$opt", $o{$k};
    }
    my $out = _run(@args);
    return $out;
}

# inspect(PATH, '--search', 'item-000042', '--k', 5): the decoded --json.
sub inspect {
    my ($path, @more) = @_;
    my $out = _run(worker(), 'inspect', $path, '--json', @more);
    my $j = json_decode($out) or die "inspect output is not JSON: $out";
    return $j;
}

sub write_jsonl {
    my ($path, @objs) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh json_encode($_), "\n" for @objs;
    close $fh or die "$path: $!";
    return $path;
}

# Flips one byte (at the middle by default) of a file.
sub flip_byte {
    my ($path, $at) = @_;
    open my $fh, '+<:raw', $path or die "$path: $!";
    my $size = -s $fh;
    $at //= int($size / 2);
    seek $fh, $at, 0;
    read $fh, my $b, 1;
    seek $fh, $at, 0;
    print $fh chr(ord($b) ^ 0xFF);
    close $fh or die "$path: $!";
}

# Points DIR/current at FILE atomically (as the publisher does).
sub publish_link {
    my ($dir, $file) = @_;
    my $tmp = "$dir/.current.tmp.$$";
    unlink $tmp;
    symlink $file, $tmp or die "symlink $tmp: $!";
    rename $tmp, "$dir/current" or die "rename $tmp: $!";
}

# The UTC time SECONDS ago (default 0) in RFC 3339.
sub now_rfc3339 {
    my $ago = shift // 0;
    my @t = gmtime(time - $ago);
    return sprintf '%04d-%02d-%02dT%02d:%02d:%02dZ',
        $t[5] + 1900, $t[4] + 1, $t[3], $t[2], $t[1], $t[0];
}

# The tiny hand-computable model (cosine, dim 4), published into DIR:
#
#   item     vector      category  popularity  cos to user-x = e1
#   item-a1  [1,0,0,0]   cat-a     0.5          1
#   item-a2  [2,1,0,0]   cat-a     0.4          0.894
#   item-a3  [1,1,0,0]   cat-a     0.7          0.707
#   item-b1  [1,0,3,0]   cat-b     0.6          0.316
#   item-b2  [0,0,1,0]   cat-b     0.8          0
#   item-b3  [-1,0,0,1]  cat-b     0.9         -0.707
#
#   users: user-x [1,0,0,0], user-y [0,0,1,0] (b2 1, b1 0.949, the rest 0),
#          user-z [1,1,0.1,0] (a3 0.998, a2 0.944, a1 0.705, ...)
#
# Popularity order: b3 b2 a3 b1 a1 a2; in cat-a: a3 a1 a2; cat-b: b3 b2 b1.
# Extra named arguments go to `milvuso-worker snapshot` (e.g. generation,
# or metric => 'ip': t/045-inner-product.t lists that model's dot products).
our @TINY_ITEMS = (
    [ 'item-a1', [ 1, 0, 0, 0 ],  'cat-a', 0.5 ],
    [ 'item-a2', [ 2, 1, 0, 0 ],  'cat-a', 0.4 ],
    [ 'item-a3', [ 1, 1, 0, 0 ],  'cat-a', 0.7 ],
    [ 'item-b1', [ 1, 0, 3, 0 ],  'cat-b', 0.6 ],
    [ 'item-b2', [ 0, 0, 1, 0 ],  'cat-b', 0.8 ],
    [ 'item-b3', [ -1, 0, 0, 1 ], 'cat-b', 0.9 ],
);
our @TINY_USERS = (
    [ 'user-x', [ 1, 0, 0, 0 ] ],
    [ 'user-y', [ 0, 0, 1, 0 ] ],
    [ 'user-z', [ 1, 1, 0.1, 0 ] ],
);

#
# extra_items => [ITEM-HASH, ...] adds catalogue lines (e.g. deleted items).
sub tiny_model {
    my ($dir, %more) = @_;
    my $extra = delete $more{extra_items} // [];
    my $src = tmpdir();
    write_jsonl("$src/items.jsonl", (map {
        { item_id => $_->[0], embedding => $_->[1], category => $_->[2],
          popularity_score => $_->[3], tags => ['t'],
          created_at => '2024-01-01T00:00:00Z' }
    } @TINY_ITEMS), @$extra);
    write_jsonl("$src/users.jsonl", map {
        { user_id => $_->[0], embedding => $_->[1] }
    } @TINY_USERS);
    mkdir $dir;
    return snapshot(out => $dir, items => "$src/items.jsonl",
                    users => "$src/users.jsonl", %more);
}

# ---- the trainer daemon --------------------------------------------------

my %SPAWNED;        # pid => what, of children not reaped yet
my $MAIN_PID = $$;

# Writes a TOML file from { section => { key => value } } (section names
# may be dotted, e.g. 'training.action_weights').  Strings are quoted,
# numbers are written as given; keys in sorted order.
sub write_toml {
    my ($path, $conf) = @_;
    open my $fh, '>', $path or die "$path: $!";
    for my $sec (sort keys %$conf) {
        print $fh "[$sec]\n";
        for my $k (sort keys %{ $conf->{$sec} }) {
            my $v = $conf->{$sec}{$k};
            if ($v !~ /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/
                && $v ne 'true' && $v ne 'false')
            {
                (my $q = $v) =~ s/(["\\])/\\$1/g;
                $v = "\"$q\"";
            }
            print $fh "$k = $v\n";
        }
        print $fh "\n";
    }
    close $fh or die "$path: $!";
    return $path;
}


# kafka_worker_config(DIR, DIM, SNAPS, GROUP, SECTION => { key => value },
# ...): writes DIR/worker.toml for a milvuso-worker of the t/kafka suites
# and returns its path: the model (DIM, ip, seed 7), a Click weighing 1
# and popularity_half_life 0 (every item's popularity = the seed's + its
# Clicks, undecayed: the suites' exact counts), Kafka on the topics
# kafka_topics() made (group GROUP), the snapshots in SNAPS, the metrics
# in DIR/worker.prom, a publish every 0.1 s or 20 records.  Each further
# SECTION's keys are added to (or replace those of) that section.
sub kafka_worker_config {
    my ($dir, $dim, $snaps, $group, %more) = @_;
    my %conf = (
        recommendation => { embedding_dim => $dim, metric => 'ip' },
        training => { learning_rate => 0.1, seed => 7 },
        'training.action_weights' => { click => 1 },
        kafka => {
            enabled => 'true', brokers => $ENV{TEST_NGINX_KBROKERS},
            log_topic => $ENV{TEST_NGINX_KACT},
            feature_topic => $ENV{TEST_NGINX_KITM}, group_id => $group,
        },
        worker => {
            action_log => "$dir/unused-log", snapshot_dir => $snaps,
            metrics_file => "$dir/worker.prom", publish_interval => 0.1,
            publish_every => 20, poll_interval => 0.05, log_level => 'info',
            popularity_half_life => 0,
        },
    );
    for my $sec (keys %more) {
        $conf{$sec}{$_} = $more{$sec}{$_} for keys %{ $more{$sec} };
    }
    return write_toml("$dir/worker.toml", \%conf);
}

# Once something is spawned, SIGINT, SIGTERM and SIGHUP end the test
# through exit, so that the END blocks run (ours kills what was spawned,
# Test::Nginx's stops nginx) instead of leaving them behind.  A child
# forked by the test must put the default handlers back (see track_child).
my $EXIT_HANDLERS;
sub _exit_on_signals {
    return if $EXIT_HANDLERS++;
    for my $sig (qw(INT TERM HUP)) {
        next if ref $SIG{$sig};
        $SIG{$sig} = sub { Test::More::diag("SIG$sig: stopping"); exit 1 };
    }
}

# Forks and execs CMD with stdout appended to OUT and stderr to ERR (to
# OUT as well when ERR is undef).
sub _spawn {
    my ($what, $out, $err, @cmd) = @_;
    _exit_on_signals();
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # the test's own MILVUSO_* variables must not override its files
        delete $ENV{$_} for grep { /^MILVUSO_/ } keys %ENV;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $out or POSIX::_exit(126);
        if (defined $err) {
            open STDERR, '>>', $err or POSIX::_exit(126);
        } else {
            open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        }
        { exec { $cmd[0] } @cmd }
        POSIX::_exit(127);
    }
    $SPAWNED{$pid} = $what;
    return $pid;
}

# start_worker(config => FILE, out => FILE [, type => 'all', args => [...]]):
# `milvuso-worker --config FILE --worker-type TYPE --foreground` in the
# background, stdout and stderr appended to out.  Returns the pid.
sub start_worker {
    my %o = @_;
    return _spawn('milvuso-worker', $o{out}, undef, worker(),
                  '--config', $o{config},
                  '--worker-type', $o{type} // 'all', '--foreground',
                  @{ $o{args} // [] });
}

# Makes PID (a child forked by the test) one that stop_worker() can reap and
# kill_spawned() kills.  Returns PID.  The child should start with
#   $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
# and end with POSIX::_exit (no END blocks in a copy of the test).
sub track_child {
    my ($pid, $what) = @_;
    _exit_on_signals();
    $SPAWNED{$pid} = $what // 'child';
    return $pid;
}

# Reaps PID (from start_worker() or track_child()), first sending SIG (a
# name or number; none when undef), waiting at most SECONDS (default 10).
# Returns the wait status ($?), or undef when it did not end in time (then
# it is killed with SIGKILL and reaped).
sub stop_worker {
    my ($pid, $sig, $seconds) = @_;
    return undef unless $SPAWNED{$pid};
    kill $sig, $pid if defined $sig;
    my $deadline = Time::HiRes::time() + ($seconds // 10);
    my $status;
    while (1) {
        my $r = waitpid $pid, POSIX::WNOHANG();
        if ($r == $pid) { $status = $?; last }
        if ($r < 0) { last }
        if (Time::HiRes::time() >= $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            last;
        }
        Time::HiRes::sleep(0.02);
    }
    delete $SPAWNED{$pid};
    return $status;
}

# run_worker(args => [...], out => FILE [, seconds => 10]): runs
# milvuso-worker ARGS to its end (killed after SECONDS), stdout into FILE
# and stderr into FILE.err.  Returns (wait status or undef on timeout, its
# stderr, its stdout).
sub run_worker {
    my %o = @_;
    my $out = $o{out} // die 'run_worker: out => FILE';
    unlink $out, "$out.err";
    my $pid = _spawn('milvuso-worker', $out, "$out.err", worker(),
                     @{ $o{args} });
    my $status = stop_worker($pid, undef, $o{seconds} // 10);
    return ($status, file_text("$out.err"), file_text($out));
}

# Kills (SIGKILL) and reaps every child started here and not reaped yet.
sub kill_spawned {
    return unless $$ == $MAIN_PID;
    local $?;            # in END, $? is the exit status of the test
    for my $pid (keys %SPAWNED) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        delete $SPAWNED{$pid};
    }
}

END { kill_spawned() }

# The whole text of a file ('' when it cannot be read).
sub file_text {
    my $path = shift;
    open my $fh, '<', $path or return '';
    local $/;
    return <$fh> // '';
}

# The position of the end of the action log in DIR, packed as a snapshot
# stores it: newest segment number << 40 | its size (0 when there is none).
sub actlog_end {
    my $dir = shift;
    opendir my $dh, $dir or return 0;
    my @segs = sort grep { /^actions-\d{20}\.log$/ } readdir $dh;
    closedir $dh;
    return 0 unless @segs;
    my ($seq) = $segs[-1] =~ /(\d{20})/;
    return (int($seq) << 40) | (-s "$dir/$segs[-1]");
}

# The "actlog" offset among the positions of a decoded inspect --json
# (undef when it has none).
sub snapshot_position {
    my $j = shift;
    for my $p (@{ $j->{positions} // [] }) {
        return $p->{offset} if $p->{stream} eq 'actlog' && $p->{partition} == 0;
    }
    return undef;
}

# The samples of a Prometheus text file: { name => value } ({} when missing).
sub read_metrics {
    my %m;
    for (split /\n/, file_text(shift)) {
        next if /^#/;
        $m{$1} = $2 if /^(\S+)\s+(\S+)$/;
    }
    return \%m;
}

# kafka_topics(PREFIX, PARTITIONS): for the suites of t/kafka.  Skips the
# whole file (saying why) when MILVUSO_KAFKA_BROKERS is unset; otherwise
# creates the topics PREFIX_actions_PID, PREFIX_items_PID (and
# PREFIX_examples_PID, PREFIX_counts_PID for a feature worker) with `milvuso-worker topics` (dies when that fails),
# exports them and the brokers to nginx.conf as $TEST_NGINX_KBROKERS,
# $TEST_NGINX_KACT and $TEST_NGINX_KITM, and returns (brokers, actions
# topic, items topic).  Call it before init().
sub kafka_topics {
    my ($prefix, $partitions) = @_;
    my $b = $ENV{MILVUSO_KAFKA_BROKERS};
    if (!$b) {
        Test::More::plan(skip_all => 'MILVUSO_KAFKA_BROKERS is not set (make '
                                   . 'services-suites starts a broker and sets it)');
    }
    my ($act, $itm) = ("${prefix}_actions_$$", "${prefix}_items_$$");
    {
        local $ENV{MILVUSO_KAFKA_LOG_TOPIC} = $act;
        local $ENV{MILVUSO_KAFKA_FEATURE_TOPIC} = $itm;
        local $ENV{MILVUSO_KAFKA_TRAINING_TOPIC} = "${prefix}_examples_$$";
        local $ENV{MILVUSO_FEATURE_POPULARITY_TOPIC} = "${prefix}_counts_$$";
        local $ENV{MILVUSO_KAFKA_PARTITIONS} = $partitions;
        my $out = `$ENV{TEST_NGINX_MILVUSO_WORKER} topics --timeout 20 2>&1`;
        die "milvuso-worker topics failed: $out" if $?;
    }
    $ENV{TEST_NGINX_KBROKERS} = $b;
    $ENV{TEST_NGINX_KACT} = $act;
    $ENV{TEST_NGINX_KITM} = $itm;
    return ($b, $act, $itm);
}

# services(RUN, ARGS...): conf/services.sh ARGS on the broker whose run
# directory is RUN (MILVUSO_SERVICES_RUN: the suite's own), e.g. 'stop',
# 'restart', 'restart', '--kill'.  Returns true when it succeeded.
sub services {
    my ($run, @args) = @_;
    my $out = `./conf/services.sh @args --run $run --worker $ENV{TEST_NGINX_MILVUSO_WORKER} 2>&1`;
    Test::More::note("services.sh @args: $out");
    return $? == 0;
}

# start_poster(PLAN, OUT [, pace => SECONDS, retry_503 => SECONDS]): posts
# the plan (a file of "user item type [event_id]" lines: with a fourth
# field, the client names the event) to POST /actions from a child
# process over one keep-alive connection (a plain socket: HTTP::Tiny costs
# more CPU than nginx does here), sleeping PACE (default 0.01) after every
# tenth; writes "status user item type" lines to OUT as answers arrive
# (status 0: no answer; "503?": a 503 saying the record may still have
# been stored).  Like an HTTP client, a request that got no answer
# on a reused keep-alive connection (the server closed it: a reload) is
# sent again once on a new one.  With retry_503, a 503 that says the event
# was not applied and may be posted again is posted again (every 0.2 s, for at most SECONDS); each
# 503 is written to OUT too.  Returns the child's pid (stop_worker() reaps
# it).
sub start_poster {
    my ($plan, $out, %o) = @_;
    my $pace = $o{pace} // 0.01;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
        my $ok = eval {
            open my $in, '<', $plan or die "$plan: $!";
            open my $fh, '>', $out or die "$out: $!";
            $fh->autoflush(1);
            my ($sock, $reused);
            my $post = sub {
                my $body = shift;
                $reused = defined $sock;
                $sock //= IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                    PeerPort => $Test::Nginx::Util::ServerPortForClient,
                    Timeout => 10) or die "connect: $!";
                local $SIG{PIPE} = 'IGNORE';
                print $sock "POST /actions HTTP/1.1\r\nHost: localhost\r\n"
                    . "Content-Type: application/json\r\n"
                    . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
                my ($status, $len, $close) = (0, 0, 0);
                while (my $h = <$sock>) {
                    $status = $1 if !$status && $h =~ m{^HTTP/1\.\d (\d+)};
                    $len = $1 if $h =~ /^Content-Length:\s*(\d+)/i;
                    $close = 1 if $h =~ /^Connection:\s*close/i;
                    last if $h eq "\r\n";
                }
                my $resp = '';
                read $sock, $resp, $len if $len;
                undef $sock if $close || !$status;
                return ($status, $resp);
            };
            while (my $line = <$in>) {
                chomp $line;
                my ($u, $i, $t, $eid) = split / /, $line;
                my $body = actions_json($u, $i, $t,
                                        defined $eid ? (event_id => $eid) : ());
                my $until = Time::HiRes::time() + ($o{retry_503} // 0);
                my ($status, $resp);
                while (1) {
                    ($status, $resp) = $post->($body);
                    ($status, $resp) = $post->($body) if !$status && $reused;
                    last unless $o{retry_503} && $status == 503
                        && $resp =~ /may be posted again/
                        && Time::HiRes::time() < $until;
                    print $fh "503 $line\n";
                    Time::HiRes::sleep(0.2);
                }
                # "503?": refused, but the record may still reach Kafka
                print $fh +($status == 503
                            && $resp =~ /may count it twice|with the same event_id is safe/
                            ? '503?' : $status), " $line\n";
                Time::HiRes::sleep($pace) if $pace && $. % 10 == 0;
            }
            close $fh or die "$out: $!";
            1;
        };
        print STDERR "poster: $@" unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }
    return track_child($pid, 'poster');
}

# { item id => popularity } of an inspect() answer made with --all-items.
sub pops {
    my $j = shift;
    return { map { $_->{id} => $_->{popularity} } @{ $j->{items} // [] } };
}

# The sum of snapshot J's offsets (an inspect() answer) for TOPIC: the
# records of TOPIC it has applied.
sub stream_offsets {
    my ($j, $topic) = @_;
    my $n = 0;
    $n += $_->{offset} for grep { $_->{stream} eq $topic } @{ $j->{positions} // [] };
    return $n;
}

# inspect() of SNAPS/current with every item, or undef while there is none.
sub snapshot_items {
    my $snaps = shift;
    return eval { inspect("$snaps/current", '--all-items') };
}

# How a wait status from stop_worker() ended: "exit N", "signal N" or
# "did not stop" (undef).
sub how_ended {
    my $st = shift;
    return 'did not stop' unless defined $st;
    return 'signal ' . ($st & 127) if $st & 127;
    return 'exit ' . ($st >> 8);
}

# ---- request bodies ------------------------------------------------------

sub actions_json {
    my ($user, $item, $type, %more) = @_;
    return json_encode({ user_id => $user, item_id => $item,
                         action_type => $type, %more });
}

sub item_json {
    my ($id, $vec, %more) = @_;
    return json_encode({ item_id => $id, embedding => $vec, %more });
}

# ---- the action log ------------------------------------------------------

my @CRC_TABLE;
sub crc32c {
    my $data = shift;
    if (!@CRC_TABLE) {
        for my $i (0 .. 255) {
            my $c = $i;
            for (1 .. 8) {
                $c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1);
            }
            $CRC_TABLE[$i] = $c;
        }
    }
    my $crc = 0xFFFFFFFF;
    for my $byte (unpack 'C*', $data) {
        $crc = $CRC_TABLE[($crc ^ $byte) & 0xFF] ^ ($crc >> 8);
    }
    return $crc ^ 0xFFFFFFFF;
}

# Reads every segment (actions-*.log) of DIR in order.  Returns a hash:
#   segments => [names], records => [{segment, offset, type, flags, len,
#   crc_ok, payload, json}], damage => [descriptions of bytes that are not
#   a record].
sub read_actlog {
    my $dir = shift;
    my %r = (segments => [], records => [], damage => []);
    opendir my $dh, $dir or return \%r;
    my @segs = sort grep { /^actions-\d{20}\.log$/ } readdir $dh;
    closedir $dh;
    $r{segments} = \@segs;
    for my $seg (@segs) {
        open my $fh, '<:raw', "$dir/$seg" or die "$dir/$seg: $!";
        my $data = do { local $/; <$fh> } // '';
        close $fh;
        my $off = 0;
        while ($off < length $data) {
            if (length($data) - $off < 16) {
                push @{ $r{damage} }, "$seg\@$off: short header";
                last;
            }
            my ($magic, $len, $type, $flags, $crc) =
                unpack 'a4 V v v V', substr($data, $off, 16);
            if ($magic ne "\xffMV\xfe") {
                push @{ $r{damage} }, "$seg\@$off: bad magic";
                last;
            }
            if ($off + 16 + $len > length $data) {
                push @{ $r{damage} }, "$seg\@$off: payload cut short";
                last;
            }
            my $payload = substr($data, $off + 16, $len);
            my $calc = crc32c(substr($data, $off + 4, 8) . $payload);
            push @{ $r{records} }, {
                segment => $seg, offset => $off, type => $type,
                flags => $flags, len => $len, crc_ok => ($calc == $crc),
                payload => $payload, json => json_decode($payload),
            };
            $off += 16 + $len;
        }
    }
    return \%r;
}

# The records of DIR (a list), failing the test on damage or a bad CRC.
sub log_records {
    my ($dir, $name) = @_;
    my $log = read_actlog($dir);
    Test::More::is_deeply($log->{damage}, [], "$name - log has no damage");
    my @bad = grep { !$_->{crc_ok} || !$_->{json} || $_->{flags} != 0 }
              @{ $log->{records} };
    Test::More::is(scalar @bad, 0,
                   "$name - every log record has a good CRC and JSON");
    return @{ $log->{records} };
}

# The block's action log holds no record.  The directory must exist (the
# module creates it when a worker starts): a missing one means the test
# looked in the wrong place or no log was configured, not "no records".
sub no_log_records {
    my $name = shift // 'log';
    my $dir = $ENV{TEST_NGINX_ACTLOG};
    Test::More::ok(defined $dir && -d $dir,
                   "$name - the action log directory exists");
    my $log = read_actlog($dir);
    Test::More::is(scalar @{ $log->{records} } + scalar @{ $log->{damage} },
                   0, "$name - nothing was written to the action log");
}

# ---- plain HTTP (for loops Test::Nginx blocks cannot express) -------------

sub _url {
    my $path = shift;
    no warnings "once";
    my $port = $Test::Nginx::Util::ServerPortForClient;
    return "http://127.0.0.1:$port$path";
}

sub http_get {
    my $path = shift;
    return HTTP::Tiny->new(timeout => 10)->get(_url($path));
}

sub http_post {
    my ($path, $body, $type) = @_;
    return HTTP::Tiny->new(timeout => 10)->post(_url($path), {
        headers => { 'Content-Type' => $type // 'application/json' },
        content => $body,
    });
}

# Calls CODE every 100 ms until it returns true or SECONDS pass; returns
# its last value.
sub wait_for {
    my ($seconds, $code) = @_;
    my $deadline = time + $seconds;
    my $v;
    while (1) {
        $v = $code->();
        return $v if $v || time >= $deadline;
        select undef, undef, undef, 0.1;
    }
}

1;
