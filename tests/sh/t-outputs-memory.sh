#!/usr/bin/env bash
# Artifacts are streamed with bounded memory whatever their size (SPEC 5): archiving a 1 GiB
# file keeps the emissary's peak resident set under 16 MiB. Measured with GNU time's %M: the
# maximum resident set size, in KiB, of the emissary and of the children it waited for. The
# child is the static binary itself (`argoexec version`), so a dynamically linked child's
# own megabyte does not hide the emissary's figure.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LIMIT_KIB=$((16 * 1024))

# peak_rss FILE ARGS...: runs `argoexec emissary ARGS...` with ROOT as its root under
# /usr/bin/time; its peak RSS in KiB goes to FILE, its exit status is returned.
peak_rss() {
    local out=$1
    shift
    ARGOEXEC_VAR_RUN_ARGO="$ROOT" ARGOEXEC_TERMINATION_LOG="$TLOG" \
        timeout -s KILL "${EM_TIMEOUT:-120}" /usr/bin/time -f %M -o "$out" \
        "$ARGOEXEC" emissary "$@"
}

# A folder holding a 1 GiB sparse file with 1 MiB of random data at its start, middle and end
# (incompressible stretches the deflate window must pass over), saved as one artifact.
case_1gib_artifact() {
    [[ -x /usr/bin/time ]] || skip "/usr/bin/time is not installed"
    local D base rc rss idle
    new_root
    D=$(dirname "$ROOT")
    base=$D/src
    mkdir -p "$base"
    truncate -s 1G "$base/huge" || skip "cannot make a sparse file here"
    for off in 0 512 1023; do
        head -c 1048576 /dev/urandom | dd of="$base/huge" bs=1M seek=$off conv=notrunc status=none
    done
    head -c 65536 /dev/urandom >"$base/small"
    printf '{"outputs":{"artifacts":[{"name":"big","path":"%s/"}]}}' "$base" >"$ROOT/template"

    peak_rss "$D/rss" -- "$ARGOEXEC" version >/dev/null 2>"$D/err"
    rc=$?
    assert_eq 0 "$rc" "exit code ($(tail -n 3 "$D/err"))"
    rss=$(tail -n 1 "$D/rss")
    echo "    peak RSS archiving 1 GiB: $rss KiB"
    assert_le "$rss" "$LIMIT_KIB" "peak RSS in KiB"

    local tgz=$ROOT/outputs/artifacts$base.tgz
    # Two passes over the 1 GiB: the listing, then every file's bytes in archive order.
    assert_eq "$(printf 'src\nsrc/huge\nsrc/small')" "$(tar -tzf "$tgz")" "archive listing"
    assert_true "the archive extracts to the same 1 GiB + 64 KiB" \
        cmp -s <(tar -xzOf "$tgz") <(cat "$base/huge" "$base/small")

    # For scale: the same run with no outputs at all.
    printf '{}' >"$ROOT/template"
    peak_rss "$D/rss0" -- "$ARGOEXEC" version >/dev/null 2>&1
    idle=$(tail -n 1 "$D/rss0")
    echo "    peak RSS of the same run without outputs: $idle KiB"
}

run_case "outputs-memory: archiving a 1 GiB file stays under 16 MiB peak RSS" case_1gib_artifact
finish
