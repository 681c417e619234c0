#!/bin/sh
# fjord-testbed up/down: idempotent, recovers from a crash and from a
# half-finished up, leaves no namespace, link, rule, file or process behind,
# and every failure names its step or setting.
. tests/testbed/lib.sh
tb_begin

snapshot() {
	{
		ip netns list | grep '^fjtb-' | sort
		ip -o link show | awk '{ print $2 }' | sort
		iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9:]*\]//'
		ip6tables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9:]*\]//'
		ip rule show
		ps -C fjord-linkemu -o pid=,stat= | awk '$2 !~ /Z/'
		ls "$RUN" "$RUN.lock" 2>/dev/null
	} >"$1"
}

base=$(mktemp)
after=$(mktemp)
out=$(mktemp)
snapshot "$base"

tb up "$TOPO" >"$out" 2>&1; rc=$?
check "up succeeds" '[ $rc = 0 ]'
check "all namespaces exist" '[ -e /run/netns/fjtb-core ] && [ -e /run/netns/fjtb-ctl ] &&
	[ -e /run/netns/fjtb-ta ] && [ -e /run/netns/fjtb-tb ]'
check "the emulator runs" '[ "$(emu_count)" = 1 ]'
tb up "$TOPO" >"$out" 2>&1; rc=$?
check "a second up is a no-op" '[ $rc = 0 ] && grep -q "already up" "$out"'
check "still one emulator" '[ "$(emu_count)" = 1 ]'
check "TUN devices exist" 'ip -n fjtb-tb link show fjtun1 >/dev/null 2>&1'

# A crashed emulator: status says so, up repairs it.
kill -9 "$(cat "$RUN/linkemu.pid")"
sleep 0.1
tb status >"$out" 2>&1; rc=$?
check "status reports a dead emulator" '[ $rc != 0 ] && grep -q "NOT RUNNING" "$out"'
tb up "$TOPO" >"$out" 2>&1; rc=$?
check "up after a crash rebuilds" '[ $rc = 0 ] && [ "$(emu_count)" = 1 ]'
a=$(node_addr ta1 clean 4)
check "traffic flows after the rebuild" \
	'ip netns exec fjtb-ta ping -c 2 -i 0.05 -W 1 -I "$a" $CTL4 >/dev/null'

ip netns exec fjtb-tb sleep 300 &
sleeper=$!
sleep 0.2
tb down >"$out" 2>&1; rc=$?
check "down succeeds" '[ $rc = 0 ]'
sleep 0.2
alive=$(ps -o stat= -p $sleeper | grep -vc Z)
check "down ended a process left inside a site namespace" '[ "$alive" = 0 ]'
wait $sleeper 2>/dev/null
tb down >"$out" 2>&1; rc=$?
check "a second down is a no-op" '[ $rc = 0 ]'
snapshot "$after"
check "nothing left behind after down" 'diff "$base" "$after"'

# A half-finished up (the second node's TUN name clashes with lo), then down.
bad=$(mktemp)
sed 's/tun = "fjtun1"/tun = "lo"/' "$TOPO" >"$bad"
tb up "$bad" >"$out" 2>&1; rc=$?
check "a failing up exits non-zero" '[ $rc != 0 ]'
check "the failure names its step" 'grep -q "step \"TUN device of the bundled stack\" failed" "$out"'
check "the half-built namespaces exist" '[ -e /run/netns/fjtb-core ]'
tb down >"$out" 2>&1; rc=$?
snapshot "$after"
check "down after a half-finished up leaves nothing" 'diff "$base" "$after"'

# A bad topology: a clear message naming the setting, and nothing is made.
sed 's/delay = "12ms"/delay = "12"/' "$TOPO" >"$bad"
tb up "$bad" >"$out" 2>&1; rc=$?
check "a bad topology is refused" '[ $rc != 0 ]'
check "the message names the setting" 'grep -q "sites.\[0\].uplinks.\[1\].delay: \"12\" is not a duration" "$out"'
snapshot "$after"
check "a refused topology makes nothing" 'diff "$base" "$after"'

# set: errors name the problem.
tb up "$TOPO" >/dev/null 2>&1
tb set ta/nowhere delay=5ms >"$out" 2>&1; rc=$?
check "set on an unknown link lists the links" '[ $rc != 0 ] && grep -q "ta/clean" "$out"'
tb set ta/clean delay=fast >"$out" 2>&1; rc=$?
check "set with a bad value explains" '[ $rc != 0 ] && grep -q "is not a duration" "$out"'
tb set ta/clean colour=red >"$out" 2>&1; rc=$?
check "set with an unknown key explains" '[ $rc != 0 ] && grep -q "unknown link setting" "$out"'
tb down >/dev/null 2>&1
snapshot "$after"
check "nothing left behind at the end" 'diff "$base" "$after"'

rm -f "$base" "$after" "$out" "$bad"
tb_end
