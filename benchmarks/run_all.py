"""Run every benchmark script in this folder, one after the other, and print their figures.

Speed lives here, never in timed test assertions. Each script prints its own timings
(and, where the issue names a peer and R is installed, the peer's time on the same
work). Usage: ``make bench`` or ``python benchmarks/run_all.py [name ...]``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    if argv:
        scripts = [p for p in scripts if any(a in p.stem for a in argv)]
    failed = 0
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        rc = subprocess.call([sys.executable, str(script)])
        if rc != 0:
            print(f"{script.stem} exited with {rc}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
