//! A step's cells arranged as truth-table matrices, shared by the text tables and the HTML
//! heat maps so both show the same grouping, order and labels.

use std::collections::BTreeMap;

use netmatrix_model::Protocol;

use netmatrix_results::{Cell, Check, StepReport, TargetKind};

/// What puts cells into the same matrix; the derived order is the order tables are printed in.
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
    pub rows: Vec<&'a str>,
    pub columns: Vec<String>,
    /// `(row, column)` → cell; a pair that was not probed is absent.
    pub cells: BTreeMap<(usize, usize), &'a Cell>,
}

pub(crate) fn matrices(step: &StepReport) -> Vec<Matrix<'_>> {
    let mut groups: BTreeMap<GroupKey, Vec<&Cell>> = BTreeMap::new();
    for cell in &step.cells {
        groups.entry(group_key(cell)).or_default().push(cell);
    }
    groups.into_iter().map(|(key, cells)| matrix(key, cells)).collect()
}

fn group_key(cell: &Cell) -> GroupKey {
    let protocol = cell.protocol;
    match (cell.check, cell.target) {
        (Check::Reach, TargetKind::Pod) => GroupKey::Pod { port: cell.port, protocol },
        (Check::Reach, _) => GroupKey::Address { protocol },
        (check, _) => GroupKey::Check { check: check_name(check), protocol },
    }
}

fn matrix(key: GroupKey, cells: Vec<&Cell>) -> Matrix<'_> {
    let column_of = |cell: &Cell| match key {
        GroupKey::Pod { .. } => cell.dst.clone(),
        GroupKey::Address { .. } | GroupKey::Check { .. } => address_label(cell),
    };
    // Sorted, so rows and columns of a pod matrix come in the same order whatever order the
    // engine probed in.
    let mut rows: Vec<&str> = cells.iter().map(|c| c.src.as_str()).collect();
    rows.sort_unstable();
    rows.dedup();
    let mut columns: Vec<String> = cells.iter().map(|c| column_of(c)).collect();
    columns.sort_unstable();
    columns.dedup();
    let mut by_position = BTreeMap::new();
    for cell in &cells {
        let row = rows.binary_search(&cell.src.as_str()).expect("every source is a row");
        let column = columns.binary_search(&column_of(cell)).expect("every target is a column");
        by_position.entry((row, column)).or_insert(*cell);
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
    Matrix { title, rows, columns, cells: by_position }
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
