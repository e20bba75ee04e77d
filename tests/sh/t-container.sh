#!/usr/bin/env bash
# run-all-timeout: 900
# Real containers under podman: our FROM-scratch image, a busybox user image, the executor image
# over a stand-in upstream (root and -nonroot), pods with init, main (non-root, read-only root),
# sidecars and the wait container's reads, an init-less pod, a plugin pod, and the amd64 + arm64
# images in manifest lists: scripts/container-test.sh, which prints the summary line. The first
# run builds the shipped binaries for both architectures and installs podman and qemu: hence
# the longer timeout above.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/container-test.sh" "$@"
