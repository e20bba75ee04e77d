//! Upstream's executor beside ours (SPEC sections 1 and 6): where its binary is, which version
//! it is, handing a subcommand over to it, and what `init` leaves for the pod's other
//! containers before it hands itself over.
//!
//! Upstream's binary is `$ARGOEXEC_UPSTREAM`, else `argoexec-upstream` in the folder of our own
//! executable: `/bin` in an executor image, `/argo-bin/bin` in an init-less pod, the shared
//! folder where `init` copied it for an artifact plugin's containers.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::run::spawn::Exec;
use crate::sys::error::{Error, Result};
use crate::sys::fsx::{self, AtomicFile};
use crate::sys::log;
use crate::sys::read_json::from_json;
use crate::sys::signals::{self, SigSet};
use crate::template;

/// Upstream's binary's name beside ours.
pub const BINARY: &str = "argoexec-upstream";
/// `ROOT/upstream-version`: the upstream version `init` found, for the emissaries' log shape.
pub const VERSION_FILE: &str = "upstream-version";
/// Set in an executor image, it names upstream's version without running upstream.
const VERSION_ENV: &str = "ARGOEXEC_UPSTREAM_VERSION";

/// Finds upstream's binary; the error lists every place looked at. A `$ARGOEXEC_UPSTREAM` that
/// names no file does not end the search: the controller gives the executor's `env` to every
/// container it adds, an artifact plugin's (another image) included.
pub fn find(cfg: &Config, argv0: &OsStr) -> std::result::Result<PathBuf, String> {
    let mut looked = Vec::new();
    match &cfg.upstream {
        Some(p) if is_file(p) => return Ok(p.clone()),
        Some(p) => looked.push(format!("{} ($ARGOEXEC_UPSTREAM)", p.display())),
        None => looked.push("$ARGOEXEC_UPSTREAM (not set)".to_string()),
    }
    for dir in own_dirs(argv0) {
        let p = dir.join(BINARY);
        if is_file(&p) {
            return Ok(p);
        }
        let shown = p.display().to_string();
        if !looked.contains(&shown) {
            looked.push(shown);
        }
    }
    Err(looked.join(", "))
}

fn is_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file())
}

/// The folders our executable is in: `/proc/self/exe`'s, and the one `argv0` names (a path as
/// given, or found on `PATH`) when there is no `/proc` or it differs (a symlinked binary).
fn own_dirs(argv0: &OsStr) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::fs::read_link("/proc/self/exe") {
        if let Some(d) = exe.parent() {
            dirs.push(d.to_path_buf());
        }
    }
    let named = if argv0.as_encoded_bytes().contains(&b'/') {
        Some(PathBuf::from(argv0))
    } else {
        let path_var = std::env::var_os("PATH");
        crate::run::lookup::resolve(argv0, path_var.as_deref()).ok()
    };
    if let Some(d) = named.as_deref().and_then(Path::parent) {
        let d = if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        };
        // The folder itself resolved (not the file, which may be a link to another folder).
        let d = std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf());
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// Execs upstream's binary with the very same argv (argv[0] included); returns only on failure.
pub fn delegate(cfg: &Config, argv: &[OsString], mask: &SigSet) -> Error {
    let sub = argv
        .get(1)
        .map_or_else(String::new, |a| a.to_string_lossy().into_owned());
    let argv0 = argv
        .first()
        .map_or(OsStr::new("argoexec"), |a| a.as_os_str());
    let upstream = match find(cfg, argv0) {
        Ok(p) => p,
        Err(looked) => {
            return Error::new(format!(
                "subcommand \"{sub}\" is run by upstream's executor, which was not found: looked for {looked}"
            ))
        }
    };
    exec(&upstream, argv0, argv.get(1..).unwrap_or(&[]), mask, &sub)
}

/// Replaces this process with `upstream` (with the signal mask we were started with).
pub fn exec(upstream: &Path, argv0: &OsStr, rest: &[OsString], mask: &SigSet, sub: &str) -> Error {
    if let Err(e) = signals::set_mask(mask) {
        return Error::new(format!("failed to restore signal mask: {e}"));
    }
    let x = match Exec::new(upstream, argv0, rest) {
        Ok(x) => x,
        Err(e) => return e,
    };
    x.exec();
    let e = io::Error::last_os_error();
    Error::new(format!(
        "failed to exec upstream executor {} for \"{sub}\": {e}",
        upstream.display()
    ))
}

