#!/bin/sh
# Goodput over two paths, the bundled stack against the Linux kernel's MPTCP
# beside the kernel talking to itself, same run, same paths (topology in
# tests/bench/mps_lib.sh). Each run does four transfers of FJ_BENCH_BYTES:
#   kernel -> bundled: kernel client in B, mpsperf server in A announcing
#       10.80.2.2; the kernel joins to it and its scheduler spreads the data;
#   bundled -> kernel: mpsperf client in A (scheduler FJ_BENCH_SCHED, lowrtt;
#       congestion control FJ_BENCH_CC, lia) to a kernel server in B
#       announcing 10.81.2.2; we join to it;
#   baselines: kernel client in B -> kernel server in A announcing 10.81.2.1,
#       and kernel client in A -> kernel server in B announcing 10.81.2.2.
# Goodput is measured at the receiver. CPU per GB moved, two ways: the whole
# machine's busy time from /proc/stat over the transfer (both peers' softirq
# work included, and anything else the machine runs), and the attributed
# time of tests/bench/mps_lib.sh (the two end processes plus irq and
# softirq). Paths shaped by tbf to FJ_BENCH_RATE (50mbit) each;
# FJ_BENCH_RATE=none leaves them unshaped (mps_twopath_raw.sh).
# FJ_BENCH_MTU (1500) sets the MTU of both veths and of the TUN device, for
# the kernel's transfers and ours alike: 9000 gives jumbo frames, the
# kernels' MSS follows the MTU, and mpsperf is given --mss MTU-40 to match.
# Prints one line per transfer and the medians with ratios; figures go to
# docs/benchmarks.md, section "Bundled stack". Root only.
set -eu

RATE=${FJ_BENCH_RATE:-50mbit}
if [ "$RATE" = none ]; then
	BYTES=${FJ_BENCH_BYTES:-67108864}
else
	BYTES=${FJ_BENCH_BYTES:-33554432}
fi
RUNS=${FJ_BENCH_RUNS:-3}
SCHED=${FJ_BENCH_SCHED:-lowrtt}
CC=${FJ_BENCH_CC:-lia} # congestion control of the bundled stack
PERF_OPTS=${FJ_BENCH_PERF_OPTS:-} # more mpsperf options, e.g. --sndbuf 1048576
PERF=${FJ_BENCH_MPSPERF:-build/mpsperf} # a copy keeps one build through the runs
PEER=tests/interop/kernel_peer.py
NAME=mps_twopath
MTU=${FJ_BENCH_MTU:-1500}
case "$MTU" in
'' | *[!0-9]*) echo "$NAME: FJ_BENCH_MTU=$MTU: not a number" >&2; exit 1 ;;
esac
if [ "$MTU" -lt 1280 ] || [ "$MTU" -gt 65535 ]; then
	echo "$NAME: FJ_BENCH_MTU=$MTU: out of range (1280-65535)" >&2
	exit 1
fi
# The largest TCP payload without options, as the kernels announce it for
# this MTU; mpsperf's default (the stack's 1400) only when the MTU is 1500.
MSS_OPT=
[ "$MTU" = 1500 ] || MSS_OPT="--mss $((MTU - 40))"

[ "$(id -u)" = 0 ] || { echo "$NAME: SKIP (needs root)"; exit 0; }
[ -x "$PERF" ] || { echo "$NAME: $PERF missing; run make" >&2; exit 1; }
if [ -n "$MSS_OPT" ] && ! "$PERF" 2>&1 | grep -q -e "--mss"; then
	echo "$NAME: $PERF has no --mss option, so it cannot match MTU $MTU" >&2
	exit 1
fi

A=fjmtp-a-$$
B=fjmtp-b-$$
TMP=$(mktemp -d)
cleanup() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
. tests/bench/mps_lib.sh
twopath_up

# One transfer's figures: goodput at the receiver and whole-machine CPU.
record() { # kind goodput-bps detail
	cpu=$(cpu_end)
	echo "$2" >>"$TMP/$1.bps"
	echo "$cpu" | awk -v n="$BYTES" '{ printf "%.3f\n", $1 / (n / 1e9) }' >>"$TMP/$1.cpu"
	echo "$cpu" | awk -v n="$BYTES" '{ printf "%.3f\n", $2 / (n / 1e9) }' >>"$TMP/$1.net"
	echo "$NAME: run $r $1: $(awk -v b="$2" 'BEGIN { printf "%.1f", b / 1e6 }') Mbit/s," \
		"CPU s whole-machine/attributed $cpu; $3"
}

