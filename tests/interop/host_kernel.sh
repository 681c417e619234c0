#!/bin/sh
# Interop on the host's own addresses: the bundled stack with the host
# adapter (mpsperf --host, no TUN device) in namespace A against the Linux
# kernel's MPTCP in namespace B, over two veth paths: 10.83.1.0/24 and
# 10.83.2.0/24 (fd83:1::/64 and fd83:2::/64), A holding .1 / ::1 on each.
#  1. Kernel client -> bundled server on A's addresses; we announce the
#     second one, the kernel joins to it.
#  2. Bundled client -> kernel server; the kernel announces its second
#     address, we join to it (ports from 49152-65535, which A's
#     ip_local_port_range keeps clear).
#  3, 4. The same over IPv6.
#  5. SIGTERM and SIGKILL: the adapter's nftables table goes with SIGTERM;
#     one left by SIGKILL is removed by the next --host run.
#  6. Refusals: a client while the kernel's port range overlaps the stack's,
#     an address that is not A's, --tun with --host, a second client adapter
#     on an address while the first one sends.
# Checks: equal SHA-256, two subflows on both sides (the kernel's
# MPTCP_INFO), data over both, no RST sent by the kernel in A, whose TCP
# never saw the stack's segments, and none reaching B but the stack's own
# (nftables counters), the BPF filter letting nothing else through, no
# fjmps_ table left in A after each run, and no namespace left after the
# script.
set -eu

NAME=host_kernel
BYTES=${FJ_HOST_KERNEL_BYTES:-33554432}
PERF=${FJ_HOST_KERNEL_MPSPERF:-build/mpsperf} # e.g. build/asan/mpsperf
PEER=tests/interop/kernel_peer.py
MARK=0x4d505300

if [ "$(id -u)" != 0 ]; then
	echo "$NAME: SKIP (needs root for network namespaces)"
	exit 0
fi
[ -x "$PERF" ] || { echo "$NAME: $PERF missing; run make" >&2; exit 1; }
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] ||
	{ echo "$NAME: nft missing; run deploy/deps.sh" >&2; exit 1; }
PATH=$PATH:/usr/sbin

