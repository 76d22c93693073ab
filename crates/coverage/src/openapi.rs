//! The OpenAPI index: every operation of a spec by path template and method, and the matcher
//! that finds the operation of a concrete request path.
//!
//! Swagger 2.0 (`/openapi/v2`) and OpenAPI 3 (`/openapi/v3/apis/GROUP/VERSION`) documents keep
//! operations the same way (`paths` → method → `operationId`, `x-kubernetes-action`,
//! `x-kubernetes-group-version-kind`), so one reader takes both, and several documents merge.

use std::path::Path;

use rustc_hash::FxHashMap;
use serde_json::Value;

/// The HTTP methods Kubernetes operations use, in the order of [`Node::ops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
    Patch,
}

impl Method {
    const ALL: [Method; 5] = [Method::Get, Method::Put, Method::Post, Method::Delete, Method::Patch];

    fn from_key(key: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(key))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
        }
    }
}

/// Core resources that carry cluster networking; their paths under /api/v1 (and subresources)
/// count towards the networking share.
const NETWORKING_CORE: [&str; 5] = ["pods", "services", "endpoints", "namespaces", "nodes"];
/// API groups whose every operation counts towards the networking share.
pub const NETWORKING_GROUPS: [&str; 3] = ["discovery.k8s.io", "networking.k8s.io", "policy.networking.k8s.io"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: String,
    pub method: Method,
    /// The path template as the spec writes it, e.g. `/api/v1/namespaces/{namespace}/pods/{name}`.
    pub path: String,
    /// `x-kubernetes-action`: get, list, watch, watchlist, create, connect, ...
    pub action: Option<String>,
    /// The kind of `x-kubernetes-group-version-kind`.
    pub kind: Option<String>,
    /// The API group the path lives in: `core` under /api, the group under /apis, none for
    /// non-resource paths (/version, /healthz). Where the operation is served, not its kind's
    /// group: pods/eviction (kind policy/v1 Eviction) is core's.
    pub group: Option<String>,
    pub version: Option<String>,
    /// The resource the path addresses (`pods` for `.../pods/{name}/exec`).
    pub resource: Option<String>,
}

impl Operation {
    /// No `alpha` or `beta` in the version.
    pub fn is_stable(&self) -> bool {
        self.version.as_deref().is_some_and(|v| !v.contains("alpha") && !v.contains("beta"))
    }

    /// Under a networking-relevant group, or a networking core resource (see [`NETWORKING_GROUPS`]).
    pub fn networking_group(&self) -> Option<&str> {
        let group = self.group.as_deref()?;
        let relevant = match group {
            "core" => self.resource.as_deref().is_some_and(|r| NETWORKING_CORE.contains(&r)),
            g => NETWORKING_GROUPS.contains(&g),
        };
        relevant.then_some(group)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not JSON")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// A document without operations: likely the /openapi/v3 discovery list, not a group's document.
    #[error("{0}: no operations under `paths` (for OpenAPI 3, give the group documents such as /openapi/v3/api/v1, not the /openapi/v3 list)")]
    NoOperations(String),
}

/// A path segment tree: literal segments first, then a `{param}`, then a trailing `{path}`
/// that takes the rest of the request path (proxy subresources).
#[derive(Debug, Default)]
struct Node {
    literal: FxHashMap<Box<str>, Node>,
    param: Option<Box<Node>>,
    rest: Option<Box<Node>>,
    ops: [Option<u32>; 5],
}

/// Why a request found no operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Miss {
    /// No path template matches.
    Path,
    /// The path is known, but not with this method.
    Method,
}

#[derive(Debug, Default)]
pub struct Index {
    pub operations: Vec<Operation>,
    root: Node,
}

impl Index {
    /// Reads and merges the documents; an operation seen twice (same method and template) is kept once.
    pub fn read(paths: &[impl AsRef<Path>]) -> Result<Index, OpenApiError> {
        let mut index = Index::default();
        for path in paths {
            let path = path.as_ref();
            let name = path.display().to_string();
            let text = std::fs::read(path).map_err(|source| OpenApiError::Read { path: name.clone(), source })?;
            let doc: Value = serde_json::from_slice(&text).map_err(|source| OpenApiError::Parse { path: name.clone(), source })?;
            if index.add(&doc) == 0 {
                return Err(OpenApiError::NoOperations(name));
            }
        }
        Ok(index)
    }

