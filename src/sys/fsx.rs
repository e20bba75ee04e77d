//! File creation that others can trust: atomic replacement and no following of planted links.
//!
//! Every file another container reads (`exitcode`, outputs, the template, the binary) is written
//! under a temporary name in its final folder, opened `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`,
//! given its mode with `fchmod`, and renamed into place only when complete. A reader therefore
//! sees no file or the whole file, never a part, and a symlink planted at the temporary name
//! makes the open fail instead of writing through it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A file being written under a temporary name; renamed to its final name by `commit`,
/// removed if dropped before that.
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file beside `dest`, with exactly `mode`.
    pub fn create(dest: &Path, mode: u32) -> io::Result<AtomicFile> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        let base = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let pid = std::process::id();
        let mut last = None;
        // A neighbour may have planted something at our temporary name: try a few others.
        for _ in 0..8 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut name = std::ffi::OsString::from(".");
            name.push(base);
            name.push(format!(".tmp{pid}.{n}"));
            let tmp = dir.join(name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)
            {
                Ok(file) => {
                    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
                    return Ok(AtomicFile {
                        file: Some(file),
                        tmp,
                        dest: dest.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no temporary name available")))
    }

    pub fn file(&mut self) -> &mut File {
        // The file is only taken by `commit`, which consumes self.
        self.file.as_mut().expect("AtomicFile used after commit")
    }

    /// Renames the finished file into place.
    pub fn commit(mut self) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            drop(f);
        }
        let r = std::fs::rename(&self.tmp, &self.dest);
        if r.is_ok() {
            self.tmp = PathBuf::new();
        }
        r
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

/// Writes `data` to `dest` atomically with `mode`.
pub fn write_atomic(dest: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut f = AtomicFile::create(dest, mode)?;
    f.write_all(data)?;
    f.commit()
}

/// Creates `path` and its missing parents with `mode` (the umask is 0 in the emissary).
pub fn mkdir_all(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
}

/// Whether `path` is a folder itself, not a link to one.
pub fn is_real_dir(path: &Path) -> bool {
    path.symlink_metadata().is_ok_and(|m| m.is_dir())
}

/// Creates the folder `dir` with `mode` unless it exists, then checks that it is a folder
/// itself and not a link to one: the one step for walking down the shared root, where a
/// neighbour may have planted a link to send our writes elsewhere.
pub fn make_real_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(annotate("creating", dir, e))
        }
        _ => {}
    }
    if is_real_dir(dir) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a folder", dir.display()),
        ))
    }
}

/// Opens a file for appending, creating it with `mode`, refusing a symlink in its place.
/// Only a regular file is taken: a FIFO planted there fails to open at once (no reader, and
/// `O_NONBLOCK`) or is refused, instead of blocking the emissary.
pub fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    regular(f)
}

fn regular(f: File) -> io::Result<File> {
    if f.metadata()?.is_file() {
        Ok(f)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ))
    }
}

/// Opens a regular file for reading without blocking on a FIFO; `follow` says whether a
/// symlink may lead to it (a ConfigMap's files are links; the shared folder's must not be).
/// `Ok(None)` when there is no such file.
fn open_regular(path: &Path, follow: bool) -> io::Result<Option<File>> {
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    match OpenOptions::new()
        .read(true)
        .custom_flags(nofollow | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => regular(f).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a whole regular file of at most `limit` bytes (an error past that): a template or
/// an args file, which a neighbour could swap for a FIFO, `/dev/zero` or a huge file.
pub fn read_limited(path: &Path, limit: u64, follow: bool) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let Some(file) = open_regular(path, follow)? else {
        return Ok(None);
    };
    let mut buf = Vec::new();
    file.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "larger than the emissary reads",
        ));
    }
    Ok(Some(buf))
}

/// `err`, saying what was being done to which path (the format of `Error::io`), kind kept.
pub fn annotate(what: &str, path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
}

/// Copies `from` to its end into `to`, saying which side failed. A plain loop rather than
/// `io::copy`, whose errors do not tell reading from writing (and whose splice and sendfile
/// paths cost the binary more than they save on parameters and one binary copy).
pub fn copy(from: &mut File, src: &Path, to: &mut File, dst: &Path) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(annotate("reading", src, e)),
        };
        to.write_all(&buf[..n])
            .map_err(|e| annotate("writing", dst, e))?;
    }
}

/// The largest template or args file read: far above any real one (the controller offloads
/// above 128 KiB), far below what would hurt the container's memory.
pub const MAX_JSON: u64 = 64 << 20;

/// `read_limited`, where a missing file is an error too.
pub fn read_file(path: &Path, limit: u64, follow: bool) -> io::Result<Vec<u8>> {
    read_limited(path, limit, follow)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
}

/// Reads at most `max` bytes of a regular file without following a symlink or blocking on a
/// FIFO. `Ok(None)` when the file does not exist; an error when it is not a regular file.
pub fn read_small(path: &Path, max: usize) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let Some(file) = open_regular(path, false)? else {
        return Ok(None);
    };
    let mut buf = Vec::with_capacity(max.min(64));
    file.take(max as u64).read_to_end(&mut buf)?;
    Ok(Some(buf))
}

/// Writes the whole buffer to `fd`, retrying short writes and EINTR, and waiting out a
/// non-blocking descriptor that is full.
pub fn write_all(fd: i32, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is valid for reads of its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                // A console someone made non-blocking: wait until it takes more.
                io::ErrorKind::WouldBlock => {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: p is one valid pollfd.
                    if unsafe { libc::poll(&mut p, 1, -1) } < 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::Interrupted {
                            return Err(e);
                        }
                    }
                    continue;
                }
                _ => return Err(e),
            }
        }
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_and_mode() {
        let dir = std::env::temp_dir().join(format!("fsx-test-{}", std::process::id()));
        mkdir_all(&dir, 0o755).unwrap();
        let dest = dir.join("f");
        write_atomic(&dest, b"42", 0o644).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"42");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644);
        // Dropping an uncommitted file leaves nothing behind.
        drop(AtomicFile::create(&dir.join("g"), 0o644).unwrap());
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
