//! `argoexec emissary`: the run of SPEC section 3, in order, each step a call into the module
//! named for it. `steps` goes as far as reading the template; `with_template` does the rest,
//! so every failure after that names the template as well as the container; `finish` writes
//! `exitcode` last.

use std::ffi::OsString;
use std::path::Path;

use crate::capture;
use crate::capture::pty;
use crate::config::Config;
use crate::outputs;
use crate::pod::initless;
use crate::run::alive;
use crate::run::args;
use crate::run::deadline;
use crate::run::deps;
use crate::run::lookup::{self, LookupError};
use crate::run::pause;
use crate::run::retry::Strategy;
use crate::run::signalfile::SignalFile;
use crate::run::spawn::{self, Output};
use crate::run::supervise::{Sidecar, Supervisor};
use crate::sys::error::{Error, Result};
use crate::sys::fsx;
use crate::sys::log;
use crate::sys::signals::SigSet;
use crate::template::{self, Template};

/// Where arguments too large for `execve` are written (upstream's place, SPEC step 3).
const OFFLOAD_DIR: &str = "/tmp";

/// Runs the user command `argv` and returns the process exit code, having written `exitcode`.
/// `mask` is the signal mask the process started with (step 1 happened in `main`).
pub fn run(cfg: &Config, mask: SigSet, argv: Vec<OsString>) -> i32 {
    let (result, watch) = match Supervisor::new() {
        Ok(mut sup) => (steps(cfg, mask, &mut sup, argv), sup.into_watch()),
        Err(e) => (
            Err(Error::new(format!("failed to set up signal handling: {e}"))),
            None,
        ),
    };
    let code = finish(cfg, result.map_err(|e| e.whose(&cfg.container, None)));
    // Closed after `exitcode`: closing an inotify instance waits for the kernel to tear its
    // watches down (up to ~15 ms measured here).
    drop(watch);
    code
}

/// Steps 2 to 11; the exit code of the run, or why it failed.
fn steps(cfg: &Config, mask: SigSet, sup: &mut Supervisor, mut argv: Vec<OsString>) -> Result<i32> {
    // 2. umask 0, inherited by the child as upstream; our own folder, 0777.
    let dir = prepare_dir(cfg)?;
    // Held until the process ends, after `exitcode`: a neighbour seeing it free with no
    // `exitcode` knows this container died (SPEC 3.8 "alive").
    if let Err(e) = alive::hold_for_life(&dir) {
        log::warn(
            "cannot hold the alive lock: if this container dies, its neighbours will not know",
            &[("error", &e.to_string())],
        );
    }

    // 3. Arguments: the offloaded args file, and arguments too large for execve.
    if let Some(file) = &cfg.args_file {
        args::append_from_file(&mut argv, file)?;
        args::offload_large(&mut argv, Path::new(OFFLOAD_DIR))?;
    }

    // Init-less pods: the supervisor must be ready before the template is read (SPEC 7).
    if cfg.wait_for_ready {
        initless::wait_ready(sup, &cfg.root)?;
    }

    // 4. The template.
    let raw = template::read(
        &cfg.root,
        cfg.template_env.as_deref(),
        Path::new(crate::config::OFFLOADED_TEMPLATE),
    )?;
    let tmpl = Template::parse(&raw)?;
    with_template(cfg, mask, sup, &argv, &dir, &tmpl)
        .map_err(|e| e.whose(&cfg.container, Some(tmpl.display_name())))
}

/// Steps 5 to 11, once the template is known.
fn with_template(
    cfg: &Config,
    mask: SigSet,
    sup: &mut Supervisor,
    argv: &[OsString],
    dir: &Path,
    tmpl: &Template,
) -> Result<i32> {
    if cfg.wait_for_ready && cfg.container == "main" {
        initless::stage_inputs(tmpl, Path::new(initless::INPUTS_DIR))?;
    }

    // 5. ContainerSet dependencies.
    deps::wait(sup, cfg, tmpl)?;

    // 6. The command, on PATH.
    let path = resolve(cfg, tmpl, &argv[0])?;

    // 7. Debug pause before.
    if cfg.pause_before {
        pause::wait(sup, &dir.join("before")).map_err(|t| Error::exit(128 + t.0))?;
    }

    // 8. Attempts.
    let (code, captured) = attempts(cfg, tmpl, sup, mask, &path, argv, dir)?;

    // 9. Debug pause after: a termination signal ends it, the code stays the child's.
    if cfg.pause_after {
        let _ = pause::wait(sup, &dir.join("after"));
    }

    // 10 and 11. The exit code is the child's; outputs are saved whatever it was.
    if cfg.container == "main" {
        let grace = std::time::Duration::from_secs(cfg.grace_secs);
        outputs::save(&cfg.root, tmpl, &mut deadline::Clock::new(grace))?;
    } else {
        log::info("not saving outputs - not main container", &[]);
    }
    captured?;
    Ok(code)
}

