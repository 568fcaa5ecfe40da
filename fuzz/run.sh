#!/usr/bin/env bash
# Fuzzes the fixture, scenario and adapter-output parsers for SECONDS each (default 60), with
# cargo-fuzz (libFuzzer) on the stable toolchain. An input that crashes or hangs a target is copied
# into fuzz/regressions/<target>/ (commit it: the test suite replays it for ever) and fails the run.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz || { echo "SKIPPED: fuzzing (cargo-fuzz could not be installed)"; exit 0; }
fi
export RUSTC_BOOTSTRAP=1  # cargo-fuzz passes -Z flags; no nightly toolchain is needed
cargo fuzz build -O
status=0
for target in fixture scenario adapter_output; do
    mkdir -p "corpus/$target" "regressions/$target" "artifacts/$target"
    case $target in
        fixture) cp ../fixtures/counterexample--*.json ../fixtures/scenario--*.json "corpus/$target/" ;;
        scenario) cp ../scenarios/*.scenario "corpus/$target/" ;;
        *) cp seeds/"$target"/* "corpus/$target/" ;;
    esac
    if ! cargo fuzz run -O "$target" "corpus/$target" "regressions/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2> "artifacts/$target.log"; then
        cp artifacts/"$target"/* "regressions/$target/" 2>/dev/null || true
        tail -30 "artifacts/$target.log"
        echo "error: fuzz target $target failed; the input is in fuzz/regressions/$target/" >&2
        status=1
    fi
    grep -E "^Done|stat::number_of_executed_units" "artifacts/$target.log" | sed "s/^/$target: /" | head -2
done
exit $status
