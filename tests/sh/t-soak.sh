#!/usr/bin/env bash
# Load over time: a storm of 10,000 signals at the emissary, and a soak in which the child
# writes random bursts to stdout and stderr while the signal file and SIGUSR1 bursts keep
# coming. Every byte must reach the capture files, and the emissary must not grow (fds, RSS).
#
#   SOAK_SECONDS   how long the soak's child writes (default 20; 600 for the long run)
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY=/usr/bin/python3
SOAK_SECONDS=${SOAK_SECONDS:-20}

# fds PID, rss PID: the emissary's open descriptors, and its resident set in kB.
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
children() { cat "/proc/$1/task/$1/children" 2>/dev/null; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# A child that counts USR1, USR2 and WINCH and, on TERM, writes the counts to $1 and exits 42.
COUNTER='
import os, signal, sys, time
c = {"USR1": 0, "USR2": 0, "WINCH": 0}
def count(n, _): c[signal.Signals(n).name[3:]] += 1
for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH):
    signal.signal(s, count)
def term(n, _):
    with open(sys.argv[1], "w") as f:
        f.write(" ".join("%s=%d" % kv for kv in sorted(c.items())))
    os._exit(42)
signal.signal(signal.SIGTERM, term)
open(sys.argv[1] + ".ready", "w").close()
while True:
    time.sleep(0.01)
'

# 10,000 USR1/USR2/WINCH (none of them a termination signal) as fast as they can be sent:
# the emissary survives without growing, the child got each kind, the exit code is its own.
case_signal_storm_10000() {
    new_root
    D=$ROOT/..
    em_bg -- "$PY" -c "$COUNTER" "$D/counts" >"$D/out" 2>"$D/err"
    assert_true "child started" wait_until 10 test -e "$D/counts.ready" || return
    # The emissary arms its one inotify instance once a wait has lasted 200 ms: count the fds
    # after that, so the baseline holds every fd it keeps.
    sleep 0.4
    local fd0 rss0 fd1 rss1
    fd0=$(fds "$EM_PID") rss0=$(rss "$EM_PID")
    "$PY" -c '
import os, signal, sys
pid = int(sys.argv[1]); kinds = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)
n = 0
for i in range(10000):
    os.kill(pid, kinds[i % 3]); n += 1
print(n)' "$EM_PID" >"$D/sent" 2>&1
    assert_eq 10000 "$(cat "$D/sent")" "signals sent (the emissary stayed alive)"
    sleep 0.3
    assert_ne "" "$(proc_state "$EM_PID")" "emissary alive after the storm"
    fd1=$(fds "$EM_PID") rss1=$(rss "$EM_PID")
    assert_eq "$fd0" "$fd1" "open fds before and after"
    assert_le "$((rss1 - rss0))" 1024 "RSS growth in kB ($rss0 -> $rss1)"
    kill -TERM "$EM_PID"
    em_wait 10
    assert_eq 42 "$EM_RC" "exit code (the child's)"
    assert_file_eq "$ROOT/ctr/main/exitcode" 42 "exitcode"
    local counts
    counts=$(cat "$D/counts" 2>/dev/null)
    echo "    (child counted: $counts)"
    [[ $counts =~ ^USR1=([0-9]+)\ USR2=([0-9]+)\ WINCH=([0-9]+)$ ]] || { assert_eq "USR1=N USR2=N WINCH=N" "$counts" "counts"; return; }
    local k
    for k in 1 2 3; do
        assert_true "child got every kind ($counts)" test "${BASH_REMATCH[$k]}" -ge 1
    done
}

# The soak's child: random bursts (1 B to 16 KiB, about 1 MB/s) on stdout in the alphabet a-p plus newline
# and on stderr in A-P plus tab, so each stream is recoverable from `combined` by its bytes;
# a copy of each stream goes to reference files. It traps SIGUSR1 and counts it.
WRITER='
import os, random, signal, sys, time
secs, out_ref, err_ref, counts = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
got = [0]
def usr1(n, _): got[0] += 1
signal.signal(signal.SIGUSR1, usr1)
open(counts + ".ready", "w").close()
lower = bytes(b"abcdefghijklmnop\n"[i % 17] for i in range(256))
upper = bytes(b"ABCDEFGHIJKLMNOP\t"[i % 17] for i in range(256))
refs = {1: open(out_ref, "wb"), 2: open(err_ref, "wb")}
rnd = random.Random(int(sys.argv[5]))
def write_all(fd, b):
    while b:
        b = b[os.write(fd, b):]
end = time.time() + secs
bursts = 0
while time.time() < end:
    fd = 1 if rnd.random() < 0.6 else 2
    data = os.urandom(rnd.randint(1, 16384)).translate(lower if fd == 1 else upper)
    write_all(fd, data)
    refs[fd].write(data)
    bursts += 1
    time.sleep(rnd.random() * 0.02)
for f in refs.values():
    f.close()
