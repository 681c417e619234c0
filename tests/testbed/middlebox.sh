#!/bin/sh
# Middleboxes, seen by the kernel's MPTCP: through the stripping ISPs a
# connection falls back to TCP, through the others it does not; NAT hides the
# site's inside address; drop-add-addr keeps ADD_ADDR from the client;
# rewrite-seq shifts sequence numbers consistently, and MPTCP survives it.
. tests/testbed/lib.sh
tb_begin
out=$(mktemp)
srv=$(mktemp)
tb up "$TOPO" >"$out" 2>&1 || { cat "$out"; exit 1; }
PROBE=build/fjtb-mptcp-probe

# The controller announces a second address, so ADD_ADDR has something to say.
ip -n fjtb-ctl addr add 198.18.0.11/24 dev eth0
ip -n fjtb-ctl mptcp endpoint add 198.18.0.11 dev eth0 signal
ip -n fjtb-ctl mptcp limits set add_addr_accepted 2 subflows 2
ip -n fjtb-ta mptcp limits set add_addr_accepted 2 subflows 2

port=6000
# One connection from ta1's address on ISP $1 (family $2); sets cli and srvout.
probe() {
	port=$((port + 1))
	dst=$CTL4
	[ "$2" = 6 ] && dst=$CTL6
	ip netns exec fjtb-ctl timeout 10 $PROBE server $dst $port >"$srv" 2>&1 &
	sp=$!
	i=0
	while ! grep -q listening "$srv" && [ $i -lt 50 ]; do sleep 0.02; i=$((i + 1)); done
	cli=$(ip netns exec fjtb-ta timeout 10 $PROBE client $dst $port "$(node_addr ta1 "$1" "$2")" 2>&1)
	wait $sp
	srvout=$(tail -n 1 "$srv")
	echo "  $1 v$2: client: $cli; server: $srvout"
}

for fam in 4 6; do
	probe clean $fam
	check "v$fam: MPTCP through clean stays MPTCP (client)" 'echo "$cli" | grep -q "fallback=0"'
	check "v$fam: MPTCP through clean stays MPTCP (server)" 'echo "$srvout" | grep -q "fallback=0"'
	probe strip $fam
	check "v$fam: MPTCP through strip falls back (client)" 'echo "$cli" | grep -q "fallback=1"'
	check "v$fam: MPTCP through strip falls back (server)" 'echo "$srvout" | grep -q "fallback=1"'
	probe synack $fam
	check "v$fam: MPTCP through synack (SYN/ACK stripped) falls back (client)" \
		'echo "$cli" | grep -q "fallback=1"'
	check "v$fam: MPTCP through synack falls back (server)" 'echo "$srvout" | grep -q "fallback=1"'
done

for fam in 4 6; do
	probe seqrw $fam
	check "v$fam: MPTCP through seqrw (sequence numbers shifted) stays MPTCP" \
		'echo "$cli" | grep -q "fallback=0" && echo "$srvout" | grep -q "bytes=65536 fallback=0"'
done
tb status >"$out"
check "the emulator shifted sequence numbers both ways" \
	'grep -q "^ta/seqrw up .*rewrite-seq: .*rewritten=[1-9]" "$out" &&
	 grep -q "^ta/seqrw down .*rewrite-seq: .*rewritten=[1-9]" "$out" && ! grep -q "errors=[1-9]" "$out"'
a=$(node_addr ta1 seqrw 4)
bps=$(ip netns exec fjtb-ctl timeout 8 iperf3 -s -1 -B $CTL4 -p 5401 >/dev/null 2>&1 &
	sleep 0.3; ip netns exec fjtb-ta iperf3 -c $CTL4 -B "$a" -p 5401 -t 2 -J 2>/dev/null |
	sed -n '/"sum_received"/,/}/s/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | head -n 1)
check "TCP bulk through seqrw gets most of the 50 Mbit/s (${bps:-none} bit/s)" \
	'awk -v b="${bps:-0}" "BEGIN { exit !(b >= 40e6) }"'

probe natisp 4
check "NAT: MPTCP passes and stays MPTCP" 'echo "$cli" | grep -q "fallback=0"'
check "NAT: the controller sees the public address, not 100.64.1.2" \
	'echo "$srvout" | grep -q "peer=10.44.1.2 "'

probe clean 4
check "ADD_ADDR arrives through clean" 'echo "$cli" | grep -q "add_addr_accepted=[1-9]"'
probe noadd 4
check "ADD_ADDR is dropped through noadd" 'echo "$cli" | grep -q "fallback=0 add_addr_accepted=0"'
check "the emulator counted the dropped ADD_ADDR" \
	'tb status | grep "^ta/noadd down measured" | grep -qv "middlebox=0)"'

rm -f "$out" "$srv"
tb_end
