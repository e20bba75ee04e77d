//! The emissary's own log lines: stderr only, never the capture files, always `argo=true`.
//!
//! Text: `time="2026-01-02T03:04:05.678Z" level=info msg="capturing logs" argo=true key=value`;
//! JSON: one object per line with `time`, `level`, `msg`, `argo: true` and the fields.
//! Each line goes out in a single `write(2)`, so lines never interleave with the child's, and
//! never blocks the run: `console` bounds every write (a full console drops the line).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::console::{self, Patience};

#[derive(Clone, Copy, PartialEq, PartialOrd)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "debug" | "trace" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" | "fatal" | "panic" => Some(Level::Error),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static JSON: AtomicBool = AtomicBool::new(false);

/// Sets the threshold and the format for every later line.
pub fn configure(level: Level, json: bool) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    JSON.store(json, Ordering::Relaxed);
}

pub fn debug(msg: &str, fields: &[(&str, &str)]) {
    emit(Level::Debug, msg, fields)
}
pub fn info(msg: &str, fields: &[(&str, &str)]) {
    emit(Level::Info, msg, fields)
}
pub fn warn(msg: &str, fields: &[(&str, &str)]) {
    emit(Level::Warn, msg, fields)
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

fn emit(level: Level, msg: &str, fields: &[(&str, &str)]) {
    if !enabled(level) {
        return;
    }
    let time = timestamp();
    let mut line = String::with_capacity(96 + msg.len());
    if JSON.load(Ordering::Relaxed) {
        line.push_str("{\"argo\":true");
        for (k, v) in [("level", level.name()), ("msg", msg), ("time", &time)]
            .iter()
            .chain(fields.iter())
        {
            line.push(',');
            push_json_string(&mut line, k);
            line.push(':');
            push_json_string(&mut line, v);
        }
        line.push('}');
    } else {
        line.push_str("time=\"");
        line.push_str(&time);
        line.push_str("\" level=");
        line.push_str(level.name());
        line.push_str(" msg=");
        push_value(&mut line, msg, true);
        line.push_str(" argo=true");
        for (k, v) in fields {
            line.push(' ');
            line.push_str(k);
            line.push('=');
            push_value(&mut line, v, false);
        }
    }
    line.push('\n');
    write_stderr(line.as_bytes());
}

/// Writes to fd 2, best effort and never blocking the run (see `console`): a line waits
/// 100 ms at most for a full console, then is dropped.
pub fn write_stderr(bytes: &[u8]) {
    write_fd(2, bytes, Patience::Log)
}

/// Writes a subcommand's own output (`kill`, `version`, `--help`) to fd 1, unbuffered: no
/// std stdout machinery is linked in for these few lines. It is the product, not a log line,
/// so it waits for the console as long as the console takes something every second.
pub fn write_stdout(bytes: &[u8]) {
    write_fd(1, bytes, Patience::Stall)
}

/// While our terminal is raw (a `tty: true` run), line ends sent to it need a carriage
/// return: the terminal no longer adds one.
static RAW: AtomicBool = AtomicBool::new(false);

/// Says that our terminal is in raw mode (`true`) or back as it was.
pub fn set_raw_terminal(raw: bool) {
    RAW.store(raw, Ordering::Relaxed);
}

fn write_fd(fd: i32, bytes: &[u8], patience: Patience) {
    if RAW.load(Ordering::Relaxed) && console::is_tty(fd) {
        let mut crlf = Vec::with_capacity(bytes.len() + 4);
        for &b in bytes {
            if b == b'\n' && crlf.last() != Some(&b'\r') {
                crlf.push(b'\r');
            }
            crlf.push(b);
        }
        // Best effort: the caller has nothing better to do with a line that did not go out.
        let _ = console::write(fd, &crlf, patience);
        return;
    }
    let _ = console::write(fd, bytes, patience);
}

/// Appends `v`, quoted the way logrus quotes text values when they need it.
fn push_value(out: &mut String, v: &str, always_quote: bool) {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/@^+:".contains(&b));
    if plain && !always_quote {
        out.push_str(v);
        return;
    }
    push_escaped(out, v, "\\x");
}

/// Appends `s` as a JSON string.
fn push_json_string(out: &mut String, s: &str) {
    push_escaped(out, s, "\\u00");
}

/// Appends `s` in double quotes, with `"`, `\`, newline, return and tab escaped; other control
/// characters become `control` and two hex digits (`\x` for logfmt, `\u00` for JSON).
fn push_escaped(out: &mut String, s: &str, control: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(control);
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Now, in UTC, as `2026-01-02T03:04:05.678Z`.
fn timestamp() -> String {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to fill; CLOCK_REALTIME always exists.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
    }
    format_utc(ts.tv_sec, (ts.tv_nsec / 1_000_000) as u32)
}

/// Formats seconds since the epoch plus milliseconds (civil-from-days, Howard Hinnant's algorithm).
pub fn format_utc(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(1_767_323_045, 678), "2026-01-02T03:04:05.678Z");
        assert_eq!(format_utc(951_782_400, 1), "2000-02-29T00:00:00.001Z");
    }

    #[test]
    fn json_strings_parse_back() {
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\n\u{1}é");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn quoting() {
        let mut s = String::new();
        push_value(&mut s, "a b\"c", false);
        assert_eq!(s, "\"a b\\\"c\"");
        s.clear();
        push_value(&mut s, "/tmp/x", false);
        assert_eq!(s, "/tmp/x");
    }
}
