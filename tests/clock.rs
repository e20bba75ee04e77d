//! Black-box tests of the kubelet's kill clock and the retry, destination, template and `kill`
//! fixes that came with it (SPEC sections 2, 3 steps 4, 8 and 11, 5; issues 11 and 12):
//! - after a termination signal, saving outputs stops in time to write `exitcode` before the
//!   SIGKILL that follows the grace period; the unfinished `.tgz` is removed and named;
//! - a command that could not be started (text file busy, a refused fork) is retried;
//! - an unparsable `retries` or `duration` is refused before any attempt;
//! - outputs land where upstream's wait container reads them (`/tmp/d//`, `../out/r.json`);
//! - a non-UTF-8 `ARGO_TEMPLATE` is read, not taken for missing;
//! - `kill` prints `killing ...` only once its arguments are valid, as upstream.
//!
//! Each waits with a time limit, so a regression fails instead of hanging.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

// ---- helpers ----

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A running emissary whose stderr is gathered by a thread as it comes.
struct Running {
    child: Child,
    err: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(mut c: Command) -> Running {
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("starting argoexec");
        let err = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&err);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                let mut e = sink.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        Running {
            child,
            err,
            reader: Some(reader),
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits up to `limit` for a stderr line containing `what`.
    fn wait_for_line(&self, what: &str, limit: Duration) -> bool {
        wait_until(limit, || self.stderr().contains(what))
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory effects.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Plays the kubelet: waits until `kill_at`, then SIGKILLs. Returns the status and
    /// whether the process had ended by itself before that.
    fn kill_at(&mut self, kill_at: Instant) -> (ExitStatus, bool) {
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                self.join();
                return (st, true);
            }
            if Instant::now() >= kill_at {
                self.signal(libc::SIGKILL);
                let st = self.child.wait().unwrap();
                self.join();
                return (st, false);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits up to `limit` for the end (SIGKILL then, and a failure).
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let (st, by_itself) = self.kill_at(Instant::now() + limit);
        assert!(
            by_itself,
            "still running after {limit:?}: {}",
            self.stderr()
        );
        st
    }

    fn join(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every file below `dir` (folders left out), relative.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(files_below(&p).into_iter().map(|f| format!("{name}/{f}")));
        } else {
            out.push(name);
        }
    }
    out.sort();
    out
}

/// A folder holding several GB of incompressible data while costing 32 MiB of disk: one file
/// of random bytes and 100 hard links to it (each is archived as a file of its own).
fn big_tree(at: &Path) {
    fs::create_dir_all(at).unwrap();
    let mut random = Vec::new();
    fs::File::open("/dev/urandom")
        .unwrap()
        .take(32 << 20)
        .read_to_end(&mut random)
        .unwrap();
    fs::write(at.join("f000"), &random).unwrap();
    for i in 1..=100 {
        fs::hard_link(at.join("f000"), at.join(format!("f{i:03}"))).unwrap();
    }
}

/// The deadline tests measure time: one at a time, so they do not slow each other down.
static SERIAL: Mutex<()> = Mutex::new(());

/// The grace period the deadline tests give (ARGO_TERMINATION_GRACE_PERIOD_SECONDS): the
/// test sends SIGKILL this long after the first TERM, as the kubelet would.
const GRACE: Duration = Duration::from_secs(3);

/// A root whose template saves, in order: parameter `p` (small), artifact `big` (several
/// GB, level 1), artifact `small`. Returns the root and the source folder.
fn saving_root() -> (Root, PathBuf) {
    let r = Root::new();
    let src = r.path("src");
    big_tree(&src.join("big"));
    fs::write(src.join("p"), "param").unwrap();
    fs::write(src.join("small"), "small").unwrap();
    let t = json!({"outputs": {
        "parameters": [{"name": "p", "valueFrom": {"path": s(&src.join("p"))}}],
        "artifacts": [
            {"name": "big", "path": s(&src.join("big")),
             "archive": {"tar": {"compressionLevel": 1}}},
            {"name": "small", "path": s(&src.join("small"))}
        ]
    }});
    r.write("template", &t.to_string());
    (r, src)
}

fn emissary_cmd(r: &Root, args: &[&str]) -> Command {
    let mut c = r.cmd();
    c.env(
        "ARGO_TERMINATION_GRACE_PERIOD_SECONDS",
        GRACE.as_secs().to_string(),
    )
    .arg("emissary")
    .arg("--")
    .args(args);
    c
}

/// The warning lines naming `path`.
fn out_of_time_lines(err: &str, path: &Path) -> Vec<String> {
    err.lines()
        .filter(|l| l.contains("out of time after a termination signal") && l.contains(s(path)))
        .map(String::from)
        .collect()
}

/// Sends `run` a TERM now and, as the kubelet would, SIGKILL `GRACE` later: it must have
/// ended by itself before that with `code`, and `exitcode` must say the same. Its stderr.
fn term_then_kill(run: &mut Running, r: &Root, code: i32) -> String {
    let t0 = Instant::now();
    run.signal(libc::SIGTERM);
    let (st, by_itself) = run.kill_at(t0 + GRACE);
    let took = t0.elapsed();
    let err = run.stderr();
    assert!(by_itself, "SIGKILLed after {took:?}, no exitcode: {err}");
    assert_eq!(st.code(), Some(code), "{err}");
    assert_eq!(r.exitcode("main"), code.to_string());
    err
}

/// The outputs after a save cut in `big`: the parameter saved and nothing else left in
/// `outputs`, the unfinished `big` archive removed and named, `small` named as not started.
fn assert_cut_in_big(err: &str, outputs: &Path, src: &Path) {
    let p_rel = format!("parameters{}", s(&src.join("p")));
    assert_eq!(files_below(outputs), [p_rel], "{err}");
    let big = out_of_time_lines(err, &src.join("big"));
    assert_eq!(big.len(), 1, "{err}");
    assert!(big[0].contains("unfinished=removed"), "{}", big[0]);
    assert_eq!(out_of_time_lines(err, &src.join("small")).len(), 1, "{err}");
}

// ---- the kill clock (SPEC 3 step 11) ----

/// TERM while the child runs, SIGKILL `GRACE` later: the emissary stops saving the
/// multi-GB artifact in time, removes its unfinished `.tgz`, names it and every output not
/// started, and writes `exitcode` (the child's 143) before the SIGKILL.
#[test]
fn term_then_kill_after_grace_with_a_large_artifact() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (r, src) = saving_root();
    let mark = r.path("started");
    let script = format!("touch {}; exec sleep 100", s(&mark));
    let mut run = Running::start(emissary_cmd(&r, &["sh", "-c", &script]));
    assert!(wait_until(Duration::from_secs(10), || mark.exists()));
    let err = term_then_kill(&mut run, &r, 143);
    // The parameter came first and is whole; the big archive was cut and removed; the
    // artifact after it was not started.
    let outputs = r.path("outputs");
    let p_rel = format!("parameters{}", s(&src.join("p")));
    assert_eq!(fs::read(outputs.join(&p_rel)).unwrap(), b"param");
    assert!(err.contains("saving artifact"), "{err}");
    assert_cut_in_big(&err, &outputs, &src);
}

