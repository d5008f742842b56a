# POST /actions: accepted events (202), every refusal (400, 405, 413, 415),
# and what lands in the action log (16-byte header + canonical JSON).
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
    location = /actions        { milvuso_actions; }
    location = /small/actions  { milvuso_actions; milvuso_body_max 64; }
    location /recommendations/ {
        milvuso_recommend;
        add_header X-Milvuso-Source $milvuso_source always;
    }
_EOC_

# Bodies used below.
our $click = actions_json('user-x', 'item-a2', 'Click',
                          timestamp => '2024-01-01T12:00:00Z');
our @types = qw(View Click Like Share AddToCart Purchase Dislike add_to_cart purchase);
our @canon = qw(View Click Like Share AddToCart Purchase Dislike AddToCart Purchase);

# The block's log records, each as a hash of its payload.
sub payloads {
    my @r = log_records($ENV{TEST_NGINX_ACTLOG}, shift);
    return map { { %{ $_->{json} }, _type => $_->{type} } } @r;
}

run_tests();

__DATA__

=== TEST 1: an action is accepted (202 + event_id) and logged as canonical JSON
--- request eval
"POST /actions\n$::click"
--- more_headers
Content-Type: application/json
--- error_code: 202
--- response_headers_like
Content-Type: application/json.*
--- response_body_filters eval
\&summary
--- response_body chomp
status=accepted event_id=yes
--- after
my $resp = json_decode((bodies())[0]);
my @p = payloads('accepted');
is(scalar @p, 1, 'one record in the log');
is($p[0]{_type}, 1, 'record type 1 (action)');
is($p[0]{event_id}, $resp->{event_id}, 'logged event_id is the answered one');
is($p[0]{user_id}, 'user-x', 'user_id');
is($p[0]{item_id}, 'item-a2', 'item_id');
is($p[0]{action_type}, 'Click', 'action_type');
is($p[0]{timestamp}, '2024-01-01T12:00:00.000Z', 'timestamp, canonical');
my @segs = @{ read_actlog($ENV{TEST_NGINX_ACTLOG})->{segments} };
is_deeply(\@segs, ['actions-00000000000000000001.log'], 'segment name');
ok(-s "$ENV{TEST_NGINX_ACTLOG}/$segs[0]", 'segment is not empty');
my $raw = (read_actlog($ENV{TEST_NGINX_ACTLOG})->{records})[0][0]{payload};
like($raw, qr/^\{"event_id":"[^"]+","user_id":"user-x","item_id":"item-a2","action_type":"Click","timestamp":"2024-01-01T12:00:00\.000Z"\}$/,
     'payload is compact JSON with fields in canonical order');



=== TEST 2: every action type, case-insensitive and snake case, logged by canonical name
--- request eval
[map { "POST /actions\n" . actions_json('user-y', 'item-b1', $_) } @::types]
--- more_headers
Content-Type: application/json
--- error_code eval
[(202) x @::types]
--- response_body_filters eval
\&summary
--- response_body eval
[("status=accepted event_id=yes") x @::types]
--- after
my @p = payloads('types');
is_deeply([map { $_->{action_type} } @p], \@::canon, 'canonical action types in order');
my %ids = map { $_->{event_id} => 1 } @p;
is(scalar keys %ids, scalar @::types, 'event ids are unique');
my @answered = map { json_decode($_)->{event_id} } bodies();
is_deeply([map { $_->{event_id} } @p], \@answered, 'logged event ids are the answered ones');



=== TEST 3: timestamps: offsets are converted to UTC, a missing (or null) one is the time of arrival, the RFC 3339 variations and unix ms read as everywhere else
--- request eval
["POST /actions\n" . actions_json('user-y', 'item-b1', 'View', timestamp => '2024-01-01T12:00:00.250+02:00'),
 "POST /actions\n" . actions_json('user-y', 'item-b1', 'View'),
 "POST /actions\n" . actions_json('user-y', 'item-b1', 'View', timestamp => undef),
 "POST /actions\n" . actions_json('user-y', 'item-b1', 'View', timestamp => '2016-12-31 23:59:60.5Z'),
 "POST /actions\n" . actions_json('user-y', 'item-b1', 'View', timestamp => '1969-07-20T20:17:40.123456789Z'),
 "POST /actions\n" . actions_json('user-y', 'item-b1', 'View', timestamp => 1704110400000)]
