//! Byte-exact capture (issue #14; SPEC sections 2 and 3 step 8): `ctr/main/stdout`, `combined`
//! and the console under stdout and stderr written at the same time by two processes, in
//! random write sizes from 1 byte to three pipes' worth, across retries, onto files that already
//! hold bytes, with stdout closed early and with a grandchild that keeps the pipes.
//!
//! The test writes each stream's bytes and its write sizes ("the plan") into the root first; a
//! small Python writer only replays them (one `write(2)` per planned write, the stdout writer and
//! the stderr writer in two processes), so the references are the test's own. The two streams
//! use disjoint byte sets: stdout `a`..`p` and `\n`, stderr `0x80`..`0x90` (never ASCII, so the
//! emissary's own log lines, which share the console's stderr, can be told apart); bytes a
//! grandchild adds use a third set. `combined` split by byte set must give each stream exactly.
//!
//! Whole writes in `combined`: a write of at most `PIPE_BUF` bytes lands in the pipe whole
//! (the kernel's atomic write), and the emissary reads a pipe in chunks of 64 KiB, at least all a
//! kernel-default pipe holds, and writes each chunk to `combined` whole under one lock. So such
//! a write is never split by the other stream's bytes in `combined`; a split one means a chunk
//! was torn or a read cut short. That needs pipes of at most 64 KiB (checked first: on a kernel
//! with 64 KiB pages a default pipe holds 1 MiB, and the check is skipped, said loudly).
//! Upstream's emissary does split such writes (Go's `io.Copy` reads 32 KiB, half a pipe, and
//! the other stream's chunk can land between the halves): run against it, only this check fails.
//!
//! Every emissary run is bounded: a hang fails the test instead of holding it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// How long one emissary run may take on a loaded machine (each takes well under a second).
const LIMIT: Duration = Duration::from_secs(15);

/// stdout's bytes: `a`..`p` and `\n`.
const OUT_SET: &[u8] = b"abcdefghijklmnop\n";
/// A grandchild's stdout bytes, outside both sets.
const OUT_NOISE: u8 = b'z';
/// A grandchild's stderr bytes, outside both sets.
const ERR_NOISE: u8 = 0xfe;

fn err_set() -> Vec<u8> {
    (0x80..=0x90).collect()
}

/// Which set each byte value is in: 1 stdout's, 2 stderr's, 0 neither (a lookup, as the
/// checks go over megabytes in an unoptimised test build).
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < OUT_SET.len() {
        t[OUT_SET[i] as usize] = 1;
        i += 1;
    }
    let mut b = 0x80;
    while b <= 0x90 {
        t[b] = 2;
        b += 1;
    }
    t
};

fn is_out(b: u8) -> bool {
    CLASS[b as usize] == 1
}

fn is_err(b: u8) -> bool {
    CLASS[b as usize] == 2
}

/// The writer. argv: plan folder, tag (`attempt`: count attempts in the folder, use plan
/// `a<n>`, exit 7 before the third), mode (`concurrent`, `close-early`, `grandchild`).
/// stdout's writer is this process, stderr's a fork; each holds only its own stream.
const WRITER: &str = r#"
import os, sys, time
d, tag, mode = sys.argv[1], sys.argv[2], sys.argv[3]
def note_pid():
    with open(os.path.join(d, 'pids'), 'a') as f:
        f.write('%d\n' % os.getpid())
note_pid()
rc = 0
if tag == 'attempt':
    p = os.path.join(d, 'attempt')
    n = int(open(p).read()) + 1 if os.path.exists(p) else 1
    with open(p, 'w') as f:
        f.write(str(n))
    tag, rc = 'a%d' % n, (7 if n < 3 else 0)
def wait_for(name):
    end = time.time() + 10
    while not os.path.exists(os.path.join(d, name)) and time.time() < end:
        time.sleep(0.002)
def load(name):
    data = memoryview(open(os.path.join(d, tag + name), 'rb').read())
    sizes = [int(s) for s in open(os.path.join(d, tag + name + '.sizes')).read().split()]
    return data, sizes
