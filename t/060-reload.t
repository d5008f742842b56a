# Reloads (HUP) and snapshot swaps: the zone (profiles) survives a reload, a
# reload maps the newest snapshot, check= picks up a new generation without
# a reload, a corrupt new snapshot is refused while the old one serves, and
# a good file that reuses a refused one's inode is not skipped; the time of
# the last accepted write survives a reload too (the trainer is behind a
# model older than it).
#
# The blocks run in order against one nginx that is reloaded between them
# (use_hup), so they depend on each other.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;

MilvusoTest::init();
no_shuffle();
use_hup();

our $dir = tmpdir();
tiny_model("$dir/snaps");                     # generation 1
$ENV{TEST_NGINX_SNAPDIR} = "$dir/snaps";
# a model made long ago, for the last block
tiny_model("$dir/old", created_at => '2020-01-01T00:00:00Z');
$ENV{TEST_NGINX_OLDSNAPDIR} = "$dir/old";
$ENV{TEST_NGINX_LOGDIR} = "$dir/actlog";

our $http_config = <<'_EOC_';
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current;
    milvuso_action_log $TEST_NGINX_LOGDIR;
    milvuso_cache_ttl  0;
_EOC_

our $http_config_check = <<'_EOC_';
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current check=1s;
    milvuso_action_log $TEST_NGINX_LOGDIR;
    milvuso_cache_ttl  0;
_EOC_

our $config = <<'_EOC_';
    location = /actions        { milvuso_actions; }
    location /recommendations/ { milvuso_recommend; }
    location = /health         { milvuso_health; }
_EOC_

