use netmatrix_lab::{Fault, FaultKind, Lab, LabError, PodSpec, PortState};
use netmatrix_model::{Labels, Protocol};

use crate::Outcome;
use crate::args::{FaultAction, LabCommand};

/// `netmatrix cleanup`: every lab (or one), whatever state it was left in.
pub fn cleanup(lab: Option<String>) -> Outcome {
    let labs = lab.map_or_else(Lab::list, |l| vec![l]);
    if labs.is_empty() {
        println!("nothing to clean up");
    }
    let mut outcome = Outcome::Ok;
    for name in labs {
        match Lab::down(&name) {
            Ok(()) => println!("lab {name} removed"),
            Err(e) => {
                eprintln!("error: lab {name}: {e}");
                outcome = report(&e);
            }
        }
    }
    outcome
}

fn report(e: &LabError) -> Outcome {
    match e {
        LabError::BadInput(_) | LabError::Exists(_) | LabError::NotFound(_) => Outcome::BadInput,
        LabError::NotRoot | LabError::NftMissing | LabError::Io { .. } => Outcome::Failure,
    }
}

pub fn run(command: LabCommand) -> Outcome {
    let result = match command {
        LabCommand::Up { name, nodes, pods_per_node } => up(&name, nodes, pods_per_node),
        LabCommand::Down { name } => Lab::down(&name).map(|()| println!("lab {name} removed")),
        LabCommand::Status { name } => Lab::open(&name).map(|lab| print!("{}", lab.status())),
        LabCommand::Fault { action, name, kind, node, peer } => fault(action, &name, &kind, node, peer),
    };
    match result {
        Ok(()) => Outcome::Ok,
        Err(e) => {
            eprintln!("error: {e}");
            report(&e)
        }
    }
}

fn fault(action: FaultAction, name: &str, kind: &str, node: Option<usize>, peer: Option<usize>) -> Result<(), LabError> {
    let names: Vec<String> = FaultKind::ALL.iter().map(ToString::to_string).collect();
    let kind = FaultKind::parse(kind).ok_or_else(|| LabError::BadInput(format!("unknown fault {kind:?} (one of {})", names.join(", "))))?;
    let mut lab = Lab::open(name)?;
    match action {
        FaultAction::Inject => {
            let node = node.ok_or_else(|| LabError::BadInput("lab fault inject needs --node".into()))?;
            lab.inject(Fault { kind, node, peer })?;
        }
        FaultAction::Clear => lab.clear(kind, node)?,
    }
    print!("{}", lab.status());
    Ok(())
}

fn up(name: &str, nodes: usize, pods_per_node: usize) -> Result<(), LabError> {
    let mut lab = Lab::up(name, nodes)?;
    let filled = (|| {
        for node in 0..nodes {
            for k in 0..pods_per_node {
                let pod = format!("pod-{node}-{k}");
                let labels = Labels::from([("app".to_owned(), pod.clone())]);
                let ports = [Protocol::Tcp, Protocol::Udp].map(|protocol| PortState { name: None, port: 80, protocol }).to_vec();
                lab.add_pod(PodSpec { namespace: "default".into(), name: pod, labels, node, ports })?;
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
