use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::IpFamily;
use crate::dom::{self, Build, Dom, OwnedDom, V};
use crate::error::{InputError, InputErrors};
use crate::field::Path;
use crate::json;
use crate::raw;
use crate::schema::{self, Validation};
use crate::selector::{LabelSelector, Operator, Requirement};
use crate::types::*;
use crate::yaml;

/// Loads manifests read from files: (file name, text) pairs, JSON when the name ends in
/// `.json`, else YAML. All problems are reported together; nothing partial is returned.
/// Fields the API does not define are errors ([`Validation::Strict`]).
pub fn parse_files(files: &[(String, String)]) -> Result<Cluster, InputErrors> {
    parse_files_with(files, Validation::default())
}

/// [`parse_files`], with `validation` saying what fields the API does not define are.
pub fn parse_files_with(files: &[(String, String)], validation: Validation) -> Result<Cluster, InputErrors> {
    let mut loader = Loader { validation, ..Loader::default() };
    for (file, text) in files {
        loader.add_file(file, text, is_json(file));
    }
    loader.finish()
}

/// Loads manifests from a string, as if read from a file named `file`, with strict validation.
pub fn parse_str(file: &str, text: &str) -> Result<Cluster, InputErrors> {
    let mut loader = Loader::default();
    loader.add_file(file, text, is_json(file));
    loader.finish()
}

fn is_json(file: &str) -> bool {
    file.ends_with(".json")
}

/// The limits of each document of a stream (documents are parsed one at a time, each budget
/// resets). serde-saphyr's default budget stops at 250,000 nodes, less than a `List` dump of a
/// large cluster: limits that grow with the input's own length still stop amplification (alias
/// and anchor limits stay at their defaults). The text is in memory already: no reader cap.
fn yaml_budget(input_len: usize) -> serde_saphyr::Budget {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = input_len.max(250_000);
    budget.max_events = input_len.saturating_mul(2).max(1_000_000);
    budget.max_total_scalar_bytes = input_len.max(64 << 20);
    budget.max_reader_input_bytes = None;
    budget
}

/// A YAML error of text parsed with serde-saphyr's default options, in the user's terms (line,
/// column and what is wrong), for other YAML files of netmatrix.
pub fn yaml_error_message(e: &serde_saphyr::Error) -> String {
    yaml_message(e, &serde_saphyr::Budget::default(), 0)
}

/// A YAML error in the user's terms: where, and what is wrong with the text, without the
/// parser's snippet (labelled `<input>`) and configuration hints. Lines are counted from
/// `lines_before` (the text parsed started there).
fn yaml_message(e: &serde_saphyr::Error, budget: &serde_saphyr::Budget, lines_before: usize) -> String {
    use serde_saphyr::budget::BudgetBreach;
    let e = e.without_snippet();
    let location = e.location().filter(|l| l.line() > 0);
    let at = location.map(|l| format!("line {} column {}: ", l.line() as usize + lines_before, l.column())).unwrap_or_default();
    let what = match e {
        serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => format!("duplicate key {key}"),
        serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => "duplicate key".to_owned(),
        serde_saphyr::Error::Budget { breach, .. } => {
            let limit = match breach {
                BudgetBreach::Depth { .. } => format!("{} levels of nesting", budget.max_depth),
                BudgetBreach::Nodes { .. } => format!("{} values", budget.max_nodes),
                BudgetBreach::Documents { .. } => format!("{} documents", budget.max_documents),
                BudgetBreach::Events { .. } => format!("{} parser events", budget.max_events),
                BudgetBreach::ScalarBytes { .. } => format!("{} bytes of text", budget.max_total_scalar_bytes),
                BudgetBreach::Aliases { .. } | BudgetBreach::AliasAnchorRatio { .. } => format!("{} aliases", budget.max_aliases),
                BudgetBreach::Anchors { .. } => format!("{} anchors", budget.max_anchors),
                BudgetBreach::MergeKeys { .. } => format!("{} merge keys", budget.max_merge_keys),
                _ => "the parser's".to_owned(),
            };
            format!("the document is too large or too deeply nested (limit: {limit})")
        }
        other => {
            // The plain rendering ends with the location again: "unclosed bracket '[' at line 1, column 4".
            let text = other.to_string();
            let suffix = location.map(|l| format!(" at line {}, column {}", l.line(), l.column())).unwrap_or_default();
            text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
        }
    };
    format!("{at}{what}")
}

fn file_error(file: &str, message: String) -> InputError {
    InputError { file: file.to_owned(), document: None, object: None, field: None, message }
}

#[derive(Default)]
struct Loader {
    validation: Validation,
    errors: Vec<InputError>,
    warnings: Vec<String>,
    // Labels as pairs: a BTreeMap costs about 500 bytes even for one label, many times a small
    // Namespace document's text (issue 20: 640k of them).
    namespaces: BTreeMap<String, Vec<(String, String)>>,
    referenced_namespaces: BTreeSet<String>,
    /// Sorted at the end; a later duplicate replaces an earlier one, as `kubectl apply` would.
    pods: Vec<Pod>,
    /// Where each pod's key (a hash of namespace, workload kind and name) is in `pods`: a
    /// duplicate is found without keeping a copy of every key.
    pod_at: HashMap<u64, usize>,
    // Keyed by (namespace, name) so that a later duplicate replaces an earlier one, as `kubectl apply` would.
    policies: BTreeMap<(String, String), NetworkPolicy>,
    admin_policies: BTreeMap<(AdminPolicyKind, String), AdminPolicy>,
    services: BTreeMap<(String, String), Service>,
    nodes: BTreeMap<String, Node>,
    endpoint_slices: BTreeMap<(String, String), EndpointSlice>,
}

/// Where we are while validating one object: builds located errors. What names the object
/// is spelt out only for an error or a warning.
struct Ctx<'a> {
    origin: &'a Origin,
    object: ObjectName<'a>,
    /// Where the object is inside its document (`items[3].` inside a List).
    prefix: Prefix,
    errors: &'a mut Vec<InputError>,
}

impl Ctx<'_> {
    fn error(&mut self, field: impl fmt::Display, message: impl Into<String>) {
        self.errors.push(InputError {
            file: self.origin.file.to_string(),
            document: Some(self.origin.document),
            object: Some(self.object.to_string()),
            field: Some(format!("{}{field}", self.prefix)),
            message: message.into(),
        });
    }
}

/// `Kind namespace/name`, or `Kind name` for cluster-scoped kinds.
#[derive(Clone, Copy)]
struct ObjectName<'a> {
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
}

impl<'a> ObjectName<'a> {
    fn of(kind: &'a str, value: V<'a, '_>) -> Self {
        let meta = value.get("metadata");
        let name = meta.and_then(|m| m.get_str("name")).unwrap_or("<unnamed>");
        let namespace = (!cluster_scoped(kind)).then(|| meta.and_then(|m| m.get_str("namespace")).unwrap_or("default"));
        ObjectName { kind, namespace, name }
    }
}

impl fmt::Display for ObjectName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// The path of an object inside its document: nothing, or its index in a List's `items`.
#[derive(Clone, Copy)]
struct Prefix(Option<usize>);

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(i) => write!(f, "items[{i}]."),
            None => Ok(()),
        }
    }
}

impl Loader {
    fn add_file(&mut self, file: &str, text: &str, json: bool) {
        let file_name: Arc<str> = file.into();
        let origin = |index: usize| Origin { file: file_name.clone(), document: index + 1 };
        if text.len() > dom::MAX_INPUT {
            self.errors.push(file_error(file, format!("too large to read ({} bytes, at most {})", text.len(), dom::MAX_INPUT)));
            return;
        }
        if json {
            let mut document = Dom::new(text);
            if json::read(&mut document).is_ok() {
                self.add_document(origin(0), &document);
                return;
            }
            document.clear();
            let mut de = serde_json::Deserializer::from_str(text);
            match serde::de::DeserializeSeed::deserialize(Build(&mut document), &mut de).and_then(|()| de.end()) {
                Ok(()) => self.add_document(origin(0), &document),
                Err(e) => self.errors.push(file_error(file, format!("not valid JSON: {e}"))),
            }
            return;
        }
        let errors_before = self.errors.len();
        // One document at a time, each dropped once added: a stream of many documents never
        // exists as parsed values all at once. The fast path reads what manifests are usually
        // made of; from the first document it does not read, serde-saphyr reads the rest.
        let mut fast = yaml::Fast::new(text);
        let mut document = Dom::new(text);
        let mut index = 0;
        loop {
            let start = fast.position();
            match fast.next_document(&mut document) {
                Ok(true) => {
                    self.add_document(origin(index), &document);
                    index += 1;
                }
                Ok(false) => break,
                Err(yaml::Unsupported) => {
                    self.add_yaml(&file_name, text, start, index);
                    break;
                }
            }
        }
        explain_booleans(&mut self.errors[errors_before..], text);
    }

    /// The documents of `text` from byte `start` (a line's start), the first of them document
    /// `index + 1`, read with serde-saphyr.
    fn add_yaml(&mut self, file: &Arc<str>, text: &str, start: usize, index: usize) {
        let budget = yaml_budget(text.len());
        let options = serde_saphyr::options! { budget: Some(budget.clone()) };
        let lines_before = text[..start].bytes().filter(|&b| b == b'\n').count();
        let mut reader = &text.as_bytes()[start..];
        // Empty documents are not counted: document N is the N-th non-empty one.
        for (i, document) in serde_saphyr::read_with_options::<_, OwnedDom>(&mut reader, options).enumerate() {
            match document {
                Ok(OwnedDom(document)) => self.add_document(Origin { file: file.clone(), document: index + i + 1 }, &document),
                Err(e) => {
                    self.errors.push(file_error(file, format!("not valid YAML: {}", yaml_message(&e, &budget, lines_before))));
                    break;
                }
            }
        }
    }

