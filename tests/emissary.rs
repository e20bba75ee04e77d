//! Black-box tests of `argoexec emissary`: upstream's `emissary_test.go` cases, ported, and the
//! behaviours of SPEC section 3 (exit codes, capture, signals, the signal file, logging).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

// ---- upstream emissary_test.go, in its order ----

#[test]
fn upstream_exit0() {
    let r = Root::new();
    let o = r.sh("exit");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "0");
}

#[test]
fn upstream_exit1() {
    let r = Root::new();
    let o = r.sh("exit 1");
    assert_eq!(code(&o), 1);
    assert_eq!(r.exitcode("main"), "1");
    assert!(stderr(&o).contains("Error: exit status 1"));
}

#[test]
fn upstream_stdout() {
    let r = Root::new();
    r.sh("echo hello");
    assert_eq!(r.read("ctr/main/stdout"), "hello\n");
}

#[test]
fn upstream_sub_process() {
    let r = Root::new();
    let start = Instant::now();
    let o = r.sh("(sleep 60; echo 'should not wait for sub-process')& printf hello");
    let took = start.elapsed();
    assert_eq!(code(&o), 0);
    assert_eq!(r.read("ctr/main/stdout"), "hello");
    // The drain bound is 100 ms; allow for a loaded machine.
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

#[test]
fn upstream_combined() {
    let r = Root::new();
    r.sh("echo hello > /dev/stderr");
    assert_eq!(r.read("ctr/main/combined"), "hello\n");
    assert_eq!(r.read("ctr/main/stdout"), "");
}

#[test]
fn upstream_signal_before_start() {
    for (sig, want) in [("15", 143), ("9", 137)] {
        let r = Root::new();
        r.write("ctr/main/signal", sig);
        let start = Instant::now();
        let o = r.sh("sleep 3");
        assert_eq!(code(&o), want, "signal {sig}");
        assert_eq!(r.exitcode("main"), want.to_string());
        assert!(!r.exists("ctr/main/signal"), "signal file deleted");
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}

#[test]
fn upstream_retry_container_set() {
    // retries: 1 is one attempt in all; retries: 2 gives the script its second chance.
    for (retries, want) in [(1, 1), (2, 0)] {
        let r = Root::with_template(&format!(
            r#"{{"containerSet":{{"containers":[{{"name":"main"}}],"retryStrategy":{{"retries":{retries}}}}}}}"#
        ));
        let script = r.path("test.txt");
        let o = r.sh(&format!(
            "if test -f {0}; then echo exists; exit 0; else touch {0}; echo missing; exit 1; fi",
            script.display()
        ));
        assert_eq!(code(&o), want, "retries {retries}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).matches("capturing logs").count(),
            retries as usize
        );
        let expected = if retries == 1 {
            "missing\n"
        } else {
            "missing\nexists\n"
        };
        assert_eq!(
            r.read("ctr/main/stdout"),
            expected,
            "appended across attempts"
        );
    }
}

// ---- exit codes ----

#[test]
fn exit_codes() {
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 13", 13),
        ("exit 255", 255),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
        ("kill -INT $$", 130),
        ("kill -USR1 $$", 138),
    ] {
        let r = Root::new();
        let o = r.sh(script);
        assert_eq!(code(&o), want, "{script}");
        assert_eq!(r.exitcode("main"), want.to_string(), "{script}");
    }
}

#[test]
fn exitcode_file_and_folder_modes() {
    let r = Root::new();
    // A restrictive umask in the caller must not change the modes SPEC names.
    let mut c = r.emissary(&["true"]);
    c.env("UMASK_TEST", "1");
    let o = run(c);
    assert_eq!(code(&o), 0);
    assert_eq!(mode(&r.path("ctr/main")), 0o777);
    assert_eq!(mode(&r.path("ctr/main/exitcode")), 0o644);
    assert_eq!(mode(&r.path("ctr/main/stdout")), 0o666);
    assert_eq!(mode(&r.path("ctr/main/combined")), 0o666);
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(r.path("ctr/main"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn child_inherits_umask_zero() {
    let r = Root::new();
    let f = r.path("made-by-child");
    r.sh(&format!("touch {}", f.display()));
    assert_eq!(mode(&f), 0o666);
}

#[test]
fn container_name_moves_folder() {
    let r = Root::new();
    let mut c = r.emissary(&["sh", "-c", "exit 4"]);
    c.env("ARGO_CONTAINER_NAME", "side");
    let o = run(c);
    assert_eq!(code(&o), 4);
    assert_eq!(r.exitcode("side"), "4");
    assert!(!r.exists("ctr/main"));
    assert!(stderr(&o).contains("not saving outputs - not main container"));
}

// ---- capture ----

#[test]
fn capture_exact_bytes() {
    let r = Root::new();
    // Pauses between the writes: the order in `combined` is arrival order across two pipes.
    let o = r.sh(
        "printf 'a\\0b\\n'; sleep 0.1; printf 'err1\\n' >&2; sleep 0.1; printf 'c'; sleep 0.1; printf 'err2' >&2",
    );
    assert_eq!(code(&o), 0);
    assert_eq!(r.read_bytes("ctr/main/stdout"), b"a\0b\nc");
    assert_eq!(o.stdout, b"a\0b\nc", "console gets stdout unchanged");
    let combined = r.read_bytes("ctr/main/combined");
    assert_eq!(combined, b"a\0b\nerr1\ncerr2");
    assert!(stderr(&o).contains("err1\n"));
}

#[test]
fn no_capture_means_no_files_and_direct_fds() {
    let r = Root::new();
    let mut c = r.emissary(&["sh", "-c", "echo out; echo err >&2; ls -l /proc/self/fd/1"]);
    c.env_remove("ARGO_INCLUDE_SCRIPT_OUTPUT");
    let o = run(c);
    assert_eq!(code(&o), 0);
    assert!(!r.exists("ctr/main/stdout"));
    assert!(!r.exists("ctr/main/combined"));
    assert!(!stderr(&o).contains("capturing logs"));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("out\n"));
}

#[test]
fn archive_logs_turns_capture_on() {
    let r = Root::with_template(r#"{"archiveLocation":{"archiveLogs":true}}"#);
    let mut c = r.emissary(&["sh", "-c", "echo logged"]);
    c.env_remove("ARGO_INCLUDE_SCRIPT_OUTPUT");
    let o = run(c);
    assert_eq!(code(&o), 0);
    assert_eq!(r.read("ctr/main/combined"), "logged\n");
    assert!(stderr(&o).contains("capturing logs"));
}

#[test]
fn capture_appends_across_runs() {
    let r = Root::new();
    r.sh("echo one");
    r.sh("echo two");
    assert_eq!(r.read("ctr/main/stdout"), "one\ntwo\n");
}

#[test]
fn burst_of_50mb_then_exit_loses_nothing() {
    let r = Root::new();
    let o = r.sh("head -c 52428800 /dev/urandom > burst; cat burst; cat burst >&2");
    assert_eq!(code(&o), 0);
    let src = std::fs::read(r.path("burst")).ok();
    // The child ran in the test's cwd; read the burst from there.
    let burst = src.unwrap_or_else(|| std::fs::read("burst").unwrap());
    let _ = std::fs::remove_file("burst");
    let out = r.read_bytes("ctr/main/stdout");
    assert_eq!(out.len(), burst.len());
    assert!(out == burst, "stdout file differs");
    assert!(o.stdout == burst, "console differs");
    assert_eq!(r.read_bytes("ctr/main/combined").len(), 2 * burst.len());
}

#[test]
fn log_lines_never_in_capture_files() {
    let r = Root::new();
    let mut c = r.emissary(&["sh", "-c", "echo x; echo y >&2"]);
    c.args(["--loglevel", "debug"]); // after --: these belong to the child, not to us
    let o = run(c);
    assert_eq!(code(&o), 0);
    for f in ["ctr/main/stdout", "ctr/main/combined"] {
        assert!(!r.read(f).contains("argo=true"), "{f}");
    }
    assert!(stderr(&o).contains("argo=true"));
}

// ---- capture: the zero-copy (tee) path and the plain read/write fallback ----
//
// A console pipe takes the tee(2) path; a regular file, /dev/null or a socket the plain loop.
// Which path ran shows in the emissary's `wchar` (bytes passed to write(2) by it and the
// children it reaped): the console's copy counts only on the plain path.

/// `len` pseudo-random bytes; stdout's have the top bit clear and stderr's set, so `combined`
/// can be split back into the two streams byte for byte.
fn pattern(len: usize, seed: u64, top_bit: bool) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    for b in &mut v {
        *b = if top_bit { *b | 0x80 } else { *b & 0x7f };
    }
    v
}

/// Writes stdout's and stderr's data into the root; the script prints them on both streams
/// at once, then runs `tail` (a shell command or nothing).
fn mixed_script(r: &Root, out: &[u8], err: &[u8], tail: &str) -> String {
    std::fs::write(r.path("out.bin"), out).unwrap();
    std::fs::write(r.path("err.bin"), err).unwrap();
    format!(
        "cat '{o}' & cat '{e}' >&2; wait; {tail}",
        o = r.path("out.bin").display(),
        e = r.path("err.bin").display()
    )
}

/// `ctr/main/stdout` is `out`, and `combined` is `out` and `err` interleaved, each exact.
fn assert_capture_files(r: &Root, out: &[u8], err: &[u8]) {
    let stdout = r.read_bytes("ctr/main/stdout");
    assert_eq!(stdout.len(), out.len(), "ctr/main/stdout length");
    assert!(stdout == out, "ctr/main/stdout differs");
    let combined = r.read_bytes("ctr/main/combined");
    assert_eq!(combined.len(), out.len() + err.len(), "combined length");
    let (o, e): (Vec<u8>, Vec<u8>) = combined.iter().partition(|b| **b < 0x80);
    assert!(o == out, "stdout's bytes in combined differ");
    assert!(e == err, "stderr's bytes in combined differ");
}

/// Waits until `child` has exited, reads its `wchar` before reaping it, then reaps it.
fn wait_counting_writes(child: &mut std::process::Child) -> (i32, u64) {
    let pid = child.id();
    // SAFETY: siginfo_t is plain data; all zeroes is a valid value for waitid to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child without reaping it (WNOWAIT); info is valid.
    let rc = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
    assert_eq!(rc, 0, "waitid");
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let wchar = io
        .lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .unwrap()
        .parse()
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), wchar)
}

/// Waits up to 20 s for `child`, killing it if it is still running then; returns its status
/// and the time since `start` at which it ended (or was given up).
fn wait_or_kill(
    child: &mut std::process::Child,
    start: Instant,
) -> (std::process::ExitStatus, Duration) {
    let mut status = None;
    wait_until(Duration::from_secs(20), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let took = start.elapsed();
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            child.wait().unwrap()
        }
    };
    (status, took)
}

