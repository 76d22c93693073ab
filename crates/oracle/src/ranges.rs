//! The address space outside the cluster, cut into the elementary ranges that every ipBlock
//! (cidr and except) either fully contains or fully excludes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fixedbitset::FixedBitSet;
use ipnet::IpNet;
use netmatrix_model::IpBlock;

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpRange {
    pub v6: bool,
    pub first: u128,
    pub last: u128,
}

impl IpRange {
    pub fn first_addr(&self) -> IpAddr {
        to_addr(self.v6, self.first)
    }

    pub fn last_addr(&self) -> IpAddr {
        to_addr(self.v6, self.last)
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        let (v6, n) = from_addr(ip);
        v6 == self.v6 && self.first <= n && n <= self.last
    }

    /// Whether `next` starts right after `self` ends (same family), so the two can merge.
    pub fn adjoins(&self, next: &IpRange) -> bool {
        self.v6 == next.v6 && self.last.checked_add(1) == Some(next.first)
    }
}

impl fmt::Display for IpRange {
    /// The connlist spelling `first-last`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first_addr(), self.last_addr())
    }
}

fn to_addr(v6: bool, n: u128) -> IpAddr {
    if v6 { IpAddr::V6(Ipv6Addr::from(n)) } else { IpAddr::V4(Ipv4Addr::from(n as u32)) }
}

fn from_addr(ip: &IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(*a))),
        IpAddr::V6(a) => (true, u128::from(*a)),
    }
}

fn bounds(net: &IpNet) -> (bool, u128, u128) {
    let (v6, first) = from_addr(&net.network());
    let (_, last) = from_addr(&net.broadcast());
    (v6, first, last)
}

/// The elementary ranges induced by `blocks`. The IPv4 space is always present (traffic to the
/// outside world exists whether or not a policy names it); IPv6 when `ipv6` (the cluster has
/// IPv6 addresses) or some block is IPv6.
pub fn partition<'a>(blocks: impl IntoIterator<Item = &'a IpBlock>, ipv6: bool) -> Vec<IpRange> {
    let mut cuts: [Vec<u128>; 2] = [vec![0], vec![0]];
    let mut has_v6 = ipv6;
    for block in blocks {
        for net in std::iter::once(&block.cidr).chain(&block.except) {
            let (v6, first, last) = bounds(net);
            has_v6 |= v6;
            let family = &mut cuts[usize::from(v6)];
            family.push(first);
            if let Some(next) = last.checked_add(1) {
                family.push(next);
            }
        }
    }
    let mut ranges = Vec::new();
    for (v6, max) in [(false, u128::from(u32::MAX)), (true, u128::MAX)] {
        if v6 && !has_v6 {
            continue;
        }
        let family = &mut cuts[usize::from(v6)];
        family.retain(|&c| c <= max);
        family.sort_unstable();
        family.dedup();
        for (i, &first) in family.iter().enumerate() {
            let last = family.get(i + 1).map_or(max, |next| next - 1);
            ranges.push(IpRange { v6, first, last });
        }
    }
    ranges
}

/// The elementary ranges (indices into `ranges`, which `partition` made from a superset of
/// blocks) that lie inside `block`.
pub fn ranges_in(ranges: &[IpRange], block: &IpBlock) -> FixedBitSet {
    let mut set = FixedBitSet::with_capacity(ranges.len());
    let span = |net: &IpNet| {
        let (v6, first, last) = bounds(net);
        let start = ranges.partition_point(|r| (r.v6, r.first) < (v6, first));
        let end = ranges.partition_point(|r| (r.v6, r.first) <= (v6, last));
        start..end
    };
    set.insert_range(span(&block.cidr));
    for except in &block.except {
        set.remove_range(span(except));
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(cidr: &str, except: &[&str]) -> IpBlock {
        IpBlock { cidr: cidr.parse().unwrap(), except: except.iter().map(|e| e.parse().unwrap()).collect() }
    }

    #[test]
    fn partition_cuts_at_every_cidr_and_except_edge() {
        let b = block("10.0.0.0/8", &["10.1.0.0/16"]);
        let r = partition([&b], false);
        let shown: Vec<String> = r.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["0.0.0.0-9.255.255.255", "10.0.0.0-10.0.255.255", "10.1.0.0-10.1.255.255", "10.2.0.0-10.255.255.255", "11.0.0.0-255.255.255.255"]);
        let inside: Vec<usize> = ranges_in(&r, &b).ones().collect();
        assert_eq!(inside, [1, 3]);
    }

    #[test]
    fn ipv6_appears_only_when_named_or_the_cluster_has_it() {
        assert_eq!(partition([], false).len(), 1);
        assert_eq!(partition([], true).iter().map(ToString::to_string).collect::<Vec<_>>()[1], "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        let b = block("fd00::/8", &[]);
        let r = partition([&b], false);
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(r[0].to_string(), "0.0.0.0-255.255.255.255");
        assert_eq!(r[2].to_string(), "fd00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert_eq!(ranges_in(&r, &b).ones().collect::<Vec<_>>(), [2]);
        assert!(r[1].adjoins(&r[2]) && !r[0].adjoins(&r[1]));
    }

    #[test]
    fn whole_space_block() {
        let b = block("0.0.0.0/0", &["255.255.255.255/32"]);
        let r = partition([&b], false);
        assert_eq!(r.len(), 2);
        assert_eq!(ranges_in(&r, &b).ones().collect::<Vec<_>>(), [0]);
    }
}
