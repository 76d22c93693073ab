use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use netmatrix_model::{IpFamilies, Protocol};

#[derive(Debug, Parser)]
#[command(name = "netmatrix", version, about = "Tells, in tables, whether a Kubernetes cluster's network does what its objects say")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Predict which workload may talk to which, on which ports, from manifests.
    Analyze(AnalyzeArgs),
    /// Probe the dataplane and compare it with the oracle: truth tables, diagnosis, reports.
    Run(Box<crate::run::RunArgs>),
    /// Measure how fast the dataplane enforces change: load patterns (namespace labels, pod
    /// rings, policy and Service churn), each change's cells probed until they converge.
    Churn(Box<crate::churn::ChurnArgs>),
    /// A multi-node cluster dataplane on this host (network namespaces, veth, nftables; root).
    #[command(subcommand)]
    Lab(LabCommand),
    /// Run netmatrix in a cluster as a Sonobuoy plugin.
    #[command(subcommand)]
    Sonobuoy(SonobuoyCommand),
    /// Remove what netmatrix left behind: one lab, or every lab on this host.
    Cleanup {
        /// Only this lab.
        #[arg(long, conflicts_with = "kubeconfig")]
        lab: Option<String>,
        /// Remove what runs left in the cluster of this kubeconfig (`-`: kubectl's choice): every
        /// namespace and admin policy labelled app.kubernetes.io/managed-by=netmatrix, nothing else.
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        #[arg(long, requires = "kubeconfig")]
        context: Option<String>,
        /// Only the objects of this run (its id, as `netmatrix run` printed it).
        #[arg(long, requires = "kubeconfig")]
        run: Option<String>,
    },
    /// OCI image archives of the agent, built without Docker or a registry.
    #[command(subcommand)]
    Image(crate::image::ImageCommand),
    /// Print a shell completion script (e.g. `netmatrix completions bash > /etc/bash_completion.d/netmatrix`).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), generated from these flags: `netmatrix man | man -l -`.
    Man,
    /// Which API operations the requests of an audit log exercised, per netmatrix case and per
    /// API group, against the server's OpenAPI spec.
    Coverage(crate::coverage::CoverageArgs),
    /// Reports over earlier runs' JSON reports.
    #[command(subcommand)]
    Report(crate::history::ReportCommand),
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Create a lab: a router, nodes with bridges, and optionally pods running the agent.
    Up {
        /// Lab name: 1 to 6 lower-case letters or digits.
        #[arg(default_value = netmatrix_lab::names::DEFAULT_LAB)]
        name: String,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// IP families of the nodes' and pods' addresses: ipv4, ipv6 or dual.
        #[arg(long, value_name = "ipv4|ipv6|dual", default_value = "dual")]
        ip_family: IpFamilies,
        /// Pods per node, in namespace `default`, each serving TCP and UDP 80.
        #[arg(long, default_value_t = 0)]
        pods_per_node: usize,
    },
    /// Remove everything a lab created, even after a crash.
    Down {
        #[arg(default_value = netmatrix_lab::names::DEFAULT_LAB)]
        name: String,
    },
    /// Show a lab's nodes, pods, policies and faults.
    Status {
        #[arg(default_value = netmatrix_lab::names::DEFAULT_LAB)]
        name: String,
    },
    /// Inject or clear a fault: cross-node, drop-udp, ignore-policy, drop-services, break-hairpin,
    /// stale-udp, delay-policy (with --by), drop-ipv6 and single-family-services (labs with IPv6).
    Fault {
        action: FaultAction,
        name: String,
        kind: String,
        /// The node the fault is on (required to inject; clear without it clears every node).
        #[arg(long)]
        node: Option<usize>,
        /// For cross-node: the other node (default: every other node).
        #[arg(long)]
        peer: Option<usize>,
        /// For delay-policy (required there): how long the node's rule updates are held back,
        /// e.g. 300ms. Only the process changing rules holds them back: a command that ends
        /// applies what it holds first.
        #[arg(long, value_name = "DURATION", value_parser = crate::run::parse_duration)]
        by: Option<Duration>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SonobuoyCommand {
    /// Print the plugin definition for `sonobuoy run --plugin FILE`: the plugin runs
    /// `netmatrix run --sonobuoy RUN FLAGS` in the cluster.
    Plugin(crate::sonobuoy::PluginArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FaultAction {
    Inject,
    Clear,
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Manifest file or directory (searched recursively for .yaml, .yml, .json); repeatable.
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Txt)]
    pub output: OutputFormat,

    /// Explain the verdict between two endpoints (namespace/name, namespace/name[Kind] or an IP),
    /// optionally for one port, e.g. `--explain ns/a ns/b 80/TCP`.
    #[arg(long, num_args = 2..=3, value_names = ["SRC", "DST", "PORT/PROTO"])]
    pub explain: Option<Vec<String>>,

    /// ipBlocks describe only addresses outside the cluster and never select pods (the reading
    /// of netpol-analyzer and network-config-analyzer).
    #[arg(long)]
    pub ipblocks_external_only: bool,

    /// Print the time of each phase (load, reachability, connlist, output; wall and CPU) and peak
    /// memory on stderr (the load's also when the input is rejected).
    #[arg(long)]
    pub timings: bool,

    /// List pod -> Service frontend connectivity (cluster IPs, node ports, load-balancer IPs,
    /// ExternalNames) instead of the connlist: which backends answer, `#` where undefined.
    #[arg(long, conflicts_with = "explain")]
    pub services: bool,

    /// Fields the Kubernetes API does not define (a misspelled `ingres`): an error as kubectl's
    /// default field validation, a warning, or ignored.
    #[arg(long, value_enum, default_value_t = Validate::Strict)]
    pub validate: Validate,

    /// Who decides what the Kubernetes documentation leaves open (Service cells): `spec` marks
    /// it `#`; `lab` and `kube-proxy` predict what that dataplane does. Manifests name no
    /// dataplane, so the default promises only what every conformant cluster does.
    #[arg(long, value_enum, default_value_t = ProfileArg::Spec)]
    pub profile: ProfileArg,
}

/// `--profile`: an implementation profile of the oracle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    Spec,
    Lab,
    KubeProxy,
}

