#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 10), one after the other.
#
#   scripts/fuzz.sh [SECONDS]
#
# Each target starts from fuzz/regressions/<target>/ (seeds and every input that once failed,
# kept in git) plus its working corpus fuzz/corpus/<target>/ (not kept). A crash, a failed
# property or a timeout stops the script with a non-zero status; libFuzzer leaves the input
# in fuzz/artifacts/<target>/, to be added to fuzz/regressions/<target>/ once fixed.
# Installs the nightly toolchain and cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=$(cargo +nightly fuzz list --fuzz-dir fuzz)
cargo +nightly fuzz build -O --fuzz-dir fuzz

failed=()
for t in $targets; do
    mkdir -p "fuzz/corpus/$t" "fuzz/regressions/$t"
    echo "== fuzz $t: ${seconds}s"
    if ! cargo +nightly fuzz run -O --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/regressions/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>"fuzz/$t.log"; then
        grep -E 'ERROR|panicked|Test unit written|SUMMARY' "fuzz/$t.log" || tail -n 20 "fuzz/$t.log"
        failed+=("$t")
        continue
    fi
    grep -E '^(Done|stat::number_of_executed_units)' "fuzz/$t.log" || true
    rm -f "fuzz/$t.log"
done
if ((${#failed[@]})); then
    echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz: all targets ran ${seconds}s without a finding"
