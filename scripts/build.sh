#!/usr/bin/env bash
# Builds the static binary and prints "PATH SIZE" as its last line.
#
#   scripts/build.sh            the stable build (the development default; static, not
#                               position-independent, no unwind tables: .cargo/config.toml):
#                               target/x86_64-unknown-linux-musl/release/argoexec
#   scripts/build.sh --shipped  the shipped build, smallest: std rebuilt (-Zbuild-std, on the
#                               pinned toolchain with RUSTC_BOOTSTRAP=1) with
#                               panics as an immediate abort (no formatting or backtrace
#                               machinery), no unwind tables, not position-independent,
#                               linked by rust-lld with identical code folding:
#                               target/shipped/x86_64-unknown-linux-musl/release/argoexec
#                               (not -Zfmt-debug=none: it empties every {:?} in our messages,
#                               so "command not found" lost the command's name; it saved
#                               nothing in size)
#   --target TRIPLE             another musl target, with either of the above; the one
#                               other target supported is aarch64-unknown-linux-musl
#                               (arm64). Every target links with rust-lld, the linker every
#                               Rust toolchain ships (.cargo/config.toml), against the
#                               self-contained musl of the target's rust-std: no C toolchain
#                               is needed, not even for the cross build. Same paths
#                               with TRIPLE for x86_64-unknown-linux-musl.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
shipped=0
while (($#)); do
    case $1 in
        --shipped) shipped=1 ;;
        --target)
            target=${2:?--target needs a triple}
            shift
            ;;
        --target=*) target=${1#--target=} ;;
        *)
            echo "usage: scripts/build.sh [--shipped] [--target TRIPLE]" >&2
            exit 64
            ;;
    esac
    shift
done

# The toolchain pinned by rust-toolchain.toml, with the components and targets it names
# (rust-src for the shipped build, both musl targets): installed when missing, a no-op when
# present. rustup 1.28+ installs it with a bare `toolchain install`; older ones on first use
# (`rustup show`). Never a self-update: building must not replace the machine's rustup.
if command -v rustup >/dev/null 2>&1; then
    rustup toolchain install --no-self-update >&2 2>/dev/null || rustup show active-toolchain >&2
    rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2
fi

if ((shipped)); then
    # -Z flags on the pinned stable compiler: RUSTC_BOOTSTRAP=1 allows them (nightly's
    # aarch64 musl std cannot always be had; the pinned toolchain's always can, and a pinned
    # compiler gives the same binary on every machine). rust-lld links it
    # (.cargo/config.toml names it), folding identical functions.
    RUSTC_BOOTSTRAP=1 \
        RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Crelocation-model=static -Cforce-unwind-tables=no -Clink-arg=--icf=all" \
        cargo build --release --target "$target" \
        -Z build-std=std,panic_abort --target-dir target/shipped >&2
    bin=target/shipped/$target/release/argoexec
else
    cargo build --release --target "$target" >&2
    bin=target/$target/release/argoexec
fi
size=$(stat -c %s "$bin")
echo "built $bin: $size bytes ($(((size + 1023) / 1024)) KiB)" >&2
echo "$PWD/$bin $size"
