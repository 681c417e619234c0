#!/bin/sh
# Goodput of the bundled stack on a namespace's own addresses (the host
# adapter, mpsperf --host, no TUN device) against the Linux kernel's MPTCP,
# beside the kernel talking to itself, same run, same paths. Namespace A
# holds 10.84.1.1 and 10.84.2.1, namespace B 10.84.1.2 and 10.84.2.2, on two
# veth paths shaped by tbf to FJ_BENCH_RATE (50mbit; "none" leaves them
# unshaped) on both ends (burst 64kb, latency 50ms). Each run does four
# transfers of FJ_BENCH_BYTES (32 MiB):
#   kernel -> bundled: kernel client in B, mpsperf --host server in A
#       announcing 10.84.2.1; the kernel joins to it;
#   bundled -> kernel: mpsperf --host client in A to a kernel server in B
#       announcing 10.84.2.2; we join to it;
#   baselines: kernel client in B -> kernel server in A announcing
#       10.84.2.1, and kernel client in A -> kernel server in B announcing
#       10.84.2.2.
# Goodput is measured at the receiver. CPU is the user and system time per GB
# moved of the end process in A (mpsperf, or kernel_peer.py in the baselines),
# which includes the kernel's softirq work that runs in its context (on veth
# much of the peer's receiving runs in the sender's); the rest of the
# kernel's work is not counted. Prints one line per transfer and the
# medians of FJ_BENCH_RUNS (3) runs with the ratios; figures go to
# docs/benchmarks.md, section "Bundled stack: host adapter". Root only.
set -eu

NAME=mps_host
RATE=${FJ_BENCH_RATE:-50mbit}
BYTES=${FJ_BENCH_BYTES:-33554432}
RUNS=${FJ_BENCH_RUNS:-3}
PERF=${FJ_BENCH_MPSPERF:-build/mpsperf}
PEER=tests/interop/kernel_peer.py

[ "$(id -u)" = 0 ] || { echo "$NAME: SKIP (needs root)"; exit 0; }
[ -x "$PERF" ] || { echo "$NAME: $PERF missing; run make" >&2; exit 1; }

A=fjhb-a-$$
B=fjhb-b-$$
TMP=$(mktemp -d)
PID=
cleanup() {
	trap '' INT TERM # a second signal must not cut the cleanup short
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$A"
ip netns add "$B"
for ns in "$A" "$B"; do
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -q net.mptcp.enabled=1
	ip -n "$ns" mptcp limits set subflows 2 add_addr_accepted 2
done
# The stack's ephemeral ports (49152-65535) stay clear of the kernel's own.
ip netns exec "$A" sysctl -q net.ipv4.ip_local_port_range="32768 49151"
for n in 1 2; do
	ip link add "fjhb${n}a-$$" netns "$A" type veth peer name "fjhb${n}b-$$" netns "$B"
	ip -n "$A" addr add "10.84.$n.1/24" dev "fjhb${n}a-$$"
	ip -n "$B" addr add "10.84.$n.2/24" dev "fjhb${n}b-$$"
	ip -n "$A" link set "fjhb${n}a-$$" up
	ip -n "$B" link set "fjhb${n}b-$$" up
	if [ "$RATE" != none ]; then
		ip netns exec "$A" tc qdisc add dev "fjhb${n}a-$$" root tbf rate "$RATE" \
			burst 64kb latency 50ms
		ip netns exec "$B" tc qdisc add dev "fjhb${n}b-$$" root tbf rate "$RATE" \
			burst 64kb latency 50ms
	fi
done

jget() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }
listening() { # netns port
	i=0
	while [ $i -lt 100 ]; do
		ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
		sleep 0.05
		i=$((i + 1))
	done
	echo "$NAME: nothing listens on port $2" >&2
	return 1
}
adapter_up() { # wait for the host adapter's nftables table in A
	i=0
	while [ $i -lt 100 ]; do
		ip netns exec "$A" nft list tables | grep -q fjmps_ && return 0
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}
# Only the kernel in namespace $1 (A, B or none) announces its path-2 address.
announce() { # netns|none
	ip -n "$A" mptcp endpoint flush
	ip -n "$B" mptcp endpoint flush
	if [ "$1" = "$A" ]; then
		ip -n "$A" mptcp endpoint add 10.84.2.1 dev "fjhb2a-$$" signal
	elif [ "$1" = "$B" ]; then
		ip -n "$B" mptcp endpoint add 10.84.2.2 dev "fjhb2b-$$" signal
	fi
}
# cpu CMD...: run CMD, write the user and system CPU seconds of it and its
# descendants (mpsperf) to $TMP/cpu, keep its exit status.
cpu() {
	python3 -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.3f\n" % (u.ru_utime + u.ru_stime))
sys.exit(rc)' "$TMP/cpu" "$@"
}
record() { # kind goodput-bps detail cpu-seconds
	echo "$2" >>"$TMP/$1.bps"
	cpu_gb=$(awk -v c="$4" -v n="$BYTES" 'BEGIN { printf "%.2f", c / (n / 1e9) }')
	echo "$cpu_gb" >>"$TMP/$1.cpu"
	cpu_gb=", CPU in A $cpu_gb s/GB"
	echo "$NAME: run $r $1: $(awk -v b="$2" 'BEGIN { printf "%.1f", b / 1e6 }') Mbit/s$cpu_gb; $3"
}

