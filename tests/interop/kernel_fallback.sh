#!/bin/sh
# Interop, fallback to plain TCP: the bundled stack (mpsperf on a TUN device)
# and the Linux kernel's MPTCP in one private network namespace, with
#   iptables -t mangle ... -j TCPOPTSTRIP --strip-options 30
# on the TUN path in both directions, as a middlebox that removes MPTCP.
#  1. Kernel client -> bundled server: options stripped from the start.
#  2. Bundled client -> kernel server: options stripped from the start.
# Checks: both ends report the fallback (mpsperf JSON fallback true with its
# reason; the kernel refuses MPTCP_INFO and counts it in MPTcpExt), the data
# arrives intact (equal SHA-256), and tshark reads our pcap traces cleanly.
#  3. The SYN passes and the later segments of one side are stripped (the
#     third ACK, the first data), each side in turn.
#  4. Mid-connection: options stripped only after the first ~1 MB of the
#     connection (-m connbytes), with us sending. The same with the kernel
#     sending runs only with FJ_INTEROP_FALLBACK_MID=1: it stalls today (the
#     kernel never falls back, see below).
set -eu

BYTES=${FJ_INTEROP_FALLBACK_BYTES:-8388608}
PERF=build/mpsperf
PEER=tests/interop/kernel_peer.py
NAME=kernel_fallback

if [ "$(id -u)" != 0 ]; then
	echo "$NAME: SKIP (needs root for network namespaces)"
	exit 0
fi
[ -x "$PERF" ] || { echo "$NAME: $PERF missing; run make" >&2; exit 1; }
command -v iptables >/dev/null || { echo "$NAME: iptables missing (deploy/deps.sh)" >&2; exit 1; }

NS=fjmfb-$$
TMP=$(mktemp -d)
cleanup() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
. tests/interop/interop_lib.sh
fail=0

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev mps0 mode tun
ip -n "$NS" addr add 10.82.0.1/24 dev mps0
ip -n "$NS" link set mps0 up
ip netns exec "$NS" sysctl -q net.mptcp.enabled=1

# strip [connbytes-match...]: TCPOPTSTRIP of option kind 30 both ways on mps0.
strip() {
	ip netns exec "$NS" iptables -t mangle -F
	ip netns exec "$NS" iptables -t mangle -A PREROUTING -i mps0 -p tcp "$@" \
		-j TCPOPTSTRIP --strip-options 30
	ip netns exec "$NS" iptables -t mangle -A POSTROUTING -o mps0 -p tcp "$@" \
		-j TCPOPTSTRIP --strip-options 30
}

run_kernel_client() { # tag port
	counters_reset "$NS"
	ip netns exec "$NS" timeout -k 5 60 "$PERF" server --tun mps0 --addr 10.82.0.2 \
		--port "$2" --once --mode sink --pcap "$TMP/$1.pcap" >"$TMP/perf.json" \
		2>"$TMP/perf.err" &
	PID=$!
	sleep 0.5
	ip netns exec "$NS" timeout -k 5 60 python3 "$PEER" send 10.82.0.2 "$2" "$BYTES" \
		>"$TMP/peer.json" || { echo "$NAME: $1: kernel client failed" >&2; fail=1; }
	wait "$PID" || { echo "$NAME: $1: mpsperf server failed:" >&2; cat "$TMP/perf.err" >&2; fail=1; }
	PID=
	counters_read "$NS"
}

run_bundled_client() { # tag port [tolerant]: with tolerant, failures only set perf_rc/peer_rc
	counters_reset "$NS"
	ip netns exec "$NS" timeout -k 5 60 python3 "$PEER" recv 10.82.0.1 "$2" >"$TMP/peer.json" &
	PID=$!
	wait_listen "$NS" "$2"
	perf_rc=0
	ip netns exec "$NS" timeout -k 5 60 "$PERF" client --tun mps0 --addr 10.82.0.2 \
		--remote 10.82.0.1 --port "$2" --mode send --bytes "$BYTES" --pcap "$TMP/$1.pcap" \
		>"$TMP/perf.json" 2>"$TMP/perf.err" || perf_rc=$?
	peer_rc=0
	wait "$PID" || peer_rc=$?
	PID=
	counters_read "$NS"
	[ -n "${3:-}" ] && return 0
	[ "$perf_rc" = 0 ] ||
		{ echo "$NAME: $1: mpsperf client failed:" >&2; cat "$TMP/perf.err" >&2; fail=1; }
	[ "$peer_rc" = 0 ] || { echo "$NAME: $1: kernel server failed" >&2; fail=1; }
}

