//! Black-box tests of the supervision loop at rest: once inotify watches, a running attempt has
//! no timer (no wake-up while nothing happens), and what used to need the timer still happens:
//! the signal file, a sidecar's grace-period SIGKILL, a main container's death seen by its
//! sidecar, and a watched folder removed and made again.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A field of /proc/PID/task/PID/status (the main thread: the supervision loop).
fn status_field(pid: u32, field: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

fn wakeups(pid: u32) -> u64 {
    status_field(pid, "voluntary_ctxt_switches")
        .and_then(|v| v.parse().ok())
        .expect("voluntary_ctxt_switches")
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Waits at most `limit` for `child`; kills it and fails when it takes longer.
fn wait_limited(mut child: Child, limit: Duration, what: &str) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            return st.code().unwrap_or(128 + st.signal().unwrap_or(0));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes main's signal file (15, whole, by a rename): `child` must end with 143 within half a
/// second.
fn assert_signal_file_stops_it_at_once(r: &Root, child: Child) {
    let t = Instant::now();
    r.write("ctr/main/signal.tmp", "15");
    std::fs::rename(r.path("ctr/main/signal.tmp"), r.path("ctr/main/signal")).unwrap();
    assert_eq!(wait_limited(child, Duration::from_secs(5), "emissary"), 143);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
}

/// An idle step with capture on: after its first second (the early ticks, then inotify
/// armed), three seconds without a single wake-up of the loop; then the signal file still
/// stops it at once.
#[test]
fn an_idle_attempt_has_no_timer_and_still_sees_the_signal_file() {
    let r = Root::new();
    let child = spawn(r.emissary(&["sleep", "60"]));
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(1000));
    let before = wakeups(pid);
    std::thread::sleep(Duration::from_millis(3000));
    let after = wakeups(pid);
    assert!(
        after - before <= 1,
        "{} wake-ups in 3 s of nothing",
        after - before
    );
    assert_signal_file_stops_it_at_once(&r, child);
}

/// A sidecar whose child ignores SIGTERM: after main's `exitcode`, the SIGKILL still comes
/// when the grace period is over, though the loop has no tick.
#[test]
fn a_sidecars_grace_period_ends_without_a_tick() {
    let r = Root::with_template(r#"{"sidecars":[{"name":"side"}]}"#);
    let mut c = r.emissary(&["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"]);
    c.env("ARGO_CONTAINER_NAME", "side")
        .env("ARGO_TERMINATION_GRACE_PERIOD_SECONDS", "2");
    let side = spawn(c);
    std::thread::sleep(Duration::from_millis(700));
    let t = Instant::now();
    r.write("ctr/main/exitcode.tmp", "0");
    std::fs::rename(r.path("ctr/main/exitcode.tmp"), r.path("ctr/main/exitcode")).unwrap();
    let code = wait_limited(side, Duration::from_secs(10), "sidecar");
    assert_eq!(code, 137);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3500),
        "SIGKILL after {took:?}, grace 2 s"
    );
}

/// The signal file's folder removed and made again while an attempt waits: the lost watch
/// (IN_IGNORED) re-arms it, so a signal file written afterwards is still seen.
#[test]
fn a_removed_and_remade_folder_is_watched_again() {
    let r = Root::new();
    let child = spawn(r.emissary(&["sleep", "60"]));
    std::thread::sleep(Duration::from_millis(700));
    // The capture files live there: move them aside rather than lose the step's output.
    std::fs::rename(r.path("ctr/main"), r.path("ctr/main.old")).unwrap();
    std::fs::remove_dir_all(r.path("ctr/main.old")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::create_dir_all(r.path("ctr/main")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_signal_file_stops_it_at_once(&r, child);
}
