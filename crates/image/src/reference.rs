//! Image names as containerd and the kubelet normalise them, so the name an archive is imported
//! under is the one a pod spec's `image:` resolves to: `netmatrix-agent:0.1.0` is
//! `docker.io/library/netmatrix-agent:0.1.0`, `localhost:5000/x` keeps its registry, and a name
//! without a tag is `:latest` (distribution/reference's `ParseNormalizedNamed`).

use std::fmt;

/// A normalised `domain/path:tag` reference. Digest references are refused: a digest names the
/// image's content, which a name given before building cannot know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    domain: String,
    path: String,
    tag: String,
}

const DOCKER_HUB: &str = "docker.io";

impl Reference {
    pub fn parse(name: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("{name:?} is not an image reference: {why}"));
        if name.contains('@') {
            return bad("a digest names existing content; give a tag");
        }
        let (repository, tag) = match name.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, tag),
            _ => (name, "latest"),
        };
        let (domain, path) = match repository.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) => {
                (first, rest.to_owned())
            }
            Some(_) => (DOCKER_HUB, repository.to_owned()),
            None => (DOCKER_HUB, format!("library/{repository}")),
        };
        let domain = if domain == "index.docker.io" { DOCKER_HUB } else { domain };
        if !valid_domain(domain) {
            return bad(&format!("bad registry {domain:?}"));
        }
        if let Some(component) = path.split('/').find(|c| !valid_path_component(c)) {
            return bad(&format!("{component:?}: path components are lower-case letters and digits, separated by '.', '_', '__' or dashes"));
        }
        let tag_chars = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if tag.len() > 128 || !tag.starts_with(tag_chars) || !tag.chars().all(|c| tag_chars(c) || c == '.' || c == '-') {
            return bad(&format!("bad tag {tag:?}"));
        }
        if domain.len() + 1 + path.len() > 255 {
            return bad("longer than 255 characters");
        }
        Ok(Reference { domain: domain.to_owned(), path, tag: tag.to_owned() })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The short form `docker` prints and writes into `RepoTags`: Docker Hub's domain and
    /// `library/` left out.
    pub fn familiar(&self) -> String {
        let path = match self.domain.as_str() {
            DOCKER_HUB => self.path.strip_prefix("library/").filter(|rest| !rest.contains('/')).unwrap_or(&self.path),
            _ => return self.to_string(),
        };
        format!("{path}:{}", self.tag)
    }
}

/// The full form: what containerd stores and the kubelet looks up.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.domain, self.path, self.tag)
    }
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = domain.split_once(':').unwrap_or((domain, "1"));
    !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !label.starts_with('-') && !label.ends_with('-'))
}

/// `[a-z0-9]+` runs joined by one separator each: `.`, `_`, `__` or any number of `-`.
fn valid_path_component(component: &str) -> bool {
    let mut separator = String::new();
    for c in component.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            separator.clear();
        } else if matches!(c, '.' | '_' | '-') {
            separator.push(c);
            if !(matches!(separator.as_str(), "." | "_" | "__") || separator.chars().all(|s| s == '-')) {
                return false;
            }
        } else {
            return false;
        }
    }
    !component.is_empty() && separator.is_empty() && !component.starts_with(['.', '_', '-'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(name: &str) -> String {
        Reference::parse(name).unwrap().to_string()
    }

    #[test]
    fn normalised_as_containerd_and_the_kubelet_do() {
        assert_eq!(full("netmatrix-agent:0.1.0"), "docker.io/library/netmatrix-agent:0.1.0");
        assert_eq!(full("netmatrix-agent"), "docker.io/library/netmatrix-agent:latest");
        assert_eq!(full("netmatrix/agent:0.1.0"), "docker.io/netmatrix/agent:0.1.0");
        assert_eq!(full("index.docker.io/netmatrix/agent:1"), "docker.io/netmatrix/agent:1");
        assert_eq!(full("localhost/agent:dev"), "localhost/agent:dev");
        assert_eq!(full("localhost:5000/team/agent"), "localhost:5000/team/agent:latest");
        assert_eq!(full("registry.example.com/a/b/c:v1.2_3-rc"), "registry.example.com/a/b/c:v1.2_3-rc");
    }

    #[test]
    fn familiar_names_drop_docker_hub_and_library() {
        let familiar = |name: &str| Reference::parse(name).unwrap().familiar();
        assert_eq!(familiar("docker.io/library/netmatrix-agent:0.1.0"), "netmatrix-agent:0.1.0");
        assert_eq!(familiar("netmatrix/agent:0.1.0"), "netmatrix/agent:0.1.0");
        assert_eq!(familiar("localhost:5000/agent:1"), "localhost:5000/agent:1");
        assert_eq!(Reference::parse("netmatrix-agent:0.1.0").unwrap().tag(), "0.1.0");
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        for (name, why) in [
            ("Netmatrix-agent:1", "path components"),
            ("netmatrix-agent:", "bad tag"),
            ("netmatrix-agent:-x", "bad tag"),
            ("agent@sha256:abcd", "digest"),
            ("a..b:1", "path components"),
            ("-agent", "path components"),
            ("reg.io//agent", "path components"),
            ("reg.io:port/agent", "bad registry"),
            ("", "path components"),
        ] {
            let err = Reference::parse(name).unwrap_err();
            assert!(err.contains(why), "{name:?}: {err}");
        }
        assert!(Reference::parse("a__b.c---d:1").is_ok());
    }
}
