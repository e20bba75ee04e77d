//! Output capture: the child's stdout and stderr, copied by blocking threads (one per stream,
//! one for the files) to the container's own stdout/stderr and to `ctr/C/stdout` and
//! `ctr/C/combined` (SPEC section 3 step 8).
//!
//! The loop: wait for data (or the stop pipe), read a chunk, queue it for the files, write it
//! to the console. A file that fails (ENOSPC) is dropped and the capture marked incomplete,
//! while the console copy goes on, so a full disk never blocks the child. The console is written
//! through `sys::console`: while the child runs, a console that takes nothing holds this thread and
//! so, once the pipe is full, the child, exactly as it would without the emissary; once the
//! stop has come, a console that takes nothing for a second is given up and the files get the
//! rest. A console that fails (EPIPE) is dropped for the rest of the run.
//!
//! The files have a thread of their own (`Files`): the output streams hand it each chunk
//! they read, at most `QUEUED` waiting, and go on to the console and the next read while it
//! writes the files, the costliest part of a captured byte (measured: 1.2x to 1.3x the
//! throughput of doing all in one thread, at no more CPU; docs/design.md). A chunk is shared, not
//! copied: the stream writes the console and the files' thread the files from one buffer,
//! and whichever is done last puts it back for reuse.
//!
//! The order in `combined`: both output streams hold the queue's lock from the `read` of a
//! chunk to its queueing, and the files' thread writes the queue in order, so chunks reach
//! `combined` whole and exactly in the order they were read. What the two streams cannot see
//! is which of their two pipes was written first: when the child writes to stdout and stderr
//! further apart than a thread takes to wake (tens of microseconds, more on a busy node),
//! `combined` has them in the order written; closer than that, either order, each chunk whole.
//!
//! No pipe is grown (SPEC 3.8: pipe pages are charged to a per-uid budget the whole node
//! shares). The zero-copy path this module once had (`tee(2)` into a console pipe) only paid
//! with pipes grown to 1 MiB; with the kernel's 64 KiB it cost more CPU than the plain copy and
//! was no faster, so it is gone.
//!
//! The end: when the direct child has exited, the supervisor waits for both threads to reach
//! EOF (they close their end of the `done` pipe), at most 100 ms; then it closes the `stop`
//! pipe, and each thread copies what is already in its pipe without blocking and returns. A
//! grandchild that still holds the pipe open therefore never delays the step longer than that.

pub mod pty;

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::sys::console::{self, Console, Patience, Wrote};
use crate::sys::error::{Error, Result};
use crate::sys::fsx::{self, write_all};
use crate::sys::log;
use crate::sys::signals;

/// What one read takes at most: a whole kernel-default pipe.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the files' thread at most, so a slow file holds the child back (as a
/// slow console does) instead of filling our memory.
const QUEUED: usize = 4;
/// After the stop, how much a pty master may still yield beyond what it counted then.
const PTY_DRAIN_MAX: usize = 1 << 20;

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

