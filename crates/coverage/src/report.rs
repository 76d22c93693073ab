//! The coverage report: built once from the index and the counts, written as a readable
//! summary (txt), one HTML page, or JSON.
//!
//! JSON shape (schema `netmatrix.coverage/v1`); lists are sorted by name, groups `core` first:
//! ```text
//! { "schema": "netmatrix.coverage/v1",
//!   "input": { "lines": n, "bytes": n, "malformed": n, "other_stages": n, "duplicates": n },
//!   "events": n, "matched": n, "matched_by_object_ref": n,
//!   "operations": { "total": n, "hit": n },
//!   "groups": [ { "group": "core"|"apps"|...|"(non-resource)", "operations": n, "hit": n, "events": n } ],
//!   "networking": { "stable_operations": n, "hit": n, "share": 0.0-1.0,
//!                   "groups": [ { "group": "core"|"discovery.k8s.io"|..., "stable_operations": n, "hit": n,
//!                                 "share": f, "missed": ["operationId", ...] } ] },
//!   "agents": [ { "agent": "kubectl/v1.37.2 (linux/amd64) kubernetes/abc", "events": n, "unmatched": n, "operations": n } ],
//!   "cases": [ { "case": "suite/case", "events": n, "unmatched": n,
//!                "operations": [ { "id": "listCoreV1NamespacedPod", "method": "GET",
//!                                  "path": "/api/v1/namespaces/{namespace}/pods",
//!                                  "action": "list"|null, "kind": "Pod"|null, "events": n, "ok": n } ] } ],
//!   "unmatched": { "events": n, "examples": [ { "verb": "get", "uri": "...", "user_agent": "...", "reason": "path"|"method" } ] } }
//! ```
//! `action` is the operation's x-kubernetes-action, `kind` that of its
//! x-kubernetes-group-version-kind. `ok` counts responses with a status below 400; `share` is
//! `hit / stable_operations` (0 when there are none). `networking` counts stable operations (no
//! alpha or beta in the version) of core pods, services, endpoints, namespaces and nodes (their
//! subresources included), discovery.k8s.io, networking.k8s.io and policy.networking.k8s.io.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::audit::{Caller, Coverage, Hits, Unmatched};
use crate::openapi::{Index, Method, Miss, NETWORKING_GROUPS};

const NON_RESOURCE: &str = "(non-resource)";

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub input: Input,
    pub events: u64,
    pub matched: u64,
    pub matched_by_object_ref: u64,
    pub operations: Total,
    pub groups: Vec<Group>,
    pub networking: Networking,
    pub agents: Vec<Agent>,
    pub cases: Vec<Case>,
    pub unmatched: UnmatchedSummary,
}

#[derive(Debug, Serialize)]
pub struct Input {
    pub lines: u64,
    pub bytes: u64,
    pub malformed: u64,
    pub other_stages: u64,
    pub duplicates: u64,
}

#[derive(Debug, Serialize)]
pub struct Total {
    pub total: usize,
    pub hit: usize,
}

#[derive(Debug, Serialize)]
pub struct Group {
    pub group: String,
    pub operations: usize,
    pub hit: usize,
    pub events: u64,
}

#[derive(Debug, Serialize)]
pub struct Networking {
    pub stable_operations: usize,
    pub hit: usize,
    pub share: f64,
    pub groups: Vec<NetworkingGroup>,
}

