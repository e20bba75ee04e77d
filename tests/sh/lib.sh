#!/usr/bin/env bash
# A tiny test framework for the shell integration tests; every tests/sh/t-*.sh sources it.
#
#   run_case NAME FUNCTION [ARGS...]   runs FUNCTION in a subshell; it passes when no assertion
#                                      failed, and is skipped when it called `skip REASON`
#   finish                             last line of every test script
#
# Each case runs in its own subshell with its own EXIT trap, so temp roots, background
# processes and mounts it registered are cleaned up when it ends, however it ends.
# At exit the script prints exactly one line `N passed, N failed` and fails if any case failed.

set -u

TESTS_SH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$TESTS_SH_DIR/../.." && pwd)
MUSL_BINARY="$REPO_ROOT/target/x86_64-unknown-linux-musl/release/argoexec"
ARGOEXEC=${ARGOEXEC:-$MUSL_BINARY}

# shellcheck source=../../scripts/lib/deps.sh
. "$REPO_ROOT/scripts/lib/deps.sh"

PASSED=0
FAILED=0
SKIPPED=0
_LIB_FINISHED=0

# ---------------------------------------------------------------- set-up

# Installs missing packages and builds the default binary when it is not there yet.
lib_setup() {
    if ! ensure_test_deps; then
        echo "cannot install the test dependencies" >&2
        return 1
    fi
    if [[ ! -x $ARGOEXEC && $ARGOEXEC == "$MUSL_BINARY" ]]; then
        (cd "$REPO_ROOT" && cargo build --release --target x86_64-unknown-linux-musl) >&2 || return 1
    fi
    if [[ ! -x $ARGOEXEC ]]; then
        echo "no argoexec binary at $ARGOEXEC" >&2
        return 1
    fi
}

# ---------------------------------------------------------------- per-case resources

_CASE_DIRS=()
_CASE_PIDS=()
_CASE_MOUNTS=()

