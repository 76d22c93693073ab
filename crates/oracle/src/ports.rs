//! Port interval sets and connection sets (ports per protocol), interned for cheap comparison.

use std::fmt;

use netmatrix_model::Protocol;
use rustc_hash::FxHashMap;

pub const MIN_PORT: u16 = 1;
pub const MAX_PORT: u16 = 65535;

/// A set of ports as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortSet(Vec<(u16, u16)>);

impl PortSet {
    pub fn empty() -> Self {
        Self(Vec::new())
    }

    pub fn full() -> Self {
        Self(vec![(MIN_PORT, MAX_PORT)])
    }

    pub fn range(first: u16, last: u16) -> Self {
        debug_assert!(first <= last);
        Self(vec![(first.max(MIN_PORT), last)])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.0 == [(MIN_PORT, MAX_PORT)]
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(a, b)| a <= port && port <= b)
    }

    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }

    pub fn union(&self, other: &Self) -> Self {
        let mut all: Vec<(u16, u16)> = self.0.iter().chain(&other.0).copied().collect();
        all.sort_unstable();
        let mut out: Vec<(u16, u16)> = Vec::with_capacity(all.len());
        for (a, b) in all {
            match out.last_mut() {
                // Merge overlapping and adjacent ranges so equal sets have one representation.
                Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        Self(out)
    }

    pub fn intersect(&self, other: &Self) -> Self {
        let (mut i, mut j, mut out) = (0, 0, Vec::new());
        while i < self.0.len() && j < other.0.len() {
            let (a1, b1) = self.0[i];
            let (a2, b2) = other.0[j];
            let (a, b) = (a1.max(a2), b1.min(b2));
            if a <= b {
                out.push((a, b));
            }
            if b1 < b2 { i += 1 } else { j += 1 }
        }
        Self(out)
    }

    /// The ports of `self` not in `other`.
    pub fn difference(&self, other: &Self) -> Self {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            let mut start = u32::from(a);
            for &(c, d) in other.0.iter().filter(|&&(c, d)| d >= a && c <= b) {
                if u32::from(c) > start {
                    out.push((start as u16, c - 1));
                }
                start = start.max(u32::from(d) + 1);
            }
            if start <= u32::from(b) {
                out.push((start as u16, b));
            }
        }
        Self(out)
    }
}

impl fmt::Display for PortSet {
    /// `80,8080-8090`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b { write!(f, "{a}")? } else { write!(f, "{a}-{b}")? }
        }
        Ok(())
    }
}

/// Allowed ports per protocol, indexed by `Protocol::index`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnSet(pub [PortSet; 3]);

impl ConnSet {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn all() -> Self {
        Self([PortSet::full(), PortSet::full(), PortSet::full()])
    }

    pub fn single(protocol: Protocol, ports: PortSet) -> Self {
        let mut c = Self::none();
        c.0[protocol.index()] = ports;
        c
    }

    pub fn ports(&self, protocol: Protocol) -> &PortSet {
        &self.0[protocol.index()]
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(PortSet::is_empty)
    }

    pub fn is_all(&self) -> bool {
        self.0.iter().all(PortSet::is_full)
    }

    pub fn allows(&self, protocol: Protocol, port: u16) -> bool {
        self.ports(protocol).contains(port)
    }

    pub fn union(&self, other: &Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i].union(&other.0[i])))
    }

    pub fn intersect(&self, other: &Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i].intersect(&other.0[i])))
    }

    pub fn difference(&self, other: &Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i].difference(&other.0[i])))
    }
}

impl fmt::Display for ConnSet {
    /// The connlist spelling: `All Connections`, `No Connections`, or `SCTP 1-9,TCP 80,UDP 53`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("All Connections");
        }
        if self.is_empty() {
            return f.write_str("No Connections");
        }
        let mut first = true;
        for protocol in Protocol::ALL {
            let ports = self.ports(protocol);
            if !ports.is_empty() {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{protocol} {ports}")?;
            }
        }
        Ok(())
    }
}

/// Index of an interned [`ConnSet`] in a [`ConnTable`].
pub type ConnId = u32;

/// Interns connection sets so that the reachability matrices hold 4-byte ids, and caches the
/// unions and intersections the oracle computes over and over.
#[derive(Debug)]
pub struct ConnTable {
    sets: Vec<ConnSet>,
    ids: FxHashMap<ConnSet, ConnId>,
    unions: FxHashMap<(ConnId, ConnId), ConnId>,
    intersections: FxHashMap<(ConnId, ConnId), ConnId>,
    differences: FxHashMap<(ConnId, ConnId), ConnId>,
}

impl ConnTable {
    pub const NONE: ConnId = 0;
    pub const ALL: ConnId = 1;

    pub fn new() -> Self {
        let mut t = Self {
            sets: Vec::new(),
            ids: FxHashMap::default(),
            unions: FxHashMap::default(),
            intersections: FxHashMap::default(),
            differences: FxHashMap::default(),
        };
        t.intern(ConnSet::none());
        t.intern(ConnSet::all());
        t
    }

