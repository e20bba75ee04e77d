//! Black-box tests of the outputs the emissary saves (SPEC sections 2, 3 step 11, 5 and 8):
//! upstream's output cases, the artifact format checked against GNU tar and Python's tarfile,
//! compression levels, exact parameter bytes, what is skipped and what is refused, a full disk,
//! and the order of `exitcode` after the outputs.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::files::*;
use common::*;
use serde_json::{json, Value};

// ---- helpers ----

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn set_template(r: &Root, t: Value) {
    r.write("template", &t.to_string());
}

/// Where the emissary saves the artifact of absolute, clean path `p`, relative to the root.
fn artifact_rel(p: &Path) -> String {
    format!("outputs/artifacts{}.tgz", s(p))
}

/// Where the emissary saves the parameter of absolute, clean path `p`, relative to the root.
fn parameter_rel(p: &Path) -> String {
    format!("outputs/parameters{}", s(p))
}

/// Compressible but not trivial bytes: words of a small vocabulary in a pseudo-random order.
fn words(len: usize) -> Vec<u8> {
    const VOCAB: [&str; 16] = [
        "alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta ", "eta ", "theta ", "iota ",
        "kappa ", "lambda ", "mu\n", "nu ", "xi ", "omicron ", "pi ",
    ];
    let pick = noise(len, 99);
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(VOCAB[(pick[i] & 15) as usize].as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn mkfifo(p: &Path, mode: u32) {
    let c = cpath(p);
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) }, 0);
}

/// Runs a tool that must succeed without a word on stderr; returns its stdout.
fn tool(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `gzip -t` on these bytes: a complete, valid gzip stream.
fn gzip_ok(bytes: &[u8]) -> bool {
    let mut c = Command::new("gzip")
        .arg("-t")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gzip");
    // gzip may stop reading early on garbage: a write error is a failure too.
    let wrote = c.stdin.take().unwrap().write_all(bytes).is_ok();
    c.wait().unwrap().success() && wrote
}

/// One entry of an archive, as Python's tarfile reads it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    name: String,
    kind: String,
    mode: u32,
    mtime: i64,
    link: String,
    size: u64,
}

const PY_LIST: &str = "import sys, tarfile, json
with tarfile.open(sys.argv[1], 'r:gz') as t:
    for m in t:
        print(json.dumps({'name': m.name, 'kind': m.type.decode('latin-1'), 'mode': m.mode,
                          'mtime': m.mtime, 'link': m.linkname, 'size': m.size}))
";

/// The entries of the .tgz at `p`, in archive order.
fn list(p: &Path) -> Vec<Entry> {
    let out = tool(Command::new("python3").args(["-c", PY_LIST]).arg(p));
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            Entry {
                name: v["name"].as_str().unwrap().to_string(),
                kind: v["kind"].as_str().unwrap().to_string(),
                mode: v["mode"].as_u64().unwrap() as u32,
                mtime: v["mtime"].as_i64().unwrap(),
                link: v["link"].as_str().unwrap().to_string(),
                size: v["size"].as_u64().unwrap(),
            }
        })
        .collect()
}

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

/// Extracts with GNU tar as a root user restores a backup.
fn gnu_extract(archive: &Path, into: &Path) {
    tool(&mut gnu_extract_cmd(archive, into));
}

fn python_extract(archive: &Path, into: &Path) {
    tool(&mut python_extract_cmd(archive, into));
}

/// FNV-1a, 64 bits: enough to tell file contents apart in a comparison.
fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Debug, PartialEq)]
struct Node {
    kind: &'static str,
    mode: u32,
    /// Compared only when the extraction ran as root (it can then restore owners).
    owner: Option<(u32, u32)>,
    /// None for symlinks when the reader does not restore their times (Python's tarfile).
    mtime: Option<i64>,
    link: Option<PathBuf>,
    len: u64,
    hash: u64,
}

/// Everything at and below `top` by path relative to `top`'s parent, so the top-level name
/// counts too.
fn snapshot(top: &Path, symlink_times: bool) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let name = top.file_name().unwrap().to_string_lossy().into_owned();
    snapshot_into(top, &name, symlink_times, &mut out);
    out
}

fn snapshot_into(path: &Path, key: &str, symlink_times: bool, out: &mut BTreeMap<String, Node>) {
    let m = fs::symlink_metadata(path).unwrap();
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_symlink() {
        "symlink"
    } else {
        "other"
    };
    let (len, hash) = if ft.is_file() {
        let data = fs::read(path).unwrap();
        (data.len() as u64, fnv(&data))
    } else {
        (0, 0)
    };
    out.insert(
        key.to_string(),
        Node {
            kind,
            mode: m.mode() & 0o7777,
            owner: is_root().then(|| (m.uid(), m.gid())),
            mtime: (!ft.is_symlink() || symlink_times).then(|| m.mtime()),
            link: ft.is_symlink().then(|| fs::read_link(path).unwrap()),
            len,
            hash,
        },
    );
    if ft.is_dir() {
        for e in fs::read_dir(path).unwrap() {
            let e = e.unwrap();
            let sub = format!("{key}/{}", e.file_name().to_string_lossy());
            snapshot_into(&e.path(), &sub, symlink_times, out);
        }
    }
}

