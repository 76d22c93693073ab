//! The probe batch schema `netmatrix.probe/v1` (documented in crates/agent/README.md), defined
//! once: the requests the agent reads and the result lines it writes, for the agent and for
//! the backends that send it batches. std only: the agent is a small static binary.

pub mod json;

mod fields;
mod object;
mod request;
mod result;

pub use fields::{Protocol, Target, format_duration, parse_duration};
pub use request::{MAX_TRIES, ProbeRequest, batch_to_json, parse_batch};
pub use result::{Outcome, ProbeResult, parse_results};

/// The `v` of batch input and of result lines.
pub const SCHEMA_VERSION: u64 = 1;
