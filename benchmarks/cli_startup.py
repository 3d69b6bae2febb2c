"""Whole-process time of the command line, against Python's own start-up and
against what users would otherwise run (torchinfo).

    python benchmarks/cli_startup.py
    python benchmarks/cli_startup.py --repeat 15 --torch-python /tmp/torchenv/bin/python

Every command runs as a separate process, as a user or a CI job runs it,
and the commands take turns (one run of each per round), so that the
machine's noise falls on all of them alike.  For each the script prints the
fastest and the median wall time of ``--repeat`` rounds, after one warm-up
round (which also writes the bytecode caches and the parser tables, as an
installed package has them).  The commands:

* ``python -c pass``: the floor, the interpreter's own start-up;
* ``python -c "import archdsl"``: the import of the library;
* ``archdsl check models/``: the zoo (every file, every model);
* ``archdsl summary models/resnet50.cnn``;
* ``archdsl check`` and ``archdsl summary`` of one large generated model
  (``--layers``, 10k by default: benchmarks/analysis_scale.py's chain);
* the anchor: torchinfo's ``summary()`` of torchvision's ResNet-50 in a
  fresh interpreter (importing torch included, as a user pays it), run by
  ``--torch-python`` (default: this interpreter) and skipped, with a note,
  when that interpreter lacks torch, torchvision or torchinfo.

archdsl runs as ``python -m archdsl`` with this checkout first on the path.
Target (docs/benchmarks.md): ``archdsl summary`` of ResNet-50 at least 15x
faster than the torchinfo process.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from analysis_scale import chain  # noqa: E402

TORCHINFO = """\
import torch, torchvision
from torchinfo import summary
summary(torchvision.models.resnet50(), input_size=(1, 3, 224, 224), device="cpu", verbose=1)
"""
HAS_TORCHINFO = "import torch, torchvision, torchinfo"


def environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    return env


def wall_time(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


def torch_interpreter(requested: str | None, env: dict[str, str]) -> tuple[str | None, str]:
    """The interpreter to run torchinfo with, or None and why not."""
    python = requested or sys.executable
    if requested and not Path(requested).exists():
        return None, f"--torch-python {requested}: no such file"
    probe = subprocess.run([python, "-c", HAS_TORCHINFO], capture_output=True, text=True, env=env)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"{python} cannot import torch, torchvision and torchinfo ({last})"
    return python, ""


# Where the imports go: each module's own import time (-X importtime) is
# charged to the first of these that it is, or that imported it.
IMPORT_GROUPS = (
    ("pydantic", ("pydantic", "pydantic_core", "typing_extensions", "annotated_types", "typing_inspection")),
    ("archdsl op classes", ("archdsl.ops",)),
    ("archdsl, other modules (+ the stdlib they import first)", ("archdsl",)),
    ("site (interpreter start-up)", ("site",)),
    ("lark", ("lark",)),
)


def _group_of(name: str) -> str | None:
    for group, prefixes in IMPORT_GROUPS:
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return group
    return None


def import_breakdown(command: list[str], env: dict[str, str]) -> tuple[dict[str, float], float]:
    """Seconds of import per group for one run of ``command`` (a ``python``
    command line), and its wall time."""
    start = time.perf_counter()
    result = subprocess.run([command[0], "-X", "importtime", *command[1:]], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        if not own.strip().isdigit():
            continue  # the header
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((depth, name.strip(), int(own) / 1e6))
    totals: dict[str, float] = {}
    ancestors: list[str] = []
    for depth, name, own in reversed(rows):  # -X importtime prints children before their parent
        del ancestors[depth:]
        ancestors.append(name)
        group = next((g for g in map(_group_of, reversed(ancestors)) if g), "other (runpy, encodings...)")
        totals[group] = totals.get(group, 0.0) + own
    return totals, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="measured rounds (after one warm-up round)")
    parser.add_argument("--torch-python", metavar="PATH",
                        help="interpreter with torch, torchvision and torchinfo for the anchor (default: this one)")
    parser.add_argument("--layers", type=int, default=10_000, help="layers of the large generated model")
    args = parser.parse_args()
    env = environment()
    python = sys.executable
    archdsl = [python, "-m", "archdsl"]

    with tempfile.TemporaryDirectory() as scratch:
        large = Path(scratch) / "chain.cnn"
        large.write_text(chain(args.layers), encoding="utf-8")
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "import archdsl": [python, "-c", "import archdsl"],
            "check models/ (zoo)": [*archdsl, "check", "models/"],
            "summary resnet50": [*archdsl, "summary", "models/resnet50.cnn"],
            f"check {args.layers // 1000}k layers": [*archdsl, "check", str(large)],
            f"summary {args.layers // 1000}k layers": [*archdsl, "summary", str(large)],
        }
        torch_python, why_not = torch_interpreter(args.torch_python, env)
        if torch_python:
            commands["torchinfo resnet50"] = [torch_python, "-c", TORCHINFO]

        times: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(args.repeat + 1):
            for name, command in commands.items():
                elapsed = wall_time(command, env)
                if round_:  # the first round warms caches up
                    times[name].append(elapsed)

    floor = min(times["python -c pass"])
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; wall time of whole processes, "
          f"{args.repeat} rounds after a warm-up round")
    header = f"{'command':<24}{'min s':>8}{'median s':>10}{'min - floor':>13}"
    print("\n" + header + "\n" + "-" * len(header))
    for name, values in times.items():
        low = min(values)
        extra = "" if name == "python -c pass" else f"{low - floor:>13.3f}"
        print(f"{name:<24}{low:>8.3f}{statistics.median(values):>10.3f}{extra}")
    print("\n(archdsl runs as 'python -m archdsl'; 'floor' is 'python -c pass')")

    groups, wall = import_breakdown(commands["summary resnet50"], env)
    site = groups.get("site (interpreter start-up)", 0.0)
    rest = max(0.0, wall - sum(groups.values()) - (floor - site))
    print(f"\nWhere 'archdsl summary models/resnet50.cnn' spends its time (one more run, under -X importtime: "
          f"{wall:.3f} s):")
    print(f"  {'interpreter (python -c pass, less site)':<68}{floor - site:>7.3f} s")
    for group, seconds in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"  {'import ' + group:<68}{seconds:>7.3f} s")
    print(f"  {'the rest: validators of the ops used, parse, analyse, print, exit':<68}{rest:>7.3f} s")

    summary = times["summary resnet50"]
    if torch_python:
        anchor = times["torchinfo resnet50"]
        fastest = min(anchor) / min(summary)
        typical = statistics.median(anchor) / statistics.median(summary)
        print(f"\ntorchinfo's ResNet-50 summary (via {torch_python}) / archdsl summary: {fastest:.1f}x (fastest runs), "
              f"{typical:.1f}x (medians); target 15x: {'met' if min(fastest, typical) >= 15 else 'NOT met'}")
    else:
        print(f"\ntorchinfo anchor skipped: {why_not}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
