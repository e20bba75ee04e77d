//! The command line as upstream v4.1's cobra root takes it (SPEC section 1), and the shape of the
//! emissary's own log lines (SPEC section 4): flags in any case, kubectl flags ignored, unknown
//! flags a usage error with `exitcode` written, `-h` exiting 0, `version --short`, and log lines
//! in slog's shape (v4, the default) or logrus's (v3), the first naming both versions.
//!
//! Where upstream's own emissary is at hand (`$ARGOEXEC_UPSTREAM_REF`, else
//! `../shared/upstream-emissary/argoexec-upstream` beside the repository), the same cases run
//! through it too and the two must agree; without it those comparisons say so and are skipped.

mod common;

use std::process::Command;

use common::*;

/// `bin` against root `r` as container `main`, the rest of the environment as `Root::cmd`.
fn cmd_with(r: &Root, bin: &std::path::Path) -> Command {
    let base = r.cmd();
    let mut c = Command::new(bin);
    copy_env(&base, &mut c);
    c.env("ARGO_CONTAINER_NAME", "main")
        .stdin(std::process::Stdio::null());
    c
}

fn run_with(r: &Root, bin: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut c = cmd_with(r, bin);
    c.args(args);
    run(c)
}

fn ours(r: &Root, args: &[&str]) -> std::process::Output {
    run_with(r, &bin(), args)
}

// ---- flags ----

#[test]
fn log_flags_in_any_case() {
    for (level, format) in [
        ("DEBUG", "JSON"),
        ("Info", "Text"),
        ("warn", "json"),
        ("ERROR", "TEXT"),
        ("Print", "Json"),
    ] {
        let r = Root::new();
        let o = ours(
            &r,
            &[
                "emissary",
                "--loglevel",
                level,
                "--log-format",
                format,
                "--",
                "sh",
                "-c",
                "exit 3",
            ],
        );
        assert_eq!(code(&o), 3, "{level} {format}: {}", stderr(&o));
        assert_eq!(r.exitcode("main"), "3");
        let json = format.eq_ignore_ascii_case("json");
        for l in stderr(&o).lines().filter(|l| !l.starts_with("Error: ")) {
            assert_eq!(l.starts_with('{'), json, "{level} {format}: {l}");
        }
    }
}

/// Every flag upstream's cobra root registers (client-go's RecommendedConfigOverrideFlags,
/// --kubeconfig, --gloglevel), in both spellings, before and after the subcommand.
#[test]
fn kubectl_flags_are_accepted_and_ignored() {
    let flags: &[&str] = &[
        "--kubeconfig",
        "/nonexistent",
        "--proxy-url=http://127.0.0.1:1",
        "--tls-server-name",
        "x",
        "--disable-compression",
        "--insecure-skip-tls-verify=false",
        "--as",
        "u",
        "--as-group",
        "a",
        "--as-group=b",
        "--as-uid",
        "1",
        "--certificate-authority",
        "/ca",
        "--client-certificate",
        "/c",
        "--client-key",
        "/k",
        "--cluster",
        "c",
        "--context",
        "c",
        "-n",
        "ns",
        "--namespace=ns",
        "--password",
        "p",
        "--username",
        "u",
        "--request-timeout",
        "0",
        "--server",
        "https://127.0.0.1:1",
        "--token",
        "t",
        "--user",
        "u",
        "--gloglevel",
        "0",
    ];
    let mut refs = vec![("ours", bin())];
    refs.extend(upstream_reference().map(|p| ("upstream", p)));
    for (who, b) in refs {
        let r = Root::new();
        let mut args = vec!["emissary"];
        args.extend(flags);
        args.extend(["--", "sh", "-c", "exit 5"]);
        let o = run_with(&r, &b, &args);
        assert_eq!(code(&o), 5, "{who}: {}", stderr(&o));
        assert_eq!(r.exitcode("main"), "5", "{who}");

        // Root flags may also come before the subcommand, as cobra allows.
        let r = Root::new();
        let mut args = vec!["--proxy-url", "x", "--log-format", "json", "emissary"];
        args.extend(["--", "sh", "-c", "exit 6"]);
        let o = run_with(&r, &b, &args);
        assert_eq!(code(&o), 6, "{who}: {}", stderr(&o));
    }
}

