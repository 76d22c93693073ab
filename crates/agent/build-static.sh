#!/usr/bin/env bash
# Builds the fully static netmatrix-agent (glibc with crt-static; no musl
# target is installed here). The explicit --target matters: with it,
# RUSTFLAGS apply only to the target, so build scripts and proc-macros of
# the host still link dynamically and build. Symbols are stripped: the
# binary goes into a FROM-scratch image. Prints the binary's path last.
#
#   crates/agent/build-static.sh [extra cargo args]
#   CARGO_TARGET_DIR=/some/dir crates/agent/build-static.sh
set -euo pipefail
cd "$(dirname "$0")"
target="${TARGET:-x86_64-unknown-linux-gnu}"
RUSTFLAGS='-C target-feature=+crt-static' "${CARGO:-cargo}" build -p netmatrix-agent --release --target "$target" \
  --config 'profile.release.strip="symbols"' "$@" >&2
target_dir="${CARGO_TARGET_DIR:-$(cd ../.. && pwd)/target}"
echo "$target_dir/$target/release/netmatrix-agent"
