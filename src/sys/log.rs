//! The emissary's own log lines: stderr only, never the capture files, always `argo=true`.
//!
//! The shape is that of the upstream executor the image is built over (SPEC section 4), since
//! log pipelines key on it:
//! - v4 (Go's slog, the default): `time=2026-01-02T03:04:05.678Z level=INFO msg="capturing
//!   logs" argo=true key=value`; JSON `{"time":"2026-01-02T03:04:05.678901234Z","level":"INFO",
//!   "msg":"...","argo":true,...}` (the JSON time has nanoseconds, trailing zeros trimmed).
//! - v3 (logrus): `time="2026-01-02T03:04:05.678Z" level=info msg="capturing logs" argo=true
//!   key=value`, fields sorted by key; JSON with every key sorted, `<`, `>` and `&` escaped.
//!
//! Text values are quoted only when the format would (slog: empty, space, `=`, `"`, control or
//! non-printable characters; logrus: anything outside `A-Za-z0-9-._/@^+`), with Go's
//! `strconv.Quote` escapes. In JSON a value that is a plain decimal integer is written as a
//! number, as upstream logs its integer fields (`signal`, `count`, ...), and `<nil>` (a nil
//! error's text) as `null`.
//! Each line goes out in a single `write(2)`, so lines never interleave with the child's, and
//! never blocks the run: `console` bounds every write (a full console drops the line).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::sys::console::{self, Console, Patience};

#[derive(Clone, Copy, PartialEq, PartialOrd)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    /// Upstream's levels in any case (v4 lowercases them; `trace`, `print`, `fatal` and
    /// `panic` are its legacy names); `warning` as v3's logrus also took it.
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "debug" | "trace" => Some(Level::Debug),
            "info" | "print" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" | "fatal" | "panic" => Some(Level::Error),
            _ => None,
        }
    }

    fn name(self, shape: Shape) -> &'static str {
        match (shape, self) {
            (Shape::Slog, Level::Debug) => "DEBUG",
            (Shape::Slog, Level::Info) => "INFO",
            (Shape::Slog, Level::Warn) => "WARN",
            (Shape::Slog, Level::Error) => "ERROR",
            (Shape::Logrus, Level::Debug) => "debug",
            (Shape::Logrus, Level::Info) => "info",
            (Shape::Logrus, Level::Warn) => "warning",
            (Shape::Logrus, Level::Error) => "error",
        }
    }
}

/// Which upstream's log shape the lines take.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Shape {
    /// v4: Go's log/slog (upstream's util/logging).
    Slog,
    /// v3: logrus.
    Logrus,
}

