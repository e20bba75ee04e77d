#!/usr/bin/env bash
# A hostile neighbour: another container of the pod writes into the shared, 0777 /var/run/argo
# (symlinks, FIFOs, huge files planted where the emissary reads or writes). Each case plants
# its traps with plain shell commands, as that container would, then checks that the emissary
# never wrote through them to a file outside the root (or refused with 64 and a clear
# message), never blocked, and read no more than a few bytes.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# victim FILE: a file outside the root that must keep its content "precious".
victim() { printf precious >"$1"; }

# untouched FILE: still a regular file holding "precious", and nothing else beside it.
assert_untouched() {
    assert_file_eq "$1" precious "victim $1 outside the root"
}

# no_temp_left DIR: no `.NAME.tmpPID.N` file left in DIR.
assert_no_temp() {
    local left
    left=$(find "$1" -maxdepth 1 -name '.*.tmp*' ! -type l 2>/dev/null | tr '\n' ' ')
    assert_eq "" "$left" "temporary files left in $1"
}

# in_pidns ARGS...: `argoexec emissary ARGS...` as PID 1 of a new PID namespace, so that its
# temporary names (`.exitcode.tmp1.0`, ...) are predictable for the neighbour. Output to
# $D/out, $D/err; status in RC.
in_pidns() {
    ARGOEXEC_VAR_RUN_ARGO=$ROOT ARGOEXEC_TERMINATION_LOG=$TLOG \
        timeout -s KILL 30 unshare -p -f -m --mount-proc "$ARGOEXEC" emissary "$@" >"$D/out" 2>"$D/err"
    RC=$?
}
have_pidns() { unshare -p -f -m --mount-proc true 2>/dev/null; }

# --------------------------------------------------------------- exitcode

# A symlink planted at the final name `exitcode`: rename replaces the link, the target keeps
# its content.
case_exitcode_symlink() {
    new_root
    D=$ROOT/..
    victim "$D/victim"
    mkdir -p "$ROOT/ctr/main"
    ln -s "$D/victim" "$ROOT/ctr/main/exitcode"
    em -- sh -c 'exit 5' >"$D/out" 2>"$D/err"
    assert_eq 5 "$?" "exit code"
    assert_untouched "$D/victim"
    assert_true "exitcode is now a regular file" test -f "$ROOT/ctr/main/exitcode" -a ! -L "$ROOT/ctr/main/exitcode"
    assert_file_eq "$ROOT/ctr/main/exitcode" 5 "exitcode"
}

# Symlinks planted at the first temporary names of `exitcode`: the emissary takes the next
# free name, never writes through a link.
case_exitcode_temp_symlinks() {
    have_pidns || skip "no PID namespaces here"
    new_root
    D=$ROOT/..
    victim "$D/victim"
    mkdir -p "$ROOT/ctr/main"
    local n
    for n in 0 1 2 3; do ln -s "$D/victim" "$ROOT/ctr/main/.exitcode.tmp1.$n"; done
    in_pidns -- sh -c 'exit 6'
    assert_eq 6 "$RC" "exit code"
    assert_untouched "$D/victim"
    assert_file_eq "$ROOT/ctr/main/exitcode" 6 "exitcode"
    assert_no_temp "$ROOT/ctr/main"
}

# Every temporary name the emissary would try is a planted symlink: it gives up with 64 and a
# message naming exitcode, and still writes nothing through the links.
case_exitcode_all_temp_names_taken() {
    have_pidns || skip "no PID namespaces here"
    new_root
    D=$ROOT/..
    victim "$D/victim"
    mkdir -p "$ROOT/ctr/main"
    local n
    for n in $(seq 0 15); do ln -s "$D/victim" "$ROOT/ctr/main/.exitcode.tmp1.$n"; done
    in_pidns -- sh -c 'exit 0'
    assert_eq 64 "$RC" "exit code"
    assert_untouched "$D/victim"
    assert_contains "$(cat "$D/err")" "failed to write exit code" "stderr"
    assert_true "no exitcode file" test ! -e "$ROOT/ctr/main/exitcode"
}

# --------------------------------------------------------------- capture files

