#!/usr/bin/env python3
"""Runs network-config-analyzer's connectivity map on many config directories in one process
(its start-up costs about a second; 200 configs would otherwise spend minutes importing).

usage: batch.py OUT_DIR CONFIG_DIR...
For each CONFIG_DIR writes OUT_DIR/<name>.txt (one pair per line, pods as endpoints),
OUT_DIR/<name>.rc (NCA's exit code) and OUT_DIR/<name>.log (what NCA printed).
nca_main resets NCA's process-wide peer table, so configs may reuse pod names.
"""
import os
import sys

from nca.nca_cli import nca_main


def run(out_dir, config):
    name = os.path.basename(os.path.normpath(config))
    out = os.path.join(out_dir, name + ".txt")
    if os.path.exists(out):
        os.remove(out)  # NCA appends to its output file
    log = os.open(os.path.join(out_dir, name + ".log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    saved = os.dup(1), os.dup(2)
    sys.stdout.flush()
    sys.stderr.flush()
    # NCA holds sys.stderr from import time, so redirect the file descriptors themselves.
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        rc = nca_main(["--connectivity", "-r", config, "-o", "txt_no_fw_rules", "--output_endpoints", "pods", "-f", out])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 2
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(log)
    with open(os.path.join(out_dir, name + ".rc"), "w") as f:
        f.write(f"{rc}\n")
    if rc == 0 and not os.path.exists(out):
        open(out, "w").close()  # nothing allowed at all: NCA writes no file


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for config in sys.argv[2:]:
        run(out_dir, config)


if __name__ == "__main__":
    main()