impl Shape {
    /// The shape for an upstream version such as `v3.6.5` or `argoexec: v4.1.2`: logrus for
    /// major version 3 and below, slog otherwise (also when the version cannot be read).
    pub fn for_version(version: &str) -> Shape {
        let v = version.trim();
        let v = v.rsplit(' ').next().unwrap_or(v);
        let v = v.strip_prefix('v').unwrap_or(v);
        let major: String = v.chars().take_while(char::is_ascii_digit).collect();
        match major.parse::<u32>() {
            Ok(m) if m <= 3 => Shape::Logrus,
            _ => Shape::Slog,
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static JSON: AtomicBool = AtomicBool::new(false);
static LOGRUS: AtomicBool = AtomicBool::new(false);

/// Sets the threshold and the format for every later line.
pub fn configure(level: Level, json: bool) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    JSON.store(json, Ordering::Relaxed);
}

/// Sets the shape (v4 slog unless told otherwise).
pub fn set_shape(shape: Shape) {
    LOGRUS.store(shape == Shape::Logrus, Ordering::Relaxed);
}

fn shape() -> Shape {
    if LOGRUS.load(Ordering::Relaxed) {
        Shape::Logrus
    } else {
        Shape::Slog
    }
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

/// The first line of a run: our version and the upstream version the image is built over
/// (`unknown` when nothing says).
pub fn announce(command: &str, upstream_version: Option<&str>) {
    info(
        "starting argoexec",
        &[
            ("command", command),
            ("version", env!("CARGO_PKG_VERSION")),
            ("upstreamVersion", upstream_version.unwrap_or("unknown")),
        ],
    );
}

fn emit(level: Level, msg: &str, fields: &[(&str, &str)]) {
    if !enabled(level) {
        return;
    }
    let (secs, nanos) = now();
    let line = format_line(
        shape(),
        JSON.load(Ordering::Relaxed),
        level,
        secs,
        nanos,
        msg,
        fields,
    );
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

/// Warns, once, that `c` was given up for taking nothing.
pub fn note_given_up(c: &Console) {
    if let Some(name) = c.untold_give_up() {
        warn(
            "console takes no more output; the rest goes to the capture files only",
            &[("console", name)],
        );
    }
}

fn write_fd(fd: i32, bytes: &[u8], patience: Patience) {
    write_console(fd, bytes, patience);
    if let Some(c) = console::get(fd) {
        note_given_up(&c);
    }
}

fn write_console(fd: i32, bytes: &[u8], patience: Patience) {
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

/// `fields` and `fixed` in the order of their keys (unique, so pairs sort as their keys).
fn by_key<'a>(
    fields: &[(&'a str, &'a str)],
    fixed: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut all: Vec<(&str, &str)> = fields.iter().chain(fixed).copied().collect();
    all.sort_unstable();
    all
}

/// One whole line, newline included, in `shape`.
fn format_line(
    shape: Shape,
    json: bool,
    level: Level,
    secs: i64,
    nanos: u32,
    msg: &str,
    fields: &[(&str, &str)],
) -> String {
    let millis = format_utc(secs, nanos / 1_000_000);
    let mut line = String::with_capacity(112 + msg.len());
    match (shape, json) {
        (Shape::Slog, false) => {
            line.push_str("time=");
            line.push_str(&millis);
            line.push_str(" level=");
            line.push_str(level.name(shape));
            push_pair(&mut line, shape, "msg", msg);
            line.push_str(" argo=true");
            for (k, v) in fields {
                push_pair(&mut line, shape, k, v);
            }
        }
        (Shape::Slog, true) => {
            line.push_str("{\"time\":\"");
            line.push_str(&format_utc_nanos(secs, nanos));
            line.push_str("\",\"level\":\"");
            line.push_str(level.name(shape));
            line.push_str("\",\"msg\":");
            push_json_string(&mut line, msg, false);
            line.push_str(",\"argo\":true");
            for (k, v) in fields {
                line.push(',');
                push_json_member(&mut line, k, v, false);
            }
            line.push('}');
        }
        (Shape::Logrus, false) => {
            line.push_str("time=");
            push_value(&mut line, shape, &millis);
            line.push_str(" level=");
            line.push_str(level.name(shape));
            push_pair(&mut line, shape, "msg", msg);
            for (k, v) in by_key(fields, &[("argo", "true")]) {
                push_pair(&mut line, shape, k, v);
            }
        }
        (Shape::Logrus, true) => {
            // encoding/json writes a map with its keys sorted, the fixed ones included.
            let all = by_key(
                fields,
                &[
                    ("argo", "true"),
                    ("level", level.name(shape)),
                    ("msg", msg),
                    ("time", millis.as_str()),
                ],
            );
            line.push('{');
            for (i, (k, v)) in all.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                if *k == "argo" {
                    line.push_str("\"argo\":true");
                } else if matches!(*k, "level" | "msg" | "time") {
                    push_json_string(&mut line, k, true);
                    line.push(':');
                    push_json_string(&mut line, v, true);
                } else {
                    push_json_member(&mut line, k, v, true);
                }
            }
            line.push('}');
        }
    }
    line.push('\n');
    line
}

/// Appends ` key=value` for text lines.
fn push_pair(out: &mut String, shape: Shape, k: &str, v: &str) {
    out.push(' ');
    push_value(out, shape, k);
    out.push('=');
    push_value(out, shape, v);
}

/// Appends a text key or value, quoted the way the shape's handler quotes it.
fn push_value(out: &mut String, shape: Shape, v: &str) {
    let quote = match shape {
        // slog's TextHandler.needsQuoting (a backslash alone needs none).
        Shape::Slog => {
            v.is_empty()
                || v.chars().any(|c| {
                    matches!(c, ' ' | '=' | '"')
                        || (c as u32) < 0x20
                        || (!c.is_ascii() && !is_print(c))
                })
        }
        // logrus's TextFormatter.needsQuoting (an empty value stays bare).
        Shape::Logrus => !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/@^+".contains(&b)),
    };
    if quote {
        push_go_quoted(out, v);
    } else {
        out.push_str(v);
    }
}

/// Appends `s` as Go's `strconv.Quote` writes it.
fn push_go_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => push_hex(out, "\\x", c as u32, 2),
            c if c.is_ascii() || is_print(c) => out.push(c),
            c if (c as u32) < 0x10000 => push_hex(out, "\\u", c as u32, 4),
            c => push_hex(out, "\\U", c as u32, 8),
        }
    }
    out.push('"');
}

