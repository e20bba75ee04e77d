//! The differential suite: every scenario of `tests/differential/scenarios.rs` is run through our
//! binary and through upstream's own emissary (`argoexec-upstream`) with the same inputs, and
//! everything a pod can observe is compared: the process exit code, its stdout (the child's
//! console bytes; stderr is log text and is not compared), every file under the scenario's folder
//! (root, the child's working folder, the termination log) with bytes and mode, every `.tgz` entry
//! (name, type, size, content, link target, mode, uid/gid, mtime), and what the child saw (its
//! probe files: argv, environment, fds, signal mask, signals trapped, attempts).
//!
//! A difference passes only when `tests/differential/differences.json` lists it (scenario, key,
//! both values); that list also generates the README's table "Where it differs from upstream"
//! (`DIFF_WRITE_README=1 cargo test --test differential readme` rewrites it; the `readme` test
//! fails when the two drift). A scenario marked `pending` (a fix under way) is reported apart and
//! does not fail. Without upstream's binary (`$ARGOEXEC_UPSTREAM_REF`, else
//! `<repo>/../shared/upstream-emissary/argoexec-upstream`) the comparison is skipped, loudly.

mod common;

#[path = "differential/scenarios.rs"]
mod scenarios;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use scenarios::{Scenario, Step};
use serde_json::Value;

/// The shell functions every `sh` scenario sources as `$S/lib.sh`: `probe` records what the child
/// sees, `traps` records the signals it receives, `fix` gives files a fixed mtime (artifact entries
/// carry mtimes, and the two runs happen at different times).
const LIB_SH: &str = r#"W=$S/work
probe() {
  { printf 'cmdline: '; tr '\0' '|' </proc/$$/cmdline; echo
    grep -E '^(SigBlk|SigIgn)' /proc/$$/status | sed 's/:[[:space:]]*/: /'
    for f in /proc/$$/fd/*; do printf 'fd %s: %s\n' "${f##*/}" "$(readlink $f)"; done
    echo "cwd: $(pwd)"; echo "umask: $(umask)"
    env | sort | sed 's/^\([^=]*\)=/env \1: /'
  } > $W/probe${1:-}
}
traps() { for s in HUP INT QUIT USR1 USR2 URG TERM; do trap "echo $s >> $W/sigs" $s; done; }
fix() { find "$@" -exec touch -h -d @1600000000 {} +; }
"#;

/// Whole-run limit of one binary on one scenario; on expiry both are killed and it fails.
const RUN_LIMIT: Duration = Duration::from_secs(25);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn upstream_bin() -> PathBuf {
    match std::env::var_os("ARGOEXEC_UPSTREAM_REF") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo().join("../shared/upstream-emissary/argoexec-upstream"),
    }
}

/// Scenarios that write outside their own folder (`/tmp/argo_arg_N.txt`, `/argo/config`) run one
/// at a time.
static GLOBAL: Mutex<()> = Mutex::new(());

type Obs = BTreeMap<String, String>;

/// The kernel's `struct sigaction` on x86_64 and aarch64 (what `rt_sigaction` takes).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

// ---- observing ----

/// Printable ASCII, newline and tab as they are, every other byte as `\xNN`.
fn esc(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\n' | b'\t' | 0x20..=0x7e if c != b'\\' => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &c| {
        (h ^ c as u64).wrapping_mul(0x100000001b3)
    })
}

/// Bytes as an observation: in full when short, else length, hash and head.
fn content(b: &[u8]) -> String {
    if b.len() <= 4096 {
        esc(b)
    } else {
        format!(
            "<{} bytes, fnv {:016x}, starting {}>",
            b.len(),
            fnv(b),
            esc(&b[..64])
        )
    }
}

