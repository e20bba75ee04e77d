//! The supervision loop under faults (issue "nothing can hold a step"): the signal state the
//! process starts from, every signal 1-64 sent from outside, a main container that dies
//! without `exitcode` beside a dependant and a sidecar, the loop's wake-ups beside busy
//! captures, a sidecar's broken capture, and a node whose inotify budget is spent.
//!
//! Every run is bounded: a regression fails with a timeout instead of hanging, and every
//! process a test starts is killed when the test ends, however it ends.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Kills the processes (and process groups) it names when dropped, so a failing test leaves
/// nothing running.
#[derive(Default)]
struct Reaper(Vec<i32>);

impl Reaper {
    fn add(&mut self, pid: i32) {
        self.0.push(pid);
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for &p in &self.0 {
            // SAFETY: kill has no memory effects; stale pids of ours are at worst ESRCH.
            unsafe {
                libc::kill(-p, libc::SIGKILL);
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
}

/// Starts `c` with stdout and stderr each given `out()`, and has `reaper` kill it if the test
/// ends first.
fn spawn_with(mut c: Command, reaper: &mut Reaper, out: fn() -> Stdio) -> Child {
    let child = c
        .stdout(out())
        .stderr(out())
        .spawn()
        .expect("starting argoexec");
    reaper.add(child.id() as i32);
    child
}

/// Starts `c` with its output thrown away, for children that write more than a pipe holds.
fn spawn_quiet(c: Command, reaper: &mut Reaper) -> Child {
    spawn_with(c, reaper, Stdio::null)
}

fn spawn(c: Command, reaper: &mut Reaper) -> Child {
    spawn_with(c, reaper, Stdio::piped)
}

/// Waits for `child` at most `limit`; kills it and fails the test when it takes longer.
fn wait_limited(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    loop {
        match child.try_wait().expect("waiting") {
            Some(_) => return child.wait_with_output().expect("collecting output"),
            None if start.elapsed() >= limit => {
                let _ = child.kill();
                let o = child.wait_with_output().expect("collecting output");
                panic!(
                    "{what}: still running after {limit:?}; stderr: {}",
                    stderr(&o)
                );
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {pid} {sig}");
}

/// The direct children of `pid`.
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn first_child(pid: i32) -> i32 {
    let mut found = None;
    assert!(
        wait_until(Duration::from_secs(5), || {
            found = children(pid).first().copied();
            found.is_some()
        }),
        "no child of {pid}"
    );
    found.unwrap()
}

/// A field of `/proc/PID/task/TID/status` (the main thread when tid == pid).
fn status_field(pid: i32, tid: i32, field: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Waits until every thread of `pid` blocks every signal but KILL and STOP: a signal sent to
/// the process must reach the loop's signalfd, never a thread's default action or a handler.
/// (A glibc build's copy threads start with 32 and 33 unblocked, for a moment.)
fn wait_all_threads_block_everything(pid: i32) {
    let want: u64 = !((1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1)));
    let mut masks = Vec::new();
    let ok = wait_until(Duration::from_secs(5), || {
        masks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                    .map(|tid| {
                        status_field(pid, tid, "SigBlk")
                            .and_then(|v| u64::from_str_radix(&v, 16).ok())
                            .unwrap_or(0)
                    })
                    .collect()
            })
            .unwrap_or_default();
        !masks.is_empty() && masks.iter().all(|&m| m == want)
    });
    assert!(ok, "threads of {pid} with signals unblocked: {masks:016x?}");
}

/// A hexadecimal mask of the main thread's status (`SigBlk`, `ShdPnd`), 0 when unreadable.
fn hex_field(pid: i32, field: &str) -> u64 {
    status_field(pid, pid, field)
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0)
}

/// How often the main thread of `pid` has blocked: one per wake-up of the supervision loop.
fn wakeups(pid: i32) -> Option<u64> {
    status_field(pid, pid, "voluntary_ctxt_switches")?
        .parse()
        .ok()
}

/// How many inotify instances `pid` holds.
fn inotify_instances(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|l| l.to_string_lossy() == "anon_inode:inotify")
                .count()
        })
        .unwrap_or(0)
}

/// Every signal 1-64 blocked, by the system call itself (libc's wrappers keep some out).
fn block_everything() -> std::io::Result<()> {
    let all: u64 = !0;
    // SAFETY: an 8-byte mask, as the kernel reads it; no old mask wanted.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn sigchld_ignored_at_start_still_ends() {
    let r = Root::new();
    let mut c = r.emissary(&["sh", "-c", "exit 3"]);
    // SAFETY: only signal(2) between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::signal(libc::SIGCHLD, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut reaper = Reaper::default();
    let o = wait_limited(spawn(c, &mut reaper), Duration::from_secs(10), "SIG_IGN");
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "3");
}

