//! `argoexec artifact-plugin-sidecar -- CMD ARGS...` (SPEC section 1): an artifact plugin's
//! server, run in the plugin's own image beside the wait container, as upstream v4.1's
//! `cmd/argoexec/commands/artifact_plugin_sidecar.go` runs it.
//!
//! An emissary with an empty template: no template read, no dependencies, pauses, retries or
//! outputs, capture only when `ARGO_INCLUDE_SCRIPT_OUTPUT=true`. SIGTERM is received but not
//! forwarded: the plugin must outlive the kubelet's SIGTERM while the wait container still
//! saves artifacts through it, and only the signal file (which the wait container writes when
//! it is done) stops it. Every other signal is forwarded as the emissary forwards them.
//! `exitcode` holds the plugin's code, written last; the process itself exits 0 once the plugin
//! ran, as upstream's does (so a plugin stopped through its signal file does not show as a
//! failed container), and 64 with `exitcode` 64 when it could not start it.

use std::ffi::OsString;

use crate::config::Config;
use crate::emissary;
use crate::run::supervise::Supervisor;
use crate::sys::error::{Error, Result};
use crate::sys::log;
use crate::sys::signals::SigSet;
use crate::template::Template;

/// Runs the plugin `argv` and returns the process exit code, having written `exitcode`.
pub fn run(cfg: &Config, mask: SigSet, argv: Vec<OsString>) -> i32 {
    match steps(cfg, mask, &argv) {
        Ok(code) => match emissary::write_exitcode(cfg, code) {
            // The file holds the plugin's code; the container succeeds.
            c if c == code => 0,
            failed => failed,
        },
        Err(e) => emissary::finish(cfg, Err(e.whose(&cfg.container, None))),
    }
}

fn steps(cfg: &Config, mask: SigSet, argv: &[OsString]) -> Result<i32> {
    let mut sup = Supervisor::new()
        .map_err(|e| Error::new(format!("failed to set up signal handling: {e}")))?;
    sup.not_forwarded = &[libc::SIGTERM];
    let dir = emissary::prepare_dir(cfg)?;
    let tmpl = Template::parse(b"{}")?;
    let cmd = argv
        .first()
        .ok_or_else(|| Error::new("artifact-plugin-sidecar: no command given after --"))?;
    let path = emissary::resolve(cfg, &tmpl, cmd)?;
    let (code, captured) = emissary::attempts(cfg, &tmpl, &mut sup, mask, &path, argv, &dir)?;
    log::info("artifact plugin sidecar command exited", &[]);
    if let Err(e) = captured {
        // Like a sidecar's, the plugin's own capture trouble is a warning, never a failure.
        log::warn(
            "the capture of the plugin's output is incomplete",
            &[("error", &e.to_string())],
        );
    }
    Ok(code)
}
