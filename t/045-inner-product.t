# The inner-product metric (milvuso-worker snapshot --metric ip): vectors as
# given, answers ranked by dot product, scores = the dot products, from the
# index, the profile blend, fresh items and /similar; /health says "ip".
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;

MilvusoTest::init();
no_shuffle();

# The tiny model (t/lib/MilvusoTest.pm) published with --metric ip.  Its
# item vectors have norms 1 to sqrt(10), so the dot products differ from the
# cosines the other suites expect:
#
#   item     vector      user-x=e1  user-y=e3  user-z=[1,1,0.1,0]
#   item-a1  [1,0,0,0]   1          0          1
#   item-a2  [2,1,0,0]   2          0          3
#   item-a3  [1,1,0,0]   1          0          2
#   item-b1  [1,0,3,0]   1          3          1.3
#   item-b2  [0,0,1,0]   0          1          0.1
#   item-b3  [-1,0,0,1]  -1         0          -1
#
# e.g. for user-x cosine ranks item-a1 (1) before item-a2 (0.894); the
# inner product ranks item-a2 (2), the longer vector, first.
my $dir = tmpdir();
our $published = tiny_model("$dir/snaps", metric => 'ip');
$ENV{TEST_NGINX_SNAPDIR} = "$dir/snaps";

our $http_config = <<'_EOC_';
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG;
_EOC_

our $config = <<'_EOC_';
    location = /actions        { milvuso_actions; }
    location = /items          { milvuso_items; }
    location = /health         { milvuso_health; }
    location /recommendations/ {
        milvuso_recommend;
        add_header X-Milvuso-Source $milvuso_source always;
    }
    location /similar/         { milvuso_similar; }
_EOC_

sub act { my ($u, $i, $t) = @_; return "POST /actions\n" . actions_json($u, $i, $t) }

# "item=score,..." of an answer's list, scores rounded to 4 decimals
sub scored {
    my ($body, $key) = @_;
    my $j = json_decode($body) or return "not json: $body";
    return join ',', map { sprintf '%s=%.4f', $_->{item_id}, $_->{score} }
                     @{ $j->{$key} };
}

run_tests();

__DATA__

=== TEST 1: the worker published an ip snapshot; /health names the metric
--- request
GET /health
--- response_body_like chomp
"metric":"ip"
--- after
like($::published, qr/generation 1: 6 items \(0 deleted\), 2 categories, 3 users, dim 4 ip/, 'worker: published with metric ip');
my $j = json_decode((bodies())[0]);
is($j->{snapshot}{metric}, 'ip', '/health snapshot.metric');



=== TEST 2: a known user: ranked by dot product, the longer vector first, scores = dot products
--- request eval
["GET /recommendations/user-x",
 "GET /recommendations/user-y?num_recommendations=2",
 "GET /recommendations/user-z"]
--- response_headers eval
[("X-Milvuso-Source: index") x 3]
--- response_body_filters eval
\&summary
--- response_body eval
["source=index gen=1 n=6 items=item-a2,item-a1,item-a3,item-b1,item-b2,item-b3",
 "source=index gen=1 n=2 items=item-b1,item-b2",
 "source=index gen=1 n=6 items=item-a2,item-a3,item-b1,item-a1,item-b2,item-b3"]
--- after
my @b = bodies();
is(::scored($b[0], 'recommendations'),
   'item-a2=2.0000,item-a1=1.0000,item-a3=1.0000,item-b1=1.0000,item-b2=0.0000,item-b3=-1.0000',
   'user-x: the model vector as is, scores are its dot products');
is(::scored($b[1], 'recommendations'), 'item-b1=3.0000,item-b2=1.0000',
   'user-y: item-b1 (norm sqrt 10) beats item-b2, the same direction as user-y');
is(::scored($b[2], 'recommendations'),
   'item-a2=3.0000,item-a3=2.0000,item-b1=1.3000,item-a1=1.0000,item-b2=0.1000,item-b3=-1.0000',
   'user-z (norm 1.418): scores not divided by the norm');



