//! `argoexec init` (stand-alone, SPEC section 6): put this binary and the template into the
//! shared folder for the emissaries of the pod.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::config::{Config, OFFLOADED_TEMPLATE};
use crate::run::lookup;
use crate::sys::error::{Error, Result};
use crate::sys::fsx::{self, AtomicFile};
use crate::sys::log;
use crate::template::{self, Template};

/// Where a script template's source goes (the `argo-staging` volume).
const SCRIPT_PATH: &str = "/argo/staging/script";

/// `argv0` is how we were started: where to find our own binary when there is no `/proc`.
pub fn run(cfg: &Config, argv0: &OsStr) -> Result<()> {
    // SAFETY: umask only changes this process's file creation mask, and cannot fail.
    unsafe { libc::umask(0) };
    fsx::mkdir_all(&cfg.root, 0o777)
        .map_err(|e| Error::io("failed to create", cfg.root.display(), e))?;
    copy_self(&cfg.root.join("argoexec"), argv0)?;

    let json = template::from_env(cfg.template_env.as_deref(), Path::new(OFFLOADED_TEMPLATE))?
        .ok_or_else(|| Error::new("init: ARGO_TEMPLATE is not set"))?;
    // Parse first, so a bad template fails here rather than in every container.
    let tmpl = Template::parse(&json)?;
    let dest = cfg.root.join("template");
    fsx::write_atomic(&dest, &json, 0o444)
        .map_err(|e| Error::io("failed to write template to", dest.display(), e))?;
    log::info("wrote template", &[("path", &dest.to_string_lossy())]);

    if let Some(src) = tmpl.script.as_ref().and_then(|s| s.source.as_deref()) {
        if !src.is_empty() {
            let path = Path::new(SCRIPT_PATH);
            if let Some(parent) = path.parent() {
                fsx::mkdir_all(parent, 0o777)
                    .map_err(|e| Error::io("failed to create", parent.display(), e))?;
            }
            fsx::write_atomic(path, src.as_bytes(), 0o755)
                .map_err(|e| Error::io("failed to write script to", SCRIPT_PATH, e))?;
            log::info("wrote script source", &[("path", SCRIPT_PATH)]);
        }
    }
    Ok(())
}

/// Opens the running binary: `/proc/self/exe`, or without `/proc` (a bare chroot) the name we
/// were started by, looked up on `PATH` as upstream's init looks up `argoexec`.
fn open_own_binary(argv0: &OsStr) -> Result<File> {
    let exe = Path::new("/proc/self/exe");
    match File::open(exe) {
        Ok(f) => return Ok(f),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io("failed to open own binary", exe.display(), e))
        }
        Err(_) => {}
    }
    let path_var = std::env::var_os("PATH");
    let found = lookup::resolve(argv0, path_var.as_deref())
        .or_else(|_| lookup::resolve(OsStr::new("argoexec"), path_var.as_deref()))
        .map_err(|_| {
            Error::new(format!(
                "failed to find own binary: no /proc/self/exe, and \"{}\" is not on PATH",
                argv0.to_string_lossy()
            ))
        })?;
    File::open(&found).map_err(|e| Error::io("failed to open own binary", found.display(), e))
}

/// Copies the running binary to `dest` (0555) under a temporary name, then renames it: a copy
/// that an emissary is running is replaced, never opened for writing ("text file busy").
fn copy_self(dest: &Path, argv0: &OsStr) -> Result<()> {
    let mut src = open_own_binary(argv0)?;
    let mut out = AtomicFile::create(dest, 0o555)
        .map_err(|e| Error::io("failed to create", dest.display(), e))?;
    let exe = Path::new("own binary");
    fsx::copy(&mut src, exe, out.file(), dest)
        .and_then(|()| out.flush())
        .map_err(|e| Error::new(format!("failed to copy the binary: {e}")))?;
    out.commit()
        .map_err(|e| Error::io("failed to rename binary into", dest.display(), e))?;
    log::info("copied binary", &[("path", &dest.to_string_lossy())]);
    Ok(())
}
