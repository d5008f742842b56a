# GET /health and GET /metrics, with a good, a missing and a corrupt snapshot,
# the action log's disk use, and whether the trainer is behind what this
# nginx accepted (an old model, a recent one, none).
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;

MilvusoTest::init();
no_shuffle();

# A synthetic model (2000 items, 200 users, 5 categories) ...
my $dir = tmpdir();
snapshot(out => "$dir/snaps", synthetic => 2000, dim => 16,
         categories => 5, users => 200, seed => 1);
$ENV{TEST_NGINX_SNAPDIR} = "$dir/snaps";

# Models made long ago (2020) and a minute ago, for the trainer's lag.
our $OLD_MS = 1577836800000;
snapshot(out => "$dir/old", synthetic => 50, dim => 16, categories => 2,
         created_at => '2020-01-01T00:00:00Z');
$ENV{TEST_NGINX_OLDSNAPDIR} = "$dir/old";
snapshot(out => "$dir/recent", synthetic => 50, dim => 16, categories => 2,
         created_at => now_rfc3339(60));
$ENV{TEST_NGINX_RECENTSNAPDIR} = "$dir/recent";

# ... and a copy of its file with one byte flipped in the middle (inside a
# checksummed section, so the reader must refuse it).
our $corrupt_reason;
{
    my $file = readlink("$dir/snaps/current") // die "no current link";
    mkdir "$dir/bad";
    system('cp', "$dir/snaps/$file", "$dir/bad/snapshot.mvs") == 0 or die;
    flip_byte("$dir/bad/snapshot.mvs");
    my $out = `$ENV{TEST_NGINX_MILVUSO_WORKER} inspect $dir/bad/snapshot.mvs 2>&1`;
    ($corrupt_reason) = $out =~ /invalid: (.*)/ or die "inspect accepted the corrupt copy: $out";
    $corrupt_reason =~ s/^section \d+ \(([^)]*)\) //;    # e.g. "checksum mismatch"
}
$ENV{TEST_NGINX_BADSNAP} = "$dir/bad/snapshot.mvs";

our $http_config = <<'_EOC_';
    milvuso_zone     milvuso:4m;
    milvuso_snapshot $TEST_NGINX_SNAPDIR/current;
_EOC_

our $config = <<'_EOC_';
    location /recommendations/ { milvuso_recommend; }
    location = /health         { milvuso_health; }
    location = /metrics        { milvuso_metrics; }
_EOC_

# "status trainer" of a /health body: status=S unpublished=N|null
# behind=true|false after=T; unpublished as "age" when it is at least the
# old model's age (time of the check).
sub trainer_summary {
    my $j = json_decode($_[0]) or return "not json: $_[0]";
    my $t = $j->{trainer} or return "no trainer: $_[0]";
    my $u = $t->{unpublished_seconds};
    $u = !defined $u ? 'null'
       : $u >= int((time * 1000 - $OLD_MS) / 1000) - 2 ? 'age'
       : $u;
    return CORE::join ' ', "status=$j->{status}", "unpublished=$u",
        'behind=' . (!defined $t->{behind} ? '?'
                     : $t->{behind} ? 'true' : 'false'),
        "after=$t->{behind_after_seconds}";
}

