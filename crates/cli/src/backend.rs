//! Where a run or a churn happens: the flags that choose a lab or a cluster, making the
//! backend, and removing what it made.

use std::path::{Path, PathBuf};
use std::time::Duration;

use netmatrix_cluster::lab::LabBackend;
use netmatrix_cluster::{Backend, BackendError};
use netmatrix_lab::{Lab, LabError};
use netmatrix_model::IpFamilies;

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
    /// IP families of a lab the run creates: ipv4, ipv6 or dual (default dual); an existing
    /// lab keeps its own.
    #[arg(long, value_name = "ipv4|ipv6|dual", conflicts_with = "kubeconfig")]
    pub ip_family: Option<IpFamilies>,
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
/// The IP families of a lab the run creates.
pub const LAB_IP_FAMILY: IpFamilies = IpFamilies::Dual;

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

/// The most `--shards`: shard k's lab is the run's lab's name followed by the k-th letter (b to z).
pub const MAX_SHARDS: usize = 26;

/// Shard `shard`'s run id on a cluster: the run's, then `-s2`, `-s3`, ... (its label value and
/// namespace prefix, `nm-r1a2b3c-s2-x`).
pub fn shard_run(run: &str, shard: usize) -> String {
    if shard == 0 { run.to_owned() } else { format!("{run}-s{}", shard + 1) }
}

/// Shard `shard`'s lab when the run's lab is `lab`: `lab`, then `lab` followed by b, c, ...
pub fn shard_lab(lab: &str, shard: usize) -> String {
    if shard == 0 { lab.to_owned() } else { format!("{lab}{}", char::from(b'a' + shard as u8)) }
}

/// The lab a run makes for itself: named after its process, so that runs side by side do not
/// collide, with room for the shards' letters when there are several.
pub fn fresh_lab(shards: usize) -> String {
    format!("r{}", std::process::id() % if shards > 1 { 10_000 } else { 100_000 })
}

/// Makes one backend per shard side by side (`make(shard)`), in shard order.
fn side_by_side(shards: usize, make: &(dyn Fn(usize) -> Result<Chosen, CliError> + Sync)) -> Vec<Result<Chosen, CliError>> {
    made_or_removed(shards, make, &|mut chosen: Chosen| {
        let _ = chosen.backend.teardown();
    })
}

/// `make(shard)` for every shard on threads of their own, in shard order. When one panics,
/// what the others made is removed before the panic goes on: nothing is left behind.
fn made_or_removed<T: Send>(shards: usize, make: &(dyn Fn(usize) -> Result<T, CliError> + Sync), remove: &dyn Fn(T)) -> Vec<Result<T, CliError>> {
    let joined: Vec<std::thread::Result<Result<T, CliError>>> = std::thread::scope(|scope| {
        let made: Vec<_> = (0..shards).map(|shard| scope.spawn(move || make(shard))).collect();
        made.into_iter().map(|m| m.join()).collect()
    });
    if joined.iter().any(|j| j.is_err()) {
        let mut panic = None;
        for j in joined {
            match j {
                Ok(Ok(made)) => remove(made),
                Ok(Err(_)) => {}
                Err(p) => panic = panic.or(Some(p)),
            }
        }
        std::panic::resume_unwind(panic.expect("a shard panicked"));
    }
    joined.into_iter().map(|j| j.unwrap_or_else(|_| unreachable!("no shard panicked"))).collect()
}

/// The cluster of `--kubeconfig`, saving its OpenAPI spec to `openapi` first where asked.
pub fn kube(args: &BackendArgs, openapi: Option<&Path>) -> Result<Chosen, CliError> {
    kubes(args, openapi, 1).pop().expect("one shard")
}

/// The cluster of `--kubeconfig` once per shard, each a run of its own (namespaces, labels) with
/// the first shard's id and the shard number (see [`shard_run`]).
pub fn kubes(args: &BackendArgs, openapi: Option<&Path>, shards: usize) -> Vec<Result<Chosen, CliError>> {
    let run = run_id();
    side_by_side(shards, &|shard| kube_run(args, openapi.filter(|_| shard == 0), shard_run(&run, shard)))
}

