//! Cases users write in YAML (`netmatrix run --cases FILE`), validated before anything runs:
//! every error names the file and the field (`cases[1].steps[0].probe.ports[2]`).
//!
//! ```yaml
//! cases:
//!   - id: mine/frontend-only          # suite/case, matched by --focus and --skip
//!     labels: {type: custom}
//!     requires: [sctp]                # sctp, hairpin, dns, admin-policies: skipped with the reason where unmet
//!     steps:
//!       - name: x/a accepts only pods b
//!         actions:
//!           - apply: [ {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, ...} ]
//!           - delete: {kind: NetworkPolicy, namespace: x, name: old}
//!           - setNamespaceLabels: {namespace: "y", labels: {ns: "y", team: blue}}   # quoted: YAML reads a bare y as true
//!           - setPodLabels: {namespace: x, pod: c, labels: {pod: b}}
//!           - recreatePod: {namespace: x, pod: a}
//!           - addHostPods                 # hostNetwork probe pods host/<node> on every node
//!         probe: {ports: [80/TCP, 81/UDP], services: false, check: reach, fixedSourcePort: false}
//! ```
//! The probe pods are the world's (namespaces x, y, z; pods a, b, c); expectations come from
//! the oracle, never from the file.

use std::collections::{BTreeMap, BTreeSet};

use netmatrix_cluster::ObjectKind;
use netmatrix_model::{Labels, PodKey, Protocol};
use netmatrix_results::Check;
use serde::Deserialize;
use serde_json::Value;

