# The kernel's floor for a single-element map update on this machine, measured
# without Node.js or koffi: perl's built-in syscall() (perl-base, no modules)
# calls bpf(2) on a preformatted attr, as a C program would. Calibration only.
#   perl native-floor.pl ROUNDS PER   -> one line per round: microseconds per update
use strict;
my ($rounds, $per) = @ARGV;
my $SYS_BPF = 321; my $SYS_CLOCK_GETTIME = 228;
# BPF_MAP_CREATE: HASH, key 4, value 4, 1024 entries (the same map as bench/bpf-maps).
my $create = pack("LLLLL", 1, 4, 4, 1024, 0) . ("\0" x 52);
my $fd = syscall($SYS_BPF, 0, $create, length($create));
die "BPF_MAP_CREATE: $!\n" if $fd < 0;
# 1024 attrs, one per key, so the loop does only the syscall (keys must stay alive).
my (@keys, @attrs);
my $val = pack("L", 1);
for my $k (0 .. 1023) {
  $keys[$k] = pack("L", $k);
  $attrs[$k] = pack("L x4 P4 P4 Q", $fd, $keys[$k], $val, 0);
  die "BPF_MAP_UPDATE_ELEM: $!\n" if syscall($SYS_BPF, 2, $attrs[$k], 32) < 0;
}
sub now { my $ts = "\0" x 16; syscall($SYS_CLOCK_GETTIME, 1, $ts); my ($s, $ns) = unpack("q q", $ts); return $s * 1e9 + $ns; }
for (1 .. 4000) { syscall($SYS_BPF, 2, $attrs[$_ & 1023], 32) }
for my $r (1 .. $rounds) {
  my $t0 = now();
  for my $i (1 .. $per) { syscall($SYS_BPF, 2, $attrs[$i & 1023], 32) }
  printf "%.4f\n", (now() - $t0) / 1000 / $per;
}