    fn add_document(&mut self, origin: Origin, document: &Dom) {
        let Some(value) = document.root() else { return };
        let (Some(kind), Some(api_version)) = (value.get_str("kind"), value.get_str("apiVersion")) else {
            self.warnings.push(format!("{origin}: not a Kubernetes object (no apiVersion and kind), skipped"));
            return;
        };
        if !kind.ends_with("List") {
            self.add_object(&origin, Prefix(None), kind, Some(api_version), value);
            return;
        }
        match value.get("items") {
            Some(items) if items.is_seq() => {
                // Items of a typed list (`PodList`) usually omit their kind.
                let list_item_kind = kind.strip_suffix("List").unwrap_or_default();
                // A typed list's items are of its API version; a `List`'s items name their own.
                let list_api_version = (!list_item_kind.is_empty()).then_some(api_version);
                for (i, item) in items.items().enumerate() {
                    let item_kind = item.get_str("kind").unwrap_or(list_item_kind);
                    let item_api_version = item.get_str("apiVersion").or(list_api_version);
                    self.add_object(&origin, Prefix(Some(i)), item_kind, item_api_version, item);
                }
            }
            None => {}
            Some(items) if items.is_null() => {}
            Some(_) => self.errors.push(InputError {
                file: origin.file.to_string(),
                document: Some(origin.document),
                object: Some(kind.to_owned()),
                field: Some("items".into()),
                message: "must be a list".into(),
            }),
        }
    }

