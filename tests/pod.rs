//! Black-box tests of the parts of the emissary that make a pod more than one container
//! (SPEC section 3 steps 3, 5, 7 to 9): containerSet dependencies, the in-container retry, the
//! debug pause, a sidecar's self-termination and the offloaded arguments.
//!
//! Each test runs the binary against its own temporary root. Timing bounds are generous: the
//! machine running them may be small and loaded.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

// ---- harness ----

/// An emissary running in the background; killed (with its whole group) if the test ends early.
struct Bg {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

/// Starts `c` in the background, stdout and stderr to files beside the root.
fn bg(r: &Root, mut c: Command) -> Bg {
    let base = r.dir.with_extension("bg");
    std::fs::create_dir_all(&base).unwrap();
    let n = std::fs::read_dir(&base).unwrap().count();
    let out = base.join(format!("{n}.out"));
    let err = base.join(format!("{n}.err"));
    c.stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    // Its own process group, so a failed test can take the children down with it.
    use std::os::unix::process::CommandExt;
    c.process_group(0);
    let child = c.spawn().expect("starting argoexec");
    Bg {
        child: Some(child),
        out,
        err,
    }
}

impl Bg {
    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling the process this test started.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    fn running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    fn stderr_now(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits up to `limit` for the exit; panics (after killing it) on timeout.
    fn finish(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > limit {
                kill_group(child.id() as i32);
                let _ = child.wait();
                panic!(
                    "argoexec still running after {limit:?}; stderr:\n{}",
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let o = Output {
            status,
            stdout: std::fs::read(&self.out).unwrap_or_default(),
            stderr: std::fs::read(&self.err).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
        o
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(c.id() as i32);
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
        if let Some(base) = self.out.parent() {
            let _ = std::fs::remove_dir(base);
        }
    }
}

/// SIGKILL to the emissary's group and to the group of its child (which leads its own).
fn kill_group(pid: i32) {
    if let Ok(kids) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        for k in kids
            .split_whitespace()
            .filter_map(|k| k.parse::<i32>().ok())
        {
            // SAFETY: signalling processes this test started.
            unsafe { libc::kill(-k, libc::SIGKILL) };
        }
    }
    // SAFETY: as above; the emissary leads the group `bg` made.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

/// `argoexec emissary -- sh -c script` as container `name`, capture on, none of the pod's
/// variables inherited from the test's environment.
fn em(r: &Root, name: &str, script: &str) -> Command {
    let mut c = r.emissary(&["sh", "-c", script]);
    c.env("ARGO_CONTAINER_NAME", name)
        .env_remove("ARGO_TERMINATION_GRACE_PERIOD_SECONDS")
        .env_remove("ARGO_WAIT_FOR_READY");
    c
}

/// Writes `ROOT/rel` as a writer would that renames a complete file into place.
fn write_atomic(r: &Root, rel: &str, content: &str) {
    let dest = r.path(rel);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let tmp = dest.with_extension("tmp-writer");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, &dest).unwrap();
}

/// `p`, for embedding in a shell script (the test roots hold no quote characters).
fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Waits up to 10 s for `ROOT/rel` to exist.
fn wait_exists(r: &Root, rel: &str) {
    assert!(
        wait_until(Duration::from_secs(10), || r.exists(rel)),
        "{rel} never appeared"
    );
}

/// Checks, for `d`, that the background emissary is still running and that `rel` has not
/// appeared: the wait is really a wait.
fn still_waiting(b: &mut Bg, r: &Root, rel: &str, d: Duration) {
    std::thread::sleep(d);
    assert!(b.running(), "ended early; stderr:\n{}", b.stderr_now());
    assert!(!r.exists(rel), "{rel} appeared while waiting");
}

const TEN_S: Duration = Duration::from_secs(10);

// ---- containerSet dependencies ----

const DEPS: &str = r#"{"name":"cs","containerSet":{"containers":[{"name":"a"},{"name":"b"},{"name":"main","dependencies":["a","b"]}]}}"#;

#[test]
fn deps_wait_for_each_in_order_then_run_promptly() {
    let r = Root::with_template(DEPS);
    let ran = r.path("ran");
    let mut b = bg(&r, em(&r, "main", &format!("echo ran > {}", q(&ran))));
    wait_exists(&r, "ctr/main");
    still_waiting(&mut b, &r, "ran", Duration::from_millis(400));
    // b done first: main still waits for a, the first dependency.
    write_atomic(&r, "ctr/b/exitcode", "0");
    still_waiting(&mut b, &r, "ran", Duration::from_millis(300));
    write_atomic(&r, "ctr/a/exitcode", "0");
    let t0 = Instant::now();
    assert!(wait_until(TEN_S, || r.exists("ctr/main/stdout")));
    let reaction = t0.elapsed();
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "0");
    assert_eq!(r.read("ran"), "ran\n");
    assert!(
        reaction < Duration::from_millis(500),
        "started {reaction:?} after the dependency's exitcode appeared"
    );
    let e = stderr(&o);
    let (wa, wb) = (
        e.find("dependency=a").expect("logs waiting for a"),
        e.find("dependency=b").expect("logs waiting for b"),
    );
    assert!(wa < wb, "a waited for before b:\n{e}");
}

#[test]
fn deps_empty_partial_or_garbage_exitcode_is_not_yet() {
    let r = Root::with_template(
        r#"{"containerSet":{"containers":[{"name":"a"},{"name":"main","dependencies":["a"]}]}}"#,
    );
    let ran = r.path("ran");
    let mut b = bg(&r, em(&r, "main", &format!("touch {}; exit 3", q(&ran))));
    // Written in place, as an upstream emissary does: each state must read as "not yet".
    for content in ["", " ", "\n", "-", "1x", "abc", "0x"] {
        r.write("ctr/a/exitcode", content);
        still_waiting(&mut b, &r, "ran", Duration::from_millis(150));
    }
    r.write("ctr/a/exitcode", " 0\n");
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "3");
    assert!(r.exists("ran"));
}

#[test]
fn deps_non_zero_stops_with_64_naming_dependency_and_code() {
    let r = Root::with_template(DEPS);
    let ran = r.path("ran");
    write_atomic(&r, "ctr/a/exitcode", "0");
    let mut b = bg(&r, em(&r, "main", &format!("touch {}", q(&ran))));
    still_waiting(&mut b, &r, "ran", Duration::from_millis(300));
    write_atomic(&r, "ctr/b/exitcode", "137");
    let t0 = Instant::now();
    let o = b.finish(TEN_S);
    let took = t0.elapsed();
    assert_eq!(code(&o), 64, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "64");
    assert!(!r.exists("ran"), "the command never ran");
    assert!(!r.exists("ctr/main/stdout"), "no attempt was started");
    let e = stderr(&o);
    assert!(
        e.contains("dependency \"b\" exited with non-zero code: 137"),
        "{e}"
    );
    assert!(r.read("termination-log").contains("\"b\""));
    assert!(r.read("termination-log").contains("137"));
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn deps_first_failure_wins_even_when_a_later_one_is_present() {
    let r = Root::with_template(DEPS);
    write_atomic(&r, "ctr/a/exitcode", "2");
    write_atomic(&r, "ctr/b/exitcode", "5");
    let o = run(em(&r, "main", "true"));
    assert_eq!(code(&o), 64);
    assert!(stderr(&o).contains("\"a\""), "{}", stderr(&o));
    assert!(stderr(&o).contains(": 2"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("\"b\" exited"), "{}", stderr(&o));
}

#[test]
fn deps_sigterm_while_waiting_gives_143_at_once() {
    let r = Root::with_template(DEPS);
    let ran = r.path("ran");
    let mut b = bg(&r, em(&r, "main", &format!("touch {}", q(&ran))));
    still_waiting(&mut b, &r, "ran", Duration::from_millis(300));
    let t0 = Instant::now();
    b.signal(libc::SIGTERM);
    let o = b.finish(TEN_S);
    let took = t0.elapsed();
    assert_eq!(code(&o), 143, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "143");
    assert!(!r.exists("ran"));
    assert!(took < Duration::from_millis(1000), "{took:?}");
}

#[test]
fn deps_other_signals_do_not_end_the_wait() {
    let r = Root::with_template(DEPS);
    let mut b = bg(&r, em(&r, "main", "exit 0"));
    still_waiting(&mut b, &r, "ctr/main/exitcode", Duration::from_millis(200));
    b.signal(libc::SIGUSR1);
    b.signal(libc::SIGWINCH);
    still_waiting(&mut b, &r, "ctr/main/exitcode", Duration::from_millis(200));
    write_atomic(&r, "ctr/a/exitcode", "0");
    write_atomic(&r, "ctr/b/exitcode", "0");
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn deps_only_of_this_container() {
    // `a` has no dependencies of its own; a container not in the set has none either.
    let r = Root::with_template(DEPS);
    assert_eq!(code(&run(em(&r, "a", "exit 0"))), 0);
    assert_eq!(code(&run(em(&r, "outsider", "exit 4"))), 4);
}

// ---- retries ----

fn retry_template(retries: &str, duration: &str) -> String {
    format!(
        r#"{{"containerSet":{{"containers":[{{"name":"main"}}],"retryStrategy":{{"retries":{retries},"duration":"{duration}"}}}}}}"#
    )
}

/// A script that logs one line per attempt to `stamps` (with a nanosecond time), prints
/// `attempt` to stdout and, a moment later (so `combined` has one order), `oops` to stderr,
/// and exits 7.
fn failing_script(stamps: &Path) -> String {
    format!(
        "date +%s%N >> {0}; echo attempt; sleep 0.05; echo oops >&2; exit 7",
        q(stamps)
    )
}

fn stamps(p: &Path) -> Vec<u128> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

#[test]
fn retries_as_string_with_go_duration_between_attempts() {
    let r = Root::with_template(&retry_template("\"3\"", "300ms"));
    let st = r.path("stamps");
    let t0 = Instant::now();
    let o = run(em(&r, "main", &failing_script(&st)));
    let took = t0.elapsed();
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "7");
    let s = stamps(&st);
    assert_eq!(s.len(), 3, "three attempts in all");
    for w in s.windows(2) {
        let gap = Duration::from_nanos((w[1] - w[0]) as u64);
        assert!(
            gap >= Duration::from_millis(290) && gap < Duration::from_secs(3),
            "pause between attempts {gap:?}"
        );
    }
    assert!(took < Duration::from_secs(8), "{took:?}");
    let e = stderr(&o);
    assert_eq!(count(&e, "capturing logs"), 3, "{e}");
    // Capture files are appended across attempts, byte for byte.
    assert_eq!(r.read("ctr/main/stdout"), "attempt\n".repeat(3));
    assert_eq!(r.read("ctr/main/combined"), "attempt\noops\n".repeat(3));
}

#[test]
fn retries_as_integer_with_compound_duration() {
    let r = Root::with_template(&retry_template("2", "0.1s50ms"));
    let st = r.path("stamps");
    let o = run(em(&r, "main", &failing_script(&st)));
    assert_eq!(code(&o), 7);
    let s = stamps(&st);
    assert_eq!(s.len(), 2);
    let gap = Duration::from_nanos((s[1] - s[0]) as u64);
    assert!(gap >= Duration::from_millis(140), "{gap:?}");
    assert_eq!(count(&stderr(&o), "capturing logs"), 2);
}

#[test]
fn retries_stop_at_the_first_success() {
    let r = Root::with_template(&retry_template("5", "10ms"));
    let st = r.path("stamps");
    let o = run(em(
        &r,
        "main",
        &format!(
            "date +%s%N >> {0}; test $(wc -l < {0}) -ge 2 && {{ echo ok; exit 0; }}; echo no; exit 1",
            q(&st)
        ),
    ));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stamps(&st).len(), 2);
    assert_eq!(r.read("ctr/main/stdout"), "no\nok\n");
    assert_eq!(count(&stderr(&o), "capturing logs"), 2);
}

#[test]
fn retries_a_death_by_signal() {
    let r = Root::with_template(&retry_template("2", "10ms"));
    let st = r.path("stamps");
    let o = run(em(
        &r,
        "main",
        &format!("date +%s%N >> {}; kill -KILL $$", q(&st)),
    ));
    assert_eq!(code(&o), 137);
    assert_eq!(stamps(&st).len(), 2);
}

#[test]
fn retries_zero_or_negative_run_once_with_a_warning() {
    for retries in ["0", "-2", "\"0\""] {
        let r = Root::with_template(&retry_template(retries, "10ms"));
        let st = r.path("stamps");
        let o = run(em(&r, "main", &failing_script(&st)));
        let e = stderr(&o);
        assert_eq!(code(&o), 7, "retries {retries}: {e}");
        assert_eq!(stamps(&st).len(), 1, "retries {retries}: one attempt");
        assert_eq!(count(&e, "capturing logs"), 1, "retries {retries}");
        assert!(
            e.contains("level=WARN"),
            "retries {retries}: a warning: {e}"
        );
        assert!(e.contains("retries"), "retries {retries}: {e}");
        assert_eq!(r.read("ctr/main/stdout"), "attempt\n");
    }
}

/// SPEC 3 step 8: an unparsable `retries` (a `{{...}}` never substituted) or `duration` is
/// refused with 64 naming it, before any attempt.
#[test]
fn retries_or_duration_unparsable_fail_before_any_attempt() {
    let cases = [
        ("\"abc\"", "10ms", "retries"),
        ("\"{{inputs.parameters.n}}\"", "10ms", "retries"),
        ("\"\"", "10ms", "retries"),
        ("1.5", "10ms", "retries"),
        ("true", "10ms", "retries"),
        ("3", "soon", "duration"),
        ("3", "-1s", "duration"),
        ("3", "1", "duration"),
        ("3", "1.s2", "duration"),
    ];
    for (retries, d, named) in cases {
        let r = Root::with_template(&retry_template(retries, d));
        let st = r.path("stamps");
        let o = run(em(&r, "main", &failing_script(&st)));
        let e = stderr(&o);
        assert_eq!(code(&o), 64, "retries {retries} duration {d}: {e}");
        assert_eq!(r.read("ctr/main/exitcode"), "64");
        assert!(!st.exists(), "retries {retries} duration {d}: no attempt");
        assert!(e.contains(named), "retries {retries} duration {d}: {e}");
    }
}

#[test]
fn retries_never_for_a_command_that_is_not_found() {
    let r = Root::with_template(&retry_template("4", "1s"));
    let t0 = Instant::now();
    let o = run(em_cmd(&r, &["no-such-command-for-retry"]));
    assert_eq!(code(&o), 64);
    assert_eq!(r.exitcode("main"), "64");
    let e = stderr(&o);
    assert_eq!(count(&e, "executable file not found"), 1, "{e}");
    assert_eq!(count(&e, "capturing logs"), 0, "{e}");
    assert!(!e.contains("retrying"), "{e}");
    assert!(t0.elapsed() < Duration::from_millis(900), "no pause taken");
}

fn em_cmd(r: &Root, argv: &[&str]) -> Command {
    let mut c = r.emissary(argv);
    c.env_remove("ARGO_TERMINATION_GRACE_PERIOD_SECONDS")
        .env_remove("ARGO_WAIT_FOR_READY");
    c
}

#[test]
fn retries_sigterm_during_the_pause_stops_retrying() {
    let r = Root::with_template(&retry_template("5", "20s"));
    let st = r.path("stamps");
    let b = bg(&r, em(&r, "main", &failing_script(&st)));
    // The first attempt is over once its exit is logged; the emissary then pauses 20 s.
    assert!(wait_until(TEN_S, || b
        .stderr_now()
        .contains("error=\"exit status 7\"")));
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    b.signal(libc::SIGTERM);
    let o = b.finish(TEN_S);
    let took = t0.elapsed();
    assert_eq!(code(&o), 7, "the last attempt's code: {}", stderr(&o));
    assert_eq!(r.exitcode("main"), "7");
    assert_eq!(stamps(&st).len(), 1);
    assert_eq!(count(&stderr(&o), "capturing logs"), 1);
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn retries_none_after_sigterm_during_an_attempt() {
    let r = Root::with_template(&retry_template("4", "10ms"));
    let st = r.path("stamps");
    let ready = r.path("ready");
    let b = bg(
        &r,
        em(
            &r,
            "main",
            &format!(
                "date +%s%N >> {0}; trap 'exit 9' TERM; touch {1}; while :; do sleep 0.05; done",
                q(&st),
                q(&ready)
            ),
        ),
    );
    wait_exists(&r, "ready");
    b.signal(libc::SIGTERM);
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 9, "{}", stderr(&o));
    assert_eq!(stamps(&st).len(), 1, "no attempt after the termination");
}

// ---- debug pause ----

#[test]
fn pause_before_waits_for_the_marker() {
    let r = Root::new();
    let ran = r.path("ran");
    let mut c = em(&r, "main", &format!("touch {}; exit 6", q(&ran)));
    c.env("ARGO_DEBUG_PAUSE_BEFORE", "true");
    let mut b = bg(&r, c);
    wait_exists(&r, "ctr/main");
    still_waiting(&mut b, &r, "ran", Duration::from_millis(500));
    r.write("ctr/main/before", "");
    let t0 = Instant::now();
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "6");
    assert!(r.exists("ran"));
    assert!(t0.elapsed() < Duration::from_millis(1500));
    assert!(r.exists("ctr/main/before"), "the marker is left in place");
}

#[test]
fn pause_before_sigterm_gives_143_and_the_child_never_runs() {
    let r = Root::new();
    let ran = r.path("ran");
    let mut c = em(&r, "main", &format!("touch {}", q(&ran)));
    c.env("ARGO_DEBUG_PAUSE_BEFORE", "true");
    let mut b = bg(&r, c);
    still_waiting(&mut b, &r, "ran", Duration::from_millis(300));
    let t0 = Instant::now();
    b.signal(libc::SIGTERM);
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 143, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "143");
    assert!(!r.exists("ran"));
    assert!(t0.elapsed() < Duration::from_millis(1000));
}

#[test]
fn pause_after_waits_then_keeps_the_childs_code() {
    let r = Root::new();
    let param = r.path("p.txt");
    r.write(
        "template",
        &format!(
            r#"{{"outputs":{{"parameters":[{{"name":"p","valueFrom":{{"path":"{}"}}}}]}}}}"#,
            param.display()
        ),
    );
    let ran = r.path("ran");
    let mut c = em(
        &r,
        "main",
        &format!("printf v > {}; touch {}; exit 5", q(&param), q(&ran)),
    );
    c.env("ARGO_DEBUG_PAUSE_AFTER", "true");
    let mut b = bg(&r, c);
    wait_exists(&r, "ran");
    still_waiting(&mut b, &r, "ctr/main/exitcode", Duration::from_millis(500));
    assert!(!r.exists("outputs"), "outputs are saved after the pause");
    r.write("ctr/main/after", "");
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "5");
    assert_eq!(
        r.read(&format!("outputs/parameters{}", param.display())),
        "v"
    );
}

