#!/usr/bin/env bash
# Times `netmatrix coverage`'s reader on a synthetic audit log (SIZE_MB, default 200 MB; kept
# under 1 GB and removed afterwards), against a baseline in the same run: the same buffered
# line loop without parsing. Prints events/s, MB/s, the ratio to the baseline and peak memory.
# Goals (coverage issue): over 200 MB/s on one core, under 200 MB of memory.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${SIZE_MB:-200}
[ "$size" -lt 1000 ] || { echo "SIZE_MB must stay under 1000" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-target}
cargo build -q --release -p netmatrix-coverage --example coverage_bench
bin=$target/release/examples/coverage_bench
spec=crates/coverage/tests/fixtures/openapi-v2.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
avail_mb=$(df -Pm "$tmp" | awk 'NR == 2 {print $4}')
[ "$avail_mb" -gt $((size * 2)) ] || { echo "not enough disk for a ${size} MB log in $tmp (${avail_mb} MB free)" >&2; exit 3; }

"$bin" generate "$size" "$tmp/audit.log" 2> /dev/null
# Pinned to one core; /usr/bin/time gives the peak resident set (KiB).
run() { taskset -c 0 /usr/bin/time -f 'peak_kib %M' "$bin" "$@" 2>&1 >"$tmp/out" | tr '\n' ' '; }
read_line=$(run read "$tmp/audit.log")
cov_line=$(run coverage "$spec" "$tmp/audit.log")
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' <<< "$2"; }
bytes=$(field bytes "$cov_line")
lines=$(field lines "$cov_line")
events=$(awk '{print $2}' "$tmp/out")
base_s=$(field seconds "$read_line")
cov_s=$(field seconds "$cov_line")
awk -v b="$bytes" -v l="$lines" -v e="$events" -v bs="$base_s" -v cs="$cov_s" -v bp="$(field peak_kib "$read_line")" -v cp="$(field peak_kib "$cov_line")" 'BEGIN {
  printf "log: %.0f MB, %d lines, %d counted events\n", b / 1e6, l, e
  printf "%-22s %8s %10s %12s %12s %10s\n", "", "seconds", "MB/s", "lines/s", "events/s", "peak_MiB"
  printf "%-22s %8.3f %10.0f %12.0f %12s %10.1f\n", "baseline (lines only)", bs, b / 1e6 / bs, l / bs, "-", bp / 1024
  printf "%-22s %8.3f %10.0f %12.0f %12.0f %10.1f\n", "coverage", cs, b / 1e6 / cs, l / cs, e / cs, cp / 1024
  printf "coverage / baseline time: %.1fx\n", cs / bs
}'