    fn add_object(&mut self, origin: &Origin, prefix: Prefix, kind: &str, api_version: Option<&str>, value: V) {
        let mut ctx = Ctx { origin, object: ObjectName::of(kind, value), prefix, errors: &mut self.errors };
        match KINDS.iter().find(|(known, _)| *known == kind) {
            Some((_, want)) => {
                if let Some(got) = api_version.filter(|got| got != want) {
                    ctx.error("apiVersion", format!("{got:?} is not an API version of {kind} (want {want})"));
                    return;
                }
            }
            None => {
                // The API server knows kinds by their exact name: `networkpolicy` is none.
                if let Some((known, _)) = KINDS.iter().find(|(known, _)| known.eq_ignore_ascii_case(kind)) {
                    ctx.error("kind", format!("unknown kind {kind:?} (did you mean {known}?)"));
                }
                // Other kinds (ConfigMap, Ingress, RBAC, ...) carry nothing this model needs.
                return;
            }
        }
        if let Some(shape) = schema::of_kind(kind).filter(|_| self.validation != Validation::Ignore) {
            for unknown in schema::unknown_fields(value, shape) {
                let message = match unknown.suggestion {
                    Some(name) => format!("unknown field (did you mean {name}?)"),
                    None => "unknown field".to_owned(),
                };
                if self.validation == Validation::Strict {
                    ctx.error(&unknown.path, message);
                } else {
                    self.warnings.push(format!("{}: {}: {}{}: {message}", ctx.origin, ctx.object, ctx.prefix, unknown.path));
                }
            }
        }
        check_names(&mut ctx, kind, value);
        if let Some(kind) = AdminPolicyKind::parse(kind) {
            if let Some(p) = typed::<raw::AdminPolicy>(&mut ctx, value)
                && let Some(p) = convert_admin_policy(&mut ctx, kind, p)
                && self.admin_policies.insert((p.kind, p.name.clone()), p).is_some()
            {
                self.warnings.push(format!("{}: {} defined again; the later definition is used", ctx.origin, ctx.object));
            }
            return;
        }
        match kind {
            "Namespace" => {
                if let Some(ns) = typed::<raw::Namespace>(&mut ctx, value)
                    && let Some(name) = required_name(&mut ctx, &ns.metadata)
                {
                    self.namespaces.insert(name, ns.metadata.labels.unwrap_or_default().into_iter().collect());
                }
            }
            "Pod" => {
                if let Some(pod) = typed::<raw::Pod>(&mut ctx, value)
                    && let Some(pod) = convert_pod(&mut ctx, pod)
                {
                    self.add_pod(pod);
                }
            }
            "Deployment" | "ReplicaSet" | "ReplicationController" | "StatefulSet" | "DaemonSet" | "Job" => {
                if let Some(w) = typed::<raw::Workload>(&mut ctx, value)
                    && let Some(pod) = convert_workload(&mut ctx, kind, w.metadata, w.spec.template, "spec.template")
                {
                    self.add_pod(pod);
                }
            }
            "CronJob" => {
                if let Some(c) = typed::<raw::CronJob>(&mut ctx, value) {
                    let template = c.spec.job_template.spec.template;
                    if let Some(pod) = convert_workload(&mut ctx, kind, c.metadata, template, "spec.jobTemplate.spec.template") {
                        self.add_pod(pod);
                    }
                }
            }
            "Service" => {
                let mut warnings = Vec::new();
                if let Some(s) = typed::<raw::Service>(&mut ctx, value)
                    && let Some(s) = convert_service(&mut ctx, s, &mut warnings)
                {
                    self.warnings.extend(warnings);
                    reference(&mut self.referenced_namespaces, &s.namespace);
                    self.services.insert((s.namespace.clone(), s.name.clone()), s);
                }
            }
            "Node" => {
                if let Some(n) = typed::<raw::Node>(&mut ctx, value)
                    && let Some(node) = convert_node(&mut ctx, n)
                    && let Some(old) = self.nodes.insert(node.name.clone(), node)
                {
                    self.warnings.push(format!("{}: Node {} defined again; the later definition is used", old.origin, old.name));
                }
            }
            "EndpointSlice" => {
                if let Some(e) = typed::<raw::EndpointSlice>(&mut ctx, value) {
                    let mut warnings = Vec::new();
                    if let Some(slice) = convert_endpoint_slice(&mut ctx, e, &mut warnings) {
                        reference(&mut self.referenced_namespaces, &slice.namespace);
                        self.endpoint_slices.insert((slice.namespace.clone(), slice.name.clone()), slice);
                    }
                    self.warnings.extend(warnings);
                }
            }
            "NetworkPolicy" => {
                if let Some(p) = typed::<raw::NetworkPolicy>(&mut ctx, value) {
                    let mut warnings = Vec::new();
                    if let Some(p) = convert_policy(&mut ctx, p, &mut warnings) {
                        self.warnings.extend(warnings);
                        reference(&mut self.referenced_namespaces, &p.namespace);
                        let key = (p.namespace.clone(), p.name.clone());
                        if self.policies.insert(key, p).is_some() {
                            self.warnings.push(format!("{}: {} defined again; the later definition is used", ctx.origin, ctx.object));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn add_pod(&mut self, pod: Pod) {
        reference(&mut self.referenced_namespaces, &pod.namespace);
        let hash = self.pod_at.hasher().hash_one(pod_key(&pod));
        let same = match self.pod_at.get(&hash) {
            Some(&at) if pod_key(&self.pods[at]) == pod_key(&pod) => Some(at),
            // Another key of the same hash: rare enough to search for.
            Some(_) => self.pods.iter().position(|p| pod_key(p) == pod_key(&pod)),
            None => None,
        };
        match same {
            Some(at) => {
                let old = std::mem::replace(&mut self.pods[at], pod);
                self.warnings.push(format!("{}: {}/{} defined again; the later definition is used", old.origin, old.namespace, old.name));
            }
            None => {
                self.pod_at.insert(hash, self.pods.len());
                self.pods.push(pod);
            }
        }
    }

    fn finish(self) -> Result<Cluster, InputErrors> {
        if !self.errors.is_empty() {
            return Err(InputErrors(self.errors));
        }
        let mut namespaces = self.namespaces;
        for name in self.referenced_namespaces {
            namespaces.entry(name).or_default();
        }
        let namespaces = namespaces.into_iter().map(|(name, labels)| Namespace::new(name, labels.into_iter().collect())).collect();
        let cluster = Cluster {
            namespaces,
            pods: {
                let mut pods = self.pods;
                pods.sort_unstable_by(|a, b| pod_key(a).cmp(&pod_key(b)));
                pods
            },
            policies: self.policies.into_values().collect(),
            admin_policies: {
                let mut admin: Vec<AdminPolicy> = self.admin_policies.into_values().collect();
                admin.sort_by(|a, b| (a.tier, a.priority, &a.name, a.kind).cmp(&(b.tier, b.priority, &b.name, b.kind)));
                admin
            },
            services: self.services.into_values().collect(),
            nodes: self.nodes.into_values().collect(),
            endpoint_slices: self.endpoint_slices.into_values().collect(),
            warnings: self.warnings,
        };
        let errors = service_family_errors(&cluster);
        if errors.is_empty() { Ok(cluster) } else { Err(InputErrors(errors)) }
    }
}

/// Adds `namespace` to `namespaces`, copied only when new.
fn reference(namespaces: &mut BTreeSet<String>, namespace: &str) {
    if !namespaces.contains(namespace) {
        namespaces.insert(namespace.to_owned());
    }
}

/// What identifies a pod: a later one of the same key replaces it.
fn pod_key(p: &Pod) -> (&str, &str, &str) {
    (&p.namespace, &p.workload.kind, &p.name)
}

/// Services the cluster cannot give their families, where the input says which families the
/// cluster has (its pods' and nodes' addresses): RequireDualStack on a single-stack cluster, a
/// family it lacks. Without addresses nothing is known, and nothing is refused here; the lab
/// and the API server refuse such a Service when it is applied.
fn service_family_errors(cluster: &Cluster) -> Vec<InputError> {
    let families = cluster.families_primary_first();
    if families.is_empty() {
        return Vec::new();
    }
    let refused = cluster.services.iter().filter_map(|s| s.families(&families).err().map(|why| (s, why)));
    refused
        .map(|(s, why)| InputError {
            file: s.origin.file.to_string(),
            document: Some(s.origin.document),
            object: Some(format!("Service {}/{}", s.namespace, s.name)),
            field: Some(if s.ip_families.first().is_some_and(|f| !families.contains(f)) { "spec.ipFamilies[0]" } else { "spec.ipFamilyPolicy" }.into()),
            message: why,
        })
        .collect()
}

/// The kinds the model reads and the API version each is served at.
const KINDS: [(&str, &str); 16] = [
    ("Namespace", "v1"),
    ("Pod", "v1"),
    ("Service", "v1"),
    ("Node", "v1"),
    ("ReplicationController", "v1"),
    ("Deployment", "apps/v1"),
    ("ReplicaSet", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("Job", "batch/v1"),
    ("CronJob", "batch/v1"),
    ("EndpointSlice", "discovery.k8s.io/v1"),
    ("NetworkPolicy", "networking.k8s.io/v1"),
    ("AdminNetworkPolicy", "policy.networking.k8s.io/v1alpha1"),
    ("BaselineAdminNetworkPolicy", "policy.networking.k8s.io/v1alpha1"),
    ("ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2"),
];

/// Namespaces, Nodes and admin policies have no namespace.
fn cluster_scoped(kind: &str) -> bool {
    matches!(kind, "Namespace" | "Node") || AdminPolicyKind::parse(kind).is_some()
}

/// Names, namespaces and labels as the API server validates them (apimachinery's
/// `ValidateObjectMeta`); values of other types are reported when the object is read.
fn check_names(ctx: &mut Ctx, kind: &str, value: V) {
    let meta = value.get("metadata");
    if let Some(name) = meta.and_then(|m| m.get_str("name")).filter(|n| !n.is_empty()) {
        let problem = match kind {
            "Namespace" => label_problem(name).map(str::to_owned),
            // Service names become DNS labels of the cluster domain (RFC 1035).
            "Service" => {
                label_problem(name).or_else(|| (!name.starts_with(|c: char| c.is_ascii_lowercase())).then_some("must start with a letter")).map(str::to_owned)
            }
            _ => subdomain_problem(name),
        };
        if let Some(problem) = problem {
            ctx.error("metadata.name", format!("invalid name {name:?}: {problem}"));
        }
    }
    if let Some(namespace) = meta.and_then(|m| m.get_str("namespace")).filter(|n| !n.is_empty() && !cluster_scoped(kind))
        && let Some(problem) = label_problem(namespace)
    {
        ctx.error("metadata.namespace", format!("invalid namespace {namespace:?}: {problem}"));
    }
    let template = value.get("spec").and_then(|s| s.get("template"));
    let job_template = value.get("spec").and_then(|s| s.get("jobTemplate")).and_then(|j| j.get("spec")).and_then(|s| s.get("template"));
    let label_maps = [
        ("metadata.labels", meta),
        ("spec.template.metadata.labels", template.and_then(|t| t.get("metadata"))),
        ("spec.jobTemplate.spec.template.metadata.labels", job_template.and_then(|t| t.get("metadata"))),
    ];
    for (field, meta) in label_maps {
        if let Some(labels) = meta.and_then(|m| m.get("labels")) {
            labels_of(ctx, field, labels);
        }
    }
    if kind == "Service"
        && let Some(selector) = value.get("spec").and_then(|s| s.get("selector"))
    {
        labels_of(ctx, "spec.selector", selector);
    }
}

/// The labels of a map, checked in key order (as they were when documents were `Value`s);
/// nothing to sort when all are valid, as they nearly always are.
fn labels_of(ctx: &mut Ctx, field: impl Path, labels: V) {
    let valid = |key: &str, value: Option<&str>| label_key_problem(key).is_none() && value.and_then(label_value_problem).is_none();
    if labels.entries().all(|(key, value)| valid(key, value.as_str())) {
        return;
    }
    let mut sorted: Vec<(&str, V)> = labels.entries().collect();
    sorted.sort_by_key(|(key, _)| *key);
    for (key, value) in sorted {
        label(ctx, field, key, value.as_str());
    }
}

/// One label, or one `matchLabels` entry, as `ValidateLabels` checks it.
fn label(ctx: &mut Ctx, field: impl Path, key: &str, value: Option<&str>) {
    if let Some(problem) = label_key_problem(key) {
        ctx.error(field, format!("invalid label key {key:?}: {problem}"));
    }
    if let Some(problem) = value.and_then(label_value_problem) {
        ctx.error(field, format!("invalid value {:?} of label {key}: {problem}", value.unwrap_or_default()));
    }
}

/// What keeps `key` from being a qualified name: an optional DNS subdomain prefix and `/`, then
/// a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit.
fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if name.contains('/') {
        return Some("must be a name with an optional DNS subdomain prefix and '/' (e.g. example.com/name)".to_owned());
    }
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Some("the prefix before '/' must not be empty".to_owned());
        }
        if let Some(problem) = subdomain_problem(prefix) {
            return Some(format!("the prefix before '/' {problem}"));
        }
    }
    match name_problem(name) {
        _ if name.is_empty() => Some("the name must not be empty".to_owned()),
        Some(problem) => Some(format!("the name {problem}")),
        None => None,
    }
}

/// What keeps `value` from being a label value: empty, or a name as in [`label_key_problem`].
fn label_value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() { None } else { name_problem(value) }
}

fn name_problem(name: &str) -> Option<&'static str> {
    if name.len() > 63 {
        Some("must be no more than 63 characters")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        Some("must contain only letters, digits, '-', '_' and '.'")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) || !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("must start and end with a letter or digit")
    } else {
        None
    }
}

/// How serde's message for a boolean where another type was wanted starts: [`explain_booleans`]
/// replaces it when the text spells the value otherwise.
const BOOLEAN_TYPE: &str = "invalid type: boolean";

/// YAML 1.1, as kubectl reads it, takes `y`, `yes`, `on` (and `n`, `no`, `off`) for booleans: a
/// namespace named `y` is `true`. Says so, with the quoted form, using the text as written.
fn explain_booleans(errors: &mut [InputError], text: &str) {
    let is_boolean = |e: &InputError| e.message.starts_with(BOOLEAN_TYPE);
    let documents: BTreeSet<usize> = errors.iter().filter(|e| is_boolean(e)).filter_map(|e| e.document).collect();
    let Some(&last) = documents.last() else { return };
    let options = serde_saphyr::options! { budget: Some(yaml_budget(text.len())), strict_booleans: true };
    let mut reader = text.as_bytes();
    // Only up to the last document concerned, one at a time, as when loading.
    for (index, verbatim) in serde_saphyr::read_with_options::<_, OwnedDom>(&mut reader, options).take(last).enumerate() {
        let Ok(OwnedDom(verbatim)) = verbatim else { return };
        if !documents.contains(&(index + 1)) {
            continue;
        }
        let Some(root) = verbatim.root() else { continue };
        for e in errors.iter_mut().filter(|e| is_boolean(e) && e.document == Some(index + 1)) {
            if let Some(written) = e.field.as_deref().and_then(|field| dom::lookup(root, field)).and_then(|v| v.as_str()) {
                let boolean = e.message.contains("`true`");
                let quoted = serde_json::to_string(written).unwrap_or_default();
                e.message = format!("{written} is read as the boolean {boolean} (YAML 1.1); quote it for the string: {quoted}");
            }
        }
    }
}

fn typed<'d, T: serde::Deserialize<'d>>(ctx: &mut Ctx, value: V<'d, '_>) -> Option<T> {
    match dom::typed::<T>(value) {
        Ok(t) => Some(t),
        Err((path, message)) => {
            ctx.error(&path, message);
            None
        }
    }
}

fn required_name(ctx: &mut Ctx, meta: &raw::ObjectMeta) -> Option<String> {
    match meta.name {
        Some(name) if !name.is_empty() => Some(name.to_owned()),
        _ => {
            ctx.error("metadata.name", "is required");
            None
        }
    }
}

/// Node addresses pods and node ports are reached on: InternalIP (primary) then ExternalIP;
/// host names are no addresses.
fn convert_node(ctx: &mut Ctx, node: raw::Node) -> Option<Node> {
    let name = required_name(ctx, &node.metadata);
    let errors_before = ctx.errors.len();
    let mut addresses: Vec<(usize, IpAddr)> = Vec::new();
    for (i, a) in node.status.addresses.iter().enumerate() {
        let rank = match a.address_type.as_str() {
            "InternalIP" => 0,
            "ExternalIP" => 1,
            _ => continue,
        };
        match a.address.parse::<IpAddr>() {
            Ok(ip) => addresses.push((rank, ip)),
            Err(_) => ctx.error(format!("status.addresses[{i}].address"), format!("{:?} is not an IP address (type {})", a.address, a.address_type)),
        }
    }
    if ctx.errors.len() > errors_before {
        return None;
    }
    // Stable: manifest order within each type.
    addresses.sort_by_key(|(rank, _)| *rank);
    let mut unique: Vec<IpAddr> = Vec::new();
    for (_, ip) in addresses {
        if !unique.contains(&ip) {
            unique.push(ip);
        }
    }
    Some(Node { name: name?, addresses: unique, labels: node.metadata.labels.unwrap_or_default(), origin: ctx.origin.clone() })
}

/// Label naming the Service an EndpointSlice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

fn convert_endpoint_slice(ctx: &mut Ctx, e: raw::EndpointSlice, warnings: &mut Vec<String>) -> Option<EndpointSlice> {
    let name = required_name(ctx, &e.metadata);
    let errors_before = ctx.errors.len();
    match e.address_type.as_deref() {
        Some("IPv4" | "IPv6") => {}
        // FQDN endpoints name hosts, not addresses a dataplane translates to.
        Some("FQDN") => {
            warnings.push(format!("{}: {}: addressType FQDN is not supported, ignored", ctx.origin, ctx.object));
            return None;
        }
        Some(other) => ctx.error("addressType", format!("{other:?} is not an address type (want IPv4, IPv6 or FQDN)")),
        None => ctx.error("addressType", "is required"),
    }
    let mut ports = Vec::new();
    for (i, p) in e.ports.iter().enumerate() {
        let field = "ports".index(i);
        let number = match p.port {
            Some(n) => port_number(ctx, field.field("port"), n),
            None => {
                ctx.error(field.field("port"), "is required (a port without a number serves nothing)");
                None
            }
        };
        let protocol = protocol(ctx, field.field("protocol"), p.protocol.as_deref());
        if let (Some(port), Some(protocol)) = (number, protocol) {
            ports.push(EndpointPort { name: p.name.clone().filter(|n| !n.is_empty()), port, protocol });
        }
    }
    let mut endpoints = Vec::new();
    for (i, ep) in e.endpoints.iter().enumerate() {
        let mut addresses = Vec::new();
        for (j, text) in ep.addresses.iter().enumerate() {
            match text.parse::<IpAddr>() {
                Ok(ip) => addresses.push(ip),
                Err(_) => ctx.error("endpoints".index(i).field("addresses").index(j), format!("{text:?} is not an IP address")),
            }
        }
        let ready = ep.conditions.ready.unwrap_or(true);
        let pod = ep
            .target_ref
            .as_ref()
            .filter(|t| t.kind.as_deref() == Some("Pod"))
            .and_then(|t| Some((t.namespace.clone().unwrap_or_else(|| namespace_of(&e.metadata)), t.name.clone()?)));
        endpoints.push(SliceEndpoint {
            addresses,
            ready,
            serving: ep.conditions.serving.unwrap_or(ready),
            terminating: ep.conditions.terminating.unwrap_or(false),
            node: ep.node_name.clone(),
            pod,
        });
    }
    let service = e.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)).cloned();
    if ctx.errors.len() > errors_before {
        return None;
    }
    let Some(service) = service else {
        warnings.push(format!("{}: {}: no label {SERVICE_NAME_LABEL}, so it belongs to no Service; ignored", ctx.origin, ctx.object));
        return None;
    };
    Some(EndpointSlice { namespace: namespace_of(&e.metadata), name: name?, service, ports, endpoints, origin: ctx.origin.clone() })
}

