//! A large template costs no more memory than its bytes: the fields the emissary does not
//! read are skipped as they are scanned, never built (SPEC section 3 step 4; issue: a 10 MB
//! template once peaked at 256 MB RSS).
//!
//! The user command reads its parent's (the emissary's) `VmHWM`, the peak resident set so far,
//! which covers reading and parsing the template.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// A template of about `bytes` bytes, nearly all of it in fields the emissary does not read:
/// a long array of small objects, numbers and strings under `metadata`, and one under a
/// field of `inputs` it does read around.
fn big_template(bytes: usize) -> String {
    let item =
        r#"{"key":"some-annotation","value":"a value of a few words","n":12345.5,"ok":true},"#;
    let n = bytes / item.len();
    let mut s = String::with_capacity(bytes + 200);
    s.push_str(r#"{"name":"big","metadata":{"annotations":{"list":["#);
    for _ in 0..n {
        s.push_str(item);
    }
    s.push_str(r#"null]}},"inputs":{"parameters":["#);
    s.push_str(&"1,".repeat(1000));
    s.push_str(r#"2],"artifacts":[{"name":"a","path":"/tmp/a"}]}}"#);
    s
}

#[test]
fn ten_megabyte_template_peaks_below_forty_megabytes() {
    let t = big_template(10_000_000);
    assert!(t.len() >= 9_900_000, "{}", t.len());
    let r = Root::with_template(&t);
    let mut c = r.emissary(&["sh", "-c", "grep VmHWM /proc/$PPID/status"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("running argoexec");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the emissary did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(status.success(), "{status}: {err}");
    let out = String::from_utf8_lossy(&o.stdout);
    let kb: u64 = out
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {out:?}; stderr: {err}"));
    eprintln!(
        "emissary peak RSS with a {} byte template: {kb} kB",
        t.len()
    );
    assert!(
        kb * 1024 < 40_000_000,
        "peak RSS {kb} kB with a {} byte template",
        t.len()
    );
}
