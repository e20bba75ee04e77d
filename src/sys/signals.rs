//! Signals: taken over at the first instruction, received synchronously through a signalfd.
//!
//! Every catchable signal is blocked in `main` before any thread exists (threads inherit the
//! mask), so no signal ever runs a default action or a handler in the emissary: each one waits
//! in the pending set until the supervision loop reads it from the signalfd. The mask the
//! process started with is kept and given back to the child before `exec`.

use std::io;
use std::mem::MaybeUninit;

// The signal sets below are built as the kernel's 64-bit word.
#[cfg(not(all(target_pointer_width = "64", target_endian = "little")))]
compile_error!("signals.rs builds signal sets for 64-bit little-endian targets only");
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A signal set (`sigset_t`).
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

/// Blocks every signal 1-64 in the calling thread (SIGKILL and SIGSTOP cannot be), and gives
/// SIGCHLD its default action back if it was inherited ignored; returns the mask the thread had
/// before. An ignored SIGCHLD makes the kernel reap children itself and send no SIGCHLD, so the
/// loop would never learn that the child exited; every other inherited disposition is harmless
/// here, since a blocked signal is queued even when ignored and read from the signalfd.
///
/// The faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE) are blocked too: one sent with `kill` is
/// forwarded like any other, while one the kernel raises for a real fault in the emissary
/// still kills it (Linux unblocks a forced fault signal and gives it its default action).
// Only the C `main` calls it, and unit-test builds have none.
#[cfg_attr(test, allow(dead_code))]
pub fn block_all() -> io::Result<SigSet> {
    let old = sigprocmask(libc::SIG_BLOCK, &catchable())?;
    // SAFETY: a zeroed sigaction with SIG_DFL is a valid action; no old action wanted.
    let r = unsafe {
        let mut act = MaybeUninit::<libc::sigaction>::zeroed().assume_init();
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGCHLD, &act, std::ptr::null_mut())
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old)
}

/// The set of signals the emissary takes over: 1 to 64, built bit by bit, since libc's own
/// helpers leave out the real-time signals it keeps for itself (musl's `sigfillset` omits
/// 32-34, `sigaddset` refuses them; glibc does the same for 32 and 33), and any process may
/// send those to us.
pub fn catchable() -> SigSet {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    let mut bits: u64 = 0;
    for sig in 1..=64u32 {
        if sig != libc::SIGKILL as u32 && sig != libc::SIGSTOP as u32 {
            bits |= 1 << (sig - 1);
        }
    }
    // SAFETY: sigset_t is at least 8 bytes and, on the 64-bit little-endian targets we build
    // for, holds signal n at bit n-1 of its first 64-bit word, as the kernel reads it.
    unsafe {
        set.as_mut_ptr().cast::<u64>().write_unaligned(bits);
        SigSet(set.assume_init())
    }
}

/// `rt_sigprocmask` itself: libc's wrappers drop the signals they reserve from the set.
/// Async-signal-safe. Returns the previous mask.
fn sigprocmask(how: libc::c_int, set: &SigSet) -> io::Result<SigSet> {
    let mut old = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: both pointers point to valid sigset_t storage (larger than the 8 bytes the
    // kernel reads and writes) for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set.0 as *const libc::sigset_t,
            old.as_mut_ptr(),
            8usize,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised, and the kernel filled its first 8 bytes.
    Ok(SigSet(unsafe { old.assume_init() }))
}

/// Blocks every signal again in the calling thread. glibc's `pthread_create` unblocks 32 and
/// 33 (SIGCANCEL, SIGSETXID) in the new thread and in its creator, and a signal sent to the
/// process would then be taken by that thread (swallowed by glibc's handler, or its default
/// action) instead of reaching the loop's signalfd. Called in each new thread and by the loop
/// once the threads of an attempt exist. Under musl the mask is kept anyway: a no-op.
pub fn reblock() {
    // Cannot fail with a valid set and SIG_BLOCK.
    let _ = sigprocmask(libc::SIG_BLOCK, &catchable());
}

/// Sets the calling thread's mask to `set`. Async-signal-safe: used in the child before `exec`.
pub fn set_mask(set: &SigSet) -> io::Result<()> {
    sigprocmask(libc::SIG_SETMASK, set).map(|_| ())
}

/// Sets every signal's action to the default, in the child between fork and exec, so that an
/// ignored disposition the emissary inherited (`nohup`, a runtime's own) does not reach the
/// user command. The raw system call reaches the signals libc reserves for itself too.
/// Async-signal-safe; failures (SIGKILL, SIGSTOP) are expected and harmless.
pub fn reset_dispositions() {
    // The kernel's `struct sigaction`: handler, flags, restorer, mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        // SAFETY: a valid kernel sigaction and the kernel's sigset size; no old action wanted.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
}

/// One received signal, with who sent it.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub signo: i32,
    pub code: i32,
    pub pid: u32,
}

