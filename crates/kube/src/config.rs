//! Finding the cluster as kubectl does: `--kubeconfig`, else `$KUBECONFIG` (several files,
//! merged), else `~/.kube/config`, else the in-cluster service account; `--context` picks a
//! context. Every request carries the user agent `netmatrix/<version> -- <case-id>`.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::HeaderValue;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::KubeError;

/// How long connecting, and the first answer of the API server, may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Client-side rate limit, so a run never floods the API server: at most this many requests
/// per window (a burst), i.e. 50 a second on average.
const BURST: u64 = 100;
const WINDOW: Duration = Duration::from_secs(2);

/// The case the requests belong to, shared with the layer that writes the user agent.
#[derive(Clone, Default)]
pub struct CaseTag(Arc<RwLock<Option<String>>>);

impl CaseTag {
    pub fn set(&self, case: Option<&str>) {
        *self.0.write().unwrap() = case.map(str::to_owned);
    }

    pub fn user_agent(&self) -> String {
        let version = env!("CARGO_PKG_VERSION");
        match self.0.read().unwrap().as_deref() {
            Some(case) => format!("netmatrix/{version} -- {case}"),
            None => format!("netmatrix/{version}"),
        }
    }
}

/// The configuration kubectl would use with these flags.
pub async fn resolve(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Config, KubeError> {
    let options = KubeConfigOptions { context: context.map(str::to_owned), ..KubeConfigOptions::default() };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| KubeError::Config(format!("--kubeconfig {}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(file, &options).await.map_err(|e| KubeError::Config(format!("--kubeconfig {}: {e}", path.display())))?
        }
        None if context.is_some() => Config::from_kubeconfig(&options).await.map_err(|e| KubeError::Config(format!("--context: {e}")))?,
        None => Config::infer().await.map_err(|e| KubeError::Config(e.to_string()))?,
    };
    Ok(config)
}

/// A client for `config` whose requests carry `tag`'s user agent.
pub fn client(mut config: Config, tag: CaseTag) -> Result<Client, KubeError> {
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let server = config.cluster_url.to_string();
    let builder = ClientBuilder::try_from(config).map_err(|source| KubeError::Refused { server, what: "a client configuration".into(), source })?;
    let layer = tower::util::MapRequestLayer::new(move |mut request: http::Request<kube::client::Body>| {
        if let Ok(value) = HeaderValue::from_str(&tag.user_agent()) {
            request.headers_mut().insert(http::header::USER_AGENT, value);
        }
        request
    });
    Ok(builder.with_layer(&tower::limit::RateLimitLayer::new(BURST, WINDOW)).with_layer(&layer).build())
}

/// Checks that the API server answers, within seconds; returns its version.
pub async fn check_reachable(client: &Client, server: &str) -> Result<String, KubeError> {
    let after = CONNECT_TIMEOUT * 2;
    match tokio::time::timeout(after, client.apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(kube::Error::Api(status))) if status.code == 401 || status.code == 403 => {
            Err(KubeError::Refused { server: server.into(), what: "the credentials".into(), source: kube::Error::Api(status) })
        }
        Ok(Err(e)) => Err(KubeError::Unreachable { server: server.into(), after, reason: error_chain(&e) }),
        Err(_) => Err(KubeError::Unreachable { server: server.into(), after, reason: "no answer".into() }),
    }
}

/// An error and its causes on one line: a connection failure's reason is deep in its chain.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: one
contexts:
- name: one
  context: {cluster: c1, user: u, namespace: team}
- name: two
  context: {cluster: c2, user: u}
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
- name: c2
  cluster: {server: "https://127.0.0.2:7443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: secret}
"#;

    #[tokio::test]
    async fn kubeconfig_and_context_as_kubectl_reads_them() {
        let dir = std::env::temp_dir().join(format!("nm-kubeconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(&path, KUBECONFIG).unwrap();
        let current = resolve(Some(&path), None).await.unwrap();
        assert_eq!((current.cluster_url.to_string().as_str(), current.default_namespace.as_str()), ("https://127.0.0.1:6443/", "team"));
        let two = resolve(Some(&path), Some("two")).await.unwrap();
        assert_eq!(two.cluster_url.to_string(), "https://127.0.0.2:7443/");
        let missing = resolve(Some(&path), Some("three")).await.unwrap_err();
        assert!(missing.is_bad_input() && missing.to_string().contains("three"), "{missing}");
        let absent = resolve(Some(&dir.join("nope")), None).await.unwrap_err();
        assert!(absent.is_bad_input() && absent.to_string().contains("nope"), "{absent}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named_within_seconds() {
        // A port nothing listens on, on loopback: refused at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut config = Config::new(format!("https://127.0.0.1:{port}").parse().unwrap());
        config.accept_invalid_certs = true;
        let server = config.cluster_url.to_string();
        let client = client(config, CaseTag::default()).unwrap();
        let started = std::time::Instant::now();
        let err = check_reachable(&client, &server).await.unwrap_err();
        assert!(started.elapsed() < CONNECT_TIMEOUT * 2 + Duration::from_secs(1));
        let text = err.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains("refused"), "{text}");
    }

    #[test]
    fn the_user_agent_names_the_case() {
        let tag = CaseTag::default();
        assert_eq!(tag.user_agent(), format!("netmatrix/{}", env!("CARGO_PKG_VERSION")));
        tag.set(Some("netpol/deny-all"));
        assert!(tag.user_agent().ends_with(" -- netpol/deny-all"));
    }
}
