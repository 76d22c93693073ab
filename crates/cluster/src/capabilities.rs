//! What a backend's dataplane does where Kubernetes leaves it open, each detected with a state
//! and the reason, so a case that needs it is skipped saying why (cilium's scenario requirements).

/// Whether a backend has a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Yes,
    No,
    /// Not detected either way; cases that need it are skipped.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub support: Support,
    /// How the backend knows, e.g. `/proc/net/sctp is absent`.
    pub reason: String,
}

impl Capability {
    pub fn yes(reason: impl Into<String>) -> Capability {
        Capability { support: Support::Yes, reason: reason.into() }
    }

    pub fn no(reason: impl Into<String>) -> Capability {
        Capability { support: Support::No, reason: reason.into() }
    }

    pub fn unknown(reason: impl Into<String>) -> Capability {
        Capability { support: Support::Unknown, reason: reason.into() }
    }

    pub fn is_yes(&self) -> bool {
        self.support == Support::Yes
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// A pod reaches itself through its own Service (kube-proxy's hairpin masquerade).
    pub hairpin: Capability,
    /// The nodes' kernels carry SCTP.
    pub sctp: Capability,
    /// Pods resolve Service names through cluster DNS.
    pub dns: Capability,
    /// AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy are enforced.
    pub admin_policies: Capability,
    /// The probe says which pod answered and can fix its source port (the netmatrix agent does;
    /// agnhost does not): what session affinity and UDP-flow checks need.
    pub answer_identity: Capability,
    /// Pods, nodes and Services have addresses of both families (dual-stack).
    pub dual_stack: Capability,
}

impl Capabilities {
    /// Every capability present, for a given reason (fakes and tests).
    pub fn all(reason: &str) -> Capabilities {
        Capabilities {
            hairpin: Capability::yes(reason),
            sctp: Capability::yes(reason),
            dns: Capability::yes(reason),
            admin_policies: Capability::yes(reason),
            answer_identity: Capability::yes(reason),
            dual_stack: Capability::yes(reason),
        }
    }
}
