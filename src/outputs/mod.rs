//! Saving a template's outputs for the wait container (SPEC sections 2, 3 step 11, and 5).
//!
//! This module owns `ROOT/outputs/`: which output parameters and artifacts are saved, where
//! each lands (`outputs/parameters/<path>`, `outputs/artifacts/<path>.tgz`, joined and cleaned
//! lexically exactly as the wait container computes it), which are skipped (on a volume mount,
//! or missing) and which are refused (a destination outside `outputs`, a folder as a parameter).
//! Every file appears complete or not at all (temporary file + rename), mode 0666 as upstream's
//! (`os.Create` under umask 0): a pod can see the mode, and in a 0777 shared folder a narrower
//! one would protect nothing.
//! Nothing is written outside `ROOT/outputs`: the cleaned destination has no `..` left, and a
//! folder on the way that is not a real folder (say a symlink planted by a neighbour container in the
//! shared root) is refused rather than followed.

pub mod archive;
pub mod cpus;
pub mod deflate;
pub mod gzip;
pub mod paths;
pub mod pool;

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::outputs::paths::{clean_go, is_within};
use crate::run::deadline::Clock;
use crate::sys::error::{Error, Result};
use crate::sys::fsx::{self, annotate, AtomicFile};
use crate::sys::log;
use crate::template::{Artifact, Template, VolumeMount};

/// Mode of each saved file; see the module comment.
const FILE_MODE: u32 = 0o666;
/// Mode of the folders created for them (SPEC: parents 0755, as upstream).
const DIR_MODE: u32 = 0o755;

/// The two kinds of output, which differ in destination and in how the bytes are made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Parameter,
    Artifact,
}

/// The log lines about one kind of output, worded as upstream's.
struct Messages {
    on_mount: &'static str,
    missing: &'static str,
    saving: &'static str,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Parameter => "parameter",
            Kind::Artifact => "artifact",
        }
    }

    fn messages(self) -> &'static Messages {
        match self {
            Kind::Parameter => &Messages {
                on_mount: "no need to save parameter - on overlapping volume",
                missing: "cannot save parameter, does not exist",
                saving: "saving parameter",
            },
            Kind::Artifact => &Messages {
                on_mount: "no need to save artifact - on overlapping volume",
                missing: "cannot save artifact, does not exist",
                saving: "saving artifact",
            },
        }
    }
}

/// Saves every output parameter with a `valueFrom.path`, then every artifact with a `path`,
/// in template order. The first failure stops the saving and is returned (exit 64).
///
/// After a termination signal the kubelet's SIGKILL is coming: once `clock` runs out, the
/// output being written is abandoned (its temporary file removed) and it and every one not yet
/// started are named in a warning, not an error: the exit code stays the child's, and
/// `exitcode` is written in time.
pub fn save(root: &Path, tmpl: &Template, clock: &mut Clock) -> Result<()> {
    let mounts = tmpl.volume_mounts();
    let parameters = tmpl
        .outputs
        .parameters
        .iter()
        .filter_map(|p| p.value_from.as_ref().and_then(|v| v.path.as_deref()))
        .map(|path| (path, None));
    let artifacts = tmpl
        .outputs
        .artifacts
        .iter()
        .filter_map(|a| a.path.as_deref().map(|path| (path, Some(a))));
    for (path, artifact) in parameters.chain(artifacts) {
        if path.is_empty() {
            continue;
        }
        if clock.out_of_time() {
            log::warn(OUT_OF_TIME, &[("path", path)]);
            continue;
        }
        save_one(root, mounts, path, artifact, clock)?;
    }
    Ok(())
}

/// The warning for an output not saved because the kubelet's SIGKILL is near.
const OUT_OF_TIME: &str =
    "output not saved: out of time after a termination signal, the kubelet's SIGKILL is near";