--- more_headers
Content-Type: application/json
--- error_code eval
[(202) x 6]
--- after
my @p = payloads('timestamps');
is($p[0]{timestamp}, '2024-01-01T10:00:00.250Z', 'offset converted to UTC, ms kept');
require Time::Local;
for my $i (1, 2) {
    my ($y, $mo, $d, $h, $mi, $s) = ($p[$i]{timestamp} // '') =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d{3}Z$/;
    ok(defined $s, "missing timestamp filled in ($i)");
    my $t = defined $s ? Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y) : 0;
    ok(abs($t - time) < 3600, "missing timestamp is now ($i)");
}
is($p[3]{timestamp}, '2016-12-31T23:59:59.999Z', 'a leap second is the last ms of its minute, a space separates');
is($p[4]{timestamp}, '1969-07-20T20:17:40.123Z', 'before 1970, long fraction truncated');
is($p[5]{timestamp}, '2024-01-01T12:00:00.000Z', 'unix milliseconds');



=== TEST 4: bad JSON is refused (400 invalid_json) and nothing is logged
--- request eval
["POST /actions\n{\"user_id\":",
 "POST /actions\n[1,2,3]",
 "POST /actions\n\"just a string\"",
 "POST /actions\n$::click xyz",
 "POST /actions\n{\"user_id\":\"user-x\",\"user_id\":\"user-y\",\"item_id\":\"item-a1\",\"action_type\":\"View\"}",
 "POST /actions\n{\"user_id\":\"user-\xff\",\"item_id\":\"item-a1\",\"action_type\":\"View\"}"]
--- more_headers
Content-Type: application/json
--- error_code eval
[(400) x 6]
--- response_headers_like eval
[("Content-Type: application/json.*") x 6]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=invalid_json") x 6]
--- after
no_log_records('bad json');



=== TEST 5: missing or mistyped fields are refused (400 invalid_field)
--- request eval
["POST /actions\n{\"item_id\":\"item-a1\",\"action_type\":\"View\"}",
 "POST /actions\n{\"user_id\":\"user-x\",\"action_type\":\"View\"}",
 "POST /actions\n{\"user_id\":\"user-x\",\"item_id\":\"item-a1\"}",
 "POST /actions\n{\"user_id\":42,\"item_id\":\"item-a1\",\"action_type\":\"View\"}",
 "POST /actions\n{\"user_id\":\"user-x\",\"item_id\":[\"item-a1\"],\"action_type\":\"View\"}",
 "POST /actions\n{\"user_id\":\"user-x\",\"item_id\":\"item-a1\",\"action_type\":3}",
 "POST /actions\n{}"]
--- more_headers
Content-Type: application/json
--- error_code eval
[(400) x 7]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=invalid_field") x 7]
--- after
no_log_records('missing fields');
for my $b (bodies()) {
    my $j = json_decode($b);
    ok(defined $j->{detail} && length $j->{detail}, "error has a detail ($b)");
}



=== TEST 6: bad ids are refused (400) and nothing is logged
--- request eval
[map { "POST /actions\n" . actions_json(@$_, 'View') }
  ['user x', 'item-a1'], ['user-x', 'item/a1'], ['', 'item-a1'], ['user-x', ''],
  ['u' x 65, 'item-a1'], ['user-x', "item-\x{e9}"]]
--- more_headers
Content-Type: application/json
--- error_code eval
[(400) x 6]
--- response_body_filters eval
\&summary
--- response_body_like eval
[("^error=invalid_(?:field|id)\$") x 6]
--- after
no_log_records('bad ids');



