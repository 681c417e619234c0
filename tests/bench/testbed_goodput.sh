#!/bin/sh
# Benchmark: kernel MPTCP bulk goodput over two uplinks on the emulated
# testbed nornet-mini (svalbard: uninett 50 Mbit/s 40 ms + ice 10 Mbit/s 55 ms,
# into tromso's uninett 100 Mbit/s 20 ms), through the real controller and
# agents, as a share of the uplinks' sum, for runs of 5 s and of 10 s, with the
# goodput per second from each run's own subflow samples; then the same 10 s
# runs with every segment of svalbard's uplinks handled alone by the emulator
# (a loss of 1e-6 turns whole GSO packets off) as the side-by-side check that
# the emulator's GSO handling is not what limits them; and 10 s runs with each
# congestion control of FJ_BENCH_CCS (default "cubic reno"; the namespaces'
# own default is the host's, here BBR). Results go to stdout;
# docs/benchmarks.md records them.
#
# Needs root; about 5 minutes. Only one testbed per machine: it refuses to
# start while another one is up.
set -u
. tests/e2e/testbed_lib.sh
RUNS=${FJ_BENCH_RUNS:-3}
CCS=${FJ_BENCH_CCS:-cubic reno}
tbc_begin deploy/testbed/nornet-mini.cfg
SRC=$(tbc_agent svalbard)
DST=$(tbc_agent tromso)

# mp NAME DURATION_S [CC]: one kernel MPTCP upload over svalbard's uninett and ice.
mp()
{
	_cc=""
	[ -n "${3:-}" ] && _cc=", \"congestionControl\": \"$3\""
	cat >"$T/$1.json" <<JSON
{ "name": "$1", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": $2 },
  "stack": { "stacks": [ "STACK_KERNEL" ]$_cc },
  "targets": { "pairs": [ { "clientAgentId": "$SRC", "serverAgentId": "$DST" } ],
               "localIsps": [ "uninett", "ice" ], "remoteIsps": [ "uninett" ],
               "families": [ "ADDRESS_FAMILY_IPV4" ] },
  "deadlineS": 300, "pickupS": 290 }
JSON
	tbc_create "$1"
}

# report LABEL EXP...: goodput, share of the 60 Mbit/s sum, per-second totals.
report()
{
	_label=$1
	shift
	for _e in "$@"; do
		cli results --experiment "$_e" --json >"$T/r.json" || tbc_die "fjord results"
		python3 - "$T/r.json" "$_label" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for r in (d.get("rows", []) if isinstance(d, dict) else d):
    res = r["result"]
    m = {x["name"]: x.get("value", 0) for x in res.get("metrics", [])}
    last, by = {}, {}
    for s in res.get("samples", []):
        by.setdefault(int(s.get("tMs", 0)) // 1000, {})[s.get("subflowId", 0)] = int(
            s.get("bytesAcked", 0))
    secs = []
    for k in sorted(by):
        secs.append("%.1f" % ((sum(by[k].values()) - sum(last.values())) * 8 / 1e6))
        last = by[k]
    per = {s.get("localIsp"): int(s.get("bytesAcked", 0)) for s in res.get("subflows", [])}
    g = m.get("goodput_bps", 0)
    cc = res.get("provenance", {}).get("congestionControl", "?")
    print("%s: %.1f Mbit/s = %.0f%% of 60 (%s, ok=%s, %d ms; per second: %s; bytes per ISP %s)"
          % (sys.argv[2], g / 1e6, 100 * g / 60e6, cc, res.get("ok", False),
             m.get("duration_ms", 0), " ".join(secs), per))
PY
	done
}

SHORT=""
LONG=""
for i in $(seq "$RUNS"); do
	SHORT="$SHORT $(mp "short$i" 5)"
	LONG="$LONG $(mp "long$i" 10)"
done
tbc_wait 280 $SHORT $LONG
report "5 s, GSO packets whole" $SHORT
report "10 s, GSO packets whole" $LONG

tb set svalbard/uninett loss=0.000001 >/dev/null || tbc_die "set loss"
tb set svalbard/ice loss=0.000001 >/dev/null || tbc_die "set loss"
PKT=""
for i in $(seq "$RUNS"); do
	PKT="$PKT $(mp "pkt$i" 10)"
done
tbc_wait 200 $PKT
report "10 s, every segment alone" $PKT

tb set svalbard/uninett loss=0 >/dev/null || tbc_die "set loss"
tb set svalbard/ice loss=0 >/dev/null || tbc_die "set loss"
for cc in $CCS; do
	CCR=""
	for i in $(seq "$RUNS"); do
		CCR="$CCR $(mp "$cc$i" 10 "$cc")"
	done
	tbc_wait 200 $CCR
	report "10 s, $cc" $CCR
done
tb status | grep -A1 "^svalbard/\(uninett\|ice\) up" | grep measured | cut -c1-110
