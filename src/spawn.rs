//! Starting the user command: own process group, the original signal mask, fds as planned.
//!
//! std's `Command` does the fork, the fds and the process group; `pre_exec` resets every
//! signal to its default action, gives the child back the signal mask the emissary started
//! with (std keeps the parent's blocked set otherwise) and then calls `execve` itself with the resolved path as argv[0]. Calling it
//! ourselves matters: std's `execvp` would run a file without a `#!` line through `/bin/sh`
//! on ENOEXEC (glibc does), where upstream reports "exec format error". std resets SIGPIPE to
//! its default in the child before `pre_exec` runs. The `Child` handle is dropped without
//! waiting: the supervision loop reaps every child itself.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::signals::{self, SigSet};

/// Where the child's fd 1 and 2 go.
pub enum Output {
    /// The emissary's own fds, no copy at all.
    Inherit,
    /// The write ends of the capture pipes.
    Pipes(OwnedFd, OwnedFd),
    /// A pty slave as fds 0, 1 and 2, and the controlling terminal of a new session.
    Tty(OwnedFd),
}

/// Starts `path` with `args` (args[0] is the command as given; the child's argv[0] is `path`).
/// Returns the child's pid, which is also its process group id.
pub fn start(path: &Path, args: &[OsString], mask: SigSet, output: Output) -> Result<i32> {
    let mut cmd = Command::new(path);
    cmd.args(args.iter().skip(1));
    let tty = matches!(output, Output::Tty(_));
    match output {
        Output::Inherit => {
            cmd.process_group(0);
        }
        Output::Pipes(out, err) => {
            cmd.process_group(0)
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err));
        }
        // setsid makes the child a session and group leader; setpgid first would make it fail.
        Output::Tty(slave) => {
            let dup = |fd: &OwnedFd| {
                fd.try_clone()
                    .map_err(|e| Error::new(format!("failed to set up the terminal: {e}")))
            };
            cmd.stdin(Stdio::from(dup(&slave)?))
                .stdout(Stdio::from(dup(&slave)?))
                .stderr(Stdio::from(slave));
        }
    }
    let exec = Exec::new(path, args)?;
    // SAFETY: between fork and exec the closure only calls rt_sigaction, pthread_sigmask and
    // execve, all
    // async-signal-safe, on memory prepared before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if tty {
                crate::pty::make_controlling()?;
            }
            signals::reset_dispositions();
            signals::set_mask(&mask)?;
            exec.exec();
            Err(io::Error::last_os_error())
        });
    }
    let child = cmd.spawn().map_err(|e| start_error(path, e))?;
    // The Command (and with it our copies of the pipe write ends) is dropped here, so the copy
    // threads see EOF once the child and its descendants have closed theirs.
    Ok(child.id() as i32)
}

/// argv as C strings, built before the fork so the child only has to call `execve`.
struct Exec {
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `_strings`, owned by the same struct and never mutated.
unsafe impl Send for Exec {}
// SAFETY: as above; the struct is only read.
unsafe impl Sync for Exec {}

impl Exec {
    fn new(path: &Path, args: &[OsString]) -> Result<Exec> {
        let nul = |_| Error::new("an argument of the command contains a NUL byte");
        let mut strings = vec![CString::new(path.as_os_str().as_bytes()).map_err(nul)?];
        for a in args.iter().skip(1) {
            strings.push(CString::new(a.as_bytes()).map_err(nul)?);
        }
        let mut argv: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        argv.push(std::ptr::null());
        Ok(Exec {
            _strings: strings,
            argv,
        })
    }

    /// Replaces the process image; returns only on failure, with errno set.
    fn exec(&self) {
        extern "C" {
            static environ: *const *const libc::c_char;
        }
        // SAFETY: argv is a null-terminated array of valid C strings; environ is the process
        // environment, which nothing modifies in the child.
        unsafe { libc::execve(self.argv[0], self.argv.as_ptr(), environ) };
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
