# GET /similar/{item}: nearest items of an item, the item itself excluded.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;

MilvusoTest::init();
no_shuffle();

my $dir = tmpdir();
snapshot(out => "$dir/snaps", synthetic => 2000, dim => 16,
         categories => 5, users => 200, seed => 1);
$ENV{TEST_NGINX_SNAPDIR} = "$dir/snaps";
tiny_model("$dir/tiny");
$ENV{TEST_NGINX_TINYDIR} = "$dir/tiny";
# The tiny model plus a deleted item sitting exactly on item-a1 and user-x,
# the most popular of all: it must never be answered.
tiny_model("$dir/deleted", extra_items => [
    { item_id => 'item-d1', embedding => [1, 0, 0, 0], category => 'cat-a',
      popularity_score => 1, deleted => JSON::PP::true() } ]);
$ENV{TEST_NGINX_DELDIR} = "$dir/deleted";

# Expectations from the worker's own search over the same file.
sub neighbours {
    my ($item, $k) = @_;
    my $j = inspect("$dir/snaps", '--search', $item, '--k', $k);
    return join ',', map { $_->{id} } @{ $j->{search} };
}
our $nn42_5  = neighbours('item-000042', 5);
our $nn42_1  = neighbours('item-000042', 1);
our $nn7_20  = neighbours('item-000007', 20);
our $nn1999_10 = neighbours('item-001999', 10);

our $http_config = <<'_EOC_';
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
_EOC_

our $config = <<'_EOC_';
    location /similar/     { milvuso_similar; }
    location /k5/similar/  { milvuso_similar; milvuso_max_k 5; }
_EOC_

run_tests();

__DATA__

=== TEST 1: a known item: its nearest neighbours, k respected, itself excluded
--- request eval
["GET /similar/item-000042?k=5", "GET /similar/item-000042?k=1",
 "GET /similar/item-000007?k=20", "GET /similar/item-001999?k=10"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers_like eval
[("Content-Type: application/json.*") x 4]
--- response_body_filters eval
\&summary
--- response_body eval
["gen=1 n=5 items=$::nn42_5", "gen=1 n=1 items=$::nn42_1",
 "gen=1 n=20 items=$::nn7_20", "gen=1 n=10 items=$::nn1999_10"]
--- after
my $j = json_decode((bodies())[0]);
is($j->{item_id}, 'item-000042', 'item_id echoed');
is($j->{model_generation}, 1, 'model_generation');
ok(!grep({ $_->{item_id} eq 'item-000042' } @{ $j->{similar} }), 'the item itself is not listed');
ok(!grep({ !defined $_->{category} || $_->{category} !~ /^cat-0[0-4]$/ } @{ $j->{similar} }), 'every entry has its category');



=== TEST 2: default k and the tiny model's exact order
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_TINYDIR/current;
--- request eval
["GET /similar/item-a1", "GET /similar/item-a1?k=2", "GET /similar/item-b2?k=1"]
--- response_body_filters eval
\&summary
--- response_body eval
["gen=1 n=5 items=item-a2,item-a3,item-b1,item-b2,item-b3",
 "gen=1 n=2 items=item-a2,item-a3",
 "gen=1 n=1 items=item-b1"]
--- after
my $j = json_decode((bodies())[1]);
ok(abs($j->{similar}[0]{score} - 2 / sqrt(5)) < 1e-3, 'score is the cosine similarity')
    if defined $j->{similar}[0]{score};



=== TEST 3: an unknown item: 404 not_found
--- request eval
["GET /similar/item-999999?k=5", "GET /similar/nothing"]
--- error_code eval
[404, 404]
--- response_headers_like eval
[("Content-Type: application/json.*") x 2]
--- response_body_filters eval
\&summary
--- response_body eval
["error=not_found", "error=not_found"]



=== TEST 4: an invalid item id: 400 invalid_id
--- request eval
["GET /similar/bad!item", "GET /similar/" . ('i' x 65), "GET /similar/"]
--- error_code eval
[400, 400, 400]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=invalid_id") x 3]



=== TEST 5: a bad k: 400 invalid_parameter
--- request eval
[map { "GET /similar/item-000042?k=$_" } 0, 101, 'abc', -3, '']
--- error_code eval
[(400) x 5]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=invalid_parameter") x 5]



=== TEST 6: milvuso_max_k bounds k per location
--- request eval
["GET /k5/similar/item-000042?k=5", "GET /k5/similar/item-000042?k=6"]
--- error_code eval
[200, 400]
--- response_body_filters eval
\&summary
--- response_body eval
["gen=1 n=5 items=$::nn42_5", "error=invalid_parameter"]



=== TEST 7: only GET (and HEAD)
--- request
DELETE /similar/item-000042
--- error_code: 405
--- response_headers_like
Allow: GET.*
--- response_body_filters eval
\&summary
--- response_body chomp
error=method_not_allowed



=== TEST 8: no snapshot: 503 no_model for snapshot items
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_dim        16;
--- request
GET /similar/item-000042?k=5
--- error_code_like: ^(?:503|404)$
--- response_body_filters eval
\&summary
--- response_body_like: ^error=(?:no_model|not_found)$



=== TEST 9: a deleted item is never returned (similar, index, popular)
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_DELDIR/current;
--- config
    location /similar/         { milvuso_similar; }
    location /recommendations/ { milvuso_recommend; }
--- request eval
["GET /similar/item-a1?k=10", "GET /recommendations/user-x?num_recommendations=10",
 "GET /recommendations/nobody?num_recommendations=10",
 "GET /recommendations/nobody?num_recommendations=10&category=cat-a"]
--- response_body_filters eval
\&summary
--- response_body eval
["gen=1 n=5 items=item-a2,item-a3,item-b1,item-b2,item-b3",
 "source=index gen=1 n=6 items=item-a1,item-a2,item-a3,item-b1,item-b2,item-b3",
 "source=popular gen=1 n=6 items=item-b3,item-b2,item-a3,item-b1,item-a1,item-a2",
 "source=popular gen=1 n=3 items=item-a3,item-a1,item-a2"]
