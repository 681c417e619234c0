#!/bin/sh
# Interop, one path cut mid-transfer: the bundled stack (mpsperf on a TUN
# device in namespace A) and the Linux kernel's MPTCP (namespace B), joined by
# two veth paths a (10.84.1.0/24) and b (10.84.2.0/24), each shaped by tbf to
# FJ_INTEROP_CUT_RATE (100 Mbit/s) both ways so that a transfer lasts long
# enough to be cut in the middle. Our addresses 10.85.1.2 and 10.85.2.2 are
# routed to the TUN device in A and reached from B over path a and path b.
# The cut: every packet A forwards to or from path b (or a) is dropped
# (iptables DROP in A's FORWARD chain) once the receiver has FJ_INTEROP_CUT_AT
# bytes; the path stays cut to the end.
#  1. Kernel client -> bundled server announcing 10.85.2.2: the kernel joins
#     over path b and sends over both subflows; path b is cut; the kernel
#     reinjects and finishes on path a.
#  2. Bundled client (scheduler FJ_INTEROP_CUT_SCHED, lowrtt) -> kernel server
#     announcing 10.84.2.2: we join over path b and send over both; path b
#     is cut; we reinject and finish on path a.
# Checks: equal SHA-256, the join carried data before the cut, the cut came
# before the end, tshark reads our traces cleanly.
#  3. The initial path a is cut instead, both directions: the connection
#     lives on over the join (FJ_INTEROP_CUT_INITIAL=0 skips this).
set -eu

BYTES=${FJ_INTEROP_CUT_BYTES:-33554432}
CUT_AT=${FJ_INTEROP_CUT_AT:-8388608}
RATE=${FJ_INTEROP_CUT_RATE:-100mbit}
SCHED=${FJ_INTEROP_CUT_SCHED:-lowrtt}
PERF=build/mpsperf
PEER=tests/interop/kernel_peer.py
NAME=kernel_pathcut

if [ "$(id -u)" != 0 ]; then
	echo "$NAME: SKIP (needs root for network namespaces)"
	exit 0
fi
[ -x "$PERF" ] || { echo "$NAME: $PERF missing; run make" >&2; exit 1; }

