#!/bin/sh
# Speed of the stack's checksum sum (mps_csum_add() in stack/mps_seg.c) on
# 64 KiB beside two baselines (tests/bench/bench_csum.c). Built here with the
# project's flags from the two source files it needs, so it runs without the
# rest of the tree; no root needed. Figures go to docs/benchmarks.md, section
# "Bundled stack", "TUN offloads".
set -eu

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
${CC:-cc} -D_GNU_SOURCE -std=gnu11 -O2 -g -Wall -Wextra -Werror -Istack -Istack/include \
	-o "$TMP/bench_csum" tests/bench/bench_csum.c stack/mps_seg.c
"$TMP/bench_csum"
