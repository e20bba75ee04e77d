//! The console and the emissary's own output (SPEC 3.8): a console nobody reads (pipe, socket,
//! terminal) never holds the step once the child has exited, the emissary's own log lines never
//! block, a child on a pty that never reads its input cannot hold the end, no pipe is grown, and
//! log lines end with `\r\n` while the terminal is raw. Every run is bounded: a regression fails,
//! it does not hang.

mod common;

use std::ffi::CStr;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// How long a run that must end "within seconds" may take on a loaded machine.
const LIMIT: Duration = Duration::from_secs(15);

/// Runs `c` for at most `limit`; `None` (after a kill) when it did not end by then.
fn run_bounded(mut c: Command, limit: Duration) -> (Option<ExitStatus>, Duration) {
    let start = Instant::now();
    let mut child = c.spawn().expect("spawning argoexec");
    drop(c); // our copies of the console fds go, so only the emissary holds them
    loop {
        if let Some(st) = child.try_wait().expect("waiting") {
            return (Some(st), start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return (None, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors owned only here.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn set_nonblocking(fd: i32, on: bool) {
    // SAFETY: flag changes on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        assert!(fl >= 0);
        let fl = if on {
            fl | libc::O_NONBLOCK
        } else {
            fl & !libc::O_NONBLOCK
        };
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, fl), 0);
    }
}

/// Writes to `fd` until it takes no more; the description is left blocking, as a runtime
/// gives it, so the emissary gets no help from its flags.
fn fill(fd: i32) -> usize {
    set_nonblocking(fd, true);
    let chunk = [b'.'; 4096];
    let mut n = 0;
    loop {
        // SAFETY: chunk is valid for reads of its length.
        let w = unsafe { libc::write(fd, chunk.as_ptr().cast(), chunk.len()) };
        if w <= 0 {
            break;
        }
        n += w as usize;
    }
    set_nonblocking(fd, false);
    n
}

fn pipe_size(fd: i32) -> i32 {
    // SAFETY: F_GETPIPE_SZ only reads the size.
    unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) }
}

/// The emissary under `r` with `console` as its stdout and stderr (`2>&1`), stdin empty.
fn with_console(r: &Root, args: &[&str], console: &OwnedFd) -> Command {
    let mut c = r.emissary(args);
    c.stdout(Stdio::from(console.try_clone().unwrap()))
        .stderr(Stdio::from(console.try_clone().unwrap()));
    c
}

/// The step ended within `within` with code `want`, and `exitcode` says the same.
fn assert_ended(r: &Root, st: Option<ExitStatus>, took: Duration, want: i32, within: Duration) {
    let st = st.unwrap_or_else(|| panic!("the emissary did not end within {LIMIT:?}"));
    assert!(took < within, "took {took:?}");
    assert_eq!(st.code(), Some(want));
    assert_eq!(r.exitcode("main"), want.to_string());
}

/// The step ended in time, `exitcode` says `want`, and the capture files hold exactly what
/// the child wrote.
fn assert_complete(
    r: &Root,
    st: Option<ExitStatus>,
    took: Duration,
    want: i32,
    out: u64,
    err: u64,
) {
    assert_ended(r, st, took, want, Duration::from_secs(8));
    assert_eq!(
        r.read_bytes("ctr/main/stdout").len() as u64,
        out,
        "stdout file"
    );
    assert_eq!(
        r.read_bytes("ctr/main/combined").len() as u64,
        out + err,
        "combined file"
    );
}

const WRITE_32K: &str = "head -c 32768 /dev/zero; head -c 1000 /dev/zero >&2";

/// Fills `console`, which nothing reads, then runs a child that writes `WRITE_32K` to it: the
/// step still completes in time with every byte captured.
fn run_against_full(console: &OwnedFd) {
    let r = Root::new();
    assert!(fill(console.as_raw_fd()) > 0);
    let (st, took) = run_bounded(with_console(&r, &["sh", "-c", WRITE_32K], console), LIMIT);
    assert_complete(&r, st, took, 0, 32768, 1000);
}

#[test]
fn full_console_pipe_never_read() {
    let (rd, wr) = pipe();
    run_against_full(&wr);
    drop(wr);
    drop(rd);
}

#[test]
fn console_pipe_that_fills_during_the_run() {
    let r = Root::new();
    let (rd, wr) = pipe();
    // The reader takes most of the output, then stops reading for good (and keeps the pipe).
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(rd);
        let mut got = 0;
        let mut buf = [0u8; 4096];
        while got < 1_400_000 {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        std::thread::sleep(Duration::from_secs(20));
        drop(f);
    });
    let (st, took) = run_bounded(
        with_console(&r, &["head", "-c", "1500000", "/dev/zero"], &wr),
        LIMIT,
    );
    drop(wr);
    assert_complete(&r, st, took, 0, 1_500_000, 0);
    drop(reader);
}

#[test]
fn full_console_socket_never_read() {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let theirs = OwnedFd::from(theirs);
    run_against_full(&theirs);
    drop(ours);
}

