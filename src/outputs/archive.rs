//! The artifact format: a gzip'd tar of one file or folder, streamed (SPEC section 5).
//!
//! This module owns the tar inside `outputs/artifacts/<path>.tgz`: its layout (one top-level
//! entry named after the source, folders walked in byte-wise sorted order, root first, symlinks
//! kept as symlinks, GNU long names) and the reading of the source; `gzip` owns the compressed
//! stream around it. Memory stays bounded whatever the size: file contents pass through in
//! small pieces into `gzip`'s bounded chunks. The same tree always gives the same bytes (no
//! timestamps of our own, deterministic deflate), so reruns are comparable.

use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use tar::{Builder, EntryType, Header};

use crate::outputs::gzip::GzWriter;
use crate::run::deadline::Clock;
use crate::sys::fsx::annotate;
use crate::sys::log;

/// The default level, as Go's `gzip.DefaultCompression`.
pub const DEFAULT_LEVEL: u8 = 6;

/// Writes a gzip'd tar of `src` to `out` at deflate `level` (0 = stored, 9 = best; above 9
/// means 9) and returns the number of tar entries written.
///
/// `src` itself is followed when it is a symlink; nothing below it is. Errors about the
/// source name the path concerned; the caller adds which output it was. `clock` is asked
/// before each entry and each read of file data: once it runs out, the archive stops with its
/// error (SPEC section 3 step 11), and the caller removes what was written.
pub fn write_tgz<W: Write>(
    src: &Path,
    level: u8,
    mut out: W,
    clock: &mut Clock,
) -> io::Result<u64> {
    // One non-generic body, so every caller shares the same machine code.
    write_tgz_dyn(src, level, &mut out, clock)
}

fn write_tgz_dyn(src: &Path, level: u8, out: &mut dyn Write, clock: &mut Clock) -> io::Result<u64> {
    let name = base_name(src)?;
    let mut gz = GzWriter::new(out, level)?;
    let mut tar = Builder::new(&mut gz);
    let count = walk(&mut tar, src, name, clock)?;
    // Writes the two zero blocks that end a tar.
    tar.into_inner()?;
    gz.finish()?;
    Ok(count)
}

/// The name of the top-level entry: the source's last component. `.` and `x/..` name no
/// component, so, as Go's `filepath.Abs` + `Base`, the folder they stand for gives it.
fn base_name(src: &Path) -> io::Result<Vec<u8>> {
    if let Some(name) = src.file_name() {
        return Ok(name.as_bytes().to_vec());
    }
    let abs = fs::canonicalize(src).map_err(|e| annotate("cannot resolve", src, e))?;
    match abs.file_name() {
        Some(name) => Ok(name.as_bytes().to_vec()),
        None => Err(refused(src, "it has no name to archive it under")),
    }
}

/// A source that cannot be archived at all, and why.
fn refused(path: &Path, why: &str) -> io::Error {
    annotate(
        "cannot archive",
        path,
        io::Error::new(io::ErrorKind::InvalidInput, why),
    )
}

type Tar<'a, 'b> = Builder<&'a mut GzWriter<'b>>;

/// What `append_entry` did with a path.
enum Added {
    Skipped,
    Leaf,
    Folder,
}

/// Archives `src` under `name`, then everything below it, depth first in sorted order.
///
/// An explicit stack instead of recursion: a deep tree cannot overflow the thread's stack.
/// It holds the not yet visited siblings along the current branch, no file contents.
fn walk(tar: &mut Tar, src: &Path, name: Vec<u8>, clock: &mut Clock) -> io::Result<u64> {
    let mut stack = vec![(src.to_path_buf(), name, true)];
    let mut count = 0;
    while let Some((path, name, is_root)) = stack.pop() {
        clock.check()?;
        match append_entry(tar, &path, &name, is_root, clock)? {
            Added::Skipped => continue,
            Added::Leaf => {}
            Added::Folder => {
                for child in sorted_children(&path)?.into_iter().rev() {
                    let mut child_name = name.clone();
                    child_name.push(b'/');
                    child_name.extend_from_slice(child.as_bytes());
                    stack.push((path.join(child), child_name, false));
                }
            }
        }
        count += 1;
    }
    Ok(count)
}

/// Metadata of `path`: the source itself is followed, anything below it is not.
fn stat(path: &Path, follow: bool) -> io::Result<Metadata> {
    let r = if follow {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    };
    r.map_err(|e| annotate("cannot stat", path, e))
}

