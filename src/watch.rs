//! Wakes the supervision loop when something changes in the folders it waits on.
//!
//! An inotify descriptor over the folders (not the files: they come and go, and a rename into
//! place must count) joins the signalfd in the loop's `poll`, so a signal file, a debug-pause
//! marker or a dependency's `exitcode` is seen at once, and an idle emissary sleeps instead of
//! polling. inotify can be unavailable (instance limit reached, a file system without it):
//! then `Watch::new` gives `None` and the loop falls back to looking every short tick.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::fsx;

/// Everything that can make a file appear, change or be replaced.
const EVENTS: u32 = libc::IN_CREATE
    | libc::IN_MODIFY
    | libc::IN_CLOSE_WRITE
    | libc::IN_MOVED_TO
    | libc::IN_ATTRIB
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

pub struct Watch {
    fd: OwnedFd,
}

impl Watch {
    /// Watches every folder of `dirs`, creating missing ones (0777, as upstream's wait
    /// container does, so that a folder another container has not made yet can be watched).
    pub fn new(dirs: &[&Path]) -> Option<Watch> {
        // SAFETY: inotify_init1 returns a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd is a fresh descriptor owned only here.
        let w = Watch {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        };
        for dir in dirs {
            // A folder we cannot create or watch leaves the whole wait to the periodic look.
            fsx::mkdir_all(dir, 0o777).ok()?;
            let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
            // SAFETY: c is a valid path; the watch descriptor is owned by the inotify fd.
            if unsafe { libc::inotify_add_watch(w.fd.as_raw_fd(), c.as_ptr(), EVENTS) } < 0 {
                return None;
            }
        }
        Some(w)
    }

    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Discards the pending events: the caller looks at the files themselves.
    pub fn drain(&self) {
        let mut buf = [0u8; 4096];
        // SAFETY: buf is valid for its length; the fd is non-blocking, so this ends at EAGAIN.
        while unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}
