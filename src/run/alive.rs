//! The alive lock (SPEC section 3 step 8, "alive"): how a container that died without writing
//! `exitcode` is told apart from one still running or not started yet.
//!
//! For its whole life the emissary holds an exclusive open-file-description lock on
//! `ctr/C/alive`. The kernel releases it whatever ends the process (OOM kill, SIGKILL after the
//! grace period), and closing the descriptor then gives `IN_CLOSE_WRITE` in the folder, which
//! wakes a waiting neighbour at once. The file is made and locked under a temporary name and
//! only then renamed into place, so an `alive` that exists is locked from the first moment; it
//! is left in place at the end, after `exitcode`. Readers therefore see:
//! - no `alive` (or not a regular file): not started yet, or an emissary that keeps no lock
//!   (upstream's): nothing is concluded, the wait goes on as before;
//! - `alive` locked: running;
//! - `alive` free: ended. Its `exitcode`, looked at again after the lock was seen free, tells a
//!   finished run (written before the lock was released) from a death.
//!
//! The folder is shared with every container of the pod: nothing here follows a link, blocks
//! on a FIFO or writes into a file a neighbour planted.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The lock file's name in `ctr/C/`.
pub const NAME: &str = "alive";

/// What a container's lock says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No lock file that can be read: not started, or not one of ours.
    Unknown,
    /// The lock is held: its emissary runs.
    Held,
    /// The lock file is there and free: its emissary has ended.
    Free,
}

/// Takes the lock in `dir` (our own `ctr/C/`) for the rest of the process's life: the
/// descriptor is deliberately never closed, so the lock outlives `exitcode`'s writing and is
/// released by the kernel only when the process ends.
pub fn hold_for_life(dir: &Path) -> io::Result<()> {
    let fd = hold(dir)?;
    std::mem::forget(fd);
    Ok(())
}

fn hold(dir: &Path) -> io::Result<OwnedFd> {
    let tmp = dir.join(format!(".{NAME}.{}", std::process::id()));
    let tmp_c = cstring(&tmp)?;
    let fd = open_new(&tmp_c)?;
    let lock =
        lock(fd.as_raw_fd(), libc::F_OFD_SETLK).and_then(|_| std::fs::rename(&tmp, dir.join(NAME)));
    if let Err(e) = lock {
        // SAFETY: tmp_c is a valid path; unlinking our own temporary file.
        unsafe { libc::unlink(tmp_c.as_ptr()) };
        return Err(e);
    }
    Ok(fd)
}

/// Creates `path` afresh (never opening what is there: a neighbour may have planted a link,
/// a FIFO or a file it locks itself at our temporary name), for reading and writing.
fn open_new(path: &CString) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | libc::O_CLOEXEC;
    for _ in 0..3 {
        // SAFETY: path is a valid C string; open returns a new descriptor or -1.
        let fd = unsafe { libc::open(path.as_ptr(), flags, 0o644 as libc::c_uint) };
        if fd >= 0 {
            // SAFETY: fd is a fresh descriptor owned only here.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
        // SAFETY: path is a valid C string; removes the name only (a planted folder stays
        // and the next open fails with EEXIST again).
        unsafe { libc::unlink(path.as_ptr()) };
    }
    Err(io::Error::from_raw_os_error(libc::EEXIST))
}

/// An exclusive lock over the whole file: taken (`F_OFD_SETLK`) or tested (`F_OFD_GETLK`,
/// which returns the lock type that would conflict, `F_UNLCK` when none).
fn lock(fd: i32, cmd: libc::c_int) -> io::Result<libc::c_short> {
    // SAFETY: an all-zero flock is valid; the fields that matter are set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // l_start 0, l_len 0: the whole file; l_pid must be 0 for OFD locks.
    // SAFETY: fl is a valid flock for the duration of the call.
    if unsafe { libc::fcntl(fd, cmd, &mut fl) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type)
}

/// The state of the lock in `dir` (another container's `ctr/D/`). Opened read-only, so
/// looking closes with `IN_CLOSE_NOWRITE`, which wakes no watcher.
pub fn state(dir: &Path) -> State {
    let Ok(c) = cstring(&dir.join(NAME)) else {
        return State::Unknown;
    };
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: c is a valid C string; open returns a new descriptor or -1.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_NOCTTY) };
    if fd < 0 {
        return State::Unknown;
    }
    // SAFETY: fd is a fresh descriptor owned only here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: st is valid storage for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open, st valid.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0
        || st.st_mode & libc::S_IFMT != libc::S_IFREG
    {
        return State::Unknown;
    }
    match lock(fd.as_raw_fd(), libc::F_OFD_GETLK) {
        Ok(t) if t == libc::F_UNLCK as libc::c_short => State::Free,
        Ok(_) => State::Held,
        Err(_) => State::Unknown,
    }
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_then_free_then_planted() {
        let dir = std::env::temp_dir().join(format!("argoexec-alive-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(state(&dir), State::Unknown);
        // A planted link is replaced, never followed.
        std::os::unix::fs::symlink("/etc/passwd", dir.join(NAME)).unwrap();
        let fd = hold(&dir).unwrap();
        assert_eq!(state(&dir), State::Held);
        assert!(dir.join(NAME).symlink_metadata().unwrap().is_file());
        drop(fd);
        assert_eq!(state(&dir), State::Free);
        std::fs::remove_file(dir.join(NAME)).unwrap();
        std::fs::create_dir(dir.join(NAME)).unwrap();
        assert_eq!(state(&dir), State::Unknown);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