/// The names in folder `dir`, sorted byte-wise (as Go's `filepath.Walk`).
fn sorted_children(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| annotate("cannot list", dir, e))? {
        names.push(
            entry
                .map_err(|e| annotate("cannot list", dir, e))?
                .file_name(),
        );
    }
    // Byte-wise: how `OsString` orders on Unix. Names are unique, so no stability is needed.
    names.sort_unstable();
    Ok(names)
}

/// Writes the entry for `path` (a socket below the source is skipped with a warning).
fn append_entry(
    tar: &mut Tar,
    path: &Path,
    name: &[u8],
    is_root: bool,
    clock: &mut Clock,
) -> io::Result<Added> {
    let meta = stat(path, is_root)?;
    let ft = meta.file_type();
    if ft.is_file() {
        append_file(tar, path, name, is_root, clock)?;
    } else if ft.is_dir() {
        append_special(tar, header(&meta, EntryType::Directory, 0), name, None)?;
        return Ok(Added::Folder);
    } else if ft.is_symlink() {
        let target = fs::read_link(path).map_err(|e| annotate("cannot read link", path, e))?;
        let h = header(&meta, EntryType::Symlink, 0);
        append_special(tar, h, name, Some(target.as_os_str().as_bytes()))?;
    } else if ft.is_fifo() {
        append_special(tar, header(&meta, EntryType::Fifo, 0), name, None)?;
    } else if ft.is_char_device() || ft.is_block_device() {
        append_device(tar, &meta, name)?;
    } else if is_root {
        // Nothing would be left to archive: the output is as good as missing.
        return Err(refused(path, "it is a socket, which tar cannot hold"));
    } else {
        log::warn(
            "skipping a socket in an artifact, tar cannot hold it",
            &[("path", &path.to_string_lossy())],
        );
        return Ok(Added::Skipped);
    }
    Ok(Added::Leaf)
}

/// An entry's header, and its mtime when that does not fit the header's octal field.
struct Hdr {
    h: Header,
    /// Before 1970, or past year 2242: carried by a PAX `mtime` record, as Go writes it.
    pax_mtime: Option<i64>,
}

/// The largest mtime the 11 octal digits of a header hold.
const MAX_OCTAL_MTIME: i64 = 0o777_7777_7777;

/// A header with the entry's type, permission bits (setuid, setgid, sticky included), owner,
/// mtime and size. No user or group names: readers then fall back to the numeric ids.
///
/// The mtime is in whole seconds, rounded to the nearest, a half up (Go's `archive/tar` rounds
/// so: `time.Round(time.Second)`). One that the octal field cannot hold (before 1970) goes, as
/// Go's writer does it, into a PAX extended header's `mtime` record, with 0 in the header
/// itself; GNU tar, Python's tarfile and Go all read it back.
fn header(meta: &Metadata, kind: EntryType, size: u64) -> Hdr {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(meta.uid().into());
    h.set_gid(meta.gid().into());
    let mtime = round_mtime(meta.mtime(), meta.mtime_nsec());
    let fits = (0..=MAX_OCTAL_MTIME).contains(&mtime);
    h.set_mtime(if fits { mtime as u64 } else { 0 });
    h.set_size(size);
    Hdr {
        h,
        pax_mtime: (!fits).then_some(mtime),
    }
}

/// Seconds and nanoseconds (always 0 to 999,999,999 past `secs`, also before 1970) rounded to
/// the nearest second, a half up: 1.5 s gives 2, -1.5 s (-2 s + 500 ms) gives -1.
fn round_mtime(secs: i64, nsec: i64) -> i64 {
    secs.saturating_add(i64::from(nsec >= 500_000_000))
}

fn append_device(tar: &mut Tar, meta: &Metadata, name: &[u8]) -> io::Result<()> {
    let kind = if meta.file_type().is_char_device() {
        EntryType::Char
    } else {
        EntryType::Block
    };
    let mut h = header(meta, kind, 0);
    h.h.set_device_major(libc::major(meta.rdev()))?;
    h.h.set_device_minor(libc::minor(meta.rdev()))?;
    append_special(tar, h, name, None)
}

/// An entry without contents: folder, symlink (with its raw target), FIFO, device.
fn append_special(tar: &mut Tar, h: Hdr, name: &[u8], link: Option<&[u8]>) -> io::Result<()> {
    append_named(tar, h, name, link, &mut io::empty())
}