# `ctr/main/stdout` (or `combined`) a symlink to a file outside: refused with 64 and a clear
# message, the target untouched.
case_capture_file_symlink() {
    local name=$1
    new_root
    D=$ROOT/..
    victim "$D/victim"
    mkdir -p "$ROOT/ctr/main"
    ln -s "$D/victim" "$ROOT/ctr/main/$name"
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em -- sh -c 'echo leaked; echo leaked >&2' >"$D/out" 2>"$D/err"
    assert_eq 64 "$?" "exit code"
    assert_untouched "$D/victim"
    assert_contains "$(cat "$D/err")" "ctr/main/$name" "stderr names the file"
    assert_file_eq "$ROOT/ctr/main/exitcode" 64 "exitcode"
}

# `ctr/main/stdout` (or `combined`) a FIFO nobody reads: opening it for writing must not block
# the emissary (with SIGTERM blocked it could then only be killed): 64 naming the file.
case_capture_file_fifo() {
    local name=$1
    new_root
    D=$ROOT/..
    mkdir -p "$ROOT/ctr/main"
    mkfifo "$ROOT/ctr/main/$name"
    ARGO_INCLUDE_SCRIPT_OUTPUT=true EM_TIMEOUT=5 em -- true >"$D/out" 2>"$D/err"
    local rc=$?
    assert_ne 137 "$rc" "the emissary hung (killed after 5 s)"
    assert_eq 64 "$rc" "exit code"
    assert_contains "$(grep '^Error' "$D/err")" "ctr/main/$name" "stderr names the file"
}

# The template replaced by a FIFO, or by a symlink to /dev/zero (the root is 0777 with no
# sticky bit, so a neighbour can do both): refused at once with 64, never a hang and never
# read to the end of memory (the run is under a 256 MiB address-space limit).
case_template_hostile() {
    local kind=$1
    new_root
    D=$ROOT/..
    rm -f "$ROOT/template"
    case $kind in
        fifo) mkfifo "$ROOT/template" ;;
        zero) ln -s /dev/zero "$ROOT/template" ;;
    esac
    (
        ulimit -v 262144
        EM_TIMEOUT=5 em -- true
    ) >"$D/out" 2>"$D/err"
    local rc=$?
    assert_ne 137 "$rc" "the emissary hung (killed after 5 s)"
    assert_eq 64 "$rc" "exit code"
    assert_contains "$(grep '^Error' "$D/err")" "template" "stderr names the template"
    assert_not_contains "$(cat "$D/err")" "out of memory" "stderr"
}

# --------------------------------------------------------------- the folder itself

# `ctr/main` itself a symlink to a folder outside the root: nothing may land there.
case_ctr_dir_symlink() {
    local which=$1
    new_root
    D=$ROOT/..
    mkdir -p "$D/outside"
    case $which in
        ctr/main) mkdir -p "$ROOT/ctr" && ln -s "$D/outside" "$ROOT/ctr/main" ;;
        ctr) ln -s "$D/outside" "$ROOT/ctr" ;;
    esac
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em -- sh -c 'echo hi' >"$D/out" 2>"$D/err"
    local rc=$?
    echo "    observed: exit $rc; outside holds: $(cd "$D/outside" && find . -mindepth 1 | tr '\n' ' ')"
    assert_eq "" "$(cd "$D/outside" && find . -mindepth 1)" "files written outside the root through $which"
    [[ $rc == 0 ]] || assert_contains "$(cat "$D/err")" "$which" "stderr explains"
}

# --------------------------------------------------------------- outputs

PARAM_TMPL='{"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"SRC"}}]}}'
ART_TMPL='{"outputs":{"artifacts":[{"name":"a","path":"SRC"}]}}'

# set_output_template KIND: an output declared at $D/src/p (a parameter file or an artifact
# folder); DEST is where it lands below outputs/.
set_output_template() {
    mkdir -p "$D/src"
    printf value >"$D/src/p"
    local src
    src=$(cd "$D/src" && pwd)/p
    case $1 in
        parameter) printf '%s' "${PARAM_TMPL/SRC/$src}" >"$ROOT/template"; DEST=parameters${src} ;;
        artifact) printf '%s' "${ART_TMPL/SRC/$src}" >"$ROOT/template"; DEST=artifacts${src}.tgz ;;
    esac
}

