#!/usr/bin/env bash
# run-all-timeout: 300
# The arm64 (aarch64-unknown-linux-musl) binary's core smoke tests under qemu-user:
# scripts/arm64-test.sh, which prints the summary line. The first run installs qemu and the
# target and builds the binary: hence the longer timeout above.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/arm64-test.sh" "$@"
