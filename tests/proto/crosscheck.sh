#!/bin/sh
# Cross-checks our protobuf<->JSON mapping (proto/pbjson.c) against two
# independent implementations on every message type of proto/fjord.proto
# and of the test-only schemas, each filled with non-default values in every
# field (64-bit values above 2^53, negative int64, unicode, bytes, NaN,
# Infinity, 1e300, enums, maps, each member of each oneof):
#  - Debian's protoc: --decode to text format and --encode back must keep
#    the bytes, and our JSON of protoc's bytes must be the same text;
#  - Python's google.protobuf.json_format: MessageToJson of the same bytes
#    must be the same JSON object as ours; Parse of our JSON and our decoding
#    of Python's JSON must both give the original bytes (compared after
#    deterministic re-serialisation);
#  - inputs that Python rejects must be rejected by ours, naming the field.
# Runs from the repository root.
set -eu

BUILD=${BUILD:-build}
PY=/usr/bin/python3
tool=$BUILD/tests/pbjson-tool
pydir=$BUILD/proto-py
protos="fjord.proto pbjson_test.proto pbjson_test2.proto"

make -s --no-print-directory BUILD="$BUILD" "$tool" >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/fjord-pbjson.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

mkdir -p "$pydir"
# shellcheck disable=SC2086
protoc -Iproto -Itests/proto --python_out="$pydir" $protos

pc() {
	# shellcheck disable=SC2086
	protoc -Iproto -Itests/proto "$@" $protos
}

fail=0
ncases=$("$tool" cases "$work")
# protoc's text format, both ways; only the filled cases (not the empty ones).
for t in "$work"/*.type; do
	base=${t%.type}
	case $base in *-empty) continue ;; esac
	read -r type <"$t"
	pc --decode="$type" <"$base.bin" >"$base.txt"
	pc --encode="$type" <"$base.txt" >"$base.protoc.bin"
done
# Our JSON of protoc's bytes.
"$tool" to-json-dir "$work" protoc.bin protoc.json
echo "crosscheck: $ncases cases written"

"$PY" tests/proto/crosscheck.py check "$work" "$pydir" || fail=1

# Our decoder on the JSON that Python wrote.
"$tool" from-json-dir "$work" py.json py.ours.bin || fail=1
[ "$fail" = 0 ] && { "$PY" tests/proto/crosscheck.py decoded "$work" "$pydir" || fail=1; }

# Inputs Python rejects: ours must reject them too and name the field.
"$PY" tests/proto/crosscheck.py negatives "$work" "$pydir" || fail=1
nneg=0
for f in "$work"/neg/*.in; do
	type=$(sed -n 1p "$f")
	field=$(sed -n 2p "$f")
	sed -n '3,$p' "$f" >"$f.json"
	nneg=$((nneg + 1))
	if "$tool" from-json "$type" <"$f.json" >/dev/null 2>"$f.err"; then
		echo "negative $(basename "$f"): ours accepts $(cat "$f.json")"
		fail=1
	elif ! grep -qF "pbjson-tool: $field: " "$f.err"; then
		echo "negative $(basename "$f"): message does not name $field: $(cat "$f.err")"
		fail=1
	fi
done
echo "crosscheck: $nneg invalid inputs rejected by both"

[ "$fail" = 0 ] && echo "crosscheck: ok"
exit "$fail"