/// Readiness as the EndpointSlice controller reads it: the `Ready` condition. A pod without
/// conditions (no status in the manifest) stands for a running pod and counts as ready.
fn pod_ready(status: &raw::PodStatus) -> bool {
    match status.conditions.iter().find(|c| c.condition_type == "Ready") {
        Some(ready) => ready.status == "True",
        None => status.phase.is_none_or(|phase| phase == "Running"),
    }
}

fn namespace_of(meta: &raw::ObjectMeta) -> String {
    meta.namespace.filter(|n| !n.is_empty()).unwrap_or("default").to_owned()
}

fn convert_pod(ctx: &mut Ctx, pod: raw::Pod) -> Option<Pod> {
    let name = required_name(ctx, &pod.metadata)?;
    let namespace = namespace_of(&pod.metadata);
    // A pod is reported as its controller (or, without one, its first owner). Mirror pods of
    // static pods are owned by their Node, which is no workload: they stand for themselves.
    let owners: Vec<&raw::OwnerReference> = pod.metadata.owner_references.iter().filter(|o| o.kind != Some("Node")).collect();
    let owner = owners.iter().find(|o| o.controller == Some(true)).or(owners.first());
    let workload = match owner.and_then(|o| o.name.map(|n| (n, o.kind))) {
        // An owner reference without a kind is malformed; netpol-analyzer reports such pods as `[Pod]`.
        Some((owner_name, kind)) => WorkloadRef { namespace: namespace.clone(), name: owner_name.to_owned(), kind: kind.unwrap_or("Pod").to_owned() },
        None => WorkloadRef { namespace: namespace.clone(), name: name.clone(), kind: "Pod".into() },
    };
    let ports = container_ports(ctx, &pod.spec, "spec");
    let mut ips = Vec::new();
    let candidates = pod.status.pod_ips.iter().enumerate().map(|(i, ip)| (Some(i), ip.ip));
    for (index, text) in candidates.chain(pod.status.pod_ip.map(|ip| (None, ip))) {
        match text.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) => {
                let message = format!("{text:?} is not an IP address");
                match index {
                    Some(i) => ctx.error("status.podIPs".index(i).field("ip"), message),
                    None => ctx.error("status.podIP", message),
                }
            }
        }
    }
    Some(Pod {
        namespace,
        name,
        workload,
        labels: pod.metadata.labels.unwrap_or_default(),
        ips,
        ports: ports?,
        host_network: pod.spec.host_network,
        node: pod.spec.node_name,
        ready: pod_ready(&pod.status),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        origin: ctx.origin.clone(),
    })
}

fn convert_workload(ctx: &mut Ctx, kind: &str, meta: raw::ObjectMeta, template: raw::PodTemplate, template_path: &str) -> Option<Pod> {
    let name = required_name(ctx, &meta)?;
    let namespace = namespace_of(&meta);
    let ports = container_ports(ctx, &template.spec, template_path.field("spec"))?;
    Some(Pod {
        workload: WorkloadRef { namespace: namespace.clone(), name: name.clone(), kind: kind.to_owned() },
        namespace,
        name,
        labels: template.metadata.labels.unwrap_or_default(),
        ips: Vec::new(),
        ports,
        host_network: template.spec.host_network,
        node: template.spec.node_name,
        // A template stands for the workload's running pods.
        ready: true,
        terminating: false,
        origin: ctx.origin.clone(),
    })
}

fn container_ports(ctx: &mut Ctx, spec: &raw::PodSpec, path: impl Path) -> Option<Vec<ContainerPort>> {
    let mut ports = Vec::new();
    let mut ok = true;
    let containers = path.field("containers");
    for (c, container) in spec.containers.iter().enumerate() {
        let container_path = containers.index(c);
        let container_ports = container_path.field("ports");
        for (p, port) in container.ports.iter().enumerate() {
            let field = container_ports.index(p);
            let number = match port.container_port {
                Some(n) => port_number(ctx, field.field("containerPort"), n),
                None => {
                    ctx.error(field.field("containerPort"), "is required");
                    None
                }
            };
            let protocol = protocol(ctx, field.field("protocol"), port.protocol);
            let name_ok = port.name.is_none_or(|n| port_name(ctx, field.field("name"), n));
            match (number, protocol, name_ok) {
                (Some(port_number), Some(protocol), true) => ports.push(ContainerPort { name: port.name.map(str::to_owned), port: port_number, protocol }),
                _ => ok = false,
            }
        }
    }
    ok.then_some(ports)
}

fn port_number(ctx: &mut Ctx, field: impl Path, n: i64) -> Option<u16> {
    match u16::try_from(n) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            ctx.error(field, format!("{n} is not a port number (1-65535)"));
            None
        }
    }
}

fn protocol(ctx: &mut Ctx, field: impl Path, p: Option<&str>) -> Option<Protocol> {
    match p {
        // "If not specified, this field defaults to TCP." (NetworkPolicyPort, ContainerPort)
        None => Some(Protocol::Tcp),
        Some(p) => Protocol::parse(p).or_else(|| {
            ctx.error(field, format!("unsupported protocol {p:?} (want TCP, UDP or SCTP)"));
            None
        }),
    }
}

/// A port name must be an IANA_SVC_NAME: at most 15 lower-case letters, digits and hyphens,
/// with at least one letter and no leading, trailing or doubled hyphen.
fn port_name(ctx: &mut Ctx, field: impl Path, name: &str) -> bool {
    let problem = if name.len() > 15 {
        Some("must be no more than 15 characters")
    } else if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        Some("must contain only lower-case letters, digits and '-'")
    } else if !name.chars().any(|c| c.is_ascii_lowercase()) {
        Some("must contain at least one letter")
    } else if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        Some("must not begin or end with '-' or contain '--'")
    } else {
        None
    };
    if let Some(problem) = problem {
        ctx.error(field, format!("invalid port name {name:?}: {problem}"));
    }
    problem.is_none()
}

fn convert_service(ctx: &mut Ctx, s: raw::Service, warnings: &mut Vec<String>) -> Option<Service> {
    let name = required_name(ctx, &s.metadata);
    let spec = s.spec;
    let errors_before = ctx.errors.len();
    // Type-dependent checks are skipped when the type itself is invalid (one error, not a cascade).
    let service_type = match spec.service_type.as_deref() {
        None | Some("") => Some(ServiceType::ClusterIp),
        Some(t) => ServiceType::parse(t).or_else(|| {
            ctx.error("spec.type", format!("{t:?} is not a Service type (want ClusterIP, NodePort, LoadBalancer or ExternalName)"));
            None
        }),
    };
    let Addresses { cluster_ips, headless, ip_families, policy: ip_family_policy } = addresses(ctx, &spec, service_type);
    let external_name = match (service_type, spec.external_name.as_deref()) {
        (Some(ServiceType::ExternalName), None | Some("")) => {
            ctx.error("spec.externalName", "is required for type ExternalName");
            None
        }
        // "may have a trailing dot to denote it as fully qualified" (API validation).
        (Some(ServiceType::ExternalName), Some(n)) => {
            let bare = n.strip_suffix('.').unwrap_or(n);
            dns_subdomain(ctx, "spec.externalName", bare).then(|| bare.to_owned())
        }
        // Ignored by every other type.
        _ => None,
    };
    let ports = service_ports(ctx, &spec.ports, service_type);
    let unnamed: Vec<String> = spec
        .ports
        .iter()
        .enumerate()
        .filter(|(_, p)| p.name.as_deref().unwrap_or_default().is_empty())
        .map(|(i, _)| format!("{}spec.ports[{i}]", ctx.prefix))
        .collect();
    if spec.ports.len() > 1 && !unnamed.is_empty() {
        // The API server would refuse this; tools such as netpol-analyzer accept it, and the
        // ports stay distinct by number and protocol.
        warnings.push(format!(
            "{}: {}: {} without a name, which the API requires when a Service has more than one port; accepted",
            ctx.origin,
            ctx.object,
            unnamed.join(", ")
        ));
    }
    let external_traffic_policy = traffic_policy(ctx, "spec.externalTrafficPolicy", spec.external_traffic_policy.as_deref());
    let internal_traffic_policy = traffic_policy(ctx, "spec.internalTrafficPolicy", spec.internal_traffic_policy.as_deref());
    let session_affinity = match spec.session_affinity.as_deref() {
        None | Some("") | Some("None") => SessionAffinity::None,
        Some("ClientIP") => {
            let field = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
            match spec.session_affinity_config.client_ip.timeout_seconds {
                None => SessionAffinity::ClientIp { timeout_seconds: DEFAULT_AFFINITY_TIMEOUT_SECONDS },
                Some(t @ 1..=86_400) => SessionAffinity::ClientIp { timeout_seconds: t as u32 },
                Some(t) => {
                    ctx.error(field, format!("{t} is not in 1-86400 (seconds, at most a day)"));
                    SessionAffinity::None
                }
            }
        }
        Some(other) => {
            ctx.error("spec.sessionAffinity", format!("{other:?} is not a session affinity (want None or ClientIP)"));
            SessionAffinity::None
        }
    };
    let mut external_ips = Vec::new();
    for (i, text) in spec.external_ips.iter().enumerate() {
        match text.parse::<IpAddr>() {
            Ok(ip) => external_ips.push(ip),
            Err(_) => ctx.error(format!("spec.externalIPs[{i}]"), format!("{text:?} is not an IP address")),
        }
    }
    let mut load_balancer_ips = Vec::new();
    for (i, ingress) in s.status.load_balancer.ingress.iter().enumerate() {
        // Some load balancers report only a hostname.
        let Some(text) = ingress.ip.as_deref().filter(|t| !t.is_empty()) else { continue };
        match text.parse::<IpAddr>() {
            Ok(ip) => load_balancer_ips.push(ip),
            Err(_) => ctx.error(format!("status.loadBalancer.ingress[{i}].ip"), format!("{text:?} is not an IP address")),
        }
    }
    if ctx.errors.len() > errors_before {
        return None;
    }
    Some(Service {
        namespace: namespace_of(&s.metadata),
        name: name?,
        service_type: service_type?,
        cluster_ip: cluster_ips.first().copied(),
        cluster_ips,
        ip_families,
        ip_family_policy,
        headless,
        external_name,
        selector: spec.selector.filter(|s| !s.is_empty()),
        ports: ports?,
        external_traffic_policy: external_traffic_policy?,
        internal_traffic_policy: internal_traffic_policy?,
        session_affinity,
        load_balancer_ips,
        external_ips,
        publish_not_ready_addresses: spec.publish_not_ready_addresses,
        traffic_distribution: spec.traffic_distribution.filter(|t| !t.is_empty()),
        origin: ctx.origin.clone(),
    })
}

