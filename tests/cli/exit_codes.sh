#!/bin/sh
# Exit-code tests for the fjord CLI: every broken command line gets exit 2
# and a message naming the problem, an unreachable controller exit 3, a
# refused request (401, 404, 400) exit 1 with the controller's own reason.
# Run from the repository root.
set -u
. tests/e2e/lib.sh

FJ=build/fjord
[ -x "$FJ" ] || fj_die "$FJ is not built"
fj_tmpdir
unset FJORD_CONTROLLER FJORD_TOKEN FJORD_CACERT

fails=0
n=0
# expect CODE PATTERN CMD...: runs CMD, checks its exit code and that its
# stdout+stderr match the extended regular expression PATTERN.
expect()
{
	want=$1
	pat=$2
	shift 2
	n=$((n + 1))
	"$@" >"$T/out" 2>&1
	got=$?
	if [ "$got" != "$want" ]; then
		echo "FAIL: '$*': exit $got, expected $want"
		sed 's/^/    /' "$T/out" | head -n 10
		fails=$((fails + 1))
	elif ! grep -Eq -- "$pat" "$T/out"; then
		echo "FAIL: '$*': output does not match /$pat/"
		sed 's/^/    /' "$T/out" | head -n 10
		fails=$((fails + 1))
	fi
}

# --- usage errors: exit 2, before any request -------------------------------
expect 2 "no command given" $FJ
expect 2 "no command 'frobnicate'" $FJ frobnicate
expect 2 "unknown option '--bogus'" $FJ --bogus agents
expect 2 "unknown option '--bogus'" $FJ runs --bogus
expect 2 "option '--limit' needs a value" $FJ runs --limit
expect 2 "--limit: expected a whole number, got 'abc'" $FJ runs --limit abc
expect 2 "--limit: 0 is not in 1..10000" $FJ runs --limit 0
expect 2 "--limit: 20000 is not in 1..10000" $FJ results --limit 20000
expect 2 "--family: unknown value 'ipv5' \(one of ipv4, ipv6\)" $FJ runs --family ipv5
expect 2 "--stack: unknown value 'quic'" $FJ results --stack quic
expect 2 "--state: unknown value 'done'" $FJ runs --state succeeded,done
expect 2 "--from: expected a time" $FJ runs --from yesterday
expect 2 "--controller: 'ftp://x' is not an http" $FJ --controller ftp://x agents
expect 2 "--json, --csv and --table exclude each other" $FJ results --json --csv
expect 2 "unknown subcommand 'delete'" $FJ agents delete x
expect 2 "'agents show' needs exactly one agent ID" $FJ agents show
expect 2 "which subcommand" $FJ experiments
expect 2 "'experiments cancel' needs exactly one experiment ID" $FJ experiments cancel
expect 2 "--metric is required" $FJ aggregate --group-by stack
expect 2 "--group-by: unknown value 'colour'" $FJ aggregate --metric rtt_p50_us --group-by colour
expect 2 "'traces get' needs a run ID and a trace name" $FJ traces get r1
expect 2 "'../x' is not a trace name" $FJ traces get r1 ../x
expect 2 "-o is for 'traces get'" $FJ traces list r1 -o f
expect 2 "unknown option '--type'" $FJ runs --type echo
expect 2 "option '-o' is not valid here" $FJ runs -o file
expect 2 "--type is required" $FJ experiments create --pairs a:b
expect 2 "unknown experiment type 'ping'" $FJ experiments create --type ping --pairs a:b
expect 2 "give the targets" $FJ experiments create --type echo
expect 2 "--pairs and --all-site-pairs exclude each other" \
	$FJ experiments create --type echo --pairs a:b --all-site-pairs
expect 2 "'a' is not CLIENT:SERVER" $FJ experiments create --type echo --pairs a
expect 2 "'a:b:c' is not CLIENT:SERVER" $FJ experiments create --type echo --pairs a:b:c
expect 2 "--pairs: empty item" $FJ experiments create --type echo --pairs a:b,,c:d
expect 2 "--sites only limits --all-site-pairs" \
	$FJ experiments create --type echo --pairs a:b --sites oslo
