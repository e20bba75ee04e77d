#!/usr/bin/env bash
# Benchmarks the static argoexec against its peers (upstream's own emissary, tini, dumb-init,
# catatonit, GNU tee, GNU tar + gzip, pigz) side by side in one run and prints ONE markdown table:
# medians over repeated runs, ratios ours/peer, the goal of each figure and whether it is met;
# then the per-pod cost table, ours vs upstream's emissary, and what it makes for a node of 110.
#
# Usage: scripts/bench.sh [--quick]
#   (default)  full sizes and counts; about 12 minutes on a 2-core machine
#   --quick    every row with tiny sizes and counts, well under a minute (run by scripts/test.sh)
# ARGOEXEC_BIN=path  benchmark that binary instead of building it with scripts/build.sh.
# BENCH_ONLY="4 6"  only those row groups (numbered as in the log); the per-pod table then
#            has only what they measured.
# ARGOEXEC_UPSTREAM_REF=path  upstream's emissary (default ../shared/upstream-emissary/
#            argoexec-upstream beside the repository); absent, its cells say "skipped".
#
# Exit status: 0 when every figure could be measured, whether or not its goal is met; 1 when a
# measurement could not be taken (its cell then says why); 2 on bad usage.
# Timings on a shared machine are noisy: compare the ratios, which come from runs interleaved
# or taken back to back in the same invocation.
set -uo pipefail

MODE=full
for a in "$@"; do
    case $a in
        --quick) MODE=quick ;;
        -h | --help)
            sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "bench.sh: unknown argument: $a (try --help)" >&2
            exit 2
            ;;
    esac
done

cd "$(dirname "$0")/.."
REPO=$PWD

if [[ $MODE == full ]]; then
    START_N=500       # start+exit runs per command
    EXIT_N=200        # exit-latency runs
    SIG_N=200         # signal-file reactions (and as many of each reference kind)
    SIG_BATCHES=4
    IDLE_S=30         # idle seconds
    CAP_BYTES=$((2 << 30))
    CAP_REPS=7
    DESIGN_REPS=3     # runs of each other capture design (helper capdesign)
    TREE_MB=500
    ART_REPS=2
    BIG_BYTES=$((1 << 30))
    ORPHANS=5000
    ORPH_REPS=3
    INIT_N=200
    UP_N=15           # runs of upstream's emissary where it is timed (it polls once a second)
    RAND_BYTES=$((1 << 30))
    COST_N=100        # start+exit runs whose CPU is summed for the per-pod table
else
    START_N=50
    EXIT_N=30
    SIG_N=10
    SIG_BATCHES=2
    IDLE_S=3
    CAP_BYTES=$((64 << 20))
    CAP_REPS=1
    DESIGN_REPS=1
    TREE_MB=20
    ART_REPS=1
    BIG_BYTES=$((32 << 20))
    ORPHANS=500
    ORPH_REPS=1
    INIT_N=20
    UP_N=3
    RAND_BYTES=$((32 << 20))
    COST_N=20
fi

