#!/bin/sh
# The emulated links: RTT per link matches the configured delay, loss lies in
# the binomial 99% interval, iperf3 gets the configured rate, every source
# address leaves by its own ISP, and "set" takes effect within 100 ms.
. tests/testbed/lib.sh
tb_begin
out=$(mktemp)
tb up "$TOPO" >"$out" 2>&1 || { cat "$out"; exit 1; }

# RTT: the controller's link has no emulation, so RTT = 2 x one-way delay.
# Median of 30 pings within 1 ms + 5% of that.
for l in ta1:ta:clean:5 ta1:ta:strip:12 ta1:ta:synack:8 ta1:ta:natisp:3 ta1:ta:noadd:4 \
	ta1:ta:seqrw:6 tb1:tb:clean:2 tb2:tb:strip:20; do
	IFS=: read node site isp d <<-X
	$l
	X
	a=$(node_addr "$node" "$isp" 4)
	m=$(ip netns exec "fjtb-$site" ping -c 30 -i 0.01 -W 1 -I "$a" $CTL4 | median_rtt)
	check "RTT $site/$isp from $a: median $m ms, configured $((2 * d)) ms" \
		'awk -v m="$m" -v w=$((2 * d)) "BEGIN { exit !(m != \"none\" && (m - w < 1 + 0.05 * w) && (w - m < 1 + 0.05 * w)) }"'
done
a6=$(node_addr ta1 strip 6)
m=$(ip netns exec fjtb-ta ping -6 -c 30 -i 0.01 -W 1 -I "$a6" $CTL6 | median_rtt)
check "IPv6 RTT ta/strip: median $m ms, configured 24 ms" \
	'awk -v m="$m" "BEGIN { exit !(m != \"none\" && m > 22.8 && m < 25.2) }"'

# MTU: ta/natisp is configured with 1400 bytes.
a=$(node_addr ta1 natisp 4)
ip netns exec fjtb-ta ping -c 1 -W 1 -M do -s 1372 -I "$a" $CTL4 >/dev/null 2>&1
rc=$?
check "a 1400-byte packet passes ta/natisp (MTU 1400)" '[ $rc = 0 ]'
ip netns exec fjtb-ta ping -c 1 -W 1 -M do -s 1373 -I "$a" $CTL4 >/dev/null 2>&1
rc=$?
check "a 1401-byte packet does not fit ta/natisp" '[ $rc != 0 ]'

# Loss: 10% each way, so a ping round trip is lost with 1 - 0.9^2 = 19%.
# 600 pings: the binomial 99% interval is 114 +- 2.576 sd.
tb set ta/noadd loss=10% >/dev/null
a=$(node_addr ta1 noadd 4)
recv=$(ip netns exec fjtb-ta ping -q -c 600 -i 0.002 -W 1 -I "$a" $CTL4 |
	sed -n 's/.* \([0-9]*\) received.*/\1/p')
lost=$((600 - ${recv:-0}))
lim=$(awk 'BEGIN { n = 600; p = 0.19; m = n * p; s = sqrt(n * p * (1 - p));
	printf "%d %d", m - 2.576 * s - 0.5, m + 2.576 * s + 0.5 }')
check "loss ta/noadd: $lost of 600 round trips lost, 99% interval ${lim% *}..${lim#* }" \
	'[ "$lost" -ge "${lim% *}" ] && [ "$lost" -le "${lim#* }" ]'

# Gilbert-Elliott: p = 2%, r = 20%, all lost in the bad state. One way, the
# bad state holds 2 / 22 = 9.1% of the packets; a round trip is lost with
# 1 - (1 - 0.091)^2 = 17.4%. Losses come in bursts (mean 1 / r = 5 packets
# one way), which inflates the variance of the count by (1 + rho) / (1 - rho)
# with rho = 1 - p - r = 0.78, so the 99% bound is 2.576 sd of that. Bursts
# show as runs of missing sequence numbers far longer than the 1.2 expected
# of independent loss at the same rate.
tb set ta/noadd loss_model=gilbert-elliott ge_p=2% ge_r=20% >/dev/null
ip netns exec fjtb-ta ping -c 1000 -i 0.002 -W 1 -I "$a" $CTL4 2>/dev/null >"$out"
recv=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$out")
lost=$((1000 - ${recv:-0}))
lim=$(awk 'BEGIN { n = 1000; p = 1 - (1 - 2 / 22) ^ 2; m = n * p;
	s = sqrt(n * p * (1 - p) * 1.78 / 0.22);
	printf "%d %d", m - 2.576 * s, m + 2.576 * s + 1 }')
check "Gilbert-Elliott loss ta/noadd: $lost of 1000 lost, 99% bound ${lim% *}..${lim#* }" \
	'[ "$lost" -ge "${lim% *}" ] && [ "$lost" -le "${lim#* }" ]'
