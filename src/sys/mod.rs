//! System helpers every other folder uses, and which use nothing of ours but each other.
//!
//! This folder owns the error type and exit codes (`error`), trustworthy file creation
//! (`fsx`), our own log lines (`log`), the signal mask and signalfd (`signals`), and the JSON
//! reader (`json`).

pub mod error;
pub mod fsx;
pub mod json;
pub mod log;
pub mod signals;
