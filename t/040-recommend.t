# GET /recommendations/{user}: the index, profile, popular and cache paths,
# parameters, filters, and the real-time effect of actions and items.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;

MilvusoTest::init();
no_shuffle();

my $dir = tmpdir();
tiny_model("$dir/snaps");
$ENV{TEST_NGINX_SNAPDIR} = "$dir/snaps";

# A synthetic model for the defaults (k = 10) and the popularity list.
snapshot(out => "$dir/syn", synthetic => 2000, dim => 16, categories => 5,
         users => 200, seed => 1);
$ENV{TEST_NGINX_SYNDIR} = "$dir/syn";
our $popular5 = join ',', map { $_->{id} } @{ inspect("$dir/syn")->{sample}{popular} };

our $http_config = <<'_EOC_';
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG;
    log_format milvuso '$request_uri src=$milvuso_source gen=$milvuso_generation cand=$milvuso_candidates';
_EOC_

our $config = <<'_EOC_';
    location = /actions        { milvuso_actions; }
    location = /items          { milvuso_items; }
    location /recommendations/ {
        milvuso_recommend;
        add_header X-Milvuso-Source $milvuso_source always;
        add_header X-Milvuso-Generation $milvuso_generation always;
        access_log logs/access.log milvuso;
    }
    location /k5/recommendations/ {
        milvuso_recommend;
        milvuso_max_k 5;
    }
    location /nocache/recommendations/ {
        milvuso_recommend;
        milvuso_cache_ttl 0;
        add_header X-Milvuso-Source $milvuso_source always;
    }
_EOC_

# What every expected list below follows from (see tiny_model in
# t/lib/MilvusoTest.pm): user-x = e1 ranks a1 a2 a3 b1 b2 b3; popularity
# ranks b3 b2 a3 b1 a1 a2.
sub act { my ($u, $i, $t) = @_; return "POST /actions\n" . actions_json($u, $i, $t) }

run_tests();

__DATA__

=== TEST 1: a known user is served from the index, k respected, in score order
--- request eval
["GET /recommendations/user-x?num_recommendations=3",
 "GET /recommendations/user-x",
 "GET /recommendations/user-x?num_recommendations=1"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-Milvuso-Source: index\nX-Milvuso-Generation: 1",
 "X-Milvuso-Source: index", "X-Milvuso-Source: index"]
--- response_body_filters eval
\&summary
--- response_body eval
["source=index gen=1 n=3 items=item-a1,item-a2,item-a3",
 "source=index gen=1 n=6 items=item-a1,item-a2,item-a3,item-b1,item-b2,item-b3",
 "source=index gen=1 n=1 items=item-a1"]
--- after
my $j = json_decode((bodies())[0]);
is($j->{user_id}, 'user-x', 'user_id echoed');
is($j->{model_generation}, 1, 'model_generation');
is_deeply([map { $_->{category} } @{ $j->{recommendations} }], ['cat-a', 'cat-a', 'cat-a'], 'categories');
ok(abs($j->{recommendations}[0]{score} - 1) < 1e-3, 'score of the identical item is 1');
ok(abs($j->{recommendations}[1]{score} - 2 / sqrt(5)) < 1e-3, 'score of item-a2 is its cosine');



=== TEST 2: num_recommendations out of bounds or not a number: 400 invalid_parameter
--- request eval
[map { "GET /recommendations/user-x?num_recommendations=$_" } 0, 101, 'abc', -1, '', '3x', '1e1']
--- error_code eval
[(400) x 7]
--- response_headers_like eval
[("Content-Type: application/json.*") x 7]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=invalid_parameter") x 7]



=== TEST 3: milvuso_max_k bounds num_recommendations per location
--- request eval
["GET /k5/recommendations/user-x?num_recommendations=5",
 "GET /k5/recommendations/user-x?num_recommendations=6",
 "GET /recommendations/user-x?num_recommendations=100"]
--- error_code eval
[200, 400, 200]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^source=index gen=1 n=5 ", "^error=invalid_parameter\$", "^source=index gen=1 n=6 "]



=== TEST 4: an invalid user id: 400 invalid_id
--- request eval
["GET /recommendations/bad!id", "GET /recommendations/user%20x",
 "GET /recommendations/" . ('u' x 65), "GET /recommendations/",
 "GET /recommendations/user%C3%A9"]
--- error_code eval
[(400) x 5]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=invalid_id") x 5]



=== TEST 5: a user id of 64 bytes is valid
--- request eval
"GET /recommendations/" . ('A-z.0_9:' x 8) . "?num_recommendations=2"
--- response_body_filters eval
\&summary
--- response_body chomp
source=popular gen=1 n=2 items=item-b3,item-b2



