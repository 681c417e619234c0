#!/bin/sh
# agents.sh: runs the real fjord-controller and one fjord-agent per node on an
# emulated testbed that `fjord-testbed up` has brought up, and sets up the
# kernel's MPTCP path manager in every site so that runs use every ISP.
#
#   deploy/testbed/agents.sh start DIR [PORT]   controller + agents, state in DIR
#   deploy/testbed/agents.sh stop DIR           ends what start started (by pid)
#   deploy/testbed/agents.sh mptcp              only the MPTCP endpoints/limits
#   deploy/testbed/agents.sh nodes              "site node isp dev v4 v6 ..." per uplink
#
# Everything it learns about the topology comes from `fjord-testbed status`
# (sites, nodes, ISPs, each node's kernel addresses), so it works for any
# topology file. start writes DIR/controller.cfg, DIR/agent-NODE.cfg, their
# logs and state, DIR/token (an admin API token) and DIR/env (FJORD_CONTROLLER
# and FJORD_TOKEN for the CLI, to source). Processes run inside the testbed's
# namespaces; `fjord-testbed down` ends them too.
#
# Environment: FJ_BUILD (default build), FJTB (default $FJ_BUILD/fjord-testbed),
# FJTB_RUN_DIR (fjord-testbed --run-dir, when the testbed was brought up with
# one), FJ_RESPONDER_PORT (default 7470), FJ_BUNDLED_RCVBUF_MAX and
# FJ_BUNDLED_SNDBUF_MAX (the agents' bundled_rcvbuf_max / bundled_sndbuf_max;
# unset: the agent's defaults), FJ_BUNDLED_OFFLOADS (true or false: the
# agents' bundled_offloads; unset: the agent's default).
set -u

FJ_BUILD=${FJ_BUILD:-build}
FJ_BUILD=$(cd "$FJ_BUILD" && pwd) || exit 2
FJTB=${FJTB:-$FJ_BUILD/fjord-testbed}
RPORT=${FJ_RESPONDER_PORT:-7470}
TB_HOOK="$FJTB${FJTB_RUN_DIR:+ --run-dir $FJTB_RUN_DIR}"

tb()
{
	"$FJTB" ${FJTB_RUN_DIR:+--run-dir "$FJTB_RUN_DIR"} "$@"
}

die()
{
	echo "agents.sh: $*" >&2
	exit 1
}

