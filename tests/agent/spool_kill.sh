#!/bin/sh
# kill -9 of an agent holding spooled results while the controller is away
# loses nothing: restarted once the controller is back, the agent uploads
# every result and trace.
#  1. With the real build/fjord-controller (when it is built): two agents,
#     an echo experiment, the controller stopped right after dispatching.
#  2. With the fake controller of tests/agent/fake_controller.c, which also
#     forgets the agent's token (401, enroll again) and leaves one run in
#     progress at the kill (reported failed as interrupted).
# Everything listens on 127.0.0.1 / 127.0.0.2 only.
set -eu
# Loopback only: never through a proxy from the environment.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

B=${BUILD:-build}
AGENT=$B/fjord-agent
FAKE=$B/tests/fjord-fake-controller
N=6
[ -x "$AGENT" ] && [ -x "$FAKE" ] || { echo "spool_kill: build $AGENT and $FAKE first" >&2; exit 1; }

W=$(mktemp -d /tmp/fjord-spool-kill.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
fail() {
	echo "spool_kill: FAIL: $*" >&2
	for f in "$W"/*.log "$W"/rec* "$W"/real/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
	exit 1
}

# Waits up to $1 tenths of a second for the command in $2 to succeed.
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

results_spooled() {
	ls "$W"/spool/runs/*/result.pb 2>/dev/null | wc -l
}

fake_controller_case() {
	CPORT=$(free_port)
	RPORT=$(free_port)
	cat >"$W/agent.cfg" <<-CFG
	controller_url = "http://127.0.0.1:$CPORT";
	site = "site-a";
	node = "node-1";
	enrollment_secret = "test-secret";
	state_dir = "$W/state";
	spool_dir = "$W/spool";
	responder_port = $RPORT;
	responder_addresses = [ "127.0.0.1" ];
	backoff_base_ms = 100;
	backoff_max_ms = 1000;
	poll_wait_s = 2;
	interfaces = ( { name = "lo"; isp = "loopback"; link_type = "emulated"; } );
	CFG

	# 1. The controller hands out N quick echo runs and a slow one, then goes away.
	"$FAKE" --secret test-secret --port "$CPORT" --port-file "$W/port1" --record "$W/rec1" \
		--queue-slow slow-1 --queue-echo $N --echo-count 50 --exit-after-dispatch >"$W/fake1.log" 2>&1 &
	FPID=$!
	PIDS="$PIDS $FPID"
	wait_for 50 '[ -s "$W/port1" ]' || fail "fake controller did not start"

	"$AGENT" -c "$W/agent.cfg" >"$W/agent1.log" 2>&1 &
	APID=$!
	PIDS="$PIDS $APID"
	wait_for 100 '! kill -0 $FPID 2>/dev/null' || fail "the fake controller never dispatched"
	grep -q "dispatched $((N + 1))" "$W/rec1" || fail "not every run was dispatched"

	# 2. The quick runs finish and their results wait in the spool: uploads fail.
	wait_for 150 '[ "$(results_spooled)" -ge $N ]' || fail "results were not spooled"
	wait_for 50 'grep -q "upload of run .* failed" "$W/agent1.log"' || fail "no failed upload seen"
	kill -0 "$APID" 2>/dev/null || fail "the agent died while the controller was away"
	[ -d "$W/spool/runs/slow-1" ] || fail "the slow run did not start"

	# 3. kill -9 with the spool full of unacknowledged results.
	kill -9 "$APID"
	wait "$APID" 2>/dev/null || true
	SPOOLED=$(results_spooled)
	TRACES=$(ls "$W"/spool/runs/*/t.rtt.csv 2>/dev/null | wc -l)
	[ "$SPOOLED" -ge $N ] || fail "only $SPOOLED results left in the spool after kill -9"
	[ "$TRACES" -ge $N ] || fail "only $TRACES traces left in the spool after kill -9"

	# 4. The controller is back (it forgot the agent: 401, then enroll again);
	#    the restarted agent uploads everything and exits.
	"$FAKE" --secret test-secret --port "$CPORT" --port-file "$W/port2" --record "$W/rec2" \
		>"$W/fake2.log" 2>&1 &
	FPID2=$!
	PIDS="$PIDS $FPID2"
	wait_for 50 '[ -s "$W/port2" ]' || fail "second fake controller did not start"
	if ! timeout 30 "$AGENT" -c "$W/agent.cfg" --once >"$W/agent2.log" 2>&1; then
		fail "the restarted agent did not upload its spool (exit $?)"
	fi

	i=1
	while [ $i -le $N ]; do
		grep -q "^result run-$i ok=1 metrics=6" "$W/rec2" || fail "result of run-$i did not arrive"
		grep -q "^trace run-$i rtt.csv size=[1-9]" "$W/rec2" || fail "trace of run-$i did not arrive"
		i=$((i + 1))
	done
	# The slow run was cut by the kill: it arrives as failed, with the reason.
	grep -q "^result slow-1 ok=0 .*error=interrupted" "$W/rec2" ||
		grep -q "^result slow-1 ok=1" "$W/rec2" || fail "result of slow-1 did not arrive"
	grep -q "^enroll " "$W/rec2" || fail "the agent did not enroll again after the 401"
	[ -z "$(ls "$W/spool/runs")" ] || fail "spool not empty after the upload: $(ls "$W/spool/runs")"
	echo "spool_kill: fake controller: ok: $SPOOLED results and $TRACES traces survived kill -9 and arrived"
}

# agent_cfg FILE SITE RESPONDER_ADDRESS: a config for the real-controller case.
real_agent_cfg() {
	cat >"$R/$1.cfg" <<-CFG
	controller_url = "http://127.0.0.1:$RCPORT";
	site = "$1";
	node = "node-1";
	enrollment_secret = "secret-$1-0123456789abcdef";
	state_dir = "$R/$1/state";
	spool_dir = "$R/$1/spool";
	responder_port = $RRPORT;
	responder_addresses = [ "$2" ];
	backoff_base_ms = 100;
	backoff_max_ms = 1000;
	poll_wait_s = 2;
	interfaces = ( { name = "lo"; isp = "isp-$1"; link_type = "emulated"; } );
	CFG
}

start_controller() {
	"$CTL" -c "$R/ctl.cfg" >>"$R/ctl.log" 2>&1 &
	CPID=$!
	PIDS="$PIDS $CPID"
	wait_for 100 '$CLI --controller http://127.0.0.1:$RCPORT agents >/dev/null 2>&1 ||
		[ $? = 1 ]' || fail "the controller did not start"
}

real_controller_case() {
	R="$W/real"
	mkdir -p "$R"
	RCPORT=$(free_port)
	RRPORT=$(free_port)
	cat >"$R/ctl.cfg" <<-CFG
	listen = "127.0.0.1";
	port = $RCPORT;
	data_dir = "$R/ctl";
	long_poll_max_s = 2;
	sites = ( { name = "sa"; secret = "secret-sa-0123456789abcdef"; },
		  { name = "sb"; secret = "secret-sb-0123456789abcdef"; } );
	CFG
	start_controller
	TOKEN=$("$CTL" -c "$R/ctl.cfg" token create --role admin 2>>"$R/ctl.log") ||
		fail "token create failed"
	export FJORD_CONTROLLER="http://127.0.0.1:$RCPORT" FJORD_TOKEN="$TOKEN"
	real_agent_cfg sa 127.0.0.1
	real_agent_cfg sb 127.0.0.2
	"$AGENT" -c "$R/sb.cfg" >"$R/sb.log" 2>&1 &
	PIDS="$PIDS $!"
	"$AGENT" -c "$R/sa.cfg" >"$R/sa.log" 2>&1 &
	APID=$!
	PIDS="$PIDS $APID"
	wait_for 50 '[ "$($CLI agents --csv 2>/dev/null | grep -c node-1)" = 2 ]' ||
		fail "the agents did not enroll"

	# Two runs due at once (kernel MPTCP and TCP), long enough to stop the
	# controller while they run.
	EXP=$($CLI experiments create --type echo --pairs sa:sb --stack kernel,tcp --share-links \
		--messages 3000 --message-bytes 65536 --name spool-kill | sed -n 's/^created experiment \([^ ]*\) .*/\1/p')
	[ -n "$EXP" ] || fail "cannot create the experiment"
	wait_for 100 '[ "$(grep -c " started (pid" "$R/sa.log")" = 2 ]' || fail "the runs did not start"
	kill "$CPID"
	wait "$CPID" 2>/dev/null || true
	wait_for 300 '[ "$(ls "$R"/sa/spool/runs/*/result.pb 2>/dev/null | wc -l)" = 2 ]' ||
		fail "the results were not spooled"
	wait_for 50 'grep -q "upload of run .* failed" "$R/sa.log"' || fail "no failed upload seen"
	kill -9 "$APID"
	wait "$APID" 2>/dev/null || true
	[ "$(ls "$R"/sa/spool/runs/*/result.pb | wc -l)" = 2 ] || fail "results lost by kill -9"
	[ "$(ls "$R"/sa/spool/runs/*/t.rtt.csv | wc -l)" = 2 ] || fail "traces lost by kill -9"

	start_controller
	if ! timeout 60 "$AGENT" -c "$R/sa.cfg" --once >"$R/sa2.log" 2>&1; then
		fail "the restarted agent did not upload its spool"
	fi
	$CLI results --experiment "$EXP" --csv >"$R/results.csv" || fail "cannot list results"
	[ "$(grep -c "$EXP" "$R/results.csv")" = 2 ] || fail "not both results arrived: $(cat "$R/results.csv")"
	for run in $(cut -d, -f1 "$R/results.csv" | grep "$EXP"); do
		$CLI traces list "$run" | grep -q rtt.csv || fail "trace of $run did not arrive"
	done
	$CLI runs --experiment "$EXP" --csv | grep "$EXP" | grep -qv succeeded &&
		fail "a run did not succeed: $($CLI runs --experiment "$EXP" --csv)"
	[ -z "$(ls "$R/sa/spool/runs")" ] || fail "spool not empty after the upload"
	echo "spool_kill: fjord-controller: ok: 2 results and 2 traces survived kill -9 and arrived"
}

CTL=$B/fjord-controller
CLI=$B/fjord
if [ -x "$CTL" ] && [ -x "$CLI" ]; then
	real_controller_case
else
	echo "spool_kill: $CTL or $CLI not built: only the fake controller case runs"
fi
fake_controller_case
