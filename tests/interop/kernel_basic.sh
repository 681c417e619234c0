#!/bin/sh
# Interop: the bundled stack (mpsperf on a TUN device) against the Linux
# kernel's MPTCP in a private network namespace, in both roles, IPv4 and
# IPv6, and with the kernel asking for DSS checksums. Checks equal SHA-256
# at both ends, MPTCP kept to the end on the kernel side (MPTCP_INFO), and
# the kernel's MPTcpExt counters: MP_CAPABLE seen, no fallback, no DSS or
# checksum errors.
set -eu

# 256 MiB on the plain IPv4 runs (the issue's figure), 16 MiB on the others.
BIG=${FJ_INTEROP_BYTES:-268435456}
SMALL=${FJ_INTEROP_SMALL_BYTES:-16777216}
BYTES=$BIG
PERF=build/mpsperf
PEER=tests/interop/kernel_peer.py

if [ "$(id -u)" != 0 ]; then
	echo "kernel_basic: SKIP (needs root for network namespaces)"
	exit 0
fi
[ -x "$PERF" ] || { echo "kernel_basic: $PERF missing; run make" >&2; exit 1; }

NS=fjmps-$$
TMP=$(mktemp -d)
cleanup() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev mps0 mode tun
ip -n "$NS" addr add 10.77.0.1/24 dev mps0
ip -n "$NS" -6 addr add fd77::1/64 dev mps0 nodad
ip -n "$NS" link set mps0 up
ip netns exec "$NS" sysctl -q net.mptcp.enabled=1

fail=0
check() { # name expected actual
	if [ "$2" = "$3" ]; then
		echo "kernel_basic: ok: $1"
	else
		echo "kernel_basic: FAIL: $1: expected '$2', got '$3'" >&2
		fail=1
	fi
}
jget() { # key; prints nothing for a missing or empty JSON line, so check() reports it
	python3 -c 'import json,sys
try:
    print(str(json.loads(sys.stdin.readline())[sys.argv[1]]).lower())
except (ValueError, KeyError):
    pass' "$1"
}
# Counter deltas of one run: nstat -n before it, snapshot() after it; the
# history file is private to this test so other users of nstat do not interfere.
export NSTAT_HISTORY="$TMP/nstat.hist"
snapshot() { ip netns exec "$NS" nstat -z >"$TMP/nstat" 2>/dev/null; }
counter() { awk -v n="$1" '$1 == n { print $2 }' "$TMP/nstat"; }
nonzero_bad() {
	awk '$1 ~ /^MPTcpExt/ && $1 ~ /Fallback|DSSNotMatching|DataCsumErr|InfiniteMapRx|MismatchPortAckRx|DSSCorruption/ && $2 != 0 { print $1 "=" $2 }' "$TMP/nstat" | tr '\n' ' '
}

# The kernel's listener must be up before our SYN, or the answer is an RST.
wait_listen() {
	i=0
	while [ $i -lt 100 ]; do
		ip netns exec "$NS" ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.05
		i=$((i + 1))
	done
	echo "kernel_basic: nothing listens on port $1" >&2
	return 1
}

# Kernel client -> bundled server (sink).
run_kernel_client() { # family-tag our-addr kernel-dest
	ip netns exec "$NS" nstat -n >/dev/null
	ip netns exec "$NS" timeout -k 5 60 "$PERF" server --tun mps0 --addr "$2" --port 5002 --once \
		--mode sink >"$TMP/perf.json" 2>"$TMP/perf.err" &
	PID=$!
	sleep 0.5
	ip netns exec "$NS" timeout -k 5 60 python3 "$PEER" send "$3" 5002 "$BYTES" >"$TMP/peer.json" ||
		{ echo "kernel_basic: kernel client failed" >&2; cat "$TMP/perf.err" >&2; fail=1; }
	wait "$PID" || { echo "kernel_basic: mpsperf server failed" >&2; cat "$TMP/perf.err" >&2; fail=1; }
	PID=
	snapshot
	check "$1 kernel->bundled bytes" "$BYTES" "$(jget bytes <"$TMP/perf.json")"
	check "$1 kernel->bundled sha256" "$(jget sha256 <"$TMP/peer.json")" "$(jget sha256 <"$TMP/perf.json")"
	check "$1 kernel->bundled kernel kept MPTCP" true "$(jget mptcp <"$TMP/peer.json")"
	check "$1 kernel->bundled bundled kept MPTCP" true "$(jget mptcp <"$TMP/perf.json")"
	check "$1 kernel->bundled MP_CAPABLE SYN/ACK at kernel" 1 "$(counter MPTcpExtMPCapableSYNACKRX)"
	check "$1 kernel->bundled no fallback or DSS errors" "" "$(nonzero_bad)"
}

