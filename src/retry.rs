//! The containerSet retry strategy: how many attempts, and how long between them
//! (SPEC section 3 step 8).

use std::time::Duration;

use crate::json;
use crate::log;
use crate::template::Template;

pub struct Strategy {
    /// Attempts in all, at least 1.
    pub attempts: u32,
    /// Constant pause between attempts.
    pub pause: Duration,
}

impl Strategy {
    /// Reads `containerSet.retryStrategy`. `retries` is the number of attempts in all, as
    /// upstream; 0, negative or unparsable gives one attempt with a warning (upstream ran none).
    pub fn from_template(t: &Template) -> Strategy {
        let mut s = Strategy {
            attempts: 1,
            pause: Duration::ZERO,
        };
        let Some(rs) = t
            .container_set
            .as_ref()
            .and_then(|cs| cs.retry_strategy.as_ref())
        else {
            return s;
        };
        if let Some(v) = &rs.retries {
            let n = match v {
                json::Value::Number(_) => v.as_i64(),
                json::Value::String(s) => s.trim().parse::<i64>().ok(),
                json::Value::Null => Some(1),
                _ => None,
            };
            match n {
                Some(n) if n >= 1 => s.attempts = n.min(i64::from(u32::MAX)) as u32,
                _ => log::warn(
                    "containerSet.retryStrategy.retries is not a positive integer: running one attempt",
                    &[("retries", &shown(v))],
                ),
            }
        }
        if let Some(d) = rs.duration.as_deref().filter(|d| !d.is_empty()) {
            match parse_go_duration(d) {
                Some(p) => s.pause = p,
                None => log::warn(
                    "containerSet.retryStrategy.duration is not a valid duration: no pause between attempts",
                    &[("duration", d)],
                ),
            }
        }
        s
    }
}

/// A retries value as the user wrote it, for the warning.
fn shown(v: &json::Value) -> String {
    match v {
        json::Value::String(s) => s.clone(),
        json::Value::Number(n) => n.clone(),
        json::Value::Bool(b) => b.to_string(),
        _ => "(not a number or string)".into(),
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
        Strategy::from_template(&Template::parse(json.as_bytes()).unwrap())
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
        assert_eq!(strategy(&cs("\"x\"")).attempts, 1);
        assert_eq!(strategy(&cs("2")).pause, Duration::from_millis(20));
    }
}
