#!/usr/bin/env bash
# Builds the static binary for x86_64-unknown-linux-musl and prints "PATH SIZE" as its last line.
#
#   scripts/build.sh            the stable build (the development default):
#                               target/x86_64-unknown-linux-musl/release/argoexec
#   scripts/build.sh --shipped  the shipped build, smallest: nightly, std rebuilt with
#                               panics as an immediate abort (no formatting or backtrace
#                               machinery), no unwind tables, not position-independent,
#                               linked by rust-lld with identical code folding:
#                               target/shipped/x86_64-unknown-linux-musl/release/argoexec
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl

if [[ ${1:-} == --shipped ]]; then
    toolchain=nightly
    if ! rustup toolchain list | grep -q '^nightly'; then
        rustup toolchain install nightly --profile minimal >&2
    fi
    rustup component list --toolchain nightly --installed | grep -q '^rust-src' ||
        rustup component add rust-src --toolchain nightly >&2
    rustup target list --toolchain nightly --installed | grep -qx "$target" ||
        rustup target add "$target" --toolchain nightly >&2
    # rust-lld links it, folding identical functions (--icf=all).
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Crelocation-model=static -Cforce-unwind-tables=no -Clinker-flavor=gnu-lld-cc -Clink-self-contained=+linker -Clink-arg=-Wl,--icf=all" \
        cargo +nightly build --release --target "$target" \
        -Z build-std=std,panic_abort --target-dir target/shipped >&2
    bin=target/shipped/$target/release/argoexec
else
    rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2
    cargo build --release --target "$target" >&2
    bin=target/$target/release/argoexec
fi
size=$(stat -c %s "$bin")
echo "built $bin: $size bytes ($(((size + 1023) / 1024)) KiB)" >&2
echo "$PWD/$bin $size"
