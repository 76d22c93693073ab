//! One document as a flat list of nodes in document order (a tape): what the loader reads
//! objects from, in place of `serde_json::Value`. Strings are spans of the input where the text
//! is written as is (no escapes), so reading a document allocates nothing once its buffers have
//! grown; the same `Dom` is cleared and reused for every document of a file.
//!
//! The parsers fill it: the JSON reader (`json.rs`) and the YAML fast path (`yaml.rs`), and
//! serde (serde_json and serde-saphyr, where those step aside) through [`Build`]. Objects are
//! read from it with serde derive through [`typed`], which reports the path of a wrong type as
//! `serde_path_to_error` did.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// One node. Numbers are kept as serde_json keeps them (non-negative integers as `U64`), so
/// that every message about a wrong type reads as it did when documents were `Value`s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    /// Text, in the input (`owned` false) or in [`Dom::owned`].
    Str {
        owned: bool,
        start: u32,
        len: u32,
    },
    /// `len` items; its descendants end before node `end`.
    Seq {
        len: u32,
        end: u32,
    },
    /// `len` entries, each a key (a `Str`) followed by its value.
    Map {
        len: u32,
        end: u32,
    },
}

/// A document's nodes, root first.
#[derive(Default)]
pub(crate) struct Dom<'a> {
    text: &'a str,
    pub(crate) nodes: Vec<Node>,
    /// Texts that are not written as is in the input (escapes, folded lines).
    pub(crate) owned: String,
}

/// Offsets are u32: a larger input is refused before it is read.
pub(crate) const MAX_INPUT: usize = u32::MAX as usize;

impl<'a> Dom<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Dom { text, nodes: Vec::new(), owned: String::new() }
    }

    /// The input the document is read from.
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.owned.clear();
    }

    pub(crate) fn root(&self) -> Option<V<'_, 'a>> {
        (!self.nodes.is_empty()).then_some(V { dom: self, at: 0 })
    }

    /// The node at `at`.
    pub(crate) fn root_at(&self, at: usize) -> V<'_, 'a> {
        V { dom: self, at }
    }

    /// The index after node `at` and its descendants.
    fn skip(&self, at: usize) -> usize {
        match self.nodes[at] {
            Node::Seq { end, .. } | Node::Map { end, .. } => end as usize,
            _ => at + 1,
        }
    }

    /// Whether node `at` is the string `text`; lengths are compared first, as most keys differ
    /// in length, before the text is sliced.
    fn is_str(&self, at: usize, text: &str) -> bool {
        match self.nodes[at] {
            Node::Str { owned, start, len } => len as usize == text.len() && self.str_at(owned, start, len) == text,
            _ => false,
        }
    }

    /// Whether the map opened at `map_at` has the key at `key_at` before it.
    pub(crate) fn repeats_key(&self, map_at: usize, key_at: usize) -> bool {
        let Some(key) = self.root_at(key_at).as_str() else { return false };
        let mut at = map_at + 1;
        while at < key_at {
            if self.is_str(at, key) {
                return true;
            }
            at = self.skip(at + 1);
        }
        false
    }

    fn str_at(&self, owned: bool, start: u32, len: u32) -> &str {
        let (start, end) = (start as usize, start as usize + len as usize);
        if owned { &self.owned[start..end] } else { &self.text[start..end] }
    }

    /// A string node for `s`: a span of the input when `s` lies in it, else a copy.
    pub(crate) fn str_node(&mut self, s: &str) -> Node {
        let offset = (s.as_ptr() as usize).wrapping_sub(self.text.as_ptr() as usize);
        if offset <= self.text.len() && s.len() <= self.text.len() - offset {
            return Node::Str { owned: false, start: offset as u32, len: s.len() as u32 };
        }
        self.owned_str(s)
    }

    pub(crate) fn owned_str(&mut self, s: &str) -> Node {
        let start = self.owned.len() as u32;
        self.owned.push_str(s);
        Node::Str { owned: true, start, len: s.len() as u32 }
    }

    pub(crate) fn push(&mut self, node: Node) {
        self.nodes.push(node);
    }

    /// Ends the collection opened at `at` (pushed as a `Seq` or `Map` with any counts).
    pub(crate) fn close(&mut self, at: usize, count: u32) {
        let end = self.nodes.len() as u32;
        match &mut self.nodes[at] {
            Node::Seq { len, end: e } | Node::Map { len, end: e } => (*len, *e) = (count, end),
            _ => unreachable!("close of a scalar"),
        }
    }
}

