//! The scenarios of the differential suite, as data: argv, environment, template, files made
//! beforehand, and the steps the harness takes while the binary runs. In every string `$S` is the
//! scenario's own folder (`$S/root` the root, `$S/work` the child's working folder, where outputs
//! are written so parallel scenarios never collide) and `$W` is `$S/work`; `$PID` is the pid of
//! the process a `kill` scenario targets. `sh` scenarios source `$S/lib.sh` (see the harness:
//! `probe`, `traps`, `fix`).

/// What the harness does while the binary runs, in order.
#[derive(Clone, Debug)]
pub enum Step {
    /// Waits (at most 10 s) until the file exists, e.g. `work/ready` that a child writes.
    WaitFile(&'static str),
    Sleep(u64),
    /// Writes the file through a rename (a reader never sees half of it).
    Write(&'static str, &'static str),
    /// Sends the signal to the binary itself.
    Signal(i32),
    /// Makes a folder (mode 0777).
    Mkdir(&'static str),
    /// Closes the write descriptor the harness holds on the scenario's `busy` file.
    CloseBusy,
}

#[derive(Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub argv: Vec<String>,
    /// `None` removes the variable (the harness sets PATH, S, ARGOEXEC_VAR_RUN_ARGO,
    /// ARGOEXEC_TERMINATION_LOG, ARGO_CONTAINER_NAME=main, ARGO_INCLUDE_SCRIPT_OUTPUT=true).
    pub env: Vec<(String, Option<String>)>,
    /// `ROOT/template`; `None`: no file.
    pub template: Option<String>,
    /// `/argo/config/ARGO_TEMPLATE` (global: run alone).
    pub offloaded: Option<String>,
    pub files: Vec<(String, Vec<u8>, u32)>,
    pub steps: Vec<Step>,
    /// The working folder, relative to `$S`.
    pub cwd: String,
    pub umask: u32,
    /// Signals ignored, and blocked, when the binary starts.
    pub ignore: Vec<i32>,
    pub block: Vec<i32>,
    pub close_stdin: bool,
    /// fd 7 open (a copy of stderr, not close-on-exec) when the binary starts.
    pub extra_fd: bool,
    /// Writes outside its folder (`/tmp/argo_arg_N.txt`): run alone, and those files observed.
    pub global: bool,
    /// A `sleep 30` the harness starts; its pid is `$PID`, its end is observed.
    pub kill_target: bool,
    /// A fix under way: a difference is reported apart and does not fail.
    pub pending: Option<&'static str>,
    pub skip: Option<&'static str>,
    /// Unix sockets made beforehand (relative to `$S`).
    pub sockets: Vec<&'static str>,
    /// A file (relative to `$S`, made by `files`) the harness holds open for writing from before
    /// the start until `Step::CloseBusy`: executing it fails with ETXTBSY meanwhile.
    pub busy: Option<&'static str>,
}

fn base(name: &'static str, argv: &[&str]) -> Scenario {
    Scenario {
        name,
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        template: Some("{}".into()),
        offloaded: None,
        files: vec![],
        steps: vec![],
        cwd: "work".into(),
        umask: 0o022,
        ignore: vec![],
        block: vec![],
        close_stdin: false,
        extra_fd: false,
        global: false,
        kill_target: false,
        pending: None,
        skip: None,
        sockets: vec![],
        busy: None,
    }
}

/// `argoexec ARGV...`
fn cmd(name: &'static str, argv: &[&str]) -> Scenario {
    base(name, argv)
}

/// `argoexec emissary -- sh -c '. $S/lib.sh; SCRIPT'`
fn sh(name: &'static str, script: &str) -> Scenario {
    let mut s = base(name, &["emissary", "--", "sh", "-c"]);
    s.argv.push(format!(". $S/lib.sh; {script}"));
    s
}

/// A child that records the signals it receives (`work/sigs`) and sleeps until a SIGTERM (or
/// SIGKILL) ends the sleep, which ignores every other signal the shell traps: the outcome never
/// depends on which of two signals arrives first. `work/ready` once `sleep` itself runs (not the
/// shell forked for it) and the traps are set. Its stderr is closed: the shell's "Terminated" for
/// its background job comes at a moment that depends on which process the signal reaches first.
const WAITER: &str = "exec 2>/dev/null; trap '' HUP INT QUIT USR1 USR2 URG; sleep 30 & p=$!; \
     until [ \"$(readlink /proc/$p/exe)\" != \"$(readlink /proc/$$/exe)\" ]; do :; done; \
     traps; : > $W/ready; \
     while :; do wait $p; r=$?; kill -0 $p 2>/dev/null || break; done; echo \"wait $r\" >> $W/sigs; exit $r";

fn waiter(name: &'static str) -> Scenario {
    sh(name, WAITER)
}

impl Scenario {
    fn tpl(mut self, t: &str) -> Self {
        self.template = Some(t.into());
        self
    }
    fn no_tpl(mut self) -> Self {
        self.template = None;
        self
    }
    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), Some(v.into())));
        self
    }
    fn unset(mut self, k: &str) -> Self {
        self.env.push((k.into(), None));
        self
    }
    fn file(self, rel: &str, body: &str) -> Self {
        self.filem(rel, body.as_bytes(), 0o644)
    }
    fn filem(mut self, rel: &str, body: &[u8], mode: u32) -> Self {
        self.files.push((rel.into(), body.to_vec(), mode));
        self
    }
    fn step(mut self, s: Step) -> Self {
        self.steps.push(s);
        self
    }
    // No scenario waits for a fix now; the mark stays for the next one under way.
    #[allow(dead_code)]
    fn pending(mut self, why: &'static str) -> Self {
        self.pending = Some(why);
        self
    }
    fn skip(mut self, why: &'static str) -> Self {
        self.skip = Some(why);
        self
    }
    fn cwd(mut self, c: &str) -> Self {
        self.cwd = c.into();
        self
    }
    fn umask(mut self, u: u32) -> Self {
        self.umask = u;
        self
    }
    fn global(mut self) -> Self {
        self.global = true;
        self
    }
    fn name_ctr(self, c: &str) -> Self {
        self.env("ARGO_CONTAINER_NAME", c)
    }
    /// Waits for the child's `work/ready`, then writes `v` to the signal file.
    fn sigfile(self, v: &'static str) -> Self {
        self.step(Step::WaitFile("work/ready"))
            .step(Step::Write("root/ctr/main/signal", v))
    }
    /// Waits for the child's `work/ready`, then signals the binary (followed by a SIGTERM, which
    /// ends a waiter, when `n` is another signal).
    fn signal(self, n: i32) -> Self {
        let s = self
            .step(Step::WaitFile("work/ready"))
            .step(Step::Signal(n));
        if n == SIGTERM {
            s
        } else {
            s.step(Step::Sleep(300)).step(Step::Signal(SIGTERM))
        }
    }
}

