# POST /items: validation, and a posted item is recommendable at once, found
# by /similar, and written to the action log.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;

MilvusoTest::init();
no_shuffle();

my $dir = tmpdir();
tiny_model("$dir/snaps");
$ENV{TEST_NGINX_SNAPDIR} = "$dir/snaps";

our $http_config = <<'_EOC_';
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG;
_EOC_

our $config = <<'_EOC_';
    location = /items          { milvuso_items; }
    location /recommendations/ {
        milvuso_recommend;
        add_header X-Milvuso-Source $milvuso_source always;
    }
    location /similar/         { milvuso_similar; }
_EOC_

# user-z is [1,1,0.1,0]: the new item sits exactly on it, and is closer to
# item-a3 [1,1,0,0] than anything in the snapshot.
our $new1 = item_json('item-new-1', [1, 1, 0.1, 0], category => 'cat-a',
                      tags => ['smartphone', 'new'], popularity_score => 0.1,
                      created_at => '2024-01-01T12:00:00Z');

# 100 items with the longest ids and categories, the largest popularity
# and embeddings whose arithmetic overflows float: answers must stay valid
# JSON with finite scores (a render that trusted its size estimate wrote
# past its buffer here).
our @huge = map {
    my $id = sprintf("huge-%059d", $_);
    my $cat = sprintf("cat-%060d", $_ % 3);
    "POST /items\n" . item_json($id, [3e38, 3e38, 3e38, 3e38],
                                  category => $cat,
                                  popularity_score => 3.4e38)
} 1 .. 100;

sub items_logged {
    my @r = log_records($ENV{TEST_NGINX_ACTLOG}, shift);
    return map { { %{ $_->{json} }, _type => $_->{type} } } @r;
}

run_tests();

__DATA__

=== TEST 1: an item is accepted (202) and logged as canonical JSON
--- request eval
"POST /items\n$::new1"
--- more_headers
Content-Type: application/json
--- error_code: 202
--- response_headers_like
Content-Type: application/json.*
--- response_body_filters eval
\&summary
--- response_body chomp
status=accepted event_id=yes item_id=item-new-1
--- after
my $resp = json_decode((bodies())[0]);
my @p = items_logged('item logged');
is(scalar @p, 1, 'one record');
is($p[0]{_type}, 2, 'record type 2 (item)');
is($p[0]{event_id}, $resp->{event_id}, 'logged event_id is the answered one');
is($p[0]{item_id}, 'item-new-1', 'item_id');
is($p[0]{category}, 'cat-a', 'category');
is_deeply($p[0]{tags}, ['smartphone', 'new'], 'tags');
ok(abs($p[0]{popularity_score} - 0.1) < 1e-6, 'popularity_score');
is($p[0]{created_at}, '2024-01-01T12:00:00.000Z', 'created_at, canonical');
my @e = @{ $p[0]{embedding} || [] };
is(scalar @e, 4, 'embedding length');
my @want = (1, 1, 0.1, 0);
ok(!grep({ abs($e[$_] - $want[$_]) > 1e-6 } 0 .. 3), "embedding as posted (@e)");



=== TEST 2: an embedding of the wrong length: 400 dimension_mismatch
--- request eval
["POST /items\n" . item_json('item-n', [1, 0, 0]),
 "POST /items\n" . item_json('item-n', [1, 0, 0, 0, 0]),
 "POST /items\n" . item_json('item-n', [])]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^error=dimension_mismatch\$", "^error=dimension_mismatch\$",
 "^error=(?:dimension_mismatch|invalid_field)\$"]
--- after
no_log_records('dim mismatch');



