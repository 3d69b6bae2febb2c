"""Whole-process time of the command line, against Python's own start-up and
against what users would otherwise run (torchinfo).

    python benchmarks/cli_startup.py
    python benchmarks/cli_startup.py --repeat 21

Every command runs as a separate process, as a user or a CI job runs it,
and the commands take turns (one run of each per round), so that the
machine's noise falls on all of them alike.  For each the script prints the
fastest and the median wall time of ``--repeat`` rounds, after one warm-up
round (which also writes the bytecode caches and the parser tables, as an
installed package has them; ``PYTHONDONTWRITEBYTECODE`` is dropped from the
children's environment for that reason), and the ratio of its median to
``python -c pass``'s.  The commands:

* ``python -c pass``: the floor, the interpreter's own start-up;
* ``python -c "import archdsl"``: the import of the library;
* ``archdsl summary models/resnet18.cnn`` and ``archdsl check models/resnet18.cnn``;
* ``archdsl check models/``: the zoo (every file, every model);
* the anchor: torchinfo's ``summary()`` of ResNet-18 in a fresh
  interpreter, importing torch included, as a user pays it.  torchvision
  is not needed: the network is archdsl's own PyTorch export of
  models/resnet18.cnn (``archdsl export --to torch``, written once before
  timing; 11,689,512 parameters, torchvision's figure).  torchinfo is a
  benchmark-only tool, not a dependency of archdsl: without it the script
  says how to install it (``pip install torchinfo``) and prints the rest.

archdsl runs as ``python -m archdsl`` with this checkout first on the path.
Target (docs/benchmarks.md): ``archdsl summary`` of ResNet-18 in at most
0.12 s where ``python -c pass`` takes about 0.012 s.
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

TORCHINFO = """\
import sys
import torch
from torchinfo import summary
sys.path.insert(0, sys.argv[1])
from resnet18_torch import ResNet18
summary(ResNet18(), input_size=(1, 3, 224, 224), device="cpu", verbose=1)
"""
HAS_TORCHINFO = "import torch, torchinfo"


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


def torchinfo_anchor(python: str, scratch: Path, env: dict[str, str]) -> tuple[list[str] | None, str]:
    """The torchinfo command line, or None and why not."""
    probe = subprocess.run([python, "-c", HAS_TORCHINFO], capture_output=True, text=True, env=env)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, (f"{python} cannot import torch and torchinfo ({last}); torchinfo is a benchmark-only tool, "
                      "not an archdsl dependency: pip install torchinfo (PyTorch: pip install torch)")
    export = subprocess.run([python, "-m", "archdsl", "export", "models/resnet18.cnn", "--to", "torch", "-q",
                             "-o", str(scratch / "resnet18_torch.py")], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    if export.returncode != 0:
        return None, f"archdsl export --to torch failed: {export.stderr.strip()[-500:]}"
    return [python, "-c", TORCHINFO, str(scratch)], ""


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
    for depth, name, seconds in reversed(rows):  # -X importtime prints children before their parent
        del ancestors[depth:]
        ancestors.append(name)
        group = next((g for g in map(_group_of, reversed(ancestors)) if g), "other (runpy, encodings...)")
        totals[group] = totals.get(group, 0.0) + seconds
    return totals, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="measured rounds (after one warm-up round)")
    args = parser.parse_args()
    env = environment()
    python = sys.executable
    archdsl = [python, "-m", "archdsl"]

    with tempfile.TemporaryDirectory() as scratch:
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "import archdsl": [python, "-c", "import archdsl"],
            "summary resnet18": [*archdsl, "summary", "models/resnet18.cnn"],
            "check resnet18": [*archdsl, "check", "models/resnet18.cnn"],
            "check models/ (zoo)": [*archdsl, "check", "models/"],
        }
        anchor, why_not = torchinfo_anchor(python, Path(scratch), env)
        if anchor:
            commands["torchinfo resnet18"] = anchor

        times: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(args.repeat + 1):
            for name, command in commands.items():
                elapsed = wall_time(command, env)
                if round_:  # the first round warms caches up
                    times[name].append(elapsed)

    floor = statistics.median(times["python -c pass"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.1f} at the end; "
          f"wall time of whole processes, {args.repeat} rounds after a warm-up round")
    header = f"{'command':<24}{'min s':>8}{'median s':>10}{'/ pass':>8}{'torchinfo /':>13}"
    print("\n" + header + "\n" + "-" * len(header))
    anchor_median = statistics.median(times["torchinfo resnet18"]) if anchor else None
    for name, values in times.items():
        median = statistics.median(values)
        versus = f"{anchor_median / median:>12.1f}x" if anchor_median and name != "torchinfo resnet18" else ""
        print(f"{name:<24}{min(values):>8.3f}{median:>10.3f}{median / floor:>7.1f}x{versus}")
    print("\n(archdsl runs as 'python -m archdsl'; '/ pass': median over python -c pass's median; "
          "'torchinfo /': torchinfo's median over this one's)")
    if not anchor:
        print(f"torchinfo anchor skipped: {why_not}")

    groups, wall = import_breakdown(commands["summary resnet18"], env)
    site = groups.get("site (interpreter start-up)", 0.0)
    rest = max(0.0, wall - sum(groups.values()) - (floor - site))
    print(f"\nWhere 'archdsl summary models/resnet18.cnn' spends its time (one more run, under -X importtime: "
          f"{wall:.3f} s):")
    print(f"  {'interpreter (python -c pass, less site)':<68}{floor - site:>7.3f} s")
    for group, seconds in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"  {'import ' + group:<68}{seconds:>7.3f} s")
    print(f"  {'the rest: validators of the ops used, parse, analyse, print, exit':<68}{rest:>7.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
