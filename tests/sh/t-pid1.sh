#!/usr/bin/env bash
# The emissary as PID 1 of a new PID namespace, as in a container: it reaps orphans at once,
# takes SIGTERM from outside (the runtime) and from inside (`argoexec kill 15 1`, which the
# controller runs), and the signal file escalates to SIGKILL for a child that ignores TERM.
# A SIGKILL of the whole namespace is out of scope: nothing survives it, by design.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have_pidns() {
    unshare -m -p -f --mount-proc true 2>/dev/null
}

# ns_bg ARGS...: `argoexec emissary ARGS...` as PID 1 of a new PID and mount namespace, in the
# background. NS_PID is unshare's pid; EM_PID (set by ns_em_pid) the emissary's host pid.
ns_bg() {
    ARGOEXEC_VAR_RUN_ARGO="$ROOT" ARGOEXEC_TERMINATION_LOG="$TLOG" \
        unshare -m -p -f --mount-proc "$ARGOEXEC" emissary "$@" &
    NS_PID=$!
    track_pid "$NS_PID"
}

# ns_em_pid: waits for unshare's child (the namespace's PID 1) and sets EM_PID, then waits until
# the emissary has started its own child.
ns_em_pid() {
    wait_until 10 has_children "$NS_PID" || return 1
    EM_PID=$(children "$NS_PID" | head -1)
    track_pid "$EM_PID" # SIGKILL to a namespace's PID 1 ends everything in it
    wait_until 10 has_children "$EM_PID"
}

# (a) 200 orphaned shells end while the child still runs; counted from inside at ~1 s: no zombie.
case_orphans_reaped() {
    have_pidns || skip "no PID namespaces (unshare -p) here"
    new_root
    local d=$ROOT/..
    export OUT=$d/zombies
    ns_bg -- sh -c '
        i=0
        while [ $i -lt 200 ]; do (sh -c "sleep 0.05" &); i=$((i + 1)); done
        sleep 1
        ps -eo stat= | grep -c "^Z" > "$OUT.tmp"; mv "$OUT.tmp" "$OUT"
        ps -eo pid=,stat=,args= > "$OUT.ps"
        sleep 0.5' >"$d/out" 2>"$d/err"
    bg_wait "$NS_PID" 20
    assert_eq 0 "$BG_RC" "exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 0 "exitcode file"
    assert_file_eq "$OUT" "0"$'\n' "zombies seen from inside at ~1 s"
    if [[ $(cat "$OUT" 2>/dev/null) != 0 ]]; then
        sed 's/^/      /' "$OUT.ps" | head -20
    fi
}

# (b) SIGTERM from outside the namespace to its PID 1: forwarded; `sleep 30` dies of it (143),
# a shell that traps it exits 7. Within 2 s.
case_term_from_outside() {
    local want=$1
    shift
    have_pidns || skip "no PID namespaces (unshare -p) here"
    new_root
    local d=$ROOT/.. t0 t1
    ns_bg -- "$@" >"$d/out" 2>"$d/err"
    assert_true "emissary and child started in the namespace" ns_em_pid || return
    sleep 0.2 # let the child set its trap
    t0=$(now_ms)
    kill -TERM "$EM_PID"
    bg_wait "$NS_PID" 10
    t1=$(now_ms)
    assert_eq "$want" "$BG_RC" "exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" "$want" "exitcode file"
    assert_le $((t1 - t0)) 2000 "ms from SIGTERM to exit"
}

# (c) `argoexec kill 15 1` run inside the namespace, as the controller does: 143.
case_kill_subcommand_inside() {
    have_pidns || skip "no PID namespaces (unshare -p) here"
    command -v nsenter >/dev/null || skip "no nsenter"
    new_root
    local d=$ROOT/.. out rc t0 t1
    ns_bg -- sleep 30 >"$d/out" 2>"$d/err"
    assert_true "emissary and child started in the namespace" ns_em_pid || return
    t0=$(now_ms)
    out=$(nsenter -t "$EM_PID" -p -m "$ARGOEXEC" kill 15 1 2>&1)
    rc=$?
    # 0, or 137: the emissary can end the step (and the kernel then SIGKILLs everything left in
    # the namespace, this `kill` process included) between its kill(2) and its exit.
    assert_true "argoexec kill exit code 0 (or 137, killed with the namespace), got $rc" test "$rc" = 0 -o "$rc" = 137
    assert_eq "killing 1 with SIGTERM" "$out" "argoexec kill output"
    bg_wait "$NS_PID" 10
    t1=$(now_ms)
    assert_eq 143 "$BG_RC" "exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 143 "exitcode file"
    assert_le $((t1 - t0)) 2000 "ms from kill to exit"
}