fn replace_bytes(b: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return b.to_vec();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// What is legitimately unstable between two runs: the scenario folder, pids, pipe inodes.
struct Norm {
    folder: String,
    /// The folder of every scenario, without its leading `/`, as it shows inside `outputs/`.
    base: String,
    pid: Option<u32>,
}

impl Norm {
    fn bytes(&self, b: &[u8]) -> Vec<u8> {
        let mut v = replace_bytes(b, self.folder.as_bytes(), b"$S");
        v = replace_bytes(&v, self.base.as_bytes(), b"$B");
        if let Some(p) = self.pid {
            v = replace_bytes(&v, p.to_string().as_bytes(), b"$PID");
        }
        v
    }
    fn str(&self, s: &str) -> String {
        let v = self.bytes(s.as_bytes());
        let s = String::from_utf8_lossy(&v).into_owned();
        // pipe:[12345] and socket:[12345] name kernel inodes.
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find(":[") {
            out.push_str(&rest[..i + 2]);
            rest = &rest[i + 2..];
            let digits = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0 && rest[digits..].starts_with(']') {
                out.push('N');
                rest = &rest[digits..];
            }
        }
        out.push_str(rest);
        out
    }
}

fn mode_of(m: &fs::Metadata) -> String {
    format!("{:04o}", m.permissions().mode() & 0o7777)
}

fn walk(base: &Path, dir: &Path, norm: &Norm, obs: &mut Obs) {
    let mut names: Vec<_> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect(),
        Err(e) => {
            obs.insert(
                format!("tree {}", dir.display()),
                format!("unreadable: {e}"),
            );
            return;
        }
    };
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let rel = norm.str(&p.strip_prefix(base).unwrap().to_string_lossy());
        let key = format!("tree {rel}");
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        let ft = m.file_type();
        if ft.is_symlink() {
            let t = fs::read_link(&p).unwrap_or_default();
            obs.insert(key, format!("link -> {}", norm.str(&t.to_string_lossy())));
        } else if ft.is_dir() {
            obs.insert(key, format!("dir {}", mode_of(&m)));
            walk(base, &p, norm, obs);
        } else if ft.is_file() {
            let b = fs::read(&p).unwrap_or_default();
            if rel.ends_with(".tgz") {
                obs.insert(key, format!("file {} (archive)", mode_of(&m)));
                tgz(&rel, &b, norm, obs);
            } else if n.as_bytes().starts_with(b"probe") {
                obs.insert(key, format!("file {} (probe)", mode_of(&m)));
                probe(&rel, &norm.bytes(&b), norm, obs);
            } else if rel == "termination-log" {
                // Presence and mode compared strictly; the reason's wording is ours (upstream's
                // is Go's error chain), compared apart under a key the list accepts as worded
                // differently.
                obs.insert(key, format!("file {}", mode_of(&m)));
                let text = norm.str(&String::from_utf8_lossy(&b));
                obs.insert("termination-log text".into(), text);
            } else {
                obs.insert(
                    key,
                    format!("file {} {}", mode_of(&m), content(&norm.bytes(&b))),
                );
            }
        } else if ft.is_fifo() {
            obs.insert(key, format!("fifo {}", mode_of(&m)));
        } else if ft.is_socket() {
            obs.insert(key, format!("socket {}", mode_of(&m)));
        } else {
            obs.insert(key, format!("other {}", mode_of(&m)));
        }
    }
}

/// A probe file: one observation per `key: value` line.
fn probe(rel: &str, b: &[u8], norm: &Norm, obs: &mut Obs) {
    let text = String::from_utf8_lossy(b);
    for (i, line) in text.lines().enumerate() {
        let (k, v) = line.split_once(": ").unwrap_or(("line", line));
        let mut v = norm.str(v);
        if k == "env TRACEPARENT" {
            v = "<random trace id>".into();
        }
        let key = format!("probe {rel} {k}");
        let key = if obs.contains_key(&key) {
            format!("{key} #{i}")
        } else {
            key
        };
        obs.insert(key, v);
    }
}

