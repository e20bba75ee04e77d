//! `argoexec init` (stand-alone) and init-less pods' ready wait (SPEC sections 6 and 7).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn init_copies_binary_and_writes_template() {
    let r = Root::new();
    std::fs::remove_file(r.path("template")).unwrap();
    let tmpl = r#"{"name":"t","outputs":{}}"#;
    let mut c = r.cmd();
    c.arg("init").env("ARGO_TEMPLATE", tmpl);
    let o = run(c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(r.read("template"), tmpl);
    assert_eq!(mode(&r.path("template")), 0o444);
    assert_eq!(mode(&r.path("argoexec")), 0o555);
    assert_eq!(
        std::fs::read(r.path("argoexec")).unwrap(),
        std::fs::read(bin()).unwrap(),
        "the copy is this binary"
    );
    // The copy runs.
    let mut c = std::process::Command::new(r.path("argoexec"));
    c.arg("version");
    let o = run(c);
    assert_eq!(code(&o), 0);
}

#[test]
fn init_replaces_a_running_copy() {
    // Upstream issue #13222: init re-run while main runs the copy gave "text file busy".
    let r = Root::new();
    let mut c = r.cmd();
    c.arg("init").env("ARGO_TEMPLATE", "{}");
    assert_eq!(code(&run(c)), 0);
    let mut running = std::process::Command::new(r.path("argoexec"))
        .args(["emissary", "--", "sleep", "5"])
        .env("ARGOEXEC_VAR_RUN_ARGO", &r.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut c = r.cmd();
    c.arg("init").env("ARGO_TEMPLATE", "{}");
    let o = run(c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    running.kill().unwrap();
    running.wait().unwrap();
}

#[test]
fn init_refuses_missing_or_bad_template() {
    let r = Root::new();
    let mut c = r.cmd();
    c.arg("init");
    let o = run(c);
    assert_eq!(code(&o), 64);
    assert!(stderr(&o).contains("ARGO_TEMPLATE"));
    let mut c = r.cmd();
    c.arg("init").env("ARGO_TEMPLATE", "{nope");
    assert_eq!(code(&run(c)), 64);
}

#[test]
fn init_is_delegated_with_upstream() {
    let r = Root::new();
    let script = r.path("up.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"up:$*\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = r.cmd();
    c.args(["init", "--loglevel", "info"])
        .env("ARGOEXEC_UPSTREAM", &script);
    let o = run(c);
    assert_eq!(code(&o), 0);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "up:init --loglevel info\n"
    );
    assert!(!r.exists("argoexec"), "ours did nothing");
}

fn ready_run(r: &Root) -> std::process::Command {
    let mut c = r.emissary(&["sh", "-c", "exit 4"]);
    c.env("ARGO_WAIT_FOR_READY", "true");
    c
}

#[test]
fn initless_ready_later() {
    let r = Root::new();
    let status = r.path("status");
    std::fs::write(&status, "RUNNING\n").unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(status, "READY\n").unwrap();
    });
    let start = Instant::now();
    let o = run(ready_run(&r));
    writer.join().unwrap();
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[test]
fn initless_failed() {
    let r = Root::new();
    r.write("status", "FAILED\nartifact download timeout\n");
    let o = run(ready_run(&r));
    assert_eq!(code(&o), 65);
    assert_eq!(r.exitcode("main"), "65");
    assert!(
        stderr(&o).contains("artifact download timeout"),
        "{}",
        stderr(&o)
    );
    assert!(r
        .read("termination-log")
        .contains("artifact download timeout"));
}

#[test]
fn initless_stale_heartbeat() {
    let r = Root::new();
    r.write("status", "RUNNING\n");
    let old = std::fs::File::options()
        .write(true)
        .open(r.path("status"))
        .unwrap();
    old.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let o = run(ready_run(&r));
    assert_eq!(code(&o), 65);
    assert!(stderr(&o).contains("presumed dead"), "{}", stderr(&o));
}

#[test]
fn initless_never_appears() {
    let r = Root::new();
    let start = Instant::now();
    let o = run(ready_run(&r));
    assert_eq!(code(&o), 65);
    assert!(stderr(&o).contains("never appeared"));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(29) && took < Duration::from_secs(40),
        "{took:?}"
    );
}

#[test]
fn initless_sigterm_while_waiting() {
    let r = Root::new();
    let child = ready_run(&r)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || r.exists("ctr/main")));
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: signalling the process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 143);
    assert_eq!(r.exitcode("main"), "143");
}
