//! The args file (`ARGO_CONTAINER_ARGS_FILE`): any bytes give an error or exactly the strings of
//! a JSON array of strings, appended after the existing arguments; never a panic.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../src/run"]
mod run {
    pub mod args;
}
#[path = "../../src/sys/mod.rs"]
mod sys;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn file() -> &'static PathBuf {
    static F: OnceLock<PathBuf> = OnceLock::new();
    F.get_or_init(|| std::env::temp_dir().join(format!("fuzz-args-{}.json", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    sys::log::configure(sys::log::Level::Error, false);
    std::fs::write(file(), data).unwrap();
    let mut argv = vec![OsString::from("cmd"), OsString::from("a")];
    let r = run::args::append_from_file(&mut argv, file());
    let want: Option<Vec<String>> = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| match v {
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    serde_json::Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => None,
        });
    match (r, want) {
        (Ok(()), Some(w)) => {
            assert_eq!(argv.len(), 2 + w.len());
            for (a, b) in argv[2..].iter().zip(&w) {
                assert_eq!(a.to_str(), Some(b.as_str()));
            }
        }
        (Err(e), None) => {
            assert_eq!(e.code, sys::error::EXIT_FAILURE);
            assert_eq!(argv.len(), 2, "nothing appended on error");
        }
        (r, w) => panic!("args file {data:?}: got {r:?}, expected {w:?}"),
    }
});
