# Two nginx workers, several concurrent clients posting actions: every
# accepted event is in the action log exactly once, intact (CRC-32C), and
# nothing else is.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;
use POSIX ();

MilvusoTest::init();
no_shuffle();
master_on();
workers(2);

my $dir = tmpdir();
tiny_model("$dir/snaps");
$ENV{TEST_NGINX_SNAPDIR} = "$dir/snaps";

our $http_config = <<'_EOC_';
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG;
_EOC_

our $config = <<'_EOC_';
    location = /actions        { milvuso_actions; }
    location = /items          { milvuso_items; }
    location = /metrics        { milvuso_metrics; }
    location /recommendations/ { milvuso_recommend; }
_EOC_

our $CLIENTS = 6;
our $EACH = 40;
our $out = tmpdir();
our %sent;        # event_id => "user item type" of every 202
our $answers;     # status => count

# Forks $CLIENTS clients; each posts $EACH actions (every 5th one an item)
# over its own keep-alive connection and writes "status event_id what" lines.
sub hammer {
    my @pids;
    for my $c (1 .. $CLIENTS) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            open my $fh, '>', "$out/client-$c" or POSIX::_exit(1);
            my $http = HTTP::Tiny->new(timeout => 20, keep_alive => 1);
            my $url = "http://127.0.0.1:$Test::Nginx::Util::ServerPortForClient";
            for my $n (1 .. $EACH) {
                my ($path, $body, $what);
                if ($n % 5 == 0) {
                    my $id = "item-c$c-$n";
                    $path = '/items';
                    $body = item_json($id, [$c, $n, 1, 0], category => "cat-c$c");
                    $what = "item $id";
                } else {
                    my @types = qw(View Click Like Share AddToCart Purchase Dislike);
                    my ($u, $i, $t) = ("user-c$c-$n", 'item-a' . (1 + $n % 3), $types[$n % 7]);
                    $path = '/actions';
                    $body = actions_json($u, $i, $t);
                    $what = "action $u $i $t";
                }
                my $r = $http->post("$url$path", {
                    headers => { 'Content-Type' => 'application/json' },
                    content => $body });
                my $j = json_decode($r->{content} // '') || {};
                print $fh join(' ', $r->{status}, $j->{event_id} // '-', $what), "\n";
            }
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    %sent = ();
    $answers = {};
    for my $c (1 .. $CLIENTS) {
        open my $fh, '<', "$out/client-$c" or die "client $c wrote nothing";
        while (<$fh>) {
            chomp;
            my ($status, $id, $what) = split / /, $_, 3;
            $answers->{$status}++;
            if ($status == 202) {
                die "event id $id answered twice" if exists $sent{$id};
                $sent{$id} = $what;
            }
        }
    }
}

# The checks shared by the blocks: the log holds exactly the 202s.
sub check_log {
    my $name = shift;
    is($answers->{202}, $CLIENTS * $EACH, "$name - every request answered 202")
        or Test::More::diag(Test::More::explain($answers));
    my @recs = log_records($ENV{TEST_NGINX_ACTLOG}, $name);
    is(scalar @recs, scalar keys %sent, "$name - as many records as 202s");
    my %seen;
    my @dups = grep { $seen{$_->{json}{event_id} // ''}++ } @recs;
    is(scalar @dups, 0, "$name - no duplicate event id in the log");
    my @wrong;
    for my $r (@recs) {
        my $j = $r->{json};
        my $what = $r->{type} == 2
            ? "item $j->{item_id}"
            : "action $j->{user_id} $j->{item_id} $j->{action_type}";
        my $want = $sent{ $j->{event_id} // '' };
        push @wrong, "$j->{event_id}: $what" unless defined $want && $want eq $what;
    }
    is_deeply(\@wrong, [], "$name - every record is one of the accepted events");
    # Per client, the records keep the order in which they were answered.
    my %last;
    my @order;
    for my $r (@recs) {
        my $j = $r->{json};
        my ($c, $n) = ($j->{user_id} // $j->{item_id}) =~ /-c(\d+)-(\d+)$/ or next;
        push @order, "client $c: $n after $last{$c}" if ($last{$c} // 0) > $n;
        $last{$c} = $n;
    }
    is_deeply(\@order, [], "$name - each client's events are in order");
    return scalar @recs;
}

run_tests();

__DATA__

=== TEST 1: concurrent clients, two workers: the log holds every 202 once, intact
--- init
::hammer();
--- request
GET /metrics
--- response_body_like eval
qr/^milvuso_requests_total\{(?=[^}]*endpoint="[^"]*actions[^"]*")(?=[^}]*status="202")[^}]*\}\s+192$/m
--- after
::check_log('2 workers');



=== TEST 2: the same with a small segment: rotation under concurrency loses nothing
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG segment=4k;
--- init
::hammer();
--- request
GET /recommendations/user-c1-1?num_recommendations=3
--- response_body_filters eval
\&summary
--- response_body_like: ^source=(?:profile|index) gen=1 n=3
--- after
my $n = ::check_log('rotation');
my @segs = @{ read_actlog($ENV{TEST_NGINX_ACTLOG})->{segments} };
ok(@segs > 1, 'the log rotated (' . scalar(@segs) . " segments for $n records)");
my @sizes = map { -s "$ENV{TEST_NGINX_ACTLOG}/$_" } @segs;
my @big = grep { $_ > 4096 + 1024 } @sizes[0 .. $#sizes - 1];
is(scalar @big, 0, 'sealed segments stop near the segment size');
