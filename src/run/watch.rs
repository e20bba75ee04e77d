//! Wakes the supervision loop when something changes in the folders it waits on.
//!
//! An inotify descriptor over the folders (not the files: they come and go, and a rename into
//! place must count) joins the signalfd in the loop's `poll`, so a signal file, a debug-pause
//! marker or a dependency's `exitcode` is seen at once, and an idle emissary sleeps instead of
//! polling. One instance serves the whole run and is only made once a wait has lasted a
//! while: closing an inotify instance waits for the kernel's mark cleanup (an RCU grace
//! period, ~10 ms), which a step that ends at once should not pay (one that lasts pays it after
//! its `exitcode`: the emissary keeps the instance until then, `Supervisor::into_watch`). inotify can be unavailable
//! (the per-uid instance limit, shared by every container of that uid on the node, reached; a
//! file system without it): the loop then looks on a tick that slows down, and tries again.
//!
//! Only the events that finish a change are watched: a file closed after writing (the signal
//! file written in place, an upstream emissary's `exitcode`, the alive lock of an emissary that
//! died: the kernel closes its descriptor), a file renamed into place, a file created (a
//! debug-pause marker). Never `IN_MODIFY`: the capture files in the same folders, ours and a
//! neighbour's, are written all the time and closed only at the end, and must not wake us.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::sys::fsx;

/// Every event that ends a file's appearing, changing or being replaced, and the folder's own
/// removal; no event that a write to a file held open causes.
const EVENTS: u32 = libc::IN_CREATE
    | libc::IN_CLOSE_WRITE
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

pub struct Watch {
    fd: OwnedFd,
}

impl Watch {
    /// A new inotify instance, or `None` where there is none to be had.
    pub fn new() -> Option<Watch> {
        // SAFETY: inotify_init1 returns a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd is a fresh descriptor owned only here.
        Some(Watch {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches every folder of `dirs` (watching one twice is harmless), creating missing ones
    /// 0777 as upstream's wait container does, so a folder another container has not made yet
    /// can be watched. False when one cannot be watched: the caller then keeps looking often.
    pub fn add(&self, dirs: &[&Path]) -> bool {
        dirs.iter().all(|dir| {
            let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
                return false;
            };
            // SAFETY: c is a valid path; the watch belongs to our inotify descriptor.
            fsx::mkdir_all(dir, 0o777).is_ok()
                && unsafe { libc::inotify_add_watch(self.fd(), c.as_ptr(), EVENTS) } >= 0
        })
    }

    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Discards the pending events (the caller looks at the files themselves); true when one
    /// says that events may have been lost: the queue overflowed (`IN_Q_OVERFLOW`), or a
    /// watched folder is no longer the one at its path (removed or moved away: its watch
    /// follows the old folder, which files held open inside it keep alive, so `IN_IGNORED`
    /// may come late or never). The caller must then look, and watch again, rather than
    /// trust the silence.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 4096];
        let mut lost = false;
        loop {
            // SAFETY: buf is valid for its length; the fd is non-blocking, so this ends at EAGAIN.
            let n = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n) = usize::try_from(n) else { break };
            if n == 0 {
                break;
            }
            // struct inotify_event: wd, mask, cookie, len (4 bytes each), then len name bytes.
            let mut at = 0;
            while at + 16 <= n {
                let word =
                    |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
                let mask = word(at + 4);
                let gone = libc::IN_IGNORED | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;
                lost |= mask & (libc::IN_Q_OVERFLOW | gone) != 0;
                at += 16 + word(at + 12) as usize;
            }
        }
        lost
    }
}
