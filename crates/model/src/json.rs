//! The JSON reader: text to a [`Dom`] in one pass, as serde_json reads it (the same strings, the
//! same integers) but without serde's visitor calls, a fifth of loading a JSON manifest. What it
//! does not read (invalid JSON, a duplicate key, a fraction or exponent, deep nesting) it leaves
//! to serde_json, which reads the whole text again and words every error.

use crate::dom::{Dom, Node};

/// The text is left to serde_json.
#[derive(Debug)]
pub(crate) struct Unsupported;

type R<T> = Result<T, Unsupported>;

/// Nesting beyond this is left to serde_json, which refuses more than 128 levels.
const MAX_DEPTH: usize = 100;

/// Reads `dom`'s text, one JSON value, into `dom`.
pub(crate) fn read(dom: &mut Dom) -> R<()> {
    let text = dom.text();
    // A node per 7 bytes of compact JSON (kubectl's is more spaced out): reserved at once, the
    // tape of a large file is not copied as it grows, and pages never written cost nothing.
    dom.nodes.reserve(text.len() / 6);
    let mut reader = Reader { b: text.as_bytes(), text, pos: 0 };
    reader.space();
    reader.value(dom, 0)?;
    reader.space();
    if reader.pos == reader.b.len() { Ok(()) } else { Err(Unsupported) }
}

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Consumes `c` (after any space), or fails.
    fn expect(&mut self, c: u8) -> R<()> {
        self.space();
        if self.b.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Unsupported)
        }
    }

    fn value(&mut self, dom: &mut Dom<'a>, depth: usize) -> R<()> {
        match *self.b.get(self.pos).ok_or(Unsupported)? {
            b'{' => self.object(dom, depth + 1),
            b'[' => self.array(dom, depth + 1),
            b'"' => {
                let node = self.string(dom)?;
                dom.push(node);
                Ok(())
            }
            b't' => self.word("true", Node::Bool(true), dom),
            b'f' => self.word("false", Node::Bool(false), dom),
            b'n' => self.word("null", Node::Null, dom),
            _ => {
                let node = self.integer()?;
                dom.push(node);
                Ok(())
            }
        }
    }

    fn word(&mut self, word: &str, node: Node, dom: &mut Dom) -> R<()> {
        if !self.b[self.pos..].starts_with(word.as_bytes()) {
            return Err(Unsupported);
        }
        self.pos += word.len();
        dom.push(node);
        Ok(())
    }

    fn object(&mut self, dom: &mut Dom<'a>, depth: usize) -> R<()> {
        self.collection(dom, depth, Node::Map { len: 0, end: 0 }, b'}', |reader, dom, map_at| {
            if reader.b.get(reader.pos) != Some(&b'"') {
                return Err(Unsupported);
            }
            let key = reader.string(dom)?;
            let key_at = dom.nodes.len();
            dom.push(key);
            if dom.repeats_key(map_at, key_at) {
                return Err(Unsupported);
            }
            reader.expect(b':')?;
            reader.space();
            reader.value(dom, depth)
        })
    }

    fn array(&mut self, dom: &mut Dom<'a>, depth: usize) -> R<()> {
        self.collection(dom, depth, Node::Seq { len: 0, end: 0 }, b']', |reader, dom, _| reader.value(dom, depth))
    }

    /// The object or array opening at `self.pos` (pushed as `open`, ended by `close`), each of
    /// its entries read by `entry` (given where the collection's node is).
    fn collection(&mut self, dom: &mut Dom<'a>, depth: usize, open: Node, close: u8, mut entry: impl FnMut(&mut Self, &mut Dom<'a>, usize) -> R<()>) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(Unsupported);
        }
        self.pos += 1;
        let at = dom.nodes.len();
        dom.push(open);
        let mut count = 0;
        self.space();
        if self.b.get(self.pos) == Some(&close) {
            self.pos += 1;
        } else {
            loop {
                self.space();
                entry(self, dom, at)?;
                count += 1;
                self.space();
                match self.b.get(self.pos) {
                    Some(b',') => self.pos += 1,
                    Some(&c) if c == close => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(Unsupported),
                }
            }
        }
        dom.close(at, count);
        Ok(())
    }

    /// A string at `"`: a span of the input when written without escapes.
    fn string(&mut self, dom: &mut Dom<'a>) -> R<Node> {
        let start = self.pos + 1;
        let mut i = start;
        loop {
            match *self.b.get(i).ok_or(Unsupported)? {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(dom.str_node(&self.text[start..i]));
                }
                b'\\' => break,
                0..=0x1f => return Err(Unsupported),
                _ => i += 1,
            }
        }
        let mut text = String::from(&self.text[start..i]);
        let mut run = i;
        loop {
            match *self.b.get(i).ok_or(Unsupported)? {
                b'"' => {
                    text.push_str(&self.text[run..i]);
                    self.pos = i + 1;
                    return Ok(dom.owned_str(&text));
                }
                b'\\' => {
                    text.push_str(&self.text[run..i]);
                    let (c, used) = self.escape(i + 1)?;
                    text.push(c);
                    i += 1 + used;
                    run = i;
                }
                0..=0x1f => return Err(Unsupported),
                _ => i += 1,
            }
        }
    }

    /// The escape after a `\` at `i`: the character and the bytes used.
    fn escape(&self, i: usize) -> R<(char, usize)> {
        let c = match *self.b.get(i).ok_or(Unsupported)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4(i + 1)?;
                if !(0xd800..0xe000).contains(&unit) {
                    return Ok((char::from_u32(unit).ok_or(Unsupported)?, 5));
                }
                // A surrogate pair, `\ud83d\ude00`; a lone half is serde_json's to refuse.
                if !(0xd800..0xdc00).contains(&unit) || self.b.get(i + 5..i + 7) != Some(b"\\u") {
                    return Err(Unsupported);
                }
                let low = self.hex4(i + 7)?;
                if !(0xdc00..0xe000).contains(&low) {
                    return Err(Unsupported);
                }
                let c = char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)).ok_or(Unsupported)?;
                return Ok((c, 11));
            }
            _ => return Err(Unsupported),
        };
        Ok((c, 1))
    }

    fn hex4(&self, i: usize) -> R<u32> {
        // Digits only: from_str_radix would take a sign.
        let digits = self.text.get(i..i + 4).ok_or(Unsupported)?;
        if !digits.bytes().all(|d| d.is_ascii_hexdigit()) {
            return Err(Unsupported);
        }
        u32::from_str_radix(digits, 16).map_err(|_| Unsupported)
    }

    /// An integer of at most 18 digits, as serde_json gives it: non-negative as `U64`, negative
    /// as `I64`. Fractions, exponents, `-0` and longer numbers are serde_json's.
    fn integer(&mut self) -> R<Node> {
        let negative = self.b[self.pos] == b'-';
        let start = self.pos + usize::from(negative);
        let mut end = start;
        while self.b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        let digits = &self.text[start..end];
        let leading_zero = digits.len() > 1 && digits.starts_with('0');
        if digits.is_empty() || digits.len() > 18 || leading_zero || matches!(self.b.get(end), Some(b'.' | b'e' | b'E')) {
            return Err(Unsupported);
        }
        let n: i64 = digits.parse().map_err(|_| Unsupported)?;
        self.pos = end;
        match (negative, n) {
            (false, n) => Ok(Node::U64(n as u64)),
            (true, 0) => Err(Unsupported),
            (true, n) => Ok(Node::I64(-n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::dom::Build;

    /// The nodes serde_json reads `text` to, or `None` where it refuses it.
    fn by_serde_json(text: &str) -> Option<(Vec<Node>, Vec<Option<String>>)> {
        let mut dom = Dom::new(text);
        let mut de = serde_json::Deserializer::from_str(text);
        serde::de::DeserializeSeed::deserialize(Build(&mut dom), &mut de).and_then(|()| de.end()).ok()?;
        Some(contents(&dom))
    }

    fn by_reader(text: &str) -> Option<(Vec<Node>, Vec<Option<String>>)> {
        let mut dom = Dom::new(text);
        read(&mut dom).ok()?;
        Some(contents(&dom))
    }

    /// The nodes with string nodes' texts beside them (a span and a copy of the same text are
    /// the same string).
    fn contents(dom: &Dom) -> (Vec<Node>, Vec<Option<String>>) {
        let texts = (0..dom.nodes.len()).map(|at| dom.root_at(at).as_str().map(str::to_owned)).collect();
        let nodes = dom.nodes.iter().map(|n| if let Node::Str { len, .. } = n { Node::Str { owned: false, start: 0, len: *len } } else { *n }).collect();
        (nodes, texts)
    }

    #[test]
    fn reads_as_serde_json_reads() {
        let texts = [
            r#"{"apiVersion":"v1","kind":"List","items":[{"a":1,"b":-2,"c":null,"d":true,"e":false,"f":[],"g":{}}]}"#,
            " \n\t{ \"a\" : [ 1 , 2 ] } \r\n",
            r#"{"esc":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00 end","plain":"é"}"#,
            r#"[123456789012345678, -123456789012345678, 0]"#,
            r#""just a string""#,
        ];
        for text in texts {
            let read = by_reader(text).unwrap_or_else(|| panic!("not read: {text}"));
            assert_eq!(Some(read), by_serde_json(text), "{text}");
        }
    }

    #[test]
    fn leaves_to_serde_json_what_it_does_not_read() {
        let texts = [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":1234567890123456789}"#,
            r#"{"a":01}"#,
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\x"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"{"a":1} x"#,
            r#"{a:1}"#,
            r#"{"a":tru}"#,
            "",
            &"[".repeat(101),
        ];
        for text in texts {
            assert!(by_reader(text).is_none(), "read, and should have been left to serde_json: {text}");
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::Value::from(n / 10)),
            "[a-z\"\\\\/\u{0}-\u{1f}é😀]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-z]{0,3}", inner, 0..5).prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever it reads, it reads as serde_json does, compact or pretty.
        #[test]
        fn agrees_with_serde_json(value in json_value(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.unwrap();
            let read = by_reader(&text);
            prop_assert!(read.is_some(), "not read: {}", text);
            prop_assert_eq!(read, by_serde_json(&text), "{}", text);
        }
    }
}
