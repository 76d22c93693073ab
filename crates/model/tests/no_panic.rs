//! Malformed input never panics: random edits of a valid manifest load or fail with located errors.

use netmatrix_model::parse_str;
use proptest::prelude::*;

const VALID: &str = r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a, namespace: x, labels: {app: a}, ownerReferences: [{kind: ReplicaSet, name: rs}]}
  spec: {containers: [{ports: [{name: http, containerPort: 80, protocol: TCP}]}]}
  status: {podIPs: [{ip: 10.0.0.1}]}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: p, namespace: x}
  spec:
    podSelector: {matchExpressions: [{key: app, operator: In, values: [a]}]}
    policyTypes: [Ingress, Egress]
    ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: b}}}], ports: [{port: http}, {port: 80, endPort: 90, protocol: UDP}]}]
    egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]}]
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {selector: {app: a}, ports: [{port: 80, targetPort: http}]}
"#;

/// Tokens that change types and values: numbers where strings go, lists where maps go, ...
const TOKENS: [&str; 12] = ["", "0", "-1", "99999", "[]", "{}", "null", "\"x\"", "10.0.0.0/33", "NotAnOp", "- ", ": "];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn edits_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), 0..TOKENS.len(), 0usize..8), 1..4)) {
        let mut text = VALID.to_owned();
        for (at, token, cut) in edits {
            let mut pos = at.index(text.len());
            while !text.is_char_boundary(pos) { pos -= 1; }
            let end = (pos + cut).min(text.len());
            let end = (end..=text.len()).find(|&e| text.is_char_boundary(e)).unwrap();
            text.replace_range(pos..end, TOKENS[token]);
        }
        match parse_str("fuzz.yaml", &text) {
            Ok(_) => {}
            Err(errors) => {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    prop_assert_eq!(e.file.as_str(), "fuzz.yaml");
                }
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = parse_str("any.yaml", &text);
        let _ = parse_str("any.json", &text);
    }
}