#[test]
fn every_signal_from_outside_reaches_the_child_and_not_the_emissary() {
    // The emissary starts with every signal blocked and gives that mask back to the child, so
    // each forwarded signal waits in the child's pending set, where it can be counted.
    let r = Root::new();
    let mut c = r.emissary(&["sleep", "60"]);
    // SAFETY: one system call between fork and exec.
    unsafe { c.pre_exec(block_everything) };
    let mut reaper = Reaper::default();
    let child = spawn(c, &mut reaper);
    let pid = child.id() as i32;
    let sleeper = first_child(pid);
    // Past the exec: the sleeper's mask is the one it will keep.
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{sleeper}/comm")).is_ok_and(|c| c.trim() == "sleep")
    }));
    wait_all_threads_block_everything(pid);
    let mut expected: u64 = 0;
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        kill(pid, sig);
        if sig != libc::SIGCHLD {
            expected |= 1 << (sig - 1);
        }
        // Standard signals do not queue: let each be read before the next.
        std::thread::sleep(Duration::from_millis(2));
    }
    // A stop signal removes a pending SIGCONT (and SIGCONT the stop signals): CONT is
    // checked on its own below. glibc unblocks 32 and 33 in every process it starts: those
    // reach a glibc child as their default action, which the real-time test checks.
    let cont = 1u64 << (libc::SIGCONT - 1);
    let all = expected & !cont;
    let (mut pending, mut expected) = (0, 0);
    let all_there = wait_until(Duration::from_secs(5), || {
        expected = all & hex_field(sleeper, "SigBlk");
        pending = hex_field(sleeper, "ShdPnd");
        pending == expected
    });
    assert!(
        all_there,
        "the child's pending signals {pending:016x}, expected {expected:016x} (every signal but KILL, STOP and CHLD)"
    );
    kill(pid, libc::SIGCONT);
    assert!(
        wait_until(Duration::from_secs(5), || hex_field(sleeper, "ShdPnd")
            & cont
            != 0),
        "SIGCONT not forwarded"
    );
    // SAFETY: a null signal only checks existence.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the emissary died");
    kill(sleeper, libc::SIGKILL);
    let o = wait_limited(child, Duration::from_secs(5), "after every signal");
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "137");
}

#[test]
fn real_time_signals_libc_keeps_for_itself_are_forwarded() {
    // musl keeps 32-34 out of sigfillset; the emissary died of them (rc 162 for 34).
    let mut reaper = Reaper::default();
    let runs: Vec<(i32, Root, Child)> = [32, 33, 34, 64, libc::SIGSEGV, libc::SIGPIPE]
        .into_iter()
        .map(|sig| {
            let r = Root::new();
            let mut c = r.cmd();
            c.args(["emissary", "--loglevel", "debug", "--", "sleep", "30"]);
            // Capture on: the copy threads must not take a signal meant for the loop.
            c.env("ARGO_INCLUDE_SCRIPT_OUTPUT", "true");
            let child = spawn(c, &mut reaper);
            (sig, r, child)
        })
        .collect();
    for (sig, _, child) in &runs {
        let pid = child.id() as i32;
        let sleeper = first_child(pid);
        assert!(wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(format!("/proc/{sleeper}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
        }));
        wait_all_threads_block_everything(pid);
        kill(pid, *sig);
    }
    for (sig, r, child) in runs {
        let o = wait_limited(child, Duration::from_secs(5), &format!("signal {sig}"));
        assert_eq!(
            o.status.code(),
            Some(128 + sig),
            "signal {sig}: the child dies of it, the emissary reports it: {}",
            stderr(&o)
        );
        assert_eq!(r.exitcode("main"), (128 + sig).to_string());
    }
}

const SET_TEMPLATE: &str = r#"{"name":"set","containerSet":{"containers":[{"name":"main"},{"name":"dep","dependencies":["main"]}]},"sidecars":[{"name":"side"}]}"#;

fn container(r: &Root, name: &str, args: &[&str]) -> Command {
    let mut c = r.emissary(args);
    c.env("ARGO_CONTAINER_NAME", name);
    c
}

