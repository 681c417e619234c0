#!/bin/sh
# The shipped topologies come up, every uplink of every node carries pings to
# the controller with the median RTT of its configured delay (both ways),
# and they go down without a trace.
. tests/testbed/lib.sh
tb_begin
out=$(mktemp)
for topo in deploy/testbed/nornet-mini.cfg deploy/testbed/nornet-large.cfg; do
	tb up "$topo" >"$out" 2>&1
	rc=$?
	check "$topo comes up ($(tail -n 1 "$out"))" '[ $rc = 0 ]'
	[ $rc = 0 ] || continue
	tb status >"$out"
	# "node N on ISP (...): kernel A4 A6 ..." and "SITE/ISP up queue=Q configured: ... delay=Dms"
	awk '$1 == "site" { site = $2; sub(/:$/, "", site) }
	     $1 == "node" { for (k = 1; k <= NF; k++) if ($k == "kernel") print site, $4, $(k + 1) }' \
		"$out" | sort -u -k1,2 >"$out.nodes"
	while read -r site isp addr; do
		up=$(sed -n "s|^$site/$isp up queue=[0-9]* configured: .* delay=\([0-9]*\)ms .*|\1|p" "$out")
		down=$(sed -n "s|^$site/$isp down queue=[0-9]* configured: .* delay=\([0-9]*\)ms .*|\1|p" "$out")
		want=$((up + down))
		m=$(ip netns exec "fjtb-$site" ping -c 20 -i 0.01 -W 2 -I "$addr" $CTL4 | median_rtt)
		check "$site/$isp from $addr: median RTT $m ms, configured $want ms" \
			'awk -v m="$m" -v w="$want" "BEGIN { exit !(m != \"none\" && (m - w < 1 + 0.05 * w) && (w - m < 1 + 0.05 * w)) }"'
	done <"$out.nodes"
	tb down >"$out" 2>&1
	rc=$?
	check "$topo goes down" '[ $rc = 0 ] && ! ls /run/netns 2>/dev/null | grep -q "^fjtb-"'
done
rm -f "$out" "$out.nodes"
tb_end
