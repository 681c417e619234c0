#!/bin/sh
# kill -9 of the controller in the middle of scheduling and of result and
# trace uploads loses no acknowledged write. Two agents on loopback run a
# periodic echo experiment while the controller is killed and restarted
# several times, at random moments and while uploads are in flight; an
# experiment created (201) right before one kill must survive it. Meanwhile a watcher records every result and trace that
# appears in the agents' spools: an agent removes them only once the
# controller acknowledged them, so once the spools are empty every one of
# them must be stored, and every trace must download with its SHA-256.
# Run from the repository root.
set -u
. tests/e2e/lib.sh

for b in fjord fjord-controller fjord-agent; do
	[ -x "$FJ_BUILD/$b" ] || fj_die "$FJ_BUILD/$b is not built"
done
fj_tmpdir
unset FJORD_CONTROLLER FJORD_TOKEN FJORD_CACERT http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
KILLS=${FJ_KILLS:-5}

fj_controller_config
fj_controller_start
export FJORD_CONTROLLER="$FJ_URL"
FJORD_TOKEN=$(fj_token experimenter)
[ -n "$FJORD_TOKEN" ] || fj_die "no token from 'fjord-controller token create'"
export FJORD_TOKEN
fj_agent_config oslo "$(fj_free_port)"
fj_agent_config bergen "$(fj_free_port)"
fj_agent_start oslo
fj_agent_start bergen
fj_wait_for 30 fj_agents_online 2 || fj_die "the two agents did not come online"

# The watcher: "RUN" for a spooled result, "RUN NAME" for a spooled trace.
(
	while :; do
		for s in oslo bergen; do
			for d in "$T/agent-$s/spool/runs"/*; do
				[ -f "$d/result.pb" ] && echo "${d##*/}"
				for t in "$d"/t.*; do
					[ -f "$t" ] && echo "${d##*/} ${t##*/t.}"
				done
			done
		done
		sleep 0.05
	done
) >"$T/seen.raw" 2>/dev/null &
WATCHER=$!
FJ_PIDS="$FJ_PIDS $WATCHER"

# Runs in both directions every second, each about half a second long;
# generous pickup and deadline so that a run due while the controller is down
# is still picked up after it.
fjord experiments create --type echo --pairs oslo:bergen,bergen:oslo --count 16 --interval 1 \
	--share-links --pickup 60 --deadline 90 --messages 20000 --message-bytes 64 \
	--name chaos --json >"$T/exp-a.json" || fj_die "create failed"
EXP_A=$(fj_json_get "$T/exp-a.json" id)
fj_log "experiment $EXP_A: $(fj_json_get "$T/exp-a.json" runsTotal) runs"

# A run is in progress on an agent when its spool folder has no result yet.
run_in_progress()
{
	for d in "$T"/agent-*/spool/runs/*; do
		[ -d "$d" ] && [ ! -f "$d/result.pb" ] && return 0
	done
	return 1
}

b_round=3
[ "$KILLS" -ge 3 ] || b_round=1 # a random-time round: the controller is not frozen
i=0
while [ $i -lt "$KILLS" ]; do
	i=$((i + 1))
	if [ $((i % 2)) = 1 ]; then
		# At a random point (0.7 to 2.2 s on) of dispatch, polls and uploads.
		sleep "$(python3 -c 'import random; print(round(random.uniform(0.7, 2.2), 2))')"
		how="at a random time"
	else
		# While a run is in progress: freeze the controller so that the
		# run's trace and result uploads are sent and left hanging, then
		# kill it under them.
		fj_wait_for 10 run_in_progress || fj_die "no run in progress to interrupt"
		kill -STOP "$FJ_CTL_PID"
		sleep 1.2
		how="with uploads in flight"
	fi
	if [ $i = "$b_round" ]; then
		fjord experiments create --type echo --pairs oslo:bergen --count 2 --interval 1 \
			--share-links --pickup 60 --deadline 90 --name acked-before-kill \
			--json >"$T/exp-b.json" || fj_die "create B failed"
	fi
	fj_controller_kill9
	fj_log "kill -9 #$i of the controller $how"
	sleep 0.3
	fj_controller_start
done
EXP_B=$(fj_json_get "$T/exp-b.json" id)
TOTAL_A=$(fj_json_get "$T/exp-a.json" runsTotal)
TOTAL_B=$(fj_json_get "$T/exp-b.json" runsTotal)

fjord experiments show "$EXP_B" --json >"$T/show-b.json" ||
	fj_die "experiment $EXP_B, acknowledged before a kill -9, is lost"
[ "$(fj_json_get "$T/show-b.json" runsTotal)" = "$TOTAL_B" ] ||
	fj_die "experiment $EXP_B lost runs: $(cat "$T/show-b.json")"

fj_wait_for 90 fj_runs_finished "$EXP_A" "$TOTAL_A" ||
	{ fjord runs --experiment "$EXP_A"; fj_die "runs of $EXP_A did not finish"; }
fj_wait_for 60 fj_runs_finished "$EXP_B" "$TOTAL_B" ||
	{ fjord runs --experiment "$EXP_B"; fj_die "runs of $EXP_B did not finish"; }
spools_empty()
{
	[ -z "$(ls -A "$T/agent-oslo/spool/runs" "$T/agent-bergen/spool/runs" 2>/dev/null |
		grep -v ':$' | grep .)" ]
}
fj_wait_for 60 spools_empty || {
	for s in oslo bergen; do
		echo "left in the spool of $s:"
		(cd "$T/agent-$s/spool/runs" && ls -l -- */* | sed 's/^/    /')
		echo "last upload messages of $s:"
		grep 'upload' "$T/agent-$s.log" | tail -n 3 | sed 's/^/    /'
	done
	echo "partial uploads held by the controller:"
	ls -l "$T/ctl/partial" 2>/dev/null | sed 's/^/    /'
	for m in "$T"/ctl/partial/*.meta; do
		[ -f "$m" ] || continue
		total=$(cut -d' ' -f1 <"$m")
		held=$(wc -c <"${m%.meta}")
		[ "$held" = "$total" ] && echo "    ${m##*/}: all $total bytes held but the" \
			"upload was never finished (stored); the agent cannot complete it"
	done
	fj_die "the agents' spools did not drain within 60 s of the last run"
}
sleep 0.3
kill -9 "$WATCHER" 2>/dev/null
wait "$WATCHER" 2>/dev/null
fj_pid_drop "$WATCHER"
# The agents also log each acknowledgement: "uploaded result of run R" (with
# " (batch...)" after it when it came in a batch) and "uploaded NAME of run R".
sed -n 's/.* uploaded result of run \([^ ]*\)\( (batch.*)\)\{0,1\}$/\1/p' "$T"/agent-*.log \
	>>"$T/seen.raw"
