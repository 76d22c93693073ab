//! Input the API server would reject is rejected (issue "Reliability: every input the API server
//! would reject is rejected"), and objects the API server produced always load.

use netmatrix_model::{Validation, parse_files_with, parse_str};

/// The loader's errors, one a line, or "ok".
fn outcome(text: &str) -> String {
    parse_str("p.yaml", text).map_or_else(|e| e.to_string(), |_| "ok".to_owned())
}

const MISSPELLED: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n\
                          spec:\n  podSelektor: {matchLabels: {app: web}}\n  ingres: [{from: [{podSelector: {}}]}]\n";

/// Defect 6: `ingres` made the policy deny all ingress; kubectl's field validation rejects it.
#[test]
fn misspelled_fields_are_errors_by_default() {
    assert_eq!(
        outcome(MISSPELLED),
        "p.yaml: document 1 (NetworkPolicy x/p): field spec.ingres: unknown field (did you mean ingress?)\n\
         p.yaml: document 1 (NetworkPolicy x/p): field spec.podSelektor: unknown field (did you mean podSelector?)"
    );
    let nested = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n\
                  spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, exept: [10.1.0.0/16]}}], ports: [{port: 53, protocl: UDP}]}]}\n";
    assert_eq!(
        outcome(nested),
        "p.yaml: document 1 (NetworkPolicy default/p): field spec.egress[0].ports[0].protocl: unknown field (did you mean protocol?)\n\
         p.yaml: document 1 (NetworkPolicy default/p): field spec.egress[0].to[0].ipBlock.exept: unknown field (did you mean except?)"
    );
    let list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: s}, spec: {ports: [{port: 80, targetPrt: 8080}]}}\n";
    assert_eq!(outcome(list), "p.yaml: document 1 (Service default/s): field items[0].spec.ports[0].targetPrt: unknown field (did you mean targetPort?)");
    let admin = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\n\
                 spec: {priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, form: [{namespaces: {}}]}]}\n";
    assert!(outcome(admin).contains("field spec.ingress[0].form: unknown field (did you mean from?)"), "{}", outcome(admin));
}

#[test]
fn validation_warn_and_ignore_read_the_known_fields() {
    let files = [("p.yaml".to_owned(), MISSPELLED.to_owned())];
    let warned = parse_files_with(&files, Validation::Warn).unwrap();
    assert_eq!(
        warned.warnings,
        [
            "p.yaml: document 1: NetworkPolicy x/p: spec.ingres: unknown field (did you mean ingress?)",
            "p.yaml: document 1: NetworkPolicy x/p: spec.podSelektor: unknown field (did you mean podSelector?)",
        ]
    );
    // As before: the policy selects every pod and, without ingress rules, denies all ingress.
    let ignored = parse_files_with(&files, Validation::Ignore).unwrap();
    assert!(ignored.warnings.is_empty());
    assert_eq!(ignored.policies[0].ingress.as_deref(), Some(&[][..]));
    assert!(ignored.policies[0].pod_selector.is_empty());
}

/// A Pod as `kubectl get pod -o yaml` prints it: every field the API server fills in.
const FULL_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubectl.kubernetes.io/restartedAt: "2026-12-01T10:00:00Z"
  creationTimestamp: "2026-12-01T10:00:00Z"
  generateName: web-7d4b9c8f6d-
  generation: 1
  labels:
    app: web
    pod-template-hash: 7d4b9c8f6d
    app.kubernetes.io/name: web
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:generateName: {}
        f:labels:
          .: {}
          f:app: {}
      f:spec:
        f:containers:
          k:{"name":"web"}:
            .: {}
            f:image: {}
    manager: kube-controller-manager
    operation: Update
    time: "2026-12-01T10:00:00Z"
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:status:
        f:conditions:
          k:{"type":"Ready"}:
            f:status: {}
    manager: kubelet
    operation: Update
    subresource: status
    time: "2026-12-01T10:00:05Z"
  name: web-7d4b9c8f6d-x2k9p
  namespace: shop
  ownerReferences:
  - apiVersion: apps/v1
    blockOwnerDeletion: true
    controller: true
    kind: ReplicaSet
    name: web-7d4b9c8f6d
    uid: 0f1e2d3c-4b5a-4968-8776-655443322110
  resourceVersion: "81234"
  uid: 1a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d
