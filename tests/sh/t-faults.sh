#!/usr/bin/env bash
# Faults around the emissary: few file descriptors, read-only file systems, a root it may not
# write, other user ids, a missing or odd termination log, a full disk at each write point,
# dead consoles and signals while it is blocked writing. Each ends in success or in 64 with a
# clear reason: never a hang, a crash or a partial file.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have_mountns() { unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs /mnt' 2>/dev/null; }
have_setpriv() { command -v setpriv >/dev/null && setpriv --reuid 1000 --regid 1000 --clear-groups true 2>/dev/null; }

# in_mountns SCRIPT: bash SCRIPT in a private mount namespace, with ROOT, TLOG, D, ARGOEXEC.
in_mountns() {
    ROOT=$ROOT TLOG=$TLOG D=$D ARGOEXEC=$ARGOEXEC unshare -m bash -c "$1"
}

# A run inside in_mountns: capture on, output in $D/out, $D/err, status in $D/rc.
RUN='ARGOEXEC_VAR_RUN_ARGO=$ROOT ARGOEXEC_TERMINATION_LOG=$TLOG ARGO_INCLUDE_SCRIPT_OUTPUT=true \
    timeout -s KILL 30 "$ARGOEXEC" emissary -- "$@" >"$D/out" 2>"$D/err"; echo $? >"$D/rc"'

# no_temp DIR: nothing named like a temporary file below DIR.
assert_no_temp() {
    assert_eq "" "$(find "$1" -name '.*.tmp*' 2>/dev/null | tr '\n' ' ')" "temporary files below $1"
}

# assert_clean_64 WHAT NEEDLE: exit 64 (in $rc) with `Error: ...NEEDLE...` on stderr.
assert_clean_64() {
    assert_eq 64 "$rc" "$1: exit code"
    assert_contains "$(grep '^Error: ' "$D/err")" "$2" "$1: Error line"
}

# --------------------------------------------------------------- file descriptors

# ulimit -n N for N = 4..32: below the lowest N that works, a clean 64 (exitcode 64 where it
# can still be written); from it on, the child's own code. Capture on and off.
case_few_fds() {
    local capture=$1 n rc lowest= ec
    new_root
    D=$ROOT/..
    for n in $(seq 4 32); do
        rm -rf "$ROOT/ctr"
        (
            ulimit -n "$n"
            ARGO_INCLUDE_SCRIPT_OUTPUT=$capture em -- sh -c 'echo hi; exit 3'
        ) >"$D/out" 2>"$D/err"
        rc=$?
        ec=$(cat "$ROOT/ctr/main/exitcode" 2>/dev/null)
        if [[ -z $lowest ]]; then
            if [[ $rc == 3 ]]; then
                lowest=$n
            else
                assert_clean_64 "ulimit -n $n" "" || echo "    (stderr: $(tail -n 1 "$D/err"))"
                assert_contains "$(cat "$D/err")" "descriptors" "ulimit -n $n: reason" >/dev/null ||
                    echo "    ulimit -n $n: reason: $(grep '^Error' "$D/err")"
                assert_eq 64 "$ec" "ulimit -n $n: exitcode file"
            fi
        else
            assert_eq 3 "$rc" "ulimit -n $n (above the lowest working $lowest)"
        fi
        if [[ $rc == 3 && $capture == true ]]; then
            assert_file_eq "$ROOT/ctr/main/stdout" "hi"$'\n' "stdout file at ulimit -n $n"
        fi
    done
    echo "    observed: capture=$capture: lowest working ulimit -n is ${lowest:-none up to 32}"
    assert_ne "" "$lowest" "some ulimit -n up to 32 works"
    if [[ $capture == false ]]; then assert_le "${lowest:-99}" 8 "lowest working ulimit -n without capture"; fi
}

# The brief's own number: ulimit -n 8 with capture on gives either the child's code or a
# clean 64 with the reason.
case_ulimit_8() {
    new_root
    D=$ROOT/..
    (
        ulimit -n 8
        ARGO_INCLUDE_SCRIPT_OUTPUT=true em -- sh -c 'echo hi; exit 3'
    ) >"$D/out" 2>"$D/err"
    rc=$?
    echo "    observed: ulimit -n 8, capture on: exit $rc: $(grep '^Error' "$D/err")"
    [[ $rc == 3 ]] || assert_clean_64 "ulimit -n 8" "No file descriptors available"
}

# --------------------------------------------------------------- read-only file systems

# The root is an empty read-only tmpfs: 64 saying the ctr folder cannot be created.
case_ro_root_dir() {
    have_mountns || skip "no mount namespaces or tmpfs here"
    new_root
    D=$ROOT/..
    in_mountns 'mount -t tmpfs -o ro,size=64k tmpfs "$ROOT" || exit 1
        set -- true; '"$RUN"'; ls -A "$ROOT" >"$D/ls"'
    rc=$(cat "$D/rc")
    assert_clean_64 "read-only root" "failed to create ctr directory"
    assert_contains "$(grep '^Error' "$D/err")" "Read-only file system" "reason"
}

