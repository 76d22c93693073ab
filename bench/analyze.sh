#!/usr/bin/env bash
# Times `netmatrix analyze` on seeded synthetic clusters (pods over ~100 namespaces, ~30 label
# sets per namespace, pods owned by ReplicaSets) and prints each phase and peak memory.
# Where network-config-analyzer is installed (.venv/bin/nca, made by scripts/test, or $NETMATRIX_NCA)
# it also times NCA on the 200-pod cluster in the same run and prints the ratio.
# Goals (issue 2): 1,000/200 under 100 ms; 100,000/10,000 reachability under 5 s and 4 GiB.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p netmatrix-cli -p netmatrix-synth
bin=target/release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ms() { grep "timing: .* ms $1" "$2" | awk '{print $2}'; }

printf '%-14s %10s %14s %10s %12s %10s %10s\n' pods/policies load_ms reachability_ms classes connlist_ms lines peak_MiB
for size in ${SIZES:-200:40 1000:200 10000:1000 100000:10000}; do
  pods=${size%:*} policies=${size#*:}
  "$bin/netmatrix-synth" --pods "$pods" --policies "$policies" > "$tmp/cluster.json"
  "$bin/netmatrix" analyze -f "$tmp/cluster.json" --timings 2> "$tmp/t" > /dev/null
  classes=$(grep -o 'reachability ([0-9]* pod classes' "$tmp/t" | grep -o '[0-9]*')
  lines=$(grep -o 'connlist ([0-9]* lines' "$tmp/t" | grep -o '[0-9]*')
  peak_kb=$(grep -o 'peak memory [0-9]*' "$tmp/t" | grep -o '[0-9]*')
  printf '%-14s %10s %14s %10s %12s %10s %10s\n' "$pods/$policies" "$(ms load "$tmp/t")" "$(ms reachability "$tmp/t")" \
    "$classes" "$(ms connlist "$tmp/t")" "$lines" "$((peak_kb / 1024))"
done

nca=${NETMATRIX_NCA:-.venv/bin/nca}
if [ -x "$nca" ]; then
  mkdir -p "$tmp/nca-input"
  # NCA reads YAML streams from a directory; both tools get the same file, with policyTypes in
  # the one order NCA accepts (it rejects [Egress, Ingress]).
  "$bin/netmatrix-synth" --pods 200 --policies 40 --yaml | sed 's/\["Egress","Ingress"\]/["Ingress","Egress"]/g' > "$tmp/nca-input/cluster.yaml"
  start=$(date +%s%N)
  "$bin/netmatrix" analyze -f "$tmp/nca-input" --ipblocks-external-only > /dev/null
  ours=$(( ($(date +%s%N) - start) / 1000000 ))
  start=$(date +%s%N)
  "$nca" --connectivity -r "$tmp/nca-input" -o txt_no_fw_rules --output_endpoints pods -f "$tmp/nca.txt" > "$tmp/nca.log" 2>&1 \
    || { echo "network-config-analyzer failed:"; cat "$tmp/nca.log"; exit 1; }
  theirs=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "200 pods/40 policies, whole process: netmatrix ${ours} ms, network-config-analyzer ${theirs} ms, ratio $(awk "BEGIN {printf \"%.1f\", $theirs / ($ours > 0 ? $ours : 1)}")x"
else
  echo "network-config-analyzer not installed (run ./scripts/test once, or set NETMATRIX_NCA): no comparison"
fi
