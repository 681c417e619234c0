#!/bin/sh
# fjord-agent's command line and config errors: exit status and the message
# that names the problem. No network: every case stops before the agent starts.
set -eu

AGENT=${BUILD:-build}/fjord-agent
W=$(mktemp -d /tmp/fjord-agent-cfg.XXXXXX)
trap 'rm -rf "$W"' EXIT INT TERM
fails=0

# expect STATUS PATTERN ARGS...: runs the agent, checks its status and stderr.
expect() {
	want=$1
	pattern=$2
	shift 2
	set +e
	"$AGENT" "$@" >"$W/out" 2>"$W/err"
	got=$?
	set -e
	if [ "$got" != "$want" ] || ! grep -q -- "$pattern" "$W/err" "$W/out"; then
		echo "config_errors: FAIL: fjord-agent $*: status $got (want $want)," \
			"output: $(cat "$W/err" "$W/out")" >&2
		fails=$((fails + 1))
	fi
}

good='controller_url = "http://127.0.0.1:9";
site = "a"; node = "b"; enrollment_secret = "s";
state_dir = "'$W'/state"; spool_dir = "'$W'/spool";
interfaces = ( { name = "lo"; isp = "x"; } );'

# case NAME EXTRA-SETTING PATTERN: the good config plus one line.
case_cfg() {
	printf '%s\n%s\n' "$good" "$2" >"$W/$1.cfg"
	expect 2 "$3" -c "$W/$1.cfg"
}

expect 0 "usage: fjord-agent -c FILE" --help
expect 2 "no configuration file" --once
expect 2 "unknown or incomplete option '--bogus'" -c x --bogus
expect 2 "unknown or incomplete option '-c'" -c
expect 2 "cannot open $W/none.cfg" -c "$W/none.cfg"
case_cfg cap "spool_cap_bytes = 5;" "setting 'spool_cap_bytes': must be between 65536"
case_cfg port "responder_port = 0;" "setting 'responder_port': must be between 1 and 65535"
case_cfg level "log_level = \"chatty\";" "setting 'log_level': must be one of err"
case_cfg typo "spool_cap = 100000;" "setting 'spool_cap': unknown setting"
case_cfg wait "poll_wait_s = \"30\";" "setting 'poll_wait_s': must be an integer"
case_cfg runs "max_runs = 65;" "setting 'max_runs': must be between 1 and 64"
case_cfg dup "interfaces = ( { name = \"lo\"; isp = \"x\"; } );" "syntax error: duplicate setting name"
printf 'site = "a";\n' >"$W/url.cfg"
expect 2 "setting 'controller_url': missing (required)" -c "$W/url.cfg"
printf '%s\n' "$good" | sed 's/isp = "x"/isp = "x y"/' >"$W/isp.cfg"
expect 2 "setting 'interfaces\[0\].isp'" -c "$W/isp.cfg"

[ "$fails" = 0 ] || exit 1
echo "config_errors: ok"
