//! Where a run or a churn happens: the flags that choose a lab or a cluster, making the
//! backend, and removing what it made.

use std::path::{Path, PathBuf};
use std::time::Duration;

use netmatrix_cluster::lab::LabBackend;
use netmatrix_cluster::{Backend, BackendError};
use netmatrix_lab::{Lab, LabError};

use crate::run::parse_duration;
use crate::{CliError, Outcome, signals};

#[derive(Debug, clap::Args)]
pub struct BackendArgs {
    /// Run in this lab (created if absent, and then removed at the end unless --keep). Without
    /// --lab and --kubeconfig a fresh lab is made for the run and removed after it.
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
    /// Run against the Kubernetes cluster of this kubeconfig (`-` for kubectl's own choice:
    /// $KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    #[arg(long, value_name = "FILE", conflicts_with = "lab")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, requires = "kubeconfig")]
    pub context: Option<String>,
    /// Nodes of a lab the run creates (default 3); on a cluster, at most this many nodes.
    #[arg(long)]
    pub nodes: Option<usize>,
    /// On a cluster: the probe pods' image (load it with `netmatrix image build`).
    #[arg(long, value_name = "REF", default_value = concat!("netmatrix-agent:", env!("CARGO_PKG_VERSION")))]
    pub agent_image: String,
    /// On a cluster that only allows standard images: the upstream agnhost image serves and
    /// probes (one exec per probe, as the upstream e2e tests do; slower, same tables; checks
    /// that need to know who answered are skipped).
    #[arg(long, value_name = "IMAGE", num_args = 0..=1, default_missing_value = AGNHOST_IMAGE, requires = "kubeconfig")]
    pub agnhost: Option<String>,
    /// On a cluster: an image pull secret for the probe pods.
    #[arg(long, value_name = "NAME")]
    pub image_pull_secret: Option<String>,
    /// On a cluster: also place probe pods on tainted and control-plane nodes.
    #[arg(long)]
    pub tolerate_taints: bool,
    /// On a cluster: only nodes with these labels (`k=v,...`).
    #[arg(long, value_name = "k=v,...")]
    pub node_selector: Option<String>,
    /// On a cluster: how long probe pods and Service endpoints may take to be ready.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// Keep the lab (or the probe pods) after the run, for a look.
    #[arg(long)]
    pub keep: bool,
}

/// The run's backend, torn down when dropped (also on errors and panics) unless kept.
pub struct Teardown {
    pub backend: Box<dyn Backend>,
    pub keep: bool,
    pub done: bool,
}

impl Teardown {
    /// Removes what the run created, or says how to, when kept; returns every failure.
    pub fn finish(mut self, kept: &str) -> Vec<BackendError> {
        self.done = true;
        if self.keep {
            eprintln!("{kept}");
            return Vec::new();
        }
        self.backend.teardown()
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if !self.done && !self.keep {
            for e in self.backend.teardown() {
                eprintln!("error: cleaning up: {e}");
            }
        }
    }
}

/// The agnhost the Kubernetes 1.37 e2e tests use (test/utils/image/manifest.go).
pub const AGNHOST_IMAGE: &str = "registry.k8s.io/e2e-test-images/agnhost:2.66.1";

/// Nodes of a lab a run makes, unless `--nodes` says.
pub const LAB_NODES: usize = 3;

/// The backend a run drives, what the run prints about it, and what `--keep` prints.
pub struct Chosen {
    pub backend: Box<dyn Backend>,
    pub about: String,
    pub kept: String,
}

/// A run's id: its label value and the prefix of its namespaces, unique enough that runs of
/// several machines on one cluster do not meet.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("r{:06x}", (nanos as u64 ^ u64::from(std::process::id()) << 20) % 0x100_0000)
}

/// The cluster of `--kubeconfig`, saving its OpenAPI spec to `openapi` first where asked.
pub fn kube(args: &BackendArgs, openapi: Option<&Path>) -> Result<Chosen, CliError> {
    let selector = args.node_selector.as_deref().map(netmatrix_kube::parse_selector).transpose().map_err(CliError::Usage)?;
    let kubeconfig = args.kubeconfig.clone().filter(|k| k.as_os_str() != "-");
    let options = netmatrix_kube::KubeOptions {
        kubeconfig,
        context: args.context.clone(),
        run: run_id(),
        pods: netmatrix_kube::PodOptions {
            image: args.agnhost.clone().unwrap_or_else(|| args.agent_image.clone()),
            image_pull_secret: args.image_pull_secret.clone(),
            tolerate_taints: args.tolerate_taints,
            agnhost: args.agnhost.is_some(),
        },
        nodes: netmatrix_kube::NodeFilter { tolerate_taints: args.tolerate_taints, selector: selector.unwrap_or_default(), max: args.nodes },
        ready_timeout: args.ready_timeout,
    };
    let run = options.run.clone();
    let backend = netmatrix_kube::KubeBackend::connect(options)?;
    if let Some(path) = openapi {
        std::fs::write(path, backend.openapi_v2()?).map_err(|source| CliError::Io { what: format!("writing {}", path.display()), source })?;
    }
    let about = format!("cluster {} ({}), run {run}", backend.server(), backend.server_version());
    let kept = format!("kept the run's objects (netmatrix cleanup --kubeconfig ... --run {run} removes them)");
    Ok(Chosen { backend: Box::new(backend), about, kept })
}

/// `netmatrix cleanup --kubeconfig`: what netmatrix labelled in the cluster, and nothing else.
pub fn cleanup(kubeconfig: PathBuf, context: Option<String>, run: Option<String>) -> Result<Outcome, CliError> {
    let options = netmatrix_kube::KubeOptions {
        kubeconfig: Some(kubeconfig).filter(|k| k.as_os_str() != "-"),
        context,
        run: run.clone().unwrap_or_default(),
        pods: netmatrix_kube::PodOptions { image: String::new(), image_pull_secret: None, tolerate_taints: false, agnhost: false },
        nodes: netmatrix_kube::NodeFilter::default(),
        ready_timeout: Duration::from_secs(120),
    };
    let removed = netmatrix_kube::cleanup(&options, run.as_deref())?;
    if removed.is_empty() {
        println!("nothing to clean up");
    }
    for what in removed {
        println!("removed {what}");
    }
    Ok(Outcome::Ok)
}

/// The lab of `--lab`, or a fresh one.
pub fn lab(args: &BackendArgs) -> Result<Chosen, CliError> {
    let (name, existed) = match &args.lab {
        Some(name) => (name.clone(), Lab::list().contains(name)),
        // A name of its own, so that runs side by side do not collide.
        None => (format!("r{}", std::process::id() % 100_000), false),
    };
    // Until the backend exists, a second signal removes the lab being built (if the run makes it).
    if !existed && !args.keep {
        let lab = name.clone();
        signals::on_abort(Some(Box::new(move || {
            let _ = Lab::down(&lab);
        })));
    }
    let backend = if existed { LabBackend::open(&name) } else { LabBackend::up(&name, args.nodes.unwrap_or(LAB_NODES)) };
    let backend = backend.map_err(|e| match e {
        LabError::BadInput(m) => LabError::BadInput(format!("lab {name}: {m}")),
        other => other,
    })?;
    let about = format!("lab {name}{}", if existed { " (existing)" } else { "" });
    let kept = if existed { format!("kept the run's probe pods in lab {name}") } else { format!("kept lab {name} (netmatrix lab down {name} removes it)") };
    Ok(Chosen { backend: Box::new(backend), about, kept })
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_ids_are_short_label_values() {
        let id = super::run_id();
        assert!(id.len() == 7 && id.starts_with('r') && id[1..].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
}
