//! Reading an audit log (JSON lines of `audit.k8s.io/v1` Events) in bounded memory, and
//! counting each request against the operation it exercised.
//!
//! Each line is parsed on its own into [`Event`], which borrows from the line buffer and skips
//! every field it does not name. Memory grows with the operations, user agents and cases seen,
//! never with the log's length.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::io::BufRead;

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::Deserialize;

use crate::openapi::{Index, Method, Miss};

/// A string that borrows from the line unless JSON escapes forced a copy (Go's encoder writes
/// `&` in a requestURI as `\u0026`).
#[derive(Debug)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// The fields of an audit event that coverage reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    #[serde(borrow, rename = "auditID")]
    audit_id: Option<Text<'a>>,
    #[serde(borrow)]
    stage: Option<Text<'a>>,
    #[serde(borrow)]
    verb: Option<Text<'a>>,
    #[serde(borrow, rename = "requestURI")]
    request_uri: Option<Text<'a>>,
    #[serde(borrow)]
    user_agent: Option<Text<'a>>,
    #[serde(borrow)]
    object_ref: Option<ObjectRef<'a>>,
    response_status: Option<Status>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef<'a> {
    #[serde(borrow)]
    resource: Option<Text<'a>>,
    #[serde(borrow)]
    subresource: Option<Text<'a>>,
    #[serde(borrow)]
    namespace: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    api_group: Option<Text<'a>>,
    #[serde(borrow)]
    api_version: Option<Text<'a>>,
}

#[derive(Debug, Deserialize)]
struct Status {
    code: Option<u16>,
}

/// How often an operation was called, and how often it succeeded (status below 400).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Hits {
    pub events: u64,
    pub ok: u64,
}

impl Hits {
    fn add(&mut self, ok: bool) {
        self.events += 1;
        self.ok += u64::from(ok);
    }
}

/// Requests of one user agent (without a netmatrix case suffix) or one netmatrix case.
#[derive(Debug, Default)]
pub struct Caller {
    pub events: u64,
    pub unmatched: u64,
    /// Operation (index into [`Index::operations`]) → hits.
    pub operations: FxHashMap<u32, Hits>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unmatched {
    pub verb: String,
    pub uri: String,
    pub user_agent: String,
    pub reason: Miss,
}

/// Callers kept by name; more distinct user agents or cases than this are counted together as
/// [`OTHERS`], which keeps memory bounded whatever the log holds.
pub const MAX_CALLERS: usize = 10_000;
pub const OTHERS: &str = "(others)";
/// Unmatched requests kept as examples, one per verb and path.
pub const EXAMPLES: usize = 10;
/// Audit IDs remembered for deduplication, per generation (two generations are kept): the final
/// stage of a request is written once, so only a repeat within this many events is caught.
const DEDUP_WINDOW: usize = 1 << 17;

#[derive(Debug, Default)]
pub struct Coverage {
    pub lines: u64,
    pub bytes: u64,
    /// Lines that are not an audit event in JSON.
    pub malformed: u64,
    /// Events of the stages RequestReceived and ResponseStarted, which are not counted.
    pub other_stages: u64,
    /// A second final-stage event of the same audit ID.
    pub duplicates: u64,
    /// Counted events: ResponseComplete or Panic, once per audit ID.
    pub events: u64,
    pub matched: u64,
    /// Matched by the path built from objectRef after the requestURI matched nothing.
    pub matched_by_object_ref: u64,
    pub unmatched: u64,
    pub examples: Vec<Unmatched>,
    /// Per operation (same order as [`Index::operations`]).
    pub operations: Vec<Hits>,
    pub agents: FxHashMap<String, Caller>,
    /// netmatrix cases: the part after ` -- ` of the user agent `netmatrix/<version> -- <case-id>`.
    pub cases: FxHashMap<String, Caller>,
    seen: [FxHashSet<u64>; 2],
}

impl Coverage {
    pub fn new(index: &Index) -> Coverage {
        Coverage { operations: vec![Hits::default(); index.operations.len()], ..Default::default() }
    }

    /// Reads every line of `log`; only I/O errors stop it.
    pub fn read(&mut self, index: &Index, mut log: impl BufRead) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(4096);
        loop {
            line.clear();
            if log.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            self.line(index, &line);
        }
    }

    /// Counts one line of the log.
    pub fn line(&mut self, index: &Index, line: &[u8]) {
        self.lines += 1;
        self.bytes += line.len() as u64;
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        match serde_json::from_slice::<Event>(trimmed) {
            Ok(event) if event.verb.is_some() || event.request_uri.is_some() => self.event(index, &event),
            _ => self.malformed += 1,
        }
    }

