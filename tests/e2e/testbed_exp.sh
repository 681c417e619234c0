#!/bin/sh
# Experiments on the emulated testbed (topology tests/e2e/testbed_exp.cfg),
# with the real controller and one agent per site (deploy/testbed/agents.sh),
# asserting what the topology implies:
#
# - bulk: kernel MPTCP from ea over its two 20 Mbit/s uplinks to eb, three
#   runs of 8 s, the first with its single-path TCP baselines: the median
#   goodput lies between 80% and 105% of the sum of the two uplinks' rates
#   (issue 5's band), every run at most 105%, both uplinks carry data in every
#   run, and MPTCP beats the best single path.
# - bundled bulk: the same, three runs of 8 s from ea over both uplinks, on the
#   bundled stack (libmps in the agent, through the TUN devices, buffers
#   autotuned to the agent's bundled_rcvbuf_max / bundled_sndbuf_max): every
#   byte arrives, every run at most 105% of the sum, both uplinks carry data,
#   and the median lies in BUNDLED_BAND (see there).
# - probe: from ec over its clean ISP and its ISP that rewrites TCP sequence
#   numbers, IPv4 and IPv6: sequence-number rewriting found on exactly the
#   paths through that ISP, by routers' quotes (seq_quotes > 0 on every
#   path), with MPTCP surviving it everywhere.
#
# Needs root; takes about 3 minutes. Only one testbed can be up on a machine
# (fixed namespace names): it refuses to start while another one is up.
# Network traffic only inside the testbed's namespaces, which are always
# removed (trap in testbed_lib.sh).
set -u
. tests/e2e/testbed_lib.sh
TOPO=tests/e2e/testbed_exp.cfg
tbc_begin "$TOPO"
tbc_log "fjtb-exp up, controller and $TBC_NSITES agents online"

EA=$(tbc_agent ea)
EB=$(tbc_agent eb)
EC=$(tbc_agent ec)
V4='"ADDRESS_FAMILY_IPV4"'
V6='"ADDRESS_FAMILY_IPV6"'

# The first run also measures single-path TCP over each uplink (its baseline;
# the controller adds a TCP run per path too): three transfers of 8 s.
for i in 1 2 3; do
	bl=false
	[ $i = 1 ] && bl=true
	cat >"$T/bulk$i.json" <<JSON
{ "name": "tbe-bulk$i", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": 8, "baseline": $bl },
  "stack": { "stacks": [ "STACK_KERNEL" ] },
  "targets": { "pairs": [ { "clientAgentId": "$EA", "serverAgentId": "$EB" } ],
               "localIsps": [ "ispa", "ispb" ], "remoteIsps": [ "ispa" ], "families": [ $V4 ] },
  "deadlineS": 200, "pickupS": 190 }
JSON
done

# The same transfers on the bundled stack.
for i in 1 2 3; do
	cat >"$T/bund$i.json" <<JSON
{ "name": "tbe-bundled$i", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": 8 },
  "stack": { "stacks": [ "STACK_BUNDLED" ] },
  "targets": { "pairs": [ { "clientAgentId": "$EA", "serverAgentId": "$EB" } ],
               "localIsps": [ "ispa", "ispb" ], "remoteIsps": [ "ispa" ], "families": [ $V4 ] },
  "deadlineS": 300, "pickupS": 290 }
JSON
done

cat >"$T/probe.json" <<JSON
{ "name": "tbe-probe", "type": "EXPERIMENT_TYPE_PROBE", "probe": { "timeoutMs": 3000 },
  "targets": { "pairs": [ { "clientAgentId": "$EC", "serverAgentId": "$EB" } ],
               "localIsps": [ "ispa", "seqrw" ], "remoteIsps": [ "ispa" ],
               "perPath": true, "families": [ $V4, $V6 ] },
  "shareLinks": true, "deadlineS": 120, "pickupS": 110 }
JSON

NAMES="bulk1 bulk2 bulk3 bund1 bund2 bund3 probe"
EXPS=""
for n in $NAMES; do
	e=$(tbc_create "$n")
	[ -n "$e" ] || tbc_die "no experiment id for $n: $(cat "$T/create-$n.out")"
	eval "E_$n=$e"
	EXPS="$EXPS $e"