log() { printf 'bench: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- set-up and clean-up

WORK=
SHM=
BG_PIDS=()
cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do
        # Each background job is the leader of its own session (setsid): end its whole group.
        kill -TERM -- "-$p" 2>/dev/null
    done
    for p in "${BG_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [[ -n $WORK && -d $WORK ]]; then
        rm -rf -- "$WORK"
    fi
    if [[ -n $SHM && -d $SHM ]]; then
        rm -rf -- "$SHM"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=lib/deps.sh
. scripts/lib/deps.sh
BENCH_DEBIAN_PACKAGES=(tini dumb-init catatonit pigz gzip tar coreutils util-linux gcc libc6-dev)

ensure_bench_deps() {
    local missing=()
    if command -v dpkg-query >/dev/null 2>&1; then
        mapfile -t missing < <(_deps_missing_packages "${BENCH_DEBIAN_PACKAGES[@]}")
    fi
    if ((${#missing[@]})); then
        log "installing: ${missing[*]}"
        apt-get update -qq >&2 || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >&2 || return 1
    fi
}

if ! ensure_bench_deps; then
    log "cannot install the benchmark's Debian packages; peers may be missing"
fi

# Work folder on the main disk (capture files and tee's files live side by side there).
WORK=$(mktemp -d /var/tmp/argoexec-bench.XXXXXX) || exit 1
HELPER=$WORK/helper
if ! gcc -O2 -pthread -o "$HELPER" scripts/bench/helper.c; then
    log "cannot compile scripts/bench/helper.c"
    exit 1
fi

# The shipped build is the product and what every row measures; the stable build is only
# weighed in the size row.
if [[ -n ${ARGOEXEC_BIN:-} ]]; then
    BIN=$(realpath "$ARGOEXEC_BIN")
else
    read -r BIN _ < <(scripts/build.sh --shipped 2>/dev/null | tail -n 1)
fi
STABLE_BIN=target/x86_64-unknown-linux-musl/release/argoexec
[[ -x $STABLE_BIN ]] || read -r STABLE_BIN _ < <(scripts/build.sh 2>/dev/null | tail -n 1)
if [[ -z ${BIN:-} || ! -x $BIN ]]; then
    log "no argoexec binary (scripts/build.sh failed?)"
    exit 1
fi
# Upstream's emissary, a peer wherever it applies; its cells say "skipped" without it.
UP=${ARGOEXEC_UPSTREAM_REF:-$REPO/../shared/upstream-emissary/argoexec-upstream}
if [[ -x $UP ]]; then
    UP=$(realpath "$UP")
else
    log "no upstream emissary at $UP (set ARGOEXEC_UPSTREAM_REF): its column is skipped"
    UP=
fi
UP_SKIP="upstream: skipped (no binary: set ARGOEXEC_UPSTREAM_REF)"
# Runs CMD... with upstream's emissary pointed at ROOT, as the controller would (container
# main, the template also in the environment, where upstream reads it).
up_env() { # ROOT CMD...
    local r=$1
    shift
    ARGO_CONTAINER_NAME=main ARGO_TEMPLATE="$(cat "$r/template")" ARGOEXEC_VAR_RUN_ARGO=$r \
        ARGOEXEC_TERMINATION_LOG=$r/termination-log "$@"
}
TINI=/usr/bin/tini
DUMB=/usr/bin/dumb-init
CATA=/usr/bin/catatonit

# ---------------------------------------------------------------- formatting

# Human-readable duration of N nanoseconds.
fmt_ns() {
    awk -v n="$1" 'BEGIN {
        if (n < 0) { print "n/a"; exit }
        if (n < 1e3) printf "%d ns", n
        else if (n < 1e6) printf "%.0f µs", n / 1e3
        else if (n < 1e9) printf "%.2f ms", n / 1e6
        else printf "%.2f s", n / 1e9 }'
}
# A / B as "1.23x" (two decimals).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", a / b }'; }
# Median of the numbers given as arguments (integer result).
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print -1; exit }
    if (NR % 2) printf "%.0f\n", v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Thousands separators.
commas() { printf '%d' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
# bytes_h BYTES: a whole number of GiB, or of MiB below one GiB, for a row's text.
bytes_h() { awk -v b="$1" 'BEGIN { if (b >= 2^30) printf "%d GiB", b / 2^30; else printf "%d MiB", b / 2^20 }'; }
kib() { awk -v k="$1" 'BEGIN { if (k >= 1024) printf "%.2f MiB", k / 1024; else printf "%d KiB", k }'; }
# Throughput of BYTES in NS as MiB/s.
mibs() { awk -v b="$1" -v n="$2" 'BEGIN { printf "%.0f MiB/s", b / 1048576 / (n / 1e9) }'; }
# True when awk expression $1 holds.
holds() { awk "BEGIN { exit !($1) }"; }

ROWS=()
FAILED=0
# row FIGURE HOW OURS PEERS GOAL MET
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); }
# A figure that could not be measured: the cell says why and the run fails.
row_failed() {
    row "$1" "$2" "n/a: $4" "" "$3" "not measured"
    FAILED=1
    log "FAILED to measure $1: $4"
}
yesno() { if "$@"; then echo yes; else echo "**no**"; fi; }

# A fresh emissary root holding TEMPLATE (JSON).
new_root() {
    local r
    r=$(mktemp -d "$WORK/root.XXXXXX") || return 1
    printf '%s' "$1" >"$r/template"
    mkdir -p "$r/ctr/main"
    printf '%s\n' "$r"
}

# ---------------------------------------------------------------- 1. binary size

bench_size() {
    local fig="binary size" how="bytes of the stripped static binaries (scripts/build.sh --shipped, and the stable build)"
    local goal="shipped ≤ 256 KiB (262,144 B); stable ≤ 640 KiB (655,360 B)"
    local size stable peers="" p name
    size=$(stat -c %s "$BIN") || { row_failed "$fig" "$how" "$goal" "cannot stat $BIN"; return; }
    stable=$(stat -c %s "$STABLE_BIN" 2>/dev/null || echo 0)
    for p in /usr/bin/tini-static "$CATA" "$DUMB"; do
        [[ -f $p ]] || continue
        name=${p##*/}
        local kind=static
        file -L "$p" 2>/dev/null | grep -q 'dynamically linked' && kind=dynamic
        peers+="${peers:+; }$name ($kind) $(commas "$(stat -c %s "$p")") B: $(ratio "$size" "$(stat -c %s "$p")")"
    done
    row "$fig" "$how" \
        "shipped $(commas "$size") B ($(((size + 1023) / 1024)) KiB); stable $(commas "$stable") B ($(((stable + 1023) / 1024)) KiB)" \
        "$peers" "$goal" \
        "$(yesno holds "$size <= 262144") shipped, $(yesno holds "$stable <= 655360") stable"
}

# ---------------------------------------------------------------- 2. start+exit overhead

bench_start() {
    local fig="start+exit overhead"
    local how="fork+exec+wait of \`X /bin/true\`, $START_N runs each interleaved, median minus bare \`/bin/true\`"
    local goal="overhead over bare ≤ tini's"
    local root out
    root=$(new_root '{}') || return
    out=$(ARGOEXEC_VAR_RUN_ARGO=$root timeout 300 "$HELPER" startexit "$START_N" \
        ours "$BIN" emissary -- /bin/true :: \
        tini "$TINI" -s -- /bin/true :: \
        dumb-init "$DUMB" /bin/true :: \
        catatonit "$CATA" -- /bin/true :: \
        bare /bin/true) || { row_failed "$fig" "$how" "$goal" "helper failed"; return; }
    local -A med fails
    local label p50 p10 p90 f
    while read -r label p50 p10 p90 f; do
        med[$label]=$p50
        fails[$label]=$f
    done <<<"$out"
    if [[ -z ${med[ours]:-} || ${fails[ours]} != 0 || ${fails[bare]} != 0 ]]; then
        row_failed "$fig" "$how" "$goal" "runs failed: $(echo "$out" | tr '\n' ' ')"
        return
    fi
    local bare=${med[bare]} ours=$((med[ours] - med[bare])) peers=""
    for label in tini dumb-init catatonit; do
        [[ ${fails[$label]:-1} == 0 ]] || { peers+="${peers:+; }$label: failed"; continue; }
        local over=$((med[$label] - bare))
        peers+="${peers:+; }$label +$(fmt_ns "$over"): $(ratio "$ours" "$over")"
    done
    peers+="; bare /bin/true $(fmt_ns "$bare")"
    if [[ -n $UP ]]; then
        local up uroot
        uroot=$(new_root '{}') || return
        up=$(up_env "$uroot" timeout 300 "$HELPER" startexit "$UP_N" upstream "$UP" emissary -- /bin/true |
            awk '$1 == "upstream" && $5 == 0 { print $2 }')
        if [[ -n $up ]]; then
            peers+="; upstream ($UP_N runs) +$(fmt_ns "$((up - bare))"): $(ratio "$ours" "$((up - bare))")"
        else
            peers+="; upstream: runs failed"
        fi
    else
        peers+="; $UP_SKIP"
    fi
    row "$fig" "$how" "+$(fmt_ns "$ours") ($(fmt_ns "${med[ours]}") in all)" "$peers" "$goal" \
        "$(yesno holds "$ours <= ${med[tini]} - $bare")"
}

# ---------------------------------------------------------------- 3. exit latency

bench_exit() {
    local fig="exit latency"
    local how="child stamps CLOCK_MONOTONIC as its last act; until \`exitcode\` is renamed into place (inotify), $EXIT_N runs"
    local goal="< 1 ms median"
    local root out peer
    root=$(new_root '{}') || return
    out=$(BENCH_STAMP=$WORK/stamp ARGOEXEC_VAR_RUN_ARGO=$root timeout 300 "$HELPER" exitlat "$EXIT_N" \
        "$root/ctr/main" "$BIN" emissary -- "$HELPER" stamp "$WORK/stamp") ||
        { row_failed "$fig" "$how" "$goal" "helper failed"; return; }
    peer=$(BENCH_STAMP=$WORK/stamp timeout 300 "$HELPER" exitlat "$EXIT_N" - \
        "$TINI" -s -- "$HELPER" stamp "$WORK/stamp") || peer="-1 -1 -1 -1 1"
    local f50 f99 e50 e99 fails t50 t99 tf up=$UP_SKIP
    read -r f50 f99 e50 e99 fails <<<"$out"
    read -r _ _ t50 t99 tf <<<"$peer"
    if [[ -n $UP ]]; then
        local uroot u50 u99 ue50 ue99 uf
        uroot=$(new_root '{}') || return
        if read -r u50 u99 ue50 ue99 uf < <(BENCH_STAMP=$WORK/stamp up_env "$uroot" timeout 300 "$HELPER" exitlat "$UP_N" \
            "$uroot/ctr/main" "$UP" emissary -- "$HELPER" stamp "$WORK/stamp") && [[ $uf == 0 ]]; then
            up="upstream ($UP_N runs): exitcode p50 $(fmt_ns "$u50"), its exit p50 $(fmt_ns "$ue50"): $(ratio "$f50" "$u50")"
        else
            up="upstream: runs failed"
        fi
    fi
    if [[ $fails != 0 || $f50 -lt 0 ]]; then
        row_failed "$fig" "$how" "$goal" "$fails runs without exitcode"
        return
    fi
    row "$fig" "$how" \
        "p50 $(fmt_ns "$f50"), p99 $(fmt_ns "$f99") (to the emissary's own exit: p50 $(fmt_ns "$e50"), p99 $(fmt_ns "$e99"))" \
        "tini -s, child to tini's exit: p50 $(fmt_ns "$t50"), p99 $(fmt_ns "$t99"): $(ratio "$f50" "$t50"); $up" \
        "$goal" "$(yesno holds "$f50 < 1000000")"
}

# ---------------------------------------------------------------- 4. signal-file reaction

# pct_of FILE Q [COL]: percentile Q (nearest rank) of column COL (default 1) of FILE; -1 if none.
pct_of() { awk -v c="${3:-1}" '{ print $c }' "$1" | sort -n | awk -v q="$2" '{ v[NR] = $1 } END {
    if (NR == 0) { print -1; exit }
    i = int((q * NR + 99) / 100); if (i < 1) i = 1; print v[i] }'; }

bench_signal() {
    local fig="signal-file reaction"
    local how="\`15\` renamed into ctr/main/signal at a random phase (0-25 ms) once the child sleeps, until the emissary has exited; $SIG_N runs in $SIG_BATCHES batches, interleaved with the two other kinds below; after a \`sync\`"
    local goal="p99 ≤ 10 ms"
    local root b kind fails=0 out
    root=$(new_root '{}') || return
    rm -f "$WORK"/sig.*
    sync
    # Three kinds, taking turns batch by batch so that a noisy moment of the machine falls on
    # all of them: the row's own (early in the step, the loop still on its tick), SIGTERM
    # sent directly (the machine's own tail: the child's death and the exits), and late in
    # the step (300 ms on, inotify watching).
    for ((b = 0; b < SIG_BATCHES; b++)); do
        for kind in file kill late; do
            out=$(BENCH_SAMPLES=$WORK/sig.$kind BENCH_PHASE_MS=$([[ $kind == late ]] && echo 300 || echo 0) \
                BENCH_READY=$WORK/ready ARGOEXEC_VAR_RUN_ARGO=$root timeout 600 "$HELPER" sigreact \
                $((SIG_N / SIG_BATCHES)) "$([[ $kind == kill ]] && echo kill || echo file)" \
                "$root/ctr/main" "$BIN" emissary -- "$HELPER" readysleep "$WORK/ready") ||
                { row_failed "$fig" "$how" "$goal" "helper failed"; return; }
            fails=$((fails + ${out##* }))
        done
    done
    local p50 p99 mx up=$UP_SKIP
    p50=$(pct_of "$WORK/sig.file" 50) p99=$(pct_of "$WORK/sig.file" 99) mx=$(pct_of "$WORK/sig.file" 100)
    if [[ -n $UP ]]; then
        local uroot u50 u99 umx uf
        uroot=$(new_root '{}') || return
        if read -r u50 u99 umx uf < <(BENCH_READY=$WORK/ready up_env "$uroot" timeout 600 "$HELPER" sigreact "$UP_N" file \
            "$uroot/ctr/main" "$UP" emissary -- "$HELPER" readysleep "$WORK/ready") && [[ $uf == 0 ]]; then
            up="upstream ($UP_N runs): p50 $(fmt_ns "$u50"), p99 $(fmt_ns "$u99"): $(ratio "$p50" "$u50")"
        else
            up="upstream: runs failed"
        fi
    fi
    if [[ $fails != 0 || $p50 -lt 0 ]]; then
        row_failed "$fig" "$how" "$goal" "$fails runs did not react within 10 s"
        return
    fi
    # p50/p99/max of column COL of kind K's samples.
    dist() { echo "p50 $(fmt_ns "$(pct_of "$WORK/sig.$1" 50 "$2")"), p99 $(fmt_ns "$(pct_of "$WORK/sig.$1" 99 "$2")"), max $(fmt_ns "$(pct_of "$WORK/sig.$1" 100 "$2")")"; }
    local peers="reference, SIGTERM sent to ours directly: $(dist kill 1); ours 300 ms into the step (inotify watching): to \`exitcode\` $(dist late 2), to the emissary's exit $(dist late 1) (its exit waits for the kernel to tear its inotify watches down); "
    row "$fig" "$how" "p50 $(fmt_ns "$p50"), p99 $(fmt_ns "$p99"), max $(fmt_ns "$mx") (to \`exitcode\`: $(dist file 2))" "$peers$up" \
        "$goal" "$(yesno holds "$p99 <= 10000000")"
}

# ---------------------------------------------------------------- 5. idle cost (+ memory at rest)

IDLE_HWM=-1
IDLE_CPU=-1
UP_IDLE_HWM=-1
UP_IDLE_CPU=-1
bench_idle() {
    local fig="idle cost"
    local how="CPU time (all threads' schedstat run time, sampled every 100 ms until exit) of \`X -- sleep $IDLE_S\`, all run at once"
    local goal="< 30 ms over 30 s, and ≤ tini's"
    local root root2 root3 p
    root=$(new_root '{}') || return
    root2=$(new_root '{}') || return
    local -a names=(ours ours-nocap tini dumb-init catatonit) pids=()
    ARGO_INCLUDE_SCRIPT_OUTPUT=true ARGOEXEC_VAR_RUN_ARGO=$root \
        setsid "$HELPER" watch 100 "$WORK/idle.ours" "$BIN" emissary -- sleep "$IDLE_S" 2>/dev/null &
    pids+=($!)
    ARGOEXEC_VAR_RUN_ARGO=$root2 \
        setsid "$HELPER" watch 100 "$WORK/idle.ours-nocap" "$BIN" emissary -- sleep "$IDLE_S" 2>/dev/null &
    pids+=($!)
    setsid "$HELPER" watch 100 "$WORK/idle.tini" "$TINI" -s -- sleep "$IDLE_S" &
    pids+=($!)
    setsid "$HELPER" watch 100 "$WORK/idle.dumb-init" "$DUMB" sleep "$IDLE_S" &
    pids+=($!)
    setsid "$HELPER" watch 100 "$WORK/idle.catatonit" "$CATA" -- sleep "$IDLE_S" &
    pids+=($!)
    if [[ -n $UP ]]; then
        root3=$(new_root '{}') || return
        names+=(upstream)
        ARGO_INCLUDE_SCRIPT_OUTPUT=true up_env "$root3" \
            setsid "$HELPER" watch 100 "$WORK/idle.upstream" "$UP" emissary -- sleep "$IDLE_S" 2>/dev/null &
        pids+=($!)
    fi
    BG_PIDS+=("${pids[@]}")
    for p in "${pids[@]}"; do wait "$p"; done
    BG_PIDS=()
    local -A cpu hwm
    local n wall h c maxrss st
    for n in "${names[@]}"; do
        if read -r wall h c maxrss st <"$WORK/idle.$n" 2>/dev/null && ((c >= 0)); then
            cpu[$n]=$c
            hwm[$n]=$h
        fi
    done
    if [[ -z ${cpu[ours]:-} ]]; then
        row_failed "$fig" "$how" "$goal" "no CPU sample of the emissary (schedstat missing?)"
        return
    fi
    IDLE_HWM=${hwm[ours]}
    IDLE_CPU=${cpu[ours]}
    UP_IDLE_HWM=${hwm[upstream]:--1}
    UP_IDLE_CPU=${cpu[upstream]:--1}
    # Goal scaled to the measured time in --quick.
    local limit=$((30000000 * IDLE_S / 30)) peers="ours, capture off: $(fmt_ns "${cpu[ours-nocap]:--1}")"
    for n in tini dumb-init catatonit; do
        peers+="; $n $(fmt_ns "${cpu[$n]:--1}")"
    done
    if [[ -n $UP ]]; then
        peers+="; upstream, capture on $(fmt_ns "$UP_IDLE_CPU"): $(ratio "${cpu[ours]}" "$UP_IDLE_CPU")"
    else
        peers+="; $UP_SKIP"
    fi
    row "$fig" "$how" "$(fmt_ns "${cpu[ours]}") (capture on)" "$peers" \
        "$goal$([[ $IDLE_S != 30 ]] && echo " (here $(fmt_ns $limit) over $IDLE_S s)")" \
        "$(yesno holds "${cpu[ours]} < $limit && ${cpu[ours]} <= ${cpu[tini]:-0}")"
}

# ---------------------------------------------------------------- 6/7. capture throughput and memory

CAP_HWM=-1
TEE_HWM=-1
UP_CAP_HWM=-1
CACHES_DROPPED=yes
# Empties the page cache (root only; elsewhere the runs still start after a sync).
drop_caches() {
    sync
    echo 3 2>/dev/null >/proc/sys/vm/drop_caches || CACHES_DROPPED=no
}

# One capture run, WHO (ours, upstream, tee, or a design of helper capdesign) writing its two files into a fresh folder under BASE,
# after a sync and a drop of the page cache so that no run pays for the writeback of the one
# before. Prints "wall_ns vmhwm_kb"; fails when the run failed or a file came out short.
capture_run() { # WHO BASE
    local who=$1 d f1 f2 wall h c m st
    d=$(mktemp -d "$2/cap.XXXXXX") || return 1
    drop_caches
    if [[ $who == upstream ]]; then
        printf '{}' >"$d/template"
        mkdir -p "$d/ctr/main"
        f1=$d/ctr/main/stdout f2=$d/ctr/main/combined
        ARGO_INCLUDE_SCRIPT_OUTPUT=true up_env "$d" timeout 600 \
            "$HELPER" watch 20 "$WORK/cap.w" "$UP" emissary -- head -c "$CAP_BYTES" /dev/zero \
            2>/dev/null | cat >/dev/null
    elif [[ $who == ours ]]; then
        printf '{}' >"$d/template"
        mkdir -p "$d/ctr/main"
        f1=$d/ctr/main/stdout f2=$d/ctr/main/combined
        ARGO_INCLUDE_SCRIPT_OUTPUT=true ARGOEXEC_VAR_RUN_ARGO=$d timeout 600 \
            "$HELPER" watch 20 "$WORK/cap.w" "$BIN" emissary -- head -c "$CAP_BYTES" /dev/zero \
            2>/dev/null | cat >/dev/null
    else
        # GNU tee or a design of helper capdesign, writing F1 F2; the floor reads nothing.
        local cmd=("$HELPER" capdesign "$who") src=(head -c "$CAP_BYTES" /dev/zero)
        [[ $who == tee ]] && cmd=(tee)
        [[ $who == floor ]] && src=(true)
        f1=$d/f1 f2=$d/f2
        "${src[@]}" | BENCH_BYTES=$CAP_BYTES timeout 600 "$HELPER" watch 20 "$WORK/cap.w" "${cmd[@]}" "$f1" "$f2" |
            cat >/dev/null
    fi
    read -r wall h c m st <"$WORK/cap.w" && [[ $st == 0 ]] &&
        [[ $(stat -c %s "$f1" 2>/dev/null) == "$CAP_BYTES" && $(stat -c %s "$f2" 2>/dev/null) == "$CAP_BYTES" ]] &&
        echo "$wall $h"
    st=$?
    rm -rf -- "$d"
    return $st
}

# The capture row on the file system of BASE: ours and GNU tee interleaved, taking turns at
# going first, CAP_REPS times each; medians.
capture_row() { # FIG FS_WORDS BASE
    local fig=$1 base=$3 size_h i who r w h t_ours=() t_tee=() h_ours=() h_tee=() t_up=() h_up=()
    size_h=$(bytes_h "$CAP_BYTES")
    local how="\`head -c $size_h /dev/zero\` through the emissary, capture on (ctr/main/stdout + combined), console a pipe to \`cat\`; vs \`head \\| tee f1 f2 \\| cat\`; both writing fresh files $2; each run after \`sync\` and dropping the page cache; median of $CAP_REPS, interleaved, taking turns at going first"
    local goal="≥ 2.0x GNU tee"
    local -A t_design=()
    for ((i = 0; i < CAP_REPS; i++)); do
        for who in $( ((i % 2)) && echo tee ours || echo ours tee) $([[ -n $UP ]] && ((i == 0)) && echo upstream) \
            $( ((i < DESIGN_REPS)) && echo zerocopy threads floor); do
            r=$(capture_run "$who" "$base") || { row_failed "$fig" "$how" "$goal" "$who: run failed or files incomplete"; return; }
            read -r w h <<<"$r"
            case $who in
                ours) t_ours+=("$w") h_ours+=("$h") ;;
                tee) t_tee+=("$w") h_tee+=("$h") ;;
                upstream) t_up+=("$w") h_up+=("$h") ;;
                *) t_design[$who]+=" $w" ;;
            esac
        done
    done
    [[ $CACHES_DROPPED == yes ]] || how+=" (the page cache could not be dropped here: not root)"
    local mo mt
    mo=$(median "${t_ours[@]}")
    mt=$(median "${t_tee[@]}")
    CAP_HWM=$(median "${h_ours[@]}")
    TEE_HWM=$(median "${h_tee[@]}")
    local up=$UP_SKIP
    if ((${#t_up[@]})); then
        local mu
        mu=$(median "${t_up[@]}")
        UP_CAP_HWM=$(median "${h_up[@]}")
        up="upstream (${#t_up[@]} runs) $(mibs "$CAP_BYTES" "$mu"): $(ratio "$mu" "$mo")"
    fi
    # The spread of the runs says how far to trust the medians.
    spread() { ((CAP_REPS > 1)) && printf '; runs %s to %s' "$(fmt_ns "$(printf '%s\n' "$@" | sort -n | head -n 1)")" \
        "$(fmt_ns "$(printf '%s\n' "$@" | sort -n | tail -n 1)")"; }
    # The other designs of helper capdesign, each against the same tee runs: what zero copy and
    # writer threads would give here, and the floor (the two files alone) that bounds them all.
    local designs="" dn dm
    for dn in zerocopy threads floor; do
        # shellcheck disable=SC2086 # the runs are a space-separated list
        dm=$(median ${t_design[$dn]})
        designs+="; $(case $dn in zerocopy) echo "tee(2)+splice(2) zero copy" ;; threads) echo "a writer thread per file" ;;
            floor) echo "the two files alone, nothing read (floor)" ;; esac) $(mibs "$CAP_BYTES" "$dm"): $(ratio "$mt" "$dm")"
    done
    row "$fig" "$how" "$(mibs "$CAP_BYTES" "$mo") ($(fmt_ns "$mo")$(spread "${t_ours[@]}"))" \
        "GNU tee $(mibs "$CAP_BYTES" "$mt") ($(fmt_ns "$mt")$(spread "${t_tee[@]}")): $(ratio "$mt" "$mo"); $up; other designs of the capture (helper capdesign, $DESIGN_REPS runs each, ratios to the same tee)$designs" "$goal" \
        "$(yesno holds "$mt / $mo >= 2.0")"
}

bench_capture() {
    # On disk the figure is also the page cache's and the disk's (writeback of 4 GiB per run),
    # on tmpfs only the copy's own: both (the memory row takes the last of them).
    capture_row "capture throughput" "on the same disk file system" "$WORK"
    local shm=/dev/shm avail
    avail=$(df -k --output=avail "$shm" 2>/dev/null | tail -n 1)
    if [[ $(stat -f -c %T "$shm" 2>/dev/null) == tmpfs ]] && ((${avail:-0} * 1024 > 2 * CAP_BYTES + (256 << 20))) &&
        SHM=$(mktemp -d "$shm/argoexec-bench.XXXXXX"); then
        capture_row "capture throughput, tmpfs" "on tmpfs ($shm)" "$SHM"
    else
        row "capture throughput, tmpfs" "the same on tmpfs" "skipped: no tmpfs at $shm with $((2 * CAP_BYTES >> 20)) MiB free" "" "≥ 2.0x GNU tee" "not measured"
    fi
}

bench_capture_memory() {
    local fig="capture memory"
    local how="peak RSS (VmHWM of the emissary alone, sampled every 20/100 ms) during the capture above, and during the idle sleep"
    local goal="< 4 MiB and < 1 MiB"
    if ((CAP_HWM <= 0 || IDLE_HWM <= 0)); then
        row_failed "$fig" "$how" "$goal" "no VmHWM sample (capture or idle row failed)"
        return
    fi
    row "$fig" "$how" "$(kib "$CAP_HWM") capturing; $(kib "$IDLE_HWM") sleeping" \
        "GNU tee $(kib "$TEE_HWM"): $(ratio "$CAP_HWM" "$TEE_HWM"); $( ((UP_CAP_HWM > 0)) && echo "upstream $(kib "$UP_CAP_HWM"): $(ratio "$CAP_HWM" "$UP_CAP_HWM")" || echo "$UP_SKIP"); upstream sleeping $(kib "$UP_IDLE_HWM")" "$goal" \
        "$(yesno holds "$CAP_HWM < 4096 && $IDLE_HWM < 1024")"
}

# ---------------------------------------------------------------- 8/9. artifacts

# Copies a mixed subset of /usr (docs, man pages, locales, Python, gcc, Perl, vim, shared
# libraries) of about TREE_MB MB into $WORK/src/tree, an equal share from each.
make_tree() {
    local target=$((TREE_MB * 1000 * 1000)) total=0 got c b
    local -a cands=(/usr/share/doc /usr/share/man /usr/share/locale /usr/lib/python3.11
        /usr/lib/gcc /usr/share/perl /usr/share/vim /usr/lib/x86_64-linux-gnu)
    local left=${#cands[@]}
    mkdir -p "$WORK/src/tree" || return 1
    : >"$WORK/tree.list"
    for c in "${cands[@]}"; do
        b=$(((target - total) / left))
        left=$((left - 1))
        [[ -d $c ]] || continue
        find "$c" -xdev \( -type f -o -type d -o -type l \) -printf '%s %p\n' 2>/dev/null |
            awk -v b="$b" '{ s = $1; sub(/^[0-9]+ /, ""); if (tot + s > b) next; tot += s; print }
                           END { print tot + 0 > "/dev/stderr" }' \
                >>"$WORK/tree.list" 2>"$WORK/tree.got"
        got=$(cat "$WORK/tree.got")
        total=$((total + got))
    done
    tar -cf - --no-recursion -P -T "$WORK/tree.list" 2>/dev/null | tar -xf - -C "$WORK/src/tree" 2>/dev/null
    find "$WORK/src/tree" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

# Runs the emissary once on an artifact template; prints "wall_ns vmhwm_kb size".
ours_artifact() { # SRC LEVEL
    local src=$1 level=$2 root out wall h c m st
    root=$(new_root "{\"outputs\":{\"artifacts\":[{\"name\":\"a\",\"path\":\"$src\",\"archive\":{\"tar\":{\"compressionLevel\":$level}}}]}}") || return 1
    ARGOEXEC_VAR_RUN_ARGO=$root timeout 900 "$HELPER" watch 20 "$WORK/art.w" "$BIN" emissary -- /bin/true \
        2>/dev/null || return 1
    read -r wall h c m st <"$WORK/art.w" || return 1
    out=$root/outputs/artifacts/${src#/}.tgz
    [[ $st == 0 && -f $out ]] || return 1
    echo "$wall $h $(stat -c %s "$out")"
    rm -rf -- "$root"
}

# Upstream's emissary once on the same template; prints "wall_ns vmhwm_kb size".
up_artifact() { # SRC LEVEL
    local src=$1 level=$2 root out wall h c m st
    root=$(new_root "{\"outputs\":{\"artifacts\":[{\"name\":\"a\",\"path\":\"$src\",\"archive\":{\"tar\":{\"compressionLevel\":$level}}}]}}") || return 1
    up_env "$root" timeout 900 "$HELPER" watch 20 "$WORK/art.w" "$UP" emissary -- /bin/true 2>/dev/null || return 1
    read -r wall h c m st <"$WORK/art.w" || return 1
    out=$(find "$root/outputs" -name '*.tgz' 2>/dev/null | head -n 1)
    [[ $st == 0 && -f $out ]] || return 1
    echo "$wall $h $(stat -c %s "$out")"
    rm -rf -- "$root"
}

# Runs a shell pipeline once (cwd = the tree's parent, $WORK/src) writing peer.tgz there;
# prints "wall_ns maxrss_kb size" (maxrss: the largest of the pipeline's processes).
peer_artifact() { # PIPELINE
    local wall h c m st
    (cd "$WORK/src" && timeout 900 "$HELPER" watch 20 "$WORK/art.w" sh -c "$1") || return 1
    read -r wall h c m st <"$WORK/art.w" || return 1
    [[ $st == 0 && -f $WORK/src/peer.tgz ]] || return 1
    echo "$wall $m $(stat -c %s "$WORK/src/peer.tgz")"
    rm -f "$WORK/src/peer.tgz"
}

ART_TREE_HWM=-1
UP_ART_HWM=-1
bench_artifact() {
    local fig="artifact throughput"
    local bytes
    log "copying a ~$TREE_MB MB tree from /usr"
    bytes=$(make_tree)
    local how="~$((bytes / 1000000)) MB mixed tree from /usr (cached) archived by the emissary (container main, \`/bin/true\`) vs GNU tar/gzip and pigz ($(nproc) threads, all CPUs as ours) writing a file; median of $ART_REPS, interleaved; throughput ratio, size ratio"
    local goal="≥ 1.0x GNU tar+gzip at equal level, size within 2 %"
    if ((bytes <= 0)); then
        row_failed "$fig" "$how" "$goal" "could not copy a tree from /usr"
        return
    fi
    local -A cmd=(
        [gz6]="tar czf peer.tgz tree"
        [gz1]="tar cf - tree | gzip -1 > peer.tgz"
        [pigz6]="tar cf - tree | pigz -p $(nproc) > peer.tgz"
        [pigz1]="tar cf - tree | pigz -p $(nproc) -1 > peer.tgz"
    )
    local -A t s
    local -a order=(ours6 gz6 ours1 gz1 pigz6 pigz1)
    local i k r w x z
    for ((i = 0; i < ART_REPS; i++)); do
        for k in "${order[@]}"; do
            case $k in
                ours*) r=$(ours_artifact "$WORK/src/tree" "${k#ours}") ;;
                *) r=$(peer_artifact "${cmd[$k]}") ;;
            esac || { row_failed "$fig" "$how" "$goal" "run $k failed"; return; }
            read -r w x z <<<"$r"
            t[$k]+="$w "
            s[$k]=$z
            [[ $k == ours6 ]] && ART_TREE_HWM=$x
        done
    done
    for k in "${order[@]}"; do
        # shellcheck disable=SC2086
        t[$k]=$(median ${t[$k]})
    done
    local ours="L6 $(mibs "$bytes" "${t[ours6]}"), $(commas "${s[ours6]}") B; L1 $(mibs "$bytes" "${t[ours1]}"), $(commas "${s[ours1]}") B"
    local peers="\`tar czf\` (L6) $(mibs "$bytes" "${t[gz6]}"): $(ratio "${t[gz6]}" "${t[ours6]}") speed, $(ratio "${s[ours6]}" "${s[gz6]}") size"
    peers+="; \`tar\\|gzip -1\` $(mibs "$bytes" "${t[gz1]}"): $(ratio "${t[gz1]}" "${t[ours1]}") speed, $(ratio "${s[ours1]}" "${s[gz1]}") size"
    peers+="; \`tar\\|pigz\` (L6) $(mibs "$bytes" "${t[pigz6]}"): $(ratio "${t[pigz6]}" "${t[ours6]}") speed, $(ratio "${s[ours6]}" "${s[pigz6]}") size"
    peers+="; \`tar\\|pigz -1\` $(mibs "$bytes" "${t[pigz1]}"): $(ratio "${t[pigz1]}" "${t[ours1]}") speed, $(ratio "${s[ours1]}" "${s[pigz1]}") size"
    local met
    met=$(yesno holds "${t[gz6]} >= ${t[ours6]} && ${t[gz1]} >= ${t[ours1]} && ${s[ours6]} <= 1.02 * ${s[gz6]} && ${s[ours1]} <= 1.02 * ${s[gz1]}")
    local up=$UP_SKIP ur uw uh uz
    if [[ -n $UP ]]; then
        if ur=$(up_artifact "$WORK/src/tree" 6); then
            read -r uw uh uz <<<"$ur"
            UP_ART_HWM=$uh
            up="upstream (L6, 1 run) $(mibs "$bytes" "$uw"): $(ratio "$uw" "${t[ours6]}") speed, $(ratio "${s[ours6]}" "$uz") size"
        else
            up="upstream: run failed"
        fi
    fi
    row "$fig" "$how" "$ours" "$peers; $up" "$goal" "$met"
    # The next limit: pigz on the same CPUs, at level 6.
    row "artifact throughput vs pigz" "the L6 runs above against \`tar\|pigz -6 -p $(nproc)\`" \
        "L6 $(mibs "$bytes" "${t[ours6]}"), $(commas "${s[ours6]}") B" \
        "pigz -6 $(mibs "$bytes" "${t[pigz6]}"), $(commas "${s[pigz6]}") B: $(ratio "${t[pigz6]}" "${t[ours6]}") speed, $(ratio "${s[ours6]}" "${s[pigz6]}") size" \
        "≥ 1.0x pigz -6, size within 1 %" \
        "$(yesno holds "${t[pigz6]} >= ${t[ours6]} && ${s[ours6]} <= 1.01 * ${s[pigz6]}")"
    rm -rf -- "$WORK/src/tree"
}

# Artifacts that do not compress: a file of random bytes, ours (level 6) against pigz -6 on
# the same CPUs; size against the input.
bench_artifact_random() {
    local fig="artifact throughput, incompressible"
    local rand_h
    rand_h=$(bytes_h "$RAND_BYTES")
    local how="one $rand_h file of random bytes (cached) archived at level 6 by the emissary vs \`tar\|pigz -6 -p $(nproc)\`; median of $ART_REPS, interleaved"
    local goal="≥ 5x pigz -6, size ≤ input + 0.1 %"
    mkdir -p "$WORK/src" && head -c "$RAND_BYTES" /dev/urandom >"$WORK/src/rand" ||
        { row_failed "$fig" "$how" "$goal" "cannot write the random file"; return; }
    local i r w h z to=() tp=() so sp
    for ((i = 0; i < ART_REPS; i++)); do
        r=$(ours_artifact "$WORK/src/rand" 6) || { row_failed "$fig" "$how" "$goal" "emissary run failed"; return; }
        read -r w h so <<<"$r"
        to+=("$w")
        r=$(peer_artifact "tar cf - rand | pigz -p $(nproc) -6 > peer.tgz") || { row_failed "$fig" "$how" "$goal" "pigz run failed"; return; }
        read -r w h sp <<<"$r"
        tp+=("$w")
    done
    local mo mp up=$UP_SKIP uw uh uz ur
    mo=$(median "${to[@]}")
    mp=$(median "${tp[@]}")
    if [[ -n $UP ]]; then
        if ur=$(up_artifact "$WORK/src/rand" 6); then
            read -r uw uh uz <<<"$ur"
            up="upstream (1 run) $(mibs "$RAND_BYTES" "$uw"), $(commas "$uz") B: $(ratio "$uw" "$mo") speed"
        else
            up="upstream: run failed"
        fi
    fi
    rm -f "$WORK/src/rand"
    row "$fig" "$how" "$(mibs "$RAND_BYTES" "$mo"), $(commas "$so") B (input + $(awk -v a="$so" -v b="$RAND_BYTES" 'BEGIN { printf "%.3f", (a - b) * 100 / b }') %)" \
        "pigz -6 $(mibs "$RAND_BYTES" "$mp"), $(commas "$sp") B: $(ratio "$mp" "$mo") speed; $up" "$goal" \
        "$(yesno holds "$mp >= 5 * $mo && $so <= 1.001 * $RAND_BYTES")"
}

bench_artifact_memory() {
    local fig="artifact memory"
    local big_h
    big_h=$(bytes_h "$BIG_BYTES")
    local how="peak RSS (VmHWM of the emissary, sampled every 20 ms) archiving one $big_h file (sparse, level 6); also the tree above"
    local goal="< 16 MiB"
    mkdir -p "$WORK/src" && truncate -s "$BIG_BYTES" "$WORK/src/big" ||
        { row_failed "$fig" "$how" "$goal" "cannot create the big file"; return; }
    local r p w h z pm
    r=$(ours_artifact "$WORK/src/big" 6) || { row_failed "$fig" "$how" "$goal" "emissary run failed"; return; }
    read -r w h z <<<"$r"
    p=$(peer_artifact "tar czf peer.tgz big") && read -r _ pm _ <<<"$p" || pm=-1
    local up=$UP_SKIP ur
    if [[ -n $UP ]]; then
        ur=$(up_artifact "$WORK/src/big" 6) && up="upstream $(kib "$(awk '{ print $2 }' <<<"$ur")"), tree $(kib "$UP_ART_HWM")" ||
            up="upstream: run failed"
    fi
    rm -f "$WORK/src/big"
    local tree=""
    ((ART_TREE_HWM > 0)) && tree="; tree: $(kib "$ART_TREE_HWM")"
    row "$fig" "$how" "$(kib "$h") ($big_h file, $(fmt_ns "$w"))$tree" \
        "\`tar czf\` (max of tar, gzip) $(kib "$pm"): $(ratio "$h" "$pm"); $up" "$goal" \
        "$(yesno holds "$h < 16384 && ($ART_TREE_HWM < 16384)")"
}

# ---------------------------------------------------------------- 10. zombie reaping

bench_zombies() {
    local fig="zombie reaping"
    local how="as PID 1 (\`unshare -p -f --mount-proc\`), the child double-forks $ORPHANS orphans that exit at once, then scans /proc every 0.5 ms: time from the last spawn until no process but PID 1 and itself; median of $ORPH_REPS"
    local goal="all reaped within 1 s of death"
    local root i n w spawned clear maxleft to
    root=$(new_root '{}') || return
    local -A res
    local -a names=(ours tini dumb-init catatonit)
    local -A wrap=([ours]="$BIN emissary --" [tini]="$TINI -s --" [dumb-init]="$DUMB" [catatonit]="$CATA --")
    [[ -n $UP ]] && wrap[upstream]="env ARGO_CONTAINER_NAME=main ARGO_TEMPLATE={} ARGOEXEC_TERMINATION_LOG=$root/termination-log $UP emissary --"
    for ((i = 0; i < ORPH_REPS; i++)); do
        # Upstream once: it may not reap at all, and each such run waits out the 10 s.
        for n in "${names[@]}" $([[ -n $UP ]] && ((i == 0)) && echo upstream); do
            rm -f "$WORK/orph"
            # shellcheck disable=SC2086
            ARGOEXEC_VAR_RUN_ARGO=$root timeout 120 unshare -p -f --mount-proc \
                ${wrap[$n]} "$HELPER" orphans "$ORPHANS" 10000 "$WORK/orph" >/dev/null 2>&1
            if read -r spawned clear maxleft to <"$WORK/orph" 2>/dev/null && ((spawned == ORPHANS)); then
                ((to)) && clear=999999999999
                res[$n]+="$clear "
            fi
        done
    done
    if [[ -z ${res[ours]:-} ]]; then
        row_failed "$fig" "$how" "$goal" "the orphan run failed (unshare needs root)"
        return
    fi
    for n in "${names[@]}" upstream; do
        # shellcheck disable=SC2086
        [[ -n ${res[$n]:-} ]] && res[$n]=$(median ${res[$n]}) || res[$n]=-1
    done
    fmt_clear() { if (($1 >= 999999999999)); then echo "> 10 s"; else fmt_ns "$1"; fi; }
    local peers=""
    for n in tini dumb-init catatonit; do
        peers+="${peers:+; }$n $(fmt_clear "${res[$n]}")"
    done
    if [[ -z $UP ]]; then
        peers+="; $UP_SKIP"
    elif ((res[upstream] < 0)); then
        peers+="; upstream (1 run): failed"
    else
        peers+="; upstream (1 run) $(fmt_clear "${res[upstream]}")"
    fi
    row "$fig" "$how" "$(fmt_clear "${res[ours]}") ($ORPHANS orphans)" "$peers" "$goal" \
        "$(yesno holds "${res[ours]} < 1000000000")"
}

# ---------------------------------------------------------------- 11. init copy

bench_init() {
    local fig="init copy"
    local how="\`argoexec init\` (ARGO_TEMPLATE='{}', temp root) wall time, median of $INIT_N interleaved with \`cp\` of the binary; bytes written = wchar of /proc/PID/io at exit"
    local goal="< 5 ms, and bytes ≈ the binary's size"
    local root out size
    root=$(mktemp -d "$WORK/init.XXXXXX") || return
    size=$(stat -c %s "$BIN")
    out=$(ARGO_TEMPLATE='{}' ARGOEXEC_VAR_RUN_ARGO=$root timeout 300 "$HELPER" startexit "$INIT_N" \
        ours "$BIN" init :: cp cp "$BIN" "$root/cp-copy") ||
        { row_failed "$fig" "$how" "$goal" "helper failed"; return; }
    local -A med fails
    local label p50 p10 p90 f
    while read -r label p50 p10 p90 f; do
        med[$label]=$p50
        fails[$label]=$f
    done <<<"$out"
    local wall wchar syscw st
    ARGO_TEMPLATE='{}' ARGOEXEC_VAR_RUN_ARGO=$root "$HELPER" iocount "$WORK/init.io" "$BIN" init
    read -r wall wchar syscw st <"$WORK/init.io"
    INIT_WCHAR=$wchar
    if [[ ${fails[ours]:-1} != 0 || $st != 0 || $(stat -c %s "$root/argoexec" 2>/dev/null) != "$size" ]]; then
        row_failed "$fig" "$how" "$goal" "init failed or the copy differs in size"
        return
    fi
    row "$fig" "$how" \
        "$(fmt_ns "${med[ours]}"); $(commas "$wchar") B written in $syscw writes (binary $(commas "$size") B, +$((wchar - size)) B template and log)" \
        "\`cp\` $(fmt_ns "${med[cp]}"): $(ratio "${med[ours]}" "${med[cp]}")" "$goal" \
        "$(yesno holds "${med[ours]} < 5000000 && $wchar - $size < 4096")"
}

# ---------------------------------------------------------------- 12. per-pod cost

INIT_WCHAR=-1
# CPU (user + system, ms resolution) of N sequential runs of CMD and its children, in ns:
# bash's \`times\` after the loop.
cpu_of_runs() { # N CMD...
    bash -c 'n=$1; shift; for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 </dev/null; done; times' _ "$@" |
        tail -n 1 | awk '{ t = 0; for (f = 1; f <= 2; f++) { split($f, a, "m"); sub(/s/, "", a[2]); t += a[1] * 60 + a[2] }
                           printf "%.0f\n", t * 1e9 }'
}

COST_ROWS=()
bench_cost() {
    local root uroot bare ours up=-1
    root=$(new_root '{}') || return
    bare=$(cpu_of_runs "$COST_N" /bin/true)
    ours=$(ARGOEXEC_VAR_RUN_ARGO=$root cpu_of_runs "$COST_N" "$BIN" emissary -- /bin/true)
    local up_n=$((UP_N < COST_N ? UP_N : COST_N))
    if [[ -n $UP ]]; then
        uroot=$(new_root '{}') || return
        up=$(up_env "$uroot" cpu_of_runs "$up_n" "$UP" emissary -- /bin/true)
        up=$(((up - bare * up_n / COST_N) / up_n))
    fi
    ours=$(((ours - bare) / COST_N))
    local usize=-1
    [[ -n $UP ]] && usize=$(stat -c %s "$UP")
    # Per pod, and for a node of 110 (Kubernetes' default pod limit), one step per pod.
    cost() { # LABEL OURS UPSTREAM FORMAT(ns|kib|b|idle)
        local f=$4 o u o110 u110
        fmtv() { case $f in ns | idle) fmt_ns "$1" ;; kib) kib "$1" ;; b) echo "$(commas "$1") B" ;; esac; }
        o=$(fmtv "$2")
        o110=$(fmtv "$(($2 * 110))")
        if (($3 < 0)); then u="skipped" u110=""; else u=$(fmtv "$3") u110=$(fmtv "$(($3 * 110))"); fi
        [[ $f == idle ]] && o110+=" ($(awk -v n="$(($2 * 110))" 'BEGIN { printf "%.3f", n / 30e9 * 100 }') % of a CPU)" &&
            [[ -n $u110 ]] && u110+=" ($(awk -v n="$(($3 * 110))" 'BEGIN { printf "%.3f", n / 30e9 * 100 }') % of a CPU)"
        COST_ROWS+=("| $1 | $o | $u | $o110 | $u110 |")
    }
    cost "bytes \`init\` copies into the pod (the binary)" "$INIT_WCHAR" "$usize" b
    cost "RSS of an idle emissary (VmHWM, capture on)" "$IDLE_HWM" "$UP_IDLE_HWM" kib
    cost "CPU of one \`X /bin/true\` start+exit (minus /bin/true; $COST_N runs, upstream $up_n)" "$ours" "$up" ns
    # The idle row ran IDLE_S seconds: scaled to 30 s.
    local io=$((IDLE_CPU * 30 / IDLE_S)) iu=-1
    ((UP_IDLE_CPU >= 0)) && iu=$((UP_IDLE_CPU * 30 / IDLE_S))
    cost "CPU of a 30 s idle step, capture on$([[ $IDLE_S != 30 ]] && echo " (from $IDLE_S s)")" "$io" "$iu" idle
}

