#!/usr/bin/env bash
# Plays Argo workflow pods with real containers: podman (Debian's), our image and a user image.
#
#   - our image: Containerfile, FROM scratch, nothing but the static binary at /bin/argoexec;
#   - a user image FROM scratch with Debian's static busybox as /bin/busybox and its applets;
#   - per scenario a pod (`podman pod create`, no network) with two volumes, var-run-argo at
#     /var/run/argo (the emptyDir, made 0777 as the kubelet makes it) and argo-staging at
#     /argo/staging; an init container from our image runs `argoexec init` with ARGO_TEMPLATE;
#     main (busybox image, user 1000:1000, read-only root, /tmp a tmpfs) runs
#     `/var/run/argo/argoexec emissary -- CMD` as its PID 1; sidecars likewise, as root;
#   - the wait container's part is played from the host, through the volume's mount point
#     (`podman volume inspect`): exitcode, stdout, outputs/;
#   - the executor image over upstream's (scripts/Containerfile.over-upstream, both targets: root
#     and -nonroot) built over a stand-in for upstream's image: busybox, and as /bin/argoexec a
#     shell script that records its argv (in the log and in ROOT/upstream-calls), answers
#     `version --short` as upstream's (v4.1.2), and plays the
#     parts of upstream's init (copies the `argoexec` on its PATH into the shared folder, writes
#     the template) and of the init-less supervisor (template, an input artifact, READY);
#   - an init-less pod (SPEC section 7): that image mounted at /argo-bin in main
#     (`--mount type=image`), main running /argo-bin/bin/argoexec emissary with
#     ARGO_WAIT_FOR_READY=true, the supervisor from the executor image;
#   - a plugin pod (SPEC section 1): plugin init and plugin sidecar in the plugin's image (busybox)
#     running /var/run/argo/argoexec artifact-plugin-init|artifact-plugin-sidecar;
#   - the arm64 image (the aarch64 build, `--platform linux/arm64`) and one manifest list for
#     both architectures, the arm64 binary run in its container under qemu-user (see
#     case_multiarch for how).
#
# The image's binary is the shipped build (scripts/build.sh --shipped, the product) when this
# machine can make it, else the stable build (scripts/build.sh); ARGOEXEC_IMAGE_BUILD=stable or
# =shipped forces one (and a shipped build that fails is then a failure).
#
# Everything podman keeps goes to a private temporary folder (its own containers.conf, storage,
# state and locks), so a run neither sees nor disturbs other users of podman on the machine;
# every pod, container, volume and image is removed by name at the end, then that folder.
# When podman itself cannot run a container here, every case is skipped with podman's reason.
#
# Usage: scripts/container-test.sh   (last line `N passed, N failed`; CT_CASES=REGEX: only the
# cases whose function name matches)
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../tests/sh/lib.sh"

EMISSARY=(/var/run/argo/argoexec emissary --loglevel info --log-format text --gloglevel 0 --)
MAIN_USER=1000:1000
CT_NAME=argoexec-ctest-$$ # prefix of every name this run gives podman
IMAGE=localhost/$CT_NAME-argoexec:test
BUSYBOX_IMAGE=localhost/$CT_NAME-busybox:test
UPSTREAM_IMAGE=localhost/$CT_NAME-upstream:test # a stand-in for upstream's executor image
OVER_IMAGE=localhost/$CT_NAME-over-upstream:test
OVER_NONROOT_IMAGE=localhost/$CT_NAME-over-upstream:test-nonroot
IMAGE_ARM64=localhost/$CT_NAME-argoexec:test-arm64
UPSTREAM_ARM64_IMAGE=localhost/$CT_NAME-upstream:test-arm64
OVER_ARM64_IMAGE=localhost/$CT_NAME-over-upstream:test-arm64
MANIFEST=localhost/$CT_NAME-argoexec:test-multiarch
OVER_MANIFEST=localhost/$CT_NAME-over-upstream:test-multiarch
ARM64_TRIPLE=aarch64-unknown-linux-musl
CT_PODS=()
CT_STATE=
PODMAN_SKIP=

# ---------------------------------------------------------------- podman, privately

# podman_setup: CT_STATE, a folder holding podman's configuration, storage and state.
podman_setup() {
    CT_STATE=$(mktemp -d "${TMPDIR:-/tmp}/$CT_NAME.XXXXXX") || return 1
    mkdir -p "$CT_STATE/conf"
    cat >"$CT_STATE/conf/containers.conf" <<EOF
# Written by scripts/container-test.sh for one run; removed with it.
[containers]
# The sandbox this runs in lacks CAP_SYS_RESOURCE, and its hard limits are 20000: the runtime
# cannot set podman's default rlimits (nofile 1048576, nproc), "error setting rlimit type 7:
# operation not permitted". Ask for what we are allowed.
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
# runc: crun refuses this machine's cgroup layout (v1 controllers, a tmpfs at /sys/fs/cgroup).
runtime = "runc"
# No systemd runs here: the systemd cgroup manager fails ("systemd not running on this host").
cgroup_manager = "cgroupfs"
# No journald either: the journald events logger fails on every event ("sendmsg: no such file").
events_logger = "file"
# Podman's runtime state (exit files, events, locks) kept here, not in the machine's /run and
# /dev/shm, so that concurrent runs (other work trees, CI) never share a lock or a database.
tmp_dir = "$CT_STATE/libpod"
lock_type = "file"
EOF
    cat >"$CT_STATE/conf/storage.conf" <<EOF
# Written by scripts/container-test.sh for one run; removed with it.
[storage]
# vfs: layers are plain copies, nothing is mounted, whatever the file system under TMPDIR;
# our two images hold about 3 MB, so its cost is nil.
driver = "vfs"
graphroot = "$CT_STATE/storage"
runroot = "$CT_STATE/run"
EOF
    export CONTAINERS_CONF=$CT_STATE/conf/containers.conf
    export CONTAINERS_STORAGE_CONF=$CT_STATE/conf/storage.conf
}

# pm ARGS...: podman, bounded in time so that a hang is a failure, not a stuck test.
pm() { timeout -s KILL "${PM_TIMEOUT:-60}" podman "$@"; }