#[test]
fn unknown_flags_are_usage_errors_with_exitcode() {
    for (args, says) in [
        (
            &["emissary", "--bogus", "--", "true"][..],
            "unknown flag: --bogus",
        ),
        (
            &["emissary", "-s", "x", "--", "true"],
            "unknown shorthand flag: 's'",
        ),
        (
            &["emissary", "--executor-type", "x", "--", "true"],
            "unknown flag",
        ),
        (
            &["emissary", "--log-format", "xml", "--", "true"],
            "invalid log type",
        ),
        (
            &["emissary", "--loglevel", "loud", "--", "true"],
            "invalid log level",
        ),
        (
            &["emissary", "--gloglevel", "x", "--", "true"],
            "--gloglevel",
        ),
        (
            &["emissary", "--disable-compression=maybe", "--", "true"],
            "--disable-compression",
        ),
        (&["emissary", "--kubeconfig"], "flag needs an argument"),
        (
            &["artifact-plugin-sidecar", "--bogus", "--", "true"],
            "unknown flag: --bogus",
        ),
    ] {
        let r = Root::new();
        let o = ours(&r, args);
        assert_eq!(code(&o), 64, "{args:?}");
        let e = stderr(&o);
        assert!(
            e.starts_with("Error: ") && e.contains(says),
            "{args:?}: {e}"
        );
        assert_eq!(r.exitcode("main"), "64", "{args:?}");
        assert!(!r.read("termination-log").is_empty(), "{args:?}");
    }
    // Upstream's cobra agrees where it makes these usage errors (exit 64).
    if let Some(up) = upstream_reference() {
        for args in [
            &["emissary", "--bogus", "--", "true"][..],
            &["emissary", "--gloglevel", "x", "--", "true"],
            &["emissary", "--disable-compression=maybe", "--", "true"],
            &["bogus"],
        ] {
            let r = Root::new();
            assert_eq!(code(&run_with(&r, &up, args)), 64, "upstream {args:?}");
        }
    }
}

#[test]
fn help_exits_zero_and_writes_nothing() {
    let cases: &[&[&str]] = &[
        &[],
        &["-h"],
        &["--help"],
        &["help"],
        &["help", "emissary"],
        &["emissary", "-h"],
        &["emissary", "--help"],
        &["emissary", "--loglevel", "debug", "-h", "--", "true"],
        &["kill", "-h"],
        &["version", "-h"],
        &["artifact-plugin-sidecar", "-h"],
        &["init", "-h"],
    ];
    for args in cases {
        let r = Root::new();
        let o = ours(&r, args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("Usage:") && out.contains("emissary"),
            "{args:?}"
        );
        assert!(!r.exists("ctr"), "{args:?} wrote into the root");
    }
    if let Some(up) = upstream_reference() {
        for args in &cases[..11] {
            if args.first() == Some(&"artifact-plugin-sidecar") {
                continue; // not built into the reference
            }
            let r = Root::new();
            assert_eq!(code(&run_with(&r, &up, args)), 0, "upstream {args:?}");
        }
    }
}

#[test]
fn version_short() {
    let r = Root::new();
    let o = ours(&r, &["version", "--short"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        concat!("argoexec: ", env!("CARGO_PKG_VERSION"), "\n")
    );
    let o = ours(&r, &["version"]);
    let full = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        full.starts_with(concat!("argoexec ", env!("CARGO_PKG_VERSION"), " ")),
        "{full}"
    );
    // The same one-line shape as upstream's `argoexec: v4.1.2`.
    if let Some(up) = upstream_reference() {
        let o = run_with(&r, &up, &["version", "--short"]);
        let line = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            line.starts_with("argoexec: ") && line.ends_with('\n'),
            "{line}"
        );
        assert_eq!(line.lines().count(), 1, "{line}");
    }
}

// ---- log shape ----

/// A text line split into (key, raw value) pairs, values as written (quotes kept).
fn text_pairs(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let k0 = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let key = line[k0..i].to_string();
        i += 1;
        let v0 = i;
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
        }
        out.push((key, line[v0..i.min(b.len())].to_string()));
        i += 1;
    }
    out
}

