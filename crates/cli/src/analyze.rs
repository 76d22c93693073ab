use std::io::{self, Write};

use netmatrix_oracle::explain::{explain, find_endpoint};
use netmatrix_oracle::{connlist, Options, Reachability};
use netmatrix_report::connlist::Format;

use crate::args::{parse_port_protocol, AnalyzeArgs, OutputFormat};
use crate::Outcome;

pub fn run(args: AnalyzeArgs) -> Outcome {
    let cluster = match netmatrix_model::load_paths(&args.paths) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            return Outcome::BadInput;
        }
    };
    for w in &cluster.warnings {
        eprintln!("warning: {w}");
    }
    let options = Options { ipblocks_match_pods: !args.ipblocks_external_only };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = match &args.explain {
        Some(query) => {
            let endpoints = (find_endpoint(&cluster, &query[0]), find_endpoint(&cluster, &query[1]), query.get(2).map(|q| parse_port_protocol(q)).transpose());
            let (src, dst, port) = match endpoints {
                (Ok(src), Ok(dst), Ok(port)) => (src, dst, port),
                (src, dst, port) => {
                    for e in [src.err(), dst.err(), port.err()].into_iter().flatten() {
                        eprintln!("error: --explain: {e}");
                    }
                    return Outcome::BadInput;
                }
            };
            let explanation = explain(&cluster, options, src, dst, port);
            if args.output == OutputFormat::Json {
                serde_json::to_writer_pretty(&mut out, &explanation).map_err(io::Error::from).and_then(|()| writeln!(out))
            } else {
                netmatrix_report::explain::write_text(&mut out, &explanation)
            }
        }
        None => {
            let mut reach = Reachability::compute(&cluster, options);
            let lines = connlist::connlist(&cluster, &mut reach);
            let format = match args.output {
                OutputFormat::Txt => Format::Txt,
                OutputFormat::Csv => Format::Csv,
                OutputFormat::Md => Format::Md,
                OutputFormat::Json => Format::Json,
            };
            netmatrix_report::connlist::write(&mut out, &lines, format)
        }
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Outcome::Ok,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Outcome::Ok,
        Err(e) => {
            eprintln!("error: writing output: {e}");
            Outcome::BadInput
        }
    }
}