=== TEST 3: the category filter (filtered search) keeps the dot-product order
--- request eval
["GET /recommendations/user-x?category=cat-b",
 "GET /recommendations/user-z?category=cat-a&num_recommendations=2"]
--- response_body_filters eval
\&summary
--- response_body eval
["source=index gen=1 n=3 items=item-b1,item-b2,item-b3",
 "source=index gen=1 n=2 items=item-a2,item-a3"]
--- after
is(::scored((bodies())[0], 'recommendations'),
   'item-b1=1.0000,item-b2=0.0000,item-b3=-1.0000', 'cat-b scores');



=== TEST 4: the profile blend keeps the model vector's scale
--- request eval
[::act('user-z', 'item-b2', 'Like'),
 "GET /recommendations/user-z",
 ::act('newbie', 'item-b2', 'Like'),
 "GET /recommendations/newbie?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200, 202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes",
 # q = |u| (u/|u| + e3) / 2 = (0.5, 0.5, 0.05 + |u|/2, 0), |u| = sqrt(2.01)
 "source=index gen=1 n=6 items=item-b1,item-a2,item-a3,item-b2,item-a1,item-b3",
 "status=accepted event_id=yes",
 # no model vector: q = p/|p| = e3
 "source=profile gen=1 n=2 items=item-b1,item-b2"]
--- after
my @b = bodies();
my $c = 0.05 + sqrt(2.01) / 2;
is(::scored($b[1], 'recommendations'),
   join(',', map { sprintf '%s=%.4f', @$_ }
        ['item-b1', 0.5 + 3 * $c], ['item-a2', 1.5], ['item-a3', 1.0],
        ['item-b2', $c], ['item-a1', 0.5], ['item-b3', -0.5]),
   'user-z with a Like: dot products with |u| times the blend');
is(::scored($b[3], 'recommendations'), 'item-b1=3.0000,item-b2=1.0000',
   'profile alone: dot products with its unit direction');



=== TEST 5: a posted item is stored as given: its norm counts, its score is the dot product
--- request eval
["POST /items\n" . item_json('item-new', [4, 0, 0, 0], category => 'cat-a'),
 "GET /recommendations/user-x?num_recommendations=3",
 "GET /similar/item-new?k=4",
 "GET /similar/item-a1?k=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200, 200, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes item_id=item-new",
 "source=index gen=1 n=3 items=item-new,item-a2,item-a1",
 "gen=1 n=4 items=item-a2,item-a1,item-a3,item-b1",
 "gen=1 n=2 items=item-new,item-a2"]
--- after
my @b = bodies();
is(::scored($b[1], 'recommendations'), 'item-new=4.0000,item-a2=2.0000,item-a1=1.0000',
   'the fresh item scores 4, not its cosine 1');
is(::scored($b[2], 'similar'), 'item-a2=8.0000,item-a1=4.0000,item-a3=4.0000,item-b1=4.0000',
   '/similar from a fresh item: its vector as posted');
is(::scored($b[3], 'similar'), 'item-new=4.0000,item-a2=2.0000',
   '/similar from a snapshot item: fresh and snapshot items by dot product');



=== TEST 6: /similar ranks by dot product with the item's own vector
--- request eval
["GET /similar/item-b1", "GET /similar/item-a3?k=3"]
--- response_body_filters eval
\&summary
--- response_body eval
# cosine would say item-b2, item-a1, item-a2, item-a3 for item-b1
["gen=1 n=5 items=item-b2,item-a2,item-a1,item-a3,item-b3",
 "gen=1 n=3 items=item-a2,item-a1,item-b1"]
--- after
my @b = bodies();
is(::scored($b[0], 'similar'),
   'item-b2=3.0000,item-a2=2.0000,item-a1=1.0000,item-a3=1.0000,item-b3=-1.0000',
   'item-b1 [1,0,3,0]: scores are dot products');
is(::scored($b[1], 'similar'), 'item-a2=3.0000,item-a1=1.0000,item-b1=1.0000',
   'item-a3 [1,1,0,0]');
