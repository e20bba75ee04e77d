#!/usr/bin/env bash
# Plays real Argo workflow pods on this machine with Linux namespaces, no mocks.
#
# A pod here is:
#   - var-run-argo: one folder shared by every container (the emptyDir), bind-mounted at
#     /var/run/argo in each; argo-staging likewise at /argo/staging (script templates);
#   - init: `argoexec init` run from a scratch root that holds only the binary, chrooted, with
#     both folders bind-mounted (it copies itself to /var/run/argo/argoexec and writes the
#     template and the script);
#   - user containers (main, containerSet members, sidecars): each in its own mount and PID
#     namespace (`unshare -m -p -f`), chrooted into a minimal root (a static busybox installed
#     as /bin/sh and friends, /tmp a tmpfs, /proc its own), running
#     `/var/run/argo/argoexec emissary ... -- CMD` as its PID 1, main as a non-root user;
#   - wait: this shell, reading the shared folder the way upstream's wait container does
#     (exitcode files, ctr/main/stdout, outputs/parameters, outputs/artifacts/*.tgz) and
#     stopping containers through their signal files.
# Every mount is made inside a private mount namespace, so it vanishes with its container;
# processes and folders are removed by tests/sh/lib.sh when each case ends.
#
# Usage: scripts/pod-test.sh   (ARGOEXEC=path picks the static binary; last line `N passed, N failed`)
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../tests/sh/lib.sh"

BUSYBOX=/bin/busybox
# The main container's user: no passwd entry anywhere, no supplementary groups.
MAIN_USER=4242:4242
PY=/usr/bin/python3
# The controller's command for every wrapped container.
EMISSARY=(/var/run/argo/argoexec emissary --loglevel info --log-format text --gloglevel 0 --)

is_static() { ! file -L "$1" 2>/dev/null | grep -q 'dynamically linked'; }

# can_namespace: this machine lets us make mount and PID namespaces and chroot.
can_namespace() { unshare -m -p -f --propagation private true 2>/dev/null && chroot / true 2>/dev/null; }

# ---------------------------------------------------------------- the pod

# pod_new: a new pod in POD; VRA is its var-run-argo folder.
pod_new() {
    can_namespace || skip "no mount/PID namespaces or chroot here"
    [[ -x $BUSYBOX ]] && is_static "$BUSYBOX" || skip "no static busybox at $BUSYBOX"
    is_static "$ARGOEXEC" || skip "$ARGOEXEC is not static"
    new_tmpdir POD || return 1
    VRA=$POD/var-run-argo
    mkdir -p "$VRA" "$POD/staging" "$POD/logs" "$POD/rootfs" "$POD/wait"
    chmod 0777 "$VRA" "$POD/staging" # emptyDir volumes
    declare -gA CTR_PID=()
    write_launcher "$POD/launch.sh"
    launch_init_script >"$POD/launch-init.sh"
}

# The program each container starts with, inside its new namespaces (PID 1 there until it
# execs the emissary):
#   launch.sh ROOTFS USERSPEC WORKDIR SRC:DEST[:ro]... -- NAME=VALUE... -- CMD ARGS...
write_launcher() {
    cat >"$1" <<'EOF'
set -eu
rootfs=$1 userspec=$2 workdir=$3
shift 3
while [[ $1 != -- ]]; do
    IFS=: read -r src dst ro <<<"$1"
    mount --bind "$src" "$rootfs$dst"
    [[ $ro == ro ]] && mount -o remount,bind,ro "$rootfs$dst"
    shift
done
shift
envs=()
while [[ $1 != -- ]]; do
    envs+=("$1")
    shift
done
shift
mount -t tmpfs -o mode=1777 tmp "$rootfs/tmp"
mount -t proc proc "$rootfs/proc"
if [[ $workdir == / ]]; then
    exec /usr/bin/env -i "${envs[@]}" /usr/sbin/chroot --userspec="$userspec" "$rootfs" "$@"
fi
exec /usr/bin/env -i "${envs[@]}" /usr/sbin/chroot --userspec="$userspec" "$rootfs" \
    /bin/busybox sh -c 'cd "$0" || exit 127; exec "$@"' "$workdir" "$@"
EOF
}

