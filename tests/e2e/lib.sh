# Shared helpers for the CLI and end-to-end scripts: a temporary directory,
# a controller and agents on 127.0.0.1, user tokens. Sourced, not run. Every
# process started here is killed and the directory removed on exit.

FJ_BUILD=${FJ_BUILD:-build}
FJ_PIDS=""
T=""

fj_die()
{
	echo "FAIL: $*" >&2
	exit 1
}

fj_log()
{
	echo "[$(date +%H:%M:%S)] $*"
}

fj_cleanup()
{
	for _fj_p in $FJ_PIDS; do
		kill -9 "$_fj_p" 2>/dev/null
	done
	for _fj_p in $FJ_PIDS; do
		wait "$_fj_p" 2>/dev/null
	done
	if [ -n "$T" ] && [ -z "${FJ_KEEP_TMP:-}" ]; then
		rm -rf "$T"
	fi
}

fj_tmpdir()
{
	T=$(mktemp -d "${TMPDIR:-/tmp}/fjord-test.XXXXXX") || fj_die "mktemp"
	trap fj_cleanup EXIT
	trap 'exit 130' INT TERM
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
fj_free_port()
{
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

fj_pid_drop()
{
	_fj_np=""
	for _fj_p in $FJ_PIDS; do
		[ "$_fj_p" = "$1" ] || _fj_np="$_fj_np $_fj_p"
	done
	FJ_PIDS=$_fj_np
}

# Secrets of the two test sites (the controller wants at least 16 characters).
FJ_SECRET_OSLO=oslo-enrollment-secret-1
FJ_SECRET_BERGEN=bergen-enrollment-secret-2

# fj_controller_config: writes $T/controller.cfg for 127.0.0.1:$FJ_PORT with
# its data in $T/ctl (kept across restarts).
fj_controller_config()
{
	[ -n "${FJ_PORT:-}" ] || FJ_PORT=$(fj_free_port)
	FJ_URL="http://127.0.0.1:$FJ_PORT"
	_fj_tls=""
	if [ -n "${FJ_TLS_CERT:-}" ]; then
		# https with this certificate and key (FJ_TLS_KEY).
		FJ_URL="https://127.0.0.1:$FJ_PORT"
		_fj_tls="tls_cert = \"$FJ_TLS_CERT\"; tls_key = \"$FJ_TLS_KEY\";"
	fi
	mkdir -p "$T/ctl"
	cat >"$T/controller.cfg" <<CFG
$_fj_tls
listen = "127.0.0.1";
port = $FJ_PORT;
data_dir = "$T/ctl";
long_poll_max_s = 5;
log_level = "info";
sites = (
	{ name = "oslo"; secret = "$FJ_SECRET_OSLO"; },
	{ name = "bergen"; secret = "$FJ_SECRET_BERGEN"; }
);
CFG
}

fj_wait_healthy()
{
	_fj_i=0
	while ! curl -fsS -o /dev/null --max-time 2 ${FJ_TLS_CERT:+--cacert "$FJ_TLS_CERT"} \
		"$FJ_URL/healthz" 2>/dev/null; do
		_fj_i=$((_fj_i + 1))
		if [ $_fj_i -gt 100 ] || ! kill -0 "$FJ_CTL_PID" 2>/dev/null; then
			tail -n 20 "$T/controller.log" >&2
			fj_die "controller did not come up on $FJ_URL"
		fi
		sleep 0.1
	done
}

# Starts the controller (appending to $T/controller.log); sets FJ_CTL_PID.
fj_controller_start()
{
	[ -f "$T/controller.cfg" ] || fj_controller_config
	"$FJ_BUILD/fjord-controller" -c "$T/controller.cfg" >>"$T/controller.log" 2>&1 &
	FJ_CTL_PID=$!
	FJ_PIDS="$FJ_PIDS $FJ_CTL_PID"
	fj_wait_healthy
}

fj_controller_stop()
{
	kill -TERM "$FJ_CTL_PID" 2>/dev/null
	wait "$FJ_CTL_PID" 2>/dev/null
	fj_pid_drop "$FJ_CTL_PID"
}

fj_controller_kill9()
{
	kill -9 "$FJ_CTL_PID" 2>/dev/null
	wait "$FJ_CTL_PID" 2>/dev/null
	fj_pid_drop "$FJ_CTL_PID"
}

# Prints a new user API token with role $1.
fj_token()
{
	"$FJ_BUILD/fjord-controller" -c "$T/controller.cfg" token create --role "$1" \
		--name "test-$1" 2>>"$T/controller.log" | tail -n 1
}

# fj_agent_config SITE RESPONDER_PORT: writes $T/agent-SITE.cfg. Both agents
# run on this host, so their interfaces are the loopback device under two ISP
# labels each, and their responders listen on different ports.
fj_agent_config()
{
	_fj_site=$1
	case $_fj_site in
	oslo) _fj_secret=$FJ_SECRET_OSLO ;;
	bergen) _fj_secret=$FJ_SECRET_BERGEN ;;
	*) fj_die "no secret for site $_fj_site" ;;
	esac
	mkdir -p "$T/agent-$_fj_site/state" "$T/agent-$_fj_site/spool"
	cat >"$T/agent-$_fj_site.cfg" <<CFG
controller_url = "$FJ_URL";
site = "$_fj_site";
node = "node1";
enrollment_secret = "$_fj_secret";
state_dir = "$T/agent-$_fj_site/state";
spool_dir = "$T/agent-$_fj_site/spool";
poll_wait_s = 5;
responder_port = $2;
responder_addresses = [ "127.0.0.1" ];
backoff_base_ms = 100;
backoff_max_ms = 1000;
log_level = "info";
interfaces = (
	{ name = "lo"; isp = "loopnet"; link_type = "emulated"; }
);
CFG
}

# fj_agent_start SITE: starts the agent of SITE; sets FJ_AGENT_PID_SITE.
fj_agent_start()
{
	"$FJ_BUILD/fjord-agent" -c "$T/agent-$1.cfg" >>"$T/agent-$1.log" 2>&1 &
	eval "FJ_AGENT_PID_$1=$!"
	FJ_PIDS="$FJ_PIDS $!"
}

# fj_wait_for SECONDS CMD...: retries CMD every 0.5 s until it succeeds.
fj_wait_for()
{
	_fj_end=$(($(date +%s) + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$_fj_end" ] || return 1
		sleep 0.5
	done
	return 0
}

# fjord runs the CLI of this build.
fjord()
{
	"$FJ_BUILD/fjord" "$@"
}

# fj_json_get FILE KEY: a top-level member of a JSON object, printed plainly.
fj_json_get()
{
	python3 -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2], "")
print(v if not isinstance(v, bool) else str(v).lower())' "$1" "$2"
}

# fj_agents_online N: true when at least N agents are online.
fj_agents_online()
{
	[ "$(fjord agents --csv | tail -n +2 | cut -d, -f4 | grep -c '^yes$')" -ge "$1" ]
}

# fj_runs_finished EXP N: true when N runs of EXP are in a final state.
fj_runs_finished()
{
	[ "$(fjord runs --experiment "$1" --state succeeded,failed,missed,cancelled --csv |
		tail -n +2 | grep -c .)" -ge "$2" ]
}

# fj_has_trace RUN: true when RUN has at least one uploaded trace.
fj_has_trace()
{
	[ "$(fjord traces list "$1" --csv | tail -n +2 | grep -c .)" -ge 1 ]
}