impl Received {
    /// A SIGPIPE the emissary raised itself by writing to a closed stdout or stderr: the kernel
    /// marks it as sent by us. Forwarding it would kill the child for our own write.
    pub fn is_own_sigpipe(&self) -> bool {
        self.signo == libc::SIGPIPE && self.code == libc::SI_USER && self.pid == std::process::id()
    }
}

/// A non-blocking signalfd over the catchable set.
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    pub fn new() -> io::Result<SignalFd> {
        let set = catchable();
        // SAFETY: `set` is a valid sigset_t; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set.0, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a fresh descriptor that nothing else owns.
        Ok(SignalFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Reads every signal pending now, without blocking.
    pub fn drain(&self, out: &mut Vec<Received>) {
        const N: usize = 16;
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            let mut buf = [MaybeUninit::<libc::signalfd_siginfo>::zeroed(); N];
            // SAFETY: the buffer holds N siginfo structs, and its byte length is passed.
            let n = unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), size * N) };
            if n <= 0 {
                // EAGAIN: nothing more pending. EINTR cannot happen with all signals blocked.
                return;
            }
            for slot in buf.iter().take(n as usize / size) {
                // SAFETY: the kernel filled the first n / size entries.
                let si = unsafe { slot.assume_init_ref() };
                out.push(Received {
                    signo: si.ssi_signo as i32,
                    code: si.ssi_code,
                    pid: si.ssi_pid,
                });
            }
        }
    }
}

/// Waits until one of `fds` is ready for its events (`POLLIN`, `POLLOUT`) or `timeout_ms`
/// passes (-1: no limit); a descriptor of -1 is skipped. Returns the `revents` of each.
pub fn poll(fds: &[(i32, i16)], timeout_ms: i32) -> io::Result<Vec<i16>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: pfds is a valid array of pollfd of the given length.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if r >= 0 {
            return Ok(pfds.iter().map(|p| p.revents).collect());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Signals that ask the emissary to stop: no further attempt starts once one arrived.
pub fn is_termination(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT
    )
}

const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// `SIGTERM` for 15, `SIGRTMIN+2` style for real-time signals, `signal 99` otherwise.
pub fn name(sig: i32) -> String {
    if let Some((n, _)) = NAMES.iter().find(|(_, s)| *s == sig) {
        return format!("SIG{n}");
    }
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if (min..=max).contains(&sig) {
        return format!("SIGRTMIN+{}", sig - min);
    }
    format!("signal {sig}")
}

/// Parses `15`, `TERM`, `SIGTERM` (any case). Only numbers of real signals are accepted.
pub fn parse(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return (0..=libc::SIGRTMAX()).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES.iter().find(|(n, _)| *n == bare).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse("15"), Some(15));
        assert_eq!(parse("TERM"), Some(libc::SIGTERM));
        assert_eq!(parse("sigkill"), Some(9));
        assert_eq!(parse("FOO"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("1000"), None);
        assert_eq!(name(15), "SIGTERM");
        assert!(name(libc::SIGRTMIN() + 2).starts_with("SIGRTMIN+"));
    }
}
