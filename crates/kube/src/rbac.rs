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
    p("delete", "", "namespaces", ""),
    p("create", "", "pods", ""),
    p("list", "", "pods", ""),
    p("watch", "", "pods", ""),
    p("patch", "", "pods", ""),
    p("delete", "", "pods", ""),
    // Websocket exec is a GET that newer API servers also authorise as create.
    p("create", "", "pods", "exec"),
    p("get", "", "pods", "exec"),
    p("create", "", "services", ""),
    p("patch", "", "services", ""),
    p("list", "", "services", ""),
    p("delete", "", "services", ""),
    p("list", "", "nodes", ""),
    p("list", "", "events", ""),
    p("list", "discovery.k8s.io", "endpointslices", ""),
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
