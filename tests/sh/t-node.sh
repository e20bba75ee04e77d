#!/usr/bin/env bash
# A busy node (SPEC 3 step 8): a step costs its node what it uses and no more.
#
#   - 200 capturing emissaries at once under one non-root uid (each its own root, a sleeping
#     child): a new pipe of that uid still gets the kernel's 65,536 bytes (pipe pages are
#     charged to a per-uid budget every container of that uid on the node shares; this part
#     passes only once no pipe is grown), bounded RSS, CPU and wake-ups per emissary, at most
#     one inotify instance each;
#   - the same with that uid's inotify budget spent beforehand (a process of that uid holds
#     every instance it can get): no instance, the slow tick, and the signal file still seen
#     within about a second;
#   - an idle sidecar beside a main that writes 5,000 lines a second wakes fewer than 50 times
#     in 3 s (wake-ups counted as voluntary context switches of its main thread).
# Bounded (about 40 s); every process a case starts is killed when it ends (lib.sh). The RSS
# and CPU bounds are for the static musl build the suite runs (a debug glibc build is ~3 MiB).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY=/usr/bin/python3
NODE_UID=4242
N=${NODE_STEPS:-200}

# setpriv execs the command: a process started with "${AS_UID[@]}" CMD & is CMD itself.
AS_UID=(setpriv --reuid "$NODE_UID" --regid "$NODE_UID" --clear-groups)

# Prepares BASE (readable by the uid) with a copy of the binary the uid can run.
node_base() {
    new_tmpdir BASE || return 1
    chmod 0755 "$BASE"
    cp "$ARGOEXEC" "$BASE/argoexec" && chmod 0755 "$BASE/argoexec"
}

# start_steps: N emissaries as the uid, each with its own root, `sleep 60` as the child;
# their pids in STEPS.
start_steps() {
    local i r
    STEPS=()
    for ((i = 0; i < N; i++)); do
        r="$BASE/r$i"
        mkdir -p "$r" && printf '{}' >"$r/template" && chmod 0777 "$r"
        ARGOEXEC_VAR_RUN_ARGO="$r" ARGOEXEC_TERMINATION_LOG="$r/termination-log" \
            ARGO_INCLUDE_SCRIPT_OUTPUT=true \
            "${AS_UID[@]}" "$BASE/argoexec" emissary -- sleep 60 >/dev/null 2>&1 &
        STEPS+=("$!")
        track_pid "$!"
        # No job notice for each one killed at the end (they carry the case's mark).
        disown "$!"
    done
}

all_have_children() {
    local p
    for p in "${STEPS[@]}"; do
        has_children "$p" || return 1
    done
}

# The readers below fork nothing, so that 200 of them take milliseconds, not seconds: each
# step's 3 s window must be 3 s.

# status_of FILE FIELD: a field of a /proc status file (0 when gone)
status_of() {
    local k v _
    while read -r k v _; do
        [[ $k == "$2:" ]] && { echo "$v"; return; }
    done 2>/dev/null <"$1"
    echo 0
}

# main-thread voluntary context switches of PID (its wake-ups)
wakeups() { status_of "/proc/$1/task/$1/status" voluntary_ctxt_switches; }

