//! The connlist formats of `analyze` (shared with np-guard's netpol-analyzer).

use std::io::{self, Write};

use netmatrix_oracle::connlist::{Connlist, Line};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Txt,
    Csv,
    Md,
    Json,
}

pub fn write<'a>(out: &mut impl Write, lines: impl IntoIterator<Item = Line<'a>>, format: Format) -> io::Result<()> {
    let mut out = Chunks::new(out);
    match format {
        Format::Txt => {
            for l in lines {
                out.line(&[l.src, " => ", l.dst, " : ", l.conn, "\n"])?;
            }
        }
        Format::Csv => {
            out.line(&["src,dst,conn\n"])?;
            for l in lines {
                out.line(&[&csv_field(l.src), ",", &csv_field(l.dst), ",", &csv_field(l.conn), "\n"])?;
            }
        }
        Format::Md => {
            out.line(&["| src | dst | conn |\n|-----|-----|------|\n"])?;
            for l in lines {
                out.line(&["| ", l.src, " | ", l.dst, " | ", l.conn, " |\n"])?;
            }
        }
        Format::Json => {
            // Streamed: a million-line list is never held as one JSON value. Each object is
            // spelled as `serde_json::to_string_pretty` spells a `Line`, indented one level.
            let mut empty = true;
            for l in lines {
                out.line(&[if empty { "[\n  {\n    \"src\": " } else { ",\n  {\n    \"src\": " }])?;
                empty = false;
                out.json_string(l.src)?;
                out.line(&[",\n    \"dst\": "])?;
                out.json_string(l.dst)?;
                out.line(&[",\n    \"conn\": "])?;
                out.json_string(l.conn)?;
                out.line(&["\n  }"])?;
            }
            out.line(&[if empty { "[]\n" } else { "\n]\n" }])?;
        }
    }
    out.finish()
}

/// Writes `list` as `write` writes its lines, with the text of each endpoint (as source and
/// as destination) and of each connection set made once: a line is then three copies.
pub fn write_connlist(out: &mut impl Write, list: &Connlist, format: Format) -> io::Result<()> {
    let json = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let spell = |f: &dyn Fn(&str) -> String, strings: &[String]| strings.iter().map(|s| f(s)).collect::<Vec<String>>();
    // (header, source, destination, connections, separator between lines, footer, empty output)
    let (header, src, dst, conn, separator, footer, empty) = match format {
        Format::Txt => (
            "",
            spell(&|s| format!("{s} => "), list.endpoints()),
            spell(&|d| format!("{d} : "), list.endpoints()),
            spell(&|c| format!("{c}\n"), list.conns()),
            "",
            "",
            "",
        ),
        Format::Csv => (
            "src,dst,conn\n",
            spell(&|s| format!("{},", csv_field(s)), list.endpoints()),
            spell(&|d| format!("{},", csv_field(d)), list.endpoints()),
            spell(&|c| format!("{}\n", csv_field(c)), list.conns()),
            "",
            "",
            "src,dst,conn\n",
        ),
        Format::Md => (
            "| src | dst | conn |\n|-----|-----|------|\n",
            spell(&|s| format!("| {s} | "), list.endpoints()),
            spell(&|d| format!("{d} | "), list.endpoints()),
            spell(&|c| format!("{c} |\n"), list.conns()),
            "",
            "",
            "| src | dst | conn |\n|-----|-----|------|\n",
        ),
        Format::Json => (
            "[\n  ",
            spell(&|s| format!("{{\n    \"src\": {},\n    \"dst\": ", json(s)), list.endpoints()),
            spell(&|d| format!("{},\n    \"conn\": ", json(d)), list.endpoints()),
            spell(&|c| format!("{}\n  }}", json(c)), list.conns()),
            ",\n  ",
            "\n]\n",
            "[]\n",
        ),
    };
    let mut out = Chunks::new(out);
    if list.is_empty() {
        out.line(&[empty])?;
        return out.finish();
    }
    out.line(&[header])?;
    if separator.is_empty() {
        list.try_for_each_id(|s, d, c| out.line(&[&src[s], &dst[d], &conn[c as usize]]))?;
    } else {
        let mut first = true;
        list.try_for_each_id(|s, d, c| {
            let separator = if first { "" } else { separator };
            first = false;
            out.line(&[separator, &src[s], &dst[d], &conn[c as usize]])
        })?;
    }
    out.line(&[footer])?;
    out.finish()
}

/// Output assembled in a buffer of our own and handed on in large chunks: `write!` per line
/// goes through the formatting machinery, and many small `write_all`s each cost a call.
struct Chunks<'w, W: Write> {
    out: &'w mut W,
    buf: Vec<u8>,
}

impl<'w, W: Write> Chunks<'w, W> {
    const SIZE: usize = 64 * 1024;

    fn new(out: &'w mut W) -> Self {
        Self { out, buf: Vec::with_capacity(Self::SIZE + 1024) }
    }