/// The addresses and families of a Service: `spec.clusterIPs` (or `spec.clusterIP` alone),
/// `spec.ipFamilies` (else the families of the addresses) and `spec.ipFamilyPolicy`, checked as
/// the API server checks them; and whether the Service is headless (`"None"`). An empty
/// address means not allocated yet.
struct Addresses {
    cluster_ips: Vec<IpAddr>,
    headless: bool,
    ip_families: Vec<IpFamily>,
    policy: IpFamilyPolicy,
}

fn addresses(ctx: &mut Ctx, spec: &raw::ServiceSpec, service_type: Option<ServiceType>) -> Addresses {
    let (cluster_ips, headless) = cluster_ips(ctx, spec, service_type);
    let external_name = service_type == Some(ServiceType::ExternalName);
    let policy = match spec.ip_family_policy.as_deref() {
        None | Some("") => None,
        // "This field will be wiped when updating a service to type ExternalName" (ServiceSpec).
        Some(_) if external_name => {
            ctx.error("spec.ipFamilyPolicy", "must not be set for type ExternalName");
            None
        }
        Some(text) => IpFamilyPolicy::parse(text).or_else(|| {
            ctx.error("spec.ipFamilyPolicy", format!("{text:?} is not an IP family policy (want SingleStack, PreferDualStack or RequireDualStack)"));
            None
        }),
    };
    let mut ip_families = Vec::new();
    if external_name && !spec.ip_families.is_empty() {
        ctx.error("spec.ipFamilies", "must not be set for type ExternalName");
    }
    // "This field may hold a maximum of two entries (dual-stack families, in either order)."
    if spec.ip_families.len() > 2 {
        ctx.error("spec.ipFamilies", format!("has {} entries: at most two (IPv4 and IPv6, in either order)", spec.ip_families.len()));
    }
    for (i, text) in spec.ip_families.iter().enumerate().take(2).filter(|_| !external_name) {
        let field = format!("spec.ipFamilies[{i}]");
        match text.as_str() {
            "IPv4" | "IPv6" if ip_families.iter().any(|f: &IpFamily| f.as_str() == text) => ctx.error(&field, format!("{text} is listed twice")),
            "IPv4" => ip_families.push(IpFamily::IPv4),
            "IPv6" => ip_families.push(IpFamily::IPv6),
            _ => ctx.error(&field, format!("{text:?} is not an IP family (want IPv4 or IPv6)")),
        }
    }
    // "These families must correspond to the values of the clusterIPs field, if specified."
    for (i, (ip, family)) in cluster_ips.iter().zip(&ip_families).enumerate() {
        if IpFamily::of(ip) != *family {
            ctx.error(format!("spec.clusterIPs[{i}]"), format!("{ip} is {}, and spec.ipFamilies[{i}] is {}", IpFamily::of(ip).as_str(), family.as_str()));
        }
    }
    if ip_families.is_empty() {
        ip_families = cluster_ips.iter().map(IpFamily::of).collect();
    }
    let families = ip_families.len().max(cluster_ips.len());
    match policy {
        // Since Kubernetes 1.23 two families need the policy said (1.21 and 1.22 defaulted it to RequireDualStack).
        None if families == 2 => {
            ctx.error("spec.ipFamilyPolicy", "is absent, which means SingleStack, and the Service has two families: say PreferDualStack or RequireDualStack")
        }
        Some(IpFamilyPolicy::SingleStack) if families == 2 => ctx.error("spec.ipFamilyPolicy", "SingleStack allows one family, and the Service has two"),
        _ => {}
    }
    Addresses { cluster_ips, headless, ip_families, policy: policy.unwrap_or_default() }
}

/// `spec.clusterIPs`, or `spec.clusterIP` alone (`clusterIPs[0]` must equal it), and whether
/// the Service is headless (`"None"`).
fn cluster_ips(ctx: &mut Ctx, spec: &raw::ServiceSpec, service_type: Option<ServiceType>) -> (Vec<IpAddr>, bool) {
    let single = spec.cluster_ip.as_deref().filter(|t| !t.is_empty());
    if let (Some(single), Some(first)) = (single, spec.cluster_ips.first())
        && single != first
    {
        ctx.error("spec.clusterIPs[0]", format!("{first:?} must equal spec.clusterIP ({single:?})"));
    }
    let (field, text) = match (single, spec.cluster_ips.first().filter(|t| !t.is_empty())) {
        (Some(t), _) => ("spec.clusterIP", t),
        (None, Some(t)) => ("spec.clusterIPs[0]", t.as_str()),
        (None, None) => return (Vec::new(), false),
    };
    if spec.cluster_ips.len() > 2 {
        ctx.error("spec.clusterIPs", format!("has {} entries: at most two, one per family", spec.cluster_ips.len()));
    }
    let primary = match service_type {
        Some(ServiceType::ExternalName) => {
            ctx.error(field, "must not be set for type ExternalName");
            return (Vec::new(), false);
        }
        Some(t) if text == "None" && t != ServiceType::ClusterIp => {
            ctx.error(field, format!("may be \"None\" (headless) only for type ClusterIP, not {t}"));
            return (Vec::new(), true);
        }
        _ if text == "None" => {
            if spec.cluster_ips.len() > 1 {
                ctx.error("spec.clusterIPs[1]", "a headless Service (clusterIP \"None\") has no other clusterIPs");
            }
            return (Vec::new(), true);
        }
        _ => match text.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => {
                ctx.error(field, format!("{text:?} is not an IP address (or \"None\" for a headless Service)"));
                return (Vec::new(), false);
            }
        },
    };
    let mut ips = vec![primary];
    if let Some(text) = spec.cluster_ips.get(1) {
        match text.parse::<IpAddr>() {
            Ok(ip) if IpFamily::of(&ip) == IpFamily::of(&primary) => ctx.error(
                "spec.clusterIPs[1]",
                format!("{ip} is {} like clusterIPs[0]: a dual-stack Service has one address per family", IpFamily::of(&ip).as_str()),
            ),
            Ok(ip) => ips.push(ip),
            Err(_) => ctx.error("spec.clusterIPs[1]", format!("{text:?} is not an IP address")),
        }
    }
    (ips, false)
}

fn service_ports(ctx: &mut Ctx, raw_ports: &[raw::ServicePort], service_type: Option<ServiceType>) -> Option<Vec<ServicePort>> {
    let mut ports: Vec<ServicePort> = Vec::new();
    let mut ok = true;
    for (i, p) in raw_ports.iter().enumerate() {
        let field = "spec.ports".index(i);
        let name = match p.name.as_deref() {
            // Required when there are several ports: only a warning (convert_service).
            None | Some("") => None,
            Some(n) if !dns_label(ctx, field.field("name"), n) => {
                ok = false;
                None
            }
            Some(n) if ports.iter().any(|q| q.name.as_deref() == Some(n)) => {
                ctx.error(field.field("name"), format!("{n:?} is used by an earlier port"));
                ok = false;
                None
            }
            Some(n) => Some(n.to_owned()),
        };
        let port = port_number(ctx, field.field("port"), p.port);
        let protocol = protocol(ctx, field.field("protocol"), p.protocol.as_deref());
        let target_port = match &p.target_port {
            // The API server defaults an absent, zero or empty targetPort to `port`.
            None | Some(raw::IntOrString::Int(0)) => port.map(TargetPort::Number),
            Some(raw::IntOrString::String(n)) if n.is_empty() => port.map(TargetPort::Number),
            Some(raw::IntOrString::Int(n)) => port_number(ctx, field.field("targetPort"), *n).map(TargetPort::Number),
            Some(raw::IntOrString::String(n)) => port_name(ctx, field.field("targetPort"), n).then(|| TargetPort::Name(n.clone())),
        };
        let node_port = match (p.node_port, service_type) {
            // 0 asks the API server to allocate one.
            (None | Some(0), _) => Some(None),
            (Some(_), Some(t)) if !t.has_node_ports() => {
                ctx.error(field.field("nodePort"), format!("may not be used when type is {t}"));
                None
            }
            (Some(n), _) => port_number(ctx, field.field("nodePort"), n).map(Some),
        };
        let (Some(port), Some(protocol), Some(target_port), Some(node_port)) = (port, protocol, target_port, node_port) else {
            ok = false;
            continue;
        };
        if ports.iter().any(|q| (q.port, q.protocol) == (port, protocol)) {
            ctx.error(field.field("port"), format!("{port}/{protocol} is used by an earlier port"));
            ok = false;
        } else if let Some(n) = node_port.filter(|&n| ports.iter().any(|q| (q.node_port, q.protocol) == (Some(n), protocol))) {
            ctx.error(field.field("nodePort"), format!("{n}/{protocol} is used by an earlier port"));
            ok = false;
        }
        ports.push(ServicePort { name, port, protocol, target_port, node_port });
    }
    ok.then_some(ports)
}

