//! Signal-file content: `parse` never panics, takes only a positive decimal integer (one
//! leading `+` allowed, as Go's `Atoi`) with white space around it, and `SignalFile::take` on a
//! file holding those bytes agrees with it (deletes the file exactly when it returns a signal).
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../src/run"]
mod run {
    pub mod signalfile;
}
#[path = "../../src/sys/mod.rs"]
mod sys;

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("fuzz-signalfile-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    sys::log::configure(sys::log::Level::Error, false);
    let got = run::signalfile::parse(data);
    if let Some(n) = got {
        assert!(n > 0);
        let s = std::str::from_utf8(data).unwrap().trim();
        let s = s.strip_prefix('+').unwrap_or(s);
        assert!(s.bytes().all(|b| b.is_ascii_digit()), "{s:?}");
        assert_eq!(s.trim_start_matches('0'), n.to_string(), "{s:?}");
    }
    // The real thing: a file with these bytes, read as the supervisor reads it (first 32).
    let path = dir().join("signal");
    std::fs::write(&path, data).unwrap();
    let mut f = run::signalfile::SignalFile::new(path.clone());
    let took = f.take();
    let head = &data[..data.len().min(32)];
    assert_eq!(took, run::signalfile::parse(head));
    assert_eq!(path.exists(), took.is_none());
    let _ = std::fs::remove_file(&path);
});
