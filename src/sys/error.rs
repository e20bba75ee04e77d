//! The one error type: a message for the user and the exit code it stands for.
//!
//! SPEC section 3 table: 64 is "the emissary itself failed", 65 the init-less supervisor,
//! and 128+n a termination signal that ended a wait before any child ran (no message).

use std::fmt;
use std::io;

/// Exit code for the emissary's own failures (`EX_USAGE`, as upstream).
pub const EXIT_FAILURE: i32 = 64;
/// Exit code when the init-less supervisor reported failure or vanished.
pub const EXIT_SUPERVISOR: i32 = 65;

#[derive(Debug)]
pub struct Error {
    /// The process exit code this error ends the run with.
    pub code: i32,
    /// The reason, or `None` for a quiet exit (a termination signal during a wait).
    pub msg: Option<String>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A failure of the emissary itself: exit 64.
    pub fn new(msg: impl Into<String>) -> Error {
        Error {
            code: EXIT_FAILURE,
            msg: Some(msg.into()),
        }
    }

    /// An I/O failure, with what was being done and on which path.
    pub fn io(what: &str, path: impl fmt::Display, err: io::Error) -> Error {
        Error::new(format!("{what} {path}: {err}"))
    }

    /// A failure with another exit code (65 for the supervisor).
    pub fn with_code(code: i32, msg: impl Into<String>) -> Error {
        Error {
            code,
            msg: Some(msg.into()),
        }
    }

    /// Names the container (and the template, once known) in the message, so a user reading
    /// one pod's logs among many sees whose step failed; a message that names them already is
    /// left as it is.
    pub fn whose(mut self, container: &str, template: Option<&str>) -> Error {
        if let Some(m) = &mut self.msg {
            if !m.contains("(container ") {
                m.push_str(" (container ");
                m.push_str(container);
                if let Some(t) = template {
                    m.push_str(", template \"");
                    m.push_str(t);
                    m.push('"');
                }
                m.push(')');
            }
        }
        self
    }

    /// A quiet exit with `code`, e.g. 143 when SIGTERM ends a dependency wait.
    pub fn exit(code: i32) -> Error {
        Error { code, msg: None }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.msg {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code),
        }
    }
}
