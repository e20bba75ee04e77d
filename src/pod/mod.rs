//! The other subcommands and the pod around us: what the controller runs besides `emissary`.
//!
//! This folder owns `argoexec init` and the init-less set-up (`init`, `initless`), `argoexec
//! kill` (`kill`), and everything about
//! upstream's executor beside ours: finding it, its version, and handing it what is not ours
//! (`upstream`).

pub mod init;
pub mod initless;
pub mod kill;
pub mod upstream;