fn kube_run(args: &BackendArgs, openapi: Option<&Path>, run: String) -> Result<Chosen, CliError> {
    let selector = args.node_selector.as_deref().map(netmatrix_kube::parse_selector).transpose().map_err(CliError::Usage)?;
    let kubeconfig = args.kubeconfig.clone().filter(|k| k.as_os_str() != "-");
    let options = netmatrix_kube::KubeOptions {
        kubeconfig,
        context: args.context.clone(),
        run,
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
    labs(args, 1).pop().expect("one shard")
}

/// The labs of the run's shards (see [`shard_lab`]), made side by side; each is used as
/// `--lab` uses a lab: created if absent (and then removed at the end), else used as it is.
pub fn labs(args: &BackendArgs, shards: usize) -> Vec<Result<Chosen, CliError>> {
    let lab = args.lab.clone().unwrap_or_else(|| fresh_lab(shards));
    let existing = Lab::list();
    let names: Vec<(String, bool)> = (0..shards).map(|shard| shard_lab(&lab, shard)).map(|name| (name.clone(), existing.contains(&name))).collect();
    // Until the backends exist, a second signal removes the labs being built (those the run makes).
    let made: Vec<String> = names.iter().filter(|(_, existed)| !existed).map(|(name, _)| name.clone()).collect();
    if !made.is_empty() && !args.keep {
        signals::on_abort(Some(Box::new(move || {
            for lab in &made {
                let _ = Lab::down(lab);
            }
        })));
    }
    side_by_side(shards, &|shard| {
        let (name, existed) = &names[shard];
        let backend =
            if *existed { LabBackend::open(name) } else { LabBackend::up(name, args.nodes.unwrap_or(LAB_NODES), args.ip_family.unwrap_or(LAB_IP_FAMILY)) };
        let backend = backend.map_err(|e| match e {
            LabError::BadInput(m) => LabError::BadInput(format!("lab {name}: {m}")),
            other => other,
        })?;
        let about = format!("lab {name}{}", if *existed { " (existing)" } else { "" });
        let kept =
            if *existed { format!("kept the run's probe pods in lab {name}") } else { format!("kept lab {name} (netmatrix lab down {name} removes it)") };
        Ok(Chosen { backend: Box::new(backend), about, kept })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_shard_that_panics_while_made_leaves_the_others_removed() {
        let removed = std::sync::Mutex::new(Vec::new());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::made_or_removed(
                3,
                &|shard| {
                    assert_ne!(shard, 1, "shard 1 cannot be made");
                    Ok(shard)
                },
                &|shard| removed.lock().unwrap().push(shard),
            )
        }));
        assert!(outcome.is_err(), "the panic goes on");
        assert_eq!(*removed.lock().unwrap(), [0, 2]);
        let made = super::made_or_removed(2, &|shard| Ok(shard * 10), &|_| panic!("nothing to remove"));
        assert_eq!(made.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [0, 10]);
    }

    #[test]
    fn run_ids_are_short_label_values() {
        let id = super::run_id();
        assert!(id.len() == 7 && id.starts_with('r') && id[1..].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_eq!((super::shard_run(&id, 0), super::shard_run(&id, 1)), (id.clone(), format!("{id}-s2")));
    }

    #[test]
    fn shard_labs_are_valid_names_of_their_own() {
        let lab = super::fresh_lab(super::MAX_SHARDS);
        let names: Vec<String> = (0..super::MAX_SHARDS).map(|shard| super::shard_lab(&lab, shard)).collect();
        assert_eq!((names[0].as_str(), names[1].clone(), names[25].clone()), (lab.as_str(), format!("{lab}b"), format!("{lab}z")));
        assert!(names.iter().all(|n| netmatrix_lab::names::validate(n).is_ok()), "{names:?}");
        assert_eq!(names.iter().collect::<std::collections::BTreeSet<_>>().len(), names.len());
        assert!(super::fresh_lab(1).len() <= netmatrix_lab::names::MAX_LAB_NAME);
    }
}