# marked_pids: every process whose environment carries this case's ARGOEXEC_SH_MARK, that is
# everything the case started (the case's own shells are forks, not execs, and carry none).
marked_pids() {
    local f p e
    for f in /proc/[0-9]*/environ; do
        p=${f#/proc/}
        p=${p%/environ}
        [[ $p == "$BASHPID" ]] && continue
        while IFS= read -r -d '' e; do
            if [[ $e == "ARGOEXEC_SH_MARK=$ARGOEXEC_SH_MARK" ]]; then
                echo "$p"
                break
            fi
        done 2>/dev/null <"$f"
    done
}

# kill_marked: SIGKILL to everything the case started, grandchildren and orphans included.
kill_marked() {
    local round pids
    for round in 1 2 3 4 5; do
        pids=$(marked_pids)
        [[ -z $pids ]] && return 0
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null
        sleep 0.01
    done
}

_case_cleanup() {
    local p m d
    kill_marked
    {
        for p in "${_CASE_PIDS[@]}"; do
            kill -KILL "$p"
        done
        for p in "${_CASE_PIDS[@]}"; do
            wait "$p"
        done
    } 2>/dev/null
    for m in "${_CASE_MOUNTS[@]}"; do
        umount -l "$m" 2>/dev/null
    done
    for d in "${_CASE_DIRS[@]}"; do
        rm -rf "$d"
    done
}

# new_tmpdir VAR: a fresh temp directory in VAR, removed when the case ends.
new_tmpdir() {
    local _nt_d
    _nt_d=$(mktemp -d "${TMPDIR:-/tmp}/argoexec-sh.XXXXXX") || return 1
    _CASE_DIRS+=("$_nt_d")
    printf -v "$1" '%s' "$_nt_d"
}

# new_root [VAR]: a fresh root (the /var/run/argo of a run) holding a `{}` template, in VAR
# (default ROOT); also sets TLOG, a termination log beside it. Removed when the case ends.
new_root() {
    local _nr_base
    new_tmpdir _nr_base || return 1
    mkdir -p "$_nr_base/root" || return 1
    printf '{}' >"$_nr_base/root/template"
    printf -v "${1:-ROOT}" '%s' "$_nr_base/root"
    TLOG="$_nr_base/termination-log"
}

# track_pid PID: a background process of ours, killed (SIGKILL) when the case ends.
track_pid() { _CASE_PIDS+=("$1"); }

# track_mount PATH: lazily unmounted when the case ends.
track_mount() { _CASE_MOUNTS+=("$1"); }

# ---------------------------------------------------------------- running the binary

# em ARGS...: `argoexec emissary ARGS...` with ROOT as its root, killed after EM_TIMEOUT
# seconds (default 30) so that a hang is a failure (exit 137), not a stuck test.
em() {
    ARGOEXEC_VAR_RUN_ARGO="$ROOT" ARGOEXEC_TERMINATION_LOG="${TLOG:-$ROOT/../termination-log}" \
        timeout -s KILL "${EM_TIMEOUT:-30}" "$ARGOEXEC" emissary "$@"
}

# em_bg ARGS...: `argoexec emissary ARGS...` in the background, its pid in EM_PID (the emissary
# itself, no wrapper in between), killed when the case ends. Redirect the call as usual.
em_bg() {
    ARGOEXEC_VAR_RUN_ARGO="$ROOT" ARGOEXEC_TERMINATION_LOG="${TLOG:-$ROOT/../termination-log}" \
        "$ARGOEXEC" emissary "$@" &
    EM_PID=$!
    track_pid "$EM_PID"
}

# bg_wait PID SECONDS: waits for the background job PID; its exit status in BG_RC. On timeout
# it is killed, BG_RC is `timeout` and bg_wait fails.
bg_wait() {
    local pid=$1
    if ! wait_until "$2" _bg_ended "$pid"; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        BG_RC=timeout
        return 1
    fi
    wait "$pid"
    BG_RC=$?
}
_bg_ended() {
    local s
    s=$(proc_state "$1")
    [[ -z $s || $s == Z ]]
}

# em_wait SECONDS: bg_wait for the emissary of em_bg; its exit status in EM_RC.
em_wait() {
    bg_wait "$EM_PID" "$1"
    local r=$?
    EM_RC=$BG_RC
    return $r
}

# with_dead_pipe FD COMMAND...: runs COMMAND with FD (1 or 2) the write end of a pipe whose read
# end is already closed, so its first write there fails with EPIPE (and raises SIGPIPE).
# SIGPIPE is reset to its default action first (Python ignores it).
with_dead_pipe() {
    /usr/bin/python3 -c '
import os, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
r, w = os.pipe()
os.close(r)
os.dup2(w, int(sys.argv[1]))
os.close(w)
os.execvp(sys.argv[2], sys.argv[2:])' "$@"
}

# now_ms: wall clock in milliseconds.
now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}

# wait_until SECONDS COMMAND...: polls COMMAND every 20 ms until it succeeds; fails on timeout.
wait_until() {
    local limit=$1 end
    shift
    end=$(($(now_ms) + limit * 1000))
    until "$@"; do
        (($(now_ms) >= end)) && return 1
        sleep 0.02
    done
}

# has_children PID: PID has at least one child process.
has_children() { [[ -n $(children "$1") ]]; }

