#!/usr/bin/env bash
# Times loading large manifests with `netmatrix analyze --timings` and prints their peak memory
# against their size (issue 20, item 11: 640k Namespaces, 50 MB, one bad label near the end, took
# 19 s and 1.55 GB to report it). Baseline in the same run, the loader's normal speed: a
# synthetic cluster (pods, ReplicaSets, policies) of SYNTH_PODS pods.
#   bench/load.sh
#   NS=64000 SYNTH_PODS=5000 bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p netmatrix-cli -p netmatrix-synth
bin=${CARGO_TARGET_DIR:-target}/release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ns=${NS:-640000} synth_pods=${SYNTH_PODS:-20000}

# Namespace documents, the one before last with a label value the API server rejects; as a
# stream of documents, and as one List as `kubectl get namespaces -o yaml` writes it.
awk -v n="$ns" 'BEGIN { for (i = 0; i < n; i++) printf "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-%06d\n  labels: {team: %s}\n", i, (i == n - 2 ? "has spaces!" : "blue") }' > "$tmp/stream.yaml"
awk -v n="$ns" 'BEGIN { print "apiVersion: v1\nkind: List\nitems:"; for (i = 0; i < n; i++) printf "- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: ns-%06d\n    labels: {team: %s}\n", i, (i == n - 2 ? "has spaces!" : "blue") }' > "$tmp/list.yaml"
"$bin/netmatrix-synth" --pods "$synth_pods" --policies $((synth_pods / 10)) --yaml > "$tmp/synth.yaml"

printf '%-44s %8s %9s %8s %9s %11s\n' input MB load_ms MB/s peak_MiB peak/input
baseline=
for f in "synth.yaml:synthetic cluster, $synth_pods pods (baseline)" "stream.yaml:$ns Namespace documents, 1 bad label" "list.yaml:a List of $ns Namespaces, 1 bad label"; do
  file=$tmp/${f%%:*}
  "$bin/netmatrix" analyze -f "$file" --timings > /dev/null 2> "$tmp/t" || true
  bytes=$(stat -c %s "$file")
  ms=$(grep -m1 'ms load' "$tmp/t" | awk '{print $2}')
  peak_kb=$(grep -o 'peak memory [0-9]*' "$tmp/t" | grep -o '[0-9]*')
  speed=$(awk "BEGIN {printf \"%.1f\", $bytes / 1e6 / ($ms / 1e3)}")
  printf '%-44s %8.1f %9s %8s %9s %10.1fx\n' "${f#*:}" "$(awk "BEGIN {print $bytes / 1e6}")" "$ms" "$speed" "$((peak_kb / 1024))" \
    "$(awk "BEGIN {print $peak_kb * 1024 / $bytes}")"
  if [ -z "$baseline" ]; then
    baseline=$speed
  else
    echo "  speed against the baseline: $(awk "BEGIN {printf \"%.2f\", $speed / $baseline}")x"
  fi
done
