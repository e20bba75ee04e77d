#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit tests, the Rust integration tests against
# the static binary, and the shell integration tests. Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_test_deps

echo "== format and lints"
cargo fmt --check
cargo clippy --all-targets -- -D warnings

echo "== static binary"
read -r bin _size < <(scripts/build.sh | tail -n 1)

echo "== unit and integration tests (binary under test: $bin)"
ARGOEXEC_BIN=$bin cargo test

echo "== shell integration tests"
ARGOEXEC=$bin bash tests/sh/run-all.sh
ARGOEXEC_BIN=$bin bash scripts/bench.sh --quick # smoke: fails only if a figure cannot be measured
