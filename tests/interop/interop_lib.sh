# Shared helpers of the interop scripts kernel_fallback.sh, kernel_pathcut.sh
# and kernel_fastclose.sh (sourced, not run). The caller sets NAME (its
# prefix in messages) and TMP (its private directory), and sets fail=0.

check() { # what expected actual
	if [ "$2" = "$3" ]; then
		echo "$NAME: ok: $1"
	else
		echo "$NAME: FAIL: $1: expected '$2', got '$3'" >&2
		fail=1
	fi
}

# One key of the first JSON line on stdin, lower-cased; nothing if the line or
# the key is missing, so check() reports it.
jget() {
	python3 -c 'import json,sys
try:
    print(str(json.loads(sys.stdin.readline())[sys.argv[1]]).lower())
except (ValueError, KeyError):
    pass' "$1"
}

# Kernel counter deltas of one run: counters_reset NS before it, counters_read NS
# after it; the nstat history is private to the caller.
counters_reset() { NSTAT_HISTORY="$TMP/nstat.hist" ip netns exec "$1" nstat -n >/dev/null; }
counters_read() { NSTAT_HISTORY="$TMP/nstat.hist" ip netns exec "$1" nstat -z >"$TMP/nstat" 2>/dev/null; }
counter() { awk -v n="$1" '$1 == n { print $2 + 0; f = 1 } END { if (!f) print 0 }' "$TMP/nstat"; }
# Counters of a regex that are not zero, as NAME=VALUE, space separated.
counters_nonzero() {
	awk -v re="$1" '$1 ~ /^MPTcpExt/ && $1 ~ re && $2 != 0 { printf "%s=%s ", $1, $2 }' "$TMP/nstat"
}

wait_listen() { # netns port
	i=0
	while [ $i -lt 100 ]; do
		ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q . && return 0
		sleep 0.05
		i=$((i + 1))
	done
	echo "$NAME: nothing listens on port $2 in $1" >&2
	return 1
}

# tshark reads a trace of ours with nothing malformed and no expert warning
# or error other than TCP's sequence notes (resets, zero windows,
# retransmissions), which these scenarios cause on purpose. Prints the
# offending expert lines.
trace_clean() { # what pcap
	if ! tshark -r "$2" -q -z expert,warn >"$TMP/tshark.out" 2>"$TMP/tshark.err"; then
		check "$1: tshark reads the trace" "" "$(grep -v 'Running as user' "$TMP/tshark.err")"
		return
	fi
	bad=$(awk '/^(Errors|Warns) \(/ { sec = 1; next }
		/^(Notes|Chats|Comments) \(/ { sec = 0; next }
		sec && $1 ~ /^[0-9]+$/ && !($2 == "Sequence" && $3 == "TCP") { print }' \
		"$TMP/tshark.out" | head -5)
	check "$1: tshark finds nothing malformed and no MPTCP warning" "" "$bad"
	check "$1: the trace holds packets" yes \
		"$([ "$(tshark -r "$2" 2>/dev/null | head -3 | wc -l)" -gt 2 ] && echo yes)"
}
