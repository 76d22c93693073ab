#!/usr/bin/env bash
# Benchmark: N (default 10,000) TCP probes to loopback agents, two ways, in
# the same run:
#   batch    one `netmatrix-agent probe --batch` (bounded parallelism)
#   connect  N separate `netmatrix-agent connect` processes, the model of
#            today's one-exec-per-cell tools (without kubectl exec's own,
#            far larger, cost). Run by xargs, CONNECT_PARALLEL at a time
#            (default 1: strictly sequential).
# Prints both wall times and the ratio. Goal: batch >= 50x faster.
#
#   bench/agent/bench.sh
#   N=2000 CONNECT_PARALLEL=2 BATCH_PARALLEL=256 bench/agent/bench.sh
#
# Traffic goes to 127.0.0.1 only. The agent is the static release binary
# (what the image ships), built by crates/agent/build-static.sh.
set -euo pipefail

N="${N:-10000}"
CONNECT_PARALLEL="${CONNECT_PARALLEL:-1}"
BATCH_PARALLEL="${BATCH_PARALLEL:-256}"
AGENTS="${AGENTS:-4}" # serve ports the probes are spread over

root="$(cd "$(dirname "$0")/../.." && pwd)"
echo "building the static release agent..." >&2
agent="$("$root/crates/agent/build-static.sh" | tail -n1)"

work="$(mktemp -d)"
serve_pid=""
cleanup() {
  if [[ -n "$serve_pid" ]]; then
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

now_ns() { date +%s%N; }

ports_arg="$(printf '0%.0s,' $(seq "$AGENTS"))"
"$agent" serve --name bench --bind 127.0.0.1 --tcp "${ports_arg%,}" >"$work/serve.out" &
serve_pid=$!
deadline=$(($(date +%s) + 10))
until grep -qx ready "$work/serve.out"; do
  if (($(date +%s) > deadline)) || ! kill -0 "$serve_pid" 2>/dev/null; then
    echo "serve did not become ready:" >&2
    cat "$work/serve.out" >&2
    exit 1
  fi
  sleep 0.05
done
mapfile -t targets < <(awk '$1 == "listening" && $2 == "tcp" {print $3}' "$work/serve.out")
echo "agents: ${targets[*]}" >&2

# The same N destinations for both ways, spread over the agents.
for ((i = 0; i < N; i++)); do echo "${targets[i % ${#targets[@]}]}"; done >"$work/targets"
awk -F: 'BEGIN { printf "[" }
         { printf "%s{\"target\":\"%s\",\"port\":%s,\"protocol\":\"tcp\",\"timeout\":\"5s\"}", (NR > 1 ? "," : ""), $1, $2 }
         END { print "]" }' "$work/targets" >"$work/batch.json"

echo "batch: $N probes, --parallel $BATCH_PARALLEL..." >&2
# The kernel's share bounds the batch: CPU seconds (user, system) of the batch process (bash's
# `times` in a subshell: its children's) and of the serving agent (/proc/PID/stat, in ticks).
serve_ticks() { awk '{print $14, $15}' "/proc/$serve_pid/stat"; }
read -r serve_user0 serve_sys0 <<<"$(serve_ticks)"
start=$(now_ns)
(
  "$agent" probe --batch "$work/batch.json" --parallel "$BATCH_PARALLEL" >"$work/results.jsonl"
  times >"$work/batch.times" # not in a pipe: a forked `times` has no children
)
batch_ns=$(($(now_ns) - start))
read -r serve_user1 serve_sys1 <<<"$(serve_ticks)"
# "0m0.110s 0m0.480s" -> seconds of system time.
batch_sys=$(awk 'NR == 2 {split($2, t, /[ms]/); print t[1] * 60 + t[2]}' "$work/batch.times")
serve_sys=$(awk -v a="$serve_sys0" -v b="$serve_sys1" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (b - a) / hz }')
connected=$(grep -c '"outcome":"connected"' "$work/results.jsonl" || true)
if [[ "$connected" -ne "$N" ]]; then
  echo "batch: only $connected of $N probes connected" >&2
  grep -v '"outcome":"connected"' "$work/results.jsonl" | head -3 >&2
  exit 1
fi

echo "connect: $N processes, $CONNECT_PARALLEL at a time..." >&2
start=$(now_ns)
if ! xargs -P "$CONNECT_PARALLEL" -n 1 "$agent" connect --timeout 5s <"$work/targets"; then
  echo "connect: some invocations failed" >&2
  exit 1
fi
connect_ns=$(($(now_ns) - start))

# Context: what N process starts cost on this machine with no probe at all.
echo "spawn floor: $N x /bin/true, $CONNECT_PARALLEL at a time..." >&2
start=$(now_ns)
xargs -P "$CONNECT_PARALLEL" -n 1 /bin/true <"$work/targets"
spawn_ns=$(($(now_ns) - start))

awk -v n="$N" -v b="$batch_ns" -v c="$connect_ns" -v s="$spawn_ns" -v p="$CONNECT_PARALLEL" \
  -v bp="$BATCH_PARALLEL" -v a="${#targets[@]}" -v ks="$batch_sys" -v kv="$serve_sys" -v cores="$(nproc)" 'BEGIN {
  printf "probes: %d TCP to %d loopback agent ports\n", n, a
  printf "batch:   1 probe --batch process, --parallel %d: %8.3f s  (%7.1f us/probe)\n", bp, b / 1e9, b / 1e3 / n
  printf "connect: %d connect processes, %d at a time:  %8.3f s  (%7.1f us/probe)\n", n, p, c / 1e9, c / 1e3 / n
  printf "spawn floor: %d x /bin/true, %d at a time:    %8.3f s  (%7.1f us/process)\n", n, p, s / 1e9, s / 1e3 / n
  printf "ratio connect/batch: %.1fx (goal: >= 50x, %s)\n", c / b, (c / b >= 50 ? "met" : "NOT met")
  # Kernel time of both ends spread over every core: what the batch takes were its user space free.
  k = (ks + kv) * 1e9 / cores
  printf "kernel: %.1f us/probe of system time (batch %.3f s, serving agent %.3f s), over %d cores %.1f us/probe: the ratio could reach at most %.1fx\n", \
    (ks + kv) * 1e6 / n, ks, kv, cores, k / 1e3 / n, c / k
}'
