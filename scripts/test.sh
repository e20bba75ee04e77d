#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit tests, the Rust integration tests against
# both static binaries (the shipped build is the product, the stable build the development
# default), the shell integration tests against the shipped build, and the benchmark's smoke
# mode. Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_test_deps

echo "== format and lints"
cargo fmt --check
cargo clippy --all-targets -- -D warnings

echo "== static binaries"
read -r stable stable_size < <(scripts/build.sh | tail -n 1)
read -r shipped shipped_size < <(scripts/build.sh --shipped | tail -n 1)
echo "stable build:  $stable_size bytes"
echo "shipped build: $shipped_size bytes"

echo "== unit tests, and integration tests against the stable build"
ARGOEXEC_BIN=$stable cargo test

echo "== integration tests against the shipped build"
ARGOEXEC_BIN=$shipped cargo test --test '*'

echo "== shell integration tests (shipped build)"
ARGOEXEC=$shipped bash tests/sh/run-all.sh

echo "== benchmark smoke run (fails only if a figure cannot be measured)"
ARGOEXEC_BIN=$shipped bash scripts/bench.sh --quick
