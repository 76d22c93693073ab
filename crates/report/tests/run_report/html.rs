use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netmatrix_model::Protocol;
use netmatrix_report::html::write;
use netmatrix_results::{CaseReport, Expected, Observed, RunReport, StepReport, Summary, TargetKind};

use crate::fixture::{cell, pods, report};

/// The page as Chromium built it, after its scripts ran, opened with URL fragment `fragment`
/// (the HTML report's filters); `None` when Chromium is absent.
fn dump_dom(page: &std::path::Path, fragment: &str) -> Option<String> {
    let profile = tempfile::tempdir().unwrap();
    let spawned = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}{fragment}", page.display()))
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

/// `report` written to a fresh directory (kept while the guard lives), and its HTML.
fn page(report: &RunReport) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let mut html = Vec::new();
    write(&mut html, report).unwrap();
    std::fs::write(&page, &html).unwrap();
    (dir, page, String::from_utf8(html).unwrap())
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
            "<tr class=\"feature fail\"><td><a href=\"#feature=netpol.pod-selector-empty\"><code>netpol.pod-selector-empty</code></a></td><td><span class=\"badge fail\">fail</span></td><td class=\"count\">2</td>\
             <td class=\"count\">1</td><td class=\"count\">1</td><td>a policy with an empty podSelector (every pod of its namespace)</td>\
             <td>netpol/deny-ingress-from-y, netpol/allow-all</td></tr>"
        ),
        "a failed feature with its counts, meaning and cases"
    );
    assert!(html.contains("<tr class=\"feature not-exercised\"><td><code>admin.peer-nodes</code>"), "a gap is shown, no link to filter by");

    let Some(dom) = dump_dom(&page, "") else {
        assert!(std::env::var_os("CI").is_none(), "chromium is missing in CI (Debian package chromium)");
        println!("SKIPPED: chromium not installed (Debian package chromium)");
        return;
    };
    let cells: usize = report.cases.iter().flat_map(|c| &c.steps).map(|s| s.cells.len()).sum();
    assert_eq!(dom.matches("<td class=\"cell ").count(), cells, "one matrix cell per probed cell");
    // 80/TCP and 81/UDP, the services and the affinity check, the 3x3 case.
    assert_eq!(dom.matches("<figure class=\"matrix\">").count(), 5);
    assert_eq!(dom.matches("<td class=\"missing").count(), 1 + 3, "x/a -> x/a on 81/UDP, 3x3 diagonal");
    // A cell that starts a node's columns also has class `start`.
    let wrong: Vec<&str> = dom.split("<td class=\"cell wrong").skip(1).collect();
    assert_eq!(wrong.len(), report.summary.wrong);
    for cell in &wrong {
        let title = cell.split("title=\"").nth(1).unwrap();
        assert!(title.contains("expected: ") && title.contains("tries: "), "{title}");
        assert!(cell.contains(">X</td>"), "a wrong cell shows X: {cell}");
    }
    assert_eq!(dom.matches("<td class=\"cell inconclusive").count(), 1);
    assert_eq!(dom.matches("<td class=\"cell error").count(), 1);
    assert_eq!(dom.matches("<td class=\"cell undefined").count(), 2);
    assert!(dom.contains("tries: 3 (allow deny allow)"), "the inconclusive cell's history");
    assert!(dom.contains("<li>2 allowed connections are dropped"), "the diagnosis");
    assert_eq!(dom.matches("<ul class=\"problems\">").count(), 2, "the failing case's two steps list their cells");
    assert!(dom.contains("on node &lt;none&gt; after 60s"), "report text is escaped");
    assert!(!dom.contains("<none>"), "no markup from report text");
    assert_eq!(dom.matches("<tr class=\"feature ").count(), report.features.len(), "the feature table survives parsing");
}

/// Pods a, b, c of x and y on nodes n1, n2, n3 (as the fixture places them), 80/TCP, traffic
/// between n1 and n2 dropped both ways; and node ports of a Service on n2 and n1 and its
/// cluster IP.
fn cross_node_report() -> RunReport {
    let node_of = |pod: &str| ["n1", "n2", "n3"]["abc".find(pod.chars().last().unwrap()).unwrap()].to_owned();
    let pods = pods(&["x", "y"], &["a", "b", "c"]);
    let mut cells = Vec::new();
    for src in &pods {
        for dst in pods.iter().filter(|d| *d != src) {
            let (from, to) = (node_of(src), node_of(dst));
            let broken = from != to && [&from, &to].iter().all(|n| ["n1", "n2"].contains(&n.as_str()));
            let mut c = cell(src, dst, 80, Protocol::Tcp, Expected::Allow, if broken { Observed::Deny } else { Observed::Allow });
            (c.src_node, c.dst_node) = (Some(from), Some(to));
            cells.push(c);
        }
        for (dst, target, node) in [
            ("node:n2:30080", TargetKind::NodePort, Some("n2")),
            ("svc:x/web", TargetKind::ClusterIp, None),
            ("node:n1:30080", TargetKind::NodePort, Some("n1")),
        ] {
            let mut c = cell(src, dst, 30080, Protocol::Tcp, Expected::Allow, Observed::Allow);
            (c.target, c.src_node, c.dst_node) = (target, Some(node_of(src)), node.map(str::to_owned));
            cells.push(c);
        }
    }
    let steps = vec![StepReport { name: "all to all".into(), tries: 1, cells }];
    let case = CaseReport { duration_ms: 1, ..CaseReport::of_steps("connectivity/pod-to-pod", steps) };
    let mut run = report();
    run.cases = vec![case];
    run.summary = Summary::of(&run.cases);
    run
}