#[test]
fn main_killed_without_exitcode_ends_its_dependant_and_sidecar() {
    let r = Root::with_template(SET_TEMPLATE);
    let mut reaper = Reaper::default();
    let main = spawn(container(&r, "main", &["sleep", "60"]), &mut reaper);
    let main_pid = main.id() as i32;
    let sleeper = first_child(main_pid);
    reaper.add(sleeper);
    let dep = spawn(container(&r, "dep", &["sh", "-c", "exit 0"]), &mut reaper);
    let side = spawn(container(&r, "side", &["sleep", "60"]), &mut reaper);
    first_child(side.id() as i32);
    assert!(wait_until(Duration::from_secs(5), || r.exists("ctr/main/alive")));
    // Both waiters are past their first moments and asleep on inotify.
    std::thread::sleep(Duration::from_millis(500));
    kill(main_pid, libc::SIGKILL);
    let killed = Instant::now();
    let o = wait_limited(dep, Duration::from_secs(3), "the dependant");
    let dep_took = killed.elapsed();
    assert_eq!(code(&o), 64, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("\"main\"") && err.contains("died without an exit code"),
        "{err}"
    );
    assert_eq!(r.exitcode("dep"), "64");
    let o = wait_limited(side, Duration::from_secs(3), "the sidecar");
    let side_took = killed.elapsed();
    assert_eq!(code(&o), 143, "{}", stderr(&o));
    assert!(
        dep_took < Duration::from_secs(2),
        "dependant took {dep_took:?}"
    );
    assert!(
        side_took < Duration::from_secs(2),
        "sidecar took {side_took:?}"
    );
    assert!(!r.exists("ctr/main/exitcode"));
    let _ = main.wait_with_output();
}