#[derive(Debug, Serialize)]
pub struct NetworkingGroup {
    pub group: String,
    pub stable_operations: usize,
    pub hit: usize,
    pub share: f64,
    pub missed: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Agent {
    pub agent: String,
    pub events: u64,
    pub unmatched: u64,
    pub operations: usize,
}

#[derive(Debug, Serialize)]
pub struct Case {
    pub case: String,
    pub events: u64,
    pub unmatched: u64,
    pub operations: Vec<CaseOperation>,
}

#[derive(Debug, Serialize)]
pub struct CaseOperation {
    pub id: String,
    pub method: Method,
    pub path: String,
    pub action: Option<String>,
    pub kind: Option<String>,
    #[serde(flatten)]
    pub hits: Hits,
}

#[derive(Debug, Serialize)]
pub struct UnmatchedSummary {
    pub events: u64,
    pub examples: Vec<Unmatched>,
}

fn share(hit: usize, total: usize) -> f64 {
    if total == 0 { 0.0 } else { hit as f64 / total as f64 }
}

/// `core` first, the rest by name, non-resource paths last.
fn group_order(g: &str) -> (u8, &str) {
    match g {
        "core" => (0, g),
        NON_RESOURCE => (2, g),
        _ => (1, g),
    }
}

impl Report {
    pub fn new(index: &Index, coverage: &Coverage) -> Report {
        let hit = |i: usize| coverage.operations[i].events > 0;
        let mut groups: BTreeMap<(u8, &str), Group> = BTreeMap::new();
        let mut networking: BTreeMap<(u8, &str), NetworkingGroup> = BTreeMap::new();
        for g in std::iter::once("core").chain(NETWORKING_GROUPS) {
            networking.insert(group_order(g), NetworkingGroup { group: g.into(), stable_operations: 0, hit: 0, share: 0.0, missed: Vec::new() });
        }
        for (i, op) in index.operations.iter().enumerate() {
            let name = op.group.as_deref().unwrap_or(NON_RESOURCE);
            let g = groups.entry(group_order(name)).or_insert_with(|| Group { group: name.into(), operations: 0, hit: 0, events: 0 });
            g.operations += 1;
            g.hit += usize::from(hit(i));
            g.events += coverage.operations[i].events;
            if op.is_stable()
                && let Some(name) = op.networking_group()
                && let Some(n) = networking.get_mut(&group_order(name))
            {
                n.stable_operations += 1;
                if hit(i) {
                    n.hit += 1;
                } else {
                    n.missed.push(op.id.clone());
                }
            }
        }
        let mut networking: Vec<NetworkingGroup> = networking.into_values().collect();
        for n in &mut networking {
            n.share = share(n.hit, n.stable_operations);
            n.missed.sort();
        }
        let (stable, stable_hit) = networking.iter().fold((0, 0), |(s, h), n| (s + n.stable_operations, h + n.hit));
        let mut agents: Vec<Agent> = coverage
            .agents
            .iter()
            .map(|(agent, c)| Agent { agent: agent.clone(), events: c.events, unmatched: c.unmatched, operations: c.operations.len() })
            .collect();
        agents.sort_by(|a, b| a.agent.cmp(&b.agent));
        let mut cases: Vec<Case> = coverage.cases.iter().map(|(case, c)| case_report(index, case, c)).collect();
        cases.sort_by(|a, b| a.case.cmp(&b.case));
        Report {
            schema: "netmatrix.coverage/v1",
            input: Input {
                lines: coverage.lines,
                bytes: coverage.bytes,
                malformed: coverage.malformed,
                other_stages: coverage.other_stages,
                duplicates: coverage.duplicates,
            },
            events: coverage.events,
            matched: coverage.matched,
            matched_by_object_ref: coverage.matched_by_object_ref,
            operations: Total { total: index.operations.len(), hit: (0..index.operations.len()).filter(|&i| hit(i)).count() },
            groups: groups.into_values().collect(),
            networking: Networking { stable_operations: stable, hit: stable_hit, share: share(stable_hit, stable), groups: networking },
            agents,
            cases,
            unmatched: UnmatchedSummary { events: coverage.unmatched, examples: coverage.examples.clone() },
        }
    }

    pub fn write_json(&self, mut out: impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut out, self)?;
        writeln!(out)
    }

    pub fn write_txt(&self, mut out: impl Write) -> io::Result<()> {
        let i = &self.input;
        writeln!(
            out,
            "events: {} counted (ResponseComplete/Panic), {} matched ({} by objectRef), {} unmatched; lines: {}, malformed: {}, other stages: {}, duplicates: {}",
            self.events, self.matched, self.matched_by_object_ref, self.unmatched.events, i.lines, i.malformed, i.other_stages, i.duplicates
        )?;
        writeln!(out, "operations: {} of {} hit\n", self.operations.hit, self.operations.total)?;

        writeln!(
            out,
            "networking (stable operations): {} of {} hit ({})",
            self.networking.hit,
            self.networking.stable_operations,
            percent(self.networking.share)
        )?;
        let rows = self.networking.groups.iter().map(|g| vec![g.group.clone(), g.stable_operations.to_string(), g.hit.to_string(), percent(g.share)]);
        table(&mut out, &["group", "stable ops", "hit", "share"], rows)?;

        writeln!(out, "\nper API group:")?;
        let rows = self.groups.iter().map(|g| vec![g.group.clone(), g.operations.to_string(), g.hit.to_string(), g.events.to_string()]);
        table(&mut out, &["group", "ops", "hit", "events"], rows)?;

        writeln!(out, "\nper case:")?;
        let rows = self.cases.iter().map(|c| vec![c.case.clone(), c.events.to_string(), c.unmatched.to_string(), c.operations.len().to_string()]);
        table(&mut out, &["case", "events", "unmatched", "ops"], rows)?;
        for c in &self.cases {
            let ops: Vec<String> = c.operations.iter().map(|o| format!("{} x{}", o.id, o.hits.events)).collect();
            writeln!(out, "  {}: {}", c.case, ops.join(", "))?;
        }

        writeln!(out, "\nper user agent:")?;
        let rows = self.agents.iter().map(|a| vec![a.agent.clone(), a.events.to_string(), a.unmatched.to_string(), a.operations.to_string()]);
        table(&mut out, &["user agent", "events", "unmatched", "ops"], rows)?;

        if !self.unmatched.examples.is_empty() {
            writeln!(out, "\nunmatched ({} events), for example:", self.unmatched.events)?;
            for u in &self.unmatched.examples {
                writeln!(out, "  {} {} ({}; {})", u.verb, u.uri, miss_text(u.reason), u.user_agent)?;
            }
        }
        Ok(())
    }
}

