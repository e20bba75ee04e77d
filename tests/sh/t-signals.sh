#!/usr/bin/env bash
# Signals sent to the emissary (not PID 1, run directly): each one reaches the child's process
# group (SPEC 3 step 8), the emissary itself never stops or dies of them, and the exit code is
# the child's (128+n for a death by signal n).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY=/usr/bin/python3

# A Python child that appends the name of every signal it gets to $1 (one per line), counts
# SIGUSR1 and SIGUSR2, and on SIGTERM writes `usr1=N usr2=N` to $1.count and exits 42.
# It only sleeps in-process, so no stopped grandchild can hold it up.
write_recorder() {
    cat >"$1" <<'PYEOF'
import os, signal, sys, time
out = sys.argv[1]
counts = {"usr1": 0, "usr2": 0}
def record(n, _):
    with open(out, "a") as f:
        f.write(signal.Signals(n).name + "\n")
def usr1(n, _): counts["usr1"] += 1
def usr2(n, _): counts["usr2"] += 1
def term(n, _):
    with open(out + ".count", "w") as f:
        f.write("usr1=%d usr2=%d" % (counts["usr1"], counts["usr2"]))
    os._exit(42)
mode = sys.argv[2] if len(sys.argv) > 2 else "record"
for s in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCONT, signal.SIGHUP, signal.SIGWINCH):
    signal.signal(s, record)
if mode == "count":
    signal.signal(signal.SIGUSR1, usr1)
    signal.signal(signal.SIGUSR2, usr2)
    signal.signal(signal.SIGWINCH, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, term)
else:
    signal.signal(signal.SIGUSR1, record)
open(out + ".ready", "w").close()
while True:
    time.sleep(0.01)
PYEOF
}

# lines_are N LINE FILE: FILE has exactly N lines equal to LINE.
lines_are() { [[ $(grep -cx "$2" "$3" 2>/dev/null) == "$1" ]]; }

# SIGTERM reaches the child and a grandchild in its group; the child's own exit code (3) wins.
case_term_reaches_group() {
    new_root
    local d=$ROOT/.. t0 t1
    export F=$d/got # read by the child's shells
    em_bg -- sh -c '
        trap "echo child-got-term >> $F; exit 3" TERM
        sh -c "trap \"echo gc-got-term >> $F; exit 0\" TERM; touch $F.gc; while :; do sleep 0.05; done" &
        touch $F.child
        while :; do sleep 0.05; done' >"$d/out" 2>"$d/err"
    assert_true "child and grandchild started" wait_until 10 test -e "$F.child" -a -e "$F.gc" || return
    sleep 0.1
    t0=$(now_ms)
    kill -TERM "$EM_PID"
    em_wait 10
    t1=$(now_ms)
    assert_eq 3 "$EM_RC" "emissary exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 3 "exitcode file"
    assert_le $((t1 - t0)) 2000 "ms from SIGTERM to exit"
    wait_until 2 grep -qx gc-got-term "$F"
    assert_eq "1 1" "$(grep -cx child-got-term "$F") $(grep -cx gc-got-term "$F")" "child/grandchild got TERM (count each)"
}

# SIGTSTP, SIGTTIN, SIGTTOU: the emissary does not stop, the child gets each of them.
case_job_control_signals() {
    new_root
    local d=$ROOT/.. s st name
    write_recorder "$d/rec.py"
    em_bg -- "$PY" "$d/rec.py" "$d/got" >"$d/out" 2>"$d/err"
    assert_true "child started" wait_until 10 test -e "$d/got.ready" || return
    for s in TSTP TTIN TTOU; do
        kill -"$s" "$EM_PID"
        name=SIG$s
        assert_true "child received $name" wait_until 3 grep -qx "$name" "$d/got"
        st=$(proc_state "$EM_PID")
        assert_true "emissary not stopped after $name (state '$st')" test -n "$st" -a "$st" != T -a "$st" != t -a "$st" != Z
    done
    kill -TERM "$EM_PID"
    em_wait 10
    assert_eq 143 "$EM_RC" "exit code after SIGTERM"
    assert_file_eq "$ROOT/ctr/main/exitcode" 143 "exitcode file"
    assert_eq "SIGTSTP SIGTTIN SIGTTOU" "$(grep -x 'SIGT[A-Z]*' "$d/got" | tr '\n' ' ' | sed 's/ $//')" "signals the child saw, in order"
}