spec:
  containers:
  - image: registry.k8s.io/e2e-test-images/agnhost:2.53
    imagePullPolicy: IfNotPresent
    name: web
    args: [netexec, --http-port=8080]
    ports:
    - containerPort: 8080
      name: http
      protocol: TCP
    readinessProbe:
      failureThreshold: 3
      httpGet: {path: /, port: http, scheme: HTTP}
      periodSeconds: 10
      successThreshold: 1
      timeoutSeconds: 1
    resources:
      limits: {cpu: 100m, memory: 64Mi}
      requests: {cpu: 10m, memory: 16Mi}
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
      runAsNonRoot: true
      seccompProfile: {type: RuntimeDefault}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    volumeMounts:
    - mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      name: kube-api-access-abcde
      readOnly: true
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  initContainers:
  - image: busybox:1.36
    name: init
    command: [sh, -c, "true"]
    restartPolicy: Always
    ports: [{containerPort: 9090, name: metrics}]
  nodeName: kind-worker
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext: {}
  serviceAccount: default
  serviceAccountName: default
  terminationGracePeriodSeconds: 30
  tolerations:
  - {effect: NoExecute, key: node.kubernetes.io/not-ready, operator: Exists, tolerationSeconds: 300}
  topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: web}}}
  volumes:
  - name: kube-api-access-abcde
    projected:
      defaultMode: 420
      sources:
      - serviceAccountToken: {expirationSeconds: 3607, path: token}
status:
  conditions:
  - {lastProbeTime: null, lastTransitionTime: "2026-12-01T10:00:03Z", status: "True", type: PodReadyToStartContainers}
  - {lastProbeTime: null, lastTransitionTime: "2026-12-01T10:00:01Z", status: "True", type: Initialized}
  - {lastProbeTime: null, lastTransitionTime: "2026-12-01T10:00:05Z", status: "True", type: Ready}
  - {lastProbeTime: null, lastTransitionTime: "2026-12-01T10:00:05Z", status: "True", type: ContainersReady}
  - {lastProbeTime: null, lastTransitionTime: "2026-12-01T10:00:00Z", status: "True", type: PodScheduled}
  containerStatuses:
  - containerID: containerd://4f3e2d1c
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    imageID: registry.k8s.io/e2e-test-images/agnhost@sha256:99c6b4bb4a1e1df3f0b3752168c89358794d02258ebebc26bf21c29399011a85
    lastState: {}
    name: web
    ready: true
    restartCount: 0
    started: true
    state:
      running: {startedAt: "2026-12-01T10:00:04Z"}
    volumeMounts:
    - {mountPath: /var/run/secrets/kubernetes.io/serviceaccount, name: kube-api-access-abcde, readOnly: true, recursiveReadOnly: Disabled}
  hostIP: 172.18.0.3
  hostIPs: [{ip: 172.18.0.3}]
  phase: Running
  podIP: 10.244.1.7
  podIPs: [{ip: 10.244.1.7}, {ip: "fd00:10:244:1::7"}]
  qosClass: Burstable
  startTime: "2026-12-01T10:00:00Z"
"#;

/// A Node as `kubectl get node -o yaml` prints it.
const FULL_NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  annotations:
    kubeadm.alpha.kubernetes.io/cri-socket: unix:///run/containerd/containerd.sock
    node.alpha.kubernetes.io/ttl: "0"
    volumes.kubernetes.io/controller-managed-attach-detach: "true"
  creationTimestamp: "2026-12-01T09:00:00Z"
  labels:
    beta.kubernetes.io/arch: amd64
    beta.kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: kind-worker
    kubernetes.io/os: linux
    node-role.kubernetes.io/control-plane: ""
    topology.kubernetes.io/zone: eu-west-1a
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata: {f:labels: {f:kubernetes.io/hostname: {}}}
    manager: kubelet
    operation: Update
    time: "2026-12-01T09:00:00Z"
  name: kind-worker
  resourceVersion: "90210"
  uid: 2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: [10.244.1.0/24, "fd00:10:244:1::/64"]
  providerID: kind://docker/kind/kind-worker
  taints:
  - {effect: NoSchedule, key: node-role.kubernetes.io/control-plane}
