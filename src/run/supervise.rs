//! The supervision loop: the one place where the emissary waits.
//!
//! Every wait of the run (a dependency, a debug pause, the pause between attempts, the child
//! itself) goes through `Supervisor`, which polls one signalfd and, once a wait lasts, one
//! inotify instance over the folders it waits on (see `watch`). It wakes for a signal (SIGCHLD
//! included: the child's exit) or a file finished in those folders (during an attempt nothing
//! else; before and between attempts also a safety-net tick of a second); never for a write
//! to a capture file. Without inotify (the per-uid instance budget
//! spent by the node's other steps) the tick starts short and doubles up to a second, and
//! inotify is tried again now and then. On each wake it
//! reads the signals that arrived, reaps every child that has ended (`waitpid(-1, WNOHANG)`
//! until none: orphans are reaped and forgotten, only the direct child's status is kept), and
//! during an attempt forwards each signal to the child's process group, checks the signal file
//! and, in a sidecar, whether the main containers are done (their `exitcode`, or their alive
//! lock free: see `alive`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::capture::Capture;
use crate::run::alive;
use crate::run::signalfile::SignalFile;
use crate::run::watch::Watch;
use crate::sys::error::Result;
use crate::sys::log;
use crate::sys::signals::{self, Received, SignalFd};

/// How often files (signal file, markers, dependencies) are looked at in a wait's first
/// `EARLY_FOR`, and `TICK` from then until inotify is armed: the signal file's reaction time
/// before inotify. Measured (bench.sh's signal-file row, signal file renamed in 0-25 ms after
/// the start, 50 runs, busy 2-core machine): a 20 ms tick throughout gave p50 12 ms, p99
/// 26-28 ms; 5 ms p50 4 ms, p99 9-12 ms; 4 ms keeps p99 under 10 ms. 4 ms for the first
/// 100 ms costs 20 more wake-ups of ~10 µs once per wait that lasts (30 before inotify).
const EARLY_TICK: Duration = Duration::from_millis(4);
const EARLY_FOR: Duration = Duration::from_millis(100);
/// The tick after `EARLY_FOR` until inotify is armed, and where the backoff without inotify
/// starts.
pub const TICK: Duration = Duration::from_millis(20);
/// With inotify watching the folders, in the waits before and between attempts: a safety net
/// for what time alone changes (the supervisor's status going stale). A running attempt has
/// none (see `attempt`).
pub const WATCHED_TICK: Duration = Duration::from_secs(1);
/// Without inotify the tick doubles from `TICK` up to this: the signal file is still seen
/// within about a second, at one wake-up a second instead of fifty.
const SLOW_TICK: Duration = Duration::from_secs(1);
/// How long after inotify could not be had it is tried again: an instance may be freed when
/// a neighbour's step ends.
const RETRY_WATCH: Duration = Duration::from_secs(5);
/// How long a wait goes on with the short tick before inotify is armed for it.
const ARM_AFTER: Duration = Duration::from_millis(200);
/// How long output still held open by grandchildren is waited for after the child exits.
pub const DRAIN: Duration = Duration::from_millis(100);

pub struct Supervisor {
    sigfd: SignalFd,
    received: Vec<Received>,
    /// The direct child of the attempt under way, whose status `reap` keeps.
    child: Option<i32>,
    /// The direct child's exit code, once reaped.
    reaped: Option<i32>,
    /// The run's inotify instance, made by the first wait that lasts (see `watch`).
    watch: Option<Watch>,
    /// When inotify last could not be had: not tried again before `RETRY_WATCH`.
    watch_failed: Option<Instant>,
    /// An inotify event said events may have been lost (queue overflow, a watch gone): the
    /// folders are to be watched again and looked at.
    watch_lost: bool,
    /// The first termination signal (TERM, INT, HUP, QUIT) received, if any.
    pub terminated: Option<i32>,
    /// Signals received but not forwarded to the child (an artifact plugin sidecar's SIGTERM).
    pub not_forwarded: &'static [i32],
}

/// A wait ended by a termination signal.
pub struct Terminated(pub i32);

/// How an attempt ended.
pub struct Outcome {
    /// The child's exit status, or 128+n for a death by signal n.
    pub code: i32,
    /// Whether every captured byte reached the files.
    pub capture: Result<()>,
}