def pump(fd, plan, pause_at=None):
    data, sizes = plan
    off = 0
    for i, n in enumerate(sizes):
        if i == pause_at:
            wait_for('out-closed')
        end = off + n
        while off < end:
            off += os.write(fd, data[off:end])
    assert off == len(data)
# Both plans loaded first, so that the two writers start at the same moment.
out, err = load('.out'), load('.err')
pid = os.fork()
if pid == 0:
    code = 3
    try:
        os.close(1)
        # close-early: the last quarter of stderr only once stdout has been closed.
        pump(2, err, len(err[1]) * 3 // 4 if mode == 'close-early' else None)
        code = 0
    finally:
        os._exit(code)
pump(1, out)
if mode == 'close-early':
    os.close(1)
    open(os.path.join(d, 'out-closed'), 'w').close()
_, st = os.waitpid(pid, 0)
if st != 0:
    rc = 3
if mode == 'grandchild':
    if os.fork() == 0:
        note_pid()
        with open(os.path.join(d, 'gc.pid'), 'w') as f:
            f.write('%d' % os.getpid())
        end = time.time() + 30
        try:
            while time.time() < end:
                os.write(1, b'z')
                os.write(2, b'\xfe')
                if not os.path.exists(os.path.join(d, 'gc-writing')):
                    open(os.path.join(d, 'gc-writing'), 'w').close()
                time.sleep(0.001)
        except OSError:
            pass
        os._exit(0)
    # The child exits only once the grandchild is writing.
    wait_for('gc-writing')
os._exit(rc)
"#;

/// Python for the writer, `None` (said loudly) when there is none.
fn python() -> Option<String> {
    let py = if Path::new("/usr/bin/python3").is_file() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    match Command::new(py).args(["-c", "1"]).output() {
        Ok(o) if o.status.success() => Some(py.to_string()),
        _ => {
            eprintln!("SKIPPED: python3 is not available to write the test's output");
            None
        }
    }
}

/// One stream's bytes and the sizes of the writes that carry them, in order.
struct Plan {
    data: Vec<u8>,
    sizes: Vec<usize>,
}

/// xorshift64: deterministic, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `len` bytes from `set` in writes of random sizes: tiny (1-16), up to `PIPE_BUF` (atomic),
/// up to a pipe (64 KiB), and beyond it (up to 192 KiB, split by the kernel).
fn plan(len: usize, seed: u64, set: &[u8]) -> Plan {
    let mut rng = Rng::new(seed);
    let data = (0..len)
        .map(|_| set[rng.below(set.len() as u64) as usize])
        .collect();
    let mut sizes = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = match rng.below(20) {
            0..=3 => 1 + rng.below(16),
            4..=12 => 17 + rng.below(4096 - 16),
            13..=17 => 4097 + rng.below(65536 - 4096),
            _ => 65537 + rng.below(128 << 10),
        } as usize;
        let n = n.min(left);
        sizes.push(n);
        left -= n;
    }
    Plan { data, sizes }
}

/// The stdout and stderr plans of one run of the writer.
struct Pair {
    out: Plan,
    err: Plan,
}

fn pair(out_len: usize, err_len: usize, seed: u64) -> Pair {
    Pair {
        out: plan(out_len, seed * 2, OUT_SET),
        err: plan(err_len, seed * 2 + 1, &err_set()),
    }
}

/// The folder the writer reads its plans from (inside the root, removed with it).
fn plans(r: &Root) -> PathBuf {
    r.path("plans")
}

fn save(r: &Root, tag: &str, p: &Pair) {
    let d = plans(r);
    std::fs::create_dir_all(&d).unwrap();
    for (name, plan) in [("out", &p.out), ("err", &p.err)] {
        std::fs::write(d.join(format!("{tag}.{name}")), &plan.data).unwrap();
        let sizes: Vec<String> = plan.sizes.iter().map(|n| n.to_string()).collect();
        std::fs::write(d.join(format!("{tag}.{name}.sizes")), sizes.join("\n")).unwrap();
    }
}

