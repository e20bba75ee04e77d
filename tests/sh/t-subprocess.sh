#!/usr/bin/env bash
# Upstream's "Sub-process" case: a background grandchild keeps the output pipes open long after
# the direct child exited; the step must end with the child (SPEC 3 step 8: at most 100 ms of
# draining), with everything the child wrote in the capture file.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCRIPT='(sleep 60; echo late)& printf hello'


case_capture_returns_fast() {
    new_root
    local t0 t1 rc
    t0=$(now_ms)
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em -- sh -c "$SCRIPT" >"$ROOT/../console" 2>"$ROOT/../err"
    rc=$?
    t1=$(now_ms)
    kill_marked # the orphaned (sleep 60; echo late), before it can write
    assert_eq 0 "$rc" "exit code"
    assert_le $((t1 - t0)) 1000 "elapsed ms"
    assert_file_eq "$ROOT/ctr/main/stdout" "hello" "ctr/main/stdout"
    assert_file_eq "$ROOT/ctr/main/combined" "hello" "ctr/main/combined"
    assert_file_eq "$ROOT/ctr/main/exitcode" "0" "exitcode"
    assert_file_eq "$ROOT/../console" "hello" "console stdout"
}

case_no_capture_returns_at_once() {
    new_root
    local t0 t1 rc
    t0=$(now_ms)
    em -- sh -c "$SCRIPT" >"$ROOT/../console" 2>"$ROOT/../err"
    rc=$?
    t1=$(now_ms)
    kill_marked # the orphaned (sleep 60; echo late), before it can write
    assert_eq 0 "$rc" "exit code"
    assert_le $((t1 - t0)) 1000 "elapsed ms"
    assert_file_eq "$ROOT/../console" "hello" "console stdout"
    assert_file_eq "$ROOT/ctr/main/exitcode" "0" "exitcode"
    assert_true "no capture files without capture" test ! -e "$ROOT/ctr/main/stdout" -a ! -e "$ROOT/ctr/main/combined"
}

run_case "sub-process: with capture, the step ends within 1 s, stdout file exactly 'hello'" case_capture_returns_fast
run_case "sub-process: without capture, the step ends at once" case_no_capture_returns_at_once
finish