# rootfs NAME: a minimal image for container NAME: busybox as /bin/*, mount points, a
# writable /dev/termination-log. Path in ROOTFS.
rootfs() {
    ROOTFS=$POD/rootfs/$1
    mkdir -p "$ROOTFS"/{bin,tmp,proc,dev,var/run/argo,argo/staging}
    cp "$BUSYBOX" "$ROOTFS/bin/busybox"
    chroot "$ROOTFS" /bin/busybox --install -s /bin
    : >"$ROOTFS/dev/null"
    : >"$ROOTFS/dev/termination-log"
    chmod 0666 "$ROOTFS/dev/termination-log"
}

# pod_init TEMPLATE_JSON: the init container, in its own mount and PID namespaces, chrooted
# into a root that holds only the binary and the mount points of the two volumes and /proc
# (with INIT_PROC=0: not even /proc). Its status in INIT_RC, logs in logs/init.*.
pod_init() {
    local r=$POD/rootfs/init
    mkdir -p "$r/bin" "$r/var/run/argo" "$r/argo/staging"
    [[ ${INIT_PROC:-1} == 1 ]] && mkdir -p "$r/proc"
    cp "$ARGOEXEC" "$r/bin/argoexec"
    timeout -s KILL 20 unshare -m -p -f --propagation private -- \
        bash "$POD/launch-init.sh" "$r" "$VRA" "$POD/staging" "$1" \
        >"$POD/logs/init.out" 2>"$POD/logs/init.err"
    INIT_RC=$?
}
# Mounts the two volumes (and /proc when there is a mount point) and runs init chrooted, with
# the environment the controller gives it.
launch_init_script() {
    cat <<'EOF'
set -eu
mount --bind "$2" "$1/var/run/argo"
mount --bind "$3" "$1/argo/staging"
[[ -d $1/proc ]] && mount -t proc proc "$1/proc"
exec /usr/bin/env -i ARGOEXEC_SH_MARK="$ARGOEXEC_SH_MARK" ARGO_CONTAINER_NAME=init \
    ARGO_POD_NAME=pod-test ARGO_NODE_ID=pod-test ARGO_TEMPLATE="$4" \
    ARGO_DEADLINE=0001-01-01T00:00:00Z \
    /usr/sbin/chroot "$1" /bin/argoexec init --loglevel info --log-format text --gloglevel 0
EOF
}

# ctr_start NAME USERSPEC [-w WORKDIR] [SRC:DEST[:ro]...] -- [NAME=VALUE...] -- CMD...
# Starts a user container in the background, stdout/stderr in logs/NAME.{out,err}.
ctr_start() {
    local name=$1 user=$2 workdir=/ binds=() envs=()
    shift 2
    if [[ $1 == -w ]]; then
        workdir=$2
        shift 2
    fi
    while [[ $1 != -- ]]; do
        binds+=("$1")
        shift
    done
    shift
    while [[ $1 != -- ]]; do
        envs+=("$1")
        shift
    done
    shift
    [[ -d $POD/rootfs/$name ]] || rootfs "$name"
    unshare -m -p -f --propagation private -- bash "$POD/launch.sh" "$POD/rootfs/$name" "$user" "$workdir" \
        "$VRA:/var/run/argo" "$POD/staging:/argo/staging" /dev/null:/dev/null "${binds[@]}" -- \
        ARGOEXEC_SH_MARK="$ARGOEXEC_SH_MARK" PATH=/usr/local/bin:/usr/bin:/bin HOME=/ \
        ARGO_CONTAINER_NAME="$name" ARGO_NODE_ID=pod-test ARGO_DEADLINE=0001-01-01T00:00:00Z \
        ARGO_INCLUDE_SCRIPT_OUTPUT=true "${envs[@]}" -- "$@" \
        >"$POD/logs/$name.out" 2>"$POD/logs/$name.err" &
    CTR_PID[$name]=$!
    track_pid "$!"
}

# ctr_wait NAME SECONDS: waits for the container to end; its exit status in CTR_RC.
ctr_wait() {
    bg_wait "${CTR_PID[$1]}" "$2"
    local r=$?
    CTR_RC=$BG_RC
    return $r
}

# ctr_pid1 NAME: the host pid of the container's PID 1 (the emissary).
ctr_pid1() { children "${CTR_PID[$1]}" | head -n 1; }

# stdout_has TEXT: main's captured stdout contains TEXT.
stdout_has() { grep -qF -- "$1" "$VRA/ctr/main/stdout" 2>/dev/null; }

# ctr_log NAME: what the container wrote to stderr (the emissary's log and the child's).
ctr_log() { cat "$POD/logs/$1.err"; }

# ---------------------------------------------------------------- the wait container

