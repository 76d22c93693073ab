//! NetworkPolicy, AdminNetworkPolicy and ClusterNetworkPolicy semantics to expected verdicts, with explanations. Pure: no I/O.

pub mod admin;
pub mod connlist;
pub mod explain;
pub mod matching;
pub mod ports;
pub mod ranges;
pub mod reach;
pub mod services;

pub use matching::{Endpoint, Options};
pub use ports::{ConnId, ConnSet, ConnTable, PortSet};
pub use reach::Reachability;
pub use services::{Frontend, FrontendKind, ServiceOptions, ServiceVerdict, Verdict, evaluate, frontends};
