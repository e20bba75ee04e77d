//! The user command's arguments: the offloaded args file, and arguments too large for `execve`
//! (SPEC section 3 step 3).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use crate::sys::error::{Error, Result};
use crate::sys::fsx;
use crate::sys::log;
use crate::sys::read_json::from_json;

/// The kernel refuses a single argument of this many bytes or more (`MAX_ARG_STRLEN`).
pub const MAX_ARG_LEN: usize = 131_072;

/// Appends the JSON string array in `file` to `args`.
pub fn append_from_file(args: &mut Vec<OsString>, file: &Path) -> Result<()> {
    log::info(
        "Reading container args from file",
        &[("argsFile", &file.to_string_lossy())],
    );
    // A ConfigMap's file: a link is expected, a FIFO or a huge file is not.
    let data = fsx::read_file(file, fsx::MAX_JSON, true)
        .map_err(|e| Error::io("failed to read container args file", file.display(), e))?;
    let bad = |why: String| {
        Error::new(format!(
            "failed to unmarshal container args from {}: {why}",
            file.display()
        ))
    };
    // Strictly an array of strings: Go would also read `null` as none and a `null` element as
    // "", which no controller writes.
    let extra: Vec<String> = from_json(&data).map_err(bad)?;
    log::info(
        "Loaded container args from file",
        &[("count", &extra.len().to_string())],
    );
    args.extend(extra.into_iter().map(OsString::from));
    Ok(())
}

/// Moves every argument after the command (index i among them) of `MAX_ARG_LEN` bytes or more
/// to `dir/argo_arg_<i>.txt` (0644) and replaces it by `@<that path>`.
pub fn offload_large(args: &mut [OsString], dir: &Path) -> Result<()> {
    for (i, arg) in args.iter_mut().enumerate().skip(1) {
        if arg.len() < MAX_ARG_LEN {
            continue;
        }
        let idx = i - 1;
        let path = dir.join(format!("argo_arg_{idx}.txt"));
        fsx::write_atomic(&path, arg.as_encoded_bytes(), 0o644)
            .map_err(|e| Error::io("failed to offload large argument to", path.display(), e))?;
        log::info(
            "Offloaded large argument to file. Downstream program must support @filename syntax",
            // Upstream's keys.
            &[
                ("argIndex", &idx.to_string()),
                ("size", &arg.len().to_string()),
                ("filePath", &path.to_string_lossy()),
            ],
        );
        let mut replaced = b"@".to_vec();
        replaced.extend_from_slice(path.as_os_str().as_encoded_bytes());
        *arg = OsString::from_vec(replaced);
    }
    Ok(())
}
