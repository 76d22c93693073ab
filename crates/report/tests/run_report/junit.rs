use netmatrix_report::junit::{FEATURES_SUITE, write};
use netmatrix_results::Feature;

use crate::fixture::report;

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(tag))
}

fn render() -> String {
    let mut out = Vec::new();
    write(&mut out, &report()).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn one_testcase_per_case_with_tables_failures_errors_and_skips() {
    let xml = render();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<roxmltree::Node> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 4);
    let suites: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("testsuite")).filter_map(|n| n.attribute("name")).collect();
    assert_eq!(suites, ["netpol", "services", "netmatrix.features"]);
    let case = |name: &str| *cases.iter().find(|c| c.attribute("name") == Some(name)).unwrap();

    let failed = case("deny-ingress-from-y");
    assert_eq!(failed.attribute("classname"), Some("netpol"));
    let failure = child(failed, "failure").expect("a failure");
    assert_eq!(failure.attribute("message"), Some("3 wrong cells: x/c -> y/c 80/TCP, y/a -> x/b 80/TCP, y/a -> node:n2:30080 30080/TCP"));
    let description = failure.text().unwrap();
    assert!(description.contains("3 tries: allow allow allow; answered by x/b"), "{description}");
    assert!(description.contains("diagnosis: 2 allowed connections are dropped"), "{description}");
    let out = child(failed, "system-out").unwrap().text().unwrap();
    assert!(out.contains("80/TCP expected:\n-   x/a x/b x/c y/a y/b y/c\n"), "{out}");
    assert!(out.contains("80/TCP observed:") && out.contains("80/TCP comparison:"), "{out}");
    assert!(out.contains("exec: netmatrix-agent not found in y/c <container \"agent\">"), "escaped and read back: {out}");
    assert!(!out.contains('\x1b'), "no colour in JUnit");

    let passed = case("allow-all");
    assert!(child(passed, "failure").is_none() && child(passed, "error").is_none());

    let error = child(case("session-affinity"), "error").expect("an error");
    assert_eq!(error.attribute("message"), Some("pods never ready: x/web-2 is Pending on node <none> after 60s"));

    let skipped = child(case("sctp"), "skipped").expect("skipped");
    assert_eq!(skipped.attribute("message"), Some("the lab's kernel has no sctp module"));
}

#[test]
fn feature_coverage_as_properties_and_a_suite_without_tests() {
    let xml = render();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.attribute("tests"), Some("4"), "the features suite adds no test");
    let properties = |node: roxmltree::Node| -> Vec<(String, String)> {
        child(node, "properties")
            .map(|p| {
                p.children()
                    .filter(|n| n.has_tag_name("property"))
                    .map(|n| (n.attribute("name").unwrap().into(), n.attribute("value").unwrap().into()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let passed = doc.descendants().find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("allow-all")).unwrap();
    let features: Vec<String> = properties(passed).into_iter().filter(|(k, _)| k == "netmatrix.feature").map(|(_, v)| v).collect();
    assert_eq!(features, ["netpol.pod-selector-empty", "netpol.any-peer", "netpol.ingress"]);
    let skipped = doc.descendants().find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("sctp")).unwrap();
    assert!(properties(skipped).is_empty(), "a skipped case exercised nothing");

    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some(FEATURES_SUITE)).unwrap();
    assert_eq!(suite.attribute("tests"), Some("0"));
    let properties = properties(suite);
    assert_eq!(properties.len(), Feature::ALL.len(), "one property per feature of the list");
    let value = |id: &str| properties.iter().find(|(k, _)| k == id).map(|(_, v)| v.as_str()).unwrap();
    assert_eq!(value("netpol.pod-selector-empty"), "fail (cases:2, passed:1, failed:1)");
    assert_eq!(value("netpol.any-peer"), "pass (cases:1, passed:1, failed:0)");
    assert_eq!(value("admin.peer-nodes"), "not-exercised (cases:0, passed:0, failed:0)");
    let out = child(suite, "system-out").unwrap().text().unwrap();
    assert!(out.starts_with("features: exercised:8/") && out.contains("failed: netpol/deny-ingress-from-y"), "{out}");
}
