#!/bin/sh
# The measurement campaign of issue 5 on the emulated testbed nornet-mini: the
# real controller and one agent per site (deploy/testbed/agents.sh), kernel
# MPTCP endpoints on every uplink, experiments scheduled with the fjord CLI,
# and what the topology implies asserted through the CLI:
#
# - probe simula -> svalbard over every ISP pair, IPv4 and IPv6: MP_CAPABLE
#   is lost on exactly the paths through the ISP whose middlebox strips
#   MPTCP options, NAT is seen on exactly the IPv4 paths from the NATed ISP;
#   the census (fjord census) holds the same findings;
# - echo and bulk simula -> svalbard over every ISP pair, kernel and tcp, with
#   baselines: every run succeeds, no goodput above its path's configured
#   bottleneck (+5%);
# - kernel MPTCP bulk svalbard -> tromso over svalbard's uninett and ice
#   uplinks with baselines: both uplinks carry data, goodput within the band
#   derived below;
# - a handover run (svalbard's uninett down for 2 s): completes, bounded stall;
# - bundled-stack bulk svalbard -> tromso over the same two uplinks, an
#   upload and a download: both carry every byte (SHA-256, the
#   source's framed stream with its trailer), goodput within the band of the
#   first path (the default scheduler sends on the initial subflow), the join
#   over ice up (2 subflows), provenance of libmps with the bundled
#   addresses, and the stack's own trace capture.pcap holds MP_CAPABLE and
#   MP_JOIN SYNs; through svalbard's telenor (strips MPTCP) it falls back,
#   says so and carries every byte;
# - every result has its provenance; a trace downloads whole.
#
# Needs root; takes about 2-3 minutes. Network traffic only inside the
# testbed's namespaces, which are always removed (trap).
set -u
. tests/e2e/testbed_lib.sh
TOPO=deploy/testbed/nornet-mini.cfg
tbc_begin "$TOPO"
tbc_log "nornet-mini up, controller and $TBC_NSITES agents online"

A=$(tbc_agent simula)
B=$(tbc_agent svalbard)
C=$(tbc_agent tromso)
V4='"ADDRESS_FAMILY_IPV4"'
V6='"ADDRESS_FAMILY_IPV6"'

cat >"$T/probe.json" <<JSON
{ "name": "tbc-probe", "type": "EXPERIMENT_TYPE_PROBE", "probe": { "timeoutMs": 5000 },
  "targets": { "pairs": [ { "clientAgentId": "$A", "serverAgentId": "$B" } ],
               "perPath": true, "families": [ $V4, $V6 ] },
  "shareLinks": true, "deadlineS": 320, "pickupS": 280 }
JSON
cat >"$T/echo.json" <<JSON
{ "name": "tbc-echo", "type": "EXPERIMENT_TYPE_ECHO", "echo": { "messageBytes": 200, "count": 20 },
  "stack": { "stacks": [ "STACK_KERNEL", "STACK_TCP" ] },
  "targets": { "pairs": [ { "clientAgentId": "$A", "serverAgentId": "$B" } ],
               "perPath": true, "families": [ $V4 ] },
  "shareLinks": true, "deadlineS": 320, "pickupS": 280 }
JSON
cat >"$T/bulk.json" <<JSON
{ "name": "tbc-bulk", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": 1, "baseline": true },
  "stack": { "stacks": [ "STACK_KERNEL", "STACK_TCP" ] },
  "targets": { "pairs": [ { "clientAgentId": "$A", "serverAgentId": "$B" } ],
               "perPath": true, "families": [ $V4 ] },
  "deadlineS": 320, "pickupS": 280 }
JSON
cat >"$T/mp.json" <<JSON
{ "name": "tbc-mp", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": 8, "baseline": true },
  "stack": { "stacks": [ "STACK_KERNEL" ] },
  "targets": { "pairs": [ { "clientAgentId": "$B", "serverAgentId": "$C" } ],
               "localIsps": [ "uninett", "ice" ], "remoteIsps": [ "uninett" ], "families": [ $V4 ] },
  "deadlineS": 320, "pickupS": 280 }
