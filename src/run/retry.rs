//! The containerSet retry strategy: how many attempts, and how long between them
//! (SPEC section 3 step 8).

use std::time::Duration;

use crate::sys::error::{Error, Result};
use crate::sys::log;
use crate::template::{IntOrString, Template};

pub struct Strategy {
    /// Attempts in all, at least 1.
    pub attempts: u32,
    /// Constant pause between attempts.
    pub pause: Duration,
}

impl Strategy {
    /// Reads `containerSet.retryStrategy`, as upstream's `GetRetryStrategy`: nothing (or no
    /// `retries`) gives one attempt and the `duration` is then not looked at. `retries` is the
    /// number of attempts in all, as upstream; 0 or negative gives one attempt with a warning
    /// (upstream ran none). An unparsable `retries` (say a `{{...}}` never substituted) or an
    /// unparsable or negative `duration` is an error naming it (exit 64, before any attempt).
    pub fn from_template(t: &Template) -> Result<Strategy> {
        let mut s = Strategy {
            attempts: 1,
            pause: Duration::ZERO,
        };
        let Some(rs) = t
            .container_set
            .as_ref()
            .and_then(|cs| cs.retry_strategy.as_ref())
        else {
            return Ok(s);
        };
        let Some(v) = &rs.retries else {
            return Ok(s);
        };
        let n = match v {
            IntOrString::Int(n) => Some(*n),
            IntOrString::String(s) => s.trim().parse::<i64>().ok(),
        };
        match n {
            Some(n) if n >= 1 => s.attempts = n.min(i64::from(u32::MAX)) as u32,
            Some(_) => log::warn(
                "containerSet.retryStrategy.retries is not a positive integer: running one attempt",
                &[("retries", &shown(v))],
            ),
            None => {
                return Err(Error::new(format!(
                    "failed to get retry strategy: containerSet.retryStrategy.retries \"{}\" is not an integer",
                    shown(v)
                )))
            }
        }
        if let Some(d) = rs.duration.as_deref().filter(|d| !d.is_empty()) {
            // Go reads one sign; `-0s` is zero, any other negative is refused.
            let (negative, body) = d.strip_prefix('-').map_or((false, d), |b| (true, b));
            s.pause = match parse_go_duration(body) {
                Some(p) if !negative || p.is_zero() => p,
                parsed => {
                    let why = if parsed.is_some() {
                        "has to be positive"
                    } else {
                        "is not a valid duration (Go syntax: 300ms, 1.5s, 2m, 1h30m)"
                    };
                    return Err(Error::new(format!(
                        "failed to get retry strategy: containerSet.retryStrategy.duration \"{d}\" {why}"
                    )));
                }
            };
        }
        Ok(s)
    }
}

/// A retries value as the user wrote it, for the messages.
fn shown(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// Parses Go's `time.ParseDuration` syntax (`300ms`, `1.5s`, `2h45m`, `0`) in whole
/// nanoseconds, without floating point. Negative durations are refused (upstream refuses them).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
    while i < b.len() {
        let (int, frac, frac_len, next) = number(b, i)?;
        i = next;
        let ustart = i;
        while i < b.len() && !(b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let unit: u128 = match &s[ustart..i] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let scale = 10u128.checked_pow(frac_len)?;
        total = total
            .checked_add(int.checked_mul(unit)?)?
            .checked_add(frac.checked_mul(unit)? / scale)?;
    }
    u64::try_from(total)
        .ok()
        .filter(|&n| n <= i64::MAX as u64)
        .map(Duration::from_nanos)
}

/// Reads `digits[.digits]` at `i`: (integer part, fraction digits, their count, next index).
fn number(b: &[u8], mut i: usize) -> Option<(u128, u128, u32, usize)> {
    let (mut int, mut frac, mut frac_len, mut digits) = (0u128, 0u128, 0u32, 0);
    while i < b.len() && b[i].is_ascii_digit() {
        int = int.checked_mul(10)?.checked_add(u128::from(b[i] - b'0'))?;
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            // Digits past nanosecond precision cannot change the result.
            if frac_len < 18 {
                frac = frac * 10 + u128::from(b[i] - b'0');
                frac_len += 1;
            }
            i += 1;
            digits += 1;
        }
    }
    (digits > 0).then_some((int, frac, frac_len, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10us"), Some(Duration::from_micros(10)));
        assert_eq!(parse_go_duration(".5s"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_go_duration("1.000000001s"),
            Some(Duration::from_nanos(1_000_000_001))
        );
        assert_eq!(
            parse_go_duration("2562047h"),
            Some(Duration::from_secs(2_562_047 * 3600))
        );
        assert_eq!(
            parse_go_duration("2562048h"),
            None,
            "beyond Go's int64 nanoseconds"
        );
        for bad in ["", "1", "s", "1x", "-1s", "1..5s", ".s", "1s2"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    fn strategy(json: &str) -> Strategy {
        Strategy::from_template(&Template::parse(json.as_bytes()).unwrap()).unwrap()
    }

    /// Refused with 64, by `Strategy` or already by the template's types (`true`, `{}`).
    fn refused(json: &str) -> String {
        match Template::parse(json.as_bytes()).and_then(|t| Strategy::from_template(&t)) {
            Ok(_) => panic!("accepted: {json}"),
            Err(e) => {
                assert_eq!(e.code, 64);
                e.to_string()
            }
        }
    }

    #[test]
    fn attempts() {
        assert_eq!(strategy("{}").attempts, 1);
        let cs = |r: &str| {
            format!(r#"{{"containerSet":{{"retryStrategy":{{"retries":{r},"duration":"20ms"}}}}}}"#)
        };
        assert_eq!(strategy(&cs("2")).attempts, 2);
        assert_eq!(strategy(&cs("\"3\"")).attempts, 3);
        assert_eq!(strategy(&cs("0")).attempts, 1);
        assert_eq!(strategy(&cs("-4")).attempts, 1);
        assert_eq!(strategy(&cs("null")).attempts, 1);
        assert_eq!(strategy(&cs("2")).pause, Duration::from_millis(20));
        for bad in ["\"x\"", "\"{{inputs.parameters.n}}\"", "1.5", "true", "{}"] {
            let msg = refused(&cs(bad));
            assert!(msg.contains("retries"), "{bad}: {msg}");
        }
    }

    #[test]
    fn durations_checked_as_upstream() {
        let cs = |r: &str, d: &str| {
            format!(r#"{{"containerSet":{{"retryStrategy":{{"retries":{r},"duration":"{d}"}}}}}}"#)
        };
        assert_eq!(strategy(&cs("2", "")).pause, Duration::ZERO);
        assert_eq!(strategy(&cs("2", "0")).pause, Duration::ZERO);
        assert_eq!(strategy(&cs("2", "-0s")).pause, Duration::ZERO);
        let msg = refused(&cs("2", "x"));
        assert!(
            msg.contains("duration \"x\" is not a valid duration"),
            "{msg}"
        );
        let msg = refused(&cs("2", "-1s"));
        assert!(msg.contains("duration \"-1s\" has to be positive"), "{msg}");
        // Without retries upstream never reads the duration.
        let t = r#"{"containerSet":{"retryStrategy":{"duration":"x"}}}"#;
        assert_eq!(strategy(t).attempts, 1);
    }
}
