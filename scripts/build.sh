#!/usr/bin/env bash
# Builds the static binary (x86_64-unknown-linux-musl, release) and prints its path and size.
# Usage: scripts/build.sh        prints "BINARY SIZE" as its last line
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    rustup target add "$target" >&2
fi
cargo build --release --target "$target" >&2
bin=target/$target/release/argoexec
size=$(stat -c %s "$bin")
echo "built $bin: $size bytes ($(( (size + 1023) / 1024 )) KiB)" >&2
echo "$PWD/$bin $size"
