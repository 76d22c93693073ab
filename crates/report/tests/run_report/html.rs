use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netmatrix_report::html::write;

use crate::fixture::report;

/// The page as Chromium built it, after its scripts ran; `None` when Chromium is absent.
fn dump_dom(page: &std::path::Path) -> Option<String> {
    let profile = tempfile::tempdir().unwrap();
    let spawned = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("starting chromium: {e}"),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("chromium did not finish within 120s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    Some(String::from_utf8(output.stdout).unwrap())
}

#[test]
fn heat_maps_render_in_chromium() {
    let report = report();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let mut html = Vec::new();
    write(&mut html, &report).unwrap();
    std::fs::write(&page, &html).unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains(" src="), "self-contained");
    assert!(html.contains("backend lab &middot; started") && html.contains(" &middot; profile lab"), "the run names its backend and profile");
    assert!(html.contains("<h2>feature coverage</h2><p class=\"meta\">8 of "), "the features section");
    assert_eq!(html.matches("<tr class=\"feature ").count(), report.features.len(), "every feature, exercised or not");
    assert_eq!(html.matches("<tr class=\"group\">").count(), 3, "NetworkPolicy, AdminPolicy, Service");
    assert!(
        html.contains(
            "<tr class=\"feature fail\"><td><code>netpol.pod-selector-empty</code></td><td><span class=\"badge fail\">fail</span></td><td class=\"count\">2</td>\
             <td class=\"count\">1</td><td class=\"count\">1</td><td>a policy with an empty podSelector (every pod of its namespace)</td>\
             <td>netpol/deny-ingress-from-y, netpol/allow-all</td></tr>"
        ),
        "a failed feature with its counts, meaning and cases"
    );
    assert!(html.contains("<tr class=\"feature not-exercised\"><td><code>admin.peer-nodes</code>"), "a gap is shown");

    let Some(dom) = dump_dom(&page) else {
        assert!(std::env::var_os("CI").is_none(), "chromium is missing in CI (Debian package chromium)");
        println!("SKIPPED: chromium not installed (Debian package chromium)");
        return;
    };
    let cells: usize = report.cases.iter().flat_map(|c| &c.steps).map(|s| s.cells.len()).sum();
    assert_eq!(dom.matches("<td class=\"cell ").count(), cells, "one matrix cell per probed cell");
    // 80/TCP and 81/UDP, the services and the affinity check, the 3x3 case.
    assert_eq!(dom.matches("<figure class=\"matrix\">").count(), 5);
    assert_eq!(dom.matches("<td class=\"missing\">").count(), 1 + 3, "x/a -> x/a on 81/UDP, 3x3 diagonal");
    let wrong: Vec<&str> = dom.split("<td class=\"cell wrong\"").skip(1).collect();
    assert_eq!(wrong.len(), report.summary.wrong);
    for cell in &wrong {
        let title = cell.split("title=\"").nth(1).unwrap();
        assert!(title.contains("expected: ") && title.contains("tries: "), "{title}");
        assert!(cell.contains(">X</td>"), "a wrong cell shows X: {cell}");
    }
    assert_eq!(dom.matches("<td class=\"cell inconclusive\"").count(), 1);
    assert_eq!(dom.matches("<td class=\"cell error\"").count(), 1);
    assert_eq!(dom.matches("<td class=\"cell undefined\"").count(), 2);
    assert!(dom.contains("tries: 3 (allow deny allow)"), "the inconclusive cell's history");
    assert!(dom.contains("<li>2 allowed connections are dropped"), "the diagnosis");
    assert_eq!(dom.matches("<ul class=\"problems\">").count(), 2, "the failing case's two steps list their cells");
    assert!(dom.contains("on node &lt;none&gt; after 60s"), "report text is escaped");
    assert!(!dom.contains("<none>"), "no markup from report text");
    assert_eq!(dom.matches("<tr class=\"feature ").count(), report.features.len(), "the feature table survives parsing");
}
