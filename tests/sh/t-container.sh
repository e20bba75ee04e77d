#!/usr/bin/env bash
# run-all-timeout: 420
# Real containers under podman: our FROM-scratch image, a busybox user image, pods with init,
# main (non-root, read-only root), sidecars and the wait container's reads:
# scripts/container-test.sh, which prints the summary line. The first run builds the shipped
# binary (std rebuilt on the pinned toolchain) and installs podman: hence the longer timeout above.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/container-test.sh" "$@"
