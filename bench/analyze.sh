#!/usr/bin/env bash
# Times `netmatrix analyze` on seeded synthetic clusters (pods over ~100 namespaces, ~30 label
# sets per namespace, pods owned by ReplicaSets): each phase (`--timings`, wall), the whole
# process (wall and CPU, median of $REPEAT runs: start-up, loading, printing to /dev/null and
# exit included) and peak memory.
# Where network-config-analyzer is installed (.venv/bin/nca, made by scripts/test, or $NETMATRIX_NCA)
# it also times NCA on the 200-pod cluster in the same run, in $REPEAT rounds interleaved with
# netmatrix ($PER runs of it per round), and prints the ratio.
# Goals (issue 17): 200/40 at least 1,000x faster than NCA; 1,000/200 under 100 ms and
# 100,000/10,000 under 3 s and 600 MB, whole process. STATIC=1 also times the dist build linked
# static-PIE on the 200-pod cluster (another 10-minute build).
# On a busy machine wall times grow with the load; CPU times much less: both are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
# The dist profile: the binary to install (whole-program optimisation, Cargo.toml).
cargo build -q --profile dist -p netmatrix-cli -p netmatrix-synth
bin=${CARGO_TARGET_DIR:-target}/dist
repeat=${REPEAT:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ms() { grep "timing: .* ms $1" "$2" | awk '{print $2}'; }

# whole RUNS LOG COMMAND...: runs COMMAND RUNS times (output to the file LOG) and prints the
# median wall and CPU (user + system) milliseconds of the whole process; exits 1 if it fails.
whole() {
  python3 - "$@" <<'EOF'
import resource, statistics, subprocess, sys, time
runs, log, command = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
walls, cpus = [], []
for _ in range(runs):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as out:
        if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
            sys.exit(1)
    walls.append((time.perf_counter() - start) * 1e3)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpus.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e3)
print(f"{statistics.median(walls):.1f} {statistics.median(cpus):.1f}")
EOF
}

printf '%-14s %9s %9s %8s %9s %9s %10s %10s %9s %9s\n' pods/policies load_ms reach_ms classes connlist_ms output_ms lines whole_ms cpu_ms peak_MiB
for size in ${SIZES:-200:40 1000:200 10000:1000 100000:10000}; do
  pods=${size%:*} policies=${size#*:}
  "$bin/netmatrix-synth" --pods "$pods" --policies "$policies" > "$tmp/cluster.json"
  "$bin/netmatrix" analyze -f "$tmp/cluster.json" --timings 2> "$tmp/t" > /dev/null
  classes=$(grep -o 'reachability ([0-9]* pod classes' "$tmp/t" | grep -o '[0-9]*')
  lines=$(grep -o 'connlist ([0-9]* lines' "$tmp/t" | grep -o '[0-9]*')
  peak_kb=$(grep -o 'peak memory [0-9]*' "$tmp/t" | grep -o '[0-9]*')
  timing=$(whole "$repeat" /dev/null "$bin/netmatrix" analyze -f "$tmp/cluster.json")
  read -r wall cpu <<< "$timing"
  printf '%-14s %9s %9s %8s %9s %9s %10s %10s %9s %9s\n' "$pods/$policies" "$(ms load "$tmp/t")" "$(ms reachability "$tmp/t")" \
    "$classes" "$(ms connlist "$tmp/t")" "$(ms output "$tmp/t")" "$lines" "$wall" "$cpu" "$((peak_kb / 1024))"
done

nca=${NETMATRIX_NCA:-.venv/bin/nca}
if [ -x "$nca" ]; then
  mkdir -p "$tmp/nca-input"
  # NCA reads YAML streams from a directory; both tools get the same file, with policyTypes in
  # the one order NCA accepts (it rejects [Egress, Ingress]).
  "$bin/netmatrix-synth" --pods 200 --policies 40 --yaml | sed 's/\["Egress","Ingress"\]/["Ingress","Egress"]/g' > "$tmp/nca-input/cluster.yaml"
  commands=(-- "netmatrix" "$bin/netmatrix" analyze -f "$tmp/nca-input" --ipblocks-external-only
    -- "netmatrix --version" "$bin/netmatrix" --version -- "true" true)
  if [ "${STATIC:-0}" = 1 ]; then
    # The same dist build linked static-PIE (README: faster start-up, not the default).
    target=x86_64-unknown-linux-gnu
    RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --profile dist --target "$target" -p netmatrix-cli
    static=${CARGO_TARGET_DIR:-target}/$target/dist/netmatrix
    commands+=(-- "static-PIE netmatrix" "$static" analyze -f "$tmp/nca-input" --ipblocks-external-only
      -- "static-PIE --version" "$static" --version)
  fi
  # Interleaved: each round runs network-config-analyzer once, then each of the others $PER
  # times (their median), so that a host growing busier or quieter during the run moves both
  # sides of a round's ratio alike; the ratio printed is the median of the rounds'. The floors
  # (`at most`): what no analysis can go below, starting and ending this binary (`--version`)
  # and a process at all (`true`).
  python3 - "$repeat" "${PER:-9}" "$tmp/nca.log" "$nca" --connectivity -r "$tmp/nca-input" -o txt_no_fw_rules \
    --output_endpoints pods -f "$tmp/nca.txt" "${commands[@]}" <<'EOF'
import os, resource, statistics, subprocess, sys, time
rounds, per, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
args = sys.argv[4:]
cut = [i for i, a in enumerate(args) if a == "--"] + [len(args)]
baseline = args[:cut[0]]
others = [(args[a + 1], args[a + 2:b]) for a, b in zip(cut, cut[1:])]

def run(command, out):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(out, "w") as f:
        if subprocess.run(command, stdout=f, stderr=subprocess.STDOUT).returncode != 0:
            sys.exit(f"{command[0]} failed" + (f":\n{open(out).read()}" if out != os.devnull else ""))
    wall = (time.perf_counter() - start) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e3

theirs, ours = [], {label: [] for label, _ in others}
for _ in range(rounds):
    theirs.append(run(baseline, log))
    for label, command in others:
        walls, cpus = zip(*(run(command, os.devnull) for _ in range(per)))
        ours[label].append((statistics.median(walls), statistics.median(cpus)))

print(f"200 pods/40 policies (YAML), whole process; {rounds} rounds, each network-config-analyzer once, the others {per} times:")
wall, cpu = (statistics.median(t[i] for t in theirs) for i in (0, 1))
print(f"  {'network-config-analyzer':22} {wall:8.1f} ms (CPU {cpu:.1f} ms)")
for label, times in ours.items():
    wall, cpu = (statistics.median(t[i] for t in times) for i in (0, 1))
    ratio, cpu_ratio = (statistics.median(t[i] / max(o[i], 0.001) for t, o in zip(theirs, times)) for i in (0, 1))
    floor = "at most " if label.endswith("--version") or label == "true" else ""
    print(f"  {label:22} {wall:8.2f} ms (CPU {cpu:.2f} ms): {floor}{ratio:.0f}x faster (CPU {cpu_ratio:.0f}x)")
EOF
else
  echo "network-config-analyzer not installed (run ./scripts/test once, or set NETMATRIX_NCA): no comparison"
fi
