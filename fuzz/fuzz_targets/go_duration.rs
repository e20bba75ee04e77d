//! Go durations: `parse_go_duration` never panics; a duration it accepts fits Go's int64
//! nanoseconds, and numbers built from parts parse to exactly their value.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../src/run"]
mod run {
    pub mod retry;
}
#[path = "../../src/sys/mod.rs"]
mod sys;
#[path = "../../src/template.rs"]
mod template;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

const UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(d) = run::retry::parse_go_duration(s) {
            assert!(d.as_nanos() <= i64::MAX as u128, "{s:?} -> {d:?}");
        }
    }
    // Structured: integer parts with units, summed; the parser must agree exactly.
    let mut text = String::new();
    let mut want: u128 = 0;
    for chunk in data.chunks_exact(5) {
        let n = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as u128;
        let (unit, scale) = UNITS[chunk[4] as usize % UNITS.len()];
        text.push_str(&n.to_string());
        text.push_str(unit);
        want += n * scale;
    }
    if text.is_empty() {
        return;
    }
    let got = run::retry::parse_go_duration(&text);
    if want <= i64::MAX as u128 {
        assert_eq!(got, Some(Duration::from_nanos(want as u64)), "{text:?}");
    } else {
        assert_eq!(got, None, "{text:?}");
    }
});
