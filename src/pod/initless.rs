//! Init-less pods (upstream v4.1, beta; SPEC section 7): no init container, a `supervisor`
//! container stages the inputs and reports through `ROOT/status`.
//!
//! `status`'s first line is `RUNNING` (a heartbeat, rewritten every 5 s), `READY`, or `FAILED`
//! with the reason after it. The emissary waits for READY; FAILED, no file within 30 s, or no
//! heartbeat for 30 s end the run with 65. Then, in `main`, each input artifact the supervisor
//! downloaded is linked into place at its path.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::outputs::paths;
use crate::run::supervise::Supervisor;
use crate::sys::error::{Error, Result, EXIT_SUPERVISOR};
use crate::sys::fsx;
use crate::sys::log;
use crate::template::Template;

/// Where the supervisor puts downloaded input artifacts, one file or folder per name.
pub const INPUTS_DIR: &str = "/argo/inputs/artifacts";
/// How long the status file may be missing or silent before the supervisor is presumed dead.
const STALE: Duration = Duration::from_secs(30);

enum Status {
    Ready,
    Failed(String),
    Waiting,
}

/// Waits for the supervisor's READY in `ROOT/status`.
pub fn wait_ready(sup: &mut Supervisor, root: &Path) -> Result<()> {
    let path = root.join("status");
    log::info(
        "waiting for the supervisor",
        &[("path", &path.to_string_lossy())],
    );
    let start = Instant::now();
    let outcome = sup
        .wait_for(&[root], || match read_status(&path, start) {
            Status::Waiting => None,
            other => Some(other),
        })
        .map_err(|t| Error::exit(128 + t.0))?;
    match outcome {
        Status::Ready => {
            log::info("supervisor is ready", &[]);
            Ok(())
        }
        Status::Failed(reason) => Err(Error::with_code(EXIT_SUPERVISOR, reason)),
        Status::Waiting => Ok(()),
    }
}

fn read_status(path: &Path, start: Instant) -> Status {
    let meta = match path.symlink_metadata() {
        Ok(m) => m,
        Err(_) if start.elapsed() >= STALE => {
            return Status::Failed(format!(
                "supervisor presumed dead: {} never appeared within {} s",
                path.display(),
                STALE.as_secs()
            ))
        }
        Err(_) => return Status::Waiting,
    };
    let content = match fsx::read_small(path, 64 * 1024) {
        Ok(Some(c)) => String::from_utf8_lossy(&c).into_owned(),
        _ => return Status::Waiting,
    };
    let mut lines = content.lines();
    let first = lines.next().unwrap_or("").trim();
    if first == "READY" {
        return Status::Ready;
    }
    if let Some(rest) = first.strip_prefix("FAILED") {
        let mut reason: Vec<&str> = vec![rest.trim()];
        reason.extend(lines.map(str::trim));
        let reason = reason
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        return Status::Failed(format!("supervisor failed: {reason}"));
    }
    // RUNNING (or being written): alive while its heartbeat is fresh.
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or(Duration::ZERO);
    if age >= STALE {
        return Status::Failed(format!(
            "supervisor presumed dead: no heartbeat in {} for {} s",
            path.display(),
            age.as_secs()
        ));
    }
    Status::Waiting
}

/// Links each input artifact found under `inputs` into place at its path (main only).
pub fn stage_inputs(tmpl: &Template, inputs: &Path) -> Result<()> {
    let cwd = std::env::current_dir().ok();
    let mounts: Vec<String> = tmpl
        .volume_mounts()
        .iter()
        .map(|m| paths::clean_go(&m.mount_path).0)
        .collect();
    for a in &tmpl.inputs.artifacts {
        let (Some(name), Some(path)) = (a.name.as_deref(), a.path.as_deref()) else {
            continue;
        };
        if name.is_empty() || path.is_empty() || name.contains('/') {
            continue;
        }
        let source = inputs.join(name);
        if source.symlink_metadata().is_err() {
            continue;
        }
        link(&source, path, &mounts).map_err(|e| {
            Error::with_code(
                EXIT_SUPERVISOR,
                format!("failed to stage input artifact \"{name}\" at {path}: {e}"),
            )
        })?;
        log::info(
            "linked input artifact",
            &[
                ("name", name),
                ("path", path),
                ("source", &source.to_string_lossy()),
            ],
        );
    }
    // An artifact may have replaced the working directory itself: enter it again, so relative
    // paths of the command see the new one.
    if let Some(cwd) = cwd {
        if !cwd.is_dir() || std::env::set_current_dir(&cwd).is_err() {
            return Err(Error::with_code(
                EXIT_SUPERVISOR,
                format!(
                    "working directory {} must be a directory after staging input artifacts",
                    cwd.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Replaces whatever is at `path` by a symlink to `source`, creating parents (0755). A path
/// that resolves into a volume mount (or contains one) is refused: that is user data, which
/// the step reads from the volume itself.
fn link(source: &Path, path: &str, mounts: &[String]) -> io::Result<()> {
    let cleaned = paths::clean(path)
        .filter(|p| p.starts_with('/') && p != "/")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an absolute file path"))?;
    let dest = PathBuf::from(&cleaned);
    let parent = dest.parent().unwrap_or(Path::new("/"));
    // Check the lexical path first, so nothing is created inside a mount on the way.
    refuse_mounts(&cleaned, mounts)?;
    fsx::mkdir_all(parent, 0o755)?;
    // Then the path as the file system resolves it: a symlinked parent may lead into a mount.
    let resolved = std::fs::canonicalize(parent)?.join(dest.file_name().unwrap_or_default());
    refuse_mounts(&resolved.to_string_lossy(), mounts)?;
    if dest.symlink_metadata().is_ok() {
        remove(&dest)?;
    }
    std::os::unix::fs::symlink(source, &dest)
}

fn refuse_mounts(path: &str, mounts: &[String]) -> io::Result<()> {
    match mounts
        .iter()
        .find(|m| paths::is_within(m, path) || paths::is_within(path, m))
    {
        Some(m) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{path} resolves into the volume mount {m}; refusing to link it"),
        )),
        None => Ok(()),
    }
}

fn remove(p: &Path) -> io::Result<()> {
    match p.symlink_metadata()?.is_dir() {
        true => std::fs::remove_dir_all(p),
        false => std::fs::remove_file(p),
    }
}
