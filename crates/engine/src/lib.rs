//! The engine of `netmatrix run`: scenarios, placement, probing, retries, comparison, diagnosis.
//! It drives any backend through the cluster trait and never knows which one.

pub mod diagnose;
