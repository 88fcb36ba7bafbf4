//! A small JSON reader and writer for the widget's wire format.
//!
//! The widget must ship in 120 KB. serde's derived decoders cost about a third of its wasm
//! (each internally tagged enum is decoded twice over: once into a buffer, then into the
//! type), so the browser side reads and writes frames through this tree and the hand-written
//! mappings in [`crate::wire`] instead; `crate::wire`'s tests check that they agree with the
//! server's serde encoding for every frame. Numbers are kept as their text (the protocol has
//! only integers; decimal parsing would cost more bytes than it is worth).

use std::fmt::Write as _;

/// A parsed JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as written.
    Num(String),
    /// A string, unescaped.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, members in order (the last of a repeated key wins on lookup).
    Obj(Vec<(String, Json)>),
}

/// Nesting deeper than this is refused (a hostile frame cannot exhaust the stack).
pub const MAX_DEPTH: usize = 64;

/// Why a text is not JSON: the byte offset and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset.
    pub at: usize,
    /// What went wrong.
    pub what: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl Json {
    /// Parses a whole text (surrounding whitespace allowed, nothing else after the value).
    pub fn parse(text: &str) -> Result<Json, ParseError> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(v)
    }

    /// An object's member (`None` for a missing key or a non-object).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A member that is present and not `null`.
    pub fn field(&self, key: &str) -> Option<&Json> {
        self.get(key).filter(|v| **v != Json::Null)
    }

    /// The string, if this is one.
    pub fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A member's string.
    pub fn str_at(&self, key: &str) -> Option<String> {
        self.get(key)?.str().map(str::to_owned)
    }

    /// The number, if this is a non-negative integer that fits.
    pub fn u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The items, if this is an array.
    pub fn arr(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(a) => Some(a),
            _ => None,
        }
    }

    /// Writes this value as JSON text.
    pub fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(n),
            Json::Str(s) => quote(out, s),
            Json::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Obj(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    quote(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// Writes `s` as a JSON string literal.
pub fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes an object member by member, straight into its text; `None` members are left out
/// (as the server's `skip_serializing_if` does).
pub struct Obj(String);

impl Default for Obj {
    fn default() -> Self {
        Self::new()
    }
}

impl Obj {
    /// An empty object.
    pub fn new() -> Self {
        Self(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        quote(&mut self.0, key);
        self.0.push(':');
    }

    /// Adds a string member.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        quote(&mut self.0, value);
        self
    }

    /// Adds a string member when there is one.
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    /// Adds an integer member.
    pub fn u64(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    /// Adds an object member when there is one.
    pub fn opt(mut self, key: &str, value: Option<Obj>) -> Self {
        if let Some(v) = value {
            self.key(key);
            self.0.push_str(&v.text());
        }
        self
    }

    /// The object as JSON text.
    pub fn text(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> ParseError {
        ParseError { at: self.i, what }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, word: &[u8], v: Json) -> Result<Json, ParseError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.ws();
        match self.s.get(self.i) {
            None => Err(self.err("unexpected end")),
            Some(b'n') => self.eat(b"null", Json::Null),
            Some(b't') => self.eat(b"true", Json::Bool(true)),
            Some(b'f') => self.eat(b"false", Json::Bool(false)),
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b'[') => {
                self.i += 1;
                let mut items = vec![];
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(self.err("expected `,` or `]`")),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut members = vec![];
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(members));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected a key"));
                    }
                    let key = self.string()?;
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return Err(self.err("expected `:`"));
                    }
                    self.i += 1;
                    members.push((key, self.value(depth + 1)?));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(members));
                        }
                        _ => return Err(self.err("expected `,` or `}`")),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                if self.s[self.i] == b'-' {
                    self.i += 1;
                }
                let digits = |p: &mut Self| {
                    let from = p.i;
                    while p.s.get(p.i).is_some_and(u8::is_ascii_digit) {
                        p.i += 1;
                    }
                    p.i > from
                };
                if !digits(self) {
                    return Err(self.err("expected a digit"));
                }
                if self.s.get(self.i) == Some(&b'.') {
                    self.i += 1;
                    if !digits(self) {
                        return Err(self.err("expected a digit"));
                    }
                }
                if let Some(b'e' | b'E') = self.s.get(self.i) {
                    self.i += 1;
                    if let Some(b'+' | b'-') = self.s.get(self.i) {
                        self.i += 1;
                    }
                    if !digits(self) {
                        return Err(self.err("expected a digit"));
                    }
                }
                // The slice is ASCII digits and signs, so always a str.
                let n = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
                Ok(Json::Num(n.to_owned()))
            }
            Some(_) => Err(self.err("expected a value")),
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(h)
    }

    /// A string literal at `self.i` (on its opening quote).
    fn string(&mut self) -> Result<String, ParseError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.i..].starts_with(b"\\u") {
                                    return Err(self.err("lone surrogate"));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("lone surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or_else(|| self.err("lone surrogate"))?
                        }
                        _ => return Err(self.err("bad escape")),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..0x20 => return Err(self.err("control character in string")),
                _ => out.push(b),
            }
        }
        // The input is a &str and escapes add whole characters, so this is UTF-8.
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_serde_json_writes_and_writes_what_it_reads() {
        let cases = [
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e\"\\\n\u0001é😀"},"n":-12.5e3}"#,
            "[]",
            "{}",
            r#""\ud83d\ude00 \u00e9 \/""#,
            " [ 1 , 2 ] ",
        ];
        for text in cases {
            let ours = Json::parse(text).unwrap();
            let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
            let back: serde_json::Value = serde_json::from_str(&ours.to_string()).unwrap();
            assert_eq!(back, theirs, "{text}");
        }
        let s = Json::parse(r#""\ud83d\ude00\t""#).unwrap();
        assert_eq!(s.str(), Some("😀\t"));
    }

    #[test]
    fn refuses_what_is_not_json_with_the_place() {
        for (text, at) in [
            ("", 0),
            ("{", 1),
            (r#"{"a" 1}"#, 5),
            ("[1,]", 3),
            ("tru", 0),
            (r#""abc"#, 4),
            ("1 2", 2),
            (r#""\ud800x""#, 7),
            ("\"a\u{1}\"", 3),
            ("-", 1),
            ("{a:1}", 1),
        ] {
            let e = Json::parse(text).unwrap_err();
            assert_eq!(e.at, at, "{text:?}: {e}");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(Json::parse(&deep).unwrap_err().what, "nested too deeply");
    }

    #[test]
    fn accessors_and_builder() {
        let v = Json::parse(r#"{"s":"x","n":7,"z":null,"a":[1],"b":true,"k":1,"k":2}"#).unwrap();
        assert_eq!(v.str_at("s").as_deref(), Some("x"));
        assert_eq!(v.get("n").and_then(Json::u64), Some(7));
        assert_eq!(v.field("z"), None);
        assert_eq!(v.get("z"), Some(&Json::Null));
        assert_eq!(v.get("a").and_then(Json::arr).map(<[Json]>::len), Some(1));
        assert_eq!(v.get("b").and_then(Json::bool), Some(true));
        assert_eq!(v.get("k").and_then(Json::u64), Some(2));
        assert_eq!(Json::Num("-1".into()).u64(), None);
        let text = Obj::new()
            .str("t", "a\"b")
            .u64("n", 3)
            .opt_str("none", None)
            .opt("o", Some(Obj::new().u64("x", 0)))
            .opt("none", None)
            .text();
        assert_eq!(text, r#"{"t":"a\"b","n":3,"o":{"x":0}}"#);
        assert_eq!(Obj::new().text(), "{}");
    }
}
