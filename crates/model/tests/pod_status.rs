//! Readiness as the API server reports it: a Ready condition decides; without one, a pod with a
//! phase is ready only when Running; a manifest without status is taken as ready.

use netmatrix_model::parse_str;

fn ready(status: &str) -> bool {
    let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: x}}\nspec: {{containers: [{{name: c}}]}}\n{status}");
    parse_str("pod.yaml", &yaml).unwrap().pods[0].ready
}

#[test]
fn readiness_follows_the_status() {
    assert!(ready(""), "a manifest without status");
    assert!(!ready("status: {phase: Pending}"), "bound to a node whose kubelet never started it");
    assert!(ready("status: {phase: Running}"));
    assert!(!ready("status: {phase: Running, conditions: [{type: Ready, status: \"False\"}]}"));
    assert!(ready("status: {phase: Running, conditions: [{type: Ready, status: \"True\"}]}"));
}
