//! The JSON reader against serde_json: on any bytes it never panics, and wherever both parse,
//! they read the same document. Ours accepts more in two places only, both on purpose: a
//! lone UTF-16 surrogate (U+FFFD, as Go) and numbers beyond f64's range (kept as text).
#![no_main]
#![allow(dead_code)]

#[path = "../../src/sys/json.rs"]
mod json;

use libfuzzer_sys::fuzz_target;

fn same(ours: &json::Value, theirs: &serde_json::Value) -> bool {
    use serde_json::Value as S;
    match (ours, theirs) {
        (json::Value::Null, S::Null) => true,
        (json::Value::Bool(a), S::Bool(b)) => a == b,
        (json::Value::Number(a), S::Number(_)) => serde_json::from_str::<S>(a).ok().as_ref() == Some(theirs),
        (json::Value::String(a), S::String(b)) => a == b,
        (json::Value::Array(a), S::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        (json::Value::Object(a), S::Object(b)) => {
            let mut keys: Vec<&String> = a.iter().map(|m| &m.0).collect();
            keys.sort();
            keys.dedup();
            keys.len() == b.len()
                && b.iter().all(|(k, v)| json::member(a, k).is_some_and(|x| same(x, v)))
        }
        _ => false,
    }
}

/// A `\uD800`..`\uDFFF` escape somewhere (serde_json refuses some lone ones, Go does not).
fn has_surrogate_escape(data: &[u8]) -> bool {
    data.windows(3).any(|w| w[0] == b'u' && (w[1] | 0x20) == b'd' && matches!(w[2] | 0x20, b'8'..=b'9' | b'a'..=b'f'))
}

fuzz_target!(|data: &[u8]| {
    let ours = json::parse(data);
    // Both limit nesting, a level apart: compare only shallow documents.
    if data.iter().filter(|&&b| b == b'[' || b == b'{').count() >= 100 {
        return;
    }
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    match (&ours, &theirs) {
        (Ok(o), Ok(t)) => assert!(same(o, t), "differ: {o:?} vs {t:?}"),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => {
            let e = e.to_string();
            assert!(has_surrogate_escape(data) || e.contains("out of range"), "only serde_json failed: {e}");
        }
        (Err(e), Ok(t)) => panic!("only ours failed: {e} on {t:?}"),
    }
});
