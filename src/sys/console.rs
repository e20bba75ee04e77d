//! The emissary's own console, fds 1 and 2, and every write to it: none can hold the run
//! (SPEC section 3 step 8).
//!
//! The console belongs to the container runtime, not to us, and its reader may stop reading:
//! a pipe or FIFO nobody drains, a socket, a terminal, a file on a stuck file system. Each
//! console therefore gets, once, a way to write that never blocks:
//! - a pipe, FIFO, terminal or other character device: a second open file description of the
//!   same object (`/proc/self/fd/N` opened again) made `O_NONBLOCK`. The description fds 1
//!   and 2 name keeps its flags: the child shares it when capture is off.
//! - a socket: `send(MSG_DONTWAIT)` on fd N itself.
//! - anything else (a regular file, or a reopening refused): a writer thread of its own does
//!   the blocking `write`, one chunk at a time, and is waited for with a deadline. A stuck file
//!   system holds that thread, never the run.
//!
//! Every writer says how long it may wait ([`Patience`]): a log line 100 ms at most, and not
//! at all while the last line found the console full; a copy thread, while the child runs,
//! until the stop (a console nobody reads holds the child back, as without the emissary);
//! after the stop, as long as the console keeps taking something every second. A console that
//! takes nothing for that second is given up for the rest of the run, log lines included; so
//! is one still taking the rest 10 s after the child exited (a trickle), and one that fails
//! (EPIPE, EIO). When fds 1 and 2 are the same object (`2>&1`), they share
//! one state, so giving up one gives up both.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::sys::signals;

/// After the child has exited, how long a console may take nothing before it is given up.
pub const STALL: Duration = Duration::from_secs(1);
/// After the child has exited, how long a console may take to take the rest at all: one that
/// trickles (a byte now and then, never a second of nothing) must not hold the step either.
pub const AFTER_EXIT_MAX: Duration = Duration::from_secs(10);
/// How long one log line may wait for a full console.
const LOG_WAIT: Duration = Duration::from_millis(100);
/// The most the writer thread is handed at once.
const THREAD_CHUNK: usize = 64 * 1024;

/// How long a write may wait for a console that takes nothing.
#[derive(Clone, Copy)]
pub enum Patience {
    /// A log line: `LOG_WAIT` at most, none while the console is known to be full.
    Log,
    /// Until the stop pipe (this fd) is readable: the child still runs.
    Until(i32),
    /// `STALL` without progress, then the console is given up; so it is `AFTER_EXIT_MAX` after
    /// the first write with this patience, progress or not.
    Stall,
}

/// How a write ended.
#[derive(Debug, PartialEq)]
pub enum Wrote {
    All,
    /// The stop came while waiting under `Patience::Until`; this many bytes were written.
    Stopped(usize),
    /// Not all written: the console is given up, failed, or a log line ran out of time.
    Lost,
}

pub struct Console {
    /// The descriptor named in messages (1 or 2), or the one the writes go to.
    fd: i32,
    way: Way,
    tty: bool,
    /// Failed or given up: nothing more is written to it.
    gone: AtomicBool,
    /// Given up for taking nothing, and not yet told in a log line (`log::note_given_up`
    /// tells it: this module writes no log lines, the log writes through it).
    untold: AtomicBool,
    /// The last log line found it full: later lines do not wait until one gets through.
    stalled: AtomicBool,
    /// When the first write with `Patience::Stall` came (the child had exited).
    ending: OnceLock<Instant>,
    /// When any writer last got bytes through: a stall is the console's, not one writer's.
    progress: Mutex<Option<Instant>>,
}

enum Way {
    /// A non-blocking description of our own.
    Own(OwnedFd),
    /// A socket: `send(MSG_DONTWAIT)`.
    Socket,
    /// A blocking writer thread.
    Thread(Arc<Writer>),
    /// Nothing better could be had (no thread either): plain blocking writes.
    Blocking,
}

/// The consoles of fds 1 and 2, set up at the first write to either.
static CONSOLES: OnceLock<[Arc<Console>; 2]> = OnceLock::new();

/// The console of fd 1 or 2.
pub fn get(fd: i32) -> Option<Arc<Console>> {
    let i = match fd {
        1 => 0,
        2 => 1,
        _ => return None,
    };
    let all = CONSOLES.get_or_init(|| {
        let out = Arc::new(Console::open(1));
        let err = if same_object(1, 2) {
            Arc::clone(&out)
        } else {
            Arc::new(Console::open(2))
        };
        [out, err]
    });
    Some(Arc::clone(&all[i]))
}

/// Writes `bytes` to console `fd` (1 or 2) with `patience`.
pub fn write(fd: i32, bytes: &[u8], patience: Patience) -> Wrote {
    match get(fd) {
        Some(c) => c.write(bytes, patience),
        None => Wrote::Lost,
    }
}

/// Whether console `fd` is a terminal.
pub fn is_tty(fd: i32) -> bool {
    get(fd).is_some_and(|c| c.tty)
}

