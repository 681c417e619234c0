#!/bin/sh
# mpsperf refuses bad command lines with a message and a non-zero status,
# before it touches any device (no root needed).
set -eu
PERF=build/mpsperf
[ -x "$PERF" ] || { echo "mpsperf_cli: $PERF missing; run make" >&2; exit 1; }
fail=0
expect() { # status message-fragment args...
	want=$1
	frag=$2
	shift 2
	set +e
	out=$("$PERF" "$@" 2>&1)
	rc=$?
	set -e
	if [ "$rc" != "$want" ] || ! printf '%s' "$out" | grep -q -- "$frag"; then
		echo "mpsperf_cli: FAIL: mpsperf $*: status $rc (want $want), output: $out" >&2
		fail=1
	fi
}
expect 2 "usage:"
expect 2 "usage:" bogus
expect 2 "usage:" server --tun x --port 5
expect 2 "usage:" client --tun x --addr 10.0.0.1 --port 5 --mode send
expect 2 "not an IPv4 or IPv6 address" server --tun x --addr 10.0.0.300 --port 5
expect 2 "one family only" server --tun x --addr 10.0.0.1,fd00::2 --port 5
expect 2 "at most 9 addresses" server --tun x --addr 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,10.0.0.6,10.0.0.7,10.0.0.8,10.0.0.9,10.0.0.10 --port 5
expect 2 "not an IPv4" server --tun x --addr 10.0.0.1,10.0.0.x --port 5
expect 2 "bad port" server --tun x --addr 10.0.0.1 --port 70000
expect 2 "bad mode" server --tun x --addr 10.0.0.1 --port 5 --mode send
expect 2 "bad byte count" client --tun x --addr 10.0.0.1 --remote 10.0.0.2 --port 5 --mode send --bytes -1
expect 2 "usage:" client --tun x --addr 10.0.0.1 --remote fd00::2 --port 5 --mode send
expect 2 "bad time" client --tun x --addr 10.0.0.1 --remote 10.0.0.2 --port 5 --mode recv --time 0
expect 2 "bad abort byte count" client --tun x --addr 10.0.0.1 --remote 10.0.0.2 --port 5 \
	--mode send --abort-after 0
expect 2 "bad interval" server --tun x --addr 10.0.0.1 --port 5 --interval 0
expect 2 "bad interval" server --tun x --addr 10.0.0.1 --port 5 --interval 60001
expect 1 "unknown scheduler or congestion control" client --tun x --addr 10.0.0.1 --remote 10.0.0.2 --port 5 \
	--mode send --scheduler nosuch
expect 1 "(default, nosuch)" client --tun x --addr 10.0.0.1 --remote 10.0.0.2 --port 5 \
	--mode send --cc nosuch
expect 2 "bad buffer size" server --tun x --addr 10.0.0.1 --port 5 --sndbuf 4095
expect 2 "bad buffer size" server --tun x --addr 10.0.0.1 --port 5 --rcvbuf 1073741825
expect 2 "bad mss" server --tun x --addr 10.0.0.1 --port 5 --mss 87
expect 2 "bad mss" server --tun x --addr 10.0.0.1 --port 5 --mss 65001
expect 2 "bad mss" server --tun x --addr 10.0.0.1 --port 5 --mss 9k
expect 1 "cannot write the trace" client --tun x --addr 10.0.0.1 --remote 10.0.0.2 --port 5 \
	--mode send --pcap /nonexistent-dir/trace.pcap
[ "$fail" = 0 ] && echo "mpsperf_cli: all passed"
exit "$fail"