# verdict tag our-reason kernel-counters: our-reason is a regex that mpsperf's
# fallback_reason must match ("-": we saw plain TCP from the first SYN, so
# there was nothing to fall back from); kernel-counters is a regex of the
# MPTcpExt counters that must be non-zero ("-": the kernel saw plain TCP).
verdict() {
	check "$1: bytes" "$BYTES" "$(jget bytes <"$TMP/perf.json")"
	check "$1: sha256 equal" "$(jget sha256 <"$TMP/peer.json")" "$(jget sha256 <"$TMP/perf.json")"
	check "$1: no MPTCP at our end" false "$(jget mptcp <"$TMP/perf.json")"
	r=$(jget fallback_reason <"$TMP/perf.json")
	if [ "$2" = - ]; then
		check "$1: plain TCP from the start at our end, no fallback" "false none" \
			"$(jget fallback <"$TMP/perf.json") $r"
	else
		check "$1: mpsperf reports the fallback" true "$(jget fallback <"$TMP/perf.json")"
		check "$1: fallback reason '$r'" yes "$(echo "$r" | grep -Eq "$2" && echo yes)"
	fi
	check "$1: the kernel socket does not speak MPTCP (MPTCP_INFO refused)" false \
		"$(jget mptcp <"$TMP/peer.json")"
	c=$(counters_nonzero 'Fallback|MPCapable|DSS|InfiniteMap|MPFail|Reset|Rst')
	echo "$NAME: $1: kernel MPTcpExt counters: ${c:-none}; our data-level timeouts:" \
		"$(jget data_rto <"$TMP/perf.json")"
	if [ "$3" = - ]; then
		check "$1: the kernel saw no MP_CAPABLE SYN" 0 "$(counter MPTcpExtMPCapableSYNRX)"
	else
		check "$1: the kernel counted the fallback ($3)" yes \
			"$(echo "$c" | grep -Eq "$3" && echo yes)"
	fi
	trace_clean "$1" "$TMP/$1.pcap"
}

# 1. Stripped both ways from the SYN on. The kernel client's MP_CAPABLE SYN
# reaches us as plain TCP; it falls back on our SYN/ACK.
strip
run_kernel_client k2b-all 5101
verdict k2b-all - 'MPCapableFallbackSYNACK'
# 2. Stripped both ways, we connect: our SYN/ACK comes back without MP_CAPABLE.
run_bundled_client b2k-all 5102
verdict b2k-all 'syn/ack without mp_capable' -

# 3. The SYN passes, the kernel client's later segments are stripped: its
# third ACK reaches us without MP_CAPABLE, and its data without DSS.
ip netns exec "$NS" iptables -t mangle -F
ip netns exec "$NS" iptables -t mangle -A POSTROUTING -o mps0 -p tcp ! --syn \
	-j TCPOPTSTRIP --strip-options 30
run_kernel_client k2b-ack 5103
verdict k2b-ack 'third ack without mp_capable' 'Fallback'
# 4. Our SYN passes, our later segments are stripped: the kernel server falls
# back on our third ACK and sends without DSS.
ip netns exec "$NS" iptables -t mangle -F
ip netns exec "$NS" iptables -t mangle -A PREROUTING -i mps0 -p tcp ! --syn \
	-j TCPOPTSTRIP --strip-options 30
run_bundled_client b2k-ack 5104
verdict b2k-ack 'without dss|without mp_capable' 'MPCapableFallbackACK'

# 5. Options stripped both ways once the connection has carried ~1 MB.
strip -m connbytes --connbytes 1000000: --connbytes-dir both --connbytes-mode bytes
# We send: our data loses its DSS, the kernel falls back (DssFallback), and so
# do we once its segments come without DSS. That needs a subflow whose
# sequence numbers still run in step with the DSNs: if our data-level timer
# resent data before the options vanished (a reader stalled for over a second
# on a loaded machine), no stack may fall back (Linux neither), and the run must
# end in a reset at both ends instead (MP_TCPRST, the kernel's reader gets an
# error), never in wrong or missing data read as a clean end. Such a run proves
# nothing about the fallback itself: it is checked that way and made again,
# three times at most.
try=1
while :; do
	run_bundled_client mid-b2k $((5105 + try)) tolerant
	resent=$(jget data_rto <"$TMP/perf.json")
	[ "$resent" = 0 ] || [ -z "$resent" ] && break
	echo "$NAME: mid-b2k: data resent at the data level before the options vanished" \
		"(data_rto $resent): no fallback allowed; checking the reset, then again"
	check "mid-b2k: reset after a data-level resend" "false options_lost" \
		"$(jget fallback <"$TMP/perf.json") $(jget reset <"$TMP/perf.json")"
	check "mid-b2k: mpsperf exits non-zero on the reset" yes \
		"$([ "$perf_rc" != 0 ] && echo yes)"
	check "mid-b2k: the kernel's reader gets an error, not a clean end" yes \
		"$([ "$peer_rc" != 0 ] && jget error <"$TMP/peer.json" | grep -q . && echo yes)"
	try=$((try + 1))
	[ "$try" -le 3 ] || { check "mid-b2k: a run without a data-level resend in 3" yes no; break; }
done
[ "$perf_rc" = 0 ] ||
	{ echo "$NAME: mid-b2k: mpsperf client failed:" >&2; cat "$TMP/perf.err" >&2; fail=1; }
[ "$peer_rc" = 0 ] || { echo "$NAME: mid-b2k: kernel server failed" >&2; fail=1; }
verdict mid-b2k 'lost mid-connection|without dss' 'DssFallback'
# The kernel sends: we fall back when its data comes without DSS, but the
# kernel only ever sees our pure ACKs lose their DATA_ACK and never falls
# back, so its transfer stalls. Off until that is solved: FJ_INTEROP_FALLBACK_MID=1.
if [ "${FJ_INTEROP_FALLBACK_MID:-0}" = 1 ]; then
	run_kernel_client mid-k2b 5110
	verdict mid-k2b 'lost mid-connection|without dss' 'Fallback|Infinite'
else
	echo "$NAME: mid-connection with the kernel sending skipped (FJ_INTEROP_FALLBACK_MID=1 runs it)"
fi

[ "$fail" = 0 ] && echo "$NAME: all passed"
exit "$fail"