burst=$(sed -n 's/.*icmp_seq=\([0-9]*\) .*/\1/p' "$out" | awk -v n=1000 '
	{ got[$1] = 1 } END { run = 0; for (i = 1; i <= n; i++) {
		if (!got[i]) { run++; continue } if (run) { b++; t += run; run = 0 } }
		if (run) { b++; t += run } printf "%.2f", b ? t / b : 0 }')
check "Gilbert-Elliott losses come in bursts (mean run $burst pings, independent: 1.2)" \
	'awk -v m="$burst" "BEGIN { exit !(m >= 2.5) }"'
tb set ta/noadd loss=0 >/dev/null

# Throughput: iperf3 within 5% of the configured rate, each way. The rate
# counts IP packets (as the emulator does), so iperf3's goodput is scaled
# by packet / payload = 1500 / 1448 (IP + TCP headers with timestamps).
ip netns exec fjtb-ctl iperf3 -s -B $CTL4 -p 5201 >/dev/null 2>&1 &
BG_PIDS="$BG_PIDS $!"
sleep 0.3
for l in ta:ta1:clean:20: ta:ta1:clean:20:-R tb:tb1:clean:100: tb:tb2:strip:10:-R; do
	IFS=: read site node isp mbit dir <<-X
	$l
	X
	a=$(node_addr $node $isp 4)
	ip netns exec fjtb-$site iperf3 -c $CTL4 -B "$a" -p 5201 -t 4 -O 1 $dir -J >"$out" 2>/dev/null
	bps=$(sed -n '/"sum_received"/,/}/s/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' "$out" |
		head -n 1)
	rtx=$(sed -n '/"sum_sent"/,/}/s/.*"retransmits":[[:space:]]*\([0-9]*\).*/\1/p' "$out" | head -n 1)
	ipbps=$(awk -v b="${bps:-0}" 'BEGIN { printf "%.0f", b * 1500 / 1448 }')
	check "iperf3 $site/$isp ${dir:-up}: goodput ${bps:-none} bit/s, IP $ipbps bit/s (${rtx:-?} retransmits), configured $mbit Mbit/s" \
		'awk -v b="$ipbps" -v r=$mbit "BEGIN { exit !(b >= 0.95 * r * 1e6 && b <= 1.05 * r * 1e6) }"'
done

# Source-address routing: each address leaves by its own uplink.
for isp in clean strip synack natisp noadd seqrw; do
	a=$(node_addr ta1 $isp 4)
	before=""
	for i in clean strip synack natisp noadd seqrw; do
		before="$before $(ip netns exec fjtb-ta cat /sys/class/net/$i/statistics/tx_packets)"
	done
	ip netns exec fjtb-ta ping -c 20 -i 0.002 -W 1 -I "$a" $CTL4 >/dev/null
	n=0
	for i in clean strip synack natisp noadd seqrw; do
		n=$((n + 1))
		b=$(echo $before | cut -d' ' -f$n)
		d=$(($(ip netns exec fjtb-ta cat /sys/class/net/$i/statistics/tx_packets) - b))
		if [ $i = $isp ]; then
			check "ping from $a leaves by $isp ($d packets)" '[ $d -ge 20 ]'
		else
			check "ping from $a stays off $i ($d packets)" '[ $d -lt 5 ]'
		fi
	done
done

# set: down, then up with a new delay, each effective within 100 ms.
a=$(node_addr ta1 strip 4)
# The clock is read and "set" started by one process at a real-time
# priority, so that what is timed is the emulator's reaction and not how long
# a busy machine makes a shell wait before it runs the command.
timed_set() {
	chrt -f 20 sh -c 'date +%s.%N; exec "$@" >/dev/null' timed_set "$TB" --run-dir "$RUN" set "$@"
}
ip netns exec fjtb-ta ping -D -c 200 -i 0.01 -W 1 -I "$a" $CTL4 >"$out" 2>&1 &
pp=$!
i=0
while [ "$(grep -c 'time=' "$out")" -lt 30 ] && [ $i -lt 60 ]; do sleep 0.05; i=$((i + 1)); done
t_down=$(timed_set ta/strip down)
sleep 0.4
t_up=$(timed_set ta/strip up delay=30ms)
wait $pp
# Each reply: receive time and RTT; send time = receive - RTT.
sent=$(sed -n 's/^\[\([0-9.]*\)\].*time=\([0-9.]*\) ms.*/\1 \2/p' "$out" |
	awk '{ printf "%.4f %s\n", $1 - $2 / 1000, $2 }')
late=$(echo "$sent" | awk -v d="$t_down" -v u="$t_up" '$1 > d + 0.1 && $1 < u { n++ } END { print n + 0 }')
early=$(echo "$sent" | awk -v d="$t_down" '$1 < d { n++ } END { print n + 0 }')
check "set down: echoes flowed before it ($early)" '[ "$early" -ge 20 ]'
check "set down: no echo sent later than 100 ms after it" '[ "$late" = 0 ]'
# After "up": every echo sent later than 100 ms after the command must come
# back. A lost echo was sent after the last answered one before it, so it is
# counted when that one was already sent 100 ms after the command. (Judging
# by what was sent, not by the first answer, keeps a ping that the busy
# machine let sleep from failing the test.)
lost_after=$(sed -n 's/^\[\([0-9.]*\)\].*icmp_seq=\([0-9]*\) .*time=\([0-9.]*\) ms.*/\2 \1 \3/p' "$out" |
	awk -v u="$t_up" -v n=200 '{ s[$1] = $2 - $3 / 1000 } END {
		last = 0; bad = 0
		for (i = 1; i <= n; i++) { if (i in s) last = s[i]; else if (last >= u + 0.1) bad++ }
		print bad }')
after=$(echo "$sent" | awk -v u="$t_up" '$1 >= u + 0.1 { n++ } END { print n + 0 }')
check "set up: all $after echoes sent 100 ms after it came back ($lost_after lost)" \
	'[ "$lost_after" = 0 ] && [ "$after" -ge 10 ]'
newm=$(echo "$sent" | awk -v u="$t_up" '$1 > u + 0.1 { print "time=" $2 " ms" }' | median_rtt)
check "set delay=30ms: median RTT $newm ms after 100 ms, configured 60" \
	'awk -v m="$newm" "BEGIN { exit !(m != \"none\" && m > 56 && m < 64) }"'

rm -f "$out"
tb_end