/// SIGKILLs the process whose pid a test's script wrote to `file`, if it did.
fn kill_pid_file(file: &std::path::Path) {
    if let Ok(pid) = std::fs::read_to_string(file) {
        if let Ok(pid) = pid.trim().parse::<u32>() {
            kill(pid, libc::SIGKILL);
        }
    }
}

/// Joins the console readers; the step ended 0 and its console got exactly `out`.
fn assert_console_exact(
    status: std::process::ExitStatus,
    con_out: std::thread::JoinHandle<Vec<u8>>,
    con_err: std::thread::JoinHandle<Vec<u8>>,
    out: &[u8],
    what: &str,
) {
    let (con_out, con_err) = (con_out.join().unwrap(), con_err.join().unwrap());
    let log = String::from_utf8_lossy(&con_err);
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        con_out == out,
        "console stdout differs ({} bytes{what})",
        con_out.len()
    );
}

/// Reads all of `src` on a thread.
fn read_all_bg(mut src: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        src.read_to_end(&mut v).unwrap();
        v
    })
}

/// Reads all of `src` in `step`-byte reads with `pause` between them: a slow console.
fn read_slowly_bg(
    mut src: impl std::io::Read + Send + 'static,
    step: usize,
    pause: Duration,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let mut buf = vec![0u8; step];
        loop {
            match src.read(&mut buf) {
                Ok(0) => return v,
                Ok(n) => v.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("reading the console: {e}"),
            }
            std::thread::sleep(pause);
        }
    })
}