=== TEST 7: an id of exactly 64 bytes of [A-Za-z0-9._:-] is accepted
--- request eval
"POST /actions\n" . actions_json('A-z.0_9:' x 8, '123e4567-e89b-12d3-a456-426614174000', 'Like')
--- more_headers
Content-Type: application/json
--- error_code: 202
--- after
my @p = payloads('long id');
is($p[0]{user_id}, 'A-z.0_9:' x 8, '64-byte user id logged');



=== TEST 8: an unknown action type is refused (400 unknown_action_type)
--- request eval
["POST /actions\n" . actions_json('user-x', 'item-a1', 'Teleport'),
 "POST /actions\n" . actions_json('user-x', 'item-a1', '')]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^error=unknown_action_type\$", "^error=(?:unknown_action_type|invalid_field)\$"]
--- after
no_log_records('unknown type');



=== TEST 9: bad timestamps are refused (400 invalid_field), unix seconds among them
--- request eval
[map { "POST /actions\n" . actions_json('user-x', 'item-a1', 'View', timestamp => $_) }
  'yesterday', '2024-13-01T00:00:00Z', '2024-01-01', '0000-01-01T00:00:00Z', 1704110400000.5,
  1704110400]
--- more_headers
Content-Type: application/json
--- error_code eval
[(400) x 6]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=invalid_field") x 6]
--- after
no_log_records('bad timestamps');



=== TEST 10: wrong method: 405 with Allow
--- request eval
["GET /actions", "PUT /actions\n$::click", "DELETE /actions"]
--- more_headers
Content-Type: application/json
--- error_code eval
[405, 405, 405]
--- response_headers_like eval
[("Allow: .*POST.*") x 3]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=method_not_allowed") x 3]
--- after
no_log_records('wrong method');



=== TEST 11: a body that is not application/json: 415
--- request eval
["POST /actions\n$::click", "POST /actions\n$::click", "POST /actions\n$::click"]
--- more_headers eval
["Content-Type: text/plain", "Content-Type: application/x-www-form-urlencoded", ""]
--- error_code eval
[415, 415, 415]
--- response_body_filters eval
\&summary
--- response_body eval
[("error=unsupported_media_type") x 3]
--- after
no_log_records('wrong content type');



=== TEST 12: application/json with parameters, in any case, is accepted
--- request eval
["POST /actions\n$::click", "POST /actions\n$::click"]
--- more_headers eval
["Content-Type: application/json; charset=utf-8", "Content-Type: Application/JSON"]
--- error_code eval
[202, 202]
--- after
is(scalar(payloads('json charset')), 2, 'both logged');



=== TEST 13: a body above milvuso_body_max: 413
--- request eval
"POST /small/actions\n" . actions_json('user-x', 'item-a1', 'View', timestamp => '2024-01-01T12:00:00Z', pad => 'x' x 100)
--- more_headers
Content-Type: application/json
--- error_code: 413
--- response_body_filters eval
\&summary
--- response_body chomp
error=body_too_large
--- after
no_log_records('too large');



=== TEST 14: a body within milvuso_body_max is accepted there
--- request eval
"POST /small/actions\n" . actions_json('u1', 'i1', 'View')
--- more_headers
Content-Type: application/json
--- error_code: 202



=== TEST 15: an empty body: 400
--- request eval
["POST /actions", "POST /actions"]
--- more_headers eval
["Content-Type: application/json", "Content-Type: application/json\nContent-Length: 0"]
--- error_code eval
[400, 400]
--- response_body_filters eval
\&summary
--- response_body_like eval
[("^error=invalid_(?:json|field)\$") x 2]
--- after
no_log_records('empty body');



