//! `analyze --explain` for a person.

use std::io::{self, Write};

use netmatrix_oracle::explain::{Explanation, RuleMatch, Side, TierStep, Verdict};

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
    write_side(out, &e.egress, &e.src, e.port.is_some())?;
    write_side(out, &e.ingress, &e.dst, e.port.is_some())?;
    writeln!(out, "allowed in both directions: {}", e.allowed)
}

fn write_side(out: &mut impl Write, side: &Side, endpoint: &str, one_port: bool) -> io::Result<()> {
    writeln!(out, "{} of {endpoint}:", side.direction)?;
    if side.pod.is_none() {
        return writeln!(out, "  outside the cluster: no NetworkPolicy applies");
    }
    if !side.tiers.is_empty() {
        let steps: Vec<String> = side.tiers.iter().map(|s| step(s, one_port)).collect();
        writeln!(out, "  tiers: {}", steps.join(" -> "))?;
    }
    if !side.isolated {
        if side.tiers.is_empty() {
            return writeln!(out, "  not isolated (no NetworkPolicy selects it for {}): all connections allowed", side.direction);
        }
        writeln!(out, "  no NetworkPolicy selects it for {}", side.direction)?;
    } else if !side.tiers.is_empty() && !side.tiers.iter().any(|s| s.tag == "NP") {
        // The admin tier decided every port: what NetworkPolicy would say does not matter.
        writeln!(out, "  isolated by: {} (not consulted: the admin tier decided)", side.selected_by.join(", "))?;
    } else {
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
    }
    writeln!(out, "  {} allows: {}", side.direction, side.allowed)
}

/// `[ANP] deny (name rule 2) on TCP 80`: the ports only when asked about all of them and the
/// step decides fewer.
fn step(s: &TierStep, one_port: bool) -> String {
    let mut text = format!("[{}] {}", s.tag, s.action);
    if !s.policies.is_empty() {
        let rule = s.rule.map(|r| format!(" rule {r}")).unwrap_or_default();
        text.push_str(&format!(" ({}{rule})", s.policies.join(", ")));
    }
    if !one_port && s.ports != "All Connections" {
        text.push_str(&format!(" on {}", s.ports));
    }
    text
}
