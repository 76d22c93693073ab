#!/usr/bin/env bash
# The upstream e2e NetworkPolicy tests and netmatrix's netpol suite, side by side on the same
# real cluster (hack/kube/up: 3 nodes, kube-proxy iptables, kube-router's firewall), one after the
# other in one run: both results, both wall times, and their ratio.
#
#   bench/kube-vs-e2e.sh [GINKGO-FOCUS]     (root; default: every TCP and UDP Netpol spec)
#
# The e2e binary is the upstream one (hack/kube/build e2e), its agnhost image the built agnhost
# imported under the name the tests ask for (registry.k8s.io/e2e-test-images/agnhost:2.66.1, from
# test/utils/image/manifest.go of v1.37.2). SCTP specs are skipped: this kernel has no SCTP module,
# and netmatrix skips its SCTP case for the same reason. Brings a cluster up and takes it down;
# refuses to start if one is up.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
focus=${1:-'\[Feature:NetworkPolicy\]'}
skip='SCTP'
[ "$(id -u)" = 0 ] || { echo "kube-vs-e2e: must run as root" >&2; exit 1; }
bin=$("$root/hack/kube/build" | tail -n1)
"$root/hack/kube/build" e2e >/dev/null
out=$(mktemp -d /tmp/kube-vs-e2e.XXXXXX)
echo "kube-vs-e2e: output in $out" >&2

cargo build -q --release -p netmatrix-cli --manifest-path "$root/Cargo.toml"
agent=$(CARGO_TARGET_DIR="$root/target/agent-static" "$root/crates/agent/build-static.sh" | tail -n1)
"$root/target/release/netmatrix" image build --agent "$agent" -o "$out/agent.tar"
python3 "$root/hack/kube/mkimage.py" "$out/agnhost.tar" registry.k8s.io/e2e-test-images/agnhost:2.66.1 "$bin/agnhost" '["/agnhost"]'

"$root/hack/kube/up" --nodes 3 --proxy-mode iptables --policy kube-router --image "$out/agent.tar" --image "$out/agnhost.tar" >&2
trap '"$root/hack/kube/down" >&2' EXIT
kubeconfig=/var/lib/netmatrix-kube/nmk/admin.kubeconfig

now() { date +%s.%N; }
t0=$(now)
set +e
# --ginkgo.timeout: a deadline for the whole suite, so the benchmark never hangs.
"$bin/e2e.test" --kubeconfig "$kubeconfig" --provider skeleton --report-dir "$out/e2e" \
  --ginkgo.focus "$focus" --ginkgo.skip "$skip" --ginkgo.timeout 3h --ginkgo.no-color \
  > "$out/e2e.log" 2>&1
e2e_code=$?
t1=$(now)
"$root/target/release/netmatrix" run --kubeconfig "$kubeconfig" --suite netpol --tables none \
  --json "$out/netmatrix.json" > "$out/netmatrix.log" 2>&1
nm_code=$?
t2=$(now)
set -e

e2e_specs=$(grep -Eo 'Ran [0-9]+ of [0-9]+ Specs' "$out/e2e.log" | tail -n1)
e2e_result=$(grep -Eo '[0-9]+ Passed \| [0-9]+ Failed \| [0-9]+ Pending \| [0-9]+ Skipped' "$out/e2e.log" | tail -n1)
nm_result=$(python3 -c 'import json,sys; print("{cases} cases: {passed} passed, {failed} failed, {skipped} skipped; {probes} probes, {wrong} wrong".format(**json.load(open(sys.argv[1]))["summary"]))' "$out/netmatrix.json")
e2e_s=$(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.0f}")' "$t0" "$t1")
nm_s=$(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.0f}")' "$t1" "$t2")
printf 'upstream e2e (focus %s, skip %s): %s s, exit %s; %s; %s\n' "$focus" "$skip" "$e2e_s" "$e2e_code" "$e2e_specs" "$e2e_result"
printf 'netmatrix run --suite netpol: %s s, exit %s; %s\n' "$nm_s" "$nm_code" "$nm_result"
# Per test too: a focused e2e run and the whole netmatrix suite differ in how much they cover.
e2e_n=$(grep -Eo 'Ran [0-9]+' <<<"$e2e_specs" | grep -Eo '[0-9]+' || echo 0)
nm_n=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; print(s["cases"] - s["skipped"])' "$out/netmatrix.json")
python3 - "$e2e_s" "$nm_s" "$e2e_n" "$nm_n" <<'PY'
import sys
e2e, nm, e2e_n, nm_n = map(float, sys.argv[1:])
print(f"ratio (e2e / netmatrix wall time): {e2e / nm:.1f}x")
if e2e_n and nm_n:
    print(f"per test: e2e {e2e / e2e_n:.1f} s/spec, netmatrix {nm / nm_n:.1f} s/case: {e2e / e2e_n / (nm / nm_n):.1f}x")
PY