impl Supervisor {
    /// Opens the signalfd; becomes a child subreaper unless already PID 1, so orphans of the
    /// child are ours to reap either way.
    pub fn new() -> io::Result<Supervisor> {
        // SAFETY: getpid cannot fail.
        if unsafe { libc::getpid() } != 1 {
            // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument.
            if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
                log::warn(
                    "cannot become a child subreaper; orphans will not be reaped",
                    &[("error", &io::Error::last_os_error().to_string())],
                );
            }
        }
        Ok(Supervisor {
            sigfd: SignalFd::new()?,
            received: Vec::new(),
            child: None,
            reaped: None,
            watch: None,
            watch_failed: None,
            watch_lost: false,
            terminated: None,
            not_forwarded: &[],
        })
    }

    /// Closes everything but the inotify instance and hands that back: closing it waits for
    /// the kernel to tear its watches down, so the caller drops it only after `exitcode`,
    /// while the descriptors freed here leave `exitcode` one to be written with even at the
    /// lowest `ulimit -n`.
    pub fn into_watch(self) -> Option<Watch> {
        self.watch
    }

    /// Waits up to `timeout` for a signal, a change in a watched folder, or `extra` becoming
    /// readable; returns the signals received and whether `extra` is ready. Reaps every ended
    /// child when a SIGCHLD came, or at a timeout in case one was missed.
    fn wake(&mut self, timeout: Duration, extra: Option<i32>) -> (Vec<Received>, bool) {
        // Duration::MAX: no timeout at all.
        let ms = if timeout == Duration::MAX {
            -1
        } else {
            timeout.as_millis().min(i32::MAX as u128) as i32
        };
        let watch = self.watch.as_ref();
        let fds: Vec<(i32, i16)> = [Some(self.sigfd.raw()), extra, watch.map(Watch::fd)]
            .into_iter()
            .flatten()
            .map(|fd| (fd, libc::POLLIN))
            .collect();
        let revents = match signals::poll(&fds, ms) {
            Ok(rev) => rev,
            Err(e) => {
                // poll on valid fds does not fail; if it does, fall back to sleeping a tick.
                log::warn("poll failed", &[("error", &e.to_string())]);
                std::thread::sleep(TICK);
                vec![0; fds.len()]
            }
        };
        if let Some(w) = watch {
            self.watch_lost |= w.drain();
        }
        self.received.clear();
        self.sigfd.drain(&mut self.received);
        let got = std::mem::take(&mut self.received);
        for s in &got {
            if signals::is_termination(s.signo) && self.terminated.is_none() {
                self.terminated = Some(s.signo);
                // The kubelet's kill clock starts now (SPEC 3 step 11).
                crate::run::deadline::terminated();
            }
        }
        let timed_out = revents.iter().all(|&r| r == 0);
        if timed_out || got.iter().any(|s| s.signo == libc::SIGCHLD) {
            if let Some(code) = reap(self.child) {
                self.reaped = Some(code);
            }
        }
        (
            got,
            extra.is_some() && revents.get(1).is_some_and(|&r| r != 0),
        )
    }

    /// Waits until `ready` returns a value, looking again whenever something changes in
    /// `dirs` (and at least every tick), reaping orphans meanwhile. A termination signal ends
    /// the wait.
    pub fn wait_for<T>(
        &mut self,
        dirs: &[&Path],
        mut ready: impl FnMut() -> Option<T>,
    ) -> std::result::Result<T, Terminated> {
        self.wait_until(dirs, None, &mut ready)
    }

    /// `wait_for` with a deadline: `ready` is also asked once the deadline has passed.
    fn wait_until<T>(
        &mut self,
        dirs: &[&Path],
        deadline: Option<Instant>,
        ready: &mut dyn FnMut() -> Option<T>,
    ) -> std::result::Result<T, Terminated> {
        let mut armer = Armer::new();
        loop {
            if let Some(sig) = self.terminated {
                return Err(Terminated(sig));
            }
            if let Some(v) = ready() {
                return Ok(v);
            }
            let tick = armer.tick(self, dirs);
            let timeout = deadline.map_or(tick, |d| {
                d.saturating_duration_since(Instant::now()).min(tick)
            });
            let (got, _) = self.wake(timeout, None);
            for s in got.iter().filter(|s| s.signo != libc::SIGCHLD) {
                log::debug(
                    "ignoring signal: no child is running",
                    &[("signal", &signals::name(s.signo))],
                );
            }
        }
    }

    /// Makes sure `dirs` are watched; false when they cannot be (no inotify instance to be
    /// had now, or a folder that cannot be watched).
    fn watch(&mut self, dirs: &[&Path]) -> bool {
        if self.watch.is_none() {
            if self.watch_failed.is_some_and(|t| t.elapsed() < RETRY_WATCH) {
                return false;
            }
            self.watch = Watch::new();
            if self.watch.is_none() {
                if self.watch_failed.is_none() {
                    log::debug(
                        "no inotify instance to be had; looking on a slowing tick",
                        &[("error", &io::Error::last_os_error().to_string())],
                    );
                }
                self.watch_failed = Some(Instant::now());
                return false;
            }
            self.watch_failed = None;
        }
        self.watch.as_ref().is_some_and(|w| w.add(dirs))
    }

    /// Sleeps for `d`, unless a termination signal arrives first.
    pub fn sleep(&mut self, d: Duration) -> std::result::Result<(), Terminated> {
        let end = Instant::now() + d;
        self.wait_until(&[], Some(end), &mut || {
            (Instant::now() >= end).then_some(())
        })
    }

    /// Supervises one attempt until the child `pid` has exited and its output is in.
    pub fn attempt(
        &mut self,
        pid: i32,
        capture: Option<Capture>,
        sigfile: &mut SignalFile,
        mut sidecar: Option<&mut Sidecar>,
    ) -> Outcome {
        self.child = Some(pid);
        self.reaped = None;
        // Wake on changes to the signal file's folder and, in a sidecar, the main containers'.
        let mut owned: Vec<PathBuf> = sigfile
            .path()
            .parent()
            .map(Path::to_path_buf)
            .into_iter()
            .collect();
        if let Some(sc) = sidecar.as_deref() {
            owned.extend(
                sc.mains
                    .iter()
                    .filter_map(|p| p.parent())
                    .map(Path::to_path_buf),
            );
        }
        let dirs: Vec<&Path> = owned.iter().map(PathBuf::as_path).collect();
        let mut armer = Armer::new();
        let mut drain_until = None;
        loop {
            if self.reaped.is_some() {
                // The child is gone: wait for the copy threads to reach EOF, at most DRAIN.
                let Some(cap) = &capture else { break };
                let now = Instant::now();
                let end = *drain_until.get_or_insert(now + DRAIN);
                if now >= end {
                    break;
                }
                let (got, done) = self.wake(end - now, Some(cap.done_fd()));
                self.forward(pid, &got, Some(cap));
                if done {
                    break;
                }
                continue;
            }
            if let Some(sig) = sigfile.take() {
                log::info("received signal", &[("signal", &signals::name(sig))]);
                send_group(pid, sig);
            }
            if let Some(sc) = sidecar.as_deref_mut() {
                sc.tick(pid);
            }
            let mut tick = armer.tick(self, &dirs);
            if armer.armed {
                // Watched: nothing to look at until an event, a signal or the child's exit
                // (SIGCHLD) wakes us, so an idle step sleeps without a timer. Every death
                // that matters shows as an event: a main container's `exitcode` renamed into
                // place, or its alive lock closed by the kernel (IN_CLOSE_WRITE). A lost
                // event (overflow) wakes us too and re-arms. Only the sidecar's grace period
                // is a matter of time.
                tick = sidecar
                    .as_deref()
                    .and_then(Sidecar::kill_due_in)
                    .unwrap_or(Duration::MAX);
            }
            let (got, _) = self.wake(tick, None);
            self.forward(pid, &got, capture.as_ref());
        }
        let status = self.reaped.take();
        self.child = None;
        Outcome {
            code: status.unwrap_or(crate::sys::error::EXIT_FAILURE),
            capture: capture.map_or(Ok(()), Capture::finish),
        }
    }

    /// Forwards each received signal except SIGCHLD (and our own SIGPIPE) to the child's group;
    /// a SIGWINCH also resizes the child's terminal when it has one.
    fn forward(&self, pid: i32, got: &[Received], capture: Option<&Capture>) {
        for s in got {
            if s.signo == libc::SIGCHLD || s.is_own_sigpipe() {
                continue;
            }
            if self.not_forwarded.contains(&s.signo) {
                log::debug("ignore signal", &[("signal", &signals::name(s.signo))]);
                continue;
            }
            if s.signo == libc::SIGWINCH {
                if let Some(c) = capture {
                    c.follow_window_size();
                }
            }
            log::debug("forwarding signal", &[("signal", &signals::name(s.signo))]);
            send_group(pid, s.signo);
        }
    }
}

