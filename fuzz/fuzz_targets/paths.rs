//! Path cleaning and output destinations: `clean_go` is Go's `filepath.Clean` (idempotent, no
//! `.` or empty component, `..` only leading a relative path), `clean` refuses every climb, and
//! an output's destination is a file strictly below `ROOT/outputs`, never outside it.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../src/outputs/mod.rs"]
mod outputs;
#[path = "../../src/run"]
mod run {
    pub mod deadline;
}
#[path = "../../src/sys/mod.rs"]
mod sys;
#[path = "../../src/template.rs"]
mod template;

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let (cleaned, climbed) = outputs::paths::clean_go(path);
    assert_eq!(outputs::paths::clean_go(&cleaned).0, cleaned, "idempotent: {path:?}");
    assert!(!cleaned.is_empty());
    if cleaned != "/" && cleaned != "." {
        let body = cleaned.strip_prefix('/').unwrap_or(&cleaned);
        for (i, c) in body.split('/').enumerate() {
            assert!(!c.is_empty() && c != ".", "{path:?} -> {cleaned:?}");
            if c == ".." {
                assert!(!cleaned.starts_with('/'), "{path:?} -> {cleaned:?}");
                assert!(body.split('/').take(i).all(|p| p == ".."), "{cleaned:?}");
            }
        }
    }
    match outputs::paths::clean(path) {
        Some(c) => {
            assert!(!climbed);
            assert_eq!(c, cleaned);
            assert!(!c.split('/').any(|p| p == ".."), "{path:?} -> {c:?}");
        }
        None => assert!(climbed),
    }
    assert!(outputs::paths::is_within(&cleaned, &cleaned) || cleaned.is_empty());
    for kind in [outputs::Kind::Parameter, outputs::Kind::Artifact] {
        let Ok((src, dest)) = outputs::destination(kind, path) else {
            continue;
        };
        assert_eq!(src, cleaned, "{path:?}");
        let text = dest.to_str().unwrap();
        assert!(!text.starts_with('/'), "{path:?} -> {text:?}");
        assert!(!text.split('/').any(|p| p == ".."), "{path:?} -> {text:?}");
        let parts: Vec<_> = dest.components().collect();
        assert!(!parts.is_empty(), "{path:?} -> {text:?}");
        assert!(
            parts.iter().all(|c| matches!(c, Component::Normal(_))),
            "{path:?} -> {text:?}"
        );
        if kind == outputs::Kind::Artifact {
            assert!(text.ends_with(".tgz"), "{path:?} -> {text:?}");
        }
        // Joined under a root it stays strictly under that root's outputs folder.
        let full = Path::new("/r/outputs").join(&dest);
        assert!(full.starts_with("/r/outputs") && full != Path::new("/r/outputs/parameters"));
    }
});