# The root (with ctr/main already there) bind-mounted read-only: capture files cannot be
# opened: 64 naming the file; no exitcode can be written, reported on stderr too.
case_ro_root_bind() {
    have_mountns || skip "no mount namespaces or tmpfs here"
    new_root
    D=$ROOT/..
    mkdir -p "$ROOT/ctr/main"
    in_mountns 'mount --bind "$ROOT" "$ROOT" && mount -o remount,bind,ro "$ROOT" || exit 1
        set -- sh -c "echo hi"; '"$RUN"
    rc=$(cat "$D/rc")
    assert_clean_64 "read-only bind-mounted root" "ctr/main/stdout"
    assert_contains "$(cat "$D/err")" "failed to write exit code" "stderr says exitcode failed"
    assert_eq "" "$(ls -A "$ROOT/ctr/main")" "nothing in ctr/main"
}

# The container's root file system read-only (/ remounted read-only in the namespace; the
# case's folder, bind-mounted on itself, stays writable as the emptyDir is): the step runs.
case_ro_slash() {
    have_mountns || skip "no mount namespaces or tmpfs here"
    new_root
    D=$(cd "$ROOT/.." && pwd)
    in_mountns 'mount --bind "$D" "$D" && mount -o remount,bind,ro / || exit 1
        touch /ro-probe 2>/dev/null && { echo "/ still writable" >"$D/err"; echo 1 >"$D/rc"; exit; }
        set -- sh -c "echo hi; exit 4"; '"$RUN"
    rc=$(cat "$D/rc")
    assert_eq 4 "$rc" "exit code with / read-only ($(grep '^Error' "$D/err"))"
    assert_file_eq "$ROOT/ctr/main/exitcode" 4 "exitcode"
    assert_file_eq "$ROOT/ctr/main/stdout" "hi"$'\n' "stdout file"
}

# --------------------------------------------------------------- user ids

# run_as UID SCRIPT-ARGS...: the emissary as UID:UID, no supplementary groups, capture on.
run_as() {
    local uid=$1
    shift
    ARGOEXEC_VAR_RUN_ARGO=$ROOT ARGOEXEC_TERMINATION_LOG=$TLOG ARGO_INCLUDE_SCRIPT_OUTPUT=true \
        timeout -s KILL 30 setpriv --reuid "$uid" --regid "$uid" --clear-groups \
        "$ARGOEXEC" emissary -- "$@" >"$D/out" 2>"$D/err"
    rc=$?
}

# A root-owned 0755 root, the emissary as uid 1000: 64 with a clear message; exitcode cannot
# be written (reported).
case_root_not_writable() {
    have_setpriv || skip "no setpriv or cannot change uid here"
    new_root
    D=$ROOT/..
    chmod 0755 "$D" "$ROOT"
    chmod 0644 "$ROOT/template"
    TLOG=$D/tlog
    run_as 1000 sh -c 'echo hi'
    assert_clean_64 "uid 1000, root-owned 0755 root" "failed to create ctr directory"
    assert_contains "$(grep '^Error' "$D/err")" "Permission denied" "reason"
    echo "    observed: exitcode file: $([[ -e $ROOT/ctr/main/exitcode ]] && echo written || echo 'not written'); $(grep -c 'failed to write exit code' "$D/err") line(s) saying so"
    assert_true "exitcode failure reported" grep -q 'failed to write exit code' "$D/err"
}

# OpenShift's random uid with no passwd entry, against a root-owned 0777 root (an emptyDir),
# a root owned by that uid (0755), and a root-owned 0777 root whose ctr/main was made by root
# (0777 too): the step runs, the files are complete and the outputs saved.
case_random_uid() {
    local layout=$1 uid=1000680000
    have_setpriv || skip "no setpriv or cannot change uid here"
    getent passwd "$uid" >/dev/null && skip "uid $uid has a passwd entry here"
    new_root
    D=$ROOT/..
    chmod 0755 "$D"
    printf value >"$D/param"
    chmod 0644 "$D/param"
    printf '{"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"%s"}}]}}' "$(cd "$D" && pwd)/param" >"$ROOT/template"
    chmod 0644 "$ROOT/template"
    case $layout in
        emptydir) chmod 0777 "$ROOT" ;;
        owned) chown "$uid:$uid" "$ROOT" && chmod 0755 "$ROOT" ;;
        precreated) chmod 0777 "$ROOT" && mkdir -m 0777 -p "$ROOT/ctr/main" && chmod 0777 "$ROOT/ctr" ;;
    esac
    TLOG=$D/tlog
    run_as "$uid" sh -c 'id -u; exit 7'
    assert_eq 7 "$rc" "exit code ($(grep '^Error' "$D/err"))"
    assert_file_eq "$ROOT/ctr/main/exitcode" 7 "exitcode"
    assert_file_eq "$ROOT/ctr/main/stdout" "$uid"$'\n' "stdout file (the child's uid)"
    assert_eq "$uid" "$(stat -c %u "$ROOT/ctr/main/exitcode")" "exitcode owner"
    local p
    p=$(find "$ROOT/outputs/parameters" -type f -name param 2>/dev/null)
    assert_ne "" "$p" "parameter saved"
    [[ -n $p ]] && assert_file_eq "$p" value "parameter"
}

