//! The engine of `netmatrix run`: scenarios, placement, probing, retries, comparison, diagnosis.
//! It drives any backend through the cluster trait and never knows which one.

pub mod case;
pub mod cases_file;
pub mod churn;
pub mod clock;
pub mod diagnose;
pub mod features;
pub mod plan;
pub mod probe;
pub mod runner;
pub mod shards;
pub mod suites;
pub mod world;

pub use case::{Action, Case, ProbeSpec, Requirement, Step};
pub use clock::{Clock, ManualClock, SystemClock};
pub use probe::ProbeConfig;
pub use runner::{EngineError, Event, profile, run};
pub use world::World;
