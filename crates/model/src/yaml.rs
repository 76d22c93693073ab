//! A fast path for the YAML manifests are written in: block mappings and sequences, flow
//! collections on one line (any number of lines at a document's root, as JSON documents are),
//! plain and quoted scalars on one line, literal block scalars (`|`), comments and `---`.
//! It reads each document into a [`Dom`] in one pass over its text, with no allocation once the
//! buffers have grown.
//!
//! Anything else (anchors, aliases, tags, directives, `...`, folded and multi-line scalars,
//! complex keys, merge keys, tabs, CR line ends) and every error stops it with [`Unsupported`]:
//! the loader then reads the file from the start of that document with serde-saphyr, which
//! accepts all of YAML and words every error. So the fast path never decides what a text means
//! where serde-saphyr could differ: what it accepts it reads as serde-saphyr does (plain scalars
//! resolved by the same rules, YAML 1.1 booleans included; a number it is unsure of is given to
//! serde-saphyr itself), which `tests::the_fast_path_reads_as_serde_saphyr_does` checks.

use crate::dom::{Dom, Node, OwnedDom};

/// The fast path does not read this text; serde-saphyr does.
#[derive(Debug)]
pub(crate) struct Unsupported;

type R<T> = Result<T, Unsupported>;

/// Deeper nesting goes to serde-saphyr, whose limit (64) and message apply.
const MAX_DEPTH: usize = 48;
/// Longer keys go to serde-saphyr (YAML limits implicit keys to 1024 characters).
const MAX_KEY: usize = 1000;

pub(crate) struct Fast<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    line_start: usize,
    /// The column of the current content line, `None` at the end of the document.
    indent: Option<usize>,
    depth: usize,
    /// Whether flow collections may span lines (at a document's root only).
    multiline_flow: bool,
}

fn is_space_or_end(b: Option<&u8>) -> bool {
    matches!(b, None | Some(b' ' | b'\n'))
}

