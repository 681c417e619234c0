# Shared by the testbed integration tests; sourced from the repo root.
# Each test brings the testbed up from tests/testbed/topo.cfg under its own
# state directory and always takes it down again (trap on exit).
# FJTB_TESTBED runs the tests against another build (e.g. one with sanitizers).
TB=${FJTB_TESTBED:-build/fjord-testbed}
RUN=/run/fjtb-test
TOPO=tests/testbed/topo.cfg
CTL4=198.18.0.10
CTL6=fd00:ff::10
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

ok() {
	echo "ok: $*"
}

tb() {
	"$TB" --run-dir "$RUN" "$@"
}

tb_cleanup() {
	for p in $BG_PIDS; do kill "$p" 2>/dev/null; done
	tb down >/dev/null 2>&1 || tb down
}

tb_begin() {
	if [ "$(id -u)" != 0 ]; then
		echo "needs root (network namespaces)"
		exit 1
	fi
	for b in "$TB" "$(dirname "$TB")/fjord-linkemu" build/fjtb-mptcp-probe; do
		[ -x "$b" ] || { echo "missing $b: run make"; exit 1; }
	done
	BG_PIDS=""
	# Leftovers of an earlier run of ours go first; someone else's testbed stops us.
	tb down >/dev/null 2>&1
	if [ -e /run/netns/fjtb-core ]; then
		echo "another testbed is up (namespace fjtb-core); run fjord-testbed down first"
		exit 1
	fi
	trap tb_cleanup EXIT
	trap 'exit 1' INT TERM HUP
}

tb_end() {
	echo "$(basename "$0" .sh): $((checks - failures)) passed, $failures failed"
	[ "$failures" = 0 ]
}

# Address of a node on an ISP as fjord-testbed status prints it: kernel v4/v6.
node_addr() { # node isp 4|6
	tb status | awk -v n="$1" -v i="$2" -v f="$3" '
		$1 == "node" && $2 == n && $4 == i {
			for (k = 1; k <= NF; k++) if ($k == "kernel") { print (f == 4 ? $(k+1) : $(k+2)); exit }
		}'
}

# Median of the RTTs (ms) of a ping run on stdin.
median_rtt() {
	sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -n | awk '{ a[NR] = $1 } END {
		if (NR == 0) { print "none"; exit }
		if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

checks=0
check() { # description, then a shell condition
	checks=$((checks + 1))
	_desc=$1
	shift
	if eval "$@"; then ok "$_desc"; else fail "$_desc"; fi
}

# Running emulators (a killed one may stay a zombie until init reaps it).
emu_count() {
	ps -C fjord-linkemu -o stat= | grep -vc Z
}