/// Arms inotify for one wait once it has lasted `ARM_AFTER`, and says how long to sleep:
/// `EARLY_TICK` then `TICK` before that, `WATCHED_TICK` once armed (the caller of an attempt
/// uses none), and without inotify a tick that doubles up
/// to `SLOW_TICK` (trying inotify again at each wake, at most every `RETRY_WATCH`).
struct Armer {
    start: Instant,
    armed: bool,
    backoff: Duration,
}

impl Armer {
    fn new() -> Armer {
        Armer {
            start: Instant::now(),
            armed: false,
            backoff: TICK,
        }
    }

    fn tick(&mut self, sup: &mut Supervisor, dirs: &[&Path]) -> Duration {
        if self.armed && sup.watch_lost {
            // Events were lost or a folder's watch went with the folder: the caller looks
            // now (this wake), and the folders are watched again (made again if need be).
            sup.watch_lost = false;
            self.armed = dirs.is_empty() || sup.watch(dirs);
            if !self.armed {
                self.backoff = TICK;
            }
        }
        if self.armed {
            return WATCHED_TICK;
        }
        let waited = self.start.elapsed();
        if waited < EARLY_FOR {
            return EARLY_TICK;
        }
        if waited < ARM_AFTER {
            return TICK;
        }
        // A wait on no folder (the pause between attempts) needs no instance.
        self.armed = dirs.is_empty() || sup.watch(dirs);
        if self.armed {
            return WATCHED_TICK;
        }
        self.backoff = (self.backoff * 2).min(SLOW_TICK);
        self.backoff
    }
}

