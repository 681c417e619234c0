#!/bin/sh
# Interop, two subflows: the bundled stack (mpsperf on a TUN device in
# namespace A) against the Linux kernel's MPTCP (namespace B), joined by two
# veth paths, a (10.81.1.0/24) and b (10.81.2.0/24). Our addresses 10.80.1.2
# and 10.80.2.2 are routed to the TUN device in A and reached from B over
# path a and path b respectively.
#  1. Kernel client -> bundled server: we announce 10.80.2.2 (ADD_ADDR), the
#     kernel joins to it over path b and sends over both subflows; we
#     reassemble.
#  2. Bundled client -> kernel server: the kernel announces 10.81.2.2, we
#     join to it and send over both subflows (mpsperf uses the default
#     scheduler, "lowrtt").
#  3. As 1 over IPv6 (fd80:1::2 and fd80:2::2, paths fd81:1::/64, fd81:2::/64).
# Checks: equal SHA-256, two subflows seen by the kernel (MPTCP_INFO) and by
# us (mpsperf "subflows"), the kernel's join counters, no fallback or DSS
# errors.
set -eu

BYTES=${FJ_INTEROP_JOIN_BYTES:-67108864}
PERF=build/mpsperf
PEER=tests/interop/kernel_peer.py

if [ "$(id -u)" != 0 ]; then
	echo "kernel_join: SKIP (needs root for network namespaces)"
	exit 0
fi
[ -x "$PERF" ] || { echo "kernel_join: $PERF missing; run make" >&2; exit 1; }

A=fjmja-$$
B=fjmjb-$$
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
ip -n "$A" -6 route add fd80:1::2/128 dev mps0
ip -n "$A" -6 route add fd80:2::2/128 dev mps0
ip netns exec "$A" sysctl -q net.ipv6.conf.all.forwarding=1
ip netns exec "$A" sysctl -q net.ipv4.ip_forward=1
ip netns exec "$A" sysctl -q net.ipv4.conf.all.rp_filter=0
ip netns exec "$A" sysctl -q net.ipv4.conf.default.rp_filter=0
ip netns exec "$A" sysctl -q net.ipv4.conf.mps0.rp_filter=0
for p in a b; do
	n=$([ $p = a ] && echo 1 || echo 2)
	ip link add "v${p}0-$$" netns "$A" type veth peer name "v${p}1-$$" netns "$B"
	ip -n "$A" addr add "10.81.$n.1/24" dev "v${p}0-$$"
	ip -n "$B" addr add "10.81.$n.2/24" dev "v${p}1-$$"
	ip -n "$A" link set "v${p}0-$$" up
	ip -n "$B" link set "v${p}1-$$" up
	ip -n "$B" route add "10.80.$n.2/32" via "10.81.$n.1"
	ip -n "$A" -6 addr add "fd81:$n::1/64" dev "v${p}0-$$" nodad
	ip -n "$B" -6 addr add "fd81:$n::2/64" dev "v${p}1-$$" nodad
	ip -n "$B" -6 route add "fd80:$n::2/128" via "fd81:$n::1"
done
ip netns exec "$B" sysctl -q net.mptcp.enabled=1
ip -n "$B" mptcp limits set subflows 2 add_addr_accepted 2

fail=0
check() { # name expected actual
	if [ "$2" = "$3" ]; then
		echo "kernel_join: ok: $1"
	else
		echo "kernel_join: FAIL: $1: expected '$2', got '$3'" >&2
		fail=1
	fi
}
jget() {
	python3 -c 'import json,sys
try:
    print(str(json.loads(sys.stdin.readline())[sys.argv[1]]).lower())
except (ValueError, KeyError):
    pass' "$1"
}
export NSTAT_HISTORY="$TMP/nstat.hist"
snapshot() { ip netns exec "$B" nstat -z >"$TMP/nstat" 2>/dev/null; }
counter() { awk -v n="$1" '$1 == n { print $2 }' "$TMP/nstat"; }
nonzero_bad() {
	awk '$1 ~ /^MPTcpExt/ && $1 ~ /Fallback|DSSNotMatching|DataCsumErr|InfiniteMapRx|MismatchPortAckRx|DSSCorruption|JoinSynAckHMacFailure|JoinAckHMacFailure/ && $2 != 0 { print $1 "=" $2 }' "$TMP/nstat" | tr '\n' ' '
}
wait_listen() { # namespace port
	i=0
	while [ $i -lt 100 ]; do
		ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q . && return 0
		sleep 0.05
		i=$((i + 1))
	done
	echo "kernel_join: nothing listens on port $2" >&2
	return 1
}

# 1. Kernel client -> bundled server announcing its second address.
ip netns exec "$B" nstat -n >/dev/null
ip netns exec "$A" timeout -k 5 60 "$PERF" server --tun mps0 --addr 10.80.1.2,10.80.2.2 \
	--port 5002 --once --mode sink >"$TMP/perf.json" 2>"$TMP/perf.err" &
PID=$!
sleep 0.5
ip netns exec "$B" timeout -k 5 60 python3 "$PEER" send 10.80.1.2 5002 "$BYTES" >"$TMP/peer.json" ||
	{ echo "kernel_join: kernel client failed" >&2; cat "$TMP/perf.err" >&2; fail=1; }