fn params(paths: &[&str]) -> String {
    let ps: Vec<String> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| format!(r#"{{"name":"p{i}","valueFrom":{{"path":"{p}"}}}}"#))
        .collect();
    format!(r#"{{"outputs":{{"parameters":[{}]}}}}"#, ps.join(","))
}

fn arts(paths: &[&str]) -> String {
    let ps: Vec<String> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| format!(r#"{{"name":"a{i}","path":"{p}"}}"#))
        .collect();
    format!(r#"{{"outputs":{{"artifacts":[{}]}}}}"#, ps.join(","))
}

fn cset(containers: &str, extra: &str) -> String {
    format!(r#"{{"containerSet":{{"containers":{containers}{extra}}}}}"#)
}

fn retries(r: &str, d: &str) -> String {
    cset(
        r#"[{"name":"main"}]"#,
        &format!(r#","retryStrategy":{{"retries":{r}{d}}}"#),
    )
}

/// Fails its first run, succeeds its second, counting attempts in `work/attempts`.
const FLAKY: &str =
    "echo run >> $W/attempts; n=$(wc -l < $W/attempts); echo attempt $n; [ $n -ge 2 ] || exit 5";
/// Always fails, counting attempts.
/// (The pause keeps the two streams' order in `combined` the same in both runs.)
const FAILS: &str = "echo run >> $W/attempts; echo out; sleep 0.1; echo err >&2; exit 7";

const SIGTERM: i32 = 15;
const SIGINT: i32 = 2;
const SIGHUP: i32 = 1;
const SIGUSR1: i32 = 10;
const SIGQUIT: i32 = 3;
const SIGCHLD: i32 = 17;
const SIGURG: i32 = 23;

pub fn all() -> Vec<Scenario> {
    let big_arg = "x".repeat(200_000);
    let below_arg = "y".repeat(131_071);
    let at_arg = "z".repeat(131_072);
    let args_big = format!(r#"["{big_arg}","small"]"#);
    let args_below = format!(r#"["{below_arg}"]"#);
    let args_at = format!(r#"["a","{at_arg}"]"#);
    let leak = |n: &'static str, a: &str| {
        sh(n, "probe")
            .env("ARGO_CONTAINER_ARGS_FILE", "$S/args.json")
            .file("args.json", a)
            .global()
    };
    vec![
        // ---- exit codes ----
        sh("exit-0", "probe; exit 0"),
        sh("exit-3", "exit 3"),
        sh("exit-255", "exit 255"),
        sh("exit-256-wraps", "exit 256"),
        sh("child-dies-term", "kill -TERM $$"),
        sh("child-dies-kill", "kill -KILL $$"),
        sh("child-dies-segv", "ulimit -c 0; kill -SEGV $$"),
        sh("child-dies-usr1", "kill -USR1 $$"),
        // ---- capture ----
        sh(
            "capture-both-streams",
            "echo out; sleep 0.1; echo err >&2; sleep 0.1; printf 'no newline'",
        ),
        sh("capture-stderr-only", "echo only-err >&2; exit 1"),
        sh("capture-binary-bytes", r"printf '\000\001\377\n\r'"),
        sh("capture-off-unset", "echo out; echo err >&2; probe")
            .unset("ARGO_INCLUDE_SCRIPT_OUTPUT"),
        sh("capture-off-false", "echo out; probe").env("ARGO_INCLUDE_SCRIPT_OUTPUT", "false"),
        sh("capture-archive-logs", "echo archived; probe")
            .unset("ARGO_INCLUDE_SCRIPT_OUTPUT")
            .tpl(r#"{"archiveLocation":{"archiveLogs":true}}"#),
        sh(
            "capture-large-stdout",
            "head -c 3000000 /dev/zero | tr '\\0' 'a'; echo end",
        ),
        sh(
            "capture-grandchild-holds-pipe",
            "(sleep 0.2; echo late) & echo early",
        ),
        // ---- args file and offloaded arguments ----
        sh("args-file-appends", "probe")
            .env("ARGO_CONTAINER_ARGS_FILE", "$S/args.json")
            .file("args.json", r#"["a b", "", "$HOME", "\u00e9\n"]"#),
        sh("args-file-empty-array", "probe")
            .env("ARGO_CONTAINER_ARGS_FILE", "$S/args.json")
            .file("args.json", "[]"),
        sh("args-file-missing", "probe").env("ARGO_CONTAINER_ARGS_FILE", "$S/none.json"),
        sh("args-file-object", "probe")
            .env("ARGO_CONTAINER_ARGS_FILE", "$S/args.json")
            .file("args.json", r#"{"a":1}"#),
        sh("args-file-numbers", "probe")
            .env("ARGO_CONTAINER_ARGS_FILE", "$S/args.json")
            .file("args.json", "[1, 2]"),
        sh("args-file-not-json", "probe")
            .env("ARGO_CONTAINER_ARGS_FILE", "$S/args.json")
            .file("args.json", "not json"),
        sh("args-file-empty", "probe")
            .env("ARGO_CONTAINER_ARGS_FILE", "$S/args.json")
            .file("args.json", ""),
        leak("args-large-offloaded", &args_big),
        leak("args-just-below-limit", &args_below),
        leak("args-at-limit", &args_at),
        // ---- the template ----
        sh("template-from-env", "echo v > $W/p.txt")
            .no_tpl()
            .env("ARGO_TEMPLATE", &params(&["$W/p.txt"])),
        sh("template-file-wins", "echo v > $W/p.txt; echo w > $W/q.txt")
            .tpl(&params(&["$W/p.txt"]))
            .env("ARGO_TEMPLATE", &params(&["$W/q.txt"])),
        {
            let mut s = sh("template-offloaded", "echo v > $W/p.txt")
                .no_tpl()
                .env("ARGO_TEMPLATE", "offloaded")
                .global();
            s.offloaded = Some(params(&["$W/p.txt"]));
            s
        },
        sh("template-missing", "echo ran").no_tpl(),
        sh("template-empty", "echo ran").tpl(""),
        sh("template-not-json", "echo ran").tpl("{"),
        sh("template-array", "echo ran").tpl("[]"),
        sh("template-null", "echo ran").tpl("null"),
        sh("template-wrong-type", "echo ran").tpl(r#"{"outputs":{"parameters":"x"}}"#),
        sh("template-key-case", "echo v > $W/p.txt")
            .tpl(r#"{"Outputs":{"parameters":[{"name":"p","valueFrom":{"path":"$W/p.txt"}}]}}"#),
        sh("template-duplicate-keys", "echo v > $W/p.txt; echo w > $W/q.txt").tpl(
            r#"{"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"$W/p.txt"}}]},"outputs":{"parameters":[{"name":"q","valueFrom":{"path":"$W/q.txt"}}]}}"#,
        ),
        sh("template-unknown-fields", "echo ran").tpl(r#"{"nope":[1,{}],"name":"t"}"#),
        sh("template-env-not-json", "echo ran")
            .no_tpl()
            .env("ARGO_TEMPLATE", "{"),
        // ---- the command ----
        cmd("cmd-not-found", &["emissary", "--", "no-such-command-xyz"]),
        cmd("cmd-not-executable", &["emissary", "--", "$W/noexec"])
            .filem("work/noexec", b"#!/bin/sh\necho hi\n", 0o644),
        cmd("cmd-bad-format", &["emissary", "--", "$W/garbage"])
            .filem("work/garbage", b"\x7fELFgarbage", 0o755),
        cmd("cmd-no-shebang-script", &["emissary", "--", "$W/plain"])
            .filem("work/plain", b"echo plain\n", 0o755),
        cmd("cmd-directory", &["emissary", "--", "$W"]),
        cmd("cmd-relative", &["emissary", "--", "./rel.sh", "arg"])
            .filem("work/rel.sh", b"#!/bin/sh\necho rel \"$0\" \"$@\"\n", 0o755),
        cmd("cmd-on-path", &["emissary", "--", "mycmd", "x"])
            .env("PATH", "$W/bin:/usr/bin:/bin")
            .filem("work/bin/mycmd", b"#!/bin/sh\necho mine \"$0\" \"$@\"\n", 0o755),
        cmd("cmd-empty-path-env", &["emissary", "--", "sh", "-c", "echo x"]).env("PATH", ""),
        cmd(
            "cmd-args-verbatim",
            &[
                "emissary", "--", "printf", "[%s]\\n", "a b", "", "$HOME", "*", "'q'", "--", "-h",
            ],
        ),
        cmd("usage-nothing-after-dashdash", &["emissary", "--"]),
        cmd("usage-no-dashdash", &["emissary", "sh", "-c", "echo nodash"]),
        // ---- parameters ----
        sh("param-file", "printf 'v\\n' > $W/p.txt").tpl(&params(&["$W/p.txt"])),
        sh("param-missing", "true").tpl(&params(&["$W/none.txt"])),
        sh("param-directory", "mkdir $W/d").tpl(&params(&["$W/d"])),
        sh("param-empty", ": > $W/p.txt").tpl(&params(&["$W/p.txt"])),
        sh("param-binary", r"printf '\000\377\001' > $W/p.bin").tpl(&params(&["$W/p.bin"])),
        sh("param-symlink", "echo t > $W/t; ln -s $W/t $W/l").tpl(&params(&["$W/l"])),
        sh("param-after-failure", "echo v > $W/p.txt; exit 3").tpl(&params(&["$W/p.txt"])),
        sh("param-several", "echo 1 > $W/a; echo 2 > $W/b")
            .tpl(&params(&["$W/a", "$W/none", "$W/b"])),
        sh("param-relative", "echo r > r.json").tpl(&params(&["r.json"])),
        sh(
            "param-relative-climbing",
            "mkdir -p $W/out; echo r > $W/out/r.json",
        )
        .cwd("work/sub")
        .file("work/sub/.keep", "")
        .tpl(&params(&["../out/r.json"])),
        sh("param-escaping-the-root", "echo x > $W/x")
            .cwd("work/a/b/c")
            .file("work/a/b/c/.keep", "")
            .tpl(&params(&["../../../x"])),
        {
            let mut s = sh("param-socket", "true").tpl(&params(&["$W/sock"]));
            s.sockets = vec!["work/sock"];
            s
        },
        sh("param-fifo", "mkfifo $W/f")
            .tpl(&params(&["$W/f"]))
            .skip("upstream blocks for ever opening a FIFO with no writer"),
        sh("param-unreadable", "true")
            .skip("the suite runs as root, which reads any file; tests/sh/t-faults.sh covers it as another uid"),
        sh("param-trailing-slash", "echo v > $W/p")
            .tpl(&params(&["$W/p/"])),
        // ---- artifacts ----
        sh("art-file", "echo a > $W/a.txt; fix $W/a.txt").tpl(&arts(&["$W/a.txt"])),
        sh(
            "art-tree-with-links",
            "mkdir -p $W/t/sub/deeper $W/t/empty; echo f > $W/t/sub/f; echo g > $W/t/g; \
             ln -s sub/f $W/t/rel-link; ln -s /nonexistent $W/t/dangling; ln -s sub $W/t/dir-link; \
             ln $W/t/g $W/t/hard; fix $W/t",
        )
        .tpl(&arts(&["$W/t"])),
        sh("art-empty-dir", "mkdir $W/e; fix $W/e").tpl(&arts(&["$W/e"])),
        sh(
            "art-modes",
            "mkdir -p $W/m/private; echo x > $W/m/ro; echo y > $W/m/exe; echo z > $W/m/suid; \
             chmod 0444 $W/m/ro; chmod 0755 $W/m/exe; chmod 04755 $W/m/suid; chmod 0700 $W/m/private; \
             chmod 1777 $W/m; fix $W/m",
        )
        .tpl(&arts(&["$W/m"])),
        sh(
            "art-long-names",
            "n=$(printf 'n%.0s' $(seq 150)); mkdir -p $W/L/$n/$n; echo deep > $W/L/$n/$n/$n; fix $W/L",
        )
        .tpl(&arts(&["$W/L"])),
        sh("art-fifo", "mkdir $W/f; mkfifo $W/f/pipe; echo x > $W/f/x; fix $W/f")
            .tpl(&arts(&["$W/f"])),
        sh(
            "art-mtime-fraction",
            "mkdir $W/t; echo x > $W/t/x; touch -d @1600000000.7 $W/t/x; touch -d @1600000000.2 $W/t",
        )
        .tpl(&arts(&["$W/t"])),
        sh(
            "art-mtime-pre-1970",
            "mkdir $W/t; echo x > $W/t/x; touch -d @-1000000 $W/t/x; touch -d @1600000000 $W/t",
        )
        .tpl(&arts(&["$W/t"])),
        sh("art-trailing-slash", "mkdir $W/a; echo x > $W/a/x; fix $W/a").tpl(&arts(&["$W/a/"])),
        sh("art-double-slash", "mkdir $W/d; echo x > $W/d/x; fix $W/d")
            .tpl(&arts(&["$W/d//"])),
        sh("art-missing", "true").tpl(&arts(&["$W/none"])),
        {
            let mut s = sh("art-socket", "echo x > $W/s/x; fix $W/s").tpl(&arts(&["$W/s"]));
            s.sockets = vec!["work/s/sock"];
            s
        },
        sh(
            "art-source-symlink-to-dir",
            "mkdir $W/real; echo x > $W/real/x; ln -s $W/real $W/link; fix $W/real; touch -h -d @1600000000 $W/link",
        )
        .tpl(&arts(&["$W/link"])),
        sh(
            "art-source-dangling-symlink",
            "ln -s $W/nowhere $W/link",
        )
        .tpl(&arts(&["$W/link"])),
        sh(
            "art-large-file",
            "head -c 3000000 /dev/urandom > /dev/null; seq 1 400000 > $W/big; fix $W/big",
        )
        .tpl(&arts(&["$W/big"])),
        sh("art-compression-none", "echo a > $W/a.txt; fix $W/a.txt").tpl(
            r#"{"outputs":{"artifacts":[{"name":"a","path":"$W/a.txt","archive":{"none":{}}}]}}"#,
        ),
        sh(
            "art-and-params-after-failure",
            "echo p > $W/p; echo a > $W/a; fix $W/a; exit 2",
        )
        .tpl(
            r#"{"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"$W/p"}}],"artifacts":[{"name":"a","path":"$W/a"}]}}"#,
        ),
        // ---- volume mounts ----
        sh("vol-param-under-mount", "mkdir $W/vol; echo v > $W/vol/p")
            .tpl(r#"{"container":{"volumeMounts":[{"name":"v","mountPath":"$W/vol"}]},"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"$W/vol/p"}}]}}"#),
        sh("vol-art-equals-mount", "mkdir $W/vol; echo v > $W/vol/a; fix $W/vol")
            .tpl(r#"{"container":{"volumeMounts":[{"name":"v","mountPath":"$W/vol"}]},"outputs":{"artifacts":[{"name":"a","path":"$W/vol"}]}}"#),
        sh("vol-prefix-is-not-mount", "mkdir $W/volume; echo v > $W/volume/p")
            .tpl(r#"{"container":{"volumeMounts":[{"name":"v","mountPath":"$W/vol"}]},"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"$W/volume/p"}}]}}"#),
        sh("vol-script-mount", "mkdir $W/vol; echo v > $W/vol/p")
            .tpl(r#"{"script":{"volumeMounts":[{"name":"v","mountPath":"$W/vol"}]},"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"$W/vol/p"}}]}}"#),
        // ---- containerSet dependencies ----
        sh("deps-ok", "echo b-ran")
            .name_ctr("b")
            .tpl(&cset(r#"[{"name":"a"},{"name":"b","dependencies":["a"]}]"#, ""))
            .file("root/ctr/a/exitcode", "0"),
        sh("deps-failed", "echo b-ran")
            .name_ctr("b")
            .tpl(&cset(r#"[{"name":"a"},{"name":"b","dependencies":["a"]}]"#, ""))
            .file("root/ctr/a/exitcode", "3"),
        sh("deps-two-late", "echo b-ran")
            .name_ctr("b")
            .tpl(&cset(
                r#"[{"name":"a"},{"name":"c"},{"name":"b","dependencies":["a","c"]}]"#,
                "",
            ))
            .file("root/ctr/a/exitcode", "0")
            .file("root/ctr/c/.keep", "")
            .step(Step::Sleep(600))
            .step(Step::Write("root/ctr/c/exitcode", "0")),
        sh("deps-garbage-then-ok", "echo b-ran")
            .name_ctr("b")
            .tpl(&cset(r#"[{"name":"a"},{"name":"b","dependencies":["a"]}]"#, ""))
            .file("root/ctr/a/exitcode", "garbage")
            .step(Step::Sleep(1500))
            .step(Step::Write("root/ctr/a/exitcode", "0")),
        sh("deps-sigterm-while-waiting", "echo b-ran")
            .name_ctr("b")
            .tpl(&cset(r#"[{"name":"a"},{"name":"b","dependencies":["a"]}]"#, ""))
            .file("root/ctr/a/.keep", "")
            .step(Step::Sleep(700))
            .step(Step::Signal(SIGTERM)),
        // ---- containerSet retries ----
        sh("retry-three-attempts", FAILS).tpl(&retries("3", "")),
        sh("retry-string-count", FAILS).tpl(&retries(r#""2""#, "")),
        sh("retry-succeeds-second", FLAKY).tpl(&retries("4", r#","duration":"100ms""#)),
        sh("retry-duration", FAILS).tpl(&retries("2", r#","duration":"0.2s""#)),
        sh("retry-zero", FAILS).tpl(&retries("0", "")),
        sh("retry-negative", FAILS).tpl(&retries("-1", "")),
        sh("retry-unparsable-count", FAILS)
            .tpl(&retries(r#""{{x}}""#, "")),
        sh("retry-unparsable-duration", FAILS)
            .tpl(&retries("2", r#","duration":"soon""#)),
        sh("retry-negative-duration", FAILS)
            .tpl(&retries("2", r#","duration":"-1s""#)),
        {
            let mut s = cmd("retry-start-failure", &["emissary", "--", "$W/busy"])
                .filem("work/busy", b"#!/bin/sh\necho ran >> $W/attempts\n", 0o755)
                .tpl(&retries("3", r#","duration":"1s""#))
                .step(Step::Sleep(400))
                .step(Step::CloseBusy);
            s.busy = Some("work/busy");
            s
        },
        // ---- the signal file ----
        waiter("sigfile-15").sigfile("15"),
        waiter("sigfile-9").sigfile("9"),
        waiter("sigfile-usr1-then-15")
            .sigfile("10")
            .step(Step::Sleep(1500))
            .step(Step::Write("root/ctr/main/signal", "15")),
        waiter("sigfile-whitespace").sigfile(" 15\n"),
        waiter("sigfile-plus")
            .sigfile("+15"),
        waiter("sigfile-garbage")
            .sigfile("garbage")
            .step(Step::Sleep(1500))
            .step(Step::Write("root/ctr/main/signal", "15")),
        waiter("sigfile-zero")
            .sigfile("0")
            .step(Step::Sleep(1500))
            .step(Step::Write("root/ctr/main/signal", "15")),
        waiter("sigfile-negative")
            .sigfile("-15")
            .step(Step::Sleep(1500))
            .step(Step::Write("root/ctr/main/signal", "15")),
        waiter("sigfile-huge")
            .sigfile("99999999999999999999")
            .step(Step::Sleep(1500))
            .step(Step::Write("root/ctr/main/signal", "15")),
        waiter("sigfile-directory")
            .step(Step::WaitFile("work/ready"))
            .step(Step::Mkdir("root/ctr/main/signal"))
            .step(Step::Sleep(1500))
            .step(Step::Signal(SIGTERM)),
        waiter("sigfile-empty")
            .sigfile("")
            .step(Step::Sleep(1500))
            .step(Step::Write("root/ctr/main/signal", "15")),
        // ---- signals sent to the emissary ----
        waiter("signal-term").signal(SIGTERM),
        waiter("signal-int-then-term").signal(SIGINT),
        waiter("signal-hup-then-term").signal(SIGHUP),
        waiter("signal-quit-then-term").signal(SIGQUIT),
        waiter("signal-usr1-then-term").signal(SIGUSR1),
        waiter("signal-urg-then-term").signal(SIGURG),
        waiter("signal-realtime-34")
            .signal(34),
        // ---- debug pause ----
        sh("pause-before", "echo ran")
            .env("ARGO_DEBUG_PAUSE_BEFORE", "true")
            .step(Step::Sleep(500))
            .step(Step::Write("root/ctr/main/before", "")),
        sh("pause-after", "echo ran; exit 4")
            .env("ARGO_DEBUG_PAUSE_AFTER", "true")
            .step(Step::Sleep(700))
            .step(Step::Write("root/ctr/main/after", "")),
        sh("pause-before-false", "echo ran").env("ARGO_DEBUG_PAUSE_BEFORE", "false"),
        sh("pause-before-sigterm", "echo ran")
            .env("ARGO_DEBUG_PAUSE_BEFORE", "true")
            .step(Step::Sleep(500))
            .step(Step::Signal(SIGTERM)),
        // ---- sidecars and other containers ----
        waiter("sidecar-stops-when-main-exits")
            .name_ctr("sc")
            .tpl(r#"{"sidecars":[{"name":"sc"}]}"#)
            .step(Step::WaitFile("work/ready"))
            .step(Step::Write("root/ctr/main/exitcode", "0")),
        waiter("sidecar-containerset-mains")
            .name_ctr("sc")
            .tpl(r#"{"sidecars":[{"name":"sc"}],"containerSet":{"containers":[{"name":"a"},{"name":"b"}]}}"#)
            .step(Step::WaitFile("work/ready"))
            .step(Step::Write("root/ctr/a/exitcode", "0"))
            .step(Step::Sleep(300))
            .step(Step::Write("root/ctr/b/exitcode", "1")),
        waiter("sidecar-capture-file-trouble")
            .name_ctr("sc")
            .tpl(r#"{"sidecars":[{"name":"sc"}]}"#)
            .file("root/ctr/sc/combined/.keep", "")
            .step(Step::Sleep(1500))
            .step(Step::Write("root/ctr/main/exitcode", "0")),
        sh("non-main-saves-no-outputs", "echo v > $W/p.txt; mkdir $W/a; fix $W/a")
            .name_ctr("other")
            .tpl(r#"{"outputs":{"parameters":[{"name":"p","valueFrom":{"path":"$W/p.txt"}}],"artifacts":[{"name":"a","path":"$W/a"}]}}"#),
        sh("container-name-unset", "echo v > $W/p.txt")
            .unset("ARGO_CONTAINER_NAME")
            .tpl(&params(&["$W/p.txt"])),
        // ---- modes, umask, what the child inherits ----
        sh("umask-077", "probe; echo v > $W/p.txt; echo out")
            .umask(0o077)
            .tpl(&params(&["$W/p.txt"])),
        sh("ctr-dir-exists-0700", "echo out").file("root/ctr/main/.keep", ""),
        {
            let mut s = sh("sigchld-ignored-at-start", "sleep 0.2 & wait; probe; exit 5");
            s.ignore = vec![SIGCHLD];
            s
        },
        {
            let mut s = sh("inherited-ignored-signals", "probe");
            s.ignore = vec![SIGINT, SIGQUIT, SIGUSR1];
            s
        },
        {
            let mut s = sh("inherited-ignored-signal-32", "probe");
            s.ignore = vec![32];
            s
        },
        {
            let mut s = sh("inherited-blocked-signals", "probe");
            s.block = vec![SIGUSR1, SIGHUP];
            s
        },
        {
            let mut s = sh("inherited-extra-fd", "probe");
            s.extra_fd = true;
            s
        },
        {
            let mut s = sh("stdin-closed", "probe").unset("ARGO_INCLUDE_SCRIPT_OUTPUT");
            s.close_stdin = true;
            s
        },
        {
            let mut s = sh("stdin-closed-capture", "probe");
            s.close_stdin = true;
            s
        },
        sh("tracing-endpoint", "probe").env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"),
        // ---- kill ----
        kill("kill-15", "15"),
        kill("kill-TERM", "TERM"),
        kill("kill-SIGTERM", "SIGTERM"),
        kill("kill-9", "9"),
        kill("kill-bad-signal", "NOPE"),
        cmd("kill-no-such-pid", &["kill", "15", "2147483646"]),
        cmd("kill-missing-args", &["kill", "15"]),
        // ---- usage ----
        cmd("usage-unknown-flag", &["emissary", "--bogus", "--", "true"]),
        cmd(
            "usage-known-flags",
            &[
                "emissary", "--loglevel", "debug", "--log-format", "text", "--gloglevel", "2", "--",
                "sh", "-c", "echo flags",
            ],
        ),
        cmd(
            "usage-log-format-json",
            &["emissary", "--log-format", "json", "--", "sh", "-c", "echo j"],
        ),
        cmd(
            "usage-log-format-JSON",
            &["emissary", "--log-format", "JSON", "--", "sh", "-c", "echo J"],
        ),
        cmd("usage-help", &["emissary", "-h"]),
        cmd("usage-version", &["version"]),
        cmd("usage-unknown-subcommand", &["bogus-subcommand"]),
        cmd("usage-no-subcommand", &[]),
    ]
}

fn kill(name: &'static str, sig: &str) -> Scenario {
    let mut s = cmd(name, &["kill", sig, "$PID"]);
    s.kill_target = true;
    s
}