/// The clock starts at the TERM, not when saving starts: a child that takes 2 s to exit
/// after it leaves no time (deadline 1.5 s after the TERM with a 3 s grace period), so
/// nothing is saved and `exitcode` (the child's 7) comes at once. Saving from the child's
/// exit on would be cut by the SIGKILL at 3 s.
#[test]
fn the_clock_starts_at_the_first_term() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (r, src) = saving_root();
    let mark = r.path("started");
    let script = format!(
        "trap 'sleep 2; exit 7' TERM; touch {}; while :; do sleep 0.05; done",
        s(&mark)
    );
    let mut run = Running::start(emissary_cmd(&r, &["sh", "-c", &script]));
    assert!(wait_until(Duration::from_secs(10), || mark.exists()));
    let err = term_then_kill(&mut run, &r, 7);
    assert!(files_below(&r.path("outputs")).is_empty(), "{err}");
    for name in ["p", "big", "small"] {
        assert_eq!(
            out_of_time_lines(&err, &src.join(name)).len(),
            1,
            "{name}: {err}"
        );
    }
    assert!(!err.contains("saving artifact"), "{err}");
}

/// A TERM that arrives while the outputs are being saved (nothing reads the signalfd then)
/// starts the clock too: the save stops, `exitcode` (the child's 0) is written before the
/// SIGKILL `GRACE` later, the unfinished `.tgz` removed and named.
#[test]
fn a_term_during_saving_shortens_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (r, src) = saving_root();
    let mut run = Running::start(emissary_cmd(&r, &["true"]));
    assert!(
        run.wait_for_line("saving artifact", Duration::from_secs(10)),
        "{}",
        run.stderr()
    );
    // Well into the archive, which takes far longer than the grace period.
    std::thread::sleep(Duration::from_millis(300));
    let err = term_then_kill(&mut run, &r, 0);
    assert_cut_in_big(&err, &r.path("outputs"), &src);
}