expect 2 "--count 3 needs --interval" $FJ experiments create --type echo --pairs a:b --count 3
expect 2 "--count: must be at least 1" $FJ experiments create --type echo --pairs a:b --count 0
expect 2 "--interval: must be at least 1 second" \
	$FJ experiments create --type echo --pairs a:b --count 2 --interval 0
expect 2 "--interval: expected a duration" \
	$FJ experiments create --type echo --pairs a:b --count 2 --interval 2x
expect 2 "a periodic experiment needs --count or --until" \
	$FJ experiments create --type echo --pairs a:b --interval 5
expect 2 "--at: expected a time" $FJ experiments create --type echo --pairs a:b --at tomorrow
expect 2 "--family: unknown value 'ipx'" \
	$FJ experiments create --type echo --pairs a:b --family ipv4,ipx
expect 2 "--stack: unknown value 'quic'" \
	$FJ experiments create --type echo --pairs a:b --stack kernel,quic
expect 2 "--messages: expected a whole number" \
	$FJ experiments create --type echo --pairs a:b --messages -1
expect 2 "--bytes does not apply to --type echo" \
	$FJ experiments create --type echo --pairs a:b --bytes 10M
expect 2 "--messages does not apply to --type bulk" \
	$FJ experiments create --type bulk --pairs a:b --messages 3
expect 2 "--bytes: expected a byte count" $FJ experiments create --type bulk --pairs a:b --bytes 3X
expect 2 "--direction: 'sideways' is neither upload nor download" \
	$FJ experiments create --type bulk --pairs a:b --direction sideways
expect 2 "--type handover needs at least one --link-event" \
	$FJ experiments create --type handover --pairs a:b --duration 5
expect 2 "--link-event: '3000:telenor' is not AT_MS:ISP:ACTION" \
	$FJ experiments create --type handover --pairs a:b --link-event 3000:telenor
expect 2 "--link-event: action 'sideways' is not down, up or backup" \
	$FJ experiments create --type handover --pairs a:b --link-event 3000:telenor:sideways
expect 2 "--link-event is for --type handover" \
	$FJ experiments create --type bulk --pairs a:b --link-event 1:x:down
expect 2 "--file holds the whole spec" $FJ experiments create --file x.json --type echo
expect 2 "--file: cannot open $T/missing.json" \
	$FJ experiments create --file "$T/missing.json"
printf '{"type":"EXPERIMENT_TYPE_ECHO","targets":{"pairs":[{"clientAgentId":5}]}}' >"$T/bad.json"
expect 2 "targets\.pairs\[0\]\.clientAgentId" $FJ experiments create --file "$T/bad.json"
printf '{"type":"EXPERIMENT_TYPE_ECHO","colour":"red"}' >"$T/unknown.json"
expect 2 "colour" $FJ experiments create --file "$T/unknown.json"
printf '{"type":' >"$T/trunc.json"
expect 2 "is not a valid ExperimentSpec" $FJ experiments create --file "$T/trunc.json"

# --- help: exit 0 on stdout, for every command ------------------------------
expect 0 "^Usage: fjord \[global options\] COMMAND" $FJ --help
expect 0 "^Usage: fjord \[global options\] COMMAND" $FJ help
expect 0 "^Usage: fjord agents" $FJ agents --help
expect 0 "^Usage: fjord agents" $FJ agents show --help
expect 0 "^Usage: fjord experiments create" $FJ experiments create --help
expect 0 "^Usage: fjord experiments create" $FJ help experiments create
expect 0 "^Usage: fjord experiments create \.\.\." $FJ experiments --help
expect 0 "^Usage: fjord experiments create \.\.\." $FJ experiments list --help
expect 0 "^Usage: fjord runs" $FJ runs --help
expect 0 "^Usage: fjord results" $FJ results --help
expect 0 "^Usage: fjord aggregate" $FJ aggregate --help
expect 0 "^Usage: fjord traces" $FJ traces --help
expect 0 "^Usage: fjord traces" $FJ traces get --help

