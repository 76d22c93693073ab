//! The connlist formats of `analyze` (shared with np-guard's netpol-analyzer).

use std::io::{self, Write};

use netmatrix_oracle::connlist::Line;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Txt,
    Csv,
    Md,
    Json,
}

pub fn write<'a>(out: &mut impl Write, lines: impl IntoIterator<Item = Line<'a>>, format: Format) -> io::Result<()> {
    match format {
        Format::Txt => {
            for l in lines {
                writeln!(out, "{} => {} : {}", l.src, l.dst, l.conn)?;
            }
        }
        Format::Csv => {
            writeln!(out, "src,dst,conn")?;
            for l in lines {
                writeln!(out, "{},{},{}", csv_field(l.src), csv_field(l.dst), csv_field(l.conn))?;
            }
        }
        Format::Md => {
            writeln!(out, "| src | dst | conn |")?;
            writeln!(out, "|-----|-----|------|")?;
            for l in lines {
                writeln!(out, "| {} | {} | {} |", l.src, l.dst, l.conn)?;
            }
        }
        Format::Json => {
            // Streamed: a million-line list is never held as one JSON value.
            let mut empty = true;
            for l in lines {
                out.write_all(if empty { b"[\n  " } else { b",\n  " })?;
                empty = false;
                let object = serde_json::to_string_pretty(&l)?;
                out.write_all(object.replace('\n', "\n  ").as_bytes())?;
            }
            out.write_all(if empty { b"[]\n" } else { b"\n]\n" })?;
        }
    }
    Ok(())
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

    #[test]
    fn empty_json_is_an_empty_list() {
        let mut out = Vec::new();
        write(&mut out, [], Format::Json).unwrap();
        assert_eq!(out, b"[]\n");
    }
}