bad=0
r=1
while [ "$r" -le "$RUNS" ]; do
	# Kernel -> bundled.
	announce none
	cpu ip netns exec "$A" timeout -k 5 120 "$PERF" server --host --addr 10.84.1.1,10.84.2.1 \
		--port 5202 --once --mode sink >"$TMP/perf.json" 2>"$TMP/perf.err" &
	PID=$!
	if adapter_up && ip netns exec "$B" timeout -k 5 120 python3 "$PEER" send 10.84.1.1 5202 \
		"$BYTES" >"$TMP/peer.json" && wait "$PID"; then
		record k2b "$(jget goodput_bps <"$TMP/perf.json")" \
			"subflows $(jget subflows <"$TMP/perf.json"), bytes per subflow $(jget subflow_bytes <"$TMP/perf.json"), sha256 equal $([ "$(jget sha256 <"$TMP/perf.json")" = "$(jget sha256 <"$TMP/peer.json")" ] && echo yes || echo NO)" \
			"$(cat "$TMP/cpu")"
	else
		echo "$NAME: run $r k2b FAILED: $(cat "$TMP/perf.err")"
		bad=$((bad + 1))
	fi
	PID=

	# Bundled -> kernel.
	announce "$B"
	ip netns exec "$B" timeout -k 5 120 python3 "$PEER" recv 0.0.0.0 5203 >"$TMP/peer.json" &
	PID=$!
	listening "$B" 5203
	if cpu ip netns exec "$A" timeout -k 5 120 "$PERF" client --host --addr 10.84.1.1 \
		--remote 10.84.1.2 --port 5203 --mode send --bytes "$BYTES" >"$TMP/perf.json" \
		2>"$TMP/perf.err" && wait "$PID"; then
		record b2k "$(jget goodput_bps <"$TMP/peer.json")" \
			"subflows $(jget subflows <"$TMP/perf.json"), bytes per subflow $(jget subflow_bytes <"$TMP/perf.json"), sha256 equal $([ "$(jget sha256 <"$TMP/perf.json")" = "$(jget sha256 <"$TMP/peer.json")" ] && echo yes || echo NO)" \
			"$(cat "$TMP/cpu")"
	else
		echo "$NAME: run $r b2k FAILED: $(cat "$TMP/perf.err")"
		kill "$PID" 2>/dev/null || true
		bad=$((bad + 1))
	fi
	PID=

	# Baselines: kernel -> kernel, B to A and A to B.
	for d in ba ab; do
		if [ $d = ba ]; then src=$B dst=$A to=10.84.1.1; else src=$A dst=$B to=10.84.1.2; fi
		announce "$dst"
		# CPU of the process in A, as for mpsperf: the receiver (ba) or the sender (ab).
		wrap_dst=cpu wrap_src=
		[ $d = ab ] && wrap_dst= wrap_src=cpu
		$wrap_dst ip netns exec "$dst" timeout -k 5 120 python3 "$PEER" recv 0.0.0.0 5205 \
			>"$TMP/kpeer.json" &
		PID=$!
		listening "$dst" 5205
		$wrap_src ip netns exec "$src" timeout -k 5 120 python3 "$PEER" send "$to" 5205 \
			"$BYTES" >"$TMP/peer.json"
		wait "$PID"
		PID=
		record "kk_$d" "$(jget goodput_bps <"$TMP/kpeer.json")" \
			"kernel extra subflows $(jget extra_subflows_max <"$TMP/peer.json")" "$(cat "$TMP/cpu")"
	done
	r=$((r + 1))
done

for k in k2b b2k kk_ba kk_ab; do
	touch "$TMP/$k.bps" "$TMP/$k.cpu"
	eval "g_$k=$(median <"$TMP/$k.bps")"
	eval "c_$k=$(median <"$TMP/$k.cpu")"
done
awk -v a="$g_k2b" -v b="$g_b2k" -v ka="$g_kk_ba" -v kb="$g_kk_ab" -v rate="$RATE" \
	-v runs="$RUNS" -v n="$BYTES" -v bad="$bad" -v ca="$c_k2b" -v cb="$c_b2k" -v cka="$c_kk_ba" -v ckb="$c_kk_ab" 'BEGIN {
	printf "%s: medians of %d runs of %d bytes, two paths (rate %s), host adapter:\n", "mps_host", runs, n, rate
	printf "  kernel -> bundled  %7.1f Mbit/s  %.2f of kernel -> kernel (%.1f Mbit/s)  CPU in A %.2f vs %.2f s/GB\n", a / 1e6, ka ? a / ka : 0, ka / 1e6, ca, cka
	printf "  bundled -> kernel  %7.1f Mbit/s  %.2f of kernel -> kernel (%.1f Mbit/s)  CPU in A %.2f vs %.2f s/GB\n", b / 1e6, kb ? b / kb : 0, kb / 1e6, cb, ckb
	printf "  failed transfers: %d\n", bad
}'
[ "$bad" = 0 ]