fn assert_same_tree(expected: &BTreeMap<String, Node>, got: &BTreeMap<String, Node>, who: &str) {
    for (k, v) in expected {
        assert_eq!(got.get(k), Some(v), "{who}: entry {k}");
    }
    let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(extra.is_empty(), "{who}: unexpected entries {extra:?}");
}

/// Builds `base/tree`: nested and empty folders, executable and setuid files, relative,
/// absolute and dangling symlinks, a hard link, a 200-character name, a 0-byte and a `big`-byte file,
/// distinct mtimes everywhere and (as root) owners other than the caller's.
fn build_tree(base: &Path, big: usize) -> PathBuf {
    let t = base.join("tree");
    fs::create_dir_all(t.join("nested/deeper/deepest")).unwrap();
    fs::create_dir_all(t.join("nested/empty-inner")).unwrap();
    fs::create_dir(t.join("empty")).unwrap();
    fs::create_dir(t.join("private")).unwrap();
    fs::write(t.join("a.txt"), "hello\n").unwrap();
    fs::write(t.join("zero"), "").unwrap();
    fs::write(t.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::write(t.join("setuid"), noise(3000, 7)).unwrap();
    fs::write(t.join("private/secret"), "s3cret").unwrap();
    fs::write(t.join("nested/deeper/deepest/leaf.txt"), words(70_000)).unwrap();
    fs::write(t.join("n".repeat(200)), "a 200-character name").unwrap();
    let long_dir = t.join("nested").join("d".repeat(120));
    fs::create_dir(&long_dir).unwrap();
    fs::write(long_dir.join("f".repeat(120)), "long path").unwrap();
    // Incompressible stretches between compressible ones.
    let mut data = words(big);
    data[..big / 7].copy_from_slice(&noise(big / 7, 3));
    data[big / 2..big / 2 + big / 20].fill(0);
    fs::write(t.join("big"), &data).unwrap();
    symlink("../../a.txt", t.join("nested/deeper/rel")).unwrap();
    symlink("/etc/passwd", t.join("abs")).unwrap();
    symlink("nowhere/missing", t.join("dangling")).unwrap();
    // Hard links are stored as regular files: two independent copies once extracted.
    fs::hard_link(t.join("run.sh"), t.join("nested/hard")).unwrap();
    if is_root() {
        let own = std::os::unix::fs::chown;
        own(t.join("setuid"), Some(1234), Some(5678)).unwrap();
        own(t.join("private"), Some(4321), Some(8765)).unwrap();
        std::os::unix::fs::lchown(t.join("abs"), Some(2000), Some(3000)).unwrap();
    }
    chmod(&t.join("run.sh"), 0o755);
    chmod(&t.join("setuid"), 0o4755);
    chmod(&t.join("a.txt"), 0o640);
    chmod(&t.join("zero"), 0o600);
    chmod(&t.join("private"), 0o700);
    chmod(&t.join("empty"), 0o751);
    // Distinct mtimes, children before their folders (a child's creation changes them).
    let mut all = Vec::new();
    collect(&t, &mut all);
    for (i, p) in all.iter().rev().enumerate() {
        set_mtime(p, 1_000_000_000 + 1000 * i as i64);
    }
    t
}

/// `p` and everything below it, parents before children.
fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    out.push(p.to_path_buf());
    if fs::symlink_metadata(p).unwrap().is_dir() {
        let mut kids: Vec<PathBuf> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        kids.sort();
        for k in kids {
            collect(&k, out);
        }
    }
}

/// Every path below `dir`, relative, sorted, leaving out those starting with `skip`.
fn listing(dir: &Path, skip: &[&str]) -> Vec<String> {
    let mut all = Vec::new();
    collect(dir, &mut all);
    let mut out: Vec<String> = all
        .iter()
        .skip(1)
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .filter(|p| {
            !skip
                .iter()
                .any(|s| p == s || p.starts_with(&format!("{s}/")))
        })
        .collect();
    out.sort();
    out
}