# wait_exitcode SECONDS NAME...: waits until every NAME has ctr/NAME/exitcode (existence only,
# as upstream's wait).
wait_exitcode() {
    local limit=$1 c
    shift
    for c in "$@"; do
        wait_until "$limit" test -e "$VRA/ctr/$c/exitcode" || {
            _not_ok "no ctr/$c/exitcode within $limit s"
            return 1
        }
    done
}

# wait_result: the script result as upstream captures it: ctr/main/stdout, its last 256 KiB,
# one trailing newline removed. Printed between brackets so no newline is lost.
wait_result() {
    local s
    s=$(tail -c 262144 "$VRA/ctr/main/stdout"; printf x)
    s=${s%x}
    printf '[%s]' "${s%$'\n'}"
}

# wait_param PATH: the output parameter saved for PATH.
wait_param() { cat "$VRA/outputs/parameters$1"; }

# wait_artifact PATH DEST: the .tgz saved for PATH (one trailing / removed), unpacked into DEST.
wait_artifact() {
    local tgz=$VRA/outputs/artifacts${1%/}.tgz
    mkdir -p "$2" && tar -xzf "$tgz" -C "$2"
}

# wait_kill SECONDS NAME: upstream's Kill: `15` into ctr/NAME/signal, wait SECONDS for its
# exitcode, then `9`, and wait 10 s more.
wait_kill() {
    printf 15 >"$VRA/ctr/$2/signal"
    wait_until "$1" test -e "$VRA/ctr/$2/exitcode" && return 0
    printf 9 >"$VRA/ctr/$2/signal"
    wait_until 10 test -e "$VRA/ctr/$2/exitcode"
}

# tree DIR: one line per entry: path, type, mode, size of files, link target, sorted.
tree() { (cd "$1" && find . -mindepth 1 -printf '%P %y %m %s %l\n' | awk '$2 != "f" { $4 = "-" } 1' | sort); }

# json_script_template: prints the script template (source in $SRC, sidecar script in $SIDECAR).
json_script_template() {
    SRC=$1 SIDECAR=$2 "$PY" -c '
import json, os
print(json.dumps({
    "name": "script-step", "inputs": {}, "metadata": {},
    "outputs": {
        "parameters": [{"name": "message", "valueFrom": {"path": "/tmp/message.txt"}}],
        "artifacts": [{"name": "report", "path": "/tmp/report/"}],
    },
    "script": {"name": "", "image": "busybox", "command": ["sh"], "resources": {}, "source": os.environ["SRC"]},
    "sidecars": [{"name": "helper", "image": "busybox", "command": ["sh", "-c", os.environ["SIDECAR"]]}],
    "archiveLocation": {"archiveLogs": True},
}))'
}

# ---------------------------------------------------------------- scenarios