# ---------------------------------------------------------------- run and print

T0=$(date +%s)
log "mode $MODE, binary $BIN, work $WORK"
# step N NAME FN: row group N of 13, unless BENCH_ONLY names other groups.
step() {
    [[ -z ${BENCH_ONLY:-} || " $BENCH_ONLY " == *" $1 "* ]] || return 0
    log "$1/13 $2"
    "$3"
}
step 1 'binary size' bench_size
step 2 start+exit bench_start
step 3 'exit latency' bench_exit
step 4 'signal file' bench_signal
step 5 "idle (${IDLE_S} s)" bench_idle
step 6 capture bench_capture
step 7 'capture memory' bench_capture_memory
step 8 artifacts bench_artifact
step 9 'artifact memory' bench_artifact_memory
step 10 zombies bench_zombies
step 11 init bench_init
step 12 'incompressible artifact' bench_artifact_random
step 13 'per-pod cost' bench_cost

echo
echo "argoexec benchmark ($MODE mode), $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r), $(($(date +%s) - T0)) s"
echo
echo "| figure | how | ours | peers (ours/peer; speed ratios are peer time / our time) | goal | met |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Per-pod cost, ours vs upstream's emissary ($([[ -n $UP ]] && echo "the reference build: emissary and kill only, $(commas "$(stat -c %s "$UP")") B; the published image's argoexec, which \`init\` copies in a real pod, is ~100 MB" || echo "$UP_SKIP")), and for a node running 110 steps:"
echo
echo "| per pod | ours | upstream | ours, 110 pods | upstream, 110 pods |"
echo "|---|---|---|---|---|"
printf '%s\n' "${COST_ROWS[@]}"
exit "$FAILED"
