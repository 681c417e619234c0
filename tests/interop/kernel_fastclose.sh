#!/bin/sh
# Interop, MP_FASTCLOSE both ways: the bundled stack (mpsperf on a TUN device)
# and the Linux kernel's MPTCP in one private network namespace.
#  1. We abort as a sending client (mpsperf --abort-after, mps_abort()): the
#     kernel server counts MPTcpExtMPFastcloseRx and its read sees a reset.
#  2. We abort as a receiving server: the same, the kernel client's send sees
#     the reset.
#  3. The kernel client fast-closes (close() with SO_LINGER {1, 0}, for which
#     Linux sends MP_FASTCLOSE; it does the same for a close() with unread
#     data): mpsperf reports the reset with reason "fastclose" and exits
#     non-zero, the kernel counts MPTcpExtMPFastcloseTx.
#  4. The kernel server fast-closes while we send: the same at our client.
#  5. The kernel server stops reading and closes with data unread, no
#     SO_LINGER: Linux fast-closes there too, and we report it the same way.
#  6. A receiver's time limit (mpsperf server --time 1) while the kernel
#     client still sends: mpsperf stops after about a second and aborts, so
#     the kernel sees the reset at once instead of waiting on a FIN.
# tshark finds MP_FASTCLOSE (subtype 7) in our traces and nothing malformed.
set -eu

BYTES=${FJ_INTEROP_FASTCLOSE_BYTES:-16777216}
AT=2097152 # bytes after which one side aborts
PERF=build/mpsperf
PEER=tests/interop/kernel_peer.py
NAME=kernel_fastclose

if [ "$(id -u)" != 0 ]; then
	echo "$NAME: SKIP (needs root for network namespaces)"
	exit 0
fi
[ -x "$PERF" ] || { echo "$NAME: $PERF missing; run make" >&2; exit 1; }

NS=fjmfc-$$
TMP=$(mktemp -d)
cleanup() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	[ -n "${FJ_INTEROP_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
. tests/interop/interop_lib.sh
fail=0

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev mps0 mode tun
ip -n "$NS" addr add 10.83.0.1/24 dev mps0
ip -n "$NS" link set mps0 up
ip netns exec "$NS" sysctl -q net.mptcp.enabled=1

# kernel_server tag port mpsperf-args... ; kernel-recv options in KOPTS
kernel_server() {
	tag=$1
	port=$2
	shift 2
	counters_reset "$NS"
	ip netns exec "$NS" timeout -k 5 30 python3 "$PEER" recv 10.83.0.1 "$port" $KOPTS \
		>"$TMP/peer.json" 2>"$TMP/peer.err" &
	PID=$!
	wait_listen "$NS" "$port"
	set +e
	ip netns exec "$NS" timeout -k 5 30 "$PERF" client --tun mps0 --addr 10.83.0.2 \
		--remote 10.83.0.1 --port "$port" --mode send --bytes "$BYTES" \
		--pcap "$TMP/$tag.pcap" "$@" >"$TMP/perf.json" 2>"$TMP/perf.err"
	prc=$?
	wait "$PID"
	krc=$?
	set -e
	PID=
	counters_read "$NS"
}

# kernel_client tag port mpsperf-args... ; kernel-send options in KOPTS
kernel_client() {
	tag=$1
	port=$2
	shift 2
	counters_reset "$NS"
	ip netns exec "$NS" timeout -k 5 30 "$PERF" server --tun mps0 --addr 10.83.0.2 \
		--port "$port" --once --mode sink --pcap "$TMP/$tag.pcap" "$@" >"$TMP/perf.json" \
		2>"$TMP/perf.err" &
	PID=$!
	sleep 0.5
	set +e
	ip netns exec "$NS" timeout -k 5 30 python3 "$PEER" send 10.83.0.2 "$port" "$BYTES" $KOPTS \
		>"$TMP/peer.json" 2>"$TMP/peer.err"
	krc=$?
	wait "$PID"
	prc=$?
	set -e
	PID=
	counters_read "$NS"
}

has_fastclose() { # pcap
	tshark -r "$1" -Y 'tcp.options.mptcp.subtype == 7' 2>/dev/null | grep -q . && echo yes || echo no
}

we_abort() { # tag
	check "$1: mpsperf aborted and exited 0" "true 0" "$(jget aborted <"$TMP/perf.json") $prc"
	check "$1: the kernel counted MPTcpExtMPFastcloseRx" 1 "$(counter MPTcpExtMPFastcloseRx)"
	check "$1: the kernel socket saw a reset (exit 3, ECONNRESET or EPIPE)" "3 yes" \
		"$krc $(jget error <"$TMP/peer.json" | grep -Eq 'econnreset|epipe' && echo yes)"
	# What was delivered before the abort: a prefix of the sender's stream.
	check "$1: the receiver got less than the $BYTES bytes" yes "$(python3 -c 'import json,sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
print("yes" if min(a["bytes"], b["bytes"]) < int(sys.argv[3]) else "no %s" % a["bytes"])' \
		"$TMP/peer.json" "$TMP/perf.json" "$BYTES" 2>&1)"
	check "$1: our trace holds the MP_FASTCLOSE" yes "$(has_fastclose "$TMP/$1.pcap")"
	trace_clean "$1" "$TMP/$1.pcap"
}

kernel_aborts() { # tag
	check "$1: the kernel closed early" true "$(jget fastclosed <"$TMP/peer.json")"
	check "$1: the kernel counted MPTcpExtMPFastcloseTx" yes \
		"$([ "$(counter MPTcpExtMPFastcloseTx)" -ge 1 ] && echo yes)"
	check "$1: mpsperf reports the fast close" fastclose "$(jget reset <"$TMP/perf.json")"
	check "$1: mpsperf exits non-zero" yes "$([ "$prc" != 0 ] && echo yes)"
	check "$1: mpsperf said so on stderr" yes \
		"$(grep -q 'reset: fastclose' "$TMP/perf.err" && echo yes)"
	check "$1: our trace holds the peer's MP_FASTCLOSE" yes "$(has_fastclose "$TMP/$1.pcap")"
	trace_clean "$1" "$TMP/$1.pcap"
}

KOPTS=
kernel_server we-abort-sending 5201 --abort-after "$AT"
we_abort we-abort-sending
kernel_client we-abort-receiving 5202 --abort-after "$AT"
we_abort we-abort-receiving

KOPTS="--fastclose-after $AT"
kernel_client kernel-aborts-sending 5203
kernel_aborts kernel-aborts-sending
kernel_server kernel-aborts-receiving 5204
kernel_aborts kernel-aborts-receiving
KOPTS="--close-unread-after $AT"
kernel_server kernel-closes-unread 5205
kernel_aborts kernel-closes-unread

KOPTS=
BYTES=1073741824
kernel_client timed-receiver 5206 --time 1
we_abort timed-receiver
check "timed-receiver: mpsperf stopped after its second" yes "$(python3 -c 'import json,sys
s = json.loads(sys.stdin.readline())["seconds"]
print("yes" if 1 <= s < 1.5 else "no: %s s" % s)' <"$TMP/perf.json" 2>&1)"

[ "$fail" = 0 ] && echo "$NAME: all passed"
exit "$fail"
