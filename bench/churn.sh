#!/usr/bin/env bash
# Convergence under churn (root): `netmatrix churn` of every pattern on a 3-node lab of 4
# namespaces x 15 pods (60 pods), then, where the project's cluster binaries are built
# (hack/kube/build), on a real 3-node cluster with kube-router, kube-proxy in iptables and in
# nftables mode: p50/p99 per pattern and direction side by side. The lab applies a change
# before its apply returns, so its figures are the measurement's own floor (round and probe
# time); a cluster's are its dataplane's.
# Knobs: CHANGES (default 20 on the lab, 10 on clusters), OUT (default a temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$(mktemp -d)}
changes=${CHANGES:-20}
cargo build -q --release -p netmatrix-cli -p netmatrix-agent
export NETMATRIX_AGENT="$PWD/target/release/netmatrix-agent"
netmatrix=$PWD/target/release/netmatrix
shape=(--nodes 3 --namespaces 4 --pods-per-namespace 15)

echo "lab: ${shape[*]}, $changes changes per pattern"
"$netmatrix" churn "${shape[@]}" --changes "$changes" --json "$out/lab.json" --html "$out/lab.html" >"$out/lab.txt"
reports=("$out/lab.json")

if bin=$(hack/kube/build --list >/dev/null 2>&1 && hack/kube/build $(hack/kube/build --list | grep -vx e2e) | tail -n1) && [ -x "$bin/kubelet" ]; then
    agent=$(CARGO_TARGET_DIR="$PWD/target/agent-static" crates/agent/build-static.sh)
    "$netmatrix" image build --agent "$agent" -o "$out/agent.tar" >/dev/null
    for mode in iptables nftables; do
        hack/kube/down >/dev/null
        trap 'hack/kube/down >/dev/null' EXIT
        hack/kube/up --nodes 3 --proxy-mode "$mode" --policy kube-router --image "$out/agent.tar" >/dev/null
        echo "cluster: kube-proxy $mode, kube-router, ${shape[*]}, ${CHANGES:-10} changes per pattern"
        "$netmatrix" churn --kubeconfig /var/lib/netmatrix-kube/nmk/admin.kubeconfig "${shape[@]}" --changes "${CHANGES:-10}" \
            --json "$out/kube-$mode.json" --html "$out/kube-$mode.html" >"$out/kube-$mode.txt" || true
        hack/kube/down >/dev/null
        trap - EXIT
        reports+=("$out/kube-$mode.json")
    done
else
    echo "no cluster: hack/kube/build has not built the cluster binaries"
fi

python3 - "${reports[@]}" <<'EOF'
import json, sys
def f(v):
    return "-" if v is None else f"{v:.1f}"
print(f"{'backend':<16} {'pattern':<14} {'direction':<14} {'changes':>7} {'conv':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'round ms':>9}")
for path in sys.argv[1:]:
    try:
        report = json.load(open(path))
    except (OSError, ValueError) as e:
        print(f"{path}: no report ({e})")
        continue
    name = path.rsplit("/", 1)[-1].removesuffix(".json")
    for p in report["patterns"]:
        setup = p.get("setup") or {}
        if setup.get("not_converged"):
            print(f"{name:<16} {p['pattern']:<14} setup did not converge: {len(setup['not_converged'])} cells, no change made")
            continue
        rounds = sorted(c["round_ms"] for c in p["changes"]) or [0]
        for s in p["summary"]:
            print(f"{name:<16} {p['pattern']:<14} {s.get('family') or s['direction'] or 'all':<14} {s['changes']:>7} {s['converged']:>5} "
                  f"{f(s['p50_ms']):>8} {f(s['p99_ms']):>8} {f(s['max_ms']):>8} {rounds[len(rounds) // 2]:>9.1f}")
EOF
echo "reports: $out"
