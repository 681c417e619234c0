#!/bin/sh
# The bundled stack on the nodes' own addresses (agent setting bundled_host)
# end to end: the real fjord-controller and two fjord-agents in two network
# namespaces of this script joined by two veth "ISPs" (a: 10.89.1.0/24, b:
# 10.89.2.0/24, a policy route per address), no TUN device. Bundled bulk
# experiments (upload and download, client ISPs a and b to the server's a)
# and an rr one are created through the CLI; each run succeeds with every
# byte checked, two subflows, provenance libmps.link_adapter = host. Once the
# agents are stopped no nftables table of the host adapter is left in either
# namespace, and the namespaces go on exit. Needs root, nft and kernel MPTCP
# (for the agents' kernel responders); skipped otherwise.
set -eu
export no_proxy=10.89.1.1,127.0.0.1 NO_PROXY=10.89.1.1,127.0.0.1

NAME=host_e2e
B=${BUILD:-build}
AGENT=$B/fjord-agent
CTL=$B/fjord-controller
CLI=$B/fjord
PATH=$PATH:/usr/sbin:/sbin
[ -x "$AGENT" ] || { echo "$NAME: build $AGENT first" >&2; exit 1; }
if [ "$(id -u)" != 0 ] || ! command -v nft >/dev/null 2>&1 || [ ! -x "$CTL" ] ||
	[ ! -x "$CLI" ] || [ "$(cat /proc/sys/net/mptcp/enabled 2>/dev/null)" != 1 ]; then
	echo "$NAME: SKIP (needs root, nft, kernel MPTCP and the controller and CLI built)"
	exit 0
fi

NA=fjhe-a-$$
NB=fjhe-b-$$
W=$(mktemp -d /tmp/fjord-host-e2e.XXXXXX)
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

create() { # NAME TYPE PARAMS-JSON: a bundled experiment sa -> sb; prints its id
	cat >"$W/$1.json" <<-JSON
	{ "name": "host-$1", "type": "EXPERIMENT_TYPE_$2", $3,
	  "stack": { "stacks": [ "STACK_BUNDLED" ] },
	  "targets": { "pairs": [ { "clientAgentId": "$SA", "serverAgentId": "$SB" } ],
		       "localIsps": [ "a", "b" ], "remoteIsps": [ "a" ] },
	  "deadlineS": 60 }
	JSON
	cli experiments create --file "$W/$1.json" >"$W/create-$1.out" 2>&1 ||
		fail "create $1: $(cat "$W/create-$1.out")"
	sed -n 's/^created experiment \([^ ]*\) .*/\1/p' "$W/create-$1.out"
}
UP=$(create up BULK '"bulk": { "durationS": 1 }')
DOWN=$(create down BULK '"bulk": { "durationS": 1, "direction": "DIRECTION_DOWNLOAD" }')
RR=$(create rr RR '"rr": { "requestBytes": 100, "responseBytes": 2000, "ratePerS": 50, "durationS": 1 }')

done_runs() { cli runs --experiment "$1" --csv 2>/dev/null | grep "$1" | grep -Eq 'succeeded|failed'; }
for e in "$UP" "$DOWN" "$RR"; do
	wait_for 300 "done_runs $e" || fail "the run of $e did not finish: $(cli runs --experiment "$e" --csv)"
	cli runs --experiment "$e" --csv | grep "$e" | grep -q succeeded ||
		fail "run of $e did not succeed: $(cli results --experiment "$e" --json)"
done
# check EXP NAME CONDITION: a metric of the result meets the condition.
check() {
	v=$(cli results --experiment "$1" --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
for row in rows:
    for m in row["result"].get("metrics", []):
        if m["name"] == sys.argv[1]:
            print(m.get("value", 0))
' "$2")
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
for e in "$UP" "$DOWN"; do
	check "$e" sha256_ok "v == 1"
	check "$e" bytes "v > 1000000"
	check "$e" subflows_max "v == 2"
	check "$e" fallback "v == 0"
done
check "$RR" transactions "v >= 45"
check "$RR" subflows_max "v == 2"
for e in "$UP" "$DOWN" "$RR"; do
	[ "$(adapter "$e")" = host ] || fail "$e: provenance link adapter '$(adapter "$e")', want host"
done
RUN=$(cli runs --experiment "$UP" --csv | grep "$UP" | cut -d, -f1 | head -1)
cli traces list "$RUN" | grep -q capture.pcap || fail "no capture.pcap trace for $RUN"

# SIGTERM: each agent stops its bundled responder, which deletes its table.
kill "$PIDA" "$PIDB"
wait_for 50 '! kill -0 "$PIDA" 2>/dev/null && ! kill -0 "$PIDB" 2>/dev/null' ||
	fail "the agents did not stop"
for ns in "$NA" "$NB"; do
	left=$(ip netns exec "$ns" nft list tables | grep -c fjmps_ || true)
	[ "$left" = 0 ] || fail "$left host adapter table(s) left in $ns"
done
echo "$NAME: ok: bundled bulk both ways and rr over the host adapter through fjord-controller"
