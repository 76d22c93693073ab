//! `netmatrix-synth --pods N --policies M [--seed S] [--yaml] > cluster.json`: writes a synthetic
//! cluster as one JSON `List`, or with `--yaml` as a stream of documents.

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut seed, mut pods, mut policies, mut yaml) = (1u64, 200usize, 40usize, false);
    while let Some(flag) = args.next() {
        if flag == "--yaml" {
            yaml = true;
            continue;
        }
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--seed", Some(v)) => seed = v,
            ("--pods", Some(v)) => pods = v as usize,
            ("--policies", Some(v)) => policies = v as usize,
            _ => {
                eprintln!("usage: netmatrix-synth [--seed S] [--pods N] [--policies M] [--yaml]");
                std::process::exit(2);
            }
        }
    }
    let params = netmatrix_synth::Params::scale(seed, pods, policies);
    let text = if yaml { netmatrix_synth::generate(&params) } else { netmatrix_synth::generate_json_list(&params) };
    std::io::stdout().lock().write_all(text.as_bytes()).expect("writing stdout");
}