done
tbc_log "created:$EXPS"
tbc_wait 300 $EXPS
tbc_log "every run finished"
for n in $NAMES; do
	eval "e=\$E_$n"
	cli results --experiment "$e" --json >"$T/res-$n.json" || tbc_die "fjord results $n"
done

python3 - "$T" <<'PY'
import json, re, statistics, sys

T = sys.argv[1]
fails = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        fails.append(what)


rate = {}
for line in open(T + "/status"):
    m = re.match(r"(\S+)/(\S+) (up|down) queue=\d+ configured: rate=(\d+)(kbit|mbit|gbit)", line)
    if m:
        rate[(m.group(1), m.group(2), m.group(3))] = float(m.group(4)) * {
            "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}[m.group(5)]


def rows(name):
    d = json.load(open(T + "/res-" + name + ".json"))
    return d.get("rows", []) if isinstance(d, dict) else d


def metrics(res):
    return {m["name"]: m.get("value", 0.0) for m in res.get("metrics", [])}


# Bulk: the band of issue 5 on the sum of the client's two uplinks (the
# server's 100 Mbit/s downlinks are not the bottleneck).
up_sum = rate[("ea", "ispa", "up")] + rate[("ea", "ispb", "up")]
gs = []
for n in ("bulk1", "bulk2", "bulk3"):
    for r in rows(n):
        if r["run"].get("stack") != "STACK_KERNEL":
            # The controller's own TCP run per path of a baseline experiment.
            m = metrics(r["result"])
            p = r["run"]["paths"][0]["localIsp"]
            check(r["result"].get("ok", False) and
                  0 < m.get("goodput_bps", 0) <= 1.05 * rate[("ea", p, "up")],
                  "%s: TCP run over %s %.2f Mbit/s" % (n, p, m.get("goodput_bps", 0) / 1e6))
            continue
        res, m = r["result"], metrics(r["result"])
        g = m.get("goodput_bps", 0)
        gs.append(g)
        check(res.get("ok", False) and m.get("sha256_ok", 0) == 1,
              "%s succeeded, every byte arrived %s" % (n, res.get("error", "")))
        check(g <= 1.05 * up_sum, "%s: goodput %.2f Mbit/s <= 105%% of %.0f" % (
            n, g / 1e6, up_sum / 1e6))
        per = {}
        for s in res.get("subflows", []):
            per[s.get("localIsp", "?")] = per.get(s.get("localIsp", "?"), 0) + int(
                s.get("bytesAcked", 0))
        print("  %s: %.2f Mbit/s (%.1f%% of %.0f), bytes acked per local ISP %s" % (
            n, g / 1e6, 100 * g / up_sum, up_sum / 1e6, per))
        check(per.get("ispa", 0) > 2000000 and per.get("ispb", 0) > 2000000,
              "%s: both uplinks carried more than 2 MB" % n)
        if n == "bulk1":
            b0, b1 = m.get("baseline_p0_goodput_bps", 0), m.get("baseline_p1_goodput_bps", 0)
            print("  %s: single-path TCP baselines %.2f (ispa) and %.2f (ispb) Mbit/s, gain %.2f"
                  % (n, b0 / 1e6, b1 / 1e6, m.get("aggregation_gain", 0)))
            check(m.get("mptcp_worse_than_best", 1) == 0,
                  "%s: MPTCP above the best single path (gain %.2f)" % (
                      n, m.get("aggregation_gain", 0)))
check(len(gs) == 3, "bulk: three results, got %d" % len(gs))
if gs:
    med = statistics.median(gs)
    check(0.80 * up_sum <= med <= 1.05 * up_sum,
          "bulk: median goodput %.2f Mbit/s = %.1f%% of the uplinks' sum %.0f Mbit/s "
          "(band 80-105%%; runs %s)" % (med / 1e6, 100 * med / up_sum, up_sum / 1e6,
                                       " ".join("%.2f" % (g / 1e6) for g in gs)))

# Bundled bulk over the same two uplinks, the same rules; the median's band is
# BUNDLED_BAND (fractions of the uplinks' sum).
BUNDLED_BAND = (0.80, 1.05)
bs = []
for n in ("bund1", "bund2", "bund3"):
    for r in rows(n):
        res, m = r["result"], metrics(r["result"])
        check(r["run"].get("stack") == "STACK_BUNDLED", "%s: a bundled run (%s)" % (
            n, r["run"].get("stack")))
        g = m.get("goodput_bps", 0)
        bs.append(g)
        check(res.get("ok", False) and m.get("sha256_ok", 0) == 1,
              "%s succeeded, every byte arrived %s" % (n, res.get("error", "")))
        check(g <= 1.05 * up_sum, "%s: goodput %.2f Mbit/s <= 105%% of %.0f" % (
            n, g / 1e6, up_sum / 1e6))
        per = {}
        for s in res.get("subflows", []):
            per[s.get("localIsp", "?")] = per.get(s.get("localIsp", "?"), 0) + int(
                s.get("bytesAcked", 0))
        print("  %s: %.2f Mbit/s (%.1f%% of %.0f), bytes acked per local ISP %s" % (
            n, g / 1e6, 100 * g / up_sum, up_sum / 1e6, per))
        check(per.get("ispa", 0) > 2000000 and per.get("ispb", 0) > 2000000,
              "%s: both uplinks carried more than 2 MB" % n)
check(len(bs) == 3, "bundled bulk: three results, got %d" % len(bs))
if bs:
    med = statistics.median(bs)
    check(BUNDLED_BAND[0] * up_sum <= med <= BUNDLED_BAND[1] * up_sum,
          "bundled bulk: median goodput %.2f Mbit/s = %.1f%% of the uplinks' sum %.0f Mbit/s "
          "(band %.0f-%.0f%%; runs %s)" % (med / 1e6, 100 * med / up_sum, up_sum / 1e6,
                                          100 * BUNDLED_BAND[0], 100 * BUNDLED_BAND[1],
                                          " ".join("%.2f" % (g / 1e6) for g in bs)))

# Probe: sequence numbers rewritten exactly through the ISP whose middlebox
# does it (topology: seqrw), seen in routers' quotes; MPTCP survives it.
middlebox = {}
for line in open(T + "/status"):
    m = re.match(r"\s+node \S+ on (\S+) \(dev \S+, mtu \d+, middlebox (\S+)\)", line)
    if m:
        middlebox[m.group(1)] = m.group(2)
rewriting = {i for i, mb in middlebox.items() if mb == "rewrite-seq"}
n = 0
for r in rows("probe"):
    check(r["result"].get("ok", False), "probe run %s succeeded %s" % (
        r["run"]["id"], r["result"].get("error", "")))
    for f in r["result"].get("probeFindings", []):
        p = f["path"]
        l, fam = p["localIsp"], p.get("family", "")
        want = l in rewriting or p["remoteIsp"] in rewriting
        n += 1
        check(f.get("reachable", False) and f.get("mpCapable", False),
              "probe %s %s: reachable, MP_CAPABLE survives" % (l, fam))
        check(bool(f.get("seqRewritten", False)) == want,
              "probe %s %s: seq_rewritten=%s (want %s): %s" % (
                  l, fam, f.get("seqRewritten", False), want, f.get("seqCheck", "")))
        check(int(f.get("seqQuotes", 0)) > 0, "probe %s %s: %s router quotes compared" % (
            l, fam, f.get("seqQuotes", 0)))
        if want:
            check(int(f.get("seqRewriteHop", 0)) >= 1, "probe %s %s: rewritten before hop %s" % (
                l, fam, f.get("seqRewriteHop", 0)))
check(n == 4, "probe: 4 findings (2 ISPs x 2 families), got %d" % n)
check(rewriting == {"seqrw"}, "topology: the rewriting ISP is seqrw (%s)" % sorted(rewriting))

print("%d checks failed" % len(fails))
sys.exit(1 if fails else 0)
PY
rc=$?
[ $rc = 0 ] || tbc_die "testbed_exp checks failed (see above)"
tbc_log "testbed_exp: ok"