# --------------------------------------------------------------- termination log

# The termination log's folder does not exist: a failure still ends with 64 and the reason on
# stderr; a success is unaffected.
case_termination_log_missing() {
    new_root
    D=$ROOT/..
    TLOG=$D/no/such/dir/termination-log
    em -- no-such-command-here >"$D/out" 2>"$D/err"
    rc=$?
    assert_clean_64 "missing termination log" "executable file not found"
    assert_file_eq "$ROOT/ctr/main/exitcode" 64 "exitcode"
    em -- true >"$D/out" 2>"$D/err"
    assert_eq 0 "$?" "success with a missing termination log"
}

# The termination log is a FIFO nobody reads (or a socket-like odd file): reporting the
# failure must not hang the emissary.
case_termination_log_fifo() {
    new_root
    D=$ROOT/..
    mkfifo "$D/tlog-fifo"
    TLOG=$D/tlog-fifo EM_TIMEOUT=5 em -- no-such-command-here >"$D/out" 2>"$D/err"
    rc=$?
    assert_ne 137 "$rc" "the emissary hung (killed after 5 s)"
    assert_clean_64 "termination log a FIFO" "executable file not found"
    assert_file_eq "$ROOT/ctr/main/exitcode" 64 "exitcode"
}

# --------------------------------------------------------------- full disk

# A 1 MiB output (random, so the artifact cannot shrink) whose outputs folder is a full
# 64 KiB tmpfs: 64 naming the output and the reason, no partial or temporary file, exitcode 64.
case_full_outputs() {
    local kind=$1
    have_mountns || skip "no mount namespaces or tmpfs here"
    new_root
    D=$ROOT/..
    head -c 1048576 /dev/urandom >"$D/big"
    local src
    src=$(cd "$D" && pwd)/big
    case $kind in
        parameter) printf '{"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"%s"}}]}}' "$src" >"$ROOT/template" ;;
        artifact) printf '{"outputs":{"artifacts":[{"name":"a","path":"%s"}]}}' "$src" >"$ROOT/template" ;;
    esac
    mkdir -p "$ROOT/outputs"
    in_mountns 'mount -t tmpfs -o size=64k,mode=0755 tmpfs "$ROOT/outputs" || exit 1
        set -- true; '"$RUN"'; find "$ROOT/outputs" >"$D/found"'
    rc=$(cat "$D/rc")
    assert_clean_64 "$kind on a full disk" "failed to save $kind"
    assert_contains "$(grep '^Error' "$D/err")" "No space left on device" "reason"
    assert_file_eq "$ROOT/ctr/main/exitcode" 64 "exitcode"
    assert_eq "" "$(grep -e '\.tmp' -e 'big' "$D/found" | tr '\n' ' ')" "partial or temporary output files left"
}

# ctr/main on a tmpfs that is already full, capture off: only exitcode is written, and it
# cannot be: 64 saying so, no temporary file left.
case_full_exitcode() {
    have_mountns || skip "no mount namespaces or tmpfs here"
    new_root
    D=$ROOT/..
    mkdir -p "$ROOT/ctr/main"
    in_mountns 'mount -t tmpfs -o size=64k,mode=0777 tmpfs "$ROOT/ctr/main" || exit 1
        head -c 1048576 /dev/zero >"$ROOT/ctr/main/filler" 2>/dev/null
        ARGOEXEC_VAR_RUN_ARGO=$ROOT ARGOEXEC_TERMINATION_LOG=$TLOG timeout -s KILL 30 "$ARGOEXEC" emissary -- true >"$D/out" 2>"$D/err"
        echo $? >"$D/rc"; ls -A "$ROOT/ctr/main" >"$D/ls"'
    rc=$(cat "$D/rc")
    assert_clean_64 "exitcode on a full disk" "failed to write exit code"
    assert_contains "$(grep '^Error' "$D/err")" "No space left on device" "reason"
    assert_eq "alive filler" "$(tr '\n' ' ' <"$D/ls" | sed 's/ $//')" "ctr/main holds only the filler and the alive lock"
}

# --------------------------------------------------------------- consoles and signals

