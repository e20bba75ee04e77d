//! Shared harness of the integration tests: a temporary root and runs of the built binary.
//!
//! `ARGOEXEC_BIN` names the binary under test (scripts/test.sh points it at the static musl
//! build); otherwise the one cargo built for this test run is used.

#![allow(dead_code)]

pub mod files;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    match std::env::var_os("ARGOEXEC_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_argoexec")),
    }
}

static N: AtomicU32 = AtomicU32::new(0);

/// A temporary `/var/run/argo`, removed on drop.
pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn new() -> Root {
        Root::with_template("{}")
    }

    pub fn with_template(t: &str) -> Root {
        let dir = std::env::temp_dir().join(format!(
            "argoexec-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let r = Root { dir };
        r.write("template", t);
        r
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        String::from_utf8_lossy(&self.read_bytes(rel)).into_owned()
    }

    pub fn read_bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).symlink_metadata().is_ok()
    }

    /// `argoexec emissary -- args...` with this root and capture on.
    pub fn emissary(&self, args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.arg("emissary").arg("--").args(args);
        c.env("ARGO_INCLUDE_SCRIPT_OUTPUT", "true");
        c
    }

    /// The binary with this root and a termination log inside it, nothing else set.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("ARGOEXEC_VAR_RUN_ARGO", &self.dir)
            .env("ARGOEXEC_TERMINATION_LOG", self.path("termination-log"))
            .env_remove("ARGO_CONTAINER_NAME")
            .env_remove("ARGO_INCLUDE_SCRIPT_OUTPUT")
            .env_remove("ARGO_TEMPLATE")
            .env_remove("ARGO_CONTAINER_ARGS_FILE")
            .env_remove("ARGO_DEBUG_PAUSE_BEFORE")
            .env_remove("ARGO_DEBUG_PAUSE_AFTER")
            .env_remove("ARGOEXEC_UPSTREAM")
            .stdin(Stdio::null());
        c
    }

    /// Runs `sh -c script` under the emissary, capture on.
    pub fn sh(&self, script: &str) -> Output {
        run(self.emissary(&["sh", "-c", script]))
    }

    pub fn exitcode(&self, ctr: &str) -> String {
        self.read(&format!("ctr/{ctr}/exitcode"))
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run(mut c: Command) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c.output().expect("running argoexec")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits up to `limit` for `f` to hold.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Gives `to` the environment `from` sets and removes: another program (upstream's build, a
/// wrapper, a copy of the binary) run as `Root::cmd` would run ours.
pub fn copy_env(from: &Command, to: &mut Command) {
    for (k, v) in from.get_envs() {
        match v {
            Some(v) => to.env(k, v),
            None => to.env_remove(k),
        };
    }
}

/// Upstream's emissary: `$ARGOEXEC_UPSTREAM_REF`, else beside the repository; `None` (said
/// loudly) when it is not there, and the comparison is skipped.
pub fn upstream_reference() -> Option<PathBuf> {
    let p = match std::env::var_os("ARGOEXEC_UPSTREAM_REF") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/upstream-emissary/argoexec-upstream"),
    };
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: upstream's reference emissary not found at {} (set ARGOEXEC_UPSTREAM_REF)",
            p.display()
        );
        None
    }
}

/// The flags upstream's controller puts before `--` on every emissary-family command line.
pub const CONTROLLER_FLAGS: [&str; 6] = [
    "--loglevel",
    "info",
    "--log-format",
    "text",
    "--gloglevel",
    "0",
];