/// The emissary running the writer on plan `tag` in `mode`.
fn writer(r: &Root, py: &str, tag: &str, mode: &str) -> Command {
    let d = plans(r).display().to_string();
    let mut c = r.emissary(&[py, "-c", WRITER, &d, tag, mode]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// What one bounded run gave.
struct Ran {
    status: ExitStatus,
    took: Duration,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Ran {
    fn log(&self) -> String {
        String::from_utf8_lossy(&self.err).into_owned()
    }
}

/// SIGKILLs every process the writer noted in the root (a hung run's leftovers).
fn kill_writers(r: &Root) {
    let pids = std::fs::read_to_string(plans(r).join("pids")).unwrap_or_default();
    for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        if pid <= 1 {
            continue;
        }
        // SAFETY: a signal to a process this test's writer started; ESRCH is fine.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Runs `c`, reading its console, for at most `LIMIT`; a run still going then is killed,
/// with its writers, and the test fails.
fn run_limited(r: &Root, mut c: Command) -> Ran {
    let start = Instant::now();
    let mut child = c.spawn().expect("spawning argoexec");
    drop(c);
    let read_bg = |mut src: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            src.read_to_end(&mut v).expect("reading the console");
            v
        })
    };
    let out = read_bg(Box::new(child.stdout.take().unwrap()));
    let err = read_bg(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting") {
            break st;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            kill_writers(r);
            panic!("the emissary did not end within {LIMIT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    Ran {
        status,
        took,
        out: out.join().unwrap(),
        err: err.join().unwrap(),
    }
}

/// Asserts `got == want` without printing megabytes: lengths and the first differing offset.
fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: {} bytes, want {}; first difference at offset {at} (got {:?}, want {:?})",
        got.len(),
        want.len(),
        got.get(at..(at + 16).min(got.len())),
        want.get(at..(at + 16).min(want.len())),
    );
}

/// A stream taken apart by byte set, in one pass.
struct Split {
    out: Vec<u8>,
    err: Vec<u8>,
    /// The bytes in neither set (a grandchild's, the emissary's log lines).
    other: Vec<u8>,
    /// Where it switched between stdout's and stderr's bytes (the others skipped): stdout's
    /// and stderr's offsets there, and whether stdout was the one that stopped.
    switches: Vec<(usize, usize, bool)>,
}

fn split(bytes: &[u8]) -> Split {
    let mut s = Split {
        out: Vec::with_capacity(bytes.len()),
        err: Vec::with_capacity(bytes.len()),
        other: Vec::new(),
        switches: Vec::new(),
    };
    let mut last = 0;
    for &b in bytes {
        let class = CLASS[b as usize];
        if class == 0 {
            s.other.push(b);
            continue;
        }
        if last != class && last != 0 {
            s.switches.push((s.out.len(), s.err.len(), last == 1));
        }
        last = class;
        if class == 1 { &mut s.out } else { &mut s.err }.push(b);
    }
    s
}

/// The plans of several attempts or runs, one after the other, as one plan.
fn concat<'a>(plans: impl IntoIterator<Item = &'a Plan>) -> Plan {
    let mut all = Plan {
        data: Vec::new(),
        sizes: Vec::new(),
    };
    for p in plans {
        all.data.extend_from_slice(&p.data);
        all.sizes.extend_from_slice(&p.sizes);
    }
    all
}

/// Whether a pipe holds at most what the emissary reads at once (64 KiB): only then does a
/// write of `PIPE_BUF` bytes or less always reach `combined` in one piece.
fn pipes_fit_one_read() -> bool {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fds[0] is the open pipe just made.
    let size = unsafe { libc::fcntl(fds[0], libc::F_GETPIPE_SZ) };
    // SAFETY: closing the two descriptors made above, used nowhere else.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    assert!(size > 0, "F_GETPIPE_SZ");
    if size > 64 << 10 {
        eprintln!("SKIPPED: whole-write check: a pipe holds {size} bytes, more than one read");
    }
    size <= 64 << 10
}

/// Whether offset `pos` of `p`'s stream falls strictly inside one atomic write (at most
/// `PIPE_BUF` bytes), where the other stream's bytes must never appear in `combined`.
fn inside_atomic_write(p: &Plan, starts: &[usize], pos: usize) -> bool {
    // The last write that starts at or before `pos`.
    let i = starts.partition_point(|s| *s <= pos) - 1;
    starts[i] < pos && p.sizes[i] <= libc::PIPE_BUF
}

