#!/usr/bin/env bash
# `netmatrix run` probing on the lab (root): a 100 x 99 x TCP+UDP matrix, 10% denied, batched
# against one process per probe. Builds the agent the lab's pods run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p netmatrix-agent
NETMATRIX_AGENT="$PWD/target/release/netmatrix-agent" cargo bench -q -p netmatrix-engine --bench matrix