/// A node of a [`Dom`], to read.
#[derive(Clone, Copy)]
pub(crate) struct V<'d, 'a> {
    dom: &'d Dom<'a>,
    at: usize,
}

impl<'d, 'a> V<'d, 'a> {
    pub(crate) fn node(&self) -> Node {
        self.dom.nodes[self.at]
    }

    pub(crate) fn as_str(&self) -> Option<&'d str> {
        match self.node() {
            Node::Str { owned, start, len } => Some(self.dom.str_at(owned, start, len)),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        self.node() == Node::Null
    }

    pub(crate) fn is_map(&self) -> bool {
        matches!(self.node(), Node::Map { .. })
    }

    pub(crate) fn is_seq(&self) -> bool {
        matches!(self.node(), Node::Seq { .. })
    }

    /// A map's entries, in document order; nothing for other nodes.
    pub(crate) fn entries(&self) -> Entries<'d, 'a> {
        let left = match self.node() {
            Node::Map { len, .. } => len,
            _ => 0,
        };
        Entries { dom: self.dom, at: self.at + 1, left }
    }

    /// A sequence's items; nothing for other nodes.
    pub(crate) fn items(&self) -> Items<'d, 'a> {
        let left = match self.node() {
            Node::Seq { len, .. } => len,
            _ => 0,
        };
        Items { dom: self.dom, at: self.at + 1, left }
    }

    /// The value of `key` in a map.
    pub(crate) fn get(&self, key: &str) -> Option<V<'d, 'a>> {
        let Node::Map { len, .. } = self.node() else { return None };
        let mut at = self.at + 1;
        for _ in 0..len {
            if self.dom.is_str(at, key) {
                return Some(V { dom: self.dom, at: at + 1 });
            }
            at = self.dom.skip(at + 1);
        }
        None
    }

    /// The `i`-th item of a sequence.
    pub(crate) fn index(&self, i: usize) -> Option<V<'d, 'a>> {
        self.items().nth(i)
    }

    pub(crate) fn get_str(&self, key: &str) -> Option<&'d str> {
        self.get(key).and_then(|v| v.as_str())
    }
}

pub(crate) struct Entries<'d, 'a> {
    dom: &'d Dom<'a>,
    at: usize,
    left: u32,
}

impl<'d, 'a> Iterator for Entries<'d, 'a> {
    type Item = (&'d str, V<'d, 'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let key = V { dom: self.dom, at: self.at };
        let value = V { dom: self.dom, at: self.at + 1 };
        self.at = self.dom.skip(self.at + 1);
        Some((key.as_str().unwrap_or_default(), value))
    }
}

pub(crate) struct Items<'d, 'a> {
    dom: &'d Dom<'a>,
    at: usize,
    left: u32,
}

impl<'d, 'a> Iterator for Items<'d, 'a> {
    type Item = V<'d, 'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = V { dom: self.dom, at: self.at };
        self.at = self.dom.skip(self.at);
        Some(item)
    }
}

// ---- Filling a Dom through serde (serde_json, serde-saphyr) ----

/// Appends the value a deserializer reads to a [`Dom`]. Maps must not repeat a key: serde_json
/// keeps the last of duplicate keys, the API server's strict field validation rejects them (as
/// serde-saphyr does in YAML).
pub(crate) struct Build<'b, 'a>(pub(crate) &'b mut Dom<'a>);

impl<'de> DeserializeSeed<'de> for Build<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.push(Node::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(if v >= 0 { Node::U64(v as u64) } else { Node::I64(v) });
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(Node::U64(v));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // As serde_json::Value::from(f64): no JSON number for NaN and infinities.
        self.0.push(if v.is_finite() { Node::F64(v) } else { Node::Null });
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let node = self.0.str_node(v);
        self.0.push(node);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.push(Node::Null);
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.0.push(Node::Null);
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.0.nodes.len();
        self.0.push(Node::Seq { len: 0, end: 0 });
        let mut count = 0;
        while seq.next_element_seed(Build(self.0))?.is_some() {
            count += 1;
        }
        self.0.close(at, count);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.0.nodes.len();
        self.0.push(Node::Map { len: 0, end: 0 });
        let mut count = 0;
        while map.next_key_seed(Key(self.0))?.is_some() {
            let key_at = self.0.nodes.len() - 1;
            if self.0.repeats_key(at, key_at) {
                let key = self.0.root_at(key_at).as_str().unwrap_or_default();
                return Err(de::Error::custom(format_args!("duplicate key {key}")));
            }
            map.next_value_seed(Build(self.0))?;
            count += 1;
        }
        self.0.close(at, count);
        Ok(())
    }
}

