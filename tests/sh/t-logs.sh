#!/usr/bin/env bash
# The emissary's own log lines (SPEC 4): stderr only, `argo=true`, text or JSON, filtered by
# --loglevel, never in the capture files; and the modes of the files it makes (SPEC 2), whatever
# the caller's umask.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY=/usr/bin/python3
CHILD='printf "out-1\n"; printf "err-1\n" >&2; printf "out-2\n"'

case_json_lines() {
    new_root
    local d=$ROOT/.. rc
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em --log-format json -- sh -c 'printf hello' >"$d/out" 2>"$d/err"
    rc=$?
    assert_eq 0 "$rc" "exit code"
    local verdict
    verdict=$("$PY" -c '
import json, re, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
msgs = []
for l in lines:
    try:
        o = json.loads(l)
    except ValueError:
        print("not JSON: %r" % l); sys.exit()
    if not isinstance(o, dict):
        print("not an object: %r" % l); sys.exit()
    if o.get("argo") is not True:
        print("argo is not true: %r" % l); sys.exit()
    for k in ("level", "msg", "time"):
        if not isinstance(o.get(k), str) or not o[k]:
            print("no %s: %r" % (k, l)); sys.exit()
    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", o["time"]):
        print("odd time: %r" % o["time"]); sys.exit()
    msgs.append(o["msg"])
if "capturing logs" not in msgs:
    print("no capturing logs line among %r" % msgs); sys.exit()
print("ok %d" % len(lines))' "$d/err")
    assert_eq ok "${verdict%% *}" "JSON log lines (${verdict})"
    assert_file_eq "$d/out" "hello" "console stdout"
}

case_text_lines() {
    new_root
    local d=$ROOT/.. rc bad
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em -- sh -c 'printf hello' >"$d/out" 2>"$d/err"
    rc=$?
    assert_eq 0 "$rc" "exit code"
    assert_true "a 'capturing logs' line in text format" \
        grep -Eq '^time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z level=INFO msg="capturing logs" argo=true' "$d/err"
    bad=$(grep -v 'argo=true' "$d/err")
    assert_eq "" "$bad" "stderr lines without argo=true"
}

case_loglevel_error() {
    new_root
    local d=$ROOT/.. rc
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em --loglevel error -- sh -c 'printf hello' >"$d/out" 2>"$d/err"
    rc=$?
    assert_eq 0 "$rc" "exit code"
    assert_not_contains "$(cat "$d/err")" "capturing logs" "stderr at --loglevel error"
    assert_not_contains "$(cat "$d/err")" "level=INFO" "stderr at --loglevel error"
    assert_file_eq "$ROOT/ctr/main/stdout" "hello" "ctr/main/stdout"
}

# Debug level, both formats: the capture files hold the child's bytes and nothing else.
case_no_log_in_capture() {
    local fmt=$1
    new_root
    local d=$ROOT/.. rc
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em --loglevel debug --log-format "$fmt" -- sh -c "$CHILD" >"$d/out" 2>"$d/err"
    rc=$?
    assert_eq 0 "$rc" "exit code"
    assert_file_eq "$ROOT/ctr/main/stdout" $'out-1\nout-2\n' "ctr/main/stdout"
    # The two streams race into combined; the bytes are the child's three lines, in some order
    # that keeps out-1 before out-2.
    assert_eq $'err-1\nout-1\nout-2' "$(sort "$ROOT/ctr/main/combined")" "ctr/main/combined, sorted"
    assert_eq 18 "$(stat -c %s "$ROOT/ctr/main/combined")" "ctr/main/combined size"
    assert_eq $'out-1\nout-2' "$(grep out "$ROOT/ctr/main/combined")" "stdout order in combined"
    assert_file_eq "$d/out" $'out-1\nout-2\n' "console stdout (no log line there either)"
    assert_true "log lines on stderr" grep -q 'argo' "$d/err"
}

# umask 077 in the calling shell changes nothing: ctr/main 0777, exitcode 0644, capture
# files 0666; the child runs with umask 0, as upstream.
case_modes_under_umask_077() {
    new_root
    local d=$ROOT/.. rc
    umask 077
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em -- sh -c 'umask' >"$d/out" 2>"$d/err"
    rc=$?
    assert_eq 0 "$rc" "exit code"
    assert_mode "$ROOT/ctr/main" 0777 "ctr/main"
    assert_mode "$ROOT/ctr/main/exitcode" 0644 "ctr/main/exitcode"
    assert_mode "$ROOT/ctr/main/stdout" 0666 "ctr/main/stdout"
    assert_mode "$ROOT/ctr/main/combined" 0666 "ctr/main/combined"
    assert_file_eq "$ROOT/ctr/main/stdout" "0000"$'\n' "the child's umask"
}

# A ctr/main that already exists is left as it is (SPEC 3 step 2).
case_existing_dir_left_alone() {
    new_root
    local d=$ROOT/.. rc
    mkdir -p "$ROOT/ctr/main" && chmod 0750 "$ROOT/ctr/main"
    em -- true >"$d/out" 2>"$d/err"
    rc=$?
    assert_eq 0 "$rc" "exit code"
    assert_mode "$ROOT/ctr/main" 0750 "pre-existing ctr/main"
    assert_file_eq "$ROOT/ctr/main/exitcode" 0 "exitcode file"
}

run_case "logs: --log-format json gives JSON lines with argo:true, level, msg, time" case_json_lines
run_case "logs: text lines are time=... level=... msg=... argo=true" case_text_lines
run_case "logs: --loglevel error hides 'capturing logs'" case_loglevel_error
run_case "logs: no emissary line in ctr/main/stdout or combined (text, debug)" case_no_log_in_capture text
run_case "logs: no emissary line in ctr/main/stdout or combined (json, debug)" case_no_log_in_capture json
run_case "modes: ctr/main 0777, exitcode 0644, stdout/combined 0666 under umask 077; child umask 0" case_modes_under_umask_077
run_case "modes: an existing ctr/main keeps its mode" case_existing_dir_left_alone
finish
