#!/bin/sh
# Time until data flows again after one of two paths is cut, the bundled
# stack against the Linux kernel's MPTCP beside the kernel talking to itself
# (topology in tests/bench/mps_lib.sh, paths shaped to FJ_BENCH_RATE, 50mbit).
# Each run does four transfers of FJ_BENCH_BYTES (kernel -> bundled, bundled
# -> kernel with scheduler FJ_BENCH_SCHED, and kernel -> kernel both ways, as
# in mps_twopath.sh). Once the receiver has FJ_BENCH_CUT_AT bytes, path b (the
# join's; FJ_BENCH_CUT_PATH=a cuts the initial subflow's path instead) is cut
# in namespace B, which is an end of every transfer: iptables DROP of
# everything in and out of its veth on that path. The receiver prints a
# progress line every 10 ms (mpsperf --interval, kernel_peer.py --interval);
# the figure is the stall: the longest time after the cut during which the
# receiver got no new in-order data, to 10 ms. Medians of the runs and the
# ratio bundled/kernel; figures in docs/benchmarks.md, "Bundled stack". Root.
set -eu

RATE=${FJ_BENCH_RATE:-50mbit}
BYTES=${FJ_BENCH_BYTES:-33554432}
CUT_AT=${FJ_BENCH_CUT_AT:-8388608}
CUT=${FJ_BENCH_CUT_PATH:-b} # b: the join's path; a: the initial subflow's
RUNS=${FJ_BENCH_RUNS:-3}
SCHED=${FJ_BENCH_SCHED:-lowrtt}
CC=${FJ_BENCH_CC:-lia} # congestion control of the bundled stack
PERF_OPTS=${FJ_BENCH_PERF_OPTS:-} # more mpsperf options, e.g. --sndbuf 1048576
PERF=${FJ_BENCH_MPSPERF:-build/mpsperf} # a copy keeps one build through the runs
PEER=tests/interop/kernel_peer.py
NAME=mps_pathcut

[ "$(id -u)" = 0 ] || { echo "$NAME: SKIP (needs root)"; exit 0; }
[ -x "$PERF" ] || { echo "$NAME: $PERF missing; run make" >&2; exit 1; }

A=fjmpc-a-$$
B=fjmpc-b-$$
TMP=$(mktemp -d)
cleanup() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
	[ -n "${PID2:-}" ] && kill "$PID2" 2>/dev/null || true
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
. tests/bench/mps_lib.sh
twopath_up

# cutter PROGRESS-FILE: wait for CUT_AT bytes at the receiver, cut path b in B,
# print the monotonic time of the cut (the same clock as the progress lines).
cat >"$TMP/cut.py" <<'PY'
import json, subprocess, sys, time
prog, at, ns, dev = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    total = 0
    try:
        for line in open(prog):
            if line.startswith("{"):
                total = json.loads(line)["total"]
    except (OSError, ValueError):
        pass
    if total >= at:
        subprocess.run(["ip", "netns", "exec", ns, "iptables", "-I", "INPUT", "-i", dev,
                        "-j", "DROP"], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "iptables", "-I", "OUTPUT", "-o", dev,
                        "-j", "DROP"], check=True)
        print("%.6f" % time.monotonic())
        sys.exit(0)
    time.sleep(0.005)
print("none")
PY
# stall PROGRESS-FILE CUT-TIME: the longest time after the cut without new data.
cat >"$TMP/stall.py" <<'PY'
import json, sys
cut = float(sys.argv[2])
ts = [l["t"] for l in (json.loads(x) for x in open(sys.argv[1]) if x.startswith("{"))
      if l["bytes"] > 0]
prev, worst = cut, 0.0
for t in ts:
    if t <= cut:
        continue
    worst = max(worst, t - prev)
    prev = t
print("%.3f" % worst)
PY

uncut() { ip netns exec "$B" iptables -F INPUT; ip netns exec "$B" iptables -F OUTPUT; }
[ "$CUT" = a ] || [ "$CUT" = b ] || { echo "$NAME: FJ_BENCH_CUT_PATH must be a or b" >&2; exit 2; }
result() { # kind cut-time progress-file detail
	if [ "$2" = none ]; then
		echo "$NAME: run $r $1: FAILED: never reached $CUT_AT bytes"
		bad=$((bad + 1))
		return
	fi
	s=$(python3 "$TMP/stall.py" "$3" "$2")
	echo "$s" >>"$TMP/$1"
	echo "$NAME: run $r $1: stall after the cut $s s; $4"
}