fn starts(p: &Plan) -> Vec<usize> {
    let mut off = 0;
    let mut v = Vec::with_capacity(p.sizes.len());
    for n in &p.sizes {
        v.push(off);
        off += n;
    }
    v
}

/// `combined`, taken apart, switches streams only between writes, never inside a write of at
/// most `PIPE_BUF` bytes; returns how often it switched (how concurrent the run was).
fn assert_whole_writes(combined: &Split, out: &Plan, err: &Plan) -> usize {
    if pipes_fit_one_read() {
        let (out_starts, err_starts) = (starts(out), starts(err));
        for &(o, e, was_out) in &combined.switches {
            let (p, starts, pos, name) = if was_out {
                (out, &out_starts, o, "stdout")
            } else {
                (err, &err_starts, e, "stderr")
            };
            assert!(
                !inside_atomic_write(p, starts, pos),
                "combined: a {name} write of at most PIPE_BUF bytes is split at its stream \
                 offset {pos} by the other stream's bytes"
            );
        }
    }
    combined.switches.len()
}

/// The console's stderr: stderr's bytes exactly, and besides them only the emissary's log lines.
fn assert_console_stderr(console: &[u8], want: &[u8]) {
    let mut err = Vec::with_capacity(console.len());
    let mut rest = Vec::new();
    for &b in console {
        if is_err(b) {
            err.push(b);
        } else if b != ERR_NOISE {
            rest.push(b);
        }
    }
    assert_bytes(&err, want, "console stderr");
    let rest = String::from_utf8_lossy(&rest);
    for line in rest.lines().filter(|l| !l.is_empty()) {
        assert!(line.contains("argo=true"), "console stderr: {line:?}");
    }
}

/// The capture files and the console after one run writing `out` and `err` (for retries, the
/// attempts' plans in order) onto empty files; returns the switch count of `combined`.
fn assert_captured(r: &Root, ran: &Ran, out: &Plan, err: &Plan) -> usize {
    assert_console(ran, &out.data, &err.data);
    assert_files(r, out, err, (b"", b""))
}

/// The console got `out` and `err` exactly (besides a grandchild's bytes and our log lines).
fn assert_console(ran: &Ran, out: &[u8], err: &[u8]) {
    let s = split(&ran.out);
    assert_only(&s, &[OUT_NOISE], "console stdout");
    assert_bytes(&s.out, out, "console stdout");
    assert_console_stderr(&ran.err, err);
}

/// `ctr/main/stdout` and `combined` hold `old` (what was there before the emissary), then
/// exactly `out` and `err`, each atomic write whole in `combined`; returns its switch count.
fn assert_files(r: &Root, out: &Plan, err: &Plan, old: (&[u8], &[u8])) -> usize {
    let stdout = r.read_bytes("ctr/main/stdout");
    assert_bytes(
        &stdout[..old.0.len()],
        old.0,
        "the old bytes of ctr/main/stdout",
    );
    let s = split(&stdout[old.0.len()..]);
    assert_only(&s, &[OUT_NOISE], "ctr/main/stdout");
    assert_bytes(&s.out, &out.data, "ctr/main/stdout");
    let combined = r.read_bytes("ctr/main/combined");
    assert_bytes(&combined[..old.1.len()], old.1, "the old bytes of combined");
    let c = split(&combined[old.1.len()..]);
    assert!(
        c.other.iter().all(|b| *b == OUT_NOISE || *b == ERR_NOISE),
        "combined holds bytes of neither stream"
    );
    assert_bytes(&c.out, &out.data, "stdout's bytes in combined");
    assert_bytes(&c.err, &err.data, "stderr's bytes in combined");
    assert_whole_writes(&c, out, err)
}

/// `s` has no stderr bytes, and besides stdout's only bytes in `noise`.
fn assert_only(s: &Split, noise: &[u8], what: &str) {
    assert!(
        s.err.is_empty(),
        "{what} holds {} stderr bytes",
        s.err.len()
    );
    assert!(
        s.other.iter().all(|b| noise.contains(b)),
        "{what} holds bytes of neither stream"
    );
}