/// Sets the name (and link target) in `h`, emitting a PAX header for an mtime the header
/// cannot hold and GNU long-name entries where the name does not fit, then writes `h` and
/// exactly `h.size` bytes of `data`.
///
/// The bytes go in as they are, not through the tar crate's path setters: those normalise
/// (`a//b`, `./x`) and would change a symlink's target.
fn append_named(
    tar: &mut Tar,
    h: Hdr,
    name: &[u8],
    link: Option<&[u8]>,
    data: &mut dyn Read,
) -> io::Result<()> {
    let Hdr { mut h, pax_mtime } = h;
    if let Some(t) = pax_mtime {
        append_pax(tar, name, &[("mtime", &t.to_string())])?;
    }
    if let Some(target) = link {
        put_long(tar, &mut h.as_old_mut().linkname, target, b'K')?;
    }
    put_long(tar, &mut h.as_old_mut().name, name, b'L')?;
    h.set_cksum();
    tar.append(&h, data)
}

/// Writes a PAX extended header (type `x`) with `records` for the entry `name` that follows.
/// Each record is `<length> <key>=<value>\n`, the length counting the whole record, its own
/// digits included. Named `PaxHeaders.0/<base name>` as Go names it (truncated to fit).
fn append_pax(tar: &mut Tar, name: &[u8], records: &[(&str, &str)]) -> io::Result<()> {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3; // space, `=`, newline
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(format!("{len} {k}={v}\n").as_bytes());
    }
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    let mut pax_name = b"PaxHeaders.0/".to_vec();
    pax_name.extend_from_slice(base);
    let mut h = Header::new_gnu();
    let field = &mut h.as_old_mut().name;
    let n = pax_name.len().min(field.len() - 1);
    field[..n].copy_from_slice(&pax_name[..n]);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(body.len() as u64);
    h.set_entry_type(EntryType::XHeader);
    h.set_cksum();
    tar.append(&h, &body[..])
}

/// Copies `value` into a header `field`, truncated if need be; when it does not fit (GNU tar's
/// rule: 100 bytes or more), first writes a `././@LongLink` entry of type `kind` (`L` for a
/// name, `K` for a link target) that carries all of it, NUL-terminated, as GNU tar does.
/// GNU tar, Python's tarfile and Go's archive/tar all read these.
fn put_long(tar: &mut Tar, field: &mut [u8; 100], value: &[u8], kind: u8) -> io::Result<()> {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    if value.len() < field.len() {
        return Ok(());
    }
    let mut h = Header::new_gnu();
    let magic = b"././@LongLink";
    h.as_old_mut().name[..magic.len()].copy_from_slice(magic);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(value.len() as u64 + 1);
    h.set_entry_type(EntryType::new(kind));
    h.set_cksum();
    tar.append(&h, value.chain(&[0u8][..]))
}

/// A regular file: header from the opened file (so size and mode belong to what is read),
/// then its bytes. Opened without following a symlink, except for the source itself, and
/// without blocking, in case a FIFO was swapped in since the walk looked.
fn append_file(
    tar: &mut Tar,
    path: &Path,
    name: &[u8],
    is_root: bool,
    clock: &mut Clock,
) -> io::Result<()> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if !is_root {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| annotate("cannot open", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| annotate("cannot stat", path, e))?;
    if !meta.is_file() {
        return Err(refused(path, "it changed type while being archived"));
    }
    let size = meta.len();
    let mut data = Exact::new(file, size, path, clock);
    append_named(
        tar,
        header(&meta, EntryType::Regular, size),
        name,
        None,
        &mut data,
    )?;
    data.report_change();
    Ok(())
}

/// Reads exactly `left` bytes from a file whose size was put in the tar header: if the file
/// shrinks meanwhile, zeros make up the rest; if it grows, the growth is left out. Either way
/// the tar stays well formed. Read errors name the file. Each read first asks `clock`, so a
/// multi-GB file stops within one read once the time is up.
struct Exact<'a> {
    file: File,
    left: u64,
    path: &'a Path,
    shrank: bool,
    clock: &'a mut Clock,
}

