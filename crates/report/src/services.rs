//! `analyze --services`: pod -> Service frontend connectivity in the connlist formats,
//! `SRC => svc:ns/name:port/PROTO[...] : backends ...`.

use std::io::{self, Write};

use netmatrix_oracle::Verdict;
use netmatrix_oracle::connlist::Line;
use netmatrix_oracle::services::{FrontendExplanation, ServiceLine};

use crate::connlist::{self, Format};

/// The connection column: who answers (and the source they see, when masqueraded), or why the
/// cell is undefined (`#`).
pub fn conn(line: &ServiceLine) -> String {
    let backends = line.backends.join(", ");
    let snat = line.snat.map(|ip| format!("; source masqueraded to {ip}")).unwrap_or_default();
    match line.verdict {
        Verdict::Undefined if line.backends.is_empty() => format!("# {}", line.reason.as_deref().unwrap_or_default()),
        Verdict::Undefined => format!("# {} (may answer: {backends})", line.reason.as_deref().unwrap_or_default()),
        _ => format!("backends {backends}{snat}"),
    }
}

/// txt, csv and md as connlist lines; json as the structured lines.
pub fn write(out: &mut impl Write, lines: &[ServiceLine], format: Format) -> io::Result<()> {
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut *out, lines)?;
        return writeln!(out);
    }
    let conns: Vec<String> = lines.iter().map(conn).collect();
    connlist::write(out, lines.iter().zip(&conns).map(|(l, c)| Line { src: &l.src, dst: &l.frontend, conn: c }), format)
}

/// `--explain SRC svc:ns/name` for a person: per frontend, the verdict and its reasons.
pub fn write_explain(out: &mut impl Write, explanations: &[FrontendExplanation]) -> io::Result<()> {
    if explanations.is_empty() {
        return writeln!(out, "no frontend: the Service is headless, or has no such port, or no address allocated yet");
    }
    for e in explanations {
        let verdict = match e.verdict {
            Verdict::Allow => "ALLOWED",
            Verdict::Deny => "DENIED",
            Verdict::Undefined => "UNDEFINED (#)",
        };
        writeln!(out, "{} => {}: {verdict}", e.src, e.frontend)?;
        for reason in &e.reasons {
            writeln!(out, "  {reason}")?;
        }
        if !e.backends.is_empty() {
            writeln!(out, "  backends: {}", e.backends.join(", "))?;
        }
        if let Some(ip) = e.snat {
            writeln!(out, "  source seen by backends on other nodes: {ip} (masqueraded)")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Vec<ServiceLine> {
        vec![
            ServiceLine {
                src: "x/a[Pod]".into(),
                frontend: "svc:x/web:80/TCP".into(),
                verdict: Verdict::Allow,
                backends: vec!["x/b[Pod]".into(), "x/c[Pod]".into()],
                snat: None,
                reason: None,
            },
            ServiceLine {
                src: "x/a[Pod]".into(),
                frontend: "svc:x/web:80/TCP[NodePort node0 172.18.0.2:30080]".into(),
                verdict: Verdict::Allow,
                backends: vec!["x/b[Pod]".into()],
                snat: Some("172.18.0.2".parse().unwrap()),
                reason: None,
            },
            ServiceLine {
                src: "x/b[Pod]".into(),
                frontend: "svc:x/web:80/TCP".into(),
                verdict: Verdict::Undefined,
                backends: vec![],
                snat: None,
                reason: Some("hairpin, not promised".into()),
            },
        ]
    }

    fn render(format: Format) -> String {
        let mut out = Vec::new();
        write(&mut out, &lines(), format).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn txt_lists_backends_masquerading_and_undefined_cells() {
        assert_eq!(
            render(Format::Txt),
            "x/a[Pod] => svc:x/web:80/TCP : backends x/b[Pod], x/c[Pod]\n\
             x/a[Pod] => svc:x/web:80/TCP[NodePort node0 172.18.0.2:30080] : backends x/b[Pod]; source masqueraded to 172.18.0.2\n\
             x/b[Pod] => svc:x/web:80/TCP : # hairpin, not promised\n"
        );
        let mut undefined_with_backends = lines()[0].clone();
        undefined_with_backends.verdict = Verdict::Undefined;
        undefined_with_backends.reason = Some("depends on the endpoint".into());
        assert_eq!(conn(&undefined_with_backends), "# depends on the endpoint (may answer: x/b[Pod], x/c[Pod])");
    }

    #[test]
    fn explanations_list_reasons_backends_and_masquerading() {
        let e = FrontendExplanation {
            src: "x/a[Pod]".into(),
            frontend: "svc:x/web:80/TCP[LoadBalancer 172.18.255.1]".into(),
            verdict: Verdict::Allow,
            backends: vec!["x/b[Pod]".into()],
            snat: Some("172.18.0.2".parse().unwrap()),
            reasons: vec!["first".into(), "second".into()],
        };
        let mut denied = e.clone();
        (denied.verdict, denied.backends, denied.snat) = (Verdict::Deny, vec![], None);
        let mut out = Vec::new();
        write_explain(&mut out, &[e, denied]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "x/a[Pod] => svc:x/web:80/TCP[LoadBalancer 172.18.255.1]: ALLOWED\n  first\n  second\n  backends: x/b[Pod]\n  source seen by backends on other nodes: 172.18.0.2 (masqueraded)\n\
             x/a[Pod] => svc:x/web:80/TCP[LoadBalancer 172.18.255.1]: DENIED\n  first\n  second\n"
        );
        let mut out = Vec::new();
        write_explain(&mut out, &[]).unwrap();
        assert!(String::from_utf8(out).unwrap().starts_with("no frontend"));
    }

    #[test]
    fn csv_quotes_and_json_keeps_structure() {
        assert!(render(Format::Csv).starts_with("src,dst,conn\nx/a[Pod],svc:x/web:80/TCP,\"backends x/b[Pod], x/c[Pod]\"\n"), "{}", render(Format::Csv));
        let json: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
        assert_eq!(json[1]["snat"], "172.18.0.2");
        assert_eq!(json[2]["verdict"], "undefined");
        assert_eq!(json[2]["reason"], "hairpin, not promised");
    }
}