sub generation_of {
    my $j = json_decode(shift // '') or return -1;
    return $j->{model_generation} // $j->{generation} // -1;
}

# Waits (at most 10 s) until /health reports generation G.
sub wait_generation {
    my $g = shift;
    return wait_for(10, sub { generation_of(http_get('/health')->{content}) == $g });
}

sub health_gen { return 'gen=' . generation_of(shift) }

run_tests();

__DATA__

=== TEST 1: generation 1; an unknown user's action builds a profile
--- request eval
["GET /health",
 "POST /actions\n" . actions_json('newbie', 'item-b2', 'Like'),
 "GET /recommendations/newbie?num_recommendations=2"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 202, 200]
--- response_body_filters eval
[[\&::health_gen], [\&summary], [\&summary]]
--- response_body eval
["gen=1", "status=accepted event_id=yes",
 "source=profile gen=1 n=2 items=item-b2,item-b1"]



=== TEST 2: the zone survives a reload (HUP): the profile is still there
--- request eval
["GET /recommendations/newbie?num_recommendations=2", "GET /health"]
--- response_body_filters eval
[[\&summary], [\&::health_gen]]
--- response_body eval
["source=profile gen=1 n=2 items=item-b2,item-b1", "gen=1"]



=== TEST 3: a reload maps the newest snapshot (generation 2), profiles kept
--- setup
tiny_model("$::dir/snaps");                   # generation 2, before the HUP
--- request eval
["GET /health", "GET /recommendations/newbie?num_recommendations=2",
 "GET /recommendations/user-x?num_recommendations=1"]
--- response_body_filters eval
[[\&::health_gen], [\&summary], [\&summary]]
--- response_body eval
["gen=2", "source=profile gen=2 n=2 items=item-b2,item-b1",
 "source=index gen=2 n=1 items=item-a1"]



=== TEST 4: with check=1s a new generation is picked up without a reload
--- http_config eval: $::http_config_check
--- init
tiny_model("$::dir/snaps");                   # generation 3, after the HUP
$::picked_up = ::wait_generation(3);
--- request eval
["GET /health", "GET /recommendations/newbie?num_recommendations=2"]
--- response_body_filters eval
[[\&::health_gen], [\&summary]]
--- response_body eval
["gen=3", "source=profile gen=3 n=2 items=item-b2,item-b1"]
--- after
ok($::picked_up, 'generation 3 seen within 10 s');



=== TEST 5: a corrupt new snapshot is refused; the old one keeps serving
--- http_config eval: $::http_config_check
--- init
# Copy generation 3's file as generation 4 with a byte flipped in the
# middle, and point `current` at it.
my $cur = readlink("$::dir/snaps/current") or die "no current link";
my $bad = "snapshot-00000000000000000004.mvs";
system('cp', "$::dir/snaps/$cur", "$::dir/snaps/$bad") == 0 or die "cp failed";
flip_byte("$::dir/snaps/$bad");
publish_link("$::dir/snaps", $bad);
# Wait (at most 10 s) until a worker has tried it and said why it refused.
$::refused = wait_for(10, sub {
    open my $fh, '<', $Test::Nginx::Util::ErrLogFile or return 0;
    local $/;
    my $log = <$fh>;
    return $log =~ /\[(?:error|crit|warn)\] .*checksum mismatch/;
});
--- request eval
["GET /health", "GET /recommendations/user-x?num_recommendations=1",
 "GET /recommendations/newbie?num_recommendations=2"]
--- response_body_filters eval
[[\&::health_gen], [\&summary], [\&summary]]
--- response_body eval
["gen=3", "source=index gen=3 n=1 items=item-a1",
 "source=profile gen=3 n=2 items=item-b2,item-b1"]
--- no_error_log
[alert]
[emerg]
--- after
ok($::refused, 'the refusal (checksum mismatch) was logged within 10 s');



=== TEST 6: a refused file whose inode comes back as a good generation is picked up
--- http_config eval: $::http_config_check
--- init
# A pruned file's inode can be reused by a later publish.  Simulate it
# deterministically: write a good generation 5 over the refused file of
# TEST 5 in place (same path, same inode) while `current` names it.
# Remembering the refused file by device + inode skipped it forever.  (The
# workers started by this block's HUP refuse the corrupt file first.)
my $bad = "$::dir/snaps/snapshot-00000000000000000004.mvs";
my $ino = (stat $bad)[1];
tiny_model("$::dir/gen5", generation => 5);
my ($good) = glob("$::dir/gen5/snapshot-*5.mvs") or die "no generation 5";
open my $in, '<:raw', $good or die "$good: $!";
my $bytes = do { local $/; <$in> };
close $in;
open my $out, '+<:raw', $bad or die "$bad: $!";
print $out $bytes;
truncate $out, length $bytes;
close $out or die "$bad: $!";
$::same_inode = (stat $bad)[1] == $ino;
$::picked_up = ::wait_generation(5);
--- request eval
["GET /health", "GET /recommendations/user-x?num_recommendations=1"]
--- response_body_filters eval
[[\&::health_gen], [\&summary]]
--- response_body eval
["gen=5", "source=index gen=5 n=1 items=item-a1"]
--- no_error_log
[alert]
[emerg]
--- after
ok($::same_inode, 'generation 5 has the inode of the refused file');
ok($::picked_up, 'generation 5 seen within 10 s');



=== TEST 7: a reload that changes the zone size is refused; the old workers keep serving
--- http_config
    milvuso_zone       milvuso:8m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current check=1s;
    milvuso_action_log $TEST_NGINX_LOGDIR;
    milvuso_cache_ttl  0;
--- reload_fails
--- init
# Wait (at most 10 s) until the master has read and refused the configuration.
wait_for(10, sub {
    open my $fh, '<', $Test::Nginx::Util::ErrLogFile or return 0;
    local $/;
    my $log = <$fh>;
    return $log =~ /\[emerg\] .*milvuso_zone/;
});
--- request
GET /recommendations/newbie?num_recommendations=2
--- response_body_filters eval
\&summary
--- response_body chomp
source=profile gen=5 n=2 items=item-b2,item-b1
--- error_log eval
[qr/\[emerg\] .*milvuso_zone/]
--- no_error_log
[alert]



=== TEST 8: a reload that changes the profile size is refused, and the message names the profile size
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_SNAPDIR/current check=1s;
    milvuso_action_log $TEST_NGINX_LOGDIR;
    milvuso_cache_ttl  0;
    milvuso_profile    size=8;
--- reload_fails
--- init
wait_for(10, sub {
    open my $fh, '<', $Test::Nginx::Util::ErrLogFile or return 0;
    local $/;
    my $log = <$fh>;
    return $log =~ /\[emerg\] .*profile size=32/;
});
--- request
GET /recommendations/newbie?num_recommendations=2
--- response_body_filters eval
\&summary
--- response_body chomp
source=profile gen=5 n=2 items=item-b2,item-b1
--- error_log eval
[qr/\[emerg\] .*milvuso_zone "milvuso" was created with profile size=32, the new configuration asks for 8; changing it needs a restart/]
--- no_error_log
layout version
[alert]



=== TEST 9: the zone survives a reload: the action accepted in TEST 1 is newer than an old model, so the trainer is behind
--- http_config
    milvuso_zone       milvuso:4m;
    milvuso_snapshot   $TEST_NGINX_OLDSNAPDIR/current;
    milvuso_action_log $TEST_NGINX_LOGDIR;
    milvuso_cache_ttl  0;
--- request
GET /health
--- response_body_filters eval
sub { my $j = json_decode($_[0]) or return "not json: $_[0]";
      my $t = $j->{trainer} // {};
      my $age = time - 1577836800;
      CORE::join ' ', "status=$j->{status}",
          'created=' . ($j->{snapshot}{created_at} // '?'),
          'unpublished=' . (($t->{unpublished_seconds} // -1) >= $age - 5
                            ? 'age' : ($t->{unpublished_seconds} // 'null')),
          'behind=' . ($t->{behind} ? 'true' : 'false') }
--- response_body chomp
status=ok created=2020-01-01T00:00:00.000Z unpublished=age behind=true
--- no_error_log
[alert]
[emerg]
