//! All integration tests of the `netmatrix` binary, built into one test binary.

mod admin;
mod analyze;
mod churn;
mod docs;
mod image;
mod lab;
mod peer_suite;
mod report;
mod run;
mod services;
mod shards;
mod sonobuoy;
