//! netmatrix-agent: one static binary that serves identity on TCP/UDP/SCTP/
//! HTTP ports and probes whole matrix rows (see README.md for the CLI and
//! the `netmatrix.probe/v1` schema).

mod args;
mod batch;
mod connect;
mod dns;
mod http;
mod identity;
mod probe;
mod sctp;
mod serve;

use std::process::ExitCode;

use args::Command;

fn main() -> ExitCode {
    match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            println!("{}", args::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Connect(args)) => connect::main(args),
        Ok(Command::Serve(args)) => serve::main(args),
        Ok(Command::Probe(args)) => batch::main(args),
        Err(e) => {
            eprintln!("netmatrix-agent: {e}");
            eprintln!("Run `netmatrix-agent help` for usage.");
            ExitCode::from(2)
        }
    }
}
