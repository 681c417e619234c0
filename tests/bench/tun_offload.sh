#!/bin/sh
# The TUN adapter's offloads (stack/mps_tun.c: vnet header, GSO super-segments
# out, merged packets in) on against off in one session: mps_twopath_raw.sh
# (two unshaped veth paths) and mps_goodput.sh (one path through a TUN), each
# run with MPS_TUN_OFFLOAD=1 (both halves, the default of mps_tun_open()), tx
# (super-segments out only) and 0 (none), FJ_BENCH_TUN_MODES to choose,
# FJ_BENCH_ROUNDS times alternating, so all see the same machine. Each run
# also measures the kernel's own baseline. FJ_BENCH_PERF_OPTS (for example
# "--rcvbuf 4194304 --sndbuf 4194304") goes to mpsperf as in those scripts.
# Prints each script's summary; figures go to docs/benchmarks.md, "Bundled
# stack", "TUN offloads". Root only (they skip otherwise).
set -eu

ROUNDS=${FJ_BENCH_ROUNDS:-1}
SCRIPTS=${FJ_BENCH_TUN_SCRIPTS:-"tests/bench/mps_twopath_raw.sh tests/bench/mps_goodput.sh"}
MODES=${FJ_BENCH_TUN_MODES:-"1 tx 0"}

[ "$(id -u)" = 0 ] || { echo "tun_offload: SKIP (needs root)"; exit 0; }

bad=0
r=1
while [ "$r" -le "$ROUNDS" ]; do
	for s in $SCRIPTS; do
		for off in $MODES; do
			echo "tun_offload: round $r, $s, MPS_TUN_OFFLOAD=$off"
			# The per-run lines stay out; the medians and failures stay in.
			if ! MPS_TUN_OFFLOAD=$off sh "$s" >"${TMPDIR:-/tmp}/tun_offload.$$" 2>&1; then
				bad=$((bad + 1))
			fi
			grep -v -e ": run [0-9]* [a-z_0-9]*: " -e "^run [0-9]*: " \
				"${TMPDIR:-/tmp}/tun_offload.$$" || true
			grep -e ": run [0-9]* [a-z_0-9]* FAILED" -e "^run [0-9]*: .*FAIL" \
				"${TMPDIR:-/tmp}/tun_offload.$$" || true
			rm -f "${TMPDIR:-/tmp}/tun_offload.$$"
		done
	done
	r=$((r + 1))
done
[ "$bad" -eq 0 ] || { echo "tun_offload: $bad script runs failed"; exit 1; }