/// A map key, read as a `String` is (serde-saphyr gives any scalar key as its text).
struct Key<'b, 'a>(&'b mut Dom<'a>);

impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_string(self)
    }
}

impl<'de> Visitor<'de> for Key<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let node = self.0.str_node(v);
        self.0.push(node);
        Ok(())
    }
}

/// A document read with serde-saphyr's own document iterator, which wants owned values: its
/// strings are copies.
pub(crate) struct OwnedDom(pub(crate) Dom<'static>);

impl<'de> serde::Deserialize<'de> for OwnedDom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut dom = Dom::default();
        Build(&mut dom).deserialize(d)?;
        Ok(OwnedDom(dom))
    }
}

// ---- Reading typed objects from a Dom ----

/// A segment of the path to a wrong value, innermost first while an error travels outwards.
enum Segment {
    Key(usize),
    Index(usize),
}

/// Reads `T` from `v`; on a wrong type, the message and the path of the value (`spec.ports[0]`,
/// `.` for the value itself), as `serde_path_to_error` words them.
/// Strings are borrowed from the document where `T` takes `&str`.
pub(crate) fn typed<'d, T: serde::Deserialize<'d>>(v: V<'d, '_>) -> Result<T, (String, String)> {
    let path = RefCell::new(Vec::new());
    T::deserialize(Typed { v, path: &path }).map_err(|e| {
        let path = path.into_inner();
        let mut text = String::new();
        for segment in path.iter().rev() {
            match segment {
                Segment::Key(at) => {
                    if !text.is_empty() {
                        text.push('.');
                    }
                    text.push_str(V { dom: v.dom, at: *at }.as_str().unwrap_or_default());
                }
                Segment::Index(i) => text.push_str(&format!("[{i}]")),
            }
        }
        if text.is_empty() {
            text.push('.');
        }
        // Fields borrowed from the document (`&str`) are strings all the same to the user.
        (text, e.to_string().replace("a borrowed string", "a string"))
    })
}

/// serde_json's error type, so that messages read as serde_json words them (`null`, not
/// `unit value`).
type Error = serde_json::Error;

struct Typed<'p, 'd, 'a> {
    v: V<'d, 'a>,
    path: &'p RefCell<Vec<Segment>>,
}

impl<'d> Deserializer<'d> for Typed<'_, 'd, '_> {
    type Error = Error;

    fn deserialize_any<W: Visitor<'d>>(self, visitor: W) -> Result<W::Value, Error> {
        match self.v.node() {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::U64(n) => visitor.visit_u64(n),
            Node::I64(n) => visitor.visit_i64(n),
            Node::F64(n) => visitor.visit_f64(n),
            Node::Str { .. } => visitor.visit_borrowed_str(self.v.as_str().unwrap_or_default()),
            Node::Seq { len, .. } => {
                let mut access = SeqReader { items: self.v.items(), index: 0, path: self.path };
                let value = visitor.visit_seq(&mut access)?;
                match access.items.left {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(len as usize, &"fewer elements in array")),
                }
            }
            Node::Map { len, .. } => {
                let mut access = MapReader { entries: self.v.entries(), value: None, path: self.path };
                let value = visitor.visit_map(&mut access)?;
                match access.entries.left {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(len as usize, &"fewer elements in map")),
                }
            }
        }
    }

    fn deserialize_option<W: Visitor<'d>>(self, visitor: W) -> Result<W::Value, Error> {
        match self.v.node() {
            Node::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<W: Visitor<'d>>(self, _name: &'static str, visitor: W) -> Result<W::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<W: Visitor<'d>>(self, _name: &'static str, _variants: &'static [&'static str], visitor: W) -> Result<W::Value, Error> {
        // Unit variants written as strings, the only enums a manifest could hold.
        match self.v.as_str() {
            Some(s) => visitor.visit_enum(s.into_deserializer()),
            None => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'d>>
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct SeqReader<'p, 'd, 'a> {
    items: Items<'d, 'a>,
    index: usize,
    path: &'p RefCell<Vec<Segment>>,
}

impl<'d> SeqAccess<'d> for SeqReader<'_, 'd, '_> {
    type Error = Error;
    fn next_element_seed<S: DeserializeSeed<'d>>(&mut self, seed: S) -> Result<Option<S::Value>, Error> {
        let Some(v) = self.items.next() else { return Ok(None) };
        let index = self.index;
        self.index += 1;
        seed.deserialize(Typed { v, path: self.path }).map(Some).inspect_err(|_| self.path.borrow_mut().push(Segment::Index(index)))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.left as usize)
    }
}