# A symlink planted at a folder on the way to an output (`outputs`, `outputs/parameters`, the
# first folder below it, the output's own folder): refused with 64, nothing outside.
case_outputs_folder_symlink() {
    local kind=$1 level=$2 at
    new_root
    D=$ROOT/..
    mkdir -p "$D/outside"
    set_output_template "$kind"
    case $level in
        outputs) at=outputs ;;
        kind) at=outputs/${DEST%%/*} ;;
        first) at=outputs/$(cut -d/ -f1-2 <<<"$DEST") ;;
        parent) at=outputs/$(dirname "$DEST") ;;
    esac
    mkdir -p "$ROOT/$(dirname "$at")"
    ln -s "$D/outside" "$ROOT/$at"
    em -- true >"$D/out" 2>"$D/err"
    assert_eq 64 "$?" "exit code"
    assert_eq "" "$(cd "$D/outside" && find . -mindepth 1)" "files written outside through $at"
    assert_contains "$(cat "$D/err")" "not a folder" "stderr"
    assert_file_eq "$ROOT/ctr/main/exitcode" 64 "exitcode"
}

# A symlink at the output's final name: replaced by the rename, its target untouched.
case_output_final_symlink() {
    local kind=$1
    new_root
    D=$ROOT/..
    victim "$D/victim"
    set_output_template "$kind"
    mkdir -p "$ROOT/outputs/$(dirname "$DEST")"
    ln -s "$D/victim" "$ROOT/outputs/$DEST"
    em -- true >"$D/out" 2>"$D/err"
    assert_eq 0 "$?" "exit code"
    assert_untouched "$D/victim"
    assert_true "output is a regular file" test -f "$ROOT/outputs/$DEST" -a ! -L "$ROOT/outputs/$DEST"
}

# Symlinks at the output's first temporary names: the next free name is taken.
case_output_temp_symlink() {
    have_pidns || skip "no PID namespaces here"
    local kind=$1 dir base n
    new_root
    D=$ROOT/..
    victim "$D/victim"
    set_output_template "$kind"
    dir=$ROOT/outputs/$(dirname "$DEST")
    base=$(basename "$DEST")
    mkdir -p "$dir"
    for n in 0 1 2; do ln -s "$D/victim" "$dir/.$base.tmp1.$n"; done
    in_pidns -- true
    assert_eq 0 "$RC" "exit code"
    assert_untouched "$D/victim"
    assert_true "output is a regular file" test -f "$ROOT/outputs/$DEST" -a ! -L "$ROOT/outputs/$DEST"
    assert_no_temp "$dir"
}

# --------------------------------------------------------------- the signal file

# `ctr/main/signal` is a FIFO, a folder, a huge file or a symlink (to /dev/zero, or to a file
# outside saying 9): the child (exit 3 after 1 s) is not disturbed, the emissary never blocks,
# reads at most a few bytes and warns exactly once.
case_signal_file_hostile() {
    local kind=$1 t0 ms rchar=0 r warned
    new_root
    D=$ROOT/..
    local sig=$ROOT/ctr/main/signal
    mkdir -p "$ROOT/ctr/main"
    case $kind in
        fifo) mkfifo "$sig" ;;
        dir) mkdir "$sig" ;;
        huge) head -c 1024 /dev/urandom | tr -d '0-9 \t\n\r\f\v' >"$sig"; truncate -s 8G "$sig" ;;
        zero) ln -s /dev/zero "$sig" ;;
        link9) printf 9 >"$D/nine"; ln -s "$D/nine" "$sig" ;;
    esac
    t0=$(now_ms)
    em_bg -- sh -c 'sleep 1; exit 3' >"$D/out" 2>"$D/err"
    sleep 0.6
    # What the emissary has read so far (rchar counts every read).
    r=$(awk '/^rchar/ {print $2}' "/proc/$EM_PID/io" 2>/dev/null) && rchar=$r
    em_wait 10
    ms=$(($(now_ms) - t0))
    assert_eq 3 "$EM_RC" "exit code (the child's own)"
    assert_le "$ms" 4000 "ms for a 1 s child"
    assert_le "$rchar" 1048576 "bytes read by the emissary in 0.6 s"
    warned=$(grep -c 'ignoring signal file' "$D/err")
    assert_eq 1 "$warned" "warnings about the signal file"
    assert_true "the planted $kind is left alone" test -e "$sig" -o -L "$sig"
    [[ $kind == link9 ]] && assert_file_eq "$D/nine" 9 "target of the link"
    return 0
}

# --------------------------------------------------------------- dependencies

DEP_TMPL='{"containerSet":{"containers":[{"name":"a"},{"name":"main","dependencies":["a"]}]}}'

# A dependency's `exitcode` is a FIFO or a symlink (to a file saying 0): not opened into a
# block nor followed; the emissary keeps waiting (one warning), a SIGTERM still ends the wait
# at once (143), and a real file written later lets it go on.
case_dependency_exitcode_hostile() {
    local kind=$1 then=$2 t0 ms
    new_root
    D=$ROOT/..
    printf '%s' "$DEP_TMPL" >"$ROOT/template"
    mkdir -p "$ROOT/ctr/a"
    case $kind in
        fifo) mkfifo "$ROOT/ctr/a/exitcode" ;;
        symlink) printf 0 >"$D/zero"; ln -s "$D/zero" "$ROOT/ctr/a/exitcode" ;;
        fifo-link) mkfifo "$D/fifo"; ln -s "$D/fifo" "$ROOT/ctr/a/exitcode" ;;
    esac
    em_bg -- sh -c 'echo ran >"$0"' "$D/ran" >"$D/out" 2>"$D/err"
    sleep 0.5
    assert_ne "" "$(proc_state "$EM_PID")" "emissary still waiting"
    assert_true "the command has not run" test ! -e "$D/ran"
    assert_eq 1 "$(grep -c 'cannot read dependency exit code yet' "$D/err")" "warnings"
    case $then in
        term)
            t0=$(now_ms)
            kill -TERM "$EM_PID"
            em_wait 10
            ms=$(($(now_ms) - t0))
            assert_eq 143 "$EM_RC" "exit code after SIGTERM"
            assert_le "$ms" 1000 "ms to end the wait"
            ;;
        real)
            rm -f "$ROOT/ctr/a/exitcode"
            printf 0 >"$ROOT/ctr/a/exitcode"
            em_wait 10
            assert_eq 0 "$EM_RC" "exit code once the dependency really ended"
            assert_true "the command ran" test -e "$D/ran"
            ;;
    esac
}

run_case "hostile: symlink at ctr/main/exitcode: replaced, target untouched" case_exitcode_symlink
run_case "hostile: symlinks at exitcode's first temp names: next name taken, target untouched" case_exitcode_temp_symlinks
run_case "hostile: symlinks at all of exitcode's temp names: 64, nothing written through" case_exitcode_all_temp_names_taken
run_case "hostile: symlink at ctr/main/stdout: 64, target untouched" case_capture_file_symlink stdout
run_case "hostile: symlink at ctr/main/combined: 64, target untouched" case_capture_file_symlink combined
run_case "hostile: ctr/main/stdout a FIFO: no block, 64" case_capture_file_fifo stdout
run_case "hostile: ctr/main/combined a FIFO: no block, 64" case_capture_file_fifo combined
run_case "hostile: template a FIFO: no block, 64" case_template_hostile fifo
run_case "hostile: template a symlink to /dev/zero: refused, not read to exhaustion" case_template_hostile zero
run_case "hostile: ctr/main a symlink to a folder outside: nothing written there" case_ctr_dir_symlink ctr/main
run_case "hostile: ctr a symlink to a folder outside: nothing written there" case_ctr_dir_symlink ctr
for kind in parameter artifact; do
    for level in outputs kind first parent; do
        run_case "hostile: $kind, symlink at the $level folder: 64, nothing outside" case_outputs_folder_symlink $kind $level
    done
    run_case "hostile: $kind, symlink at its final name: replaced, target untouched" case_output_final_symlink $kind
    run_case "hostile: $kind, symlinks at its temp names: next name taken, target untouched" case_output_temp_symlink $kind
done
for kind in fifo dir huge zero link9; do
    run_case "hostile: signal file is $kind: no block, few bytes read, one warning, exit 3" case_signal_file_hostile $kind
done
run_case "hostile: dependency exitcode a FIFO: no block, SIGTERM ends the wait (143)" case_dependency_exitcode_hostile fifo term
run_case "hostile: dependency exitcode a FIFO, then a real 0: goes on" case_dependency_exitcode_hostile fifo real
run_case "hostile: dependency exitcode a symlink to '0': not followed, SIGTERM 143" case_dependency_exitcode_hostile symlink term
run_case "hostile: dependency exitcode a symlink to a FIFO: no block, SIGTERM 143" case_dependency_exitcode_hostile fifo-link term
finish