impl<'a> Fast<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Fast { text, b: text.as_bytes(), pos: 0, line_start: 0, indent: None, depth: 0, multiline_flow: false }
    }

    /// Where the next document starts (the start of a line).
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn at(&self, offset: usize) -> Option<&u8> {
        self.b.get(self.pos + offset)
    }

    fn column(&self) -> usize {
        self.pos - self.line_start
    }

    /// A document marker (`---` or `...`) at the start of the line at `pos`.
    fn marker_at(&self, pos: usize) -> Option<u8> {
        let b = self.b;
        let m = *b.get(pos)?;
        ((m == b'-' || m == b'.')
            && b.get(pos + 1) == Some(&m)
            && b.get(pos + 2) == Some(&m)
            && matches!(b.get(pos + 3), None | Some(b' ' | b'\n' | b'\t' | b'\r')))
        .then_some(m)
    }

    /// Reads the next non-empty document into `dom`: false at the end of the stream.
    pub(crate) fn next_document(&mut self, dom: &mut Dom<'a>) -> R<bool> {
        if self.pos == 0 && self.text.starts_with('\u{feff}') {
            return Err(Unsupported);
        }
        loop {
            dom.clear();
            self.depth = 0;
            if self.pos >= self.b.len() {
                return Ok(false);
            }
            let mut inline_root = false;
            match self.marker_at(self.pos) {
                Some(b'-') => {
                    self.pos += 3;
                    self.spaces()?;
                    match self.peek() {
                        Some(b'{' | b'[') => inline_root = true,
                        _ => self.end_line()?,
                    }
                }
                Some(_) => return Err(Unsupported),
                None if self.peek() == Some(b'%') => return Err(Unsupported),
                None => {}
            }
            if inline_root {
                self.multiline_flow = true;
                let flow = self.flow(dom);
                self.multiline_flow = false;
                flow?;
                self.end_line()?;
                self.skip_blank()?;
            } else {
                self.skip_blank()?;
                if let Some(indent) = self.indent {
                    self.root(dom, indent)?;
                }
            }
            // The document ends at the end of the text or at the next `---`.
            if self.indent.is_some() {
                return Err(Unsupported);
            }
            if self.pos < self.b.len() && self.marker_at(self.pos) != Some(b'-') {
                return Err(Unsupported);
            }
            if !dom.nodes.is_empty() {
                return Ok(true);
            }
        }
    }

    fn root(&mut self, dom: &mut Dom<'a>, indent: usize) -> R<()> {
        match self.peek() {
            Some(b'{' | b'[') => {
                self.multiline_flow = true;
                let flow = self.flow(dom);
                self.multiline_flow = false;
                flow?;
                self.end_line()?;
                self.skip_blank()
            }
            _ => self.block_node(dom, indent),
        }
    }

    /// Skips spaces on this line; a tab is left to serde-saphyr.
    fn spaces(&mut self) -> R<()> {
        while let Some(c) = self.peek() {
            match c {
                b' ' => self.pos += 1,
                b'\t' | b'\r' => return Err(Unsupported),
                _ => break,
            }
        }
        Ok(())
    }

    /// The rest of the line after a value: spaces, maybe a comment (after a space), its end.
    fn end_line(&mut self) -> R<()> {
        let before = self.pos;
        self.spaces()?;
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.pos += 1;
                self.line_start = self.pos;
                Ok(())
            }
            Some(b'#') if self.pos > before || self.pos == self.line_start => self.comment(),
            Some(_) => Err(Unsupported),
        }
    }

    fn comment(&mut self) -> R<()> {
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                b'\n' => {
                    self.line_start = self.pos;
                    return Ok(());
                }
                b'\r' => return Err(Unsupported),
                _ => {}
            }
        }
        Ok(())
    }

    /// Skips blank and comment lines, from the start of a line, to the first content of the next
    /// content line, and sets `indent` (`None` at the end of the text or at a marker).
    fn skip_blank(&mut self) -> R<()> {
        loop {
            if self.pos >= self.b.len() || self.marker_at(self.pos).is_some() {
                self.indent = None;
                return Ok(());
            }
            self.spaces()?;
            match self.peek() {
                None => {
                    self.indent = None;
                    return Ok(());
                }
                Some(b'\n') => {
                    self.pos += 1;
                    self.line_start = self.pos;
                }
                Some(b'#') => self.comment()?,
                Some(_) => {
                    self.indent = Some(self.column());
                    return Ok(());
                }
            }
        }
    }

    fn at_dash(&self) -> bool {
        self.peek() == Some(b'-') && is_space_or_end(self.at(1))
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(Unsupported) } else { Ok(()) }
    }

    /// A node starting a content line at column `n`: a sequence, a flow collection or a mapping.
    fn block_node(&mut self, dom: &mut Dom<'a>, n: usize) -> R<()> {
        match self.peek() {
            Some(b'-') if self.at_dash() => self.block_seq(dom, n),
            Some(b'{' | b'[') => {
                self.flow(dom)?;
                self.end_line()?;
                self.skip_blank()
            }
            _ => self.block_map(dom, n),
        }
    }

    fn block_seq(&mut self, dom: &mut Dom<'a>, n: usize) -> R<()> {
        self.enter()?;
        let at = dom.nodes.len();
        dom.push(Node::Seq { len: 0, end: 0 });
        let mut count = 0;
        loop {
            // At `-` in column n.
            self.pos += 1;
            self.item(dom, n)?;
            count += 1;
            match self.indent {
                Some(i) if i == n && self.at_dash() => continue,
                // A line in column n after a sequence that is a mapping's value is the map's.
                Some(i) if i > n => return Err(Unsupported),
                _ => break,
            }
        }
        dom.close(at, count);
        self.depth -= 1;
        Ok(())
    }

    /// A sequence item after its `-` (in column n).
    fn item(&mut self, dom: &mut Dom<'a>, n: usize) -> R<()> {
        self.spaces()?;
        match self.peek() {
            None | Some(b'\n' | b'#') => {
                self.end_line()?;
                self.skip_blank()?;
                match self.indent {
                    Some(i) if i > n => self.block_node(dom, i),
                    _ => {
                        dom.push(Node::Null);
                        Ok(())
                    }
                }
            }
            Some(b'-') if self.at_dash() => {
                let c = self.column();
                self.block_seq(dom, c)
            }
            Some(b'{' | b'[') => {
                self.flow(dom)?;
                self.end_line()?;
                self.skip_blank()
            }
            Some(b'|') => self.literal(dom, n),
            Some(_) => {
                // A mapping in the item (`- name: x`), or a scalar.
                let (c, start) = (self.column(), self.pos);
                let mut scratch = Scalar::default();
                self.scalar(&mut scratch)?;
                self.spaces()?;
                if self.peek() == Some(b':') && is_space_or_end(self.at(1)) {
                    self.pos = start;
                    return self.block_map(dom, c);
                }
                self.push_scalar(dom, scratch)?;
                self.end_line()?;
                self.skip_blank()
            }
        }
    }

    fn block_map(&mut self, dom: &mut Dom<'a>, n: usize) -> R<()> {
        self.enter()?;
        let at = dom.nodes.len();
        dom.push(Node::Map { len: 0, end: 0 });
        let mut count = 0;
        loop {
            // At a key in column n.
            self.key(dom, at)?;
            count += 1;
            self.value(dom, n)?;
            match self.indent {
                Some(i) if i == n && !self.at_dash() => continue,
                Some(i) if i > n || (i == n && self.at_dash()) => return Err(Unsupported),
                _ => break,
            }
        }
        dom.close(at, count);
        self.depth -= 1;
        Ok(())
    }

    /// A key and its `:`, for the map opened at `map_at`.
    fn key(&mut self, dom: &mut Dom<'a>, map_at: usize) -> R<()> {
        let mut key = Scalar::default();
        self.scalar(&mut key)?;
        self.spaces()?;
        if !(self.peek() == Some(b':') && is_space_or_end(self.at(1))) {
            return Err(Unsupported);
        }
        self.pos += 1;
        self.push_key(dom, map_at, key)
    }

    /// Pushes a key: plain keys only when they are plainly text, never twice in a map.
    fn push_key(&mut self, dom: &mut Dom<'a>, map_at: usize, key: Scalar) -> R<()> {
        if key.len() > MAX_KEY {
            return Err(Unsupported);
        }
        let node = match key {
            Scalar::Plain(start, end) => {
                let text = &self.text[start..end];
                if text == "<<" || !matches!(resolve(text), Resolved::Node(Node::Str { .. })) {
                    return Err(Unsupported);
                }
                Node::Str { owned: false, start: start as u32, len: (end - start) as u32 }
            }
            Scalar::Quoted(start, end) => Node::Str { owned: false, start: start as u32, len: (end - start) as u32 },
            Scalar::Owned(text) => dom.owned_str(&text),
            Scalar::None => return Err(Unsupported),
        };
        let key_at = dom.nodes.len();
        dom.push(node);
        if dom.repeats_key(map_at, key_at) { Err(Unsupported) } else { Ok(()) }
    }

    /// The value after a key's `:` in a map at column n.
    fn value(&mut self, dom: &mut Dom<'a>, n: usize) -> R<()> {
        self.spaces()?;
        match self.peek() {
            None | Some(b'\n' | b'#') => {
                self.end_line()?;
                self.skip_blank()?;
                match self.indent {
                    Some(i) if i > n => self.block_node(dom, i),
                    Some(i) if i == n && self.at_dash() => self.block_seq(dom, n),
                    _ => {
                        dom.push(Node::Null);
                        Ok(())
                    }
                }
            }
            Some(b'{' | b'[') => {
                self.flow(dom)?;
                self.end_line()?;
                self.skip_blank()
            }
            Some(b'|') => self.literal(dom, n),
            Some(_) => {
                let mut scalar = Scalar::default();
                self.scalar(&mut scalar)?;
                self.push_scalar(dom, scalar)?;
                self.end_line()?;
                self.skip_blank()
            }
        }
    }

    /// A scalar in block context on this line: plain (up to `: `, ` #` or the line's end) or
    /// quoted.
    fn scalar(&mut self, out: &mut Scalar) -> R<()> {
        match self.peek() {
            Some(b'"') => self.double_quoted(out),
            Some(b'\'') => self.single_quoted(out),
            Some(c) if is_indicator(c) || (matches!(c, b'-' | b'?' | b':') && is_space_or_end(self.at(1))) => Err(Unsupported),
            None => Err(Unsupported),
            Some(_) => {
                let start = self.pos;
                let mut end = start;
                let b = self.b;
                let mut i = start;
                while i < b.len() {
                    match b[i] {
                        b'\n' => break,
                        b' ' => {}
                        b':' if matches!(b.get(i + 1), None | Some(b' ' | b'\n')) => break,
                        b'#' if b[i - 1] == b' ' => break,
                        c if is_forbidden(b, i, c) => return Err(Unsupported),
                        _ => end = i + 1,
                    }
                    i += 1;
                }
                self.pos = end;
                *out = Scalar::Plain(start, end);
                Ok(())
            }
        }
    }

    fn double_quoted(&mut self, out: &mut Scalar) -> R<()> {
        let b = self.b;
        let start = self.pos + 1;
        let mut i = start;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    self.pos = i + 1;
                    *out = Scalar::Quoted(start, i);
                    return Ok(());
                }
                b'\\' => break,
                b'\t' => {}
                c if c == b'\n' || is_forbidden(b, i, c) => return Err(Unsupported),
                _ => {}
            }
            i += 1;
        }
        if i >= b.len() {
            return Err(Unsupported);
        }
        // Escapes: the text is built.
        let mut text = String::from(&self.text[start..i]);
        let mut run = i;
        loop {
            match b.get(i) {
                None => return Err(Unsupported),
                Some(b'"') => {
                    text.push_str(&self.text[run..i]);
                    self.pos = i + 1;
                    *out = Scalar::Owned(text);
                    return Ok(());
                }
                Some(b'\\') => {
                    text.push_str(&self.text[run..i]);
                    let (c, used) = escape(&b[i + 1..]).ok_or(Unsupported)?;
                    text.push(c);
                    i += 1 + used;
                    run = i;
                }
                Some(&c) if c == b'\n' || is_forbidden(b, i, c) => return Err(Unsupported),
                Some(_) => i += 1,
            }
        }
    }

    fn single_quoted(&mut self, out: &mut Scalar) -> R<()> {
        let b = self.b;
        let start = self.pos + 1;
        let mut i = start;
        let mut owned: Option<String> = None;
        let mut run = start;
        while i < b.len() {
            match b[i] {
                b'\'' if b.get(i + 1) == Some(&b'\'') => {
                    let text = owned.get_or_insert_with(String::new);
                    text.push_str(&self.text[run..=i]);
                    i += 2;
                    run = i;
                    continue;
                }
                b'\'' => {
                    self.pos = i + 1;
                    *out = match owned {
                        Some(mut text) => {
                            text.push_str(&self.text[run..i]);
                            Scalar::Owned(text)
                        }
                        None => Scalar::Quoted(start, i),
                    };
                    return Ok(());
                }
                b'\t' => {}
                c if c == b'\n' || is_forbidden(b, i, c) => return Err(Unsupported),
                _ => {}
            }
            i += 1;
        }
        Err(Unsupported)
    }

    fn push_scalar(&mut self, dom: &mut Dom<'a>, scalar: Scalar) -> R<()> {
        let node = match scalar {
            Scalar::Plain(start, end) => match resolve(&self.text[start..end]) {
                Resolved::Node(Node::Str { .. }) => Node::Str { owned: false, start: start as u32, len: (end - start) as u32 },
                Resolved::Node(node) => node,
                Resolved::Ask => ask_serde_saphyr(dom, &self.text[start..end])?,
            },
            Scalar::Quoted(start, end) => Node::Str { owned: false, start: start as u32, len: (end - start) as u32 },
            Scalar::Owned(text) => dom.owned_str(&text),
            Scalar::None => return Err(Unsupported),
        };
        dom.push(node);
        Ok(())
    }

    /// A literal block scalar (`|`, `|-`, `|+`) of a node in column n.
    fn literal(&mut self, dom: &mut Dom<'a>, n: usize) -> R<()> {
        self.pos += 1;
        let chomp = match self.peek() {
            Some(b'-') => Some(false),
            Some(b'+') => Some(true),
            _ => None,
        };
        if chomp.is_some() {
            self.pos += 1;
        }
        if !matches!(self.peek(), None | Some(b' ' | b'\n')) {
            return Err(Unsupported);
        }
        self.end_line()?;
        let b = self.b;
        let mut text = String::new();
        // The content lines' indentation; the most spaces of the empty lines before the first.
        let (mut indent, mut leading) = (None::<usize>, 0);
        // Whether a content line was read, whether the last ended with a line break, and the
        // empty lines since.
        let (mut seen, mut last_break, mut empty) = (false, false, 0usize);
        while self.pos < b.len() {
            let line = self.pos;
            let mut s = 0;
            while b.get(line + s) == Some(&b' ') {
                s += 1;
            }
            let rest = line + s;
            let blank = matches!(b.get(rest), None | Some(b'\n'));
            if blank && indent.is_none_or(|m| s <= m) {
                if indent.is_none() {
                    leading = leading.max(s);
                }
                if rest >= b.len() {
                    self.pos = rest;
                    break;
                }
                empty += 1;
                self.pos = rest + 1;
                self.line_start = self.pos;
                continue;
            }
            let m = match indent {
                Some(m) => m,
                None if s <= n => break,
                None if s < leading => return Err(Unsupported),
                None => {
                    indent = Some(s);
                    s
                }
            };
            if s < m {
                break;
            }
            let mut end = rest;
            while end < b.len() && b[end] != b'\n' {
                if b[end] != b'\t' && is_forbidden(b, end, b[end]) {
                    return Err(Unsupported);
                }
                end += 1;
            }
            for _ in 0..empty + usize::from(seen) {
                text.push('\n');
            }
            (seen, empty) = (true, 0);
            text.push_str(&self.text[line + m..end]);
            last_break = end < b.len();
            self.pos = (end + 1).min(b.len());
            self.line_start = self.pos;
        }
        let trailing = match chomp {
            Some(false) => 0,
            None => usize::from(seen && last_break),
            Some(true) => empty + usize::from(seen && last_break),
        };
        for _ in 0..trailing {
            text.push('\n');
        }
        let node = dom.owned_str(&text);
        dom.push(node);
        // From the start of the line that ended the scalar.
        self.skip_blank()
    }

    /// A flow collection or scalar, on this line (or any number of lines at the root).
    fn flow(&mut self, dom: &mut Dom<'a>) -> R<()> {
        match self.peek() {
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let at = dom.nodes.len();
                dom.push(Node::Map { len: 0, end: 0 });
                let mut count = 0;
                loop {
                    self.flow_space()?;
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        break;
                    }
                    let mut key = Scalar::default();
                    let quoted = matches!(self.peek(), Some(b'"' | b'\''));
                    self.flow_scalar(&mut key)?;
                    self.flow_space()?;
                    // After a quoted key, `:` may touch the value (`{"a":1}`).
                    if self.peek() != Some(b':') || !(quoted || matches!(self.at(1), None | Some(b' ' | b'\n' | b',' | b'}' | b']'))) {
                        return Err(Unsupported);
                    }
                    self.pos += 1;
                    self.push_key(dom, at, key)?;
                    count += 1;
                    self.flow_space()?;
                    match self.peek() {
                        Some(b',' | b'}') => dom.push(Node::Null),
                        _ => self.flow(dom)?,
                    }
                    if self.flow_item_end(b'}')? {
                        break;
                    }
                }
                dom.close(at, count);
                self.depth -= 1;
                Ok(())
            }
            Some(b'[') => {
                self.enter()?;
                self.pos += 1;
                let at = dom.nodes.len();
                dom.push(Node::Seq { len: 0, end: 0 });
                let mut count = 0;
                loop {
                    self.flow_space()?;
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        break;
                    }
                    self.flow(dom)?;
                    count += 1;
                    if self.flow_item_end(b']')? {
                        break;
                    }
                }
                dom.close(at, count);
                self.depth -= 1;
                Ok(())
            }
            _ => {
                let mut scalar = Scalar::default();
                self.flow_scalar(&mut scalar)?;
                self.push_scalar(dom, scalar)
            }
        }
    }

    /// Spaces between flow tokens; line breaks only where flow may span lines.
    /// After a flow collection's item: a `,` before the next, or `close`, which ends it (true).
    fn flow_item_end(&mut self, close: u8) -> R<bool> {
        self.flow_space()?;
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(Unsupported),
        }
    }

    fn flow_space(&mut self) -> R<()> {
        while let Some(c) = self.peek() {
            match c {
                b' ' => self.pos += 1,
                b'\n' if self.multiline_flow => {
                    self.pos += 1;
                    self.line_start = self.pos;
                    if self.marker_at(self.pos).is_some() {
                        return Err(Unsupported);
                    }
                }
                b'\n' | b'\t' | b'\r' | b'#' => return Err(Unsupported),
                _ => break,
            }
        }
        Ok(())
    }

    /// A scalar in a flow collection: quoted, or plain up to a flow indicator.
    fn flow_scalar(&mut self, out: &mut Scalar) -> R<()> {
        match self.peek() {
            Some(b'"') => self.double_quoted(out),
            Some(b'\'') => self.single_quoted(out),
            Some(c) if is_indicator(c) || (matches!(c, b'-' | b'?' | b':') && matches!(self.at(1), None | Some(b' ' | b'\n' | b',' | b']' | b'}'))) => {
                Err(Unsupported)
            }
            None => Err(Unsupported),
            Some(_) => {
                let b = self.b;
                let start = self.pos;
                let mut end = start;
                let mut i = start;
                while i < b.len() {
                    match b[i] {
                        b'\n' | b',' | b'[' | b']' | b'{' | b'}' => break,
                        b' ' => {}
                        b':' if matches!(b.get(i + 1), None | Some(b' ' | b'\n' | b',' | b'[' | b']' | b'{' | b'}')) => break,
                        // `image:tag` is one scalar; comments in flow are serde-saphyr's.
                        b':' => end = i + 1,
                        b'#' => return Err(Unsupported),
                        c if is_forbidden(b, i, c) => return Err(Unsupported),
                        _ => end = i + 1,
                    }
                    i += 1;
                }
                self.pos = end;
                *out = Scalar::Plain(start, end);
                Ok(())
            }
        }
    }
}

