# The one item corpus (shared/tests/corpus/items.txt) through nginx and the
# stream: every line POSTed to /items gets the outcome the corpus states for
# a client (202, or 400 with the stated error code); exactly the accepted
# items reach the action log; the trainer (milvuso-worker --worker-type
# all) reading that log builds a model with exactly those items; and each
# of them means there what it means in a catalogue file: the same category,
# popularity, created_at and deleted flag as `milvuso-worker snapshot
# --items` gives the corpus's stored-data lines.  The catalogue loader
# itself is held to every line in worker/tests/test_catalog.c.
use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/lib";
use MilvusoTest;

MilvusoTest::init();
no_shuffle();

listen_loopback();

our $DIR = tmpdir();
$ENV{TEST_NGINX_LOGDIR} = "$DIR/actlog";

our $http_config = <<'_EOC_';
    milvuso_zone       milvuso:4m;
    milvuso_action_log $TEST_NGINX_LOGDIR;
    milvuso_dim        4;
_EOC_

our $config = <<'_EOC_';
    location = /items  { milvuso_items; }
    location = /health { milvuso_health; }
_EOC_

# [expect from a client, expect as stored data, body, line]
our @CORPUS;
{
    my $path = "$FindBin::Bin/../shared/tests/corpus/items.txt";
    open my $fh, '<:raw', $path or die "$path: $!";
    while (my $l = <$fh>) {
        next if $l =~ /^(?:#|\n)/;
        chomp $l;
        my ($expect, $body) = split /\t/, $l, 2;
        my ($client, $data) = $expect =~ /^client=(.+)$/ ? ($1, 'ok')
                                                         : ($expect, $expect);
        push @CORPUS, [ $client, $data, $body, $. ];
    }
}

# { id => { category, popularity, deleted, created_at } } of a snapshot.
sub catalogue_of {
    my $j = inspect(shift, '--all-items');
    return { map {
        $_->{id} => { category => $_->{category},
                      popularity => $_->{popularity},
                      deleted => $_->{deleted} ? 1 : 0,
                      created_at => $_->{created_at} }
    } @{ $j->{items} } };
}

sub check_corpus {
    # 1. POST /items: the client's outcome, line by line
    my (@accepted, $n_refused);
    for my $c (@CORPUS) {
        my ($client, $data, $body, $line) = @$c;
        my $res = http_post('/items', $body);
        my $j = json_decode($res->{content} // '') // {};
        my $got = $res->{status} == 202 ? 'ok'
                : $res->{status} == 400 ? ($j->{error} // '?')
                : "status $res->{status}";
        is($got, $client, "line $line from a client: $client");
        if ($got eq 'ok') {
            my ($id) = $body =~ /"item_id"\s*:\s*"([^"]+)"/;
            push @accepted, $id;
        } else {
            $n_refused++;
        }
    }
    ok(@accepted >= 10 && $n_refused >= 30, 'both outcomes are there');

    # 2. exactly the accepted items are in the log, in order
    my @rec = log_records($ENV{TEST_NGINX_LOGDIR}, 'corpus');
    is_deeply([ map { $_->{json}{item_id} } @rec ], \@accepted,
              'the log holds exactly the accepted items');

    # 3. the catalogue file of the stored-data lines
    my @lines = map { $_->[2] } grep { $_->[1] eq 'ok' } @CORPUS;
    open my $fh, '>', "$DIR/catalogue.jsonl" or die $!;
    print $fh "$_\n" for @lines;
    close $fh;
    snapshot(out => "$DIR/from-file", items => "$DIR/catalogue.jsonl");
    my $file = catalogue_of("$DIR/from-file/current");
    is(scalar keys %$file, scalar @lines,
       'the catalogue file gives one item per stored-data line');

    # 4. the trainer reads the log into a model of the same items
    my $conf = write_toml("$DIR/worker.toml", {
        # ip keeps every vector as given (c-ok-10 is near FLT_MAX), and
        # without an item bias no coordinate of the embedding is taken over
        recommendation => { embedding_dim => 4, metric => 'ip' },
        training => { item_bias => 'false' },
        worker => {
            action_log => $ENV{TEST_NGINX_LOGDIR},
            snapshot_dir => "$DIR/from-log", metrics_file => "$DIR/w.prom",
            publish_interval => 0.2, popularity_half_life => 0,
            poll_interval => 0.05,
        },
    });
    my $pid = start_worker(config => $conf, out => "$DIR/worker.out");
    my $log = undef;
    wait_for(15, sub {
        $log = eval { catalogue_of("$DIR/from-log/current") };
        return $log && keys %$log == @accepted;
    });
    stop_worker($pid, 'TERM');
    ok($log, 'the trainer published a model')
        or diag(file_text("$DIR/worker.out"));
    $log //= {};
    is_deeply([ sort keys %$log ], [ sort @accepted ],
              'the trainer learned exactly the accepted items');

    # 5. every item means the same on both paths; an item sent without
    #    created_at has its arrival time over HTTP, 0 ("unknown") in a file
    my %sent = map {
        my $j = json_decode($_->[2]);
        ($j->{item_id} => $j)
    } grep { $_->[0] eq 'ok' } @CORPUS;
    for my $id (sort @accepted) {
        my ($l, $f) = ({ %{ $log->{$id} // {} } }, { %{ $file->{$id} // {} } });
        unless (defined $sent{$id}{created_at}) {
            is($f->{created_at}, '1970-01-01T00:00:00.000Z',
               "$id: no created_at in a file is 0");
            delete $l->{created_at};
            delete $f->{created_at};
        }
        is_deeply($l, $f,
                  "$id: the same through POST /items and a catalogue file");
    }
}

run_tests();

__DATA__

=== TEST 1: the item corpus through POST /items, the action log, the trainer and a catalogue file
--- request
GET /health
--- response_body_like: ^\{"status":
--- after
check_corpus();
