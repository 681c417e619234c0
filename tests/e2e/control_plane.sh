#!/bin/sh
# End to end on loopback: a controller, two agents (sites oslo and bergen),
# a periodic echo experiment scheduled with the CLI (3 runs, 2 s apart), then
# checks with the CLI that the runs succeeded, the results carry RTT metrics,
# a trace downloads with the SHA-256 of its record, and aggregates work.
# Run from the repository root.
set -u
. tests/e2e/lib.sh

for b in fjord fjord-controller fjord-agent; do
	[ -x "$FJ_BUILD/$b" ] || fj_die "$FJ_BUILD/$b is not built"
done
fj_tmpdir
unset FJORD_CONTROLLER FJORD_TOKEN FJORD_CACERT http_proxy https_proxy HTTP_PROXY HTTPS_PROXY

fj_controller_config
fj_controller_start
export FJORD_CONTROLLER="$FJ_URL"
FJORD_TOKEN=$(fj_token experimenter)
[ -n "$FJORD_TOKEN" ] || fj_die "no token from 'fjord-controller token create'"
export FJORD_TOKEN
fj_log "controller up at $FJ_URL"

fj_agent_config oslo "$(fj_free_port)"
fj_agent_config bergen "$(fj_free_port)"
fj_agent_start oslo
fj_agent_start bergen
fj_wait_for 30 fj_agents_online 2 || {
	fjord agents
	tail -n 20 "$T/agent-oslo.log" "$T/agent-bergen.log"
	fj_die "the two agents did not come online"
}
fj_log "agents online:"
fjord agents

fjord experiments create --type echo --pairs oslo:bergen --count 3 --interval 2 \
	--messages 20 --message-bytes 200 --name e2e-echo --json >"$T/exp.json" ||
	fj_die "experiments create failed"
EXP=$(fj_json_get "$T/exp.json" id)
[ -n "$EXP" ] || fj_die "no experiment id in the answer"
fj_log "experiment $EXP created"
[ "$(fj_json_get "$T/exp.json" runsTotal)" = 3 ] || fj_die "expected 3 runs: $(cat "$T/exp.json")"

# 3 runs 2 s apart: done after about 5 s plus the echo time.
fj_wait_for 60 fj_runs_finished "$EXP" 3 || {
	fjord runs --experiment "$EXP"
	tail -n 30 "$T/agent-oslo.log" "$T/controller.log"
	fj_die "the runs did not finish"
}
fjord runs --experiment "$EXP"
n=$(fjord runs --experiment "$EXP" --state succeeded --csv | tail -n +2 | grep -c .)
[ "$n" = 3 ] || fj_die "expected 3 succeeded runs, got $n"

# Filters go through to the controller's query.
count_runs()
{
	fjord runs --experiment "$EXP" --csv "$@" | tail -n +2 | grep -c .
}
for f in "--site oslo:3" "--site bergen:3" "--site nowhere:0" "--isp loopnet:3" \
	"--isp telenor:0" "--family ipv4:3" "--family ipv6:0" "--stack kernel:3" \
	"--stack bundled:0" "--state failed,missed:0" "--limit 2:2" "--offset 2:1" \
	"--from +1h:0" "--to 1000:0" "--to +1h:3"; do
	want=${f##*:}
	# shellcheck disable=SC2086
	got=$(count_runs ${f%:*})
	[ "$got" = "$want" ] || fj_die "fjord runs --experiment $EXP ${f%:*}: $got runs, expected $want"
done

fjord runs --experiment "$EXP" --limit 2 2>&1 >/dev/null | grep -q "more may match" ||
	fj_die "a full page is not pointed out"
fjord runs --experiment "$EXP" --limit 3 --offset 1 2>&1 >/dev/null | grep -q "more may match" &&
	fj_die "a partial page is pointed out as full"

# Results: 3 rows, each ok, each with RTT metrics; the same in CSV.
fjord results --experiment "$EXP" --json >"$T/results.json" || fj_die "results --json failed"
python3 - "$T/results.json" <<'PY' || fj_die "results are not what the runs should give"
import json, sys
rows = json.load(open(sys.argv[1])).get("rows", [])
assert len(rows) == 3, "expected 3 result rows, got %d" % len(rows)
for r in rows:
    res = r["result"]
    assert res.get("ok"), "run %s not ok: %s" % (res.get("runId"), res.get("error"))
    names = {m["name"]: m.get("value", 0) for m in res.get("metrics", [])}
    rtt = [n for n in names if n.startswith("rtt")]
    assert rtt, "run %s has no rtt metric: %s" % (res["runId"], sorted(names))
    for n in rtt:
        assert 0 <= float(names[n]) < 1e7, "%s = %s is not a loopback RTT" % (n, names[n])
    assert max(float(names[n]) for n in rtt) > 0, "all RTTs are zero: %s" % names
    assert r["run"]["clientSite"] == "oslo" and r["run"]["serverSite"] == "bergen"
PY
fjord results --experiment "$EXP" --table | tee "$T/results.txt"
grep -q "^RUN .*rtt" "$T/results.txt" || fj_die "the results table has no rtt column"
[ "$(grep -c "oslo->bergen" "$T/results.txt")" = 3 ] || fj_die "results table rows"
fjord results --experiment "$EXP" --csv >"$T/results.csv" || fj_die "results --csv failed"
python3 - "$T/results.csv" <<'PY' || fj_die "results CSV"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
assert len(rows) == 3, len(rows)
assert all(r["OK"] == "yes" for r in rows)
assert any(k.startswith("rtt") for k in rows[0]), rows[0].keys()
PY

# Traces: one of the runs' uploads, downloaded and checked against its record.
RUN=$(fjord runs --experiment "$EXP" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["runs"][0]["id"])')
fj_wait_for 20 fj_has_trace "$RUN" || fj_die "run $RUN has no trace"
fjord traces list "$RUN"
fjord traces list "$RUN" --json >"$T/traces.json"
NAME=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["traces"][0]["name"])' \
	"$T/traces.json")
