#!/bin/sh
# Controller store: durable result ingestion (group commit vs one
# transaction per result) and the aggregate query over 1,000,000 stored
# results (ours vs SQLite sorting every row). Figures go to
# docs/benchmarks.md, section "Controller store". Extra arguments go to
# bench-store (-n results, -b baseline results, -t threads, -w window, -d dir).
set -eu
BUILD=${BUILD:-build}
make -s --no-print-directory BUILD="$BUILD" "$BUILD/tests/bench-store" >/dev/null
"$BUILD/tests/bench-store" "$@"