# The samples of a /metrics body: { name => value }.
sub samples {
    return { map { /^(\w+) (\S+)$/ ? ($1, $2) : () } split /\n/, shift // '' };
}

run_tests();

__DATA__

=== TEST 1: with a snapshot: status ok, generation and counts
--- request
GET /health
--- response_headers_like
Content-Type: application/json.*
--- response_body_filters eval
sub { push @MilvusoTest::RAW, $_[0];
      my $j = json_decode($_[0]) or return "not json: $_[0]";
      my $counts = json_encode($j);
      CORE::join ' ', "status=$j->{status}",
          "gen=" . ($j->{model_generation} // $j->{generation} // '-'),
          ($counts =~ /\b2000\b/ ? 'items=2000' : 'items=?'),
          ($counts =~ /\b200\b/ ? 'users=200' : 'users=?') }
--- response_body chomp
status=ok gen=1 items=2000 users=200
--- after
my $j = json_decode((bodies())[0]);
my @keys = json_keys($j);
ok(scalar(grep { /age/ } @keys), 'health tells the snapshot age');
ok(scalar(grep { /zone/ } @keys), 'health tells the zone usage');



=== TEST 2: a missing snapshot does not stop nginx: degraded
--- http_config
    milvuso_zone     milvuso:4m;
    milvuso_snapshot /nonexistent/milvuso/current;
--- request
GET /health
--- error_code_like: ^(?:200|503)$
--- response_body_like: "status"\s*:\s*"degraded"
--- no_error_log
[emerg]
[alert]



=== TEST 3: without milvuso_snapshot at all: degraded
--- http_config
    milvuso_zone     milvuso:4m;
--- request
GET /health
--- error_code_like: ^(?:200|503)$
--- response_body_like: "status"\s*:\s*"degraded"



=== TEST 4: a corrupt snapshot is refused with its reason: degraded
--- http_config
    milvuso_zone     milvuso:4m;
    milvuso_snapshot $TEST_NGINX_BADSNAP;
--- request
GET /health
--- error_code_like: ^(?:200|503)$
--- response_body_like: "status"\s*:\s*"degraded"
--- error_log eval
[qr/\[(?:error|crit|warn)\] .*\Q$::corrupt_reason\E/]
--- no_error_log
[alert]
[emerg]



=== TEST 5: a corrupt snapshot: recommendations for a known user are not served from it
--- http_config
    milvuso_zone     milvuso:4m;
    milvuso_snapshot $TEST_NGINX_BADSNAP;
--- request
GET /recommendations/user-000001
--- error_code: 503
--- response_body_like: "error"\s*:\s*"no_model"
--- error_log eval
[qr/\Q$::corrupt_reason\E/]



=== TEST 6: /metrics is Prometheus text with request counters by endpoint and status
--- request eval
["GET /health", "GET /recommendations/user-000001?num_recommendations=3",
 "GET /recommendations/user-000001?num_recommendations=3",
 "GET /recommendations/bad!id", "GET /metrics"]
--- error_code eval
[200, 200, 200, 400, 200]
--- response_headers_like eval
["", "", "", "", "Content-Type: text/plain.*"]
--- response_body_like eval
['"status"', '"recommendations"', '"recommendations"', '"invalid_id"',
 '# TYPE milvuso_requests_total counter']
--- after
my $m = (bodies())[4];
like($m, qr/^milvuso_requests_total\{(?=[^}]*endpoint="[^"]*health[^"]*")(?=[^}]*status="200")[^}]*\}\s+1$/m,
     "metrics: 1 health request answered 200");
like($m, qr/^milvuso_requests_total\{(?=[^}]*endpoint="[^"]*recommend[^"]*")(?=[^}]*status="200")[^}]*\}\s+2$/m,
     "metrics: 2 recommendation requests answered 200");
like($m, qr/^milvuso_requests_total\{(?=[^}]*endpoint="[^"]*recommend[^"]*")(?=[^}]*status="400")[^}]*\}\s+1$/m,
     "metrics: 1 recommendation request answered 400");