fn start_failed(e: io::Error) -> Error {
    Error::new(format!("failed to start capture: {e}"))
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
            Some(self.done_w.try_clone().map_err(start_failed)?)
        } else {
            None
        };
        let stop = Arc::clone(&self.stop_r);
        self.spawn(move || {
            stream.run(stop.as_raw_fd());
            drop(done);
            None
        })
    }

    /// Starts the files' thread over `sinks`, fed by `streams` output streams.
    fn add_files(&mut self, sinks: Vec<(Sink, bool)>, streams: usize) -> Result<Arc<Files>> {
        let files = Arc::new(Files {
            queue: Mutex::new(Queue {
                chunks: Vec::new(),
                spare: Vec::new(),
                open: streams,
            }),
            moved: Condvar::new(),
        });
        let f = Arc::clone(&files);
        self.spawn(move || f.run(sinks))?;
        Ok(files)
    }

    fn spawn(&mut self, run: impl FnOnce() -> Option<String> + Send + 'static) -> Result<()> {
        let t = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                signals::reblock();
                run()
            })
            .map_err(start_failed)?;
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
    let (out_r, out_w) = pipe_or_fail()?;
    let (err_r, err_w) = pipe_or_fail()?;
    let mut t = Threads::new()?;
    // `combined` takes every chunk, `stdout` only stdout's.
    let files = t.add_files(vec![(combined, false), (stdout_file, true)], 2)?;
    for (src, console) in [(out_r, 1), (err_r, 2)] {
        let mut s = Stream::new(src, console::get(console), Some(Arc::clone(&files)));
        s.from_stdout = console == 1;
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
    let sinks = match files_dir {
        Some(dir) => {
            let (stdout_file, combined) = open_files(dir)?;
            Some(vec![(stdout_file, false), (combined, false)])
        }
        None => None,
    };
    let dup = || {
        master
            .try_clone()
            .map_err(|e| Error::new(format!("failed to set up the terminal: {e}")))
    };
    // The pump writes to the master without blocking, so a child that never reads its input
    // cannot hold the pump past the stop (the master's one description is shared by both
    // threads: the output side reads it only after a poll, and takes EAGAIN as "nothing").
    let input = Console::owned(dup()?)
        .map_err(|e| Error::new(format!("failed to set up the terminal: {e}")))?;
    let resize = dup()?;
    let mut t = Threads::new()?;
    let files = match sinks {
        Some(sinks) => Some(t.add_files(sinks, 1)?),
        None => None,
    };
    let mut out = Stream::new(master, console::get(1), files);
    out.pty = true;
    t.add(out, true)?;
    let mut pump = Stream::new(dup_stdin()?, Some(Arc::new(input)), None);
    pump.output = false;
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
            crate::capture::pty::copy_window_size(0, m.as_raw_fd());
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
    console: Option<Arc<Console>>,
    /// The files' thread, when this stream is captured.
    files: Option<Arc<Files>>,
    /// This stream is the child's stdout (its chunks go to the `stdout` file too).
    from_stdout: bool,
    /// What an uncaptured stream reads into (its only owner).
    buf: Option<Arc<Vec<u8>>>,
    /// An output stream copies what is buffered at the stop; the tty's input pump leaves it.
    output: bool,
    /// The stop came while the console held this thread.
    stopped: bool,
    /// `src` is a pty master (see the drain in `run`).
    pty: bool,
}

/// A chunk read: `buf[..n]`. A captured stream shares the buffer with the files' thread.
struct Chunk {
    buf: Arc<Vec<u8>>,
    n: usize,
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.n]
    }
}

impl Stream {
    fn new(src: OwnedFd, console: Option<Arc<Console>>, files: Option<Arc<Files>>) -> Stream {
        Stream {
            src,
            console,
            files,
            from_stdout: true,
            buf: None,
            output: true,
            stopped: false,
            pty: false,
        }
    }