# A script step: init stages binary, template and script; main (non-root) runs the script,
# which writes an output parameter and a directory artifact and prints its result; a sidecar
# that obeys SIGTERM is stopped once main is done; init re-run while main runs replaces the
# binary without disturbing it.
case_script_step() {
    pod_new
    local src sidecar tmpl t0 dt exp got
    src='set -e
echo "hello from $(id -u):$(id -g)" > /tmp/message.txt
mkdir -p /tmp/report/sub/empty
printf "a\n" > /tmp/report/a.txt
printf "deep" > /tmp/report/sub/b.txt
chmod 0640 /tmp/report/sub/b.txt
ln -s a.txt /tmp/report/link
echo "started"
while [ ! -e /var/run/argo/go ]; do sleep 0.05; done
echo "warning: to stderr" >&2
sleep 0.1
echo "result-42"'
    sidecar='echo sidecar up; while :; do sleep 0.05; done'
    tmpl=$(json_script_template "$src" "$sidecar")
    pod_init "$tmpl"
    assert_eq 0 "$INIT_RC" "init exit code ($(cat "$POD/logs/init.err"))" || return
    assert_mode "$VRA/argoexec" 0555 "argoexec copied by init"
    assert_same_bytes "$ARGOEXEC" "$VRA/argoexec" "the copy is the binary"
    assert_file_eq "$VRA/template" "$tmpl" "template"
    assert_mode "$VRA/template" 0444 "template"
    assert_file_eq "$POD/staging/script" "$src" "script source staged"
    assert_mode "$POD/staging/script" 0755 "script"
    assert_eq "argoexec template" "$(cd "$VRA" && echo *)" "init wrote only the binary and the template"
    assert_eq "argo bin proc var" "$(cd "$POD/rootfs/init" && echo *)" "init wrote nothing else in its root"

    ctr_start main "$MAIN_USER" -- -- "${EMISSARY[@]}" sh /argo/staging/script
    ctr_start helper 0:0 -- ARGO_TERMINATION_GRACE_PERIOD_SECONDS=5 -- "${EMISSARY[@]}" sh -c "$sidecar"
    assert_true "main started" wait_until 10 stdout_has started || return
    assert_true "sidecar started" wait_until 10 grep -q 'sidecar up' "$POD/logs/helper.out" || return
    local pid1
    pid1=$(ctr_pid1 main)
    assert_eq "4242 4242" "$(awk '/^Uid:/ { u = $2 } /^Gid:/ { g = $2 } END { print u, g }' "/proc/$pid1/status")" "main's PID 1 runs as 4242:4242"
    assert_contains "$(tr '\0' ' ' <"/proc/$pid1/cmdline")" "/var/run/argo/argoexec emissary" "main's PID 1 is the emissary"

    # init again while the copy runs (a restarted init, upstream #13222): atomic replace.
    local ino
    ino=$(stat -c %i "$VRA/argoexec")
    pod_init "$tmpl"
    assert_eq 0 "$INIT_RC" "second init while main runs the copy ($(cat "$POD/logs/init.err"))"
    assert_ne "$ino" "$(stat -c %i "$VRA/argoexec")" "binary replaced by rename, not rewritten"
    assert_eq "argoexec ctr template" "$(cd "$VRA" && echo *)" "no temporary file left by init"

    sleep 0.3
    assert_eq "" "$(cat "$VRA/ctr/helper/exitcode" 2>/dev/null)" "sidecar runs while main does"
    : >"$VRA/go"
    wait_exitcode 20 main || return
    t0=$(now_ms)
    assert_file_eq "$VRA/ctr/main/exitcode" 0 "main exitcode"
    ctr_wait main 10
    assert_eq 0 "$CTR_RC" "main container exit status"

    # What the wait container reads.
    assert_eq "[started"$'\n'"result-42]" "$(wait_result)" "script result"
    assert_eq "hello from 4242:4242" "$(wait_param /tmp/message.txt)" "output parameter"
    assert_file_eq "$VRA/ctr/main/combined" "started"$'\n'"warning: to stderr"$'\n'"result-42"$'\n' "main's log (combined)"
    wait_artifact /tmp/report/ "$POD/wait/report"
    exp=$POD/wait/expected
    mkdir -p "$exp/report/sub/empty"
    printf 'a\n' >"$exp/report/a.txt"
    printf deep >"$exp/report/sub/b.txt"
    chmod 0640 "$exp/report/sub/b.txt"
    # The command runs with the emissary's umask 0, as upstream's does.
    chmod 0777 "$exp/report" "$exp/report/sub" "$exp/report/sub/empty"
    chmod 0666 "$exp/report/a.txt"
    ln -s a.txt "$exp/report/link"
    assert_eq "$(tree "$exp")" "$(tree "$POD/wait/report")" "artifact tree (types, modes, sizes, links)"
    got=$(diff -r --no-dereference "$exp" "$POD/wait/report" 2>&1)
    assert_eq "" "$got" "artifact contents"
    assert_eq "4242/4242" "$(tar --numeric-owner -tvzf "$VRA/outputs/artifacts/tmp/report.tgz" | awk '{ print $2 }' | sort -u)" "artifact entries owned by main's user"
    assert_eq "report" "$(tar -tzf "$VRA/outputs/artifacts/tmp/report.tgz" | head -n 1)" "artifact's top entry"

    # The sidecar (SIGTERM obeyed) ends on its own once main is done.
    ctr_wait helper 10
    dt=$(($(now_ms) - t0))
    assert_eq 143 "$CTR_RC" "sidecar exit status"
    assert_file_eq "$VRA/ctr/helper/exitcode" 143 "sidecar exitcode"
    assert_le "$dt" 2000 "ms from main's exitcode to the sidecar's end"
    assert_contains "$(ctr_log helper)" "main container(s) exited" "sidecar's log"
    assert_contains "$(ctr_log helper)" "not saving outputs" "only main saves outputs"
}