    /// Adds a document's operations; returns how many it had.
    pub fn add(&mut self, doc: &Value) -> usize {
        let mut found = 0;
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else { return 0 };
        for (template, item) in paths {
            let Some(item) = item.as_object() else { continue };
            for (key, op) in item {
                let Some(method) = Method::from_key(key) else { continue };
                found += 1;
                let next = self.operations.len() as u32;
                let node = node_mut(&mut self.root, template);
                let slot = &mut node.ops[method as usize];
                if slot.is_some() {
                    continue;
                }
                *slot = Some(next);
                let text = |k: &str| op.get(k).and_then(Value::as_str).map(str::to_owned);
                let (group, version, resource) = locate(template);
                self.operations.push(Operation {
                    id: text("operationId").unwrap_or_else(|| format!("{} {template}", method.as_str())),
                    method,
                    path: template.clone(),
                    action: text("x-kubernetes-action"),
                    kind: op.get("x-kubernetes-group-version-kind").and_then(|g| g.get("kind")).and_then(Value::as_str).map(str::to_owned),
                    group,
                    version,
                    resource,
                });
            }
        }
        found
    }

    /// The operation for `method` on a request path (no query), literal segments before
    /// parameters. `watch`: a watch request, which the deprecated `/watch/` path's operation
    /// takes where the spec has one, else the list path's.
    pub fn find(&self, method: Method, path: &str, watch: bool) -> Result<u32, Miss> {
        let segs: Vec<&str> = segments(path).collect();
        if watch && let Some(at) = watch_position(&segs) {
            let mut watch_segs = segs.clone();
            watch_segs.insert(at, "watch");
            if let Some(op) = find_in(&self.root, &watch_segs, method) {
                return Ok(op);
            }
        }
        match find_in(&self.root, &segs, method) {
            Some(op) => Ok(op),
            None if has_path(&self.root, &segs) => Err(Miss::Method),
            None => Err(Miss::Path),
        }
    }
}

/// The node of a path template, made on the way.
fn node_mut<'n>(root: &'n mut Node, template: &str) -> &'n mut Node {
    let segments: Vec<&str> = segments(template).collect();
    let mut node = root;

    for (i, s) in segments.iter().enumerate() {
        node = if *s == "{path}" && i + 1 == segments.len() {
            node.rest.get_or_insert_default()
        } else if s.starts_with('{') && s.ends_with('}') {
            node.param.get_or_insert_default()
        } else {
            node.literal.entry((*s).into()).or_default()
        };
    }
    node
}

/// Path segments without the leading, trailing or doubled slashes: the spec writes `/version/`,
/// clients ask for `/version`.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Where `/watch/` goes in a resource path: after /api/VERSION or /apis/GROUP/VERSION.
fn watch_position(segs: &[&str]) -> Option<usize> {
    let at = match segs.first() {
        Some(&"api") => 2,
        Some(&"apis") => 3,
        _ => return None,
    };
    (segs.len() > at).then_some(at)
}

fn find_in(node: &Node, segs: &[&str], method: Method) -> Option<u32> {
    let Some((first, rest)) = segs.split_first() else { return node.ops[method as usize] };
    node.literal
        .get(*first)
        .and_then(|n| find_in(n, rest, method))
        .or_else(|| node.param.as_deref().and_then(|n| find_in(n, rest, method)))
        .or_else(|| node.rest.as_deref().and_then(|n| n.ops[method as usize]))
}

fn has_path(node: &Node, segs: &[&str]) -> bool {
    let Some((first, rest)) = segs.split_first() else { return node.ops.iter().any(Option::is_some) };
    node.literal.get(*first).is_some_and(|n| has_path(n, rest)) || node.param.as_deref().is_some_and(|n| has_path(n, rest)) || node.rest.is_some()
}