/// Upstream's version, for `init`: `$ARGOEXEC_UPSTREAM_VERSION`, else what
/// `argoexec-upstream version --short` prints (`argoexec: v4.1.2`).
pub fn version_of(upstream: &Path, mask: &SigSet) -> Option<String> {
    if let Some(v) = std::env::var(VERSION_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return Some(v.trim().to_string());
    }
    let out = run_capture(
        upstream,
        &[OsString::from("version"), OsString::from("--short")],
        mask,
        Duration::from_secs(10),
    )
    .map_err(|e| {
        log::warn(
            "cannot learn upstream's version",
            &[
                ("path", &upstream.to_string_lossy()),
                ("error", &e.to_string()),
            ],
        )
    })
    .ok()?;
    version_in(&String::from_utf8_lossy(&out))
}

/// The version in `argoexec: v4.1.2` (the first line of `version`'s output): `v4.1.2`,
/// `v3.6.5+abc`, `4.1.2`; anything else is not an answer to the question.
fn version_in(text: &str) -> Option<String> {
    let line = text.lines().next()?.trim();
    let v = line.rsplit(' ').next().unwrap_or(line);
    let digits = v.strip_prefix('v').unwrap_or(v);
    digits
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| v.to_string())
}

/// The upstream version `init` left in the shared folder, if any (a few bytes of a regular
/// file, never following a link: the folder is shared with every container).
pub fn read_version(root: &Path) -> Option<String> {
    let bytes = fsx::read_small(&root.join(VERSION_FILE), 64).ok()??;
    let v = String::from_utf8_lossy(&bytes).trim().to_string();
    (!v.is_empty()).then_some(v)
}

/// What `init` does before handing over to upstream's `init`: leaves upstream's version for the
/// emissaries, and, when the template uses an artifact plugin, upstream's binary beside ours in
/// the shared folder, since the plugin's containers (its own image) run
/// `/var/run/argo/argoexec artifact-plugin-init`, which is upstream's code.
pub fn prepare_init(cfg: &Config, upstream: &Path, version: Option<&str>) -> Result<()> {
    let made = fsx::mkdir_all(&cfg.root, 0o777);
    if let Some(v) = version {
        let dest = cfg.root.join(VERSION_FILE);
        let written = match &made {
            Ok(()) => fsx::write_atomic(&dest, v.as_bytes(), 0o644),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        if let Err(e) = written {
            // Only the log shape depends on it.
            log::warn(
                "cannot leave upstream's version",
                &[("path", &dest.to_string_lossy()), ("error", &e.to_string())],
            );
        }
    }
    if template_uses_plugin(cfg) {
        made.map_err(|e| Error::io("failed to create", cfg.root.display(), e))?;
        let dest = cfg.root.join(BINARY);
        copy_binary(upstream, &dest)?;
        log::info(
            "copied upstream's executor for the artifact plugin's containers",
            &[("path", &dest.to_string_lossy())],
        );
    }
    Ok(())
}

/// Whether the template (`ARGO_TEMPLATE`, or the offloaded file) names an artifact plugin: an
/// artifact's or the archive location's `plugin` with a `name`, which is where the controller
/// puts the plugin it adds containers for (the default repository's too, through
/// `archiveLocation`). A template that cannot be read says no; upstream's init reports it.
fn template_uses_plugin(cfg: &Config) -> bool {
    let offloaded = Path::new(crate::config::OFFLOADED_TEMPLATE);
    let Ok(Some(json)) = template::from_env(cfg.template_env.as_deref(), offloaded) else {
        return false;
    };
    names_plugin(&json)
}

/// Whether JSON `data` has, anywhere, a `plugin` object with a non-empty string `name`.
/// Walked as it is scanned (`Seen`), nothing of the template is built.
fn names_plugin(data: &[u8]) -> bool {
    from_json::<Seen>(data).is_ok_and(|s| s.plugin)
}

/// What a JSON value holds, as far as `names_plugin` cares.
#[derive(Default)]
struct Seen {
    /// A `plugin` object with a name, at any depth.
    plugin: bool,
    /// The value is a non-empty string.
    text: bool,
    /// The value is an object whose `name` (the last, if repeated) is a non-empty string.
    named: bool,
}

impl<'de> serde::Deserialize<'de> for Seen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Seen, D::Error> {
        d.deserialize_any(SeenVisitor)
    }
}

struct SeenVisitor;

