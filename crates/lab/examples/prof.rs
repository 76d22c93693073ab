// TEMPORARY profiling, removed before hand-back.
use std::time::Instant;
use netmatrix_lab::nft;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::io::Write;

fn nft_in(ns: &str, script: &str) -> f64 {
    let t = Instant::now();
    let mut c = Command::new("ip").args(["netns", "exec", ns, "nft", "-f", "-"]).stdin(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success());
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let docs = netmatrix_synth::documents(&netmatrix_synth::Params { pods: 500, policies: 200, ..netmatrix_synth::Params::scale(7, 500, 200) });
    let mut pods = String::new();
    let mut pols = Vec::new();
    let mut i = 0;
    for mut doc in docs {
        match doc["kind"].as_str() {
            Some("Pod") => {
                doc["spec"]["nodeName"] = Value::from(format!("node{}", i % 10));
                doc["status"] = serde_json::json!({"podIP": format!("10.244.{}.{}", i % 10, 10 + i / 10), "podIPs": [{"ip": format!("10.244.{}.{}", i % 10, 10 + i / 10)}]});
                i += 1;
                pods.push_str(&format!("---\n{doc}\n"));
            }
            Some("NetworkPolicy") => pols.push(doc),
            _ => {}
        }
    }
    let stream: String = pols.iter().map(|m| format!("---\n{m}\n")).collect();
    let t = Instant::now();
    let parsed = netmatrix_model::parse_str("p", &stream).unwrap();
    println!("parse 200 policies: {:.1} ms ({} bytes)", t.elapsed().as_secs_f64() * 1e3, stream.len());
    let t = Instant::now();
    let _ = serde_json::to_string_pretty(&pols).unwrap();
    println!("serialise 200 policies pretty: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let mut cluster = netmatrix_model::parse_str("x", &format!("{pods}{stream}")).unwrap();
    cluster.policies = parsed.policies;
    let t = Instant::now();
    let _c2 = cluster.clone();
    println!("clone cluster: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    let mut scripts = Vec::new();
    for node in 0..10 {
        let t = Instant::now();
        let mut out = String::new();
        netmatrix_lab::nft::policy::render(&mut out, &cluster, &format!("node{node}"));
        let p = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let s = nft::script("nm-prof", &cluster, &format!("node{node}"), node, &[netmatrix_lab::topology::node_ip(node)], &[]);
        println!("node{node}: policy render {p:.1} ms, full script {:.1} ms, {} bytes, {} lines", t.elapsed().as_secs_f64() * 1e3, s.len(), s.lines().count());
        scripts.push(s);
    }
    if std::env::args().any(|a| a == "loop") {
        let t = Instant::now();
        for _ in 0..20 { for node in 0..10 { let mut out = String::new(); netmatrix_lab::nft::policy::render(&mut out, &cluster, &format!("node{node}")); } }
        println!("policy render x200: {:.1} ms each", t.elapsed().as_secs_f64() * 1e3 / 200.0);
    }
    if std::env::args().any(|a| a == "nft") {
        let ns = "nm-prof-x";
        let _ = Command::new("ip").args(["netns", "add", ns]).status();
        for _ in 0..3 { println!("full apply: {:.1} ms", nft_in(ns, &scripts[0])); }
        // one chain flush+refill
        let chain_start = scripts[0].find("\tchain np-").unwrap(); let cname = scripts[0][chain_start+7..].split(' ').next().unwrap().to_owned();
        let chain_end = chain_start + scripts[0][chain_start..].find("\n\t}\n").unwrap() + 4;
        let chain = &scripts[0][chain_start..chain_end];
        let inc = format!("flush chain inet nm-prof {cname}\ntable inet nm-prof {{\n{chain}}}\n");
        for _ in 0..3 { println!("incremental one chain ({} bytes): {:.1} ms", inc.len(), nft_in(ns, &inc)); }
        let t = Instant::now();
        let o = Command::new("ip").args(["netns", "exec", ns, "nft", "list", "table", "inet", "nm-prof"]).output().unwrap();
        println!("list table: {:.1} ms {} bytes", t.elapsed().as_secs_f64() * 1e3, o.stdout.len());
        println!("empty nft: {:.1} ms", nft_in(ns, "\n"));
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
}
