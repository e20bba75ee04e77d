#!/usr/bin/env bash
# Benchmarks the static argoexec against its peers (tini, dumb-init, catatonit, GNU tee, GNU tar +
# gzip, pigz) side by side in one run and prints ONE markdown table: medians over repeated runs,
# ratios ours/peer, the goal of each figure and whether it is met.
#
# Usage: scripts/bench.sh [--quick]
#   (default)  full sizes and counts; about 8 minutes on a 2-core machine
#   --quick    every row with tiny sizes and counts, well under a minute (run by scripts/test.sh)
# ARGOEXEC_BIN=path  benchmark that binary instead of building it with scripts/build.sh.
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
            sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
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
    SIG_N=50          # signal-file reactions
    IDLE_S=30         # idle seconds
    CAP_BYTES=$((2 << 30))
    CAP_REPS=7
    TREE_MB=500
    ART_REPS=2
    BIG_BYTES=$((1 << 30))
    ORPHANS=5000
    ORPH_REPS=3
    INIT_N=200
else
    START_N=50
    EXIT_N=30
    SIG_N=10
    IDLE_S=3
    CAP_BYTES=$((64 << 20))
    CAP_REPS=1
    TREE_MB=20
    ART_REPS=1
    BIG_BYTES=$((32 << 20))
    ORPHANS=500
    ORPH_REPS=1
    INIT_N=20
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
if ! gcc -O2 -o "$HELPER" scripts/bench/helper.c; then
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
    local f50 f99 e50 e99 fails t50 t99 tf
    read -r f50 f99 e50 e99 fails <<<"$out"
    read -r _ _ t50 t99 tf <<<"$peer"
    if [[ $fails != 0 || $f50 -lt 0 ]]; then
        row_failed "$fig" "$how" "$goal" "$fails runs without exitcode"
        return
    fi
    row "$fig" "$how" \
        "p50 $(fmt_ns "$f50"), p99 $(fmt_ns "$f99") (to the emissary's own exit: p50 $(fmt_ns "$e50"), p99 $(fmt_ns "$e99"))" \
        "tini -s, child to tini's exit: p50 $(fmt_ns "$t50"), p99 $(fmt_ns "$t99"): $(ratio "$f50" "$t50")" \
        "$goal" "$(yesno holds "$f50 < 1000000")"
}

# ---------------------------------------------------------------- 4. signal-file reaction

bench_signal() {
    local fig="signal-file reaction"
    local how="\`15\` renamed into ctr/main/signal at a random phase while the child sleeps, until the emissary has exited; $SIG_N runs"
    local goal="p99 < 50 ms"
    local root out ref
    root=$(new_root '{}') || return
    out=$(BENCH_READY=$WORK/ready ARGOEXEC_VAR_RUN_ARGO=$root timeout 600 "$HELPER" sigreact "$SIG_N" file \
        "$root/ctr/main" "$BIN" emissary -- "$HELPER" readysleep "$WORK/ready") ||
        { row_failed "$fig" "$how" "$goal" "helper failed"; return; }
    ref=$(BENCH_READY=$WORK/ready ARGOEXEC_VAR_RUN_ARGO=$root timeout 600 "$HELPER" sigreact "$SIG_N" kill \
        "$root/ctr/main" "$BIN" emissary -- "$HELPER" readysleep "$WORK/ready") || ref="-1 -1 -1 1"
    local p50 p99 mx fails r50 r99
    read -r p50 p99 mx fails <<<"$out"
    read -r r50 r99 _ _ <<<"$ref"
    if [[ $fails != 0 || $p50 -lt 0 ]]; then
        row_failed "$fig" "$how" "$goal" "$fails runs did not react within 10 s"
        return
    fi
    row "$fig" "$how" "p50 $(fmt_ns "$p50"), p99 $(fmt_ns "$p99"), max $(fmt_ns "$mx")" \
        "reference, SIGTERM sent to ours directly: p50 $(fmt_ns "$r50"), p99 $(fmt_ns "$r99"); upstream: 2 s poll (v4.0)" \
        "$goal" "$(yesno holds "$p99 < 50000000")"
}

# ---------------------------------------------------------------- 5. idle cost (+ memory at rest)

IDLE_HWM=-1
bench_idle() {
    local fig="idle cost"
    local how="CPU time (all threads' schedstat run time, sampled every 100 ms until exit) of \`X -- sleep $IDLE_S\`, all run at once"
    local goal="< 30 ms over 30 s"
    local root root2 p
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
    # Goal scaled to the measured time in --quick.
    local limit=$((30000000 * IDLE_S / 30)) peers="ours, capture off: $(fmt_ns "${cpu[ours-nocap]:--1}")"
    for n in tini dumb-init catatonit; do
        peers+="; $n $(fmt_ns "${cpu[$n]:--1}")"
    done
    row "$fig" "$how" "$(fmt_ns "${cpu[ours]}") (capture on)" "$peers" \
        "$goal$([[ $IDLE_S != 30 ]] && echo " (here $(fmt_ns $limit) over $IDLE_S s)")" \
        "$(yesno holds "${cpu[ours]} < $limit")"
}