impl<'a> Exact<'a> {
    fn new(file: File, size: u64, path: &'a Path, clock: &'a mut Clock) -> Exact<'a> {
        Exact {
            file,
            left: size,
            path,
            shrank: false,
            clock,
        }
    }

    /// Warns when the archived bytes are not the file's current ones.
    fn report_change(mut self) {
        let msg = if self.shrank {
            "file shrank while being archived, padded with zeros"
        } else if matches!(self.file.read(&mut [0u8]), Ok(1)) {
            "file grew while being archived, truncated"
        } else {
            return;
        };
        log::warn(msg, &[("path", &self.path.to_string_lossy())]);
    }
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        self.clock.check()?;
        let n = if self.shrank {
            0
        } else {
            self.file
                .read(&mut buf[..want])
                .map_err(|e| annotate("cannot read", self.path, e))?
        };
        let n = if n == 0 {
            self.shrank = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[path = "../../tests/common/files.rs"]
mod test_files;

#[cfg(test)]
pub(crate) mod tests {
    use super::test_files::{
        chmod, cpath, gnu_extract_cmd, is_root, python_extract_cmd, set_mtime,
    };
    use super::*;
    use crate::outputs::gzip::tests::crc32;
    pub(crate) use crate::outputs::gzip::tests::gunzip;
    use std::collections::BTreeMap;
    use std::os::unix::ffi::OsStringExt;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};

    static SCRATCH: AtomicU32 = AtomicU32::new(0);

    /// A fresh, empty folder for one test (tests run in parallel threads of one process).
    pub(crate) fn scratch(tag: &str) -> PathBuf {
        let n = SCRATCH.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("argoexec-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mknod(p: &Path, mode: libc::mode_t, dev: libc::dev_t) -> bool {
        let c = cpath(p);
        // SAFETY: c is a valid NUL-terminated path.
        unsafe { libc::mknod(c.as_ptr(), mode, dev) == 0 }
    }

    /// Deterministic, poorly compressible bytes.
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    /// Builds `base/tree` with every kind of entry the format must carry; `big` adds a 20 MB
    /// file. Returns the tree's path.
    pub(crate) fn build_tree(base: &Path, big: bool) -> PathBuf {
        let t = base.join("tree");
        fs::create_dir(&t).unwrap();
        fs::write(t.join("a.txt"), "hello\n").unwrap();
        fs::write(t.join("empty"), "").unwrap();
        fs::write(t.join("exec.sh"), "#!/bin/sh\necho hi\n").unwrap();
        chmod(&t.join("exec.sh"), 0o755);
        fs::write(t.join("suid"), noise(3000)).unwrap();
        fs::write(
            t.join("bigid"),
            "ids past the 7 octal digits of a tar field",
        )
        .unwrap();
        if is_root() {
            std::os::unix::fs::chown(t.join("suid"), Some(1234), Some(5678)).unwrap();
            std::os::unix::fs::chown(t.join("bigid"), Some(3_000_000), Some(4_000_000)).unwrap();
        }
        chmod(&t.join("suid"), 0o4755);
        fs::create_dir(t.join("emptydir")).unwrap();
        fs::create_dir(t.join("sticky")).unwrap();
        chmod(&t.join("sticky"), 0o1777);
        fs::create_dir(t.join("sgid")).unwrap();
        fs::write(t.join("sgid/inside"), "x").unwrap();
        chmod(&t.join("sgid"), 0o2750);
        fs::create_dir_all(t.join("sub/deeper/deepest")).unwrap();
        fs::write(t.join("sub/deeper/deepest/f.txt"), noise(70_000)).unwrap();
        let long_dir = t.join("sub").join("d".repeat(150));
        fs::create_dir(&long_dir).unwrap();
        fs::write(long_dir.join("f".repeat(150)), "deep and long").unwrap();
        fs::write(t.join("n".repeat(200)), "a long name").unwrap();
        fs::write(t.join(OsString::from_vec(b"caf\xe9".to_vec())), "latin-1").unwrap();
        symlink("a.txt", t.join("link_rel")).unwrap();
        symlink("/etc/passwd", t.join("link_abs")).unwrap();
        symlink("nope/missing", t.join("link_dangling")).unwrap();
        symlink("x/".repeat(60), t.join("link_long")).unwrap();
        symlink("./sub//deeper/", t.join("link_dir")).unwrap();
        fs::hard_link(t.join("a.txt"), t.join("hard")).unwrap();
        assert!(mknod(&t.join("fifo"), libc::S_IFIFO | 0o640, 0));
        if is_root() {
            // A container may lack CAP_MKNOD; the device is then simply not part of the tree.
            let _made = mknod(&t.join("null"), libc::S_IFCHR | 0o666, libc::makedev(1, 3));
        }
        std::os::unix::net::UnixListener::bind(t.join("sock")).unwrap();
        if big {
            let mut data = noise(20 << 20);
            data[5_000_000..15_000_000].fill(b'z');
            fs::write(t.join("big"), data).unwrap();
        }
        set_mtime(&t.join("a.txt"), 1_000_000_000);
        set_mtime(&t.join("empty"), 631_152_000);
        set_mtime(&t.join("sub/deeper/deepest"), 1_234_567_890);
        set_mtime(&t.join("emptydir"), 1_500_000_000);
        set_mtime(&t, 1_600_000_000);
        t
    }

    #[derive(Debug, PartialEq)]
    pub(crate) struct Node {
        kind: &'static str,
        mode: u32,
        uid: u32,
        gid: u32,
        /// Not for symlinks: Python's tarfile does not set their times.
        mtime: Option<i64>,
        link: Option<Vec<u8>>,
        rdev: u64,
        len: u64,
        crc: u32,
    }

    /// Everything below `dir` that a tar should carry, by relative path (sockets left out).
    pub(crate) fn snapshot(dir: &Path) -> BTreeMap<Vec<u8>, Node> {
        let mut out = BTreeMap::new();
        snapshot_into(dir, b"", &mut out);
        out
    }

    fn snapshot_into(dir: &Path, prefix: &[u8], out: &mut BTreeMap<Vec<u8>, Node>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let mut key = prefix.to_vec();
            key.extend_from_slice(e.file_name().as_bytes());
            let m = fs::symlink_metadata(&path).unwrap();
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_file() {
                "file"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else {
                continue;
            };
            let (len, crc) = if ft.is_file() {
                let data = fs::read(&path).unwrap();
                (data.len() as u64, crc32(&data))
            } else {
                (0, 0)
            };
            let node = Node {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                // Rounded as the archive rounds it (extracted files have whole seconds).
                mtime: (!ft.is_symlink()).then(|| round_mtime(m.mtime(), m.mtime_nsec())),
                link: ft
                    .is_symlink()
                    .then(|| fs::read_link(&path).unwrap().into_os_string().into_vec()),
                rdev: if ft.is_char_device() || ft.is_block_device() {
                    m.rdev()
                } else {
                    0
                },
                len,
                crc,
            };
            if ft.is_dir() {
                let mut sub = key.clone();
                sub.push(b'/');
                snapshot_into(&path, &sub, out);
            }
            out.insert(key, node);
        }
    }

    fn tgz_file(src: &Path, level: u8, dest: &Path) {
        let f = File::create(dest).unwrap();
        write_tgz(src, level, f, &mut Clock::unbounded()).unwrap();
    }

    fn tgz(src: &Path, level: u8) -> Vec<u8> {
        let mut out = Vec::new();
        write_tgz(src, level, &mut out, &mut Clock::unbounded()).unwrap();
        out
    }

    /// Entry names and types, in archive order, as the tar crate reads them.
    pub(crate) fn list(tgz: &[u8]) -> Vec<(String, EntryType)> {
        let tar = gunzip(tgz);
        let mut ar = tar::Archive::new(&tar[..]);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                (name, e.header().entry_type())
            })
            .collect()
    }

    /// Runs a reference tool; `false` (with a note) when it is not installed, so the check is
    /// skipped rather than failed on a machine without it. It must succeed without a word.
    fn run_tool(cmd: &mut Command) -> bool {
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: {:?} is not installed", cmd.get_program());
                return false;
            }
            Err(e) => panic!("{:?}: {e}", cmd.get_program()),
        };
        assert!(out.status.success(), "{:?} failed: {:?}", cmd, out);
        assert!(out.stderr.is_empty(), "{:?} said: {:?}", cmd, out);
        true
    }

    /// Extracts with GNU tar as a root user would restore a backup.
    fn gnu_extract(archive: &Path, into: &Path) -> bool {
        run_tool(&mut gnu_extract_cmd(archive, into))
    }

    fn python_extract(archive: &Path, into: &Path) -> bool {
        run_tool(&mut python_extract_cmd(archive, into))
    }

    fn assert_same(expected: &BTreeMap<Vec<u8>, Node>, got: &BTreeMap<Vec<u8>, Node>, who: &str) {
        for (k, v) in expected {
            let name = String::from_utf8_lossy(k);
            assert_eq!(got.get(k), Some(v), "{who}: entry {name}");
        }
        assert_eq!(expected.len(), got.len(), "{who}: entry count");
    }

    #[test]
    fn gnu_tar_and_python_extract_everything() {
        let base = scratch("tools");
        let src = base.join("src");
        fs::create_dir(&src).unwrap();
        let tree = build_tree(&src, true);
        let expected = snapshot(&src);
        assert!(expected.contains_key(&b"tree/big"[..]));
        assert!(!expected.contains_key(&b"tree/sock"[..]));
        let archive = base.join("tree.tgz");
        tgz_file(&tree, 6, &archive);

        if gnu_extract(&archive, &base.join("gnu")) {
            assert_same(&expected, &snapshot(&base.join("gnu")), "GNU tar");
        }
        if python_extract(&archive, &base.join("py")) {
            assert_same(&expected, &snapshot(&base.join("py")), "Python tarfile");
        }

        // Same tree, same bytes.
        let again = base.join("again.tgz");
        tgz_file(&tree, 6, &again);
        assert!(fs::read(&archive).unwrap() == fs::read(&again).unwrap());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn every_level_extracts() {
        let base = scratch("levels");
        let src = base.join("src");
        fs::create_dir(&src).unwrap();
        let tree = build_tree(&src, false);
        let expected = snapshot(&src);
        let mut sizes = Vec::new();
        for level in [0, 1, 6, 9] {
            let archive = base.join(format!("l{level}.tgz"));
            tgz_file(&tree, level, &archive);
            gunzip(&fs::read(&archive).unwrap());
            let into = base.join(format!("l{level}"));
            if gnu_extract(&archive, &into) {
                assert_same(&expected, &snapshot(&into), "GNU tar");
            }
            sizes.push(fs::metadata(&archive).unwrap().len());
        }
        // Level 0 is stored blocks: larger than any compressed level.
        assert!(sizes[0] > sizes[1] && sizes[0] > sizes[3]);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn layout_sorted_root_first_no_trailing_slash() {
        let base = scratch("layout");
        let t = base.join("art");
        fs::create_dir_all(t.join("a")).unwrap();
        fs::write(t.join("a/x"), "1").unwrap();
        fs::write(t.join("a.txt"), "2").unwrap();
        fs::write(t.join("b"), "3").unwrap();
        fs::create_dir(t.join("B")).unwrap();
        symlink("a", t.join("c")).unwrap();
        let got = list(&tgz(&t, 6));
        let want = [
            ("art", EntryType::Directory),
            ("art/B", EntryType::Directory),
            ("art/a", EntryType::Directory),
            ("art/a/x", EntryType::Regular),
            ("art/a.txt", EntryType::Regular),
            ("art/b", EntryType::Regular),
            ("art/c", EntryType::Symlink),
        ];
        let want: Vec<(String, EntryType)> =
            want.iter().map(|(n, k)| (n.to_string(), *k)).collect();
        assert_eq!(got, want);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn long_names_and_raw_link_targets() {
        let base = scratch("long");
        let t = base.join("t");
        fs::create_dir(&t).unwrap();
        // With the `t/` in front: 99 bytes fit the header, 100 take a GNU long-name entry.
        let name = "n".repeat(97);
        fs::write(t.join(&name), "").unwrap();
        let name100 = "m".repeat(98);
        fs::write(t.join(&name100), "").unwrap();
        symlink("./a//b/", t.join("l")).unwrap();
        let target = "t/".repeat(100);
        symlink(&target, t.join("long")).unwrap();
        let tar = gunzip(&tgz(&t, 1));
        let long_entries = tar
            .chunks(512)
            .filter(|b| b.starts_with(b"././@LongLink\0"))
            .count();
        assert_eq!(
            long_entries, 2,
            "one L for the 100-byte name, one K for the long target"
        );
        let mut ar = tar::Archive::new(&tar[..]);
        let mut seen = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let link = e.link_name_bytes().map(|l| l.into_owned());
            seen.insert(e.path_bytes().into_owned(), link);
        }
        assert!(seen.contains_key(format!("t/{name}").as_bytes()));
        assert!(seen.contains_key(format!("t/{name100}").as_bytes()));
        assert_eq!(seen[&b"t/l"[..]].as_deref(), Some(&b"./a//b/"[..]));
        assert_eq!(seen[&b"t/long"[..]].as_deref(), Some(target.as_bytes()));
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn source_itself_followed_when_a_symlink() {
        let base = scratch("rootlink");
        fs::create_dir(base.join("d")).unwrap();
        fs::write(base.join("d/f"), "x").unwrap();
        fs::write(base.join("file"), "content").unwrap();
        symlink("d", base.join("to_dir")).unwrap();
        symlink(base.join("file"), base.join("to_file")).unwrap();
        let got = list(&tgz(&base.join("to_dir"), 6));
        assert_eq!(got[0], ("to_dir".to_string(), EntryType::Directory));
        assert_eq!(got[1], ("to_dir/f".to_string(), EntryType::Regular));
        let tar = gunzip(&tgz(&base.join("to_file"), 6));
        let mut ar = tar::Archive::new(&tar[..]);
        let mut entries = ar.entries().unwrap();
        let mut e = entries.next().unwrap().unwrap();
        assert_eq!(&*e.path_bytes(), b"to_file");
        let mut body = String::new();
        e.read_to_string(&mut body).unwrap();
        assert_eq!(body, "content");
        drop(e);
        assert!(entries.next().is_none());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn single_files_fifo_and_unnamed_sources() {
        let base = scratch("single");
        fs::write(base.join("zero"), "").unwrap();
        assert_eq!(
            list(&tgz(&base.join("zero"), 6)),
            [("zero".into(), EntryType::Regular)]
        );
        assert!(mknod(&base.join("p"), libc::S_IFIFO | 0o600, 0));
        assert_eq!(
            list(&tgz(&base.join("p"), 6)),
            [("p".into(), EntryType::Fifo)]
        );
        // `x/.` is `x`; `x/..` is named after the folder it stands for.
        fs::create_dir(base.join("x")).unwrap();
        assert_eq!(list(&tgz(&base.join("x/."), 6))[0].0, "x");
        let parent = base.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(list(&tgz(&base.join("x/.."), 6))[0].0, parent);
        let u = &mut Clock::unbounded();
        let err = write_tgz(Path::new("/"), 6, io::sink(), u).unwrap_err();
        assert!(err.to_string().contains("no name"), "{err}");
        let sock = base.join("s");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let err = write_tgz(&sock, 6, io::sink(), u).unwrap_err();
        assert!(err.to_string().contains("socket"), "{err}");
        let err = write_tgz(&base.join("missing"), 6, io::sink(), u).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("missing"), "{err}");
        fs::remove_dir_all(&base).unwrap();
    }

    /// Sets `p`'s mtime to `secs` + `nsec`, without following a symlink.
    fn set_mtime_ns(p: &Path, secs: i64, nsec: i64) {
        let t = libc::timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        };
        let c = cpath(p);
        // SAFETY: c is a valid NUL-terminated path and the array holds two timespecs.
        let r = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                [t, t].as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        assert_eq!(r, 0, "utimensat {}", p.display());
    }

    /// mtimes before 1970 and sub-second ones, as Go's archive/tar writes them: rounded to the
    /// nearest second (a half up), a negative one in a PAX record; GNU tar, Python's tarfile
    /// and the tar crate all read back the same seconds.
    #[test]
    fn mtimes_before_1970_and_rounding() {
        let base = scratch("mtimes");
        let t = base.join("t");
        fs::create_dir(&t).unwrap();
        // (name, seconds, nanoseconds, expected seconds in the archive)
        let cases: [(&str, i64, i64, i64); 8] = [
            ("y1938", -1_000_000_000, 0, -1_000_000_000),
            ("y1906", -2_000_000_000, 0, -2_000_000_000),
            ("minus-half", -2, 500_000_000, -1),
            ("minus-0.4", -1, 600_000_000, 0),
            ("minus-1.6", -2, 400_000_000, -2),
            ("plus-half", 1_000_000_000, 500_000_000, 1_000_000_001),
            ("plus-0.4", 1_000_000_000, 499_999_999, 1_000_000_000),
            ("epoch", 0, 0, 0),
        ];
        for (name, secs, nsec, _) in cases {
            let p = t.join(name);
            if name == "y1906" {
                fs::create_dir(&p).unwrap();
            } else {
                fs::write(&p, name).unwrap();
            }
            set_mtime_ns(&p, secs, nsec);
        }
        symlink("y1938", t.join("link")).unwrap();
        set_mtime_ns(&t.join("link"), -86_400, 0);
        let long = "l".repeat(150);
        fs::write(t.join(&long), "").unwrap();
        set_mtime_ns(&t.join(&long), -5, 0);
        set_mtime_ns(&t, -1, 0);
        let archive = base.join("t.tgz");
        tgz_file(&t, 6, &archive);

        let mut want: BTreeMap<String, i64> = cases
            .iter()
            .map(|(n, _, _, w)| (format!("t/{n}"), *w))
            .collect();
        want.insert("t".into(), -1);
        want.insert(format!("t/{long}"), -5);
        want.insert("t/link".into(), -86_400);
        // The tar crate merges neither PAX nor GNU records: read the raw headers instead.
        let tar = gunzip(&fs::read(&archive).unwrap());
        let mut ar = tar::Archive::new(&tar[..]);
        let mut got = BTreeMap::new();
        let mut pax: Option<i64> = None;
        let mut long_name: Option<String> = None;
        for e in ar.entries().unwrap().raw(true) {
            let mut e = e.unwrap();
            let kind = e.header().entry_type();
            if kind.is_pax_local_extensions() {
                for ext in e.pax_extensions().unwrap().unwrap() {
                    let ext = ext.unwrap();
                    assert_eq!(ext.key().unwrap(), "mtime");
                    pax = Some(ext.value().unwrap().parse().unwrap());
                }
                continue;
            }
            if kind.is_gnu_longname() {
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                long_name = Some(String::from_utf8(v).unwrap().trim_end_matches('\0').into());
                continue;
            }
            let name = long_name
                .take()
                .unwrap_or_else(|| String::from_utf8_lossy(&e.path_bytes()).into_owned());
            let header_mtime = e.header().mtime().unwrap() as i64;
            let m = match pax.take() {
                Some(p) => {
                    assert_eq!(header_mtime, 0, "{name}: header mtime beside a PAX record");
                    assert!(p < 0, "{name}: PAX only where octal cannot hold it");
                    p
                }
                None => header_mtime,
            };
            got.insert(name, m);
        }
        assert_eq!(got, want);

        let read_back = |dir: &Path| -> BTreeMap<String, i64> {
            want.keys()
                .map(|k| {
                    let m = fs::symlink_metadata(dir.join(k)).unwrap();
                    (k.clone(), m.mtime())
                })
                .collect()
        };
        let gnu = gnu_extract(&archive, &base.join("gnu"));
        if gnu {
            assert_eq!(read_back(&base.join("gnu")), want, "GNU tar");
        }
        if python_extract(&archive, &base.join("py")) {
            let mut py = read_back(&base.join("py"));
            // Python's tarfile does not set a symlink's times.
            py.remove("t/link");
            let mut w = want.clone();
            w.remove("t/link");
            assert_eq!(py, w, "Python tarfile");
        }
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn exact_reader_pads_and_truncates() {
        let base = scratch("exact");
        let p = base.join("f");
        fs::write(&p, "abc").unwrap();
        let mut out = Vec::new();
        let mut u = Clock::unbounded();
        let mut r = Exact::new(File::open(&p).unwrap(), 5, &p, &mut u);
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0");
        assert!(r.shrank);
        out.clear();
        let mut u = Clock::unbounded();
        let mut r = Exact::new(File::open(&p).unwrap(), 2, &p, &mut u);
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
        assert!(!r.shrank);
        fs::remove_dir_all(&base).unwrap();
    }

    /// Peak resident memory of this process, in KiB.
    fn peak_rss_kib() -> u64 {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Slow unoptimised: `cargo test --release -- --ignored bounded_memory`.
    #[test]
    #[ignore]
    fn bounded_memory_for_a_1gib_file() {
        let base = scratch("huge");
        let p = base.join("huge");
        let f = File::create(&p).unwrap();
        // Sparse: costs no disk, reads back as zeros.
        f.set_len(1 << 30).unwrap();
        drop(f);
        let before = peak_rss_kib();
        let count = write_tgz(&p, 1, io::sink(), &mut Clock::unbounded()).unwrap();
        let after = peak_rss_kib();
        eprintln!("peak RSS before {before} KiB, after {after} KiB");
        assert_eq!(count, 1);
        assert!(
            after - before < 8 * 1024,
            "peak RSS grew {} KiB",
            after - before
        );
        fs::remove_dir_all(&base).unwrap();
    }
}