# SIGUSR1 is forwarded, and the child keeps running.
case_usr1_forwarded() {
    new_root
    local d=$ROOT/..
    write_recorder "$d/rec.py"
    em_bg -- "$PY" "$d/rec.py" "$d/got" >"$d/out" 2>"$d/err"
    assert_true "child started" wait_until 10 test -e "$d/got.ready" || return
    kill -USR1 "$EM_PID"
    assert_true "child received SIGUSR1" wait_until 3 grep -qx SIGUSR1 "$d/got"
    kill -USR1 "$EM_PID"
    assert_true "child received a second SIGUSR1" wait_until 3 lines_are 2 SIGUSR1 "$d/got"
    assert_ne "" "$(proc_state "$EM_PID")" "emissary alive"
    kill -TERM "$EM_PID"
    em_wait 10
    assert_eq 143 "$EM_RC" "exit code"
}

# A signal whose default action kills (and dumps core): the emissary survives it, the child
# dies of it, exit 128+n, and the emissary still writes `exitcode` (proof it did not die).
case_fatal_signal_forwarded() {
    local sig=$1 num=$2
    new_root
    local d=$ROOT/..
    ulimit -c 0
    cd "$d" || return
    em_bg -- sleep 30 >"$d/out" 2>"$d/err"
    assert_true "child started" wait_until 10 has_children "$EM_PID" || return
    sleep 0.05
    kill -"$sig" "$EM_PID"
    em_wait 10
    assert_eq $((128 + num)) "$EM_RC" "exit code after SIG$sig"
    assert_file_eq "$ROOT/ctr/main/exitcode" $((128 + num)) "exitcode file (written by a living emissary)"
    assert_contains "$(cat "$d/err")" "sub-process exited" "emissary log"
}

# 2000 mixed USR1/USR2/WINCH while the child counts them: the emissary survives, the child
# saw USR1 and USR2 (standard signals coalesce, so at least one and at most 1000 each), and the
# exit code is the child's.
case_signal_storm() {
    new_root
    local d=$ROOT/.. i count u1 u2
    write_recorder "$d/rec.py"
    em_bg -- "$PY" "$d/rec.py" "$d/got" count >"$d/out" 2>"$d/err"
    assert_true "child started" wait_until 10 test -e "$d/got.ready" || return
    for ((i = 0; i < 2000; i++)); do
        case $((i % 3)) in
            0) kill -USR1 "$EM_PID" ;;
            1) kill -USR2 "$EM_PID" ;;
            2) kill -WINCH "$EM_PID" ;;
        esac || break
    done
    assert_eq 2000 "$i" "signals sent before the emissary vanished"
    sleep 0.3
    assert_ne "" "$(proc_state "$EM_PID")" "emissary alive after the storm"
    kill -TERM "$EM_PID"
    em_wait 10
    assert_eq 42 "$EM_RC" "exit code (the child's)"
    assert_file_eq "$ROOT/ctr/main/exitcode" 42 "exitcode file"
    count=$(cat "$d/got.count" 2>/dev/null)
    [[ $count =~ ^usr1=([0-9]+)\ usr2=([0-9]+)$ ]] || { assert_eq "usr1=N usr2=N" "$count" "child's count"; return; }
    u1=${BASH_REMATCH[1]} u2=${BASH_REMATCH[2]}
    echo "    (child counted USR1 $u1, USR2 $u2 of 667 each)"
    assert_true "child counted USR1 (got $u1)" test "$u1" -ge 1 -a "$u1" -le 667
    assert_true "child counted USR2 (got $u2)" test "$u2" -ge 1 -a "$u2" -le 667
}

run_case "SIGTERM to the emissary reaches child and grandchild; exit 3 from the child's trap" case_term_reaches_group
run_case "SIGTSTP/SIGTTIN/SIGTTOU: emissary never stops, child gets each" case_job_control_signals
run_case "SIGUSR1 forwarded to the child, which keeps running" case_usr1_forwarded
run_case "SIGSYS: emissary survives, child dies of it: 159" case_fatal_signal_forwarded SYS 31
run_case "SIGABRT: emissary survives, child dies of it: 134" case_fatal_signal_forwarded ABRT 6
run_case "SIGTRAP: emissary survives, child dies of it: 133" case_fatal_signal_forwarded TRAP 5
run_case "SIGPIPE sent with kill is forwarded: 141" case_fatal_signal_forwarded PIPE 13
run_case "signal storm: 2000 USR1/USR2/WINCH, emissary survives, exit code is the child's" case_signal_storm
finish
