//! The pieces of the run of SPEC section 3 that `emissary` calls in order, and its supervision.
//!
//! This folder owns everything between reading the template and writing `exitcode`: the user
//! command's arguments and where it is on `PATH` (`args`, `lookup`), waiting for dependencies
//! and debug pauses (`deps`, `pause`), starting it (`spawn`), the one loop that waits on it
//! and on signals, the signal file and the kill clock (`supervise`, `signalfile`, `deadline`,
//! `watch`), the alive lock (`alive`) and the retries (`retry`). The sequence itself stays in
//! `crate::emissary`, one function a reader can follow.

pub mod alive;
pub mod args;
pub mod deadline;
pub mod deps;
pub mod lookup;
pub mod pause;
pub mod retry;
pub mod signalfile;
pub mod spawn;
pub mod supervise;
pub mod watch;