=== TEST 6: an unknown user without history: the popularity list, per category when asked
--- request eval
["GET /recommendations/nobody",
 "GET /recommendations/nobody?num_recommendations=2",
 "GET /recommendations/nobody?category=cat-a",
 "GET /recommendations/nobody?category=cat-b&num_recommendations=2"]
--- response_headers eval
[("X-Milvuso-Source: popular") x 4]
--- response_body_filters eval
\&summary
--- response_body eval
["source=popular gen=1 n=6 items=item-b3,item-b2,item-a3,item-b1,item-a1,item-a2",
 "source=popular gen=1 n=2 items=item-b3,item-b2",
 "source=popular gen=1 n=3 items=item-a3,item-a1,item-a2",
 "source=popular gen=1 n=2 items=item-b3,item-b2"]



=== TEST 7: an unknown user with actions: served from the profile, at once
--- request eval
[::act('newbie', 'item-b2', 'Like'),
 "GET /recommendations/newbie?num_recommendations=2",
 "GET /recommendations/newbie?num_recommendations=1&exclude_seen=1"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200, 200]
--- response_headers eval
["", "X-Milvuso-Source: profile", "X-Milvuso-Source: profile"]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes",
 "source=profile gen=1 n=2 items=item-b2,item-b1",
 "source=profile gen=1 n=1 items=item-b1"]



=== TEST 8: the category filter returns only that category
--- request eval
["GET /recommendations/user-x?category=cat-b",
 "GET /recommendations/user-x?category=cat-a&num_recommendations=2",
 "GET /recommendations/user-x?category=cat-zz",
 "GET /recommendations/user-x?category=bad!cat"]
--- error_code eval
[200, 200, 200, 400]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^source=index gen=1 n=3 items=item-b1,item-b2,item-b3\$",
 "^source=index gen=1 n=2 items=item-a1,item-a2\$",
 "^source=index gen=1 n=0 items=\$",
 "^error=invalid_(?:parameter|id)\$"]
--- after
my $j = json_decode((bodies())[0]);
is_deeply([map { $_->{category} } @{ $j->{recommendations} }], ['cat-b', 'cat-b', 'cat-b'], 'only cat-b');



=== TEST 9: exclude_seen=1 drops the items the user acted on
--- request eval
[::act('user-x', 'item-a1', 'View'),
 "GET /recommendations/user-x?num_recommendations=2",
 "GET /recommendations/user-x?num_recommendations=2&exclude_seen=1",
 "GET /recommendations/user-x?num_recommendations=2&exclude_seen=0"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200, 200, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes",
 "source=index gen=1 n=2 items=item-a1,item-a2",
 "source=index gen=1 n=2 items=item-a2,item-a3",
 # exclude_seen=0 is the default: the same list, from the cache
 "source=cache gen=1 n=2 items=item-a1,item-a2"]



=== TEST 10: a Dislike'd item is never returned
--- request eval
[::act('user-x', 'item-a3', 'Dislike'),
 "GET /recommendations/user-x?num_recommendations=6",
 "GET /recommendations/user-x?num_recommendations=6&category=cat-a",
 ::act('nobody2', 'item-b3', 'Dislike'),
 "GET /recommendations/nobody2?num_recommendations=6"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200, 200, 202, 200]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^status=accepted",
 # q = unit(e1/2 - a3/2) = (0.383, -0.924, 0, 0)
 "^source=index gen=1 n=5 items=item-a1,item-b1,item-b2,item-a2,item-b3\$",
 "^source=index gen=1 n=2 items=item-a1,item-a2\$",
 "^status=accepted",
 "^source=\\w+ gen=1 n=5 items=(?!.*item-b3)"]



