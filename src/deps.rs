//! ContainerSet dependencies: wait for each dependency's `exitcode`, in order (SPEC section 3
//! step 5).
//!
//! The file may be written in place by an upstream emissary, so empty or unparsable content
//! means "not yet", never an error; it is read without following links or blocking on a FIFO.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::fsx;
use crate::log;
use crate::signalfile;
use crate::supervise::Supervisor;
use crate::template::Template;

pub fn wait(sup: &mut Supervisor, cfg: &Config, tmpl: &Template) -> Result<()> {
    for dep in tmpl.dependencies_of(&cfg.container) {
        log::info("waiting for dependency", &[("dependency", dep)]);
        let dir = cfg.ctr_dir(dep);
        let path = dir.join("exitcode");
        let mut warned = false;
        let code = sup
            .wait_for(&[&dir], || match fsx::read_small(&path, 32) {
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
            })
            .map_err(|t| {
                log::info(
                    "terminated while waiting for dependency",
                    &[("dependency", dep)],
                );
                Error::exit(128 + t.0)
            })?;
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