# A sidecar that ignores SIGTERM: killed after a 2 s grace once main has ended.
case_sidecar_ignores_sigterm() {
    pod_new
    local tmpl t0 dt
    tmpl='{"name":"with-sidecar","container":{"name":"","image":"busybox","command":["sh"]},"sidecars":[{"name":"stubborn","image":"busybox"}]}'
    pod_init "$tmpl"
    assert_eq 0 "$INIT_RC" "init" || return
    ctr_start stubborn 0:0 -- ARGO_TERMINATION_GRACE_PERIOD_SECONDS=2 -- \
        "${EMISSARY[@]}" sh -c "trap '' TERM; echo up; while :; do sleep 0.05; done"
    assert_true "sidecar started" wait_until 10 grep -q up "$POD/logs/stubborn.out" || return
    ctr_start main "$MAIN_USER" -- ARGO_TERMINATION_GRACE_PERIOD_SECONDS=2 -- "${EMISSARY[@]}" sh -c 'sleep 0.3; exit 3'
    wait_exitcode 10 main || return
    t0=$(now_ms)
    ctr_wait main 10
    assert_eq 3 "$CTR_RC" "main exit status"
    ctr_wait stubborn 15
    dt=$(($(now_ms) - t0))
    assert_eq 137 "$CTR_RC" "sidecar killed"
    assert_file_eq "$VRA/ctr/stubborn/exitcode" 137 "sidecar exitcode"
    assert_le 1800 "$dt" "ms before the SIGKILL (grace 2 s)"
    assert_le "$dt" 6000 "ms before the SIGKILL (grace 2 s)"
    assert_contains "$(ctr_log stubborn)" "grace period over" "sidecar's log"
}

# A containerSet of three started at once: b depends on a, main on b; b fails its first
# attempt and is retried (retries "2", 200ms). A shared volume records the order.
case_container_set() {
    pod_new
    local tmpl vol t0
    tmpl='{"name":"cs","inputs":{},"outputs":{"parameters":[{"name":"log","valueFrom":{"path":"/tmp/log"}}]},"metadata":{},"containerSet":{"containers":[{"name":"a","image":"busybox"},{"name":"b","image":"busybox","dependencies":["a"]},{"name":"main","image":"busybox","dependencies":["b"]}],"volumeMounts":[{"name":"workspace","mountPath":"/workspace"}],"retryStrategy":{"retries":"2","duration":"200ms"}},"volumes":[{"name":"workspace","emptyDir":{}}]}'
    vol=$POD/workspace
    mkdir -p "$vol" && chmod 0777 "$vol"
    pod_init "$tmpl"
    assert_eq 0 "$INIT_RC" "init" || return
    for c in a b main; do
        rootfs "$c"
        mkdir -p "$ROOTFS/workspace"
    done
    ctr_start main "$MAIN_USER" "$vol:/workspace" -- -- "${EMISSARY[@]}" \
        sh -c 'echo main >> /workspace/log; cp /workspace/log /tmp/log'
    ctr_start b "$MAIN_USER" "$vol:/workspace" -- -- "${EMISSARY[@]}" \
        sh -c 'if [ -e /workspace/b-tried ]; then echo b-ok >> /workspace/log; else touch /workspace/b-tried; echo b-fail; exit 1; fi'
    sleep 0.5
    assert_true "b and main wait for a" test ! -e "$VRA/ctr/b/exitcode" -a ! -e "$VRA/ctr/main/exitcode"
    assert_true "nothing ran before a" test ! -e "$vol/log"
    t0=$(now_ms)
    ctr_start a "$MAIN_USER" "$vol:/workspace" -- -- "${EMISSARY[@]}" sh -c 'echo a >> /workspace/log'
    wait_exitcode 20 a b main || return
    assert_le $(($(now_ms) - t0)) 8000 "ms for the whole set after a started"
    for c in a b main; do
        ctr_wait "$c" 10
        assert_eq 0 "$CTR_RC" "$c exit status"
        assert_file_eq "$VRA/ctr/$c/exitcode" 0 "$c exitcode"
    done
    assert_file_eq "$vol/log" "a"$'\n'"b-ok"$'\n'"main"$'\n' "order of the set"
    assert_eq "a"$'\n'"b-ok"$'\n'"main" "$(wait_param /tmp/log)" "main's output parameter"
    assert_eq 2 "$(ctr_log b | grep -c 'capturing logs')" "b ran twice"
    assert_file_eq "$VRA/ctr/b/stdout" "b-fail"$'\n' "b's captured stdout across attempts"
    assert_eq 1 "$(ctr_log a | grep -c 'capturing logs')" "a ran once"
    assert_contains "$(ctr_log main)" "dependency=b" "main waited for b"
}