/// Several MB on each stream at once, in writes of 1 byte to three pipes' worth: every byte
/// once, in order, in the files and on the console; every atomic write whole in `combined`.
#[test]
fn concurrent_random_writes_byte_exact() {
    let Some(py) = python() else { return };
    let r = Root::new();
    let p = pair(5 << 20, 3 << 20, 1);
    save(&r, "run", &p);
    let ran = run_limited(&r, writer(&r, &py, "run", "concurrent"));
    assert_eq!(ran.status.code(), Some(0), "{}", ran.log());
    assert_eq!(r.exitcode("main"), "0");
    let combined = r.read_bytes("ctr/main/combined");
    assert_eq!(combined.len(), p.out.data.len() + p.err.data.len());
    let switches = assert_captured(&r, &ran, &p.out, &p.err);
    eprintln!(
        "concurrent: {} + {} writes, {switches} switches in combined, {:?}",
        p.out.sizes.len(),
        p.err.sizes.len(),
        ran.took
    );
    // Both streams were written at once: combined must show them interleaved.
    assert!(
        switches >= 2,
        "combined not interleaved: {switches} switches"
    );
}

/// Three attempts (retries 3: N attempts in all, as upstream), each writing its own bytes on
/// both streams at once, the first two exiting 7: the files hold the three attempts in order,
/// each stream exact, and no attempt's bytes after the next one's began.
#[test]
fn retries_append_every_attempt_in_order() {
    let Some(py) = python() else { return };
    let r = Root::with_template(
        r#"{"containerSet":{"containers":[{"name":"main"}],"retryStrategy":{"retries":3,"duration":"10ms"}}}"#,
    );
    let attempts: Vec<Pair> = (1..=3)
        .map(|n| pair(640 << 10, 448 << 10, 10 + n))
        .collect();
    for (n, p) in attempts.iter().enumerate() {
        save(&r, &format!("a{}", n + 1), p);
    }
    let ran = run_limited(&r, writer(&r, &py, "attempt", "concurrent"));
    assert_eq!(ran.status.code(), Some(0), "{}", ran.log());
    assert_eq!(r.exitcode("main"), "0");
    assert_eq!(
        std::fs::read_to_string(plans(&r).join("attempt")).unwrap(),
        "3"
    );
    let out = concat(attempts.iter().map(|p| &p.out));
    let err = concat(attempts.iter().map(|p| &p.err));
    let switches = assert_captured(&r, &ran, &out, &err);
    // Attempt n's bytes, both streams, all come before attempt n+1's first byte.
    let combined = r.read_bytes("ctr/main/combined");
    let mut at = 0;
    for (n, p) in attempts.iter().enumerate() {
        at += p.out.data.len() + p.err.data.len();
        let outs = combined[..at].iter().filter(|b| is_out(**b)).count();
        let want: usize = attempts[..=n].iter().map(|p| p.out.data.len()).sum();
        assert_eq!(
            outs,
            want,
            "attempt {} mixed with the next in combined",
            n + 1
        );
    }
    eprintln!("retries: {switches} switches in combined, {:?}", ran.took);
}

/// Capture files that already hold bytes (text without a final newline, binary bytes of every
/// value) before the emissary starts: two runs append after them, byte-exact, the old bytes
/// untouched; an existing file keeps its mode (upstream opens with O_APPEND|O_CREAT, 0666, and
/// never changes the mode of a file that exists), a missing one is created 0666.
#[test]
fn appends_after_bytes_already_there() {
    let Some(py) = python() else { return };
    let mut old_stdout = b"written before the emissary\nno newline at the end".to_vec();
    old_stdout.extend_from_slice(&[0, 0xff, 0x80, b'\r', 0x90, b'z']);
    let old_combined: Vec<u8> = (0..=255u8).rev().chain(*b"\r\ntail, no newline").collect();
    for combined_there in [true, false] {
        let r = Root::new();
        std::fs::create_dir_all(r.path("ctr/main")).unwrap();
        let old_c: &[u8] = if combined_there { &old_combined } else { b"" };
        std::fs::write(r.path("ctr/main/stdout"), &old_stdout).unwrap();
        files::chmod(&r.path("ctr/main/stdout"), 0o640);
        if combined_there {
            std::fs::write(r.path("ctr/main/combined"), old_c).unwrap();
            files::chmod(&r.path("ctr/main/combined"), 0o600);
        }
        let runs = [
            pair(384 << 10, 256 << 10, 20),
            pair(256 << 10, 384 << 10, 21),
        ];
        let mut took = Vec::new();
        for (n, p) in runs.iter().enumerate() {
            save(&r, &format!("r{n}"), p);
            let ran = run_limited(&r, writer(&r, &py, &format!("r{n}"), "concurrent"));
            assert_eq!(ran.status.code(), Some(0), "{}", ran.log());
            took.push(ran.took);
            // The console has this run's bytes; the files the old ones, then every run's.
            assert_console(&ran, &p.out.data, &p.err.data);
            let out = concat(runs[..=n].iter().map(|p| &p.out));
            let err = concat(runs[..=n].iter().map(|p| &p.err));
            assert_files(&r, &out, &err, (&old_stdout, old_c));
        }
        assert_eq!(mode(&r.path("ctr/main/stdout")), 0o640, "stdout's mode");
        let want = if combined_there { 0o600 } else { 0o666 };
        assert_eq!(mode(&r.path("ctr/main/combined")), want, "combined's mode");
        eprintln!("appends (combined there: {combined_there}): {took:?}");
    }
}

