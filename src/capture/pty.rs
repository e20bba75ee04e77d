//! A pseudo-terminal for the child when the container has one (`tty: true`): the child gets
//! a new pty as its controlling terminal, our terminal goes into raw mode so keys pass through
//! unchanged, and the window size follows ours (SPEC section 3 step 8).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Whether fd 0 is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty only queries the descriptor.
    unsafe { libc::isatty(0) == 1 }
}

/// A new pseudo-terminal: (master, slave), both close-on-exec, with our window size.
pub fn open() -> io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: posix_openpt returns a new descriptor or -1.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: m is a fresh descriptor owned only here.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    // SAFETY: grantpt and unlockpt take the master fd opened above.
    if unsafe { libc::grantpt(m) } != 0 || unsafe { libc::unlockpt(m) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The slave's number, and its path built by hand: ptsname_r would pull in printf.
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    if unsafe { libc::ioctl(m, libc::TIOCGPTN, &mut n) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let path = std::ffi::CString::new(format!("/dev/pts/{n}"))
        .map_err(|_| io::Error::other("pty path"))?;
    // SAFETY: path is a valid NUL-terminated string.
    let s = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: s is a fresh descriptor owned only here.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    copy_window_size(0, master.as_raw_fd());
    Ok((master, slave))
}

/// Gives `to` the window size of `from`; a terminal without one keeps its own.
pub fn copy_window_size(from: i32, to: i32) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a winsize; TIOCSWINSZ reads one.
    let ok = unsafe {
        libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0
            && libc::ioctl(to, libc::TIOCSWINSZ, &ws) == 0
    };
    if !ok {
        // Not a terminal, or one without a size: the child's terminal keeps its own.
    }
}

/// Our terminal in raw mode until dropped, then as it was.
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    pub fn enter() -> Option<RawMode> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 and a valid termios pointer.
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        // SAFETY: cfmakeraw edits the struct; tcsetattr applies it to fd 0.
        unsafe {
            libc::cfmakeraw(&mut t);
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return None;
            }
        }
        crate::sys::log::set_raw_terminal(true);
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        crate::sys::log::set_raw_terminal(false);
        // SAFETY: restores the settings read in `enter`.
        if unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) } != 0 {
            // The terminal is gone; there is nothing left to restore.
        }
    }
}
