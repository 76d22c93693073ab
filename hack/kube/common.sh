# Shared by hack/kube/up, down and load-image (sourced). Fixed names and addresses of the one
# cluster a host runs at a time.
NMK_CLUSTER=${NMK_CLUSTER:-nmk}
NMK_ROOT=${NMK_ROOT:-/var/lib/netmatrix-kube}
W=$NMK_ROOT/$NMK_CLUSTER                # all state: certs, configs, logs, pids, node dirs
KUBECONFIG_OUT=$W/admin.kubeconfig
ETCD_PORT=12379; ETCD_PEER_PORT=12380    # loopback
API_PORT=16443                           # apiserver on 127.0.0.1 (host namespace)
FABRIC_NS=nmk-fabric                     # namespace with the bridge joining the nodes
FABRIC_IP=10.200.0.1                     # fabric side; the relay to the apiserver listens on :$API_PORT (the
                                         # "kubernetes" Service endpoint is $FABRIC_IP:$API_PORT)
NODE_NET=10.200.0                        # node i: 10.200.0.(10+i)
POD_CIDR=10.244.0.0/16                   # node i: 10.244.i.0/24
SERVICE_CIDR=10.96.0.0/16
# IPv6 twins (up --ip-family dual), reading like the IPv4 ones: node i fd00:10:200::(10+i), its
# pods fd00:10:244:i::/64.
FABRIC_IP6=fd00:10:200::1
POD_CIDR6=fd00:10:244::/56
SERVICE_CIDR6=fd00:10:96::/112
DNS_IP=10.96.0.10
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
AGNHOST_IMAGE=registry.k8s.io/e2e-test-images/agnhost:nmk
COREDNS_IMAGE=registry.k8s.io/coredns/coredns:v1.14.6
CGROUP_V1=/sys/fs/cgroup
# Host sysctls kubelet changes (restored by down).
HOST_SYSCTLS="vm.overcommit_memory kernel.panic kernel.panic_on_oops"
# Host directories a node binds its own copy over (kubelet/containerd/CNI hard-code them); up
# creates the missing ones (recorded in $W/host-dirs-created) and down removes them if empty.
HOST_BIND_DIRS="/var/lib/kubelet/device-plugins /var/log/pods /var/log/containers /var/lib/cni /run/containerd"

node_ip() { echo "$NODE_NET.$((10 + $1))"; }
node_ip6() { echo "fd00:10:200::$((10 + $1))"; }
# The families up made the cluster with: ipv4 or dual.
ip_family() { cat "$W/ip-family" 2>/dev/null || echo ipv4; }
log() { printf '%s up: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