# A dependency that fails: the dependant stops with 64 naming it.
case_container_set_dependency_fails() {
    pod_new
    local tmpl
    tmpl='{"name":"cs","containerSet":{"containers":[{"name":"a"},{"name":"main","dependencies":["a"]}]}}'
    pod_init "$tmpl"
    assert_eq 0 "$INIT_RC" "init" || return
    ctr_start main "$MAIN_USER" -- -- "${EMISSARY[@]}" sh -c 'echo should-not-run'
    ctr_start a 0:0 -- -- "${EMISSARY[@]}" sh -c 'exit 4'
    wait_exitcode 10 a main || return
    ctr_wait main 10
    assert_eq 64 "$CTR_RC" "main exit status"
    assert_file_eq "$VRA/ctr/main/exitcode" 64 "main exitcode"
    assert_contains "$(ctr_log main)" 'dependency "a" exited with non-zero code: 4' "main's log"
    assert_contains "$(cat "$POD/rootfs/main/dev/termination-log")" '"a"' "termination message"
    assert_true "main never ran its command" test ! -s "$VRA/ctr/main/stdout"
}

# The controller stops a running step: `argoexec kill 15 1` run inside main's namespaces.
case_stopped_from_outside() {
    pod_new
    local pid1 out rc t0
    pod_init '{"name":"stop-me"}'
    assert_eq 0 "$INIT_RC" "init" || return
    ctr_start main "$MAIN_USER" -- -- "${EMISSARY[@]}" sh -c 'echo started; while :; do sleep 0.05; done'
    assert_true "main started" wait_until 10 stdout_has started || return
    pid1=$(ctr_pid1 main)
    t0=$(now_ms)
    out=$(timeout -s KILL 10 nsenter -t "$pid1" -m -p -r -w -S 4242 -G 4242 /var/run/argo/argoexec kill 15 1 2>&1)
    rc=$?
    assert_eq 0 "$rc" "kill exit status ($out)"
    assert_contains "$out" "killing 1 with SIGTERM" "kill output"
    wait_exitcode 10 main || return
    ctr_wait main 10
    assert_le $(($(now_ms) - t0)) 2000 "ms from kill to the container's end"
    assert_eq 143 "$CTR_RC" "main exit status"
    assert_file_eq "$VRA/ctr/main/exitcode" 143 "main exitcode"
}

# The wait container stops a step past its deadline through the signal file: 15, then 9
# after the grace when the command ignores SIGTERM.
case_deadline_through_signal_files() {
    pod_new
    pod_init '{"name":"deadline"}'
    assert_eq 0 "$INIT_RC" "init" || return
    ctr_start main "$MAIN_USER" -- -- "${EMISSARY[@]}" sh -c "trap '' TERM; echo started; while :; do sleep 0.05; done"
    assert_true "main started" wait_until 10 stdout_has started || return
    local t0
    t0=$(now_ms)
    wait_kill 1 main
    ctr_wait main 10
    assert_eq 137 "$CTR_RC" "main exit status"
    assert_file_eq "$VRA/ctr/main/exitcode" 137 "main exitcode"
    assert_le $(($(now_ms) - t0)) 4000 "ms to stop it"
    assert_true "signal files consumed" test ! -e "$VRA/ctr/main/signal"
}

# A step whose command does not exist: 64 and the reason in its log and termination message.
case_command_not_found() {
    pod_new
    pod_init '{"name":"missing-cmd"}'
    assert_eq 0 "$INIT_RC" "init" || return
    ctr_start main "$MAIN_USER" -- -- "${EMISSARY[@]}" no-such-tool --flag
    wait_exitcode 10 main || return
    ctr_wait main 10
    assert_eq 64 "$CTR_RC" "main exit status"
    assert_file_eq "$VRA/ctr/main/exitcode" 64 "main exitcode"
    assert_contains "$(ctr_log main)" "no-such-tool" "main's log names the command"
    assert_contains "$(ctr_log main)" "executable file not found" "main's log says why"
    assert_contains "$(cat "$POD/rootfs/main/dev/termination-log")" "no-such-tool" "termination message"
}

