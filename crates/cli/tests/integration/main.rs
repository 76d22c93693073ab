//! All integration tests of the `netmatrix` binary, built into one test binary.

mod analyze;
mod peer_suite;
