#!/bin/sh
# make demo (issue 5): brings up the emulated testbed nornet-mini, the real
# controller and one agent per site (deploy/testbed/agents.sh), schedules a
# campaign with the fjord CLI, waits for it and prints what it found:
#
# - bulk over every site pair (simula->tromso, simula->svalbard,
#   tromso->svalbard), one run per ISP pair with the kernel's MPTCP and with
#   single-path TCP (the baselines), 2 s each;
# - bulk over every site pair with all its paths at once, kernel MPTCP and
#   the bundled stack (libmps on the nodes' TUN devices with its defaults:
#   scheduler lowrtt, congestion control lia);
# - a probe over every ISP pair (simula->svalbard, IPv4 and IPv6);
# - one handover run (svalbard->tromso, uninett down for 2 s).
#
# Then a results table (goodput per site pair for kernel MPTCP, the bundled
# stack and the best single path, and per ISP pair), the middlebox census and the commands to dig
# further; then everything goes down, unless FJORD_DEMO_KEEP=1 keeps it up.
# Needs root. About 3-4 minutes. Builds nothing: run from the repo root after
# make.
set -u
. tests/e2e/testbed_lib.sh
[ -n "${FJORD_DEMO_KEEP:-}" ] && TBC_KEEP=1
TOPO=deploy/testbed/nornet-mini.cfg

echo "== Fjord demo on the emulated testbed $TOPO"
tbc_begin "$TOPO"
tbc_log "nornet-mini up; controller at $FJORD_CONTROLLER in namespace fjtb-ctl; $TBC_NSITES agents online (state in $T)"
echo
echo "\$ fjord agents"
cli agents

