# Shared by tests/agent/host_e2e.sh and tests/bench/agent_host.sh (sourced,
# with NAME, PREFIX, AGENT, CTL and CLI set): two namespaces PREFIX-a-PID and
# PREFIX-b-PID joined by two veth "ISPs" (a: 10.89.1.0/24, b: 10.89.2.0/24, a
# policy route per address), fjord-controller on 10.89.1.1:8470 in the first,
# an agent with bundled_host = true in each (site sa: client, sb: server),
# enrolled, sb's bundled responder up. cleanup (on EXIT) stops everything and
# deletes the namespaces. Helpers: cli, create NAME TYPE PARAMS STACK,
# done_runs, wait_runs, metric, check, adapter.
# The server's ISPs of every experiment (JSON strings), sb's a unless set.
REMOTE_ISPS=${REMOTE_ISPS:-'"a"'}
NA=$PREFIX-a-$$
NB=$PREFIX-b-$$
W=$(mktemp -d /tmp/fjord-$PREFIX.XXXXXX)
PIDS=""
cleanup() {
	trap '' INT TERM
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	sleep 0.3
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	ip netns del "$NA" 2>/dev/null || true
	ip netns del "$NB" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
	echo "$NAME: FAIL: $*" >&2
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

ip netns add "$NA"
ip netns add "$NB"
for ns in "$NA" "$NB"; do
	ip -n "$ns" link set lo up
	# The bundled stack's ports, 49152-65535, are its own.
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="32768 49151"
	ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
n=1
for l in a b; do
	ip link add "${l}0" netns "$NA" type veth peer name "${l}1" netns "$NB"
	ip -n "$NA" addr add "10.89.$n.1/24" dev "${l}0"
	ip -n "$NB" addr add "10.89.$n.2/24" dev "${l}1"
	ip -n "$NA" link set "${l}0" up
	ip -n "$NB" link set "${l}1" up
	ip -n "$NA" rule add from "10.89.$n.1" table $((100 + n))
	ip -n "$NA" route add default dev "${l}0" table $((100 + n))
	ip -n "$NB" rule add from "10.89.$n.2" table $((100 + n))
	ip -n "$NB" route add default dev "${l}1" table $((100 + n))
	n=$((n + 1))
done
ip -n "$NB" mptcp limits set subflow 4 add_addr_accepted 4

cat >"$W/ctl.cfg" <<CFG
listen = "10.89.1.1";
port = 8470;
data_dir = "$W/ctl";
long_poll_max_s = 2;
sites = ( { name = "sa"; secret = "secret-sa-0123456789abcdef"; },
	  { name = "sb"; secret = "secret-sb-0123456789abcdef"; } );
CFG
agent_cfg() { # site host-part
	cat >"$W/$1.cfg" <<-CFG
	controller_url = "http://10.89.1.1:8470";
	site = "$1";
	node = "node-1";
	enrollment_secret = "secret-$1-0123456789abcdef";
	state_dir = "$W/$1/state";
	spool_dir = "$W/$1/spool";
	poll_wait_s = 2;
	backoff_base_ms = 100;
	backoff_max_ms = 1000;
	bundled_host = true;
	interfaces = ( { name = "a$2"; isp = "a"; bundled_ipv4 = "10.89.1.$(($2 + 1))"; },
		       { name = "b$2"; isp = "b"; bundled_ipv4 = "10.89.2.$(($2 + 1))"; } );
	CFG
}
cli() { ip netns exec "$NA" "$CLI" --controller http://10.89.1.1:8470 "$@"; }

ip netns exec "$NA" "$CTL" -c "$W/ctl.cfg" >"$W/ctl.log" 2>&1 &
PIDS="$PIDS $!"
wait_for 100 'cli agents >/dev/null 2>&1 || [ $? = 1 ]' || fail "the controller did not start"
TOKEN=$(ip netns exec "$NA" "$CTL" -c "$W/ctl.cfg" token create --role admin 2>>"$W/ctl.log") ||
	fail "token create"
export FJORD_TOKEN="$TOKEN"
agent_cfg sa 0
agent_cfg sb 1
ip netns exec "$NB" "$AGENT" -c "$W/sb.cfg" >"$W/sb.log" 2>&1 &
PIDB=$!
ip netns exec "$NA" "$AGENT" -c "$W/sa.cfg" >"$W/sa.log" 2>&1 &
PIDA=$!
PIDS="$PIDS $PIDA $PIDB"
wait_for 100 '[ "$(cli agents --csv 2>/dev/null | grep -c node-1)" = 2 ]' ||
	fail "the agents did not enroll"
SA=$(cli agents --csv | grep ',sa,' | cut -d, -f1)
SB=$(cli agents --csv | grep ',sb,' | cut -d, -f1)
[ -n "$SA" ] && [ -n "$SB" ] || fail "agent ids: $(cli agents --csv)"
# The bundled responder of sb on its host adapter: its table is there.
wait_for 50 'ip netns exec "$NB" nft list tables | grep -q fjmps_' ||
	fail "sb's bundled responder installed no table"

create() { # NAME TYPE PARAMS-JSON [STACK]: an experiment sa -> sb (bundled); prints its id
	cat >"$W/$1.json" <<-JSON
	{ "name": "host-$1", "type": "EXPERIMENT_TYPE_$2", $3,
	  "stack": { "stacks": [ "${4:-STACK_BUNDLED}" ] },
	  "targets": { "pairs": [ { "clientAgentId": "$SA", "serverAgentId": "$SB" } ],
		       "localIsps": [ "a", "b" ], "remoteIsps": [ $REMOTE_ISPS ] },
	  "deadlineS": ${DEADLINE_S:-60} }
	JSON
	cli experiments create --file "$W/$1.json" >"$W/create-$1.out" 2>&1 ||
		fail "create $1: $(cat "$W/create-$1.out")"
	sed -n 's/^created experiment \([^ ]*\) .*/\1/p' "$W/create-$1.out"
}
done_runs() { cli runs --experiment "$1" --csv 2>/dev/null | grep "$1" | grep -Eq 'succeeded|failed'; }
wait_runs() { # EXP...: each one's run finished and succeeded
	for e in "$@"; do
		wait_for 600 "done_runs $e" ||
			fail "the run of $e did not finish: $(cli runs --experiment "$e" --csv)"
		cli runs --experiment "$e" --csv | grep "$e" | grep -q succeeded ||
			fail "run of $e did not succeed: $(cli results --experiment "$e" --json)"
	done
}
# metric EXP NAME: the metric's value in the experiment's result.
metric() {
	cli results --experiment "$1" --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
for row in rows:
    for m in row["result"].get("metrics", []):
        if m["name"] == sys.argv[1]:
            print(m.get("value", 0))
' "$2"
}
# check EXP NAME CONDITION: a metric of the result meets the condition.
check() {
	v=$(metric "$1" "$2")
	[ -n "$v" ] || fail "no metric $2 in $1"
	python3 -c "import sys; v = float('$v'); sys.exit(0 if $3 else 1)" || fail "$1: $2 = $v, want $3"
}
# adapter EXP: the provenance's link adapter.
adapter() {
	cli results --experiment "$1" --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
for row in rows:
    for kv in row["result"].get("provenance", {}).get("sysctls", []):
        if kv.get("key") == "libmps.link_adapter":
            print(kv.get("value"))
'
}
