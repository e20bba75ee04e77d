//! Template JSON: `Template::parse` never panics on any bytes, and whatever parses can be
//! read by everything the emissary reads from it (retry strategy, mounts, containers, output
//! destinations) without a panic.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../src/outputs/mod.rs"]
mod outputs;
#[path = "../../src/run"]
mod run {
    pub mod deadline;
    pub mod retry;
}
#[path = "../../src/sys/mod.rs"]
mod sys;
#[path = "../../src/template.rs"]
mod template;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sys::log::configure(sys::log::Level::Error, false);
    let Ok(t) = template::Template::parse(data) else {
        return;
    };
    // Unparsable retries or duration: refused with 64, never a panic.
    match run::retry::Strategy::from_template(&t) {
        Ok(s) => assert!(s.attempts >= 1),
        Err(e) => assert_eq!(e.code, 64),
    }
    let _ = t.display_name();
    let _ = t.volume_mounts();
    let _ = t.archive_logs();
    for name in t.main_container_names() {
        let _ = t.dependencies_of(&name);
        let _ = t.is_sidecar(&name);
    }
    for p in &t.outputs.parameters {
        if let Some(path) = p.value_from.as_ref().and_then(|v| v.path.as_deref()) {
            let _ = outputs::destination(outputs::Kind::Parameter, path);
        }
    }
    for a in &t.outputs.artifacts {
        if let Some(path) = a.path.as_deref() {
            let _ = outputs::destination(outputs::Kind::Artifact, path);
            let level = outputs::compression_level(a, path);
            assert!(level <= 9);
        }
    }
});