fn octal_or_base256(f: &[u8]) -> Option<i64> {
    if f.first().is_some_and(|b| b & 0x80 != 0) {
        // Base-256, two's complement, as Go and GNU tar write what octal cannot hold.
        let mut v: i64 = if f[0] & 0x40 != 0 { -1 } else { 0 };
        v = (v << 6) | (f[0] & 0x3f) as i64;
        for &b in &f[1..] {
            v = (v << 8) | b as i64;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(f).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    i64::from_str_radix(s, 8).ok()
}

/// Decodes a gzip'd tar into one observation per entry.
fn tgz(rel: &str, gz: &[u8], norm: &Norm, obs: &mut Obs) {
    let key = format!("tgz {rel}");
    let tar = match gunzip(gz) {
        Ok(t) => t,
        Err(e) => {
            obs.insert(key, format!("not gzip: {e}"));
            return;
        }
    };
    let mut ar = tar::Archive::new(&tar[..]);
    let entries = match ar.entries() {
        Ok(e) => e,
        Err(e) => {
            obs.insert(key, format!("not tar: {e}"));
            return;
        }
    };
    let mut n = 0;
    for e in entries {
        let mut e = match e {
            Ok(e) => e,
            Err(err) => {
                obs.insert(format!("{key} #error"), err.to_string());
                break;
            }
        };
        n += 1;
        let name = e
            .path()
            .map(|p| norm.str(&p.to_string_lossy()))
            .unwrap_or_else(|err| format!("<bad name {err}>"));
        let h = e.header().clone();
        let raw = h.as_bytes();
        let mut mtime = octal_or_base256(&raw[136..148]);
        let mut uid = octal_or_base256(&raw[108..116]);
        let mut gid = octal_or_base256(&raw[116..124]);
        if let Ok(Some(px)) = e.pax_extensions() {
            for r in px.flatten() {
                let v = r.value().unwrap_or("");
                match r.key().unwrap_or("") {
                    "mtime" => mtime = Some(pax_time(v)),
                    "uid" => uid = v.parse().ok(),
                    "gid" => gid = v.parse().ok(),
                    _ => {}
                }
            }
        }
        let link = e
            .link_name()
            .ok()
            .flatten()
            .map(|l| norm.str(&l.to_string_lossy()));
        let mut body = Vec::new();
        let _ = e.read_to_end(&mut body);
        let mut v = format!(
            "type {} mode {:04o} uid {:?} gid {:?} mtime {:?} size {}",
            esc(&[h.entry_type().as_byte()]),
            h.mode().unwrap_or(0) & 0o7777,
            uid,
            gid,
            mtime,
            e.size()
        );
        if let Some(l) = link {
            v.push_str(&format!(" link -> {l}"));
        }
        if !body.is_empty() {
            v.push_str(&format!(" content {}", content(&body)));
        }
        obs.insert(format!("tgz {rel} {name}"), v);
    }
    obs.insert(key, format!("{n} entries"));
}

/// A PAX time (`-123.5`), in whole seconds rounded to the nearest as Go reads and writes them.
fn pax_time(v: &str) -> i64 {
    v.parse::<f64>()
        .map(|f| f.round() as i64)
        .unwrap_or(i64::MIN)
}

fn gunzip(gz: &[u8]) -> Result<Vec<u8>, String> {
    if gz.len() < 18 || gz[0] != 0x1f || gz[1] != 0x8b || gz[2] != 8 {
        return Err("bad gzip header".into());
    }
    let flags = gz[3];
    let mut i = 10;
    if flags & 4 != 0 {
        let xlen = u16::from_le_bytes([gz[i], gz[i + 1]]) as usize;
        i += 2 + xlen;
    }
    for bit in [8u8, 16] {
        if flags & bit != 0 {
            while i < gz.len() && gz[i] != 0 {
                i += 1;
            }
            i += 1;
        }
    }
    if flags & 2 != 0 {
        i += 2;
    }
    if i >= gz.len() {
        return Err("truncated gzip header".into());
    }
    miniz_oxide::inflate::decompress_to_vec(&gz[i..]).map_err(|e| format!("inflate: {e:?}"))
}

// ---- running ----

fn sub(s: &str, folder: &str, pid: Option<u32>) -> String {
    let s = s.replace("$W", &format!("{folder}/work"));
    let s = s.replace("$S", folder);
    match pid {
        Some(p) => s.replace("$PID", &p.to_string()),
        None => s,
    }
}

fn wait_child(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            return Some(st);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn status_str(st: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match st {
        None => "timeout".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => c.to_string(),
            (_, Some(n)) => format!("killed by signal {n}"),
            _ => "?".into(),
        },
    }
}

fn argo_arg_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir("/tmp")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().unwrap_or_default().to_string_lossy();
                    n.starts_with("argo_arg_") && n.ends_with(".txt")
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs one scenario through one binary in its own folder and observes the outcome.
fn run_one(bin: &Path, sc: &Scenario, folder: &Path) -> (Obs, String) {
    let _ = fs::remove_dir_all(folder);
    fs::create_dir_all(folder.join("root")).unwrap();
    fs::create_dir_all(folder.join("work")).unwrap();
    let f = folder.to_str().unwrap().to_string();
    fs::write(
        folder.join("lib.sh"),
        LIB_SH.replace("$S/work", &format!("{f}/work")),
    )
    .unwrap();
    let global = sc
        .global
        .then(|| GLOBAL.lock().unwrap_or_else(|e| e.into_inner()));
    // Files another test on the machine may have left: not ours to observe or remove.
    let before: Vec<(PathBuf, Option<std::time::SystemTime>)> = argo_arg_files()
        .into_iter()
        .map(|p| {
            let m = fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, m)
        })
        .collect();
    let mut made_argo = false;
    if let Some(t) = &sc.offloaded {
        if !Path::new("/argo").exists() {
            made_argo = true;
        }
        fs::create_dir_all("/argo/config").unwrap();
        fs::write("/argo/config/ARGO_TEMPLATE", sub(t, &f, None)).unwrap();
    }
    if let Some(t) = &sc.template {
        fs::write(folder.join("root/template"), sub(t, &f, None)).unwrap();
    }
    for (rel, body, mode) in &sc.files {
        let p = folder.join(sub(rel, &f, None));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let b = sub(&String::from_utf8_lossy(body), &f, None);
        let b = if body.is_ascii() {
            b.into_bytes()
        } else {
            body.clone()
        };
        fs::write(&p, b).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
    }
    for rel in &sc.sockets {
        let p = folder.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        // Bound, then closed: the socket file stays.
        drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut busy = sc.busy.map(|rel| {
        fs::OpenOptions::new()
            .append(true)
            .open(folder.join(rel))
            .unwrap()
    });
    let mut target = sc.kill_target.then(|| {
        Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    });
    let pid = target.as_ref().map(|t| t.id());

    let mut c = Command::new(bin);
    c.args(sc.argv.iter().map(|a| sub(a, &f, pid)));
    c.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("S", &f)
        .env("ARGOEXEC_VAR_RUN_ARGO", folder.join("root"))
        .env("ARGOEXEC_TERMINATION_LOG", folder.join("termination-log"))
        .env("ARGO_CONTAINER_NAME", "main")
        .env("ARGO_INCLUDE_SCRIPT_OUTPUT", "true");
    for (k, v) in &sc.env {
        match v {
            Some(v) => c.env(k, sub(v, &f, pid)),
            None => c.env_remove(k),
        };
    }
    c.current_dir(folder.join(sub(&sc.cwd, &f, None)));
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let umask = sc.umask;
    let ignore = sc.ignore.clone();
    let block = sc.block.clone();
    let close_stdin = sc.close_stdin;
    let extra_fd = sc.extra_fd;
    // SAFETY: only async-signal-safe calls (umask, signal, sigprocmask, dup2, close) between fork
    // and exec; their results are checked where a failure would change the scenario.
    unsafe {
        c.pre_exec(move || {
            libc::umask(umask);
            // Every disposition at its default first: the test harness's own (cargo's, a
            // shell's) must not leak into the comparison. The raw system call, as glibc refuses
            // the signals it reserves (32, 33); failures (SIGKILL, SIGSTOP) change nothing.
            let dfl = KernelSigaction {
                handler: libc::SIG_DFL,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            for n in 1..=64 {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    n,
                    &dfl as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                );
            }
            let ign = KernelSigaction {
                handler: libc::SIG_IGN,
                ..dfl
            };
            for &s in &ignore {
                let r = libc::syscall(
                    libc::SYS_rt_sigaction,
                    s,
                    &ign as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                );
                if r != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in &block {
                libc::sigaddset(&mut set, s);
            }
            if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if extra_fd && libc::dup2(2, 7) != 7 {
                return Err(std::io::Error::last_os_error());
            }
            if close_stdin {
                libc::close(0);
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = c.spawn().expect("starting the binary");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut obs = Obs::new();
    for step in &sc.steps {
        let ok = match step {
            Step::WaitFile(rel) => {
                let p = folder.join(sub(rel, &f, None));
                common::wait_until(Duration::from_secs(10), || p.exists())
            }
            Step::Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(*ms));
                true
            }
            Step::Write(rel, body) => {
                // By rename, so a reader never sees it half written.
                let p = folder.join(sub(rel, &f, None));
                // A missing parent is made as its own emissary would make it.
                let parent = p.parent().unwrap();
                if !parent.exists() {
                    let _ = fs::create_dir_all(parent);
                    let _ = fs::set_permissions(parent, fs::Permissions::from_mode(0o777));
                }
                let tmp = folder.join("work/.step-tmp");
                fs::write(&tmp, body).is_ok() && fs::rename(&tmp, &p).is_ok()
            }
            Step::Mkdir(rel) => {
                let p = folder.join(sub(rel, &f, None));
                fs::create_dir(&p).is_ok()
                    && fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).is_ok()
            }
            Step::CloseBusy => busy.take().is_some(),
            Step::Signal(n) => {
                // SAFETY: kill has no memory preconditions; the pid is our own running child.
                unsafe { libc::kill(child.id() as i32, *n) == 0 }
            }
        };
        if !ok {
            obs.insert("step failed".into(), format!("{step:?}"));
            break;
        }
    }
    let st = wait_child(&mut child, RUN_LIMIT.saturating_sub(start.elapsed()));
    if st.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    let norm = Norm {
        folder: f.clone(),
        base: folder
            .parent()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches('/')
            .to_string(),
        pid,
    };
    obs.insert("exit".into(), status_str(st));
    obs.insert("stdout".into(), content(&norm.bytes(&stdout)));
    if let Some(t) = target.as_mut() {
        let st = wait_child(t, Duration::from_secs(3));
        if st.is_none() {
            let _ = t.kill();
            let _ = t.wait();
            obs.insert("kill target".into(), "still alive".into());
        } else {
            obs.insert("kill target".into(), status_str(st));
        }
    }
    walk(folder, folder, &norm, &mut obs);
    if global.is_some() {
        for p in argo_arg_files() {
            let Ok(m) = fs::metadata(&p) else { continue };
            if before.contains(&(p.clone(), m.modified().ok())) {
                continue;
            }
            let b = fs::read(&p).unwrap_or_default();
            obs.insert(
                format!("tmp {}", p.display()),
                format!("file {} {}", mode_of(&m), content(&b)),
            );
            let _ = fs::remove_file(p);
        }
    }
    if sc.offloaded.is_some() {
        let _ = fs::remove_file("/argo/config/ARGO_TEMPLATE");
        if made_argo {
            let _ = fs::remove_dir_all("/argo");
        }
    }
    drop(global);
    let _ = fs::remove_dir_all(folder);
    (obs, String::from_utf8_lossy(&stderr).into_owned())
}

// ---- the list of deliberate differences ----

struct Check {
    id: String,
    /// Set for an entry of `pending.json`: a fix under way, not a deliberate difference.
    pending: Option<String>,
    scenario: String,
    key: String,
    upstream: Option<String>,
    ours: Option<String>,
    /// Shows in some runs only (upstream's own races): not seeing it is no error.
    optional: bool,
}

fn load(file: &str) -> Value {
    let p = repo().join("tests/differential").join(file);
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", p.display()))
}

/// The deliberate differences.
fn differences() -> Value {
    load("differences.json")
}

fn checks(list: &Value) -> Vec<Check> {
    let mut v = Vec::new();
    for d in list.as_array().expect("a JSON array") {
        let id = d["id"].as_str().expect("id").to_string();
        let pending = d["pending"].as_str().map(str::to_string);
        for c in d["checks"].as_array().into_iter().flatten() {
            let opt = |k: &str| c[k].as_str().map(str::to_string);
            v.push(Check {
                id: id.clone(),
                pending: pending.clone(),
                scenario: c["scenario"].as_str().expect("scenario").into(),
                key: c["key"].as_str().expect("key").into(),
                upstream: opt("upstream"),
                ours: opt("ours"),
                optional: c["optional"].as_bool().unwrap_or(false),
            });
        }
    }
    v
}

/// A check's key is exact, or holds one `*` that stands for any run of characters: at the end
/// it covers every key it starts (`tree root/outputs/*`), inside it every container
/// (`tree root/ctr/*/alive`).
fn key_matches(pattern: &str, key: &str) -> bool {
    match pattern.split_once('*') {
        Some((head, tail)) => {
            key.len() >= head.len() + tail.len() && key.starts_with(head) && key.ends_with(tail)
        }
        None => pattern == key,
    }
}

/// One side's expected value: `*` any present value, `X*` any value starting with X, null
/// absent, otherwise exact.
fn matches(want: &Option<String>, got: &Option<String>) -> bool {
    match (want, got) {
        (Some(w), Some(g)) if w.ends_with('*') => g.starts_with(&w[..w.len() - 1]),
        _ => want == got,
    }
}

/// Both sides as a check states them; when both are `X*` patterns (other than a bare `*`), what
/// follows the two prefixes must be the same: the difference is in the prefix only.
fn pair_matches(c: &Check, u: &Option<String>, o: &Option<String>) -> bool {
    if !matches(&c.upstream, u) || !matches(&c.ours, o) {
        return false;
    }
    match (&c.upstream, &c.ours, u, o) {
        (Some(cu), Some(co), Some(u), Some(o))
            if cu.len() > 1 && co.len() > 1 && cu.ends_with('*') && co.ends_with('*') =>
        {
            u[cu.len() - 1..] == o[co.len() - 1..]
        }
        _ => true,
    }
}

fn short(v: &Option<String>) -> String {
    match v {
        None => "(absent)".into(),
        Some(s) if s.len() > 600 => format!("{:?}...", &s[..s.floor_char_boundary(600)]),
        Some(s) => format!("{s:?}"),
    }
}

// ---- the tests ----

/// Straight to fd 2, past libtest's capture: a skip and the summary must show in every run.
fn loud(msg: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

#[test]
fn differential() {
    let up = upstream_bin();
    if !up.is_file() {
        let msg = format!(
            "SKIPPED: upstream reference binary not found at {} (set ARGOEXEC_UPSTREAM_REF); \
             the differential suite did not run",
            up.display()
        );
        loud(&format!(
            "\n{}\n{msg}\n{}\n",
            "!".repeat(78),
            "!".repeat(78)
        ));
        return;
    }
    let ours = common::bin();
    let all = scenarios::all();
    let only = std::env::var("DIFF_ONLY").unwrap_or_default();
    let mut checks = checks(&differences());
    checks.extend(self::checks(&load("pending.json")));
    let base = std::env::temp_dir().join(format!("argoexec-diff-{}", std::process::id()));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    let threads = std::env::var("DIFF_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(4);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(sc) = all.get(i) else { break };
                if !only.is_empty() && !only.split(',').any(|o| sc.name.contains(o)) {
                    continue;
                }
                let line = judge(sc, &ours, &up, &base, &checks);
                results.lock().unwrap().push((i, line));
            });
        }
    });
    let _ = fs::remove_dir_all(&base);
    let mut results = results.into_inner().unwrap();
    results.sort();
    let (mut ok, mut failed, mut pending, mut skipped, mut fixed) = (0, 0, 0, 0, 0);
    let mut report = String::new();
    for (_, line) in &results {
        match line.split(' ').next() {
            Some("ok") => ok += 1,
            Some("FAIL") => failed += 1,
            Some("PENDING") => pending += 1,
            Some("PENDING-NOW-PASSES") => fixed += 1,
            Some("SKIP") => skipped += 1,
            _ => {}
        }
        report.push_str(line);
        report.push('\n');
    }
    eprintln!("{report}");
    loud(&format!(
        "differential: {} scenarios; {ok} same or listed, {failed} failed, {pending} pending, \
         {fixed} pending but now passing (remove the mark), {skipped} skipped\n",
        results.len()
    ));
    assert!(all.len() >= 80, "the suite must hold at least 80 scenarios");
    assert_eq!(failed, 0, "unlisted differences (see above)");
}

/// Runs one scenario through both binaries and judges the difference; returns one report line
/// (with the readable diff under it when there is one).
fn judge(sc: &Scenario, ours: &Path, up: &Path, base: &Path, checks: &[Check]) -> String {
    if let Some(why) = sc.skip {
        return format!("SKIP {}: {why}", sc.name);
    }
    if sc.offloaded.is_some() {
        // A fixed path outside the scenario's folder: never touch one that is not ours.
        let p = Path::new("/argo/config/ARGO_TEMPLATE");
        if p.exists() {
            return format!(
                "SKIP {}: {} exists, not made by this suite",
                sc.name,
                p.display()
            );
        }
        let made = !Path::new("/argo").exists();
        let writable = fs::create_dir_all("/argo/config").is_ok() && fs::write(p, "{}").is_ok();
        let _ = fs::remove_file(p);
        if made {
            let _ = fs::remove_dir_all("/argo");
        }
        if !writable {
            return format!(
                "SKIP {}: /argo/config is not writable here (needs root)",
                sc.name
            );
        }
    }
    let (o, o_err) = run_one(ours, sc, &base.join(format!("{}.ours", sc.name)));
    let (u, u_err) = run_one(up, sc, &base.join(format!("{}.upstream", sc.name)));
    let mut keys: Vec<&String> = o.keys().chain(u.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut unlisted = Vec::new();
    let mut listed = Vec::new();
    let mut pending = Vec::new();
    for k in keys {
        let (uv, ov) = (u.get(k).cloned(), o.get(k).cloned());
        if uv == ov {
            continue;
        }
        let hit = checks.iter().find(|c| {
            (c.scenario == sc.name || c.scenario == "*")
                && key_matches(&c.key, k)
                && pair_matches(c, &uv, &ov)
        });
        match hit {
            Some(c) if c.pending.is_some() => pending.push(c.id.clone()),
            Some(c) => listed.push(c.id.clone()),
            None => unlisted.push(format!(
                "    {k}\n      upstream: {}\n      ours:     {}",
                short(&uv),
                short(&ov)
            )),
        }
    }
    // A listed difference that no longer shows is stale: the list must say what is true. A
    // pending one that no longer shows has been fixed: its entry can go.
    let mut fixed = Vec::new();
    for c in checks.iter().filter(|c| c.scenario == sc.name) {
        let (uv, ov) = if let Some(prefix) = c.key.strip_suffix('*') {
            // A pattern holds when at least one key under it differs as stated.
            let hit = u.keys().chain(o.keys()).find(|k| {
                k.starts_with(prefix)
                    && u.get(*k) != o.get(*k)
                    && pair_matches(c, &u.get(*k).cloned(), &o.get(*k).cloned())
            });
            match hit {
                Some(k) => (u.get(k).cloned(), o.get(k).cloned()),
                None => (None, None),
            }
        } else {
            (u.get(&c.key).cloned(), o.get(&c.key).cloned())
        };
        if uv == ov || !pair_matches(c, &uv, &ov) {
            if c.optional {
                continue;
            }
            if c.pending.is_some() {
                fixed.push(c.id.clone());
                continue;
            }
            unlisted.push(format!(
                "    listed difference '{}' at {} not observed\n      upstream: {}\n      ours:     {}",
                c.id,
                c.key,
                short(&uv),
                short(&ov)
            ));
        }
    }
    for v in [&mut listed, &mut pending, &mut fixed] {
        v.sort();
        v.dedup();
    }
    let tail = |v: &[String]| -> String {
        let mut s = v.join("\n");
        if std::env::var_os("DIFF_VERBOSE").is_some() {
            s.push_str(&format!(
                "\n    -- ours' stderr:\n{o_err}\n    -- upstream's stderr:\n{u_err}"
            ));
        }
        s
    };
    let mut notes = String::new();
    if !listed.is_empty() {
        notes.push_str(&format!(" (listed: {})", listed.join(", ")));
    }
    if !pending.is_empty() {
        notes.push_str(&format!(" (pending fix: {})", pending.join(", ")));
    }
    if !fixed.is_empty() {
        notes.push_str(&format!(
            " (pending entry no longer observed, remove it from pending.json: {})",
            fixed.join(", ")
        ));
    }
    match (unlisted.is_empty(), sc.pending) {
        (true, Some(p)) => format!("PENDING-NOW-PASSES {} (was pending: {p}){notes}", sc.name),
        (false, Some(p)) => format!("PENDING {} ({p}){notes}:\n{}", sc.name, tail(&unlisted)),
        (false, None) => format!("FAIL {}{notes}:\n{}", sc.name, tail(&unlisted)),
        (true, None) if !pending.is_empty() => format!("PENDING {}{notes}", sc.name),
        (true, None) => format!("ok {}{notes}", sc.name),
    }
}

const BEGIN: &str = "<!-- differences table: generated from tests/differential/differences.json by `DIFF_WRITE_README=1 cargo test --test differential readme`; do not edit by hand -->";
const END: &str = "<!-- end of differences table -->";

fn cell(v: &Value) -> String {
    v.as_str().unwrap_or("").replace('\n', " ")
}

/// The README table, from the list.
fn table(list: &Value) -> String {
    let mut t =
        String::from("| upstream | here | why | differential scenario |\n|---|---|---|---|\n");
    for d in list.as_array().unwrap() {
        let mut scen: Vec<String> = d["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["scenario"].as_str())
            .map(|s| {
                if s == "*" {
                    "any scenario where it shows".to_string()
                } else {
                    format!("`{s}`")
                }
            })
            .collect();
        scen.dedup();
        let scen = if scen.is_empty() {
            cell(&d["not_exercised"])
        } else {
            scen.join(", ")
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&d["upstream"]),
            cell(&d["here"]),
            cell(&d["why"]),
            scen
        ));
    }
    t
}

#[test]
fn readme() {
    let list = differences();
    let want = format!("{BEGIN}\n{}{END}", table(&list));
    let path = repo().join("README.md");
    let readme = fs::read_to_string(&path).unwrap();
    let (Some(b), Some(e)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md lacks the markers of the differences table ({BEGIN} ... {END})");
    };
    let have = &readme[b..e + END.len()];
    if have == want {
        return;
    }
    if std::env::var_os("DIFF_WRITE_README").is_some() {
        let new = format!("{}{want}{}", &readme[..b], &readme[e + END.len()..]);
        fs::write(&path, new).unwrap();
        eprintln!("README.md: differences table rewritten from the list");
        return;
    }
    panic!(
        "README.md's table 'Where it differs from upstream' differs from \
         tests/differential/differences.json; regenerate it with \
         `DIFF_WRITE_README=1 cargo test --test differential readme`"
    );
}

/// The list itself: unique ids, prose for every row, every check naming a known scenario.
#[test]
fn differences_list_is_well_formed() {
    let list = differences();
    let names: Vec<&str> = scenarios::all().iter().map(|s| s.name).collect();
    let mut seen = std::collections::HashSet::new();
    for s in &names {
        assert!(seen.insert(s.to_string()), "scenario {s} defined twice");
    }
    let mut ids = std::collections::HashSet::new();
    for d in list.as_array().unwrap() {
        let id = d["id"].as_str().expect("every entry has an id");
        assert!(ids.insert(id), "id {id} twice");
        for f in ["upstream", "here", "why"] {
            assert!(d[f].as_str().is_some_and(|s| !s.is_empty()), "{id}: no {f}");
        }
        let cs = d["checks"].as_array().map(|a| a.len()).unwrap_or(0);
        assert!(
            cs > 0 || d["not_exercised"].as_str().is_some(),
            "{id}: neither checks nor a reason why no scenario exercises it"
        );
    }
    for c in checks(&list) {
        assert!(
            c.scenario == "*" || names.contains(&c.scenario.as_str()),
            "{}: unknown scenario {}",
            c.id,
            c.scenario
        );
    }
}
