//! Debug pause: wait for a marker file to exist (SPEC section 3 steps 7 and 9).

use std::path::Path;

use crate::run::supervise::{Supervisor, Terminated};
use crate::sys::log;

/// Waits until `marker` exists (any type of file). A termination signal ends the wait.
pub fn wait(sup: &mut Supervisor, marker: &Path) -> Result<(), Terminated> {
    let shown = marker.to_string_lossy();
    log::info("debug pause: waiting for marker", &[("path", &shown)]);
    let dirs: Vec<&Path> = marker.parent().into_iter().collect();
    let r = sup.wait_for(&dirs, || marker.symlink_metadata().ok().map(|_| ()));
    match &r {
        Ok(()) => log::info("debug pause: marker found", &[("path", &shown)]),
        Err(_) => log::info(
            "debug pause: ended by a termination signal",
            &[("path", &shown)],
        ),
    }
    r
}
