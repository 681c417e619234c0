#!/bin/sh
# make demo: a controller and two agents (sites oslo and bergen) on
# 127.0.0.1, an echo campaign scheduled with the fjord CLI, then its results
# and aggregates. Everything stops at the end unless FJORD_DEMO_KEEP=1, which
# keeps the controller and agents running until Ctrl-C. Builds nothing: make
# demo has built everything already. Run from the repository root.
set -u
. tests/e2e/lib.sh

for b in fjord fjord-controller fjord-agent; do
	[ -x "$FJ_BUILD/$b" ] || fj_die "$FJ_BUILD/$b is not built (run make demo)"
done
fj_tmpdir
unset FJORD_CONTROLLER FJORD_TOKEN http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
FJ_BUILD_REL=$FJ_BUILD
FJ_BUILD=$(cd "$FJ_BUILD" && pwd)
CLI="$FJ_BUILD/fjord"

echo "== Fjord demo: a controller and two agents on 127.0.0.1 (state in $T)"
fj_controller_config
fj_controller_start
export FJORD_CONTROLLER="$FJ_URL"
FJORD_TOKEN=$(fj_token experimenter)
[ -n "$FJORD_TOKEN" ] || fj_die "no token from 'fjord-controller token create'"
export FJORD_TOKEN
echo "controller:  $FJ_URL (config $T/controller.cfg, log $T/controller.log)"
fj_agent_config oslo "$(fj_free_port)"
fj_agent_config bergen "$(fj_free_port)"
fj_agent_start oslo
fj_agent_start bergen
fj_wait_for 30 fj_agents_online 2 || fj_die "the agents did not come online (see $T/agent-*.log)"
echo
echo "\$ fjord agents"
fjord agents

echo
set -- --type echo --all-site-pairs --count 3 --interval 3 --messages 50 --message-bytes 512 \
	--name demo-echo
echo "\$ fjord experiments create $*"
fjord experiments create "$@" --json >"$T/exp.json" || fj_die "could not create the experiment"
EXP=$(fj_json_get "$T/exp.json" id)
TOTAL=$(fj_json_get "$T/exp.json" runsTotal)
echo "created experiment $EXP: $TOTAL runs (both directions, 3 rounds, 3 s apart)"
echo "waiting for the runs to finish..."
fj_wait_for 90 fj_runs_finished "$EXP" "$TOTAL" || {
	fjord runs --experiment "$EXP"
	fj_die "the runs did not finish in time (see $T/*.log)"
}

echo
echo "\$ fjord runs --experiment $EXP"
fjord runs --experiment "$EXP"
echo
echo "\$ fjord results --experiment $EXP"
fjord results --experiment "$EXP"
METRIC=$(fjord results --experiment "$EXP" --csv | head -n 1 | tr ',' '\n' | tr -d '\r' |
	grep '^rtt' | head -n 1)
if [ -n "$METRIC" ]; then
	echo
	echo "\$ fjord aggregate --metric $METRIC --group-by site_pair --experiment $EXP"
	fjord aggregate --metric "$METRIC" --group-by site_pair --experiment "$EXP"
fi
RUN=$(fjord runs --experiment "$EXP" --state succeeded --csv | sed -n 2p | cut -d, -f1)
TRACE=""
[ -n "$RUN" ] && TRACE=$(fjord traces list "$RUN" --csv | sed -n 2p | cut -d, -f1)
if [ -n "$TRACE" ]; then
	echo
	echo "\$ fjord traces list $RUN"
	fjord traces list "$RUN"
fi

cat <<TXT

To dig further (the CLI is $FJ_BUILD_REL/fjord; it needs FJORD_CONTROLLER and FJORD_TOKEN,
which FJORD_DEMO_KEEP=1 prints for this demo's controller):
  fjord experiments show $EXP
  fjord runs --experiment $EXP --json            # every field of every run
  fjord results --experiment $EXP --json         # subflows, samples, events, provenance
  fjord results --site oslo --csv > results.csv  # every metric column
  fjord aggregate --metric ${METRIC:-rtt_p50_us} --group-by stack
  fjord traces get ${RUN:-RUN} ${TRACE:-NAME} -o ${TRACE:-trace}    # checked against its SHA-256
  fjord --help                                   # every command; COMMAND --help for its options
TXT

if [ "${FJORD_DEMO_KEEP:-0}" = 1 ]; then
	cat <<TXT

FJORD_DEMO_KEEP=1: the controller and agents keep running. In another shell:
  export FJORD_CONTROLLER=$FJ_URL
  export FJORD_TOKEN=$FJORD_TOKEN
  alias fjord=$CLI
Press Ctrl-C here to stop everything.
TXT
	trap 'echo; echo "stopping"; exit 0' INT TERM
	while kill -0 "$FJ_CTL_PID" 2>/dev/null; do
		sleep 1
	done
	exit 1
fi
echo
echo "demo done: stopping the controller and agents (FJORD_DEMO_KEEP=1 keeps them)"