# proc_state PID: the one-letter state of PID from /proc/PID/stat (empty if gone).
proc_state() {
    local s
    { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 0
    s=${s##*") "}
    echo "${s%% *}"
}

# children PID: the direct children of PID, one per line.
children() {
    local c=
    { read -r c <"/proc/$1/task/$1/children"; } 2>/dev/null
    # shellcheck disable=SC2086
    [[ -z $c ]] || printf '%s\n' $c
}

# ---------------------------------------------------------------- assertions

CASE_FAILS=0

_not_ok() {
    CASE_FAILS=$((CASE_FAILS + 1))
    echo "    not ok: $*"
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
    if [[ $1 == "$2" ]]; then return 0; fi
    _not_ok "${3:-value}: expected '$1', got '$2'"
    return 1
}

# assert_ne UNEXPECTED ACTUAL [WHAT]
assert_ne() {
    if [[ $1 != "$2" ]]; then return 0; fi
    _not_ok "${3:-value}: expected anything but '$1'"
    return 1
}

# assert_file_eq FILE EXPECTED [WHAT]: FILE holds exactly the bytes of EXPECTED (no newline added).
assert_file_eq() {
    local file=$1 want=$2 what=${3:-$1}
    if [[ ! -f $file ]]; then
        _not_ok "$what: no such file"
        return 1
    fi
    if cmp -s "$file" <(printf '%s' "$want"); then return 0; fi
    _not_ok "$what: content differs; expected $(printf '%s' "$want" | head -c 60 | od -An -c | tr -s ' ' | head -2 | tr '\n' ' ')| got $(head -c 60 "$file" | od -An -c | tr -s ' ' | head -2 | tr '\n' ' ')($(stat -c %s "$file") bytes)"
    return 1
}

# assert_same_bytes FILE1 FILE2 [WHAT]: the two files are byte-identical (compared by sha256).
assert_same_bytes() {
    local a b what=${3:-"$1 vs $2"}
    if [[ ! -f $1 || ! -f $2 ]]; then
        _not_ok "$what: missing file"
        return 1
    fi
    a=$(sha256sum <"$1" | cut -d' ' -f1)
    b=$(sha256sum <"$2" | cut -d' ' -f1)
    if [[ $a == "$b" ]]; then return 0; fi
    _not_ok "$what: sha256 differs ($(stat -c %s "$1") vs $(stat -c %s "$2") bytes)"
    return 1
}

# assert_mode PATH MODE [WHAT]: the permission bits of PATH are MODE (octal, e.g. 0644).
assert_mode() {
    local got
    got=$(stat -c %a "$1" 2>/dev/null) || {
        _not_ok "${3:-$1}: cannot stat"
        return 1
    }
    if ((8#$got == 8#$2)); then return 0; fi
    _not_ok "${3:-$1}: mode expected $2, got 0$got"
    return 1
}

# assert_le ACTUAL MAX [WHAT]: ACTUAL <= MAX, numbers (decimals allowed), e.g. timings.
assert_le() {
    if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; then return 0; fi
    _not_ok "${3:-value}: expected at most $2, got $1"
    return 1
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
    if [[ $1 == *"$2"* ]]; then return 0; fi
    _not_ok "${3:-text}: expected to contain '$2', got '$(printf '%s' "$1" | head -c 300)'"
    return 1
}

# assert_not_contains HAYSTACK NEEDLE [WHAT]
assert_not_contains() {
    if [[ $1 != *"$2"* ]]; then return 0; fi
    _not_ok "${3:-text}: expected not to contain '$2'"
    return 1
}

# assert_true WHAT COMMAND...: COMMAND succeeds.
assert_true() {
    local what=$1
    shift
    if "$@"; then return 0; fi
    _not_ok "$what"
    return 1
}

# skip REASON: the case cannot run here (missing kernel feature, ...); counts as neither.
skip() {
    echo "SKIP: $*"
    exit 77
}

# ---------------------------------------------------------------- cases and results

# run_case NAME FUNCTION [ARGS...]
run_case() {
    local name=$1 rc
    shift
    (
        _CASE_DIRS=() _CASE_PIDS=() _CASE_MOUNTS=() CASE_FAILS=0
        export ARGOEXEC_SH_MARK="$$-$BASHPID-$RANDOM"
        trap _case_cleanup EXIT
        "$@"
        exit $((CASE_FAILS > 0))
    )
    rc=$?
    case $rc in
        0)
            PASSED=$((PASSED + 1))
            echo "ok - $name"
            ;;
        77)
            SKIPPED=$((SKIPPED + 1))
            echo "skip - $name"
            ;;
        *)
            FAILED=$((FAILED + 1))
            echo "FAIL - $name"
            ;;
    esac
}

finish() {
    _LIB_FINISHED=1
    exit $((FAILED > 0))
}

_lib_exit() {
    local rc=$?
    if ((!_LIB_FINISHED)); then
        echo "FAIL - $(basename "$0") ended before finish (status $rc)"
        FAILED=$((FAILED + 1))
    fi
    echo "$PASSED passed, $FAILED failed"
    if ((FAILED > 0)); then exit 1; fi
    exit 0
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
    trap _lib_exit EXIT
    if ! lib_setup; then
        echo "FAIL - set-up"
        FAILED=1
        _LIB_FINISHED=1
        exit 1
    fi
fi