# Bundled client (send) -> kernel server.
run_bundled_client() { # family-tag our-addr kernel-addr
	# Our own pcap trace on the smaller runs only: tshark is slow on 256 MiB of headers.
	TRACE=
	[ "$BYTES" = "$SMALL" ] && TRACE="--pcap $TMP/trace.pcap"
	ip netns exec "$NS" nstat -n >/dev/null
	ip netns exec "$NS" timeout -k 5 60 python3 "$PEER" recv "$3" 5003 >"$TMP/peer.json" &
	PID=$!
	wait_listen 5003
	ip netns exec "$NS" timeout -k 5 60 "$PERF" client --tun mps0 --addr "$2" --remote "$3" \
		--port 5003 --mode send --bytes "$BYTES" $TRACE >"$TMP/perf.json" 2>"$TMP/perf.err" ||
		{ echo "kernel_basic: mpsperf client failed" >&2; cat "$TMP/perf.err" >&2; fail=1; }
	wait "$PID" || { echo "kernel_basic: kernel server failed" >&2; fail=1; }
	PID=
	snapshot
	check "$1 bundled->kernel bytes" "$BYTES" "$(jget bytes <"$TMP/peer.json")"
	check "$1 bundled->kernel sha256" "$(jget sha256 <"$TMP/perf.json")" "$(jget sha256 <"$TMP/peer.json")"
	check "$1 bundled->kernel kernel kept MPTCP" true "$(jget mptcp <"$TMP/peer.json")"
	check "$1 bundled->kernel MP_CAPABLE SYN at kernel" 1 "$(counter MPTcpExtMPCapableSYNRX)"
	check "$1 bundled->kernel MP_CAPABLE ACK at kernel" 1 "$(counter MPTcpExtMPCapableACKRX)"
	check "$1 bundled->kernel no fallback or DSS errors" "" "$(nonzero_bad)"
	[ -n "$TRACE" ] || return 0
	# tshark dissects our trace: MPTCP in it, nothing malformed, no key or algorithm complaint.
	check "$1 bundled->kernel trace has MPTCP" yes \
		"$(tshark -r "$TMP/trace.pcap" -Y mptcp -c 1 2>/dev/null | grep -q . && echo yes)"
	check "$1 bundled->kernel trace clean for tshark" 0 "$(tshark -r "$TMP/trace.pcap" \
		-Y '_ws.malformed || mptcp.connection.echoed_key_mismatch || mptcp.connection.missing_algorithm || mptcp.connection.unsupported_algorithm' \
		2>/dev/null | wc -l)"
}

run_kernel_client v4 10.77.0.2 10.77.0.2
# The kernel server announces a second address: we must verify its HMAC and echo it.
ip -n "$NS" addr add 10.77.0.3/32 dev mps0
ip -n "$NS" mptcp endpoint add 10.77.0.3 dev mps0 signal
run_bundled_client v4 10.77.0.2 10.77.0.1
check "v4 bundled->kernel ADD_ADDR sent by kernel" 1 "$(counter MPTcpExtAddAddrTx)"
check "v4 bundled->kernel our echo received by kernel" 1 "$(counter MPTcpExtEchoAdd)"
check "v4 bundled->kernel address learnt" 1 "$(jget remote_addrs <"$TMP/perf.json")"
ip -n "$NS" mptcp endpoint flush
BYTES=$SMALL
run_kernel_client v6 fd77::2 fd77::2
run_bundled_client v6 fd77::2 fd77::1

# The kernel asks for DSS checksums (flag A): both directions must use and verify them.
ip netns exec "$NS" sysctl -q net.mptcp.checksum_enabled=1
run_kernel_client v4-csum 10.77.0.2 10.77.0.2
check "v4-csum kernel->bundled checksums in use" true "$(jget checksum <"$TMP/perf.json")"
run_bundled_client v4-csum 10.77.0.2 10.77.0.1
check "v4-csum bundled->kernel checksums in use" true "$(jget checksum <"$TMP/perf.json")"

[ "$fail" = 0 ] && echo "kernel_basic: all passed"
exit "$fail"