/// The top-level keys of a one-level JSON object, in the order written.
fn json_keys(line: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let n = v.as_object().expect("an object").len();
    // Keys are the strings right after `{` or `,` at depth 1 (values here are flat).
    let mut keys = Vec::new();
    let mut rest = line;
    while keys.len() < n {
        let at = rest.find(['{', ',']).unwrap();
        rest = &rest[at + 1..];
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find("\":").unwrap();
            let key = &r[..end];
            if v.get(key).is_some() && !keys.iter().any(|k| k == key) {
                keys.push(key.to_string());
            }
        }
    }
    keys
}

fn is_millis_time(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && t.ends_with('Z')
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && t[20..23].bytes().all(|c| c.is_ascii_digit())
}

/// A run with capture on and a failing child, in the given format: stderr lines.
fn log_lines(r: &Root, b: &std::path::Path, format: &str) -> Vec<String> {
    let mut cmd = cmd_with(r, b);
    cmd.env("ARGO_INCLUDE_SCRIPT_OUTPUT", "true").args([
        "emissary",
        "--log-format",
        format,
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    let o = run(cmd);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    stderr(&o)
        .lines()
        .filter(|l| !l.starts_with("Error: "))
        .map(str::to_owned)
        .collect()
}

fn find<'a>(lines: &'a [String], msg: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(msg))
        .unwrap_or_else(|| panic!("no {msg:?} line in {lines:#?}"))
}

#[test]
fn v4_text_shape() {
    let r = Root::new();
    let lines = log_lines(&r, &bin(), "text");
    for l in &lines {
        let p = text_pairs(l);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys[..4], ["time", "level", "msg", "argo"], "{l}");
        assert!(is_millis_time(&p[0].1), "{l}");
        assert!(
            ["DEBUG", "INFO", "WARN", "ERROR"].contains(&p[1].1.as_str()),
            "{l}"
        );
        assert_eq!(p[3].1, "true", "{l}");
    }
    // The first line names both versions.
    let first = text_pairs(&lines[0]);
    assert_eq!(first[2].1, "\"starting argoexec\"");
    assert!(first.contains(&("version".into(), env!("CARGO_PKG_VERSION").into())));
    assert!(first.contains(&("upstreamVersion".into(), "unknown".into())));
    // slog quotes a message with a space, and logs the child's end as upstream does.
    let capturing = text_pairs(find(&lines, "capturing logs"));
    assert_eq!(
        capturing[1..4],
        [
            ("level".into(), "INFO".into()),
            ("msg".into(), "\"capturing logs\"".into()),
            ("argo".into(), "true".into())
        ]
    );
    let exited = text_pairs(find(&lines, "sub-process exited"));
    assert!(
        exited.contains(&("error".into(), "\"exit status 3\"".into())),
        "{exited:?}"
    );

    // Upstream's own lines have the same fixed part and the same values.
    if let Some(up) = upstream_reference() {
        let r = Root::new();
        let theirs = log_lines(&r, &up, "text");
        for msg in ["capturing logs", "sub-process exited"] {
            let a = text_pairs(find(&lines, msg));
            let b = text_pairs(find(&theirs, msg));
            assert_eq!(a[1..3], b[1..3], "{msg}");
            let mut ka: Vec<_> = a[3..].iter().collect();
            let mut kb: Vec<_> = b[3..].iter().collect();
            ka.sort();
            kb.sort();
            assert_eq!(
                ka, kb,
                "{msg}: fields (upstream writes them in random order)"
            );
            assert_eq!(a[0].1.len(), b[0].1.len(), "{msg}: time format");
        }
    }
}

