#!/bin/sh
# Controller API over loopback: long-poll answers per second and their p99
# latency with 10,000 agents (enrolled directly through the store), the same
# load on /healthz as the floor of the HTTP stack, and results ingested per
# second over HTTP (each durable before its 201), one per request and in
# batches (POST /api/v1/results:batch). Figures go to
# docs/benchmarks.md, section "Controller API".
# Last, every agent holds one poll at the same time (4 s, no command).
# Environment: AGENTS (10000), RUNS (20000), CONNS (32), SECONDS (5), REPEAT (3),
# INGEST_RUNS (60000), BATCH (100).
set -eu
BUILD=${BUILD:-build}
AGENTS=${AGENTS:-10000}
RUNS=${RUNS:-20000}
CONNS=${CONNS:-32}
SECONDS_EACH=${SECONDS:-5}
REPEAT=${REPEAT:-3}
INGEST_RUNS=${INGEST_RUNS:-60000}
BATCH=${BATCH:-100}
make -s --no-print-directory BUILD="$BUILD" "$BUILD/fjord-controller" "$BUILD/tests/bench-poll" >/dev/null

dir=$(mktemp -d "${TMPDIR:-/tmp}/fjord-bench-poll-XXXXXX")
pid=""
ipid=""
idir=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$ipid" ] && kill "$ipid" 2>/dev/null && wait "$ipid" 2>/dev/null
	[ -n "$idir" ] && rm -rf "$idir"
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"$BUILD/tests/bench-poll" setup -d "$dir" -n "$AGENTS" -r "$RUNS"
cat >"$dir/controller.cfg" <<CFG
listen = "127.0.0.1";
port = 0;
data_dir = "$dir";
threads = 2;
log_level = "info";
CFG
# Port 0: the controller picks a free port and logs it at info level.
"$BUILD/fjord-controller" -c "$dir/controller.cfg" 2>"$dir/controller.log" &
pid=$!
port=""
for _ in $(seq 50); do
	port=$(sed -n 's/.*listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$dir/controller.log")
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { cat "$dir/controller.log" >&2; exit 1; }
url="http://127.0.0.1:$port"

ingest() {
	r=0
	while [ "$r" -lt "$REPEAT" ]; do
		for m in result batch; do
			idir=$(mktemp -d "${TMPDIR:-/tmp}/fjord-bench-ingest-XXXXXX")
			"$BUILD/tests/bench-poll" setup -d "$idir" -n 100 -r "$1" >/dev/null
			sed "s|^data_dir = .*|data_dir = \"$idir\";|" "$dir/controller.cfg" \
				>"$idir/controller.cfg"
			"$BUILD/fjord-controller" -c "$idir/controller.cfg" 2>"$idir/controller.log" &
			ipid=$!
			iport=""
			for _ in $(seq 50); do
				iport=$(sed -n 's/.*listening on 127.0.0.1 port \([0-9]*\).*/\1/p' \
					"$idir/controller.log")
				[ -n "$iport" ] && break
				sleep 0.1
			done
			if [ "$m" = result ]; then c=64; else c=32; fi
			"$BUILD/tests/bench-poll" load -u "http://127.0.0.1:$iport" -d "$idir" -m "$m" \
				-c "$c" -s "$SECONDS_EACH" -b "$BATCH" || true
			kill "$ipid"
			wait "$ipid" 2>/dev/null || true
			ipid=""
			rm -rf "$idir"
			idir=""
		done
		r=$((r + 1))
	done
}
echo "controller on $url: $AGENTS agents, $CONNS connections, $SECONDS_EACH s per load, $REPEAT rounds"

i=0
while [ "$i" -lt "$REPEAT" ]; do
	"$BUILD/tests/bench-poll" load -u "$url" -d "$dir" -m healthz -c "$CONNS" -s "$SECONDS_EACH"
	"$BUILD/tests/bench-poll" load -u "$url" -d "$dir" -m poll -c "$CONNS" -s "$SECONDS_EACH"
	i=$((i + 1))
done
"$BUILD/tests/bench-poll" load -u "$url" -d "$dir" -m result -c 64 -s 60
# Durable ingest over HTTP in fresh stores: one result per POST (64
# connections) and BATCH results of one agent per POST /api/v1/results:batch
# (32 connections), INGEST_RUNS runs between 100 agents each, every round.
ingest "$INGEST_RUNS"

# Every agent holds a poll at once (no command for them, 4 s wait): suspended
# connections, not threads. Needs a descriptor per connection on both sides.
if [ "$(ulimit -n)" -gt $((AGENTS + 200)) ]; then
	(sleep 3; echo "while $AGENTS polls are held: $(curl -s "$url/metrics" |
		grep '^fjord_long_polls_waiting') threads $(awk '/^Threads/ {print $2}' \
		"/proc/$pid/status") rss $(awk '/^VmRSS/ {print $2, $3}' "/proc/$pid/status")") &
	mon=$!
	"$BUILD/tests/bench-poll" load -u "$url" -d "$dir" -m poll -c "$AGENTS" -s 1 -w 4
	wait "$mon"
else
	echo "held polls: skipped, ulimit -n $(ulimit -n) is below $AGENTS + 200"
fi
curl -s "$url/metrics" | grep -E '^fjord_(agents_online|store_bytes|runs\{state="succeeded"\})'