sed -n 's/.* uploaded \([^ ]*\) of run \([^ ]*\)$/\2 \1/p' "$T"/agent-*.log |
	grep -v '^[^ ]* result$' >>"$T/seen.raw"
sort -u "$T/seen.raw" >"$T/seen"

fjord runs --experiment "$EXP_A" --json >"$T/runs-a.json"
fjord runs --experiment "$EXP_B" --json >"$T/runs-b.json"
fjord results --experiment "$EXP_A" --json >"$T/res-a.json"
fjord results --experiment "$EXP_B" --json >"$T/res-b.json"
fjord runs --experiment "$EXP_A"
: >"$T/traces.list"
for r in $(awk 'NF == 1' "$T/seen"); do
	fjord traces list "$r" --csv | tail -n +2 | tr -d '\r' | cut -d, -f1 |
		sed "s/^/$r /" >>"$T/traces.list" || fj_die "traces list $r"
done
python3 - "$T" <<'PY' || fj_die "an acknowledged write was lost"
import json, os, sys
t = sys.argv[1]
seen = [l.split() for l in open(os.path.join(t, "seen")) if l.strip()]
seen_results = {l[0] for l in seen if len(l) == 1}
seen_traces = {(l[0], l[1]) for l in seen if len(l) == 2}
runs, stored = {}, set()
for x in "ab":
    exp = json.load(open(os.path.join(t, "exp-%s.json" % x)))
    xruns = json.load(open(os.path.join(t, "runs-%s.json" % x))).get("runs", [])
    assert len(xruns) == exp["runsTotal"], "experiment %s has %d runs, created with %d" % (
        exp["id"], len(xruns), exp["runsTotal"])
    for r in xruns:
        runs[r["id"]] = r
    rows = json.load(open(os.path.join(t, "res-%s.json" % x))).get("rows", [])
    ids = [row["result"]["runId"] for row in rows]
    assert len(ids) == len(set(ids)), "a run has two stored results: %s" % sorted(ids)
    stored.update(ids)
traces = {tuple(l.split()) for l in open(os.path.join(t, "traces.list")) if l.strip()}
states = {}
for r in runs.values():
    states[r["state"]] = states.get(r["state"], 0) + 1
print("runs by state:", states)
for r in runs.values():
    if r["state"] != "RUN_STATE_SUCCEEDED":
        print("  run %s: %s: %s" % (r["id"], r["state"], r.get("reason", "")))
print("results seen in spools: %d, stored: %d; traces seen: %d, stored: %d" %
      (len(seen_results), len(stored), len(seen_traces), len(traces)))
assert seen_results, "the watcher saw no spooled result: the test proved nothing"
lost = sorted(seen_results - stored)
assert not lost, "results acknowledged (spooled, then removed) but not stored: %s" % lost
lost = sorted(seen_traces - traces)
assert not lost, "traces acknowledged but not stored: %s" % lost
final = {"RUN_STATE_SUCCEEDED", "RUN_STATE_FAILED", "RUN_STATE_MISSED", "RUN_STATE_CANCELLED"}
assert all(r["state"] in final for r in runs.values()), states
for rid, r in runs.items():
    if r["state"] == "RUN_STATE_SUCCEEDED":
        assert rid in stored, "run %s succeeded without a stored result" % rid
assert states.get("RUN_STATE_SUCCEEDED", 0) > 0, states
PY
# Every stored trace downloads completely; the CLI checks size and SHA-256.
n=0
while read -r r name; do
	fjord traces get "$r" "$name" -o "$T/dl" 2>"$T/dl.err" ||
		{ cat "$T/dl.err"; fj_die "trace $name of run $r is incomplete or corrupt"; }
	n=$((n + 1))
done <"$T/traces.list"
fj_log "$n traces downloaded and verified"
# What the kills interrupted (timing is random, so these are reported, not asserted).
interrupted=$(cat "$T"/agent-*.log | grep -c 'upload of run .* failed')
# The rounds that freeze the controller under a running run always leave an
# upload hanging; a single random-time kill may not.
[ "$interrupted" -gt 0 ] || [ "$KILLS" -lt 2 ] ||
	fj_die "no upload was interrupted: the test proved nothing"
fj_log "uploads interrupted and retried by the agents: $interrupted," \
	"results stored before their ack was lost (duplicates): $(cat "$T"/agent-*.log |
	grep -c 'stored before (duplicate)')," \
	"polls retried: $(cat "$T"/agent-*.log | grep -c 'poll failed')"
fj_log "kill -9 of the controller ($KILLS times): no acknowledged write lost"
