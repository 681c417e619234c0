#!/bin/sh
# The rewrite-payload middlebox and the probe's checksum test, end to end on
# the emulated testbed (topology tests/testbed/payload.cfg) with the real
# controller and agents (deploy/testbed/agents.sh):
# - a probe from site pa over its clean ISP and its ISP "alg" (an ALG that
#   changes byte 100000 of every TCP stream and fixes the TCP checksum) to
#   pb, IPv4 and IPv6, one finding per path: DSS checksums fail (csum_failed,
#   with MP_FAIL and an infinite mapping counted by pa's kernel, the
#   connection falling back, the echo coming back changed) on exactly the
#   paths through alg, and on none through clean; MPTCP itself survives
#   everywhere (the main probe connection moves less than 100000 bytes);
# - the controller's census shows it per cell (JSON: csumTested, csumFailed,
#   csumMpFail, csumInfiniteMap, payloadModified);
# - the emulator counted its rewrites on pa/alg and nothing malformed;
# - the same probe on the bundled stack (libmps on pa's client TUN against
#   pb's bundled responder) gives the same verdicts from its own view: DSS
#   checksums fail on exactly the alg paths (MP_FAIL counted by libmps, the
#   connection falling back), MP_CAPABLE survives everywhere, a join from
#   pa's other bundled address comes up, each finding says it is the bundled
#   stack's, and the census keeps those findings in cells of their own
#   (stack STACK_BUNDLED) beside the kernel's.
# pa's MPTCP subflow endpoints and its ADD_ADDR limit are set to none after
# agents.sh sets them up: the checksum test must run on one subflow for its failure to be the path's own
# (with joins Linux resets the failing subflow instead, and the join may have
# taken another ISP).
# Every path's run reserves pb/clean, so the four runs take turns: the
# kernel's counters (per namespace) then belong to one run each.
# Needs root; about 30 s. Run under `flock /tmp/fjtb.lock`: one testbed per
# machine (fixed namespace names), and it is always taken down (trap).
set -u
. tests/e2e/testbed_lib.sh
TOPO=tests/testbed/payload.cfg
tbc_begin "$TOPO"
tbc_log "fjtb-payload up, controller and $TBC_NSITES agents online"
ip -n fjtb-pa mptcp endpoint flush || tbc_die "ip mptcp endpoint flush in fjtb-pa"
# No joins to the addresses pb announces either (ADD_ADDR, IPv4 on IPv6 too).
ip -n fjtb-pa mptcp limits set subflows 0 add_addr_accepted 0 ||
	tbc_die "ip mptcp limits set in fjtb-pa"

PA=$(tbc_agent pa)
PB=$(tbc_agent pb)
cat >"$T/probe.json" <<JSON
{ "name": "mbox-payload-probe", "type": "EXPERIMENT_TYPE_PROBE", "probe": { "timeoutMs": 3000 },
  "targets": { "pairs": [ { "clientAgentId": "$PA", "serverAgentId": "$PB" } ],
               "localIsps": [ "clean", "alg" ], "remoteIsps": [ "clean" ],
               "perPath": true, "families": [ "ADDRESS_FAMILY_IPV4", "ADDRESS_FAMILY_IPV6" ] },
  "deadlineS": 120, "pickupS": 110 }
JSON
e=$(tbc_create probe)
[ -n "$e" ] || tbc_die "no experiment id: $(cat "$T/create-probe.out")"
tbc_wait 120 "$e"
cli results --experiment "$e" --json >"$T/res.json" || tbc_die "fjord results"
# The same on the bundled stack, after the kernel's (the runs reserve pb/clean anyway).
sed 's/mbox-payload-probe/mbox-payload-bundled-probe/; s/"deadlineS"/"stack": { "stacks": [ "STACK_BUNDLED" ] }, "deadlineS"/' \
	"$T/probe.json" >"$T/bprobe.json"
eb=$(tbc_create bprobe)
[ -n "$eb" ] || tbc_die "no experiment id: $(cat "$T/create-bprobe.out")"
tbc_wait 120 "$eb"
cli results --experiment "$eb" --json >"$T/res_b.json" || tbc_die "fjord results (bundled)"
# The bundled stack's own packet traces of each run: the probe connections'
# and the checksum tests' (uploaded after the result, so given a few seconds).
for r in $(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(x["run"]["id"] for x in (d.get("rows", []) if isinstance(d, dict) else d)))' \
	"$T/res_b.json"); do
	i=0
	until cli traces list "$r" --csv >"$T/traces-$r.csv" 2>&1 &&
		grep -q '^capture\.pcap,' "$T/traces-$r.csv" &&
		grep -q '^capture_csum\.pcap,' "$T/traces-$r.csv"; do
		i=$((i + 1))
		[ $i -lt 20 ] || break
		sleep 0.5
	done
	cli traces get "$r" capture_csum.pcap -o "$T/csum-$r.pcap" >/dev/null 2>&1 ||
		echo "no capture_csum.pcap for $r: $(cat "$T/traces-$r.csv")"
