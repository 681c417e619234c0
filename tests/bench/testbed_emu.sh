#!/bin/sh
# Benchmark of the testbed's link emulator (fjord-linkemu): throughput, CPU
# per Gbit/s, and added-delay percentiles at idle and under full load, each
# next to a baseline of the same namespaces with the emulator's hooks removed.
# Results go to stdout; docs/benchmarks.md records them.
set -u
TB=build/fjord-testbed
RUN=/run/fjtb-bench
CTL4=198.18.0.10
SECS=${FJTB_BENCH_SECS:-8}
topo=$(mktemp)
tmp=$(mktemp -d)
cat >"$topo" <<'X'
name = "fjtb-bench";
controller = { ipv4 = "198.18.0.10/24"; ipv6 = "fd00:ff::10/64"; };
isps = ( { name = "fast"; ipv4 = "10.51.0.0/16"; ipv6 = "fd00:51::/48"; } );
sites = (
	{ name = "ba"; nodes = ( { name = "ba1"; tun = "fjtun0"; } );
	  uplinks = ( { isp = "fast"; rate = "unlimited"; delay = "10ms"; } ); },
	{ name = "bb"; nodes = ( { name = "bb1"; tun = "fjtun0"; } );
	  uplinks = ( { isp = "fast"; rate = "unlimited"; delay = "10ms"; } ); }
);
X
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	"$TB" --run-dir "$RUN" down >/dev/null 2>&1
	rm -rf "$topo" "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
[ -e /run/netns/fjtb-core ] && { echo "another testbed is up; run fjord-testbed down"; exit 1; }
"$TB" --run-dir "$RUN" up "$topo" || exit 1
A=10.51.1.2
B=10.51.2.2
emu=$(cat "$RUN/linkemu.pid")

cpu_ticks() { # busy and total jiffies of the machine
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}
emu_ticks() {
	awk '{ print $14 + $15 }' /proc/$emu/stat
}
pct() { # percentile p of numbers on stdin
	sort -n | awk -v p="$1" '{ a[NR] = $1 } END { i = int(NR * p / 100 + 0.5); if (i < 1) i = 1;
		printf "%.3f", a[i] }'
}
rtts() {
	sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p'
}
# Added delay: RTT minus the baseline RTT, over the two emulated directions.
delays() { # ping args...; prints "p50 p90 p99 max" of RTT
	ip netns exec fjtb-ba ping -q -c 1 -I $A $CTL4 >/dev/null 2>&1
	ip netns exec fjtb-ba ping -c 1000 -i 0.004 -W 1 -I $A $CTL4 | rtts >"$tmp/rtt"
	echo "$(pct 50 <"$tmp/rtt") $(pct 90 <"$tmp/rtt") $(pct 99 <"$tmp/rtt") $(pct 100 <"$tmp/rtt")"
}
load() { # seconds: two iperf3 flows from bb (4 streams each) into the controller
	ip netns exec fjtb-bb iperf3 -c $CTL4 -B $B -p 5301 -t "$1" -P 2 -J >"$tmp/i1" 2>&1 &
	l1=$!
	ip netns exec fjtb-ba iperf3 -c $CTL4 -B $A -p 5302 -t "$1" -P 2 -J >"$tmp/i2" 2>&1 &
	l2=$!
}
bps() {
	sed -n '/"sum_received"/,/}/s/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' "$1" | head -n 1
}
ip netns exec fjtb-ctl iperf3 -s -B $CTL4 -p 5301 >/dev/null 2>&1 &
pids="$pids $!"
ip netns exec fjtb-ctl iperf3 -s -B $CTL4 -p 5302 >/dev/null 2>&1 &
pids="$pids $!"
sleep 0.3

run() { # label, with_emulator(1|0)
	echo "== $1"
	echo "idle RTT ms (p50 p90 p99 max): $(delays)"
	set -- $(cpu_ticks)
	c0=$1 t0=$2
	e0=$(emu_ticks)
	load "$SECS"
	sleep 2
	echo "RTT under load ms (p50 p90 p99 max), ping on ba while both links are full: $(delays)"
	wait $l1 $l2
	set -- $(cpu_ticks)
	c1=$1 t1=$2
	e1=$(emu_ticks)
	g=$(awk -v a="$(bps "$tmp/i1")" -v b="$(bps "$tmp/i2")" 'BEGIN { printf "%.3f", (a + b) / 1e9 }')
	echo "throughput (2 uplinks x 2 TCP flows, ${SECS} s): $g Gbit/s"
	awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) -v e=$((e1 - e0)) -v g="$g" -v s="$SECS" \
		-v n="$(nproc)" 'BEGIN {
		printf "machine CPU busy: %.1f%% of %d cores; fjord-linkemu CPU: %.1f%% of one core\n",
			100 * c / t, n, 100 * e / (s * 100);
		if (g > 0) printf "CPU per Gbit/s: machine %.2f cores, fjord-linkemu %.3f cores\n",
			n * c / t / g, e / (s * 100) / g }'
}
run "with the emulator (delay 10 ms each way, unlimited rate; GSO packets whole)" 1
"$TB" --run-dir "$RUN" status | sed -n 's/^emulator: /emulator /p'
# Any loss makes the emulator take packets one by one (GSO split by the
# kernel) so that each is lost on its own: the per-packet path. A loss of
# 1e-6 barely slows TCP down.
"$TB" --run-dir "$RUN" set ba/fast loss=0.0001% >/dev/null
"$TB" --run-dir "$RUN" set bb/fast loss=0.0001% >/dev/null
run "with the emulator, per-packet path (loss 1e-6 each way)" 1
"$TB" --run-dir "$RUN" status | sed -n 's/^emulator: /emulator (cumulative) /p'
# Baseline: the same namespaces and routes with the NFQUEUE hooks removed.
ip netns exec fjtb-core iptables -t mangle -F
ip netns exec fjtb-core ip6tables -t mangle -F
run "baseline: no emulator hooks (plain forwarding through the core)" 0
