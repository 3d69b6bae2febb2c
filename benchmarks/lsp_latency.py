"""Edit-to-diagnostics round trip of ``archdsl lsp`` on models/resnet152.cnn,
in-process: the text changed (a channel count edited), re-checked and its
diagnostics converted to LSP's, as the server does on didChange.  Prints the
median of 20 runs.  Run: ``python benchmarks/lsp_latency.py``."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from archdsl import lsp

PATH = (Path(__file__).resolve().parent.parent / "models" / "resnet152.cnn")


def main() -> None:
    text = PATH.read_text(encoding="utf-8")
    times = []
    for n in range(20):
        edited = text.replace("linear(1000)", f"linear({1000 + n % 2})")
        start = time.perf_counter()
        lsp.diagnostics(lsp.open_document(PATH, edited))
        times.append(time.perf_counter() - start)
    print(f"resnet152.cnn edit -> diagnostics: median {statistics.median(times) * 1000:.0f} ms "
          f"(min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms, 20 runs)")


if __name__ == "__main__":
    main()