#[test]
fn a_container_not_started_yet_is_not_dead() {
    // No alive lock in ctr/main (not started, or upstream's emissary): the dependant waits on.
    let r = Root::with_template(SET_TEMPLATE);
    let mut reaper = Reaper::default();
    let dep = spawn(container(&r, "dep", &["sh", "-c", "exit 0"]), &mut reaper);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(children(dep.id() as i32).is_empty());
    assert!(!r.exists("ctr/dep/exitcode"), "the dependant gave up");
    // A finished main (its lock free, its exitcode there) lets it go on.
    let o = wait_limited(
        spawn(container(&r, "main", &["true"]), &mut reaper),
        Duration::from_secs(5),
        "main",
    );
    assert_eq!(code(&o), 0);
    let o = wait_limited(dep, Duration::from_secs(3), "the dependant");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// A child that writes a line every millisecond or so for about `secs` seconds.
fn writer(secs: u32) -> String {
    format!(
        "end=$(($(date +%s) + {secs})); while [ $(date +%s) -lt $end ]; do \
         i=0; while [ $i -lt 50 ]; do echo line $i; echo err $i >&2; i=$((i+1)); done; \
         sleep 0.01; done"
    )
}

/// Samples the wake-ups of `pid`'s main thread until it ends; returns the last value seen.
fn last_wakeups(pid: i32, child: &mut Child) -> u64 {
    let mut last = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(n) = wakeups(pid) {
            last = n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    last
}

#[test]
fn a_busy_capture_does_not_wake_its_own_loop() {
    let r = Root::new();
    let mut reaper = Reaper::default();
    let mut child = spawn_quiet(r.emissary(&["sh", "-c", &writer(3)]), &mut reaper);
    let pid = child.id() as i32;
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        inotify_instances(pid) <= 1,
        "more than one inotify instance"
    );
    let n = last_wakeups(pid, &mut child);
    let took = start.elapsed();
    let o = wait_limited(child, Duration::from_secs(10), "writer");
    assert_eq!(code(&o), 0);
    let lines = r.read("ctr/main/stdout").lines().count();
    assert!(lines > 1000, "the writer wrote only {lines} lines");
    // 20 ms looks for 200 ms, then one a second, the child's exit: about 15. Every write
    // woke it before (thousands).
    assert!(n < 40, "{n} wake-ups in {took:?} for {lines} lines");
}

#[test]
fn a_neighbours_busy_capture_does_not_wake_an_idle_sidecar() {
    let r = Root::with_template(r#"{"sidecars":[{"name":"side"}]}"#);
    let mut reaper = Reaper::default();
    let mut side = spawn(container(&r, "side", &["sleep", "60"]), &mut reaper);
    let side_pid = side.id() as i32;
    first_child(side_pid);
    std::thread::sleep(Duration::from_millis(400));
    let before = wakeups(side_pid).unwrap();
    let main = spawn_quiet(
        container(&r, "main", &["sh", "-c", &writer(3)]),
        &mut reaper,
    );
    let o = wait_limited(main, Duration::from_secs(10), "main");
    assert_eq!(code(&o), 0);
    let lines = r.read("ctr/main/stdout").lines().count();
    assert!(lines > 1000, "main wrote only {lines} lines");
    let during = last_wakeups(side_pid, &mut side).saturating_sub(before);
    let o = wait_limited(side, Duration::from_secs(3), "sidecar");
    assert_eq!(code(&o), 143, "{}", stderr(&o));
    assert!(
        during < 30,
        "{during} wake-ups of the sidecar for {lines} lines of main"
    );
}

#[test]
fn a_sidecars_broken_capture_is_a_warning_not_64() {
    let r = Root::with_template(r#"{"sidecars":[{"name":"side"}]}"#);
    // A folder where the capture file should be: it cannot be opened for appending.
    std::fs::create_dir_all(r.path("ctr/side/stdout")).unwrap();
    let mut reaper = Reaper::default();
    let o = wait_limited(
        spawn(
            container(&r, "side", &["sh", "-c", "echo hello; exit 5"]),
            &mut reaper,
        ),
        Duration::from_secs(10),
        "sidecar",
    );
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert_eq!(r.exitcode("side"), "5");
    assert!(stderr(&o).contains("level=WARN"), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\n");
    // The same trouble in a main container is the step's failure.
    std::fs::create_dir_all(r.path("ctr/main/stdout")).unwrap();
    let o = wait_limited(
        spawn(container(&r, "main", &["sh", "-c", "exit 5"]), &mut reaper),
        Duration::from_secs(10),
        "main",
    );
    assert_eq!(code(&o), 64, "{}", stderr(&o));
}

/// A uid no one else on the machine uses, whose inotify instances the tests may spend.
const SPENT_UID: u32 = 4243;

#[test]
fn no_inotify_to_be_had_backs_off_and_still_sees_the_signal_file() {
    let mut reaper = Reaper::default();
    // A process of that uid holding every inotify instance it can get.
    let mut holder = Command::new("sleep");
    holder.arg("60").uid(SPENT_UID).gid(SPENT_UID);
    // SAFETY: only inotify_init1 between fork and exec; the descriptors survive the exec.
    unsafe {
        holder.pre_exec(|| {
            let mut n = 0;
            while libc::inotify_init1(0) >= 0 {
                n += 1;
                if n > 100_000 {
                    break;
                }
            }
            Ok(())
        });
    }
    let mut holder = holder.spawn().expect("starting the holder");
    reaper.add(holder.id() as i32);
    assert!(wait_until(Duration::from_secs(5), || inotify_instances(
        holder.id() as i32
    ) > 0));

    let r = Root::new();
    std::fs::set_permissions(&r.dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut c = r.emissary(&["sleep", "60"]);
    c.uid(SPENT_UID).gid(SPENT_UID);
    let mut child = spawn(c, &mut reaper);
    let pid = child.id() as i32;
    first_child(pid);
    std::thread::sleep(Duration::from_millis(300));
    let before = wakeups(pid).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let during = wakeups(pid).unwrap() - before;
    assert_eq!(
        inotify_instances(pid),
        0,
        "the test did not spend the budget"
    );
    // A 20 ms tick woke it 150 times in 3 s; the backoff settles at one a second.
    assert!(during < 20, "{during} wake-ups in 3 s without inotify");
    r.write("ctr/main/signal", "15");
    let sent = Instant::now();
    while child.try_wait().unwrap().is_none() && sent.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = sent.elapsed();
    let o = wait_limited(child, Duration::from_secs(1), "signal file");
    assert_eq!(code(&o), 143, "{}", stderr(&o));
    assert!(
        took < Duration::from_millis(1500),
        "signal file seen after {took:?}"
    );
    let _ = holder.kill();
    let _ = holder.wait();
}

/// Runs `sleep 30` under the emissary, lets its wait arm inotify, then asks for `sig` through
/// the signal file with `deliver`; returns how long the exit took and the exit code.
fn signal_file_reaction(deliver: impl Fn(&Root, &str)) -> (Duration, i32) {
    let r = Root::new();
    let mut reaper = Reaper::default();
    let mut child = spawn(r.emissary(&["sleep", "30"]), &mut reaper);
    first_child(child.id() as i32);
    // Well past the 200 ms of 20 ms looks: only an inotify event is faster than the 1 s net.
    std::thread::sleep(Duration::from_millis(700));
    let sent = Instant::now();
    deliver(&r, "15");
    while child.try_wait().unwrap().is_none() && sent.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = sent.elapsed();
    let o = wait_limited(child, Duration::from_secs(1), "signal file");
    (took, code(&o))
}

#[test]
fn the_signal_file_wakes_the_loop_written_in_place_or_renamed() {
    let (took, rc) = signal_file_reaction(|r, s| r.write("ctr/main/signal", s));
    assert_eq!(rc, 143);
    assert!(took < Duration::from_millis(600), "in place: {took:?}");
    let (took, rc) = signal_file_reaction(|r, s| {
        r.write("ctr/main/.signal.tmp", s);
        std::fs::rename(r.path("ctr/main/.signal.tmp"), r.path("ctr/main/signal")).unwrap();
    });
    assert_eq!(rc, 143);
    assert!(took < Duration::from_millis(600), "renamed: {took:?}");
}