JSON
cat >"$T/bundled.json" <<JSON
{ "name": "tbc-bundled", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": 2 },
  "stack": { "stacks": [ "STACK_BUNDLED" ] },
  "targets": { "pairs": [ { "clientAgentId": "$B", "serverAgentId": "$C" } ],
               "localIsps": [ "uninett", "ice" ], "remoteIsps": [ "uninett" ], "families": [ $V4 ] },
  "deadlineS": 320, "pickupS": 280 }
JSON
cat >"$T/bundleddown.json" <<JSON
{ "name": "tbc-bundled-down", "type": "EXPERIMENT_TYPE_BULK",
  "bulk": { "durationS": 2, "direction": "DIRECTION_DOWNLOAD" },
  "stack": { "stacks": [ "STACK_BUNDLED" ] },
  "targets": { "pairs": [ { "clientAgentId": "$B", "serverAgentId": "$C" } ],
               "localIsps": [ "uninett", "ice" ], "remoteIsps": [ "uninett" ], "families": [ $V4 ] },
  "deadlineS": 320, "pickupS": 280 }
JSON
cat >"$T/bundledfb.json" <<JSON
{ "name": "tbc-bundled-fallback", "type": "EXPERIMENT_TYPE_BULK", "bulk": { "durationS": 1 },
  "stack": { "stacks": [ "STACK_BUNDLED" ] },
  "targets": { "pairs": [ { "clientAgentId": "$B", "serverAgentId": "$C" } ],
               "localIsps": [ "telenor" ], "remoteIsps": [ "uninett" ], "families": [ $V4 ] },
  "deadlineS": 320, "pickupS": 280 }
JSON
cat >"$T/handover.json" <<JSON
{ "name": "tbc-handover", "type": "EXPERIMENT_TYPE_HANDOVER",
  "handover": { "bulk": { "durationS": 6 },
                "events": [ { "atMs": 2000, "isp": "uninett", "action": "down" },
                            { "atMs": 4000, "isp": "uninett", "action": "up" } ] },
  "targets": { "pairs": [ { "clientAgentId": "$B", "serverAgentId": "$C" } ],
               "localIsps": [ "uninett", "ice" ], "remoteIsps": [ "uninett" ], "families": [ $V4 ] },
  "deadlineS": 320, "pickupS": 280 }
JSON

EXPS=""
for n in probe echo bulk mp handover bundled bundleddown bundledfb; do
	e=$(tbc_create "$n")
	[ -n "$e" ] || tbc_die "no experiment id for $n: $(cat "$T/create-$n.out")"
	eval "E_$n=$e"
	EXPS="$EXPS $e"
	tbc_log "created $n: $e ($(sed -n 's/.* with \([0-9]*\) runs.*/\1/p' "$T/create-$n.out") runs)"
done
tbc_wait 300 $EXPS
tbc_log "every run finished"

for n in probe echo bulk mp handover bundled bundleddown bundledfb; do
	eval "e=\$E_$n"
	cli results --experiment "$e" --json >"$T/res-$n.json" || tbc_die "fjord results $n"
	cli runs --experiment "$e" --csv >"$T/runs-$n.csv" || tbc_die "fjord runs $n"
done

# Census: the probe's findings as the controller keeps them.
if cli census --help >/dev/null 2>&1; then
	cli census --json >"$T/census.json" || tbc_die "fjord census"
else
	echo "{}" >"$T/census.json"
	tbc_log "no 'fjord census' in this CLI: census not checked"
fi

# trace_wait RUN NAME OUT: the run's trace list once it holds NAME. Agents send
# results ahead of traces, so a finished run's traces may still be on their way.
trace_wait()
{
	_end=$(($(date +%s) + 60))
	while :; do
		cli traces list "$1" --csv >"$3" || tbc_die "fjord traces list $1"
		grep -q "$2" "$3" && return 0
		[ "$(date +%s)" -lt "$_end" ] || tbc_die "no $2 among the traces of $1 after 60 s"
		sleep 1
	done
}