    pub fn intern(&mut self, set: ConnSet) -> ConnId {
        if let Some(&id) = self.ids.get(&set) {
            return id;
        }
        let id = ConnId::try_from(self.sets.len()).expect("fewer than 2^32 distinct connection sets");
        self.sets.push(set.clone());
        self.ids.insert(set, id);
        id
    }

    pub fn get(&self, id: ConnId) -> &ConnSet {
        &self.sets[id as usize]
    }

    /// The number of interned sets: ids are `0..len()`.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Never true: `NONE` and `ALL` are always interned.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn union(&mut self, a: ConnId, b: ConnId) -> ConnId {
        if a == b || b == Self::NONE || a == Self::ALL {
            return a;
        }
        if a == Self::NONE || b == Self::ALL {
            return b;
        }
        let key = (a.min(b), a.max(b));
        if let Some(&id) = self.unions.get(&key) {
            return id;
        }
        let set = self.get(a).union(self.get(b));
        let id = self.intern(set);
        self.unions.insert(key, id);
        id
    }

    pub fn intersect(&mut self, a: ConnId, b: ConnId) -> ConnId {
        if a == b || b == Self::ALL || a == Self::NONE {
            return a;
        }
        if a == Self::ALL || b == Self::NONE {
            return b;
        }
        let key = (a.min(b), a.max(b));
        if let Some(&id) = self.intersections.get(&key) {
            return id;
        }
        let set = self.get(a).intersect(self.get(b));
        let id = self.intern(set);
        self.intersections.insert(key, id);
        id
    }
}

impl ConnTable {
    /// `a` without `b`.
    pub fn subtract(&mut self, a: ConnId, b: ConnId) -> ConnId {
        if a == Self::NONE || b == Self::NONE {
            return a;
        }
        if a == b || b == Self::ALL {
            return Self::NONE;
        }
        if let Some(&id) = self.differences.get(&(a, b)) {
            return id;
        }
        let set = self.get(a).difference(self.get(b));
        let id = self.intern(set);
        self.differences.insert((a, b), id);
        id
    }
}

impl Default for ConnTable {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_merges_adjacent_and_overlapping_ranges() {
        let s = PortSet::range(1, 10).union(&PortSet::range(11, 20)).union(&PortSet::range(15, 30));
        assert_eq!(s.ranges(), &[(1, 30)]);
        let s = PortSet::range(80, 80).union(&PortSet::range(8080, 8090));
        assert_eq!(s.to_string(), "80,8080-8090");
    }

    #[test]
    fn intersect() {
        let a = PortSet::range(1, 100).union(&PortSet::range(200, 300));
        let b = PortSet::range(50, 250);
        assert_eq!(a.intersect(&b).ranges(), &[(50, 100), (200, 250)]);
        assert!(a.intersect(&PortSet::range(101, 199)).is_empty());
    }

    #[test]
    fn difference_cuts_holes_and_edges() {
        let a = PortSet::range(1, 100).union(&PortSet::range(200, 300));
        let b = PortSet::range(1, 10).union(&PortSet::range(50, 60)).union(&PortSet::range(250, 400));
        assert_eq!(a.difference(&b).ranges(), &[(11, 49), (61, 100), (200, 249)]);
        assert!(PortSet::range(5, 5).difference(&PortSet::full()).is_empty());
        assert_eq!(PortSet::full().difference(&PortSet::range(MAX_PORT, MAX_PORT)).ranges(), &[(1, 65534)]);
        let mut t = ConnTable::new();
        let tcp80 = t.intern(ConnSet::single(Protocol::Tcp, PortSet::range(80, 80)));
        let rest = t.subtract(ConnTable::ALL, tcp80);
        assert_eq!(t.get(rest).to_string(), "SCTP 1-65535,TCP 1-79,81-65535,UDP 1-65535");
        assert_eq!(t.union(rest, tcp80), ConnTable::ALL);
    }

    #[test]
    fn display_orders_protocols_like_connlist() {
        let c = ConnSet::single(Protocol::Udp, PortSet::range(53, 53))
            .union(&ConnSet::single(Protocol::Sctp, PortSet::full()))
            .union(&ConnSet::single(Protocol::Tcp, PortSet::range(80, 80)));
        assert_eq!(c.to_string(), "SCTP 1-65535,TCP 80,UDP 53");
        assert_eq!(ConnSet::all().to_string(), "All Connections");
        assert_eq!(ConnSet::none().to_string(), "No Connections");
    }

    #[test]
    fn table_interns_and_caches() {
        let mut t = ConnTable::new();
        let a = t.intern(ConnSet::single(Protocol::Tcp, PortSet::range(80, 80)));
        let b = t.intern(ConnSet::single(Protocol::Tcp, PortSet::range(81, 81)));
        let u = t.union(a, b);
        assert_eq!(t.get(u).to_string(), "TCP 80-81");
        assert_eq!(t.intersect(u, a), a);
        assert_eq!(t.intersect(a, b), ConnTable::NONE);
        assert_eq!(t.union(a, ConnTable::ALL), ConnTable::ALL);
    }
}
