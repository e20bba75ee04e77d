//! Finding the user command on `PATH` (SPEC section 3 step 6).
//!
//! Upstream uses Go's `exec.LookPath`; we keep its rules (a name with a `/` is used as given,
//! otherwise each `PATH` entry is tried in order) but tell apart the three ways it can fail, so
//! the user sees which one it was. The found path becomes the child's `argv[0]`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Used when the environment has no `PATH`, as container runtimes do for images without one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, PartialEq)]
pub enum LookupError {
    NotFound,
    /// Found, but not an executable regular file (a directory, or no execute permission).
    NotExecutable(PathBuf),
}

/// Resolves `name` against `path` (a `PATH` value).
pub fn resolve(name: &OsStr, path: Option<&OsStr>) -> Result<PathBuf, LookupError> {
    if name.is_empty() {
        return Err(LookupError::NotFound);
    }
    if name.as_bytes().contains(&b'/') {
        let p = PathBuf::from(name);
        return check(&p).map(|()| p);
    }
    let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut not_executable = None;
    for dir in path.as_bytes().split(|&b| b == b':') {
        // An empty entry means the current directory, as in Go and the shell.
        let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
        let candidate = Path::new(OsStr::from_bytes(dir)).join(name);
        match check(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(LookupError::NotExecutable(p)) if not_executable.is_none() => {
                not_executable = Some(p)
            }
            Err(_) => {}
        }
    }
    Err(not_executable.map_or(LookupError::NotFound, LookupError::NotExecutable))
}

fn check(p: &Path) -> Result<(), LookupError> {
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(_) => return Err(LookupError::NotFound),
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(LookupError::NotExecutable(p.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh() {
        let p = resolve(
            OsStr::new("sh"),
            Some(OsStr::new("/nonexistent:/bin:/usr/bin")),
        )
        .unwrap();
        assert!(p.ends_with("sh"));
    }

    #[test]
    fn distinct_failures() {
        assert_eq!(
            resolve(OsStr::new("no-such-cmd-xyz"), Some(OsStr::new("/bin"))),
            Err(LookupError::NotFound)
        );
        let plain = std::env::temp_dir().join(format!("lookup-plain-{}", std::process::id()));
        std::fs::write(&plain, "x").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            resolve(plain.as_os_str(), None),
            Err(LookupError::NotExecutable(plain.clone()))
        );
        std::fs::remove_file(&plain).unwrap();
        assert_eq!(
            resolve(OsStr::new("/"), None),
            Err(LookupError::NotExecutable("/".into()))
        );
    }
}