bad=0
r=1
while [ "$r" -le "$RUNS" ]; do
	# Kernel -> bundled.
	announce_b none
	cpu_begin
	cpu_wrap ip netns exec "$A" timeout -k 5 120 "$PERF" server --tun mps0 \
		--addr 10.80.1.2,10.80.2.2 --port 5002 --once --mode sink $MSS_OPT $PERF_OPTS >"$TMP/perf.json" \
		2>"$TMP/perf.err" &
	PID=$!
	sleep 0.5
	if cpu_wrap ip netns exec "$B" timeout -k 5 120 python3 "$PEER" send 10.80.1.2 5002 \
		"$BYTES" >"$TMP/peer.json" && wait "$PID"; then
		record k2b "$(jget goodput_bps <"$TMP/perf.json")" \
			"subflows $(jget subflows <"$TMP/perf.json"), bytes per subflow $(jget subflow_bytes <"$TMP/perf.json")"
	else
		echo "$NAME: run $r k2b FAILED: $(cat "$TMP/perf.err")"
		bad=$((bad + 1))
	fi
	PID=

	# Bundled -> kernel.
	announce_b "$B"
	cpu_begin
	cpu_wrap ip netns exec "$B" timeout -k 5 120 python3 "$PEER" recv 0.0.0.0 5003 \
		>"$TMP/peer.json" &
	PID=$!
	listening "$B" 5003
	if cpu_wrap ip netns exec "$A" timeout -k 5 120 "$PERF" client --tun mps0 --addr 10.80.1.2 \
		--remote 10.81.1.2 --port 5003 --mode send --bytes "$BYTES" --scheduler "$SCHED" --cc "$CC" $MSS_OPT $PERF_OPTS \
		>"$TMP/perf.json" 2>"$TMP/perf.err" && wait "$PID"; then
		record b2k "$(jget goodput_bps <"$TMP/peer.json")" \
			"subflows $(jget subflows <"$TMP/perf.json"), bytes per subflow $(jget subflow_bytes <"$TMP/perf.json"), sha256 equal $([ "$(jget sha256 <"$TMP/perf.json")" = "$(jget sha256 <"$TMP/peer.json")" ] && echo yes || echo NO)"
	else
		echo "$NAME: run $r b2k FAILED: $(cat "$TMP/perf.err")"
		kill "$PID" 2>/dev/null || true
		bad=$((bad + 1))
	fi
	PID=

	# Baselines: kernel -> kernel, B to A and A to B.
	for d in ba ab; do
		if [ $d = ba ]; then src=$B dst=$A to=10.81.1.1; else src=$A dst=$B to=10.81.1.2; fi
		announce_b "$dst"
		cpu_begin
		cpu_wrap ip netns exec "$dst" timeout -k 5 120 python3 "$PEER" recv 0.0.0.0 5005 \
			>"$TMP/kpeer.json" &
		PID=$!
		listening "$dst" 5005
		cpu_wrap ip netns exec "$src" timeout -k 5 120 python3 "$PEER" send "$to" 5005 "$BYTES" \
			>"$TMP/peer.json"
		wait "$PID"
		PID=
		record "kk_$d" "$(jget goodput_bps <"$TMP/kpeer.json")" \
			"kernel extra subflows $(jget extra_subflows_max <"$TMP/peer.json")"
	done
	r=$((r + 1))
done

for k in k2b b2k kk_ba kk_ab; do
	eval "g_$k=$(median <"$TMP/$k.bps")"
	eval "c_$k=$(median <"$TMP/$k.cpu")"
	eval "n_$k=$(median <"$TMP/$k.net")"
done
awk -v a="$g_k2b" -v b="$g_b2k" -v ka="$g_kk_ba" -v kb="$g_kk_ab" -v ca="$c_k2b" -v cb="$c_b2k" \
	-v cka="$c_kk_ba" -v ckb="$c_kk_ab" -v rate="$RATE" -v runs="$RUNS" -v n="$BYTES" \
	-v sched="$SCHED/$CC" -v bad="$bad" -v na="$n_k2b" -v nb="$n_b2k" -v nka="$n_kk_ba" \
	-v nkb="$n_kk_ab" -v mtu="$MTU" 'BEGIN {
	printf "%s: medians of %d runs of %d bytes, two paths (rate %s, MTU %d), CPU s per GB of the whole machine:\n", "mps_twopath", runs, n, rate, mtu
	printf "  kernel -> bundled  %7.1f Mbit/s  %.2f of kernel -> kernel (%.1f Mbit/s)  CPU %.2f vs %.2f s/GB\n", a / 1e6, ka ? a / ka : 0, ka / 1e6, ca, cka
	printf "  bundled -> kernel  %7.1f Mbit/s  %.2f of kernel -> kernel (%.1f Mbit/s)  CPU %.2f vs %.2f s/GB (scheduler %s)\n", b / 1e6, kb ? b / kb : 0, kb / 1e6, cb, ckb, sched
	if (rate == "50mbit")
		printf "  share of 100 Mbit/s: kernel -> bundled %.1f %%, bundled -> kernel %.1f %%, kernel -> kernel %.1f %% / %.1f %%\n", a / 1e6, b / 1e6, ka / 1e6, kb / 1e6
	printf "  attributed CPU s/GB (end processes + irq/softirq): kernel -> bundled %.2f vs %.2f, bundled -> kernel %.2f vs %.2f\n", na, nka, nb, nkb
	printf "  failed transfers: %d\n", bad
}'
[ "$bad" = 0 ]