# From here SIGUSR1 is ignored: Python resets the signals it handles to their default
# action while it shuts down, and one of the bursts arriving then would kill the child.
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
with open(counts, "w") as f:
    f.write("bursts=%d usr1=%d" % (bursts, got[0]))
'

# split_check COMBINED OUT ERR: the bytes of each alphabet in COMBINED are exactly OUT and ERR.
SPLIT_CHECK='
import sys
comb, out, err = (open(p, "rb").read() for p in sys.argv[1:4])
lo = b"abcdefghijklmnop\n"
o = comb.translate(None, bytes(b for b in range(256) if b not in lo))
e = comb.translate(None, lo)
bad = []
if len(comb) != len(out) + len(err): bad.append("size %d != %d + %d" % (len(comb), len(out), len(err)))
if o != out: bad.append("stdout part differs")
if e != err: bad.append("stderr part differs")
print("; ".join(bad) or "ok")
'

case_soak() {
    new_root
    D=$ROOT/..
    local seed=$RANDOM
    ARGO_INCLUDE_SCRIPT_OUTPUT=true em_bg -- "$PY" -c "$WRITER" "$SOAK_SECONDS" \
        "$D/out.ref" "$D/err.ref" "$D/counts" "$seed" >"$D/console-out" 2>"$D/console-err"
    # Signals only once the child traps SIGUSR1 (before, it would die of it, rightly).
    assert_true "child started" wait_until 10 test -e "$D/counts.ready" || return
    local fd_samples=() rss_samples=() next=$(($(now_ms) + 1000)) sigfiles=0 bursts=0 i
    while [[ -n $(proc_state "$EM_PID") && $(proc_state "$EM_PID") != Z ]]; do
        if [[ ! -e $ROOT/ctr/main/signal ]]; then
            printf 10 >"$ROOT/ctr/main/signal.new" && mv "$ROOT/ctr/main/signal.new" "$ROOT/ctr/main/signal" &&
                sigfiles=$((sigfiles + 1))
        fi
        for ((i = 0; i < 20; i++)); do kill -USR1 "$EM_PID" 2>/dev/null || break; done
        bursts=$((bursts + 1))
        if (($(now_ms) >= next)); then
            local fd_now rss_now
            fd_now=$(fds "$EM_PID") rss_now=$(rss "$EM_PID")
            # A sample taken once the child has gone sees the emissary closing its pipes on the
            # way out, or an empty /proc entry: not a sample of the steady state.
            if ((fd_now > 0)) && [[ -n $rss_now && -n $(children "$EM_PID") ]]; then
                fd_samples+=("$fd_now")
                rss_samples+=("$rss_now")
            fi
            next=$((next + 1000))
        fi
        sleep 0.05
    done
    em_wait $((SOAK_SECONDS + 30))
    assert_eq 0 "$EM_RC" "exit code ($(grep '^Error' "$D/console-err"))"
    assert_file_eq "$ROOT/ctr/main/exitcode" 0 "exitcode"
    echo "    (seed $seed; child: $(cat "$D/counts" 2>/dev/null); $sigfiles signal files, $bursts bursts of 20 SIGUSR1)"
    echo "    (emissary fds over time: ${fd_samples[*]}; VmRSS kB: ${rss_samples[*]})"
    assert_same_bytes "$ROOT/ctr/main/stdout" "$D/out.ref" "stdout file vs what the child wrote"
    assert_same_bytes "$D/console-out" "$D/out.ref" "console stdout vs what the child wrote"
    assert_eq ok "$("$PY" -c "$SPLIT_CHECK" "$ROOT/ctr/main/combined" "$D/out.ref" "$D/err.ref")" "combined = stdout and stderr interleaved"
    assert_true "the child got SIGUSR1 ($(cat "$D/counts" 2>/dev/null))" grep -qE 'usr1=[1-9]' "$D/counts"
    assert_eq 0 "$(grep -c 'ignoring signal file' "$D/console-err")" "signal-file warnings"
    # Growth: from the second sample (threads and buffers set up) to the last.
    local n=${#fd_samples[@]}
    if ((n >= 3)); then
        local f min=999999 max=0
        for f in "${fd_samples[@]:1}"; do
            ((f < min)) && min=$f
            ((f > max)) && max=$f
        done
        assert_eq "$min" "$max" "emissary fd count stays constant (${fd_samples[*]})"
        assert_le "$((rss_samples[n - 1] - rss_samples[1]))" 1024 "VmRSS growth in kB (${rss_samples[1]} -> ${rss_samples[n - 1]})"
    else
        assert_true "enough samples ($n)" false
    fi
}

run_case "storm: 10,000 USR1/USR2/WINCH: emissary alive and not grown, child got each, exit 42" case_signal_storm_10000
run_case "soak: ${SOAK_SECONDS}s of random bursts, signal files and SIGUSR1 bursts: every byte captured, no growth" case_soak
finish