#[test]
fn pause_after_sigterm_ends_the_wait_and_the_code_stays() {
    let r = Root::new();
    let ran = r.path("ran");
    let mut c = em(&r, "main", &format!("touch {}; exit 5", q(&ran)));
    c.env("ARGO_DEBUG_PAUSE_AFTER", "true");
    let mut b = bg(&r, c);
    wait_exists(&r, "ran");
    still_waiting(&mut b, &r, "ctr/main/exitcode", Duration::from_millis(300));
    let t0 = Instant::now();
    b.signal(libc::SIGTERM);
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "5");
    assert!(t0.elapsed() < Duration::from_millis(1000));
}

#[test]
fn pause_needs_exactly_true() {
    for value in ["1", "TRUE", "True", "yes", "true ", ""] {
        for var in ["ARGO_DEBUG_PAUSE_BEFORE", "ARGO_DEBUG_PAUSE_AFTER"] {
            let r = Root::new();
            let mut c = em(&r, "main", "exit 3");
            c.env(var, value);
            let b = bg(&r, c);
            let o = b.finish(Duration::from_secs(5));
            assert_eq!(code(&o), 3, "{var}={value:?}");
            assert!(!stderr(&o).contains("debug pause"), "{var}={value:?}");
        }
    }
}

#[test]
fn pause_marker_present_from_the_start_does_not_wait() {
    let r = Root::new();
    r.write("ctr/main/before", "");
    r.write("ctr/main/after", "");
    let mut c = em(&r, "main", "exit 2");
    c.env("ARGO_DEBUG_PAUSE_BEFORE", "true")
        .env("ARGO_DEBUG_PAUSE_AFTER", "true");
    let t0 = Instant::now();
    let o = bg(&r, c).finish(TEN_S);
    assert_eq!(code(&o), 2);
    assert!(t0.elapsed() < Duration::from_millis(1500));
}