# --- the spec the flags make (no controller needed with --dry-run) ----------
$FJ experiments create --type echo --pairs a1:b1,a2:b2 --count 3 --interval 2 --jitter 1 \
	--family ipv4,ipv6 --stack kernel,tcp --per-path --isps telenor,uninett \
	--message-bytes 64 --messages 5 --deadline 1m --share-links --name nightly \
	--at 1800000000000 --dry-run >"$T/spec.json" 2>"$T/err"
rc=$?
n=$((n + 1))
if [ $rc != 0 ] || ! python3 - "$T/spec.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
want = {
    "name": "nightly", "type": "EXPERIMENT_TYPE_ECHO",
    "echo": {"messageBytes": 64, "count": 5},
    "stack": {"stacks": ["STACK_KERNEL", "STACK_TCP"]},
    "targets": {"pairs": [{"clientAgentId": "a1", "serverAgentId": "b1"},
                          {"clientAgentId": "a2", "serverAgentId": "b2"}],
                "localIsps": ["telenor", "uninett"], "remoteIsps": ["telenor", "uninett"],
                "families": ["ADDRESS_FAMILY_IPV4", "ADDRESS_FAMILY_IPV6"], "perPath": True},
    "schedule": {"startMs": "1800000000000", "intervalS": 2, "count": 3, "jitterS": 1},
    "shareLinks": True, "deadlineS": 60,
}
if s != want:
    print("got ", json.dumps(s, sort_keys=True))
    print("want", json.dumps(want, sort_keys=True))
    sys.exit(1)
PY
then
	echo "FAIL: --dry-run spec differs"
	cat "$T/err"
	fails=$((fails + 1))
fi
# The other types' flags.
dry()
{
	$FJ experiments create --pairs a:b --dry-run "$@" | python3 -c '
import json, sys
s = json.load(sys.stdin)
del s["targets"]
print(json.dumps(s, sort_keys=True, separators=(",", ":")))'
}
check_dry()
{
	want=$1
	shift
	n=$((n + 1))
	got=$(dry "$@" 2>&1)
	if [ "$got" != "$want" ]; then
		echo "FAIL: --dry-run $*"
		echo "    got  $got"
		echo "    want $want"
		fails=$((fails + 1))
	fi
}
check_dry '{"bulk":{"baseline":true,"bytes":"10000000","direction":"DIRECTION_DOWNLOAD"},"type":"EXPERIMENT_TYPE_BULK"}' \
	--type bulk --bytes 10M --direction download --baseline
check_dry '{"bulk":{"bytes":"65536","durationS":120},"type":"EXPERIMENT_TYPE_BULK"}' \
	--type bulk --bytes 64KiB --duration 2m
check_dry '{"handover":{"bulk":{"direction":"DIRECTION_UPLOAD","durationS":10},"events":[{"action":"down","atMs":3000,"isp":"telenor"},{"action":"up","atMs":6000,"isp":"telenor"}]},"type":"EXPERIMENT_TYPE_HANDOVER"}' \
	--type handover --duration 10 --direction upload --link-event 3000:telenor:down \
	--link-event 6000:telenor:up
check_dry '{"rr":{"durationS":5,"ratePerS":50,"requestBytes":100,"responseBytes":1000},"type":"EXPERIMENT_TYPE_RR"}' \
	--type rr --request-bytes 100 --response-bytes 1000 --rate 50 --duration 5
check_dry '{"probe":{"timeoutMs":2000},"sampleIntervalMs":50,"type":"EXPERIMENT_TYPE_PROBE"}' \
	--type probe --probe-timeout-ms 2000 --sample-interval-ms 50

# Global options may come before the subcommand.
expect 0 '"clientAgentId": "a"' $FJ experiments --timeout 5 create --type echo --pairs a:b \
	--dry-run
expect 2 "unknown subcommand 'delete'" $FJ experiments --timeout 5 delete x
# A --file spec goes through the same mapping and comes out canonical.
printf '{"name":"f","type":"EXPERIMENT_TYPE_ECHO","echo":{"message_bytes":8,"count":2},
  "targets":{"all_site_pairs":true,"sites":["oslo","bergen"]},"schedule":{"interval_s":60,
  "count":"2"}}' >"$T/file.json"
expect 0 '"allSitePairs": true' $FJ experiments create --file "$T/file.json" --dry-run
expect 0 '"messageBytes": 8' $FJ experiments create --file "$T/file.json" --dry-run

