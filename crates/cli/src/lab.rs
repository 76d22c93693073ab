use std::time::Duration;

use netmatrix_lab::{Fault, FaultKind, Lab, LabError, topology};
use netmatrix_model::{ContainerPort, IpFamilies, PodSpec};
use netmatrix_model::{Labels, Protocol};

use crate::args::{FaultAction, LabCommand};
use crate::{CliError, Outcome};

/// `netmatrix cleanup`: every lab (or one), whatever state it was left in. Goes on after a
/// failure, printing each; the last one decides the exit code.
pub fn cleanup(lab: Option<String>) -> Result<Outcome, CliError> {
    let labs = lab.map_or_else(Lab::list, |l| vec![l]);
    if labs.is_empty() {
        println!("nothing to clean up");
    }
    let mut outcome = Outcome::Ok;
    for name in labs {
        match Lab::down(&name) {
            Ok(existed) => removed(&name, existed),
            Err(e) => {
                eprintln!("error: lab {name}: {e}");
                outcome = CliError::from(e).outcome();
            }
        }
    }
    Ok(outcome)
}

pub fn run(command: LabCommand) -> Result<Outcome, CliError> {
    match command {
        LabCommand::Up { name, nodes, ip_family, pods_per_node } => up(&name, nodes, ip_family, pods_per_node)?,
        LabCommand::Down { name } => removed(&name, Lab::down(&name)?),
        LabCommand::Status { name } => Lab::open(&name).map(|lab| print!("{}", lab.status()))?,
        LabCommand::Fault { action, name, kind, node, peer, by } => fault(action, &name, &kind, node, peer, by)?,
    }
    Ok(Outcome::Ok)
}

fn removed(name: &str, existed: bool) {
    if existed {
        println!("lab {name} removed");
    } else {
        println!("no lab {name} to remove");
    }
}

fn fault(action: FaultAction, name: &str, kind: &str, node: Option<usize>, peer: Option<usize>, delay: Option<Duration>) -> Result<(), LabError> {
    let names: Vec<String> = FaultKind::ALL.iter().map(ToString::to_string).collect();
    let kind = FaultKind::parse(kind).ok_or_else(|| LabError::BadInput(format!("unknown fault {kind:?} (one of {})", names.join(", "))))?;
    let mut lab = Lab::open(name)?;
    match action {
        FaultAction::Inject => {
            let node = node.ok_or_else(|| LabError::BadInput("lab fault inject needs --node".into()))?;
            lab.inject(Fault { kind, node, peer, delay })?;
        }
        FaultAction::Clear => lab.clear(kind, node)?,
    }
    print!("{}", lab.status());
    Ok(())
}

fn up(name: &str, nodes: usize, ip_family: IpFamilies, pods_per_node: usize) -> Result<(), LabError> {
    // Checked here, not by the first pod too many: that comes after the others were made.
    if pods_per_node > topology::MAX_PODS_PER_NODE {
        return Err(LabError::BadInput(format!("--pods-per-node {pods_per_node}: a node holds at most {} pods", topology::MAX_PODS_PER_NODE)));
    }
    let mut lab = Lab::up(name, nodes, ip_family)?;
    let filled = (|| {
        for node in 0..nodes {
            for k in 0..pods_per_node {
                let pod = format!("pod-{node}-{k}");
                let labels = Labels::from([("app".to_owned(), pod.clone())]);
                let ports = [Protocol::Tcp, Protocol::Udp].map(|protocol| ContainerPort { name: None, port: 80, protocol }).to_vec();
                lab.add_pod(PodSpec { namespace: "default".into(), name: pod, labels, node: format!("node{node}"), ports, host_network: false })?;
            }
        }
        Ok(())
    })();
    if let Err(e) = filled {
        // Nothing is left behind by a failed `up`.
        let _ = Lab::down(name);
        return Err(e);
    }
    print!("{}", lab.status());
    Ok(())
}
