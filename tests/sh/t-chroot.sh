#!/usr/bin/env bash
# The static binary in an otherwise empty file system (scratch image): no libc, no /proc, no
# /dev, no /tmp. Only the binary and, for a child to run, a static busybox.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUSYBOX=/bin/busybox
# Absolute, as the runs below clear the environment (PATH included) with env -i.
TIMEOUT=$(command -v timeout)
CHROOT=$(command -v chroot)

# new_chroot VAR: an empty directory holding only /argoexec.
new_chroot() {
    local _nc
    new_tmpdir _nc || return 1
    cp "$ARGOEXEC" "$_nc/argoexec" && chmod 0755 "$_nc/argoexec" || return 1
    printf -v "$1" '%s' "$_nc"
}

have_chroot() { chroot / true 2>/dev/null; }

is_static() { ! file -L "$1" 2>/dev/null | grep -q 'dynamically linked'; }

case_emissary_in_empty_chroot() {
    have_chroot || skip "chroot not permitted here"
    [[ -x $BUSYBOX ]] && is_static "$BUSYBOX" || skip "no static busybox at $BUSYBOX"
    local c out rc
    new_chroot c
    mkdir -p "$c/bin" "$c/run-argo"
    cp "$BUSYBOX" "$c/bin/busybox"
    printf '{}' >"$c/run-argo/template"
    env -i ARGOEXEC_VAR_RUN_ARGO=/run-argo ARGOEXEC_TERMINATION_LOG=/termination-log ARGO_INCLUDE_SCRIPT_OUTPUT=true \
        "$TIMEOUT" -s KILL 20 "$CHROOT" "$c" /argoexec emissary -- /bin/busybox sh -c 'echo hi; exit 5' >"$c.out" 2>"$c.err"
    rc=$?
    _CASE_DIRS+=("$c.out" "$c.err")
    assert_eq 5 "$rc" "exit code"
    assert_file_eq "$c/run-argo/ctr/main/exitcode" 5 "exitcode file"
    assert_file_eq "$c/run-argo/ctr/main/stdout" "hi"$'\n' "captured stdout"
    assert_file_eq "$c/run-argo/ctr/main/combined" "hi"$'\n' "captured combined"
    assert_file_eq "$c.out" "hi"$'\n' "console stdout"
    assert_contains "$(cat "$c.err")" "capturing logs" "emissary log on stderr"
    assert_eq "argoexec bin run-argo" "$(cd "$c" && echo *)" "nothing written outside the root"
}

# The command found on PATH in the chroot; the child's argv[0] is the resolved path, which is
# what makes busybox run its `sh` applet.
case_path_lookup_in_chroot() {
    have_chroot || skip "chroot not permitted here"
    [[ -x $BUSYBOX ]] && is_static "$BUSYBOX" || skip "no static busybox at $BUSYBOX"
    local c rc
    new_chroot c
    mkdir -p "$c/bin" "$c/run-argo"
    cp "$BUSYBOX" "$c/bin/sh"
    printf '{}' >"$c/run-argo/template"
    env -i PATH=/usr/bin:/bin ARGOEXEC_VAR_RUN_ARGO=/run-argo ARGOEXEC_TERMINATION_LOG=/termination-log ARGO_INCLUDE_SCRIPT_OUTPUT=true \
        "$TIMEOUT" -s KILL 20 "$CHROOT" "$c" /argoexec emissary -- sh -c 'echo "$0"' >/dev/null 2>&1
    rc=$?
    assert_eq 0 "$rc" "exit code"
    assert_file_eq "$c/run-argo/ctr/main/stdout" "/bin/sh"$'\n' "child's argv[0]"
    assert_file_eq "$c/run-argo/ctr/main/exitcode" 0 "exitcode file"
}

# Command not found in an empty chroot: a clear error, 64, exitcode written.
case_not_found_in_chroot() {
    have_chroot || skip "chroot not permitted here"
    local c rc
    new_chroot c
    mkdir -p "$c/run-argo"
    printf '{}' >"$c/run-argo/template"
    env -i PATH=/bin ARGOEXEC_VAR_RUN_ARGO=/run-argo ARGOEXEC_TERMINATION_LOG=/termination-log \
        "$TIMEOUT" -s KILL 20 "$CHROOT" "$c" /argoexec emissary -- nosuchcmd >/dev/null 2>"$c.err"
    rc=$?
    _CASE_DIRS+=("$c.err")
    assert_eq 64 "$rc" "exit code"
    assert_file_eq "$c/run-argo/ctr/main/exitcode" 64 "exitcode file"
    assert_contains "$(cat "$c.err")" "nosuchcmd" "error names the command"
}

case_version_with_only_the_binary() {
    have_chroot || skip "chroot not permitted here"
    local c out rc
    new_chroot c
    out=$(env -i "$TIMEOUT" -s KILL 10 "$CHROOT" "$c" /argoexec version 2>&1)
    rc=$?
    assert_eq 0 "$rc" "exit code"
    assert_true "version line '$out'" test "${out#argoexec }" != "$out"
    assert_contains "$out" "x86_64-unknown-linux-musl" "target triple"
    assert_eq "argoexec" "$(cd "$c" && echo *)" "chroot untouched"
}

# A closed stdout (or stderr) where there is no /dev/null: the step still runs and its files
# are written. Rust's runtime reopens a closed fd 0-2 on /dev/null before main and aborts when
# it cannot, so this guards that start-up path.
case_closed_stdout_without_dev_null() {
    ulimit -c 0 # an abort must not leave a core file behind
    have_chroot || skip "chroot not permitted here"
    [[ -x $BUSYBOX ]] && is_static "$BUSYBOX" || skip "no static busybox at $BUSYBOX"
    local c rc
    new_chroot c
    mkdir -p "$c/bin" "$c/run-argo"
    cp "$BUSYBOX" "$c/bin/busybox"
    printf '{}' >"$c/run-argo/template"
    env -i ARGOEXEC_VAR_RUN_ARGO=/run-argo ARGOEXEC_TERMINATION_LOG=/termination-log ARGO_INCLUDE_SCRIPT_OUTPUT=true \
        "$TIMEOUT" -s KILL 20 "$CHROOT" "$c" /argoexec emissary -- /bin/busybox sh -c 'echo hi; exit 5' >&- 2>/dev/null
    rc=$?
    assert_eq 5 "$rc" "exit code"
    assert_file_eq "$c/run-argo/ctr/main/exitcode" 5 "exitcode file"
    assert_file_eq "$c/run-argo/ctr/main/stdout" "hi"$'\n' "captured stdout"
}

run_case "chroot: emissary with only itself and busybox: exit 5, exitcode 5, stdout 'hi\\n'" case_emissary_in_empty_chroot
run_case "chroot: 'sh' found on PATH, argv[0] is the resolved path" case_path_lookup_in_chroot
run_case "chroot: command not found: 64 and exitcode 64" case_not_found_in_chroot
run_case "chroot: 'argoexec version' with nothing but the binary" case_version_with_only_the_binary
run_case "chroot: stdout closed and no /dev/null: the step still runs (exit 5)" case_closed_stdout_without_dev_null
finish
