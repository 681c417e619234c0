#!/bin/sh
# Throughput of the protobuf<->JSON mapping (proto/pbjson.c) beside
# jansson's own dump/parse and protobuf-c's pack/unpack of the same data.
# Figures go to docs/benchmarks.md, section "Proto (JSON mapping)".
set -eu
BUILD=${BUILD:-build}
make -s --no-print-directory BUILD="$BUILD" "$BUILD/tests/bench-pbjson" >/dev/null
"$BUILD/tests/bench-pbjson" "$@"