/// A pipe: (read end, write end), both close-on-exec; `nonblocking` sets O_NONBLOCK on the
/// write end's open file description, which the emissary then inherits as its console.
fn console_pipe(nonblocking: bool) -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    if nonblocking {
        // SAFETY: fds[1] is the pipe's open write end.
        assert_eq!(
            unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) },
            0
        );
    }
    // SAFETY: both descriptors are fresh and owned only here.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

#[test]
fn tee_path_console_pipes_large_mixed_output_exact() {
    let r = Root::new();
    let (out, err) = (pattern(48 << 20, 1, false), pattern(16 << 20, 2, true));
    let script = mixed_script(&r, &out, &err, "");
    let mut child = r
        .emissary(&["sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let con_out = read_all_bg(child.stdout.take().unwrap());
    let con_err = read_all_bg(child.stderr.take().unwrap());
    let (rc, wchar) = wait_counting_writes(&mut child);
    let (con_out, con_err) = (con_out.join().unwrap(), con_err.join().unwrap());
    assert_eq!(rc, 0);
    assert!(
        con_out == out,
        "console stdout differs ({} bytes)",
        con_out.len()
    );
    // The console's stderr also carries the emissary's own log lines, before and after.
    let log_free: Vec<u8> = con_err.iter().copied().filter(|b| *b >= 0x80).collect();
    assert!(log_free == err, "console stderr differs");
    assert_capture_files(&r, &out, &err);
    // No zero-copy path any more (it paid only with pipes grown to 1 MiB, which SPEC 3.8
    // forbids): the write(2) count is not asserted.
    let _ = wchar;
}

#[test]
fn tee_path_console_closing_mid_stream_files_complete() {
    use std::io::Read;
    let r = Root::new();
    let (out, err) = (pattern(32 << 20, 3, false), pattern(4 << 20, 4, true));
    let script = mixed_script(&r, &out, &err, "");
    let mut child = r
        .emissary(&["sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read 1 MiB of stdout, then close the console: EPIPE for the rest of the stream.
    let mut stdout = child.stdout.take().unwrap();
    let mut head = vec![0u8; 1 << 20];
    stdout.read_exact(&mut head).unwrap();
    drop(stdout);
    let con_err = read_all_bg(child.stderr.take().unwrap());
    let status = child.wait().unwrap();
    let con_err = con_err.join().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&con_err)
    );
    assert!(
        head[..] == out[..head.len()],
        "console got other bytes first"
    );
    assert_eq!(r.exitcode("main"), "0");
    assert_capture_files(&r, &out, &err);
    let log_free: Vec<u8> = con_err.iter().copied().filter(|b| *b >= 0x80).collect();
    assert!(log_free == err, "console stderr differs");
}

#[test]
fn plain_path_console_regular_file_and_dev_null_exact() {
    for stdout_to_file in [true, false] {
        let r = Root::new();
        let (out, err) = (pattern(24 << 20, 5, false), pattern(8 << 20, 6, true));
        let script = mixed_script(&r, &out, &err, "");
        let file = std::fs::File::create(r.path("console")).unwrap();
        let null = std::fs::File::options()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let (o, e) = if stdout_to_file {
            (file, null)
        } else {
            (null, file)
        };
        let mut child = r
            .emissary(&["sh", "-c", &script])
            .stdout(o)
            .stderr(e)
            .spawn()
            .unwrap();
        let (rc, wchar) = wait_counting_writes(&mut child);
        assert_eq!(rc, 0);
        assert_capture_files(&r, &out, &err);
        let console = r.read_bytes("console");
        if stdout_to_file {
            assert!(console == out, "console file differs from stdout");
        } else {
            let log_free: Vec<u8> = console.iter().copied().filter(|b| *b >= 0x80).collect();
            assert!(log_free == err, "console file differs from stderr");
        }
        // The plain path writes the console's copy with write(2), /dev/null included.
        let files = (2 * out.len() + err.len()) as u64;
        let console_total = (out.len() + err.len()) as u64;
        assert!(wchar >= files + console_total, "wchar {wchar}");
    }
}

#[test]
fn stalled_console_with_grandchild_ends_within_bound() {
    // stdout's console is a pipe nobody reads until the emissary has exited; the child leaves
    // a grandchild holding its stdout. The output is more than the console pipe holds (1 MiB,
    // set here), less than that plus the kernel-default capture pipe and the copy thread's
    // 64 KiB chunk: the child itself never blocks.
    let r = Root::new();
    let out = pattern(1100 << 10, 7, false);
    let gc = r.path("grandchild.pid");
    let script = mixed_script(
        &r,
        &out,
        b"",
        &format!("sleep 30 & echo $! > '{}'", gc.display()),
    );
    let (mut con, con_w) = console_pipe(false);
    use std::os::fd::AsRawFd;
    // SAFETY: resizes the test's own pipe.
    assert!(unsafe { libc::fcntl(con.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) } >= 1 << 20);
    let log = std::fs::File::create(r.path("log")).unwrap();
    let start = Instant::now();
    let mut child = r
        .emissary(&["sh", "-c", &script])
        .stdout(con_w)
        .stderr(log)
        .spawn()
        .unwrap();
    // Our copy of the console's write end went with the Command: EOF comes with the emissary.
    let (status, took) = wait_or_kill(&mut child, start);
    kill_pid_file(&gc);
    assert_eq!(status.code(), Some(0), "{}", r.read("log"));
    // 100 ms for the grandchild, 1 s for the stalled console, and slack for a loaded machine.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_capture_files(&r, &out, b"");
    // What the console did get is the start of the output, unchanged.
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut con, &mut got).unwrap();
    assert!(
        !got.is_empty() && got.len() < out.len(),
        "console got {}",
        got.len()
    );
    assert!(got[..] == out[..got.len()], "console bytes differ");
    assert!(r.read("log").contains("console takes no more output"));
}

#[test]
fn slow_console_with_grandchild_gets_everything() {
    // A slow but live reader: the end of the run waits for it (it never stalls for a second),
    // so the console still gets every byte, after the child has exited.
    let r = Root::new();
    let (out, err) = (pattern(6 << 20, 8, false), pattern(1 << 20, 9, true));
    let gc = r.path("grandchild.pid");
    let script = mixed_script(
        &r,
        &out,
        &err,
        &format!("sleep 30 & echo $! > '{}'", gc.display()),
    );
    let mut child = r
        .emissary(&["sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let con_out = read_slowly_bg(
        child.stdout.take().unwrap(),
        64 << 10,
        Duration::from_millis(5),
    );
    let con_err = read_all_bg(child.stderr.take().unwrap());
    let status = child.wait().unwrap();
    kill_pid_file(&gc);
    assert_console_exact(status, con_out, con_err, &out, "");
    assert_capture_files(&r, &out, &err);
}

#[test]
fn endless_grandchild_with_slow_console_does_not_hold_the_step() {
    // A grandchild that never stops writing keeps the child's pipe full, behind a console that
    // drains slowly: once the stop comes, what is in the pipe is copied and no more (the stop
    // is seen even though data never runs out). A socket console takes the plain loop, a pipe
    // the tee path.
    for socket in [false, true] {
        let r = Root::new();
        let gc = r.path("grandchild.pid");
        let script = format!("yes & echo $! > '{}'; echo done", gc.display());
        let (reader, console): (Box<dyn std::io::Read + Send>, std::os::fd::OwnedFd) = if socket {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            (Box::new(a), b.into())
        } else {
            let (rd, wr) = console_pipe(false);
            (Box::new(rd), wr)
        };
        let log = std::fs::File::create(r.path("log")).unwrap();
        let start = Instant::now();
        let mut child = r
            .emissary(&["sh", "-c", &script])
            .stdout(console)
            .stderr(log)
            .spawn()
            .unwrap();
        let con_out = read_slowly_bg(reader, 64 << 10, Duration::from_millis(2));
        let (status, took) = wait_or_kill(&mut child, start);
        kill_pid_file(&gc);
        let got = con_out.join().unwrap();
        assert_eq!(status.code(), Some(0), "{}", r.read("log"));
        assert!(
            took < Duration::from_secs(5),
            "socket {socket}: took {took:?}"
        );
        assert_eq!(r.exitcode("main"), "0");
        // The files hold at least what the console got (the console may have been dropped).
        assert!(r.read_bytes("ctr/main/stdout").len() >= got.len().min(1));
    }
}

#[test]
fn nonblocking_console_pipe_and_socket_exact() {
    // Someone made the console O_NONBLOCK: a pipe (tee path) and a socket (plain path, whose
    // writes then meet EAGAIN), each read slowly so that the console is often full.
    for socket in [false, true] {
        let r = Root::new();
        let (out, err) = (pattern(8 << 20, 10, false), pattern(2 << 20, 11, true));
        let script = mixed_script(&r, &out, &err, "");
        let (reader, console): (Box<dyn std::io::Read + Send>, std::os::fd::OwnedFd) = if socket {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            b.set_nonblocking(true).unwrap();
            (Box::new(a), b.into())
        } else {
            let (rd, wr) = console_pipe(true);
            (Box::new(rd), wr)
        };
        let mut child = r
            .emissary(&["sh", "-c", &script])
            .stdout(console)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let con_out = read_slowly_bg(reader, 32 << 10, Duration::from_millis(1));
        let con_err = read_all_bg(child.stderr.take().unwrap());
        let status = child.wait().unwrap();
        assert_console_exact(
            status,
            con_out,
            con_err,
            &out,
            &format!(", socket {socket}"),
        );
        assert_capture_files(&r, &out, &err);
    }
}

// ---- logging ----

#[test]
fn json_and_level() {
    let r = Root::new();
    let mut c = r.cmd();
    c.args([
        "emissary",
        "--loglevel",
        "info",
        "--log-format",
        "json",
        "--",
        "true",
    ])
    .env("ARGO_INCLUDE_SCRIPT_OUTPUT", "true");
    let o = run(c);
    let line = stderr(&o)
        .lines()
        .find(|l| l.contains("capturing logs"))
        .map(str::to_owned)
        .expect("capturing logs line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["argo"], true);
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["msg"], "capturing logs");
    assert!(v["time"].as_str().unwrap().ends_with('Z'));

    let mut c = r.cmd();
    c.args(["emissary", "--loglevel", "error", "--", "true"])
        .env("ARGO_INCLUDE_SCRIPT_OUTPUT", "true");
    let o = run(c);
    assert!(!stderr(&o).contains("capturing logs"));

    let mut c = r.cmd();
    c.args(["emissary", "--", "true"])
        .env("ARGO_INCLUDE_SCRIPT_OUTPUT", "true");
    let o = run(c);
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("capturing logs"))
        .expect("capturing logs line");
    // v4's shape (Go's slog) when nothing says which upstream the image is built over.
    assert!(line.starts_with("time=2"), "{line}");
    assert!(
        line.contains(" level=INFO msg=\"capturing logs\" argo=true"),
        "{line}"
    );
}

#[test]
fn upstream_flags_accepted() {
    let r = Root::new();
    let mut c = r.cmd();
    c.arg("emissary").args(CONTROLLER_FLAGS).args([
        "--kubeconfig",
        "/nonexistent",
        "--",
        "sh",
        "-c",
        "exit 2",
    ]);
    assert_eq!(code(&run(c)), 2);
}

// ---- command resolution and bad input ----

#[test]
fn command_not_found() {
    let r = Root::with_template(r#"{"name":"hello-tmpl"}"#);
    let o = run(r.emissary(&["no-such-command-xyz"]));
    assert_eq!(code(&o), 64);
    assert_eq!(r.exitcode("main"), "64");
    let e = stderr(&o);
    assert!(e.contains("executable file not found in $PATH"), "{e}");
    assert!(e.contains("hello-tmpl") && e.contains("main"), "{e}");
    assert!(!e.contains("capturing logs"), "never attempted");
    assert!(r
        .read("termination-log")
        .contains("executable file not found"));
}

#[test]
fn not_executable_and_bad_format_are_distinct() {
    let r = Root::new();
    let plain = r.path("plain.txt");
    std::fs::write(&plain, "not a program\n").unwrap();
    let o = run(r.emissary(&[plain.to_str().unwrap()]));
    assert_eq!(code(&o), 64);
    assert!(
        stderr(&o).contains("not an executable file"),
        "{}",
        stderr(&o)
    );

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = run(r.emissary(&[plain.to_str().unwrap()]));
    assert_eq!(code(&o), 64);
    assert!(stderr(&o).contains("exec format error"), "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "64");
}

#[test]
fn argv0_is_resolved_path_and_args_verbatim() {
    let r = Root::new();
    let o = r.sh("printf '%s|' \"$0\" \"$@\"; printf '%s' \"$1\" > /dev/null");
    assert_eq!(code(&o), 0);
    let mut c = r.emissary(&[
        "sh",
        "-c",
        "printf '%s|' \"$0\" \"$@\"",
        "a b",
        "*",
        "$HOME",
        "",
    ]);
    c.env("PATH", "/usr/bin:/bin");
    let o = run(c);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out == "a b|*|$HOME||" || out.ends_with("|*|$HOME||"),
        "{out}"
    );
    // argv[0] of the child is the resolved path.
    let o = run(r.emissary(&["sh", "-c", "cat /proc/$$/cmdline | tr '\\0' ' '"]));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.starts_with('/') && out.contains("/sh -c"), "{out}");
}

#[test]
fn bad_templates() {
    for t in ["", "not json", "{\"outputs\":\"x\"}", "{\"sidecars\":5}"] {
        let r = Root::with_template(t);
        let o = r.sh("exit 0");
        assert_eq!(code(&o), 64, "template {t:?}");
        assert_eq!(r.exitcode("main"), "64");
        assert!(stderr(&o).contains("template"), "{}", stderr(&o));
    }
    let r = Root::new();
    std::fs::remove_file(r.path("template")).unwrap();
    let o = r.sh("exit 0");
    assert_eq!(code(&o), 64);
    assert!(stderr(&o).contains("ARGO_TEMPLATE"));
}

#[test]
fn template_from_env_when_file_missing() {
    let r = Root::new();
    std::fs::remove_file(r.path("template")).unwrap();
    let mut c = r.emissary(&["sh", "-c", "exit 6"]);
    c.env("ARGO_TEMPLATE", "{}");
    assert_eq!(code(&run(c)), 6);
    // The file wins over the variable.
    r.write("template", "{}");
    let mut c = r.emissary(&["sh", "-c", "exit 7"]);
    c.env("ARGO_TEMPLATE", "garbage");
    assert_eq!(code(&run(c)), 7);
}

#[test]
fn usage_errors_write_exitcode() {
    let r = Root::new();
    let mut c = r.cmd();
    c.args(["emissary", "--"]);
    let o = run(c);
    assert_eq!(code(&o), 64);
    assert_eq!(r.exitcode("main"), "64");
    assert!(stderr(&o).contains("no command"));

    let mut c = r.cmd();
    c.args(["emissary", "--no-such-flag", "--", "true"]);
    let o = run(c);
    assert_eq!(code(&o), 64);
    assert!(stderr(&o).contains("no-such-flag"), "{}", stderr(&o));
}

#[test]
fn termination_log_unwritable_is_ignored() {
    let r = Root::new();
    let mut c = r.emissary(&["no-such-command-xyz"]);
    c.env(
        "ARGOEXEC_TERMINATION_LOG",
        "/nonexistent/dir/termination-log",
    );
    let o = run(c);
    assert_eq!(code(&o), 64);
    assert_eq!(r.exitcode("main"), "64");
}

// ---- signals ----

fn spawn_emissary(r: &Root, script: &str) -> std::process::Child {
    r.emissary(&["sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_file(r: &Root, rel: &str) {
    assert!(
        wait_until(Duration::from_secs(5), || r.exists(rel)),
        "{rel} never appeared"
    );
}

fn kill(pid: u32, sig: i32) {
    // SAFETY: sending a signal to a process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

#[test]
fn signal_file_during_run() {
    for (sig, want) in [("15", 143), ("9", 137), (" 15\n", 143)] {
        let r = Root::new();
        let ready = r.path("ready");
        let child = spawn_emissary(&r, &format!("touch {}; sleep 30", ready.display()));
        wait_file(&r, "ready");
        let start = Instant::now();
        r.write("ctr/main/signal", sig);
        let o = child.wait_with_output().unwrap();
        assert_eq!(code(&o), want, "{sig:?}");
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(!r.exists("ctr/main/signal"));
        assert_eq!(r.exitcode("main"), want.to_string());
    }
}

#[test]
fn signal_file_garbage_is_ignored() {
    for content in ["", "garbage", "0", "-15", "99999999999999999999", "15 9"] {
        let r = Root::new();
        r.write("ctr/main/signal", content);
        let o = r.sh("sleep 0.3; exit 5");
        assert_eq!(code(&o), 5, "content {content:?}");
        assert_eq!(r.read("ctr/main/signal"), content, "left alone");
    }
}

#[test]
fn signal_file_that_is_a_directory_is_ignored() {
    let r = Root::new();
    std::fs::create_dir_all(r.path("ctr/main/signal")).unwrap();
    let o = r.sh("sleep 0.2; exit 5");
    assert_eq!(code(&o), 5);
    assert!(
        stderr(&o).matches("ignoring signal file").count() == 1,
        "logged once"
    );
}

#[test]
fn signal_file_kill_after_term_ignored() {
    let r = Root::new();
    let ready = r.path("ready");
    let child = spawn_emissary(
        &r,
        &format!(
            "trap '' TERM; touch {}; while :; do sleep 0.05; done",
            ready.display()
        ),
    );
    wait_file(&r, "ready");
    r.write("ctr/main/signal", "15");
    assert!(wait_until(Duration::from_secs(2), || !r.exists("ctr/main/signal")));
    std::thread::sleep(Duration::from_millis(200));
    r.write("ctr/main/signal", "9");
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 137);
}

#[test]
fn sigterm_reaches_child_and_grandchild() {
    let r = Root::new();
    let log = r.path("log");
    let ready = r.path("ready");
    let script = format!(
        "trap 'echo child >> {log}; exit 3' TERM; \
         sh -c 'trap \"echo grandchild >> {log}; exit 0\" TERM; sleep 30 & wait' & \
         touch {ready}; sleep 30 & wait",
        log = log.display(),
        ready = ready.display()
    );
    let child = spawn_emissary(&r, &script);
    wait_file(&r, "ready");
    std::thread::sleep(Duration::from_millis(100));
    kill(child.id(), libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(wait_until(Duration::from_secs(2), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("grandchild"))
    }));
    assert!(std::fs::read_to_string(&log).unwrap().contains("child"));
}

#[test]
fn emissary_survives_abrt_sys_trap_and_forwards_them() {
    for sig in [libc::SIGABRT, libc::SIGSYS, libc::SIGTRAP, libc::SIGUSR2] {
        let r = Root::new();
        let ready = r.path("ready");
        let child = spawn_emissary(&r, &format!("touch {}; sleep 30", ready.display()));
        wait_file(&r, "ready");
        kill(child.id(), sig);
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            code(&o),
            128 + sig,
            "signal {sig}: the child died of it, we did not"
        );
        assert_eq!(r.exitcode("main"), (128 + sig).to_string());
    }
}

#[test]
fn tstp_is_forwarded_and_never_stops_the_emissary() {
    // A shell would stop its `sleep` on TSTP; python keeps the group to one process.
    let r = Root::new();
    let ready = r.path("ready");
    let got = r.path("got");
    let script = format!(
        "import signal, sys, time\n\
         def h(n, f):\n    open({g:?}, 'a').write(signal.Signals(n).name + '\\n')\n    \
         n == signal.SIGTTOU and sys.exit(9)\n\
         for s in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU): signal.signal(s, h)\n\
         open({r:?}, 'w').close()\n\
         while True: time.sleep(0.02)\n",
        g = got.display().to_string(),
        r = ready.display().to_string()
    );
    let child = r
        .emissary(&["python3", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_file(&r, "ready");
    for sig in [libc::SIGTSTP, libc::SIGTTIN] {
        kill(child.id(), sig);
        std::thread::sleep(Duration::from_millis(150));
    }
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_ne!(state, "T", "the emissary stopped itself");
    kill(child.id(), libc::SIGTTOU);
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 9, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&got).unwrap(),
        "SIGTSTP\nSIGTTIN\nSIGTTOU\n"
    );
}

#[test]
fn child_gets_clean_signal_state() {
    let r = Root::new();
    let o = r.sh("grep -E '^Sig(Blk|Ign)' /proc/self/status; yes | head -1");
    assert_eq!(code(&o), 0);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
    // SIGPIPE (bit 13) at its default, so `yes | head -1` ends at once.
    assert!(out.contains("SigIgn:\t0000000000000000"), "{out}");
    assert!(out.ends_with("y\n"));
}

#[test]
fn orphan_status_is_not_the_childs() {
    // A grandchild, re-parented to the emissary (a subreaper), exits 9 before the child exits 0.
    let r = Root::new();
    let o = r.sh("(sh -c 'exit 9' &); sleep 0.2; exit 0");
    assert_eq!(code(&o), 0);
}

#[test]
fn exit_is_prompt_with_background_processes_without_capture() {
    let r = Root::new();
    let mut c = r.emissary(&["sh", "-c", "sleep 30 & exit 0"]);
    c.env_remove("ARGO_INCLUDE_SCRIPT_OUTPUT");
    // The background sleep holds whatever fds it inherited: give it none we wait on.
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    let status = c.status().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

// ---- other subcommands ----

#[test]
fn kill_subcommand() {
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let r = Root::new();
    let mut c = r.cmd();
    c.args(["kill", "TERM", &sleeper.id().to_string()]);
    let o = run(c);
    assert_eq!(code(&o), 0);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("killing {} with SIGTERM\n", sleeper.id())
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sleeper.wait().unwrap().signal(), Some(libc::SIGTERM));

    for bad in [
        vec!["kill", "15"],
        vec!["kill", "NOPE", "1"],
        vec!["kill", "15", "x"],
        vec!["kill", "15", "999999999"],
    ] {
        let mut c = r.cmd();
        c.args(&bad);
        let o = run(c);
        assert_eq!(code(&o), 64, "{bad:?}");
        assert!(stderr(&o).starts_with("Error: "), "{bad:?}");
    }
}

#[test]
fn version_and_help() {
    let r = Root::new();
    let mut c = r.cmd();
    c.arg("version");
    let o = run(c);
    assert_eq!(code(&o), 0);
    let v = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(v.starts_with("argoexec ") && v.contains("linux"), "{v}");
    let mut c = r.cmd();
    c.arg("--help");
    assert!(String::from_utf8_lossy(&run(c).stdout).contains("emissary"));
}

#[test]
fn other_subcommands_are_delegated() {
    let r = Root::new();
    let mut c = r.cmd();
    c.args(["wait", "--loglevel", "info"]);
    let o = run(c);
    assert_eq!(code(&o), 64);
    assert!(stderr(&o).contains("ARGOEXEC_UPSTREAM"));

    // With an upstream, exec'd with the very same argv (argv[0] included).
    let script = r.path("upstream.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"$0|$*\"\nexit 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = r.cmd();
    c.args(["resource", "create", "--x", "y"])
        .env("ARGOEXEC_UPSTREAM", &script);
    let o = run(c);
    assert_eq!(code(&o), 3);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.ends_with("|resource create --x y\n"), "{out}");
}

// ---- tty: true ----

/// Runs the emissary on a fresh outer terminal of 37x91 (python's pty), resizes that terminal to
/// 50x120 once the child says `ready`, and returns everything the terminal showed.
fn on_terminal(r: &Root, script: &str) -> (i32, String) {
    let helper = r#"
import fcntl, os, struct, subprocess, sys, termios, time
m, s = os.openpty()
fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack('HHHH', 37, 91, 0, 0))
def ctty():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
p = subprocess.Popen(sys.argv[1:], stdin=s, stdout=s, stderr=s, preexec_fn=ctty)
os.close(s)
out = b''
resized = False
while True:
    try:
        chunk = os.read(m, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if not resized and b'ready' in out:
        time.sleep(0.1)
        fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack('HHHH', 50, 120, 0, 0))
        resized = True
sys.stdout.write(out.decode('utf-8', 'replace'))
sys.exit(p.wait())
"#;
    let mut c = std::process::Command::new("python3");
    c.arg("-c")
        .arg(helper)
        .arg(bin())
        .args(["emissary", "--", "sh", "-c", script]);
    c.env("ARGOEXEC_VAR_RUN_ARGO", &r.dir)
        .env("ARGO_INCLUDE_SCRIPT_OUTPUT", "true")
        .env_remove("ARGO_CONTAINER_NAME");
    let o = run(c);
    (code(&o), String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn tty_child_gets_its_own_terminal_and_window_size() {
    let r = Root::new();
    let (rc, out) = on_terminal(
        &r,
        "test -t 0 && test -t 1 && test -t 2 && echo tty-ok; stty size; exit 4",
    );
    assert_eq!(rc, 4, "{out}");
    assert!(out.contains("tty-ok"), "{out}");
    assert!(out.contains("37 91"), "{out}");
    assert_eq!(r.exitcode("main"), "4");
    // Captured through the terminal: stdout and stderr merged, with the terminal's CR LF.
    let captured = r.read("ctr/main/stdout");
    assert!(captured.starts_with("tty-ok\r\n37 91"), "{captured:?}");
    assert_eq!(captured, r.read("ctr/main/combined"));
}

#[test]
fn tty_window_size_follows_sigwinch() {
    let r = Root::new();
    let (rc, out) = on_terminal(
        &r,
        "trap 'stty size; exit 0' WINCH; echo ready; i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; exit 9",
    );
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("50 120"), "{out}");
}

#[test]
fn tty_terminal_restored_after_run() {
    // The outer terminal is put in raw mode for the run and given back as it was.
    let r = Root::new();
    let mut c = std::process::Command::new("script");
    c.args(["-qec"])
        .arg(format!(
            "stty -g > {before}; {bin} emissary -- true; stty -g > {after}",
            before = r.path("before").display(),
            after = r.path("after").display(),
            bin = bin().display()
        ))
        .arg("/dev/null")
        .env("ARGOEXEC_VAR_RUN_ARGO", &r.dir);
    let o = run(c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(r.read("before"), r.read("after"));
}

#[test]
fn failures_name_the_container_and_template() {
    // An output that cannot be saved, in a template with a name.
    let r = Root::new();
    let dir = r.path("a-dir");
    std::fs::create_dir_all(&dir).unwrap();
    r.write(
        "template",
        &format!(
            r#"{{"name":"report-step","outputs":{{"parameters":[{{"name":"p","valueFrom":{{"path":"{}"}}}}]}}}}"#,
            dir.display()
        ),
    );
    let o = r.sh("exit 0");
    assert_eq!(code(&o), 64);
    let e = stderr(&o);
    assert!(
        e.contains("(container main, template \"report-step\")"),
        "{e}"
    );
    assert!(r.read("termination-log").contains("report-step"));

    // Before the template is read, the container alone.
    let r = Root::with_template("not json");
    let mut c = r.emissary(&["true"]);
    c.env("ARGO_CONTAINER_NAME", "side");
    let o = run(c);
    assert!(stderr(&o).contains("(container side)"), "{}", stderr(&o));
}