/// A scalar as written: plain or quoted text of the input, or built text (escapes).
#[derive(Default)]
enum Scalar {
    #[default]
    None,
    Plain(usize, usize),
    Quoted(usize, usize),
    Owned(String),
}

impl Scalar {
    fn len(&self) -> usize {
        match self {
            Scalar::None => 0,
            Scalar::Plain(start, end) | Scalar::Quoted(start, end) => end - start,
            Scalar::Owned(text) => text.len(),
        }
    }
}

/// Characters that cannot start a plain scalar (besides `-`, `?` and `:` before a space).
fn is_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`')
}

/// Bytes the fast path leaves to serde-saphyr: control characters (tab and CR included), C1
/// controls (NEL among them) and the byte order mark / non-characters U+FEFF, U+FFFE, U+FFFF.
fn is_forbidden(b: &[u8], i: usize, c: u8) -> bool {
    match c {
        0..=0x1f | 0x7f => true,
        0xc2 => matches!(b.get(i + 1), Some(0x80..=0x9f)),
        0xef => matches!((b.get(i + 1), b.get(i + 2)), (Some(0xbb), Some(0xbf)) | (Some(0xbf), Some(0xbe | 0xbf))),
        _ => false,
    }
}

/// One escape of a double-quoted scalar (after its `\`): the character and the bytes used.
fn escape(b: &[u8]) -> Option<(char, usize)> {
    let hex = |n: usize| -> Option<(char, usize)> {
        let digits = std::str::from_utf8(b.get(1..=n)?).ok()?;
        if !digits.bytes().all(|d| d.is_ascii_hexdigit()) {
            return None;
        }
        Some((char::from_u32(u32::from_str_radix(digits, 16).ok()?)?, n + 1))
    };
    let c = match *b.first()? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b' ' => ' ',
        b'0' => '\0',
        b'a' => '\u{7}',
        b'b' => '\u{8}',
        b't' | b'\t' => '\t',
        b'n' => '\n',
        b'v' => '\u{b}',
        b'f' => '\u{c}',
        b'r' => '\r',
        b'e' => '\u{1b}',
        b'N' => '\u{85}',
        b'_' => '\u{a0}',
        b'L' => '\u{2028}',
        b'P' => '\u{2029}',
        b'x' => return hex(2),
        b'u' => return hex(4),
        b'U' => return hex(8),
        _ => return None,
    };
    Some((c, 1))
}

enum Resolved {
    Node(Node),
    /// Maybe a number in a spelling the fast path does not read: serde-saphyr says.
    Ask,
}

/// A plain scalar as serde-saphyr reads it into an untyped value: null, a YAML 1.1 boolean, an
/// integer, text, or (for anything that may be another number) [`Resolved::Ask`]. `Str` nodes
/// are returned without their span.
fn resolve(s: &str) -> Resolved {
    const TEXT: Resolved = Resolved::Node(Node::Str { owned: false, start: 0, len: 0 });
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Node(Node::Null),
        _ => {}
    }
    if s.len() <= 5 {
        for (word, value) in [("true", true), ("yes", true), ("y", true), ("on", true), ("false", false), ("no", false), ("n", false), ("off", false)] {
            if s.eq_ignore_ascii_case(word) {
                return Resolved::Node(Node::Bool(value));
            }
        }
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    match unsigned.as_bytes().first() {
        Some(b'0'..=b'9') => {}
        // `.5` and `.inf` are numbers; `.` and `.well-known` are not.
        Some(b'.') if s.bytes().any(|c| c.is_ascii_digit()) || unsigned.eq_ignore_ascii_case(".inf") || unsigned.eq_ignore_ascii_case(".nan") => {
            return Resolved::Ask;
        }
        _ => return TEXT,
    }
    let decimal = unsigned.bytes().all(|c| c.is_ascii_digit()) && (unsigned == "0" || !unsigned.starts_with('0'));
    if decimal {
        if s.starts_with('-') {
            if let Ok(v) = s.parse::<i64>() {
                return Resolved::Node(if v >= 0 { Node::U64(v as u64) } else { Node::I64(v) });
            }
        } else if let Ok(v) = unsigned.parse::<u64>() {
            return Resolved::Node(Node::U64(v));
        }
        return Resolved::Ask;
    }
    if !s.bytes().all(|c| c.is_ascii_hexdigit() || matches!(c, b'x' | b'X' | b'o' | b'O' | b'+' | b'-' | b'.' | b'_')) {
        return TEXT;
    }
    if s.bytes().filter(|&c| c == b'.').count() >= 2 {
        return TEXT;
    }
    Resolved::Ask
}

/// The node serde-saphyr reads `text` (a plain scalar) as.
fn ask_serde_saphyr(dom: &mut Dom, text: &str) -> R<Node> {
    // Read alone, the text must mean what it means as a value: no document marker (`...`).
    if text.starts_with("..") || text.starts_with("--") || !text.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_')) {
        return Err(Unsupported);
    }
    let OwnedDom(value) = serde_saphyr::from_str::<OwnedDom>(text).map_err(|_| Unsupported)?;
    match value.nodes.as_slice() {
        [Node::Str { .. }] => Ok(dom.owned_str(value.root_at(0).as_str().unwrap_or_default())),
        [node] => Ok(*node),
        _ => Err(Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dom::V;
    use proptest::prelude::*;

    /// A Dom as a comparable text (owned or borrowed strings alike).
    fn show(v: V) -> String {
        match v.node() {
            Node::Str { .. } => format!("{:?}", v.as_str().unwrap()),
            Node::Seq { .. } => format!("[{}]", v.items().map(show).collect::<Vec<_>>().join(", ")),
            Node::Map { .. } => format!("{{{}}}", v.entries().map(|(k, v)| format!("{k:?}: {}", show(v))).collect::<Vec<_>>().join(", ")),
            node => format!("{node:?}"),
        }
    }

    /// The documents serde-saphyr reads, or its error.
    fn slow(text: &str) -> Result<Vec<String>, String> {
        let mut reader = text.as_bytes();
        serde_saphyr::read::<_, OwnedDom>(&mut reader).map(|d| d.map(|OwnedDom(d)| show(d.root().unwrap())).map_err(|e| e.to_string())).collect()
    }

    /// The documents the fast path reads, or None where it steps aside.
    fn fast(text: &str) -> Option<Vec<String>> {
        let mut fast = Fast::new(text);
        let mut dom = Dom::new(text);
        let mut docs = Vec::new();
        while fast.next_document(&mut dom).ok()? {
            docs.push(show(dom.root().unwrap()));
        }
        Some(docs)
    }

    /// What the fast path reads, it reads as serde-saphyr does (and it never accepts an error).
    fn check(text: &str) -> Option<Vec<String>> {
        let got = fast(text);
        if let Some(docs) = &got {
            assert_eq!(Ok(docs.clone()), slow(text), "{text:?}");
        }
        got
    }

    const MANIFESTS: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web-1   # a comment
  namespace: "shop"
  labels: {app: web, 'tier': "front end", version: '1.2', num: 42, yy: yes, of: null}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"v1",
        "kind":"Pod"}

    note: |-
      two
      lines
    keep: |+
      kept

    empty: ""
  ownerReferences:
  - apiVersion: apps/v1
    controller: true
    kind: ReplicaSet
    name: web
  -   name: second
      uid: x
spec:
  containers:
  - name: c
    args: [--port=80, "a,b", 'it''s', -1, 0, 1.5, 0x1F, 10.0.0.1, 10.0.0.0/8]
    ports:
    - containerPort: 8080
      protocol: TCP
    - {containerPort: 53, protocol: UDP}
  - - nested
    - ~
  -
  - "esc\t\"aped\" \u00e9 \x41"
status:
  podIP: 10.244.1.7
  hostIP:
  conditions: []
  empty: {}
---
# only a comment
---
---
{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns0","labels":{"a":"b"}}}
--- {"multi": [1,
  2], "line": "flow"}
---
- a
- b:
  - c
  - d: e
"#;

    #[test]
    fn the_fast_path_reads_as_serde_saphyr_does() {
        let docs = check(MANIFESTS).expect("the fast path reads these manifests");
        assert_eq!(docs.len(), 4, "{docs:#?}");
        for text in [
            "a: b\n",
            "a: 1\nb: -2\nc: +3\nd: 007\ne: 1e3\nf: 1_000\ng: 0o17\nh: -0\ni: 18446744073709551616\nj: 1.2.3\n",
            "a: True\nb: NO\nc: On\nd: ~\ne: Null\nf: nan\n",
            "k: |\n  a\n\n  b\n\n\nnext: 1\n",
            "k: |-\n\n  a\n   b\n",
            "k: |+\n  a\n\n",
            "k: |\n  a\n  \n   \n  b\n",
            "- |\n  x\n- y\n",
            "a:\n- 1\n- 2\nb: 3\n",
            "a:\n  - 1\n  -\n    - 2\n",
            "'quoted key': 1\n\"dq\": 2\n",
            "a: 'x''y'\nb: \"\\u263A\"\n",
            "a: {b: [c, {d: e}], f: }\n",
            "a: [1, 2,]\n",
        ] {
            assert!(check(text).is_some(), "the fast path reads {text:?}");
        }
        // What it leaves to serde-saphyr.
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\n...\n",
            "a: >\n  folded\n",
            "a: multi\n  line\n",
            "a:\tb\n",
            "a: 1\r\n",
            "? complex\n: key\n",
            "<<: {a: 1}\n",
            "a: 1\na: 2\n",
            "a: [\n",
            "a: b: c\n",
            "1: one\n",
            "true: yes\n",
            "a: {b:c}\n",
            "just text\n",
        ] {
            assert!(fast(text).is_none(), "the fast path leaves {text:?} to serde-saphyr");
        }
    }

    /// Pieces of YAML: random texts made of them are read alike, or left to serde-saphyr.
    const PIECES: [&str; 43] = [
        "a",
        "b",
        ": ",
        ":",
        "- ",
        "-",
        "\n",
        "  ",
        " ",
        "'x'",
        "\"y\"",
        "'",
        "\"",
        "{",
        "}",
        "[",
        "]",
        ", ",
        ",",
        "#c",
        " #c",
        "|",
        "|-",
        "|+",
        "1",
        "-2",
        "0x1",
        "1.5",
        "yes",
        "~",
        "null",
        "---\n",
        "...",
        "&a ",
        "*a",
        "\\n",
        "\t",
        "é",
        "10.0.0.1",
        "\"\\u0041\"",
        ".",
        "x:y",
        ".5",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        #[test]
        fn random_texts_are_read_alike(pieces in prop::collection::vec(0..PIECES.len(), 0..40)) {
            let text: String = pieces.into_iter().map(|i| PIECES[i]).collect();
            check(&text);
        }

        #[test]
        fn edited_manifests_are_read_alike(edits in prop::collection::vec((any::<prop::sample::Index>(), 0..PIECES.len(), 0usize..6), 1..4)) {
            let mut text = MANIFESTS.to_owned();
            for (at, piece, cut) in edits {
                let mut pos = at.index(text.len());
                while !text.is_char_boundary(pos) { pos -= 1; }
                let end = (pos + cut).min(text.len());
                let end = (end..=text.len()).find(|&e| text.is_char_boundary(e)).unwrap();
                text.replace_range(pos..end, PIECES[piece]);
            }
            check(&text);
        }
    }
}
