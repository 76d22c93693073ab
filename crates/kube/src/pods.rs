//! Probe pods: the manifest (the `restricted` Pod Security Standard, pinned to its node) and
//! what a pod's status says about its start.

use k8s_openapi::api::core::v1::Pod;
use netmatrix_cluster::PodSpec;
use netmatrix_model::Protocol;
use serde_json::{Value, json};

/// The container that runs the agent, and the path of the agent (or of agnhost) in its image.
pub const CONTAINER: &str = "agent";
pub const AGENT: &str = "/netmatrix-agent";
pub const AGNHOST: &str = "/agnhost";

/// Waiting reasons that never resolve by waiting longer.
const STUCK: [&str; 6] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError"];

#[derive(Debug, Clone)]
pub struct PodOptions {
    pub image: String,
    pub image_pull_secret: Option<String>,
    pub tolerate_taints: bool,
    /// The image is the upstream agnhost, serving as the NetworkPolicy e2e tests do
    /// (`agnhost porter`), probed one `agnhost connect` exec per probe.
    pub agnhost: bool,
}

/// The manifest of `spec` in namespace `namespace` (its real name), labelled `labels` too.
pub fn manifest(spec: &PodSpec, namespace: &str, labels: &Value, options: &PodOptions) -> Value {
    let list = |protocol: Protocol| spec.ports.iter().filter(|p| p.protocol == protocol).map(|p| p.port.to_string()).collect::<Vec<_>>().join(",");
    let mut args = vec!["serve".to_owned(), "--name".to_owned(), spec.key().to_string()];
    for (flag, protocol) in [("--tcp", Protocol::Tcp), ("--udp", Protocol::Udp), ("--sctp", Protocol::Sctp)] {
        let ports = list(protocol);
        if !ports.is_empty() {
            args.extend([flag.to_owned(), ports]);
        }
    }
    let ports: Vec<Value> = spec
        .ports
        .iter()
        .map(|p| {
            let mut port = json!({"containerPort": p.port, "protocol": p.protocol.as_str()});
            if let Some(name) = &p.name {
                port["name"] = json!(name);
            }
            port
        })
        .collect();
    let mut all_labels = labels.clone();
    for (k, v) in &spec.labels {
        all_labels[k] = json!(v);
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": all_labels},
        "spec": {
            "nodeName": spec.node,
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": false,
            "containers": [{
                "name": CONTAINER,
                "image": options.image,
                "imagePullPolicy": "IfNotPresent",
                "command": [AGENT],
                "args": args,
                "ports": ports,
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}},
            }],
        },
    });
    if options.agnhost {
        // As the upstream NetworkPolicy e2e tests serve: one porter, a variable per port.
        let env: Vec<Value> = spec.ports.iter().map(|p| json!({"name": format!("SERVE_{}_PORT_{}", p.protocol.as_str(), p.port), "value": "foo"})).collect();
        let container = &mut pod["spec"]["containers"][0];
        container["command"] = json!([AGNHOST, "porter"]);
        container["args"] = json!([]);
        container["env"] = json!(env);
    }
    if spec.host_network {
        // A hostNetwork pod serves on the node's own ports below 1024: it needs root's
        // NET_BIND_SERVICE, which only a privileged namespace admits.
        pod["spec"]["hostNetwork"] = json!(true);
        pod["spec"]["containers"][0]["securityContext"] = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, "readOnlyRootFilesystem": true, "runAsUser": 0});
    } else {
        // The restricted Pod Security Standard; ports 80 and 81 through the safe sysctl.
        pod["spec"]["securityContext"] = json!({
            "runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
        });
        pod["spec"]["containers"][0]["securityContext"] =
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true, "runAsNonRoot": true});
    }
    if let Some(secret) = &options.image_pull_secret {
        pod["spec"]["imagePullSecrets"] = json!([{"name": secret}]);
    }
    if options.tolerate_taints {
        pod["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
    }
    pod
}

/// Where a pod is on its way to serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Ready,
    Waiting,
    /// It will not start by waiting: the reason.
    Stuck(String),
}

pub fn start(pod: &Pod) -> Start {
    let Some(status) = &pod.status else { return Start::Waiting };
    if status.phase.as_deref() == Some("Failed") {
        return Start::Stuck(format!("failed: {}", status.message.clone().or(status.reason.clone()).unwrap_or_default()));
    }
    let conditions = status.conditions.iter().flatten();
    if let Some(c) = conditions.clone().find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")) {
        return Start::Stuck(format!("unschedulable: {}", c.message.clone().unwrap_or_default()));
    }
    for container in status.container_statuses.iter().flatten() {
        let waiting = container.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(w) = waiting.filter(|w| w.reason.as_deref().is_some_and(|r| STUCK.contains(&r))) {
            return Start::Stuck(format!("{}: {}", w.reason.clone().unwrap_or_default(), w.message.clone().unwrap_or_default()));
        }
    }
    if conditions.clone().any(|c| c.type_ == "Ready" && c.status == "True") { Start::Ready } else { Start::Waiting }
}

