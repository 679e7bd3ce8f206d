#!/usr/bin/env python3
"""Regenerates the TrainSpec schema of proto/openapi.yaml from the option tables of core/:
replaces the block from "    TrainSpec:" to the next schema with `trc catalog --openapi`.
Usage: scripts/openapi_trainspec.py build/trc [proto/openapi.yaml]   (or `make openapi`)."""
import re
import subprocess
import sys


def main():
    trc = sys.argv[1]
    path = sys.argv[2] if len(sys.argv) > 2 else "proto/openapi.yaml"
    block = subprocess.run([trc, "catalog", "--openapi"], check=True, capture_output=True,
                           text=True).stdout
    with open(path) as f:
        lines = f.read().split("\n")
    start = lines.index("    TrainSpec:")
    end = start + 1
    while end < len(lines) and not re.match(r"^    \S", lines[end]):
        end += 1
    new = lines[:start] + block.rstrip("\n").split("\n") + lines[end:]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(new))
    import os
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
