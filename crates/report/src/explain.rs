//! `analyze --explain` for a person.

use std::io::{self, Write};

use netmatrix_oracle::explain::{Explanation, RuleMatch, Side, Verdict};

pub fn write_text(out: &mut impl Write, e: &Explanation) -> io::Result<()> {
    let what = match (e.port, e.protocol) {
        (Some(port), Some(protocol)) => format!(" on {protocol} {port}"),
        _ => String::new(),
    };
    let verdict = match e.verdict {
        Verdict::Allowed => "ALLOWED",
        Verdict::Denied => "DENIED",
    };
    writeln!(out, "{} => {}{what}: {verdict}", e.src, e.dst)?;
    write_side(out, &e.egress, &e.src)?;
    write_side(out, &e.ingress, &e.dst)?;
    writeln!(out, "allowed in both directions: {}", e.allowed)
}

fn write_side(out: &mut impl Write, side: &Side, endpoint: &str) -> io::Result<()> {
    writeln!(out, "{} of {endpoint}:", side.direction)?;
    if side.pod.is_none() {
        return writeln!(out, "  outside the cluster: no NetworkPolicy applies");
    }
    if !side.isolated {
        return writeln!(out, "  not isolated (no NetworkPolicy selects it for {}): all connections allowed", side.direction);
    }
    writeln!(out, "  isolated by: {}", side.selected_by.join(", "))?;
    if side.allowing_rules.is_empty() {
        writeln!(out, "  no rule of these policies allows it: denied")?;
    }
    for RuleMatch { policy, rule, peer, ports } in &side.allowing_rules {
        let peer = match peer {
            Some(p) => format!("peer {p}"),
            None => "any peer".to_owned(),
        };
        writeln!(out, "  allowed by {policy} {} rule {rule}, {peer}: {ports}", side.direction)?;
    }
    writeln!(out, "  {} allows: {}", side.direction, side.allowed)
}