pub(crate) fn prepare_dir(cfg: &Config) -> Result<std::path::PathBuf> {
    // SAFETY: umask only changes this process's file creation mask, and cannot fail.
    unsafe { libc::umask(0) };
    // The root is ours (the volume's mount point); below it, one level at a time, so a link
    // planted at `ctr` is caught before anything is made through it.
    fsx::mkdir_all(&cfg.root, 0o777)
        .map_err(|e| Error::io("failed to create ctr directory", cfg.root.display(), e))?;
    for d in ctr_dirs(cfg) {
        fsx::make_real_dir(&d, 0o777)
            .map_err(|e| Error::new(format!("failed to create ctr directory: {e}")))?;
    }
    Ok(cfg.own_dir())
}

/// `ROOT/ctr` and `ROOT/ctr/C`: both must be real folders, since a neighbour's link there
/// would have every file of ours written outside the root.
fn ctr_dirs(cfg: &Config) -> [std::path::PathBuf; 2] {
    [cfg.root.join("ctr"), cfg.own_dir()]
}

fn real_dir(d: &Path) -> Result<()> {
    if fsx::is_real_dir(d) {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{} is not a real folder (a link?); refusing to write through it",
            d.display()
        )))
    }
}

pub(crate) fn resolve(cfg: &Config, tmpl: &Template, cmd: &OsString) -> Result<std::path::PathBuf> {
    let path_var = std::env::var_os("PATH");
    let name = cmd.to_string_lossy();
    let whose = format!(
        "(container {}, template \"{}\")",
        cfg.container,
        tmpl.display_name()
    );
    lookup::resolve(cmd, path_var.as_deref()).map_err(|e| match e {
        LookupError::NotFound => Error::new(format!(
            "failed to find name in PATH: exec: \"{name}\": executable file not found in $PATH {whose}"
        )),
        LookupError::NotExecutable(p) => Error::new(format!(
            "failed to find name in PATH: exec: \"{}\": permission denied: not an executable file {whose}",
            p.display()
        )),
    })
}

/// Runs the attempts of the retry strategy; returns the last exit code and whether the capture
/// was complete across all of them. An attempt whose command could not be started counts as a
/// failed attempt (SPEC step 8: retried, unless it was one of step 6's lookup errors); when
/// the last attempt is such a one, its reason is the run's (64).
pub(crate) fn attempts(
    cfg: &Config,
    tmpl: &Template,
    sup: &mut Supervisor,
    mask: SigSet,
    path: &Path,
    argv: &[OsString],
    dir: &Path,
) -> Result<(i32, Result<()>)> {
    let strategy = Strategy::from_template(tmpl)?;
    let capturing = cfg.include_script_output || tmpl.archive_logs();
    let mut sigfile = SignalFile::new(dir.join("signal"));
    let mut sidecar = tmpl.is_sidecar(&cfg.container).then(|| {
        let mains = tmpl
            .main_container_names()
            .iter()
            .map(|m| cfg.ctr_dir(m).join("exitcode"))
            .collect();
        Sidecar::new(mains, std::time::Duration::from_secs(cfg.grace_secs))
    });
    // A container with `tty: true`: the child runs on a pty of its own; ours goes raw meanwhile.
    let tty = pty::stdin_is_tty();
    let _raw = if tty { pty::RawMode::enter() } else { None };
    let mut captured = Ok(());
    let mut last: Option<Result<i32>> = None;
    for n in 1..=strategy.attempts {
        if n > 1 {
            // A start failure reads no signal: one may be waiting unread.
            if sup.terminated.is_some() || deadline::termination_pending() {
                break;
            }
            log::info("retrying", &[("attempt", &n.to_string())]);
            if sup.sleep(strategy.pause).is_err() {
                break;
            }
        }
        if capturing {
            log::info("capturing logs", &[]);
        }
        let (pid, capture) =
            match start_attempt(capturing, tty, sidecar.is_some(), dir, path, argv, mask) {
                Ok(started) => started,
                Err(f) if f.permanent => return Err(f.error),
                Err(f) => {
                    if let Some(msg) = &f.error.msg {
                        log::warn("failed to start command", &[("error", msg)]);
                    }
                    last = Some(Err(f.error));
                    continue;
                }
            };
        let outcome = sup.attempt(pid, capture, &mut sigfile, sidecar.as_mut());
        // Upstream's key and text: the Go error of the wait, `<nil>` for success.
        let status = match outcome.code {
            0 => "<nil>".to_string(),
            c => format!("exit status {c}"),
        };
        log::info("sub-process exited", &[("error", &status)]);
        match outcome.capture {
            Err(e) if sidecar.is_some() => sidecar_trouble(&e),
            c if captured.is_ok() => captured = c,
            _ => {}
        }
        last = Some(Ok(outcome.code));
        let stopped = sup.terminated.is_some() || sidecar.as_ref().is_some_and(Sidecar::fired);
        if outcome.code == 0 || stopped {
            break;
        }
    }
    let code = match (last, sup.terminated) {
        (Some(Ok(c)), _) => c,
        (Some(Err(e)), _) => return Err(e),
        (None, Some(sig)) => 128 + sig,
        (None, None) => crate::sys::error::EXIT_FAILURE,
    };
    Ok((code, captured))
}