# --- unreachable controller: exit 3 -----------------------------------------
port=$(fj_free_port)
expect 3 "cannot reach the controller at http://127.0.0.1:$port" \
	$FJ --controller "http://127.0.0.1:$port" agents
expect 3 "cannot reach the controller" env FJORD_CONTROLLER="http://127.0.0.1:$port" $FJ runs
expect 3 "cannot reach the controller" $FJ --controller "http://127.0.0.1:$port" \
	experiments create --type echo --pairs a:b

# --- a real controller refusing: exit 1 with its reason ---------------------
fj_controller_start
C="--controller $FJ_URL"
expect 1 "refused by the controller \(401\): .+" $FJ $C agents
expect 1 "refused by the controller \(401\): .+" $FJ $C --token not-a-token runs
viewer=$(fj_token viewer)
expect 0 "^ID +SITE +NODE" $FJ $C --token "$viewer" agents
expect 1 "refused by the controller \(403\): .+" $FJ $C --token "$viewer" \
	experiments cancel nope
expect 1 "refused by the controller \(404\): .+" env FJORD_TOKEN="$viewer" $FJ $C \
	experiments show no-such-experiment
exp=$(fj_token experimenter)
expect 2 "--pairs: no agent 'nowhere'" env FJORD_TOKEN="$exp" $FJ $C experiments create \
	--type echo --pairs nowhere:else
expect 1 "refused by the controller \(4[0-9][0-9]\): .+" env FJORD_TOKEN="$exp" $FJ $C \
	experiments create --type echo --all-site-pairs --sites atlantis,lemuria
expect 1 "refused by the controller \(404\): .+" env FJORD_TOKEN="$exp" $FJ $C \
	traces list no-run
fj_controller_stop

# --- a plain web server that is no controller: 5xx is exit 4, a 4xx without
# an Error body is exit 1 with its text, a 200 that is not the expected
# message is exit 4 -----------------------------------------------------------
mkdir -p "$T/www/api/v1/runs"
printf '{"agents": 5}' >"$T/www/api/v1/agents"
printf '{"rows": [{"run": {"id": "r1", "colour": "red"}}]}' >"$T/www/api/v1/results"
wport=$(fj_free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$wport" >"$T/www.log" 2>&1 &
FJ_PIDS="$FJ_PIDS $!"
fj_wait_for 10 curl -fsS -o /dev/null "http://127.0.0.1:$wport/api/v1/agents" ||
	fj_die "python3 -m http.server did not start"
W="--controller http://127.0.0.1:$wport"
expect 4 "controller error \(501\): .*Unsupported method" $FJ $W experiments cancel e1
expect 1 "refused by the controller \(404\): .*File not found" $FJ $W experiments list
expect 4 "not a valid fjord.v1.AgentList: .*agents" $FJ $W agents
expect 4 "not a valid fjord.v1.ResultList: .*colour" $FJ $W results
expect 4 "controller error \(301\)" $FJ $W runs

# --- https: the CLI checks the controller's certificate ---------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$T/tls-key.pem" -out "$T/tls-cert.pem" >"$T/openssl.log" 2>&1 ||
	fj_die "openssl could not make a test certificate: $(cat "$T/openssl.log")"
FJ_TLS_CERT="$T/tls-cert.pem"
FJ_TLS_KEY="$T/tls-key.pem"
FJ_PORT=""
rm -f "$T/controller.cfg"
fj_controller_config
fj_controller_start
expect 1 "refused by the controller \(401\)" $FJ --controller "$FJ_URL" --cacert "$FJ_TLS_CERT" \
	agents
expect 0 "^ID +SITE" env FJORD_CACERT="$FJ_TLS_CERT" FJORD_CONTROLLER="$FJ_URL" \
	FJORD_TOKEN="$(fj_token viewer)" $FJ agents
expect 3 "cannot reach the controller at https://127.0.0.1:$FJ_PORT: .*(SSL|certificate)" \
	$FJ --controller "$FJ_URL" agents
fj_controller_stop

echo "cli exit codes: $((n - fails)) of $n checks passed"
[ "$fails" = 0 ]