    fn run(mut self, stop: i32) {
        let src = self.src.as_raw_fd();
        while !self.stopped {
            let Ok(revents) = signals::poll(&[(src, libc::POLLIN), (stop, libc::POLLIN)], -1)
            else {
                break;
            };
            // The stop first: a grandchild that never stops writing must not hide it.
            if revents[1] != 0 {
                break;
            }
            if revents[0] == 0 {
                continue;
            }
            match self.take(src, CHUNK) {
                Ok(c) if c.n == 0 => return,
                Ok(c) => self.send_console(c, Patience::Until(stop)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !self.output {
            return;
        }
        // Stopped: take what is already in the pipe without waiting for more.
        if console::set_nonblocking(src).is_err() {
            // Draining would block on a pipe a grandchild holds: leave what is buffered.
            return;
        }
        // What is in the pipe now, and no more: everything the child wrote is in it, and a
        // grandchild that goes on writing is not waited for.
        let mut left = buffered(src);
        // A pty master counts only what its line discipline holds; more of what the child
        // wrote may still come from the terminal's own buffers as that is read: look again
        // briefly, within a bound, so a process still on the terminal cannot hold the end.
        let mut extra = if self.pty { PTY_DRAIN_MAX } else { 0 };
        loop {
            if left == 0 {
                let more = extra > 0
                    && matches!(signals::poll(&[(src, libc::POLLIN)], 20).as_deref(), Ok([r]) if *r != 0);
                if !more {
                    break;
                }
                left = buffered(src).clamp(1, extra);
                extra -= left;
            }
            match self.take(src, left.min(CHUNK)) {
                Ok(c) if c.n > 0 => {
                    left = left.saturating_sub(c.n);
                    self.send_console(c, Patience::Stall);
                }
                _ => break,
            }
        }
    }

    /// Reads one chunk of at most `max` bytes; a captured one is queued for the files.
    fn take(&mut self, src: i32, max: usize) -> io::Result<Chunk> {
        if let Some(f) = &self.files {
            return f.read(src, max, self.from_stdout);
        }
        // Never shared: `into_inner` always hands the buffer back.
        let mut buf = (self.buf.take().and_then(Arc::into_inner)).unwrap_or_else(|| vec![0; CHUNK]);
        let n = read(src, &mut buf[..max])?;
        Ok(Chunk {
            buf: Arc::new(buf),
            n,
        })
    }

    /// Copies `chunk` to the console, waiting as `patience` allows, then gives its buffer back.
    fn send_console(&mut self, chunk: Chunk, patience: Patience) {
        if let Some(c) = &self.console {
            let gone = match c.write(chunk.bytes(), patience) {
                Wrote::All => false,
                Wrote::Stopped(n) => {
                    // The child has exited: the console now gets a second without progress.
                    self.stopped = true;
                    self.output && c.write(&chunk.bytes()[n..], Patience::Stall) == Wrote::Lost
                }
                Wrote::Lost => true,
            };
            log::note_given_up(c);
            if gone || c.is_gone() {
                self.console = None;
            }
        }
        match &self.files {
            Some(f) => f.recycle(chunk.buf),
            None => self.buf = Some(chunk.buf),
        }
    }
}

impl Drop for Stream {
    /// A stream that ends (or fails) no longer feeds the files' thread.
    fn drop(&mut self) {
        if let Some(f) = &self.files {
            f.lock().open -= 1;
            f.moved.notify_all();
        }
    }
}

/// The capture files and the thread that writes them: the chunks the output streams read, in
/// the order read, `combined` taking all and `stdout` only stdout's. A file that fails (ENOSPC)
/// is dropped and the capture marked incomplete; the others go on.
struct Files {
    queue: Mutex<Queue>,
    /// Signalled when a chunk is queued or taken, or a stream ends.
    moved: Condvar,
}

struct Queue {
    /// Waiting for the files: a buffer, its length, and whether stdout read it. A few at
    /// most (`QUEUED`), so a Vec taken from the front.
    chunks: Vec<(Arc<Vec<u8>>, usize, bool)>,
    /// Buffers back from both sides, to read into again.
    spare: Vec<Vec<u8>>,
    /// Output streams still feeding.
    open: usize,
}

impl Files {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, q: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        self.moved.wait(q).unwrap_or_else(|e| e.into_inner())
    }

    /// Reads a chunk of at most `max` bytes from `src` and queues it, under the lock: chunks
    /// are queued, and reach `combined`, in the order they were read. Waits while `QUEUED`
    /// chunks are waiting.
    fn read(&self, src: i32, max: usize, from_stdout: bool) -> io::Result<Chunk> {
        let mut q = self.lock();
        while q.chunks.len() >= QUEUED {
            q = self.wait(q);
        }
        let mut buf = q.spare.pop().unwrap_or_else(|| vec![0; CHUNK]);
        // A buffer lost with an error (EAGAIN on a shared pty master) is simply made again.
        let n = read(src, &mut buf[..max])?;
        let buf = Arc::new(buf);
        if n > 0 {
            // The files' thread waits only on an empty queue: a wake-up costs a syscall.
            if q.chunks.is_empty() {
                self.moved.notify_all();
            }
            q.chunks.push((Arc::clone(&buf), n, from_stdout));
        }
        Ok(Chunk { buf, n })
    }

    /// Takes a buffer back once both sides are done with it.
    fn recycle(&self, buf: Arc<Vec<u8>>) {
        if let Some(b) = Arc::into_inner(buf) {
            self.lock().spare.push(b);
        }
    }

    /// The files' thread: writes the queue until every stream has ended and it is empty.
    fn run(&self, mut sinks: Vec<(Sink, bool)>) -> Option<String> {
        let mut incomplete = None;
        loop {
            let (buf, n, from_stdout) = {
                let mut q = self.lock();
                while q.chunks.is_empty() {
                    if q.open == 0 {
                        return incomplete;
                    }
                    q = self.wait(q);
                }
                // The streams wait only on a full queue.
                if q.chunks.len() == QUEUED {
                    self.moved.notify_all();
                }
                q.chunks.remove(0)
            };
            sinks.retain(|((file, name), stdout_only)| {
                if *stdout_only && !from_stdout {
                    return true;
                }
                let Err(e) = write_all(file.as_raw_fd(), &buf[..n]) else {
                    return true;
                };
                log::warn(
                    "failed to write capture file; the console copy goes on",
                    &[("file", name), ("error", &e.to_string())],
                );
                incomplete.get_or_insert_with(|| format!("writing {name}: {e}"));
                false
            });
            self.recycle(buf);
        }
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