fn traffic_policy(ctx: &mut Ctx, field: impl Path, value: Option<&str>) -> Option<TrafficPolicy> {
    match value {
        None | Some("") | Some("Cluster") => Some(TrafficPolicy::Cluster),
        Some("Local") => Some(TrafficPolicy::Local),
        Some(other) => {
            ctx.error(field, format!("{other:?} is not a traffic policy (want Cluster or Local)"));
            None
        }
    }
}

/// An RFC 1123 label (Service port names).
fn dns_label(ctx: &mut Ctx, field: impl Path, name: &str) -> bool {
    let problem = label_problem(name);
    if let Some(problem) = problem {
        ctx.error(field, format!("invalid name {name:?}: {problem}"));
    }
    problem.is_none()
}

/// What keeps `label` from being an RFC 1123 label: 1 to 63 lower-case letters, digits and '-',
/// starting and ending with a letter or digit.
fn label_problem(label: &str) -> Option<&'static str> {
    if label.is_empty() || label.len() > 63 { Some("must be 1 to 63 characters") } else { label_chars_problem(label) }
}

fn label_chars_problem(label: &str) -> Option<&'static str> {
    if !label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        Some("must contain only lower-case letters, digits and '-'")
    } else if label.starts_with('-') || label.ends_with('-') {
        Some("must start and end with a letter or digit")
    } else {
        None
    }
}

/// An RFC 1123 subdomain: at most 253 characters of dot-separated labels (`externalName`).
fn dns_subdomain(ctx: &mut Ctx, field: impl Path, name: &str) -> bool {
    let problem = subdomain_problem(name);
    if let Some(problem) = &problem {
        ctx.error(field, format!("invalid DNS name {name:?}: {problem}"));
    }
    problem.is_none()
}

/// Unlike labels, the parts of a subdomain have no length limit of their own: a pod of a long
/// StatefulSet name is valid (apimachinery's `IsDNS1123Subdomain`).
fn subdomain_problem(name: &str) -> Option<String> {
    if name.len() > 253 {
        Some("must be no more than 253 characters".to_owned())
    } else {
        name.split('.').find_map(|part| {
            let problem = if part.is_empty() { Some("must not be empty") } else { label_chars_problem(part) };
            problem.map(|p| format!("part {part:?} {p}"))
        })
    }
}

fn port_ref(ctx: &mut Ctx, field: impl Path, v: &raw::IntOrString) -> Option<PortRef> {
    match v {
        raw::IntOrString::Int(n) => port_number(ctx, field, *n).map(|p| PortRef::Range { first: p, last: p }),
        raw::IntOrString::String(name) => port_name(ctx, field, name).then(|| PortRef::Named(name.clone())),
    }
}

fn convert_policy(ctx: &mut Ctx, p: raw::NetworkPolicy, warnings: &mut Vec<String>) -> Option<NetworkPolicy> {
    let name = required_name(ctx, &p.metadata);
    let spec = p.spec;
    let errors_before = ctx.errors.len();
    let pod_selector = match &spec.pod_selector {
        Some(s) => selector(ctx, "spec.podSelector", s),
        // Required by the API; a missing one is read as `{}` like netpol-analyzer does.
        None => Some(LabelSelector::default()),
    };
    let mut types_given = (false, false);
    let explicit_types = spec.policy_types.as_ref().filter(|t| !t.is_empty());
    if let Some(types) = explicit_types {
        for (i, t) in types.iter().enumerate() {
            match *t {
                "Ingress" => types_given.0 = true,
                "Egress" => types_given.1 = true,
                other => ctx.error("spec.policyTypes".index(i), format!("{other:?} is not a policy type (want Ingress or Egress)")),
            }
        }
    }
    // "If this field is not specified, it will default based on the existence of ingress or egress
    // rules; policies that contain an egress section are assumed to affect egress, and all policies
    // (whether or not they contain an ingress section) are assumed to affect ingress."
    let (affects_ingress, affects_egress) = match explicit_types {
        Some(_) => types_given,
        None => (true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())),
    };
    let ingress: Vec<Rule> =
        spec.ingress.iter().flatten().enumerate().filter_map(|(i, r)| rule(ctx, "spec.ingress".index(i), "from", &r.from, &r.ports)).collect();
    let egress: Vec<Rule> = spec.egress.iter().flatten().enumerate().filter_map(|(i, r)| rule(ctx, "spec.egress".index(i), "to", &r.to, &r.ports)).collect();
    if ctx.errors.len() > errors_before {
        return None;
    }
    for (direction, affects, count) in [("ingress", affects_ingress, ingress.len()), ("egress", affects_egress, egress.len())] {
        if !affects && count > 0 {
            warnings.push(format!(
                "{}: {}: spec.{direction} rules are ignored: spec.policyTypes does not list {}",
                ctx.origin,
                ctx.object,
                capitalise(direction)
            ));
        }
    }
    Some(NetworkPolicy {
        namespace: namespace_of(&p.metadata),
        name: name?,
        pod_selector: pod_selector?,
        ingress: affects_ingress.then_some(ingress),
        egress: affects_egress.then_some(egress),
        origin: ctx.origin.clone(),
    })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn rule(ctx: &mut Ctx, path: impl Path, peers_field: &str, peers: &[raw::Peer], ports: &[raw::PolicyPort]) -> Option<Rule> {
    let peers: Vec<Option<Peer>> = peers.iter().enumerate().map(|(i, p)| peer(ctx, path.field(peers_field).index(i), p)).collect();
    let ports: Vec<Option<PortSpec>> = ports.iter().enumerate().map(|(i, p)| policy_port(ctx, path.field("ports").index(i), p)).collect();
    Some(Rule { peers: peers.into_iter().collect::<Option<_>>()?, ports: ports.into_iter().collect::<Option<_>>()? })
}

fn peer(ctx: &mut Ctx, path: impl Path, p: &raw::Peer) -> Option<Peer> {
    match (&p.pod_selector, &p.namespace_selector, &p.ip_block) {
        (None, None, None) => {
            ctx.error(path, "must specify podSelector, namespaceSelector or ipBlock");
            None
        }
        (None, None, Some(block)) => ip_block(ctx, path.field("ipBlock"), block).map(Peer::IpBlock),
        (_, _, Some(_)) => {
            ctx.error(path, "ipBlock may not be combined with podSelector or namespaceSelector");
            None
        }
        (pods, namespaces, None) => {
            let pods = pods.as_ref().map(|s| selector(ctx, path.field("podSelector"), s));
            let namespaces = namespaces.as_ref().map(|s| selector(ctx, path.field("namespaceSelector"), s));
            // `Some(None)`: the selector was given but invalid (already reported).
            if matches!(pods, Some(None)) || matches!(namespaces, Some(None)) {
                return None;
            }
            Some(Peer::Pods { pods: pods.flatten(), namespaces: namespaces.flatten() })
        }
    }
}