status:
  addresses:
  - {address: 172.18.0.3, type: InternalIP}
  - {address: "fc00:f853:ccd:e793::3", type: InternalIP}
  - {address: kind-worker, type: Hostname}
  allocatable: {cpu: "8", ephemeral-storage: 263112772Ki, hugepages-2Mi: "0", memory: 32734440Ki, pods: "110"}
  capacity: {cpu: "8", ephemeral-storage: 263112772Ki, hugepages-2Mi: "0", memory: 32734440Ki, pods: "110"}
  conditions:
  - {lastHeartbeatTime: "2026-12-01T10:00:00Z", lastTransitionTime: "2026-12-01T09:00:00Z", message: kubelet has sufficient memory available, reason: KubeletHasSufficientMemory, status: "False", type: MemoryPressure}
  - {lastHeartbeatTime: "2026-12-01T10:00:00Z", lastTransitionTime: "2026-12-01T09:00:30Z", message: kubelet is posting ready status, reason: KubeletReady, status: "True", type: Ready}
  daemonEndpoints:
    kubeletEndpoint: {Port: 10250}
  features: {supplementalGroupsPolicy: true}
  images:
  - names: [registry.k8s.io/e2e-test-images/agnhost@sha256:99c6b4bb, registry.k8s.io/e2e-test-images/agnhost:2.53]
    sizeBytes: 53170562
  nodeInfo: {architecture: amd64, bootID: 3c4d, containerRuntimeVersion: "containerd://2.1.1", kernelVersion: 6.8.0, kubeProxyVersion: "", kubeletVersion: v1.34.0, machineID: 4d5e, operatingSystem: linux, osImage: Debian GNU/Linux 12 (bookworm), systemUUID: 5e6f}
  runtimeHandlers:
  - features: {recursiveReadOnlyMounts: true, userNamespaces: true}
    name: runc
"#;

