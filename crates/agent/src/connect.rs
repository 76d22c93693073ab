//! `connect`: one agnhost-compatible probe. Exit 0 on success; exit 1 with
//! one stderr line whose prefix test cases match on.

use std::process::ExitCode;

use crate::args::ConnectArgs;
use crate::dns::Resolver;
use crate::probe::{self, Failure, Spec};

pub fn main(args: ConnectArgs) -> ExitCode {
    // One probe needs no worker threads; this keeps process start cheap.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("UNKNOWN: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let resolver = Resolver::new(&args.resolv_conf);
    let spec = Spec {
        host: args.host,
        port: args.port,
        protocol: args.protocol,
        timeout: args.timeout,
        source_port: args.source_port,
        // agnhost's TCP verdict is the handshake; waiting for an identity
        // line would hold every non-agent target for the whole timeout.
        identify: false,
    };
    let attempt = runtime.block_on(probe::attempt(&spec, &resolver));
    match attempt.result {
        Ok(_) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", stderr_line(&failure));
            ExitCode::from(1)
        }
    }
}

/// agnhost's prefixes: UNKNOWN is a non-network error (here: the agent's
/// own), OTHER any network error that is not a timeout, refusal or DNS.
fn stderr_line(failure: &Failure) -> String {
    match failure {
        Failure::Timeout => "TIMEOUT".into(),
        Failure::Refused => "REFUSED".into(),
        Failure::Dns(e) => format!("DNS: {e}"),
        Failure::Unreachable(e) => format!("OTHER: unreachable: {e}"),
        Failure::Other(e) => format!("OTHER: {e}"),
        Failure::Agent(e) => format!("UNKNOWN: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_prefixes() {
        assert_eq!(stderr_line(&Failure::Timeout), "TIMEOUT");
        assert_eq!(stderr_line(&Failure::Refused), "REFUSED");
        assert_eq!(stderr_line(&Failure::Dns("x: no such host".into())), "DNS: x: no such host");
        assert!(stderr_line(&Failure::Unreachable("No route to host".into())).starts_with("OTHER: "));
        assert!(stderr_line(&Failure::Agent("sctp socket".into())).starts_with("UNKNOWN: "));
    }
}
