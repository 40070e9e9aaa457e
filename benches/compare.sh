#!/usr/bin/env bash
# Transport and sync figures of the Rust peer beside the JS reference's, in one sitting (the
# machine's load changes from hour to hour; ratios only mean something within one run).
#
#   benches/compare.sh                    # everything, about 10 minutes on 2 cores
#   JS_SYNC_MSGS=300 benches/compare.sh   # size of the JS-comparable sync (default 500;
#                                         # JS's cost is cubic: 1,000 takes ~2.5 minutes)
#
# Prints a markdown table at the end; raw outputs are in target/compare/. Needs node >= 20
# and npm (runs `npm ci` in interop/ if needed). See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/compare
mkdir -p "$out"
n="${JS_SYNC_MSGS:-500}"

if [ ! -f interop/node_modules/.package-lock.json ]; then
  echo "== npm ci in interop/"
  (cd interop && npm ci --no-audit --no-fund)
fi

echo "== Rust: transport benches and the 10,000-msg sync over the stack"
cargo bench -p benches --bench transport -- --noplot 2>&1 | tee "$out/rust-transport.txt"
echo "== Rust: sync over the stack at N=$n (beside the JS sync)"
STACK_SYNC_MSGS="$n" cargo bench -p benches --bench transport -- --noplot stack_sync 2>&1 | tee "$out/rust-stack-$n.txt"
echo "== Rust: two ppppp serve processes over loopback (issue 5)"
cargo build --release -p node --bin ppppp
cargo bench -p benches --bench serve_sync 2>&1 | tee "$out/rust-serve.txt"

echo "== JS: transport"
(cd interop/jsbench && node transport.js) | tee "$out/js-transport.txt"
echo "== JS: sync, N=$n (bench-sync.js full and incr)"
(cd interop/jsbench && node make-fixtures.js "$n" "$((n + 100))" \
  && node bench-sync.js full "$n" && node bench-sync.js incr "$n") | grep -v '^  t=' | tee "$out/js-sync.txt"

node benches/compare.js "$out" "$n" | tee "$out/summary.md"