# CPU time of every thread of PID, in ns
cpu_ns() {
    local f t s=0 _
    for f in /proc/"$1"/task/*/schedstat; do
        read -r t _ 2>/dev/null <"$f" && s=$((s + t))
    done
    echo "$s"
}

rss_kb() { status_of "/proc/$1/status" VmRSS; }

inotify_instances() {
    local n=0 f
    for f in /proc/"$1"/fd/*; do
        [[ $(readlink "$f" 2>/dev/null) == anon_inode:inotify ]] && n=$((n + 1))
    done
    echo "$n"
}

new_pipe_size() {
    "${AS_UID[@]}" "$PY" -c 'import os, fcntl; r, w = os.pipe(); print(fcntl.fcntl(r, 1032))'
}

# measure_steps MAX_WAKES_PER_3S: RSS, CPU and wake-ups of the running steps over 3 s, and
# the inotify instances each holds (totals in INOTIFY_TOTAL, INOTIFY_MAX).
measure_steps() {
    local max_wakes=$1 p w0=() c0=() w1=() c1=() i dw=0 dc=0 rss=0 r maxw=0 d n
    INOTIFY_TOTAL=0 INOTIFY_MAX=0
    # Past every wait's first moments (the 20 ms looks of its first 200 ms).
    sleep 1
    for p in "${STEPS[@]}"; do
        w0+=("$(wakeups "$p")")
        c0+=("$(cpu_ns "$p")")
    done
    sleep 3
    for p in "${STEPS[@]}"; do
        w1+=("$(wakeups "$p")")
        c1+=("$(cpu_ns "$p")")
    done
    i=0
    for p in "${STEPS[@]}"; do
        d=$((w1[i] - w0[i]))
        dw=$((dw + d))
        ((d > maxw)) && maxw=$d
        dc=$((dc + c1[i] - c0[i]))
        r=$(rss_kb "$p")
        rss=$((rss + ${r:-0}))
        n=$(inotify_instances "$p")
        INOTIFY_TOTAL=$((INOTIFY_TOTAL + n))
        ((n > INOTIFY_MAX)) && INOTIFY_MAX=$n
        i=$((i + 1))
    done
    echo "    ($N steps: RSS $((rss / N)) KiB each, CPU $((dc / N / 1000)) us each in 3 s," \
        "wake-ups $((dw / N)) each (max $maxw), inotify instances $INOTIFY_TOTAL in all)"
    assert_le $((rss / N)) 1024 "RSS per emissary (KiB)"
    assert_le $((dc / N)) 2000000 "CPU per emissary in 3 s (ns)"
    assert_le "$maxw" "$max_wakes" "wake-ups of the busiest emissary in 3 s"
    assert_le "$INOTIFY_MAX" 1 "inotify instances of one emissary"
}

stop_steps() {
    local p
    for p in "${STEPS[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    kill_marked
}

case_node_of_steps() {
    command -v setpriv >/dev/null || skip "no setpriv"
    node_base || return 1
    start_steps
    if ! wait_until 30 all_have_children; then
        _not_ok "not every one of $N emissaries started its child within 30 s"
        return
    fi
    assert_eq 65536 "$(new_pipe_size)" "a new pipe of uid $NODE_UID beside $N capturing steps"
    measure_steps 10
    stop_steps
}

# hold_inotify: a process of the uid holding every inotify instance it can get.
hold_inotify() {
    "${AS_UID[@]}" "$PY" -c '
import ctypes, sys, time
libc = ctypes.CDLL(None)
n = 0
while libc.inotify_init1(0) >= 0:
    n += 1
print(n, flush=True)
time.sleep(120)' >"$BASE/held" &
    track_pid "$!"
    disown "$!"
    wait_until 10 test -s "$BASE/held"
}

case_node_without_inotify() {
    command -v setpriv >/dev/null || skip "no setpriv"
    node_base || return 1
    hold_inotify || {
        _not_ok "could not spend the inotify budget of uid $NODE_UID"
        return
    }
    echo "    (the holder took $(cat "$BASE/held") inotify instances of uid $NODE_UID)"
    start_steps
    if ! wait_until 30 all_have_children; then
        _not_ok "not every one of $N emissaries started its child within 30 s"
        return
    fi
    measure_steps 10
    assert_eq 0 "$INOTIFY_TOTAL" "inotify instances with the budget spent"
    # The slow tick still sees the signal file.
    local t0 t1
    printf 15 >"$BASE/r0/ctr/main/signal"
    t0=$(now_ms)
    wait_until 5 test -s "$BASE/r0/ctr/main/exitcode"
    t1=$(now_ms)
    assert_file_eq "$BASE/r0/ctr/main/exitcode" 143 "exit code after the signal file asked for SIGTERM"
    assert_le $((t1 - t0)) 1500 "signal file seen without inotify (ms)"
    stop_steps
}

case_idle_sidecar_beside_busy_main() {
    local side_pid main_pid w0 w1
    new_root || return 1
    printf '{"sidecars":[{"name":"side"}]}' >"$ROOT/template"
    ARGO_CONTAINER_NAME=side ARGO_INCLUDE_SCRIPT_OUTPUT=true em_bg -- sleep 60 >/dev/null 2>&1
    side_pid=$EM_PID
    wait_until 10 has_children "$side_pid" || {
        _not_ok "sidecar child did not start"
        return
    }
    sleep 0.5
    ARGO_CONTAINER_NAME=main ARGO_INCLUDE_SCRIPT_OUTPUT=true em_bg -- "$PY" -c '
import os, time
end = time.monotonic() + 3.2
i = 0
while time.monotonic() < end:
    for _ in range(50):
        os.write(1, b"line %d\n" % i)
        i += 1
    time.sleep(0.01)' >/dev/null 2>&1
    main_pid=$EM_PID
    sleep 0.1
    w0=$(wakeups "$side_pid")
    sleep 3
    w1=$(wakeups "$side_pid")
    bg_wait "$main_pid" 10
    assert_eq 0 "$BG_RC" "main's exit code"
    local lines
    lines=$(wc -l <"$ROOT/ctr/main/stdout")
    echo "    (main wrote $lines lines; the sidecar woke $((w1 - w0)) times in 3 s)"
    assert_le 9000 "$lines" "lines main wrote (about 5,000 a second)"
    assert_le $((w1 - w0)) 49 "sidecar wake-ups in 3 s beside main's writes"
    bg_wait "$side_pid" 5
    assert_eq 143 "$BG_RC" "sidecar terminated once main is done"
}

run_case "$N capturing steps of one uid: pipes keep 64 KiB, RSS/CPU/wake-ups per step bounded, at most one inotify instance each" case_node_of_steps
run_case "$N steps with the uid's inotify budget spent: slow tick, signal file seen within 1.5 s" case_node_without_inotify
run_case "idle sidecar beside a main writing 5,000 lines a second: fewer than 50 wake-ups in 3 s" case_idle_sidecar_beside_busy_main
finish
