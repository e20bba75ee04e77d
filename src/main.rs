//! argoexec: the emissary that runs as PID 1 in every user container of an Argo workflow pod.
//!
//! `main` takes over the signals before anything else (SPEC section 3 step 1), then hands the
//! command line to the subcommand it names.
//!
//! The C `main` is ours (`no_main`): std's start-up would reopen closed fds 0-2 on `/dev/null`
//! and abort when an image has no `/dev/null`, before we could block a single signal. We do
//! that repair ourselves, after the signals, and never abort over it.

// Unit tests keep std's own `main`: it is the test harness.
#![cfg_attr(not(test), no_main)]

mod capture;
mod cli;
mod config;
mod emissary;
mod outputs;
mod plugin_sidecar;
mod pod;
mod run;
mod sys;
mod template;

use std::ffi::{OsStr, OsString};

use cli::Command;
use config::Config;
use pod::{init, kill, upstream};
use sys::{error, log, signals};

#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    // Step 1: before any thread exists, so every thread inherits the mask.
    let mask = match signals::block_all() {
        Ok(m) => m,
        Err(e) => {
            log::write_stderr(format!("Error: failed to block signals: {e}\n").as_bytes());
            std::process::exit(error::EXIT_FAILURE);
        }
    };
    fill_standard_fds();
    // SAFETY: argc and argv are what the C runtime passed to main: argc valid C strings.
    let argv = unsafe { args_from_c(argc, argv) };
    std::process::exit(dispatch(&argv, mask));
}

/// Runs the subcommand `argv` names; returns the process exit code.
// Unit-test builds have no C `main` to call this.
#[cfg_attr(test, allow(dead_code))]
fn dispatch(argv: &[OsString], mask: signals::SigSet) -> i32 {
    let cfg = Config::from_env();
    let argv0 = argv
        .first()
        .map_or(OsStr::new("argoexec"), |a| a.as_os_str());
    match cli::parse(argv.iter().skip(1).cloned().collect()) {
        Ok(Command::Emissary(logging, user_argv)) => {
            start_logging(&cfg, logging, "emissary");
            emissary::run(&cfg, mask, user_argv)
        }
        Ok(Command::PluginSidecar(logging, user_argv)) => {
            start_logging(&cfg, logging, "artifact-plugin-sidecar");
            plugin_sidecar::run(&cfg, mask, user_argv)
        }
        Ok(Command::Kill(sig, pid)) => report(kill::run(&sig, &pid)),
        Ok(Command::Init(parsed)) => init(&cfg, argv, argv0, parsed, &mask),
        Ok(Command::Version { short }) => {
            if short {
                // Upstream's shape: `argoexec: v4.1.2`.
                log::write_stdout(
                    concat!("argoexec: ", env!("CARGO_PKG_VERSION"), "\n").as_bytes(),
                );
            } else {
                // `argoexec 0.1.0 x86_64-unknown-linux-musl commit 0123abcd`, made by build.rs.
                log::write_stdout(concat!(env!("ARGOEXEC_VERSION_LINE"), "\n").as_bytes());
            }
            0
        }
        Ok(Command::Help) => {
            log::write_stdout(cli::USAGE.as_bytes());
            0
        }
        Ok(Command::Delegate) => report(Err(upstream::delegate(&cfg, argv, &mask))),
        Err(e) if wraps_a_command(argv) => emissary::usage_failure(&cfg, e),
        Err(e) => report(Err(e)),
    }
}

/// Whether `argv` runs `emissary` or `artifact-plugin-sidecar`, whose usage errors still write
/// `exitcode` (SPEC section 8).
#[cfg_attr(test, allow(dead_code))]
fn wraps_a_command(argv: &[OsString]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "emissary" || a == "artifact-plugin-sidecar")
}

/// Level, format and shape for the run's own lines (the shape from the upstream version
/// `init` left in the shared folder), then the first line naming both versions.
#[cfg_attr(test, allow(dead_code))]
fn start_logging(cfg: &Config, logging: cli::Logging, command: &str) {
    log::configure(logging.level, logging.json);
    let version = upstream::read_version(&cfg.root);
    if let Some(v) = &version {
        log::set_shape(log::Shape::for_version(v));
    }
    log::announce(command, version.as_deref());
}

/// `init`: handed to upstream's `init` with the same argv when upstream's binary is found
/// (after leaving what the pod's other containers need from us); the stand-alone init
/// otherwise.
#[cfg_attr(test, allow(dead_code))]
fn init(
    cfg: &Config,
    argv: &[OsString],
    argv0: &OsStr,
    parsed: error::Result<Option<cli::Logging>>,
    mask: &signals::SigSet,
) -> i32 {
    match upstream::find(cfg, argv0) {
        Ok(up) => {
            // Our own few lines follow the flags when they parse; upstream judges them.
            if let Ok(Some(l)) = &parsed {
                log::configure(l.level, l.json);
            }
            let version = upstream::version_of(&up, mask);
            if let Some(v) = &version {
                log::set_shape(log::Shape::for_version(v));
            }
            log::announce("init", version.as_deref());
            if let Err(e) = upstream::prepare_init(cfg, &up, version.as_deref()) {
                return report(Err(e));
            }
            let rest = argv.get(1..).unwrap_or(&[]);
            report(Err(upstream::exec(&up, argv0, rest, mask, "init")))
        }
        Err(_) => match parsed {
            Ok(Some(l)) => {
                log::configure(l.level, l.json);
                log::announce("init", None);
                report(init::run(cfg, argv0))
            }
            Ok(None) => {
                log::write_stdout(cli::USAGE.as_bytes());
                0
            }
            Err(e) => report(Err(e)),
        },
    }
}

/// Builds the argument vector from C's `argv`.
#[cfg_attr(test, allow(dead_code))]
///
/// # Safety
/// `argv` must hold `argc` valid NUL-terminated strings.
unsafe fn args_from_c(argc: libc::c_int, argv: *const *const libc::c_char) -> Vec<OsString> {
    use std::os::unix::ffi::OsStrExt;
    (0..argc.max(0) as usize)
        .map(|i| {
            // SAFETY: i < argc, and each entry is a valid C string (caller's contract).
            let s = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(s.to_bytes()).to_os_string()
        })
        .collect()
}

#[cfg_attr(test, allow(dead_code))]
/// Gives each closed fd among 0, 1 and 2 a harmless file, so that no file we open later takes
/// its number and receives what is meant for the console. `/dev/null` when the image has one,
/// otherwise an `O_PATH` descriptor of `/`, on which reads and writes simply fail.
fn fill_standard_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 {
            continue;
        }
        // SAFETY: open with constant NUL-terminated paths; the lowest free fd is `fd`, since
        // the lower ones are open by now.
        let filled = unsafe {
            libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) >= 0
                || libc::open(c"/".as_ptr(), libc::O_PATH) >= 0
        };
        if !filled {
            // Nothing left to try; the run goes on with the fd closed.
            return;
        }
    }
}

/// Prints `Error: <reason>` for a failed subcommand and gives its exit code.
fn report(r: error::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            log::write_stderr(format!("Error: {e}\n").as_bytes());
            e.code
        }
    }
}

/// musl's `pthread_setname_np` formats a `/proc` path with `snprintf`, which links all of
/// printf (7 KiB) into the static binary for a cosmetic thread name that std's spawn may set.
/// We name no threads, so this stand-in, which the linker takes before musl's, does nothing.
#[cfg(all(target_env = "musl", not(test)))]
#[no_mangle]
extern "C" fn pthread_setname_np(
    _thread: libc::pthread_t,
    _name: *const libc::c_char,
) -> libc::c_int {
    0
}