/// Files (not folders) below `dir`, relative, sorted.
fn files_below(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    if dir.exists() {
        collect(dir, &mut all);
    }
    let mut out: Vec<String> = all
        .iter()
        .filter(|p| !fs::symlink_metadata(p).unwrap().is_dir())
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Runs `c`, SIGKILLing it if it is still running after `limit`; panics then.
fn run_limited(mut c: Command, limit: Duration) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("spawning");
    let pid = child.id() as libc::pid_t;
    let done = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (done, killed) = (done.clone(), killed.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if start.elapsed() > limit {
                    killed.store(true, Ordering::SeqCst);
                    // SAFETY: pid is our own child, not yet reaped (done is still false).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    assert!(
        !killed.load(Ordering::SeqCst),
        "still running after {limit:?}: {}",
        stderr(&out)
    );
    out
}

// ---- upstream emissary_test.go, output cases ----

#[test]
fn upstream_artifact() {
    let r = Root::new();
    let art = r.path("tmp/artifact");
    fs::create_dir_all(art.parent().unwrap()).unwrap();
    set_template(
        &r,
        json!({"outputs": {"artifacts": [{"name": "a", "path": s(&art)}]}}),
    );
    let o = r.sh(&format!("echo hello > {}", s(&art)));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let tgz = r.path(&artifact_rel(&art));
    assert!(fs::metadata(&tgz).unwrap().len() > 0);
    assert_eq!(mode(&tgz), 0o666);
    let into = r.path("x");
    gnu_extract(&tgz, &into);
    assert_eq!(fs::read(into.join("artifact")).unwrap(), b"hello\n");
    assert_eq!(listing(&into, &[]), ["artifact"]);
}

#[test]
fn upstream_artifact_with_trailing_and_leading_slash() {
    let r = Root::new();
    let art = r.path("tmp/artifact");
    fs::create_dir_all(art.parent().unwrap()).unwrap();
    set_template(
        &r,
        json!({"outputs": {"artifacts": [{"name": "a", "path": format!("{}/", s(&art))}]}}),
    );
    let o = r.sh(&format!("echo hello > {}", s(&art)));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // `<dir>/artifact/` lands at `<dir>/artifact.tgz`, no `artifact/.tgz` nor `artifact.tgz/`.
    let tgz = r.path(&artifact_rel(&art));
    assert!(fs::metadata(&tgz).unwrap().is_file());
    assert_eq!(files_below(&r.path("outputs")).len(), 1);
    let into = r.path("x");
    gnu_extract(&tgz, &into);
    assert_eq!(fs::read(into.join("artifact")).unwrap(), b"hello\n");

    // The same with a folder: entries `artifact`, `artifact/f`.
    let r = Root::new();
    let dir = r.path("tmp/artifact");
    fs::create_dir_all(&dir).unwrap();
    set_template(
        &r,
        json!({"outputs": {"artifacts": [{"name": "a", "path": format!("/{}/", s(&dir))}]}}),
    );
    let o = r.sh(&format!("echo hello > {}/f", s(&dir)));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let entries = list(&r.path(&artifact_rel(&dir)));
    assert_eq!(names(&entries), ["artifact", "artifact/f"]);
}

#[test]
fn upstream_parameter() {
    let r = Root::new();
    let p = r.path("tmp/parameter");
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    set_template(
        &r,
        json!({"outputs": {"parameters": [{"name": "p", "valueFrom": {"path": s(&p)}}]}}),
    );
    let o = r.sh(&format!("echo hello > {}", s(&p)));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rel = parameter_rel(&p);
    assert_eq!(r.read_bytes(&rel), b"hello\n");
    assert_eq!(mode(&r.path(&rel)), 0o666);
}

#[test]
fn upstream_retry_container_set_fail_still_saves_outputs() {
    let r = Root::new();
    let art = r.path("tmp/artifact");
    fs::create_dir_all(art.parent().unwrap()).unwrap();
    set_template(
        &r,
        json!({
            "containerSet": {"containers": [{"name": "main"}], "retryStrategy": {"retries": 1}},
            "outputs": {"artifacts": [{"name": "a", "path": s(&art)}]}
        }),
    );
    // upstream's containerSetRetryTest.sh on its first run: the marker is missing, so it
    // creates it and fails.
    let marker = r.path("test.txt");
    let o = r.sh(&format!(
        "echo hello > {a}; if test -f {m}; then echo exists; exit 0; else touch {m}; echo missing; exit 1; fi",
        a = s(&art),
        m = s(&marker)
    ));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "1");
    assert_eq!(
        stderr(&o).matches("capturing logs").count(),
        1,
        "one attempt"
    );
    let tgz = r.path(&artifact_rel(&art));
    assert!(fs::metadata(&tgz).unwrap().len() > 0);
    assert!(gzip_ok(&fs::read(&tgz).unwrap()));
    assert_eq!(names(&list(&tgz)), ["artifact"]);
}

// ---- the artifact format ----