/// The figure captioned `caption`: its column group headings, column headings and, per row,
/// the source and its cells (`X` wrong, `.` as expected, blank when not probed).
fn heat_map(html: &str, caption: &str) -> (Vec<String>, Vec<String>, Vec<(String, String)>) {
    let figure = html.split("<figure class=\"matrix\">").find(|f| f.starts_with(&format!("<figcaption>{caption}<"))).unwrap();
    let text_of = |tag: &str| tag.split_once('>').unwrap().1.split('<').next().unwrap().to_owned();
    let (head, body) = figure.split_once("</thead>").unwrap();
    let groups = head.split("<th class=\"group").skip(1).map(text_of).collect();
    let columns = head.split("<th scope=\"col\"").skip(1).map(text_of).collect();
    let rows = body
        .split("<tr")
        .skip(1)
        .map(|row| {
            let source = text_of(row.split("<th scope=\"row\"").nth(1).unwrap());
            let cells = row
                .split("<td class=\"")
                .skip(1)
                .map(|td| match td.split(['"', ' ']).next().unwrap() {
                    "cell" if td.starts_with("cell wrong") => 'X',
                    "cell" => '.',
                    _ => ' ',
                })
                .collect();
            (source, cells)
        })
        .collect();
    (groups, columns, rows)
}

#[test]
fn heat_maps_order_by_node_so_a_cross_node_fault_is_a_block() {
    let (_dir, _page, html) = page(&cross_node_report());
    let (groups, columns, rows) = heat_map(&html, "80/TCP");
    assert_eq!(groups, ["n1", "n2", "n3"]);
    assert_eq!(columns, ["x/a", "y/a", "x/b", "y/b", "x/c", "y/c"]);
    let grid: Vec<String> = rows.iter().map(|(source, cells)| format!("{source} {cells}")).collect();
    assert_eq!(grid, ["x/a  .XX..", "y/a . XX..", "x/b XX ...", "y/b XX. ..", "x/c .... .", "y/c ..... "], "n1<->n2 as two blocks");
    let figure = html.split("<figcaption>80/TCP</figcaption>").nth(1).unwrap().split("</figure>").next().unwrap();
    assert_eq!(figure.matches("<th class=\"group\" rowspan=\"2\">").count(), 3, "a heading per node before its rows");
    assert_eq!(figure.matches("<tr class=\"start\">").count(), 2, "a rule above n2's and n3's rows");
    assert_eq!(figure.matches("<th scope=\"col\" class=\"start\">").count(), 2, "a rule before n2's and n3's columns");
    // Node ports by node, the Service address after them.
    let (groups, columns, _) = heat_map(&html, "cluster-ip, node-port TCP");
    assert_eq!(groups, ["n1", "n2", "cluster-ip"]);
    assert_eq!(columns, ["node:n1:30080", "node:n2:30080", "svc:x/web:30080"]);

    // The fixture's passing case records no nodes (as reports before nodes): name order, no headings.
    let (_dir, _page, html) = page(&report());
    let step = html.split("allow all within x").nth(1).unwrap();
    let (groups, columns, _) = heat_map(step, "80/TCP");
    assert!(groups.is_empty(), "{groups:?}");
    assert_eq!(columns, ["x/a", "x/b", "x/c"]);
}

/// Per case section of the page as Chromium shows it at `fragment`: its id and whether shown;
/// and the count line.
fn shown_at(page: &std::path::Path, fragment: &str) -> Option<(Vec<(String, bool)>, String)> {
    let dom = dump_dom(page, fragment)?;
    let sections = dom
        .split("<section class=\"case ")
        .skip(1)
        .map(|s| {
            let (tag, rest) = s.split_once('>').unwrap();
            let id = rest.split_once("<h2>").unwrap().1.split(' ').next().unwrap().to_owned();
            (id, !tag.contains(" hidden"))
        })
        .collect();
    let count = dom.split("<span id=\"shown\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    Some((sections, count))
}

#[test]
fn filters_in_the_url_fragment_hide_cases_in_chromium() {
    let report = report();
    let (_dir, page, html) = page(&report);
    assert!(html.contains("<option>netpol</option><option>services</option></select>"), "the suites, in run order");
    assert!(html.contains("<option value=\"\">every feature</option><option>netpol.pod-selector-empty</option>"), "{html}");
    assert!(html.contains("<span id=\"shown\">4 of 4 cases shown</span>"), "without a script every case shows");
    let ids: Vec<String> = report.cases.iter().map(|c| c.id.clone()).collect();
    for (fragment, visible, count) in [
        ("", &ids.iter().map(String::as_str).collect::<Vec<_>>()[..], "4 of 4 cases shown"),
        ("#failing", &["netpol/deny-ingress-from-y", "services/session-affinity"][..], "2 of 4 cases shown"),
        ("#suite=netpol", &["netpol/deny-ingress-from-y", "netpol/allow-all", "netpol/sctp"][..], "3 of 4 cases shown"),
        ("#failing&suite=netpol", &["netpol/deny-ingress-from-y"][..], "1 of 4 cases shown"),
        ("#feature=netpol.any-peer", &["netpol/allow-all"][..], "1 of 4 cases shown"),
        ("#suite=nope", &[][..], "0 of 4 cases shown"),
    ] {
        let Some((sections, shown)) = shown_at(&page, fragment) else {
            assert!(std::env::var_os("CI").is_none(), "chromium is missing in CI (Debian package chromium)");
            println!("SKIPPED: chromium not installed (Debian package chromium)");
            return;
        };
        let ids_shown: Vec<&str> = sections.iter().filter(|(_, shown)| *shown).map(|(id, _)| id.as_str()).collect();
        assert_eq!(sections.len(), 4, "{fragment}");
        assert_eq!(ids_shown, visible, "{fragment}");
        assert_eq!(shown, count, "{fragment}");
    }
}
