#!/bin/sh
# Bundled bulk runs of the agent on the host adapter (bundled_host = true)
# beside the kernel's MPTCP, through the real controller and agents, same
# namespaces, same paths: the setup of tests/agent/host_e2e.sh
# (tests/agent/host_env.sh: site sa in namespace A with 10.89.1.1 and
# 10.89.2.1, site sb in B with 10.89.1.2 and 10.89.2.2, two veth ISPs), runs
# from sa's ISPs a and b to sb's a and b: four paths, two leaving each end
# by each veth, so both directions can use both links (with sb's a alone,
# every byte of a download left sb by a1). The bundled stack's subflows are
# the run's paths. The kernel's are its path manager's: a subflow endpoint
# on 10.89.2.1 and a signal endpoint on 10.89.2.2.
# For each link setting (unshaped veths, then tbf FJ_BENCH_RATE, default
# 100mbit, on both ends of both veths) and FJ_BENCH_RUNS (3) rounds: an
# upload and a download of FJ_BENCH_S (5) seconds with each stack. Prints
# every run's goodput (the agent's goodput_bps) and subflows, then the
# medians per stack and direction with bundled/kernel. Figures go to
# docs/benchmarks.md, "Agent: the bundled stack on the host adapter". Root.
set -eu
export no_proxy=10.89.1.1,127.0.0.1 NO_PROXY=10.89.1.1,127.0.0.1

NAME=agent_host
B=${BUILD:-build}
AGENT=$B/fjord-agent
CTL=$B/fjord-controller
CLI=$B/fjord
RATE=${FJ_BENCH_RATE:-100mbit}
RUNS=${FJ_BENCH_RUNS:-3}
SECS=${FJ_BENCH_S:-5}
PATH=$PATH:/usr/sbin:/sbin
if [ "$(id -u)" != 0 ] || ! command -v nft >/dev/null 2>&1 || [ ! -x "$CTL" ] ||
	[ ! -x "$CLI" ] || [ ! -x "$AGENT" ]; then
	echo "$NAME: SKIP (needs root, nft and the agent, controller and CLI built)"
	exit 0
fi

PREFIX=fjhb
REMOTE_ISPS='"a", "b"'
DEADLINE_S=$((SECS * 4 + 60))
. tests/agent/host_env.sh
ip -n "$NA" mptcp limits set subflow 4 add_addr_accepted 4
ip -n "$NA" mptcp endpoint add 10.89.2.1 dev b0 subflow
ip -n "$NB" mptcp endpoint add 10.89.2.2 dev b1 signal

shape() { # rate or "none"
	for l in a b; do
		for end in "$NA ${l}0" "$NB ${l}1"; do
			set -- $end "$1"
			if [ "$3" = none ]; then
				ip netns exec "$1" tc qdisc del dev "$2" root 2>/dev/null || true
			else
				ip netns exec "$1" tc qdisc replace dev "$2" root tbf rate "$3" \
					burst 64kb latency 50ms
			fi
			shift 2
		done
	done
}

N=0
OUT=$W/results
: >"$OUT"
for link in none "$RATE"; do
	shape "$link"
	r=1
	while [ "$r" -le "$RUNS" ]; do
		for st in BUNDLED KERNEL; do
			for dir in UPLOAD DOWNLOAD; do
				N=$((N + 1))
				e=$(create "b$N" BULK \
					"\"bulk\": { \"durationS\": $SECS, \"direction\": \"DIRECTION_$dir\" }" \
					"STACK_$st")
				wait_runs "$e"
				g=$(metric "$e" goodput_bps)
				sf=$(metric "$e" subflows_max)
				check "$e" sha256_ok "v == 1"
				echo "$link $st $dir $g $sf" >>"$OUT"
				printf '%s: links %s round %d %-7s %-8s %8.1f Mbit/s, %s subflows\n' \
					"$NAME" "$link" "$r" "$st" "$dir" \
					"$(python3 -c "print($g / 1e6)")" "$sf"
			done
		done
		r=$((r + 1))
	done
done
python3 - "$OUT" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for link in dict.fromkeys(r[0] for r in rows):
    for d in ("UPLOAD", "DOWNLOAD"):
        med = {}
        for st in ("BUNDLED", "KERNEL"):
            v = [float(r[3]) for r in rows if r[0] == link and r[1] == st and r[2] == d]
            med[st] = statistics.median(v) / 1e6
        print("agent_host: links %s %-8s median bundled %.1f, kernel %.1f Mbit/s, "
              "bundled/kernel %.2f" % (link, d, med["BUNDLED"], med["KERNEL"],
                                       med["BUNDLED"] / med["KERNEL"]))
EOF
