#!/usr/bin/env bash
# Times `netmatrix analyze` on seeded synthetic clusters (pods over ~100 namespaces, ~30 label
# sets per namespace, pods owned by ReplicaSets): each phase (`--timings`, wall), the whole
# process (wall and CPU, median of $REPEAT runs: start-up, loading, printing to /dev/null and
# exit included) and peak memory.
# Where network-config-analyzer is installed (.venv/bin/nca, made by scripts/test, or $NETMATRIX_NCA)
# it also times NCA on the 200-pod cluster in the same run and prints the ratio.
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
  timing=$(whole "$repeat" /dev/null "$bin/netmatrix" analyze -f "$tmp/nca-input" --ipblocks-external-only)
  read -r ours ours_cpu <<< "$timing"
  timing=$(whole 1 "$tmp/nca.log" "$nca" --connectivity -r "$tmp/nca-input" -o txt_no_fw_rules --output_endpoints pods -f "$tmp/nca.txt") \
    || { echo "network-config-analyzer failed:"; cat "$tmp/nca.log"; exit 1; }
  read -r theirs theirs_cpu <<< "$timing"
  # What no analysis can go below: starting and ending this binary (dynamic loading and
  # relocation of a 15 MB program), and a process at all (/bin/true), timed the same way.
  timing=$(whole "$repeat" /dev/null "$bin/netmatrix" --version)
  read -r startup startup_cpu <<< "$timing"
  timing=$(whole "$repeat" /dev/null true)
  read -r process process_cpu <<< "$timing"
  echo "200 pods/40 policies (YAML), whole process: netmatrix ${ours} ms (CPU ${ours_cpu} ms, median of $repeat)," \
    "network-config-analyzer ${theirs} ms (CPU ${theirs_cpu} ms), ratio $(awk "BEGIN {printf \"%.0f\", $theirs / $ours}")x" \
    "(CPU $(awk "BEGIN {printf \"%.0f\", $theirs_cpu / ($ours_cpu > 0 ? $ours_cpu : 1)}")x)"
  echo "floors, whole process: netmatrix --version ${startup} ms (CPU ${startup_cpu} ms; at most $(awk "BEGIN {printf \"%.0f\", $theirs / $startup}")x)," \
    "true ${process} ms (CPU ${process_cpu} ms; at most $(awk "BEGIN {printf \"%.0f\", $theirs / $process}")x)"
  if [ "${STATIC:-0}" = 1 ]; then
    # The same dist build linked static-PIE (README: faster start-up, not the default).
    target=x86_64-unknown-linux-gnu
    RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --profile dist --target "$target" -p netmatrix-cli
    static=${CARGO_TARGET_DIR:-target}/$target/dist/netmatrix
    timing=$(whole "$repeat" /dev/null "$static" analyze -f "$tmp/nca-input" --ipblocks-external-only)
    read -r ours_static ours_static_cpu <<< "$timing"
    timing=$(whole "$repeat" /dev/null "$static" --version)
    read -r startup_static startup_static_cpu <<< "$timing"
    echo "static-PIE: netmatrix ${ours_static} ms (CPU ${ours_static_cpu} ms), ratio $(awk "BEGIN {printf \"%.0f\", $theirs / $ours_static}")x;" \
      "--version ${startup_static} ms (CPU ${startup_static_cpu} ms; at most $(awk "BEGIN {printf \"%.0f\", $theirs / $startup_static}")x)"
  fi
else
  echo "network-config-analyzer not installed (run ./scripts/test once, or set NETMATRIX_NCA): no comparison"
fi
