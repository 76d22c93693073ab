//! A step's cells arranged as truth-table matrices, shared by the text tables and the HTML
//! heat maps so both show the same grouping, order and labels.

use std::collections::BTreeMap;

use netmatrix_model::{IpFamily, Protocol};

use netmatrix_results::{Cell, Check, StepReport, TargetKind};

/// What puts cells into the same matrix, and their family on a run of two (a table per family,
/// IPv4's first); the derived order is the order tables are printed in.
type Group = (GroupKey, Option<IpFamily>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum GroupKey {
    /// Pod-to-pod reachability on one port.
    Pod { port: u16, protocol: Protocol },
    /// Services, node ports and nodes: the port goes into the column label.
    Address { protocol: Protocol },
    /// Checks other than reachability get their own small table, keyed by the check's name
    /// (`Check` has no `Ord`).
    Check { check: &'static str, protocol: Protocol },
}

/// One truth table: rows are sources, columns are targets.
#[derive(Debug)]
pub(crate) struct Matrix<'a> {
    /// `80/TCP`, `cluster-ip, node-port TCP`, `affinity TCP`.
    pub title: String,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// `(row, column)` → cell; a pair that was not probed is absent.
    pub cells: BTreeMap<(usize, usize), &'a Cell>,
    /// In node order, the runs of consecutive rows (columns) that share a node, or for Service
    /// addresses a target kind; empty in name order.
    pub row_groups: Vec<Span>,
    pub column_groups: Vec<Span>,
}

/// Consecutive rows or columns under one heading: a node's name, or a kind of Service address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    pub label: String,
    pub len: usize,
}

/// How rows and columns are ordered: by name (the text tables, whose readers look names up),
/// or by node, in the order of the cluster's nodes, then name (the HTML heat maps, where a
/// node's fault then shows as a block).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Order<'n> {
    Name,
    Node(&'n [String]),
}

pub(crate) fn matrices<'a>(step: &'a StepReport, order: Order) -> Vec<Matrix<'a>> {
    let mut groups: BTreeMap<Group, Vec<&Cell>> = BTreeMap::new();
    for cell in &step.cells {
        groups.entry((group_key(cell), cell.family)).or_default().push(cell);
    }
    groups.into_iter().map(|((key, family), cells)| matrix(key, family, cells, order)).collect()
}

fn group_key(cell: &Cell) -> GroupKey {
    let protocol = cell.protocol;
    match (cell.check, cell.target) {
        (Check::Reach, TargetKind::Pod) => GroupKey::Pod { port: cell.port, protocol },
        (Check::Reach, _) => GroupKey::Address { protocol },
        (check, _) => GroupKey::Check { check: check_name(check), protocol },
    }
}

/// Where a row or column sorts: its group (a node by its place in the cluster's list, unknown
/// nodes after by name; then addresses on no node, by kind), then, within a node, pods before
/// the node's own address and its node ports, then the label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    group: Heading,
    kind: TargetKind,
    label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Heading {
    /// Name order: one group without heading.
    None,
    Node {
        index: usize,
        name: String,
    },
    /// Service addresses (they live on no one node), or pods of unknown node.
    Unplaced(TargetKind),
}

impl Heading {
    fn node(node: &Option<String>, nodes: &[String]) -> Option<Heading> {
        let name = node.as_ref()?;
        let index = nodes.iter().position(|n| n == name).unwrap_or(nodes.len());
        Some(Heading::Node { index, name: name.clone() })
    }

    fn label(&self) -> String {
        match self {
            Heading::None => String::new(),
            Heading::Node { name, .. } => name.clone(),
            Heading::Unplaced(TargetKind::Pod) => "no node".into(),
            Heading::Unplaced(kind) => kind.as_str().into(),
        }
    }
}

fn row_place(cell: &Cell, order: Order) -> Place {
    let group = match order {
        Order::Name => Heading::None,
        Order::Node(nodes) => Heading::node(&cell.src_node, nodes).unwrap_or(Heading::Unplaced(TargetKind::Pod)),
    };
    Place { group, kind: TargetKind::Pod, label: cell.src.clone() }
}