    /// Appends `pieces`, and passes the buffer on once it is full.
    fn line(&mut self, pieces: &[&str]) -> io::Result<()> {
        for piece in pieces {
            self.buf.extend_from_slice(piece.as_bytes());
        }
        if self.buf.len() >= Self::SIZE {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// `s` as a JSON string, escaped as serde_json escapes it.
    fn json_string(&mut self, s: &str) -> io::Result<()> {
        if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            serde_json::to_writer(&mut self.buf, s)?;
            return Ok(());
        }
        self.line(&["\"", s, "\""])
    }

    fn finish(self) -> io::Result<()> {
        self.out.write_all(&self.buf)
    }
}

/// RFC 4180 quoting: only fields with a comma, quote or line break are quoted.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")).into() } else { s.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Vec<Line<'static>> {
        vec![
            Line { src: "0.0.0.0-255.255.255.255[External]", dst: "ns/a[Pod]", conn: "All Connections" },
            Line { src: "ns/a[Pod]", dst: "ns/b[Deployment]", conn: "TCP 80,UDP 53" },
        ]
    }

    fn render(format: Format) -> String {
        let mut out = Vec::new();
        write(&mut out, lines(), format).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn all_formats() {
        insta::assert_snapshot!("txt", render(Format::Txt));
        insta::assert_snapshot!("csv", render(Format::Csv));
        insta::assert_snapshot!("md", render(Format::Md));
        insta::assert_snapshot!("json", render(Format::Json));
    }

    /// Endpoints and connection strings are free text to the writer: JSON and CSV escape them as
    /// serde_json and RFC 4180 do, and long outputs cross the chunk boundary intact.
    #[test]
    fn escaping_and_long_outputs() {
        let odd = ["plain", "a\"quote", "back\\slash", "new\nline", "tab\t", "ctl\u{1}", "comma,here", "ünïcode\u{7f}"];
        let lines: Vec<Line> = (0..20_000).map(|i| Line { src: odd[i % odd.len()], dst: odd[(i / 3) % odd.len()], conn: odd[(i / 7) % odd.len()] }).collect();
        let render = |format| {
            let mut out = Vec::new();
            write(&mut out, lines.iter().copied(), format).unwrap();
            String::from_utf8(out).unwrap()
        };
        let mut want = String::from("[");
        for (i, l) in lines.iter().enumerate() {
            want.push_str(if i == 0 { "\n  " } else { ",\n  " });
            want.push_str(&serde_json::to_string_pretty(l).unwrap().replace('\n', "\n  "));
        }
        want.push_str("\n]\n");
        assert_eq!(render(Format::Json), want);
        let value: Vec<std::collections::BTreeMap<String, String>> = serde_json::from_str(&want).unwrap();
        assert_eq!(value[1]["src"], odd[1]);
        let txt: String = lines.iter().map(|l| format!("{} => {} : {}\n", l.src, l.dst, l.conn)).collect();
        assert_eq!(render(Format::Txt), txt);
        let md: String = lines.iter().map(|l| format!("| {} | {} | {} |\n", l.src, l.dst, l.conn)).collect();
        assert_eq!(render(Format::Md), format!("| src | dst | conn |\n|-----|-----|------|\n{md}"));
        let csv: String = lines.iter().map(|l| format!("{},{},{}\n", csv_field(l.src), csv_field(l.dst), csv_field(l.conn))).collect();
        assert_eq!(render(Format::Csv), format!("src,dst,conn\n{csv}"));
        assert!(render(Format::Csv).contains("\"a\"\"quote\""));
    }

    /// `write_connlist` writes what `write` writes of the same lines, in every format, also
    /// with no lines, and with connection sets that CSV quotes.
    #[test]
    fn write_connlist_equals_write_of_its_lines() {
        use netmatrix_oracle::{Options, Reachability};
        let manifests = [
            "",
            "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n",
            concat!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\n",
                "---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {app: b}}\n",
                "---\napiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: z}\n",
                "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n",
                "  podSelector: {matchLabels: {app: a}}\n",
                "  ingress: [{from: [{podSelector: {}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}], ports: [{port: 80}, {port: 53, protocol: UDP}]}]\n",
                "  egress: [{to: [{ipBlock: {cidr: 'fd00::/8'}}]}]\n",
            ),
        ];
        for text in manifests {
            let cluster = netmatrix_model::parse_str("c.yaml", text).unwrap();
            let list = netmatrix_oracle::connlist::connlist(&cluster, Reachability::compute(&cluster, Options::default()));
            for format in [Format::Txt, Format::Csv, Format::Md, Format::Json] {
                let (mut want, mut got) = (Vec::new(), Vec::new());
                write(&mut want, list.iter(), format).unwrap();
                write_connlist(&mut got, &list, format).unwrap();
                assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap(), "{format:?} of\n{text}");
            }
        }
    }

    #[test]
    fn empty_json_is_an_empty_list() {
        let mut out = Vec::new();
        write(&mut out, [], Format::Json).unwrap();
        assert_eq!(out, b"[]\n");
    }
}