# ---------------------------------------------------------------- 6/7. capture throughput and memory

CAP_HWM=-1
TEE_HWM=-1
CACHES_DROPPED=yes
# Empties the page cache (root only; elsewhere the runs still start after a sync).
drop_caches() {
    sync
    echo 3 2>/dev/null >/proc/sys/vm/drop_caches || CACHES_DROPPED=no
}

# One capture run, WHO (ours or tee) writing its two files into a fresh folder under BASE,
# after a sync and a drop of the page cache so that no run pays for the writeback of the one
# before. Prints "wall_ns vmhwm_kb"; fails when the run failed or a file came out short.
capture_run() { # WHO BASE
    local who=$1 d f1 f2 wall h c m st
    d=$(mktemp -d "$2/cap.XXXXXX") || return 1
    drop_caches
    if [[ $who == ours ]]; then
        printf '{}' >"$d/template"
        mkdir -p "$d/ctr/main"
        f1=$d/ctr/main/stdout f2=$d/ctr/main/combined
        ARGO_INCLUDE_SCRIPT_OUTPUT=true ARGOEXEC_VAR_RUN_ARGO=$d timeout 600 \
            "$HELPER" watch 20 "$WORK/cap.w" "$BIN" emissary -- head -c "$CAP_BYTES" /dev/zero \
            2>/dev/null | cat >/dev/null
    else
        f1=$d/f1 f2=$d/f2
        head -c "$CAP_BYTES" /dev/zero |
            timeout 600 "$HELPER" watch 20 "$WORK/cap.w" tee "$f1" "$f2" | cat >/dev/null
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
    local fig=$1 base=$3 size_h i who r w h t_ours=() t_tee=() h_ours=() h_tee=()
    size_h=$(awk -v b="$CAP_BYTES" 'BEGIN { if (b >= 2^30) printf "%d GiB", b / 2^30; else printf "%d MiB", b / 2^20 }')
    local how="\`head -c $size_h /dev/zero\` through the emissary, capture on (ctr/main/stdout + combined), console a pipe to \`cat\`; vs \`head \\| tee f1 f2 \\| cat\`; both writing fresh files $2; each run after \`sync\` and dropping the page cache; median of $CAP_REPS, interleaved, taking turns at going first"
    local goal="≥ 1.0x GNU tee"
    for ((i = 0; i < CAP_REPS; i++)); do
        for who in $( ((i % 2)) && echo tee ours || echo ours tee); do
            r=$(capture_run "$who" "$base") || { row_failed "$fig" "$how" "$goal" "$who: run failed or files incomplete"; return; }
            read -r w h <<<"$r"
            if [[ $who == ours ]]; then t_ours+=("$w") h_ours+=("$h"); else t_tee+=("$w") h_tee+=("$h"); fi
        done
    done
    [[ $CACHES_DROPPED == yes ]] || how+=" (the page cache could not be dropped here: not root)"
    local mo mt
    mo=$(median "${t_ours[@]}")
    mt=$(median "${t_tee[@]}")
    CAP_HWM=$(median "${h_ours[@]}")
    TEE_HWM=$(median "${h_tee[@]}")
    # The spread of the runs says how far to trust the medians.
    spread() { ((CAP_REPS > 1)) && printf '; runs %s to %s' "$(fmt_ns "$(printf '%s\n' "$@" | sort -n | head -n 1)")" \
        "$(fmt_ns "$(printf '%s\n' "$@" | sort -n | tail -n 1)")"; }
    row "$fig" "$how" "$(mibs "$CAP_BYTES" "$mo") ($(fmt_ns "$mo")$(spread "${t_ours[@]}"))" \
        "GNU tee $(mibs "$CAP_BYTES" "$mt") ($(fmt_ns "$mt")$(spread "${t_tee[@]}")): $(ratio "$mt" "$mo")" "$goal" \
        "$(yesno holds "$mt / $mo >= 1.0")"
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
        row "capture throughput, tmpfs" "the same on tmpfs" "skipped: no tmpfs at $shm with $((2 * CAP_BYTES >> 20)) MiB free" "" "≥ 1.0x GNU tee" "not measured"
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
        "GNU tee $(kib "$TEE_HWM"): $(ratio "$CAP_HWM" "$TEE_HWM")" "$goal" \
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
bench_artifact() {
    local fig="artifact throughput"
    local bytes
    log "copying a ~$TREE_MB MB tree from /usr"
    bytes=$(make_tree)
    local how="~$((bytes / 1000000)) MB mixed tree from /usr (cached) archived by the emissary (container main, \`/bin/true\`) vs GNU tar/gzip and pigz (2 threads) writing a file; median of $ART_REPS, interleaved; throughput ratio, size ratio"
    local goal="≥ 1.0x GNU tar+gzip at equal level, size within 2 %"
    if ((bytes <= 0)); then
        row_failed "$fig" "$how" "$goal" "could not copy a tree from /usr"
        return
    fi
    local -A cmd=(
        [gz6]="tar czf peer.tgz tree"
        [gz1]="tar cf - tree | gzip -1 > peer.tgz"
        [pigz6]="tar cf - tree | pigz -p 2 > peer.tgz"
        [pigz1]="tar cf - tree | pigz -p 2 -1 > peer.tgz"
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
    row "$fig" "$how" "$ours" "$peers" "$goal" "$met"
    rm -rf -- "$WORK/src/tree"
}

bench_artifact_memory() {
    local fig="artifact memory"
    local big_h
    big_h=$(awk -v b="$BIG_BYTES" 'BEGIN { if (b >= 2^30) printf "%d GiB", b / 2^30; else printf "%d MiB", b / 2^20 }')
    local how="peak RSS (VmHWM of the emissary, sampled every 20 ms) archiving one $big_h file (sparse, level 6); also the tree above"
    local goal="< 16 MiB"
    mkdir -p "$WORK/src" && truncate -s "$BIG_BYTES" "$WORK/src/big" ||
        { row_failed "$fig" "$how" "$goal" "cannot create the big file"; return; }
    local r p w h z pm
    r=$(ours_artifact "$WORK/src/big" 6) || { row_failed "$fig" "$how" "$goal" "emissary run failed"; return; }
    read -r w h z <<<"$r"
    p=$(peer_artifact "tar czf peer.tgz big") && read -r _ pm _ <<<"$p" || pm=-1
    rm -f "$WORK/src/big"
    local tree=""
    ((ART_TREE_HWM > 0)) && tree="; tree: $(kib "$ART_TREE_HWM")"
    row "$fig" "$how" "$(kib "$h") ($big_h file, $(fmt_ns "$w"))$tree" \
        "\`tar czf\` (max of tar, gzip) $(kib "$pm"): $(ratio "$h" "$pm")" "$goal" \
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
    for ((i = 0; i < ORPH_REPS; i++)); do
        for n in "${names[@]}"; do
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
    for n in "${names[@]}"; do
        # shellcheck disable=SC2086
        [[ -n ${res[$n]:-} ]] && res[$n]=$(median ${res[$n]}) || res[$n]=-1
    done
    fmt_clear() { if (($1 >= 999999999999)); then echo "> 10 s"; else fmt_ns "$1"; fi; }
    local peers=""
    for n in tini dumb-init catatonit; do
        peers+="${peers:+; }$n $(fmt_clear "${res[$n]}")"
    done
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
    if [[ ${fails[ours]:-1} != 0 || $st != 0 || $(stat -c %s "$root/argoexec" 2>/dev/null) != "$size" ]]; then
        row_failed "$fig" "$how" "$goal" "init failed or the copy differs in size"
        return
    fi
    row "$fig" "$how" \
        "$(fmt_ns "${med[ours]}"); $(commas "$wchar") B written in $syscw writes (binary $(commas "$size") B, +$((wchar - size)) B template and log)" \
        "\`cp\` $(fmt_ns "${med[cp]}"): $(ratio "${med[ours]}" "${med[cp]}")" "$goal" \
        "$(yesno holds "${med[ours]} < 5000000 && $wchar - $size < 4096")"
}

# ---------------------------------------------------------------- run and print

T0=$(date +%s)
log "mode $MODE, binary $BIN, work $WORK"
log "1/11 binary size";          bench_size
log "2/11 start+exit";           bench_start
log "3/11 exit latency";         bench_exit
log "4/11 signal file";          bench_signal
log "5/11 idle (${IDLE_S} s)";   bench_idle
log "6/11 capture";              bench_capture
log "7/11 capture memory";       bench_capture_memory
log "8/11 artifacts";            bench_artifact
log "9/11 artifact memory";      bench_artifact_memory
log "10/11 zombies";             bench_zombies
log "11/11 init";                bench_init

echo
echo "argoexec benchmark ($MODE mode), $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r), $(($(date +%s) - T0)) s"
echo
echo "| figure | how | ours | peers (ours/peer; speed ratios are peer time / our time) | goal | met |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
exit "$FAILED"