    fn event(&mut self, index: &Index, event: &Event) {
        let stage = event.stage.as_ref().map_or("", |s| &s.0);
        if stage != "ResponseComplete" && stage != "Panic" {
            self.other_stages += 1;
            return;
        }
        if let Some(id) = &event.audit_id
            && !self.first_time(&id.0)
        {
            self.duplicates += 1;
            return;
        }
        self.events += 1;
        let verb = event.verb.as_ref().map_or("", |v| &v.0);
        let uri = event.request_uri.as_ref().map_or("", |u| &u.0);
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let watch = verb == "watch" || query.split('&').any(|p| p == "watch=true" || p == "watch=1");
        let found = match method(verb) {
            None => Err(Miss::Method),
            Some(m) => index.find(m, path, watch).or_else(|miss| match event.object_ref.as_ref().and_then(object_path) {
                Some(p) if p != path => index.find(m, &p, watch).inspect(|_| self.matched_by_object_ref += 1).map_err(|_| miss),
                _ => Err(miss),
            }),
        };
        let ok = event.response_status.as_ref().and_then(|s| s.code).is_some_and(|c| (100..400).contains(&c));
        let agent = event.user_agent.as_ref().map_or("", |a| &a.0);
        let (agent, case) = match agent.split_once(" -- ") {
            Some((a, case)) if a.starts_with("netmatrix/") => (a, Some(case)),
            _ => (agent, None),
        };
        match found {
            Ok(op) => {
                self.matched += 1;
                self.operations[op as usize].add(ok);
            }
            Err(reason) => {
                self.unmatched += 1;
                // Distinct paths: a prober's /readyz every second would fill them otherwise.
                if self.examples.len() < EXAMPLES && !self.examples.iter().any(|e| e.verb == verb && e.uri.split('?').next() == Some(path)) {
                    let user_agent = event.user_agent.as_ref().map_or("", |a| &a.0).to_owned();
                    self.examples.push(Unmatched { verb: verb.to_owned(), uri: uri.to_owned(), user_agent, reason });
                }
            }
        }
        caller(&mut self.agents, agent).count(found.ok(), ok);
        if let Some(case) = case {
            caller(&mut self.cases, case).count(found.ok(), ok);
        }
    }

    fn first_time(&mut self, audit_id: &str) -> bool {
        let mut h = FxHasher::default();
        audit_id.hash(&mut h);
        let key = h.finish();
        if self.seen.iter().any(|s| s.contains(&key)) {
            return false;
        }
        if self.seen[0].len() >= DEDUP_WINDOW {
            self.seen.swap(0, 1);
            self.seen[0].clear();
        }
        self.seen[0].insert(key);
        true
    }
}

impl Caller {
    fn count(&mut self, op: Option<u32>, ok: bool) {
        self.events += 1;
        match op {
            Some(op) => self.operations.entry(op).or_default().add(ok),
            None => self.unmatched += 1,
        }
    }
}

fn caller<'m>(callers: &'m mut FxHashMap<String, Caller>, name: &str) -> &'m mut Caller {
    // Looked up before inserting so that a known name costs no allocation.
    let name = if callers.contains_key(name) || callers.len() < MAX_CALLERS { name } else { OTHERS };
    if !callers.contains_key(name) {
        callers.insert(name.to_owned(), Caller::default());
    }
    callers.get_mut(name).expect("inserted above")
}

/// The HTTP method of an audit verb: Kubernetes' resource verbs, or the lower-case method of a
/// non-resource request.
fn method(verb: &str) -> Option<Method> {
    Some(match verb {
        "get" | "list" | "watch" => Method::Get,
        "create" | "post" => Method::Post,
        "update" | "put" => Method::Put,
        "patch" => Method::Patch,
        "delete" | "deletecollection" => Method::Delete,
        _ => return None,
    })
}

/// The request path objectRef describes, for requests whose URI the spec does not know as such.
fn object_path(r: &ObjectRef) -> Option<String> {
    fn text<'t>(t: &'t Option<Text>) -> Option<&'t str> {
        t.as_ref().map(|t| t.0.as_ref()).filter(|t| !t.is_empty())
    }
    let resource = text(&r.resource)?;
    let version = text(&r.api_version)?;
    let mut path = match text(&r.api_group) {
        Some(group) => format!("/apis/{group}/{version}"),
        None => format!("/api/{version}"),
    };
    if let Some(ns) = text(&r.namespace)
        && resource != "namespaces"
    {
        path.push_str("/namespaces/");
        path.push_str(ns);
    }
    for part in [Some(resource), text(&r.name), text(&r.subresource)].into_iter().flatten() {
        path.push('/');
        path.push_str(part);
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_strings_are_copied_plain_ones_borrowed() {
        let line = r#"{"verb":"list","requestURI":"/api/v1/pods?limit=1\u0026watch=true","userAgent":"a"}"#;
        let e: Event = serde_json::from_str(line).unwrap();
        assert_eq!(e.request_uri.as_ref().unwrap().0, "/api/v1/pods?limit=1&watch=true");
        assert!(matches!(e.user_agent.unwrap().0, Cow::Borrowed("a")));
    }

    #[test]
    fn object_paths() {
        let t = |s: &'static str| Some(Text(Cow::Borrowed(s)));
        let r = ObjectRef { resource: t("pods"), subresource: t("exec"), namespace: t("x"), name: t("a"), api_group: None, api_version: t("v1") };
        assert_eq!(object_path(&r).as_deref(), Some("/api/v1/namespaces/x/pods/a/exec"));
        let r = ObjectRef { resource: t("namespaces"), subresource: None, namespace: t("x"), name: t("x"), api_group: t(""), api_version: t("v1") };
        assert_eq!(object_path(&r).as_deref(), Some("/api/v1/namespaces/x"));
        let r = ObjectRef {
            resource: t("networkpolicies"),
            subresource: None,
            namespace: None,
            name: None,
            api_group: t("networking.k8s.io"),
            api_version: t("v1"),
        };
        assert_eq!(object_path(&r).as_deref(), Some("/apis/networking.k8s.io/v1/networkpolicies"));
    }

    #[test]
    fn callers_are_bounded() {
        let mut callers = FxHashMap::default();
        for i in 0..MAX_CALLERS + 5 {
            caller(&mut callers, &format!("agent{i}")).count(None, false);
        }
        assert_eq!(callers.len(), MAX_CALLERS + 1);
        assert_eq!(callers[OTHERS].events, 5);
    }
}