/// Sets up the child's output (capture pipes, a pty) and starts the command: its pid and the
/// copy threads. Every failure here may pass on another attempt but the lookup errors. A
/// sidecar whose capture cannot be set up runs without it (`sidecar_trouble`).
fn start_attempt(
    capturing: bool,
    tty: bool,
    sidecar: bool,
    dir: &Path,
    path: &Path,
    argv: &[OsString],
    mask: SigSet,
) -> std::result::Result<(i32, Option<capture::Capture>), spawn::StartFailure> {
    let open_pty =
        || pty::open().map_err(|e| Error::new(format!("failed to open a pseudo-terminal: {e}")));
    let (capture, output) = if tty {
        let (master, slave) = open_pty()?;
        match capture::start_tty(capturing.then_some(dir), master) {
            Ok(c) => (Some(c), Output::Tty(slave)),
            Err(e) if sidecar && capturing => {
                sidecar_trouble(&e);
                // The failed start took the first pty's master with it.
                let (master, slave) = open_pty()?;
                (Some(capture::start_tty(None, master)?), Output::Tty(slave))
            }
            Err(e) => return Err(e.into()),
        }
    } else if capturing {
        match capture::start(dir) {
            Ok((c, ends)) => (Some(c), Output::Pipes(ends.stdout, ends.stderr)),
            Err(e) if sidecar => {
                sidecar_trouble(&e);
                (None, Output::Inherit)
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        (None, Output::Inherit)
    };
    match spawn::start(path, argv, mask, output) {
        Ok(pid) => Ok((pid, capture)),
        Err(e) => {
            if let Some(c) = capture {
                let _ = c.finish();
            }
            Err(e)
        }
    }
}

/// A sidecar's own trouble (capture files, console) is a warning, never 64 (SPEC 3.8): a
/// sidecar's 64 would fail the whole step.
fn sidecar_trouble(e: &Error) {
    log::warn(
        "sidecar: capture failed, going on without it",
        &[("error", e.msg.as_deref().unwrap_or("unknown"))],
    );
}

/// Step 12: reports a failure, writes `exitcode` last and returns the same code.
pub fn finish(cfg: &Config, result: Result<i32>) -> i32 {
    let code = match result {
        Ok(code) => {
            if code != 0 {
                // As upstream's command line does for a failed child.
                log::write_stderr(format!("Error: exit status {code}\n").as_bytes());
            }
            code
        }
        Err(e) => {
            if let Some(msg) = &e.msg {
                report(cfg, msg);
            }
            e.code
        }
    };
    write_exitcode(cfg, code)
}

/// Writes `ctr/C/exitcode` (temporary file + rename); returns `code`, or 64 when it could not.
pub(crate) fn write_exitcode(cfg: &Config, code: i32) -> i32 {
    let file = cfg.own_dir().join("exitcode");
    let [ctr, own] = ctr_dirs(cfg);
    let written = real_dir(&ctr).and_then(|()| real_dir(&own)).and_then(|()| {
        fsx::write_atomic(&file, code.to_string().as_bytes(), 0o644)
            .map_err(|e| Error::new(e.to_string()))
    });
    if let Err(e) = written {
        let msg = format!("failed to write exit code to {}: {e}", file.display());
        report(cfg, &msg);
        return crate::sys::error::EXIT_FAILURE;
    }
    code
}

/// A usage error of `emissary`: still writes `exitcode` where the root is writable.
pub fn usage_failure(cfg: &Config, err: Error) -> i32 {
    let _ = prepare_dir(cfg);
    finish(cfg, Err(err))
}

/// `Error: <reason>` on stderr and the reason in the termination log, best effort.
fn report(cfg: &Config, msg: &str) {
    log::write_stderr(format!("Error: {msg}\n").as_bytes());
    if let Err(e) = write_termination_log(&cfg.termination_log, msg) {
        log::debug(
            "cannot write termination log",
            &[
                ("path", &cfg.termination_log.to_string_lossy()),
                ("error", &e.to_string()),
            ],
        );
    }
}

/// Kubernetes bind-mounts this file, so it is written in place, not replaced.
fn write_termination_log(path: &Path, msg: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        // A FIFO with no reader fails at once rather than holding up the exit code.
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    f.write_all(msg.as_bytes())
}