like($m, qr/^\# TYPE milvuso_\w*cache_hits\w* counter$/m, "metrics: cache hits TYPE");
like($m, qr/^milvuso_\w*cache_hits\w*(?:\{[^}]*\})?\s+1$/m, "metrics: 1 cache hit");
like($m, qr/^milvuso_\w*cache_misses\w*(?:\{[^}]*\})?\s+1$/m, "metrics: 1 cache miss");
like($m, qr/^\# TYPE milvuso_\w+ histogram$/m, "metrics: a histogram");
like($m, qr/^milvuso_\w+_bucket\{[^}]*le="[0-9.e+-]+"[^}]*\}\s+\d+$/m, "metrics: latency buckets");
like($m, qr/^milvuso_\w+_bucket\{[^}]*le="\+Inf"[^}]*\}\s+\d+$/m, "metrics: +Inf bucket");
like($m, qr/^milvuso_\w+_sum(?:\{[^}]*\})?\s+[0-9.e+-]+$/m, "metrics: histogram sum");
like($m, qr/^milvuso_\w+_count(?:\{[^}]*\})?\s+\d+$/m, "metrics: histogram count");
like($m, qr/^milvuso_\w*generation\w*(?:\{[^}]*\})?\s+1$/m, "metrics: snapshot generation 1");
my @bad = grep { !/^(?:#.*|\w+(?:\{[^}]*\})? [-+0-9.eEInfa]+)$/ } split /\n/, $m;
is_deeply(\@bad, [], "metrics: every line is a comment or a sample");



=== TEST 7: /health answers only GET and HEAD
--- request
POST /health
{}
--- more_headers
Content-Type: application/json
--- error_code: 405
--- response_headers_like
Allow: GET.*
--- response_body_like: "error"\s*:\s*"method_not_allowed"



=== TEST 8: a snapshot of another dimension than milvuso_dim is refused: degraded
--- http_config
    milvuso_zone     milvuso:4m;
    milvuso_snapshot $TEST_NGINX_SNAPDIR/current;
    milvuso_dim      8;
--- request
GET /health
--- error_code_like: ^(?:200|503)$
--- response_body_like: "status"\s*:\s*"degraded"
--- error_log eval
[qr/\[(?:error|crit|warn)\] .*\bdim/]
--- no_error_log
[alert]
[emerg]



=== TEST 9: the action log's disk use in /health and /metrics: its segments only, listed at most once a second
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG;
--- config
    location = /actions        { milvuso_actions; }
    location = /health         { milvuso_health; }
    location = /metrics        { milvuso_metrics; }
--- setup
# segments 1 (100 bytes) and 2 (250), the newest (3) empty; a consumer
# registration and a stranger, which are not the log's bytes
my $d = $ENV{TEST_NGINX_ACTLOG};
mkdir $d;
mkdir "$d/consumers";
for ([1, 100], [2, 250], [3, 0], ['x', 40]) {
    my ($seq, $n) = @$_;
    my $f = $seq eq 'x' ? "$d/consumers/trainer-1"
                        : sprintf "$d/actions-%020d.log", $seq;
    open my $fh, '>', $f or die "$f: $!";
    print $fh 'x' x $n;
    close $fh;
}
open my $fh, '>', "$d/notes.txt" or die;
print $fh "not a segment\n";
close $fh;
--- request eval
["GET /health",
 "POST /actions\n" . MilvusoTest::actions_json('user-000001', 'item-000001', 'Click'),
 "GET /metrics"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 202, 200]
--- response_body_like eval
['"action_log":\{"enabled":true,"records":0,"errors":0,"bytes":350,"segments":3\}',
 '"accepted"',
 '(?m)^milvuso_action_log_bytes 350$']
--- after
my $d = $ENV{TEST_NGINX_ACTLOG};
my $m = (bodies())[2];
like($m, qr/^# TYPE milvuso_action_log_bytes gauge$/m, 'bytes: a gauge');
like($m, qr/^milvuso_action_log_segments 3$/m,
     'segments: 3, as of the /health before the POST (cached)');
# the log on disk: what the module appended went into segment 3
my $sum = 0;
$sum += -s $_ for glob "$d/actions-*.log";
cmp_ok($sum, '>', 350, 'the POST appended to the log');
my $al = sub { (json_decode(http_get('/health')->{content} // '') // {})
               ->{action_log} // {} };
select undef, undef, undef, 1.1;
my $h1 = $al->();
is("$h1->{bytes} $h1->{segments}", "$sum 3",
   'a second later: the bytes on disk, the POST included');
open my $fh, '>', sprintf("$d/actions-%020d.log", 4) or die;
print $fh 'y' x 1000;
close $fh;
my $h2 = $al->();
is("$h2->{bytes} $h2->{segments}", "$sum 3",
   'a new segment is not seen within the second (cached)');
select undef, undef, undef, 1.1;
my $h3 = $al->();
is("$h3->{bytes} $h3->{segments}", ($sum + 1000) . ' 4',
   'a second later it is');
my %mm = map { /^(\w+) (\S+)$/ ? ($1, $2) : () }
         split /\n/, http_get('/metrics')->{content} // '';
is(($mm{milvuso_action_log_bytes} // '?') . ' '
   . ($mm{milvuso_action_log_segments} // '?'), ($sum + 1000) . ' 4',
   '/metrics says the same');



=== TEST 10: an old model: nothing accepted, the trainer is not behind; once an action is accepted it is (reported, status still ok)
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_OLDSNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG;
--- config
    location = /actions        { milvuso_actions; }
    location = /health         { milvuso_health; }
    location = /metrics        { milvuso_metrics; }
--- request eval
["GET /health", "GET /metrics",
 "POST /actions\n" . MilvusoTest::actions_json('user-000001', 'item-000001', 'Click'),
 "GET /health", "GET /metrics"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 202, 200, 200]
--- response_body_filters eval
[[\&::trainer_summary], [sub { my $m = ::samples($_[0]);
      "unpublished=" . ($m->{milvuso_model_unpublished_seconds} // 'none')
      . " behind=" . ($m->{milvuso_trainer_behind} // 'none') }],
 [\&summary], [\&::trainer_summary],
 [sub { my $m = ::samples($_[0]);
      my $u = $m->{milvuso_model_unpublished_seconds} // -1;
      "unpublished=" . ($u >= (time * 1000 - $::OLD_MS) / 1000 - 2 ? 'age' : $u)
      . " behind=" . ($m->{milvuso_trainer_behind} // 'none') }]]
--- response_body eval
["status=ok unpublished=0 behind=false after=30",
 "unpublished=0 behind=0",
 "status=accepted event_id=yes",
 "status=ok unpublished=age behind=true after=30",
 "unpublished=age behind=1"]
--- after
my $m = http_get('/metrics')->{content} // '';
like($m, qr/^# TYPE milvuso_model_unpublished_seconds gauge$/m,
     'unpublished seconds: a gauge');
like($m, qr/^# TYPE milvuso_trainer_behind gauge$/m, 'behind: a gauge');



=== TEST 11: a model a minute old and behind=10m: an accepted action is unpublished for about a minute, not behind; behind= shows
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_RECENTSNAPDIR/current behind=10m;
    milvuso_action_log $TEST_NGINX_ACTLOG;
--- config
    location = /actions        { milvuso_actions; }
    location = /health         { milvuso_health; }
--- request eval
["POST /actions\n" . MilvusoTest::actions_json('user-000001', 'item-000001', 'Click'),
 "GET /health"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200]
--- response_body_filters eval
[[\&summary], [sub { my $s = ::trainer_summary($_[0]);
      $s =~ s/unpublished=(\d+)/$1 >= 60 && $1 < 600 ? 'unpublished=60+' : "unpublished=$1"/e;
      $s }]]
--- response_body eval
["status=accepted event_id=yes",
 "status=ok unpublished=60+ behind=false after=600"]



=== TEST 12: the same model with the default behind= (30s): behind
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_RECENTSNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG;
--- config
    location = /items          { milvuso_items; }
    location = /health         { milvuso_health; }
--- request eval
["POST /items\n" . MilvusoTest::item_json('item-new-1', [(0.5) x 16]),
 "GET /health"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200]
--- response_body_filters eval
[[\&summary], [sub { my $s = ::trainer_summary($_[0]);
      $s =~ s/unpublished=(\d+)/$1 >= 60 && $1 < 600 ? 'unpublished=60+' : "unpublished=$1"/e;
      $s }]]
--- response_body eval
["status=accepted event_id=yes item_id=item-new-1",
 "status=ok unpublished=60+ behind=true after=30"]



=== TEST 13: no model mapped: unpublished is null; behind once anything was accepted (status stays degraded)
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   /nonexistent/milvuso/current;
    milvuso_action_log $TEST_NGINX_ACTLOG;
--- config
    location = /actions        { milvuso_actions; }
    location = /health         { milvuso_health; }
    location = /metrics        { milvuso_metrics; }
--- request eval
["GET /health",
 "POST /actions\n" . MilvusoTest::actions_json('user-000001', 'item-000001', 'Click'),
 "GET /health", "GET /metrics"]
--- more_headers
Content-Type: application/json
--- error_code_like eval
["^(?:200|503)\$", "^202\$", "^(?:200|503)\$", "^200\$"]
--- response_body_filters eval
[[\&::trainer_summary], [\&summary], [\&::trainer_summary],
 [sub { my $m = ::samples($_[0]);
      "unpublished=" . ($m->{milvuso_model_unpublished_seconds} // 'none')
      . " behind=" . ($m->{milvuso_trainer_behind} // 'none') }]]
--- response_body eval
["status=degraded unpublished=null behind=false after=30",
 "status=accepted event_id=yes",
 "status=degraded unpublished=null behind=true after=30",
 "unpublished=none behind=1"]
--- no_error_log
[emerg]
[alert]

