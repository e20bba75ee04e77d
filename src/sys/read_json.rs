//! Reading JSON input (the template, the args file) into typed structs with serde_json.
//!
//! This module owns what both inputs share: Go's reading of `null` (`null_default`, `list`),
//! an error for a value of the wrong type names the
//! path to it (`outputs.artifacts[1].path: invalid type: ...`) besides serde_json's line and
//! column, and invalid UTF-8 is refused wherever it is, also in fields nobody reads
//! (serde_json would skip it unchecked there).
//!
//! The path is found after the fact, by `path_at` walking the text up to where serde_json
//! stopped: a few lines run only on error, where serde_path_to_error, which tracks the path
//! while deserializing, cost 28 KiB of the shipped binary (docs/size.md).

use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::error::Category;

/// Reads JSON `data` into a `T`; the error says where, see the module comment.
pub fn from_json<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Result<T, String> {
    let text = std::str::from_utf8(data).map_err(|e| {
        let (line, column) = line_column(&data[..e.valid_up_to()]);
        format!("invalid UTF-8 at line {line} column {column}")
    })?;
    serde_json::from_str(text).map_err(|e| describe(text, &e))
}

/// serde_json's error, after the path to the value at fault when it is one of a wrong type.
/// Not generic: one copy serves every `T`.
fn describe(text: &str, e: &serde_json::Error) -> String {
    let path = match e.classify() {
        Category::Data => path_at(text, offset(text, e.line(), e.column())),
        _ => String::new(),
    };
    if path.is_empty() {
        e.to_string()
    } else {
        format!("{path}: {e}")
    }
}

/// A field whose `null` reads as its zero value, as in Go.
pub fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> std::result::Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// A struct field that only a JSON object fills; `null` or absent is `None`. serde's derive
/// alone would also fill a struct from an array, by position, where Go refuses it.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_option(Object(PhantomData))
}

/// `object`, with `null` or absent the struct's zero value.
pub fn object_or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    object(d).map(Option::unwrap_or_default)
}

struct Object<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_unit<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, m: A) -> Result<Option<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(m)).map(Some)
    }
}

/// An array field of strings: `null` is empty, and a `null` element "", as in Go.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    d.deserialize_option(List::<Element<T>>(PhantomData))
}

/// An array field of structs: `null` is empty, a `null` element the zero value, as in Go,
/// and each other element has to be an object (`object`).
pub fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    d.deserialize_option(List::<ObjectElement<T>>(PhantomData))
}

/// An array's element, read by `list` or `objects`.
trait Item {
    type Inner;
    fn inner(self) -> Self::Inner;
}

/// An element read by `null_default`.
struct Element<T>(T);
/// An element read by `object_or_default`.
struct ObjectElement<T>(T);

impl<T> Item for Element<T> {
    type Inner = T;
    fn inner(self) -> T {
        self.0
    }
}

impl<T> Item for ObjectElement<T> {
    type Inner = T;
    fn inner(self) -> T {
        self.0
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Element<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        null_default(d).map(Element)
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for ObjectElement<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object_or_default(d).map(ObjectElement)
    }
}

struct List<W>(PhantomData<W>);

impl<'de, W: Deserialize<'de> + Item> Visitor<'de> for List<W> {
    type Value = Vec<W::Inner>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<W>()? {
            items.push(item.inner());
        }
        Ok(items)
    }
}

/// The 1-based line and column just after `before`, as serde_json counts them (bytes).
fn line_column(before: &[u8]) -> (usize, usize) {
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
    (line, column)
}

/// The byte offset of serde_json's `line` and `column` (the bytes read of that line).
fn offset(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    (start + column).min(text.len())
}

/// Where in the JSON document `text[..end]` stops: `a.b[2].c`, the keys and indices of the
/// values open at `end` (the empty string at the top).
fn path_at(text: &str, end: usize) -> String {
    enum Open<'a> {
        /// An object, the key last read, and whether a key comes next.
        Object(&'a str, bool),
        /// An array, the index of the element being read.
        Array(usize),
    }
    let b = &text.as_bytes()[..end];
    let mut open: Vec<Open> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i + 1;
                i = start;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Open::Object(key, true)) = open.last_mut() {
                    *key = &text[start..i.min(b.len())];
                }
            }
            // The value that failed may be the object or array starting at `end`: not inside it.
            b'{' if i + 1 < b.len() => open.push(Open::Object("", true)),
            b'[' if i + 1 < b.len() => open.push(Open::Array(0)),
            b'}' | b']' => {
                open.pop();
            }
            b':' => {
                if let Some(Open::Object(_, next_key)) = open.last_mut() {
                    *next_key = false;
                }
            }
            b',' => match open.last_mut() {
                Some(Open::Object(_, next_key)) => *next_key = true,
                Some(Open::Array(n)) => *n += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for o in open {
        match o {
            Open::Object(key, _) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Open::Array(n) => path.push_str(&format!("[{n}]")),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_name_their_path() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            a: Option<Vec<Inner>>,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            b: Option<String>,
        }
        let e = |json: &str| from_json::<T>(json.as_bytes()).unwrap_err();
        let msg = e(r#"{"a":[{"b":"x"},{"b":3}]}"#);
        assert!(msg.starts_with("a[1].b: invalid type: integer"), "{msg}");
        let msg = e("{\"x\":\"q\\\"{[\",\n \"a\":[{\"b\":{\"c\":1}}]}");
        assert!(msg.starts_with("a[0].b: invalid type: map"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        let msg = e(r#"{"a":{}}"#);
        assert!(msg.starts_with("a: invalid type: map"), "{msg}");
        // Not a wrong type: no path.
        assert!(e(r#"{"a":[}"#).starts_with("expected value"));
    }
}