wait "$PID" || { echo "kernel_join: mpsperf server failed" >&2; cat "$TMP/perf.err" >&2; fail=1; }
PID=
snapshot
check "kernel->bundled bytes" "$BYTES" "$(jget bytes <"$TMP/perf.json")"
check "kernel->bundled sha256" "$(jget sha256 <"$TMP/peer.json")" "$(jget sha256 <"$TMP/perf.json")"
check "kernel->bundled kernel kept MPTCP" true "$(jget mptcp <"$TMP/peer.json")"
check "kernel->bundled kernel accepted our ADD_ADDR" 1 "$(counter MPTcpExtAddAddr)"
check "kernel->bundled kernel joined (SYN/ACK HMAC verified)" 1 "$(counter MPTcpExtMPJoinSynAckRx)"
check "kernel->bundled kernel saw a second subflow" 1 "$(jget extra_subflows_max <"$TMP/peer.json")"
check "kernel->bundled we saw two subflows" 2 "$(jget subflows <"$TMP/perf.json")"
check "kernel->bundled data came over both subflows" yes "$(python3 -c 'import json,sys
b = json.loads(sys.stdin.readline())["subflow_bytes"]
print("yes" if len(b) >= 2 and min(b[:2]) > 0 else "no %s" % b)' <"$TMP/perf.json")"
check "kernel->bundled no fallback, DSS or HMAC errors" "" "$(nonzero_bad)"

# 2. Bundled client -> kernel server announcing 10.81.2.2.
ip -n "$B" mptcp endpoint add 10.81.2.2 dev "vb1-$$" signal
ip netns exec "$B" nstat -n >/dev/null
ip netns exec "$B" timeout -k 5 60 python3 "$PEER" recv 0.0.0.0 5003 >"$TMP/peer.json" &
PID=$!
wait_listen "$B" 5003
ip netns exec "$A" timeout -k 5 60 "$PERF" client --tun mps0 --addr 10.80.1.2 --remote 10.81.1.2 \
	--port 5003 --mode send --bytes "$BYTES" >"$TMP/perf.json" 2>"$TMP/perf.err" ||
	{ echo "kernel_join: mpsperf client failed" >&2; cat "$TMP/perf.err" >&2; fail=1; }
wait "$PID" || { echo "kernel_join: kernel server failed" >&2; fail=1; }
PID=
snapshot
check "bundled->kernel bytes" "$BYTES" "$(jget bytes <"$TMP/peer.json")"
check "bundled->kernel sha256" "$(jget sha256 <"$TMP/perf.json")" "$(jget sha256 <"$TMP/peer.json")"
check "bundled->kernel kernel kept MPTCP" true "$(jget mptcp <"$TMP/peer.json")"
check "bundled->kernel we learnt the kernel's address" 1 "$(jget remote_addrs <"$TMP/perf.json")"
check "bundled->kernel kernel took our join (SYN, then ACK HMAC)" "1 1" \
	"$(counter MPTcpExtMPJoinSynRx) $(counter MPTcpExtMPJoinAckRx)"
check "bundled->kernel kernel saw a second subflow" 1 "$(jget extra_subflows_max <"$TMP/peer.json")"
check "bundled->kernel we saw two subflows" 2 "$(jget subflows <"$TMP/perf.json")"
check "bundled->kernel we sent over both subflows" yes "$(python3 -c 'import json,sys
b = json.loads(sys.stdin.readline())["subflow_bytes"]
print("yes" if len(b) >= 2 and min(b[:2]) > 0 else "no %s" % b)' <"$TMP/perf.json")"
check "bundled->kernel no fallback, DSS or HMAC errors" "" "$(nonzero_bad)"

# 3. IPv6, kernel client -> bundled server: a 16-byte ADD_ADDR, the join and data over both paths.
ip -n "$B" mptcp endpoint flush
ip netns exec "$B" nstat -n >/dev/null
ip netns exec "$A" timeout -k 5 60 "$PERF" server --tun mps0 --addr fd80:1::2,fd80:2::2 \
	--port 5004 --once --mode sink >"$TMP/perf.json" 2>"$TMP/perf.err" &
PID=$!
sleep 0.5
ip netns exec "$B" timeout -k 5 60 python3 "$PEER" send fd80:1::2 5004 "$BYTES" >"$TMP/peer.json" ||
	{ echo "kernel_join: kernel client failed (IPv6)" >&2; cat "$TMP/perf.err" >&2; fail=1; }
wait "$PID" || { echo "kernel_join: mpsperf server failed (IPv6)" >&2; cat "$TMP/perf.err" >&2; fail=1; }
PID=
snapshot
check "v6 kernel->bundled sha256" "$(jget sha256 <"$TMP/peer.json")" "$(jget sha256 <"$TMP/perf.json")"
check "v6 kernel->bundled kernel accepted our ADD_ADDR" 1 "$(counter MPTcpExtAddAddr)"
check "v6 kernel->bundled kernel saw a second subflow" 1 "$(jget extra_subflows_max <"$TMP/peer.json")"
check "v6 kernel->bundled we saw two subflows" 2 "$(jget subflows <"$TMP/perf.json")"
check "v6 kernel->bundled no fallback, DSS or HMAC errors" "" "$(nonzero_bad)"

[ "$fail" = 0 ] && echo "kernel_join: all passed"
exit "$fail"
