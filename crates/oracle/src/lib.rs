//! NetworkPolicy, AdminNetworkPolicy, ClusterNetworkPolicy and Service semantics to expected verdicts, with explanations, under an implementation profile where Kubernetes leaves the outcome open. Pure: no I/O.

pub mod admin;
pub mod connlist;
pub mod explain;
pub mod incremental;
pub mod matching;
pub mod ports;
pub mod profile;
pub mod ranges;
pub mod reach;
pub mod services;

pub use matching::{Endpoint, Options};
pub use ports::{ConnId, ConnSet, ConnTable, PortSet};
pub use profile::Profile;
pub use reach::Reachability;
pub use services::{Frontend, FrontendKind, ServiceVerdict, Verdict, evaluate, frontends};
