//! Kubernetes objects that matter to networking, normalised for the oracle.
//!
//! `load` reads manifests (files, directories, multi-document YAML, JSON, `List` kinds) into a
//! [`Cluster`]; every validation error names the file, the document and the field.

mod error;
mod load;
mod raw;
mod selector;
mod spec;
mod types;

pub use error::{InputError, InputErrors};
pub use load::{load_paths, parse_str};
pub use selector::{LabelSelector, Operator, Requirement};
pub use spec::{PodKey, PodSpec};
pub use types::*;