done
cli census --json >"$T/census.json" || tbc_die "fjord census"
cli census >"$T/census.txt" || tbc_die "fjord census (table)"
cat "$T/census.txt"
tb status >"$T/status2" 2>&1 || tbc_die "fjord-testbed status"
grep 'rewrite-payload' "$T/status2"

python3 - "$T" <<'PY'
import json, re, struct, sys

T = sys.argv[1]
fails = []
passed = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    (passed if cond else fails).append(what)


d = json.load(open(T + "/res.json"))
rows = d.get("rows", []) if isinstance(d, dict) else d
seen = set()
for r in rows:
    res = r["result"]
    check(res.get("ok", False), "probe run %s succeeded %s" % (r["run"]["id"], res.get("error", "")))
    for f in res.get("probeFindings", []):
        p = f["path"]
        isp, fam = p["localIsp"], p.get("family", "")
        want = isp == "alg"
        seen.add((isp, fam))
        what = "%s %s (%s)" % (isp, fam, f.get("csumCheck", ""))
        check(f.get("reachable", False) and f.get("mpCapable", False),
              "%s: reachable, MP_CAPABLE survives" % what)
        check(f.get("csumTested", False), "%s: the checksum test ran with checksums on" % what)
        check(int(f.get("csumSubflows", 0)) == 1, "%s: on one subflow" % what)
        check(bool(f.get("csumFailed", False)) == want,
              "%s: csum_failed=%s (want %s)" % (what, f.get("csumFailed", False), want))
        check(bool(f.get("payloadModified", False)) == want,
              "%s: payload_modified=%s (want %s)" % (what, f.get("payloadModified", False), want))
        mpfail = int(f.get("csumMpFailTx", 0)) + int(f.get("csumMpFailRx", 0))
        infmap = int(f.get("csumInfiniteMapTx", 0)) + int(f.get("csumInfiniteMapRx", 0))
        check((mpfail > 0 and infmap > 0 and bool(f.get("csumFallback", False))) == want,
              "%s: MP_FAIL %d, infinite mapping %d, fell back %s (all of them: %s)" % (
                  what, mpfail, infmap, f.get("csumFallback", False), want))
check(seen == {(i, f) for i in ("clean", "alg")
               for f in ("ADDRESS_FAMILY_IPV4", "ADDRESS_FAMILY_IPV6")},
      "one finding per ISP and family: %s" % sorted(seen))

c = json.load(open(T + "/census.json"))
cells = {(x["localIsp"], x.get("family", "")): x for x in c.get("cells", []) if "stack" not in x}
bcells = {(x["localIsp"], x.get("family", "")): x for x in c.get("cells", [])
          if x.get("stack") == "STACK_BUNDLED"}
for (isp, fam) in sorted(seen):
    x = cells.get((isp, fam), {})
    want = 1 if isp == "alg" else 0
    check(int(x.get("csumTested", 0)) == 1 and int(x.get("csumFailed", 0)) == want and
          int(x.get("csumMpFail", 0)) == want and int(x.get("csumInfiniteMap", 0)) == want and
          int(x.get("payloadModified", 0)) == want,
          "census %s %s: csumTested %s csumFailed %s csumMpFail %s csumInfiniteMap %s "
          "payloadModified %s (failures want %d)" % (
              isp, fam, x.get("csumTested", 0), x.get("csumFailed", 0), x.get("csumMpFail", 0),
              x.get("csumInfiniteMap", 0), x.get("payloadModified", 0), want))

# The CLI's table: CSUM_TEST is failed/tested per cell.
table = [l.split() for l in open(T + "/census.txt")]
hdr = table[0] if table else []
for (isp, fam) in sorted(seen):
    short = "ipv4" if fam.endswith("IPV4") else "ipv6"
    row = [r for r in table[1:] if r[:3] == [isp, "clean", short] and r[-1] == "kernel"]
    got = row[0][hdr.index("CSUM_TEST")] if row and "CSUM_TEST" in hdr else None
    want = "1/1" if isp == "alg" else "0/1"
    check(got == want, "fjord census %s %s: CSUM_TEST %s (want %s)" % (isp, short, got, want))