=== TEST 11: an action is visible in the very next request
--- request eval
["GET /recommendations/user-x?num_recommendations=1",
 ::act('user-x', 'item-b2', 'Purchase'),
 "GET /recommendations/user-x?num_recommendations=1"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["source=index gen=1 n=1 items=item-a1",
 "status=accepted event_id=yes",
 # q = unit(e1 + e3): item-b1 0.894 beats item-a1 and item-b2 (0.707)
 "source=index gen=1 n=1 items=item-b1"]



=== TEST 12: the result cache: a repeated request is a hit, an action invalidates it
--- request eval
["GET /recommendations/user-y?num_recommendations=2",
 "GET /recommendations/user-y?num_recommendations=2",
 "GET /recommendations/user-y?num_recommendations=1",
 ::act('user-y', 'item-a1', 'View'),
 "GET /recommendations/user-y?num_recommendations=2",
 "GET /recommendations/user-y?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 200, 202, 200, 200]
--- response_headers eval
["X-Milvuso-Source: index", "X-Milvuso-Source: cache", "X-Milvuso-Source: index",
 "", "X-Milvuso-Source: index", "X-Milvuso-Source: cache"]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^source=index gen=1 n=2 items=item-b2,item-b1\$",
 "^source=cache gen=1 n=2 items=item-b2,item-b1\$",
 "^source=index gen=1 n=1 items=item-b2\$",
 "^status=accepted",
 # q = unit(e3 + e1): item-b1 first
 "^source=index gen=1 n=2 items=item-b1,",
 "^source=cache gen=1 n=2 items=item-b1,"]
--- after
# The variables, through the access log (log_format milvuso); the lines of
# the first two requests are surely written by now.
open my $fh, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/access.log" or die "access.log: $!";
my @lines = grep { m{^/recommendations/user-y} } <$fh>;
like($lines[0], qr{^/recommendations/user-y\?num_recommendations=2 src=index gen=1 cand=[1-9]\d*$},
     'access log: $milvuso_source index, $milvuso_generation, $milvuso_candidates');
like($lines[1], qr{^/recommendations/user-y\?num_recommendations=2 src=cache gen=1 cand=\d+$},
     'access log: $milvuso_source cache');



=== TEST 13: a new item invalidates the cache too
--- request eval
["GET /recommendations/user-z?num_recommendations=1",
 "GET /recommendations/user-z?num_recommendations=1",
 "POST /items\n" . item_json('item-new', [1, 1, 0.1, 0], category => 'cat-a'),
 "GET /recommendations/user-z?num_recommendations=1"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["source=index gen=1 n=1 items=item-a3",
 "source=cache gen=1 n=1 items=item-a3",
 "status=accepted event_id=yes item_id=item-new",
 "source=index gen=1 n=1 items=item-new"]



=== TEST 14: milvuso_cache_ttl 0 disables the cache
--- request eval
["GET /nocache/recommendations/user-y?num_recommendations=2",
 "GET /nocache/recommendations/user-y?num_recommendations=2"]
--- response_headers eval
["X-Milvuso-Source: index", "X-Milvuso-Source: index"]
--- response_body_filters eval
\&summary
--- response_body eval
[("source=index gen=1 n=2 items=item-b2,item-b1") x 2]



=== TEST 15: only GET (and HEAD) are allowed
--- request
POST /recommendations/user-x
{}
--- more_headers
Content-Type: application/json
--- error_code: 405
--- response_headers_like
Allow: GET.*
--- response_body_filters eval
\&summary
--- response_body chomp
error=method_not_allowed



=== TEST 16: no snapshot and no fresh items: 503 no_model
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_dim        4;
    log_format milvuso '$request_uri src=$milvuso_source gen=$milvuso_generation';
--- request eval
["GET /recommendations/user-x", "GET /recommendations/nobody"]
--- error_code eval
[503, 503]
--- response_body_filters eval
\&summary
--- response_body eval
["error=no_model", "error=no_model"]



=== TEST 17: no snapshot but fresh items: popular, then profile, over the fresh items
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_dim        4;
    log_format milvuso '$request_uri src=$milvuso_source gen=$milvuso_generation';
--- request eval
["POST /items\n" . item_json('fresh-1', [1, 0, 0, 0], category => 'cat-f', popularity_score => 0.2),
 "POST /items\n" . item_json('fresh-2', [0, 1, 0, 0], category => 'cat-f', popularity_score => 0.9),
 "POST /items\n" . item_json('fresh-3', [0, 0, 1, 0], category => 'cat-g', popularity_score => 0.5),
 "GET /recommendations/anyone",
 "GET /recommendations/anyone?category=cat-f",
 ::act('anyone', 'fresh-3', 'Like'),
 "GET /recommendations/anyone?num_recommendations=1",
 "POST /items\n" . item_json('fresh-4', [1, 0, 0], category => 'cat-f')]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 202, 200, 200, 202, 200, 400]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^status=accepted", "^status=accepted", "^status=accepted",
 "^source=popular gen=\\S+ n=3 items=fresh-2,fresh-3,fresh-1\$",
 "^source=popular gen=\\S+ n=2 items=fresh-2,fresh-1\$",
 "^status=accepted",
 "^source=profile gen=\\S+ n=1 items=fresh-3\$",
 "^error=dimension_mismatch\$"]



=== TEST 18: milvuso_profile weight=0: the model vector alone for a known user
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_profile    weight=0;
    log_format milvuso '$request_uri src=$milvuso_source gen=$milvuso_generation';
--- request eval
[::act('user-x', 'item-b2', 'Purchase'), "GET /recommendations/user-x?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes", "source=index gen=1 n=2 items=item-a1,item-a2"]



=== TEST 19: milvuso_profile weight=1: the profile alone for a known user
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_profile    weight=1;
    log_format milvuso '$request_uri src=$milvuso_source gen=$milvuso_generation';
--- request eval
[::act('user-x', 'item-b2', 'Purchase'), "GET /recommendations/user-x?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes", "source=index gen=1 n=2 items=item-b2,item-b1"]