impl<'de> serde::de::Visitor<'de> for SeenVisitor {
    type Value = Seen;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut m: A,
    ) -> std::result::Result<Seen, A::Error> {
        let (mut plugin, mut named) = (false, false);
        while let Some(key) = m.next_key::<String>()? {
            let v: Seen = m.next_value()?;
            plugin |= v.plugin || (key == "plugin" && v.named);
            if key == "name" {
                named = v.text;
            }
        }
        Ok(Seen {
            plugin,
            named,
            ..Seen::default()
        })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut s: A,
    ) -> std::result::Result<Seen, A::Error> {
        let mut plugin = false;
        while let Some(v) = s.next_element::<Seen>()? {
            plugin |= v.plugin;
        }
        Ok(Seen {
            plugin,
            ..Seen::default()
        })
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Seen, E> {
        Ok(Seen {
            text: !v.is_empty(),
            ..Seen::default()
        })
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Seen, E> {
        Ok(Seen::default())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Seen, E> {
        Ok(Seen::default())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Seen, E> {
        Ok(Seen::default())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Seen, E> {
        Ok(Seen::default())
    }
    fn visit_unit<E>(self) -> std::result::Result<Seen, E> {
        Ok(Seen::default())
    }
}

/// Copies `src` to `dest` (0555) under a temporary name, then renames it.
fn copy_binary(src: &Path, dest: &Path) -> Result<()> {
    let mut from =
        std::fs::File::open(src).map_err(|e| Error::io("failed to open", src.display(), e))?;
    let mut out = AtomicFile::create(dest, 0o555)
        .map_err(|e| Error::io("failed to create", dest.display(), e))?;
    fsx::copy(&mut from, src, out.file(), dest)
        .map_err(|e| Error::new(format!("failed to copy upstream's executor: {e}")))?;
    out.commit().map_err(|e| {
        Error::io(
            "failed to rename upstream's executor into",
            dest.display(),
            e,
        )
    })
}

/// Runs `path args` with stdout to a pipe and returns what it printed (at most 4 KiB), or an
/// error when it cannot start, fails, or takes longer than `limit` (then it is killed).
fn run_capture(
    path: &Path,
    args: &[OsString],
    mask: &SigSet,
    limit: Duration,
) -> io::Result<Vec<u8>> {
    let exec =
        Exec::new(path, path.as_os_str(), args).map_err(|e| io::Error::other(e.to_string()))?;
    let (r, w) = crate::capture::pipe()?;
    // SAFETY: fork has no memory effects in the parent; the child only makes async-signal-safe
    // calls on memory prepared before the fork, then execs or exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: as above; dup2 on descriptors valid in the child.
        unsafe {
            if libc::dup2(w.as_raw_fd(), 1) >= 0 {
                signals::reset_dispositions();
                if signals::set_mask(mask).is_ok() {
                    exec.exec();
                }
            }
            libc::_exit(127)
        }
    }
    drop(w);
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        match signals::poll(&[(r.as_raw_fd(), libc::POLLIN)], ms) {
            Ok(rev) if rev.first().is_some_and(|&x| x != 0) => {}
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = finish_child(pid, true);
                return Err(e);
            }
        }
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let _ = finish_child(pid, true);
            return Err(e);
        }
        if n == 0 {
            break;
        }
        if out.len() < 4096 {
            out.extend_from_slice(&buf[..n as usize]);
        }
    }
    let timed_out = Instant::now() >= deadline;
    let ok = finish_child(pid, timed_out)?;
    if timed_out {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time"));
    }
    if !ok {
        return Err(io::Error::other("it failed"));
    }
    Ok(out)
}

/// Reaps the child (killing it first when `kill`); true when it exited 0.
fn finish_child(pid: i32, kill: bool) -> io::Result<bool> {
    if kill {
        // SAFETY: kill has no memory effects; pid is our own child, not yet reaped.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            // Already gone: the wait below reaps it.
        }
    }
    let mut st = 0;
    loop {
        // SAFETY: waits for our own child; st is a valid int.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            return Ok(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version_in("argoexec: v4.1.2\n").as_deref(), Some("v4.1.2"));
        assert_eq!(
            version_in("argoexec: v3.6.5\n  BuildDate: x\n").as_deref(),
            Some("v3.6.5")
        );
        assert_eq!(version_in("upstream argoexec: version --short\n"), None);
        assert_eq!(version_in(""), None);
    }

    #[test]
    fn plugin_names() {
        let yes = [
            r#"{"inputs":{"artifacts":[{"name":"a","path":"/a","plugin":{"name":"my-plugin","configuration":"x"}}]}}"#,
            r#"{"outputs":{"artifacts":[{"name":"a","plugin":{"name":"p"}}]}}"#,
            r#"{"archiveLocation":{"archiveLogs":true,"plugin":{"name":"p"}}}"#,
        ];
        let no = [
            r#"{}"#,
            r#"{"inputs":{"artifacts":[{"name":"a","s3":{"key":"k"}}]}}"#,
            r#"{"plugin":{"hello":{}}}"#,
            r#"{"archiveLocation":{"plugin":{"name":""}}}"#,
            r#"{"inputs":{"parameters":[{"name":"plugin","value":"plugin"}]}}"#,
        ];
        for t in yes {
            assert!(names_plugin(t.as_bytes()), "{t}");
        }
        for t in no {
            assert!(!names_plugin(t.as_bytes()), "{t}");
        }
    }
}