# The bundled stack's findings: the same verdicts, from libmps's own view.
d = json.load(open(T + "/res_b.json"))
rows = d.get("rows", []) if isinstance(d, dict) else d
bseen = set()
for r in rows:
    res = r["result"]
    check(res.get("ok", False) and r["run"].get("stack") == "STACK_BUNDLED",
          "bundled probe run %s succeeded on the bundled stack %s" % (
              r["run"]["id"], res.get("error", "")))
    prov = res.get("provenance", {})
    check(prov.get("stack") == "STACK_BUNDLED" and prov.get("stackVersion", "").startswith("libmps"),
          "bundled run %s: provenance %s %s" % (r["run"]["id"], prov.get("stack"),
                                               prov.get("stackVersion")))
    for f in res.get("probeFindings", []):
        p = f["path"]
        isp, fam = p["localIsp"], p.get("family", "")
        want = isp == "alg"
        bseen.add((isp, fam))
        what = "bundled %s %s (%s; %s)" % (isp, fam, f.get("mptcpCheck", ""), f.get("csumCheck", ""))
        check(f.get("stack") == "STACK_BUNDLED", "%s: the finding names its stack" % what)
        check(f.get("reachable", False) and f.get("mpCapable", False),
              "%s: reachable, MP_CAPABLE survives" % what)
        check(not f.get("nat", False), "%s: no NAT" % what)
        check(f.get("mpJoin", False), "%s: the join from pa's other bundled address came up" % what)
        check(f.get("csumTested", False), "%s: the checksum test ran with checksums on" % what)
        check(int(f.get("csumSubflows", 0)) == 1, "%s: on one subflow" % what)
        check(bool(f.get("csumFailed", False)) == want,
              "%s: csum_failed=%s (want %s)" % (what, f.get("csumFailed", False), want))
        mpfail = int(f.get("csumMpFailTx", 0)) + int(f.get("csumMpFailRx", 0))
        check((mpfail > 0) == want, "%s: MP_FAIL %d (want some: %s)" % (what, mpfail, want))
        check(bool(f.get("csumFallback", False)) == want,
              "%s: fell back %s (want %s)" % (what, f.get("csumFallback", False), want))
        check(not f.get("seqRewritten", False), "%s: no sequence rewriting" % what)
check(bseen == seen, "bundled: one finding per ISP and family: %s" % sorted(bseen))


def mp_fails(path):
    """MP_FAIL options (MPTCP subtype 6) in a raw-IP pcap; None if unreadable."""
    try:
        b = open(path, "rb").read()
    except OSError:
        return None
    if len(b) < 24 or b[:4] not in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4"):
        return None
    end = "<" if b[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    off, n = 24, 0
    while off + 16 <= len(b):
        incl = struct.unpack(end + "I", b[off + 8:off + 12])[0]
        pkt = b[off + 16:off + 16 + incl]
        off += 16 + incl
        if not pkt:
            continue
        v = pkt[0] >> 4
        if v == 4 and len(pkt) >= 20 and pkt[9] == 6:
            tcp = pkt[(pkt[0] & 15) * 4:]
        elif v == 6 and len(pkt) >= 40 and pkt[6] == 6:
            tcp = pkt[40:]
        else:
            continue
        if len(tcp) < 20:
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
            if opts[i] == 30 and i + 2 < len(opts) and opts[i + 2] >> 4 == 6:
                n += 1
            i += opts[i + 1]
    return n


for r in rows:
    rid = r["run"]["id"]
    names = open(T + "/traces-" + rid + ".csv").read()
    check("capture.pcap," in names and "capture_csum.pcap," in names,
          "bundled run %s: traces capture.pcap and capture_csum.pcap uploaded" % rid)
    for f in r["result"].get("probeFindings", []):
        want = f["path"]["localIsp"] == "alg"
        n = mp_fails(T + "/csum-" + rid + ".pcap")
        check(n is not None and (n > 0) == want,
              "bundled run %s (%s %s): MP_FAIL options in capture_csum.pcap: %s (want some: %s)"
              % (rid, f["path"]["localIsp"], f["path"].get("family", ""), n, want))
for (isp, fam) in sorted(bseen):
    x = bcells.get((isp, fam), {})
    k = cells.get((isp, fam), {})
    want = 1 if isp == "alg" else 0
    check(int(x.get("probes", 0)) == 1 and int(x.get("csumTested", 0)) == 1 and
          int(x.get("csumFailed", 0)) == want and int(x.get("mpCapableOk", 0)) == 1,
          "census bundled %s %s: probes %s csumTested %s csumFailed %s mpCapableOk %s "
          "(failures want %d)" % (isp, fam, x.get("probes", 0), x.get("csumTested", 0),
                                  x.get("csumFailed", 0), x.get("mpCapableOk", 0), want))
    check(int(k.get("probes", 0)) == 1, "census kernel %s %s: still its own probe only (%s)" % (
        isp, fam, k.get("probes", 0)))

st = open(T + "/status2").read()
m = re.search(r"^pa/alg up queue=\d+ rewrite-payload: offset=100000 .*rewritten=(\d+)", st, re.M)
check(m is not None and int(m.group(1)) >= 2,
      "the emulator rewrote payload going up pa/alg (rewritten=%s)" % (m and m.group(1)))
m = re.search(r"^pa/alg down queue=\d+ rewrite-payload: .*rewritten=(\d+)", st, re.M)
check(m is not None and int(m.group(1)) >= 1,
      "the emulator rewrote payload coming down pa/alg (rewritten=%s)" % (m and m.group(1)))
check(not re.search(r"rewrite-payload: .*errors=[1-9]", st), "no malformed segment at the middlebox")
print("mbox_payload: %d passed, %d failed" % (len(passed), len(fails)))
sys.exit(1 if fails else 0)
PY
rc=$?
[ $rc = 0 ] || tbc_die "mbox_payload checks failed (see above)"
tbc_log "mbox_payload: ok"