fn fstat(fd: i32) -> Option<libc::stat> {
    // SAFETY: stat is plain data that fstat fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a stat; fstat fails cleanly on a bad fd.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
}

fn same_object(a: i32, b: i32) -> bool {
    match (fstat(a), fstat(b)) {
        (Some(x), Some(y)) => x.st_dev == y.st_dev && x.st_ino == y.st_ino,
        _ => false,
    }
}

impl Console {
    /// Finds the non-blocking way to write to fd 1 or 2.
    fn open(fd: i32) -> Console {
        let mode = fstat(fd).map_or(0, |st| st.st_mode & libc::S_IFMT);
        // SAFETY: isatty only queries the descriptor.
        let tty = unsafe { libc::isatty(fd) } == 1;
        let way = match mode {
            libc::S_IFSOCK => Way::Socket,
            libc::S_IFIFO | libc::S_IFCHR => match reopen(fd) {
                Ok(own) => Way::Own(own),
                Err(_) => Writer::start(fd),
            },
            _ => Writer::start(fd),
        };
        Console {
            fd,
            way,
            tty,
            gone: AtomicBool::new(false),
            untold: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            ending: OnceLock::new(),
            progress: Mutex::new(None),
        }
    }

    /// A console over a descriptor of ours (the pty master): made non-blocking itself.
    pub fn owned(fd: OwnedFd) -> io::Result<Console> {
        set_nonblocking(fd.as_raw_fd())?;
        Ok(Console {
            fd: fd.as_raw_fd(),
            way: Way::Own(fd),
            tty: false,
            gone: AtomicBool::new(false),
            untold: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            ending: OnceLock::new(),
            progress: Mutex::new(None),
        })
    }

    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// Writes all of `buf` unless the console fails, is given up, or `patience` runs out.
    pub fn write(&self, mut buf: &[u8], mut patience: Patience) -> Wrote {
        let start = Instant::now();
        if let Patience::Stall = patience {
            self.ending.get_or_init(Instant::now);
        }
        let mut written = 0;
        while !buf.is_empty() {
            if self.is_gone() {
                return Wrote::Lost;
            }
            match self.try_write(buf) {
                Ok(n) => {
                    self.stalled.store(false, Ordering::Relaxed);
                    *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    buf = &buf[n..];
                    written += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    // EPIPE, EIO: the reader is gone for good.
                    self.gone.store(true, Ordering::Relaxed);
                    return Wrote::Lost;
                }
            }
            match self.wait_turn(&mut patience, start, written) {
                Some(w) => return w,
                None => continue,
            }
        }
        // The writer thread may still be at it: the write counts once it is done.
        if let Way::Thread(w) = &self.way {
            while !w.idle() {
                if let Some(w) = self.wait_turn(&mut patience, start, written) {
                    return w;
                }
            }
            if w.failed() {
                self.gone.store(true, Ordering::Relaxed);
                return Wrote::Lost;
            }
        }
        Wrote::All
    }

    /// The console is full: waits as `patience` allows. `None`: try again; otherwise how the
    /// write ends.
    fn wait_turn(&self, patience: &mut Patience, start: Instant, written: usize) -> Option<Wrote> {
        let (ms, stop) = match *patience {
            Patience::Log if self.stalled.load(Ordering::Relaxed) => (0, -1),
            Patience::Log => (remaining_ms(start + LOG_WAIT), -1),
            Patience::Until(stop) => (-1, stop),
            Patience::Stall => {
                let end = *self.ending.get_or_init(Instant::now) + AFTER_EXIT_MAX;
                // A second since the console last took anything, from whichever writer.
                let since = self.last_progress().map_or(start, |p| p.max(start));
                let left = remaining_ms(end).min(remaining_ms(since + STALL));
                if left == 0 {
                    self.give_up();
                    return Some(Wrote::Lost);
                }
                (left, -1)
            }
        };
        match self.wait(ms, stop) {
            Ready::Writable => None,
            Ready::Stop => {
                *patience = Patience::Stall;
                self.ending.get_or_init(Instant::now);
                Some(Wrote::Stopped(written))
            }
            Ready::Timeout => {
                if let Patience::Stall = patience {
                    // Another writer may have got through meanwhile: the next turn decides.
                    return None;
                } else {
                    self.stalled.store(true, Ordering::Relaxed);
                }
                Some(Wrote::Lost)
            }
        }
    }

    fn last_progress(&self) -> Option<Instant> {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn give_up(&self) {
        if !self.gone.swap(true, Ordering::Relaxed) {
            self.untold.store(true, Ordering::Relaxed);
        }
    }

    /// Once, after this console was given up for taking nothing: its name for the warning.
    pub fn untold_give_up(&self) -> Option<&'static str> {
        if !self.untold.swap(false, Ordering::Relaxed) {
            return None;
        }
        Some(match self.fd {
            1 => "stdout",
            2 => "stderr",
            _ => "terminal",
        })
    }

