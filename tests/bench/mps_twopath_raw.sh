#!/bin/sh
# mps_twopath.sh on two unshaped veth paths (64 MiB per transfer): goodput
# ratio bundled/kernel both ways and whole-machine CPU seconds per GB.
FJ_BENCH_RATE=none exec sh tests/bench/mps_twopath.sh