/// Group, version and resource of a path template: `/api/v1/namespaces/{namespace}/pods/{name}`
/// is core, v1, pods; `/apis/networking.k8s.io/v1/watch/networkpolicies` is networking.k8s.io,
/// v1, networkpolicies; `/version/` has none.
fn locate(template: &str) -> (Option<String>, Option<String>, Option<String>) {
    let segs: Vec<&str> = segments(template).collect();
    let (group, rest) = match segs.as_slice() {
        ["api", rest @ ..] => ("core", rest),
        ["apis", group, rest @ ..] => (*group, rest),
        _ => return (None, None, None),
    };
    let Some((version, rest)) = rest.split_first() else { return (Some(group.to_owned()), None, None) };
    let rest = rest.strip_prefix(&["watch"]).unwrap_or(rest);
    // The namespace object is `namespaces/{name}`, a namespaced resource `namespaces/{namespace}/R`.
    let resource = match rest {
        ["namespaces", "{namespace}", resource, ..] => Some(*resource),
        [resource, ..] => Some(*resource),
        [] => None,
    };
    (Some(group.to_owned()), Some((*version).to_owned()), resource.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> Index {
        let mut index = Index::default();
        let op = |id: &str| json!({"operationId": id});
        index.add(&json!({"paths": {
            "/api/v1/namespaces/{namespace}/pods": {"get": op("listPods"), "post": op("createPod"), "parameters": [{"name": "namespace"}]},
            "/api/v1/namespaces/{namespace}/pods/{name}": {"get": op("readPod")},
            "/api/v1/namespaces/{namespace}/pods/{name}/status": {"get": op("readPodStatus")},
            "/api/v1/namespaces/{name}": {"get": op("readNamespace")},
            "/api/v1/namespaces/{name}/status": {"get": op("readNamespaceStatus")},
            "/api/v1/watch/namespaces/{namespace}/pods": {"get": op("watchPods")},
            "/api/v1/nodes/{name}/proxy/{path}": {"get": op("proxyNode")},
            "/version/": {"get": op("getCodeVersion")},
        }}));
        index
    }

    fn id<'i>(index: &'i Index, method: Method, path: &str, watch: bool) -> Result<&'i str, Miss> {
        index.find(method, path, watch).map(|i| index.operations[i as usize].id.as_str())
    }

    #[test]
    fn literals_before_parameters() {
        let index = index();
        assert_eq!(id(&index, Method::Get, "/api/v1/namespaces/x/pods", false), Ok("listPods"));
        assert_eq!(id(&index, Method::Get, "/api/v1/namespaces/x/status", false), Ok("readNamespaceStatus"));
        assert_eq!(id(&index, Method::Get, "/api/v1/namespaces/x/pods/a/status", false), Ok("readPodStatus"));
        assert_eq!(id(&index, Method::Get, "/version", false), Ok("getCodeVersion"), "the spec's trailing slash");
        assert_eq!(id(&index, Method::Get, "/api/v1/nodes/n1/proxy/metrics/cadvisor", false), Ok("proxyNode"), "{{path}} takes the rest");
        assert_eq!(id(&index, Method::Get, "/api/v1/namespaces/x/pods", true), Ok("watchPods"));
        assert_eq!(id(&index, Method::Delete, "/api/v1/namespaces/x/pods", false), Err(Miss::Method));
        assert_eq!(id(&index, Method::Get, "/apis/apps/v1/deployments", false), Err(Miss::Path));
    }

    #[test]
    fn groups_versions_resources() {
        let loc = |t: &str| locate(t);
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(loc("/api/v1/namespaces/{namespace}/pods/{name}/exec"), (s("core"), s("v1"), s("pods")));
        assert_eq!(loc("/api/v1/namespaces/{name}/finalize"), (s("core"), s("v1"), s("namespaces")));
        assert_eq!(loc("/apis/networking.k8s.io/v1/watch/networkpolicies"), (s("networking.k8s.io"), s("v1"), s("networkpolicies")));
        assert_eq!(loc("/apis/networking.k8s.io/"), (s("networking.k8s.io"), None, None));
        assert_eq!(loc("/version/"), (None, None, None));
    }
}
