#!/bin/sh
# Goodput of the bundled stack against the Linux kernel's MPTCP on one
# unshaped path, beside the kernel talking to itself on the same kind of path.
#   bundled: kernel client -> mpsperf server (and mpsperf client -> kernel
#            server) through a TUN device in a private network namespace;
#   baseline: kernel client -> kernel server through a veth pair between two
#            private namespaces (MTU 1500 both).
# FJ_BENCH_MPSPERF names the mpsperf to run (build/mpsperf; a copy keeps one
# build through the runs while the tree is rebuilt).
# Prints one line per run and the medians; figures go to docs/benchmarks.md,
# section "Bundled stack". Root only (namespaces); removes what it creates.
set -eu

BYTES=${FJ_BENCH_BYTES:-67108864}
RUNS=${FJ_BENCH_RUNS:-3}
PERF=${FJ_BENCH_MPSPERF:-build/mpsperf}
PEER=tests/interop/kernel_peer.py

[ "$(id -u)" = 0 ] || { echo "mps_goodput: SKIP (needs root)"; exit 0; }
[ -x "$PERF" ] || { echo "mps_goodput: $PERF missing; run make" >&2; exit 1; }

A=fjmpsb-a-$$
B=fjmpsb-b-$$
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
ip -n "$A" addr add 10.78.0.1/24 dev mps0
ip -n "$A" link set mps0 up
ip link add fjb0-$$ netns "$A" type veth peer name fjb1-$$ netns "$B"
ip -n "$A" addr add 10.79.0.1/24 dev fjb0-$$
ip -n "$B" addr add 10.79.0.2/24 dev fjb1-$$
ip -n "$A" link set fjb0-$$ up
ip -n "$B" link set fjb1-$$ up

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

# Warm-up: the first transfer over a fresh veth is several times slower (neighbour
# discovery, first route lookups); it is not measured.
ip netns exec "$B" python3 "$PEER" recv 10.79.0.2 5004 >/dev/null &
PID=$!
listening "$B" 5004
ip netns exec "$A" python3 "$PEER" send 10.79.0.2 5004 4194304 >/dev/null
wait "$PID"
PID=

: >"$TMP/k2b"
: >"$TMP/b2k"
: >"$TMP/k2k"
: >"$TMP/cpu_k2b"
: >"$TMP/cpu_b2k"
r=1
while [ $r -le "$RUNS" ]; do
	# Kernel client -> bundled server.
	ip netns exec "$A" sh -c "cd '$PWD' && exec python3 -c 'import resource,subprocess,sys
rc = subprocess.run(sys.argv[2:]).returncode
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], \"w\").write(\"%.3f\\n\" % (u.ru_utime + u.ru_stime))
sys.exit(rc)' '$TMP/cpu' $PERF server --tun mps0 --addr 10.78.0.2 --port 5002 --once --mode sink" \
		>"$TMP/perf.json" &
	PID=$!
	sleep 0.5
	ip netns exec "$A" python3 "$PEER" send 10.78.0.2 5002 "$BYTES" >"$TMP/peer.json"
	wait "$PID"
	PID=
	g=$(jget goodput_bps <"$TMP/perf.json")
	echo "$g" >>"$TMP/k2b"
	cat "$TMP/cpu" >>"$TMP/cpu_k2b"
	echo "run $r: kernel->bundled $(jget seconds <"$TMP/perf.json") s, goodput $g bit/s, mpsperf cpu $(cat "$TMP/cpu") s"

	# Bundled client -> kernel server.
	ip netns exec "$A" python3 "$PEER" recv 10.78.0.1 5003 >"$TMP/peer.json" &
	PID=$!
	listening "$A" 5003
	ip netns exec "$A" sh -c "cd '$PWD' && exec python3 -c 'import resource,subprocess,sys
rc = subprocess.run(sys.argv[2:]).returncode
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], \"w\").write(\"%.3f\\n\" % (u.ru_utime + u.ru_stime))
sys.exit(rc)' '$TMP/cpu' $PERF client --tun mps0 --addr 10.78.0.2 --remote 10.78.0.1 --port 5003 --mode send --bytes $BYTES" >"$TMP/perf.json"
	wait "$PID"
	PID=
	g=$(jget goodput_bps <"$TMP/peer.json")
	echo "$g" >>"$TMP/b2k"
	cat "$TMP/cpu" >>"$TMP/cpu_b2k"
	echo "run $r: bundled->kernel $(jget seconds <"$TMP/peer.json") s, goodput $g bit/s, mpsperf cpu $(cat "$TMP/cpu") s"

	# Baseline: kernel -> kernel over veth.
	ip netns exec "$B" python3 "$PEER" recv 10.79.0.2 5004 >"$TMP/peer.json" &
	PID=$!
	listening "$B" 5004
	ip netns exec "$A" python3 "$PEER" send 10.79.0.2 5004 "$BYTES" >/dev/null
	wait "$PID"
	PID=
	g=$(jget goodput_bps <"$TMP/peer.json")
	echo "$g" >>"$TMP/k2k"
	echo "run $r: kernel->kernel (veth) $(jget seconds <"$TMP/peer.json") s, goodput $g bit/s"
	r=$((r + 1))
done

k2b=$(median <"$TMP/k2b")
b2k=$(median <"$TMP/b2k")
k2k=$(median <"$TMP/k2k")
awk -v a="$k2b" -v b="$b2k" -v k="$k2k" -v n="$BYTES" -v runs="$RUNS" \
	-v ca="$(median <"$TMP/cpu_k2b")" -v cb="$(median <"$TMP/cpu_b2k")" 'BEGIN {
	printf "median of %d runs, %d bytes each:\n", runs, n
	printf "  kernel->bundled %.1f Mbit/s (%.2f of kernel->kernel), mpsperf %.2f CPU s/GB\n", a / 1e6, a / k, ca / (n / 1e9)
	printf "  bundled->kernel %.1f Mbit/s (%.2f of kernel->kernel), mpsperf %.2f CPU s/GB\n", b / 1e6, b / k, cb / (n / 1e9)
	printf "  baseline kernel->kernel (veth) %.1f Mbit/s\n", k / 1e6
}'