# The offloaded template: ARGO_TEMPLATE=offloaded reads /argo/config/ARGO_TEMPLATE.
case_init_offloaded_template() {
    pod_new
    local r=$POD/rootfs/init tmpl='{"name":"big","script":{"command":["sh"],"source":"echo offloaded"}}'
    mkdir -p "$r/argo/config"
    printf '%s' "$tmpl" >"$r/argo/config/ARGO_TEMPLATE"
    pod_init offloaded
    assert_eq 0 "$INIT_RC" "init ($(cat "$POD/logs/init.err"))"
    assert_file_eq "$VRA/template" "$tmpl" "template from the ConfigMap file"
    assert_file_eq "$POD/staging/script" "echo offloaded" "script from it"
    ctr_start main "$MAIN_USER" -- -- "${EMISSARY[@]}" sh /argo/staging/script
    wait_exitcode 10 main || return
    assert_eq "[offloaded]" "$(wait_result)" "result"
}

# init from a root holding nothing but the binary and its volumes' mount points: no /proc
# (a scratch image run without one, as under plain chroot). Upstream's init copies the
# `argoexec` it finds on PATH; ours must find itself without /proc/self/exe too.
case_init_without_proc() {
    pod_new
    local tmpl='{"name":"s","script":{"command":["sh"],"source":"echo hi"}}'
    INIT_PROC=0 pod_init "$tmpl"
    assert_eq 0 "$INIT_RC" "init exit status ($(cat "$POD/logs/init.err"))"
    assert_same_bytes "$ARGOEXEC" "$VRA/argoexec" "binary copied"
    assert_file_eq "$VRA/template" "$tmpl" "template"
    assert_file_eq "$POD/staging/script" "echo hi" "script"
}

# ---------------------------------------------------------------- init-less pods

# An init-less pod (upstream v4.1): the binary on a read-only image volume at /argo-bin, a
# supervisor that writes the template and the status and downloads input artifacts into
# /argo/inputs/artifacts; main links each into place, replacing what is there.
case_initless_staging() {
    pod_new
    local inputs=$POD/inputs bin=$POD/argo-bin tmpl
    mkdir -p "$inputs/data" "$inputs/cwd" "$bin/bin"
    cp "$ARGOEXEC" "$bin/bin/argoexec"
    printf 'conf\n' >"$inputs/conf"
    printf 'new data' >"$inputs/data/file"
    printf 'single' >"$inputs/single"
    printf 'in cwd' >"$inputs/cwd/inside"
    rootfs main
    mkdir -p "$ROOTFS/argo-bin" "$ROOTFS/argo/inputs/artifacts" "$ROOTFS/work/data/old" "$ROOTFS/work/cwd"
    printf old >"$ROOTFS/work/data/old/x"
    printf old >"$ROOTFS/work/old.txt"
    printf 'old cwd' >"$ROOTFS/work/cwd/before"
    tmpl='{"name":"initless","inputs":{"artifacts":[{"name":"conf","path":"/etc/app/conf.txt"},{"name":"data","path":"/work/data"},{"name":"single","path":"/work/old.txt"},{"name":"cwd","path":"/work/cwd"},{"name":"absent","path":"/work/absent"}]},"container":{"command":["sh"]}}'
    # The supervisor: heartbeat, then the template, then READY.
    printf 'RUNNING\n' >"$VRA/status"
    ctr_start main 0:0 -w /work/cwd "$bin:/argo-bin:ro" "$inputs:/argo/inputs/artifacts" -- ARGO_WAIT_FOR_READY=true -- \
        /argo-bin/bin/argoexec emissary -- sh -c 'set -e
            echo "cwd=$(pwd) $(ls)"
            for p in /etc/app/conf.txt /work/data /work/old.txt /work/cwd; do echo "$p -> $(readlink $p)"; done
            cat /etc/app/conf.txt /work/data/file; echo; cat /work/old.txt; echo
            ls -ld /etc/app | cut -c1-10
            test ! -e /work/absent && echo absent-skipped'
    sleep 0.3
    assert_eq "" "$(cat "$VRA/ctr/main/stdout" 2>/dev/null)" "main waits for READY"
    printf '%s' "$tmpl" >"$VRA/template"
    printf 'READY\n' >"$VRA/status"
    wait_exitcode 10 main || return
    ctr_wait main 10
    assert_eq 0 "$CTR_RC" "main exit status ($(ctr_log main | tail -n 3))"
    assert_file_eq "$VRA/ctr/main/stdout" "cwd=/work/cwd inside
/etc/app/conf.txt -> /argo/inputs/artifacts/conf
/work/data -> /argo/inputs/artifacts/data
/work/old.txt -> /argo/inputs/artifacts/single
/work/cwd -> /argo/inputs/artifacts/cwd
conf
new data
single
drwxr-xr-x
absent-skipped
" "what main sees"
    assert_file_eq "$inputs/data/file" "new data" "artifacts untouched"
}

