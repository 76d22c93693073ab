//! Names of everything a lab creates. All start with `nm-<lab>-` (DESIGN.md), so leftovers are
//! found by prefix and nothing else is ever touched.

/// Interface names are at most 15 bytes: `nm-` + lab + `-v` + four-digit pod id must fit.
pub const MAX_LAB_NAME: usize = 6;
pub const DEFAULT_LAB: &str = "lab";

pub fn validate(lab: &str) -> Result<(), String> {
    if lab.is_empty() || lab.len() > MAX_LAB_NAME || !lab.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return Err(format!(
            "lab name {lab:?}: use 1 to {MAX_LAB_NAME} lower-case letters or digits (names of links derive from it and are limited to 15 bytes)"
        ));
    }
    Ok(())
}

pub fn prefix(lab: &str) -> String {
    format!("nm-{lab}-")
}

pub fn router(lab: &str) -> String {
    format!("nm-{lab}-router")
}

pub fn node(lab: &str, index: usize) -> String {
    format!("nm-{lab}-n{index}")
}

pub fn pod(lab: &str, id: u32) -> String {
    format!("nm-{lab}-p{id}")
}

/// The router's end of node `index`'s uplink.
pub fn router_link(lab: &str, index: usize) -> String {
    format!("nm-{lab}-r{index}")
}

/// The node's end of its uplink.
pub fn uplink(lab: &str, index: usize) -> String {
    format!("nm-{lab}-u{index}")
}

pub fn bridge(lab: &str) -> String {
    format!("nm-{lab}-br")
}

/// The node's end of a pod's veth.
pub fn pod_link(lab: &str, id: u32) -> String {
    format!("nm-{lab}-v{id}")
}

/// The pod's end before it moves into the pod namespace and becomes `eth0`.
pub fn pod_link_peer(lab: &str, id: u32) -> String {
    format!("nm-{lab}-w{id}")
}

pub fn nft_table(lab: &str) -> String {
    format!("nm-{lab}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_names_fit_an_interface_name() {
        let lab = "abcdef";
        validate(lab).unwrap();
        assert!(pod_link(lab, 9999).len() <= 15);
        assert!(validate("abcdefg").is_err() && validate("Lab").is_err() && validate("").is_err());
        assert!(router(lab).starts_with(&prefix(lab)) && pod(lab, 1).starts_with(&prefix(lab)));
    }
}
