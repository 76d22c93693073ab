//! Kubernetes objects that matter to networking, normalised for the oracle.
//!
//! `load` parses manifests (multi-document YAML, JSON, `List` kinds), given as file names and
//! texts, into a [`Cluster`]; every validation error names the file, the document and the field.
//! Finding and reading the files is the caller's business.

mod dom;
mod error;
mod family;
mod field;
mod json;
mod load;
mod raw;
mod schema;
mod selector;
mod spec;
mod typed_reference;
mod types;
mod yaml;

pub use error::{InputError, InputErrors};
pub use family::{IpFamilies, IpFamily};
pub use load::{parse_files, parse_files_with, parse_str, yaml_error_message};
pub use schema::Validation;
pub use selector::{LabelSelector, Operator, Requirement};
pub use spec::{PodKey, PodSpec};
pub use typed_reference::serde_json_typed_items;
pub use types::*;

/// For examples/load_speed.rs only: reads `text` with the YAML fast path into the tape alone
/// (no objects built), and returns how many nodes it read, `None` where it steps aside.
#[doc(hidden)]
pub fn yaml_fast_path_nodes(text: &str) -> Option<usize> {
    let mut fast = yaml::Fast::new(text);
    let mut document = dom::Dom::new(text);
    let mut nodes = 0;
    while fast.next_document(&mut document).ok()? {
        nodes += document.nodes.len();
    }
    Some(nodes)
}
