//! A small JSON reader (RFC 8259) for the two JSON inputs: the template and the args file.
//!
//! It owns the grammar and nothing else: bytes in, a `Value` tree out, or an error naming the
//! line and column. Strings must be UTF-8 (as serde_json requires); a lone UTF-16 surrogate in
//! a `\u` escape reads as U+FFFD, as in Go's `encoding/json` that wrote the input. Numbers keep
//! their literal text, so nothing is rounded and a warning can show them as written. Objects keep
//! every member in order; `get` returns the last of duplicate keys, as Go's decoder does.
//! Nesting is limited to `MAX_DEPTH` so hostile input cannot exhaust the stack.
//!
//! Why not serde_json: it was the single largest piece of the binary after std, and the
//! emissary needs a reader for two small documents, not a serialization framework.

/// Deepest nesting accepted (serde_json's default limit is the same).
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number's literal, already checked against the JSON grammar.
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// An integral number that fits an i64 (no fraction, no exponent), like Go's `int` fields.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// The member `key` of an object's members, the last one if repeated (as Go's decoder keeps).
pub fn member<'a>(members: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    members.iter().rev().find(|(k, _)| k == key).map(|m| &m.1)
}

/// Parses one JSON document; only whitespace may follow it.
pub fn parse(data: &[u8]) -> Result<Value, String> {
    let mut p = Parser { data, pos: 0 };
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos < data.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(v)
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    /// `what` at the current position, as "what at line L column C" (1-based, columns in bytes).
    fn error(&self, what: &str) -> String {
        let before = &self.data[..self.pos.min(self.data.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let col = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
        format!("{what} at line {line} column {col}")
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `b` after optional whitespace, or fails saying what was wanted.
    fn expect(&mut self, b: u8, want: &str) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(want))
        }
    }

    fn unexpected(&self, want: &str) -> String {
        match self.peek() {
            None => self.error(&format!("EOF while parsing, expected {want}")),
            Some(_) => self.error(&format!("expected {want}")),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        self.skip_ws();
        match self.peek() {
            Some(b'{') => self.nested(depth, |p, d| p.object(d)),
            Some(b'[') => self.nested(depth, |p, d| p.array(d)),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.unexpected("a value")),
        }
    }

    fn nested(
        &mut self,
        depth: usize,
        f: impl FnOnce(&mut Self, usize) -> Result<Value, String>,
    ) -> Result<Value, String> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.pos += 1; // the opening bracket
        f(self, depth + 1)
    }

    fn word(&mut self, word: &str, v: Value) -> Result<Value, String> {
        if self.data[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, String> {
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a string key"));
            }
            let key = self.string()?;
            self.expect(b':', "':'")?;
            members.push((key, self.value(depth)?));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        // No leading zeros: `0` alone, or a non-zero digit first.
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        // Only ASCII was consumed.
        let text = String::from_utf8_lossy(&self.data[start..self.pos]).into_owned();
        Ok(Value::Number(text))
    }

    /// A string at the current `"`; unescapes it and checks it is UTF-8.
    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            // Copy the run of plain bytes in one go.
            let run = self.data[self.pos..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(self.data.len() - self.pos);
            out.extend_from_slice(&self.data[self.pos..self.pos + run]);
            self.pos += run;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(self.error("control character in string")),
                None => return Err(self.error("EOF while parsing a string")),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("invalid UTF-8 in string"))
    }

    /// One escape after the backslash, appended to `out` as UTF-8.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let Some(c) = self.peek() else {
            return Err(self.error("EOF while parsing a string"));
        };
        self.pos += 1;
        let b = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let ch = self.unicode()?;
                let mut buf = [0; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => {
                self.pos -= 1;
                return Err(self.error("invalid escape"));
            }
        };
        out.push(b);
        Ok(())
    }

    /// The code point of `XXXX` (after `\u`), joining a surrogate pair; a lone surrogate is
    /// U+FFFD, as Go decodes it.
    fn unicode(&mut self) -> Result<char, String> {
        let hi = self.hex4()?;
        if !(0xD800..0xDC00).contains(&hi) {
            return Ok(char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
        if self.data[self.pos..].starts_with(b"\\u") {
            let save = self.pos;
            self.pos += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            // Not a low half: that escape stands on its own.
            self.pos = save;
        }
        Ok(char::REPLACEMENT_CHARACTER)
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            v = v * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn documents() {
        assert_eq!(parse(b" null ").unwrap(), Value::Null);
        assert_eq!(
            parse(b"[true,false]").unwrap(),
            Value::Array(vec![Value::Bool(true), Value::Bool(false)])
        );
        let v = parse(br#"{"a": {"b": [1, -2.5e3, "x"]}, "a": 7}"#).unwrap();
        let Value::Object(m) = &v else { panic!() };
        assert_eq!(member(m, "a").and_then(Value::as_i64), Some(7));
        assert_eq!(m.len(), 2);
        let Value::Object(inner) = &m[0].1 else {
            panic!()
        };
        assert_eq!(
            member(inner, "b"),
            Some(&Value::Array(vec![
                Value::Number("1".into()),
                Value::Number("-2.5e3".into()),
                s("x")
            ]))
        );
        assert_eq!(parse(b"{}").unwrap(), Value::Object(vec![]));
        assert_eq!(parse(b"[ ]").unwrap(), Value::Array(vec![]));
    }

    #[test]
    fn strings() {
        assert_eq!(
            parse(br#""a\"b\\c\/\b\f\n\r\t""#).unwrap(),
            s("a\"b\\c/\u{8}\u{c}\n\r\t")
        );
        assert_eq!(parse(br#""\u00e9\ud83d\ude00""#).unwrap(), s("é😀"));
        assert_eq!(parse(r#""é😀""#.as_bytes()).unwrap(), s("é😀"));
        // Lone surrogates become U+FFFD, as in Go; the following escape stays itself.
        assert_eq!(parse(br#""\ud800\u0041""#).unwrap(), s("\u{fffd}A"));
        assert_eq!(parse(br#""\udc00""#).unwrap(), s("\u{fffd}"));
        for bad in [
            &b"\"\xff\""[..],
            b"\"a",
            b"\"\\x\"",
            b"\"\\u12\"",
            b"\"\n\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers() {
        for ok in ["0", "-0", "12", "1.5", "1e9", "1E+2", "-3.25e-1"] {
            assert_eq!(parse(ok.as_bytes()).unwrap(), Value::Number(ok.into()));
        }
        for bad in ["01", "-", "1.", ".5", "1e", "+1", "0x1", "1.e3"] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            parse(b"9223372036854775807").unwrap().as_i64(),
            Some(i64::MAX)
        );
        assert_eq!(parse(b"9223372036854775808").unwrap().as_i64(), None);
        assert_eq!(parse(b"1.0").unwrap().as_i64(), None);
        assert_eq!(parse(b"1e2").unwrap().as_i64(), None);
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(
            parse(b"{\n  \"a\" 1}").unwrap_err(),
            "expected ':' at line 2 column 7"
        );
        assert_eq!(
            parse(b"").unwrap_err(),
            "EOF while parsing, expected a value at line 1 column 1"
        );
        assert!(parse(b"[1,]").is_err());
        assert!(parse(b"{\"a\":1,}").is_err());
        assert!(parse(b"[1] x").is_err());
        assert!(parse(b"tru").is_err());
        assert!(parse(b"{1:2}").is_err());
    }

    #[test]
    fn depth_is_limited() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = "[".repeat(100_000);
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err(),
            format!("nesting too deep at line 1 column {}", MAX_DEPTH + 1)
        );
    }
}