use crate::case::{Action, Case, ProbeSpec, Requirement, Step};
use crate::world::World;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cases: Vec<CaseDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseDoc {
    id: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    requires: Vec<RequirementDoc>,
    steps: Vec<StepDoc>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RequirementDoc {
    Sctp,
    Hairpin,
    Dns,
    AdminPolicies,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDoc {
    name: String,
    #[serde(default)]
    actions: Vec<ActionDoc>,
    probe: ProbeDoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
enum ActionDoc {
    Apply(Vec<Value>),
    /// `namespace` is left out for the cluster-scoped admin policy kinds.
    Delete {
        kind: KindDoc,
        #[serde(default)]
        namespace: String,
        name: String,
    },
    SetNamespaceLabels {
        namespace: String,
        labels: Labels,
    },
    SetPodLabels {
        namespace: String,
        pod: String,
        labels: Labels,
    },
    RecreatePod {
        namespace: String,
        pod: String,
    },
    AddHostPods,
}

#[derive(Deserialize, Clone, Copy)]
enum KindDoc {
    NetworkPolicy,
    Service,
    AdminNetworkPolicy,
    BaselineAdminNetworkPolicy,
    ClusterNetworkPolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProbeDoc {
    /// `80/TCP`, `53/UDP`: pod-to-pod ports.
    #[serde(default)]
    ports: Vec<String>,
    #[serde(default)]
    services: bool,
    #[serde(default)]
    check: CheckDoc,
    #[serde(default)]
    fixed_source_port: bool,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum CheckDoc {
    #[default]
    Reach,
    Affinity,
    UdpAfterReplace,
}

/// Parses the cases of `text` (read from `file`) against the pods of `world`.
pub fn parse(file: &str, text: &str, world: &World) -> Result<Vec<Case>, String> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| format!("{file}: not YAML: {}", netmatrix_model::yaml_error_message(&e)))?;
    if !value.is_object() {
        let what = if value.is_null() { "empty document" } else { "not a mapping" };
        return Err(format!("{file}: {what} (want a list of cases: `cases: [...]`)"));
    }
    let doc: File = serde_path_to_error::deserialize(value).map_err(|e| match e.path().to_string().as_str() {
        // "." is the document itself.
        "." => format!("{file}: {}", e.inner()),
        path => format!("{file}: {path}: {}", e.inner()),
    })?;
    let mut ids = BTreeSet::new();
    doc.cases
        .into_iter()
        .enumerate()
        .map(|(c, case)| {
            let at = |field: String| format!("{file}: cases[{c}].{field}");
            if !case.id.contains('/') || case.id.starts_with('/') || case.id.ends_with('/') {
                return Err(format!("{}: {:?} must be suite/case", at("id".into()), case.id));
            }
            if !ids.insert(case.id.clone()) {
                return Err(format!("{}: {:?} is the id of an earlier case", at("id".into()), case.id));
            }
            if case.steps.is_empty() {
                return Err(format!("{}: a case needs at least one step", at("steps".into())));
            }
            let steps = case
                .steps
                .into_iter()
                .enumerate()
                .map(|(s, step)| parse_step(step, world, &|field| at(format!("steps[{s}].{field}"))))
                .collect::<Result<_, _>>()?;
            let requires = case.requires.into_iter().map(|r| match r {
                RequirementDoc::Sctp => Requirement::Sctp,
                RequirementDoc::Hairpin => Requirement::Hairpin,
                RequirementDoc::Dns => Requirement::Dns,
                RequirementDoc::AdminPolicies => Requirement::AdminPolicies,
            });
            Ok(Case { id: case.id, labels: case.labels, requires: requires.collect(), steps })
        })
        .collect()
}

fn parse_step(step: StepDoc, world: &World, at: &dyn Fn(String) -> String) -> Result<Step, String> {
    let pod = |field: String, namespace: &str, pod: &str| {
        world
            .pod(&PodKey::new(namespace, pod))
            .map(|_| ())
            .ok_or_else(|| format!("{}: {namespace}/{pod} is not a probe pod (namespaces x, y, z; pods a, b, c)", at(field)))
    };
    let mut actions = Vec::new();
    for (a, action) in step.actions.into_iter().enumerate() {
        let field = |name: &str| format!("actions[{a}].{name}");
        actions.push(match action {
            ActionDoc::Apply(manifests) => {
                let stream: String = manifests.iter().map(|m| format!("---\n{m}\n")).collect();
                if let Some(m) = manifests.iter().find(|m| ObjectKind::of(m).is_none()) {
                    return Err(format!(
                        "{}: kind {} cannot be applied (NetworkPolicy, Service, AdminNetworkPolicy, BaselineAdminNetworkPolicy or ClusterNetworkPolicy)",
                        at(field("apply")),
                        m["kind"]
                    ));
                }
                // The model's validation names the document and the field of a bad manifest.
                netmatrix_model::parse_str(&at(field("apply")), &stream).map_err(|e| e.to_string())?;
                Action::Apply(manifests)
            }
            ActionDoc::Delete { kind, namespace, name } => {
                let kind = match kind {
                    KindDoc::NetworkPolicy => ObjectKind::NetworkPolicy,
                    KindDoc::Service => ObjectKind::Service,
                    KindDoc::AdminNetworkPolicy => ObjectKind::AdminNetworkPolicy,
                    KindDoc::BaselineAdminNetworkPolicy => ObjectKind::BaselineAdminNetworkPolicy,
                    KindDoc::ClusterNetworkPolicy => ObjectKind::ClusterNetworkPolicy,
                };
                Action::Delete { kind, namespace, name }
            }
            ActionDoc::SetNamespaceLabels { namespace, labels } => {
                if !world.namespaces.iter().any(|(n, _)| *n == namespace) {
                    return Err(format!("{}: {namespace:?} is not a probe namespace (x, y, z)", at(field("setNamespaceLabels.namespace"))));
                }
                Action::SetNamespaceLabels { namespace, labels }
            }
            ActionDoc::SetPodLabels { namespace, pod: name, labels } => {
                pod(field("setPodLabels"), &namespace, &name)?;
                Action::SetPodLabels { pod: PodKey::new(namespace, name), labels }
            }
            ActionDoc::RecreatePod { namespace, pod: name } => {
                pod(field("recreatePod"), &namespace, &name)?;
                Action::RecreatePod(PodKey::new(namespace, name))
            }
            ActionDoc::AddHostPods => Action::AddHostPods,
        });
    }
    let ports = step
        .probe
        .ports
        .iter()
        .enumerate()
        .map(|(i, text)| parse_port(text).map_err(|e| format!("{}: {e}", at(format!("probe.ports[{i}]")))))
        .collect::<Result<Vec<_>, _>>()?;
    if ports.is_empty() && !step.probe.services {
        return Err(format!("{}: nothing to probe: give ports, or services: true", at("probe".into())));
    }
    let check = match step.probe.check {
        CheckDoc::Reach => Check::Reach,
        CheckDoc::Affinity => Check::Affinity,
        CheckDoc::UdpAfterReplace => Check::UdpAfterReplace,
    };
    let probe = ProbeSpec { pods: !ports.is_empty(), ports, services: step.probe.services, check, fixed_source_port: step.probe.fixed_source_port };
    Ok(Step::new(step.name, actions, probe))
}

/// `80/TCP`, `53/udp`.
fn parse_port(text: &str) -> Result<(u16, Protocol), String> {
    let (port, protocol) = text.split_once('/').ok_or_else(|| format!("{text:?}: write PORT/PROTOCOL, e.g. 80/TCP"))?;
    let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("{text:?}: {port:?} is not a port (1-65535)"))?;
    let protocol = Protocol::parse(&protocol.to_ascii_uppercase()).ok_or_else(|| format!("{text:?}: {protocol:?} is not TCP, UDP or SCTP"))?;
    Ok((port, protocol))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        crate::suites::world(&crate::world::node_names(3), false)
    }

    const GOOD: &str = r#"
cases:
  - id: mine/b-only
    labels: {type: custom}
    requires: [sctp]
    steps:
      - name: x/a accepts only pods b
        actions:
          - apply:
              - apiVersion: networking.k8s.io/v1
                kind: NetworkPolicy
                metadata: {name: b-only, namespace: x}
                spec: {podSelector: {matchLabels: {pod: a}}, ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]}
        probe: {ports: [80/TCP, 81/udp]}
      - name: relabelled and replaced
        actions:
          - setPodLabels: {namespace: x, pod: c, labels: {pod: b}}
          - setNamespaceLabels: {namespace: "y", labels: {ns: "y", team: blue}}   # quoted: YAML reads a bare y as true
          - recreatePod: {namespace: x, pod: a}
          - delete: {kind: NetworkPolicy, namespace: x, name: b-only}
          - addHostPods
        probe: {ports: [80/TCP], services: true, check: affinity, fixedSourcePort: true}
"#;

    #[test]
    fn a_good_file_becomes_cases() {
        let cases = parse("c.yaml", GOOD, &world()).unwrap();
        assert_eq!(cases.len(), 1);
        let c = &cases[0];
        assert_eq!((c.id.as_str(), c.labels["type"].as_str(), c.requires.as_slice()), ("mine/b-only", "custom", &[Requirement::Sctp][..]));
        assert_eq!(c.steps[0].probe.ports, [(80, Protocol::Tcp), (81, Protocol::Udp)]);
        assert!(matches!(&c.steps[0].actions[0], Action::Apply(m) if m.len() == 1));
        assert_eq!(c.steps[1].actions.len(), 5);
        assert!(matches!(c.steps[1].actions[4], Action::AddHostPods));
        assert!(c.steps[1].probe.services && c.steps[1].probe.fixed_source_port && c.steps[1].probe.check == Check::Affinity);
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let cases = [
            (GOOD.replace("81/udp", "81/icmp"), "c.yaml: cases[0].steps[0].probe.ports[1]: \"81/icmp\": \"icmp\" is not TCP, UDP or SCTP"),
            (GOOD.replace("id: mine/b-only", "id: nosuite"), "c.yaml: cases[0].id: \"nosuite\" must be suite/case"),
            (GOOD.replace("pod: c, labels", "pod: q, labels"), "c.yaml: cases[0].steps[1].actions[0].setPodLabels: x/q is not a probe pod"),
            (GOOD.replace("requires: [sctp]", "requires: [ipvs]"), "c.yaml: cases[0].requires[0]: unknown variant `ipvs`"),
            (
                GOOD.replace("labels: {type: custom}", "lables: {type: custom}"),
                "c.yaml: cases[0].lables: unknown field `lables`, expected one of `id`, `labels`",
            ),
            (GOOD.replace("podSelector: {matchLabels: {pod: a}}", "podSelector: {matchLabels: {pod: [a]}}"), "c.yaml: cases[0].steps[0].actions[0].apply"),
            (GOOD.replace("probe: {ports: [80/TCP, 81/udp]}", "probe: {}"), "c.yaml: cases[0].steps[0].probe: nothing to probe"),
            (String::new(), "c.yaml: empty document (want a list of cases: `cases: [...]`)"),
            ("# only a comment\n".to_owned(), "c.yaml: empty document"),
            ("cases: []\ncases: []\n".to_owned(), "c.yaml: not YAML: line 2 column 1: duplicate key cases"),
            ("[1, 2]\n".to_owned(), "c.yaml: not a mapping (want a list of cases: `cases: [...]`)"),
            ("{}\n".to_owned(), "c.yaml: missing field `cases`"),
        ];
        for (text, message) in cases {
            let err = parse("c.yaml", &text, &world()).err().unwrap_or_else(|| panic!("accepted: {message}"));
            assert!(err.starts_with(message) || err.contains(message), "{err}\n  wanted: {message}");
        }
    }

    #[test]
    fn ids_are_unique() {
        let twice = format!("{GOOD}{}", GOOD.replace("cases:\n", ""));
        assert!(parse("c.yaml", &twice, &world()).unwrap_err().contains("cases[1].id: \"mine/b-only\" is the id of an earlier case"));
    }
}
