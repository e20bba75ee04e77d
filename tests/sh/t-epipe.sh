#!/usr/bin/env bash
# The console goes away: stdout is a pipe whose reader exits at once, or stdout/stderr are
# closed outright. The child writes to the capture pipes, not the console, so it is never
# killed by SIGPIPE; the emissary must not die either, and the capture files still get every
# byte (SPEC 8: EPIPE is ignored, the files still written).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# assert_combined COMBINED STDOUT: COMBINED is STDOUT's bytes with the one stderr chunk
# `to-stderr\n` inserted somewhere (the two streams race; where it lands is not fixed, and it may
# split a line of stdout).
assert_combined() {
    if /usr/bin/python3 -c '
import sys
c = open(sys.argv[1], "rb").read()
w = open(sys.argv[2], "rb").read()
sys.exit(0 if c.count(b"to-stderr\n") == 1 and c.replace(b"to-stderr\n", b"", 1) == w else 1)' "$1" "$2"; then
        return 0
    fi
    _not_ok "ctr/main/combined is not stdout plus one 'to-stderr' chunk ($(stat -c %s "$1") bytes)"
}

# expected FILE: what `seq 1 200000` prints.
expected_seq() { seq 1 200000 >"$1"; }

case_reader_exits_at_once() {
    new_root
    local d=$ROOT/.. rcs first
    expected_seq "$d/want"
    first=$(ARGO_INCLUDE_SCRIPT_OUTPUT=true em -- sh -c 'seq 1 200000' 2>"$d/err" | head -1)
    rcs="${PIPESTATUS[0]}"
    assert_eq 1 "$first" "what head read"
    assert_eq 0 "$rcs" "emissary exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 0 "exitcode file"
    assert_same_bytes "$ROOT/ctr/main/stdout" "$d/want" "ctr/main/stdout vs seq 1 200000"
    assert_same_bytes "$ROOT/ctr/main/combined" "$d/want" "ctr/main/combined vs seq 1 200000"
    assert_contains "$(cat "$d/err")" "sub-process exited" "emissary log"
}

# The same with a child that also writes to stderr, and a reader that is gone before the
# child even starts (a closed pipe from the first byte).
case_reader_gone_before_start() {
    new_root
    local d=$ROOT/.. rc
    expected_seq "$d/want"
    ARGO_INCLUDE_SCRIPT_OUTPUT=true with_dead_pipe 1 env ARGOEXEC_VAR_RUN_ARGO="$ROOT" ARGOEXEC_TERMINATION_LOG="$TLOG" \
        timeout -s KILL 30 "$ARGOEXEC" emissary -- sh -c 'seq 1 200000; echo to-stderr >&2' 2>"$d/err"
    rc=$?
    assert_eq 0 "$rc" "emissary exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 0 "exitcode file"
    assert_same_bytes "$ROOT/ctr/main/stdout" "$d/want" "ctr/main/stdout vs seq 1 200000"
    assert_combined "$ROOT/ctr/main/combined" "$d/want"
    assert_contains "$(cat "$d/err")" "to-stderr" "child's stderr still reaches the console"
}

# stderr closed (2>&-): the emissary's own log lines have nowhere to go; its files must not
# take fd 2's place and receive them. stdout still gets the child's output.
case_stderr_closed() {
    new_root
    local d=$ROOT/.. rc
    expected_seq "$d/want"
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em -- sh -c 'seq 1 200000; echo to-stderr >&2' >"$d/out" 2>&-
    rc=$?
    assert_eq 0 "$rc" "emissary exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 0 "exitcode file"
    assert_same_bytes "$d/out" "$d/want" "console stdout vs seq 1 200000"
    assert_same_bytes "$ROOT/ctr/main/stdout" "$d/want" "ctr/main/stdout vs seq 1 200000"
    assert_combined "$ROOT/ctr/main/combined" "$d/want"
    assert_eq 0 "$(grep -c 'argo=true' "$ROOT/ctr/main/stdout" "$ROOT/ctr/main/combined" | awk -F: '{s += $2} END {print s + 0}')" "emissary log lines in the capture files"
}

# stdout closed (>&-): the console copy of stdout fails; the files get everything, once.
case_stdout_closed() {
    new_root
    local d=$ROOT/.. rc
    expected_seq "$d/want"
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em -- sh -c 'seq 1 200000; echo to-stderr >&2' >&- 2>"$d/err"
    rc=$?
    assert_eq 0 "$rc" "emissary exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 0 "exitcode file"
    assert_same_bytes "$ROOT/ctr/main/stdout" "$d/want" "ctr/main/stdout vs seq 1 200000"
    assert_combined "$ROOT/ctr/main/combined" "$d/want"
    assert_contains "$(cat "$d/err")" "to-stderr" "child's stderr on the console"
}

# stderr is a pipe with no reader: the emissary's own log line ("capturing logs", written by
# the main thread before the child starts) raises SIGPIPE in the emissary. That SIGPIPE is its
# own and must not be forwarded: the child (`sleep 0.5`, which would die of it: 141) lives.
case_own_sigpipe_not_forwarded() {
    local capture=$1
    new_root
    local d=$ROOT/.. rc
    ARGO_INCLUDE_SCRIPT_OUTPUT=$capture with_dead_pipe 2 env ARGOEXEC_VAR_RUN_ARGO="$ROOT" ARGOEXEC_TERMINATION_LOG="$TLOG" \
        timeout -s KILL 30 "$ARGOEXEC" emissary --loglevel debug -- sh -c 'sleep 0.5; echo alive' >"$d/out"
    rc=$?
    assert_eq 0 "$rc" "emissary exit code"
    assert_file_eq "$ROOT/ctr/main/exitcode" 0 "exitcode file"
    assert_file_eq "$d/out" "alive"$'\n' "console stdout"
}

run_case "epipe: console reader exits after one line: emissary 0, stdout file holds all of seq 1 200000" case_reader_exits_at_once
run_case "epipe: console pipe has no reader from the start: emissary 0, files complete" case_reader_gone_before_start
run_case "epipe: stderr closed (2>&-): emissary 0, files complete, no log line in them" case_stderr_closed
run_case "epipe: stdout closed (>&-): emissary 0, files complete" case_stdout_closed
run_case "epipe: own SIGPIPE (log to a dead stderr pipe) not forwarded, capture on" case_own_sigpipe_not_forwarded true
run_case "epipe: own SIGPIPE (log to a dead stderr pipe) not forwarded, capture off" case_own_sigpipe_not_forwarded false
finish
