//! Starting the user command: own process group (or session, on a terminal), fds as planned,
//! every signal at its default and the signal mask the emissary started with.
//!
//! We fork and exec ourselves instead of using std's `Command`: the child must get back the
//! original mask (std keeps the parent's blocked set), its dispositions reset, and `execve`
//! called directly with the resolved path as argv[0] (std's `execvp` would run a file without
//! a `#!` line through `/bin/sh` on ENOEXEC, where upstream reports "exec format error").
//! Between fork and exec the child only makes async-signal-safe calls on memory prepared
//! before the fork. An exec failure comes back as errno through a close-on-exec pipe, and says
//! whether another attempt may succeed (SPEC step 8: a busy text file or a refused fork may
//! pass; the three lookup errors of step 6 never do). Nothing waits for the child here: the
//! supervision loop reaps every child itself.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::capture::pipe;
use crate::sys::error::{Error, Result};
use crate::sys::signals::{self, SigSet};

/// Where the child's fds 0, 1 and 2 go.
pub enum Output {
    /// The emissary's own fds, no copy at all.
    Inherit,
    /// The write ends of the capture pipes as fds 1 and 2.
    Pipes(OwnedFd, OwnedFd),
    /// A pty slave as fds 0, 1 and 2, and the controlling terminal of a new session.
    Tty(OwnedFd),
}

/// Why the command did not start, and whether trying again may help.
pub struct StartFailure {
    pub error: Error,
    /// No other attempt can pass: not found, not executable or not an executable format (the
    /// lookup errors of SPEC step 6, never retried), or an argument holding a NUL byte.
    pub permanent: bool,
}

impl From<Error> for StartFailure {
    /// A failure before exec was even tried (a pipe, a fork refused): worth another attempt.
    fn from(error: Error) -> StartFailure {
        StartFailure {
            error,
            permanent: false,
        }
    }
}

/// Starts `path` with `args` (args[0] is the command as given; the child's argv[0] is `path`).
/// Returns the child's pid, which is also its process group id.
pub fn start(
    path: &Path,
    args: &[OsString],
    mask: SigSet,
    output: Output,
) -> std::result::Result<i32, StartFailure> {
    let exec = Exec::new(path, path.as_os_str(), args.get(1..).unwrap_or(&[])).map_err(|e| {
        // A NUL byte in an argument: no attempt can pass it.
        StartFailure {
            error: e,
            permanent: true,
        }
    })?;
    // fds for 0, 1 and 2 (-1: keep ours).
    let (fds, tty) = match &output {
        Output::Inherit => ([-1, -1, -1], false),
        Output::Pipes(out, err) => ([-1, out.as_raw_fd(), err.as_raw_fd()], false),
        Output::Tty(slave) => ([slave.as_raw_fd(); 3], true),
    };
    let (err_r, err_w) = pipe().map_err(|e| Error::new(format!("failed to start command: {e}")))?;
    // SAFETY: fork has no memory effects in the parent; the child only runs `child`, which
    // makes async-signal-safe calls and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(start_error(path, io::Error::last_os_error()).into());
    }
    if pid == 0 {
        child(&exec, fds, tty, &mask, err_w.as_raw_fd());
    }
    // Our copies of the child's ends go now, so the copy threads see EOF when the child and
    // its descendants have closed theirs.
    drop(output);
    drop(err_w);
    match read_errno(err_r.as_raw_fd()) {
        None => Ok(pid),
        Some(errno) => {
            // The child never ran: reap it here, it is ours alone.
            let mut st = 0;
            // SAFETY: waits for the child just forked; st is a valid int.
            if unsafe { libc::waitpid(pid, &mut st, 0) } < 0 {
                // Already reaped by nobody else (it is ours alone): nothing left to do.
            }
            Err(StartFailure {
                error: start_error(path, io::Error::from_raw_os_error(errno)),
                permanent: matches!(errno, libc::ENOEXEC | libc::EACCES | libc::ENOENT),
            })
        }
    }
}

/// In the forked child: set up and exec, or report errno and exit.
fn child(exec: &Exec, fds: [i32; 3], tty: bool, mask: &SigSet, err_w: i32) -> ! {
    // SAFETY: only async-signal-safe system calls, on descriptors and memory valid in the child.
    unsafe {
        let mut ok = if tty {
            libc::setsid() >= 0
        } else {
            libc::setpgid(0, 0) == 0
        };
        for (target, &fd) in fds.iter().enumerate() {
            if ok && fd >= 0 {
                ok = libc::dup2(fd, target as i32) >= 0;
            }
        }
        if ok && tty {
            ok = libc::ioctl(0, libc::TIOCSCTTY, 0) == 0;
        }
        if ok {
            signals::reset_dispositions();
            ok = signals::set_mask(mask).is_ok();
        }
        if ok {
            exec.exec();
        }
        let errno = *libc::__errno_location();
        // If even this write fails, the parent sees the pipe close and the child exit 127.
        if libc::write(err_w, (&errno as *const i32).cast(), 4) != 4 {
            libc::_exit(127)
        }
        libc::_exit(127)
    }
}

/// Reads the child's errno from the pipe: `None` when exec succeeded (the pipe closed empty).
fn read_errno(fd: i32) -> Option<i32> {
    let mut buf = [0u8; 4];
    loop {
        // SAFETY: buf is valid for 4 bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 4) };
        if n == 4 {
            return Some(i32::from_ne_bytes(buf));
        }
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        // EOF (exec closed the pipe) or a short read that cannot carry an errno.
        return None;
    }
}

/// A path and argv as C strings, built before any fork so exec needs no allocation.
pub struct Exec {
    path: CString,
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
}

impl Exec {
    /// `path` to run, with `argv0` then `rest` as its arguments.
    pub fn new(path: &Path, argv0: &OsStr, rest: &[OsString]) -> Result<Exec> {
        let nul = |_| Error::new("an argument of the command contains a NUL byte");
        let path = CString::new(path.as_os_str().as_bytes()).map_err(nul)?;
        let mut strings = vec![CString::new(argv0.as_bytes()).map_err(nul)?];
        for a in rest {
            strings.push(CString::new(a.as_bytes()).map_err(nul)?);
        }
        let mut argv: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        argv.push(std::ptr::null());
        Ok(Exec {
            path,
            _strings: strings,
            argv,
        })
    }

    /// Replaces the process image with the current environment; returns only on failure,
    /// with errno set.
    pub fn exec(&self) {
        extern "C" {
            static environ: *const *const libc::c_char;
        }
        // SAFETY: path and argv are valid NUL-terminated C strings, argv null-terminated;
        // environ is the process environment, which nothing modifies meanwhile.
        unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), environ) };
    }
}

/// Tells apart why exec failed: the user needs to know which of these it was.
fn start_error(path: &Path, e: io::Error) -> Error {
    let p = path.display();
    match e.raw_os_error() {
        Some(libc::ENOEXEC) => Error::new(format!(
            "failed to start command: {p}: exec format error (not an executable format for this machine)"
        )),
        Some(libc::EACCES) => Error::new(format!(
            "failed to start command: {p}: permission denied (not executable)"
        )),
        Some(libc::ENOENT) => Error::new(format!(
            "failed to start command: {p}: no such file or directory (or its interpreter is missing)"
        )),
        _ => Error::new(format!("failed to start command: {p}: {e}")),
    }
}
