//! Artifact round trip: a small generated tree (files, folders, empty folders, symlinks,
//! dangling ones too, FIFOs, hard links, long and odd names, any permission bits, mtimes)
//! archived by `write_tgz` at any level, then read back through an independent gzip check
//! (header, inflate, CRC-32, length) and the `tar` crate's reader, equals the source: the same
//! entries in the same order (root first, byte-wise sorted, depth first), names, types, modes,
//! owners, mtimes, contents and link targets.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../src/outputs/mod.rs"]
mod outputs;
#[path = "../../src/run"]
mod run {
    pub mod deadline;
}
#[path = "../../src/sys/mod.rs"]
mod sys;
#[path = "../../src/template.rs"]
mod template;

use std::ffi::{CString, OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("fuzz-tar-{}", std::process::id()))
    })
}

fn name(b: u8) -> Vec<u8> {
    match b % 12 {
        0 => b"a".to_vec(),
        1 => b"b".to_vec(),
        2 => b"B".to_vec(),
        3 => b".hidden".to_vec(),
        4 => b"x y".to_vec(),
        5 => "é".as_bytes().to_vec(),
        6 => b"\xff\x01raw".to_vec(),
        7 => vec![b'l'; 99],
        8 => vec![b'L'; 100],
        9 => vec![b'n'; 200],
        10 => b"-".to_vec(),
        _ => b"a.txt".to_vec(),
    }
}

fn set_mtime(path: &Path, secs: i64) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: c is a valid C string and times two valid timespecs.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
}

/// Builds a tree in `root` from `data`; returns whether the source is `root/src`.
fn build(root: &Path, data: &[u8]) {
    let src = root.join("src");
    let mut it = data.iter().copied();
    let mut next = || it.next();
    let single_file = matches!(next(), Some(b) if b % 5 == 0);
    if single_file {
        let n = next().unwrap_or(0) as usize * 7;
        std::fs::write(&src, vec![b'z'; n]).unwrap();
        std::fs::set_permissions(&src, PermissionsExt::from_mode(0o640)).unwrap();
        return;
    }
    std::fs::create_dir(&src).unwrap();
    let mut stack = vec![src.clone()];
    let mut last_file: Option<PathBuf> = None;
    let mut created = 0;
    while let Some(op) = next() {
        if created >= 40 {
            break;
        }
        let cur = stack.last().unwrap().clone();
        let arg = next().unwrap_or(0);
        let path = cur.join(OsStr::from_bytes(&name(arg)));
        let exists = path.symlink_metadata().is_ok();
        match op % 8 {
            0 | 1 if !exists => {
                let len = next().unwrap_or(0) as usize;
                let fill = next().unwrap_or(0);
                let mut body: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                if op % 8 == 1 {
                    body.extend(std::iter::repeat_n(fill, len * 40)); // past one block
                }
                std::fs::write(&path, body).unwrap();
                let mode = u32::from(next().unwrap_or(0xa4)) | ((u32::from(arg) & 0x0f) << 8);
                std::fs::set_permissions(&path, PermissionsExt::from_mode(mode & 0o7777)).unwrap();
                last_file = Some(path);
                created += 1;
            }
            2 if !exists && stack.len() < 12 => {
                std::fs::create_dir(&path).unwrap();
                let mode = 0o700 | u32::from(next().unwrap_or(0o55)) & 0o1777;
                std::fs::set_permissions(&path, PermissionsExt::from_mode(mode)).unwrap();
                stack.push(path);
                created += 1;
            }
            3 if !exists => {
                let t = next().unwrap_or(0);
                let target: Vec<u8> = match t % 5 {
                    0 => b"a".to_vec(),
                    1 => b"../x//./y".to_vec(),
                    2 => b"/etc/passwd".to_vec(),
                    3 => vec![b't'; 150],
                    _ => b"dangling-\xfe".to_vec(),
                };
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path).unwrap();
                created += 1;
            }
            4 if !exists => {
                let c = CString::new(path.as_os_str().as_bytes()).unwrap();
                // SAFETY: c is a valid C string.
                if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0 {
                    created += 1;
                }
            }
            5 if !exists => {
                if let Some(f) = &last_file {
                    if std::fs::hard_link(f, &path).is_ok() {
                        created += 1;
                    }
                }
            }
            6 if stack.len() > 1 => {
                stack.pop();
            }
            _ => {}
        }
    }
    // Mtimes last, children before parents would not matter: utimensat changes only ctime.
    let mut secs = 1_000_000_000i64 + i64::from(data.len() as u32);
    let mut all = vec![src];
    while let Some(p) = all.pop() {
        secs += 3601;
        set_mtime(&p, secs);
        let m = p.symlink_metadata().unwrap();
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                all.push(e.unwrap().path());
            }
        }
    }
}

