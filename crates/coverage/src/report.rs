//! The coverage report: built once from the index and the counts, written as a readable
//! summary (txt) or JSON.
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
//!                                  "path": "/api/v1/namespaces/{namespace}/pods", "events": n, "ok": n } ] } ],
//!   "unmatched": { "events": n, "examples": [ { "verb": "get", "uri": "...", "user_agent": "...", "reason": "path"|"method" } ] } }
//! ```
//! `ok` counts responses with a status below 400; `share` is `hit / stable_operations` (0 when
//! there are none). `networking` counts stable operations (no alpha or beta in the version) of
//! core pods, services, endpoints, namespaces and nodes (their subresources included),
//! discovery.k8s.io, networking.k8s.io and policy.networking.k8s.io.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::audit::{Caller, Coverage, Hits, Unmatched};
use crate::openapi::{Index, Method, NETWORKING_GROUPS};

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
                let reason = match u.reason {
                    crate::openapi::Miss::Path => "no such path",
                    crate::openapi::Miss::Method => "no such method",
                };
                writeln!(out, "  {} {} ({reason}; {})", u.verb, u.uri, u.user_agent)?;
            }
        }
        Ok(())
    }
}

fn case_report(index: &Index, case: &str, c: &Caller) -> Case {
    let mut operations: Vec<CaseOperation> = c
        .operations
        .iter()
        .map(|(&op, &hits)| {
            let op = &index.operations[op as usize];
            CaseOperation { id: op.id.clone(), method: op.method, path: op.path.clone(), hits }
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