fn column_place(cell: &Cell, label: String, order: Order) -> Place {
    let on_a_node = matches!(cell.target, TargetKind::Pod | TargetKind::Node | TargetKind::NodePort);
    match order {
        Order::Name => Place { group: Heading::None, kind: TargetKind::Pod, label },
        Order::Node(nodes) => match Heading::node(&cell.dst_node, nodes).filter(|_| on_a_node) {
            Some(group) => Place { group, kind: cell.target, label },
            None => Place { group: Heading::Unplaced(cell.target), kind: cell.target, label },
        },
    }
}

/// The distinct places in order, each label once (at its first place), and their groups.
fn axis(mut places: Vec<Place>, order: Order) -> (Vec<String>, Vec<Span>) {
    places.sort_unstable();
    let mut seen = std::collections::HashSet::new();
    places.retain(|p| seen.insert(p.label.clone()));
    let mut spans: Vec<Span> = Vec::new();
    // Without any node known (reports written before nodes), there is nothing to group by.
    if matches!(order, Order::Node(_)) && places.iter().any(|p| matches!(p.group, Heading::Node { .. })) {
        for (i, place) in places.iter().enumerate() {
            match spans.last_mut() {
                Some(span) if i > 0 && places[i - 1].group == place.group => span.len += 1,
                _ => spans.push(Span { label: place.group.label(), len: 1 }),
            }
        }
    }
    (places.into_iter().map(|p| p.label).collect(), spans)
}

fn matrix<'a>(key: GroupKey, family: Option<IpFamily>, cells: Vec<&'a Cell>, order: Order) -> Matrix<'a> {
    let column_of = |cell: &Cell| match key {
        GroupKey::Pod { .. } => cell.dst.clone(),
        GroupKey::Address { .. } | GroupKey::Check { .. } => address_label(cell),
    };
    // Sorted, so rows and columns come in the same order whatever order the engine probed in.
    let (rows, row_groups) = axis(cells.iter().map(|c| row_place(c, order)).collect(), order);
    let (columns, column_groups) = axis(cells.iter().map(|c| column_place(c, column_of(c), order)).collect(), order);
    let row_index: BTreeMap<&str, usize> = rows.iter().enumerate().map(|(i, r)| (r.as_str(), i)).collect();
    let column_index: BTreeMap<&str, usize> = columns.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let mut by_position = BTreeMap::new();
    for cell in &cells {
        let position = (row_index[cell.src.as_str()], column_index[column_of(cell).as_str()]);
        by_position.entry(position).or_insert(*cell);
    }
    let title = match key {
        GroupKey::Pod { port, protocol } => format!("{port}/{protocol}"),
        GroupKey::Address { protocol } => {
            let mut kinds: Vec<TargetKind> = cells.iter().map(|c| c.target).collect();
            kinds.sort_unstable();
            kinds.dedup();
            let kinds: Vec<&str> = kinds.into_iter().map(TargetKind::as_str).collect();
            format!("{} {protocol}", kinds.join(", "))
        }
        GroupKey::Check { check, protocol } => format!("{check} {protocol}"),
    };
    let title = match family {
        Some(family) => format!("{title} {}", family.as_str()),
        None => title,
    };
    Matrix { title, rows, columns, cells: by_position, row_groups, column_groups }
}

/// `dst:port`, unless `dst` already names its port (node ports are `node:NODE:PORT`).
fn address_label(cell: &Cell) -> String {
    let port_suffix = format!(":{}", cell.port);
    if cell.dst.ends_with(&port_suffix) { cell.dst.clone() } else { format!("{}{port_suffix}", cell.dst) }
}

pub(crate) fn check_name(check: Check) -> &'static str {
    match check {
        Check::Reach => "reach",
        Check::Affinity => "affinity",
        Check::UdpAfterReplace => "udp-after-replace",
    }
}