/// `&`, `<`, `>` and `"` as HTML entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn html_table(out: &mut impl Write, header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> io::Result<()> {
    write!(out, "<table><tr>")?;
    for h in header {
        write!(out, "<th>{}</th>", escape(h))?;
    }
    writeln!(out, "</tr>")?;
    for row in rows {
        write!(out, "<tr>")?;
        for cell in row {
            write!(out, "<td>{}</td>", escape(&cell))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</table>")
}

impl Report {
    /// One self-contained page (no scripts, no external files): the same tables as txt, each
    /// case's operations folded under it.
    pub fn write_html(&self, mut out: impl Write) -> io::Result<()> {
        let out = &mut out;
        writeln!(
            out,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>netmatrix coverage</title><style>\
             body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:.5em 0}}\
             td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style></head><body>"
        )?;
        writeln!(out, "<h1>API coverage</h1>")?;
        writeln!(
            out,
            "<p>{} events counted, {} matched ({} by objectRef), {} unmatched; {} of {} operations hit; {} lines, {} malformed.</p>",
            self.events,
            self.matched,
            self.matched_by_object_ref,
            self.unmatched.events,
            self.operations.hit,
            self.operations.total,
            self.input.lines,
            self.input.malformed
        )?;
        writeln!(
            out,
            "<h2>Networking: {} of {} stable operations ({})</h2>",
            self.networking.hit,
            self.networking.stable_operations,
            percent(self.networking.share)
        )?;
        let rows = self
            .networking
            .groups
            .iter()
            .map(|g| vec![g.group.clone(), g.stable_operations.to_string(), g.hit.to_string(), percent(g.share), g.missed.join(", ")]);
        html_table(out, &["group", "stable ops", "hit", "share", "missed"], rows)?;
        writeln!(out, "<h2>Per API group</h2>")?;
        let rows = self.groups.iter().map(|g| vec![g.group.clone(), g.operations.to_string(), g.hit.to_string(), g.events.to_string()]);
        html_table(out, &["group", "ops", "hit", "events"], rows)?;
        writeln!(out, "<h2>Per case</h2>")?;
        for c in &self.cases {
            writeln!(
                out,
                "<details><summary>{}: {} events, {} unmatched, {} operations</summary>",
                escape(&c.case),
                c.events,
                c.unmatched,
                c.operations.len()
            )?;
            let rows =
                c.operations.iter().map(|o| vec![o.id.clone(), o.method.as_str().to_owned(), o.path.clone(), o.hits.events.to_string(), o.hits.ok.to_string()]);
            html_table(out, &["operation", "method", "path", "events", "ok"], rows)?;
            writeln!(out, "</details>")?;
        }
        writeln!(out, "<h2>Per user agent</h2>")?;
        let rows = self.agents.iter().map(|a| vec![a.agent.clone(), a.events.to_string(), a.unmatched.to_string(), a.operations.to_string()]);
        html_table(out, &["user agent", "events", "unmatched", "ops"], rows)?;
        writeln!(out, "<h2>Unmatched: {} events</h2>", self.unmatched.events)?;
        let rows = self.unmatched.examples.iter().map(|u| vec![u.verb.clone(), u.uri.clone(), u.user_agent.clone(), miss_text(u.reason).to_owned()]);
        html_table(out, &["verb", "URI", "user agent", "reason"], rows)?;
        writeln!(out, "</body></html>")
    }
}

fn miss_text(miss: Miss) -> &'static str {
    match miss {
        Miss::Path => "no such path",
        Miss::Method => "no such method",
    }
}

fn case_report(index: &Index, case: &str, c: &Caller) -> Case {
    let mut operations: Vec<CaseOperation> = c
        .operations
        .iter()
        .map(|(&op, &hits)| {
            let op = &index.operations[op as usize];
            CaseOperation { id: op.id.clone(), method: op.method, path: op.path.clone(), action: op.action.clone(), kind: op.kind.clone(), hits }
        })
        .collect();
    operations.sort_by(|a, b| a.id.cmp(&b.id));
    Case { case: case.to_owned(), events: c.events, unmatched: c.unmatched, operations }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Columns padded to their widest cell; the first left-aligned, numbers right-aligned.
fn table(out: &mut impl Write, header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> io::Result<()> {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| (*h).to_owned()).collect()).chain(rows).collect();
    let widths: Vec<usize> = (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                line.push_str(&format!("  {cell}{}", " ".repeat(pad)));
            } else {
                line.push_str(&format!("  {}{cell}", " ".repeat(pad)));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