    /// One non-blocking attempt: bytes taken, or `WouldBlock`.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            let n = match &self.way {
                // SAFETY: buf is valid for reads of its length.
                Way::Own(fd) => unsafe {
                    libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len())
                },
                // SAFETY: as above; MSG_NOSIGNAL keeps a closed peer from raising SIGPIPE.
                Way::Socket => unsafe {
                    libc::send(
                        self.fd,
                        buf.as_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                },
                Way::Thread(w) => return w.hand(buf),
                // SAFETY: as above.
                Way::Blocking => unsafe { libc::write(self.fd, buf.as_ptr().cast(), buf.len()) },
            };
            if n > 0 {
                return Ok(n as usize);
            }
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Waits up to `ms` (-1: no limit) for room, or for `stop` (-1: none) to be readable.
    fn wait(&self, ms: i32, stop: i32) -> Ready {
        let fd = match &self.way {
            Way::Own(fd) => fd.as_raw_fd(),
            Way::Socket | Way::Blocking => self.fd,
            Way::Thread(w) => return w.wait(ms, stop),
        };
        // An error or hang-up counts as writable: the next write tells what happened.
        match signals::poll(&[(fd, libc::POLLOUT), (stop, libc::POLLIN)], ms) {
            Ok(r) if r[1] != 0 => Ready::Stop,
            Ok(r) if r[0] != 0 => Ready::Writable,
            Ok(_) => Ready::Timeout,
            Err(_) => Ready::Writable,
        }
    }
}

enum Ready {
    Writable,
    Stop,
    Timeout,
}

fn remaining_ms(end: Instant) -> i32 {
    end.saturating_duration_since(Instant::now()).as_millis() as i32
}

/// Opens `/proc/self/fd/fd` again, write-only and non-blocking: a description of our own.
fn reopen(fd: i32) -> io::Result<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}"))
        .map_err(|_| io::Error::other("fd path"))?;
    // SAFETY: path is NUL-terminated; O_NOCTTY keeps a terminal from becoming ours.
    let r = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: r is a fresh descriptor owned only here.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

pub fn set_nonblocking(fd: i32) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL only read and change the description's flags.
    let ok = unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        fl >= 0 && libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A thread that does blocking writes to `fd`, one chunk at a time.
struct Writer {
    fd: i32,
    job: Mutex<Job>,
    cv: Condvar,
}

#[derive(Default)]
struct Job {
    data: Vec<u8>,
    busy: bool,
    failed: bool,
}

impl Writer {
    fn start(fd: i32) -> Way {
        let w = Arc::new(Writer {
            fd,
            job: Mutex::new(Job::default()),
            cv: Condvar::new(),
        });
        let mine = Arc::clone(&w);
        match std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || mine.run())
        {
            Ok(_) => Way::Thread(w),
            Err(_) => Way::Blocking,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Job> {
        self.job.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        loop {
            let data = {
                let mut j = self.lock();
                while !j.busy {
                    j = self.cv.wait(j).unwrap_or_else(|e| e.into_inner());
                }
                std::mem::take(&mut j.data)
            };
            let failed = crate::sys::fsx::write_all(self.fd, &data).is_err();
            let mut j = self.lock();
            j.busy = false;
            j.failed |= failed;
            j.data = data;
            j.data.clear();
            self.cv.notify_all();
        }
    }

    /// Hands the thread up to `THREAD_CHUNK` bytes, or `WouldBlock` while it is busy.
    fn hand(&self, buf: &[u8]) -> io::Result<usize> {
        let mut j = self.lock();
        if j.failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if j.busy {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(THREAD_CHUNK);
        j.data.extend_from_slice(&buf[..n]);
        j.busy = true;
        self.cv.notify_all();
        Ok(n)
    }

    fn idle(&self) -> bool {
        !self.lock().busy
    }

    fn failed(&self) -> bool {
        self.lock().failed
    }

    /// Waits up to `ms` (-1: no limit) for the thread to be idle, looking at `stop` every
    /// 50 ms (a condition variable cannot watch a pipe; this only runs while a file is slow).
    fn wait(&self, ms: i32, stop: i32) -> Ready {
        let end = (ms >= 0).then(|| Instant::now() + Duration::from_millis(ms as u64));
        let mut j = self.lock();
        loop {
            if !j.busy {
                return Ready::Writable;
            }
            if stop >= 0 && stop_pending(stop) {
                return Ready::Stop;
            }
            let mut slice = Duration::from_millis(50);
            if let Some(end) = end {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ready::Timeout;
                }
                slice = slice.min(left);
            }
            j = self
                .cv
                .wait_timeout(j, slice)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

/// Whether `stop` is readable (closed), without waiting.
pub fn stop_pending(stop: i32) -> bool {
    matches!(signals::poll(&[(stop, libc::POLLIN)], 0).as_deref(), Ok([r]) if *r != 0)
}
