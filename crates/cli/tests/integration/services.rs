//! `netmatrix analyze --services` and `--explain SRC svc:...` end to end on the shipped example.

// The shipped example, run from its parent so that file names in messages are stable.
use crate::analyze::{netmatrix, ok_stdout};

#[test]
fn services_of_the_example() {
    let txt = ok_stdout(&["analyze", "-f", "shop", "--services"]);
    // The frontend reaches cart through its Service: named targetPort api, allowed by both ends.
    assert!(txt.contains("shop/frontend[Deployment] => svc:shop/cart:80/TCP : backends shop/cart[Deployment]\n"), "{txt}");
    // Denied cells are not listed: prometheus may not use cart's api port.
    assert!(!txt.contains("monitoring/prometheus[DaemonSet] => svc:shop/cart"), "{txt}");
    assert!(txt.contains("svc:shop/db:5432/TCP[ExternalName db.example.com] : # "), "{txt}");
    insta::assert_snapshot!("services_txt", txt);
    insta::assert_snapshot!("services_json", ok_stdout(&["analyze", "-f", "shop", "--services", "-o", "json"]));
}

#[test]
fn explain_a_service_frontend() {
    insta::assert_snapshot!("explain_service", ok_stdout(&["analyze", "-f", "shop", "--explain", "shop/frontend", "svc:shop/cart", "80/TCP"]));
    let denied = ok_stdout(&["analyze", "-f", "shop", "--explain", "monitoring/prometheus", "svc:shop/cart"]);
    assert!(denied.starts_with("monitoring/prometheus[DaemonSet] => svc:shop/cart:80/TCP: DENIED\n"), "{denied}");
    assert!(denied.contains("shop/cart: denied by its ingress policies (TCP 9000 from monitoring/prometheus)"), "{denied}");
    let json: serde_json::Value =
        serde_json::from_str(&ok_stdout(&["analyze", "-f", "shop", "--explain", "shop/frontend", "svc:shop/frontend", "-o", "json"])).unwrap();
    let verdicts: Vec<&str> = json.as_array().unwrap().iter().map(|e| e["verdict"].as_str().unwrap()).collect();
    // A pod reaching itself through its Service "is supposed to work" (Debug Services); its
    // load-balancer IP is masqueraded by a node the example does not name.
    assert_eq!(verdicts, ["allow", "undefined"], "a pod to itself through its Service (cluster IP and load balancer)");
    assert!(json[1]["reasons"].as_array().unwrap().last().unwrap().as_str().unwrap().contains("spec.nodeName"), "{json}");
}

#[test]
fn bad_service_queries_exit_2() {
    for (args, fragment) in [
        (&["analyze", "-f", "shop", "--explain", "shop/frontend", "svc:shop/nope"][..], "no Service shop/nope"),
        (&["analyze", "-f", "shop", "--explain", "203.0.113.7", "svc:shop/cart"][..], "pod or workload source"),
        (&["analyze", "-f", "shop", "--explain", "shop/frontend", "svc:shop/cart", "80/ICMP"][..], "\"ICMP\" is not a protocol"),
    ] {
        let out = netmatrix(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty() && stderr.contains(fragment), "{args:?}: {stderr}");
    }
}