/// Saves one output whose template path is `path`; `artifact` is its declaration when it is one.
fn save_one(
    root: &Path,
    mounts: &[VolumeMount],
    path: &str,
    artifact: Option<&Artifact>,
    clock: &mut Clock,
) -> Result<()> {
    let kind = match artifact {
        None => Kind::Parameter,
        Some(_) => Kind::Artifact,
    };
    let noun = kind.noun();
    let (src, rel) = destination(kind, path)
        .map_err(|why| Error::new(format!("cannot save {noun} {path}: {why}")))?;
    if !needs_saving(kind, path, &src, mounts)? {
        return Ok(());
    }
    let src = Path::new(&src);
    let dst = root.join("outputs").join(&rel);
    let dst_text = dst.to_string_lossy();
    log::info(kind.messages().saving, &[("src", path), ("dst", &dst_text)]);
    prepare_dirs(root, &rel).map_err(|e| {
        Error::new(format!(
            "failed to save {noun} {path}: creating folders for {dst_text}: {e}"
        ))
    })?;
    let written = match artifact {
        None => write_parameter(src, &dst, clock),
        Some(a) => write_artifact(src, &dst, compression_level(a, path), clock),
    };
    match written {
        Ok(()) => Ok(()),
        // The unfinished file is already gone (dropped before rename).
        Err(_) if clock.out_of_time() => {
            log::warn(
                OUT_OF_TIME,
                &[
                    ("path", path),
                    ("dst", &dst_text),
                    ("unfinished", "removed"),
                ],
            );
            Ok(())
        }
        Err(e) => Err(Error::new(format!(
            "failed to save {noun} {path} to {dst_text}: {e}"
        ))),
    }
}

/// Whether the output at `src` (cleaned) is to be saved: not when it is on a volume mount (the
/// wait container reads it from there) nor when it does not exist (the wait container then
/// applies `optional` or the default), each with upstream's log line. A parameter that is not
/// a file is an error.
fn needs_saving(kind: Kind, path: &str, src: &str, mounts: &[VolumeMount]) -> Result<bool> {
    if let Some(mount) = overlapping_mount(src, mounts) {
        log::info(
            kind.messages().on_mount,
            &[("path", path), ("mountPath", mount)],
        );
        return Ok(false);
    }
    let meta = match fs::metadata(src) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::warn(kind.messages().missing, &[("path", path)]);
            return Ok(false);
        }
        Err(e) => {
            let noun = kind.noun();
            return Err(Error::new(format!("cannot save {noun} {path}: {e}")));
        }
    };
    if kind == Kind::Parameter {
        check_parameter_type(path, &meta.file_type())?;
    }
    Ok(true)
}

/// Only a regular file's bytes are a parameter: a folder has none, and a FIFO or a device
/// could block or never end.
fn check_parameter_type(path: &str, ft: &fs::FileType) -> Result<()> {
    let what = if ft.is_file() {
        return Ok(());
    } else if ft.is_dir() {
        "is a directory"
    } else if ft.is_socket() {
        "is a socket"
    } else {
        "is not a regular file (a FIFO or a device)"
    };
    Err(Error::new(format!(
        "cannot save parameter {path}: it {what}, a parameter must be a file"
    )))
}

/// Copies the file at `src` to `dst` through a temporary file, renamed once complete; stops
/// with an error once `clock` runs out (the temporary file is then removed).
fn write_parameter(src: &Path, dst: &Path, clock: &mut Clock) -> io::Result<()> {
    // O_NONBLOCK: if a FIFO was swapped in since the check, fail instead of hanging.
    let mut from = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(src)
        .map_err(|e| annotate("reading", src, e))?;
    let mut out = AtomicFile::create(dst, FILE_MODE).map_err(|e| annotate("creating", dst, e))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        clock.check()?;
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(annotate("reading", src, e)),
        };
        out.file()
            .write_all(&buf[..n])
            .map_err(|e| annotate("writing", dst, e))?;
    }
    out.commit().map_err(|e| annotate("renaming into", dst, e))
}

