#!/bin/sh
# Interop, DSS checksum failure -> MP_FAIL -> infinite mapping -> TCP
# (RFC 8684 §3.7): the bundled stack (mpsperf on a TUN device) and the Linux
# kernel's MPTCP, checksums on (net.mptcp.checksum_enabled=1 in the private
# namespace, so the kernel asks for them in its SYN or SYN/ACK), with the
# testbed's rewrite-payload middlebox on the TUN path: fjord-linkemu
# --payload-queue takes every TCP segment through NFQUEUE, adds 1 to the
# byte at stream offset OFFSET of each direction, and fixes the TCP
# checksum, as an ALG would. Only the DSS checksum can notice.
#  1. Bundled client sends to the kernel: the kernel's checksum check fails
#     (DataCsumErr), it sends MP_FAIL (MPFailTx), we answer with the
#     infinite mapping (the kernel counts InfiniteMapRx) and both go on as TCP.
#  2. Kernel client sends to us: our check fails, we send MP_FAIL, the
#     kernel counts MPFailRx and answers with the infinite mapping
#     (InfiniteMapTx).
# What is asserted about the data: the transfer completes with every byte,
# and the receiver holds exactly what was sent except the rewritten byte.
# That is the RFC's outcome as Linux implements it: the mapping that failed
# is delivered as it came (the infinite mapping covers it retroactively from
# the DSN in MP_FAIL), since with one subflow there is no other copy to take.
# So the receiver's SHA-256 equals the SHA-256 of the sent stream with that
# one byte plus 1, and differs from the sent stream's.
set -eu

BYTES=${FJ_INTEROP_MPFAIL_BYTES:-4194304}
OFFSET=300000 # past the first mappings: Linux has seen good checksums by then
QUEUE=7
PERF=build/mpsperf
EMU=${FJ_LINKEMU:-build/fjord-linkemu} # FJ_LINKEMU: another build, e.g. with sanitizers
NAME=kernel_mpfail

if [ "$(id -u)" != 0 ]; then
	echo "$NAME: SKIP (needs root for network namespaces)"
	exit 0
fi
for b in "$PERF" "$EMU"; do
	[ -x "$b" ] || { echo "$NAME: $b missing; run make" >&2; exit 1; }
done
command -v iptables >/dev/null || { echo "$NAME: iptables missing (deploy/deps.sh)" >&2; exit 1; }

NS=fjmpf-$$
TMP=$(mktemp -d)

cleanup() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
	[ -n "${EMU_PID:-}" ] && kill "$EMU_PID" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
. tests/interop/interop_lib.sh
fail=0

# Its command line: every bad value refused with status 2 and the reason.
bad_args() { # expected-message args...
	_want=$1
	shift
	_rc=0
	_msg=$("$EMU" "$@" 2>&1 >/dev/null) || _rc=$?
	check "fjord-linkemu $* refused" "2 yes" \
		"$_rc $(printf '%s' "$_msg" | grep -qF -e "$_want" && echo yes)"
}
bad_args '--payload-queue "abc" is not a queue number 0..65535' --payload-queue abc
bad_args '--payload-queue "70000" is not a queue number' --payload-queue 70000
bad_args '--rewrite-offset "-1" is not a byte offset 0..1073741824' --payload-queue 5 \
	--rewrite-offset -1
bad_args '--rewrite-offset "1073741825" is not a byte offset' --payload-queue 5 \
	--rewrite-offset 1073741825
bad_args 'usage: fjord-linkemu' --payload-queue 5 --topology x

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev mps0 mode tun
ip -n "$NS" addr add 10.83.0.1/24 dev mps0
ip -n "$NS" link set mps0 up
ip netns exec "$NS" sysctl -q net.mptcp.enabled=1 net.mptcp.checksum_enabled=1

# The kernel's side: a deterministic stream, and its SHA-256 as sent and
# with 1 added to the byte at OFFSET (what the receiver should hold); as
# receiver, the SHA-256 of what arrived and of it with that change undone
# (what the sender sent).
cat >"$TMP/peer.py" <<'EOF'
import hashlib, json, random, socket, sys
IPPROTO_MPTCP, SOL_MPTCP, MPTCP_INFO = 262, 284, 1
mode, host, port, offset = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def mptcp_alive(s):
    try:
        s.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
        return True
    except OSError:
        return False

# The stream with the middlebox's change made (delta 1) or undone (delta -1).
def flipped(data, delta):
    b = bytearray(data)
    if offset < len(b):
        b[offset] = (b[offset] + delta) & 0xff
    return hashlib.sha256(b).hexdigest()

out = {}
if mode == "send":
    data = random.Random(8684).randbytes(int(sys.argv[5]))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.settimeout(30)
    s.connect((host, port))
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    out = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
           "sha256_flipped": flipped(data, 1)}
else:
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    ls.settimeout(30)
    s, _ = ls.accept()
    s.settimeout(30)
    chunks = []
    while True:
        c = s.recv(1 << 20)
        if not c:
            break
        chunks.append(c)
    data = b"".join(chunks)
    out = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
           "sha256_flipped": flipped(data, -1)}
out["mptcp"] = mptcp_alive(s)
s.close()
print(json.dumps(out))
EOF

# The middlebox on the TUN path, both ways, through one queue.
ip netns exec "$NS" "$EMU" --payload-queue $QUEUE --rewrite-offset $OFFSET \
	>"$TMP/emu.out" 2>"$TMP/emu.err" &