/// The other kinds the Kubernetes backend lists, as k8s-openapi serialises them: JSON documents.
const API_OBJECTS: &str = r#"
---
{"apiVersion":"v1","kind":"Namespace","metadata":{"creationTimestamp":"2026-12-01T10:00:00Z","labels":{"app.kubernetes.io/managed-by":"netmatrix","kubernetes.io/metadata.name":"nm-r1-shop","netmatrix.io/run":"r1"},"name":"shop","resourceVersion":"1","uid":"u1"},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}
---
{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop","uid":"u2"},"spec":{"clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],"internalTrafficPolicy":"Cluster","ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","ports":[{"appProtocol":"http","name":"http","port":80,"protocol":"TCP","targetPort":"http"}],"selector":{"app":"web"},"sessionAffinity":"None","trafficDistribution":"PreferClose","type":"ClusterIP"},"status":{"loadBalancer":{}}}
---
{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","addressType":"IPv4","endpoints":[{"addresses":["10.244.1.7"],"conditions":{"ready":true,"serving":true,"terminating":false},"hints":{"forZones":[{"name":"eu-west-1a"}]},"nodeName":"kind-worker","targetRef":{"kind":"Pod","name":"web-7d4b9c8f6d-x2k9p","namespace":"shop","uid":"u3"},"zone":"eu-west-1a"}],"metadata":{"generateName":"web-","labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io","kubernetes.io/service-name":"web"},"name":"web-abcde","namespace":"shop","ownerReferences":[{"apiVersion":"v1","blockOwnerDeletion":true,"controller":true,"kind":"Service","name":"web","uid":"u2"}]},"ports":[{"appProtocol":"http","name":"http","port":8080,"protocol":"TCP"}]}
---
{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"generation":1,"name":"allow-web","namespace":"shop"},"spec":{"egress":[{"ports":[{"endPort":9000,"port":8000,"protocol":"TCP"}],"to":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.1.0.0/16"]}}]}],"ingress":[{"from":[{"namespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["shop"]}]},"podSelector":{}}]}],"podSelector":{"matchLabels":{"app":"web"}},"policyTypes":["Ingress","Egress"]}}
---
{"apiVersion":"policy.networking.k8s.io/v1alpha1","kind":"AdminNetworkPolicy","metadata":{"name":"a","generation":1},"spec":{"priority":5,"subject":{"pods":{"namespaceSelector":{},"podSelector":{"matchLabels":{"app":"web"}}}},"egress":[{"name":"dns","action":"Allow","to":[{"networks":["10.96.0.0/12"]},{"nodes":{"matchExpressions":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists"}]}}],"ports":[{"portNumber":{"protocol":"UDP","port":53}},{"portRange":{"protocol":"TCP","start":8000,"end":9000}},{"namedPort":"http"}]}]},"status":{"conditions":[]}}
---
{"apiVersion":"policy.networking.k8s.io/v1alpha2","kind":"ClusterNetworkPolicy","metadata":{"name":"c"},"spec":{"tier":"Baseline","priority":10,"subject":{"namespaces":{}},"ingress":[{"name":"r","action":"Accept","from":[{"namespaces":{}}],"protocols":[{"tcp":{"destinationPort":{"range":{"start":80,"end":90}}}},{"destinationNamedPort":"http"}]}]}}
"#;

#[test]
fn objects_as_the_api_server_writes_them_load_strictly() {
    let text = format!("{FULL_POD}---{FULL_NODE}{API_OBJECTS}");
    let cluster = parse_str("cluster https://127.0.0.1:6443", &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(cluster.warnings.is_empty(), "{:?}", cluster.warnings);
    let pod = &cluster.pods[0];
    assert_eq!((pod.ports.len(), pod.ips.len(), pod.ready, pod.workload.kind.as_str()), (1, 2, true, "ReplicaSet"));
    assert_eq!(cluster.nodes[0].addresses.len(), 2);
    assert_eq!((cluster.services.len(), cluster.endpoint_slices.len(), cluster.policies.len(), cluster.admin_policies.len()), (1, 1, 1, 2));
}

/// Defect 7: names and labels the API server's ValidateObjectMeta rejects.
#[test]
fn invalid_names_and_labels_are_errors() {
    let cases = [
        (
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: NS_Upper}\n",
            "(Namespace NS_Upper): field metadata.name: invalid name \"NS_Upper\": must contain only lower-case letters, digits and '-'",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: NS_Upper}\n",
            "field metadata.namespace: invalid namespace \"NS_Upper\": must contain only lower-case letters, digits and '-'",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: has spaces!}}\n",
            "field metadata.labels: invalid value \"has spaces!\" of label app: must contain only letters, digits, '-', '_' and '.'",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {bad key!: x}}\n",
            "field metadata.labels: invalid label key \"bad key!\": the name must contain only letters, digits, '-', '_' and '.'",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {Example.com/app: x}}\n",
            "invalid label key \"Example.com/app\": the prefix before '/' part \"Example\" must contain only lower-case letters, digits and '-'",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {a/b/c: x}}\n",
            "invalid label key \"a/b/c\": must be a name with an optional DNS subdomain prefix and '/' (e.g. example.com/name)",
        ),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: -x}}\n", "invalid value \"-x\" of label app: must start and end with a letter or digit"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\n",
            "field metadata.name: invalid name \"Web_1\": part \"Web_1\" must contain only lower-case letters, digits and '-'",
        ),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\n", "field metadata.name: invalid name \"1web\": must start with a letter"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {app: a b}}\n", "field spec.selector: invalid value \"a b\" of label app"),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {metadata: {labels: {'k!': v}}}}\n",
            "field spec.template.metadata.labels: invalid label key \"k!\"",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {matchLabels: {app: has spaces!}}}\n",
            "field spec.podSelector.matchLabels: invalid value \"has spaces!\" of label app",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {matchExpressions: [{key: 'bad key', operator: In, values: [ok, 'not ok']}]}}\n",
            "field spec.podSelector.matchExpressions[0].key: invalid label key \"bad key\"",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {matchExpressions: [{key: app, operator: In, values: [ok, 'not ok']}]}}\n",
            "field spec.podSelector.matchExpressions[0].values[1]: invalid label value \"not ok\"",
        ),
    ];
    for (text, want) in cases {
        let got = outcome(text);
        assert!(got.contains(want), "{text}\ngot:  {got}\nwant: {want}");
    }
    // Empty label values, prefixed keys, 63-character label parts and subdomain parts longer than that are valid.
    let long_pod = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {}-0}}\n", "a".repeat(70));
    assert_eq!(outcome(&long_pod), "ok");
    let valid = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: a.b-c, labels: {{node-role.kubernetes.io/control-plane: '', x: {}}}}}\n", "a".repeat(63));
    assert_eq!(outcome(&valid), "ok");
    assert!(
        outcome(&format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p, labels: {{x: {}}}}}\n", "a".repeat(64)))
            .contains("must be no more than 63 characters")
    );
}