struct MapReader<'p, 'd, 'a> {
    entries: Entries<'d, 'a>,
    /// The value of the key just read, and the key's node.
    value: Option<(V<'d, 'a>, usize)>,
    path: &'p RefCell<Vec<Segment>>,
}

impl<'d> MapAccess<'d> for MapReader<'_, 'd, '_> {
    type Error = Error;
    fn next_key_seed<S: DeserializeSeed<'d>>(&mut self, seed: S) -> Result<Option<S::Value>, Error> {
        let key_at = self.entries.at;
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.value = Some((value, key_at));
        seed.deserialize(de::value::StrDeserializer::<Error>::new(key)).map(Some)
    }
    fn next_value_seed<S: DeserializeSeed<'d>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let (v, key_at) = self.value.take().ok_or_else(|| de::Error::custom("value without a key"))?;
        seed.deserialize(Typed { v, path: self.path }).inspect_err(|_| self.path.borrow_mut().push(Segment::Key(key_at)))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.left as usize)
    }
}

/// The value at `path` (`spec.ingress[0].ports`), whose keys may contain dots (label keys).
pub(crate) fn lookup<'d, 'a>(mut value: V<'d, 'a>, mut path: &str) -> Option<V<'d, 'a>> {
    while !path.is_empty() {
        if let Some(rest) = path.strip_prefix('[') {
            let (index, rest) = rest.split_once(']')?;
            value = value.index(index.parse::<usize>().ok()?)?;
            path = rest.strip_prefix('.').unwrap_or(rest);
            continue;
        }
        if !value.is_map() {
            return None;
        }
        let (key, child) = value
            .entries()
            .filter(|(key, _)| path.starts_with(key) && matches!(path.as_bytes().get(key.len()), None | Some(b'.' | b'[')))
            .max_by_key(|(key, _)| key.len())?;
        value = child;
        path = &path[key.len()..];
        path = path.strip_prefix('.').unwrap_or(path);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Dom<'_> {
        let mut dom = Dom::new(text);
        let mut de = serde_json::Deserializer::from_str(text);
        Build(&mut dom).deserialize(&mut de).unwrap();
        dom
    }

    #[test]
    fn strings_are_spans_of_the_input_unless_escaped() {
        let text = r#"{"a": "plain", "b": ["x\ny", 1, -2, 1.5, null, true]}"#;
        let dom = json(text);
        let root = dom.root().unwrap();
        assert_eq!(root.get_str("a"), Some("plain"));
        let b: Vec<Node> = root.get("b").unwrap().items().map(|v| v.node()).collect();
        assert!(matches!(b[0], Node::Str { owned: true, .. }));
        assert_eq!(&b[1..], [Node::U64(1), Node::I64(-2), Node::F64(1.5), Node::Null, Node::Bool(true)]);
        assert_eq!(root.get("b").unwrap().index(0).unwrap().as_str(), Some("x\ny"));
        assert!(matches!(root.get("a").unwrap().node(), Node::Str { owned: false, .. }));
    }

    #[test]
    fn wrong_types_are_reported_with_their_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Port {
            port: Option<String>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Spec {
            ports: Vec<Port>,
        }
        let text = r#"{"ports": [{"port": "a"}, {"port": 80}]}"#;
        let dom = json(text);
        let err = typed::<Spec>(dom.root().unwrap()).unwrap_err();
        assert_eq!(err, ("ports[1].port".to_owned(), "invalid type: integer `80`, expected a string".to_owned()));
        let dom = json("null");
        assert_eq!(typed::<Spec>(dom.root().unwrap()).unwrap_err().0, ".");
    }
}
