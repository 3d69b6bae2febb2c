"""How parsing, elaboration and the full analysis scale with model size.

    python benchmarks/analysis_scale.py                      # 1k, 10k, 100k layers; every family
    python benchmarks/analysis_scale.py --sizes 1000 10000 --families chain concat
    python benchmarks/analysis_scale.py --quick              # 1k and 10k only, no memory pass

Each family of generated models is written out as source text and run
through what ``archdsl check`` does in-process: parse, elaborate, then the
analysis passes, the lint rules, expectations and suppressions
(``check_program``).  For every size the script prints the seconds of each
stage (best of ``--repeat`` runs), the layers per second, and the scaling
ratio t(10n)/t(n) against the size before: about 10 when every stage is
linear, about 100 for a quadratic one.

The families:

* ``chain``: conv2d -> relu pairs in one long chain, one pair per line;
* ``residual``: unrolled residual units (conv-bn-relu-conv-bn, add, relu),
  one assignment per unit;
* ``residual_repeat``: the same units from one ``block`` and one
  ``repeat`` (a few lines of text; elaboration and analysis only);
* ``concat``: Inception-like blocks, eight conv -> relu branches
  concatenated, then a 1x1 conv.

Then the peak memory of parsing + analysis (tracemalloc, a separate run:
tracing slows everything down) at the two largest sizes, in bytes per layer:
the same figure at both sizes means memory linear in layers.

Targets (docs/benchmarks.md): a 10k-layer model fully analysed in under a
second, t(10n)/t(n) near 10, memory linear in layers.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl import syntax  # noqa: E402
from archdsl.checking import check_program  # noqa: E402
from archdsl.source import SourceFile  # noqa: E402

try:
    from archdsl._gc import paused_gc
except ImportError:  # a checkout from before the collector was paused (for before/after figures)
    def paused_gc(function):
        return function

# ------------------------------------------------------------------ models


def chain(layers: int) -> str:
    """conv2d -> relu pairs in one chain."""
    lines = ["model Chain {", "    input x: [16, 32, 32]", "    y = x"]
    lines += ["        -> conv2d(16, 3, padding=1) -> relu"] * max(1, (layers - 1) // 2)
    lines += ["    output y", "}"]
    return "\n".join(lines) + "\n"


def residual(layers: int) -> str:
    """Unrolled residual units of 7 layers: conv-bn-relu-conv-bn, add, relu."""
    units = max(1, (layers - 1) // 7)
    lines = ["model Residual {", "    input x: [16, 32, 32]", "    h0 = x"]
    for i in range(units):
        lines.append(f"    h{i + 1} = add(h{i} -> conv2d(16, 3, padding=1, bias=false) -> batchnorm2d -> relu"
                     f" -> conv2d(16, 3, padding=1, bias=false) -> batchnorm2d, h{i}) -> relu")
    lines += [f"    output y = h{units}", "}"]
    return "\n".join(lines) + "\n"


def residual_repeat(layers: int) -> str:
    """The residual units from one block and a repeat: little text, a large graph."""
    units = max(1, (layers - 1) // 7)
    return (
        "block Unit(c) {\n"
        "    main = in -> conv1: conv2d(c, 3, padding=1, bias=false) -> bn1: batchnorm2d -> relu\n"
        "              -> conv2: conv2d(c, 3, padding=1, bias=false) -> bn2: batchnorm2d\n"
        "    return add(main, in) -> relu\n"
        "}\n"
        "model ResidualRepeat {\n"
        "    input x: [16, 32, 32]\n"
        f"    y = x -> stage: repeat {units} {{ Unit(16) }}\n"
        "    output y\n"
        "}\n"
    )


def concat(layers: int, width: int = 8) -> str:
    """Inception-like blocks: ``width`` conv -> relu branches concatenated, then a 1x1 conv."""
    blocks = max(1, (layers - 1) // (2 * width + 2))
    lines = ["model Concat {", "    input x: [16, 16, 16]", "    h0 = x"]
    for i in range(blocks):
        branches = ", ".join(f"h{i} -> conv2d(8, {1 + 2 * (b % 3)}, padding={b % 3}) -> relu" for b in range(width))
        lines.append(f"    h{i + 1} = concat({branches}) -> conv2d(16, 1)")
    lines += [f"    output y = h{blocks}", "}"]
    return "\n".join(lines) + "\n"


FAMILIES = {"chain": chain, "residual": residual, "residual_repeat": residual_repeat, "concat": concat}

# ------------------------------------------------------------------ measuring


def best_of(function, repeat: int):
    """(best seconds, last result); the collector is run between runs so
    that one run's garbage is not charged to the next."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(text: str, repeat: int) -> dict:
    """Seconds of parse, parse + elaborate, and check_program; the layer count."""
    source = SourceFile("generated.cnn", text)
    # As load() runs it: with the garbage collector paused (archdsl/_gc.py).
    parse, _ = best_of(lambda: paused_gc(syntax.parse)(source), repeat)
    load, program = best_of(lambda: archdsl.loads(text, name="generated.cnn"), repeat)
    check, report = best_of(lambda: check_program(program), repeat)
    assert program.ok and not report.diagnostics, [d.message for d in report.diagnostics][:3]
    return {"layers": sum(len(m.nodes) for m in program.models), "parse": parse, "elaborate": load - parse,
            "analyse": check, "total": load + check}


