//! `netmatrix-synth --pods N --policies M [--seed S] > cluster.yaml`: writes a synthetic cluster.

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut seed, mut pods, mut policies) = (1u64, 200usize, 40usize);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--seed", Some(v)) => seed = v,
            ("--pods", Some(v)) => pods = v as usize,
            ("--policies", Some(v)) => policies = v as usize,
            _ => {
                eprintln!("usage: netmatrix-synth [--seed S] [--pods N] [--policies M]");
                std::process::exit(2);
            }
        }
    }
    let yaml = netmatrix_synth::generate(&netmatrix_synth::Params::scale(seed, pods, policies));
    std::io::stdout().lock().write_all(yaml.as_bytes()).expect("writing stdout");
}
