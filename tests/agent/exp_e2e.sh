#!/bin/sh
# The experiment types end to end on loopback: the real fjord-controller, two
# agents, experiments of type bulk (with baseline), rr and probe created
# through the CLI from JSON specs; every run succeeds and its result carries
# the type's metrics and traces. Skipped (exit 0 with a note) when the
# controller or the CLI is not built. Everything listens on 127.0.0.1/2 only.
set -eu
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

B=${BUILD:-build}
AGENT=$B/fjord-agent
CTL=$B/fjord-controller
CLI=$B/fjord
[ -x "$AGENT" ] || { echo "exp_e2e: build $AGENT first" >&2; exit 1; }
if [ ! -x "$CTL" ] || [ ! -x "$CLI" ]; then
	echo "exp_e2e: $CTL or $CLI not built: skipped"
	exit 0
fi

W=$(mktemp -d /tmp/fjord-exp-e2e.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	sleep 0.2
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
fail() {
	echo "exp_e2e: FAIL: $*" >&2
	for f in "$W"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
	exit 1
}
wait_for() {
	n=$1
	shift
	while [ "$n" -gt 0 ]; do
		if eval "$1"; then return 0; fi
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

CPORT=$(free_port)
RPORT=$(free_port)
cat >"$W/ctl.cfg" <<CFG
listen = "127.0.0.1";
port = $CPORT;
data_dir = "$W/ctl";
long_poll_max_s = 2;
sites = ( { name = "sa"; secret = "secret-sa-0123456789abcdef"; },
	  { name = "sb"; secret = "secret-sb-0123456789abcdef"; } );
CFG
agent_cfg() {
	cat >"$W/$1.cfg" <<-CFG
	controller_url = "http://127.0.0.1:$CPORT";
	site = "$1";
	node = "node-1";
	enrollment_secret = "secret-$1-0123456789abcdef";
	state_dir = "$W/$1/state";
	spool_dir = "$W/$1/spool";
	responder_port = $RPORT;
	responder_addresses = [ "$2" ];
	poll_wait_s = 2;
	backoff_base_ms = 100;
	backoff_max_ms = 1000;
	interfaces = ( { name = "lo"; isp = "isp-$1"; link_type = "emulated"; } );
	CFG
}
"$CTL" -c "$W/ctl.cfg" >"$W/ctl.log" 2>&1 &
PIDS="$PIDS $!"
wait_for 100 '$CLI --controller http://127.0.0.1:$CPORT agents >/dev/null 2>&1 || [ $? = 1 ]' ||
	fail "the controller did not start"
TOKEN=$("$CTL" -c "$W/ctl.cfg" token create --role admin 2>>"$W/ctl.log") || fail "token create"
export FJORD_CONTROLLER="http://127.0.0.1:$CPORT" FJORD_TOKEN="$TOKEN"
agent_cfg sa 127.0.0.1
agent_cfg sb 127.0.0.2
"$AGENT" -c "$W/sb.cfg" >"$W/sb.log" 2>&1 &
PIDS="$PIDS $!"
"$AGENT" -c "$W/sa.cfg" >"$W/sa.log" 2>&1 &
PIDS="$PIDS $!"
wait_for 100 '[ "$($CLI agents --csv 2>/dev/null | grep -c node-1)" = 2 ]' ||
	fail "the agents did not enroll"
SA=$($CLI agents --csv | grep ',sa,' | cut -d, -f1)
SB=$($CLI agents --csv | grep ',sb,' | cut -d, -f1)
[ -n "$SA" ] && [ -n "$SB" ] || fail "agent ids: $($CLI agents --csv)"

# create NAME PARAMS-JSON: an experiment sa -> sb of that type; prints its id.
create() {
	cat >"$W/$1.json" <<-JSON
	{ "name": "e2e-$1", "type": "EXPERIMENT_TYPE_$(echo "$1" | tr a-z A-Z)", $2,
	  "targets": { "pairs": [ { "clientAgentId": "$SA", "serverAgentId": "$SB" } ] },
	  "shareLinks": true, "deadlineS": 60 }
	JSON
	$CLI experiments create --file "$W/$1.json" >"$W/create-$1.out" 2>&1 ||
		fail "create $1: $(cat "$W/create-$1.out")"
	sed -n 's/^created experiment \([^ ]*\) .*/\1/p' "$W/create-$1.out"
}
BULK=$(create bulk '"bulk": { "bytes": "33554432", "baseline": true }')
RR=$(create rr '"rr": { "requestBytes": 100, "responseBytes": 2000, "ratePerS": 100, "durationS": 1 }')
PROBE=$(create probe '"probe": { "timeoutMs": 500 }')

# done EXP: its run reached a final state.
done_runs() {
	$CLI runs --experiment "$1" --csv 2>/dev/null | grep "$1" | grep -Eq 'succeeded|failed'
}
for e in "$BULK" "$RR" "$PROBE"; do
	wait_for 400 "done_runs $e" || fail "the run of $e did not finish: $($CLI runs --experiment "$e" --csv)"
	$CLI runs --experiment "$e" --csv | grep "$e" | grep -q succeeded ||
		fail "run of $e did not succeed: $($CLI results --experiment "$e" --json)"
done
# metric EXP NAME: the value of a summary metric in the experiment's result.
metric() {
	$CLI results --experiment "$1" --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
for row in rows:
    for m in row["result"].get("metrics", []):
        if m["name"] == sys.argv[1]:
            print(m.get("value", 0))
' "$2"
}
# check EXP NAME CONDITION: the metric is there in every result and meets the condition.
check() {
	metric "$1" "$2" >"$W/m"
	[ -s "$W/m" ] || fail "no metric $2 in $1"
	while read -r v; do
		python3 -c "import sys; v = float('$v'); sys.exit(0 if $3 else 1)" ||
			fail "$2 = $v, want $3"
	done <"$W/m"
}
check "$BULK" bytes "v == 33554432"
check "$BULK" sha256_ok "v == 1"
check "$BULK" goodput_bps "v > 0"
check "$BULK" aggregation_gain "v > 0"
check "$RR" transactions "v >= 90"
check "$RR" latency_p99_us "v > 0"
check "$PROBE" p0_mp_capable "v in (0, 1)"
check "$PROBE" p0_nat "v == 0"
RUN=$($CLI runs --experiment "$BULK" --csv | grep "$BULK" | cut -d, -f1 | head -1)
$CLI traces list "$RUN" | grep -q subflows.csv || fail "no subflows.csv trace for $RUN"
$CLI traces list "$RUN" | grep -q capture.pcap || fail "no capture.pcap trace for $RUN"
[ -n "${EXP_E2E_SHOW:-}" ] && $CLI runs --experiment "$BULK" --json
echo "exp_e2e: ok: bulk, rr and probe through fjord-controller"
