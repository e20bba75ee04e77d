//! System helpers every other folder uses; they use nothing of ours but each other.
//!
//! This folder owns the error type and exit codes (`error`), trustworthy file creation
//! (`fsx`), every write to the container's own stdout and stderr, bounded (`console`), our own
//! log lines (`log`), the signal mask and signalfd (`signals`), and JSON input through
//! serde_json (`read_json`).

pub mod console;
pub mod error;
pub mod fsx;
pub mod log;
pub mod read_json;
pub mod signals;