fn push_hex(out: &mut String, prefix: &str, v: u32, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str(prefix);
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (4 * i)) & 15) as usize] as char);
    }
}

/// Go's `unicode.IsPrint` for non-ASCII characters, without the tables: the C1 controls, the
/// space separators, the format characters in use, private use and the two noncharacters of
/// each plane's end are not printable; unassigned code points count as printable here.
fn is_print(c: char) -> bool {
    let c = c as u32;
    !matches!(c,
        0x80..=0xa0 | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2
        | 0x1680 | 0x180e | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064
        | 0x2066..=0x206f | 0x3000 | 0xd800..=0xf8ff | 0xfeff | 0xfff9..=0xfffb
        | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a
        | 0xe0001 | 0xe0020..=0xe007f | 0xf0000..)
        && c & 0xfffe != 0xfffe
}

/// Appends `"key":value`: a plain decimal integer as a JSON number, `<nil>` (Go's text for a
/// nil error, which its JSON writes as `null`) as `null`, anything else a string.
fn push_json_member(out: &mut String, k: &str, v: &str, html: bool) {
    push_json_string(out, k, html);
    out.push(':');
    if v == "<nil>" {
        out.push_str("null");
    } else if is_integer(v) {
        out.push_str(v);
    } else {
        push_json_string(out, v, html);
    }
}

