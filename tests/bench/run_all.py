"""`make bench`: run every benchmark script in this folder, one after another, and fail if any missed its target.

Each script is standalone (`python tests/bench/<name>.py [--quick]`); this only sequences them so the machine is not
shared between two measurements. Extra arguments (e.g. --quick) are passed to every script.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPTS = ("bench_validation.py", "bench_cold_start.py", "bench_authorizers.py", "bench_rest_scale.py",
           "bench_reference_node.py", "bench_forward_auth.py")


def main(argv: list[str]) -> int:
    failed = []
    for name in SCRIPTS:
        print(f"\n=== {name} {' '.join(argv)}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / name), *argv], cwd=ROOT)
        if code != 0:
            failed.append(f"{name} (exit {code})")
    print("\n=== benchmarks: " + ("all targets met" if not failed else "missed: " + ", ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
