//! The signal file `ctr/C/signal`: how the wait container (and a sidecar's own emissary) asks
//! for a signal to be delivered to the child's process group.
//!
//! The folder is shared with every container of the pod, so the file is treated as hostile:
//! opened without following links and without blocking, only a regular file is read, and only
//! its first bytes. A positive integer (white space around it allowed) is taken, the file
//! deleted and the signal sent; anything else is left alone and logged once.

use std::path::{Path, PathBuf};

use crate::sys::fsx;
use crate::sys::log;

/// More than any signal number with white space around it; the rest is never read.
const MAX_READ: usize = 32;

pub struct SignalFile {
    path: PathBuf,
    /// What the last ignored content was, so each bad content is logged once.
    last_ignored: Option<Vec<u8>>,
}

impl SignalFile {
    pub fn new(path: PathBuf) -> SignalFile {
        SignalFile {
            path,
            last_ignored: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the signal asked for, if any, having deleted the file.
    pub fn take(&mut self) -> Option<i32> {
        let content = match fsx::read_small(&self.path, MAX_READ) {
            Ok(None) => return None,
            Ok(Some(c)) => c,
            Err(e) => {
                self.ignore(e.to_string().into_bytes(), &format!("unreadable: {e}"));
                return None;
            }
        };
        match parse(&content) {
            Some(sig) => {
                self.last_ignored = None;
                if let Err(e) = std::fs::remove_file(&self.path) {
                    log::warn(
                        "failed to delete signal file",
                        &[
                            ("path", &self.path.to_string_lossy()),
                            ("error", &e.to_string()),
                        ],
                    );
                }
                Some(sig)
            }
            // Empty is "being written": the writer has created but not yet filled the file.
            None if content.iter().all(u8::is_ascii_whitespace) => None,
            None => {
                let shown = String::from_utf8_lossy(&content).into_owned();
                self.ignore(content, &format!("not a positive integer: \"{shown}\""));
                None
            }
        }
    }

    fn ignore(&mut self, key: Vec<u8>, why: &str) {
        if self.last_ignored.as_ref() != Some(&key) {
            log::warn(
                "ignoring signal file",
                &[("path", &self.path.to_string_lossy()), ("reason", why)],
            );
            self.last_ignored = Some(key);
        }
    }
}

/// A positive decimal integer with optional surrounding white space.
pub fn parse(content: &[u8]) -> Option<i32> {
    let s = std::str::from_utf8(content).ok()?.trim();
    // One leading `+`, as Go's `Atoi` reads it (SPEC 3.8).
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i32>().ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(parse(b"15"), Some(15));
        assert_eq!(parse(b" 9\n"), Some(9));
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"0"), None);
        assert_eq!(parse(b"-15"), None);
        assert_eq!(parse(b"+15"), Some(15));
        assert_eq!(parse(b"++15"), None);
        assert_eq!(parse(b"+"), None);
        assert_eq!(parse(b"TERM"), None);
        assert_eq!(parse(b"99999999999"), None);
        assert_eq!(parse(b"\xff"), None);
    }
}
