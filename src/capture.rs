//! Output capture: the child's stdout and stderr, copied by two blocking threads to the
//! container's own stdout/stderr and to `ctr/C/stdout` and `ctr/C/combined` (SPEC section 3 step 8).
//!
//! The plain loop: wait for data (or the stop pipe), read a chunk, write it to the console,
//! then to the files, each chunk in one `write` so `combined` never interleaves inside a
//! chunk. A console that fails (EPIPE) is dropped for that stream only; a file that fails
//! (ENOSPC) is dropped and the capture marked incomplete, while the console copy goes on, so a
//! full disk never blocks the child.
//!
//! Zero copy, tried first: when the console is a pipe (as under a container runtime), the
//! thread grows it to 1 MiB if smaller (each `tee` moves at most what it has room for), then
//! `tee(2)`s the child's pipe into it, so the console's copy never passes through user space,
//! and reads exactly what was teed for the files (which stay `O_APPEND` and written by
//! `write`: the kernel refuses `splice` into an append-only file). Any error there (not a pipe,
//! EPIPE) hands the stream to the plain loop, which goes on from the same byte.
//!
//! The end: when the direct child has exited, the supervisor waits for both threads to reach
//! EOF (they close their end of the `done` pipe), at most 100 ms; then it closes the `stop`
//! pipe, and each thread drains what is already in its pipe without blocking and returns. A
//! grandchild that still holds the pipe open therefore never delays the step longer than that.
//! On the zero-copy path a console pipe that stays full for a second after the stop is given up
//! for the rest of that stream, so a console nobody reads cannot hold the step either.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::fsx::{self, write_all};
use crate::log;
use crate::signals;

const CHUNK: usize = 128 * 1024;
/// After the stop, how long a full console pipe may take nothing before it is given up for the
/// rest of the stream (the files still get it): a console that is read never stalls that long,
/// and one that is not must not hold the step forever.
const CONSOLE_STALL_MS: i32 = 1000;
/// Larger pipes mean fewer wake-ups under a fast writer; refused sizes are harmless.
const PIPE_SIZE: i32 = 1 << 20;

/// The running copy threads.
pub struct Capture {
    threads: Vec<JoinHandle<Option<String>>>,
    done: OwnedFd,
    stop: Option<OwnedFd>,
    /// The pty master, when the child is on a terminal: its size follows ours.
    tty: Option<OwnedFd>,
}

/// The write ends the child gets as fd 1 and fd 2.
pub struct ChildEnds {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// A capture file and its name for messages.
type Sink = (File, String);

/// Opens `stdout` and `combined` in `dir` for appending, mode 0666.
fn open_files(dir: &Path) -> Result<(Sink, Sink)> {
    let open = |name: &str| {
        let path = dir.join(name);
        fsx::open_append(&path, 0o666)
            .map(|f| (f, path.display().to_string()))
            .map_err(|e| Error::io("failed to open", path.display(), e))
    };
    Ok((open("stdout")?, open("combined")?))
}

fn clone_sink(s: &Sink) -> Result<Sink> {
    let f =
        s.0.try_clone()
            .map_err(|e| Error::new(format!("failed to open {}: {e}", s.1)))?;
    Ok((f, s.1.clone()))
}

fn pipe_or_fail() -> Result<(OwnedFd, OwnedFd)> {
    pipe().map_err(|e| Error::new(format!("failed to create capture pipes: {e}")))
}

/// Starts the copy threads: each output stream holds a copy of the `done` pipe's write end
/// until it ends, and all of them watch the `stop` pipe.
struct Threads {
    done_w: OwnedFd,
    done_r: OwnedFd,
    stop_r: Arc<OwnedFd>,
    stop_w: OwnedFd,
    threads: Vec<JoinHandle<Option<String>>>,
}

impl Threads {
    fn new() -> Result<Threads> {
        let (done_r, done_w) = pipe_or_fail()?;
        let (stop_r, stop_w) = pipe_or_fail()?;
        Ok(Threads {
            done_w,
            done_r,
            stop_r: Arc::new(stop_r),
            stop_w,
            threads: Vec::new(),
        })
    }