=== TEST 20: the profile sums its actions (Like b2 + View a1 = [1,0,3,0] = item-b1)
--- request eval
[::act('newbie', 'item-b2', 'Like'), ::act('newbie', 'item-a1', 'View'),
 "GET /recommendations/newbie?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes", "status=accepted event_id=yes",
 "source=profile gen=1 n=2 items=item-b1,item-b2"]



=== TEST 21: milvuso_profile size=1 keeps the last action only
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_profile    size=1;
    log_format milvuso '$request_uri src=$milvuso_source gen=$milvuso_generation';
--- request eval
[::act('newbie', 'item-b2', 'Like'), ::act('newbie', 'item-a1', 'View'),
 "GET /recommendations/newbie?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes", "status=accepted event_id=yes",
 "source=profile gen=1 n=2 items=item-a1,item-a2"]



=== TEST 22: milvuso_action_weights: Click=10 outweighs a Like (3)
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_weights Click=10;
    log_format milvuso '$request_uri src=$milvuso_source gen=$milvuso_generation';
--- request eval
[::act('newbie', 'item-a1', 'Click'), ::act('newbie', 'item-b2', 'Like'),
 "GET /recommendations/newbie?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
# p = 10 a1 + 3 b2 = [10,0,3,0]: a1 0.958, a2 0.857 (default Click=2 would give b1 first)
["status=accepted event_id=yes", "status=accepted event_id=yes",
 "source=profile gen=1 n=2 items=item-a1,item-a2"]



=== TEST 23: default action weights: Click=2 and Like=3 give [2,0,3,0]
--- request eval
[::act('newbie', 'item-a1', 'Click'), ::act('newbie', 'item-b2', 'Like'),
 "GET /recommendations/newbie?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes", "status=accepted event_id=yes",
 "source=profile gen=1 n=2 items=item-b1,item-b2"]



=== TEST 24: milvuso_profile half_life=1h: an action 10 hours old has faded
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_profile    half_life=1h;
    log_format milvuso '$request_uri src=$milvuso_source gen=$milvuso_generation';
--- request eval
["POST /actions\n" . actions_json('newbie', 'item-a1', 'Like', timestamp => now_rfc3339(36000)),
 "POST /actions\n" . actions_json('newbie', 'item-b2', 'Like', timestamp => now_rfc3339()),
 "GET /recommendations/newbie?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
# p ~ 2^-10 a1 + b2: item-b2 first
["status=accepted event_id=yes", "status=accepted event_id=yes",
 "source=profile gen=1 n=2 items=item-b2,item-b1"]



=== TEST 25: milvuso_profile half_life=100h: the same actions weigh nearly alike
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_profile    half_life=100h;
    log_format milvuso '$request_uri src=$milvuso_source gen=$milvuso_generation';
--- request eval
["POST /actions\n" . actions_json('newbie', 'item-a1', 'Like', timestamp => now_rfc3339(36000)),
 "POST /actions\n" . actions_json('newbie', 'item-b2', 'Like', timestamp => now_rfc3339()),
 "GET /recommendations/newbie?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
# p ~ 0.933 a1 + b2: item-b1 0.909, item-b2 0.731
["status=accepted event_id=yes", "status=accepted event_id=yes",
 "source=profile gen=1 n=2 items=item-b1,item-b2"]



=== TEST 26: a bigger model: k defaults to 10; popular follows the snapshot's list
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SYNDIR/current;
    log_format milvuso '$request_uri src=$milvuso_source gen=$milvuso_generation';
--- request eval
["GET /recommendations/user-000001", "GET /recommendations/user-000199?num_recommendations=37",
 "GET /recommendations/nobody?num_recommendations=5",
 "GET /recommendations/nobody?num_recommendations=50&category=cat-03",
 "GET /recommendations/user-000001?num_recommendations=50&category=cat-03"]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^source=index gen=1 n=10 items=[^ ]+\$", "^source=index gen=1 n=37 items=[^ ]+\$",
 "^source=popular gen=1 n=5 items=\Q$::popular5\E\$",
 "^source=popular gen=1 n=50 items=[^ ]+\$",
 "^source=index gen=1 n=50 items=[^ ]+\$"]
--- after
my @b = map { json_decode($_) } bodies();
for my $i (3, 4) {
    my @cats = map { $_->{category} } @{ $b[$i]{recommendations} };
    is(scalar(grep { $_ ne 'cat-03' } @cats), 0, "request $i: only cat-03");
}
my @pop = map { $_->{item_id} } @{ $b[3]{recommendations} };
my %seen;
is(scalar(grep { $seen{$_}++ } @pop), 0, 'no item twice in the popular list');
my @idx = map { $_->{item_id} } @{ $b[1]{recommendations} };
%seen = ();
is(scalar(grep { $seen{$_}++ } @idx), 0, 'no item twice in the index list');
