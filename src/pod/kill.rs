//! `argoexec kill SIGNAL PID`: what the controller runs inside a container to stop it.

use crate::sys::error::{Error, Result};
use crate::sys::log;
use crate::sys::signals;

pub fn run(signal: &str, pid: &str) -> Result<()> {
    let sig = signals::parse(signal).ok_or_else(|| {
        Error::new(format!(
            "kill: invalid signal \"{signal}\": want a number, TERM or SIGTERM"
        ))
    })?;
    let pid: i32 = pid.trim().parse().ok().filter(|&p| p > 0).ok_or_else(|| {
        Error::new(format!(
            "kill: invalid pid \"{pid}\": want a positive integer"
        ))
    })?;
    let name = signals::name(sig);
    log::write_stdout(format!("killing {pid} with {name}\n").as_bytes());
    // SAFETY: kill has no memory effects.
    if unsafe { libc::kill(pid, sig) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::new(format!(
            "kill: failed to send {name} to {pid}: {e}"
        )));
    }
    Ok(())
}
