//! Upstream's executor beside ours (SPEC sections 1 and 6): where its binary is found, what is
//! handed to it (with the very same argv), what `init` leaves for the pod's other containers
//! before handing itself over, and the pod shapes of artifact plugins: the plugin sidecar (ours),
//! the plugin's init (upstream's, reached through the shared folder) and an artifact-GC pod's
//! plugin container (a plain emissary with an empty template).
//!
//! Upstream is played by a shell script that records its argv; our binary is copied into a
//! temporary folder where the script sits beside it as `argoexec-upstream`, as in an executor
//! image (`/bin`), an init-less pod (`/argo-bin/bin`) or the shared folder.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Records `$0` (the path exec'd: a script cannot see the argv[0] it was given) and its
/// arguments, one a line; answers `version --short` as upstream v4.1.2 does.
const STAND_IN: &str = r#"#!/bin/sh
if [ "$1" = version ]; then echo "argoexec: v4.1.2"; exit 0; fi
{ printf '%s\n' "$0"; for a in "$@"; do printf '%s\n' "$a"; done; } > "$RECORD"
exit 7
"#;

fn write_exec(p: &Path, content: &[u8]) {
    let _g = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::write(p, content).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A folder holding a copy of our binary as `argoexec` and, unless `with_upstream` is false,
/// the stand-in as `argoexec-upstream` beside it.
struct Image {
    root: Root,
}

impl Image {
    fn new(with_upstream: bool) -> Image {
        let root = Root::new();
        std::fs::create_dir_all(root.path("bin")).unwrap();
        let ours = std::fs::read(bin()).unwrap();
        write_exec(&root.path("bin/argoexec"), &ours);
        if with_upstream {
            write_exec(&root.path("bin/argoexec-upstream"), STAND_IN.as_bytes());
        }
        Image { root }
    }

    fn argoexec(&self) -> PathBuf {
        self.root.path("bin/argoexec")
    }

    /// Our copy, run by its path, with the shared folder at `ROOT/shared`.
    fn cmd(&self, args: &[&str]) -> Command {
        let c = self.root.cmd();
        let mut x = Command::new(self.argoexec());
        copy_env(&c, &mut x);
        x.env("ARGOEXEC_VAR_RUN_ARGO", self.root.path("shared"))
            .env("RECORD", self.record_path())
            .env_remove("ARGOEXEC_UPSTREAM_VERSION")
            .args(args)
            .stdin(Stdio::null());
        x
    }

    fn record_path(&self) -> PathBuf {
        self.root.path("record")
    }

    /// The stand-in's `$0` and arguments, one a line.
    /// What the stand-in records when `args` are handed over to it unchanged: its `$0`, the
    /// upstream binary's path in the image, then the arguments.
    fn handed_over(&self, args: &[&str]) -> Vec<String> {
        let mut want = vec![self
            .root
            .path("bin/argoexec-upstream")
            .to_string_lossy()
            .into_owned()];
        want.extend(strings(args));
        want
    }

    fn record(&self) -> Vec<String> {
        std::fs::read_to_string(self.record_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn shared(&self, rel: &str) -> PathBuf {
        self.root.path(&format!("shared/{rel}"))
    }
}

/// Held while this test process writes an executable or starts a process: a file open for
/// writing in one thread would otherwise be inherited by a child another thread forks, and an
/// exec of it ("text file busy") fail until that child's own exec closes it.
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn spawn(c: &mut Command) -> Child {
    let _g = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    c.spawn().expect("starting argoexec")
}

fn run(mut c: Command) -> std::process::Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    spawn(&mut c).wait_with_output().expect("running argoexec")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---- where upstream is found ----

#[test]
fn found_beside_our_executable_and_given_the_same_argv() {
    let img = Image::new(true);
    for args in [
        &[
            "wait",
            "--loglevel",
            "info",
            "--proxy-url",
            "http://p",
            "--future-flag",
        ][..],
        &["resource", "create", "/tmp/manifest.yaml"],
        &["artifact", "delete", "--log-format", "JSON"],
        &["supervisor"],
        &["completion", "bash"],
        &["data"],
        &["agent"],
        // An artifact plugin's init container, in the plugin's own image, runs our copy in the
        // shared folder; upstream's binary is beside it there.
        &[
            "artifact-plugin-init",
            "--plugin-name",
            "my-plugin",
            "--loglevel",
            "info",
            "--log-format",
            "text",
            "--gloglevel",
            "0",
            "--",
            "/plugin",
            "/var/run/argo/plugins/my-plugin/socket",
        ],
    ] {
        let _ = std::fs::remove_file(img.record_path());
        let o = run(img.cmd(args));
        assert_eq!(code(&o), 7, "{args:?}: {}", stderr(&o));
        // The stand-in's $0 names the binary exec'd; then the arguments, unchanged.
        assert_eq!(img.record(), img.handed_over(args), "{args:?}");
    }
}

/// The folder `argv[0]` names is looked in too (what is left without `/proc`): here our binary
/// is reached through a link in another folder, where upstream's sits.
#[test]
fn found_beside_the_name_we_were_started_by() {
    let img = Image::new(false);
    let link_dir = img.root.path("link");
    std::fs::create_dir_all(&link_dir).unwrap();
    std::os::unix::fs::symlink(img.argoexec(), link_dir.join("argoexec")).unwrap();
    write_exec(&link_dir.join("argoexec-upstream"), STAND_IN.as_bytes());
    let base = img.cmd(&[]);
    let mut c = Command::new(link_dir.join("argoexec"));
    copy_env(&base, &mut c);
    c.args(["wait", "--loglevel", "info"]).stdin(Stdio::null());
    let o = run(c);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert_eq!(
        img.record(),
        [
            link_dir
                .join("argoexec-upstream")
                .to_string_lossy()
                .into_owned(),
            "wait".into(),
            "--loglevel".into(),
            "info".into()
        ]
    );
}

#[test]
fn found_through_the_variable() {
    let img = Image::new(false);
    let elsewhere = img.root.path("elsewhere");
    write_exec(&elsewhere, STAND_IN.as_bytes());
    let mut c = img.cmd(&["wait", "--kubeconfig", "/k"]);
    c.env("ARGOEXEC_UPSTREAM", &elsewhere);
    let o = run(c);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert_eq!(img.record()[1..], strings(&["wait", "--kubeconfig", "/k"]));
}

/// The controller gives the executor's `env` to every container it adds, a plugin's (another
/// image) included: a `$ARGOEXEC_UPSTREAM` naming nothing there does not stop the search.
#[test]
fn a_variable_naming_nothing_falls_back_to_beside_us() {
    let img = Image::new(true);
    let mut c = img.cmd(&["artifact-plugin-init", "--plugin-name", "p"]);
    c.env(
        "ARGOEXEC_UPSTREAM",
        "/bin/argoexec-upstream-not-in-this-image",
    );
    let o = run(c);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert_eq!(
        img.record()[1..],
        strings(&["artifact-plugin-init", "--plugin-name", "p"])
    );
}

#[test]
fn missing_upstream_is_64_naming_the_places_looked() {
    let img = Image::new(false);
    for sub in ["wait", "artifact-plugin-init", "resource"] {
        let mut c = img.cmd(&[sub]);
        c.env("ARGOEXEC_UPSTREAM", img.root.path("nope"));
        let o = run(c);
        assert_eq!(code(&o), 64, "{sub}");
        let e = stderr(&o);
        assert!(e.starts_with("Error: "), "{e}");
        assert!(e.contains(sub), "{e}");
        assert!(
            e.contains(&format!(
                "{} ($ARGOEXEC_UPSTREAM)",
                img.root.path("nope").display()
            )),
            "{e}"
        );
        assert!(
            e.contains(
                &img.root
                    .path("bin/argoexec-upstream")
                    .to_string_lossy()
                    .into_owned()
            ),
            "{e}"
        );
        assert!(img.record().is_empty());
    }
}

// ---- init ----

/// `init` is handed over unparsed: kubectl flags the controller appends, and even a flag we do
/// not know, reach upstream's init as they were.
#[test]
fn init_is_handed_over_unparsed() {
    let img = Image::new(true);
    let args = [
        "init",
        "--loglevel",
        "info",
        "--log-format",
        "Text",
        "--gloglevel",
        "0",
        "--proxy-url",
        "http://p",
        "--kubeconfig=/kube/config",
        "--from-a-newer-controller",
    ];
    let mut c = img.cmd(&args);
    c.env("ARGO_TEMPLATE", "{}");
    let o = run(c);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert_eq!(img.record(), img.handed_over(&args));
    // Our first line names both versions; upstream's version (asked of it) is left for the
    // emissaries, and no copy of upstream's binary, since no artifact plugin is used.
    let e = stderr(&o);
    assert!(
        e.contains("msg=\"starting argoexec\"") && e.contains("upstreamVersion=v4.1.2"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(img.shared("upstream-version")).unwrap(),
        "v4.1.2"
    );
    assert!(!img.shared("argoexec-upstream").exists());
    assert!(
        !img.shared("argoexec").exists(),
        "the copy is upstream's init's job"
    );
}

#[test]
fn init_takes_the_version_from_the_image_env() {
    let img = Image::new(true);
    let mut c = img.cmd(&["init"]);
    c.env("ARGO_TEMPLATE", "{}")
        .env("ARGOEXEC_UPSTREAM_VERSION", "v3.6.5");
    let o = run(c);
    assert_eq!(code(&o), 7);
    assert_eq!(
        std::fs::read_to_string(img.shared("upstream-version")).unwrap(),
        "v3.6.5"
    );
    // v3's shape for init's own line, too.
    assert!(
        stderr(&o).contains("level=info msg=\"starting argoexec\""),
        "{}",
        stderr(&o)
    );

    // The emissary then logs in v3's shape.
    let mut c = img.cmd(&["emissary", "--", "true"]);
    c.env("ARGO_TEMPLATE", "{}");
    let o = run(c);
    assert_eq!(code(&o), 0);
    let e = stderr(&o);
    assert!(
        e.starts_with("time=\"")
            && e.contains("level=info")
            && e.contains("upstreamVersion=v3.6.5"),
        "{e}"
    );
}

/// A template naming an artifact plugin: upstream's binary is copied beside ours into the
/// shared folder (0555, whole), where the plugin's init container finds it.
#[test]
fn init_leaves_upstream_for_artifact_plugins() {
    for (template, plugin) in [
        (
            r#"{"inputs":{"artifacts":[{"name":"in","path":"/in","plugin":{"name":"my-plugin","configuration":"k: v"}}]}}"#,
            true,
        ),
        (
            r#"{"archiveLocation":{"archiveLogs":false,"plugin":{"name":"repo-plugin"}},"inputs":{"artifacts":[{"name":"in","path":"/in"}]}}"#,
            true,
        ),
        (
            r#"{"inputs":{"artifacts":[{"name":"in","path":"/in","s3":{"key":"k"}}]}}"#,
            false,
        ),
    ] {
        let img = Image::new(true);
        let mut c = img.cmd(&["init", "--loglevel", "info"]);
        c.env("ARGO_TEMPLATE", template);
        let o = run(c);
        assert_eq!(code(&o), 7, "{}", stderr(&o));
        let copy = img.shared("argoexec-upstream");
        assert_eq!(copy.exists(), plugin, "{template}");
        if plugin {
            assert_eq!(std::fs::read(&copy).unwrap(), STAND_IN.as_bytes());
            assert_eq!(mode(&copy), 0o555);
            // No temporary file left beside it.
            let names: Vec<_> = std::fs::read_dir(img.root.path("shared"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");

            // Then the plugin's init container: our copy in the shared folder, no variable,
            // hands `artifact-plugin-init` to the copy beside it.
            let ours_there = img.shared("argoexec");
            write_exec(&ours_there, &std::fs::read(bin()).unwrap());
            let _ = std::fs::remove_file(img.record_path());
            let mut x = Command::new(&ours_there);
            x.env("ARGOEXEC_VAR_RUN_ARGO", img.root.path("shared"))
                .env("RECORD", img.record_path())
                .env_remove("ARGOEXEC_UPSTREAM")
                .args([
                    "artifact-plugin-init",
                    "--plugin-name",
                    "my-plugin",
                    "--",
                    "/p",
                    "/s",
                ])
                .stdin(Stdio::null());
            let o = run(x);
            assert_eq!(code(&o), 7, "{}", stderr(&o));
            // The one exec'd is the copy in the shared folder.
            assert_eq!(img.record()[0], copy.to_string_lossy());
            assert_eq!(
                img.record()[1..],
                strings(&[
                    "artifact-plugin-init",
                    "--plugin-name",
                    "my-plugin",
                    "--",
                    "/p",
                    "/s"
                ])
            );
        }
    }
}

#[test]
fn init_without_upstream_is_the_stand_alone_one() {
    let img = Image::new(false);
    let mut c = img.cmd(&["init", "--loglevel", "info"]);
    c.env("ARGO_TEMPLATE", "{}");
    let o = run(c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read(img.shared("argoexec")).unwrap(),
        std::fs::read(bin()).unwrap()
    );
    assert!(!img.shared("upstream-version").exists());
    // Its flags are ours to judge then: an unknown one is a usage error.
    let mut c = img.cmd(&["init", "--from-a-newer-controller"]);
    c.env("ARGO_TEMPLATE", "{}");
    assert_eq!(code(&run(c)), 64);
}

// ---- artifact plugin sidecar ----

/// Waits up to 10 s for the child to end; kills it and fails the test otherwise.
fn wait_or_kill(child: &mut Child) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("did not end within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill has no memory effects; the pid is our own child's.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

const PLUGIN: &str = r#"trap 'echo TERM >> "$MARKS"' TERM; trap 'echo USR1 >> "$MARKS"' USR1; echo ready >> "$MARKS"; while :; do sleep 0.05; done"#;

/// `c` running `SUB <controller flags> -- sh -c script` as plugin container `ctr`, its marks
/// in `marks`, quiet; returns once the script has marked itself ready.
fn start_plugin(mut c: Command, sub: &str, script: &str, ctr: &str, marks: &Path) -> Child {
    c.arg(sub)
        .args(CONTROLLER_FLAGS)
        .args(["--", "sh", "-c", script])
        .env("ARGO_CONTAINER_NAME", ctr)
        .env("MARKS", marks)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = spawn(&mut c);
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(marks)
            .unwrap_or_default()
            .contains("ready")
    }));
    child
}

#[test]
fn plugin_sidecar_is_stopped_only_by_its_signal_file() {
    let r = Root::new();
    let marks = r.path("marks");
    let ctr = "artifact-plugin-my-plugin";
    let mut child = start_plugin(r.cmd(), "artifact-plugin-sidecar", PLUGIN, ctr, &marks);
    let read = || std::fs::read_to_string(&marks).unwrap_or_default();

    // The kubelet's SIGTERM is not forwarded: the plugin keeps serving the wait container.
    signal(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(400));
    assert!(child.try_wait().unwrap().is_none(), "stopped by SIGTERM");
    assert!(!read().contains("TERM"), "SIGTERM reached the plugin");
    // Other signals are forwarded.
    signal(&child, libc::SIGUSR1);
    assert!(wait_until(Duration::from_secs(5), || read().contains("USR1")));
    assert!(!r.exists(&format!("ctr/{ctr}/exitcode")));

    // The signal file stops it; exitcode holds the plugin's end, the container succeeds.
    r.write(&format!("ctr/{ctr}/signal"), "9");
    assert_eq!(wait_or_kill(&mut child), 0);
    assert_eq!(r.exitcode(ctr), "137");
    assert!(!r.exists("outputs"), "no outputs: the template is empty");
}

#[test]
fn plugin_sidecar_exit_codes() {
    // The plugin's own code goes to the file; the process exits 0 as upstream's does.
    let r = Root::with_template(
        r#"{"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"/etc/hostname"}}]}}"#,
    );
    let mut c = r.cmd();
    c.args([
        "artifact-plugin-sidecar",
        "--",
        "sh",
        "-c",
        "echo served; exit 3",
    ])
    .env("ARGO_CONTAINER_NAME", "main")
    .env("ARGO_INCLUDE_SCRIPT_OUTPUT", "true");
    let o = run(c);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(r.exitcode("main"), "3");
    assert_eq!(r.read("ctr/main/stdout"), "served\n", "captured when asked");
    assert!(
        !r.exists("outputs"),
        "the template is not read, even as main"
    );

    // A plugin that cannot start: 64, in the file too.
    let r = Root::new();
    let mut c = r.cmd();
    c.args(["artifact-plugin-sidecar", "--", "/no/such/plugin"])
        .env("ARGO_CONTAINER_NAME", "artifact-plugin-p");
    let o = run(c);
    assert_eq!(code(&o), 64);
    assert_eq!(r.exitcode("artifact-plugin-p"), "64");
    assert!(stderr(&o).contains("/no/such/plugin"), "{}", stderr(&o));
}

// ---- artifact GC pod ----

/// An artifact-GC pod's plugin container runs `emissary` in the plugin's image, named
/// `artifact-plugin-<name>`, with the template upstream's init wrote from `{}`, until the
/// `artifact delete` container stops it through its signal file.
fn gc_run(bin: &Path, sig_by_file: bool) -> (i32, String, bool) {
    let r = Root::with_template(r#"{"inputs":{},"outputs":{},"metadata":{}}"#);
    let ctr = "artifact-plugin-my-plugin";
    let marks = r.path("marks");
    let base = r.cmd();
    let mut c = Command::new(bin);
    copy_env(&base, &mut c);
    let script = PLUGIN.replace("trap 'echo TERM >> \"$MARKS\"' TERM; ", "");
    let mut child = start_plugin(c, "emissary", &script, ctr, &marks);
    if sig_by_file {
        r.write(&format!("ctr/{ctr}/signal"), "15");
    } else {
        signal(&child, libc::SIGTERM);
    }
    let code = wait_or_kill(&mut child);
    (code, r.exitcode(ctr), r.exists("outputs"))
}

#[test]
fn artifact_gc_plugin_container() {
    for by_file in [true, false] {
        let ours = gc_run(&bin(), by_file);
        assert_eq!(ours, (143, "143".to_string(), false), "by file: {by_file}");
        if let Some(reference) = upstream_reference() {
            assert_eq!(
                gc_run(&reference, by_file),
                ours,
                "upstream, by file: {by_file}"
            );
        }
    }
}
