# The nginx `config` script: every source of the module and of libmilvuso
# (but exact.c) is compiled, and every header a compiled source includes,
# directly or through another header, is a dependency (ngx_module_deps), so
# that no module object goes stale after a header change.
#
# `config` is sourced as nginx's ./configure does, with stand-ins for
# auto/feature (every library found) and auto/module (prints what it got).
# Needs neither nginx nor the built module.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Temp qw(tempdir);
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/..');
my $tmp = tempdir(CLEANUP => 1);
mkdir "$tmp/auto" or die "$tmp/auto: $!";

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
}

write_file("$tmp/auto/feature", "ngx_found=yes\n");
write_file("$tmp/auto/module",
           "echo \"SRCS=\$ngx_module_srcs\"\necho \"DEPS=\$ngx_module_deps\"\n"
           . "echo \"INCS=\$ngx_module_incs\"\n");

my $out = `cd '$tmp' && ngx_addon_dir='$root' sh -c '. "\$ngx_addon_dir/config"' 2>&1`;
is($?, 0, 'config runs') or diag($out);

my %v = map { /^(\w+)=(.*)$/ ? ($1 => [split ' ', $2]) : () } split /\n/, $out;
my %srcs = map { $_ => 1 } @{ $v{SRCS} // [] };
my %deps = map { $_ => 1 } @{ $v{DEPS} // [] };
my @incs = @{ $v{INCS} // [] };

# every source is compiled (exact.c is the worker's, not nginx's)
for my $c (glob("$root/ngx_milvuso_module/*.c"), glob("$root/shared/*.c")) {
    next if basename($c) eq 'exact.c';
    ok($srcs{$c}, "compiled: " . substr($c, length($root) + 1));
}
ok(!$srcs{"$root/shared/exact.c"}, 'exact.c (OpenBLAS) is not in the module');

# the headers a file includes with "...", resolved in the module's include
# directories, followed through headers
sub includes {
    my $file = shift;
    open my $fh, '<', $file or die "$file: $!";
    my @h;
    while (<$fh>) {
        next unless /^\s*#\s*include\s+"([^"]+)"/;
        my ($found) = grep { -f } map { "$_/$1" } dirname($file), @incs;
        push @h, [$1, $found];
    }
    return @h;
}

my %seen;
my @todo = sort keys %srcs;
while (my $f = shift @todo) {
    for my $inc (includes($f)) {
        my ($name, $path) = @$inc;
        my $rel = substr($f, length($root) + 1);
        ok(defined $path, "$rel: \"$name\" is found") or next;
        next if $seen{$path}++;
        ok($deps{$path}, "dependency: " . substr($path, length($root) + 1)
                         . " (included by $rel)");
        push @todo, $path;
    }
}
ok(scalar keys %seen > 5, 'the includes were followed');

done_testing();
