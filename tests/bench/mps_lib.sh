# Shared by the two-path benchmarks of the bundled stack (mps_twopath.sh,
# mps_pathcut.sh); sourced, not run. The caller sets NAME, A and B (namespace
# names of its own), TMP and RATE ("none" for unshaped paths).
#
# Topology: namespace A holds mpsperf's TUN device mps0, with our addresses
# 10.80.1.2 and 10.80.2.2 routed to it, and forwards; namespace B holds the
# kernel peer. Two veth paths join them: a (10.81.1.1 in A, 10.81.1.2 in B)
# and b (10.81.2.1 / 10.81.2.2). B reaches 10.80.n.2 over path n. A kernel
# in A uses the same veths for the kernel-to-kernel baseline. With RATE set,
# each path is shaped by tbf on both ends (rate RATE, burst 64kb, latency
# 50ms). MTU (1500 if unset) is set on both ends of both veths and on mps0
# (jumbo frames: 9000).

twopath_up() {
	ip netns add "$A"
	ip netns add "$B"
	ip -n "$A" link set lo up
	ip -n "$B" link set lo up
	ip -n "$A" tuntap add dev mps0 mode tun
	ip -n "$A" link set mps0 mtu "${MTU:-1500}" up
	ip -n "$A" route add 10.80.1.2/32 dev mps0
	ip -n "$A" route add 10.80.2.2/32 dev mps0
	ip netns exec "$A" sysctl -q net.ipv4.ip_forward=1
	for ns in "$A" "$B"; do
		ip netns exec "$ns" sysctl -q net.ipv4.conf.all.rp_filter=0
		ip netns exec "$ns" sysctl -q net.ipv4.conf.default.rp_filter=0
		ip netns exec "$ns" sysctl -q net.mptcp.enabled=1
		ip -n "$ns" mptcp limits set subflows 2 add_addr_accepted 2
	done
	ip netns exec "$A" sysctl -q net.ipv4.conf.mps0.rp_filter=0
	# Source-address routing in B: what leaves from its path-b address goes
	# back over path b, so our join from 10.80.1.2 to 10.81.2.2 keeps to path b.
	ip -n "$B" rule add from 10.81.2.2 lookup 102
	for p in a b; do
		n=$([ $p = a ] && echo 1 || echo 2)
		ip link add "t${p}0-$$" netns "$A" type veth peer name "t${p}1-$$" netns "$B"
		ip -n "$A" addr add "10.81.$n.1/24" dev "t${p}0-$$"
		ip -n "$B" addr add "10.81.$n.2/24" dev "t${p}1-$$"
		ip -n "$A" link set "t${p}0-$$" mtu "${MTU:-1500}" up
		ip -n "$B" link set "t${p}1-$$" mtu "${MTU:-1500}" up
		ip -n "$B" route add "10.80.$n.2/32" via "10.81.$n.1"
		[ $p = b ] && ip -n "$B" route add 10.80.0.0/16 via 10.81.2.1 dev "tb1-$$" table 102
		if [ "$RATE" != none ]; then
			ip netns exec "$A" tc qdisc add dev "t${p}0-$$" root tbf rate "$RATE" \
				burst 64kb latency 50ms
			ip netns exec "$B" tc qdisc add dev "t${p}1-$$" root tbf rate "$RATE" \
				burst 64kb latency 50ms
		fi
	done
}

# Only the kernel in namespace $1 (A, B or none) announces its path-b address.
announce_b() { # netns|none
	ip -n "$A" mptcp endpoint flush
	ip -n "$B" mptcp endpoint flush
	if [ "$1" = "$A" ]; then
		ip -n "$A" mptcp endpoint add 10.81.2.1 dev "tb0-$$" signal
	elif [ "$1" = "$B" ]; then
		ip -n "$B" mptcp endpoint add 10.81.2.2 dev "tb1-$$" signal
	fi
}

jget() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }
listening() { # netns port
	i=0
	while [ $i -lt 100 ]; do
		ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
		sleep 0.05
		i=$((i + 1))
	done
	echo "$NAME: nothing listens on port $2" >&2
	return 1
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }
# Busy CPU time of the whole machine so far, in clock ticks (every field of the
# cpu line of /proc/stat but idle and iowait): the kernel's softirq work for
# both peers counts, and so does anything else running.
cpu_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# The machine is shared, so the whole-machine figure also counts other users'
# work. Beside it: "attributed" CPU, the user and system time of the two end
# processes (cpu_wrap) plus the machine's irq and softirq time, where the
# kernel does most of its network work for both peers.
cpu_begin() {
	cb_all=$(cpu_ticks)
	cb_soft=$(awk '$1 == "cpu" { print $7 + $8 }' /proc/stat)
	: >"$TMP/endpoints.cpu"
}
# cpu_wrap CMD...: run CMD, add its (and its descendants') CPU seconds to
# $TMP/endpoints.cpu, keep its exit status.
cpu_wrap() {
	python3 -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "a").write("%.3f\n" % (u.ru_utime + u.ru_stime))
sys.exit(rc)' "$TMP/endpoints.cpu" "$@"
}
# Prints "whole-machine attributed" CPU seconds since cpu_begin.
cpu_end() {
	awk -v a0="$cb_all" -v s0="$cb_soft" -v a1="$(cpu_ticks)" \
		-v s1="$(awk '$1 == "cpu" { print $7 + $8 }' /proc/stat)" '
		{ ep += $1 }
		END { printf "%.3f %.3f\n", (a1 - a0) / 100, ep + (s1 - s0) / 100 }' "$TMP/endpoints.cpu"
}
