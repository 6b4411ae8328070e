#!/usr/bin/env bash
# Runs the benchmark matrix behind BENCHMARKS.md and writes one JSON report per run into OUT.
# Usage: crates/bench/matrix.sh [OUT]   (builds the release binaries first)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-bench-results}
mkdir -p "$out"
cargo build --release -p chimatic -p chimatic-bench
bench=./target/release/chimatic-bench
run() { local name=$1; shift; echo "== $name: $*"; "$bench" --json "$out/$name.json" "$@" | tail -14; }

for i in 1 2 3; do run "single-c64-$i" -n 20000 -c 64; done
for i in 1 2 3; do run "batch100-$i" -n 100000 -c 16 --batch 100; done
run "rate-4000" -n 40000 -c 64 --rate 4000
for stored in 10000 100000 1000000; do run "stored-$stored" -n 20000 -c 64 --prefill "$stored"; done
for n in 10000 100000 1000000; do run "volume-$n" -n "$n" -c 64; done
