//! The permissions a run needs, checked with SelfSubjectAccessReviews before anything is
//! created (deploy/rbac.yaml grants exactly these, each rule with why).

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use kube::Client;
use kube::api::{Api, PostParams};

use crate::error::KubeError;

/// One permission: verb on group/resource[/subresource], cluster-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
}

const fn p(verb: &'static str, group: &'static str, resource: &'static str, subresource: &'static str) -> Permission {
    Permission { verb, group, resource, subresource }
}

/// What every run needs.
pub const NEEDED: &[Permission] = &[
    p("create", "", "namespaces", ""),
    p("patch", "", "namespaces", ""),
    p("list", "", "namespaces", ""),
    p("watch", "", "namespaces", ""),
    p("delete", "", "namespaces", ""),
    p("create", "", "pods", ""),
    p("get", "", "pods", ""),
    p("list", "", "pods", ""),
    p("watch", "", "pods", ""),
    p("patch", "", "pods", ""),
    p("delete", "", "pods", ""),
    // Websocket exec is a GET that newer API servers also authorise as create.
    p("create", "", "pods", "exec"),
    p("get", "", "pods", "exec"),
    p("create", "", "services", ""),
    p("get", "", "services", ""),
    p("patch", "", "services", ""),
    p("list", "", "services", ""),
    p("delete", "", "services", ""),
    p("list", "", "nodes", ""),
    // A fresh namespace takes pods once its default ServiceAccount exists.
    p("list", "", "serviceaccounts", ""),
    p("watch", "", "serviceaccounts", ""),
    p("list", "", "events", ""),
    p("list", "discovery.k8s.io", "endpointslices", ""),
    p("watch", "discovery.k8s.io", "endpointslices", ""),
    p("create", "networking.k8s.io", "networkpolicies", ""),
    p("patch", "networking.k8s.io", "networkpolicies", ""),
    p("list", "networking.k8s.io", "networkpolicies", ""),
    p("delete", "networking.k8s.io", "networkpolicies", ""),
];

/// What runs need where the admin policy CRDs exist.
pub fn admin_policy_permissions(resource: &'static str) -> [Permission; 4] {
    ["create", "patch", "list", "delete"].map(|verb| p(verb, "policy.networking.k8s.io", resource, ""))
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() { "core" } else { self.group };
        let sub = if self.subresource.is_empty() { String::new() } else { format!("/{}", self.subresource) };
        write!(f, "{} {}{} ({})", self.verb, self.resource, sub, group)
    }
}

/// Asks the API server about each permission; every one missing is listed.
pub async fn check(client: &Client, needed: &[Permission]) -> Result<(), KubeError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for permission in needed {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(permission.verb.into()),
                    group: Some(permission.group.into()),
                    resource: Some(permission.resource.into()),
                    subresource: (!permission.subresource.is_empty()).then(|| permission.subresource.into()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer = api.create(&PostParams::default(), &review).await.map_err(KubeError::api("asking the API server for the run's permissions"))?;
        if !answer.status.is_some_and(|s| s.allowed) {
            missing.push(permission.to_string());
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(KubeError::Forbidden(missing)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// deploy/rbac.yaml grants every permission a run checks for.
    #[test]
    fn the_shipped_cluster_role_grants_what_runs_need() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/rbac.yaml")).unwrap();
        let role: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let rules = role["rules"].as_array().unwrap();
        let grants = |p: &Permission| {
            let resource = if p.subresource.is_empty() { p.resource.to_owned() } else { format!("{}/{}", p.resource, p.subresource) };
            let has = |list: &serde_json::Value, item: &str| list.as_array().unwrap().iter().any(|v| v == item);
            rules.iter().any(|r| has(&r["apiGroups"], p.group) && has(&r["resources"], &resource) && has(&r["verbs"], p.verb))
        };
        let admin = ["adminnetworkpolicies", "baselineadminnetworkpolicies", "clusternetworkpolicies"].into_iter().flat_map(admin_policy_permissions);
        let missing: Vec<String> = NEEDED.iter().copied().chain(admin).filter(|p| !grants(p)).map(|p| p.to_string()).collect();
        assert!(missing.is_empty(), "deploy/rbac.yaml lacks {missing:?}");
    }
}