/// A new pty: (master, slave), the slave opened blocking as a runtime would give it.
fn openpty() -> (OwnedFd, OwnedFd) {
    // SAFETY: plain pty set-up calls, each result checked.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0);
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 64];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let s = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(s >= 0, "opening {:?}", CStr::from_ptr(name.as_ptr()));
        (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
    }
}

#[test]
fn full_terminal_never_read() {
    let (master, slave) = openpty();
    run_against_full(&slave);
    drop(master);
}

/// Capture off: the child shares the console and may block on it as it would alone; our own
/// log lines (many, at debug level) must not. A child that writes nothing ends the step in time.
#[test]
fn capture_off_full_console_log_lines_do_not_block() {
    let r = Root::new();
    let (rd, wr) = pipe();
    fill(wr.as_raw_fd());
    let mut c = r.cmd();
    c.args([
        "emissary",
        "--loglevel",
        "debug",
        "--",
        "sh",
        "-c",
        "sleep 0.3; exit 3",
    ])
    .stdout(Stdio::from(wr.try_clone().unwrap()))
    .stderr(Stdio::from(wr.try_clone().unwrap()));
    let (st, took) = run_bounded(c, LIMIT);
    let st = st.expect("the emissary did not end in time");
    assert_eq!(st.code(), Some(3));
    assert_eq!(r.exitcode("main"), "3");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The console's description is still blocking: the emissary did not change the child's.
    // SAFETY: F_GETFL only reads flags.
    let fl = unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(
        fl & libc::O_NONBLOCK,
        0,
        "O_NONBLOCK set on the shared console"
    );
    drop(rd);
}

/// No pipe the emissary creates or touches is larger than the kernel default: the child's
/// stdout pipe as the child sees it, and the console pipe after the run.
#[test]
fn no_pipe_is_grown() {
    if Command::new("python3").args(["-c", "1"]).output().is_err() {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let r = Root::new();
    let (rd, wr) = pipe();
    let default = pipe_size(wr.as_raw_fd());
    assert!(default > 0);
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::fs::File::from(rd).read_to_end(&mut v);
        v
    });
    let script = "import fcntl,sys; print(fcntl.fcntl(1, 1032)); print(fcntl.fcntl(2, 1032), file=sys.stderr)";
    let mut c = with_console(&r, &["python3", "-c", script], &wr);
    c.stdout(Stdio::from(wr.try_clone().unwrap()));
    let (st, _) = run_bounded(c, LIMIT);
    assert_eq!(st.expect("ended").code(), Some(0));
    assert_eq!(pipe_size(wr.as_raw_fd()), default, "console pipe grown");
    drop(wr);
    let console = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    assert_eq!(
        r.read("ctr/main/stdout"),
        format!("{default}\n"),
        "child's stdout pipe"
    );
    // Python writes a line's text and its newline apart: only the figures are compared.
    let combined = r.read("ctr/main/combined").replace('\n', "");
    assert_eq!(combined, format!("{default}{default}"), "child's pipes");
    assert!(console.contains(&format!("{default}\n")), "{console}");
}

/// `tty: true`: fd 0 is a terminal; the child runs on its own pty and never reads the input
/// waiting for it. The end of the run must not wait for the input pump. Meanwhile our terminal
/// is raw, so the emissary's own lines must end with `\r\n`.
#[test]
fn tty_unread_input_does_not_hold_the_end_and_lines_end_crlf() {
    let r = Root::new();
    let (master, slave) = openpty();
    let mut c = r.emissary(&["sh", "-c", "echo hello; sleep 1"]);
    c.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    drop(slave);
    // Input the child never reads, kept coming so the pump always has some to push.
    let input = master.try_clone().unwrap();
    set_nonblocking(input.as_raw_fd(), true);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = std::sync::Arc::clone(&stop);
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::File::from(input);
        let chunk = [b'y'; 1024];
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            if f.write(&chunk).is_err() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    // Everything the terminal shows.
    let out = master.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(out);
        let mut v = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // The writer made the master's one description non-blocking.
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => v.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(_) => break, // EIO once the last slave is closed
            }
        }
        v
    });
    let (st, took) = run_bounded(c, LIMIT);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_ended(&r, st, took, 0, Duration::from_secs(6));
    // The child's terminal echoes the input it got, as any terminal does: only look for ours.
    let so = r.read("ctr/main/stdout");
    assert!(
        so.contains("hello\r\n"),
        "stdout file: {} bytes: {:?}",
        so.len(),
        so.replace("yy", "")
    );
    let shown = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    drop(master);
    let ours: Vec<&str> = shown
        .split_inclusive('\n')
        .filter(|l| l.contains("argo=true") || l.contains("\"argo\":true"))
        .collect();
    assert!(
        ours.iter().any(|l| l.contains("sub-process exited")),
        "no log line seen: {:?}",
        shown.replace("yy", "")
    );
    for l in ours {
        assert!(
            l.ends_with("\r\n"),
            "line without \\r\\n: {:?}",
            l.replace("yy", "")
        );
    }
}