// ---- sidecars ----

/// A sidecar's command: records a TERM in `log` and exits 0 on it (or, with `ignore`, ignores
/// TERM); exits 7 on USR1; touches `ready` once its traps are set.
fn sidecar_script(r: &Root, ignore: bool) -> String {
    let log = q(&r.path("sidecar.log"));
    let ready = q(&r.path("ready"));
    let on_term = if ignore {
        "trap '' TERM".to_string()
    } else {
        format!("trap 'echo got-term >> {log}; exit 0' TERM")
    };
    format!("{on_term}; trap 'exit 7' USR1; touch {ready}; while :; do sleep 0.05; done")
}

#[test]
fn sidecar_terminated_once_main_has_exited() {
    let r = Root::with_template(r#"{"sidecars":[{"name":"sc"}]}"#);
    let mut b = bg(&r, em(&r, "sc", &sidecar_script(&r, false)));
    wait_exists(&r, "ready");
    still_waiting(&mut b, &r, "ctr/sc/exitcode", Duration::from_millis(400));
    write_atomic(&r, "ctr/main/exitcode", "1");
    let t0 = Instant::now();
    let o = b.finish(TEN_S);
    let took = t0.elapsed();
    assert_eq!(code(&o), 0, "the sidecar's own code: {}", stderr(&o));
    assert_eq!(r.exitcode("sc"), "0");
    assert_eq!(r.read("sidecar.log"), "got-term\n");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(stderr(&o).contains("main container(s) exited"));
}

#[test]
fn sidecar_ignoring_sigterm_is_killed_after_the_grace_period() {
    let r = Root::with_template(r#"{"sidecars":[{"name":"sc"}]}"#);
    let mut c = em(&r, "sc", &sidecar_script(&r, true));
    c.env("ARGO_TERMINATION_GRACE_PERIOD_SECONDS", "1");
    let b = bg(&r, c);
    wait_exists(&r, "ready");
    write_atomic(&r, "ctr/main/exitcode", "0");
    let t0 = Instant::now();
    let o = b.finish(TEN_S);
    let took = t0.elapsed();
    assert_eq!(code(&o), 137, "{}", stderr(&o));
    assert_eq!(r.exitcode("sc"), "137");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "killed {took:?} after main ended"
    );
}

#[test]
fn sidecar_default_grace_is_30s() {
    // Unset, 0 or garbage: 30 s. The sidecar ignoring TERM is still alive after 2 s.
    for grace in [None, Some("0"), Some("abc"), Some("-5")] {
        let r = Root::with_template(r#"{"sidecars":[{"name":"sc"}]}"#);
        let mut c = em(&r, "sc", &sidecar_script(&r, true));
        if let Some(g) = grace {
            c.env("ARGO_TERMINATION_GRACE_PERIOD_SECONDS", g);
        }
        let mut b = bg(&r, c);
        wait_exists(&r, "ready");
        write_atomic(&r, "ctr/main/exitcode", "0");
        assert!(wait_until(TEN_S, || b
            .stderr_now()
            .contains("main container(s) exited")));
        still_waiting(&mut b, &r, "ctr/sc/exitcode", Duration::from_millis(1500));
        b.signal(libc::SIGUSR1);
        let o = b.finish(TEN_S);
        assert_eq!(code(&o), 7, "grace {grace:?}: {}", stderr(&o));
    }
}

#[test]
fn sidecar_waits_for_every_container_set_member() {
    let r = Root::with_template(
        r#"{"containerSet":{"containers":[{"name":"a"},{"name":"b"}]},"sidecars":[{"name":"sc"}]}"#,
    );
    let mut b = bg(&r, em(&r, "sc", &sidecar_script(&r, false)));
    wait_exists(&r, "ready");
    // `main` is not a member here: its exitcode means nothing.
    write_atomic(&r, "ctr/main/exitcode", "0");
    write_atomic(&r, "ctr/a/exitcode", "0");
    still_waiting(&mut b, &r, "sidecar.log", Duration::from_millis(500));
    write_atomic(&r, "ctr/b/exitcode", "3");
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(r.read("sidecar.log"), "got-term\n");
}

#[test]
fn sidecar_an_empty_exitcode_file_counts_as_exited() {
    // Upstream's wait only checks that the file exists.
    let r = Root::with_template(r#"{"sidecars":[{"name":"sc"}]}"#);
    let b = bg(&r, em(&r, "sc", &sidecar_script(&r, false)));
    wait_exists(&r, "ready");
    r.write("ctr/main/exitcode", "");
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn not_a_sidecar_is_never_terminated_by_mains_exit() {
    let r = Root::with_template(r#"{"sidecars":[{"name":"sc"}]}"#);
    let mut b = bg(&r, em(&r, "other", &sidecar_script(&r, false)));
    wait_exists(&r, "ready");
    write_atomic(&r, "ctr/main/exitcode", "0");
    still_waiting(&mut b, &r, "sidecar.log", Duration::from_millis(600));
    r.write("ctr/other/signal", "10"); // SIGUSR1
    let o = b.finish(TEN_S);
    assert_eq!(code(&o), 7);
}

#[test]
fn sidecar_of_a_retried_container_set_still_ends() {
    // The retry strategy of a containerSet applies to its sidecars too (they read the same
    // template). A sidecar killed after main ended is then retried; every attempt must still
    // be terminated, or the pod never ends.
    let r = Root::with_template(
        r#"{"containerSet":{"containers":[{"name":"main"}],"retryStrategy":{"retries":3,"duration":"10ms"}},"sidecars":[{"name":"sc"}]}"#,
    );
    let mut c = em(&r, "sc", &sidecar_script(&r, true));
    c.env("ARGO_TERMINATION_GRACE_PERIOD_SECONDS", "1");
    let b = bg(&r, c);
    wait_exists(&r, "ready");
    write_atomic(&r, "ctr/main/exitcode", "0");
    let o = b.finish(Duration::from_secs(15));
    assert_eq!(code(&o), 137, "{}", stderr(&o));
    assert_eq!(r.exitcode("sc"), "137");
}

// ---- arguments from a file, and large arguments ----

fn args_file(r: &Root, json: &str) -> PathBuf {
    let p = r.path("args.json");
    std::fs::write(&p, json).unwrap();
    p
}

#[test]
fn args_file_is_appended_verbatim() {
    let r = Root::new();
    let f = args_file(&r, r#"["a b", "c\"d", "", "$HOME", "*", "ünï", "--x"]"#);
    let mut c = em_cmd(&r, &["sh", "-c", "printf '[%s]' \"$@\"", "zero", "first"]);
    c.env("ARGO_CONTAINER_ARGS_FILE", &f);
    let o = run(c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        r.read("ctr/main/stdout"),
        "[first][a b][c\"d][][$HOME][*][ünï][--x]"
    );
}

#[test]
fn args_file_empty_array_adds_nothing() {
    let r = Root::new();
    let f = args_file(&r, "[]");
    let mut c = em_cmd(&r, &["sh", "-c", "echo $#"]);
    c.env("ARGO_CONTAINER_ARGS_FILE", &f);
    let o = run(c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(r.read("ctr/main/stdout"), "0\n");
}

#[test]
fn args_file_missing_or_not_a_string_array_is_64() {
    let cases: &[(&str, Option<&str>)] = &[
        ("missing", None),
        ("object", Some(r#"{"a":1}"#)),
        ("numbers", Some("[1,2]")),
        ("mixed", Some(r#"["a",null]"#)),
        ("nested", Some(r#"[["a"]]"#)),
        ("string", Some(r#""a""#)),
        ("not json", Some("a b c")),
        ("empty", Some("")),
        ("truncated", Some(r#"["a","#)),
    ];
    for (what, content) in cases {
        let r = Root::new();
        let f = match content {
            Some(c) => args_file(&r, c),
            None => r.path("no-such-args.json"),
        };
        let ran = r.path("ran");
        let script = format!("touch {}", q(&ran));
        let mut c = em_cmd(&r, &["sh", "-c", &script]);
        c.env("ARGO_CONTAINER_ARGS_FILE", &f);
        let o = run(c);
        let e = stderr(&o);
        assert_eq!(code(&o), 64, "{what}: {e}");
        assert_eq!(r.exitcode("main"), "64", "{what}");
        assert!(!r.exists("ran"), "{what}: the command never ran");
        assert!(e.contains("args"), "{what}: the message says what: {e}");
        assert!(
            e.contains(f.to_str().unwrap()),
            "{what}: names the file: {e}"
        );
    }
}

/// A root outside `/tmp`, for runs that get a private `/tmp` of their own.
fn root_outside_tmp(t: &str) -> Root {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    // The target folder, unless the checkout itself lives under /tmp (CI may clone there).
    let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let base = if target_tmp.starts_with("/tmp") {
        PathBuf::from("/var/tmp")
    } else {
        target_tmp
    };
    let dir = base.join(format!(
        "argoexec-pod-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    assert!(!dir.starts_with("/tmp"), "{}", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let r = Root { dir };
    r.write("template", t);
    r
}

/// `c` run in a new mount namespace with a fresh tmpfs on `/tmp`: whatever it writes there is
/// gone when it ends, and runs of other tests (or other checkouts) cannot collide with it.
/// A program that itself lives under `/tmp` (a checkout there) is copied into `r` first, or
/// the tmpfs would hide it.
fn with_private_tmp(c: Command, r: &Root) -> Command {
    let mut prog = PathBuf::from(c.get_program());
    if prog.starts_with("/tmp") {
        let copy = r.path("argoexec-under-test");
        std::fs::copy(&prog, &copy).unwrap();
        prog = copy;
    }
    let mut w = Command::new("unshare");
    w.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs -o mode=1777 argo-test-tmp /tmp && exec \"$@\"",
        "sh",
    ]);
    w.arg(&prog).args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    w.stdin(Stdio::null());
    w
}

#[test]
fn large_arguments_are_moved_to_tmp_files() {
    let r = root_outside_tmp("{}");
    let big4 = "x".repeat(131_072); // exactly the limit: moved
    let under = "y".repeat(131_071); // one byte less: stays
    let big6: String = (0..200_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let f = args_file(
        &r,
        &serde_json::to_string(&vec!["small", &big4, &under, &big6]).unwrap(),
    );
    let dump = r.path("dump");
    // ARGS (after CMD `sh`): 0 -c, 1 script, 2 name, 3 small, 4 big4, 5 under, 6 big6.
    let script = format!(
        r#"d={d}; mkdir $d; printf '%s\n' "$1" "$2" "${{#3}}" "$4" > $d/args
            for f in /tmp/*; do echo "$f $(stat -c '%a %s' $f)"; done > $d/tmp
            cp /tmp/argo_arg_4.txt $d/4; cp /tmp/argo_arg_6.txt $d/6"#,
        d = q(&dump)
    );
    let mut c = em_cmd(&r, &["sh", "-c", &script, "name"]);
    c.env("ARGO_CONTAINER_ARGS_FILE", &f);
    let o = run(with_private_tmp(c, &r));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        r.read("dump/args"),
        "small\n@/tmp/argo_arg_4.txt\n131071\n@/tmp/argo_arg_6.txt\n"
    );
    assert_eq!(
        r.read("dump/tmp"),
        "/tmp/argo_arg_4.txt 644 131072\n/tmp/argo_arg_6.txt 644 200000\n",
        "only the two files, mode 0644"
    );
    assert!(
        r.read_bytes("dump/4") == big4.as_bytes(),
        "argo_arg_4 bytes"
    );
    assert!(
        r.read_bytes("dump/6") == big6.as_bytes(),
        "argo_arg_6 bytes"
    );
    assert!(
        stderr(&o).contains("Offloaded large argument"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn large_argument_index_counts_command_line_args_first() {
    // The index is among all ARGS, those from the command line included: a file argument
    // right after `sh -c SCRIPT` is index 2.
    let r = root_outside_tmp("{}");
    let big = "z".repeat(300_000);
    let f = args_file(&r, &serde_json::to_string(&vec![&big]).unwrap());
    let out = r.path("out");
    let script = format!(
        "printf '%s %s' \"$0\" \"$(wc -c < /tmp/argo_arg_2.txt)\" > {}",
        q(&out)
    );
    let mut c = em_cmd(&r, &["sh", "-c", &script]);
    c.env("ARGO_CONTAINER_ARGS_FILE", &f);
    let o = run(with_private_tmp(c, &r));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(r.read("out"), "@/tmp/argo_arg_2.txt 300000");
}
