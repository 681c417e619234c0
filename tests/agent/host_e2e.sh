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

PREFIX=fjhe
. tests/agent/host_env.sh

UP=$(create up BULK '"bulk": { "durationS": 1 }')
DOWN=$(create down BULK '"bulk": { "durationS": 1, "direction": "DIRECTION_DOWNLOAD" }')
RR=$(create rr RR '"rr": { "requestBytes": 100, "responseBytes": 2000, "ratePerS": 50, "durationS": 1 }')
wait_runs "$UP" "$DOWN" "$RR"
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
