#!/usr/bin/env bash
# Builds the shipped arm64 binary (scripts/build.sh --shipped --target aarch64-unknown-linux-musl:
# the pinned toolchain of rust-toolchain.toml, std rebuilt, linked with rust-lld) and runs the emissary's core smoke tests on it under qemu-user
# (Debian's qemu-user-static): version, exit codes 0 and 3, captured stdout byte for byte, the
# signal file (15 -> 143), SIGTERM, an output parameter and artifact. The commands the emissary
# starts are the host's own (qemu-user runs the aarch64 emissary; its execve of an x86_64 `sh`
# is the kernel's), which is all that these tests need.
#
# The shipped build is the one the arm64 image carries (README "Images"). ARM64_BUILD=stable
# tests the stable build (scripts/build.sh --target ...) instead.
#
# Usage: scripts/arm64-test.sh   (last line `N passed, N failed`)
set -u
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TRIPLE=aarch64-unknown-linux-musl
. "$repo/scripts/lib/deps.sh"

arm64_setup() {
    ensure_debian_packages qemu-user-static file || return 1
    QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64) || {
        ARM64_SKIP="no qemu-aarch64 here"
        return 0
    }
    local out
    local build=(--shipped)
    [[ ${ARM64_BUILD:-shipped} == stable ]] && build=()
    out=$("$repo/scripts/build.sh" "${build[@]}" --target "$TRIPLE" | tail -n 1) && [[ -n $out ]] || return 1
    ARM64_BIN=${out% *}
    # The binary under test for tests/sh/lib.sh (em, em_bg): the arm64 one, through qemu.
    ARM64_WRAP=$(mktemp "${TMPDIR:-/tmp}/argoexec-arm64.XXXXXX") || return 1
    printf '#!/bin/sh\nexec %q %q "$@"\n' "$QEMU" "$ARM64_BIN" >"$ARM64_WRAP"
    chmod 0755 "$ARM64_WRAP"
}
ARM64_SKIP=
if ! arm64_setup; then
    echo "FAIL - arm64 set-up (packages, target or build)"
    echo "0 passed, 1 failed"
    exit 1
fi
if [[ -n $ARM64_SKIP ]]; then
    echo "skip - arm64: $ARM64_SKIP"
    echo "0 passed, 0 failed"
    exit 0
fi
export ARGOEXEC=$ARM64_WRAP
. "$repo/tests/sh/lib.sh"
trap 'rc=$?; rm -f "$ARM64_WRAP"; (exit $rc); _lib_exit' EXIT

stdout_up() { grep -q up "$ROOT/ctr/main/stdout" 2>/dev/null; }

case_binary() {
    local f
    f=$(file -b "$ARM64_BIN")
    assert_contains "$f" "ARM aarch64" "file(1)"
    assert_contains "$f" "statically linked" "file(1)"
    assert_eq "argoexec 0.1.0 $TRIPLE" "$("$ARGOEXEC" version | cut -d' ' -f1-3)" "version"
    # The size budgets, as for x86_64: shipped 256 KiB, stable 640 KiB.
    local budget=262144
    [[ ${ARM64_BUILD:-shipped} == stable ]] && budget=655360
    assert_le "$(stat -c %s "$ARM64_BIN")" "$budget" "bytes of $ARM64_BIN"
}

case_exit_codes() {
    new_root
    em -- sh -c 'exit 0' 2>/dev/null
    assert_eq 0 $? "exit 0"
    assert_file_eq "$ROOT/ctr/main/exitcode" 0 "exitcode 0"
    em -- sh -c 'exit 3' 2>/dev/null
    assert_eq 3 $? "exit 3"
    assert_file_eq "$ROOT/ctr/main/exitcode" 3 "exitcode 3"
}

case_capture() {
    new_root
    local out
    out=$(ARGO_INCLUDE_SCRIPT_OUTPUT=true em -- sh -c 'printf "one\n\0two\377\n"; printf "err\n" >&2; printf "three"' 2>/dev/null | od -An -c)
    assert_eq 0 "${PIPESTATUS[0]}" "exit code"
    assert_eq "$(printf 'one\n\0two\377\nthree' | od -An -c)" "$out" "console stdout"
    assert_eq "$(printf 'one\n\0two\377\nthree' | od -An -c)" "$(od -An -c <"$ROOT/ctr/main/stdout")" "ctr/main/stdout, byte for byte"
    assert_true "combined holds stderr" grep -qa err "$ROOT/ctr/main/combined"
}

case_signal_file() {
    new_root
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em_bg -- sh -c 'echo up; while :; do sleep 0.05; done' >/dev/null 2>&1
    assert_true "child started" wait_until 20 stdout_up || return
    printf 15 >"$ROOT/ctr/main/signal"
    em_wait 20
    assert_eq 143 "$EM_RC" "exit code after 15 in the signal file"
    assert_file_eq "$ROOT/ctr/main/exitcode" 143 "exitcode"
    assert_true "signal file consumed" test ! -e "$ROOT/ctr/main/signal"
}

case_sigterm() {
    new_root
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em_bg -- sh -c 'echo up; while :; do sleep 0.05; done' >/dev/null 2>&1
    assert_true "child started" wait_until 20 stdout_up || return
    kill -TERM "$EM_PID"
    em_wait 20
    assert_eq 143 "$EM_RC" "exit code after SIGTERM"
    assert_file_eq "$ROOT/ctr/main/exitcode" 143 "exitcode"
}

case_outputs() {
    new_root
    local d
    new_tmpdir d
    printf '{"outputs":{"parameters":[{"name":"m","valueFrom":{"path":"%s/msg.txt"}}],"artifacts":[{"name":"r","path":"%s/report/"}]}}' \
        "$d" "$d" >"$ROOT/template"
    em -- sh -c "printf 'hello arm64' >'$d/msg.txt'; mkdir -p '$d/report/sub'; printf x >'$d/report/sub/x.txt'" 2>/dev/null
    assert_eq 0 $? "exit code"
    assert_file_eq "$ROOT/outputs/parameters$d/msg.txt" "hello arm64" "output parameter"
    assert_eq "report report/sub report/sub/x.txt" "$(tar -tzf "$ROOT/outputs/artifacts$d/report.tgz" | tr '\n' ' ' | sed 's/ $//')" "artifact entries"
}

run_case "arm64: static aarch64 binary, version names the target" case_binary
run_case "arm64: exit codes 0 and 3, exitcode file" case_exit_codes
run_case "arm64: capture: stdout byte for byte on the console and in ctr/main/stdout" case_capture
run_case "arm64: signal file 15 -> 143" case_signal_file
run_case "arm64: SIGTERM to the emissary -> 143" case_sigterm
run_case "arm64: output parameter and artifact" case_outputs
finish
