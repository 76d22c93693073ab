//! np-guard/netpol-analyzer's cases and goldens as a regression suite of
//! `analyze --ipblocks-external-only`.
//!
//! Reads `../shared/peer-suites/netpol-analyzer` beside the clone (CI has it; a user's clone
//! does not, and then this test says so and passes without checking anything).
//!
//! External ranges are compared as functions of the address: netpol-analyzer cuts the address
//! space at every ipBlock edge of a direction and never merges, while netmatrix prints maximal
//! ranges of equal connectivity (DESIGN.md), so `10.0.0.0-10.255.255.255` and
//! `11.0.0.0-255.255.255.255` with the same connections are one line for us.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn suite_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peer-suites/netpol-analyzer");
    dir.is_dir().then_some(dir)
}

/// How a case's golden contradicts Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Divergence {
    /// The input is not valid Kubernetes: netmatrix rejects it.
    Rejected,
    /// netpol-analyzer ignores IPv6 `networks`: the lines agree except ours add IPv6 ranges.
    Ipv6Networks,
}

/// Cases whose golden contradicts Kubernetes; the reason quotes the documentation.
const DIVERGENCES: &[(&str, Divergence, &str)] = &[
    (
        "netpol_named_port_test",
        Divergence::Rejected,
        "pods.yaml spells `containerport:`; Go's case-insensitive JSON decoding accepts it, the API \
         server does not: ContainerPort.containerPort is required (\"Number of port to expose on the \
         pod's IP address. This must be a valid port number, 0 < x < 65536.\"). netmatrix rejects the input.",
    ),
    ("netpol_named_port_test_2", Divergence::Rejected, "same `containerport:` misspelling as netpol_named_port_test."),
    (
        "example_pods_w_same_owner_and_labels_gap_with_good_match_expression",
        Divergence::Rejected,
        "netpol.yaml names a NetworkPolicy `use_common_labels_same_values`; the API server rejects it: \
         object names \"must consist of lower case alphanumeric characters, '-' or '.'\" (DNS-1123 subdomain). \
         netmatrix rejects the input.",
    ),
    ("example_pods_w_same_owner_and_labels_gap_with_good_match_expression2", Divergence::Rejected, "same underscores in a NetworkPolicy name."),
    ("example_pods_w_same_owner_and_labels_gap_with_policy_selector_not_in_gap", Divergence::Rejected, "same underscores in a NetworkPolicy name."),
    (
        "anp_and_banp_using_networks_with_ipv6_test",
        Divergence::Ipv6Networks,
        "netpol-analyzer skips the IPv6 `networks` with a warning; the API reads them: \"Each item in \
         Networks should be provided in the CIDR format and should be IPv4 or IPv6, for example \
         \"10.0.0.0/8\" or \"fd00::/8\".\" (AdminNetworkPolicyEgressPeer.networks).",
    ),
    ("anp_banp_test_multiple_warnings", Divergence::Ipv6Networks, "same IPv6 `networks` (ff06::/3, fd00::/8) as anp_and_banp_using_networks_with_ipv6_test."),
];

/// For the report: cases exercising AdminNetworkPolicy or BaselineAdminNetworkPolicy.
fn uses_admin_policies(manifests: &Path) -> bool {
    std::fs::read_dir(manifests).into_iter().flatten().flatten().any(|f| std::fs::read_to_string(f.path()).is_ok_and(|t| t.contains("AdminNetworkPolicy")))
}

