//! Helpers shared by the archive's unit tests (src/outputs/archive.rs includes this file by path)
//! and the outputs and artifact-store integration tests: file set-up, incompressible test data,
//! and the GNU tar and Python extract commands the archives are checked with.

#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Deterministic bytes of full entropy (xorshift32): incompressible, like model weights or video.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x: u32 = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

/// Python's tarfile extracting argv[1] into argv[2] as a root user restores a backup (all
/// members trusted, owners by number).
const PY_EXTRACT: &str = "import sys, tarfile
kw = {'filter': 'fully_trusted'} if hasattr(tarfile, 'fully_trusted_filter') else {}
with tarfile.open(sys.argv[1], 'r:gz') as t:
    t.extractall(sys.argv[2], numeric_owner=True, **kw)
";

/// GNU tar extracting the .tgz `archive` into `into` (made first) as a root user restores a
/// backup.
pub fn gnu_extract_cmd(archive: &Path, into: &Path) -> Command {
    fs::create_dir_all(into).unwrap();
    let mut c = Command::new("tar");
    c.arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .args(["--same-permissions", "--numeric-owner"])
        // Times are compared exactly instead: GNU tar warns of any before 1970 and of one
        // rounded up past now (a file just written, Go's archives alike).
        .arg("--warning=no-timestamp");
    c
}

/// Python's tarfile extracting the .tgz `archive` into `into` (made first), as GNU tar above.
pub fn python_extract_cmd(archive: &Path, into: &Path) -> Command {
    fs::create_dir_all(into).unwrap();
    let mut c = Command::new("python3");
    c.args(["-c", PY_EXTRACT]).arg(archive).arg(into);
    c
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Sets `p`'s mtime (and atime) without following a symlink.
pub fn set_mtime(p: &Path, secs: i64) {
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = [t, t];
    let c = cpath(p);
    // SAFETY: c is a valid NUL-terminated path and times holds two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0, "utimensat {}", p.display());
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}