def peak_memory(text: str) -> tuple[int, int]:
    """(peak traced bytes of parse + elaborate + check, layers)."""
    gc.collect()
    tracemalloc.start()
    try:
        program = archdsl.loads(text, name="generated.cnn")
        check_program(program)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, sum(len(m.nodes) for m in program.models)


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000], help="layers per model")
    parser.add_argument("--families", nargs="+", choices=sorted(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement below 50k layers (best is kept)")
    parser.add_argument("--quick", action="store_true", help="1k and 10k layers, no memory pass")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else sorted(args.sizes)

    print(f"archdsl {archdsl.__version__}, Python {platform.python_version()} on {platform.machine()}, "
          f"{platform.system()}; best of {args.repeat} runs (1 at 50k layers and more)")
    archdsl.loads(chain(20))  # warm: parser tables, op validators
    header = (f"{'family':<16}{'layers':>8}{'parse s':>9}{'elab s':>8}{'check s':>9}{'total s':>9}"
              f"{'layers/s':>10}{'t(10n)/t(n)':>13}")
    print("\n" + header + "\n" + "-" * len(header))
    results: dict[tuple[str, int], dict] = {}
    for family in args.families:
        previous = None
        for size in sizes:
            text = FAMILIES[family](size)
            row = measure(text, args.repeat if size < 50_000 else 1)
            results[family, size] = row
            ratio = ""
            if previous is not None and size == 10 * previous[0]:
                ratio = f"{row['total'] / previous[1]['total']:.1f}"
            print(f"{family:<16}{row['layers']:>8}{row['parse']:>9.3f}{row['elaborate']:>8.3f}{row['analyse']:>9.3f}"
                  f"{row['total']:>9.3f}{row['layers'] / row['total']:>10,.0f}{ratio:>13}")
            previous = (size, row)
    print("parse: text to syntax tree; elab: to the layer graph; check: analysis passes, lint, expectations "
          "(check_program)")

    verdicts = []
    ten_k = [row for (family, size), row in results.items() if size == 10_000]
    if ten_k:
        worst = max(row["total"] for row in ten_k)
        verdicts.append(f"10k layers fully analysed in under 1 s: {'met' if worst < 1 else 'NOT met'} "
                        f"(slowest family {worst:.3f} s)")
    ratios = [results[f, b]["total"] / results[f, a]["total"] for f in args.families
              for a, b in zip(sizes, sizes[1:]) if b == 10 * a]
    if ratios:
        verdicts.append(f"t(10n)/t(n) from {min(ratios):.1f} to {max(ratios):.1f} (10 is linear, 100 quadratic)")

    if not (args.quick or args.no_memory) and len(sizes) >= 2:
        small, large = sizes[-2], sizes[-1]
        print(f"\nPeak memory of parse + elaborate + check (tracemalloc), {small:,} and {large:,} layers:")
        per_layer = []
        for family in args.families:
            (peak_a, layers_a), (peak_b, layers_b) = (peak_memory(FAMILIES[family](n)) for n in (small, large))
            per_layer.append((peak_b / layers_b) / (peak_a / layers_a))
            print(f"  {family:<16} {peak_a / 1e6:8.1f} MB ({peak_a / layers_a:6,.0f} B/layer)   "
                  f"{peak_b / 1e6:8.1f} MB ({peak_b / layers_b:6,.0f} B/layer)")
        verdicts.append(f"memory linear in layers: bytes per layer at {large:,} / at {small:,} from "
                        f"{min(per_layer):.2f} to {max(per_layer):.2f} (1 is linear)")
    print("\n" + "\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