=== TEST 16: a refused action changes nothing: the user stays without a profile
--- request eval
["POST /actions\n" . actions_json('user-new', 'item-b2', 'Teleport'),
 "GET /recommendations/user-new?num_recommendations=2",
 "POST /actions\n" . actions_json('user-new', 'item-b2', 'Like'),
 "GET /recommendations/user-new?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 200, 202, 200]
--- response_headers eval
["", "X-Milvuso-Source: popular", "", "X-Milvuso-Source: profile"]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^error=unknown_action_type\$",
 "^source=popular gen=1 n=2 items=item-b3,item-b2\$",
 "^status=accepted",
 "^source=profile gen=1 n=2 items=item-b2,item-b1\$"]



=== TEST 17: without milvuso_action_log actions are still accepted
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
--- request eval
"POST /actions\n$::click"
--- more_headers
Content-Type: application/json
--- error_code: 202
--- after
ok(!-e $ENV{TEST_NGINX_ACTLOG}, 'no log directory created');



=== TEST 18: sync=on and a 4k segment: records are intact across segments
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log $TEST_NGINX_ACTLOG segment=4k sync=on;
--- request eval
[map { "POST /actions\n" . actions_json("user-$_", 'item-a1', 'View', timestamp => '2024-01-01T12:00:00Z') } 1 .. 50]
--- more_headers
Content-Type: application/json
--- error_code eval
[(202) x 50]
--- after
my @p = payloads('segments');
is_deeply([map { $_->{user_id} } @p], [map { "user-$_" } 1 .. 50], 'all 50 records, in order');
my @segs = @{ read_actlog($ENV{TEST_NGINX_ACTLOG})->{segments} };
ok(@segs > 1, 'the log rotated (' . scalar(@segs) . ' segments)');
is($segs[0], 'actions-00000000000000000001.log', 'first segment is 1');



=== TEST 19: the action log cannot be written: 503 log_unavailable, nothing applied
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log /etc/hostname/milvuso-actions;
--- request eval
["POST /actions\n" . actions_json('user-new', 'item-b2', 'Like'),
 "GET /recommendations/user-new?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[503, 200]
--- response_body_filters eval
\&summary
--- response_body_like eval
["^error=log_unavailable\$", "^source=popular "]
--- no_error_log
[alert]
[emerg]



=== TEST 20: a client's event_id is its retry key: accepted, echoed, logged with the client_event_id marker; a bad one and the marker itself are refused (400 invalid_field); null is absent
--- request eval
["POST /actions\n" . actions_json('user-x', 'item-a1', 'View', event_id => 'my-id-1'),
 "POST /actions\n" . actions_json('user-x', 'item-a1', 'View', event_id => 'my id'),
 "POST /actions\n" . actions_json('user-x', 'item-a1', 'View', event_id => 'my-id-2', client_event_id => JSON::PP::true),
 "POST /actions\n" . actions_json('user-x', 'item-a1', 'View', event_id => undef)]
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 400, 400, 202]
--- response_body_filters eval
\&summary
--- response_body eval
["status=accepted event_id=yes", "error=invalid_field", "error=invalid_field", "status=accepted event_id=yes"]
--- after
my @p = payloads('event_id');
is(scalar @p, 2, 'the two accepted actions were logged');
my @b = map { json_decode($_) } bodies();
is($b[0]{event_id}, 'my-id-1', 'the answer echoes the client\'s event_id');
is($p[0]{event_id}, 'my-id-1', 'the logged id is the client\'s');
ok($p[0]{client_event_id} && $p[0]{client_event_id} eq '1', 'logged with the marker "client_event_id":true');
like($b[1]{detail}, qr/"event_id": not an id/, 'a bad id: the detail says why');
like($b[2]{detail}, qr/"client_event_id": assigned by the server/, 'the marker is the server\'s');
isnt($p[1]{event_id}, 'my-id-1', 'without one, the server names the event');
ok(!exists $p[1]{client_event_id}, 'and writes no marker');
my $raw = (read_actlog($ENV{TEST_NGINX_ACTLOG})->{records})[0][0]{payload};
like($raw, qr/^\{"event_id":"my-id-1","user_id":"user-x","item_id":"item-a1","action_type":"View","timestamp":"[^"]+","client_event_id":true\}$/,
     'the marker follows the timestamp in the canonical payload');

