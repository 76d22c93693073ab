#!/usr/bin/env bash
# How fast the loader reads manifests (issue 17, Loading; goals: YAML 50 MB/s, JSON 300 MB/s):
# synthetic clusters of a few sizes from netmatrix-synth, as one JSON List, as a stream of
# JSON-style YAML documents (`--yaml`), and as block-style YAML (as kubectl and people write
# it, converted with python3's yaml when it is installed). Each is loaded in one process
# (crates/model/examples/load_speed.rs) against a bare parse of the same text in the same run
# (serde_json to Value; serde-saphyr to Value, and its parser to events), in thread CPU time,
# with the loader's allocations per MB of input, against serde_json reading JSON straight into
# the loader's typed mirrors (nothing checked or built), and against copying the objects it
# built (Cluster::clone: the output alone, what any loader of this model spends). Times leave
# out dropping what was made: analyze never drops its cluster (the process exits).
#   bench/load-speed.sh
#   PODS="1000 20000" BUDGET_MS=1000 bench/load-speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
features=bench-parsers
if pkg-config --exists yaml-0.1 2> /dev/null || [ -e /usr/include/yaml.h ]; then
  features=bench-libyaml
else
  echo "libyaml-dev is not installed: the C libyaml is left out" >&2
fi
cargo build -q --release -p netmatrix-synth -p netmatrix-model --bin netmatrix-synth --example load_speed --features "netmatrix-model/$features"
bin=${CARGO_TARGET_DIR:-target}/release
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
files=()
for pods in ${PODS:-1000 10000 40000}; do
  policies=$((pods / 5))
  "$bin/netmatrix-synth" --pods "$pods" --policies "$policies" > "$tmp/c$pods.json"
  "$bin/netmatrix-synth" --pods "$pods" --policies "$policies" --yaml > "$tmp/c$pods-flow.yaml"
  files+=("$tmp/c$pods.json" "$tmp/c$pods-flow.yaml")
  if python3 -c 'import yaml' 2> /dev/null; then
    python3 - "$tmp/c$pods-flow.yaml" "$tmp/c$pods-block.yaml" <<'PY'
import sys, yaml
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
with open(sys.argv[1]) as f:
    docs = list(yaml.load_all(f, Loader=Loader))
with open(sys.argv[2], "w") as f:
    yaml.dump_all(docs, f, Dumper=Dumper, default_flow_style=False, explicit_start=True)
PY
    files+=("$tmp/c$pods-block.yaml")
  fi
done
"$bin/examples/load_speed" "${files[@]}"