S=$(tbc_agent simula)
R=$(tbc_agent tromso)
V=$(tbc_agent svalbard)
PAIRS="{ \"clientAgentId\": \"$S\", \"serverAgentId\": \"$R\" },
               { \"clientAgentId\": \"$S\", \"serverAgentId\": \"$V\" },
               { \"clientAgentId\": \"$R\", \"serverAgentId\": \"$V\" }"
cat >"$T/paths.json" <<JSON
{ "name": "demo-bulk-per-path", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": 2 },
  "stack": { "stacks": [ "STACK_KERNEL", "STACK_TCP" ] },
  "targets": { "pairs": [ $PAIRS ], "perPath": true },
  "deadlineS": 500, "pickupS": 480 }
JSON
# The agent takes at most 8 paths per run; simula and svalbard share 3 x 3
# ISP pairs, so their multipath run leaves out the paths into svalbard's
# telenor (which strips MPTCP: the kernel could not join over them anyway).
cat >"$T/sites.json" <<JSON
{ "name": "demo-bulk-multipath", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": 3 },
  "stack": { "stacks": [ "STACK_KERNEL", "STACK_BUNDLED" ] },
  "targets": { "pairs": [ { "clientAgentId": "$S", "serverAgentId": "$R" },
                          { "clientAgentId": "$R", "serverAgentId": "$V" } ] },
  "deadlineS": 500, "pickupS": 480 }
JSON
cat >"$T/sites2.json" <<JSON
{ "name": "demo-bulk-multipath-sv", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": 3 },
  "stack": { "stacks": [ "STACK_KERNEL", "STACK_BUNDLED" ] },
  "targets": { "pairs": [ { "clientAgentId": "$S", "serverAgentId": "$V" } ],
               "remoteIsps": [ "uninett", "ice" ] },
  "deadlineS": 500, "pickupS": 480 }
JSON
cat >"$T/probe.json" <<JSON
{ "name": "demo-probe", "type": "EXPERIMENT_TYPE_PROBE", "probe": { "timeoutMs": 5000 },
  "targets": { "pairs": [ { "clientAgentId": "$S", "serverAgentId": "$V" } ], "perPath": true,
               "families": [ "ADDRESS_FAMILY_IPV4", "ADDRESS_FAMILY_IPV6" ] },
  "shareLinks": true, "deadlineS": 500, "pickupS": 480 }
JSON
cat >"$T/handover.json" <<JSON
{ "name": "demo-handover", "type": "EXPERIMENT_TYPE_HANDOVER",
  "handover": { "bulk": { "durationS": 6 },
                "events": [ { "atMs": 2000, "isp": "uninett", "action": "down" },
                            { "atMs": 4000, "isp": "uninett", "action": "up" } ] },
  "targets": { "pairs": [ { "clientAgentId": "$V", "serverAgentId": "$R" } ],
               "localIsps": [ "uninett", "ice" ], "remoteIsps": [ "uninett" ] },
  "deadlineS": 500, "pickupS": 480 }
JSON

echo
EXPS=""
for n in probe handover sites sites2 paths; do
	echo "\$ fjord experiments create --file $T/$n.json"
	e=$(tbc_create "$n")
	[ -n "$e" ] || tbc_die "no experiment id for $n: $(cat "$T/create-$n.out")"
	eval "E_$n=$e"
	EXPS="$EXPS $e"
	sed -n 1p "$T/create-$n.out"
done
echo
tbc_log "waiting for the campaign ($(for e in $EXPS; do cli runs --experiment "$e" --csv | tail -n +2; done | grep -c .) runs; runs that share an uplink take turns)"
left=""
end=$(($(date +%s) + 540))
while :; do
	n=$(tbc_unfinished $EXPS)
	[ "$n" = 0 ] && break
	tbc_alive
	[ "$(date +%s)" -lt "$end" ] || tbc_die "$n runs still unfinished after 9 minutes"
	if [ "$n" != "$left" ]; then
		tbc_log "$n runs to go"
		left=$n
	fi
	sleep 2
done
tbc_log "campaign done"

for n in probe handover sites sites2 paths; do
	eval "e=\$E_$n"
	cli results --experiment "$e" --json >"$T/res-$n.json" || tbc_die "fjord results $n"
done

python3 - "$T" <<'PY'
import json, sys

T = sys.argv[1]


def rows(name):
    d = json.load(open(T + "/res-" + name + ".json"))
    return d.get("rows", []) if isinstance(d, dict) else d


def metrics(res):
    return {m["name"]: m.get("value", 0.0) for m in res.get("metrics", [])}


def mbit(v):
    return "%6.1f" % (v / 1e6) if v is not None else "     -"


def stack(run):
    return run.get("stack", "").replace("STACK_", "").lower()


# Per ISP pair: kernel MPTCP started on that path and TCP over it.
per = {}
for r in rows("paths"):
    run, res = r["run"], r["result"]
    p = run["paths"][0]
    key = (run["clientSite"] + "->" + run["serverSite"], p["localIsp"] + "->" + p["remoteIsp"])
    g = metrics(res).get("goodput_bps") if res.get("ok") else None
    per.setdefault(key, {})[stack(run)] = (g, res.get("error", ""))

# Per site pair: the multipath runs, and the best single path of the TCP runs.
site = {}
for r in rows("sites") + rows("sites2"):
    run, res = r["run"], r["result"]
    sp = run["clientSite"] + "->" + run["serverSite"]
    g = metrics(res).get("goodput_bps") if res.get("ok") else None
    site.setdefault(sp, {})[stack(run)] = (g, res.get("error", ""), metrics(res).get("subflows_max"))

print()
print("== Goodput per site pair (Mbit/s; 3 s uploads over all the pair's paths, the best")
print("   single path from 2 s TCP runs per ISP pair; gain = multipath / best single path)")
print("%-18s %7s %4s %8s %4s %17s %7s %7s" % ("SITES", "KERNEL", "SF", "BUNDLED", "SF",
                                              "BEST_PATH", "GAIN_K", "GAIN_B"))
for sp in sorted(site):
    k = site[sp].get("kernel", (None, "", None))
    b = site[sp].get("bundled", (None, "not run", None))
    tcp = [(v["tcp"][0], isp) for (s, isp), v in per.items() if s == sp and v.get("tcp", (None,))[0]]
    best = max(tcp) if tcp else (None, "-")

    def gain(x):
        return "%.2f" % (x / best[0]) if x and best[0] else "-"

    print("%-18s %7s %4s %8s %4s %17s %7s %7s" % (
        sp, mbit(k[0]), int(k[2] or 0), mbit(b[0]), int(b[2] or 0),
        mbit(best[0]) + " " + best[1], gain(k[0]), gain(b[0])))
    if k[0] is None:
        print("%-18s kernel run failed: %s" % ("", k[1]))
    if b[0] is None:
        print("%-18s bundled run failed: %s" % ("", b[1]))
print()
print("== Goodput per ISP pair (Mbit/s): kernel MPTCP starting on the path (the node's other")
print("   uplinks join it), and single-path TCP over it")
print("%-18s %-18s %8s %8s" % ("SITES", "ISPS", "MPTCP", "TCP"))
for (sp, isp) in sorted(per):
    v = per[(sp, isp)]
    k = v.get("kernel", (None, ""))
    t = v.get("tcp", (None, ""))
    print("%-18s %-18s %8s %8s%s" % (sp, isp, mbit(k[0]), mbit(t[0]),
                                     "  (" + (k[1] or t[1]) + ")" if k[0] is None or t[0] is None else ""))

print()
print("== Handover (svalbard->tromso, uninett down from +2 s to +4 s)")
for r in rows("handover"):
    m = metrics(r["result"])
    if r["result"].get("ok"):
        print("goodput %.1f Mbit/s, stall %d ms, dip %d%%, recovered %s after %d ms" % (
            m.get("goodput_bps", 0) / 1e6, m.get("stall_ms", 0), m.get("goodput_dip_pct", 0),
            "yes" if m.get("recovered") else "no", m.get("recover_ms", 0)))
    else:
        print("failed: " + r["result"].get("error", ""))
PY

echo
echo "== Middlebox census (what the probes found per local ISP x remote ISP x family)"
echo "\$ fjord census"
cli census

echo
echo "== Dig further (with FJORD_DEMO_KEEP=1 the testbed stays up for these; run them as"
echo "   'ip netns exec fjtb-ctl build/fjord ...' after '. $T/state/env')"
echo "  fjord results --experiment $E_paths --csv        every metric of every run"
echo "  fjord results --experiment $E_sites --json       subflows, samples, events, provenance"
echo "  fjord aggregate --metric goodput_bps --group-by isp_pair --experiment $E_paths"
echo "  fjord census --isp telenor --json"
echo "  fjord traces list RUN ; fjord traces get RUN subflows.csv    (also capture.pcap)"
echo "  curl -H \"Authorization: Bearer \$FJORD_TOKEN\" \$FJORD_CONTROLLER/api/v1/census?family=ipv4"
echo "  build/fjord-testbed --run-dir $T/tbrun status                per-link counters"
if [ -n "${TBC_KEEP:-}" ]; then
	echo
	echo "FJORD_DEMO_KEEP=1: the testbed, controller and agents stay up."
fi