#[derive(Debug, PartialEq)]
struct Entry {
    name: Vec<u8>,
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    data: Vec<u8>,
    link: Option<Vec<u8>>,
}

/// What the archive must hold, from the source by the rules of SPEC section 5.
fn expected(path: &Path, name: Vec<u8>, is_root: bool, out: &mut Vec<Entry>) {
    let m = if is_root {
        std::fs::metadata(path).unwrap()
    } else {
        std::fs::symlink_metadata(path).unwrap()
    };
    let ft = m.file_type();
    use std::os::unix::fs::FileTypeExt;
    let (kind, data, link) = if ft.is_file() {
        (b'0', std::fs::read(path).unwrap(), None)
    } else if ft.is_dir() {
        (b'5', Vec::new(), None)
    } else if ft.is_symlink() {
        let t = std::fs::read_link(path)
            .unwrap()
            .into_os_string()
            .into_vec();
        (b'2', Vec::new(), Some(t))
    } else if ft.is_fifo() {
        (b'6', Vec::new(), None)
    } else {
        return;
    };
    out.push(Entry {
        name: name.clone(),
        kind,
        mode: m.mode() & 0o7777,
        uid: u64::from(m.uid()),
        gid: u64::from(m.gid()),
        // Whole seconds rounded to the nearest, half up, as Go's archive/tar writes them.
        mtime: (m.mtime() + i64::from(m.mtime_nsec() >= 500_000_000)) as u64,
        data,
        link,
    });
    if kind == b'5' {
        let mut kids: Vec<OsString> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        kids.sort();
        for k in kids {
            let mut n = name.clone();
            n.push(b'/');
            n.extend_from_slice(k.as_bytes());
            expected(&path.join(&k), n, false, out);
        }
    }
}

fn crc32(data: &[u8]) -> u32 {
    // Bitwise, independent of the table in archive.rs.
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fuzz_target!(|data: &[u8]| {
    sys::log::configure(sys::log::Level::Error, false);
    let root = scratch();
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).unwrap();
    build(root, data);
    let src = root.join("src");
    let level = data.last().map_or(6, |b| b % 11);
    let mut gz = Vec::new();
    let count = outputs::archive::write_tgz(&src, level, &mut gz, &mut run::deadline::Clock::unbounded())
        .expect("archiving");

    // gzip: the fixed header as Go writes it, raw deflate, CRC-32 and length trailer.
    assert!(gz.len() >= 18);
    assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0], "gzip header");
    let body = &gz[10..gz.len() - 8];
    let tar = miniz_oxide::inflate::decompress_to_vec(body).expect("raw deflate");
    let trailer = &gz[gz.len() - 8..];
    assert_eq!(
        u32::from_le_bytes(trailer[..4].try_into().unwrap()),
        crc32(&tar),
        "CRC-32"
    );
    assert_eq!(
        u32::from_le_bytes(trailer[4..].try_into().unwrap()),
        tar.len() as u32,
        "ISIZE"
    );
    assert_eq!(tar.len() % 512, 0);

    let mut got = Vec::new();
    let mut ar = tar::Archive::new(&tar[..]);
    for e in ar.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        let h = e.header().clone();
        let name = e.path_bytes().into_owned();
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        got.push(Entry {
            name,
            kind: h.entry_type().as_byte(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            data: body,
            link,
        });
    }
    let mut want = Vec::new();
    expected(&src, b"src".to_vec(), true, &mut want);
    assert_eq!(count as usize, want.len(), "entry count");
    assert_eq!(got.len(), want.len(), "entries");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    let _ = std::fs::remove_dir_all(root);
});