/// Archives `src` into `dst` through a temporary file, renamed once complete.
fn write_artifact(src: &Path, dst: &Path, level: u8, clock: &mut Clock) -> io::Result<()> {
    let mut out = AtomicFile::create(dst, FILE_MODE).map_err(|e| annotate("creating", dst, e))?;
    let count = archive::write_tgz(src, level, &mut out, clock)?;
    out.commit()
        .map_err(|e| annotate("renaming into", dst, e))?;
    log::info("archived files/dirs", &[("count", &count.to_string())]);
    Ok(())
}

/// The deflate level for an artifact: `archive.none` and `archive.zip` get 1, since the wait
/// container unpacks those anyway (checked first, as the wait container does); otherwise
/// `archive.tar.compressionLevel` when it is 0 to 9 (out of range: a warning, then 6);
/// otherwise 6, Go's default.
pub fn compression_level(a: &Artifact, path: &str) -> u8 {
    let Some(strategy) = &a.archive else {
        return archive::DEFAULT_LEVEL;
    };
    if strategy.none || strategy.zip {
        return 1;
    }
    match strategy.tar.as_ref().and_then(|t| t.compression_level) {
        Some(n) if (0..=9).contains(&n) => n as u8,
        Some(n) => {
            log::warn(
                "compression level out of range 0 to 9, using 6",
                &[("path", path), ("compressionLevel", &n.to_string())],
            );
            archive::DEFAULT_LEVEL
        }
        None => archive::DEFAULT_LEVEL,
    }
}

/// The source path as the emissary reads it, and the destination relative to `ROOT/outputs`,
/// computed exactly as upstream's wait container computes where it reads them (SPEC section 2,
/// upstream `workflow/executor/emissary/emissary.go`): for an artifact one trailing `/` is
/// removed and `.tgz` appended; then `parameters/<p>` or `artifacts/<p>` is cleaned lexically
/// as Go's `filepath.Join` does. So `/tmp/a/` gives `artifacts/tmp/a.tgz`, `/tmp/d//` gives
/// `artifacts/tmp/d/.tgz`, and a relative `../out/r.json` gives `out/r.json`.
///
/// The source is the path cleaned as Go's `filepath.Clean` (upstream's emissary reads it so),
/// relative ones from the working directory, a leading `..` kept: `../out/r.json` is read
/// beside the working directory. A destination that is not a file strictly below
/// `ROOT/outputs` (it climbs out with `..`, or is `outputs` or `outputs/parameters` itself) is
/// refused.
pub fn destination(kind: Kind, path: &str) -> std::result::Result<(String, PathBuf), &'static str> {
    let (source, _) = clean_go(path);
    let joined = match kind {
        Kind::Parameter => format!("parameters/{path}"),
        Kind::Artifact => format!("artifacts/{}.tgz", path.strip_suffix('/').unwrap_or(path)),
    };
    let (rel, _) = clean_go(&joined);
    if rel == "." || rel == ".." || rel.starts_with("../") {
        return Err(
            "its destination would be outside the outputs folder (the path climbs out with `..`)",
        );
    }
    if rel == "parameters" {
        return Err("the path names no file");
    }
    Ok((source, PathBuf::from(rel)))
}

/// The mount path `path` (cleaned) equals or lies below, if any; the longest such, as
/// upstream v4.1 reports it. Like its `filepath.Rel` test: both sides cleaned, an absolute path
/// never matches a relative mount (nor the reverse), `/` holds every absolute path, and `/data2`
/// is not below `/data`.
fn overlapping_mount<'m>(path: &str, mounts: &'m [VolumeMount]) -> Option<&'m str> {
    mounts
        .iter()
        .map(|m| m.mount_path.as_str())
        .filter(|m| is_within(&clean_go(m).0, path))
        .max_by_key(|m| m.len())
}

