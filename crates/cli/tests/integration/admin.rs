//! `netmatrix analyze` with AdminNetworkPolicy, BaselineAdminNetworkPolicy and
//! ClusterNetworkPolicy: the connlist, explanations of the tier walk, warnings and errors.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Namespaces web (tier=web) and db (tier=db). An ANP passes web -> db to the lower tiers and
/// denies TCP 5432 from anywhere else; db/store has a NetworkPolicy for TCP 5432 and 9000 from
/// web; db/cache has none, so the BANP decides for it (it denies web). A second ANP of the same
/// priority and a named port no pod has give two warnings.
const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: web, labels: {tier: web}}
---
apiVersion: v1
kind: Namespace
metadata: {name: db, labels: {tier: db}}
---
apiVersion: v1
kind: Pod
metadata: {name: front, namespace: web, labels: {app: front}}
---
apiVersion: v1
kind: Pod
metadata: {name: store, namespace: db, labels: {app: store}}
spec: {containers: [{ports: [{name: pg, containerPort: 5432}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: cache, namespace: db, labels: {app: cache}}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: db-guard}
spec:
  priority: 10
  subject: {namespaces: {matchLabels: {tier: db}}}
  ingress:
  - name: web-to-lower-tiers
    action: Pass
    from: [{namespaces: {matchLabels: {tier: web}}}]
  - name: no-pg-from-others
    action: Deny
    from: [{namespaces: {}}]
    ports: [{namedPort: pg}, {namedPort: postgres}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: db-audit}
spec:
  priority: 10
  subject: {pods: {namespaceSelector: {matchLabels: {tier: db}}, podSelector: {matchLabels: {app: store}}}}
  egress:
  - {action: Allow, to: [{networks: [192.0.2.0/24]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: store, namespace: db}
spec:
  podSelector: {matchLabels: {app: store}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {tier: web}}}], ports: [{port: 5432}, {port: 9000}]}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress:
  - {name: no-web, action: Deny, from: [{namespaces: {matchLabels: {tier: web}}}]}
"#;

/// A directory of its own per test (tests run in parallel) holding `admin.yaml`.
fn input(test: &str, manifests: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netmatrix-admin-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("admin.yaml"), manifests).unwrap();
    dir
}

fn netmatrix(test: &str, manifests: &str, args: &[&str]) -> Output {
    let dir = input(test, manifests);
    // Run inside the directory so that file names in messages are relative and stable.
    let out =
        Command::new(env!("CARGO_BIN_EXE_netmatrix")).current_dir(&dir).args(["analyze", "-f", "admin.yaml"]).args(args).output().expect("running netmatrix");
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

fn ok_stdout(test: &str, args: &[&str]) -> String {
    let out = netmatrix(test, MANIFESTS, args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn admin_connlist() {
    insta::assert_snapshot!("admin_connlist", ok_stdout("connlist", &[]));
}

#[test]
fn admin_explain_tier_walks() {
    insta::assert_snapshot!("admin_explain_pass_np", ok_stdout("pass-np", &["--explain", "web/front", "db/store"]));
    insta::assert_snapshot!("admin_explain_pass_banp", ok_stdout("pass-banp", &["--explain", "web/front", "db/cache", "80/TCP"]));
    insta::assert_snapshot!("admin_explain_deny_json", ok_stdout("deny-json", &["--explain", "db/cache", "db/store", "5432/TCP", "-o", "json"]));
}

#[test]
fn admin_warnings_go_to_stderr() {
    let out = netmatrix("warnings", MANIFESTS, &[]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        warnings,
        [
            "warning: admin.yaml: document 6: AdminNetworkPolicy db-audit and AdminNetworkPolicy db-guard have the same priority 10 and select the same pods: which applies first is up to the implementation (netmatrix takes them by name)",
            "warning: admin.yaml: document 6: AdminNetworkPolicy db-guard ingress rule 1 (\"no-pg-from-others\"): named port \"postgres\" is no container port of any destination pod: the rule matches no port there",
        ]
    );
}

#[test]
fn invalid_admin_policy_is_rejected_with_its_location() {
    let bad = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: cnp}\nspec:\n  tier: Middle\n  priority: 1\n  subject: {namespaces: {}}\n  egress: [{action: Allow, to: [{namespaces: {}}]}]\n";
    let out = netmatrix("invalid", bad, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "error: admin.yaml: document 1 (ClusterNetworkPolicy cnp): field spec.tier: \"Middle\" is not a tier (want Admin or Baseline)",
            "error: admin.yaml: document 1 (ClusterNetworkPolicy cnp): field spec.egress[0].action: \"Allow\" is not an action here (want Accept, Deny or Pass)",
        ]
    );
}

#[test]
fn networkpolicy_is_not_explained_where_the_admin_tier_decided() {
    // db-guard denies TCP 5432 from db itself: the NetworkPolicy of db/store is never asked.
    let text = ok_stdout("not-consulted", &["--explain", "db/cache", "db/store", "5432/TCP"]);
    assert!(text.contains("  isolated by: db/store (not consulted: the admin tier decided)\n"), "{text}");
    assert!(!text.contains("no rule of these policies allows it"), "{text}");
    // Where Pass hands the port over, the NetworkPolicy lines stay.
    let text = ok_stdout("consulted", &["--explain", "web/front", "db/store", "5432/TCP"]);
    assert!(text.contains("  isolated by: db/store\n") && text.contains("allowed by db/store ingress rule 0"), "{text}");
}