    /// Starts `stream`; `output` streams count towards `done`, the tty's input pump does not.
    fn add(&mut self, stream: Stream, output: bool) -> Result<()> {
        let done = if output {
            Some(
                self.done_w
                    .try_clone()
                    .map_err(|e| Error::new(format!("failed to start capture: {e}")))?,
            )
        } else {
            None
        };
        let stop = Arc::clone(&self.stop_r);
        let t = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                signals::reblock();
                let r = stream.run(stop.as_raw_fd());
                drop(done);
                r
            })
            .map_err(|e| Error::new(format!("failed to start capture thread: {e}")))?;
        // glibc unblocked 32 and 33 in this thread too: block them again (signals::reblock).
        signals::reblock();
        self.threads.push(t);
        Ok(())
    }

    fn into_capture(self) -> Capture {
        // Our own copy of `done`'s write end goes, so EOF means every output stream ended.
        drop(self.done_w);
        Capture {
            threads: self.threads,
            done: self.done_r,
            stop: Some(self.stop_w),
            tty: None,
        }
    }
}

/// Opens the capture files in `dir` and starts the two copy threads over two new pipes.
pub fn start(dir: &Path) -> Result<(Capture, ChildEnds)> {
    let (stdout_file, combined) = open_files(dir)?;
    let combined2 = clone_sink(&combined)?;
    let (out_r, out_w) = pipe_or_fail()?;
    let (err_r, err_w) = pipe_or_fail()?;
    for fd in [&out_r, &err_r] {
        // SAFETY: fd is an open pipe; F_SETPIPE_SZ only resizes its buffer.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) } < 0 {
            // Refused (over the user's pipe limit): the default size works too, only slower.
        }
    }
    let mut t = Threads::new()?;
    for (src, console, files) in [
        (out_r, 1, vec![stdout_file, combined]),
        (err_r, 2, vec![combined2]),
    ] {
        let mut s = Stream::new(src, console, files);
        s.try_tee = true;
        t.add(s, true)?;
    }
    Ok((
        t.into_capture(),
        ChildEnds {
            stdout: out_w,
            stderr: err_w,
        },
    ))
}

/// A child on a pseudo-terminal: its output (stdout and stderr merged by the terminal) is
/// copied from `master` to our stdout and, when `files_dir` is given, to both capture files;
/// our stdin is pumped into `master`.
pub fn start_tty(files_dir: Option<&Path>, master: OwnedFd) -> Result<Capture> {
    let files = match files_dir {
        Some(dir) => {
            let (stdout_file, combined) = open_files(dir)?;
            vec![stdout_file, combined]
        }
        None => Vec::new(),
    };
    let dup = || {
        master
            .try_clone()
            .map_err(|e| Error::new(format!("failed to set up the terminal: {e}")))
    };
    let input = dup()?;
    let resize = dup()?;
    let mut t = Threads::new()?;
    t.add(Stream::new(master, 1, files), true)?;
    let mut pump = Stream::new(dup_stdin()?, input.as_raw_fd(), Vec::new());
    pump._keep = Some(input);
    pump.drain_on_stop = false;
    t.add(pump, false)?;
    let mut c = t.into_capture();
    c.tty = Some(resize);
    Ok(c)
}

/// A duplicate of fd 0, so the pump owns what it reads from without closing our stdin.
fn dup_stdin() -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on fd 0 returns a new descriptor or -1.
    let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(Error::new(format!(
            "failed to set up the terminal: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: fd is a fresh descriptor owned only here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Capture {
    /// On SIGWINCH: the child's terminal takes our new window size (the kernel then tells the
    /// child's foreground group).
    pub fn follow_window_size(&self) {
        if let Some(m) = &self.tty {
            crate::pty::copy_window_size(0, m.as_raw_fd());
        }
    }

    /// Readable (at EOF) once every thread has finished on its own.
    pub fn done_fd(&self) -> i32 {
        self.done.as_raw_fd()
    }

    /// Tells the threads to drain what is buffered and stop, joins them, and reports the first
    /// file that could not be written completely.
    pub fn finish(mut self) -> Result<()> {
        drop(self.stop.take());
        let mut first = None;
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(None) => {}
                Ok(Some(msg)) => {
                    first.get_or_insert(msg);
                }
                Err(_) => {
                    first.get_or_insert_with(|| "capture thread failed".to_string());
                }
            }
        }
        match first {
            None => Ok(()),
            Some(msg) => Err(Error::new(format!("capture is incomplete: {msg}"))),
        }
    }
}