impl From<ProfileArg> for netmatrix_oracle::Profile {
    fn from(p: ProfileArg) -> Self {
        match p {
            ProfileArg::Spec => Self::Spec,
            ProfileArg::Lab => Self::Lab,
            ProfileArg::KubeProxy => Self::KubeProxy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Validate {
    Strict,
    Warn,
    Ignore,
}

impl From<Validate> for netmatrix_model::Validation {
    fn from(v: Validate) -> Self {
        match v {
            Validate::Strict => Self::Strict,
            Validate::Warn => Self::Warn,
            Validate::Ignore => Self::Ignore,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Txt,
    Csv,
    Md,
    Json,
}

/// `80`, `80/TCP`, `53/udp`: a port with its protocol (TCP when omitted).
pub fn parse_port_protocol(text: &str) -> Result<(u16, Protocol), String> {
    let (port, protocol) = text.split_once('/').unwrap_or((text, "TCP"));
    let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("{port:?} is not a port number (1-65535)"))?;
    let protocol = Protocol::parse(&protocol.to_ascii_uppercase()).ok_or_else(|| format!("{protocol:?} is not a protocol (TCP, UDP or SCTP)"))?;
    Ok((port, protocol))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("netmatrix").chain(args.iter().copied()))
    }

    #[test]
    fn analyze_flags() {
        let cli = parse(&["analyze", "-f", "a", "-f", "b", "-o", "csv", "--ipblocks-external-only", "--timings"]).unwrap();
        let Command::Analyze(a) = cli.command else { panic!("analyze") };
        assert_eq!(a.paths, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(a.output, OutputFormat::Csv);
        assert!(a.ipblocks_external_only && a.timings);
        assert!(a.explain.is_none() && !a.services);
        assert_eq!(a.profile, ProfileArg::Spec, "manifests name no dataplane: strict Kubernetes");
    }

    #[test]
    fn profiles_are_the_oracles() {
        for p in netmatrix_oracle::Profile::ALL {
            let Command::Analyze(a) = parse(&["analyze", "-f", "x", "--profile", p.name()]).unwrap().command else { panic!("analyze") };
            assert_eq!(netmatrix_oracle::Profile::from(a.profile), p);
        }
        assert!(parse(&["analyze", "-f", "x", "--profile", "iptables"]).unwrap_err().to_string().contains("possible values: spec, lab, kube-proxy"));
    }

    #[test]
    fn services_lists_frontends_and_excludes_explain() {
        let Command::Analyze(a) = parse(&["analyze", "-f", "x", "--services", "-o", "json"]).unwrap().command else { panic!("analyze") };
        assert!(a.services);
        assert_eq!(a.output, OutputFormat::Json);
        assert!(parse(&["analyze", "-f", "x", "--services", "--explain", "ns/a", "svc:ns/b"]).is_err(), "--explain svc:... explains one Service");
    }

    #[test]
    fn explain_takes_two_or_three_values() {
        let Command::Analyze(a) = parse(&["analyze", "-f", "x", "--explain", "ns/a", "ns/b"]).unwrap().command else { panic!("analyze") };
        assert_eq!(a.explain.unwrap(), ["ns/a", "ns/b"]);
        let Command::Analyze(a) = parse(&["analyze", "-f", "x", "--explain", "ns/a", "ns/b", "80/TCP"]).unwrap().command else { panic!("analyze") };
        assert_eq!(a.explain.unwrap().len(), 3);
        assert!(parse(&["analyze", "-f", "x", "--explain", "ns/a"]).is_err());
    }

    #[test]
    fn validate_is_strict_unless_told() {
        let Command::Analyze(a) = parse(&["analyze", "-f", "x"]).unwrap().command else { panic!("analyze") };
        assert_eq!(a.validate, Validate::Strict);
        for (value, want) in [("strict", Validate::Strict), ("warn", Validate::Warn), ("ignore", Validate::Ignore)] {
            let Command::Analyze(a) = parse(&["analyze", "-f", "x", "--validate", value]).unwrap().command else { panic!("analyze") };
            assert_eq!(a.validate, want);
        }
        assert!(parse(&["analyze", "-f", "x", "--validate", "true"]).is_err());
    }

    #[test]
    fn files_are_required_and_formats_checked() {
        assert!(parse(&["analyze"]).is_err());
        assert!(parse(&["analyze", "-f", "x", "-o", "xml"]).is_err());
    }

    #[test]
    fn lab_commands() {
        let Command::Lab(LabCommand::Up { name, nodes, ip_family, pods_per_node }) = parse(&["lab", "up"]).unwrap().command else { panic!("lab up") };
        assert_eq!((name.as_str(), nodes, ip_family, pods_per_node), ("lab", 3, IpFamilies::Dual, 0));
        let Command::Lab(LabCommand::Up { name, nodes, ip_family, pods_per_node }) =
            parse(&["lab", "up", "x1", "--nodes", "2", "--pods-per-node", "4", "--ip-family", "ipv6"]).unwrap().command
        else {
            panic!("lab up")
        };
        assert_eq!((name.as_str(), nodes, ip_family, pods_per_node), ("x1", 2, IpFamilies::Ipv6, 4));
        let unknown = parse(&["lab", "up", "--ip-family", "ipv5"]).unwrap_err();
        assert!(unknown.to_string().contains("use ipv4, ipv6 or dual"), "{unknown}");
        assert!(matches!(parse(&["lab", "down", "x1"]).unwrap().command, Command::Lab(LabCommand::Down { .. })));
        assert!(matches!(parse(&["lab", "status"]).unwrap().command, Command::Lab(LabCommand::Status { .. })));
        assert!(parse(&["lab", "up", "--nodes", "many"]).is_err());
        let Command::Lab(LabCommand::Fault { action, name, kind, node, peer, by }) =
            parse(&["lab", "fault", "inject", "x1", "cross-node", "--node", "0", "--peer", "2"]).unwrap().command
        else {
            panic!("fault")
        };
        assert_eq!((action, name.as_str(), kind.as_str(), node, peer, by), (FaultAction::Inject, "x1", "cross-node", Some(0), Some(2), None));
        assert!(parse(&["lab", "fault", "break", "x1", "cross-node"]).is_err());
        let Command::Lab(LabCommand::Fault { kind, node, by, .. }) =
            parse(&["lab", "fault", "inject", "x1", "delay-policy", "--node", "1", "--by", "300ms"]).unwrap().command
        else {
            panic!("fault")
        };
        assert_eq!((kind.as_str(), node, by), ("delay-policy", Some(1), Some(Duration::from_millis(300))));
        for bad in ["0s", "soon", "300"] {
            let err = parse(&["lab", "fault", "inject", "x1", "delay-policy", "--node", "1", "--by", bad]).unwrap_err().to_string();
            assert!(err.contains("--by"), "{bad}: {err}");
        }
    }

    #[test]
    fn cleanup() {
        assert!(matches!(parse(&["cleanup"]).unwrap().command, Command::Cleanup { lab: None, kubeconfig: None, .. }));
        assert!(parse(&["cleanup", "--lab", "x1", "--kubeconfig", "k"]).is_err(), "one place to clean");
        assert!(parse(&["cleanup", "--run", "r1"]).is_err(), "--run needs --kubeconfig");
        let Command::Cleanup { lab, .. } = parse(&["cleanup", "--lab", "x1"]).unwrap().command else { panic!("cleanup") };
        assert_eq!(lab.as_deref(), Some("x1"));
    }

    #[test]
    fn port_protocol() {
        assert_eq!(parse_port_protocol("80"), Ok((80, Protocol::Tcp)));
        assert_eq!(parse_port_protocol("53/udp"), Ok((53, Protocol::Udp)));
        assert_eq!(parse_port_protocol("9/SCTP"), Ok((9, Protocol::Sctp)));
        assert!(parse_port_protocol("0/TCP").is_err());
        assert!(parse_port_protocol("80/ICMP").is_err());
        assert!(parse_port_protocol("http").is_err());
    }
}
