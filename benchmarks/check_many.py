"""`archdsl check` over many files: one process against worker processes.

    python benchmarks/check_many.py                    # 1,000 files, -j 1 and -j 2, 3 rounds
    python benchmarks/check_many.py --files 200 --jobs 1 2 4 --repeat 5

The script writes ``--files`` model files into a temporary project, all
importing one block library (``lib/blocks.cnn``: a stem, a residual unit
and a classifier head), each a small residual network of its own width and
depth (30-60 layers).  Then it runs ``archdsl check PROJECT -j N`` for each
``--jobs`` value as a whole process, the values taking turns, ``--repeat``
rounds after one warm-up round, and prints the median wall time, files per
second and the speedup over ``-j 1``.  It also checks that every run printed
the same report.

What -j N does (docs/benchmarks.md, "check -j"): the parent lists the files
and hands them out in chunks to N forked workers; each worker parses the
block library once (archdsl/elaborate.py, ``_parse_import``) and sends back
each file's diagnostics and sources; the parent puts them in file order,
drops the repeats of a shared block file's diagnostics and prints the
report, exactly as one process would.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LIBRARY = """\
# Shared by every generated model: a stem, a residual unit, a head.
block stem(width) {
    return in -> conv: conv2d(width, 3, stride=2, padding=1, bias=false) -> bn: batchnorm2d -> relu
}

block unit(width, stride = 1, project = false) {
    main = in -> conv1: conv2d(width, 3, stride=stride, padding=1, bias=false) -> bn1: batchnorm2d -> relu
        -> conv2: conv2d(width, 3, padding=1, bias=false) -> bn2: batchnorm2d
    skip = in -> if project {
        downsample: (conv2d(width, 1, stride=stride, bias=false) -> batchnorm2d)
    }
    return add(main, skip) -> relu
}

block head(classes) {
    return in -> adaptive_avgpool2d(1) -> flatten -> fc: linear(classes)
}
"""


def model(index: int) -> str:
    width = 16 + 8 * (index % 8)
    depth = 1 + index % 3
    units = [f"        -> s1_{i}: unit({width})" for i in range(depth)]
    units.append(f"        -> s2_0: unit({2 * width}, stride=2, project=true)")
    units += [f"        -> s2_{i}: unit({2 * width})" for i in range(1, depth + 1)]
    return "\n".join([
        'import "../lib/blocks.cnn"',
        "",
        f"model Net{index:04} {{",
        "    input image: [3, 64, 64]",
        "    logits = image",
        f"        -> stem({width})",
        *units,
        f"        -> head({10 + index % 90})",
        "    output logits",
        "}",
        "",
    ])


def write_project(folder: Path, files: int) -> None:
    (folder / ".git").mkdir()  # the project root: imports stay inside it
    (folder / "lib").mkdir()
    (folder / "lib" / "blocks.cnn").write_text(LIBRARY, encoding="utf-8")
    models = folder / "models"
    models.mkdir()
    for index in range(files):
        (models / f"net{index:04}.cnn").write_text(model(index), encoding="utf-8")


def run(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="model files to generate (default 1000)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="-j values to time (default 1 2)")
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds after a warm-up round")
    args = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    jobs = sorted(set(args.jobs) | {1})

    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        write_project(project, args.files)
        times: dict[int, list[float]] = {n: [] for n in jobs}
        reports: set[str] = set()
        for round_ in range(args.repeat + 1):
            for n in jobs:
                elapsed, report = run([sys.executable, "-m", "archdsl", "check", str(project / "models"),
                                       "-j", str(n)], env)
                reports.add(report)
                if round_:  # the first round writes the bytecode and parser caches
                    times[n].append(elapsed)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.1f} at the end; "
          f"{args.files} files importing one block library; median of {args.repeat} whole-process runs")
    header = f"{'command':<28}{'median s':>10}{'min s':>8}{'files/s':>10}{'speedup':>9}"
    print(header + "\n" + "-" * len(header))
    base = statistics.median(times[1])
    for n in jobs:
        median = statistics.median(times[n])
        print(f"{'archdsl check -j ' + str(n):<28}{median:>10.2f}{min(times[n]):>8.2f}"
              f"{args.files / median:>10.0f}{base / median:>8.2f}x")
    print("reports identical across runs: " + ("yes" if len(reports) == 1 else f"NO ({len(reports)} variants)"))
    return 0 if len(reports) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