/// `tty: true` with a terminal nobody reads: the child's output still reaches the capture
/// files whole, including what the pty still held when the child exited.
#[test]
fn tty_full_terminal_capture_complete() {
    let r = Root::new();
    let (master, slave) = openpty();
    assert!(fill(slave.as_raw_fd()) > 0);
    let mut c = r.emissary(&[
        "sh",
        "-c",
        "head -c 3000 /dev/zero | tr '\\0' y; echo; echo hello",
    ]);
    c.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    drop(slave);
    let (st, took) = run_bounded(c, LIMIT);
    assert_ended(&r, st, took, 0, Duration::from_secs(8));
    let so = r.read("ctr/main/stdout");
    assert_eq!(
        so.len(),
        3000 + 2 + 7,
        "stdout file: {:?}",
        so.replace("yy", "")
    );
    assert!(so.ends_with("\r\nhello\r\n"));
    drop(master);
}

/// `combined` keeps the order written when the two streams are written further apart than a
/// thread takes to wake (here 50 ms, generous for a loaded machine), each write whole.
#[test]
fn combined_keeps_the_order_written() {
    let r = Root::new();
    let script =
        "for i in 1 2 3 4 5 6 7 8; do echo out$i; sleep 0.05; echo err$i >&2; sleep 0.05; done";
    let mut c = r.emissary(&["sh", "-c", script]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let (st, _) = run_bounded(c, LIMIT);
    assert_eq!(st.expect("ended").code(), Some(0));
    let want: String = (1..=8).map(|i| format!("out{i}\nerr{i}\n")).collect();
    assert_eq!(r.read("ctr/main/combined"), want);
}

/// A console that trickles after the child has exited (a page every 0.9 s: never a second of
/// nothing) still cannot hold the step: 10 s after the exit it is given up as well.
#[test]
fn trickling_console_is_given_up_ten_seconds_after_the_exit() {
    let r = Root::new();
    let (rd, wr) = pipe();
    fill(wr.as_raw_fd());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done2 = std::sync::Arc::clone(&done);
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(rd);
        let mut buf = [0u8; 4096];
        while !done2.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(900));
            let _ = f.read(&mut buf);
        }
    });
    let script = "head -c 61440 /dev/zero; head -c 61440 /dev/zero >&2";
    let (st, took) = run_bounded(
        with_console(&r, &["sh", "-c", script], &wr),
        Duration::from_secs(40),
    );
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(wr);
    let st = st.expect("the emissary did not end within 40 s");
    assert_eq!(st.code(), Some(0));
    assert_eq!(r.exitcode("main"), "0");
    // 10 s after the exit, plus a stall second and slack; at this rate the rest takes 27 s.
    assert!(took < Duration::from_secs(16), "took {took:?}");
    eprintln!("trickle: took {took:?}");
    assert_eq!(r.read_bytes("ctr/main/stdout").len(), 61440);
    assert_eq!(r.read_bytes("ctr/main/combined").len(), 2 * 61440);
    reader.join().unwrap();
}

/// Without `/proc` a console cannot be opened again, so the writer thread does the blocking
/// writes: a full pipe then holds that thread, never the step. Needs a mount namespace (root).
#[test]
fn full_console_pipe_without_proc_goes_through_the_writer_thread() {
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", "umount -l /proc && ! test -e /proc/self"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: cannot unmount /proc in a new mount namespace here");
        return;
    }
    let r = Root::new();
    let (rd, wr) = pipe();
    fill(wr.as_raw_fd());
    let e = r.emissary(&["sh", "-c", WRITE_32K]);
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c", "umount -l /proc && exec \"$@\"", "sh"])
        .arg(bin())
        .args(e.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::from(wr.try_clone().unwrap()))
        .stderr(Stdio::from(wr.try_clone().unwrap()));
    copy_env(&e, &mut c);
    let (st, took) = run_bounded(c, LIMIT);
    drop(wr);
    assert_complete(&r, st, took, 0, 32768, 1000);
    drop(rd);
}

/// A sidecar on a terminal (`tty: true`) whose capture file cannot be opened runs on a fresh
/// pty without capture, with a warning: its trouble is never the step's 64 (SPEC 3.8).
#[test]
fn tty_sidecar_with_a_broken_capture_runs_without_it() {
    let r = Root::with_template(r#"{"sidecars":[{"name":"side"}]}"#);
    std::fs::create_dir_all(r.path("ctr/side/stdout")).unwrap();
    let (master, slave) = openpty();
    let mut c = r.emissary(&[
        "sh",
        "-c",
        "test -t 0 && test -t 1 && echo on-a-tty; exit 5",
    ]);
    c.env("ARGO_CONTAINER_NAME", "side")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    drop(slave);
    let out = master.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(out);
        let mut v = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once every slave is closed.
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            v.extend_from_slice(&buf[..n]);
        }
        v
    });
    let (st, _) = run_bounded(c, LIMIT);
    let st = st.unwrap_or_else(|| panic!("the sidecar did not end within {LIMIT:?}"));
    drop(master);
    let shown = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    assert_eq!(st.code(), Some(5), "{shown}");
    assert_eq!(r.exitcode("side"), "5");
    assert!(shown.contains("on-a-tty"), "{shown}");
    assert!(shown.contains("capture failed"), "a warning: {shown}");
}