=== TEST 3: numbers too large for a float: 400 non_finite_number
--- request eval
["POST /items\n{\"item_id\":\"item-n\",\"embedding\":[1e39,0,0,0]}",
 "POST /items\n{\"item_id\":\"item-n\",\"embedding\":[1,0,0,-1e39]}",
 "POST /items\n{\"item_id\":\"item-n\",\"embedding\":[1,0,0,0],\"popularity_score\":1e39}"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=non_finite_number") x 3]
--- after
no_log_records('non finite');



=== TEST 4: bad ids and categories: 400
--- request eval
["POST /items\n" . item_json('item n', [1, 0, 0, 0]),
 "POST /items\n" . item_json('', [1, 0, 0, 0]),
 "POST /items\n" . item_json('item-n', [1, 0, 0, 0], category => 'cat a'),
 "POST /items\n" . item_json('item-n', [1, 0, 0, 0], category => 'c' x 65),
 "POST /items\n" . item_json('item-n', [1, 0, 0, 0], category => 5)]
--- more_headers
Content-Type: application/json
--- error_code eval
[(400) x 5]
--- response_body_filters eval
\&summary
--- response_body_like eval
[("^error=invalid_(?:field|id)\$") x 5]
--- after
no_log_records('bad ids');



=== TEST 5: other invalid fields: 400 invalid_field
--- request eval
["POST /items\n" . item_json('item-n', [1, 0, 0, 0], popularity_score => -0.5),
 "POST /items\n{\"item_id\":\"item-n\"}",
 "POST /items\n" . item_json('item-n', [1, 0, "x", 0]),
 "POST /items\n" . item_json('item-n', "1,0,0,0"),
 "POST /items\n" . item_json('item-n', [1, 0, 0, 0], tags => [map { "t$_" } 1 .. 33]),
 "POST /items\n" . item_json('item-n', [1, 0, 0, 0], created_at => 'tomorrow'),
 "POST /items\n" . item_json('item-n', [1, 0, 0, 0], tags => 'one')]
--- more_headers
Content-Type: application/json
--- error_code eval
[(400) x 7]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=invalid_field") x 7]
--- after
no_log_records('invalid fields');



=== TEST 6: bad JSON, method and media type
--- request eval
["POST /items\n{\"item_id\":", "GET /items", "POST /items\n$::new1"]
--- more_headers eval
["Content-Type: application/json", "", "Content-Type: text/plain"]
--- error_code eval
[400, 405, 415]
--- response_headers_like eval
["", "Allow: .*POST.*", ""]
--- response_body_filters eval
\&summary
--- response_body eval
["error=invalid_json", "error=method_not_allowed", "error=unsupported_media_type"]
--- after
no_log_records('refused');



=== TEST 7: a posted item is recommendable at once and found by /similar
--- request eval
["GET /recommendations/user-z?num_recommendations=2",
 "GET /similar/item-a3?k=2",
 "POST /items\n$::new1",
 "GET /recommendations/user-z?num_recommendations=2",
 "GET /similar/item-a3?k=2",
 "GET /similar/item-new-1?k=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 202, 200, 200, 200]
--- response_headers eval
["X-Milvuso-Source: index", "", "", "X-Milvuso-Source: index", "", ""]
--- response_body_filters eval
\&summary
--- response_body eval
["source=index gen=1 n=2 items=item-a3,item-a2",
 "gen=1 n=2 items=item-a2,item-a1",
 "status=accepted event_id=yes item_id=item-new-1",
 "source=index gen=1 n=2 items=item-new-1,item-a3",
 "gen=1 n=2 items=item-new-1,item-a2",
 "gen=1 n=2 items=item-a3,item-a2"]
--- after
my $r = json_decode((bodies())[3]);
is($r->{recommendations}[0]{category}, 'cat-a', 'fresh item answered with its category');
ok(abs($r->{recommendations}[0]{score} - 1) < 1e-3, 'fresh item on the user vector scores 1')
    if defined $r->{recommendations}[0]{score};
is(scalar(items_logged('posted item')), 1, 'the item was logged');



=== TEST 8: a posted item in a new category is served for that category
--- request eval
["POST /items\n" . item_json('item-c1', [0, 1, 0, 0], category => 'cat-c', popularity_score => 0.3),
 "POST /items\n" . item_json('item-c2', [0, 1, 1, 0], category => 'cat-c', popularity_score => 0.95),
 "GET /recommendations/nobody?category=cat-c"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes item_id=item-c1",
 "status=accepted event_id=yes item_id=item-c2",
 "source=popular gen=1 n=2 items=item-c2,item-c1"]



=== TEST 9: milvuso_fresh_max: the oldest fresh items are dropped first, the log keeps them
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_dim        4;
    milvuso_fresh_max  2;
    milvuso_action_log $TEST_NGINX_ACTLOG;
--- request eval
["POST /items\n" . item_json('fresh-1', [1, 0, 0, 0], popularity_score => 0.9),
 "POST /items\n" . item_json('fresh-2', [0, 1, 0, 0], popularity_score => 0.5),
 "POST /items\n" . item_json('fresh-3', [0, 0, 1, 0], popularity_score => 0.1),
 "GET /recommendations/anyone",
 "GET /similar/fresh-1",
 "GET /similar/fresh-2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 202, 200, 404, 200]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^status=accepted", "^status=accepted", "^status=accepted",
 "^source=popular gen=\\S+ n=2 items=fresh-2,fresh-3\$",
 "^error=not_found\$",
 "^gen=\\S+ n=1 items=fresh-3\$"]
--- after
is(scalar(items_logged('fresh_max')), 3, 'all three items are in the log');



=== TEST 10: extreme values: longest ids, largest popularity, overflowing vectors
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_max_k      200;
--- request eval
[@::huge,
 "GET /recommendations/nobody?num_recommendations=200",
 "GET /similar/" . sprintf("huge-%059d", 7) . "?k=200",
 "GET /recommendations/user-z?num_recommendations=200"]
--- more_headers
Content-Type: application/json
--- error_code eval
[(202) x 100, 200, 200, 200]
--- after
my @b = bodies();
for my $i (100 .. 102) {
    my $r = json_decode($b[$i]);
    ok(defined $r, "answer $i is valid JSON");
    my $list = $r->{recommendations} // $r->{similar} // [];
    ok(scalar @$list > 0, "answer $i lists items");
    my @bad = grep { !defined $_->{score} || $_->{score} != $_->{score}
                     || abs($_->{score}) > 1e12 } @$list;
    is(scalar @bad, 0, "answer $i has finite, bounded scores");
}



=== TEST 11: what a client may not send: event_id, deleted: true (400 invalid_field); deleted: false and nulls are fine
--- request eval
["POST /items\n" . item_json('item-e', [1, 0, 0, 0], event_id => 'my-id'),
 "POST /items\n" . item_json('item-d', [1, 0, 0, 0], deleted => \1),
 "POST /items\n" . item_json('item-f', [1, 0, 0, 0], deleted => \0,
                             category => undef, tags => undef,
                             created_at => undef, popularity_score => undef)]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 202]
--- response_body_filters eval
\&summary
--- response_body eval
["error=invalid_field", "error=invalid_field",
 "status=accepted event_id=yes item_id=item-f"]
--- after
my @b = map { json_decode($_) } bodies();
like($b[0]{detail}, qr/"event_id": assigned by the server/, 'event_id: why');
like($b[1]{detail}, qr/"deleted"/, 'deleted: why');
my @p = items_logged('client fields');
is_deeply([map { $_->{item_id} } @p], ['item-f'], 'only item-f was logged');
ok(!exists $p[0]{deleted}, 'a live item\'s record has no deleted field');
