#!/bin/sh
# Benchmark: bulk goodput of the bundled stack (libmps in the agent) against
# the kernel's MPTCP and single-path TCP on the emulated testbed nornet-mini,
# through the real controller and agents: svalbard -> tromso, 5 s uploads,
#
# - one path, uninett -> uninett (svalbard's uplink 50 Mbit/s, 40 ms; the
#   path's RTT about 120 ms): bundled (its default scheduler), kernel MPTCP
#   (whose path manager adds svalbard's other uplinks) and TCP, the three
#   stacks of one experiment, so they take turns on the same links;
# - two paths, uninett and ice -> uninett: bundled with the lowrtt scheduler.
#
# RUNS rounds (FJ_BENCH_RUNS, default 3); each line is one run, then the median
# per row. The agents' bundled buffer caps are their defaults unless
# FJ_BUNDLED_RCVBUF_MAX / FJ_BUNDLED_SNDBUF_MAX are set (bytes; passed on by
# deploy/testbed/agents.sh), e.g. FJ_BUNDLED_RCVBUF_MAX=4194304 for receive
# buffer autotuning up to 4 MiB. Results go to stdout; docs/benchmarks.md records them. Needs root;
# about 3 minutes. Only one testbed per machine: it refuses to start while
# another one is up.
set -u
. tests/e2e/testbed_lib.sh
RUNS=${FJ_BENCH_RUNS:-3}
tbc_begin deploy/testbed/nornet-mini.cfg
SRC=$(tbc_agent svalbard)
DST=$(tbc_agent tromso)

# exp NAME STACKS LOCAL_ISPS SCHEDULER: one 5 s upload experiment; prints its id.
exp()
{
	cat >"$T/$1.json" <<JSON
{ "name": "$1", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": 5 },
  "stack": { "stacks": [ $2 ] $4 },
  "targets": { "pairs": [ { "clientAgentId": "$SRC", "serverAgentId": "$DST" } ],
               "localIsps": [ $3 ], "remoteIsps": [ "uninett" ],
               "families": [ "ADDRESS_FAMILY_IPV4" ] },
  "deadlineS": 300, "pickupS": 290 }
JSON
	tbc_create "$1"
}

ALL=""
for i in $(seq "$RUNS"); do
	ALL="$ALL $(exp "one$i" '"STACK_BUNDLED", "STACK_KERNEL", "STACK_TCP"' '"uninett"' "")"
	ALL="$ALL $(exp "two$i" '"STACK_BUNDLED"' '"uninett", "ice"' ', "scheduler": "lowrtt"')"
done
tbc_wait 280 $ALL
for e in $ALL; do
	cli results --experiment "$e" --json >"$T/res-$e.json" || tbc_die "fjord results $e"
done
python3 - "$T" $ALL <<'PY'
import json, statistics, sys

T = sys.argv[1]
rows = {}
for e in sys.argv[2:]:
    d = json.load(open("%s/res-%s.json" % (T, e)))
    for r in (d.get("rows", []) if isinstance(d, dict) else d):
        run, res = r["run"], r["result"]
        m = {x["name"]: x.get("value", 0) for x in res.get("metrics", [])}
        isps = "+".join(p["localIsp"] for p in run["paths"])
        sched = res.get("provenance", {}).get("scheduler", "")
        label = "%-8s %-12s %-8s" % (run.get("stack", "").replace("STACK_", "").lower(), isps,
                                     sched)
        per = {s.get("localIsp"): int(s.get("bytesAcked", 0)) for s in res.get("subflows", [])}
        g = m.get("goodput_bps", 0) if res.get("ok") else 0
        rows.setdefault(label, []).append(g)
        print("%s %6.1f Mbit/s ok=%s subflows=%d bytes per ISP %s %s" % (
            label, g / 1e6, res.get("ok", False), m.get("subflows_max", 0), per,
            res.get("error", "")))
print()
print("median of %d runs (Mbit/s):" % max(len(v) for v in rows.values()))
for label in sorted(rows):
    print("%s %6.1f" % (label, statistics.median(rows[label]) / 1e6))
PY
tbc_log "agent_bundled bench: done"