/// `-?(0|[1-9][0-9]*)`, short enough for an int64.
fn is_integer(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// Appends `s` as a JSON string as Go writes it: `"`, `\`, `\n`, `\r`, `\t` escaped, other
/// controls as `\u00XX`, U+2028 and U+2029 escaped; with `html` (logrus, encoding/json's
/// default) also `<`, `>` and `&`.
fn push_json_string(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' | '\u{2029}' => push_hex(out, "\\u", c as u32, 4),
            '<' | '>' | '&' if html => push_hex(out, "\\u", c as u32, 4),
            c if (c as u32) < 0x20 => push_hex(out, "\\u", c as u32, 4),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Now, in UTC: seconds since the epoch and nanoseconds.
fn now() -> (i64, u32) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to fill; CLOCK_REALTIME always exists.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        return (0, 0);
    }
    (ts.tv_sec, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Formats seconds since the epoch plus milliseconds (civil-from-days, Howard Hinnant's algorithm)
/// as `2026-01-02T03:04:05.678Z`.
pub fn format_utc(secs: i64, millis: u32) -> String {
    let mut s = format_utc_secs(secs);
    s.push('.');
    push_digits(&mut s, millis, 3);
    s.push('Z');
    s
}

/// Go's RFC3339Nano in UTC: `2026-01-02T03:04:05.6789Z`, trailing zeros of the fraction
/// dropped, no fraction at all for a whole second.
fn format_utc_nanos(secs: i64, nanos: u32) -> String {
    let mut s = format_utc_secs(secs);
    if nanos > 0 {
        let mut frac = String::new();
        push_digits(&mut frac, nanos, 9);
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// `2026-01-02T03:04:05`.
fn format_utc_secs(secs: i64) -> String {
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
    let mut s = String::with_capacity(32);
    for (v, width, sep) in [
        (y, 4, '-'),
        (m, 2, '-'),
        (d, 2, 'T'),
        (rem / 3600, 2, ':'),
        (rem % 3600 / 60, 2, ':'),
        (rem % 60, 2, ' '),
    ] {
        push_digits(&mut s, v.clamp(0, 9999) as u32, width);
        if sep != ' ' {
            s.push(sep);
        }
    }
    s
}

/// Appends `v` zero-padded to `width` digits.
fn push_digits(out: &mut String, v: u32, width: usize) {
    let text = v.to_string();
    for _ in text.len()..width {
        out.push('0');
    }
    out.push_str(&text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(1_767_323_045, 678), "2026-01-02T03:04:05.678Z");
        assert_eq!(format_utc(951_782_400, 1), "2000-02-29T00:00:00.001Z");
        assert_eq!(format_utc_nanos(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_utc_nanos(1_767_323_045, 678_901_200),
            "2026-01-02T03:04:05.6789012Z"
        );
    }

    #[test]
    fn json_strings_parse_back() {
        for html in [false, true] {
            let mut s = String::new();
            push_json_string(&mut s, "a\"b\\c\n\u{1}é<&>\u{2028}", html);
            let back: String = serde_json::from_str(&s).unwrap();
            assert_eq!(back, "a\"b\\c\n\u{1}é<&>\u{2028}");
        }
        let mut s = String::new();
        push_json_string(&mut s, "<\u{1b}", true);
        assert_eq!(s, "\"\\u003c\\u001b\"");
    }

    #[test]
    fn slog_quoting() {
        let q = |v: &str| {
            let mut s = String::new();
            push_value(&mut s, Shape::Slog, v);
            s
        };
        // As measured with upstream v4.1.2's own emissary.
        assert_eq!(q("plain/path"), "plain/path");
        assert_eq!(q("a b"), "\"a b\"");
        assert_eq!(q("a=b"), "\"a=b\"");
        assert_eq!(q("a\"b"), "\"a\\\"b\"");
        assert_eq!(q("a\\b"), "a\\b");
        assert_eq!(q("a\tb"), "\"a\\tb\"");
        assert_eq!(q("a\u{1}b"), "\"a\\x01b\"");
        assert_eq!(q("a\u{7f}b"), "a\u{7f}b");
        assert_eq!(q("é<&>,'{}#:"), "é<&>,'{}#:");
        assert_eq!(q("\u{a0}x"), "\"\\u00a0x\"");
        assert_eq!(q("\u{2028}"), "\"\\u2028\"");
        assert_eq!(q("\u{ad}"), "\"\\u00ad\"");
        assert_eq!(q("\u{1F600}"), "\u{1F600}");
        assert_eq!(q(""), "\"\"");
    }

    #[test]
    fn logrus_quoting() {
        let q = |v: &str| {
            let mut s = String::new();
            push_value(&mut s, Shape::Logrus, v);
            s
        };
        assert_eq!(q("/tmp/x-1.2_@^+"), "/tmp/x-1.2_@^+");
        assert_eq!(q("a:b"), "\"a:b\"");
        assert_eq!(q(""), "");
        assert_eq!(q("exit status 3"), "\"exit status 3\"");
    }

    #[test]
    fn shapes() {
        let f = [("signal", "15"), ("error", "exit status 3")];
        let l = |shape, json| {
            format_line(
                shape,
                json,
                Level::Warn,
                1_767_323_045,
                678_000_000,
                "hi there",
                &f,
            )
        };
        assert_eq!(
            l(Shape::Slog, false),
            "time=2026-01-02T03:04:05.678Z level=WARN msg=\"hi there\" argo=true signal=15 error=\"exit status 3\"\n"
        );
        assert_eq!(
            l(Shape::Slog, true),
            "{\"time\":\"2026-01-02T03:04:05.678Z\",\"level\":\"WARN\",\"msg\":\"hi there\",\"argo\":true,\"signal\":15,\"error\":\"exit status 3\"}\n"
        );
        assert_eq!(
            l(Shape::Logrus, false),
            "time=\"2026-01-02T03:04:05.678Z\" level=warning msg=\"hi there\" argo=true error=\"exit status 3\" signal=15\n"
        );
        assert_eq!(
            l(Shape::Logrus, true),
            "{\"argo\":true,\"error\":\"exit status 3\",\"level\":\"warning\",\"msg\":\"hi there\",\"signal\":15,\"time\":\"2026-01-02T03:04:05.678Z\"}\n"
        );
    }

    #[test]
    fn versions() {
        assert_eq!(Shape::for_version("v3.6.5"), Shape::Logrus);
        assert_eq!(Shape::for_version("argoexec: v3.4.0\n"), Shape::Logrus);
        assert_eq!(Shape::for_version("v4.1.2+upstream-emissary"), Shape::Slog);
        assert_eq!(Shape::for_version("latest"), Shape::Slog);
        assert_eq!(Shape::for_version(""), Shape::Slog);
    }

    #[test]
    fn integers() {
        for (v, want) in [
            ("0", true),
            ("15", true),
            ("-1", true),
            ("007", false),
            ("1.5", false),
            ("", false),
            ("-", false),
            ("12345678901234567890", false),
        ] {
            assert_eq!(is_integer(v), want, "{v}");
        }
    }
}