fn ip_block(ctx: &mut Ctx, path: impl Path, b: &raw::IpBlock) -> Option<IpBlock> {
    let cidr = parse_cidr(ctx, path.field("cidr"), &b.cidr)?;
    let mut except = Vec::new();
    let mut ok = true;
    let excepts = path.field("except");
    for (i, e) in b.except.iter().enumerate() {
        let field = excepts.index(i);
        match parse_cidr(ctx, field, e) {
            // "except ... values will be rejected if they are outside the cidr range"
            Some(net) if cidr.contains(&net) && net.prefix_len() > cidr.prefix_len() => except.push(net),
            Some(net) => {
                ctx.error(field, format!("{net} must be strictly within cidr {cidr}"));
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(IpBlock { cidr, except })
}

fn parse_cidr(ctx: &mut Ctx, field: impl Path, text: &str) -> Option<IpNet> {
    match text.parse::<IpNet>() {
        // Host bits are allowed by the API and ignored, as net.ParseCIDR does.
        Ok(net) => Some(net.trunc()),
        Err(_) => {
            ctx.error(field, format!("{text:?} is not a CIDR (e.g. 10.0.0.0/8 or fd00::/8)"));
            None
        }
    }
}

fn policy_port(ctx: &mut Ctx, path: impl Path, p: &raw::PolicyPort) -> Option<PortSpec> {
    let protocol = protocol(ctx, path.field("protocol"), p.protocol);
    let port = match (&p.port, p.end_port) {
        (None, None) => Some(None),
        (None, Some(_)) => {
            ctx.error(path.field("endPort"), "may only be set together with a numeric port");
            None
        }
        (Some(raw::IntOrString::String(_)), Some(_)) => {
            ctx.error(path.field("endPort"), "may not be used with a named port");
            None
        }
        (Some(v), None) => port_ref(ctx, path.field("port"), v).map(Some),
        (Some(raw::IntOrString::Int(first)), Some(last)) => {
            let first = port_number(ctx, path.field("port"), *first);
            let last = port_number(ctx, path.field("endPort"), last);
            match (first, last) {
                (Some(first), Some(last)) if last >= first => Some(Some(PortRef::Range { first, last })),
                (Some(first), Some(last)) => {
                    ctx.error(path.field("endPort"), format!("{last} must be greater than or equal to port {first}"));
                    None
                }
                _ => None,
            }
        }
    };
    Some(PortSpec { protocol: protocol?, port: port? })
}

fn selector(ctx: &mut Ctx, path: impl Path, s: &raw::LabelSelector) -> Option<LabelSelector> {
    let mut ok = true;
    let mut match_expressions = Vec::new();
    let expressions = path.field("matchExpressions");
    for (i, e) in s.match_expressions.iter().enumerate() {
        let field = expressions.index(i);
        let values = e.values.clone().unwrap_or_default();
        if e.key.is_empty() {
            ctx.error(field.field("key"), "is required");
            ok = false;
        } else if let Some(problem) = label_key_problem(&e.key) {
            ctx.error(field.field("key"), format!("invalid label key {:?}: {problem}", e.key));
            ok = false;
        }
        for (j, v) in values.iter().enumerate() {
            if let Some(problem) = label_value_problem(v) {
                ctx.error(field.field("values").index(j), format!("invalid label value {v:?}: {problem}"));
                ok = false;
            }
        }
        match Operator::parse(&e.operator) {
            None => {
                ctx.error(field.field("operator"), format!("{:?} is not a valid operator (want In, NotIn, Exists or DoesNotExist)", e.operator));
                ok = false;
            }
            Some(op @ (Operator::In | Operator::NotIn)) if values.is_empty() => {
                ctx.error(field.field("values"), format!("must be non-empty when operator is {op:?}"));
                ok = false;
            }
            Some(op @ (Operator::Exists | Operator::DoesNotExist)) if !values.is_empty() => {
                ctx.error(field.field("values"), format!("must be empty when operator is {op:?}"));
                ok = false;
            }
            Some(operator) => match_expressions.push(Requirement { key: e.key.clone(), operator, values }),
        }
    }
    let errors_before = ctx.errors.len();
    for (key, value) in s.match_labels.iter().flatten() {
        label(ctx, path.field("matchLabels"), key, Some(value));
    }
    ok &= ctx.errors.len() == errors_before;
    ok.then(|| LabelSelector { match_labels: s.match_labels.clone().unwrap_or_default(), match_expressions })
}

/// v1alpha1 AdminNetworkPolicy / BaselineAdminNetworkPolicy and v1alpha2 ClusterNetworkPolicy.
fn convert_admin_policy(ctx: &mut Ctx, kind: AdminPolicyKind, p: raw::AdminPolicy) -> Option<AdminPolicy> {
    use AdminPolicyKind::{AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy};
    let name = required_name(ctx, &p.metadata);
    let spec = p.spec;
    let errors_before = ctx.errors.len();
    let tier = match (kind, spec.tier.as_deref()) {
        (AdminNetworkPolicy, _) => Some(Tier::Admin),
        (BaselineAdminNetworkPolicy, _) => Some(Tier::Baseline),
        (ClusterNetworkPolicy, Some("Admin")) => Some(Tier::Admin),
        (ClusterNetworkPolicy, Some("Baseline")) => Some(Tier::Baseline),
        (ClusterNetworkPolicy, None) => {
            ctx.error("spec.tier", "is required (Admin or Baseline)");
            None
        }
        (ClusterNetworkPolicy, Some(other)) => {
            ctx.error("spec.tier", format!("{other:?} is not a tier (want Admin or Baseline)"));
            None
        }
    };
    if kind != ClusterNetworkPolicy && spec.tier.is_some() {
        ctx.error("spec.tier", format!("is a field of ClusterNetworkPolicy, not {kind}"));
    }
    // BANP: "There must be at most 1 BaselineAdminNetworkPolicy ... and its name must be `default`."
    if kind == BaselineAdminNetworkPolicy && name.as_deref().is_some_and(|n| n != "default") {
        ctx.error("metadata.name", "a BaselineAdminNetworkPolicy must be named \"default\"");
    }
    let priority = match (kind, spec.priority) {
        (BaselineAdminNetworkPolicy, None) => Some(0),
        (BaselineAdminNetworkPolicy, Some(_)) => {
            ctx.error("spec.priority", "a BaselineAdminNetworkPolicy has no priority");
            None
        }
        (_, None) => {
            ctx.error("spec.priority", "is required (0 to 1000)");
            None
        }
        (_, Some(n @ 0..=1000)) => Some(n as u32),
        (_, Some(n)) => {
            ctx.error("spec.priority", format!("{n} must be between 0 and 1000"));
            None
        }
    };
    let subject = match &spec.subject {
        Some(s) => admin_peer(ctx, "spec.subject", s, PeerRole::Subject),
        None => {
            ctx.error("spec.subject", "is required");
            None
        }
    };
    let mut rules = |direction: Direction, raw_rules: &[raw::AdminRule]| -> Vec<AdminRule> {
        raw_rules.iter().enumerate().filter_map(|(i, r)| admin_rule(ctx, &format!("spec.{direction}[{i}]"), kind, direction, r)).collect()
    };
    let ingress = rules(Direction::Ingress, &spec.ingress);
    let egress = rules(Direction::Egress, &spec.egress);
    if ctx.errors.len() > errors_before {
        return None;
    }
    Some(AdminPolicy { kind, name: name?, tier: tier?, priority: priority?, subject: subject?, ingress, egress, origin: ctx.origin.clone() })
}

fn admin_rule(ctx: &mut Ctx, path: &str, kind: AdminPolicyKind, direction: Direction, r: &raw::AdminRule) -> Option<AdminRule> {
    use AdminPolicyKind::{AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy};
    let errors_before = ctx.errors.len();
    let action = match (r.action.as_deref(), kind) {
        (Some("Allow"), AdminNetworkPolicy | BaselineAdminNetworkPolicy) | (Some("Accept"), ClusterNetworkPolicy) => Some(AdminAction::Allow),
        (Some("Deny"), _) => Some(AdminAction::Deny),
        // BANP: "Pass" is no action of the baseline (v1alpha1 BaselineAdminNetworkPolicyRuleAction).
        (Some("Pass"), AdminNetworkPolicy | ClusterNetworkPolicy) => Some(AdminAction::Pass),
        (None, _) => {
            ctx.error(format!("{path}.action"), "is required");
            None
        }
        (Some(other), _) => {
            let want = match kind {
                ClusterNetworkPolicy => "Accept, Deny or Pass",
                BaselineAdminNetworkPolicy => "Allow or Deny",
                AdminNetworkPolicy => "Allow, Deny or Pass",
            };
            ctx.error(format!("{path}.action"), format!("{other:?} is not an action here (want {want})"));
            None
        }
    };
    let ((peers_field, raw_peers), (other_field, other_peers)) = match direction {
        Direction::Ingress => (("from", &r.from), ("to", &r.to)),
        Direction::Egress => (("to", &r.to), ("from", &r.from)),
    };
    if other_peers.is_some() {
        ctx.error(format!("{path}.{other_field}"), format!("is not a field of this rule (it has {peers_field})"));
    }
    let peers: Vec<AdminPeer> = match raw_peers.as_deref() {
        // "This field must be defined and contain at least one item."
        None | Some([]) => {
            ctx.error(format!("{path}.{peers_field}"), "must list at least one peer");
            Vec::new()
        }
        Some(list) => {
            list.iter().enumerate().filter_map(|(i, p)| admin_peer(ctx, &format!("{path}.{peers_field}[{i}]"), p, PeerRole::Peer(direction))).collect()
        }
    };
    let ports = match (kind, &r.ports, &r.protocols) {
        (AdminNetworkPolicy | BaselineAdminNetworkPolicy, _, Some(_)) => {
            ctx.error(format!("{path}.protocols"), "is a field of v1alpha2 ClusterNetworkPolicy (v1alpha1 uses ports)");
            Vec::new()
        }
        (ClusterNetworkPolicy, Some(_), _) => {
            ctx.error(format!("{path}.ports"), "is a field of v1alpha1 (ClusterNetworkPolicy uses protocols)");
            Vec::new()
        }
        (AdminNetworkPolicy | BaselineAdminNetworkPolicy, ports, None) => {
            ports.iter().flatten().enumerate().filter_map(|(i, p)| admin_port_v1(ctx, &format!("{path}.ports[{i}]"), p)).collect()
        }
        (ClusterNetworkPolicy, None, protocols) => {
            protocols.iter().flatten().enumerate().filter_map(|(i, p)| admin_protocol_v2(ctx, &format!("{path}.protocols[{i}]"), p)).collect()
        }
    };
    if ctx.errors.len() > errors_before {
        return None;
    }
    Some(AdminRule { name: r.name.clone().unwrap_or_default(), action: action?, peers, ports })
}

/// Where an admin peer stands: only egress peers may name addresses (`nodes`, `networks`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PeerRole {
    Subject,
    Peer(Direction),
}

/// A subject or a rule's peer; exactly one field.
fn admin_peer(ctx: &mut Ctx, path: &str, p: &raw::AdminPeer, role: PeerRole) -> Option<AdminPeer> {
    let addresses_allowed = role == PeerRole::Peer(Direction::Egress);
    let set = [p.namespaces.is_some(), p.pods.is_some(), p.nodes.is_some(), p.networks.is_some()].iter().filter(|s| **s).count();
    if set != 1 {
        let fields = if addresses_allowed { "namespaces, pods, nodes or networks" } else { "namespaces or pods" };
        ctx.error(path, format!("must set exactly one of {fields}"));
        return None;
    }
    if !addresses_allowed && (p.nodes.is_some() || p.networks.is_some()) {
        let field = if p.nodes.is_some() { "nodes" } else { "networks" };
        ctx.error(format!("{path}.{field}"), "is allowed only in egress peers");
        return None;
    }
    if let Some(ns) = &p.namespaces {
        return selector(ctx, &format!("{path}.namespaces"), ns).map(|namespaces| AdminPeer::Pods { namespaces, pods: LabelSelector::default() });
    }
    if let Some(pods) = &p.pods {
        // "if empty, it selects all Namespaces/Pods". podSelector is required by the API; a
        // missing one is read as `{}` like netpol-analyzer does (the upstream conformance
        // manifests omit it).
        let namespaces =
            pods.namespace_selector.as_ref().map_or(Some(LabelSelector::default()), |s| selector(ctx, &format!("{path}.pods.namespaceSelector"), s));
        let selected = pods.pod_selector.as_ref().map_or(Some(LabelSelector::default()), |s| selector(ctx, &format!("{path}.pods.podSelector"), s));
        return Some(AdminPeer::Pods { namespaces: namespaces?, pods: selected? });
    }
    if let Some(nodes) = &p.nodes {
        return selector(ctx, &format!("{path}.nodes"), nodes).map(AdminPeer::Nodes);
    }
    let networks = p.networks.as_deref().unwrap_or_default();
    if networks.is_empty() {
        ctx.error(format!("{path}.networks"), "must list at least one CIDR");
        return None;
    }
    let nets: Vec<Option<IpNet>> = networks.iter().enumerate().map(|(i, n)| parse_cidr(ctx, &format!("{path}.networks[{i}]"), n)).collect();
    nets.into_iter().collect::<Option<Vec<_>>>().map(AdminPeer::Networks)
}

fn admin_port_v1(ctx: &mut Ctx, path: &str, p: &raw::AdminPort) -> Option<AdminPort> {
    let set = [p.port_number.is_some(), p.named_port.is_some(), p.port_range.is_some()].iter().filter(|s| **s).count();
    if set != 1 {
        ctx.error(path, "must set exactly one of portNumber, namedPort or portRange");
        return None;
    }
    if let Some(n) = &p.port_number {
        let protocol = protocol(ctx, &format!("{path}.portNumber.protocol"), n.protocol.as_deref());
        let port = match n.port {
            Some(v) => port_number(ctx, &format!("{path}.portNumber.port"), v),
            None => {
                ctx.error(format!("{path}.portNumber.port"), "is required");
                None
            }
        };
        let port = port?;
        return Some(AdminPort::Range { protocol: protocol?, first: port, last: port });
    }
    if let Some(name) = &p.named_port {
        return port_name(ctx, &format!("{path}.namedPort"), name).then(|| AdminPort::Named(name.clone()));
    }
    let r = p.port_range.as_ref()?;
    let protocol = protocol(ctx, &format!("{path}.portRange.protocol"), r.protocol.as_deref());
    let (first, last) = port_range(ctx, &format!("{path}.portRange"), r)?;
    Some(AdminPort::Range { protocol: protocol?, first, last })
}

fn port_range(ctx: &mut Ctx, path: &str, r: &raw::AdminPortRange) -> Option<(u16, u16)> {
    let mut bound = |field: &str, v: Option<i64>| match v {
        Some(v) => port_number(ctx, &format!("{path}.{field}"), v),
        None => {
            ctx.error(format!("{path}.{field}"), "is required");
            None
        }
    };
    let (first, last) = (bound("start", r.start), bound("end", r.end));
    let (first, last) = (first?, last?);
    // "Start port must be less than End port"
    if first >= last {
        ctx.error(format!("{path}.end"), format!("{last} must be greater than start {first}"));
        return None;
    }
    Some((first, last))
}

fn admin_protocol_v2(ctx: &mut Ctx, path: &str, p: &raw::AdminProtocol) -> Option<AdminPort> {
    let by_protocol = [(Protocol::Tcp, "tcp", &p.tcp), (Protocol::Udp, "udp", &p.udp), (Protocol::Sctp, "sctp", &p.sctp)];
    let set = by_protocol.iter().filter(|(_, _, v)| v.is_some()).count() + usize::from(p.destination_named_port.is_some());
    if set != 1 {
        ctx.error(path, "must set exactly one of tcp, udp, sctp or destinationNamedPort");
        return None;
    }
    if let Some(name) = &p.destination_named_port {
        return port_name(ctx, &format!("{path}.destinationNamedPort"), name).then(|| AdminPort::Named(name.clone()));
    }
    let (protocol, field, ports) = by_protocol.into_iter().find(|(_, _, v)| v.is_some())?;
    let ports = ports.as_ref()?;
    let path = format!("{path}.{field}.destinationPort");
    let Some(dp) = &ports.destination_port else {
        ctx.error(&path, "is required");
        return None;
    };
    match (dp.number, &dp.range) {
        (Some(n), None) => port_number(ctx, &format!("{path}.number"), n).map(|n| AdminPort::Range { protocol, first: n, last: n }),
        (None, Some(r)) => port_range(ctx, &format!("{path}.range"), r).map(|(first, last)| AdminPort::Range { protocol, first, last }),
        _ => {
            ctx.error(&path, "must set exactly one of number or range");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An EndpointSlice of a Service that selects no pod, as `kubectl get -o yaml` prints it.
    const EMPTY_SLICE: &str = r#"
addressType: IPv4
apiVersion: discovery.k8s.io/v1
endpoints: null
kind: EndpointSlice
metadata:
  annotations:
    endpoints.kubernetes.io/last-change-trigger-time: "2026-12-01T10:00:00Z"
  creationTimestamp: "2026-12-01T10:00:00Z"
  generateName: web-
  generation: 1
  labels:
    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
    kubernetes.io/service-name: web
  name: web-x7k2p
  namespace: shop
  ownerReferences:
  - apiVersion: v1
    blockOwnerDeletion: true
    controller: true
    kind: Service
    name: web
    uid: 5f0c1d8e-2b7a-4c1e-9a3d-0e6f4b8a1c2d
  resourceVersion: "4711"
  uid: 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d
ports: null
"#;

    fn parse(text: &str) -> Cluster {
        parse_str("in.yaml", text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// What a case expects of the loaded cluster.
    type Check = fn(&Cluster) -> bool;

    #[test]
    fn null_lists_read_as_empty() {
        let slice = &parse(EMPTY_SLICE).endpoint_slices[0];
        assert_eq!((slice.service.as_str(), slice.ports.len(), slice.endpoints.len()), ("web", 0, 0));
        let cases: [(&str, Check); 5] = [
            (
                "apiVersion: v1\nkind: Pod\nmetadata: {name: p, ownerReferences: null}\nspec: {containers: null}\nstatus: {podIPs: null, conditions: null}\n",
                |c| c.pods[0].ports.is_empty() && c.pods[0].ips.is_empty() && c.pods[0].ready,
            ),
            ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: null, clusterIPs: null}\nstatus: {loadBalancer: {ingress: null}}\n", |c| {
                c.services[0].ports.is_empty() && c.services[0].load_balancer_ips.is_empty()
            }),
            // A rule with null peers and ports matches everything, like one without them.
            (
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\nspec: {podSelector: {matchExpressions: null}, ingress: [{from: null, ports: null}]}\n",
                |c| c.policies[0].ingress.as_deref() == Some(&[Rule { peers: Vec::new(), ports: Vec::new() }][..]),
            ),
            ("apiVersion: v1\nkind: Node\nmetadata: {name: node1}\nstatus: {addresses: null}\n", |c| c.nodes[0].addresses.is_empty()),
            (
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e, labels: {kubernetes.io/service-name: s}}\naddressType: IPv4\nendpoints: [{addresses: null}]\n",
                |c| c.endpoint_slices[0].endpoints[0].addresses.is_empty(),
            ),
        ];
        for (text, check) in cases {
            assert!(check(&parse(text)), "{text}");
        }
    }

    /// An admin policy of `kind` with `rules` as its spec's last lines.
    fn admin_policy(kind: AdminPolicyKind, subject: &str, rules: &str) -> String {
        let (name, spec, version) = match kind {
            AdminPolicyKind::AdminNetworkPolicy => ("a", "priority: 1", "v1alpha1"),
            AdminPolicyKind::BaselineAdminNetworkPolicy => ("default", "", "v1alpha1"),
            AdminPolicyKind::ClusterNetworkPolicy => ("c", "tier: Admin\n  priority: 1", "v1alpha2"),
        };
        format!("apiVersion: policy.networking.k8s.io/{version}\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n  {spec}\n  subject: {subject}\n{rules}")
    }

    #[test]
    fn admin_actions_depend_on_the_kind() {
        use AdminPolicyKind::{AdminNetworkPolicy as Anp, BaselineAdminNetworkPolicy as Banp, ClusterNetworkPolicy as Cnp};
        let cases = [
            (Anp, "Allow", Ok(AdminAction::Allow)),
            (Anp, "Pass", Ok(AdminAction::Pass)),
            (
                Anp,
                "Accept",
                Err("in.yaml: document 1 (AdminNetworkPolicy a): field spec.ingress[0].action: \"Accept\" is not an action here (want Allow, Deny or Pass)"),
            ),
            (Banp, "Deny", Ok(AdminAction::Deny)),
            (
                Banp,
                "Pass",
                Err(
                    "in.yaml: document 1 (BaselineAdminNetworkPolicy default): field spec.ingress[0].action: \"Pass\" is not an action here (want Allow or Deny)",
                ),
            ),
            (Cnp, "Accept", Ok(AdminAction::Allow)),
            (
                Cnp,
                "Allow",
                Err("in.yaml: document 1 (ClusterNetworkPolicy c): field spec.ingress[0].action: \"Allow\" is not an action here (want Accept, Deny or Pass)"),
            ),
        ];
        for (kind, action, want) in cases {
            let text = admin_policy(kind, "{namespaces: {}}", &format!("  ingress: [{{action: {action}, from: [{{namespaces: {{}}}}]}}]\n"));
            let got = parse_str("in.yaml", &text).map(|c| c.admin_policies[0].ingress[0].action).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{kind} {action}");
        }
    }

    #[test]
    fn only_egress_peers_name_addresses() {
        let networks = "{networks: [10.0.0.0/8]}";
        let cases = [
            (admin_policy(AdminPolicyKind::AdminNetworkPolicy, networks, ""), Err("field spec.subject.networks: is allowed only in egress peers")),
            (
                admin_policy(AdminPolicyKind::AdminNetworkPolicy, "{pods: {}}", &format!("  ingress: [{{action: Deny, from: [{networks}]}}]\n")),
                Err("field spec.ingress[0].from[0].networks: is allowed only in egress peers"),
            ),
            (admin_policy(AdminPolicyKind::AdminNetworkPolicy, "{pods: {}}", &format!("  egress: [{{action: Deny, to: [{networks}]}}]\n")), Ok(())),
            (
                admin_policy(AdminPolicyKind::AdminNetworkPolicy, "{pods: {}}", "  egress: [{action: Deny, to: [{}]}]\n"),
                Err("field spec.egress[0].to[0]: must set exactly one of namespaces, pods, nodes or networks"),
            ),
            (admin_policy(AdminPolicyKind::AdminNetworkPolicy, "{}", ""), Err("field spec.subject: must set exactly one of namespaces or pods")),
        ];
        for (text, want) in cases {
            let got = parse_str("in.yaml", &text).map(|_| ()).map_err(|e| e.to_string());
            match want {
                Ok(()) => assert_eq!(got, Ok(()), "{text}"),
                Err(message) => assert!(got.as_ref().is_err_and(|e| e.ends_with(message)), "{text}\n{got:?}"),
            }
        }
    }
}