# nodes: one line "site node isp dev v4 v6 b4 b6 btun r4 r6 rtun" per node and
# uplink, from status: kernel addresses, then the bundled stack's addresses and
# TUN, then its responder's ("-" where status shows none).
nodes()
{
	tb status 2>/dev/null | awk '
		/^site / { site = $2; sub(":", "", site) }
		/^  node / && / kernel / {
			node = $2; isp = $4
			dev = $0; sub(/.*\(dev /, "", dev); sub(/,.*/, "", dev)
			b4 = b6 = bt = r4 = r6 = rt = "-"
			for (i = 1; i <= NF; i++) {
				if ($i == "kernel") { v4 = $(i + 1); v6 = $(i + 2) }
				if ($i == "bundled") { b4 = $(i + 1); b6 = $(i + 2); bt = $(i + 4) }
				if ($i == "responder") { r4 = $(i + 1); r6 = $(i + 2); rt = $(i + 4) }
			}
			print site, node, isp, dev, v4, v6, b4, b6, bt, r4, r6, rt
		}'
}

# controller_addr: the controller's IPv4 address from status.
controller_addr()
{
	tb status 2>/dev/null | awk '/^controller:/ { print $4; exit }'
}

# mptcp: in every site, every kernel address of the site's first node becomes
# an MPTCP endpoint with the flags "subflow signal": as a client the node
# opens a subflow from each of its other uplinks, as a server it announces
# them (ADD_ADDR). Only the first node's addresses, because the nodes of a
# site share one namespace and endpoints are per namespace: endpoints for
# every node would open several subflows over one uplink. Limits: 8 subflows
# and 8 accepted ADD_ADDRs (the kernel's maximum).
mptcp()
{
	nodes >"${TMPDIR:-/tmp}/fjtb-nodes.$$" || die "fjord-testbed status failed"
	[ -s "${TMPDIR:-/tmp}/fjtb-nodes.$$" ] || die "no testbed is up (fjord-testbed status shows no node)"
	_sites=$(awk '{ print $1 }' "${TMPDIR:-/tmp}/fjtb-nodes.$$" | uniq)
	for _s in $_sites; do
		_ns=fjtb-$_s
		_first=$(awk -v s="$_s" '$1 == s { print $2; exit }' "${TMPDIR:-/tmp}/fjtb-nodes.$$")
		ip -n "$_ns" mptcp endpoint flush || die "$_ns: ip mptcp endpoint flush failed"
		ip -n "$_ns" mptcp limits set subflows 8 add_addr_accepted 8 ||
			die "$_ns: ip mptcp limits set failed"
		awk -v s="$_s" -v n="$_first" '$1 == s && $2 == n { print $4, $5, $6 }' \
			"${TMPDIR:-/tmp}/fjtb-nodes.$$" | while read -r _dev _v4 _v6; do
			for _a in $_v4 $_v6; do
				ip -n "$_ns" mptcp endpoint add "$_a" dev "$_dev" subflow signal ||
					die "$_ns: ip mptcp endpoint add $_a dev $_dev failed"
			done
		done || exit 1
	done
	rm -f "${TMPDIR:-/tmp}/fjtb-nodes.$$"
}

# secret SITE: a per-site enrollment secret for this run (not a real secret:
# the controller is only reachable inside the testbed).
secret()
{
	echo "fjord-testbed-$1-$(cat "$DIR/salt")"
}

start()
{
	DIR=$1
	PORT=${2:-8420}
	mkdir -p "$DIR" || die "cannot create $DIR"
	DIR=$(cd "$DIR" && pwd)
	nodes >"$DIR/nodes" || die "fjord-testbed status failed"
	[ -s "$DIR/nodes" ] || die "no testbed is up (fjord-testbed status shows no node)"
	CADDR=$(controller_addr)
	[ -n "$CADDR" ] || die "no controller address in fjord-testbed status"
	od -An -N8 -tx1 /dev/urandom | tr -d ' \n' >"$DIR/salt"
	mptcp

	{
		echo "listen = \"0.0.0.0\";"
		echo "port = $PORT;"
		echo "data_dir = \"$DIR/ctl\";"
		echo "long_poll_max_s = 5;"
		echo "log_level = \"info\";"
		echo "sites = ("
		_sep=""
		for _s in $(awk '{ print $1 }' "$DIR/nodes" | uniq); do
			printf '%s\t{ name = "%s"; secret = "%s"; }' "$_sep" "$_s" "$(secret "$_s")"
			_sep=",
"
		done
		echo
		echo ");"
	} >"$DIR/controller.cfg"
	ip netns exec fjtb-ctl "$FJ_BUILD/fjord-controller" -c "$DIR/controller.cfg" \
		>>"$DIR/controller.log" 2>&1 &
	echo $! >"$DIR/controller.pid"
	URL="http://$CADDR:$PORT"
	_i=0
	until ip netns exec fjtb-ctl curl -fsS -o /dev/null --max-time 2 "$URL/healthz" 2>/dev/null; do
		_i=$((_i + 1))
		if [ $_i -gt 100 ] || ! kill -0 "$(cat "$DIR/controller.pid")" 2>/dev/null; then
			tail -n 20 "$DIR/controller.log" >&2
			die "the controller did not come up on $URL"
		fi
		sleep 0.1
	done
	"$FJ_BUILD/fjord-controller" -c "$DIR/controller.cfg" token create --role admin \
		--name testbed 2>>"$DIR/controller.log" | tail -n 1 >"$DIR/token"
	[ -s "$DIR/token" ] || die "token create failed (see $DIR/controller.log)"
	# The CLI runs on the host and reaches the controller through its namespace's
	# address only from inside; fjtb_cli in the test scripts wraps that.
	printf 'FJORD_CONTROLLER=%s\nFJORD_TOKEN=%s\nexport FJORD_CONTROLLER FJORD_TOKEN\n' \
		"$URL" "$(cat "$DIR/token")" >"$DIR/env"

	# One agent per site, on its first node. The nodes of a site share one
	# namespace in fjord-testbed: a second agent there would see the other
	# node's addresses on the same interfaces and could not have the
	# responder port (the same on every agent) on its own addresses, because
	# the agent takes at most 4 responder_addresses (a node on 3 ISPs has 6).
	for _n in $(awk '!seen[$1]++ { print $2 }' "$DIR/nodes"); do
		_s=$(awk -v n="$_n" '$2 == n { print $1; exit }' "$DIR/nodes")
		mkdir -p "$DIR/$_n/state" "$DIR/$_n/spool"
		{
			echo "controller_url = \"$URL\";"
			echo "site = \"$_s\";"
			echo "node = \"$_n\";"
			echo "enrollment_secret = \"$(secret "$_s")\";"
			echo "state_dir = \"$DIR/$_n/state\";"
			echo "spool_dir = \"$DIR/$_n/spool\";"
			echo "poll_wait_s = 5;"
			echo "responder_port = $RPORT;"
			echo "max_runs = 2;"
			echo "run_deadline_s = 120;"
			echo "backoff_base_ms = 100;"
			echo "backoff_max_ms = 1000;"
			echo "log_level = \"info\";"
			echo "interfaces = ("
			# The bundled stack's addresses per ISP (docs/testbed.md, address plan).
			awk -v n="$_n" '$2 == n {
				b = ""
				if ($7 != "-") b = b sprintf(" bundled_ipv4 = \"%s\";", $7)
				if ($8 != "-") b = b sprintf(" bundled_ipv6 = \"%s\";", $8)
				if ($10 != "-") b = b sprintf(" bundled_responder_ipv4 = \"%s\";", $10)
				if ($11 != "-") b = b sprintf(" bundled_responder_ipv6 = \"%s\";", $11)
				printf "%s\t{ name = \"%s\"; isp = \"%s\"; link_type = \"emulated\";%s }", sep, $4, $3, b
				sep = ",\n" }' "$DIR/nodes"
			echo
			echo ");"
			awk -v n="$_n" '$2 == n && $9 != "-" { printf "bundled_tun = \"%s\";\n", $9; exit }' "$DIR/nodes"
			awk -v n="$_n" '$2 == n && $12 != "-" { printf "bundled_responder_tun = \"%s\";\n", $12; exit }' "$DIR/nodes"
			[ -z "${FJ_BUNDLED_RCVBUF_MAX:-}" ] ||
				echo "bundled_rcvbuf_max = $FJ_BUNDLED_RCVBUF_MAX;"
			[ -z "${FJ_BUNDLED_SNDBUF_MAX:-}" ] ||
				echo "bundled_sndbuf_max = $FJ_BUNDLED_SNDBUF_MAX;"
			[ -z "${FJ_BUNDLED_OFFLOADS:-}" ] ||
				echo "bundled_offloads = $FJ_BUNDLED_OFFLOADS;"
		} >"$DIR/agent-$_n.cfg"
		# Handover runs change links through the emulator (docs/experiments.md).
		FJORD_LINK_HOOK="$TB_HOOK set {site}/{isp} {action}" \
			ip netns exec "fjtb-$_s" "$FJ_BUILD/fjord-agent" -c "$DIR/agent-$_n.cfg" \
			>>"$DIR/agent-$_n.log" 2>&1 &
		echo $! >"$DIR/agent-$_n.pid"
	done
}

stop()
{
	DIR=$1
	for _f in "$DIR"/agent-*.pid "$DIR"/controller.pid; do
		[ -f "$_f" ] || continue
		kill -TERM "$(cat "$_f")" 2>/dev/null
	done
	sleep 0.3
	for _f in "$DIR"/agent-*.pid "$DIR"/controller.pid; do
		[ -f "$_f" ] || continue
		kill -9 "$(cat "$_f")" 2>/dev/null
		rm -f "$_f"
	done
	return 0
}

case ${1:-} in
start)
	[ $# -ge 2 ] || die "usage: agents.sh start DIR [PORT]"
	start "$2" "${3:-8420}"
	;;
stop)
	[ $# -ge 2 ] || die "usage: agents.sh stop DIR"
	stop "$2"
	;;
mptcp) mptcp ;;
nodes) nodes ;;
*)
	echo "usage: agents.sh start DIR [PORT] | stop DIR | mptcp | nodes" >&2
	exit 2
	;;
esac
