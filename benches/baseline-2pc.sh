#!/usr/bin/env bash
# Measures the throughput baseline of BENCHMARKS.md in one run: stateright's own two-phase-commit
# example (`2pc check 9`, built from the stateright crate this workspace depends on; nothing of it
# is kept in this repository) and `coherence check` on the same machine, one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fetch --quiet
src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 1 -mindepth 1 -type d | head -1)/stateright-0.31.0
[[ -d $src ]] || { echo "error: stateright 0.31.0 source not found under the cargo registry" >&2; exit 1; }
work=target/baseline/stateright-0.31.0
if [[ ! -x $work/target/release/examples/2pc ]]; then
    rm -rf "$work" && mkdir -p target/baseline && cp -r "$src" "$work"
    # A package of its own, outside this workspace.
    printf "\n[workspace]\n" >> "$work/Cargo.toml"
    (cd "$work" && cargo build --quiet --release --example 2pc)
fi
cargo build --quiet --release

echo "== stateright 2pc check 9 (DFS, 2 threads)"
start=$(date +%s%N)
"$work/target/release/examples/2pc" check 9 | grep -E "^Done" | tail -1
end=$(date +%s%N)
echo "wall: $(( (end - start) / 1000000 )) ms"

for threads in 1 2; do
    echo "== coherence check --policy recommended (BFS, $threads thread(s))"
    ./target/release/coherence check --policy recommended --threads "$threads" | sed -n 3,4p
done
echo "== coherence check (every policy, 2 at a time, 2 threads each)"
start=$(date +%s%N)
./target/release/coherence check | sed -n 3,16p
end=$(date +%s%N)
echo "wall: $(( (end - start) / 1000000 )) ms"