struct Stream {
    src: OwnedFd,
    console: Option<i32>,
    files: Vec<Sink>,
    incomplete: Option<String>,
    /// Whether a stop takes what is already buffered (outputs) or leaves it (the tty's input).
    drain_on_stop: bool,
    /// Keeps the descriptor `console` names open while the stream runs.
    _keep: Option<OwnedFd>,
    /// Whether `src` is one of the child's pipes, so `tee(2)` may copy it to a console pipe.
    try_tee: bool,
}

impl Stream {
    fn new(src: OwnedFd, console: i32, files: Vec<Sink>) -> Stream {
        Stream {
            src,
            console: Some(console),
            files,
            incomplete: None,
            drain_on_stop: true,
            _keep: None,
            try_tee: false,
        }
    }

    fn run(mut self, stop: i32) -> Option<String> {
        let mut buf = vec![0u8; CHUNK];
        if self.try_tee && self.tee(stop, &mut buf) {
            return self.incomplete;
        }
        let src = self.src.as_raw_fd();
        while let Ok(revents) = signals::poll(&[(src, libc::POLLIN), (stop, libc::POLLIN)], -1) {
            // The stop first: a grandchild that never stops writing must not hide it.
            if revents[1] != 0 {
                break;
            }
            if revents[0] != 0 {
                match read(src, &mut buf) {
                    Ok(0) => return self.incomplete,
                    Ok(n) => self.copy(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return self.incomplete,
                }
            }
        }
        if !self.drain_on_stop {
            return self.incomplete;
        }
        // Stopped: take what is already in the pipe without waiting for more.
        // SAFETY: src is our open pipe; O_NONBLOCK only changes how read behaves.
        let nonblocking = unsafe {
            let fl = libc::fcntl(src, libc::F_GETFL);
            fl >= 0 && libc::fcntl(src, libc::F_SETFL, fl | libc::O_NONBLOCK) == 0
        };
        if !nonblocking {
            // Draining would block on a pipe a grandchild holds: leave what is buffered.
            return self.incomplete;
        }
        // What is in the pipe now, and no more: everything the child wrote is in it, and a
        // grandchild that goes on writing is not waited for.
        let mut left = buffered(src);
        while left > 0 {
            let want = left.min(buf.len());
            match read(src, &mut buf[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.copy(&buf[..n]);
                    left -= n;
                }
            }
        }
        self.incomplete
    }

    /// The zero-copy path, tried first for the child's pipes: while the console is a pipe,
    /// `tee(2)` duplicates the pipe's pages into it inside the kernel, and then exactly that
    /// many bytes are read and written to the files. Both pipes are used non-blocking with a
    /// `poll` beside the stop pipe, so neither a quiet child nor a full console hides a stop.
    /// Returns true when the stream is over; false hands the rest to the plain loop (console
    /// not a pipe, gone, or stalled after the stop).
    fn tee(&mut self, stop: i32, buf: &mut [u8]) -> bool {
        let Some(con) = self.console else {
            return false;
        };
        // SAFETY: F_GETPIPE_SZ only reads the pipe's size; it fails on anything else.
        let size = unsafe { libc::fcntl(con, libc::F_GETPIPE_SZ) };
        if size < 0 {
            return false;
        }
        // Each tee moves at most what the console has room for: at the usual 64 KiB the extra
        // wake-ups ate what the saved copy gains, so a smaller console pipe is grown like ours.
        // SAFETY: F_SETPIPE_SZ only resizes the pipe's buffer.
        if size < PIPE_SIZE && unsafe { libc::fcntl(con, libc::F_SETPIPE_SZ, PIPE_SIZE) } < 0 {
            // Refused (the pipe owner's limit): tee works all the same, in smaller steps.
        }
        let src = self.src.as_raw_fd();
        // Set when `tee` found no room while the pipe held data: then wait for the console.
        let mut full = false;
        // Once the stop has come: the bytes still to copy, of those in the pipe at the stop.
        let mut left: Option<usize> = None;
        loop {
            if left == Some(0) {
                return true;
            }
            let want = left.map_or(buf.len(), |l| l.min(buf.len()));
            // SAFETY: tee takes two descriptors and a length; it touches no memory of ours.
            let n = unsafe { libc::tee(src, con, want, libc::SPLICE_F_NONBLOCK) };
            if n > 0 {
                full = false;
                let n = n as usize;
                let chunk = &mut buf[..n];
                // Those bytes are in the pipe, so this read takes exactly them at once; if it
                // fails, the plain loop's read fails alike and ends the stream as it always did.
                if read_exact(src, chunk).is_err() {
                    return false;
                }
                self.write_files(chunk);
                match &mut left {
                    Some(l) => *l -= n,
                    // Data that never runs out keeps the loop from the poll below, which
                    // watches the stop: look at it here.
                    None if stop_pending(stop) => left = Some(buffered(src)),
                    None => {}
                }
                continue;
            }
            if n == 0 {
                return true;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => {}
                Some(libc::EPIPE) => {
                    // The reader is gone; the files still get every byte.
                    self.console = None;
                    return false;
                }
                // EINVAL: the console is no pipe after all; the plain loop copies the same.
                _ => return false,
            }
            // After the stop, wait for nothing new, and for a full console only a while.
            let stopped = left.is_some();
            let (fd, events, wait) = match (full, stopped) {
                (false, false) => (src, libc::POLLIN, -1),
                (false, true) => (src, libc::POLLIN, 0),
                (true, false) => (con, libc::POLLOUT, -1),
                (true, true) => (con, libc::POLLOUT, CONSOLE_STALL_MS),
            };
            // Once stopped, the stop pipe stays readable: leave it out (poll skips fd -1).
            let stop_fd = if stopped { -1 } else { stop };
            // An error or hang-up counts as ready: the next call on it tells what happened.
            let Ok(revents) = signals::poll(&[(fd, events), (stop_fd, libc::POLLIN)], wait) else {
                return false;
            };
            let ready = revents[0] != 0;
            if revents[1] != 0 {
                left = Some(buffered(src));
            }
            let stopped = left.is_some();
            if ready {
                // The pipe has data (or is at EOF): an EAGAIN now means the console is full;
                // or the console has room again.
                full = !full;
            } else if stopped && !full {
                // Stopped, and nothing left in the pipe.
                return true;
            } else if stopped && wait > 0 {
                log::warn(
                    "console takes no more output; the rest goes to the capture files only",
                    &[("stream", if con == 1 { "stdout" } else { "stderr" })],
                );
                self.console = None;
                return false;
            }
        }
    }

    fn copy(&mut self, chunk: &[u8]) {
        if let Some(fd) = self.console {
            if write_all(fd, chunk).is_err() {
                // EPIPE or similar: the reader is gone; the files still get every byte.
                self.console = None;
            }
        }
        self.write_files(chunk);
    }

    /// Writes `chunk` to every file; one that fails is dropped and the capture incomplete.
    fn write_files(&mut self, chunk: &[u8]) {
        let incomplete = &mut self.incomplete;
        self.files.retain(|(file, name)| {
            let Err(e) = write_all(file.as_raw_fd(), chunk) else {
                return true;
            };
            log::warn(
                "failed to write capture file; the console copy goes on",
                &[("file", name), ("error", &e.to_string())],
            );
            incomplete.get_or_insert_with(|| format!("writing {name}: {e}"));
            false
        });
    }
}

/// A pipe with both ends close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded; each descriptor is fresh and owned only here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Bytes waiting in pipe (or pty) `fd`; unbounded when the kernel cannot say, so the caller
/// reads until the pipe is empty instead.
fn buffered(fd: i32) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the valid pointer given.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } < 0 {
        return usize::MAX;
    }
    usize::try_from(n).unwrap_or(0)
}

/// Whether the stop pipe has been closed, without waiting.
fn stop_pending(stop: i32) -> bool {
    matches!(signals::poll(&[(stop, libc::POLLIN)], 0).as_deref(), Ok([r]) if *r != 0)
}

/// Reads exactly `buf.len()` bytes that are known to be in the pipe already.
fn read_exact(fd: i32, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match read(fd, buf)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}

fn read(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