SHA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["traces"][0]["sha256"])' \
	"$T/traces.json")
fjord traces get "$RUN" "$NAME" -o "$T/trace.bin" || fj_die "traces get failed"
got=$(sha256sum "$T/trace.bin" | cut -d' ' -f1)
[ "$got" = "$SHA" ] || fj_die "trace SHA-256 $got, record says $SHA"
fj_log "trace $NAME of run $RUN: $(wc -c <"$T/trace.bin") bytes, SHA-256 matches"

# Aggregates over the rtt metric the results carry.
METRIC=$(python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
names = sorted(m["name"] for m in rows[0]["result"]["metrics"] if m["name"].startswith("rtt"))
print("rtt_p50_us" if "rtt_p50_us" in names else names[0])' \
	"$T/results.json")
fjord aggregate --metric "$METRIC" --group-by site_pair --experiment "$EXP" | tee "$T/agg.txt"
fjord aggregate --metric "$METRIC" --group-by site_pair --experiment "$EXP" --json >"$T/agg.json" ||
	fj_die "aggregate failed"
python3 - "$T/agg.json" "$T/results.json" "$METRIC" <<'PY' || fj_die "aggregate is wrong"
import json, statistics, sys
agg = json.load(open(sys.argv[1]))
rows = json.load(open(sys.argv[2]))["rows"]
vals = sorted(float(m["value"]) for r in rows for m in r["result"]["metrics"]
              if m["name"] == sys.argv[3])
assert len(agg["rows"]) == 1, agg
a = agg["rows"][0]
assert a["group"] == "oslo->bergen", a
assert int(a["count"]) == 3, a
assert abs(float(a["mean"]) - statistics.mean(vals)) <= 1e-6 * max(1, abs(statistics.mean(vals))), (a, vals)
assert float(a["min"]) == vals[0] and float(a["max"]) == vals[-1], (a, vals)
PY
fjord aggregate --metric "$METRIC" --group-by stack --experiment "$EXP" --csv |
	grep -q "^kernel,3," || fj_die "aggregate by stack"

fjord experiments show "$EXP" --json >"$T/show.json" || fj_die "experiments show"
[ "$(fj_json_get "$T/show.json" runsDone)" = 3 ] || fj_die "runsDone: $(cat "$T/show.json")"
[ "$(fj_json_get "$T/show.json" state)" = EXPERIMENT_STATE_DONE ] ||
	fj_die "experiment not done: $(cat "$T/show.json")"
fjord experiments list | grep -q "$EXP" || fj_die "experiments list lacks $EXP"
# The other types' flags reach the agents: a bulk transfer and request/response.
fjord experiments create --type bulk --pairs oslo:bergen --bytes 4MiB --direction download \
	--name e2e-bulk --json >"$T/bulk.json" || fj_die "create bulk"
fjord experiments create --type rr --pairs bergen:oslo --request-bytes 64 --response-bytes 512 \
	--rate 50 --duration 1 --name e2e-rr --json >"$T/rr.json" || fj_die "create rr"
BULK=$(fj_json_get "$T/bulk.json" id)
RR=$(fj_json_get "$T/rr.json" id)
fj_wait_for 60 fj_runs_finished "$BULK" 1 || fj_die "the bulk run did not finish"
fj_wait_for 60 fj_runs_finished "$RR" 1 || fj_die "the rr run did not finish"
fjord results --experiment "$BULK" --json >"$T/bulk-res.json"
fjord results --experiment "$RR" --json >"$T/rr-res.json"
python3 - "$T/bulk-res.json" "$T/rr-res.json" <<'PY' || fj_die "bulk or rr results"
import json, sys
for f, metric in ((sys.argv[1], "goodput_bps"), (sys.argv[2], "transactions")):
    rows = json.load(open(f))["rows"]
    assert len(rows) == 1, rows
    res = rows[0]["result"]
    assert res.get("ok"), res.get("error")
    m = {x["name"]: x.get("value", 0) for x in res.get("metrics", [])}
    assert float(m.get(metric, 0)) > 0, (metric, m)
PY
fjord results --experiment "$BULK"

fj_log "control plane end to end: ok"