A=fjmpca-$$
B=fjmpcb-$$
TMP=$(mktemp -d)
cleanup() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
	[ -n "${PID2:-}" ] && kill "$PID2" 2>/dev/null || true
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	[ -n "${FJ_INTEROP_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
[ -z "${FJ_INTEROP_KEEP:-}" ] || echo "$NAME: keeping $TMP"
. tests/interop/interop_lib.sh
fail=0

ip netns add "$A"
ip netns add "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" tuntap add dev mps0 mode tun
ip -n "$A" link set mps0 up
ip -n "$A" route add 10.85.1.2/32 dev mps0
ip -n "$A" route add 10.85.2.2/32 dev mps0
ip netns exec "$A" sysctl -q net.ipv4.ip_forward=1
for ns in "$A" "$B"; do
	ip netns exec "$ns" sysctl -q net.ipv4.conf.all.rp_filter=0
	ip netns exec "$ns" sysctl -q net.ipv4.conf.default.rp_filter=0
done
ip netns exec "$A" sysctl -q net.ipv4.conf.mps0.rp_filter=0
for p in a b; do
	n=$([ $p = a ] && echo 1 || echo 2)
	ip link add "c${p}0-$$" netns "$A" type veth peer name "c${p}1-$$" netns "$B"
	ip -n "$A" addr add "10.84.$n.1/24" dev "c${p}0-$$"
	ip -n "$B" addr add "10.84.$n.2/24" dev "c${p}1-$$"
	ip -n "$A" link set "c${p}0-$$" up
	ip -n "$B" link set "c${p}1-$$" up
	ip -n "$B" route add "10.85.$n.2/32" via "10.84.$n.1"
	ip netns exec "$A" tc qdisc add dev "c${p}0-$$" root tbf rate "$RATE" burst 64kb latency 50ms
	ip netns exec "$B" tc qdisc add dev "c${p}1-$$" root tbf rate "$RATE" burst 64kb latency 50ms
done
# Source-address routing in B, as on NorNet: what leaves from B's path-b
# address goes back over path b, so a join we open from 10.85.1.2 to
# 10.84.2.2 does not depend on path a for its ACKs.
ip -n "$B" rule add from 10.84.2.2 lookup 102
ip -n "$B" route add 10.85.0.0/16 via 10.84.2.1 dev "cb1-$$" table 102
ip netns exec "$B" sysctl -q net.mptcp.enabled=1
ip -n "$B" mptcp limits set subflows 2 add_addr_accepted 2

uncut() { ip netns exec "$A" iptables -F FORWARD; }
cut() { # path a|b
	ip netns exec "$A" iptables -I FORWARD -i "c${1}0-$$" -j DROP
	ip netns exec "$A" iptables -I FORWARD -o "c${1}0-$$" -j DROP
}
# Wait until the receiver's progress lines (JSON, in file $1) show CUT_AT bytes,
# then cut path $2. Prints the receiver's total at the cut.
cut_when() { # progress-file path
	i=0
	while [ $i -lt 600 ]; do
		t=$(grep '^{' "$1" 2>/dev/null | tail -1 | jget total)
		if [ -n "$t" ] && [ "$t" -ge "$CUT_AT" ]; then
			cut "$2"
			echo "$t"
			return 0
		fi
		sleep 0.02
		i=$((i + 1))
	done
	echo "none"
}

# kernel -> bundled, cutting path $2.
kernel_sends() { # tag path
	uncut
	counters_reset "$B"
	ip netns exec "$A" timeout -k 5 60 "$PERF" server --tun mps0 --addr 10.85.1.2,10.85.2.2 \
		--port "$3" --once --mode sink --interval 10 --pcap "$TMP/$1.pcap" \
		>"$TMP/perf.json" 2>"$TMP/perf.err" &
	PID=$!
	sleep 0.5
	ip netns exec "$B" timeout -k 5 60 python3 "$PEER" send 10.85.1.2 "$3" "$BYTES" \
		>"$TMP/peer.json" &
	PID2=$!
	at=$(cut_when "$TMP/perf.err" "$2")
	wait "$PID2" || { echo "$NAME: $1: kernel client failed" >&2; fail=1; }
	PID2=
	wait "$PID" || { echo "$NAME: $1: mpsperf server failed:" >&2; grep -v '^{' "$TMP/perf.err" >&2; fail=1; }
	PID=
	counters_read "$B"
	verdict "$1" "$at" "$TMP/perf.json" "$TMP/peer.json"
}

# bundled -> kernel, cutting path $2.
bundled_sends() { # tag path port
	uncut
	counters_reset "$B"
	ip netns exec "$B" timeout -k 5 60 python3 "$PEER" recv 0.0.0.0 "$3" --interval 10 \
		>"$TMP/peer.json" 2>"$TMP/peer.err" &
	PID=$!
	wait_listen "$B" "$3"
	ip netns exec "$A" timeout -k 5 60 "$PERF" client --tun mps0 --addr 10.85.1.2 \
		--remote 10.84.1.2 --port "$3" --mode send --bytes "$BYTES" --scheduler "$SCHED" \
		--pcap "$TMP/$1.pcap" >"$TMP/perf.json" 2>"$TMP/perf.err" &
	PID2=$!
	at=$(cut_when "$TMP/peer.err" "$2")
	wait "$PID2" || { echo "$NAME: $1: mpsperf client failed:" >&2; cat "$TMP/perf.err" >&2; fail=1; }
	PID2=
	wait "$PID" || { echo "$NAME: $1: kernel server failed" >&2; fail=1; }
	PID=
	counters_read "$B"
	verdict "$1" "$at" "$TMP/peer.json" "$TMP/perf.json"
}

verdict() { # tag bytes-at-cut receiver-json sender-json
	echo "$NAME: $1: cut at $2 bytes received; ours: $(head -c 400 "$TMP/perf.json")"
	check "$1: the path was cut mid-transfer" yes \
		"$([ "$2" != none ] && [ "$2" -lt "$BYTES" ] && echo yes)"
	check "$1: bytes" "$BYTES" "$(jget bytes <"$3")"
	check "$1: sha256 equal" "$(jget sha256 <"$4")" "$(jget sha256 <"$3")"
	check "$1: two subflows at our end" 2 "$(jget subflows <"$TMP/perf.json")"
	check "$1: the join carried data" yes "$(python3 -c 'import json,sys
try:
    b = json.loads(sys.stdin.readline())["subflow_bytes"]
except (ValueError, KeyError):
    sys.exit(0)
print("yes" if len(b) >= 2 and b[1] > 0 else "no %s" % b)' <"$TMP/perf.json")"
	trace_clean "$1" "$TMP/$1.pcap"
}

kernel_sends k2b-cut-join b 5301
ip -n "$B" mptcp endpoint add 10.84.2.2 dev "cb1-$$" signal
bundled_sends b2k-cut-join b 5302

if [ "${FJ_INTEROP_CUT_INITIAL:-1}" = 1 ]; then
	ip -n "$B" mptcp endpoint flush
	kernel_sends k2b-cut-initial a 5303
	ip -n "$B" mptcp endpoint add 10.84.2.2 dev "cb1-$$" signal
	bundled_sends b2k-cut-initial a 5304
else
	echo "$NAME: cut of the initial path skipped (FJ_INTEROP_CUT_INITIAL=0)"
fi

[ "$fail" = 0 ] && echo "$NAME: all passed"
exit "$fail"
