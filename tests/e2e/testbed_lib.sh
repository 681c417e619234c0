# Shared by tests/e2e/testbed_campaign.sh and tests/e2e/demo_testbed.sh:
# brings up an emulated testbed (fjord-testbed) under a temporary state
# directory, runs the real controller and agents on it
# (deploy/testbed/agents.sh) and always takes everything down again (trap on
# exit), unless TBC_KEEP is set. Sourced from the repo root, not run.

FJ_BUILD=${FJ_BUILD:-build}
TBC_TB=$FJ_BUILD/fjord-testbed
T=""
TBC_UP=""

tbc_die()
{
	echo "FAIL: $*" >&2
	if [ -n "$T" ] && [ -d "$T" ]; then
		for _f in "$T"/state/*.log; do
			[ -f "$_f" ] && { echo "--- $_f" >&2; tail -n 15 "$_f" >&2; }
		done
	fi
	exit 1
}

tbc_log()
{
	echo "[$(date +%H:%M:%S)] $*"
}

tb()
{
	"$TBC_TB" --run-dir "$T/tbrun" "$@"
}

tbc_cleanup()
{
	if [ -n "${TBC_KEEP:-}" ] && [ -n "$TBC_UP" ]; then
		echo "kept up (state in $T): stop with"
		echo "  FJTB_RUN_DIR=$T/tbrun deploy/testbed/agents.sh stop $T/state"
		echo "  $TBC_TB --run-dir $T/tbrun down && rm -rf $T"
		return
	fi
	if [ -n "$TBC_UP" ]; then
		FJTB_RUN_DIR=$T/tbrun FJ_BUILD=$FJ_BUILD sh deploy/testbed/agents.sh stop "$T/state"
		tb down >/dev/null 2>&1 || tb down
	fi
	[ -n "$T" ] && rm -rf "$T"
}

# tbc_begin TOPOLOGY: needs root and the binaries; brings the testbed up,
# starts the controller and one agent per site, waits until they are online.
tbc_begin()
{
	if [ "$(id -u)" != 0 ]; then
		echo "needs root (network namespaces)"
		exit 1
	fi
	for _b in fjord-testbed fjord-linkemu fjord-controller fjord-agent fjord; do
		[ -x "$FJ_BUILD/$_b" ] || tbc_die "missing $FJ_BUILD/$_b: run make"
	done
	unset FJORD_CONTROLLER FJORD_TOKEN http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
	# The namespace names are fixed: a testbed that is up belongs to someone
	# else (ours would be taken down by theirs, or theirs by ours).
	if ip netns list 2>/dev/null | grep -q '^fjtb-'; then
		tbc_die "another testbed is up (namespaces $(ip netns list | grep -o '^fjtb-[a-z0-9-]*' |
			tr '\n' ' ')); only one can run at a time"
	fi
	T=$(mktemp -d "${TMPDIR:-/tmp}/fjord-tbc.XXXXXX") || tbc_die "mktemp"
	trap tbc_cleanup EXIT
	trap 'exit 130' INT TERM
	TBC_UP=1
	tb up "$1" >"$T/up.log" 2>&1 || { cat "$T/up.log" >&2; tbc_die "fjord-testbed up $1"; }
	tb status >"$T/status" 2>&1 || tbc_die "fjord-testbed status"
	FJTB_RUN_DIR=$T/tbrun FJ_BUILD=$FJ_BUILD sh deploy/testbed/agents.sh start "$T/state" ||
		tbc_die "agents.sh start"
	. "$T/state/env"
	TBC_NSITES=$(awk '{ print $1 }' "$T/state/nodes" | sort -u | wc -l)
	_i=0
	while [ "$(cli agents --csv 2>/dev/null | tail -n +2 | cut -d, -f4 | grep -c '^yes$')" -lt \
		"$TBC_NSITES" ]; do
		_i=$((_i + 1))
		[ $_i -lt 100 ] || tbc_die "the agents did not come online: $(cli agents 2>&1)"
		sleep 0.2
	done
}

# cli ARGS: the fjord CLI, run in the controller's namespace (its address is
# reachable only from inside the testbed).
cli()
{
	ip netns exec fjtb-ctl "$FJ_BUILD/fjord" "$@"
}

# tbc_create NAME: creates the experiment from $T/NAME.json; prints its id.
tbc_create()
{
	cli experiments create --file "$T/$1.json" >"$T/create-$1.out" 2>&1 ||
		tbc_die "create $1: $(cat "$T/create-$1.out")"
	sed -n 's/^created experiment \([^ ]*\) .*/\1/p' "$T/create-$1.out"
}

# tbc_unfinished EXP...: prints how many runs of these experiments are not in
# a final state yet.
tbc_unfinished()
{
	_n=0
	for _e in "$@"; do
		# A failed query counts as unfinished, never as done.
		_out=$(cli runs --experiment "$_e" --state pending,waiting_links,dispatched,running \
			--csv) || { echo 1; return; }
		_k=$(printf '%s\n' "$_out" | tail -n +2 | grep -c .)
		_n=$((_n + _k))
	done
	echo $_n
}

# tbc_wait SECONDS EXP...: waits until every run of the experiments is final.
tbc_wait()
{
	_end=$(($(date +%s) + $1))
	shift
	while [ "$(tbc_unfinished "$@")" != 0 ]; do
		tbc_alive
		[ "$(date +%s)" -lt "$_end" ] ||
			tbc_die "runs still unfinished after the wait: $(for e in "$@"; do cli runs --experiment "$e" --state pending,waiting_links,dispatched,running; done)"
		sleep 1
	done
}

# tbc_alive: dies when the testbed's controller namespace is gone (someone
# took the testbed down under us) instead of waiting for it.
tbc_alive()
{
	ip netns list 2>/dev/null | grep -q '^fjtb-ctl' ||
		tbc_die "the testbed was taken down while the campaign ran (namespace fjtb-ctl is gone)"
}

# tbc_agent SITE: the agent (site/node) of that site, as agents.sh runs one per site.
tbc_agent()
{
	awk -v s="$1" '$1 == s { print $1 "/" $2; exit }' "$T/state/nodes"
}