/// stdout closed by the child while stderr goes on (the last quarter of stderr is written
/// only after stdout's close): the stdout thread's early end loses nothing of stderr's.
#[test]
fn stdout_closed_early_while_stderr_goes_on() {
    let Some(py) = python() else { return };
    let r = Root::new();
    let p = pair(1 << 20, 4 << 20, 30);
    save(&r, "run", &p);
    let ran = run_limited(&r, writer(&r, &py, "run", "close-early"));
    assert_eq!(ran.status.code(), Some(0), "{}", ran.log());
    assert!(
        plans(&r).join("out-closed").exists(),
        "stdout was not closed"
    );
    let switches = assert_captured(&r, &ran, &p.out, &p.err);
    let combined = split(&r.read_bytes("ctr/main/combined"));
    let last = p.err.sizes[p.err.sizes.len() * 3 / 4..]
        .iter()
        .sum::<usize>();
    // The last time stdout's bytes gave way to stderr's: stdout is complete there, and
    // stderr's last quarter is still to come.
    let (o, e, _) = *combined
        .switches
        .iter()
        .rfind(|s| s.2)
        .expect("combined ends with stdout's bytes");
    assert_eq!(o, p.out.data.len());
    assert!(
        e <= p.err.data.len() - last,
        "stdout's bytes after its close"
    );
    eprintln!("close-early: {switches} switches, {:?}", ran.took);
}

/// A grandchild that keeps both pipes and writes to them without end once the child has
/// exited: the step ends anyway (the emissary waits for it at most 100 ms), and everything the
/// child wrote is in the files and on the console, byte-exact, whatever the grandchild added.
#[test]
fn grandchild_keeping_the_pipes_does_not_hold_the_step() {
    let Some(py) = python() else { return };
    let r = Root::new();
    let p = pair(2 << 20, 1 << 20, 40);
    save(&r, "run", &p);
    let ran = run_limited(&r, writer(&r, &py, "run", "grandchild"));
    // It ends by itself once its pipes are gone (EPIPE); this is in case it did not.
    let gc = std::fs::read_to_string(plans(&r).join("gc.pid")).unwrap_or_default();
    if let Some(pid) = gc.trim().parse::<i32>().ok().filter(|p| *p > 1) {
        // SAFETY: a signal to the grandchild this test's writer started; ESRCH is fine.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert_eq!(ran.status.code(), Some(0), "{}", ran.log());
    assert_eq!(r.exitcode("main"), "0");
    // The grandchild writes for 30 s unless its pipes go: the step ended long before that.
    assert!(ran.took < Duration::from_secs(8), "took {:?}", ran.took);
    let stdout = r.read_bytes("ctr/main/stdout");
    assert!(
        stdout.contains(&OUT_NOISE),
        "the grandchild's bytes never reached the capture: the case was not exercised"
    );
    let switches = assert_captured(&r, &ran, &p.out, &p.err);
    eprintln!("grandchild: {switches} switches, {:?}", ran.took);
}