/// Without a termination signal there is no clock: a save that outlasts the grace period
/// (the child alone takes longer than it) completes.
#[test]
fn no_term_no_clock() {
    let r = Root::new();
    let src = r.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f"), "x".repeat(100_000)).unwrap();
    let t = json!({"outputs": {"artifacts": [{"name": "d", "path": s(&src.join("d"))}]}});
    r.write("template", &t.to_string());
    let mut c = r.cmd();
    c.env("ARGO_TERMINATION_GRACE_PERIOD_SECONDS", "1")
        .args(["emissary", "--", "sleep", "1.2"]);
    let o = run(c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let tgz = format!("outputs/artifacts{}.tgz", s(&src.join("d")));
    assert!(r.path(&tgz).is_file(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("out of time"));
}

// ---- retries (SPEC 3 step 8) ----

fn retry_template(retries: &str, duration: &str) -> String {
    format!(
        r#"{{"containerSet":{{"containers":[{{"name":"main"}}],"retryStrategy":{{"retries":{retries},"duration":"{duration}"}}}}}}"#
    )
}

/// A script still open for writing elsewhere cannot be executed (ETXTBSY): the first attempt
/// fails to start, is retried, and the next one runs once the writer has closed it.
#[test]
fn text_file_busy_then_success_is_retried() {
    let r = Root::with_template(&retry_template("3", "1s"));
    let script = r.path("job.sh");
    let ran = r.path("ran");
    fs::write(&script, format!("#!/bin/sh\necho run >> {}\n", s(&ran))).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    // The writer: holds the script open for writing until the first attempt has failed.
    let writer = fs::OpenOptions::new().append(true).open(&script).unwrap();
    let mut run = Running::start({
        let mut c = r.cmd();
        c.args(["emissary", "--", s(&script)]);
        c
    });
    assert!(
        run.wait_for_line("Text file busy", Duration::from_secs(10)),
        "{}",
        run.stderr()
    );
    drop(writer);
    let st = run.wait(Duration::from_secs(20));
    let err = run.stderr();
    assert_eq!(st.code(), Some(0), "{err}");
    assert_eq!(r.exitcode("main"), "0");
    assert_eq!(
        fs::read_to_string(&ran).unwrap(),
        "run\n",
        "ran exactly once"
    );
    assert!(err.contains("retrying"), "{err}");
}

/// Once a termination signal has come, no further attempt starts, also after an attempt that
/// failed to start (nothing read the signal then): a TERM pending from the start (blocked and
/// sent before exec) and a busy script with retries and no pause give one attempt, then 64.
#[test]
fn no_retry_after_a_termination_signal() {
    let r = Root::with_template(&retry_template("5", "0"));
    let script = r.path("job.sh");
    fs::write(&script, "#!/bin/sh\ntrue\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let _writer = fs::OpenOptions::new().append(true).open(&script).unwrap();
    let py = "import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
os.kill(os.getpid(), signal.SIGTERM)
os.execv(sys.argv[1], sys.argv[1:])";
    // The environment of a plain run, the command wrapped by python.
    let plain = r.cmd();
    let mut c = Command::new("python3");
    c.args(["-c", py])
        .arg(bin())
        .args(["emissary", "--", s(&script)])
        .stdin(Stdio::null());
    copy_env(&plain, &mut c);
    let o = run(c);
    let err = stderr(&o);
    if code(&o) == 1 && err.contains("Traceback") {
        eprintln!("SKIPPED: python3 cannot block signals here: {err}");
        return;
    }
    assert_eq!(code(&o), 64, "{err}");
    assert_eq!(
        err.matches("Text file busy").count(),
        2,
        "one warning, one Error: {err}"
    );
    assert!(!err.contains("retrying"), "{err}");
}

/// A fork refused (RLIMIT_NPROC reached, as a non-root uid) is retried; once the limit is
/// raised from outside, the next attempt runs.
#[test]
fn refused_fork_is_retried() {
    let uid = "61234";
    let probe = Command::new("setpriv")
        .args(["--reuid", uid, "--regid", uid, "--clear-groups", "true"])
        .status();
    if !matches!(probe, Ok(st) if st.success()) {
        eprintln!("SKIPPED: setpriv cannot change uid here");
        return;
    }
    let r = Root::with_template(&retry_template("3", "1s"));
    fs::set_permissions(&r.dir, fs::Permissions::from_mode(0o777)).unwrap();
    let ran = r.path("ran");
    // The binary must be reachable by that uid.
    let reachable = Command::new("setpriv")
        .args(["--reuid", uid, "--regid", uid, "--clear-groups"])
        .arg(bin())
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(reachable, Ok(st) if st.success()) {
        eprintln!("SKIPPED: uid {uid} cannot run {}", bin().display());
        return;
    }
    let mut c2 = Command::new("setpriv");
    c2.args(["--reuid", uid, "--regid", uid, "--clear-groups"])
        // Soft 1, hard above: the same uid may raise its soft limit later without privileges.
        .args(["prlimit", "--nproc=1:4096", "--"])
        .arg(bin())
        .args(["emissary", "--", "sh", "-c"])
        .arg(format!("echo run >> {}", s(&ran)))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("ARGOEXEC_VAR_RUN_ARGO", &r.dir)
        .env("ARGOEXEC_TERMINATION_LOG", r.path("termination-log"))
        .stdin(Stdio::null());
    let mut run = Running::start(c2);
    assert!(
        run.wait_for_line("failed to start command", Duration::from_secs(10)),
        "{}",
        run.stderr()
    );
    // Raised as that uid: a root without CAP_SYS_RESOURCE may not touch another uid's limits.
    let raised = Command::new("setpriv")
        .args([
            "--reuid",
            uid,
            "--regid",
            uid,
            "--clear-groups",
            "prlimit",
            "--pid",
        ])
        .arg(run.pid().to_string())
        .arg("--nproc=4096:4096")
        .status()
        .unwrap();
    assert!(raised.success());
    let st = run.wait(Duration::from_secs(20));
    let err = run.stderr();
    assert_eq!(st.code(), Some(0), "{err}");
    assert_eq!(r.exitcode("main"), "0");
    assert_eq!(fs::read_to_string(&ran).unwrap(), "run\n", "{err}");
    assert!(err.contains("Resource temporarily unavailable"), "{err}");
}

/// The lookup errors of step 6 are never retried, even at exec time: a file that is not an
/// executable format fails once, at once, with 64.
#[test]
fn exec_format_error_is_not_retried() {
    let r = Root::with_template(&retry_template("3", "5s"));
    let junk = r.path("junk");
    fs::write(&junk, [0u8, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    fs::set_permissions(&junk, fs::Permissions::from_mode(0o755)).unwrap();
    let start = Instant::now();
    let o = run({
        let mut c = r.cmd();
        c.args(["emissary", "--", s(&junk)]);
        c
    });
    assert_eq!(code(&o), 64, "{}", stderr(&o));
    assert!(stderr(&o).contains("exec format error"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("retrying"), "{}", stderr(&o));
    assert!(start.elapsed() < Duration::from_secs(4));
}

/// An unparsable or negative duration, and an unparsable retries (a `{{...}}` never
/// substituted), are refused naming them, before any attempt. Upstream refuses the durations
/// the same way (its message: `time: invalid duration "x"`); its unparsable retries runs
/// nothing and exits 0, a difference we chose (README).
#[test]
fn unparsable_duration_or_retries_is_refused() {
    let cases = [
        ("2", "x", "duration \"x\""),
        ("2", "-1s", "duration \"-1s\" has to be positive"),
        ("\"x\"", "1s", "retries \"x\""),
        (
            "\"{{inputs.parameters.n}}\"",
            "",
            "retries \"{{inputs.parameters.n}}\"",
        ),
    ];
    for (retries, duration, said) in cases {
        let t = retry_template(retries, duration);
        let r = Root::with_template(&t);
        let ran = r.path("ran");
        let o = run({
            let mut c = r.cmd();
            c.args(["emissary", "--", "sh", "-c"])
                .arg(format!("echo run >> {}", s(&ran)));
            c
        });
        let err = stderr(&o);
        assert_eq!(code(&o), 64, "{t}: {err}");
        assert_eq!(r.exitcode("main"), "64");
        assert!(err.contains(said), "{t}: {err}");
        assert!(!ran.exists(), "{t}: an attempt ran");
        if retries == "2" {
            if let Some(up) = upstream_reference() {
                let u = Root::with_template(&t);
                let script = format!("echo run >> {}", s(&u.path("ran")));
                let o = run_in(&up, &u, &u.dir, &["sh", "-c", &script]);
                assert_eq!(code(&o), 64, "upstream {t}: {}", stderr(&o));
                assert_eq!(u.exitcode("main"), "64");
                assert!(!u.path("ran").exists(), "upstream {t}: an attempt ran");
            }
        }
    }
}

// ---- destinations (SPEC section 2) ----

/// Runs `bin` as the emissary of container main in `r`, from working directory `cwd`.
fn run_in(bin: &Path, r: &Root, cwd: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(bin);
    c.env("ARGOEXEC_VAR_RUN_ARGO", &r.dir)
        .env("ARGOEXEC_TERMINATION_LOG", r.path("termination-log"))
        .env("ARGO_CONTAINER_NAME", "main")
        .env_remove("ARGO_TEMPLATE")
        .env_remove("ARGO_INCLUDE_SCRIPT_OUTPUT")
        .env_remove("ARGO_CONTAINER_ARGS_FILE")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .arg("emissary")
        .arg("--")
        .args(args);
    common::run(c)
}

/// Where upstream's wait container reads each output (its `GetFileContents` and `CopyFile`:
/// Join then Clean, one trailing `/` off an artifact's path): ours saves exactly there, and
/// upstream's own emissary puts its artifacts at the same places.
#[test]
fn outputs_land_where_the_wait_container_reads_them() {
    let r = Root::new();
    let w = r.path("w");
    let cwd = w.join("cwd");
    fs::create_dir_all(&cwd).unwrap();
    fs::create_dir_all(w.join("out")).unwrap();
    fs::write(w.join("out/r.json"), "{\"r\":1}").unwrap();
    fs::create_dir_all(w.join("d/sub")).unwrap();
    fs::write(w.join("d/sub/f"), "f").unwrap();
    fs::create_dir_all(w.join("a")).unwrap();
    fs::write(w.join("a/g"), "g").unwrap();
    let wd = s(&w).trim_start_matches('/').to_string();
    let t = json!({"outputs": {
        "parameters": [{"name": "r", "valueFrom": {"path": "../out/r.json"}}],
        "artifacts": [
            {"name": "d", "path": format!("{}/d//", s(&w))},
            {"name": "a", "path": format!("{}/a/", s(&w))}
        ]
    }});
    let check = |bin: &Path, who: &str, with_parameter: bool| {
        let r2 = Root::new();
        let mut t = t.clone();
        if !with_parameter {
            t["outputs"]["parameters"] = Value::Array(vec![]);
        }
        r2.write("template", &t.to_string());
        let o = run_in(bin, &r2, &cwd, &["true"]);
        assert_eq!(code(&o), 0, "{who}: {}", stderr(&o));
        let mut want = vec![
            format!("artifacts/{wd}/a.tgz"),
            format!("artifacts/{wd}/d/.tgz"),
        ];
        if with_parameter {
            want.push("out/r.json".into());
        }
        want.sort();
        assert_eq!(files_below(&r2.path("outputs")), want, "{who}");
        if with_parameter {
            assert_eq!(r2.read("outputs/out/r.json"), "{\"r\":1}");
        }
        r2
    };
    check(&bin(), "ours", true);
    // Upstream's emissary concatenates the parameter's path and fails on `../` (unless an
    // earlier output made the folder): compared on the artifacts alone.
    if let Some(up) = upstream_reference() {
        check(&up, "upstream", false);
    }
}

/// Only a destination outside ROOT/outputs is refused.
#[test]
fn destination_outside_outputs_is_refused() {
    let r = Root::new();
    let cwd = r.path("w/a/cwd");
    fs::create_dir_all(&cwd).unwrap();
    fs::write(r.path("w/x"), "outside").unwrap();
    let t = json!({"outputs": {"parameters": [{"name": "x", "valueFrom": {"path": "../../x"}}]}});
    r.write("template", &t.to_string());
    let o = run_in(&bin(), &r, &cwd, &["true"]);
    assert_eq!(code(&o), 64, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("outside the outputs folder"),
        "{}",
        stderr(&o)
    );
    assert!(!r.path("outputs").exists());
    assert!(!r.path("x").exists());
}

// ---- ARGO_TEMPLATE (SPEC 3 step 4) ----

/// A non-UTF-8 ARGO_TEMPLATE is a template, read as bytes: refused by the JSON reader with
/// its reason (as the same bytes in a template file are), never "not available".
#[test]
fn non_utf8_template_env_is_read() {
    use std::os::unix::ffi::OsStrExt;
    let r = Root::new();
    fs::remove_file(r.path("template")).unwrap();
    let mut c = r.cmd();
    c.env(
        "ARGO_TEMPLATE",
        std::ffi::OsStr::from_bytes(b"{\"name\":\"caf\xe9\"}"),
    )
    .args(["emissary", "--", "true"]);
    let o = run(c);
    let err = stderr(&o);
    assert_eq!(code(&o), 64, "{err}");
    assert!(!err.contains("not available"), "{err}");
    assert!(err.contains("invalid UTF-8"), "{err}");
    assert_eq!(r.exitcode("main"), "64");
    // The same bytes in the file: the same reason.
    r.write("template", "");
    fs::write(r.path("template"), b"{\"name\":\"caf\xe9\"}").unwrap();
    let o = run({
        let mut c = r.cmd();
        c.args(["emissary", "--", "true"]);
        c
    });
    assert!(stderr(&o).contains("invalid UTF-8"), "{}", stderr(&o));
    // A valid one through the environment runs.
    fs::remove_file(r.path("template")).unwrap();
    let o = run({
        let mut c = r.cmd();
        c.env("ARGO_TEMPLATE", "{\"name\":\"caf\u{e9}\"}")
            .args(["emissary", "--", "true"]);
        c
    });
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

// ---- kill (SPEC section 1) ----

/// `killing PID with SIG...` is printed once the arguments are valid, before the signal is
/// sent, as upstream's kill.go does: bad arguments print nothing; a process that is gone gets
/// the line, then the error, exit 64, in both.
#[test]
fn kill_prints_killing_only_with_valid_arguments() {
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id().to_string();
    gone.wait().unwrap();
    let mut bins = vec![("ours", bin())];
    if let Some(up) = upstream_reference() {
        bins.push(("upstream", up));
    }
    for (who, b) in &bins {
        for bad in [["15", "abc"], ["15", ""]] {
            let o = Command::new(b).arg("kill").args(bad).output().unwrap();
            assert_eq!(code(&o), 64, "{who} {bad:?}");
            assert!(o.stdout.is_empty(), "{who} {bad:?}: {o:?}");
        }
        let o = Command::new(b).args(["kill", "15", &pid]).output().unwrap();
        assert_eq!(code(&o), 64, "{who}: {o:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.starts_with(&format!("killing {pid} with ")),
            "{who}: {out}"
        );
        assert!(!o.stderr.is_empty(), "{who}: no error");
    }
    // Ours names the signal as SPEC says.
    let o = Command::new(bin())
        .args(["kill", "TERM", &pid])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("killing {pid} with SIGTERM\n")
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such process"));
}

// ---- pre-1970 mtimes (SPEC section 5) ----

/// An artifact with times before 1970 keeps them (a PAX record, as Go writes it), read back
/// alike by Python's tarfile from ours and from upstream's emissary.
#[test]
fn mtimes_before_1970_survive_like_upstream_reference() {
    let r = Root::new();
    let d = r.path("src/old");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("f"), "f").unwrap();
    let set = |p: &Path, secs: i64, nsec: i64| {
        let t = libc::timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        };
        let c = std::ffi::CString::new(s(p)).unwrap();
        // SAFETY: c is a valid path and the array holds two timespecs.
        let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [t, t].as_ptr(), 0) };
        assert_eq!(rc, 0);
    };
    set(&d.join("f"), -1_000_000_000, 700_000_000);
    set(&d, -2, 500_000_000);
    assert_eq!(fs::metadata(d.join("f")).unwrap().mtime(), -1_000_000_000);
    let t = json!({"outputs": {"artifacts": [{"name": "o", "path": s(&d)}]}});
    let py = "import sys, tarfile, json
with tarfile.open(sys.argv[1], 'r:gz') as t:
    print(json.dumps(sorted([m.name, int(m.mtime)] for m in t.getmembers())))";
    let listing = |bin: &Path, who: &str| -> Option<String> {
        let r2 = Root::new();
        r2.write("template", &t.to_string());
        let o = run_in(bin, &r2, &r2.dir, &["true"]);
        assert_eq!(code(&o), 0, "{who}: {}", stderr(&o));
        let tgz = r2.path(&format!("outputs/artifacts{}.tgz", s(&d)));
        let out = Command::new("python3").args(["-c", py]).arg(&tgz).output();
        match out {
            Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
            _ => {
                eprintln!("SKIPPED: python3 cannot read the archive here");
                None
            }
        }
    };
    let Some(ours) = listing(&bin(), "ours") else {
        return;
    };
    let v: Value = serde_json::from_str(&ours).unwrap();
    assert_eq!(v, json!([["old", -1], ["old/f", -999_999_999]]), "{ours}");
    if let Some(up) = upstream_reference() {
        assert_eq!(listing(&up, "upstream").unwrap(), ours);
    }
}