EMU_PID=$!
i=0
while ! grep -q '^ready' "$TMP/emu.out" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
grep -q '^ready' "$TMP/emu.out" || { echo "$NAME: fjord-linkemu did not start:" >&2; cat "$TMP/emu.err" >&2; exit 1; }
ip netns exec "$NS" iptables -t mangle -A PREROUTING -i mps0 -p tcp -j NFQUEUE --queue-num $QUEUE
ip netns exec "$NS" iptables -t mangle -A POSTROUTING -o mps0 -p tcp -j NFQUEUE --queue-num $QUEUE

kernel_counters() { # tag
	c=$(counters_nonzero 'Csum|MPFail|InfiniteMap|Fallback|Rst|Reset')
	echo "$NAME: $1: kernel MPTcpExt counters: ${c:-none}"
}
at_least_one() { # what counter
	v=$(counter "$2")
	check "$1 ($2=$v)" yes "$([ "$v" -ge 1 ] && echo yes)"
}

# 1. Bundled client -> kernel server.
counters_reset "$NS"
ip netns exec "$NS" timeout -k 5 30 python3 "$TMP/peer.py" recv 10.83.0.1 5201 $OFFSET \
	>"$TMP/peer.json" &
PID=$!
wait_listen "$NS" 5201
ip netns exec "$NS" timeout -k 5 30 "$PERF" client --tun mps0 --addr 10.83.0.2 \
	--remote 10.83.0.1 --port 5201 --mode send --bytes "$BYTES" >"$TMP/perf.json" \
	2>"$TMP/perf.err" || { echo "$NAME: b2k: mpsperf client failed:" >&2; cat "$TMP/perf.err" >&2; fail=1; }
wait "$PID" || { echo "$NAME: b2k: kernel server failed" >&2; fail=1; }
PID=
counters_read "$NS"
kernel_counters b2k
# (mpsperf's "checksum" is the state at the end: false once fallen back. That
# checksums were in use shows in the kernel's DataCsumErr and MP_FAIL.)
check "b2k: the kernel received every byte" "$BYTES" "$(jget bytes <"$TMP/peer.json")"
check "b2k: received = sent with 1 added to byte $OFFSET" "$(jget sha256 <"$TMP/perf.json")" \
	"$(jget sha256_flipped <"$TMP/peer.json")"
check "b2k: received differs from sent" yes \
	"$([ "$(jget sha256 <"$TMP/perf.json")" != "$(jget sha256 <"$TMP/peer.json")" ] && echo yes)"
at_least_one "b2k: the kernel's DSS checksum check failed" MPTcpExtDataCsumErr
at_least_one "b2k: the kernel sent MP_FAIL" MPTcpExtMPFailTx
at_least_one "b2k: the kernel received our infinite mapping" MPTcpExtInfiniteMapRx
check "b2k: mpsperf fell back to TCP" true "$(jget fallback <"$TMP/perf.json")"
r=$(jget fallback_reason <"$TMP/perf.json")
check "b2k: fallback reason '$r' names MP_FAIL" yes "$(echo "$r" | grep -qi 'mp_fail' && echo yes)"
check "b2k: the kernel socket fell back (MPTCP_INFO refused)" false "$(jget mptcp <"$TMP/peer.json")"

# 2. Kernel client -> bundled server.
counters_reset "$NS"
ip netns exec "$NS" timeout -k 5 30 "$PERF" server --tun mps0 --addr 10.83.0.2 --port 5202 \
	--once --mode sink >"$TMP/perf.json" 2>"$TMP/perf.err" &
PID=$!
sleep 0.5
ip netns exec "$NS" timeout -k 5 30 python3 "$TMP/peer.py" send 10.83.0.2 5202 $OFFSET \
	"$BYTES" >"$TMP/peer.json" || { echo "$NAME: k2b: kernel client failed" >&2; fail=1; }
wait "$PID" || { echo "$NAME: k2b: mpsperf server failed:" >&2; cat "$TMP/perf.err" >&2; fail=1; }
PID=
counters_read "$NS"
kernel_counters k2b
check "k2b: mpsperf received every byte" "$BYTES" "$(jget bytes <"$TMP/perf.json")"
check "k2b: received = sent with 1 added to byte $OFFSET" "$(jget sha256_flipped <"$TMP/peer.json")" \
	"$(jget sha256 <"$TMP/perf.json")"
check "k2b: received differs from sent" yes \
	"$([ "$(jget sha256 <"$TMP/perf.json")" != "$(jget sha256 <"$TMP/peer.json")" ] && echo yes)"
at_least_one "k2b: the kernel received our MP_FAIL" MPTcpExtMPFailRx
at_least_one "k2b: the kernel sent the infinite mapping" MPTcpExtInfiniteMapTx
check "k2b: mpsperf fell back to TCP" true "$(jget fallback <"$TMP/perf.json")"
r=$(jget fallback_reason <"$TMP/perf.json")
check "k2b: fallback reason '$r' names the checksum" yes \
	"$(echo "$r" | grep -Eqi 'checksum|mp_fail' && echo yes)"
check "k2b: the kernel socket fell back (MPTCP_INFO refused)" false "$(jget mptcp <"$TMP/peer.json")"

kill "$EMU_PID"
wait "$EMU_PID" 2>/dev/null || true
EMU_PID=
cat "$TMP/emu.err"
n=$(sed -n 's/.*rewrite-payload: .* rewritten=\([0-9]*\) .*/\1/p' "$TMP/emu.err")
check "the middlebox changed one byte each run (rewritten=${n:-none}; retransmissions count again)" \
	yes "$([ "${n:-0}" -ge 2 ] && echo yes)"
check "the middlebox saw nothing malformed" "" "$(grep -o 'errors=[1-9][0-9]*' "$TMP/emu.err" || true)"

[ "$fail" = 0 ] && echo "$NAME: all passed"
exit "$fail"