bad=0
r=1
while [ "$r" -le "$RUNS" ]; do
	# Kernel -> bundled.
	uncut
	announce_b none
	ip netns exec "$A" timeout -k 5 120 "$PERF" server --tun mps0 --addr 10.80.1.2,10.80.2.2 \
		--port 5002 --once --mode sink $PERF_OPTS --interval 10 >"$TMP/perf.json" 2>"$TMP/prog" &
	PID=$!
	sleep 0.5
	ip netns exec "$B" timeout -k 5 120 python3 "$PEER" send 10.80.1.2 5002 "$BYTES" \
		>"$TMP/peer.json" &
	PID2=$!
	t=$(python3 "$TMP/cut.py" "$TMP/prog" "$CUT_AT" "$B" "t${CUT}1-$$")
	if wait "$PID2" && wait "$PID" &&
		[ "$(jget sha256 <"$TMP/perf.json")" = "$(jget sha256 <"$TMP/peer.json")" ]; then
		result k2b "$t" "$TMP/prog" "bytes per subflow $(jget subflow_bytes <"$TMP/perf.json")"
	else
		echo "$NAME: run $r k2b FAILED: $(grep -v '^{' "$TMP/prog")"
		bad=$((bad + 1))
	fi
	PID= PID2=

	# Bundled -> kernel.
	uncut
	announce_b "$B"
	ip netns exec "$B" timeout -k 5 120 python3 "$PEER" recv 0.0.0.0 5003 --interval 10 \
		>"$TMP/peer.json" 2>"$TMP/prog" &
	PID=$!
	listening "$B" 5003
	ip netns exec "$A" timeout -k 5 120 "$PERF" client --tun mps0 --addr 10.80.1.2 \
		--remote 10.81.1.2 --port 5003 --mode send --bytes "$BYTES" --scheduler "$SCHED" --cc "$CC" $PERF_OPTS \
		>"$TMP/perf.json" 2>"$TMP/perf.err" &
	PID2=$!
	t=$(python3 "$TMP/cut.py" "$TMP/prog" "$CUT_AT" "$B" "t${CUT}1-$$")
	rc2=0 rc1=0
	wait "$PID2" || rc2=$?
	wait "$PID" || rc1=$?
	if [ $rc2 = 0 ] && [ $rc1 = 0 ] &&
		[ "$(jget sha256 <"$TMP/perf.json")" = "$(jget sha256 <"$TMP/peer.json")" ]; then
		result b2k "$t" "$TMP/prog" "bytes per subflow $(jget subflow_bytes <"$TMP/perf.json")"
	else
		echo "$NAME: run $r b2k FAILED: mpsperf exit $rc2, kernel peer exit $rc1;" \
			"mpsperf: $(tail -c 300 "$TMP/perf.err") $(tail -c 400 "$TMP/perf.json");" \
			"peer: $(grep -v '^{' "$TMP/prog" | tail -c 300) $(tail -c 300 "$TMP/peer.json")"
		kill "$PID" "$PID2" 2>/dev/null || true
		bad=$((bad + 1))
	fi
	PID= PID2=

	# Baselines: kernel -> kernel, B to A and A to B.
	for d in ba ab; do
		if [ $d = ba ]; then src=$B dst=$A to=10.81.1.1; else src=$A dst=$B to=10.81.1.2; fi
		uncut
		announce_b "$dst"
		ip netns exec "$dst" timeout -k 5 120 python3 "$PEER" recv 0.0.0.0 5005 --interval 10 \
			>"$TMP/kpeer.json" 2>"$TMP/prog" &
		PID=$!
		listening "$dst" 5005
		ip netns exec "$src" timeout -k 5 120 python3 "$PEER" send "$to" 5005 "$BYTES" \
			>"$TMP/peer.json" &
		PID2=$!
		t=$(python3 "$TMP/cut.py" "$TMP/prog" "$CUT_AT" "$B" "t${CUT}1-$$")
		if wait "$PID2" && wait "$PID"; then
			result "kk_$d" "$t" "$TMP/prog" \
				"kernel extra subflows $(jget extra_subflows_max <"$TMP/peer.json")"
		else
			echo "$NAME: run $r kk_$d FAILED"
			bad=$((bad + 1))
		fi
		PID= PID2=
	done
	r=$((r + 1))
done

for k in k2b b2k kk_ba kk_ab; do
	touch "$TMP/$k"
	eval "s_$k=$(median <"$TMP/$k")"
done
awk -v a="$s_k2b" -v b="$s_b2k" -v ka="$s_kk_ba" -v kb="$s_kk_ab" -v runs="$RUNS" \
	-v rate="$RATE" -v cut="$CUT" -v sched="$SCHED/$CC" -v bad="$bad" 'BEGIN {
	printf "mps_pathcut: medians of %d runs, stall after path %s is cut (paths %s):\n", runs, cut, rate
	printf "  kernel -> bundled  %.3f s  (kernel -> kernel %.3f s, ratio %.2f)\n", a, ka, ka ? a / ka : 0
	printf "  bundled -> kernel  %.3f s  (kernel -> kernel %.3f s, ratio %.2f, scheduler %s)\n", b, kb, kb ? b / kb : 0, sched
	printf "  failed transfers: %d\n", bad
}'
[ "$bad" = 0 ]