# Both stdout and stderr of the emissary are pipes without a reader: the step succeeds and
# the files hold every byte.
case_both_consoles_dead() {
    new_root
    D=$ROOT/..
    ARGOEXEC_VAR_RUN_ARGO=$ROOT ARGOEXEC_TERMINATION_LOG=$TLOG ARGO_INCLUDE_SCRIPT_OUTPUT=true \
        timeout -s KILL 30 /usr/bin/python3 -c '
import os, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
for fd in (1, 2):
    r, w = os.pipe(); os.close(r); os.dup2(w, fd); os.close(w)
os.execv(sys.argv[1], sys.argv[1:])' "$ARGOEXEC" emissary -- sh -c 'seq 1 100000; seq 1 50000 >&2; exit 2'
    rc=$?
    assert_eq 2 "$rc" "exit code"
    seq 1 100000 >"$D/want"
    assert_same_bytes "$ROOT/ctr/main/stdout" "$D/want" "stdout file"
    assert_eq $(($(stat -c %s "$D/want") + $(seq 1 50000 | wc -c))) "$(stat -c %s "$ROOT/ctr/main/combined")" "combined size"
    assert_file_eq "$ROOT/ctr/main/exitcode" 2 "exitcode"
}

# The console reader stalls for 1.5 s, so the copy threads block in write(2) on a full pipe,
# while 3000 SIGUSR1/SIGWINCH hit the emissary (the child traps them): no write is cut short
# or lost, console and files hold all 4 MiB, the exit code is the child's.
case_signals_while_blocked_in_write() {
    new_root
    D=$ROOT/..
    head -c 4194304 /dev/urandom >"$D/data"
    mkfifo "$D/console"
    # The reader opens at once (so the emissary's open does not wait) but reads only later.
    /usr/bin/python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
open(sys.argv[2] + ".ready", "w").close()
time.sleep(1.5)
os.set_blocking(fd, True)
with open(sys.argv[2], "wb") as out:
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        out.write(b)' "$D/console" "$D/got" &
    track_pid $!
    wait_until 10 test -e "$D/got.ready"
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em_bg -- sh -c 'trap "" USR1 WINCH; cat "$0"; exit 9' "$D/data" >"$D/console" 2>"$D/err"
    sleep 0.3
    /usr/bin/python3 -c '
import os, signal, sys, time
pid = int(sys.argv[1]); end = time.time() + 1.0; n = 0
while time.time() < end and n < 3000:
    os.kill(pid, signal.SIGUSR1 if n % 2 else signal.SIGWINCH); n += 1
print(n)' "$EM_PID" >"$D/sent"
    em_wait 20
    wait_until 10 test -s "$D/got"
    sleep 0.2
    assert_eq 9 "$EM_RC" "exit code"
    assert_same_bytes "$D/got" "$D/data" "console"
    assert_same_bytes "$ROOT/ctr/main/stdout" "$D/data" "stdout file"
    assert_same_bytes "$ROOT/ctr/main/combined" "$D/data" "combined file"
    assert_le 1000 "$(cat "$D/sent")" "signals sent while the console was stalled"
}

run_case "faults: few fds, capture on: lowest working ulimit -n found, below it a clean 64" case_few_fds true
run_case "faults: few fds, capture off: works from ulimit -n 8 or less, below a clean 64" case_few_fds false
run_case "faults: ulimit -n 8 with capture: the child's code or a clean 64" case_ulimit_8
run_case "faults: root an empty read-only tmpfs: 64, cannot create ctr folder" case_ro_root_dir
run_case "faults: root bind-mounted read-only: 64 naming ctr/main/stdout" case_ro_root_bind
run_case "faults: / read-only, root a writable tmpfs: the step runs (exit 4)" case_ro_slash
run_case "faults: uid 1000 against a root-owned 0755 root: 64, clear message" case_root_not_writable
run_case "faults: uid 1000680000 (no passwd entry), root-owned 0777 root: runs, outputs saved" case_random_uid emptydir
run_case "faults: uid 1000680000, root owned by that uid 0755: runs, outputs saved" case_random_uid owned
run_case "faults: uid 1000680000, ctr/main pre-created 0777 by root: runs" case_random_uid precreated
run_case "faults: termination log's folder missing: 64 with the reason on stderr" case_termination_log_missing
run_case "faults: termination log a FIFO without reader: no hang, 64" case_termination_log_fifo
run_case "faults: full disk saving a parameter: 64, no partial file" case_full_outputs parameter
run_case "faults: full disk saving an artifact: 64, no partial file" case_full_outputs artifact
run_case "faults: full disk writing exitcode: 64, no temporary file" case_full_exitcode
run_case "faults: stdout and stderr both dead pipes: exit 2, files complete" case_both_consoles_dead
run_case "faults: signals while blocked writing to a stalled console: nothing lost" case_signals_while_blocked_in_write
finish
