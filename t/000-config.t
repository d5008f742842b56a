# Directive errors are caught when the configuration is read (nginx -t time):
# nginx refuses to start and says why, in nginx's own wording.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;

MilvusoTest::init();
no_shuffle();
log_level('warn');

our $http_config = <<'_EOC_';
    milvuso_zone milvuso:1m;
_EOC_

our $config = <<'_EOC_';
    location = /health { milvuso_health; }
_EOC_

run_tests();

__DATA__

=== TEST 1: a valid configuration starts (the snapshot is not read at configuration time)
--- http_config
    milvuso_zone        milvuso:1m;
    milvuso_snapshot    /nonexistent/milvuso/current check=2s behind=1m;
    milvuso_profile     size=16 half_life=30m weight=0.25;
    milvuso_action_weights Click=1.5 Dislike=-3;
    milvuso_dim         8;
    milvuso_fresh_max   100;
    milvuso_cache_ttl   10s;
    milvuso_max_k       50;
    milvuso_ef          32;
    milvuso_body_max    16k;
--- config
    location = /actions        { milvuso_actions; }
    location = /items          { milvuso_items; }
    location /recommendations/ { milvuso_recommend; milvuso_max_k 20; }
    location /similar/         { milvuso_similar; milvuso_cache_ttl 0; }
    location = /health         { milvuso_health; }
    location = /metrics        { milvuso_metrics; }
--- request
GET /health
--- error_code_like: ^(?:200|503)$
--- response_body_like: "status"\s*:\s*"degraded"
--- no_error_log
[emerg]



=== TEST 2: handlers without milvuso_zone in http
--- http_config
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*"milvuso_zone"/



=== TEST 3: duplicate milvuso_zone
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_zone other:1m;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] \d+#\d+: "milvuso_zone" directive is duplicate/



=== TEST 4: zone smaller than 512k
--- http_config
    milvuso_zone milvuso:64k;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*(?:too small|at least)/



=== TEST 5: garbage zone size
--- http_config
    milvuso_zone milvuso:lots;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid .*"(?:milvuso:)?lots"/



=== TEST 6: zone without a size
--- http_config
    milvuso_zone milvuso;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid .*"milvuso"/



=== TEST 7: milvuso_zone outside http
--- http_config
    milvuso_zone milvuso:1m;
--- config
    milvuso_zone other:1m;
    location = /health { milvuso_health; }
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] \d+#\d+: "milvuso_zone" directive is not allowed here/



=== TEST 8: milvuso_snapshot with a bad check=
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_snapshot /tmp/nonexistent/current check=abc;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid .*"check=abc"/



=== TEST 9: milvuso_snapshot with an unknown parameter
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_snapshot /tmp/nonexistent/current every=2s;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid .*"every=2s"/



=== TEST 10: milvuso_profile with a non-numeric size
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_profile size=abc;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid .*size=abc|\[emerg\] .*invalid .*"abc"/



=== TEST 11: milvuso_profile with size=0
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_profile size=0;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*size/



=== TEST 12: milvuso_profile with a bad half_life
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_profile half_life=soon;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid .*half_life=soon|\[emerg\] .*invalid .*"soon"/



=== TEST 13: milvuso_profile with a weight above 1
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_profile weight=1.5;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*weight/



=== TEST 14: milvuso_profile with an unknown parameter
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_profile depth=3;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid .*"depth=3"/



=== TEST 15: milvuso_action_weights with an unknown action type
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_action_weights Click=2 Teleport=1;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*Teleport/



=== TEST 16: milvuso_action_weights with a weight that is not a number
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_action_weights Click=lots;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid .*(?:Click=lots|"lots")/



=== TEST 17: milvuso_action_weights without "="
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_action_weights Click;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*"Click"/



=== TEST 18: milvuso_max_k 0
--- config
    location = /health { milvuso_health; milvuso_max_k 0; }
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*milvuso_max_k/



=== TEST 19: milvuso_max_k not a number
--- config
    location = /health { milvuso_health; milvuso_max_k ten; }
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*(?:milvuso_max_k|"ten")/



=== TEST 20: milvuso_body_max garbage
--- config
    location = /actions { milvuso_actions; milvuso_body_max big; }
--- request
GET /actions
--- must_die
--- error_log eval
qr/\[emerg\] .*(?:milvuso_body_max|"big")/



=== TEST 21: a handler directive given an argument
--- config
    location = /health { milvuso_health on; }
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] \d+#\d+: invalid number of arguments in "milvuso_health" directive/



=== TEST 22: milvuso_action_log with a bad segment size
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_action_log /tmp/milvuso-tn-never segment=huge;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid .*(?:segment=huge|"huge")/



=== TEST 23: milvuso_action_log with a bad sync value
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_action_log /tmp/milvuso-tn-never sync=maybe;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid .*(?:sync=maybe|"maybe")/



=== TEST 24: milvuso_dim 0
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_dim 0;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*milvuso_dim/



=== TEST 25: a handler outside a location
--- config
    milvuso_health;
    location = /x { return 204; }
--- request
GET /x
--- must_die
--- error_log eval
qr/\[emerg\] \d+#\d+: "milvuso_health" directive is not allowed here/



=== TEST 26: milvuso_snapshot with behind=0
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_snapshot /tmp/nonexistent/current behind=0;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*"behind=" must be at least 1s in "behind=0"/



=== TEST 27: milvuso_snapshot with a non-time behind=
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_snapshot /tmp/nonexistent/current behind=abc;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "behind=abc"/



=== TEST 28: milvuso_snapshot with behind= under a second
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_snapshot /tmp/nonexistent/current behind=500ms;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*"behind=" must be at least 1s in "behind=500ms"/



=== TEST 29: milvuso_snapshot with behind= twice
--- http_config
    milvuso_zone milvuso:1m;
    milvuso_snapshot /tmp/nonexistent/current behind=1m behind=2m;
--- request
GET /health
--- must_die
--- error_log eval
qr/\[emerg\] .*"behind=" is duplicate in "behind=2m"/