# cleanup_all: every pod, container, volume and image of this run, by name, then the folder.
cleanup_all() {
    [[ -n $CT_STATE && -d $CT_STATE ]] || return 0
    local p pause m
    {
        for p in "${CT_PODS[@]}"; do
            pm pod rm -f -t 0 "$p"
            pm volume rm -f "$p-var-run-argo" "$p-staging" "$p-inputs"
        done
        pm rm -f -t 0 "$CT_NAME-image-probe"
        pm manifest rm "$MANIFEST" "$OVER_MANIFEST"
        pause=$(pm images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/podman-pause:')
        pm rmi -f "$OVER_ARM64_IMAGE" "$UPSTREAM_ARM64_IMAGE" "$IMAGE_ARM64" \
            "$OVER_NONROOT_IMAGE" "$OVER_IMAGE" "$UPSTREAM_IMAGE" "$IMAGE" "$BUSYBOX_IMAGE" $pause
    } >/dev/null 2>&1
    # Nothing should be mounted below it any more; if something is, do not delete through it.
    while read -r _ m _; do
        [[ $m == "$CT_STATE"/* ]] && umount -l "$m" 2>/dev/null
    done </proc/mounts
    rm -rf --one-file-system "$CT_STATE"
}

# image_binary: builds the image's binary (see the header); BIN is its path, BIN_BUILD which.
image_binary() {
    local out want=${ARGOEXEC_IMAGE_BUILD:-auto}
    if [[ $want != stable ]]; then
        if out=$(cd "$REPO_ROOT" && scripts/build.sh --shipped 2>"$CT_STATE/build.log" | tail -n 1) && [[ -n $out ]]; then
            BIN=${out% *} BIN_BUILD=shipped
            return 0
        fi
        if [[ $want == shipped ]]; then
            tail -n 20 "$CT_STATE/build.log" >&2
            return 1
        fi
        echo "# the shipped build is not possible here (see scripts/build.sh --shipped); using the stable build" >&2
    fi
    out=$(cd "$REPO_ROOT" && scripts/build.sh 2>"$CT_STATE/build.log" | tail -n 1) && [[ -n $out ]] || {
        tail -n 20 "$CT_STATE/build.log" >&2
        return 1
    }
    BIN=${out% *} BIN_BUILD=stable
}

# build_images: ours from the Containerfile (the repository as context, the binary by build
# arg, labels from `argoexec version`), and the busybox one from a temporary context.
build_images() {
    local rel ctx a
    VERSION_LINE=$("$BIN" version) || return 1
    # argoexec VERSION TARGET [commit COMMIT]
    read -r _ V_VERSION V_TARGET _ V_COMMIT <<<"$VERSION_LINE"
    rel=${BIN#"$REPO_ROOT"/}
    pm build -q --pull=never -t "$IMAGE" -f "$REPO_ROOT/Containerfile" \
        --build-arg BINARY="$rel" --build-arg VERSION="$V_VERSION" \
        --build-arg TARGET="$V_TARGET" --build-arg REVISION="${V_COMMIT:-unknown}" \
        "$REPO_ROOT" >"$CT_STATE/image.log" 2>&1 || {
        cat "$CT_STATE/image.log" >&2
        return 1
    }
    ctx=$CT_STATE/busybox-ctx
    mkdir -p "$ctx/bin"
    cp /bin/busybox "$ctx/bin/busybox"
    for a in $(/bin/busybox --list); do
        [[ $a == busybox ]] || ln -s busybox "$ctx/bin/$a"
    done
    printf 'FROM scratch\nCOPY bin/ /bin/\n' >"$ctx/Containerfile"
    pm build -q --pull=never -t "$BUSYBOX_IMAGE" -f "$ctx/Containerfile" "$ctx" >"$CT_STATE/busybox.log" 2>&1 || {
        cat "$CT_STATE/busybox.log" >&2
        return 1
    }
}

# build_upstream_images: the stand-in for upstream's executor image (see the header) and the
# executor image over it from scripts/Containerfile.over-upstream, both targets.
build_upstream_images() {
    local ctx=$CT_STATE/upstream-ctx t
    cp -a "$CT_STATE/busybox-ctx" "$ctx" || return 1
    cat >"$ctx/bin/argoexec" <<'EOF_STANDIN'
#!/bin/sh
# Stand-in for upstream's argoexec (scripts/container-test.sh): says and records its argv, and
# plays the parts of upstream's init and init-less supervisor that the pods of the test need.
if [ "$1 $2" = "version --short" ]; then
    echo "argoexec: v4.1.2" # as upstream's
    exit 0
fi
echo "upstream argoexec: $*"
R=/var/run/argo
if [ -d "$R" ] && [ -w "$R" ]; then
    echo "${ARGO_CONTAINER_NAME:-?}: $*" >>"$R/upstream-calls"
fi
case $1 in
init)
    # Upstream's init: the argoexec on its PATH (ours) into the shared folder, the template.
    [ -d "$R" ] || exit 0
    cp "$(command -v argoexec)" "$R/.argoexec.tmp" && chmod 0555 "$R/.argoexec.tmp" &&
        mv "$R/.argoexec.tmp" "$R/argoexec" || exit 1
    printf '%s' "$ARGO_TEMPLATE" >"$R/template" || exit 1
    ;;
supervisor)
    # Upstream's init-less supervisor: template, an input artifact, READY, then main's end.
    printf '%s' "$ARGO_TEMPLATE" >"$R/template" || exit 1
    echo RUNNING >"$R/status"
    printf 'input bytes\n' >/argo/inputs/artifacts/in-art || exit 1
    echo READY >"$R/status.tmp" && mv "$R/status.tmp" "$R/status" || exit 1
    n=0
    while [ ! -e "$R/ctr/main/exitcode" ]; do
        n=$((n + 1))
        [ "$n" -lt 600 ] || exit 1
        sleep 0.05
    done
    ;;
esac
exit 0
EOF_STANDIN
    chmod 0755 "$ctx/bin/argoexec"
    printf 'FROM scratch\nCOPY bin/ /bin/\nENTRYPOINT ["argoexec"]\n' >"$ctx/Containerfile"
    pm build -q --pull=never -t "$UPSTREAM_IMAGE" -f "$ctx/Containerfile" "$ctx" >"$CT_STATE/upstream.log" 2>&1 || {
        cat "$CT_STATE/upstream.log" >&2
        return 1
    }
    for t in argoexec:"$OVER_IMAGE" argoexec-nonroot:"$OVER_NONROOT_IMAGE"; do
        pm build -q --pull=never --target "${t%%:*}" -t "${t#*:}" \
            -f "$REPO_ROOT/scripts/Containerfile.over-upstream" \
            --build-arg UPSTREAM="$UPSTREAM_IMAGE" --build-arg ARGOEXEC="$IMAGE" "$ctx" >"$CT_STATE/over.log" 2>&1 || {
            cat "$CT_STATE/over.log" >&2
            return 1
        }
    done
}

# arm64_images: the arm64 binary (the same build as BIN, for aarch64) in our image, and the
# executor image over a stand-in upstream image, each built for linux/arm64 (COPY only: no
# emulation needed to build). ARM64_VERSION_LINE is what the binary says. --no-cache: podman
# 4.3's layer cache ignores --platform, and would hand back the amd64 image built from the same
# context (the stand-in) under the arm64 tag.
arm64_images() {
    local out build=() rel
    [[ $BIN_BUILD == shipped ]] && build=(--shipped)
    out=$(cd "$REPO_ROOT" && scripts/build.sh "${build[@]}" --target "$ARM64_TRIPLE" 2>"$CT_STATE/build-arm64.log" | tail -n 1) && [[ -n $out ]] || {
        tail -n 20 "$CT_STATE/build-arm64.log" >&2
        return 1
    }
    ARM64_BIN=${out% *}
    ARM64_VERSION_LINE=$("$QEMU" "$ARM64_BIN" version) || return 1
    pm image exists "$OVER_ARM64_IMAGE" && return 0
    rel=${ARM64_BIN#"$REPO_ROOT"/}
    pm build -q --no-cache --pull=never --platform linux/arm64 -t "$IMAGE_ARM64" -f "$REPO_ROOT/Containerfile" \
        --build-arg BINARY="$rel" --build-arg VERSION="$V_VERSION" \
        --build-arg TARGET="$ARM64_TRIPLE" --build-arg REVISION="${V_COMMIT:-unknown}" \
        "$REPO_ROOT" >"$CT_STATE/image-arm64.log" 2>&1 &&
        pm build -q --no-cache --pull=never --platform linux/arm64 -t "$UPSTREAM_ARM64_IMAGE" \
            -f "$CT_STATE/upstream-ctx/Containerfile" "$CT_STATE/upstream-ctx" >>"$CT_STATE/image-arm64.log" 2>&1 &&
        pm build -q --no-cache --pull=never --platform linux/arm64 --target argoexec -t "$OVER_ARM64_IMAGE" \
            -f "$REPO_ROOT/scripts/Containerfile.over-upstream" --build-arg UPSTREAM="$UPSTREAM_ARM64_IMAGE" \
            --build-arg ARGOEXEC="$IMAGE_ARM64" "$CT_STATE/upstream-ctx" >>"$CT_STATE/image-arm64.log" 2>&1 || {
        cat "$CT_STATE/image-arm64.log" >&2
        return 1
    }
}

# split_opts WORDS... -- MORE...: the words before the first `--` into the caller's array
# `opts`, those after it into `rest` (the caller declares both local: bash's dynamic scope).
split_opts() {
    opts=()
    while [[ $1 != -- ]]; do
        opts+=("$1")
        shift
    done
    shift
    rest=("$@")
}

# arm64_run [podman run options...] -- IMAGE BINARY ARGS...: BINARY of the arm64 IMAGE, run in
# its own container (--platform linux/arm64). Where binfmt_misc hands aarch64 binaries to qemu
# (podman's usual way), podman runs it like any image. Where it does not (here binfmt_misc is
# not even mounted, and registering an interpreter would change the kernel's state for the whole
# machine, not just this test), the static qemu-aarch64 is bind-mounted into the container and
# made its entrypoint, so that the image's own arm64 binary still runs inside its container;
# the commands it starts run natively (x86_64 busybox).
arm64_run() {
    local opts rest img bin
    split_opts "$@"
    set -- "${rest[@]}"
    img=$1 bin=$2
    shift 2
    if [[ $(head -n 1 /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null) == enabled ]]; then
        pm run --rm --pull=never --network none --platform linux/arm64 "${opts[@]}" --entrypoint "$bin" "$img" "$@"
    else
        pm run --rm --pull=never --network none --platform linux/arm64 "${opts[@]}" \
            -v "$QEMU:/qemu-aarch64:ro" --entrypoint /qemu-aarch64 "$img" "$bin" "$@"
    fi
}

# probe: can podman run a container at all here? Sets PODMAN_SKIP to the reason when not.
probe() {
    local out
    if ! out=$(pm run --rm --pull=never --network none --name "$CT_NAME-image-probe" "$BUSYBOX_IMAGE" true 2>&1); then
        PODMAN_SKIP="podman cannot run a container on this machine: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
    fi
}

need_podman() { [[ -z $PODMAN_SKIP ]] || skip "$PODMAN_SKIP"; }

# ---------------------------------------------------------------- the pod

# pod_new NAME: pod P (NAME prefixed) with its two volumes; VRA is var-run-argo's folder on the
# host, TLOG_DIR a folder for termination logs.
pod_new() {
    need_podman
    P=$CT_NAME-$1
    CT_PODS+=("$P")
    pm pod create --name "$P" --network none >/dev/null || return 1
    pm volume create "$P-var-run-argo" >/dev/null && pm volume create "$P-staging" >/dev/null || return 1
    VRA=$(pm volume inspect -f '{{.Mountpoint}}' "$P-var-run-argo") || return 1
    STAGING=$(pm volume inspect -f '{{.Mountpoint}}' "$P-staging") || return 1
    chmod 0777 "$VRA" "$STAGING" # emptyDir
    new_tmpdir TLOG_DIR
    trap '_pod_cleanup; _case_cleanup' EXIT
}
_pod_cleanup() {
    pm pod rm -f -t 0 "$P" >/dev/null 2>&1
    pm volume rm -f "$P-var-run-argo" "$P-staging" "$P-inputs" >/dev/null 2>&1
}

# pod_init TEMPLATE: the init container from our image; status in INIT_RC, log in INIT_LOG.
pod_init() {
    INIT_LOG=$(pm run --pull=never --pod "$P" --name "$P-init" \
        -v "$P-var-run-argo:/var/run/argo" -v "$P-staging:/argo/staging" \
        -e ARGO_CONTAINER_NAME=init -e ARGO_POD_NAME="$P" -e ARGO_TEMPLATE="$1" \
        "$IMAGE" init --loglevel info --log-format text --gloglevel 0 2>&1)
    INIT_RC=$?
}

# ctr_start NAME [podman run options...] -- CMD...: container NAME of the pod in the background
# (busybox image), the volumes mounted, the controller's environment, a termination log.
ctr_start() {
    local name=$1 opts rest
    shift
    split_opts "$@"
    set -- "${rest[@]}"
    : >"$TLOG_DIR/$name"
    chmod 0666 "$TLOG_DIR/$name"
    pm run -d --pull=never --pod "$P" --name "$P-$name" \
        -v "$P-var-run-argo:/var/run/argo" -v "$P-staging:/argo/staging" \
        -v "$TLOG_DIR/$name:/dev/termination-log" \
        -e ARGO_CONTAINER_NAME="$name" -e ARGO_POD_NAME="$P" -e ARGO_INCLUDE_SCRIPT_OUTPUT=true \
        "${opts[@]}" "$BUSYBOX_IMAGE" "$@" >/dev/null
}

# main_start [podman run options...] -- CMD...: main, as a non-root user, read-only root.
main_start() {
    local opts rest
    split_opts "$@"
    set -- "${rest[@]}"
    ctr_start main --user "$MAIN_USER" --read-only --read-only-tmpfs=false \
        --tmpfs /tmp:rw,mode=1777 "${opts[@]}" -- "${EMISSARY[@]}" "$@"
}

# ctr_wait NAME SECONDS: waits for the container to exit; its exit code (podman inspect) in
# CTR_RC.
ctr_wait() {
    CTR_RC=timeout
    wait_until "$2" ctr_exited "$1" || {
        _not_ok "$1 still running after $2 s"
        return 1
    }
    CTR_RC=$(pm inspect -f '{{.State.ExitCode}}' "$P-$1")
}
ctr_exited() { [[ $(pm inspect -f '{{.State.Status}}' "$P-$1" 2>/dev/null) == exited ]]; }

ctr_log() { pm logs "$P-$1" 2>&1; }

# ---------------------------------------------------------------- the wait container's reads

wait_exitcode() { wait_until "$1" test -e "$VRA/ctr/$2/exitcode" || _not_ok "no ctr/$2/exitcode within $1 s"; }
stdout_has() { grep -qF -- "$1" "$VRA/ctr/main/stdout" 2>/dev/null; }
log_has() { ctr_log "$1" | grep -qF -- "$2"; }

# tree DIR: one line per entry: path, type, mode, size of files, link target, sorted.
tree() { (cd "$1" && find . -mindepth 1 -printf '%P %y %m %s %l\n' | awk '$2 != "f" { $4 = "-" } 1' | sort); }

# ---------------------------------------------------------------- scenarios

# The image: only the binary, its version as the label says; other subcommands need upstream.
case_image() {
    need_podman
    local out
    out=$(pm run --rm --pull=never --network none "$IMAGE" version 2>&1)
    assert_eq "$VERSION_LINE" "$out" "argoexec version in the image"
    assert_contains "$out" " commit " "version names the commit"
    assert_eq "$V_VERSION $V_TARGET ${V_COMMIT:-unknown}" \
        "$(pm image inspect -f '{{index .Labels "org.opencontainers.image.version"}} {{index .Labels "io.argoexec.target"}} {{index .Labels "org.opencontainers.image.revision"}}' "$IMAGE")" \
        "labels: version, target, commit"
    assert_contains "$(pm image inspect -f '{{index .Labels "org.opencontainers.image.source"}}' "$IMAGE")" "github.com" "source label"
    assert_eq '[/bin/argoexec]' "$(pm image inspect -f '{{.Config.Entrypoint}}' "$IMAGE")" "entrypoint"
    pm create --pull=never --name "$CT_NAME-image-probe" "$IMAGE" version >/dev/null
    assert_eq "bin/argoexec" "$(pm export "$CT_NAME-image-probe" | tar -t | grep -v '/$' | sort | tr '\n' ' ' | sed 's/ $//')" "files in the image"
    pm rm -f "$CT_NAME-image-probe" >/dev/null
    out=$(pm run --rm --pull=never --network none "$IMAGE" wait 2>&1)
    assert_eq 64 "$(pm run --rm --pull=never --network none "$IMAGE" wait >/dev/null 2>&1; echo $?)" "wait without ARGOEXEC_UPSTREAM"
    assert_contains "$out" "ARGOEXEC_UPSTREAM" "the reason names ARGOEXEC_UPSTREAM"
}

# scripts/Containerfile.over-upstream over a stand-in for upstream's image (see the header):
# ours answers version, upstream's gets wait and init (ARGOEXEC_UPSTREAM set by the image) with
# the same arguments; upstream's binary is kept as /bin/argoexec-upstream.
case_over_upstream() {
    need_podman
    assert_eq "$VERSION_LINE" "$(pm run --rm --pull=never --network none "$OVER_IMAGE" version 2>&1)" "version is ours"
    assert_eq "upstream argoexec: wait --loglevel info" "$(pm run --rm --pull=never --network none "$OVER_IMAGE" wait --loglevel info 2>&1)" "wait handed to upstream"
    # stdout only: ours may log on stderr before handing init over.
    assert_eq "upstream argoexec: init --loglevel info" "$(pm run --rm --pull=never --network none -e ARGO_TEMPLATE='{}' "$OVER_IMAGE" init --loglevel info 2>/dev/null)" "init handed to upstream"
    assert_eq "$(cat "$CT_STATE/upstream-ctx/bin/argoexec")" "$(pm run --rm --pull=never --network none --entrypoint /bin/busybox "$OVER_IMAGE" cat /bin/argoexec-upstream)" "upstream's binary kept as /bin/argoexec-upstream"
    assert_eq "" "$(pm image inspect -f '{{.Config.User}}' "$OVER_IMAGE")" "the root target sets no user (as upstream's argoexec)"
    assert_eq '[argoexec]' "$(pm image inspect -f '{{.Config.Entrypoint}}' "$OVER_IMAGE")" "entrypoint as upstream's"
}

# The -nonroot target, as upstream's argoexec-nonroot: USER 8737, both binaries owned by 8737;
# ours and the hand-over work as that user.
case_over_upstream_nonroot() {
    need_podman
    local img=$OVER_NONROOT_IMAGE
    assert_eq 8737 "$(pm image inspect -f '{{.Config.User}}' "$img")" "image user"
    assert_eq 8737 "$(pm run --rm --pull=never --network none --entrypoint /bin/busybox "$img" id -u)" "runs as uid 8737"
    assert_eq "8737 755 8737 755" "$(pm run --rm --pull=never --network none --entrypoint /bin/busybox "$img" stat -c '%u %a' /bin/argoexec /bin/argoexec-upstream | tr '\n' ' ' | sed 's/ $//')" "binaries owned by 8737, 0755"
    assert_eq "$VERSION_LINE" "$(pm run --rm --pull=never --network none "$img" version 2>&1)" "version is ours"
    assert_eq "upstream argoexec: wait --loglevel info" "$(pm run --rm --pull=never --network none "$img" wait --loglevel info 2>&1)" "wait handed to upstream"
    # The nonroot image's init into a pod's shared folder, as 8737: ours lands there.
    pod_new nonroot || return
    pm run --pull=never --pod "$P" --name "$P-init" -v "$P-var-run-argo:/var/run/argo" \
        -e ARGO_CONTAINER_NAME=init -e ARGO_TEMPLATE='{"name":"nonroot"}' "$img" init --loglevel info >/dev/null 2>&1
    assert_eq 0 $? "init from the nonroot image"
    assert_same_bytes "$BIN" "$VRA/argoexec" "ours copied into the shared folder by (stand-in) upstream init"
    assert_eq 8737 "$(stat -c %u "$VRA/argoexec")" "the copy is owned by 8737"
}

# A script step: init stages binary, template and script; main (1000:1000, read-only root)
# writes a parameter and a directory artifact; the sidecar is stopped once main is done.
case_script_step() {
    pod_new script
    local src tmpl exp t0 dt
    src='set -e
echo "hello from $(id -u):$(id -g)" > /tmp/message.txt
mkdir -p /tmp/report/sub/empty
printf "a\n" > /tmp/report/a.txt
printf "deep" > /tmp/report/sub/b.txt
chmod 0640 /tmp/report/sub/b.txt
ln -s a.txt /tmp/report/link
if touch /root-is-writable 2>/dev/null; then echo "root: writable"; else echo "root: read-only"; fi
echo "pid1: $(tr "\0" " " </proc/1/cmdline)"
echo "warning: to stderr" >&2
echo "result-42"'
    tmpl=$(SRC=$src python3 -c '
import json, os
print(json.dumps({
    "name": "script-step", "inputs": {}, "metadata": {},
    "outputs": {
        "parameters": [{"name": "message", "valueFrom": {"path": "/tmp/message.txt"}}],
        "artifacts": [{"name": "report", "path": "/tmp/report/"}],
    },
    "script": {"name": "", "image": "busybox", "command": ["sh"], "source": os.environ["SRC"]},
    "sidecars": [{"name": "helper", "image": "busybox"}],
    "archiveLocation": {"archiveLogs": True},
}))')
    pod_init "$tmpl"
    assert_eq 0 "$INIT_RC" "init exit code ($INIT_LOG)" || return
    assert_mode "$VRA/argoexec" 0555 "argoexec copied by init"
    assert_same_bytes "$BIN" "$VRA/argoexec" "the copy is the image's binary"
    assert_file_eq "$VRA/template" "$tmpl" "template"
    assert_file_eq "$STAGING/script" "$src" "script staged"

    ctr_start helper -e ARGO_TERMINATION_GRACE_PERIOD_SECONDS=5 -- \
        "${EMISSARY[@]}" sh -c 'echo sidecar up; while :; do sleep 0.05; done' || return
    assert_true "sidecar started" wait_until 20 log_has helper "sidecar up" || return
    main_start -- sh /argo/staging/script || return
    wait_exitcode 30 main || return
    t0=$(now_ms)
    ctr_wait main 20
    assert_eq 0 "$CTR_RC" "main's exit code (podman inspect)"
    assert_file_eq "$VRA/ctr/main/exitcode" 0 "main's exitcode file"

    assert_true "root file system read-only" stdout_has "root: read-only"
    assert_true "PID 1 is the emissary" stdout_has "pid1: /var/run/argo/argoexec emissary --loglevel info"
    assert_eq "result-42" "$(tail -n 1 "$VRA/ctr/main/stdout")" "script result"
    assert_not_contains "$(cat "$VRA/ctr/main/stdout")" "to stderr" "stdout holds no stderr"
    assert_contains "$(cat "$VRA/ctr/main/combined")" "warning: to stderr" "combined holds stderr"
    assert_contains "$(ctr_log main)" "result-42" "podman logs show the output"
    assert_file_eq "$VRA/outputs/parameters/tmp/message.txt" "hello from 1000:1000"$'\n' "output parameter"

    mkdir -p "$TLOG_DIR/got" "$TLOG_DIR/exp/report/sub/empty"
    tar -xzf "$VRA/outputs/artifacts/tmp/report.tgz" -C "$TLOG_DIR/got"
    exp=$TLOG_DIR/exp
    printf 'a\n' >"$exp/report/a.txt"
    printf deep >"$exp/report/sub/b.txt"
    ln -s a.txt "$exp/report/link"
    # The command runs with the emissary's umask 0, as upstream's does.
    chmod 0777 "$exp/report" "$exp/report/sub" "$exp/report/sub/empty"
    chmod 0666 "$exp/report/a.txt"
    chmod 0640 "$exp/report/sub/b.txt"
    assert_eq "$(tree "$exp")" "$(tree "$TLOG_DIR/got")" "artifact tree (types, modes, sizes, links)"
    assert_eq "" "$(diff -r --no-dereference "$exp" "$TLOG_DIR/got" 2>&1)" "artifact contents"
    assert_eq "1000/1000" "$(tar --numeric-owner -tvzf "$VRA/outputs/artifacts/tmp/report.tgz" | awk '{ print $2 }' | sort -u)" "artifact entries owned by main's user"

    ctr_wait helper 20
    dt=$(($(now_ms) - t0))
    assert_eq 143 "$CTR_RC" "sidecar's exit code (it obeys SIGTERM)"
    assert_file_eq "$VRA/ctr/helper/exitcode" 143 "sidecar's exitcode file"
    assert_le "$dt" 4000 "ms from main's exitcode to the sidecar's end"
}

# run_main NAME TEMPLATE CMD...: a pod with init and main only; main started.
run_main() {
    pod_new "$1" || return 1
    pod_init "$2"
    assert_eq 0 "$INIT_RC" "init exit code ($INIT_LOG)" || return 1
    shift 2
    main_start -- "$@"
}

case_failing_step() {
    run_main fail '{"name":"fails","container":{"image":"busybox"}}' sh -c 'echo failing; exit 3' || return
    ctr_wait main 30
    assert_eq 3 "$CTR_RC" "main's exit code (podman inspect)"
    assert_file_eq "$VRA/ctr/main/exitcode" 3 "exitcode file"
    assert_file_eq "$VRA/ctr/main/stdout" "failing"$'\n' "stdout"
    assert_contains "$(ctr_log main)" "exit status 3" "log"
}

# The controller's way to stop a step: `argoexec kill 15 1` run inside the container.
case_argoexec_kill() {
    run_main kill '{"name":"stopped"}' sh -c 'echo up; while :; do sleep 0.05; done' || return
    assert_true "main started" wait_until 20 stdout_has up || return
    local out
    out=$(pm exec "$P-main" /var/run/argo/argoexec kill 15 1 2>&1)
    assert_eq 0 $? "podman exec ... argoexec kill 15 1 ($out)"
    assert_contains "$out" "killing 1 with SIGTERM" "kill's message"
    ctr_wait main 20
    assert_eq 143 "$CTR_RC" "main's exit code (podman inspect)"
    assert_file_eq "$VRA/ctr/main/exitcode" 143 "exitcode file"
}

# The container runtime's way: SIGTERM to PID 1 (kubelet, podman stop/kill).
case_podman_kill() {
    run_main term '{"name":"terminated"}' sh -c 'echo up; while :; do sleep 0.05; done' || return
    assert_true "main started" wait_until 20 stdout_has up || return
    pm kill -s TERM "$P-main" >/dev/null
    ctr_wait main 20
    assert_eq 143 "$CTR_RC" "main's exit code (podman inspect)"
    assert_file_eq "$VRA/ctr/main/exitcode" 143 "exitcode file"
}

# A sidecar that ignores SIGTERM: killed once the grace (2 s) after main's end has passed.
case_sidecar_ignores_term() {
    pod_new stubborn
    pod_init '{"name":"with-sidecar","container":{"image":"busybox"},"sidecars":[{"name":"stubborn","image":"busybox"}]}'
    assert_eq 0 "$INIT_RC" "init exit code ($INIT_LOG)" || return
    ctr_start stubborn -e ARGO_TERMINATION_GRACE_PERIOD_SECONDS=2 -- \
        "${EMISSARY[@]}" sh -c "trap '' TERM; echo up; while :; do sleep 0.05; done" || return
    assert_true "sidecar started" wait_until 20 log_has stubborn up || return
    main_start -- sh -c 'sleep 0.2' || return
    wait_exitcode 30 main || return
    local t0 dt
    t0=$(now_ms)
    ctr_wait stubborn 20
    dt=$(($(now_ms) - t0))
    assert_eq 137 "$CTR_RC" "sidecar's exit code (podman inspect)"
    assert_file_eq "$VRA/ctr/stubborn/exitcode" 137 "sidecar's exitcode file"
    assert_le 1500 "$dt" "ms from main's exitcode to the sidecar's end (grace 2 s)"
    assert_le "$dt" 6000 "ms from main's exitcode to the sidecar's end"
    assert_contains "$(ctr_log stubborn)" "main container(s) exited" "sidecar's log"
}

case_command_not_found() {
    run_main missing '{"name":"missing-cmd"}' no-such-tool --flag || return
    ctr_wait main 30
    assert_eq 64 "$CTR_RC" "main's exit code (podman inspect)"
    assert_file_eq "$VRA/ctr/main/exitcode" 64 "exitcode file"
    assert_contains "$(ctr_log main)" "no-such-tool" "log names the command"
    assert_contains "$(ctr_log main)" "executable file not found" "log says why"
    assert_contains "$(cat "$TLOG_DIR/main")" "no-such-tool" "termination message"
}

# ---------------------------------------------------------------- init-less pods (SPEC 7)

INITLESS_EMISSARY=(/argo-bin/bin/argoexec emissary --loglevel info --log-format text --gloglevel 0 --)

# initless_main_start [podman run options...] -- CMD...: main of an init-less pod: busybox
# image, 1000:1000, read-only root, the executor image mounted at /argo-bin (the controller's
# image volume, read-only), the inputs volume, ARGO_WAIT_FOR_READY=true and no ARGO_TEMPLATE
# (the supervisor writes the template file).
initless_main_start() {
    local opts rest
    split_opts "$@"
    set -- "${rest[@]}"
    ctr_start main --user "$MAIN_USER" --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,mode=1777 \
        --mount "type=image,source=$OVER_IMAGE,destination=/argo-bin" \
        -v "$P-inputs:/argo/inputs/artifacts" -e ARGO_WAIT_FOR_READY=true "${opts[@]}" -- \
        "${INITLESS_EMISSARY[@]}" "$@"
}

# An init-less pod: main waits for READY, then reads the template the supervisor wrote, finds
# its input artifact linked at its path, writes a parameter. The supervisor is the executor
# image's `argoexec supervisor`, handed by ours to (stand-in) upstream.
case_initless() {
    pod_new initless || return
    pm volume create "$P-inputs" >/dev/null || return
    local tmpl='{"name":"initless","inputs":{"artifacts":[{"name":"in-art","path":"/tmp/in/data.txt"}]},"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"/tmp/out.txt"}}]},"container":{"image":"busybox"}}'
    initless_main_start -- sh -c 'cat /tmp/in/data.txt; ls -l /tmp/in/data.txt; printf out >/tmp/out.txt' || return
    sleep 1
    assert_eq running "$(pm inspect -f '{{.State.Status}}' "$P-main")" "main waits for the status file"
    assert_true "no exitcode before READY" test ! -e "$VRA/ctr/main/exitcode"
    pm run -d --pull=never --pod "$P" --name "$P-supervisor" \
        -v "$P-var-run-argo:/var/run/argo" -v "$P-inputs:/argo/inputs/artifacts" \
        -e ARGO_CONTAINER_NAME=supervisor -e ARGO_INITLESS_POD=true -e ARGO_TEMPLATE="$tmpl" \
        "$OVER_IMAGE" supervisor --loglevel info --log-format text --gloglevel 0 >/dev/null || return
    ctr_wait main 30
    assert_eq 0 "$CTR_RC" "main's exit code (podman inspect) ($(ctr_log main | tail -n 3))"
    assert_file_eq "$VRA/ctr/main/exitcode" 0 "exitcode file"
    assert_true "main read its input artifact" stdout_has "input bytes"
    assert_true "the input is a link to /argo/inputs/artifacts/in-art" stdout_has "/tmp/in/data.txt -> /argo/inputs/artifacts/in-art"
    assert_file_eq "$VRA/outputs/parameters/tmp/out.txt" out "output parameter"
    ctr_wait supervisor 20
    assert_eq 0 "$CTR_RC" "supervisor's exit code"
    assert_contains "$(ctr_log supervisor)" "upstream argoexec: supervisor --loglevel info --log-format text --gloglevel 0" "supervisor handed to upstream, argv unchanged"
}

# FAILED in the status file: main exits 65 with the reason, never runs its command.
case_initless_failed() {
    pod_new initless-failed || return
    pm volume create "$P-inputs" >/dev/null || return
    initless_main_start -- sh -c 'echo must-not-run' || return
    sleep 0.5
    printf 'FAILED\ninput artifact download failed\n' >"$VRA/status.tmp" && mv "$VRA/status.tmp" "$VRA/status"
    ctr_wait main 30
    assert_eq 65 "$CTR_RC" "main's exit code (podman inspect)"
    assert_file_eq "$VRA/ctr/main/exitcode" 65 "exitcode file"
    assert_contains "$(cat "$TLOG_DIR/main")" "input artifact download failed" "termination message"
    assert_not_contains "$(ctr_log main)" "must-not-run" "the command did not run"
}

# In a user container of an init-less pod (no ARGOEXEC_UPSTREAM there), a subcommand we hand
# over reaches upstream's binary at /argo-bin/bin/argoexec-upstream with the same argv.
case_initless_upstream_beside() {
    need_podman
    local out
    out=$(pm run --rm --pull=never --network none --user "$MAIN_USER" \
        --mount "type=image,source=$OVER_IMAGE,destination=/argo-bin" \
        "$BUSYBOX_IMAGE" /argo-bin/bin/argoexec artifact --loglevel info -- x 2>&1)
    assert_eq 0 $? "exit code ($out)"
    assert_eq "upstream argoexec: artifact --loglevel info -- x" "$out" "handed to /argo-bin/bin/argoexec-upstream"
}

# ---------------------------------------------------------------- plugin pods (SPEC 1)

PLUGIN=my-plugin
PLUGIN_TEMPLATE='{"name":"with-plugin","inputs":{"artifacts":[{"name":"in","path":"/tmp/in.txt","plugin":{"name":"my-plugin","configuration":"{}","key":"in.txt"}}]},"outputs":{"artifacts":[{"name":"out","path":"/tmp/out.txt","plugin":{"name":"my-plugin","configuration":"{}","key":"out.txt"}}]},"container":{"image":"busybox"}}'
LOGOPTS=(--loglevel info --log-format text --gloglevel 0)

# plugin_pod_init: a plugin pod's init from the executor image.
plugin_pod_init() {
    INIT_LOG=$(pm run --pull=never --pod "$P" --name "$P-init" \
        -v "$P-var-run-argo:/var/run/argo" -v "$P-staging:/argo/staging" \
        -e ARGO_CONTAINER_NAME=init -e ARGO_POD_NAME="$P" -e ARGO_TEMPLATE="$PLUGIN_TEMPLATE" \
        "$OVER_IMAGE" init "${LOGOPTS[@]}" 2>&1)
    INIT_RC=$?
}

# Plugin init: init (executor image) makes upstream's binary reachable in the shared folder;
# the plugin's init container (the plugin's image, no ARGOEXEC_UPSTREAM) runs
# /var/run/argo/argoexec artifact-plugin-init, handed to it with the same argv.
case_plugin_init() {
    need_podman
    pod_new plugin-init || return
    plugin_pod_init
    assert_eq 0 "$INIT_RC" "init exit code ($INIT_LOG)" || return
    assert_same_bytes "$BIN" "$VRA/argoexec" "ours in the shared folder"
    assert_same_bytes "$CT_STATE/upstream-ctx/bin/argoexec" "$VRA/argoexec-upstream" "upstream's binary in the shared folder"
    local ctr=init-artifact-$PLUGIN out
    out=$(pm run --pull=never --pod "$P" --name "$P-$ctr" -v "$P-var-run-argo:/var/run/argo" \
        -e ARGO_CONTAINER_NAME="$ctr" -e ARGO_POD_NAME="$P" "$BUSYBOX_IMAGE" \
        /var/run/argo/argoexec artifact-plugin-init --plugin-name "$PLUGIN" "${LOGOPTS[@]}" -- /bin/plugin-server /artifact-plugins/$PLUGIN/socket 2>&1)
    assert_eq 0 $? "plugin init's exit code ($out)"
    assert_eq "upstream argoexec: artifact-plugin-init --plugin-name $PLUGIN ${LOGOPTS[*]} -- /bin/plugin-server /artifact-plugins/$PLUGIN/socket" "$out" "handed to upstream, argv unchanged"
    assert_contains "$(cat "$VRA/upstream-calls")" "$ctr: artifact-plugin-init --plugin-name $PLUGIN" "recorded by upstream's binary in the plugin container"
}

# Plugin sidecar: /var/run/argo/argoexec artifact-plugin-sidecar in the plugin's image ignores
# SIGTERM (the runtime's stop) and ends through its signal file, the plugin's status in its
# exitcode file.
case_plugin_sidecar() {
    need_podman
    pod_new plugin-sidecar || return
    plugin_pod_init
    assert_eq 0 "$INIT_RC" "init exit code ($INIT_LOG)" || return
    local sc=artifact-plugin-$PLUGIN
    ctr_start "$sc" -e ARGO_TERMINATION_GRACE_PERIOD_SECONDS=2 -- \
        /var/run/argo/argoexec artifact-plugin-sidecar "${LOGOPTS[@]}" -- \
        sh -c 'echo plugin up; while :; do sleep 0.05; done' "/artifact-plugins/$PLUGIN/socket" || return
    assert_true "plugin started" wait_until 20 log_has "$sc" "plugin up" || return
    pm kill -s TERM "$P-$sc" >/dev/null
    sleep 1.5
    assert_eq running "$(pm inspect -f '{{.State.Status}}' "$P-$sc")" "SIGTERM not forwarded: still running"
    assert_true "no exitcode yet" test ! -e "$VRA/ctr/$sc/exitcode"
    printf 15 >"$VRA/ctr/$sc/signal"
    ctr_wait "$sc" 10
    # As upstream's: the command's status goes to the file, the sidecar itself exits 0.
    assert_eq 0 "$CTR_RC" "the sidecar's exit code after 15 in the signal file (podman inspect)"
    assert_file_eq "$VRA/ctr/$sc/exitcode" 143 "exitcode file: the plugin's status"
    main_start -- sh -c 'echo main ran' || return
    ctr_wait main 30
    assert_eq 0 "$CTR_RC" "main's exit code"
}

# ---------------------------------------------------------------- both architectures

# Our image for amd64 and arm64 in one manifest list; each image's binary run in its own
# container (arm64 under qemu: see arm64_run), and an emissary run in the arm64 container.
case_multiarch() {
    need_podman
    arm64_images || {
        _not_ok "cannot build the arm64 binary or images"
        return
    }
    assert_eq "$(cut -d' ' -f1-2 <<<"$VERSION_LINE") $ARM64_TRIPLE $(cut -d' ' -f4- <<<"$VERSION_LINE")" "$ARM64_VERSION_LINE" "the arm64 binary: same version and commit"
    pm manifest create "$MANIFEST" >/dev/null &&
        pm manifest add "$MANIFEST" "containers-storage:$IMAGE" >/dev/null &&
        pm manifest add "$MANIFEST" "containers-storage:$IMAGE_ARM64" >/dev/null
    assert_eq 0 $? "podman manifest create/add" || return
    local plats want
    plats=$(pm manifest inspect "$MANIFEST" | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(" ".join(sorted(e["platform"]["os"] + "/" + e["platform"]["architecture"] + "=" + e["digest"] for e in m["manifests"])))')
    want="linux/amd64=$(pm image inspect -f '{{.Digest}}' "$IMAGE") linux/arm64=$(pm image inspect -f '{{.Digest}}' "$IMAGE_ARM64")"
    assert_eq "$want" "$plats" "the manifest list: one image per architecture, by digest"
    assert_eq "arm64 $ARM64_TRIPLE" "$(pm image inspect -f '{{.Architecture}} {{index .Labels "io.argoexec.target"}}' "$IMAGE_ARM64")" "arm64 image: architecture and target label"
    assert_eq "$VERSION_LINE" "$(pm run --rm --pull=never --network none --platform linux/amd64 "$IMAGE" version 2>&1)" "amd64 image runs"
    assert_eq "$ARM64_VERSION_LINE" "$(arm64_run -- "$IMAGE_ARM64" /bin/argoexec version 2>&1)" "arm64 image's binary runs in its container"
    local out rc
    out=$(arm64_run --tmpfs /var/run/argo:rw,mode=0777 -v /bin/busybox:/busybox:ro -e ARGO_CONTAINER_NAME=main \
        -e ARGO_TEMPLATE='{"name":"arm64"}' -- "$IMAGE_ARM64" /bin/argoexec \
        emissary "${LOGOPTS[@]}" -- /busybox sh -c 'echo hello from arm64; exit 3' 2>&1)
    rc=$?
    assert_eq 3 "$rc" "arm64 emissary in its container: the command's exit code ($out)"
    assert_contains "$out" "hello from arm64" "the command's output"
}

# The executor image over upstream's for arm64 too, and its manifest list: ours (arm64) in place,
# upstream's kept beside it.
case_multiarch_over_upstream() {
    need_podman
    arm64_images || {
        _not_ok "cannot build the arm64 binary or images"
        return
    }
    pm manifest create "$OVER_MANIFEST" >/dev/null &&
        pm manifest add "$OVER_MANIFEST" "containers-storage:$OVER_IMAGE" >/dev/null &&
        pm manifest add "$OVER_MANIFEST" "containers-storage:$OVER_ARM64_IMAGE" >/dev/null
    assert_eq 0 $? "podman manifest create/add" || return
    assert_eq "linux/amd64 linux/arm64" "$(pm manifest inspect "$OVER_MANIFEST" | python3 -c '
import json, sys
print(" ".join(sorted(e["platform"]["os"] + "/" + e["platform"]["architecture"] for e in json.load(sys.stdin)["manifests"])))')" "platforms of the manifest list"
    assert_eq "$ARM64_VERSION_LINE" "$(arm64_run -- "$OVER_ARM64_IMAGE" /bin/argoexec version 2>&1)" "ours is /bin/argoexec in the arm64 image"
    assert_eq "$(cat "$CT_STATE/upstream-ctx/bin/argoexec")" "$(pm run --rm --pull=never --network none --platform linux/arm64 --entrypoint /bin/busybox "$OVER_ARM64_IMAGE" cat /bin/argoexec-upstream)" "upstream's kept as /bin/argoexec-upstream"
}

# ---------------------------------------------------------------- run

trap 'rc=$?; cleanup_all; (exit $rc); _lib_exit' EXIT

setup() {
    ensure_debian_packages podman runc catatonit busybox-static qemu-user-static || {
        _not_ok "cannot install podman runc catatonit qemu-user-static"
        return 1
    }
    QEMU=$(command -v qemu-aarch64-static) || {
        _not_ok "no qemu-aarch64-static"
        return 1
    }
    podman_setup || return 1
    if ! out=$(pm info 2>&1); then
        PODMAN_SKIP="podman does not work on this machine: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
        return 0
    fi
    image_binary || {
        _not_ok "cannot build the binary"
        return 1
    }
    echo "# image binary: $BIN_BUILD build, $(stat -c %s "$BIN") bytes"
    build_images && build_upstream_images || {
        _not_ok "cannot build the images"
        return 1
    }
    probe
}
# CT_CASES=REGEX runs only the cases whose function name matches (while working on one).
ct_case() { [[ -z ${CT_CASES:-} || $2 =~ $CT_CASES ]] && run_case "$@"; }
# set-up failures are failures (the images and the binary are ours); only podman itself may skip.
if setup; then
    [[ -n $PODMAN_SKIP ]] && echo "# $PODMAN_SKIP"
    ct_case "container: the image: only /bin/argoexec, version = labels, wait needs upstream" case_image
    ct_case "container: Containerfile.over-upstream: version ours, wait and init handed to upstream" case_over_upstream
    ct_case "container: Containerfile.over-upstream -nonroot: user 8737, binaries owned by 8737, init as 8737" case_over_upstream_nonroot
    ct_case "container: script step: init, main as 1000:1000 read-only, parameter, dir artifact, sidecar stopped" case_script_step
    ct_case "container: failing step: exit 3 in podman inspect and exitcode" case_failing_step
    ct_case "container: podman exec main argoexec kill 15 1: 143" case_argoexec_kill
    ct_case "container: podman kill -s TERM: 143" case_podman_kill
    ct_case "container: sidecar ignoring SIGTERM killed after its 2 s grace: 137" case_sidecar_ignores_term
    ct_case "container: command not found: 64, reason in the log and termination message" case_command_not_found
    ct_case "container: init-less pod: image at /argo-bin, waits for READY, input linked, supervisor handed over" case_initless
    ct_case "container: init-less pod: FAILED in the status file gives 65 with the reason" case_initless_failed
    ct_case "container: init-less pod: a handed-over subcommand finds /argo-bin/bin/argoexec-upstream" case_initless_upstream_beside
    ct_case "container: plugin pod: init makes upstream reachable, plugin init handed to it" case_plugin_init
    ct_case "container: plugin pod: artifact-plugin-sidecar ignores SIGTERM, stops through its signal file" case_plugin_sidecar
    ct_case "container: amd64 + arm64 images in one manifest list, arm64 run under qemu" case_multiarch
    ct_case "container: executor image over upstream for arm64 and its manifest list" case_multiarch_over_upstream
else
    FAILED=$((FAILED + 1))
    echo "FAIL - container test set-up"
fi
finish