# Input artifacts whose path resolves into a volume mount are refused: 65, "volume mount",
# the volume untouched. Each variant is its own pod.
initless_refused() {
    local artpath=$1 mountpath=$2 setup=$3 vol=$POD/vol inputs=$POD/inputs tmpl
    mkdir -p "$vol/keep" "$inputs" "$POD/argo-bin/bin"
    printf precious >"$vol/in.txt"
    printf precious >"$vol/keep/x"
    printf intruder >"$inputs/art"
    cp "$ARGOEXEC" "$POD/argo-bin/bin/argoexec"
    rootfs main
    mkdir -p "$ROOTFS/argo-bin" "$ROOTFS/argo/inputs/artifacts" "$ROOTFS$mountpath"
    eval "$setup"
    tmpl='{"name":"refuse","inputs":{"artifacts":[{"name":"art","path":"'$artpath'"}]},"container":{"command":["sh"],"volumeMounts":[{"name":"v","mountPath":"'$mountpath'"}]}}'
    printf '%s' "$tmpl" >"$VRA/template"
    printf 'READY\n' >"$VRA/status"
    ctr_start main 0:0 "$POD/argo-bin:/argo-bin:ro" "$inputs:/argo/inputs/artifacts" "$vol:$mountpath" -- ARGO_WAIT_FOR_READY=true -- \
        /argo-bin/bin/argoexec emissary -- sh -c 'echo ran'
    wait_exitcode 10 main || return
    ctr_wait main 10
    assert_eq 65 "$CTR_RC" "$artpath: exit status"
    assert_file_eq "$VRA/ctr/main/exitcode" 65 "$artpath: exitcode"
    assert_contains "$(ctr_log main)" "volume mount" "$artpath: reason"
    assert_eq "" "$(cat "$VRA/ctr/main/stdout" 2>/dev/null)" "$artpath: command never ran"
    assert_eq "in.txt keep" "$(cd "$vol" && echo *)" "$artpath: volume entries"
    assert_file_eq "$vol/in.txt" precious "$artpath: volume file"
    assert_file_eq "$vol/keep/x" precious "$artpath: volume folder"
}
case_initless_refuses_existing_file_in_volume() {
    pod_new
    initless_refused /data/in.txt /data ''
}
case_initless_refuses_through_a_symlink() {
    pod_new
    initless_refused /link/in.txt /data 'ln -s /data "$ROOTFS/link"'
}
case_initless_refuses_a_path_containing_the_volume() {
    pod_new
    initless_refused /srv /srv/vol ''
}
case_initless_refuses_a_new_file_in_volume() {
    pod_new
    initless_refused /data/new.txt /data ''
}

run_case "pod: script step: init (scratch root), main as 4242 in its namespaces, parameter, dir artifact, result, sidecar stopped, init re-run" case_script_step
run_case "pod: sidecar ignoring SIGTERM is killed after the 2 s grace" case_sidecar_ignores_sigterm
run_case "pod: containerSet a -> b -> main started at once, b retried" case_container_set
run_case "pod: containerSet dependency exits 4: main 64 naming it" case_container_set_dependency_fails
run_case "pod: stopped from outside with 'argoexec kill 15 1' via nsenter: 143" case_stopped_from_outside
run_case "pod: deadline: wait writes 15 then 9 to the signal file: 137" case_deadline_through_signal_files
run_case "pod: command not found: 64, reason in the log and termination message" case_command_not_found
run_case "pod: init with ARGO_TEMPLATE=offloaded reads /argo/config/ARGO_TEMPLATE" case_init_offloaded_template
run_case "pod: init in a root with only the binary, no /proc" case_init_without_proc
run_case "pod: init-less: inputs linked into place, file/dir replaced, cwd re-entered" case_initless_staging
run_case "pod: init-less: refuses replacing a file in a volume mount (65)" case_initless_refuses_existing_file_in_volume
run_case "pod: init-less: refuses a path that resolves into a volume through a symlink (65)" case_initless_refuses_through_a_symlink
run_case "pod: init-less: refuses a path that contains a volume mount (65)" case_initless_refuses_a_path_containing_the_volume
run_case "pod: init-less: refuses creating a new file in a volume mount (65)" case_initless_refuses_a_new_file_in_volume
finish
