#!/usr/bin/env bash
# `netmatrix run` of the default suites on fresh labs (or, with KUBECONFIG set, on that cluster),
# serially and on shards, one after the other in one run (interleaved when repeated): each run's
# wall time (lab up and down, or probe pods made and removed, included), its summary, and its
# time against the serial runs'. What --shards' defaults rest on.
#
#   bench/shards.sh [SHARDS...]     (default: 2 3; REPEAT=N runs each N times, default 1)
#   KUBECONFIG=FILE bench/shards.sh (a cluster, e.g. hack/kube/up's; root not needed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=()
if [ -n "${KUBECONFIG:-}" ]; then
  target=(--kubeconfig "$KUBECONFIG")
else
  [ "$(id -u)" = 0 ] || { echo "shards: must run as root (the labs are network namespaces)" >&2; exit 1; }
fi
if [ $# -gt 0 ]; then shards=("$@"); else shards=(2 3); fi
repeat=${REPEAT:-1}
cargo build -q --release -p netmatrix-cli -p netmatrix-agent --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/netmatrix"
out=$(mktemp -d /tmp/shards-bench.XXXXXX)
echo "shards: ${KUBECONFIG:-fresh labs}, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); output in $out" >&2

now() { date +%s.%N; }
for i in $(seq 1 "$repeat"); do
  for n in 1 "${shards[@]}"; do
    t0=$(now)
    code=0
    "$bin" run "${target[@]}" --shards "$n" --tables none --json "$out/s$n-$i.json" > "$out/s$n-$i.log" 2>&1 || code=$?
    t1=$(now)
    echo "$n $i $t0 $t1 $code" >> "$out/times"
  done
done

python3 - "$out" <<'PY'
import json, sys, collections
out = sys.argv[1]
runs = collections.defaultdict(list)
for line in open(f"{out}/times"):
    n, i, t0, t1, code = line.split()
    s = json.load(open(f"{out}/s{n}-{i}.json"))["summary"]
    summary = "cases:{cases} passed:{passed} failed:{failed} skipped:{skipped} probes:{probes} wrong:{wrong}".format(**s)
    runs[int(n)].append(float(t1) - float(t0))
    print(f"--shards {n} (run {i}): {float(t1) - float(t0):6.1f} s, exit {code}, {summary}")
serial = sum(runs[1]) / len(runs[1])
for n, times in sorted(runs.items()):
    mean = sum(times) / len(times)
    print(f"--shards {n}: mean {mean:6.1f} s over {len(times)}, {serial / mean:.2f}x the serial run's speed")
PY
