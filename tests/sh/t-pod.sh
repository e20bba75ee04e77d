#!/usr/bin/env bash
# Real workflow pods in Linux namespaces (init, main, sidecars, containerSets, the wait
# container's reads, init-less staging): scripts/pod-test.sh, which prints the summary line.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/pod-test.sh" "$@"