/// The binary's connlist: it also walks the case's directory tree, as a user's run would.
fn analyze(manifests: &Path) -> Result<Vec<(String, String, String)>, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_netmatrix"))
        .args(["analyze", "--ipblocks-external-only", "-o", "json", "-f"])
        .arg(manifests)
        .output()
        .map_err(|e| format!("running netmatrix: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let lines: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).map_err(|e| format!("connlist JSON: {e}"))?;
    Ok(lines
        .iter()
        .map(|l| {
            (
                l["src"].as_str().unwrap_or_default().to_owned(),
                l["dst"].as_str().unwrap_or_default().to_owned(),
                l["conn"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

fn parse_golden(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("{ingress-controller}"))
        .map(|l| {
            let (pair, conn) = l.split_once(" : ").unwrap_or_else(|| panic!("golden line {l:?}"));
            let (src, dst) = pair.split_once(" => ").unwrap_or_else(|| panic!("golden line {l:?}"));
            (src.to_owned(), dst.to_owned(), conn.to_owned())
        })
        .collect()
}

type Range = (u128, u128);
/// Connections of address ranges, sorted.
type RangeConns = Vec<(Range, String)>;

fn parse_range(endpoint: &str) -> Option<(bool, Range)> {
    let (first, last) = endpoint.strip_suffix("[External]")?.split_once('-')?;
    let num = |s: &str| match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some((false, u128::from(u32::from(a)))),
        IpAddr::V6(a) => Some((true, u128::from(a))),
    };
    let ((v6, a), (_, b)) = (num(first)?, num(last)?);
    Some((v6, (a, b)))
}

/// Workload pairs exactly, and for external lines, per (workload, direction, family), the
/// connection of every elementary piece of the union of both sides' range edges.
#[derive(Debug, PartialEq)]
struct Meaning {
    internal: BTreeSet<(String, String, String)>,
    external: BTreeMap<(String, bool, bool), RangeConns>,
}

fn meaning(lines: &[(String, String, String)]) -> Meaning {
    let mut internal = BTreeSet::new();
    let mut external: BTreeMap<(String, bool, bool), RangeConns> = BTreeMap::new();
    for (src, dst, conn) in lines {
        match (parse_range(src), parse_range(dst)) {
            (Some((v6, r)), None) => external.entry((dst.clone(), true, v6)).or_default().push((r, conn.clone())),
            (None, Some((v6, r))) => external.entry((src.clone(), false, v6)).or_default().push((r, conn.clone())),
            _ => {
                internal.insert((src.clone(), dst.clone(), conn.clone()));
            }
        }
    }
    Meaning { internal, external }
}

fn refine(a: &[(Range, String)], b: &[(Range, String)]) -> (RangeConns, RangeConns) {
    let mut cuts: BTreeSet<u128> = BTreeSet::new();
    for &((first, last), _) in a.iter().chain(b) {
        cuts.insert(first);
        if let Some(n) = last.checked_add(1) {
            cuts.insert(n);
        }
    }
    let split = |ranges: &[(Range, String)]| {
        let mut out = Vec::new();
        for ((first, last), conn) in ranges {
            let inner: Vec<u128> = cuts.range(first..=last).copied().collect();
            for (i, start) in inner.iter().enumerate() {
                let end = inner.get(i + 1).map_or(*last, |n| n - 1);
                out.push(((*start, end), conn.clone()));
            }
        }
        out.sort();
        out
    };
    (split(a), split(b))
}

fn same_meaning(ours: &Meaning, theirs: &Meaning) -> Result<(), String> {
    if ours.internal != theirs.internal {
        let missing: Vec<_> = theirs.internal.difference(&ours.internal).collect();
        let extra: Vec<_> = ours.internal.difference(&theirs.internal).collect();
        return Err(format!("workload lines differ:\n  missing {missing:?}\n  extra {extra:?}"));
    }
    let keys: BTreeSet<_> = ours.external.keys().chain(theirs.external.keys()).collect();
    for key in keys {
        let empty = Vec::new();
        let (a, b) = refine(ours.external.get(key).unwrap_or(&empty), theirs.external.get(key).unwrap_or(&empty));
        if a != b {
            return Err(format!("external lines of {key:?} differ:\n  ours   {a:?}\n  theirs {b:?}"));
        }
    }
    Ok(())
}

#[test]
fn netpol_analyzer_goldens() {
    let Some(dir) = suite_dir() else {
        eprintln!("SKIPPED: ../shared/peer-suites/netpol-analyzer is not beside this clone (only CI and the project's machines have it)");
        return;
    };
    let (mut checked, mut admin_cases, mut failures) = (0, 0, Vec::new());
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(golden) = std::fs::read_to_string(case.join(format!("expected/{name}_connlist_output.txt"))) else { continue };
        let manifests = case.join("manifests");
        admin_cases += usize::from(uses_admin_policies(&manifests));
        let result = analyze(&manifests);
        let divergence = DIVERGENCES.iter().find(|(c, _, _)| *c == name);
        if let Some((_, Divergence::Rejected, reason)) = divergence {
            assert!(result.is_err(), "{name}: expected netmatrix to reject the input ({reason})");
            continue;
        }
        checked += 1;
        let ipv6_divergence = divergence.is_some();
        let verdict = result.and_then(|ours| {
            let mut ours = meaning(&ours);
            if ipv6_divergence {
                // Still a divergence: ours has IPv6 lines the golden lacks; the rest must agree.
                let before = ours.external.len();
                ours.external.retain(|(_, _, v6), _| !v6);
                if ours.external.len() == before {
                    return Err("listed as an IPv6 divergence, but netmatrix printed no IPv6 range".into());
                }
            }
            same_meaning(&ours, &meaning(&parse_golden(&golden)))
        });
        if let Err(e) = verdict {
            failures.push(format!("{name}: {e}"));
        }
    }
    eprintln!(
        "netpol-analyzer suite: {checked} cases compared ({} with admin policies), {} failing, {} known divergences",
        admin_cases,
        failures.len(),
        DIVERGENCES.len()
    );
    assert!(checked >= 40, "only {checked} cases found in {}", dir.display());
    assert!(failures.is_empty(), "{} of {checked} cases differ:\n{}", failures.len(), failures.join("\n"));
}