/// Creates `ROOT/outputs/...` down to the parent of `rel`, folder by folder (0755), and checks
/// that each one on the way is a real folder, not a symlink: the root is shared with other
/// containers, and following a planted link would write outside it.
fn prepare_dirs(root: &Path, rel: &Path) -> io::Result<()> {
    fsx::mkdir_all(root, DIR_MODE).map_err(|e| annotate("creating", root, e))?;
    let mut dir = root.join("outputs");
    fsx::make_real_dir(&dir, DIR_MODE)?;
    if let Some(parent) = rel.parent() {
        for part in parent.components() {
            dir.push(part);
            fsx::make_real_dir(&dir, DIR_MODE)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::archive::tests::{list, scratch};
    use serde_json::json;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::Component;

    fn template(v: serde_json::Value) -> Template {
        Template::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
    }

    fn param_tmpl(path: &str, mounts: &[&str]) -> Template {
        let mounts: Vec<_> = mounts
            .iter()
            .map(|m| json!({"name": "v", "mountPath": m}))
            .collect();
        template(json!({
            "container": {"volumeMounts": mounts},
            "outputs": {"parameters": [{"name": "p", "valueFrom": {"path": path}}]}
        }))
    }

    fn artifact_tmpl(path: &str, mounts: &[&str]) -> Template {
        let mounts: Vec<_> = mounts
            .iter()
            .map(|m| json!({"name": "v", "mountPath": m}))
            .collect();
        template(json!({
            "script": {"volumeMounts": mounts, "source": "true"},
            "outputs": {"artifacts": [{"name": "a", "path": path}]}
        }))
    }

    /// Every file below `dir` (folders left out), relative, sorted.
    fn files_below(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd {
                let p = e.unwrap().path();
                if fs::symlink_metadata(&p).unwrap().is_dir() {
                    for f in files_below(&p) {
                        out.push(format!("{}/{f}", p.file_name().unwrap().to_string_lossy()));
                    }
                } else {
                    out.push(p.file_name().unwrap().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    #[test]
    fn destinations() {
        let d = |k, p| destination(k, p).map(|(c, d)| (c, d.to_string_lossy().into_owned()));
        let ok = |c: &str, d: &str| Ok((c.to_string(), d.to_string()));
        let (a, p) = (Kind::Artifact, Kind::Parameter);
        // SPEC section 2's examples, and upstream's wait side for each.
        assert_eq!(d(a, "/tmp/a/"), ok("/tmp/a", "artifacts/tmp/a.tgz"));
        assert_eq!(d(a, "/tmp/d//"), ok("/tmp/d", "artifacts/tmp/d/.tgz"));
        assert_eq!(d(p, "../out/r.json"), ok("../out/r.json", "out/r.json"));
        assert_eq!(d(p, "tmp/x"), ok("tmp/x", "parameters/tmp/x"));
        assert_eq!(d(p, "//tmp//../p"), ok("/p", "parameters/p"));
        assert_eq!(d(p, "./p"), ok("p", "parameters/p"));
        assert_eq!(d(p, "/tmp/x/"), ok("/tmp/x", "parameters/tmp/x"));
        assert_eq!(d(p, "a/../../x"), ok("../x", "x"));
        assert_eq!(d(p, "/a/../../x"), ok("/x", "x"));
        assert_eq!(d(p, "/../x"), ok("/x", "x"));
        assert_eq!(d(a, "../x"), ok("../x", "x.tgz"));
        assert_eq!(d(a, "/"), ok("/", "artifacts/.tgz"));
        assert_eq!(d(a, "."), ok(".", "artifacts/..tgz"));
        assert_eq!(d(a, ".."), ok("..", "artifacts/...tgz"));
        for bad in [
            "../../x",
            "/a/../../../x",
            "../..",
            "..",
            "/..",
            "/",
            ".",
            "",
        ] {
            assert!(d(p, bad).is_err(), "parameter {bad}");
        }
        for bad in ["../../x", "/../../x", "a/../../../x/"] {
            assert!(d(a, bad).is_err(), "artifact {bad}");
        }
    }

    /// Every path over a small alphabet, up to 8 characters: whatever is accepted lands on a
    /// file name strictly inside `outputs`. (The fuzz target's property, exhaustively.)
    #[test]
    fn destination_never_leaves_outputs() {
        let alphabet = ['a', '.', '/'];
        let mut paths = vec![String::new()];
        let mut start = 0;
        for _ in 0..8 {
            let end = paths.len();
            for i in start..end {
                for c in alphabet {
                    let mut p = paths[i].clone();
                    p.push(c);
                    paths.push(p);
                }
            }
            start = end;
        }
        for p in &paths {
            for kind in [Kind::Parameter, Kind::Artifact] {
                let Ok((source, dest)) = destination(kind, p) else {
                    continue;
                };
                assert_eq!(source, clean_go(p).0, "{p}");
                let parts: Vec<_> = dest.components().collect();
                assert!(!parts.is_empty(), "{p}");
                assert!(
                    parts.iter().all(|c| matches!(c, Component::Normal(_))),
                    "{p} -> {}",
                    dest.display()
                );
                assert_ne!(dest, Path::new("parameters"), "{p}");
            }
        }
    }

    #[test]
    fn overlap_rule() {
        let mounts: Vec<VolumeMount> = ["/data/", "/work/in"]
            .iter()
            .map(|m| VolumeMount {
                mount_path: m.to_string(),
            })
            .collect();
        for p in ["/data", "/data/x", "/data/x/y", "/work/in/z"] {
            assert!(overlapping_mount(p, &mounts).is_some(), "{p}");
        }
        let nested: Vec<VolumeMount> = ["/a", "/a/b/", "/a/b/c/d"]
            .iter()
            .map(|m| VolumeMount {
                mount_path: m.to_string(),
            })
            .collect();
        assert_eq!(overlapping_mount("/a/b/c", &nested), Some("/a/b/"));
        for p in [
            "/data2",
            "/data2/x",
            "/dat",
            "/work",
            "/work/input",
            "data/x",
            "/",
        ] {
            assert!(overlapping_mount(p, &mounts).is_none(), "{p}");
        }
        let root = [VolumeMount {
            mount_path: "/".into(),
        }];
        assert!(overlapping_mount("/anything", &root).is_some());
        assert!(overlapping_mount("relative", &root).is_none());
    }

    #[test]
    fn compression_levels() {
        let level = |archive: serde_json::Value| {
            let t =
                template(json!({"outputs": {"artifacts": [{"path": "/x", "archive": archive}]}}));
            compression_level(&t.outputs.artifacts[0], "/x")
        };
        assert_eq!(level(json!(null)), 6);
        assert_eq!(level(json!({})), 6);
        assert_eq!(level(json!({"none": {}})), 1);
        assert_eq!(level(json!({"zip": {}})), 1);
        assert_eq!(level(json!({"tar": {}})), 6);
        assert_eq!(level(json!({"tar": {"compressionLevel": 0}})), 0);
        assert_eq!(level(json!({"tar": {"compressionLevel": 9}})), 9);
        assert_eq!(level(json!({"tar": {"compressionLevel": 10}})), 6);
        assert_eq!(level(json!({"tar": {"compressionLevel": -1}})), 6);
        assert_eq!(
            level(json!({"tar": {"compressionLevel": 0}, "none": {}})),
            1
        );
    }

    #[test]
    fn parameter_is_an_exact_copy() {
        let base = scratch("param");
        let root = base.join("root");
        let mut data: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        data.extend_from_slice(b"\r\n\0no newline at the end");
        let src = base.join("out/p.bin");
        fs::create_dir_all(src.parent().unwrap()).unwrap();
        fs::write(&src, &data).unwrap();
        save(&root, &param_tmpl(s(&src), &[]), &mut Clock::unbounded()).unwrap();
        let dst = root
            .join("outputs/parameters")
            .join(src.strip_prefix("/").unwrap());
        assert!(fs::read(&dst).unwrap() == data);
        assert_eq!(
            fs::metadata(&dst).unwrap().permissions().mode() & 0o7777,
            0o666
        );
        let dir_mode = fs::metadata(dst.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o7777, 0o755);
        // Saving again replaces the file.
        fs::write(&src, "second").unwrap();
        save(&root, &param_tmpl(s(&src), &[]), &mut Clock::unbounded()).unwrap();
        assert_eq!(fs::read(&dst).unwrap(), b"second");
        assert_eq!(files_below(&root.join("outputs")).len(), 1);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn missing_sources_write_nothing() {
        let base = scratch("missing");
        let root = base.join("root");
        let missing = base.join("nope");
        save(
            &root,
            &param_tmpl(s(&missing), &[]),
            &mut Clock::unbounded(),
        )
        .unwrap();
        save(
            &root,
            &artifact_tmpl(s(&missing), &[]),
            &mut Clock::unbounded(),
        )
        .unwrap();
        // A dangling symlink is missing too.
        symlink(&missing, base.join("dangling")).unwrap();
        save(
            &root,
            &param_tmpl(s(&base.join("dangling")), &[]),
            &mut Clock::unbounded(),
        )
        .unwrap();
        assert!(!root.join("outputs").exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn folder_or_socket_parameter_is_refused() {
        let base = scratch("dirparam");
        let root = base.join("root");
        let err = save(&root, &param_tmpl(s(&base), &[]), &mut Clock::unbounded()).unwrap_err();
        assert_eq!(err.code, 64);
        let msg = err.to_string();
        assert!(msg.contains(s(&base)) && msg.contains("directory"), "{msg}");
        let sock = base.join("sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let msg = save(&root, &param_tmpl(s(&sock), &[]), &mut Clock::unbounded())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("socket"), "{msg}");
        assert!(files_below(&root).is_empty());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn outputs_on_a_volume_mount_are_skipped() {
        let base = scratch("overlap");
        let root = base.join("root");
        let data = base.join("data");
        let data2 = base.join("data2");
        for d in [&data, &data2] {
            fs::create_dir_all(d.join("sub")).unwrap();
            fs::write(d.join("sub/p"), "v").unwrap();
        }
        let mount = format!("{}/", s(&data));
        save(
            &root,
            &param_tmpl(s(&data.join("sub/p")), &[&mount]),
            &mut Clock::unbounded(),
        )
        .unwrap();
        save(
            &root,
            &artifact_tmpl(s(&data), &[&mount]),
            &mut Clock::unbounded(),
        )
        .unwrap();
        save(
            &root,
            &artifact_tmpl(&format!("{}/sub/../sub/", s(&data)), &[&mount]),
            &mut Clock::unbounded(),
        )
        .unwrap();
        assert!(!root.join("outputs").exists());
        // A sibling whose name merely starts with the mount's is saved.
        save(
            &root,
            &param_tmpl(s(&data2.join("sub/p")), &[&mount]),
            &mut Clock::unbounded(),
        )
        .unwrap();
        let rel = data2.strip_prefix("/").unwrap().join("sub/p");
        assert_eq!(
            fs::read(root.join("outputs/parameters").join(rel)).unwrap(),
            b"v"
        );
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn escaping_paths_are_refused() {
        let base = scratch("escape");
        let root = base.join("root");
        for p in ["../../etc/passwd", "a/../../../x", "/../../etc/passwd"] {
            let err = save(&root, &param_tmpl(p, &[]), &mut Clock::unbounded()).unwrap_err();
            assert_eq!(err.code, 64);
            assert!(err.to_string().contains(p), "{err}");
            assert!(save(&root, &artifact_tmpl(p, &[]), &mut Clock::unbounded()).is_err());
        }
        assert!(!root.exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn artifact_with_trailing_slash() {
        let base = scratch("artifact");
        let root = base.join("root");
        let art = base.join("art");
        fs::create_dir(&art).unwrap();
        fs::write(art.join("f"), "x").unwrap();
        save(
            &root,
            &artifact_tmpl(&format!("{}/", s(&art)), &[]),
            &mut Clock::unbounded(),
        )
        .unwrap();
        let rel = format!("{}.tgz", s(&art).trim_start_matches('/'));
        let tgz = root.join("outputs/artifacts").join(rel);
        let names: Vec<String> = list(&fs::read(&tgz).unwrap())
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, ["art", "art/f"]);
        assert_eq!(
            fs::metadata(&tgz).unwrap().permissions().mode() & 0o7777,
            0o666
        );
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn failures_leave_no_temporary_file() {
        let base = scratch("fail");
        let root = base.join("root");
        // The archive fails once its temporary file exists: a socket cannot be archived.
        let sock = base.join("sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let err = save(
            &root,
            &artifact_tmpl(s(&sock), &[]),
            &mut Clock::unbounded(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("socket"), "{err}");
        // Reading fails after the copy started: /proc/self/mem has no page at offset 0.
        let err = save(
            &root,
            &param_tmpl("/proc/self/mem", &[]),
            &mut Clock::unbounded(),
        )
        .unwrap_err();
        assert_eq!(err.code, 64);
        assert!(err.to_string().contains("reading /proc/self/mem"), "{err}");
        assert!(files_below(&root).is_empty(), "{:?}", files_below(&root));
        fs::remove_dir_all(&base).unwrap();
    }

    /// Once the kill clock has run out, nothing more is written and nothing is an error: each
    /// output is named in a warning, and no temporary file is left.
    #[test]
    fn out_of_time_saves_nothing_and_fails_nothing() {
        let base = scratch("clock");
        let root = base.join("root");
        fs::write(base.join("p"), "v").unwrap();
        crate::run::deadline::terminated();
        let mut clock = Clock::new(std::time::Duration::from_millis(2));
        std::thread::sleep(std::time::Duration::from_millis(5));
        let t = template(json!({"outputs": {
            "parameters": [{"name": "p", "valueFrom": {"path": s(&base.join("p"))}}],
            "artifacts": [{"name": "a", "path": s(&base.join("p"))}]
        }}));
        save(&root, &t, &mut clock).unwrap();
        assert!(files_below(&root).is_empty(), "{:?}", files_below(&root));
        // Cut in the middle: the copy stops at its first look at the clock, the file is removed.
        fs::create_dir_all(root.join("outputs")).unwrap();
        let dst = root.join("outputs/p");
        let e = write_parameter(&base.join("p"), &dst, &mut clock).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let e = write_artifact(&base.join("p"), &dst, 1, &mut clock).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(files_below(&root).is_empty(), "{:?}", files_below(&root));
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn planted_symlink_is_not_followed() {
        let base = scratch("planted");
        let root = base.join("root");
        let elsewhere = base.join("elsewhere");
        fs::create_dir_all(root.join("outputs")).unwrap();
        fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, root.join("outputs/parameters")).unwrap();
        let src = base.join("p");
        fs::write(&src, "v").unwrap();
        let err = save(&root, &param_tmpl(s(&src), &[]), &mut Clock::unbounded()).unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
        assert!(files_below(&elsewhere).is_empty());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn parameters_then_artifacts_in_order() {
        let base = scratch("order");
        let root = base.join("root");
        fs::write(base.join("p1"), "1").unwrap();
        let t = template(json!({
            "outputs": {
                "parameters": [
                    {"name": "no-path"},
                    {"name": "empty", "valueFrom": {"path": ""}},
                    {"name": "p1", "valueFrom": {"path": s(&base.join("p1"))}},
                    {"name": "bad", "valueFrom": {"path": s(&base)}}
                ],
                "artifacts": [{"name": "a", "path": s(&base.join("p1"))}]
            }
        }));
        // The folder parameter stops the run before any artifact.
        assert!(save(&root, &t, &mut Clock::unbounded()).is_err());
        assert!(root.join("outputs/parameters").exists());
        assert!(!root.join("outputs/artifacts").exists());
        fs::remove_dir_all(&base).unwrap();
    }
}