#[cfg(test)]
mod tests {
    use netmatrix_model::{ContainerPort, Labels};

    use super::*;

    fn spec(host_network: bool) -> PodSpec {
        PodSpec {
            namespace: "x".into(),
            name: "a".into(),
            labels: Labels::from([("pod".to_owned(), "a".to_owned())]),
            node: "worker-1".into(),
            ports: vec![
                ContainerPort { name: Some("serve-80-tcp".into()), port: 80, protocol: Protocol::Tcp },
                ContainerPort { name: Some("serve-80-udp".into()), port: 80, protocol: Protocol::Udp },
                ContainerPort { name: Some("serve-81-tcp".into()), port: 81, protocol: Protocol::Tcp },
            ],
            host_network,
        }
    }

    fn options() -> PodOptions {
        PodOptions { image: "netmatrix-agent:0.1.0".into(), image_pull_secret: Some("regcred".into()), tolerate_taints: false, agnhost: false }
    }

    #[test]
    fn agnhost_pods_serve_as_the_upstream_e2e_tests_do() {
        let pod = manifest(
            &spec(false),
            "nm-r1-x",
            &json!({}),
            &PodOptions { image: "registry.k8s.io/e2e-test-images/agnhost:2.66.1".into(), agnhost: true, ..options() },
        );
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["/agnhost", "porter"]));
        assert_eq!(c["env"][1], json!({"name": "SERVE_UDP_PORT_80", "value": "foo"}));
        assert_eq!(c["ports"][0]["name"], "serve-80-tcp", "the same port names as the agent's pods");
        assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true, "still restricted");
    }

    #[test]
    fn probe_pods_are_restricted_and_pinned() {
        let pod = manifest(&spec(false), "nm-r1-x", &json!({"netmatrix.io/run": "r1"}), &options());
        assert_eq!(pod["metadata"]["namespace"], "nm-r1-x");
        assert_eq!(pod["metadata"]["labels"], json!({"netmatrix.io/run": "r1", "pod": "a"}));
        assert_eq!(pod["spec"]["nodeName"], "worker-1");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["args"], json!(["serve", "--name", "x/a", "--tcp", "80,81", "--udp", "80"]), "the agent answers with the short name");
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(
            (c["securityContext"]["allowPrivilegeEscalation"].clone(), c["securityContext"]["readOnlyRootFilesystem"].clone()),
            (json!(false), json!(true))
        );
        let security = &pod["spec"]["securityContext"];
        assert_eq!((security["runAsNonRoot"].clone(), security["seccompProfile"]["type"].clone()), (json!(true), json!("RuntimeDefault")));
        assert_eq!(security["sysctls"][0]["name"], "net.ipv4.ip_unprivileged_port_start");
        assert_eq!(c["ports"][1], json!({"containerPort": 80, "protocol": "UDP", "name": "serve-80-udp"}));
        assert_eq!(pod["spec"]["imagePullSecrets"][0]["name"], "regcred");
        assert!(pod["spec"]["tolerations"].is_null());
        // It is a Pod as the API reads it.
        let _: Pod = serde_json::from_value(pod).unwrap();
    }

    #[test]
    fn host_network_pods_bind_the_nodes_ports() {
        let pod = manifest(&spec(true), "nm-r1-host", &json!({}), &PodOptions { tolerate_taints: true, ..options() });
        assert_eq!(pod["spec"]["hostNetwork"], true);
        assert!(pod["spec"]["securityContext"].is_null(), "no sysctl: the node's network is not the pod's");
        assert_eq!(pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"], json!(["NET_BIND_SERVICE"]));
        assert_eq!(pod["spec"]["tolerations"], json!([{"operator": "Exists"}]));
    }

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "a"}, "status": status})).unwrap()
    }

    #[test]
    fn starts_are_read_from_the_status() {
        assert_eq!(start(&pod(json!({"phase": "Pending"}))), Start::Waiting);
        assert_eq!(start(&pod(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}))), Start::Ready);
        let pulling = json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"netmatrix-agent:0.1.0\""}}}]});
        assert!(matches!(start(&pod(pulling)), Start::Stuck(r) if r.starts_with("ImagePullBackOff: Back-off pulling")));
        let creating = json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]});
        assert_eq!(start(&pod(creating)), Start::Waiting);
        let unschedulable = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available"}]});
        assert!(matches!(start(&pod(unschedulable)), Start::Stuck(r) if r.contains("0/3 nodes")));
    }
}
