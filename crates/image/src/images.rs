//! netmatrix's two images: the probe agent, and the Sonobuoy plugin (netmatrix and the agent).

use crate::{Config, File, Image, Reference};

pub const AGENT_PATH: &str = "/netmatrix-agent";
pub const NETMATRIX_PATH: &str = "/netmatrix";

/// Short names that normalise to `docker.io/library/…`: a pod spec can say
/// `image: netmatrix-agent:0.1.0`, and a node without the image fails to pull it, since only
/// Docker's official images live under `library/`, rather than pulling a stranger's image.
pub fn default_name(sonobuoy: bool, version: &str) -> String {
    format!("{}:{version}", if sonobuoy { "netmatrix-sonobuoy" } else { "netmatrix-agent" })
}

/// The agent image, as `crates/agent/Dockerfile` describes it: serves TCP and UDP 8080 and HTTP 8090.
pub fn agent(reference: Reference, version: &str, agent: Vec<u8>) -> Image {
    let cmd = ["serve", "--tcp", "8080", "--udp", "8080", "--http", "8090"];
    image(reference, version, "netmatrix-agent", vec![binary(AGENT_PATH, agent)], AGENT_PATH, &cmd)
}

/// The Sonobuoy plugin image: netmatrix is the entrypoint, its plugin definition gives the
/// arguments; the agent is there for the probe pods the run starts.
pub fn sonobuoy(reference: Reference, version: &str, netmatrix: Vec<u8>, agent: Vec<u8>) -> Image {
    image(reference, version, "netmatrix-sonobuoy", vec![binary(NETMATRIX_PATH, netmatrix), binary(AGENT_PATH, agent)], NETMATRIX_PATH, &[])
}

fn binary(path: &str, bytes: Vec<u8>) -> File {
    File { path: path.into(), mode: 0o755, bytes }
}

fn image(reference: Reference, version: &str, title: &str, files: Vec<File>, entrypoint: &str, cmd: &[&str]) -> Image {
    let labels =
        [("org.opencontainers.image.title", title), ("org.opencontainers.image.version", version), ("org.opencontainers.image.licenses", "Apache-2.0")];
    Image {
        reference,
        files,
        config: Config {
            entrypoint: vec![entrypoint.into()],
            cmd: cmd.iter().map(|&a| a.into()).collect(),
            // nobody: nothing in the image needs root (ports below 1024 need the pod's sysctl
            // net.ipv4.ip_unprivileged_port_start=0 instead).
            user: "65534:65534".into(),
            // The binaries sit at the root: `kubectl exec POD -- netmatrix-agent …` finds them by name.
            env: vec!["PATH=/".into()],
            labels: labels.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_short_docker_hub_library_names() {
        assert_eq!(Reference::parse(&default_name(false, "0.1.0")).unwrap().to_string(), "docker.io/library/netmatrix-agent:0.1.0");
        assert_eq!(Reference::parse(&default_name(true, "0.1.0")).unwrap().to_string(), "docker.io/library/netmatrix-sonobuoy:0.1.0");
    }

    #[test]
    fn agent_image_matches_the_dockerfile() {
        let image = agent(Reference::parse("a:1").unwrap(), "1", b"elf".to_vec());
        let files: Vec<_> = image.files.iter().map(|f| (f.path.as_str(), f.mode)).collect();
        assert_eq!(files, [("/netmatrix-agent", 0o755)]);
        assert_eq!(image.config.entrypoint, ["/netmatrix-agent"]);
        assert_eq!(image.config.cmd, ["serve", "--tcp", "8080", "--udp", "8080", "--http", "8090"]);
        assert_eq!(image.config.user, "65534:65534");
        assert_eq!(image.config.labels["org.opencontainers.image.version"], "1");
    }

    #[test]
    fn sonobuoy_image_has_both_binaries() {
        let image = sonobuoy(Reference::parse("s:1").unwrap(), "1", b"nm".to_vec(), b"agent".to_vec());
        let files: Vec<_> = image.files.iter().map(|f| (f.path.as_str(), f.bytes.as_slice())).collect();
        assert_eq!(files, [("/netmatrix", b"nm".as_slice()), ("/netmatrix-agent", b"agent".as_slice())]);
        assert_eq!(image.config.entrypoint, ["/netmatrix"]);
        assert!(image.config.cmd.is_empty());
    }
}
