# The action log with sync=on: appends and their fdatasync run in a thread
# pool, so an append that waits for the disk holds up neither the worker's
# other requests nor, once written, the answer; a worker told to quit waits
# for the appends it started.  A FIFO stands in for a disk that does not
# answer: the first segment is one, so an append's open() waits until the
# test opens it for reading.  Also the directive's thread_pool= parameter.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;
use Fcntl ();
use IO::Socket::INET ();

MilvusoTest::init();
no_shuffle();
listen_loopback();
# a master and one worker: a worker's graceful quit (TEST 5) exists only
# under a master (a single process exits at once on SIGQUIT)
master_on();
workers(1);

my $dir = tmpdir();
tiny_model("$dir/snaps");
$ENV{TEST_NGINX_SNAPDIR} = "$dir/snaps";

our $http_config = <<'_EOC_';
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG sync=on;
_EOC_

our $config = <<'_EOC_';
    location = /actions        { milvuso_actions; }
    location /recommendations/ { milvuso_recommend; }
_EOC_

# The block's log directory with a FIFO as its first segment.
sub fifo_log {
    mkdir $ENV{TEST_NGINX_ACTLOG} or die "mkdir: $!";
    my $fifo = "$ENV{TEST_NGINX_ACTLOG}/actions-00000000000000000001.log";
    system('mkfifo', $fifo) == 0 or die 'mkfifo failed';
    return $fifo;
}

# Sends a POST /actions on a new connection without waiting; returns it.
sub post_pending {
    my ($port) = MilvusoTest::_url('/') =~ m{:(\d+)/};
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or die "connect: $!";
    my $body = actions_json('user-x', 'item-a1', 'View');
    print $s "POST /actions HTTP/1.0\r\nHost: localhost\r\n"
             . "Content-Type: application/json\r\n"
             . "Content-Length: " . length($body) . "\r\n\r\n$body";
    select undef, undef, undef, 0.5;        # the append is waiting now
    return $s;
}

# Opens the FIFO for reading (the append's open() returns) and reads the
# POST's answer (at most 10 s).
sub release_and_answer {
    my ($fifo, $s) = @_;
    sysopen(my $rd, $fifo, Fcntl::O_RDONLY() | Fcntl::O_NONBLOCK())
        or die "open fifo: $!";
    my $answer = '';
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 10;
        local $/;
        $answer = <$s> // '';
        alarm 0;
    };
    close $rd;
    close $s;
    return $answer;
}

sub nginx_pid {
    no warnings 'once';
    open my $fh, '<', $Test::Nginx::Util::PidFile or return undef;
    my $pid = <$fh>;
    chomp $pid if defined $pid;
    return $pid;
}

run_tests();

__DATA__

=== TEST 1: thread_pool= names the pool the appends run in
--- main_config
    thread_pool milvuso_log threads=2;
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG sync=on thread_pool=milvuso_log;
--- request eval
["POST /actions\n" . actions_json('user-x', 'item-a1', 'View'),
 "POST /actions\n" . actions_json('user-y', 'item-a2', 'Like')]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202]
--- after
my @r = log_records($ENV{TEST_NGINX_ACTLOG}, 'named pool');
is_deeply([map { $_->{json}{user_id} } @r], ['user-x', 'user-y'],
          'both appends are in the log, in order');



=== TEST 2: thread_pool= without sync=on is refused at nginx -t
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_action_log $TEST_NGINX_ACTLOG thread_pool=milvuso_log;
--- request
GET /recommendations/user-x
--- must_die
--- error_log eval
qr/\[emerg\] .*"milvuso_action_log" directive uses thread_pool= with sync=on only/



=== TEST 3: an empty thread_pool= is refused
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_action_log $TEST_NGINX_ACTLOG sync=on thread_pool=;
--- request
GET /recommendations/user-x
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "thread_pool="/



=== TEST 4: an append waiting for the disk: a GET is answered meanwhile, the POST once the append returns
--- setup
$::FIFO = fifo_log();
--- request
GET /recommendations/user-x?num_recommendations=1
--- response_body_like: "recommendations"
--- no_error_log
[alert]
[emerg]
--- after
my $s = post_pending();
my $get = HTTP::Tiny->new(timeout => 3)
    ->get(MilvusoTest::_url('/recommendations/user-x?num_recommendations=1'));
is($get->{status}, 200, 'a GET is answered while the append waits');
like(release_and_answer($::FIFO, $s), qr{^HTTP/1\.[01] (?:202|503) },
     'the POST is answered once the append returns');



=== TEST 5: nginx told to quit while an append waits: the worker answers the POST before it exits
--- setup
$::FIFO = fifo_log();
--- request
GET /recommendations/user-x?num_recommendations=1
--- response_body_like: "recommendations"
--- no_error_log
[emerg]
--- after
my $s = post_pending();
my $pid = nginx_pid();
ok($pid && kill('QUIT', $pid), 'nginx told to quit');
select undef, undef, undef, 0.5;
ok(kill(0, $pid), 'it waits for the append its worker started');
like(release_and_answer($::FIFO, $s), qr{^HTTP/1\.[01] (?:202|503) },
     'the POST is answered');
my $gone = 0;
for (1 .. 50) {
    if (!kill(0, $pid)) { $gone = 1; last }
    select undef, undef, undef, 0.1;
}
ok($gone, 'then it exits');
