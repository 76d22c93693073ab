//! Which Kubernetes API operations a run exercised: an index of the OpenAPI spec
//! ([`openapi::Index`]), a streaming reader of the API server's audit log that counts each
//! request against its operation, per user agent and per netmatrix case ([`audit::Coverage`]),
//! and the report ([`report::Report`]). No I/O beyond the readers it is given and the spec files.

pub mod audit;
pub mod openapi;
pub mod report;

pub use audit::Coverage;
pub use openapi::{Index, OpenApiError};
pub use report::Report;
