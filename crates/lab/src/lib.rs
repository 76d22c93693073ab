//! The local lab: nodes and pods as network namespaces on one host, a reference dataplane in
//! nftables rendered from the model.

mod delayed;
mod fault;
mod lab;
mod lock;
pub mod names;
pub mod netns;
pub mod nft;
mod process;
pub mod topology;

pub use fault::{Fault, FaultKind};
pub use lab::{Lab, LabError, PodState};
pub use process::KeptAgent;
