#!/usr/bin/env bash
# The capture file system fills up (SPEC 8): the child keeps running and its console output
# keeps flowing, byte for byte; the step then ends with 64 saying the capture is incomplete.
# The small file systems are tmpfs mounts inside a private mount namespace (unshare -m), so
# nothing outlives the case.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have_mountns() { unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs /mnt' 2>/dev/null; }

# in_mountns SCRIPT: runs the bash SCRIPT in a new private mount namespace, with the case's
# variables (ROOT, TLOG, D, ARGOEXEC) in its environment.
in_mountns() {
    ROOT=$ROOT TLOG=$TLOG D=$D ARGOEXEC=$ARGOEXEC EM_TIMEOUT=${EM_TIMEOUT:-30} \
        unshare -m bash -c "$1"
}

# Runs the emissary with capture on, timing it; leaves rc and elapsed ms in $D/rc, $D/ms.
RUN='
    t0=${EPOCHREALTIME/./}
    ARGOEXEC_VAR_RUN_ARGO=$ROOT ARGOEXEC_TERMINATION_LOG=$TLOG ARGO_INCLUDE_SCRIPT_OUTPUT=true \
        timeout -s KILL "$EM_TIMEOUT" "$ARGOEXEC" emissary -- cat "$D/data" >"$D/console" 2>"$D/err"
    echo $? >"$D/rc"
    t1=${EPOCHREALTIME/./}
    echo $(((t1 - t0) / 1000)) >"$D/ms"
'

# is_prefix FILE OF: FILE holds the first bytes of OF (possibly none of them).
is_prefix() {
    local n
    n=$(stat -c %s "$1") || return 1
    cmp -s "$1" <(head -c "$n" "$2")
}

# Only the capture files are on a 64 KiB tmpfs (bind-mounted over ctr/main/stdout and
# combined); ctr/main itself, and so exitcode, stays on the ordinary disk.
case_capture_files_full() {
    have_mountns || skip "no mount namespaces or tmpfs here"
    new_root
    D=$ROOT/..
    head -c 1048576 /dev/urandom >"$D/data"
    mkdir -p "$ROOT/ctr/main"
    : >"$ROOT/ctr/main/stdout"
    : >"$ROOT/ctr/main/combined"
    in_mountns '
        mkdir -p "$D/small" &&
        mount -t tmpfs -o size=64k tmpfs "$D/small" &&
        : >"$D/small/stdout" && : >"$D/small/combined" &&
        chmod 0666 "$D/small/stdout" "$D/small/combined" &&
        mount --bind "$D/small/stdout" "$ROOT/ctr/main/stdout" &&
        mount --bind "$D/small/combined" "$ROOT/ctr/main/combined" || exit 1
        '"$RUN"'
        cp "$D/small/stdout" "$D/got-stdout"; cp "$D/small/combined" "$D/got-combined"'
    assert_eq 64 "$(cat "$D/rc" 2>/dev/null)" "exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 64 "exitcode file"
    assert_same_bytes "$D/console" "$D/data" "console stdout vs the child's 1 MiB"
    assert_le "$(cat "$D/ms" 2>/dev/null || echo 99999)" 5000 "ms for the whole step"
    assert_contains "$(cat "$D/err")" "capture is incomplete" "stderr"
    assert_contains "$(cat "$TLOG" 2>/dev/null)" "capture is incomplete" "termination log"
    assert_true "ctr/main/stdout holds a prefix of the output ($(stat -c %s "$D/got-stdout") bytes)" is_prefix "$D/got-stdout" "$D/data"
    assert_true "ctr/main/combined holds a prefix of the output ($(stat -c %s "$D/got-combined") bytes)" is_prefix "$D/got-combined" "$D/data"
}

# The whole of ctr/main on a 64 KiB tmpfs: once the capture files fill it, there is no room
# left for exitcode either. The step must still end (not block the child), with 64 and the
# reason on stderr; whether exitcode could be written is reported, not required.
case_ctr_dir_full() {
    have_mountns || skip "no mount namespaces or tmpfs here"
    new_root
    D=$ROOT/..
    head -c 1048576 /dev/urandom >"$D/data"
    mkdir -p "$ROOT/ctr/main"
    in_mountns '
        mount -t tmpfs -o size=64k,mode=0777 tmpfs "$ROOT/ctr/main" || exit 1
        '"$RUN"'
        if [ -e "$ROOT/ctr/main/exitcode" ]; then printf "exitcode file: %s" "$(cat "$ROOT/ctr/main/exitcode")"; else printf "no exitcode file"; fi >"$D/exitcode-seen"
        ls -A "$ROOT/ctr/main" >"$D/ls"; cp "$D/err" /tmp/fullfs-dbg.err; ls -la "$ROOT/ctr/main" >> /tmp/fullfs-dbg.err'
    assert_eq 64 "$(cat "$D/rc" 2>/dev/null)" "exit code"
    assert_same_bytes "$D/console" "$D/data" "console stdout vs the child's 1 MiB"
    assert_le "$(cat "$D/ms" 2>/dev/null || echo 99999)" 5000 "ms for the whole step"
    assert_contains "$(cat "$D/err")" "capture is incomplete" "stderr"
    echo "    observed: $(cat "$D/exitcode-seen" 2>/dev/null); ctr/main holds: $(tr '\n' ' ' <"$D/ls" 2>/dev/null)"
    assert_true "no temporary file left in ctr/main ($(tr '\n' ' ' <"$D/ls"))" \
        test -z "$(grep -v -x -e stdout -e combined -e exitcode -e alive "$D/ls")"
}

run_case "fullfs: capture files on a full 64k tmpfs: console gets all 1 MiB, exit 64, exitcode 64, child not blocked" case_capture_files_full
run_case "fullfs: ctr/main on a full 64k tmpfs: console complete, exit 64, 'capture is incomplete'" case_ctr_dir_full
finish
