//! Everything the emissary reads from its environment, read once at start (README lists each).

use std::env;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

pub const DEFAULT_ROOT: &str = "/var/run/argo";
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";
pub const OFFLOADED_TEMPLATE: &str = "/argo/config/ARGO_TEMPLATE";

#[derive(Debug, Clone)]
pub struct Config {
    /// `/var/run/argo`, or `ARGOEXEC_VAR_RUN_ARGO`.
    pub root: PathBuf,
    /// `/dev/termination-log`, or `ARGOEXEC_TERMINATION_LOG`.
    pub termination_log: PathBuf,
    /// `ARGO_CONTAINER_NAME`, default `main`.
    pub container: String,
    /// `ARGO_INCLUDE_SCRIPT_OUTPUT=true`.
    pub include_script_output: bool,
    /// `ARGO_DEBUG_PAUSE_BEFORE=true`, `ARGO_DEBUG_PAUSE_AFTER=true`.
    pub pause_before: bool,
    pub pause_after: bool,
    /// `ARGO_CONTAINER_ARGS_FILE`.
    pub args_file: Option<PathBuf>,
    /// `ARGO_TERMINATION_GRACE_PERIOD_SECONDS` when a positive integer, else 30.
    pub grace_secs: u64,
    /// `ARGO_WAIT_FOR_READY=true` (init-less pods).
    pub wait_for_ready: bool,
    /// `ARGO_TEMPLATE`, as bytes: a value that is not UTF-8 is still a template, refused or
    /// read by the JSON reader like a template file, never taken as "not set".
    pub template_env: Option<Vec<u8>>,
    /// `ARGOEXEC_UPSTREAM`: the upstream binary other subcommands are handed to.
    pub upstream: Option<PathBuf>,
}

fn non_empty(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

fn is_true(name: &str) -> bool {
    env::var_os(name).is_some_and(|v| v == "true")
}

impl Config {
    pub fn from_env() -> Config {
        Config {
            root: non_empty("ARGOEXEC_VAR_RUN_ARGO")
                .map_or_else(|| DEFAULT_ROOT.into(), Into::into),
            termination_log: non_empty("ARGOEXEC_TERMINATION_LOG")
                .map_or_else(|| DEFAULT_TERMINATION_LOG.into(), Into::into),
            container: non_empty("ARGO_CONTAINER_NAME").unwrap_or_else(|| "main".into()),
            include_script_output: is_true("ARGO_INCLUDE_SCRIPT_OUTPUT"),
            pause_before: is_true("ARGO_DEBUG_PAUSE_BEFORE"),
            pause_after: is_true("ARGO_DEBUG_PAUSE_AFTER"),
            args_file: non_empty("ARGO_CONTAINER_ARGS_FILE").map(Into::into),
            grace_secs: non_empty("ARGO_TERMINATION_GRACE_PERIOD_SECONDS")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(30),
            wait_for_ready: is_true("ARGO_WAIT_FOR_READY"),
            template_env: env::var_os("ARGO_TEMPLATE").map(OsString::into_vec),
            upstream: non_empty("ARGOEXEC_UPSTREAM").map(Into::into),
        }
    }

    /// `ROOT/ctr/<name>`.
    pub fn ctr_dir(&self, name: &str) -> PathBuf {
        self.root.join("ctr").join(name)
    }

    /// `ROOT/ctr/C`, this container's folder.
    pub fn own_dir(&self) -> PathBuf {
        self.ctr_dir(&self.container)
    }
}
