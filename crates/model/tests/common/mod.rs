//! Peak memory of loading, for the memory tests: each is the only test of its binary, so the
//! process's peak is that test's (a second load in the same process would reuse the first's
//! freed memory and measure nothing).

use netmatrix_model::{InputErrors, parse_str};

pub const COUNT: usize = 20_000;

/// A Namespace, the last but one with a label value the API server rejects; `indent` for a
/// list item.
pub fn namespace(i: usize, indent: &str) -> String {
    let team = if i == COUNT - 2 { "has spaces!" } else { "blue" };
    format!("apiVersion: v1\n{indent}kind: Namespace\n{indent}metadata:\n{indent}  name: ns-{i:06}\n{indent}  labels: {{team: {team}}}\n")
}

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()).expect("a number of kB")
}

/// Loads `text`, which has one error, `want` (the start of its message), and checks that the
/// process's peak memory grew by a few times the text at most: what is kept per namespace is
/// its name and labels (a few hundred bytes), not a parsed object (~2.4 kB, 30 times its text).
pub fn check_peak(text: &str, want: &str) {
    // "5" resets the peak resident set size (VmHWM) to the current one (proc(5)).
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
    let before = status_kb("VmRSS:");
    let err: InputErrors = parse_str("ns.yaml", text).expect_err("a bad label");
    let grown = status_kb("VmHWM:").saturating_sub(before) * 1024;
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(err.to_string().starts_with(want), "{err}");
    assert!(grown < 8 * text.len(), "loading {} bytes took {grown} bytes more at the peak", text.len());
}
