#!/usr/bin/env bash
# Lab timings (root): lab up/down at 3x10 and 10x50 pods, and one policy change applied with
# 500 pods and 200 policies. Builds the agent the lab's pods run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p netmatrix-agent
NETMATRIX_AGENT="$PWD/target/release/netmatrix-agent" cargo bench -q -p netmatrix-lab --bench lab
