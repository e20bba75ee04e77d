//! The containerSet retry strategy: how many attempts, and how long between them
//! (SPEC section 3 step 8).

use std::time::Duration;

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
                serde_json::Value::Number(n) => n.as_i64(),
                serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
                serde_json::Value::Null => Some(1),
                _ => None,
            };
            match n {
                Some(n) if n >= 1 => s.attempts = n.min(i64::from(u32::MAX)) as u32,
                _ => log::warn(
                    "containerSet.retryStrategy.retries is not a positive integer: running one attempt",
                    &[("retries", &v.to_string())],
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

/// Parses Go's `time.ParseDuration` syntax (`300ms`, `1.5s`, `2h45m`, `0`). Negative durations
/// are refused (upstream refuses them too).
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
    let mut total: f64 = 0.0;
    while i < b.len() {
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let num = &s[start..i];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        let ustart = i;
        while i < b.len() && !(b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let nanos_per: f64 = match &s[ustart..i] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * nanos_per;
    }
    if !total.is_finite() || total > (i64::MAX as f64) {
        return None;
    }
    Some(Duration::from_nanos(total.round() as u64))
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