#[test]
fn tree_extracts_identically_with_gnu_tar_and_python() {
    let r = Root::new();
    let tree = build_tree(&r.path("src"), 20_000_000);
    set_template(
        &r,
        json!({"outputs": {"artifacts": [{"name": "t", "path": s(&tree)}]}}),
    );
    let o = run(r.emissary(&["true"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let tgz = r.path(&artifact_rel(&tree));

    // The layout: one top-level entry, sorted, folders without a trailing slash.
    let entries = list(&tgz);
    let got = names(&entries);
    assert_eq!(got[0], "tree");
    let mut sorted = got.clone();
    sorted.sort_by(|a, b| {
        let split = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
        split(a).cmp(&split(b))
    });
    assert_eq!(got, sorted, "walked in sorted order, parents first");
    assert!(got.iter().all(|n| !n.ends_with('/')));
    let by_name = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
    assert_eq!(by_name("tree/dangling").kind, "2");
    assert_eq!(by_name("tree/dangling").link, "nowhere/missing");
    assert_eq!(by_name("tree/setuid").mode, 0o4755);
    assert_eq!(by_name(&format!("tree/{}", "n".repeat(200))).kind, "0");

    let gnu = r.path("gnu");
    gnu_extract(&tgz, &gnu);
    assert_same_tree(
        &snapshot(&tree, true),
        &snapshot(&gnu.join("tree"), true),
        "GNU tar",
    );
    assert_eq!(listing(&gnu, &[]).len(), listing(&tree, &[]).len() + 1);

    // Python's tarfile does not set the times of symlinks.
    let py = r.path("py");
    python_extract(&tgz, &py);
    assert_same_tree(
        &snapshot(&tree, false),
        &snapshot(&py.join("tree"), false),
        "Python tarfile",
    );
}

#[test]
fn same_tree_gives_identical_bytes() {
    let r = Root::new();
    // The same tree, with a smaller big file: two archives of 20 MB are slow unoptimised.
    let tree = build_tree(&r.path("src"), 3_000_000);
    set_template(
        &r,
        json!({"outputs": {"artifacts": [{"name": "t", "path": s(&tree)}]}}),
    );
    let tgz = r.path(&artifact_rel(&tree));
    let o = run(r.emissary(&["true"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let first = fs::read(&tgz).unwrap();
    // A second run, later, into a fresh outputs folder.
    fs::remove_dir_all(r.path("outputs")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let o = run(r.emissary(&["true"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let second = fs::read(&tgz).unwrap();
    assert_eq!(first.len(), second.len());
    assert!(first == second, "the two archives differ");
    // gzip header as Go writes it: no name, mtime 0, OS 255.
    assert_eq!(first[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
}

#[test]
fn compression_levels() {
    let r = Root::new();
    let data = words(1 << 20);
    let variants: [(&str, Value); 8] = [
        ("l0", json!({"tar": {"compressionLevel": 0}})),
        ("l1", json!({"tar": {"compressionLevel": 1}})),
        ("l6", json!({"tar": {"compressionLevel": 6}})),
        ("l9", json!({"tar": {"compressionLevel": 9}})),
        ("none", json!({"none": {}})),
        ("zip", json!({"zip": {}})),
        ("default", Value::Null),
        ("out-of-range", json!({"tar": {"compressionLevel": 10}})),
    ];
    let mut artifacts = Vec::new();
    for (name, archive) in &variants {
        // Same base name, bytes, mode and mtime everywhere: only the level differs.
        let f = r.path(&format!("src/{name}/data"));
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, &data).unwrap();
        chmod(&f, 0o644);
        set_mtime(&f, 1_700_000_000);
        let mut a = json!({"name": name, "path": s(&f)});
        if !archive.is_null() {
            a["archive"] = archive.clone();
        }
        artifacts.push(a);
    }
    set_template(&r, json!({"outputs": {"artifacts": artifacts}}));
    let o = run(r.emissary(&["true"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("level=WARN") && err.contains("compression level out of range"),
        "{err}"
    );
    let get = |name: &str| {
        let tgz = r.path(&artifact_rel(&r.path(&format!("src/{name}/data"))));
        let bytes = fs::read(&tgz).unwrap();
        assert!(gzip_ok(&bytes), "{name}");
        let into = r.path(&format!("x/{name}"));
        gnu_extract(&tgz, &into);
        assert!(fs::read(into.join("data")).unwrap() == data, "{name}");
        bytes
    };
    let (l0, l1, l6, l9) = (get("l0"), get("l1"), get("l6"), get("l9"));
    let raw = data.len();
    assert!(l0.len() > raw, "level 0 stores: {} <= {raw}", l0.len());
    assert!(l9.len() < raw / 2, "level 9: {}", l9.len());
    assert!(l0.len() > l9.len());
    assert!(
        l1.len() > l6.len(),
        "level 1 {} vs 6 {}",
        l1.len(),
        l6.len()
    );
    assert!(l6.len() >= l9.len());
    // none and zip: level 1, exactly; no archive strategy and out of range: level 6, exactly.
    let none = get("none");
    assert_ne!(none.len(), l6.len());
    assert!(none == l1, "archive.none is not level 1");
    assert!(get("zip") == l1, "archive.zip is not level 1");
    assert!(get("default") == l6, "the default is not level 6");
    assert!(get("out-of-range") == l6, "level 10 is not level 6");
}

// ---- compression in chunks, on several threads ----

/// The uncompressed bytes per deflate chunk (`CHUNK` in src/outputs/gzip.rs). The tests below hold
/// for any value; this one puts their sizes on its boundaries.
const CHUNK: usize = 512 * 1024;

/// A tar stream is a 512-byte header, the contents padded to 512, then 1024 zero bytes: a file
/// of this size makes a single-file artifact's tar exactly `k` chunks long.
fn tar_fills_chunks(k: usize) -> usize {
    k * CHUNK - 512 - 1024
}

/// Bytes that deflate unevenly: stretches of words, noise and zeros, so that neighbouring
/// chunks take different times on different threads.
fn mixed(len: usize, seed: u32) -> Vec<u8> {
    let mut data = words(len);
    let mut at = 0;
    let mut i = 0u32;
    while at < len {
        let n = (len - at).min(100_000 + (i as usize % 5) * 70_000);
        match i % 3 {
            0 => data[at..at + n].copy_from_slice(&noise(n, seed + i)),
            1 => data[at..at + n].fill(0),
            _ => {}
        }
        at += n * 2;
        i += 1;
    }
    data
}

/// Pins a command to the first CPU this process may use: the emissary then sees one CPU and
/// deflates every chunk in its own thread, with no worker threads at all.
fn on_one_cpu(c: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: cpu_set_t is a plain bit array, for which all zeros is a valid (empty) set.
    let mut mine: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: mine is a valid, writable cpu_set_t of the size passed.
    assert_eq!(unsafe { libc::sched_getaffinity(0, size, &mut mine) }, 0);
    // SAFETY: mine is initialised and every index is below CPU_SETSIZE.
    let first = (0..libc::CPU_SETSIZE as usize)
        .find(|&cpu| unsafe { libc::CPU_ISSET(cpu, &mine) })
        .expect("no CPU in our affinity mask");
    // SAFETY: as above; one's all-zero value is an empty set.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: first is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(first, &mut one) };
    // SAFETY: sched_setaffinity is a plain system call, safe between fork and exec; `one`
    // is copied into the closure.
    unsafe {
        c.pre_exec(move || {
            if libc::sched_setaffinity(0, size, &one) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Every regular file below `a` has the same bytes below `b`, and the other way round.
fn assert_same_files(a: &Path, b: &Path) {
    let (fa, fb) = (files_below(a), files_below(b));
    assert_eq!(
        fa,
        fb,
        "the same files below {} and {}",
        a.display(),
        b.display()
    );
    for f in &fa {
        let (pa, pb) = (a.join(f), b.join(f));
        if fs::symlink_metadata(&pa).unwrap().is_file() {
            assert!(
                fs::read(&pa).unwrap() == fs::read(&pb).unwrap(),
                "{f} differs"
            );
        }
    }
}

/// Single files around the chunk boundaries, one much larger than a chunk, an empty one, and
/// a tree of many small files, each its own artifact: every archive is one valid gzip member
/// that GNU tar extracts to the same bytes; a second run gives the same archives byte for
/// byte, and so does a run on one CPU, where no worker thread deflates.
#[test]
fn chunked_artifacts_extract_exactly_whatever_the_threads() {
    let r = Root::new();
    let src = r.path("src");
    let mut sizes = vec![0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK];
    sizes.extend([2 * CHUNK + 1, tar_fills_chunks(1), tar_fills_chunks(2)]);
    sizes.extend([
        tar_fills_chunks(2) - 512,
        tar_fills_chunks(2) + 512,
        9 * CHUNK + 4321,
    ]);
    let mut artifacts = Vec::new();
    let mut files = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let dir = src.join(format!("s{i}"));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join(format!("f{size}"));
        fs::write(&f, mixed(size, i as u32)).unwrap();
        // Level 1 keeps the unoptimised build of `cargo test` quick; the biggest at 6.
        let level = if size > 4 * CHUNK { 6 } else { 1 };
        artifacts.push(json!({"name": format!("s{i}"), "path": s(&f),
            "archive": {"tar": {"compressionLevel": level}}}));
        files.push(f);
    }
    // Many small files: tar headers and contents straddle the chunk boundaries everywhere.
    let many = src.join("many");
    for i in 0..2500usize {
        let d = many
            .join(format!("d{}", i % 37))
            .join(format!("e{}", i % 5));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("f{i}")), mixed(i * 7 % 3000, i as u32)).unwrap();
    }
    artifacts.push(json!({"name": "many", "path": s(&many)}));
    files.push(many.clone());
    set_template(&r, json!({"outputs": {"artifacts": artifacts}}));

    let run_once = |one_cpu: bool| -> Vec<Vec<u8>> {
        let _ = fs::remove_dir_all(r.path("outputs"));
        let mut c = r.emissary(&["true"]);
        if one_cpu {
            on_one_cpu(&mut c);
        }
        let o = run(c);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        files
            .iter()
            .map(|f| fs::read(r.path(&artifact_rel(f))).unwrap())
            .collect()
    };
    let first = run_once(false);
    for (i, f) in files.iter().enumerate() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(gzip_ok(&first[i]), "gzip -t {name}");
        let into = r.path(&format!("x/{i}"));
        gnu_extract(&r.path(&artifact_rel(f)), &into);
        if f.is_dir() {
            assert_same_files(f, &into.join(&name));
        } else {
            assert_eq!(listing(&into, &[]), std::slice::from_ref(&name));
            assert!(
                fs::read(f).unwrap() == fs::read(into.join(&name)).unwrap(),
                "{name}"
            );
        }
    }
    // Python's gzip and tarfile read the biggest and the tree too.
    assert_eq!(
        list(&r.path(&artifact_rel(&files[12])))[0].size,
        9 * CHUNK as u64 + 4321
    );
    assert_eq!(list(&r.path(&artifact_rel(&many))).len(), 2500 + 37 * 6 + 1);

    let second = run_once(false);
    let pinned = run_once(true);
    for (i, f) in files.iter().enumerate() {
        assert!(first[i] == second[i], "run 2 differs: {}", f.display());
        assert!(pinned[i] == first[i], "one CPU differs: {}", f.display());
    }
}

// ---- parameters ----

#[test]
fn binary_parameters_are_exact() {
    let r = Root::new();
    let bytes = r.path("src/bytes");
    let sparse = r.path("src/sparse");
    fs::create_dir_all(r.path("src")).unwrap();
    let mut all: Vec<u8> = (0..=255u8).collect();
    all.extend((0..=255u8).rev());
    fs::write(&bytes, &all).unwrap();
    // 10 MB with holes: data at the start, in the middle and as the very last byte.
    let mut f = fs::File::create(&sparse).unwrap();
    f.set_len(10_000_000).unwrap();
    f.write_all(b"start\0\xff").unwrap();
    f.seek(SeekFrom::Start(4_000_000)).unwrap();
    f.write_all(&noise(5000, 11)).unwrap();
    f.seek(SeekFrom::Start(9_999_999)).unwrap();
    f.write_all(b"\x80").unwrap();
    drop(f);
    assert!(
        fs::metadata(&sparse).unwrap().blocks() * 512 < 1_000_000,
        "the source has holes"
    );
    set_template(
        &r,
        json!({"outputs": {"parameters": [
            {"name": "b", "valueFrom": {"path": s(&bytes)}},
            {"name": "s", "valueFrom": {"path": s(&sparse)}}
        ]}}),
    );
    let o = run(r.emissary(&["true"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(r.read_bytes(&parameter_rel(&bytes)), all);
    let got = r.read_bytes(&parameter_rel(&sparse));
    let want = fs::read(&sparse).unwrap();
    assert_eq!(got.len(), 10_000_000);
    assert!(got == want, "sparse parameter differs");
    assert_eq!(mode(&r.path(&parameter_rel(&sparse))), 0o666);
}

#[test]
fn directory_as_parameter_is_refused() {
    let r = Root::new();
    let dir = r.path("src/dir");
    fs::create_dir_all(&dir).unwrap();
    set_template(
        &r,
        json!({"outputs": {"parameters": [{"name": "d", "valueFrom": {"path": s(&dir)}}]}}),
    );
    let o = run(r.emissary(&["true"]));
    assert_eq!(code(&o), 64);
    assert_eq!(r.exitcode("main"), "64");
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no Error line: {err}"));
    assert!(
        line.contains(s(&dir)) && line.contains("is a directory"),
        "{line}"
    );
    assert!(r.read("termination-log").contains("is a directory"));
    assert!(files_below(&r.path("outputs")).is_empty());

    // A failed save wins over the child's own failure: 64, not 3.
    let o = r.sh("exit 3");
    assert_eq!(code(&o), 64, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "64");
}

// ---- when outputs are saved, and when not ----

#[test]
fn not_saved_outside_main() {
    let r = Root::new();
    let p = r.path("src/p");
    set_template(
        &r,
        json!({"outputs": {
            "parameters": [{"name": "p", "valueFrom": {"path": s(&p)}}],
            "artifacts": [{"name": "a", "path": s(&p)}]
        }}),
    );
    let mut c = r.emissary(&["sh", "-c", &format!("mkdir -p src && echo v > {}", s(&p))]);
    c.env("ARGO_CONTAINER_NAME", "other").current_dir(&r.dir);
    let o = run(c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(r.exitcode("other"), "0");
    assert!(p.exists());
    assert!(!r.exists("outputs"));
    assert!(stderr(&o).contains("not saving outputs - not main container"));
}

#[test]
fn skipped_on_volume_mounts() {
    let kinds = [
        ("container", json!({})),
        ("script", json!({"source": "true"})),
        ("containerSet", json!({"containers": [{"name": "main"}]})),
    ];
    for (kind, mut spec) in kinds {
        let r = Root::new();
        let data = r.path("data");
        let data2 = r.path("data2");
        for d in [&data, &data2] {
            fs::create_dir_all(d.join("sub")).unwrap();
            fs::write(d.join("sub/p"), "v").unwrap();
        }
        spec["volumeMounts"] = json!([{"name": "v", "mountPath": s(&data)}]);
        let mut t = json!({"outputs": {
            "parameters": [
                {"name": "nested", "valueFrom": {"path": s(&data.join("sub/p"))}},
                {"name": "sibling", "valueFrom": {"path": s(&data2.join("sub/p"))}}
            ],
            "artifacts": [
                {"name": "equal", "path": s(&data)},
                {"name": "equal-slash", "path": format!("{}/", s(&data))},
                {"name": "nested", "path": s(&data.join("sub"))},
                {"name": "nested-unclean", "path": format!("{}/sub/../sub/", s(&data))},
                {"name": "sibling", "path": s(&data2)}
            ]
        }});
        t[kind] = spec;
        set_template(&r, t);
        let o = run(r.emissary(&["true"]));
        assert_eq!(code(&o), 0, "{kind}: {}", stderr(&o));
        let mut want = [parameter_rel(&data2.join("sub/p")), artifact_rel(&data2)];
        want.sort();
        let want: Vec<String> = want
            .iter()
            .map(|w| w.trim_start_matches("outputs/").to_string())
            .collect();
        assert_eq!(files_below(&r.path("outputs")), want, "{kind}");
        assert_eq!(
            stderr(&o).matches("on overlapping volume").count(),
            5,
            "{kind}: {}",
            stderr(&o)
        );
        assert_eq!(r.read_bytes(&parameter_rel(&data2.join("sub/p"))), b"v");
    }
}

#[test]
fn missing_outputs_warn_and_keep_the_child_code() {
    let r = Root::new();
    let missing_p = r.path("src/no-param");
    let missing_a = r.path("src/no-artifact");
    set_template(
        &r,
        json!({"outputs": {
            "parameters": [{"name": "p", "valueFrom": {"path": s(&missing_p)}}],
            "artifacts": [{"name": "a", "path": s(&missing_a)}]
        }}),
    );
    let o = r.sh("exit 7");
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "7");
    let err = stderr(&o);
    for (what, path) in [("parameter", &missing_p), ("artifact", &missing_a)] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("cannot save {what}")))
            .unwrap_or_else(|| panic!("no warning for the {what}: {err}"));
        assert!(line.contains("level=WARN"), "{line}");
        assert!(line.contains(s(path)), "names the source path: {line}");
        assert!(!line.contains("outputs/"), "not the destination: {line}");
    }
    assert!(!r.exists("outputs"));

    // The outputs that do exist are still saved after a missing one.
    let present = r.path("src/present");
    set_template(
        &r,
        json!({"outputs": {
            "parameters": [
                {"name": "p", "valueFrom": {"path": s(&missing_p)}},
                {"name": "q", "valueFrom": {"path": s(&present)}}
            ],
            "artifacts": [{"name": "a", "path": s(&missing_a)}, {"name": "b", "path": s(&present)}]
        }}),
    );
    let o = r.sh(&format!(
        "mkdir -p {0} && echo x > {1}; exit 5",
        s(&r.path("src")),
        s(&present)
    ));
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    let mut want = vec![
        parameter_rel(&present)["outputs/".len()..].to_string(),
        artifact_rel(&present)["outputs/".len()..].to_string(),
    ];
    want.sort();
    assert_eq!(files_below(&r.path("outputs")), want);
}

#[test]
fn saved_after_failure_and_after_sigterm() {
    for (end, want) in [("exit 3", 3), ("kill -TERM $$", 143)] {
        let r = Root::new();
        let p = r.path("src/p");
        let a = r.path("src/dir");
        fs::create_dir_all(&a).unwrap();
        set_template(
            &r,
            json!({"outputs": {
                "parameters": [{"name": "p", "valueFrom": {"path": s(&p)}}],
                "artifacts": [{"name": "a", "path": s(&a)}]
            }}),
        );
        let o = r.sh(&format!(
            "printf value > {}; echo f > {}/f; {end}; echo not reached",
            s(&p),
            s(&a)
        ));
        assert_eq!(code(&o), want, "{end}: {}", stderr(&o));
        assert_eq!(r.exitcode("main"), want.to_string(), "{end}");
        assert_eq!(r.read_bytes(&parameter_rel(&p)), b"value", "{end}");
        let tgz = r.path(&artifact_rel(&a));
        assert_eq!(names(&list(&tgz)), ["dir", "dir/f"], "{end}");
        assert!(!r.read("ctr/main/stdout").contains("not reached"));
    }
}

#[test]
fn escaping_paths_are_refused() {
    // Only a destination outside ROOT/outputs is refused (SPEC section 2); `../x` and the like
    // land inside it, where the wait container reads them (tests/clock.rs).
    for kind in ["parameter", "artifact"] {
        for p in ["../../x", "a/../../../x", "/a/../../../x", "/../../x"] {
            let r = Root::new();
            // The emissary runs in w/cwd; `../x` from there is w/x, which exists.
            let cwd = r.path("w/cwd");
            fs::create_dir_all(&cwd).unwrap();
            fs::write(r.path("w/x"), "outside").unwrap();
            let t = if kind == "parameter" {
                json!({"outputs": {"parameters": [{"name": "p", "valueFrom": {"path": p}}]}})
            } else {
                json!({"outputs": {"artifacts": [{"name": "a", "path": p}]}})
            };
            set_template(&r, t);
            let before = listing(&r.dir, &[]);
            let mut c = r.emissary(&["true"]);
            c.current_dir(&cwd);
            let o = run(c);
            let what = format!("{kind} {p}");
            assert_eq!(code(&o), 64, "{what}: {}", stderr(&o));
            assert_eq!(r.exitcode("main"), "64", "{what}");
            let err = stderr(&o);
            let line = err
                .lines()
                .find(|l| l.starts_with("Error: "))
                .unwrap_or_else(|| panic!("{what}: no Error line: {err}"));
            assert!(
                line.contains(p) && line.contains("outside the outputs folder"),
                "{what}: {line}"
            );
            // Only the emissary's own files are new; nothing in outputs, nothing elsewhere.
            let after = listing(&r.dir, &["ctr", "termination-log"]);
            assert_eq!(after, before, "{what}");
            assert!(!r.exists("outputs"), "{what}");
            assert_eq!(fs::read(r.path("w/x")).unwrap(), b"outside");
        }
    }
}

#[test]
fn socket_inside_artifact_is_skipped_with_a_warning() {
    let r = Root::new();
    let dir = r.path("src/dir");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("a"), "a").unwrap();
    fs::write(dir.join("z"), "z").unwrap();
    let sock = dir.join("m.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    set_template(
        &r,
        json!({"outputs": {"artifacts": [{"name": "a", "path": s(&dir)}]}}),
    );
    let o = run(r.emissary(&["true"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("socket"))
        .unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(
        line.contains("level=WARN") && line.contains(s(&sock)),
        "{line}"
    );
    assert_eq!(
        names(&list(&r.path(&artifact_rel(&dir)))),
        ["dir", "dir/a", "dir/z"]
    );
}

#[test]
fn fifo_inside_artifact_is_a_header_only() {
    let r = Root::new();
    let dir = r.path("src/dir");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("after"), "after the fifo").unwrap();
    mkfifo(&dir.join("pipe"), 0o640);
    chmod(&dir.join("pipe"), 0o640);
    set_mtime(&dir.join("pipe"), 1_234_567_890);
    set_template(
        &r,
        json!({"outputs": {"artifacts": [{"name": "a", "path": s(&dir)}]}}),
    );
    // Nobody ever writes to the FIFO: reading it would block forever.
    let o = run_limited(r.emissary(&["true"]), Duration::from_secs(20));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let entries = list(&r.path(&artifact_rel(&dir)));
    assert_eq!(names(&entries), ["dir", "dir/after", "dir/pipe"]);
    let fifo = &entries[2];
    assert_eq!(fifo.kind, "6", "{fifo:?}");
    assert_eq!(
        (fifo.size, fifo.mode, fifo.mtime),
        (0, 0o640, 1_234_567_890)
    );
    assert_eq!(entries[1].size, 14);
}

// ---- failure while saving, and the order of exitcode ----

fn have_mount_namespaces() -> bool {
    let ok = Command::new("unshare")
        .args(["-m", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: no mount namespaces here (unshare -m)");
    }
    ok
}

/// Runs `argoexec emissary -- true` with `r` as its root inside a private mount namespace
/// whose `outputs` folder is a 256 KiB tmpfs. Returns the emissary's exit code, the files
/// left in that tmpfs (relative to outputs/, listed before the namespace goes away), and
/// its stderr.
fn run_on_full_outputs(r: &Root) -> (i32, Vec<String>, String) {
    fs::create_dir_all(r.path("outputs")).unwrap();
    let em = r.cmd();
    let mut c = Command::new("unshare");
    for (k, v) in em.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.env("BIN", bin())
        .env("OUT", r.path("outputs"))
        .args(["-m", "sh", "-c"])
        .arg(
            r#"mount -t tmpfs -o size=256k tmpfs "$OUT" || exit 99
"$BIN" emissary -- true
echo "rc=$?"
find "$OUT" ! -type d -printf 'left:%P\n'"#,
        );
    let o = run_limited(c, Duration::from_secs(30));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let rc = out
        .lines()
        .find_map(|l| l.strip_prefix("rc="))
        .unwrap_or_else(|| panic!("no rc: {out}"))
        .parse()
        .unwrap();
    let mut left: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("left:"))
        .map(str::to_string)
        .collect();
    left.sort();
    (rc, left, stderr(&o))
}

/// The `Error: ` line names the source and the cause, in stderr and the termination log.
fn assert_enospc_reported(r: &Root, err: &str, src: &Path) {
    let line = err
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no Error line: {err}"));
    assert!(line.contains(s(src)), "names the source: {line}");
    assert!(
        line.contains("No space left on device"),
        "names the cause: {line}"
    );
    assert!(r
        .read("termination-log")
        .contains("No space left on device"));
}

#[test]
fn disk_full_during_archive_leaves_nothing() {
    if !have_mount_namespaces() {
        return;
    }
    let r = Root::new();
    let src = r.path("src/random");
    fs::create_dir_all(src.parent().unwrap()).unwrap();
    // 2 MiB that does not compress, into 256 KiB.
    fs::write(&src, noise(2 << 20, 5)).unwrap();
    let p = r.path("src/p");
    fs::write(&p, "small").unwrap();
    set_template(
        &r,
        json!({"outputs": {
            "parameters": [{"name": "p", "valueFrom": {"path": s(&p)}}],
            "artifacts": [{"name": "a", "path": s(&src)}]
        }}),
    );
    let (rc, left, err) = run_on_full_outputs(&r);
    assert_eq!(rc, 64, "{err}");
    assert_eq!(r.exitcode("main"), "64");
    // The parameter saved before the failure is complete; of the .tgz, nothing: no partial
    // file, no temporary one.
    assert_eq!(
        left,
        [&parameter_rel(&p)["outputs/".len()..]],
        "files left in outputs"
    );
    assert_enospc_reported(&r, &err, &src);
}

#[test]
fn disk_full_during_parameter_copy_leaves_nothing() {
    if !have_mount_namespaces() {
        return;
    }
    let r = Root::new();
    let p = r.path("src/p");
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, noise(2 << 20, 6)).unwrap();
    set_template(
        &r,
        json!({"outputs": {"parameters": [{"name": "p", "valueFrom": {"path": s(&p)}}]}}),
    );
    let (rc, left, err) = run_on_full_outputs(&r);
    assert_eq!(rc, 64, "{err}");
    assert_eq!(r.exitcode("main"), "64");
    assert!(left.is_empty(), "files left in outputs: {left:?}");
    assert_enospc_reported(&r, &err, &p);
}

#[test]
fn exitcode_appears_only_after_complete_outputs() {
    let r = Root::new();
    let src = r.path("src/random");
    fs::create_dir_all(src.parent().unwrap()).unwrap();
    // Large enough that the archive takes a while: the watcher sees it being made.
    fs::write(&src, noise(8 << 20, 9)).unwrap();
    set_template(
        &r,
        json!({"outputs": {"artifacts": [{"name": "a", "path": s(&src)}]}}),
    );
    let exitcode = r.path("ctr/main/exitcode");
    let tgz = r.path(&artifact_rel(&src));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (exitcode, tgz, stop) = (exitcode.clone(), tgz.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut polls = 0u64;
            loop {
                polls += 1;
                // exitcode first: it exists before the run ends, so a stop never hides it.
                if exitcode.exists() {
                    // At once: whatever is at the artifact's name now.
                    return (polls, fs::read(&tgz).ok());
                }
                if stop.load(Ordering::SeqCst) {
                    return (polls, None);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let o = run(r.emissary(&["true"]));
    stop.store(true, Ordering::SeqCst);
    let (polls, seen) = watcher.join().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(polls > 1, "the watcher ran during the step");
    let seen = seen.expect("the .tgz exists when exitcode does");
    assert!(gzip_ok(&seen), "the .tgz is complete when exitcode exists");
    assert_eq!(seen, fs::read(&tgz).unwrap());
    // No temporary file left beside it.
    assert_eq!(files_below(&r.path("outputs")).len(), 1);
}
