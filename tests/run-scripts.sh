#!/bin/sh
# Runs integration test scripts one by one, each with a time limit, and
# ends with one summary line "N passed, N failed".
pass=0
fail=0
failed=""
limit=${FJORD_SCRIPT_TIMEOUT:-600}
for t in "$@"; do
	echo "== $t"
	start=$(date +%s)
	if timeout -k 10 "$limit" sh "$t"; then
		pass=$((pass + 1))
		echo "-- $t: ok ($(($(date +%s) - start)) s)"
	else
		fail=$((fail + 1))
		failed="$failed $t"
		echo "-- $t: FAILED ($(($(date +%s) - start)) s)"
	fi
done
[ -n "$failed" ] && echo "failed scripts:$failed"
echo "scripts: $pass passed, $fail failed"
[ "$fail" = 0 ]