/// Sends `sig` to the process group led by `pid`; a group already gone is not an error.
pub fn send_group(pid: i32, sig: i32) {
    // SAFETY: kill has no memory effects; -pid names the child's process group.
    if unsafe { libc::kill(-pid, sig) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            log::warn(
                "failed to signal the child's process group",
                &[("signal", &signals::name(sig)), ("error", &e.to_string())],
            );
        }
    }
}

/// Reaps every ended child; returns the exit code of `watch` if it was among them.
fn reap(watch: Option<i32>) -> Option<i32> {
    let mut found = None;
    loop {
        let mut st = 0;
        // SAFETY: st is a valid int to receive the status.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid <= 0 {
            // 0: children remain, none ended; -1 ECHILD: no children at all.
            return found;
        }
        if Some(pid) == watch {
            found = Some(exit_code(st));
        }
    }
}

/// The wait status as an exit code: the status itself, or 128+n for a death by signal n.
fn exit_code(st: i32) -> i32 {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        crate::sys::error::EXIT_FAILURE
    }
}

/// A sidecar's self-termination: once every main container has its `exitcode` or has died
/// without one (its alive lock free), SIGTERM to the child's group, then SIGKILL after the
/// grace period.
pub struct Sidecar {
    /// The `exitcode` files of the main containers.
    mains: Vec<PathBuf>,
    /// Which of `mains` have been seen done (each death is reported once).
    done: Vec<bool>,
    grace: Duration,
    term_sent: Option<Instant>,
    kill_sent: bool,
}

impl Sidecar {
    pub fn new(mains: Vec<PathBuf>, grace: Duration) -> Sidecar {
        Sidecar {
            done: vec![false; mains.len()],
            mains,
            grace,
            term_sent: None,
            kill_sent: false,
        }
    }

    /// How long until the grace period after SIGTERM is over, when SIGKILL is still to come.
    fn kill_due_in(&self) -> Option<Duration> {
        let at = self.term_sent?;
        (!self.kill_sent).then(|| self.grace.saturating_sub(at.elapsed()))
    }

    /// Whether the main containers are done and the sidecar has been told to stop: then no
    /// further attempt starts, as after a termination signal.
    pub fn fired(&self) -> bool {
        self.term_sent.is_some()
    }

    fn tick(&mut self, pid: i32) {
        match self.term_sent {
            None => {
                for (p, done) in self.mains.iter().zip(self.done.iter_mut()) {
                    *done = *done || main_done(p);
                }
                if self.done.iter().all(|&d| d) {
                    log::info("main container(s) exited, terminating container", &[]);
                    send_group(pid, libc::SIGTERM);
                    self.term_sent = Some(Instant::now());
                }
            }
            Some(at) if !self.kill_sent && at.elapsed() >= self.grace => {
                log::info("grace period over, killing container", &[]);
                send_group(pid, libc::SIGKILL);
                self.kill_sent = true;
            }
            Some(_) => {}
        }
    }
}

/// Whether the main container whose `exitcode` is `exitcode` is done: the file is there, or
/// its emissary has ended (alive lock free) without writing it.
fn main_done(exitcode: &Path) -> bool {
    if exitcode.symlink_metadata().is_ok() {
        return true;
    }
    let Some(dir) = exitcode.parent() else {
        return false;
    };
    if alive::state(dir) != alive::State::Free {
        return false;
    }
    // Looked at again: the lock is released only after `exitcode` is written.
    if exitcode.symlink_metadata().is_err() {
        log::warn(
            "main container died without an exit code",
            &[("path", &dir.to_string_lossy())],
        );
    }
    true
}