/// Defect 7: each kind has one API version; a kind spelled in another case is no kind at all.
#[test]
fn api_versions_and_kinds_are_checked() {
    let cases = [
        (
            "networking.k8s.io/v9",
            "NetworkPolicy",
            "field apiVersion: \"networking.k8s.io/v9\" is not an API version of NetworkPolicy (want networking.k8s.io/v1)",
        ),
        ("extensions/v1beta1", "NetworkPolicy", "field apiVersion: \"extensions/v1beta1\" is not an API version of NetworkPolicy (want networking.k8s.io/v1)"),
        (
            "policy.networking.k8s.io/v1alpha2",
            "AdminNetworkPolicy",
            "field apiVersion: \"policy.networking.k8s.io/v1alpha2\" is not an API version of AdminNetworkPolicy (want policy.networking.k8s.io/v1alpha1)",
        ),
        ("v1", "Deployment", "field apiVersion: \"v1\" is not an API version of Deployment (want apps/v1)"),
        ("networking.k8s.io/v1", "networkpolicy", "field kind: unknown kind \"networkpolicy\" (did you mean NetworkPolicy?)"),
        ("v1", "POD", "field kind: unknown kind \"POD\" (did you mean Pod?)"),
    ];
    for (api_version, kind, want) in cases {
        let got = outcome(&format!("apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: p}}\nspec: {{podSelector: {{}}}}\n"));
        assert!(got.ends_with(want), "{api_version} {kind}\ngot:  {got}\nwant: {want}");
    }
    // Items of a typed list take the list's version; kinds the model does not read stay ignored.
    assert_eq!(outcome("apiVersion: v1\nkind: PodList\nitems: [{metadata: {name: p}}]\n"), "ok");
    assert!(outcome("apiVersion: apps/v1\nkind: PodList\nitems: [{metadata: {name: p}}]\n").ends_with("is not an API version of Pod (want v1)"));
    assert_eq!(outcome("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"), "ok");
}

/// Defect 10: YAML errors say what is wrong with the file, not how the parser is configured.
#[test]
fn yaml_errors_are_in_the_users_terms() {
    let deep = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nx: {}{}\n", "[".repeat(100), "]".repeat(100));
    let cases = [
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nkind: Pod\n", "p.yaml: not valid YAML: line 4 column 1: duplicate key kind"),
        (deep.as_str(), "p.yaml: not valid YAML: line 4 column 67: the document is too large or too deeply nested (limit: 64 levels of nesting)"),
        ("a: [\n", "p.yaml: not valid YAML: line 1 column 4: unclosed bracket '['"),
    ];
    for (text, want) in cases {
        assert_eq!(outcome(text), want);
    }
    // JSON too: serde_json alone keeps the last of duplicate keys.
    let json = "{\"apiVersion\": \"v1\", \"kind\": \"Pod\",\n \"metadata\": {\"name\": \"a\", \"name\": \"b\"}}";
    let got = parse_str("p.json", json).map(|_| ()).map_err(|e| e.to_string());
    assert_eq!(got, Err("p.json: not valid JSON: duplicate key name at line 2 column 33".to_owned()));
    let nested = r#"{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"x": "1"}}, "status": {"podIP": "10.0.0.1"}}]}"#;
    assert_eq!(parse_str("p.json", nested).unwrap().pods[0].ips.len(), 1);
}

/// YAML 1.1 reads `y`, `on`, `no` as booleans, as kubectl does: the error says so and shows the
/// quoted form.
#[test]
fn booleans_where_strings_are_wanted_show_the_quoted_form() {
    let cases = [
        (
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: y}\n",
            "(Namespace <unnamed>): field metadata.name: y is read as the boolean true (YAML 1.1); quote it for the string: \"y\"",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app.kubernetes.io/enabled: on}}\n",
            "field metadata.labels.app.kubernetes.io/enabled: on is read as the boolean true",
        ),
        (
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: No}}\n",
            "field items[0].metadata.namespace: No is read as the boolean false (YAML 1.1); quote it for the string: \"No\"",
        ),
        // Written as a boolean: nothing to show.
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: true}\n", "field metadata.name: invalid type: boolean `true`, expected a string"),
    ];
    for (text, want) in cases {
        let got = outcome(text);
        assert!(got.contains(want), "{text}\ngot:  {got}\nwant: {want}");
    }
}
