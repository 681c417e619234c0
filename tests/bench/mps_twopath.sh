#!/bin/sh
# Goodput over two paths shaped by tbf to 50 Mbit/s each, the Linux kernel's
# MPTCP sending (its scheduler spreads the data), received by:
#   bundled: mpsperf server behind a TUN device in namespace A, which
#            announces its second address; the kernel joins to it;
#   baseline, same run and same paths: a kernel server in namespace A
#            announcing its second address (signal endpoint).
# Namespace B (the kernel client) reaches A over veth path a (10.81.1.0/24)
# and path b (10.81.2.0/24), each shaped on B's side. Prints one line per
# run and the medians, with the subflow counts that show both paths were
# used; figures go to docs/benchmarks.md, section "Bundled stack". Root only.
set -eu

BYTES=${FJ_BENCH_BYTES:-33554432}
RUNS=${FJ_BENCH_RUNS:-3}
RATE=${FJ_BENCH_RATE:-50mbit}
PERF=build/mpsperf
PEER=tests/interop/kernel_peer.py

[ "$(id -u)" = 0 ] || { echo "mps_twopath: SKIP (needs root)"; exit 0; }
[ -x "$PERF" ] || { echo "mps_twopath: $PERF missing; run make" >&2; exit 1; }

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

ip netns add "$A"
ip netns add "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" tuntap add dev mps0 mode tun
ip -n "$A" link set mps0 up
ip -n "$A" route add 10.80.1.2/32 dev mps0
ip -n "$A" route add 10.80.2.2/32 dev mps0
ip netns exec "$A" sysctl -q net.ipv4.ip_forward=1
for ns in "$A" "$B"; do
	ip netns exec "$ns" sysctl -q net.ipv4.conf.all.rp_filter=0
	ip netns exec "$ns" sysctl -q net.ipv4.conf.default.rp_filter=0
	ip netns exec "$ns" sysctl -q net.mptcp.enabled=1
	ip -n "$ns" mptcp limits set subflows 2 add_addr_accepted 2
done
for p in a b; do
	n=$([ $p = a ] && echo 1 || echo 2)
	ip link add "t${p}0-$$" netns "$A" type veth peer name "t${p}1-$$" netns "$B"
	ip -n "$A" addr add "10.81.$n.1/24" dev "t${p}0-$$"
	ip -n "$B" addr add "10.81.$n.2/24" dev "t${p}1-$$"
	ip -n "$A" link set "t${p}0-$$" up
	ip -n "$B" link set "t${p}1-$$" up
	ip -n "$B" route add "10.80.$n.2/32" via "10.81.$n.1"
	# The data goes B -> A: shape B's side of each path.
	ip netns exec "$B" tc qdisc add dev "t${p}1-$$" root tbf rate "$RATE" burst 64kb \
		latency 50ms
done
# The kernel baseline server (listening on every address, so that a join to the
# announced one finds it) announces its path-b address.
ip -n "$A" mptcp endpoint add 10.81.2.1 dev "tb0-$$" signal

jget() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }
listening() { # netns port
	i=0
	while [ $i -lt 100 ]; do
		ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

: >"$TMP/bundled"
: >"$TMP/kernel"
r=1
while [ $r -le "$RUNS" ]; do
	ip netns exec "$A" timeout -k 5 120 "$PERF" server --tun mps0 --addr 10.80.1.2,10.80.2.2 \
		--port 5002 --once --mode sink >"$TMP/perf.json" 2>"$TMP/perf.err" &
	PID=$!
	sleep 0.5
	ip netns exec "$B" timeout -k 5 120 python3 "$PEER" send 10.80.1.2 5002 "$BYTES" \
		>"$TMP/peer.json"
	wait "$PID"
	PID=
	bg=$(jget goodput_bps <"$TMP/perf.json")
	echo "$bg" >>"$TMP/bundled"
	echo "mps_twopath: run $r bundled: $(awk -v b="$bg" 'BEGIN { printf "%.1f", b / 1e6 }') Mbit/s," \
		"subflows $(jget subflows <"$TMP/perf.json"), bytes per subflow" \
		"$(jget subflow_bytes <"$TMP/perf.json"), kernel extra subflows" \
		"$(jget extra_subflows_max <"$TMP/peer.json")"

	ip netns exec "$A" timeout -k 5 120 python3 "$PEER" recv 0.0.0.0 5005 >"$TMP/kpeer.json" &
	PID=$!
	listening "$A" 5005
	ip netns exec "$B" timeout -k 5 120 python3 "$PEER" send 10.81.1.1 5005 "$BYTES" \
		>"$TMP/peer.json"
	wait "$PID"
	PID=
	kg=$(jget goodput_bps <"$TMP/kpeer.json")
	echo "$kg" >>"$TMP/kernel"
	echo "mps_twopath: run $r kernel:  $(awk -v b="$kg" 'BEGIN { printf "%.1f", b / 1e6 }') Mbit/s," \
		"kernel extra subflows $(jget extra_subflows_max <"$TMP/peer.json")"
	r=$((r + 1))
done
mb=$(median <"$TMP/bundled")
mk=$(median <"$TMP/kernel")
awk -v b="$mb" -v k="$mk" -v rate="$RATE" 'BEGIN {
	printf "mps_twopath: median of runs: kernel -> bundled %.1f Mbit/s, kernel -> kernel %.1f Mbit/s, ratio %.2f (two paths of %s)\n",
		b / 1e6, k / 1e6, b / k, rate }'
