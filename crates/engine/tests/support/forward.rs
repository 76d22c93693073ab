//! Test backends that wrap the fake and change one thing about it.

/// Inside `impl Backend for W`, where `W` holds a `FakeBackend` in field `$fake`: the methods
/// such a wrapper passes to the fake unchanged (what it is, its nodes and every object change);
/// the wrapper writes the rest.
macro_rules! forward_to_fake {
    ($fake:ident) => {
        fn kind(&self) -> netmatrix_cluster::BackendKind {
            self.$fake.kind()
        }
        fn nodes(&self) -> &[netmatrix_cluster::Node] {
            self.$fake.nodes()
        }
        fn capabilities(&self) -> &netmatrix_cluster::Capabilities {
            self.$fake.capabilities()
        }
        fn set_namespace(&mut self, name: &str, labels: netmatrix_model::Labels) -> Result<(), netmatrix_cluster::BackendError> {
            self.$fake.set_namespace(name, labels)
        }
        fn create_pods(&mut self, pods: Vec<netmatrix_cluster::PodSpec>) -> Result<(), netmatrix_cluster::BackendError> {
            self.$fake.create_pods(pods)
        }
        fn delete_pod(&mut self, pod: &netmatrix_model::PodKey) -> Result<(), netmatrix_cluster::BackendError> {
            self.$fake.delete_pod(pod)
        }
        fn set_pod_labels(&mut self, pod: &netmatrix_model::PodKey, labels: netmatrix_model::Labels) -> Result<(), netmatrix_cluster::BackendError> {
            self.$fake.set_pod_labels(pod, labels)
        }
        fn apply(&mut self, manifests: Vec<serde_json::Value>) -> Result<(), netmatrix_cluster::BackendError> {
            self.$fake.apply(manifests)
        }
        fn delete(&mut self, kind: netmatrix_cluster::ObjectKind, namespace: &str, name: &str) -> Result<(), netmatrix_cluster::BackendError> {
            self.$fake.delete(kind, namespace, name)
        }
        fn teardown(&mut self) -> Vec<netmatrix_cluster::BackendError> {
            self.$fake.teardown()
        }
        fn abort_handle(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
            None
        }
    };
}