A=fjhosta-$$
B=fjhostb-$$
TMP=$(mktemp -d)
PID=
PID2=
cleanup() {
	trap '' INT TERM # a second signal must not cut the cleanup short
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	[ -n "$PID2" ] && kill "$PID2" 2>/dev/null || true
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
. tests/interop/interop_lib.sh

ip netns add "$A"
ip netns add "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
for n in 1 2; do
	ip link add "fjh${n}a-$$" netns "$A" type veth peer name "fjh${n}b-$$" netns "$B"
	ip -n "$A" addr add "10.83.$n.1/24" dev "fjh${n}a-$$"
	ip -n "$B" addr add "10.83.$n.2/24" dev "fjh${n}b-$$"
	ip -n "$A" -6 addr add "fd83:$n::1/64" dev "fjh${n}a-$$" nodad
	ip -n "$B" -6 addr add "fd83:$n::2/64" dev "fjh${n}b-$$" nodad
	ip -n "$A" link set "fjh${n}a-$$" up
	ip -n "$B" link set "fjh${n}b-$$" up
done
ip netns exec "$A" sysctl -q net.ipv4.ip_local_port_range="32768 49151"
ip netns exec "$B" sysctl -q net.mptcp.enabled=1
ip -n "$B" mptcp limits set subflows 2 add_addr_accepted 2

# Counters: RSTs that B receives; in A, RSTs the kernel sends (without our
# mark, counted before our table's drop) and RSTs the stack sends (with it: a
# userspace stack answers late segments of a connection it has freed, as TCP
# does), and TCP arriving before and after
# our table's prerouting chain (priority -300), which drops the stack's
# segments once the packet sockets have them, so the kernel never sees them.
ip netns exec "$B" nft -f - <<EOF
table inet fjhostcnt {
	chain in {
		type filter hook input priority -300; policy accept;
		tcp flags & rst == rst counter
	}
}
EOF
ip netns exec "$A" nft -f - <<EOF
table inet fjhostcnt {
	chain out {
		type filter hook output priority -300; policy accept;
		meta mark != $MARK tcp flags & rst == rst counter
	}
	chain out_ours {
		type filter hook output priority -300; policy accept;
		meta mark == $MARK tcp flags & rst == rst counter
	}
	chain pre_before {
		type filter hook prerouting priority -350; policy accept;
		meta l4proto tcp counter
	}
	chain pre_after {
		type filter hook prerouting priority -250; policy accept;
		meta l4proto tcp counter
	}
}
EOF
count() { # netns chain: packets its counter saw
	ip netns exec "$1" nft list chain inet fjhostcnt "$2" |
		awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'
}
# No RST of A's kernel at all (they would be dropped while the adapter is
# open, but not after), and every RST that B received was the stack's own.
rst_checks() { # label
	check "$1: the kernel in A sent no RST" 0 "$(count "$A" out)"
	check "$1: every RST the kernel peer got was the stack's own" "$(count "$A" out_ours)" \
		"$(count "$B" in)"
}
tables_left() { ip netns exec "$A" nft list tables | grep -c 'fjmps_' || true; }
wait_table() { # [pattern]: up to 5 s for an adapter's table in A (matching the pattern)
	i=0
	while [ $i -lt 100 ]; do
		ip netns exec "$A" nft list tables | grep -q "${1:-fjmps_}" && return 0
		sleep 0.05
		i=$((i + 1))
	done
	echo "$NAME: the host adapter installed no table" >&2
	return 1
}
host_stat() { # key: from the host adapter's line on stderr
	python3 -c 'import json,sys
for l in sys.stdin:
    if l.startswith("{\"host\""):
        print(json.loads(l)["host"][sys.argv[1]])' "$1" <"$TMP/perf.err"
}
both_subflows() {
	python3 -c 'import json,sys
b = json.loads(sys.stdin.readline())["subflow_bytes"]
print("yes" if len(b) >= 2 and min(b[:2]) > 0 else "no %s" % b)' <"$TMP/perf.json"
}
common_checks() { # label
	check "$1: sha256" "$(jget sha256 <"$TMP/peer.json")" "$(jget sha256 <"$TMP/perf.json")"
	check "$1: kernel kept MPTCP" true "$(jget mptcp <"$TMP/peer.json")"
	check "$1: kernel saw a second subflow" 1 "$(jget extra_subflows_max <"$TMP/peer.json")"
	check "$1: we saw two subflows" 2 "$(jget subflows <"$TMP/perf.json")"
	check "$1: data over both subflows" yes "$(both_subflows)"
	check "$1: no fallback" false "$(jget fallback <"$TMP/perf.json")"
	check "$1: the BPF filter let in only ours" 0 "$(host_stat rx_other)"
	check "$1: no packet refused by the kernel" 0 "$(host_stat tx_err)"
	rst_checks "$1"
	check "$1: no adapter table left" 0 "$(tables_left)"
}

server_case() { # label addrs connect-to port
	ip netns exec "$A" timeout -k 5 30 "$PERF" server --host --addr "$2" --port "$4" --once \
		--mode sink >"$TMP/perf.json" 2>"$TMP/perf.err" &
	PID=$!
	wait_table
	ip netns exec "$B" timeout -k 5 30 python3 "$PEER" send "$3" "$4" "$BYTES" \
		>"$TMP/peer.json" || { echo "$NAME: $1: kernel client failed" >&2; fail=1; }
	wait "$PID" || { echo "$NAME: $1: mpsperf server failed" >&2; cat "$TMP/perf.err" >&2; fail=1; }
	PID=
	check "$1: bytes" "$BYTES" "$(jget bytes <"$TMP/perf.json")"
	common_checks "$1"
}

client_case() { # label local remote port announce
	ip -n "$B" mptcp endpoint flush
	ip -n "$B" mptcp endpoint add "$5" dev "fjh2b-$$" signal
	ip netns exec "$B" timeout -k 5 30 python3 "$PEER" recv "$([ "${3#*:}" != "$3" ] &&
		echo :: || echo 0.0.0.0)" "$4" >"$TMP/peer.json" &
	PID=$!
	wait_listen "$B" "$4"
	ip netns exec "$A" timeout -k 5 30 "$PERF" client --host --addr "$2" --remote "$3" \
		--port "$4" --mode send --bytes "$BYTES" >"$TMP/perf.json" 2>"$TMP/perf.err" ||
		{ echo "$NAME: $1: mpsperf client failed" >&2; cat "$TMP/perf.err" >&2; fail=1; }
	wait "$PID" || { echo "$NAME: $1: kernel server failed" >&2; fail=1; }
	PID=
	check "$1: bytes" "$BYTES" "$(jget bytes <"$TMP/peer.json")"
	check "$1: we learnt the kernel's address" 1 "$(jget remote_addrs <"$TMP/perf.json")"
	common_checks "$1"
}

fail=0
server_case "kernel->bundled" 10.83.1.1,10.83.2.1 10.83.1.1 5102
client_case "bundled->kernel" 10.83.1.1 10.83.1.2 5103 10.83.2.2
server_case "v6 kernel->bundled" fd83:1::1,fd83:2::1 fd83:1::1 5104
client_case "v6 bundled->kernel" fd83:1::1 fd83:1::2 5105 fd83:2::2
seen=$(count "$A" pre_before)
check "TCP arrived in A" yes "$([ "${seen:-0}" -gt 10000 ] && echo yes || echo "no: ${seen:-none}")"
check "none of it reached the kernel's TCP" 0 "$(count "$A" pre_after)"

# 5. Signals: SIGTERM removes the table; SIGKILL leaves it to the next run.
ip netns exec "$A" "$PERF" server --host --addr 10.83.1.1 --port 5106 >"$TMP/perf.json" \
	2>"$TMP/perf.err" &
PID=$!
wait_table
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
check "SIGTERM: mpsperf exits cleanly" 0 "$rc"
check "SIGTERM: no adapter table left" 0 "$(tables_left)"
ip netns exec "$A" "$PERF" server --host --addr 10.83.1.1 --port 5107 >"$TMP/perf.json" \
	2>"$TMP/perf.err" &
PID=$!
wait_table
kill -KILL "$PID"
wait "$PID" 2>/dev/null || true
PID=
check "SIGKILL: the table stays behind" 1 "$(tables_left)"
ip netns exec "$A" "$PERF" server --host --addr 10.83.1.1 --port 5108 >"$TMP/perf.json" \
	2>"$TMP/perf.err" &
PID=$!
wait_table "fjmps_${PID}_"
check "SIGKILL: the next run removed the stale table" "fjmps_${PID}_0" \
	"$(ip netns exec "$A" nft list tables | awk '$3 ~ /^fjmps_/ { print $3 }' | tr '\n' ' ' |
		sed 's/ $//')"
