//! IP families: of an address (`IPv4`, `IPv6`, as Kubernetes spells `ipFamilies`), and the
//! families a lab or a run gives its pods (`ipv4`, `ipv6`, `dual`).

use std::net::IpAddr;

use crate::Cluster;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum IpFamily {
    IPv4,
    IPv6,
}

impl IpFamily {
    pub const BOTH: [IpFamily; 2] = [IpFamily::IPv4, IpFamily::IPv6];

    pub fn of(ip: &IpAddr) -> IpFamily {
        if ip.is_ipv4() { IpFamily::IPv4 } else { IpFamily::IPv6 }
    }

    /// The family that is not this one.
    pub fn other(self) -> IpFamily {
        match self {
            IpFamily::IPv4 => IpFamily::IPv6,
            IpFamily::IPv6 => IpFamily::IPv4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::IPv4 => "IPv4",
            IpFamily::IPv6 => "IPv6",
        }
    }
}

/// The families of a lab's (or a run's fresh lab's) nodes and pods; `dual` lists IPv4 first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamilies {
    Ipv4,
    Ipv6,
    Dual,
}

impl IpFamilies {
    /// The families, the primary one first (`status.podIPs` order).
    pub fn list(self) -> &'static [IpFamily] {
        match self {
            IpFamilies::Ipv4 => &[IpFamily::IPv4],
            IpFamilies::Ipv6 => &[IpFamily::IPv6],
            IpFamilies::Dual => &IpFamily::BOTH,
        }
    }

    pub fn has(self, family: IpFamily) -> bool {
        self.list().contains(&family)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IpFamilies::Ipv4 => "ipv4",
            IpFamilies::Ipv6 => "ipv6",
            IpFamilies::Dual => "dual",
        }
    }
}

impl std::str::FromStr for IpFamilies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ipv4" => Ok(IpFamilies::Ipv4),
            "ipv6" => Ok(IpFamilies::Ipv6),
            "dual" => Ok(IpFamilies::Dual),
            _ => Err(format!("--ip-family {s:?}: use ipv4, ipv6 or dual")),
        }
    }
}

impl Cluster {
    /// The families of the pods' and nodes' addresses, IPv4 first.
    pub fn families(&self) -> Vec<IpFamily> {
        let ips = self.pods.iter().flat_map(|p| &p.ips).chain(self.nodes.iter().flat_map(|n| &n.addresses));
        let mut families: Vec<IpFamily> = ips.map(IpFamily::of).collect();
        families.sort_unstable();
        families.dedup();
        families
    }

    /// The families of the pods' and nodes' addresses, the primary first: that of the first
    /// address listed (a dual-stack pod lists its primary family's first, `status.podIPs`).
    pub fn families_primary_first(&self) -> Vec<IpFamily> {
        let mut families = self.families();
        let first = self.pods.iter().flat_map(|p| &p.ips).chain(self.nodes.iter().flat_map(|n| &n.addresses)).next();
        if let Some(first) = first {
            families.sort_by_key(|f| *f != IpFamily::of(first));
        }
        families
    }

    /// The cluster as seen by traffic of `family`: pods and nodes keep only their addresses of
    /// that family, so ipBlocks (and `networks`) match a pod by the address its packets carry.
    /// A pod with addresses of the other family only is not there (it sends and serves none of
    /// this family's traffic, and is no endpoint of its Service frontends); pods without
    /// addresses (from manifests without status) stay.
    pub fn of_family(&self, family: IpFamily) -> Cluster {
        let mut view = self.clone();
        view.pods.retain(|p| p.ips.is_empty() || p.ips.iter().any(|ip| IpFamily::of(ip) == family));
        for pod in &mut view.pods {
            pod.ips.retain(|ip| IpFamily::of(ip) == family);
        }
        for node in &mut view.nodes {
            node.addresses.retain(|ip| IpFamily::of(ip) == family);
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_parse_and_list_the_primary_first() {
        assert_eq!("dual".parse::<IpFamilies>().unwrap().list(), [IpFamily::IPv4, IpFamily::IPv6]);
        assert_eq!("ipv6".parse::<IpFamilies>().unwrap().list(), [IpFamily::IPv6]);
        assert!("IPv6".parse::<IpFamilies>().unwrap_err().contains("ipv4, ipv6 or dual"));
        assert_eq!(serde_json::to_string(&IpFamily::IPv6).unwrap(), "\"IPv6\"");
    }

    #[test]
    fn a_family_view_keeps_only_that_familys_addresses() {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nspec: {nodeName: n0, containers: [{name: c}]}\nstatus: {podIPs: [{ip: 10.0.0.1}, {ip: 'fd00::1'}]}\n";
        let cluster = crate::parse_str("t", yaml).unwrap();
        assert_eq!(cluster.families(), IpFamily::BOTH);
        let v6 = cluster.of_family(IpFamily::IPv6);
        assert_eq!(v6.pods[0].ips, ["fd00::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(v6.families(), [IpFamily::IPv6]);
    }
}