# A trace of the multipath bulk run, downloaded whole.
MPRUN=$(tail -n +2 "$T/runs-mp.csv" | grep ',kernel,' | head -n 1 | cut -d, -f1)
trace_wait "$MPRUN" subflows.csv "$T/traces.csv"
grep -q subflows.csv "$T/traces.csv" || tbc_die "no subflows.csv among the traces of $MPRUN"
cli traces get "$MPRUN" subflows.csv -o "$T/subflows.csv" || tbc_die "fjord traces get"
want=$(python3 -c 'import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    if r.get("name", r.get("NAME")) == "subflows.csv":
        print(r.get("sha256", r.get("SHA256", "")))' "$T/traces.csv")
got=$(sha256sum "$T/subflows.csv" | cut -d' ' -f1)
[ "$want" = "$got" ] || tbc_die "subflows.csv: SHA-256 $got, the controller lists $want"
head -n 1 "$T/subflows.csv" | grep -q '^t_ms,subflow_id,local' ||
	tbc_die "subflows.csv has no header: $(head -n 2 "$T/subflows.csv")"
tbc_log "trace subflows.csv of $MPRUN downloaded, SHA-256 matches"

# The bundled runs' traces: subflows.csv and the stack's own capture.pcap.
for n in bundled bundleddown; do
	BRUN=$(tail -n +2 "$T/runs-$n.csv" | grep ',bundled,' | head -n 1 | cut -d, -f1)
	[ -n "$BRUN" ] || tbc_die "no bundled run in $n: $(cat "$T/runs-$n.csv")"
	for f in subflows.csv capture.pcap; do
		trace_wait "$BRUN" "$f" "$T/traces-$n.csv"
		cli traces get "$BRUN" "$f" -o "$T/$n-$f" || tbc_die "fjord traces get $BRUN $f"
	done
done
tbc_log "bundled runs' traces downloaded"

python3 - "$T" <<'PY'
import json, re, sys

T = sys.argv[1]
fails = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        fails.append(what)


# The topology as fjord-testbed status shows it: rate per site/isp and
# direction, middlebox per ISP.
rate = {}
middlebox = {}
for line in open(T + "/status"):
    m = re.match(r"(\S+)/(\S+) (up|down) queue=\d+ configured: rate=(\S+)", line)
    if m:
        v = m.group(4)
        mult = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
        num = re.match(r"([\d.]+)(\D+)", v)
        rate[(m.group(1), m.group(2), m.group(3))] = float(num.group(1)) * mult[num.group(2)]
    m = re.match(r"\s+node \S+ on (\S+) \(dev \S+, mtu \d+, middlebox (\S+)\)", line)
    if m:
        middlebox[m.group(1)] = m.group(2)
stripping = {i for i, mb in middlebox.items() if mb.startswith("strip-mptcp")}
natted = {i for i, mb in middlebox.items() if mb == "nat"}


def rows(name):
    d = json.load(open(T + "/res-" + name + ".json"))
    return d.get("rows", []) if isinstance(d, dict) else d


def metrics(res):
    return {m["name"]: m.get("value", 0.0) for m in res.get("metrics", [])}


def bottleneck(run, p):
    # Upload: the client's uplink going up, then the server's coming down.
    return min(rate[(run["clientSite"], p["localIsp"], "up")],
               rate[(run["serverSite"], p["remoteIsp"], "down")])


# Every run of every experiment succeeded and carries its provenance.
for name in ("probe", "echo", "bulk", "mp", "handover"):
    rs = rows(name)
    check(len(rs) > 0, "%s: results present (%d)" % (name, len(rs)))
    for r in rs:
        res, run = r["result"], r["run"]
        check(res.get("ok", False), "%s %s succeeded %s" % (name, run["id"], res.get("error", "")))
        pv = res.get("provenance", {})
        check(bool(pv.get("kernelVersion")) and bool(pv.get("agentVersion"))
              and pv.get("stack", "STACK_UNSPECIFIED") != "STACK_UNSPECIFIED"
              and len(pv.get("paths", [])) > 0 and len(pv.get("sysctls", [])) > 0,
              "%s %s provenance: stack %s, kernel %s, agent %s, %d paths, %d sysctls" % (
                  name, run["id"], pv.get("stack"), pv.get("kernelVersion"),
                  pv.get("agentVersion"), len(pv.get("paths", [])), len(pv.get("sysctls", []))))

# Probe: MP_CAPABLE lost exactly through the stripping ISP (either end),
# NAT exactly from the NATed ISP over IPv4 (IPv6 is not translated).
seen_strip, seen_nat, n = set(), set(), 0
for r in rows("probe"):
    for f in r["result"].get("probeFindings", []):
        p = f["path"]
        l, rem, fam = p["localIsp"], p["remoteIsp"], p.get("family", "")
        n += 1
        want_mpc = l not in stripping and rem not in stripping
        want_nat = l in natted and fam == "ADDRESS_FAMILY_IPV4"
        check(f.get("reachable", False), "probe %s->%s %s reachable" % (l, rem, fam))
        check(f.get("mpCapable", False) == want_mpc,
              "probe %s->%s %s mp_capable=%s (want %s)" % (l, rem, fam, f.get("mpCapable", False), want_mpc))
        check(f.get("nat", False) == want_nat,
              "probe %s->%s %s nat=%s (want %s)" % (l, rem, fam, f.get("nat", False), want_nat))
        if not f.get("mpCapable", False):
            seen_strip.add((l, rem))
        if f.get("nat", False):
            seen_nat.add(l)
# The ISP that strips: the one ISP present in every path that lost MP_CAPABLE.
isps = {i for pair in seen_strip for i in pair}
culprits = {i for i in isps if all(i in pair for pair in seen_strip)} if seen_strip else set()
check(n == 18, "probe: 18 findings (3 x 3 ISP pairs x 2 families), got %d" % n)
check(culprits == stripping, "probe finds the stripping ISP %s (topology: %s)" % (sorted(culprits), sorted(stripping)))
check(seen_nat == natted, "probe finds the NATed ISP %s (topology: %s)" % (sorted(seen_nat), sorted(natted)))

# Census: the same per local ISP x remote ISP x family.
cen = json.load(open(T + "/census.json"))
if cen != {}:
    cells = {(c["localIsp"], c["remoteIsp"], c["family"]): c for c in cen.get("cells", [])}
    for r in rows("probe"):
        for f in r["result"].get("probeFindings", []):
            p = f["path"]
            fam = p.get("family", "")
            c = cells.get((p["localIsp"], p["remoteIsp"], fam))
            check(c is not None, "census has %s->%s %s" % (p["localIsp"], p["remoteIsp"], fam))
            if c is None:
                continue
            mpc = f.get("mpCapable", False)
            check(int(c.get("mpCapableOk", 0)) == (1 if mpc else 0)
                  and int(c.get("mpCapableStripped", 0)) == (0 if mpc else 1)
                  and int(c.get("nat", 0)) == (1 if f.get("nat", False) else 0)
                  and int(c.get("probes", 0)) == 1,
                  "census %s->%s %s agrees with the probe" % (p["localIsp"], p["remoteIsp"], fam))

# Echo: every ISP pair, both stacks.
er = rows("echo")
check(len(er) == 18, "echo: 9 ISP pairs x 2 stacks = 18 results, got %d" % len(er))
for r in er:
    m = metrics(r["result"])
    check(m.get("messages", 0) == 20, "echo %s: 20 messages echoed" % r["run"]["id"])

# Bulk per path: a TCP flow cannot carry more than the path's bottleneck.
# Goodput counts payload only (1448 of 1500 bytes), so 105% of the
# configured rate is a generous ceiling that only a broken emulator passes.
br = rows("bulk")
check(len(br) == 18, "bulk: 9 ISP pairs x 2 stacks = 18 results, got %d" % len(br))
for r in br:
    run, res = r["run"], r["result"]
    m = metrics(res)
    p = run["paths"][0]
    cap = bottleneck(run, p)
    g = m.get("goodput_bps", 0)
    ceil = cap
    if run.get("stack") == "STACK_KERNEL":
        # The kernel's path manager adds subflows over the node's other
        # uplinks whatever the run's path: its ceiling is every uplink.
        ceil = min(sum(v for (s, i, d), v in rate.items() if s == run["clientSite"] and d == "up"),
                   sum(v for (s, i, d), v in rate.items() if s == run["serverSite"] and d == "down"))
    check(m.get("sha256_ok", 0) == 1 and 0 < g <= 1.05 * ceil,
          "bulk %s %s %s->%s: goodput %.1f Mbit/s, ceiling %.0f Mbit/s" % (
              run["id"], run.get("stack"), p["localIsp"], p["remoteIsp"], g / 1e6, ceil / 1e6))
    if run.get("stack") == "STACK_KERNEL":
        b = m.get("baseline_p0_goodput_bps", -1)
        check(0 < b <= 1.05 * cap, "bulk %s baseline TCP %.1f Mbit/s" % (run["id"], b / 1e6))

# Kernel MPTCP over two uplinks (svalbard: uninett 50 Mbit/s + ice 10 Mbit/s,
# into tromso's uninett, 100 Mbit/s). The ceiling is the sum of the client's
# uplinks (the server's 100 Mbit/s is above it) plus 5%. The floor is 60% of
# the best single uplink's configured rate (30 Mbit/s): a single TCP flow on
# that path (120 ms RTT, a 50 ms queue = 0.4 BDP) reaches 41-43 Mbit/s here,
# and kernel MPTCP reached 34.7-43.9 Mbit/s in seven 5-10 s runs; a run held
# back by its slow subflow (ice, 10 Mbit/s, 150 ms) would land near 10-20
# and fail. The textbook floor of 80% of the uplinks' sum (48 Mbit/s) does
# not hold on this kernel: docs/operations.md says why.
mr = [r for r in rows("mp") if r["run"].get("stack") == "STACK_KERNEL"]
tr = [r for r in rows("mp") if r["run"].get("stack") == "STACK_TCP"]
check(len(mr) == 1, "mp: one kernel MPTCP result")
# The controller's own TCP run per path of a baseline experiment.
check(len(tr) == 2, "mp: two TCP runs (one per path), got %d" % len(tr))
for r in tr:
    run, m = r["run"], metrics(r["result"])
    cap = bottleneck(run, run["paths"][0])
    check(0 < m.get("goodput_bps", 0) <= 1.05 * cap, "mp: TCP over %s %.1f Mbit/s <= %.0f" % (
        run["paths"][0]["localIsp"], m.get("goodput_bps", 0) / 1e6, cap / 1e6))
for r in mr:
    run, res = r["run"], r["result"]
    m = metrics(res)
    caps = [bottleneck(run, p) for p in run["paths"]]
    up_sum = sum(rate[(run["clientSite"], p["localIsp"], "up")] for p in run["paths"])
    down_sum = rate[(run["serverSite"], "uninett", "down")]
    ceil = 1.05 * min(up_sum, down_sum)
    floor = 0.60 * max(caps)
    g = m.get("goodput_bps", 0)
    check(floor <= g <= ceil, "mp: kernel MPTCP goodput %.1f Mbit/s within [%.1f, %.1f]" % (
        g / 1e6, floor / 1e6, ceil / 1e6))
    check(m.get("subflows_max", 0) >= 2, "mp: %d subflows at once" % m.get("subflows_max", 0))
    ice = [s for s in res.get("subflows", []) if s.get("localIsp") == "ice"]
    check(len(ice) > 0 and int(ice[0].get("bytesAcked", 0)) > 1000000,
          "mp: the ice subflow carried %s bytes" % (ice[0].get("bytesAcked") if ice else "no"))
    best = m.get("baseline_best_bps", 0)
    check(best > 0 and abs(m.get("aggregation_gain", 0) - g / best) < 0.01 * g / best,
          "mp: aggregation gain %.2f = goodput / best single path (%.1f Mbit/s)" % (
              m.get("aggregation_gain", 0), best / 1e6))
    for i, c in enumerate(caps):
        b = m.get("baseline_p%d_goodput_bps" % i, -1)
        check(0 < b <= 1.05 * c, "mp: baseline path %d %.1f Mbit/s <= %.0f" % (i, b / 1e6, c / 1e6))
    check((m.get("mptcp_worse_than_best", -1) == 1) == (g < best),
          "mp: mptcp_worse_than_best=%d consistent" % m.get("mptcp_worse_than_best", -1))

# Handover: uninett down from +2 s to +4 s. The connection stalls at most for
# the outage plus the retransmission timeout (the kernel holds data sent on
# the dead subflow; docs/experiments.md), here bounded by 2 s + 2.5 s.
for r in rows("handover"):
    m = metrics(r["result"])
    check(m.get("link_events", 0) == 2, "handover: 2 link events fired")
    check(m.get("sha256_ok", 0) == 1, "handover: every byte arrived (SHA-256)")
    check(0 < m.get("stall_ms", 0) <= 4500, "handover: stall %d ms <= 4500" % m.get("stall_ms", 0))
    check(m.get("recovered", 0) == 1, "handover: recovered after %d ms" % m.get("recover_ms", -1))

# The bundled stack, svalbard -> tromso over uninett (50 Mbit/s up, 120 ms
# RTT with tromso's) and ice (10 Mbit/s): an upload and a download. The default scheduler sends new data on the initial subflow only
# (docs/stack.md), so the band is that of the first path: at most its
# bottleneck + 5%, at least 10% of it. libmps runs uncoupled NewReno with a
# light SACK recovery; it reached 12-14 Mbit/s on this path in trial runs
# where the kernel (BBR) reached 35: the floor only catches a stalled or
# broken transfer, not a slow one.
import struct


def pcap_syns(path):
    # (MP_CAPABLE SYNs, MP_JOIN SYNs, records) of a raw-IP pcap with headers only.
    data = open(path, "rb").read()
    if len(data) < 24:
        return 0, 0, 0
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off, mpc, join, n = 24, 0, 0, 0
    while off + 16 <= len(data):
        incl = struct.unpack(end + "I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        n += 1
        if len(pkt) < 20 or pkt[0] >> 4 != 4 or pkt[9] != 6:
            continue
        tcp = pkt[(pkt[0] & 15) * 4:]
        if len(tcp) < 20 or not tcp[13] & 2:
            continue
        opts, i = tcp[20:(tcp[12] >> 4) * 4], 0
        while i < len(opts):
            if opts[i] == 0:
                break
            if opts[i] == 1:
                i += 1
                continue
            if i + 1 >= len(opts) or opts[i + 1] < 2:
                break
            if opts[i] == 30 and i + 2 < len(opts):
                mpc += (opts[i + 2] >> 4) == 0
                join += (opts[i + 2] >> 4) == 1
            i += opts[i + 1]
    return mpc, join, n


for name in ("bundled", "bundleddown"):
    # A baseline experiment also has the controller's own TCP run per path.
    rs = [r for r in rows(name) if r["run"].get("stack") == "STACK_BUNDLED"]
    check(len(rs) == 1, "%s: one bundled result (got %d)" % (name, len(rs)))
    for r in rs:
        run, res = r["run"], r["result"]
        m = metrics(res)
        check(res.get("ok", False), "%s %s succeeded %s" % (name, run["id"], res.get("error", "")))
        check(m.get("sha256_ok", 0) == 1, "%s: every byte arrived (SHA-256)" % name)
        cap = bottleneck(run, run["paths"][0]) if name == "bundled" else min(
            rate[(run["serverSite"], run["paths"][0]["remoteIsp"], "up")],
            rate[(run["clientSite"], run["paths"][0]["localIsp"], "down")])
        g = m.get("goodput_bps", 0)
        check(0.10 * cap <= g <= 1.05 * cap, "%s: goodput %.1f Mbit/s within [%.1f, %.1f]" % (
            name, g / 1e6, 0.10 * cap / 1e6, 1.05 * cap / 1e6))
        check(m.get("subflows_max", 0) == 2, "%s: %d subflows at once (want 2: uninett and the join over ice)"
              % (name, m.get("subflows_max", 0)))
        check(m.get("fallback", -1) == 0, "%s: no fallback" % name)
        isps = sorted(s.get("localIsp", "") for s in res.get("subflows", []))
        check(isps == ["ice", "uninett"], "%s: subflows labelled %s" % (name, isps))
        pv = res.get("provenance", {})
        bpaths = pv.get("paths", [])
        check(pv.get("stack") == "STACK_BUNDLED" and pv.get("stackVersion", "").startswith("libmps")
              and pv.get("scheduler") == "lowrtt" and pv.get("pathManager") == "fullmesh"
              and pv.get("congestionControl") == "lia" and bool(pv.get("kernelVersion"))
              and bool(pv.get("agentVersion")),
              "%s provenance: %s %s, scheduler %s, pm %s, cc %s" % (
                  name, pv.get("stack"), pv.get("stackVersion"), pv.get("scheduler"),
                  pv.get("pathManager"), pv.get("congestionControl")))
        check(len(bpaths) == 2 and all(p.get("localAddress", "").endswith(".128")
                                       and p.get("remoteAddress", "").endswith(".160") for p in bpaths),
              "%s provenance paths are the bundled addresses: %s" % (
                  name, [(p.get("localAddress"), p.get("remoteAddress")) for p in bpaths]))
        samples = res.get("samples", [])
        check(len(samples) >= 20, "%s: %d per-subflow samples" % (name, len(samples)))

    lines = open(T + "/" + name + "-subflows.csv").read().splitlines()
    check(len(lines) > 20 and lines[0].startswith("t_ms,subflow_id,local"),
          "%s: subflows.csv has %d lines" % (name, len(lines)))
    mpc, join, n = pcap_syns(T + "/" + name + "-capture.pcap")
    check(mpc >= 2 and join >= 2 and n > 100,
          "%s: capture.pcap has %d records, %d MP_CAPABLE and %d MP_JOIN SYNs" % (name, n, mpc, join))

# Through svalbard's telenor, which strips MPTCP options: the bundled stack
# falls back to TCP, says so (metric, event with libmps's reason) and still
# carries every byte.
for r in [r for r in rows("bundledfb") if r["run"].get("stack") == "STACK_BUNDLED"]:
    res, m = r["result"], metrics(r["result"])
    ev = [e for e in res.get("events", []) if e.get("kind") == "fallback"]
    check(res.get("ok", False) and m.get("sha256_ok", 0) == 1,
          "bundled through telenor: every byte %s" % res.get("error", ""))
    check(m.get("fallback", 0) == 1 and len(ev) >= 1,
          "bundled through telenor: fallback %d, events %s" % (
              m.get("fallback", 0), [e.get("detail") for e in ev]))
check(len([r for r in rows("bundledfb") if r["run"].get("stack") == "STACK_BUNDLED"]) == 1,
      "bundled through telenor: one result")

print("%d checks failed" % len(fails))
sys.exit(1 if fails else 0)
PY
rc=$?
[ $rc = 0 ] || tbc_die "campaign checks failed (see above)"
tbc_log "testbed_campaign: ok"