#[test]
fn v4_json_shape() {
    let r = Root::new();
    let lines = log_lines(&r, &bin(), "json");
    for l in &lines {
        let keys = json_keys(l);
        assert_eq!(keys[..4], ["time", "level", "msg", "argo"], "{l}");
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["argo"], true);
        let t = v["time"].as_str().unwrap();
        assert!(
            t.ends_with('Z') && t.len() >= 20 && !t.contains(".Z"),
            "{t}"
        );
        if let Some((_, frac)) = t.split_once('.') {
            assert!(
                !frac.trim_end_matches('Z').ends_with('0'),
                "trailing zero: {t}"
            );
        }
    }
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["msg"], "starting argoexec");
    assert_eq!(first["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(first["upstreamVersion"], "unknown");
    let exited: serde_json::Value =
        serde_json::from_str(find(&lines, "sub-process exited")).unwrap();
    assert_eq!(exited["level"], "INFO");
    assert_eq!(exited["error"], "exit status 3");

    if let Some(up) = upstream_reference() {
        let r = Root::new();
        let theirs = log_lines(&r, &up, "json");
        for msg in ["capturing logs", "sub-process exited"] {
            let a: serde_json::Value = serde_json::from_str(find(&lines, msg)).unwrap();
            let b: serde_json::Value = serde_json::from_str(find(&theirs, msg)).unwrap();
            let mut ka: Vec<_> = a.as_object().unwrap().keys().collect();
            let mut kb: Vec<_> = b.as_object().unwrap().keys().collect();
            ka.sort();
            kb.sort();
            assert_eq!(ka, kb, "{msg}");
            for k in ["level", "msg", "argo", "error"] {
                assert_eq!(a.get(k), b.get(k), "{msg}: {k}");
            }
            assert_eq!(json_keys(find(&theirs, msg))[..3], ["time", "level", "msg"]);
        }
    }
}

/// The shape follows the upstream version `init` left in the shared folder: v3 is logrus's.
#[test]
fn v3_shapes() {
    let r = Root::new();
    r.write("upstream-version", "v3.6.5");
    let lines = log_lines(&r, &bin(), "text");
    for l in &lines {
        let p = text_pairs(l);
        assert_eq!(p[0].0, "time", "{l}");
        assert!(
            p[0].1.starts_with('"') && is_millis_time(p[0].1.trim_matches('"')),
            "{l}"
        );
        assert_eq!(p[1].0, "level");
        assert!(
            ["debug", "info", "warning", "error"].contains(&p[1].1.as_str()),
            "{l}"
        );
        assert_eq!(p[2].0, "msg");
        // logrus sorts the fields by key.
        let rest: Vec<&str> = p[3..].iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = rest.clone();
        sorted.sort();
        assert_eq!(rest, sorted, "{l}");
        assert!(rest.contains(&"argo"), "{l}");
    }
    let first = text_pairs(&lines[0]);
    assert!(
        first.contains(&("upstreamVersion".into(), "v3.6.5".into())),
        "{first:?}"
    );
    assert!(first.contains(&("version".into(), env!("CARGO_PKG_VERSION").into())));
    let capturing = find(&lines, "capturing logs");
    assert!(
        capturing.contains(" level=info msg=\"capturing logs\" argo=true"),
        "{capturing}"
    );

    let lines = log_lines(&r, &bin(), "json");
    for l in &lines {
        // encoding/json writes logrus's map with every key sorted.
        let keys = json_keys(l);
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{l}");
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["argo"], true);
        assert!(is_millis_time(v["time"].as_str().unwrap()), "{l}");
    }
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["upstreamVersion"], "v3.6.5");
    assert_eq!(first["level"], "info");
}

#[test]
fn v4_when_the_version_file_says_v4() {
    let r = Root::new();
    r.write("upstream-version", "v4.1.2\n");
    let lines = log_lines(&r, &bin(), "text");
    let first = text_pairs(&lines[0]);
    assert_eq!(first[1].1, "INFO");
    assert!(
        first.contains(&("upstreamVersion".into(), "v4.1.2".into())),
        "{first:?}"
    );
}

/// A child that succeeds: upstream logs its nil error as `<nil>` in text and `null` in JSON.
#[test]
fn nil_error_of_a_successful_child() {
    let mut bins = vec![bin()];
    bins.extend(upstream_reference());
    for b in bins {
        let r = Root::new();
        let o = run_with(&r, &b, &["emissary", "--", "true"]);
        let e = stderr(&o);
        let line = e
            .lines()
            .find(|l| l.contains("sub-process exited"))
            .unwrap();
        assert!(
            text_pairs(line).contains(&("error".into(), "<nil>".into())),
            "{line}"
        );
        let o = run_with(&r, &b, &["emissary", "--log-format", "json", "--", "true"]);
        let e = stderr(&o);
        let line = e
            .lines()
            .find(|l| l.contains("sub-process exited"))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.get("error").is_some_and(|x| x.is_null()), "{line}");
    }
}

#[test]
fn loglevel_filters() {
    let r = Root::new();
    let o = ours(&r, &["emissary", "--loglevel", "WARN", "--", "true"]);
    assert_eq!(code(&o), 0);
    assert_eq!(stderr(&o), "", "no info line at warn");
}