# (d) a child that ignores TERM: `15` in the signal file does nothing, then `9` ends it: 137.
case_signal_file_kill() {
    have_pidns || skip "no PID namespaces (unshare -p) here"
    new_root
    local d=$ROOT/.. sigf=$ROOT/ctr/main/signal t0 t1
    ns_bg -- sh -c "trap '' TERM; sleep 30" >"$d/out" 2>"$d/err"
    assert_true "emissary and child started in the namespace" ns_em_pid || return
    sleep 0.2
    printf 15 >"$sigf.tmp" && mv "$sigf.tmp" "$sigf"
    assert_true "signal file 15 taken" wait_until 2 test ! -e "$sigf"
    sleep 0.5
    assert_true "child still runs after TERM it ignores" has_children "$EM_PID"
    t0=$(now_ms)
    printf 9 >"$sigf.tmp" && mv "$sigf.tmp" "$sigf"
    bg_wait "$NS_PID" 10
    t1=$(now_ms)
    assert_eq 137 "$BG_RC" "exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 137 "exitcode file"
    assert_le $((t1 - t0)) 2000 "ms from signal file 9 to exit"
    assert_true "signal file deleted" test ! -e "$sigf"
}

# zombies_of PID: how many zombie children PID has now.
zombies_of() {
    local f s n=0 fields
    for f in /proc/[0-9]*/stat; do
        { read -r s <"$f"; } 2>/dev/null || continue
        read -r -a fields <<<"${s##*") "}" # state ppid ...
        [[ ${fields[0]} == Z && ${fields[1]} == "$1" ]] && n=$((n + 1))
    done
    echo "$n"
}

# Not PID 1 (run directly): the emissary makes itself a child subreaper, so the orphans of its
# child become its children and must be reaped at once too. Counted from outside at ~1 s.
case_subreaper_reaps() {
    new_root
    local d=$ROOT/.. z
    em_bg -- sh -c '
        i=0
        while [ $i -lt 200 ]; do (sh -c "sleep 0.05" &); i=$((i + 1)); done
        touch "$0.spawned"
        sleep 1.5' "$d/mark" >"$d/out" 2>"$d/err"
    assert_true "orphans spawned" wait_until 10 test -e "$d/mark.spawned" || return
    sleep 0.5
    z=$(zombies_of "$EM_PID")
    assert_eq 0 "$z" "zombie children of the emissary at ~0.5 s after the last orphan started"
    em_wait 10
    assert_eq 0 "$EM_RC" "exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 0 "exitcode file"
}

# Under a peer init (tini, dumb-init) as the container's PID 1, SIGTERM to that init reaches the
# emissary and through it the child: 143 all the way.
case_under_peer_init() {
    local init=$1
    shift
    have_pidns || skip "no PID namespaces (unshare -p) here"
    command -v "$init" >/dev/null || skip "no $init"
    new_root
    local d=$ROOT/.. t0 t1 initpid
    ARGOEXEC_VAR_RUN_ARGO="$ROOT" ARGOEXEC_TERMINATION_LOG="$TLOG" \
        unshare -m -p -f --mount-proc "$init" "$@" "$ARGOEXEC" emissary -- sleep 30 >"$d/out" 2>"$d/err" &
    NS_PID=$!
    track_pid "$NS_PID"
    assert_true "$init started" wait_until 10 has_children "$NS_PID" || return
    initpid=$(children "$NS_PID" | head -1)
    track_pid "$initpid"
    assert_true "emissary started" wait_until 10 has_children "$initpid" || return
    EM_PID=$(children "$initpid" | head -1)
    assert_true "child started" wait_until 10 has_children "$EM_PID" || return
    sleep 0.1
    t0=$(now_ms)
    kill -TERM "$initpid"
    bg_wait "$NS_PID" 10
    t1=$(now_ms)
    assert_eq 143 "$BG_RC" "exit code through $init"
    assert_file_eq "$ROOT/ctr/main/exitcode" 143 "exitcode file"
    assert_le $((t1 - t0)) 2000 "ms from SIGTERM to exit"
}

run_case "pid1 (a): 200 orphans reaped at once, no zombie seen from inside" case_orphans_reaped
run_case "pid1 (b): SIGTERM from outside reaches 'sleep 30': 143" case_term_from_outside 143 sleep 30
run_case "pid1 (b): SIGTERM from outside reaches a trapping shell: 7" case_term_from_outside 7 sh -c 'trap "exit 7" TERM; while :; do sleep 0.05; done'
run_case "pid1 (c): 'argoexec kill 15 1' inside the namespace stops the step: 143" case_kill_subcommand_inside
run_case "pid1 (d): child ignores TERM; '9' in ctr/main/signal: 137 within 2 s" case_signal_file_kill
run_case "not pid1: as a child subreaper it reaps the 200 orphans too" case_subreaper_reaps
run_case "under tini as PID 1: SIGTERM to tini ends the step with 143" case_under_peer_init tini --
run_case "under dumb-init as PID 1: SIGTERM to dumb-init ends the step with 143" case_under_peer_init dumb-init
finish