kill -TERM "$PID"
wait "$PID" || true
PID=
check "SIGKILL: none left after that" 0 "$(tables_left)"
rst_checks "after the signals"

# 6. The kernel's default range overlaps the stack's ephemeral ports: refused, named.
ip netns exec "$A" sysctl -q net.ipv4.ip_local_port_range="32768 60999"
rc=0
ip netns exec "$A" "$PERF" client --host --addr 10.83.1.1 --remote 10.83.1.2 --port 5109 \
	--mode send >"$TMP/perf.json" 2>"$TMP/perf.err" || rc=$?
check "overlapping port range: refused" 1 "$rc"
check "overlapping port range: the message names it" 1 \
	"$(grep -c 'ip_local_port_range 32768-60999 overlaps' "$TMP/perf.err" || true)"
check "overlapping port range: no table" 0 "$(tables_left)"
ip netns exec "$A" sysctl -q net.ipv4.ip_local_port_range="32768 49151"
# Other refusals: an address that is not A's, --tun with --host.
rc=0
ip netns exec "$A" "$PERF" server --host --addr 10.83.9.1 --port 5110 >"$TMP/perf.json" \
	2>"$TMP/perf.err" || rc=$?
check "foreign address: refused" 1 "$rc"
check "foreign address: the message names it" 1 \
	"$(grep -c '10.83.9.1 is not an address of this host' "$TMP/perf.err" || true)"
check "foreign address: no table" 0 "$(tables_left)"
rc=0
"$PERF" server --host --tun x --addr 10.83.1.1 --port 5110 >"$TMP/perf.json" 2>"$TMP/perf.err" ||
	rc=$?
check "--tun with --host: usage" "2 1" "$rc $(grep -c 'exclude each other' "$TMP/perf.err" || true)"
# One client-role adapter per address: a second one while the first sends is refused.
ip -n "$B" mptcp endpoint flush
ip netns exec "$B" timeout -k 5 30 python3 "$PEER" recv 0.0.0.0 5111 >"$TMP/peer.json" &
PID=$!
wait_listen "$B" 5111
ip netns exec "$A" timeout -k 5 30 "$PERF" client --host --addr 10.83.1.1 --remote 10.83.1.2 \
	--port 5111 --mode send --time 3 >"$TMP/perf1.json" 2>"$TMP/perf1.err" &
PID2=$!
wait_table
rc=0
ip netns exec "$A" "$PERF" client --host --addr 10.83.1.1 --remote 10.83.1.2 --port 5111 \
	--mode send >"$TMP/perf.json" 2>"$TMP/perf.err" || rc=$?
check "second client adapter on one address: refused" 1 "$rc"
check "second client adapter on one address: the message says why" 1 \
	"$(grep -c 'another host adapter opens connections from this address' "$TMP/perf.err" || true)"
rc=0
wait "$PID2" || rc=$?
PID2=
wait "$PID" || true
PID=
check "the first client went on undisturbed" "0 $(jget sha256 <"$TMP/peer.json")" \
	"$rc $(jget sha256 <"$TMP/perf1.json")"
check "and left no table" 0 "$(tables_left)"
rst_checks "the whole run"

ip netns del "$A"
ip netns del "$B"
check "no namespace left" "" "$(ip netns list | grep -E "^fjhost[ab]-$$( |\$)" || true)"
[ "$fail" = 0 ] && echo "$NAME: all passed"
exit "$fail"
