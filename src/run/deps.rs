//! ContainerSet dependencies: wait for each dependency's `exitcode`, in order (SPEC section 3
//! step 5).
//!
//! The file may be written in place by an upstream emissary, so empty or unparsable content
//! means "not yet", never an error; it is read without following links or blocking on a FIFO.
//! A dependency whose emissary has ended without writing it (its alive lock free: killed, out
//! of memory) has died, and the wait stops there (64) instead of going on forever.

use crate::config::Config;
use crate::run::alive;
use crate::run::signalfile;
use crate::run::supervise::Supervisor;
use crate::sys::error::{Error, Result};
use crate::sys::fsx;
use crate::sys::log;
use crate::template::Template;

pub fn wait(sup: &mut Supervisor, cfg: &Config, tmpl: &Template) -> Result<()> {
    for dep in tmpl.dependencies_of(&cfg.container) {
        log::info("waiting for dependency", &[("dependency", dep)]);
        let dir = cfg.ctr_dir(dep);
        let path = dir.join("exitcode");
        let mut warned = false;
        let mut read = || match fsx::read_small(&path, 32) {
            Ok(Some(c)) => parse_exit_code(&c),
            Ok(None) => None,
            Err(e) => {
                if !warned {
                    log::warn(
                        "cannot read dependency exit code yet",
                        &[("dependency", dep), ("error", &e.to_string())],
                    );
                    warned = true;
                }
                None
            }
        };
        let code = sup
            .wait_for(&[&dir], || {
                if let Some(c) = read() {
                    return Some(Some(c));
                }
                if alive::state(&dir) != alive::State::Free {
                    return None;
                }
                // The lock is released only after `exitcode` is written: look once more.
                Some(read())
            })
            .map_err(|t| {
                log::info(
                    "terminated while waiting for dependency",
                    &[("dependency", dep)],
                );
                Error::exit(128 + t.0)
            })?;
        let Some(code) = code else {
            return Err(Error::new(format!(
                "dependency \"{dep}\" died without an exit code (its emissary ended without writing {}) (container {}, template \"{}\")",
                path.display(),
                cfg.container,
                tmpl.display_name()
            )));
        };
        if code != 0 {
            return Err(Error::new(format!(
                "dependency \"{dep}\" exited with non-zero code: {code} (container {}, template \"{}\")",
                cfg.container,
                tmpl.display_name()
            )));
        }
    }
    Ok(())
}

/// A complete exit code: a non-negative integer with optional white space.
fn parse_exit_code(content: &[u8]) -> Option<i32> {
    if content == b"0" || content.trim_ascii() == b"0" {
        return Some(0);
    }
    signalfile::parse(content)
}
